/*
 * visit_api.c — the cases API (docs/api.md "Cases"): /api/v1/life-events
 * and /api/v1/visits/...  Every endpoint needs a staff session; every
 * change also the CSRF token.  Handlers parse and check the request, call
 * visit.c, and answer with the whole case so a tablet never has to merge
 * state.  Slips are rendered on a worker thread (slip.h).
 *
 * Personal data travels only in request and response bodies, never in
 * URLs (search is a POST) and never in logs.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "daemon.h"
#include "log.h"
#include "slip.h"
#include "tenant_sync.h"
#include "visit.h"
#include "visit_api_internal.h"
#include "visit_cache.h"
#include "visit_transfer.h"

int mg__who_require(struct mg_daemon *d, struct mg_http_txn *t, int csrf,
                   struct mg__who *w) {
  if (mg__auth_require(d->store, t, MG_ROLE_STAFF, csrf, &w->s))
    return -1;
  w->a.user = w->s.user_id;
  w->a.counter = w->s.counter;
  w->a.role = mg_auth_role_parse(w->s.role);
  return 0;
}

void mg__who_copy(struct mg__who *dst, const struct mg__who *src) {
  *dst = *src;
  dst->a.user = dst->s.user_id;
  dst->a.counter = dst->s.counter;
}

void mg__api_reply_err(struct mg_http_txn *t, int rc, const struct mg_err *e) {
  switch (rc) {
  case -ENOENT: mg_http_reply_error(t, 404, "not_found", e->msg); break;
  case -EINVAL: mg_http_reply_error(t, 400, "bad_request", e->msg); break;
  case -ESTALE: mg_http_reply_error(t, 409, "case_closed", e->msg); break;
  case -EPERM: mg_http_reply_error(t, 403, "forbidden", e->msg); break;
  case -ENODATA: mg_http_reply_error(t, 503, "no_pack", e->msg); break;
  case -EALREADY: mg_http_reply_error(t, 409, "already_submitted", e->msg); break;
  case -E2BIG: mg_http_reply_error(t, 413, "too_large", e->msg); break;
  default: mg_http_reply_error(t, 500, "internal", e->msg); break;
  }
}

void mg__api_reply_buf(struct mg_http_txn *t, int status, struct mg_buf *b) {
  if (b->oom)
    mg_http_reply_error(t, 500, "internal", "out of memory");
  else
    mg_http_reply_json(t, status, b->data);
  if (b->data)
    OPENSSL_cleanse(b->data, b->len);
  mg_buf_free(b);
}

/* Answer with the whole case (loaded again after a change); fresh >= 0
 * (resume): plus "origin_box" (where a case from another floor came from)
 * and "fresh" (false: this box's copy, the tenant not asked in time). */
static void reply_state_ex(struct mg_daemon *d, struct mg_http_txn *t,
                           const struct mg__who *w, const char *id,
                           int status, const char *token, const char *audit,
                           int fresh) {
  struct mg_visit *v = NULL;
  struct mg_err e = {{0}};
  struct mg_buf b;
  struct mg_jw jw;
  struct mg_visit_cache *vc = mg__visits_cache(d->visits);
  struct mg_pack_use *u;
  time_t now = mg_visit_cache_now();
  int64_t version = 0;
  char commit[48];
  int rc;
  /* The state this counter was last shown at this version is sent as it
   * was, while its pack release is still on the box (visit_cache.h: what
   * may be kept, and for how long).  The read is audited all the same. */
  int cache = !token && mg_visit_cache_version(d->visits, id, &version) == 0;
  mg_buf_init(&b);
  if (cache &&
      mg_visit_cache_get(vc, id, version, w->a.counter, now, &b, commit) == 0) {
    if ((u = mg_pack_service_acquire_commit(d->packs, commit))) {
      mg_pack_service_release(d->packs, u);
      if (audit)
        mg_visits_audit(d->visits, &w->a, audit, id, "");
      goto send;
    }
    mg_visit_cache_drop(vc, id);
    if (b.data)
      OPENSSL_cleanse(b.data, b.len);
    mg_buf_reset(&b);
  }
  rc = mg_visit_get(d->visits, &w->a, id, &v, &e);
  if (rc) {
    mg_buf_free(&b);
    mg__api_reply_err(t, rc, &e);
    return;
  }
  if (audit)
    mg_visits_audit(d->visits, &w->a, audit, id, "");
  mg_jw_init(&jw, &b);
  if (token) { /* once, at creation: the tablet may show or print it */
    mg_jw_obj(&jw);
    mg_jw_kstr(&jw, "token", token);
    mg_jw_key(&jw, "case");
  }
  rc = mg_visit_state_json(d->visits, v, &w->a, &jw, &e);
  if (token)
    mg_jw_obj_end(&jw);
  if (rc == 0 && cache && !b.oom && mg_visit_cache_ok(v))
    mg_visit_cache_put(vc, id, version, w->a.counter, v->pack_commit, now,
                       b.data, b.len);
  mg_visit_free(v);
  if (rc) {
    if (b.data)
      OPENSSL_cleanse(b.data, b.len);
    mg_buf_free(&b);
    mg__api_reply_err(t, rc, &e);
    return;
  }
send:;
  char origin[72] = "";
  if (fresh >= 0 && !token && b.len && b.data[b.len - 1] == '}' &&
      mg_visit_origin_box(d->visits, id, origin) == 0) {
    b.len--; /* the state object gets two more members */
    mg_buf_puts(&b, ",\"origin_box\":");
    if (*origin)
      mg_json_escape(&b, origin, strlen(origin));
    else
      mg_buf_puts(&b, "null");
    mg_buf_puts(&b, fresh ? ",\"fresh\":true}" : ",\"fresh\":false}");
  }
  mg__api_reply_buf(t, status, &b);
}

static void reply_state(struct mg_daemon *d, struct mg_http_txn *t,
                        const struct mg__who *w, const char *id, int status,
                        const char *token, const char *audit) {
  reply_state_ex(d, t, w, id, status, token, audit, -1);
}

/* As reply_state for a case just changed and still in memory (v: taken
 * and freed here), without loading it again; kept for the next GET. */
static void reply_loaded(struct mg_daemon *d, struct mg_http_txn *t,
                         const struct mg__who *w, struct mg_visit *v) {
  struct mg_err e = {{0}};
  struct mg_buf b;
  struct mg_jw jw;
  int64_t version = 0;
  int cache = mg_visit_cache_version(d->visits, v->id, &version) == 0;
  mg_buf_init(&b);
  mg_jw_init(&jw, &b);
  int rc = mg_visit_state_json(d->visits, v, &w->a, &jw, &e);
  if (rc == 0 && cache && !b.oom && mg_visit_cache_ok(v))
    mg_visit_cache_put(mg__visits_cache(d->visits), v->id, version,
                       w->a.counter, v->pack_commit, mg_visit_cache_now(),
                       b.data, b.len);
  mg_visit_free(v);
  if (rc) {
    if (b.data)
      OPENSSL_cleanse(b.data, b.len);
    mg_buf_free(&b);
    mg__api_reply_err(t, rc, &e);
    return;
  }
  mg__api_reply_buf(t, 200, &b);
}

