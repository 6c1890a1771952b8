/* revbench — load generator for the reverse protocol: options, probe,
 * summary, JSON and sweep around the engine in bench.c. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "args.h"
#include "bench.h"
#include "revd.h"

static const double pcts[] = {50.0, 90.0, 99.0, 99.9};

static uint64_t errors_of(const struct bench_counts *c) {
  return c->by[OUT_TIMEOUT] + c->by[OUT_RESET] + c->by[OUT_CLOSED] + c->by[OUT_OTHER];
}

/* Exchanges begun: answered (right or wrong), failed, or not connected. */
static uint64_t attempted_of(const struct bench_counts *c) {
  return c->by[OUT_OK] + c->by[OUT_MISMATCH] + errors_of(c) + c->by[OUT_CONNECT];
}

static double rate_of(const struct bench_result *r) {
  return r->seconds > 0 ? (double)r->counts.by[OUT_OK] / r->seconds : 0.0;
}

/* Open loop: did the achieved rate stay within 2% of the target, with at
 * most 2% of the scheduled starts missing (a hiccup of this machine right at
 * the end of -d may leave a few due exchanges without a free connection)? */
static int rate_held(const struct bench_config *cfg, const struct bench_result *r) {
  const struct bench_counts *c = &r->counts;
  uint64_t scheduled = attempted_of(c) + c->aborted + r->not_started;
  return (double)r->not_started <= 0.02 * (double)scheduled &&
         rate_of(r) >= 0.98 * (double)cfg->rate;
}

/* Where the load goes: "127.0.0.1:7342", "[::1]:7342" or the socket path. */
static const char *target(const struct bench_config *cfg, char *buf, size_t size) {
  if (cfg->unix_path)
    snprintf(buf, size, "%s", cfg->unix_path);
  else if (revd_format_addr((const struct sockaddr *)&cfg->addr, buf, size) != 0)
    snprintf(buf, size, "%s:%d", cfg->host, cfg->port);
  return buf;
}

/* wrk's units: 812.00us, 1.25ms, 2.10s. */
static const char *fmt_time(char *buf, size_t size, uint64_t ns) {
  double us = (double)ns / 1e3;
  if (us < 1000.0)
    snprintf(buf, size, "%.2fus", us);
  else if (us < 1e6)
    snprintf(buf, size, "%.2fms", us / 1e3);
  else
    snprintf(buf, size, "%.2fs", us / 1e6);
  return buf;
}

static const char *fmt_bytes(char *buf, size_t size, uint64_t n) {
  static const char *const units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = (double)n;
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    u++;
  }
  snprintf(buf, size, "%.2f%s", v, units[u]);
  return buf;
}

static void print_hist_row(FILE *out, const char *name, const hist_t *h) {
  char b[32];
  fprintf(out, "    %-9s", name);
  for (size_t i = 0; i < sizeof pcts / sizeof pcts[0]; i++)
    fprintf(out, " %10s", fmt_time(b, sizeof b, hist_percentile(h, pcts[i])));
  fprintf(out, " %10s\n", fmt_time(b, sizeof b, h->max));
}

