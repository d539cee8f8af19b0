/*
 * test_visit_cache.c — the cache of case states (core/visit_cache.h) and
 * the answer that hands back the case it changed (mg_visit_answer_get),
 * both made for issue 4's latency; neither may ever show a state other
 * than the one a fresh load would.
 *
 * Part 1, the cache alone: a hit gives the exact bytes; another version,
 * another counter or an expired entry is a miss (and the stale entry is
 * wiped); the least recently used entry goes first when full; drop wipes
 * one case or all.
 * Part 2, against a real box (store, data key, pack service with the mini
 * fixture pack, as test_visit.c): the case mg_visit_answer_get returns
 * renders byte for byte as the case loaded again; the version moves with
 * every change; what mg_visit_cache_ok lets in (open cases, no masking,
 * not after support measures or close).
 * Everyone here is fictional.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkdtemp */
#endif
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "auth.h"
#include "buf.h"
#include "config.h"
#include "crypto.h"
#include "json.h"
#include "pack_service.h"
#include "store.h"
#include "visit.h"
#include "visit_cache.h"

#define ID1 "0123456789abcdef0123456789abcdef"
#define ID2 "fedcba9876543210fedcba9876543210"
#define COMMIT "9eb3d2747d69985c7ed2462067d43b82947f433a"

/* get into a fresh buffer; returns the rc, *out the bytes (freed by caller) */
static int get(struct mg_visit_cache *c, const char *id, int64_t v,
               const char *counter, time_t now, char **out) {
  struct mg_buf b;
  char commit[48] = "";
  mg_buf_init(&b);
  int rc = mg_visit_cache_get(c, id, v, counter, now, &b, commit);
  if (rc == 0)
    assert_string_equal(commit, COMMIT);
  *out = rc == 0 ? mg_buf_steal(&b) : NULL;
  mg_buf_free(&b);
  return rc;
}

static void test_hit_and_misses(void **state) {
  (void)state;
  struct mg_visit_cache *c;
  char *s;
  assert_int_equal(mg_visit_cache_create(&c), 0);
  assert_int_equal(get(c, ID1, 5, "shimin-1", 100, &s), -ENOENT);

  mg_visit_cache_put(c, ID1, 5, "shimin-1", COMMIT, 100, "{\"a\":1}", 7);
  assert_int_equal(get(c, ID1, 5, "shimin-1", 101, &s), 0);
  assert_string_equal(s, "{\"a\":1}");
  free(s);
  /* another counter: its own entry (masking is per counter) */
  assert_int_equal(get(c, ID1, 5, "hoken-1", 101, &s), -ENOENT);
  /* another case */
  assert_int_equal(get(c, ID2, 5, "shimin-1", 101, &s), -ENOENT);
  /* a newer version: a miss, and the old state is gone for good */
  assert_int_equal(get(c, ID1, 6, "shimin-1", 101, &s), -ENOENT);
  assert_int_equal(get(c, ID1, 5, "shimin-1", 101, &s), -ENOENT);

  /* the TTL: fresh until MG_VISIT_CACHE_TTL_S seconds, then wiped */
  mg_visit_cache_put(c, ID1, 7, "shimin-1", COMMIT, 200, "{}", 2);
  assert_int_equal(get(c, ID1, 7, "shimin-1", 200 + MG_VISIT_CACHE_TTL_S - 1, &s), 0);
  free(s);
  assert_int_equal(get(c, ID1, 7, "shimin-1", 200 + MG_VISIT_CACHE_TTL_S, &s),
                   -ENOENT);
  /* expire() on the tick does the same without a lookup */
  mg_visit_cache_put(c, ID2, 1, "shimin-1", COMMIT, 300, "{}", 2);
  mg_visit_cache_expire(c, 300 + MG_VISIT_CACHE_TTL_S - 1);
  assert_int_equal(get(c, ID2, 1, "shimin-1", 300, &s), 0);
  free(s);
  mg_visit_cache_expire(c, 300 + MG_VISIT_CACHE_TTL_S);
  assert_int_equal(get(c, ID2, 1, "shimin-1", 300, &s), -ENOENT);
  /* a clock that went back does not make an entry live longer */
  mg_visit_cache_put(c, ID2, 2, "shimin-1", COMMIT, 300, "{}", 2);
  assert_int_equal(get(c, ID2, 2, "shimin-1", 299, &s), -ENOENT);

  /* put again for the same key replaces; drop wipes one case or all */
  mg_visit_cache_put(c, ID1, 8, "shimin-1", COMMIT, 400, "{\"x\":1}", 7);
  mg_visit_cache_put(c, ID1, 8, "shimin-1", COMMIT, 400, "{\"x\":2}", 7);
  mg_visit_cache_put(c, ID1, 8, "hoken-1", COMMIT, 400, "{\"y\":1}", 7);
  mg_visit_cache_put(c, ID2, 3, "shimin-1", COMMIT, 400, "{}", 2);
  assert_int_equal(get(c, ID1, 8, "shimin-1", 400, &s), 0);
  assert_string_equal(s, "{\"x\":2}");
  free(s);
  mg_visit_cache_drop(c, ID1);
  assert_int_equal(get(c, ID1, 8, "shimin-1", 400, &s), -ENOENT);
  assert_int_equal(get(c, ID1, 8, "hoken-1", 400, &s), -ENOENT);
  assert_int_equal(get(c, ID2, 3, "shimin-1", 400, &s), 0);
  free(s);
  mg_visit_cache_drop(c, NULL);
  assert_int_equal(get(c, ID2, 3, "shimin-1", 400, &s), -ENOENT);
  mg_visit_cache_free(c);
}

