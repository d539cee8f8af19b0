/*
 * test_pack.c — the pack loader and validator: the fixture pack
 * tests/fixtures/packs/mini loads with no problem and the model holds what
 * its files say; then each corruption (one change to a fresh copy) is
 * refused with the file, the line and the rule.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, mkdtemp, open_memstream, nftw */
#endif
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "pack.h"

#define FIXTURE MG_TEST_SOURCE_DIR "/tests/fixtures/packs/mini"

/* ---- helpers ---------------------------------------------------------- */

static void copy_tree(const char *from, const char *to) {
  DIR *d = opendir(from);
  struct dirent *de;
  assert_non_null(d);
  assert_int_equal(mkdir(to, 0700) == 0 || errno == EEXIST, 1);
  while ((de = readdir(d)) != NULL) {
    char a[4096], b[4096];
    struct stat st;
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    snprintf(a, sizeof(a), "%s/%s", from, de->d_name);
    snprintf(b, sizeof(b), "%s/%s", to, de->d_name);
    assert_int_equal(stat(a, &st), 0);
    if (S_ISDIR(st.st_mode)) {
      copy_tree(a, b);
      continue;
    }
    FILE *in = fopen(a, "rb"), *out = fopen(b, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
      assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
  }
  closedir(d);
}

static int rm_one(const char *p, const struct stat *st, int flag,
                  struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(p);
}

static char *fresh_copy(void) {
  char tmpl[] = "/tmp/mg_pack_XXXXXX";
  char *dir = mkdtemp(tmpl);
  assert_non_null(dir);
  copy_tree(FIXTURE, dir);
  return strdup(dir);
}

static void drop(char *dir) {
  nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(dir);
}

static char *slurp(const char *dir, const char *rel, size_t *len) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/%s", dir, rel);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  char *buf = malloc(1 << 20);
  assert_non_null(buf);
  *len = fread(buf, 1, (1 << 20) - 1, f);
  buf[*len] = '\0';
  fclose(f);
  return buf;
}

static void put(const char *dir, const char *rel, const char *data,
                size_t len) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/%s", dir, rel);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  fclose(f);
}

/* Replace the first `from` in a file by `to` (which must be there). */
static void edit(const char *dir, const char *rel, const char *from,
                 const char *to) {
  size_t len;
  char *s = slurp(dir, rel, &len);
  char *at = memmem(s, len, from, strlen(from));
  if (!at)
    fail_msg("%s: \"%s\" not found", rel, from);
  size_t pre = (size_t)(at - s), fl = strlen(from), tl = strlen(to);
  char *out = malloc(len - fl + tl + 1);
  assert_non_null(out);
  memcpy(out, s, pre);
  memcpy(out + pre, to, tl);
  memcpy(out + pre + tl, at + fl, len - pre - fl);
  put(dir, rel, out, len - fl + tl);
  free(out);
  free(s);
}

static void append(const char *dir, const char *rel, const char *text) {
  size_t len;
  char *s = slurp(dir, rel, &len);
  s = realloc(s, len + strlen(text) + 1);
  memcpy(s + len, text, strlen(text) + 1);
  put(dir, rel, s, len + strlen(text));
  free(s);
}

/* The pack in dir must be refused with a problem at file:line[:col]
 * (col < 0: any) whose message contains want. */
static void expect(char *dir, const char *file, int line, int col,
                   const char *want) {
  struct mg_pack_report rep;
  struct mg_pack *p = (struct mg_pack *)&rep; /* must be reset to NULL */
  mg_pack_report_init(&rep);
  int rc = mg_pack_load(dir, &p, &rep);
  assert_int_equal(rc, -EINVAL);
  assert_null(p);
  for (size_t i = 0; i < rep.n; i++)
    if (strcmp(rep.v[i].file, file) == 0 && rep.v[i].line == line &&
        (col < 0 || rep.v[i].col == col) && strstr(rep.v[i].msg, want)) {
      mg_pack_report_free(&rep);
      drop(dir);
      return;
    }
  mg_pack_report_print(&rep, stderr);
  mg_pack_report_free(&rep);
  drop(dir);
  fail_msg("no problem %s:%d:%d containing \"%s\"", file, line, col, want);
}

