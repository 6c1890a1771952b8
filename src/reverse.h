/* reverse.h — pure reversal of a message; knows nothing of libuv or sockets. */
#ifndef REVD_REVERSE_H
#define REVD_REVERSE_H

#include <stddef.h>

/* Result of revd__reverse(). */
enum {
  REVD__REVERSED = 0,      /* reversed by the unit asked for */
  REVD__REVERSED_BYTES = 1 /* input was not valid UTF-8: reversed by bytes instead */
};

/* Reverses buf[0..len) in place by `unit` (enum revd_reverse; any other
 * value reverses bytes).  Code points and graphemes need valid UTF-8 (strict:
 * no overlong forms, surrogates or values past U+10FFFF); anything else is
 * reversed by bytes as a whole (so the reply is always the same length as
 * the message) and the function says so by returning REVD__REVERSED_BYTES.
 * Reversing twice gives the message back for bytes, and for code points of
 * valid UTF-8; not always for graphemes (the reply can cluster differently:
 * "\xCC\x81a", a lone accent then "a", becomes "a\xCC\x81", one cluster), nor
 * after a fallback (the byte reversal of invalid UTF-8 can be valid:
 * "\x80\xC3" becomes "\xC3\x80", U+00C0).  Never reads or writes outside
 * buf[0..len); uses no heap. */
int revd__reverse(int unit, char *buf, size_t len);

/* Byte order reversal in place. */
void revd__reverse_bytes(char *buf, size_t len);

#endif
