#include "hist.h"

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
    if (seen >= rank) {
      uint64_t lo = hist_bucket_low(i), hi = hist_bucket_high(i);
      uint64_t v = lo + (hi - lo) / 2;
      if (v < h->min)
        v = h->min;
      if (v > h->max)
        v = h->max;
      return v;
    }
  }
  return h->max;
}
