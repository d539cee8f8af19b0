/*
 * pack.c — the procedure-pack loader and validator (pack.h): the report,
 * the shared readers (files, INI, CSV tables, typed cells), the pack-wide
 * tables and the cross references.  Forms live in pack_forms.c.
 *
 * Every check records a problem and goes on, so one run lists everything
 * staff must fix; the model is handed out only when nothing was found.
 */
#define MG_PACK_INTERNAL
#include "pack.h"
#include "ini.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"

#define MAX_FILE (64u << 20) /* a pack file larger than this is a mistake */

/* ---------------------------------------------------------------------- */
/* Report                                                                  */

void mg_pack_report_init(struct mg_pack_report *rep) {
  memset(rep, 0, sizeof(*rep));
}

void mg_pack_report_free(struct mg_pack_report *rep) {
  for (size_t i = 0; i < rep->n; i++) {
    free(rep->v[i].file);
    free(rep->v[i].msg);
  }
  free(rep->v);
  memset(rep, 0, sizeof(*rep));
}

static void report_vadd(struct mg_pack_report *rep, const char *file,
                        int line, int col, const char *fmt, va_list ap) {
  struct mg_buf b;
  if (rep->n >= MG_PACK_MAX_PROBLEMS) {
    rep->dropped++;
    return;
  }
  struct mg_pack_problem *v = realloc(rep->v, (rep->n + 1) * sizeof(*v));
  if (!v) {
    rep->dropped++;
    return;
  }
  rep->v = v;
  mg_buf_init(&b);
  mg_buf_vprintf(&b, fmt, ap);
  v[rep->n].msg = mg_buf_steal(&b);
  v[rep->n].file = strdup(file ? file : "");
  v[rep->n].line = line;
  v[rep->n].col = col;
  if (!v[rep->n].msg || !v[rep->n].file) {
    free(v[rep->n].msg);
    free(v[rep->n].file);
    rep->dropped++;
    return;
  }
  rep->n++;
}

void mg_pack_report_add(struct mg_pack_report *rep, const char *file, int line,
                        int col, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report_vadd(rep, file, line, col, fmt, ap);
  va_end(ap);
}

void mg_pack_report_print(const struct mg_pack_report *rep, FILE *out) {
  for (size_t i = 0; i < rep->n; i++) {
    const struct mg_pack_problem *p = &rep->v[i];
    fputs(p->file, out);
    if (p->line > 0)
      fprintf(out, ":%d", p->line);
    if (p->line > 0 && p->col > 0)
      fprintf(out, ":%d", p->col);
    fprintf(out, ": %s\n", p->msg);
  }
  if (rep->dropped)
    fprintf(out, "... and %zu more problems\n", rep->dropped);
}

void mg__pack_prob(struct mg__ld *c, const char *file, int line, int col,
                   const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report_vadd(c->rep, file, line, col, fmt, ap);
  va_end(ap);
}

/* ---------------------------------------------------------------------- */
/* Arena: the model's strings and lists, freed at once                     */

struct chunk {
  struct chunk *next;
  size_t used, cap;
  max_align_t data[];
};

void *mg__pack_alloc(struct mg__ld *c, size_t n) {
  struct chunk **head = (struct chunk **)&c->p->arena;
  n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
  if (!*head || (*head)->cap - (*head)->used < n) {
    size_t cap = n > 65536 ? n : 65536;
    struct chunk *k = malloc(sizeof(*k) + cap);
    if (!k) {
      c->oom = 1;
      return NULL;
    }
    k->next = *head;
    k->used = 0;
    k->cap = cap;
    *head = k;
  }
  void *p = (char *)(*head)->data + (*head)->used;
  (*head)->used += n;
  memset(p, 0, n);
  return p;
}

char *mg__pack_strdup(struct mg__ld *c, const char *s) {
  size_t n = strlen(s);
  char *d = mg__pack_alloc(c, n + 1);
  if (!d)
    return (char *)""; /* never freed one by one, so a constant is safe */
  memcpy(d, s, n + 1);
  return d;
}

void *mg__pack_push(struct mg__ld *c, void *arrp, size_t *n, size_t size) {
  void **arr = arrp;
  char *v = realloc(*arr, (*n + 1) * size);
  if (!v) {
    c->oom = 1;
    return NULL;
  }
  *arr = v;
  memset(v + *n * size, 0, size);
  return v + (*n)++ * size;
}

/* ---------------------------------------------------------------------- */
/* Files                                                                   */

char *mg__pack_read(struct mg__ld *c, const char *rel, size_t *len,
                    int optional) {
  char path[4096];
  FILE *f = NULL;
  char *data = NULL;
  struct stat st;
  snprintf(path, sizeof(path), "%s/%s", c->dir, rel);
  if (stat(path, &st) != 0) {
    if (!optional)
      mg__pack_prob(c, rel, 0, 0, "missing file");
    return NULL;
  }
  if (!S_ISREG(st.st_mode)) {
    mg__pack_prob(c, rel, 0, 0, "not a regular file");
    return NULL;
  }
  if ((size_t)st.st_size > MAX_FILE) {
    mg__pack_prob(c, rel, 0, 0, "file too large (%lld bytes, at most %u)",
                  (long long)st.st_size, MAX_FILE);
    return NULL;
  }
  if (!(f = fopen(path, "rb"))) {
    mg__pack_prob(c, rel, 0, 0, "cannot open: %s", strerror(errno));
    return NULL;
  }
  if (!(data = malloc((size_t)st.st_size + 1))) {
    c->oom = 1;
    fclose(f);
    return NULL;
  }
  *len = fread(data, 1, (size_t)st.st_size, f);
  data[*len] = '\0';
  fclose(f);
  return data;
}

