/*
 * tenantd.c — madoguchi-tenantd, the reference tenant (issue 8, X1, X3, N4):
 * boxes enrol, upload sealed applications and case snapshots, and fetch
 * cases begun on another floor.  API: docs/tenant-api.md.
 *
 * The HTTP stack is the daemon's (core/http.c) with mutual TLS on the
 * paths that need a box certificate; every database call and every
 * envelope runs on libuv worker threads (uv_queue_work), never on the loop.
 *
 *   madoguchi-tenantd --config FILE serve
 *   madoguchi-tenantd --config FILE init-ca
 *   madoguchi-tenantd --config FILE init-city --city 352152 [--retention 30d]
 *   madoguchi-tenantd --config FILE set-retention --city 352152 --retention 30d
 *   madoguchi-tenantd --config FILE purge [--city 352152]
 *   madoguchi-tenantd --config FILE enroll-code --city 352152 --box shunan-1f
 *   madoguchi-tenantd --config FILE enroll-codes --city 352152
 *   madoguchi-tenantd --config FILE expire-code --city 352152 --box shunan-1f
 *   madoguchi-tenantd --config FILE revoke --city 352152 --box shunan-1f
 *
 * D1: each city sets how long its data stays; serve purges every
 * purge_interval through the city's own pool, `purge` does it now.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <openssl/crypto.h>

#include "config.h"
#include "envelope.h"
#include "http.h"
#include "ini.h"
#include "json.h"
#include "log.h"
#include "tenant.h"
#include "version.h"

/* ------------------------------------------------------------- config */

struct tcfg {
  char *state_dir;
  char *listen;
  char *names;
  char *pg;
  char *pg_admin;
  int64_t pool;
  int64_t max_body;
  int64_t request_timeout;
  int64_t drain_timeout;
  int64_t purge_interval;
  int64_t enroll_attempts;
  int64_t enroll_lock;
  int log_level;
};

#define TOFF(f) offsetof(struct tcfg, f)
static const char *check_abs(const void *stored) {
  const char *s = *(char *const *)stored;
  return s[0] == '/' ? NULL : "must be an absolute path";
}

static const struct mg_config_item tenant_items[] = {
    {MG_CFG_STR, "state_dir", "/var/lib/madoguchi-tenant", TOFF(state_dir), 0, 0,
     0, NULL, check_abs,
     "CA, server certificate, tenant keys, city passwords (absolute path)."},
    {MG_CFG_STR, "listen", "0.0.0.0:9443", TOFF(listen), 0, 0, 0, NULL, NULL,
     "Address and port of the HTTPS listener (port 0: a free port, logged)."},
    {MG_CFG_STR, "server_names", "localhost,127.0.0.1", TOFF(names), 0, 0, 0,
     NULL, NULL,
     "DNS names and IP addresses of the server certificate made by init-ca."},
    {MG_CFG_STR, "pg", "dbname=madoguchi", TOFF(pg), 0, 0, 0, NULL, NULL,
     "libpq conninfo of the database without user/password; each city logs "
     "in as mg_city_<code> with the password init-city wrote."},
    {MG_CFG_STR, "pg_admin", "", TOFF(pg_admin), 0, 0, 0, NULL, NULL,
     "libpq conninfo of an administrator: init-city, enroll-code and revoke "
     "only (serve never uses it)."},
    {MG_CFG_INT, "pool", "4", TOFF(pool), 0, 1, 64, NULL, NULL,
     "PostgreSQL connections per city."},
    {MG_CFG_SIZE, "max_body", "8M", TOFF(max_body), 0, 1024, 64LL << 20, NULL,
     NULL, "Largest request body (a batch) accepted (413 above it)."},
    {MG_CFG_DURATION, "request_timeout", "60s", TOFF(request_timeout), 0, 100,
     600000, NULL, NULL, "A request must arrive within this time."},
    {MG_CFG_DURATION, "drain_timeout", "10s", TOFF(drain_timeout), 0, 0, 600000,
     NULL, NULL, "How long SIGTERM waits for requests in flight."},
    {MG_CFG_DURATION, "purge_interval", "10m", TOFF(purge_interval), 0, 1000,
     86400000, NULL, NULL,
     "How often serve deletes what is older than each city's retention "
     "(D1; also once at start)."},
    {MG_CFG_INT, "enroll_attempts", "10", TOFF(enroll_attempts), 0, 1, 1000,
     NULL, NULL,
     "Wrong enrolment codes for one box within enroll_lock before the box is "
     "locked (429 too_many_attempts)."},
    {MG_CFG_DURATION, "enroll_lock", "15m", TOFF(enroll_lock), 0, 1000,
     86400000, NULL, NULL,
     "The window for counting wrong codes, and how long a box stays locked."},
    {MG_CFG_ENUM, "log_level", "info", TOFF(log_level), 0, 0, 0,
     "error|warning|notice|info|debug", NULL, "Least severe level logged."},
    {0, NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL}};

