/*
 * daemon.c — start-up order, signals, systemd notification, the control
 * commands, and a graceful stop.
 *
 * Start: directories -> plugins configured (dlopen + config tables) ->
 * database opened and migrated -> TLS material -> HTTPS listener -> control
 * socket -> devices started -> READY=1.  Anything failing before READY is
 * reported and the process exits non-zero with nothing left running.
 *
 * Stop (SIGTERM/SIGINT): STOPPING=1 -> HTTP drains (new requests 503,
 * requests in flight finish up to drain_timeout) and lws tears down ->
 * devices stop -> control socket closes -> our handles close -> the loop
 * ends -> plugins unloaded, database marked clean and closed -> exit 0.
 */
#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "audit.h"
#include "auth.h"
#include "log.h"
#include "outbox.h"
#include "sdnotify.h"
#include "tenant_sync.h"
#include "tls.h"
#include "version.h"
#include "visit.h"
#include "visit_transfer.h"

/* mkdir -p with a mode for the directories we create. */
static int mkdirs(const char *path, mode_t mode) {
  char tmp[4096];
  if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
    return -ENAMETOOLONG;
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(tmp, mode) != 0 && errno != EEXIST)
      return -errno;
    *p = '/';
  }
  if (mkdir(tmp, mode) != 0 && errno != EEXIST)
    return -errno;
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Events from devices go to the tablets.                                  */

/* One event frame for the tablets: {"topic", "device", "counters", "data"}.
 * device is NULL for the box's own events (pack activated, ...). */
static void broadcast(struct mg_daemon *d, const char *topic,
                      const char *device, const char *const *counters,
                      const char *json) {
  struct mg_buf b;
  struct mg_jw w;
  if (!d->http)
    return;
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  mg_jw_obj(&w);
  mg_jw_kstr(&w, "topic", topic);
  mg_jw_kstr(&w, "device", device);
  mg_jw_key(&w, "counters");
  mg_jw_arr(&w);
  size_t n = 0;
  for (; counters && counters[n]; n++)
    mg_jw_str(&w, counters[n]);
  mg_jw_arr_end(&w);
  mg_jw_kraw(&w, "data", json && *json ? json : "null");
  mg_jw_obj_end(&w);
  /* only the tablets of the device's counters hear it (U1); no counters:
   * box-wide, every tablet */
  if (!b.oom && !w.bad)
    mg_http_broadcast_to(d->http, b.data, counters, n);
  mg_buf_free(&b);
}

/* The events WebSocket's gate (mg_http_set_ws_auth): the counter of the
 * upgrade's mg_session, or refused when there is no live session. */
static int ws_auth(void *ud, const char *cookie, char *counter, size_t len) {
  struct mg_daemon *d = ud;
  struct mg_auth_session s;
  char token[80];
  int rc = -1;
  memset(&s, 0, sizeof(s));
  if (!d->store || mg__auth_cookie_token(cookie, token, sizeof(token)) != 0)
    goto out;
  if (mg_auth_session_get(d->store, token, time(NULL), &s) != 0)
    goto out;
  if (snprintf(counter, len, "%s", s.counter) >= (int)len)
    goto out;
  rc = 0;
out:
  OPENSSL_cleanse(token, sizeof(token));
  OPENSSL_cleanse(&s, sizeof(s));
  return rc;
}

static void on_plugin_event(void *ud, const char *instance_id,
                            const char *const *counters, const char *topic,
                            const char *json) {
  broadcast(ud, topic, instance_id, counters, json);
}

static void on_box_event(void *ud, const char *topic, const char *json) {
  broadcast(ud, topic, NULL, NULL, json);
}

/* ---------------------------------------------------------------------- */
/* Control commands                                                        */

