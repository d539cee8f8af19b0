/*
 * pack.h — procedure packs (手続パック, docs/packs.md, format 1): the loader
 * that builds the in-memory model of a whole pack and the validator that
 * `madoctl pack verify DIR` and the box (before activating a pull) run.
 *
 * Loading checks everything docs/packs.md "What the validator checks"
 * lists and collects ALL problems (up to MG_PACK_MAX_PROBLEMS) in a report;
 * a pack with any problem is refused whole: no model is returned.
 *
 * All strings in the model are owned by it (UTF-8, NUL-terminated); empty
 * optional cells are "" (never NULL) unless said otherwise.
 */
#ifndef MG_PACK_H
#define MG_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "pack_expr.h"

#define MG_PACK_FORMAT 1           /* the newest format this code reads */
#define MG_PACK_MAX_PROBLEMS 1000  /* further problems are only counted */

/* ---- report ---------------------------------------------------------- */

struct mg_pack_problem {
  char *file; /* relative to the pack directory ("forms/x/layout.csv") */
  int line;   /* 1-based; 0 = the file as a whole */
  int col;    /* 1-based character column; 0 = none (the message names the
                 column/field instead) */
  char *msg;  /* the rule */
};

struct mg_pack_report {
  struct mg_pack_problem *v;
  size_t n;       /* kept, <= MG_PACK_MAX_PROBLEMS */
  size_t dropped; /* found beyond the cap */
};

void mg_pack_report_init(struct mg_pack_report *rep);
void mg_pack_report_free(struct mg_pack_report *rep);
/* One line per problem: `file:line[:col]: message`, then a count line
 * when some were dropped. */
