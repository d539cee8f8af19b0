/*
 * api.c — the JSON API under /api/v1 (docs/api.md).  Handlers run on the
 * loop and answer through mg_http_reply*.
 */
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "json.h"
#include "version.h"

static void health(void *ud, struct mg_http_txn *t, const struct mg_http_req *req) {
  struct mg_daemon *d = ud;
  struct mg_buf b;
  struct mg_jw w;
  char when[32];
  struct tm tm;
  (void)req;

  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  gmtime_r(&d->started_at, &tm);
  strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
  mg_jw_obj(&w);
  mg_jw_kstr(&w, "status", d->stopping ? "stopping" : "ok");
  mg_jw_kstr(&w, "version", MG_VERSION);
  mg_jw_kstr(&w, "started_at", when);
  mg_jw_kint(&w, "uptime_s", (int64_t)(time(NULL) - d->started_at));
  mg_jw_key(&w, "store");
  mg_jw_obj(&w);
  mg_jw_kint(&w, "schema", mg_store_version(d->store));
  mg_jw_obj_end(&w);
  mg_jw_key(&w, "pack");
  mg_pack_service_json(d->packs, 0, &w);
  mg_jw_key(&w, "plugins");
  mg_jw_obj(&w);
  mg_jw_kint(&w, "loaded", (int64_t)mg_plugin_host_count_plugins(d->plugins));
  mg_jw_kint(&w, "failed_devices", (int64_t)mg_plugin_host_count_failed(d->plugins));
  mg_jw_obj_end(&w);
  mg_jw_obj_end(&w);
  if (b.oom)
    mg_http_reply_error(t, 500, "internal", "out of memory");
  else
    mg_http_reply_json(t, 200, b.data);
  mg_buf_free(&b);
}

int mg__api_register(struct mg_daemon *d) {
  return mg_http_route(d->http, "GET", "/api/v1/health", health, d);
}
