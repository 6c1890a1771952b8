/* revd — the daemon: sockets (bound or inherited from systemd), signals,
 * readiness and the drain around librevd.  Options are in options.c, log
 * lines in log.c, the once-a-second report in monitor.c. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "log.h"
#include "monitor.h"
#include "options.h"
#include "systemd.h"
#include "workers.h"
#include "revd.h"

/* A socket's name as socket_name() writes it: a Unix path fits whole. */
#define SOCKET_NAME_SIZE 160

/* Sockets systemd may hand over; one server each on the main loop. */
#define MAX_LISTENERS 16

struct daemon {
  struct daemon_config cfg;
  uv_loop_t loop;
  revd_server_t *srv[MAX_LISTENERS];
  unsigned nsrv;           /* servers created */
  unsigned open_srv;       /* servers not closed yet */
  int inherited;           /* the sockets came from systemd */
  struct workers *workers; /* --threads: the loops beyond this one */
  revd_metrics_t *metrics;
  struct monitor monitor;
  revd_stats_t final;      /* the servers' counters as each closed (the workers' added at join) */
  uint64_t cut_before_stop; /* cut_short, every thread's, when the stop signal came */
  uv_signal_t sigint, sigterm, sighup, sigusr1;
  uint64_t stop_started;   /* uv_now() at the stop signal */
  int stopping;
};

/* Adds the counters of the servers on the main loop to *out. */
static void collect_main(const struct daemon *d, revd_stats_t *out) {
  revd_stats_t st;
  for (unsigned i = 0; i < d->nsrv; i++) {
    if (d->srv[i]) {
      revd_server_stats(d->srv[i], &st);
      revd_stats_add(out, &st);
    }
  }
}

/* Every thread's (the workers' as they published them within a second). */
static void collect_stats(revd_stats_t *out, void *arg) {
  struct daemon *d = arg;
  collect_main(d, out);
  workers_collect(d->workers, out);
}

static void handle_close(uv_handle_t *h) {
  if (h->type != UV_UNKNOWN_HANDLE && !uv_is_closing(h))
    uv_close(h, NULL);
}

static void close_daemon_handles(struct daemon *d) {
  handle_close((uv_handle_t *)&d->sigint);
  handle_close((uv_handle_t *)&d->sigterm);
  handle_close((uv_handle_t *)&d->sighup);
  handle_close((uv_handle_t *)&d->sigusr1);
  monitor_close(&d->monitor);
}

/* Says how the drain went, from the counters every thread's servers closed
 * with (so: once the workers are joined). */
static void log_drain(struct daemon *d) {
  uv_update_time(&d->loop);
  unsigned long long cut = (unsigned long long)(d->final.cut_short - d->cut_before_stop);
  unsigned long long took = (unsigned long long)(uv_now(&d->loop) - d->stop_started);
  if (cut == 0)
    log_at(LOG_INFO, "drained: every exchange in flight finished in %llu ms", took);
  else
    log_at(LOG_WARN, "drain timeout (%u ms): %llu connections cut short",
           d->cfg.opts.drain_timeout_ms, cut);
}

/* A server is still readable in its close callback: its counters now
 * include every exchange finished during the drain. */
static void server_closed_cb(revd_server_t *srv, void *arg) {
  struct daemon *d = arg;
  revd_stats_t st;
  revd_server_stats(srv, &st);
  revd_stats_add(&d->final, &st);
  for (unsigned i = 0; i < d->nsrv; i++)
    if (d->srv[i] == srv)
      d->srv[i] = NULL;
  if (--d->open_srv > 0)
    return;
  close_daemon_handles(d);
}

static void close_servers(struct daemon *d) {
  d->open_srv = 0;
  for (unsigned i = 0; i < d->nsrv; i++)
    if (d->srv[i])
      d->open_srv++;
  for (unsigned i = 0; i < d->nsrv; i++)
    if (d->srv[i])
      revd_server_close(d->srv[i], server_closed_cb, d);
  if (d->open_srv == 0)
    close_daemon_handles(d);
}

static const char *signal_name(int signum) {
  switch (signum) {
  case SIGINT: return "SIGINT";
  case SIGTERM: return "SIGTERM";
  case SIGHUP: return "SIGHUP";
  case SIGUSR1: return "SIGUSR1";
  default: return strsignal(signum);
  }
}

static void stop(struct daemon *d, int signum) {
  d->stopping = 1;
  log_at(LOG_INFO, "%s: closing (exchanges in flight may finish within %u ms)", signal_name(signum),
         d->cfg.opts.drain_timeout_ms);
  notify("STOPPING=1");
  revd_stats_t now;
  memset(&now, 0, sizeof now);
  collect_stats(&now, d); /* the workers' as of their last publication, within 1 s */
  d->cut_before_stop = now.cut_short;
  memset(&d->final, 0, sizeof d->final); /* filled as the servers close */
  workers_request_stop(d->workers);
  if (d->metrics)
    revd_metrics_close(d->metrics, NULL, NULL);
  d->metrics = NULL;
  d->stop_started = uv_now(&d->loop);
  close_servers(d);
}

