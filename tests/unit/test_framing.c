/* test_framing.c — revd__frame_line(): where a line ends, the max limit;
 * and the framer line mode runs (revd__framer_*): the same lines however
 * the input is split into reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "framing.h"
#include "reverse.h"
#include "revd.h"

#define BIG ((size_t)1 << 20)

static void test_no_newline_needs_more(void **state) {
  (void)state;
  assert_int_equal(revd__frame_line("", 0, 0, BIG), 0);
  assert_int_equal(revd__frame_line("a", 1, 0, BIG), 0);
  assert_int_equal(revd__frame_line("abc\r", 4, 0, BIG), 0);
  assert_int_equal(revd__frame_line("abc", 3, 10, BIG), 0);
  /* '\0' is data, not an end */
  assert_int_equal(revd__frame_line("a\0b", 3, 0, BIG), 0);
}

static void test_newline_at_every_offset(void **state) {
  (void)state;
  char buf[64];
  for (size_t at = 0; at < sizeof buf; at++) {
    memset(buf, 'x', sizeof buf);
    buf[at] = '\n';
    /* only the first '\n' counts: a second one later changes nothing */
    if (at + 2 < sizeof buf)
      buf[at + 2] = '\n';
    assert_int_equal(revd__frame_line(buf, sizeof buf, 0, BIG), at + 1);
    assert_int_equal(revd__frame_line(buf, at + 1, 0, BIG), at + 1);
    assert_int_equal(revd__frame_line(buf, at, 0, BIG), 0);
  }
}

static void test_empty_line(void **state) {
  (void)state;
  assert_int_equal(revd__frame_line("\n", 1, 0, BIG), 1);
  assert_int_equal(revd__frame_line("\n\n", 2, 0, BIG), 1);
  assert_int_equal(revd__frame_line("\nabc", 4, 0, BIG), 1);
}

static void test_crlf_is_data(void **state) {
  (void)state;
  /* the '\r' belongs to the line; the line ends after the '\n' */
  assert_int_equal(revd__frame_line("ab\r\ncd", 6, 0, BIG), 4);
  assert_int_equal(revd__frame_line("\r\n", 2, 0, BIG), 2);
  assert_int_equal(revd__frame_line("\r\r\n", 3, 0, BIG), 3);
}

/* max counts every byte of the line, its '\n' included, and the `have`
 * bytes buffered before this read. */
static void test_max_boundary(void **state) {
  (void)state;
  /* complete line of exactly max bytes: accepted */
  assert_int_equal(revd__frame_line("abcd\n", 5, 0, 5), 5);
  assert_int_equal(revd__frame_line("cd\n", 3, 2, 5), 3);
  assert_int_equal(revd__frame_line("\n", 1, 4, 5), 1);
  /* one byte past: too large */
  assert_int_equal(revd__frame_line("abcde\n", 6, 0, 5), REVD__FRAME_TOO_LARGE);
  assert_int_equal(revd__frame_line("cd\n", 3, 3, 5), REVD__FRAME_TOO_LARGE);
  assert_int_equal(revd__frame_line("\n", 1, 5, 5), REVD__FRAME_TOO_LARGE);
  /* partial line reaching max exactly may still grow... */
  assert_int_equal(revd__frame_line("abcde", 5, 0, 5), 0);
  assert_int_equal(revd__frame_line("de", 2, 3, 5), 0);
  /* ...one byte past is too large without waiting for the '\n' */
  assert_int_equal(revd__frame_line("abcdef", 6, 0, 5), REVD__FRAME_TOO_LARGE);
  assert_int_equal(revd__frame_line("def", 3, 3, 5), REVD__FRAME_TOO_LARGE);
  /* only the first line is measured: a long second line is the next call's */
  assert_int_equal(revd__frame_line("ab\ncdefghij", 11, 0, 5), 3);
}

static void test_already_over_max(void **state) {
  (void)state;
  assert_int_equal(revd__frame_line("", 0, 6, 5), REVD__FRAME_TOO_LARGE);
  assert_int_equal(revd__frame_line("a", 1, 6, 5), REVD__FRAME_TOO_LARGE);
  assert_int_equal(revd__frame_line("\n", 1, 6, 5), REVD__FRAME_TOO_LARGE);
  /* values near SIZE_MAX must not wrap around into "fits" */
  assert_int_equal(revd__frame_line("a", 1, SIZE_MAX, 5), REVD__FRAME_TOO_LARGE);
  assert_int_equal(revd__frame_line("a\n", 2, SIZE_MAX - 1, SIZE_MAX), REVD__FRAME_TOO_LARGE);
  assert_int_equal(revd__frame_line("\n", 1, SIZE_MAX - 1, SIZE_MAX), 1);
  assert_int_equal(revd__frame_line("a", 1, 0, 0), REVD__FRAME_TOO_LARGE);
  assert_int_equal(revd__frame_line("", 0, 0, 0), 0);
}

/* ---- the framer: a line-mode stream's state ----------------------------- */

/* What line mode does with the framer: hand each complete line out, carry
 * the start of an unfinished one, stop at too large, and at EOF hand out a
 * last line that has no '\n'.  Collects the lines handed out. */
struct caller {
  struct revd__framer f;
  char out[256]; /* the lines handed out, one after another */
  size_t out_len;
  size_t ends[32]; /* where each line ends in out */
  int lines;
  int too_large;
};

