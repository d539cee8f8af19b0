/*
 * form.c — field rules (form.h).
 */
#include "form.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VALUE 4000

static const char SP3000[] = "\xE3\x80\x80"; /* U+3000 */

/* Length of a space at s (ASCII space/tab or U+3000), else 0. */
static size_t space_at(const char *s) {
  if (*s == ' ' || *s == '\t')
    return 1;
  if (strncmp(s, SP3000, 3) == 0)
    return 3;
  return 0;
}

/* Trim spaces of any width at both ends; when `words`, runs of spaces
 * inside become one U+3000 (names), else inner text stays as typed. */
static char *trim_copy(const char *s, bool words) {
  size_t n = strlen(s), k;
  char *out = malloc(n * 3 + 1), *o = out;
  if (!out)
    return NULL;
  while ((k = space_at(s)))
    s += k;
  while (*s) {
    if ((k = space_at(s))) {
      const char *t = s;
      while ((k = space_at(t)))
        t += k;
      if (!*t)
        break; /* trailing */
      if (words) {
        memcpy(o, SP3000, 3);
        o += 3;
      } else {
        memcpy(o, s, (size_t)(t - s));
        o += t - s;
      }
      s = t;
      continue;
    }
    *o++ = *s++;
  }
  *o = 0;
  return out;
}

static int bad(struct mg_err *err, const struct mg_pack_field *f,
               const char *fmt, const char *a1) {
  char rule[300];
  snprintf(rule, sizeof(rule), fmt, a1 ? a1 : "");
  return mg_err_set(err, -EINVAL, "「%s」: %s", f->label, rule);
}

/* Keep only the characters of `keep` (ASCII) after folding; 0 when some
 * other character is present. */
static bool only_chars(const char *s, const char *keep) {
  for (; *s; s++)
    if (!strchr(keep, *s))
      return false;
  return true;
}

static size_t count_digits(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    n += *s >= '0' && *s <= '9';
  return n;
}

static void strip(char *s, const char *drop) {
  char *o = s;
  for (; *s; s++)
    if (!strchr(drop, *s))
      *o++ = *s;
  *o = 0;
}

const char *mg_form_choice_label(const struct mg_pack *p,
                                 const struct mg_pack_field *f,
                                 const char *value) {
  const struct mg_pack_choice_list *l = mg_pack_choices(p, f->choices);
  for (size_t i = 0; l && i < l->n; i++)
    if (strcmp(l->v[i].value, value) == 0)
      return l->v[i].label;
  return NULL;
}

static int check_choice(const struct mg_pack *p, const struct mg_pack_field *f,
                        char **v, const char *parent_value,
                        struct mg_err *err) {
  const struct mg_pack_choice_list *l = mg_pack_choices(p, f->choices);
  const struct mg_pack_choice *hit = NULL;
  for (size_t i = 0; l && i < l->n && !hit; i++)
    if (strcmp(l->v[i].value, *v) == 0)
      hit = &l->v[i];
  for (size_t i = 0; l && i < l->n && !hit; i++)
    if (strcmp(l->v[i].label, *v) == 0) /* a label typed or pasted */
      hit = &l->v[i];
  if (!hit)
    return bad(err, f, "選択肢にない値です", NULL);
  if (strcmp(hit->value, *v) != 0) {
    char *c = strdup(hit->value);
    if (!c)
      return -ENOMEM;
    free(*v);
    *v = c;
  }
  /* F6: a child list's choice must belong to the parent's current value */
  if (f->parent[0] && parent_value && *parent_value && hit->parent[0] &&
      strcmp(hit->parent, parent_value) != 0)
    return bad(err, f, "上の項目で選んだ内容に属さない選択肢です", NULL);
  return 0;
}

static const char *const yes_words[] = {"yes", "true", "1", "on", "はい",
                                        "✓", NULL};
static const char *const no_words[] = {"no", "false", "0", "off", "いいえ",
                                       NULL};

static int word_in(const char *s, const char *const *words) {
  for (size_t i = 0; words[i]; i++)
    if (strcmp(s, words[i]) == 0)
      return 1;
  return 0;
}

