/* bench.h — revbench's engine: worker threads, each running its own libuv
 * loop over a fixed set of connections, and the control loop around them. */
#ifndef REVBENCH_BENCH_H
#define REVBENCH_BENCH_H

#include <stdint.h>

#include "args.h"
#include "hist.h"

/* Every exchange ends as exactly one of these. */
enum outcome {
  OUT_OK,
  OUT_MISMATCH,  /* a reply came back but is not the reversal (short, long or wrong bytes) */
  OUT_CONNECT,   /* the connection could not be made */
  OUT_TIMEOUT,   /* not done within --timeout */
  OUT_RESET,     /* ECONNRESET / EPIPE on read or write */
  OUT_CLOSED,    /* the server closed without sending a byte of the reply */
  OUT_OTHER,     /* any other socket error */
  OUT_COUNT
};

struct bench_counts {
  uint64_t by[OUT_COUNT];
  uint64_t bytes_out, bytes_in;
  uint64_t aborted; /* in flight when Ctrl-C stopped the run: in no other count */
};

/* What the first wrong reply of a run looked like. */
struct bench_mismatch {
  int seen;
  uint64_t sent, received; /* message and reply lengths (line mode: without the '\n') */
  uint64_t first_diff;     /* offset of the first byte that differs (or the shorter length) */
};

struct bench_result {
  struct bench_counts counts;
  double seconds;       /* from the start to the last exchange's end */
  uint64_t conns;       /* the concurrency this run used */
  uint64_t max_lag_ns;  /* open loop: latest start behind its schedule */
  uint64_t not_started; /* open loop: due before the end but never started */
  int gave_up;          /* stopped early: every connect failed for --timeout */
  int interrupted;      /* stopped by SIGINT/SIGTERM */
  struct bench_mismatch first_mismatch;
  int first_other;      /* the first UV_E* code counted as an "other" error */
  hist_t *latency;      /* whole exchange (ok ones only), ns; owned by the result */
  hist_t *connect;      /* connect time, ns */
};

/* Runs one load test at concurrency `conns` and fills *res (free it with
 * bench_result_free).  Prints the live line on stderr when cfg->progress.
 * Returns 0, or -1 after printing "revbench: what failed: why". */
int bench_run(const struct bench_config *cfg, uint64_t conns, struct bench_result *res);
void bench_result_free(struct bench_result *res);

/* Set by SIGINT/SIGTERM during a run; a sweep stops after the level it interrupts. */
extern volatile int bench_interrupted;

/* Checks that addr (TCP, or AF_UNIX) accepts connections (bounded by timeout_ms).
 * Returns 0, or a negative UV_E* code. */
int bench_probe(const struct sockaddr *addr, unsigned timeout_ms);

#endif
