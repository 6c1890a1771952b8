/* write.c — the write path: try the socket first, copy and queue only what
 * it did not take, stop reading while too much waits; and the memory budget
 * (max_buffered) that copies and buffered messages count against. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>

#include "internal.h"

#define WRITE_HIGH_WATER (256 * 1024) /* stop reading while more than this waits to be written */
#define STACK_BUFS 16
/* During a load the heap is trimmed once this much was let go ... */
#define TRIM_AFTER ((size_t)1 << 20)
#define TRIM_RATIO 4     /* ... and it is this many times what is still held */
#define TRIM_IDLE_MS 200 /* and once the server has held nothing this long */

struct conn_write {
  uv_write_t req;
  uint64_t exchanges; /* exchanges this write completes */
  size_t copied;      /* bytes in data, counted in the budget */
  char data[];
};

/* Bytes of replies not yet sent: libuv's queue and the kernel's send queue
 * (SIOCOUTQ).  The kernel's part moves while a slow reader drains a
 * multi-megabyte socket buffer, when libuv's does not. */
uint32_t revd__conn_unsent(struct conn *c) {
  size_t queued = uv_stream_get_write_queue_size(&c->h.stream);
  uv_os_fd_t fd;
  int in_kernel = 0;
  if (uv_fileno(&c->h.handle, &fd) == 0 && ioctl(fd, SIOCOUTQ, &in_kernel) == 0 && in_kernel > 0)
    queued += (size_t)in_kernel;
  return queued > UINT32_MAX ? UINT32_MAX : (uint32_t)queued;
}

static const uint32_t duration_bounds_ms[] = {REVD_DURATION_BUCKETS_MS};

void revd__conn_completed(struct conn *c, uint64_t n) {
  revd_stats_t *st = &conn_server(c)->stats;
  uint32_t ms = (uint32_t)uv_now(c->h.handle.loop) - c->started_ms; /* mod 2^32: fine */
  int b = 0;
  while (b < REVD_DURATION_BUCKETS - 1 && ms > duration_bounds_ms[b])
    b++;
  st->completed += n;
  st->duration_buckets[b] += n;
  st->duration_sum_ms += n * ms;
}

static void write_cb(uv_write_t *req, int status) {
  struct conn_write *w = container_of(req, struct conn_write, req);
  struct conn *c = container_of(req->handle, struct conn, h.stream);
  revd_server_t *srv = conn_server(c);
  uint64_t exchanges = w->exchanges;
  c->writes_pending--;
  revd__budget_give(srv, w->copied);
  free(w);
  if (status == UV_ECANCELED)
    return; /* closing already */
  if (status < 0) {
    revd__conn_fail(c, &srv->stats.resets);
    return;
  }
  revd__conn_completed(c, exchanges);
  revd__conn_touch(c);
  if (c->read_paused && c->phase == CONN_READING &&
      uv_stream_get_write_queue_size(&c->h.stream) < WRITE_HIGH_WATER / 2) {
    revd__conn_resume_reading(c);
  }
  if (c->writes_pending == 0 && c->close_after_writes) {
    c->close_after_writes = 0;
    revd__conn_finish(c);
  }
}

static size_t bufs_total(const uv_buf_t *bufs, unsigned nbufs) {
  size_t total = 0;
  for (unsigned i = 0; i < nbufs; i++)
    total += bufs[i].len;
  return total;
}

/* Points out[] at bufs less their first `skip` bytes; returns how many. */
static unsigned bufs_tail(uv_buf_t *out, const uv_buf_t *bufs, unsigned nbufs, size_t skip) {
  unsigned n = 0;
  for (unsigned i = 0; i < nbufs; i++) {
    if (skip >= bufs[i].len) {
      skip -= bufs[i].len;
      continue;
    }
    out[n++] = uv_buf_init(bufs[i].base + skip, (unsigned)(bufs[i].len - skip));
    skip = 0;
  }
  return n;
}

/* Copies bufs[0..nbufs) into dst, end to end; returns one buffer over it. */
static uv_buf_t bufs_gather(char *dst, const uv_buf_t *bufs, unsigned nbufs) {
  size_t len = 0;
  for (unsigned i = 0; i < nbufs; i++) {
    memcpy(dst + len, bufs[i].base, bufs[i].len);
    len += bufs[i].len;
  }
  return uv_buf_init(dst, (unsigned)len);
}

