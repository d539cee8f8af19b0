/*
 * test_visit_transfer.c — cross-floor cases (core/visit_transfer.h; issue
 * 8, C1, G5) between two real boxes: two SQLite stores with two different
 * data keys, one pack service (the mini fixture pack pulled from an
 * SSH-signed git repository, as in test_visit.c).
 *
 * Covered: every change bumps visits.version and queues the case in the
 * outbox in the same transaction (creation, answers, notes, forms, values,
 * signature, support, unmask, submission, close of business), and tells
 * the daemon (mg_visits_take_cases_queued) so it kicks the sync client;
 * versions grow with time, so two floors changing the same version make
 * two versions and the later change is the greater, and a case imported
 * with a version ahead of this box's clock still moves on; a case with
 * everything in it exported on box 1 and imported on box 2 shows the same
 * state and forms JSON to every counter, re-exports the same, is found by
 * its token and number, keeps nothing in clear in box 2's files and is not
 * queued again; last writer wins by version (an older or equal version is
 * refused, a newer one replaces); malformed exports are refused with the
 * place and the rule, and nothing is stored half.
 *
 * People and addresses are fictional.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, mkdtemp */
#endif
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "audit.h"
#include "auth.h"
#include "config.h"
#include "crypto.h"
#include "jp.h"
#include "json.h"
#include "log.h"
#include "pack_service.h"
#include "store.h"
#include "visit.h"
#include "visit_forms.h"
#include "visit_transfer.h"

/* ---- two boxes -------------------------------------------------------- */

struct box {
  char dir[96];
  struct mg_store *st;
  struct mg_key key;
  struct mg_visits *vs;
};

static struct {
  char dir[64];
  char commit[41];
  uv_loop_t loop;
  struct mg_config *pcfg;
  struct mg_config vcfg;
  struct mg_pack_service *ps;
  struct box b1, b2;
  char id[33], token[64], number[9];
} F;

static char cmd[4096];

