/* Timeouts, in-process through librevd: the idle timeout, the lingering
 * close and the drain, and the one loop-wide timer that serves their lists,
 * each with its own timeout.
 * (The idle timeout against the real revd: test_modes.c.)
 *
 * Every wait is bounded, and the bounds sit far from both the fixed and the
 * broken behaviour (the broken one waits for the *other*, longer timeout),
 * so a slow machine does not make these flaky. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "harness.h"
#include "revd.h"

/* A chunk-mode message revd cannot know is complete: bigger than one small
 * segment, never half-closed.  "hello" comes last, so the reply starts
 * with "olleh".  revd answers it, then lingers. */
#define LINGERING_LEN 1000
static void send_lingering_message(int fd) {
  char msg[LINGERING_LEN];
  memset(msg, '.', sizeof msg);
  memcpy(msg + sizeof msg - 5, "hello", 5);
  assert_int_equal(send_all(fd, msg, sizeof msg), 0);
}

/* Runs f until pred holds: fails unless that took under a second.  The
 * broken behaviour these tests catch takes 3 s or more. */
static void expect_within_a_second(struct fixture *f, int (*pred)(const revd_stats_t *),
                                   const char *what) {
  double took = fixture_run_until_stats(f, pred, 2500);
  if (took < 0 || took >= 1000)
    fail_msg("%s took %.0f ms (-1: over 2.5 s)", what, took);
}

static int answered_and_closed(const revd_stats_t *st) {
  return st->completed == 1 && st->active == 0;
}

/* A client that sends a message which may go on, never half-closes and
 * never closes gets a lingering close.  It must end after linger_ms, not after the much longer idle
 * timeout the timer was armed for when the connection was accepted
 * (regression: the one timer over two lists with different timeouts). */
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
  send_lingering_message(fd);
  expect_within_a_second(&f, answered_and_closed, "lingering close (linger 100 ms, idle 5000 ms)");
  revd_stats_t st;
  revd_server_stats(f.srv, &st);
  assert_int_equal(st.timeouts, 0); /* the linger ended it, not the idle timeout */
  char buf[LINGERING_LEN + 16];
  assert_int_equal(recv_until_eof(fd, buf, sizeof buf, 1000), LINGERING_LEN);
  assert_memory_equal(buf, "olleh", 5);
  close(fd);
  fixture_close(&f);
}

static int one_answered(const revd_stats_t *st) { return st->completed == 1; }
static int one_timed_out(const revd_stats_t *st) { return st->timeouts == 1; }

/* While one connection lingers (3 s), a silent one that connects later
 * must still be timed out after idle_timeout_ms (100 ms) (regression: the
 * same timer, the other way round). */
static void idle_timeout_holds_while_another_connection_lingers(void **state) {
  (void)state;
  revd_options_t o;
  revd_options_init(&o);
  o.idle_timeout_ms = 100;
  o.linger_ms = 3000;
  o.defer_accept = 0; /* the silent client must reach revd */
  struct fixture f;
  fixture_start(&f, &o);
  int lingering = tcp_connect(fixture_port(&f));
  assert_true(lingering >= 0);
  send_lingering_message(lingering);
  assert_true(fixture_run_until_stats(&f, one_answered, 2000) >= 0);
  fixture_run_for(&f, 300); /* past the first idle deadline: the timer now waits for the linger */
  int silent = tcp_connect(fixture_port(&f));
  assert_true(silent >= 0);
  expect_within_a_second(&f, one_timed_out,
                         "idle timeout of a silent connection (idle 100 ms, linger 3000 ms)");
  char buf[4];
  assert_int_equal(recv_until_eof(silent, buf, sizeof buf, 1000), 0);
  revd_stats_t st;
  revd_server_stats(f.srv, &st);
  assert_int_equal(st.active, 1); /* the lingering one is still there */
  close(silent);
  close(lingering); /* its EOF ends the linger at once */
  fixture_close(&f);
}

static int one_left(const revd_stats_t *st) { return st->active == 1; }

/* At wind-down an exchange under way gets the drain deadline (3 s here) and
 * a connection owed nothing a lingering close (100 ms).  The lingering one
 * must end after linger_ms, not behind the drain (regression: both shared
 * one list, which is ordered only when every entry has the same timeout). */
static void linger_at_wind_down_is_not_held_behind_a_drain(void **state) {
  (void)state;
  revd_options_t o;
  revd_options_init(&o);
  o.mode = REVD_MODE_EOF;
  o.linger_ms = 100;
  o.drain_timeout_ms = 3000;
  o.defer_accept = 0; /* the silent client must reach revd */
  struct fixture f;
  fixture_start(&f, &o);
  int owed = tcp_connect(fixture_port(&f)); /* a message begun, not half-closed */
  assert_true(owed >= 0);
  assert_int_equal(send_all(owed, "part of a message", 17), 0);
  int silent = tcp_connect(fixture_port(&f)); /* owed nothing */
  assert_true(silent >= 0);
  fixture_run_for(&f, 200); /* both accepted, the message read */
  revd_server_close(f.srv, fixture_closed_cb, &f);
  expect_within_a_second(&f, one_left, "lingering close at wind-down (linger 100 ms, drain 3000 ms)");
  char buf[4];
  assert_int_equal(recv_until_eof(silent, buf, sizeof buf, 1000), 0);
  close(silent);
  /* The drain still serves the exchange under way. */
  assert_int_equal(shutdown(owed, SHUT_WR), 0);
  fixture_close(&f);
  char reply[32];
  assert_int_equal(recv_until_eof(owed, reply, sizeof reply, 1000), 17);
  assert_memory_equal(reply, "egassem a fo trap", 17);
  close(owed);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(linger_ends_after_linger_ms_not_the_idle_timeout),
      cmocka_unit_test(idle_timeout_holds_while_another_connection_lingers),
      cmocka_unit_test(linger_at_wind_down_is_not_held_behind_a_drain),
  };
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests_name("timeouts", tests, NULL, NULL);
}
