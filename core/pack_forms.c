/*
 * pack_forms.c — forms/<form>/ of a procedure pack: form.ini, fields.csv,
 * layout.csv and template.pdf, and the carry-over keys across forms.
 */
#define MG_PACK_INTERNAL
#include "pack.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

struct mg__carry {
  const char *key;
  enum mg_pack_field_type type;
  const char *file; /* arena */
  int line;
};

static const char *const type_names[] = {
    "text",     "number",    "date",        "select",  "radio",
    "checkbox", "name",      "name_split",  "kana",    "postal_code",
    "address",  "mynumber",  "resident_code", "phone", NULL};

const char *mg_pack_field_type_name(enum mg_pack_field_type t) {
  return (size_t)t < sizeof(type_names) / sizeof(type_names[0]) - 1
             ? type_names[t]
             : "?";
}

void mg__pack_free_form(struct mg_pack_form *f) {
  for (size_t i = 0; i < f->n_fields; i++)
    free(f->fields[i].rules);
  free(f->fields);
  free(f->boxes);
  free(f->groups);
}

/* ---------------------------------------------------------------------- */
/* form.ini                                                                */

enum { K_NAME, K_TEMPLATE, K_PAGES, K_PAGE_SIZE, K_COUNTER, K_DOCUMENTS,
       K_COUNTERS, K_CSV_EXPORT, K_ROWS, K_ON_OVERFLOW, K_N };

static int page_size(const char *s, double *w, double *h) {
  static const struct {
    const char *name;
    double w, h;
  } sizes[] = {{"A4", 210, 297}, {"A3", 297, 420}, {"B4", 257, 364},
               {"B5", 182, 257}};
  char a[32], b[32];
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
    if (strcmp(s, sizes[i].name) == 0) {
      *w = sizes[i].w;
      *h = sizes[i].h;
      return 0;
    }
  const char *x = strchr(s, 'x');
  if (!x || x - s >= 31 || strlen(x + 1) >= 31)
    return -1;
  snprintf(a, sizeof(a), "%.*s", (int)(x - s), s);
  snprintf(b, sizeof(b), "%s", x + 1);
  if (mg__parse_mm(a, w) || mg__parse_mm(b, h) || *w <= 0 || *h <= 0 ||
      *w > 2000 || *h > 2000)
    return -1;
  return 0;
}

/* The first page's MediaBox (in mm) and the page count (largest /Count),
 * read from the PDF's plain dictionaries.  -1 when no MediaBox is there
 * (object streams hide it): the renderer checks such templates. */
static int pdf_geometry(const char *d, size_t len, double *w, double *h,
                        long *count) {
  const char *p = memmem(d, len, "/MediaBox", 9);
  char num[256];
  double v[4];
  if (!p)
    return -1;
  size_t off = (size_t)(p - d) + 9, n = 0;
  while (off < len && n < sizeof(num) - 1 && d[off] != ']')
    num[n++] = d[off++];
  num[n] = '\0';
  char *q = strchr(num, '['), *end;
  if (!q)
    return -1;
  q++;
  for (int i = 0; i < 4; i++) {
    v[i] = strtod(q, &end);
    if (end == q)
      return -1;
    q = end;
  }
  *w = (v[2] - v[0]) * 25.4 / 72;
  *h = (v[3] - v[1]) * 25.4 / 72;
  *count = 0;
  for (const char *c = d; (c = memmem(c, len - (size_t)(c - d), "/Count", 6));
       c += 6) {
    long k = strtol(c + 6, NULL, 10);
    if (k > *count)
      *count = k;
  }
  return 0;
}

