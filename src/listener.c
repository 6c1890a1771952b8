/* listener.c — the listening socket (TCP, Unix, or one inherited from
 * systemd) and accepting: each accepted connection goes to the core
 * (conn.c); one there is no room or memory for is closed at once. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "internal.h"

#define DEFER_SECONDS 1 /* how long the kernel holds a silent client (TCP_DEFER_ACCEPT) */
#define FD_RESERVE 8    /* fds kept free below RLIMIT_NOFILE */

static void connection_cb(uv_stream_t *listener, int status);

/* ---- rejecting ---------------------------------------------------------- */

static void count_rejected(revd_server_t *srv, uint64_t *reason) {
  (*reason)++;
  srv->stats.rejected++;
}

static void spare_close_cb(uv_handle_t *h) {
  revd_server_t *srv = container_of(h, revd_server_t, listener.spare.handle);
  struct listener *l = &srv->listener;
  l->spare_busy = 0;
  if (l->accept_stalled && !srv->closing) {
    l->accept_stalled = 0;
    connection_cb(&l->h.stream, 0);
  }
  revd__server_handle_closed(srv);
}

/* No memory for the connection libuv has accepted: libuv stops watching
 * the listener until uv_accept() takes it, so take it on the spare handle
 * and close it (the client sees a close, not a server gone deaf).  While
 * the spare is closing, its close callback comes back here. */
static void reject_without_memory(revd_server_t *srv) {
  struct listener *l = &srv->listener;
  int r = UV_EBUSY;
  if (!l->spare_busy)
    r = l->kind == LISTENER_UNIX ? uv_pipe_init(srv->loop, &l->spare.pipe, 0)
                                 : uv_tcp_init(srv->loop, &l->spare.tcp);
  if (r != 0) {
    l->accept_stalled = 1;
    return;
  }
  l->spare_busy = 1;
  srv->handles_open++;
  if (uv_accept(&l->h.stream, &l->spare.stream) == 0)
    count_rejected(srv, &srv->stats.rejected_no_memory);
  uv_close(&l->spare.handle, spare_close_cb);
}

/* ---- accepting ------------------------------------------------------------ */

/* libuv could not accept (EMFILE, ENFILE: the fd limit was reached
 * elsewhere in the process first): count it, so an operator sees it. */
static void accept_failed(revd_server_t *srv, int status) {
  if (status == UV_EMFILE || status == UV_ENFILE)
    count_rejected(srv, &srv->stats.rejected_fd_limit);
}

/* At the fd limit libuv accepts and closes what waits (its reserve-fd
 * trick) and says nothing, so those clients would vanish uncounted.  revd
 * stops short of it: a connection whose fd comes within FD_RESERVE of
 * RLIMIT_NOFILE (fds are handed out lowest first, so that many are open)
 * is closed at once and counted, and the reserve stays for the rest of
 * the process (metrics scrapes, logs, the next accept).  The limit is read
 * when listening starts. */
static int past_fd_limit(struct conn *c) {
  uv_os_fd_t fd;
  return uv_fileno(&c->h.handle, &fd) == 0 && (uint64_t)fd >= conn_server(c)->listener.fd_ceiling;
}

static uint64_t fd_ceiling(void) {
  struct rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY)
    return UINT64_MAX;
  return lim.rlim_cur > FD_RESERVE ? (uint64_t)lim.rlim_cur - FD_RESERVE : 0;
}

/* Why c, just accepted, is closed at once: the counter of the reason, or
 * NULL to serve it (counted against its address then). */
static uint64_t *refusal(struct conn *c) {
  revd_server_t *srv = conn_server(c);
  if (past_fd_limit(c))
    return &srv->stats.rejected_fd_limit;
  if (srv->opts.max_conns && srv->stats.active > srv->opts.max_conns)
    return &srv->stats.rejected_max_conns;
  int r = srv->conn_ip_offset ? revd__ip_acquire(c) : 0;
  if (r == UV_EBUSY)
    return &srv->stats.rejected_per_ip;
  return r != 0 ? &srv->stats.rejected_no_memory : NULL;
}

