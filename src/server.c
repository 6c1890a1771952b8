/* server.c — the public revd_server_* calls: options, the server's life,
 * stats, and the wind-down at close.  The work is elsewhere: listener.c
 * accepts, conn.c runs each connection, proto_*.c is the mode. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "internal.h"

/* What listen(2) may take at most; the kernel clamps larger values to it. */
#define SOMAXCONN_PATH "/proc/sys/net/core/somaxconn"
#define BACKLOG_FALLBACK 4096

static const struct revd__proto *const protos[] = {
    [REVD_MODE_CHUNK] = &revd__proto_chunk,
    [REVD_MODE_EOF] = &revd__proto_eof,
    [REVD_MODE_LINE] = &revd__proto_line,
};

/* The kernel's accept-queue limit, so a burst of clients is not refused
 * at 511 while the kernel would take more. */
static int kernel_backlog(void) {
  int n = 0;
  FILE *f = fopen(SOMAXCONN_PATH, "re");
  if (f) {
    if (fscanf(f, "%d", &n) != 1)
      n = 0;
    fclose(f);
  }
  return n > 0 ? n : BACKLOG_FALLBACK;
}

void revd_options_init(revd_options_t *opts) {
  memset(opts, 0, sizeof *opts);
  opts->mode = REVD_MODE_CHUNK;
  opts->reverse = REVD_REVERSE_BYTES;
  opts->max_message = (size_t)64 * 1024 * 1024;
  opts->max_conns = 0;
  opts->idle_timeout_ms = 60000;
  opts->linger_ms = 2000;
  opts->backlog = kernel_backlog();
  opts->drain_timeout_ms = 5000;
  opts->unix_mode = 0660;
  opts->max_conns_per_ip = 0;
  opts->defer_accept = REVD_DEFER_AUTO;
  opts->max_buffered = (size_t)(uv_get_total_memory() / 8);
}

static int options_valid(const revd_options_t *o) {
  return o->mode >= REVD_MODE_CHUNK && o->mode <= REVD_MODE_LINE &&
         o->reverse >= REVD_REVERSE_BYTES && o->reverse <= REVD_REVERSE_GRAPHEMES &&
         o->max_message > 0 && o->backlog > 0 && o->unix_mode <= 07777 &&
         o->defer_accept >= REVD_DEFER_AUTO && o->defer_accept <= 1;
}

int revd_server_new(uv_loop_t *loop, const revd_options_t *opts, revd_server_t **out) {
  if (!loop || !out)
    return UV_EINVAL;
  revd_options_t defaults;
  if (!opts) {
    revd_options_init(&defaults);
    opts = &defaults;
  }
  if (!options_valid(opts))
    return UV_EINVAL;
  revd_server_t *srv = calloc(1, sizeof *srv);
  if (!srv)
    return UV_ENOMEM;
  srv->loop = loop;
  srv->opts = *opts;
  srv->proto = protos[opts->mode]; /* the one place the mode is decided */
  int r = uv_timer_init(loop, &srv->timer);
  if (r != 0) {
    free(srv);
    return r;
  }
  uv_timer_init(loop, &srv->trim_timer); /* cannot fail once a timer could be made */
  uv_unref((uv_handle_t *)&srv->trim_timer); /* never what keeps the host's loop alive */
  srv->handles_open = 2; /* the timers */
  *out = srv;
  return 0;
}

static int listener_check(const revd_server_t *srv) {
  if (srv->closing)
    return UV_EINVAL;
  return srv->listener.kind != LISTENER_NONE ? UV_EBUSY : 0;
}

int revd_server_listen(revd_server_t *srv, const struct sockaddr *addr) {
  int r = listener_check(srv);
  if (r != 0)
    return r;
  if (addr->sa_family == AF_UNIX)
    return revd__listen_unix(srv, ((const struct sockaddr_un *)addr)->sun_path);
  if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)
    return UV_EAFNOSUPPORT;
  return revd__listen_tcp(srv, addr);
}

int revd_server_listen_unix(revd_server_t *srv, const char *path) {
  int r = listener_check(srv);
  return r != 0 ? r : revd__listen_unix(srv, path);
}

int revd_server_listen_fd(revd_server_t *srv, uv_os_sock_t fd) {
  int r = listener_check(srv);
  return r != 0 ? r : revd__listen_fd(srv, fd);
}

int revd_server_getsockname(const revd_server_t *srv, struct sockaddr_storage *out) {
  if (srv->listener.kind != LISTENER_TCP || !srv->listener.open)
    return UV_EINVAL;
  int len = sizeof *out;
  return uv_tcp_getsockname(&srv->listener.h.tcp, (struct sockaddr *)out, &len);
}

void revd_server_stats(const revd_server_t *srv, revd_stats_t *out) { *out = srv->stats; }

/* ---- closing ---------------------------------------------------------- */

static void maybe_finish_close(revd_server_t *srv);

static void timer_close_cb(uv_handle_t *h) {
  revd__server_handle_closed(container_of((uv_timer_t *)h, revd_server_t, timer));
}

static void trim_timer_close_cb(uv_handle_t *h) {
  revd__server_handle_closed(container_of((uv_timer_t *)h, revd_server_t, trim_timer));
}

void revd__server_handle_closed(revd_server_t *srv) {
  srv->handles_open--;
  maybe_finish_close(srv);
}

/* Once the last connection is gone the timer closes; once every handle is
 * closed, the caller's callback runs (libuv's order: before the memory goes). */
static void maybe_finish_close(revd_server_t *srv) {
  if (!srv->closing)
    return;
  if (srv->stats.active == 0 && !uv_is_closing((uv_handle_t *)&srv->timer)) {
    uv_close((uv_handle_t *)&srv->timer, timer_close_cb);
    uv_close((uv_handle_t *)&srv->trim_timer, trim_timer_close_cb);
  }
  if (srv->handles_open > 0)
    return;
  revd__conn_free_all(srv);
  revd__ip_table_free(srv);
  if (srv->close_cb)
    srv->close_cb(srv, srv->close_arg);
  free(srv->listener.unix_path);
  free(srv);
}

void revd_server_close(revd_server_t *srv, void (*cb)(revd_server_t *, void *), void *arg) {
  if (srv->closing)
    return;
  srv->closing = 1;
  srv->close_cb = cb;
  srv->close_arg = arg;
  revd__listener_close(srv);
  /* Connections waiting for the rest of a message are passed by: they
   * answer within REVD__REST_WAIT_MS, and their drain starts then. */
  while (srv->deadlines[DEADLINE_IDLE].head)
    revd__conn_wind_down(srv->deadlines[DEADLINE_IDLE].head);
  uv_timer_stop(&srv->timer);
  revd__timer_arm(srv);
  maybe_finish_close(srv);
}