static void form_ini(struct mg__ld *c, struct mg_pack_form *f,
                     const char *dir) {
  static const char *const keys[] = {
      "name",     "template",   "pages", "page_size",   "counter",
      "documents", "counters", "csv_export", "rows", "on_overflow", NULL};
  struct mg__kv kv[K_N];
  char rel[600];
  snprintf(rel, sizeof(rel), "%.480s/form.ini", dir);
  /* defaults first, so a broken form.ini still leaves a usable form */
  f->name = f->template_file = f->counter = "";
  f->pages = 1;
  f->page_width = 210;
  f->page_height = 297;
  f->csv_export = true;
  f->overflow_copy = true;
  mg__split_list(c, "*", &f->counters);
  if (mg__pack_ini(c, rel, "form", keys, kv, K_N) != 0)
    return;
  if (!kv[K_NAME].value || !kv[K_NAME].value[0])
    mg__pack_prob(c, rel, 0, 0, "missing key \"name\" in [form]");
  else
    f->name = kv[K_NAME].value;
  f->template_file = mg__pack_strdup(
      c, kv[K_TEMPLATE].value && kv[K_TEMPLATE].value[0] ? kv[K_TEMPLATE].value
                                                         : "template.pdf");
  if (kv[K_PAGES].value &&
      mg__parse_long(kv[K_PAGES].value, 1, 1000, &f->pages) != 0)
    mg__pack_prob(c, rel, kv[K_PAGES].line, 0,
                  "pages: \"%s\" is not a whole number from 1 to 1000",
                  kv[K_PAGES].value);
  if (kv[K_PAGE_SIZE].value &&
      page_size(kv[K_PAGE_SIZE].value, &f->page_width, &f->page_height) != 0)
    mg__pack_prob(c, rel, kv[K_PAGE_SIZE].line, 0,
                  "page_size: \"%s\" is not A4, A3, B4, B5 or WIDTHxHEIGHT in "
                  "mm (210x297)",
                  kv[K_PAGE_SIZE].value);
  if (kv[K_COUNTER].value) {
    f->counter = kv[K_COUNTER].value;
    if (f->counter[0] && !mg__counter_exists(c->p, f->counter))
      mg__pack_prob(c, rel, kv[K_COUNTER].line, 0,
                    "counter: counter \"%s\" does not exist (counters.csv)",
                    f->counter);
  }
  if (kv[K_DOCUMENTS].value)
    mg__split_list(c, kv[K_DOCUMENTS].value, &f->documents);
  if (kv[K_COUNTERS].value && kv[K_COUNTERS].value[0]) {
    mg__split_list(c, kv[K_COUNTERS].value, &f->counters);
    for (size_t i = 0; i < f->counters.n; i++)
      if (strcmp(f->counters.v[i], "*") != 0 &&
          !mg__counter_exists(c->p, f->counters.v[i]))
        mg__pack_prob(c, rel, kv[K_COUNTERS].line, 0,
                      "counters: counter \"%s\" does not exist (counters.csv)",
                      f->counters.v[i]);
  }
  if (kv[K_CSV_EXPORT].value) {
    int b = mg__parse_bool(kv[K_CSV_EXPORT].value);
    if (b < 0)
      mg__pack_prob(c, rel, kv[K_CSV_EXPORT].line, 0,
                    "csv_export: \"%s\" is not yes/no", kv[K_CSV_EXPORT].value);
    else
      f->csv_export = b;
  }
  if (kv[K_ON_OVERFLOW].value) {
    if (strcmp(kv[K_ON_OVERFLOW].value, "error") == 0)
      f->overflow_copy = false;
    else if (strcmp(kv[K_ON_OVERFLOW].value, "copy") != 0)
      mg__pack_prob(c, rel, kv[K_ON_OVERFLOW].line, 0,
                    "on_overflow: \"%s\" is not copy or error",
                    kv[K_ON_OVERFLOW].value);
  }
  if (kv[K_ROWS].value) {
    struct mg_pack_list l;
    mg__split_list(c, kv[K_ROWS].value, &l);
    for (size_t i = 0; i < l.n; i++) {
      char *colon = strchr(l.v[i], ':');
      long rows = 0;
      if (colon)
        *colon = '\0'; /* arena copy: ours to cut */
      if (!colon || !mg__is_id(l.v[i]) ||
          mg__parse_long(colon + 1, 1, 1000, &rows) != 0) {
        mg__pack_prob(c, rel, kv[K_ROWS].line, 0,
                      "rows: \"%s%s%s\" is not NAME:ROWS (household:4)",
                      l.v[i], colon ? ":" : "", colon ? colon + 1 : "");
        continue;
      }
      for (size_t j = 0; j < f->n_groups; j++)
        if (strcmp(f->groups[j].name, l.v[i]) == 0)
          mg__pack_prob(c, rel, kv[K_ROWS].line, 0,
                        "rows: group \"%s\" given twice", l.v[i]);
      struct mg_pack_group *g =
          mg__pack_push(c, &f->groups, &f->n_groups, sizeof(*g));
      if (!g)
        return;
      g->name = l.v[i];
      g->rows = rows;
    }
  }
  /* the template: a PDF in this folder */
  char trel[800];
  int tline = kv[K_TEMPLATE].line;
  snprintf(trel, sizeof(trel), "%.480s/%.300s", dir, f->template_file);
  if (strchr(f->template_file, '/') || f->template_file[0] == '.')
    mg__pack_prob(c, rel, tline, 0,
                  "template: \"%s\" must be a file name in this folder",
                  f->template_file);
  else if (!mg__pack_exists(c, trel, 0))
    mg__pack_prob(c, rel, tline, 0, "template: %s does not exist", trel);
  else {
    size_t len = 0;
    char *data = mg__pack_read(c, trel, &len, 0);
    double w = 0, h = 0;
    long count = 0;
    if (data && (len < 5 || memcmp(data, "%PDF-", 5) != 0))
      mg__pack_prob(c, rel, tline, 0,
                    "template: %s is not a PDF (it must start with %%PDF-)",
                    trel);
    else if (data && pdf_geometry(data, len, &w, &h, &count) == 0) {
      int ps = kv[K_PAGE_SIZE].line ? kv[K_PAGE_SIZE].line : tline;
      if (fabs(w - f->page_width) > 2 || fabs(h - f->page_height) > 2)
        mg__pack_prob(c, rel, ps, 0,
                      "page_size: %s has %.0fx%.0f mm pages but the form says "
                      "%.0fx%.0f mm",
                      trel, w, h, f->page_width, f->page_height);
      if (count > 0 && count < f->pages)
        mg__pack_prob(c, rel, kv[K_PAGES].line ? kv[K_PAGES].line : tline, 0,
                      "pages: %s has %ld page(s) but the form says %ld", trel,
                      count, f->pages);
    }
    free(data);
  }
}