static int load_config(const char *path, struct tcfg *c, struct mg_err *err) {
  struct mg_ini ini = {0};
  char *text = NULL;
  size_t len = 0;
  int rc = 0, seen = 0;
  FILE *f = fopen(path, "r");
  memset(c, 0, sizeof(*c));
  if (!f)
    return mg_err_set(err, -errno, "%s: %s", path, strerror(errno));
  if (!(text = malloc(1 << 16)) || (len = fread(text, 1, (1 << 16) - 1, f)) == 0 ||
      !feof(f)) {
    fclose(f);
    free(text);
    return mg_err_set(err, -EINVAL, "%s: empty, unreadable or over 64 KiB", path);
  }
  fclose(f);
  if ((rc = mg_ini_read(text, len, path, &ini, err)))
    goto out;
  for (size_t i = 0; i < ini.n; i++) {
    if (strcmp(ini.s[i].type, "tenant") || ini.s[i].id || seen++) {
      rc = mg_err_set(err, -EINVAL,
                      "%s:%d: unknown or repeated section (only one [tenant])",
                      path, ini.s[i].line);
      goto out;
    }
    if ((rc = mg_config_apply(tenant_items, c, ini.s[i].kv, ini.s[i].n_kv, path,
                              ini.s[i].line, "[tenant]", err)))
      goto out;
  }
  if (!seen)
    rc = mg_config_apply(tenant_items, c, NULL, 0, path, 1, "[tenant]", err);
out:
  mg_ini_free(&ini);
  free(text);
  return rc;
}

/* ------------------------------------------------------------- server */

struct city {
  struct mg_t_pool *pool;
  int purging; /* a purge job is queued or running (loop thread only) */
};

struct tenant {
  uv_loop_t *loop;
  struct tcfg cfg;
  struct mg_http *http;
  struct mg_t_ca ca;
  EVP_PKEY *recv, *sign;
  char recv_b64[MG_ENV_KEY_B64], sign_b64[MG_ENV_KEY_B64];
  struct city *cities;
  size_t n_cities;
  uv_signal_t sigterm, sigint;
  uv_timer_t purge_timer;
};

static struct mg_t_pool *find_pool(struct tenant *T, const char *city) {
  for (size_t i = 0; city && i < T->n_cities; i++)
    if (strcmp(mg_t_pool_city(T->cities[i].pool), city) == 0)
      return T->cities[i].pool;
  return NULL;
}

enum job_kind { JOB_ENROLL = 1, JOB_RECORDS, JOB_FETCH, JOB_PURGE };

struct job {
  uv_work_t w;
  struct tenant *T;
  struct mg_http_txn *t;
  int kind;
  struct mg_t_pool *pool;
  char serial[80];
  char *body;
  size_t len;
  /* enrol */
  char box[72], code[64], sign_b64[64], recv_b64[64];
  EVP_PKEY *box_sign;
  /* fetch */
  char number[32], token[65];
  /* purge (no request: t is NULL) */
  struct city *city;
  struct mg_t_purge purge;
  /* answer */
  int64_t retry_after; /* 429: seconds */
  int status;
  const char *code_out;
  char *answer;
  struct mg_err err;
};

static void job_free(struct job *j) {
  if (j->body) {
    OPENSSL_cleanse(j->body, j->len);
    free(j->body);
  }
  OPENSSL_cleanse(j->code, sizeof(j->code));
  EVP_PKEY_free(j->box_sign);
  free(j->answer);
  free(j);
}

static void fail(struct job *j, int status, const char *code) {
  j->status = status;
  j->code_out = code;
}

/* The box behind the client certificate: 403 unless enrolled and live. */
static int job_box(struct job *j, struct mg_t_box *b) {
  int rc = mg_t_db_box(j->pool, j->serial, b, &j->err);
  if (rc == -EACCES)
    fail(j, 403, "revoked");
  else if (rc == -ENOENT)
    fail(j, 403, "unknown_box");
  else if (rc)
    fail(j, 503, "db_unavailable");
  return rc;
}

