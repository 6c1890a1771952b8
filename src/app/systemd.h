/* systemd.h — socket activation (LISTEN_FDS) and readiness (NOTIFY_SOCKET),
 * by libsystemd when revd is built with -Dsystemd=enabled (or auto and
 * libsystemd-dev found).  Without it both are unsupported: activation_fds()
 * finds nothing and notify() does nothing. */
#ifndef REVD_SYSTEMD_H
#define REVD_SYSTEMD_H

/* "yes" or "no": whether this build speaks systemd's protocols. */
extern const char *const systemd_support;

/* The first fd handed over (SD_LISTEN_FDS_START, 3). */
#define ACTIVATION_FD_START 3

/* Takes the sockets systemd passed (LISTEN_FDS, LISTEN_PID), unsetting
 * those variables so no child inherits them.  Returns how many (fds 3, 4,
 * ...), 0 when none, or a negative UV_E* code: UV_ENOTSOCK when one is not
 * a listening stream socket (*bad_fd says which). */
int activation_fds(int *bad_fd);

/* Sends one state line set ("READY=1", "STATUS=...") to NOTIFY_SOCKET, if
 * set.  Never fails loudly: a lost notification is not revd's to fix. */
void notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
