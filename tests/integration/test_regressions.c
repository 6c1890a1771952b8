/* Regressions: each test pins down a bug the review of 7be6634 found (fixed
 * in 6749312), in-process through librevd or through the real binaries, so
 * it cannot come back unnoticed.  The bug numbers are the review's.  Bug 7
 * (accept without memory) needs calloc wrapped: test_accept_oom.c.
 *
 * Every wait is bounded, and the bounds sit far from both the fixed and the
 * broken behaviour (the broken one waits for the *other*, longer timeout),
 * so a slow machine does not make these flaky. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "fixture.h"
#include "harness.h"
#include "revd.h"

/* ---- in-process fixture ----------------------------------------------- */

/* ---- running the binaries --------------------------------------------- */

struct port_arg {
  char s[16];
};

static struct port_arg port_arg(int port) {
  struct port_arg p;
  snprintf(p.s, sizeof p.s, "%d", port);
  return p;
}

/* Runs $REVC_BIN ARGS... (NULL-terminated) with input on stdin. */
static int run_revc(struct run_result *r, const char *input, const char *const *args) {
  const char *argv[32] = {bin_path("REVC_BIN")};
  size_t n = 1;
  for (size_t i = 0; args[i] && n < 31; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  return run_program(argv, input, input ? strlen(input) : 0, 10000, r);
}

/* The daemon a test runs, if any: a failed assertion jumps past
 * stop_revd(), so the teardown stops it instead of leaving it running. */
static struct revd_proc daemon_proc;
static struct revd_proc *live_revd;

/* Starts $REVD_BIN --port 0 ARGS...; one at a time. */
static struct revd_proc *start_revd(const char *const *args) {
  assert_null(live_revd);
  assert_int_equal(revd_start(&daemon_proc, args), 0);
  return live_revd = &daemon_proc;
}

static void stop_revd(struct revd_proc *p) {
  live_revd = NULL;
  int status = revd_stop(p, SIGTERM, 5000);
  if (status != 0)
    fail_msg("revd exited %d; it printed:\n%s", status, p->log);
}

/* ---- a private directory for Unix socket paths ------------------------ */

static char tmpdir[64];

static int make_tmpdir(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/revd-regr-XXXXXX");
  return mkdtemp(tmpdir) ? 0 : -1;
}

/* Names in tmpdir other than "." and "..". */
static int tmpdir_entries(void) {
  DIR *d = opendir(tmpdir);
  if (!d)
    return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  return n;
}

/* Stops a daemon a failed test left running; empties and removes tmpdir,
 * whatever a failed test left in it. */
static int cleanup(void **state) {
  (void)state;
  if (live_revd) {
    revd_stop(live_revd, SIGKILL, 2000);
    live_revd = NULL;
  }
  DIR *d = opendir(tmpdir);
  if (d) {
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
      unlink(path);
    }
    closedir(d);
  }
  return rmdir(tmpdir);
}

/* tmpdir/aaa...a.sock: longer than sun_path (108 bytes on Linux). */
static void long_socket_path(char *buf, size_t size) {
  char name[160];
  memset(name, 'a', 150);
  memcpy(name + 150, ".sock", 6);
  snprintf(buf, size, "%s/%s", tmpdir, name);
  assert_true(strlen(buf) >= sizeof((struct sockaddr_un *)NULL)->sun_path);
}

/* ---- bug 1: one timer over two lists with different timeouts ----------- */

static int answered_and_closed(const revd_stats_t *st) {
  return st->completed == 1 && st->active == 0;
}

/* A classic client (sends, never half-closes, never closes) gets a lingering
 * close.  It must end after linger_ms, not after the much longer idle
 * timeout the timer was armed for when the connection was accepted. */
static void linger_ends_after_linger_ms_not_the_idle_timeout(void **state) {
  (void)state;
  revd_options_t o;
  revd_options_init(&o);
  o.idle_timeout_ms = 5000;
  o.linger_ms = 100;
  struct fixture f;
  fixture_start(&f, &o);
  int fd = tcp_connect(fixture_port(&f));
  assert_true(fd >= 0);
  assert_int_equal(send_all(fd, "hello", 5), 0);
  double took = fixture_run_until_stats(&f, answered_and_closed, 2500);
  if (took < 0 || took >= 1000)
    fail_msg("lingering close (linger 100 ms, idle 5000 ms) took %.0f ms (-1: over 2.5 s)", took);
  revd_stats_t st;
  revd_server_stats(f.srv, &st);
  assert_int_equal(st.timeouts, 0); /* the linger ended it, not the idle timeout */
  char buf[16];
  assert_int_equal(recv_until_eof(fd, buf, sizeof buf, 1000), 5);
  assert_memory_equal(buf, "olleh", 5);
  close(fd);
  fixture_close(&f);
}