int mg__pack_exists(struct mg__ld *c, const char *rel, int want_dir) {
  char path[4096];
  struct stat st;
  snprintf(path, sizeof(path), "%s/%s", c->dir, rel);
  if (stat(path, &st) != 0)
    return 0;
  return want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode);
}

static int name_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t mg__pack_list_dir(struct mg__ld *c, const char *rel, char ***names) {
  char path[4096];
  DIR *d;
  struct dirent *de;
  char **v = NULL;
  size_t n = 0;
  *names = NULL;
  snprintf(path, sizeof(path), "%s/%s", c->dir, rel);
  if (!(d = opendir(path)))
    return 0;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.')
      continue; /* ., .. and hidden files such as .gitkeep */
    char **slot = mg__pack_push(c, &v, &n, sizeof(*v));
    if (!slot)
      break;
    *slot = mg__pack_strdup(c, de->d_name);
  }
  closedir(d);
  if (n)
    qsort(v, n, sizeof(*v), name_cmp);
  *names = v;
  return n;
}

/* ---------------------------------------------------------------------- */
/* INI (docs/config.md syntax, one known section)                           */


int mg__pack_ini(struct mg__ld *c, const char *rel, const char *section,
                 const char *const *keys, struct mg__kv *kv, size_t nkv) {
  size_t len = 0;
  struct mg_csv_error e;
  struct mg_ini ini = {0};
  struct mg_err err = {{0}};
  char *text = mg__pack_read(c, rel, &len, 0);
  int seen = 0;

  if (!text)
    return -1;
  memset(kv, 0, nkv * sizeof(*kv));
  int skip = mg_csv_check_text(text, len, &e); /* encoding, as for CSV */
  if (skip < 0) {
    mg__pack_prob(c, rel, e.line, e.col, "%s", e.rule);
    free(text);
    return -1;
  }
  if (mg_ini_read(text + skip, len - (size_t)skip, rel, &ini, &err)) {
    /* the message starts with "rel:line: "; keep the rule */
    const char *rule = err.msg;
    for (int colons = 0; *rule && colons < 2; rule++)
      colons += *rule == ':';
    mg__pack_prob(c, rel, ini.err_line, 0, "%s", *rule == ' ' ? rule + 1 : rule);
  }
  for (size_t i = 0; i < ini.n; i++) {
    struct mg_ini_section *sec = &ini.s[i];
    if (sec->id || strcmp(sec->type, section) != 0) {
      mg__pack_prob(c, rel, sec->line, 0, "unknown section [%s%s%s%s] (only [%s])",
                    sec->type, sec->id ? " \"" : "", sec->id ? sec->id : "",
                    sec->id ? "\"" : "", section);
      continue;
    }
    if (seen++) {
      mg__pack_prob(c, rel, sec->line, 0, "section [%s] given twice", section);
      continue;
    }
    for (size_t j = 0; j < sec->n_kv; j++) {
      const struct mg_config_kv *x = &sec->kv[j];
      size_t k;
      for (k = 0; keys[k] && k < nkv; k++)
        if (strcmp(keys[k], x->key) == 0)
          break;
      if (!keys[k] || k >= nkv) {
        mg__pack_prob(c, rel, x->line, 0, "unknown key \"%.60s\" in [%s]", x->key,
                      section);
      } else if (kv[k].line) {
        mg__pack_prob(c, rel, x->line, 0,
                      "key \"%s\" given twice (first on line %d)", keys[k],
                      kv[k].line);
      } else {
        kv[k].value = mg__pack_strdup(c, x->value);
        kv[k].line = x->line;
      }
    }
  }
  if (!seen && !err.msg[0])
    mg__pack_prob(c, rel, 0, 0, "missing section [%s]", section);
  mg_ini_free(&ini);
  free(text);
  return 0;
}

/* ---------------------------------------------------------------------- */
/* CSV tables and typed cells                                              */

static void col_report(void *ctx, int line, int col, const char *msg) {
  struct mg__table *t = ctx;
  mg__pack_prob(t->c, t->file, line, col, "%s", msg);
}

int mg__pack_table(struct mg__ld *c, struct mg__table *t, const char *file,
                   const struct mg__col *cols, int optional) {
  const char *known[64], *req[64];
  size_t nk = 0, nr = 0, len = 0;
  struct mg_csv_error e;
  memset(t, 0, sizeof(*t));
  t->c = c;
  t->cols = cols;
  snprintf(t->file, sizeof(t->file), "%s", file);
  char *text = mg__pack_read(c, file, &len, optional);
  if (!text)
    return -1;
  int rc = mg_csv_parse(text, len, &t->csv, &e);
  free(text);
  if (rc) {
    mg__pack_prob(c, file, e.line, e.col, "%s", e.rule);
    mg_csv_free(&t->csv);
    return -1;
  }
  for (size_t k = 0; cols[k].name && k < 63; k++) {
    known[nk++] = cols[k].name;
    if (cols[k].required)
      req[nr++] = cols[k].name;
    t->idx[k] = mg_csv_column(&t->csv, cols[k].name);
  }
  known[nk] = NULL;
  req[nr] = NULL;
  mg_csv_check_columns(&t->csv, known, req, col_report, t);
  return 0;
}

void mg__pack_table_free(struct mg__table *t) { mg_csv_free(&t->csv); }

const char *mg__cell(const struct mg__table *t, size_t row, int k) {
  int i = t->idx[k];
  return i < 0 ? "" : t->csv.rows[row].cells[i].text;
}

