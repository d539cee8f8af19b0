/*
 * visit_values.c — the model of a case's forms (visit_forms.h): which
 * sheets are open, and the value of every field on a sheet, carried by
 * carry-over keys from other forms and from the people of the case.
 * Shared with visit_forms.c and visit_apps.c through visit_internal.h.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "form.h"
#include "visit_forms.h"
#include "visit_internal.h"

#define MAX_SHEETS MG__MAX_SHEETS

/* ---------------------------------------------------------------------- */
/* Keys held by the people (the guide reads them)                         */

enum pf { PF_NAME, PF_KANA, PF_BIRTH, PF_ADDRESS };

static const struct {
  const char *key;
  int grouped; /* row N is person N; else person 1 */
  enum pf what;
} people_keys[] = {
    {"household.name", 1, PF_NAME},       {"household.kana", 1, PF_KANA},
    {"household.birth_date", 1, PF_BIRTH}, {"household.address", 1, PF_ADDRESS},
    {"applicant.name", 0, PF_NAME},       {"applicant.kana", 0, PF_KANA},
    {"applicant.birth_date", 0, PF_BIRTH}, {"applicant.address", 0, PF_ADDRESS},
    {"household.head", 0, PF_NAME},
};
#define N_PEOPLE_KEYS (sizeof(people_keys) / sizeof(people_keys[0]))

int mg__people_key(const char *key) {
  for (size_t i = 0; i < N_PEOPLE_KEYS; i++)
    if (strcmp(people_keys[i].key, key) == 0)
      return (int)i;
  return -1;
}

void mg__visit_value_free(struct mg_visit_value *x) {
  if (x->text)
    OPENSSL_cleanse(x->text, strlen(x->text));
  free(x->text);
  free(x->key);
  x->text = x->key = NULL;
}

static void person_text(const struct mg_visit_person *pp, enum pf what,
                        struct mg__res *r);

/* A value read from a card that the new people still hold as it is: it
 * keeps its source (A1: the form still shows it as read from the card). */
static int card_still_holds(const struct mg_visit_value *x, int k,
                            const struct mg_visit_person *people, size_t n) {
  struct mg__res r;
  long idx = people_keys[k].grouped && x->row > 0 ? x->row - 1 : 0;
  if (strcmp(x->source, "card") != 0 || (size_t)idx >= n)
    return 0;
  memset(&r, 0, sizeof(r));
  person_text(&people[idx], people_keys[k].what, &r);
  return r.text && x->text && strcmp(r.text, x->text) == 0;
}

void mg__visit_values_drop_people(struct mg_visit *v,
                                  const struct mg_visit_person *people,
                                  size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < v->n_values; i++) {
    int k = mg__people_key(v->values[i].key);
    if (k >= 0 && !card_still_holds(&v->values[i], k, people, n))
      mg__visit_value_free(&v->values[i]);
    else
      v->values[o++] = v->values[i];
  }
  v->n_values = o;
}

/* ---------------------------------------------------------------------- */
/* Resolving a value                                                      */

/* Keys read from the people of an age group: PREFIX.name, .kana,
 * .birth_date; row N is the N-th of the group (row 0: the first). */
static const struct {
  const char *prefix;
  int lo, hi; /* school grades, April 2 cut-off (jp.h) */
} age_groups[3] = {
    {"children.", -99, 12}, {"pupils.", 1, 9}, {"preschoolers.", -99, 0}};

void mg__ctx_init(struct mg__fctx *c, const struct mg_visit *v,
                     const struct mg_pack *p, const struct mg_visit_actor *a) {
  memset(c, 0, sizeof(*c));
  c->v = v;
  c->p = p;
  if (mg_date_parse(v->filing_date, &c->filing))
    mg_date_today(&c->filing);
  c->masked = a && mg_visit_masked(v, a, 0);
  for (size_t i = 0; i < v->n_people && i < MG_GUIDE_MAX_PEOPLE; i++) {
    if (!v->people[i].birth.y)
      continue;
    int g = mg_school_grade(&v->people[i].birth, &c->filing);
    for (size_t k = 0; k < 3; k++)
      if (g >= age_groups[k].lo && g <= age_groups[k].hi)
        c->groups[k][c->n_groups[k]++] = i;
  }
}

/* The age group of a derived key (its field after the prefix), or -1. */
static int age_group_of(const char *key, const char **field) {
  for (int k = 0; k < 3; k++) {
    size_t n = strlen(age_groups[k].prefix);
    if (strncmp(key, age_groups[k].prefix, n) == 0) {
      *field = key + n;
      return k;
    }
  }
  return -1;
}

