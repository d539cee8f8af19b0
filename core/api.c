/*
 * api.c — the JSON API under /api/v1 (docs/api.md).  Handlers run on the
 * loop and answer through mg_http_reply*.
 */
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "auth.h"
#include "daemon.h"
#include "json.h"
#include "log.h"
#include "pack.h"
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

/* ---------------------------------------------------------------------- */
/* Sessions                                                                */

static void session_json(struct mg_jw *w, const struct mg_auth_session *s) {
  mg_jw_obj(w);
  mg_jw_key(w, "user");
  mg_jw_obj(w);
  mg_jw_kstr(w, "id", s->user_id);
  mg_jw_kstr(w, "name", s->name);
  mg_jw_kstr(w, "role", s->role);
  mg_jw_obj_end(w);
  mg_jw_kstr(w, "counter", s->counter);
  mg_jw_kstr(w, "csrf_token", s->csrf);
  mg_jw_kstr(w, "expires_at", s->expires_at);
  mg_jw_obj_end(w);
}

static void reply_session(struct mg_http_txn *t, const struct mg_auth_session *s) {
  struct mg_buf b;
  struct mg_jw w;
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  session_json(&w, s);
  if (b.oom)
    mg_http_reply_error(t, 500, "internal", "out of memory");
  else
    mg_http_reply_json(t, 200, b.data);
  OPENSSL_cleanse(b.data, b.len);
  mg_buf_free(&b);
}

/* A counter id given at login: one of the active pack's counters, or any
 * well-formed id when no pack is active. */
static int counter_ok(struct mg_daemon *d, const char *c) {
  size_t n = strlen(c);
  if (n == 0 || n > 64 || strspn(c, "abcdefghijklmnopqrstuvwxyz0123456789_-") != n)
    return 0;
  struct mg_pack_use *u = mg_pack_service_acquire(d->packs);
  if (!u)
    return 1;
  const struct mg_pack *p = mg_pack_use_model(u);
  int ok = !p || mg_pack_counter(p, c) != NULL;
  mg_pack_service_release(d->packs, u);
  return ok;
}

struct login_job {
  uv_work_t work;
  struct mg_daemon *d;
  struct mg_http_txn *t;
  char id[72], counter[72];
  char password[256];
  char hash[MG_AUTH_HASH_MAX];
  int known, matched;
  int admin_only; /* no registered tablet: only an administrator (to
                     register one) may log in */
};

static void login_work(uv_work_t *w) {
  struct login_job *j = w->data;
  j->matched = mg_auth_verify_password(j->password, j->hash) && j->known;
}

static void login_done(uv_work_t *w, int status) {
  struct login_job *j = w->data;
  struct mg_auth_session s;
  char cookie[160], msg[128];
  enum mg_auth_result r =
      mg_auth_login_finish(j->d->store, j->id, status == 0 && j->matched,
                           j->counter, time(NULL), &s);
  if (r == MG_AUTH_OK && j->admin_only &&
      mg_auth_role_parse(s.role) != MG_ROLE_ADMINISTRATOR) {
    mg_auth_logout(j->d->store, s.token);
    mg_http_reply_error(j->t, 403, "tablet_not_registered",
                        "this tablet is not registered to a counter; an "
                        "administrator registers it first");
    goto out;
  }
  switch (r) {
  case MG_AUTH_OK:
    snprintf(cookie, sizeof(cookie),
             "mg_session=%s; Path=/api/; HttpOnly; Secure; SameSite=Strict; "
             "Max-Age=%d",
             s.token, MG_AUTH_SESSION_S);
    mg_http_set_header(j->t, "set-cookie:", cookie);
    reply_session(j->t, &s);
    OPENSSL_cleanse(cookie, sizeof(cookie));
    break;
  case MG_AUTH_BAD:
    mg_http_reply_error(j->t, 401, "login_failed", "wrong user id or password");
    break;
  case MG_AUTH_LOCKED:
    snprintf(msg, sizeof(msg),
             "too many wrong passwords: the account is locked until %s",
             s.locked_until);
    mg_http_reply_error(j->t, 423, "locked", msg);
    break;
  case MG_AUTH_NOT_VALID:
    mg_http_reply_error(j->t, 403, "account_not_valid",
                        "this account is not valid today");
    break;
  default:
    mg_http_reply_error(j->t, 500, "internal", "the login could not be stored");
    break;
  }
out:
  OPENSSL_cleanse(&s, sizeof(s));
  OPENSSL_cleanse(j, sizeof(*j));
  free(j);
}