/* F5: every rule of the field against the filing date. */
static int check_rules(const struct mg_pack_field *f, const struct mg_date *d,
                       const struct mg_date *filing, struct mg_err *err) {
  for (size_t i = 0; filing && i < f->n_rules; i++) {
    const struct mg_pack_rule *r = &f->rules[i];
    struct mg_date b = *filing;
    char when[64], wk[40];
    if (r->unit == 'd') {
      mg_date_add_days(&b, r->amount);
    } else {
      int months = r->unit == 'y' ? r->amount * 12 : r->amount;
      int m0 = b.y * 12 + (b.m - 1) + months;
      b.y = m0 / 12;
      b.m = m0 % 12 + 1;
      static const int mdays[] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
      int last = mdays[b.m - 1] +
                 (b.m == 2 && ((b.y % 4 == 0 && b.y % 100 != 0) ||
                               b.y % 400 == 0));
      if (b.d > last)
        b.d = last;
    }
    int c = mg_date_cmp(d, &b);
    if ((r->cmp < 0 && c <= 0) || (r->cmp > 0 && c >= 0))
      continue;
    if (mg_wareki_format(&b, MG_WAREKI_LONG, wk, sizeof(wk)) < 0)
      mg_date_format(&b, wk, sizeof(wk));
    if (r->amount == 0)
      snprintf(when, sizeof(when), "届出日（%s）", wk);
    else
      snprintf(when, sizeof(when), "%s", wk);
    return bad(err, f,
               r->cmp < 0 ? "%sより後の日付は入力できません"
                          : "%sより前の日付は入力できません",
               when);
  }
  return 0;
}

int mg_form_check(const struct mg_pack *p, const struct mg_pack_field *f,
                  const char *raw, const char *parent_value,
                  const struct mg_date *filing, char **norm,
                  struct mg_err *err) {
  char *v = NULL, tmp[MAX_VALUE * 3 + 1];
  long chars;
  int rc = 0;
  *norm = NULL;
  if (!raw)
    raw = "";
  if (strlen(raw) > MAX_VALUE || (chars = mg_utf8_chars(raw)) < 0)
    return mg_err_set(err, -E2BIG, "「%s」: %d バイト以内の文字で入力してくだ"
                      "さい", f->label, MAX_VALUE);
  bool words = f->type == MG_PACK_NAME || f->type == MG_PACK_NAME_SPLIT;
  if (!(v = trim_copy(raw, words)))
    return -ENOMEM;
  if (!*v)
    goto out; /* empty is the form's question (required) */

  switch (f->type) {
  case MG_PACK_TEXT:
  case MG_PACK_NAME:
  case MG_PACK_NAME_SPLIT:
  case MG_PACK_ADDRESS:
    for (const char *s = v; *s; s++)
      if ((unsigned char)*s < 0x20 && !(*s == '\n' && f->type == MG_PACK_TEXT)) {
        rc = bad(err, f, "制御文字は入力できません", NULL);
        goto out;
      }
    break;
  case MG_PACK_KANA: {
    int n = mg_kana_field(v, tmp, sizeof(tmp));
    if (n == -2) {
      rc = bad(err, f, "カタカナで入力してください", NULL);
      goto out;
    }
    if (n < 0) {
      rc = bad(err, f, "読めない文字が含まれています", NULL);
      goto out;
    }
    char *c = strdup(tmp);
    if (!c)
      goto oom;
    free(v);
    v = c;
    break;
  }
  case MG_PACK_NUMBER:
  case MG_PACK_POSTAL_CODE:
  case MG_PACK_MYNUMBER:
  case MG_PACK_RESIDENT_CODE:
  case MG_PACK_PHONE: {
    if (mg_fold_ascii(v, tmp, sizeof(tmp)) < 0) {
      rc = bad(err, f, "読めない文字が含まれています", NULL);
      goto out;
    }
    if (f->type != MG_PACK_PHONE)
      strip(tmp, f->type == MG_PACK_NUMBER ? "," : " -");
    char *c = strdup(tmp);
    if (!c)
      goto oom;
    free(v);
    v = c;
    if (f->type == MG_PACK_NUMBER && !only_chars(v, "0123456789")) {
      rc = bad(err, f, "半角または全角の数字で入力してください", NULL);
    } else if (f->type == MG_PACK_POSTAL_CODE &&
               (strlen(v) != 7 || !only_chars(v, "0123456789"))) {
      rc = bad(err, f, "郵便番号は7桁の数字です（例: 745-0004）", NULL);
    } else if (f->type == MG_PACK_MYNUMBER &&
               (strlen(v) != 12 || !only_chars(v, "0123456789"))) {
      rc = bad(err, f, "個人番号は12桁の数字です", NULL);
    } else if (f->type == MG_PACK_MYNUMBER && !mg_mynumber_ok(v)) {
      rc = bad(err, f, "個人番号の検査用数字が一致しません（入力誤りの可能性があり"
               "ます）", NULL);
    } else if (f->type == MG_PACK_RESIDENT_CODE &&
               (strlen(v) != 11 || !only_chars(v, "0123456789"))) {
      rc = bad(err, f, "住民票コードは11桁の数字です", NULL);
    } else if (f->type == MG_PACK_RESIDENT_CODE && !mg_resident_code_ok(v)) {
      rc = bad(err, f, "住民票コードの検査用数字が一致しません（入力誤りの可能性"
               "があります）", NULL);
    } else if (f->type == MG_PACK_PHONE &&
               (!only_chars(v, "0123456789-() ") || count_digits(v) < 10 ||
                count_digits(v) > 11)) {
      rc = bad(err, f, "電話番号は10桁または11桁の数字です（ハイフン可）", NULL);
    }
    if (rc)
      goto out;
    break;
  }
  case MG_PACK_DATE: {
    struct mg_date d;
    const char *why = NULL;
    if (mg_date_parse_any(v, &d, &why)) {
      rc = bad(err, f, "%s", why ? why : "日付として読めません");
      goto out;
    }
    if ((rc = check_rules(f, &d, filing, err)))
      goto out;
    mg_date_format(&d, tmp, sizeof(tmp));
    char *c = strdup(tmp);
    if (!c)
      goto oom;
    free(v);
    v = c;
    break;
  }
  case MG_PACK_SELECT:
  case MG_PACK_RADIO:
    if ((rc = check_choice(p, f, &v, parent_value, err)))
      goto out;
    break;
  case MG_PACK_CHECKBOX: {
    const char *w = word_in(v, yes_words) ? "yes"
                    : word_in(v, no_words) ? "no"
                                           : NULL;
    if (!w) {
      rc = bad(err, f, "チェックは yes か no です", NULL);
      goto out;
    }
    char *c = strdup(w);
    if (!c)
      goto oom;
    free(v);
    v = c;
    break;
  }
  }
  /* FG3: the printable length, in characters (both halves of a split
   * name count, the separator does not) */
  if (f->max_length > 0) {
    long n = mg_utf8_chars(v);
    if (f->type == MG_PACK_NAME_SPLIT && strstr(v, SP3000))
      n--;
    if (n > f->max_length) {
      char lim[32];
      snprintf(lim, sizeof(lim), "%ld", f->max_length);
      rc = bad(err, f, "%s文字以内で入力してください", lim);
      goto out;
    }
  }
out:
  if (rc == -ENOMEM)
    goto oom;
  if (rc && rc != -EINVAL) {
    free(v);
    return rc;
  }
  if (rc == -EINVAL) { /* keep what was typed, trimmed */
    free(v);
    if (!(v = trim_copy(raw, words)))
      return -ENOMEM;
  }
  *norm = v;
  return rc;
oom:
  free(v);
  return mg_err_set(err, -ENOMEM, "out of memory");
}

