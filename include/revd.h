/* revd.h — the whole public API of librevd.
 *
 * librevd serves the reverse protocol (see README.md) on a libuv loop that
 * belongs to the caller.  It never calls uv_run(), never installs signal
 * handlers, never writes to stdout and keeps no global state: two servers on
 * one loop, or one loop per thread, just work.
 *
 * Errors are 0 or a negative UV_E* code (turn them into text with
 * revd_strerror()).  A call that fails never fires its callback.
 */
#ifndef REVD_H
#define REVD_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(REVD_BUILDING_LIBRARY) && defined(__GNUC__)
#define REVD_EXPORT __attribute__((visibility("default")))
#else
#define REVD_EXPORT
#endif

#define REVD_VERSION_STRING "0.1.0"
#define REVD_DEFAULT_HOST "127.0.0.1"
#define REVD_DEFAULT_PORT 7342

/* What one exchange is (the framing). */
enum revd_mode {
  REVD_MODE_CHUNK, /* the first read (at most 64 KiB); the server then closes */
  REVD_MODE_EOF,   /* everything until the client half-closes */
  REVD_MODE_LINE   /* each '\n'-terminated line; the connection stays open */
};

/* What is reversed inside a message. */
enum revd_reverse {
  REVD_REVERSE_BYTES,      /* byte order; any binary data */
  REVD_REVERSE_CODEPOINTS, /* UTF-8 code points */
  REVD_REVERSE_GRAPHEMES   /* user-perceived characters (extended grapheme clusters) */
};

/* revd_options_t.defer_accept: by the mode. */
#define REVD_DEFER_AUTO (-1)

/* Size of one read, and so the largest chunk-mode message. */
#define REVD_CHUNK_MAX (64 * 1024)

typedef struct revd_options {
  int mode;                 /* enum revd_mode; default REVD_MODE_CHUNK */
  int reverse;              /* enum revd_reverse; default REVD_REVERSE_BYTES */
  size_t max_message;       /* eof/line: most bytes one message may hold; default 64 MiB */
  unsigned max_conns;       /* open connections at most; past it new ones are closed at once; 0 = no limit */
  unsigned idle_timeout_ms; /* a connection silent this long is closed; 0 = never; default 60000 */
  unsigned linger_ms;       /* lingering close: how long unread input is drained before closing; default 2000 */
  int backlog;              /* listen(2) backlog; default: the kernel's limit
                               (/proc/sys/net/core/somaxconn), else 4096 */
  int reuse_port;           /* TCP: set SO_REUSEPORT, so several servers (one loop per
                               thread) can listen on one address and the kernel spreads
                               connections among them; default 0 */
  unsigned drain_timeout_ms; /* revd_server_close(): how long exchanges in flight may
                                take to finish before they are cut short; default 5000 */
  unsigned unix_mode;       /* permissions of a Unix socket file revd creates; default 0660 */
  unsigned max_conns_per_ip; /* connections one client address may hold; past it new ones
                                are closed at once (rejected_per_ip); 0 = no limit (default) */
  int defer_accept;         /* TCP: accept a connection only once its first bytes arrived
                               (TCP_DEFER_ACCEPT), so revd reads them at once instead of
                               waiting a loop turn; a client that connects and stays
                               silent is held by the kernel, not counted by revd, for up
                               to a second.  REVD_DEFER_AUTO (default): on in chunk and
                               eof mode, off in line mode (interactive clients); 0 off; 1 on */
  size_t max_buffered;      /* bytes of messages and replies all connections together may
                               hold; past it new input is refused (over_budget) while
                               exchanges inside it finish; default 1/8 of the machine's
                               memory; 0 = no limit */
} revd_options_t;

/* Counters of one server, written once: XX(field, kind, Prometheus name,
 * help).  kind is counter or gauge, or total: a sum of other fields kept
 * for convenience and not exported on its own.  A name with a {label}
 * shares its metric family (HELP and TYPE) with the lines around it. */
