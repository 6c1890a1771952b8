#include "args.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <sys/un.h>

#include "app/cli.h"
#include "revd.h"

#define PROG "revbench"

static void usage(FILE *out) {
  fprintf(out,
          "usage: revbench [OPTION]...\n"
          "Load a reverse (or echo) server and verify every reply.\n"
          "\n"
          "  --host H           server address (default " REVD_DEFAULT_HOST ")\n"
          "  --port P           server port (default %d)\n"
          "  --unix PATH        connect to a Unix domain socket instead of TCP\n"
          "  -c CONNS           exchanges in flight at most (default 10; k suffix: 1k)\n"
          "  -d DURATION        run this long, then start nothing new; exchanges in\n"
          "                     flight get --timeout to finish (default 10; 10s, 2m, 1h)\n"
          "  -n COUNT           or run this many exchanges in all (k, m suffixes)\n"
          "  -s BYTES|MIN:MAX   message size, or a range picked per exchange (default 64;\n"
          "                     k, m suffixes: 1024, 1024^2; chunk mode at most 65536)\n"
          "  -t THREADS         threads, one event loop each (default 1)\n"
          "  --rate PER_SEC     open loop: start exchanges on this fixed schedule and\n"
          "                     measure latency from each one's scheduled start (20k)\n"
          "  --mode M           chunk (default), eof, or line (many lines per connection)\n"
          "  --expect E         reverse (default): replies are the message reversed;\n"
          "                     echo: replies are the message itself (any echo server)\n"
          "  --lines N          line mode: lines per connection (default 100)\n"
          "  --timeout MS       an exchange not done MS after it started counts as a\n"
          "                     timeout (default 5000)\n"
          "  --half-close       chunk mode: shutdown(SHUT_WR) after sending (eof mode\n"
          "                     always does; the classic client does not)\n"
          "  --linger0          close with SO_LINGER 0 once the reply is complete: no\n"
          "                     TIME_WAIT here where revbench closes first (line mode)\n"
          "  --latency          print the full percentile spectrum after the summary\n"
          "  --source ADDR[/BITS]  connect from ADDR, or from each address of the IPv4\n"
          "                     network in turn (127.0.0.0/24 on loopback): TIME_WAIT\n"
          "                     spreads over them (eof mode's long runs)\n"
          "  --sweep C1,C2,...  run once per concurrency level (-d each); CSV rows on\n"
          "                     stdout (or --csv FILE); plot with bench/plot-sweep.sh\n"
          "  --csv FILE         where --sweep writes its rows\n"
          "  --json             print the result as one JSON object on stdout\n"
          "  --no-progress      no live line on stderr\n"
          "  -h, --help         show this help and exit\n"
          "  -V, --version      show the version and exit\n"
          "\n"
          "Exit status: 0 when the run completed with no mismatch and at least one good\n"
          "exchange; 1 on mismatches, when nothing succeeded, when the output could not\n"
          "be written, or on a runtime failure; 2 on bad usage.  Ctrl-C stops the run\n"
          "and prints what ran so far.\n",
          REVD_DEFAULT_PORT);
}

enum {
  OPT_HOST = 256, OPT_PORT, OPT_UNIX, OPT_RATE, OPT_MODE, OPT_EXPECT, OPT_LINES, OPT_TIMEOUT,
  OPT_HALF_CLOSE, OPT_LINGER0, OPT_LATENCY, OPT_SOURCE, OPT_SWEEP, OPT_CSV, OPT_JSON,
  OPT_NO_PROGRESS,
  OPT_HELP, OPT_VERSION /* not 'h' and 'V': cli_getopt_error() tells long from short by >= 256 */
};

