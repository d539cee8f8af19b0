/*
 * test_pack_expr.c — the pack condition language: precedence and printing,
 * positions, syntax errors, name and type checks, and evaluation (with
 * unknown values) as a truth table.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pack_expr.h"

/* Names for the tests: q1 q2 (questions), age n (numbers). */
static int resolve(void *ctx, const char *name, enum mg_expr_type *type,
                   char *why, size_t whylen) {
  (void)ctx;
  if (!strcmp(name, "q1") || !strcmp(name, "q2") ||
      !strcmp(name, "has_mynumber_card")) {
    *type = MG_EXPR_T_BOOL;
    return 0;
  }
  if (!strcmp(name, "age") || !strcmp(name, "n")) {
    *type = MG_EXPR_T_NUM;
    return 0;
  }
  if (!strcmp(name, "later")) {
    snprintf(why, whylen, "\"later\" is asked after this question (question "
             "loop)");
    return -1;
  }
  return -1;
}

/* Values: q1, q2, age, n; -1 = unknown. */
struct vals {
  long q1, q2, age, n;
};

static int lookup(void *ctx, const char *name, long *val) {
  const struct vals *v = ctx;
  long x = !strcmp(name, "q1")    ? v->q1
           : !strcmp(name, "q2")  ? v->q2
           : !strcmp(name, "age") ? v->age
           : !strcmp(name, "n")   ? v->n
                                  : -1;
  if (x < 0)
    return -1;
  *val = x;
  return 0;
}

static struct mg_expr *ok(const char *src) {
  struct mg_expr *x = NULL;
  struct mg_expr_error e = {0, ""};
  if (mg_expr_parse(src, &x, &e) != 0)
    fail_msg("parse \"%s\": %d: %s", src, e.pos, e.msg);
  if (mg_expr_check(x, resolve, NULL, &e) != 0)
    fail_msg("check \"%s\": %d: %s", src, e.pos, e.msg);
  return x;
}

static void printed(const char *src, const char *want) {
  struct mg_expr *x = ok(src);
  struct mg_buf b;
  mg_buf_init(&b);
  mg_expr_print(x, &b);
  assert_string_equal(b.data, want);
  mg_buf_free(&b);
  mg_expr_free(x);
}

/* Parse (and check) must fail at `pos` with `want` in the message. */
static void bad(const char *src, int pos, const char *want) {
  struct mg_expr *x = NULL;
  struct mg_expr_error e = {0, ""};
  int rc = mg_expr_parse(src, &x, &e);
  if (rc == 0) {
    rc = mg_expr_check(x, resolve, NULL, &e);
    mg_expr_free(x);
  } else
    assert_null(x);
  assert_int_equal(rc, -EINVAL);
  if (e.pos != pos || !strstr(e.msg, want))
    fail_msg("\"%s\": got %d: %s; want %d: ...%s", src, e.pos, e.msg, pos,
             want);
}

static void test_precedence(void **state) {
  (void)state;
  printed("q1", "q1");
  printed("q1 or q2 and not q1", "(q1 or (q2 and not q1))");
  printed("(q1 or q2) and q1", "((q1 or q2) and q1)");
  printed("not not q1", "not not q1");
  printed("age>=65", "(age >= 65)");
  printed("age < 6 or age >= 65 and has_mynumber_card = yes",
          "((age < 6) or ((age >= 65) and (has_mynumber_card = yes)))");
  printed("q1 != no", "(q1 != no)");
  printed("not age = 3", "not (age = 3)");
  printed("q1 and q2 and q1", "((q1 and q2) and q1)");
  printed("\t( ( q1 ) )", "q1");
}

static void test_positions(void **state) {
  (void)state;
  struct mg_expr *x = ok("q1 and age >= 65");
  assert_int_equal(x->op, MG_EXPR_AND);
  assert_int_equal(x->pos, 4);
  assert_int_equal(x->a->pos, 1);
  assert_int_equal(x->b->op, MG_EXPR_GE);
  assert_int_equal(x->b->pos, 12);
  assert_int_equal(x->b->a->pos, 8);
  assert_int_equal(x->b->b->pos, 15);
  assert_int_equal(x->b->b->num, 65);
  assert_int_equal(x->b->type, MG_EXPR_T_BOOL);
  assert_int_equal(x->b->a->type, MG_EXPR_T_NUM);
  mg_expr_free(x);
}

