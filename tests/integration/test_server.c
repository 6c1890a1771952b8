/* librevd in-process: servers and clients on one loop, as an embedder runs it.
 * Every test counts its callbacks and ends with uv_loop_close() == 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "fixture.h"
#include "harness.h"
#include "revd.h"


struct expect {
  struct fixture *f;
  char want[128];
  size_t len;
  int status;
};

static void expect_cb(int status, const char *what, const char *reply, size_t len, void *arg) {
  struct expect *e = arg;
  (void)what;
  e->status = status;
  if (status == 0 && len == e->len && memcmp(reply, e->want, len) == 0)
    e->f->replies_ok++;
  else
    e->f->replies_failed++;
}

/* Starts an exchange of msg expecting its byte reversal. */
static void exchange_expect_reversed(struct fixture *f, struct expect *e, const char *msg) {
  e->f = f;
  e->len = strlen(msg);
  reverse_copy(e->want, msg, e->len);
  assert_int_equal(revd_exchange(&f->loop, (struct sockaddr *)&f->addr, msg, e->len, 5000, 0,
                                 expect_cb, e),
                   0);
}

/* The server stops the loop for us once every client is answered. */
static void run_until_replies(struct fixture *f, int n) {
  while (f->replies_ok + f->replies_failed < n)
    uv_run(&f->loop, UV_RUN_ONCE);
}

static void clients_on_the_same_loop_are_answered(void **state) {
  (void)state;
  struct fixture f;
  fixture_start(&f, NULL);
  static struct expect e[50];
  char msg[64];
  for (int i = 0; i < 50; i++) {
    snprintf(msg, sizeof msg, "message number %d", i);
    exchange_expect_reversed(&f, &e[i], msg);
  }
  run_until_replies(&f, 50);
  assert_int_equal(f.replies_ok, 50);
  revd_stats_t st;
  revd_server_stats(f.srv, &st);
  assert_int_equal(st.accepted, 50);
  assert_int_equal(st.completed, 50);
  fixture_close(&f);
}

static void two_servers_share_one_loop(void **state) {
  (void)state;
  struct fixture f;
  fixture_start(&f, NULL);
  revd_server_t *second;
  struct sockaddr_storage any, second_addr;
  assert_int_equal(revd_server_new(&f.loop, NULL, &second), 0);
  assert_int_equal(revd_parse_addr("127.0.0.1", 0, &any), 0);
  assert_int_equal(revd_server_listen(second, (struct sockaddr *)&any), 0);
  assert_int_equal(revd_server_getsockname(second, &second_addr), 0);

  struct expect a, b;
  exchange_expect_reversed(&f, &a, "to the first");
  f.addr = second_addr;
  exchange_expect_reversed(&f, &b, "to the second");
  run_until_replies(&f, 2);
  assert_int_equal(f.replies_ok, 2);

  revd_stats_t st;
  revd_server_stats(second, &st);
  assert_int_equal(st.completed, 1);
  revd_server_close(second, fixture_closed_cb, &f);
  fixture_close_all(&f, 2);
}

static int one_empty_one_reset(const revd_stats_t *st) {
  return st->empty == 1 && st->resets == 1 && st->active == 0;
}

static int one_active(const revd_stats_t *st) { return st->active == 1; }


