/* log.h — revd's log lines on stderr, one per call, each with a level.
 *
 * Under systemd (JOURNAL_STREAM names our stderr) a line is "<6>text": the
 * sd-daemon.h priority prefix journald turns into the entry's level, with no
 * timestamp (journald adds its own).  Anywhere else (terminal, file, pipe) it
 * is "2026-11-27T22:57:23.123+01:00 revd[1234] info: text". */
#ifndef REVD_LOG_H
#define REVD_LOG_H

/* syslog's numbers, so a level is its own journald priority. */
enum log_level { LOG_ERROR = 3, LOG_WARN = 4, LOG_INFO = 6, LOG_DEBUG = 7 };

/* Printed at every --log-level: with --port 0 the address line is the only
 * way to learn the port.  Logged with info's priority. */
#define LOG_ALWAYS (-1)

/* Reads the environment (JOURNAL_STREAM against stderr's device and inode)
 * and sets the threshold.  Call once, before the first line. */
void log_init(int level);

/* Parses "error", "warn", "info", "debug".  Returns the level or -1. */
int log_level_parse(const char *name);

/* Nonzero when a line at `level` would be printed. */
int log_enabled(int level);

/* One line at `level` (LOG_ALWAYS: whatever the threshold). */
void log_at(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
