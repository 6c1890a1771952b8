/* Unit tests of the latency histogram: bucket bounds, and percentiles
 * against a sorted list of the recorded values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hist.h"

static hist_t h;

static uint64_t next_rand(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The exact percentile of a sorted list, with hist_percentile's definition. */
static uint64_t exact(const uint64_t *sorted, size_t n, double p) {
  double want = p / 100.0 * (double)n;
  size_t rank = (size_t)want;
  if ((double)rank < want)
    rank++;
  if (rank < 1)
    rank = 1;
  return sorted[rank - 1];
}

static void check_within_1pct(const uint64_t *values, size_t n) {
  uint64_t *sorted = malloc(n * sizeof *sorted);
  assert_non_null(sorted);
  memcpy(sorted, values, n * sizeof *sorted);
  qsort(sorted, n, sizeof *sorted, cmp_u64);
  static const double ps[] = {1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100};
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
    double want = (double)exact(sorted, n, ps[i]);
    double got = (double)hist_percentile(&h, ps[i]);
    double err = want ? (got - want) / want : got;
    if (err < 0)
      err = -err;
    if (err > 0.01)
      fail_msg("p%.2f: histogram %.0f, sorted list %.0f (%.3f%% off)", ps[i], got, want,
               err * 100);
  }
  assert_int_equal(hist_percentile(&h, 100.0), sorted[n - 1]);
  assert_int_equal(h.min, sorted[0]);
  free(sorted);
}

static void buckets_tile_the_range(void **state) {
  (void)state;
  /* Each bucket starts right after the previous ends, and is narrow. */
  for (unsigned i = 1; i < HIST_BUCKETS; i++) {
    assert_int_equal(hist_bucket_low(i), hist_bucket_high(i - 1) + 1);
    uint64_t lo = hist_bucket_low(i), hi = hist_bucket_high(i);
    assert_true((double)(hi - lo) <= (double)lo / 128.0);
    assert_int_equal(hist_index(lo), i);
    assert_int_equal(hist_index(hi), i);
  }
  assert_int_equal(hist_index(UINT64_MAX), HIST_BUCKETS - 1);
  assert_int_equal(hist_bucket_high(HIST_BUCKETS - 1), UINT64_MAX);
}

static void empty_is_zero(void **state) {
  (void)state;
  hist_reset(&h);
  assert_int_equal(hist_percentile(&h, 50.0), 0);
  assert_int_equal(h.total, 0);
}

static void small_values_are_exact(void **state) {
  (void)state;
  hist_reset(&h);
  for (uint64_t v = 1; v <= 100; v++)
    hist_record(&h, v);
  assert_int_equal(hist_percentile(&h, 50.0), 50);
  assert_int_equal(hist_percentile(&h, 99.0), 99);
  assert_int_equal(hist_percentile(&h, 100.0), 100);
  assert_int_equal(hist_percentile(&h, 0.001), 1);
}

static void random_latencies_match_sorted_list(void **state) {
  (void)state;
  enum { N = 200000 };
  uint64_t *v = malloc(N * sizeof *v), s = 88172645463325252u;
  assert_non_null(v);
  hist_reset(&h);
  for (size_t i = 0; i < N; i++) {
    /* log-uniform from 1 us to ~1 s in ns, the shape of real latencies */
    unsigned shift = (unsigned)(next_rand(&s) % 20);
    v[i] = 1000 + (next_rand(&s) % (UINT64_C(1000) << shift));
    hist_record(&h, v[i]);
  }
  check_within_1pct(v, N);
  free(v);
}

static void heavy_tail_matches_sorted_list(void **state) {
  (void)state;
  enum { N = 10000 };
  uint64_t v[N], s = 42;
  hist_reset(&h);
  for (size_t i = 0; i < N; i++) {
    v[i] = i % 100 == 0 ? 5000000000u + next_rand(&s) % 1000000 : 40000 + next_rand(&s) % 20000;
    hist_record(&h, v[i]);
  }
  check_within_1pct(v, N);
}

static void merge_adds_counts(void **state) {
  (void)state;
  static hist_t a, b;
  hist_reset(&a);
  hist_reset(&b);
  hist_record(&a, 10);
  hist_record(&b, 1000000);
  hist_record(&b, 5);
  hist_merge(&a, &b);
  assert_int_equal(a.total, 3);
  assert_int_equal(a.min, 5);
  assert_int_equal(a.max, 1000000);
  assert_int_equal(hist_percentile(&a, 50.0), 10);
}

/* The --latency spectrum: HdrHistogram's rows, each row's value the one
 * hist_percentile() gives for its percentile, ending at 100% with "inf". */
static void spectrum_rows_are_percentiles(void **state) {
  (void)state;
  hist_reset(&h);
  for (uint64_t v = 1; v <= 1000; v++)
    hist_record(&h, v * 1000);
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  assert_non_null(out);
  hist_print_spectrum(out, &h, 1e3);
  fclose(out);
  assert_non_null(strstr(text, "Value   Percentile   TotalCount 1/(1-Percentile)"));
  int rows = 0;
  double last_pct = -1.0;
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    double value, pct, inv;
    unsigned long long total;
    char tail[16];
    if (sscanf(line, "%lf %lf %llu %15s", &value, &pct, &total, tail) != 4)
      continue;
    rows++;
    assert_true(pct > last_pct);
    last_pct = pct;
    if (pct == 1.0) {
      assert_string_equal(tail, "inf");
      assert_int_equal(total, 1000);
      continue;
    }
    inv = strtod(tail, NULL);
    assert_true(inv >= 1.0);
    uint64_t want = hist_percentile(&h, pct * 100.0);
    assert_true(value * 1e3 >= (double)want - 1.0 && value * 1e3 <= (double)want + 1.0);
  }
  assert_true(rows > 30); /* 0, 10, ..., 50, 55, ..., 99.9..., 100 */
  assert_true(last_pct == 1.0);
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(buckets_tile_the_range),
      cmocka_unit_test(empty_is_zero),
      cmocka_unit_test(small_values_are_exact),
      cmocka_unit_test(random_latencies_match_sorted_list),
      cmocka_unit_test(heavy_tail_matches_sorted_list),
      cmocka_unit_test(merge_adds_counts),
      cmocka_unit_test(spectrum_rows_are_percentiles),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
