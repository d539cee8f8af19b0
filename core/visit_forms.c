/*
 * visit_forms.c — the forms of a case (visit_forms.h): open sheets, values
 * carried by carry-over keys, the signature, submission and linkage rows.
 */
#include "visit_forms.h"

#include <errno.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "form.h"
#include "log.h"
#include "pack_service.h"
#include "visit_internal.h"

#define MAX_SHEETS MG__MAX_SHEETS
#define MAX_STROKES 256        /* signature */
#define MAX_POINTS 20000

/* ---------------------------------------------------------------------- */
/* JSON                                                                   */

struct counts {
  size_t filled, required, missing, errors;
};

/* Walk every field and row of a sheet: counts, and the JSON when w. */
static void sheet_walk(const struct mg__fctx *c, const struct mg_visit_form *in,
                       int staff_view, struct mg_jw *w, struct counts *k) {
  const struct mg_pack_form *f = in->form;
  memset(k, 0, sizeof(*k));
  for (size_t i = 0; i < f->n_fields; i++) {
    const struct mg_pack_field *fld = &f->fields[i];
    long rows = mg__group_rows(f, fld->group);
    if (fld->staff_only && !staff_view)
      continue;
    if (w) {
      mg_jw_obj(w);
      mg_jw_kstr(w, "id", fld->id);
      mg_jw_kstr(w, "label", fld->label);
      mg_jw_kstr(w, "type", mg_pack_field_type_name(fld->type));
      if (fld->group[0])
        mg_jw_kstr(w, "group", fld->group);
      mg_jw_kbool(w, "required", fld->required);
      if (fld->max_length)
        mg_jw_kint(w, "max_length", fld->max_length);
      if (fld->choices[0])
        mg_jw_kstr(w, "choices", fld->choices);
      if (fld->parent[0])
        mg_jw_kstr(w, "parent", fld->parent);
      if (fld->carry[0])
        mg_jw_kstr(w, "carry", fld->carry);
      if (fld->staff_only)
        mg_jw_kbool(w, "staff_only", 1);
      if (fld->compute != MG_PACK_COMPUTE_NONE)
        mg_jw_kbool(w, "computed", 1);
      mg_jw_key(w, "values");
      mg_jw_arr(w);
    }
    for (long r = rows ? 1 : 0; r <= rows; r++) {
      struct mg__res v;
      struct mg_err e = {{0}};
      mg__field_value(c, f, in->sheet, fld, r, &v);
      int used = rows ? (mg__row_used(c, f, in->sheet, fld->group, r) ||
                         (r == 1 && in->sheet == 1 &&
                          !mg__row_used(c, f, 1, fld->group, 1)))
                      : 1;
      int bad = mg__field_error(c, f, in->sheet, fld, r, &v, used, &e);
      if (fld->compute == MG_PACK_COMPUTE_NONE && v.text)
        k->filled++;
      if (fld->required && used && fld->compute == MG_PACK_COMPUTE_NONE)
        k->required++;
      if (bad && !v.text)
        k->missing++;
      else if (bad)
        k->errors++;
      if (!w)
        continue;
      mg_jw_obj(w);
      if (rows)
        mg_jw_kint(w, "row", r);
      mg_jw_kstr(w, "value", v.text);
      if (v.text && fld->type == MG_PACK_NAME_SPLIT) {
        char h[256];
        mg_form_name_half(v.text, 0, h, sizeof(h));
        mg_jw_kstr(w, "family", h);
        mg_form_name_half(v.text, 1, h, sizeof(h));
        mg_jw_kstr(w, "given", h);
      }
      if (v.source)
        mg_jw_kstr(w, "source", v.source);
      if (v.from && *v.from)
        mg_jw_kstr(w, "from", v.from);
      if (v.stored) {
        mg_jw_kstr(w, "by", v.stored->by);
        mg_jw_kstr(w, "counter", v.stored->counter);
        mg_jw_kstr(w, "at", v.stored->at);
      }
      if (v.masked)
        mg_jw_kbool(w, "masked", 1);
      if (bad)
        mg_jw_kstr(w, "error", e.msg);
      mg_jw_obj_end(w);
    }
    if (w) {
      mg_jw_arr_end(w);
      mg_jw_obj_end(w);
    }
  }
}

