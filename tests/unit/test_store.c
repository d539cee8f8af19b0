/*
 * test_store.c — the store module: open/create, the refusals that protect
 * a database we must not touch, migrations from every earlier version,
 * runs and meta.  Every test works in its own mkdtemp directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/rand.h>

#include "log.h"
#include "store.h"
#include "store_internal.h"

struct fx {
  char dir[64];
  char db[128];
};

static int fx_setup(void **state) {
  struct fx *f = calloc(1, sizeof(*f));
  if (!f)
    return -1;
  snprintf(f->dir, sizeof(f->dir), "/tmp/mg-test-store-XXXXXX");
  if (!mkdtemp(f->dir)) {
    free(f);
    return -1;
  }
  snprintf(f->db, sizeof(f->db), "%s/madoguchi.db", f->dir);
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
  int rc = nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return rc;
}

/* ---- helpers --------------------------------------------------------- */

struct blob {
  unsigned char *data;
  size_t len;
};

static struct blob slurp(const char *path) {
  struct blob b = {NULL, 0};
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  assert_int_equal(fseek(fp, 0, SEEK_END), 0);
  long n = ftell(fp);
  assert_true(n >= 0);
  rewind(fp);
  b.len = (size_t)n;
  b.data = malloc(b.len + 1);
  assert_non_null(b.data);
  assert_int_equal(fread(b.data, 1, b.len, fp), b.len);
  fclose(fp);
  return b;
}

static void assert_same_content(const struct blob *before, const char *path) {
  struct blob after = slurp(path);
  assert_int_equal(after.len, before->len);
  assert_memory_equal(after.data, before->data, before->len);
  free(after.data);
}

static void write_file(const char *path, const void *data, size_t len) {
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(data, 1, len, fp), len);
  assert_int_equal(fclose(fp), 0);
}

static int file_exists(const char *path) {
  struct stat sb;
  return lstat(path, &sb) == 0;
}

/* The -wal/-shm companions of a refused file must not appear either. */
static void assert_no_companions(const char *db) {
  char p[256];
  snprintf(p, sizeof(p), "%s-wal", db);
  assert_false(file_exists(p));
  snprintf(p, sizeof(p), "%s-shm", db);
  assert_false(file_exists(p));
  snprintf(p, sizeof(p), "%s-journal", db);
  assert_false(file_exists(p));
}

static sqlite3 *raw_open(const char *path) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL),
                   SQLITE_OK);
  return db;
}

static void raw_exec(sqlite3 *db, const char *sql) {
  char *msg = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK)
    fail_msg("%s: %s", sql, msg ? msg : "?");
}

static long long raw_int(sqlite3 *db, const char *sql) {
  sqlite3_stmt *stmt = NULL;
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
  long long v = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  return v;
}

/* Caller frees. */
static char *raw_text(sqlite3 *db, const char *sql) {
  sqlite3_stmt *stmt = NULL;
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
  const char *t = (const char *)sqlite3_column_text(stmt, 0);
  char *s = strdup(t ? t : "");
  sqlite3_finalize(stmt);
  assert_non_null(s);
  return s;
}

static void assert_hex32(const char *s) {
  assert_non_null(s);
  assert_int_equal(strlen(s), 32);
  for (const char *p = s; *p; p++)
    assert_non_null(strchr("0123456789abcdef", *p));
}

/* UTC ISO 8601 with milliseconds and Z: 2024-04-01T09:30:00.123Z */
static void assert_timestamp(const char *s) {
  static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
  assert_non_null(s);
  assert_int_equal(strlen(s), strlen(shape));
  for (size_t i = 0; shape[i]; i++) {
    if (shape[i] == 'd')
      assert_true(s[i] >= '0' && s[i] <= '9');
    else
      assert_int_equal(s[i], shape[i]);
  }
}

static void open_ok(const char *path, struct mg_store **st) {
  struct mg_err err = {{0}};
  int rc = mg_store_open(path, st, &err);
  if (rc != 0)
    fail_msg("mg_store_open(%s) = %d: %s", path, rc, err.msg);
  assert_non_null(*st);
}

