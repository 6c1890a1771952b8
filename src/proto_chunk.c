/* proto_chunk.c — chunk mode: the message is what the first read brings
 * (at most REVD_CHUNK_MAX bytes); the reply is that chunk reversed, sent
 * straight from the server's read buffer; then the server closes. */
#include "internal.h"

static void chunk_data(struct conn *c, char *data, size_t len) {
  revd_server_t *srv = conn_server(c);
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
};
