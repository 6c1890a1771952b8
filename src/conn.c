/* conn.c — a connection's life: start, the readers, finish, lingering
 * close, close.  It knows nothing of framing: the mode's protocol
 * (srv->proto) reads the message and calls back here (and into write.c) to
 * reply, finish or give up.
 *
 * Input has two readers, swapped at the phase change as nginx swaps
 * rev->handler: the message reader hands bytes to the mode; once the message
 * is complete (or the connection lingers) the discard reader takes over, so
 * no mode ever sees input past its message. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "internal.h"

#define FREE_CONNS_MAX 256 /* closed conns kept for reuse: no malloc per accept */

/* ---- closing ------------------------------------------------------------ */

static void conn_close_cb(uv_handle_t *h) {
  struct conn *c = container_of(h, struct conn, h.handle);
  revd_server_t *srv = conn_server(c);
  srv->proto->release(c);
  if (srv->conn_ip_offset)
    revd__ip_release(c);
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
void revd__conn_close(struct conn *c) {
  if (c->phase == CONN_CLOSING)
    return;
  revd__conn_unlist(c);
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
  if (c->h.handle.type == UV_TCP && uv_fileno(&c->h.handle, &fd) == 0)
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  revd__conn_close(c);
}

/* Gives up on a reply that is not complete. */
void revd__conn_cut_short(struct conn *c) {
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
  revd__conn_close(c);
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
    c->reading = 0; /* libuv stops reading at EOF */
    if (c->phase == CONN_LINGERING)
      revd__conn_finish(c);
    /* replying: the write callback finishes the exchange */
  } else if (nread < 0 && c->phase == CONN_LINGERING) {
    revd__conn_close(c); /* a reset while draining costs the client nothing */
  } else if (nread < 0) {
    revd__conn_fail(c, &srv->stats.resets);
  }
}

/* Sets the reader, starting to read if libuv is not yet.  libuv 1.44 has
 * no call to change a reading stream's callbacks, and a stop and a start
 * cost two epoll_ctl (libuv drops the fd's registration on stop); it calls
 * through these two fields of uv_stream_t on every read, so setting them
 * swaps the reader, as nginx sets rev->handler.  What that gives up: it
 * leans on libuv's public stream layout, stable through 1.x. */
static int read_with(struct conn *c, uv_alloc_cb alloc, uv_read_cb read) {
  c->read_paused = 0;
  if (c->reading) {
    c->h.stream.alloc_cb = alloc;
    c->h.stream.read_cb = read;
    return 0;
  }
  int r = uv_read_start(&c->h.stream, alloc, read);
  c->reading = r == 0;
  return r;
}

void revd__conn_pause_reading(struct conn *c) {
  uv_read_stop(&c->h.stream);
  c->reading = 0;
  c->read_paused = 1;
}

static void message_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

void revd__conn_resume_reading(struct conn *c) {
  if (read_with(c, message_alloc_cb, message_read_cb) != 0)
    revd__conn_fail(c, &conn_server(c)->stats.resets);
}

void revd__conn_ack_now(struct conn *c) {
  uv_os_fd_t fd;
  int on = 1;
  if (c->h.handle.type == UV_TCP && uv_fileno(&c->h.handle, &fd) == 0)
    setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);
}

/* One non-blocking read, in libuv's terms: the bytes read, 0 when the
 * socket is dry now, UV_EOF, or another negative UV_E* code.  libuv 1.44
 * has no uv_try_read: recv(2) it is. */
static ssize_t recv_now(struct conn *c, char *buf, size_t room) {
  uv_os_fd_t fd;
  int r = uv_fileno(&c->h.handle, &fd);
  if (r != 0)
    return r;
  ssize_t n = recv(fd, buf, room, MSG_DONTWAIT);
  if (n >= 0)
    return n > 0 ? n : UV_EOF;
  return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : uv_translate_sys_error(errno);
}

ssize_t revd__conn_read_more(struct conn *c, char *buf, size_t room) {
  if (c->input_eof)
    return UV_EOF;
  ssize_t n = recv_now(c, buf, room);
  if (n > 0)
    conn_server(c)->stats.bytes_in += (size_t)n;
  else if (n == UV_EOF)
    c->input_eof = 1;
  return n;
}

