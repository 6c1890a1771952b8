/* relay.h — revc's interactive line mode: standard input streams over one
 * connection and every reply goes to standard output as soon as it arrives. */
#ifndef REVD_RELAY_H
#define REVD_RELAY_H

#include "revd.h"

/* True when stdin can be read as it comes (a terminal or a pipe); a
 * regular file is simply sent whole. */
int relay_wanted(void);

/* Streams stdin to addr until EOF, then waits at most timeout_ms (0: no
 * limit) for the server to finish.  Returns the exit status: 0 when the
 * server answered and closed cleanly, 1 otherwise (reported on stderr). */
int relay_stdin(const struct sockaddr *addr, const char *where, unsigned timeout_ms);

#endif
