/*
 * visit.h — cases (来庁者の手続, G1–G5, C1, C2, D1): a household's business
 * of the day, continued at any counter.  Tables of migration 4.
 *
 * - A case has a random id (API), a procedure number (8 digits, Luhn check
 *   digit; typed at a counter) and a continuation token (32 random bytes,
 *   base64url, in the slip's QR code as "MG1:<token>"; looked up by its
 *   SHA-256, and kept only inside the sealed data to print the slip again).  Every lookup needs a staff session; the number alone never
 *   opens a case without one.
 * - Personal data (names, kana, birth dates, addresses, the slip text,
 *   notes) is sealed with the box's data key (crypto.h), bound to the case
 *   id; the rest are ids, answers and times.
 * - Support measures (C2): once a person is flagged at a counter, the
 *   addresses of the case's household are masked by this module for every
 *   other counter (state, slips; search never shows addresses)
 *   unless a supervisor unmasked the case there for a stated reason
 *   (audited, for [visits] unmask_for).
 * - Retention (D1): open cases close at [visits] close_at or on demand;
 *   closed cases are deleted [visits] retention after closing, and the
 *   database's secure_delete wipes their bytes.
 *
 * Everything runs on the loop.  Residents' data never goes to logs: only
 * case ids and counts.  Every view, change, print and unmask is appended to
 * the audit log (audit.h).
 */
#ifndef MG_VISIT_H
#define MG_VISIT_H
#include <stddef.h>
#include <time.h>
#include "config.h"
#include "crypto.h"
#include "err.h"
#include "guide.h"
#include "jp.h"
#include "json.h"
#include "pack_service.h"
#include "store.h"

#define MG_VISIT_MAX_TEXT 2000 /* characters of a note or the slip text */

struct mg_visits; /* the service */

/* Who acts: from the staff session. */
struct mg_visit_actor {
  const char *user;
  const char *counter;
  int role; /* enum mg_auth_role */
};

struct mg_visit_person {
  char *name, *kana, *address; /* owned, "" when unknown */
  struct mg_date birth;        /* y == 0: unknown */
  int support;                 /* under support measures (C2) */
};

struct mg_visit_note {
  char author[72], counter[72], at[24];
  char *text; /* owned */
};

struct mg_visit_status {
  char procedure[72], counter[72], status[16], by[72], at[24];
};

/* A form value (A1, I2), stored sealed with the people: keyed by the
 * field's carry-over key (or "@FORM.FIELD" for a field that carries
 * nothing) and the group row (0 outside groups; sheet k of a form with R
 * rows holds rows (k-1)*R+1 .. k*R). */
struct mg_visit_value {
  char *key;
  long row;
  char *text;      /* owned: the stored value (form.h) */
  char source[8];  /* "typed" | "card" */
  char form[80];   /* the form instance it was entered in */
  char by[72], counter[72], at[24];
};

/* A form added, copied or removed by hand (A3, I4). */
struct mg_visit_form_row {
  char instance[80]; /* "FORM" or "FORM.K" (sheet K) */
  char form[72];
  int add;           /* 1 added/copied, 0 removed */
};

/* A submitted form: an application. */
struct mg_visit_app {
  char id[33], form[72], at[24], by[72], counter[72];
  char exported_at[24]; /* "" while its linkage file is pending/off */
};

/* One case as loaded (everything owned; mg_visit_free). */
struct mg_visit {
  char id[33], number[9];
  char life_event[72], pack_commit[48], counter[72], created_by[72];
  char created_at[24], filing_date[11], status[8], closed_at[24];
  char support_counter[72]; /* "" unless someone is flagged */
  int has_mynumber_card, foreign_resident;
  struct mg_visit_person *people;
  size_t n_people;
  char *free_text; /* the staff's text on the slip */
  char token[64];  /* the continuation token (for printing the slip) */
  struct mg_guide_answer *answers; /* question strings owned */
  size_t n_answers;
  struct mg_guide_manual *manual;  /* procedure strings owned */
  size_t n_manual;
  struct mg_visit_status *statuses;
  size_t n_statuses;
  struct mg_visit_note *notes; /* oldest first */
  size_t n_notes;
  char unmasked_until[24]; /* for the loading counter, "" when not */
  struct mg_visit_value *values;
  size_t n_values;
  struct mg_visit_form_row *form_rows;
  size_t n_form_rows;
  struct mg_visit_app *apps;
  size_t n_apps;
  int has_signature;
};

