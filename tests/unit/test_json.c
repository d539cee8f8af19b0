/*
 * test_json.c — the strict parser (accepts, rejects with position and
 * rule), lookups, and the writer (escaping, misuse, round trips).
 *
 * Every input is copied into a heap buffer of exactly its length, so an
 * out-of-bounds read past `len` shows up under AddressSanitizer.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"

/* Parse s[0..len) from an exact-size heap copy. */
static int parse_n(const char *s, size_t len, const struct mg_json_limits *lim,
                   struct mg_json **out, struct mg_json_error *err) {
  char *copy = malloc(len ? len : 1);
  assert_non_null(copy);
  memcpy(copy, s, len);
  int rc = mg_json_parse(copy, len, lim, out, err);
  free(copy);
  return rc;
}

static struct mg_json *parse_ok(const char *s) {
  struct mg_json *v = NULL;
  struct mg_json_error e;
  int rc = parse_n(s, strlen(s), NULL, &v, &e);
  if (rc != 0)
    fail_msg("parse of '%s' failed (%d): %s", s, rc, e.msg);
  assert_non_null(v);
  return v;
}

struct reject {
  const char *in;
  size_t len;
  int rc;
  size_t line, col;
  const char *sub;
};

#define R(s, l, c, sub)                                                        \
  { s, sizeof(s) - 1, -EINVAL, l, c, sub }

static void check_reject(const struct reject *r,
                         const struct mg_json_limits *lim) {
  struct mg_json *v = (struct mg_json *)&v; /* must be reset to NULL */
  struct mg_json_error e;
  int rc = parse_n(r->in, r->len, lim, &v, &e);
  if (rc != r->rc || v != NULL || e.line != r->line || e.col != r->col ||
      !strstr(e.msg, r->sub)) {
    char lc[64];
    snprintf(lc, sizeof(lc), "line %zu, column %zu: ", r->line, r->col);
    fail_msg("input '%.*s': rc %d (want %d), got \"%s\", want \"%s...%s\"",
             (int)r->len, r->in, rc, r->rc, e.msg, lc, r->sub);
  }
  /* The message starts with the same position as the fields. */
  char prefix[64];
  snprintf(prefix, sizeof(prefix), "line %zu, column %zu: ", e.line, e.col);
  assert_int_equal(strncmp(e.msg, prefix, strlen(prefix)), 0);
}

static void run_rejects(const struct reject *t, size_t n) {
  for (size_t i = 0; i < n; i++)
    check_reject(&t[i], NULL);
}

/* ---- accepted input ---------------------------------------------------- */

static void test_scalars(void **state) {
  (void)state;
  struct mg_json *v;
  v = parse_ok("null");
  assert_int_equal(v->type, MG_JSON_NULL);
  mg_json_free(v);
  v = parse_ok(" true ");
  assert_int_equal(v->type, MG_JSON_TRUE);
  mg_json_free(v);
  v = parse_ok("\t\r\nfalse\n");
  assert_int_equal(v->type, MG_JSON_FALSE);
  mg_json_free(v);
  v = parse_ok("\"\"");
  assert_int_equal(v->type, MG_JSON_STRING);
  assert_int_equal(v->u.str.len, 0);
  assert_string_equal(v->u.str.s, "");
  mg_json_free(v);
  v = parse_ok("\"hello world\"");
  assert_string_equal(v->u.str.s, "hello world");
  assert_int_equal(v->u.str.len, 11);
  mg_json_free(v);
}

struct numcase {
  const char *in;
  double d;
  int is_int;
  int64_t i;
};

static void test_numbers(void **state) {
  (void)state;
  static const struct numcase t[] = {
      {"0", 0.0, 1, 0},
      {"-0", -0.0, 1, 0},
      {"7", 7.0, 1, 7},
      {"-45", -45.0, 1, -45},
      {"123456789", 123456789.0, 1, 123456789},
      {"1.5", 1.5, 0, 0},
      {"-1.25e-3", -1.25e-3, 0, 0},
      {"1E2", 100.0, 0, 0},
      {"1e+2", 100.0, 0, 0},
      {"2e-2", 0.02, 0, 0},
      {"1.0", 1.0, 0, 0},
      {"0.5", 0.5, 0, 0},
      {"9223372036854775807", 9223372036854775807.0, 1, INT64_MAX},
      {"-9223372036854775808", -9223372036854775808.0, 1, INT64_MIN},
      {"9223372036854775808", 9223372036854775808.0, 0, 0},
      {"-9223372036854775809", -9223372036854775809.0, 0, 0},
      {"18446744073709551616", 18446744073709551616.0, 0, 0},
      {"99999999999999999999999", 1e23, 0, 0},
      {"1e-400", 0.0, 0, 0}, /* underflow is fine, it is not infinite */
      {"1.7976931348623157e308", DBL_MAX, 0, 0},
  };
  for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
    struct mg_json *v = parse_ok(t[k].in);
    assert_int_equal(v->type, MG_JSON_NUMBER);
    if (v->u.num.d != t[k].d || v->u.num.is_int != t[k].is_int ||
        (t[k].is_int && v->u.num.i != t[k].i))
      fail_msg("'%s': d=%.17g is_int=%d i=%lld", t[k].in, v->u.num.d,
               v->u.num.is_int, (long long)v->u.num.i);
    mg_json_free(v);
  }
  /* -0 keeps its sign in d. */
  struct mg_json *v = parse_ok("-0");
  assert_true(signbit(v->u.num.d));
  mg_json_free(v);

  /* A token longer than any small stack buffer. */
  char big[300] = "0.";
  memset(big + 2, '0', 250);
  strcpy(big + 252, "1e250");
  v = parse_ok(big);
  assert_true(fabs(v->u.num.d - 1e-1) < 1e-12);
  assert_int_equal(v->u.num.is_int, 0);
  mg_json_free(v);
  char digits[201];
  memset(digits, '9', 200);
  digits[200] = '\0';
  v = parse_ok(digits);
  assert_int_equal(v->u.num.is_int, 0);
  assert_true(v->u.num.d > 9.9e199 && v->u.num.d < 1.1e200);
  mg_json_free(v);
}

