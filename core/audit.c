/*
 * audit.c — the append-only, hash-chained audit log (audit.h).
 *
 * Two layers protect the table.  The triggers of migration 4 refuse UPDATE
 * and DELETE through SQLite, which stops mistakes and our own code; the
 * hash chain catches someone who edits the file with the triggers dropped:
 * a changed row no longer matches its hash, a re-hashed row breaks the
 * next row's prev, and a removed row leaves a gap in seq.
 *
 * What the chain alone cannot show is a deleted tail: drop the last rows
 * and what remains is a valid, shorter chain.  That needs the newest
 * (seq, hash) anchored outside this file (the tenant, a printed receipt);
 * future work.
 */
#include "audit.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

#define HASH_HEX 64
static const char zero_hash[HASH_HEX + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* A SQLite result code as a negative errno, for callers that only branch
 * on "busy, full or broken". */
static int sql_errno(int rc) {
  switch (rc & 0xff) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return -EBUSY;
  case SQLITE_FULL:
    return -ENOSPC;
  case SQLITE_NOMEM:
    return -ENOMEM;
  case SQLITE_READONLY:
    return -EACCES;
  default:
    return -EIO;
  }
}

/* The row hash of audit.h.  f[] holds the fields in contract order (prev,
 * seq, at, actor, counter, action, object, detail), n[] their lengths: a
 * tampered row may hold NUL bytes, so lengths, not strlen. */
static int row_hash(const char *const f[8], const size_t n[8],
                    char out[HASH_HEX + 1]) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned char md[32];
  unsigned int len = 0;
  int rc = -EIO;
  if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
    goto out;
  for (int i = 0; i < 8; i++)
    if ((i && EVP_DigestUpdate(ctx, "\n", 1) != 1) ||
        EVP_DigestUpdate(ctx, f[i], n[i]) != 1)
      goto out;
  if (EVP_DigestFinal_ex(ctx, md, &len) != 1 || len != sizeof(md))
    goto out;
  for (int i = 0; i < 32; i++) {
    out[2 * i] = "0123456789abcdef"[md[i] >> 4];
    out[2 * i + 1] = "0123456789abcdef"[md[i] & 15];
  }
  out[HASH_HEX] = '\0';
  rc = 0;
out:
  EVP_MD_CTX_free(ctx);
  return rc;
}

/* Fields joined by "\n" in the hash must not hold "\n" themselves, or two
 * different rows could hash alike; detail is last, so it may. */
static int field_ok(const char *s) {
  return s && !strchr(s, '\n');
}

