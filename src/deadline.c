/* deadline.c — the connections' deadlines and the one timer.
 *
 * Every open connection sits on one of four lists (enum deadline_kind),
 * each ordered by deadline because every entry on it shares one timeout:
 * idle (touched when a message or its reply makes progress), linger, drain
 * (while the server closes) and rest (a short wait for the rest of a
 * message that may be split).  One uv_timer_t serves them all (the libev manual's
 * "same timeout" pattern; nginx keeps its timers in one tree for the same
 * reason): a touch is O(1), and nothing per connection is a handle. */
#include "internal.h"

_Static_assert(DEADLINE_KINDS <= 4, "struct conn's on_list has two bits");

static struct conn_list *list_of(struct conn *c) {
  return &conn_server(c)->deadlines[c->on_list];
}

void revd__conn_unlist(struct conn *c) {
  struct conn_list *l = list_of(c);
  if (!c->prev && l->head != c)
    return; /* on no list */
  if (c->prev)
    c->prev->next = c->next;
  else
    l->head = c->next;
  if (c->next)
    c->next->prev = c->prev;
  else
    l->tail = c->prev;
  c->prev = c->next = NULL;
}

static void list_append(struct conn_list *l, struct conn *c) {
  c->prev = l->tail;
  c->next = NULL;
  if (l->tail)
    l->tail->next = c;
  else
    l->head = c;
  l->tail = c;
}

static uint64_t deadline_after(const revd_server_t *srv, unsigned ms) {
  return ms ? uv_now(srv->loop) + ms : UINT64_MAX;
}

/* To the tail of its kind's list, due ms from now. */
static void relist(struct conn *c, enum deadline_kind kind, unsigned ms) {
  revd_server_t *srv = conn_server(c);
  revd__conn_unlist(c);
  c->on_list = kind;
  c->deadline = deadline_after(srv, ms);
  list_append(&srv->deadlines[kind], c);
}

void revd__conn_deadline(struct conn *c, enum deadline_kind kind, unsigned ms) {
  relist(c, kind, ms);
  revd__timer_arm(conn_server(c));
}

static void timer_cb(uv_timer_t *t);

/* Arms the timer for the earliest deadline unless it is already due no
 * later; a timer that fires early just re-arms itself (touches only push
 * deadlines later).  The lists have different timeouts, so an entry new to
 * one can be due before another's head: then the timer moves up. */
void revd__timer_arm(revd_server_t *srv) {
  uint64_t first = UINT64_MAX;
  for (int k = 0; k < DEADLINE_KINDS; k++)
    if (srv->deadlines[k].head && srv->deadlines[k].head->deadline < first)
      first = srv->deadlines[k].head->deadline;
  if (first == UINT64_MAX)
    return;
  uint64_t now = uv_now(srv->loop);
  uint64_t due_in = first > now ? first - now : 0;
  if (uv_is_active((uv_handle_t *)&srv->timer) && uv_timer_get_due_in(&srv->timer) <= due_in)
    return;
  uv_timer_start(&srv->timer, timer_cb, due_in, 0);
}

/* On every read of line and eof mode and every write: a touch only moves a
 * deadline later on the same list, so the timer, armed for the list's head
 * or earlier, needs no look. */
void revd__conn_touch(struct conn *c) {
  if (c->on_list != DEADLINE_IDLE)
    return; /* lingering, draining and waiting connections keep their deadline */
  relist(c, DEADLINE_IDLE, conn_server(c)->opts.idle_timeout_ms);
}

void revd__conn_drain(struct conn *c) {
  unsigned ms = conn_server(c)->opts.drain_timeout_ms;
  revd__conn_deadline(c, DEADLINE_DRAIN, ms ? ms : 1);
}

void revd__conn_wait_for_rest(struct conn *c) {
  revd__conn_deadline(c, DEADLINE_REST, REVD__REST_WAIT_MS);
}

void revd__conn_stop_waiting(struct conn *c) {
  revd_server_t *srv = conn_server(c);
  if (c->on_list != DEADLINE_REST)
    return;
  if (srv->closing)
    revd__conn_drain(c); /* the wind-down passed it by: its exchange is owed one */
  else
    revd__conn_deadline(c, DEADLINE_IDLE, srv->opts.idle_timeout_ms);
}

/* ---- when a deadline passes ------------------------------------------------ */

/* Has the reply moved on since the last look? */
static int reply_moved_on(struct conn *c) {
  if (!c->writes_pending)
    return 0;
  uint32_t unsent = revd__conn_unsent(c);
  int moved = unsent < c->out_seen;
  c->out_seen = unsent;
  return moved;
}

/* After the loop stalled (a stopped process, a long callback), input of a
 * message waits unread in the socket, and its client is not idle. */
static int message_input_waiting(struct conn *c) {
  return c->phase == CONN_READING && !c->read_paused && revd__conn_input_waiting(c);
}

/* The linger or drain deadline passed.  A lingering connection has its
 * reply out: close.  One still owed a reply at the drain deadline, or with
 * writes still queued, is cut short. */
static void lingering_expired(struct conn *c) {
  if (c->phase == CONN_LINGERING && c->writes_pending == 0)
    revd__conn_close(c);
  else
    revd__conn_cut_short(c);
}

/* The idle deadline passed. */
static void idle_expired(struct conn *c) {
  revd_server_t *srv = conn_server(c);
  if (reply_moved_on(c) || message_input_waiting(c)) {
    revd__conn_touch(c); /* a slow reader that keeps reading is not idle */
    return;
  }
  srv->stats.timeouts++;
  if (c->writes_pending)
    revd__conn_cut_short(c); /* not reading its reply */
  else
    revd__conn_close(c);     /* silent, or stalled mid-message: nothing owed */
}

/* The wait for the rest of a message is over.  Taken off the list first,
 * so the timer moves on whatever the mode does. */
static void rest_wait_expired(struct conn *c) {
  revd__conn_stop_waiting(c);
  conn_server(c)->proto->wait_over(c);
}

static void timer_cb(uv_timer_t *t) {
  revd_server_t *srv = container_of(t, revd_server_t, timer);
  uint64_t now = uv_now(srv->loop);
  struct conn_list *idle = &srv->deadlines[DEADLINE_IDLE];
  struct conn_list *linger = &srv->deadlines[DEADLINE_LINGER];
  struct conn_list *drain = &srv->deadlines[DEADLINE_DRAIN];
  struct conn_list *rest = &srv->deadlines[DEADLINE_REST];
  while (rest->head && rest->head->deadline <= now)
    rest_wait_expired(rest->head);
  while (linger->head && linger->head->deadline <= now)
    lingering_expired(linger->head);
  while (drain->head && drain->head->deadline <= now)
    lingering_expired(drain->head);
  while (idle->head && idle->head->deadline <= now)
    idle_expired(idle->head);
  revd__timer_arm(srv);
}