int mg__cell_line(const struct mg__table *t, size_t row, int k) {
  int i = t->idx[k];
  return i < 0 ? t->csv.rows[row].line : t->csv.rows[row].cells[i].line;
}

void mg__cell_prob(const struct mg__table *t, size_t row, int k,
                   const char *fmt, ...) {
  va_list ap;
  struct mg_buf b;
  mg_buf_init(&b);
  mg_buf_printf(&b, "column \"%s\": ", t->cols[k].name);
  va_start(ap, fmt);
  mg_buf_vprintf(&b, fmt, ap);
  va_end(ap);
  mg__pack_prob(t->c, t->file, mg__cell_line(t, row, k), 0, "%s",
                b.data ? b.data : "out of memory");
  mg_buf_free(&b);
}

bool mg__is_id(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > 64)
    return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' ||
          *s == '-'))
      return false;
  return true;
}

char *mg__get_str(const struct mg__table *t, size_t row, int k) {
  const char *s = mg__cell(t, row, k);
  if (!s[0] && t->cols[k].required && t->idx[k] >= 0)
    mg__cell_prob(t, row, k, "required, but empty");
  return mg__pack_strdup(t->c, s);
}

char *mg__get_id(const struct mg__table *t, size_t row, int k) {
  const char *s = mg__cell(t, row, k);
  if (s[0] && !mg__is_id(s))
    mg__cell_prob(t, row, k,
                  "\"%.80s\" is not an id (1-64 of a-z 0-9 _ -)", s);
  return mg__get_str(t, row, k);
}

int mg__parse_bool(const char *s) {
  static const char *const yes[] = {"yes", "true", "1", "はい"};
  static const char *const no[] = {"no", "false", "0", "いいえ"};
  for (size_t i = 0; i < 4; i++) {
    if (strcmp(s, yes[i]) == 0)
      return 1;
    if (strcmp(s, no[i]) == 0)
      return 0;
  }
  return -1;
}

bool mg__get_bool(const struct mg__table *t, size_t row, int k, bool def) {
  const char *s = mg__cell(t, row, k);
  if (!s[0])
    return def;
  int v = mg__parse_bool(s);
  if (v < 0) {
    mg__cell_prob(t, row, k, "\"%.40s\" is not yes/no", s);
    return def;
  }
  return v;
}

int mg__parse_long(const char *s, long min, long max, long *out) {
  char *end = NULL;
  if (!isdigit((unsigned char)s[0]) && !(s[0] == '-' && isdigit((unsigned char)s[1])))
    return -1;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < min || v > max)
    return -1;
  *out = v;
  return 0;
}

long mg__get_long(const struct mg__table *t, size_t row, int k, long def,
                  long min, long max) {
  const char *s = mg__cell(t, row, k);
  long v;
  if (!s[0]) {
    if (t->cols[k].required && t->idx[k] >= 0)
      mg__cell_prob(t, row, k, "required, but empty");
    return def;
  }
  if (mg__parse_long(s, min, max, &v) != 0) {
    mg__cell_prob(t, row, k, "\"%.40s\" is not a whole number from %ld to %ld",
                  s, min, max);
    return def;
  }
  return v;
}

int mg__parse_mm(const char *s, double *out) {
  /* plain decimals only: no exponents, signs, hex or locale commas */
  size_t i = 0, dots = 0, digits = 0;
  for (; s[i]; i++) {
    if (s[i] == '.')
      dots++;
    else if (isdigit((unsigned char)s[i]))
      digits++;
    else
      return -1;
  }
  if (!digits || dots > 1 || i > 12)
    return -1;
  *out = strtod(s, NULL);
  return 0;
}

double mg__get_num(const struct mg__table *t, size_t row, int k, double def) {
  const char *s = mg__cell(t, row, k);
  double v;
  if (!s[0]) {
    if (t->cols[k].required && t->idx[k] >= 0)
      mg__cell_prob(t, row, k, "required, but empty");
    return def;
  }
  if (mg__parse_mm(s, &v) != 0) {
    mg__cell_prob(t, row, k, "\"%.40s\" is not a number (like 12.5)", s);
    return def;
  }
  return v;
}

int mg__get_enum(const struct mg__table *t, size_t row, int k,
                 const char *const *names, int def) {
  const char *s = mg__cell(t, row, k);
  struct mg_buf b;
  if (!s[0]) {
    if (t->cols[k].required && t->idx[k] >= 0)
      mg__cell_prob(t, row, k, "required, but empty");
    return def;
  }
  for (int i = 0; names[i]; i++)
    if (strcmp(s, names[i]) == 0)
      return i;
  mg_buf_init(&b);
  for (int i = 0; names[i]; i++)
    mg_buf_printf(&b, "%s%s", i ? ", " : "", names[i]);
  mg__cell_prob(t, row, k, "\"%.40s\" is not one of %s", s,
                b.data ? b.data : "");
  mg_buf_free(&b);
  return def;
}

void mg__split_list(struct mg__ld *c, const char *s, struct mg_pack_list *l) {
  size_t n = 1;
  memset(l, 0, sizeof(*l));
  if (!s[0])
    return;
  for (const char *p = s; *p; p++)
    n += *p == ';';
  char **v = mg__pack_alloc(c, n * sizeof(*v));
  if (!v)
    return;
  const char *p = s;
  for (size_t i = 0; i < n; i++) {
    const char *e = strchr(p, ';');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    while (len && isspace((unsigned char)*p)) {
      p++;
      len--;
    }
    while (len && isspace((unsigned char)p[len - 1]))
      len--;
    char *d = mg__pack_alloc(c, len + 1);
    if (!d)
      return;
    memcpy(d, p, len);
    if (len)
      v[l->n++] = d;
    p = e ? e + 1 : p + len;
  }
  l->v = v;
}

