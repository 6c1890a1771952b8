/* client.c — the client side: a stream (connect, write as you go, half-close,
 * replies handed over as they arrive) and, on top of it, one whole exchange
 * per connection.  Used by revc; embeddable like the server. */
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "internal.h"

#define DEFAULT_MAX_REPLY ((size_t)64 * 1024 * 1024)
#define STREAM_READ_SIZE (64 * 1024)

struct revd_stream {
  union revd__handle h;
  uv_connect_t connect_req;
  uv_shutdown_t shutdown_req;
  uv_timer_t timer;
  struct revd_stream_callbacks cbs;
  void *arg;
  int handles_open;
  int done;
  int connecting;  /* connect_cb has not run yet */
  int end_pending; /* revd_stream_end() while connecting: shut down once connected */
  int status;
  const char *what;
  size_t queued; /* bytes handed to revd_stream_write() not yet written */
  char readbuf[STREAM_READ_SIZE];
};

/* A write request with its bytes beside it; write_cb finds the stream from
 * req.handle, so no pointer back. */
struct stream_write {
  uv_write_t req;
  size_t len;
  char data[];
};

/* One of the stream's two handles closed; the last frees the stream. */
static void stream_handle_closed(revd_stream_t *s) {
  if (--s->handles_open > 0)
    return;
  if (s->cbs.on_done)
    s->cbs.on_done(s, s->status, s->what, s->arg);
  free(s);
}

static void stream_close_cb(uv_handle_t *h) {
  stream_handle_closed(container_of(h, revd_stream_t, h.handle));
}

static void timer_close_cb(uv_handle_t *h) {
  stream_handle_closed(container_of((uv_timer_t *)h, revd_stream_t, timer));
}

/* Ends the stream once; on_done fires after both handles closed, so the
 * caller may close its loop from inside it. */
static void stream_end(revd_stream_t *s, int status, const char *what) {
  if (s->done)
    return;
  s->done = 1;
  s->status = status;
  s->what = status ? what : NULL;
  uv_close(&s->h.handle, stream_close_cb);
  uv_close((uv_handle_t *)&s->timer, timer_close_cb);
}

static void timeout_cb(uv_timer_t *t) {
  stream_end(container_of(t, revd_stream_t, timer), UV_ETIMEDOUT, "timeout");
}

static void stream_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  revd_stream_t *s = container_of(h, revd_stream_t, h.handle);
  (void)suggested;
  *buf = uv_buf_init(s->readbuf, sizeof s->readbuf);
}

static void stream_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  revd_stream_t *s = container_of(st, revd_stream_t, h.stream);
  if (nread == UV_EOF)
    stream_end(s, 0, NULL);
  else if (nread < 0)
    stream_end(s, (int)nread, "read");
  else if (nread > 0 && s->cbs.on_data)
    s->cbs.on_data(s, buf->base, (size_t)nread, s->arg);
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
  revd_stream_t *s = container_of(req, revd_stream_t, shutdown_req);
  /* A server that reset the connection (e.g. refusing it past --max-conns)
   * makes the half-close fail with ENOTCONN: say what really happened. */
  if (status == UV_ENOTCONN)
    stream_end(s, UV_ECONNRESET, "read");
  else if (status < 0 && status != UV_ECANCELED)
    stream_end(s, status, "write");
}

static void connect_cb(uv_connect_t *req, int status) {
  revd_stream_t *s = container_of(req, revd_stream_t, connect_req);
  s->connecting = 0;
  if (status == UV_ECANCELED)
    return;
  if (status < 0) {
    stream_end(s, status, "connect");
    return;
  }
  int r = uv_read_start(&s->h.stream, stream_alloc_cb, stream_read_cb);
  if (r != 0) {
    stream_end(s, r, "read");
    return;
  }
  if (s->end_pending && (r = uv_shutdown(&s->shutdown_req, &s->h.stream, shutdown_cb)) != 0)
    stream_end(s, r, "write");
}

static void write_cb(uv_write_t *req, int status) {
  struct stream_write *w = container_of(req, struct stream_write, req);
  revd_stream_t *s = container_of(req->handle, revd_stream_t, h.stream);
  s->queued -= w->len;
  free(w);
  if (status == UV_ECANCELED)
    return;
  if (status < 0)
    stream_end(s, status, "write");
  else if (s->queued == 0 && s->cbs.on_drain && !s->done)
    s->cbs.on_drain(s, s->arg);
}

static int handle_init(uv_loop_t *loop, revd_stream_t *s, int family) {
  if (family == AF_UNIX)
    return uv_pipe_init(loop, &s->h.pipe, 0);
  if (family == AF_INET || family == AF_INET6)
    return uv_tcp_init(loop, &s->h.tcp);
  return UV_EAFNOSUPPORT;
}

static void start_connect(revd_stream_t *s, const struct sockaddr *addr, int *err) {
  s->connecting = 1;
  if (addr->sa_family == AF_UNIX) {
    /* uv_pipe_connect reports failures through connect_cb only. */
    uv_pipe_connect(&s->connect_req, &s->h.pipe, ((const struct sockaddr_un *)addr)->sun_path,
                    connect_cb);
    *err = 0;
  } else {
    *err = uv_tcp_connect(&s->connect_req, &s->h.tcp, addr, connect_cb);
  }
}

/* A call that fails never fires a callback: close what was opened, silently. */
static void stream_abandon(revd_stream_t *s) {
  s->cbs.on_done = NULL;
  s->done = 1;
  uv_close(&s->h.handle, stream_close_cb);
  if (s->handles_open == 2)
    uv_close((uv_handle_t *)&s->timer, timer_close_cb);
}

