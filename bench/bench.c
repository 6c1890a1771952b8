/* bench.c — the load: one libuv loop per thread, a fixed array of
 * connections per loop, reused from exchange to exchange.
 *
 * Each connection owns its socket (TCP or Unix) and one reply buffer,
 * allocated once: an exchange costs no malloc.  The sockets are not libuv
 * handles: they live in an epoll set of the worker's own, polled as one fd
 * by the worker's libuv loop, so an exchange makes the classic client's
 * syscalls and no more (socket, connect, epoll_ctl ADD, write, epoll_ctl
 * MOD, read, read, close).  The message is a slice of the shared immutable
 * payload, so writing it copies nothing.  When the exchange half-closes (eof
 * mode, --half-close) the write side is shut down with shutdown(2) right
 * after the message.  By default chunk mode does not
 * half-close, like the classic client: the server then closes first, so
 * TIME_WAIT lands on the server's side, not on our ephemeral ports, whose
 * search would otherwise become the bottleneck of every connect().
 *
 * Closed loop: a connection that ends an exchange starts the next one.
 * Open loop (--rate): exchange k is due at t0 + k/rate; a timerfd (ns
 * resolution, unlike libuv's ms timers) wakes the loop, and due exchanges go
 * to free connections, or wait for the next connection to free up.  Either
 * way an exchange's latency counts from when it was due (wrk2's correction
 * for coordinated omission): a stalled server shows as latency, not as a
 * quietly lower rate.  -d is a hard bound in both loops: after it nothing new
 * starts, exchanges in flight get --timeout (counted from their actual start)
 * to finish, and in an open loop the scheduled starts that never happened are
 * counted as not started.
 *
 * Connect errors back off (worker-wide): after one, the worker starts no
 * connection for 10 ms, then lets one through as a probe; each failed probe
 * doubles the pause up to 1 s, a successful connect ends it.  A server that
 * refuses every connect for --timeout ends the run (gave_up).
 */
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <poll.h>
#include <fcntl.h>
#include <unistd.h>
#include <uv.h>

#include "payload.h"
#include "revd.h"

volatile int bench_interrupted;

#define TICK_MS 100 /* timeout scan and progress publishing */
#define BACKOFF_MIN_MS 10
#define BACKOFF_MAX_MS 1000

struct worker;

struct conn {
  struct worker *w;
  int fd;             /* the socket, or -1 */
  uint32_t gen;       /* bumped at every close: an epoll event of a closed socket is stale */
  uint32_t events;    /* what epoll watches fd for (0: not registered) */
  uint64_t t_start;   /* exchange start: when it was due (open loop) or began */
  uint64_t t_connect; /* when connect(2) was called */
  uint64_t deadline;  /* ns; the exchange times out after it */
  size_t off, len;    /* the message: a slice of the payload */
  size_t sent;        /* bytes of it written (and its '\n' in line mode) */
  size_t got;         /* reply bytes so far */
  uint64_t lines;     /* line mode: lines answered on this connection */
  char *buf;          /* reply buffer, cap bytes */
  size_t cap;
  unsigned connected : 1;
  unsigned in_exchange : 1; /* an exchange is counted as started and not ended */
  unsigned idle : 1;        /* on the idle stack (open loop) */
  unsigned parked : 1;      /* on the parked stack (connect back-off) */
  unsigned done : 1;        /* retired: the worker needs it no more */
};

struct worker {
  unsigned id;
  uv_thread_t thread;
  uv_loop_t loop;
  uv_async_t wake;     /* Ctrl-C from the control thread */
  uv_timer_t tick;     /* timeouts, publishing */
  uv_timer_t end;      /* closed loop with -d */
  uv_poll_t sched;     /* open loop: the timerfd */
  uv_timer_t retry;    /* connect back-off */
  int tfd, epfd;
  const struct bench_config *cfg;
  const payload_t *payload;
  struct conn *conns;
  struct conn **idle;
  struct conn **parked; /* waiting out a connect back-off */
  unsigned nconns, nidle, ndone, nparked;
  uint64_t backoff_ms;  /* 0: connects go through */
  uint64_t fail_since;  /* when the current run of connect errors began */
  int probe_allowed;    /* one connect may go through the back-off */
  int gave_up;          /* the server refused everything for --timeout */
  uint64_t quota;      /* closed loop: exchanges this worker may start */
  uint64_t started;
  /* open loop */
  double interval_ns;
  uint64_t t0, next_k, limit_k, max_lag;
  uint64_t not_started; /* due (or counted, -n) but never started */
  int stopping, aborting, finished, loop_ready;
  int first_other; /* the first error counted as "other" */
  uint64_t rng;
  uint64_t src_next;   /* --source: the next address's index */
  uint64_t t_begin, t_last;
  struct bench_counts counts;
  struct bench_mismatch first_mismatch;
  hist_t *lat, *conn_lat, *interval;
  uv_async_t *done_async; /* the control loop's */
  atomic_uint *nfinished; /* the control loop's count of workers done */
  /* what the control thread reads, under mu */
  pthread_mutex_t mu;
  struct bench_counts pub;
  uint64_t pub_time;   /* uv_hrtime() when pub was taken */
  hist_t *pub_interval;
  /* the control thread's own: what the last progress line used */
  uint64_t shown_ok, shown_time;
};

