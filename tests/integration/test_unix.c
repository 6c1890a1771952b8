/* Unix socket paths: too long for sun_path, empty, missing; as revd, revc
 * and librevd (revd_server_listen_unix, revd_exchange) meet them.  Each
 * test gets a private directory (tmpdir) and must leave nothing in it.
 * (A Unix socket served end to end: test_modes.c.) */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cmocka.h>

#include "fixture.h"
#include "harness.h"
#include "revd.h"

/* tmpdir/aaa...a.sock: longer than sun_path (108 bytes on Linux). */
static void long_socket_path(char *buf, size_t size) {
  char name[160];
  memset(name, 'a', 150);
  memcpy(name + 150, ".sock", 6);
  snprintf(buf, size, "%s/%s", tmpdir, name);
  assert_true(strlen(buf) >= sizeof((struct sockaddr_un *)NULL)->sun_path);
}

/* A path too long for sun_path fails, names it, and leaves no file
 * (regression: revd ran on the path cut to fit). */
static void revd_unix_path_too_long_fails_and_leaves_no_file(void **state) {
  (void)state;
  char path[256], want[512];
  long_socket_path(path, sizeof path);
  snprintf(want, sizeof want, "listen %s: name too long", path);
  const char *argv[] = {bin_path("REVD_BIN"), "--unix", path, NULL};
  struct run_result r;
  int status = run_program(argv, NULL, 0, 3000, &r); /* the bug: it ran on a truncated path */
  if (status != 1 || !is_log_line(r.err, "error", want))
    fail_msg("revd --unix LONG: exit %d (-1: still running after 3 s), stderr: %s", status, r.err);
  assert_int_equal(tmpdir_entries(), 0);
}

/* An empty path is a usage error (regression: revd ran on an abstract
 * name, revc said "connect : broken pipe"). */
static void unix_empty_path_is_a_usage_error(void **state) {
  (void)state;
  const char *argv[] = {bin_path("REVD_BIN"), "--unix", "", NULL};
  struct run_result r;
  int status = run_program(argv, NULL, 0, 3000, &r); /* the bug: it ran on an abstract name */
  if (status != 2 ||
      strcmp(r.err, "revd: invalid --unix '': expected a socket path (see revd --help)\n") != 0)
    fail_msg("revd --unix '': exit %d (-1: still running after 3 s), stderr: %s", status, r.err);
  /* revc too (it said "connect : broken pipe") */
  assert_int_equal(run_revc(&r, NULL, (const char *[]){"--unix", "", "hello", NULL}), 2);
  assert_string_equal(r.err, "revc: invalid --unix '': expected a socket path (see revc --help)\n");
}

struct unix_reply {
  int calls, status;
  char data[32];
  size_t len;
};

static void unix_reply_cb(int status, const char *what, const char *reply, size_t len, void *arg) {
  struct unix_reply *u = arg;
  (void)what;
  u->calls++;
  u->status = status;
  u->len = len < sizeof u->data ? len : sizeof u->data;
  memcpy(u->data, reply, u->len);
}

/* The library refuses the paths before creating anything, and the server
 * is still usable afterwards (regression: the two above, in librevd). */
static void listen_unix_rejects_long_and_empty_paths(void **state) {
  (void)state;
  struct fixture f;
  memset(&f, 0, sizeof f);
  assert_int_equal(uv_loop_init(&f.loop), 0);
  assert_int_equal(revd_server_new(&f.loop, NULL, &f.srv), 0);
  char path[256];
  long_socket_path(path, sizeof path);
  assert_int_equal(revd_server_listen_unix(f.srv, path), UV_ENAMETOOLONG);
  assert_int_equal(revd_server_listen_unix(f.srv, ""), UV_EINVAL);
  assert_int_equal(tmpdir_entries(), 0);
  uv_run(&f.loop, UV_RUN_NOWAIT);

  /* a path that fits: served, and removed at close */
  struct sockaddr_un un;
  memset(&un, 0, sizeof un);
  un.sun_family = AF_UNIX;
  snprintf(un.sun_path, sizeof un.sun_path, "%s/ok.sock", tmpdir);
  assert_int_equal(revd_server_listen_unix(f.srv, un.sun_path), 0);
  struct unix_reply u;
  memset(&u, 0, sizeof u);
  assert_int_equal(
      revd_exchange(&f.loop, (struct sockaddr *)&un, "fits", 4, 2000, 0, unix_reply_cb, &u), 0);
  while (!u.calls)
    uv_run(&f.loop, UV_RUN_ONCE);
  assert_int_equal(u.status, 0);
  assert_int_equal(u.len, 4);
  assert_memory_equal(u.data, "stif", 4);
  fixture_close(&f);
  assert_int_equal(tmpdir_entries(), 0);
}