const struct mg_visit_value *mg__find_value(const struct mg_visit *v,
                                               const char *key, long row) {
  for (size_t i = 0; i < v->n_values; i++)
    if (v->values[i].row == row && strcmp(v->values[i].key, key) == 0)
      return &v->values[i];
  return NULL;
}

/* Names and kana of the household screen in the forms' stored shape
 * (form.h): words joined by one U+3000, kana in full-width katakana. */
static void person_text(const struct mg_visit_person *pp, enum pf what,
                        struct mg__res *r) {
  switch (what) {
  case PF_NAME: {
    size_t o = 0;
    int sp = 0;
    for (const char *s = pp->name; *s && o + 4 < sizeof(r->buf);) {
      size_t k = *s == ' ' || *s == '\t' ? 1
                 : strncmp(s, "\xE3\x80\x80", 3) == 0 ? 3 : 0;
      if (k) {
        sp = o > 0;
        s += k;
        continue;
      }
      if (sp) {
        memcpy(r->buf + o, "\xE3\x80\x80", 3);
        o += 3;
        sp = 0;
      }
      r->buf[o++] = *s++;
    }
    r->buf[o] = 0;
    r->text = r->buf;
    break;
  }
  case PF_KANA:
    r->text = mg_kana_field(pp->kana, r->buf, sizeof(r->buf)) >= 0 ? r->buf
                                                                   : pp->kana;
    break;
  case PF_ADDRESS: r->text = pp->address; break;
  case PF_BIRTH:
    if (pp->birth.y) {
      mg_date_format(&pp->birth, r->buf, sizeof(r->buf));
      r->text = r->buf;
    }
    break;
  }
  if (r->text && !*r->text)
    r->text = NULL;
}

/* The value under a key and global row: stored, else from the people. */
static void resolve_key(const struct mg__fctx *c, const char *key, long row,
                        struct mg__res *r) {
  memset(r, 0, sizeof(*r));
  if ((r->stored = mg__find_value(c->v, key, row))) {
    r->text = r->stored->text;
    r->source = r->stored->source;
    r->from = r->stored->form;
    return;
  }
  int k = mg__people_key(key);
  const struct mg_visit_person *pp = NULL;
  enum pf what = PF_NAME;
  if (k >= 0) {
    long i = people_keys[k].grouped ? row - 1 : 0;
    what = people_keys[k].what;
    if (i >= 0 && (size_t)i < c->v->n_people)
      pp = &c->v->people[i];
  } else {
    const char *f = NULL;
    int g = age_group_of(key, &f);
    long i = row ? row - 1 : 0;
    if (g >= 0 && (size_t)i < c->n_groups[g]) {
      what = strcmp(f, "name") == 0         ? PF_NAME
             : strcmp(f, "kana") == 0       ? PF_KANA
             : strcmp(f, "birth_date") == 0 ? PF_BIRTH
                                            : (enum pf)-1;
      if ((int)what >= 0)
        pp = &c->v->people[c->groups[g][i]];
    }
  }
  if (pp) {
    person_text(pp, what, r);
    if (r->text) {
      r->source = "carried";
      r->from = "household";
    }
  }
}

void mg__field_key(const struct mg_pack_form *f,
                      const struct mg_pack_field *fld, char *key, size_t len) {
  if (fld->carry[0])
    snprintf(key, len, "%s", fld->carry);
  else
    snprintf(key, len, "@%s.%s", f->id, fld->id);
}

long mg__group_rows(const struct mg_pack_form *f, const char *group) {
  for (size_t i = 0; group[0] && i < f->n_groups; i++)
    if (strcmp(f->groups[i].name, group) == 0)
      return f->groups[i].rows;
  return 0;
}

const struct mg_pack_field *mg__form_field(const struct mg_pack_form *f,
                                              const char *id) {
  for (size_t i = 0; i < f->n_fields; i++)
    if (strcmp(f->fields[i].id, id) == 0)
      return &f->fields[i];
  return NULL;
}

long mg__global_row(const struct mg_pack_form *f,
                       const struct mg_pack_field *fld, int sheet, long row) {
  long rows = mg__group_rows(f, fld->group);
  return rows ? (sheet - 1) * rows + row : 0;
}

int mg__is_address(const struct mg_pack_field *fld) {
  return fld->type == MG_PACK_ADDRESS || fld->type == MG_PACK_POSTAL_CODE;
}

/* The form id of an instance ("jumin_idou.2" → "jumin_idou"). */
static size_t inst_form_len(const char *inst) {
  const char *dot = strchr(inst, '.');
  return dot ? (size_t)(dot - inst) : strlen(inst);
}

