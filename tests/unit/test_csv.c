/*
 * test_csv.c — the strict CSV reader: files as Excel writes them (BOM,
 * CRLF, quotes, cells with line breaks, cleared rows) and every error with
 * its line, character column and rule.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "csv.h"

static void parse_ok(const char *text, struct mg_csv *csv) {
  struct mg_csv_error e = {0, 0, ""};
  int rc = mg_csv_parse(text, strlen(text), csv, &e);
  if (rc)
    fail_msg("unexpected error %d:%d: %s", e.line, e.col, e.rule);
}

static void parse_bad_n(const char *text, size_t len, int line, int col,
                        const char *want) {
  struct mg_csv csv;
  struct mg_csv_error e = {0, 0, ""};
  int rc = mg_csv_parse(text, len, &csv, &e);
  mg_csv_free(&csv);
  assert_int_equal(rc, -EINVAL);
  if (e.line != line || e.col != col || !strstr(e.rule, want))
    fail_msg("got %d:%d: %s; want %d:%d: ...%s", e.line, e.col, e.rule, line,
             col, want);
}

static void parse_bad(const char *text, int line, int col, const char *want) {
  parse_bad_n(text, strlen(text), line, col, want);
}

static void test_plain(void **state) {
  (void)state;
  struct mg_csv csv;
  parse_ok("id,name\na,甲\nb,乙\n", &csv);
  assert_int_equal(csv.header.n, 2);
  assert_string_equal(csv.header.cells[1].text, "name");
  assert_int_equal(csv.n_rows, 2);
  assert_string_equal(csv.rows[1].cells[1].text, "乙");
  assert_int_equal(csv.rows[1].line, 3);
  assert_int_equal(csv.rows[1].cells[1].col, 3);
  assert_int_equal(mg_csv_column(&csv, "name"), 1);
  assert_int_equal(mg_csv_column(&csv, "nope"), -1);
  mg_csv_free(&csv);
}

static void test_excel(void **state) {
  (void)state;
  struct mg_csv csv;
  /* BOM, CRLF, quoted comma, doubled quote, CRLF inside quotes, an empty
   * line, a cleared row and no final line break */
  parse_ok("\xEF\xBB\xBFid,text,note\r\n"
           "a,\"x, y\",\"say \"\"hi\"\"\"\r\n"
           "\r\n"
           ",,\r\n"
           "b,\"line 1\r\nline 2\",\r\n"
           "c,住所,end",
           &csv);
  assert_string_equal(csv.header.cells[0].text, "id");
  assert_int_equal(csv.n_rows, 3);
  assert_string_equal(csv.rows[0].cells[1].text, "x, y");
  assert_string_equal(csv.rows[0].cells[2].text, "say \"hi\"");
  assert_int_equal(csv.rows[0].cells[2].col, 11); /* after the quote */
  assert_string_equal(csv.rows[1].cells[1].text, "line 1\nline 2");
  assert_int_equal(csv.rows[1].line, 5);
  assert_string_equal(csv.rows[1].cells[2].text, "");
  assert_int_equal(csv.rows[1].cells[2].line, 6);
  assert_int_equal(csv.rows[2].line, 7);
  assert_string_equal(csv.rows[2].cells[2].text, "end");
  assert_int_equal(csv.rows[2].cells[2].col, 6); /* 住所 counts 2 */
  mg_csv_free(&csv);
}

static void test_header_only(void **state) {
  (void)state;
  struct mg_csv csv;
  parse_ok("a,b\n", &csv);
  assert_int_equal(csv.n_rows, 0);
  mg_csv_free(&csv);
  parse_ok("\"a\"\n\"\"\n", &csv); /* one column: "" is an empty row */
  assert_int_equal(csv.n_rows, 0);
  mg_csv_free(&csv);
}

