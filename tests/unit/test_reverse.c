/* test_reverse.c — revd__reverse() by bytes, code points and graphemes:
 * fixed examples, invalid UTF-8, random round trips, and (when the Unicode
 * data files are installed) the UAX #29 conformance test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <utf8proc.h>

#include "revd.h"
#include "reverse.h"

/* ---- helpers ------------------------------------------------------------ */

/* Reverses a copy of s (a C string literal) and checks the reply. */
static void check_reverse(int unit, const char *in, const char *want, int want_ret) {
  size_t len = strlen(in);
  char *buf = malloc(len + 1);
  assert_non_null(buf);
  memcpy(buf, in, len + 1);
  assert_int_equal(revd__reverse(unit, buf, len), want_ret);
  assert_memory_equal(buf, want, len);
  assert_int_equal(buf[len], '\0'); /* nothing written past len */
  assert_int_equal(strlen(want), len);
  free(buf);
}

static void check_units(const char *in, const char *want) {
  check_reverse(REVD_REVERSE_CODEPOINTS, in, want, REVD__REVERSED);
  check_reverse(REVD_REVERSE_GRAPHEMES, in, want, REVD__REVERSED);
}

static void bytes_reversed(const char *in, size_t len, char *out) {
  for (size_t i = 0; i < len; i++)
    out[i] = in[len - 1 - i];
}