static void create_at_ok(const char *path, int version) {
  struct mg_err err = {{0}};
  int rc = mg__store_create_at(path, version, &err);
  if (rc != 0)
    fail_msg("mg__store_create_at(%s, %d) = %d: %s", path, version, rc,
             err.msg);
}

/* Open must fail with `code` (any negative when code is 0), leave the
 * file's bytes alone and name the path in the message. */
static void open_refused(const char *path, int code, const char *words,
                         struct mg_err *err) {
  struct mg_store *st = (struct mg_store *)(uintptr_t)1;
  struct blob before = slurp(path);
  memset(err, 0, sizeof(*err));
  int rc = mg_store_open(path, &st, err);
  if (code)
    assert_int_equal(rc, code);
  else
    assert_true(rc < 0);
  assert_null(st);
  assert_non_null(strstr(err->msg, path));
  if (words && !strstr(err->msg, words))
    fail_msg("message \"%s\" lacks \"%s\"", err->msg, words);
  assert_same_content(&before, path);
  assert_no_companions(path);
  free(before.data);
}

/* ---- open ------------------------------------------------------------ */
/* Group commit: commits stop syncing one by one, mg_store_sync makes them
 * durable; a sync with nothing committed does nothing; off syncs first. */
static void test_group_commit(void **state) {
  struct fx *f = *state;
  struct mg_store *st = NULL;
  open_ok(f->db, &st);
  sqlite3 *db = mg_store_db(st);
  assert_int_equal(mg_store_sync(st), 0); /* off: a no-op */
  assert_int_equal(mg_store_group_commit(st, 1), 0);
  assert_int_equal(raw_int(db, "PRAGMA synchronous"), 1); /* NORMAL */
  assert_int_equal(sqlite3_exec(db, "CREATE TABLE g (x); INSERT INTO g "
                                    "VALUES (1)", NULL, NULL, NULL),
                   SQLITE_OK);
  assert_int_equal(mg_store_sync(st), 0);
  assert_int_equal(mg_store_sync(st), 0); /* nothing new */
  assert_int_equal(mg_store_group_commit(st, 0), 0);
  assert_int_equal(raw_int(db, "PRAGMA synchronous"), 2);
  mg_store_close(st);
  open_ok(f->db, &st);
  assert_int_equal(raw_int(mg_store_db(st), "SELECT x FROM g"), 1);
  mg_store_close(st);
}

