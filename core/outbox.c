/*
 * outbox.c — the rows the box still owes the city's tenant (outbox.h,
 * issue 8: D1, N3).  Plain SQL on the daemon's connection: the caller's
 * transaction, when there is one, holds every statement here.
 */
#include "outbox.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* The associated data that binds a sealed payload to its row. */
static void payload_aad(const char *kind, const char *ref, int64_t version,
                        char out[96]) {
  snprintf(out, 96, "outbox:%s:%s:%lld", kind, ref, (long long)version);
}

/* A kept statement (mg_store_stmt: the sync client runs these per record,
 * N3) with the text args ?1..?n bound; NULL on failure.  Give it back with
 * mg_store_stmt_done. */
static sqlite3_stmt *prep(struct mg_store *st, const char *sql,
                          const char *const *args, int n) {
  sqlite3_stmt *s = mg_store_stmt(st, sql);
  if (!s)
    goto fail;
  for (int i = 0; i < n; i++)
    if (sqlite3_bind_text(s, i + 1, args[i], -1, SQLITE_STATIC) != SQLITE_OK)
      goto fail;
  return s;
fail:
  mg_log_err("outbox", "database: %s", sqlite3_errmsg(mg_store_db(st)));
  mg_store_stmt_done(st, s);
  return NULL;
}

/* Step a statement to its end: 0, -EEXIST (constraint) or -EIO. */
static int run(struct mg_store *st, sqlite3_stmt *s) {
  int rc = s ? sqlite3_step(s) : SQLITE_ERROR;
  if (rc == SQLITE_DONE)
    rc = 0;
  else if ((rc & 0xff) == SQLITE_CONSTRAINT) /* extended codes may be on */
    rc = -EEXIST;
  else {
    if (s)
      mg_log_err("outbox", "database: %s", sqlite3_errmsg(mg_store_db(st)));
    rc = -EIO;
  }
  mg_store_stmt_done(st, s);
  return rc;
}

int mg_outbox_put_application(struct mg_store *st, const struct mg_key *key,
                              const char *app_id, const void *json,
                              size_t len) {
  unsigned char *blob = NULL;
  size_t blen = 0;
  char aad[96], now[24];
  sqlite3_stmt *s = NULL;
  int rc;
  payload_aad("application", app_id, 0, aad);
  mg_store_time(time(NULL), now);
  if (mg_seal(key, aad, json, len, &blob, &blen)) {
    rc = -EIO;
    goto out;
  }
  const char *args[] = {app_id, now};
  s = prep(st,
           "INSERT INTO outbox (kind, ref, version, payload, created_at) "
           "VALUES ('application', ?1, 0, ?3, ?2)",
           args, 2);
  if (s && sqlite3_bind_blob(s, 3, blob, (int)blen, SQLITE_STATIC) != SQLITE_OK) {
    mg_store_stmt_done(st, s);
    s = NULL;
  }
  rc = run(st, s);
out:
  free(blob);
  return rc;
}

