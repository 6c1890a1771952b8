/* The command lines of revd and revc: a usage error is one clear line on
 * stderr and exit 2; --help and --version exit 0.  Errors at run time (a
 * port in use, a refused connection) are test_binaries.c's; Unix socket
 * paths, test_unix.c's. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "revd.h"

static void run_revd_expect(const char *const *args, int status, const char *needle) {
  const char *argv[16] = {bin_path("REVD_BIN")};
  size_t n = 1;
  for (size_t i = 0; args[i]; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  struct run_result r;
  assert_int_equal(run_program(argv, NULL, 0, 5000, &r), status);
  if (!strstr(r.err, needle))
    fail_msg("expected \"%s\" in stderr, got: %s", needle, r.err);
  /* one line, not a screenful */
  assert_non_null(strchr(r.err, '\n'));
  assert_null(strchr(strchr(r.err, '\n') + 1, '\n'));
}

static void revd_rejects_bad_flags(void **state) {
  (void)state;
  run_revd_expect((const char *[]){"--port", "abc", NULL}, 2, "revd: invalid --port 'abc'");
  run_revd_expect((const char *[]){"--port", "70000", NULL}, 2, "revd: invalid --port '70000'");
  run_revd_expect((const char *[]){"--bogus", NULL}, 2, "revd: unknown option '--bogus'");
  run_revd_expect((const char *[]){"--mode", "sideways", NULL}, 2, "invalid --mode 'sideways'");
  run_revd_expect((const char *[]){"--port", NULL}, 2, "option '--port' needs a value");
  run_revd_expect((const char *[]){"--threads", "0", NULL}, 2, "revd: invalid --threads '0'");
  run_revd_expect((const char *[]){"--threads", "2", "--unix", "/tmp/x.sock", NULL}, 2,
                  "a Unix socket is served by one thread");
  run_revd_expect((const char *[]){"--port", "0", "--host", "not.an.ip", NULL}, 2,
                  "invalid --host 'not.an.ip'");
}

static void metrics_flag_is_checked(void **state) {
  (void)state;
  run_revd_expect((const char *[]){"--port", "0", "--metrics", "nonsense", NULL}, 2,
                  "revd: invalid --metrics 'nonsense': expected HOST:PORT");
}

static void revc_rejects_bad_flags(void **state) {
  (void)state;
  const char *argv[] = {bin_path("REVC_BIN"), "--timeout", "-5", "x", NULL};
  struct run_result r;
  assert_int_equal(run_program(argv, NULL, 0, 5000, &r), 2);
  assert_non_null(strstr(r.err, "revc: invalid --timeout '-5'"));
}

static void help_and_version_exit_zero(void **state) {
  (void)state;
  const char *bins[] = {bin_path("REVD_BIN"), bin_path("REVC_BIN")};
  for (int i = 0; i < 2; i++) {
    struct run_result r;
    const char *help[] = {bins[i], "--help", NULL};
    assert_int_equal(run_program(help, NULL, 0, 5000, &r), 0);
    assert_non_null(strstr(r.out, "usage:"));
    assert_non_null(strstr(r.out, "--port"));
    const char *version[] = {bins[i], "--version", NULL};
    assert_int_equal(run_program(version, NULL, 0, 5000, &r), 0);
    assert_non_null(strstr(r.out, REVD_VERSION_STRING));
  }
}

/* An unknown short option in a cluster is named (regression: "-xy" named
 * the program, not the option). */
static void unknown_short_option_is_named(void **state) {
  (void)state;
  const char *progs[] = {"revd", "revc"};
  const char *envs[] = {"REVD_BIN", "REVC_BIN"};
  for (int i = 0; i < 2; i++) {
    char want[128];
    snprintf(want, sizeof want, "%s: unknown option '-x' (see %s --help)\n", progs[i], progs[i]);
    const char *argv[] = {bin_path(envs[i]), "-xy", NULL};
    struct run_result r;
    assert_int_equal(run_program(argv, NULL, 0, 3000, &r), 2);
    assert_string_equal(r.err, want);
    assert_int_equal(r.out_len, 0);
  }
}

/* A value given to --help or --version is refused by the option's long
 * name (regression: revc and revbench named it '-h'). */
static void help_with_a_value_is_named(void **state) {
  (void)state;
  const char *progs[] = {"revd", "revc", "revbench"};
  const char *envs[] = {"REVD_BIN", "REVC_BIN", "REVBENCH_BIN"};
  for (int i = 0; i < 3; i++) {
    char want[128];
    snprintf(want, sizeof want, "%s: option '--help=x' takes no value (see %s --help)\n", progs[i],
             progs[i]);
    const char *argv[] = {bin_path(envs[i]), "--help=x", NULL};
    struct run_result r;
    assert_int_equal(run_program(argv, NULL, 0, 3000, &r), 2);
    assert_string_equal(r.err, want);
    assert_int_equal(r.out_len, 0);
  }
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(revd_rejects_bad_flags),
      cmocka_unit_test(metrics_flag_is_checked),
      cmocka_unit_test(revc_rejects_bad_flags),
      cmocka_unit_test(help_and_version_exit_zero),
      cmocka_unit_test(unknown_short_option_is_named),
      cmocka_unit_test(help_with_a_value_is_named),
  };
  return cmocka_run_group_tests_name("command lines", tests, NULL, NULL);
}
