/*
 * store.c — the SQLite database: opening with safety checks, migrations,
 * run bookkeeping and the meta key/value table.
 *
 * Opening an existing file happens in two steps.  First a read-only
 * connection reads the header (application_id, user_version) and runs
 * PRAGMA quick_check; a file that is not ours, newer than this build or
 * corrupt is refused there and never written.  Only then does the
 * read-write connection switch to WAL (which writes the header) and
 * migrate.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "log.h"
#include "store_internal.h"

#define STORE_BUSY_MS 5000
/* UTC ISO 8601 with milliseconds, e.g. 2024-04-01T09:30:00.123Z. */
#define STORE_NOW "strftime('%Y-%m-%dT%H:%M:%fZ','now')"
#define STORE_BOX_ID_BYTES 16

struct mg_store {
  sqlite3 *db;
  int version;
  char *wal;    /* "<path>-wal", for group commit */
  int wal_fd;   /* -1 until the first sync */
  int grouped;  /* synchronous=NORMAL, synced by mg_store_sync */
  int dirty;    /* commits since the last sync */
  struct {      /* mg_store_stmt: hot statements, parsed once */
    const char *sql; /* a static text: the key is its address */
    sqlite3_stmt *s;
  } sc[MG_STORE_STMTS];
  size_t nsc;
  /* Group commit: WAL checkpoints run on a thread of their own, on a second
   * connection, so that the loop never waits for their syncs (SQLite's
   * auto-checkpoint ran them inside a request's COMMIT: two fdatasyncs of
   * 1..30 ms each, the closed-loop p99 of issue 4). */
  struct {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sqlite3 *db; /* used on the thread only */
    int on, want, stop, hold; /* hold: the writer checkpoints (on_wal) */
  } ck;
};

/* The WAL size (frames) past which a checkpoint is asked for: SQLite's own
 * auto-checkpoint threshold. */
#define CKPT_FRAMES 1000
#define CKPT_FRAMES_MAX (8 * CKPT_FRAMES)
static void ckpt_stop(struct mg_store *st);

/* Every commit marks the WAL as needing a sync (group commit). */
static int on_commit(void *ud) {
  ((struct mg_store *)ud)->dirty = 1;
  return 0;
}

/* ---- errors ---------------------------------------------------------- */

/* A (extended) SQLite result code as a negative errno. */
static int store_errno(sqlite3 *db, int rc) {
  int sys = db ? sqlite3_system_errno(db) : 0;
  switch (rc & 0xff) {
  case SQLITE_OK:
  case SQLITE_ROW:
  case SQLITE_DONE:
    return 0;
  case SQLITE_NOMEM:
    return -ENOMEM;
  case SQLITE_PERM:
  case SQLITE_AUTH:
  case SQLITE_READONLY:
    return -EACCES;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return -EBUSY;
  case SQLITE_FULL:
    return -ENOSPC;
  case SQLITE_TOOBIG:
    return -E2BIG;
  case SQLITE_CONSTRAINT:
  case SQLITE_MISMATCH:
  case SQLITE_RANGE:
  case SQLITE_MISUSE:
    return -EINVAL;
  case SQLITE_CANTOPEN:
  case SQLITE_IOERR:
    if (rc == SQLITE_CANTOPEN_SYMLINK)
      return -ELOOP;
    /* The OS said why (EACCES, ENOSPC, EROFS...): pass it on. */
    return sys > 0 ? -sys : -EIO;
  default: /* SQLITE_ERROR, CORRUPT, NOTADB, PROTOCOL, SCHEMA... */
    return -EIO;
  }
}

/* Log a failure of a call that has no struct mg_err; returns the errno. */
static int store_log_fail(sqlite3 *db, int rc, const char *what) {
  mg_log_err("store", "%s: %s failed: %s", sqlite3_db_filename(db, "main"),
             what, sqlite3_errmsg(db));
  return store_errno(db, rc);
}

/* Why reading an existing file failed, in the words a technician needs. */
static int store_read_fail(sqlite3 *db, int rc, const char *path,
                           struct mg_err *err) {
  switch (rc & 0xff) {
  case SQLITE_NOTADB:
    return mg_err_set(err, -EIO,
                      "%s: not a SQLite database (%s); refusing to touch it",
                      path, sqlite3_errmsg(db));
  case SQLITE_CORRUPT:
    return mg_err_set(err, -EIO,
                      "%s: database is corrupt (%s); refusing to touch it",
                      path, sqlite3_errmsg(db));
  default:
    return mg_err_set(err, store_errno(db, rc), "%s: cannot read: %s", path,
                      sqlite3_errmsg(db));
  }
}