static void test_errors(void **state) {
  (void)state;
  parse_bad("id,name\na,\"abc\nb,c\n", 2, 3, "unterminated quoted field");
  parse_bad("id,name\na,\"ab\"c\n", 2, 7, "text after a closing quote");
  parse_bad("id,name\na,ab\"c\n", 2, 5, "a quote inside an unquoted field");
  parse_bad("id,name\na,b,c,d,e\n", 2, 5, "row has 5 cells, the header has 2");
  parse_bad("a,b,c,d,e,f\n1,2,3,4,5\n", 2, 10,
            "row has 5 cells, the header has 6");
  parse_bad("id,name\na,b\rc,d\n", 2, 4, "carriage return (CR) without");
  parse_bad("id,,x\n", 1, 4, "header cell 2 is empty");
  parse_bad("id,x,id\n", 1, 6, "column \"id\" appears twice");
  parse_bad("", 1, 1, "empty file");
  parse_bad("\xEF\xBB\xBF\r\n\n", 1, 1, "empty file");
  /* Shift_JIS 住所 = 8F 5A 8F 8A */
  parse_bad("id,name\nx,住所,\x8F\x5A\x8F\x8A\n", 2, 6,
            "invalid UTF-8 byte 0x8F (is the file Shift_JIS? save it as CSV "
            "UTF-8)");
  parse_bad("id\n\xC0\x80\n", 2, 1, "invalid UTF-8 byte 0xC0"); /* overlong */
  parse_bad("id\n\xED\xA0\x80\n", 2, 1, "0xED");             /* surrogate */
  parse_bad("id\n\xE3\x81\n", 2, 1, "0xE3");                 /* truncated */
  parse_bad("id\nab\xEF\xBB\xBF\xF5\n", 2, 4, "0xF5"); /* BOM mid-file is a char */
  parse_bad_n("id\nab\0c\n", 7, 2, 3, "NUL byte");
}

static void test_error_format(void **state) {
  (void)state;
  struct mg_csv_error e = {4, 7, "unterminated quoted field"};
  char buf[128];
  mg_csv_error_format(&e, "counters.csv", buf, sizeof(buf));
  assert_string_equal(buf, "counters.csv:4:7: unterminated quoted field");
}

struct seen {
  char msgs[8][160];
  int lines[8], cols[8];
  int n;
};

static void collect(void *ctx, int line, int col, const char *msg) {
  struct seen *s = ctx;
  if (s->n < 8) {
    snprintf(s->msgs[s->n], sizeof(s->msgs[0]), "%s", msg);
    s->lines[s->n] = line;
    s->cols[s->n] = col;
    s->n++;
  }
}

static void test_columns(void **state) {
  (void)state;
  static const char *const known[] = {"id", "name", "note", NULL};
  static const char *const required[] = {"id", "name", NULL};
  struct mg_csv csv;
  struct seen s = {.n = 0};
  parse_ok("\xEF\xBB\xBFid,nmae,note,extra\n1,2,3,4\n", &csv);
  assert_int_equal(mg_csv_check_columns(&csv, known, required, collect, &s),
                   3);
  assert_string_equal(s.msgs[0], "unknown column \"nmae\"");
  assert_int_equal(s.cols[0], 4);
  assert_string_equal(s.msgs[1], "unknown column \"extra\"");
  assert_int_equal(s.cols[1], 14);
  assert_string_equal(s.msgs[2], "missing required column \"name\"");
  assert_int_equal(s.lines[2], 1);
  mg_csv_free(&csv);
  s.n = 0;
  parse_ok("name,id\n", &csv);
  assert_int_equal(mg_csv_check_columns(&csv, known, required, collect, &s),
                   0);
  mg_csv_free(&csv);
}

static void test_check_text(void **state) {
  (void)state;
  struct mg_csv_error e;
  assert_int_equal(mg_csv_check_text("\xEF\xBB\xBF[a]", 6, &e), 3);
  assert_int_equal(mg_csv_check_text("[a]\nk = 値", 11, &e), 0);
  assert_int_equal(mg_csv_check_text("[a]\nk = \x82\xA0", 10, &e), -EINVAL);
  assert_int_equal(e.line, 2);
  assert_int_equal(e.col, 5);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain),       cmocka_unit_test(test_excel),
      cmocka_unit_test(test_header_only), cmocka_unit_test(test_errors),
      cmocka_unit_test(test_error_format), cmocka_unit_test(test_columns),
      cmocka_unit_test(test_check_text),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