/* A JSON object body; answers 400 and returns NULL otherwise. */
struct mg_json *mg__api_body(struct mg_http_txn *t,
                                const struct mg_http_req *req) {
  struct mg_json *doc = NULL;
  struct mg_json_error je;
  char msg[256];
  if (mg_json_parse(req->body, req->body_len, NULL, &doc, &je)) {
    snprintf(msg, sizeof(msg), "the body is not JSON: %s", je.msg);
    mg_http_reply_error(t, 400, "bad_request", msg);
    return NULL;
  }
  if (doc->type != MG_JSON_OBJECT) {
    mg_json_free(doc);
    mg_http_reply_error(t, 400, "bad_request", "the body must be a JSON object");
    return NULL;
  }
  return doc;
}

/* Unknown keys are refused: a typo must not silently drop a value. */
int mg__api_only_keys(const struct mg_json *o, const char *const *keys,
                     const char *where, struct mg_err *e) {
  for (size_t i = 0; i < o->u.obj.n; i++) {
    int ok = 0;
    for (size_t k = 0; keys[k] && !ok; k++)
      ok = strcmp(o->u.obj.members[i].key, keys[k]) == 0;
    if (!ok)
      return mg_err_set(e, -EINVAL, "%s: unknown key \"%.40s\"", where,
                        o->u.obj.members[i].key);
  }
  return 0;
}

/* Keys a body must have: an absent one must not read as "clear it". */
int mg__api_need(const struct mg_json *o, const char *key, struct mg_err *e) {
  if (!mg_json_get(o, key))
    return mg_err_set(e, -EINVAL, "%s: required", key);
  return 0;
}

/* A string member, "" when absent; -EINVAL when present but not a string. */
int mg__api_opt_str(const struct mg_json *o, const char *key, const char **out,
                   const char *where, struct mg_err *e) {
  const struct mg_json *v = mg_json_get(o, key);
  *out = "";
  if (!v || v->type == MG_JSON_NULL)
    return 0;
  if (v->type != MG_JSON_STRING || strlen(v->u.str.s) != v->u.str.len)
    return mg_err_set(e, -EINVAL, "%s%s: must be a string", where, key);
  *out = v->u.str.s;
  return 0;
}

int mg__api_opt_bool(const struct mg_json *o, const char *key, int *out,
                    struct mg_err *e) {
  const struct mg_json *v = mg_json_get(o, key);
  *out = 0;
  if (!v)
    return 0;
  if (v->type != MG_JSON_TRUE && v->type != MG_JSON_FALSE)
    return mg_err_set(e, -EINVAL, "%s: must be true or false", key);
  *out = v->type == MG_JSON_TRUE;
  return 0;
}

