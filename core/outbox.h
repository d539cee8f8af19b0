/*
 * outbox.h — what the box still owes the city's tenant (issue 8: D1, N3).
 * Rows of the `outbox` table (migration 6): submitted applications, each
 * with its own sealed copy so it survives its case's purge until the tenant
 * has acknowledged it, and case snapshots for cross-floor continuation
 * (exported when the batch is built).  sync/tenant_sync.c sends them.
 *
 * All functions run on the loop thread with the daemon's store; callers
 * that must commit a row together with their own change call them inside
 * their own transaction (the store's BEGIN ... COMMIT).
 */
#ifndef MG_OUTBOX_H
#define MG_OUTBOX_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "crypto.h"
#include "err.h"
#include "store.h"

/* Queue an application: `json` (the application's plaintext, as sent to
 * the tenant inside the envelope) is sealed with the data key (aad
 * "outbox:application:<app_id>:0") and inserted.  Runs inside the
 * caller's transaction.  0; -EEXIST when the application is queued
 * already; -EIO. */
int mg_outbox_put_application(struct mg_store *st, const struct mg_key *key,
                              const char *app_id, const void *json,
                              size_t len);

/* Mark a case changed: upsert its pending row (kind 'case', payload NULL)
 * to `version`.  Inside the caller's transaction.  0 or -EIO. */
int mg_outbox_case_changed(struct mg_store *st, const char *case_id,
                           int64_t version);

struct mg_outbox_row {
  int64_t seq;
  char kind[12];      /* "application" | "case" */
  char ref[33];       /* application or case id */
  int64_t version;
  unsigned char *plain; /* opened payload (malloc'd; NULL for a case) */
  size_t plain_len;
};

/* Up to `max` pending rows due at `now` (not acked, not rejected,
 * next_at <= now), oldest first, payloads opened.  *rows malloc'd; free
 * with mg_outbox_rows_free (wipes the plaintext).  0 or -EIO (a payload that
 * does not open is marked rejected with last_error and skipped). */
int mg_outbox_due(struct mg_store *st, const struct mg_key *key, time_t now,
                  size_t max, struct mg_outbox_row **rows, size_t *n);
/* The same, only rows after `after_seq` (those not in a batch already on
 * its way: the sync client reads the next batch while one is in flight). */
int mg_outbox_due_after(struct mg_store *st, const struct mg_key *key,
                        time_t now, int64_t after_seq, size_t max,
                        struct mg_outbox_row **rows, size_t *n);
void mg_outbox_rows_free(struct mg_outbox_row *rows, size_t n);

/* The tenant's answer for row `seq`: acked (stored/duplicate/stale),
 * rejected (final: code and message kept in last_error), or a retryable
 * failure (attempts+1, next_at = now + delay_s).  Each its own commit.
 * acked: `version` is the one sent (a case snapshot); a row changed since
 * (a newer version queued in its place) stays due; -1 acks any version. */
int mg_outbox_acked(struct mg_store *st, int64_t seq, int64_t version,
                    time_t now);
int mg_outbox_rejected(struct mg_store *st, int64_t seq, const char *why);
int mg_outbox_retry_later(struct mg_store *st, int64_t seq, time_t now,
                          double delay_s, const char *why);
/* A technician's "send now" (madoctl sync now): every pending row is due
 * at once, whatever its backoff.  0 or -EIO. */
int mg_outbox_all_due(struct mg_store *st);

struct mg_outbox_stats {
  int64_t pending;      /* not acked, not rejected */
  int64_t rejected;
  int64_t acked;        /* acked, not yet purged */
  int64_t oldest_age_s; /* age of the oldest pending row; -1 when none */
};
int mg_outbox_stats(struct mg_store *st, time_t now, struct mg_outbox_stats *s);

/* D1: delete rows acknowledged more than `retention_s` ago (bytes gone:
 * secure_delete, WAL checkpoint).  *purged = rows deleted. */
int mg_outbox_purge(struct mg_store *st, time_t now, int64_t retention_s,
                    size_t *purged);

#endif
