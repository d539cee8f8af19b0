/*
 * plugin_host.c — the device plugin loader and the instances' lifecycle.
 *
 * Ownership in short: the host owns one `struct hlib` per plugin file and
 * one `struct mg_instance` per device section.  Both are reference counted
 * because libuv may still owe a plugin a queued-work `done` callback after
 * the daemon destroyed the host: such an instance (and its shared object)
 * lives on until that callback ran, so no plugin code is called after
 * dlclose and no ctx after free.
 *
 * Watches and timers are tracked per instance.  The plugin releases its
 * own with fd_unwatch/timer_stop (freed in libuv's close callback); what it
 * forgot is closed by the host at stop, logged as a plugin bug, and the
 * struct is kept until the instance is freed so that a late fd_unwatch or
 * timer_stop from fini() still points at valid memory.
 */
#include "plugin_host.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

#define SUBSYS "plugins"
#define EVENT_MAX_BYTES ((size_t)64 << 10) /* an event goes to every tablet */
#define RESULT_MAX_BYTES ((size_t)1 << 20)
#define DESCRIBE_MAX 4096
#define TABLE_MAX 256 /* a config table longer than this has lost its end */
#define NAME_MAX_LEN 64

enum inst_state {
  ST_CONFIGURED,
  ST_RUNNING,
  ST_FAILED,
  ST_STOPPED,
  ST_DISABLED
};
static const char *const state_names[] = {"configured", "running", "failed",
                                          "stopped", "disabled"};

/* One loaded plugin file, shared by its instances. */
struct hlib {
  struct mg_plugin_lib *lib; /* owned */
  size_t refs;               /* the host's + one per instance */
};

/* Watch and timer states (struct hnode.state). */
enum { H_OPEN, H_ORPHAN, H_CLOSED };

/* Common head of struct mg_watch and struct mg_timer. */
struct hnode {
  struct mg_instance *inst;
  struct hnode *next; /* in inst->handles while the instance tracks it */
  int state;
  int free_on_close; /* the instance is gone: the close callback frees */
  void *ud;
  union {
    uv_handle_t h;
    uv_poll_t poll;
    uv_timer_t timer;
  } uv;
};

struct mg_watch {
  struct hnode n; /* first: a struct hnode * is a struct mg_watch * */
  int fd, events;
  void (*cb)(void *ud, int fd, int revents);
};

struct mg_timer {
  struct hnode n; /* first, as above */
  void (*cb)(void *ud);
};

struct work {
  uv_work_t req;
  struct mg_instance *inst; /* holds a reference */
  struct work *next;
  void (*work)(void *ud);
  void (*done)(void *ud, int status);
  void *ud;
};

/* A command whose result is still owed to the caller. */
struct pending {
  uint64_t req_id;
  mg_plugin_result_fn cb;
  void *ud;
  struct pending *next;
};

struct mg_instance {
  struct mg_plugin_host *h; /* NULL once the host is destroyed */
  struct hlib *lib;         /* NULL while disabled or not loaded */
  char *id, *type, *plugin; /* owned copies of the config section */
  char **counters;          /* owned, NULL-terminated */
  char *log_name;           /* "plugin <id>" */
  enum inst_state state;
  char *reason;       /* owned: why it failed */
  void *ctx;          /* owned, ctx_size bytes */
  int applied;        /* config values live in ctx */
  int inited;         /* init returned OK: fini is due */
  int accepting;      /* may open watches, timers and work */
  char last_err[200]; /* last error the plugin logged, for the reason */
  struct hnode *handles;
  struct work *works;
  struct pending *pending;
  size_t refs; /* the host's + one per queued work */
};

struct mg_plugin_host {
  uv_loop_t *loop;  /* borrowed; NULL for configure-only use */
  char *plugin_dir; /* owned; NULL: take cfg->plugin_dir */
  mg_plugin_emit_fn emit;
  void *emit_ud;
  struct hlib **libs;
  size_t n_libs;
  struct mg_instance **insts;
  size_t n_insts;
  uint64_t next_req;
  int configured;
};

static const char *status_name(int st) {
  static const char *const names[] = {"FATAL", "RETRY", "OK", "PENDING"};
  return st >= MG_PLUGIN_FATAL && st <= MG_PLUGIN_PENDING ? names[st + 2]
                                                          : "an unknown status";
}

const char *mg_plugin_kind_name(int kind) {
  static const char *const names[] = {
      NULL,     "card-reader", "printer", "signature-pad",
      "camera", "exporter",    "ocr",     "scanner"};
  if (kind < MG_PLUGIN_KIND_CARD_READER || kind > MG_PLUGIN_KIND_SCANNER)
    return "unknown";
  return names[kind];
}

/* A JSON object small enough: what plugins hand to tablets must not break
 * their parsers. */
static int json_object_ok(const char *json, size_t max) {
  struct mg_json_limits lim = {0, max};
  struct mg_json *v = NULL;
  int ok = mg_json_parse(json, strlen(json), &lim, &v, NULL) == 0 &&
           v->type == MG_JSON_OBJECT;
  mg_json_free(v);
  return ok;
}