/* A field's value on a sheet (row local: 1..rows in a group, else 0). */
void mg__field_value(const struct mg__fctx *c, const struct mg_pack_form *f,
                        int sheet, const struct mg_pack_field *fld, long row,
                        struct mg__res *r) {
  char key[160];
  if (fld->compute != MG_PACK_COMPUTE_NONE) {
    const struct mg_pack_field *arg = mg__form_field(f, fld->compute_arg);
    const struct mg_pack_field *pc = NULL;
    struct mg__res ar, pr;
    memset(r, 0, sizeof(*r));
    if (!arg)
      return;
    mg__field_value(c, f, sheet, arg, arg->group[0] ? row : 0, &ar);
    for (size_t i = 0; i < f->n_fields && !pc; i++)
      if (f->fields[i].type == MG_PACK_POSTAL_CODE && !f->fields[i].group[0])
        pc = &f->fields[i];
    pr.text = NULL;
    if (pc)
      mg__field_value(c, f, sheet, pc, 0, &pr);
    if (ar.masked || (pc && pr.masked)) {
      r->masked = fld->compute == MG_PACK_COMPUTE_DISTRICT;
      if (r->masked)
        return;
    }
    mg_form_compute(c->p, fld, ar.text, pr.text, &c->filing, r->buf,
                    sizeof(r->buf));
    if (r->buf[0]) {
      r->text = r->buf;
      r->source = "computed";
      r->from = "";
    }
    return;
  }
  mg__field_key(f, fld, key, sizeof(key));
  resolve_key(c, key, mg__global_row(f, fld, sheet, row), r);
  if (r->stored) {
    if (strcmp(r->source, "typed") == 0 &&
        (strncmp(r->from, f->id, inst_form_len(r->from)) != 0 ||
         strlen(f->id) != inst_form_len(r->from)))
      r->source = "carried";
    if (!*r->text)
      r->text = NULL; /* cleared on purpose: no default either */
  } else if (!r->text && fld->def[0]) {
    if (strcmp(fld->def, "today") == 0 && fld->type == MG_PACK_DATE)
      mg_date_format(&c->filing, r->buf, sizeof(r->buf));
    else
      snprintf(r->buf, sizeof(r->buf), "%s", fld->def);
    r->text = r->buf;
    r->source = "default";
    r->from = "";
  }
  if (c->masked && mg__is_address(fld) && r->text) {
    r->text = NULL;
    r->masked = 1;
  }
}

/* The error of a field's value on a sheet, or 0. */
int mg__field_error(const struct mg__fctx *c, const struct mg_pack_form *f,
                       int sheet, const struct mg_pack_field *fld, long row,
                       const struct mg__res *r, int row_used, struct mg_err *err) {
  if (fld->compute != MG_PACK_COMPUTE_NONE || r->masked)
    return 0;
  if (!r->text) {
    if (fld->required && row_used)
      return mg_form_missing(fld, err);
    return 0;
  }
  const char *parent = NULL;
  struct mg__res pr;
  const struct mg_pack_field *pf = fld->parent[0] ? mg__form_field(f, fld->parent)
                                                  : NULL;
  if (pf) {
    mg__field_value(c, f, sheet, pf, pf->group[0] ? row : 0, &pr);
    parent = pr.text;
  }
  char *norm = NULL;
  int rc = mg_form_check(c->p, fld, r->text, parent, &c->filing, &norm, err);
  free(norm);
  return rc == -EINVAL || rc == -E2BIG ? -EINVAL : 0;
}

/* Is a local row of a group in use on a sheet (any value in it)? */
int mg__row_used(const struct mg__fctx *c, const struct mg_pack_form *f,
                    int sheet, const char *group, long row) {
  for (size_t i = 0; i < f->n_fields; i++) {
    const struct mg_pack_field *fld = &f->fields[i];
    struct mg__res r;
    if (strcmp(fld->group, group) != 0 || fld->compute != MG_PACK_COMPUTE_NONE)
      continue;
    mg__field_value(c, f, sheet, fld, row, &r);
    if ((r.text || r.masked) && strcmp(r.source ? r.source : "", "default"))
      return 1;
  }
  return 0;
}

