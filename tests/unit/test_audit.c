/*
 * test_audit.c — the hash-chained audit log (core/audit.h) against a real
 * database: the chain formula, the append-only triggers, tampering done
 * with the triggers dropped, and the newest-first listing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "audit.h"

struct fx {
  char dir[64];
  struct mg_store *st;
};

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof(*f));
  struct mg_err err = {{0}};
  char db[128];
  assert_non_null(f);
  snprintf(f->dir, sizeof(f->dir), "/tmp/mg-audit.XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(db, sizeof(db), "%s/madoguchi.db", f->dir);
  assert_int_equal(mg_store_open(db, &f->st, &err), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  char cmd[128];
  mg_store_close(f->st);
  snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

static const time_t NOW = 1712000000; /* 2024-04-01T19:33:20Z */

static sqlite3 *db_of(void **state) {
  return mg_store_db(((struct fx *)*state)->st);
}

static struct mg_store *st_of(void **state) {
  return ((struct fx *)*state)->st;
}

/* n rows: actor u<i>, object visit:<i % 2 ? a : b>, detail d<i> (i from 1) */
static void append_n(void **state, int n) {
  for (int i = 1; i <= n; i++) {
    char actor[16], detail[16];
    snprintf(actor, sizeof(actor), "u%d", i);
    snprintf(detail, sizeof(detail), "d%d", i);
    assert_int_equal(mg_audit_append(st_of(state), NOW + i, actor, "shimin-1",
                                     "visit.view", i % 2 ? "visit:a" : "visit:b",
                                     detail),
                     0);
  }
}

static void exec_ok(void **state, const char *sql) {
  char *msg = NULL;
  int rc = sqlite3_exec(db_of(state), sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK)
    fail_msg("%s: %s", sql, msg ? msg : "?");
  sqlite3_free(msg);
}

static void drop_triggers(void **state) {
  exec_ok(state, "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete");
}

/* verify must fail with exactly `want` after `rows` good rows. */
static void broken(void **state, const char *want, int64_t rows) {
  struct mg_err err = {{0}};
  int64_t got = -1;
  assert_int_equal(mg_audit_verify(st_of(state), &got, &err), -EBADMSG);
  assert_string_equal(err.msg, want);
  assert_int_equal(got, rows);
}

static void intact(void **state, int64_t rows) {
  struct mg_err err = {{0}};
  int64_t got = -1;
  assert_int_equal(mg_audit_verify(st_of(state), &got, &err), 0);
  assert_int_equal(got, rows);
}

