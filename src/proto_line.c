/* proto_line.c — line mode: each '\n'-terminated line is a message and is
 * answered at once, '\n' kept at the end; a final line without '\n' at EOF
 * counts too; the connection stays open until the client closes.
 *
 * Lines wholly inside one read are reversed in place in the server's read
 * buffer and sent together; only a line split across reads is carried over,
 * by the framer (framing.c), whose state is allocated just for that. */
#include <stdlib.h>

#include "framing.h"
#include "internal.h"

/* Reverses one line in place, keeping its '\n' (if any) at the end. */
static void reverse_line(revd_server_t *srv, char *line, size_t len) {
  if (len && line[len - 1] == '\n')
    len--;
  revd__reverse_counted(srv, line, len);
}

/* A line carried over between reads: the framer, and how much of its
 * buffer is counted against max_buffered.  The framer resizes its buffer
 * both when it carries a line and when it joins the rest to it, so the
 * count is settled against the buffer as it is (count_carry), not around
 * one call. */
struct line_carry {
  struct revd__framer framer;
  size_t counted;
};

static void line_release(struct conn *c) {
  struct line_carry *l = c->p.line;
  if (!l)
    return;
  revd__budget_give(conn_server(c), l->counted);
  revd__framer_free(&l->framer);
  free(l);
  c->p.line = NULL;
}

/* Brings the count up to the carry's buffer.  Returns 0, or UV_ENOBUFS
 * past max_buffered (what was counted stays counted until the release). */
static int count_carry(struct conn *c) {
  revd_server_t *srv = conn_server(c);
  struct line_carry *l = c->p.line;
  size_t cap = l->framer.carry_cap;
  if (cap < l->counted)
    revd__budget_give(srv, l->counted - cap);
  else if (cap > l->counted && revd__budget_take(srv, cap - l->counted) != 0)
    return UV_ENOBUFS;
  l->counted = cap;
  return 0;
}

/* Keeps the start of an unfinished line.  Returns 0 or a negative UV_E* code. */
static int carry(struct conn *c, const char *data, size_t len) {
  struct line_carry *l = c->p.line;
  if (!l) {
    if (!(l = c->p.line = malloc(sizeof *l)))
      return UV_ENOMEM;
    revd__framer_init(&l->framer, conn_server(c)->opts.max_message);
    l->counted = 0;
  }
  if (revd__framer_carry(&l->framer, data, len) != 0)
    return UV_ENOMEM;
  return count_carry(c);
}

/* The framer's next line in data, or a result <= 0 (need more, errors). */
static ssize_t next_line(struct conn *c, char *data, size_t len, struct revd__line *line) {
  struct revd__framer bare;
  struct revd__framer *f = c->p.line ? &c->p.line->framer : &bare;
  if (!c->p.line) /* nothing carried: a framer on the stack does the same work */
    revd__framer_init(&bare, conn_server(c)->opts.max_message);
  return revd__framer_next(f, data, len, line);
}

/* Answers every complete line in data: the line carried over from earlier
 * reads goes first, then the run of lines wholly inside data, as one write;
 * the tail is carried over. */
static void line_data(struct conn *c, char *data, size_t len) {
  revd_server_t *srv = conn_server(c);
  uv_buf_t out[2];
  unsigned nout = 0;
  uint64_t lines = 0;
  size_t pos = 0, run_start = 0;
  struct revd__line line;
  ssize_t n = 0;
  revd__conn_message_starts(c); /* a line carried over counts from here too */
  revd__conn_touch(c);
  while (pos < len && (n = next_line(c, data + pos, len - pos, &line)) > 0) {
    reverse_line(srv, line.data, line.len);
    lines++;
    if (line.data != data + pos) { /* joined in the carry: its own buffer */
      out[nout++] = uv_buf_init(line.data, (unsigned)line.len);
      run_start = pos + (size_t)n;
    }
    pos += (size_t)n;
  }
  if (pos > run_start)
    out[nout++] = uv_buf_init(data + run_start, (unsigned)(pos - run_start));
  int r = revd__conn_write(c, out, nout, lines, 0);
  if (r != 0) {
    revd__conn_fail_error(c, r);
  } else if (n == REVD__FRAME_TOO_LARGE) {
    srv->stats.too_large++;
    line_release(c);
    revd__conn_linger(c);
  } else if (n < 0) {
    revd__conn_fail_error(c, UV_ENOMEM); /* the framer's only other error */
  } else if (pos < len && (r = carry(c, data + pos, len - pos)) != 0) {
    revd__conn_fail_error(c, r);
  } else if (pos == len && c->p.line) {
    line_release(c); /* nothing carried: an idle connection holds no framer */
  }
}

/* A final line without '\n' at EOF is answered without one. */
static void line_eof(struct conn *c) {
  struct revd__line line;
  if (c->p.line && revd__framer_finish(&c->p.line->framer, &line)) {
    reverse_line(conn_server(c), line.data, line.len);
    uv_buf_t buf = uv_buf_init(line.data, (unsigned)line.len);
    int r = revd__conn_write(c, &buf, 1, 1, 0);
    if (r != 0) {
      revd__conn_fail_error(c, r);
      return;
    }
  }
  revd__conn_finish(c);
}

/* An open line-mode connection is owed nothing it has not been answered:
 * every complete line already was. */
static int line_owes_reply(const struct conn *c) {
  (void)c;
  return 0;
}

const struct revd__proto revd__proto_line = {
    .alloc = NULL,
    .data = line_data,
    .eof = line_eof,
    .owes_reply = line_owes_reply,
    .release = line_release,
    .interactive = 1,
};