static const struct option long_options[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"unix", required_argument, NULL, OPT_UNIX},
    {"rate", required_argument, NULL, OPT_RATE},
    {"mode", required_argument, NULL, OPT_MODE},
    {"expect", required_argument, NULL, OPT_EXPECT},
    {"lines", required_argument, NULL, OPT_LINES},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"half-close", no_argument, NULL, OPT_HALF_CLOSE},
    {"linger0", no_argument, NULL, OPT_LINGER0},
    {"latency", no_argument, NULL, OPT_LATENCY},
    {"source", required_argument, NULL, OPT_SOURCE},
    {"sweep", required_argument, NULL, OPT_SWEEP},
    {"csv", required_argument, NULL, OPT_CSV},
    {"json", no_argument, NULL, OPT_JSON},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* A whole number, then at most one unit from units[] (its multiplier in
 * mult[]).  Returns 0, or -1 after the error line. */
static int parse_with_units(const char *option, const char *text, uint64_t min, uint64_t max,
                            const char *const *units, const uint64_t *mult, const char *hint,
                            uint64_t *out) {
  char *end;
  errno = 0;
  int ok = isdigit((unsigned char)text[0]);
  unsigned long long v = ok ? strtoull(text, &end, 10) : 0;
  ok = ok && errno == 0;
  if (ok && *end != '\0') {
    size_t i = 0;
    while (units[i] && strcasecmp(end, units[i]) != 0)
      i++;
    ok = units[i] != NULL && v <= UINT64_MAX / mult[i];
    if (ok)
      v *= mult[i];
  }
  if (!ok || v < min || v > max) {
    cli_usage_error(PROG, "invalid %s '%s': expected a whole number from %llu to %llu%s", option,
                    text, (unsigned long long)min, (unsigned long long)max, hint);
    return -1;
  }
  *out = v;
  return 0;
}

int bench_parse_count(const char *option, const char *text, uint64_t min, uint64_t max,
                      uint64_t *out) {
  static const char *const units[] = {"k", "m", "g", NULL};
  static const uint64_t mult[] = {1000, 1000000, 1000000000};
  return parse_with_units(option, text, min, max, units, mult, " (k, m, g suffixes: 1k = 1000)",
                          out);
}

int bench_parse_seconds(const char *option, const char *text, uint64_t min, uint64_t max,
                        uint64_t *out) {
  static const char *const units[] = {"s", "m", "h", "d", NULL};
  static const uint64_t mult[] = {1, 60, 3600, 86400};
  return parse_with_units(option, text, min, max, units, mult, " seconds (or 10s, 2m, 1h)", out);
}

#define MAX_CONNS 1000000
#define MAX_SIZE (64u << 20)

static int parse_size(const char *text, struct bench_config *cfg) {
  const char *colon = strchr(text, ':');
  if (!colon)
    return cli_number(PROG, "-s", text, 1, MAX_SIZE, 1, &cfg->size_min) < 0
               ? -1
               : (cfg->size_max = cfg->size_min, 0);
  char lo[32];
  size_t n = (size_t)(colon - text);
  if (n == 0 || n >= sizeof lo) {
    cli_usage_error(PROG, "invalid -s '%s': expected BYTES or MIN:MAX", text);
    return -1;
  }
  memcpy(lo, text, n);
  lo[n] = '\0';
  if (cli_number(PROG, "-s", lo, 1, MAX_SIZE, 1, &cfg->size_min) < 0 ||
      cli_number(PROG, "-s", colon + 1, 1, MAX_SIZE, 1, &cfg->size_max) < 0)
    return -1;
  if (cfg->size_min > cfg->size_max) {
    cli_usage_error(PROG, "invalid -s '%s': MIN is larger than MAX", text);
    return -1;
  }
  return 0;
}

static int parse_sweep(const char *text, struct bench_config *cfg) {
  char item[32];
  const char *p = text;
  cfg->nsweep = 0;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    if (n == 0 || n >= sizeof item || cfg->nsweep == BENCH_MAX_SWEEP) {
      cli_usage_error(PROG, "invalid --sweep '%s': expected up to %d levels like 1,10,100",
                      text, BENCH_MAX_SWEEP);
      return -1;
    }
    memcpy(item, p, n);
    item[n] = '\0';
    if (bench_parse_count("--sweep", item, 1, MAX_CONNS, &cfg->sweep[cfg->nsweep]) < 0)
      return -1;
    cfg->nsweep++;
    if (!comma)
      return 0;
    p = comma + 1;
  }
}