static int one_answered(const revd_stats_t *st) { return st->completed == 1; }
static int one_timed_out(const revd_stats_t *st) { return st->timeouts == 1; }

/* While one connection lingers (3 s), a silent one that connects later
 * must still be timed out after idle_timeout_ms (100 ms). */
static void idle_timeout_holds_while_another_connection_lingers(void **state) {
  (void)state;
  revd_options_t o;
  revd_options_init(&o);
  o.idle_timeout_ms = 100;
  o.linger_ms = 3000;
  struct fixture f;
  fixture_start(&f, &o);
  int lingering = tcp_connect(fixture_port(&f));
  assert_true(lingering >= 0);
  assert_int_equal(send_all(lingering, "hello", 5), 0);
  assert_true(fixture_run_until_stats(&f, one_answered, 2000) >= 0);
  fixture_run_for(&f, 300); /* past the first idle deadline: the timer now waits for the linger */
  int silent = tcp_connect(fixture_port(&f));
  assert_true(silent >= 0);
  double took = fixture_run_until_stats(&f, one_timed_out, 2500);
  if (took < 0 || took >= 1000)
    fail_msg("silent connection (idle 100 ms, linger 3000 ms) timed out after %.0f ms "
             "(-1: over 2.5 s)",
             took);
  char buf[4];
  assert_int_equal(recv_until_eof(silent, buf, sizeof buf, 1000), 0);
  revd_stats_t st;
  revd_server_stats(f.srv, &st);
  assert_int_equal(st.active, 1); /* the lingering one is still there */
  close(silent);
  close(lingering); /* its EOF ends the linger at once */
  fixture_close(&f);
}

/* ---- bug 2: an empty message never half-closed ------------------------ */

struct timed_reply {
  int calls;
  int status;
  const char *what;
  size_t len;
  double started, took;
};

static void timed_reply_cb(int status, const char *what, const char *reply, size_t len, void *arg) {
  struct timed_reply *t = arg;
  (void)reply;
  t->calls++;
  t->status = status;
  t->what = what;
  t->len = len;
  t->took = now_ms() - t->started;
}

/* revd_exchange of "" in every mode: nothing to write, so the half-close
 * comes while connecting; it must not be lost (the exchange then ended in
 * its timeout).  Three servers on one loop, all three exchanges at once. */
static void empty_exchange_completes_at_once_in_every_mode(void **state) {
  (void)state;
  enum { MODES = 3 };
  uv_loop_t loop;
  revd_server_t *srv[MODES];
  struct timed_reply res[MODES];
  assert_int_equal(uv_loop_init(&loop), 0);
  memset(res, 0, sizeof res);
  for (int mode = 0; mode < MODES; mode++) {
    revd_options_t o;
    revd_options_init(&o);
    o.mode = mode;
    struct sockaddr_storage addr;
    assert_int_equal(revd_server_new(&loop, &o, &srv[mode]), 0);
    assert_int_equal(revd_parse_addr("127.0.0.1", 0, &addr), 0);
    assert_int_equal(revd_server_listen(srv[mode], (struct sockaddr *)&addr), 0);
    assert_int_equal(revd_server_getsockname(srv[mode], &addr), 0);
    res[mode].started = now_ms();
    assert_int_equal(
        revd_exchange(&loop, (struct sockaddr *)&addr, "", 0, 2000, 0, timed_reply_cb, &res[mode]),
        0);
  }
  /* each exchange ends by its 2 s timeout at the latest */
  while (res[0].calls + res[1].calls + res[2].calls < MODES)
    uv_run(&loop, UV_RUN_ONCE);
  for (int mode = 0; mode < MODES; mode++) {
    const struct timed_reply *t = &res[mode];
    if (t->calls != 1 || t->status != 0 || t->len != 0 || t->took >= 1000)
      fail_msg("%s mode, empty message: %d calls, status %s (%s), %zu bytes, after %.0f ms",
               revd_mode_name(mode), t->calls, revd_strerror(t->status), t->what ? t->what : "-",
               t->len, t->took);
    assert_null(t->what);
    revd_server_close(srv[mode], NULL, NULL);
  }
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* `revc ''` prints an empty reply line and exits 0 at once. */
static void revc_empty_message_exits_zero_at_once(void **state) {
  (void)state;
  const char *modes[] = {"chunk", "eof", "line"};
  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
    struct revd_proc *p = start_revd((const char *[]){"--mode", modes[i], NULL});
    struct port_arg port = port_arg(p->port);
    struct run_result r;
    double start = now_ms();
    int status = run_revc(
        &r, NULL,
        (const char *[]){"--port", port.s, "--mode", modes[i], "--timeout", "2000", "", NULL});
    double took = now_ms() - start;
    if (status != 0 || took >= 1000)
      fail_msg("revc --mode %s '': exit %d after %.0f ms, stderr: %s", modes[i], status, took,
               r.err);
    assert_string_equal(r.out, "\n");
    assert_int_equal(r.err_len, 0);
    stop_revd(p);
  }
}