/* ---- the good pack ------------------------------------------------------ */

static void test_fixture_loads(void **state) {
  (void)state;
  struct mg_pack_report rep;
  struct mg_pack *p = NULL;
  mg_pack_report_init(&rep);
  int rc = mg_pack_load(FIXTURE, &p, &rep);
  if (rc)
    mg_pack_report_print(&rep, stderr);
  assert_int_equal(rc, 0);
  assert_int_equal(rep.n, 0);
  assert_non_null(p);
  assert_string_equal(p->id, "mini");
  assert_string_equal(p->city_code, "352152");
  assert_int_equal(p->format, 1);
  assert_int_equal(p->n_counters, 2);
  assert_string_equal(p->counters[1].note, "番号札をお取りください");
  assert_int_equal(p->n_life_events, 2);
  assert_true(mg_pack_list_has(&p->life_events[0].counters, "hoken-1"));
  assert_int_equal(p->life_events[1].counters.n, 2);
  assert_int_equal(p->n_questions, 4);
  assert_null(p->questions[0].condition);
  assert_non_null(p->questions[1].condition);
  assert_string_equal(p->questions[0].help,
                      "会社の保険証をお持ちの方は\n「はい」を選んでください");
  assert_int_equal(p->questions[1].line, 4); /* the help spans 2 lines */
  assert_int_equal(p->n_procedures, 4);
  assert_int_equal(p->procedures[1].kind, MG_PACK_PROC_FORM);
  assert_int_equal(p->procedures[3].kind, MG_PACK_PROC_INFO);
  assert_string_equal(p->procedures[1].notes, "2階ではなく\n1階です");
  assert_int_equal(p->procedures[0].documents.n, 2);
  assert_int_equal(p->n_choice_lists, 3);
  const struct mg_pack_choice_list *city = mg_pack_choices(p, "city");
  assert_non_null(city);
  assert_int_equal(city->n, 3);
  assert_string_equal(city->v[2].parent, "34");
  assert_int_equal(p->n_districts, 2);
  assert_int_equal(p->n_fonts, 2);
  assert_int_equal(p->fonts[0].role, MG_PACK_FONT_DEFAULT);
  assert_int_equal(p->n_forms, 2);
  const struct mg_pack_form *k = mg_pack_form(p, "kokuho");
  assert_non_null(k);
  assert_int_equal(k->pages, 2);
  assert_true(k->page_width == 182 && k->page_height == 257);
  assert_false(k->overflow_copy);
  assert_string_equal(k->template_file, "template.pdf");
  const struct mg_pack_form *t = mg_pack_form(p, "tennyu");
  assert_non_null(t);
  assert_int_equal(t->n_groups, 1);
  assert_int_equal(t->groups[0].rows, 2);
  assert_int_equal(t->n_fields, 12);
  assert_int_equal(t->fields[1].n_rules, 2);
  assert_int_equal(t->fields[1].rules[1].cmp, 1);
  assert_int_equal(t->fields[1].rules[1].amount, -14);
  assert_int_equal(t->fields[4].compute, MG_PACK_COMPUTE_DISTRICT);
  assert_string_equal(t->fields[4].compute_arg, "address");
  assert_true(t->fields[11].staff_only);
  assert_false(t->fields[11].csv_export);
  assert_int_equal(t->n_boxes, 15);
  assert_int_equal(t->boxes[4].align, MG_PACK_LEFT);
  assert_true(t->boxes[4].wrap);
  assert_true(t->boxes[2].font_size == 14);
  assert_true(t->boxes[0].font_size == 10.5);
  assert_int_equal(t->boxes[8].row, 2);
  mg_pack_free(p);
  mg_pack_report_free(&rep);
  assert_int_equal(mg_pack_verify(FIXTURE, &rep), 0);
  mg_pack_report_free(&rep);
}