static long long fsize(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* Group commit moves WAL checkpoints to the store's thread: past 1000
 * frames the database file fills although this thread never checkpoints
 * (its commits only wake the thread), and under writes without a pause the
 * WAL still stays bounded (a checkpoint in the commit from 8000 frames). */
static void test_group_commit_checkpoints_off_the_caller(void **state) {
  struct fx *f = *state;
  struct mg_store *st = NULL;
  char wal[512];
  open_ok(f->db, &st);
  sqlite3 *db = mg_store_db(st);
  snprintf(wal, sizeof(wal), "%s-wal", f->db);
  assert_int_equal(mg_store_group_commit(st, 1), 0);
  assert_int_equal(sqlite3_exec(db, "CREATE TABLE g (x)", NULL, NULL, NULL),
                   SQLITE_OK);
  long long page = raw_int(db, "PRAGMA page_size");
  long long db0 = fsize(f->db);
  /* ~2 frames a commit (a row of its own page, and the tree above it) */
  for (int i = 0; i < 700; i++)
    assert_int_equal(sqlite3_exec(db, "INSERT INTO g VALUES (randomblob(3000))",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
  assert_true(fsize(wal) >= 1000 * page);
  /* nothing more is written here: the thread copies (at least) the first
   * 1000 frames' pages in (a row a page: hundreds of pages) */
  for (int i = 0; i < 200 && fsize(f->db) < db0 + 300 * page; i++)
    usleep(25000);
  assert_true(fsize(f->db) >= db0 + 300 * page);
  /* steady writes (30000 frames): the WAL file stays bounded, at 8000
   * frames and what comes in while the thread finishes the checkpoint it
   * is in (well under twice that) */
  long long most = 0;
  for (int i = 0; i < 10000; i++) {
    assert_int_equal(sqlite3_exec(db, "INSERT INTO g VALUES (randomblob(3000))",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    if (fsize(wal) > most)
      most = fsize(wal);
  }
  assert_true(most <= 16000 * (page + 24) + 32);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM g"), 10700);
  assert_int_equal(mg_store_group_commit(st, 0), 0); /* stops the thread */
  mg_store_close(st);
  open_ok(f->db, &st);
  assert_int_equal(raw_int(mg_store_db(st), "SELECT count(*) FROM g"), 10700);
  char *ok = raw_text(mg_store_db(st), "PRAGMA integrity_check");
  assert_string_equal(ok, "ok");
  free(ok);
  mg_store_close(st);
}

static void test_open_new(void **state) {
  struct fx *f = *state;
  struct mg_store *st = NULL;
  assert_true(mg_store_latest_version() >= 2);
  assert_false(file_exists(f->db));
  open_ok(f->db, &st);
  assert_int_equal(mg_store_version(st), mg_store_latest_version());

  sqlite3 *db = mg_store_db(st);
  assert_non_null(db);
  char *mode = raw_text(db, "PRAGMA journal_mode");
  assert_string_equal(mode, "wal");
  free(mode);
  assert_int_equal(raw_int(db, "PRAGMA synchronous"), 2); /* FULL */
  assert_int_equal(raw_int(db, "PRAGMA foreign_keys"), 1);
  assert_int_equal(raw_int(db, "PRAGMA user_version"),
                   mg_store_latest_version());
  assert_int_equal((uint32_t)raw_int(db, "PRAGMA application_id"),
                   MG__STORE_APP_ID);
  assert_int_equal(MG__STORE_APP_ID, 0x4D47444D);

  char *box = mg_store_meta_get(st, "box_id");
  assert_hex32(box);
  free(box);
  char *at = raw_text(db, "SELECT updated_at FROM meta WHERE key='box_id'");
  assert_timestamp(at);
  free(at);
  mg_store_close(st);
  mg_store_close(NULL);
}

/* An existing empty file (an installer's touch) is a new database. */
static void test_open_empty_file(void **state) {
  struct fx *f = *state;
  struct mg_store *st = NULL;
  write_file(f->db, "", 0);
  open_ok(f->db, &st);
  assert_int_equal(mg_store_version(st), mg_store_latest_version());
  mg_store_close(st);
}

static void test_open_bad_args(void **state) {
  struct fx *f = *state;
  struct mg_store *st = NULL;
  struct mg_err err = {{0}};
  assert_int_equal(mg_store_open(NULL, &st, &err), -EINVAL);
  assert_int_equal(mg_store_open("", &st, NULL), -EINVAL);
  assert_int_equal(mg_store_open(f->db, NULL, NULL), -EINVAL);
  assert_false(file_exists(f->db));
  assert_null(mg_store_db(NULL));
  assert_int_equal(mg_store_version(NULL), -EINVAL);
}

static void test_reopen_keeps_box_id(void **state) {
  struct fx *f = *state;
  struct mg_store *st = NULL;
  open_ok(f->db, &st);
  char *first = mg_store_meta_get(st, "box_id");
  assert_hex32(first);
  mg_store_close(st);

  open_ok(f->db, &st);
  char *second = mg_store_meta_get(st, "box_id");
  assert_string_equal(first, second);
  mg_store_close(st);
  free(first);
  free(second);

  /* Another box gets another id. */
  char other[160];
  snprintf(other, sizeof(other), "%s/other.db", f->dir);
  open_ok(other, &st);
  char *third = mg_store_meta_get(st, "box_id");
  assert_hex32(third);
  mg_store_close(st);
  open_ok(f->db, &st);
  first = mg_store_meta_get(st, "box_id");
  assert_string_not_equal(first, third);
  mg_store_close(st);
  free(first);
  free(third);
}

/* ---- migrations ------------------------------------------------------ */

static void test_create_at(void **state) {
  struct fx *f = *state;
  struct mg_err err = {{0}};
  char path[160];
  int latest = mg_store_latest_version();
  for (int v = 0; v <= latest; v++) {
    snprintf(path, sizeof(path), "%s/at%d.db", f->dir, v);
    create_at_ok(path, v);
    sqlite3 *db = raw_open(path);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), v);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema "
                                 "WHERE name = 'meta'"),
                     v >= 1);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema "
                                 "WHERE name = 'runs'"),
                     v >= 2);
    assert_int_equal((uint32_t)raw_int(db, "PRAGMA application_id"),
                     v >= 1 ? MG__STORE_APP_ID : 0);
    sqlite3_close(db);
  }
  assert_int_equal(mg__store_create_at(path, 0, &err), -EEXIST);
  snprintf(path, sizeof(path), "%s/bad.db", f->dir);
  assert_int_equal(mg__store_create_at(path, latest + 1, &err), -EINVAL);
  assert_int_equal(mg__store_create_at(path, -1, NULL), -EINVAL);
  assert_false(file_exists(path));
}

