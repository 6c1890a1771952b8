#include "fixture.h"

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

void fixture_closed_cb(revd_server_t *srv, void *arg) {
  struct fixture *f = arg;
  (void)srv;
  f->closed++;
}

void fixture_start(struct fixture *f, const revd_options_t *opts) {
  memset(f, 0, sizeof *f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(revd_server_new(&f->loop, opts, &f->srv), 0);
  struct sockaddr_storage any;
  assert_int_equal(revd_parse_addr("127.0.0.1", 0, &any), 0);
  assert_int_equal(revd_server_listen(f->srv, (struct sockaddr *)&any), 0);
  assert_int_equal(revd_server_getsockname(f->srv, &f->addr), 0);
}

void fixture_close_all(struct fixture *f, int servers) {
  revd_server_close(f->srv, fixture_closed_cb, f);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(f->closed, servers);
  assert_int_equal(uv_loop_close(&f->loop), 0);
}

void fixture_close(struct fixture *f) { fixture_close_all(f, 1); }

int fixture_port(const struct fixture *f) {
  return ntohs(((const struct sockaddr_in *)&f->addr)->sin_port);
}

double fixture_run_until_stats(struct fixture *f, int (*pred)(const revd_stats_t *),
                               double limit_ms) {
  revd_stats_t st;
  double start = now_ms();
  do {
    uv_run(&f->loop, UV_RUN_NOWAIT);
    revd_server_stats(f->srv, &st);
    if (pred(&st))
      return now_ms() - start;
    usleep(1000);
  } while (now_ms() - start < limit_ms);
  return -1;
}

void fixture_run_for(struct fixture *f, double ms) {
  double end = now_ms() + ms;
  while (now_ms() < end) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
}
