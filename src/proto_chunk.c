/* proto_chunk.c — chunk mode: the message is what has arrived when revd
 * first reads (at most REVD_CHUNK_MAX bytes); the reply is that chunk
 * reversed, sent straight from the server's read buffer; then the server
 * closes. */
#include <sched.h>

#include "internal.h"

/* A message smaller than TCP's least segment size came in one segment: its
 * client wrote it at once, and a socket found dry after it means the
 * client sent everything (the classic client), so revd may close at once.
 * A bigger one may be a stream between two segments: it gets a lingering
 * close.  What it gives up: a client that writes a small message in two
 * parts with a pause between gets a reset for the second. */
#define SMALL_MESSAGE 536
#define MORE_LOOKS 3 /* for the rest of a message that may be split */

/* A message sent in one write can land in two reads, so the chunk is
 * everything the socket has now: read on while it has more and the buffer
 * has room.  On loopback a write past half the receive window goes in two
 * segments, the second sent when our read opens the window: it is on its
 * way when the socket first runs dry, so a message that may be split gets
 * one more look after yielding the CPU (the kernel delivers it meanwhile). */
static size_t read_whole_chunk(struct conn *c, char *data, size_t len) {
  ssize_t more = 0;
  for (int looks = 0;; looks++) {
    while (len < REVD_CHUNK_MAX &&
           (more = revd__conn_read_more(c, data + len, REVD_CHUNK_MAX - len)) > 0)
      len += (size_t)more;
    if (len < SMALL_MESSAGE || len == REVD_CHUNK_MAX || more != 0 || looks == MORE_LOOKS)
      break; /* small, full, or at EOF (or an error): nothing more to wait for */
    if (looks == 0)
      revd__conn_ack_now(c);
    sched_yield();
  }
  /* Dry behind a small message: the client sent everything. */
  c->input_drained = len < SMALL_MESSAGE && more == 0;
  return len;
}

static void chunk_data(struct conn *c, char *data, size_t len) {
  revd_server_t *srv = conn_server(c);
  /* Reads land in the server's buffer (no alloc): data is its start. */
  revd__conn_message_starts(c);
  len = read_whole_chunk(c, data, len);
  revd__conn_message_done(c);
  revd__reverse_counted(srv, data, len);
  /* The read buffer is reused by the next read: whatever the socket does
   * not take at once is copied. */
  uv_buf_t reply = uv_buf_init(data, (unsigned)len);
  int r = revd__conn_write(c, &reply, 1, 1, 0);
  if (r != 0)
    revd__conn_fail_error(c, r);
  else
    revd__conn_finish(c);
}

/* Closed before sending anything. */
static void chunk_eof(struct conn *c) {
  revd__conn_fail(c, &conn_server(c)->stats.empty);
}

/* Chunk mode answers on its first read: a connection still reading has
 * received nothing, and is owed nothing. */
static int chunk_owes_reply(const struct conn *c) {
  (void)c;
  return 0;
}

static void chunk_release(struct conn *c) { (void)c; }

const struct revd__proto revd__proto_chunk = {
    .alloc = NULL,
    .data = chunk_data,
    .eof = chunk_eof,
    .owes_reply = chunk_owes_reply,
    .release = chunk_release,
    .nodelay = 0,
    .sends_at_once = 1,
};