static int is_valid_utf8(const char *s, size_t len) {
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

/* Deterministic everywhere (not rand()), so a seed printed by a failure
 * reproduces it on any machine: REVD_TEST_SEED=<seed> ./test-reverse. */
static uint64_t rng;

static uint64_t next_random(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static uint32_t below(uint32_t n) {
  return (uint32_t)(next_random() % n);
}

static uint32_t in_range(uint32_t lo, uint32_t hi) {
  return lo + below(hi - lo + 1);
}

static uint64_t test_seed(void) {
  const char *env = getenv("REVD_TEST_SEED");
  uint64_t seed = env ? strtoull(env, NULL, 0) : 0x5eed2024u;
  return seed ? seed : 1; /* xorshift must not start at 0 */
}

#define FAIL_WITH_SEED(seed, round, what)                                     \
  fail_msg("%s (seed %llu, round %d; rerun with REVD_TEST_SEED=%llu)", what, \
           (unsigned long long)(seed), round, (unsigned long long)(seed))

/* Appends code point cp to out[*len]; room is the caller's business. */
static void put(char *out, size_t *len, uint32_t cp) {
  utf8proc_ssize_t n = utf8proc_encode_char((utf8proc_int32_t)cp,
                                            (utf8proc_uint8_t *)out + *len);
  assert_true(n > 0);
  *len += (size_t)n;
}

#define ZWJ 0x200D
#define RI_FIRST 0x1F1E6
#define RI_LAST 0x1F1FF

/* Any valid UTF-8, in any order: lone marks, lone ZWJ, odd runs of
 * regional indicators, jamo in any order, CR and LF alone. */
static void put_any(char *out, size_t *len) {
  uint32_t cp;
  switch (below(12)) {
  case 0: cp = in_range(0x00, 0x7F); break;
  case 1: cp = in_range(0x80, 0x7FF); break;
  case 2: cp = in_range(0x800, 0xD7FF); break;
  case 3: cp = in_range(0xE000, 0xFFFF); break;
  case 4: cp = in_range(0x10000, 0x10FFFF); break;
  case 5: cp = in_range(0x300, 0x36F); break; /* combining marks */
  case 6: cp = ZWJ; break;
  case 7: cp = in_range(RI_FIRST, RI_LAST); break;
  case 8: cp = in_range(0x1F466, 0x1F469); break; /* pictographs */
  case 9: cp = below(2) ? 0x1100 : in_range(0x1161, 0x11A8); break; /* jamo */
  case 10: cp = below(2) ? '\r' : '\n'; break;
  default: cp = in_range(0x20, 0x7E); break;
  }
  put(out, len, cp);
}

/* One extended grapheme cluster that no neighbour of this same kind can
 * join, whatever the order: each starts with a base no rule attaches to the
 * previous cluster, and none ends in a way that reaches forward (no lone
 * CR, no lone regional indicator, no trailing ZWJ, no Hangul L or V left
 * open for what follows).  Reversing a string of these by graphemes twice
 * must give it back. */
static void put_cluster(char *out, size_t *len) {
  switch (below(9)) {
  case 0: /* ASCII (or a 2/3/4-byte letter) with combining marks */
  case 1: {
    static const uint32_t lo[] = {0x20, 0xC0, 0x4E00, 0x20000};
    static const uint32_t hi[] = {0x7E, 0xFF, 0x9FFF, 0x2A6DF};
    uint32_t k = below(4);
    put(out, len, in_range(lo[k], hi[k]));
    for (uint32_t m = below(4); m > 0; m--)
      put(out, len, in_range(0x300, 0x36F));
    break;
  }
  case 2: /* a flag: two regional indicators */
    put(out, len, in_range(RI_FIRST, RI_LAST));
    put(out, len, in_range(RI_FIRST, RI_LAST));
    break;
  case 3: /* emoji ZWJ sequence, maybe with skin tones */
    for (uint32_t m = below(4);; m--) {
      put(out, len, in_range(0x1F466, 0x1F469));
      if (below(3) == 0)
        put(out, len, in_range(0x1F3FB, 0x1F3FF));
      if (m == 0)
        break;
      put(out, len, ZWJ);
    }
    break;
  case 4: /* precomposed Hangul syllable (LV or LVT) */
    put(out, len, in_range(0xAC00, 0xD7A3));
    break;
  case 5: /* conjoining jamo: L V, or L V T */
    put(out, len, in_range(0x1100, 0x1112));
    put(out, len, in_range(0x1161, 0x1175));
    if (below(2))
      put(out, len, in_range(0x11A8, 0x11C2));
    break;
  case 6:
    put(out, len, '\r');
    put(out, len, '\n');
    break;
  case 7: /* Devanagari consonant + spacing vowel sign (GB9a) */
    put(out, len, in_range(0x915, 0x939));
    put(out, len, in_range(0x93E, 0x940));
    break;
  default: /* emoji presentation sequence (not 1F3FB-1F3FF: skin tones extend) */
    put(out, len, in_range(0x1F400, 0x1F5FF));
    put(out, len, 0xFE0F);
    break;
  }
}

/* What reversing by graphemes must give, computed another way: utf8proc_map
 * with UTF8PROC_CHARBOUND marks each cluster start with 0xFF (never part of
 * UTF-8); out gets the clusters in reverse order. */
static void graphemes_reference(const char *in, size_t len, char *out) {
  utf8proc_uint8_t *marked = NULL;
  utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)in,
                                    (utf8proc_ssize_t)len, &marked,
                                    UTF8PROC_CHARBOUND);
  assert_true(n >= 0);
  size_t end = len;
  utf8proc_ssize_t i = 0;
  while (i < n) {
    assert_int_equal(marked[i], 0xFF);
    utf8proc_ssize_t j = i + 1;
    while (j < n && marked[j] != 0xFF)
      j++;
    size_t clen = (size_t)(j - i - 1);
    end -= clen;
    memcpy(out + end, marked + i + 1, clen);
    i = j;
  }
  assert_int_equal(end, 0);
  free(marked);
}

/* ---- bytes -------------------------------------------------------------- */

static void test_bytes_small(void **state) {
  (void)state;
  check_reverse(REVD_REVERSE_BYTES, "", "", REVD__REVERSED);
  check_reverse(REVD_REVERSE_BYTES, "a", "a", REVD__REVERSED);
  check_reverse(REVD_REVERSE_BYTES, "ab", "ba", REVD__REVERSED);
  check_reverse(REVD_REVERSE_BYTES, "abcde", "edcba", REVD__REVERSED);
  check_reverse(REVD_REVERSE_BYTES, "abcdef", "fedcba", REVD__REVERSED);
  /* bytes mode does not care about UTF-8: é (C3 A9) becomes A9 C3 */
  check_reverse(REVD_REVERSE_BYTES, "x\xC3\xA9", "\xA9\xC3x", REVD__REVERSED);
}

