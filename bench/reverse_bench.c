/* reverse-bench — the reversal against memcpy on one buffer (default 1 MiB):
 * every byte implementation this CPU runs (bench/../src/reverse.c), the
 * dispatched one revd uses, then code points and graphemes on UTF-8 text.
 * memcpy copies the buffer to another one; the reversals work in place, as
 * revd does.
 *
 * Each case runs for SECONDS; the figure is its fastest single pass (on a
 * shared machine the fastest pass is the one nobody interrupted).  MB are
 * 10^6 bytes.  Prints a Markdown table on stdout.
 *
 * usage: reverse-bench [BYTES [SECONDS]]   (default 1048576 and 0.3)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "revd.h"
#include "reverse.h"

static char *src, *dst;
static size_t size;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The compiler may not drop a pass whose result nobody reads. */
static void clobber(void *p) {
  __asm__ volatile("" : : "r"(p) : "memory");
}

/* The fastest of the passes that fit in `seconds`, in seconds (at least 3). */
static double best_pass(void (*pass)(void *), void *arg, double seconds) {
  double best = 1e9, start = now();
  for (int n = 0; n < 3 || now() - start < seconds; n++) {
    double t0 = now();
    pass(arg);
    double t = now() - t0;
    if (t < best)
      best = t;
  }
  return best;
}

static void pass_memcpy(void *arg) {
  (void)arg;
  memcpy(dst, src, size);
  clobber(dst);
}

static revd__reverse_fn *impl_fn;
static void pass_impl(void *arg) {
  (void)arg;
  impl_fn(src, size);
  clobber(src);
}

static int unit;
static void pass_unit(void *arg) {
  (void)arg;
  revd__reverse(unit, src, size);
  clobber(src);
}

/* UTF-8 text of `size` bytes: words of ASCII, accented Latin, a check mark,
 * an emoji, a letter with a combining accent.  Whole pieces only. */
static void fill_text(char *buf) {
  static const char *pieces[] = {"hello ", "w\xC3\xB6rld ", "\xE2\x9C\x93 ", "\xF0\x9F\x98\x80 ",
                                 "e\xCC\x81t\xC3\xA9 ", "reverse ", "\xD0\xBC\xD0\xB8\xD1\x80 "};
  size_t len = 0, i = 0;
  while (len < size) {
    const char *p = pieces[i++ % (sizeof pieces / sizeof pieces[0])];
    size_t n = strlen(p);
    if (len + n > size) {
      memset(buf + len, ' ', size - len);
      break;
    }
    memcpy(buf + len, p, n);
    len += n;
  }
}

static void row(const char *what, double secs, double base) {
  double mbs = (double)size / secs / 1e6;
  printf("| %s | %.0f | %.3g |\n", what, mbs, base / secs);
}

int main(int argc, char **argv) {
  size = argc > 1 ? (size_t)strtoull(argv[1], NULL, 0) : 1u << 20;
  double seconds = argc > 2 ? atof(argv[2]) : 0.3;
  if (size == 0 || seconds <= 0) {
    fprintf(stderr, "usage: reverse-bench [BYTES [SECONDS]]\n");
    return 2;
  }
  src = malloc(size);
  dst = malloc(size);
  if (!src || !dst) {
    fprintf(stderr, "reverse-bench: malloc %zu: out of memory\n", size);
    return 1;
  }
  uint64_t x = 0x9E3779B97F4A7C15u;
  for (size_t i = 0; i < size; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    src[i] = (char)x;
  }
  memset(dst, 0, size); /* fault the pages in before timing */

  double base = best_pass(pass_memcpy, NULL, seconds);
  printf("| %zu-byte buffer | MB/s | x memcpy |\n| --- | ---: | ---: |\n", size);
  row("memcpy (to another buffer)", base, base);
  const revd__reverse_impl_t *impl;
  for (size_t i = 0; (impl = revd__reverse_impl(i)) != NULL; i++) {
    char what[64];
    if (!impl->usable()) {
      printf("| bytes, %s | not on this CPU | |\n", impl->name);
      continue;
    }
    snprintf(what, sizeof what, "bytes, %s (in place)", impl->name);
    impl_fn = impl->fn;
    row(what, best_pass(pass_impl, NULL, seconds), base);
  }
  row("bytes, dispatched: revd__reverse()", best_pass(pass_unit, NULL, seconds), base);
  fill_text(src);
  unit = REVD_REVERSE_CODEPOINTS;
  row("code points (UTF-8 text)", best_pass(pass_unit, NULL, seconds), base);
  fill_text(src); /* graphemes reversed from the same text, not its reversal */
  unit = REVD_REVERSE_GRAPHEMES;
  row("graphemes (UTF-8 text)", best_pass(pass_unit, NULL, seconds), base);
  free(src);
  free(dst);
  return 0;
}
