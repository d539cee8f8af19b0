/*
 * form.h — the rules of one form field (F1–F7, FG3, FG4, I5, I6): turning
 * what a person typed into the stored value, checking it against the pack's
 * field definition and the filing date, and the computed fields.  Pure
 * functions over the pack model; thread-safe.
 *
 * Stored values (what the API returns and the PDF prints):
 *   text, name, address   trimmed text; runs of spaces in a name become
 *                         one U+3000
 *   name_split            "FAMILY<U+3000>GIVEN" (mg_form_name_half splits)
 *   kana                  full-width katakana, words separated by U+3000
 *   number                ASCII digits
 *   date                  ISO "YYYY-MM-DD" (typed as 西暦 or 和暦, F4)
 *   select, radio         the choice's `value` (a label typed is mapped)
 *   checkbox              "yes" | "no"
 *   postal_code           7 ASCII digits
 *   mynumber              12 ASCII digits, resident_code 11
 *   phone                 ASCII digits and hyphens
 *
 * Messages are Japanese, for the staff and the resident at the counter:
 * they name the field by its label and the rule (「生年月日」: 2月30日は存在
 * しない日付です).  They never quote the value itself.
 */
#ifndef MG_FORM_H
#define MG_FORM_H
#include <stddef.h>
#include "err.h"
#include "jp.h"
#include "pack.h"

/* Normalise and check a typed value.  *norm (malloc'd, caller frees) is
 * always set on 0 and -EINVAL: on -EINVAL it is the typed text as given
 * (trimmed), so nothing typed is lost.  "" is valid here (whether a field
 * is required is the form's question, mg_form_missing).
 *   parent_value  the value of f->parent's field (F6), NULL when unknown
 *   filing        the filing date, for date rules (F5)
 * Returns 0 (valid), -EINVAL (err: the rule), -E2BIG (longer than 4000
 * bytes or not UTF-8: refused outright, *norm NULL), -ENOMEM. */
int mg_form_check(const struct mg_pack *p, const struct mg_pack_field *f,
                  const char *raw, const char *parent_value,
                  const struct mg_date *filing, char **norm,
                  struct mg_err *err);

/* The message for a required field left empty (I5, FG4). */
int mg_form_missing(const struct mg_pack_field *f, struct mg_err *err);

/* A computed field (F3, F7): age(F) → "66", school_grade(F) → "小2" /
 * "未就学" / "", wareki(F) → "令和8年11月25日", district(F) → the pack's
 * district of an in-city address (postal: the form's postal code, may be
 * "").  arg is the stored value of the named field.  Writes "" when it
 * cannot be computed. */
void mg_form_compute(const struct mg_pack *p, const struct mg_pack_field *f,
                     const char *arg, const char *postal,
                     const struct mg_date *filing, char *buf, size_t len);

/* Half of a stored name_split value: given=0 the family name, 1 the given
 * name (split at the first space of any width; no space: all is family). */
void mg_form_name_half(const char *whole, int given, char *buf, size_t len);

/* The label of a choice value in the field's list, or NULL. */
const char *mg_form_choice_label(const struct mg_pack *p,
                                 const struct mg_pack_field *f,
                                 const char *value);

#endif