static void test_containers(void **state) {
  (void)state;
  struct mg_json *v = parse_ok("\t\r\n [ 1 , {\"a\" : [ ] , \"b\":{} "
                               ",\"c\":[null,true]} , \"x\", -2.5 ]\n");
  assert_int_equal(v->type, MG_JSON_ARRAY);
  assert_int_equal(v->u.arr.n, 4);
  assert_int_equal(v->u.arr.items[0]->u.num.i, 1);
  const struct mg_json *o = v->u.arr.items[1];
  assert_int_equal(o->type, MG_JSON_OBJECT);
  assert_int_equal(o->u.obj.n, 3);
  assert_string_equal(o->u.obj.members[0].key, "a");
  assert_int_equal(o->u.obj.members[0].key_len, 1);
  assert_string_equal(o->u.obj.members[1].key, "b");
  assert_string_equal(o->u.obj.members[2].key, "c");
  assert_int_equal(o->u.obj.members[0].value->type, MG_JSON_ARRAY);
  assert_int_equal(o->u.obj.members[0].value->u.arr.n, 0);
  assert_int_equal(o->u.obj.members[1].value->type, MG_JSON_OBJECT);
  assert_int_equal(o->u.obj.members[1].value->u.obj.n, 0);
  const struct mg_json *c = mg_json_get(o, "c");
  assert_non_null(c);
  assert_int_equal(c->u.arr.n, 2);
  assert_int_equal(c->u.arr.items[0]->type, MG_JSON_NULL);
  assert_int_equal(c->u.arr.items[1]->type, MG_JSON_TRUE);
  assert_string_equal(v->u.arr.items[2]->u.str.s, "x");
  assert_true(v->u.arr.items[3]->u.num.d == -2.5);
  mg_json_free(v);

  /* Many elements and members, past every growth step. */
  char buf[20000];
  size_t n = 0;
  n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{");
  for (int i = 0; i < 1000; i++)
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s\"k%d\":[%d]",
                          i ? "," : "", i, i);
  snprintf(buf + n, sizeof(buf) - n, "}");
  v = parse_ok(buf);
  assert_int_equal(v->u.obj.n, 1000);
  assert_int_equal(mg_json_get(v, "k777")->u.arr.items[0]->u.num.i, 777);
  assert_string_equal(v->u.obj.members[999].key, "k999");
  mg_json_free(v);
}

static void test_strings(void **state) {
  (void)state;
  struct mg_json *v = parse_ok("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"");
  assert_int_equal(v->u.str.len, 8);
  assert_memory_equal(v->u.str.s, "\"\\/\b\f\n\r\t", 9);
  mg_json_free(v);

  static const struct {
    const char *in, *out;
  } t[] = {
      {"\"\\u0041\"", "A"},
      {"\"\\u00e9\"", "\xC3\xA9"},
      {"\"\\u00E9\"", "\xC3\xA9"},
      {"\"\\u20AC\"", "\xE2\x82\xAC"},
      {"\"\\uFFFF\"", "\xEF\xBF\xBF"},
      {"\"\\uD83D\\uDE00\"", "\xF0\x9F\x98\x80"},
      {"\"\\ud83d\\ude00\"", "\xF0\x9F\x98\x80"},
      {"\"\\uDBFF\\uDFFF\"", "\xF4\x8F\xBF\xBF"},
      {"\"\\uD800\\uDC00\"", "\xF0\x90\x80\x80"},
      {"\"x\\u7A93\\u53E3y\"", "x\xE7\xAA\x93\xE5\x8F\xA3y"}, /* 窓口 */
      {"\"\xE7\xAA\x93\xE5\x8F\xA3\"", "\xE7\xAA\x93\xE5\x8F\xA3"},
      {"\"\xF0\x9F\x98\x80\"", "\xF0\x9F\x98\x80"},
      {"\"\xF4\x8F\xBF\xBF\"", "\xF4\x8F\xBF\xBF"}, /* U+10FFFF */
      {"\"\xEE\x80\x80\"", "\xEE\x80\x80"},         /* U+E000 */
      {"\"\xED\x9F\xBF\"", "\xED\x9F\xBF"},         /* U+D7FF */
      {"\"\xC2\x80\"", "\xC2\x80"},
      {"\"\x7F\"", "\x7F"},
  };
  for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
    v = parse_ok(t[k].in);
    assert_int_equal(v->type, MG_JSON_STRING);
    assert_int_equal(v->u.str.len, strlen(t[k].out));
    assert_string_equal(v->u.str.s, t[k].out);
    mg_json_free(v);
  }

  /* \u0000 gives an embedded NUL, still NUL-terminated. */
  v = parse_ok("\"a\\u0000b\"");
  assert_int_equal(v->u.str.len, 3);
  assert_memory_equal(v->u.str.s, "a\0b", 4);
  mg_json_free(v);
}

