/* revd — the daemon: options, signals and log lines around librevd. */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "workers.h"
#include "revd.h"

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };
/* Printed whatever --log-level says: with --port 0 the address line is the
 * only way to learn the port. */
#define LOG_ALWAYS (-1)
static const char *const log_level_names[] = {"error", "warn", "info", "debug"};

struct daemon_config {
  const char *host;
  int port;
  const char *unix_path;
  int log_level;
  unsigned threads;
  const char *metrics;     /* HOST:PORT, or NULL */
  struct sockaddr_storage listen_addr, metrics_addr; /* resolved by check_config() */
  revd_options_t opts;
};

struct daemon {
  struct daemon_config cfg;
  uv_loop_t loop;
  revd_server_t *srv;
  struct workers *workers; /* --threads: the loops beyond this one */
  revd_metrics_t *metrics;
  revd_stats_t final;      /* counters when the stop signal came */
  uv_signal_t sigint, sigterm;
  int stopping;
};

static int log_level = LOG_INFO;

static void log_at(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_at(int level, const char *fmt, ...) {
  if (level > log_level && level != LOG_ALWAYS)
    return;
  va_list ap;
  fputs("revd: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: revd [OPTION]...\n"
          "Serve the reverse protocol: each client's message comes back reversed.\n"
          "\n"
          "  --host H              address to listen on (default " REVD_DEFAULT_HOST ")\n"
          "  --port P              TCP port, 0 picks a free one (default %d)\n"
          "  --unix PATH           listen on a Unix domain socket instead of TCP\n"
          "  --mode M              chunk: the first read is the message (default)\n"
          "                        eof:   the message ends when the client half-closes\n"
          "                        line:  each '\\n'-terminated line is a message\n"
          "  --reverse R           bytes (default), codepoints (UTF-8) or graphemes\n"
          "  --max-message BYTES   largest eof/line message (default 64m; k, m, g suffixes)\n"
          "  --max-conns N         open connections at most, 0 = no limit (default 0)\n"
          "  --idle-timeout MS     close connections silent this long, 0 = never (default 60000)\n"
          "  --backlog N           listen backlog (default: the kernel's somaxconn)\n"
          "  --defer-accept WHEN   on: accept a client once it sent data; off; auto: on\n"
          "                        but in line mode (default auto)\n"
          "  --threads N           event loops, one thread each, sharing the port (default 1)\n"
          "  --metrics HOST:PORT   serve the counters at http://HOST:PORT/metrics (Prometheus)\n"
          "  --log-level L         error, warn, info (default) or debug\n"
          "  --help                show this help and exit\n"
          "  --version             show the version and exit\n"
          "\n"
          "SIGINT or SIGTERM: stop accepting, finish exchanges in flight, exit 0.\n",
          REVD_DEFAULT_PORT);
}

enum {
  OPT_HOST = 256, OPT_PORT, OPT_UNIX, OPT_MODE, OPT_REVERSE, OPT_MAX_MESSAGE, OPT_MAX_CONNS,
  OPT_IDLE_TIMEOUT, OPT_BACKLOG, OPT_DEFER_ACCEPT, OPT_THREADS, OPT_METRICS, OPT_LOG_LEVEL, OPT_HELP, OPT_VERSION
};

static const struct option long_options[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"unix", required_argument, NULL, OPT_UNIX},
    {"mode", required_argument, NULL, OPT_MODE},
    {"reverse", required_argument, NULL, OPT_REVERSE},
    {"max-message", required_argument, NULL, OPT_MAX_MESSAGE},
    {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"backlog", required_argument, NULL, OPT_BACKLOG},
    {"defer-accept", required_argument, NULL, OPT_DEFER_ACCEPT},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"metrics", required_argument, NULL, OPT_METRICS},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static int parse_log_level(const char *text) {
  for (int i = 0; i < 4; i++)
    if (strcmp(text, log_level_names[i]) == 0)
      return i;
  cli_usage_error("revd", "invalid --log-level '%s': expected error, warn, info or debug", text);
  return -1;
}

