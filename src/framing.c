#include "framing.h"

#include <string.h>

ssize_t revd__frame_line(const char *buf, size_t len, size_t have, size_t max) {
  const char *nl = memchr(buf, '\n', len);
  size_t take = nl ? (size_t)(nl - buf) + 1 : len;
  if (have > max || take > max - have)
    return REVD__FRAME_TOO_LARGE;
  return nl ? (ssize_t)take : 0;
}