static void conn_next(struct conn *c);
static void conn_close(struct conn *c);
static void worker_maybe_done(struct worker *w);
static void backoff_begin(struct worker *w);
static void backoff_end(struct worker *w);

/* ---- one exchange ----------------------------------------------------- */

/* Sorts a libuv error into its kind; remembers the first "other" one. */
static enum outcome outcome_of(struct worker *w, int err) {
  switch (err) {
  case UV_ECONNRESET:
  case UV_EPIPE: return OUT_RESET;
  case UV_ETIMEDOUT: return OUT_TIMEOUT;
  default:
    if (!w->first_other)
      w->first_other = err;
    return OUT_OTHER;
  }
}

/* Keeps what the first wrong reply looked like, for the summary. */
static void note_mismatch(const struct conn *c) {
  struct bench_mismatch *m = &c->w->first_mismatch;
  const char *want = payload_expected(c->w->payload, c->off, c->len);
  size_t got = c->got, n = got < c->len ? got : c->len, i = 0;
  if (c->w->cfg->mode == REVD_MODE_LINE && got > 0 && c->buf[got - 1] == '\n')
    got--, n = got < c->len ? got : c->len;
  while (i < n && c->buf[i] == want[i])
    i++;
  m->seen = 1;
  m->sent = c->len;
  m->received = got;
  m->first_diff = i;
}

/* --linger0: the reply is complete, so a reset instead of a FIN leaves no
 * TIME_WAIT here when we close first (line mode).  It cannot help a socket
 * that half-closed (eof mode, --half-close): Linux moves it to TIME_WAIT as
 * the server's FIN arrives, before we close.  What it gives up: nothing we
 * still need; the server may count a reset. */