static void test_bytes_binary(void **state) {
  (void)state;
  char buf[] = {'\0', 'a', '\xFF', '\0', '\n', '\x80', '\0'};
  char want[] = {'\0', '\x80', '\n', '\0', '\xFF', 'a', '\0'};
  assert_int_equal(revd__reverse(REVD_REVERSE_BYTES, buf, sizeof buf), REVD__REVERSED);
  assert_memory_equal(buf, want, sizeof buf);
}

static void test_bytes_64k(void **state) {
  (void)state;
  size_t len = 64 * 1024;
  char *buf = malloc(len), *want = malloc(len);
  assert_non_null(buf);
  assert_non_null(want);
  for (size_t i = 0; i < len; i++)
    buf[i] = (char)(i * 31 + (i >> 8));
  bytes_reversed(buf, len, want);
  assert_int_equal(revd__reverse(REVD_REVERSE_BYTES, buf, len), REVD__REVERSED);
  assert_memory_equal(buf, want, len);
  free(buf);
  free(want);
}

/* ---- byte implementations (plain C, SSSE3, AVX2) ------------------------- */

#define GUARD 64
#define ROUNDS_IMPLS 500

/* Runs impl on a copy of in[0..len) placed `off` bytes into a guarded
 * buffer: it must hold in reversed (by the test's own loop, so the plain C
 * implementation is checked too), and no byte outside [off, off + len) may
 * change. */
static void check_impl_guarded(const revd__reverse_impl_t *impl, const char *in, size_t len,
                               size_t off) {
  size_t size = off + len + GUARD;
  char *got = malloc(size), *want = malloc(size);
  assert_true(got && want);
  memset(got, 0x5A, size);
  memset(want, 0x5A, size);
  memcpy(got + off, in, len);
  bytes_reversed(in, len, want + off);
  impl->fn(got + off, len);
  if (memcmp(got, want, size) != 0)
    fail_msg("%s: not the byte reversal, or a byte outside it changed, at length %zu, offset %zu",
             impl->name, len, off);
  free(got);
  free(want);
}

/* The implementations this CPU runs; the plain C one, always last, is among
 * them.  The dispatcher is tested as one more implementation. */
static size_t usable_impls(revd__reverse_impl_t *out, size_t max) {
  size_t n = 0;
  const revd__reverse_impl_t *impl;
  for (size_t i = 0; (impl = revd__reverse_impl(i)) != NULL; i++) {
    assert_non_null(impl->fn);
    if (impl->usable() && n < max)
      out[n++] = *impl;
    if (revd__reverse_impl(i + 1) == NULL) {
      assert_string_equal(impl->name, "c");
      assert_true(impl->usable());
    }
  }
  if (n < max)
    out[n++] = (revd__reverse_impl_t){"dispatched", revd__reverse_bytes, NULL};
  return n;
}

static void test_bytes_impls_every_length(void **state) {
  (void)state;
  revd__reverse_impl_t impls[8];
  size_t n = usable_impls(impls, 8);
  char *in = malloc(4096);
  assert_non_null(in);
  for (size_t i = 0; i < 4096; i++)
    in[i] = (char)(i * 131 + (i >> 7));
  for (size_t k = 0; k < n; k++) {
    print_message("bytes: checking %s\n", impls[k].name);
    for (size_t len = 0; len <= 4096; len++)
      check_impl_guarded(&impls[k], in + (4096 - len), len, len % 61);
  }
  free(in);
}