/* ---------------------------------------------------------------------- */
/* Loader                                                                  */

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

/* Storage of each MG_CFG_* type in ctx (index: the type). */
static const struct {
  size_t size, align;
} storage[] = {
    [MG_CFG_STR] = {sizeof(char *), alignof(char *)},
    [MG_CFG_INT] = {sizeof(int64_t), alignof(int64_t)},
    [MG_CFG_BOOL] = {sizeof(int), alignof(int)},
    [MG_CFG_DURATION] = {sizeof(int64_t), alignof(int64_t)},
    [MG_CFG_SIZE] = {sizeof(int64_t), alignof(int64_t)},
    [MG_CFG_ENUM] = {sizeof(int), alignof(int)},
    [MG_CFG_LIST] = {sizeof(struct mg_config_list),
                     alignof(struct mg_config_list)},
};

/* Every item must be stored inside ctx, aligned, with a type we know:
 * mg_config_set writes there blindly. */
static int check_table(const char *path, const struct mg_plugin *d,
                       struct mg_err *err) {
  size_t i;
  for (i = 0; i < TABLE_MAX && d->config[i].name; i++) {
    const struct mg_config_item *it = &d->config[i];
    if (it->type < MG_CFG_STR || it->type > MG_CFG_LIST)
      return mg_err_set(err, -EINVAL, "%s: config key `%s` has unknown type %d",
                        path, it->name, it->type);
    size_t sz = storage[it->type].size, al = storage[it->type].align;
    if (it->type == MG_CFG_ENUM && !it->choices)
      return mg_err_set(err, -EINVAL,
                        "%s: config key `%s` is an enum without choices", path,
                        it->name);
    if (it->offset % al || it->offset > d->ctx_size ||
        sz > d->ctx_size - it->offset)
      return mg_err_set(err, -EINVAL,
                        "%s: config key `%s` (offset %zu) is not an aligned "
                        "field inside ctx_size %zu",
                        path, it->name, it->offset, d->ctx_size);
  }
  if (i == TABLE_MAX)
    return mg_err_set(err, -EINVAL,
                      "%s: config table has no end (an item with name NULL) "
                      "within %d items",
                      path, TABLE_MAX);
  return 0;
}

static int check_desc(const char *path, const struct mg_plugin *d,
                      struct mg_err *err) {
  const size_t min = offsetof(struct mg_plugin, fini) + sizeof(void (*)(void));
  const char *base = base_name(path);
  size_t stem = strlen(base);
  if (stem > 3 && strcmp(base + stem - 3, ".so") == 0)
    stem -= 3;

  if (!d)
    return mg_err_set(err, -EINVAL, "%s: %s() returned NULL", path,
                      MG_PLUGIN_ENTRY_SYMBOL);
  if (d->abi_major != MG_PLUGIN_ABI_MAJOR)
    return mg_err_set(
        err, -EPROTO, "%s: plugin ABI %u.%u, this daemon speaks %d.x", path,
        (unsigned)d->abi_major, (unsigned)d->abi_minor, MG_PLUGIN_ABI_MAJOR);
  if (d->size < min)
    return mg_err_set(err, -EPROTO,
                      "%s: short struct mg_plugin (%u bytes; ABI %d needs at "
                      "least %zu)",
                      path, (unsigned)d->size, MG_PLUGIN_ABI_MAJOR, min);
  if (!d->name)
    return mg_err_set(err, -EINVAL, "%s: the plugin declares no name", path);
  if (strlen(d->name) != stem || strncmp(d->name, base, stem) != 0)
    return mg_err_set(err, -EINVAL,
                      "%s: the plugin's name \"%s\" must equal the file name "
                      "without .so (\"%.*s\")",
                      path, d->name, (int)stem, base);
  if (d->kind < MG_PLUGIN_KIND_CARD_READER || d->kind > MG_PLUGIN_KIND_SCANNER)
    return mg_err_set(err, -EINVAL,
                      "%s: unknown plugin kind %d (known: 1 card-reader to 7 "
                      "scanner)",
                      path, d->kind);
  const char *missing = !d->init      ? "init"
                        : !d->start   ? "start"
                        : !d->command ? "command"
                        : !d->stop    ? "stop"
                        : !d->fini    ? "fini"
                                      : NULL;
  if (missing)
    return mg_err_set(err, -EINVAL, "%s: mandatory callback `%s` is NULL", path,
                      missing);
  return d->config ? check_table(path, d, err) : 0;
}

/* describe() exists only for plugins whose struct reaches it. */
static int (*describe_fn(const struct mg_plugin *d))(void *, char *, size_t) {
  if (d->size < offsetof(struct mg_plugin, describe) + sizeof(d->describe))
    return NULL;
  return d->describe;
}