/* From every earlier version, with data valid at that version, an open
 * reaches the latest and keeps the data.  A new migration adds its own
 * rows here. */
static void test_upgrade_from_every_version(void **state) {
  struct fx *f = *state;
  char path[160];
  int latest = mg_store_latest_version();
  for (int v = 0; v < latest; v++) {
    snprintf(path, sizeof(path), "%s/v%d.db", f->dir, v);
    create_at_ok(path, v);
    sqlite3 *db = raw_open(path);
    if (v >= 1)
      raw_exec(db, "INSERT INTO meta VALUES('site', 'Kita ward, desk 3', "
                   "'2020-01-02T03:04:05.678Z')");
    if (v >= 2)
      raw_exec(db, "INSERT INTO runs(version, started_at) "
                   "VALUES('0.0.1', '2020-01-02T03:04:05.678Z')");
    sqlite3_close(db);

    struct mg_store *st = NULL;
    open_ok(path, &st);
    assert_int_equal(mg_store_version(st), latest);
    db = mg_store_db(st);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), latest);
    char *box = mg_store_meta_get(st, "box_id");
    assert_hex32(box);
    free(box);
    if (v >= 1) {
      char *site = mg_store_meta_get(st, "site");
      assert_non_null(site);
      assert_string_equal(site, "Kita ward, desk 3");
      free(site);
    }
    int64_t id = 0;
    int prev = -1;
    assert_int_equal(mg_store_run_begin(st, "0.1.0", &id, &prev), 0);
    if (v >= 2) {
      /* the old run (never ended) is still there */
      assert_int_equal(prev, 0);
      assert_int_equal(id, 2);
    } else {
      assert_int_equal(prev, 1);
      assert_int_equal(id, 1);
    }
    mg_store_close(st);
  }
}

/* A migration that fails is rolled back whole and named. */
static void test_migration_failure_rolls_back(void **state) {
  struct fx *f = *state;
  struct mg_err err = {{0}};
  struct mg_store *st = NULL;
  create_at_ok(f->db, 1);
  sqlite3 *db = raw_open(f->db);
  raw_exec(db, "INSERT INTO meta VALUES('site', 'x', "
               "'2020-01-02T03:04:05.678Z');"
               "CREATE TABLE runs(x)"); /* what migration 2 creates */
  sqlite3_close(db);

  int rc = mg_store_open(f->db, &st, &err);
  assert_true(rc < 0);
  assert_null(st);
  if (!strstr(err.msg, "migration 2") || !strstr(err.msg, "already exists"))
    fail_msg("unexpected message: %s", err.msg);

  db = raw_open(f->db);
  assert_int_equal(raw_int(db, "PRAGMA user_version"), 1);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM meta"), 1);
  sqlite3_close(db);
}

