/* harness.h — what integration tests need to drive the real binaries and
 * talk to them over real sockets, the way users do. */
#ifndef REVD_TEST_HARNESS_H
#define REVD_TEST_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

/* A running revd started by revd_start(). */
struct revd_proc {
  pid_t pid;
  int port;      /* the port it said it listens on */
  int err_fd;    /* read end of its stderr */
  char log[8192]; /* what it printed on stderr so far */
  size_t log_len;
};

/* Starts $REVD_BIN --port 0 ARGS... (args NULL-terminated, may be NULL) and
 * waits (at most 5 s) for "revd: listening on 127.0.0.1:PORT" (port 0 when
 * it listens on a Unix socket).
 * Returns 0, or -1 (the process is killed; p->log says why). */
int revd_start(struct revd_proc *p, const char *const *args);

/* Sends sig, waits at most timeout_ms for the exit, collects the rest of its
 * stderr.  Returns the exit status (0..255), 128+N if killed by signal N,
 * or -1 if it did not exit in time (it is then killed). */
int revd_stop(struct revd_proc *p, int sig, int timeout_ms);

/* Result of run_program(). */
struct run_result {
  int status;     /* exit status, 128+N for signal N, -1 on timeout */
  char out[65536];
  size_t out_len;
  char err[8192];
  size_t err_len;
};

/* Runs argv (argv[0] is a path), feeding `input` (may be NULL) on stdin,
 * with a timeout.  Output past the buffers is discarded.  Returns r->status. */
int run_program(const char *const *argv, const char *input, size_t input_len, int timeout_ms,
                struct run_result *r);

/* Starts argv with pipes for the streams whose fd pointer is not NULL
 * (stdin from /dev/null, stdout to /dev/null otherwise; stderr always piped).
 * Returns the pid or -1. */
pid_t spawn_program(const char *const *argv, int *in_fd, int *out_fd, int *err_fd);

/* Path of a binary from the environment (REVD_BIN, REVC_BIN, ...); the test
 * fails when it is not set. */
const char *bin_path(const char *env_name);

/* Blocking TCP helpers on 127.0.0.1, each bounded by timeouts. */
int tcp_connect(int port);                       /* fd, or -1 */
int tcp_connect_rcvbuf(int port, int rcvbuf);    /* the same with SO_RCVBUF set first (0: default) */
int send_all(int fd, const void *buf, size_t len); /* 0 or -1 */
/* Reads until EOF, the buffer is full, or timeout_ms passes.  Returns the
 * byte count, or -1 on error/timeout (errno says which). */
ssize_t recv_until_eof(int fd, void *buf, size_t cap, int timeout_ms);

/* A port on 127.0.0.1 where nothing listens (bound and released). */
int unused_port(void);

/* Nonzero when text is exactly one revd log line at `level` saying msg:
 * "2026-11-27T22:57:23.123+00:00 revd[PID] LEVEL: MSG\n" (see src/app/log.h). */
int is_log_line(const char *text, const char *level, const char *msg);

/* Milliseconds on a monotonic clock. */
double now_ms(void);

/* Fills buf with the byte reversal of src. */
void reverse_copy(char *dst, const char *src, size_t len);

#endif