int mg_outbox_case_changed(struct mg_store *st, const char *case_id,
                           int64_t version) {
  char now[24], ver[24];
  mg_store_time(time(NULL), now);
  snprintf(ver, sizeof(ver), "%lld", (long long)version);
  const char *args[] = {case_id, ver, now};
  /* One pending row per case: a newer snapshot replaces the one not yet
   * sent and is sent at once (a rejected older one does not block it).
   * Every change of a case comes here: parsed once (mg_store_stmt). */
  sqlite3_stmt *s = mg_store_stmt(
      st, "INSERT INTO outbox (kind, ref, version, payload, "
          "created_at) VALUES ('case', ?1, CAST(?2 AS INTEGER), "
          "NULL, ?3) ON CONFLICT (kind, ref) WHERE acked_at IS "
          "NULL DO UPDATE SET version = MAX(version, "
          "excluded.version), attempts = 0, next_at = NULL, "
          "last_error = NULL, rejected = 0");
  int rc = s ? SQLITE_OK : SQLITE_ERROR;
  for (int i = 0; rc == SQLITE_OK && i < 3; i++)
    rc = sqlite3_bind_text(s, i + 1, args[i], -1, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  if (rc != SQLITE_DONE)
    mg_log_err("outbox", "database: %s", sqlite3_errmsg(mg_store_db(st)));
  mg_store_stmt_done(st, s);
  return rc == SQLITE_DONE ? 0 : -EIO;
}

void mg_outbox_rows_free(struct mg_outbox_row *rows, size_t n) {
  for (size_t i = 0; rows && i < n; i++) {
    if (rows[i].plain)
      OPENSSL_cleanse(rows[i].plain, rows[i].plain_len);
    free(rows[i].plain);
  }
  free(rows);
}

int mg_outbox_due(struct mg_store *st, const struct mg_key *key, time_t now,
                  size_t max, struct mg_outbox_row **rows, size_t *n) {
  return mg_outbox_due_after(st, key, now, 0, max, rows, n);
}

int mg_outbox_due_after(struct mg_store *st, const struct mg_key *key,
                        time_t now, int64_t after_seq, size_t max,
                        struct mg_outbox_row **rows, size_t *n) {
  char now_s[24], lim[24], after[24];
  struct mg_outbox_row *r = NULL;
  size_t k = 0;
  int rc = 0, step;
  int64_t bad[64];
  size_t nbad = 0;
  mg_store_time(now, now_s);
  snprintf(lim, sizeof(lim), "%zu", max);
  snprintf(after, sizeof(after), "%lld", (long long)after_seq);
  *rows = NULL;
  *n = 0;
  if (max == 0)
    return 0;
  const char *args[] = {now_s, lim, after};
  sqlite3_stmt *s = prep(st,
                         "SELECT seq, kind, ref, version, payload FROM outbox "
                         "WHERE acked_at IS NULL AND rejected = 0 AND "
                         "(next_at IS NULL OR next_at <= ?1) AND "
                         "seq > CAST(?3 AS INTEGER) ORDER BY seq "
                         "LIMIT CAST(?2 AS INTEGER)",
                         args, 3);
  if (!s || !(r = calloc(max, sizeof(*r)))) {
    rc = -EIO;
    goto out;
  }
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    struct mg_outbox_row *x = &r[k];
    const char *kind = (const char *)sqlite3_column_text(s, 1);
    const char *ref = (const char *)sqlite3_column_text(s, 2);
    x->seq = sqlite3_column_int64(s, 0);
    snprintf(x->kind, sizeof(x->kind), "%s", kind ? kind : "");
    snprintf(x->ref, sizeof(x->ref), "%s", ref ? ref : "");
    x->version = sqlite3_column_int64(s, 3);
    if (sqlite3_column_type(s, 4) != SQLITE_NULL) {
      char aad[96];
      payload_aad(x->kind, x->ref, x->version, aad);
      if (mg_open(key, aad, sqlite3_column_blob(s, 4),
                  (size_t)sqlite3_column_bytes(s, 4), &x->plain,
                  &x->plain_len)) {
        /* marked after the read (not while the statement is running) */
        if (nbad < sizeof(bad) / sizeof(bad[0]))
          bad[nbad++] = x->seq;
        memset(x, 0, sizeof(*x));
        continue;
      }
    } else if (strcmp(x->kind, "application") == 0) {
      if (nbad < sizeof(bad) / sizeof(bad[0]))
        bad[nbad++] = x->seq;
      memset(x, 0, sizeof(*x));
      continue;
    }
    k++;
  }
  if (step != SQLITE_DONE) {
    mg_log_err("outbox", "database: %s", sqlite3_errmsg(mg_store_db(st)));
    rc = -EIO;
  }
out:
  mg_store_stmt_done(st, s);
  for (size_t i = 0; i < nbad; i++) {
    mg_log_err("outbox", "row %lld: its sealed payload does not open with "
               "the data key; kept, not sent", (long long)bad[i]);
    mg_outbox_rejected(st, bad[i], "bad_payload: the sealed copy does not "
                       "open with this box's data key");
  }
  if (rc) {
    mg_outbox_rows_free(r, k);
    return rc;
  }
  if (k == 0) {
    free(r);
    r = NULL;
  }
  *rows = r;
  *n = k;
  return 0;
}

int mg_outbox_acked(struct mg_store *st, int64_t seq, int64_t version,
                    time_t now) {
  char now_s[24], seq_s[24], ver_s[24];
  mg_store_time(now, now_s);
  snprintf(seq_s, sizeof(seq_s), "%lld", (long long)seq);
  snprintf(ver_s, sizeof(ver_s), "%lld", (long long)version);
  const char *args[] = {seq_s, now_s, ver_s};
  return run(st, prep(st,
                      "UPDATE outbox SET acked_at = ?2, last_error = NULL, "
                      "next_at = NULL WHERE seq = CAST(?1 AS INTEGER) AND "
                      "acked_at IS NULL AND (CAST(?3 AS INTEGER) < 0 OR "
                      "version = CAST(?3 AS INTEGER))",
                      args, 3)) ? -EIO : 0;
}