/* revc to a missing socket path says so (regression: it said "broken
 * pipe"), the message as an argument, on stdin, or through the relay. */
static void revc_unix_missing_path_says_no_such_file(void **state) {
  (void)state;
  char path[128], want[256];
  snprintf(path, sizeof path, "%s/missing.sock", tmpdir);
  snprintf(want, sizeof want, "revc: connect %s: no such file or directory\n", path);
  struct run_result r;
  assert_int_equal(run_revc(&r, NULL, (const char *[]){"--unix", path, "hello", NULL}), 1);
  assert_string_equal(r.err, want);
  assert_int_equal(r.out_len, 0);
  /* a message on stdin takes the same path */
  assert_int_equal(run_revc(&r, "hello", (const char *[]){"--unix", path, NULL}), 1);
  assert_string_equal(r.err, want);
  /* and so does the line-mode relay */
  assert_int_equal(
      run_revc(&r, "hello\n", (const char *[]){"--unix", path, "--mode", "line", NULL}), 1);
  assert_string_equal(r.err, want);
}

/* revd_exchange to a missing socket path fails in connect with ENOENT,
 * with a message or without (regression: the "broken pipe" above, in the
 * library revc calls). */
static void exchange_to_missing_unix_path_fails_in_connect(void **state) {
  (void)state;
  uv_loop_t loop;
  struct sockaddr_un un;
  memset(&un, 0, sizeof un);
  un.sun_family = AF_UNIX;
  snprintf(un.sun_path, sizeof un.sun_path, "%s/missing.sock", tmpdir);
  assert_int_equal(uv_loop_init(&loop), 0);
  struct timed_reply with_msg, empty;
  memset(&with_msg, 0, sizeof with_msg);
  memset(&empty, 0, sizeof empty);
  assert_int_equal(
      revd_exchange(&loop, (struct sockaddr *)&un, "hello", 5, 2000, 0, timed_reply_cb, &with_msg),
      0);
  assert_int_equal(
      revd_exchange(&loop, (struct sockaddr *)&un, "", 0, 2000, 0, timed_reply_cb, &empty), 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  struct timed_reply *all[] = {&with_msg, &empty};
  for (int i = 0; i < 2; i++) {
    assert_int_equal(all[i]->calls, 1);
    if (all[i]->status != UV_ENOENT || !all[i]->what || strcmp(all[i]->what, "connect") != 0)
      fail_msg("%s message: status %s, what %s; want %s, connect", i ? "empty" : "5-byte",
               revd_strerror(all[i]->status), all[i]->what ? all[i]->what : "NULL",
               revd_strerror(UV_ENOENT));
  }
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
#define TEST(name) cmocka_unit_test_setup_teardown(name, make_tmpdir, remove_tmpdir)
  const struct CMUnitTest tests[] = {
      TEST(revd_unix_path_too_long_fails_and_leaves_no_file),
      TEST(unix_empty_path_is_a_usage_error),
      TEST(listen_unix_rejects_long_and_empty_paths),
      TEST(revc_unix_missing_path_says_no_such_file),
      TEST(exchange_to_missing_unix_path_fails_in_connect),
  };
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests_name("unix socket paths", tests, NULL, NULL);
}