static void sh(const char *fmt, ...) {
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

static void box_open(struct box *b, const char *name) {
  char path[160];
  struct mg_err err = {{0}};
  snprintf(b->dir, sizeof(b->dir), "%s/%s", F.dir, name);
  sh("mkdir -p %s", b->dir);
  snprintf(path, sizeof(path), "%s/madoguchi.db", b->dir);
  if (mg_store_open(path, &b->st, &err) != 0)
    fail_msg("store: %s", err.msg);
  snprintf(path, sizeof(path), "%s/keys/data.key", b->dir);
  if (mg_key_load(path, &b->key, &err) != 0)
    fail_msg("key: %s", err.msg);
  assert_int_equal(mg_visits_create(b->st, &b->key, F.ps, &F.vcfg, &b->vs), 0);
}

static void box_close(struct box *b) {
  mg_visits_free(b->vs);
  mg_store_close(b->st);
  mg_key_wipe(&b->key);
}

static int group_setup(void **state) {
  (void)state;
  char text[2048];
  struct mg_err err = {{0}};
  snprintf(F.dir, sizeof(F.dir), "/tmp/mg-test-xfer-XXXXXX");
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
  done_calls = 0;
  assert_int_equal(mg_pack_service_pull(F.ps, on_done, NULL), 0);
  uv_run(&F.loop, UV_RUN_DEFAULT);
  assert_int_equal(done_calls, 1);
  assert_int_equal(done_rc, 0);
  F.vcfg.visit_retention = 86400000;
  F.vcfg.visit_close_at = (char *)"";
  F.vcfg.visit_search_days = 7;
  F.vcfg.visit_unmask_for = 30 * 60000;
  box_open(&F.b1, "box1");
  box_open(&F.b2, "box2");
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  box_close(&F.b1);
  box_close(&F.b2);
  mg_pack_service_stop(F.ps);
  uv_run(&F.loop, UV_RUN_DEFAULT);
  mg_pack_service_free(F.ps);
  assert_int_equal(uv_loop_close(&F.loop), 0);
  mg_config_free(F.pcfg);
  sh("rm -rf %s", F.dir);
  return 0;
}

/* ---- helpers ---------------------------------------------------------- */

static const struct mg_visit_actor A = {"staff-a", "shimin-1", MG_ROLE_STAFF};
static const struct mg_visit_actor B = {"staff-b", "hoken-1", MG_ROLE_STAFF};
static const struct mg_visit_actor SB = {"super-b", "hoken-1",
                                         MG_ROLE_SUPERVISOR};

#define NAME1 "周南 一郎"
#define ADDRESS "山口県周南市岐山通1丁目1番地"
#define NOTE "転出証明書は持参済み（テスト）"

static void ok(int rc, const struct mg_err *err, const char *what) {
  if (rc)
    fail_msg("%s: %d %s", what, rc, err->msg);
}

static int64_t sql_int(struct box *b, const char *fmt, const char *arg) {
  char sql[512];
  sqlite3_stmt *s = NULL;
  int64_t v = -1;
  snprintf(sql, sizeof(sql), fmt, arg);
  assert_int_equal(sqlite3_prepare_v2(mg_store_db(b->st), sql, -1, &s, NULL),
                   SQLITE_OK);
  if (sqlite3_step(s) == SQLITE_ROW)
    v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  return v;
}

/* The wall clock in microseconds, as versions count (visit.c). */
static int64_t now_us(void) {
  struct timespec ts;
  assert_int_equal(clock_gettime(CLOCK_REALTIME, &ts), 0);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t version_of(struct box *b, const char *id) {
  return sql_int(b, "SELECT version FROM visits WHERE id = '%s'", id);
}

/* The version of the case's pending outbox row (-1: none). */
static int64_t queued(struct box *b, const char *id) {
  return sql_int(b, "SELECT version FROM outbox WHERE kind = 'case' AND "
                    "ref = '%s' AND acked_at IS NULL", id);
}

/* The case's state and forms JSON as `a` sees them on box b. */
static char *views(struct box *b, const struct mg_visit_actor *a,
                   const char *id) {
  struct mg_visit *v = NULL;
  struct mg_err err = {{0}};
  struct mg_buf buf;
  struct mg_jw w;
  ok(mg_visit_get(b->vs, a, id, &v, &err), &err, "get");
  mg_buf_init(&buf);
  mg_jw_init(&w, &buf);
  mg_jw_arr(&w);
  ok(mg_visit_state_json(b->vs, v, a, &w, &err), &err, "state");
  ok(mg_visit_forms_json(b->vs, v, a, &w, &err), &err, "forms");
  ok(mg_visit_form_json(b->vs, v, a, "tennyu", 1, &w, &err), &err, "sheet");
  mg_jw_arr_end(&w);
  assert_false(w.bad);
  mg_visit_free(v);
  return mg_buf_steal(&buf);
}

static char *export(struct box *b, const char *id, int64_t *version,
                    size_t *len) {
  unsigned char *json = NULL;
  int64_t v = 0;
  size_t n = 0;
  int rc = mg_visit_export(b->vs, id, &v, &json, &n);
  if (rc)
    fail_msg("export: %d", rc);
  assert_int_equal(strlen((char *)json), n);
  if (version)
    *version = v;
  if (len)
    *len = n;
  return (char *)json;
}

static int import(struct box *b, const char *json, const char *origin,
                  struct mg_err *err) {
  char id[33];
  memset(err, 0, sizeof(*err));
  return mg_visit_import(b->vs, (const unsigned char *)json, strlen(json),
                         origin, id, err);
}

/* Does `needle` occur in box b's database files? */
static int in_db_files(struct box *b, const char *needle) {
  static const char *const sfx[] = {"", "-wal", "-journal"};
  int found = 0;
  for (size_t i = 0; i < 3 && !found; i++) {
    char path[256];
    snprintf(path, sizeof(path), "%s/madoguchi.db%s", b->dir, sfx[i]);
    FILE *f = fopen(path, "rb");
    if (!f)
      continue;
    struct stat st;
    assert_int_equal(fstat(fileno(f), &st), 0);
    char *buf = malloc((size_t)st.st_size + 1);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    fclose(f);
    found = memmem(buf, n, needle, strlen(needle)) != NULL;
    free(buf);
  }
  return found;
}

/* A copy of s with the first `from` replaced by `to` (which must occur). */
static char *replace(const char *s, const char *from, const char *to) {
  const char *p = strstr(s, from);
  if (!p)
    fail_msg("not in the export: %s", from);
  size_t a = (size_t)(p - s), n = strlen(s) - strlen(from) + strlen(to);
  char *out = malloc(n + 1);
  assert_non_null(out);
  memcpy(out, s, a);
  memcpy(out + a, to, strlen(to));
  strcpy(out + a + strlen(to), p + strlen(from));
  return out;
}

/* A member's string value (first occurrence of "key":"...") into out. */
/* noinline: GCC 12 -O3 reports a false dangling pointer once inlined */
__attribute__((noinline)) static void member(const char *json,
                                             const char *key, char *out,
                                             size_t len) {
  char pat[64];
  snprintf(pat, sizeof(pat), "\"%s\":\"", key);
  const char *p = strstr(json, pat);
  assert_non_null(p);
  p += strlen(pat);
  const char *q = strchr(p, '"');
  snprintf(out, len, "%.*s", (int)(q - p), p);
}

/* ---- a case with everything, on box 1 ---------------------------------- */

static void test_changes_bump_the_version(void **state) {
  (void)state;
  struct mg_err err = {{0}};
  struct mg_visit *v = NULL;
  struct mg_visit_person people[2] = {
      {(char *)NAME1, (char *)"シュウナン イチロウ", (char *)ADDRESS,
       {1980, 4, 1}, 0},
      {(char *)"周南 花子", (char *)"シュウナン ハナコ", (char *)ADDRESS,
       {2015, 5, 5}, 0}};
  char inst[80], app[33];
  int64_t ver = 0;

  ok(mg_visit_new(F.b1.vs, &A, "tennyu", NULL, people, 2, 1, 0, &v, F.token,
                  &err), &err, "new");
  snprintf(F.id, sizeof(F.id), "%s", v->id);
  snprintf(F.number, sizeof(F.number), "%s", v->number);
  mg_visit_free(v);
  /* a new case is version 1 and queued with it */
  assert_int_equal(version_of(&F.b1, F.id), 1);
  assert_int_equal(queued(&F.b1, F.id), 1);

  /* ... and the daemon hears of it once */
  assert_int_equal(mg_visits_take_cases_queued(F.b1.vs), 1);
  assert_int_equal(mg_visits_take_cases_queued(F.b1.vs), 0);

  /* every change: a greater version (it grows with time: at least the
   * clock in microseconds), queued, and the daemon told */
#define STEP(call)                                                          \
  do {                                                                      \
    ver = version_of(&F.b1, F.id);                                          \
    int64_t t0 = now_us();                                                  \
    ok(call, &err, #call);                                                  \
    int64_t nv = version_of(&F.b1, F.id);                                   \
    assert_true(nv > ver);                                                  \
    assert_true(nv >= t0);                                                  \
    assert_int_equal(queued(&F.b1, F.id), nv);                              \
    assert_int_equal(mg_visits_take_cases_queued(F.b1.vs), 1);              \
  } while (0)
  STEP(mg_visit_answer(F.b1.vs, &A, F.id, "kokuho_other", 0, &err));
  STEP(mg_visit_answer(F.b1.vs, &A, F.id, "kokuho_family", 1, &err));
  STEP(mg_visit_manual(F.b1.vs, &A, F.id, "gakko", 1, &err));
  STEP(mg_visit_set_status(F.b1.vs, &A, F.id, "tennyu_todoke", "in_progress",
                           &err));
  STEP(mg_visit_add_note(F.b1.vs, &A, F.id, NOTE, &err));
  STEP(mg_visit_set_free_text(F.b1.vs, &A, F.id, "2階へお進みください", &err));
  STEP(mg_visit_form_set(F.b1.vs, &A, F.id, "tennyu", "memo", 0,
                         "書類確認済み", "typed", &err));
  STEP(mg_visit_signature_set(F.b1.vs, &A, F.id,
                              "{\"aspect\":3,\"strokes\":[[[0.1,0.2,0.01],"
                              "[0.3,0.4,0.01]]]}",
                              strlen("{\"aspect\":3,\"strokes\":[[[0.1,0.2,0.01],"
                                     "[0.3,0.4,0.01]]]}"),
                              &err));
  STEP(mg_visit_form_copy(F.b1.vs, &A, F.id, "tennyu", inst, &err));
  STEP(mg_visit_form_remove(F.b1.vs, &A, F.id, inst, &err));
  STEP(mg_visit_form_remove(F.b1.vs, &B, F.id, "kokuho", &err));
  STEP(mg_visit_form_add(F.b1.vs, &B, F.id, "kokuho", inst, &err));
  {
    char today[16];
    struct mg_date d;
    mg_date_today(&d);
    mg_date_format(&d, today, sizeof(today));
    STEP(mg_visit_form_set(F.b1.vs, &A, F.id, "tennyu", "moved_on", 0, today,
                           "typed", &err));
  }
  STEP(mg_visit_form_set(F.b1.vs, &A, F.id, "tennyu", "head_name", 0, NAME1,
                         "typed", &err));
  STEP(mg_visit_form_set(F.b1.vs, &A, F.id, "tennyu", "address", 0, ADDRESS,
                         "typed", &err));
  STEP(mg_visit_form_set(F.b1.vs, &A, F.id, "tennyu", "member_name", 1, NAME1,
                         "typed", &err));
  STEP(mg_visit_form_set(F.b1.vs, &A, F.id, "tennyu", "member_birth", 1,
                         "1980-04-01", "typed", &err));
  STEP(mg_visit_form_set(F.b1.vs, &A, F.id, "tennyu", "member_name", 2,
                         "周南 花子", "typed", &err));
  STEP(mg_visit_form_set(F.b1.vs, &A, F.id, "tennyu", "member_birth", 2,
                         "2015-05-05", "typed", &err));
  STEP(mg_visit_form_submit(F.b1.vs, &A, F.id, "tennyu", app, &err));
  STEP(mg_visit_support(F.b1.vs, &A, F.id, 1, 1, &err));
  STEP(mg_visit_unmask(F.b1.vs, &SB, F.id, "本人から電話で依頼", &err));
  /* a refused change moves nothing */
  ver = version_of(&F.b1, F.id);
  assert_int_equal(mg_visit_form_submit(F.b1.vs, &A, F.id, "tennyu", app,
                                        &err), -EALREADY);
  assert_int_equal(mg_visit_answer(F.b1.vs, &A, F.id, "nope", 1, &err),
                   -ENOENT);
  assert_int_equal(version_of(&F.b1, F.id), ver);
  assert_int_equal(queued(&F.b1, F.id), ver);
  assert_int_equal(mg_visits_take_cases_queued(F.b1.vs), 0);
#undef STEP
  /* the export carries the version the outbox row names */
  size_t len = 0;
  char *json = export(&F.b1, F.id, &ver, &len);
  assert_int_equal(ver, version_of(&F.b1, F.id));
  assert_non_null(strstr(json, "\"format\":\"madoguchi/case-1\""));
  assert_non_null(strstr(json, NOTE));
  assert_non_null(strstr(json, F.token));
  free(json);
}

/* ---- box 2 continues the case ------------------------------------------ */

static void test_import_continues_the_case(void **state) {
  (void)state;
  struct mg_err err = {{0}};
  struct mg_visit *v = NULL;
  char origin[72];
  int64_t ver = 0;
  char *json = export(&F.b1, F.id, &ver, NULL);

  /* box 2 does not know it */
  assert_int_equal(mg_visit_by_token(F.b2.vs, &B, F.token, &v, &err), -ENOENT);
  ok(import(&F.b2, json, "floor-1f", &err), &err, "import");
  assert_int_equal(version_of(&F.b2, F.id), ver);
  /* the import is the tenant's copy: not queued again from box 2 */
  assert_int_equal(queued(&F.b2, F.id), -1);
  ok(mg_visit_origin_box(F.b2.vs, F.id, origin), &err, "origin");
  assert_string_equal(origin, "floor-1f");
  { /* audited on box 2, with the version and where from */
    struct mg_buf b;
    struct mg_jw w;
    char obj[48];
    int64_t rows = 0;
    snprintf(obj, sizeof(obj), "visit:%s", F.id);
    mg_buf_init(&b);
    mg_jw_init(&w, &b);
    assert_int_equal(mg_audit_list_json(F.b2.st, obj, 100, &w), 0);
    assert_non_null(strstr(b.data, "\"visit.import\""));
    assert_non_null(strstr(b.data, "from floor-1f"));
    mg_buf_free(&b);
    ok(mg_audit_verify(F.b2.st, &rows, &err), &err, "audit chain");
  }
  ok(mg_visit_origin_box(F.b1.vs, F.id, origin), &err, "origin");
  assert_string_equal(origin, "");

  /* the same case to every counter: the household's counter, the masked
   * one with its unmask, and a third */
  static const struct mg_visit_actor C = {"staff-c", "kaigo-1", MG_ROLE_STAFF};
  const struct mg_visit_actor *who[] = {&A, &B, &C};
  for (size_t i = 0; i < 3; i++) {
    char *v1 = views(&F.b1, who[i], F.id), *v2 = views(&F.b2, who[i], F.id);
    assert_string_equal(v1, v2);
    if (i == 0) { /* the views hold what was done on box 1 */
      assert_non_null(strstr(v1, NOTE));
      assert_non_null(strstr(v1, "書類確認済み"));
      assert_non_null(strstr(v1, "\"signature\":true"));
    }
    free(v1);
    free(v2);
  }
  /* found by its slip's token and by its number */
  ok(mg_visit_by_token(F.b2.vs, &B, F.token, &v, &err), &err, "token");
  assert_string_equal(v->id, F.id);
  assert_string_equal(v->token, F.token);
  mg_visit_free(v);
  ok(mg_visit_by_number(F.b2.vs, &B, F.number, &v, &err), &err, "number");
  assert_string_equal(v->id, F.id);
  mg_visit_free(v);
  /* re-exported from box 2: the same document but for where it came from */
  char *again = export(&F.b2, F.id, NULL, NULL);
  char *expect = replace(json, "\"origin_box\":null", "\"origin_box\":\"floor-1f\"");
  assert_string_equal(again, expect);
  free(again);
  free(expect);
  /* sealed with box 2's own key: nothing in clear in its files */
  assert_false(in_db_files(&F.b2, NAME1));
  assert_false(in_db_files(&F.b2, NOTE));
  assert_false(in_db_files(&F.b2, F.token));
  /* ... and box 1's sealed blobs do not open with box 2's key: nothing was
   * copied raw */
  assert_true(memcmp(F.b1.key.k, F.b2.key.k, 32) != 0);
  free(json);
}

/* ---- last writer wins by version --------------------------------------- */

static void test_versions(void **state) {
  (void)state;
  struct mg_err err = {{0}};
  int64_t v1 = 0, v2 = 0;
  char *old = export(&F.b1, F.id, &v1, NULL);

  /* the same version again, and an older one: refused, nothing changes */
  assert_int_equal(import(&F.b2, old, "floor-1f", &err), -ESTALE);
  assert_non_null(strstr(err.msg, "not newer"));
  /* box 2 goes on: its change is queued from box 2 */
  ok(mg_visit_add_note(F.b2.vs, &B, F.id, "2階で受付（テスト）", &err), &err,
     "note on box 2");
  assert_true(version_of(&F.b2, F.id) > v1);
  assert_int_equal(queued(&F.b2, F.id), version_of(&F.b2, F.id));
  char *newer2 = export(&F.b2, F.id, &v2, NULL);
  assert_int_equal(v2, version_of(&F.b2, F.id));
  assert_int_equal(import(&F.b2, old, NULL, &err), -ESTALE);
  {
    char *x = views(&F.b2, &B, F.id);
    assert_non_null(strstr(x, "2階で受付"));
    free(x);
  }

  /* box 1 takes box 2's newer version: it replaces box 1's */
  ok(import(&F.b1, newer2, "floor-2f", &err), &err, "newer into box 1");
  assert_int_equal(version_of(&F.b1, F.id), v2);
  {
    char *a = views(&F.b1, &A, F.id), *b = views(&F.b2, &A, F.id);
    assert_string_equal(a, b);
    assert_non_null(strstr(a, "2階で受付"));
    free(a);
    free(b);
  }
  /* box 1 had its own pending snapshot of an older version: superseded */
  assert_int_equal(queued(&F.b1, F.id), -1);

  /* two floors change the same version: the later upload wins whole */
  ok(mg_visit_add_note(F.b1.vs, &A, F.id, "1階の追記（テスト）", &err), &err,
     "b1");
  ok(mg_visit_set_free_text(F.b1.vs, &A, F.id, "1階の案内", &err), &err, "b1");
  char *b1v = export(&F.b1, F.id, &v1, NULL);
  assert_true(v1 > v2);
  ok(import(&F.b2, b1v, "floor-1f", &err), &err, "b1 into b2");
  {
    char *a = views(&F.b1, &B, F.id), *b = views(&F.b2, &B, F.id);
    assert_string_equal(a, b);
    free(a);
    free(b);
  }
  free(old);
  free(newer2);
  free(b1v);
}

/* ---- two floors change the same version -------------------------------- */

/* Box 1 and box 2 both hold version V (1F → 2F, and 1F's tablet still has
 * the case open): each changes it.  With versions counted up by one both
 * would make V + 1 and the tenant would refuse the second as a conflict
 * (docs/tenant-api.md: same version, other content); versions that grow
 * with time make two versions, and the later change is the greater. */
static void test_two_floors_same_version(void **state) {
  (void)state;
  struct mg_err err = {{0}};
  int64_t v = 0, v1 = 0, v2 = 0;
  char *base = export(&F.b1, F.id, &v, NULL);
  if (version_of(&F.b2, F.id) != v)
    ok(import(&F.b2, base, "floor-1f", &err), &err, "same version on box 2");
  assert_int_equal(version_of(&F.b2, F.id), v);

  ok(mg_visit_add_note(F.b1.vs, &A, F.id, "1階で先に追記（テスト）", &err),
     &err, "box 1 changes V");
  ok(mg_visit_add_note(F.b2.vs, &B, F.id, "2階で後から追記（テスト）", &err),
     &err, "box 2 changes V");
  char *e1 = export(&F.b1, F.id, &v1, NULL);
  char *e2 = export(&F.b2, F.id, &v2, NULL);
  assert_true(v1 > v);
  assert_true(v2 > v);
  assert_true(v2 > v1); /* the later change wins, on every box */
  assert_int_equal(import(&F.b2, e1, "floor-1f", &err), -ESTALE);
  ok(import(&F.b1, e2, "floor-2f", &err), &err, "the later into box 1");
  {
    char *a = views(&F.b1, &A, F.id), *b = views(&F.b2, &A, F.id);
    assert_string_equal(a, b);
    assert_non_null(strstr(a, "2階で後から追記"));
    assert_null(strstr(a, "1階で先に追記"));
    free(a);
    free(b);
  }
  free(base);
  free(e1);
  free(e2);
}

/* A case from a box whose clock is ahead: changed here, it still gets a
 * greater version (max(version + 1, now)), so its upload is not stale. */
static void test_version_ahead_of_the_clock(void **state) {
  (void)state;
  struct mg_err err = {{0}};
  int64_t v = 0;
  char *json = export(&F.b1, F.id, &v, NULL);
  char from[40], to[40];
  int64_t ahead = now_us() + 3600LL * 1000000; /* an hour ahead */
  snprintf(from, sizeof(from), "\"version\":%lld,", (long long)v);
  snprintf(to, sizeof(to), "\"version\":%lld,", (long long)ahead);
  char *doc = replace(json, from, to);
  ok(import(&F.b2, doc, "floor-3f", &err), &err, "ahead into box 2");
  assert_int_equal(version_of(&F.b2, F.id), ahead);
  ok(mg_visit_set_free_text(F.b2.vs, &B, F.id, "3階の後で2階（テスト）", &err),
     &err, "change here");
  assert_int_equal(version_of(&F.b2, F.id), ahead + 1);
  assert_int_equal(queued(&F.b2, F.id), ahead + 1);
  /* box 1 takes it back: everything from here on is greater again */
  char *back = export(&F.b2, F.id, NULL, NULL);
  ok(import(&F.b1, back, "floor-2f", &err), &err, "back into box 1");
  assert_int_equal(version_of(&F.b1, F.id), ahead + 1);
  free(json);
  free(doc);
  free(back);
}

/* ---- bad input ---------------------------------------------------------- */

/* A document like the export, under another id, number and token (so that
 * it would be a new case on box 2). */
static char *fresh(const char *json) {
  char id[33], number[9], token[64], th[65], nt[64], nth[65], nn[9];
  member(json, "id", id, sizeof(id));
  member(json, "number", number, sizeof(number));
  member(json, "token", token, sizeof(token));
  member(json, "token_sha256", th, sizeof(th));
  snprintf(nt, sizeof(nt), "%s", token);
  nt[0] = nt[0] == 'A' ? 'B' : 'A';
  assert_int_equal(mg_sha256_hex(nt, strlen(nt), nth), 0);
  snprintf(nn, sizeof(nn), "%s", number);
  nn[0] = nn[0] == '9' ? '1' : (char)(nn[0] + 1);
  nn[7] = mg_luhn_digit(nn, 7);
  char nid[33];
  snprintf(nid, sizeof(nid), "%s", id);
  nid[0] = nid[0] == 'f' ? '0' : 'f';
  char a[160], b[160];
  snprintf(a, sizeof(a), "\"id\":\"%s\"", id);
  snprintf(b, sizeof(b), "\"id\":\"%s\"", nid);
  char *s1 = replace(json, a, b);
  snprintf(a, sizeof(a), "\"number\":\"%s\"", number);
  snprintf(b, sizeof(b), "\"number\":\"%s\"", nn);
  char *s2 = replace(s1, a, b);
  snprintf(a, sizeof(a), "\"token\":\"%s\"", token);
  snprintf(b, sizeof(b), "\"token\":\"%s\"", nt);
  char *s3 = replace(s2, a, b);
  char *s4 = replace(s3, th, nth);
  free(s1);
  free(s2);
  free(s3);
  return s4;
}

static void test_malformed(void **state) {
  (void)state;
  struct mg_err err = {{0}};
  struct mg_visit *v = NULL;
  char *json = export(&F.b1, F.id, NULL, NULL);
  char *base = fresh(json), nid[33];
  member(base, "id", nid, sizeof(nid));
  int64_t cases = sql_int(&F.b2, "SELECT count(*) FROM visits%s", "");
  int64_t notes = sql_int(&F.b2, "SELECT count(*) FROM visit_notes%s", "");

  static const struct {
    const char *from, *to, *msg;
    int rc;
  } bad[] = {
      {"\"format\":\"madoguchi/case-1\"", "\"format\":\"madoguchi/case-9\"",
       "case.format: must be \"madoguchi/case-1\"", -EINVAL},
      {"\"birth_date\":\"2015-05-05\"", "\"birth_date\":\"2015-13-05\"",
       "case.people[1].birth_date: must be a date YYYY-MM-DD", -EINVAL},
      {"\"answer\":false", "\"answer\":\"no\"",
       "case.answers[0].answer: must be true or false", -EINVAL},
      {"\"source\":\"typed\"", "\"source\":\"scanned\"",
       "case.values[0].source: must be one of typed, card", -EINVAL},
      {"\"status\":\"in_progress\"", "\"status\":\"later\"",
       "case.statuses[0].status: must be one of pending, in_progress, done",
       -EINVAL},
      {"\"version\":", "\"version\":-3,\"x\":",
       "case.version: at least 1", -EINVAL},
      {"\"people\":[", "\"people\":7,\"y\":[",
       "case.people: required (an array)", -EINVAL},
      {"\"data\":\"", "\"data\":\"[1]\",\"z\":\"",
       "case.signature.data: must hold a JSON object", -EINVAL},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char *doc = replace(base, bad[i].from, bad[i].to);
    int rc = import(&F.b2, doc, "floor-1f", &err);
    if (rc != bad[i].rc || !strstr(err.msg, bad[i].msg))
      fail_msg("case %zu: %d %s", i, rc, err.msg);
    /* the place and the rule, never a value */
    assert_null(strstr(err.msg, NAME1));
    free(doc);
  }
  /* the token must hash to token_sha256; the number's check digit */
  {
    char th[65], *doc;
    member(base, "token_sha256", th, sizeof(th));
    doc = replace(base, th,
                  "0000000000000000000000000000000000000000000000000000000000000000");
    assert_int_equal(import(&F.b2, doc, NULL, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "case.token_sha256: must be the SHA-256"));
    free(doc);
    char num[9], wrong[9], a[32], b[32];
    member(base, "number", num, sizeof(num));
    snprintf(wrong, sizeof(wrong), "%s", num);
    wrong[7] = wrong[7] == '9' ? '0' : (char)(wrong[7] + 1);
    snprintf(a, sizeof(a), "\"number\":\"%s\"", num);
    snprintf(b, sizeof(b), "\"number\":\"%s\"", wrong);
    doc = replace(base, a, b);
    assert_int_equal(import(&F.b2, doc, NULL, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "case.number: the check digit"));
    free(doc);
  }
  /* not JSON, truncated, not an object, too large, a bad origin box */
  assert_int_equal(import(&F.b2, "{\"format\":", NULL, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "case export: not JSON"));
  {
    char *t = strdup(base);
    t[strlen(t) / 2] = 0;
    assert_int_equal(import(&F.b2, t, NULL, &err), -EINVAL);
    free(t);
  }
  assert_int_equal(import(&F.b2, "[]", NULL, &err), -EINVAL);
  {
    char id[33];
    assert_int_equal(mg_visit_import(F.b2.vs, (const unsigned char *)base,
                                     MG_VISIT_EXPORT_MAX + 1, NULL, id, &err),
                     -E2BIG);
  }
  assert_int_equal(import(&F.b2, base, "floor 1/f", &err), -EINVAL);
  assert_non_null(strstr(err.msg, "origin_box"));

  /* a duplicate row is found only when writing: the whole import is
   * rolled back */
  {
    const char *p = strstr(base, "\"manual\":[{");
    assert_non_null(p);
    p += strlen("\"manual\":[");
    const char *q = strchr(p, '}');
    char row[512], to[1100], from[600];
    snprintf(row, sizeof(row), "%.*s", (int)(q - p + 1), p);
    snprintf(from, sizeof(from), "\"manual\":[%s", row);
    snprintf(to, sizeof(to), "\"manual\":[%s,%s", row, row);
    char *doc = replace(base, from, to);
    assert_int_equal(import(&F.b2, doc, NULL, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "case.manual[1]: cannot be stored"));
    free(doc);
  }
  /* nothing of any of them is on box 2 */
  assert_int_equal(mg_visit_get(F.b2.vs, &A, nid, &v, &err), -ENOENT);
  assert_int_equal(sql_int(&F.b2, "SELECT count(*) FROM visits%s", ""), cases);
  assert_int_equal(sql_int(&F.b2, "SELECT count(*) FROM visit_notes%s", ""),
                   notes);
  /* another case here with the same number: refused */
  {
    char num[9], a[32], b[32];
    member(base, "number", num, sizeof(num));
    snprintf(a, sizeof(a), "\"number\":\"%s\"", num);
    snprintf(b, sizeof(b), "\"number\":\"%s\"", F.number);
    char *doc = replace(base, a, b);
    assert_int_equal(import(&F.b2, doc, NULL, &err), -EEXIST);
    free(doc);
  }
  /* its application's id is box 1's: taken on box 2 too, found when
   * writing, everything rolled back */
  assert_int_equal(import(&F.b2, base, "floor-1f", &err), -EINVAL);
  assert_non_null(strstr(err.msg, "case.applications[0]: cannot be stored"));
  assert_int_equal(sql_int(&F.b2, "SELECT count(*) FROM visits%s", ""), cases);
  /* with an application id of its own the well-formed one goes in as a
   * new case */
  {
    const char *p = strstr(base, "\"applications\":[{\"id\":\"");
    assert_non_null(p);
    p += strlen("\"applications\":[{\"id\":\"");
    char from[40], to[40];
    snprintf(from, sizeof(from), "\"%.32s\"", p);
    snprintf(to, sizeof(to), "\"%.32s\"", p);
    to[1] = to[1] == 'a' ? 'b' : 'a';
    char *doc = replace(base, from, to);
    free(base);
    base = doc;
  }
  ok(import(&F.b2, base, "floor-1f", &err), &err, "fresh");
  ok(mg_visit_get(F.b2.vs, &A, nid, &v, &err), &err, "fresh get");
  mg_visit_free(v);
  free(base);
  free(json);
}

/* ---- close of business ------------------------------------------------- */

static void test_close_of_business_is_queued(void **state) {
  (void)state;
  int64_t ver = version_of(&F.b1, F.id);
  size_t closed = 0;
  F.vcfg.visit_close_at = (char *)"00:00";
  /* "now" a day ahead: every open case was made before the last close */
  assert_int_equal(mg_visits_housekeeping(F.b1.vs, time(NULL) + 86400,
                                          &closed, NULL), 0);
  F.vcfg.visit_close_at = (char *)"";
  assert_true(closed >= 1);
  assert_true(version_of(&F.b1, F.id) > ver);
  assert_int_equal(queued(&F.b1, F.id), version_of(&F.b1, F.id));
  assert_int_equal(mg_visits_take_cases_queued(F.b1.vs), 1);
  char *json = export(&F.b1, F.id, NULL, NULL);
  assert_non_null(strstr(json, "\"status\":\"closed\""));
  struct mg_err err = {{0}};
  ok(import(&F.b2, json, NULL, &err), &err, "closed into box 2");
  free(json);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_changes_bump_the_version),
      cmocka_unit_test(test_import_continues_the_case),
      cmocka_unit_test(test_versions),
      cmocka_unit_test(test_two_floors_same_version),
      cmocka_unit_test(test_version_ahead_of_the_clock),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_close_of_business_is_queued),
  };
  setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
  mg_log_set_level(MG_LOG_ERR);
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
