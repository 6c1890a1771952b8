#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

extern char **environ;

double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

const char *bin_path(const char *env_name) {
  const char *p = getenv(env_name);
  if (!p || !*p) {
    fprintf(stderr, "harness: %s is not set (run the tests through meson test)\n", env_name);
    abort();
  }
  return p;
}

void reverse_copy(char *dst, const char *src, size_t len) {
  for (size_t i = 0; i < len; i++)
    dst[i] = src[len - 1 - i];
}

/* Appends what is readable on fd within timeout_ms.  Returns bytes read,
 * 0 at EOF, -1 on timeout. */
static ssize_t read_some(int fd, char *buf, size_t cap, int timeout_ms) {
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  int r = poll(&pfd, 1, timeout_ms);
  if (r <= 0)
    return -1;
  if (cap == 0) {
    char sink[4096];
    return read(fd, sink, sizeof sink);
  }
  return read(fd, buf, cap);
}

static int exit_code(int wstatus) {
  if (WIFEXITED(wstatus))
    return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus))
    return 128 + WTERMSIG(wstatus);
  return -1;
}

/* Waits for pid up to timeout_ms; kills it past that.  Returns the status. */
static int wait_exit(pid_t pid, int timeout_ms) {
  double end = now_ms() + timeout_ms;
  int wstatus;
  for (;;) {
    pid_t r = waitpid(pid, &wstatus, WNOHANG);
    if (r == pid)
      return exit_code(wstatus);
    if (r < 0)
      return -1;
    if (now_ms() > end) {
      kill(pid, SIGKILL);
      waitpid(pid, &wstatus, 0);
      return -1;
    }
    usleep(2000);
  }
}

static void log_append(struct revd_proc *p, int timeout_ms) {
  size_t room = sizeof p->log - 1 - p->log_len;
  ssize_t n = read_some(p->err_fd, p->log + p->log_len, room, timeout_ms);
  if (n > 0 && room > 0) {
    p->log_len += (size_t)n;
    p->log[p->log_len] = '\0';
  }
}

pid_t spawn_program(const char *const *argv, int *in_fd, int *out_fd, int *err_fd) {
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2];
  if ((in_fd && pipe(in) != 0) || (out_fd && pipe(out) != 0) || pipe(err) != 0)
    return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (in_fd)
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  else
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (out_fd)
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  else /* never hold the test runner's stdout open past our life */
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  int fds[] = {in[0], in[1], out[0], out[1], err[0], err[1]};
  for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
    if (fds[i] > 2)
      posix_spawn_file_actions_addclose(&fa, fds[i]);
  pid_t pid;
  int r = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (in_fd) {
    close(in[0]);
    *in_fd = in[1];
  }
  if (out_fd) {
    close(out[1]);
    *out_fd = out[0];
  }
  close(err[1]);
  *err_fd = err[0];
  return r == 0 ? pid : -1;
}

/* revd processes still running: a test that fails between revd_start()
 * and revd_stop() must not leave its daemon behind when the runner exits. */
static pid_t running[64];

static void kill_leftovers(void) {
  for (size_t i = 0; i < sizeof running / sizeof running[0]; i++)
    if (running[i] > 0)
      kill(running[i], SIGKILL);
}

static void remember(pid_t pid, pid_t replace) {
  static int registered;
  if (!registered)
    registered = atexit(kill_leftovers) == 0;
  for (size_t i = 0; i < sizeof running / sizeof running[0]; i++)
    if (running[i] == replace) {
      running[i] = pid;
      return;
    }
}

