/* monitor.c — see monitor.h. */
#include "monitor.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "systemd.h"

/* The events worth a line when they happen, and at which level.  Timeouts
 * and resets are what clients do every day: debug.  Rejections and limits
 * are what an operator tunes against: info. */
static const struct event {
  size_t offset;
  int level;
  const char *what;
} events[] = {
    {offsetof(revd_stats_t, timeouts), LOG_DEBUG, "idle timeouts"},
    {offsetof(revd_stats_t, resets), LOG_DEBUG, "connections reset"},
    {offsetof(revd_stats_t, too_large), LOG_INFO, "messages past --max-message"},
    {offsetof(revd_stats_t, cut_short), LOG_INFO, "replies cut short"},
    {offsetof(revd_stats_t, over_budget), LOG_INFO, "connections over --max-buffered"},
    {offsetof(revd_stats_t, oom), LOG_INFO, "connections out of memory"},
    {offsetof(revd_stats_t, rejected_max_conns), LOG_INFO, "rejected by --max-conns"},
    {offsetof(revd_stats_t, rejected_per_ip), LOG_INFO, "rejected by --max-conns-per-ip"},
    {offsetof(revd_stats_t, rejected_no_memory), LOG_INFO, "rejected for lack of memory"},
    {offsetof(revd_stats_t, rejected_fd_limit), LOG_WARN,
     "rejected for lack of file descriptors (raise ulimit -n or LimitNOFILE=)"},
};

static uint64_t field(const revd_stats_t *st, size_t offset) {
  return *(const uint64_t *)((const char *)st + offset);
}

static void tick(uv_timer_t *t) {
  struct monitor *m = t->data;
  revd_stats_t now;
  memset(&now, 0, sizeof now);
  m->collect(&now, m->arg);
  for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
    uint64_t before = field(&m->last, events[i].offset), after = field(&now, events[i].offset);
    if (after > before)
      log_at(events[i].level, "%s: %llu in the last second", events[i].what,
             (unsigned long long)(after - before));
  }
  m->last = now;
  monitor_notify_status(&now);
}

int monitor_start(struct monitor *m, uv_loop_t *loop, monitor_collect_cb collect, void *arg) {
  m->collect = collect;
  m->arg = arg;
  memset(&m->last, 0, sizeof m->last);
  int r = uv_timer_init(loop, &m->timer);
  if (r != 0)
    return r;
  m->timer.data = m;
  uv_unref((uv_handle_t *)&m->timer);
  return uv_timer_start(&m->timer, tick, MONITOR_INTERVAL_MS, MONITOR_INTERVAL_MS);
}

void monitor_close(struct monitor *m) {
  if (m->timer.type == UV_TIMER && !uv_is_closing((uv_handle_t *)&m->timer))
    uv_close((uv_handle_t *)&m->timer, NULL);
}

/* Every counter, so none drifts out of the line. */
void monitor_log_counters(int level, const char *what, const revd_stats_t *st) {
  char line[1024];
  size_t used = 0;
#define FORMAT(f, kind, name, help)                                                          \
  if (used < sizeof line)                                                                    \
    used += (size_t)snprintf(line + used, sizeof line - used, " " #f "=%llu",               \
                             (unsigned long long)st->f);
  REVD_STATS_MAP(FORMAT)
#undef FORMAT
  log_at(level, "%s: %llu connections open,%s", what, (unsigned long long)st->active, line);
}

void monitor_notify_status(const revd_stats_t *st) {
  notify("STATUS=%llu connections open, %llu exchanges completed, %llu rejected",
         (unsigned long long)st->active, (unsigned long long)st->completed,
         (unsigned long long)st->rejected);
}
