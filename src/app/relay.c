#include "relay.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Past this much unsent input, stop reading stdin until the socket drains:
 * a fast producer must not grow memory without bound. */
#define RELAY_HIGH_WATER (1024 * 1024)

struct relay {
  union {
    uv_tty_t tty;
    uv_pipe_t pipe;
    uv_handle_t handle;
    uv_stream_t stream;
  } in;
  int in_open, in_paused;
  revd_stream_t *out;
  unsigned timeout_ms;
  int status;
  const char *what;
  size_t sent, received; /* equal at the end when every line was answered */
  int out_errno;         /* why standard output failed, if it did */
  char buf[64 * 1024];
};

int relay_wanted(void) {
  uv_handle_type t = uv_guess_handle(0);
  return t == UV_TTY || t == UV_NAMED_PIPE;
}

static void stdin_close(struct relay *r) {
  if (r->in_open) {
    r->in_open = 0;
    uv_close(&r->in.handle, NULL);
  }
}

static void stdin_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct relay *r = h->data;
  (void)suggested;
  *buf = uv_buf_init(r->buf, sizeof r->buf);
}

static void stdin_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  struct relay *r = st->data;
  if (nread > 0) {
    if (revd_stream_write(r->out, buf->base, (size_t)nread) != 0) {
      stdin_close(r);
      return;
    }
    r->sent += (size_t)nread;
    if (revd_stream_queued(r->out) > RELAY_HIGH_WATER) {
      uv_read_stop(st);
      r->in_paused = 1;
    }
  } else if (nread < 0) {
    if (nread != UV_EOF)
      fprintf(stderr, "revc: read standard input: %s\n", revd_strerror((int)nread));
    /* All input sent: half-close, and give the server timeout_ms to finish. */
    stdin_close(r);
    revd_stream_end(r->out);
    revd_stream_set_timeout(r->out, r->timeout_ms);
  }
}

static void on_reply(revd_stream_t *s, const char *data, size_t len, void *arg) {
  struct relay *r = arg;
  (void)s;
  r->received += len;
  /* interactive: each reply shows as it arrives */
  if ((fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0) && !r->out_errno)
    r->out_errno = errno;
}

static void on_drain(revd_stream_t *s, void *arg) {
  struct relay *r = arg;
  (void)s;
  if (r->in_paused && r->in_open) {
    r->in_paused = 0;
    uv_read_start(&r->in.stream, stdin_alloc, stdin_read);
  }
}

static void on_done(revd_stream_t *s, int status, const char *what, void *arg) {
  struct relay *r = arg;
  (void)s;
  r->status = status;
  r->what = what;
  stdin_close(r); /* the server is gone: nothing more to send */
}

static int stdin_open(uv_loop_t *loop, struct relay *r) {
  int err;
  if (uv_guess_handle(0) == UV_TTY)
    err = uv_tty_init(loop, &r->in.tty, 0, 0);
  else if ((err = uv_pipe_init(loop, &r->in.pipe, 0)) == 0 && (err = uv_pipe_open(&r->in.pipe, 0)) != 0)
    uv_close(&r->in.handle, NULL);
  if (err == 0) {
    r->in.handle.data = r;
    r->in_open = 1;
    err = uv_read_start(&r->in.stream, stdin_alloc, stdin_read);
  }
  return err;
}

int relay_stdin(const struct sockaddr *addr, const char *where, unsigned timeout_ms) {
  static const struct revd_stream_callbacks cbs = {on_reply, on_drain, on_done};
  static struct relay r; /* one per process; 64 KiB buffer off the stack */
  uv_loop_t loop;
  memset(&r, 0, sizeof r);
  r.timeout_ms = timeout_ms;
  int err = uv_loop_init(&loop);
  if (err == 0)
    err = revd_stream_open(&loop, addr, &cbs, &r, &r.out);
  if (err == 0 && (err = stdin_open(&loop, &r)) != 0)
    revd_stream_abort(r.out);
  if (err != 0 && r.out == NULL) {
    fprintf(stderr, "revc: connect %s: %s\n", where, revd_strerror(err));
    return 1;
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  if (err != 0) {
    fprintf(stderr, "revc: read standard input: %s\n", revd_strerror(err));
    return 1;
  }
  if (r.status != 0) {
    fprintf(stderr, "revc: %s %s: %s\n", r.what ? r.what : "reply", where, revd_strerror(r.status));
    return 1;
  }
  if (r.out_errno) {
    fprintf(stderr, "revc: write standard output: %s\n", strerror(r.out_errno));
    clearerr(stdout); /* reported */
    return 1;
  }
  if (r.received != r.sent) { /* a line past --max-message: the server just closed */
    fprintf(stderr, "revc: reply %s: incomplete: %zu of %zu bytes came back before the server closed\n",
            where, r.received, r.sent);
    return 1;
  }
  return 0;
}
