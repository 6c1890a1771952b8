#include "cli.h"

#include <ctype.h>
#include <getopt.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "revd.h"

int cli_usage_error(const char *prog, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", prog);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, " (see %s --help)\n", prog);
  return 2;
}

static int size_shift(char suffix) {
  switch (tolower((unsigned char)suffix)) {
  case 'k': return 10;
  case 'm': return 20;
  case 'g': return 30;
  default: return -1;
  }
}

int cli_number(const char *prog, const char *option, const char *text, uint64_t min,
               uint64_t max, int sizes, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = isdigit((unsigned char)text[0]) ? strtoull(text, &end, 10) : 0;
  int ok = isdigit((unsigned char)text[0]) && errno == 0;
  if (ok && *end != '\0') {
    int shift = sizes && end[1] == '\0' ? size_shift(*end) : -1;
    ok = shift >= 0 && v <= (UINT64_MAX >> shift);
    if (ok)
      v <<= shift;
  }
  if (!ok || v < min || v > max) {
    cli_usage_error(prog, "invalid %s '%s': expected a whole number from %llu to %llu%s", option,
                    text, (unsigned long long)min, (unsigned long long)max,
                    sizes ? " (k, m, g suffixes allowed)" : "");
    return -1;
  }
  *out = v;
  return 0;
}

int cli_mode(const char *prog, const char *text) {
  int mode = revd_mode_parse(text);
  if (mode < 0) {
    cli_usage_error(prog, "invalid --mode '%s': expected chunk, eof or line", text);
    return -1;
  }
  return mode;
}

int cli_getopt_error(const char *prog, int opt, char *const *argv) {
  /* For "-xy", argv[optind - 1] is not the option: optopt is. */
  if (opt == '?' && optopt > 0 && optopt < 256)
    return cli_usage_error(prog, "unknown option '-%c'", optopt);
  if (opt == '?' && optopt >= 256) /* a known long option given a value it does not take */
    return cli_usage_error(prog, "option '%s' takes no value", argv[optind - 1]);
  if (opt == '?')
    return cli_usage_error(prog, "unknown option '%s'", argv[optind - 1]);
  if (optopt > 0 && optopt < 256)
    return cli_usage_error(prog, "option '-%c' needs a value", optopt);
  return cli_usage_error(prog, "option '%s' needs a value", argv[optind - 1]);
}
