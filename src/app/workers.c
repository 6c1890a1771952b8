#include "workers.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

/* Counters cross threads only as copies under a lock, once a second:
 * the servers themselves stay single-threaded and lock-free. */
#define PUBLISH_MS 1000

struct worker {
  uv_thread_t thread;
  uv_loop_t loop;
  uv_async_t stop;
  uv_timer_t publish;
  revd_server_t *srv;
  uv_mutex_t *lock;        /* the workers' one lock, for `published` */
  revd_stats_t published;  /* a recent copy of the server's counters */
  int thread_started;
};

struct workers {
  unsigned count;
  uv_mutex_t lock;
  struct worker w[];
};


static void publish(struct worker *w) {
  revd_stats_t st;
  revd_server_stats(w->srv, &st);
  uv_mutex_lock(w->lock);
  w->published = st;
  uv_mutex_unlock(w->lock);
}

static void publish_cb(uv_timer_t *t) { publish(t->data); }

/* The final counters, exchanges finished during the drain included: the
 * server is still readable inside its close callback. */
static void server_closed_cb(revd_server_t *srv, void *arg) {
  struct worker *w = arg;
  publish(w);
  w->srv = NULL;
  (void)srv;
  uv_close((uv_handle_t *)&w->stop, NULL); /* the loop is empty after these */
  uv_close((uv_handle_t *)&w->publish, NULL);
}

/* On the worker's own thread: the only place its server is touched. */
static void stop_cb(uv_async_t *async) {
  struct worker *w = async->data;
  revd_server_close(w->srv, server_closed_cb, w);
}

static void worker_run(void *arg) {
  struct worker *w = arg;
  uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* On addr, or on a copy of the inherited socket fd. */
static int worker_listen(struct worker *w, const struct sockaddr *addr, int fd) {
  if (fd < 0)
    return revd_server_listen(w->srv, addr);
  int copy = dup(fd); /* the server owns and closes what it is given, even on failure */
  if (copy < 0)
    return uv_translate_sys_error(errno);
  return revd_server_listen_fd(w->srv, copy);
}

/* Everything but the thread: a loop, a server listening, the stop handle. */
static int worker_init(struct worker *w, const revd_options_t *opts, const struct sockaddr *addr,
                       int fd) {
  int r = uv_loop_init(&w->loop);
  if (r != 0)
    return r;
  uv_timer_init(&w->loop, &w->publish);
  uv_timer_start(&w->publish, publish_cb, PUBLISH_MS, PUBLISH_MS);
  uv_unref((uv_handle_t *)&w->publish); /* never what keeps the loop alive */
  w->publish.data = w;
  r = uv_async_init(&w->loop, &w->stop, stop_cb);
  w->stop.data = w;
  if (r != 0) {
    uv_close((uv_handle_t *)&w->publish, NULL);
  } else if ((r = revd_server_new(&w->loop, opts, &w->srv)) != 0) {
    server_closed_cb(NULL, w);
  } else if ((r = worker_listen(w, addr, fd)) != 0) {
    stop_cb(&w->stop); /* a failed listen still needs the close */
  }
  if (r != 0) {
    uv_run(&w->loop, UV_RUN_DEFAULT); /* let the closes finish */
    uv_loop_close(&w->loop);
  }
  return r;
}

int workers_start(unsigned count, const revd_options_t *opts, const struct sockaddr *addr, int fd,
                  struct workers **out) {
  struct workers *ws = calloc(1, sizeof *ws + count * sizeof ws->w[0]);
  if (!ws)
    return UV_ENOMEM;
  int r = uv_mutex_init(&ws->lock);
  if (r != 0) {
    free(ws);
    return r;
  }
  for (unsigned i = 0; i < count && r == 0; i++) {
    ws->w[i].lock = &ws->lock;
    r = worker_init(&ws->w[i], opts, addr, fd);
    if (r == 0 && (r = uv_thread_create(&ws->w[i].thread, worker_run, &ws->w[i])) != 0) {
      stop_cb(&ws->w[i].stop); /* not running yet: close it from here */
      uv_run(&ws->w[i].loop, UV_RUN_DEFAULT);
      uv_loop_close(&ws->w[i].loop);
    }
    if (r == 0) {
      ws->w[i].thread_started = 1;
      ws->count = i + 1;
    }
  }
  if (r != 0) {
    workers_request_stop(ws);
    workers_join(ws, NULL);
    return r;
  }
  *out = ws;
  return 0;
}

void workers_request_stop(struct workers *ws) {
  for (unsigned i = 0; ws && i < ws->count; i++)
    uv_async_send(&ws->w[i].stop);
}

void workers_collect(struct workers *ws, revd_stats_t *total) {
  if (!ws)
    return;
  uv_mutex_lock(&ws->lock);
  for (unsigned i = 0; i < ws->count; i++)
    revd_stats_add(total, &ws->w[i].published);
  uv_mutex_unlock(&ws->lock);
}

void workers_join(struct workers *ws, revd_stats_t *total) {
  if (!ws)
    return;
  for (unsigned i = 0; i < ws->count; i++) {
    uv_thread_join(&ws->w[i].thread);
    uv_loop_close(&ws->w[i].loop);
  }
  if (total)
    workers_collect(ws, total);
  uv_mutex_destroy(&ws->lock);
  free(ws);
}