int mg_audit_append(struct mg_store *st, time_t now, const char *actor,
                    const char *counter, const char *action,
                    const char *object, const char *detail) {
  sqlite3 *db = st ? mg_store_db(st) : NULL;
  sqlite3_stmt *sel = NULL, *ins = NULL;
  char at[24], prev[HASH_HEX + 1], seqs[24], hash[HASH_HEX + 1];
  struct tm tm;
  int64_t seq = 1;
  int own = 0, ret = 0, rc = SQLITE_OK;

  if (!detail)
    detail = "";
  if (!db || !field_ok(actor) || !field_ok(counter) || !field_ok(action) ||
      !field_ok(object) || !gmtime_r(&now, &tm)) {
    mg_log_err("audit", "refused a malformed record (action %s)",
               field_ok(action) ? action : "?");
    return -EINVAL;
  }
  strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
  /* Reading the last hash and inserting the next row must be atomic, or
   * two writers would chain to the same prev.  IMMEDIATE takes the write
   * lock up front.  A caller that already holds a transaction keeps it:
   * we run inside it, and it commits or rolls back the row with its own
   * work (on failure here the row is simply not added). */
  if (sqlite3_get_autocommit(db)) {
    if ((rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) != SQLITE_OK)
      goto fail;
    own = 1;
  }
  /* Both statements are parsed once for the store's life (mg_store_stmt):
   * parsing them was most of an append's cost, and reads are audited too. */
  sel = mg_store_stmt(st, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
  rc = sel ? sqlite3_step(sel) : SQLITE_ERROR;
  if (rc == SQLITE_ROW) {
    const unsigned char *h = sqlite3_column_text(sel, 1);
    seq = sqlite3_column_int64(sel, 0);
    if (seq == INT64_MAX) {
      ret = -EOVERFLOW;
      mg_log_err("audit", "the audit log is full (seq %" PRId64 ")", seq);
      goto cleanup;
    }
    seq++;
    /* A malformed last hash is chained as it is: verify will name it. */
    snprintf(prev, sizeof(prev), "%s", h ? (const char *)h : "");
  } else if (rc == SQLITE_DONE) {
    memcpy(prev, zero_hash, sizeof(prev));
  } else {
    goto fail;
  }
  snprintf(seqs, sizeof(seqs), "%" PRId64, seq);
  {
    const char *f[8] = {prev, seqs, at, actor, counter, action, object, detail};
    size_t n[8];
    for (int i = 0; i < 8; i++)
      n[i] = strlen(f[i]);
    if ((ret = row_hash(f, n, hash)))
      goto cleanup;
  }
  ins = mg_store_stmt(st, "INSERT INTO audit(seq, at, actor, counter, action, "
                          "object, detail, prev, hash) VALUES (?,?,?,?,?,?,?,?,?)");
  if (!ins) {
    rc = SQLITE_ERROR;
    goto fail;
  }
  sqlite3_bind_int64(ins, 1, seq);
  sqlite3_bind_text(ins, 2, at, -1, SQLITE_STATIC);
  sqlite3_bind_text(ins, 3, actor, -1, SQLITE_STATIC);
  sqlite3_bind_text(ins, 4, counter, -1, SQLITE_STATIC);
  sqlite3_bind_text(ins, 5, action, -1, SQLITE_STATIC);
  sqlite3_bind_text(ins, 6, object, -1, SQLITE_STATIC);
  sqlite3_bind_text(ins, 7, detail, -1, SQLITE_STATIC);
  sqlite3_bind_text(ins, 8, prev, -1, SQLITE_STATIC);
  sqlite3_bind_text(ins, 9, hash, -1, SQLITE_STATIC);
  if ((rc = sqlite3_step(ins)) != SQLITE_DONE)
    goto fail;
  if (own && (rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK)
    goto fail;
  own = 0;
  goto cleanup;
fail:
  /* The detail may be free text: never logged. */
  mg_log_err("audit", "cannot record %s on %s: %s", action, object,
             sqlite3_errmsg(db));
  ret = sql_errno(rc);
cleanup:
  mg_store_stmt_done(st, sel);
  mg_store_stmt_done(st, ins);
  /* Only our own transaction is rolled back (a failed COMMIT may already
   * have ended it). */
  if (own && !sqlite3_get_autocommit(db))
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return ret;
}

int mg_audit_verify(struct mg_store *st, int64_t *rows, struct mg_err *err) {
  sqlite3 *db = st ? mg_store_db(st) : NULL;
  sqlite3_stmt *s = NULL;
  char prev[HASH_HEX + 1], hash[HASH_HEX + 1], seqs[24];
  int64_t want = 1, good = 0;
  int ret = 0, rc;

  memcpy(prev, zero_hash, sizeof(prev));
  if (!db) {
    ret = mg_err_set(err, -EINVAL, "no database");
    goto out;
  }
  /* One statement reads one snapshot (WAL), whatever is appended meanwhile. */
  rc = sqlite3_prepare_v2(db,
                          "SELECT seq, at, actor, counter, action, object, "
                          "detail, prev, hash FROM audit ORDER BY seq",
                          -1, &s, NULL);
  if (rc != SQLITE_OK) {
    ret = mg_err_set(err, sql_errno(rc), "database: %s", sqlite3_errmsg(db));
    goto out;
  }
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    int64_t seq = sqlite3_column_int64(s, 0);
    const char *f[8];
    size_t n[8];
    if (seq < want) { /* only a zero or negative seq sorts before 1 */
      ret = mg_err_set(err, -EBADMSG, "row %" PRId64 ": not a valid row number", seq);
      goto out;
    }
    if (seq > want) {
      if (seq - 1 == want)
        ret = mg_err_set(err, -EBADMSG, "row %" PRId64 " is missing", want);
      else
        ret = mg_err_set(err, -EBADMSG, "rows %" PRId64 "..%" PRId64 " are missing",
                         want, seq - 1);
      goto out;
    }
    /* Hash what is stored, byte for byte (columns 7, 1..6 in contract
     * order; seq as the decimal it must be). */
    snprintf(seqs, sizeof(seqs), "%" PRId64, seq);
    f[0] = (const char *)sqlite3_column_text(s, 7);
    n[0] = (size_t)sqlite3_column_bytes(s, 7);
    f[1] = seqs;
    n[1] = strlen(seqs);
    for (int i = 2; i < 8; i++) {
      f[i] = (const char *)sqlite3_column_text(s, i - 1);
      n[i] = (size_t)sqlite3_column_bytes(s, i - 1);
    }
    for (int i = 0; i < 8; i++) {
      if (!f[i]) {
        f[i] = "";
        n[i] = 0;
      }
    }
    if ((ret = row_hash(f, n, hash))) {
      mg_err_set(err, ret, "cannot compute SHA-256");
      goto out;
    }
    const char *stored = (const char *)sqlite3_column_text(s, 8);
    if (!stored || strcmp(stored, hash) != 0) {
      ret = mg_err_set(err, -EBADMSG, "row %" PRId64 ": hash does not match its content",
                       seq);
      goto out;
    }
    if (n[0] != HASH_HEX || memcmp(f[0], prev, HASH_HEX) != 0) {
      if (seq == 1)
        ret = mg_err_set(err, -EBADMSG, "row 1: prev is not 64 zeros (the first row's)");
      else
        ret = mg_err_set(err, -EBADMSG,
                         "row %" PRId64 ": prev is not the hash of row %" PRId64, seq,
                         seq - 1);
      goto out;
    }
    memcpy(prev, hash, sizeof(prev));
    good++;
    want = seq + 1;
  }
  if (rc != SQLITE_DONE)
    ret = mg_err_set(err, sql_errno(rc), "database: %s", sqlite3_errmsg(db));
out:
  if (ret && ret != -EBADMSG && ret != -EINVAL)
    mg_log_err("audit", "cannot verify the audit log: %s", err ? err->msg : "");
  sqlite3_finalize(s);
  if (rows)
    *rows = good;
  return ret;
}

int mg_audit_list_json(struct mg_store *st, const char *object_filter,
                       int limit, struct mg_jw *w) {
  static const char *const keys[] = {"seq", "at", "actor", "counter",
                                     "action", "object", "detail"};
  sqlite3 *db = st ? mg_store_db(st) : NULL;
  sqlite3_stmt *s = NULL;
  int rc;
  if (!db || limit < 0)
    return -EINVAL;
  /* Two statements rather than "?1 IS NULL OR object = ?1", so that the
   * filtered one uses the audit_object index. */
  rc = sqlite3_prepare_v2(db,
                          object_filter
                              ? "SELECT seq, at, actor, counter, action, object, "
                                "detail FROM audit WHERE object = ?2 "
                                "ORDER BY seq DESC LIMIT ?1"
                              : "SELECT seq, at, actor, counter, action, object, "
                                "detail FROM audit ORDER BY seq DESC LIMIT ?1",
                          -1, &s, NULL);
  if (rc != SQLITE_OK)
    goto out;
  sqlite3_bind_int(s, 1, limit);
  if (object_filter)
    sqlite3_bind_text(s, 2, object_filter, -1, SQLITE_STATIC);
  mg_jw_arr(w);
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    mg_jw_obj(w);
    mg_jw_kint(w, keys[0], sqlite3_column_int64(s, 0));
    for (int i = 1; i < 7; i++)
      mg_jw_kstr(w, keys[i], (const char *)sqlite3_column_text(s, i));
    mg_jw_obj_end(w);
  }
  /* Balanced even on failure; the caller drops the text then. */
  mg_jw_arr_end(w);
out:
  if (rc != SQLITE_DONE)
    mg_log_err("audit", "cannot list the audit log: %s", sqlite3_errmsg(db));
  sqlite3_finalize(s);
  return rc == SQLITE_DONE ? 0 : sql_errno(rc);
}