/* --source ADDR or ADDR/BITS (16 to 32 bits: at most 65536 addresses).  A
 * network's first and last addresses are left out from /30 down. */
static int parse_source(const char *text, struct bench_config *cfg) {
  char addr[INET_ADDRSTRLEN];
  const char *slash = strchr(text, '/');
  size_t n = slash ? (size_t)(slash - text) : strlen(text);
  uint64_t bits = 32;
  struct in_addr in;
  if (n >= sizeof addr) {
    cli_usage_error(PROG, "invalid --source '%s': expected an IPv4 address or network", text);
    return -1;
  }
  memcpy(addr, text, n);
  addr[n] = '\0';
  if (inet_pton(AF_INET, addr, &in) != 1) {
    cli_usage_error(PROG, "invalid --source '%s': expected an IPv4 address or network", text);
    return -1;
  }
  if (slash && cli_number(PROG, "--source's BITS", slash + 1, 16, 32, 0, &bits) < 0)
    return -1;
  uint32_t mask = bits == 32 ? UINT32_MAX : ~(UINT32_MAX >> bits);
  cfg->src_first = ntohl(in.s_addr) & mask;
  cfg->src_count = (uint32_t)(UINT64_C(1) << (32 - bits));
  if (bits <= 30) { /* not the network's own address, nor its broadcast */
    cfg->src_first++;
    cfg->src_count -= 2;
  }
  return 0;
}

static void defaults(struct bench_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->host = REVD_DEFAULT_HOST;
  cfg->port = REVD_DEFAULT_PORT;
  cfg->conns = 10;
  cfg->size_min = cfg->size_max = 64;
  cfg->threads = 1;
  cfg->mode = REVD_MODE_CHUNK;
  cfg->lines = 100;
  cfg->timeout_ms = 5000;
  cfg->progress = 1;
}

/* One option into cfg: 0, or -1 after an error line. */
static int apply(struct bench_config *cfg, int opt, const char *arg, int *seen_d) {
  uint64_t v;
  int r;
  switch (opt) {
  case OPT_HOST: cfg->host = arg; return 0;
  case OPT_UNIX: cfg->unix_path = arg; return 0;
  case OPT_PORT:
    if (cli_number(PROG, "--port", arg, 1, 65535, 0, &v) < 0) return -1;
    cfg->port = (int)v;
    return 0;
  case 'c': return bench_parse_count("-c", arg, 1, MAX_CONNS, &cfg->conns);
  case 'd':
    *seen_d = 1;
    return bench_parse_seconds("-d", arg, 1, 365u * 86400u, &cfg->seconds);
  case 'n': return bench_parse_count("-n", arg, 1, UINT64_MAX / 2, &cfg->count);
  case 's': return parse_size(arg, cfg);
  case 't': return cli_number(PROG, "-t", arg, 1, 256, 0, &cfg->threads);
  case OPT_RATE: return bench_parse_count("--rate", arg, 1, 100000000, &cfg->rate);
  case OPT_MODE:
    if ((r = cli_mode(PROG, arg)) < 0) return -1;
    cfg->mode = r;
    return 0;
  case OPT_EXPECT:
    if (strcmp(arg, "reverse") != 0 && strcmp(arg, "echo") != 0) {
      cli_usage_error(PROG, "invalid --expect '%s': expected reverse or echo", arg);
      return -1;
    }
    cfg->expect = strcmp(arg, "echo") == 0 ? EXPECT_ECHO : EXPECT_REVERSE;
    return 0;
  case OPT_LINES: return bench_parse_count("--lines", arg, 1, 1000000000, &cfg->lines);
  case OPT_TIMEOUT:
    return cli_number(PROG, "--timeout", arg, 1, 3600000, 0, &cfg->timeout_ms);
  case OPT_SWEEP: return parse_sweep(arg, cfg);
  case OPT_HALF_CLOSE: cfg->half_close = 1; return 0;
  case OPT_LINGER0: cfg->linger0 = 1; return 0;
  case OPT_LATENCY: cfg->latency = 1; return 0;
  case OPT_SOURCE: return parse_source(arg, cfg);
  case OPT_CSV: cfg->csv = arg; return 0;
  case OPT_JSON: cfg->json = 1; return 0;
  case OPT_NO_PROGRESS: cfg->progress = 0; return 0;
  default: return -1;
  }
}