static void test_bytes_impls_random_offsets(void **state) {
  (void)state;
  revd__reverse_impl_t impls[8];
  size_t n = usable_impls(impls, 8);
  uint64_t seed = rng = test_seed();
  for (int round = 0; round < ROUNDS_IMPLS; round++) {
    size_t len = below(round % 8 ? 8192 : 300000), off = below(64);
    char *in = malloc(len + 1);
    assert_non_null(in);
    for (size_t i = 0; i < len; i++)
      in[i] = (char)next_random();
    for (size_t k = 0; k < n; k++) {
      char *buf = malloc(off + len + 1), *want = malloc(len + 1);
      assert_true(buf && want);
      memcpy(buf + off, in, len);
      bytes_reversed(in, len, want);
      impls[k].fn(buf + off, len);
      if (memcmp(buf + off, want, len) != 0) {
        print_message("%s: length %zu at offset %zu\n", impls[k].name, len, off);
        FAIL_WITH_SEED(seed, round, "bytes: an implementation is not the byte reversal");
      }
      free(buf);
      free(want);
    }
    free(in);
  }
}

/* ---- code points -------------------------------------------------------- */

static void test_codepoints_examples(void **state) {
  (void)state;
  check_reverse(REVD_REVERSE_CODEPOINTS, "h\xC3\xA9llo w\xC3\xB6rld \xE2\x9C\x93",
                "\xE2\x9C\x93 dlr\xC3\xB6w oll\xC3\xA9h", REVD__REVERSED);
  check_units("", "");
  check_units("a", "a");
  check_units("\xC3\xA9", "\xC3\xA9");                 /* é, 2 bytes */
  check_units("\xE2\x9C\x93", "\xE2\x9C\x93");         /* ✓, 3 bytes */
  check_units("\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80"); /* 😀, 4 bytes */
  check_units("a\xC3\xA9\xE2\x9C\x93\xF0\x9F\x98\x80",
              "\xF0\x9F\x98\x80\xE2\x9C\x93\xC3\xA9"
              "a");
  /* code points split what graphemes keep: e + U+0301 */
  check_reverse(REVD_REVERSE_CODEPOINTS, "e\xCC\x81x", "x\xCC\x81"
                                                       "e",
                REVD__REVERSED);
  /* "\r\n" is two code points (one grapheme) */
  check_reverse(REVD_REVERSE_CODEPOINTS, "a\r\n", "\n\ra", REVD__REVERSED);
}

static void test_codepoints_nul(void **state) {
  (void)state;
  /* U+0000 is valid UTF-8: no fallback, binary-safe */
  char buf[] = {'a', '\0', '\xC3', '\xA9'};
  char want[] = {'\xC3', '\xA9', '\0', 'a'};
  for (int unit = REVD_REVERSE_CODEPOINTS; unit <= REVD_REVERSE_GRAPHEMES; unit++) {
    char b[sizeof buf];
    memcpy(b, buf, sizeof b);
    assert_int_equal(revd__reverse(unit, b, sizeof b), REVD__REVERSED);
    assert_memory_equal(b, want, sizeof b);
  }
}

/* ---- graphemes ---------------------------------------------------------- */

#define FR "\xF0\x9F\x87\xAB\xF0\x9F\x87\xB7"
#define DE "\xF0\x9F\x87\xA9\xF0\x9F\x87\xAA"
#define RI_D "\xF0\x9F\x87\xA9"
#define MAN "\xF0\x9F\x91\xA8"
#define WOMAN "\xF0\x9F\x91\xA9"
#define GIRL "\xF0\x9F\x91\xA7"
#define ZWJ_S "\xE2\x80\x8D"
#define FAMILY MAN ZWJ_S WOMAN ZWJ_S GIRL

static void test_graphemes_combining(void **state) {
  (void)state;
  /* "café" with a combining acute: the accent stays on its e */
  check_reverse(REVD_REVERSE_GRAPHEMES, "cafe\xCC\x81", "e\xCC\x81"
                                                        "fac",
                REVD__REVERSED);
  /* several marks on one base, kept in their order */
  check_reverse(REVD_REVERSE_GRAPHEMES, "ae\xCC\x81\xCC\xA3z", "ze\xCC\x81\xCC\xA3"
                                                               "a",
                REVD__REVERSED);
  /* a mark with nothing before it is a cluster of its own (GB2/GB9 need a
   * base): it lands at the end */
  check_reverse(REVD_REVERSE_GRAPHEMES, "\xCC\x81"
                                        "ab",
                "ba\xCC\x81", REVD__REVERSED);
  /* Devanagari: consonant + spacing vowel sign (GB9a) */
  check_reverse(REVD_REVERSE_GRAPHEMES, "\xE0\xA4\x95\xE0\xA4\xBFx",
                "x\xE0\xA4\x95\xE0\xA4\xBF", REVD__REVERSED);
}