static void work_records(struct job *j) {
  struct mg_t_batch b;
  struct mg_t_box box;
  EVP_PKEY *bs = NULL;
  char *results = NULL;
  int replayed = 0, rc;
  if ((rc = mg_t_batch_parse(j->body, j->len, &b, &j->err))) {
    fail(j, rc == -ENOMEM ? 503 : 400, rc == -ENOMEM ? "out_of_memory" : "bad_request");
    return;
  }
  if (job_box(j, &box))
    goto out;
  if (mg_env_pub_from_b64(box.sign_key, MG_ENV_ED25519, &bs, &j->err)) {
    fail(j, 500, "internal");
    goto out;
  }
  mg_t_batch_open(&b, j->T->recv, bs, mg_t_pool_city(j->pool), box.box);
  rc = mg_t_db_store(j->pool, &b, box.box, j->serial, &results, &replayed, &j->err);
  if (rc == -EEXIST) {
    fail(j, 409, "batch_conflict");
    goto out;
  }
  if (rc) {
    fail(j, 503, "db_unavailable");
    goto out;
  }
  struct mg_buf buf;
  struct mg_jw w;
  mg_buf_init(&buf);
  mg_jw_init(&w, &buf);
  mg_jw_obj(&w);
  mg_jw_kstr(&w, "batch", b.id);
  if (replayed)
    mg_jw_kbool(&w, "replayed", 1);
  mg_jw_kraw(&w, "results", results);
  mg_jw_obj_end(&w);
  j->answer = mg_buf_steal(&buf);
  j->status = 200;
  if (replayed) {
    mg_log_info("tenant", "city %s box %s batch %s: replayed (%zu records)",
                mg_t_pool_city(j->pool), box.box, b.id, b.n);
    goto out;
  }
  size_t counts[5] = {0};
  for (size_t i = 0; i < b.n; i++)
    counts[b.r[i].status < 5 ? b.r[i].status : 0]++;
  mg_log_info("tenant",
              "city %s box %s batch %s: %zu records, %zu stored, %zu duplicate, "
              "%zu stale, %zu rejected",
              mg_t_pool_city(j->pool), box.box, b.id, b.n, counts[MG_T_STORED],
              counts[MG_T_DUPLICATE], counts[MG_T_STALE], counts[MG_T_REJECTED]);
out:
  free(results);
  EVP_PKEY_free(bs);
  mg_t_batch_free(&b);
}

static void work_fetch(struct job *j) {
  struct mg_t_box box;
  EVP_PKEY *br = NULL;
  unsigned char *plain = NULL, *env = NULL;
  size_t plen = 0, elen = 0;
  char id[33], origin[72], ctx[256], *b64 = NULL;
  int64_t version = 0;
  if (job_box(j, &box))
    goto out;
  int rc = mg_t_db_case(j->pool, j->number[0] ? j->number : NULL,
                        j->number[0] ? NULL : j->token, &plain, &plen, id,
                        &version, origin, &j->err);
  if (rc == -ENOENT) {
    fail(j, 404, "not_found");
    goto out;
  }
  if (rc) {
    fail(j, 503, "db_unavailable");
    goto out;
  }
  snprintf(ctx, sizeof(ctx), "madoguchi/t1 case-fetch %s v%lld city %s box %s",
           id, (long long)version, mg_t_pool_city(j->pool), box.box);
  if (mg_env_pub_from_b64(box.recv_key, MG_ENV_X25519, &br, &j->err) ||
      mg_env_seal(br, j->T->sign, ctx, plain, plen, &env, &elen, &j->err) ||
      mg_env_b64(env, elen, &b64)) {
    fail(j, 500, "internal");
    goto out;
  }
  struct mg_buf buf;
  struct mg_jw w;
  mg_buf_init(&buf);
  mg_jw_init(&w, &buf);
  mg_jw_obj(&w);
  mg_jw_kstr(&w, "id", id);
  mg_jw_kint(&w, "version", version);
  mg_jw_kstr(&w, "origin_box", origin);
  mg_jw_kstr(&w, "seal", b64);
  mg_jw_obj_end(&w);
  j->answer = mg_buf_steal(&buf);
  j->status = 200;
  mg_log_info("tenant", "city %s box %s fetched case %s v%lld (from %s)",
              mg_t_pool_city(j->pool), box.box, id, (long long)version, origin);
out:
  if (plain) {
    OPENSSL_cleanse(plain, plen);
    free(plain);
  }
  free(env);
  free(b64);
  EVP_PKEY_free(br);
}

static void work_enroll(struct job *j) {
  char *pem = NULL, serial[80];
  struct mg_t_limits lim = {(int)j->T->cfg.enroll_attempts,
                            j->T->cfg.enroll_lock / 1000};
  int rc = mg_t_db_enroll(j->pool, &j->T->ca, j->box, j->code, j->box_sign,
                          j->sign_b64, j->recv_b64, &lim, &pem, serial,
                          &j->retry_after, &j->err);
  if (rc == -EACCES) {
    fail(j, 403, "bad_code");
    mg_log_notice("tenant", "city %s: wrong enrolment code for box %s",
                  mg_t_pool_city(j->pool), j->box);
    return;
  }
  if (rc == -EBUSY) {
    fail(j, 429, "too_many_attempts");
    mg_log_warn("tenant", "city %s: box %s is locked for wrong codes (%lld s left)",
                mg_t_pool_city(j->pool), j->box, (long long)j->retry_after);
    return;
  }
  if (rc == -EEXIST) {
    fail(j, 409, "already_enrolled");
    return;
  }
  if (rc) {
    fail(j, 503, "db_unavailable");
    return;
  }
  struct mg_buf buf;
  struct mg_jw w;
  mg_buf_init(&buf);
  mg_jw_init(&w, &buf);
  mg_jw_obj(&w);
  mg_jw_kstr(&w, "certificate", pem);
  mg_jw_kstr(&w, "serial", serial);
  mg_jw_kstr(&w, "city", mg_t_pool_city(j->pool));
  mg_jw_kstr(&w, "box", j->box);
  mg_jw_kstr(&w, "tenant_recv", j->T->recv_b64);
  mg_jw_kstr(&w, "tenant_sign", j->T->sign_b64);
  mg_jw_obj_end(&w);
  j->answer = mg_buf_steal(&buf);
  j->status = 201;
  mg_log_notice("tenant", "city %s: box %s enrolled, certificate %s",
                mg_t_pool_city(j->pool), j->box, serial);
  free(pem);
}