/* ---- small helpers --------------------------------------------------- */

static void store_close_db(sqlite3 *db) {
  if (!db)
    return;
  if (sqlite3_close(db) == SQLITE_BUSY) {
    /* Some module left a statement unfinalized: SQLite closes when it is. */
    mg_log_warn("store", "%s: closed with statements still open",
                sqlite3_db_filename(db, "main"));
    sqlite3_close_v2(db);
  }
}

/* Run a statement yielding one integer (a PRAGMA, a count); *out = 0 when
 * it yields no row.  Returns a SQLite result code. */
static int store_query_int(sqlite3 *db, const char *sql, int *out) {
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
  if (rc != SQLITE_OK)
    goto cleanup;
  rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    *out = sqlite3_column_int(stmt, 0);
    rc = SQLITE_OK;
  } else if (rc == SQLITE_DONE) {
    *out = 0;
    rc = SQLITE_OK;
  }
cleanup:
  /* finalize keeps the step's error message on the connection */
  sqlite3_finalize(stmt);
  return rc;
}

/* ROLLBACK when a transaction is still open (a failed COMMIT may already
 * have rolled back). */
static void store_rollback(sqlite3 *db) {
  if (!sqlite3_get_autocommit(db))
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- open ------------------------------------------------------------ */

/* Decide whether we may touch an existing database; reads only.
 * *version gets its schema version.  Returns 0, a negative errno, or 1
 * when `readonly` and SQLite could not read without writing (a hot
 * journal to roll back, a -shm it may not create): the caller repeats the
 * check on the read-write connection. */
static int store_check(sqlite3 *db, const char *path, int readonly,
                       int *version, struct mg_err *err) {
  sqlite3_stmt *stmt = NULL;
  int ret = 0, app_id = 0, ver = 0, objects = 0;
  int rc = store_query_int(db, "PRAGMA application_id", &app_id);
  if (rc == SQLITE_OK)
    rc = store_query_int(db, "PRAGMA user_version", &ver);
  if (rc == SQLITE_OK)
    rc = store_query_int(db, "SELECT count(*) FROM sqlite_schema", &objects);
  if (rc != SQLITE_OK) {
    if (readonly && (rc & 0xff) == SQLITE_READONLY)
      ret = 1;
    else
      ret = store_read_fail(db, rc, path, err);
    goto cleanup;
  }

  /* Ours once migration 1 ran; before that it must be a blank file, or we
   * would add our tables to another program's database. */
  if ((uint32_t)app_id != MG__STORE_APP_ID &&
      (ver > 0 || app_id != 0 || objects > 0)) {
    ret = mg_err_set(err, -EPROTO,
                     "%s: not a madoguchi database (application_id 0x%08x, "
                     "schema version %d, %d schema objects; expected "
                     "application_id 0x%08x); refusing to touch it",
                     path, (unsigned)app_id, ver, objects,
                     (unsigned)MG__STORE_APP_ID);
    goto cleanup;
  }
  if (ver > mg__store_latest) {
    ret = mg_err_set(err, -EPROTO,
                     "%s: database schema version %d is newer than this "
                     "madoguchid knows (%d); refusing to touch it "
                     "(downgrade?)",
                     path, ver, mg__store_latest);
    goto cleanup;
  }
  if (ver < 0) {
    ret = mg_err_set(err, -EPROTO,
                     "%s: database schema version %d is invalid; refusing to "
                     "touch it",
                     path, ver);
    goto cleanup;
  }

  /* quick_check(1): stop at the first problem, which the message names. */
  rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &stmt, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(stmt);
  if (rc != SQLITE_ROW) {
    if (readonly && (rc & 0xff) == SQLITE_READONLY)
      ret = 1;
    else
      ret = store_read_fail(db, rc, path, err);
    goto cleanup;
  }
  const char *res = (const char *)sqlite3_column_text(stmt, 0);
  if (!res || strcmp(res, "ok") != 0) {
    ret = mg_err_set(err, -EIO,
                     "%s: integrity check failed (%s); refusing to touch it",
                     path, res ? res : "no result");
    /* quick_check answers in lines; the message is one line */
    for (char *p = err ? err->msg : NULL; p && *p; p++)
      if (*p == '\n' || *p == '\r')
        *p = ' ';
    goto cleanup;
  }
  *version = ver;
cleanup:
  sqlite3_finalize(stmt);
  return ret;
}

/* Whether path+suffix exists (anything there counts). */
static int store_has_companion(const char *path, const char *suffix) {
  struct stat sb;
  char *name = NULL;
  int found = 1; /* when in doubt, let SQLite look */
  if (asprintf(&name, "%s%s", path, suffix) < 0) {
    name = NULL;
    goto cleanup;
  }
  found = lstat(name, &sb) == 0 || errno != ENOENT;
cleanup:
  free(name);
  return found;
}

/* "file:<path>?immutable=1", with the characters a URI gives meaning to
 * percent-encoded; malloc'd, NULL when out of memory. */
static char *store_immutable_uri(const char *path) {
  static const char hexdig[] = "0123456789ABCDEF";
  static const char tail[] = "?immutable=1";
  /* "file://" before an absolute path keeps a leading "//" from being
   * read as an authority. */
  const char *head = path[0] == '/' ? "file://" : "file:";
  char *uri = malloc(strlen(head) + 3 * strlen(path) + sizeof(tail));
  char *o = uri;
  if (!uri)
    goto cleanup;
  o = stpcpy(o, head);
  for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
    if (*p == '%' || *p == '?' || *p == '#' || *p <= ' ' || *p == 0x7f) {
      *o++ = '%';
      *o++ = hexdig[*p >> 4];
      *o++ = hexdig[*p & 0x0f];
    } else {
      *o++ = (char)*p;
    }
  }
  memcpy(o, tail, sizeof(tail));
cleanup:
  return uri;
}

