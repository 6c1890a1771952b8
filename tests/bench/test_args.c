/* Unit tests of revbench's option parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "args.h"
#include "revd.h"

static int parse(struct bench_config *cfg, const char *first, ...) {
  char *argv[32];
  int argc = 0;
  argv[argc++] = (char *)"revbench";
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
    argv[argc++] = (char *)a;
  va_end(ap);
  argv[argc] = NULL;
  FILE *devnull = fopen("/dev/null", "w");
  int r = bench_parse_args(argc, argv, cfg, devnull);
  fclose(devnull);
  return r;
}

static void defaults(void **state) {
  (void)state;
  struct bench_config cfg;
  assert_int_equal(parse(&cfg, NULL), 0);
  assert_string_equal(cfg.host, "127.0.0.1");
  assert_int_equal(cfg.port, 7342);
  assert_int_equal(cfg.conns, 10);
  assert_int_equal(cfg.seconds, 10);
  assert_int_equal(cfg.count, 0);
  assert_int_equal(cfg.threads, 1);
  assert_int_equal(cfg.rate, 0);
  assert_int_equal(cfg.mode, REVD_MODE_CHUNK);
  assert_int_equal(cfg.size_min, 64);
  assert_int_equal(cfg.size_max, 64);
  assert_int_equal(cfg.json, 0);
}

static void everything(void **state) {
  (void)state;
  struct bench_config cfg;
  assert_int_equal(parse(&cfg, "--host", "::1", "--port", "9", "-c", "50", "-n", "1000", "-s",
                         "13:64k", "-t", "2", "--rate", "2000", "--mode", "eof", "--json",
                         "--timeout", "100", "--no-progress", NULL), 0);
  assert_int_equal(cfg.port, 9);
  assert_int_equal(cfg.conns, 50);
  assert_int_equal(cfg.count, 1000);
  assert_int_equal(cfg.seconds, 0);
  assert_int_equal(cfg.size_min, 13);
  assert_int_equal(cfg.size_max, 65536);
  assert_int_equal(cfg.threads, 2);
  assert_int_equal(cfg.rate, 2000);
  assert_int_equal(cfg.mode, REVD_MODE_EOF);
  assert_int_equal(cfg.json, 1);
  assert_int_equal(cfg.progress, 0);
  assert_int_equal(cfg.timeout_ms, 100);
}

static void sweep_levels(void **state) {
  (void)state;
  struct bench_config cfg;
  assert_int_equal(parse(&cfg, "--sweep", "1,2,50", "-d", "1", NULL), 0);
  assert_int_equal(cfg.nsweep, 3);
  assert_int_equal(cfg.sweep[0], 1);
  assert_int_equal(cfg.sweep[2], 50);
}

static void bad_input_is_usage_error(void **state) {
  (void)state;
  struct bench_config cfg;
  assert_int_equal(parse(&cfg, "--frobnicate", NULL), 2);
  assert_int_equal(parse(&cfg, "-x", NULL), 2);
  assert_int_equal(parse(&cfg, "-c", "0", NULL), 2);
  assert_int_equal(parse(&cfg, "-c", "-5", NULL), 2);
  assert_int_equal(parse(&cfg, "-d", "0", NULL), 2);
  assert_int_equal(parse(&cfg, "-n", "-1", NULL), 2);
  assert_int_equal(parse(&cfg, "-t", "0", NULL), 2);
  assert_int_equal(parse(&cfg, "-s", "0", NULL), 2);
  assert_int_equal(parse(&cfg, "-s", "70000", NULL), 2); /* chunk: 64 KiB at most */
  assert_int_equal(parse(&cfg, "-s", "20:10", "--mode", "eof", NULL), 2);
  assert_int_equal(parse(&cfg, "--rate", "0", NULL), 2);
  assert_int_equal(parse(&cfg, "--mode", "word", NULL), 2);
  assert_int_equal(parse(&cfg, "-d", "1", "-n", "5", NULL), 2);
  assert_int_equal(parse(&cfg, "-t", "4", "-c", "2", NULL), 2);
  assert_int_equal(parse(&cfg, "--host", "not-an-ip", NULL), 2);
  assert_int_equal(parse(&cfg, "--port", "0", NULL), 2);
  assert_int_equal(parse(&cfg, "--sweep", "1,,2", NULL), 2);
  assert_int_equal(parse(&cfg, "--json=yes", NULL), 2);
  assert_int_equal(parse(&cfg, "-c", NULL), 2);
  assert_int_equal(parse(&cfg, "stray", NULL), 2);
}