static void on_work(uv_work_t *w) {
  struct job *j = w->data;
  if (j->kind == JOB_RECORDS)
    work_records(j);
  else if (j->kind == JOB_FETCH)
    work_fetch(j);
  else if (j->kind == JOB_PURGE)
    j->status = mg_t_db_purge(j->pool, &j->purge, &j->err);
  else
    work_enroll(j);
}

/* One line for the log and the purge command (counts only, D1). */
static void purge_line(const char *city, const struct mg_t_purge *pu, char *out,
                       size_t len) {
  char ret[32];
  mg_t_retention_fmt(pu->retention, ret);
  snprintf(out, len,
           "city %s: retention %s, before %s: deleted %lld applications, %lld "
           "case snapshots, %lld batches, %lld enrolment codes",
           city, ret, pu->cutoff, pu->applications, pu->cases, pu->batches,
           pu->codes);
}

static void on_done(uv_work_t *w, int status) {
  struct job *j = w->data;
  (void)status;
  if (j->kind == JOB_PURGE) {
    char line[400];
    j->city->purging = 0;
    if (j->status) {
      mg_log_warn("tenant", "city %s: purge failed: %s", mg_t_pool_city(j->pool),
                  j->err.msg);
    } else if (j->purge.applications || j->purge.cases || j->purge.batches ||
               j->purge.codes) {
      purge_line(mg_t_pool_city(j->pool), &j->purge, line, sizeof(line));
      mg_log_notice("tenant", "%s", line);
    }
    job_free(j);
    return;
  }
  if (j->status == 429 && j->retry_after > 0) {
    char ra[24];
    snprintf(ra, sizeof(ra), "%lld", (long long)j->retry_after);
    mg_http_set_header(j->t, "retry-after:", ra);
  }
  if (j->answer)
    mg_http_reply_json(j->t, j->status, j->answer);
  else
    mg_http_reply_error(j->t, j->status ? j->status : 500,
                        j->code_out ? j->code_out : "internal",
                        j->err.msg[0] ? j->err.msg : "internal error");
  if (!j->answer && j->status >= 500)
    mg_log_warn("tenant", "%s", j->err.msg);
  job_free(j);
}

static void queue(struct job *j) {
  j->w.data = j;
  if (uv_queue_work(j->T->loop, &j->w, on_work, on_done)) {
    mg_http_reply_error(j->t, 503, "busy", "cannot queue the request");
    job_free(j);
  }
}

/* A job for a request that needs a box certificate; NULL when answered. */
static struct job *cert_job(struct tenant *T, struct mg_http_txn *t, int kind) {
  struct mg_http_peer peer;
  struct job *j;
  if (mg_http_peer_cert(t, &peer)) {
    mg_http_reply_error(t, 401, "client_certificate_required",
                        "this path needs the box's client certificate");
    return NULL;
  }
  struct mg_t_pool *pool = find_pool(T, peer.o);
  if (!pool) {
    mg_http_reply_error(t, 403, "unknown_box",
                        "the certificate names a city this tenant does not serve");
    return NULL;
  }
  if (!(j = calloc(1, sizeof(*j)))) {
    mg_http_reply_error(t, 503, "out_of_memory", "out of memory");
    return NULL;
  }
  j->T = T;
  j->t = t;
  j->kind = kind;
  j->pool = pool;
  snprintf(j->serial, sizeof(j->serial), "%s", peer.serial);
  return j;
}

static void h_health(void *ud, struct mg_http_txn *t, const struct mg_http_req *req) {
  (void)ud;
  (void)req;
  mg_http_reply_json(t, 200, "{\"status\":\"ok\",\"api\":\"" MG_T_API
                             "\",\"version\":\"" MG_VERSION "\"}");
}

static void h_records(void *ud, struct mg_http_txn *t, const struct mg_http_req *req) {
  struct job *j = cert_job(ud, t, JOB_RECORDS);
  if (!j)
    return;
  if (!(j->body = malloc(req->body_len + 1))) {
    mg_http_reply_error(t, 503, "out_of_memory", "out of memory");
    job_free(j);
    return;
  }
  memcpy(j->body, req->body, req->body_len);
  j->body[req->body_len] = '\0';
  j->len = req->body_len;
  queue(j);
}

