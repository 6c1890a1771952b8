#include "hist.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

void hist_reset(hist_t *h) {
  memset(h, 0, sizeof *h);
  h->min = UINT64_MAX;
}

/* shift = how many low bits a bucket ignores: 0 for small values. */
unsigned hist_index(uint64_t value) {
  if (value < 2 * HIST_SUB_COUNT)
    return (unsigned)value;
  unsigned msb = 63u - (unsigned)__builtin_clzll(value);
  unsigned shift = msb - HIST_SUB_BITS;
  return shift * HIST_SUB_COUNT + (unsigned)(value >> shift);
}

uint64_t hist_bucket_low(unsigned index) {
  if (index < 2 * HIST_SUB_COUNT)
    return index;
  unsigned shift = index / HIST_SUB_COUNT - 1;
  uint64_t top = index - shift * HIST_SUB_COUNT; /* in [128, 255] */
  return top << shift;
}

uint64_t hist_bucket_high(unsigned index) {
  if (index < 2 * HIST_SUB_COUNT)
    return index;
  unsigned shift = index / HIST_SUB_COUNT - 1;
  return hist_bucket_low(index) + ((UINT64_C(1) << shift) - 1);
}

void hist_record(hist_t *h, uint64_t value) {
  h->counts[hist_index(value)]++;
  h->total++;
  if (value < h->min)
    h->min = value;
  if (value > h->max)
    h->max = value;
}

void hist_merge(hist_t *dst, const hist_t *src) {
  if (src->total == 0)
    return;
  for (unsigned i = 0; i < HIST_BUCKETS; i++)
    dst->counts[i] += src->counts[i];
  dst->total += src->total;
  if (src->min < dst->min)
    dst->min = src->min;
  if (src->max > dst->max)
    dst->max = src->max;
}

/* What bucket i reports: its midpoint, clamped to what was recorded. */
static uint64_t bucket_value(const hist_t *h, unsigned i) {
  uint64_t lo = hist_bucket_low(i), hi = hist_bucket_high(i);
  uint64_t v = lo + (hi - lo) / 2;
  if (v < h->min)
    v = h->min;
  if (v > h->max)
    v = h->max;
  return v;
}

uint64_t hist_percentile(const hist_t *h, double p) {
  if (h->total == 0)
    return 0;
  if (p >= 100.0)
    return h->max;
  /* Rank of the value wanted, 1-based: ceil(p% of total), at least 1. */
  double want = ceil(p / 100.0 * (double)h->total);
  uint64_t rank = want < 1.0 ? 1 : (uint64_t)want;
  uint64_t seen = 0;
  for (unsigned i = 0; i < HIST_BUCKETS; i++) {
    seen += h->counts[i];
    if (seen >= rank)
      return bucket_value(h, i);
  }
  return h->max;
}

/* HdrHistogram's percentile iterator: 5 reporting ticks per halving of the
 * distance to 100%, so 0, 10, ... 50, 55, ... 75, 77.5, ... */
static double next_tick(double pct) {
  double half = pow(2.0, floor(log(100.0 / (100.0 - pct)) / log(2.0)) + 1.0);
  return pct + 100.0 / (5.0 * half);
}

void hist_print_spectrum(FILE *out, const hist_t *h, double unit) {
  fprintf(out, "%12s %12s %12s %12s\n\n", "Value", "Percentile", "TotalCount",
          "1/(1-Percentile)");
  double sum = 0.0, sq = 0.0, pct = 0.0;
  uint64_t seen = 0;
  for (unsigned i = 0; i < HIST_BUCKETS && seen < h->total; i++) {
    if (!h->counts[i])
      continue;
    double v = (double)bucket_value(h, i) / unit;
    sum += v * (double)h->counts[i];
    sq += v * v * (double)h->counts[i];
    seen += h->counts[i];
    double reached = 100.0 * (double)seen / (double)h->total;
    while (pct <= reached) {
      fprintf(out, "%12.3f %12.6f %12" PRIu64 " %12.2f\n", v, pct / 100.0, seen,
              1.0 / (1.0 - pct / 100.0));
      pct = next_tick(pct);
      if (seen == h->total)
        break; /* the last bucket reports once, then 100% below */
    }
  }
  double n = h->total ? (double)h->total : 1.0, mean = sum / n;
  double var = sq / n - mean * mean;
  if (h->total)
    fprintf(out, "%12.3f %12.6f %12" PRIu64 " %12.2f\n", (double)h->max / unit, 1.0, h->total,
            INFINITY);
  fprintf(out, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", mean, var > 0 ? sqrt(var) : 0.0);
  fprintf(out, "#[Max     = %12.3f, Total count    = %12" PRIu64 "]\n", (double)h->max / unit,
          h->total);
  fprintf(out, "#[Buckets = %12u, SubBuckets     = %12u]\n", HIST_BUCKETS / HIST_SUB_COUNT,
          HIST_SUB_COUNT);
}