static void test_lookups(void **state) {
  (void)state;
  struct mg_json *v =
      parse_ok("{\"s\":\"str\",\"i\":-42,\"f\":1.5,\"big\":1e30,"
               "\"t\":true,\"no\":false,\"n\":null,"
               "\"nul\":\"ad\\u0000x\",\"a\\u0000b\":1,"
               "\"obj\":{\"s\":\"inner\"}}");
  assert_string_equal(mg_json_get_str(v, "s"), "str");
  assert_null(mg_json_get_str(v, "i"));
  assert_null(mg_json_get_str(v, "missing"));
  assert_null(mg_json_get_str(v, "nul")); /* embedded NUL is refused */
  assert_non_null(mg_json_get(v, "nul"));
  assert_null(mg_json_get(v, "a")); /* "a\0b" never matches a C string */
  assert_null(mg_json_get(v, NULL));
  assert_string_equal(mg_json_get_str(mg_json_get(v, "obj"), "s"), "inner");

  int64_t i = 7;
  assert_int_equal(mg_json_get_int(v, "i", &i), 0);
  assert_int_equal(i, -42);
  i = 7;
  assert_int_equal(mg_json_get_int(v, "f", &i), -EINVAL);
  assert_int_equal(mg_json_get_int(v, "big", &i), -EINVAL);
  assert_int_equal(mg_json_get_int(v, "s", &i), -EINVAL);
  assert_int_equal(mg_json_get_int(v, "missing", &i), -ENOENT);
  assert_int_equal(i, 7);

  assert_int_equal(mg_json_get_bool(v, "t"), 1);
  assert_int_equal(mg_json_get_bool(v, "no"), 0);
  assert_int_equal(mg_json_get_bool(v, "n"), -1);
  assert_int_equal(mg_json_get_bool(v, "i"), -1);
  assert_int_equal(mg_json_get_bool(v, "missing"), -1);

  /* Not an object, or NULL. */
  const struct mg_json *s = mg_json_get(v, "s");
  assert_null(mg_json_get(s, "s"));
  assert_null(mg_json_get(NULL, "s"));
  assert_null(mg_json_get_str(NULL, "s"));
  assert_int_equal(mg_json_get_int(NULL, "i", &i), -ENOENT);
  assert_int_equal(mg_json_get_bool(NULL, "t"), -1);
  mg_json_free(v);

  v = parse_ok("[{\"a\":1}]");
  assert_null(mg_json_get(v, "a"));
  mg_json_free(v);
  mg_json_free(NULL);
}

/* The parser honours len: a valid prefix of a larger buffer parses alone. */
static void test_not_nul_terminated(void **state) {
  (void)state;
  struct mg_json *v = NULL;
  const char *buf = "[1,2]garbage";
  assert_int_equal(parse_n(buf, 5, NULL, &v, NULL), 0);
  assert_int_equal(v->u.arr.n, 2);
  mg_json_free(v);
  assert_int_equal(parse_n("12345", 3, NULL, &v, NULL), 0);
  assert_int_equal(v->u.num.i, 123);
  mg_json_free(v);
  assert_int_equal(parse_n("1.5e3", 3, NULL, &v, NULL), 0);
  assert_true(v->u.num.d == 1.5);
  mg_json_free(v);
  assert_int_equal(parse_n("truex", 4, NULL, &v, NULL), 0);
  assert_int_equal(v->type, MG_JSON_TRUE);
  mg_json_free(v);
  assert_int_equal(parse_n("\"abc\"def", 5, NULL, &v, NULL), 0);
  assert_string_equal(v->u.str.s, "abc");
  mg_json_free(v);

  /* Cuts inside a token are errors at the end of the prefix. */
  static const struct reject t[] = {
      {"\"abc\"", 4, -EINVAL, 1, 1, "unterminated string"},
      {"tru", 3, -EINVAL, 1, 1, "invalid literal; expected 'true'"},
      {"1.", 2, -EINVAL, 1, 3, "digit after the decimal point"},
      {"1e5", 2, -EINVAL, 1, 3, "digit in the exponent"},
      {"-1", 1, -EINVAL, 1, 2, "expected a digit after '-'"},
      {"\"\\u00e9\"", 6, -EINVAL, 1, 1, "unterminated string"},
      {"\"\\", 2, -EINVAL, 1, 1, "unterminated string"},
      {"[1,2]", 4, -EINVAL, 1, 5, "end of input; expected ',' or ']'"},
      {"{\"a\":1}", 6, -EINVAL, 1, 7, "end of input; expected ',' or '}'"},
  };
  run_rejects(t, sizeof(t) / sizeof(t[0]));

  /* NULL text with len 0 is empty input; NULL out is refused. */
  struct mg_json_error e;
  assert_int_equal(mg_json_parse(NULL, 0, NULL, &v, &e), -EINVAL);
  assert_non_null(strstr(e.msg, "empty input"));
  assert_int_equal(mg_json_parse("1", 1, NULL, NULL, &e), -EINVAL);
  assert_int_equal(mg_json_parse(NULL, 3, NULL, &v, NULL), -EINVAL);
  assert_null(v);
}

/* ---- rejected input ---------------------------------------------------- */

static void test_reject_structure(void **state) {
  (void)state;
  static const struct reject t[] = {
      R("", 1, 1, "empty input"),
      R("  \n ", 2, 2, "empty input"),
      R("{} x", 1, 4, "trailing data after the JSON value"),
      R("1 2", 1, 3, "trailing data"),
      R("[]]", 1, 3, "trailing data"),
      R("1\0", 1, 2, "trailing data"),
      R("[1,2,]", 1, 5, "trailing comma before ']'"),
      R("[1,\n ]", 1, 3, "trailing comma before ']'"),
      R("{\"a\":1,}", 1, 7, "trailing comma before '}'"),
      R("[,1]", 1, 2, "expected a value"),
      R("[1,,2]", 1, 4, "expected a value"),
      R("{,}", 1, 2, "expected a string key in double quotes"),
      R("{a:1}", 1, 2, "expected a string key in double quotes"),
      R("{1:1}", 1, 2, "expected a string key in double quotes"),
      R("{\"a\" 1}", 1, 6, "expected ':' after an object key"),
      R("{\"a\"}", 1, 5, "expected ':' after an object key"),
      R("[1 2]", 1, 4, "expected ',' or ']' after an array element"),
      R("{\n  \"a\": 1\n  \"b\": 2\n}", 3, 3,
        "expected ',' or '}' after an object member"),
      R("[1}", 1, 3, "expected ',' or ']'"),
      R("{\"a\":1]", 1, 7, "expected ',' or '}'"),
      R("[", 1, 2, "unexpected end of input; expected a value"),
      R("{", 1, 2, "unexpected end of input; expected a string key"),
      R("{\"a\":", 1, 6, "unexpected end of input; expected a value"),
      R("[1,", 1, 4, "unexpected end of input; expected a value"),
      R("]", 1, 1, "expected a value"),
      R("}", 1, 1, "expected a value"),
      R(":", 1, 1, "expected a value"),
      R("tru", 1, 1, "invalid literal; expected 'true'"),
      R("[fals]", 1, 2, "invalid literal; expected 'false'"),
      R("nul", 1, 1, "invalid literal; expected 'null'"),
      R("True", 1, 1, "expected a value"),
      R("undefined", 1, 1, "expected a value"),
      R("\xEF\xBB\xBF{}", 1, 1, "byte order mark"),
      R("\xC3\xA9", 1, 1, "unexpected byte 0xC3; expected a value"),
      R("[1]\x80", 1, 4, "trailing data"),
      R("\"abc", 1, 1, "unterminated string"),
      R("[\"a\", \"b]", 1, 7, "unterminated string"),
  };
  run_rejects(t, sizeof(t) / sizeof(t[0]));
}