/* ---- bug 3: a missing Unix socket path said "broken pipe" -------------- */

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

/* ---- bug 4: revc exited 0 when the server refused the message --------- */

/* Checks revc's exit 1 and its one stderr line "revc: reply ADDR:
 * incomplete: GOT of ... bytes came back before the server closed". */
static void expect_incomplete(const struct run_result *r, int port, size_t got, long sent) {
  char head[128], want[256] = "";
  snprintf(head, sizeof head, "revc: reply 127.0.0.1:%d: incomplete: %zu of ", port, got);
  if (sent >= 0)
    snprintf(want, sizeof want, "%s%ld bytes came back before the server closed\n", head, sent);
  const char *tail = " bytes came back before the server closed\n";
  if (r->status != 1 || strncmp(r->err, head, strlen(head)) != 0 ||
      (sent >= 0 && strcmp(r->err, want) != 0) || r->err_len < strlen(tail) ||
      strcmp(r->err + r->err_len - strlen(tail), tail) != 0)
    fail_msg("exit %d, stderr: %s", r->status, r->err);
}

static void revc_fails_when_eof_server_refuses_a_long_message(void **state) {
  (void)state;
  struct revd_proc *p = start_revd((const char *[]){"--mode", "eof", "--max-message", "10", NULL});
  struct port_arg port = port_arg(p->port);
  const char *msg = "this message is longer than ten bytes"; /* 37 */
  struct run_result r;
  run_revc(&r, NULL, (const char *[]){"--port", port.s, "--mode", "eof", msg, NULL});
  expect_incomplete(&r, p->port, 0, 37);
  assert_int_equal(r.out_len, 0);
  /* the same message on stdin */
  run_revc(&r, msg, (const char *[]){"--port", port.s, "--mode", "eof", NULL});
  expect_incomplete(&r, p->port, 0, 37);
  /* within the bound all is well */
  assert_int_equal(
      run_revc(&r, NULL, (const char *[]){"--port", port.s, "--mode", "eof", "short", NULL}), 0);
  assert_string_equal(r.out, "trohs\n");
  stop_revd(p);
}

static void revc_fails_when_line_server_refuses_a_long_line(void **state) {
  (void)state;
  struct revd_proc *p = start_revd((const char *[]){"--mode", "line", "--max-message", "10", NULL});
  struct port_arg port = port_arg(p->port);
  struct run_result r;
  /* relay (stdin is a pipe): the first line is answered, the second refused */
  run_revc(&r, "short\nthis line is longer than ten\nx\n",
           (const char *[]){"--port", port.s, "--mode", "line", NULL});
  expect_incomplete(&r, p->port, 6, -1); /* how much of stdin was read before the close varies */
  assert_string_equal(r.out, "trohs\n");
  /* a MESSAGE argument past the bound */
  run_revc(
      &r, NULL,
      (const char *[]){"--port", port.s, "--mode", "line", "this line is longer than ten", NULL});
  expect_incomplete(&r, p->port, 0, 28);
  assert_int_equal(r.out_len, 0);
  /* within the bound all is well */
  assert_int_equal(
      run_revc(&r, "ab\ncd\n", (const char *[]){"--port", port.s, "--mode", "line", NULL}), 0);
  assert_string_equal(r.out, "ba\ndc\n");
  stop_revd(p);
}