int revd_stream_open(uv_loop_t *loop, const struct sockaddr *addr,
                     const struct revd_stream_callbacks *cbs, void *arg, revd_stream_t **out) {
  if (!loop || !addr || !cbs || !cbs->on_done || !out)
    return UV_EINVAL;
  revd_stream_t *s = calloc(1, sizeof *s);
  if (!s)
    return UV_ENOMEM;
  s->cbs = *cbs;
  s->arg = arg;
  int r = handle_init(loop, s, addr->sa_family);
  if (r != 0) {
    free(s);
    return r;
  }
  s->handles_open = 1;
  r = uv_timer_init(loop, &s->timer);
  if (r == 0) {
    s->handles_open = 2;
    start_connect(s, addr, &r);
  }
  if (r != 0) {
    stream_abandon(s);
    return r;
  }
  *out = s;
  return 0;
}

int revd_stream_write(revd_stream_t *s, const char *data, size_t len) {
  if (s->done || s->end_pending)
    return UV_EPIPE;
  if (len == 0)
    return 0;
  struct stream_write *w = malloc(sizeof *w + len);
  if (!w)
    return UV_ENOMEM;
  w->len = len;
  memcpy(w->data, data, len);
  uv_buf_t buf = uv_buf_init(w->data, (unsigned)len);
  /* While connecting, libuv queues the write and sends it once connected. */
  int r = uv_write(&w->req, &s->h.stream, &buf, 1, write_cb);
  if (r != 0) {
    free(w);
    /* A Unix socket whose connect failed is not writable (UV_EPIPE), yet
     * uv_pipe_connect reports why only to connect_cb: leave it to that. */
    return r == UV_EPIPE && s->connecting ? 0 : r;
  }
  s->queued += len;
  return 0;
}

size_t revd_stream_queued(const revd_stream_t *s) { return s->queued; }

int revd_stream_end(revd_stream_t *s) {
  if (s->done)
    return UV_EPIPE;
  /* libuv 1.44 loses a shutdown made while connecting with nothing queued
   * (it stops watching for POLLOUT once connected and never drains), and
   * refuses one on a Unix socket whose connect failed: connect_cb does it. */
  if (s->connecting) {
    if (s->end_pending)
      return UV_ENOTCONN; /* as uv_shutdown() says twice */
    s->end_pending = 1;
    return 0;
  }
  return uv_shutdown(&s->shutdown_req, &s->h.stream, shutdown_cb);
}

int revd_stream_set_timeout(revd_stream_t *s, unsigned timeout_ms) {
  if (s->done)
    return UV_EPIPE;
  if (timeout_ms == 0)
    return uv_timer_stop(&s->timer);
  return uv_timer_start(&s->timer, timeout_cb, timeout_ms, 0);
}

void revd_stream_abort(revd_stream_t *s) { stream_end(s, UV_ECANCELED, "abort"); }

/* ---- one exchange: a stream that sends one message and keeps the reply -- */

struct exchange {
  char *reply;
  size_t reply_len, reply_cap, max_reply;
  revd_exchange_cb cb;
  void *arg;
};

static void exchange_data(revd_stream_t *s, const char *data, size_t len, void *arg) {
  struct exchange *x = arg;
  if (len > x->max_reply - x->reply_len) {
    revd_stream_abort(s);
    x->max_reply = 0; /* tells exchange_done why */
    return;
  }
  if (x->reply_len + len > x->reply_cap) {
    size_t cap = x->reply_cap ? x->reply_cap : 4096;
    while (cap < x->reply_len + len)
      cap *= 2;
    char *p = realloc(x->reply, cap);
    if (!p) {
      revd_stream_abort(s);
      return;
    }
    x->reply = p;
    x->reply_cap = cap;
  }
  memcpy(x->reply + x->reply_len, data, len);
  x->reply_len += len;
}

static void exchange_done(revd_stream_t *s, int status, const char *what, void *arg) {
  struct exchange *x = arg;
  (void)s;
  if (status == UV_ECANCELED) {
    status = x->max_reply == 0 ? UV_E2BIG : UV_ENOMEM;
    what = "read";
  }
  x->cb(status, what, x->reply ? x->reply : "", x->reply_len, x->arg);
  free(x->reply);
  free(x);
}

int revd_exchange(uv_loop_t *loop, const struct sockaddr *addr, const char *msg, size_t len,
                  unsigned timeout_ms, size_t max_reply, revd_exchange_cb cb, void *arg) {
  static const struct revd_stream_callbacks cbs = {
      .on_data = exchange_data, .on_drain = NULL, .on_done = exchange_done};
  if (!cb || (len && !msg))
    return UV_EINVAL;
  struct exchange *x = calloc(1, sizeof *x);
  if (!x)
    return UV_ENOMEM;
  x->max_reply = max_reply ? max_reply : DEFAULT_MAX_REPLY;
  x->cb = cb;
  x->arg = arg;
  revd_stream_t *s;
  int r = revd_stream_open(loop, addr, &cbs, x, &s);
  if (r != 0) {
    free(x);
    return r;
  }
  /* Half-close after the message: works with chunk and eof mode alike. */
  r = revd_stream_write(s, msg, len);
  if (r == 0)
    r = revd_stream_end(s);
  if (r == 0 && timeout_ms)
    r = revd_stream_set_timeout(s, timeout_ms);
  if (r != 0) {
    /* Opened but failed: the stream closes without calling back. */
    s->cbs.on_done = NULL;
    revd_stream_abort(s);
    free(x);
  }
  return r;
}
