/* framing.h — where one line ends; pure, knows nothing of libuv or sockets.
 *
 * Line mode's framer keeps its state in a struct the caller owns (the way
 * picohttpparser's chunked decoder does): the start of an unfinished line
 * carried over from earlier input, and the bound.  The server, the unit
 * tests and the fuzzer all drive this same code. */
#ifndef REVD_FRAMING_H
#define REVD_FRAMING_H

#include <stddef.h>
#include <sys/types.h>

/* Errors. */
#define REVD__FRAME_TOO_LARGE (-1) /* the line would pass max bytes */
#define REVD__FRAME_NOMEM (-2)     /* no memory to carry the line over */

/* Measures the first line of buf[0..len), given `have` bytes of it seen
 * before.  Returns the bytes of buf up to and including the first '\n' (the
 * line is complete), 0 if buf holds no '\n' and the line may still grow
 * ("need more"), or REVD__FRAME_TOO_LARGE if the line (have + its bytes in
 * buf, '\n' included) is longer than max. */
ssize_t revd__frame_line(const char *buf, size_t len, size_t have, size_t max);

/* One line-mode stream.  Zero it, or call revd__framer_init(). */
struct revd__framer {
  size_t max;        /* longest line, its '\n' included */
  char *carry;       /* the unfinished line so far (heap, owned), or NULL */
  size_t carry_len;  /* its bytes */
  size_t carry_cap;
  int handed_out;    /* the carry was returned as a line: empty it on the next call */
};

/* A line: where it is and how long ('\n' included, if it has one). */
struct revd__line {
  char *data;
  size_t len;
};

void revd__framer_init(struct revd__framer *f, size_t max);

/* Takes the next line out of buf[0..len).  Returns the bytes of buf it
 * used, with *line set: a line wholly inside buf is handed out where it is
 * (no copy); one that began in earlier input is joined in the carry.
 * Returns 0 when buf holds no '\n' (nothing used: keep the rest with
 * revd__framer_carry() once the lines handed out so far are dealt with),
 * or REVD__FRAME_TOO_LARGE / REVD__FRAME_NOMEM.  A line in the carry stays
 * valid until revd__framer_carry() or revd__framer_free(), so a caller may
 * take the lines of one read first and send them together. */
ssize_t revd__framer_next(struct revd__framer *f, char *buf, size_t len, struct revd__line *line);

/* Keeps buf[0..len), the start of a line that revd__framer_next() said
 * needs more (a carry grown big for an earlier line is let go first).
 * Returns 0 or REVD__FRAME_NOMEM. */
int revd__framer_carry(struct revd__framer *f, const char *buf, size_t len);

/* At the end of input: hands out the unfinished line (no '\n') if there is
 * one.  Returns 1 with *line set, or 0. */
int revd__framer_finish(struct revd__framer *f, struct revd__line *line);

/* Bytes carried over, waiting for the rest of their line. */
size_t revd__framer_pending(const struct revd__framer *f);

/* Frees the carry; f may be reused after revd__framer_init(). */
void revd__framer_free(struct revd__framer *f);

#endif
