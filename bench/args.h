/* args.h — revbench's command line, parsed into a plain struct (no I/O but
 * the one error line on stderr, so it is unit-tested without sockets). */
#ifndef REVBENCH_ARGS_H
#define REVBENCH_ARGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define BENCH_MAX_SWEEP 64

enum bench_expect { EXPECT_REVERSE, EXPECT_ECHO }; /* what a correct reply is */

struct bench_config {
  const char *host;          /* default 127.0.0.1 */
  int port;                  /* default 7342 */
  const char *unix_path;     /* --unix: a Unix domain socket instead of host:port */
  struct sockaddr_storage addr; /* host:port, resolved without DNS (unused with --unix) */
  uint64_t conns;            /* -c: exchanges in flight at most (default 10) */
  uint64_t seconds;          /* -d: run length (default 10 when -n is not given) */
  uint64_t count;            /* -n: exchanges in all; 0 = run for -d seconds */
  uint64_t size_min, size_max; /* -s BYTES or MIN:MAX (default 64) */
  uint64_t threads;          /* -t: one loop each (default 1) */
  uint64_t rate;             /* --rate: exchanges per second scheduled; 0 = closed loop */
  int mode;                  /* --mode: enum revd_mode (default chunk) */
  int expect;                /* --expect: enum bench_expect (default reverse) */
  int half_close;            /* shutdown(SHUT_WR) after the message: always in eof
                                mode, with --half-close in chunk mode, never in line */
  int linger0;               /* --linger0: close with SO_LINGER 0 once the reply is in */
  int latency;               /* --latency: the percentile spectrum after the summary */
  uint32_t src_first;        /* --source: connect from these IPv4 addresses in turn */
  uint32_t src_count;        /* (host byte order); 0: let the kernel choose */
  uint64_t lines;            /* --lines: line mode, lines per connection (default 100) */
  uint64_t timeout_ms;       /* --timeout: one exchange at most (default 5000) */
  int json;                  /* --json: one JSON object on stdout */
  int progress;              /* live line on stderr; --no-progress clears it */
  uint64_t sweep[BENCH_MAX_SWEEP]; /* --sweep C1,C2,...: concurrency levels */
  size_t nsweep;
  const char *csv;           /* --csv FILE: sweep rows (default stdout) */
  int argc;                  /* the command line, for --json */
  char **argv;
};

/* Counts with decimal suffixes (k = 1000, m = 10^6, g = 10^9: "-c 1k",
 * "--rate 20k") and durations in seconds with a unit ("10", "10s", "2m",
 * "1h").  Return 0, or -1 after one usage error line naming option. */
int bench_parse_count(const char *option, const char *text, uint64_t min, uint64_t max,
                      uint64_t *out);
int bench_parse_seconds(const char *option, const char *text, uint64_t min, uint64_t max,
                        uint64_t *out);

/* Fills cfg from argv.  Returns 0 to run, 1 to exit 0 at once (--help and
 * --version, already printed on out), or 2 after printing one usage error
 * line on stderr.  Pointers in cfg point into argv. */
int bench_parse_args(int argc, char **argv, struct bench_config *cfg, FILE *out);

#endif