static const struct mg_pack_group *group(const struct mg_pack_form *f,
                                         const char *name) {
  for (size_t i = 0; i < f->n_groups; i++)
    if (strcmp(f->groups[i].name, name) == 0)
      return &f->groups[i];
  return NULL;
}

static const struct mg_pack_field *field(const struct mg_pack_form *f,
                                         const char *id) {
  for (size_t i = 0; i < f->n_fields; i++)
    if (strcmp(f->fields[i].id, id) == 0)
      return &f->fields[i];
  return NULL;
}

/* ---------------------------------------------------------------------- */
/* fields.csv                                                              */

enum { F_ID, F_LABEL, F_TYPE, F_GROUP, F_REQUIRED, F_CARRY, F_MAX_LENGTH,
       F_CHOICES, F_PARENT, F_RULE, F_COMPUTE, F_DEFAULT, F_STAFF_ONLY,
       F_CSV_EXPORT };

/* One rule: `<= filing`, `>= filing - 14d`, `<= filing + 1m` (spaces
 * optional).  0 or -1. */
static int parse_rule(const char *s, struct mg_pack_rule *r) {
  while (*s == ' ')
    s++;
  if ((s[0] != '<' && s[0] != '>') || s[1] != '=')
    return -1;
  r->cmp = s[0] == '<' ? -1 : 1;
  s += 2;
  while (*s == ' ')
    s++;
  if (strncmp(s, "filing", 6) != 0)
    return -1;
  s += 6;
  while (*s == ' ')
    s++;
  r->amount = 0;
  r->unit = 'd';
  if (!*s)
    return 0;
  int sign = *s == '+' ? 1 : *s == '-' ? -1 : 0;
  if (!sign)
    return -1;
  s++;
  while (*s == ' ')
    s++;
  long n = 0;
  int digits = 0;
  while (isdigit((unsigned char)*s) && digits < 6) {
    n = n * 10 + (*s++ - '0');
    digits++;
  }
  if (!digits || (*s != 'd' && *s != 'm' && *s != 'y'))
    return -1;
  r->unit = *s++;
  while (*s == ' ')
    s++;
  if (*s)
    return -1;
  r->amount = (int)(sign * n);
  return 0;
}

