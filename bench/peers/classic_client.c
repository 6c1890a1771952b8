/* classic-client — the classic client's exchange as a closed-loop load: a
 * minimal single-threaded epoll load generator that connects, sends the
 * message, reads the reply until the server closes, verifies it and closes,
 * and NEVER half-closes (the blocking Python client revd replaces does the
 * same).  revbench always half-closes in chunk mode; this is the other
 * pattern, for bench/compare-servers.sh.  Same output as epoll-client, plus
 * the latency of an exchange (connect to verified reply) at p50 and p99.
 *
 * Shortcuts, and what they give up: no timeouts (a server that never closes
 * just takes a connection out of the loop; the rate shows it), one message
 * size, latency in 1 us buckets up to 64 ms and 1 ms buckets beyond.
 *
 * usage: classic-client PORT CONNS SECONDS BYTES
 * prints: exchanges=N seconds=S rate=R mismatches=M errors=E cpu=SECONDS
 *         p50_us=P p99_us=P
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FINE_US 65536  /* 1 us buckets below this */
#define COARSE_MS 3600 /* then 1 ms buckets up to an hour */

struct conn {
  int fd;
  size_t got;
  uint64_t t0_ns;
  char *buf;
};

static struct sockaddr_in addr;
static char *msg, *expect;
static size_t len;
static int ep;
static long ok, mismatches, errors;
static uint64_t fine[FINE_US], coarse[COARSE_MS + 1];

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void record(uint64_t ns) {
  uint64_t us = ns / 1000;
  if (us < FINE_US)
    fine[us]++;
  else
    coarse[us / 1000 < COARSE_MS ? us / 1000 : COARSE_MS]++;
}

/* The q-quantile in microseconds (the bucket's lower edge). */
static double quantile(double q) {
  uint64_t want = (uint64_t)(q * (double)ok + 0.5), seen = 0;
  if (want == 0)
    want = 1;
  for (uint64_t i = 0; i < FINE_US; i++)
    if ((seen += fine[i]) >= want)
      return (double)i;
  for (uint64_t i = 0; i <= COARSE_MS; i++)
    if ((seen += coarse[i]) >= want)
      return (double)i * 1000.0;
  return 0;
}

static void start(struct conn *c) {
  c->got = 0;
  c->t0_ns = now_ns();
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  connect(c->fd, (struct sockaddr *)&addr, sizeof addr); /* EINPROGRESS */
  struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void finish(struct conn *c, long *counter) {
  (*counter)++;
  if (counter == &ok)
    record(now_ns() - c->t0_ns);
  close(c->fd);
  start(c);
}

static void on_event(struct conn *c, unsigned events) {
  if (events & EPOLLOUT) { /* connected (or failed: the write says which) */
    if (write(c->fd, msg, len) != (ssize_t)len) {
      finish(c, &errors);
      return;
    }
    /* No shutdown(SHUT_WR): the classic client just waits for the reply. */
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
    fprintf(stderr, "usage: classic-client PORT CONNS SECONDS BYTES\n");
    return 2;
  }
  int conns = atoi(argv[2]);
  double seconds = atof(argv[3]);
  len = (size_t)atol(argv[4]);
  if (conns < 1 || seconds <= 0 || len < 1) {
    fprintf(stderr, "classic-client: CONNS, SECONDS and BYTES must be positive\n");
    return 2;
  }
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
  uint64_t t0 = now_ns(), end = t0 + (uint64_t)(seconds * 1e9), t;
  while ((t = now_ns()) < end) {
    int n = epoll_wait(ep, events, 256, 10);
    for (int i = 0; i < n; i++)
      on_event(events[i].data.ptr, events[i].events);
  }
  double secs = (double)(t - t0) / 1e9;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("exchanges=%ld seconds=%.3f rate=%.1f mismatches=%ld errors=%ld cpu=%.3f p50_us=%.0f "
         "p99_us=%.0f\n",
         ok, secs, (double)ok / secs, mismatches, errors,
         (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
             (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6,
         quantile(0.50), quantile(0.99));
  return 0;
}
