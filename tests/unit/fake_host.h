/*
 * fake_host.h — a struct mg_host for testing a plugin without the daemon
 * and without a loop (docs/plugins.md, "The fake host pattern"): services
 * record what they get; queued work runs inline or waits for fk_run();
 * timers wait for fk_fire(); fd watches run when fk_poll() finds them
 * ready.  Used by test_cups, test_csvexport and test_pcsc.
 * Header-only: every function is static inline, so a test that does not
 * use one does not warn.
 */
#ifndef MG_TEST_FAKE_HOST_H
#define MG_TEST_FAKE_HOST_H

#include <madoguchi/plugin.h>

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FK_MAX 64

struct fk_timer {
  void (*cb)(void *ud);
  void *ud;
  uint64_t ms;
  int armed; /* started and not stopped */
};

struct fk_work {
  void (*work)(void *ud);
  void (*done)(void *ud, int status);
  void *ud;
};

struct fk_watch {
  int fd, events;
  void (*cb)(void *ud, int fd, int revents);
  void *ud;
  int active; /* watched and not unwatched */
};

static struct {
  int deferred; /* 1: queue_work only records; fk_run() runs it */
  int refuse;   /* 1: queue_work and timer_start answer -ESHUTDOWN */
  int completes;
  uint64_t req[FK_MAX];
  int status[FK_MAX];
  char *json[FK_MAX];
  int events;
  char *event[FK_MAX]; /* "topic data" */
  int logs;
  char *log[FK_MAX];
  int n_timers;
  struct fk_timer timers[FK_MAX];
  int n_work;
  struct fk_work work[FK_MAX];
  int n_watches;
  struct fk_watch watches[FK_MAX];
} fk;

static inline void fk_reset(void) {
  for (int i = 0; i < fk.completes && i < FK_MAX; i++)
    free(fk.json[i]);
  for (int i = 0; i < fk.events && i < FK_MAX; i++)
    free(fk.event[i]);
  for (int i = 0; i < fk.logs && i < FK_MAX; i++)
    free(fk.log[i]);
  memset(&fk, 0, sizeof(fk));
}

static inline char *fk_strdup(const char *s) {
  char *d = strdup(s ? s : "");
  if (!d)
    abort();
  return d;
}

__attribute__((format(printf, 3, 4))) static inline void
fk_log(struct mg_instance *inst, int level, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  (void)inst;
  (void)level;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (fk.logs < FK_MAX)
    fk.log[fk.logs] = fk_strdup(buf);
  fk.logs++;
}

static inline int fk_queue(struct mg_instance *inst, void (*work)(void *ud),
                           void (*done)(void *ud, int status), void *ud) {
  (void)inst;
  if (fk.refuse)
    return -108; /* -ESHUTDOWN */
  if (fk.deferred) {
    if (fk.n_work >= FK_MAX)
      abort();
    fk.work[fk.n_work].work = work;
    fk.work[fk.n_work].done = done;
    fk.work[fk.n_work].ud = ud;
    fk.n_work++;
    return 0;
  }
  work(ud);
  done(ud, 0);
  return 0;
}

/* Run the oldest deferred work (status 0, or -ECANCELED to say it was
 * cancelled before it started); 0 when there was none. */
static inline int fk_run(int status) {
  struct fk_work w;
  if (!fk.n_work)
    return 0;
  w = fk.work[0];
  memmove(fk.work, fk.work + 1, (size_t)(fk.n_work - 1) * sizeof(w));
  fk.n_work--;
  if (status == 0)
    w.work(w.ud);
  w.done(w.ud, status);
  return 1;
}

static inline int fk_timer_start(struct mg_instance *inst, uint64_t timeout_ms,
                                 uint64_t repeat_ms, void (*cb)(void *ud),
                                 void *ud, struct mg_timer **out) {
  (void)inst;
  (void)repeat_ms;
  if (fk.refuse)
    return -108;
  if (fk.n_timers >= FK_MAX)
    abort();
  struct fk_timer *t = &fk.timers[fk.n_timers++];
  t->cb = cb;
  t->ud = ud;
  t->ms = timeout_ms;
  t->armed = 1;
  *out = (struct mg_timer *)t;
  return 0;
}

static inline void fk_timer_stop(struct mg_timer *t) {
  if (t)
    ((struct fk_timer *)t)->armed = 0;
}

