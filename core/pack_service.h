/*
 * pack_service.h — the box's procedure pack: which release is active,
 * periodic and on-demand pulls on a worker thread (sync/packrepo.h with
 * the validator of core/pack.h), rollback, and the "pack.activated" event.
 * Everything here runs on the loop; git and disk work runs on workers.
 */
#ifndef MG_PACK_SERVICE_H
#define MG_PACK_SERVICE_H

#include <uv.h>

#include "config.h"
#include "err.h"
#include "json.h"

struct mg_pack_service;

/* An event for the tablets (topic, JSON object). */
typedef void (*mg_pack_event_fn)(void *ud, const char *topic, const char *json);
/* Result of a pull or rollback: rc 0 and a JSON object, or rc < 0 and a
 * message naming what went wrong. */
typedef void (*mg_pack_done_fn)(void *ud, int rc, const char *json_or_msg);

/* Read the active release (state_dir/packs) and start the pull timer
 * ([pack] interval, with jitter) when [pack] url is set. */
int mg_pack_service_start(uv_loop_t *loop, const struct mg_config *cfg,
                          mg_pack_event_fn event, void *event_ud,
                          struct mg_pack_service **out, struct mg_err *err);

/*
 * Activation without disruption: a visit takes the active pack with
 * mg_pack_service_acquire when it starts and keeps that release (its model
 * in memory and its files on disk) until mg_pack_service_release, however
 * many newer packs are activated meanwhile; new visits get the new one.
 */
struct mg_pack;
struct mg_pack_use;
/* NULL when no pack is active (or the active one could not be loaded). */
struct mg_pack_use *mg_pack_service_acquire(struct mg_pack_service *s);
/* The release of a given commit: the loaded one, or an older release still
 * kept on disk (loaded now); NULL when neither. */
struct mg_pack_use *mg_pack_service_acquire_commit(struct mg_pack_service *s,
                                                   const char *commit);
void mg_pack_service_release(struct mg_pack_service *s, struct mg_pack_use *u);
const struct mg_pack *mg_pack_use_model(const struct mg_pack_use *u);
const char *mg_pack_use_commit(const struct mg_pack_use *u);
/* The release's folder (absolute when state_dir is): templates, fonts. */
const char *mg_pack_use_dir(const struct mg_pack_use *u);

/* Pull now (a pull already running is joined: cb gets its result). */
int mg_pack_service_pull(struct mg_pack_service *s, mg_pack_done_fn cb,
                         void *ud);
/* Go back to the previous release. */
int mg_pack_service_rollback(struct mg_pack_service *s, mg_pack_done_fn cb,
                             void *ud);

/* {"state": "none"|"active", "commit", "signer", "fingerprint",
 *  "activated_at", "source": {...}, "last_pull": {...}, "previous": [...]}
 * `full` adds the kept releases and the source. */
void mg_pack_service_json(const struct mg_pack_service *s, int full,
                          struct mg_jw *w);

/* Stop the timer; a pull in progress finishes (its callbacks get
 * -ECANCELED).  Run the loop afterwards, then free. */
void mg_pack_service_stop(struct mg_pack_service *s);
void mg_pack_service_free(struct mg_pack_service *s); /* NULL is fine */

#endif
