/* revc — sends each MESSAGE on its own connection, all at once, and prints
 * the replies in argument order, one a line. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "relay.h"
#include "revd.h"

#define DEFAULT_TIMEOUT_MS 10000

struct reply {
  int done;
  int status;
  const char *what;
  char *data;
  size_t len;
  size_t sent; /* length of the message */
};

struct client_config {
  const char *host;
  int port;
  const char *unix_path;
  int mode;
  unsigned timeout_ms;
};

static void usage(FILE *out) {
  fprintf(out,
          "usage: revc [OPTION]... [MESSAGE]...\n"
          "Send each MESSAGE to a reverse server on its own connection, all at once,\n"
          "and print the replies in argument order, one a line.  With no MESSAGE,\n"
          "standard input is the message and the reply prints exactly as it came.\n"
          "\n"
          "  --host H        server address (default " REVD_DEFAULT_HOST ")\n"
          "  --port P        server port (default %d)\n"
          "  --unix PATH     connect to a Unix domain socket instead of TCP\n"
          "  --mode M        chunk (default), eof or line: the server's mode; in line\n"
          "                  mode with no MESSAGE, standard input streams over one\n"
          "                  connection and each reply prints as soon as it arrives\n"
          "  --timeout MS    give up on a reply after MS milliseconds, 0 = never (default %d);\n"
          "                  when streaming, counted from the end of standard input\n"
          "  -h, --help      show this help and exit\n"
          "  -V, --version   show the version and exit\n"
          "\n"
          "Exit status: 0 when every reply came back, 1 when one did not, 2 for bad usage.\n",
          REVD_DEFAULT_PORT, DEFAULT_TIMEOUT_MS);
}

/* Long options are >= 256, --help and --version too: cli_getopt_error()
 * tells long from short by that. */
enum { OPT_HOST = 256, OPT_PORT, OPT_UNIX, OPT_MODE, OPT_TIMEOUT, OPT_HELP, OPT_VERSION };

static const struct option long_options[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"unix", required_argument, NULL, OPT_UNIX},
    {"mode", required_argument, NULL, OPT_MODE},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static int apply_option(struct client_config *cfg, int opt, const char *arg) {
  uint64_t v;
  switch (opt) {
  case OPT_HOST: cfg->host = arg; return 0;
  case OPT_UNIX: cfg->unix_path = arg; return 0;
  case OPT_PORT:
    if (cli_number("revc", "--port", arg, 1, 65535, 0, &v) < 0) return 2;
    cfg->port = (int)v;
    return 0;
  case OPT_MODE:
    if ((cfg->mode = cli_mode("revc", arg)) < 0) return 2;
    return 0;
  case OPT_TIMEOUT:
    if (cli_number("revc", "--timeout", arg, 0, UINT32_MAX, 0, &v) < 0) return 2;
    cfg->timeout_ms = (unsigned)v;
    return 0;
  case 'h': case OPT_HELP: usage(stdout); return 1;
  case 'V': case OPT_VERSION: printf("revc %s\n", REVD_VERSION_STRING); return 1;
  default: return 2;
  }
}

static int parse_args(int argc, char **argv, struct client_config *cfg) {
  cfg->host = REVD_DEFAULT_HOST;
  cfg->port = REVD_DEFAULT_PORT;
  cfg->unix_path = NULL;
  cfg->mode = REVD_MODE_CHUNK;
  cfg->timeout_ms = DEFAULT_TIMEOUT_MS;
  opterr = 0;
  int opt;
  while ((opt = getopt_long(argc, argv, ":hV", long_options, NULL)) != -1) {
    if (opt == '?' || opt == ':')
      return cli_getopt_error("revc", opt, argv);
    int r = apply_option(cfg, opt, optarg);
    if (r != 0)
      return r;
  }
  return 0;
}

/* Reads all of stdin.  Returns 0, or -1 with errno set. */
static int read_all(FILE *in, char **out, size_t *len) {
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    n += fread(buf + n, 1, cap - n, in);
    if (n < cap)
      break;
    char *p = realloc(buf, cap * 2);
    if (!p) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = p;
    cap *= 2;
  }
  if (!buf || ferror(in)) {
    free(buf);
    return -1;
  }
  *out = buf;
  *len = n;
  return 0;
}

static void exchange_cb(int status, const char *what, const char *data, size_t len, void *arg) {
  struct reply *rep = arg;
  rep->done = 1;
  rep->status = status;
  rep->what = what;
  rep->len = len;
  rep->data = malloc(len ? len : 1);
  if (rep->data)
    memcpy(rep->data, data, len);
}

/* Reversal keeps the length, so in eof and line mode a whole reply is as
 * long as the message; in chunk mode it is the first read, never empty for
 * a message that was not.  A server that refuses (past --max-message or
 * --max-conns) just closes, which looks like a clean end otherwise. */
static int reply_incomplete(int mode, const struct reply *rep) {
  return mode == REVD_MODE_CHUNK ? rep->sent > 0 && rep->len == 0 : rep->len != rep->sent;
}