static void test_reject_comments_quotes(void **state) {
  (void)state;
  static const struct reject t[] = {
      R("[1, // c\n2]", 1, 5, "comments are not allowed"),
      R("/* x */ 1", 1, 1, "comments are not allowed"),
      R("1 /* x */", 1, 3, "comments are not allowed"),
      R("# x\n1", 1, 1, "expected a value"),
      R("{\"a\":1 // c\n}", 1, 8, "comments are not allowed"),
      R("['a']", 1, 2, "single quotes are not allowed"),
      R("{'a':1}", 1, 2, "single quotes are not allowed"),
      R("{\"a\":'b'}", 1, 6, "single quotes are not allowed"),
  };
  run_rejects(t, sizeof(t) / sizeof(t[0]));
}

static void test_reject_numbers(void **state) {
  (void)state;
  static const struct reject t[] = {
      R("01", 1, 1, "leading zeros are not allowed"),
      R("[-012]", 1, 3, "leading zeros are not allowed"),
      R("00", 1, 1, "leading zeros"),
      R("0.5.", 1, 4, "trailing data"),
      R("+1", 1, 1, "'+' is not allowed before a number"),
      R("[1e+5, +2]", 1, 8, "'+' is not allowed"),
      R(".5", 1, 1, "must start with a digit, not '.'"),
      R("-.5", 1, 2, "expected a digit after '-'"),
      R("1.", 1, 3, "expected a digit after the decimal point"),
      R("[1.]", 1, 4, "expected a digit after the decimal point"),
      R("1.e5", 1, 3, "expected a digit after the decimal point"),
      R("-", 1, 2, "expected a digit after '-'"),
      R("- 1", 1, 2, "expected a digit after '-'"),
      R("1e", 1, 3, "expected a digit in the exponent"),
      R("1e+", 1, 4, "expected a digit in the exponent"),
      R("1E-x", 1, 4, "expected a digit in the exponent"),
      R("0x10", 1, 2, "trailing data"),
      R("NaN", 1, 1, "NaN and Infinity are not allowed"),
      R("Infinity", 1, 1, "NaN and Infinity are not allowed"),
      R("-Infinity", 1, 1, "NaN and Infinity are not allowed"),
      R("[1, NaN]", 1, 5, "NaN and Infinity"),
      R("1e999", 1, 1, "too large for a double"),
      R("[-1e400]", 1, 2, "too large for a double"),
  };
  run_rejects(t, sizeof(t) / sizeof(t[0]));
}

static void test_reject_strings(void **state) {
  (void)state;
  static const struct reject t[] = {
      /* raw control characters */
      R("\"a\tb\"", 1, 3, "control character U+0009 must be escaped"),
      R("\"a\nb\"", 1, 3, "control character U+000A"),
      R("\"a\0b\"", 1, 3, "control character U+0000"),
      R("{\n  \"k\": \"x\x01\"\n}", 2, 10, "control character U+0001"),
      R("[\"\x1f\"]", 1, 3, "control character U+001F"),
      /* invalid UTF-8 */
      R("\"\xC0\xAF\"", 1, 2, "invalid UTF-8 in a string: overlong"),
      R("\"\xC1\xBF\"", 1, 2, "overlong"),
      R("\"\xE0\x80\xAF\"", 1, 2, "overlong"),
      R("\"\xE0\x9F\xBF\"", 1, 2, "overlong"),
      R("\"\xF0\x82\x82\xAC\"", 1, 2, "overlong"),
      R("\"\xF0\x8F\xBF\xBF\"", 1, 2, "overlong"),
      R("\"\xED\xA0\x80\"", 1, 2, "surrogate"),
      R("\"\xED\xBF\xBF\"", 1, 2, "surrogate"),
      R("\"ab\xED\xB0\x80\"", 1, 4, "surrogate"),
      R("\"\xF4\x90\x80\x80\"", 1, 2, "above U+10FFFF"),
      R("\"\xF5\x80\x80\x80\"", 1, 2, "above U+10FFFF"),
      R("\"\xF8\x88\x80\x80\x80\"", 1, 2, "never appears"),
      R("\"\xFF\"", 1, 2, "never appears"),
      R("\"\x80\"", 1, 2, "unexpected continuation byte"),
      R("\"a\xBF\"", 1, 3, "unexpected continuation byte"),
      R("\"\xC3\"", 1, 2, "truncated sequence"),
      R("\"\xE2\x82\"", 1, 2, "truncated sequence"),
      R("\"\xE2\x82x\"", 1, 2, "truncated sequence"),
      R("\"\xF0\x9F\x98\"", 1, 2, "truncated sequence"),
      R("\"\xC3\xC3\xA9\"", 1, 2, "truncated sequence"),
      R("{\"\xC3\":1}", 1, 3, "truncated sequence"),
      /* escapes */
      R("\"\\x\"", 1, 2, "invalid escape '\\x'"),
      R("\"\\U0041\"", 1, 2, "invalid escape '\\U'"),
      R("\"\\'\"", 1, 2, "invalid escape '\\''"),
      R("\"\\a\"", 1, 2, "invalid escape '\\a'"),
      R("\"\\\x01\"", 1, 2, "invalid escape (byte 0x01"),
      R("\"ab\\u12\"", 1, 4, "expected 4 hex digits after \\u"),
      R("\"\\u12G4\"", 1, 2, "expected 4 hex digits"),
      R("\"\\u\"", 1, 2, "expected 4 hex digits"),
      /* surrogate escapes */
      R("\"\\uD800\"", 1, 2,
        "high surrogate \\uD800 is not followed by a low surrogate"),
      R("\"\\uDBFFx\"", 1, 2, "high surrogate \\uDBFF"),
      R("\"\\uD83D\\u0041\"", 1, 2, "high surrogate \\uD83D"),
      R("\"\\uD83D\\uD83D\"", 1, 2, "high surrogate \\uD83D"),
      R("\"\\uD83D\\n\"", 1, 2, "high surrogate"),
      R("\"\\uD83D\\uDE0\"", 1, 2, "high surrogate"),
      R("\"\\uDC00\"", 1, 2, "lone low surrogate \\uDC00"),
      R("\"x\\uDFFF\\uD800\"", 1, 3, "lone low surrogate \\uDFFF"),
  };
  run_rejects(t, sizeof(t) / sizeof(t[0]));
}

