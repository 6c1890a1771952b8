/* monitor.h — what revd says about itself while it runs: once a second it
 * diffs the counters and logs one line per kind of event that happened
 * (timeouts, rejections by reason, ...), and sends systemd a STATUS= line.
 * Nothing per exchange: a flood of rejections is one line a second. */
#ifndef REVD_MONITOR_H
#define REVD_MONITOR_H

#include "revd.h"

#define MONITOR_INTERVAL_MS 1000

/* Fills *out (zeroed by the caller) with the counters of every server. */
typedef void (*monitor_collect_cb)(revd_stats_t *out, void *arg);

struct monitor {
  uv_timer_t timer;
  monitor_collect_cb collect;
  void *arg;
  revd_stats_t last; /* the counters at the previous tick */
};

/* Starts the timer on loop (unreferenced: it never keeps the loop alive).
 * m must stay valid until monitor_close()'s handle close has run.
 * Returns 0 or a negative UV_E* code. */
int monitor_start(struct monitor *m, uv_loop_t *loop, monitor_collect_cb collect, void *arg);

/* Stops and closes the timer (harmless if monitor_start() failed or was never called). */
void monitor_close(struct monitor *m);

/* One line: "WHAT: N connections open, accepted=... completed=... ...". */
void monitor_log_counters(int level, const char *what, const revd_stats_t *st);

/* STATUS=... for systemd from *st (nothing without NOTIFY_SOCKET). */
void monitor_notify_status(const revd_stats_t *st);

#endif
