/* internal.h — what librevd's files share and nothing outside sees: the
 * private structs, the connection core's calls, and the interface each
 * protocol (one per mode) implements.
 *
 * The data path, one file per step (README.md draws it):
 *   listener.c accept -> conn.c a connection's life (readers, finish,
 *   linger, close; deadline.c its deadlines) -> proto_chunk.c |
 *   proto_eof.c | proto_line.c, one mode each -> framing.c (line mode) ->
 *   reverse.c -> write.c -> back to conn.c to finish.
 * server.c holds the public revd_server_* calls and the wind-down. */
#ifndef REVD_INTERNAL_H
#define REVD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "revd.h"
#include "reverse.h"

/* The one way from a handle (or request) to the struct that holds it. */
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* Any stream handle the library opens, server and client side alike. */
union revd__handle {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
};

struct conn;

/* ---- the protocols ---------------------------------------------------- */

/* What one mode does with a connection's input.  Chosen once, when the
 * server is created; the core calls it only while the message is being
 * read (after that it swaps in a reader that discards, so no mode ever
 * sees input past its message). */
struct revd__proto {
  /* Where the next read goes; NULL: the server's shared read buffer (a
   * read is consumed before the next alloc, so one buffer serves all). */
  void (*alloc)(struct conn *c, uv_buf_t *buf);
  /* len > 0 bytes of input at data. */
  void (*data)(struct conn *c, char *data, size_t len);
  /* The client half-closed. */
  void (*eof)(struct conn *c);
  /* At wind-down, while the message is being read: is the client owed a
   * reply (it may finish within drain_timeout_ms), or nothing? */
  int (*owes_reply)(const struct conn *c);
  /* Frees what the mode holds for c; c is closing (or being reused). */
  void (*release)(struct conn *c);
  /* The wait the mode asked for (revd__conn_wait_for_rest) is over and the
   * rest of the message did not come: answer what has.  NULL in a mode
   * that never waits. */
  void (*wait_over)(struct conn *c);
  /* The client talks back and forth (line mode): replies must not wait for
   * an ACK (TCP_NODELAY), and accept need not wait for data (no deferred
   * accept by default).  Otherwise it sends its one message as it connects:
   * input waiting at wind-down is a message owed a reply. */
  unsigned interactive : 1;
};

extern const struct revd__proto revd__proto_chunk;
extern const struct revd__proto revd__proto_eof;
extern const struct revd__proto revd__proto_line;

/* Each mode's state for one connection, behind one pointer (NULL until the
 * mode needs some). */
union revd__proto_state {
  struct chunk_wait *chunk;    /* proto_chunk.c: only while waiting for the rest */
  struct eof_message *eof;     /* proto_eof.c */
  struct line_carry *line;     /* proto_line.c: only while a line is carried over */
};

/* ---- the connection --------------------------------------------------- */

enum conn_phase {
  CONN_READING,   /* the mode's reader: waiting for (the rest of) a message */
  CONN_REPLYING,  /* the message is complete; input past it is discarded */
  CONN_LINGERING, /* write side shut down; input discarded until EOF or linger_ms */
  CONN_CLOSING    /* uv_close() called */
};

struct conn_list {
  struct conn *head, *tail;
};

/* Which deadline a connection waits for; each has a list (deadline.c). */
enum deadline_kind {
  DEADLINE_IDLE,   /* idle_timeout_ms: touched when the exchange makes progress */
  DEADLINE_LINGER, /* linger_ms: the lingering close */
  DEADLINE_DRAIN,  /* drain_timeout_ms: an exchange owed while the server closes */
  DEADLINE_REST,   /* REVD__REST_WAIT_MS: the rest of a message may be on its way */
  DEADLINE_KINDS
};

/* Only what every connection needs: the list links and deadline, a few
 * bits, the mode's small state, and the handle, which comes last so a TCP
 * connection is allocated without a uv_pipe_t's extra bytes.  Write and
 * shutdown requests and reply copies are allocated only when a write is
 * queued.  The handle's data pointer is the server. */
