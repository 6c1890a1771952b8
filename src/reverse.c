#include "reverse.h"

#include "revd.h"

void revd__reverse_bytes(char *buf, size_t len) {
  if (len < 2)
    return;
  char *lo = buf, *hi = buf + len - 1;
  while (lo < hi) {
    char t = *lo;
    *lo++ = *hi;
    *hi-- = t;
  }
}

int revd__reverse(int unit, char *buf, size_t len) {
  (void)unit; /* code points and graphemes: see issue 4 */
  revd__reverse_bytes(buf, len);
  return REVD__REVERSED;
}