static void print_summary(FILE *out, const struct bench_config *cfg,
                          const struct bench_result *r) {
  const struct bench_counts *c = &r->counts;
  char host[128], b1[32], b2[32];
  fprintf(out, "%s %.2fs test @ %s%s\n", r->interrupted ? "Interrupted" : "Ran", r->seconds,
          target(cfg, host, sizeof host), r->interrupted ? " (Ctrl-C: what ran so far)" : "");
  if (cfg->size_min == cfg->size_max)
    snprintf(b1, sizeof b1, "%" PRIu64 " bytes", cfg->size_max);
  else
    snprintf(b1, sizeof b1, "%" PRIu64 "..%" PRIu64 " bytes", cfg->size_min, cfg->size_max);
  fprintf(out, "  mode %s%s%s, %s, %" PRIu64 " thread%s and %" PRIu64 " connections, %s\n",
          revd_mode_name(cfg->mode), cfg->half_close ? " (half-close)" : "",
          cfg->expect == EXPECT_ECHO ? ", expecting echoes" : "", b1, cfg->threads,
          cfg->threads == 1 ? "" : "s", r->conns, cfg->rate ? "open loop" : "closed loop");
  fprintf(out, "  Latency        p50        p90        p99      p99.9        max\n");
  print_hist_row(out, "exchange", r->latency);
  print_hist_row(out, "connect", r->connect);
  fprintf(out, "  %" PRIu64 " exchanges ok in %.2fs, %s sent, %s received\n", c->by[OUT_OK],
          r->seconds, fmt_bytes(b1, sizeof b1, c->bytes_out), fmt_bytes(b2, sizeof b2, c->bytes_in));
  fprintf(out,
          "  mismatches %" PRIu64 "; errors %" PRIu64 " (timeouts %" PRIu64 ", resets %" PRIu64
          ", closed without reply %" PRIu64 ", other %" PRIu64 "); connect errors %" PRIu64 "\n",
          c->by[OUT_MISMATCH], errors_of(c), c->by[OUT_TIMEOUT], c->by[OUT_RESET],
          c->by[OUT_CLOSED], c->by[OUT_OTHER], c->by[OUT_CONNECT]);
  if (r->first_mismatch.seen)
    fprintf(out, "  first mismatch: sent %" PRIu64 " bytes, got %" PRIu64 " back, first wrong byte at "
            "offset %" PRIu64 "\n", r->first_mismatch.sent, r->first_mismatch.received,
            r->first_mismatch.first_diff);
  if (r->first_other)
    fprintf(out, "  first other error: %s (%s)\n", uv_err_name(r->first_other),
            uv_strerror(r->first_other));
  if (c->aborted)
    fprintf(out, "  %" PRIu64 " exchanges in flight at Ctrl-C are not counted\n", c->aborted);
  if (r->gave_up)
    fprintf(out, "  stopped early: every connect failed for %.1fs (--timeout); the server is "
            "gone\n", (double)cfg->timeout_ms / 1e3);
  if (r->not_started)
    fprintf(out, "  %" PRIu64 " scheduled exchanges never started: they were due before the "
            "end but no connection was free\n", r->not_started);
  if (cfg->rate) {
    double achieved = rate_of(r);
    if (rate_held(cfg, r))
      fprintf(out, "  target %" PRIu64 "/s held: achieved %.2f/s (%.1f%%); latency counts from each "
              "exchange's scheduled start\n", cfg->rate, achieved, 100.0 * achieved / (double)cfg->rate);
    else
      fprintf(out, "  TARGET NOT HELD: %" PRIu64 "/s asked, %.2f/s achieved (%.1f%%): the server "
              "(or this machine) did not keep up; starts fell up to %s behind schedule\n",
              cfg->rate, achieved, 100.0 * achieved / (double)cfg->rate,
              fmt_time(b1, sizeof b1, r->max_lag_ns));
  }
  fprintf(out, "Exchanges/sec: %10.2f\n", rate_of(r));
}

static void print_json_hist(FILE *out, const char *name, const hist_t *h) {
  fprintf(out, "\"%s\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f,"
          "\"min\":%.3f,\"count\":%" PRIu64 "}", name,
          hist_percentile(h, 50.0) / 1e3, hist_percentile(h, 90.0) / 1e3,
          hist_percentile(h, 99.0) / 1e3, hist_percentile(h, 99.9) / 1e3, h->max / 1e3,
          h->total ? h->min / 1e3 : 0.0, h->total);
}

/* s as a JSON string. */
static void json_string(FILE *out, const char *s) {
  fputc('"', out);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      fprintf(out, "\\%c", ch);
    else if (ch < 0x20)
      fprintf(out, "\\u%04x", ch);
    else
      fputc(ch, out);
  }
  fputc('"', out);
}

/* The command line as one string; arguments a shell would split are quoted. */
static void json_command(FILE *out, int argc, char **argv) {
  size_t n = 1;
  for (int i = 0; i < argc; i++)
    n += 3 + 4 * strlen(argv[i]);
  char *line = malloc(n), *p = line;
  if (!line) {
    fputs("null", out);
    return;
  }
  for (int i = 0; i < argc; i++) {
    int quote = argv[i][0] == '\0' || strpbrk(argv[i], " \t\n'\"\\$`*?;&|<>()") != NULL;
    if (i)
      *p++ = ' ';
    if (quote)
      *p++ = '\'';
    for (const char *a = argv[i]; *a; a++) {
      if (quote && *a == '\'') { /* ' -> '\'' */
        memcpy(p, "'\\''", 4);
        p += 4;
      } else {
        *p++ = *a;
      }
    }
    if (quote)
      *p++ = '\'';
  }
  *p = '\0';
  json_string(out, line);
  free(line);
}

