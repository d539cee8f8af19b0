/*
 * test_jp.c — ISO dates, the legal age (the day before the birthday), the
 * 4/2 school-year cut-off, kana search keys and the Luhn check digit
 * (core/jp.h).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "jp.h"

static struct mg_date D(const char *s) {
  struct mg_date d = {0, 0, 0};
  if (mg_date_parse(s, &d))
    fail_msg("bad test date %s", s);
  return d;
}

static void assert_date(const struct mg_date *d, const char *want) {
  char buf[16];
  mg_date_format(d, buf, sizeof(buf));
  assert_string_equal(buf, want);
}

static void test_parse(void **state) {
  (void)state;
  struct mg_date d;
  assert_int_equal(mg_date_parse("2024-02-29", &d), 0);
  assert_int_equal(d.y, 2024);
  assert_int_equal(d.m, 2);
  assert_int_equal(d.d, 29);
  assert_date(&d, "2024-02-29");
  assert_int_equal(mg_date_parse("2000-02-29", &d), 0); /* 400 rule */
  assert_int_equal(mg_date_parse("1868-01-01", &d), 0);
  assert_int_equal(mg_date_parse("9999-12-31", &d), 0);
  static const char *bad[] = {
      "2023-02-29", "1900-02-29", "2024-04-31", "2024-13-01", "2024-00-10",
      "2024-01-00", "2024-1-01",  "2024-01-1",  "24-01-01",   "2024/01/01",
      "2024-01-01x", "2024-01-01 ", " 2024-01-01", "1867-12-31", "",
      "２０２４-01-01", "2024-0a-01", "+024-01-01",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (mg_date_parse(bad[i], &d) != -EINVAL)
      fail_msg("\"%s\" parsed", bad[i]);
  assert_int_equal(mg_date_parse(NULL, &d), -EINVAL);
}

static void test_cmp_today(void **state) {
  (void)state;
  struct mg_date a = D("2024-03-31"), b = D("2024-04-01"), t;
  assert_int_equal(mg_date_cmp(&a, &b), -1);
  assert_int_equal(mg_date_cmp(&b, &a), 1);
  assert_int_equal(mg_date_cmp(&a, &a), 0);
  a = D("2023-12-31");
  assert_int_equal(mg_date_cmp(&a, &b), -1);
  mg_date_today(&t);
  char buf[16];
  mg_date_format(&t, buf, sizeof(buf));
  assert_int_equal(mg_date_parse(buf, &a), 0); /* a real date */
  assert_true(t.y >= 2024);
}

static void add(const char *from, int days, const char *want) {
  struct mg_date d = D(from);
  mg_date_add_days(&d, days);
  assert_date(&d, want);
}

static void test_add_days(void **state) {
  (void)state;
  add("2024-01-31", 1, "2024-02-01");
  add("2024-02-28", 1, "2024-02-29");
  add("2024-02-29", 1, "2024-03-01");
  add("2023-02-28", 1, "2023-03-01");
  add("2023-12-31", 1, "2024-01-01");
  add("2024-01-01", -1, "2023-12-31");
  add("2024-03-01", -1, "2024-02-29");
  add("2100-03-01", -1, "2100-02-28"); /* not leap */
  add("2024-01-01", 366, "2025-01-01");
  add("2023-01-01", 365, "2024-01-01");
  add("2024-04-01", 0, "2024-04-01");
  add("1989-01-07", 1, "1989-01-08"); /* 昭和 → 平成 */
  add("2000-01-01", 36525, "2100-01-01");
  add("2100-01-01", -36525, "2000-01-01");
}

static int age(const char *birth, const char *on) {
  struct mg_date b = D(birth), o = D(on);
  return mg_age_legal(&b, &o);
}

static void test_age(void **state) {
  (void)state;
  assert_int_equal(age("2000-04-02", "2024-03-31"), 23);
  assert_int_equal(age("2000-04-02", "2024-04-01"), 24); /* the day before */
  assert_int_equal(age("2000-04-02", "2024-04-02"), 24);
  assert_int_equal(age("2000-04-01", "2024-03-30"), 23);
  assert_int_equal(age("2000-04-01", "2024-03-31"), 24);
  /* 1/1 births are a year older from 12/31 */
  assert_int_equal(age("2000-01-01", "2000-12-30"), 0);
  assert_int_equal(age("2000-01-01", "2000-12-31"), 1);
  /* 2/29 births: 2/28 in common and in leap years alike */
  assert_int_equal(age("2000-02-29", "2001-02-27"), 0);
  assert_int_equal(age("2000-02-29", "2001-02-28"), 1);
  assert_int_equal(age("2000-02-29", "2023-02-28"), 23);
  assert_int_equal(age("2000-02-29", "2024-02-27"), 23);
  assert_int_equal(age("2000-02-29", "2024-02-28"), 24);
  assert_int_equal(age("2000-02-29", "2024-02-29"), 24);
  /* 3/1 births: the day before is 2/29 in leap years */
  assert_int_equal(age("2000-03-01", "2024-02-28"), 23);
  assert_int_equal(age("2000-03-01", "2024-02-29"), 24);
  assert_int_equal(age("2000-03-01", "2023-02-28"), 23);
  /* birth date itself, and before birth */
  assert_int_equal(age("2024-05-10", "2024-05-10"), 0);
  assert_int_equal(age("2024-05-10", "2024-05-09"), -1);
  assert_int_equal(age("2024-05-10", "2023-12-31"), -1);
  /* 65 (介護保険) */
  assert_int_equal(age("1959-06-15", "2024-06-13"), 64);
  assert_int_equal(age("1959-06-15", "2024-06-14"), 65);
}

