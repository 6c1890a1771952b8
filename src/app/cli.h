/* cli.h — what revd, revc and revbench share on the command line. */
#ifndef REVD_CLI_H
#define REVD_CLI_H

#include <stdint.h>

/* Parses a whole decimal number in [min, max] (a "k", "m" or "g" suffix
 * multiplies by 1024^n when `sizes` is set).  Returns 0, or -1 after
 * printing "PROG: invalid OPTION 'TEXT': why (see PROG --help)" to stderr. */
int cli_number(const char *prog, const char *option, const char *text, uint64_t min,
               uint64_t max, int sizes, uint64_t *out);

/* Prints "PROG: what (see PROG --help)" on one line and returns 2, the
 * exit status for bad usage. */
int cli_usage_error(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reports what getopt_long() returned as '?' (unknown option, or a value
 * given to a flag that takes none) or ':' (missing value) for argv, on one
 * line, naming the option as the user wrote it.  Returns 2. */
int cli_getopt_error(const char *prog, int opt, char *const *argv);

/* Parses a --mode name, or reports it like cli_number().  Returns the mode or -1. */
int cli_mode(const char *prog, const char *text);

#endif
