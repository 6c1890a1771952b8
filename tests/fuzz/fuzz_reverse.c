/* fuzz_reverse.c — libFuzzer target for revd__reverse(), all three units.
 *
 * Input: one control byte, then the message.  The control byte picks the
 * unit (byte % 3) and, with its top bit, whether invalid UTF-8 is dropped
 * from the message first: random bytes are almost never valid UTF-8, and
 * without that the Unicode units would mostly take the byte fallback.
 *
 * What must hold, whatever the message:
 *  - the reply is the same length (in place) and nothing outside the
 *    message is touched (the message sits in a block of exactly its size);
 *  - bytes: the reply is the byte reversal, and reversing twice gives the
 *    message back;
 *  - REVD__REVERSED_BYTES exactly when a Unicode unit got invalid UTF-8,
 *    and then the reply is the byte reversal;
 *  - code points: the reply is valid UTF-8 and reversing twice gives the
 *    message back;
 *  - graphemes: the reply is valid UTF-8 and equals the clusters found by
 *    utf8proc_map(UTF8PROC_CHARBOUND), in reverse order.  Reversing twice
 *    is not checked: it does not give the message back in general (a lone
 *    accent at the start joins a base once it comes last; "\xCC\x81a"
 *    becomes "a\xCC\x81", one cluster). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "revd.h"
#include "reverse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, what)                                                      \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "fuzz_reverse: %s (unit %d, %zu bytes)\n", what, unit, \
              len);                                                            \
      abort();                                                                 \
    }                                                                          \
  } while (0)

static int valid_utf8(const char *s, size_t len) {
  utf8proc_int32_t cp;
  for (size_t i = 0; i < len;) {
    utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
                                          (utf8proc_ssize_t)(len - i), &cp);
    if (n <= 0)
      return 0;
    i += (size_t)n;
  }
  return 1;
}

/* Copies the valid code points of in[0..len) to out; returns their length. */
static size_t keep_valid(const uint8_t *in, size_t len, char *out) {
  utf8proc_int32_t cp;
  size_t o = 0;
  for (size_t i = 0; i < len;) {
    utf8proc_ssize_t n = utf8proc_iterate(in + i, (utf8proc_ssize_t)(len - i), &cp);
    if (n <= 0) {
      i++;
      continue;
    }
    memcpy(out + o, in + i, (size_t)n);
    o += (size_t)n;
    i += (size_t)n;
  }
  return o;
}

static void bytes_reversed(const char *in, size_t len, char *out) {
  for (size_t i = 0; i < len; i++)
    out[i] = in[len - 1 - i];
}

/* Grapheme reversal computed without revd: utf8proc_map marks each cluster
 * start with 0xFF (never part of UTF-8).  Returns 0 if utf8proc failed. */
static int graphemes_reference(const char *in, size_t len, char *out) {
  utf8proc_uint8_t *marked = NULL;
  utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)in,
                                    (utf8proc_ssize_t)len, &marked,
                                    UTF8PROC_CHARBOUND);
  if (n < 0)
    return 0;
  size_t end = len;
  for (utf8proc_ssize_t i = 0, j; i < n; i = j) {
    j = i + 1;
    while (j < n && marked[j] != 0xFF)
      j++;
    size_t clen = (size_t)(j - i - 1);
    if (marked[i] != 0xFF || clen > end) {
      free(marked);
      return 0;
    }
    end -= clen;
    memcpy(out + end, marked + i + 1, clen);
  }
  free(marked);
  return end == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  int unit = data[0] % 3;
  int only_valid = data[0] & 0x80;
  data++;
  size--;

  /* Exact-size blocks: ASan reports a read or write one byte past len. */
  char *msg = malloc(size ? size : 1);
  if (!msg)
    abort();
  size_t len = only_valid ? keep_valid(data, size, msg) : size;
  if (!only_valid)
    memcpy(msg, data, size);
  char *buf = malloc(len ? len : 1), *want = malloc(len ? len : 1);
  if (!buf || !want)
    abort();
  memcpy(buf, msg, len);

  int r = revd__reverse(unit, buf, len);
  int valid = valid_utf8(msg, len);
  CHECK(r == REVD__REVERSED || r == REVD__REVERSED_BYTES, "unknown return value");
  bytes_reversed(msg, len, want);

  if (unit == REVD_REVERSE_BYTES || r == REVD__REVERSED_BYTES) {
    CHECK(unit == REVD_REVERSE_BYTES ? r == REVD__REVERSED : !valid,
          "byte fallback for valid UTF-8, or in bytes mode");
    CHECK(memcmp(buf, want, len) == 0, "not the byte reversal");
    if (unit == REVD_REVERSE_BYTES) {
      revd__reverse(unit, buf, len);
      CHECK(memcmp(buf, msg, len) == 0, "bytes: reversing twice changed it");
    }
  } else {
    CHECK(valid, "invalid UTF-8 was not reversed by bytes");
    CHECK(valid_utf8(buf, len), "reply is not valid UTF-8");
    if (unit == REVD_REVERSE_CODEPOINTS) {
      CHECK(revd__reverse(unit, buf, len) == REVD__REVERSED, "second call fell back");
      CHECK(memcmp(buf, msg, len) == 0, "codepoints: reversing twice changed it");
    } else {
      CHECK(graphemes_reference(msg, len, want), "utf8proc_map failed");
      CHECK(memcmp(buf, want, len) == 0, "graphemes: differs from CHARBOUND");
    }
  }
  free(msg);
  free(buf);
  free(want);
  return 0;
}