/* ---- refusals -------------------------------------------------------- */

static void test_newer_refused(void **state) {
  struct fx *f = *state;
  struct mg_err err;
  char sql[64], words[128];
  int latest = mg_store_latest_version();
  create_at_ok(f->db, latest);
  sqlite3 *db = raw_open(f->db);
  raw_exec(db, "INSERT INTO meta VALUES('k', 'v', "
               "'2020-01-02T03:04:05.678Z')");
  snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", latest + 1);
  raw_exec(db, sql);
  sqlite3_close(db);

  snprintf(words, sizeof(words),
           "schema version %d is newer than this madoguchid knows (%d)",
           latest + 1, latest);
  open_refused(f->db, -EPROTO, words, &err);
  /* and again: a refusal leaves nothing behind that changes the answer */
  open_refused(f->db, -EPROTO, "refusing to touch it", &err);
}

/* A newer daemon crashed with its version bump still in the -wal: the
 * file's own header says `latest`, only reading through the WAL shows
 * the truth.  Neither the file nor the -wal may change. */
static void test_newer_in_wal_refused(void **state) {
  struct fx *f = *state;
  struct mg_err err = {{0}};
  struct mg_store *st = NULL;
  char sql[64], wal[160];
  int latest = mg_store_latest_version();
  create_at_ok(f->db, latest);
  sqlite3 *db = raw_open(f->db);
  /* like a crash: nothing is checkpointed when the connection goes */
  assert_int_equal(
      sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL),
      SQLITE_OK);
  snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", latest + 1);
  raw_exec(db, sql);
  sqlite3_close(db);

  snprintf(wal, sizeof(wal), "%s-wal", f->db);
  struct blob main_before = slurp(f->db);
  struct blob wal_before = slurp(wal);
  assert_true(wal_before.len > 0);
  /* user_version at offset 60, big-endian: still `latest` in the file */
  assert_int_equal(main_before.data[63], latest);

  assert_int_equal(mg_store_open(f->db, &st, &err), -EPROTO);
  assert_null(st);
  assert_non_null(strstr(err.msg, "newer"));
  assert_same_content(&main_before, f->db);
  assert_same_content(&wal_before, wal);
  free(main_before.data);
  free(wal_before.data);
}

/* Turn a store at the latest version into a rollback-journal database
 * (running `sql` first) left with a hot journal: a writer died inside a
 * transaction whose pages had already spilled into the file.  *committed
 * (when not NULL) gets the file as it was before that transaction. */
static void make_hot_journal(const char *path, const char *sql,
                             struct blob *committed) {
  char journal[160];
  int status = 0;
  create_at_ok(path, mg_store_latest_version());
  sqlite3 *db = raw_open(path);
  char *mode = raw_text(db, "PRAGMA journal_mode=DELETE");
  assert_string_equal(mode, "delete");
  free(mode);
  raw_exec(db, sql);
  sqlite3_close(db);
  if (committed)
    *committed = slurp(path);

  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) { /* no cmocka in the child */
    sqlite3 *cdb = NULL;
    if (sqlite3_open(path, &cdb) != SQLITE_OK ||
        sqlite3_exec(cdb,
                     "PRAGMA cache_size=2; BEGIN;"
                     "UPDATE meta SET value = 'uncommitted';"
                     "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 "
                     "FROM n WHERE i < 400) "
                     "INSERT INTO meta SELECT 'k' || i, zeroblob(2000), 'x' "
                     "FROM n",
                     NULL, NULL, NULL) != SQLITE_OK)
      _exit(1);
    _exit(0);
  }
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  snprintf(journal, sizeof(journal), "%s-journal", path);
  assert_true(file_exists(journal));
}

/* A hot journal is SQLite's to recover: the open succeeds with the last
 * committed state and then runs in WAL mode. */
