/* server.c — the reverse server on a caller's libuv loop.
 *
 * Data flows one way: socket -> read callback -> framing -> reverse ->
 * write -> close.  One struct conn holds everything an exchange needs.
 * Reads of chunk and line mode land in one server-wide buffer (a read is
 * consumed before the next alloc_cb), so chunk mode costs no malloc per read
 * or per write unless the socket refuses part of the reply.
 *
 * Every connection sits on exactly one of two lists, each ordered by
 * deadline because every entry on it shares the same timeout: `active`
 * (idle timeout, touched when a message or its reply makes progress) and
 * `lingering` (linger timeout).
 * One uv_timer_t serves both (the libev "same timeout" pattern).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <string.h>
#include <unistd.h>

#include "framing.h"
#include "reverse.h"
#include "revd.h"

#define LINE_WRITE_HIGH_WATER (256 * 1024) /* line mode stops reading above this */
#define EOF_FIRST_CHUNK 4096                /* eof mode buffers grow 4 KiB .. 64 KiB */
#define FREE_CONNS_MAX 256                  /* closed conns kept for reuse: no malloc per accept */

enum conn_state {
  CONN_READING,   /* waiting for (the rest of) a message */
  CONN_REPLYING,  /* chunk/eof: the one reply is being written */
  CONN_LINGERING, /* write side shut down; input discarded until EOF or timeout */
  CONN_CLOSING    /* uv_close() called */
};

struct conn_list {
  struct conn *head, *tail;
};

/* eof mode keeps what it reads in chunks, newest first. */
struct eof_chunk {
  struct eof_chunk *next;
  size_t len, cap;
  char data[];
};

/* Line mode: a queued copy of replies the socket did not take at once
 * (libuv's echo-server shape: the request first, its bytes beside it). */
struct line_write {
  uv_write_t req;
  struct conn *conn;
  uint64_t lines; /* lines whose reply this write completes */
  char data[];
};

struct conn {
  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_handle_t handle;
    uv_stream_t stream;
  } h;
  uv_write_t write_req;     /* chunk/eof: the one reply */
  uv_shutdown_t shutdown_req;
  revd_server_t *srv;
  struct conn *prev, *next;
  struct conn_list *list;
  uint64_t deadline;
  enum conn_state state;
  unsigned writes_pending;
  size_t queue_seen;        /* write queue size at the last idle check */
  unsigned got_bytes : 1;   /* some input arrived */
  unsigned input_eof : 1;   /* the client half-closed */
  unsigned close_after_writes : 1;
  unsigned read_paused : 1; /* line mode back-pressure */
  size_t received;          /* bytes of the current message */
  char *reply;              /* chunk mode: what the socket did not take at once */
  struct eof_chunk *chunks; /* eof mode */
  char *line;               /* line mode: the incomplete line so far */
  size_t line_len, line_cap;
};

enum listener_kind { LISTENER_NONE, LISTENER_TCP, LISTENER_UNIX };

struct revd_server {
  uv_loop_t *loop;
  revd_options_t opts;
  revd_stats_t stats;
  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_handle_t handle;
    uv_stream_t stream;
  } listener;
  enum listener_kind listener_kind;
  int listener_open;
  char *unix_path;
  uv_timer_t timer;
  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_handle_t handle;
    uv_stream_t stream;
  } spare;                /* takes and closes a connection there is no memory for */
  int spare_busy, accept_stalled;
  struct conn_list active, lingering;
  struct conn *free_conns; /* freed conns kept for reuse, linked by next */
  unsigned nfree_conns;
  unsigned handles_open;
  int closing;
  void (*close_cb)(revd_server_t *, void *);
  void *close_arg;
  char readbuf[REVD_CHUNK_MAX];
};

/* ---- lists and the one timer ------------------------------------------ */

static void list_remove(struct conn *c) {
  struct conn_list *l = c->list;
  if (!l)
    return;
  if (c->prev)
    c->prev->next = c->next;
  else
    l->head = c->next;
  if (c->next)
    c->next->prev = c->prev;
  else
    l->tail = c->prev;
  c->prev = c->next = NULL;
  c->list = NULL;
}

static void list_append(struct conn_list *l, struct conn *c) {
  c->prev = l->tail;
  c->next = NULL;
  if (l->tail)
    l->tail->next = c;
  else
    l->head = c;
  l->tail = c;
  c->list = l;
}

static uint64_t deadline_after(const revd_server_t *srv, unsigned ms) {
  return ms ? uv_now(srv->loop) + ms : UINT64_MAX;
}

static void timer_cb(uv_timer_t *t);