static int one_active(const revd_stats_t *st) { return st->active == 1; }

/* revc run by uv_spawn on the test's loop, so the in-process server reacts
 * to it at once, as a daemon would. */
struct child {
  uv_process_t proc;
  uv_timer_t limit;
  int exited, closed;
  int64_t status;
  int term_signal;
};

static void child_close_cb(uv_handle_t *h) {
  struct child *c = h->data;
  c->closed++;
}

static void child_exit_cb(uv_process_t *proc, int64_t status, int term_signal) {
  struct child *c = proc->data;
  c->exited = 1;
  c->status = status;
  c->term_signal = term_signal;
  uv_close((uv_handle_t *)proc, child_close_cb);
  uv_close((uv_handle_t *)&c->limit, child_close_cb);
}

static void child_limit_cb(uv_timer_t *t) {
  struct child *c = t->data;
  uv_process_kill(&c->proc, SIGKILL);
}

/* Reads what is left in a pipe whose writers are gone into buf. */
static void drain(int fd, char *buf, size_t cap) {
  size_t len = 0;
  ssize_t n;
  while (len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0)
    len += (size_t)n;
  buf[len] = '\0';
  close(fd);
}

/* Runs argv on f's loop (at most 5 s), its stdout and stderr into out and
 * err.  Returns the exit status, or 128+N after signal N. */
static int spawn_on_loop(struct fixture *f, const char *const *argv, char *out, char *err,
                         size_t cap) {
  int out_pipe[2], err_pipe[2];
  assert_int_equal(pipe(out_pipe), 0);
  assert_int_equal(pipe(err_pipe), 0);
  for (int i = 0; i < 2; i++) /* the child gets only the write ends, as 1 and 2 */
    assert_int_equal(
        fcntl(out_pipe[i], F_SETFD, FD_CLOEXEC) | fcntl(err_pipe[i], F_SETFD, FD_CLOEXEC), 0);
  uv_stdio_container_t stdio[3] = {
      {.flags = UV_IGNORE},
      {.flags = UV_INHERIT_FD, .data.fd = out_pipe[1]},
      {.flags = UV_INHERIT_FD, .data.fd = err_pipe[1]},
  };
  uv_process_options_t po;
  memset(&po, 0, sizeof po);
  po.file = argv[0];
  po.args = (char **)argv;
  po.exit_cb = child_exit_cb;
  po.stdio = stdio;
  po.stdio_count = 3;
  struct child c;
  memset(&c, 0, sizeof c);
  c.proc.data = &c;
  c.limit.data = &c;
  assert_int_equal(uv_spawn(&f->loop, &c.proc, &po), 0);
  close(out_pipe[1]);
  close(err_pipe[1]);
  assert_int_equal(uv_timer_init(&f->loop, &c.limit), 0);
  assert_int_equal(uv_timer_start(&c.limit, child_limit_cb, 5000, 0), 0);
  while (c.closed < 2) /* bounded: the limit timer kills it */
    uv_run(&f->loop, UV_RUN_ONCE);
  drain(out_pipe[0], out, cap);
  drain(err_pipe[0], err, cap);
  return c.term_signal ? 128 + c.term_signal : (int)c.status;
}

/* A chunk-mode server past max_conns closes at once: the client sees an
 * empty reply (or a reset), never an answer, and revc must say so.  The
 * server runs in-process so the test knows the first client is admitted
 * before revc connects. */