static void sha256_hex(const char *s, char out[65]) {
  unsigned char md[32];
  unsigned int len = 0;
  assert_int_equal(EVP_Digest(s, strlen(s), md, &len, EVP_sha256(), NULL), 1);
  for (int i = 0; i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void column_of(void **state, const char *sql, char *out, size_t len) {
  sqlite3_stmt *s = NULL;
  assert_int_equal(sqlite3_prepare_v2(db_of(state), sql, -1, &s, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(s), SQLITE_ROW);
  snprintf(out, len, "%s", (const char *)sqlite3_column_text(s, 0));
  sqlite3_finalize(s);
}

/* ---------------------------------------------------------------------- */

static void test_empty(void **state) {
  struct mg_buf b;
  struct mg_jw w;
  intact(state, 0);
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  assert_int_equal(mg_audit_list_json(st_of(state), NULL, 10, &w), 0);
  assert_false(w.bad);
  assert_string_equal(b.data, "[]");
  mg_buf_free(&b);
}

static void test_chain_formula(void **state) {
  char text[512], want[65], got[65], prev[65], h1[65];
  append_n(state, 2);
  intact(state, 2);
  /* row 1, recomputed from the contract in audit.h */
  snprintf(text, sizeof(text), "%064d\n1\n2024-04-01T19:33:21Z\nu1\nshimin-1\n"
           "visit.view\nvisit:a\nd1", 0);
  sha256_hex(text, want);
  column_of(state, "SELECT hash FROM audit WHERE seq = 1", got, sizeof(got));
  assert_string_equal(got, want);
  column_of(state, "SELECT prev FROM audit WHERE seq = 1", prev, sizeof(prev));
  assert_string_equal(prev, "0000000000000000000000000000000000000000000000000000000000000000");
  memcpy(h1, got, sizeof(h1));
  column_of(state, "SELECT prev FROM audit WHERE seq = 2", prev, sizeof(prev));
  assert_string_equal(prev, h1);
  column_of(state, "SELECT at FROM audit WHERE seq = 2", got, sizeof(got));
  assert_string_equal(got, "2024-04-01T19:33:22Z");
}

static void test_refused_fields(void **state) {
  struct mg_store *st = st_of(state);
  assert_int_equal(mg_audit_append(st, NOW, "u\n1", "-", "a", "o", ""), -EINVAL);
  assert_int_equal(mg_audit_append(st, NOW, "u", "-", "a", NULL, ""), -EINVAL);
  /* detail is last in the hash: it may hold newlines, or be NULL ("") */
  assert_int_equal(mg_audit_append(st, NOW, "-", "-", "a", "o", "two\nlines"), 0);
  assert_int_equal(mg_audit_append(st, NOW, "-", "-", "a", "o", NULL), 0);
  intact(state, 2);
}

static void test_triggers(void **state) {
  sqlite3 *db = db_of(state);
  append_n(state, 3);
  assert_int_not_equal(sqlite3_exec(db, "UPDATE audit SET detail = 'x' WHERE seq = 2",
                                    NULL, NULL, NULL),
                       SQLITE_OK);
  assert_non_null(strstr(sqlite3_errmsg(db), "append-only"));
  assert_int_not_equal(sqlite3_exec(db, "DELETE FROM audit WHERE seq = 3", NULL, NULL,
                                    NULL),
                       SQLITE_OK);
  assert_non_null(strstr(sqlite3_errmsg(db), "append-only"));
  assert_int_not_equal(sqlite3_exec(db, "DELETE FROM audit", NULL, NULL, NULL),
                       SQLITE_OK);
  intact(state, 3);
}

static void test_tamper_detail(void **state) {
  append_n(state, 4);
  drop_triggers(state);
  exec_ok(state, "UPDATE audit SET detail = 'nothing happened' WHERE seq = 2");
  broken(state, "row 2: hash does not match its content", 1);
}

static void test_tamper_hash(void **state) {
  append_n(state, 4);
  drop_triggers(state);
  exec_ok(state, "UPDATE audit SET hash = replace(hash, substr(hash, 1, 1), 'x') "
                 "WHERE seq = 3");
  broken(state, "row 3: hash does not match its content", 2);
}

/* Edit a row and give it a matching hash: the next row's prev gives it away. */
static void test_tamper_rehashed(void **state) {
  char text[512], prev[65], hash[65];
  append_n(state, 4);
  drop_triggers(state);
  column_of(state, "SELECT prev FROM audit WHERE seq = 2", prev, sizeof(prev));
  snprintf(text, sizeof(text), "%s\n2\n2024-04-01T19:33:22Z\nu2\nshimin-1\n"
           "visit.view\nvisit:b\nforged", prev);
  sha256_hex(text, hash);
  snprintf(text, sizeof(text),
           "UPDATE audit SET detail = 'forged', hash = '%s' WHERE seq = 2", hash);
  exec_ok(state, text);
  broken(state, "row 3: prev is not the hash of row 2", 2);
}

static void test_missing_rows(void **state) {
  append_n(state, 6);
  drop_triggers(state);
  exec_ok(state, "DELETE FROM audit WHERE seq = 3");
  broken(state, "row 3 is missing", 2);
  exec_ok(state, "DELETE FROM audit WHERE seq IN (4, 5)");
  broken(state, "rows 3..5 are missing", 2);
}

static void test_missing_first(void **state) {
  append_n(state, 3);
  drop_triggers(state);
  exec_ok(state, "DELETE FROM audit WHERE seq = 1");
  broken(state, "row 1 is missing", 0);
}

/* The limit of the chain alone (audit.c): a cut tail verifies. */
static void test_missing_tail_not_seen(void **state) {
  append_n(state, 3);
  drop_triggers(state);
  exec_ok(state, "DELETE FROM audit WHERE seq = 3");
  intact(state, 2);
  /* and the next append continues from what is there */
  assert_int_equal(mg_audit_append(st_of(state), NOW, "-", "-", "a", "o", ""), 0);
  intact(state, 3);
}

static void test_inside_transaction(void **state) {
  exec_ok(state, "BEGIN IMMEDIATE");
  assert_int_equal(mg_audit_append(st_of(state), NOW, "-", "-", "a", "o", ""), 0);
  exec_ok(state, "ROLLBACK");
  intact(state, 0);
  exec_ok(state, "BEGIN IMMEDIATE");
  append_n(state, 2);
  exec_ok(state, "COMMIT");
  intact(state, 2);
  assert_int_not_equal(sqlite3_get_autocommit(db_of(state)), 0);
}

static struct mg_json *list(void **state, const char *object, int limit) {
  struct mg_buf b;
  struct mg_jw w;
  struct mg_json *doc = NULL;
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  assert_int_equal(mg_audit_list_json(st_of(state), object, limit, &w), 0);
  assert_false(w.bad);
  assert_int_equal(mg_json_parse(b.data, b.len, NULL, &doc, NULL), 0);
  mg_buf_free(&b);
  assert_int_equal(doc->type, MG_JSON_ARRAY);
  return doc;
}

static int64_t seq_at(const struct mg_json *doc, size_t i) {
  int64_t v = -1;
  assert_true(i < doc->u.arr.n);
  assert_int_equal(mg_json_get_int(doc->u.arr.items[i], "seq", &v), 0);
  return v;
}

static void test_list(void **state) {
  struct mg_json *doc;
  append_n(state, 5);

  doc = list(state, NULL, 10);
  assert_int_equal(doc->u.arr.n, 5);
  for (size_t i = 0; i < 5; i++)
    assert_int_equal(seq_at(doc, i), 5 - (int64_t)i);
  const struct mg_json *e = doc->u.arr.items[0];
  assert_string_equal(mg_json_get_str(e, "at"), "2024-04-01T19:33:25Z");
  assert_string_equal(mg_json_get_str(e, "actor"), "u5");
  assert_string_equal(mg_json_get_str(e, "counter"), "shimin-1");
  assert_string_equal(mg_json_get_str(e, "action"), "visit.view");
  assert_string_equal(mg_json_get_str(e, "object"), "visit:a");
  assert_string_equal(mg_json_get_str(e, "detail"), "d5");
  assert_null(mg_json_get(e, "hash")); /* the listing is for people */
  mg_json_free(doc);

  doc = list(state, NULL, 2);
  assert_int_equal(doc->u.arr.n, 2);
  assert_int_equal(seq_at(doc, 0), 5);
  assert_int_equal(seq_at(doc, 1), 4);
  mg_json_free(doc);

  doc = list(state, "visit:a", 10); /* rows 1, 3, 5 */
  assert_int_equal(doc->u.arr.n, 3);
  assert_int_equal(seq_at(doc, 0), 5);
  assert_int_equal(seq_at(doc, 1), 3);
  assert_int_equal(seq_at(doc, 2), 1);
  mg_json_free(doc);

  doc = list(state, "visit:b", 1);
  assert_int_equal(doc->u.arr.n, 1);
  assert_int_equal(seq_at(doc, 0), 4);
  mg_json_free(doc);

  doc = list(state, "visit:none", 10);
  assert_int_equal(doc->u.arr.n, 0);
  mg_json_free(doc);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_empty),          T(test_chain_formula),
      T(test_refused_fields), T(test_triggers),
      T(test_tamper_detail),  T(test_tamper_hash),
      T(test_tamper_rehashed), T(test_missing_rows),
      T(test_missing_first),  T(test_missing_tail_not_seen),
      T(test_inside_transaction), T(test_list),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
