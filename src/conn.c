/* conn.c — the connection core: deadlines and the one timer, the readers,
 * the write path, finish, lingering close, close.  It knows nothing of
 * framing: the mode's protocol (srv->proto) reads the message and calls
 * back here to write, finish or give up.
 *
 * Every open connection sits on one of two lists, each ordered by deadline
 * because every entry on it shares one timeout: `active` (idle timeout,
 * touched when a message or its reply makes progress) and `lingering`
 * (linger or drain timeout).  One uv_timer_t serves both (the libev manual's
 * "same timeout" pattern).
 *
 * Input has two readers, swapped at the phase change as nginx swaps
 * rev->handler: the message reader hands bytes to the mode; once the message
 * is complete (or the connection lingers) the discard reader takes over. */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>

#include "internal.h"

#define WRITE_HIGH_WATER (256 * 1024) /* stop reading while more than this waits to be written */
#define FREE_CONNS_MAX 256            /* closed conns kept for reuse: no malloc per accept */
#define STACK_BUFS 16
/* After letting this much go, a server holding nothing trims its heap. */
#define TRIM_AFTER ((size_t)1 << 20)

/* A queued write: the request first, then the bytes the socket did not
 * take at once (a copy; none when the caller keeps them alive). */
struct conn_write {
  uv_write_t req;
  uint64_t exchanges; /* exchanges this write completes */
  size_t copied;      /* bytes in data, counted in the budget */
  char data[];
};

/* ---- lists and the one timer ------------------------------------------ */

static struct conn_list *list_of(struct conn *c) {
  revd_server_t *srv = conn_server(c);
  return c->in_lingering ? &srv->lingering : &srv->active;
}

static void list_remove(struct conn *c) {
  struct conn_list *l = list_of(c);
  if (!c->prev && l->head != c)
    return; /* on no list */
  if (c->prev)
    c->prev->next = c->next;
  else
    l->head = c->next;
  if (c->next)
    c->next->prev = c->prev;
  else
    l->tail = c->prev;
  c->prev = c->next = NULL;
}

static void list_append(struct conn_list *l, struct conn *c) {
  c->prev = l->tail;
  c->next = NULL;
  if (l->tail)
    l->tail->next = c;
  else
    l->head = c;
  l->tail = c;
}

static uint64_t deadline_after(const revd_server_t *srv, unsigned ms) {
  return ms ? uv_now(srv->loop) + ms : UINT64_MAX;
}

/* Puts c at the tail of `lingering` (or `active`) with a deadline ms from
 * now (0: none). */
static void move_to(struct conn *c, int lingering, unsigned ms) {
  revd_server_t *srv = conn_server(c);
  list_remove(c);
  c->in_lingering = lingering ? 1 : 0;
  c->deadline = deadline_after(srv, ms);
  list_append(lingering ? &srv->lingering : &srv->active, c);
  revd__timer_arm(srv);
}

static void timer_cb(uv_timer_t *t);

/* Arms the timer for the earliest deadline unless it is already due no
 * later; a timer that fires early just re-arms itself (touches only push
 * deadlines later).  The two lists have different timeouts, so an entry
 * new to one can be due before the other's head: then the timer moves up. */
void revd__timer_arm(revd_server_t *srv) {
  uint64_t first = UINT64_MAX;
  if (srv->active.head && srv->active.head->deadline < first)
    first = srv->active.head->deadline;
  if (srv->lingering.head && srv->lingering.head->deadline < first)
    first = srv->lingering.head->deadline;
  if (first == UINT64_MAX)
    return;
  uint64_t now = uv_now(srv->loop);
  uint64_t due_in = first > now ? first - now : 0;
  if (uv_is_active((uv_handle_t *)&srv->timer) && uv_timer_get_due_in(&srv->timer) <= due_in)
    return;
  uv_timer_start(&srv->timer, timer_cb, due_in, 0);
}

void revd__conn_touch(struct conn *c) {
  if (c->in_lingering)
    return; /* lingering and draining connections keep their deadline */
  move_to(c, 0, conn_server(c)->opts.idle_timeout_ms);
}

/* ---- the memory budget (max_buffered) ---------------------------------- */

