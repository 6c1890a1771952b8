/* The real revd and revc, over real sockets, as users run them: serving,
 * run-time errors, signals, threads, metrics (their command lines:
 * test_cli.c). */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "revd.h"

static int start_default(void **state) {
  static struct revd_proc p;
  if (revd_start(&p, NULL) != 0)
    return -1;
  *state = &p;
  return 0;
}

static int stop_expect_clean(void **state) {
  struct revd_proc *p = *state;
  int status = revd_stop(p, SIGTERM, 5000);
  if (status != 0)
    fprintf(stderr, "revd exited %d; it printed:\n%s\n", status, p->log);
  return status == 0 ? 0 : -1;
}

/* The classic Python client: connect, send, recv, and recv returns b''. */
static void classic_client_gets_reversal_then_eof(void **state) {
  struct revd_proc *p = *state;
  int fd = tcp_connect(p->port);
  assert_true(fd >= 0);
  assert_int_equal(send_all(fd, "Hello, world", 12), 0);
  char buf[64];
  ssize_t n = recv_until_eof(fd, buf, sizeof buf, 3000);
  assert_int_equal(n, 12);
  assert_memory_equal(buf, "dlrow ,olleH", 12);
  assert_int_equal(recv(fd, buf, sizeof buf, 0), 0); /* the server closed */
  close(fd);
}

struct exchange_result {
  int done, ok;
  const char *expect;
  size_t len;
};

static void exchange_cb(int status, const char *what, const char *reply, size_t len, void *arg) {
  struct exchange_result *r = arg;
  (void)what;
  r->done++;
  r->ok = status == 0 && len == r->len && memcmp(reply, r->expect, len) == 0;
}

