/*
 * test_tenant_sync.c — the box's client of the tenant (sync/tenant_sync.h,
 * issue 8) against a real local HTTPS server with client certificates
 * (core/http.c's mutual TLS) playing the tenant: it opens every envelope
 * with the tenant's key and the box's public key, stores by id and answers
 * per record.  Shown: delivery with sealed records and case snapshots,
 * per-record results (stored / duplicate / rejected), a lost answer after
 * the tenant stored makes no duplicate, the full-jitter bounds, the
 * circuit opening and its single probe, pause persisted, the next batch
 * sealed while one flies (exactly once, in order, also when an answer is
 * lost).  Fictional data.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "crypto.h"
#include "envelope.h"
#include "http.h"
#include "log.h"
#include "outbox.h"
#include "store.h"
#include "tenant_sync.h"
#include "tls.h"

#define MAXREC 64

/* The tenant played by the test. */
struct srv {
  int mode; /* 0 answer, 1 fail 503, 2 store then lose the answer (502) */
  char reject_id[33];
  int requests;
  size_t n_in[64];    /* records per request */
  uint64_t at_ms[64]; /* when each request came */
  char ids[MAXREC][33];
  int64_t versions[MAXREC];
  size_t nstored;
  int no_cert, bad_open;
  char first_plain[256];
  EVP_PKEY *t_recv, *box_sign;
};

struct fx {
  char dir[64];
  uv_loop_t loop;
  uv_timer_t ticker;
  struct mg_config *cfg;
  struct mg_store *st;
  struct mg_key dk;
  struct mg_http *http;
  struct mg_sync *sync;
  struct srv srv;
};

static struct fx *F; /* for the exporter */

/* ---- certificates ---------------------------------------------------- */

static X509 *make_cert(EVP_PKEY *subj, const char *cn, EVP_PKEY *ikey,
                       X509 *issuer, int ca, long serial) {
  X509 *x = X509_new();
  X509V3_CTX c;
  assert_non_null(x);
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, subj);
  X509_NAME *n = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn,
                             -1, -1, 0);
  X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
  X509V3_set_ctx(&c, issuer ? issuer : x, x, NULL, NULL, 0);
  X509_EXTENSION *e = X509V3_EXT_conf_nid(
      NULL, &c, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
  X509_add_ext(x, e, -1);
  X509_EXTENSION_free(e);
  assert_true(X509_sign(x, ikey, NULL) > 0);
  return x;
}

static void write_cert(const char *path, X509 *x) {
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  assert_int_equal(PEM_write_X509(fp, x), 1);
  fclose(fp);
}

static void write_text(const char *path, const char *text) {
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs(text, fp);
  fclose(fp);
  chmod(path, 0600);
}

/* ---- the tenant ------------------------------------------------------ */