static void signal_cb(uv_signal_t *sig, int signum) {
  struct daemon *d = sig->data;
  if (signum == SIGHUP || signum == SIGUSR1) {
    revd_stats_t st;
    memset(&st, 0, sizeof st);
    collect_stats(&st, d);
    char what[32];
    snprintf(what, sizeof what, "%s: status", signal_name(signum));
    monitor_log_counters(LOG_ALWAYS, what, &st);
    return;
  }
  if (d->stopping) {
    log_at(LOG_WARN, "%s again: exiting without waiting", signal_name(signum));
    exit(1);
  }
  stop(d, signum);
}

static int start_signal(struct daemon *d, uv_signal_t *sig, int signum) {
  int r = uv_signal_init(&d->loop, sig);
  sig->data = d;
  if (r == 0)
    r = uv_signal_start(sig, signal_cb, signum);
  return r;
}

static int start_signals(struct daemon *d) {
  int r = start_signal(d, &d->sigint, SIGINT);
  if (r == 0)
    r = start_signal(d, &d->sigterm, SIGTERM);
  if (r == 0)
    r = start_signal(d, &d->sighup, SIGHUP);
  if (r == 0)
    r = start_signal(d, &d->sigusr1, SIGUSR1);
  if (r != 0)
    log_at(LOG_ERROR, "signals: %s", revd_strerror(r));
  return r;
}

/* "127.0.0.1:7342", "[::1]:7342" or a Unix socket's path, of any socket. */
static void socket_name(int fd, char *buf, size_t size) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  snprintf(buf, size, "fd %d", fd);
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
    return;
  if (ss.ss_family == AF_UNIX) {
    const struct sockaddr_un *un = (const struct sockaddr_un *)&ss;
    if (len > offsetof(struct sockaddr_un, sun_path) && un->sun_path[0] != '\0')
      snprintf(buf, size, "%.*s", (int)sizeof un->sun_path, un->sun_path);
    return;
  }
  revd_format_addr((struct sockaddr *)&ss, buf, size);
}

static void report_listening(const struct daemon *d) {
  struct sockaddr_storage ss;
  char name[SOCKET_NAME_SIZE];
  if (d->inherited) {
    for (unsigned i = 0; i < d->nsrv; i++) {
      socket_name(ACTIVATION_FD_START + (int)i, name, sizeof name);
      log_at(LOG_ALWAYS, "listening on %s (fd %u from systemd socket activation)", name,
             ACTIVATION_FD_START + i);
    }
  } else if (d->cfg.unix_path) {
    log_at(LOG_ALWAYS, "listening on %s (mode %04o)", d->cfg.unix_path, d->cfg.opts.unix_mode);
  } else if (revd_server_getsockname(d->srv[0], &ss) == 0 &&
             revd_format_addr((struct sockaddr *)&ss, name, sizeof name) == 0) {
    log_at(LOG_ALWAYS, "listening on %s", name);
  }
  log_at(LOG_DEBUG, "mode %s, reverse %s, %u thread%s, systemd support %s",
         revd_mode_name(d->cfg.opts.mode), revd_reverse_name(d->cfg.opts.reverse), d->cfg.threads,
         d->cfg.threads > 1 ? "s" : "", systemd_support);
}

