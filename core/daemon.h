/*
 * daemon.h — madoguchid's top level: owns the loop and every subsystem,
 * starts them in order, stops them gracefully on SIGTERM/SIGINT, reloads
 * on SIGHUP, and talks to systemd.
 */
#ifndef MG_DAEMON_H
#define MG_DAEMON_H

#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "address.h"
#include "config.h"
#include "crypto.h"
#include "ctl.h"
#include "http.h"
#include "pack_service.h"
#include "plugin_host.h"
#include "store.h"

struct mg_daemon {
  uv_loop_t loop;
  char *config_path;         /* NULL for the built-in demo configuration */
  struct mg_config *cfg;
  struct mg_store *store;
  struct mg_plugin_host *plugins;
  struct mg_http *http;
  struct mg_ctl *ctl;
  struct mg_pack_service *packs;
  struct mg_visits *visits;
  struct mg_sync *sync;        /* the city's tenant (sync/tenant_sync.h) */
  struct mg_key data_key;      /* residents' data at rest (crypto.h) */
  uv_timer_t housekeeping;     /* closes and purges cases (visit.h) */
  uv_timer_t audit_flush;      /* group commit of read audit rows */
  uv_fs_t sync_req;            /* the WAL's fdatasync (group commit) */
  int sync_busy;
  int housekeeping_on;
  struct mg_addr_db *addr;     /* the address dictionary; NULL: none yet */
  int addr_importing;          /* a `madoctl address import` is running */
  uv_timer_t export_timer;     /* retries linkage files (form_api.c) */
  int export_timer_on, export_busy;
  char export_app[33];         /* the application being exported */
  uv_signal_t sig_term, sig_int, sig_hup;
  uv_timer_t watchdog;
  int watchdog_on;
  int signals_on;
  char *box_id;
  char tls_fingerprint[100];
  int64_t run_id;
  int prev_clean;
  uint64_t start_ns;         /* uv_hrtime() at process start */
  time_t started_at;
  double ready_ms;           /* start to READY */
  int stopping;
};

/* Run the daemon until it is stopped.  cfg is taken over (freed at the
 * end); config_path (may be NULL) is kept for SIGHUP.  Returns the process
 * exit code: 0 after a graceful stop. */
int mg_daemon_run(struct mg_config *cfg, const char *config_path,
                  uint64_t start_ns);

/* API routes (api.c, visit_api.c). */
int mg__api_register(struct mg_daemon *d);
int mg__visit_api_register(struct mg_daemon *d);
/* address_api.c: the address routes, and a postal code's answer
 * {"postal_code", "addresses", "district"} (also for madoctl): -EINVAL bad
 * code, -ENODATA no dictionary. */
int mg__address_api_register(struct mg_daemon *d);
int mg__address_postal_json(struct mg_daemon *d, const char *code,
                            struct mg_jw *w, struct mg_err *err);
/* device_api.c: the card reader's routes, and madoctl card read (0: the
 * answer follows through mg_ctl_finish). */
int mg__device_api_register(struct mg_daemon *d);
int mg__device_ctl_card_read(struct mg_daemon *d, struct mg_ctl_call *call,
                             const struct mg_json *args, struct mg_err *err);
/* form_api.c: start exporting pending linkage files (after the plugins). */
void mg__form_api_start(struct mg_daemon *d);
/* Control commands (daemon.c), for tests. */
int mg__daemon_ctl(void *ud, struct mg_ctl_call *call, const char *cmd,
                   const struct mg_json *args, struct mg_jw *w,
                   struct mg_err *err);

#endif