static void session_post(void *ud, struct mg_http_txn *t,
                         const struct mg_http_req *req) {
  struct mg_daemon *d = ud;
  struct mg_json *doc = NULL;
  struct mg_json_error jerr;
  struct login_job *j = NULL;
  const char *user, *pw, *counter;
  char cookie[4096], tablet[80], tablet_counter[72];
  int admin_only = 0;

  if (mg_json_parse(req->body, req->body_len, NULL, &doc, &jerr) ||
      doc->type != MG_JSON_OBJECT) {
    mg_http_reply_error(t, 400, "bad_request", "the body is not a JSON object");
    goto out;
  }
  user = mg_json_get_str(doc, "user");
  pw = mg_json_get_str(doc, "password");
  counter = mg_json_get_str(doc, "counter");
  /* A registered tablet decides the counter. */
  if (mg_http_header(t, "cookie:", cookie, sizeof(cookie)) >= 0 &&
      mg__auth_cookie_value(cookie, "mg_tablet", tablet, sizeof(tablet)) == 0 &&
      mg_auth_tablet_counter(d->store, tablet, tablet_counter) == 0) {
    if (counter && *counter && strcmp(counter, tablet_counter) != 0) {
      mg_http_reply_error(t, 400, "bad_request",
                          "this tablet is registered to another counter");
      goto out;
    }
    counter = tablet_counter;
  } else {
    admin_only = d->cfg->auth_require_tablet;
    if (admin_only && user && pw && !counter) {
      mg_http_reply_error(t, 403, "tablet_not_registered",
                          "this tablet is not registered to a counter; an "
                          "administrator registers it first");
      goto out;
    }
  }
  if (!user || !*user || strlen(user) > 64 || !pw || !*pw || strlen(pw) > 200 ||
      !counter) {
    mg_http_reply_error(t, 400, "bad_request",
                        "user, password and counter are required strings");
    goto out;
  }
  if (!counter_ok(d, counter)) {
    mg_http_reply_error(t, 400, "unknown_counter",
                        "no such counter in the active procedure pack");
    goto out;
  }
  if (!(j = calloc(1, sizeof(*j)))) {
    mg_http_reply_error(t, 500, "internal", "out of memory");
    goto out;
  }
  j->d = d;
  j->t = t;
  j->work.data = j;
  j->admin_only = admin_only;
  snprintf(j->id, sizeof(j->id), "%s", user);
  snprintf(j->counter, sizeof(j->counter), "%s", counter);
  snprintf(j->password, sizeof(j->password), "%s", pw);
  j->known = mg_auth_login_begin(d->store, j->id, j->hash) == 0;
  /* scrypt takes ~50-100 ms: never on the loop */
  if (uv_queue_work(&d->loop, &j->work, login_work, login_done)) {
    OPENSSL_cleanse(j, sizeof(*j));
    free(j);
    mg_http_reply_error(t, 500, "internal", "cannot start the login");
  }
out:
  if (req->body_len)
    OPENSSL_cleanse((void *)req->body, req->body_len); /* the password */
  mg_json_free(doc);
}

static void session_get(void *ud, struct mg_http_txn *t, const struct mg_http_req *req) {
  struct mg_daemon *d = ud;
  struct mg_auth_session s;
  (void)req;
  if (mg__auth_require(d->store, t, MG_ROLE_STAFF, 0, &s))
    return;
  reply_session(t, &s);
  OPENSSL_cleanse(&s, sizeof(s));
}