/* The read-only first look at `path`.  A missing file is fine (new
 * database).  *recheck = 1 when the check must be repeated read-write. */
static int store_precheck(const char *path, int *recheck, int *version,
                          struct mg_err *err) {
  sqlite3 *db = NULL;
  char *uri = NULL;
  struct stat sb;
  int ret = 0, rc;
  *recheck = 0;
  *version = 0;
  if (lstat(path, &sb) != 0) {
    if (errno != ENOENT)
      ret = mg_err_set(err, -errno, "%s: %s", path, strerror(errno));
    goto cleanup;
  }
  if (S_ISLNK(sb.st_mode)) {
    ret = mg_err_set(err, -ELOOP,
                     "%s: is a symbolic link; refusing to follow it", path);
    goto cleanup;
  }
  if (!S_ISREG(sb.st_mode)) {
    ret = mg_err_set(err, -EINVAL, "%s: not a regular file", path);
    goto cleanup;
  }
  /* With no -wal or -journal beside it the file alone is the whole
   * database: read it as immutable, which takes no locks and creates no
   * -wal/-shm next to a file we may refuse.  Otherwise SQLite must see
   * those companions, so open it normally, read-only. */
  if (!store_has_companion(path, "-wal") &&
      !store_has_companion(path, "-journal")) {
    uri = store_immutable_uri(path);
    if (!uri) {
      ret = mg_err_set(err, -ENOMEM, "%s: out of memory", path);
      goto cleanup;
    }
  }
  rc = sqlite3_open_v2(uri ? uri : path, &db,
                       SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW |
                           SQLITE_OPEN_EXRESCODE | (uri ? SQLITE_OPEN_URI : 0),
                       NULL);
  if (rc != SQLITE_OK) {
    ret = mg_err_set(err, store_errno(db, rc), "%s: cannot open: %s", path,
                     db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    goto cleanup;
  }
  sqlite3_busy_timeout(db, STORE_BUSY_MS);
  /* Letting go of a file we refuse must not checkpoint a WAL into it. */
  sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
  ret = store_check(db, path, 1, version, err);
  if (ret == 1) {
    *recheck = 1;
    ret = 0;
  }
cleanup:
  store_close_db(db);
  free(uri);
  return ret;
}

/* The read-write connection.  It starts with checkpoint-on-close off so
 * that closing it after a refusal writes nothing; store_setup turns it on. */
static int store_connect(const char *path, sqlite3 **out, struct mg_err *err) {
  sqlite3 *db = NULL;
  int ret = 0;
  int rc = sqlite3_open_v2(path, &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                               SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_EXRESCODE,
                           NULL);
  if (rc != SQLITE_OK) {
    ret = mg_err_set(err, store_errno(db, rc), "%s: cannot open: %s", path,
                     db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    goto cleanup;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, STORE_BUSY_MS);
  sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
  /* SQLite silently falls back to read-only when it may not write. */
  if (sqlite3_db_readonly(db, "main") == 1) {
    ret = mg_err_set(err, -EACCES,
                     "%s: opened read-only (no write permission?); the "
                     "daemon must be able to write its database",
                     path);
    goto cleanup;
  }
  *out = db;
  db = NULL;
cleanup:
  store_close_db(db);
  return ret;
}

/* Connection settings; the first writes happen here. */
static int store_setup(sqlite3 *db, const char *path, struct mg_err *err) {
  sqlite3_stmt *stmt = NULL;
  int ret = 0, sync = 0, fk = 0;
  int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &stmt, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(stmt);
  if (rc != SQLITE_ROW) {
    ret = mg_err_set(err, store_errno(db, rc),
                     "%s: cannot switch to WAL journal: %s", path,
                     sqlite3_errmsg(db));
    goto cleanup;
  }
  /* The pragma answers with the mode in force, which may not be WAL
   * (e.g. a file system without shared memory). */
  const char *mode = (const char *)sqlite3_column_text(stmt, 0);
  if (!mode || strcasecmp(mode, "wal") != 0) {
    ret = mg_err_set(err, -EIO,
                     "%s: journal mode is \"%s\", not \"wal\"; the database "
                     "needs WAL (local file system with shared memory)",
                     path, mode ? mode : "?");
    goto cleanup;
  }
  /* FULL: a committed transaction survives a crash or power cut. */
  rc = sqlite3_exec(db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
                    "PRAGMA secure_delete=ON", NULL,
                    NULL, NULL);
  if (rc == SQLITE_OK)
    rc = store_query_int(db, "PRAGMA synchronous", &sync);
  if (rc == SQLITE_OK)
    rc = store_query_int(db, "PRAGMA foreign_keys", &fk);
  if (rc != SQLITE_OK) {
    ret = mg_err_set(err, store_errno(db, rc), "%s: cannot set pragmas: %s",
                     path, sqlite3_errmsg(db));
    goto cleanup;
  }
  if (sync != 2 || fk != 1) {
    ret = mg_err_set(err, -EIO,
                     "%s: synchronous=%d foreign_keys=%d, wanted FULL (2) and "
                     "ON (1)",
                     path, sync, fk);
    goto cleanup;
  }
  sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, (int *)NULL);
cleanup:
  sqlite3_finalize(stmt);
  return ret;
}

/* Apply migrations until the schema is at `to`; *version gets the version
 * reached.  Each step is one BEGIN IMMEDIATE transaction that also records
 * user_version, so a crash leaves the database at a whole version.  The
 * version is re-read under the write lock in case another process
 * migrated meanwhile. */
static int store_migrate(sqlite3 *db, const char *path, int to, int *version,
                         struct mg_err *err) {
  char *errmsg = NULL;
  char sql[64];
  int ret = 0, cur = 0, from = 0, v = 0;
  int rc = store_query_int(db, "PRAGMA user_version", &cur);
  if (rc != SQLITE_OK) {
    ret = store_read_fail(db, rc, path, err);
    goto cleanup;
  }
  from = cur;
  while (cur < to) {
    rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
      ret = mg_err_set(err, store_errno(db, rc),
                       "%s: cannot start migration %d: %s", path, cur + 1,
                       sqlite3_errmsg(db));
      goto cleanup;
    }
    rc = store_query_int(db, "PRAGMA user_version", &cur);
    if (rc != SQLITE_OK) {
      ret = store_read_fail(db, rc, path, err);
      goto cleanup;
    }
    if (cur > mg__store_latest) {
      ret = mg_err_set(err, -EPROTO,
                       "%s: database schema version %d is newer than this "
                       "madoguchid knows (%d); refusing to touch it "
                       "(downgrade?)",
                       path, cur, mg__store_latest);
      goto cleanup;
    }
    if (cur >= to) {
      store_rollback(db); /* someone else got there first */
      break;
    }
    v = cur + 1;
    rc = sqlite3_exec(db, mg__store_migrations[v].sql, NULL, NULL, &errmsg);
    if (rc == SQLITE_OK) {
      /* A PRAGMA takes no bound parameters; v is our own integer. */
      snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v);
      rc = sqlite3_exec(db, sql, NULL, NULL, &errmsg);
    }
    if (rc == SQLITE_OK)
      rc = sqlite3_exec(db, "COMMIT", NULL, NULL, &errmsg);
    if (rc != SQLITE_OK) {
      ret = mg_err_set(err, store_errno(db, rc),
                       "%s: migration %d (%s) failed: %s; the database stays "
                       "at schema version %d",
                       path, v, mg__store_migrations[v].name,
                       errmsg ? errmsg : sqlite3_errmsg(db), cur);
      goto cleanup;
    }
    cur = v;
  }
  if (cur != from)
    mg_log_info("store", "%s: schema migrated from version %d to %d", path,
                from, cur);
  *version = cur;
