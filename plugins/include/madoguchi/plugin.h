/*
 * madoguchi/plugin.h — the device plugin ABI of madoguchid.
 *
 * A plugin is a shared object that exports exactly one symbol,
 * MG_PLUGIN_ENTRY_SYMBOL, a function returning a pointer to a constant
 * struct mg_plugin.  Every struct crossing the boundary starts with
 * {abi_major, abi_minor, size} so that either side can tell what the other
 * was compiled against:
 *
 *   - abi_major changes only on an incompatible change; the host refuses a
 *     plugin whose major differs from its own.
 *   - abi_minor grows when fields are appended.  Fields are only ever
 *     appended; a reader looks at a field only when `size` covers it.
 *
 * Threading: every callback runs on the daemon's event loop thread and must
 * not block.  Blocking device I/O (PC/SC transmit, CUPS, camera capture)
 * goes through host->queue_work(); its `work` function runs on a worker
 * thread and must not call any other host service.
 *
 * Order of callbacks: init; start; command any number of times; stop;
 * fini.  If init fails, neither stop nor fini is called; if start fails,
 * stop and fini are.  fini runs only after every queued work's done().
 * Once stop has begun, fd_watch, timer_start and queue_work return
 * -ESHUTDOWN.
 *
 * Build plugins with -fvisibility=hidden and mark only the entry function
 * MG_PLUGIN_EXPORT.  See docs/plugins.md.
 */
#ifndef MADOGUCHI_PLUGIN_H
#define MADOGUCHI_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MG_PLUGIN_ABI_MAJOR 1
/* 1: MG_PLUGIN_KIND_SCANNER (slip scanners, G5).  A 1.0 host refuses a
 * scanner plugin by its kind; nothing else changed. */
#define MG_PLUGIN_ABI_MINOR 1
#define MG_PLUGIN_ENTRY_SYMBOL "mg_plugin_entry_v1"
#define MG_PLUGIN_EXPORT __attribute__((visibility("default")))

/* Result vocabulary of every plugin callback and of command completion. */
enum mg_plugin_status {
  MG_PLUGIN_OK = 0,       /* done */
  MG_PLUGIN_PENDING = 1,  /* accepted; the result follows via host->complete */
  MG_PLUGIN_RETRY = -1,   /* transient (device busy, card removed): try later */
  MG_PLUGIN_FATAL = -2    /* permanent: bad config, missing device, bug */
};

/* What a plugin drives; a config section type must match it. */
enum mg_plugin_kind {
  MG_PLUGIN_KIND_CARD_READER = 1, /* [reader "id"]   */
  MG_PLUGIN_KIND_PRINTER = 2,     /* [printer "id"]  */
  MG_PLUGIN_KIND_SIGNATURE_PAD = 3, /* [pad "id"]    */
  MG_PLUGIN_KIND_CAMERA = 4,      /* [camera "id"]   */
  MG_PLUGIN_KIND_EXPORTER = 5,    /* [exporter "id"] */
  MG_PLUGIN_KIND_OCR = 6,         /* [ocr "id"]      */
  MG_PLUGIN_KIND_SCANNER = 7      /* [scanner "id"]  slip scanners (G5) */
};

/* Log levels are syslog priorities, as journald keeps them. */
enum mg_plugin_log_level {
  MG_PLUGIN_LOG_ERR = 3,
  MG_PLUGIN_LOG_WARNING = 4,
  MG_PLUGIN_LOG_NOTICE = 5,
  MG_PLUGIN_LOG_INFO = 6,
  MG_PLUGIN_LOG_DEBUG = 7
};

/*
 * Declarative configuration (after Fluent Bit's config_map).  The host
 * parses the plugin's config section, converts each value by `type`, checks
 * it and stores it at `offset` inside the plugin's context (ctx_size bytes,
 * zeroed, owned by the host).  A key missing from the table is an error
 * naming file:line.  Storage per type:
 *   MG_CFG_STR       char *      (NUL-terminated, owned and freed by the host)
 *   MG_CFG_INT       int64_t     (decimal; `min`/`max` inclusive when min<max)
 *   MG_CFG_BOOL      int         (true/false, yes/no, on/off, 1/0)
 *   MG_CFG_DURATION  int64_t ms  ("250ms", "30s", "5m", "2h"; bare = ms)
 *   MG_CFG_SIZE      int64_t B   ("512", "64k", "10M", "1G"; powers of 1024)
 *   MG_CFG_ENUM      int         (index into `choices`, "a|b|c")
 *   MG_CFG_LIST      struct mg_config_list (comma separated, trimmed)
 */
enum mg_config_type {
  MG_CFG_STR = 1,
  MG_CFG_INT = 2,
  MG_CFG_BOOL = 3,
  MG_CFG_DURATION = 4,
  MG_CFG_SIZE = 5,
  MG_CFG_ENUM = 6,
  MG_CFG_LIST = 7
};

#define MG_CFG_REQUIRED 0x1u /* no default: the key must be given */
#define MG_CFG_RELOAD 0x2u   /* SIGHUP may change it while running */