static void on_records(void *ud, struct mg_http_txn *t,
                       const struct mg_http_req *req) {
  struct fx *f = ud;
  struct srv *s = &f->srv;
  struct mg_http_peer peer;
  struct mg_json *doc = NULL;
  struct mg_buf b;
  struct mg_jw w;
  if (mg_http_peer_cert(t, &peer) != 0)
    s->no_cert++;
  if (s->requests < 64) {
    s->at_ms[s->requests] = uv_now(&f->loop);
  }
  assert_int_equal(mg_json_parse(req->body, req->body_len, NULL, &doc, NULL),
                   0);
  const struct mg_json *recs = mg_json_get(doc, "records");
  assert_non_null(recs);
  if (s->requests < 64)
    s->n_in[s->requests] = recs->u.arr.n;
  s->requests++;
  if (s->mode == 1) {
    mg_http_reply_error(t, 503, "unavailable", "the tenant is down");
    mg_json_free(doc);
    return;
  }
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  mg_jw_obj(&w);
  mg_jw_kstr(&w, "batch", mg_json_get_str(doc, "batch"));
  mg_jw_key(&w, "results");
  mg_jw_arr(&w);
  for (size_t i = 0; i < recs->u.arr.n; i++) {
    const struct mg_json *r = recs->u.arr.items[i];
    const char *id = mg_json_get_str(r, "id"), *kind = mg_json_get_str(r, "kind");
    const char *seal = mg_json_get_str(r, "seal");
    int64_t ver = 0;
    unsigned char *env = NULL, *plain = NULL;
    size_t elen = 0, plen = 0;
    char ctx[200];
    struct mg_err err = {{0}};
    mg_json_get_int(r, "version", &ver);
    if (strcmp(kind, "case") == 0)
      snprintf(ctx, sizeof(ctx), "madoguchi/t1 case %s v%lld city 352152 "
               "box shunan-1f", id, (long long)ver);
    else
      snprintf(ctx, sizeof(ctx), "madoguchi/t1 application %s city 352152 "
               "box shunan-1f", id);
    mg_jw_obj(&w);
    mg_jw_kstr(&w, "id", id);
    if (mg_env_unb64(seal, strlen(seal), &env, &elen, &err) ||
        mg_env_open(s->t_recv, s->box_sign, ctx, env, elen, &plain, &plen,
                    &err)) {
      s->bad_open++;
      mg_jw_kstr(&w, "status", "rejected");
      mg_jw_kstr(&w, "code", "bad_seal");
      mg_jw_kstr(&w, "message", "the envelope does not open");
    } else if (strcmp(id, s->reject_id) == 0) {
      mg_jw_kstr(&w, "status", "rejected");
      mg_jw_kstr(&w, "code", "bad_record");
      mg_jw_kstr(&w, "message", "form: unknown form");
    } else {
      size_t k = 0;
      while (k < s->nstored && strcmp(s->ids[k], id) != 0)
        k++;
      if (k < s->nstored) {
        mg_jw_kstr(&w, "status", "duplicate");
      } else {
        assert_true(s->nstored < MAXREC);
        snprintf(s->ids[s->nstored], 33, "%s", id);
        s->versions[s->nstored++] = ver;
        if (!s->first_plain[0])
          snprintf(s->first_plain, sizeof(s->first_plain), "%s", plain);
        mg_jw_kstr(&w, "status", "stored");
      }
    }
    mg_jw_obj_end(&w);
    free(env);
    free(plain);
  }
  mg_jw_arr_end(&w);
  mg_jw_obj_end(&w);
  if (s->mode == 2) { /* stored, but the answer is lost on the way */
    s->mode = 0;
    mg_http_reply_error(t, 502, "bad_gateway", "the proxy lost the answer");
  } else {
    mg_http_reply_json(t, 200, b.data);
  }
  mg_buf_free(&b);
  mg_json_free(doc);
}

/* ---- fixture --------------------------------------------------------- */

static int exporter(void *ud, const char *case_id, int64_t version,
                    unsigned char **json, size_t *len) {
  char buf[160];
  (void)ud;
  if (strcmp(case_id, "dddddddddddddddddddddddddddddddd") == 0)
    return -ENOENT; /* purged meanwhile */
  snprintf(buf, sizeof(buf), "{\"format\":\"madoguchi/case-1\",\"id\":\"%s\","
           "\"version\":%lld}", case_id, (long long)version);
  *json = (unsigned char *)strdup(buf);
  *len = strlen(buf);
  return 0;
}

static void tick(uv_timer_t *t) { (void)t; }

