/* client.c — one exchange on its own connection: connect, send, half-close,
 * read until the server closes.  Used by revc; embeddable like the server. */
#include <stdlib.h>
#include <string.h>

#include "revd.h"

#define DEFAULT_MAX_REPLY ((size_t)64 * 1024 * 1024)

struct exchange {
  uv_tcp_t tcp;
  uv_connect_t connect_req;
  uv_write_t write_req;
  uv_shutdown_t shutdown_req;
  uv_timer_t timer;
  int handles_open;
  int done;
  int status;
  const char *what;
  char *msg;
  size_t msg_len;
  char *reply;
  size_t reply_len, reply_cap, max_reply;
  revd_exchange_cb cb;
  void *arg;
};

static void exchange_close_cb(uv_handle_t *h) {
  struct exchange *x = h->data;
  if (--x->handles_open > 0)
    return;
  if (x->cb)
    x->cb(x->status, x->what, x->reply ? x->reply : "", x->reply_len, x->arg);
  free(x->msg);
  free(x->reply);
  free(x);
}

/* Ends the exchange once: the callback fires after both handles closed,
 * so the caller may close its loop from inside it. */
static void exchange_end(struct exchange *x, int status, const char *what) {
  if (x->done)
    return;
  x->done = 1;
  x->status = status;
  x->what = status ? what : NULL;
  uv_close((uv_handle_t *)&x->tcp, exchange_close_cb);
  uv_close((uv_handle_t *)&x->timer, exchange_close_cb);
}

static void timeout_cb(uv_timer_t *t) { exchange_end(t->data, UV_ETIMEDOUT, "timeout"); }

static void reply_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct exchange *x = h->data;
  if (x->reply_cap - x->reply_len < 4096 && x->reply_cap < x->max_reply + 1) {
    size_t cap = x->reply_cap ? x->reply_cap * 2 : 64 * 1024;
    if (cap > x->max_reply + 1)
      cap = x->max_reply + 1; /* one byte past the bound tells "too long" */
    char *p = realloc(x->reply, cap);
    if (p) {
      x->reply = p;
      x->reply_cap = cap;
    }
  }
  (void)suggested;
  *buf = uv_buf_init(x->reply + x->reply_len, (unsigned)(x->reply_cap - x->reply_len));
}

static void reply_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct exchange *x = s->data;
  (void)buf;
  if (nread == UV_EOF) {
    exchange_end(x, 0, NULL);
  } else if (nread < 0) {
    exchange_end(x, (int)nread, "read");
  } else {
    x->reply_len += (size_t)nread;
    if (x->reply_len > x->max_reply)
      exchange_end(x, UV_E2BIG, "read");
  }
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
  struct exchange *x = req->data;
  if (status < 0 && status != UV_ECANCELED)
    exchange_end(x, status, "write");
}

static void write_cb(uv_write_t *req, int status) {
  struct exchange *x = req->data;
  if (status < 0 && status != UV_ECANCELED)
    exchange_end(x, status, "write");
}

static void connect_cb(uv_connect_t *req, int status) {
  struct exchange *x = req->data;
  if (status == UV_ECANCELED)
    return;
  if (status < 0) {
    exchange_end(x, status, "connect");
    return;
  }
  uv_stream_t *s = (uv_stream_t *)&x->tcp;
  uv_buf_t buf = uv_buf_init(x->msg, (unsigned)x->msg_len);
  int r = uv_read_start(s, reply_alloc_cb, reply_read_cb);
  if (r == 0 && x->msg_len)
    r = uv_write(&x->write_req, s, &buf, 1, write_cb);
  /* Half-close after the message: works with chunk and eof mode alike. */
  if (r == 0)
    r = uv_shutdown(&x->shutdown_req, s, shutdown_cb);
  if (r != 0)
    exchange_end(x, r, "write");
}

/* A call that fails never fires cb: close what was opened, silently. */
static void exchange_abandon(struct exchange *x) {
  x->cb = NULL;
  x->done = 1;
  uv_close((uv_handle_t *)&x->tcp, exchange_close_cb);
  if (x->handles_open == 2)
    uv_close((uv_handle_t *)&x->timer, exchange_close_cb);
}

static struct exchange *exchange_new(const char *msg, size_t len) {
  struct exchange *x = calloc(1, sizeof *x);
  if (!x)
    return NULL;
  x->msg = malloc(len ? len : 1);
  if (!x->msg) {
    free(x);
    return NULL;
  }
  if (len)
    memcpy(x->msg, msg, len);
  x->msg_len = len;
  x->tcp.data = x->timer.data = x;
  x->connect_req.data = x->write_req.data = x->shutdown_req.data = x;
  return x;
}

int revd_exchange(uv_loop_t *loop, const struct sockaddr *addr, const char *msg, size_t len,
                  unsigned timeout_ms, size_t max_reply, revd_exchange_cb cb, void *arg) {
  if (!loop || !addr || !cb || (len && !msg))
    return UV_EINVAL;
  struct exchange *x = exchange_new(msg, len);
  if (!x)
    return UV_ENOMEM;
  x->max_reply = max_reply ? max_reply : DEFAULT_MAX_REPLY;
  x->cb = cb;
  x->arg = arg;
  int r = uv_tcp_init(loop, &x->tcp);
  if (r != 0) {
    free(x->msg);
    free(x);
    return r;
  }
  x->handles_open = 1;
  r = uv_timer_init(loop, &x->timer);
  if (r == 0) {
    x->handles_open = 2;
    r = uv_tcp_connect(&x->connect_req, &x->tcp, addr, connect_cb);
  }
  if (r == 0 && timeout_ms)
    r = uv_timer_start(&x->timer, timeout_cb, timeout_ms, 0);
  if (r != 0)
    exchange_abandon(x);
  return r;
}