cleanup:
  if (ret < 0)
    store_rollback(db);
  sqlite3_free(errmsg);
  return ret;
}

/* The box's identity: created once, on the first start, then kept. */
static int store_ensure_box_id(sqlite3 *db, const char *path,
                               struct mg_err *err) {
  static const char hexdig[] = "0123456789abcdef";
  sqlite3_stmt *stmt = NULL;
  unsigned char raw[STORE_BOX_ID_BYTES];
  char hex[2 * STORE_BOX_ID_BYTES + 1];
  int ret = 0;
  int rc = sqlite3_prepare_v2(db, "SELECT 1 FROM meta WHERE key = 'box_id'", -1,
                              &stmt, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW)
    goto cleanup;
  if (rc != SQLITE_DONE)
    goto fail;
  sqlite3_finalize(stmt);
  stmt = NULL;

  if (RAND_bytes(raw, (int)sizeof(raw)) != 1) {
    ret = mg_err_set(err, -EIO, "%s: no random bytes for the box_id", path);
    goto cleanup;
  }
  for (size_t i = 0; i < sizeof(raw); i++) {
    hex[2 * i] = hexdig[raw[i] >> 4];
    hex[2 * i + 1] = hexdig[raw[i] & 0x0f];
  }
  hex[sizeof(hex) - 1] = '\0';
  /* DO NOTHING: another process may have created one meanwhile. */
  rc = sqlite3_prepare_v2(db,
                          "INSERT INTO meta(key, value, updated_at) "
                          "VALUES('box_id', ?1, " STORE_NOW ") "
                          "ON CONFLICT(key) DO NOTHING",
                          -1, &stmt, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_text(stmt, 1, hex, -1, SQLITE_TRANSIENT);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) {
    mg_log_info("store", "%s: new box_id %s", path, hex);
    goto cleanup;
  }
fail:
  ret = mg_err_set(err, store_errno(db, rc), "%s: cannot set the box_id: %s",
                   path, sqlite3_errmsg(db));
cleanup:
  sqlite3_finalize(stmt);
  return ret;
}

