/* systemd.c — see systemd.h. */
#include "systemd.h"

#include <stdarg.h>
#include <stdio.h>
#include <uv.h>

#ifdef REVD_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

const char *const systemd_support = "yes";

int activation_fds(int *bad_fd) {
  int n = sd_listen_fds(1);
  if (n < 0)
    return uv_translate_sys_error(-n);
  for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++) {
    /* listening = 1: a socket systemd would hand over with Accept=no */
    if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
      *bad_fd = fd;
      return UV_ENOTSOCK;
    }
  }
  return n;
}

void notify(const char *fmt, ...) {
  char state[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(state, sizeof state, fmt, ap);
  va_end(ap);
  sd_notify(0, state);
}

#else /* built without libsystemd */

const char *const systemd_support = "no";

int activation_fds(int *bad_fd) {
  (void)bad_fd;
  return 0;
}

void notify(const char *fmt, ...) { (void)fmt; }

#endif
