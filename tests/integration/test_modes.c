/* Every mode of the real revd, over real sockets: framing, bounds, and
 * closes that never destroy a reply. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static char *random_bytes(size_t len, unsigned seed) {
  char *p = malloc(len ? len : 1);
  assert_non_null(p);
  srand(seed);
  for (size_t i = 0; i < len; i++)
    p[i] = (char)(rand() & 0xff);
  return p;
}

/* Sends msg, half-closes, reads to EOF.  Returns the reply length. */
static ssize_t exchange_half_close(int port, const char *msg, size_t len, char *reply,
                                   size_t cap) {
  int fd = tcp_connect(port);
  assert_true(fd >= 0);
  assert_int_equal(send_all(fd, msg, len), 0);
  shutdown(fd, SHUT_WR);
  ssize_t n = recv_until_eof(fd, reply, cap, 10000);
  close(fd);
  return n;
}

static void with_revd(struct revd_proc *p, const char *const *args) {
  assert_int_equal(revd_start(p, args), 0);
}

static void stop_clean(struct revd_proc *p) {
  int status = revd_stop(p, SIGTERM, 5000);
  if (status != 0)
    fail_msg("revd exited %d; it printed:\n%s", status, p->log);
}

/* ---- eof mode --------------------------------------------------------- */

static void eof_mode_reverses_4_mib_of_random_binary(void **state) {
  (void)state;
  struct revd_proc p;
  with_revd(&p, (const char *[]){"--mode", "eof", NULL});
  size_t len = 4u << 20;
  char *msg = random_bytes(len, 42), *want = malloc(len), *got = malloc(len + 1);
  reverse_copy(want, msg, len);
  assert_int_equal(exchange_half_close(p.port, msg, len, got, len + 1), (ssize_t)len);
  assert_memory_equal(got, want, len);
  free(msg), free(want), free(got);
  stop_clean(&p);
}

static void eof_mode_answers_an_empty_message_with_nothing(void **state) {
  (void)state;
  struct revd_proc p;
  with_revd(&p, (const char *[]){"--mode", "eof", NULL});
  char buf[8];
  assert_int_equal(exchange_half_close(p.port, "", 0, buf, sizeof buf), 0);
  assert_int_equal(exchange_half_close(p.port, "a\0b", 3, buf, sizeof buf), 3);
  assert_memory_equal(buf, "b\0a", 3);
  stop_clean(&p);
}

/* Past --max-message the server answers nothing and closes; others are fine. */
static void eof_mode_closes_past_max_message(void **state) {
  (void)state;
  struct revd_proc p;
  with_revd(&p, (const char *[]){"--mode", "eof", "--max-message", "1000", NULL});
  char *big = random_bytes(1001, 7), buf[2048];
  int fd = tcp_connect(p.port);
  assert_true(fd >= 0);
  send_all(fd, big, 1001);
  shutdown(fd, SHUT_WR);
  ssize_t n = recv_until_eof(fd, buf, sizeof buf, 5000);
  assert_true(n <= 0); /* EOF (or a reset), never a reply */
  close(fd);
  /* exactly at the bound is fine */
  assert_int_equal(exchange_half_close(p.port, big, 1000, buf, sizeof buf), 1000);
  free(big);
  stop_clean(&p);
}

/* ---- line mode -------------------------------------------------------- */

static void line_mode_answers_each_line_as_it_completes(void **state) {
  (void)state;
  struct revd_proc p;
  with_revd(&p, (const char *[]){"--mode", "line", NULL});
  int fd = tcp_connect(p.port);
  assert_true(fd >= 0);
  char buf[64];
  /* Interactive: one line, its reply, while the connection stays open. */
  assert_int_equal(send_all(fd, "hello\n", 6), 0);
  assert_int_equal(recv(fd, buf, sizeof buf, 0), 6);
  assert_memory_equal(buf, "olleh\n", 6);
  /* Pipelined lines, a line split across writes, CRLF kept as data. */
  assert_int_equal(send_all(fd, "ab\ncd\r\n\nef", 10), 0);
  usleep(20000);
  assert_int_equal(send_all(fd, "gh\nlast", 7), 0);
  shutdown(fd, SHUT_WR);
  ssize_t n = recv_until_eof(fd, buf, sizeof buf, 5000);
  const char want[] = "ba\n\rdc\n\nhgfe\ntsal"; /* final line: no '\n' added */
  assert_int_equal(n, (ssize_t)strlen(want));
  assert_memory_equal(buf, want, (size_t)n);
  close(fd);
  stop_clean(&p);
}