bool mg_pack_list_has(const struct mg_pack_list *l, const char *id) {
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->v[i], "*") == 0 || strcmp(l->v[i], id) == 0)
      return true;
  return false;
}

/* Each item of `l` (cell k) must be `*` alone or an id found by `exists`. */
void mg__check_refs(const struct mg__table *t, size_t row, int k,
                    const struct mg_pack_list *l, const char *what,
                    bool (*exists)(const struct mg_pack *, const char *),
                    const char *where) {
  for (size_t i = 0; i < l->n; i++) {
    if (strcmp(l->v[i], "*") == 0) {
      if (l->n > 1)
        mg__cell_prob(t, row, k, "\"*\" must stand alone");
      continue;
    }
    if (!exists(t->c->p, l->v[i]))
      mg__cell_prob(t, row, k, "%s \"%s\" does not exist (%s)", what, l->v[i],
                    where);
  }
}

/* Report each id seen twice, at the later line.  `ids`/`lines` parallel. */
struct idl {
  const char *id;
  int line;
  size_t order;
};

static int idl_cmp(const void *a, const void *b) {
  const struct idl *x = a, *y = b;
  int r = strcmp(x->id, y->id);
  return r ? r : (x->order < y->order ? -1 : x->order > y->order);
}

void mg__check_unique(struct mg__ld *c, const char *file, const char *what,
                      const void *base, size_t n, size_t size, size_t id_off,
                      size_t line_off) {
  struct idl *v;
  if (n < 2)
    return;
  if (!(v = malloc(n * sizeof(*v)))) {
    c->oom = 1;
    return;
  }
  for (size_t i = 0; i < n; i++) {
    const char *rec = (const char *)base + i * size;
    v[i].id = *(char *const *)(rec + id_off);
    v[i].line = *(const int *)(rec + line_off);
    v[i].order = i;
  }
  qsort(v, n, sizeof(*v), idl_cmp);
  for (size_t i = 1; i < n; i++)
    if (v[i].id[0] && strcmp(v[i].id, v[i - 1].id) == 0)
      mg__pack_prob(c, file, v[i].line, 0,
                    "duplicate %s \"%s\" (first on line %d)", what, v[i].id,
                    v[i - 1].line);
  free(v);
}

/* ---------------------------------------------------------------------- */
/* pack.ini                                                                */

bool mg_pack_city_code_valid(const char *code) {
  int sum = 0;
  static const int w[5] = {6, 5, 4, 3, 2};
  if (strlen(code) != 6)
    return false;
  for (int i = 0; i < 6; i++)
    if (!isdigit((unsigned char)code[i]))
      return false;
  for (int i = 0; i < 5; i++)
    sum += (code[i] - '0') * w[i];
  return (11 - sum % 11) % 10 == code[5] - '0';
}