static void test_duplicate_keys(void **state) {
  (void)state;
  static const struct reject t[] = {
      R("{\"a\":1,\"b\":2,\"a\":3}", 1, 14, "duplicate object key \"a\""),
      R("{\"a\":1,\"\\u0061\":2}", 1, 8, "duplicate object key \"a\""),
      R("{\"x\":{\n\"id\":1,\n\"id\":2}}", 3, 1, "duplicate object key \"id\""),
      /* the duplicate met first in the text is the one named */
      R("{\"b\":1,\"a\":1,\"a\":2,\"b\":2}", 1, 14, "key \"a\""),
      /* control bytes in the name are not echoed raw */
      R("{\"\\n\":1,\"\\n\":2}", 1, 9, "duplicate object key \"?\""),
      R("{\"\":1,\"\":2}", 1, 7, "duplicate object key \"\""),
  };
  run_rejects(t, sizeof(t) / sizeof(t[0]));

  /* Keys differing only after a NUL are distinct. */
  struct mg_json *v = parse_ok("{\"a\\u0000b\":1,\"a\\u0000c\":2,\"a\":3}");
  assert_int_equal(v->u.obj.n, 3);
  assert_int_equal(mg_json_get(v, "a")->u.num.i, 3);
  mg_json_free(v);

  /* Same key in sibling objects is fine. */
  v = parse_ok("[{\"a\":1},{\"a\":2}]");
  mg_json_free(v);

  /* A large object, duplicate far apart; long names are cut. */
  char buf[40000];
  size_t n = 0;
  char longkey[201];
  memset(longkey, 'k', 200);
  longkey[200] = '\0';
  n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{\"%s\":0", longkey);
  for (int i = 0; i < 2000; i++)
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, ",\"k%d\":%d", i, i);
  size_t dup_at = n + 1;
  n += (size_t)snprintf(buf + n, sizeof(buf) - n, ",\"%s\":1}", longkey);
  struct mg_json_error e;
  v = NULL;
  assert_int_equal(parse_n(buf, n, NULL, &v, &e), -EINVAL);
  assert_null(v);
  assert_int_equal(e.offset, dup_at);
  assert_int_equal(e.line, 1);
  assert_int_equal(e.col, dup_at + 1);
  assert_non_null(strstr(e.msg, "duplicate object key \"kkkk"));
  assert_non_null(strstr(e.msg, "...\""));
  assert_true(strlen(e.msg) < sizeof(e.msg) - 1);
}

