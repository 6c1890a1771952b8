/* fuzz_framing.c — libFuzzer target for the line framer (revd__framer_*),
 * the code line mode runs.
 *
 * Input: max (first byte; 0 means "no limit"), the size of each read
 * (second byte, 1..256), then the stream.  Driven as line mode drives it
 * (take the lines of a read, carry the rest), the framer must hand out the
 * lines a plain split of the whole stream gives, up to the first line
 * longer than max, whatever the reads look like. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "framing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, what)                                  \
  do {                                                     \
    if (!(cond)) {                                         \
      fprintf(stderr, "fuzz_framing: %s\n", what);         \
      abort();                                             \
    }                                                      \
  } while (0)

struct caller {
  struct revd__framer f;
  const char *stream; /* the whole input, to compare lines against */
  size_t stream_len;
  size_t done; /* bytes of the stream handed out as lines so far */
  int too_large;
};

/* A line came out: it must be the next piece of the stream. */
static void emit(struct caller *c, const struct revd__line *line) {
  CHECK(line->len <= c->f.max, "line longer than max");
  CHECK(c->done + line->len <= c->stream_len, "more output than input");
  CHECK(memcmp(line->data, c->stream + c->done, line->len) == 0, "line differs");
  c->done += line->len;
}

/* One read, in a block of exactly its size so ASan sees an overread. */
static void caller_read(struct caller *c, const char *data, size_t len) {
  char *buf = malloc(len ? len : 1);
  CHECK(buf != NULL, "out of memory");
  memcpy(buf, data, len);
  char *p = buf;
  while (len > 0 && !c->too_large) {
    struct revd__line line;
    ssize_t n = revd__framer_next(&c->f, p, len, &line);
    if (n == REVD__FRAME_TOO_LARGE) {
      const char *nl = memchr(p, '\n', len);
      size_t take = nl ? (size_t)(nl - p) + 1 : len;
      CHECK(revd__framer_pending(&c->f) + take > c->f.max, "too large, but it fits");
      c->too_large = 1;
      break;
    }
    CHECK(n >= 0 && (size_t)n <= len, "result out of range");
    if (n == 0) {
      CHECK(memchr(p, '\n', len) == NULL, "need more, but a line ended");
      CHECK(revd__framer_pending(&c->f) + len <= c->f.max, "need more, but past max");
      CHECK(revd__framer_carry(&c->f, p, len) == 0, "out of memory");
      break;
    }
    CHECK(line.data[line.len - 1] == '\n', "line does not end in newline");
    CHECK(memchr(line.data, '\n', line.len - 1) == NULL, "line holds a newline");
    emit(c, &line);
    p += n;
    len -= (size_t)n;
  }
  free(buf);
}

/* Where the first line longer than max starts, by a plain split (or the
 * stream length if there is none). */
static size_t reference_end(const char *s, size_t len, size_t max, int *too_large) {
  size_t at = 0;
  *too_large = 0;
  while (at < len) {
    const char *nl = memchr(s + at, '\n', len - at);
    size_t line = nl ? (size_t)(nl - (s + at)) + 1 : len - at;
    if (line > max) {
      *too_large = 1;
      return at;
    }
    at += line;
  }
  return at;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  struct caller c = {0};
  revd__framer_init(&c.f, data[0] ? data[0] : 4096); /* 4096: -max_len, so never reached */
  size_t chunk = (size_t)data[1] + 1;
  c.stream = (const char *)data + 2;
  c.stream_len = size - 2;

  for (size_t at = 0; at < c.stream_len && !c.too_large; at += chunk) {
    size_t n = c.stream_len - at < chunk ? c.stream_len - at : chunk;
    caller_read(&c, c.stream + at, n);
  }
  struct revd__line last;
  if (!c.too_large && revd__framer_finish(&c.f, &last))
    emit(&c, &last); /* EOF: a last line without '\n' counts too */

  int want_too_large;
  size_t want_done = reference_end(c.stream, c.stream_len, c.f.max, &want_too_large);
  CHECK(c.too_large == want_too_large, "too large differs from a plain split");
  CHECK(c.done == want_done, "lines differ from a plain split");
  revd__framer_free(&c.f);
  return 0;
}
