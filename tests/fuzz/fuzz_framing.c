/* fuzz_framing.c — libFuzzer target for revd__frame_line().
 *
 * Input: max (first byte; 0 means "no limit"), the size of each read
 * (second byte, 1..256), then the stream.  A caller like the server's line
 * mode buffers partial lines and hands out complete ones; the lines it gets
 * must be the ones a plain split of the whole stream gives, up to the first
 * line longer than max, whatever the reads look like. */
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
  size_t max;
  char *line; /* max bytes: the unfinished line */
  size_t have;
  const char *stream; /* the whole input, to compare lines against */
  size_t stream_len;
  size_t done; /* bytes of the stream handed out as lines so far */
  int too_large;
};

/* A line came out: it must be the next piece of the stream. */
static void emit(struct caller *c) {
  CHECK(c->have <= c->max, "line longer than max");
  CHECK(c->done + c->have <= c->stream_len, "more output than input");
  CHECK(memcmp(c->line, c->stream + c->done, c->have) == 0, "line differs");
  c->done += c->have;
  c->have = 0;
}

/* One read, in a block of exactly its size so ASan sees an overread. */
static void caller_read(struct caller *c, const char *data, size_t len) {
  char *buf = malloc(len ? len : 1);
  CHECK(buf != NULL, "out of memory");
  memcpy(buf, data, len);
  const char *p = buf;
  while (len > 0 && !c->too_large) {
    ssize_t n = revd__frame_line(p, len, c->have, c->max);
    if (n == REVD__FRAME_TOO_LARGE) {
      const char *nl = memchr(p, '\n', len);
      size_t take = nl ? (size_t)(nl - p) + 1 : len;
      CHECK(c->have + take > c->max, "too large, but it fits");
      c->too_large = 1;
      break;
    }
    CHECK(n >= 0 && (size_t)n <= len, "result out of range");
    if (n == 0) {
      CHECK(memchr(p, '\n', len) == NULL, "need more, but a line ended");
      CHECK(c->have + len <= c->max, "need more, but past max");
    } else {
      CHECK(p[n - 1] == '\n', "line does not end in newline");
      CHECK(memchr(p, '\n', (size_t)n - 1) == NULL, "line holds a newline");
    }
    size_t take = n == 0 ? len : (size_t)n;
    memcpy(c->line + c->have, p, take);
    c->have += take;
    if (n > 0)
      emit(c);
    p += take;
    len -= take;
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
  c.max = data[0] ? data[0] : 4096; /* 4096: -max_len, so never reached */
  size_t chunk = (size_t)data[1] + 1;
  c.stream = (const char *)data + 2;
  c.stream_len = size - 2;
  c.line = malloc(c.max);
  CHECK(c.line != NULL, "out of memory");

  for (size_t at = 0; at < c.stream_len && !c.too_large; at += chunk) {
    size_t n = c.stream_len - at < chunk ? c.stream_len - at : chunk;
    caller_read(&c, c.stream + at, n);
  }
  if (!c.too_large && c.have > 0)
    emit(&c); /* EOF: a last line without '\n' counts too */

  int want_too_large;
  size_t want_done = reference_end(c.stream, c.stream_len, c.max, &want_too_large);
  CHECK(c.too_large == want_too_large, "too large differs from a plain split");
  CHECK(c.done == want_done, "lines differ from a plain split");
  free(c.line);
  return 0;
}
