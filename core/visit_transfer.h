/*
 * visit_transfer.h — cross-floor cases (issue 8, C1, G5): a case as one
 * JSON document, for the city's tenant and another floor's box.
 *
 * The export is plaintext (residents' data, the continuation token): it is
 * only ever sealed into an envelope (sync/envelope.h) and never logged.
 * Its shape ("format": "madoguchi/case-1") is in the comment at the top of
 * visit_transfer.c; the tenant stores it as the plaintext of a case record
 * (docs/tenant-api.md).
 *
 * Versions: every change of a case bumps visits.version and queues the
 * case for the tenant in the same transaction (visit.c, bump_version).
 * Versions grow with time: a change makes max(version + 1, microseconds
 * since the epoch), so two floors that change the same version N make two
 * different versions and the later change is the greater (with the boxes'
 * clocks kept by NTP); the tenant keeps the greatest.  An import replaces
 * a stored case only with a greater version: last writer wins, changes
 * made on two floors are not merged.
 *
 * Everything runs on the loop thread with the daemon's store.
 */
#ifndef MG_VISIT_TRANSFER_H
#define MG_VISIT_TRANSFER_H
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "visit.h"

#define MG_VISIT_EXPORT_FORMAT "madoguchi/case-1"
#define MG_VISIT_EXPORT_MAX (4u << 20) /* bytes of an export accepted */

/* Everything of case `id` (meta, people, answers, manual procedures,
 * statuses, notes, forms added/removed, values with their sources, the
 * signature, support flags and unmask rows, applications, the token and
 * its hash, the number, pack_commit, version) as JSON.  out: *version the
 * exported version; *json (malloc'd, NUL-terminated, wipe before free)
 * and *len.  0, -ENOENT (no such case), -EIO, -ENOMEM. */
int mg_visit_export(struct mg_visits *vs, const char *id, int64_t *version,
                    unsigned char **json, size_t *len);

/* Insert (or replace with a newer version) a case received from the
 * tenant, every personal blob sealed again with this box's data key and
 * bound to its row; the case keeps its id, number, token, history and
 * pack commit.  One transaction with an audit row `visit.import`; the
 * import itself is not queued for the tenant.  origin_box (in, may be
 * NULL: the export's own origin_box is kept) is where the case was made or
 * last changed.  id_out gets the case id (also on -ESTALE).
 *   0        stored
 *   -ESTALE  this box has the same or a newer version: nothing changed
 *   -EINVAL  malformed (err names the place, e.g. "case.people[1].kana",
 *            and the rule; never a value)
 *   -EEXIST  another case here has the same number or token
 *   -E2BIG   larger than MG_VISIT_EXPORT_MAX
 *   -EIO     database or crypto failure */
int mg_visit_import(struct mg_visits *vs, const unsigned char *json,
                    size_t len, const char *origin_box, char id_out[33],
                    struct mg_err *err);

/* The sync client's case exporter (mg_sync_case_export_fn, with ud the
 * struct mg_visits): the current export of case_id; -ENOENT when the case
 * is gone (purged: the outbox row is dropped).  `version` is the queued
 * row's; the export is always the newest. */
int mg_visit_export_cb(void *ud, const char *case_id, int64_t version,
                       unsigned char **json, size_t *len);

/* Where a case came from: out gets the box name of an imported case, ""
 * for one made here.  0 or -ENOENT / -EIO. */
int mg_visit_origin_box(struct mg_visits *vs, const char *id, char out[72]);

/* 1 when a change queued a case snapshot for the tenant since the last
 * call (then cleared), else 0.  Defined in visit.c.  The daemon asks on its
 * 250 ms flush tick and kicks the sync client, so the next floor sees a
 * change within moments without one upload per keystroke (C1, G5); the
 * case service itself knows nothing of the sync client. */
int mg_visits_take_cases_queued(struct mg_visits *vs);

#endif
