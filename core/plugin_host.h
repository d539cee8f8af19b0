/*
 * plugin_host.h — loads device plugins (madoguchi/plugin.h), configures one
 * instance per device section of the config, runs their lifecycle on the
 * daemon's loop and routes their events and command results.
 *
 * Lifecycle: create -> configure (dlopen, ABI checks, config tables; also
 * what `madoctl config check` runs, with no loop) -> start (init+start of
 * every enabled instance; one failing device is reported, not fatal) ->
 * stop (stop callbacks, timers and watches closed) -> run the loop until it
 * has closed the handles -> destroy (fini, dlclose, free).
 */
#ifndef MG_PLUGIN_HOST_H
#define MG_PLUGIN_HOST_H

#include <uv.h>

#include <madoguchi/plugin.h>

#include "config.h"
#include "err.h"
#include "json.h"

/* One loaded shared object. */
struct mg_plugin_lib {
  char *path;                   /* owned */
  void *dl;                     /* dlopen handle */
  const struct mg_plugin *desc; /* from the entry function; lives in dl */
};

/* dlopen path (RTLD_NOW|RTLD_LOCAL), find MG_PLUGIN_ENTRY_SYMBOL, check the
 * ABI major, the struct size, name == file name without ".so", a known
 * kind, every mandatory callback.  err names the file and the rule. */
int mg_plugin_load(const char *path, struct mg_plugin_lib **out,
                   struct mg_err *err);
void mg_plugin_unload(struct mg_plugin_lib *lib); /* NULL is fine */

struct mg_plugin_host;

/* Called on the loop for every plugin emit(): the daemon forwards it to
 * the tablets of `counters` (NULL-terminated; empty = all). */
typedef void (*mg_plugin_emit_fn)(void *ud, const char *instance_id,
                                  const char *const *counters,
                                  const char *topic, const char *json);
/* Result of mg_plugin_host_command: status is an enum mg_plugin_status,
 * json the result object or NULL. */
typedef void (*mg_plugin_result_fn)(void *ud, int status, const char *json);

/* loop may be NULL for configure-only use (config check). */
int mg_plugin_host_create(uv_loop_t *loop, const char *plugin_dir,
                          mg_plugin_emit_fn emit, void *emit_ud,
                          struct mg_plugin_host **out);
/* Load the plugin of every device section and apply the section's other
 * keys through the plugin's config table.  Errors name file:line. */
int mg_plugin_host_configure(struct mg_plugin_host *h,
                             const struct mg_config *cfg, struct mg_err *err);
/* init + start every enabled instance.  Returns the number that failed
 * (each logged and kept with its state "failed" and reason). */
int mg_plugin_host_start(struct mg_plugin_host *h);
/* Send a command to a device; cb runs exactly once, on the loop (possibly
 * before this returns).  -ENOENT unknown id, -ENODEV not running. */
int mg_plugin_host_command(struct mg_plugin_host *h, const char *instance_id,
                           const char *op, const char *args_json,
                           mg_plugin_result_fn cb, void *ud);
void mg_plugin_host_stop(struct mg_plugin_host *h);
void mg_plugin_host_destroy(struct mg_plugin_host *h); /* NULL is fine */

/* For status/health: counts, and JSON arrays for `madoctl plugins`
 * (name, version, kind, abi, path) and `madoctl devices` (id, type,
 * plugin, counters, state, error, detail from describe()). */
size_t mg_plugin_host_count_plugins(const struct mg_plugin_host *h);
size_t mg_plugin_host_count_failed(const struct mg_plugin_host *h);
void mg_plugin_host_plugins_json(const struct mg_plugin_host *h,
                                 struct mg_jw *w);
void mg_plugin_host_devices_json(const struct mg_plugin_host *h,
                                 struct mg_jw *w);

const char *mg_plugin_kind_name(int kind); /* "card-reader", ... */

/* The device of section type `type` ("printer") bound to `counter`, else
 * one bound to no counter (serving all); NULL when none.  Borrowed id. */
const char *mg_plugin_host_device_for(const struct mg_plugin_host *h,
                                      const char *type, const char *counter);
/* The only device of section type `type` (madoctl's default); NULL when
 * there is none or several (*count says how many). */
const char *mg_plugin_host_device_only(const struct mg_plugin_host *h,
                                       const char *type, size_t *count);

#endif