int revd__budget_take(revd_server_t *srv, size_t n) {
  if (srv->opts.max_buffered && n > srv->opts.max_buffered - srv->buffered)
    return UV_ENOBUFS;
  srv->buffered += n;
  return 0;
}

/* glibc keeps freed memory in its heap, where a burst of big messages would
 * hold RSS up for good; malloc_trim hands the free pages back.  Only when
 * nothing is held, after a good deal was let go: once per burst, not once
 * per exchange. */
void revd__budget_give(revd_server_t *srv, size_t n) {
  srv->buffered -= n;
  srv->released += n;
  if (srv->buffered == 0 && srv->released >= TRIM_AFTER) {
    srv->released = 0;
    malloc_trim(0);
  }
}

/* ---- closing ------------------------------------------------------------ */

static void conn_close_cb(uv_handle_t *h) {
  struct conn *c = container_of(h, struct conn, h.handle);
  revd_server_t *srv = conn_server(c);
  srv->proto->release(c);
  if (srv->nfree_conns < FREE_CONNS_MAX && !srv->closing) {
    c->next = srv->free_conns;
    srv->free_conns = c;
    srv->nfree_conns++;
  } else {
    free(c);
  }
  srv->stats.active--;
  revd__server_handle_closed(srv);
}

/* Closes at once.  Pending writes are cancelled, so callers only do this
 * when the reply is already in the kernel, or there is none to protect. */
static void conn_close(struct conn *c) {
  if (c->phase == CONN_CLOSING)
    return;
  list_remove(c);
  c->phase = CONN_CLOSING;
  uv_close(&c->h.handle, conn_close_cb);
}

/* Closes with a reset where there is one.  A clean EOF would make a part
 * of a reply look like the whole, so a TCP client gets a reset (SO_LINGER
 * 0).  A Unix socket has no reset: its client sees a reply shorter than its
 * message (the reversal keeps the length). */
static void conn_reset(struct conn *c) {
  uv_os_fd_t fd;
  struct linger reset = {1, 0};
  if (conn_server(c)->listener.kind == LISTENER_TCP && uv_fileno(&c->h.handle, &fd) == 0)
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  conn_close(c);
}

/* Gives up on a reply that is not complete. */
static void conn_cut_short(struct conn *c) {
  conn_server(c)->stats.cut_short++;
  conn_reset(c);
}

void revd__conn_over_budget(struct conn *c) {
  conn_server(c)->stats.over_budget++;
  conn_reset(c);
}

void revd__conn_fail_error(struct conn *c, int err) {
  revd_server_t *srv = conn_server(c);
  if (err == UV_ENOBUFS)
    revd__conn_over_budget(c);
  else if (err == UV_ENOMEM)
    revd__conn_fail(c, &srv->stats.oom);
  else
    revd__conn_fail(c, &srv->stats.resets);
}

void revd__conn_fail(struct conn *c, uint64_t *counter) {
  (*counter)++;
  conn_close(c);
}

/* ---- readers -------------------------------------------------------------- */

static void shared_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  revd_server_t *srv = h->data;
  (void)suggested;
  *buf = uv_buf_init(srv->readbuf, sizeof srv->readbuf);
}

static void message_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct conn *c = container_of(h, struct conn, h.handle);
  revd_server_t *srv = conn_server(c);
  if (srv->proto->alloc)
    srv->proto->alloc(c, buf);
  else
    shared_alloc_cb(h, suggested, buf);
}

/* Input past the message: counted, never handed to the mode.  The client's
 * EOF ends a lingering close. */
static void discard_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct conn *c = container_of(s, struct conn, h.stream);
  revd_server_t *srv = conn_server(c);
  (void)buf;
  if (nread > 0) {
    srv->stats.bytes_in += (size_t)nread;
  } else if (nread == UV_EOF) {
    c->input_eof = 1;
    if (c->phase == CONN_LINGERING)
      revd__conn_finish(c);
    /* replying: the write callback finishes the exchange */
  } else if (nread < 0 && c->phase == CONN_LINGERING) {
    conn_close(c); /* a reset while draining costs the client nothing */
  } else if (nread < 0) {
    revd__conn_fail(c, &srv->stats.resets);
  }
}