static void revc_fails_when_max_conns_refuses_it(void **state) {
  (void)state;
  revd_options_t o;
  revd_options_init(&o);
  o.max_conns = 1;
  struct fixture f;
  fixture_start(&f, &o);
  int hog = tcp_connect(fixture_port(&f));
  assert_true(hog >= 0);
  assert_true(fixture_run_until_stats(&f, one_active, 2000) >= 0);
  struct port_arg port = port_arg(fixture_port(&f));
  char where[64];
  snprintf(where, sizeof where, " 127.0.0.1:%s: ", port.s);
  /* Whether the close beats "hello" to the server (a clean EOF, where the
   * bug exited 0: most runs) or not is a race: ten runs.  revc's line then
   * says "reply ...: incomplete: 0 of 5 bytes", or names a reset ("read
   * ...: connection reset by peer", "write ...: socket is not connected"). */
  for (int i = 0; i < 10; i++) {
    const char *argv[] = {
        bin_path("REVC_BIN"), "--port", port.s, "--timeout", "3000", "hello", NULL};
    char out[256], err[256];
    int status = spawn_on_loop(&f, argv, out, err, sizeof out);
    const char *nl = strchr(err, '\n');
    if (status != 1 || out[0] != '\0' || strncmp(err, "revc: ", 6) != 0 || !strstr(err, where) ||
        !nl || nl[1] != '\0')
      fail_msg("run %d: exit %d, stdout '%s', stderr: %s", i, status, out, err);
  }
  revd_stats_t st;
  revd_server_stats(f.srv, &st);
  assert_int_equal(st.rejected, 10);
  close(hog);
  fixture_close(&f);
}

/* ---- bug 5: revc exited 0 when its replies could not be written -------- */

/* Runs revc ARGS... with stdout on /dev/full (through /bin/sh, the
 * arguments passed as positional parameters, never parsed by the shell). */
static int run_revc_to_dev_full(struct run_result *r, const char *input, const char *const *args) {
  const char *argv[32] = {"/bin/sh", "-c", "exec \"$0\" \"$@\" > /dev/full", bin_path("REVC_BIN")};
  size_t n = 4;
  for (size_t i = 0; args[i] && n < 31; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  return run_program(argv, input, input ? strlen(input) : 0, 10000, r);
}

static void revc_fails_when_stdout_is_full(void **state) {
  (void)state;
  const char *want = "revc: write standard output: No space left on device\n";
  struct revd_proc *p = start_revd(NULL);
  struct port_arg port = port_arg(p->port);
  struct run_result r;
  /* a MESSAGE argument */
  assert_int_equal(
      run_revc_to_dev_full(&r, NULL, (const char *[]){"--port", port.s, "hello", NULL}), 1);
  assert_string_equal(r.err, want);
  /* the message on stdin */
  assert_int_equal(run_revc_to_dev_full(&r, "hello\n", (const char *[]){"--port", port.s, NULL}),
                   1);
  assert_string_equal(r.err, want);
  stop_revd(p);

  /* line mode, stdin a pipe: the relay */
  p = start_revd((const char *[]){"--mode", "line", NULL});
  port = port_arg(p->port);
  assert_int_equal(run_revc_to_dev_full(&r, "a\nb\n",
                                        (const char *[]){"--port", port.s, "--mode", "line", NULL}),
                   1);
  assert_string_equal(r.err, want);
  stop_revd(p);
}

/* ---- bug 6: Unix socket paths too long for sun_path, or empty ---------- */

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
 * is still usable afterwards. */
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

/* ---- bug 8: "-xy" named the program, not the option ------------------- */

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

int main(void) {
#define TEST(name) cmocka_unit_test_setup_teardown(name, make_tmpdir, cleanup)
  const struct CMUnitTest tests[] = {
      TEST(linger_ends_after_linger_ms_not_the_idle_timeout),
      TEST(idle_timeout_holds_while_another_connection_lingers),
      TEST(empty_exchange_completes_at_once_in_every_mode),
      TEST(revc_empty_message_exits_zero_at_once),
      TEST(revc_unix_missing_path_says_no_such_file),
      TEST(exchange_to_missing_unix_path_fails_in_connect),
      TEST(revc_fails_when_eof_server_refuses_a_long_message),
      TEST(revc_fails_when_line_server_refuses_a_long_line),
      TEST(revc_fails_when_max_conns_refuses_it),
      TEST(revc_fails_when_stdout_is_full),
      TEST(revd_unix_path_too_long_fails_and_leaves_no_file),
      TEST(unix_empty_path_is_a_usage_error),
      TEST(listen_unix_rejects_long_and_empty_paths),
      TEST(unknown_short_option_is_named),
  };
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests_name("regressions of the 6749312 review", tests, NULL, NULL);
}