static void test_city_code(void **state) {
  (void)state;
  assert_true(mg_pack_city_code_valid("352152"));  /* 周南市 */
  assert_true(mg_pack_city_code_valid("131016"));  /* 千代田区 */
  assert_true(mg_pack_city_code_valid("011002"));  /* 札幌市 */
  assert_false(mg_pack_city_code_valid("352153"));
  assert_false(mg_pack_city_code_valid("35215"));
  assert_false(mg_pack_city_code_valid("35215a"));
}

static void test_report_print(void **state) {
  (void)state;
  struct mg_pack_report rep;
  char *text = NULL;
  size_t len = 0;
  mg_pack_report_init(&rep);
  mg_pack_report_add(&rep, "a.csv", 3, 7, "bad %d", 1);
  mg_pack_report_add(&rep, "b.csv", 4, 0, "worse");
  mg_pack_report_add(&rep, "c", 0, 0, "missing file");
  FILE *f = open_memstream(&text, &len);
  mg_pack_report_print(&rep, f);
  fclose(f);
  assert_string_equal(text, "a.csv:3:7: bad 1\nb.csv:4: worse\nc: missing "
                            "file\n");
  free(text);
  mg_pack_report_free(&rep);
}

/* ---- corruptions ---------------------------------------------------------- */

static void test_shift_jis(void **state) {
  (void)state;
  char *d = fresh_copy();
  /* 市民課 in Shift_JIS: 8E 73 96 AF 89 DB */
  edit(d, "counters.csv", "市民課 1番窓口", "\x8E\x73\x96\xAF\x89\xDB");
  expect(d, "counters.csv", 2, 10, "invalid UTF-8 byte 0x8E (is the file "
                                   "Shift_JIS? save it as CSV UTF-8)");
}

static void test_nul_byte(void **state) {
  (void)state;
  char *d = fresh_copy();
  size_t len;
  char *s = slurp(d, "districts.csv", &len);
  char *at = memmem(s, len, "\n7450001", 8);
  assert_non_null(at);
  at[3] = '\0'; /* 74\0 0001 */
  put(d, "districts.csv", s, len);
  free(s);
  expect(d, "districts.csv", 3, 3, "NUL byte");
}

static void test_unterminated_quote(void **state) {
  (void)state;
  char *d = fresh_copy();
  append(d, "life_events.csv", "sample,\"見本,3,*,\n");
  expect(d, "life_events.csv", 4, 8, "unterminated quoted field");
}

static void test_extra_cell(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "counters.csv", "市民課,\n", "市民課,,extra\n");
  expect(d, "counters.csv", 2, -1, "row has 6 cells, the header has 5");
}

static void test_unknown_column(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "questions.csv", ",help\n", ",hlep\n");
  expect(d, "questions.csv", 1, 36, "unknown column \"hlep\"");
}

static void test_missing_column(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "counters.csv", ",department,", ",dept,");
  expect(d, "counters.csv", 1, -1, "missing required column \"department\"");
}

static void test_duplicate_id(void **state) {
  (void)state;
  char *d = fresh_copy();
  append(d, "counters.csv", "shimin-1,二重,2F,市民課,\n");
  expect(d, "counters.csv", 4, 0, "duplicate counter \"shimin-1\" (first on "
                                  "line 2)");
}

static void test_bad_id(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "life_events.csv", "shibou,", "Shibou,");
  expect(d, "life_events.csv", 3, 0, "\"Shibou\" is not an id");
}

static void test_missing_form(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "procedures.csv", ",,tennyu,", ",,tennyu_x,");
  expect(d, "procedures.csv", 2, 0, "column \"forms\": form \"tennyu_x\" does "
                                    "not exist (forms/tennyu_x/form.ini)");
}

static void test_missing_counter(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "procedures.csv", "tennyu,hoken-1,", "tennyu,hoken-9,");
  expect(d, "procedures.csv", 3, 0, "counter \"hoken-9\" does not exist");
}

