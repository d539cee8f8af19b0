/*
 * test_visit.c — cases (core/visit.h, visit.c, visit_json.c) against the
 * real pieces: a SQLite store in a temporary directory, a data key file,
 * and a pack service on a uv loop that pulled the mini fixture pack from
 * an SSH-signed git repository (the approach of test_pack_service.c).
 *
 * Covered: creating and finding a case (id, continuation token with and
 * without "MG1:", procedure number), answers and their refusals, manual
 * procedure decisions, sealed notes and personal data (nothing in clear in
 * the database files, tampering refused), support measures and masking
 * with the supervisor's unmask and its audit row, search by kana and birth
 * date, and housekeeping (close of business, retention).  The audit chain
 * is verified at the end.
 *
 * The tests share one box (group setup) and run in order; the last one
 * purges everything the others created.
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
#include "pack.h"
#include "pack_service.h"
#include "store.h"
#include "visit.h"

/* ---- the box ---------------------------------------------------------- */

static struct {
  char dir[64];
  char commit[41];
  uv_loop_t loop;
  struct mg_config *pcfg; /* the pack service's (parsed) */
  struct mg_config vcfg;  /* the visits' (filled by hand) */
  struct mg_pack_service *ps;
  struct mg_store *st;
  struct mg_key key;
  struct mg_visits *vs;
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

static void commit(const char *msg, char out[41]) {
  sh("cd %s/repo && git add -A && git -c gpg.format=ssh -c user.signingkey=%s/key.pub "
     "-c user.name=t -c user.email=t@example.invalid commit -q -S -m '%s'",
     F.dir, F.dir, msg);
  snprintf(cmd, sizeof(cmd), "git -C %s/repo rev-parse HEAD", F.dir);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  assert_non_null(fgets(out, 41, p));
  pclose(p);
}

static int done_rc, done_calls;
static void on_done(void *ud, int rc, const char *json) {
  (void)ud;
  (void)json;
  done_rc = rc;
  done_calls++;
}

static int group_setup(void **state) {
  (void)state;
  char text[2048], path[256];
  struct mg_err err = {{0}};

  snprintf(F.dir, sizeof(F.dir), "/tmp/mg-test-visit-XXXXXX");
  assert_non_null(mkdtemp(F.dir));
  sh("ssh-keygen -q -t ed25519 -N '' -f %s/key", F.dir);
  sh("printf 'a@city namespaces=\"git\" %%s\\n' \"$(cut -d' ' -f1,2 %s/key.pub)\" "
     "> %s/signers", F.dir, F.dir);
  sh("git init -q -b main %s/repo && cp -r %s/tests/fixtures/packs/mini/. %s/repo/",
     F.dir, MG_TEST_SOURCE_DIR, F.dir);
  commit("one", F.commit);
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

  snprintf(path, sizeof(path), "%s/madoguchi.db", F.dir);
  if (mg_store_open(path, &F.st, &err) != 0)
    fail_msg("store: %s", err.msg);
  snprintf(path, sizeof(path), "%s/keys/data.key", F.dir);
  if (mg_key_load(path, &F.key, &err) != 0)
    fail_msg("key: %s", err.msg);

  F.vcfg.visit_retention = 86400000; /* 1 day */
  F.vcfg.visit_close_at = (char *)"";
  F.vcfg.visit_search_days = 7;
  F.vcfg.visit_unmask_for = 30 * 60000; /* 30 min */
  assert_int_equal(mg_visits_create(F.st, &F.key, F.ps, &F.vcfg, &F.vs), 0);
  return 0;
}

static int group_teardown(void **state) {
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

/* ---- helpers ---------------------------------------------------------- */

static const struct mg_visit_actor A = {"staff-a", "shimin-1", MG_ROLE_STAFF};
static const struct mg_visit_actor B = {"staff-b", "hoken-1", MG_ROLE_STAFF};
static const struct mg_visit_actor SB = {"super-b", "hoken-1",
                                         MG_ROLE_SUPERVISOR};
static const struct mg_visit_actor C = {"staff-c", "kaigo-1", MG_ROLE_STAFF};

static const struct mg_date FILING = {2024, 6, 10};
#define ADDRESS "山口県周南市岐山通1丁目1番地"

static struct mg_visit_person P(const char *name, const char *kana,
                                const char *address, int y, int m, int d) {
  struct mg_visit_person p = {(char *)name, (char *)kana, (char *)address,
                              {y, m, d}, 0};
  return p;
}

/* A new tennyu case at A's counter; returns the loaded case. */
static struct mg_visit *new_case(const struct mg_visit_person *people,
                                 size_t n, char token[64]) {
  struct mg_visit *v = NULL;
  struct mg_err err = {{0}};
  char tok[64];
  int rc = mg_visit_new(F.vs, &A, "tennyu", &FILING, people, n, 0, 0, &v,
                        token ? token : tok, &err);
  if (rc)
    fail_msg("mg_visit_new: %d %s", rc, err.msg);
  assert_non_null(v);
  return v;
}

static struct mg_visit *get(const struct mg_visit_actor *a, const char *id) {
  struct mg_visit *v = NULL;
  struct mg_err err = {{0}};
  int rc = mg_visit_get(F.vs, a, id, &v, &err);
  if (rc)
    fail_msg("mg_visit_get %s: %d %s", id, rc, err.msg);
  return v;
}

/* The case as the API shows it to `a`, parsed. */
static struct mg_json *state_json(const struct mg_visit_actor *a,
                                  const char *id) {
  struct mg_buf b;
  struct mg_jw w;
  struct mg_err err = {{0}};
  struct mg_json *doc = NULL;
  struct mg_visit *v = get(a, id);
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  int rc = mg_visit_state_json(F.vs, v, a, &w, &err);
  if (rc)
    fail_msg("state: %d %s", rc, err.msg);
  assert_false(w.bad);
  assert_int_equal(mg_json_parse(b.data, b.len, NULL, &doc, NULL), 0);
  mg_buf_free(&b);
  mg_visit_free(v);
  return doc;
}

static int64_t jint(const struct mg_json *o, const char *k) {
  int64_t v = -999;
  assert_int_equal(mg_json_get_int(o, k, &v), 0);
  return v;
}

/* A procedure of the state JSON, or NULL. */
static const struct mg_json *jproc(const struct mg_json *doc, const char *id) {
  const struct mg_json *a = mg_json_get(doc, "procedures");
  assert_non_null(a);
  for (size_t i = 0; i < a->u.arr.n; i++) {
    const char *x = mg_json_get_str(a->u.arr.items[i], "id");
    if (x && strcmp(x, id) == 0)
      return a->u.arr.items[i];
  }
  return NULL;
}

/* The guide's source of a procedure in the case (-1: not listed). */
static int source_of(const char *id, const char *procedure) {
  struct mg_visit *v = get(&A, id);
  struct mg_pack_use *u = mg_visits_pack(F.vs, v);
  struct mg_guide_input in;
  struct mg_guide_state gs;
  struct mg_date births[MG_GUIDE_MAX_PEOPLE];
  int src = -1;
  assert_non_null(u);
  assert_int_equal(mg_visit_guide(v, mg_pack_use_model(u), &in, births, &gs), 0);
  for (size_t i = 0; i < gs.n_procs; i++)
    if (strcmp(gs.procs[i].p->id, procedure) == 0)
      src = (int)gs.procs[i].source;
  mg_guide_state_free(&gs);
  mg_visits_pack_release(F.vs, u);
  mg_visit_free(v);
  return src;
}

/* The audit rows of a case as parsed JSON (newest first). */
static struct mg_json *audit_of(const char *id) {
  char obj[64];
  struct mg_buf b;
  struct mg_jw w;
  struct mg_json *doc = NULL;
  snprintf(obj, sizeof(obj), "visit:%s", id);
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  assert_int_equal(mg_audit_list_json(F.st, obj, 1000, &w), 0);
  assert_int_equal(mg_json_parse(b.data, b.len, NULL, &doc, NULL), 0);
  mg_buf_free(&b);
  assert_int_equal(doc->type, MG_JSON_ARRAY);
  return doc;
}

static size_t audit_count(const char *id) {
  struct mg_json *doc = audit_of(id);
  size_t n = doc->u.arr.n;
  mg_json_free(doc);
  return n;
}

static int64_t sql_int(const char *sql) {
  sqlite3_stmt *s = NULL;
  int64_t v;
  assert_int_equal(sqlite3_prepare_v2(mg_store_db(F.st), sql, -1, &s, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(s), SQLITE_ROW);
  v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  return v;
}

/* Does `needle` occur in the database or its WAL? */
static int in_db_files(const char *needle) {
  static const char *const sfx[] = {"", "-wal", "-journal"};
  int found = 0;
  for (size_t i = 0; i < 3 && !found; i++) {
    char path[256];
    snprintf(path, sizeof(path), "%s/madoguchi.db%s", F.dir, sfx[i]);
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

/* Search; the result JSON in a static buffer. */
static int search(const char *kana, const char *bd, const char *number,
                  char *out, size_t len) {
  struct mg_buf b;
  struct mg_jw w;
  struct mg_err err = {{0}};
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  int rc = mg_visit_search(F.vs, &B, kana, bd, number, &w, &err);
  snprintf(out, len, "%s", rc == 0 && b.data ? b.data : "");
  mg_buf_free(&b);
  return rc;
}

/* How many results, and whether `id` is among them. */
static size_t hits(const char *json, const char *id, int *has) {
  struct mg_json *doc = NULL;
  assert_int_equal(mg_json_parse(json, strlen(json), NULL, &doc, NULL), 0);
  assert_int_equal(doc->type, MG_JSON_ARRAY);
  size_t n = doc->u.arr.n;
  *has = 0;
  for (size_t i = 0; i < n; i++) {
    const char *x = mg_json_get_str(doc->u.arr.items[i], "id");
    if (x && strcmp(x, id) == 0)
      *has = 1;
  }
  mg_json_free(doc);
  return n;
}

/* Overwrite a blob column of one row (the test plays an attacker with
 * write access to the database file but not the key). */
static void set_blob(const char *sql, const void *blob, size_t len,
                     const char *id) {
  sqlite3_stmt *s = NULL;
  assert_int_equal(sqlite3_prepare_v2(mg_store_db(F.st), sql, -1, &s, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_bind_blob(s, 1, blob, (int)len, SQLITE_TRANSIENT),
                   SQLITE_OK);
  assert_int_equal(sqlite3_bind_text(s, 2, id, -1, SQLITE_TRANSIENT),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(s), SQLITE_DONE);
  assert_int_equal(sqlite3_changes(mg_store_db(F.st)), 1);
  sqlite3_finalize(s);
}

/* Read a blob column (malloc'd). */
static unsigned char *get_blob(const char *sql, const char *id, size_t *len) {
  sqlite3_stmt *s = NULL;
  assert_int_equal(sqlite3_prepare_v2(mg_store_db(F.st), sql, -1, &s, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(s), SQLITE_ROW);
  *len = (size_t)sqlite3_column_bytes(s, 0);
  unsigned char *b = malloc(*len ? *len : 1);
  assert_non_null(b);
  memcpy(b, sqlite3_column_blob(s, 0), *len);
  sqlite3_finalize(s);
  return b;
}

/* ---- creating and finding --------------------------------------------- */

static void test_new_and_lookup(void **state) {
  (void)state;
  struct mg_visit_person people[3] = {
      P("山田 太郎", "ヤマダ タロウ", ADDRESS, 1980, 5, 5),
      P("山田 花子", "ヤマダ ハナコ", ADDRESS, 2015, 7, 7),
      {NULL, NULL, NULL, {0, 0, 0}, 0}, /* nothing known yet */
  };
  struct mg_visit *v = NULL, *w = NULL;
  struct mg_err err = {{0}};
  char token[64], buf[128];
  int rc = mg_visit_new(F.vs, &A, "tennyu", &FILING, people, 3, 1, 0, &v,
                        token, &err);
  if (rc)
    fail_msg("new: %s", err.msg);
  assert_int_equal(strlen(v->id), 32);
  assert_int_equal(strspn(v->id, "0123456789abcdef"), 32);
  assert_int_equal(strlen(v->number), 8);
  assert_true(mg_luhn_ok(v->number));
  assert_int_not_equal(v->number[0], '0');
  assert_int_equal(strlen(token), 43);
  assert_string_equal(v->token, token);
  assert_string_equal(v->life_event, "tennyu");
  assert_string_equal(v->pack_commit, F.commit);
  assert_string_equal(v->counter, "shimin-1");
  assert_string_equal(v->created_by, "staff-a");
  assert_string_equal(v->filing_date, "2024-06-10");
  assert_string_equal(v->status, "open");
  assert_string_equal(v->closed_at, "");
  assert_string_equal(v->support_counter, "");
  assert_int_equal(v->has_mynumber_card, 1);
  assert_int_equal(v->foreign_resident, 0);
  assert_string_equal(v->free_text, "");
  assert_int_equal(v->n_answers, 0);
  assert_int_equal(v->n_manual, 0);
  assert_int_equal(v->n_notes, 0);

  /* the round trip through the database */
  w = get(&B, v->id);
  assert_string_equal(w->id, v->id);
  assert_string_equal(w->number, v->number);
  assert_string_equal(w->token, token);
  assert_int_equal(w->n_people, 3);
  assert_string_equal(w->people[0].name, "山田 太郎");
  assert_string_equal(w->people[0].kana, "ヤマダ タロウ");
  assert_string_equal(w->people[0].address, ADDRESS);
  assert_int_equal(mg_date_cmp(&w->people[0].birth, &people[0].birth), 0);
  assert_string_equal(w->people[1].name, "山田 花子");
  assert_int_equal(w->people[1].birth.y, 2015);
  assert_int_equal(w->people[1].birth.m, 7);
  assert_int_equal(w->people[1].birth.d, 7);
  assert_string_equal(w->people[2].name, "");
  assert_string_equal(w->people[2].kana, "");
  assert_string_equal(w->people[2].address, "");
  assert_int_equal(w->people[2].birth.y, 0);
  assert_int_equal(w->people[0].support, 0);
  mg_visit_free(w);

  /* the continuation token, with and without the QR code's prefix */
  assert_int_equal(mg_visit_by_token(F.vs, &B, token, &w, &err), 0);
  assert_string_equal(w->id, v->id);
  mg_visit_free(w);
  snprintf(buf, sizeof(buf), "MG1:%s", token);
  assert_int_equal(mg_visit_by_token(F.vs, &B, buf, &w, &err), 0);
  assert_string_equal(w->id, v->id);
  mg_visit_free(w);
  /* only its hash is stored */
  snprintf(buf, sizeof(buf), "SELECT count(*) FROM visits WHERE token_hash = '%s'",
           token);
  assert_int_equal(sql_int(buf), 0);
  w = (struct mg_visit *)1;
  assert_int_equal(mg_visit_by_token(F.vs, &B, "MG1:short", &w, &err), -EINVAL);
  assert_null(w);
  memset(buf, 'A', 43);
  buf[43] = 0;
  assert_int_equal(mg_visit_by_token(F.vs, &B, buf, &w, &err), -ENOENT);
  assert_null(w);

  /* the procedure number as typed: 1234-5678, with spaces */
  snprintf(buf, sizeof(buf), "%.4s-%.4s", v->number, v->number + 4);
  assert_int_equal(mg_visit_by_number(F.vs, &B, buf, &w, &err), 0);
  assert_string_equal(w->id, v->id);
  mg_visit_free(w);
  snprintf(buf, sizeof(buf), " %.4s %.4s ", v->number, v->number + 4);
  assert_int_equal(mg_visit_by_number(F.vs, &B, buf, &w, &err), 0);
  assert_string_equal(w->id, v->id);
  mg_visit_free(w);
  /* one digit mistyped: the check digit catches it */
  snprintf(buf, sizeof(buf), "%s", v->number);
  buf[7] = (char)('0' + (buf[7] - '0' + 1) % 10);
  w = (struct mg_visit *)1;
  assert_int_equal(mg_visit_by_number(F.vs, &B, buf, &w, &err), -EINVAL);
  assert_null(w);
  snprintf(buf, sizeof(buf), "%s", v->number);
  buf[2] = (char)('0' + (buf[2] - '0' + 5) % 10);
  assert_int_equal(mg_visit_by_number(F.vs, &B, buf, &w, &err), -EINVAL);
  /* a valid number no case has */
  snprintf(buf, sizeof(buf), "%.7s", v->number);
  buf[0] = buf[0] == '9' ? '1' : (char)(buf[0] + 1);
  buf[7] = mg_luhn_digit(buf, 7);
  buf[8] = 0;
  assert_true(mg_luhn_ok(buf));
  assert_int_equal(mg_visit_by_number(F.vs, &B, buf, &w, &err), -ENOENT);
  assert_null(w);
  assert_int_equal(mg_visit_by_number(F.vs, &B, "1234567", &w, &err), -EINVAL);
  assert_int_equal(mg_visit_by_number(F.vs, &B, "123456789", &w, &err), -EINVAL);

  /* ids */
  assert_int_equal(mg_visit_get(F.vs, &B, "00000000000000000000000000000000",
                                &w, &err), -ENOENT);
  assert_null(w);
  assert_int_equal(mg_visit_get(F.vs, &B, "x", &w, &err), -ENOENT);

  /* refusals of mg_visit_new */
  assert_int_equal(mg_visit_new(F.vs, &A, "kekkon", &FILING, people, 1, 0, 0,
                                &w, token, &err), -ENOENT);
  assert_null(w);
  /* shibou is offered at shimin-1 and hoken-1 only */
  assert_int_equal(mg_visit_new(F.vs, &C, "shibou", &FILING, people, 1, 0, 0,
                                &w, token, &err), -EINVAL);
  assert_null(w);
  struct mg_visit_person many[MG_GUIDE_MAX_PEOPLE + 1];
  for (size_t i = 0; i < MG_GUIDE_MAX_PEOPLE + 1; i++)
    many[i] = people[0];
  assert_int_equal(mg_visit_new(F.vs, &A, "tennyu", &FILING, many,
                                MG_GUIDE_MAX_PEOPLE + 1, 0, 0, &w, token,
                                &err), -EINVAL);
  assert_null(w);
  mg_visit_free(v);
}

/* ---- answers ---------------------------------------------------------- */

/* mini tennyu: kokuho_other; kokuho_family (not kokuho_other); school
 * (school_children > 0 and ...), one adult: school is never asked. */
static void test_answers(void **state) {
  (void)state;
  struct mg_visit_person p = P("佐藤 一郎", "サトウ イチロウ", ADDRESS, 1980, 5, 5);
  struct mg_visit *v = new_case(&p, 1, NULL), *w;
  struct mg_err err = {{0}};
  struct mg_json *doc;
  char id[33];
  snprintf(id, sizeof(id), "%s", v->id);
  mg_visit_free(v);

  assert_int_equal(mg_visit_answer(F.vs, &A, id, "kokuho_other", 1, &err), 0);
  size_t n_audit = audit_count(id);

  /* unknown question; a question of another life event; not asked now */
  assert_int_equal(mg_visit_answer(F.vs, &A, id, "nope", 1, &err), -ENOENT);
  assert_int_equal(mg_visit_answer(F.vs, &A, id, "shibou_kokuho", 1, &err),
                   -ENOENT);
  assert_int_equal(mg_visit_answer(F.vs, &A, id, "kokuho_family", 1, &err),
                   -EINVAL);
  assert_int_equal(mg_visit_answer(F.vs, &A, id, "school", 1, &err), -EINVAL);
  w = get(&A, id);
  assert_int_equal(w->n_answers, 1); /* unchanged */
  assert_string_equal(w->answers[0].question, "kokuho_other");
  assert_int_equal(w->answers[0].yes, 1);
  mg_visit_free(w);
  assert_int_equal(audit_count(id), n_audit); /* nothing audited either */

  /* re-answer: kokuho_family is asked now */
  assert_int_equal(mg_visit_answer(F.vs, &B, id, "kokuho_other", 0, &err), 0);
  assert_int_equal(mg_visit_answer(F.vs, &B, id, "kokuho_family", 1, &err), 0);
  doc = state_json(&A, id);
  const struct mg_json *pr = mg_json_get(doc, "progress");
  assert_int_equal(jint(pr, "answered"), 2);
  assert_int_equal(jint(pr, "total"), 2);
  assert_int_equal(mg_json_get_bool(pr, "complete"), 1);
  assert_int_equal(mg_json_get(doc, "next_question")->type, MG_JSON_NULL);
  assert_non_null(jproc(doc, "kokuho_kanyu"));
  assert_non_null(jproc(doc, "tennyu_todoke"));
  assert_null(jproc(doc, "gakko"));
  mg_json_free(doc);

  /* back to yes: kokuho_family's answer is kept but no longer counts */
  assert_int_equal(mg_visit_answer(F.vs, &A, id, "kokuho_other", 1, &err), 0);
  w = get(&A, id);
  assert_int_equal(w->n_answers, 2);
  mg_visit_free(w);
  doc = state_json(&A, id);
  pr = mg_json_get(doc, "progress");
  assert_int_equal(jint(pr, "answered"), 1);
  assert_int_equal(jint(pr, "total"), 1);
  const struct mg_json *ans = mg_json_get(doc, "answered");
  assert_int_equal(ans->u.arr.n, 1);
  assert_string_equal(mg_json_get_str(ans->u.arr.items[0], "id"),
                      "kokuho_other");
  assert_string_equal(mg_json_get_str(ans->u.arr.items[0], "answer"), "yes");
  assert_null(jproc(doc, "kokuho_kanyu"));
  mg_json_free(doc);

  /* the audit rows name the question, never the resident's answer */
  struct mg_json *au = audit_of(id);
  size_t n_ans = 0;
  for (size_t i = 0; i < au->u.arr.n; i++) {
    const struct mg_json *r = au->u.arr.items[i];
    if (strcmp(mg_json_get_str(r, "action"), "visit.answer") != 0)
      continue;
    n_ans++;
    const char *d = mg_json_get_str(r, "detail");
    if (strcmp(d, "kokuho_other") != 0 && strcmp(d, "kokuho_family") != 0)
      fail_msg("visit.answer audit detail \"%s\"", d);
  }
  mg_json_free(au);
  assert_int_equal(n_ans, 4);

  /* a closed case takes no more answers */
  assert_int_equal(mg_visit_close(F.vs, &A, id, &err), 0);
  assert_int_equal(mg_visit_answer(F.vs, &A, id, "kokuho_other", 0, &err),
                   -ESTALE);
  assert_int_equal(mg_visit_close(F.vs, &A, id, &err), -ESTALE);
  w = get(&A, id);
  assert_string_equal(w->status, "closed");
  assert_int_not_equal(w->closed_at[0], 0);
  assert_int_equal(w->answers[0].yes + w->answers[1].yes, 2);
  mg_visit_free(w);
}

/* ---- manual decisions ------------------------------------------------- */

static void test_manual(void **state) {
  (void)state;
  struct mg_visit_person p = P("鈴木 次郎", "スズキ ジロウ", ADDRESS, 1970, 1, 1);
  struct mg_visit *v = new_case(&p, 1, NULL), *w;
  struct mg_err err = {{0}};
  struct mg_json *doc;
  char id[33];
  snprintf(id, sizeof(id), "%s", v->id);
  mg_visit_free(v);

  assert_int_equal(source_of(id, "tennyu_todoke"), MG_GUIDE_AUTO);
  assert_int_equal(source_of(id, "kokuho_soushitsu"), -1); /* shibou's */

  assert_int_equal(mg_visit_manual(F.vs, &A, id, "kokuho_soushitsu", 1, &err), 0);
  assert_int_equal(mg_visit_manual(F.vs, &B, id, "tennyu_todoke", 0, &err), 0);
  assert_int_equal(source_of(id, "kokuho_soushitsu"), MG_GUIDE_ADDED);
  assert_int_equal(source_of(id, "tennyu_todoke"), MG_GUIDE_REMOVED);
  doc = state_json(&A, id);
  assert_string_equal(mg_json_get_str(jproc(doc, "kokuho_soushitsu"), "source"),
                      "added");
  assert_string_equal(mg_json_get_str(jproc(doc, "tennyu_todoke"), "source"),
                      "removed");
  assert_string_equal(mg_json_get_str(jproc(doc, "kokuho_kanyu"), "source"),
                      "auto");
  mg_json_free(doc);

  /* a removed procedure takes no status; an unknown one is refused and
   * changes nothing */
  assert_int_equal(mg_visit_set_status(F.vs, &A, id, "tennyu_todoke", "done",
                                       &err), -ENOENT);
  assert_int_equal(mg_visit_manual(F.vs, &A, id, "nope", 1, &err), -ENOENT);
  w = get(&A, id);
  assert_int_equal(w->n_manual, 2);
  mg_visit_free(w);

  /* undo both */
  assert_int_equal(mg_visit_manual(F.vs, &A, id, "tennyu_todoke", -1, &err), 0);
  assert_int_equal(mg_visit_manual(F.vs, &A, id, "kokuho_soushitsu", -1, &err), 0);
  assert_int_equal(source_of(id, "tennyu_todoke"), MG_GUIDE_AUTO);
  assert_int_equal(source_of(id, "kokuho_soushitsu"), -1);
  w = get(&A, id);
  assert_int_equal(w->n_manual, 0);
  mg_visit_free(w);

  /* a status at the procedure's own counter is what the resident is told */
  assert_int_equal(mg_visit_set_status(F.vs, &A, id, "tennyu_todoke", "done",
                                       &err), 0);
  assert_int_equal(mg_visit_set_status(F.vs, &A, id, "tennyu_todoke", "bogus",
                                       &err), -EINVAL);
  doc = state_json(&B, id);
  assert_string_equal(mg_json_get_str(jproc(doc, "tennyu_todoke"), "status"),
                      "done");
  mg_json_free(doc);
}

/* ---- sealed data ------------------------------------------------------ */

static void test_notes_sealed(void **state) {
  (void)state;
  struct mg_visit_person p =
      P("秘密 花子QX", "ヒミツ ハナコ", "周南市秘密町9-9-9ADDRQX", 1985, 2, 3);
  char token[64];
  struct mg_visit *v = new_case(&p, 1, token), *w = NULL;
  struct mg_err err = {{0}};
  char id[33];
  static const char note[] = "別室で相談 NOTE-XYZZY-4711";
  snprintf(id, sizeof(id), "%s", v->id);
  mg_visit_free(v);

  assert_int_equal(mg_visit_add_note(F.vs, &A, id, note, &err), 0);
  assert_int_equal(mg_visit_add_note(F.vs, &A, id, "", &err), -EINVAL);
  char *big = malloc(3 * (MG_VISIT_MAX_TEXT + 1) + 1);
  big[0] = 0;
  for (int i = 0; i < MG_VISIT_MAX_TEXT + 1; i++)
    strcat(big, "あ");
  assert_int_equal(mg_visit_add_note(F.vs, &A, id, big, &err), -EINVAL);
  big[3 * MG_VISIT_MAX_TEXT] = 0; /* exactly the limit, in characters */
  assert_int_equal(mg_visit_add_note(F.vs, &B, id, big, &err), 0);
  free(big);
  assert_int_equal(mg_visit_set_free_text(F.vs, &A, id, "SLIP-TEXT-QWERTY-99",
                                          &err), 0);
  w = get(&A, id);
  assert_int_equal(w->n_notes, 2);
  assert_string_equal(w->notes[0].text, note);
  assert_string_equal(w->notes[0].author, "staff-a");
  assert_string_equal(w->notes[0].counter, "shimin-1");
  assert_int_equal(strlen(w->notes[1].text), 3 * MG_VISIT_MAX_TEXT);
  assert_string_equal(w->notes[1].counter, "hoken-1");
  assert_string_equal(w->free_text, "SLIP-TEXT-QWERTY-99");
  assert_string_equal(w->people[0].name, "秘密 花子QX"); /* kept */
  assert_string_equal(w->token, token);
  mg_visit_free(w);

  /* nothing personal in clear in the database files */
  assert_false(in_db_files("NOTE-XYZZY-4711"));
  assert_false(in_db_files("SLIP-TEXT-QWERTY-99"));
  assert_false(in_db_files("秘密 花子QX"));
  assert_false(in_db_files("ヒミツ ハナコ"));
  assert_false(in_db_files("ADDRQX"));
  assert_false(in_db_files("1985-02-03"));
  assert_false(in_db_files(token));
  assert_true(in_db_files(id)); /* the check finds what is there */

  /* one byte of the first note's ciphertext flipped: the case is refused,
   * not shown with a garbled note */
  size_t len;
  unsigned char *b = get_blob("SELECT body FROM visit_notes WHERE visit_id = "
                              "?1 ORDER BY id LIMIT 1", id, &len);
  assert_true(len > MG_SEAL_OVERHEAD);
  b[20] ^= 0x01;
  set_blob("UPDATE visit_notes SET body = ?1 WHERE id = (SELECT min(id) FROM "
           "visit_notes WHERE visit_id = ?2)", b, len, id);
  w = (struct mg_visit *)1;
  assert_int_equal(mg_visit_get(F.vs, &A, id, &w, &err), -EIO);
  assert_null(w);
  assert_int_equal(mg_visit_add_note(F.vs, &A, id, "more", &err), -EIO);
  b[20] ^= 0x01; /* put back: readable again */
  set_blob("UPDATE visit_notes SET body = ?1 WHERE id = (SELECT min(id) FROM "
           "visit_notes WHERE visit_id = ?2)", b, len, id);
  w = get(&A, id);
  assert_string_equal(w->notes[0].text, note);
  mg_visit_free(w);
  free(b);

  /* the personal blob tampered with, then truncated */
  b = get_blob("SELECT personal FROM visits WHERE id = ?1", id, &len);
  b[len - 1] ^= 0x80; /* in the tag */
  set_blob("UPDATE visits SET personal = ?1 WHERE id = ?2", b, len, id);
  assert_int_equal(mg_visit_get(F.vs, &A, id, &w, &err), -EIO);
  assert_null(w);
  b[len - 1] ^= 0x80;
  set_blob("UPDATE visits SET personal = ?1 WHERE id = ?2", b, 5, id);
  assert_int_equal(mg_visit_get(F.vs, &A, id, &w, &err), -EIO);
  set_blob("UPDATE visits SET personal = ?1 WHERE id = ?2", b, len, id);
  w = get(&A, id);
  mg_visit_free(w);

  /* a blob moved to another case does not open there (bound to the id) */
  struct mg_visit_person q = P("他人", "タニン", "別の住所", 1990, 1, 1);
  struct mg_visit *o = new_case(&q, 1, NULL);
  char oid[33];
  snprintf(oid, sizeof(oid), "%s", o->id);
  mg_visit_free(o);
  set_blob("UPDATE visits SET personal = ?1 WHERE id = ?2", b, len, oid);
  assert_int_equal(mg_visit_get(F.vs, &A, oid, &w, &err), -EIO);
  assert_null(w);
  free(b);
}

/*
 * Sealed blobs of one case are not interchangeable: the personal blob copied
 * into a note row must not open as a note (notes are bound to
 * "<case id>/note/<author>/<time>", the personal data to the case id), or
 * the whole personal JSON would show as note text at masked counters (C2).
 */
static void test_personal_blob_does_not_open_as_a_note(void **state) {
  (void)state;
  struct mg_visit_person p =
      P("支援 対象", "シエン タイショウ", "周南市隠れ町1-2-3HIDDEN", 1990, 4, 4);
  struct mg_visit *v = new_case(&p, 1, NULL), *w = NULL;
  struct mg_err err = {{0}};
  char id[33];
  size_t len;
  snprintf(id, sizeof(id), "%s", v->id);
  mg_visit_free(v);
  assert_int_equal(mg_visit_support(F.vs, &A, id, 0, 1, &err), 0);
  assert_int_equal(mg_visit_add_note(F.vs, &A, id, "a note", &err), 0);
  w = get(&B, id);
  assert_true(mg_visit_masked(w, &B, 0));
  mg_visit_free(w);

  unsigned char *b = get_blob("SELECT personal FROM visits WHERE id = ?1", id,
                              &len);
  set_blob("UPDATE visit_notes SET body = ?1 WHERE visit_id = ?2", b, len, id);
  free(b);
  w = NULL;
  int rc = mg_visit_get(F.vs, &B, id, &w, &err);
  if (rc == 0 && w->n_notes == 1 && strstr(w->notes[0].text, "HIDDEN")) {
    mg_visit_free(w);
    fail_msg("BUG: the personal blob opened as a note: counter hoken-1 "
             "(masked) reads the household's address in the note text");
  }
  mg_visit_free(w);
  assert_int_equal(rc, -EIO);
}

/* ---- support measures (C2) -------------------------------------------- */

static void test_support_and_unmask(void **state) {
  (void)state;
  struct mg_visit_person people[2] = {
      P("高橋 三郎", "タカハシ サブロウ", ADDRESS, 1975, 9, 9),
      P("高橋 葉子", "タカハシ ヨウコ", ADDRESS, 1977, 10, 10)};
  struct mg_visit *v = new_case(people, 2, NULL), *w;
  struct mg_err err = {{0}};
  struct mg_json *doc;
  char id[33];
  snprintf(id, sizeof(id), "%s", v->id);
  assert_false(mg_visit_masked(v, &B, 0)); /* nobody flagged yet */
  mg_visit_free(v);

  assert_int_equal(mg_visit_support(F.vs, &A, id, 2, 1, &err), -EINVAL);
  assert_int_equal(mg_visit_support(F.vs, &A, id, 1, 1, &err), 0);

  /* another counter: every address of the household is masked */
  w = get(&B, id);
  assert_string_equal(w->support_counter, "shimin-1");
  assert_int_equal(w->people[1].support, 1);
  assert_int_equal(w->people[0].support, 0);
  assert_string_equal(w->unmasked_until, "");
  assert_true(mg_visit_masked(w, &B, 0));
  assert_true(mg_visit_masked(w, &B, 1));
  assert_false(mg_visit_masked(w, &B, 2)); /* no such person */
  mg_visit_free(w);
  doc = state_json(&B, id);
  const struct mg_json *ps = mg_json_get(doc, "people");
  assert_int_equal(ps->u.arr.n, 2);
  for (size_t i = 0; i < 2; i++) {
    assert_int_equal(mg_json_get(ps->u.arr.items[i], "address")->type,
                     MG_JSON_NULL);
    assert_int_equal(mg_json_get_bool(ps->u.arr.items[i], "address_masked"), 1);
  }
  assert_int_equal(mg_json_get_bool(mg_json_get(doc, "support"), "masked_here"),
                   1);
  mg_json_free(doc);

  /* the flagging counter sees them */
  w = get(&A, id);
  assert_false(mg_visit_masked(w, &A, 0));
  assert_false(mg_visit_masked(w, &A, 1));
  mg_visit_free(w);
  doc = state_json(&A, id);
  ps = mg_json_get(doc, "people");
  assert_string_equal(mg_json_get_str(ps->u.arr.items[0], "address"), ADDRESS);
  assert_int_equal(mg_json_get_bool(ps->u.arr.items[1], "address_masked"), 0);
  mg_json_free(doc);

  /* the masked counter may not rewrite the people (it would write the
   * addresses back empty); the flagging counter may, and the flags stay by
   * position */
  struct mg_visit_person three[3] = {
      P("高橋 三郎", "タカハシ サブロウ", "", 1975, 9, 9),
      P("高橋 葉子", "タカハシ ヨウコ", "", 1977, 10, 10),
      P("高橋 空", "タカハシ ソラ", "", 2020, 1, 1)};
  assert_int_equal(mg_visit_set_people(F.vs, &B, id, three, 3, &err), -EPERM);
  w = get(&A, id);
  assert_int_equal(w->n_people, 2);
  assert_string_equal(w->people[1].address, ADDRESS);
  mg_visit_free(w);
  three[0].address = three[1].address = three[2].address = (char *)ADDRESS;
  assert_int_equal(mg_visit_set_people(F.vs, &A, id, three, 3, &err), 0);
  w = get(&B, id);
  assert_int_equal(w->n_people, 3);
  assert_int_equal(w->people[1].support, 1);
  assert_int_equal(w->people[2].support, 0);
  assert_true(mg_visit_masked(w, &B, 2)); /* the new person's too */
  assert_string_equal(w->support_counter, "shimin-1");
  mg_visit_free(w);

  /* the other counter cannot take the case over, nor lift the flag */
  assert_int_equal(mg_visit_support(F.vs, &B, id, 0, 1, &err), -EPERM);
  assert_int_equal(mg_visit_support(F.vs, &B, id, 1, 0, &err), -EPERM);
  assert_int_equal(mg_visit_support(F.vs, &A, id, 1, 0, &err), -EPERM);

  /* unmask: staff may not; a supervisor must say why */
  size_t n_audit = audit_count(id);
  assert_int_equal(mg_visit_unmask(F.vs, &B, id, "窓口で確認が必要なため", &err),
                   -EPERM);
  assert_int_equal(mg_visit_unmask(F.vs, &SB, id, "なし", &err), -EINVAL);
  assert_int_equal(audit_count(id), n_audit);
  static const char reason[] = "本人の申出により郵送先を確認するため";
  assert_int_equal(mg_visit_unmask(F.vs, &SB, id, reason, &err), 0);
  w = get(&SB, id);
  assert_int_not_equal(w->unmasked_until[0], 0);
  assert_false(mg_visit_masked(w, &SB, 0));
  mg_visit_free(w);
  w = get(&B, id); /* the same counter, another user */
  assert_false(mg_visit_masked(w, &B, 1));
  mg_visit_free(w);
  w = get(&C, id); /* another counter: still masked */
  assert_string_equal(w->unmasked_until, "");
  assert_true(mg_visit_masked(w, &C, 0));
  assert_true(mg_visit_masked(w, &C, 1));
  mg_visit_free(w);
  doc = state_json(&B, id);
  ps = mg_json_get(doc, "people");
  assert_string_equal(mg_json_get_str(ps->u.arr.items[1], "address"), ADDRESS);
  mg_json_free(doc);

  /* the audit row: who, where, why */
  doc = audit_of(id);
  int found = 0, flagged = 0;
  for (size_t i = 0; i < doc->u.arr.n; i++) {
    const struct mg_json *r = doc->u.arr.items[i];
    const char *act = mg_json_get_str(r, "action");
    if (act && strcmp(act, "visit.unmask") == 0) {
      found++;
      assert_string_equal(mg_json_get_str(r, "actor"), "super-b");
      assert_string_equal(mg_json_get_str(r, "counter"), "hoken-1");
      assert_string_equal(mg_json_get_str(r, "detail"), reason);
    }
    if (act && strcmp(act, "visit.support.on") == 0) {
      flagged++;
      assert_string_equal(mg_json_get_str(r, "counter"), "shimin-1");
    }
  }
  mg_json_free(doc);
  assert_int_equal(found, 1);
  assert_int_equal(flagged, 1);

  /* a supervisor lifts the flag: nobody is masked any more */
  assert_int_equal(mg_visit_support(F.vs, &SB, id, 1, 0, &err), 0);
  w = get(&C, id);
  assert_string_equal(w->support_counter, "");
  assert_false(mg_visit_masked(w, &C, 0));
  mg_visit_free(w);
}

/* ---- search ----------------------------------------------------------- */

static void test_search(void **state) {
  (void)state;
  struct mg_visit_person people[2] = {
      P("周南 みどり", "シュウナン ミドリ", ADDRESS, 1977, 3, 21),
      P("周南 翼", "シュウナン ツバサ", ADDRESS, 2012, 11, 30)};
  struct mg_visit *v = new_case(people, 2, NULL);
  struct mg_err err = {{0}};
  char id[33], number[16], out[65536];
  int has;
  snprintf(id, sizeof(id), "%s", v->id);
  snprintf(number, sizeof(number), "%.4s-%.4s", v->number, v->number + 4);
  mg_visit_free(v);

  static const char *const found[] = {
      "しゅうなんみどり",          /* hiragana */
      "ｼｭｳﾅﾝ ﾐﾄﾞﾘ",                /* half-width with dakuten */
      "しゅうなん　みどり",        /* U+3000 */
      "  シュウナン   ミドリ ",    /* spaces anywhere */
      "みどり",                    /* a part */
      "ｼｭｳﾅﾝﾂﾊﾞｻ",                 /* the second person */
  };
  for (size_t i = 0; i < sizeof(found) / sizeof(found[0]); i++) {
    assert_int_equal(search(found[i], NULL, NULL, out, sizeof(out)), 0);
    hits(out, id, &has);
    if (!has)
      fail_msg("kana \"%s\" did not find the case: %s", found[i], out);
  }
  assert_int_equal(search("しゅうなんみどろ", NULL, NULL, out, sizeof(out)), 0);
  assert_int_equal(hits(out, id, &has), 0);

  /* birth date, alone and with kana: both must match the same person */
  assert_int_equal(search(NULL, "1977-03-21", NULL, out, sizeof(out)), 0);
  hits(out, id, &has);
  assert_true(has);
  assert_int_equal(search(NULL, "1977-03-22", NULL, out, sizeof(out)), 0);
  hits(out, id, &has);
  assert_false(has);
  assert_int_equal(search("つばさ", "2012-11-30", NULL, out, sizeof(out)), 0);
  hits(out, id, &has);
  assert_true(has);
  assert_int_equal(search("みどり", "2012-11-30", NULL, out, sizeof(out)), 0);
  hits(out, id, &has);
  assert_false(has);

  /* the number as typed */
  assert_int_equal(search(NULL, NULL, number, out, sizeof(out)), 0);
  assert_int_equal(hits(out, id, &has), 1);
  assert_true(has);

  /* search never shows addresses */
  assert_int_equal(search("しゅうなん", NULL, NULL, out, sizeof(out)), 0);
  assert_null(strstr(out, "address"));
  assert_null(strstr(out, ADDRESS));
  assert_non_null(strstr(out, "\"birth_date\":\"1977-03-21\""));

  /* refusals */
  assert_int_equal(search(NULL, NULL, NULL, out, sizeof(out)), -EINVAL);
  assert_int_equal(search("", "", "", out, sizeof(out)), -EINVAL);
  assert_int_equal(search("　 ", NULL, NULL, out, sizeof(out)), -EINVAL);
  assert_int_equal(search(NULL, "1977-02-30", NULL, out, sizeof(out)), -EINVAL);
  number[8] = (char)('0' + (number[8] - '0' + 1) % 10);
  assert_int_equal(search(NULL, NULL, number, out, sizeof(out)), -EINVAL);
  (void)err;
}

/* ---- housekeeping ----------------------------------------------------- */

static void test_housekeeping(void **state) {
  (void)state;
  struct mg_visit_person p = P("最後 五郎", "サイゴ ゴロウ", ADDRESS, 1960, 6, 6);
  struct mg_visit *v = new_case(&p, 1, NULL), *w = NULL;
  struct mg_err err = {{0}};
  size_t closed = 99, purged = 99;
  char id[33], ca[8];
  time_t now = time(NULL);
  snprintf(id, sizeof(id), "%s", v->id);
  mg_visit_free(v);
  assert_int_equal(mg_visit_answer(F.vs, &A, id, "kokuho_other", 0, &err), 0);
  assert_int_equal(mg_visit_manual(F.vs, &A, id, "gakko", 1, &err), 0);
  assert_int_equal(mg_visit_add_note(F.vs, &A, id, "note", &err), 0);
  assert_int_equal(mg_visit_support(F.vs, &A, id, 0, 1, &err), 0);
  assert_int_equal(mg_visit_unmask(F.vs, &SB, id, "確認のため必要", &err), 0);

  int64_t n_open = sql_int("SELECT count(*) FROM visits WHERE status = 'open'");
  int64_t n_all = sql_int("SELECT count(*) FROM visits");
  assert_true(n_open >= 5);
  assert_true(n_all > n_open); /* test_answers closed one */

  /* close of business two hours ago: every case is younger, none closes */
  struct tm tm;
  time_t t = now - 7200;
  localtime_r(&t, &tm);
  snprintf(ca, sizeof(ca), "%02d:%02d", tm.tm_hour, tm.tm_min);
  F.vcfg.visit_close_at = ca;
  assert_int_equal(mg_visits_housekeeping(F.vs, now, &closed, &purged), 0);
  assert_int_equal(closed, 0);
  assert_int_equal(purged, 0);

  /* two days later: that close of business has passed since they opened */
  assert_int_equal(mg_visits_housekeeping(F.vs, now + 2 * 86400, &closed,
                                          &purged), 0);
  assert_int_equal(closed, (size_t)n_open);
  /* retention is a day: only the case test_answers closed (today) is past
   * it */
  assert_int_equal(purged, (size_t)(n_all - n_open));
  assert_int_equal(sql_int("SELECT count(*) FROM visits WHERE status = 'open'"), 0);
  w = get(&A, id);
  assert_string_equal(w->status, "closed");
  assert_int_not_equal(w->closed_at[0], 0);
  mg_visit_free(w);
  assert_int_equal(mg_visit_answer(F.vs, &A, id, "kokuho_other", 1, &err),
                   -ESTALE);
  assert_int_equal(mg_visit_add_note(F.vs, &A, id, "late", &err), -ESTALE);

  /* a day after that, past retention: every row of every case is gone */
  assert_int_equal(mg_visits_housekeeping(F.vs, now + 3 * 86400 + 3600,
                                          &closed, &purged), 0);
  assert_int_equal(closed, 0);
  assert_int_equal(purged, (size_t)n_open);
  static const char *const tables[] = {"visits", "visit_answers",
                                       "visit_manual", "visit_status",
                                       "visit_notes", "visit_unmask"};
  for (size_t i = 0; i < 6; i++) {
    char sql[64];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", tables[i]);
    if (sql_int(sql) != 0)
      fail_msg("%s still has rows after the purge", tables[i]);
  }
  w = (struct mg_visit *)1;
  assert_int_equal(mg_visit_get(F.vs, &A, id, &w, &err), -ENOENT);
  assert_null(w);

  /* retention 0: a case closed now is purged at the next housekeeping */
  F.vcfg.visit_retention = 0;
  F.vcfg.visit_close_at = (char *)"";
  v = new_case(&p, 1, NULL);
  snprintf(id, sizeof(id), "%s", v->id);
  mg_visit_free(v);
  assert_int_equal(mg_visits_housekeeping(F.vs, time(NULL), &closed, &purged), 0);
  assert_int_equal(closed, 0); /* no close_at: open cases stay */
  assert_int_equal(purged, 0);
  assert_int_equal(mg_visit_close(F.vs, &A, id, &err), 0);
  assert_int_equal(mg_visits_housekeeping(F.vs, time(NULL), &closed, &purged), 0);
  assert_int_equal(purged, 1);
  assert_int_equal(sql_int("SELECT count(*) FROM visits"), 0);
  F.vcfg.visit_retention = 86400000;

  /* the system's audit rows, and the whole chain intact */
  struct mg_buf b;
  struct mg_jw jw;
  mg_buf_init(&b);
  mg_jw_init(&jw, &b);
  assert_int_equal(mg_audit_list_json(F.st, "visits", 10, &jw), 0);
  assert_non_null(strstr(b.data, "at close of business"));
  assert_non_null(strstr(b.data, "past retention"));
  mg_buf_free(&b);
  int64_t rows = 0;
  int rc = mg_audit_verify(F.st, &rows, &err);
  if (rc)
    fail_msg("audit chain: %s", err.msg);
  assert_true(rows > 20);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_new_and_lookup),
      cmocka_unit_test(test_answers),
      cmocka_unit_test(test_manual),
      cmocka_unit_test(test_notes_sealed),
      cmocka_unit_test(test_personal_blob_does_not_open_as_a_note),
      cmocka_unit_test(test_support_and_unmask),
      cmocka_unit_test(test_search),
      cmocka_unit_test(test_housekeeping),
  };
  setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
  mg_log_set_level(MG_LOG_ERR);
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
