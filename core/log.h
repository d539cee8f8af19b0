/*
 * log.h — the daemon's log.  One line per message on stderr.  Under systemd
 * (JOURNAL_STREAM names our stderr) each line starts with the sd-daemon
 * "<N>" priority prefix so journald keeps the level; elsewhere a UTC
 * timestamp and the level name come first.
 *
 * Privacy: never log residents' data (names, addresses, birth dates,
 * 個人番号, card contents), PINs, passwords or tokens.  Log ids and counts.
 */
#ifndef MG_LOG_H
#define MG_LOG_H

#include <stdarg.h>

enum mg_log_level {   /* syslog priorities */
  MG_LOG_ERR = 3,
  MG_LOG_WARNING = 4,
  MG_LOG_NOTICE = 5,
  MG_LOG_INFO = 6,
  MG_LOG_DEBUG = 7
};

/* Decide the output form from the environment (call once at start). */
void mg_log_init(void);
void mg_log_set_level(int level);
int mg_log_get_level(void);
/* "error|warning|notice|info|debug" -> level; -1 when unknown. */
int mg_log_level_parse(const char *name);
const char *mg_log_level_name(int level);

void mg_log(int level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void mg_logv(int level, const char *subsys, const char *fmt, va_list ap);

#define mg_log_err(sub, ...) mg_log(MG_LOG_ERR, sub, __VA_ARGS__)
#define mg_log_warn(sub, ...) mg_log(MG_LOG_WARNING, sub, __VA_ARGS__)
#define mg_log_notice(sub, ...) mg_log(MG_LOG_NOTICE, sub, __VA_ARGS__)
#define mg_log_info(sub, ...) mg_log(MG_LOG_INFO, sub, __VA_ARGS__)
#define mg_log_debug(sub, ...) mg_log(MG_LOG_DEBUG, sub, __VA_ARGS__)

#endif