/* Sheets a form needs for the rows in use of its groups. */
static int sheets_needed(const struct mg__fctx *c, const struct mg_pack_form *f) {
  int need = 1;
  for (size_t g = 0; g < f->n_groups; g++) {
    long rows = f->groups[g].rows, max = 0;
    for (size_t i = 0; i < f->n_fields; i++) {
      const struct mg_pack_field *fld = &f->fields[i];
      char key[160];
      if (strcmp(fld->group, f->groups[g].name) != 0 ||
          fld->compute != MG_PACK_COMPUTE_NONE)
        continue;
      mg__field_key(f, fld, key, sizeof(key));
      for (size_t k = 0; k < c->v->n_values; k++)
        if (c->v->values[k].row > max && c->v->values[k].text[0] &&
            strcmp(c->v->values[k].key, key) == 0)
          max = c->v->values[k].row;
      int pk = mg__people_key(key);
      if (pk >= 0 && people_keys[pk].grouped && (long)c->v->n_people > max)
        max = (long)c->v->n_people;
      const char *af;
      int ag = age_group_of(key, &af);
      if (ag >= 0 && (long)c->n_groups[ag] > max)
        max = (long)c->n_groups[ag];
    }
    if (rows > 0) {
      int s = (int)((max + rows - 1) / rows);
      if (s > need)
        need = s;
    }
  }
  return need > MAX_SHEETS ? MAX_SHEETS : need;
}

/* ---------------------------------------------------------------------- */
/* Open sheets                                                            */

static int has_inst(const struct mg_visit_form *v, size_t n, const char *id) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i].id, id) == 0)
      return 1;
  return 0;
}

static int removed(const struct mg_visit *v, const char *inst) {
  for (size_t i = 0; i < v->n_form_rows; i++)
    if (!v->form_rows[i].add && strcmp(v->form_rows[i].instance, inst) == 0)
      return 1;
  return 0;
}

static int push(struct mg_visit_form **arr, size_t *n, size_t *cap,
                const struct mg_pack_form *f, int sheet, const char *source,
                const char *procedure) {
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, nc * sizeof(**arr));
    if (!p)
      return -ENOMEM;
    *arr = p;
    *cap = nc;
  }
  struct mg_visit_form *x = &(*arr)[(*n)++];
  memset(x, 0, sizeof(*x));
  if (sheet > 1)
    snprintf(x->id, sizeof(x->id), "%s.%d", f->id, sheet);
  else
    snprintf(x->id, sizeof(x->id), "%s", f->id);
  x->form = f;
  x->sheet = sheet;
  x->source = source;
  x->procedure = procedure;
  return 0;
}

int mg__forms_list(const struct mg__fctx *c, struct mg_visit_form **out,
                      size_t *n_out) {
  const struct mg_visit *v = c->v;
  const struct mg_pack *p = c->p;
  struct mg_guide_input in;
  struct mg_guide_state gs;
  struct mg_date births[MG_GUIDE_MAX_PEOPLE];
  struct mg_visit_form *a = NULL, *o = NULL;
  size_t n = 0, cap = 0, no = 0;
  int rc;
  memset(&gs, 0, sizeof(gs));
  *out = NULL;
  *n_out = 0;
  if ((rc = mg_visit_guide(v, p, &in, births, &gs)))
    goto out;
  /* the guide's forms, then those added or copied by hand */
  for (size_t i = 0; i < gs.n_procs; i++) {
    const struct mg_pack_procedure *pr = gs.procs[i].p;
    if (gs.procs[i].source == MG_GUIDE_REMOVED || pr->kind != MG_PACK_PROC_FORM)
      continue;
    for (size_t k = 0; k < pr->forms.n; k++) {
      const struct mg_pack_form *f = mg_pack_form(p, pr->forms.v[k]);
      if (f && !has_inst(a, n, f->id) &&
          (rc = push(&a, &n, &cap, f, 1, "auto", pr->id)))
        goto out;
    }
  }
  for (size_t i = 0; i < v->n_form_rows; i++) {
    const struct mg_visit_form_row *r = &v->form_rows[i];
    const struct mg_pack_form *f = mg_pack_form(p, r->form);
    const char *dot = strchr(r->instance, '.');
    int sheet = dot ? atoi(dot + 1) : 1;
    if (!r->add || !f || has_inst(a, n, r->instance) || sheet < 1)
      continue;
    if ((rc = push(&a, &n, &cap, f, sheet, sheet > 1 ? "copy" : "added", "")))
      goto out;
  }
  /* I4: sheets for the rows that do not fit */
  for (size_t i = 0, n0 = n; i < n0; i++) {
    const struct mg_pack_form *f = a[i].form;
    if (a[i].sheet != 1 || !f->n_groups || !f->overflow_copy)
      continue;
    int need = sheets_needed(c, f);
    for (int s = 2; s <= need; s++) {
      char id[80];
      snprintf(id, sizeof(id), "%s.%d", f->id, s);
      if (!has_inst(a, n, id) &&
          (rc = push(&a, &n, &cap, f, s, "overflow", a[i].procedure)))
        goto out;
    }
  }
  /* drop removed sheets; keep each form's sheets together, in order */
  if (n && !(o = calloc(n, sizeof(*o)))) {
    rc = -ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    if (a[i].sheet != 1 && has_inst(a, i, a[i].form->id))
      continue; /* placed with its first sheet */
    for (int s = a[i].sheet; s <= MAX_SHEETS; s++)
      for (size_t k = 0; k < n; k++)
        if (a[k].form == a[i].form && a[k].sheet == s && !removed(v, a[k].id) &&
            !has_inst(o, no, a[k].id))
          o[no++] = a[k];
  }
  *out = o;
  *n_out = no;
  o = NULL;
out:
  free(a);
  free(o);
  mg_guide_state_free(&gs);
  return rc;
}

