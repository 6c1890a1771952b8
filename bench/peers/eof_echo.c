/* eof-echo — the yardstick for eof mode: a plain blocking server that reads
 * one client's message to EOF (the client half-closes), writes it back
 * unchanged and closes; one client at a time.  The buffer doubles as the
 * message grows (realloc), as the simplest program would do it.  For
 * bench/compare's 64 MiB round trip against revd --mode eof.
 *
 * usage: eof-echo [PORT]   (0 or none: a free port, printed on stderr) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static void serve(int fd) {
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  ssize_t n;
  while (buf && (n = read(fd, buf + len, cap - len)) > 0) {
    len += (size_t)n;
    if (len == cap) {
      char *bigger = realloc(buf, cap *= 2);
      if (!bigger)
        free(buf);
      buf = bigger;
    }
  }
  for (size_t off = 0; buf && off < len; off += (size_t)n)
    if ((n = write(fd, buf + off, len - off)) <= 0)
      break;
  free(buf);
  close(fd);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_port = htons((uint16_t)(argc > 1 ? atoi(argv[1]) : 0));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 511) < 0) {
    perror("eof-echo: listening");
    return 1;
  }
  socklen_t alen = sizeof a;
  getsockname(lfd, (struct sockaddr *)&a, &alen);
  fprintf(stderr, "eof-echo: listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    if (fd >= 0)
      serve(fd);
  }
}