int revd__conn_input_waiting(struct conn *c) {
  uv_os_fd_t fd;
  int n = 0;
  return uv_fileno(&c->h.handle, &fd) == 0 && ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

static void message_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct conn *c = container_of(s, struct conn, h.stream);
  revd_server_t *srv = conn_server(c);
  if (nread > 0) {
    srv->stats.bytes_in += (size_t)nread;
    srv->proto->data(c, buf->base, (size_t)nread);
    /* Message complete and the connection stays (a reply still queued):
     * from now on input is past the message. */
    if (c->phase == CONN_REPLYING && (c->reading || !c->input_eof) &&
        read_with(c, shared_alloc_cb, discard_read_cb) != 0)
      revd__conn_fail(c, &srv->stats.resets);
  } else if (nread == UV_EOF) {
    c->input_eof = 1;
    c->reading = 0; /* libuv stops reading at EOF */
    srv->proto->eof(c);
  } else if (nread == UV_ENOBUFS) { /* the mode's buffer was refused, or no memory */
    revd__conn_fail_error(c, c->over_budget ? UV_ENOBUFS : UV_ENOMEM);
  } else if (nread < 0) {
    revd__conn_fail(c, &srv->stats.resets);
  }
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
  revd__conn_deadline(c, DEADLINE_LINGER, srv->opts.linger_ms ? srv->opts.linger_ms : 1);
  if (c->input_eof) {
    revd__conn_finish(c); /* nothing more can come: close once the writes are out */
    return;
  }
  if (shutdown_write_side(c) != 0 || read_with(c, shared_alloc_cb, discard_read_cb) != 0)
    revd__conn_close(c);
}

void revd__conn_message_done(struct conn *c) {
  if (c->phase == CONN_READING)
    c->phase = CONN_REPLYING;
}

/* The exchange is over.  A close with unread input, or input that comes
 * after it, draws a reset, and a reset can wipe the reply.  So close at
 * once only when no more input can come: the client half-closed (one
 * non-blocking read looks: an EOF sent with the message is usually there
 * by now), or the mode judged that it sent everything (input_drained,
 * nginx's heuristic: linger only when more data may come).  Anyone else
 * gets a lingering close. */
void revd__conn_finish(struct conn *c) {
  revd_server_t *srv = conn_server(c);
  if (c->phase == CONN_CLOSING)
    return;
  if (c->writes_pending) {
    c->close_after_writes = 1;
    c->input_drained = 0; /* that was then: only an EOF will say so later */
    return;
  }
  if (!c->input_drained)
    revd__conn_read_more(c, srv->readbuf, sizeof srv->readbuf); /* notes an EOF */
  if (c->input_eof || c->input_drained)
    revd__conn_close(c);
  else
    revd__conn_linger(c);
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
  if (srv->conn_ip_offset)
    *revd__conn_ip_slot(c) = NULL;
  srv->handles_open++;
  srv->stats.active++;
  return c;
}

/* nginx's deferred accept: the message usually came with the connection
 * (TCP_DEFER_ACCEPT makes sure of it), so read it now, exactly as the read
 * callback would get it, instead of registering with the loop and waiting
 * a turn for readiness. */
static void read_at_once(struct conn *c) {
  uv_buf_t buf;
  message_alloc_cb(&c->h.handle, REVD_CHUNK_MAX, &buf);
  if (buf.len == 0) {
    message_read_cb(&c->h.stream, UV_ENOBUFS, &buf);
    return;
  }
  ssize_t n = recv_now(c, buf.base, buf.len);
  if (n != 0) /* 0: nothing yet, the loop will say when */
    message_read_cb(&c->h.stream, n, &buf);
}

void revd__conn_start(struct conn *c) {
  revd_server_t *srv = conn_server(c);
  srv->stats.accepted++;
  c->phase = CONN_READING;
  revd__conn_message_starts(c);
  revd__conn_deadline(c, DEADLINE_IDLE, srv->opts.idle_timeout_ms);
  if (srv->proto->interactive && c->h.handle.type == UV_TCP)
    uv_tcp_nodelay(&c->h.tcp, 1);
  read_at_once(c);
  if (c->phase == CONN_READING && !c->reading && !c->read_paused && !c->input_eof)
    revd__conn_resume_reading(c);
}

/* Exchanges under way may finish within drain_timeout_ms: a message begun,
 * or (in a mode whose client sends its message at once) one that has
 * arrived but was not read yet.  Connections owed nothing get a lingering
 * close, so no client sees a reset. */
void revd__conn_wind_down(struct conn *c) {
  revd_server_t *srv = conn_server(c);
  int owed = c->phase == CONN_REPLYING ||
             (c->phase == CONN_READING &&
              (srv->proto->owes_reply(c) || (!srv->proto->interactive && revd__conn_input_waiting(c))));
  if (owed)
    revd__conn_drain(c);
  else
    revd__conn_linger(c);
}

void revd__conn_free_all(revd_server_t *srv) {
  while (srv->free_conns) {
    struct conn *next = srv->free_conns->next;
    free(srv->free_conns);
    srv->free_conns = next;
  }
  srv->nfree_conns = 0;
}

