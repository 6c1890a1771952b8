/* framing.c — line framing, pure: no libuv, no sockets. */
#include "framing.h"

#include <stdlib.h>
#include <string.h>

#define CARRY_FIRST_CAP 256
/* A carry grown past this is freed once its line is out, so one long line
 * does not pin its memory for the rest of a long-lived connection. */
#define CARRY_KEEP_CAP 4096

ssize_t revd__frame_line(const char *buf, size_t len, size_t have, size_t max) {
  const char *nl = memchr(buf, '\n', len);
  size_t take = nl ? (size_t)(nl - buf) + 1 : len;
  if (have > max || take > max - have)
    return REVD__FRAME_TOO_LARGE;
  return nl ? (ssize_t)take : 0;
}

void revd__framer_init(struct revd__framer *f, size_t max) {
  memset(f, 0, sizeof *f);
  f->max = max;
}

/* The line handed out last is done with: the next one starts empty.  Its
 * bytes stay where they are until the carry is written to again. */
static void drop_handed_out(struct revd__framer *f) {
  if (!f->handed_out)
    return;
  f->handed_out = 0;
  f->carry_len = 0;
}

static int carry_append(struct revd__framer *f, const char *buf, size_t len) {
  if (f->carry_len + len > f->carry_cap) {
    size_t cap = f->carry_cap ? f->carry_cap : CARRY_FIRST_CAP;
    while (cap < f->carry_len + len)
      cap *= 2;
    char *p = realloc(f->carry, cap);
    if (!p)
      return REVD__FRAME_NOMEM;
    f->carry = p;
    f->carry_cap = cap;
  }
  memcpy(f->carry + f->carry_len, buf, len);
  f->carry_len += len;
  return 0;
}

ssize_t revd__framer_next(struct revd__framer *f, char *buf, size_t len, struct revd__line *line) {
  drop_handed_out(f);
  ssize_t n = revd__frame_line(buf, len, f->carry_len, f->max);
  if (n <= 0)
    return n;
  if (f->carry_len == 0) {
    line->data = buf;
    line->len = (size_t)n;
    return n;
  }
  if (carry_append(f, buf, (size_t)n) != 0)
    return REVD__FRAME_NOMEM;
  line->data = f->carry;
  line->len = f->carry_len;
  f->handed_out = 1;
  return n;
}

int revd__framer_carry(struct revd__framer *f, const char *buf, size_t len) {
  drop_handed_out(f);
  if (f->carry_len == 0 && f->carry_cap > CARRY_KEEP_CAP) {
    free(f->carry);
    f->carry = NULL;
    f->carry_cap = 0;
  }
  return len ? carry_append(f, buf, len) : 0;
}

int revd__framer_finish(struct revd__framer *f, struct revd__line *line) {
  drop_handed_out(f);
  if (f->carry_len == 0)
    return 0;
  line->data = f->carry;
  line->len = f->carry_len;
  f->handed_out = 1;
  return 1;
}

size_t revd__framer_pending(const struct revd__framer *f) {
  return f->handed_out ? 0 : f->carry_len;
}

void revd__framer_free(struct revd__framer *f) {
  free(f->carry);
  f->carry = NULL;
  f->carry_len = f->carry_cap = 0;
  f->handed_out = 0;
}