/* Fire the oldest armed timer; 0 when none is armed. */
static inline int fk_fire(void) {
  for (int i = 0; i < fk.n_timers; i++) {
    if (fk.timers[i].armed) {
      fk.timers[i].cb(fk.timers[i].ud);
      return 1;
    }
  }
  return 0;
}

static inline int fk_armed(void) {
  int n = 0;
  for (int i = 0; i < fk.n_timers; i++)
    n += fk.timers[i].armed;
  return n;
}

static inline int fk_fd_watch(struct mg_instance *inst, int fd, int events,
                              void (*cb)(void *ud, int fd, int revents),
                              void *ud, struct mg_watch **out) {
  (void)inst;
  if (fk.refuse)
    return -108;
  if (fk.n_watches >= FK_MAX)
    abort();
  struct fk_watch *w = &fk.watches[fk.n_watches++];
  w->fd = fd;
  w->events = events;
  w->cb = cb;
  w->ud = ud;
  w->active = 1;
  *out = (struct mg_watch *)w;
  return 0;
}

static inline void fk_fd_unwatch(struct mg_watch *w) {
  if (w)
    ((struct fk_watch *)w)->active = 0;
}

static inline int fk_watching(void) {
  int n = 0;
  for (int i = 0; i < fk.n_watches; i++)
    n += fk.watches[i].active;
  return n;
}

/* Wait up to timeout_ms for the watched fds and run the callbacks of
 * those ready (the loop's part of fd_watch); the number run. */
static inline int fk_poll(int timeout_ms) {
  struct pollfd p[FK_MAX];
  int idx[FK_MAX], n = 0, ran = 0;
  for (int i = 0; i < fk.n_watches; i++) {
    if (!fk.watches[i].active)
      continue;
    p[n].fd = fk.watches[i].fd;
    p[n].events = (short)((fk.watches[i].events & MG_WATCH_READ ? POLLIN : 0) |
                          (fk.watches[i].events & MG_WATCH_WRITE ? POLLOUT : 0));
    p[n].revents = 0;
    idx[n++] = i;
  }
  if (poll(p, (nfds_t)n, timeout_ms) <= 0)
    return 0;
  for (int k = 0; k < n; k++) {
    struct fk_watch *w = &fk.watches[idx[k]];
    int ev = (p[k].revents & (POLLIN | POLLHUP | POLLERR) ? MG_WATCH_READ : 0) |
             (p[k].revents & (POLLOUT | POLLERR) ? MG_WATCH_WRITE : 0);
    if (ev && w->active) {
      w->cb(w->ud, w->fd, ev & w->events);
      ran++;
    }
  }
  return ran;
}

static inline int fk_emit(struct mg_instance *inst, const char *topic,
                          const char *json) {
  char buf[2048];
  (void)inst;
  snprintf(buf, sizeof(buf), "%s %s", topic, json ? json : "");
  if (fk.events < FK_MAX)
    fk.event[fk.events] = fk_strdup(buf);
  fk.events++;
  return 0;
}

static inline void fk_complete(struct mg_instance *inst, uint64_t req_id,
                               int status, const char *json) {
  (void)inst;
  if (fk.completes < FK_MAX) {
    fk.req[fk.completes] = req_id;
    fk.status[fk.completes] = status;
    fk.json[fk.completes] = fk_strdup(json);
  }
  fk.completes++;
}

static inline const char *fk_id(struct mg_instance *inst) {
  (void)inst;
  return "fake-printer";
}

/* The answer to request req_id ("" when none). */
static inline const char *fk_json_for(uint64_t req_id) {
  for (int i = 0; i < fk.completes && i < FK_MAX; i++)
    if (fk.req[i] == req_id)
      return fk.json[i];
  return "";
}

/* 1 when no log line contains needle (residents' data stays out). */
static inline int fk_logs_lack(const char *needle) {
  for (int i = 0; i < fk.logs && i < FK_MAX; i++)
    if (strstr(fk.log[i], needle))
      return 0;
  return 1;
}

static const struct mg_host fk_host = {
    .abi_major = MG_PLUGIN_ABI_MAJOR,
    .abi_minor = MG_PLUGIN_ABI_MINOR,
    .size = sizeof(struct mg_host),
    .log = fk_log,
    .fd_watch = fk_fd_watch,
    .fd_unwatch = fk_fd_unwatch,
    .timer_start = fk_timer_start,
    .timer_stop = fk_timer_stop,
    .queue_work = fk_queue,
    .emit = fk_emit,
    .complete = fk_complete,
    .instance_id = fk_id,
};

#endif /* MG_TEST_FAKE_HOST_H */