/* A carry key is dotted words: applicant.name, household.birth_date. */
static char *carry_key(const struct mg__table *t, size_t r, int k) {
  const char *s = mg__cell(t, r, k);
  size_t word = 0, n = strlen(s);
  int ok = n <= 128;
  for (size_t i = 0; ok && i < n; i++) {
    if (s[i] == '.') {
      ok = word > 0;
      word = 0;
    } else {
      ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
           s[i] == '_';
      word++;
    }
  }
  if (n && (!ok || word == 0))
    mg__cell_prob(t, r, k,
                  "\"%.80s\" is not a carry key (words of a-z 0-9 _ joined "
                  "by \".\", e.g. applicant.name)",
                  s);
  return mg__get_str(t, r, k);
}

static void carry_check(struct mg__ld *c, const struct mg__table *t, size_t r,
                        const struct mg_pack_field *x) {
  for (size_t i = 0; i < c->n_carry; i++) {
    if (strcmp(c->carry[i].key, x->carry) != 0)
      continue;
    if (c->carry[i].type != x->type)
      mg__cell_prob(t, r, F_CARRY,
                    "carry key \"%s\" is a %s here but a %s in %s:%d (the "
                    "same key must have the same type)",
                    x->carry, type_names[x->type], type_names[c->carry[i].type],
                    c->carry[i].file, c->carry[i].line);
    return;
  }
  struct mg__carry *k = mg__pack_push(c, &c->carry, &c->n_carry, sizeof(*k));
  if (k) {
    k->key = x->carry;
    k->type = x->type;
    k->file = mg__pack_strdup(c, t->file);
    k->line = x->line;
  }
}