static void test_graphemes_emoji(void **state) {
  (void)state;
  check_reverse(REVD_REVERSE_GRAPHEMES, FR DE, DE FR, REVD__REVERSED);
  /* an odd run of regional indicators pairs up from the left (GB12/13) */
  check_reverse(REVD_REVERSE_GRAPHEMES, FR RI_D, RI_D FR, REVD__REVERSED);
  check_reverse(REVD_REVERSE_GRAPHEMES, "a" FAMILY "b", "b" FAMILY "a", REVD__REVERSED);
  check_reverse(REVD_REVERSE_GRAPHEMES, FAMILY FR, FR FAMILY, REVD__REVERSED);
  /* thumbs up + skin tone; keycap 1 + VS16 + U+20E3 */
  check_reverse(REVD_REVERSE_GRAPHEMES, "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD!",
                "!\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD", REVD__REVERSED);
  check_reverse(REVD_REVERSE_GRAPHEMES, "x1\xEF\xB8\x8F\xE2\x83\xA3",
                "1\xEF\xB8\x8F\xE2\x83\xA3x", REVD__REVERSED);
  /* the family broken apart by code points: the ZWJ no longer joins */
  check_reverse(REVD_REVERSE_CODEPOINTS, MAN ZWJ_S WOMAN, WOMAN ZWJ_S MAN, REVD__REVERSED);
}

static void test_graphemes_hangul(void **state) {
  (void)state;
  /* precomposed syllables 한국어 */
  check_reverse(REVD_REVERSE_GRAPHEMES, "\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4",
                "\xEC\x96\xB4\xEA\xB5\xAD\xED\x95\x9C", REVD__REVERSED);
  /* jamo: L V T (각) then L V (가): two clusters (GB6-GB8) */
  check_reverse(REVD_REVERSE_GRAPHEMES,
                "\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8"
                "\xE1\x84\x80\xE1\x85\xA1",
                "\xE1\x84\x80\xE1\x85\xA1"
                "\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8",
                REVD__REVERSED);
  /* LV syllable 가 + trailing jamo T: one cluster (GB7) */
  check_reverse(REVD_REVERSE_GRAPHEMES, "a\xEA\xB0\x80\xE1\x86\xA8",
                "\xEA\xB0\x80\xE1\x86\xA8"
                "a",
                REVD__REVERSED);
}

static void test_graphemes_crlf(void **state) {
  (void)state;
  /* "\r\n" is one cluster (GB3) and stays in that order */
  check_reverse(REVD_REVERSE_GRAPHEMES, "a\r\nb", "b\r\na", REVD__REVERSED);
  /* "\n\r" is two */
  check_reverse(REVD_REVERSE_GRAPHEMES, "a\n\rb", "b\r\na", REVD__REVERSED);
  /* a mark after a control does not attach to it (GB4) */
  check_reverse(REVD_REVERSE_GRAPHEMES, "\n\xCC\x81", "\xCC\x81\n", REVD__REVERSED);
  /* line mode strips the '\n': the "\r" left at the end is plain data */
  check_reverse(REVD_REVERSE_GRAPHEMES, "ab\r", "\rba", REVD__REVERSED);
}

/* ---- invalid UTF-8 ------------------------------------------------------ */