/* One option into cfg.  Returns 0, 1 to exit 0 at once (help, version), or 2. */
static int apply_option(struct daemon_config *cfg, int opt, const char *arg) {
  uint64_t v;
  int r;
  switch (opt) {
  case OPT_HOST: cfg->host = arg; return 0;
  case OPT_UNIX:
    if (arg[0] == '\0')
      return cli_usage_error("revd", "invalid --unix '': expected a socket path");
    cfg->unix_path = arg;
    return 0;
  case OPT_PORT:
    if (cli_number("revd", "--port", arg, 0, 65535, 0, &v) < 0) return 2;
    cfg->port = (int)v;
    return 0;
  case OPT_MODE:
    if ((r = cli_mode("revd", arg)) < 0) return 2;
    cfg->opts.mode = r;
    return 0;
  case OPT_REVERSE:
    if ((r = revd_reverse_parse(arg)) < 0)
      return cli_usage_error("revd", "invalid --reverse '%s': expected bytes, codepoints or graphemes", arg);
    cfg->opts.reverse = r;
    return 0;
  case OPT_MAX_MESSAGE:
    if (cli_number("revd", "--max-message", arg, 1, SIZE_MAX / 2, 1, &v) < 0) return 2;
    cfg->opts.max_message = (size_t)v;
    return 0;
  case OPT_MAX_CONNS:
    if (cli_number("revd", "--max-conns", arg, 0, UINT32_MAX, 0, &v) < 0) return 2;
    cfg->opts.max_conns = (unsigned)v;
    return 0;
  case OPT_IDLE_TIMEOUT:
    if (cli_number("revd", "--idle-timeout", arg, 0, UINT32_MAX, 0, &v) < 0) return 2;
    cfg->opts.idle_timeout_ms = (unsigned)v;
    return 0;
  case OPT_BACKLOG:
    if (cli_number("revd", "--backlog", arg, 1, 65535, 0, &v) < 0) return 2;
    cfg->opts.backlog = (int)v;
    return 0;
  case OPT_DEFER_ACCEPT:
    if (strcmp(arg, "auto") == 0)
      cfg->opts.defer_accept = REVD_DEFER_AUTO;
    else if (strcmp(arg, "on") == 0 || strcmp(arg, "off") == 0)
      cfg->opts.defer_accept = strcmp(arg, "on") == 0;
    else
      return cli_usage_error("revd", "invalid --defer-accept '%s': expected on, off or auto", arg);
    return 0;
  case OPT_THREADS:
    if (cli_number("revd", "--threads", arg, 1, 64, 0, &v) < 0) return 2;
    cfg->threads = (unsigned)v;
    return 0;
  case OPT_METRICS: cfg->metrics = arg; return 0;
  case OPT_LOG_LEVEL:
    if ((r = parse_log_level(arg)) < 0) return 2;
    cfg->log_level = r;
    return 0;
  case OPT_HELP: usage(stdout); return 1;
  case OPT_VERSION: printf("revd %s (libuv %s)\n", REVD_VERSION_STRING, uv_version_string()); return 1;
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

/* Returns 0 to run, 1 to exit 0, 2 for bad usage (already reported). */
static int parse_args(int argc, char **argv, struct daemon_config *cfg) {
  cfg->host = REVD_DEFAULT_HOST;
  cfg->port = REVD_DEFAULT_PORT;
  cfg->unix_path = NULL;
  cfg->log_level = LOG_INFO;
  cfg->threads = 1;
  revd_options_init(&cfg->opts);
  opterr = 0; /* we word the errors ourselves, on one line */
  int opt;
  while ((opt = getopt_long(argc, argv, ":", long_options, NULL)) != -1) {
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

/* Closes a signal handle if start_signals() got as far as opening it. */
static void signal_close(uv_signal_t *sig) {
  if (sig->type == UV_SIGNAL && !uv_is_closing((uv_handle_t *)sig))
    uv_close((uv_handle_t *)sig, NULL);
}

static void server_closed_cb(revd_server_t *srv, void *arg) {
  struct daemon *d = arg;
  (void)srv;
  d->srv = NULL;
  signal_close(&d->sigint);
  signal_close(&d->sigterm);
}

/* Every counter, so none drifts out of the stop line. */
static void log_stats(const revd_stats_t *st) {
  char line[1024];
  size_t used = 0;
#define FORMAT(field, kind, name, help)                                                      \
  if (used < sizeof line)                                                                    \
    used += (size_t)snprintf(line + used, sizeof line - used, " " #field "=%llu",           \
                             (unsigned long long)st->field);
  REVD_STATS_MAP(FORMAT)
#undef FORMAT
  log_at(LOG_INFO, "stats:%s", line);
}

static void signal_cb(uv_signal_t *sig, int signum) {
  struct daemon *d = sig->data;
  if (d->stopping) {
    log_at(LOG_WARN, "%s again: exiting without waiting", strsignal(signum));
    exit(1);
  }
  d->stopping = 1;
  log_at(LOG_INFO, "%s: closing (in-flight exchanges may finish)", strsignal(signum));
  revd_server_stats(d->srv, &d->final);
  workers_request_stop(d->workers);
  if (d->metrics)
    revd_metrics_close(d->metrics, NULL, NULL);
  d->metrics = NULL;
  revd_server_close(d->srv, server_closed_cb, d);
}

static int start_signals(struct daemon *d) {
  int r = uv_signal_init(&d->loop, &d->sigint);
  if (r == 0)
    r = uv_signal_init(&d->loop, &d->sigterm);
  d->sigint.data = d->sigterm.data = d;
  if (r == 0)
    r = uv_signal_start(&d->sigint, signal_cb, SIGINT);
  if (r == 0)
    r = uv_signal_start(&d->sigterm, signal_cb, SIGTERM);
  if (r != 0)
    log_at(LOG_ERROR, "signals: %s", revd_strerror(r));
  return r;
}

static void report_listening(const struct daemon *d) {
  struct sockaddr_storage ss;
  char name[128];
  if (d->cfg.unix_path) {
    log_at(LOG_ALWAYS, "listening on %s", d->cfg.unix_path);
    return;
  }
  if (revd_server_getsockname(d->srv, &ss) == 0 &&
      revd_format_addr((struct sockaddr *)&ss, name, sizeof name) == 0)
    log_at(LOG_ALWAYS, "listening on %s", name);
  log_at(LOG_DEBUG, "mode %s, reverse %s, %u thread%s", revd_mode_name(d->cfg.opts.mode),
         revd_reverse_name(d->cfg.opts.reverse), d->cfg.threads, d->cfg.threads > 1 ? "s" : "");
}

static void collect_stats(revd_stats_t *out, void *arg) {
  struct daemon *d = arg;
  if (d->srv)
    revd_server_stats(d->srv, out);
  workers_collect(d->workers, out);
}

static int start_metrics(struct daemon *d) {
  struct sockaddr_storage addr = d->cfg.metrics_addr;
  char name[128];
  if (!d->cfg.metrics)
    return 0;
  int r = revd_metrics_new(&d->loop, (struct sockaddr *)&addr, collect_stats, d, &d->metrics);
  if (r == 0)
    r = revd_metrics_getsockname(d->metrics, &addr);
  revd_format_addr((struct sockaddr *)&addr, name, sizeof name);
  if (r != 0)
    log_at(LOG_ERROR, "metrics %s: %s", name, revd_strerror(r));
  else
    log_at(LOG_INFO, "metrics on http://%s/metrics", name);
  return r;
}

/* --threads: more servers on the address the main one got (port 0 resolved). */
static int start_workers(struct daemon *d) {
  struct sockaddr_storage bound;
  if (d->cfg.threads < 2)
    return 0;
  int r = revd_server_getsockname(d->srv, &bound);
  if (r == 0)
    r = workers_start(d->cfg.threads - 1, &d->cfg.opts, (struct sockaddr *)&bound, &d->workers);
  if (r != 0)
    log_at(LOG_ERROR, "threads: %s", revd_strerror(r));
  return r;
}

/* Binds as configured; on failure says "listen WHERE: why". */
static int listen_configured(struct daemon *d) {
  int r;
  if (d->cfg.unix_path) {
    r = revd_server_listen_unix(d->srv, d->cfg.unix_path);
    if (r != 0)
      log_at(LOG_ERROR, "listen %s: %s", d->cfg.unix_path, revd_strerror(r));
    return r;
  }
  r = revd_server_listen(d->srv, (struct sockaddr *)&d->cfg.listen_addr);
  if (r != 0) {
    char name[128];
    revd_format_addr((struct sockaddr *)&d->cfg.listen_addr, name, sizeof name);
    log_at(LOG_ERROR, "listen %s: %s", name, revd_strerror(r));
  }
  return r;
}

int main(int argc, char **argv) {
  static struct daemon d;
  int r = parse_args(argc, argv, &d.cfg);
  if (r != 0)
    return r == 1 ? 0 : 2;
  log_level = d.cfg.log_level;
  signal(SIGPIPE, SIG_IGN); /* a client gone mid-write is an error code, not a death */
  setvbuf(stderr, NULL, _IOLBF, 0);

  if ((r = uv_loop_init(&d.loop)) != 0) {
    log_at(LOG_ERROR, "loop: %s", revd_strerror(r));
    return 1;
  }
  if ((r = revd_server_new(&d.loop, &d.cfg.opts, &d.srv)) != 0) {
    log_at(LOG_ERROR, "server: %s", revd_strerror(r));
    return 1;
  }
  if (listen_configured(&d) != 0 || start_signals(&d) != 0 || start_workers(&d) != 0 ||
      start_metrics(&d) != 0) {
    workers_request_stop(d.workers);
    workers_join(d.workers, NULL);
    if (d.metrics)
      revd_metrics_close(d.metrics, NULL, NULL);
    revd_server_close(d.srv, server_closed_cb, &d);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    uv_loop_close(&d.loop);
    return 1;
  }
  report_listening(&d);
  uv_run(&d.loop, UV_RUN_DEFAULT);
  workers_join(d.workers, &d.final);
  log_stats(&d.final);
  r = uv_loop_close(&d.loop);
  if (r != 0)
    log_at(LOG_WARN, "loop close: %s", revd_strerror(r));
  log_at(LOG_INFO, "stopped");
  return 0;
}