static struct mg_json *parse_small(struct mg_http_txn *t, const struct mg_http_req *req) {
  struct mg_json *root = NULL;
  struct mg_json_error je;
  struct mg_json_limits lim = {4, 65536};
  char m[256];
  if (mg_json_parse(req->body, req->body_len, &lim, &root, &je) ||
      root->type != MG_JSON_OBJECT) {
    snprintf(m, sizeof(m), "body: %s", root ? "must be a JSON object" : je.msg);
    mg_http_reply_error(t, 400, "bad_request", m);
    mg_json_free(root);
    return NULL;
  }
  return root;
}

static void h_fetch(void *ud, struct mg_http_txn *t, const struct mg_http_req *req) {
  struct mg_json *root = parse_small(t, req);
  if (!root)
    return;
  const char *num = mg_json_get_str(root, "number");
  const char *tok = mg_json_get_str(root, "token_sha256");
  int ok_num = num && strlen(num) >= 1 && strlen(num) < 32 &&
               strspn(num, "0123456789") == strlen(num);
  int ok_tok = tok && strlen(tok) == 64 &&
               strspn(tok, "0123456789abcdef") == 64;
  if ((num && tok) || (!ok_num && !ok_tok) || root->u.obj.n != 1) {
    mg_http_reply_error(t, 400, "bad_request",
                        "body: exactly one of number (digits) or token_sha256 "
                        "(64 lower-case hex)");
    mg_json_free(root);
    return;
  }
  struct job *j = cert_job(ud, t, JOB_FETCH);
  if (j) {
    snprintf(j->number, sizeof(j->number), "%s", ok_num ? num : "");
    snprintf(j->token, sizeof(j->token), "%s", ok_num ? "" : tok);
    queue(j);
  }
  mg_json_free(root);
}

static void h_enroll(void *ud, struct mg_http_txn *t, const struct mg_http_req *req) {
  struct tenant *T = ud;
  struct mg_json *root = parse_small(t, req);
  struct job *j = NULL;
  EVP_PKEY *recv = NULL;
  EVP_MD_CTX *mc = NULL;
  unsigned char *pop = NULL;
  size_t pop_len = 0;
  char m[640], msg[300];
  struct mg_err err;
  if (!root)
    return;
  const char *city = mg_json_get_str(root, "city"), *box = mg_json_get_str(root, "box"),
             *code = mg_json_get_str(root, "code"),
             *sk = mg_json_get_str(root, "sign_key"),
             *rk = mg_json_get_str(root, "recv_key"), *pb = mg_json_get_str(root, "pop");
  const char *bad = !mg_t_is_city(city) ? "city: must be a 6-digit city code"
                    : !mg_t_is_box(box) ? "box: must match [a-z0-9][a-z0-9-]{0,62}"
                    : !code || !*code || strlen(code) >= 64
                        ? "code: must be the one-time code (under 64 characters)"
                    : !sk ? "sign_key: required (base64 Ed25519 public key)"
                    : !rk ? "recv_key: required (base64 X25519 public key)"
                    : !pb ? "pop: required (base64 Ed25519 signature)"
                          : NULL;
  if (bad) {
    mg_http_reply_error(t, 400, "bad_request", bad);
    goto out;
  }
  if (!find_pool(T, city)) {
    snprintf(m, sizeof(m), "city: %s is not served by this tenant (init-city)", city);
    mg_http_reply_error(t, 400, "bad_request", m);
    goto out;
  }
  if (!(j = calloc(1, sizeof(*j)))) {
    mg_http_reply_error(t, 503, "out_of_memory", "out of memory");
    goto out;
  }
  if (mg_env_pub_from_b64(sk, MG_ENV_ED25519, &j->box_sign, &err) ||
      mg_env_pub_from_b64(rk, MG_ENV_X25519, &recv, &err)) {
    snprintf(m, sizeof(m), "%s: %s", j->box_sign ? "recv_key" : "sign_key", err.msg);
    mg_http_reply_error(t, 400, "bad_request", m);
    goto out;
  }
  if (mg_env_unb64(pb, strlen(pb), &pop, &pop_len, &err) || pop_len != 64) {
    snprintf(m, sizeof(m), "pop: %s", pop_len != 64 && !pop ? err.msg : "must be a 64-byte Ed25519 signature");
    mg_http_reply_error(t, 400, "bad_request", m);
    goto out;
  }
  /* proof of possession of the box's sign key */
  int n = snprintf(msg, sizeof(msg), "madoguchi/t1 enroll %s %s %s", city, box, code);
  if (!(mc = EVP_MD_CTX_new()) ||
      EVP_DigestVerifyInit(mc, NULL, NULL, NULL, j->box_sign) != 1 ||
      EVP_DigestVerify(mc, pop, 64, (unsigned char *)msg, (size_t)n) != 1) {
    mg_http_reply_error(t, 400, "bad_request",
                        "pop: not a signature by sign_key over \"madoguchi/t1 "
                        "enroll <city> <box> <code>\"");
    goto out;
  }
  j->T = T;
  j->t = t;
  j->kind = JOB_ENROLL;
  j->pool = find_pool(T, city);
  snprintf(j->box, sizeof(j->box), "%s", box);
  snprintf(j->code, sizeof(j->code), "%s", code);
  snprintf(j->sign_b64, sizeof(j->sign_b64), "%s", sk);
  snprintf(j->recv_b64, sizeof(j->recv_b64), "%s", rk);
  queue(j);
  j = NULL;
out:
  OPENSSL_cleanse(msg, sizeof(msg));
  if (j)
    job_free(j);
  EVP_MD_CTX_free(mc);
  EVP_PKEY_free(recv);
  free(pop);
  mg_json_free(root);
}