int mg_plugin_load(const char *path, struct mg_plugin_lib **out,
                   struct mg_err *err) {
  void *dl = NULL;
  struct mg_plugin_lib *lib = NULL;
  struct stat st;
  int rc = 0;

  if (out)
    *out = NULL;
  if (!path || !out)
    return mg_err_set(err, -EINVAL, "plugin load: no path");
  /* dlopen searches the library path for a bare name: never wanted here. */
  if (!strchr(path, '/'))
    return mg_err_set(err, -EINVAL,
                      "%s: a plugin path must contain a / (dlopen would "
                      "search the library path)",
                      path);
  if (stat(path, &st) != 0) {
    int e = errno;
    return mg_err_set(err, -e, "%s: cannot load plugin: %s", path, strerror(e));
  }
  /* Code anyone may replace would run as the daemon. */
  if (st.st_mode & S_IWOTH)
    return mg_err_set(err, -EPERM,
                      "%s: the plugin file is writable by every user "
                      "(chmod o-w)",
                      path);
  dlerror();
  dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!dl) {
    const char *e = dlerror();
    rc = mg_err_set(err, -ENOEXEC, "%s: cannot load plugin: %s", path,
                    e ? e : "dlopen failed");
    goto out;
  }
  void *sym = dlsym(dl, MG_PLUGIN_ENTRY_SYMBOL);
  if (!sym) {
    rc = mg_err_set(err, -ENOEXEC,
                    "%s: no MG entry symbol %s (not a madoguchi plugin?)", path,
                    MG_PLUGIN_ENTRY_SYMBOL);
    goto out;
  }
  mg_plugin_entry_fn entry;
  memcpy(&entry, &sym, sizeof(entry)); /* object to function pointer */
  const struct mg_plugin *d = entry();
  if ((rc = check_desc(path, d, err)))
    goto out;
  lib = calloc(1, sizeof(*lib));
  if (!lib || !(lib->path = strdup(path))) {
    free(lib);
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  lib->dl = dl;
  lib->desc = d;
  dl = NULL;
  *out = lib;
out:
  if (dl)
    dlclose(dl);
  return rc;
}

void mg_plugin_unload(struct mg_plugin_lib *lib) {
  if (!lib)
    return;
  dlclose(lib->dl);
  free(lib->path);
  free(lib);
}

static void lib_unref(struct hlib *hl) {
  if (--hl->refs)
    return;
  mg_plugin_unload(hl->lib);
  free(hl);
}

/* ---------------------------------------------------------------------- */
/* Handles                                                                 */

static int can_open(const struct mg_instance *inst) {
  return inst && inst->h && inst->h->loop && inst->accepting;
}

static void node_link(struct mg_instance *inst, struct hnode *n, void *ud) {
  n->inst = inst;
  n->ud = ud;
  n->state = H_OPEN;
  n->uv.h.data = n;
  n->next = inst->handles;
  inst->handles = n;
}

/* Lists are short (a few handles per device): a walk is fine. */
static void node_unlink(struct hnode *n) {
  struct hnode **pp = &n->inst->handles;
  while (*pp != n)
    pp = &(*pp)->next;
  *pp = n->next;
}

static void close_free(uv_handle_t *h) { free(h->data); }

static void close_orphan(uv_handle_t *h) {
  struct hnode *n = h->data;
  if (n->free_on_close)
    free(n);
  else
    n->state = H_CLOSED;
}

/* The plugin releases a handle.  One the host already closed is left to
 * the host. */
static void node_release(struct hnode *n) {
  if (!n || n->state != H_OPEN)
    return;
  node_unlink(n);
  n->state = H_CLOSED;
  uv_close(&n->uv.h, close_free);
}

/* Close what the plugin forgot; the structs stay until the instance goes. */
static void inst_close_handles(struct mg_instance *inst, const char *when) {
  size_t forgot = 0;
  for (struct hnode *n = inst->handles; n; n = n->next) {
    if (n->state != H_OPEN)
      continue;
    n->state = H_ORPHAN;
    uv_close(&n->uv.h, close_orphan);
    forgot++;
  }
  if (forgot)
    mg_log_warn(inst->log_name,
                "%zu watch(es)/timer(s) still open after %s; closed by the "
                "host (plugin bug)",
                forgot, when);
}

static void inst_free_handles(struct mg_instance *inst) {
  struct hnode *n = inst->handles, *next;
  for (; n; n = next) {
    next = n->next;
    if (n->state == H_CLOSED)
      free(n);
    else if (n->state == H_ORPHAN)
      n->free_on_close = 1; /* libuv still holds it */
    else
      uv_close(&n->uv.h, close_free);
  }
  inst->handles = NULL;
}

static void poll_cb(uv_poll_t *p, int status, int events) {
  struct mg_watch *w = p->data;
  int rev = 0;
  if (status < 0) {
    /* libuv stopped the watch; the plugin's own I/O will see the error. */
    mg_log_debug(w->n.inst->log_name, "fd watch error: %s",
                 uv_strerror(status));
    rev = w->events;
  } else {
    rev = ((events & UV_READABLE) ? MG_WATCH_READ : 0) |
          ((events & UV_WRITABLE) ? MG_WATCH_WRITE : 0);
  }
  w->cb(w->n.ud, w->fd, rev); /* may release w: not touched afterwards */
}

static void timer_cb(uv_timer_t *t) {
  struct mg_timer *tm = t->data;
  tm->cb(tm->n.ud); /* may release tm */
}