/* Returns -1 when the rest of the pack must not be read (newer format). */
static int load_manifest(struct mg__ld *c) {
  static const char *const keys[] = {"format", "id", "city_code", "name",
                                     NULL};
  struct mg__kv kv[4];
  const char *f = "pack.ini";
  if (mg__pack_ini(c, f, "pack", keys, kv, 4) != 0)
    return 0;
  for (int k = 0; k < 4; k++)
    if (!kv[k].value || !kv[k].value[0])
      mg__pack_prob(c, f, 0, 0, "missing key \"%s\" in [pack]", keys[k]);
  if (kv[0].value && kv[0].value[0]) {
    long v;
    if (mg__parse_long(kv[0].value, 1, 1000000, &v) != 0)
      mg__pack_prob(c, f, kv[0].line, 0,
                    "format: \"%s\" is not a format number", kv[0].value);
    else if (v > MG_PACK_FORMAT) {
      mg__pack_prob(c, f, kv[0].line, 0,
                    "pack format %ld is newer than this madoguchid "
                    "understands (%d)",
                    v, MG_PACK_FORMAT);
      return -1;
    } else
      c->p->format = v;
  }
  if (kv[1].value && kv[1].value[0] && !mg__is_id(kv[1].value))
    mg__pack_prob(c, f, kv[1].line, 0,
                  "id: \"%s\" is not an id (1-64 of a-z 0-9 _ -)", kv[1].value);
  if (kv[2].value && kv[2].value[0] && !mg_pack_city_code_valid(kv[2].value))
    mg__pack_prob(c, f, kv[2].line, 0,
                  "city_code: \"%s\" is not a 全国地方公共団体コード (6 digits, "
                  "the last the check digit of the first five)",
                  kv[2].value);
  c->p->id = kv[1].value ? kv[1].value : "";
  c->p->city_code = kv[2].value ? kv[2].value : "";
  c->p->name = kv[3].value ? kv[3].value : "";
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Pack-wide tables                                                        */

bool mg__counter_exists(const struct mg_pack *p, const char *id) {
  for (size_t i = 0; i < p->n_counters; i++)
    if (strcmp(p->counters[i].id, id) == 0)
      return true;
  return false;
}

static const struct mg_pack_life_event *life_event(const struct mg_pack *p,
                                                   const char *id) {
  for (size_t i = 0; i < p->n_life_events; i++)
    if (strcmp(p->life_events[i].id, id) == 0)
      return &p->life_events[i];
  return NULL;
}

static bool life_event_exists(const struct mg_pack *p, const char *id) {
  return life_event(p, id) != NULL;
}

static bool form_exists(const struct mg_pack *p, const char *id) {
  return mg_pack_form(p, id) != NULL;
}

#define UNIQUE(c, file, what, arr, n, type)                                    \
  mg__check_unique(c, file, what, arr, n, sizeof(type), offsetof(type, id),    \
                   offsetof(type, line))

static void load_counters(struct mg__ld *c) {
  static const struct mg__col cols[] = {{"id", 1},         {"name", 1},
                                        {"floor", 1},      {"department", 1},
                                        {"note", 0},       {NULL, 0}};
  struct mg__table t;
  if (mg__pack_table(c, &t, "counters.csv", cols, 0) != 0)
    return;
  for (size_t r = 0; r < t.csv.n_rows; r++) {
    struct mg_pack_counter *x =
        mg__pack_push(c, &c->p->counters, &c->p->n_counters, sizeof(*x));
    if (!x)
      break;
    x->line = t.csv.rows[r].line;
    x->id = mg__get_id(&t, r, 0);
    x->name = mg__get_str(&t, r, 1);
    x->floor = mg__get_str(&t, r, 2);
    x->department = mg__get_str(&t, r, 3);
    x->note = mg__get_str(&t, r, 4);
  }
  UNIQUE(c, t.file, "counter", c->p->counters, c->p->n_counters,
         struct mg_pack_counter);
  mg__pack_table_free(&t);
}

static void load_life_events(struct mg__ld *c) {
  static const struct mg__col cols[] = {{"id", 1},          {"name", 1},
                                        {"order", 0},       {"counters", 0},
                                        {"description", 0}, {NULL, 0}};
  struct mg__table t;
  if (mg__pack_table(c, &t, "life_events.csv", cols, 0) != 0)
    return;
  for (size_t r = 0; r < t.csv.n_rows; r++) {
    struct mg_pack_life_event *x =
        mg__pack_push(c, &c->p->life_events, &c->p->n_life_events, sizeof(*x));
    if (!x)
      break;
    x->line = t.csv.rows[r].line;
    x->id = mg__get_id(&t, r, 0);
    x->name = mg__get_str(&t, r, 1);
    x->order = mg__get_long(&t, r, 2, (long)r + 1, 0, 1000000);
    const char *cs = mg__cell(&t, r, 3);
    mg__split_list(c, cs[0] ? cs : "*", &x->counters);
    mg__check_refs(&t, r, 3, &x->counters, "counter", mg__counter_exists,
                   "counters.csv");
    x->description = mg__get_str(&t, r, 4);
  }
  UNIQUE(c, t.file, "life event", c->p->life_events, c->p->n_life_events,
         struct mg_pack_life_event);
  mg__pack_table_free(&t);
}

/* Facts of a visit (docs/packs.md "Expressions"). */
static const struct {
  const char *name;
  enum mg_expr_type type;
} facts[] = {
    {"age", MG_EXPR_T_NUM},
    {"household_size", MG_EXPR_T_NUM},
    {"children_under_18", MG_EXPR_T_NUM},
    {"school_children", MG_EXPR_T_NUM},
    {"preschool_children", MG_EXPR_T_NUM},
    {"has_mynumber_card", MG_EXPR_T_BOOL},
    {"foreign_resident", MG_EXPR_T_BOOL},
};

static int fact_type(const char *name, enum mg_expr_type *type) {
  for (size_t i = 0; i < sizeof(facts) / sizeof(facts[0]); i++)
    if (strcmp(facts[i].name, name) == 0) {
      *type = facts[i].type;
      return 0;
    }
  return -1;
}

/* What a condition may name: the facts, and for a question (`q` set) the
 * questions of its life event asked before it; for a procedure the
 * questions of its life events. */
struct scope {
  const struct mg_pack *p;
  size_t nq;                           /* questions loaded so far */
  const struct mg_pack_question *q;    /* the question being checked */
  size_t qi;                           /* its index */
  const struct mg_pack_list *events;   /* the procedure's life events */
};

static int question_before(const struct mg_pack_question *a, size_t ai,
                           const struct mg_pack_question *b, size_t bi) {
  return a->order < b->order || (a->order == b->order && ai < bi);
}

static int resolve(void *ctx, const char *name, enum mg_expr_type *type,
                   char *why, size_t whylen) {
  const struct scope *s = ctx;
  if (fact_type(name, type) == 0)
    return 0;
  for (size_t i = 0; i < s->nq; i++) {
    const struct mg_pack_question *o = &s->p->questions[i];
    if (strcmp(o->id, name) != 0)
      continue;
    *type = MG_EXPR_T_BOOL;
    if (s->q) {
      if (i == s->qi) {
        snprintf(why, whylen, "\"%s\" is this question itself (question loop)",
                 name);
        return -1;
      }
      if (strcmp(o->life_event, s->q->life_event) != 0) {
        snprintf(why, whylen,
                 "\"%s\" belongs to life event \"%s\", not \"%s\" (question "
                 "loop)",
                 name, o->life_event, s->q->life_event);
        return -1;
      }
      if (!question_before(o, i, s->q, s->qi)) {
        snprintf(why, whylen, "\"%s\" is asked after this question (question "
                 "loop)", name);
        return -1;
      }
      return 0;
    }
    if (s->events && !mg_pack_list_has(s->events, o->life_event)) {
      snprintf(why, whylen,
               "question \"%s\" belongs to life event \"%s\", which this "
               "procedure is not proposed for",
               name, o->life_event);
      return -1;
    }
    return 0;
  }
  snprintf(why, whylen, "unknown name \"%s\" (not a question id or a fact)",
           name);
  return -1;
}

/* Parse and check the condition in cell k; NULL when empty or wrong. */
static struct mg_expr *condition(const struct mg__table *t, size_t r, int k,
                                 struct scope *s) {
  const char *src = mg__cell(t, r, k);
  struct mg_expr *x = NULL;
  struct mg_expr_error e = {0, ""};
  const char *p = src;
  while (*p == ' ' || *p == '\t')
    p++;
  if (!*p)
    return NULL;
  int rc = mg_expr_parse(src, &x, &e);
  if (rc == 0)
    rc = mg_expr_check(x, resolve, s, &e);
  if (rc == -ENOMEM)
    t->c->oom = 1;
  else if (rc) {
    const struct mg_csv_cell *cell = &t->csv.rows[r].cells[t->idx[k]];
    mg__pack_prob(t->c, t->file, cell->line, cell->col + e.pos - 1,
                  "%s: %s", t->cols[k].name, e.msg);
  }
  if (rc) {
    mg_expr_free(x);
    return NULL;
  }
  return x;
}

static void load_questions(struct mg__ld *c) {
  static const struct mg__col cols[] = {{"id", 1},        {"life_event", 1},
                                        {"order", 0},     {"text", 1},
                                        {"condition", 0}, {"help", 0},
                                        {NULL, 0}};
  struct mg__table t;
  struct mg_pack *p = c->p;
  if (mg__pack_table(c, &t, "questions.csv", cols, 0) != 0)
    return;
  /* all rows first: a condition may only name earlier ones, but a loop
   * must be told apart from an unknown name */
  for (size_t r = 0; r < t.csv.n_rows; r++) {
    struct mg_pack_question *x =
        mg__pack_push(c, &p->questions, &p->n_questions, sizeof(*x));
    if (!x)
      break;
    x->line = t.csv.rows[r].line;
    x->id = mg__get_id(&t, r, 0);
    x->life_event = mg__get_str(&t, r, 1);
    if (x->life_event[0] && !life_event_exists(p, x->life_event))
      mg__cell_prob(&t, r, 1, "life event \"%s\" does not exist "
                    "(life_events.csv)", x->life_event);
    x->order = mg__get_long(&t, r, 2, (long)r + 1, 0, 1000000);
    x->text = mg__get_str(&t, r, 3);
    x->help = mg__get_str(&t, r, 5);
  }
  for (size_t r = 0; r < p->n_questions && !c->oom; r++) {
    struct scope s = {p, p->n_questions, &p->questions[r], r, NULL};
    p->questions[r].condition = condition(&t, r, 4, &s);
  }
  UNIQUE(c, t.file, "question", p->questions, p->n_questions,
         struct mg_pack_question);
  mg__pack_table_free(&t);
}

/* Procedures' forms are checked after the forms are loaded. */
static void load_procedures(struct mg__ld *c, struct mg__table *t) {
  static const struct mg__col cols[] = {
      {"id", 1},        {"name", 1},    {"kind", 0},      {"life_events", 1},
      {"counter", 1},   {"condition", 0}, {"forms", 0},   {"documents", 0},
      {"notes", 0},     {"deadline", 0}, {NULL, 0}};
  static const char *const kinds[] = {"form", "info", NULL};
  struct mg_pack *p = c->p;
  if (mg__pack_table(c, t, "procedures.csv", cols, 0) != 0)
    return;
  for (size_t r = 0; r < t->csv.n_rows; r++) {
    struct mg_pack_procedure *x =
        mg__pack_push(c, &p->procedures, &p->n_procedures, sizeof(*x));
    if (!x)
      break;
    x->line = t->csv.rows[r].line;
    x->id = mg__get_id(t, r, 0);
    x->name = mg__get_str(t, r, 1);
    x->kind = (enum mg_pack_proc_kind)mg__get_enum(t, r, 2, kinds, 0);
    mg__split_list(c, mg__cell(t, r, 3), &x->life_events);
    mg__check_refs(t, r, 3, &x->life_events, "life event", life_event_exists,
                   "life_events.csv");
    x->counter = mg__get_str(t, r, 4);
    if (x->counter[0] && !mg__counter_exists(p, x->counter))
      mg__cell_prob(t, r, 4, "counter \"%s\" does not exist (counters.csv)",
                    x->counter);
    struct scope s = {p, p->n_questions, NULL, 0, &x->life_events};
    x->condition = condition(t, r, 5, &s);
    mg__split_list(c, mg__cell(t, r, 6), &x->forms);
    mg__split_list(c, mg__cell(t, r, 7), &x->documents);
    x->notes = mg__get_str(t, r, 8);
    x->deadline = mg__get_str(t, r, 9);
    if (x->kind == MG_PACK_PROC_FORM && x->forms.n == 0 && t->idx[6] >= 0)
      mg__cell_prob(t, r, 6, "a procedure of kind \"form\" needs forms");
    else if (x->kind == MG_PACK_PROC_FORM && t->idx[6] < 0)
      mg__pack_prob(c, t->file, x->line, 0,
                    "column \"forms\": a procedure of kind \"form\" needs "
                    "forms (add the column)");
    if (x->kind == MG_PACK_PROC_INFO && x->forms.n)
      mg__cell_prob(t, r, 6, "an \"info\" procedure fills no forms");
  }
  UNIQUE(c, t->file, "procedure", p->procedures, p->n_procedures,
         struct mg_pack_procedure);
}

static void check_procedure_forms(struct mg__ld *c, struct mg__table *t) {
  char where[600];
  for (size_t r = 0; r < c->p->n_procedures && r < t->csv.n_rows; r++) {
    const struct mg_pack_procedure *x = &c->p->procedures[r];
    for (size_t i = 0; i < x->forms.n; i++)
      if (!form_exists(c->p, x->forms.v[i])) {
        snprintf(where, sizeof(where), "forms/%.500s/form.ini", x->forms.v[i]);
        mg__cell_prob(t, r, 6, "form \"%s\" does not exist (%s)", x->forms.v[i],
                      where);
      }
  }
}

static void load_choices(struct mg__ld *c) {
  static const struct mg__col cols[] = {
      {"value", 1}, {"label", 1}, {"parent", 0}, {NULL, 0}};
  char **names = NULL;
  size_t n = mg__pack_list_dir(c, "choices", &names);
  for (size_t i = 0; i < n; i++) {
    char rel[600], id[300];
    size_t len = strlen(names[i]);
    snprintf(rel, sizeof(rel), "choices/%.500s", names[i]);
    if (len < 5 || strcmp(names[i] + len - 4, ".csv") != 0) {
      mg__pack_prob(c, rel, 0, 0, "only LIST.csv files belong in choices/");
      continue;
    }
    snprintf(id, sizeof(id), "%.*s", (int)(len - 4 > 200 ? 200 : len - 4),
             names[i]);
    if (!mg__is_id(id)) {
      mg__pack_prob(c, rel, 0, 0,
                    "list name \"%s\" is not an id (1-64 of a-z 0-9 _ -)", id);
      continue;
    }
    struct mg_pack_choice_list *l = mg__pack_push(
        c, &c->p->choice_lists, &c->p->n_choice_lists, sizeof(*l));
    struct mg__table t;
    if (!l)
      break;
    l->id = mg__pack_strdup(c, id);
    if (mg__pack_table(c, &t, rel, cols, 0) != 0)
      continue;
    for (size_t r = 0; r < t.csv.n_rows; r++) {
      struct mg_pack_choice *x = mg__pack_push(c, &l->v, &l->n, sizeof(*x));
      if (!x)
        break;
      x->line = t.csv.rows[r].line;
      x->value = mg__get_str(&t, r, 0);
      x->label = mg__get_str(&t, r, 1);
      x->parent = mg__get_str(&t, r, 2);
    }
    mg__check_unique(c, rel, "value", l->v, l->n, sizeof(*l->v),
                     offsetof(struct mg_pack_choice, value),
                     offsetof(struct mg_pack_choice, line));
    mg__pack_table_free(&t);
  }
  free(names);
}

static void load_districts(struct mg__ld *c) {
  static const struct mg__col cols[] = {
      {"postal_code", 1}, {"town", 0}, {"district", 1}, {NULL, 0}};
  struct mg__table t;
  if (mg__pack_table(c, &t, "districts.csv", cols, 1) != 0)
    return;
  for (size_t r = 0; r < t.csv.n_rows; r++) {
    struct mg_pack_district *x =
        mg__pack_push(c, &c->p->districts, &c->p->n_districts, sizeof(*x));
    if (!x)
      break;
    x->line = t.csv.rows[r].line;
    x->postal_code = mg__get_str(&t, r, 0);
    size_t i = 0;
    while (isdigit((unsigned char)x->postal_code[i]))
      i++;
    if (x->postal_code[0] && (i != 7 || x->postal_code[7]))
      mg__cell_prob(&t, r, 0, "\"%.20s\" is not 7 digits", x->postal_code);
    x->town = mg__get_str(&t, r, 1);
    x->district = mg__get_str(&t, r, 2);
    for (size_t j = 0; j < r; j++)
      if (strcmp(c->p->districts[j].postal_code, x->postal_code) == 0 &&
          strcmp(c->p->districts[j].town, x->town) == 0)
        mg__pack_prob(c, t.file, x->line, 0,
                      "postal code %s with town \"%s\" given twice (first on "
                      "line %d)",
                      x->postal_code, x->town, c->p->districts[j].line);
  }
  mg__pack_table_free(&t);
}

static void load_fonts(struct mg__ld *c) {
  static const struct mg__col cols[] = {
      {"file", 1}, {"family", 1}, {"role", 0}, {NULL, 0}};
  static const char *const roles[] = {"", "default", "gaiji", NULL};
  struct mg__table t;
  int defaults = 0;
  if (mg__pack_table(c, &t, "fonts.csv", cols, 1) != 0)
    return;
  for (size_t r = 0; r < t.csv.n_rows; r++) {
    struct mg_pack_font *x =
        mg__pack_push(c, &c->p->fonts, &c->p->n_fonts, sizeof(*x));
    if (!x)
      break;
    x->line = t.csv.rows[r].line;
    x->file = mg__get_str(&t, r, 0);
    x->family = mg__get_str(&t, r, 1);
    x->role = (enum mg_pack_font_role)mg__get_enum(&t, r, 2, roles, 0);
    defaults += x->role == MG_PACK_FONT_DEFAULT;
    if (!x->file[0])
      continue;
    char rel[600];
    snprintf(rel, sizeof(rel), "fonts/%.500s", x->file);
    size_t len = 0;
    char *data;
    if (strchr(x->file, '/') || x->file[0] == '.')
      mg__cell_prob(&t, r, 0, "\"%s\" must be a file name in fonts/", x->file);
    else if (!mg__pack_exists(c, rel, 0))
      mg__cell_prob(&t, r, 0, "%s does not exist", rel);
    else if ((data = mg__pack_read(c, rel, &len, 0)) != NULL) {
      if (len < 4 || (memcmp(data, "\0\1\0\0", 4) && memcmp(data, "OTTO", 4) &&
                      memcmp(data, "true", 4) && memcmp(data, "ttcf", 4)))
        mg__cell_prob(&t, r, 0, "%s is not a TrueType/OpenType font", rel);
      free(data);
    }
  }
  mg__check_unique(c, t.file, "font family", c->p->fonts, c->p->n_fonts,
                   sizeof(struct mg_pack_font),
                   offsetof(struct mg_pack_font, family),
                   offsetof(struct mg_pack_font, line));
  /* none: the box's IPAexGothic (fonts-ipaexfont-gothic) is the default */
  if (defaults > 1)
    mg__pack_prob(c, t.file, 0, 0,
                  "at most one font may have role \"default\" (found %d)",
                  defaults);
  mg__pack_table_free(&t);
}

/* ---------------------------------------------------------------------- */
/* Load, free, lookups                                                     */

void mg_pack_free(struct mg_pack *p) {
  if (!p)
    return;
  free(p->counters);
  free(p->life_events);
  for (size_t i = 0; i < p->n_questions; i++)
    mg_expr_free(p->questions[i].condition);
  free(p->questions);
  for (size_t i = 0; i < p->n_procedures; i++)
    mg_expr_free(p->procedures[i].condition);
  free(p->procedures);
  for (size_t i = 0; i < p->n_choice_lists; i++)
    free(p->choice_lists[i].v);
  free(p->choice_lists);
  free(p->districts);
  free(p->fonts);
  for (size_t i = 0; i < p->n_forms; i++)
    mg__pack_free_form(&p->forms[i]);
  free(p->forms);
  struct chunk *k = p->arena;
  while (k) {
    struct chunk *next = k->next;
    free(k);
    k = next;
  }
  free(p);
}

int mg_pack_load(const char *dir, struct mg_pack **out,
                 struct mg_pack_report *rep) {
  struct mg__ld c = {dir, NULL, rep, 0, NULL, 0};
  struct mg__table procs;
  size_t before = rep->n + rep->dropped;
  int rc = 0;
  memset(&procs, 0, sizeof(procs));
  *out = NULL;
  if (!(c.p = calloc(1, sizeof(*c.p))))
    return -ENOMEM;
  if (!mg__pack_exists(&c, ".", 1)) {
    mg_pack_report_add(rep, dir, 0, 0, "not a folder");
    rc = -EINVAL;
    goto out;
  }
  if (load_manifest(&c) != 0) {
    rc = -EINVAL; /* a newer format: its files may mean something else */
    goto out;
  }
  load_counters(&c);
  load_life_events(&c);
  load_questions(&c);
  load_procedures(&c, &procs);
  load_choices(&c);
  load_districts(&c);
  load_fonts(&c);
  mg__pack_load_forms(&c);
  if (procs.csv.header.n)
    check_procedure_forms(&c, &procs);
  if (c.oom)
    rc = -ENOMEM;
  else if (rep->n + rep->dropped != before)
    rc = -EINVAL;
out:
  mg__pack_table_free(&procs);
  free(c.carry);
  if (rc) {
    mg_pack_free(c.p);
    return rc;
  }
  *out = c.p;
  return 0;
}

int mg_pack_verify(const char *dir, struct mg_pack_report *rep) {
  struct mg_pack *p = NULL;
  int rc = mg_pack_load(dir, &p, rep);
  mg_pack_free(p);
  return rc;
}

const struct mg_pack_form *mg_pack_form(const struct mg_pack *p,
                                        const char *id) {
  for (size_t i = 0; i < p->n_forms; i++)
    if (strcmp(p->forms[i].id, id) == 0)
      return &p->forms[i];
  return NULL;
}

const struct mg_pack_choice_list *mg_pack_choices(const struct mg_pack *p,
                                                  const char *id) {
  for (size_t i = 0; i < p->n_choice_lists; i++)
    if (strcmp(p->choice_lists[i].id, id) == 0)
      return &p->choice_lists[i];
  return NULL;
}

const struct mg_pack_counter *mg_pack_counter(const struct mg_pack *p,
                                              const char *id) {
  for (size_t i = 0; i < p->n_counters; i++)
    if (strcmp(p->counters[i].id, id) == 0)
      return &p->counters[i];
  return NULL;
}

const struct mg_pack_life_event *mg_pack_life_event(const struct mg_pack *p,
                                                    const char *id) {
  for (size_t i = 0; i < p->n_life_events; i++)
    if (strcmp(p->life_events[i].id, id) == 0)
      return &p->life_events[i];
  return NULL;
}

const struct mg_pack_procedure *mg_pack_procedure(const struct mg_pack *p,
                                                  const char *id) {
  for (size_t i = 0; i < p->n_procedures; i++)
    if (strcmp(p->procedures[i].id, id) == 0)
      return &p->procedures[i];
  return NULL;
}

const char *mg_pack_district(const struct mg_pack *p, const char *postal_code,
                             const char *town) {
  const struct mg_pack_district *best = NULL;
  size_t best_len = 0;
  int any = !postal_code || !*postal_code;
  if (!p)
    return NULL;
  if (!town)
    town = "";
  for (size_t i = 0; i < p->n_districts; i++) {
    const struct mg_pack_district *x = &p->districts[i];
    size_t n = strlen(x->town);
    if (any && !n)
      continue; /* without a code only a named town identifies */
    if ((!any && strcmp(x->postal_code, postal_code) != 0) ||
        strncmp(x->town, town, n) != 0 || (best && n <= best_len))
      continue;
    best = x;
    best_len = n;
  }
  return best ? best->district : NULL;
}
