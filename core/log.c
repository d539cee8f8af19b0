#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int log_level = MG_LOG_INFO;
static int log_journal; /* stderr is connected to journald */

static const char *const level_names[8] = {
    NULL, NULL, NULL, "error", "warning", "notice", "info", "debug"};

void mg_log_init(void) {
  /* systemd sets JOURNAL_STREAM=dev:ino of the stream it gave us; only when
   * it is still our stderr do we switch to <N> prefixes. */
  const char *js = getenv("JOURNAL_STREAM");
  struct stat st;
  unsigned long long dev, ino;
  log_journal = 0;
  if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
      fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
      (unsigned long long)st.st_ino == ino)
    log_journal = 1;
}

void mg_log_set_level(int level) {
  if (level >= MG_LOG_ERR && level <= MG_LOG_DEBUG)
    log_level = level;
}

int mg_log_get_level(void) { return log_level; }

int mg_log_level_parse(const char *name) {
  for (int i = MG_LOG_ERR; i <= MG_LOG_DEBUG; i++)
    if (name && strcmp(name, level_names[i]) == 0)
      return i;
  return -1;
}

const char *mg_log_level_name(int level) {
  if (level < MG_LOG_ERR || level > MG_LOG_DEBUG)
    return "unknown";
  return level_names[level];
}

void mg_logv(int level, const char *subsys, const char *fmt, va_list ap) {
  if (level > log_level)
    return;
  if (level < MG_LOG_ERR)
    level = MG_LOG_ERR;
  if (level > MG_LOG_DEBUG)
    level = MG_LOG_DEBUG;
  char msg[1024];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  /* One message is one line: a newline inside could forge a log entry. */
  for (char *p = msg; *p; p++)
    if (*p == '\n' || *p == '\r')
      *p = ' ';
  if (log_journal) {
    fprintf(stderr, "<%d>%s: %s\n", level, subsys, msg);
  } else {
    struct timespec ts;
    struct tm tm;
    char when[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ %s %s: %s\n", when, ts.tv_nsec / 1000000L,
            level_names[level], subsys, msg);
  }
}

void mg_log(int level, const char *subsys, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  mg_logv(level, subsys, fmt, ap);
  va_end(ap);
}
