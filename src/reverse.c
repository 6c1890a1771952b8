/* reverse.c — reversal of one message in place, by bytes, code points or
 * extended grapheme clusters.
 *
 * Every unit uses the same O(1)-memory trick: reverse the bytes of each unit
 * where it stands, then reverse the whole buffer.  The second pass puts the
 * units in reverse order and turns each unit's bytes the right way round
 * again.  Unit boundaries are found left to right on the part of the buffer
 * the first pass has not touched yet, so no copy of the message is needed. */
#include "reverse.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <utf8proc.h>

#include "revd.h"

/* The plain C reversal, the reference the vector ones are tested against,
 * and the one used for short buffers and on CPUs without SSSE3. */
void revd__reverse_bytes_c(char *buf, size_t len) {
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

#if REVD__REVERSE_X86
#include <immintrin.h>

/* Each loop takes a block from each end, loads both before storing either
 * (so they may not overlap: it runs while twice the block remains) and
 * stores each reversed at the other end; what is left in the middle is
 * shorter than two blocks and goes to the next smaller loop. Unaligned
 * loads and stores throughout: on every CPU with SSSE3 they cost the same
 * as aligned ones when the data is aligned, and messages start anywhere. */

/* 16 bytes from each end per step: pshufb reverses a 16-byte register. */
__attribute__((target("ssse3"))) void revd__reverse_bytes_ssse3(char *buf, size_t len) {
  const __m128i rev = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  char *lo = buf, *hi = buf + len; /* hi: one past the end */
  while (hi - lo >= 32) {
    __m128i a = _mm_loadu_si128((const __m128i *)(void *)lo);
    __m128i b = _mm_loadu_si128((const __m128i *)(void *)(hi - 16));
    _mm_storeu_si128((__m128i *)(void *)lo, _mm_shuffle_epi8(b, rev));
    _mm_storeu_si128((__m128i *)(void *)(hi - 16), _mm_shuffle_epi8(a, rev));
    lo += 16;
    hi -= 16;
  }
  revd__reverse_bytes_c(lo, (size_t)(hi - lo));
}

/* 64 bytes from each end per step, as two 32-byte registers: vpshufb
 * reverses within each 128-bit lane, vpermq swaps the lanes. */
__attribute__((target("avx2"))) void revd__reverse_bytes_avx2(char *buf, size_t len) {
  const __m256i rev = _mm256_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1,
                                      2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  char *lo = buf, *hi = buf + len; /* hi: one past the end */
  while (hi - lo >= 128) {
    __m256i a0 = _mm256_loadu_si256((const __m256i *)(void *)lo);
    __m256i a1 = _mm256_loadu_si256((const __m256i *)(void *)(lo + 32));
    __m256i b0 = _mm256_loadu_si256((const __m256i *)(void *)(hi - 32));
    __m256i b1 = _mm256_loadu_si256((const __m256i *)(void *)(hi - 64));
    a0 = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(a0, rev), 0x4E);
    a1 = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(a1, rev), 0x4E);
    b0 = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(b0, rev), 0x4E);
    b1 = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(b1, rev), 0x4E);
    _mm256_storeu_si256((__m256i *)(void *)lo, b0);
    _mm256_storeu_si256((__m256i *)(void *)(lo + 32), b1);
    _mm256_storeu_si256((__m256i *)(void *)(hi - 32), a0);
    _mm256_storeu_si256((__m256i *)(void *)(hi - 64), a1);
    lo += 64;
    hi -= 64;
  }
  while (hi - lo >= 64) {
    __m256i a = _mm256_loadu_si256((const __m256i *)(void *)lo);
    __m256i b = _mm256_loadu_si256((const __m256i *)(void *)(hi - 32));
    a = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(a, rev), 0x4E);
    b = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(b, rev), 0x4E);
    _mm256_storeu_si256((__m256i *)(void *)lo, b);
    _mm256_storeu_si256((__m256i *)(void *)(hi - 32), a);
    lo += 32;
    hi -= 32;
  }
  revd__reverse_bytes_ssse3(lo, (size_t)(hi - lo));
}

static int have_ssse3(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("ssse3");
}

static int have_avx2(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2");
}
#endif /* REVD__REVERSE_X86 */

static int always(void) {
  return 1;
}

/* Best first: the dispatcher takes the first one this CPU can run. */
static const revd__reverse_impl_t impls[] = {
#if REVD__REVERSE_X86
    {"avx2", revd__reverse_bytes_avx2, have_avx2},
    {"ssse3", revd__reverse_bytes_ssse3, have_ssse3},
#endif
    {"c", revd__reverse_bytes_c, always},
};

const revd__reverse_impl_t *revd__reverse_impl(size_t i) {
  return i < sizeof impls / sizeof impls[0] ? &impls[i] : NULL;
}

/* Below this the vector loops would hand everything to their tail anyway:
 * the plain loop is called directly, without the indirect call. */
#define VECTOR_MIN 64

/* The implementation for this CPU is found on first use and cached.  That
 * cache is the library's one piece of writable static data, and it breaks
 * no promise: every thread that finds it empty computes the same value (the
 * CPU does not change under a running process), so two servers, or two
 * threads racing on the first call, can only store identical pointers.
 * Relaxed atomics make the race defined behaviour without a fence on the
 * hot path.  (An ifunc would resolve it at load time instead, but runs the
 * CPU check before the sanitizer runtimes and static constructors are up,
 * and is a GNU-only extension of the linker; this works everywhere.) */
void revd__reverse_bytes(char *buf, size_t len) {
  static _Atomic(revd__reverse_fn *) chosen;
  if (len < VECTOR_MIN) {
    revd__reverse_bytes_c(buf, len);
    return;
  }
  revd__reverse_fn *fn = atomic_load_explicit(&chosen, memory_order_relaxed);
  if (fn == NULL) {
    const revd__reverse_impl_t *impl = impls;
    while (!impl->usable())
      impl++; /* the last one, plain C, is always usable */
    fn = impl->fn;
    atomic_store_explicit(&chosen, fn, memory_order_relaxed);
  }
  fn(buf, len);
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
