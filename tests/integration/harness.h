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

/* ---- helpers for cmocka tests (they assert) ----------------------------- */

/* A port as an argv string. */
struct port_arg {
  char s[16];
};
struct port_arg port_arg(int port);

/* Runs $REVC_BIN ARGS... (NULL-terminated) with input (may be NULL) on
 * stdin, at most 10 s.  Returns r->status. */
int run_revc(struct run_result *r, const char *input, const char *const *args);

/* The daemon a test runs, if any: a failed assertion jumps past
 * stop_revd(), so the teardown stop_leftover_revd() stops it instead of
 * leaving it running.
 * start_revd() starts $REVD_BIN --port 0 ARGS... (args may be NULL); one at
 * a time.  stop_revd() sends SIGTERM and fails the test unless revd exits 0. */
struct revd_proc *start_revd(const char *const *args);
void stop_revd(struct revd_proc *p);
int stop_leftover_revd(void **state); /* a cmocka teardown */

/* A private directory for Unix socket paths, made and removed around each
 * test (cmocka setup and teardown); the teardown removes whatever a failed
 * test left in it. */
extern char tmpdir[64];
int make_tmpdir(void **state);
int remove_tmpdir(void **state);
int tmpdir_entries(void); /* names in tmpdir other than "." and "..", -1 on error */

/* What a revd_exchange() callback saw, and when: set started, pass
 * timed_reply_cb and the struct. */
struct timed_reply {
  int calls;
  int status;
  const char *what;
  size_t len;
  double started, took;
};
void timed_reply_cb(int status, const char *what, const char *reply, size_t len, void *arg);

#endif