static void close_sigs(void *ud) {
  struct tenant *T = ud;
  uv_close((uv_handle_t *)&T->sigterm, NULL);
  uv_close((uv_handle_t *)&T->sigint, NULL);
  uv_close((uv_handle_t *)&T->purge_timer, NULL);
}

/* D1: every purge_interval, each city's purge on a worker through its own
 * pool; a city whose last purge still runs is skipped this time. */
static void on_purge_timer(uv_timer_t *tm) {
  struct tenant *T = tm->data;
  for (size_t i = 0; i < T->n_cities; i++) {
    struct city *c = &T->cities[i];
    struct job *j;
    if (c->purging || !(j = calloc(1, sizeof(*j))))
      continue;
    j->T = T;
    j->kind = JOB_PURGE;
    j->pool = c->pool;
    j->city = c;
    j->w.data = j;
    c->purging = 1;
    if (uv_queue_work(T->loop, &j->w, on_work, on_done)) {
      c->purging = 0;
      job_free(j);
    }
  }
}

static void on_signal(uv_signal_t *s, int signum) {
  struct tenant *T = s->data;
  mg_log_notice("tenant", "signal %d: stopping", signum);
  uv_signal_stop(&T->sigterm);
  uv_signal_stop(&T->sigint);
  uv_timer_stop(&T->purge_timer);
  mg_http_stop(T->http, close_sigs, T);
}

/* A pool for every city init-city made (state_dir/cities/<code>.secret),
 * or only for `only` when not NULL. */
static int load_cities(struct tenant *T, const char *only, int pool_size,
                       struct mg_err *err) {
  char dir[PATH_MAX];
  snprintf(dir, sizeof(dir), "%s/cities", T->cfg.state_dir);
  DIR *d = opendir(dir);
  struct dirent *e;
  int rc = 0;
  if (!d)
    return mg_err_set(err, -ENOENT, "%s: no cities (run init-city)", dir);
  while ((e = readdir(d))) {
    char code[16];
    size_t n = strlen(e->d_name);
    if (n != 13 || strcmp(e->d_name + 6, ".secret"))
      continue;
    memcpy(code, e->d_name, 6);
    code[6] = '\0';
    if (!mg_t_is_city(code) || (only && strcmp(only, code)))
      continue;
    struct city *nc = realloc(T->cities, (T->n_cities + 1) * sizeof(*nc));
    if (!nc) {
      rc = mg_err_set(err, -ENOMEM, "out of memory");
      break;
    }
    T->cities = nc;
    nc[T->n_cities].purging = 0;
    if ((rc = mg_t_pool_open(T->cfg.pg, T->cfg.state_dir, code, pool_size,
                             &nc[T->n_cities].pool, err)))
      break;
    T->n_cities++;
  }
  closedir(d);
  if (!rc && T->n_cities == 0)
    rc = only ? mg_err_set(err, -ENOENT, "%s: no city %s (run init-city --city %s)",
                           dir, only, only)
              : mg_err_set(err, -ENOENT, "%s: no cities (run init-city)", dir);
  return rc;
}