int revd_start(struct revd_proc *p, const char *const *args) {
  const char *argv[64] = {bin_path("REVD_BIN"), "--port", "0"};
  size_t n = 3;
  for (size_t i = 0; args && args[i] && n < 63; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  memset(p, 0, sizeof *p);
  p->pid = spawn_program(argv, NULL, NULL, &p->err_fd);
  if (p->pid < 0)
    return -1;
  remember(p->pid, 0);
  double end = now_ms() + 5000;
  while (now_ms() < end) {
    const char *at = strstr(p->log, "listening on ");
    if (at && strchr(at, '\n')) {
      const char *tcp = strstr(at, "listening on 127.0.0.1:");
      p->port = tcp ? atoi(tcp + strlen("listening on 127.0.0.1:")) : 0;
      return 0;
    }
    log_append(p, 100);
  }
  kill(p->pid, SIGKILL);
  wait_exit(p->pid, 1000);
  remember(0, p->pid);
  fprintf(stderr, "harness: revd did not say it listens; it printed:\n%s\n", p->log);
  return -1;
}

int revd_stop(struct revd_proc *p, int sig, int timeout_ms) {
  kill(p->pid, sig);
  int status = wait_exit(p->pid, timeout_ms);
  remember(0, p->pid);
  log_append(p, 100);
  close(p->err_fd);
  return status;
}

/* Moves data between the child's pipes until both outputs close. */
static void pump(int in_fd, const char *input, size_t input_len, int out_fd, int err_fd,
                 struct run_result *r, double end) {
  size_t sent = 0;
  if (input_len == 0 && in_fd >= 0) {
    close(in_fd);
    in_fd = -1;
  }
  while ((out_fd >= 0 || err_fd >= 0) && now_ms() < end) {
    struct pollfd pfd[3] = {{.fd = out_fd, .events = POLLIN},
                            {.fd = err_fd, .events = POLLIN},
                            {.fd = in_fd, .events = POLLOUT}};
    if (poll(pfd, 3, 50) <= 0)
      continue;
    if (pfd[2].revents) {
      ssize_t n = write(in_fd, input + sent, input_len - sent);
      if (n > 0)
        sent += (size_t)n;
      if (n < 0 || sent == input_len) {
        close(in_fd);
        in_fd = -1;
      }
    }
    int *fds[2] = {&out_fd, &err_fd};
    char *bufs[2] = {r->out, r->err};
    size_t *lens[2] = {&r->out_len, &r->err_len};
    size_t caps[2] = {sizeof r->out - 1, sizeof r->err - 1};
    for (int i = 0; i < 2; i++) {
      if (!pfd[i].revents)
        continue;
      char sink[4096];
      int room = *lens[i] < caps[i];
      ssize_t n = read(*fds[i], room ? bufs[i] + *lens[i] : sink,
                       room ? caps[i] - *lens[i] : sizeof sink);
      if (n <= 0) {
        close(*fds[i]);
        *fds[i] = -1;
      } else if (room) {
        *lens[i] += (size_t)n;
      }
    }
  }
  if (in_fd >= 0)
    close(in_fd);
  if (out_fd >= 0)
    close(out_fd);
  if (err_fd >= 0)
    close(err_fd);
}

int run_program(const char *const *argv, const char *input, size_t input_len, int timeout_ms,
                struct run_result *r) {
  memset(r, 0, sizeof *r);
  int in_fd, out_fd, err_fd;
  signal(SIGPIPE, SIG_IGN);
  pid_t pid = spawn_program(argv, &in_fd, &out_fd, &err_fd);
  if (pid < 0)
    return r->status = -1;
  double end = now_ms() + timeout_ms;
  pump(in_fd, input, input ? input_len : 0, out_fd, err_fd, r, end);
  int left = (int)(end - now_ms());
  r->status = wait_exit(pid, left > 0 ? left : 1);
  r->out[r->out_len] = '\0';
  r->err[r->err_len] = '\0';
  return r->status;
}

static void set_timeouts(int fd, int ms) {
  struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

int tcp_connect(int port) { return tcp_connect_rcvbuf(port, 0); }

int tcp_connect_rcvbuf(int port, int rcvbuf) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  if (rcvbuf > 0) /* before connect: it sizes the window */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  set_timeouts(fd, 5000);
  if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int send_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

ssize_t recv_until_eof(int fd, void *buf, size_t cap, int timeout_ms) {
  size_t got = 0;
  double end = now_ms() + timeout_ms;
  while (got < cap) {
    int left = (int)(end - now_ms());
    if (left <= 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, left) <= 0)
      continue;
    ssize_t n = recv(fd, (char *)buf + got, cap - got, 0);
    if (n == 0)
      break;
    if (n < 0)
      return -1;
    got += (size_t)n;
  }
  return (ssize_t)got;
}

int unused_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sin;
  int port = -1;
  if (bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0 &&
      getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
    port = ntohs(sin.sin_port);
  close(fd);
  return port;
}

/* ---- helpers for cmocka tests ------------------------------------------ */

struct port_arg port_arg(int port) {
  struct port_arg p;
  snprintf(p.s, sizeof p.s, "%d", port);
  return p;
}

int run_revc(struct run_result *r, const char *input, const char *const *args) {
  const char *argv[32] = {bin_path("REVC_BIN")};
  size_t n = 1;
  for (size_t i = 0; args[i] && n < 31; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  return run_program(argv, input, input ? strlen(input) : 0, 10000, r);
}

static struct revd_proc daemon_proc;
static struct revd_proc *live_revd;

struct revd_proc *start_revd(const char *const *args) {
  assert_null(live_revd);
  assert_int_equal(revd_start(&daemon_proc, args), 0);
  return live_revd = &daemon_proc;
}

void stop_revd(struct revd_proc *p) {
  live_revd = NULL;
  int status = revd_stop(p, SIGTERM, 5000);
  if (status != 0)
    fail_msg("revd exited %d; it printed:\n%s", status, p->log);
}

int stop_leftover_revd(void **state) {
  (void)state;
  if (live_revd) {
    revd_stop(live_revd, SIGKILL, 2000);
    live_revd = NULL;
  }
  return 0;
}

char tmpdir[64];

int make_tmpdir(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/revd-test-XXXXXX");
  return mkdtemp(tmpdir) ? 0 : -1;
}

int tmpdir_entries(void) {
  DIR *d = opendir(tmpdir);
  if (!d)
    return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  return n;
}

int remove_tmpdir(void **state) {
  (void)state;
  DIR *d = opendir(tmpdir);
  if (d) {
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
      unlink(path);
    }
    closedir(d);
  }
  return rmdir(tmpdir);
}

void timed_reply_cb(int status, const char *what, const char *reply, size_t len, void *arg) {
  struct timed_reply *t = arg;
  (void)reply;
  t->calls++;
  t->status = status;
  t->what = what;
  t->len = len;
  t->took = now_ms() - t->started;
}

int is_log_line(const char *text, const char *level, const char *msg) {
  char want[512];
  int pid_end = 0;
  /* 2026-11-27T22:57:23.123+00:00 revd[1234] */
  if (strlen(text) < 30 || text[4] != '-' || text[10] != 'T' || text[19] != '.' ||
      sscanf(text + 29, " revd[%*d]%n", &pid_end) != 0 || pid_end == 0)
    return 0;
  snprintf(want, sizeof want, " %s: %s\n", level, msg);
  return strcmp(text + 29 + pid_end, want) == 0;
}
