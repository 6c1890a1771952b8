/* revd.h must compile as gnu99 with -pedantic: C programmers embed it in
 * older code bases than ours. */
#include <revd.h>

int main(void) {
  revd_options_t opts;
  revd_options_init(&opts);
  return opts.mode == REVD_MODE_CHUNK ? 0 : 1;
}
