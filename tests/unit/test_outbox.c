/*
 * test_outbox.c — the outbox to the city's tenant (core/outbox.h, issue 8:
 * D1, N3): queueing, what is due, the tenant's answers, backoff times,
 * stats, and the purge after retention that leaves no byte of a row in the
 * database or its WAL.  An application not yet acknowledged survives its
 * case's purge.  Fictional data only.
 */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "config.h"
#include "crypto.h"
#include "log.h"
#include "outbox.h"
#include "store.h"
#include "visit.h"

struct fx {
  char dir[64];
  char db[128];
  struct mg_store *st;
  struct mg_key key;
};

static int fx_setup(void **state) {
  struct fx *f = calloc(1, sizeof(*f));
  struct mg_err err = {{0}};
  if (!f)
    return -1;
  snprintf(f->dir, sizeof(f->dir), "/tmp/mg-test-outbox-XXXXXX");
  if (!mkdtemp(f->dir))
    return -1;
  snprintf(f->db, sizeof(f->db), "%s/madoguchi.db", f->dir);
  if (mg_store_open(f->db, &f->st, &err))
    return -1;
  memset(f->key.k, 0x5a, sizeof(f->key.k));
  *state = f;
  return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int type,
                    struct FTW *ftw) {
  (void)sb;
  (void)type;
  (void)ftw;
  return remove(path);
}

static int fx_teardown(void **state) {
  struct fx *f = *state;
  mg_store_close(f->st);
  int rc = nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return rc;
}

static const char *APP1 = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
static const char *APP2 = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
static const char *APP3 = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3";

static void put(struct fx *f, const char *id, const char *json) {
  assert_int_equal(mg_outbox_put_application(f->st, &f->key, id, json,
                                             strlen(json)),
                   0);
}

