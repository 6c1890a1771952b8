/* Unit tests of payload generation and reply verification. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "payload.h"

static void printable_and_no_newline(void **state) {
  (void)state;
  payload_t p;
  assert_int_equal(payload_init(&p, 4096, 1), 0);
  for (size_t i = 0; i < p.span; i++) {
    assert_true(p.msg[i] >= 0x21 && p.msg[i] < 0x7f);
    assert_true(p.msg[i] != '\n');
  }
  payload_free(&p);
}

static void expected_is_the_reversal(void **state) {
  (void)state;
  payload_t p;
  assert_int_equal(payload_init(&p, 100, 7), 0);
  char rev[100];
  for (size_t off = 0; off <= 100; off += 7)
    for (size_t len = 1; len <= 100; len += 13) {
      const char *m = payload_message(&p, off);
      for (size_t i = 0; i < len; i++)
        rev[i] = m[len - 1 - i];
      assert_memory_equal(payload_expected(&p, off, len), rev, len);
      assert_true(payload_verify(&p, off, len, rev, len));
    }
  payload_free(&p);
}

static void verify_rejects_wrong_replies(void **state) {
  (void)state;
  payload_t p;
  assert_int_equal(payload_init(&p, 64, 3), 0);
  char reply[65];
  memcpy(reply, payload_expected(&p, 5, 64), 64);
  assert_true(payload_verify(&p, 5, 64, reply, 64));
  assert_false(payload_verify(&p, 5, 64, reply, 63));             /* short */
  reply[64] = 'x';
  assert_false(payload_verify(&p, 5, 64, reply, 65));             /* long */
  assert_false(payload_verify(&p, 5, 64, payload_message(&p, 5), 64)); /* echoed */
  reply[10] ^= 1;
  assert_false(payload_verify(&p, 5, 64, reply, 64));             /* one bit */
  payload_free(&p);
}

/* --expect echo: the message itself is right, its reversal is not. */
static void echo_expects_the_message(void **state) {
  (void)state;
  payload_t p;
  assert_int_equal(payload_init(&p, 64, 3), 0);
  p.echo = 1;
  assert_true(payload_verify(&p, 5, 64, payload_message(&p, 5), 64));
  p.echo = 0;
  char rev[64];
  memcpy(rev, payload_expected(&p, 5, 64), 64);
  p.echo = 1;
  assert_false(payload_verify(&p, 5, 64, rev, 64));
  payload_free(&p);
}

static void rng_range_stays_in_range(void **state) {
  (void)state;
  uint64_t s = 9, seen_lo = 0, seen_hi = 0;
  for (int i = 0; i < 100000; i++) {
    uint64_t v = rng_range(&s, 13, 20);
    assert_true(v >= 13 && v <= 20);
    seen_lo |= v == 13;
    seen_hi |= v == 20;
  }
  assert_true(seen_lo && seen_hi);
  assert_int_equal(rng_range(&s, 5, 5), 5);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(printable_and_no_newline),
      cmocka_unit_test(expected_is_the_reversal),
      cmocka_unit_test(verify_rejects_wrong_replies),
      cmocka_unit_test(echo_expects_the_message),
      cmocka_unit_test(rng_range_stays_in_range),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