static void test_hot_journal_recovered(void **state) {
  struct fx *f = *state;
  struct mg_store *st = NULL;
  char journal[160];
  make_hot_journal(f->db,
                   "INSERT INTO meta VALUES('site', 'committed', "
                   "'2020-01-02T03:04:05.678Z')",
                   NULL);
  open_ok(f->db, &st);
  snprintf(journal, sizeof(journal), "%s-journal", f->db);
  assert_false(file_exists(journal));
  char *v = mg_store_meta_get(st, "site");
  assert_string_equal(v, "committed");
  free(v);
  sqlite3 *db = mg_store_db(st);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM meta"), 2); /* +box_id */
  char *mode = raw_text(db, "PRAGMA journal_mode");
  assert_string_equal(mode, "wal");
  free(mode);
  mg_store_close(st);
}

/* ...but what the recovery reveals is still checked: a newer database
 * is refused, and SQLite's rollback restored exactly the committed
 * bytes. */
static void test_hot_journal_newer_refused(void **state) {
  struct fx *f = *state;
  struct mg_err err = {{0}};
  struct mg_store *st = NULL;
  struct blob committed = {NULL, 0};
  char sql[64];
  snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
           mg_store_latest_version() + 1);
  make_hot_journal(f->db, sql, &committed);
  assert_int_equal(mg_store_open(f->db, &st, &err), -EPROTO);
  assert_null(st);
  assert_non_null(strstr(err.msg, "newer"));
  assert_same_content(&committed, f->db);
  free(committed.data);
}

/* Characters that mean something in a SQLite URI must not matter. */
static void test_odd_path(void **state) {
  struct fx *f = *state;
  struct mg_store *st = NULL;
  char path[192];
  snprintf(path, sizeof(path), "%s/we?ird#%%20 name&mode=ro.db", f->dir);
  open_ok(path, &st);
  assert_int_equal(mg_store_meta_set(st, "k", "v"), 0);
  mg_store_close(st);
  open_ok(path, &st);
  char *v = mg_store_meta_get(st, "k");
  assert_string_equal(v, "v");
  free(v);
  mg_store_close(st);
  assert_false(file_exists(f->db));
}

static void test_garbage_refused(void **state) {
  struct fx *f = *state;
  struct mg_err err;
  unsigned char junk[8192];
  assert_int_equal(RAND_bytes(junk, sizeof(junk)), 1);
  junk[0] = 'X'; /* not "SQLite format 3" by chance */
  write_file(f->db, junk, sizeof(junk));
  open_refused(f->db, -EIO, "not a SQLite database", &err);

  /* short garbage too */
  write_file(f->db, "hello", 5);
  open_refused(f->db, -EIO, "not a SQLite database", &err);
}

static void test_foreign_db_refused(void **state) {
  struct fx *f = *state;
  struct mg_err err;
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
  raw_exec(db, "CREATE TABLE photos(id INTEGER PRIMARY KEY, name TEXT);"
               "INSERT INTO photos(name) VALUES('cat.jpg');"
               "PRAGMA user_version = 3; PRAGMA application_id = 0");
  sqlite3_close(db);
  open_refused(f->db, -EPROTO, "not a madoguchi database", &err);
}

/* user_version 0 but tables: still someone else's file. */
static void test_foreign_unversioned_refused(void **state) {
  struct fx *f = *state;
  struct mg_err err;
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
  raw_exec(db, "CREATE TABLE notes(body TEXT);"
               "INSERT INTO notes VALUES('keep me')");
  sqlite3_close(db);
  open_refused(f->db, -EPROTO, "not a madoguchi database", &err);

  /* an application_id of another program, nothing else */
  assert_int_equal(remove(f->db), 0);
  assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
  raw_exec(db, "PRAGMA application_id = 1234");
  sqlite3_close(db);
  open_refused(f->db, -EPROTO, "not a madoguchi database", &err);
}

/* A store with some pages of data, closed (WAL checkpointed). */
static void fill_store(const char *path) {
  struct mg_store *st = NULL;
  char key[32], value[256];
  open_ok(path, &st);
  memset(value, 'v', sizeof(value) - 1);
  value[sizeof(value) - 1] = '\0';
  for (int i = 0; i < 300; i++) {
    snprintf(key, sizeof(key), "key%04d", i);
    assert_int_equal(mg_store_meta_set(st, key, value), 0);
  }
  mg_store_close(st);
  assert_no_companions(path);
}

