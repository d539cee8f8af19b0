/*
 * store_migrations.c — the database schema, as numbered forward-only steps.
 *
 * Rules (a box in a city hall may skip any number of releases, and a
 * resident's data must never be lost on upgrade):
 *   - Never edit, renumber or remove a migration once it has been released:
 *     databases in the field have already run it.  Fix mistakes with a new
 *     migration.
 *   - Append only: the new step gets the next number (its index below);
 *     mg__store_latest follows from the table.
 *   - Each step must work on data written by every earlier version (tables
 *     may hold rows: give new NOT NULL columns a DEFAULT, rebuild tables
 *     with INSERT ... SELECT rather than dropping them).
 *   - No BEGIN/COMMIT and no PRAGMA user_version here: store.c runs each
 *     step in its own BEGIN IMMEDIATE transaction and records the version.
 *   - No down-migrations: an older daemon refuses a newer database.
 */
#include "store_internal.h"

#include <stddef.h>

const struct mg__store_migration mg__store_migrations[] = {
    [0] = {NULL, NULL},

    /* 1: box-wide settings.  The application_id (MG__STORE_APP_ID, written
     * in decimal because this text is frozen) marks the file as ours. */
    [1] = {"meta table", "CREATE TABLE meta (\n"
                         "  key TEXT PRIMARY KEY,\n"
                         "  value TEXT NOT NULL,\n"
                         "  updated_at TEXT NOT NULL\n"
                         ");\n"
                         "PRAGMA application_id = 1296516173;\n"},

    /* 2: one row per daemon start; clean=0 on the previous row at start
     * means the daemon crashed or lost power. */
    [2] = {"runs table", "CREATE TABLE runs (\n"
                         "  id INTEGER PRIMARY KEY,\n"
                         "  version TEXT NOT NULL,\n"
                         "  started_at TEXT NOT NULL,\n"
                         "  stopped_at TEXT,\n"
                         "  clean INTEGER NOT NULL DEFAULT 0\n"
                         ");\n"},

    /* 3: staff accounts and their sessions (core/auth.c).  Only hashes are
     * kept: scrypt for passwords, SHA-256 for session tokens. */
    [3] = {"users and sessions",
           "CREATE TABLE users (\n"
           "  id TEXT PRIMARY KEY,\n"
           "  name TEXT NOT NULL,\n"
           "  role TEXT NOT NULL CHECK(role IN "
           "('staff','supervisor','administrator')),\n"
           "  pw_hash TEXT NOT NULL,\n"
           "  valid_from TEXT,\n"
           "  valid_until TEXT,\n"
           "  failed INTEGER NOT NULL DEFAULT 0,\n"
           "  locked_until TEXT,\n"
           "  created_at TEXT NOT NULL\n"
           ");\n"
           "CREATE TABLE sessions (\n"
           "  token_hash TEXT PRIMARY KEY,\n"
           "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,\n"
           "  counter TEXT NOT NULL,\n"
           "  csrf TEXT NOT NULL,\n"
           "  created_at TEXT NOT NULL,\n"
           "  expires_at TEXT NOT NULL\n"
           ");\n"
           "CREATE INDEX sessions_user ON sessions(user_id);\n"},
};

const int mg__store_latest =
    (int)(sizeof(mg__store_migrations) / sizeof(mg__store_migrations[0])) - 1;