int mg_outbox_rejected(struct mg_store *st, int64_t seq, const char *why) {
  char seq_s[24];
  snprintf(seq_s, sizeof(seq_s), "%lld", (long long)seq);
  const char *args[] = {seq_s, why ? why : "rejected"};
  return run(st, prep(st,
                      "UPDATE outbox SET rejected = 1, last_error = "
                      "substr(?2, 1, 400) WHERE seq = CAST(?1 AS INTEGER)",
                      args, 2)) ? -EIO : 0;
}

int mg_outbox_retry_later(struct mg_store *st, int64_t seq, time_t now,
                          double delay_s, const char *why) {
  char seq_s[24], at[24];
  if (!(delay_s >= 0))
    delay_s = 0;
  if (delay_s > 365.0 * 86400)
    delay_s = 365.0 * 86400;
  /* next_at has whole seconds: round up so a row is never due early */
  time_t whole = (time_t)delay_s;
  mg_store_time(now + whole + ((double)whole < delay_s ? 1 : 0), at);
  snprintf(seq_s, sizeof(seq_s), "%lld", (long long)seq);
  const char *args[] = {seq_s, at, why ? why : "retry"};
  return run(st, prep(st,
                      "UPDATE outbox SET attempts = attempts + 1, next_at = "
                      "?2, last_error = substr(?3, 1, 400) WHERE seq = "
                      "CAST(?1 AS INTEGER) AND acked_at IS NULL",
                      args, 3)) ? -EIO : 0;
}

int mg_outbox_all_due(struct mg_store *st) {
  return run(st, prep(st,
                      "UPDATE outbox SET next_at = NULL WHERE acked_at IS NULL "
                      "AND rejected = 0 AND next_at IS NOT NULL",
                      NULL, 0)) ? -EIO : 0;
}

static time_t parse_time(const char *s) {
  struct tm tm;
  memset(&tm, 0, sizeof(tm));
  if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm))
    return (time_t)-1;
  return timegm(&tm);
}

int mg_outbox_stats(struct mg_store *st, time_t now, struct mg_outbox_stats *o) {
  sqlite3_stmt *s = prep(st,
                         "SELECT "
                         "(SELECT count(*) FROM outbox WHERE acked_at IS NULL "
                         "AND rejected = 0), "
                         "(SELECT count(*) FROM outbox WHERE acked_at IS NULL "
                         "AND rejected = 1), "
                         "(SELECT count(*) FROM outbox WHERE acked_at IS NOT "
                         "NULL), "
                         "(SELECT min(created_at) FROM outbox WHERE acked_at "
                         "IS NULL AND rejected = 0)",
                         NULL, 0);
  int rc = -EIO;
  memset(o, 0, sizeof(*o));
  o->oldest_age_s = -1;
  if (s && sqlite3_step(s) == SQLITE_ROW) {
    o->pending = sqlite3_column_int64(s, 0);
    o->rejected = sqlite3_column_int64(s, 1);
    o->acked = sqlite3_column_int64(s, 2);
    time_t t = parse_time((const char *)sqlite3_column_text(s, 3));
    if (t != (time_t)-1)
      o->oldest_age_s = now > t ? (int64_t)(now - t) : 0;
    rc = 0;
  }
  mg_store_stmt_done(st, s);
  return rc;
}

int mg_outbox_purge(struct mg_store *st, time_t now, int64_t retention_s,
                    size_t *purged) {
  sqlite3 *db = mg_store_db(st);
  char cut[24];
  int rc;
  size_t np = 0;
  mg_store_time(now - (time_t)retention_s, cut);
  const char *args[] = {cut};
  /* secure_delete (store.c) zeroes the freed pages of the database */
  rc = run(st, prep(st,
                    "DELETE FROM outbox WHERE acked_at IS NOT NULL AND "
                    "acked_at <= ?1",
                    args, 1));
  if (rc == 0)
    np = (size_t)sqlite3_changes(db);
  else
    rc = -EIO;
  /* ...and the WAL keeps the old page images until a checkpoint. Only
   * outside a transaction (the caller's would otherwise hold them). */
  if (rc == 0 && np && sqlite3_get_autocommit(db))
    sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL,
                              NULL);
  if (np)
    mg_log_notice("outbox", "%zu acknowledged row(s) past retention purged",
                  np);
  if (purged)
    *purged = np;
  return rc;
}