static void status_json(struct mg_daemon *d, struct mg_jw *w) {
  char when[32], host[256] = "";
  struct tm tm;
  int port = d->http ? mg_http_port(d->http) : -1;
  gmtime_r(&d->started_at, &tm);
  strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
  mg_config_listen_split(d->cfg->listen, host, sizeof(host), &port);
  if (d->http)
    port = mg_http_port(d->http);

  mg_jw_obj(w);
  mg_jw_kstr(w, "version", MG_VERSION);
  mg_jw_kint(w, "pid", (int64_t)getpid());
  mg_jw_kstr(w, "state", d->stopping ? "stopping" : "running");
  mg_jw_kstr(w, "box_id", d->box_id);
  mg_jw_kstr(w, "started_at", when);
  mg_jw_kint(w, "uptime_s", (int64_t)(time(NULL) - d->started_at));
  mg_jw_key(w, "ready_ms");
  mg_jw_double(w, d->ready_ms);
  mg_jw_kstr(w, "config", d->config_path ? d->config_path : "(built-in demo)");
  mg_jw_kstr(w, "log_level", mg_log_level_name(mg_log_get_level()));
  mg_jw_kbool(w, "previous_run_clean", d->prev_clean);
  mg_jw_key(w, "http");
  mg_jw_obj(w);
  mg_jw_kstr(w, "listen", d->cfg->listen);
  mg_jw_kint(w, "port", port);
  mg_jw_kint(w, "websocket_clients",
             d->http ? (int64_t)mg_http_ws_clients(d->http) : 0);
  mg_jw_kint(w, "requests_in_flight",
             d->http ? (int64_t)mg_http_inflight(d->http) : 0);
  mg_jw_kstr(w, "tls_cert", d->cfg->cert);
  mg_jw_kstr(w, "tls_fingerprint_sha256", d->tls_fingerprint);
  mg_jw_obj_end(w);
  mg_jw_key(w, "store");
  mg_jw_obj(w);
  mg_jw_kstr(w, "state_dir", d->cfg->state_dir);
  mg_jw_kint(w, "schema", mg_store_version(d->store));
  mg_jw_kint(w, "schema_latest", mg_store_latest_version());
  mg_jw_obj_end(w);
  mg_jw_key(w, "pack");
  mg_pack_service_json(d->packs, 0, w);
  mg_jw_key(w, "address");
  mg_jw_obj(w);
  mg_jw_kstr(w, "file", d->cfg->address_file);
  mg_jw_kint(w, "rows", mg_addr_rows(d->addr));
  mg_jw_kstr(w, "imported_at", d->addr ? mg_addr_imported_at(d->addr) : NULL);
  mg_jw_kbool(w, "importing", d->addr_importing);
  mg_jw_obj_end(w);
  mg_jw_key(w, "plugins");
  mg_jw_obj(w);
  mg_jw_kint(w, "loaded", (int64_t)mg_plugin_host_count_plugins(d->plugins));
  mg_jw_kint(w, "failed_devices", (int64_t)mg_plugin_host_count_failed(d->plugins));
  mg_jw_obj_end(w);
  mg_jw_obj_end(w);
}

static void reload(struct mg_daemon *d);

/* A device's answer goes back to the waiting madoctl. */
static void on_device_result(void *ud, int status, const char *json) {
  struct mg_ctl_call *call = ud;
  struct mg_json *r = NULL;
  char msg[600];
  if (status == MG_PLUGIN_OK) {
    mg_ctl_finish(call, 0, json && *json ? json : "{}", NULL);
    return;
  }
  /* The plugin's {"error": ...} says what to fix ("the printer is stopped
   * (media-empty-error)"); plugins keep residents' data out of it. */
  if (json)
    mg_json_parse(json, strlen(json), NULL, &r, NULL);
  const char *why = mg_json_get_str(r, "error");
  snprintf(msg, sizeof(msg), "%s%s%.400s",
           status == MG_PLUGIN_RETRY
               ? "the device is busy or not ready; try again"
               : "the device failed; see `madoctl devices` and the log",
           why ? ": " : "", why ? why : "");
  mg_ctl_finish(call, -EIO, NULL, msg);
  mg_json_free(r);
}

/* A pull's or a rollback's answer goes back to the waiting madoctl. */
static void on_pack_done(void *ud, int rc, const char *json_or_msg) {
  mg_ctl_finish(ud, rc, rc ? NULL : json_or_msg, rc ? json_or_msg : NULL);
}

/* user-add: scrypt takes ~100 ms, so the hash is made on a worker and only
 * the insert runs on the loop. */
struct user_add {
  uv_work_t req;
  struct mg_daemon *d;
  struct mg_ctl_call *call;
  char *a[6]; /* id, name, role, valid_from, valid_until, password */
  char hash[MG_AUTH_HASH_MAX];
  int rc;
};

static void user_add_free(struct user_add *u) {
  if (u->a[5])
    OPENSSL_cleanse(u->a[5], strlen(u->a[5]));
  for (size_t i = 0; i < 6; i++)
    free(u->a[i]);
  OPENSSL_cleanse(u->hash, sizeof(u->hash));
  free(u);
}

static void user_add_work(uv_work_t *req) {
  struct user_add *u = req->data;
  u->rc = mg_auth_hash_password(u->a[5], u->hash);
}

static void user_add_done(uv_work_t *req, int status) {
  struct user_add *u = req->data;
  struct mg_err err = {{0}};
  struct mg_buf b;
  struct mg_jw w;
  int rc = status ? -ECANCELED : u->rc;
  mg_buf_init(&b);
  if (!rc)
    rc = mg_auth_user_add_hashed(u->d->store, u->a[0], u->a[1], u->a[2], u->hash,
                                 u->a[3], u->a[4], time(NULL), &err);
  else
    mg_err_set(&err, rc, "cannot hash the password");
  if (!rc) {
    mg_jw_init(&w, &b);
    if (mg_auth_user_json(u->d->store, u->a[0], &w) || b.oom)
      rc = mg_err_set(&err, -EIO, "database");
  }
  mg_ctl_finish(u->call, rc, rc ? NULL : b.data, rc ? err.msg : NULL);
  mg_buf_free(&b);
  user_add_free(u);
}