struct conn {
  struct conn *prev, *next; /* on srv->deadlines[on_list] */
  uint64_t deadline;
  uint32_t writes_pending;
  uint8_t phase;            /* enum conn_phase */
  uint8_t input_eof : 1;    /* the client half-closed */
  uint8_t close_after_writes : 1;
  uint8_t read_paused : 1;  /* back-pressure: too much queued to write */
  uint8_t on_list : 2;      /* enum deadline_kind (4 fit) */
  uint8_t over_budget : 1;  /* the mode's alloc was refused by max_buffered */
  uint8_t reading : 1;      /* libuv watches the socket for input */
  uint8_t input_drained : 1;/* the mode judged the client sent all it will: close at once */
  union revd__proto_state p;
  uint32_t out_seen;        /* bytes not yet sent at the last look (idle check; capped) */
  uint32_t started_ms;      /* loop time (truncated) the current message began */
  union revd__handle h;     /* last: see above */
};

static inline revd_server_t *conn_server(const struct conn *c) {
  return (revd_server_t *)c->h.handle.data;
}

/* ---- the server ------------------------------------------------------- */

enum listener_kind { LISTENER_NONE, LISTENER_TCP, LISTENER_UNIX };

/* max_conns_per_ip: counts by client address (ip_limit.c). */
struct ip_count;
struct revd__ip_table {
  struct ip_count **buckets;
  size_t nbuckets, count;
};

struct listener {
  union revd__handle h;
  enum listener_kind kind;
  int open;
  char *unix_path;          /* a socket file we created: removed at close */
  union revd__handle spare; /* takes and closes a connection there is no memory for */
  int spare_busy, accept_stalled;
  uint64_t fd_ceiling;      /* accepted fds from here on are refused (listener.c) */
};

struct revd_server {
  uv_loop_t *loop;
  revd_options_t opts;
  revd_stats_t stats;
  const struct revd__proto *proto;
  struct listener listener;
  uv_timer_t timer;          /* one timer for every deadline of every list */
  uv_timer_t trim_timer;     /* gives the heap back once the server is idle (write.c) */
  struct conn_list deadlines[DEADLINE_KINDS]; /* each ordered: appends share a timeout */
  struct conn *free_conns;   /* closed conns kept for reuse, linked by next */
  unsigned nfree_conns;
  size_t conn_size;          /* bytes of a struct conn with this listener's handle */
  size_t conn_ip_offset;     /* where its address's count sits (0: limit off) */
  struct revd__ip_table ips;
  size_t buffered;           /* bytes of messages and reply copies held, for max_buffered */
  size_t released;           /* bytes let go since the heap was last trimmed */
  unsigned handles_open;
  int closing;
  void (*close_cb)(revd_server_t *, void *);
  void *close_arg;
  char readbuf[REVD_CHUNK_MAX];
};

/* ---- the core's calls (conn.c, write.c, deadline.c) -------------------- */

/* A new connection for srv's listener (its handle initialised, phase
 * CONN_READING, not yet accepted), or NULL without memory. */
struct conn *revd__conn_new(revd_server_t *srv);
/* Starts an accepted connection: idle deadline, the mode's reader. */
void revd__conn_start(struct conn *c);

/* Input is alive: a fresh idle deadline.  O(1). */
void revd__conn_touch(struct conn *c);
/* Sends bufs.  keep: the bytes stay valid until the connection closes (no
 * copy is made of what the socket does not take at once).  `exchanges` is
 * how many exchanges the write completes (counted once it is out).
 * Returns 0, or a negative UV_E* code: the caller fails the connection. */
int revd__conn_write(struct conn *c, const uv_buf_t *bufs, unsigned nbufs, uint64_t exchanges,
                     int keep);
/* The message is complete: input past it is discarded from now on. */
void revd__conn_message_done(struct conn *c);
/* The exchange is over: close once the writes are out (lingering if input
 * may still come). */
void revd__conn_finish(struct conn *c);
/* Answer nothing more: a lingering close (e.g. a message too large). */
void revd__conn_linger(struct conn *c);
/* Counts *counter and closes at once. */
void revd__conn_fail(struct conn *c, uint64_t *counter);
/* A message begins now: its exchange's duration counts from here. */
static inline void revd__conn_message_starts(struct conn *c) {
  c->started_ms = (uint32_t)uv_now(c->h.handle.loop);
}
/* n exchanges of c are complete (their replies are in the kernel): counted,
 * and their duration in the histogram. */
void revd__conn_completed(struct conn *c, uint64_t n);
/* Counts err by its kind (UV_ENOMEM: oom, UV_ENOBUFS: over_budget, else
 * resets) and closes. */
void revd__conn_fail_error(struct conn *c, int err);
/* Refuses c past the memory budget: counted, closed with a reset (a reply
 * begun must not look complete). */
void revd__conn_over_budget(struct conn *c);
/* Counts n bytes held against max_buffered.  Returns 0, or UV_ENOBUFS (and
 * counts nothing) past it. */
