/* metrics.c — a minimal HTTP endpoint on the caller's loop that serves the
 * counters in Prometheus' text format at GET /metrics.  Requests are parsed
 * by http-parser (Debian's libhttp-parser); each connection gets one
 * response and is closed. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>

#include "revd.h"

#define REQUEST_MAX 8192    /* a scrape request is a few hundred bytes */
#define URL_MAX 256
#define RESPONSE_MAX 8192
#define METRICS_IDLE_MS 5000 /* a client that sends nothing is dropped */

struct revd_metrics {
  uv_loop_t *loop;
  uv_tcp_t listener;
  revd_metrics_collect_cb collect;
  void *arg;
  unsigned handles_open;
  int closing;
  void (*close_cb)(revd_metrics_t *, void *);
  void *close_arg;
};

struct scrape {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_write_t write_req;
  revd_metrics_t *m;
  http_parser parser;
  size_t received;
  size_t url_len;
  int answered;
  int handles_open;
  char url[URL_MAX];
  char readbuf[1024];
  char response[RESPONSE_MAX];
};


/* ---- the text format -------------------------------------------------- */

struct metric {
  const char *name, *type, *help;
  size_t offset;
};

/* Every field of REVD_STATS_MAP but the sums, which Prometheus adds up itself. */
#define METRIC_counter(field, name, help) {name, "counter", help, offsetof(revd_stats_t, field)},
#define METRIC_gauge(field, name, help) {name, "gauge", help, offsetof(revd_stats_t, field)},
#define METRIC_total(field, name, help)
#define METRIC(field, kind, name, help) METRIC_##kind(field, name, help)
static const struct metric metrics[] = {REVD_STATS_MAP(METRIC)};
#undef METRIC

/* Length of the family name: up to a label set's '{'. */
static size_t family_len(const char *name) { return strcspn(name, "{"); }

static int same_family(const struct metric *a, const struct metric *b) {
  size_t n = family_len(a->name);
  return n == family_len(b->name) && memcmp(a->name, b->name, n) == 0;
}

/* Appends to buf at *used.  Returns 0, or UV_ENOBUFS when it does not fit. */
static int append(char *buf, size_t size, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int append(char *buf, size_t size, size_t *used, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + *used, size - *used, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= size - *used)
    return UV_ENOBUFS;
  *used += (size_t)n;
  return 0;
}

static int format_counters(const revd_stats_t *st, char *buf, size_t size, size_t *used) {
  for (size_t i = 0; i < sizeof metrics / sizeof metrics[0]; i++) {
    const struct metric *mt = &metrics[i];
    uint64_t v = *(const uint64_t *)((const char *)st + mt->offset);
    int fam = (int)family_len(mt->name);
    if ((i == 0 || !same_family(mt, &metrics[i - 1])) &&
        append(buf, size, used, "# HELP %.*s %s\n# TYPE %.*s %s\n", fam, mt->name, mt->help,
               fam, mt->name, mt->type) != 0)
      return UV_ENOBUFS;
    if (append(buf, size, used, "%s %llu\n", mt->name, (unsigned long long)v) != 0)
      return UV_ENOBUFS;
  }
  return 0;
}