/* Prints replies in argument order; failures go to stderr.  A reply to
 * standard input (raw) prints exactly as it came, so binary data survives a
 * pipe; replies to MESSAGE arguments print one a line.  Returns the number of
 * messages without a complete reply. */
static int print_replies(const struct client_config *cfg, const char *where,
                         struct reply *replies, int n, int raw) {
  int failed = 0;
  for (int i = 0; i < n; i++) {
    struct reply *rep = &replies[i];
    if (rep->status == 0 && !rep->data)
      rep->status = UV_ENOMEM;
    if (rep->status != 0) {
      fprintf(stderr, "revc: %s %s: %s\n", rep->what ? rep->what : "reply", where,
              revd_strerror(rep->status));
      free(rep->data);
      failed++;
      continue;
    }
    if (reply_incomplete(cfg->mode, rep)) {
      fprintf(stderr, "revc: reply %s: incomplete: %zu of %zu bytes came back before the server closed\n",
              where, rep->len, rep->sent);
      free(rep->data);
      failed++;
      continue;
    }
    fwrite(rep->data, 1, rep->len, stdout);
    /* line mode replies carry their own '\n'; other replies get one */
    int has_newline = rep->len > 0 && rep->data[rep->len - 1] == '\n';
    if (!raw && (cfg->mode != REVD_MODE_LINE || !has_newline))
      fputc('\n', stdout);
    free(rep->data);
  }
  return failed;
}

/* Fills *addr from --unix or --host/--port and names it in `where`.
 * Returns 0, or the exit status after reporting the problem. */
static int resolve_target(const struct client_config *cfg, struct sockaddr_storage *addr,
                          char *where, size_t size) {
  if (cfg->unix_path) {
    struct sockaddr_un *un = (struct sockaddr_un *)addr;
    if (cfg->unix_path[0] == '\0')
      return cli_usage_error("revc", "invalid --unix '': expected a socket path");
    if (strlen(cfg->unix_path) >= sizeof un->sun_path)
      return cli_usage_error("revc", "invalid --unix '%s': longer than %zu bytes", cfg->unix_path,
                             sizeof un->sun_path - 1);
    memset(un, 0, sizeof *un);
    un->sun_family = AF_UNIX;
    strcpy(un->sun_path, cfg->unix_path);
    snprintf(where, size, "%s", cfg->unix_path);
    return 0;
  }
  if (revd_parse_addr(cfg->host, cfg->port, addr) != 0)
    return cli_usage_error("revc", "invalid --host '%s': expected an IPv4 or IPv6 address",
                           cfg->host);
  revd_format_addr((struct sockaddr *)addr, where, size);
  return 0;
}

/* Sends every MESSAGE (or all of stdin) on its own connection, all at once.
 * Returns the exit status. */
static int exchange_all(const struct client_config *cfg, const struct sockaddr *addr,
                        const char *where, char **msgs, int n) {
  char *stdin_msg = NULL;
  size_t stdin_len = 0;
  if (n == 0) {
    if (read_all(stdin, &stdin_msg, &stdin_len) != 0) {
      perror("revc: read standard input");
      return 1;
    }
    n = 1;
  }
  struct reply *replies = calloc((size_t)n, sizeof *replies);
  uv_loop_t loop;
  if (!replies || uv_loop_init(&loop) != 0) {
    fprintf(stderr, "revc: start: out of memory\n");
    return 1;
  }
  for (int i = 0; i < n; i++) {
    const char *msg = stdin_msg ? stdin_msg : msgs[i];
    size_t len = stdin_msg ? stdin_len : strlen(msg);
    replies[i].sent = len;
    int r = revd_exchange(&loop, addr, msg, len, cfg->timeout_ms, 0, exchange_cb, &replies[i]);
    if (r != 0)
      replies[i] = (struct reply){.done = 1, .status = r, .what = "connect"};
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  int failed = print_replies(cfg, where, replies, n, stdin_msg != NULL);
  free(stdin_msg);
  free(replies);
  return failed ? 1 : 0;
}

/* A reply that could not be written out did not come back for the user
 * (full disk, closed pipe: SIGPIPE is ignored, so only the stream says so). */
static int output_status(int status) {
  errno = 0;
  if (fflush(stdout) == 0 && !ferror(stdout))
    return status;
  fprintf(stderr, "revc: write standard output: %s\n", errno ? strerror(errno) : "write error");
  return 1;
}

int main(int argc, char **argv) {
  struct client_config cfg;
  int r = parse_args(argc, argv, &cfg);
  if (r != 0)
    return r == 1 ? 0 : 2;
  signal(SIGPIPE, SIG_IGN);
  struct sockaddr_storage addr;
  char where[128];
  if ((r = resolve_target(&cfg, &addr, where, sizeof where)) != 0)
    return r;
  int n = argc - optind;
  if (n == 0 && cfg.mode == REVD_MODE_LINE && relay_wanted())
    return output_status(relay_stdin((struct sockaddr *)&addr, where, cfg.timeout_ms));
  return output_status(exchange_all(&cfg, (struct sockaddr *)&addr, where, argv + optind, n));
}