static void linger0(struct conn *c) {
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  if (!c->w->cfg->unix_path && c->fd >= 0)
    (void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

static void exchange_end(struct conn *c, enum outcome how) {
  struct worker *w = c->w;
  if (!c->in_exchange)
    return;
  c->in_exchange = 0;
  uint64_t now = uv_hrtime();
  w->counts.by[how]++;
  if (how == OUT_MISMATCH && w->counts.by[how] == 1)
    note_mismatch(c);
  w->t_last = now;
  if (how == OUT_OK) {
    hist_record(w->lat, now - c->t_start);
    hist_record(w->interval, now - c->t_start);
  }
  if (how == OUT_CONNECT)
    backoff_begin(w);
  int keep = how == OUT_OK && w->cfg->mode == REVD_MODE_LINE && c->connected &&
             ++c->lines < w->cfg->lines && !w->stopping && !w->aborting;
  if (keep) {
    conn_next(c);
    return;
  }
  if (w->cfg->linger0 && (how == OUT_OK || how == OUT_MISMATCH))
    linger0(c);
  conn_close(c);
}

/* The error of the last failed call, as an outcome. */
static enum outcome sys_outcome(struct worker *w) {
  return outcome_of(w, uv_translate_sys_error(errno));
}

/* Has epoll watch c->fd for events (EPOLLIN, EPOLLOUT or both).  The event
 * carries the connection's index and generation. */
static int conn_watch(struct conn *c, uint32_t events) {
  if (events == c->events)
    return 0;
  struct epoll_event ev = {.events = events};
  ev.data.u64 = (uint64_t)(c - c->w->conns) << 32 | c->gen;
  if (epoll_ctl(c->w->epfd, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) < 0)
    return -1;
  c->events = events;
  return 0;
}

static size_t message_total(const struct conn *c) {
  return c->len + (c->w->cfg->mode == REVD_MODE_LINE); /* line mode: and its '\n' */
}

/* Writes what the kernel takes of the message, straight from the shared
 * payload; waits for EPOLLOUT for the rest.  Once all of it is out, reads
 * (half-closing first in eof mode and with --half-close). */
static void send_more(struct conn *c) {
  size_t total = message_total(c);
  while (c->sent < total) {
    struct iovec iov[2];
    int n = 0;
    if (c->sent < c->len)
      iov[n++] = (struct iovec){(char *)payload_message(c->w->payload, c->off) + c->sent,
                                c->len - c->sent};
    if (total > c->len)
      iov[n++] = (struct iovec){(char *)"\n", 1};
    ssize_t r = n == 1 ? write(c->fd, iov[0].iov_base, iov[0].iov_len) : writev(c->fd, iov, n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 && errno == EAGAIN) {
      if (conn_watch(c, EPOLLIN | EPOLLOUT) < 0)
        exchange_end(c, sys_outcome(c->w));
      return;
    }
    if (r < 0) {
      exchange_end(c, sys_outcome(c->w));
      return;
    }
    c->sent += (size_t)r;
  }
  /* Half-close with shutdown(2) at once: eof servers need it; chunk servers
   * answer either way. */
  if ((c->w->cfg->half_close && shutdown(c->fd, SHUT_WR) < 0) || conn_watch(c, EPOLLIN) < 0)
    exchange_end(c, sys_outcome(c->w));
}

static void send_message(struct conn *c) {
  c->got = c->sent = 0;
  c->w->counts.bytes_out += message_total(c);
  send_more(c);
}

static void read_line(struct conn *c, size_t from) {
  char *nl = memchr(c->buf + from, '\n', c->got - from);
  if (!nl) {
    if (c->got > c->len) /* no '\n' where it belongs */
      exchange_end(c, OUT_MISMATCH);
    return;
  }
  size_t line = (size_t)(nl - c->buf);
  int good = line + 1 == c->got &&
             payload_verify(c->w->payload, c->off, c->len, c->buf, line);
  exchange_end(c, good ? OUT_OK : OUT_MISMATCH);
}

/* chunk, eof: the server closed; the reply is all there. */
static void reply_complete(struct conn *c) {
  exchange_end(c, payload_verify(c->w->payload, c->off, c->len, c->buf, c->got) ? OUT_OK
                                                                               : OUT_MISMATCH);
}

static void got_eof(struct conn *c) {
  if (c->got == 0)
    exchange_end(c, OUT_CLOSED);
  else if (c->w->cfg->mode == REVD_MODE_LINE)
    exchange_end(c, OUT_MISMATCH); /* a line cut short */
  else
    reply_complete(c);
}

/* Reads what has come.  chunk and eof read on to EOF or EAGAIN, since the
 * server's FIN usually follows its reply at once; line mode stops at a short
 * read, the next line's reply cannot be there yet. */
static void read_ready(struct conn *c) {
  uint32_t gen = c->gen;
  int line_mode = c->w->cfg->mode == REVD_MODE_LINE;
  for (;;) {
    if (!c->in_exchange) {
      conn_close(c); /* data or EOF between exchanges (line mode, idle) */
      return;
    }
    size_t room = c->cap - c->got, from = c->got;
    ssize_t n = read(c->fd, c->buf + from, room);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return;
    if (n < 0) {
      exchange_end(c, sys_outcome(c->w));
      return;
    }
    if (n == 0) {
      got_eof(c);
      return;
    }
    c->got += (size_t)n;
    c->w->counts.bytes_in += (uint64_t)n;
    if (line_mode)
      read_line(c, from);
    else if (c->got > c->len)
      exchange_end(c, OUT_MISMATCH); /* longer than the message */
    if (c->gen != gen || (line_mode && (size_t)n < room))
      return;
  }
}

static void connected(struct conn *c) {
  c->connected = 1;
  backoff_end(c->w);
  hist_record(c->w->conn_lat, uv_hrtime() - c->t_connect);
  send_message(c);
}

/* One epoll event for c. */
static void conn_event(struct conn *c, uint32_t events) {
  uint32_t gen = c->gen;
  if (!c->connected) {
    /* The connect's outcome.  Refused or reset: EPOLLERR|EPOLLHUP (the
     * error itself is not kept: a connect error is a connect error). */
    if (events & (EPOLLERR | EPOLLHUP))
      exchange_end(c, OUT_CONNECT);
    else if (events & EPOLLOUT)
      connected(c);
    return;
  }
  /* Reading first: a server that answered before taking the whole message
   * (chunk mode, a message larger than its first read) has its reply seen
   * and judged, not hidden behind the EPIPE of the rest of the message. */
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
    read_ready(c);
  if (c->gen == gen && (events & EPOLLOUT) && c->in_exchange && /* gen: not closed since */
      c->sent < message_total(c))
    send_more(c);
}

#define UV_EVENT UINT64_MAX /* the event of libuv's own backend fd in the set */

/* The worker's loop.  The connections' sockets live in an epoll set of the
 * worker's own, and libuv's backend fd (its timers, the open loop's timerfd,
 * the wake-up from Ctrl-C) is one more fd in that set: a batch of events
 * costs one epoll_wait, as in the classic client, and libuv runs
 * (UV_RUN_NOWAIT) only when its fd is ready or its next timer is due.  (A
 * uv_tcp_t per connection costs two syscalls per exchange the classic client
 * does not make, getsockopt(SO_ERROR) after the connect and epoll_ctl(DEL)
 * before the close; a uv_poll_t on the set, a second epoll_wait per batch.) */
static void worker_loop(struct worker *w) {
  struct epoll_event ev[256];
  int alive = uv_run(&w->loop, UV_RUN_NOWAIT);
  while (alive) {
    int timeout = uv_backend_timeout(&w->loop);
    uint64_t due = timeout < 0 ? UINT64_MAX : (uv_now(&w->loop) + (uint64_t)timeout) * 1000000;
    /* libuv's time is the last uv_run's, which busy sockets can leave far
     * behind: wait from now to the due time, not `timeout` more. */
    uint64_t now = uv_hrtime();
    if (timeout > 0)
      timeout = due > now ? (int)((due - now + 999999) / 1000000) : 0;
    int n = epoll_wait(w->epfd, ev, 256, timeout);
    int run_uv = n == 0; /* epoll_wait timed out: a libuv timer is due */
    for (int i = 0; i < n; i++) {
      if (ev[i].data.u64 == UV_EVENT) {
        run_uv = 1;
        continue;
      }
      struct conn *c = &w->conns[ev[i].data.u64 >> 32];
      if (c->fd >= 0 && c->gen == (uint32_t)ev[i].data.u64) /* else closed since */
        conn_event(c, ev[i].events);
    }
    /* w->finished: the handles are closing, and only uv_run closes them */
    if (run_uv || w->finished || (due != UINT64_MAX && uv_hrtime() >= due))
      alive = uv_run(&w->loop, UV_RUN_NOWAIT);
  }
}

static socklen_t addr_len(const struct sockaddr *sa) {
  return sa->sa_family == AF_INET6  ? sizeof(struct sockaddr_in6)
         : sa->sa_family == AF_UNIX ? sizeof(struct sockaddr_un)
                                    : sizeof(struct sockaddr_in);
}

/* --source: binds fd to the next source address, the port left to connect
 * (IP_BIND_ADDRESS_NO_PORT), so each address has the whole ephemeral range
 * and TIME_WAIT spreads over them.  Returns 0 or -1 (errno set). */
static int bind_source(struct worker *w, int fd) {
  const struct bench_config *cfg = w->cfg;
  int one = 1;
  struct sockaddr_in sin = {.sin_family = AF_INET};
  sin.sin_addr.s_addr = htonl(cfg->src_first + (uint32_t)(w->src_next++ % cfg->src_count));
  if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) < 0)
    return -1;
  return bind(fd, (struct sockaddr *)&sin, sizeof sin);
}

