/*
 * store_internal.h — shared between store.c and store_migrations.c only.
 */
#ifndef MG_STORE_INTERNAL_H
#define MG_STORE_INTERNAL_H

/* PRAGMA application_id of every madoguchi database, set by migration 1:
 * "MGDM" = 0x4D47444D = 1296516173.  Never change it: it is how we tell our
 * files from other programs' SQLite files. */
#define MG__STORE_APP_ID 0x4D47444D

struct mg__store_migration {
  const char *name; /* a few words, for messages */
  const char *sql;  /* one or more statements, run by sqlite3_exec */
};

/* mg__store_migrations[v] takes the schema from version v-1 to v;
 * index 0 is unused.  mg__store_latest is the highest v. */
extern const struct mg__store_migration mg__store_migrations[];
extern const int mg__store_latest;

#endif