/* Arms the timer for the earliest deadline unless it is already due no
 * later; a timer that fires early just re-arms itself (touches only push
 * deadlines later).  The two lists have different timeouts, so an entry
 * new to one can be due before the other's head: then the timer moves up. */
static void timer_arm(revd_server_t *srv) {
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

/* Moves c to the tail of `active` with a fresh idle deadline: O(1). */
static void conn_touch(struct conn *c) {
  revd_server_t *srv = c->srv;
  if (c->list != &srv->active)
    return; /* lingering connections keep their deadline */
  c->deadline = deadline_after(srv, srv->opts.idle_timeout_ms);
  list_remove(c);
  list_append(&srv->active, c);
  timer_arm(srv);
}

/* ---- closing a connection --------------------------------------------- */

static void free_chunks(struct conn *c) {
  while (c->chunks) {
    struct eof_chunk *next = c->chunks->next;
    free(c->chunks);
    c->chunks = next;
  }
}

static void maybe_finish_server_close(revd_server_t *srv);
static void conn_finish(struct conn *c);

static void conn_close_cb(uv_handle_t *h) {
  struct conn *c = (struct conn *)h;
  revd_server_t *srv = c->srv;
  free_chunks(c);
  free(c->reply);
  free(c->line);
  if (srv->nfree_conns < FREE_CONNS_MAX && !srv->closing) {
    c->next = srv->free_conns;
    srv->free_conns = c;
    srv->nfree_conns++;
  } else {
    free(c);
  }
  srv->stats.active--;
  srv->handles_open--;
  maybe_finish_server_close(srv);
}

/* Closes at once.  Pending writes are cancelled, so callers only do this
 * when the reply is already in the kernel, or there is none to protect. */
static void conn_close(struct conn *c) {
  if (c->state == CONN_CLOSING)
    return;
  c->state = CONN_CLOSING;
  list_remove(c);
  uv_close(&c->h.handle, conn_close_cb);
}

static void conn_fail(struct conn *c, uint64_t *counter) {
  (*counter)++;
  conn_close(c);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void shutdown_cb(uv_shutdown_t *req, int status) {
  (void)req;
  (void)status; /* the close that follows handles either outcome */
}

/* Lingering close (nginx's name): shut down our write side once queued
 * writes are out, then discard input until the client's EOF or linger_ms,
 * and only then close.  Closing with unread input would make the kernel
 * send a reset, and a reset can wipe a reply the client has not read. */
static void conn_linger(struct conn *c) {
  revd_server_t *srv = c->srv;
  if (c->state == CONN_CLOSING || c->state == CONN_LINGERING)
    return;
  c->state = CONN_LINGERING;
  list_remove(c);
  c->deadline = deadline_after(srv, srv->opts.linger_ms ? srv->opts.linger_ms : 1);
  list_append(&srv->lingering, c);
  timer_arm(srv);
  if (c->input_eof) {
    conn_finish(c); /* nothing more can come: close once the writes are out */
    return;
  }
  /* Nothing queued (chunk and eof mode, always): shut down now.
   * uv_shutdown would wait a loop turn for POLLOUT, and cost two epoll_ctl. */
  uv_os_fd_t fd;
  if (c->writes_pending == 0 && uv_stream_get_write_queue_size(&c->h.stream) == 0 &&
      uv_fileno(&c->h.handle, &fd) == 0) {
    if (shutdown(fd, SHUT_WR) != 0) {
      conn_close(c);
      return;
    }
  } else if (uv_shutdown(&c->shutdown_req, &c->h.stream, shutdown_cb) != 0) {
    conn_close(c);
    return;
  }
  if (c->read_paused) {
    c->read_paused = 0;
    uv_read_start(&c->h.stream, alloc_cb, read_cb);
  }
}

/* Has the client half-closed already?  One non-blocking read into the
 * scratch buffer tells (an EOF sent with the message is usually there by
 * now), and spares the lingering close to clients that did.  Bytes it finds
 * are past the message: discarded. */
static void probe_input_eof(struct conn *c) {
  uv_os_fd_t fd;
  if (c->input_eof || uv_fileno(&c->h.handle, &fd) != 0)
    return;
  ssize_t n = recv(fd, c->srv->readbuf, sizeof c->srv->readbuf, MSG_DONTWAIT);
  if (n > 0)
    c->srv->stats.bytes_in += (size_t)n;
  else if (n == 0)
    c->input_eof = 1;
}

/* The exchange is over.  Only a client that has half-closed can send
 * nothing more, so only then is closing at once safe.  Anyone else (the
 * classic client, or one still sending past the first chunk, which may just
 * be between two writes) gets a lingering close: input that meets a closed
 * socket draws a reset, and a reset can wipe the reply. */
static void conn_finish(struct conn *c) {
  if (c->writes_pending) {
    c->close_after_writes = 1;
    return;
  }
  probe_input_eof(c);
  if (c->input_eof)
    conn_close(c);
  else
    conn_linger(c);
}

/* Has the kernel taken more of the queued reply since the last look?
 * libuv reports no progress inside one big write, but the queue shrinks. */
static int reply_moved_on(struct conn *c) {
  if (!c->writes_pending)
    return 0;
  size_t queued = uv_stream_get_write_queue_size(&c->h.stream);
  int moved = queued < c->queue_seen;
  c->queue_seen = queued;
  return moved;
}

static void timer_cb(uv_timer_t *t) {
  revd_server_t *srv = (revd_server_t *)((char *)t - offsetof(revd_server_t, timer));
  uint64_t now = uv_now(srv->loop);
  while (srv->lingering.head && srv->lingering.head->deadline <= now)
    conn_close(srv->lingering.head);
  while (srv->active.head && srv->active.head->deadline <= now) {
    struct conn *c = srv->active.head;
    if (reply_moved_on(c)) {
      conn_touch(c); /* a slow reader that keeps reading is not idle */
      continue;
    }
    /* Silent, stalled mid-message, or not reading its reply: nothing
     * owed to it is worth keeping the connection for. */
    srv->stats.timeouts++;
    conn_close(c);
  }
  timer_arm(srv);
}

/* ---- writing ---------------------------------------------------------- */

static void write_done(struct conn *c) {
  if (c->writes_pending == 0 && c->close_after_writes) {
    c->close_after_writes = 0;
    conn_finish(c);
  }
}

static size_t bufs_total(const uv_buf_t *bufs, unsigned nbufs) {
  size_t total = 0;
  for (unsigned i = 0; i < nbufs; i++)
    total += bufs[i].len;
  return total;
}

/* Copies bufs, less the first `skip` bytes, into dst. */
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

/* Hands bufs to the kernel if it takes them now.  Returns how many bytes
 * it took (0 .. total) or a negative UV_E* error (the connection is dead). */
static ssize_t try_write(struct conn *c, const uv_buf_t *bufs, unsigned nbufs) {
  int r = uv_try_write(&c->h.stream, bufs, nbufs);
  if (r == UV_EAGAIN)
    return 0;
  return r;
}

static void reply_write_cb(uv_write_t *req, int status) {
  struct conn *c = (struct conn *)((char *)req - offsetof(struct conn, write_req));
  revd_server_t *srv = c->srv;
  c->writes_pending--;
  free(c->reply);
  c->reply = NULL;
  free_chunks(c);
  if (status == UV_ECANCELED)
    return; /* closing already */
  if (status < 0) {
    conn_fail(c, &srv->stats.resets);
    return;
  }
  srv->stats.completed++;
  write_done(c);
}

/* Chunk mode: sends the reply from the server's read buffer, copying only
 * the part the socket did not take at once. */
static void send_chunk_reply(struct conn *c, char *data, size_t len) {
  revd_server_t *srv = c->srv;
  uv_buf_t buf = uv_buf_init(data, (unsigned)len);
  ssize_t took = len ? try_write(c, &buf, 1) : 0;
  if (took < 0) {
    conn_fail(c, &srv->stats.resets);
    return;
  }
  srv->stats.bytes_out += len;
  if ((size_t)took == len) {
    srv->stats.completed++;
    conn_finish(c);
    return;
  }
  c->reply = malloc(len - (size_t)took);
  if (!c->reply) {
    conn_fail(c, &srv->stats.resets);
    return;
  }
  memcpy(c->reply, data + took, len - (size_t)took);
  buf = uv_buf_init(c->reply, (unsigned)(len - (size_t)took));
  if (uv_write(&c->write_req, &c->h.stream, &buf, 1, reply_write_cb) != 0) {
    conn_fail(c, &srv->stats.resets);
    return;
  }
  c->writes_pending++;
  c->queue_seen = uv_stream_get_write_queue_size(&c->h.stream);
  c->close_after_writes = 1;
}

static void line_write_cb(uv_write_t *req, int status) {
  struct line_write *w = (struct line_write *)req;
  struct conn *c = w->conn;
  revd_server_t *srv = c->srv;
  uint64_t lines = w->lines;
  c->writes_pending--;
  free(w);
  if (status == UV_ECANCELED)
    return;
  if (status < 0) {
    conn_fail(c, &srv->stats.resets);
    return;
  }
  srv->stats.completed += lines;
  conn_touch(c);
  if (c->read_paused && c->state == CONN_READING &&
      uv_stream_get_write_queue_size(&c->h.stream) < LINE_WRITE_HIGH_WATER / 2) {
    c->read_paused = 0;
    uv_read_start(&c->h.stream, alloc_cb, read_cb);
  }
  write_done(c);
}

/* Line mode: sends replies, copying what the socket does not take at once,
 * and stops reading while too much waits (nothing unbounded is buffered). */
static int send_line_replies(struct conn *c, const uv_buf_t *bufs, unsigned nbufs,
                             uint64_t lines) {
  revd_server_t *srv = c->srv;
  size_t total = bufs_total(bufs, nbufs);
  if (total == 0)
    return 0;
  /* Behind a queued write, a direct write would jump the queue. */
  ssize_t took = c->writes_pending ? 0 : try_write(c, bufs, nbufs);
  if (took < 0)
    return (int)took;
  srv->stats.bytes_out += total;
  if ((size_t)took == total) {
    srv->stats.completed += lines;
    return 0;
  }
  size_t rest = total - (size_t)took;
  struct line_write *w = malloc(sizeof *w + rest);
  if (!w)
    return UV_ENOMEM;
  w->conn = c;
  w->lines = lines;
  bufs_copy_tail(w->data, bufs, nbufs, (size_t)took);
  uv_buf_t buf = uv_buf_init(w->data, (unsigned)rest);
  int r = uv_write(&w->req, &c->h.stream, &buf, 1, line_write_cb);
  if (r != 0) {
    free(w);
    return r;
  }
  c->writes_pending++;
  c->queue_seen = uv_stream_get_write_queue_size(&c->h.stream);
  if (uv_stream_get_write_queue_size(&c->h.stream) > LINE_WRITE_HIGH_WATER) {
    uv_read_stop(&c->h.stream);
    c->read_paused = 1;
  }
  return 0;
}

/* ---- reading: one function per mode ---------------------------------- */

static void count_reverse(revd_server_t *srv, char *data, size_t len) {
  if (revd__reverse(srv->opts.reverse, data, len) == REVD__REVERSED_BYTES)
    srv->stats.utf8_fallbacks++;
}

static void chunk_input(struct conn *c, char *data, size_t len) {
  if (c->state != CONN_READING)
    return; /* past the one message: discarded */
  c->state = CONN_REPLYING;
  count_reverse(c->srv, data, len);
  send_chunk_reply(c, data, len);
}

/* eof mode buffers grow geometrically so a small message costs little. */
static struct eof_chunk *eof_chunk_new(size_t cap) {
  struct eof_chunk *ch = malloc(sizeof *ch + cap);
  if (ch) {
    ch->next = NULL;
    ch->len = 0;
    ch->cap = cap;
  }
  return ch;
}

static size_t eof_next_cap(const struct conn *c) {
  size_t cap = c->chunks ? c->chunks->cap * 2 : EOF_FIRST_CHUNK;
  return cap > REVD_CHUNK_MAX ? REVD_CHUNK_MAX : cap;
}

static void eof_alloc(struct conn *c, uv_buf_t *buf) {
  if (!c->chunks || c->chunks->len == c->chunks->cap) {
    struct eof_chunk *ch = eof_chunk_new(eof_next_cap(c));
    if (!ch) {
      *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
      return;
    }
    ch->next = c->chunks;
    c->chunks = ch;
  }
  *buf = uv_buf_init(c->chunks->data + c->chunks->len,
                     (unsigned)(c->chunks->cap - c->chunks->len));
}

/* Text can not be reversed chunk by chunk (a character may straddle two),
 * so Unicode modes join the chunks first: one copy, only for them. */
static int eof_join(struct conn *c) {
  if (!c->chunks || !c->chunks->next)
    return 0;
  struct eof_chunk *whole = eof_chunk_new(c->received);
  if (!whole)
    return UV_ENOMEM;
  size_t end = c->received;
  for (struct eof_chunk *ch = c->chunks; ch; ch = ch->next) {
    end -= ch->len;
    memcpy(whole->data + end, ch->data, ch->len);
  }
  whole->len = c->received;
  free_chunks(c);
  c->chunks = whole;
  return 0;
}

/* Reverses each chunk in place; the list runs newest first, so writing it
 * in list order sends the whole message reversed, with no copy. */
static void eof_reply(struct conn *c) {
  revd_server_t *srv = c->srv;
  c->state = CONN_REPLYING;
  if (srv->opts.reverse != REVD_REVERSE_BYTES && eof_join(c) != 0) {
    conn_fail(c, &srv->stats.resets);
    return;
  }
  unsigned n = 0;
  for (struct eof_chunk *ch = c->chunks; ch; ch = ch->next)
    n++;
  if (c->received == 0) {
    srv->stats.completed++;
    conn_finish(c);
    return;
  }
  uv_buf_t *bufs = malloc(n * sizeof *bufs);
  if (!bufs) {
    conn_fail(c, &srv->stats.resets);
    return;
  }
  unsigned i = 0;
  for (struct eof_chunk *ch = c->chunks; ch; ch = ch->next) {
    count_reverse(srv, ch->data, ch->len);
    bufs[i++] = uv_buf_init(ch->data, (unsigned)ch->len);
  }
  int r = uv_write(&c->write_req, &c->h.stream, bufs, n, reply_write_cb);
  free(bufs); /* libuv keeps its own copy of the array */
  if (r != 0) {
    conn_fail(c, &srv->stats.resets);
    return;
  }
  srv->stats.bytes_out += c->received;
  c->writes_pending++;
  c->queue_seen = uv_stream_get_write_queue_size(&c->h.stream);
  c->close_after_writes = 1;
}

static void eof_input(struct conn *c, size_t len) {
  revd_server_t *srv = c->srv;
  if (c->state != CONN_READING)
    return;
  c->chunks->len += len;
  c->received += len;
  if (c->received > srv->opts.max_message) {
    srv->stats.too_large++;
    free_chunks(c);
    conn_linger(c);
  }
}

static int line_keep(struct conn *c, const char *data, size_t len) {
  if (c->line_len + len > c->line_cap) {
    size_t cap = c->line_cap ? c->line_cap : 256;
    while (cap < c->line_len + len)
      cap *= 2;
    char *p = realloc(c->line, cap);
    if (!p)
      return UV_ENOMEM;
    c->line = p;
    c->line_cap = cap;
  }
  memcpy(c->line + c->line_len, data, len);
  c->line_len += len;
  return 0;
}

/* Reverses one line in place, keeping its '\n' (if any) at the end. */
static void reverse_line(revd_server_t *srv, char *line, size_t len) {
  if (len && line[len - 1] == '\n')
    len--;
  count_reverse(srv, line, len);
}

/* Line mode: answers every complete line in data.  The line carried over
 * from earlier reads (in c->line) goes first; lines wholly inside data are
 * reversed in place and sent as one run; the tail waits in c->line. */
static void line_input(struct conn *c, char *data, size_t len) {
  revd_server_t *srv = c->srv;
  size_t max = srv->opts.max_message;
  if (c->state != CONN_READING)
    return;
  uv_buf_t out[2];
  unsigned nout = 0;
  uint64_t lines = 0;
  size_t pos = 0;
  ssize_t n = 0;
  if (c->line_len) {
    n = revd__frame_line(data, len, c->line_len, max);
    if (n == 0) { /* the carried line goes on growing (within max) */
      if (line_keep(c, data, len) != 0)
        conn_fail(c, &srv->stats.resets);
      return;
    }
    if (n > 0) {
      if (line_keep(c, data, (size_t)n) != 0) {
        conn_fail(c, &srv->stats.resets);
        return;
      }
      reverse_line(srv, c->line, c->line_len);
      out[nout++] = uv_buf_init(c->line, (unsigned)c->line_len);
      lines++;
      pos = (size_t)n;
    }
  }
  size_t run_start = pos;
  while (n >= 0 && pos < len && (n = revd__frame_line(data + pos, len - pos, 0, max)) > 0) {
    reverse_line(srv, data + pos, (size_t)n);
    lines++;
    pos += (size_t)n;
  }
  if (pos > run_start)
    out[nout++] = uv_buf_init(data + run_start, (unsigned)(pos - run_start));
  if (send_line_replies(c, out, nout, lines) != 0) {
    conn_fail(c, &srv->stats.resets);
    return;
  }
  if (nout && out[0].base == c->line)
    c->line_len = 0; /* sent (or copied into a queued write) */
  if (n == REVD__FRAME_TOO_LARGE) {
    srv->stats.too_large++;
    c->line_len = 0;
    conn_linger(c);
  } else if (pos < len && line_keep(c, data + pos, len - pos) != 0) {
    conn_fail(c, &srv->stats.resets);
  }
}

/* A final line without '\n' at EOF is answered without one. */
static void line_eof(struct conn *c) {
  revd_server_t *srv = c->srv;
  if (c->line_len && c->state == CONN_READING) {
    reverse_line(srv, c->line, c->line_len);
    uv_buf_t buf = uv_buf_init(c->line, (unsigned)c->line_len);
    if (send_line_replies(c, &buf, 1, 1) != 0) {
      conn_fail(c, &srv->stats.resets);
      return;
    }
    c->line_len = 0;
  }
  conn_finish(c);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct conn *c = (struct conn *)h;
  (void)suggested;
  if (c->srv->opts.mode == REVD_MODE_EOF && c->state == CONN_READING)
    eof_alloc(c, buf);
  else
    *buf = uv_buf_init(c->srv->readbuf, sizeof c->srv->readbuf);
}

static void on_data(struct conn *c, char *data, size_t len) {
  revd_server_t *srv = c->srv;
  srv->stats.bytes_in += len;
  c->got_bytes = 1;
  /* Input past the message (discarded) is no sign of life; chunk mode's one
   * read comes right after the accept, whose deadline covers it. */
  if (c->state == CONN_READING && srv->opts.mode != REVD_MODE_CHUNK)
    conn_touch(c);
  switch (srv->opts.mode) {
  case REVD_MODE_CHUNK:
    chunk_input(c, data, len);
    break;
  case REVD_MODE_EOF:
    eof_input(c, len);
    break;
  default:
    line_input(c, data, len);
    break;
  }
}

static void on_eof(struct conn *c) {
  revd_server_t *srv = c->srv;
  c->input_eof = 1;
  if (c->state == CONN_READING && srv->opts.mode == REVD_MODE_EOF) {
    eof_reply(c);
  } else if (c->state == CONN_READING && srv->opts.mode == REVD_MODE_LINE) {
    line_eof(c);
  } else if (c->state == CONN_READING) {
    srv->stats.empty++; /* chunk mode: closed before sending anything */
    conn_close(c);
  } else if (c->state == CONN_LINGERING) {
    conn_finish(c);
  }
  /* CONN_REPLYING: the write callback finishes the exchange. */
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct conn *c = (struct conn *)s;
  if (nread > 0)
    on_data(c, buf->base, (size_t)nread);
  else if (nread == UV_EOF)
    on_eof(c);
  else if (nread < 0 && c->state == CONN_LINGERING)
    conn_close(c); /* a reset while draining costs the client nothing */
  else if (nread < 0)
    conn_fail(c, &c->srv->stats.resets);
}

/* ---- accepting -------------------------------------------------------- */

static int conn_init_handle(revd_server_t *srv, struct conn *c) {
  if (srv->listener_kind == LISTENER_UNIX)
    return uv_pipe_init(srv->loop, &c->h.pipe, 0);
  return uv_tcp_init(srv->loop, &c->h.tcp);
}

static void connection_cb(uv_stream_t *listener, int status);

static void spare_close_cb(uv_handle_t *h) {
  revd_server_t *srv = h->data;
  srv->spare_busy = 0;
  srv->handles_open--;
  if (srv->accept_stalled && !srv->closing) {
    srv->accept_stalled = 0;
    connection_cb(&srv->listener.stream, 0);
  }
  maybe_finish_server_close(srv);
}

/* No memory for the connection libuv has accepted: libuv stops watching
 * the listener until uv_accept() takes it, so take it on the spare handle
 * and close it (the client sees a close, not a server gone deaf).  While
 * the spare is closing, its close callback comes back here. */
static void reject_without_memory(revd_server_t *srv) {
  int r = UV_EBUSY;
  if (!srv->spare_busy)
    r = srv->listener_kind == LISTENER_UNIX ? uv_pipe_init(srv->loop, &srv->spare.pipe, 0)
                                            : uv_tcp_init(srv->loop, &srv->spare.tcp);
  if (r != 0) {
    srv->accept_stalled = 1;
    return;
  }
  srv->spare_busy = 1;
  srv->handles_open++;
  srv->spare.handle.data = srv;
  if (uv_accept(&srv->listener.stream, &srv->spare.stream) == 0) {
    srv->stats.rejected_no_memory++;
    srv->stats.rejected++;
  }
  uv_close(&srv->spare.handle, spare_close_cb);
}

static void connection_cb(uv_stream_t *listener, int status) {
  revd_server_t *srv = (revd_server_t *)((char *)listener - offsetof(revd_server_t, listener));
  if (status < 0 || srv->closing)
    return;
  struct conn *c = srv->free_conns;
  if (c) {
    srv->free_conns = c->next;
    srv->nfree_conns--;
  } else if (!(c = calloc(1, sizeof *c))) {
    reject_without_memory(srv);
    return;
  }
  /* The handle and the requests are initialised by libuv; the rest starts at 0. */
  memset(&c->srv, 0, sizeof *c - offsetof(struct conn, srv));
  c->srv = srv;
  if (conn_init_handle(srv, c) != 0) {
    free(c);
    reject_without_memory(srv);
    return;
  }
  srv->handles_open++;
  srv->stats.active++;
  if (uv_accept(listener, &c->h.stream) != 0) {
    conn_close(c);
    return;
  }
  if (srv->opts.max_conns && srv->stats.active > srv->opts.max_conns) {
    srv->stats.rejected++;
    conn_fail(c, &srv->stats.rejected_max_conns);
    return;
  }
  srv->stats.accepted++;
  c->state = CONN_READING;
  c->deadline = deadline_after(srv, srv->opts.idle_timeout_ms);
  list_append(&srv->active, c);
  timer_arm(srv);
  if (srv->opts.mode == REVD_MODE_LINE && srv->listener_kind == LISTENER_TCP)
    uv_tcp_nodelay(&c->h.tcp, 1); /* interactive replies must not wait for an ACK */
  if (uv_read_start(&c->h.stream, alloc_cb, read_cb) != 0)
    conn_fail(c, &srv->stats.resets);
}

/* ---- the server's lifecycle ------------------------------------------- */

void revd_options_init(revd_options_t *opts) {
  memset(opts, 0, sizeof *opts);
  opts->mode = REVD_MODE_CHUNK;
  opts->reverse = REVD_REVERSE_BYTES;
  opts->max_message = (size_t)64 * 1024 * 1024;
  opts->max_conns = 0;
  opts->idle_timeout_ms = 60000;
  opts->linger_ms = 2000;
  opts->backlog = 511;
  opts->drain_timeout_ms = 5000;
  opts->unix_mode = 0660;
  opts->max_conns_per_ip = 0;
  opts->max_buffered = (size_t)(uv_get_total_memory() / 8);
}

static int options_valid(const revd_options_t *o) {
  return o->mode >= REVD_MODE_CHUNK && o->mode <= REVD_MODE_LINE &&
         o->reverse >= REVD_REVERSE_BYTES && o->reverse <= REVD_REVERSE_GRAPHEMES &&
         o->max_message > 0 && o->backlog > 0;
}

int revd_server_new(uv_loop_t *loop, const revd_options_t *opts, revd_server_t **out) {
  if (!loop || !out)
    return UV_EINVAL;
  revd_options_t defaults;
  if (!opts) {
    revd_options_init(&defaults);
    opts = &defaults;
  }
  if (!options_valid(opts))
    return UV_EINVAL;
  revd_server_t *srv = calloc(1, sizeof *srv);
  if (!srv)
    return UV_ENOMEM;
  srv->loop = loop;
  srv->opts = *opts;
  int r = uv_timer_init(loop, &srv->timer);
  if (r != 0) {
    free(srv);
    return r;
  }
  srv->handles_open = 1; /* the timer */
  *out = srv;
  return 0;
}

static void server_handle_close_cb(uv_handle_t *h) {
  revd_server_t *srv = h->data;
  if (h == &srv->listener.handle)
    srv->listener_kind = LISTENER_NONE;
  srv->handles_open--;
  maybe_finish_server_close(srv);
}

static void listener_close(revd_server_t *srv) {
  if (!srv->listener_open)
    return;
  srv->listener_open = 0;
  srv->listener.handle.data = srv;
  uv_close(&srv->listener.handle, server_handle_close_cb);
}

static int listener_start(revd_server_t *srv, int r) {
  if (r == 0)
    r = uv_listen(&srv->listener.stream, srv->opts.backlog, connection_cb);
  if (r != 0)
    listener_close(srv);
  return r;
}

static int listener_check(const revd_server_t *srv) {
  if (srv->closing)
    return UV_EINVAL;
  return srv->listener_kind != LISTENER_NONE ? UV_EBUSY : 0;
}

/* libuv 1.44 has no flag for it, so set it on the socket before bind. */
static int set_reuse_port(uv_tcp_t *tcp) {
  uv_os_fd_t fd;
  int on = 1;
  int r = uv_fileno((uv_handle_t *)tcp, &fd);
  if (r == 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0)
    r = uv_translate_sys_error(errno);
  return r;
}

int revd_server_listen(revd_server_t *srv, const struct sockaddr *addr) {
  int r = listener_check(srv);
  if (r != 0)
    return r;
  if (addr->sa_family == AF_UNIX)
    return revd_server_listen_unix(srv, ((const struct sockaddr_un *)addr)->sun_path);
  if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)
    return UV_EAFNOSUPPORT;
  r = uv_tcp_init_ex(srv->loop, &srv->listener.tcp, addr->sa_family);
  if (r != 0)
    return r;
  srv->listener_kind = LISTENER_TCP;
  srv->listener_open = 1;
  srv->handles_open++;
  r = srv->opts.reuse_port ? set_reuse_port(&srv->listener.tcp) : 0;
  if (r == 0)
    r = uv_tcp_bind(&srv->listener.tcp, addr, 0);
  return listener_start(srv, r);
}

int revd_server_listen_unix(revd_server_t *srv, const char *path) {
  int r = listener_check(srv);
  if (r != 0)
    return r;
  /* libuv 1.44 truncates a long path silently (binding somewhere else, which
   * close then fails to unlink), and "" binds an unreachable abstract name. */
  if (path[0] == '\0')
    return UV_EINVAL;
  if (strlen(path) >= sizeof ((struct sockaddr_un *)NULL)->sun_path)
    return UV_ENAMETOOLONG;
  char *copy = strdup(path);
  if (!copy)
    return UV_ENOMEM;
  r = uv_pipe_init(srv->loop, &srv->listener.pipe, 0);
  if (r != 0) {
    free(copy);
    return r;
  }
  srv->listener_kind = LISTENER_UNIX;
  srv->listener_open = 1;
  srv->handles_open++;
  r = uv_pipe_bind(&srv->listener.pipe, path);
  if (r == 0 && chmod(path, srv->opts.unix_mode) != 0)
    r = uv_translate_sys_error(errno);
  r = listener_start(srv, r);
  if (r == 0) {
    free(srv->unix_path);
    srv->unix_path = copy; /* ours now: removed at close */
  } else {
    free(copy);
  }
  return r;
}

/* The socket's family decides the handle: Unix sockets need a uv_pipe_t. */
int revd_server_listen_fd(revd_server_t *srv, uv_os_sock_t fd) {
  int r = listener_check(srv);
  if (r != 0)
    return r;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int type;
  socklen_t type_len = sizeof type;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
      getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len) != 0)
    return uv_translate_sys_error(errno);
  if (type != SOCK_STREAM)
    return UV_EINVAL;
  if (ss.ss_family == AF_UNIX) {
    r = uv_pipe_init(srv->loop, &srv->listener.pipe, 0);
    if (r != 0)
      return r;
    srv->listener_kind = LISTENER_UNIX;
    srv->listener_open = 1;
    srv->handles_open++;
    return listener_start(srv, uv_pipe_open(&srv->listener.pipe, fd));
  }
  if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
    return UV_EAFNOSUPPORT;
  r = uv_tcp_init(srv->loop, &srv->listener.tcp);
  if (r != 0)
    return r;
  srv->listener_kind = LISTENER_TCP;
  srv->listener_open = 1;
  srv->handles_open++;
  return listener_start(srv, uv_tcp_open(&srv->listener.tcp, fd));
}