/* The effective --max-buffered, so an operator sees what the default came to. */
static void report_budget(const struct daemon *d) {
  size_t b = d->cfg.opts.max_buffered;
  if (b == 0)
    log_at(LOG_INFO, "memory budget: no limit on buffered messages and replies (--max-buffered 0)");
  else
    log_at(LOG_INFO, "memory budget: %.1f MiB (%zu bytes) for buffered messages and replies "
                     "(--max-buffered)", (double)b / (1024.0 * 1024.0), b);
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

/* --threads: more servers, on the address the main one got (port 0
 * resolved) or on copies of the one inherited socket. */
static int start_workers(struct daemon *d) {
  struct sockaddr_storage bound;
  if (d->cfg.threads < 2)
    return 0;
  int r;
  if (d->inherited && d->nsrv > 1)
    r = UV_ENOTSUP;
  else if (d->inherited)
    r = workers_start(d->cfg.threads - 1, &d->cfg.opts, NULL, ACTIVATION_FD_START, &d->workers);
  else if ((r = revd_server_getsockname(d->srv[0], &bound)) == 0)
    r = workers_start(d->cfg.threads - 1, &d->cfg.opts, (struct sockaddr *)&bound, -1,
                      &d->workers);
  if (r == UV_ENOTSUP)
    log_at(LOG_ERROR, "threads: --threads with more than one inherited socket is not supported");
  else if (r != 0)
    log_at(LOG_ERROR, "threads: %s", revd_strerror(r));
  return r;
}

static int new_server(struct daemon *d) {
  int r = revd_server_new(&d->loop, &d->cfg.opts, &d->srv[d->nsrv]);
  if (r != 0)
    log_at(LOG_ERROR, "server: %s", revd_strerror(r));
  else
    d->nsrv++;
  return r;
}

/* Serves the sockets systemd passed, one server each.  Returns 0 when there
 * were some (d->inherited set), 1 when there were none, or an error. */
static int listen_inherited(struct daemon *d) {
  int bad_fd = -1;
  int n = activation_fds(&bad_fd);
  if (n == UV_ENOTSOCK) {
    log_at(LOG_ERROR, "socket activation: fd %d is not a listening stream socket", bad_fd);
    return n;
  }
  if (n < 0) {
    log_at(LOG_ERROR, "socket activation: %s", revd_strerror(n));
    return n;
  }
  if (n == 0) {
    if (getenv("LISTEN_FDS"))
      log_at(LOG_DEBUG, "LISTEN_FDS ignored: not for this process, or built without systemd "
                        "support (%s)", systemd_support);
    return 1;
  }
  if (n > MAX_LISTENERS) {
    log_at(LOG_ERROR, "socket activation: %d sockets, at most %d", n, MAX_LISTENERS);
    return UV_EINVAL;
  }
  d->inherited = 1;
  for (int i = 0; i < n; i++) {
    char name[SOCKET_NAME_SIZE];
    int fd = ACTIVATION_FD_START + i, r;
    socket_name(fd, name, sizeof name);
    if ((r = new_server(d)) != 0)
      return r;
    if ((r = revd_server_listen_fd(d->srv[d->nsrv - 1], fd)) != 0) {
      log_at(LOG_ERROR, "listen %s (fd %d from systemd): %s", name, fd, revd_strerror(r));
      return r;
    }
  }
  return 0;
}

/* Binds as configured; on failure says "listen WHERE: why". */
static int listen_configured(struct daemon *d) {
  char name[128];
  const char *where = name;
  int r = new_server(d);
  if (r != 0)
    return r;
  if (d->cfg.unix_path) {
    r = revd_server_listen_unix(d->srv[0], d->cfg.unix_path);
    where = d->cfg.unix_path;
  } else {
    r = revd_server_listen(d->srv[0], (struct sockaddr *)&d->cfg.listen_addr);
    revd_format_addr((struct sockaddr *)&d->cfg.listen_addr, name, sizeof name);
  }
  if (r != 0)
    log_at(LOG_ERROR, "listen %s: %s", where, revd_strerror(r));
  return r;
}

static int start(struct daemon *d) {
  int r = listen_inherited(d);
  if (r == 1)
    r = listen_configured(d);
  if (r == 0)
    r = start_signals(d);
  if (r == 0)
    r = start_workers(d);
  if (r == 0)
    r = start_metrics(d);
  if (r == 0 && (r = monitor_start(&d->monitor, &d->loop, collect_stats, d)) != 0)
    log_at(LOG_ERROR, "timer: %s", revd_strerror(r));
  return r;
}

/* A start that failed half-way: close what opened, let the loop finish it. */
static int abandon(struct daemon *d) {
  workers_request_stop(d->workers);
  workers_join(d->workers, NULL);
  if (d->metrics)
    revd_metrics_close(d->metrics, NULL, NULL);
  close_servers(d);
  uv_run(&d->loop, UV_RUN_DEFAULT);
  uv_loop_close(&d->loop);
  return 1;
}

int main(int argc, char **argv) {
  static struct daemon d;
  int r = options_parse(argc, argv, &d.cfg);
  if (r != 0)
    return r == 1 ? 0 : 2;
  log_init(d.cfg.log_level);
  signal(SIGPIPE, SIG_IGN); /* a client gone mid-write is an error code, not a death */

  if ((r = uv_loop_init(&d.loop)) != 0) {
    log_at(LOG_ERROR, "loop: %s", revd_strerror(r));
    return 1;
  }
  if (start(&d) != 0)
    return abandon(&d);
  report_listening(&d);
  report_budget(&d);
  notify("READY=1\nSTATUS=serving, no connections yet");
  uv_run(&d.loop, UV_RUN_DEFAULT);
  workers_join(d.workers, &d.final);
  if (d.stopping)
    log_drain(&d);
  monitor_log_counters(LOG_INFO, "stopped", &d.final);
  r = uv_loop_close(&d.loop);
  if (r != 0)
    log_at(LOG_WARN, "loop close: %s", revd_strerror(r));
  return 0;
}