static int64_t col_int(struct fx *f, const char *sql) {
  sqlite3_stmt *s = NULL;
  assert_int_equal(sqlite3_prepare_v2(mg_store_db(f->st), sql, -1, &s, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(s), SQLITE_ROW);
  int64_t v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  return v;
}

/* ---- queueing and what is due --------------------------------------- */

static void test_put_and_due(void **state) {
  struct fx *f = *state;
  struct mg_outbox_row *r = NULL;
  size_t n = 0;
  time_t now = time(NULL);
  put(f, APP1, "{\"application\":\"1\",\"values\":[\"架空 太郎\"]}");
  put(f, APP2, "{\"application\":\"2\"}");
  put(f, APP3, "{\"application\":\"3\"}");
  /* queued once: the same application again is refused */
  assert_int_equal(mg_outbox_put_application(f->st, &f->key, APP1, "{}", 2),
                   -EEXIST);
  assert_int_equal(mg_outbox_due(f->st, &f->key, now, 10, &r, &n), 0);
  assert_int_equal(n, 3);
  assert_string_equal(r[0].kind, "application");
  assert_string_equal(r[0].ref, APP1);
  assert_string_equal(r[1].ref, APP2);
  assert_string_equal(r[2].ref, APP3);
  assert_true(r[0].seq < r[1].seq && r[1].seq < r[2].seq);
  assert_int_equal(r[0].version, 0);
  assert_string_equal((char *)r[0].plain,
                      "{\"application\":\"1\",\"values\":[\"架空 太郎\"]}");
  mg_outbox_rows_free(r, n);
  /* max bounds the answer, oldest first */
  assert_int_equal(mg_outbox_due(f->st, &f->key, now, 2, &r, &n), 0);
  assert_int_equal(n, 2);
  assert_string_equal(r[1].ref, APP2);
  mg_outbox_rows_free(r, n);
  /* sealed at rest: the plaintext is not in the row */
  assert_int_equal(col_int(f, "SELECT count(*) FROM outbox WHERE "
                              "instr(payload, CAST('application' AS BLOB)) > 0"),
                   0);
}

static void test_answers(void **state) {
  struct fx *f = *state;
  struct mg_outbox_row *r = NULL;
  size_t n = 0;
  struct mg_outbox_stats s;
  time_t now = time(NULL);
  put(f, APP1, "{\"a\":1}");
  put(f, APP2, "{\"a\":2}");
  put(f, APP3, "{\"a\":3}");
  assert_int_equal(mg_outbox_due(f->st, &f->key, now, 10, &r, &n), 0);
  assert_int_equal(n, 3);
  int64_t s1 = r[0].seq, s2 = r[1].seq, s3 = r[2].seq;
  mg_outbox_rows_free(r, n);

  assert_int_equal(mg_outbox_acked(f->st, s1, -1, now), 0);
  assert_int_equal(mg_outbox_rejected(f->st, s2, "bad_seal: the tenant "
                                                 "could not open it"),
                   0);
  assert_int_equal(mg_outbox_retry_later(f->st, s3, now, 9.2, "http 503"), 0);
  /* nothing due now: 1 acked, 2 rejected (never resent), 3 backing off */
  assert_int_equal(mg_outbox_due(f->st, &f->key, now, 10, &r, &n), 0);
  assert_int_equal(n, 0);
  assert_null(r);
  /* 9.2 s rounds up: not due after 9 s, due after 10 */
  assert_int_equal(mg_outbox_due(f->st, &f->key, now + 9, 10, &r, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(mg_outbox_due(f->st, &f->key, now + 10, 10, &r, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(r[0].seq, s3);
  mg_outbox_rows_free(r, n);
  assert_int_equal(col_int(f, "SELECT attempts FROM outbox WHERE seq = 3"), 1);
  assert_int_equal(col_int(f, "SELECT count(*) FROM outbox WHERE seq = 2 AND "
                              "last_error LIKE 'bad_seal:%'"),
                   1);

  assert_int_equal(mg_outbox_stats(f->st, now + 100, &s), 0);
  assert_int_equal(s.pending, 1);
  assert_int_equal(s.rejected, 1);
  assert_int_equal(s.acked, 1);
  assert_true(s.oldest_age_s >= 100 && s.oldest_age_s <= 102);
  /* a late duplicate answer does not move acked_at */
  assert_int_equal(mg_outbox_acked(f->st, s1, -1, now + 50), 0);
  assert_int_equal(col_int(f, "SELECT count(*) FROM outbox WHERE seq = 1 AND "
                              "acked_at IS NOT NULL"), 1);
  /* acked: the application may be queued again (a new pending row) */
  assert_int_equal(mg_outbox_acked(f->st, s3, -1, now), 0);
  assert_int_equal(mg_outbox_stats(f->st, now, &s), 0);
  assert_int_equal(s.pending, 0);
  assert_int_equal(s.oldest_age_s, -1);
}

static void test_cases(void **state) {
  struct fx *f = *state;
  struct mg_outbox_row *r = NULL;
  size_t n = 0;
  time_t now = time(NULL);
  const char *c = "0123456789abcdef0123456789abcdef";
  assert_int_equal(mg_outbox_case_changed(f->st, c, 1), 0);
  assert_int_equal(mg_outbox_case_changed(f->st, c, 3), 0);
  assert_int_equal(mg_outbox_case_changed(f->st, c, 2), 0); /* never back */
  assert_int_equal(mg_outbox_due(f->st, &f->key, now, 10, &r, &n), 0);
  assert_int_equal(n, 1);
  assert_string_equal(r[0].kind, "case");
  assert_int_equal(r[0].version, 3);
  assert_null(r[0].plain);
  int64_t seq = r[0].seq;
  mg_outbox_rows_free(r, n);
  /* a rejected snapshot does not block the next version */
  assert_int_equal(mg_outbox_rejected(f->st, seq, "bad_record: x"), 0);
  assert_int_equal(mg_outbox_case_changed(f->st, c, 4), 0);
  assert_int_equal(mg_outbox_due(f->st, &f->key, now, 10, &r, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(r[0].version, 4);
  assert_int_equal(r[0].seq, seq);
  mg_outbox_rows_free(r, n);
  /* version 4 on its way, 5 queued meanwhile: the answer for 4 leaves
   * the row due with 5 */
  assert_int_equal(mg_outbox_case_changed(f->st, c, 5), 0);
  assert_int_equal(mg_outbox_acked(f->st, seq, 4, now), 0);
  assert_int_equal(mg_outbox_due(f->st, &f->key, now, 10, &r, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(r[0].version, 5);
  mg_outbox_rows_free(r, n);
  /* rows after a batch in flight only */
  assert_int_equal(mg_outbox_due_after(f->st, &f->key, now, seq, 10, &r, &n), 0);
  assert_int_equal(n, 0);
  /* after the ack, a change queues a new row */
  assert_int_equal(mg_outbox_acked(f->st, seq, 5, now), 0);
  assert_int_equal(mg_outbox_case_changed(f->st, c, 6), 0);
  assert_int_equal(col_int(f, "SELECT count(*) FROM outbox"), 2);
  assert_int_equal(mg_outbox_due_after(f->st, &f->key, now, seq, 10, &r, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(r[0].version, 6);
  mg_outbox_rows_free(r, n);
}

static void test_tampered_payload(void **state) {
  struct fx *f = *state;
  struct mg_outbox_row *r = NULL;
  size_t n = 0;
  struct mg_outbox_stats s;
  put(f, APP1, "{\"a\":1}");
  put(f, APP2, "{\"a\":2}");
  /* a payload moved to another row does not open there */
  assert_int_equal(sqlite3_exec(mg_store_db(f->st),
                                "UPDATE outbox SET payload = (SELECT payload "
                                "FROM outbox WHERE seq = 2) WHERE seq = 1",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  assert_int_equal(mg_outbox_due(f->st, &f->key, time(NULL), 10, &r, &n), 0);
  assert_int_equal(n, 1);
  assert_string_equal(r[0].ref, APP2);
  mg_outbox_rows_free(r, n);
  assert_int_equal(mg_outbox_stats(f->st, time(NULL), &s), 0);
  assert_int_equal(s.rejected, 1);
  assert_int_equal(col_int(f, "SELECT count(*) FROM outbox WHERE seq = 1 AND "
                              "last_error LIKE 'bad_payload:%'"),
                   1);
}

/* ---- D1: the purge leaves no byte ----------------------------------- */

static int file_has(const char *path, const void *needle, size_t len) {
  FILE *fp = fopen(path, "rb");
  if (!fp)
    return 0; /* no WAL: nothing in it */
  fseek(fp, 0, SEEK_END);
  long sz = ftell(fp);
  rewind(fp);
  unsigned char *b = malloc(sz > 0 ? (size_t)sz : 1);
  assert_non_null(b);
  size_t got = fread(b, 1, (size_t)(sz > 0 ? sz : 0), fp);
  fclose(fp);
  int found = 0;
  for (size_t i = 0; !found && len <= got && i + len <= got; i++)
    found = memcmp(b + i, needle, len) == 0;
  free(b);
  return found;
}

static void test_purge_leaves_no_bytes(void **state) {
  struct fx *f = *state;
  char wal[160];
  unsigned char sealed[48];
  size_t purged = 99;
  time_t now = time(NULL);
  snprintf(wal, sizeof(wal), "%s-wal", f->db);
  put(f, APP1, "{\"a\":\"acknowledged long ago\"}");
  put(f, APP2, "{\"a\":\"not yet acknowledged\"}");
  /* the sealed bytes of row 1 as a marker (its plaintext never is there) */
  sqlite3_stmt *s = NULL;
  assert_int_equal(sqlite3_prepare_v2(mg_store_db(f->st),
                                      "SELECT payload FROM outbox WHERE seq = 1",
                                      -1, &s, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(s), SQLITE_ROW);
  assert_true(sqlite3_column_bytes(s, 0) > (int)sizeof(sealed));
  memcpy(sealed, sqlite3_column_blob(s, 0), sizeof(sealed));
  sqlite3_finalize(s);
  assert_int_equal(mg_outbox_acked(f->st, 1, -1, now - 100), 0);
  assert_true(file_has(f->db, APP1, 32) || file_has(wal, APP1, 32));
  assert_true(file_has(f->db, sealed, sizeof(sealed)) ||
              file_has(wal, sealed, sizeof(sealed)));

  /* not yet past retention (200 s): kept */
  assert_int_equal(mg_outbox_purge(f->st, now, 200, &purged), 0);
  assert_int_equal(purged, 0);
  /* past it: gone, and so are its bytes from the file and the WAL */
  assert_int_equal(mg_outbox_purge(f->st, now, 100, &purged), 0);
  assert_int_equal(purged, 1);
  assert_false(file_has(f->db, APP1, 32));
  assert_false(file_has(wal, APP1, 32));
  assert_false(file_has(f->db, sealed, sizeof(sealed)));
  assert_false(file_has(wal, sealed, sizeof(sealed)));
  /* the pending one stays, whatever its age */
  assert_int_equal(mg_outbox_purge(f->st, now + 10 * 86400, 0, &purged), 0);
  assert_int_equal(purged, 0);
  assert_int_equal(col_int(f, "SELECT count(*) FROM outbox WHERE ref = "
                              "'b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2'"),
                   1);
}

/* An application not yet acknowledged survives its case's purge: the
 * outbox holds its own sealed copy (migration 6). */
static void test_survives_case_purge(void **state) {
  struct fx *f = *state;
  struct mg_config cfg;
  struct mg_visits *vs = NULL;
  struct mg_outbox_row *r = NULL;
  size_t n = 0, closed = 0, purged = 0;
  memset(&cfg, 0, sizeof(cfg));
  cfg.visit_close_at = (char *)"";
  cfg.visit_retention = 0;
  assert_int_equal(
      sqlite3_exec(
          mg_store_db(f->st),
          "INSERT INTO visits (id, number, token_hash, life_event, "
          "pack_commit, counter, created_by, created_at, filing_date, status, "
          "closed_at, purge_after, personal, updated_at) VALUES "
          "('v1', '12345674', 'th', 'moving-in', 'c0ffee', '1f-a', 'sato', "
          "'2026-04-01T09:00:00Z', '2026-04-01', 'closed', "
          "'2026-04-01T10:00:00Z', '2026-04-01T10:00:00Z', x'00', "
          "'2026-04-01T10:00:00Z');"
          "INSERT INTO applications (id, visit_id, form, pack_commit, "
          "submitted_by, counter, submitted_at, payload) VALUES "
          "('a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1', 'v1', 'tennyu', 'c0ffee', "
          "'sato', '1f-a', '2026-04-01T09:30:00Z', x'00');",
          NULL, NULL, NULL),
      SQLITE_OK);
  put(f, APP1, "{\"application\":\"a1\",\"visit\":\"v1\"}");
  assert_int_equal(mg_visits_create(f->st, &f->key, NULL, &cfg, &vs), 0);
  assert_int_equal(mg_visits_housekeeping(vs, time(NULL), &closed, &purged), 0);
  assert_int_equal(purged, 1);
  assert_int_equal(col_int(f, "SELECT count(*) FROM applications"), 0);
  assert_int_equal(mg_outbox_due(f->st, &f->key, time(NULL), 10, &r, &n), 0);
  assert_int_equal(n, 1);
  assert_string_equal((char *)r[0].plain,
                      "{\"application\":\"a1\",\"visit\":\"v1\"}");
  mg_outbox_rows_free(r, n);
  mg_visits_free(vs);
}

int main(void) {
  mg_log_init();
  mg_log_set_level(MG_LOG_ERR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_put_and_due, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_answers, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_cases, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_tampered_payload, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_purge_leaves_no_bytes, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_survives_case_purge, fx_setup,
                                      fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