int revd_server_getsockname(const revd_server_t *srv, struct sockaddr_storage *out) {
  if (srv->listener_kind != LISTENER_TCP || !srv->listener_open)
    return UV_EINVAL;
  int len = sizeof *out;
  return uv_tcp_getsockname(&srv->listener.tcp, (struct sockaddr *)out, &len);
}

void revd_server_stats(const revd_server_t *srv, revd_stats_t *out) { *out = srv->stats; }

static void maybe_finish_server_close(revd_server_t *srv) {
  if (!srv->closing)
    return;
  if (srv->stats.active == 0 && !uv_is_closing((uv_handle_t *)&srv->timer)) {
    srv->timer.data = srv;
    uv_close((uv_handle_t *)&srv->timer, server_handle_close_cb);
  }
  if (srv->handles_open > 0)
    return;
  void (*cb)(revd_server_t *, void *) = srv->close_cb;
  void *arg = srv->close_arg;
  revd_server_t *volatile token = srv; /* only an identity once freed */
  while (srv->free_conns) {
    struct conn *next = srv->free_conns->next;
    free(srv->free_conns);
    srv->free_conns = next;
  }
  free(srv->unix_path);
  free(srv);
  if (cb)
    cb(token, arg);
}

/* Exchanges under way may finish within linger_ms; connections owed
 * nothing get a lingering close, so no client sees a reset. */
static void conn_wind_down(struct conn *c) {
  revd_server_t *srv = c->srv;
  int owed = srv->opts.mode != REVD_MODE_LINE &&
             (c->state == CONN_REPLYING || (c->state == CONN_READING && c->got_bytes));
  if (!owed) {
    conn_linger(c);
    return;
  }
  list_remove(c);
  c->deadline = deadline_after(srv, srv->opts.drain_timeout_ms ? srv->opts.drain_timeout_ms : 1);
  list_append(&srv->lingering, c);
}

void revd_server_close(revd_server_t *srv, void (*cb)(revd_server_t *, void *), void *arg) {
  if (srv->closing)
    return;
  srv->closing = 1;
  srv->close_cb = cb;
  srv->close_arg = arg;
  listener_close(srv);
  if (srv->unix_path)
    unlink(srv->unix_path);
  while (srv->active.head)
    conn_wind_down(srv->active.head);
  uv_timer_stop(&srv->timer);
  timer_arm(srv);
  maybe_finish_server_close(srv);
}
