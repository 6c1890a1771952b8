/* reverse.h — pure reversal of a message; knows nothing of libuv or sockets. */
#ifndef REVD_REVERSE_H
#define REVD_REVERSE_H

#include <stddef.h>

/* Result of revd__reverse(). */
enum {
  REVD__REVERSED = 0,      /* reversed by the unit asked for */
  REVD__REVERSED_BYTES = 1 /* input was not valid UTF-8: reversed by bytes instead */
};

/* Reverses buf[0..len) in place by `unit` (enum revd_reverse).
 * Code points and graphemes need valid UTF-8; anything else is reversed by
 * bytes as a whole (so the reply is always the same length as the message,
 * and reversing twice always gives the message back) and the function says
 * so by returning REVD__REVERSED_BYTES.  Never reads or writes outside
 * buf[0..len); uses no heap. */
int revd__reverse(int unit, char *buf, size_t len);

/* Byte order reversal in place. */
void revd__reverse_bytes(char *buf, size_t len);

#endif