static int user_add_start(struct mg_daemon *d, struct mg_ctl_call *call,
                          const char *const a[6], struct mg_err *err) {
  if (strlen(a[5]) < MG_AUTH_MIN_PASSWORD)
    return mg_err_set(err, -EINVAL, "the password needs at least %d characters",
                      MG_AUTH_MIN_PASSWORD);
  struct user_add *u = calloc(1, sizeof(*u));
  if (!u)
    return mg_err_set(err, -ENOMEM, "out of memory");
  u->d = d;
  u->call = call;
  u->req.data = u;
  for (size_t i = 0; i < 6; i++)
    if (!(u->a[i] = strdup(a[i]))) {
      user_add_free(u);
      return mg_err_set(err, -ENOMEM, "out of memory");
    }
  if (uv_queue_work(&d->loop, &u->req, user_add_work, user_add_done)) {
    user_add_free(u);
    return mg_err_set(err, -EIO, "cannot queue the work");
  }
  return MG_CTL_LATER;
}

/* The address dictionary (I1): (re)open the configured file.  Without one
 * the daemon runs and the address API answers 503. */
static void address_open(struct mg_daemon *d) {
  struct mg_err err = {{0}};
  struct mg_addr_db *db = NULL;
  int rc = mg_addr_open(d->cfg->address_file, &db, &err);
  if (rc == -ENOENT) {
    mg_log_notice("address", "no address dictionary at %s yet: madoctl "
                  "address import FILE", d->cfg->address_file);
    return;
  }
  if (rc) {
    mg_log_err("address", "%s; the address API answers 503 until a "
               "dictionary is imported", err.msg);
    return;
  }
  mg_addr_close(d->addr);
  d->addr = db;
  mg_log_info("address", "address dictionary %s: %lld addresses, imported %s",
              d->cfg->address_file, (long long)mg_addr_rows(db),
              mg_addr_imported_at(db));
}

/* address-import: KEN_ALL is read and indexed on a worker (seconds); the
 * loop only reopens the new file.  Requests meanwhile use the old one. */
struct addr_import {
  uv_work_t req;
  struct mg_daemon *d;
  struct mg_ctl_call *call;
  char *src, *dst;
  size_t rows;
  int rc;
  struct mg_err err;
  uint64_t t0;
};

static void addr_import_work(uv_work_t *req) {
  struct addr_import *a = req->data;
  a->rc = mg_addr_import(a->src, a->dst, &a->rows, &a->err);
}

static void addr_import_done(uv_work_t *req, int status) {
  struct addr_import *a = req->data;
  struct mg_daemon *d = a->d;
  double s = (double)(uv_hrtime() - a->t0) / 1e9;
  char json[256];
  d->addr_importing = 0;
  if (status && !a->rc)
    a->rc = mg_err_set(&a->err, -ECANCELED, "the import was cancelled");
  if (a->rc) {
    char msg[MG_ERR_MSG_MAX + 160];
    /* madoctl saw the file: the unit's ProtectHome/PrivateTmp hide it */
    snprintf(msg, sizeof(msg), "%s%s", a->err.msg,
             a->rc == -ENOENT || a->rc == -EACCES
                 ? " (madoguchid cannot read /home, /root, /tmp or /var/tmp, "
                   "nor files of other users: put the file in /srv, say)"
                 : "");
    mg_log_warn("address", "import refused: %s", a->err.msg);
    mg_ctl_finish(a->call, a->rc, NULL, msg);
  } else {
    mg_log_notice("address", "imported %zu addresses from %s in %.1f s",
                  a->rows, a->src, s);
    address_open(d);
    snprintf(json, sizeof(json), "{\"rows\":%zu,\"seconds\":%.2f}", a->rows,
             s);
    mg_ctl_finish(a->call, 0, json, NULL);
  }
  free(a->src);
  free(a->dst);
  free(a);
}

static int addr_import_start(struct mg_daemon *d, struct mg_ctl_call *call,
                             const char *src, struct mg_err *err) {
  struct addr_import *a = NULL;
  if (!src || src[0] != '/')
    return mg_err_set(err, -EINVAL, "address-import takes the absolute path "
                      "of a KEN_ALL file");
  if (d->addr_importing)
    return mg_err_set(err, -EBUSY, "an address import is already running");
  if (!(a = calloc(1, sizeof(*a))) || !(a->src = strdup(src)) ||
      !(a->dst = strdup(d->cfg->address_file))) {
    if (a)
      free(a->src);
    free(a);
    return mg_err_set(err, -ENOMEM, "out of memory");
  }
  a->d = d;
  a->call = call;
  a->req.data = a;
  a->t0 = uv_hrtime();
  if (uv_queue_work(&d->loop, &a->req, addr_import_work, addr_import_done)) {
    free(a->src);
    free(a->dst);
    free(a);
    return mg_err_set(err, -EIO, "cannot queue the work");
  }
  d->addr_importing = 1;
  return MG_CTL_LATER;
}