static int fx_setup(void **state) {
  struct fx *f = calloc(1, sizeof(*f));
  struct mg_err err = {{0}};
  char text[2048], path[256], cert[128], key[128], ca[128];
  EVP_PKEY *cakey = NULL, *srvkey = NULL;
  assert_non_null(f);
  snprintf(f->dir, sizeof(f->dir), "/tmp/mg-test-sync-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(cert, sizeof(cert), "%s/tls/cert.pem", f->dir);
  snprintf(key, sizeof(key), "%s/tls/key.pem", f->dir);
  snprintf(ca, sizeof(ca), "%s/boxca.pem", f->dir);
  snprintf(text, sizeof(text),
           "[daemon]\nstate_dir = %s\nweb_dir = %s\n[http]\nlisten = "
           "127.0.0.1:0\ndrain_timeout = 0\n[sync]\nca_file = %s\n"
           "backoff_min = 100ms\nbackoff_max = 1s\ncircuit_after = 3\n"
           "circuit_open = 1500ms\ninterval = 100ms\ntimeout = 5s\n",
           f->dir, f->dir, cert);
  assert_int_equal(mg_config_parse(text, strlen(text), "t.conf", &f->cfg, &err),
                   0);
  assert_int_equal(mg_tls_ensure(cert, key, "127.0.0.1", NULL, 0, &err), 0);
  snprintf(path, sizeof(path), "%s/madoguchi.db", f->dir);
  assert_int_equal(mg_store_open(path, &f->st, &err), 0);
  memset(f->dk.k, 7, sizeof(f->dk.k));

  /* the tenant's keys and the box's, and the box's certificate from a CA
   * the server trusts for client certificates */
  snprintf(path, sizeof(path), "%s/tenant/recv.pem", f->dir);
  assert_int_equal(mg_env_key_load(path, MG_ENV_X25519, &f->srv.t_recv, &err),
                   0);
  EVP_PKEY *tsign = NULL;
  snprintf(path, sizeof(path), "%s/tenant/sign.pem", f->dir);
  assert_int_equal(mg_env_key_load(path, MG_ENV_ED25519, &tsign, &err), 0);
  snprintf(path, sizeof(path), "%s/sync/box_sign.pem", f->dir);
  assert_int_equal(mg_env_key_load(path, MG_ENV_ED25519, &f->srv.box_sign,
                                   &err),
                   0);
  snprintf(path, sizeof(path), "%s/tenant/ca.pem", f->dir);
  assert_int_equal(mg_env_key_load(path, MG_ENV_ED25519, &cakey, &err), 0);
  X509 *cax = make_cert(cakey, "test tenant CA", cakey, NULL, 1, 1);
  X509 *boxx = make_cert(f->srv.box_sign, "shunan-1f", cakey, cax, 0, 0x1f2e);
  write_cert(ca, cax);
  snprintf(path, sizeof(path), "%s/sync/client.crt", f->dir);
  write_cert(path, boxx);
  X509_free(cax);
  X509_free(boxx);
  EVP_PKEY_free(cakey);
  EVP_PKEY_free(srvkey);
  char rb[MG_ENV_KEY_B64], sb[MG_ENV_KEY_B64];
  assert_int_equal(mg_env_pub_b64(f->srv.t_recv, rb), 0);
  assert_int_equal(mg_env_pub_b64(tsign, sb), 0);
  EVP_PKEY_free(tsign);
  snprintf(text, sizeof(text),
           "{\"url\":\"https://127.0.0.1\",\"city\":\"352152\",\"box\":"
           "\"shunan-1f\",\"serial\":\"1f2e\",\"tenant_recv\":\"%s\","
           "\"tenant_sign\":\"%s\"}\n", rb, sb);
  snprintf(path, sizeof(path), "%s/sync/tenant.json", f->dir);
  write_text(path, text);

  assert_int_equal(uv_loop_init(&f->loop), 0);
  const char *const prefixes[] = {"/t1/records", NULL};
  struct mg_http_mtls m = {ca, prefixes};
  assert_int_equal(mg_http_start_mtls(&f->loop, f->cfg, &m, &f->http, &err), 0);
  assert_int_equal(mg_http_route(f->http, "POST", "/t1/records", on_records, f),
                   0);
  free(f->cfg->sync_url);
  assert_true(asprintf(&f->cfg->sync_url, "https://127.0.0.1:%d",
                       mg_http_port(f->http)) > 0);
  uv_timer_init(&f->loop, &f->ticker);
  uv_timer_start(&f->ticker, tick, 20, 20);
  F = f;
  *state = f;
  return 0;
}

static void start_sync(struct fx *f) {
  struct mg_err err = {{0}};
  assert_int_equal(mg_sync_start(&f->loop, f->cfg, f->st, &f->dk, &f->sync,
                                 &err),
                   0);
  mg_sync_set_case_exporter(f->sync, exporter, NULL);
}

static int fx_teardown(void **state) {
  struct fx *f = *state;
  char cmd[128];
  mg_sync_stop(f->sync);
  mg_http_stop(f->http, NULL, NULL);
  uv_close((uv_handle_t *)&f->ticker, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  mg_http_free(f->http);
  mg_sync_free(f->sync);
  mg_store_close(f->st);
  mg_config_free(f->cfg);
  EVP_PKEY_free(f->srv.t_recv);
  EVP_PKEY_free(f->srv.box_sign);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

/* Run the loop until cond holds or ms pass; the ticker wakes it. */
static int run_until(struct fx *f, int (*cond)(struct fx *), uint64_t ms) {
  uv_update_time(&f->loop);
  uint64_t end = uv_now(&f->loop) + ms;
  while (!cond(f) && uv_now(&f->loop) < end)
    uv_run(&f->loop, UV_RUN_ONCE);
  return cond(f);
}

static int64_t q_int(struct fx *f, const char *sql) {
  sqlite3_stmt *s = NULL;
  int64_t v = -1;
  assert_int_equal(sqlite3_prepare_v2(mg_store_db(f->st), sql, -1, &s, NULL),
                   SQLITE_OK);
  if (sqlite3_step(s) == SQLITE_ROW)
    v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  return v;
}

static int none_pending(struct fx *f) {
  return q_int(f, "SELECT count(*) FROM outbox WHERE acked_at IS NULL AND "
                  "rejected = 0") == 0;
}

static void put(struct fx *f, const char *id, const char *json) {
  assert_int_equal(mg_outbox_put_application(f->st, &f->dk, id, json,
                                             strlen(json)),
                   0);
}

static char *status(struct fx *f) {
  struct mg_buf b;
  struct mg_jw w;
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  assert_int_equal(mg_sync_status_json(f->sync, &w), 0);
  return mg_buf_steal(&b);
}

/* ---- tests ----------------------------------------------------------- */

static void test_backoff_bounds(void **state) {
  (void)state;
  /* full jitter: random(0, min(max, min * 2^failures)) */
  assert_true(mg__sync_backoff_ms(1000, 300000, 0, 0.0) == 0.0);
  assert_true(mg__sync_backoff_ms(1000, 300000, 0, 0.999) < 1000.0);
  assert_true(mg__sync_backoff_ms(1000, 300000, 0, 0.999) > 998.0);
  assert_true(mg__sync_backoff_ms(1000, 300000, 3, 0.5) == 4000.0);
  assert_true(mg__sync_backoff_ms(1000, 300000, 8, 0.999) < 256000.0);
  assert_true(mg__sync_backoff_ms(1000, 300000, 9, 0.999) < 300000.0);
  assert_true(mg__sync_backoff_ms(1000, 300000, 9, 0.999) > 299000.0);
  /* no overflow after very many failures */
  assert_true(mg__sync_backoff_ms(1000, 300000, 1000000, 0.5) == 150000.0);
}

static void test_delivery(void **state) {
  struct fx *f = *state;
  put(f, "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1",
      "{\"application\":\"a1a1\",\"values\":[{\"field\":\"name\","
      "\"value\":\"架空 花子\"}]}");
  put(f, "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2", "{\"application\":\"b2b2\"}");
  assert_int_equal(mg_outbox_case_changed(
                       f->st, "cccccccccccccccccccccccccccccccc", 4),
                   0);
  assert_int_equal(mg_outbox_case_changed(
                       f->st, "dddddddddddddddddddddddddddddddd", 2),
                   0);
  start_sync(f);
  mg_sync_kick(f->sync);
  assert_true(run_until(f, none_pending, 8000));
  assert_int_equal(f->srv.nstored, 3);
  assert_int_equal(f->srv.no_cert, 0);
  assert_int_equal(f->srv.bad_open, 0);
  assert_string_equal(f->srv.first_plain,
                      "{\"application\":\"a1a1\",\"values\":[{\"field\":"
                      "\"name\",\"value\":\"架空 花子\"}]}");
  assert_string_equal(f->srv.ids[2], "cccccccccccccccccccccccccccccccc");
  assert_int_equal(f->srv.versions[2], 4);
  /* the gone case's row was dropped; the rest acknowledged */
  assert_int_equal(q_int(f, "SELECT count(*) FROM outbox"), 3);
  assert_int_equal(q_int(f, "SELECT count(*) FROM outbox WHERE acked_at IS "
                            "NOT NULL"), 3);
  char *st = status(f);
  assert_non_null(strstr(st, "\"state\":\"idle\""));
  assert_non_null(strstr(st, "\"queue_depth\":0"));
  assert_non_null(strstr(st, "\"acked_total\":3"));
  assert_null(strstr(st, "\"last_success\":null"));
  assert_null(strstr(st, "花子")); /* no content in the status */
  free(st);
  /* a submission later is sent when kicked */
  put(f, "e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5", "{\"application\":\"e5\"}");
  mg_sync_kick(f->sync);
  assert_true(run_until(f, none_pending, 5000));
  assert_int_equal(f->srv.nstored, 4);
}

static void test_rejected_kept(void **state) {
  struct fx *f = *state;
  snprintf(f->srv.reject_id, 33, "%s", "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2");
  put(f, "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1", "{\"a\":1}");
  put(f, "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2", "{\"a\":2}");
  start_sync(f);
  mg_sync_kick(f->sync);
  assert_true(run_until(f, none_pending, 8000));
  assert_int_equal(f->srv.nstored, 1);
  assert_int_equal(q_int(f, "SELECT count(*) FROM outbox WHERE rejected = 1 "
                            "AND last_error = 'bad_record: form: unknown form'"),
                   1);
  int before = f->srv.requests;
  /* not resent: nothing is due, so no request at all */
  mg_sync_kick(f->sync);
  uv_update_time(&f->loop);
  uint64_t end = uv_now(&f->loop) + 400;
  while (uv_now(&f->loop) < end)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_int_equal(f->srv.requests, before);
  char *st = status(f);
  assert_non_null(strstr(st, "\"rejected\":1"));
  assert_non_null(strstr(st, "bad_record"));
  free(st);
}

static int all_acked(struct fx *f) {
  return q_int(f, "SELECT count(*) FROM outbox WHERE acked_at IS NULL") == 0;
}

static void test_lost_answer_no_duplicate(void **state) {
  struct fx *f = *state;
  f->srv.mode = 2; /* the first answer is lost after the tenant stored */
  put(f, "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1", "{\"a\":1}");
  put(f, "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2", "{\"a\":2}");
  start_sync(f);
  mg_sync_kick(f->sync);
  assert_true(run_until(f, all_acked, 10000));
  assert_true(f->srv.requests >= 2);
  assert_int_equal(f->srv.nstored, 2); /* each exactly once */
  assert_string_not_equal(f->srv.ids[0], f->srv.ids[1]);
  /* the retry was counted and backed off */
  assert_int_equal(q_int(f, "SELECT min(attempts) FROM outbox"), 1);
  char *st = status(f);
  assert_non_null(strstr(st, "bad_gateway"));
  free(st);
}

/* Batches of 2: the next batch is read (rows after the one in flight) and
 * sealed while one flies.  Seven applications arrive each exactly once, in
 * order, in four requests; with the first answer lost, the batch sealed
 * meanwhile is dropped and everything still arrives exactly once. */
static void pipeline_run(struct fx *f, int lose_first) {
  char id[33], json[40];
  f->cfg->sync_batch = 2;
  f->srv.mode = lose_first ? 2 : 0;
  for (int i = 0; i < 7; i++) {
    memset(id, 'a' + i, 32);
    id[32] = '\0';
    snprintf(json, sizeof(json), "{\"n\":%d}", i);
    put(f, id, json);
  }
  start_sync(f);
  mg_sync_kick(f->sync);
  assert_true(run_until(f, all_acked, 15000));
  assert_int_equal(f->srv.nstored, 7);
  assert_int_equal(f->srv.bad_open, 0);
  for (int i = 0; i < 7; i++) /* in the order submitted */
    assert_int_equal(f->srv.ids[i][0], 'a' + i);
  if (!lose_first)
    assert_int_equal(f->srv.requests, 4);
  else
    assert_true(f->srv.requests >= 5);
  for (int r = 0; r < f->srv.requests && r < 64; r++)
    assert_true(f->srv.n_in[r] >= 1 && f->srv.n_in[r] <= 2);
}

static void test_pipeline(void **state) { pipeline_run(*state, 0); }
static void test_pipeline_lost_answer(void **state) { pipeline_run(*state, 1); }

static char *status(struct fx *f);

/* the probe came, failed, and the circuit is open again */
static int circuit_probed(struct fx *f) {
  if (f->srv.requests < 4)
    return 0;
  char *st = status(f);
  int open = strstr(st, "\"circuit\":\"open\"") != NULL;
  free(st);
  return open;
}

static void test_circuit(void **state) {
  struct fx *f = *state;
  char id[33];
  f->srv.mode = 1; /* down */
  for (int i = 0; i < 5; i++) {
    snprintf(id, sizeof(id), "%032x", i + 1);
    put(f, id, "{\"a\":\"x\"}");
  }
  start_sync(f);
  mg_sync_kick(f->sync);
  /* failures 1..3 open the circuit; the 4th request is the probe */
  assert_true(run_until(f, circuit_probed, 15000));
  char *st = NULL;
  assert_true(f->srv.n_in[0] == 5);
  /* open for circuit_open (1.5 s): no request in between */
  assert_true(f->srv.at_ms[3] - f->srv.at_ms[2] >= 1400);
  /* the probe is one record */
  assert_int_equal(f->srv.n_in[3], 1);
  st = status(f);
  assert_non_null(strstr(st, "\"circuit\":\"open\""));
  assert_non_null(strstr(st, "unavailable"));
  free(st);
  /* the tenant returns: the next probe closes the circuit, all is sent */
  f->srv.mode = 0;
  assert_true(run_until(f, none_pending, 15000));
  assert_int_equal(f->srv.nstored, 5);
  st = status(f);
  assert_non_null(strstr(st, "\"circuit\":\"closed\""));
  free(st);
}

static void test_pause_persisted(void **state) {
  struct fx *f = *state;
  put(f, "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1", "{\"a\":1}");
  start_sync(f);
  mg_sync_pause(f->sync, 1);
  mg_sync_kick(f->sync);
  uv_update_time(&f->loop);
  uint64_t end = uv_now(&f->loop) + 500;
  while (uv_now(&f->loop) < end)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_int_equal(f->srv.requests, 0);
  /* a restart keeps it paused: state lives in the database */
  mg_sync_stop(f->sync);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  mg_sync_free(f->sync);
  start_sync(f);
  char *st = status(f);
  assert_non_null(strstr(st, "\"state\":\"paused\""));
  assert_non_null(strstr(st, "\"queue_depth\":1"));
  free(st);
  mg_sync_pause(f->sync, 0);
  assert_true(run_until(f, none_pending, 5000));
  assert_int_equal(f->srv.nstored, 1);
}

int main(void) {
  mg_log_init();
  mg_log_set_level(MG_LOG_ERR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_backoff_bounds),
      cmocka_unit_test_setup_teardown(test_delivery, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_rejected_kept, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_lost_answer_no_duplicate, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_circuit, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_pipeline, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_pipeline_lost_answer, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_pause_persisted, fx_setup,
                                      fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