static void test_invalid_utf8_falls_back_to_bytes(void **state) {
  (void)state;
  static const char *bad[] = {
      "abc\xC3",               /* truncated 2-byte sequence at the end */
      "\xE2\x9C",              /* truncated 3-byte sequence, alone */
      "a\xF0\x9F\x98z",        /* truncated 4-byte sequence inside */
      "a\x80z",                /* lone continuation byte */
      "\xC0\xAF",              /* overlong '/' */
      "\xE0\x80\xAF",          /* overlong '/', 3 bytes */
      "\xF0\x80\x80\xAF",      /* overlong '/', 4 bytes */
      "x\xED\xA0\x80y",        /* surrogate U+D800 */
      "\xED\xBF\xBF",          /* surrogate U+DFFF */
      "ok\xFF",                /* 0xFF never appears in UTF-8 */
      "\xFE",                  /* neither does 0xFE */
      "\xF4\x90\x80\x80",      /* U+110000, past the last code point */
      "h\xC3\xA9llo \xC3(",    /* good text, then a bad pair */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t len = strlen(bad[i]);
    char want[16] = {0};
    assert_true(len < sizeof want);
    bytes_reversed(bad[i], len, want);
    check_reverse(REVD_REVERSE_CODEPOINTS, bad[i], want, REVD__REVERSED_BYTES);
    check_reverse(REVD_REVERSE_GRAPHEMES, bad[i], want, REVD__REVERSED_BYTES);
  }
}

/* The two cases reverse.h documents where reversing twice does not give
 * the message back. */
static void test_documented_non_round_trips(void **state) {
  (void)state;
  char accent_first[] = "\xCC\x81"
                        "a";
  assert_int_equal(revd__reverse(REVD_REVERSE_GRAPHEMES, accent_first, 3), REVD__REVERSED);
  assert_memory_equal(accent_first, "a\xCC\x81", 3);
  assert_int_equal(revd__reverse(REVD_REVERSE_GRAPHEMES, accent_first, 3), REVD__REVERSED);
  assert_memory_equal(accent_first, "a\xCC\x81", 3); /* now one cluster */

  char broken[] = "\x80\xC3";
  assert_int_equal(revd__reverse(REVD_REVERSE_CODEPOINTS, broken, 2), REVD__REVERSED_BYTES);
  assert_memory_equal(broken, "\xC3\x80", 2); /* valid: U+00C0 */
  assert_int_equal(revd__reverse(REVD_REVERSE_CODEPOINTS, broken, 2), REVD__REVERSED);
  assert_memory_equal(broken, "\xC3\x80", 2);
}

static void test_unknown_unit_is_bytes(void **state) {
  (void)state;
  check_reverse(42, "ab\xC3\xA9", "\xA9\xC3"
                                  "ba",
                REVD__REVERSED);
  check_reverse(-1, "abc", "cba", REVD__REVERSED);
}

/* ---- no overread -------------------------------------------------------- */

/* Each input in a heap block of exactly its length, so ASan (the sanitizer
 * build) reports any read or write one byte past the end.  The last ones end
 * in the middle of a sequence, where a decoder is most tempted to look
 * ahead. */
static void test_exact_size_buffers(void **state) {
  (void)state;
  static const char *inputs[] = {
      "", "a", "\xC3\xA9", "\xE2\x9C\x93", "\xF0\x9F\x98\x80", FAMILY, FR DE,
      "e\xCC\x81", "a\r\n", "\r", "\xC3", "\xE2\x9C", "\xF0\x9F\x98", "a\xF0",
      "\xED\xA0", "\xCC",
  };
  for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
    size_t len = strlen(inputs[i]);
    for (int unit = REVD_REVERSE_BYTES; unit <= REVD_REVERSE_GRAPHEMES; unit++) {
      char *buf = malloc(len ? len : 1);
      assert_non_null(buf);
      memcpy(buf, inputs[i], len);
      int r = revd__reverse(unit, buf, len);
      assert_true(r == REVD__REVERSED || r == REVD__REVERSED_BYTES);
      free(buf);
    }
  }
}

/* ---- random round trips ------------------------------------------------- */

#define ROUNDS 2000
#define MAX_UNITS 64
#define MAX_BYTES (MAX_UNITS * 32)