static void work_run(uv_work_t *req) {
  struct work *wk = req->data;
  wk->work(wk->ud);
}

static void inst_unref(struct mg_instance *inst);

static void work_done(uv_work_t *req, int status) {
  struct work *wk = req->data;
  struct mg_instance *inst = wk->inst;
  void (*done)(void *, int) = wk->done;
  void *ud = wk->ud;
  struct work **pp = &inst->works;
  while (*pp != wk)
    pp = &(*pp)->next;
  *pp = wk->next;
  free(wk);
  done(ud, status == 0 ? 0 : -ECANCELED);
  inst_unref(inst); /* may run fini and dlclose once the host is gone */
}

static void inst_cancel_work(struct mg_instance *inst) {
  for (struct work *wk = inst->works; wk; wk = wk->next)
    uv_cancel((uv_req_t *)&wk->req); /* UV_EBUSY when already running */
}

/* ---------------------------------------------------------------------- */
/* Services (struct mg_host)                                               */

__attribute__((format(printf, 3, 4))) static void
svc_log(struct mg_instance *inst, int level, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  msg[0] = '\0';
  if (fmt) {
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
  }
  if (level < MG_LOG_ERR)
    level = MG_LOG_ERR;
  if (level > MG_LOG_DEBUG)
    level = MG_LOG_DEBUG;
  if (!inst) {
    mg_log(level, "plugin ?", "%s", msg);
    return;
  }
  if (level == MG_LOG_ERR) { /* kept (cut short) as a failure's reason */
    size_t n = strnlen(msg, sizeof(inst->last_err) - 1);
    memcpy(inst->last_err, msg, n);
    inst->last_err[n] = '\0';
  }
  mg_log(level, inst->log_name, "%s", msg);
}

static int svc_fd_watch(struct mg_instance *inst, int fd, int events,
                        void (*cb)(void *ud, int fd, int revents), void *ud,
                        struct mg_watch **out) {
  const int all = MG_WATCH_READ | MG_WATCH_WRITE;
  struct mg_watch *w;
  int rc;
  if (out)
    *out = NULL;
  if (!inst || !cb || !out || fd < 0 || !(events & all) || (events & ~all))
    return -EINVAL;
  if (!can_open(inst))
    return -ESHUTDOWN;
  if (!(w = calloc(1, sizeof(*w))))
    return -ENOMEM;
  /* On failure uv_poll_init has not registered the handle yet. */
  if ((rc = uv_poll_init(inst->h->loop, &w->n.uv.poll, fd))) {
    free(w);
    return rc;
  }
  w->fd = fd;
  w->events = events;
  w->cb = cb;
  node_link(inst, &w->n, ud);
  rc = uv_poll_start(&w->n.uv.poll,
                     ((events & MG_WATCH_READ) ? UV_READABLE : 0) |
                         ((events & MG_WATCH_WRITE) ? UV_WRITABLE : 0),
                     poll_cb);
  if (rc) {
    node_release(&w->n);
    return rc;
  }
  *out = w;
  return 0;
}

static void svc_fd_unwatch(struct mg_watch *w) {
  node_release(w ? &w->n : NULL);
}

static int svc_timer_start(struct mg_instance *inst, uint64_t timeout_ms,
                           uint64_t repeat_ms, void (*cb)(void *ud), void *ud,
                           struct mg_timer **out) {
  struct mg_timer *t;
  int rc;
  if (out)
    *out = NULL;
  if (!inst || !cb || !out)
    return -EINVAL;
  if (!can_open(inst))
    return -ESHUTDOWN;
  if (!(t = calloc(1, sizeof(*t))))
    return -ENOMEM;
  uv_timer_init(inst->h->loop, &t->n.uv.timer); /* cannot fail */
  t->cb = cb;
  node_link(inst, &t->n, ud);
  if ((rc = uv_timer_start(&t->n.uv.timer, timer_cb, timeout_ms, repeat_ms))) {
    node_release(&t->n);
    return rc;
  }
  *out = t;
  return 0;
}

static void svc_timer_stop(struct mg_timer *t) {
  node_release(t ? &t->n : NULL);
}

static int svc_queue_work(struct mg_instance *inst, void (*work)(void *ud),
                          void (*done)(void *ud, int status), void *ud) {
  struct work *wk;
  int rc;
  if (!inst || !work || !done)
    return -EINVAL;
  if (!can_open(inst))
    return -ESHUTDOWN;
  if (!(wk = calloc(1, sizeof(*wk))))
    return -ENOMEM;
  wk->req.data = wk;
  wk->inst = inst;
  wk->work = work;
  wk->done = done;
  wk->ud = ud;
  if ((rc = uv_queue_work(inst->h->loop, &wk->req, work_run, work_done))) {
    free(wk);
    return rc;
  }
  wk->next = inst->works;
  inst->works = wk;
  inst->refs++;
  return 0;
}

#define LOWER_DIGITS "abcdefghijklmnopqrstuvwxyz0123456789"

/* 1 to NAME_MAX_LEN characters, all from alphabet. */
static int word_ok(const char *s, const char *alphabet) {
  size_t n = s ? strlen(s) : 0;
  return n > 0 && n <= NAME_MAX_LEN && strspn(s, alphabet) == n;
}