static void emit(struct caller *c, const struct revd__line *line) {
  assert_true(line->len <= c->f.max);
  assert_true(c->lines < 32 && c->out_len + line->len <= sizeof c->out);
  memcpy(c->out + c->out_len, line->data, line->len);
  c->out_len += line->len;
  c->ends[c->lines++] = c->out_len;
}

/* One read, in a buffer of its own (the framer may hand out lines in place). */
static void caller_read(struct caller *c, const char *data, size_t len) {
  char buf[256];
  assert_true(len <= sizeof buf);
  memcpy(buf, data, len);
  size_t pos = 0;
  while (pos < len && !c->too_large) {
    struct revd__line line;
    ssize_t n = revd__framer_next(&c->f, buf + pos, len - pos, &line);
    if (n == REVD__FRAME_TOO_LARGE) {
      c->too_large = 1;
      return;
    }
    assert_true(n >= 0);
    if (n == 0) {
      assert_int_equal(revd__framer_carry(&c->f, buf + pos, len - pos), 0);
      assert_int_equal(revd__framer_pending(&c->f), c->f.carry_len);
      return;
    }
    assert_true(line.len > 0 && line.data[line.len - 1] == '\n');
    emit(c, &line);
    pos += (size_t)n;
  }
}

static void caller_eof(struct caller *c) {
  struct revd__line line;
  if (!c->too_large && revd__framer_finish(&c->f, &line))
    emit(c, &line);
  revd__framer_free(&c->f);
}

static void caller_init(struct caller *c, size_t max) {
  memset(c, 0, sizeof *c);
  revd__framer_init(&c->f, max);
}

static void assert_same_lines(const struct caller *a, const struct caller *b) {
  assert_int_equal(a->lines, b->lines);
  assert_int_equal(a->too_large, b->too_large);
  assert_int_equal(a->out_len, b->out_len);
  assert_memory_equal(a->out, b->out, a->out_len);
  for (int i = 0; i < a->lines; i++)
    assert_int_equal(a->ends[i], b->ends[i]);
}

/* Every split of the input into two reads, and into three, gives the lines
 * one read gives. */
static void check_splits(const char *in, size_t max, int want_lines, int want_too_large) {
  size_t len = strlen(in);
  struct caller whole, split;
  caller_init(&whole, max);
  caller_read(&whole, in, len);
  caller_eof(&whole);
  assert_int_equal(whole.lines, want_lines);
  assert_int_equal(whole.too_large, want_too_large);

  for (size_t i = 0; i <= len; i++) {
    caller_init(&split, max);
    caller_read(&split, in, i);
    caller_read(&split, in + i, len - i);
    caller_eof(&split);
    assert_same_lines(&whole, &split);
    for (size_t j = i; j <= len; j++) {
      caller_init(&split, max);
      caller_read(&split, in, i);
      caller_read(&split, in + i, j - i);
      caller_read(&split, in + j, len - j);
      caller_eof(&split);
      assert_same_lines(&whole, &split);
    }
  }
}

static void test_split_reads(void **state) {
  (void)state;
  static const char in[] = "one\n\ntwo\r\nthree\n\r\nlast";
  check_splits(in, 64, 6, 0);
  struct caller c;
  caller_init(&c, 64);
  caller_read(&c, in, strlen(in));
  caller_eof(&c);
  /* the lines are the input, cut after each '\n' */
  assert_int_equal(c.out_len, strlen(in));
  assert_memory_equal(c.out, in, c.out_len);
  static const size_t ends[] = {4, 5, 10, 16, 18, 22};
  for (int i = 0; i < 6; i++)
    assert_int_equal(c.ends[i], ends[i]);
}

static void test_split_reads_too_large(void **state) {
  (void)state;
  /* max 6: "abcde\n" fits exactly, "abcdefg\n" does not, in any split */
  check_splits("ab\nabcde\nabcdefg\nz\n", 6, 2, 1);
  /* a last line without '\n' that is too large is refused before EOF */
  check_splits("ab\nabcdefg", 6, 1, 1);
  /* ...and one that fits exactly is handed out at EOF */
  check_splits("ab\nabcdef", 6, 2, 0);
}

/* Reads that split a multi-byte character (at every offset) still frame
 * whole lines, and each line then reverses by code points as if it had
 * come in one read. */
static void test_split_reads_inside_characters(void **state) {
  (void)state;
  /* "hé✓😀!\n" then "é" with no '\n' */
  static const char in[] = "h\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80!\n\xc3\xa9";
  check_splits(in, 64, 2, 0);
  size_t len = strlen(in);
  for (size_t i = 0; i <= len; i++) {
    struct caller c;
    caller_init(&c, 64);
    caller_read(&c, in, i);
    caller_read(&c, in + i, len - i);
    caller_eof(&c);
    assert_int_equal(c.lines, 2);
    char first[32];
    size_t n = c.ends[0] - 1; /* without its '\n' */
    memcpy(first, c.out, n);
    assert_int_equal(revd__reverse(REVD_REVERSE_CODEPOINTS, first, n), REVD__REVERSED);
    assert_memory_equal(first, "!\xf0\x9f\x98\x80\xe2\x9c\x93\xc3\xa9h", n);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_no_newline_needs_more),
      cmocka_unit_test(test_newline_at_every_offset),
      cmocka_unit_test(test_empty_line),
      cmocka_unit_test(test_crlf_is_data),
      cmocka_unit_test(test_max_boundary),
      cmocka_unit_test(test_already_over_max),
      cmocka_unit_test(test_split_reads),
      cmocka_unit_test(test_split_reads_too_large),
      cmocka_unit_test(test_split_reads_inside_characters),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