/* people: [{name, kana, birth_date, address}] (strings borrowed from doc). */
static int parse_people(const struct mg_json *arr, struct mg_visit_person *out,
                        size_t *n, struct mg_err *e) {
  static const char *const keys[] = {"name", "kana", "birth_date", "address",
                                     NULL};
  *n = 0;
  if (!arr)
    return 0;
  if (arr->type != MG_JSON_ARRAY)
    return mg_err_set(e, -EINVAL, "people: must be an array");
  if (arr->u.arr.n > MG_GUIDE_MAX_PEOPLE)
    return mg_err_set(e, -EINVAL, "people: at most %d people",
                      MG_GUIDE_MAX_PEOPLE);
  for (size_t i = 0; i < arr->u.arr.n; i++) {
    const struct mg_json *o = arr->u.arr.items[i];
    char where[32];
    const char *bd;
    snprintf(where, sizeof(where), "people[%zu].", i);
    memset(&out[i], 0, sizeof(out[i]));
    if (o->type != MG_JSON_OBJECT)
      return mg_err_set(e, -EINVAL, "people[%zu]: must be an object", i);
    if (mg__api_only_keys(o, keys, "people[]", e) ||
        mg__api_opt_str(o, "name", (const char **)&out[i].name, where, e) ||
        mg__api_opt_str(o, "kana", (const char **)&out[i].kana, where, e) ||
        mg__api_opt_str(o, "address", (const char **)&out[i].address, where, e) ||
        mg__api_opt_str(o, "birth_date", &bd, where, e))
      return -EINVAL;
    if (*bd && mg_date_parse(bd, &out[i].birth))
      return mg_err_set(e, -EINVAL, "people[%zu].birth_date: must be a date "
                        "YYYY-MM-DD", i);
    (*n)++;
  }
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Life events and new cases                                              */

static void life_events(void *ud, struct mg_http_txn *t,
                        const struct mg_http_req *req) {
  struct mg_daemon *d = ud;
  struct mg__who w;
  struct mg_buf b;
  struct mg_jw jw;
  (void)req;
  if (mg__who_require(d, t, 0, &w))
    return;
  struct mg_pack_use *u = mg_pack_service_acquire(d->packs);
  const struct mg_pack *p = u ? mg_pack_use_model(u) : NULL;
  if (!p) {
    mg_pack_service_release(d->packs, u);
    mg_http_reply_error(t, 503, "no_pack", "no procedure pack is active on this box");
    return;
  }
  mg_buf_init(&b);
  mg_jw_init(&jw, &b);
  mg_jw_obj(&jw);
  mg_jw_kstr(&jw, "pack_commit", mg_pack_use_commit(u));
  mg_jw_key(&jw, "life_events");
  mg_jw_arr(&jw);
  for (size_t i = 0; i < p->n_life_events; i++) {
    const struct mg_pack_life_event *le = &p->life_events[i];
    if (!mg_pack_list_has(&le->counters, w.a.counter))
      continue;
    mg_jw_obj(&jw);
    mg_jw_kstr(&jw, "id", le->id);
    mg_jw_kstr(&jw, "name", le->name);
    mg_jw_kstr(&jw, "description", le->description);
    mg_jw_kint(&jw, "order", le->order);
    mg_jw_obj_end(&jw);
  }
  mg_jw_arr_end(&jw);
  /* Every procedure of the pack, for staff adding one by hand (G1). */
  mg_jw_key(&jw, "procedures");
  mg_jw_arr(&jw);
  for (size_t i = 0; i < p->n_procedures; i++) {
    const struct mg_pack_procedure *pr = &p->procedures[i];
    mg_jw_obj(&jw);
    mg_jw_kstr(&jw, "id", pr->id);
    mg_jw_kstr(&jw, "name", pr->name);
    mg_jw_kstr(&jw, "counter", pr->counter);
    mg_jw_kstr(&jw, "kind", pr->kind == MG_PACK_PROC_INFO ? "info" : "form");
    mg_jw_obj_end(&jw);
  }
  mg_jw_arr_end(&jw);
  mg_jw_obj_end(&jw);
  mg_pack_service_release(d->packs, u);
  mg__api_reply_buf(t, 200, &b);
}

static void visit_create(void *ud, struct mg_http_txn *t,
                         const struct mg_http_req *req) {
  static const char *const keys[] = {"life_event", "filing_date", "people",
                                     "has_mynumber_card", "foreign_resident",
                                     NULL};
  struct mg_daemon *d = ud;
  struct mg__who w;
  struct mg_err e = {{0}};
  struct mg_json *doc = NULL;
  struct mg_visit_person people[MG_GUIDE_MAX_PEOPLE];
  struct mg_visit *v = NULL;
  struct mg_date filing, *fp = NULL;
  const char *le, *fd;
  char token[64] = "";
  size_t n = 0;
  int card, foreign, rc;

  if (mg__who_require(d, t, 1, &w) || !(doc = mg__api_body(t, req)))
    goto out;
  if ((rc = mg__api_only_keys(doc, keys, "body", &e)) ||
      (rc = mg__api_opt_str(doc, "life_event", &le, "", &e)) ||
      (rc = mg__api_opt_str(doc, "filing_date", &fd, "", &e)) ||
      (rc = mg__api_opt_bool(doc, "has_mynumber_card", &card, &e)) ||
      (rc = mg__api_opt_bool(doc, "foreign_resident", &foreign, &e)) ||
      (rc = parse_people(mg_json_get(doc, "people"), people, &n, &e))) {
    mg__api_reply_err(t, rc, &e);
    goto out;
  }
  if (!*le) {
    mg_http_reply_error(t, 400, "bad_request", "life_event: required");
    goto out;
  }
  if (*fd) {
    if (mg_date_parse(fd, &filing)) {
      mg_http_reply_error(t, 400, "bad_request", "filing_date: must be a date YYYY-MM-DD");
      goto out;
    }
    fp = &filing;
  }
  rc = mg_visit_new(d->visits, &w.a, le, fp, people, n, card, foreign, &v,
                    token, &e);
  if (rc) {
    mg__api_reply_err(t, rc, &e);
    goto out;
  }
  reply_state(d, t, &w, v->id, 201, token, NULL);
out:
  OPENSSL_cleanse(token, sizeof(token));
  mg_visit_free(v);
  mg_json_free(doc);
}

/* ---------------------------------------------------------------------- */
/* Resume and search, here or from another floor                          */

/* For staff at the counter: the slip's case may be on another floor's
 * box, and the city's tenant that would hand it over cannot be reached. */
#define MSG_TENANT_UNREACHABLE                                               \
  "この受付票の手続は別のフロアの窓口端末で始められた可能性がありますが、"   \
  "市のサーバーに接続できないため、ここでは呼び出せません。しばらくしてから" \
  "もう一度読み取るか、手続を始めたフロアの窓口にご案内ください。"
#define MSG_TENANT_ERROR                                                     \
  "市のサーバーから受け取った手続を読み込めませんでした。システム担当者に"   \
  "連絡してください。"

/* Does this box sync with the city's tenant ([sync] url)? */
static int syncs(const struct mg_daemon *d) {
  return d->sync && d->cfg->sync_url && *d->cfg->sync_url;
}

/* A request waiting for the tenant (cross-floor, issue 8, C1, G5). */
enum fetch_kind {
  FETCH_RESUME,  /* not here: the tenant's copy, or 404 / 503 */
  FETCH_REFRESH, /* here: a newer copy within [sync] fetch_timeout, or ours */
  FETCH_SEARCH,  /* a number not here: imported, then the search runs */
};

struct fetch_job {
  uv_timer_t timer; /* FETCH_REFRESH's deadline; closed when the job ends */
  struct mg_daemon *d;
  struct mg_http_txn *t;
  struct mg__who w;
  enum fetch_kind kind;
  int by_token, answered;
  char id[33];                      /* FETCH_REFRESH: the case here */
  char *kana, *birth_date, *number; /* FETCH_SEARCH: the query (wiped) */
};

static void wipe_str(char *s) {
  if (s)
    OPENSSL_cleanse(s, strlen(s));
  free(s);
}

static void job_free(uv_handle_t *h) {
  struct fetch_job *j = h->data;
  wipe_str(j->kana);
  wipe_str(j->birth_date);
  wipe_str(j->number);
  OPENSSL_cleanse(&j->w, sizeof(j->w));
  free(j);
}

/* The job ends once the tenant has answered (or could not be asked). */
static void job_end(struct fetch_job *j) {
  uv_timer_stop(&j->timer);
  uv_close((uv_handle_t *)&j->timer, job_free);
}

static struct fetch_job *job_new(struct mg_daemon *d, struct mg_http_txn *t,
                                 const struct mg__who *w,
                                 enum fetch_kind kind) {
  struct fetch_job *j = calloc(1, sizeof(*j));
  if (!j)
    return NULL;
  if (uv_timer_init(&d->loop, &j->timer)) {
    free(j);
    return NULL;
  }
  j->timer.data = j;
  j->d = d;
  j->t = t;
  j->kind = kind;
  mg__who_copy(&j->w, w);
  return j;
}

static void on_fetched(void *ud, int rc, unsigned char *json, size_t len,
                       const char *origin_box);
static void on_deadline(uv_timer_t *tm);

/* Ask the tenant (exactly one of digits / th, the token's SHA-256); with
 * deadline_ms the deadline starts first, so an answer that came at once
 * still finds the timer running.  0: on_fetched follows; otherwise the job
 * is ended here and the caller answers. */
static int job_start(struct fetch_job *j, const char *digits, const char *th,
                     uint64_t deadline_ms) {
  if (deadline_ms)
    uv_timer_start(&j->timer, on_deadline, deadline_ms, 0);
  int rc = mg_sync_fetch_case(j->d->sync, digits, th, on_fetched, j);
  if (rc)
    job_end(j);
  return rc;
}

/* The 8 digits of a number that mg_visit_by_number accepted. */
static void number_only_digits(const char *number, char digits[9]) {
  size_t n = 0;
  for (const char *p = number; *p && n < 8; p++)
    if (*p >= '0' && *p <= '9')
      digits[n++] = *p;
  digits[n] = 0;
}

/* FETCH_RESUME: the tenant's answer for a case not here. */
static void resume_answer(struct fetch_job *j, int rc, const char *id) {
  const char *how = j->by_token ? "token" : "number";
  if (rc == 0) {
    char detail[40];
    snprintf(detail, sizeof(detail), "%s, from the tenant", how);
    mg_visits_audit(j->d->visits, &j->w.a, "visit.resume", id, detail);
    reply_state_ex(j->d, j->t, &j->w, id, 200, NULL, NULL, 1);
    return;
  }
  mg_visits_audit(j->d->visits, &j->w.a, "visit.resume_failed", NULL, how);
  if (rc == -ENOENT)
    mg_http_reply_error(j->t, 404, "not_found",
                        j->by_token ? "no case has this continuation token"
                                    : "no case has this procedure number");
  else if (rc == -EAGAIN)
    mg_http_reply_error(j->t, 503, "tenant_unreachable",
                        MSG_TENANT_UNREACHABLE);
  else
    mg_http_reply_error(j->t, 502, "tenant_error", MSG_TENANT_ERROR);
}

/* FETCH_REFRESH: this box's copy, newer if the tenant gave one in time;
 * fresh: the tenant answered (its copy is not newer, or was imported). */
static void refresh_answer(struct fetch_job *j, int fresh, int imported) {
  char detail[48];
  j->answered = 1;
  snprintf(detail, sizeof(detail), "%s%s", j->by_token ? "token" : "number",
           imported ? ", newer from the tenant" : "");
  mg_visits_audit(j->d->visits, &j->w.a, "visit.resume", j->id, detail);
  reply_state_ex(j->d, j->t, &j->w, j->id, 200, NULL, NULL, fresh);
}

static void search_reply(struct mg_daemon *d, struct mg_http_txn *t,
                         const struct mg__who *w, const char *kana,
                         const char *bd, const char *number, int fresh);

static void on_deadline(uv_timer_t *tm) {
  struct fetch_job *j = tm->data;
  if (j->answered)
    return;
  /* never fail a resume because of the tenant: the case is here */
  mg_log_info("visit", "case %s: the tenant did not answer within [sync] "
              "fetch_timeout; this box's copy is shown", j->id);
  refresh_answer(j, 0, 0);
}

static void on_fetched(void *ud, int rc, unsigned char *json, size_t len,
                       const char *origin_box) {
  struct fetch_job *j = ud;
  struct mg_err e = {{0}};
  char id[33] = "";
  int imported = 0;
  uv_timer_stop(&j->timer);
  if (rc == 0) {
    /* -ESTALE: this box has the same or a newer version (or the case came
     * twice at once): the one here is the newest */
    rc = mg_visit_import(j->d->visits, json, len, origin_box, id, &e);
    imported = rc == 0;
    if (rc == -ESTALE && id[0])
      rc = 0;
    if (rc) { /* e names the place and the rule, never a value */
      mg_log_err("visit", "a case from the tenant cannot be imported: %s",
                 e.msg);
      rc = -EBADMSG;
    }
  }
  if (json) {
    OPENSSL_cleanse(json, len);
    free(json);
  }
  if (j->kind == FETCH_RESUME) {
    resume_answer(j, rc, id);
  } else if (j->kind == FETCH_REFRESH) {
    if (imported) /* also when the deadline answered: the next resume has it */
      mg_log_info("visit", "case %s: a newer version from the tenant "
                  "replaced this box's copy", j->id);
    if (!j->answered)
      refresh_answer(j, rc == 0 || rc == -ENOENT, imported);
  } else {
    search_reply(j->d, j->t, &j->w, j->kana, j->birth_date, j->number,
                 rc == 0 || rc == -ENOENT);
  }
  job_end(j);
}

/* Nothing here has the token or number: ask the tenant (C1, G5).  0 when
 * the answer follows from on_fetched; -ENOENT when the box does not sync
 * (the caller answers 404 as before); other: answered here. */
static int resume_from_tenant(struct mg_daemon *d, struct mg_http_txn *t,
                              const struct mg__who *w, const char *token,
                              const char *number) {
  char th[65] = "", digits[9] = "";
  struct fetch_job *j;
  int rc;
  if (!syncs(d))
    return -ENOENT;
  if (*token) {
    if (strncmp(token, "MG1:", 4) == 0)
      token += 4;
    if (mg_sha256_hex(token, strlen(token), th))
      return -ENOENT;
  } else {
    number_only_digits(number, digits); /* checked by mg_visit_by_number */
  }
  if (!(j = job_new(d, t, w, FETCH_RESUME)))
    return -ENOENT;
  j->by_token = *th != 0;
  rc = job_start(j, *th ? NULL : digits, *th ? th : NULL, 0);
  if (rc == 0)
    return 0;
  /* not even asked: not enrolled, circuit open, stopping */
  mg_visits_audit(d->visits, &w->a, "visit.resume_failed", NULL,
                  *th ? "token" : "number");
  if (rc == -EAGAIN)
    mg_http_reply_error(t, 503, "tenant_unreachable", MSG_TENANT_UNREACHABLE);
  else
    mg_http_reply_error(t, 502, "tenant_error", MSG_TENANT_ERROR);
  return rc == -ENOENT ? -EIO : rc; /* answered: not the caller's 404 */
}

/* The case is here, and the box syncs: another floor may have changed it
 * since (1F → 2F → 1F).  Ask the tenant by the case's own token hash (the
 * number could be another city box's), wait at most [sync] fetch_timeout,
 * import a newer copy.  0: answered later (refresh_answer); otherwise the
 * tenant cannot be asked now and the caller answers with this copy. */
static int refresh_from_tenant(struct mg_daemon *d, struct mg_http_txn *t,
                               const struct mg__who *w,
                               const struct mg_visit *v, int by_token) {
  char th[65];
  struct fetch_job *j;
  if (mg_sha256_hex(v->token, strlen(v->token), th) ||
      !(j = job_new(d, t, w, FETCH_REFRESH)))
    return -ENOMEM;
  j->by_token = by_token;
  snprintf(j->id, sizeof(j->id), "%s", v->id);
  return job_start(j, NULL, th, (uint64_t)d->cfg->sync_fetch_timeout);
}

/* POST /api/v1/visits/resume {"token"} or {"number"}: the QR code, the
 * barcode or the typed number at any counter (G5, C1).  A case started on
 * another floor's box is fetched from the tenant (resume_from_tenant); a
 * case here is refreshed from it when the box syncs (refresh_from_tenant).
 * The answer says "fresh": false when this box's copy is shown because the
 * tenant could not be asked or did not answer in time. */
static void visit_resume(void *ud, struct mg_http_txn *t,
                         const struct mg_http_req *req) {
  static const char *const keys[] = {"token", "number", NULL};
  struct mg_daemon *d = ud;
  struct mg__who w;
  struct mg_err e = {{0}};
  struct mg_json *doc = NULL;
  struct mg_visit *v = NULL;
  const char *token, *number;
  int rc;
  if (mg__who_require(d, t, 1, &w) || !(doc = mg__api_body(t, req)))
    goto out;
  if ((rc = mg__api_only_keys(doc, keys, "body", &e)) ||
      (rc = mg__api_opt_str(doc, "token", &token, "", &e)) ||
      (rc = mg__api_opt_str(doc, "number", &number, "", &e))) {
    mg__api_reply_err(t, rc, &e);
    goto out;
  }
  if (!*token == !*number) {
    mg_http_reply_error(t, 400, "bad_request", "give either token or number");
    goto out;
  }
  rc = *token ? mg_visit_by_token(d->visits, &w.a, token, &v, &e)
              : mg_visit_by_number(d->visits, &w.a, number, &v, &e);
  if (rc == -ENOENT && resume_from_tenant(d, t, &w, token, number) != -ENOENT)
    goto out; /* answered, now or when the tenant has */
  if (rc) {
    /* failed attempts are audited: guessing shows up there */
    mg_visits_audit(d->visits, &w.a, "visit.resume_failed", NULL,
                    *token ? "token" : "number");
    mg__api_reply_err(t, rc, &e);
    goto out;
  }
  if (syncs(d) && refresh_from_tenant(d, t, &w, v, *token != 0) == 0)
    goto out; /* answered when the tenant has, or at the deadline */
  mg_visits_audit(d->visits, &w.a, "visit.resume", v->id,
                  *token ? "token" : "number");
  /* without sync this box's copy is the only one */
  reply_state_ex(d, t, &w, v->id, 200, NULL, NULL, !syncs(d));
out:
  mg_visit_free(v);
  mg_json_free(doc);
}

/* The search's answer; fresh: 0 when a number not here could not be asked
 * of the tenant. */
static void search_reply(struct mg_daemon *d, struct mg_http_txn *t,
                         const struct mg__who *w, const char *kana,
                         const char *bd, const char *number, int fresh) {
  struct mg_err e = {{0}};
  struct mg_buf b;
  struct mg_jw jw;
  int rc;
  mg_buf_init(&b);
  mg_jw_init(&jw, &b);
  mg_jw_obj(&jw);
  mg_jw_key(&jw, "cases");
  if ((rc = mg_visit_search(d->visits, &w->a, kana, bd, number, &jw, &e))) {
    mg_buf_free(&b);
    mg__api_reply_err(t, rc, &e);
    return;
  }
  mg_jw_kbool(&jw, "fresh", fresh);
  mg_jw_obj_end(&jw);
  mg__api_reply_buf(t, 200, &b);
}

/* A number not on this box: ask the tenant, import what it has, then
 * search as usual (C1, G5).  0 when search_reply follows from on_fetched. */
static int search_from_tenant(struct mg_daemon *d, struct mg_http_txn *t,
                              const struct mg__who *w, const char *kana,
                              const char *bd, const char *number) {
  char digits[9];
  struct fetch_job *j = job_new(d, t, w, FETCH_SEARCH);
  if (!j)
    return -ENOMEM;
  j->kana = strdup(kana);
  j->birth_date = strdup(bd);
  j->number = strdup(number);
  if (!j->kana || !j->birth_date || !j->number) {
    job_end(j);
    return -ENOMEM;
  }
  number_only_digits(number, digits);
  return job_start(j, digits, NULL, 0);
}

static void visit_search(void *ud, struct mg_http_txn *t,
                         const struct mg_http_req *req) {
  static const char *const keys[] = {"kana", "birth_date", "number", NULL};
  struct mg_daemon *d = ud;
  struct mg__who w;
  struct mg_err e = {{0}};
  struct mg_json *doc = NULL;
  const char *kana, *bd, *number;
  int rc, fresh = 1;
  if (mg__who_require(d, t, 1, &w) || !(doc = mg__api_body(t, req)))
    goto out;
  if ((rc = mg__api_only_keys(doc, keys, "body", &e)) ||
      (rc = mg__api_opt_str(doc, "kana", &kana, "", &e)) ||
      (rc = mg__api_opt_str(doc, "birth_date", &bd, "", &e)) ||
      (rc = mg__api_opt_str(doc, "number", &number, "", &e))) {
    mg__api_reply_err(t, rc, &e);
    goto out;
  }
  if (*number && syncs(d)) {
    struct mg_visit *v = NULL;
    rc = mg_visit_by_number(d->visits, &w.a, number, &v, &e);
    mg_visit_free(v);
    if (rc == -ENOENT &&
        search_from_tenant(d, t, &w, kana, bd, number) == 0)
      goto out; /* answered when the tenant has */
    fresh = rc != -ENOENT;
  }
  search_reply(d, t, &w, kana, bd, number, fresh);
out:
  mg_json_free(doc);
}

/* ---------------------------------------------------------------------- */
/* Slips                                                                  */

struct slip_job {
  uv_work_t work;
  struct mg_daemon *d;
  struct mg_http_txn *t;
  struct mg__who w;
  int print;
  char visit_id[33], number[9];
  /* every string the slip points to, freed at the end */
  char **strs;
  size_t n_strs;
  struct mg_slip slip;
  struct mg_slip_item *items;
  unsigned char *pdf;
  size_t len;
  int rc;
  struct mg_err err;
  char path[4096];
};

static const char *keep(struct slip_job *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const char *keep(struct slip_job *j, const char *fmt, ...) {
  char *s = NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  void *v = n < 0 ? NULL : realloc(j->strs, (j->n_strs + 1) * sizeof(char *));
  if (!v) {
    free(s);
    return "";
  }
  j->strs = v;
  j->strs[j->n_strs++] = s;
  return s;
}

static void slip_job_free(struct slip_job *j) {
  for (size_t i = 0; i < j->n_strs; i++) {
    OPENSSL_cleanse(j->strs[i], strlen(j->strs[i]));
    free(j->strs[i]);
  }
  free(j->strs);
  for (size_t i = 0; j->items && i < j->slip.n_items; i++)
    free((void *)j->items[i].documents);
  free(j->items);
  if (j->pdf)
    OPENSSL_cleanse(j->pdf, j->len);
  free(j->pdf);
  OPENSSL_cleanse(&j->w, sizeof(j->w));
  free(j);
}

/* Everything the slip shows, copied from the case (masking applied). */
static int slip_fill(struct slip_job *j, const struct mg_visit *v,
                     const struct mg_pack *p, struct mg_err *e) {
  struct mg_guide_input in;
  struct mg_guide_state gs;
  struct mg_date births[MG_GUIDE_MAX_PEOPLE];
  struct mg_buf names, addr;
  int rc = mg_visit_guide(v, p, &in, births, &gs);
  if (rc)
    return mg_err_set(e, rc, "the guide cannot be computed");
  mg_buf_init(&names);
  mg_buf_init(&addr);
  for (size_t i = 0; i < v->n_people; i++) {
    if (v->people[i].name[0])
      mg_buf_printf(&names, "%s%s", names.len ? "、" : "", v->people[i].name);
    /* C2: a masked address is left off the slip entirely */
    if (!addr.len && v->people[i].address[0] && !mg_visit_masked(v, &j->w.a, i))
      mg_buf_printf(&addr, "%s", v->people[i].address);
  }
  const struct mg_pack_life_event *le = mg_pack_life_event(p, v->life_event);
  const struct mg_pack_counter *here = mg_pack_counter(p, j->w.a.counter);
  const char *le_name = le ? le->name : v->life_event;
  const char *counter_name = here ? here->name : j->w.a.counter;
  time_t now = time(NULL);
  struct tm tm;
  localtime_r(&now, &tm);
  j->slip.city = keep(j, "%s", p->name);
  j->slip.title = keep(j, "%s", le_name);
  j->slip.number = keep(j, "%s", v->number);
  j->slip.qr_payload = keep(j, "MG1:%s", v->token);
  j->slip.issued_at = keep(j, "%d年%d月%d日 %02d:%02d", tm.tm_year + 1900,
                           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min);
  j->slip.counter = keep(j, "%s", counter_name);
  j->slip.resident = keep(j, "%s", names.data ? names.data : "");
  j->slip.address = keep(j, "%s", addr.data ? addr.data : "");
  j->slip.free_text = keep(j, "%s", v->free_text);
  OPENSSL_cleanse(names.data, names.len);
  OPENSSL_cleanse(addr.data, addr.len);
  mg_buf_free(&names);
  mg_buf_free(&addr);
  j->items = calloc(gs.n_procs ? gs.n_procs : 1, sizeof(*j->items));
  if (!j->items) {
    mg_guide_state_free(&gs);
    return mg_err_set(e, -ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < gs.n_procs; i++) {
    const struct mg_guide_proc *gp = &gs.procs[i];
    const struct mg_pack_procedure *pr = gp->p;
    const struct mg_pack_counter *c = mg_pack_counter(p, pr->counter);
    struct mg_slip_item *it = &j->items[j->slip.n_items];
    struct mg_buf who;
    if (gp->source == MG_GUIDE_REMOVED)
      continue;
    mg_buf_init(&who);
    for (size_t k = 0; gp->per_person && k < gs.in->n_people; k++)
      if (gp->who[k] && v->people[k].name[0])
        mg_buf_printf(&who, "%s%s", who.len ? "、" : "", v->people[k].name);
    it->name = keep(j, "%s", pr->name);
    it->info = pr->kind == MG_PACK_PROC_INFO;
    it->counter = keep(j, "%s", c ? c->name : pr->counter);
    it->floor = keep(j, "%s", c ? c->floor : "");
    it->counter_note = keep(j, "%s", c ? c->note : "");
    it->notes = keep(j, "%s", pr->notes);
    it->deadline = keep(j, "%s", pr->deadline);
    it->people = keep(j, "%s", who.data ? who.data : "");
    mg_buf_free(&who);
    it->status = keep(j, "%s", mg_visit_proc_status(v, pr));
    const char **docs = calloc(pr->documents.n + 1, sizeof(char *));
    for (size_t k = 0; docs && k < pr->documents.n; k++)
      docs[k] = keep(j, "%s", pr->documents.v[k]);
    it->documents = docs;
    it->n_documents = docs ? pr->documents.n : 0;
    j->slip.n_items++;
  }
  j->slip.items = j->items;
  mg_guide_state_free(&gs);
  return 0;
}

int mg__api_spool(const char *path, const unsigned char *pdf, size_t len,
                  struct mg_err *err) {
  /* the printer plugin reads a file: a private spool file, removed after */
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  size_t off = 0;
  while (fd >= 0 && off < len) {
    ssize_t n = write(fd, pdf + off, len - off);
    if (n <= 0)
      break;
    off += (size_t)n;
  }
  int rc = fd < 0 || off != len || fsync(fd) != 0
               ? mg_err_set(err, -EIO, "cannot write the spool file")
               : 0;
  if (fd >= 0)
    close(fd);
  return rc;
}

static void slip_work(uv_work_t *req) {
  struct slip_job *j = req->data;
  j->rc = mg_slip_render(&j->slip, &j->pdf, &j->len, &j->err);
  if (j->rc == 0 && j->print)
    j->rc = mg__api_spool(j->path, j->pdf, j->len, &j->err);
}

/* A spooled PDF on its way to the counter's printer. */
struct print_req {
  struct mg_daemon *d;
  struct mg_http_txn *t;
  struct mg__who w;
  char visit_id[33], path[4200], action[32];
};

static void print_done(void *ud, int status, const char *json) {
  struct print_req *p = ud;
  unlink(p->path);
  if (status == MG_PLUGIN_OK) {
    struct mg_buf b;
    mg_buf_init(&b);
    mg_buf_printf(&b, "{\"printed\":true,\"result\":%s}",
                  json && *json ? json : "{}");
    mg_visits_audit(p->d->visits, &p->w.a, p->action, p->visit_id, "");
    mg__api_reply_buf(p->t, 200, &b);
  } else {
    mg_http_reply_error(p->t, 502, "print_failed",
                        status == MG_PLUGIN_RETRY
                            ? "the printer is busy or not ready; try again"
                            : "the printer failed; see madoctl devices");
  }
  OPENSSL_cleanse(&p->w, sizeof(p->w));
  free(p);
}

void mg__api_print(struct mg_daemon *d, struct mg_http_txn *t,
                   const struct mg__who *w, const char *visit_id,
                   const char *path, const char *title, const char *action) {
  const char *printer =
      mg_plugin_host_device_for(d->plugins, "printer", w->a.counter);
  struct print_req *p = calloc(1, sizeof(*p));
  struct mg_buf ab;
  struct mg_jw aw;
  mg_buf_init(&ab);
  mg_jw_init(&aw, &ab);
  mg_jw_obj(&aw);
  mg_jw_kstr(&aw, "path", path);
  mg_jw_kstr(&aw, "title", title);
  mg_jw_obj_end(&aw);
  if (p) {
    p->d = d;
    p->t = t;
    mg__who_copy(&p->w, w);
    snprintf(p->visit_id, sizeof(p->visit_id), "%s", visit_id);
    snprintf(p->path, sizeof(p->path), "%s", path);
    snprintf(p->action, sizeof(p->action), "%s", action);
  }
  int rc = !printer          ? -ENOENT
           : !p || ab.oom    ? -ENOMEM
                             : mg_plugin_host_command(d->plugins, printer,
                                                      "print", ab.data,
                                                      print_done, p);
  mg_buf_free(&ab);
  if (rc) {
    unlink(path);
    mg_http_reply_error(t, rc == -ENOENT ? 409 : 503, "no_printer",
                        rc == -ENOENT ? "no printer serves this counter"
                                      : "the printer of this counter is not "
                                        "running");
    free(p);
  }
}

void mg__api_pdf_done(struct mg_daemon *d, struct mg_http_txn *t,
                      const struct mg__who *w, const char *kind,
                      const char *visit_id, const char *number, int print,
                      const char *path, int failed, const char *why,
                      const unsigned char *pdf, size_t len) {
  char name[128], action[32];
  if (failed) {
    unlink(path);
    mg_http_reply_error(t, 500, "render_failed", why);
    return;
  }
  snprintf(name, sizeof(name), "%s %s", kind, number);
  if (print) {
    snprintf(action, sizeof(action), "%s.print", kind);
    mg__api_print(d, t, w, visit_id, path, name, action);
    return;
  }
  snprintf(name, sizeof(name), "inline; filename=\"%s-%s.pdf\"", kind, number);
  mg_http_set_header(t, "content-disposition:", name);
  mg_http_reply(t, 200, "application/pdf", pdf, len);
  snprintf(action, sizeof(action), "%s.download", kind);
  mg_visits_audit(d->visits, &w->a, action, visit_id, "");
}

static void slip_done(uv_work_t *req, int status) {
  struct slip_job *j = req->data;
  mg__api_pdf_done(j->d, j->t, &j->w, "slip", j->visit_id, j->number, j->print,
                   j->path, status || j->rc, status ? "cancelled" : j->err.msg,
                   j->pdf, j->len);
  slip_job_free(j);
}

static void slip_start(struct mg_daemon *d, struct mg_http_txn *t,
                       const struct mg__who *w, const char *id, int print) {
  struct mg_err e = {{0}};
  struct mg_visit *v = NULL;
  struct mg_pack_use *u = NULL;
  const struct mg_pack *p;
  unsigned char rnd[8];
  struct slip_job *j = calloc(1, sizeof(*j));
  int rc;
  if (!j) {
    mg_http_reply_error(t, 500, "internal", "out of memory");
    return;
  }
  j->d = d;
  j->t = t;
  mg__who_copy(&j->w, w);
  j->print = print;
  j->work.data = j;
  if ((rc = mg_visit_get(d->visits, &w->a, id, &v, &e)))
    goto fail;
  if (!(u = mg_visits_pack(d->visits, v)) || !(p = mg_pack_use_model(u))) {
    rc = mg_err_set(&e, -ENODATA, "the pack release of this case is no "
                    "longer on the box");
    goto fail;
  }
  snprintf(j->visit_id, sizeof(j->visit_id), "%s", v->id);
  snprintf(j->number, sizeof(j->number), "%s", v->number);
  if ((rc = slip_fill(j, v, p, &e)))
    goto fail;
  RAND_bytes(rnd, sizeof(rnd));
  snprintf(j->path, sizeof(j->path), "%s/spool/slip-%02x%02x%02x%02x%02x%02x.pdf",
           d->cfg->state_dir, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
  if (uv_queue_work(&d->loop, &j->work, slip_work, slip_done)) {
    rc = mg_err_set(&e, -EIO, "cannot start rendering");
    goto fail;
  }
  mg_visits_pack_release(d->visits, u);
  mg_visit_free(v);
  return;
fail:
  mg__api_reply_err(t, rc, &e);
  mg_visits_pack_release(d->visits, u);
  mg_visit_free(v);
  slip_job_free(j);
}

/* ---------------------------------------------------------------------- */
/* /api/v1/visits/{id}[/...]                                              */

/* Split the path after /api/v1/visits/ into up to 4 segments. */
static size_t segments(const char *path, char seg[4][80]) {
  const char *p = path + strlen("/api/v1/visits/");
  size_t n = 0;
  while (*p && n < 4) {
    const char *s = strchr(p, '/');
    size_t len = s ? (size_t)(s - p) : strlen(p);
    if (len == 0 || len >= 80)
      return 5; /* no such path */
    memcpy(seg[n], p, len);
    seg[n++][len] = 0;
    p = s ? s + 1 : p + len;
    if (s && !*p)
      return 5; /* trailing slash */
  }
  return *p ? 5 : n;
}

static void visit_get_h(void *ud, struct mg_http_txn *t,
                        const struct mg_http_req *req) {
  struct mg_daemon *d = ud;
  struct mg__who w;
  char seg[4][80];
  size_t n = segments(req->path, seg);
  if (mg__who_require(d, t, 0, &w))
    return;
  if (n == 1) {
    reply_state(d, t, &w, seg[0], 200, NULL, "visit.view");
  } else if (n == 2 && strcmp(seg[1], "slip.pdf") == 0) {
    slip_start(d, t, &w, seg[0], 0);
  } else if (n <= 4 && mg__form_api(d, t, req, &w, seg, n) == 0) {
    /* answered */
  } else {
    mg_http_reply_error(t, 404, "not_found", "no such API path");
  }
}

/* Bodies: {"answer": "yes"|"no"}, {"text"}, {"status"}, {"person", "on"},
 * {"reason"}, {"people"}. */
static void visit_change_h(void *ud, struct mg_http_txn *t,
                           const struct mg_http_req *req) {
  struct mg_daemon *d = ud;
  struct mg__who w;
  struct mg_err e = {{0}};
  struct mg_json *doc = NULL;
  struct mg_visit *now_v = NULL; /* the case after the change, when at hand */
  char seg[4][80];
  size_t n = segments(req->path, seg);
  const char *m = req->method, *id = seg[0];
  const char *s;
  int rc = -ENOENT;

  if (mg__who_require(d, t, 1, &w))
    return;
  mg_err_set(&e, -ENOENT, "no such API path");
  if (n <= 4 && (mg__form_api(d, t, req, &w, seg, n) == 0 ||
                 mg__device_api(d, t, req, &w, seg, n) == 0))
    goto out;
  if (n == 3 && strcmp(seg[1], "answers") == 0 && strcmp(m, "PUT") == 0) {
    static const char *const keys[] = {"answer", NULL};
    if (!(doc = mg__api_body(t, req)))
      goto out;
    if (!(rc = mg__api_only_keys(doc, keys, "body", &e)) &&
        !(rc = mg__api_opt_str(doc, "answer", &s, "", &e))) {
      if (strcmp(s, "yes") && strcmp(s, "no"))
        rc = mg_err_set(&e, -EINVAL, "answer: must be \"yes\" or \"no\"");
      else
        rc = mg_visit_answer_get(d->visits, &w.a, id, seg[2], s[0] == 'y',
                                 &now_v, &e);
    }
  } else if (n == 3 && strcmp(seg[1], "procedures") == 0 &&
             (strcmp(m, "POST") == 0 || strcmp(m, "DELETE") == 0)) {
    rc = mg_visit_manual(d->visits, &w.a, id, seg[2], m[0] == 'P', &e);
  } else if (n == 4 && strcmp(seg[1], "procedures") == 0 &&
             strcmp(seg[3], "manual") == 0 && strcmp(m, "DELETE") == 0) {
    rc = mg_visit_manual(d->visits, &w.a, id, seg[2], -1, &e);
  } else if (n == 4 && strcmp(seg[1], "procedures") == 0 &&
             strcmp(seg[3], "status") == 0 && strcmp(m, "PUT") == 0) {
    static const char *const keys[] = {"status", NULL};
    if (!(doc = mg__api_body(t, req)))
      goto out;
    if (!(rc = mg__api_only_keys(doc, keys, "body", &e)) &&
        !(rc = mg__api_opt_str(doc, "status", &s, "", &e)))
      rc = mg_visit_set_status(d->visits, &w.a, id, seg[2], s, &e);
  } else if (n == 2 && strcmp(m, "POST") == 0 && strcmp(seg[1], "notes") == 0) {
    static const char *const keys[] = {"text", NULL};
    if (!(doc = mg__api_body(t, req)))
      goto out;
    if (!(rc = mg__api_only_keys(doc, keys, "body", &e)) &&
        !(rc = mg__api_opt_str(doc, "text", &s, "", &e)))
      rc = mg_visit_add_note(d->visits, &w.a, id, s, &e);
  } else if (n == 2 && strcmp(m, "PUT") == 0 &&
             strcmp(seg[1], "slip-text") == 0) {
    static const char *const keys[] = {"text", NULL};
    if (!(doc = mg__api_body(t, req)))
      goto out;
    if (!(rc = mg__api_only_keys(doc, keys, "body", &e)) && !(rc = mg__api_need(doc, "text", &e)) &&
        !(rc = mg__api_opt_str(doc, "text", &s, "", &e)))
      rc = mg_visit_set_free_text(d->visits, &w.a, id, s, &e);
  } else if (n == 2 && strcmp(m, "PUT") == 0 && strcmp(seg[1], "people") == 0) {
    static const char *const keys[] = {"people", NULL};
    struct mg_visit_person people[MG_GUIDE_MAX_PEOPLE];
    size_t np = 0;
    if (!(doc = mg__api_body(t, req)))
      goto out;
    if (!(rc = mg__api_only_keys(doc, keys, "body", &e)) &&
        !(rc = mg__api_need(doc, "people", &e)) &&
        !(rc = parse_people(mg_json_get(doc, "people"), people, &np, &e)))
      rc = mg_visit_set_people(d->visits, &w.a, id, people, np, &e);
  } else if (n == 2 && strcmp(m, "POST") == 0 && strcmp(seg[1], "support") == 0) {
    static const char *const keys[] = {"person", "on", NULL};
    int64_t person = -1;
    int on = 0;
    if (!(doc = mg__api_body(t, req)))
      goto out;
    if (!(rc = mg__api_only_keys(doc, keys, "body", &e)) && !(rc = mg__api_need(doc, "on", &e)) &&
        !(rc = mg__api_opt_bool(doc, "on", &on, &e))) {
      if (mg_json_get_int(doc, "person", &person) || person < 0)
        rc = mg_err_set(&e, -EINVAL, "person: the 0-based index of a person "
                        "of the case");
      else
        rc = mg_visit_support(d->visits, &w.a, id, (size_t)person, on, &e);
    }
  } else if (n == 2 && strcmp(m, "POST") == 0 && strcmp(seg[1], "unmask") == 0) {
    static const char *const keys[] = {"reason", NULL};
    if (!(doc = mg__api_body(t, req)))
      goto out;
    if (!(rc = mg__api_only_keys(doc, keys, "body", &e)) &&
        !(rc = mg__api_opt_str(doc, "reason", &s, "", &e)))
      rc = mg_visit_unmask(d->visits, &w.a, id, s, &e);
  } else if (n == 2 && strcmp(m, "POST") == 0 && strcmp(seg[1], "close") == 0) {
    rc = mg_visit_close(d->visits, &w.a, id, &e);
  } else if (n == 3 && strcmp(m, "POST") == 0 && strcmp(seg[1], "slip") == 0 &&
             strcmp(seg[2], "print") == 0) {
    slip_start(d, t, &w, id, 1);
    goto out;
  }
  if (rc == -EPERM) /* refused attempts on a case are worth knowing */
    mg_visits_audit(d->visits, &w.a, "visit.refused", id, e.msg);
  if (rc) {
    mg__api_reply_err(t, rc, &e);
  } else if (now_v) {
    reply_loaded(d, t, &w, now_v);
    now_v = NULL;
  } else {
    reply_state(d, t, &w, id, 200, NULL, NULL);
  }
out:
  mg_visit_free(now_v);
  mg_json_free(doc);
  if (req->body_len)
    OPENSSL_cleanse((void *)req->body, req->body_len);
}

int mg__visit_api_register(struct mg_daemon *d) {
  return mg_http_route(d->http, "GET", "/api/v1/life-events", life_events, d) ||
         mg_http_route(d->http, "POST", "/api/v1/visits", visit_create, d) ||
         mg_http_route(d->http, "POST", "/api/v1/visits/resume", visit_resume, d) ||
         mg_http_route(d->http, "POST", "/api/v1/visits/search", visit_search, d) ||
         mg_http_route(d->http, "GET", "/api/v1/visits/*", visit_get_h, d) ||
         mg_http_route(d->http, "POST", "/api/v1/visits/*", visit_change_h, d) ||
         mg_http_route(d->http, "PUT", "/api/v1/visits/*", visit_change_h, d) ||
         mg_http_route(d->http, "DELETE", "/api/v1/visits/*", visit_change_h, d);
}