static int svc_emit(struct mg_instance *inst, const char *topic,
                    const char *json) {
  if (!inst)
    return -EINVAL;
  /* Short dotted words: they end up in tablet-side switch tables. */
  if (!word_ok(topic, LOWER_DIGITS "._-")) {
    mg_log_warn(inst->log_name,
                "emit with a bad topic dropped (plugin bug): a topic is 1-%d "
                "of a-z 0-9 . - _",
                NAME_MAX_LEN);
    return -EINVAL;
  }
  if (json && !json_object_ok(json, EVENT_MAX_BYTES)) {
    mg_log_warn(inst->log_name,
                "event %s dropped: its data is not a JSON object of at most "
                "%zu bytes (plugin bug)",
                topic, EVENT_MAX_BYTES);
    return -EINVAL;
  }
  if (!inst->h)
    return -ESHUTDOWN;
  if (inst->h->emit)
    inst->h->emit(inst->h->emit_ud, inst->id,
                  (const char *const *)inst->counters, topic, json);
  return 0;
}

/* Hand a result to the caller exactly once; p is consumed. */
static void deliver(struct mg_instance *inst, struct pending *p, int status,
                    const char *json) {
  mg_plugin_result_fn cb = p->cb;
  void *ud = p->ud;
  if (status != MG_PLUGIN_OK && status != MG_PLUGIN_RETRY &&
      status != MG_PLUGIN_FATAL) {
    mg_log_warn(inst->log_name,
                "request %llu finished with %s (%d); reported as FATAL "
                "(plugin bug)",
                (unsigned long long)p->req_id, status_name(status), status);
    status = MG_PLUGIN_FATAL;
    json = NULL;
  }
  if (json && !json_object_ok(json, RESULT_MAX_BYTES)) {
    mg_log_warn(inst->log_name,
                "request %llu: the result is not a JSON object of at most "
                "%zu bytes (plugin bug)",
                (unsigned long long)p->req_id, RESULT_MAX_BYTES);
    status = MG_PLUGIN_FATAL;
    json = "{\"error\":\"the device plugin returned an invalid result\"}";
  }
  free(p);
  cb(ud, status, json);
}

/* Remove and return the pending record of req_id, or NULL. */
static struct pending *pending_take(struct mg_instance *inst, uint64_t req_id) {
  for (struct pending **pp = &inst->pending; *pp; pp = &(*pp)->next) {
    if ((*pp)->req_id == req_id) {
      struct pending *p = *pp;
      *pp = p->next;
      return p;
    }
  }
  return NULL;
}

static void svc_complete(struct mg_instance *inst, uint64_t req_id, int status,
                         const char *json) {
  struct pending *p;
  if (!inst)
    return;
  if (!(p = pending_take(inst, req_id))) {
    /* After stop the host has answered already: a late result is normal. */
    int late = inst->state == ST_STOPPED || !inst->h;
    mg_log(late ? MG_LOG_DEBUG : MG_LOG_WARNING, inst->log_name,
           "complete() for unknown or finished request %llu ignored%s",
           (unsigned long long)req_id, late ? "" : " (plugin bug)");
    return;
  }
  deliver(inst, p, status, json);
}

static const char *svc_instance_id(struct mg_instance *inst) {
  return inst ? inst->id : "";
}

/* Static: a plugin may keep the pointer for as long as its code runs. */
static const struct mg_host services = {
    .abi_major = MG_PLUGIN_ABI_MAJOR,
    .abi_minor = MG_PLUGIN_ABI_MINOR,
    .size = sizeof(struct mg_host),
    .log = svc_log,
    .fd_watch = svc_fd_watch,
    .fd_unwatch = svc_fd_unwatch,
    .timer_start = svc_timer_start,
    .timer_stop = svc_timer_stop,
    .queue_work = svc_queue_work,
    .emit = svc_emit,
    .complete = svc_complete,
    .instance_id = svc_instance_id,
};

/* ---------------------------------------------------------------------- */
/* Instances                                                               */

static void inst_unref(struct mg_instance *inst) {
  if (--inst->refs)
    return;
  const struct mg_plugin *d = inst->lib ? inst->lib->lib->desc : NULL;
  if (d && inst->inited)
    d->fini(inst->ctx);
  if (d && inst->applied)
    mg_config_release(d->config, inst->ctx);
  free(inst->ctx);
  inst_free_handles(inst); /* after fini: it may still release handles */
  while (inst->pending) {  /* only without stop(): nobody waits any more */
    struct pending *p = inst->pending;
    inst->pending = p->next;
    free(p);
  }
  if (inst->lib)
    lib_unref(inst->lib);
  for (char **c = inst->counters; c && *c; c++)
    free(*c);
  free(inst->counters);
  free(inst->id);
  free(inst->type);
  free(inst->plugin);
  free(inst->log_name);
  free(inst->reason);
  free(inst);
}

