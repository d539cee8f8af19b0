/*
 * visit_internal.h — what visit.c shares with the other parts of the case
 * service (visit_forms.c).  Not for the API layer.
 */
#ifndef MG_VISIT_INTERNAL_H
#define MG_VISIT_INTERNAL_H
#include <sqlite3.h>
#include "visit.h"

/* A prepared statement of a static SQL text (cached by its address). */
sqlite3_stmt *mg__visit_stmt(struct mg_visits *vs, const char *sql);
void mg__visit_stmt_done(struct mg_visits *vs, sqlite3_stmt *s);
const struct mg_key *mg__visits_key(struct mg_visits *vs);
struct mg_store *mg__visits_store(struct mg_visits *vs);
/* Make every commit so far durable (group commit, store.h). */
int mg__visits_sync(struct mg_visits *vs);
/* fn(ud) runs inside the transaction of the next mg__visit_apply (non-zero
 * rolls it back); reset with NULL right after. */
void mg__visit_tx_hook(struct mg_visits *vs, int (*fn)(void *ud), void *ud);
/* A row was queued for the tenant: tell the daemon (mg_visits_set_on_queued). */
void mg__visits_queued(struct mg_visits *vs);

/* An open case and its pack, loaded for a change. */
struct mg__change {
  struct mg_visit *v;
  struct mg_pack_use *u;
  const struct mg_pack *p;
};
int mg__visit_begin(struct mg_visits *vs, const struct mg_visit_actor *a,
                    const char *id, struct mg__change *c, struct mg_err *err);
void mg__visit_end(struct mg_visits *vs, struct mg__change *c);

/* A statement of a change: text args bound ?1..?n, blob as ?(n+1). */
struct mg__stmt {
  const char *sql;
  const char *args[8];
  int n;
  const void *blob;
  size_t blen;
};
/* The statements, updated_at and the audit row in one transaction. */
int mg__visit_apply(struct mg_visits *vs, const struct mg_visit_actor *a,
                    const char *id, const struct mg__stmt *sv, size_t n,
                    const char *action, const char *detail,
                    struct mg_err *err);
/* Reseal the personal blob (people, free text, token and v's values) and
 * run one more statement with it, in one transaction. */
int mg__visit_store(struct mg_visits *vs, const struct mg_visit_actor *a,
                    const struct mg_visit *v,
                    const struct mg_visit_person *people, size_t n,
                    const char *free_text, const char *extra_sql,
                    const char *const *extra_args, int n_extra,
                    const char *action, const char *detail,
                    struct mg_err *err);

/* The sealed personal blob of case `id` (people, free text, token, form
 * values), and the associated data of a case's note: also used by
 * visit_transfer.c to reseal an imported case with this box's key. */
int mg__visit_seal_personal(struct mg_visits *vs, const char *id,
                            const struct mg_visit_person *people, size_t n,
                            const char *free_text, const char *token,
                            const struct mg_visit_value *values, size_t nv,
                            unsigned char **blob, size_t *blen);
void mg__note_aad(const char *id, const char *author, const char *at,
                  char out[200]);

/* ---- the forms model (visit_values.c) -------------------------------- */
#include "visit_forms.h"

#define MG__MAX_SHEETS 8 /* sheets of one form */

/* Forget stored values that the people list holds (the household screen
 * replaced them with `people`), but keep a card's value that the new
 * people hold unchanged. */
/* "notes": [{author, counter, at, text}] of the case state and of its
 * export (visit_transfer.c): the same shape in both. */
void mg__visit_notes_json(struct mg_jw *w, const struct mg_visit *v);
void mg__visit_values_drop_people(struct mg_visit *v,
                                  const struct mg_visit_person *people,
                                  size_t n);
void mg__visit_value_free(struct mg_visit_value *x);

/* What values are resolved against: a loaded case, its pack, the filing
 * date and whether the actor sees addresses. */
struct mg__fctx {
  const struct mg_visit *v;
  const struct mg_pack *p;
  struct mg_date filing;
  int masked;                             /* addresses hidden (C2) */
  /* people indexes by age group, in order: children (18 or younger up to
   * 高3), pupils (小1–中3), preschoolers (before 小1) */
  size_t groups[3][MG_GUIDE_MAX_PEOPLE];
  size_t n_groups[3];
};

/* A resolved value; text may point into buf. */
struct mg__res {
  const char *text;   /* NULL: no value */
  const char *source; /* typed | carried | card | computed | default */
  const char *from;   /* where it was entered: an instance, "household" */
  const struct mg_visit_value *stored;
  int masked;
  char buf[512];
};

void mg__ctx_init(struct mg__fctx *c, const struct mg_visit *v,
                  const struct mg_pack *p, const struct mg_visit_actor *a);
/* The people key index of a carry key ("household.name"...), or -1. */
int mg__people_key(const char *key);
const struct mg_visit_value *mg__find_value(const struct mg_visit *v,
                                            const char *key, long row);
/* A field's value key: its carry key, or "@FORM.FIELD". */
void mg__field_key(const struct mg_pack_form *f,
                   const struct mg_pack_field *fld, char *key, size_t len);
long mg__group_rows(const struct mg_pack_form *f, const char *group);
const struct mg_pack_field *mg__form_field(const struct mg_pack_form *f,
                                           const char *id);
/* The row of the value store for a sheet's local row. */
long mg__global_row(const struct mg_pack_form *f,
                    const struct mg_pack_field *fld, int sheet, long row);
int mg__is_address(const struct mg_pack_field *fld);
/* A field's value on a sheet (row: 1..rows in a group, else 0). */
void mg__field_value(const struct mg__fctx *c, const struct mg_pack_form *f,
                     int sheet, const struct mg_pack_field *fld, long row,
                     struct mg__res *r);
/* Its problem (err) when it breaks a rule or is required and empty in a
 * row in use: -EINVAL, else 0. */
int mg__field_error(const struct mg__fctx *c, const struct mg_pack_form *f,
                    int sheet, const struct mg_pack_field *fld, long row,
                    const struct mg__res *r, int row_used, struct mg_err *err);
int mg__row_used(const struct mg__fctx *c, const struct mg_pack_form *f,
                 int sheet, const char *group, long row);
/* The open sheets (malloc'd). */
int mg__forms_list(const struct mg__fctx *c, struct mg_visit_form **out,
                   size_t *n_out);
const struct mg_visit_form *mg__find_inst(const struct mg_visit_form *a,
                                          size_t n, const char *id);
const struct mg_visit_app *mg__app_of(const struct mg_visit *v,
                                      const char *form);
int mg__sheets_of(const struct mg_visit_form *a, size_t n,
                  const struct mg_pack_form *f);
/* Store text under key/row in v's values (replacing). */
int mg__put_value(struct mg_visit *v, const char *key, long row,
                  const char *text, const char *source, const char *inst,
                  const struct mg_visit_actor *a, const char *now);
/* Write people key k through to a copy of the people. */
int mg__people_through(int k, long row, const char *text,
                       int valid, struct mg_visit_person **people, size_t *n);
/* The context and open sheets of a case loaded for a change. */
/* The associated data of a case's sealed signature. */
void mg__sig_aad(const char *id, char out[64]);
int mg__open_sheets(struct mg__change *ch, const struct mg_visit_actor *a,
                    struct mg__fctx *c, struct mg_visit_form **fs, size_t *n,
                    struct mg_err *err);
#endif