int mg_visit_forms(const struct mg_visit *v, const struct mg_pack *p,
                   struct mg_visit_form **out, size_t *n) {
  struct mg__fctx c;
  mg__ctx_init(&c, v, p, NULL);
  return mg__forms_list(&c, out, n);
}

const struct mg_visit_form *mg__find_inst(const struct mg_visit_form *a,
                                             size_t n, const char *id) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(a[i].id, id) == 0)
      return &a[i];
  return NULL;
}

const struct mg_visit_app *mg__app_of(const struct mg_visit *v,
                                         const char *form) {
  for (size_t i = 0; i < v->n_apps; i++)
    if (strcmp(v->apps[i].form, form) == 0)
      return &v->apps[i];
  return NULL;
}

int mg__sheets_of(const struct mg_visit_form *a, size_t n,
                     const struct mg_pack_form *f) {
  int s = 0;
  for (size_t i = 0; i < n; i++)
    s += a[i].form == f;
  return s;
}

/* Store text under key/row in v's values (replacing). */
int mg__put_value(struct mg_visit *v, const char *key, long row,
                     const char *text, const char *source, const char *inst,
                     const struct mg_visit_actor *a, const char *now) {
  struct mg_visit_value *x = (struct mg_visit_value *)mg__find_value(v, key, row);
  char *t = strdup(text);
  if (!t)
    return -ENOMEM;
  if (!x) {
    void *nv = realloc(v->values, (v->n_values + 1) * sizeof(*v->values));
    if (!nv) {
      free(t);
      return -ENOMEM;
    }
    v->values = nv;
    x = &v->values[v->n_values];
    memset(x, 0, sizeof(*x));
    if (!(x->key = strdup(key))) {
      free(t);
      return -ENOMEM;
    }
    v->n_values++;
  } else {
    OPENSSL_cleanse(x->text, strlen(x->text));
    free(x->text);
  }
  x->text = t;
  x->row = row;
  snprintf(x->source, sizeof(x->source), "%s", source);
  snprintf(x->form, sizeof(x->form), "%s", inst);
  snprintf(x->by, sizeof(x->by), "%s", a->user);
  snprintf(x->counter, sizeof(x->counter), "%s", a->counter);
  snprintf(x->at, sizeof(x->at), "%s", now);
  return 0;
}

/* Write a people key through to the people (a copy the caller stores). */
int mg__people_through(int k, long row,
                          const char *text, int valid,
                          struct mg_visit_person **people, size_t *n) {
  long i = people_keys[k].grouped ? row - 1 : 0;
  if (i < 0 || i >= MG_GUIDE_MAX_PEOPLE)
    return 0;
  if ((size_t)i >= *n) {
    void *np = realloc(*people, ((size_t)i + 1) * sizeof(**people));
    if (!np)
      return -ENOMEM;
    *people = np;
    memset(*people + *n, 0, ((size_t)i + 1 - *n) * sizeof(**people));
    *n = (size_t)i + 1;
  }
  struct mg_visit_person *pp = &(*people)[i];
  switch (people_keys[k].what) {
  case PF_NAME: pp->name = (char *)text; break;
  case PF_KANA: pp->kana = (char *)text; break;
  case PF_ADDRESS: pp->address = (char *)text; break;
  case PF_BIRTH:
    if (!*text)
      memset(&pp->birth, 0, sizeof(pp->birth));
    else if (valid)
      mg_date_parse(text, &pp->birth);
    break;
  }
  return 0;
}

int mg__open_sheets(struct mg__change *ch, const struct mg_visit_actor *a,
                       struct mg__fctx *c, struct mg_visit_form **fs, size_t *n,
                       struct mg_err *err) {
  mg__ctx_init(c, ch->v, ch->p, a);
  int rc = mg__forms_list(c, fs, n);
  return rc ? mg_err_set(err, rc, "the forms cannot be listed") : 0;
}