/* Swaps the reader (libuv takes new callbacks only through a restart). */
static int read_with(struct conn *c, uv_alloc_cb alloc, uv_read_cb read) {
  uv_read_stop(&c->h.stream);
  c->read_paused = 0;
  return uv_read_start(&c->h.stream, alloc, read);
}

static void message_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct conn *c = container_of(s, struct conn, h.stream);
  revd_server_t *srv = conn_server(c);
  if (nread > 0) {
    srv->stats.bytes_in += (size_t)nread;
    srv->proto->data(c, buf->base, (size_t)nread);
    /* Message complete and the connection stays (a reply still queued):
     * from now on input is past the message. */
    if (c->phase == CONN_REPLYING && !c->input_eof &&
        read_with(c, shared_alloc_cb, discard_read_cb) != 0)
      revd__conn_fail(c, &srv->stats.resets);
  } else if (nread == UV_EOF) {
    c->input_eof = 1;
    srv->proto->eof(c);
  } else if (nread == UV_ENOBUFS && c->over_budget) {
    revd__conn_over_budget(c); /* the mode's buffer was refused */
  } else if (nread == UV_ENOBUFS) {
    revd__conn_fail(c, &srv->stats.oom); /* the mode had no memory for the read */
  } else if (nread < 0) {
    revd__conn_fail(c, &srv->stats.resets);
  }
}

/* ---- writing -------------------------------------------------------------- */

/* Bytes of replies not yet sent: libuv's queue and the kernel's send queue
 * (SIOCOUTQ).  The kernel's part moves while a slow reader drains a
 * multi-megabyte socket buffer, when libuv's does not. */