/* A nonblocking connect at now; its outcome comes as EPOLLOUT or EPOLLERR. */
static void conn_connect(struct conn *c, uint64_t now) {
  const struct sockaddr *sa = (const struct sockaddr *)&c->w->cfg->addr;
  c->lines = 0;
  c->t_connect = now;
  c->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0 || (c->w->cfg->src_count && bind_source(c->w, c->fd) < 0) ||
      (connect(c->fd, sa, addr_len(sa)) < 0 && errno != EINPROGRESS) ||
      conn_watch(c, EPOLLOUT) < 0)
    exchange_end(c, OUT_CONNECT); /* no ephemeral port left, a Unix backlog full, ... */
}

static void exchange_begin(struct conn *c, uint64_t due) {
  struct worker *w = c->w;
  const struct bench_config *cfg = w->cfg;
  uint64_t now = uv_hrtime();
  c->in_exchange = 1;
  c->t_start = due ? due : now;
  c->deadline = now + cfg->timeout_ms * UINT64_C(1000000);
  c->len = (size_t)rng_range(&w->rng, cfg->size_min, cfg->size_max);
  c->off = (size_t)rng_range(&w->rng, 0, cfg->size_max);
  if (c->connected)
    send_message(c);
  else
    conn_connect(c, now);
}

/* ---- what a free connection does next ---------------------------------- */

/* Closes c's socket (which leaves the epoll set with it) and lets c go on:
 * at once, unlike uv_close, so a closed-loop connection reconnects in the
 * same turn of the loop, as the classic client does. */
static void conn_close(struct conn *c) {
  if (c->fd >= 0) {
    close(c->fd);
    c->fd = -1;
    c->gen++;
    c->events = 0;
    c->connected = 0;
  }
  if (c->idle || c->parked)
    return; /* dropped while waiting on a stack: it reconnects when used */
  conn_next(c);
}

static void conn_retire(struct conn *c) {
  if (c->fd >= 0) {
    conn_close(c); /* conn_next runs again from there */
    return;
  }
  if (!c->done) {
    c->done = 1;
    c->w->ndone++;
    worker_maybe_done(c->w);
  }
}

static int open_loop(const struct worker *w) { return w->cfg->rate != 0; }

static uint64_t due_time(const struct worker *w, uint64_t k) {
  return w->t0 + (uint64_t)((double)k * w->interval_ns);
}

/* Starts the next due exchange on c if one is due.  Returns 1 if it did. */
static int take_due(struct worker *w, struct conn *c, uint64_t now) {
  if (w->next_k >= w->limit_k || due_time(w, w->next_k) > now)
    return 0;
  uint64_t due = due_time(w, w->next_k++);
  if (now - due > w->max_lag)
    w->max_lag = now - due;
  exchange_begin(c, due);
  return 1;
}

/* Connect back-off: 1 when c must wait (it is parked). */
static int park(struct worker *w, struct conn *c) {
  if (!w->backoff_ms || c->connected)
    return 0;
  if (w->probe_allowed) {
    w->probe_allowed = 0; /* this one goes through and tells how the server is */
    return 0;
  }
  c->parked = 1;
  w->parked[w->nparked++] = c;
  return 1;
}

static void conn_next(struct conn *c) {
  struct worker *w = c->w;
  if (w->aborting || w->stopping) {
    conn_retire(c);
    return;
  }
  if (park(w, c))
    return;
  if (!open_loop(w)) {
    if (w->started < w->quota) {
      w->started++;
      exchange_begin(c, 0);
    } else {
      conn_retire(c);
    }
    return;
  }
  if (take_due(w, c, uv_hrtime()))
    return;
  if (w->next_k >= w->limit_k) {
    conn_retire(c); /* the schedule is over */
    return;
  }
  c->idle = 1;
  w->idle[w->nidle++] = c;
}

static struct conn *pop(struct conn **stack, unsigned *n) {
  return stack[--*n];
}

/* ---- the worker's timers --------------------------------------------- */