static void connection_cb(uv_stream_t *listener, int status) {
  revd_server_t *srv = container_of(listener, revd_server_t, listener.h.stream);
  if (status < 0) {
    accept_failed(srv, status);
    return;
  }
  if (srv->closing)
    return;
  struct conn *c = revd__conn_new(srv);
  if (!c) {
    reject_without_memory(srv);
    return;
  }
  uint64_t *reason = NULL;
  if (uv_accept(listener, &c->h.stream) != 0 || (reason = refusal(c)) != NULL) {
    if (reason)
      count_rejected(srv, reason);
    revd__conn_close(c);
    return;
  }
  revd__conn_start(c);
}

/* ---- listening ------------------------------------------------------------ */

static void listener_close_cb(uv_handle_t *h) {
  revd_server_t *srv = container_of(h, revd_server_t, listener.h.handle);
  srv->listener.kind = LISTENER_NONE;
  revd__server_handle_closed(srv);
}

void revd__listener_close(revd_server_t *srv) {
  struct listener *l = &srv->listener;
  if (!l->open)
    return;
  l->open = 0;
  uv_close(&l->h.handle, listener_close_cb);
  if (l->unix_path)
    unlink(l->unix_path);
}

/* The listener's handle is open: from here on it must be closed. */
static void listener_opened(revd_server_t *srv, enum listener_kind kind) {
  struct listener *l = &srv->listener;
  l->kind = kind;
  l->open = 1;
  l->fd_ceiling = fd_ceiling();
  srv->handles_open++;
  srv->conn_size = offsetof(struct conn, h) +
                   (kind == LISTENER_UNIX ? sizeof(uv_pipe_t) : sizeof(uv_tcp_t));
  if (kind == LISTENER_TCP && srv->opts.max_conns_per_ip) {
    size_t align = sizeof(void *);
    srv->conn_ip_offset = (srv->conn_size + align - 1) / align * align;
    srv->conn_size = srv->conn_ip_offset + sizeof(struct ip_count *);
  }
}

/* Listens if r (the bind's result) is 0; closes the handle if not. */
static int listener_start(revd_server_t *srv, int r) {
  if (r == 0)
    r = uv_listen(&srv->listener.h.stream, srv->opts.backlog, connection_cb);
  if (r != 0)
    revd__listener_close(srv);
  return r;
}

/* An int option on the listening socket.  Returns 0 or a negative UV_E* code. */
static int set_listener_option(revd_server_t *srv, int level, int name, int value) {
  uv_os_fd_t fd;
  int r = uv_fileno(&srv->listener.h.handle, &fd);
  if (r == 0 && setsockopt(fd, level, name, &value, sizeof value) != 0)
    r = uv_translate_sys_error(errno);
  return r;
}

/* TCP_DEFER_ACCEPT (nginx's `listen ... deferred`): the kernel wakes
 * accept only once data has arrived, or after DEFER_SECONDS for a silent
 * client.  Interactive line mode does without by default. */
static int set_defer_accept(revd_server_t *srv) {
  int on = srv->opts.defer_accept == REVD_DEFER_AUTO ? !srv->proto->interactive
                                                     : srv->opts.defer_accept;
  return set_listener_option(srv, IPPROTO_TCP, TCP_DEFER_ACCEPT, on ? DEFER_SECONDS : 0);
}

/* An inherited socket keeps a setting its owner made (systemd's
 * DeferAcceptSec=); one without gets revd's. */
static int set_defer_accept_inherited(revd_server_t *srv) {
  int seconds = 0;
  socklen_t len = sizeof seconds;
  uv_os_fd_t fd;
  if (uv_fileno(&srv->listener.h.handle, &fd) == 0 &&
      getsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &seconds, &len) == 0 && seconds > 0)
    return 0;
  return set_defer_accept(srv);
}

