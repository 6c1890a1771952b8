/* proto_chunk.c — chunk mode: the message is what has arrived when revd
 * first reads, read on while the socket has more (at most REVD_CHUNK_MAX
 * bytes); the reply is that chunk reversed, sent straight from the server's
 * read buffer; then the server closes.  A message that may be the first
 * part of a split write is kept, and waited for a moment (may_continue). */
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "internal.h"

/* A message smaller than TCP's least segment size came in one segment: its
 * client wrote it at once, and a socket found dry after it means the
 * client sent everything (the classic client), so revd may close at once.
 * A bigger one may be a stream between two segments: it gets a lingering
 * close.  What it gives up: a client that writes a small message in two
 * parts with a pause between gets a reset for the second. */
#define SMALL_MESSAGE 536

/* A message that may have more on its way (may_continue), kept while revd
 * waits for the rest: the server's read buffer serves every connection. */
struct chunk_wait {
  size_t len;
  char data[REVD_CHUNK_MAX];
};

/* A message sent in one write can land in two reads, so the chunk is
 * everything the socket has now: read on while it has more and the buffer
 * (REVD_CHUNK_MAX at data) has room.  Returns the length; *dry: the socket
 * ran dry (not full, not at EOF, no error). */
static size_t read_whole_chunk(struct conn *c, char *data, size_t len, int *dry) {
  ssize_t more = 0;
  while (len < REVD_CHUNK_MAX && (more = revd__conn_read_more(c, data + len, REVD_CHUNK_MAX - len)) > 0)
    len += (size_t)more;
  *dry = len < REVD_CHUNK_MAX && more == 0;
  return len;
}

/* Does a message that ends here perhaps go on?  Linux cuts a write past
 * half the largest window the receiver offered into segments of that half
 * (tcp_bound_to_half_wnd): on loopback, 32,741 bytes of a fresh
 * connection's 65,483.  The part after the last whole segment waits, by
 * Nagle's rule, for revd's ACK, and under load can come milliseconds
 * later.  So a message that is a whole number of such segments may go on;
 * one that ends inside a segment ended with its write.  The window offered
 * is tcpi_rcv_space while the connection is fresh, and the largest
 * segment seen (tcpi_rcv_mss) is that half only when the write was cut. */
static int may_continue(struct conn *c, size_t len) {
  struct tcp_info ti;
  socklen_t size = sizeof ti;
  uv_os_fd_t fd;
  if (len < SMALL_MESSAGE)
    return 0; /* one segment, always: and the classic exchange pays no system call */
  if (c->h.handle.type != UV_TCP || uv_fileno(&c->h.handle, &fd) != 0 ||
      getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &size) != 0)
    return 0;
  uint32_t segment = ti.tcpi_rcv_space / 2;
  return segment >= SMALL_MESSAGE && ti.tcpi_rcv_mss == segment && len % segment == 0;
}

/* Keeps the message and waits for the rest.  Returns 0, or -1 when there
 * is no memory (or budget) to wait with: then the message is answered as
 * it is. */
static int wait_for_rest(struct conn *c, const char *message, size_t len) {
  revd_server_t *srv = conn_server(c);
  struct chunk_wait *w = c->p.chunk;
  if (!w) {
    if (revd__budget_take(srv, sizeof *w) != 0)
      return -1;
    if (!(w = malloc(sizeof *w))) {
      revd__budget_give(srv, sizeof *w);
      return -1;
    }
    memcpy(w->data, message, len);
    c->p.chunk = w;
    revd__conn_ack_now(c); /* the rest may wait for this ACK */
    revd__conn_wait_for_rest(c);
  }
  w->len = len; /* a second whole segment: the wait goes on, not anew */
  return 0;
}

/* Answers message[0..len) (the server's read buffer, or the kept message)
 * and finishes. */
static void reply(struct conn *c, char *message, size_t len, int dry) {
  revd_server_t *srv = conn_server(c);
  revd__conn_stop_waiting(c);
  revd__conn_message_done(c);
  /* Dry behind a small message: the client sent everything. */
  c->input_drained = len < SMALL_MESSAGE && dry;
  revd__reverse_counted(srv, message, len);
  /* The read buffer is reused by the next read: whatever the socket does
   * not take at once is copied.  A kept message lives until the close. */
  uv_buf_t buf = uv_buf_init(message, (unsigned)len);
  int r = revd__conn_write(c, &buf, 1, 1, c->p.chunk != NULL);
  if (r != 0)
    revd__conn_fail_error(c, r);
  else
    revd__conn_finish(c);
}

static void chunk_alloc(struct conn *c, uv_buf_t *buf) {
  struct chunk_wait *w = c->p.chunk;
  if (w)
    *buf = uv_buf_init(w->data + w->len, (unsigned)(REVD_CHUNK_MAX - w->len));
  else
    *buf = uv_buf_init(conn_server(c)->readbuf, REVD_CHUNK_MAX);
}

/* len bytes at data: the start of the server's read buffer, or (while
 * waiting) the end of the kept message. */
static void chunk_data(struct conn *c, char *data, size_t len) {
  struct chunk_wait *w = c->p.chunk;
  char *message = data;
  if (w) {
    message = w->data;
    len += w->len;
  } else {
    revd__conn_message_starts(c);
  }
  int dry;
  len = read_whole_chunk(c, message, len, &dry);
  if (dry && may_continue(c, len) && wait_for_rest(c, message, len) == 0)
    return;
  reply(c, message, len, dry);
}

/* The rest did not come in time: the message is what has. */
static void chunk_wait_over(struct conn *c) {
  struct chunk_wait *w = c->p.chunk;
  int dry;
  w->len = read_whole_chunk(c, w->data, w->len, &dry); /* after a stalled loop */
  reply(c, w->data, w->len, dry);
}

/* Closed before sending anything, or after a message kept waiting. */
static void chunk_eof(struct conn *c) {
  struct chunk_wait *w = c->p.chunk;
  if (w)
    reply(c, w->data, w->len, 0);
  else
    revd__conn_fail(c, &conn_server(c)->stats.empty);
}

/* Chunk mode answers on its first read, unless the message may go on: a
 * connection still reading otherwise has received nothing. */
static int chunk_owes_reply(const struct conn *c) {
  return c->p.chunk != NULL;
}

static void chunk_release(struct conn *c) {
  if (c->p.chunk) {
    free(c->p.chunk);
    c->p.chunk = NULL;
    revd__budget_give(conn_server(c), sizeof(struct chunk_wait));
  }
}

const struct revd__proto revd__proto_chunk = {
    .alloc = chunk_alloc,
    .data = chunk_data,
    .eof = chunk_eof,
    .owes_reply = chunk_owes_reply,
    .release = chunk_release,
    .wait_over = chunk_wait_over,
    .interactive = 0,
};
