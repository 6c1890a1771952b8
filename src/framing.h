/* framing.h — where one message ends; pure, knows nothing of libuv. */
#ifndef REVD_FRAMING_H
#define REVD_FRAMING_H

#include <stddef.h>
#include <sys/types.h>

/* Error from revd__frame_line(): the line would pass max bytes. */
#define REVD__FRAME_TOO_LARGE (-1)

/* Line mode.  `have` bytes of the current line were already buffered by the
 * caller; buf[0..len) is new input.  Returns the number of bytes of buf up to
 * and including the first '\n' (the line is complete), 0 if buf holds no
 * '\n' and the line may still grow ("need more"), or REVD__FRAME_TOO_LARGE if
 * the line (have + its bytes in buf, '\n' included) is longer than max. */
ssize_t revd__frame_line(const char *buf, size_t len, size_t have, size_t max);

#endif
