/* options.c — see options.h. */
#include "options.h"

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "systemd.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: revd [OPTION]...\n"
          "Serve the reverse protocol: each client's message comes back reversed.\n"
          "\n"
          "  --host H               address to listen on (default " REVD_DEFAULT_HOST ")\n"
          "  --port P               TCP port, 0 picks a free one (default %d)\n"
          "  --unix PATH            listen on a Unix domain socket instead of TCP\n"
          "  --unix-mode OCTAL      permissions of the --unix socket file (default 0660)\n"
          "  --mode M               chunk: the first read is the message (default)\n"
          "                         eof:   the message ends when the client half-closes\n"
          "                         line:  each '\\n'-terminated line is a message\n"
          "  --reverse R            bytes (default), codepoints (UTF-8) or graphemes\n"
          "  --max-message BYTES    largest eof/line message (default 64m; k, m, g suffixes)\n"
          "  --max-buffered BYTES   bytes all connections together may hold, 0 = no limit\n"
          "                         (default 1/8 of the memory; k, m, g suffixes)\n"
          "  --max-conns N          open connections at most, 0 = no limit (default 0)\n"
          "  --max-conns-per-ip N   open connections per client address, 0 = no limit (default 0)\n"
          "  --idle-timeout MS      close connections silent this long, 0 = never (default 60000)\n"
          "  --drain-timeout MS     on SIGTERM, how long exchanges in flight may take (default 5000)\n"
          "  --backlog N            listen backlog (default: the kernel's somaxconn)\n"
          "  --defer-accept WHEN    on: accept a client once it sent data; off; auto: on\n"
          "                         but in line mode (default auto)\n"
          "  --threads N            event loops, one thread each, sharing the port (default 1)\n"
          "  --metrics HOST:PORT    serve the counters at http://HOST:PORT/metrics (Prometheus)\n"
          "  --log-level L          error, warn, info (default) or debug\n"
          "  -h, --help             show this help and exit\n"
          "  -V, --version          show the version and exit\n"
          "\n"
          "Started by systemd with LISTEN_FDS, revd serves the sockets it was handed.\n"
          "SIGINT or SIGTERM: stop accepting, finish exchanges in flight, exit 0.\n"
          "SIGHUP or SIGUSR1: log the counters and keep serving.\n",
          REVD_DEFAULT_PORT);
}

static void version(void) {
  printf("revd %s (librevd %s, libuv %s, systemd %s)\n", REVD_VERSION_STRING, revd_version(),
         uv_version_string(), systemd_support);
}

enum {
  OPT_HOST = 256, OPT_PORT, OPT_UNIX, OPT_UNIX_MODE, OPT_MODE, OPT_REVERSE, OPT_MAX_MESSAGE,
  OPT_MAX_BUFFERED, OPT_MAX_CONNS, OPT_MAX_CONNS_PER_IP, OPT_IDLE_TIMEOUT, OPT_DRAIN_TIMEOUT,
  OPT_BACKLOG, OPT_DEFER_ACCEPT, OPT_THREADS, OPT_METRICS, OPT_LOG_LEVEL,
  OPT_HELP, OPT_VERSION /* not 'h' and 'V': cli_getopt_error() tells long from short by >= 256 */
};

static const struct option long_options[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"unix", required_argument, NULL, OPT_UNIX},
    {"unix-mode", required_argument, NULL, OPT_UNIX_MODE},
    {"mode", required_argument, NULL, OPT_MODE},
    {"reverse", required_argument, NULL, OPT_REVERSE},
    {"max-message", required_argument, NULL, OPT_MAX_MESSAGE},
    {"max-buffered", required_argument, NULL, OPT_MAX_BUFFERED},
    {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
    {"max-conns-per-ip", required_argument, NULL, OPT_MAX_CONNS_PER_IP},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT},
    {"backlog", required_argument, NULL, OPT_BACKLOG},
    {"defer-accept", required_argument, NULL, OPT_DEFER_ACCEPT},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"metrics", required_argument, NULL, OPT_METRICS},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* Permissions as chmod(1) writes them: octal digits, at most 0777. */