static void test_lru_bound(void **state) {
  (void)state;
  struct mg_visit_cache *c;
  char id[33], *s;
  assert_int_equal(mg_visit_cache_create(&c), 0);
  for (int i = 0; i < MG_VISIT_CACHE_MAX; i++) {
    snprintf(id, sizeof(id), "%032x", i);
    mg_visit_cache_put(c, id, 1, "shimin-1", COMMIT, 10, "{}", 2);
  }
  /* case 0 is used again: case 1 is now the least recently used */
  snprintf(id, sizeof(id), "%032x", 0);
  assert_int_equal(get(c, id, 1, "shimin-1", 10, &s), 0);
  free(s);
  snprintf(id, sizeof(id), "%032x", MG_VISIT_CACHE_MAX);
  mg_visit_cache_put(c, id, 1, "shimin-1", COMMIT, 10, "{}", 2);
  assert_int_equal(get(c, id, 1, "shimin-1", 10, &s), 0);
  free(s);
  snprintf(id, sizeof(id), "%032x", 1);
  assert_int_equal(get(c, id, 1, "shimin-1", 10, &s), -ENOENT);
  for (int i = 0; i <= MG_VISIT_CACHE_MAX; i++) {
    if (i == 1)
      continue;
    snprintf(id, sizeof(id), "%032x", i);
    assert_int_equal(get(c, id, 1, "shimin-1", 10, &s), 0);
    free(s);
  }
  mg_visit_cache_free(c);
}

/* ---- part 2: a real box ------------------------------------------------ */

static struct {
  char dir[64];
  uv_loop_t loop;
  struct mg_config *pcfg;
  struct mg_config vcfg;
  struct mg_pack_service *ps;
  struct mg_store *st;
  struct mg_key key;
  struct mg_visits *vs;
} F;

static void sh(const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  if (system(cmd) != 0)
    fail_msg("command failed: %s", cmd);
}

static int done_rc, done_calls;
static void on_done(void *ud, int rc, const char *json) {
  (void)ud;
  (void)json;
  done_rc = rc;
  done_calls++;
}