static size_t unsent_bytes(struct conn *c) {
  size_t queued = uv_stream_get_write_queue_size(&c->h.stream);
  uv_os_fd_t fd;
  int in_kernel = 0;
  if (uv_fileno(&c->h.handle, &fd) == 0 && ioctl(fd, SIOCOUTQ, &in_kernel) == 0 && in_kernel > 0)
    queued += (size_t)in_kernel;
  return queued;
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
  srv->stats.completed += exchanges;
  revd__conn_touch(c);
  if (c->read_paused && c->phase == CONN_READING &&
      uv_stream_get_write_queue_size(&c->h.stream) < WRITE_HIGH_WATER / 2) {
    c->read_paused = 0;
    uv_read_start(&c->h.stream, message_alloc_cb, message_read_cb);
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

/* Copies bufs, less their first `skip` bytes, into dst. */
static void bufs_copy_tail(char *dst, const uv_buf_t *bufs, unsigned nbufs, size_t skip) {
  for (unsigned i = 0; i < nbufs; i++) {
    if (skip >= bufs[i].len) {
      skip -= bufs[i].len;
      continue;
    }
    memcpy(dst, bufs[i].base + skip, bufs[i].len - skip);
    dst += bufs[i].len - skip;
    skip = 0;
  }
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

/* Queues what the socket did not take: `rest` bytes of bufs after `took`. */
static int queue_write(struct conn *c, const uv_buf_t *bufs, unsigned nbufs, size_t took,
                       size_t rest, uint64_t exchanges, int keep) {
  revd_server_t *srv = conn_server(c);
  size_t copied = keep ? 0 : rest;
  if (revd__budget_take(srv, copied) != 0)
    return UV_ENOBUFS;
  struct conn_write *w = malloc(sizeof *w + copied);
  if (!w) {
    revd__budget_give(srv, copied);
    return UV_ENOMEM;
  }
  w->exchanges = exchanges;
  w->copied = copied;
  uv_buf_t stack_bufs[STACK_BUFS];
  uv_buf_t *out = stack_bufs;
  unsigned nout = 1;
  if (!keep) {
    bufs_copy_tail(w->data, bufs, nbufs, took);
    out[0] = uv_buf_init(w->data, (unsigned)rest);
  } else {
    if (nbufs > STACK_BUFS && !(out = malloc(nbufs * sizeof *out))) {
      free(w);
      return UV_ENOMEM;
    }
    nout = bufs_tail(out, bufs, nbufs, took);
  }
  int r = uv_write(&w->req, &c->h.stream, out, nout, write_cb);
  if (out != stack_bufs)
    free(out); /* libuv keeps its own copy of the array */
  if (r != 0) {
    revd__budget_give(srv, copied);
    free(w);
    return r;
  }
  c->writes_pending++;
  c->out_seen = unsent_bytes(c);
  if (c->phase == CONN_READING && !c->read_paused &&
      uv_stream_get_write_queue_size(&c->h.stream) > WRITE_HIGH_WATER) {
    uv_read_stop(&c->h.stream); /* nothing unbounded is buffered */
    c->read_paused = 1;
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
    srv->stats.completed += exchanges;
    return 0;
  }
  return queue_write(c, bufs, nbufs, (size_t)took, total - (size_t)took, exchanges, keep);
}

/* ---- finishing ------------------------------------------------------------ */

static void shutdown_cb(uv_shutdown_t *req, int status) {
  (void)status; /* the close that follows handles either outcome */
  free(req);
}

/* Shuts down our write side once the queued writes are out.  Returns 0 or
 * a negative UV_E* code. */
static int shutdown_write_side(struct conn *c) {
  uv_os_fd_t fd;
  /* Nothing queued (chunk and eof mode, always): shut down now.
   * uv_shutdown would wait a loop turn for POLLOUT, and cost two epoll_ctl. */
  if (c->writes_pending == 0 && uv_fileno(&c->h.handle, &fd) == 0)
    return shutdown(fd, SHUT_WR) == 0 ? 0 : uv_translate_sys_error(errno);
  uv_shutdown_t *req = malloc(sizeof *req);
  if (!req)
    return UV_ENOMEM;
  int r = uv_shutdown(req, &c->h.stream, shutdown_cb);
  if (r != 0)
    free(req);
  return r;
}

/* Lingering close (nginx's name): shut down our write side once queued
 * writes are out, then discard input until the client's EOF or linger_ms,
 * and only then close.  Closing with unread input would make the kernel
 * send a reset, and a reset can wipe a reply the client has not read. */
void revd__conn_linger(struct conn *c) {
  revd_server_t *srv = conn_server(c);
  if (c->phase == CONN_CLOSING || c->phase == CONN_LINGERING)
    return;
  c->phase = CONN_LINGERING;
  move_to(c, 1, srv->opts.linger_ms ? srv->opts.linger_ms : 1);
  if (c->input_eof) {
    revd__conn_finish(c); /* nothing more can come: close once the writes are out */
    return;
  }
  if (shutdown_write_side(c) != 0 || read_with(c, shared_alloc_cb, discard_read_cb) != 0)
    conn_close(c);
}

void revd__conn_message_done(struct conn *c) {
  if (c->phase == CONN_READING)
    c->phase = CONN_REPLYING;
}

/* Has the client half-closed already?  One non-blocking read into the
 * scratch buffer tells (an EOF sent with the message is usually there by
 * now), and spares the lingering close to clients that did.  Bytes it finds
 * are past the message: discarded. */
static void probe_input_eof(struct conn *c) {
  revd_server_t *srv = conn_server(c);
  uv_os_fd_t fd;
  if (c->input_eof || uv_fileno(&c->h.handle, &fd) != 0)
    return;
  ssize_t n = recv(fd, srv->readbuf, sizeof srv->readbuf, MSG_DONTWAIT);
  if (n > 0)
    srv->stats.bytes_in += (size_t)n;
  else if (n == 0)
    c->input_eof = 1;
}

/* The exchange is over.  Only a client that has half-closed can send
 * nothing more, so only then is closing at once safe.  Anyone else (the
 * classic client, or one still sending past the first chunk, which may just
 * be between two writes) gets a lingering close: input that meets a closed
 * socket draws a reset, and a reset can wipe the reply. */
void revd__conn_finish(struct conn *c) {
  if (c->phase == CONN_CLOSING)
    return;
  if (c->writes_pending) {
    c->close_after_writes = 1;
    return;
  }
  probe_input_eof(c);
  if (c->input_eof)
    conn_close(c);
  else
    revd__conn_linger(c);
}

/* ---- deadlines ------------------------------------------------------------ */

/* Has the reply moved on since the last look? */
static int reply_moved_on(struct conn *c) {
  if (!c->writes_pending)
    return 0;
  size_t unsent = unsent_bytes(c);
  int moved = unsent < c->out_seen;
  c->out_seen = unsent;
  return moved;
}

/* Bytes that arrived but were not read yet: after the loop stalled (a
 * stopped process, a long callback), input waits in the socket, and its
 * client is not idle. */
static int input_waiting(struct conn *c) {
  uv_os_fd_t fd;
  int n = 0;
  return c->phase == CONN_READING && !c->read_paused && uv_fileno(&c->h.handle, &fd) == 0 &&
         ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

/* The linger or drain deadline passed.  A lingering connection has its
 * reply out: close.  One still owed a reply at the drain deadline, or with
 * writes still queued, is cut short. */
static void lingering_expired(struct conn *c) {
  if (c->phase == CONN_LINGERING && c->writes_pending == 0)
    conn_close(c);
  else
    conn_cut_short(c);
}

/* The idle deadline passed. */
static void idle_expired(struct conn *c) {
  revd_server_t *srv = conn_server(c);
  if (reply_moved_on(c) || input_waiting(c)) {
    revd__conn_touch(c); /* a slow reader that keeps reading is not idle */
    return;
  }
  srv->stats.timeouts++;
  if (c->writes_pending)
    conn_cut_short(c); /* not reading its reply */
  else
    conn_close(c);     /* silent, or stalled mid-message: nothing owed */
}

static void timer_cb(uv_timer_t *t) {
  revd_server_t *srv = container_of(t, revd_server_t, timer);
  uint64_t now = uv_now(srv->loop);
  while (srv->lingering.head && srv->lingering.head->deadline <= now)
    lingering_expired(srv->lingering.head);
  while (srv->active.head && srv->active.head->deadline <= now)
    idle_expired(srv->active.head);
  revd__timer_arm(srv);
}

/* ---- a connection's life -------------------------------------------------- */

struct conn *revd__conn_new(revd_server_t *srv) {
  struct conn *c = srv->free_conns;
  if (c) {
    srv->free_conns = c->next;
    srv->nfree_conns--;
  } else if (!(c = calloc(1, srv->conn_size))) {
    return NULL;
  }
  /* The handle is initialised by libuv; the rest starts at 0. */
  memset(c, 0, offsetof(struct conn, h));
  int r = srv->listener.kind == LISTENER_UNIX ? uv_pipe_init(srv->loop, &c->h.pipe, 0)
                                              : uv_tcp_init(srv->loop, &c->h.tcp);
  if (r != 0) {
    free(c);
    return NULL;
  }
  c->h.handle.data = srv;
  srv->handles_open++;
  srv->stats.active++;
  return c;
}

void revd__conn_discard_new(struct conn *c) { conn_close(c); }

void revd__conn_start(struct conn *c) {
  revd_server_t *srv = conn_server(c);
  srv->stats.accepted++;
  c->phase = CONN_READING;
  move_to(c, 0, srv->opts.idle_timeout_ms);
  if (srv->proto->nodelay && srv->listener.kind == LISTENER_TCP)
    uv_tcp_nodelay(&c->h.tcp, 1);
  if (uv_read_start(&c->h.stream, message_alloc_cb, message_read_cb) != 0)
    revd__conn_fail(c, &srv->stats.resets);
}

/* Exchanges under way may finish within drain_timeout_ms; connections owed
 * nothing get a lingering close, so no client sees a reset. */
void revd__conn_wind_down(struct conn *c) {
  revd_server_t *srv = conn_server(c);
  int owed = c->phase == CONN_REPLYING ||
             (c->phase == CONN_READING && srv->proto->owes_reply(c));
  if (!owed)
    revd__conn_linger(c);
  else
    move_to(c, 1, srv->opts.drain_timeout_ms ? srv->opts.drain_timeout_ms : 1);
}

void revd__conn_free_all(revd_server_t *srv) {
  while (srv->free_conns) {
    struct conn *next = srv->free_conns->next;
    free(srv->free_conns);
    srv->free_conns = next;
  }
  srv->nfree_conns = 0;
}