#define REVD_STATS_MAP(XX)                                                                   \
  XX(accepted, counter, "revd_connections_accepted_total", "Connections accepted.")          \
  XX(completed, counter, "revd_exchanges_completed_total",                                   \
     "Exchanges answered in full (line mode: lines).")                                       \
  XX(active, gauge, "revd_connections_active", "Connections open now.")                      \
  XX(empty, counter, "revd_connections_empty_total",                                         \
     "Connections closed by the client before a message was complete.")                      \
  XX(resets, counter, "revd_connections_reset_total",                                        \
     "Connections that ended in a read or write error (reset, broken pipe).")                \
  XX(timeouts, counter, "revd_connections_timed_out_total",                                  \
     "Connections closed by the idle timeout.")                                              \
  XX(too_large, counter, "revd_messages_too_large_total",                                    \
     "Connections closed because a message passed max_message.")                             \
  XX(cut_short, counter, "revd_replies_cut_short_total",                                     \
     "Replies given up before they were complete (ended with a reset).")                     \
  XX(over_budget, counter, "revd_connections_over_budget_total",                             \
     "Connections closed because max_buffered was reached.")                                 \
  XX(oom, counter, "revd_out_of_memory_total",                                               \
     "Connections closed because memory for them ran out.")                                  \
  XX(rejected, total, "revd_connections_rejected", "All rejections (the four below).")       \
  XX(rejected_max_conns, counter, "revd_connections_rejected_total{reason=\"max_conns\"}",    \
     "Connections closed at once, by reason.")                                               \
  XX(rejected_per_ip, counter, "revd_connections_rejected_total{reason=\"max_conns_per_ip\"}", \
     "Connections closed at once, by reason.")                                               \
  XX(rejected_no_memory, counter, "revd_connections_rejected_total{reason=\"no_memory\"}",    \
     "Connections closed at once, by reason.")                                               \
  XX(rejected_fd_limit, counter, "revd_connections_rejected_total{reason=\"fd_limit\"}",      \
     "Connections closed at once, by reason.")                                               \
  XX(utf8_fallbacks, counter, "revd_utf8_fallbacks_total",                                   \
     "Messages reversed by bytes because they were not valid UTF-8.")                        \
  XX(bytes_in, counter, "revd_received_bytes_total", "Bytes read from clients.")             \
  XX(bytes_out, counter, "revd_sent_bytes_total", "Bytes of replies handed to the kernel.")

/* How long exchanges take, from a message's first byte read to its reply
 * handed to the kernel, in milliseconds: the upper bound of each bucket of
 * the histogram (Prometheus' default buckets; the last one is unbounded). */
#define REVD_DURATION_BUCKETS_MS 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000
#define REVD_DURATION_BUCKETS 12 /* the bounds above, and +Inf */

/* Plain integers kept on the loop's thread. */
typedef struct revd_stats {
#define REVD_STATS_FIELD(field, kind, name, help) uint64_t field;
  REVD_STATS_MAP(REVD_STATS_FIELD)
#undef REVD_STATS_FIELD
  /* The exchange-duration histogram: completed exchanges per bucket (not
   * cumulative), and the sum of their durations in milliseconds. */
  uint64_t duration_buckets[REVD_DURATION_BUCKETS];
  uint64_t duration_sum_ms;
} revd_stats_t;

/* *total += *part, counter by counter (summing servers of one process). */
REVD_EXPORT void revd_stats_add(revd_stats_t *total, const revd_stats_t *part);

typedef struct revd_server revd_server_t; /* opaque */

/* Fills *opts with the defaults (chunk mode, byte reversal, limits above). */
REVD_EXPORT void revd_options_init(revd_options_t *opts);

/* Creates a server on the caller's loop.  *opts is copied (NULL: the
 * defaults); the loop must outlive the server.  Initializes one inactive
 * timer handle, released by revd_server_close().  On success *out owns the
 * server until revd_server_close()'s callback has run.
 * Returns 0, or UV_EINVAL for options out of range, UV_ENOMEM. */
REVD_EXPORT int revd_server_new(uv_loop_t *loop, const revd_options_t *opts,
                                revd_server_t **out);

/* Binds to addr (struct sockaddr_in or sockaddr_in6, port 0 picks a free
 * port; or a struct sockaddr_un, see revd_server_listen_unix) and starts
 * accepting.  addr is only read during the call.
 * Returns 0 or a negative UV_E* code (UV_EADDRINUSE, UV_EACCES, UV_EBUSY if
 * already listening, ...).  On failure the server must still be closed with
 * revd_server_close(); it may listen again once the loop has run (the failed
 * socket closes asynchronously: UV_EBUSY until then). */
REVD_EXPORT int revd_server_listen(revd_server_t *srv, const struct sockaddr *addr);