static void test_syntax_errors(void **state) {
  (void)state;
  bad("", 1, "empty expression");
  bad("   ", 1, "empty expression");
  bad("q1 and", 7, "expected a value, found the end");
  bad("(q1 or q2", 10, "expected \")\" (to close the \"(\" at column 1)");
  bad("q1 q2", 4, "unexpected \"q2\"");
  bad("q1)", 3, "unexpected \")\"");
  bad("age = = 3", 7, "expected a value");
  bad("1 < age < 3", 9, "comparisons do not chain");
  bad("q1 && q2", 4, "unexpected character \"&\"");
  bad("!q1", 1, "\"!\" must be followed by \"=\"");
  bad("q1\xE3\x80\x80" "and q2", 3, "full-width space");
  bad("年齢 > 3", 1, "unexpected character \"年\"");
  bad("age > 1234567890", 7, "number too large");
  bad("and", 1, "expected a value, found \"and\"");
  bad("age = 3 or", 11, "expected a value");
}

static void test_type_errors(void **state) {
  (void)state;
  bad("age = yes", 5, "\"=\" compares a number with yes/no (type error)");
  bad("q1 < q2", 4, "\"<\" needs numbers; yes/no compare only with = and !=");
  bad("age", 1, "a condition must be yes/no, not a number");
  bad("q1 and age", 8, "\"and\" takes yes/no on both sides");
  bad("not n", 1, "\"not\" takes yes/no");
  bad("3 = 3 or 4", 10, "\"or\" takes yes/no");
  bad("q1 and nobody", 8, "unknown name");
  bad("q1 or later", 7, "\"later\" is asked after this question (question "
                        "loop)");
  bad("Q1", 1, "unknown name"); /* case-sensitive */
}

static void test_deep(void **state) {
  (void)state;
  char src[400];
  memset(src, '(', 100);
  snprintf(src + 100, sizeof(src) - 100, "q1");
  bad(src, 65, "nested too deeply");
  char nots[600] = "";
  for (int i = 0; i < 100; i++)
    strcat(nots, "not ");
  strcat(nots, "q1");
  bad(nots, 257, "nested too deeply");
}

static int ev(const char *src, struct vals v) {
  struct mg_expr *x = ok(src);
  int r = mg_expr_eval(x, lookup, &v);
  mg_expr_free(x);
  return r;
}

static void test_eval(void **state) {
  (void)state;
  /* and / or / not over every pair, unknown counting as false */
  for (long a = -1; a <= 1; a++)
    for (long b = -1; b <= 1; b++) {
      struct vals v = {a, b, 30, 2};
      int ta = a == 1, tb = b == 1;
      assert_int_equal(ev("q1 and q2", v), ta && tb);
      assert_int_equal(ev("q1 or q2", v), ta || tb);
      assert_int_equal(ev("not q1", v), !ta);
      assert_int_equal(ev("q1 = q2", v), ta == tb);
      assert_int_equal(ev("q1 != yes", v), !ta);
      assert_int_equal(ev("q1 = no", v), !ta);
    }
  struct vals v = {1, 0, 65, 3};
  assert_true(ev("age >= 65", v));
  assert_false(ev("age > 65", v));
  assert_true(ev("age <= 65 and age < 66 and age != 64 and age = 65", v));
  assert_true(ev("n > 2 and (q2 or q1)", v));
  assert_true(ev("yes", v));
  assert_false(ev("no", v));
  assert_true(ev("1 < 2", v));
  /* unknown number: every comparison with it is false */
  v.age = -1;
  assert_false(ev("age >= 65", v));
  assert_false(ev("age < 65", v));
  assert_false(ev("age = age", v));
  assert_true(ev("not (age >= 65)", v));
  /* a boolean lookup of 7 counts as yes */
  v.q1 = 7;
  assert_true(ev("q1 = yes", v));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_precedence),    cmocka_unit_test(test_positions),
      cmocka_unit_test(test_syntax_errors), cmocka_unit_test(test_type_errors),
      cmocka_unit_test(test_deep),          cmocka_unit_test(test_eval),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
