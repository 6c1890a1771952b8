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

/* Byte order reversal in place, by the fastest implementation this CPU
 * runs (chosen on first use; thread-safe). */
void revd__reverse_bytes(char *buf, size_t len);

/* The implementations behind it, exposed for the tests and the
 * microbenchmark (bench/reverse-bench).  Each reverses buf[0..len) in place,
 * any length, any alignment, and gives exactly what the plain C one gives;
 * the vector ones may only be called when their `usable()` says so. */
typedef void revd__reverse_fn(char *buf, size_t len);
typedef struct revd__reverse_impl {
  const char *name;       /* "avx2", "ssse3", "c" */
  revd__reverse_fn *fn;
  int (*usable)(void);    /* nonzero when this CPU can run fn */
} revd__reverse_impl_t;

/* The i-th implementation compiled in, best first, the plain C one last;
 * NULL past the end.  Static data: never freed. */
const revd__reverse_impl_t *revd__reverse_impl(size_t i);

void revd__reverse_bytes_c(char *buf, size_t len);

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define REVD__REVERSE_X86 1
void revd__reverse_bytes_ssse3(char *buf, size_t len); /* pshufb: 16 bytes from each end a step */
void revd__reverse_bytes_avx2(char *buf, size_t len);  /* vpshufb + vpermq: 64 from each end */
#else
#define REVD__REVERSE_X86 0
#endif

#endif