static void silent_and_resetting_clients_are_counted(void **state) {
  (void)state;
  revd_options_t o;
  revd_options_init(&o);
  o.defer_accept = 0; /* deferred, the kernel would keep them from revd */
  struct fixture f;
  fixture_start(&f, &o);
  int silent = tcp_connect(fixture_port(&f)); /* connects, leaves without a word */
  assert_true(silent >= 0);
  close(silent);
  int rude = tcp_connect(fixture_port(&f)); /* connects, then resets */
  assert_true(rude >= 0);
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  setsockopt(rude, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(rude);
  assert_true(fixture_run_until_stats(&f, one_empty_one_reset, 3000) >= 0);
  struct expect e;
  exchange_expect_reversed(&f, &e, "still serving");
  run_until_replies(&f, 1);
  assert_int_equal(f.replies_ok, 1);
  fixture_close(&f);
}

static int two_active_one_per_ip(const revd_stats_t *st) {
  return st->active == 2 && st->rejected_per_ip == 1;
}
static int one_active_one_per_ip(const revd_stats_t *st) {
  return st->active == 1 && st->rejected_per_ip == 1;
}

/* max_conns_per_ip 2: a third connection from 127.0.0.1 is closed at once
 * and counted; once one of the two leaves, the address may connect again
 * (its count came back), and other clients are not held up meanwhile. */
static void one_address_holds_at_most_max_conns_per_ip(void **state) {
  (void)state;
  revd_options_t o;
  revd_options_init(&o);
  o.max_conns_per_ip = 2;
  o.defer_accept = 0; /* silent clients must reach revd to hold a slot */
  struct fixture f;
  fixture_start(&f, &o);
  int a = tcp_connect(fixture_port(&f)), b = tcp_connect(fixture_port(&f));
  int third = tcp_connect(fixture_port(&f));
  assert_true(a >= 0 && b >= 0 && third >= 0);
  assert_true(fixture_run_until_stats(&f, two_active_one_per_ip, 3000) >= 0);
  revd_stats_t st;
  revd_server_stats(f.srv, &st);
  assert_int_equal(st.rejected, 1);
  char buf[4];
  assert_true(recv_until_eof(third, buf, sizeof buf, 1000) <= 0); /* closed unanswered */
  close(third);
  close(a);
  assert_true(fixture_run_until_stats(&f, one_active_one_per_ip, 3000) >= 0);
  struct expect e;
  exchange_expect_reversed(&f, &e, "room again"); /* b and this one: two */
  run_until_replies(&f, 1);
  assert_int_equal(f.replies_ok, 1);
  revd_server_stats(f.srv, &st);
  assert_int_equal(st.rejected_per_ip, 1);
  close(b);
  fixture_close(&f);
}

static void close_with_clients_waiting_finishes_cleanly(void **state) {
  (void)state;
  struct fixture f;
  fixture_start(&f, NULL);
  int idle = tcp_connect(fixture_port(&f));
  assert_true(idle >= 0);
  assert_true(fixture_run_until_stats(&f, one_active, 3000) >= 0);
  /* The idle client gets a clean EOF from the lingering close; once it
   * closes too, the server is gone and the loop is empty. */
  revd_server_close(f.srv, fixture_closed_cb, &f);
  uv_run(&f.loop, UV_RUN_NOWAIT);
  char buf[4];
  assert_int_equal(recv_until_eof(idle, buf, sizeof buf, 2000), 0);
  close(idle);
  assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(f.closed, 1);
  assert_int_equal(uv_loop_close(&f.loop), 0);
}

static void listen_errors_are_returned_not_fatal(void **state) {
  (void)state;
  struct fixture f;
  fixture_start(&f, NULL);
  revd_server_t *other;
  assert_int_equal(revd_server_new(&f.loop, NULL, &other), 0);
  assert_int_equal(revd_server_listen(other, (struct sockaddr *)&f.addr), UV_EADDRINUSE);
  revd_server_close(other, fixture_closed_cb, &f);
  /* listening twice on one server */
  assert_int_equal(revd_server_listen(f.srv, (struct sockaddr *)&f.addr), UV_EBUSY);
  fixture_close_all(&f, 2);
}

static void bad_options_are_refused(void **state) {
  (void)state;
  uv_loop_t loop;
  revd_server_t *srv = NULL;
  revd_options_t o;
  assert_int_equal(uv_loop_init(&loop), 0);
  revd_options_init(&o);
  o.mode = 7;
  assert_int_equal(revd_server_new(&loop, &o, &srv), UV_EINVAL);
  revd_options_init(&o);
  o.reverse = -1;
  assert_int_equal(revd_server_new(&loop, &o, &srv), UV_EINVAL);
  assert_null(srv);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void closing_a_server_that_never_listened(void **state) {
  (void)state;
  struct fixture f;
  memset(&f, 0, sizeof f);
  assert_int_equal(uv_loop_init(&f.loop), 0);
  assert_int_equal(revd_server_new(&f.loop, NULL, &f.srv), 0);
  fixture_close(&f);
}

static void defaults_match_the_contract(void **state) {
  (void)state;
  revd_options_t o;
  revd_options_init(&o);
  assert_int_equal(o.mode, REVD_MODE_CHUNK);
  assert_int_equal(o.reverse, REVD_REVERSE_BYTES);
  assert_int_equal(o.max_message, 64 * 1024 * 1024);
  assert_string_equal(revd_mode_name(REVD_MODE_EOF), "eof");
  assert_int_equal(revd_mode_parse("line"), REVD_MODE_LINE);
  assert_int_equal(revd_mode_parse("LINE"), UV_EINVAL);
  assert_string_equal(revd_strerror(UV_EADDRINUSE), "address already in use");
}

static void stats_format_as_prometheus_text(void **state) {
  (void)state;
  revd_stats_t st;
  memset(&st, 0, sizeof st);
  st.completed = 42;
  st.active = 3;
  char buf[4096];
  int n = revd_stats_format(&st, buf, sizeof buf);
  assert_true(n > 0 && (size_t)n == strlen(buf));
  assert_non_null(strstr(buf, "# TYPE revd_connections_active gauge\nrevd_connections_active 3\n"));
  assert_non_null(strstr(buf, "\nrevd_exchanges_completed_total 42\n"));
  assert_int_equal(revd_stats_format(&st, buf, 100), UV_ENOBUFS);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(clients_on_the_same_loop_are_answered),
      cmocka_unit_test(two_servers_share_one_loop),
      cmocka_unit_test(silent_and_resetting_clients_are_counted),
      cmocka_unit_test(one_address_holds_at_most_max_conns_per_ip),
      cmocka_unit_test(close_with_clients_waiting_finishes_cleanly),
      cmocka_unit_test(listen_errors_are_returned_not_fatal),
      cmocka_unit_test(bad_options_are_refused),
      cmocka_unit_test(closing_a_server_that_never_listened),
      cmocka_unit_test(defaults_match_the_contract),
      cmocka_unit_test(stats_format_as_prometheus_text),
  };
  return cmocka_run_group_tests_name("server in-process", tests, NULL, NULL);
}