static void test_depth_limit(void **state) {
  (void)state;
  char buf[300];
  struct mg_json *v = NULL;
  struct mg_json_error e;

  /* Default: 64 levels parse, 65 do not. */
  memset(buf, '[', 64);
  memset(buf + 64, ']', 64);
  assert_int_equal(parse_n(buf, 128, NULL, &v, &e), 0);
  const struct mg_json *x = v;
  for (int i = 0; i < 63; i++)
    x = x->u.arr.items[0];
  assert_int_equal(x->type, MG_JSON_ARRAY);
  assert_int_equal(x->u.arr.n, 0);
  mg_json_free(v);

  memset(buf, '[', 65);
  memset(buf + 65, ']', 65);
  assert_int_equal(parse_n(buf, 130, NULL, &v, &e), -E2BIG);
  assert_null(v);
  assert_int_equal(e.col, 65);
  assert_non_null(strstr(e.msg, "nesting is deeper than the limit of 64"));

  /* A deep unclosed prefix fails on depth, not on the missing ends. */
  memset(buf, '[', 200);
  assert_int_equal(parse_n(buf, 200, NULL, &v, &e), -E2BIG);

  struct mg_json_limits lim = {.max_depth = 2};
  static const struct reject t[] = {
      {"[[[1]]]", 7, -E2BIG, 1, 3, "deeper than the limit of 2 levels"},
      {"{\"a\":{\"b\":{}}}", 14, -E2BIG, 1, 11, "limit of 2"},
      {"[{\"a\":[]}]", 10, -E2BIG, 1, 7, "limit of 2"},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    check_reject(&t[i], &lim);
  assert_int_equal(parse_n("[[1],{\"a\":1}]", 13, &lim, &v, &e), 0);
  mg_json_free(v);
  /* Scalars have no depth. */
  lim.max_depth = 1;
  assert_int_equal(parse_n("[1]", 3, &lim, &v, &e), 0);
  mg_json_free(v);
  assert_int_equal(parse_n("\"s\"", 3, &lim, &v, &e), 0);
  mg_json_free(v);
}

static void test_size_limit(void **state) {
  (void)state;
  struct mg_json *v = NULL;
  struct mg_json_error e;
  struct mg_json_limits lim = {.max_bytes = 4};
  assert_int_equal(parse_n("[12]", 4, &lim, &v, &e), 0);
  assert_int_equal(v->u.arr.items[0]->u.num.i, 12);
  mg_json_free(v);
  assert_int_equal(parse_n("[123]", 5, &lim, &v, &e), -E2BIG);
  assert_null(v);
  assert_int_equal(e.offset, 4);
  assert_int_equal(e.col, 5);
  assert_non_null(strstr(e.msg, "input is 5 bytes, over the limit of 4 bytes"));
  /* The size check comes first, even for garbage. */
  assert_int_equal(parse_n("xxxxxxxx", 8, &lim, &v, &e), -E2BIG);
  /* limits with zeros means the defaults */
  struct mg_json_limits zero = {0, 0};
  assert_int_equal(parse_n("[123]", 5, &zero, &v, &e), 0);
  mg_json_free(v);
}

/* ---- writer ------------------------------------------------------------ */

static void test_writer_basic(void **state) {
  (void)state;
  struct mg_buf b;
  struct mg_jw w;
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  mg_jw_obj(&w);
  mg_jw_kstr(&w, "name", "\xE7\xAA\x93\xE5\x8F\xA3");
  mg_jw_kint(&w, "n", -5);
  mg_jw_key(&w, "min");
  mg_jw_int(&w, INT64_MIN);
  mg_jw_key(&w, "u");
  mg_jw_uint(&w, UINT64_MAX);
  mg_jw_key(&w, "d");
  mg_jw_double(&w, 0.1);
  mg_jw_key(&w, "third");
  mg_jw_double(&w, 1.0 / 3.0);
  mg_jw_key(&w, "inf");
  mg_jw_double(&w, INFINITY);
  mg_jw_key(&w, "nan");
  mg_jw_double(&w, NAN);
  mg_jw_kbool(&w, "t", 1);
  mg_jw_kbool(&w, "f", 0);
  mg_jw_kstr(&w, "z", NULL);
  mg_jw_key(&w, "arr");
  mg_jw_arr(&w);
  mg_jw_int(&w, 1);
  mg_jw_null(&w);
  mg_jw_arr(&w);
  mg_jw_arr_end(&w);
  mg_jw_obj(&w);
  mg_jw_obj_end(&w);
  mg_jw_raw(&w, "{\"x\":1}");
  mg_jw_strn(&w, "ab", 1);
  mg_jw_arr_end(&w);
  mg_jw_kraw(&w, "raw", "[true]");
  mg_jw_obj_end(&w);
  assert_false(w.bad);
  assert_int_equal(w.depth, 0);
  assert_false(b.oom);
  assert_string_equal(
      b.data,
      "{\"name\":\"\xE7\xAA\x93\xE5\x8F\xA3\",\"n\":-5,"
      "\"min\":-9223372036854775808,\"u\":18446744073709551615,"
      "\"d\":0.1,\"third\":0.3333333333333333,\"inf\":null,\"nan\":null,"
      "\"t\":true,\"f\":false,\"z\":null,"
      "\"arr\":[1,null,[],{},{\"x\":1},\"a\"],\"raw\":[true]}");
  mg_buf_free(&b);

  /* A lone scalar is a complete document too. */
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  mg_jw_double(&w, -0.0);
  assert_false(w.bad);
  assert_string_equal(b.data, "-0");
  mg_buf_free(&b);
}

static void test_writer_escaping(void **state) {
  (void)state;
  struct mg_buf b;
  mg_buf_init(&b);
  mg_json_escape(&b, "a\"b\\c/d\b\f\n\r\te\x01\x1f\x7f", 16);
  assert_string_equal(b.data,
                      "\"a\\\"b\\\\c/d\\b\\f\\n\\r\\te\\u0001\\u001f\x7f\"");
  mg_buf_reset(&b);
  mg_json_escape(&b, "a\0b", 3);
  assert_string_equal(b.data, "\"a\\u0000b\"");
  mg_buf_reset(&b);
  mg_json_escape(&b, NULL, 0);
  assert_string_equal(b.data, "\"\"");
  mg_buf_reset(&b);
  /* valid UTF-8 passes untouched */
  const char *ok = "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF";
  mg_json_escape(&b, ok, strlen(ok));
  assert_int_equal(b.len, strlen(ok) + 2);
  assert_memory_equal(b.data + 1, ok, strlen(ok));
  mg_buf_reset(&b);

  /* each invalid byte becomes U+FFFD */
  static const struct {
    const char *in, *out;
  } t[] = {
      {"a\xFF"
       "b",
       "\"a\xEF\xBF\xBD"
       "b\""},
      {"\xC3", "\"\xEF\xBF\xBD\""},
      {"x\xE2\x82", "\"x\xEF\xBF\xBD\xEF\xBF\xBD\""},
      {"\xC0\xAF", "\"\xEF\xBF\xBD\xEF\xBF\xBD\""},
      {"\xED\xA0\x80", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""},
      {"\xF4\x90\x80\x80!",
       "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD!\""},
      {"\x80\xC3\xA9", "\"\xEF\xBF\xBD\xC3\xA9\""},
      /* the fast paths (ASCII four bytes a step, kana/kanji three): an
       * escape or a bad byte right after them still counts */
      {"\xE6\x97\xA5\xE6\x9C\xAC\t\xE8\xAA\x9E",
       "\"\xE6\x97\xA5\xE6\x9C\xAC\\t\xE8\xAA\x9E\""},
      {"\xE3\x81" "A", "\"\xEF\xBF\xBD\xEF\xBF\xBD" "A\""},
      {"\xE3\x81\xC3\xA9", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xC3\xA9\""},
      {"\xE0\x80\x80", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""},
      {"\xE0\xA0\x80", "\"\xE0\xA0\x80\""}, /* U+0800 */
      {"abcdefg\"", "\"abcdefg\\\"\""},
      {"abcdefgh\\", "\"abcdefgh\\\\\""},
      {"abcd\x01" "efgh", "\"abcd\\u0001efgh\""},
      {"abc\xFF", "\"abc\xEF\xBF\xBD\""},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    mg_buf_reset(&b);
    mg_json_escape(&b, t[i].in, strlen(t[i].in));
    assert_string_equal(b.data, t[i].out);
  }

  /* integers without printf, the extremes included */
  {
    struct mg_jw iw;
    mg_buf_reset(&b);
    mg_jw_init(&iw, &b);
    mg_jw_arr(&iw);
    mg_jw_int(&iw, 0);
    mg_jw_int(&iw, -7);
    mg_jw_int(&iw, INT64_MIN);
    mg_jw_int(&iw, INT64_MAX);
    mg_jw_uint(&iw, UINT64_MAX);
    mg_jw_arr_end(&iw);
    assert_false(iw.bad);
    assert_string_equal(b.data, "[0,-7,-9223372036854775808,"
                                "9223372036854775807,18446744073709551615]");
  }

  /* Keys are escaped the same way. */
  struct mg_jw w;
  mg_buf_reset(&b);
  mg_jw_init(&w, &b);
  mg_jw_obj(&w);
  mg_jw_kstr(&w, "k\"\n", "v\xFF");
  mg_jw_obj_end(&w);
  assert_false(w.bad);
  assert_string_equal(b.data, "{\"k\\\"\\n\":\"v\xEF\xBF\xBD\"}");
  mg_buf_free(&b);
}

/* Run one misuse scenario: bad must be set and nothing written after it. */
static void misuse(void (*steps)(struct mg_jw *), const char *want_out) {
  struct mg_buf b;
  struct mg_jw w;
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  steps(&w);
  assert_true(w.bad);
  assert_string_equal(b.data ? b.data : "", want_out);
  /* once bad, everything is a no-op */
  size_t len = b.len;
  mg_jw_int(&w, 1);
  mg_jw_obj(&w);
  mg_jw_kstr(&w, "a", "b");
  mg_jw_arr_end(&w);
  assert_int_equal(b.len, len);
  mg_buf_free(&b);
}

static void m_value_without_key(struct mg_jw *w) {
  mg_jw_obj(w);
  mg_jw_int(w, 1);
}
static void m_key_in_array(struct mg_jw *w) {
  mg_jw_arr(w);
  mg_jw_key(w, "a");
}
static void m_key_at_top(struct mg_jw *w) { mg_jw_key(w, "a"); }
static void m_two_keys(struct mg_jw *w) {
  mg_jw_obj(w);
  mg_jw_key(w, "a");
  mg_jw_key(w, "b");
}
static void m_end_after_key(struct mg_jw *w) {
  mg_jw_obj(w);
  mg_jw_key(w, "a");
  mg_jw_obj_end(w);
}
static void m_unbalanced_end(struct mg_jw *w) { mg_jw_obj_end(w); }
static void m_wrong_end(struct mg_jw *w) {
  mg_jw_arr(w);
  mg_jw_obj_end(w);
}
static void m_extra_end(struct mg_jw *w) {
  mg_jw_arr(w);
  mg_jw_arr_end(w);
  mg_jw_arr_end(w);
}
static void m_two_top_values(struct mg_jw *w) {
  mg_jw_int(w, 1);
  mg_jw_int(w, 2);
}
static void m_second_top_container(struct mg_jw *w) {
  mg_jw_obj(w);
  mg_jw_obj_end(w);
  mg_jw_arr(w);
}
static void m_null_key(struct mg_jw *w) {
  mg_jw_obj(w);
  mg_jw_key(w, NULL);
}
static void m_raw_null(struct mg_jw *w) {
  mg_jw_arr(w);
  mg_jw_raw(w, NULL);
}
static void m_raw_empty(struct mg_jw *w) {
  mg_jw_arr(w);
  mg_jw_raw(w, "");
}
static void m_too_deep(struct mg_jw *w) {
  for (int i = 0; i < MG_JW_MAX_DEPTH + 1; i++)
    mg_jw_arr(w);
}

static void test_writer_misuse(void **state) {
  (void)state;
  misuse(m_value_without_key, "{");
  misuse(m_key_in_array, "[");
  misuse(m_key_at_top, "");
  misuse(m_two_keys, "{\"a\":");
  misuse(m_end_after_key, "{\"a\":");
  misuse(m_unbalanced_end, "");
  misuse(m_wrong_end, "[");
  misuse(m_extra_end, "[]");
  misuse(m_two_top_values, "1");
  misuse(m_second_top_container, "{}");
  misuse(m_null_key, "{");
  misuse(m_raw_null, "[");
  misuse(m_raw_empty, "[");
  char deep[MG_JW_MAX_DEPTH + 1];
  memset(deep, '[', MG_JW_MAX_DEPTH);
  deep[MG_JW_MAX_DEPTH] = '\0';
  misuse(m_too_deep, deep);

  /* Exactly MG_JW_MAX_DEPTH levels are fine. */
  struct mg_buf b;
  struct mg_jw w;
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  for (int i = 0; i < MG_JW_MAX_DEPTH; i++)
    mg_jw_arr(&w);
  for (int i = 0; i < MG_JW_MAX_DEPTH; i++)
    mg_jw_arr_end(&w);
  assert_false(w.bad);
  assert_int_equal(b.len, 2 * MG_JW_MAX_DEPTH);
  mg_buf_free(&b);
}

/* ---- round trips ------------------------------------------------------- */

static void test_round_trip(void **state) {
  (void)state;
  char all[128]; /* every byte 0x01..0x7F, then a NUL, plus UTF-8 */
  for (int i = 0; i < 127; i++)
    all[i] = (char)(i + 1);
  all[127] = '\0';
  static const double dbl[] = {0.1,       1.0 / 3.0, 1e300,  -2.5e-310,
                               DBL_MAX,   DBL_MIN,   5e-324, 123456789.123,
                               -0.0,      1e21,      1e-7,   9007199254740993.0,
                               2.0 / 3.0, 100.0};
  const size_t nd = sizeof(dbl) / sizeof(dbl[0]);

  struct mg_buf b;
  struct mg_jw w;
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  mg_jw_obj(&w);
  mg_jw_key(&w, "all");
  mg_jw_strn(&w, all, sizeof(all));
  mg_jw_kstr(&w, "emoji \xF0\x9F\x98\x80",
             "\xE7\xAA\x93\xE5\x8F\xA3 \xF0\x9F\x98\x80");
  mg_jw_kint(&w, "min", INT64_MIN);
  mg_jw_kint(&w, "max", INT64_MAX);
  mg_jw_key(&w, "dbl");
  mg_jw_arr(&w);
  for (size_t i = 0; i < nd; i++)
    mg_jw_double(&w, dbl[i]);
  mg_jw_arr_end(&w);
  mg_jw_key(&w, "nested");
  mg_jw_arr(&w);
  mg_jw_obj(&w);
  mg_jw_kbool(&w, "t", 1);
  mg_jw_obj_end(&w);
  mg_jw_arr_end(&w);
  mg_jw_obj_end(&w);
  assert_false(w.bad);

  struct mg_json *v = NULL;
  struct mg_json_error e;
  int rc = parse_n(b.data, b.len, NULL, &v, &e);
  if (rc)
    fail_msg("writer output did not parse: %s\n%s", e.msg, b.data);
  const struct mg_json *s = mg_json_get(v, "all");
  assert_non_null(s);
  assert_int_equal(s->u.str.len, sizeof(all));
  assert_memory_equal(s->u.str.s, all, sizeof(all));
  assert_string_equal(mg_json_get_str(v, "emoji \xF0\x9F\x98\x80"),
                      "\xE7\xAA\x93\xE5\x8F\xA3 \xF0\x9F\x98\x80");
  int64_t i64;
  assert_int_equal(mg_json_get_int(v, "min", &i64), 0);
  assert_true(i64 == INT64_MIN);
  assert_int_equal(mg_json_get_int(v, "max", &i64), 0);
  assert_true(i64 == INT64_MAX);
  const struct mg_json *d = mg_json_get(v, "dbl");
  assert_int_equal(d->u.arr.n, nd);
  for (size_t i = 0; i < nd; i++) {
    double got = d->u.arr.items[i]->u.num.d;
    if (memcmp(&got, &dbl[i], sizeof(got)) != 0)
      fail_msg("double %zu: wrote %.17g, read %.17g", i, dbl[i], got);
  }
  assert_int_equal(
      mg_json_get_bool(mg_json_get(v, "nested")->u.arr.items[0], "t"), 1);
  mg_json_free(v);

  /* parse -> write -> identical text for a canonical document */
  const char *canon =
      "{\"a\":[1,-2,3.5,true,false,null,\"x\\ny\"],\"b\":{\"c\":{}},\"d\":[]}";
  v = parse_ok(canon);
  mg_buf_reset(&b);
  mg_jw_init(&w, &b);
  mg_jw_obj(&w);
  for (size_t i = 0; i < v->u.obj.n; i++) {
    const struct mg_json_member *m = &v->u.obj.members[i];
    mg_jw_key(&w, m->key);
    if (m->value->type == MG_JSON_ARRAY && m->value->u.arr.n) {
      mg_jw_arr(&w);
      for (size_t j = 0; j < m->value->u.arr.n; j++) {
        const struct mg_json *it = m->value->u.arr.items[j];
        switch (it->type) {
        case MG_JSON_NUMBER:
          if (it->u.num.is_int)
            mg_jw_int(&w, it->u.num.i);
          else
            mg_jw_double(&w, it->u.num.d);
          break;
        case MG_JSON_TRUE:
        case MG_JSON_FALSE:
          mg_jw_bool(&w, it->type == MG_JSON_TRUE);
          break;
        case MG_JSON_STRING:
          mg_jw_strn(&w, it->u.str.s, it->u.str.len);
          break;
        default:
          mg_jw_null(&w);
        }
      }
      mg_jw_arr_end(&w);
    } else if (m->value->type == MG_JSON_ARRAY) {
      mg_jw_raw(&w, "[]");
    } else {
      mg_jw_raw(&w, "{\"c\":{}}");
    }
  }
  mg_jw_obj_end(&w);
  assert_false(w.bad);
  assert_string_equal(b.data, canon);
  mg_json_free(v);
  mg_buf_free(&b);
}

/* The error struct is cleared on success and err may be NULL. */
static void test_error_struct(void **state) {
  (void)state;
  struct mg_json *v = NULL;
  struct mg_json_error e;
  memset(&e, 'x', sizeof(e));
  assert_int_equal(parse_n("[1]", 3, NULL, &v, &e), 0);
  assert_string_equal(e.msg, "");
  assert_int_equal(e.line, 0);
  mg_json_free(v);
  assert_int_equal(parse_n("[1,]", 4, NULL, &v, NULL), -EINVAL);
  assert_null(v);
  /* offsets, lines and CRLF: \r is an ordinary byte on its line */
  const char *s = "{\r\n\"a\":1,\r\n\"a\":2}";
  assert_int_equal(parse_n(s, strlen(s), NULL, &v, &e), -EINVAL);
  assert_int_equal(e.offset, 11);
  assert_int_equal(e.line, 3);
  assert_int_equal(e.col, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scalars),
      cmocka_unit_test(test_numbers),
      cmocka_unit_test(test_containers),
      cmocka_unit_test(test_strings),
      cmocka_unit_test(test_lookups),
      cmocka_unit_test(test_not_nul_terminated),
      cmocka_unit_test(test_reject_structure),
      cmocka_unit_test(test_reject_comments_quotes),
      cmocka_unit_test(test_reject_numbers),
      cmocka_unit_test(test_reject_strings),
      cmocka_unit_test(test_duplicate_keys),
      cmocka_unit_test(test_depth_limit),
      cmocka_unit_test(test_size_limit),
      cmocka_unit_test(test_writer_basic),
      cmocka_unit_test(test_writer_escaping),
      cmocka_unit_test(test_writer_misuse),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_error_struct),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