int revd__budget_take(revd_server_t *srv, size_t n);
/* Gives n bytes back; once nothing is held after a big load, the heap's
 * free memory goes back to the system. */
void revd__budget_give(revd_server_t *srv, size_t n);
/* Server close: owed exchanges may finish within drain_timeout_ms; the rest
 * get a lingering close. */
void revd__conn_wind_down(struct conn *c);

/* Arms the one timer for the earliest deadline. */
void revd__timer_arm(revd_server_t *srv);
/* Puts c at the tail of the list of `kind` with a deadline ms from now (0:
 * none).  Every entry of a list must share one timeout. */
void revd__conn_deadline(struct conn *c, enum deadline_kind kind, unsigned ms);
/* The exchange may finish within drain_timeout_ms (the server is closing). */
void revd__conn_drain(struct conn *c);
/* How long a mode waits for the rest of a message that may be split. */
#define REVD__REST_WAIT_MS 20
/* The mode waits up to REVD__REST_WAIT_MS for the rest of the message; then
 * its wait_over is called, unless it stopped waiting first. */
void revd__conn_wait_for_rest(struct conn *c);
/* Stops that wait (harmless when c is not waiting): back to the idle
 * deadline, or to the drain deadline once the server is closing. */
void revd__conn_stop_waiting(struct conn *c);
/* Takes c off its list. */
void revd__conn_unlist(struct conn *c);
/* Closes at once.  Pending writes are cancelled. */
void revd__conn_close(struct conn *c);
/* Gives up on a reply that is not complete: counted, closed with a reset. */
void revd__conn_cut_short(struct conn *c);
/* Back-pressure: stops reading the message while too much waits to be
 * written; resume reads it again. */
void revd__conn_pause_reading(struct conn *c);
void revd__conn_resume_reading(struct conn *c);
/* Reads what the socket has now into buf[0..room), as one more part of
 * the current read: counted, an EOF noted in input_eof.  Returns the bytes
 * read, 0 when the socket is dry now, UV_EOF, or another negative UV_E*
 * code (an error shows in the write or the close that follows). */
ssize_t revd__conn_read_more(struct conn *c, char *buf, size_t room);
/* Has input arrived that was not read yet (FIONREAD)? */
int revd__conn_input_waiting(struct conn *c);
/* Sends the ACK the kernel may be delaying (TCP_QUICKACK): a sender whose
 * next segment waits for it (Nagle) sends it now. */
void revd__conn_ack_now(struct conn *c);
/* Bytes of replies not yet sent: libuv's queue and the kernel's (capped at
 * UINT32_MAX: past 4 GiB unsent, progress goes unseen). */
uint32_t revd__conn_unsent(struct conn *c);
/* Frees the conns kept for reuse. */
void revd__conn_free_all(revd_server_t *srv);

/* ---- the per-address limit (ip_limit.c) --------------------------------- */

/* The trailer after a TCP connection's handle, when max_conns_per_ip is on. */
static inline struct ip_count **revd__conn_ip_slot(struct conn *c) {
  return (struct ip_count **)((char *)c + conn_server(c)->conn_ip_offset);
}
/* Counts c against its address.  Returns 0, UV_EBUSY when the address holds
 * max_conns_per_ip already, or another negative UV_E* code. */
int revd__ip_acquire(struct conn *c);
/* Gives c's count back (harmless if it holds none). */
void revd__ip_release(struct conn *c);
void revd__ip_table_free(revd_server_t *srv);

/* ---- the listener's calls (listener.c) -------------------------------- */

int revd__listen_tcp(revd_server_t *srv, const struct sockaddr *addr);
int revd__listen_unix(revd_server_t *srv, const char *path);
int revd__listen_fd(revd_server_t *srv, uv_os_sock_t fd);
void revd__listener_close(revd_server_t *srv);

/* ---- the server's calls (server.c) ------------------------------------ */

/* A handle of srv closed: frees srv once it was the last and close was asked. */
void revd__server_handle_closed(revd_server_t *srv);

/* ---- shared by the modes ---------------------------------------------- */

/* Reverses data[0..len) in place by the server's unit, counting a fall back
 * to bytes for invalid UTF-8. */
static inline void revd__reverse_counted(revd_server_t *srv, char *data, size_t len) {
  if (revd__reverse(srv->opts.reverse, data, len) == REVD__REVERSED_BYTES)
    srv->stats.utf8_fallbacks++;
}

#endif
