#include "args.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "app/cli.h"
#include "revd.h"

#define PROG "revbench"

static void usage(FILE *out) {
  fprintf(out,
          "usage: revbench [OPTION]...\n"
          "Load a reverse-protocol server and verify every reply.\n"
          "\n"
          "  --host H           server address (default " REVD_DEFAULT_HOST ")\n"
          "  --port P           server port (default %d)\n"
          "  -c CONNS           exchanges in flight at most (default 10)\n"
          "  -d SECONDS         run this long (default 10)\n"
          "  -n COUNT           or run this many exchanges in all\n"
          "  -s BYTES|MIN:MAX   message size, or a range picked per exchange (default 64;\n"
          "                     k, m suffixes; chunk mode at most 65536)\n"
          "  -t THREADS         threads, one event loop each (default 1)\n"
          "  --rate PER_SEC     open loop: start exchanges on this fixed schedule and\n"
          "                     measure latency from each one's scheduled start\n"
          "  --mode M           chunk (default), eof, or line (many lines per connection)\n"
          "  --lines N          line mode: lines per connection (default 100)\n"
          "  --timeout MS       an exchange not done in MS counts as a timeout (default 5000)\n"
          "  --sweep C1,C2,...  run once per concurrency level (-d each); CSV rows on\n"
          "                     stdout (or --csv FILE); plot with bench/plot-sweep.sh\n"
          "  --csv FILE         where --sweep writes its rows\n"
          "  --json             print the result as one JSON object on stdout\n"
          "  --no-progress      no live line on stderr\n"
          "  --help, --version\n"
          "\n"
          "Exit status: 0 when the run completed with no mismatch and at least one good\n"
          "exchange; 1 on mismatches, when nothing succeeded, or on a runtime failure;\n"
          "2 on bad usage.  Ctrl-C stops the run and prints what ran so far.\n",
          REVD_DEFAULT_PORT);
}

enum {
  OPT_HOST = 256, OPT_PORT, OPT_RATE, OPT_MODE, OPT_LINES, OPT_TIMEOUT, OPT_SWEEP, OPT_CSV,
  OPT_JSON, OPT_NO_PROGRESS, OPT_HELP, OPT_VERSION
};

static const struct option long_options[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"rate", required_argument, NULL, OPT_RATE},
    {"mode", required_argument, NULL, OPT_MODE},
    {"lines", required_argument, NULL, OPT_LINES},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"sweep", required_argument, NULL, OPT_SWEEP},
    {"csv", required_argument, NULL, OPT_CSV},
    {"json", no_argument, NULL, OPT_JSON},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

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
    if (cli_number(PROG, "--sweep", item, 1, MAX_CONNS, 0, &cfg->sweep[cfg->nsweep]) < 0)
      return -1;
    cfg->nsweep++;
    if (!comma)
      return 0;
    p = comma + 1;
  }
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
  case OPT_PORT:
    if (cli_number(PROG, "--port", arg, 1, 65535, 0, &v) < 0) return -1;
    cfg->port = (int)v;
    return 0;
  case 'c': return cli_number(PROG, "-c", arg, 1, MAX_CONNS, 0, &cfg->conns);
  case 'd':
    *seen_d = 1;
    return cli_number(PROG, "-d", arg, 1, 365u * 86400u, 0, &cfg->seconds);
  case 'n': return cli_number(PROG, "-n", arg, 1, UINT64_MAX / 2, 0, &cfg->count);
  case 's': return parse_size(arg, cfg);
  case 't': return cli_number(PROG, "-t", arg, 1, 256, 0, &cfg->threads);
  case OPT_RATE: return cli_number(PROG, "--rate", arg, 1, 100000000, 0, &cfg->rate);
  case OPT_MODE:
    if ((r = cli_mode(PROG, arg)) < 0) return -1;
    cfg->mode = r;
    return 0;
  case OPT_LINES: return cli_number(PROG, "--lines", arg, 1, 1000000000, 0, &cfg->lines);
  case OPT_TIMEOUT:
    return cli_number(PROG, "--timeout", arg, 1, 3600000, 0, &cfg->timeout_ms);
  case OPT_SWEEP: return parse_sweep(arg, cfg);
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
  if (revd_parse_addr(cfg->host, cfg->port, &cfg->addr) != 0)
    return cli_usage_error(PROG, "invalid --host '%s': expected an IPv4 or IPv6 address",
                           cfg->host);
  return 0;
}

int bench_parse_args(int argc, char **argv, struct bench_config *cfg, FILE *out) {
  defaults(cfg);
  int seen_d = 0, opt;
  opterr = 0;
  optind = 1; /* callable more than once (the tests do) */
  while ((opt = getopt_long(argc, argv, ":c:d:n:s:t:", long_options, NULL)) != -1) {
    if (opt == OPT_HELP) {
      usage(out);
      return 1;
    }
    if (opt == OPT_VERSION) {
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