static void test_bytes_round_trip(void **state) {
  (void)state;
  uint64_t seed = rng = test_seed();
  for (int round = 0; round < ROUNDS; round++) {
    size_t len = below(MAX_BYTES);
    char *in = malloc(len + 1), *buf = malloc(len + 1), *want = malloc(len + 1);
    assert_true(in && buf && want);
    for (size_t i = 0; i < len; i++)
      in[i] = (char)next_random();
    memcpy(buf, in, len);
    bytes_reversed(in, len, want);
    revd__reverse(REVD_REVERSE_BYTES, buf, len);
    if (memcmp(buf, want, len) != 0)
      FAIL_WITH_SEED(seed, round, "bytes: not the byte reversal");
    revd__reverse(REVD_REVERSE_BYTES, buf, len);
    if (memcmp(buf, in, len) != 0)
      FAIL_WITH_SEED(seed, round, "bytes: reversing twice changed the input");
    free(in);
    free(buf);
    free(want);
  }
}

/* Random mixes of anything: code points always round-trip; graphemes give
 * valid UTF-8 equal to the reference (they need not round-trip: a lone
 * accent at the start of a string joins a base once it comes last). */
static void test_unicode_random_mix(void **state) {
  (void)state;
  static char in[MAX_BYTES], buf[MAX_BYTES], want[MAX_BYTES];
  uint64_t seed = rng = test_seed();
  for (int round = 0; round < ROUNDS; round++) {
    size_t len = 0;
    for (uint32_t n = below(MAX_UNITS); n > 0; n--)
      put_any(in, &len);

    memcpy(buf, in, len);
    if (revd__reverse(REVD_REVERSE_CODEPOINTS, buf, len) != REVD__REVERSED)
      FAIL_WITH_SEED(seed, round, "codepoints: valid input fell back to bytes");
    if (!is_valid_utf8(buf, len))
      FAIL_WITH_SEED(seed, round, "codepoints: output is not valid UTF-8");
    if (revd__reverse(REVD_REVERSE_CODEPOINTS, buf, len) != REVD__REVERSED ||
        memcmp(buf, in, len) != 0)
      FAIL_WITH_SEED(seed, round, "codepoints: reversing twice changed the input");

    memcpy(buf, in, len);
    graphemes_reference(in, len, want);
    if (revd__reverse(REVD_REVERSE_GRAPHEMES, buf, len) != REVD__REVERSED)
      FAIL_WITH_SEED(seed, round, "graphemes: valid input fell back to bytes");
    if (!is_valid_utf8(buf, len))
      FAIL_WITH_SEED(seed, round, "graphemes: output is not valid UTF-8");
    if (memcmp(buf, want, len) != 0)
      FAIL_WITH_SEED(seed, round, "graphemes: differs from utf8proc_map CHARBOUND");
  }
}

/* Strings of clusters that can not join each other: reversing them by
 * graphemes twice gives them back, and each cluster comes out whole. */
static void test_graphemes_round_trip(void **state) {
  (void)state;
  static char in[MAX_BYTES], buf[MAX_BYTES], want[MAX_BYTES];
  uint64_t seed = rng = test_seed();
  for (int round = 0; round < ROUNDS; round++) {
    size_t len = 0, starts[MAX_UNITS + 1];
    uint32_t n = below(MAX_UNITS);
    for (uint32_t k = 0; k < n; k++) {
      starts[k] = len;
      put_cluster(in, &len);
    }
    starts[n] = len;
    /* what we built, cluster by cluster, in reverse order */
    size_t at = 0;
    for (uint32_t k = n; k > 0; k--) {
      memcpy(want + at, in + starts[k - 1], starts[k] - starts[k - 1]);
      at += starts[k] - starts[k - 1];
    }
    memcpy(buf, in, len);
    if (revd__reverse(REVD_REVERSE_GRAPHEMES, buf, len) != REVD__REVERSED)
      FAIL_WITH_SEED(seed, round, "graphemes: valid input fell back to bytes");
    if (memcmp(buf, want, len) != 0)
      FAIL_WITH_SEED(seed, round, "graphemes: a cluster was split or joined");
    if (!is_valid_utf8(buf, len))
      FAIL_WITH_SEED(seed, round, "graphemes: output is not valid UTF-8");
    if (revd__reverse(REVD_REVERSE_GRAPHEMES, buf, len) != REVD__REVERSED ||
        memcmp(buf, in, len) != 0)
      FAIL_WITH_SEED(seed, round, "graphemes: reversing twice changed the input");
  }
}