int mg_store_open(const char *path, struct mg_store **out, struct mg_err *err) {
  struct mg_store *st = NULL;
  sqlite3 *db = NULL;
  int ret = 0, recheck = 0, version = 0;
  if (out)
    *out = NULL;
  if (!path || !*path || !out) {
    ret = mg_err_set(err, -EINVAL, "store: no database path given");
    goto cleanup;
  }
  ret = store_precheck(path, &recheck, &version, err);
  if (ret < 0)
    goto cleanup;
  ret = store_connect(path, &db, err);
  if (ret < 0)
    goto cleanup;
  if (recheck) {
    /* Only SQLite's own recovery (rolling back a hot journal) may have
     * written so far; the checks still come before our first write. */
    mg_log_notice("store",
                  "%s: cannot be checked read-only (interrupted "
                  "transaction?); letting SQLite recover it first",
                  path);
    ret = store_check(db, path, 0, &version, err);
    if (ret < 0)
      goto cleanup;
  }
  ret = store_setup(db, path, err);
  if (ret < 0)
    goto cleanup;
  ret = store_migrate(db, path, mg__store_latest, &version, err);
  if (ret < 0)
    goto cleanup;
  ret = store_ensure_box_id(db, path, err);
  if (ret < 0)
    goto cleanup;
  st = calloc(1, sizeof(*st));
  if (!st) {
    ret = mg_err_set(err, -ENOMEM, "%s: out of memory", path);
    goto cleanup;
  }
  st->db = db;
  st->version = version;
  st->wal_fd = -1;
  if (!(st->wal = malloc(strlen(path) + 5))) {
    free(st);
    st = NULL;
    ret = mg_err_set(err, -ENOMEM, "%s: out of memory", path);
    goto cleanup;
  }
  sprintf(st->wal, "%s-wal", path);
  sqlite3_commit_hook(db, on_commit, st);
  db = NULL;
  *out = st;
cleanup:
  store_close_db(db);
  return ret;
}