/* Same, on a Unix domain socket at path (created; an existing file is an
 * error: UV_EADDRINUSE; "" is UV_EINVAL, a path too long for sun_path
 * UV_ENAMETOOLONG).  The socket file is removed by revd_server_close(). */
REVD_EXPORT int revd_server_listen_unix(revd_server_t *srv, const char *path);

/* Serves an already bound and listening socket (TCP or Unix, e.g. one
 * handed over by systemd's socket activation) instead of binding one.  The
 * server owns fd from now on and closes it at revd_server_close(); a Unix
 * socket's file is left in place (whoever bound it owns it).  A TCP socket
 * keeps its own TCP_DEFER_ACCEPT (systemd's DeferAcceptSec=); one without
 * gets defer_accept's.
 * Returns 0, UV_ENOTSOCK / UV_EINVAL if fd is not a stream socket, UV_EBUSY
 * if already listening, or another negative UV_E* code. */
REVD_EXPORT int revd_server_listen_fd(revd_server_t *srv, uv_os_sock_t fd);

/* Writes the bound address (useful after port 0) to *out.
 * Returns 0, or UV_EINVAL if the server does not listen on TCP. */
REVD_EXPORT int revd_server_getsockname(const revd_server_t *srv,
                                        struct sockaddr_storage *out);

/* Copies the current counters into *out.  Cheap; call it as often as you like. */
REVD_EXPORT void revd_server_stats(const revd_server_t *srv, revd_stats_t *out);

/* Stops accepting, lets exchanges in flight finish (bounded by
 * drain_timeout_ms; a reply not done by then is cut short with a reset;
 * connections owed nothing get a lingering close), closes every handle the
 * server opened, then calls cb(srv, arg) from the loop and frees the server
 * when cb returns (libuv's order: srv is still valid memory during cb, but
 * no revd_server_* call may be made on it).  cb may be NULL.  Call it once;
 * after the callback the host's uv_loop_close() returns 0 (as far as revd
 * is concerned). */
REVD_EXPORT void revd_server_close(revd_server_t *srv,
                                   void (*cb)(revd_server_t *srv, void *arg),
                                   void *arg);

/* ---- metrics: the counters over HTTP ---------------------------------- */

/* Formats *st in Prometheus' text exposition format into buf.  Returns the
 * length written (no NUL counted; one is added when it fits), or UV_ENOBUFS. */
REVD_EXPORT int revd_stats_format(const revd_stats_t *st, char *buf, size_t size);

typedef struct revd_metrics revd_metrics_t; /* opaque */

/* Fills *out (zeroed by the caller) with the counters to publish; called on
 * the loop for every scrape.  Sum several servers here if you run them. */
typedef void (*revd_metrics_collect_cb)(revd_stats_t *out, void *arg);

/* Serves GET /metrics (and HEAD) over HTTP on addr (port 0 picks one), each
 * response built from collect(arg) at that moment; other paths get 404.
 * One request per connection.  Returns 0 with *out valid until
 * revd_metrics_close()'s callback, or a negative UV_E* code (no callback). */
REVD_EXPORT int revd_metrics_new(uv_loop_t *loop, const struct sockaddr *addr,
                                 revd_metrics_collect_cb collect, void *arg,
                                 revd_metrics_t **out);

/* The bound address.  Returns 0 or a negative UV_E* code. */
REVD_EXPORT int revd_metrics_getsockname(const revd_metrics_t *m, struct sockaddr_storage *out);

/* Stops listening; scrapes in flight finish (within 5 s); frees, then calls
 * cb(m, arg) (m only a token by then; cb may be NULL). */
REVD_EXPORT void revd_metrics_close(revd_metrics_t *m, void (*cb)(revd_metrics_t *m, void *arg),
                                    void *arg);

/* ---- client side ------------------------------------------------------ */

/* Addresses: struct sockaddr_in, sockaddr_in6, or sockaddr_un (a Unix domain
 * socket path) for every client call below. */

/* A stream: one connection that sends as the caller writes and hands the
 * replies over as they arrive (line mode, interactively). */
typedef struct revd_stream revd_stream_t; /* opaque */

struct revd_stream_callbacks {
  /* Reply bytes as they arrive; data is valid only during the call.  May be NULL. */
  void (*on_data)(revd_stream_t *s, const char *data, size_t len, void *arg);
  /* Every byte written so far is in the kernel: time to write more.  May be NULL. */
  void (*on_drain)(revd_stream_t *s, void *arg);
  /* Once, after the connection is closed; s is freed when this returns.
   * status is 0 when the server closed cleanly, else a negative UV_E* code;
   * `what` names the step that failed ("connect", "write", "read",
   * "timeout", "abort") or is NULL.  Required. */
  void (*on_done)(revd_stream_t *s, int status, const char *what, void *arg);
};