int revd__listen_tcp(revd_server_t *srv, const struct sockaddr *addr) {
  struct listener *l = &srv->listener;
  int r = uv_tcp_init_ex(srv->loop, &l->h.tcp, addr->sa_family);
  if (r != 0)
    return r;
  listener_opened(srv, LISTENER_TCP);
  /* libuv 1.44 has no flag for SO_REUSEPORT: set it on the socket before bind. */
  r = srv->opts.reuse_port ? set_listener_option(srv, SOL_SOCKET, SO_REUSEPORT, 1) : 0;
  if (r == 0)
    r = uv_tcp_bind(&l->h.tcp, addr, 0);
  if (r == 0)
    r = set_defer_accept(srv);
  return listener_start(srv, r);
}

/* Is a socket file left by a server that is gone?  Nothing accepts on it:
 * connecting is refused. */
static int unix_socket_is_stale(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode))
    return 0;
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  memcpy(sun.sun_path, path, strlen(path) + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return 0;
  int stale = connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0 && errno == ECONNREFUSED;
  close(fd);
  return stale;
}

/* libuv 1.44 turns every bind error of a pipe into EACCES; say what it was. */
static int unix_bind_error(const char *path, int r) {
  char dir[sizeof ((struct sockaddr_un *)NULL)->sun_path];
  const char *slash = strrchr(path, '/');
  if (r != UV_EACCES || !slash)
    return r;
  size_t n = slash == path ? 1 : (size_t)(slash - path);
  memcpy(dir, path, n);
  dir[n] = '\0';
  struct stat st;
  if (stat(dir, &st) != 0)
    return uv_translate_sys_error(errno);
  return S_ISDIR(st.st_mode) ? r : UV_ENOTDIR;
}

int revd__listen_unix(revd_server_t *srv, const char *path) {
  struct listener *l = &srv->listener;
  /* libuv 1.44 truncates a long path silently (binding somewhere else, which
   * close then fails to unlink), and "" binds an unreachable abstract name. */
  if (path[0] == '\0')
    return UV_EINVAL;
  if (strlen(path) >= sizeof ((struct sockaddr_un *)NULL)->sun_path)
    return UV_ENAMETOOLONG;
  char *copy = strdup(path);
  if (!copy)
    return UV_ENOMEM;
  int r = uv_pipe_init(srv->loop, &l->h.pipe, 0);
  if (r != 0) {
    free(copy);
    return r;
  }
  listener_opened(srv, LISTENER_UNIX);
  if (unix_socket_is_stale(path))
    unlink(path);
  r = uv_pipe_bind(&l->h.pipe, path);
  if (r != 0) {
    free(copy);
    return listener_start(srv, unix_bind_error(path, r));
  }
  free(l->unix_path);
  l->unix_path = copy; /* ours now: removed at close, and if listening fails */
  if (chmod(path, srv->opts.unix_mode) != 0)
    r = uv_translate_sys_error(errno);
  return listener_start(srv, r);
}

/* The socket's family decides the handle: a Unix socket needs a uv_pipe_t. */
int revd__listen_fd(revd_server_t *srv, uv_os_sock_t fd) {
  struct listener *l = &srv->listener;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int type;
  socklen_t type_len = sizeof type;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
      getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len) != 0)
    return uv_translate_sys_error(errno);
  if (type != SOCK_STREAM)
    return UV_EINVAL;
  int r;
  if (ss.ss_family == AF_UNIX) {
    if ((r = uv_pipe_init(srv->loop, &l->h.pipe, 0)) != 0)
      return r;
    listener_opened(srv, LISTENER_UNIX);
    return listener_start(srv, uv_pipe_open(&l->h.pipe, fd));
  }
  if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
    return UV_EAFNOSUPPORT;
  if ((r = uv_tcp_init(srv->loop, &l->h.tcp)) != 0)
    return r;
  listener_opened(srv, LISTENER_TCP);
  r = uv_tcp_open(&l->h.tcp, fd);
  if (r == 0)
    r = set_defer_accept_inherited(srv);
  return listener_start(srv, r);
}
