/*
 * test_tenant_retention.c — the city's retention as typed by a technician
 * (madoguchi-tenantd init-city / set-retention --retention; D1): what is
 * accepted, what is refused naming the rule, and how it is printed back.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tenant.h"

static void parse_ok(void **state) {
  static const struct {
    const char *in;
    int64_t secs;
  } cases[] = {
      {"1s", 1},           {"90m", 5400},          {"12h", 43200},
      {"30d", 2592000},    {"2w", 1209600},        {"3660d", 3660LL * 86400},
      {"007d", 7 * 86400},
  };
  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct mg_err err = {{0}};
    int64_t s = -1;
    assert_int_equal(mg_t_retention_parse(cases[i].in, &s, &err), 0);
    assert_int_equal(s, cases[i].secs);
  }
}

static void parse_refused(void **state) {
  static const char *const bad[] = {"", "d", "30", "0s", "0d", "-1d", "30 d",
                                    "30dd", "1.5d", "30D", "3661d", "524w",
                                    "9999999999999d", "1y"};
  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct mg_err err = {{0}};
    int64_t s = 42;
    assert_int_equal(mg_t_retention_parse(bad[i], &s, &err), -EINVAL);
    assert_int_equal(s, 42); /* untouched */
    assert_non_null(strstr(err.msg, "--retention"));
    assert_non_null(strstr(err.msg, "from 1s to 3660d"));
  }
  struct mg_err err = {{0}};
  int64_t s = 0;
  assert_int_equal(mg_t_retention_parse(NULL, &s, &err), -EINVAL);
}

static void format(void **state) {
  char out[32];
  (void)state;
  mg_t_retention_fmt(1, out);
  assert_string_equal(out, "1s");
  mg_t_retention_fmt(61, out);
  assert_string_equal(out, "61s");
  mg_t_retention_fmt(5400, out);
  assert_string_equal(out, "90m");
  mg_t_retention_fmt(43200, out);
  assert_string_equal(out, "12h");
  mg_t_retention_fmt(14 * 86400, out); /* days, not weeks */
  assert_string_equal(out, "14d");
  mg_t_retention_fmt(MG_T_RETENTION_DEFAULT, out);
  assert_string_equal(out, "30d");
  /* what is printed parses back to the same value */
  for (int64_t v = 1; v <= MG_T_RETENTION_MAX; v = v * 7 + 3) {
    struct mg_err err = {{0}};
    int64_t back = 0;
    mg_t_retention_fmt(v, out);
    assert_int_equal(mg_t_retention_parse(out, &back, &err), 0);
    assert_int_equal(back, v);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(parse_ok),
      cmocka_unit_test(parse_refused),
      cmocka_unit_test(format),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