static void session_delete(void *ud, struct mg_http_txn *t,
                           const struct mg_http_req *req) {
  struct mg_daemon *d = ud;
  struct mg_auth_session s;
  char cookie[4096], token[80];
  (void)req;
  if (mg__auth_require(d->store, t, MG_ROLE_STAFF, 1, &s))
    return;
  if (mg_http_header(t, "cookie:", cookie, sizeof(cookie)) >= 0 &&
      mg__auth_cookie_token(cookie, token, sizeof(token)) == 0)
    mg_auth_logout(d->store, token);
  mg_http_ws_recheck(d->http); /* its tablet's events socket closes now */
  mg_log_notice("auth", "user %s logged out", s.user_id);
  mg_http_set_header(t, "set-cookie:",
                     "mg_session=; Path=/api/; HttpOnly; Secure; SameSite=Strict; "
                     "Max-Age=0");
  mg_http_reply_json(t, 200, "{\"logged_out\":true}");
  OPENSSL_cleanse(cookie, sizeof(cookie));
  OPENSSL_cleanse(token, sizeof(token));
  OPENSSL_cleanse(&s, sizeof(s));
}

/* POST /api/v1/tablets {"counter", "name"}: an administrator registers the
 * tablet the request comes from; it keeps the answer's cookie. */
static void tablet_post(void *ud, struct mg_http_txn *t,
                        const struct mg_http_req *req) {
  struct mg_daemon *d = ud;
  struct mg_auth_session s;
  struct mg_json *doc = NULL;
  struct mg_json_error jerr;
  struct mg_err err = {{0}};
  char token[64] = "", id[24], cookie[200], body[256];
  const char *counter, *name;
  if (mg__auth_require(d->store, t, MG_ROLE_ADMINISTRATOR, 1, &s))
    return;
  if (mg_json_parse(req->body, req->body_len, NULL, &doc, &jerr) ||
      doc->type != MG_JSON_OBJECT || !(counter = mg_json_get_str(doc, "counter")) ||
      !(name = mg_json_get_str(doc, "name"))) {
    mg_http_reply_error(t, 400, "bad_request",
                        "the body is {\"counter\": ID, \"name\": TEXT}");
    goto out;
  }
  if (!counter_ok(d, counter)) {
    mg_http_reply_error(t, 400, "unknown_counter",
                        "no such counter in the active procedure pack");
    goto out;
  }
  if (mg_auth_tablet_add(d->store, counter, name, s.user_id, time(NULL), token,
                         id, &err)) {
    mg_http_reply_error(t, 400, "bad_request", err.msg);
    goto out;
  }
  mg_audit_append(d->store, time(NULL), s.user_id, s.counter, "tablet.register",
                  id, counter);
  /* ten years: a tablet stays registered until an administrator removes it */
  snprintf(cookie, sizeof(cookie),
           "mg_tablet=%s; Path=/api/; HttpOnly; Secure; SameSite=Strict; "
           "Max-Age=315360000",
           token);
  mg_http_set_header(t, "set-cookie:", cookie);
  snprintf(body, sizeof(body), "{\"id\":\"%s\",\"counter\":\"%s\"}", id,
           counter);
  mg_http_reply_json(t, 201, body);
  OPENSSL_cleanse(cookie, sizeof(cookie));
out:
  OPENSSL_cleanse(token, sizeof(token));
  OPENSSL_cleanse(&s, sizeof(s));
  mg_json_free(doc);
}

int mg__api_register(struct mg_daemon *d) {
  return mg_http_route(d->http, "GET", "/api/v1/health", health, d) ||
         mg_http_route(d->http, "POST", "/api/v1/session", session_post, d) ||
         mg_http_route(d->http, "GET", "/api/v1/session", session_get, d) ||
         mg_http_route(d->http, "DELETE", "/api/v1/session", session_delete, d) ||
         mg_http_route(d->http, "POST", "/api/v1/tablets", tablet_post, d);
}