static int parse_unix_mode(const char *text, unsigned *out) {
  char *end;
  unsigned long v = strtoul(text, &end, 8);
  if (text[0] < '0' || text[0] > '7' || *end != '\0' || v > 0777)
    return cli_usage_error("revd", "invalid --unix-mode '%s': expected octal permissions "
                                   "from 0 to 0777, e.g. 0660", text);
  *out = (unsigned)v;
  return 0;
}

/* The options that take a number: where each goes, its range, and whether
 * k, m, g suffixes apply.  Written once, so every one is parsed and bounded
 * the same way.  A field is an int, an unsigned or a size_t: store() tells
 * them apart by size alone, which is enough because the int fields (port,
 * backlog) have ranges far below INT_MAX, where int and unsigned agree. */
#define CFG(field) offsetof(struct daemon_config, field), sizeof ((struct daemon_config *)0)->field
static const struct number_option {
  int opt;
  const char *name;
  uint64_t min, max;
  int sizes;
  size_t offset, width;
} number_options[] = {
    {OPT_PORT, "--port", 0, 65535, 0, CFG(port)},
    {OPT_MAX_MESSAGE, "--max-message", 1, SIZE_MAX / 2, 1, CFG(opts.max_message)},
    {OPT_MAX_BUFFERED, "--max-buffered", 0, SIZE_MAX / 2, 1, CFG(opts.max_buffered)},
    {OPT_MAX_CONNS, "--max-conns", 0, UINT32_MAX, 0, CFG(opts.max_conns)},
    {OPT_MAX_CONNS_PER_IP, "--max-conns-per-ip", 0, UINT32_MAX, 0, CFG(opts.max_conns_per_ip)},
    {OPT_IDLE_TIMEOUT, "--idle-timeout", 0, UINT32_MAX, 0, CFG(opts.idle_timeout_ms)},
    {OPT_DRAIN_TIMEOUT, "--drain-timeout", 0, UINT32_MAX, 0, CFG(opts.drain_timeout_ms)},
    {OPT_BACKLOG, "--backlog", 1, 65535, 0, CFG(opts.backlog)},
    {OPT_THREADS, "--threads", 1, 64, 0, CFG(threads)},
};
#undef CFG

static void store(void *field, size_t width, uint64_t v) {
  if (width == sizeof(size_t)) {
    size_t x = (size_t)v;
    memcpy(field, &x, width);
  } else {
    unsigned x = (unsigned)v;
    memcpy(field, &x, sizeof x);
  }
}

/* Parses a number option into *cfg.  Returns 0, 2 for a bad value, or -1
 * when opt takes no number. */
static int number_option(struct daemon_config *cfg, int opt, const char *arg) {
  for (size_t i = 0; i < sizeof number_options / sizeof number_options[0]; i++) {
    const struct number_option *n = &number_options[i];
    uint64_t v;
    if (n->opt != opt)
      continue;
    if (cli_number("revd", n->name, arg, n->min, n->max, n->sizes, &v) < 0)
      return 2;
    store((char *)cfg + n->offset, n->width, v);
    return 0;
  }
  return -1;
}

/* on, off or auto (REVD_DEFER_AUTO).  Returns 0 or 2 (reported). */
static int parse_defer_accept(const char *text, int *out) {
  if (strcmp(text, "auto") == 0)
    *out = REVD_DEFER_AUTO;
  else if (strcmp(text, "on") == 0 || strcmp(text, "off") == 0)
    *out = strcmp(text, "on") == 0;
  else
    return cli_usage_error("revd", "invalid --defer-accept '%s': expected on, off or auto", text);
  return 0;
}