/* 500 clients at once on one loop, each with its own message. */
static void many_concurrent_clients_all_answered(void **state) {
  struct revd_proc *p = *state;
  enum { N = 500 };
  static char msgs[N][32], expect[N][32];
  static struct exchange_result res[N];
  struct sockaddr_storage addr;
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(revd_parse_addr("127.0.0.1", p->port, &addr), 0);
  for (int i = 0; i < N; i++) {
    int len = snprintf(msgs[i], sizeof msgs[i], "client %d says hi", i);
    reverse_copy(expect[i], msgs[i], (size_t)len);
    res[i] = (struct exchange_result){.expect = expect[i], .len = (size_t)len};
    assert_int_equal(revd_exchange(&loop, (struct sockaddr *)&addr, msgs[i], (size_t)len, 10000,
                                   0, exchange_cb, &res[i]),
                     0);
  }
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  int done = 0, ok = 0;
  for (int i = 0; i < N; i++) {
    done += res[i].done;
    ok += res[i].ok;
  }
  assert_int_equal(done, N);
  assert_int_equal(ok, N);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* The blocking classic server would serve nobody else while one client
 * sits silent; revd must not care. */
static void silent_clients_do_not_hold_up_a_fresh_one(void **state) {
  struct revd_proc *p = *state;
  enum { SILENT = 200 };
  int silent[SILENT];
  for (int i = 0; i < SILENT; i++) {
    silent[i] = tcp_connect(p->port);
    assert_true(silent[i] >= 0);
  }
  usleep(50 * 1000); /* let revd accept them all */
  double start = now_ms();
  int fd = tcp_connect(p->port);
  assert_true(fd >= 0);
  assert_int_equal(send_all(fd, "ping", 4), 0);
  char buf[16];
  ssize_t n = recv_until_eof(fd, buf, sizeof buf, 2000);
  double took = now_ms() - start;
  assert_int_equal(n, 4);
  assert_memory_equal(buf, "gnip", 4);
  assert_true(took < 250.0);
  close(fd);
  for (int i = 0; i < SILENT; i++)
    close(silent[i]);
}

static void revc_prints_replies_in_argument_order(void **state) {
  struct revd_proc *p = *state;
  char port[16];
  snprintf(port, sizeof port, "%d", p->port);
  const char *argv[] = {bin_path("REVC_BIN"), "--port", port, "first", "second one", "3rd", NULL};
  struct run_result r;
  assert_int_equal(run_program(argv, NULL, 0, 10000, &r), 0);
  assert_string_equal(r.out, "tsrif\neno dnoces\ndr3\n");
}

static void revc_sends_stdin_when_no_message(void **state) {
  struct revd_proc *p = *state;
  char port[16];
  snprintf(port, sizeof port, "%d", p->port);
  const char *argv[] = {bin_path("REVC_BIN"), "--port", port, NULL};
  struct run_result r;
  assert_int_equal(run_program(argv, "from stdin\n\0bin", 15, 10000, &r), 0);
  assert_int_equal(r.out_len, 15); /* exactly the reply: binary survives a pipe */
  assert_memory_equal(r.out, "nib\0\nnidts morf", 15);
}

/* A client that resets, and one that leaves without a word, are counted
 * and freed; the next client is served as if nothing happened. */
static void rude_clients_do_not_hurt_the_server(void **state) {
  struct revd_proc *p = *state;
  for (int i = 0; i < 20; i++) {
    int fd = tcp_connect(p->port);
    assert_true(fd >= 0);
    if (i % 2) {
      struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* close sends a reset */
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      send_all(fd, "abc", 3);
    }
    close(fd);
  }
  classic_client_gets_reversal_then_eof(state);
}

/* Writing to a client that is gone raises SIGPIPE, which must not kill revd. */
static void client_gone_before_reply_does_not_kill_revd(void **state) {
  struct revd_proc *p = *state;
  static char big[60000];
  memset(big, 'x', sizeof big);
  for (int i = 0; i < 20; i++) {
    int fd = tcp_connect(p->port);
    assert_true(fd >= 0);
    int small = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    send_all(fd, big, sizeof big);
    close(fd);
  }
  usleep(100 * 1000);
  assert_int_equal(kill(p->pid, 0), 0);
  classic_client_gets_reversal_then_eof(state);
}

/* ---- errors at run time: one clear line, exit 1 ------------------------ */
/* (usage errors, exit 2, are test_cli.c's) */

static void revd_reports_port_in_use(void **state) {
  struct revd_proc *p = *state;
  char port[16], expect[96];
  snprintf(port, sizeof port, "%d", p->port);
  snprintf(expect, sizeof expect, "listen 127.0.0.1:%d: address already in use", p->port);
  const char *argv[] = {bin_path("REVD_BIN"), "--port", port, NULL};
  struct run_result r;
  assert_int_equal(run_program(argv, NULL, 0, 5000, &r), 1);
  if (!is_log_line(r.err, "error", expect))
    fail_msg("expected one error line \"%s\", got: %s", expect, r.err);
}

static void revc_reports_connection_refused(void **state) {
  (void)state;
  int port = unused_port();
  char portstr[16], expect[96];
  snprintf(portstr, sizeof portstr, "%d", port);
  snprintf(expect, sizeof expect, "revc: connect 127.0.0.1:%d: connection refused\n", port);
  const char *argv[] = {bin_path("REVC_BIN"), "--port", portstr, "hello", NULL};
  struct run_result r;
  assert_int_equal(run_program(argv, NULL, 0, 5000, &r), 1);
  assert_string_equal(r.err, expect);
  assert_int_equal(r.out_len, 0);
}

/* ---- signals ---------------------------------------------------------- */

static void stop_signal_exits_zero(int sig) {
  struct revd_proc p;
  /* the idle client must be revd's, not waiting in the kernel's queue */
  assert_int_equal(revd_start(&p, (const char *[]){"--defer-accept", "off", NULL}), 0);
  int idle = tcp_connect(p.port); /* an open connection must not hold up the exit */
  assert_true(idle >= 0);
  classic_client_gets_reversal_then_eof((void **)&(struct revd_proc *){&p});
  double start = now_ms();
  assert_int_equal(kill(p.pid, sig), 0);
  char buf[8];
  assert_int_equal(recv_until_eof(idle, buf, sizeof buf, 2000), 0); /* clean EOF, no reset */
  close(idle);
  assert_int_equal(revd_stop(&p, 0, 5000), 0);
  assert_true(now_ms() - start < 1000);
}

static void sigterm_exits_zero(void **state) {
  (void)state;
  stop_signal_exits_zero(SIGTERM);
}

static void sigint_exits_zero(void **state) {
  (void)state;
  stop_signal_exits_zero(SIGINT);
}

/* --threads 2: two loops share the port; every client is answered and the
 * exit log counts them all. */
static void threads_share_the_port(void **state) {
  (void)state;
  struct revd_proc p;
  assert_int_equal(revd_start(&p, (const char *[]){"--threads", "2", NULL}), 0);
  char task_dir[64];
  snprintf(task_dir, sizeof task_dir, "/proc/%d/task", (int)p.pid);
  DIR *dir = opendir(task_dir);
  assert_non_null(dir);
  int threads = 0;
  for (struct dirent *e; (e = readdir(dir));)
    threads += e->d_name[0] != '.';
  closedir(dir);
  assert_int_equal(threads, 2);
  many_concurrent_clients_all_answered((void **)&(struct revd_proc *){&p});
  assert_int_equal(revd_stop(&p, SIGTERM, 5000), 0);
  if (!strstr(p.log, "accepted=500 completed=500"))
    fail_msg("expected accepted=500 completed=500 in:\n%s", p.log);
}

/* ---- metrics ------------------------------------------------------------ */

/* One HTTP request to 127.0.0.1:port; the whole response in buf. */
static ssize_t http_request(int port, const char *request, char *buf, size_t cap) {
  int fd = tcp_connect(port);
  assert_true(fd >= 0);
  assert_int_equal(send_all(fd, request, strlen(request)), 0);
  ssize_t n = recv_until_eof(fd, buf, cap - 1, 5000);
  close(fd);
  assert_true(n > 0);
  buf[n] = '\0';
  return n;
}

static void metrics_endpoint_serves_the_counters(void **state) {
  (void)state;
  struct revd_proc p;
  assert_int_equal(revd_start(&p, (const char *[]){"--metrics", "127.0.0.1:0", NULL}), 0);
  const char *at = strstr(p.log, "metrics on http://127.0.0.1:");
  assert_non_null(at);
  int mport = atoi(at + strlen("metrics on http://127.0.0.1:"));
  assert_true(mport > 0);
  classic_client_gets_reversal_then_eof((void **)&(struct revd_proc *){&p});

  static char buf[16384];
  http_request(mport, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof buf);
  assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
  assert_non_null(strstr(buf, "# TYPE revd_exchanges_completed_total counter\n"));
  assert_non_null(strstr(buf, "\nrevd_exchanges_completed_total 1\n"));
  assert_non_null(strstr(buf, "\nrevd_connections_accepted_total 1\n"));
  assert_non_null(strstr(buf, "\nrevd_sent_bytes_total 12\n"));
  http_request(mport, "GET /nope HTTP/1.1\r\n\r\n", buf, sizeof buf);
  assert_non_null(strstr(buf, "HTTP/1.1 404 "));
  http_request(mport, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", buf, sizeof buf);
  assert_non_null(strstr(buf, "HTTP/1.1 405 "));
  http_request(mport, "\x01\x02 not http\r\n\r\n", buf, sizeof buf);
  assert_non_null(strstr(buf, "HTTP/1.1 400 "));
  assert_int_equal(revd_stop(&p, SIGTERM, 5000), 0);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest with_server[] = {
      cmocka_unit_test(classic_client_gets_reversal_then_eof),
      cmocka_unit_test(many_concurrent_clients_all_answered),
      cmocka_unit_test(silent_clients_do_not_hold_up_a_fresh_one),
      cmocka_unit_test(revc_prints_replies_in_argument_order),
      cmocka_unit_test(revc_sends_stdin_when_no_message),
      cmocka_unit_test(rude_clients_do_not_hurt_the_server),
      cmocka_unit_test(client_gone_before_reply_does_not_kill_revd),
      cmocka_unit_test(revd_reports_port_in_use),
  };
  const struct CMUnitTest standalone[] = {
      cmocka_unit_test(revc_reports_connection_refused),
      cmocka_unit_test(sigterm_exits_zero),
      cmocka_unit_test(sigint_exits_zero),
      cmocka_unit_test(threads_share_the_port),
      cmocka_unit_test(metrics_endpoint_serves_the_counters),
  };
  int failed = cmocka_run_group_tests_name("binaries: one revd", with_server, start_default,
                                           stop_expect_clean);
  failed += cmocka_run_group_tests_name("binaries: standalone", standalone, NULL, NULL);
  return failed ? 1 : 0;
}