/* ---- UAX #29 conformance ------------------------------------------------ */

#define GRAPHEME_TEST "/usr/share/unicode/auxiliary/GraphemeBreakTest.txt"

/* Parses one test line ("÷ 0061 × 0308 ÷ 0062 ÷ # comment") into the UTF-8
 * string and its expected grapheme reversal.  Returns the length, or 0 for
 * lines without a test. */
static size_t parse_grapheme_line(const char *line, char *in, char *want) {
  size_t len = 0, starts[64], nclusters = 0;
  const char *p = line;
  while (*p && *p != '#') {
    if (strncmp(p, "\xC3\xB7", 2) == 0) { /* ÷: a break */
      starts[nclusters++] = len;
      p += 2;
    } else if (strncmp(p, "\xC3\x97", 2) == 0) { /* ×: no break */
      p += 2;
    } else if ((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'F')) {
      char *end;
      put(in, &len, (uint32_t)strtoul(p, &end, 16));
      p = end;
    } else {
      p++;
    }
    assert_true(nclusters < 64 && len < 256);
  }
  /* starts[] ends with the final ÷, at len */
  for (size_t k = nclusters - 1, at = 0; len > 0 && k > 0; k--) {
    size_t clen = starts[k] - starts[k - 1];
    memcpy(want + at, in + starts[k - 1], clen);
    at += clen;
  }
  return len;
}

/* The official test, when Debian's unicode-data is installed and is the
 * Unicode version utf8proc implements (other pairs legitimately differ). */
static void test_graphemes_uax29_conformance(void **state) {
  (void)state;
  FILE *f = fopen(GRAPHEME_TEST, "r");
  if (!f) {
    print_message("no %s (Debian package unicode-data): skipped\n", GRAPHEME_TEST);
    skip();
  }
  char line[2048], version[64];
  snprintf(version, sizeof version, "GraphemeBreakTest-%s.txt", utf8proc_unicode_version());
  if (!fgets(line, sizeof line, f) || !strstr(line, version)) {
    print_message("%s is not %s: skipped\n", GRAPHEME_TEST, version);
    fclose(f);
    skip();
  }
  int tested = 0;
  while (fgets(line, sizeof line, f)) {
    char in[256], want[256];
    size_t len = parse_grapheme_line(line, in, want);
    if (len == 0)
      continue;
    if (revd__reverse(REVD_REVERSE_GRAPHEMES, in, len) != REVD__REVERSED ||
        memcmp(in, want, len) != 0)
      fail_msg("UAX #29 test line: %s", line);
    tested++;
  }
  fclose(f);
  assert_true(tested > 500);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bytes_small),
      cmocka_unit_test(test_bytes_binary),
      cmocka_unit_test(test_bytes_64k),
      cmocka_unit_test(test_bytes_impls_every_length),
      cmocka_unit_test(test_bytes_impls_random_offsets),
      cmocka_unit_test(test_codepoints_examples),
      cmocka_unit_test(test_codepoints_nul),
      cmocka_unit_test(test_graphemes_combining),
      cmocka_unit_test(test_graphemes_emoji),
      cmocka_unit_test(test_graphemes_hangul),
      cmocka_unit_test(test_graphemes_crlf),
      cmocka_unit_test(test_invalid_utf8_falls_back_to_bytes),
      cmocka_unit_test(test_documented_non_round_trips),
      cmocka_unit_test(test_unknown_unit_is_bytes),
      cmocka_unit_test(test_exact_size_buffers),
      cmocka_unit_test(test_bytes_round_trip),
      cmocka_unit_test(test_unicode_random_mix),
      cmocka_unit_test(test_graphemes_round_trip),
      cmocka_unit_test(test_graphemes_uax29_conformance),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