static void load_fields(struct mg__ld *c, struct mg_pack_form *f,
                        const char *dir) {
  static const struct mg__col cols[] = {
      {"id", 1},        {"label", 1},     {"type", 1},       {"group", 0},
      {"required", 0},  {"carry", 0},     {"max_length", 0}, {"choices", 0},
      {"parent", 0},    {"rule", 0},      {"compute", 0},    {"default", 0},
      {"staff_only", 0}, {"csv_export", 0}, {NULL, 0}};
  static const char *const computes[] = {"", "age", "school_grade", "district",
                                         "wareki", NULL};
  struct mg__table t;
  char rel[600];
  snprintf(rel, sizeof(rel), "%.480s/fields.csv", dir);
  if (mg__pack_table(c, &t, rel, cols, 0) != 0)
    return;
  for (size_t r = 0; r < t.csv.n_rows; r++) {
    struct mg_pack_field *x =
        mg__pack_push(c, &f->fields, &f->n_fields, sizeof(*x));
    if (!x)
      break;
    x->line = t.csv.rows[r].line;
    x->id = mg__get_id(&t, r, F_ID);
    x->label = mg__get_str(&t, r, F_LABEL);
    x->type = (enum mg_pack_field_type)mg__get_enum(&t, r, F_TYPE, type_names,
                                                    0);
    x->group = mg__get_str(&t, r, F_GROUP);
    if (x->group[0] && !group(f, x->group))
      mg__cell_prob(&t, r, F_GROUP,
                    "group \"%s\" is not in form.ini rows (%s/form.ini)",
                    x->group, dir);
    x->required = mg__get_bool(&t, r, F_REQUIRED, false);
    x->carry = carry_key(&t, r, F_CARRY);
    if (x->carry[0])
      carry_check(c, &t, r, x);
    x->max_length = mg__get_long(&t, r, F_MAX_LENGTH, 0, 1, 100000);
    x->choices = mg__get_id(&t, r, F_CHOICES);
    int listed = x->type == MG_PACK_SELECT || x->type == MG_PACK_RADIO;
    if (listed && !x->choices[0])
      mg__cell_prob(&t, r, F_CHOICES, "a %s field needs a choice list",
                    type_names[x->type]);
    else if (!listed && x->choices[0])
      mg__cell_prob(&t, r, F_CHOICES,
                    "only select and radio fields take choices");
    else if (x->choices[0] && !mg_pack_choices(c->p, x->choices))
      mg__cell_prob(&t, r, F_CHOICES,
                    "choice list \"%s\" does not exist (choices/%s.csv)",
                    x->choices, x->choices);
    x->parent = mg__get_str(&t, r, F_PARENT);
    const char *rules = mg__cell(&t, r, F_RULE);
    if (rules[0] && x->type != MG_PACK_DATE)
      mg__cell_prob(&t, r, F_RULE, "rules apply to date fields only");
    else if (rules[0]) {
      struct mg_pack_list l;
      mg__split_list(c, rules, &l);
      for (size_t i = 0; i < l.n; i++) {
        struct mg_pack_rule *ru =
            mg__pack_push(c, &x->rules, &x->n_rules, sizeof(*ru));
        if (ru && parse_rule(l.v[i], ru) != 0) {
          mg__cell_prob(&t, r, F_RULE,
                        "\"%s\" is not a date rule (`<= filing`, `>= filing - "
                        "14d`, `<= filing + 1m`; units d, m, y)",
                        l.v[i]);
          x->n_rules--;
        }
      }
    }
    /* compute: FN(FIELD); the argument is checked once all fields are in */
    const char *cs = mg__cell(&t, r, F_COMPUTE);
    x->compute_arg = "";
    if (cs[0]) {
      const char *lp = strchr(cs, '('), *rp = strrchr(cs, ')');
      char fn[32] = "";
      if (lp && rp && rp > lp && !rp[1] && lp - cs < 31) {
        snprintf(fn, sizeof(fn), "%.*s", (int)(lp - cs), cs);
        for (int i = 1; computes[i]; i++)
          if (strcmp(fn, computes[i]) == 0)
            x->compute = (enum mg_pack_compute)i;
      }
      if (x->compute == MG_PACK_COMPUTE_NONE)
        mg__cell_prob(&t, r, F_COMPUTE,
                      "\"%s\" is not age(FIELD), school_grade(FIELD), "
                      "district(FIELD) or wareki(FIELD)",
                      cs);
      else {
        char arg[128];
        snprintf(arg, sizeof(arg), "%.*s", (int)(rp - lp - 1), lp + 1);
        x->compute_arg = mg__pack_strdup(c, arg);
      }
    }
    x->def = mg__get_str(&t, r, F_DEFAULT);
    long dummy;
    if (strcmp(x->def, "today") == 0 && x->type != MG_PACK_DATE)
      mg__cell_prob(&t, r, F_DEFAULT, "\"today\" is for date fields only");
    else if (x->def[0] && x->type == MG_PACK_NUMBER &&
             mg__parse_long(x->def, -1000000000L, 1000000000L, &dummy) != 0)
      mg__cell_prob(&t, r, F_DEFAULT, "\"%s\" is not a whole number", x->def);
    else if (x->def[0] && x->type == MG_PACK_CHECKBOX &&
             mg__parse_bool(x->def) < 0)
      mg__cell_prob(&t, r, F_DEFAULT, "\"%s\" is not yes/no", x->def);
    x->staff_only = mg__get_bool(&t, r, F_STAFF_ONLY, false);
    x->csv_export = mg__get_bool(&t, r, F_CSV_EXPORT, true);
  }
  mg__check_unique(c, rel, "field", f->fields, f->n_fields,
                   sizeof(struct mg_pack_field),
                   offsetof(struct mg_pack_field, id),
                   offsetof(struct mg_pack_field, line));
  /* references inside the form */
  for (size_t r = 0; r < f->n_fields && r < t.csv.n_rows; r++) {
    const struct mg_pack_field *x = &f->fields[r], *o;
    if (x->parent[0]) {
      o = field(f, x->parent);
      if (x->type != MG_PACK_SELECT)
        mg__cell_prob(&t, r, F_PARENT, "only select fields take a parent");
      else if (!o)
        mg__cell_prob(&t, r, F_PARENT, "field \"%s\" does not exist",
                      x->parent);
      else if (o == x)
        mg__cell_prob(&t, r, F_PARENT, "a field cannot be its own parent");
      else if (o->type != MG_PACK_SELECT || !o->choices[0])
        mg__cell_prob(&t, r, F_PARENT,
                      "parent field \"%s\" must be a select field with choices",
                      x->parent);
      else {
        const struct mg_pack_choice_list *mine = mg_pack_choices(c->p,
                                                                 x->choices);
        const struct mg_pack_choice_list *up = mg_pack_choices(c->p,
                                                               o->choices);
        for (size_t i = 0; mine && up && i < mine->n; i++) {
          size_t j = 0;
          while (j < up->n && strcmp(up->v[j].value, mine->v[i].parent) != 0)
            j++;
          if (j == up->n)
            mg__pack_prob(c, rel, x->line, 0,
                              "column \"parent\": choices/%s.csv:%d: parent "
                              "\"%s\" is not a value of choices/%s.csv",
                              mine->id, mine->v[i].line, mine->v[i].parent,
                              up->id);
        }
      }
    }
    if (x->compute != MG_PACK_COMPUTE_NONE) {
      o = field(f, x->compute_arg);
      if (!o || o == x)
        mg__cell_prob(&t, r, F_COMPUTE, "field \"%s\" does not exist%s",
                      x->compute_arg, o ? " (it is this field)" : "");
      else if (x->compute == MG_PACK_COMPUTE_DISTRICT
                   ? (o->type != MG_PACK_ADDRESS &&
                      o->type != MG_PACK_POSTAL_CODE)
                   : o->type != MG_PACK_DATE)
        mg__cell_prob(&t, r, F_COMPUTE, "field \"%s\" is a %s; %s needs %s",
                      o->id, type_names[o->type], computes[x->compute],
                      x->compute == MG_PACK_COMPUTE_DISTRICT
                          ? "an address or postal_code field"
                          : "a date field");
    }
    if (x->def[0] && (x->type == MG_PACK_SELECT || x->type == MG_PACK_RADIO)) {
      const struct mg_pack_choice_list *l = mg_pack_choices(c->p, x->choices);
      size_t j = 0;
      while (l && j < l->n && strcmp(l->v[j].value, x->def) != 0)
        j++;
      if (l && j == l->n)
        mg__cell_prob(&t, r, F_DEFAULT, "\"%s\" is not a value of choices/%s.csv",
                      x->def, l->id);
    }
  }
  mg__pack_table_free(&t);
}