/* One option into cfg.  Returns 0, 1 to exit 0 at once (help, version), or 2. */
static int apply_option(struct daemon_config *cfg, int opt, const char *arg) {
  revd_options_t *o = &cfg->opts;
  int r = number_option(cfg, opt, arg);
  if (r >= 0)
    return r;
  switch (opt) {
  case OPT_HOST: cfg->host = arg; return 0;
  case OPT_UNIX:
    if (arg[0] == '\0')
      return cli_usage_error("revd", "invalid --unix '': expected a socket path");
    cfg->unix_path = arg;
    return 0;
  case OPT_UNIX_MODE: return parse_unix_mode(arg, &o->unix_mode);
  case OPT_MODE:
    if ((r = cli_mode("revd", arg)) < 0) return 2;
    o->mode = r;
    return 0;
  case OPT_REVERSE:
    if ((r = revd_reverse_parse(arg)) < 0)
      return cli_usage_error("revd", "invalid --reverse '%s': expected bytes, codepoints or graphemes", arg);
    o->reverse = r;
    return 0;
  case OPT_DEFER_ACCEPT: return parse_defer_accept(arg, &o->defer_accept);
  case OPT_METRICS: cfg->metrics = arg; return 0;
  case OPT_LOG_LEVEL:
    if ((r = log_level_parse(arg)) < 0)
      return cli_usage_error("revd", "invalid --log-level '%s': expected error, warn, info or debug", arg);
    cfg->log_level = r;
    return 0;
  case 'h': case OPT_HELP: usage(stdout); return 1;
  case 'V': case OPT_VERSION: version(); return 1;
  default: return 2; /* getopt printed nothing: see opterr below */
  }
}

/* Parses HOST:PORT (HOST may be [V6]) into *out.  Returns 0 or UV_EINVAL. */
static int parse_host_port(const char *text, struct sockaddr_storage *out) {
  const char *colon = strrchr(text, ':');
  char host[64];
  uint64_t port;
  if (!colon || (size_t)(colon - text) >= sizeof host || colon[1] == '\0')
    return UV_EINVAL;
  memcpy(host, text, (size_t)(colon - text));
  host[colon - text] = '\0';
  char *end;
  port = strtoull(colon + 1, &end, 10);
  if (*end != '\0' || port > 65535)
    return UV_EINVAL;
  return revd_parse_addr(host, (int)port, out);
}

/* Checks what only makes sense together, and resolves the addresses.
 * Returns 0, or 2 after one line on stderr. */
static int check_config(struct daemon_config *cfg) {
  if (cfg->threads > 1 && cfg->unix_path)
    return cli_usage_error("revd", "--threads %u with --unix: a Unix socket is served by one thread",
                           cfg->threads);
  if (!cfg->unix_path && revd_parse_addr(cfg->host, cfg->port, &cfg->listen_addr) != 0)
    return cli_usage_error("revd", "invalid --host '%s': expected an IPv4 or IPv6 address",
                           cfg->host);
  if (cfg->metrics && parse_host_port(cfg->metrics, &cfg->metrics_addr) != 0)
    return cli_usage_error("revd", "invalid --metrics '%s': expected HOST:PORT, e.g. 127.0.0.1:9342",
                           cfg->metrics);
  cfg->opts.reuse_port = cfg->threads > 1;
  return 0;
}

int options_parse(int argc, char **argv, struct daemon_config *cfg) {
  cfg->host = REVD_DEFAULT_HOST;
  cfg->port = REVD_DEFAULT_PORT;
  cfg->unix_path = NULL;
  cfg->log_level = LOG_INFO;
  cfg->threads = 1;
  cfg->metrics = NULL;
  revd_options_init(&cfg->opts);
  opterr = 0; /* we word the errors ourselves, on one line */
  int opt;
  while ((opt = getopt_long(argc, argv, ":hV", long_options, NULL)) != -1) {
    if (opt == '?' || opt == ':')
      return cli_getopt_error("revd", opt, argv);
    int r = apply_option(cfg, opt, optarg);
    if (r != 0)
      return r;
  }
  if (optind < argc)
    return cli_usage_error("revd", "unexpected argument '%s'", argv[optind]);
  return check_config(cfg);
}