void mg_store_close(struct mg_store *st) {
  if (!st)
    return;
  mg_store_sync(st);
  ckpt_stop(st);
  for (size_t i = 0; i < st->nsc; i++)
    sqlite3_finalize(st->sc[i].s);
  store_close_db(st->db);
  if (st->wal_fd >= 0)
    close(st->wal_fd);
  free(st->wal);
  free(st);
}

sqlite3_stmt *mg_store_stmt(struct mg_store *st, const char *sql) {
  sqlite3_stmt *s = NULL;
  for (size_t i = 0; i < st->nsc; i++)
    if (st->sc[i].sql == sql) {
      sqlite3_reset(st->sc[i].s);
      sqlite3_clear_bindings(st->sc[i].s);
      return st->sc[i].s;
    }
  if (sqlite3_prepare_v3(st->db, sql, -1,
                         st->nsc < MG_STORE_STMTS ? SQLITE_PREPARE_PERSISTENT
                                                  : 0,
                         &s, NULL) != SQLITE_OK) {
    sqlite3_finalize(s);
    return NULL;
  }
  if (st->nsc < MG_STORE_STMTS) {
    st->sc[st->nsc].sql = sql;
    st->sc[st->nsc++].s = s;
  }
  return s;
}

void mg_store_stmt_done(struct mg_store *st, sqlite3_stmt *s) {
  for (size_t i = 0; s && i < st->nsc; i++)
    if (st->sc[i].s == s) {
      sqlite3_reset(s);
      return;
    }
  sqlite3_finalize(s);
}

/* After each commit (sqlite3_wal_hook, in place of SQLite's auto-checkpoint):
 * a WAL past CKPT_FRAMES wakes the checkpoint thread; the commit goes on.
 * Under writes without a pause the thread never sees the whole WAL copied,
 * and only then may the writer start it over: past CKPT_FRAMES_MAX the
 * thread is held and the checkpoint runs here, as SQLite's own would (busy
 * while the thread finishes the one it is in), so the WAL stays bounded. */
static int on_wal(void *ud, sqlite3 *db, const char *name, int frames) {
  struct mg_store *st = ud;
  int inline_ckpt = frames >= CKPT_FRAMES_MAX;
  pthread_mutex_lock(&st->ck.mu);
  st->ck.hold = inline_ckpt;
  if (!inline_ckpt && frames >= CKPT_FRAMES) {
    st->ck.want = 1;
    pthread_cond_signal(&st->ck.cv);
  }
  pthread_mutex_unlock(&st->ck.mu);
  if (inline_ckpt)
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
  return SQLITE_OK;
}

/* A PASSIVE checkpoint never blocks the writer: it copies what no reader
 * still needs and syncs the database file (this connection keeps
 * synchronous=FULL); the writer restarts the WAL once all was copied.  A
 * checkpoint that could not finish is asked for again by the next commit. */
static void *ckpt_main(void *arg) {
  struct mg_store *st = arg;
  pthread_mutex_lock(&st->ck.mu);
  for (;;) {
    while ((!st->ck.want || st->ck.hold) && !st->ck.stop)
      pthread_cond_wait(&st->ck.cv, &st->ck.mu);
    if (st->ck.stop)
      break;
    st->ck.want = 0;
    pthread_mutex_unlock(&st->ck.mu);
    sqlite3_wal_checkpoint_v2(st->ck.db, "main", SQLITE_CHECKPOINT_PASSIVE,
                              NULL, NULL);
    pthread_mutex_lock(&st->ck.mu);
  }
  pthread_mutex_unlock(&st->ck.mu);
  return NULL;
}

