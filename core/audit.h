/*
 * audit.h — the append-only, hash-chained audit log (architecture
 * "Security model"; issue 4): who viewed, changed, printed or unmasked what
 * and when.  Table `audit` of migration 4 (store_migrations.c); triggers
 * refuse UPDATE and DELETE, and the chain makes any edit of the file
 * detectable: each row's hash is
 *
 *   hash = SHA-256(prev || "\n" || seq || "\n" || at || "\n" || actor ||
 *                  "\n" || counter || "\n" || action || "\n" || object ||
 *                  "\n" || detail)           (hex, lower case)
 *
 * with prev the previous row's hash (64 zeros for the first row) and seq
 * the decimal row number.  Rows never hold residents' data in clear: ids
 * (visit id, procedure id, user id, counter id) and reasons only.
 *
 * Runs on the loop (one small INSERT).
 */
#ifndef MG_AUDIT_H
#define MG_AUDIT_H
#include <stdint.h>
#include <time.h>
#include "err.h"
#include "json.h"
#include "store.h"

/* Append one record.  actor: a user id ("-" for the system), counter: a
 * counter id ("-" for none), action: a short verb such as "visit.view",
 * "visit.answer", "slip.print", "visit.unmask", object: what ("visit:<id>"),
 * detail: free text or JSON, may be "".  now: seconds (UTC).  0, or a
 * negative errno (the failure is logged without the detail). */
int mg_audit_append(struct mg_store *st, time_t now, const char *actor,
                    const char *counter, const char *action,
                    const char *object, const char *detail);

/* Walk the whole chain.  0 when intact (*rows set); -EBADMSG when broken,
 * with err naming the first bad row and the rule ("row 17: hash does not
 * match its content", "row 18: prev is not the hash of row 17",
 * "rows 12..14 are missing"), *rows = rows checked before it; other
 * negative errno on database failure. */
int mg_audit_verify(struct mg_store *st, int64_t *rows, struct mg_err *err);

/* The newest `limit` rows (newest first) as a JSON array of
 * {"seq","at","actor","counter","action","object","detail"};
 * object_filter: only rows with that object (NULL = all). */
int mg_audit_list_json(struct mg_store *st, const char *object_filter,
                       int limit, struct mg_jw *w);

#endif