/* iperf3's habit: what ran, when, and with which version, in the result. */
static void print_json_run(FILE *out, const struct bench_config *cfg, time_t started) {
  char when[32];
  struct tm tm;
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&started, &tm));
  fprintf(out, "\"version\":\"%s\",\"timestamp\":\"%s\",\"command\":", REVD_VERSION_STRING,
          when);
  json_command(out, cfg->argc, cfg->argv);
  fputs(",\"host\":", out);
  json_string(out, cfg->host);
  fprintf(out, ",\"port\":%d,\"unix\":", cfg->port);
  if (cfg->unix_path)
    json_string(out, cfg->unix_path);
  else
    fputs("null", out);
  fprintf(out, ",\"mode\":\"%s\",\"expect\":\"%s\",\"half_close\":%s,\"linger0\":%s,",
          revd_mode_name(cfg->mode), cfg->expect == EXPECT_ECHO ? "echo" : "reverse",
          cfg->half_close ? "true" : "false", cfg->linger0 ? "true" : "false");
}

static void print_json(FILE *out, const struct bench_config *cfg, const struct bench_result *r,
                       time_t started) {
  const struct bench_counts *c = &r->counts;
  fputc('{', out);
  print_json_run(out, cfg, started);
  fprintf(out, "\"conns\":%" PRIu64 ",\"threads\":%" PRIu64 ",\"size_min\":%" PRIu64
          ",\"size_max\":%" PRIu64 ",", r->conns, cfg->threads, cfg->size_min, cfg->size_max);
  fprintf(out, "\"ok\":%" PRIu64 ",\"mismatches\":%" PRIu64 ",\"errors\":%" PRIu64
          ",\"connect_errors\":%" PRIu64 ",\"timeouts\":%" PRIu64 ",\"resets\":%" PRIu64
          ",\"closed\":%" PRIu64 ",\"other_errors\":%" PRIu64 ",\"aborted\":%" PRIu64
          ",\"exchanges\":%" PRIu64 ",",
          c->by[OUT_OK], c->by[OUT_MISMATCH], errors_of(c), c->by[OUT_CONNECT],
          c->by[OUT_TIMEOUT], c->by[OUT_RESET], c->by[OUT_CLOSED], c->by[OUT_OTHER], c->aborted,
          attempted_of(c));
  fprintf(out, "\"seconds\":%.6f,\"rate\":%.3f,", r->seconds, rate_of(r));
  if (cfg->rate)
    fprintf(out, "\"target_rate\":%" PRIu64 ",\"rate_held\":%s,\"max_start_lag_us\":%.3f,"
            "\"not_started\":%" PRIu64 ",", cfg->rate, rate_held(cfg, r) ? "true" : "false",
            r->max_lag_ns / 1e3, r->not_started);
  else
    fprintf(out, "\"target_rate\":null,\"rate_held\":null,\"not_started\":null,");
  fprintf(out, "\"gave_up\":%s,", r->gave_up ? "true" : "false");
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  fprintf(out, "\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,",
          (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
          (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
  fprintf(out, "\"bytes_sent\":%" PRIu64 ",\"bytes_received\":%" PRIu64 ",\"interrupted\":%s,",
          c->bytes_out, c->bytes_in, r->interrupted ? "true" : "false");
  print_json_hist(out, "latency_us", r->latency);
  fputc(',', out);
  print_json_hist(out, "connect_us", r->connect);
  fputc('}', out);
}

/* --latency: wrk2's "Detailed Percentile spectrum", in milliseconds. */
static void print_spectrum(FILE *out, const struct bench_result *r) {
  fprintf(out, "  Detailed Percentile spectrum:\n");
  hist_print_spectrum(out, r->latency, 1e6);
  fprintf(out, "----------------------------------------------------------\n");
}

static void print_csv_row(FILE *out, const struct bench_result *r) {
  const hist_t *h = r->latency;
  fprintf(out, "%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%.3f,%.2f,%.2f,%.2f,%.2f,%.2f,%.2f\n",
          r->conns, r->counts.by[OUT_OK], r->counts.by[OUT_MISMATCH], errors_of(&r->counts),
          r->counts.by[OUT_CONNECT], r->seconds, rate_of(r), hist_percentile(h, 50.0) / 1e3,
          hist_percentile(h, 90.0) / 1e3, hist_percentile(h, 99.0) / 1e3,
          hist_percentile(h, 99.9) / 1e3, h->max / 1e3);
  fflush(out);
}

/* The verdict on one run: 0, or 1 after saying why. */
static int verdict(const struct bench_result *r, int expect) {
  const struct bench_counts *c = &r->counts;
  if (c->by[OUT_MISMATCH]) {
    fprintf(stderr, "revbench: verifying replies: %" PRIu64 " of %" PRIu64
            " replies were not the %s\n", c->by[OUT_MISMATCH],
            c->by[OUT_MISMATCH] + c->by[OUT_OK],
            expect == EXPECT_ECHO ? "message echoed (--expect echo)" : "reversed message");
    return 1;
  }
  if (c->by[OUT_OK] == 0) {
    fprintf(stderr, "revbench: running: no exchange succeeded (%" PRIu64 " errors, %" PRIu64
            " connect errors)\n", errors_of(c), c->by[OUT_CONNECT]);
    return 1;
  }
  return 0;
}

static int run_sweep(const struct bench_config *cfg) {
  /* stdout carries one format: the JSON with --json, else the CSV unless
   * --csv names a file for it. */
  FILE *csv = cfg->json ? NULL : stdout;
  if (cfg->csv && !(csv = fopen(cfg->csv, "w"))) {
    fprintf(stderr, "revbench: opening %s: %s\n", cfg->csv, strerror(errno));
    return 1;
  }
  FILE *human = csv == stdout || cfg->json ? stderr : stdout;
  if (csv)
    fprintf(csv, "conns,ok,mismatches,errors,connect_errors,seconds,rate,p50_us,p90_us,p99_us,"
                 "p999_us,max_us\n");
  int status = 0;
  if (cfg->json)
    fputs("{\"sweep\":[", stdout);
  for (size_t i = 0; i < cfg->nsweep && !bench_interrupted; i++) {
    struct bench_result r;
    time_t started = time(NULL);
    if (bench_run(cfg, cfg->sweep[i], &r) < 0) {
      status = 1;
      break;
    }
    if (csv)
      print_csv_row(csv, &r);
    print_summary(human, cfg, &r);
    if (cfg->latency)
      print_spectrum(human, &r);
    if (cfg->json) {
      if (i)
        fputc(',', stdout);
      print_json(stdout, cfg, &r, started);
    }
    if (verdict(&r, cfg->expect))
      status = 1;
    bench_result_free(&r);
  }
  if (cfg->json)
    fputs("]}\n", stdout);
  /* errno is not reset: a write stdio made of the CSV earlier may have
   * failed, and errno still says why. */
  if (csv && csv != stdout && (fflush(csv) != 0 || ferror(csv) || fclose(csv) != 0)) {
    fprintf(stderr, "revbench: writing %s: %s\n", cfg->csv, errno ? strerror(errno) : "write error");
    status = 1;
  }
  return status;
}

/* Results that could not be written out were not delivered (a full disk, a
 * closed pipe: SIGPIPE is ignored, so only the stream says so). */
static int output_status(int status) {
  errno = 0;
  if (fflush(stdout) == 0 && !ferror(stdout))
    return status;
  fprintf(stderr, "revbench: writing standard output: %s\n",
          errno ? strerror(errno) : "write error");
  return 1;
}

int main(int argc, char **argv) {
  struct bench_config cfg;
  int r = bench_parse_args(argc, argv, &cfg, stdout);
  if (r == 1)
    return 0;
  if (r != 0)
    return 2;
  signal(SIGPIPE, SIG_IGN); /* a reset peer is a counted error, not a fatal signal */
  r = bench_probe((const struct sockaddr *)&cfg.addr,
                  cfg.timeout_ms < 3000 ? (unsigned)cfg.timeout_ms : 3000);
  if (r < 0) {
    char host[128];
    fprintf(stderr, "revbench: connecting to %s: %s\n", target(&cfg, host, sizeof host),
            uv_strerror(r));
    return 1;
  }
  if (cfg.nsweep)
    return output_status(run_sweep(&cfg));
  struct bench_result res;
  time_t started = time(NULL);
  if (bench_run(&cfg, cfg.conns, &res) < 0)
    return 1;
  if (cfg.json) {
    print_json(stdout, &cfg, &res, started);
    fputc('\n', stdout);
  } else {
    print_summary(stdout, &cfg, &res);
  }
  if (cfg.latency) /* stdout keeps one format: with --json the spectrum goes to stderr */
    print_spectrum(cfg.json ? stderr : stdout, &res);
  int status = output_status(verdict(&res, cfg.expect));
  bench_result_free(&res);
  return status;
}