static void line_mode_closes_on_a_line_past_max_message(void **state) {
  (void)state;
  struct revd_proc p;
  with_revd(&p, (const char *[]){"--mode", "line", "--max-message", "8", NULL});
  int fd = tcp_connect(p.port);
  assert_true(fd >= 0);
  /* "1234567\n" is exactly 8 bytes: answered.  The next line is 9: closed. */
  assert_int_equal(send_all(fd, "1234567\n12345678\nnever\n", 23), 0);
  char buf[64];
  ssize_t n = recv_until_eof(fd, buf, sizeof buf, 5000);
  assert_int_equal(n, 8);
  assert_memory_equal(buf, "7654321\n", 8);
  close(fd);
  stop_clean(&p);
}

/* Many lines in flight to a client that reads slowly: every reply arrives in
 * order, and the server buffers only a bounded amount meanwhile. */
static void line_mode_pipelined_megabytes_arrive_in_order(void **state) {
  (void)state;
  struct revd_proc p;
  with_revd(&p, (const char *[]){"--mode", "line", NULL});
  enum { LINES = 40000 };
  size_t cap = (size_t)LINES * 32, len = 0;
  char *msg = malloc(cap), *want = malloc(cap), *got = malloc(cap);
  for (int i = 0; i < LINES; i++) {
    int n = snprintf(msg + len, 32, "line %d of many\n", i);
    reverse_copy(want + len, msg + len, (size_t)n - 1);
    want[len + (size_t)n - 1] = '\n';
    len += (size_t)n;
  }
  int fd = tcp_connect(p.port);
  assert_true(fd >= 0);
  /* Send from a child so this side can read concurrently. */
  pid_t child = fork();
  if (child == 0) {
    send_all(fd, msg, len);
    shutdown(fd, SHUT_WR);
    _exit(0);
  }
  ssize_t n = recv_until_eof(fd, got, cap, 15000);
  waitpid(child, NULL, 0);
  assert_int_equal(n, (ssize_t)len);
  assert_memory_equal(got, want, len);
  close(fd);
  free(msg), free(want), free(got);
  stop_clean(&p);
}

/* SIGTERM while a line-mode client is mid-stream: the replies already made
 * arrive, then a clean EOF (no reset wipes them). */
static void line_mode_shutdown_mid_stream_keeps_replies(void **state) {
  (void)state;
  struct revd_proc p;
  with_revd(&p, (const char *[]){"--mode", "line", NULL});
  int fd = tcp_connect(p.port);
  assert_true(fd >= 0);
  assert_int_equal(send_all(fd, "one\ntwo\npartial", 15), 0);
  usleep(100 * 1000);
  kill(p.pid, SIGTERM);
  usleep(100 * 1000);
  send_all(fd, " more input the server drains\n", 30); /* must not provoke a reset */
  char buf[64];
  ssize_t n = recv_until_eof(fd, buf, sizeof buf, 5000);
  assert_int_equal(n, 8);
  assert_memory_equal(buf, "eno\nowt\n", 8);
  close(fd);
  assert_int_equal(revd_stop(&p, 0, 5000), 0);
}

/* ---- chunk mode ------------------------------------------------------- */

/* 1 MiB without half-closing: the reversal of a non-empty prefix, then a
 * clean EOF, never a reset (lingering close).  One thread sends and reads
 * as the socket allows, so whichever call meets a reset reports it.  A close
 * that forgets the unread input makes the kernel send one; it is a race, so
 * the test tries a few times. */