/* Checks that hold between options. */
static int check(struct bench_config *cfg, int seen_d) {
  if (seen_d && cfg->count)
    return cli_usage_error(PROG, "-d and -n exclude each other: give one");
  if (!cfg->count && !cfg->seconds)
    cfg->seconds = 10;
  if (cfg->mode == REVD_MODE_CHUNK && cfg->size_max > REVD_CHUNK_MAX)
    return cli_usage_error(PROG, "invalid -s: chunk mode messages are at most %d bytes "
                                 "(use --mode eof for larger)", REVD_CHUNK_MAX);
  uint64_t least = cfg->conns;
  for (size_t i = 0; i < cfg->nsweep; i++)
    if (cfg->sweep[i] < least)
      least = cfg->sweep[i];
  if (cfg->threads > least)
    return cli_usage_error(PROG, "-t %llu needs at least as many connections (-c, --sweep)",
                           (unsigned long long)cfg->threads);
  if (cfg->nsweep && cfg->count)
    return cli_usage_error(PROG, "--sweep runs each level for -d seconds: drop -n");
  if (cfg->csv && !cfg->nsweep)
    return cli_usage_error(PROG, "--csv only goes with --sweep");
  if (cfg->half_close && cfg->mode == REVD_MODE_LINE)
    return cli_usage_error(PROG, "--half-close goes with chunk mode (eof mode always "
                                 "half-closes; line mode never does)");
  if (cfg->mode == REVD_MODE_EOF)
    cfg->half_close = 1; /* the server answers at the client's EOF */
  if (cfg->src_count && cfg->unix_path)
    return cli_usage_error(PROG, "--source goes with an IPv4 server, not --unix");
  if (cfg->unix_path) {
    struct sockaddr_un *un = (struct sockaddr_un *)&cfg->addr;
    if (strlen(cfg->unix_path) >= sizeof un->sun_path)
      return cli_usage_error(PROG, "invalid --unix '%s': longer than a socket path may be",
                             cfg->unix_path);
    memset(un, 0, sizeof *un);
    un->sun_family = AF_UNIX;
    strcpy(un->sun_path, cfg->unix_path);
    return 0;
  }
  if (revd_parse_addr(cfg->host, cfg->port, &cfg->addr) != 0)
    return cli_usage_error(PROG, "invalid --host '%s': expected an IPv4 or IPv6 address",
                           cfg->host);
  if (cfg->src_count && cfg->addr.ss_family != AF_INET)
    return cli_usage_error(PROG, "--source goes with an IPv4 server, not '%s'", cfg->host);
  return 0;
}

int bench_parse_args(int argc, char **argv, struct bench_config *cfg, FILE *out) {
  defaults(cfg);
  int seen_d = 0, opt;
  opterr = 0;
  optind = 1; /* callable more than once (the tests do) */
  cfg->argc = argc;
  cfg->argv = argv;
  while ((opt = getopt_long(argc, argv, ":c:d:n:s:t:hV", long_options, NULL)) != -1) {
    if (opt == 'h' || opt == OPT_HELP) {
      usage(out);
      return 1;
    }
    if (opt == 'V' || opt == OPT_VERSION) {
      fprintf(out, "revbench %s\n", REVD_VERSION_STRING);
      return 1;
    }
    if (opt == '?' || opt == ':')
      return cli_getopt_error(PROG, opt, argv);
    if (apply(cfg, opt, optarg, &seen_d) < 0)
      return 2;
  }
  if (optind < argc)
    return cli_usage_error(PROG, "unexpected argument '%s'", argv[optind]);
  return check(cfg, seen_d);
}
