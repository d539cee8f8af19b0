/*
 * visit_forms.h — the forms of a case (A1–A3, I2, I4, I5, F1–F7, S1, X4):
 * which forms are open, the values of their fields carried by carry-over
 * keys across forms and counters, the visitor's one signature, and
 * submission into applications with their linkage file.
 *
 * Forms open by themselves from the guide's proposed procedures (source
 * "auto"); staff add and remove any form of the pack that their counter may
 * open (FM8) and copy a form (I4).  A copy is the form's next sheet: sheet
 * K of a form with R rows in a group shows rows (K-1)*R+1 .. K*R of the
 * group's carry-over keys, so the household rows that did not fit on the
 * first sheet appear on the copy; a form whose group has more rows in use
 * than its sheets show gets its further sheets by itself ("overflow") when
 * the pack says on_overflow = copy.  Fields outside groups are shared by
 * every sheet of one form.
 *
 * Where a value comes from (the API's `source`):
 *   typed     entered in this form
 *   carried   entered in another form, at the household screen, or at
 *             another counter (`from` says which form, or "household")
 *   card      read from an ID card (issue 6)
 *   computed  age, school grade, district, wareki (F3, F7)
 *   default   today's date or the pack's default, until someone types
 * The basic four of the household live in the case's people (the guide
 * reads them): household.name/kana/birth_date row N are person N,
 * applicant.* and household.head are person 1, and children.* row N is
 * the N-th person of school age or younger (18 or younger by the April 2
 * cut-off).  Typing them in a form updates the people too.
 *
 * Masking (C2): where the case's addresses are masked for the actor, the
 * address and postal-code fields of every form are masked in the state,
 * the PDFs and the linkage files, and cannot be changed there.
 */
#ifndef MG_VISIT_FORMS_H
#define MG_VISIT_FORMS_H
#include "form_pdf.h"
#include "visit.h"

/* One open form sheet. */
struct mg_visit_form {
  char id[80]; /* "FORM" (sheet 1) or "FORM.K" */
  const struct mg_pack_form *form;
  int sheet;              /* 1.. */
  const char *source;     /* "auto" | "added" | "copy" | "overflow" */
  const char *procedure;  /* the proposing procedure's id, "" when none */
};

/* The open forms of a loaded case, in the guide's order then the added
 * ones.  *out malloc'd (free), entries borrow from v and p. */
int mg_visit_forms(const struct mg_visit *v, const struct mg_pack *p,
                   struct mg_visit_form **out, size_t *n);

/* {"forms":[{id, form, name, sheet, sheets, source, procedure, counter,
 *  pages, filled, required, missing, errors, submitted, application}],
 *  "signature": bool, "values": {"typed": N, "carried": N, ...}} */
int mg_visit_forms_json(struct mg_visits *vs, const struct mg_visit *v,
                        const struct mg_visit_actor *a, struct mg_jw *w,
                        struct mg_err *err);

/* One form sheet with its fields and values: staff_view 0 hides
 * staff-only fields (FM7), the visitor's view of the same case. */
int mg_visit_form_json(struct mg_visits *vs, const struct mg_visit *v,
                       const struct mg_visit_actor *a, const char *instance,
                       int staff_view, struct mg_jw *w, struct mg_err *err);

/* A3 / I4: add a form of the pack (as "auto" forms, once), copy one
 * (*out_id gets the new sheet's id), remove a sheet (its own values stay:
 * carried values belong to the case). */
int mg_visit_form_add(struct mg_visits *vs, const struct mg_visit_actor *a,
                      const char *id, const char *form, char out_id[80],
                      struct mg_err *err);
int mg_visit_form_copy(struct mg_visits *vs, const struct mg_visit_actor *a,
                       const char *id, const char *instance, char out_id[80],
                       struct mg_err *err);
int mg_visit_form_remove(struct mg_visits *vs, const struct mg_visit_actor *a,
                         const char *id, const char *instance,
                         struct mg_err *err);

/* Set one field of a sheet (row: 1..rows for a grouped field, else 0).
 * The value is normalised and checked (form.h); it is stored even when it
 * breaks a rule, so nothing typed is lost: then the result is -EINVAL
 * with err naming the field and the rule, and the caller says "saved but
 * invalid".  source: "typed" or "card".  Other errors store nothing. */
int mg_visit_form_set(struct mg_visits *vs, const struct mg_visit_actor *a,
                      const char *id, const char *instance, const char *field,
                      long row, const char *value, const char *source,
                      struct mg_err *err);

/* S1: the visitor's signature as JSON {"aspect": W/H, "strokes":
 * [[[x,y,w],...],...]} (x, y in 0..1, w line width as a fraction of the
 * height), sealed; placed in every signature slot. */
int mg_visit_signature_set(struct mg_visits *vs,
                           const struct mg_visit_actor *a, const char *id,
                           const char *json, size_t len, struct mg_err *err);

/* Submit a form (all its sheets): every required field filled, no value
 * breaking a rule; then one application with a sealed payload, and when
 * the form's csv_export is on its linkage row (masked as the actor sees
 * it), in one transaction.  *app_id gets the application's id.  -EALREADY
 * when the form was submitted before. */
int mg_visit_form_submit(struct mg_visits *vs, const struct mg_visit_actor *a,
                         const char *id, const char *form, char app_id[33],
                         struct mg_err *err);

/* Linkage files waiting for the exporter: the next application whose
 * export is pending (oldest first) as the exporter's `export` command
 * arguments.  0 with *args (malloc'd JSON) and app_id set; -ENOENT when
 * none is pending. */
int mg_visits_next_export(struct mg_visits *vs, char app_id[33], char **args);
int mg_visits_export_done(struct mg_visits *vs, const char *app_id,
                          const char *file);

/* Everything the renderer needs for some sheets of a case, owned here. */
struct mg_visit_bundle {
  struct mg_form_render r;
  struct mg_form_sheet *sheets;
  struct mg_form_value *values;   /* all sheets' values */
  char **strings;                 /* owned texts */
  size_t n_strings;
  struct mg_form_point *points;   /* the signature */
  size_t *ends;
  struct mg_form_signature sig;
  struct mg_pack_use *use;        /* keeps the pack release */
};
/* instance NULL: every open sheet (the bundle); else that sheet only.
 * font_scale 0.5..2.0 (P2). */
int mg_visit_bundle(struct mg_visits *vs, const struct mg_visit *v,
                    const struct mg_visit_actor *a, const char *instance,
                    double font_scale, struct mg_visit_bundle *b,
                    struct mg_err *err);
void mg_visit_bundle_free(struct mg_visits *vs, struct mg_visit_bundle *b);

#endif