/* Open loop: the scheduled exchanges due by now that never started. */
static uint64_t due_unstarted(const struct worker *w, uint64_t now) {
  if (!open_loop(w) || w->next_k >= w->limit_k || now < w->t0)
    return 0;
  uint64_t due = (uint64_t)((double)(now - w->t0) / w->interval_ns) + 1;
  if (due > w->limit_k)
    due = w->limit_k;
  return due > w->next_k ? due - w->next_k : 0;
}

/* Nothing new starts from here on; idle and parked connections retire. */
static void stop_schedule(struct worker *w) {
  w->not_started += due_unstarted(w, uv_hrtime());
  w->next_k = w->limit_k;
  if (w->tfd >= 0 && uv_is_active((uv_handle_t *)&w->sched))
    uv_poll_stop(&w->sched);
  uv_timer_stop(&w->retry);
  while (w->nidle) {
    struct conn *c = pop(w->idle, &w->nidle);
    c->idle = 0;
    conn_retire(c);
  }
  while (w->nparked) {
    struct conn *c = pop(w->parked, &w->nparked);
    c->parked = 0;
    conn_retire(c);
  }
}

/* Hands due exchanges to idle connections. */
static void start_due(struct worker *w, uint64_t now) {
  while (w->nidle && !w->stopping) {
    struct conn *c = w->idle[w->nidle - 1];
    if (!take_due(w, c, now))
      break;
    w->nidle--;
    c->idle = 0;
  }
}