static void test_question_loop(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "questions.csv", "not kokuho_other", "not school");
  /* "kokuho_family,tennyu,2,ご家族も一緒に転入しますか," is 37 characters,
   * and "school" is the 5th of the condition */
  expect(d, "questions.csv", 4, 42, "condition: \"school\" is asked after "
                                    "this question (question loop)");
}

static void test_question_other_event(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "questions.csv", "age >= 0", "kokuho_other");
  expect(d, "questions.csv", 6, -1, "belongs to life event \"tennyu\"");
}

static void test_unknown_name(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "procedures.csv", "age < 75", "agee < 75");
  expect(d, "procedures.csv", 3, -1, "unknown name \"agee\"");
}

static void test_type_error(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "procedures.csv", "age < 75", "age = yes");
  /* the condition starts at column 40; its "=" is its 26th character */
  expect(d, "procedures.csv", 3, 65, "compares a number with yes/no");
}

static void test_syntax_error(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "questions.csv", "(kokuho_family = yes or household_size >= 2)",
       "(kokuho_family = yes or household_size >= 2");
  expect(d, "questions.csv", 5, -1, "expected \")\"");
}

static void test_carry_two_types(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "forms/kokuho/fields.csv", "address,yes,address,", "address,yes,"
                                                              "moved_on,");
  expect(d, "forms/kokuho/fields.csv", 4, 0,
         "carry key \"moved_on\" is a date here but a address in "
         "forms/kokuho/fields.csv:3");
}

static void test_box_outside_page(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "forms/tennyu/layout.csv", "address,,1,20,55,", "address,,1,50,55,");
  expect(d, "forms/tennyu/layout.csv", 6, 0,
         "field \"address\": box x=50 width=170 ends at 220 mm, outside the "
         "page (210 mm wide)");
}

static void test_page_beyond(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "forms/tennyu/layout.csv", "@mask,,1,", "@mask,,2,");
  expect(d, "forms/tennyu/layout.csv", 16, 0,
         "page 2 is beyond the form's 1 page");
}

static void test_missing_template(void **state) {
  (void)state;
  char *d = fresh_copy();
  char path[4096];
  snprintf(path, sizeof(path), "%s/forms/kokuho/template.pdf", d);
  assert_int_equal(unlink(path), 0);
  expect(d, "forms/kokuho/form.ini", 0, 0,
         "template: forms/kokuho/template.pdf does not exist");
}

static void test_template_not_pdf(void **state) {
  (void)state;
  char *d = fresh_copy();
  put(d, "forms/tennyu/template.pdf", "PK\3\4", 4);
  expect(d, "forms/tennyu/form.ini", 3, 0, "is not a PDF");
}

static void test_newer_format(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "pack.ini", "format = 1", "format = 2");
  expect(d, "pack.ini", 3, 0,
         "pack format 2 is newer than this madoguchid understands (1)");
}

/* The template's own page size and count must match form.ini. */
static void test_template_page_size(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "forms/kokuho/form.ini", "page_size = 182x257", "page_size = A4");
  expect(d, "forms/kokuho/form.ini", 4, 0, "has 182x257 mm pages but the form says 210x297 mm");
}

static void test_template_page_count(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "forms/kokuho/form.ini", "pages = 2", "pages = 3");
  expect(d, "forms/kokuho/form.ini", 3, 0, "has 2 page(s) but the form says 3");
}

static void test_select_without_choices(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "forms/tennyu/fields.csv", ",,,,,pref,,,,35,,", ",,,,,,,,,35,,");
  expect(d, "forms/tennyu/fields.csv", 7, 0,
         "a select field needs a choice list");
}

static void test_missing_choice_list(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "forms/kokuho/fields.csv", ",relation,,self,", ",relations,,self,");
  expect(d, "forms/kokuho/fields.csv", 7, 0,
         "choice list \"relations\" does not exist");
}

