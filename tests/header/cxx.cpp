// revd.h must compile (and link) as C++ too.
#include <revd.h>

int main() {
  revd_options_t opts;
  revd_options_init(&opts);
  return opts.mode == REVD_MODE_CHUNK && revd_mode_parse("line") == REVD_MODE_LINE ? 0 : 1;
}
