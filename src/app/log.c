/* log.c — see log.h.  stderr is line-buffered and each line is one fprintf,
 * so lines from several threads do not interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int threshold = LOG_INFO;
static int journal; /* stderr is connected to journald */

static const struct {
  const char *name;
  int level;
} levels[] = {{"error", LOG_ERROR}, {"warn", LOG_WARN}, {"info", LOG_INFO}, {"debug", LOG_DEBUG}};

int log_level_parse(const char *name) {
  for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
    if (strcmp(name, levels[i].name) == 0)
      return levels[i].level;
  return -1;
}

static const char *level_name(int level) {
  for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
    if (levels[i].level == level)
      return levels[i].name;
  return "info"; /* LOG_ALWAYS */
}

/* systemd.exec(5): JOURNAL_STREAM is "DEVICE:INODE" of the stream stderr
 * was connected to; when stderr was redirected since, it no longer matches. */
static int stderr_is_journal(void) {
  const char *env = getenv("JOURNAL_STREAM");
  unsigned long long dev, ino;
  struct stat st;
  if (!env || sscanf(env, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) != 0)
    return 0;
  return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(int level) {
  threshold = level;
  journal = stderr_is_journal();
  setvbuf(stderr, NULL, _IOLBF, 0);
}

int log_enabled(int level) { return level == LOG_ALWAYS || level <= threshold; }

/* ISO 8601, local time, milliseconds and the UTC offset with its colon. */
static void format_time(char *buf, size_t size) {
  struct timeval tv;
  struct tm tm;
  char zone[8];
  gettimeofday(&tv, NULL);
  localtime_r(&tv.tv_sec, &tm);
  size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
  strftime(zone, sizeof zone, "%z", &tm); /* +0100 */
  snprintf(buf + n, size - n, ".%03d%.3s:%.2s", (int)(tv.tv_usec / 1000), zone, zone + 3);
}

void log_at(int level, const char *fmt, ...) {
  if (!log_enabled(level))
    return;
  char text[2048], stamp[48];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  int prio = level == LOG_ALWAYS ? LOG_INFO : level;
  if (journal) {
    fprintf(stderr, "<%d>%s\n", prio, text);
    return;
  }
  format_time(stamp, sizeof stamp);
  fprintf(stderr, "%s revd[%ld] %s: %s\n", stamp, (long)getpid(), level_name(prio), text);
}