int mg_visits_create(struct mg_store *st, const struct mg_key *key,
                     struct mg_pack_service *packs, const struct mg_config *cfg,
                     struct mg_visits **out);
void mg_visits_free(struct mg_visits *vs); /* NULL is fine */
/* fn(ud) is called on the loop after a commit queued a row for the city's
 * tenant (a submitted application): the daemon kicks the sync client. */
void mg_visits_set_on_queued(struct mg_visits *vs, void (*fn)(void *ud),
                             void *ud);
void mg_visit_free(struct mg_visit *v);    /* NULL is fine */

/* Results: 0, or a negative errno with err's message meant for the API:
 *   -ENOENT   no such case (or token/number), or the life event/question/
 *             procedure is unknown (err says which)
 *   -EINVAL   bad input (err names the field and the rule)
 *   -ESTALE   the case is closed
 *   -EPERM    the role is too low
 *   -ENODATA  no procedure pack is active
 *   -EIO      database or crypto failure */

/* A new case for `life_event` at the actor's counter with the active
 * pack.  people: the household (at least one person is not required).
 * filing: NULL = today.  *out the loaded case; token (>= 48 bytes) gets the
 * continuation token, shown once (on the slip). */
int mg_visit_new(struct mg_visits *vs, const struct mg_visit_actor *a,
                 const char *life_event, const struct mg_date *filing,
                 const struct mg_visit_person *people, size_t n_people,
                 int has_mynumber_card, int foreign_resident,
                 struct mg_visit **out, char token[64], struct mg_err *err);

/* Load by id / continuation token (with or without the "MG1:" prefix) /
 * procedure number (8 digits, hyphens and spaces ignored; a wrong check
 * digit is -EINVAL).  The unmask state is that of the actor's counter. */
int mg_visit_get(struct mg_visits *vs, const struct mg_visit_actor *a,
                 const char *id, struct mg_visit **out, struct mg_err *err);
int mg_visit_by_token(struct mg_visits *vs, const struct mg_visit_actor *a,
                      const char *token, struct mg_visit **out,
                      struct mg_err *err);
int mg_visit_by_number(struct mg_visits *vs, const struct mg_visit_actor *a,
                       const char *number, struct mg_visit **out,
                       struct mg_err *err);

/* Changes: each checks its input against the case's pack, stores it in one
 * transaction with its audit row, and leaves the case as it was on any
 * error. */
int mg_visit_answer(struct mg_visits *vs, const struct mg_visit_actor *a,
                    const char *id, const char *question, int yes,
                    struct mg_err *err);
/* The same, and on success *out (caller frees; left as it was when out is
 * NULL or memory ran out) is the case as it is now, as mg_visit_get would
 * load it for a: the answer's reply needs no second load. */
int mg_visit_answer_get(struct mg_visits *vs, const struct mg_visit_actor *a,
                        const char *id, const char *question, int yes,
                        struct mg_visit **out, struct mg_err *err);
int mg_visit_set_people(struct mg_visits *vs, const struct mg_visit_actor *a,
                        const char *id, const struct mg_visit_person *people,
                        size_t n_people, struct mg_err *err);
/* add: 1 add by hand, 0 remove by hand, -1 undo the hand decision */
int mg_visit_manual(struct mg_visits *vs, const struct mg_visit_actor *a,
                    const char *id, const char *procedure, int add,
                    struct mg_err *err);