/* ---------------------------------------------------------------------- */
/* layout.csv                                                              */

enum { L_FIELD, L_ROW, L_PAGE, L_X, L_Y, L_W, L_H, L_FONT_SIZE, L_ALIGN,
       L_WRAP, L_MAX_CHARS, L_FONT, L_FORMAT };

static bool font_family_exists(const struct mg_pack *p, const char *family) {
  for (size_t i = 0; i < p->n_fonts; i++)
    if (strcmp(p->fonts[i].family, family) == 0)
      return true;
  return false;
}

/* Rows a field prints in: 1 outside groups. */
static long field_rows(const struct mg_pack_form *f,
                       const struct mg_pack_field *x) {
  const struct mg_pack_group *g = x->group[0] ? group(f, x->group) : NULL;
  return g ? g->rows : 1;
}

static void load_layout(struct mg__ld *c, struct mg_pack_form *f,
                        const char *dir) {
  static const struct mg__col cols[] = {
      {"field", 1},     {"row", 0},   {"page", 0},      {"x", 1},
      {"y", 1},         {"width", 1}, {"height", 1},    {"font_size", 0},
      {"align", 0},     {"wrap", 0},  {"max_chars", 0}, {"font", 0},
      {"format", 0},    {NULL, 0}};
  static const char *const aligns[] = {"left", "center", "right", NULL};
  struct mg__table t;
  char rel[600];
  /* covered[(field * (maxrows + 1) + row) * 2 + part]: part 1 = .given */
  unsigned char *covered = NULL;
  long maxrows = 1;
  snprintf(rel, sizeof(rel), "%.480s/layout.csv", dir);
  for (size_t i = 0; i < f->n_groups; i++)
    if (f->groups[i].rows > maxrows)
      maxrows = f->groups[i].rows;
  if (mg__pack_table(c, &t, rel, cols, 0) != 0)
    return;
  covered = calloc(f->n_fields ? f->n_fields : 1,
                   (size_t)(maxrows + 1) * 2);
  if (!covered) {
    c->oom = 1;
    goto out;
  }
  for (size_t r = 0; r < t.csv.n_rows; r++) {
    struct mg_pack_box *b = mg__pack_push(c, &f->boxes, &f->n_boxes,
                                          sizeof(*b));
    if (!b)
      break;
    b->line = t.csv.rows[r].line;
    b->field = mg__get_str(&t, r, L_FIELD);
    /* which field, and which part of a split name */
    const struct mg_pack_field *x = NULL;
    int part = 0, special = b->field[0] == '@';
    char base[128];
    snprintf(base, sizeof(base), "%s", b->field);
    char *dot = strchr(base, '.');
    if (dot)
      *dot = '\0';
    if (special) {
      if (strcmp(b->field, "@signature") && strcmp(b->field, "@mask"))
        mg__cell_prob(&t, r, L_FIELD,
                      "\"%s\" is not a field (@signature and @mask are the "
                      "special slots)",
                      b->field);
    } else if (b->field[0]) {
      x = field(f, base);
      if (!x)
        mg__cell_prob(&t, r, L_FIELD,
                      "field \"%s\" does not exist in fields.csv", base);
      else if (x->type == MG_PACK_NAME_SPLIT) {
        if (!dot || (strcmp(dot + 1, "family") && strcmp(dot + 1, "given"))) {
          mg__cell_prob(&t, r, L_FIELD,
                        "name_split field \"%s\" prints as %s.family and "
                        "%s.given",
                        base, base, base);
          x = NULL;
        } else
          part = strcmp(dot + 1, "given") == 0;
      } else if (dot) {
        mg__cell_prob(&t, r, L_FIELD,
                      "only name_split fields have parts (.family, .given)");
        x = NULL;
      }
    }
    /* row: required for grouped fields, within the group */
    long rows = x ? field_rows(f, x) : 1;
    const char *rs = mg__cell(&t, r, L_ROW);
    b->row = 0;
    if (x && x->group[0]) {
      if (!rs[0])
        mg__cell_prob(&t, r, L_ROW,
                      "field \"%s\" is in group \"%s\": say which row "
                      "(1-%ld)",
                      x->id, x->group, rows);
      else if (mg__parse_long(rs, 1, rows, &b->row) != 0)
        mg__cell_prob(&t, r, L_ROW,
                      "\"%s\" is not a row of group \"%s\" (1-%ld, form.ini "
                      "rows)",
                      rs, x->group, rows);
    } else if (rs[0] && (x || special))
      mg__cell_prob(&t, r, L_ROW, "field \"%s\" is not in a group: no row",
                    b->field);
    b->page = mg__get_long(&t, r, L_PAGE, 1, 1, 1000);
    if (b->page > f->pages)
      mg__cell_prob(&t, r, L_PAGE,
                    "page %ld is beyond the form's %ld page%s (form.ini pages)",
                    b->page, f->pages, f->pages == 1 ? "" : "s");
    b->x = mg__get_num(&t, r, L_X, 0);
    b->y = mg__get_num(&t, r, L_Y, 0);
    b->width = mg__get_num(&t, r, L_W, 0);
    b->height = mg__get_num(&t, r, L_H, 0);
    char who[200];
    if (b->row)
      snprintf(who, sizeof(who), "field \"%.80s\" row %ld", b->field, b->row);
    else
      snprintf(who, sizeof(who), "field \"%.80s\"", b->field);
    if (mg__cell(&t, r, L_W)[0] && b->width <= 0)
      mg__pack_prob(c, rel, b->line, 0, "%s: width must be more than 0", who);
    if (mg__cell(&t, r, L_H)[0] && b->height <= 0)
      mg__pack_prob(c, rel, b->line, 0, "%s: height must be more than 0", who);
    if (b->x + b->width > f->page_width)
      mg__pack_prob(c, rel, b->line, 0,
                    "%s: box x=%g width=%g ends at %g mm, outside the page "
                    "(%g mm wide)",
                    who, b->x, b->width, b->x + b->width, f->page_width);
    if (b->y + b->height > f->page_height)
      mg__pack_prob(c, rel, b->line, 0,
                    "%s: box y=%g height=%g ends at %g mm, outside the page "
                    "(%g mm high)",
                    who, b->y, b->height, b->y + b->height, f->page_height);
    b->font_size = mg__get_num(&t, r, L_FONT_SIZE, 10.5);
    if (b->font_size <= 0 || b->font_size > 200)
      mg__cell_prob(&t, r, L_FONT_SIZE, "points from 1 to 200");
    b->align = (enum mg_pack_align)mg__get_enum(&t, r, L_ALIGN, aligns, 0);
    b->wrap = mg__get_bool(&t, r, L_WRAP, false);
    b->max_chars = mg__get_long(&t, r, L_MAX_CHARS, 0, 1, 100000);
    b->font = mg__get_str(&t, r, L_FONT);
    if (b->font[0] && !font_family_exists(c->p, b->font))
      mg__cell_prob(&t, r, L_FONT, "font family \"%s\" is not in fonts.csv%s",
                    b->font, c->p->n_fonts ? "" : " (the pack has no fonts.csv)");
    b->format = mg__get_str(&t, r, L_FORMAT);
    if (b->format[0] && x) {
      if (x->type == MG_PACK_DATE) {
        if (strcmp(b->format, "wareki") && strcmp(b->format, "wareki_short") &&
            strcmp(b->format, "iso"))
          mg__cell_prob(&t, r, L_FORMAT,
                        "\"%s\" is not wareki, wareki_short or iso", b->format);
      } else if (x->type != MG_PACK_CHECKBOX)
        mg__cell_prob(&t, r, L_FORMAT,
                      "format applies to date and checkbox fields only");
    }
    if (x && (b->row || !x->group[0]))
      covered[((size_t)(x - f->fields) * (size_t)(maxrows + 1) +
               (size_t)b->row) * 2 + (size_t)part] = 1;
  }
  /* every printable field prints somewhere, grouped ones in every row */
  for (size_t i = 0; i < f->n_fields; i++) {
    const struct mg_pack_field *x = &f->fields[i];
    if (x->staff_only || x->compute != MG_PACK_COMPUTE_NONE || !x->id[0] ||
        (x->group[0] && !group(f, x->group)))
      continue; /* (an unknown group is reported in fields.csv already) */
    int grouped = x->group[0] != '\0';
    long rows = field_rows(f, x);
    int parts = x->type == MG_PACK_NAME_SPLIT ? 2 : 1;
    for (long row = grouped ? 1 : 0; row <= (grouped ? rows : 0); row++)
      for (int pt = 0; pt < parts; pt++) {
        if (covered[(i * (size_t)(maxrows + 1) + (size_t)row) * 2 + (size_t)pt])
          continue;
        char where[64] = "";
        if (grouped)
          snprintf(where, sizeof(where), " row %ld", row);
        char fields_rel[600];
        snprintf(fields_rel, sizeof(fields_rel), "%.480s/fields.csv", dir);
        mg__pack_prob(c, fields_rel, x->line, 0,
                      "field \"%s%s\"%s has no box in layout.csv (every field "
                      "that is not staff_only prints somewhere)",
                      x->id, parts == 2 ? (pt ? ".given" : ".family") : "",
                      where);
      }
  }
out:
  free(covered);
  mg__pack_table_free(&t);
}

/* ---------------------------------------------------------------------- */

void mg__pack_load_forms(struct mg__ld *c) {
  char **names = NULL;
  size_t n = mg__pack_list_dir(c, "forms", &names);
  for (size_t i = 0; i < n && !c->oom; i++) {
    char dir[512];
    snprintf(dir, sizeof(dir), "forms/%.400s", names[i]);
    if (!mg__pack_exists(c, dir, 1)) {
      mg__pack_prob(c, dir, 0, 0, "only form folders belong in forms/");
      continue;
    }
    if (!mg__is_id(names[i])) {
      mg__pack_prob(c, dir, 0, 0,
                    "folder name \"%s\" is not an id (1-64 of a-z 0-9 _ -)",
                    names[i]);
      continue;
    }
    struct mg_pack_form *f =
        mg__pack_push(c, &c->p->forms, &c->p->n_forms, sizeof(*f));
    if (!f)
      break;
    f->id = names[i];
    form_ini(c, f, dir);
    load_fields(c, f, dir);
    load_layout(c, f, dir);
  }
  free(names);
}
