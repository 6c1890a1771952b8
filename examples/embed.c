/* embed.c — librevd inside a host program's own loop.
 *
 * The host owns the loop and has handles of its own (here a heartbeat
 * timer).  It adds a reverse server, talks to it with the library's client,
 * and shuts the server down cleanly; uv_loop_close() then returns 0.
 *
 *   build/examples/embed          (exits 0 when everything went as planned)
 */
#include <stdio.h>
#include <string.h>

#include <revd.h>

struct host {
  uv_loop_t loop;
  uv_timer_t heartbeat; /* the host's own handle, next to revd's */
  revd_server_t *srv;
  int beats;
  int replies_ok;
};

static void heartbeat_cb(uv_timer_t *t) {
  struct host *h = t->data;
  h->beats++;
}

static void server_closed(revd_server_t *srv, void *arg) {
  struct host *h = arg;
  (void)srv;
  h->srv = NULL;
  uv_close((uv_handle_t *)&h->heartbeat, NULL); /* the host tidies up its own */
}

static void reply_cb(int status, const char *what, const char *reply, size_t len, void *arg) {
  struct host *h = arg;
  if (status != 0) {
    fprintf(stderr, "embed: %s: %s\n", what, revd_strerror(status));
  } else {
    printf("reply: %.*s\n", (int)len, reply);
    h->replies_ok += len == 5 && memcmp(reply, "olleh", 5) == 0;
  }
  revd_server_close(h->srv, server_closed, h); /* done: finish and free */
}

int main(void) {
  static struct host h;
  revd_options_t opts;
  struct sockaddr_storage addr;
  int r;

  uv_loop_init(&h.loop);
  uv_timer_init(&h.loop, &h.heartbeat);
  h.heartbeat.data = &h;
  uv_timer_start(&h.heartbeat, heartbeat_cb, 10, 10);

  revd_options_init(&opts);
  opts.mode = REVD_MODE_EOF; /* any option: a struct the host fills */
  revd_parse_addr("127.0.0.1", 0, &addr);
  if ((r = revd_server_new(&h.loop, &opts, &h.srv)) != 0 ||
      (r = revd_server_listen(h.srv, (struct sockaddr *)&addr)) != 0 ||
      (r = revd_server_getsockname(h.srv, &addr)) != 0) {
    fprintf(stderr, "embed: server: %s\n", revd_strerror(r));
    return 1;
  }
  r = revd_exchange(&h.loop, (struct sockaddr *)&addr, "hello", 5, 5000, 0, reply_cb, &h);
  if (r != 0) {
    fprintf(stderr, "embed: exchange: %s\n", revd_strerror(r));
    return 1;
  }

  uv_run(&h.loop, UV_RUN_DEFAULT); /* the host runs its loop, not revd */
  r = uv_loop_close(&h.loop);
  printf("replies ok: %d, loop close: %s\n", h.replies_ok, r == 0 ? "clean" : revd_strerror(r));
  return h.replies_ok == 1 && r == 0 ? 0 : 1;
}