/* status: "pending" | "in_progress" | "done", at the actor's counter */
int mg_visit_set_status(struct mg_visits *vs, const struct mg_visit_actor *a,
                        const char *id, const char *procedure,
                        const char *status, struct mg_err *err);
int mg_visit_add_note(struct mg_visits *vs, const struct mg_visit_actor *a,
                      const char *id, const char *text, struct mg_err *err);
int mg_visit_set_free_text(struct mg_visits *vs, const struct mg_visit_actor *a,
                           const char *id, const char *text,
                           struct mg_err *err);
/* Flag (on=1) or clear (on=0, supervisor) support measures for person
 * `person` (0-based). */
int mg_visit_support(struct mg_visits *vs, const struct mg_visit_actor *a,
                     const char *id, size_t person, int on,
                     struct mg_err *err);
/* Supervisor: unmask the case at the actor's counter for a reason. */
int mg_visit_unmask(struct mg_visits *vs, const struct mg_visit_actor *a,
                    const char *id, const char *reason, struct mg_err *err);
int mg_visit_close(struct mg_visits *vs, const struct mg_visit_actor *a,
                   const char *id, struct mg_err *err);

/* A procedure's status at its own counter (what the resident is told):
 * "pending" | "in_progress" | "done"; borrowed. */
const char *mg_visit_proc_status(const struct mg_visit *v,
                                 const struct mg_pack_procedure *pr);

/* Is person i's address hidden from this actor (C2)? */
int mg_visit_masked(const struct mg_visit *v, const struct mg_visit_actor *a,
                    size_t i);

/* The whole case for the API: ids, people (addresses masked), questions
 * with the next one and progress, procedures with documents, counters,
 * reasons and statuses, notes.  The guide state is computed here. */
int mg_visit_state_json(struct mg_visits *vs, const struct mg_visit *v,
                        const struct mg_visit_actor *a, struct mg_jw *w,
                        struct mg_err *err);

/* The pack of a case (borrowed until mg_visits_pack_release). */
struct mg_pack_use *mg_visits_pack(struct mg_visits *vs,
                                   const struct mg_visit *v);
void mg_visits_pack_release(struct mg_visits *vs, struct mg_pack_use *u);
/* The guide state of a loaded case with its pack (for slips). */
int mg_visit_guide(const struct mg_visit *v, const struct mg_pack *p,
                   struct mg_guide_input *in, struct mg_date *births,
                   struct mg_guide_state *st);

/* Search recent cases ([visits] search_days) by kana (any script and
 * spacing), birth date (YYYY-MM-DD) and/or number; NULL = not used, at
 * least one given.  A JSON array of {id, number, life_event, created_at,
 * status, counter, people: [{name, kana, birth_date}]} newest first. */
int mg_visit_search(struct mg_visits *vs, const struct mg_visit_actor *a,
                    const char *kana, const char *birth_date,
                    const char *number, struct mg_jw *w, struct mg_err *err);

/* Housekeeping (a timer in the daemon, and `madoctl visits purge`): close
 * open cases at close of business, delete closed ones past retention.
 * *closed / *purged get the counts (may be NULL). */
int mg_visits_housekeeping(struct mg_visits *vs, time_t now, size_t *closed,
                           size_t *purged);

/* Audit of a read (view, search, resume, slip download or print, a
 * refusal) for the API layer: visit:<id>.  Kept in memory and written in
 * one transaction by mg_visits_flush (the daemon calls it every 250 ms, at
 * 256 pending rows, before reading the audit log and at stop), so a GET
 * costs no fsync; a crash loses at most the reads of that last moment.
 * Changes write their audit row in their own transaction. */
void mg_visits_audit(struct mg_visits *vs, const struct mg_visit_actor *a,
                     const char *action, const char *visit_id,
                     const char *detail);
int mg_visits_flush(struct mg_visits *vs); /* 0 or -EIO; NULL is fine */

#endif