/* Connects to addr (read only during the call).  *cbs is copied.  On
 * success *out is valid until on_done has run.  Returns 0 (on_done will fire
 * exactly once) or a negative UV_E* code (no callback fires). */
REVD_EXPORT int revd_stream_open(uv_loop_t *loop, const struct sockaddr *addr,
                                 const struct revd_stream_callbacks *cbs, void *arg,
                                 revd_stream_t **out);

/* Queues a copy of data (writes made while connecting go out once
 * connected).  Returns 0, UV_EPIPE after the stream ended, or UV_ENOMEM. */
REVD_EXPORT int revd_stream_write(revd_stream_t *s, const char *data, size_t len);

/* Bytes written with revd_stream_write() that the kernel has not taken yet:
 * a caller feeding a stream stops at some bound and waits for on_drain. */
REVD_EXPORT size_t revd_stream_queued(const revd_stream_t *s);

/* Half-closes once the queued writes are out; the server answers what it
 * has and closes, which ends the stream.  Returns 0 or a negative UV_E* code. */
REVD_EXPORT int revd_stream_end(revd_stream_t *s);

/* Ends the stream with UV_ETIMEDOUT unless it is done within timeout_ms
 * from now (0: no timeout).  Returns 0 or a negative UV_E* code. */
REVD_EXPORT int revd_stream_set_timeout(revd_stream_t *s, unsigned timeout_ms);

/* Closes at once; on_done gets UV_ECANCELED.  Harmless after the end. */
REVD_EXPORT void revd_stream_abort(revd_stream_t *s);

/* ---- client side: one exchange per connection ------------------------- */

/* Called once per exchange.  status is 0 when the whole reply came back
 * (the server closed after it), else a negative UV_E* code (UV_ETIMEDOUT,
 * UV_ECONNREFUSED, ...).  reply/len: what arrived so far; the buffer belongs
 * to the library and is valid only during the call.  `what` names the step
 * that failed ("connect", "write", "read", "timeout") or is NULL on success. */
typedef void (*revd_exchange_cb)(int status, const char *what, const char *reply,
                                 size_t len, void *arg);

/* Connects to addr, sends msg (copied), half-closes, reads the reply until
 * the server closes, and calls cb.  timeout_ms bounds the whole exchange
 * (0 = none); max_reply bounds the reply (0 = 64 MiB).
 * Returns 0 (cb will fire exactly once, from the loop) or a negative UV_E*
 * code (cb will not fire). */
REVD_EXPORT int revd_exchange(uv_loop_t *loop, const struct sockaddr *addr,
                              const char *msg, size_t len, unsigned timeout_ms,
                              size_t max_reply, revd_exchange_cb cb, void *arg);

/* ---- helpers ---------------------------------------------------------- */

/* The library's version at run time ("0.1.0"), which may differ from the
 * REVD_VERSION_STRING a program was compiled against. */
REVD_EXPORT const char *revd_version(void);

/* Text for a revd/libuv error code.  Never NULL; static storage. */
REVD_EXPORT const char *revd_strerror(int err);

/* Parses "chunk", "eof", "line" (resp. "bytes", "codepoints", "graphemes").
 * Returns the enum value or UV_EINVAL. */
REVD_EXPORT int revd_mode_parse(const char *name);
REVD_EXPORT int revd_reverse_parse(const char *name);
/* Names of enum values; "?" for values out of range. */
REVD_EXPORT const char *revd_mode_name(int mode);
REVD_EXPORT const char *revd_reverse_name(int reverse);

/* Formats addr as "HOST:PORT" ("[V6]:PORT" for IPv6) into buf.
 * Returns 0 or UV_EINVAL / UV_ENOSPC. */
REVD_EXPORT int revd_format_addr(const struct sockaddr *addr, char *buf, size_t size);

/* Resolves a numeric host (IPv4 or IPv6 literal, or "localhost") and port
 * into *out.  Does no DNS.  Returns 0 or UV_EINVAL. */
REVD_EXPORT int revd_parse_addr(const char *host, int port, struct sockaddr_storage *out);

#ifdef __cplusplus
}
#endif
#endif /* REVD_H */