static void test_bad_parent_value(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "choices/city.csv", "広島市,34", "広島市,99");
  expect(d, "forms/tennyu/fields.csv", 8, 0,
         "choices/city.csv:4: parent \"99\" is not a value of "
         "choices/pref.csv");
}

static void test_bad_date_rule(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "forms/kokuho/fields.csv", "<= filing + 1m", "<= filing + 1w");
  expect(d, "forms/kokuho/fields.csv", 4, 0,
         "\"<= filing + 1w\" is not a date rule");
}

static void test_bad_city_code(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "pack.ini", "352152", "352153");
  expect(d, "pack.ini", 5, 0, "city_code: \"352153\"");
}

static void test_field_without_layout(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "forms/tennyu/layout.csv", "old_city,,1,65,70,60,8,,,,,,\n", "");
  expect(d, "forms/tennyu/fields.csv", 8, 0,
         "field \"old_city\" has no box in layout.csv");
}

static void test_split_name_part_missing(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "forms/kokuho/layout.csv", "head_name.given,1,55,20,40,10,\n", "");
  expect(d, "forms/kokuho/fields.csv", 2, 0,
         "field \"head_name.given\" has no box");
}

static void test_group_row_out_of_range(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "forms/tennyu/layout.csv", "member_name,2,", "member_name,3,");
  expect(d, "forms/tennyu/layout.csv", 10, 0,
         "\"3\" is not a row of group \"household\" (1-2");
}

static void test_group_row_missing(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "forms/tennyu/layout.csv", "member_relation,2,", "member_relation,,");
  expect(d, "forms/tennyu/layout.csv", 14, 0, "say which row (1-2)");
}

static void test_unknown_group(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "forms/tennyu/form.ini", "rows = household:2", "rows = family:2");
  expect(d, "forms/tennyu/fields.csv", 9, 0,
         "group \"household\" is not in form.ini rows");
}

static void test_today_on_text(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "forms/tennyu/fields.csv", "備考（職員用）,text,,,,,,,,,,yes",
       "備考（職員用）,text,,,,,,,,,today,yes");
  expect(d, "forms/tennyu/fields.csv", 13, 0,
         "\"today\" is for date fields only");
}

static void test_two_default_fonts(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "fonts.csv", "外字,gaiji", "外字,default");
  expect(d, "fonts.csv", 0, 0, "at most one font may have role \"default\"");
}

static void test_unknown_compute(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "forms/tennyu/fields.csv", "age(member_birth)", "age(member_bday)");
  expect(d, "forms/tennyu/fields.csv", 12, 0,
         "field \"member_bday\" does not exist");
}

static void test_unknown_ini_key(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "forms/kokuho/form.ini", "pages = 2", "pagess = 2");
  expect(d, "forms/kokuho/form.ini", 3, 0, "unknown key \"pagess\"");
}

static void test_bad_page_size(void **state) {
  (void)state;
  char *d = fresh_copy();
  edit(d, "forms/kokuho/form.ini", "182x257", "A5");
  expect(d, "forms/kokuho/form.ini", 4, 0, "page_size: \"A5\"");
}

static void test_missing_file(void **state) {
  (void)state;
  char *d = fresh_copy();
  char path[4096];
  snprintf(path, sizeof(path), "%s/questions.csv", d);
  assert_int_equal(unlink(path), 0);
  expect(d, "questions.csv", 0, 0, "missing file");
}

/* Many problems at once: all reported, none stops the others. */
static void test_collects_all(void **state) {
  (void)state;
  char *d = fresh_copy();
  struct mg_pack_report rep;
  struct mg_pack *p = NULL;
  edit(d, "pack.ini", "352152", "352153");
  edit(d, "procedures.csv", "age < 75", "agee < 75");
  edit(d, "forms/tennyu/layout.csv", "@mask,,1,", "@mask,,2,");
  append(d, "counters.csv", "shimin-1,二重,2F,市民課,\n");
  mg_pack_report_init(&rep);
  assert_int_equal(mg_pack_load(d, &p, &rep), -EINVAL);
  assert_int_equal(rep.n, 4);
  mg_pack_report_free(&rep);
  drop(d);
}

