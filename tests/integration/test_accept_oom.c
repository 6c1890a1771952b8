/* Accept under out-of-memory (regression, bug 7 of the 6749312 review):
 * when calloc of a connection failed, connection_cb returned without
 * uv_accept(); libuv then stops watching the listener until uv_accept() is
 * called, so the server went deaf for good.  Now the connection is taken on
 * a spare handle and closed, counted as rejected, and later clients are
 * served.
 *
 * Linked with -Wl,--wrap=calloc: librevd's calls to calloc (linked in
 * statically here) come to __wrap_calloc, which fails the next `fail_next`
 * of them.  The test arms it only around loop turns in which the clients are
 * plain blocking sockets, so the only librevd allocation that can run then
 * is the server's calloc of a connection; libuv, cmocka and the sanitizer
 * runtimes are shared libraries or define calloc themselves and are not
 * wrapped. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "harness.h"
#include "revd.h"

void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);

static int fail_next; /* librevd callocs still to fail */
static int failed;    /* librevd callocs failed so far */

void *__wrap_calloc(size_t n, size_t size) {
  if (fail_next > 0) {
    fail_next--;
    failed++;
    return NULL;
  }
  return __real_calloc(n, size);
}

struct fixture {
  uv_loop_t loop;
  revd_server_t *srv;
  int port;
  int closed;
};

static void closed_cb(revd_server_t *srv, void *arg) {
  struct fixture *f = arg;
  (void)srv;
  f->closed++;
}

/* Runs the loop until stats show `rejected` rejections and `completed`
 * answers with nobody left open, at most 3 s.  Returns 1 if they did. */
static int run_until(struct fixture *f, uint64_t rejected, uint64_t completed) {
  revd_stats_t st;
  double end = now_ms() + 3000;
  do {
    uv_run(&f->loop, UV_RUN_NOWAIT);
    revd_server_stats(f->srv, &st);
    if (st.rejected == rejected && st.completed == completed && st.active == 0)
      return 1;
    usleep(1000);
  } while (now_ms() < end);
  fprintf(stderr, "after 3 s: accepted %llu, rejected %llu, completed %llu, active %llu\n",
          (unsigned long long)st.accepted, (unsigned long long)st.rejected,
          (unsigned long long)st.completed, (unsigned long long)st.active);
  return 0;
}

/* A client that sends msg and half-closes, over a blocking socket (no
 * allocation in this process). */
static int client(struct fixture *f, const char *msg) {
  int fd = tcp_connect(f->port);
  assert_true(fd >= 0);
  assert_int_equal(send_all(fd, msg, strlen(msg)), 0);
  shutdown(fd, SHUT_WR);
  return fd;
}

/* The server closed fd without an answer: EOF or a reset, not a timeout. */
static void expect_closed_unanswered(int fd) {
  char buf[64];
  ssize_t n = recv_until_eof(fd, buf, sizeof buf, 2000);
  if (n != 0 && !(n < 0 && errno == ECONNRESET))
    fail_msg("a rejected client got %zd bytes (errno %s)", n, n < 0 ? strerror(errno) : "-");
  close(fd);
}

static void expect_answer(int fd, const char *want) {
  char buf[64];
  ssize_t n = recv_until_eof(fd, buf, sizeof buf, 2000);
  assert_int_equal(n, (ssize_t)strlen(want));
  assert_memory_equal(buf, want, strlen(want));
  close(fd);
}

static void accept_without_memory_rejects_and_keeps_serving(void **state) {
  (void)state;
  struct fixture f;
  memset(&f, 0, sizeof f);
  struct sockaddr_storage addr;
  assert_int_equal(uv_loop_init(&f.loop), 0);
  assert_int_equal(revd_server_new(&f.loop, NULL, &f.srv), 0);
  assert_int_equal(revd_parse_addr("127.0.0.1", 0, &addr), 0);
  assert_int_equal(revd_server_listen(f.srv, (struct sockaddr *)&addr), 0);
  assert_int_equal(revd_server_getsockname(f.srv, &addr), 0);
  f.port = ntohs(((struct sockaddr_in *)&addr)->sin_port);

  /* One connection meets out-of-memory: it is closed, not left waiting. */
  int a = client(&f, "first");
  fail_next = 1;
  int ok = run_until(&f, 1, 0);
  fail_next = 0;
  assert_int_equal(failed, 1); /* the server did try to allocate it */
  assert_true(ok);
  expect_closed_unanswered(a);

  /* Two at once: the second fails while the spare handle is still
   * closing; it waits for the spare and is then served. */
  int b = client(&f, "second"), c = client(&f, "third");
  usleep(10 * 1000); /* both handshakes done (loopback: within connect) */
  fail_next = 2;
  ok = run_until(&f, 2, 1);
  fail_next = 0;
  assert_int_equal(failed, 3);
  assert_true(ok);
  expect_closed_unanswered(b);
  expect_answer(c, "driht");

  /* Memory is back: the server is not deaf. */
  int d = client(&f, "fourth");
  assert_true(run_until(&f, 2, 2));
  expect_answer(d, "htruof");

  revd_stats_t st;
  revd_server_stats(f.srv, &st);
  assert_int_equal(st.accepted, 2);
  revd_server_close(f.srv, closed_cb, &f);
  assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(f.closed, 1);
  assert_int_equal(uv_loop_close(&f.loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(accept_without_memory_rejects_and_keeps_serving),
  };
  return cmocka_run_group_tests_name("accept out of memory", tests, NULL, NULL);
}
