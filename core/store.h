/*
 * store.h — the one module that owns the SQLite database
 * (state_dir/madoguchi.db).  WAL journal, synchronous=FULL so that a
 * committed transaction survives a crash or power cut, foreign keys on.
 *
 * Schema changes are numbered, forward-only migrations (store_migrations.c)
 * recorded in PRAGMA user_version and applied at open, each in its own
 * transaction.  A database newer than this build knows, or one that fails
 * its integrity check, is refused with a clear message and never rewritten.
 */
#ifndef MG_STORE_H
#define MG_STORE_H

#include <sqlite3.h>
#include <stdint.h>
#include <time.h>

#include "err.h"

struct mg_store;

/* Open (creating when absent) and migrate.  0 and *out on success;
 * otherwise a negative errno and err says why:
 *   -EPROTO  schema version newer than this build, or not a madoguchi
 *            database (another application's file)
 *   -EIO     not a database, corrupt, or integrity check failed
 *   -ELOOP   the path is a symlink
 *   -EACCES, -EBUSY, -ENOSPC, ...  open/IO failure
 * A refused file is never written (its bytes stay as they were). */
int mg_store_open(const char *path, struct mg_store **out, struct mg_err *err);
void mg_store_close(struct mg_store *st); /* NULL is fine */

/* The raw handle, for core modules that own tables (never plugins). */
sqlite3 *mg_store_db(struct mg_store *st);

/* Group commit (the daemon's request path): on, commits stop waiting for
 * their own fsync (synchronous=NORMAL, still WAL) and mg_store_sync makes
 * everything committed so far durable with one fdatasync of the WAL; the
 * daemon syncs every 250 ms on a worker (mg_store_sync_begin), after a
 * submitted application before it answers, and at close.  A kill loses nothing (the frames are written at
 * commit); a power cut loses at most the last quarter second of drafts.
 * Off (the default, and for madoctl): every commit is fsync'd.
 * On also moves WAL checkpoints (from 1000 frames, as SQLite's own) off
 * the caller's thread: a thread of the store runs them on a second
 * connection, so no commit waits for a checkpoint's syncs (off and
 * mg_store_close stop it). */
int mg_store_group_commit(struct mg_store *st, int on);
int mg_store_sync(struct mg_store *st); /* 0 or -errno */
/* The same off the loop: the WAL's descriptor to fdatasync when commits
 * wait for a sync (they are then counted as synced), -1 when none do, or
 * -errno; after a failed fdatasync, mg_store_sync_failed marks them again. */
int mg_store_sync_begin(struct mg_store *st);
void mg_store_sync_failed(struct mg_store *st);

/* Prepared statements of static SQL texts on the request path (audit
 * rows, session lookups, outbox rows), parsed once for the store's life
 * instead of per call: `sql` must be a string literal or other static
 * text, its address is the key.  Returned reset and unbound (NULL when it
 * does not prepare: sqlite3_errmsg says why); give it back with
 * mg_store_stmt_done (in: the statement, NULL is fine), which resets it so
 * no read transaction stays open.  Past MG_STORE_STMTS texts a statement
 * is prepared per use and finalized there.  Loop thread only, like the
 * rest of the store; mg_store_close finalizes them. */
#define MG_STORE_STMTS 24
sqlite3_stmt *mg_store_stmt(struct mg_store *st, const char *sql);
void mg_store_stmt_done(struct mg_store *st, sqlite3_stmt *s);

int mg_store_version(struct mg_store *st);  /* schema version in use */
int mg_store_latest_version(void);          /* highest this build knows */

/* Daemon run bookkeeping (migration 2): a row per start; the previous
 * run's clean flag tells a technician about crashes. */
int mg_store_run_begin(struct mg_store *st, const char *version,
                       int64_t *run_id, int *prev_clean);
int mg_store_run_end(struct mg_store *st, int64_t run_id);

/* Box-wide key/value settings (migration 1), e.g. "box_id".
 * mg_store_meta_get returns a malloc'd string, or NULL with errno 0 when
 * absent and errno set on failure.  Failures of these calls are logged
 * (key names only, never values). */
char *mg_store_meta_get(struct mg_store *st, const char *key);
int mg_store_meta_set(struct mg_store *st, const char *key, const char *value);

/* A UTC time as stored in every table: "2026-04-01T09:30:00Z". */
void mg_store_time(time_t t, char out[24]);

/* For tests: create a database at exactly schema version `version`
 * (0 = a valid empty WAL database) by applying migrations 1..version;
 * -EEXIST when path already has content. */
int mg__store_create_at(const char *path, int version, struct mg_err *err);

#endif