static void chunk_big_send_once(int port, const char *msg, size_t len) {
  char *got = malloc(len);
  size_t sent = 0, n = 0;
  int fd = tcp_connect(port);
  assert_true(fd >= 0);
  for (;;) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN | (sent < len ? POLLOUT : 0)};
    assert_true(poll(&pfd, 1, 5000) > 0);
    if (pfd.revents & POLLOUT) {
      ssize_t w = send(fd, msg + sent, len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && errno != EAGAIN)
        fail_msg("send after %zu of %zu bytes: %s (a reset)", sent, len, strerror(errno));
      sent += w > 0 ? (size_t)w : 0;
    }
    if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = recv(fd, got + n, len - n, MSG_DONTWAIT);
      if (r < 0 && errno != EAGAIN)
        fail_msg("reply lost after %zu bytes: %s", n, strerror(errno));
      if (r == 0)
        break;
      n += r > 0 ? (size_t)r : 0;
    }
  }
  close(fd);
  assert_true(n > 0 && n <= 65536);
  char *want = malloc(n);
  reverse_copy(want, msg, n);
  assert_memory_equal(got, want, n);
  free(got), free(want);
}

static void chunk_mode_big_send_gets_prefix_reply_and_clean_eof(void **state) {
  (void)state;
  struct revd_proc p;
  with_revd(&p, NULL);
  size_t len = 1u << 20;
  char *msg = random_bytes(len, 9);
  for (int i = 0; i < 8; i++)
    chunk_big_send_once(p.port, msg, len);
  free(msg);
  stop_clean(&p);
}

/* ---- operator limits -------------------------------------------------- */

static void idle_clients_are_closed_after_the_timeout(void **state) {
  (void)state;
  struct revd_proc p;
  with_revd(&p, (const char *[]){"--idle-timeout", "200", NULL});
  int fd = tcp_connect(p.port);
  assert_true(fd >= 0);
  double start = now_ms();
  char buf[4];
  assert_int_equal(recv_until_eof(fd, buf, sizeof buf, 3000), 0);
  double took = now_ms() - start;
  assert_true(took >= 150 && took < 2000);
  close(fd);
  stop_clean(&p);
}

static void connections_past_max_conns_are_refused_service(void **state) {
  (void)state;
  struct revd_proc p;
  /* silent clients must reach revd to take a slot: no deferred accept */
  with_revd(&p, (const char *[]){"--max-conns", "2", "--defer-accept", "off", NULL});
  int a = tcp_connect(p.port), b = tcp_connect(p.port);
  assert_true(a >= 0 && b >= 0);
  usleep(50 * 1000);
  int c = tcp_connect(p.port); /* the kernel accepts; revd closes it at once */
  assert_true(c >= 0);
  char buf[8];
  send_all(c, "x", 1);
  assert_true(recv_until_eof(c, buf, sizeof buf, 2000) <= 0);
  close(c);
  /* the admitted ones are served */
  assert_int_equal(send_all(a, "ab", 2), 0);
  assert_int_equal(recv_until_eof(a, buf, sizeof buf, 2000), 2);
  assert_memory_equal(buf, "ba", 2);
  close(a);
  close(b);
  stop_clean(&p);
}

/* ---- revc in line mode, interactively ---------------------------------- */

/* Reads from fd until `want` bytes came or timeout_ms passed. */
static size_t read_for(int fd, char *buf, size_t want, int timeout_ms) {
  size_t got = 0;
  double end = now_ms() + timeout_ms;
  while (got < want && now_ms() < end) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, 50) <= 0)
      continue;
    ssize_t n = read(fd, buf + got, want - got);
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  return got;
}