static int serve(struct tenant *T, struct mg_err *err) {
  char p[PATH_MAX], cert[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];
  struct mg_config hc;
  int rc;
  snprintf(p, sizeof(p), "%s/tenant_recv.pem", T->cfg.state_dir);
  if ((rc = mg_env_key_load(p, MG_ENV_X25519, &T->recv, err)))
    return rc;
  snprintf(p, sizeof(p), "%s/tenant_sign.pem", T->cfg.state_dir);
  if ((rc = mg_env_key_load(p, MG_ENV_ED25519, &T->sign, err)) ||
      (rc = mg_t_ca_load(T->cfg.state_dir, &T->ca, err)) ||
      (rc = load_cities(T, NULL, (int)T->cfg.pool, err)))
    return rc;
  for (size_t i = 0; i < T->n_cities; i++) {
    const char *code = mg_t_pool_city(T->cities[i].pool);
    mg_log_notice("tenant", "city %s: pool of %lld connections as mg_city_%s",
                  code, (long long)T->cfg.pool, code);
  }
  mg_env_pub_b64(T->recv, T->recv_b64);
  mg_env_pub_b64(T->sign, T->sign_b64);

  snprintf(cert, sizeof(cert), "%s/server.pem", T->cfg.state_dir);
  snprintf(key, sizeof(key), "%s/server.key", T->cfg.state_dir);
  snprintf(ca, sizeof(ca), "%s/ca.pem", T->cfg.state_dir);
  memset(&hc, 0, sizeof(hc));
  hc.listen = T->cfg.listen;
  hc.max_body = T->cfg.max_body;
  hc.request_timeout = T->cfg.request_timeout;
  hc.idle_timeout = 120000;
  hc.max_connections = 1024;
  hc.drain_timeout = T->cfg.drain_timeout;
  hc.static_max_age = 0;
  hc.cert = cert;
  hc.key = key;
  hc.tls_min = 0;
  hc.web_dir = "/nonexistent"; /* no static files: everything else is 404 */
  static const char *const prefixes[] = {"/t1/records", "/t1/cases/", NULL};
  struct mg_http_mtls mtls = {ca, prefixes};
  if ((rc = mg_http_start_mtls(T->loop, &hc, &mtls, &T->http, err)))
    return rc;
  mg_http_route(T->http, "GET", "/t1/health", h_health, T);
  mg_http_route(T->http, "POST", "/t1/enroll", h_enroll, T);
  mg_http_route(T->http, "POST", "/t1/records", h_records, T);
  mg_http_route(T->http, "POST", "/t1/cases/fetch", h_fetch, T);
  uv_signal_init(T->loop, &T->sigterm);
  uv_signal_init(T->loop, &T->sigint);
  T->sigterm.data = T->sigint.data = T;
  uv_signal_start(&T->sigterm, on_signal, SIGTERM);
  uv_signal_start(&T->sigint, on_signal, SIGINT);
  uv_timer_init(T->loop, &T->purge_timer);
  T->purge_timer.data = T;
  uv_timer_start(&T->purge_timer, on_purge_timer, 0, (uint64_t)T->cfg.purge_interval);
  /* the port for scripts (listen port 0) */
  printf("listening %d\n", mg_http_port(T->http));
  fflush(stdout);
  uv_run(T->loop, UV_RUN_DEFAULT);
  mg_http_free(T->http);
  T->http = NULL;
  return 0;
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f) {
  fputs("usage: madoguchi-tenantd --config FILE COMMAND\n"
        "  serve                              run the tenant API (docs/tenant-api.md)\n"
        "  init-ca                            make the CA, server certificate and tenant keys\n"
        "  init-city --city CODE [--retention 30d]\n"
        "                                     schema city_CODE and role mg_city_CODE;\n"
        "                                     a new city keeps data 30d unless told\n"
        "  set-retention --city CODE --retention N(s|m|h|d|w)\n"
        "                                     how long the city keeps data (D1)\n"
        "  purge [--city CODE]                delete what is older than the retention now\n"
        "  enroll-code --city CODE --box BOX  print a one-time enrolment code (24 h)\n"
        "  enroll-codes --city CODE           list pending codes (box, created, expires)\n"
        "  expire-code --city CODE --box BOX  void the box's pending codes\n"
        "  revoke --city CODE --box BOX       revoke the box's certificate\n",
        f);
}