static void sched_cb(uv_poll_t *p, int status, int events) {
  struct worker *w = p->data;
  uint64_t expirations;
  (void)status;
  (void)events;
  if (read(w->tfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
    return;
  start_due(w, uv_hrtime());
  if (w->next_k >= w->limit_k)
    stop_schedule(w);
}

static void retry_cb(uv_timer_t *t) {
  struct worker *w = t->data;
  if (uv_hrtime() - w->fail_since >= w->cfg->timeout_ms * UINT64_C(1000000)) {
    w->gave_up = 1; /* the server is gone: end the run like -d does */
    w->stopping = 1;
    stop_schedule(w);
    return;
  }
  w->probe_allowed = 1;
  if (w->nparked) {
    struct conn *c = pop(w->parked, &w->nparked);
    c->parked = 0;
    conn_next(c);
  }
}

/* A connect failed: pause connects (see the top of this file). */
static void backoff_begin(struct worker *w) {
  if (w->stopping || uv_is_active((uv_handle_t *)&w->retry))
    return;
  if (w->backoff_ms == 0) {
    w->fail_since = uv_hrtime();
    w->backoff_ms = BACKOFF_MIN_MS;
  } else if ((w->backoff_ms *= 2) > BACKOFF_MAX_MS) {
    w->backoff_ms = BACKOFF_MAX_MS;
  }
  w->probe_allowed = 0;
  uv_timer_start(&w->retry, retry_cb, w->backoff_ms, 0);
}

/* A connect succeeded: the parked connections go back to work (unless one
 * of them fails at once and the back-off begins again). */
static void backoff_end(struct worker *w) {
  if (!w->backoff_ms)
    return;
  w->backoff_ms = 0;
  w->probe_allowed = 0;
  uv_timer_stop(&w->retry);
  while (w->nparked && !w->backoff_ms) {
    struct conn *c = pop(w->parked, &w->nparked);
    c->parked = 0;
    conn_next(c);
  }
}

static void publish(struct worker *w) {
  pthread_mutex_lock(&w->mu);
  w->pub = w->counts;
  w->pub_time = uv_hrtime();
  hist_merge(w->pub_interval, w->interval);
  pthread_mutex_unlock(&w->mu);
  hist_reset(w->interval);
}

static void tick_cb(uv_timer_t *t) {
  struct worker *w = t->data;
  uint64_t now = uv_hrtime();
  for (unsigned i = 0; i < w->nconns; i++) {
    struct conn *c = &w->conns[i];
    if (c->in_exchange && c->deadline <= now)
      exchange_end(c, OUT_TIMEOUT);
  }
  publish(w);
}

static void end_cb(uv_timer_t *t) {
  struct worker *w = t->data;
  start_due(w, uv_hrtime()); /* what fell due up to the end and has a connection */
  w->stopping = 1; /* connections retire as their exchanges end */
  stop_schedule(w);
}

static void wake_cb(uv_async_t *a) {
  struct worker *w = a->data;
  w->aborting = w->stopping = 1;
  stop_schedule(w);
  for (unsigned i = 0; i < w->nconns; i++) {
    struct conn *c = &w->conns[i];
    if (c->in_exchange) {
      c->in_exchange = 0;
      w->counts.aborted++;
    }
    conn_retire(c);
  }
}

static void worker_maybe_done(struct worker *w) {
  if (w->ndone < w->nconns || w->finished)
    return;
  w->finished = 1;
  uv_close((uv_handle_t *)&w->wake, NULL);
  uv_close((uv_handle_t *)&w->tick, NULL);
  uv_close((uv_handle_t *)&w->end, NULL);
  uv_close((uv_handle_t *)&w->retry, NULL);
  if (w->tfd >= 0)
    uv_close((uv_handle_t *)&w->sched, NULL);
}

/* -d: the end of the schedule (open loop) or -d after the start. */
static void start_end_timer(struct worker *w) {
  const struct bench_config *cfg = w->cfg;
  if (cfg->count)
    return;
  uint64_t end = (open_loop(w) ? w->t0 : w->t_begin) + cfg->seconds * UINT64_C(1000000000);
  uint64_t now = uv_hrtime();
  uv_update_time(&w->loop);
  uv_timer_start(&w->end, end_cb, end > now ? (end - now + 999999) / 1000000 : 0, 0);
}

static void worker_main(void *arg) {
  struct worker *w = arg;
  w->t_last = w->t_begin;
  start_end_timer(w);
  for (unsigned i = 0; i < w->nconns; i++)
    conn_next(&w->conns[i]);
  if (open_loop(w) && w->next_k >= w->limit_k)
    stop_schedule(w);
  worker_loop(w);
  if (w->tfd >= 0)
    close(w->tfd);
  w->tfd = -1;
  close(w->epfd);
  w->epfd = -1;
  publish(w);
  atomic_fetch_add(w->nfinished, 1);
  uv_async_send(w->done_async);
}

/* ---- setting workers up and down ------------------------------------- */

static int start_schedule(struct worker *w, uint64_t rate_w_milli, unsigned nworkers) {
  /* rate_w_milli: this worker's share of the rate, in exchanges per 1000 s. */
  w->interval_ns = 1e12 / (double)rate_w_milli;
  /* Workers interleave their schedules instead of all firing at once. */
  w->t0 = w->t_begin + UINT64_C(1000000) + (uint64_t)(w->interval_ns * w->id / nworkers);
  w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (w->tfd < 0)
    return uv_translate_sys_error(errno);
  uint64_t step = (uint64_t)w->interval_ns;
  if (step == 0)
    step = 1;
  struct itimerspec its = {
      .it_value = {.tv_sec = (time_t)(w->t0 / 1000000000u), .tv_nsec = (long)(w->t0 % 1000000000u)},
      .it_interval = {.tv_sec = (time_t)(step / 1000000000u), .tv_nsec = (long)(step % 1000000000u)},
  };
  if (timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
    return uv_translate_sys_error(errno);
  int r = uv_poll_init(&w->loop, &w->sched, w->tfd);
  if (r < 0)
    return r;
  w->sched.data = w;
  return uv_poll_start(&w->sched, UV_READABLE, sched_cb);
}

static uint64_t share(uint64_t total, unsigned parts, unsigned i) {
  return total / parts + (i < total % parts);
}

static int worker_init(struct worker *w, unsigned id, unsigned nworkers, uint64_t conns,
                       const struct bench_config *cfg, const payload_t *payload,
                       uv_async_t *done_async, atomic_uint *nfinished, uint64_t t_begin) {
  w->id = id;
  w->cfg = cfg;
  w->payload = payload;
  w->tfd = w->epfd = -1;
  w->done_async = done_async;
  w->nfinished = nfinished;
  w->t_begin = t_begin;
  w->rng = UINT64_C(0x5eed) + id;
  w->src_next = id; /* threads start on different source addresses */
  w->nconns = (unsigned)share(conns, nworkers, id);
  w->quota = cfg->count ? share(cfg->count, nworkers, id) : UINT64_MAX;
  w->lat = malloc(sizeof(hist_t));
  w->conn_lat = malloc(sizeof(hist_t));
  w->interval = malloc(sizeof(hist_t));
  w->pub_interval = malloc(sizeof(hist_t));
  w->conns = calloc(w->nconns, sizeof *w->conns);
  w->idle = calloc(w->nconns, sizeof *w->idle);
  w->parked = calloc(w->nconns, sizeof *w->parked);
  if (!w->lat || !w->conn_lat || !w->interval || !w->pub_interval || !w->conns || !w->idle ||
      !w->parked)
    return UV_ENOMEM;
  hist_reset(w->lat);
  hist_reset(w->conn_lat);
  hist_reset(w->interval);
  hist_reset(w->pub_interval);
  /* chunk/eof: room for one byte more than the longest message, so a reply
   * longer than its message is seen; line: the line, its '\n', one more. */
  size_t cap = (size_t)cfg->size_max + 2;
  for (unsigned i = 0; i < w->nconns; i++) {
    w->conns[i].w = w;
    w->conns[i].fd = -1;
    w->conns[i].cap = cap;
    w->conns[i].buf = malloc(cap);
    if (!w->conns[i].buf)
      return UV_ENOMEM;
  }
  int r = uv_loop_init(&w->loop);
  if (r < 0)
    return r;
  pthread_mutex_init(&w->mu, NULL);
  w->loop_ready = 1;
  uv_async_init(&w->loop, &w->wake, wake_cb);
  w->wake.data = w;
  uv_timer_init(&w->loop, &w->tick);
  w->tick.data = w;
  uv_timer_start(&w->tick, tick_cb, TICK_MS, TICK_MS);
  uv_timer_init(&w->loop, &w->end);
  w->end.data = w;
  uv_timer_init(&w->loop, &w->retry);
  w->retry.data = w;
  /* The connections' epoll set, with libuv's in it (see worker_loop). */
  struct epoll_event uv_ev = {.events = EPOLLIN, .data.u64 = UV_EVENT};
  w->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (w->epfd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, uv_backend_fd(&w->loop), &uv_ev) < 0)
    return uv_translate_sys_error(errno);
  if (cfg->rate) {
    uint64_t rate_milli = cfg->rate * 1000 / nworkers;
    w->limit_k = cfg->count ? w->quota
                            : (cfg->rate * cfg->seconds) / nworkers +
                                  (id < (cfg->rate * cfg->seconds) % nworkers);
    return start_schedule(w, rate_milli ? rate_milli : 1, nworkers);
  }
  return 0;
}

static void worker_free(struct worker *w) {
  if (w->conns)
    for (unsigned i = 0; i < w->nconns; i++)
      free(w->conns[i].buf);
  free(w->conns);
  free(w->idle);
  free(w->parked);
  free(w->interval);
  free(w->pub_interval);
  free(w->lat);
  free(w->conn_lat);
}

static void close_walk_cb(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

/* ---- the control loop: signals, progress, the end --------------------- */

struct control {
  uv_loop_t loop;
  uv_signal_t sigint, sigterm;
  uv_timer_t progress;
  uv_async_t done;
  struct worker *workers;
  unsigned nworkers;
  atomic_uint nfinished;
  const struct bench_config *cfg;
  uint64_t t_begin, seconds_shown;
  hist_t *window;
  int tty;
  int line_open;
};

static void control_stop_workers(struct control *ctl) {
  for (unsigned i = 0; i < ctl->nworkers; i++)
    uv_async_send(&ctl->workers[i].wake);
}

static void signal_cb(uv_signal_t *s, int signum) {
  struct control *ctl = s->data;
  (void)signum;
  bench_interrupted = 1;
  control_stop_workers(ctl);
}

/* Ok exchanges per second of worker w since the last progress line: its
 * count over the exact time between the two snapshots it published (the
 * snapshots come on the worker's own 100 ms tick, not on ours). */
static double worker_rate(struct worker *w) {
  if (w->pub_time <= w->shown_time)
    return 0.0;
  double rate = (double)(w->pub.by[OUT_OK] - w->shown_ok) * 1e9 /
                (double)(w->pub_time - w->shown_time);
  w->shown_ok = w->pub.by[OUT_OK];
  w->shown_time = w->pub_time;
  return rate;
}

static void progress_cb(uv_timer_t *t) {
  struct control *ctl = t->data;
  struct bench_counts sum;
  double rate = 0.0;
  memset(&sum, 0, sizeof sum);
  hist_reset(ctl->window);
  for (unsigned i = 0; i < ctl->nworkers; i++) {
    struct worker *w = &ctl->workers[i];
    pthread_mutex_lock(&w->mu);
    for (int k = 0; k < OUT_COUNT; k++)
      sum.by[k] += w->pub.by[k];
    rate += worker_rate(w);
    hist_merge(ctl->window, w->pub_interval);
    hist_reset(w->pub_interval);
    pthread_mutex_unlock(&w->mu);
  }
  double secs = (double)(uv_hrtime() - ctl->t_begin) / 1e9;
  uint64_t errors = 0;
  for (int k = OUT_TIMEOUT; k < OUT_COUNT; k++)
    errors += sum.by[k];
  fprintf(stderr,
          "%s%5.0fs  %8.0f/s  p99 %9.1fus  ok %llu  mismatches %llu  errors %llu  "
          "connect errors %llu%s",
          ctl->tty ? "\r" : "", secs, rate,
          (double)hist_percentile(ctl->window, 99.0) / 1e3, (unsigned long long)sum.by[OUT_OK],
          (unsigned long long)sum.by[OUT_MISMATCH], (unsigned long long)errors,
          (unsigned long long)sum.by[OUT_CONNECT], ctl->tty ? "\033[K" : "\n");
  ctl->line_open = ctl->tty;
}

static void done_cb(uv_async_t *a) {
  struct control *ctl = a->data;
  if (atomic_load(&ctl->nfinished) < ctl->nworkers)
    return; /* uv_async_send coalesces: count, do not trust one call per worker */
  uv_close((uv_handle_t *)&ctl->sigint, NULL);
  uv_close((uv_handle_t *)&ctl->sigterm, NULL);
  uv_close((uv_handle_t *)&ctl->progress, NULL);
  uv_close((uv_handle_t *)&ctl->done, NULL);
}

static void collect(struct control *ctl, uint64_t conns, struct bench_result *res) {
  memset(res, 0, sizeof *res);
  res->conns = conns;
  res->latency = malloc(sizeof(hist_t));
  res->connect = malloc(sizeof(hist_t));
  if (res->latency)
    hist_reset(res->latency);
  if (res->connect)
    hist_reset(res->connect);
  uint64_t t_end = ctl->t_begin;
  for (unsigned i = 0; i < ctl->nworkers; i++) {
    struct worker *w = &ctl->workers[i];
    for (int k = 0; k < OUT_COUNT; k++)
      res->counts.by[k] += w->counts.by[k];
    res->counts.bytes_in += w->counts.bytes_in;
    res->counts.bytes_out += w->counts.bytes_out;
    res->counts.aborted += w->counts.aborted;
    if (res->latency)
      hist_merge(res->latency, w->lat);
    if (res->connect)
      hist_merge(res->connect, w->conn_lat);
    if (w->first_mismatch.seen && !res->first_mismatch.seen)
      res->first_mismatch = w->first_mismatch;
    if (w->first_other && !res->first_other)
      res->first_other = w->first_other;
    if (w->max_lag > res->max_lag_ns)
      res->max_lag_ns = w->max_lag;
    res->not_started += w->not_started;
    res->gave_up |= w->gave_up;
    if (w->t_last > t_end)
      t_end = w->t_last;
  }
  res->seconds = (double)(t_end - ctl->t_begin) / 1e9;
  res->interrupted = bench_interrupted;
}

int bench_run(const struct bench_config *cfg, uint64_t conns, struct bench_result *out) {
  struct control ctl;
  payload_t payload;
  int r;
  memset(&ctl, 0, sizeof ctl);
  memset(out, 0, sizeof *out);
  ctl.cfg = cfg;
  ctl.nworkers = (unsigned)cfg->threads;
  ctl.tty = isatty(2);
  ctl.window = malloc(sizeof(hist_t));
  ctl.workers = calloc(ctl.nworkers, sizeof *ctl.workers);
  if (!ctl.window || !ctl.workers || payload_init(&payload, (size_t)cfg->size_max, 42) < 0) {
    fprintf(stderr, "revbench: setting up: out of memory\n");
    free(ctl.window);
    free(ctl.workers);
    return -1;
  }
  payload.echo = cfg->expect == EXPECT_ECHO;
  uv_loop_init(&ctl.loop);
  uv_async_init(&ctl.loop, &ctl.done, done_cb);
  ctl.done.data = &ctl;
  uv_signal_init(&ctl.loop, &ctl.sigint);
  uv_signal_init(&ctl.loop, &ctl.sigterm);
  ctl.sigint.data = ctl.sigterm.data = &ctl;
  uv_signal_start(&ctl.sigint, signal_cb, SIGINT);
  uv_signal_start(&ctl.sigterm, signal_cb, SIGTERM);
  uv_timer_init(&ctl.loop, &ctl.progress);
  ctl.progress.data = &ctl;
  ctl.t_begin = uv_hrtime();
  unsigned started = 0;
  for (unsigned i = 0; i < ctl.nworkers; i++) {
    r = worker_init(&ctl.workers[i], i, ctl.nworkers, conns, cfg, &payload, &ctl.done,
                    &ctl.nfinished, ctl.t_begin);
    ctl.workers[i].shown_time = ctl.t_begin;
    if (r == 0)
      r = uv_thread_create(&ctl.workers[i].thread, worker_main, &ctl.workers[i]);
    if (r < 0) {
      fprintf(stderr, "revbench: starting worker %u: %s\n", i, uv_strerror(r));
      break;
    }
    started++;
  }
  if (started < ctl.nworkers) {
    /* Stop what did start, then report the failure. */
    ctl.nworkers = started;
    control_stop_workers(&ctl);
  }
  if (cfg->progress)
    uv_timer_start(&ctl.progress, progress_cb, 1000, 1000);
  if (started == 0)
    uv_async_send(&ctl.done);
  uv_run(&ctl.loop, UV_RUN_DEFAULT);
  for (unsigned i = 0; i < started; i++)
    uv_thread_join(&ctl.workers[i].thread);
  if (ctl.line_open)
    fputc('\n', stderr);
  collect(&ctl, conns, out);
  for (unsigned i = 0; i < (unsigned)cfg->threads; i++) {
    struct worker *w = &ctl.workers[i];
    if (i >= started && w->loop_ready) {
      /* Set up but never run: close what worker_init opened. */
      uv_walk(&w->loop, close_walk_cb, NULL);
      uv_run(&w->loop, UV_RUN_DEFAULT);
      if (w->tfd >= 0)
        close(w->tfd);
      if (w->epfd >= 0)
        close(w->epfd);
    }
    if (w->loop_ready) {
      uv_loop_close(&w->loop);
      pthread_mutex_destroy(&w->mu);
    }
    worker_free(w);
  }
  uv_loop_close(&ctl.loop);
  free(ctl.window);
  free(ctl.workers);
  payload_free(&payload);
  if (!out->latency || !out->connect) {
    bench_result_free(out);
    fprintf(stderr, "revbench: collecting results: out of memory\n");
    return -1;
  }
  return started < (unsigned)cfg->threads ? -1 : 0;
}

void bench_result_free(struct bench_result *res) {
  free(res->latency);
  free(res->connect);
  res->latency = res->connect = NULL;
}

int bench_probe(const struct sockaddr *addr, unsigned timeout_ms) {
  socklen_t len = addr_len(addr);
  int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return uv_translate_sys_error(errno);
  int r = connect(fd, addr, len);
  if (r < 0 && errno == EINPROGRESS) {
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    r = poll(&p, 1, (int)timeout_ms);
    if (r == 0) {
      close(fd);
      return UV_ETIMEDOUT;
    }
    int err = 0;
    socklen_t elen = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
    r = err ? -1 : 0;
    errno = err;
  }
  int saved = errno;
  close(fd);
  return r < 0 ? uv_translate_sys_error(saved) : 0;
}
