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

    /* 4: visits (cases, core/visit.c), the tablets registered to counters
     * and the audit log (core/audit.c).  Residents' personal data (names,
     * kana, birth dates, addresses, notes) is only ever in the sealed
     * `personal` and `body` blobs (AES-256-GCM, core/crypto.h); the rest
     * are ids, answers and times. */
    [4] = {"visits, tablets and the audit log",
           "CREATE TABLE visits (\n"
           "  id TEXT PRIMARY KEY,\n"
           "  number TEXT NOT NULL UNIQUE,\n"
           "  token_hash TEXT NOT NULL UNIQUE,\n"
           "  life_event TEXT NOT NULL,\n"
           "  pack_commit TEXT NOT NULL,\n"
           "  counter TEXT NOT NULL,\n"
           "  created_by TEXT NOT NULL,\n"
           "  created_at TEXT NOT NULL,\n"
           "  filing_date TEXT NOT NULL,\n"
           "  status TEXT NOT NULL DEFAULT 'open' CHECK(status IN "
           "('open','closed')),\n"
           "  closed_at TEXT,\n"
           "  purge_after TEXT,\n"
           "  support_counter TEXT,\n"
           "  facts TEXT NOT NULL DEFAULT '{}',\n"
           "  personal BLOB NOT NULL,\n"
           "  updated_at TEXT NOT NULL\n"
           ");\n"
           "CREATE INDEX visits_created ON visits(created_at);\n"
           "CREATE INDEX visits_purge ON visits(purge_after);\n"
           "CREATE TABLE visit_answers (\n"
           "  visit_id TEXT NOT NULL REFERENCES visits(id) ON DELETE CASCADE,\n"
           "  question TEXT NOT NULL,\n"
           "  answer INTEGER NOT NULL CHECK(answer IN (0,1)),\n"
           "  by_user TEXT NOT NULL,\n"
           "  counter TEXT NOT NULL,\n"
           "  at TEXT NOT NULL,\n"
           "  PRIMARY KEY (visit_id, question)\n"
           ");\n"
           "CREATE TABLE visit_manual (\n"
           "  visit_id TEXT NOT NULL REFERENCES visits(id) ON DELETE CASCADE,\n"
           "  procedure TEXT NOT NULL,\n"
           "  action TEXT NOT NULL CHECK(action IN ('add','remove')),\n"
           "  by_user TEXT NOT NULL,\n"
           "  counter TEXT NOT NULL,\n"
           "  at TEXT NOT NULL,\n"
           "  PRIMARY KEY (visit_id, procedure)\n"
           ");\n"
           "CREATE TABLE visit_status (\n"
           "  visit_id TEXT NOT NULL REFERENCES visits(id) ON DELETE CASCADE,\n"
           "  procedure TEXT NOT NULL,\n"
           "  counter TEXT NOT NULL,\n"
           "  status TEXT NOT NULL CHECK(status IN "
           "('pending','in_progress','done')),\n"
           "  by_user TEXT NOT NULL,\n"
           "  at TEXT NOT NULL,\n"
           "  PRIMARY KEY (visit_id, procedure, counter)\n"
           ");\n"
           "CREATE TABLE visit_notes (\n"
           "  id INTEGER PRIMARY KEY,\n"
           "  visit_id TEXT NOT NULL REFERENCES visits(id) ON DELETE CASCADE,\n"
           "  author TEXT NOT NULL,\n"
           "  counter TEXT NOT NULL,\n"
           "  at TEXT NOT NULL,\n"
           "  body BLOB NOT NULL\n"
           ");\n"
           "CREATE INDEX visit_notes_visit ON visit_notes(visit_id);\n"
           "CREATE TABLE visit_unmask (\n"
           "  visit_id TEXT NOT NULL REFERENCES visits(id) ON DELETE CASCADE,\n"
           "  counter TEXT NOT NULL,\n"
           "  by_user TEXT NOT NULL,\n"
           "  at TEXT NOT NULL,\n"
           "  until TEXT NOT NULL,\n"
           "  PRIMARY KEY (visit_id, counter)\n"
           ");\n"
           "CREATE TABLE tablets (\n"
           "  id TEXT PRIMARY KEY,\n"
           "  token_hash TEXT NOT NULL UNIQUE,\n"
           "  counter TEXT NOT NULL,\n"
           "  name TEXT NOT NULL,\n"
           "  created_by TEXT NOT NULL,\n"
           "  created_at TEXT NOT NULL\n"
           ");\n"
           "CREATE TABLE audit (\n"
           "  seq INTEGER PRIMARY KEY,\n"
           "  at TEXT NOT NULL,\n"
           "  actor TEXT NOT NULL,\n"
           "  counter TEXT NOT NULL,\n"
           "  action TEXT NOT NULL,\n"
           "  object TEXT NOT NULL,\n"
           "  detail TEXT NOT NULL,\n"
           "  prev TEXT NOT NULL,\n"
           "  hash TEXT NOT NULL\n"
           ");\n"
           "CREATE INDEX audit_object ON audit(object);\n"
           "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN\n"
           "  SELECT RAISE(ABORT, 'the audit log is append-only');\n"
           "END;\n"
           "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN\n"
           "  SELECT RAISE(ABORT, 'the audit log is append-only');\n"
           "END;\n"},
    /* Forms of a case (issue 5): forms added, copied or removed by hand
     * (the guide's own are computed), the visitor's one signature (sealed,
     * S1) and the submitted applications with their sealed payload and
     * linkage file (X4).  Field values live in the case's sealed
     * `personal` blob. */
    [5] = {"forms, signatures and applications",
           "CREATE TABLE visit_forms (\n"
           "  visit_id TEXT NOT NULL REFERENCES visits(id) ON DELETE CASCADE,\n"
           "  instance TEXT NOT NULL,\n"
           "  form TEXT NOT NULL,\n"
           "  action TEXT NOT NULL CHECK(action IN ('add','remove')),\n"
           "  by_user TEXT NOT NULL,\n"
           "  counter TEXT NOT NULL,\n"
           "  at TEXT NOT NULL,\n"
           "  PRIMARY KEY (visit_id, instance)\n"
           ");\n"
           "CREATE TABLE visit_signature (\n"
           "  visit_id TEXT PRIMARY KEY REFERENCES visits(id) ON DELETE "
           "CASCADE,\n"
           "  body BLOB NOT NULL,\n"
           "  by_user TEXT NOT NULL,\n"
           "  counter TEXT NOT NULL,\n"
           "  at TEXT NOT NULL\n"
           ");\n"
           "CREATE TABLE applications (\n"
           "  id TEXT PRIMARY KEY,\n"
           "  visit_id TEXT NOT NULL REFERENCES visits(id) ON DELETE CASCADE,\n"
           "  form TEXT NOT NULL,\n"
           "  pack_commit TEXT NOT NULL,\n"
           "  submitted_by TEXT NOT NULL,\n"
           "  counter TEXT NOT NULL,\n"
           "  submitted_at TEXT NOT NULL,\n"
           "  payload BLOB NOT NULL,\n"
           "  export BLOB,\n"
           "  export_name TEXT,\n"
           "  exported_at TEXT,\n"
           "  UNIQUE (visit_id, form)\n"
           ");\n"
           "CREATE INDEX applications_export ON applications(exported_at) "
           "WHERE export IS NOT NULL;\n"},
    /* The outbox to the city's tenant (issue 8, core/outbox.h): each
     * application keeps its own sealed copy until the tenant acknowledged
     * it and [sync] retention has passed (D1), so a case's purge does not
     * lose an application not yet delivered.  Case snapshots (cross-floor)
     * carry no payload: they are exported when a batch is built. */
    [6] = {"outbox to the tenant",
           "CREATE TABLE outbox (\n"
           "  seq INTEGER PRIMARY KEY AUTOINCREMENT,\n"
           "  kind TEXT NOT NULL CHECK (kind IN ('application','case')),\n"
           "  ref TEXT NOT NULL,\n"
           "  version INTEGER NOT NULL DEFAULT 0,\n"
           "  payload BLOB,\n"
           "  created_at TEXT NOT NULL,\n"
           "  attempts INTEGER NOT NULL DEFAULT 0,\n"
           "  next_at TEXT,\n"
           "  last_error TEXT,\n"
           "  rejected INTEGER NOT NULL DEFAULT 0,\n"
           "  acked_at TEXT\n"
           ");\n"
           "CREATE UNIQUE INDEX outbox_pending ON outbox(kind, ref) "
           "WHERE acked_at IS NULL;\n"
           "CREATE INDEX outbox_acked ON outbox(acked_at) "
           "WHERE acked_at IS NOT NULL;\n"
           "CREATE TABLE sync_state (\n"
           "  key TEXT PRIMARY KEY,\n"
           "  value TEXT NOT NULL\n"
           ");\n"},
    /* Cross-floor cases (issue 8, C1, G5, core/visit_transfer.h): every
     * change bumps a case's version (the tenant keeps the newest; last
     * writer wins), and a case fetched from the tenant remembers the box
     * it was made on (NULL: made here). */
    [7] = {"case versions and origin box",
           "ALTER TABLE visits ADD COLUMN version INTEGER NOT NULL "
           "DEFAULT 0;\n"
           "ALTER TABLE visits ADD COLUMN origin_box TEXT;\n"},
};

const int mg__store_latest =
    (int)(sizeof(mg__store_migrations) / sizeof(mg__store_migrations[0])) - 1;