static int ckpt_start(struct mg_store *st) {
  const char *path = sqlite3_db_filename(st->db, "main");
  sqlite3 *db = NULL;
  int rc = -EIO;
  if (st->ck.on)
    return 0;
  if (!path || !*path ||
      sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW,
                      NULL) != SQLITE_OK)
    goto fail;
  /* closing it must leave the WAL to the main connection; a first read
   * makes it see the WAL (a checkpoint before that does nothing) */
  sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
  if (sqlite3_exec(db, "SELECT count(*) FROM sqlite_schema", NULL, NULL,
                   NULL) != SQLITE_OK)
    goto fail;
  st->ck.db = db;
  st->ck.want = st->ck.stop = st->ck.hold = 0;
  if (pthread_mutex_init(&st->ck.mu, NULL) != 0)
    goto fail;
  if (pthread_cond_init(&st->ck.cv, NULL) != 0) {
    pthread_mutex_destroy(&st->ck.mu);
    goto fail;
  }
  if (pthread_create(&st->ck.thread, NULL, ckpt_main, st) != 0) {
    pthread_cond_destroy(&st->ck.cv);
    pthread_mutex_destroy(&st->ck.mu);
    rc = -EAGAIN;
    goto fail;
  }
  st->ck.on = 1;
  sqlite3_wal_hook(st->db, on_wal, st); /* replaces the auto-checkpoint */
  return 0;
fail:
  sqlite3_close(db);
  st->ck.db = NULL;
  return rc;
}

static void ckpt_stop(struct mg_store *st) {
  if (!st->ck.on)
    return;
  sqlite3_wal_autocheckpoint(st->db, CKPT_FRAMES); /* SQLite's own again */
  pthread_mutex_lock(&st->ck.mu);
  st->ck.stop = 1;
  pthread_cond_signal(&st->ck.cv);
  pthread_mutex_unlock(&st->ck.mu);
  pthread_join(st->ck.thread, NULL);
  pthread_cond_destroy(&st->ck.cv);
  pthread_mutex_destroy(&st->ck.mu);
  sqlite3_close(st->ck.db);
  st->ck.db = NULL;
  st->ck.on = 0;
}