/* The single string argument of a command, or NULL. */
static const char *one_arg(const struct mg_json *args) {
  if (!args || args->type != MG_JSON_ARRAY || args->u.arr.n != 1 ||
      args->u.arr.items[0]->type != MG_JSON_STRING)
    return NULL;
  return args->u.arr.items[0]->u.str.s;
}

/* D1: applications the tenant acknowledged more than [sync] retention ago
 * leave the box (minute timer and `madoctl visits purge`). */
static int outbox_purge(struct mg_daemon *d, size_t *n) {
  return mg_outbox_purge(d->store, time(NULL),
                         d->cfg->sync_retention / 1000, n);
}

static void on_enrolled(void *ud, int rc, const char *json_or_msg) {
  mg_ctl_finish(ud, rc, rc ? NULL : json_or_msg, rc ? json_or_msg : NULL);
}

/* madoctl sync status|now|pause|resume|enroll (docs/control.md). */
static int sync_ctl(struct mg_daemon *d, struct mg_ctl_call *call,
                    const char *sub, const struct mg_json *args,
                    struct mg_jw *w, struct mg_err *err) {
  if (!d->sync)
    return mg_err_set(err, -ENODEV, "the sync client did not start; see the "
                      "log");
  if (strcmp(sub, "enroll") == 0) {
    /* [url, city, box, code]: the code came over the socket from stdin */
    const char *a[4];
    if (!args || args->type != MG_JSON_ARRAY || args->u.arr.n != 4)
      return mg_err_set(err, -EINVAL, "sync-enroll takes url, city, box and "
                        "code");
    for (size_t i = 0; i < 4; i++) {
      if (args->u.arr.items[i]->type != MG_JSON_STRING)
        return mg_err_set(err, -EINVAL, "sync-enroll takes strings");
      a[i] = args->u.arr.items[i]->u.str.s;
    }
    int rc = mg_sync_enroll(d->sync, a[0], a[1], a[2], a[3], on_enrolled, call,
                            err);
    return rc ? rc : MG_CTL_LATER;
  }
  if (strcmp(sub, "pause") == 0 || strcmp(sub, "resume") == 0)
    mg_sync_pause(d->sync, sub[0] == 'p');
  else if (strcmp(sub, "now") == 0)
    mg_sync_now(d->sync);
  else if (strcmp(sub, "status") != 0)
    return mg_err_set(err, -ENOENT, "unknown command \"sync-%s\"", sub);
  if (mg_sync_status_json(d->sync, w))
    return mg_err_set(err, -EIO, "database failure; see the log");
  return 0;
}