static int box_setup(void **state) {
  (void)state;
  char text[2048], path[256];
  struct mg_err err = {{0}};
  snprintf(F.dir, sizeof(F.dir), "/tmp/mg-test-vcache-XXXXXX");
  assert_non_null(mkdtemp(F.dir));
  sh("ssh-keygen -q -t ed25519 -N '' -f %s/key", F.dir);
  sh("printf 'a@city namespaces=\"git\" %%s\\n' \"$(cut -d' ' -f1,2 %s/key.pub)\" "
     "> %s/signers", F.dir, F.dir);
  sh("git init -q -b main %s/repo && cp -r %s/tests/fixtures/packs/mini/. %s/repo/",
     F.dir, MG_TEST_SOURCE_DIR, F.dir);
  sh("cd %s/repo && git add -A && git -c gpg.format=ssh -c user.signingkey=%s/key.pub "
     "-c user.name=t -c user.email=t@example.invalid commit -q -S -m one",
     F.dir, F.dir);
  snprintf(text, sizeof(text),
           "[daemon]\nstate_dir = %s/state\n[pack]\nurl = file://%s/repo\n"
           "allowed_signers = %s/signers\ninterval = 0\n",
           F.dir, F.dir, F.dir);
  assert_int_equal(mg_config_parse(text, strlen(text), "t.conf", &F.pcfg, &err), 0);
  assert_int_equal(uv_loop_init(&F.loop), 0);
  assert_int_equal(mg_pack_service_start(&F.loop, F.pcfg, NULL, NULL, &F.ps, &err), 0);
  assert_int_equal(mg_pack_service_pull(F.ps, on_done, NULL), 0);
  uv_run(&F.loop, UV_RUN_DEFAULT);
  assert_int_equal(done_calls, 1);
  assert_int_equal(done_rc, 0);
  snprintf(path, sizeof(path), "%s/madoguchi.db", F.dir);
  if (mg_store_open(path, &F.st, &err) != 0)
    fail_msg("store: %s", err.msg);
  snprintf(path, sizeof(path), "%s/keys/data.key", F.dir);
  if (mg_key_load(path, &F.key, &err) != 0)
    fail_msg("key: %s", err.msg);
  F.vcfg.visit_retention = 86400000;
  F.vcfg.visit_close_at = (char *)"";
  F.vcfg.visit_search_days = 7;
  F.vcfg.visit_unmask_for = 30 * 60000;
  assert_int_equal(mg_visits_create(F.st, &F.key, F.ps, &F.vcfg, &F.vs), 0);
  return 0;
}

static int box_teardown(void **state) {
  (void)state;
  mg_visits_free(F.vs);
  mg_store_close(F.st);
  mg_key_wipe(&F.key);
  mg_pack_service_stop(F.ps);
  uv_run(&F.loop, UV_RUN_DEFAULT);
  mg_pack_service_free(F.ps);
  assert_int_equal(uv_loop_close(&F.loop), 0);
  mg_config_free(F.pcfg);
  sh("rm -rf %s", F.dir);
  return 0;
}

static const struct mg_visit_actor A = {"staff-a", "shimin-1", MG_ROLE_STAFF};
static const struct mg_visit_actor SB = {"super-b", "hoken-1",
                                         MG_ROLE_SUPERVISOR};

/* The state of v as the API shows it to a (malloc'd). */
static char *render(const struct mg_visit *v, const struct mg_visit_actor *a) {
  struct mg_buf b;
  struct mg_jw w;
  struct mg_err err = {{0}};
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  if (mg_visit_state_json(F.vs, v, a, &w, &err))
    fail_msg("state: %s", err.msg);
  char *s = mg_buf_steal(&b);
  assert_non_null(s);
  return s;
}