/* Prometheus wants cumulative buckets, in seconds. */
static int format_durations(const revd_stats_t *st, char *buf, size_t size, size_t *used) {
  static const unsigned bounds_ms[] = {REVD_DURATION_BUCKETS_MS};
  uint64_t count = 0;
  if (append(buf, size, used,
             "# HELP revd_exchange_duration_seconds Time from a message's first byte read to "
             "its reply handed to the kernel.\n"
             "# TYPE revd_exchange_duration_seconds histogram\n") != 0)
    return UV_ENOBUFS;
  for (int i = 0; i < REVD_DURATION_BUCKETS; i++) {
    count += st->duration_buckets[i];
    int r = i < REVD_DURATION_BUCKETS - 1
                ? append(buf, size, used, "revd_exchange_duration_seconds_bucket{le=\"%g\"} %llu\n",
                         bounds_ms[i] / 1000.0, (unsigned long long)count)
                : append(buf, size, used, "revd_exchange_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                         (unsigned long long)count);
    if (r != 0)
      return UV_ENOBUFS;
  }
  return append(buf, size, used,
                "revd_exchange_duration_seconds_sum %.3f\nrevd_exchange_duration_seconds_count %llu\n",
                st->duration_sum_ms / 1000.0, (unsigned long long)count);
}

int revd_stats_format(const revd_stats_t *st, char *buf, size_t size) {
  size_t used = 0;
  if (format_counters(st, buf, size, &used) != 0 || format_durations(st, buf, size, &used) != 0 ||
      /* The version that runs, as Prometheus' own *_build_info metrics give it. */
      append(buf, size, &used,
             "# HELP revd_build_info The running librevd's version (the value is 1).\n"
             "# TYPE revd_build_info gauge\n"
             "revd_build_info{version=\"%s\"} 1\n",
             revd_version()) != 0)
    return UV_ENOBUFS;
  return (int)used;
}

/* ---- one scrape connection -------------------------------------------- */

static void maybe_free_metrics(revd_metrics_t *m);

static void scrape_close_cb(uv_handle_t *h) {
  struct scrape *s = h->data;
  if (--s->handles_open > 0)
    return;
  revd_metrics_t *m = s->m;
  free(s);
  m->handles_open--;
  maybe_free_metrics(m);
}

static void scrape_close(struct scrape *s) {
  if (uv_is_closing((uv_handle_t *)&s->tcp))
    return;
  uv_close((uv_handle_t *)&s->tcp, scrape_close_cb);
  uv_close((uv_handle_t *)&s->timer, scrape_close_cb);
}

static void response_written(uv_write_t *req, int status) {
  (void)status; /* closed either way */
  scrape_close(req->data);
}

/* Only a 200 carries the exposition format; errors are plain text, so a
 * scraper never parses "try /metrics" as metrics. */
#define EXPOSITION_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define TEXT_TYPE "text/plain; charset=utf-8"

static int format_response(struct scrape *s, int code, const char *reason, const char *body,
                           size_t body_len) {
  int n = snprintf(s->response, sizeof s->response,
                   "HTTP/1.1 %d %s\r\n"
                   "Content-Type: %s\r\n"
                   "%s"
                   "Content-Length: %zu\r\n"
                   "Connection: close\r\n\r\n",
                   code, reason, code == 200 ? EXPOSITION_TYPE : TEXT_TYPE,
                   code == 405 ? "Allow: GET, HEAD\r\n" : "", body_len);
  if (n < 0 || (size_t)n + body_len > sizeof s->response)
    return -1;
  memcpy(s->response + n, body, body_len);
  return n + (int)body_len;
}

static void respond(struct scrape *s, int code, const char *reason, const char *body,
                    size_t body_len) {
  if (s->answered)
    return;
  s->answered = 1;
  uv_read_stop((uv_stream_t *)&s->tcp);
  int len = format_response(s, code, reason, body, body_len);
  if (len > 0 && s->parser.method == HTTP_HEAD)
    len -= (int)body_len; /* the headers GET would send, without the body */
  uv_buf_t buf = uv_buf_init(s->response, len > 0 ? (unsigned)len : 0);
  s->write_req.data = s;
  if (len < 0 || uv_write(&s->write_req, (uv_stream_t *)&s->tcp, &buf, 1, response_written) != 0)
    scrape_close(s);
}

static void respond_text(struct scrape *s, int code, const char *reason, const char *text) {
  respond(s, code, reason, text, strlen(text));
}

static void serve_request(struct scrape *s) {
  if (s->parser.method != HTTP_GET && s->parser.method != HTTP_HEAD) {
    respond_text(s, 405, "Method Not Allowed", "only GET and HEAD\n");
    return;
  }
  char *query = memchr(s->url, '?', s->url_len);
  size_t path_len = query ? (size_t)(query - s->url) : s->url_len;
  if (path_len != 8 || memcmp(s->url, "/metrics", 8) != 0) {
    respond_text(s, 404, "Not Found", "try /metrics\n");
    return;
  }
  revd_stats_t st;
  memset(&st, 0, sizeof st);
  s->m->collect(&st, s->m->arg);
  char body[RESPONSE_MAX - 256];
  int n = revd_stats_format(&st, body, sizeof body);
  if (n < 0)
    respond_text(s, 500, "Internal Server Error", "metrics too large\n");
  else
    respond(s, 200, "OK", body, (size_t)n);
}

static int on_url(http_parser *p, const char *at, size_t len) {
  struct scrape *s = p->data;
  if (len > sizeof s->url - s->url_len)
    return -1; /* too long: the parser reports an error */
  memcpy(s->url + s->url_len, at, len);
  s->url_len += len;
  return 0;
}

static int on_message_complete(http_parser *p) {
  serve_request(p->data);
  return 1; /* one request per connection: stop parsing */
}

/* Constant, so two endpoints (or threads) share nothing mutable. */
static const http_parser_settings settings = {
    .on_url = on_url,
    .on_message_complete = on_message_complete,
};

static void scrape_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct scrape *s = h->data;
  (void)suggested;
  *buf = uv_buf_init(s->readbuf, sizeof s->readbuf);
}

