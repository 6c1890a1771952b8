/* epoll-server — the yardstick: a minimal single-threaded epoll reverse
 * server, chunk mode only.  Accept, read once (at most 64 KiB), reverse,
 * write, close.
 *
 * Shortcuts, and what they give up: no lingering close (a client whose
 * message is longer than the first read gets a reset), a reply the socket
 * does not take at once is finished with a blocking write (a slow reader
 * stalls everyone), no limits, no timeouts.  Fine for a benchmark peer
 * against a well-behaved load generator; not a server.
 *
 * usage: epoll-server [PORT]   (0 or none: a free port, printed on stderr)
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS 256

static char buf[64 * 1024];

static void reverse(char *p, size_t n) {
  for (size_t i = 0, j = n - 1; n && i < j; i++, j--) {
    char t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
}

static void serve(int fd) {
  ssize_t n = read(fd, buf, sizeof buf);
  if (n < 0 && errno == EAGAIN)
    return; /* spurious wake-up: stay registered */
  if (n > 0) {
    reverse(buf, (size_t)n);
    ssize_t off = write(fd, buf, (size_t)n);
    if (off >= 0 && off < n) {
      fcntl(fd, F_SETFL, 0); /* the rare slow reader: finish blocking */
      while (off < n) {
        ssize_t w = write(fd, buf + off, (size_t)(n - off));
        if (w <= 0)
          break;
        off += w;
      }
    }
  }
  close(fd); /* also removes it from the epoll set */
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 0;
  signal(SIGPIPE, SIG_IGN);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4096) < 0) {
    perror("epoll-server: listening");
    return 1;
  }
  socklen_t alen = sizeof a;
  getsockname(lfd, (struct sockaddr *)&a, &alen);
  fprintf(stderr, "epoll-server: listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd}, events[MAX_EVENTS];
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  for (;;) {
    int n = epoll_wait(ep, events, MAX_EVENTS, -1);
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      if (fd != lfd) {
        serve(fd);
        continue;
      }
      int c;
      while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
        struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
      }
    }
  }
}