static void inst_head(const struct mg__fctx *c, const struct mg_visit_form *in,
                      int sheets, struct mg_jw *w) {
  const struct mg_pack_form *f = in->form;
  const struct mg_visit_app *app = mg__app_of(c->v, f->id);
  mg_jw_kstr(w, "id", in->id);
  mg_jw_kstr(w, "form", f->id);
  mg_jw_kstr(w, "name", f->name);
  mg_jw_kint(w, "sheet", in->sheet);
  mg_jw_kint(w, "sheets", sheets);
  mg_jw_kstr(w, "source", in->source);
  mg_jw_kstr(w, "procedure", in->procedure);
  mg_jw_kstr(w, "counter", f->counter);
  mg_jw_kint(w, "pages", f->pages);
  mg_jw_key(w, "submitted");
  if (app) {
    mg_jw_obj(w);
    mg_jw_kstr(w, "application", app->id);
    mg_jw_kstr(w, "at", app->at);
    mg_jw_kstr(w, "by", app->by);
    mg_jw_kstr(w, "counter", app->counter);
    mg_jw_kstr(w, "exported_at", app->exported_at);
    mg_jw_obj_end(w);
  } else {
    mg_jw_null(w);
  }
}

int mg_visit_forms_json(struct mg_visits *vs, const struct mg_visit *v,
                        const struct mg_visit_actor *a, struct mg_jw *w,
                        struct mg_err *err) {
  struct mg_pack_use *u = mg_visits_pack(vs, v);
  const struct mg_pack *p = u ? mg_pack_use_model(u) : NULL;
  struct mg_visit_form *fs = NULL;
  size_t n = 0, src[5] = {0};
  static const char *const names[] = {"typed", "carried", "card", "computed",
                                      "default"};
  struct mg__fctx c;
  int rc;
  if (!p) {
    rc = mg_err_set(err, -ENODATA, "the pack release of this case is no "
                    "longer on the box");
    goto out;
  }
  mg__ctx_init(&c, v, p, a);
  if ((rc = mg__forms_list(&c, &fs, &n))) {
    rc = mg_err_set(err, rc, "the forms cannot be listed");
    goto out;
  }
  mg_jw_obj(w);
  mg_jw_kstr(w, "visit", v->id);
  mg_jw_key(w, "forms");
  mg_jw_arr(w);
  for (size_t i = 0; i < n; i++) {
    struct counts k;
    sheet_walk(&c, &fs[i], 1, NULL, &k);
    mg_jw_obj(w);
    inst_head(&c, &fs[i], mg__sheets_of(fs, n, fs[i].form), w);
    mg_jw_kint(w, "filled", (int64_t)k.filled);
    mg_jw_kint(w, "required", (int64_t)k.required);
    mg_jw_kint(w, "missing", (int64_t)k.missing);
    mg_jw_kint(w, "errors", (int64_t)k.errors);
    mg_jw_obj_end(w);
    /* where the values came from, over every printed field of every
     * sheet: the "typed once" figure of the 書かない窓口 */
    const struct mg_pack_form *f = fs[i].form;
    for (size_t fi = 0; fi < f->n_fields; fi++) {
      long rows = mg__group_rows(f, f->fields[fi].group);
      for (long r = rows ? 1 : 0; r <= rows; r++) {
        struct mg__res x;
        mg__field_value(&c, f, fs[i].sheet, &f->fields[fi], r, &x);
        for (size_t s = 0; x.text && x.source && s < 5; s++)
          src[s] += strcmp(x.source, names[s]) == 0;
      }
    }
  }
  mg_jw_arr_end(w);
  /* the pack's forms this counter may open and that are not open (A3,
   * FM8): what staff can add */
  mg_jw_key(w, "addable");
  mg_jw_arr(w);
  for (size_t fi = 0; fi < p->n_forms; fi++) {
    const struct mg_pack_form *f = &p->forms[fi];
    if (!mg_pack_list_has(&f->counters, a->counter) ||
        mg__find_inst(fs, n, f->id))
      continue;
    mg_jw_obj(w);
    mg_jw_kstr(w, "id", f->id);
    mg_jw_kstr(w, "name", f->name);
    mg_jw_obj_end(w);
  }
  mg_jw_arr_end(w);
  mg_jw_kbool(w, "signature", v->has_signature);
  mg_jw_key(w, "values");
  mg_jw_obj(w);
  for (size_t s = 0; s < 5; s++)
    mg_jw_kint(w, names[s], (int64_t)src[s]);
  mg_jw_obj_end(w);
  mg_jw_obj_end(w);
out:
  free(fs);
  mg_visits_pack_release(vs, u);
  return rc;
}