static void test_truncated_refused(void **state) {
  struct fx *f = *state;
  struct mg_err err;
  struct stat sb;
  fill_store(f->db);
  assert_int_equal(stat(f->db, &sb), 0);
  assert_true(sb.st_size >= 8 * 4096);
  assert_int_equal(truncate(f->db, sb.st_size / 2), 0);
  open_refused(f->db, -EIO, "refusing to touch it", &err);
}

/* Header intact, a b-tree page destroyed: quick_check must catch it. */
static void test_corrupt_page_refused(void **state) {
  struct fx *f = *state;
  struct mg_err err;
  fill_store(f->db);
  struct blob b = slurp(f->db);
  size_t page = 4096;
  assert_true(b.len >= 8 * page);
  assert_int_equal(b.len % page, 0);
  /* the last page holds the newest rows of meta or its index */
  memset(b.data + b.len - page, 0xA5, page);
  write_file(f->db, b.data, b.len);
  free(b.data);
  open_refused(f->db, -EIO, "refusing to touch it", &err);
}

static void test_symlink_refused(void **state) {
  struct fx *f = *state;
  struct mg_err err = {{0}};
  struct mg_store *st = NULL;
  char link[160];
  fill_store(f->db);
  struct blob before = slurp(f->db);
  snprintf(link, sizeof(link), "%s/link.db", f->dir);
  assert_int_equal(symlink(f->db, link), 0);
  assert_int_equal(mg_store_open(link, &st, &err), -ELOOP);
  assert_null(st);
  assert_non_null(strstr(err.msg, link));
  assert_same_content(&before, f->db);
  free(before.data);
}

static void test_unwritable_refused(void **state) {
  struct fx *f = *state;
  struct mg_err err = {{0}};
  struct mg_store *st = NULL;
  if (geteuid() == 0)
    skip(); /* root writes anyway */
  fill_store(f->db);
  assert_int_equal(chmod(f->db, 0444), 0);
  int rc = mg_store_open(f->db, &st, &err);
  assert_int_equal(rc, -EACCES);
  assert_null(st);
  assert_non_null(strstr(err.msg, f->db));
}

/* ---- runs ------------------------------------------------------------ */

static void test_runs(void **state) {
  struct fx *f = *state;
  struct mg_store *st = NULL;
  int64_t id1 = 0, id2 = 0, id3 = 0, id4 = 0;
  int prev = -1;
  open_ok(f->db, &st);

  assert_int_equal(mg_store_run_begin(st, "0.1.0", &id1, &prev), 0);
  assert_int_equal(prev, 1); /* no previous run */
  assert_true(id1 > 0);
  assert_int_equal(mg_store_run_end(st, id1), 0);

  prev = -1;
  assert_int_equal(mg_store_run_begin(st, "0.1.0", &id2, &prev), 0);
  assert_int_equal(prev, 1); /* the first ended cleanly */
  assert_true(id2 > id1);

  /* no run_end: a crash */
  prev = -1;
  assert_int_equal(mg_store_run_begin(st, "0.1.1", &id3, &prev), 0);
  assert_int_equal(prev, 0);
  assert_true(id3 > id2);
  mg_store_close(st);

  /* ...and across a restart */
  open_ok(f->db, &st);
  prev = -1;
  assert_int_equal(mg_store_run_begin(st, "0.1.1", &id4, &prev), 0);
  assert_int_equal(prev, 0);
  assert_true(id4 > id3);
  assert_int_equal(mg_store_run_end(st, id4), 0);
  assert_int_equal(mg_store_run_end(st, id4 + 100), -ENOENT);

  sqlite3 *db = mg_store_db(st);
  char sql[128];
  snprintf(sql, sizeof(sql),
           "SELECT stopped_at FROM runs WHERE id = %lld AND clean = 1",
           (long long)id4);
  char *stopped = raw_text(db, sql);
  assert_timestamp(stopped);
  free(stopped);
  snprintf(sql, sizeof(sql), "SELECT started_at FROM runs WHERE id = %lld",
           (long long)id4);
  char *started = raw_text(db, sql);
  assert_timestamp(started);
  free(started);
  snprintf(sql, sizeof(sql), "SELECT version FROM runs WHERE id = %lld",
           (long long)id3);
  char *ver = raw_text(db, sql);
  assert_string_equal(ver, "0.1.1");
  free(ver);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM runs WHERE clean = 0 "
                               "AND stopped_at IS NULL"),
                   2);

  /* NULL outputs are allowed, bad input is not */
  assert_int_equal(mg_store_run_begin(st, "0.1.1", NULL, NULL), 0);
  assert_int_equal(mg_store_run_begin(st, NULL, &id1, &prev), -EINVAL);
  assert_int_equal(mg_store_run_begin(NULL, "x", &id1, &prev), -EINVAL);
  assert_int_equal(mg_store_run_end(NULL, 1), -EINVAL);
  mg_store_close(st);
}

