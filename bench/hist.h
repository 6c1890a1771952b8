/* hist.h — a log-linear latency histogram (HdrHistogram's design).
 *
 * Values are unsigned 64-bit integers (revbench records nanoseconds).
 * Values below 2^HIST_SUB_BITS+1 get a bucket of their own; above, each
 * power of two is split into 2^HIST_SUB_BITS equal buckets, so a bucket is
 * never wider than 1/128 of the values it holds.  A percentile is reported as
 * its bucket's midpoint, which is within 0.4% of every value in the bucket
 * (the 1% the contract asks for, with room to spare).  Recording is an
 * index computation and an increment: no allocation, no branch on size.
 */
#ifndef REVBENCH_HIST_H
#define REVBENCH_HIST_H

#include <stdint.h>
#include <stdio.h>

#define HIST_SUB_BITS 7
#define HIST_SUB_COUNT (1u << HIST_SUB_BITS)          /* 128 buckets per power of two */
#define HIST_BUCKETS ((64 - HIST_SUB_BITS) * HIST_SUB_COUNT + HIST_SUB_COUNT) /* 7424 */

typedef struct hist {
  uint64_t total; /* values recorded */
  uint64_t min, max; /* exact; min is UINT64_MAX while empty */
  uint64_t counts[HIST_BUCKETS];
} hist_t;

/* Empties h (h is caller-owned; about 58 KiB, keep it off small stacks). */
void hist_reset(hist_t *h);

/* Records one value. */
void hist_record(hist_t *h, uint64_t value);

/* Adds every value of src to dst. */
void hist_merge(hist_t *dst, const hist_t *src);

/* The value at percentile p (0 < p <= 100): the smallest recorded value v
 * such that at least p% of the values are <= v, within the bucket error;
 * clamped to [min, max].  p = 100 returns max exactly.  0 when empty. */
uint64_t hist_percentile(const hist_t *h, double p);

/* Prints the whole percentile spectrum in HdrHistogram's classic layout, the
 * one wrk2's --latency prints and HdrHistogram's plotters read: a header,
 * then "Value Percentile TotalCount 1/(1-Percentile)" rows (values divided
 * by unit: 1e6 prints nanoseconds as milliseconds), the last one at 100%
 * (1/(1-p) "inf"), then the #[Mean ...] footer.  A row's value is what
 * hist_percentile() reports for its percentile. */
void hist_print_spectrum(FILE *out, const hist_t *h, double unit);

/* Bucket arithmetic, exposed for the tests. */
unsigned hist_index(uint64_t value);
uint64_t hist_bucket_low(unsigned index);  /* smallest value in the bucket */
uint64_t hist_bucket_high(unsigned index); /* largest value in the bucket */

#endif