void mg_pack_report_print(const struct mg_pack_report *rep, FILE *out);
/* Append a problem (used by the loader; exposed for madoctl's own checks). */
void mg_pack_report_add(struct mg_pack_report *rep, const char *file, int line,
                        int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ---- model ----------------------------------------------------------- */

/* A `;` list of a cell.  `*` alone is kept as the single item "*". */
struct mg_pack_list {
  char **v;
  size_t n;
};
/* True when the list is `*` (all) or contains `id`. */
bool mg_pack_list_has(const struct mg_pack_list *l, const char *id);

/* Every record has `line`: its line in its file, for messages. */
struct mg_pack_counter {
  char *id, *name, *floor, *department, *note;
  int line;
};

struct mg_pack_life_event {
  char *id, *name, *description;
  long order;                   /* the `order` cell, default the row number */
  struct mg_pack_list counters; /* default "*" */
  int line;
};

struct mg_pack_question {
  char *id, *life_event, *text, *help;
  long order;               /* the `order` cell, default the row number */
  struct mg_expr *condition; /* checked; NULL = always asked */
  int line;
};

enum mg_pack_proc_kind { MG_PACK_PROC_FORM = 0, MG_PACK_PROC_INFO };

struct mg_pack_procedure {
  char *id, *name, *counter, *notes, *deadline;
  enum mg_pack_proc_kind kind;
  struct mg_pack_list life_events, forms, documents;
  struct mg_expr *condition; /* NULL = always proposed */
  int line;
};

struct mg_pack_choice {
  char *value, *label, *parent;
  int line;
};

struct mg_pack_choice_list {
  char *id; /* file name without .csv */
  struct mg_pack_choice *v;
  size_t n;
};

struct mg_pack_district {
  char *postal_code, *town, *district;
  int line;
};

enum mg_pack_font_role { MG_PACK_FONT_PLAIN = 0, MG_PACK_FONT_DEFAULT,
                         MG_PACK_FONT_GAIJI };

struct mg_pack_font {
  char *file, *family;
  enum mg_pack_font_role role;
  int line;
};

enum mg_pack_field_type {
  MG_PACK_TEXT, MG_PACK_NUMBER, MG_PACK_DATE, MG_PACK_SELECT, MG_PACK_RADIO,
  MG_PACK_CHECKBOX, MG_PACK_NAME, MG_PACK_NAME_SPLIT, MG_PACK_KANA,
  MG_PACK_POSTAL_CODE, MG_PACK_ADDRESS, MG_PACK_MYNUMBER,
  MG_PACK_RESIDENT_CODE, MG_PACK_PHONE
};
const char *mg_pack_field_type_name(enum mg_pack_field_type t);

/* One date rule: the value OP filing-date + amount unit. */
struct mg_pack_rule {
  int cmp;    /* -1: <=, +1: >= */
  int amount; /* signed */
  char unit;  /* 'd', 'm', 'y' ('d' with amount 0 for plain `filing`) */
};

enum mg_pack_compute { MG_PACK_COMPUTE_NONE = 0, MG_PACK_COMPUTE_AGE,
                       MG_PACK_COMPUTE_SCHOOL_GRADE, MG_PACK_COMPUTE_DISTRICT,
                       MG_PACK_COMPUTE_WAREKI };

struct mg_pack_field {
  char *id, *label, *group, *carry, *choices, *parent, *def;
  enum mg_pack_field_type type;
  bool required, staff_only, csv_export;
  long max_length; /* 0 = no limit */
  struct mg_pack_rule *rules;
  size_t n_rules;
  enum mg_pack_compute compute;
  char *compute_arg; /* field id, "" without compute */
  int line;
};

enum mg_pack_align { MG_PACK_LEFT = 0, MG_PACK_CENTER, MG_PACK_RIGHT };

struct mg_pack_box {
  char *field; /* field id, "ID.family"/"ID.given", "@signature", "@mask" */
  long row;    /* 0 outside groups */
  long page;   /* 1-based */
  double x, y, width, height, font_size; /* mm, mm, mm, mm, pt */
  enum mg_pack_align align;
  bool wrap;
  long max_chars; /* 0 = no limit */
  char *font, *format;
  int line;
};

struct mg_pack_group {
  char *name;
  long rows;
};

struct mg_pack_form {
  char *id, *name, *template_file, *counter;
  long pages;
  double page_width, page_height; /* mm */
  struct mg_pack_list documents, counters;
  bool csv_export;
  bool overflow_copy; /* on_overflow = copy (default) or error */
  struct mg_pack_group *groups;
  size_t n_groups;
  struct mg_pack_field *fields;
  size_t n_fields;
  struct mg_pack_box *boxes;
  size_t n_boxes;
};

struct mg_pack {
  long format;
  char *id, *name, *city_code;
  struct mg_pack_counter *counters;
  size_t n_counters;
  struct mg_pack_life_event *life_events;
  size_t n_life_events;
  struct mg_pack_question *questions;
  size_t n_questions;
  struct mg_pack_procedure *procedures;
  size_t n_procedures;
  struct mg_pack_choice_list *choice_lists;
  size_t n_choice_lists;
  struct mg_pack_district *districts;
  size_t n_districts;
  struct mg_pack_font *fonts; /* empty: the system font is used */
  size_t n_fonts;
  struct mg_pack_form *forms; /* sorted by id */
  size_t n_forms;
  void *arena; /* private: every string and list of the model lives here */
};

/* ---- loading --------------------------------------------------------- */

/* Load and validate the pack in `dir`.  Problems are appended to `rep`
 * (initialised by the caller).  Returns 0 with *out owning the model
 * (mg_pack_free), or -EINVAL when the pack has problems (*out = NULL),
 * -ENOMEM. */
int mg_pack_load(const char *dir, struct mg_pack **out,
                 struct mg_pack_report *rep);
void mg_pack_free(struct mg_pack *pack);

/* mg_pack_load + mg_pack_free: 0 when the pack is valid. */
int mg_pack_verify(const char *dir, struct mg_pack_report *rep);

/* Lookups by id (NULL when absent). */
const struct mg_pack_form *mg_pack_form(const struct mg_pack *p,
                                        const char *id);
const struct mg_pack_choice_list *mg_pack_choices(const struct mg_pack *p,
                                                  const char *id);
const struct mg_pack_counter *mg_pack_counter(const struct mg_pack *p,
                                              const char *id);
const struct mg_pack_life_event *mg_pack_life_event(const struct mg_pack *p,
                                                    const char *id);
const struct mg_pack_procedure *mg_pack_procedure(const struct mg_pack *p,
                                                  const char *id);

/* F3: the district (行政区・地区) of an in-city address from districts.csv:
 * the rows with this postal code (7 digits) whose `town` is a prefix of
 * `town` (the town part of the address, after the city; a caller with a
 * whole address passes what follows the city name); the longest town
 * wins; a row with "" town matches any.  Without a postal code (NULL or
 * "") any code matches, but only rows naming a town.  NULL when none.
 * The caller decides that the address is in the pack's city. */
const char *mg_pack_district(const struct mg_pack *p, const char *postal_code,
                             const char *town);

/* 全国地方公共団体コード: 6 digits whose last is the check digit of the
 * first five (weights 6..2, (11 - sum % 11) % 10).  True when valid. */
bool mg_pack_city_code_valid(const char *code);

/* ---- internal: shared by pack.c and pack_forms.c only ---------------- */
#ifdef MG_PACK_INTERNAL
#include "csv.h"

struct mg__carry; /* carry-over keys seen so far (pack_forms.c) */

/* Loader state.  `oom` is sticky: the load fails with -ENOMEM at the end. */
struct mg__ld {
  const char *dir;
  struct mg_pack *p;
  struct mg_pack_report *rep;
  int oom;
  struct mg__carry *carry;
  size_t n_carry;
};

struct mg__col {
  const char *name;
  bool required;
};

/* An open CSV table: `idx[k]` is the CSV column of cols[k], or -1. */
struct mg__table {
  struct mg__ld *c;
  char file[512];
  const struct mg__col *cols; /* NULL-name terminated, at most 63 */
  int idx[64];
  struct mg_csv csv;
};

struct mg__kv {
  char *value; /* NULL when absent */
  int line;
};

void mg__pack_prob(struct mg__ld *c, const char *file, int line, int col,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void *mg__pack_alloc(struct mg__ld *c, size_t n);     /* arena, zeroed */
char *mg__pack_strdup(struct mg__ld *c, const char *s); /* arena; "" on OOM */
/* Append a zeroed element to a malloc'd array; NULL on OOM. */
void *mg__pack_push(struct mg__ld *c, void *arrp, size_t *n, size_t size);
/* Whole file (malloc'd, NUL-terminated) or NULL, reporting why. */
char *mg__pack_read(struct mg__ld *c, const char *rel, size_t *len,
                    int optional);
int mg__pack_exists(struct mg__ld *c, const char *rel, int want_dir);
/* Sorted names in a folder, hidden ones skipped (arena strings, malloc'd
 * array). */
size_t mg__pack_list_dir(struct mg__ld *c, const char *rel, char ***names);
/* Read `rel`'s single [section]; kv[k] gets keys[k]'s value. */
int mg__pack_ini(struct mg__ld *c, const char *rel, const char *section,
                 const char *const *keys, struct mg__kv *kv, size_t nkv);
/* Open a CSV table, reporting dialect and column problems; -1 if unusable
 * (then nothing to free). */
int mg__pack_table(struct mg__ld *c, struct mg__table *t, const char *file,
                   const struct mg__col *cols, int optional);
void mg__pack_table_free(struct mg__table *t);
const char *mg__cell(const struct mg__table *t, size_t row, int k);
int mg__cell_line(const struct mg__table *t, size_t row, int k);
void mg__cell_prob(const struct mg__table *t, size_t row, int k,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
bool mg__is_id(const char *s);
char *mg__get_str(const struct mg__table *t, size_t row, int k);
char *mg__get_id(const struct mg__table *t, size_t row, int k);
bool mg__get_bool(const struct mg__table *t, size_t row, int k, bool def);
long mg__get_long(const struct mg__table *t, size_t row, int k, long def,
                  long min, long max);
double mg__get_num(const struct mg__table *t, size_t row, int k, double def);
int mg__get_enum(const struct mg__table *t, size_t row, int k,
                 const char *const *names, int def);
int mg__parse_bool(const char *s);
int mg__parse_long(const char *s, long min, long max, long *out);
int mg__parse_mm(const char *s, double *out);
void mg__split_list(struct mg__ld *c, const char *s, struct mg_pack_list *l);
void mg__check_refs(const struct mg__table *t, size_t row, int k,
                    const struct mg_pack_list *l, const char *what,
                    bool (*exists)(const struct mg_pack *, const char *),
                    const char *where);
void mg__check_unique(struct mg__ld *c, const char *file, const char *what,
                      const void *base, size_t n, size_t size, size_t id_off,
                      size_t line_off);
bool mg__counter_exists(const struct mg_pack *p, const char *id);
/* pack_forms.c: every forms/<id>/ folder, after choices and fonts. */
void mg__pack_load_forms(struct mg__ld *c);
void mg__pack_free_form(struct mg_pack_form *f);
#endif

#endif