int main(int argc, char **argv) {
  const char *conf = NULL, *cmd = NULL, *city = NULL, *box = NULL,
             *retention = NULL;
  int64_t ret_s = 0;
  struct tenant T;
  struct mg_err err = {{0}};
  int rc = 0;

  memset(&T, 0, sizeof(T));
  mg_log_init();
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--config") && i + 1 < argc)
      conf = argv[++i];
    else if (!strcmp(a, "--city") && i + 1 < argc)
      city = argv[++i];
    else if (!strcmp(a, "--box") && i + 1 < argc)
      box = argv[++i];
    else if (!strcmp(a, "--retention") && i + 1 < argc)
      retention = argv[++i];
    else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else if (a[0] != '-' && !cmd)
      cmd = a;
    else {
      fprintf(stderr, "madoguchi-tenantd: unexpected argument %s\n", a);
      usage(stderr);
      return 2;
    }
  }
  if (!conf || !cmd) {
    usage(stderr);
    return 2;
  }
  if ((rc = load_config(conf, &T.cfg, &err)))
    goto out;
  mg_log_set_level(T.cfg.log_level + MG_LOG_ERR);
  /* what each command needs: the admin conninfo, --city, --box */
  int needs_admin = !strcmp(cmd, "init-city") || !strcmp(cmd, "enroll-code") ||
                    !strcmp(cmd, "revoke") || !strcmp(cmd, "enroll-codes") ||
                    !strcmp(cmd, "expire-code");
  int needs_box = !strcmp(cmd, "enroll-code") || !strcmp(cmd, "revoke") ||
                  !strcmp(cmd, "expire-code");
  int needs_city = needs_admin || !strcmp(cmd, "set-retention");
  if (needs_admin && !T.cfg.pg_admin[0]) {
    rc = mg_err_set(&err, -EINVAL, "%s: [tenant] pg_admin is needed for %s", conf, cmd);
    goto out;
  }
  if ((needs_city && !city) || (needs_box && !box)) {
    rc = mg_err_set(&err, -EINVAL, "%s needs --city%s", cmd,
                    needs_box ? " and --box" : "");
    goto out;
  }
  if (!strcmp(cmd, "set-retention") && !retention) {
    rc = mg_err_set(&err, -EINVAL, "set-retention needs --retention (e.g. 30d)");
    goto out;
  }
  if (retention && strcmp(cmd, "init-city") && strcmp(cmd, "set-retention")) {
    rc = mg_err_set(&err, -EINVAL, "--retention belongs to init-city or set-retention");
    goto out;
  }
  if (retention && (rc = mg_t_retention_parse(retention, &ret_s, &err)))
    goto out;
  if (!strcmp(cmd, "serve")) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    T.loop = &loop;
    signal(SIGPIPE, SIG_IGN);
    rc = serve(&T, &err);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  } else if (!strcmp(cmd, "init-ca")) {
    if (!(rc = mg_t_ca_init(T.cfg.state_dir, T.cfg.names, &err)))
      printf("CA in %s/ca.pem\n", T.cfg.state_dir);
  } else if (!strcmp(cmd, "init-city")) {
    int64_t now_ret = 0;
    char rs[32];
    if (!(rc = mg_t_db_init_city(T.cfg.pg_admin, T.cfg.state_dir, city, ret_s,
                                 &now_ret, &err))) {
      mg_t_retention_fmt(now_ret, rs);
      printf("city %s: schema city_%s, role mg_city_%s, retention %s\n", city,
             city, city, rs);
    }
  } else if (!strcmp(cmd, "set-retention")) {
    int64_t old = 0;
    char os[32], ns[32];
    if (!(rc = load_cities(&T, city, 1, &err)) &&
        !(rc = mg_t_db_set_retention(T.cities[0].pool, ret_s, &old, &err))) {
      mg_t_retention_fmt(old, os);
      mg_t_retention_fmt(ret_s, ns);
      printf("city %s: retention %s (was %s); serve applies it at its next purge\n",
             city, ns, os);
    }
  } else if (!strcmp(cmd, "purge")) {
    /* as each city's own role, like serve (X3) */
    if (!(rc = load_cities(&T, city, 1, &err))) {
      for (size_t i = 0; i < T.n_cities; i++) {
        struct mg_t_purge pu;
        char line[400];
        int r1 = mg_t_db_purge(T.cities[i].pool, &pu, &err);
        if (r1) {
          fprintf(stderr, "madoguchi-tenantd: city %s: %s\n",
                  mg_t_pool_city(T.cities[i].pool), err.msg);
          rc = r1;
          continue;
        }
        purge_line(mg_t_pool_city(T.cities[i].pool), &pu, line, sizeof(line));
        printf("%s\n", line);
      }
      if (rc)
        mg_err_set(&err, rc, "purge failed for some cities (above)");
    }
  } else if (!strcmp(cmd, "enroll-codes")) {
    char *text = NULL;
    int n = 0;
    if (!(rc = mg_t_db_list_codes(T.cfg.pg_admin, city, &text, &n, &err)))
      fputs(text, stdout);
    free(text);
  } else if (!strcmp(cmd, "expire-code")) {
    int n = 0;
    if (!(rc = mg_t_db_expire_codes(T.cfg.pg_admin, city, box, &n, &err)))
      printf("voided %d pending code(s) of box %s in city %s\n", n, box, city);
  } else if (!strcmp(cmd, "enroll-code")) {
    char code[32];
    if (!(rc = mg_t_db_enroll_code(T.cfg.pg_admin, city, box, code, &err)))
      printf("%s\n", code);
    OPENSSL_cleanse(code, sizeof(code));
  } else if (!strcmp(cmd, "revoke")) {
    int n = 0;
    if (!(rc = mg_t_db_revoke(T.cfg.pg_admin, city, box, &n, &err)))
      printf("revoked %d certificate(s) of box %s in city %s\n", n, box, city);
  } else {
    rc = mg_err_set(&err, -EINVAL, "unknown command %s", cmd);
    usage(stderr);
  }
out:
  if (rc)
    fprintf(stderr, "madoguchi-tenantd: %s\n", err.msg);
  for (size_t i = 0; i < T.n_cities; i++)
    mg_t_pool_free(T.cities[i].pool);
  free(T.cities);
  EVP_PKEY_free(T.recv);
  EVP_PKEY_free(T.sign);
  mg_t_ca_free(&T.ca);
  mg_config_release(tenant_items, &T.cfg);
  return rc ? 1 : 0;
}
