/* proto_eof.c — eof mode: the message is everything until the client
 * half-closes.  Reads land in chunks of the connection's own (growing
 * 4 KiB .. 64 KiB, newest first); at EOF each is reversed in place and the
 * list, written in its order, is the whole message reversed: one write of
 * many buffers, no copy. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define FIRST_CHUNK 4096

struct chunk {
  struct chunk *next;
  size_t len, cap;
  char data[];
};

struct eof_message {
  struct chunk *chunks; /* newest first */
  size_t received;      /* bytes so far */
  size_t held;          /* bytes of chunk memory, counted in the server's budget */
};

static void free_chunks(revd_server_t *srv, struct eof_message *m) {
  while (m->chunks) {
    struct chunk *next = m->chunks->next;
    free(m->chunks);
    m->chunks = next;
  }
  revd__budget_give(srv, m->held);
  m->held = 0;
}

static void eof_release(struct conn *c) {
  if (!c->p.eof)
    return;
  free_chunks(conn_server(c), c->p.eof);
  free(c->p.eof);
  c->p.eof = NULL;
}

/* A chunk of cap bytes for m, counted in the budget.  Returns 0 with *out
 * set, UV_ENOBUFS past the budget, or UV_ENOMEM. */
static int chunk_new(revd_server_t *srv, struct eof_message *m, size_t cap, struct chunk **out) {
  if (revd__budget_take(srv, cap) != 0)
    return UV_ENOBUFS;
  struct chunk *ch = malloc(sizeof *ch + cap);
  if (!ch) {
    revd__budget_give(srv, cap);
    return UV_ENOMEM;
  }
  m->held += cap;
  ch->next = NULL;
  ch->len = 0;
  ch->cap = cap;
  *out = ch;
  return 0;
}

static size_t next_cap(const struct eof_message *m) {
  size_t cap = m->chunks ? m->chunks->cap * 2 : FIRST_CHUNK;
  return cap > REVD_CHUNK_MAX ? REVD_CHUNK_MAX : cap;
}

/* Without memory, or past the budget, the read fails (UV_ENOBUFS) and the
 * core closes the connection. */
static void eof_alloc(struct conn *c, uv_buf_t *buf) {
  revd_server_t *srv = conn_server(c);
  struct eof_message *m = c->p.eof;
  *buf = uv_buf_init(NULL, 0);
  if (!m && !(m = c->p.eof = calloc(1, sizeof *m)))
    return;
  if (!m->chunks || m->chunks->len == m->chunks->cap) {
    struct chunk *ch;
    int r = chunk_new(srv, m, next_cap(m), &ch);
    if (r != 0) {
      c->over_budget = r == UV_ENOBUFS;
      return;
    }
    ch->next = m->chunks;
    m->chunks = ch;
  }
  *buf = uv_buf_init(m->chunks->data + m->chunks->len, (unsigned)(m->chunks->cap - m->chunks->len));
}

static void eof_data(struct conn *c, char *data, size_t len) {
  revd_server_t *srv = conn_server(c);
  struct eof_message *m = c->p.eof;
  (void)data; /* already in the newest chunk: eof_alloc put it there */
  if (m->received == 0)
    revd__conn_message_starts(c);
  revd__conn_touch(c);
  m->chunks->len += len;
  m->received += len;
  if (m->received > srv->opts.max_message) {
    srv->stats.too_large++;
    free_chunks(srv, m);
    revd__conn_linger(c);
  }
}

/* Text can not be reversed chunk by chunk (a character may straddle two),
 * so Unicode modes join the chunks first: one copy, only for them. */
static int join_chunks(revd_server_t *srv, struct eof_message *m) {
  if (!m->chunks || !m->chunks->next)
    return 0;
  struct eof_message whole = {0};
  struct chunk *ch;
  int r = chunk_new(srv, &whole, m->received, &ch);
  if (r != 0)
    return r;
  size_t end = m->received;
  for (struct chunk *part = m->chunks; part; part = part->next) {
    end -= part->len;
    memcpy(ch->data + end, part->data, part->len);
  }
  ch->len = m->received;
  free_chunks(srv, m);
  m->chunks = ch;
  m->held = whole.held;
  return 0;
}

/* The whole message reversed, as buffers in list order. */
static int send_reversed(struct conn *c, struct eof_message *m) {
  revd_server_t *srv = conn_server(c);
  unsigned n = 0;
  for (struct chunk *ch = m->chunks; ch; ch = ch->next)
    n++;
  uv_buf_t *bufs = malloc(n * sizeof *bufs);
  if (!bufs)
    return UV_ENOMEM;
  unsigned i = 0;
  for (struct chunk *ch = m->chunks; ch; ch = ch->next) {
    revd__reverse_counted(srv, ch->data, ch->len);
    bufs[i++] = uv_buf_init(ch->data, (unsigned)ch->len);
  }
  int r = revd__conn_write(c, bufs, n, 1, 1); /* the chunks live until close */
  free(bufs);
  return r;
}

static void eof_eof(struct conn *c) {
  revd_server_t *srv = conn_server(c);
  struct eof_message *m = c->p.eof;
  revd__conn_message_done(c);
  if (!m || m->received == 0) {
    revd__conn_completed(c, 1); /* an empty message has an empty reply */
    revd__conn_finish(c);
    return;
  }
  int r = UV_ENOMEM;
  if (srv->opts.reverse == REVD_REVERSE_BYTES || (r = join_chunks(srv, m)) == 0)
    r = send_reversed(c, m);
  if (r != 0)
    revd__conn_fail_error(c, r);
  else
    revd__conn_finish(c);
}

/* A client that sent part of a message is owed its reply. */
static int eof_owes_reply(const struct conn *c) { return c->p.eof && c->p.eof->received > 0; }

const struct revd__proto revd__proto_eof = {
    .alloc = eof_alloc,
    .data = eof_data,
    .eof = eof_eof,
    .owes_reply = eof_owes_reply,
    .release = eof_release,
    .interactive = 0,
};