static char *render_loaded(const char *id, const struct mg_visit_actor *a) {
  struct mg_visit *v = NULL;
  struct mg_err err = {{0}};
  if (mg_visit_get(F.vs, a, id, &v, &err))
    fail_msg("get: %s", err.msg);
  char *s = render(v, a);
  int ok = mg_visit_cache_ok(v);
  mg_visit_free(v);
  return ok ? s : (free(s), NULL);
}

static void test_answer_get_matches_a_load(void **state) {
  (void)state;
  static const struct mg_date filing = {2024, 6, 10};
  struct mg_visit_person p[2] = {
      {(char *)"佐藤 一郎", (char *)"サトウ イチロウ", (char *)"山口県周南市岐山通1丁目1番地",
       {1980, 5, 5}, 0},
      {(char *)"佐藤 みどり", (char *)"サトウ ミドリ", (char *)"山口県周南市岐山通1丁目1番地",
       {2014, 9, 1}, 0}};
  struct mg_visit *v = NULL, *now_v = NULL;
  struct mg_err err = {{0}};
  char id[33], tok[64], *a, *b;
  int64_t v0, v1, v2;
  assert_int_equal(mg_visit_new(F.vs, &A, "tennyu", &filing, p, 2, 0, 0, &v,
                                tok, &err), 0);
  snprintf(id, sizeof(id), "%s", v->id);
  mg_visit_free(v);
  assert_int_equal(mg_visit_cache_version(F.vs, id, &v0), 0);
  assert_int_equal(mg_visit_cache_version(F.vs, "0000", &v1), -ENOENT);

  /* a first answer (appended), a new one, then one changed in place */
  const struct {
    const char *q;
    int yes;
  } steps[] = {{"kokuho_other", 0}, {"kokuho_family", 1}, {"kokuho_other", 1},
               {"kokuho_other", 0}};
  v1 = v0;
  for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
    assert_int_equal(mg_visit_answer_get(F.vs, &A, id, steps[i].q,
                                         steps[i].yes, &now_v, &err), 0);
    assert_non_null(now_v);
    a = render(now_v, &A);
    b = render_loaded(id, &A);
    assert_non_null(b); /* open, no masking: may be kept */
    assert_string_equal(a, b);
    free(a);
    free(b);
    mg_visit_free(now_v);
    now_v = NULL;
    assert_int_equal(mg_visit_cache_version(F.vs, id, &v2), 0);
    assert_true(v2 > v1); /* every change moves the version */
    v1 = v2;
  }
  /* a refused answer hands nothing back and changes nothing */
  assert_int_equal(mg_visit_answer_get(F.vs, &A, id, "nope", 1, &now_v, &err),
                   -ENOENT);
  assert_null(now_v);
  assert_int_equal(mg_visit_cache_version(F.vs, id, &v2), 0);
  assert_true(v2 == v1);

  /* support measures: masking depends on the counter and on unmask rows
   * with expiry times, so such a state is never kept */
  assert_int_equal(mg_visit_support(F.vs, &SB, id, 0, 1, &err), 0);
  assert_null(render_loaded(id, &A));
  assert_null(render_loaded(id, &SB));
  assert_int_equal(mg_visit_support(F.vs, &SB, id, 0, 0, &err), 0);
  assert_int_equal(mg_visit_cache_version(F.vs, id, &v2), 0);
  assert_true(v2 > v1);
  /* a closed case is not kept either */
  assert_int_equal(mg_visit_close(F.vs, &A, id, &err), 0);
  assert_null(render_loaded(id, &A));
}

int main(void) {
  const struct CMUnitTest cache[] = {
      cmocka_unit_test(test_hit_and_misses),
      cmocka_unit_test(test_lru_bound),
  };
  const struct CMUnitTest box[] = {
      cmocka_unit_test(test_answer_get_matches_a_load),
  };
  int failed = cmocka_run_group_tests_name("cache", cache, NULL, NULL);
  failed += cmocka_run_group_tests_name("box", box, box_setup, box_teardown);
  return failed;
}
