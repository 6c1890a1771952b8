/* payload.h — what revbench sends and what it expects back.
 *
 * One immutable buffer of printable bytes (no '\n', so line mode can use it)
 * and its reversal are made once per run.  A message is a slice of it at a
 * varying offset, so consecutive exchanges carry different bytes (a server
 * that answers with a stale buffer is caught), and the expected reply is the
 * matching slice of the reversal: nothing is copied or reversed per exchange.
 */
#ifndef REVBENCH_PAYLOAD_H
#define REVBENCH_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

typedef struct payload {
  size_t max;  /* longest message */
  size_t span; /* bytes in msg and rev: 2 * max */
  char *msg;   /* printable, never '\n' */
  char *rev;   /* msg reversed */
  int echo;    /* 1: a correct reply is the message itself (--expect echo) */
} payload_t;

/* Fills p for messages of 1..max bytes from seed, expecting reversed replies
 * (set p->echo afterwards for an echo server).  Returns 0 or -1 (out of memory). */
int payload_init(payload_t *p, size_t max, uint64_t seed);
void payload_free(payload_t *p);

/* The message of len bytes at offset off (off <= max, len <= max). */
static inline const char *payload_message(const payload_t *p, size_t off) {
  return p->msg + off;
}

/* Its expected reply: the same bytes reversed (or, with echo set, the message). */
static inline const char *payload_expected(const payload_t *p, size_t off, size_t len) {
  return p->echo ? p->msg + off : p->rev + (p->span - off - len);
}

/* 1 when reply/reply_len is exactly the expected reply to the message (off, len). */
int payload_verify(const payload_t *p, size_t off, size_t len, const char *reply,
                   size_t reply_len);

/* A small fast generator (splitmix64); *state is the caller's. */
uint64_t rng_next(uint64_t *state);

/* A uniform pick in [lo, hi]. */
uint64_t rng_range(uint64_t *state, uint64_t lo, uint64_t hi);

#endif