struct mg_config_list {
  size_t n;
  char **items; /* owned by the host */
};

struct mg_config_item {
  int type;            /* enum mg_config_type */
  const char *name;    /* key, [a-z0-9_]+ */
  const char *def;     /* default as text, NULL for none */
  size_t offset;       /* offsetof(struct your_ctx, field) */
  unsigned flags;      /* MG_CFG_* */
  int64_t min, max;    /* MG_CFG_INT/DURATION/SIZE bounds when min < max */
  const char *choices; /* MG_CFG_ENUM: "a|b|c" */
  /* Extra rule for a value already converted and stored: NULL when fine,
   * otherwise a static English sentence naming the rule broken. */
  const char *(*check)(const void *stored);
  const char *desc;    /* one line for docs and --help */
};
/* A table ends with an item whose name is NULL. */

struct mg_instance; /* opaque: one configured device of a plugin */
struct mg_watch;    /* opaque: an fd watch */
struct mg_timer;    /* opaque: a timer */

#define MG_WATCH_READ 0x1
#define MG_WATCH_WRITE 0x2

/* Host services, handed to init().  Append-only. */
struct mg_host {
  uint32_t abi_major, abi_minor;
  uint32_t size; /* sizeof(struct mg_host) as the host compiled it */

  /* Messages go to the daemon's log with the instance id prefixed.
   * Never pass residents' data, PINs or card contents. */
  void (*log)(struct mg_instance *inst, int level, const char *fmt, ...)
      __attribute__((format(printf, 3, 4)));

  /* Watch fd for MG_WATCH_* events; cb runs on the loop.  The plugin keeps
   * ownership of fd and must unwatch before closing it. */
  int (*fd_watch)(struct mg_instance *inst, int fd, int events,
                  void (*cb)(void *ud, int fd, int revents), void *ud,
                  struct mg_watch **out);
  void (*fd_unwatch)(struct mg_watch *w);

  /* First after timeout_ms, then every repeat_ms (0: once).  A one-shot
   * timer that has fired still needs timer_stop to free it. */
  int (*timer_start)(struct mg_instance *inst, uint64_t timeout_ms,
                     uint64_t repeat_ms, void (*cb)(void *ud), void *ud,
                     struct mg_timer **out);
  void (*timer_stop)(struct mg_timer *t); /* frees t */

  /* work(ud) runs on a worker thread, then done(ud, status) on the loop;
   * status is 0, or -ECANCELED when the daemon is stopping. */
  int (*queue_work)(struct mg_instance *inst, void (*work)(void *ud),
                    void (*done)(void *ud, int status), void *ud);

  /* Send an event to the tablets: topic like "card.inserted" (1-64 chars of
   * a-z 0-9 . _ -), data a JSON object of at most 64 KiB (or NULL).  Copied;
   * returns 0 or a negative errno. */
  int (*emit)(struct mg_instance *inst, const char *topic, const char *json);

  /* Finish a command that returned MG_PLUGIN_PENDING: status is an
   * enum mg_plugin_status, json a result object (or NULL).  Copied.  May be
   * called from inside command() before it returns PENDING (to answer a
   * bad request with a reason). */
  void (*complete)(struct mg_instance *inst, uint64_t req_id, int status,
                   const char *json);

  /* The instance id from the config section, e.g. "counter-1". */
  const char *(*instance_id)(struct mg_instance *inst);
};

/* What a plugin declares.  Append-only. */
struct mg_plugin {
  uint32_t abi_major, abi_minor;
  uint32_t size; /* sizeof(struct mg_plugin) as the plugin compiled it */

  const char *name;        /* "pcsc"; also the file name "pcsc.so" */
  const char *version;     /* "1.0.0" */
  int kind;                /* enum mg_plugin_kind */
  const char *description; /* one line */
  const struct mg_config_item *config; /* may be NULL: no keys */
  size_t ctx_size;         /* bytes the host allocates, zeroed */

  /* Mandatory callbacks. */
  /* Config is applied to ctx before init.  Keep host and inst. */
  int (*init)(void *ctx, const struct mg_host *host, struct mg_instance *inst);
  /* Open devices, start watches and timers. */
  int (*start)(void *ctx);
  /* A request from the daemon (API or madoctl): op like "print", args a
   * JSON object or NULL.  Return OK (done, no data), PENDING (complete()
   * follows, exactly once), RETRY or FATAL. */
  int (*command)(void *ctx, uint64_t req_id, const char *op,
                 const char *args_json);
  /* Stop watches, timers and devices; queued work may still finish. */
  void (*stop)(void *ctx);
  /* Free what init allocated (not ctx itself, not config values). */
  void (*fini)(void *ctx);

  /* Optional (may be NULL): write a JSON object describing the device
   * state for `madoctl devices` into buf; return bytes written or -1. */
  int (*describe)(void *ctx, char *buf, size_t len);
};

typedef const struct mg_plugin *(*mg_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif
#endif /* MADOGUCHI_PLUGIN_H */