/* The loaded plugin called `name`, loading plugin_dir/name.so once. */
static int host_lib(struct mg_plugin_host *h, const char *dir, const char *name,
                    struct hlib **out, struct mg_err *err) {
  struct mg_plugin_lib *lib = NULL;
  struct hlib *hl = NULL, **v;
  char *path = NULL;
  int rc;
  for (size_t i = 0; i < h->n_libs; i++) {
    if (strcmp(h->libs[i]->lib->desc->name, name) == 0) {
      *out = h->libs[i];
      return 0;
    }
  }
  if (asprintf(&path, "%s/%s.so", dir, name) < 0) {
    path = NULL;
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  if ((rc = mg_plugin_load(path, &lib, err)))
    goto out;
  v = realloc(h->libs, (h->n_libs + 1) * sizeof(*v));
  hl = calloc(1, sizeof(*hl));
  if (v)
    h->libs = v;
  if (!v || !hl) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  hl->lib = lib;
  hl->refs = 1;
  h->libs[h->n_libs++] = hl;
  mg_log_info(SUBSYS, "loaded %s %s (%s, ABI %u.%u) from %s", lib->desc->name,
              lib->desc->version ? lib->desc->version : "?",
              mg_plugin_kind_name(lib->desc->kind),
              (unsigned)lib->desc->abi_major, (unsigned)lib->desc->abi_minor,
              path);
  *out = hl;
  lib = NULL;
  hl = NULL;
out:
  mg_plugin_unload(lib);
  free(hl);
  free(path);
  return rc;
}

/* Register the device section as an instance; load and configure it when
 * enabled.  The instance is kept in h even on error, for destroy. */
static int inst_configure(struct mg_plugin_host *h, const struct mg_config *cfg,
                          const struct mg_config_device *d, const char *dir,
                          struct mg_err *err) {
  struct mg_instance *inst = calloc(1, sizeof(*inst));
  struct mg_err lerr = {{0}};
  char where[160];
  int rc;

  if (!inst)
    return mg_err_set(err, -ENOMEM, "out of memory");
  h->insts[h->n_insts++] = inst;
  inst->h = h;
  inst->refs = 1;
  inst->id = strdup(d->id);
  inst->type = strdup(d->type);
  inst->plugin = strdup(d->plugin ? d->plugin : "");
  inst->counters = calloc(d->counters.n + 1, sizeof(char *));
  if (asprintf(&inst->log_name, "plugin %s", d->id) < 0)
    inst->log_name = NULL;
  if (!inst->id || !inst->type || !inst->plugin || !inst->counters ||
      !inst->log_name)
    return mg_err_set(err, -ENOMEM, "out of memory");
  for (size_t i = 0; i < d->counters.n; i++)
    if (!(inst->counters[i] = strdup(d->counters.items[i])))
      return mg_err_set(err, -ENOMEM, "out of memory");
  snprintf(where, sizeof(where), "[%s \"%s\"]", d->type, d->id);

  if (!d->enabled) {
    inst->state = ST_DISABLED;
    return 0;
  }
  inst->state = ST_CONFIGURED;
  /* The name becomes a path: nothing that could leave plugin_dir. */
  if (!word_ok(d->plugin, LOWER_DIGITS "ABCDEFGHIJKLMNOPQRSTUVWXYZ_-"))
    return mg_err_set(err, -EINVAL,
                      "%s:%d: %s: plugin name `%s` may hold only letters, "
                      "digits, _ and - (it names plugin_dir/NAME.so)",
                      cfg->path, d->line, where, inst->plugin);
  if ((rc = host_lib(h, dir, d->plugin, &inst->lib, &lerr)))
    return mg_err_set(err, rc, "%s:%d: %s: %s", cfg->path, d->line, where,
                      lerr.msg);
  inst->lib->refs++;

  const struct mg_plugin *desc = inst->lib->lib->desc;
  int want = mg_config_device_kind(d->type);
  if (desc->kind != want)
    return mg_err_set(err, -EINVAL,
                      "%s:%d: %s uses plugin %s which drives %s devices "
                      "(this section declares a %s)",
                      cfg->path, d->line, where, desc->name,
                      mg_plugin_kind_name(desc->kind),
                      mg_plugin_kind_name(want));
  if (!(inst->ctx = calloc(1, desc->ctx_size ? desc->ctx_size : 1)))
    return mg_err_set(err, -ENOMEM, "out of memory");
  inst->applied = 1; /* even a failed apply may have stored defaults */
  return mg_config_apply(desc->config, inst->ctx, d->kv, d->n_kv, cfg->path,
                         d->line, where, err);
}

/* ---------------------------------------------------------------------- */
/* Host                                                                    */

int mg_plugin_host_create(uv_loop_t *loop, const char *plugin_dir,
                          mg_plugin_emit_fn emit, void *emit_ud,
                          struct mg_plugin_host **out) {
  struct mg_plugin_host *h;
  if (!out)
    return -EINVAL;
  *out = NULL;
  if (!(h = calloc(1, sizeof(*h))))
    return -ENOMEM;
  if (plugin_dir && !(h->plugin_dir = strdup(plugin_dir))) {
    free(h);
    return -ENOMEM;
  }
  h->loop = loop;
  h->emit = emit;
  h->emit_ud = emit_ud;
  *out = h;
  return 0;
}

int mg_plugin_host_configure(struct mg_plugin_host *h,
                             const struct mg_config *cfg, struct mg_err *err) {
  const char *dir;
  int rc = 0;
  if (!h || !cfg)
    return mg_err_set(err, -EINVAL, "plugin host: nothing to configure");
  if (h->configured)
    return mg_err_set(err, -EALREADY, "plugins are already configured");
  h->configured = 1;
  dir = h->plugin_dir ? h->plugin_dir : cfg->plugin_dir;
  if (!dir || dir[0] != '/')
    return mg_err_set(err, -EINVAL, "%s: plugin_dir must be an absolute path",
                      cfg->path);
  if (!(h->insts =
            calloc(cfg->n_devices ? cfg->n_devices : 1, sizeof(*h->insts))))
    return mg_err_set(err, -ENOMEM, "out of memory");
  for (size_t i = 0; i < cfg->n_devices && rc == 0; i++)
    rc = inst_configure(h, cfg, &cfg->devices[i], dir, err);
  return rc;
}

static void inst_fail(struct mg_instance *inst, const char *phase, int rc) {
  inst->accepting = 0;
  inst->state = ST_FAILED;
  inst_close_handles(inst, phase);
  inst_cancel_work(inst);
  free(inst->reason);
  if (asprintf(&inst->reason, "%s returned %s%s%s", phase, status_name(rc),
               inst->last_err[0] ? ": " : "", inst->last_err) < 0)
    inst->reason = NULL;
  mg_log_err(inst->log_name,
             "device failed (%s); the daemon goes on without it",
             inst->reason ? inst->reason : phase);
}

static int inst_start(struct mg_instance *inst) {
  const struct mg_plugin *d = inst->lib->lib->desc;
  int rc;
  inst->accepting = 1;
  inst->last_err[0] = '\0';
  if ((rc = d->init(inst->ctx, &services, inst)) != MG_PLUGIN_OK) {
    inst_fail(inst, "init", rc); /* init cleans up after itself: no fini */
    return -1;
  }
  inst->inited = 1;
  if ((rc = d->start(inst->ctx)) != MG_PLUGIN_OK) {
    d->stop(inst->ctx); /* one cleanup path for a half-started device */
    inst_fail(inst, "start", rc);
    return -1;
  }
  inst->state = ST_RUNNING;
  mg_log_info(inst->log_name, "running (%s)", d->name);
  return 0;
}

int mg_plugin_host_start(struct mg_plugin_host *h) {
  int failed = 0;
  if (!h || !h->loop)
    return -EINVAL;
  for (size_t i = 0; i < h->n_insts; i++)
    if (h->insts[i]->state == ST_CONFIGURED && inst_start(h->insts[i]))
      failed++;
  return failed;
}

static struct mg_instance *find_inst(const struct mg_plugin_host *h,
                                     const char *id) {
  for (size_t i = 0; id && i < h->n_insts; i++)
    if (strcmp(h->insts[i]->id, id) == 0)
      return h->insts[i];
  return NULL;
}

/* Results are delivered synchronously when the plugin answers at once: the
 * caller's cb may run before this returns (as the header allows). */
int mg_plugin_host_command(struct mg_plugin_host *h, const char *instance_id,
                           const char *op, const char *args_json,
                           mg_plugin_result_fn cb, void *ud) {
  struct mg_instance *inst;
  struct pending *p;
  if (!h || !op || !*op || !cb)
    return -EINVAL;
  if (!(inst = find_inst(h, instance_id)))
    return -ENOENT;
  if (inst->state != ST_RUNNING)
    return -ENODEV;
  if (!(p = calloc(1, sizeof(*p))))
    return -ENOMEM;
  p->req_id = ++h->next_req;
  p->cb = cb;
  p->ud = ud;
  /* Listed before the call: the plugin may complete() from inside it. */
  p->next = inst->pending;
  inst->pending = p;
  uint64_t req_id = p->req_id;
  int st = inst->lib->lib->desc->command(inst->ctx, req_id, op, args_json);
  if (st == MG_PLUGIN_PENDING)
    return 0;
  if (!(p = pending_take(inst, req_id))) {
    mg_log_warn(inst->log_name,
                "request %llu returned %s after complete() (plugin bug)",
                (unsigned long long)req_id, status_name(st));
    return 0;
  }
  deliver(inst, p, st, NULL);
  return 0;
}

void mg_plugin_host_stop(struct mg_plugin_host *h) {
  if (!h)
    return;
  for (size_t i = 0; i < h->n_insts; i++) {
    struct mg_instance *inst = h->insts[i];
    if (inst->state != ST_RUNNING)
      continue;
    inst->accepting = 0;
    inst->state = ST_STOPPED; /* commands from callbacks below: -ENODEV */
    inst->lib->lib->desc->stop(inst->ctx);
    inst_close_handles(inst, "stop");
    inst_cancel_work(inst);
    while (inst->pending) { /* what the plugin did not finish itself */
      struct pending *p = inst->pending;
      inst->pending = p->next;
      deliver(inst, p, MG_PLUGIN_RETRY, "{\"error\":\"stopping\"}");
    }
    mg_log_info(inst->log_name, "stopped");
  }
}

void mg_plugin_host_destroy(struct mg_plugin_host *h) {
  if (!h)
    return;
  mg_plugin_host_stop(h);
  for (size_t i = 0; i < h->n_insts; i++) {
    struct mg_instance *inst = h->insts[i];
    inst->h = NULL;
    if (inst->works)
      mg_log_notice(inst->log_name,
                    "work still running; the device is freed when it ends");
    inst_unref(inst);
  }
  for (size_t i = 0; i < h->n_libs; i++)
    lib_unref(h->libs[i]);
  free(h->insts);
  free(h->libs);
  free(h->plugin_dir);
  free(h);
}

/* ---------------------------------------------------------------------- */
/* Status                                                                  */

size_t mg_plugin_host_count_plugins(const struct mg_plugin_host *h) {
  return h ? h->n_libs : 0;
}

size_t mg_plugin_host_count_failed(const struct mg_plugin_host *h) {
  size_t n = 0;
  for (size_t i = 0; h && i < h->n_insts; i++)
    n += h->insts[i]->state == ST_FAILED;
  return n;
}

void mg_plugin_host_plugins_json(const struct mg_plugin_host *h,
                                 struct mg_jw *w) {
  mg_jw_arr(w);
  for (size_t i = 0; h && i < h->n_libs; i++) {
    const struct mg_plugin_lib *lib = h->libs[i]->lib;
    const struct mg_plugin *d = lib->desc;
    char abi[32];
    snprintf(abi, sizeof(abi), "%u.%u", (unsigned)d->abi_major,
             (unsigned)d->abi_minor);
    mg_jw_obj(w);
    mg_jw_kstr(w, "name", d->name);
    mg_jw_kstr(w, "version", d->version);
    mg_jw_kstr(w, "kind", mg_plugin_kind_name(d->kind));
    mg_jw_kstr(w, "abi", abi);
    mg_jw_kstr(w, "path", lib->path);
    mg_jw_kstr(w, "description", d->description);
    mg_jw_kint(w, "instances", (int64_t)h->libs[i]->refs - 1);
    mg_jw_obj_end(w);
  }
  mg_jw_arr_end(w);
}

/* describe() output as a JSON object, or NULL when absent or broken. */
static const char *describe(const struct mg_instance *inst, char *buf,
                            size_t len) {
  if (!inst->lib || !inst->inited)
    return NULL;
  int (*fn)(void *, char *, size_t) = describe_fn(inst->lib->lib->desc);
  if (!fn)
    return NULL;
  int n = fn(inst->ctx, buf, len);
  if (n < 0 || (size_t)n >= len)
    return NULL;
  buf[n] = '\0';
  if (strlen(buf) != (size_t)n || !json_object_ok(buf, len)) {
    mg_log_warn(inst->log_name, "describe() wrote no JSON object (plugin bug)");
    return NULL;
  }
  return buf;
}

const char *mg_plugin_host_device_for(const struct mg_plugin_host *h,
                                      const char *type, const char *counter) {
  const char *any = NULL;
  for (size_t i = 0; h && i < h->n_insts; i++) {
    const struct mg_instance *inst = h->insts[i];
    if (strcmp(inst->type, type) != 0)
      continue;
    if (!inst->counters || !inst->counters[0]) {
      any = any ? any : inst->id;
      continue;
    }
    for (char **c = inst->counters; *c; c++)
      if (strcmp(*c, counter) == 0)
        return inst->id;
  }
  return any;
}

const char *mg_plugin_host_device_only(const struct mg_plugin_host *h,
                                       const char *type, size_t *count) {
  const char *one = NULL;
  *count = 0;
  for (size_t i = 0; h && i < h->n_insts; i++)
    if (strcmp(h->insts[i]->type, type) == 0 && !(*count)++)
      one = h->insts[i]->id;
  return *count == 1 ? one : NULL;
}

void mg_plugin_host_devices_json(const struct mg_plugin_host *h,
                                 struct mg_jw *w) {
  mg_jw_arr(w);
  for (size_t i = 0; h && i < h->n_insts; i++) {
    const struct mg_instance *inst = h->insts[i];
    char buf[DESCRIBE_MAX];
    const char *detail = describe(inst, buf, sizeof(buf));
    mg_jw_obj(w);
    mg_jw_kstr(w, "id", inst->id);
    mg_jw_kstr(w, "type", inst->type);
    mg_jw_kstr(w, "plugin", inst->plugin);
    mg_jw_key(w, "counters");
    mg_jw_arr(w);
    for (char **c = inst->counters; c && *c; c++)
      mg_jw_str(w, *c);
    mg_jw_arr_end(w);
    mg_jw_kstr(w, "state", state_names[inst->state]);
    mg_jw_kstr(w, "error", inst->reason); /* null unless failed */
    mg_jw_key(w, "detail");
    if (detail)
      mg_jw_raw(w, detail);
    else
      mg_jw_null(w);
    mg_jw_obj_end(w);
  }
  mg_jw_arr_end(w);
}
