/* reverse.c — reversal of one message in place, by bytes, code points or
 * extended grapheme clusters.
 *
 * Every unit uses the same O(1)-memory trick: reverse the bytes of each unit
 * where it stands, then reverse the whole buffer.  The second pass puts the
 * units in reverse order and turns each unit's bytes the right way round
 * again.  Unit boundaries are found left to right on the part of the buffer
 * the first pass has not touched yet, so no copy of the message is needed. */
#include "reverse.h"

#include <stdint.h>
#include <string.h>
#include <utf8proc.h>

#include "revd.h"

void revd__reverse_bytes(char *buf, size_t len) {
  if (len < 2)
    return;
  char *lo = buf, *hi = buf + len - 1;
  /* Eight bytes from each end at a time, byte-swapped, while 16 remain. */
  while (hi - lo >= 15) {
    uint64_t a, b;
    memcpy(&a, lo, 8);
    memcpy(&b, hi - 7, 8);
    a = __builtin_bswap64(a);
    b = __builtin_bswap64(b);
    memcpy(lo, &b, 8);
    memcpy(hi - 7, &a, 8);
    lo += 8;
    hi -= 8;
  }
  while (lo < hi) {
    char t = *lo;
    *lo++ = *hi;
    *hi-- = t;
  }
}

/* Decodes the code point at s[0..n), n > 0.  Returns its length in bytes
 * (1 to 4) and stores it in *cp, or returns a negative utf8proc error for
 * invalid UTF-8: truncated or stray bytes, overlong forms, surrogates and
 * values past U+10FFFF are all refused, so what passes is strict UTF-8.
 * utf8proc never needs more than 4 bytes, and capping the length we pass
 * keeps a size_t from ever being squeezed into its signed length type. */
static utf8proc_ssize_t decode(const char *s, size_t n, utf8proc_int32_t *cp) {
  utf8proc_ssize_t avail = n < 4 ? (utf8proc_ssize_t)n : 4;
  return utf8proc_iterate((const utf8proc_uint8_t *)s, avail, cp);
}

/* The Unicode units rearrange code points, which is only meaningful once we
 * know every byte belongs to one: checked over the whole message before
 * anything is touched, so a message is never left half reversed. */
static int valid_utf8(const char *buf, size_t len) {
  utf8proc_int32_t cp;
  size_t i = 0;
  while (i < len) {
    utf8proc_ssize_t n = decode(buf + i, len - i, &cp);
    if (n <= 0)
      return 0;
    i += (size_t)n;
  }
  return 1;
}

/* Needs valid UTF-8 (see valid_utf8), so decode() never fails here. */
static void reverse_codepoints(char *buf, size_t len) {
  utf8proc_int32_t cp;
  size_t i = 0;
  while (i < len) {
    size_t n = (size_t)decode(buf + i, len - i, &cp);
    revd__reverse_bytes(buf + i, n);
    i += n;
  }
  revd__reverse_bytes(buf, len);
}

/* Needs valid UTF-8.  UAX #29 decides a break between two code points from
 * the pair plus what came before (regional indicator parity, emoji ZWJ
 * sequences): utf8proc keeps that in `state`, which is why it is fed every
 * pair in order from the start, and why `prev` is kept in a variable: by the
 * time we look at code point i, the cluster it might join has already been
 * reversed in place and can not be decoded again. */
static void reverse_graphemes(char *buf, size_t len) {
  utf8proc_int32_t state = 0, prev = 0, cp;
  size_t start = 0, i = 0;
  while (i < len) {
    size_t n = (size_t)decode(buf + i, len - i, &cp);
    if (i > 0 && utf8proc_grapheme_break_stateful(prev, cp, &state)) {
      revd__reverse_bytes(buf + start, i - start);
      start = i;
    }
    prev = cp;
    i += n;
  }
  revd__reverse_bytes(buf + start, len - start); /* the last cluster */
  revd__reverse_bytes(buf, len);
}

int revd__reverse(int unit, char *buf, size_t len) {
  /* Anything but the two Unicode units is reversed by bytes, the default:
   * an out-of-range unit can not make us touch memory differently. */
  if (unit != REVD_REVERSE_CODEPOINTS && unit != REVD_REVERSE_GRAPHEMES) {
    revd__reverse_bytes(buf, len);
    return REVD__REVERSED;
  }
  /* Falling back to bytes rather than failing keeps every protocol mode
   * simple (a reply of the same length always exists); the caller learns
   * about it from the return value and counts it. */
  if (!valid_utf8(buf, len)) {
    revd__reverse_bytes(buf, len);
    return REVD__REVERSED_BYTES;
  }
  if (unit == REVD_REVERSE_GRAPHEMES)
    reverse_graphemes(buf, len);
  else
    reverse_codepoints(buf, len);
  return REVD__REVERSED;
}