static void revc_line_mode_prints_each_reply_while_input_is_open(void **state) {
  (void)state;
  struct revd_proc p;
  with_revd(&p, (const char *[]){"--mode", "line", NULL});
  char port[16];
  snprintf(port, sizeof port, "%d", p.port);
  const char *argv[] = {bin_path("REVC_BIN"), "--port", port, "--mode", "line", NULL};
  int in, out, err;
  pid_t pid = spawn_program(argv, &in, &out, &err);
  assert_true(pid > 0);
  char buf[64];
  assert_int_equal(write(in, "first line\n", 11), 11);
  assert_int_equal(read_for(out, buf, 11, 3000), 11); /* stdin still open */
  assert_memory_equal(buf, "enil tsrif\n", 11);
  assert_int_equal(write(in, "second\nno newline", 17), 17);
  close(in);
  assert_int_equal(read_for(out, buf, sizeof buf, 3000), 17); /* then EOF */
  assert_memory_equal(buf, "dnoces\nenilwen on", 17);
  int status;
  waitpid(pid, &status, 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  close(out);
  close(err);
  stop_clean(&p);
}

/* ---- Unix domain sockets ---------------------------------------------- */

static void unix_socket_serves_and_is_removed_at_exit(void **state) {
  (void)state;
  char path[64];
  snprintf(path, sizeof path, "/tmp/revd-test-%d.sock", (int)getpid());
  unlink(path);
  struct revd_proc p;
  with_revd(&p, (const char *[]){"--unix", path, NULL});
  const char *argv[] = {bin_path("REVC_BIN"), "--unix", path, "over a unix socket", NULL};
  struct run_result r;
  assert_int_equal(run_program(argv, NULL, 0, 5000, &r), 0);
  assert_string_equal(r.out, "tekcos xinu a revo\n");
  stop_clean(&p);
  assert_int_equal(access(path, F_OK), -1);
}

/* ---- what is reversed ------------------------------------------------- */

static void expect_reply(int port, const char *msg, const char *want) {
  char buf[256];
  ssize_t n = exchange_half_close(port, msg, strlen(msg), buf, sizeof buf);
  assert_int_equal(n, (ssize_t)strlen(want));
  assert_memory_equal(buf, want, (size_t)n);
}

static void codepoints_keep_utf8_characters_whole(void **state) {
  (void)state;
  struct revd_proc p;
  with_revd(&p, (const char *[]){"--reverse", "codepoints", NULL});
  expect_reply(p.port, "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93",
               "\xe2\x9c\x93 dlr\xc3\xb6w oll\xc3\xa9h"); /* héllo wörld ✓ */
  /* Not UTF-8: the whole message is reversed by bytes instead. */
  expect_reply(p.port, "ab\xff\xc3", "\xc3\xff" "ba");
  stop_clean(&p);
}

static void graphemes_keep_user_perceived_characters_whole(void **state) {
  (void)state;
  struct revd_proc p;
  with_revd(&p, (const char *[]){"--reverse", "graphemes", "--mode", "line", NULL});
  int fd = tcp_connect(p.port);
  assert_true(fd >= 0);
  /* e + combining acute; the flags of France and Germany; a ZWJ family. */
  const char *msg = "ae\xcc\x81z\n"
                    "\xf0\x9f\x87\xab\xf0\x9f\x87\xb7\xf0\x9f\x87\xa9\xf0\x9f\x87\xaa\n"
                    "x\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7y\n";
  const char *want = "ze\xcc\x81" "a\n"
                     "\xf0\x9f\x87\xa9\xf0\x9f\x87\xaa\xf0\x9f\x87\xab\xf0\x9f\x87\xb7\n"
                     "y\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7x\n";
  assert_int_equal(send_all(fd, msg, strlen(msg)), 0);
  shutdown(fd, SHUT_WR);
  char buf[256];
  ssize_t n = recv_until_eof(fd, buf, sizeof buf, 5000);
  assert_int_equal(n, (ssize_t)strlen(want));
  assert_memory_equal(buf, want, (size_t)n);
  close(fd);
  stop_clean(&p);
}

/* eof mode keeps the message in chunks (4 KiB, then larger): a character
 * that straddles two chunks must still reverse whole. */
static void eof_mode_codepoints_across_chunk_boundaries(void **state) {
  (void)state;
  struct revd_proc p;
  with_revd(&p, (const char *[]){"--mode", "eof", "--reverse", "codepoints", NULL});
  size_t len = 1 + 2 * 20000; /* "x" then 20000 "é": boundaries fall inside characters */
  char *msg = malloc(len), *want = malloc(len), *got = malloc(len + 1);
  msg[0] = 'x';
  for (size_t i = 1; i < len; i += 2)
    msg[i] = '\xc3', msg[i + 1] = (char)(0xa0 + (i / 2) % 16); /* à..ï */
  for (size_t i = 1; i < len; i += 2) /* code points in reverse order, 'x' last */
    want[len - 1 - i - 1] = msg[i], want[len - 1 - i] = msg[i + 1];
  want[len - 1] = 'x';
  assert_int_equal(exchange_half_close(p.port, msg, len, got, len + 1), (ssize_t)len);
  assert_memory_equal(got, want, len);
  free(msg), free(want), free(got);
  stop_clean(&p);
}

/* A reader that is slow but keeps reading is not idle: a 12 MiB reply (more
 * than the kernel buffers on both sides) trickling out for longer than
 * --idle-timeout still arrives whole. */
static void slow_reader_outlasts_the_idle_timeout(void **state) {
  (void)state;
  struct revd_proc p;
  with_revd(&p, (const char *[]){"--mode", "eof", "--idle-timeout", "300", NULL});
  size_t len = 12u << 20;
  char *msg = random_bytes(len, 5), *want = malloc(len), *got = malloc(len);
  reverse_copy(want, msg, len);
  int fd = tcp_connect_rcvbuf(p.port, 256 * 1024); /* a fixed, modest window */
  assert_true(fd >= 0);
  assert_int_equal(send_all(fd, msg, len), 0);
  shutdown(fd, SHUT_WR);
  size_t n = 0;
  double start = now_ms();
  while (n < len) {
    ssize_t r = recv(fd, got + n, len - n < 65536 ? len - n : 65536, 0);
    if (r <= 0)
      fail_msg("reply cut off after %zu of %zu bytes (%.0f ms): %s", n, len, now_ms() - start,
               r == 0 ? "EOF" : strerror(errno));
    n += (size_t)r;
    usleep(5 * 1000);
  }
  assert_true(now_ms() - start > 600); /* it did take longer than the timeout */
  assert_memory_equal(got, want, len);
  close(fd);
  free(msg), free(want), free(got);
  stop_clean(&p);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(eof_mode_reverses_4_mib_of_random_binary),
      cmocka_unit_test(eof_mode_answers_an_empty_message_with_nothing),
      cmocka_unit_test(eof_mode_closes_past_max_message),
      cmocka_unit_test(line_mode_answers_each_line_as_it_completes),
      cmocka_unit_test(line_mode_closes_on_a_line_past_max_message),
      cmocka_unit_test(line_mode_pipelined_megabytes_arrive_in_order),
      cmocka_unit_test(line_mode_shutdown_mid_stream_keeps_replies),
      cmocka_unit_test(chunk_mode_big_send_gets_prefix_reply_and_clean_eof),
      cmocka_unit_test(idle_clients_are_closed_after_the_timeout),
      cmocka_unit_test(connections_past_max_conns_are_refused_service),
      cmocka_unit_test(slow_reader_outlasts_the_idle_timeout),
      cmocka_unit_test(revc_line_mode_prints_each_reply_while_input_is_open),
      cmocka_unit_test(unix_socket_serves_and_is_removed_at_exit),
      cmocka_unit_test(codepoints_keep_utf8_characters_whole),
      cmocka_unit_test(eof_mode_codepoints_across_chunk_boundaries),
      cmocka_unit_test(graphemes_keep_user_perceived_characters_whole),
  };
  return cmocka_run_group_tests_name("modes of the real revd", tests, NULL, NULL);
}
