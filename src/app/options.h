/* options.h — revd's command line: what it accepts, its --help, and the
 * checks of options that only make sense together. */
#ifndef REVD_OPTIONS_H
#define REVD_OPTIONS_H

#include <sys/socket.h>

#include "revd.h"

struct daemon_config {
  const char *host;
  int port;
  const char *unix_path;
  int log_level;           /* enum log_level */
  unsigned threads;
  const char *metrics;     /* HOST:PORT, or NULL */
  struct sockaddr_storage listen_addr, metrics_addr; /* resolved by the parse */
  revd_options_t opts;     /* the library's options, drain and limits included */
};

/* Fills *cfg from argv.  Returns 0 to run, 1 to exit 0 at once (--help,
 * --version, printed on stdout), 2 for bad usage (one line on stderr). */
int options_parse(int argc, char **argv, struct daemon_config *cfg);

#endif
