/*
 * visit_cache.h — the last few case states as the API shows them
 * (mg_visit_state_json), so that a tablet fetching a case again does not
 * reload, unseal and re-render it (issue 4's load: p99 under 5 ms at 22
 * tablets, N2).
 *
 * An entry is the exact JSON of one case at one version (visits.version,
 * which every change bumps: mg__visit_apply, housekeeping's close, an
 * import of a newer copy) for one asking counter.  Only states that
 * depend on nothing else are kept (mg_visit_cache_ok): open cases (a
 * closed one is not kept, and housekeeping's close wipes all), no support-measure
 * masking (C2; masking depends on unmask rows with expiry times), a
 * filing date of its own (ages do not move with today), and never the
 * creation answer with its continuation token.
 *
 * The JSON holds residents' data, so the cache is small and short-lived:
 * at most MG_VISIT_CACHE_MAX entries, each wiped (OPENSSL_cleanse) when it
 * is replaced, evicted, older than MG_VISIT_CACHE_TTL_S seconds
 * (mg_visit_cache_expire, on the daemon's 250 ms tick), when its case
 * turns out changed or gone, after a purge, and at exit.  Loop thread
 * only.
 */
#ifndef MG_VISIT_CACHE_H
#define MG_VISIT_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "visit.h"

#define MG_VISIT_CACHE_MAX 256
#define MG_VISIT_CACHE_TTL_S 30

struct mg_visit_cache;

/* 0 and *out, or -ENOMEM. */
int mg_visit_cache_create(struct mg_visit_cache **out);
/* Wipes every entry; NULL is fine. */
void mg_visit_cache_free(struct mg_visit_cache *c);

/* The current version of case `id` (one indexed read): 0, -ENOENT (no
 * such case) or -EIO. */
int mg_visit_cache_version(struct mg_visits *vs, const char *id,
                           int64_t *version);

/* May v's state, as rendered for any counter, be kept?  (see above) */
int mg_visit_cache_ok(const struct mg_visit *v);

/* On a hit (id at `version` for `counter`, younger than the TTL): appends
 * the JSON to out (in/out, a buffer the caller wipes and frees), copies the
 * case's pack commit to pack_commit and returns 0.  -ENOENT on a miss; an
 * entry of the same case at another version is wiped then. */
int mg_visit_cache_get(struct mg_visit_cache *c, const char *id,
                       int64_t version, const char *counter, time_t now,
                       struct mg_buf *out, char pack_commit[48]);
/* Keep a copy of json[0..len) (in: borrowed) for id/version/counter,
 * replacing that case's older entries; on no memory, nothing is kept. */
void mg_visit_cache_put(struct mg_visit_cache *c, const char *id,
                        int64_t version, const char *counter,
                        const char *pack_commit, time_t now, const char *json,
                        size_t len);
/* Wipe the entries of one case, or (id NULL) all of them. */
void mg_visit_cache_drop(struct mg_visit_cache *c, const char *id);
/* Wipe the entries older than the TTL. */
void mg_visit_cache_expire(struct mg_visit_cache *c, time_t now);

/* The clock of the TTL: monotonic seconds (a wall clock set back must not
 * keep personal data longer). */
time_t mg_visit_cache_now(void);

/* The cache of a case service (visit.c owns it). */
struct mg_visit_cache *mg__visits_cache(struct mg_visits *vs);

#endif
