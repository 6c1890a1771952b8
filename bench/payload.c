#include "payload.h"

#include <stdlib.h>
#include <string.h>

/* 64 printable characters: any byte of a message is one of them. */
static const char alphabet[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";

uint64_t rng_next(uint64_t *state) {
  uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

uint64_t rng_range(uint64_t *state, uint64_t lo, uint64_t hi) {
  if (hi <= lo)
    return lo;
  uint64_t span = hi - lo + 1;
  /* The modulo bias is below 2^-40 for any span revbench uses. */
  return span == 0 ? rng_next(state) : lo + rng_next(state) % span;
}

int payload_init(payload_t *p, size_t max, uint64_t seed) {
  memset(p, 0, sizeof *p);
  if (max == 0)
    max = 1;
  p->max = max;
  p->span = 2 * max;
  p->msg = malloc(p->span);
  p->rev = malloc(p->span);
  if (!p->msg || !p->rev) {
    payload_free(p);
    return -1;
  }
  uint64_t s = seed;
  for (size_t i = 0; i < p->span; i++)
    p->msg[i] = alphabet[rng_next(&s) & 63];
  for (size_t i = 0; i < p->span; i++)
    p->rev[i] = p->msg[p->span - 1 - i];
  return 0;
}

void payload_free(payload_t *p) {
  free(p->msg);
  free(p->rev);
  p->msg = p->rev = NULL;
}

int payload_verify(const payload_t *p, size_t off, size_t len, const char *reply,
                   size_t reply_len) {
  return reply_len == len && memcmp(reply, payload_expected(p, off, len), len) == 0;
}
