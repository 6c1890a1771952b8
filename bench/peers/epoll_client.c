/* epoll-client — the yardstick for revbench: a minimal single-threaded epoll
 * load generator doing the same closed-loop exchange (connect, send,
 * half-close, read to EOF, verify the reversal, close, repeat) and nothing
 * else: no latency, no error kinds, no options but these.
 *
 * usage: epoll-client PORT CONNS SECONDS BYTES
 * prints: exchanges=N seconds=S rate=R mismatches=M errors=E cpu=SECONDS
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
  int fd;
  size_t got;
  char *buf;
};

static struct sockaddr_in addr;
static char *msg, *expect;
static size_t len;
static int ep;
static long ok, mismatches, errors;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void start(struct conn *c) {
  c->got = 0;
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  connect(c->fd, (struct sockaddr *)&addr, sizeof addr); /* EINPROGRESS */
  struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void finish(struct conn *c, long *counter) {
  (*counter)++;
  close(c->fd);
  start(c);
}

static void on_event(struct conn *c, unsigned events) {
  if (events & EPOLLOUT) { /* connected (or failed: the write says which) */
    if (write(c->fd, msg, len) != (ssize_t)len || shutdown(c->fd, SHUT_WR) < 0) {
      finish(c, &errors);
      return;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    return;
  }
  for (;;) {
    ssize_t n = read(c->fd, c->buf + c->got, len + 1 - c->got);
    if (n > 0) {
      c->got += (size_t)n;
      if (c->got > len) {
        finish(c, &mismatches);
        return;
      }
      continue;
    }
    if (n < 0 && errno == EAGAIN)
      return;
    if (n < 0)
      finish(c, &errors);
    else if (c->got == len && memcmp(c->buf, expect, len) == 0)
      finish(c, &ok);
    else
      finish(c, &mismatches);
    return;
  }
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: epoll-client PORT CONNS SECONDS BYTES\n");
    return 2;
  }
  int conns = atoi(argv[2]);
  double seconds = atof(argv[3]);
  len = (size_t)atol(argv[4]);
  signal(SIGPIPE, SIG_IGN);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)atoi(argv[1]));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  msg = malloc(len);
  expect = malloc(len);
  for (size_t i = 0; i < len; i++)
    msg[i] = (char)('a' + i % 26);
  for (size_t i = 0; i < len; i++)
    expect[i] = msg[len - 1 - i];
  ep = epoll_create1(0);
  struct conn *cs = calloc((size_t)conns, sizeof *cs);
  for (int i = 0; i < conns; i++) {
    cs[i].buf = malloc(len + 1);
    start(&cs[i]);
  }
  struct epoll_event events[256];
  double t0 = now(), end = t0 + seconds, t;
  while ((t = now()) < end) {
    int n = epoll_wait(ep, events, 256, 10);
    for (int i = 0; i < n; i++)
      on_event(events[i].data.ptr, events[i].events);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("exchanges=%ld seconds=%.3f rate=%.1f mismatches=%ld errors=%ld cpu=%.3f\n", ok, t - t0,
         (double)ok / (t - t0), mismatches, errors,
         (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
             (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
  return 0;
}