/* F3: the district of an in-city address: postal code, then the longest
 * town prefix; a "" town matches any town of its code. */
static void test_district(void **state) {
  (void)state;
  char *d = fresh_copy();
  struct mg_pack_report rep;
  struct mg_pack *p = NULL;
  /* the fixture has 7450000 "" and 7450001 城ケ丘 */
  append(d, "districts.csv",
         "7450001,城ケ丘一丁目,城ケ丘東地区\n7450002,銀南街,中央地区\n");
  mg_pack_report_init(&rep);
  assert_int_equal(mg_pack_load(d, &p, &rep), 0);
  assert_string_equal(mg_pack_district(p, "7450000", "毛利町"), "中央地区");
  assert_string_equal(mg_pack_district(p, "7450000", ""), "中央地区");
  assert_string_equal(mg_pack_district(p, "7450001", "城ケ丘三丁目"),
                      "城ケ丘地区");
  assert_string_equal(mg_pack_district(p, "7450001", "城ケ丘一丁目５番"),
                      "城ケ丘東地区"); /* the longer town wins */
  assert_null(mg_pack_district(p, "7450001", "代々木通")); /* no prefix */
  assert_null(mg_pack_district(p, "7450002", "")); /* a town row needs one */
  assert_string_equal(mg_pack_district(p, "7450002", "銀南街"), "中央地区");
  assert_null(mg_pack_district(p, "7460011", "古市")); /* not in the table */
  assert_null(mg_pack_district(p, NULL, "毛利町"));
  mg_pack_free(p);
  mg_pack_report_free(&rep);
  drop(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fixture_loads),
      cmocka_unit_test(test_city_code),
      cmocka_unit_test(test_report_print),
      cmocka_unit_test(test_shift_jis),
      cmocka_unit_test(test_nul_byte),
      cmocka_unit_test(test_unterminated_quote),
      cmocka_unit_test(test_extra_cell),
      cmocka_unit_test(test_unknown_column),
      cmocka_unit_test(test_missing_column),
      cmocka_unit_test(test_duplicate_id),
      cmocka_unit_test(test_bad_id),
      cmocka_unit_test(test_missing_form),
      cmocka_unit_test(test_missing_counter),
      cmocka_unit_test(test_question_loop),
      cmocka_unit_test(test_question_other_event),
      cmocka_unit_test(test_unknown_name),
      cmocka_unit_test(test_type_error),
      cmocka_unit_test(test_syntax_error),
      cmocka_unit_test(test_carry_two_types),
      cmocka_unit_test(test_box_outside_page),
      cmocka_unit_test(test_page_beyond),
      cmocka_unit_test(test_missing_template),
      cmocka_unit_test(test_template_not_pdf),
      cmocka_unit_test(test_newer_format),
      cmocka_unit_test(test_template_page_size),
      cmocka_unit_test(test_template_page_count),
      cmocka_unit_test(test_select_without_choices),
      cmocka_unit_test(test_missing_choice_list),
      cmocka_unit_test(test_bad_parent_value),
      cmocka_unit_test(test_bad_date_rule),
      cmocka_unit_test(test_bad_city_code),
      cmocka_unit_test(test_field_without_layout),
      cmocka_unit_test(test_split_name_part_missing),
      cmocka_unit_test(test_group_row_out_of_range),
      cmocka_unit_test(test_group_row_missing),
      cmocka_unit_test(test_unknown_group),
      cmocka_unit_test(test_today_on_text),
      cmocka_unit_test(test_two_default_fonts),
      cmocka_unit_test(test_unknown_compute),
      cmocka_unit_test(test_unknown_ini_key),
      cmocka_unit_test(test_bad_page_size),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_collects_all),
      cmocka_unit_test(test_district),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