static void scrape_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  struct scrape *s = st->data;
  if (nread < 0) {
    scrape_close(s);
    return;
  }
  s->received += (size_t)nread;
  if (s->received > REQUEST_MAX) {
    respond_text(s, 431, "Request Header Fields Too Large", "request too large\n");
    return;
  }
  http_parser_execute(&s->parser, &settings, buf->base, (size_t)nread);
  if (!s->answered && HTTP_PARSER_ERRNO(&s->parser) != HPE_OK)
    respond_text(s, 400, "Bad Request", "bad request\n");
}

static void scrape_timeout(uv_timer_t *t) { scrape_close(t->data); }

static void metrics_connection(uv_stream_t *listener, int status) {
  revd_metrics_t *m = listener->data;
  if (status < 0 || m->closing)
    return;
  struct scrape *s = calloc(1, sizeof *s);
  if (!s)
    return;
  s->m = m;
  uv_tcp_init(m->loop, &s->tcp);
  uv_timer_init(m->loop, &s->timer);
  s->tcp.data = s->timer.data = s;
  s->handles_open = 2;
  m->handles_open++;
  http_parser_init(&s->parser, HTTP_REQUEST);
  s->parser.data = s;
  if (uv_accept(listener, (uv_stream_t *)&s->tcp) != 0 ||
      uv_read_start((uv_stream_t *)&s->tcp, scrape_alloc, scrape_read) != 0) {
    scrape_close(s);
    return;
  }
  uv_timer_start(&s->timer, scrape_timeout, METRICS_IDLE_MS, 0);
}

/* ---- the endpoint's lifecycle ----------------------------------------- */

static void maybe_free_metrics(revd_metrics_t *m) {
  if (!m->closing || m->handles_open > 0)
    return;
  void (*cb)(revd_metrics_t *, void *) = m->close_cb;
  void *arg = m->close_arg;
  revd_metrics_t *volatile token = m; /* only an identity once freed */
  free(m);
  if (cb)
    cb(token, arg);
}

static void listener_closed(uv_handle_t *h) {
  revd_metrics_t *m = h->data;
  m->handles_open--;
  maybe_free_metrics(m);
}

int revd_metrics_new(uv_loop_t *loop, const struct sockaddr *addr,
                     revd_metrics_collect_cb collect, void *arg, revd_metrics_t **out) {
  if (!loop || !addr || !collect || !out)
    return UV_EINVAL;
  revd_metrics_t *m = calloc(1, sizeof *m);
  if (!m)
    return UV_ENOMEM;
  m->loop = loop;
  m->collect = collect;
  m->arg = arg;
  int r = uv_tcp_init(loop, &m->listener);
  if (r != 0) {
    free(m);
    return r;
  }
  m->listener.data = m;
  m->handles_open = 1;
  r = uv_tcp_bind(&m->listener, addr, 0);
  if (r == 0)
    r = uv_listen((uv_stream_t *)&m->listener, 64, metrics_connection);
  if (r != 0) {
    /* A failed call fires no callback: close quietly, free when closed. */
    m->closing = 1;
    uv_close((uv_handle_t *)&m->listener, listener_closed);
    return r;
  }
  *out = m;
  return 0;
}

int revd_metrics_getsockname(const revd_metrics_t *m, struct sockaddr_storage *out) {
  int len = sizeof *out;
  return uv_tcp_getsockname(&m->listener, (struct sockaddr *)out, &len);
}

void revd_metrics_close(revd_metrics_t *m, void (*cb)(revd_metrics_t *, void *), void *arg) {
  if (m->closing)
    return;
  m->closing = 1;
  m->close_cb = cb;
  m->close_arg = arg;
  /* Scrapes in flight finish on their own (bounded by METRICS_IDLE_MS). */
  uv_close((uv_handle_t *)&m->listener, listener_closed);
}