int mg_form_missing(const struct mg_pack_field *f, struct mg_err *err) {
  return mg_err_set(err, -EINVAL, "「%s」: 必ず入力してください", f->label);
}

void mg_form_name_half(const char *whole, int given, char *buf, size_t len) {
  const char *s = whole ? whole : "";
  const char *sp = NULL;
  size_t k = 0;
  for (const char *t = s; *t; t++)
    if ((k = space_at(t))) {
      sp = t;
      break;
    }
  if (!sp)
    snprintf(buf, len, "%s", given ? "" : s);
  else if (given)
    snprintf(buf, len, "%s", sp + k);
  else
    snprintf(buf, len, "%.*s", (int)(sp - s), s);
}

/* The town part of an address for districts.csv: after the city (the
 * first 市, then a ward 区 right after it), so "山口県周南市毛利町1-2"
 * gives "毛利町1-2".  An address without 市 is taken as the town itself. */
static const char *town_part(const char *addr) {
  const char *m = strstr(addr, "市");
  if (!m)
    return addr;
  m += strlen("市");
  const char *w = strstr(m, "区");
  if (w && w - m <= 12) /* 政令市の区: a few characters at most */
    m = w + strlen("区");
  return m;
}

void mg_form_compute(const struct mg_pack *p, const struct mg_pack_field *f,
                     const char *arg, const char *postal,
                     const struct mg_date *filing, char *buf, size_t len) {
  struct mg_date d;
  buf[0] = 0;
  if (!arg || !*arg)
    return;
  switch (f->compute) {
  case MG_PACK_COMPUTE_NONE:
    return;
  case MG_PACK_COMPUTE_AGE:
    if (filing && mg_date_parse(arg, &d) == 0) {
      int age = mg_age_legal(&d, filing);
      if (age >= 0)
        snprintf(buf, len, "%d", age);
    }
    return;
  case MG_PACK_COMPUTE_SCHOOL_GRADE:
    if (filing && mg_date_parse(arg, &d) == 0) {
      int g = mg_school_grade(&d, filing);
      if (g <= 0)
        snprintf(buf, len, "未就学");
      else if (g <= 12)
        snprintf(buf, len, "%s%d", g <= 6 ? "小" : g <= 9 ? "中" : "高",
                 g <= 6 ? g : g <= 9 ? g - 6 : g - 9);
    }
    return;
  case MG_PACK_COMPUTE_WAREKI:
    if (mg_date_parse(arg, &d) == 0 &&
        mg_wareki_format(&d, MG_WAREKI_LONG, buf, len) < 0)
      buf[0] = 0;
    return;
  case MG_PACK_COMPUTE_DISTRICT: {
    const char *dist = mg_pack_district(p, postal, town_part(arg));
    snprintf(buf, len, "%s", dist ? dist : "");
    return;
  }
  }
}