int mg_store_group_commit(struct mg_store *st, int on) {
  int rc = sqlite3_exec(st->db, on ? "PRAGMA synchronous=NORMAL"
                                   : "PRAGMA synchronous=FULL",
                        NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    return store_errno(st->db, rc);
  st->grouped = on;
  if (!on) {
    ckpt_stop(st);
    return mg_store_sync(st);
  }
  if ((rc = ckpt_start(st)))
    mg_log_warn("store", "checkpoints stay in the request path (no "
                "checkpoint thread: %s)", strerror(-rc));
  return 0;
}

/* The WAL's frames are written at commit; fdatasync on a descriptor of
 * our own makes them durable without SQLite's per-commit fsync.  A WAL
 * synced half-way is safe: recovery stops at the last frame whose
 * checksum and commit marker hold. */
int mg_store_sync_begin(struct mg_store *st) {
  if (!st || !st->grouped || !st->dirty)
    return -1;
  if (st->wal_fd < 0 &&
      (st->wal_fd = open(st->wal, O_RDONLY | O_CLOEXEC)) < 0)
    return -errno;
  st->dirty = 0; /* commits from now on wait for the next sync */
  return st->wal_fd;
}

void mg_store_sync_failed(struct mg_store *st) {
  if (st)
    st->dirty = 1;
}

int mg_store_sync(struct mg_store *st) {
  int fd = mg_store_sync_begin(st);
  if (fd == -1)
    return 0;
  if (fd < 0)
    return fd;
  if (fdatasync(fd) != 0) {
    int rc = -errno;
    mg_store_sync_failed(st);
    return rc;
  }
  return 0;
}

sqlite3 *mg_store_db(struct mg_store *st) { return st ? st->db : NULL; }

int mg_store_version(struct mg_store *st) { return st ? st->version : -EINVAL; }

int mg_store_latest_version(void) { return mg__store_latest; }

int mg__store_create_at(const char *path, int version, struct mg_err *err) {
  sqlite3 *db = NULL;
  struct stat sb;
  int ret = 0, reached = 0;
  if (!path || !*path || version < 0 || version > mg__store_latest) {
    ret = mg_err_set(err, -EINVAL,
                     "store: cannot create schema version %d (known: 0..%d)",
                     version, mg__store_latest);
    goto cleanup;
  }
  /* Fresh files only: a test must not clobber something by mistake. */
  if (lstat(path, &sb) == 0 && (!S_ISREG(sb.st_mode) || sb.st_size > 0)) {
    ret = mg_err_set(err, -EEXIST, "%s: already exists", path);
    goto cleanup;
  }
  ret = store_connect(path, &db, err);
  if (ret < 0)
    goto cleanup;
  ret = store_setup(db, path, err);
  if (ret < 0)
    goto cleanup;
  ret = store_migrate(db, path, version, &reached, err);
cleanup:
  store_close_db(db);
  return ret;
}

/* ---- runs ------------------------------------------------------------ */

int mg_store_run_begin(struct mg_store *st, const char *version,
                       int64_t *run_id, int *prev_clean) {
  sqlite3_stmt *sel = NULL, *ins = NULL;
  sqlite3 *db = st ? st->db : NULL;
  int ret = 0, prev = 1, rc;
  int64_t id = 0;
  if (!db || !version) {
    ret = -EINVAL;
    goto cleanup;
  }
  /* One transaction: "previous run" and the new row must agree. */
  rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    goto fail;
  rc = sqlite3_prepare_v2(db, "SELECT clean FROM runs ORDER BY id DESC LIMIT 1",
                          -1, &sel, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(sel);
  if (rc == SQLITE_ROW)
    prev = sqlite3_column_int(sel, 0) != 0;
  else if (rc != SQLITE_DONE)
    goto fail;
  rc = sqlite3_prepare_v2(db,
                          "INSERT INTO runs(version, started_at) "
                          "VALUES(?1, " STORE_NOW ")",
                          -1, &ins, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_text(ins, 1, version, -1, SQLITE_TRANSIENT);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(ins);
  if (rc != SQLITE_DONE)
    goto fail;
  id = sqlite3_last_insert_rowid(db);
  rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    goto fail;
  if (run_id)
    *run_id = id;
  if (prev_clean)
    *prev_clean = prev;
  goto cleanup;
fail:
  ret = store_log_fail(db, rc, "recording the run's start");
  store_rollback(db);
cleanup:
  sqlite3_finalize(sel);
  sqlite3_finalize(ins);
  return ret;
}

int mg_store_run_end(struct mg_store *st, int64_t run_id) {
  sqlite3_stmt *stmt = NULL;
  sqlite3 *db = st ? st->db : NULL;
  int ret = 0, rc;
  if (!db) {
    ret = -EINVAL;
    goto cleanup;
  }
  rc = sqlite3_prepare_v2(
      db, "UPDATE runs SET stopped_at = " STORE_NOW ", clean = 1 WHERE id = ?1",
      -1, &stmt, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(stmt, 1, run_id);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(stmt);
  if (rc != SQLITE_DONE) {
    ret = store_log_fail(db, rc, "recording the run's end");
    goto cleanup;
  }
  if (sqlite3_changes(db) == 0)
    ret = -ENOENT;
cleanup:
  sqlite3_finalize(stmt);
  return ret;
}

/* ---- meta ------------------------------------------------------------ */

/* errno tells "absent" (0) from a failure (ENOMEM, EIO...) when NULL. */
char *mg_store_meta_get(struct mg_store *st, const char *key) {
  sqlite3_stmt *stmt = NULL;
  sqlite3 *db = st ? st->db : NULL;
  char *value = NULL;
  int rc;
  if (!db || !key) {
    errno = EINVAL;
    goto cleanup;
  }
  rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?1", -1,
                          &stmt, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) {
    errno = 0;
    goto cleanup;
  }
  if (rc != SQLITE_ROW) {
    errno = -store_log_fail(db, rc, "reading a meta key");
    goto cleanup;
  }
  const char *text = (const char *)sqlite3_column_text(stmt, 0);
  value = strdup(text ? text : "");
  errno = value ? 0 : ENOMEM;
cleanup:
  sqlite3_finalize(stmt);
  return value;
}

int mg_store_meta_set(struct mg_store *st, const char *key, const char *value) {
  sqlite3_stmt *stmt = NULL;
  sqlite3 *db = st ? st->db : NULL;
  int ret = 0, rc;
  if (!db || !key || !value) {
    ret = -EINVAL;
    goto cleanup;
  }
  rc = sqlite3_prepare_v2(db,
                          "INSERT INTO meta(key, value, updated_at) "
                          "VALUES(?1, ?2, " STORE_NOW ") "
                          "ON CONFLICT(key) DO UPDATE SET "
                          "value = excluded.value, "
                          "updated_at = excluded.updated_at",
                          -1, &stmt, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_text(stmt, 2, value, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(stmt);
  if (rc != SQLITE_DONE)
    ret = store_log_fail(db, rc, "writing a meta key");
cleanup:
  sqlite3_finalize(stmt);
  return ret;
}

void mg_store_time(time_t t, char out[24]) {
  struct tm tm;
  if (!gmtime_r(&t, &tm))
    memset(&tm, 0, sizeof(tm));
  strftime(out, 24, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