static int grade(const char *birth, const char *on) {
  struct mg_date b = D(birth), o = D(on);
  return mg_school_grade(&b, &o);
}

static void test_grade(void **state) {
  (void)state;
  /* the two checks of the reference notes */
  assert_int_equal(grade("2018-04-01", "2024-04-01"), 1);
  assert_int_equal(grade("2018-04-01", "2024-03-31"), 0);
  assert_int_equal(grade("2018-04-02", "2024-04-01"), 0);
  assert_int_equal(grade("2018-04-02", "2025-03-31"), 0);
  assert_int_equal(grade("2018-04-02", "2025-04-01"), 1);
  /* January births go with the April births of the year before */
  assert_int_equal(grade("2018-01-15", "2024-04-10"), 1);
  assert_int_equal(grade("2017-04-02", "2024-04-10"), 1);
  assert_int_equal(grade("2017-04-01", "2024-04-10"), 2);
  /* 小6 → 中1, 中3 boundary, 高 range and after */
  assert_int_equal(grade("2012-06-01", "2025-03-31"), 6);
  assert_int_equal(grade("2012-06-01", "2025-04-01"), 7);
  assert_int_equal(grade("2009-04-02", "2025-03-31"), 9);
  assert_int_equal(grade("2009-04-02", "2025-04-01"), 10);
  assert_int_equal(grade("2009-04-01", "2024-04-01"), 10);
  assert_int_equal(grade("2009-04-01", "2024-03-31"), 9);
  assert_int_equal(grade("2005-05-05", "2024-03-31"), 12);
  assert_int_equal(grade("2005-05-05", "2024-04-01"), 13);
  /* pre-school */
  assert_int_equal(grade("2019-04-02", "2024-04-01"), -1);
  assert_int_equal(grade("2019-04-01", "2024-04-01"), 0);
  assert_int_equal(grade("2024-01-01", "2024-04-01"), -5);
}

static void key_is(const char *in, const char *want) {
  char buf[256];
  int n = mg_kana_key(in, buf, sizeof(buf));
  if (n < 0 || strcmp(buf, want) != 0 || (size_t)n != strlen(want))
    fail_msg("key(\"%s\") = %d \"%s\", want \"%s\"", in, n, buf, want);
}

static void test_kana(void **state) {
  (void)state;
  /* the same name as it comes from the card, a clerk and a form */
  key_is("やまだ　たろう", "ヤマダタロウ");
  key_is("ヤマダ タロウ", "ヤマダタロウ");
  key_is("ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダタロウ");
  key_is("ヤマダタロウ", "ヤマダタロウ");
  key_is(" \tやまだ\t ﾀﾛｳ　", "ヤマダタロウ");
  key_is("ヤマダ・タロウ", "ヤマダタロウ");
  key_is("ﾔﾏﾀﾞ･ﾀﾛｳ", "ヤマダタロウ");
  /* dakuten and handakuten, half-width and combining */
  key_is("ﾊﾟﾝ", "パン");
  key_is("ﾊﾞﾋﾟﾌﾞﾍﾟﾎﾞ", "バピブペボ");
  key_is("ｶﾞｷﾞｸﾞｹﾞｺﾞｻﾞｼﾞｽﾞｾﾞｿﾞﾀﾞﾁﾞﾂﾞﾃﾞﾄﾞ", "ガギグゲゴザジズゼゾダヂヅデド");
  key_is("ｳﾞｧｲｵﾘﾝ", "ヴァイオリン");
  key_is("ゔぁいおりん", "ヴァイオリン");
  key_is("ｦﾞ", "ヺ");
  key_is("か\xe3\x82\x99", "ガ");  /* か + U+3099 */
  key_is("ハ\xe3\x82\x9a", "パ"); /* ハ + U+309A */
  key_is("ｱﾞ", "ア゛");            /* no voiced ア: the mark stays */
  key_is("ｶﾟ", "カ゜");
  key_is("ﾞｶ", "゛カ");
  key_is("ｶ ﾞ", "カ゛");            /* not across a space */
  /* small kana, long vowels and the rest kept */
  key_is("きょうこ", "キョウコ");
  key_is("ｷｮｳｺ", "キョウコ");
  key_is("ｯｧｨｩｪｫｬｭｮ", "ッァィゥェォャュョ");
  key_is("らーめん", "ラーメン");
  key_is("ﾗｰﾒﾝ", "ラーメン");
  key_is("ゝゞ", "ヽヾ");
  key_is("山田　太郎", "山田太郎");
  /* ASCII and full-width ASCII */
  key_is("ＹＡＭＡＤＡ　Ｔａｒｏ", "yamadataro");
  key_is("Yamada Taro", "yamadataro");
  key_is("ＡＢＣ１２３－", "abc123-");
  key_is("", "");
  key_is("　 ・", "");
  key_is("😀", "😀");
}