/* ---- meta ------------------------------------------------------------ */

static void test_meta(void **state) {
  struct fx *f = *state;
  struct mg_store *st = NULL;
  static const char tricky[] = "it's'); DROP TABLE meta; --\n\"市役所\"";
  open_ok(f->db, &st);

  errno = 12345;
  assert_null(mg_store_meta_get(st, "absent"));
  assert_int_equal(errno, 0);

  assert_int_equal(mg_store_meta_set(st, "site", "Kita ward"), 0);
  char *v = mg_store_meta_get(st, "site");
  assert_string_equal(v, "Kita ward");
  free(v);

  assert_int_equal(mg_store_meta_set(st, "site", tricky), 0);
  v = mg_store_meta_get(st, "site");
  assert_string_equal(v, tricky);
  free(v);
  assert_int_equal(mg_store_meta_set(st, tricky, ""), 0);
  v = mg_store_meta_get(st, tricky);
  assert_string_equal(v, "");
  free(v);

  sqlite3 *db = mg_store_db(st);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM meta WHERE key='site'"),
                   1);
  char *at = raw_text(db, "SELECT updated_at FROM meta WHERE key='site'");
  assert_timestamp(at);
  free(at);

  assert_int_equal(mg_store_meta_set(st, "k", NULL), -EINVAL);
  assert_int_equal(mg_store_meta_set(st, NULL, "v"), -EINVAL);
  assert_int_equal(mg_store_meta_set(NULL, "k", "v"), -EINVAL);
  assert_null(mg_store_meta_get(NULL, "k"));
  assert_int_equal(errno, EINVAL);
  mg_store_close(st);

  /* committed values survive a reopen */
  open_ok(f->db, &st);
  v = mg_store_meta_get(st, "site");
  assert_string_equal(v, tricky);
  free(v);
  mg_store_close(st);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void) {
  mg_log_set_level(MG_LOG_WARNING); /* keep migration notes out of output */
  const struct CMUnitTest tests[] = {
      T(test_open_new),
      T(test_group_commit),
      T(test_group_commit_checkpoints_off_the_caller),
      T(test_open_empty_file),
      T(test_open_bad_args),
      T(test_reopen_keeps_box_id),
      T(test_create_at),
      T(test_upgrade_from_every_version),
      T(test_migration_failure_rolls_back),
      T(test_newer_refused),
      T(test_newer_in_wal_refused),
      T(test_hot_journal_recovered),
      T(test_hot_journal_newer_refused),
      T(test_odd_path),
      T(test_garbage_refused),
      T(test_foreign_db_refused),
      T(test_foreign_unversioned_refused),
      T(test_truncated_refused),
      T(test_corrupt_page_refused),
      T(test_symlink_refused),
      T(test_unwritable_refused),
      T(test_runs),
      T(test_meta),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
