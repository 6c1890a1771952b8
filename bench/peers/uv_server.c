/* uv-server — the textbook libuv reverse server: what a libuv user writes
 * from the docs' echo server (uv_listen, alloc/read, reverse, uv_write,
 * uv_close), and nothing more.  A peer for bench/compare: no lingering
 * close, no limits, no timeouts, a malloc per read and per write.
 *
 * usage: uv-server [PORT]   (0 or none: a free port, printed on stderr) */
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

typedef struct { uv_write_t req; uv_buf_t buf; } write_req_t;

static void on_close(uv_handle_t *handle) { free(handle); }

static void on_alloc(uv_handle_t *handle, size_t size, uv_buf_t *buf) {
  buf->base = malloc(size);
  buf->len = size;
}

static void on_write(uv_write_t *req, int status) {
  write_req_t *wr = (write_req_t *)req;
  uv_close((uv_handle_t *)req->handle, on_close);
  free(wr->buf.base);
  free(wr);
}

static void on_read(uv_stream_t *client, ssize_t nread, const uv_buf_t *buf) {
  if (nread > 0) {
    for (ssize_t i = 0, j = nread - 1; i < j; i++, j--) {
      char t = buf->base[i];
      buf->base[i] = buf->base[j];
      buf->base[j] = t;
    }
    uv_read_stop(client);
    write_req_t *wr = malloc(sizeof *wr);
    wr->buf = uv_buf_init(buf->base, (unsigned)nread);
    uv_write(&wr->req, client, &wr->buf, 1, on_write);
    return;
  }
  if (nread < 0)
    uv_close((uv_handle_t *)client, on_close);
  free(buf->base);
}

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0)
    return;
  uv_tcp_t *client = malloc(sizeof *client);
  uv_tcp_init(server->loop, client);
  if (uv_accept(server, (uv_stream_t *)client) == 0)
    uv_read_start((uv_stream_t *)client, on_alloc, on_read);
  else
    uv_close((uv_handle_t *)client, on_close);
}

int main(int argc, char **argv) {
  uv_loop_t *loop = uv_default_loop();
  uv_tcp_t server;
  struct sockaddr_in addr;
  struct sockaddr_storage bound;
  int len = sizeof bound, err;
  uv_tcp_init(loop, &server);
  uv_ip4_addr("127.0.0.1", argc > 1 ? atoi(argv[1]) : 0, &addr);
  if ((err = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0)) < 0 ||
      (err = uv_listen((uv_stream_t *)&server, 511, on_connection)) < 0) {
    fprintf(stderr, "uv-server: listening: %s\n", uv_strerror(err));
    return 1;
  }
  uv_tcp_getsockname(&server, (struct sockaddr *)&bound, &len);
  fprintf(stderr, "uv-server: listening on 127.0.0.1:%d\n",
          ntohs(((struct sockaddr_in *)&bound)->sin_port));
  return uv_run(loop, UV_RUN_DEFAULT);
}