int mg_visit_form_json(struct mg_visits *vs, const struct mg_visit *v,
                       const struct mg_visit_actor *a, const char *instance,
                       int staff_view, struct mg_jw *w, struct mg_err *err) {
  struct mg_pack_use *u = mg_visits_pack(vs, v);
  const struct mg_pack *p = u ? mg_pack_use_model(u) : NULL;
  struct mg_visit_form *fs = NULL;
  const struct mg_visit_form *in;
  size_t n = 0;
  struct mg__fctx c;
  struct counts k;
  int rc;
  if (!p) {
    rc = mg_err_set(err, -ENODATA, "the pack release of this case is no "
                    "longer on the box");
    goto out;
  }
  mg__ctx_init(&c, v, p, a);
  if ((rc = mg__forms_list(&c, &fs, &n))) {
    rc = mg_err_set(err, rc, "the forms cannot be listed");
    goto out;
  }
  if (!(in = mg__find_inst(fs, n, instance))) {
    rc = mg_err_set(err, -ENOENT, "form: \"%.64s\" is not open in this case",
                    instance);
    goto out;
  }
  const struct mg_pack_form *f = in->form;
  mg_jw_obj(w);
  inst_head(&c, in, mg__sheets_of(fs, n, f), w);
  mg_jw_kbool(w, "staff_view", staff_view);
  mg_jw_kstr(w, "filing_date", v->filing_date);
  mg_jw_key(w, "page_size");
  mg_jw_arr(w);
  mg_jw_double(w, f->page_width);
  mg_jw_double(w, f->page_height);
  mg_jw_arr_end(w);
  mg_jw_key(w, "groups");
  mg_jw_arr(w);
  for (size_t g = 0; g < f->n_groups; g++) {
    mg_jw_obj(w);
    mg_jw_kstr(w, "name", f->groups[g].name);
    mg_jw_kint(w, "rows", f->groups[g].rows);
    mg_jw_kint(w, "first_row", (in->sheet - 1) * f->groups[g].rows + 1);
    mg_jw_obj_end(w);
  }
  mg_jw_arr_end(w);
  mg_jw_key(w, "fields");
  mg_jw_arr(w);
  sheet_walk(&c, in, staff_view, w, &k);
  mg_jw_arr_end(w);
  mg_jw_kint(w, "filled", (int64_t)k.filled);
  mg_jw_kint(w, "missing", (int64_t)k.missing);
  mg_jw_kint(w, "errors", (int64_t)k.errors);
  /* the lists this form uses, so a tablet needs no second request */
  mg_jw_key(w, "choices");
  mg_jw_obj(w);
  for (size_t i = 0; i < f->n_fields; i++) {
    const char *id = f->fields[i].choices;
    int seen = 0;
    for (size_t j = 0; j < i && !seen; j++)
      seen = strcmp(f->fields[j].choices, id) == 0;
    const struct mg_pack_choice_list *l = id[0] ? mg_pack_choices(p, id) : NULL;
    if (!l || seen)
      continue;
    mg_jw_key(w, id);
    mg_jw_arr(w);
    for (size_t j = 0; j < l->n; j++) {
      mg_jw_obj(w);
      mg_jw_kstr(w, "value", l->v[j].value);
      mg_jw_kstr(w, "label", l->v[j].label);
      if (l->v[j].parent[0])
        mg_jw_kstr(w, "parent", l->v[j].parent);
      mg_jw_obj_end(w);
    }
    mg_jw_arr_end(w);
  }
  mg_jw_obj_end(w);
  mg_jw_obj_end(w);
out:
  free(fs);
  mg_visits_pack_release(vs, u);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Changes                                                                */

static int form_row_stmt(struct mg_visits *vs, const struct mg_visit_actor *a,
                         const char *id, const char *inst, const char *form,
                         int add, const char *action, struct mg_err *err) {
  char now[24];
  mg_store_time(time(NULL), now);
  struct mg__stmt sv = {
      "INSERT INTO visit_forms (visit_id, instance, form, action, by_user, "
      "counter, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT "
      "(visit_id, instance) DO UPDATE SET action = ?4, by_user = ?5, "
      "counter = ?6, at = ?7",
      {id, inst, form, add ? "add" : "remove", a->user, a->counter, now},
      7, NULL, 0};
  return mg__visit_apply(vs, a, id, &sv, 1, action, inst, err);
}

int mg_visit_form_add(struct mg_visits *vs, const struct mg_visit_actor *a,
                      const char *id, const char *form, char out_id[80],
                      struct mg_err *err) {
  struct mg__change ch;
  struct mg_visit_form *fs = NULL;
  size_t n = 0;
  struct mg__fctx c;
  int rc = mg__visit_begin(vs, a, id, &ch, err);
  out_id[0] = 0;
  if (rc || (rc = mg__open_sheets(&ch, a, &c, &fs, &n, err)))
    goto out;
  const struct mg_pack_form *f = mg_pack_form(ch.p, form);
  if (!f) {
    rc = mg_err_set(err, -ENOENT, "form: no form \"%.64s\" in the pack", form);
    goto out;
  }
  if (!mg_pack_list_has(&f->counters, a->counter)) { /* FM8 */
    rc = mg_err_set(err, -EPERM, "form: \"%s\" is not opened at counter %s",
                    form, a->counter);
    goto out;
  }
  if (mg__find_inst(fs, n, form)) {
    rc = mg_err_set(err, -EINVAL, "form: \"%s\" is already open; copy it for "
                    "more rows", form);
    goto out;
  }
  snprintf(out_id, 80, "%s", form);
  rc = form_row_stmt(vs, a, id, form, form, 1, "visit.form.add", err);
out:
  free(fs);
  mg__visit_end(vs, &ch);
  return rc;
}

int mg_visit_form_copy(struct mg_visits *vs, const struct mg_visit_actor *a,
                       const char *id, const char *instance, char out_id[80],
                       struct mg_err *err) {
  struct mg__change ch;
  struct mg_visit_form *fs = NULL;
  size_t n = 0;
  struct mg__fctx c;
  int rc = mg__visit_begin(vs, a, id, &ch, err), last = 0;
  out_id[0] = 0;
  if (rc || (rc = mg__open_sheets(&ch, a, &c, &fs, &n, err)))
    goto out;
  const struct mg_visit_form *in = mg__find_inst(fs, n, instance);
  if (!in) {
    rc = mg_err_set(err, -ENOENT, "form: \"%.64s\" is not open in this case",
                    instance);
    goto out;
  }
  for (size_t i = 0; i < n; i++)
    if (fs[i].form == in->form && fs[i].sheet > last)
      last = fs[i].sheet;
  /* a sheet removed earlier comes back before a new one is made */
  for (int s = 2; s <= last + 1 && s <= MAX_SHEETS; s++) {
    snprintf(out_id, 80, "%s.%d", in->form->id, s);
    if (!mg__find_inst(fs, n, out_id))
      break;
    out_id[0] = 0;
  }
  if (!out_id[0]) {
    rc = mg_err_set(err, -EINVAL, "form: at most %d sheets of one form",
                    MAX_SHEETS);
    goto out;
  }
  rc = form_row_stmt(vs, a, id, out_id, in->form->id, 1, "visit.form.copy",
                     err);
out:
  free(fs);
  mg__visit_end(vs, &ch);
  return rc;
}

int mg_visit_form_remove(struct mg_visits *vs, const struct mg_visit_actor *a,
                         const char *id, const char *instance,
                         struct mg_err *err) {
  struct mg__change ch;
  struct mg_visit_form *fs = NULL;
  size_t n = 0;
  struct mg__fctx c;
  int rc = mg__visit_begin(vs, a, id, &ch, err);
  if (rc || (rc = mg__open_sheets(&ch, a, &c, &fs, &n, err)))
    goto out;
  const struct mg_visit_form *in = mg__find_inst(fs, n, instance);
  if (!in) {
    rc = mg_err_set(err, -ENOENT, "form: \"%.64s\" is not open in this case",
                    instance);
    goto out;
  }
  if (mg__app_of(ch.v, in->form->id)) {
    rc = mg_err_set(err, -EALREADY, "form: \"%s\" was submitted; it stays",
                    in->form->id);
    goto out;
  }
  rc = form_row_stmt(vs, a, id, instance, in->form->id, 0, "visit.form.remove",
                     err);
out:
  free(fs);
  mg__visit_end(vs, &ch);
  return rc;
}

static int text_fits(const struct mg__change *ch, struct mg_pack_use *u,
                     const struct mg_pack_form *f,
                     const struct mg_pack_field *fld, long row,
                     const char *text, struct mg_err *err) {
  struct mg_form_render r;
  memset(&r, 0, sizeof(r));
  r.pack = ch->p;
  r.pack_dir = mg_pack_use_dir(u);
  r.font_scale = 1.0;
  for (size_t i = 0; i < f->n_boxes; i++) {
    const struct mg_pack_box *b = &f->boxes[i];
    size_t idl = strlen(fld->id);
    char half[512];
    const char *t = text;
    if (strncmp(b->field, fld->id, idl) != 0 ||
        (b->field[idl] && b->field[idl] != '.') || (row && b->row != row))
      continue;
    if (b->field[idl] == '.') {
      mg_form_name_half(text, strcmp(b->field + idl + 1, "given") == 0, half,
                        sizeof(half));
      t = half;
    }
    if (b->max_chars > 0 && mg_utf8_chars(t) > b->max_chars)
      return mg_err_set(err, -EINVAL, "「%s」: 印字できるのは%ld文字までです",
                        fld->label, b->max_chars);
    if (mg_form_text_fits(&r, b, t) == 0)
      return mg_err_set(err, -EINVAL, "「%s」: 文字が多く、用紙の枠に収まりま"
                        "せん", fld->label);
  }
  return 0;
}

int mg_visit_form_set(struct mg_visits *vs, const struct mg_visit_actor *a,
                      const char *id, const char *instance, const char *field,
                      long row, const char *value, const char *source,
                      struct mg_err *err) {
  struct mg__change ch;
  struct mg_visit_form *fs = NULL;
  struct mg_visit_person *people = NULL;
  size_t n = 0, np = 0;
  char *norm = NULL, key[160], now[24], detail[200];
  struct mg__fctx c;
  struct mg_err verr = {{0}};
  int rc = mg__visit_begin(vs, a, id, &ch, err), valid;
  if (rc || (rc = mg__open_sheets(&ch, a, &c, &fs, &n, err)))
    goto out;
  const struct mg_visit_form *in = mg__find_inst(fs, n, instance);
  if (!in) {
    rc = mg_err_set(err, -ENOENT, "form: \"%.64s\" is not open in this case",
                    instance);
    goto out;
  }
  const struct mg_pack_form *f = in->form;
  const struct mg_pack_field *fld = mg__form_field(f, field);
  long rows = fld ? mg__group_rows(f, fld->group) : 0;
  if (!fld) {
    rc = mg_err_set(err, -ENOENT, "field: no field \"%.64s\" in form %s",
                    field, f->id);
    goto out;
  }
  if (fld->compute != MG_PACK_COMPUTE_NONE) {
    rc = mg_err_set(err, -EINVAL, "field: \"%s\" is computed (%s)", field,
                    fld->label);
    goto out;
  }
  if (rows ? (row < 1 || row > rows) : row != 0) {
    rc = rows ? mg_err_set(err, -EINVAL, "row: \"%s\" has rows 1 to %ld on "
                           "each sheet", field, rows)
              : mg_err_set(err, -EINVAL, "row: \"%s\" is not in a group; "
                           "leave row out", field);
    goto out;
  }
  if (c.masked && mg__is_address(fld)) {
    rc = mg_err_set(err, -EPERM, "the addresses of this case are masked at "
                    "this counter; they are changed at counter %s",
                    ch.v->support_counter);
    goto out;
  }
  if (mg__app_of(ch.v, f->id)) {
    rc = mg_err_set(err, -EALREADY, "form: \"%s\" was submitted; its values "
                    "no longer change", f->id);
    goto out;
  }
  /* the parent's value, for a hierarchical list (F6) */
  const char *parent = NULL;
  struct mg__res pr;
  const struct mg_pack_field *pf = fld->parent[0] ? mg__form_field(f, fld->parent)
                                                  : NULL;
  if (pf) {
    mg__field_value(&c, f, in->sheet, pf, pf->group[0] ? row : 0, &pr);
    parent = pr.text;
  }
  rc = mg_form_check(ch.p, fld, value, parent, &c.filing, &norm, &verr);
  if (rc && rc != -EINVAL) {
    rc = mg_err_set(err, rc, "%s", verr.msg);
    goto out;
  }
  if (rc == 0 && *norm)
    rc = text_fits(&ch, ch.u, f, fld, row, norm, &verr); /* FG3 */
  valid = rc == 0;
  mg_store_time(time(NULL), now);
  mg__field_key(f, fld, key, sizeof(key));
  long grow = mg__global_row(f, fld, in->sheet, row);
  if ((rc = mg__put_value(ch.v, key, grow, norm, source, instance, a, now))) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  /* the basic four go to the people too, so the guide sees them */
  int pk = mg__people_key(key);
  if (pk >= 0) {
    np = ch.v->n_people;
    if (!(people = calloc(MG_GUIDE_MAX_PEOPLE, sizeof(*people)))) {
      rc = mg_err_set(err, -ENOMEM, "out of memory");
      goto out;
    }
    memcpy(people, ch.v->people, np * sizeof(*people));
    if (mg__people_through(pk, grow, norm, valid, &people, &np)) {
      rc = mg_err_set(err, -ENOMEM, "out of memory");
      goto out;
    }
    for (size_t i = 0; i < np; i++) { /* new people: "" not NULL */
      if (!people[i].name)
        people[i].name = "";
      if (!people[i].kana)
        people[i].kana = "";
      if (!people[i].address)
        people[i].address = "";
    }
  }
  snprintf(detail, sizeof(detail), "%s.%s%s%.0ld", instance, field,
           row ? "#" : "", row ? row : 0L);
  rc = mg__visit_store(vs, a, ch.v, people ? people : ch.v->people,
                       people ? np : ch.v->n_people, ch.v->free_text, NULL,
                       NULL, 0, "visit.value", detail, err);
  if (rc == 0 && !valid)
    rc = mg_err_set(err, -EDOM, "%s", verr.msg);
out:
  if (norm)
    OPENSSL_cleanse(norm, strlen(norm));
  free(norm);
  free(people);
  free(fs);
  mg__visit_end(vs, &ch);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Signature (S1)                                                         */

void mg__sig_aad(const char *id, char out[64]) {
  snprintf(out, 64, "%s/signature", id);
}

/* Check and re-serialise a signature document. */
static int sig_parse(const char *json, size_t len, struct mg_buf *out,
                     struct mg_err *err) {
  struct mg_json *doc = NULL;
  struct mg_json_error je;
  struct mg_jw w;
  const struct mg_json *strokes, *asp;
  size_t total = 0;
  int rc = 0;
  if (mg_json_parse(json, len, NULL, &doc, &je) || doc->type != MG_JSON_OBJECT)
    return mg_err_set(err, -EINVAL, "signature: a JSON object {aspect, "
                      "strokes} is expected");
  asp = mg_json_get(doc, "aspect");
  strokes = mg_json_get(doc, "strokes");
  if (!asp || asp->type != MG_JSON_NUMBER || !(asp->u.num.d >= 0.2) ||
      !(asp->u.num.d <= 10)) {
    rc = mg_err_set(err, -EINVAL, "signature.aspect: a number from 0.2 to 10");
    goto out;
  }
  if (!strokes || strokes->type != MG_JSON_ARRAY || !strokes->u.arr.n ||
      strokes->u.arr.n > MAX_STROKES) {
    rc = mg_err_set(err, -EINVAL, "signature.strokes: 1 to %d strokes",
                    MAX_STROKES);
    goto out;
  }
  mg_jw_init(&w, out);
  mg_jw_obj(&w);
  mg_jw_key(&w, "aspect");
  mg_jw_double(&w, asp->u.num.d);
  mg_jw_key(&w, "strokes");
  mg_jw_arr(&w);
  for (size_t i = 0; i < strokes->u.arr.n; i++) {
    const struct mg_json *s = strokes->u.arr.items[i];
    if (s->type != MG_JSON_ARRAY || !s->u.arr.n ||
        (total += s->u.arr.n) > MAX_POINTS) {
      rc = mg_err_set(err, -EINVAL, "signature.strokes[%zu]: 1 or more points, "
                      "%d in all at most", i, MAX_POINTS);
      goto out;
    }
    mg_jw_arr(&w);
    for (size_t k = 0; k < s->u.arr.n; k++) {
      const struct mg_json *pt = s->u.arr.items[k];
      double v[3];
      if (pt->type != MG_JSON_ARRAY || pt->u.arr.n != 3) {
        rc = mg_err_set(err, -EINVAL, "signature.strokes[%zu][%zu]: [x, y, w]",
                        i, k);
        goto out;
      }
      for (int j = 0; j < 3; j++) {
        const struct mg_json *x = pt->u.arr.items[j];
        v[j] = x->type == MG_JSON_NUMBER ? x->u.num.d : NAN;
        if (!(v[j] >= 0 && v[j] <= (j == 2 ? 0.2 : 1.0))) {
          rc = mg_err_set(err, -EINVAL, "signature.strokes[%zu][%zu]: x and y "
                          "from 0 to 1, w from 0 to 0.2", i, k);
          goto out;
        }
      }
      mg_jw_arr(&w);
      for (int j = 0; j < 3; j++)
        mg_jw_double(&w, round(v[j] * 1e4) / 1e4);
      mg_jw_arr_end(&w);
    }
    mg_jw_arr_end(&w);
  }
  mg_jw_arr_end(&w);
  mg_jw_obj_end(&w);
  if (out->oom)
    rc = mg_err_set(err, -ENOMEM, "out of memory");
out:
  mg_json_free(doc);
  return rc;
}

int mg_visit_signature_set(struct mg_visits *vs,
                           const struct mg_visit_actor *a, const char *id,
                           const char *json, size_t len, struct mg_err *err) {
  struct mg__change ch;
  struct mg_buf b;
  unsigned char *blob = NULL;
  size_t blen = 0;
  char aad[64], now[24];
  int rc = mg__visit_begin(vs, a, id, &ch, err);
  mg_buf_init(&b);
  if (rc || (rc = sig_parse(json, len, &b, err)))
    goto out;
  mg__sig_aad(id, aad);
  if (mg_seal(mg__visits_key(vs), aad, b.data, b.len, &blob, &blen)) {
    rc = mg_err_set(err, -EIO, "cannot seal the signature");
    goto out;
  }
  mg_store_time(time(NULL), now);
  struct mg__stmt sv = {
      "INSERT INTO visit_signature (visit_id, by_user, counter, at, body) "
      "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (visit_id) DO UPDATE SET "
      "by_user = ?2, counter = ?3, at = ?4, body = ?5",
      {id, a->user, a->counter, now}, 4, blob, blen};
  rc = mg__visit_apply(vs, a, id, &sv, 1, "visit.signature", "", err);
out:
  if (b.data)
    OPENSSL_cleanse(b.data, b.len);
  mg_buf_free(&b);
  free(blob);
  mg__visit_end(vs, &ch);
  return rc;
}