int mg__daemon_ctl(void *ud, struct mg_ctl_call *call, const char *cmd,
                   const struct mg_json *args, struct mg_jw *w,
                   struct mg_err *err) {
  struct mg_daemon *d = ud;
  if (strncmp(cmd, "audit-", 6) == 0)
    mg_visits_flush(d->visits); /* pending reads first */
  if (strcmp(cmd, "audit-verify") == 0) {
    struct mg_err e = {{0}};
    int64_t rows = 0;
    int rc = mg_audit_verify(d->store, &rows, &e);
    if (rc)
      return mg_err_set(err, rc, "%s",
                        e.msg[0] ? e.msg : "database failure; see the log");
    mg_jw_obj(w);
    mg_jw_kbool(w, "ok", 1);
    mg_jw_kint(w, "rows", rows);
    mg_jw_obj_end(w);
    return 0;
  }
  if (strcmp(cmd, "audit-log") == 0) {
    /* [limit] or [limit, object]; the limit as a string (madoctl sends
     * strings) or a number.  Capped so that one answer stays small. */
    size_t n = args && args->type == MG_JSON_ARRAY ? args->u.arr.n : 0;
    const struct mg_json *a0 = n == 1 || n == 2 ? args->u.arr.items[0] : NULL;
    const struct mg_json *a1 = n == 2 ? args->u.arr.items[1] : NULL;
    long long limit = -1;
    if (a0 && a0->type == MG_JSON_NUMBER && a0->u.num.is_int) {
      limit = a0->u.num.i;
    } else if (a0 && a0->type == MG_JSON_STRING) {
      char *end = NULL;
      errno = 0;
      limit = strtoll(a0->u.str.s, &end, 10);
      if (end == a0->u.str.s || *end || errno)
        limit = -1;
    }
    if (limit < 1 || limit > 10000 || (a1 && a1->type != MG_JSON_STRING))
      return mg_err_set(err, -EINVAL,
                        "audit-log takes a limit (1-10000) and optionally an object");
    mg_jw_obj(w);
    mg_jw_key(w, "entries");
    if (mg_audit_list_json(d->store, a1 ? a1->u.str.s : NULL, (int)limit, w))
      return mg_err_set(err, -EIO, "database failure; see the log");
    mg_jw_obj_end(w);
    return 0;
  }
  if (strcmp(cmd, "tablet-list") == 0) {
    if (mg_auth_tablet_list_json(d->store, w))
      return mg_err_set(err, -EIO, "cannot read the tablets");
    return 0;
  }
  if (strcmp(cmd, "tablet-del") == 0) {
    const char *id = one_arg(args);
    int rc;
    if (!id)
      return mg_err_set(err, -EINVAL, "tablet-del takes the tablet id");
    if ((rc = mg_auth_tablet_del(d->store, id)) == -ENOENT)
      return mg_err_set(err, -EINVAL, "no tablet \"%s\"", id);
    if (rc)
      return mg_err_set(err, rc, "cannot remove the tablet");
    mg_audit_append(d->store, time(NULL), "madoctl", "-", "tablet.remove", id, "");
    mg_jw_obj(w);
    mg_jw_kstr(w, "id", id);
    mg_jw_kbool(w, "deleted", 1);
    mg_jw_obj_end(w);
    return 0;
  }
  if (strcmp(cmd, "address-import") == 0)
    return addr_import_start(d, call, one_arg(args), err);
  if (strcmp(cmd, "address-lookup") == 0) {
    /* a technician's check; the code is not logged */
    int rc = mg__address_postal_json(d, one_arg(args) ? one_arg(args) : "",
                                     w, err);
    return rc == -ENODATA ? mg_err_set(err, rc, "no address dictionary: "
                                       "madoctl address import FILE")
                          : rc;
  }
  if (strcmp(cmd, "visits-housekeeping") == 0) {
    size_t closed = 0, purged = 0, opurged = 0;
    if (mg_visits_housekeeping(d->visits, time(NULL), &closed, &purged) ||
        outbox_purge(d, &opurged))
      return mg_err_set(err, -EIO, "housekeeping failed; see the log");
    mg_jw_obj(w);
    mg_jw_kint(w, "closed", (int64_t)closed);
    mg_jw_kint(w, "purged", (int64_t)purged);
    mg_jw_kint(w, "outbox_purged", (int64_t)opurged);
    mg_jw_obj_end(w);
    return 0;
  }
  if (strncmp(cmd, "sync-", 5) == 0)
    return sync_ctl(d, call, cmd + 5, args, w, err);
  if (strcmp(cmd, "print-test") == 0) {
    const char *id = one_arg(args);
    if (!id)
      return mg_err_set(err, -EINVAL, "print-test takes the printer id");
    int rc = mg_plugin_host_command(d->plugins, id, "test-page", NULL,
                                    on_device_result, call);
    if (rc == -ENOENT)
      return mg_err_set(err, -EINVAL, "no device \"%s\" in the configuration", id);
    if (rc == -ENODEV)
      return mg_err_set(err, -ENODEV, "device \"%s\" is not running", id);
    if (rc)
      return mg_err_set(err, rc, "cannot send the command: %s", strerror(-rc));
    return MG_CTL_LATER;
  }
  if (strcmp(cmd, "card-read") == 0) {
    int rc = mg__device_ctl_card_read(d, call, args, err);
    return rc ? rc : MG_CTL_LATER;
  }
  if (strcmp(cmd, "pack-pull") == 0 || strcmp(cmd, "pack-rollback") == 0) {
    int pull = strcmp(cmd, "pack-pull") == 0;
    int rc = pull ? mg_pack_service_pull(d->packs, on_pack_done, call)
                  : mg_pack_service_rollback(d->packs, on_pack_done, call);
    if (rc == -ENOENT)
      return mg_err_set(err, rc, "no pack source: set [pack] url");
    if (rc == -EBUSY)
      return mg_err_set(err, rc, "another pack job is running; try again");
    if (rc)
      return mg_err_set(err, rc, "cannot start: %s", strerror(-rc));
    return MG_CTL_LATER;
  }
  if (strcmp(cmd, "user-add") == 0) {
    /* [id, name, role, valid_from, valid_until, password]: the password
     * comes over the 0660 socket, never argv, and is never logged. */
    const char *a[6];
    if (!args || args->type != MG_JSON_ARRAY || args->u.arr.n != 6)
      return mg_err_set(err, -EINVAL, "user-add takes id, name, role, "
                        "valid_from, valid_until, password");
    for (size_t i = 0; i < 6; i++) {
      if (args->u.arr.items[i]->type != MG_JSON_STRING)
        return mg_err_set(err, -EINVAL, "user-add takes strings");
      a[i] = args->u.arr.items[i]->u.str.s;
    }
    return user_add_start(d, call, a, err);
  }
  if (strcmp(cmd, "user-del") == 0 || strcmp(cmd, "user-unlock") == 0) {
    const char *id = one_arg(args);
    if (!id)
      return mg_err_set(err, -EINVAL, "%s takes the user id", cmd);
    int rc = cmd[5] == 'd' ? mg_auth_user_del(d->store, id)
                           : mg_auth_user_unlock(d->store, id);
    if (rc == -ENOENT)
      return mg_err_set(err, -EINVAL, "no user \"%s\"", id);
    if (rc)
      return mg_err_set(err, rc, "database failure; see the log");
    mg_jw_obj(w);
    mg_jw_kstr(w, "id", id);
    mg_jw_kbool(w, cmd[5] == 'd' ? "deleted" : "unlocked", 1);
    mg_jw_obj_end(w);
    return 0;
  }
  if (strcmp(cmd, "user-list") == 0) {
    if (mg_auth_user_list_json(d->store, w))
      return mg_err_set(err, -EIO, "database failure; see the log");
    return 0;
  }
  if (strcmp(cmd, "pack-status") == 0) {
    mg_pack_service_json(d->packs, 1, w);
  } else if (strcmp(cmd, "status") == 0) {
    status_json(d, w);
  } else if (strcmp(cmd, "plugins") == 0) {
    mg_plugin_host_plugins_json(d->plugins, w);
  } else if (strcmp(cmd, "devices") == 0) {
    mg_plugin_host_devices_json(d->plugins, w);
  } else if (strcmp(cmd, "log-level") == 0) {
    int level = one_arg(args) ? mg_log_level_parse(one_arg(args)) : -1;
    if (level < 0)
      return mg_err_set(err, -EINVAL,
                        "log-level takes one of error, warning, notice, info, "
                        "debug");
    mg_log_set_level(level);
    mg_log_notice("daemon", "log level set to %s by madoctl",
                  mg_log_level_name(level));
    mg_jw_obj(w);
    mg_jw_kstr(w, "log_level", mg_log_level_name(level));
    mg_jw_obj_end(w);
  } else if (strcmp(cmd, "reload") == 0) {
    reload(d);
    mg_jw_obj(w);
    mg_jw_kstr(w, "log_level", mg_log_level_name(mg_log_get_level()));
    mg_jw_obj_end(w);
  } else {
    return mg_err_set(err, -ENOENT, "unknown command \"%s\"", cmd);
  }
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Signals                                                                 */

/* SIGHUP: read the file again; apply what can change while running and
 * name what needs a restart.  A bad file changes nothing. */
static void reload(struct mg_daemon *d) {
  struct mg_config *cfg = NULL;
  struct mg_err err = {{0}};
  if (!d->config_path) {
    mg_log_notice("daemon", "reload: the built-in demo configuration has no file");
    return;
  }
  mg_sd_notify("RELOADING=1");
  if (mg_config_load(d->config_path, &cfg, &err)) {
    mg_log_err("daemon", "reload refused, keeping the running configuration: %s",
               err.msg);
    mg_sd_notify("READY=1");
    return;
  }
  mg_log_set_level(cfg->log_level);
  d->cfg->log_level = cfg->log_level;
  d->cfg->static_max_age = cfg->static_max_age;
  mg_http_reload(d->http, d->cfg);
  if (strcmp(cfg->listen, d->cfg->listen) || strcmp(cfg->state_dir, d->cfg->state_dir) ||
      strcmp(cfg->cert, d->cfg->cert) || strcmp(cfg->key, d->cfg->key) ||
      cfg->n_devices != d->cfg->n_devices)
    mg_log_notice("daemon", "reload: listener, TLS, state or device changes "
                  "take effect at the next restart");
  mg_log_notice("daemon", "configuration reloaded (log level %s)",
                mg_log_level_name(cfg->log_level));
  mg_config_free(cfg);
  mg_sd_notify("READY=1");
}

static void close_cb_noop(uv_handle_t *h) { (void)h; }

/* Close every handle of ours; the loop ends when the last has closed. */
static void close_ours(void *ud) {
  struct mg_daemon *d = ud;
  mg_plugin_host_stop(d->plugins);
  mg_pack_service_stop(d->packs);
  mg_sync_stop(d->sync);
  mg_ctl_stop(d->ctl);
  d->ctl = NULL;
  if (d->signals_on) {
    uv_close((uv_handle_t *)&d->sig_term, close_cb_noop);
    uv_close((uv_handle_t *)&d->sig_int, close_cb_noop);
    uv_close((uv_handle_t *)&d->sig_hup, close_cb_noop);
    d->signals_on = 0;
  }
  if (d->watchdog_on) {
    uv_close((uv_handle_t *)&d->watchdog, close_cb_noop);
    d->watchdog_on = 0;
  }
  if (d->housekeeping_on) {
    uv_close((uv_handle_t *)&d->housekeeping, close_cb_noop);
    uv_close((uv_handle_t *)&d->audit_flush, close_cb_noop);
    d->housekeeping_on = 0;
  }
  if (d->export_timer_on) {
    uv_close((uv_handle_t *)&d->export_timer, close_cb_noop);
    d->export_timer_on = 0;
  }
}

static void begin_stop(struct mg_daemon *d, const char *why) {
  if (d->stopping)
    return;
  d->stopping = 1;
  mg_log_notice("daemon", "stopping (%s)", why);
  mg_sd_notify("STOPPING=1");
  mg_http_stop(d->http, close_ours, d);
}

static void on_signal(uv_signal_t *s, int signum) {
  struct mg_daemon *d = s->data;
  if (signum == SIGHUP)
    reload(d);
  else
    begin_stop(d, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* Every 250 ms: the read audit rows in one transaction, then one
 * fdatasync for everything committed since (group commit, store.h). */
static void on_synced(uv_fs_t *req) {
  struct mg_daemon *d = req->data;
  if (req->result < 0) {
    mg_store_sync_failed(d->store);
    mg_log_err("store", "cannot sync the database's WAL: %s",
               uv_strerror((int)req->result));
  }
  uv_fs_req_cleanup(req);
  d->sync_busy = 0;
}

static void on_audit_flush(uv_timer_t *t) {
  struct mg_daemon *d = t->data;
  mg_visits_flush(d->visits);
  /* a changed case goes to the tenant now, not at the next [sync] interval:
   * the next floor resumes the newest copy (C1, G5); one kick per tick */
  if (mg_visits_take_cases_queued(d->visits))
    mg_sync_kick(d->sync);
  if (d->sync_busy)
    return;
  int fd = mg_store_sync_begin(d->store);
  if (fd < -1)
    mg_log_err("store", "cannot open the database's WAL: %s", strerror(-fd));
  if (fd < 0)
    return;
  d->sync_req.data = d; /* the fdatasync runs on a worker, not the loop */
  if (uv_fs_fdatasync(&d->loop, &d->sync_req, fd, on_synced) == 0)
    d->sync_busy = 1;
  else
    mg_store_sync_failed(d->store);
}

static void on_housekeeping(uv_timer_t *t) {
  struct mg_daemon *d = t->data;
  mg_visits_housekeeping(d->visits, time(NULL), NULL, NULL);
  outbox_purge(d, NULL);
  /* an expired session's tablet stops hearing events (logout: at once) */
  if (d->http)
    mg_http_ws_recheck(d->http);
}

static void on_queued(void *ud) {
  struct mg_daemon *d = ud;
  mg_sync_kick(d->sync);
}

static void on_watchdog(uv_timer_t *t) {
  (void)t;
  mg_sd_notify("WATCHDOG=1");
}

/* ---------------------------------------------------------------------- */

int mg_daemon_run(struct mg_config *cfg, const char *config_path,
                  uint64_t start_ns) {
  struct mg_daemon dd, *d = &dd;
  struct mg_err err = {{0}};
  char db[4096], sock[4096], host[256], path[4096];
  int port, rc, exit_code = 1, loop_ok = 0;

  memset(d, 0, sizeof(*d));
  d->cfg = cfg;
  d->start_ns = start_ns;
  d->started_at = time(NULL);
  d->prev_clean = 1;
  if (config_path && !(d->config_path = strdup(config_path)))
    goto out;
  mg_log_set_level(cfg->log_level);

  if ((rc = mkdirs(cfg->state_dir, 0750)) || (rc = mkdirs(cfg->runtime_dir, 0750))) {
    mg_log_err("daemon", "cannot create %s or %s: %s", cfg->state_dir,
               cfg->runtime_dir, strerror(-rc));
    goto out;
  }
  if (uv_loop_init(&d->loop) != 0)
    goto out;
  loop_ok = 1;

  if ((rc = mg_plugin_host_create(&d->loop, cfg->plugin_dir, on_plugin_event, d,
                                  &d->plugins)) ||
      (rc = mg_plugin_host_configure(d->plugins, cfg, &err))) {
    mg_log_err("daemon", "%s", err.msg[0] ? err.msg : strerror(-rc));
    goto out;
  }
  snprintf(db, sizeof(db), "%s/madoguchi.db", cfg->state_dir);
  if (mg_store_open(db, &d->store, &err)) {
    mg_log_err("daemon", "%s", err.msg);
    goto out;
  }
  snprintf(path, sizeof(path), "%s/keys/data.key", cfg->state_dir);
  if (mg_key_load(path, &d->data_key, &err)) {
    mg_log_err("daemon", "%s", err.msg);
    goto out;
  }
  /* slips waiting for a printer plugin to read them */
  snprintf(path, sizeof(path), "%s/spool", cfg->state_dir);
  if ((rc = mkdirs(path, 0700))) {
    mg_log_err("daemon", "cannot create %s: %s", path, strerror(-rc));
    goto out;
  }
  if (*cfg->auth_users_file &&
      mg_auth_seed_file(d->store, cfg->auth_users_file, time(NULL), &err) < 0) {
    mg_log_err("daemon", "%s", err.msg);
    goto out;
  }
  d->box_id = mg_store_meta_get(d->store, "box_id");
  if (mg_store_run_begin(d->store, MG_VERSION, &d->run_id, &d->prev_clean) == 0 &&
      !d->prev_clean)
    mg_log_warn("daemon", "the previous run did not stop cleanly (crash, kill "
                "or power loss)");

  mg_config_listen_split(cfg->listen, host, sizeof(host), &port);
  if (mg_tls_ensure(cfg->cert, cfg->key, host, d->tls_fingerprint,
                    sizeof(d->tls_fingerprint), &err)) {
    mg_log_err("daemon", "%s", err.msg);
    goto out;
  }
  if (mg_http_start(&d->loop, cfg, &d->http, &err)) {
    mg_log_err("daemon", "%s", err.msg);
    goto out;
  }
  mg_http_set_ws_auth(d->http, ws_auth, d);
  if (mg__api_register(d) || mg__visit_api_register(d) ||
      mg__address_api_register(d) || mg__device_api_register(d))
    goto out;
  address_open(d);
  if (mg_pack_service_start(&d->loop, cfg, on_box_event, d, &d->packs, &err)) {
    mg_log_err("daemon", "%s", err.msg);
    goto out;
  }
  if (mg_visits_create(d->store, &d->data_key, d->packs, cfg, &d->visits))
    goto out;
  /* requests commit without waiting for their own fsync; the flush timer
   * below syncs them together (and a submission at once) */
  if (mg_store_group_commit(d->store, 1))
    goto out;
  mg_visits_housekeeping(d->visits, time(NULL), NULL, NULL);
  outbox_purge(d, NULL);
  /* the city's tenant: sends what the outbox holds, and is kicked by every
   * submission once it is durable (issue 8) */
  if (mg_sync_start(&d->loop, cfg, d->store, &d->data_key, &d->sync, &err)) {
    mg_log_err("daemon", "%s", err.msg);
    goto out;
  }
  mg_sync_set_case_exporter(d->sync, mg_visit_export_cb, d->visits);
  mg_visits_set_on_queued(d->visits, on_queued, d);
  uv_timer_init(&d->loop, &d->housekeeping);
  d->housekeeping.data = d;
  uv_timer_start(&d->housekeeping, on_housekeeping, 60000, 60000);
  uv_timer_init(&d->loop, &d->audit_flush);
  d->audit_flush.data = d;
  uv_timer_start(&d->audit_flush, on_audit_flush, 250, 250);
  d->housekeeping_on = 1;
  snprintf(sock, sizeof(sock), "%s/ctl.sock", cfg->runtime_dir);
  if (mg_ctl_start(&d->loop, sock, cfg->ctl_group, mg__daemon_ctl, d, &d->ctl,
                   &err)) {
    mg_log_err("daemon", "%s", err.msg);
    goto out;
  }
  uv_signal_init(&d->loop, &d->sig_term);
  uv_signal_init(&d->loop, &d->sig_int);
  uv_signal_init(&d->loop, &d->sig_hup);
  d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
  uv_signal_start(&d->sig_term, on_signal, SIGTERM);
  uv_signal_start(&d->sig_int, on_signal, SIGINT);
  uv_signal_start(&d->sig_hup, on_signal, SIGHUP);
  d->signals_on = 1;

  int failed = mg_plugin_host_start(d->plugins);
  if (failed < 0) {
    mg_log_err("daemon", "cannot start devices: %s", strerror(-failed));
    goto out;
  }
  mg__form_api_start(d); /* linkage files left pending */
  uint64_t wd = mg_sd_watchdog_usec();
  if (wd) {
    uv_timer_init(&d->loop, &d->watchdog);
    uv_timer_start(&d->watchdog, on_watchdog, wd / 2000, wd / 2000);
    d->watchdog_on = 1;
  }
  d->ready_ms = (double)(uv_hrtime() - start_ns) / 1e6;
  {
    char st[256];
    snprintf(st, sizeof(st), "READY=1\nSTATUS=serving on port %d, %d device(s) failed",
             mg_http_port(d->http), failed);
    mg_sd_notify(st);
  }
  mg_log_notice("daemon", "madoguchid %s ready in %.1f ms (port %d, box %s)",
                MG_VERSION, d->ready_ms, mg_http_port(d->http),
                d->box_id ? d->box_id : "?");

  uv_run(&d->loop, UV_RUN_DEFAULT);
  exit_code = 0;
  mg_store_run_end(d->store, d->run_id);
  mg_log_notice("daemon", "stopped");

out:
  if (loop_ok) {
    /* On a failed start, close what was opened and let the callbacks run. */
    if (exit_code) {
      if (d->http)
        mg_http_stop(d->http, close_ours, d);
      else
        close_ours(d);
      uv_run(&d->loop, UV_RUN_DEFAULT);
    }
    if (uv_loop_close(&d->loop) == UV_EBUSY)
      mg_log_warn("daemon", "event loop still had open handles at exit");
  }
  mg_http_free(d->http);
  mg_sync_free(d->sync);
  mg_visits_free(d->visits);
  mg_pack_service_free(d->packs);
  mg_plugin_host_destroy(d->plugins);
  mg_store_close(d->store);
  mg_addr_close(d->addr);
  mg_key_wipe(&d->data_key);
  free(d->box_id);
  free(d->config_path);
  mg_config_free(cfg);
  /* Join libuv's worker threads now, while every library is still whole:
   * left to exit-time destructors, whose order shifts with the libraries a
   * plugin brings (libcups), OpenSSL's per-thread state of the workers
   * could be cleaned up after OpenSSL itself (seen as leaks under ASan).
   * One run per process: libuv is not used after this. */
  uv_library_shutdown();
  return exit_code;
}