/* Writes `tail`, what the socket did not take (`rest` bytes), in a request
 * of its own: copied into it, or (keep) straight from the caller's bytes. */
static int write_tail(struct conn *c, uv_buf_t *tail, unsigned ntail, size_t rest,
                      uint64_t exchanges, int keep) {
  revd_server_t *srv = conn_server(c);
  size_t copied = keep ? 0 : rest;
  if (revd__budget_take(srv, copied) != 0)
    return UV_ENOBUFS;
  struct conn_write *w = malloc(sizeof *w + copied);
  int r = w ? 0 : UV_ENOMEM;
  if (w) {
    w->exchanges = exchanges;
    w->copied = copied;
    if (!keep) {
      tail[0] = bufs_gather(w->data, tail, ntail);
      ntail = 1;
    }
    r = uv_write(&w->req, &c->h.stream, tail, ntail, write_cb); /* libuv copies the array */
  }
  if (r != 0) {
    revd__budget_give(srv, copied);
    free(w);
  }
  return r;
}

/* Queues what the socket did not take: `rest` bytes of bufs after `took`. */
static int queue_write(struct conn *c, const uv_buf_t *bufs, unsigned nbufs, size_t took,
                       size_t rest, uint64_t exchanges, int keep) {
  uv_buf_t stack_bufs[STACK_BUFS];
  uv_buf_t *tail = nbufs <= STACK_BUFS ? stack_bufs : malloc(nbufs * sizeof *tail);
  if (!tail)
    return UV_ENOMEM;
  unsigned ntail = bufs_tail(tail, bufs, nbufs, took);
  int r = write_tail(c, tail, ntail, rest, exchanges, keep);
  if (tail != stack_bufs)
    free(tail);
  if (r != 0)
    return r;
  c->writes_pending++;
  c->out_seen = revd__conn_unsent(c);
  if (c->phase == CONN_READING && !c->read_paused &&
      uv_stream_get_write_queue_size(&c->h.stream) > WRITE_HIGH_WATER) {
    revd__conn_pause_reading(c); /* nothing unbounded is buffered */
  }
  return 0;
}

int revd__conn_write(struct conn *c, const uv_buf_t *bufs, unsigned nbufs, uint64_t exchanges,
                     int keep) {
  revd_server_t *srv = conn_server(c);
  size_t total = bufs_total(bufs, nbufs);
  if (total == 0)
    return 0;
  /* Behind a queued write, a direct write would jump the queue. */
  int took = c->writes_pending ? UV_EAGAIN : uv_try_write(&c->h.stream, bufs, nbufs);
  if (took == UV_EAGAIN)
    took = 0;
  if (took < 0)
    return took;
  srv->stats.bytes_out += total;
  if ((size_t)took == total) {
    revd__conn_completed(c, exchanges);
    return 0;
  }
  return queue_write(c, bufs, nbufs, (size_t)took, total - (size_t)took, exchanges, keep);
}

/* ---- the memory budget (max_buffered) ---------------------------------- */

int revd__budget_take(revd_server_t *srv, size_t n) {
  if (srv->opts.max_buffered && n > srv->opts.max_buffered - srv->buffered)
    return UV_ENOBUFS;
  srv->buffered += n;
  return 0;
}

/* glibc keeps freed memory in its heap, where a burst of big messages would
 * hold RSS up for good; malloc_trim hands the free pages back.  During a
 * load: once a good deal was let go and most of what was held is gone (a
 * connection or two still holding a message must not keep the rest), a
 * few times per burst, not once per exchange.  And once the server has
 * held nothing for TRIM_IDLE_MS: what the last of a burst let go. */
static void trim(revd_server_t *srv) {
  srv->released = 0;
  malloc_trim(0);
}

static void trim_when_idle_cb(uv_timer_t *t) {
  revd_server_t *srv = container_of(t, revd_server_t, trim_timer);
  if (srv->buffered == 0 && srv->released > 0)
    trim(srv);
}

void revd__budget_give(revd_server_t *srv, size_t n) {
  srv->buffered -= n;
  srv->released += n;
  if (srv->released >= TRIM_AFTER && srv->released >= TRIM_RATIO * srv->buffered)
    trim(srv);
  else if (srv->buffered == 0 && srv->released > 0 && !srv->closing &&
           !uv_is_active((uv_handle_t *)&srv->trim_timer))
    uv_timer_start(&srv->trim_timer, trim_when_idle_cb, TRIM_IDLE_MS, 0);
}

