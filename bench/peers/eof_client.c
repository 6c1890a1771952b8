/* eof-client — one eof-mode round trip, timed: connect, send BYTES, half-close,
 * read the reply to EOF, check it (the reversal, or the message itself for an
 * echo peer), close.  The same client for revd --mode eof and eof-echo.
 *
 * usage: eof-client PORT BYTES reverse|echo
 * prints: seconds=S bytes=N ok=1|0     (exit 0 only when ok) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: eof-client PORT BYTES reverse|echo\n");
    return 2;
  }
  size_t len = (size_t)atoll(argv[2]), got = 0;
  int echo = strcmp(argv[3], "echo") == 0;
  char *msg = malloc(len + 1), *reply = malloc(len + 1);
  if (!msg || !reply)
    return 1;
  for (size_t i = 0; i < len; i++)
    msg[i] = (char)('a' + (i * 7 + i / 26) % 26);
  memset(reply, 0, len + 1); /* fault the pages in before the clock starts */
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  double t0 = now();
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    perror("eof-client: connect");
    return 1;
  }
  ssize_t n;
  for (size_t off = 0; off < len; off += (size_t)n)
    if ((n = write(fd, msg + off, len - off)) <= 0) {
      perror("eof-client: write");
      return 1;
    }
  shutdown(fd, SHUT_WR);
  while (got <= len && (n = read(fd, reply + got, len + 1 - got)) > 0)
    got += (size_t)n;
  double t = now() - t0;
  close(fd);
  int ok = got == len;
  for (size_t i = 0; ok && i < len; i++)
    ok = reply[i] == msg[echo ? i : len - 1 - i];
  printf("seconds=%.6f bytes=%zu ok=%d\n", t, got, ok);
  return ok ? 0 : 1;
}