static void eof_mode_allows_large_messages(void **state) {
  (void)state;
  struct bench_config cfg;
  assert_int_equal(parse(&cfg, "--mode", "eof", "-s", "1m", NULL), 0);
  assert_int_equal(cfg.size_max, 1u << 20);
}

static void help_and_version_exit_zero(void **state) {
  (void)state;
  struct bench_config cfg;
  assert_int_equal(parse(&cfg, "--help", NULL), 1);
  assert_int_equal(parse(&cfg, "--version", NULL), 1);
}

static void units_where_testers_type_them(void **state) {
  (void)state;
  struct bench_config cfg;
  assert_int_equal(parse(&cfg, "-d", "10s", "-c", "1k", "--rate", "20k", NULL), 0);
  assert_int_equal(cfg.seconds, 10);
  assert_int_equal(cfg.conns, 1000);
  assert_int_equal(cfg.rate, 20000);
  assert_int_equal(parse(&cfg, "-d", "2m", "--sweep", "1,1k", NULL), 0);
  assert_int_equal(cfg.seconds, 120);
  assert_int_equal(cfg.sweep[1], 1000);
  assert_int_equal(parse(&cfg, "-d", "1h", "-n", "2m", NULL), 2); /* -d and -n */
  assert_int_equal(parse(&cfg, "-n", "2m", NULL), 0);
  assert_int_equal(cfg.count, 2000000);
  assert_int_equal(parse(&cfg, "-d", "1h", NULL), 0);
  assert_int_equal(cfg.seconds, 3600);
  assert_int_equal(parse(&cfg, "-d", "10x", NULL), 2);
  assert_int_equal(parse(&cfg, "-d", "s", NULL), 2);
  assert_int_equal(parse(&cfg, "-c", "1kk", NULL), 2);
  assert_int_equal(parse(&cfg, "--rate", "1.5k", NULL), 2);
}

static void expect_unix_and_close_options(void **state) {
  (void)state;
  struct bench_config cfg;
  assert_int_equal(parse(&cfg, NULL), 0);
  assert_int_equal(cfg.expect, EXPECT_REVERSE);
  assert_int_equal(cfg.half_close, 0); /* chunk: like the classic client */
  assert_int_equal(parse(&cfg, "--expect", "echo", "--half-close", "--linger0", "--latency",
                         "--unix", "/tmp/x.sock", NULL), 0);
  assert_int_equal(cfg.expect, EXPECT_ECHO);
  assert_int_equal(cfg.half_close, 1);
  assert_int_equal(cfg.linger0, 1);
  assert_int_equal(cfg.latency, 1);
  assert_string_equal(cfg.unix_path, "/tmp/x.sock");
  assert_int_equal(parse(&cfg, "--mode", "eof", NULL), 0);
  assert_int_equal(cfg.half_close, 1); /* eof mode always half-closes */
  assert_int_equal(parse(&cfg, "--source", "127.0.0.0/24", NULL), 0);
  assert_int_equal(cfg.src_first, 0x7f000001);
  assert_int_equal(cfg.src_count, 254);
  assert_int_equal(parse(&cfg, "--source", "127.0.0.9", NULL), 0);
  assert_int_equal(cfg.src_first, 0x7f000009);
  assert_int_equal(cfg.src_count, 1);
  assert_int_equal(parse(&cfg, "--source", "127.0.0.0/8", NULL), 2);
  assert_int_equal(parse(&cfg, "--source", "127.0.0.1", "--host", "::1", NULL), 2);
  assert_int_equal(parse(&cfg, "--source", "127.0.0.1", "--unix", "/tmp/x", NULL), 2);
  assert_int_equal(parse(&cfg, "--expect", "mirror", NULL), 2);
  assert_int_equal(parse(&cfg, "--mode", "line", "--half-close", NULL), 2);
  assert_int_equal(parse(&cfg, "-h", NULL), 1);
  assert_int_equal(parse(&cfg, "-V", NULL), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(defaults),
      cmocka_unit_test(everything),
      cmocka_unit_test(sweep_levels),
      cmocka_unit_test(bad_input_is_usage_error),
      cmocka_unit_test(eof_mode_allows_large_messages),
      cmocka_unit_test(help_and_version_exit_zero),
      cmocka_unit_test(units_where_testers_type_them),
      cmocka_unit_test(expect_unix_and_close_options),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