static void test_kana_limits(void **state) {
  (void)state;
  char buf[16];
  /* "パン" is 6 bytes: 7 fit with the NUL, 6 do not */
  assert_int_equal(mg_kana_key("ﾊﾟﾝ", buf, 7), 6);
  assert_string_equal(buf, "パン");
  assert_int_equal(mg_kana_key("ﾊﾟﾝ", buf, 6), -1);
  assert_string_equal(buf, "");
  assert_int_equal(mg_kana_key("ab", buf, 2), -1);
  assert_int_equal(mg_kana_key("ab", buf, 3), 2);
  assert_int_equal(mg_kana_key("", buf, 1), 0);
  assert_int_equal(mg_kana_key("a", buf, 0), -1);
  assert_int_equal(mg_kana_key(NULL, buf, sizeof(buf)), -1);
  /* invalid UTF-8: lone continuation, truncated, overlong, surrogate,
   * beyond U+10FFFF */
  static const char *bad[] = {
      "\x80",         "a\xe3\x81",    "\xe3\x81",     "\xc0\xaf",
      "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff",
      "やま\xe3",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    strcpy(buf, "x");
    if (mg_kana_key(bad[i], buf, sizeof(buf)) != -1)
      fail_msg("bad UTF-8 #%zu accepted", i);
    assert_string_equal(buf, "");
  }
}

static void test_luhn(void **state) {
  (void)state;
  assert_int_equal(mg_luhn_digit("7992739871", 10), '3');
  assert_int_equal(mg_luhn_ok("79927398713"), 1);
  assert_int_equal(mg_luhn_digit("", 0), '0');
  assert_int_equal(mg_luhn_digit("0", 1), '0');
  assert_int_equal(mg_luhn_digit("1", 1), '8');
  assert_int_equal(mg_luhn_digit("12a", 3), '\0');
  assert_int_equal(mg_luhn_ok("4539578763621486"), 1); /* a card test number */
  assert_int_equal(mg_luhn_ok("18"), 1);
  assert_int_equal(mg_luhn_ok("8"), 0);
  assert_int_equal(mg_luhn_ok(""), 0);
  assert_int_equal(mg_luhn_ok(NULL), 0);
  assert_int_equal(mg_luhn_ok("7992739871a"), 0);
  assert_int_equal(mg_luhn_ok("79927-398713"), 0);
  /* every single-digit change is caught */
  const char *good = "79927398713";
  char s[16];
  for (size_t i = 0; i < strlen(good); i++)
    for (char c = '0'; c <= '9'; c++) {
      if (c == good[i])
        continue;
      strcpy(s, good);
      s[i] = c;
      if (mg_luhn_ok(s))
        fail_msg("change %s not caught", s);
    }
  /* adjacent transpositions are caught, except 0<->9 (Luhn's blind spot) */
  for (size_t i = 0; i + 1 < strlen(good); i++) {
    strcpy(s, good);
    char t = s[i];
    s[i] = s[i + 1];
    s[i + 1] = t;
    if (s[i] == s[i + 1])
      continue;
    assert_int_equal(mg_luhn_ok(s), 0);
  }
  assert_int_equal(mg_luhn_ok("0901"), 1);
  assert_int_equal(mg_luhn_ok("9001"), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse),       cmocka_unit_test(test_cmp_today),
      cmocka_unit_test(test_add_days),    cmocka_unit_test(test_age),
      cmocka_unit_test(test_grade),       cmocka_unit_test(test_kana),
      cmocka_unit_test(test_kana_limits), cmocka_unit_test(test_luhn),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
