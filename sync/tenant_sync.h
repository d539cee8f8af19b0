/*
 * tenant_sync.h — the box's client of the city's tenant (issue 8: D1, X1,
 * X3, N3, N4, C1, G5; API in docs/tenant-api.md).
 *
 * libcurl's multi interface on the daemon's libuv loop: applications and
 * case snapshots of the outbox (core/outbox.h) are sealed (sync/envelope.h)
 * on a worker thread and posted in batches over HTTPS with the box's client
 * certificate (mTLS).  Records are idempotent by id, so a batch sent again
 * after a lost answer makes no duplicate.  Failures back off with full
 * jitter; `circuit_after` failures in a row open a circuit that sends
 * nothing for `circuit_open`, then one probe.  Everything that matters
 * lives in SQLite (outbox rows, sync_state), so a restart resumes.
 *
 * Files (state_dir/sync, 0700; files 0600): box_sign.pem (Ed25519: the
 * envelope signatures and the TLS client key), box_recv.pem (X25519),
 * client.crt (issued at enrolment), tenant.json.
 *
 * All functions run on the loop thread.
 */
#ifndef MG_TENANT_SYNC_H
#define MG_TENANT_SYNC_H
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "crypto.h"
#include "err.h"
#include "json.h"
#include "store.h"

struct mg_sync;

/* Start: reads [sync] and state_dir/sync.  With [sync] url empty, or the
 * box not enrolled yet, it sends nothing but answers status (and enrolment).
 * cfg, st and data_key must outlive the client.  0 and *out, or a negative
 * errno with err naming the file and the rule (a key file readable by
 * others, a broken tenant.json). */
int mg_sync_start(uv_loop_t *loop, const struct mg_config *cfg,
                  struct mg_store *st, const struct mg_key *data_key,
                  struct mg_sync **out, struct mg_err *err);
/* A row was queued: send soon (kicks coalesce). */
void mg_sync_kick(struct mg_sync *s);
/* madoctl sync now: every pending row is due at once, and an open circuit
 * lets one probe batch through now instead of at the end of its wait. */
void mg_sync_now(struct mg_sync *s);
/* Pause (on = 1) or resume sending; persisted in sync_state, so a paused
 * box stays paused across restarts.  Queueing goes on while paused. */
void mg_sync_pause(struct mg_sync *s, int on);
/* Status as one JSON object: state, queue_depth, oldest_age_s, rejected,
 * acked_total, last_success, last_error, circuit, paused, warning, ...
 * (docs/control.md "madoctl sync status").  0 or -EIO. */
int mg_sync_status_json(struct mg_sync *s, struct mg_jw *w);

/* Case snapshots (rows with a NULL payload) are exported when a batch is
 * built.  json: malloc'd (the client wipes and frees it); -ENOENT: the case
 * is gone, its row is dropped. */
typedef int (*mg_sync_case_export_fn)(void *ud, const char *case_id,
                                      int64_t version, unsigned char **json,
                                      size_t *len);
void mg_sync_set_case_exporter(struct mg_sync *s, mg_sync_case_export_fn fn,
                               void *ud);

/* Cross-floor: ask the tenant for a case (exactly one of number /
 * token_sha256, the other NULL).  Returns 0 when the request is under way:
 * cb then runs exactly once, on the loop, with rc 0 and the opened JSON
 * (malloc'd, cb owns it; wipe before free), -ENOENT not found, -EAGAIN
 * tenant unreachable, -EBADMSG an answer that does not open, other
 * negative errno.  Returns a negative errno at once (cb is not called):
 * -EAGAIN sync off, not enrolled, circuit open or stopping; -EINVAL bad
 * arguments; -ENOMEM. */
typedef void (*mg_sync_fetch_cb)(void *ud, int rc, unsigned char *json,
                                 size_t len, const char *origin_box);
int mg_sync_fetch_case(struct mg_sync *s, const char *number,
                       const char *token_sha256, mg_sync_fetch_cb cb,
                       void *ud);

/* Enrolment (`madoctl sync enroll`): create the box's keys when absent,
 * POST url/t1/enroll with the one-time code and the proof of possession,
 * then write client.crt and tenant.json (each to a temporary name, fsynced,
 * renamed) and start using them.  Returns 0 when under way: cb runs once
 * on the loop with rc 0 and the tenant's answer summarised as JSON
 * ({"city","box","serial","url"}), or a negative errno and a message
 * naming the rule (bad code, already enrolled, unreachable).  -EBUSY when
 * an enrolment is running; -EINVAL bad arguments (err says which). */
typedef void (*mg_sync_enroll_cb)(void *ud, int rc, const char *json_or_msg);
int mg_sync_enroll(struct mg_sync *s, const char *url, const char *city,
                   const char *box, const char *code, mg_sync_enroll_cb cb,
                   void *ud, struct mg_err *err);

/* Before the loop ends: cancels transfers (their rows stay due), closes
 * the handles; run the loop afterwards.  Then free. */
void mg_sync_stop(struct mg_sync *s);
void mg_sync_free(struct mg_sync *s); /* NULL is fine */

/* For tests: the full-jitter delay in ms after `failures` failures in a
 * row, random(0, min(max_ms, min_ms * 2^failures)), with r in [0, 1). */
double mg__sync_backoff_ms(int64_t min_ms, int64_t max_ms, int64_t failures,
                           double r);

#endif
