/*
 * test_jp.c — ISO dates, the legal age (the day before the birthday), the
 * 4/2 school-year cut-off, kana search keys and the Luhn check digit
 * (core/jp.h); for the forms (issue 5): 和暦 dates and era boundaries (F4,
 * jp-admin-data.md §3.1), check digits of 個人番号 and 住民票コード (I6),
 * folding of full-width input and フリガナ fields (F2).
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

/* ---------------------------------------------------------------------- */
/* F4: dates in 西暦 or 和暦                                                */

static void any_is(const char *in, const char *want) {
  struct mg_date d = {0, 0, 0};
  const char *why = "unset";
  int rc = mg_date_parse_any(in, &d, &why);
  char got[16] = "";
  if (rc == 0)
    mg_date_format(&d, got, sizeof(got));
  if (rc != 0 || strcmp(got, want) != 0 || why != NULL)
    fail_msg("parse_any(\"%s\") = %d %s (%s), want %s", in, rc, got,
             why ? why : "-", want);
}

static void any_refused(const char *in, const char *want_why) {
  struct mg_date d = {1, 2, 3};
  const char *why = NULL;
  int rc = mg_date_parse_any(in, &d, &why);
  if (rc != -EINVAL || !why || (want_why && strcmp(why, want_why) != 0))
    fail_msg("parse_any(\"%s\") = %d why \"%s\", want -EINVAL \"%s\"",
             in ? in : "(null)", rc, why ? why : "(null)",
             want_why ? want_why : "(any)");
  /* *out is left alone on failure */
  assert_int_equal(d.y, 1);
  assert_int_equal(d.m, 2);
  assert_int_equal(d.d, 3);
}

static const char UNREADABLE[] =
    "日付として読めません（例: 令和8年4月1日、2026-04-01）";

static void test_parse_any_forms(void **state) {
  (void)state;
  /* every form of the F4 list */
  any_is("2026-11-25", "2026-11-25");
  any_is("2026/11/25", "2026-11-25");
  any_is("2026.11.25", "2026-11-25");
  any_is("2026年11月25日", "2026-11-25");
  any_is("20261125", "2026-11-25");
  any_is("令和8年11月25日", "2026-11-25");
  any_is("令和元年5月1日", "2019-05-01");
  any_is("平成31年4月30日", "2019-04-30");
  any_is("昭和64年1月7日", "1989-01-07");
  any_is("R8.11.25", "2026-11-25");
  any_is("R8/11/25", "2026-11-25");
  any_is("r8-11-25", "2026-11-25");
  any_is("H31.4.30", "2019-04-30");
  any_is("S64.1.7", "1989-01-07");
  any_is("T15.12.25", "1926-12-25");
  any_is("M45.7.29", "1912-07-29");
  /* 1-digit and 0-padded months and days, spaces */
  any_is("2026-4-1", "2026-04-01");
  any_is("2026-04-01", "2026-04-01");
  any_is("R08.04.01", "2026-04-01");
  any_is("2026年4月1日", "2026-04-01");
  any_is("令和 8年 4月 1日", "2026-04-01");
  any_is("  2026-04-01\t", "2026-04-01");
  any_is("平成2年2月2日", "1990-02-02");
  any_is("h2.2.2", "1990-02-02");
  any_is("s20.8.15", "1945-08-15");
  any_is("t1.8.1", "1912-08-01");
  any_is("m6.1.1", "1873-01-01");
  /* the kanji era with separators, 元 in the short form, ligatures */
  any_is("令和8.11.25", "2026-11-25");
  any_is("平成31/4/30", "2019-04-30");
  any_is("R元.5.1", "2019-05-01");
  any_is("㋿8年11月25日", "2026-11-25");
  any_is("㍻31年4月30日", "2019-04-30");
  any_is("㍼64年1月7日", "1989-01-07");
  any_is("㍽15年12月25日", "1926-12-25");
  any_is("㍾45年7月30日", "1912-07-30");
  /* full-width digits, letters, separators and spaces */
  any_is("令和８年１１月２５日", "2026-11-25");
  any_is("２０２６－１１－２５", "2026-11-25");
  any_is("２０２６／１１／２５", "2026-11-25");
  any_is("Ｒ８．１１．２５", "2026-11-25");
  any_is("ｈ３１．４．３０", "2019-04-30");
  any_is("　２０２６年４月１日　", "2026-04-01");
  any_is("２０２６１１２５", "2026-11-25");
  any_is("2026ー11ー25", "2026-11-25"); /* ー between digits, as typed */
  /* 西暦 range */
  any_is("1868-01-01", "1868-01-01");
  any_is("9999-12-31", "9999-12-31");
  any_refused("1867-12-31", "1868年から9999年までの日付を入力してください");
  any_refused("18671231", "1868年から9999年までの日付を入力してください");
  any_refused("令和7982年1月1日",
              "1868年から9999年までの日付を入力してください");
  any_is("令和7981年12月31日", "9999-12-31");

  /* not dates at all */
  static const char *bad[] = {
      "",           "   ",          "令和",          "令和8年",
      "令和8年11月",  "2026-11",      "26-11-25",      "2026-11/25",
      "2026.11-25", "R8.11.25x",    "X8.11.25",      "令和八年一月一日",
      "2026年11月25", "202611250",   "2026112",       "R8..11.25",
      "R.8.11.25",  "R8",           "元年5月1日",     "R元年",
      "02026-11-25", "2026-011-25", "2026-11-025",   "R12345.1.1",
      "令和8年11月25日生", "2026-11-25 2026-11-25", "2026 11 25",
      "\xff",       "R 8.11.25",    "8.11.25",       "令和-8年1月1日",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    any_refused(bad[i], UNREADABLE);
  any_refused(NULL, UNREADABLE);
  struct mg_date d;
  assert_int_equal(mg_date_parse_any("2026-11-25", NULL, NULL), -EINVAL);
  /* why may be NULL */
  assert_int_equal(mg_date_parse_any("2026-02-30", &d, NULL), -EINVAL);
  assert_int_equal(mg_date_parse_any("2026-02-28", &d, NULL), 0);
  /* too long to be a date, even after folding */
  char longs[300];
  memset(longs, ' ', sizeof(longs) - 11);
  strcpy(longs + sizeof(longs) - 11, "2026-11-25");
  any_is(longs, "2026-11-25"); /* surrounding spaces do not count */
  memset(longs, '1', sizeof(longs) - 1);
  longs[sizeof(longs) - 1] = '\0';
  any_refused(longs, UNREADABLE);
}

static void test_parse_any_rules(void **state) {
  (void)state;
  /* era year 0, 元年 = 1 */
  any_refused("令和0年5月1日", "令和0年という年はありません（元年から）");
  any_refused("R0.5.1", "令和0年という年はありません（元年から）");
  any_refused("平成0年1月8日", "平成0年という年はありません（元年から）");
  any_refused("Ｓ０．１２．２５", "昭和0年という年はありません（元年から）");
  any_refused("大正00年8月1日", "大正0年という年はありません（元年から）");
  any_is("令和1年5月1日", "2019-05-01");
  any_is("令和元年12月31日", "2019-12-31");
  any_is("令和2年1月1日", "2020-01-01");
  any_is("平成元年1月8日", "1989-01-08");
  any_is("昭和元年12月25日", "1926-12-25");
  any_is("大正元年7月30日", "1912-07-30");
  /* 2月29日: leap years (4, not 100, 400) */
  any_is("2024-02-29", "2024-02-29");
  any_is("2000-02-29", "2000-02-29");
  any_is("令和6年2月29日", "2024-02-29");
  any_is("平成12年2月29日", "2000-02-29");
  any_refused("2023-02-29", "2月29日はうるう年にしかありません");
  any_refused("1900-02-29", "2月29日はうるう年にしかありません");
  any_refused("令和5年2月29日", "2月29日はうるう年にしかありません");
  any_refused("R7.2.29", "2月29日はうるう年にしかありません");
  /* days that no month has */
  any_refused("2026-02-30", "2月30日は存在しない日付です");
  any_refused("令和8年2月30日", "2月30日は存在しない日付です");
  any_refused("2024-02-31", "2月31日は存在しない日付です");
  any_refused("2026-04-31", "4月31日は存在しない日付です");
  any_refused("2026-06-31", "6月31日は存在しない日付です");
  any_refused("2026-09-31", "9月31日は存在しない日付です");
  any_refused("2026年11月31日", "11月31日は存在しない日付です");
  any_refused("2026-13-01", "月は1から12までです");
  any_refused("R8.0.1", "月は1から12までです");
  any_refused("2026-12-32", "日は1から31までです");
  any_refused("2026-12-00", "日は1から31までです");
  any_refused("20261200", "日は1から31までです");
  /* 明治 before the solar calendar: 旧暦 dates, refused even when they
   * would be real Gregorian days */
  static const char kyureki[] = "明治5年以前の和暦は旧暦の日付のため西暦に"
                                "換算できません（西暦で入力してください）";
  any_refused("明治元年1月1日", kyureki);
  any_refused("明治5年12月2日", kyureki);
  any_refused("M5.2.30", kyureki);
  any_is("明治6年1月1日", "1873-01-01");
  any_is("1872-12-31", "1872-12-31"); /* a 西暦 date is what it says */
}

struct boundary {
  const char *last_old;  /* the old era's last day, in that era */
  const char *after_old; /* the day after it, in the old era: refused */
  const char *why_after;
  const char *first_new;  /* the new era's first day */
  const char *before_new; /* the day before, in the new era: refused */
  const char *why_before;
  const char *iso_last, *iso_first; /* the same days in 西暦 */
  const char *fmt_last, *fmt_first; /* and as mg_wareki_format writes them */
};

/* jp-admin-data.md §3.1: 明治→大正 and 大正→昭和 share a day, which is
 * read in both eras and written in the new one. */
static const struct boundary BOUNDARIES[] = {
    {"平成31年4月30日", "平成31年5月1日", "平成は平成31年4月30日までです",
     "令和元年5月1日", "令和元年4月30日", "令和は令和元年5月1日からです",
     "2019-04-30", "2019-05-01", "平成31年4月30日", "令和元年5月1日"},
    {"昭和64年1月7日", "昭和64年1月8日", "昭和は昭和64年1月7日までです",
     "平成元年1月8日", "平成元年1月7日", "平成は平成元年1月8日からです",
     "1989-01-07", "1989-01-08", "昭和64年1月7日", "平成元年1月8日"},
    {"大正15年12月25日", "大正15年12月26日", "大正は大正15年12月25日までです",
     "昭和元年12月25日", "昭和元年12月24日", "昭和は昭和元年12月25日からです",
     "1926-12-25", "1926-12-25", "昭和元年12月25日", "昭和元年12月25日"},
    {"明治45年7月30日", "明治45年7月31日", "明治は明治45年7月30日までです",
     "大正元年7月30日", "大正元年7月29日", "大正は大正元年7月30日からです",
     "1912-07-30", "1912-07-30", "大正元年7月30日", "大正元年7月30日"},
};

static void wareki_is(const char *iso, enum mg_wareki_style style,
                      const char *want) {
  struct mg_date d = D(iso);
  char buf[64];
  int n = mg_wareki_format(&d, style, buf, sizeof(buf));
  if (n < 0 || strcmp(buf, want) != 0 || (size_t)n != strlen(want))
    fail_msg("wareki(%s, %d) = %d \"%s\", want \"%s\"", iso, (int)style, n,
             buf, want);
}

static void test_era_boundaries(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(BOUNDARIES) / sizeof(BOUNDARIES[0]); i++) {
    const struct boundary *b = &BOUNDARIES[i];
    any_is(b->last_old, b->iso_last);
    any_refused(b->after_old, b->why_after);
    any_is(b->first_new, b->iso_first);
    any_refused(b->before_new, b->why_before);
    wareki_is(b->iso_last, MG_WAREKI_LONG, b->fmt_last);
    wareki_is(b->iso_first, MG_WAREKI_LONG, b->fmt_first);
  }
  /* the days either side, written */
  wareki_is("2019-04-30", MG_WAREKI_SHORT, "H31.4.30");
  wareki_is("2019-05-01", MG_WAREKI_SHORT, "R1.5.1");
  wareki_is("1989-01-07", MG_WAREKI_SHORT, "S64.1.7");
  wareki_is("1989-01-08", MG_WAREKI_SHORT, "H1.1.8");
  wareki_is("1926-12-24", MG_WAREKI_LONG, "大正15年12月24日");
  wareki_is("1926-12-24", MG_WAREKI_SHORT, "T15.12.24");
  wareki_is("1926-12-25", MG_WAREKI_SHORT, "S1.12.25");
  wareki_is("1912-07-29", MG_WAREKI_LONG, "明治45年7月29日");
  wareki_is("1912-07-29", MG_WAREKI_SHORT, "M45.7.29");
  wareki_is("1912-07-30", MG_WAREKI_SHORT, "T1.7.30");
  /* 明治's first day (1868-01-25) and the day before it */
  wareki_is("1868-01-25", MG_WAREKI_LONG, "明治元年1月25日");
  wareki_is("1873-01-01", MG_WAREKI_LONG, "明治6年1月1日");
  struct mg_date d = D("1868-01-24");
  char buf[64] = "x";
  assert_int_equal(mg_wareki_format(&d, MG_WAREKI_LONG, buf, sizeof(buf)),
                   -EINVAL);
  assert_string_equal(buf, "");
}

static void test_wareki_format(void **state) {
  (void)state;
  wareki_is("2026-11-25", MG_WAREKI_LONG, "令和8年11月25日");
  wareki_is("2026-11-25", MG_WAREKI_SHORT, "R8.11.25");
  wareki_is("2026-11-25", MG_WAREKI_YEAR, "令和8年");
  wareki_is("2026-04-01", MG_WAREKI_SHORT, "R8.4.1");
  wareki_is("2019-12-31", MG_WAREKI_YEAR, "令和元年");
  wareki_is("2020-01-01", MG_WAREKI_YEAR, "令和2年");
  wareki_is("1989-12-31", MG_WAREKI_YEAR, "平成元年");
  wareki_is("1945-08-15", MG_WAREKI_LONG, "昭和20年8月15日");
  wareki_is("2024-02-29", MG_WAREKI_LONG, "令和6年2月29日");
  /* the longest output fits in 32 bytes */
  wareki_is("9999-12-31", MG_WAREKI_LONG, "令和7981年12月31日");
  struct mg_date d = D("9999-12-31");
  char buf[32];
  int n = mg_wareki_format(&d, MG_WAREKI_LONG, buf, sizeof(buf));
  assert_true(n > 0 && n < 32);
  /* buf too small: exactly n+1 fits, n does not */
  d = D("2026-11-25");
  n = (int)strlen("令和8年11月25日");
  assert_int_equal(mg_wareki_format(&d, MG_WAREKI_LONG, buf, (size_t)n + 1), n);
  assert_string_equal(buf, "令和8年11月25日");
  assert_int_equal(mg_wareki_format(&d, MG_WAREKI_LONG, buf, (size_t)n),
                   -EINVAL);
  assert_string_equal(buf, "");
  assert_int_equal(mg_wareki_format(&d, MG_WAREKI_SHORT, buf, 1), -EINVAL);
  assert_int_equal(mg_wareki_format(&d, MG_WAREKI_SHORT, buf, 0), -EINVAL);
  assert_int_equal(mg_wareki_format(&d, MG_WAREKI_SHORT, NULL, 32), -EINVAL);
  assert_int_equal(mg_wareki_format(NULL, MG_WAREKI_SHORT, buf, 32), -EINVAL);
  assert_int_equal(mg_wareki_format(&d, (enum mg_wareki_style)7, buf, 32),
                   -EINVAL);
  /* not real dates */
  static const struct mg_date bad[] = {
      {2023, 2, 29}, {2026, 4, 31}, {2026, 13, 1}, {2026, 0, 1},
      {2026, 1, 0},  {10000, 1, 1}, {1867, 12, 31}, {0, 0, 0},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (mg_wareki_format(&bad[i], MG_WAREKI_LONG, buf, sizeof(buf)) != -EINVAL)
      fail_msg("bad date #%zu formatted as %s", i, buf);
}

/* The era of a day by the reference's table of first days, kept apart
 * from jp.c's own. */
static const char *era_of(const struct mg_date *d) {
  static const struct {
    struct mg_date first;
    const char *name;
  } firsts[] = {{{2019, 5, 1}, "令和"}, {{1989, 1, 8}, "平成"},
                {{1926, 12, 25}, "昭和"}, {{1912, 7, 30}, "大正"},
                {{1868, 1, 25}, "明治"}};
  for (size_t i = 0; i < sizeof(firsts) / sizeof(firsts[0]); i++)
    if (mg_date_cmp(d, &firsts[i].first) >= 0)
      return firsts[i].name;
  return NULL;
}

static void test_wareki_round_trip(void **state) {
  (void)state;
  struct mg_date d = D("1873-01-01"), end = D("2100-12-31");
  struct mg_date back = {0, 0, 0};
  static const enum mg_wareki_style styles[] = {MG_WAREKI_LONG,
                                                MG_WAREKI_SHORT};
  long days = 0;
  char buf[32];
  for (; mg_date_cmp(&d, &end) <= 0; mg_date_add_days(&d, 1), days++) {
    for (size_t s = 0; s < 2; s++) {
      int n = mg_wareki_format(&d, styles[s], buf, sizeof(buf));
      const char *why = NULL;
      if (n <= 0 || mg_date_parse_any(buf, &back, &why) != 0 ||
          mg_date_cmp(&back, &d) != 0)
        fail_msg("%d-%02d-%02d style %zu: \"%s\" -> %d-%02d-%02d (%s)", d.y,
                 d.m, d.d, s, buf, back.y, back.m, back.d, why ? why : "-");
    }
    /* the LONG form names the era the reference gives */
    const char *era = era_of(&d);
    assert_non_null(era);
    assert_true(mg_wareki_format(&d, MG_WAREKI_LONG, buf, sizeof(buf)) > 0);
    if (strncmp(buf, era, strlen(era)) != 0)
      fail_msg("%d-%02d-%02d is %s, want %s", d.y, d.m, d.d, buf, era);
  }
  /* 1873-01-01..2100-12-31: 228 years, 55 of them leap */
  assert_int_equal(days, 228L * 365 + 55);
}

/* ---------------------------------------------------------------------- */
/* I6: check digits, computed here from the published formula             */

/* 番号法施行令8条 / 総務省令85号5条, and the same rule on the 10 digits of a
 * 住民票コード (住基法施行規則1条): weights written left to right, the
 * way the 告示 table is read, rather than jp.c's right-to-left loop. */
static int formula_digit(const char *body, size_t n) {
  static const int w11[11] = {6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2};
  const int *w = w11 + (11 - n); /* a 10-digit body drops the leftmost weight */
  int sum = 0;
  for (size_t i = 0; i < n; i++)
    sum += (body[i] - '0') * w[i];
  return sum % 11 <= 1 ? 0 : 11 - sum % 11;
}

/* Fictional bodies from a small LCG, so the test needs no real numbers. */
static void make_number(unsigned *seed, size_t body_len, char *out) {
  for (size_t i = 0; i < body_len; i++) {
    *seed = *seed * 1103515245u + 12345u;
    out[i] = (char)('0' + (*seed >> 16) % 10);
  }
  out[body_len] = (char)('0' + formula_digit(out, body_len));
  out[body_len + 1] = '\0';
}

static void check_family(bool (*ok)(const char *), size_t len) {
  unsigned seed = 20261125u;
  char s[16], t[16];
  int zero_checks = 0, blind = 0;
  for (int k = 0; k < 300; k++) {
    make_number(&seed, len - 1, s);
    if (!ok(s))
      fail_msg("valid %s refused", s);
    for (size_t i = 0; i < len; i++)
      for (char c = '0'; c <= '9'; c++) {
        if (c == s[i])
          continue;
        strcpy(t, s);
        t[i] = c;
        bool want = formula_digit(t, len - 1) == t[len - 1] - '0';
        if (ok(t) != want)
          fail_msg("%s: %d, formula says %d", t, ok(t), want);
        /* a change is missed only when the check digit is 0 (remainders
         * 0 and 1 both give 0) and the change moves one to the other */
        if (want && (s[len - 1] != '0' || i == len - 1))
          fail_msg("change %s of %s not caught", t, s);
        blind += want;
      }
    zero_checks += s[len - 1] == '0';
  }
  assert_true(zero_checks > 0); /* the blind spot was exercised */
  assert_true(blind > 0 && blind <= zero_checks * (int)(len - 1));
}

static void test_check_digits(void **state) {
  (void)state;
  /* worked by hand: 12345678901 → Σ = 212, 212 mod 11 = 3, 11 - 3 = 8 */
  assert_true(mg_mynumber_ok("123456789018"));
  assert_false(mg_mynumber_ok("123456789010"));
  /* 1234567890 → Σ = 195, 195 mod 11 = 8, 11 - 8 = 3 */
  assert_true(mg_resident_code_ok("12345678903"));
  assert_false(mg_resident_code_ok("12345678900"));
  /* all zeros: remainder 0 gives 0 */
  assert_true(mg_mynumber_ok("000000000000"));
  assert_true(mg_resident_code_ok("00000000000"));
  check_family(mg_mynumber_ok, 12);
  check_family(mg_resident_code_ok, 11);
  /* only exactly 12 / 11 ASCII digits */
  static const char *bad12[] = {
      "12345678901",   "1234567890180", "1234 5678 9018", "1234-5678-9018",
      "１２３４５６７８９０１８", "12345678901a", " 123456789018", "",
      "123456789018 ",
  };
  for (size_t i = 0; i < sizeof(bad12) / sizeof(bad12[0]); i++)
    if (mg_mynumber_ok(bad12[i]))
      fail_msg("\"%s\" accepted as 個人番号", bad12[i]);
  assert_false(mg_mynumber_ok(NULL));
  static const char *bad11[] = {"1234567890", "123456789030", "1234567890a",
                                "12345-67890-3", ""};
  for (size_t i = 0; i < sizeof(bad11) / sizeof(bad11[0]); i++)
    if (mg_resident_code_ok(bad11[i]))
      fail_msg("\"%s\" accepted as 住民票コード", bad11[i]);
  assert_false(mg_resident_code_ok(NULL));
  /* a 住民票コード is not a 個人番号 and the other way round */
  assert_false(mg_mynumber_ok("12345678903"));
  assert_false(mg_resident_code_ok("123456789018"));
}

/* ---------------------------------------------------------------------- */
/* Folding (I6) and フリガナ (F2)                                           */

static void fold_is(const char *in, const char *want) {
  char buf[256];
  int n = mg_fold_ascii(in, buf, sizeof(buf));
  if (n < 0 || strcmp(buf, want) != 0 || (size_t)n != strlen(want))
    fail_msg("fold(\"%s\") = %d \"%s\", want \"%s\"", in, n, buf, want);
}

static void test_fold(void **state) {
  (void)state;
  fold_is("０１２３４５６７８９", "0123456789");
  fold_is("ＡＢＣｘｙｚ！＃（）～", "ABCxyz!#()~");
  fold_is("〒７４５－０００４", "〒745-0004");
  fold_is("　 ７４５－０００４ \t　", "745-0004");
  fold_is("1234　5678　9018", "1234 5678 9018");
  fold_is("1234\t5678", "1234\t5678");
  /* dashes typed by IMEs */
  fold_is("0834‐22‐8211", "0834-22-8211");   /* U+2010 */
  fold_is("0834―22―8211", "0834-22-8211");   /* U+2015 */
  fold_is("0834−22−8211", "0834-22-8211");   /* U+2212 */
  fold_is("0834–22—8211", "0834-22-8211");   /* U+2013, U+2014 */
  /* ー and ｰ only between digits */
  fold_is("０８３４ー２２ー８２１１", "0834-22-8211");
  fold_is("0834ｰ22ｰ8211", "0834-22-8211");
  fold_is("ラーメン", "ラーメン");
  fold_is("1ー", "1ー");
  fold_is("ー1", "ー1");
  fold_is("1 ー2", "1 ー2");
  fold_is("１ーＡ", "1ーA");
  fold_is("山田　太郎", "山田 太郎");
  fold_is("", "");
  fold_is("　 \t", "");
  fold_is("😀１", "😀1");
  /* limits: the NUL needs a byte; trailing spaces need none */
  char buf[8];
  assert_int_equal(mg_fold_ascii("１２３", buf, 4), 3);
  assert_string_equal(buf, "123");
  assert_int_equal(mg_fold_ascii("１２３", buf, 3), -1);
  assert_string_equal(buf, "");
  assert_int_equal(mg_fold_ascii("12　　　　　", buf, 3), 2);
  assert_string_equal(buf, "12");
  assert_int_equal(mg_fold_ascii("1    2", buf, 4), -1);
  assert_int_equal(mg_fold_ascii("1  2", buf, 5), 4);
  assert_int_equal(mg_fold_ascii("1", buf, 0), -1);
  assert_int_equal(mg_fold_ascii(NULL, buf, sizeof(buf)), -1);
  assert_int_equal(mg_fold_ascii("1", NULL, 8), -1);
  static const char *bad[] = {"\x80", "１\xe3\x81", "\xc0\xaf", "\xed\xa0\x80",
                              "12\xff"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    strcpy(buf, "x");
    if (mg_fold_ascii(bad[i], buf, sizeof(buf)) != -1)
      fail_msg("bad UTF-8 #%zu folded", i);
    assert_string_equal(buf, "");
  }
}

static void kana_is(const char *in, const char *want) {
  char buf[256];
  int n = mg_kana_field(in, buf, sizeof(buf));
  if (n < 0 || strcmp(buf, want) != 0 || (size_t)n != strlen(want))
    fail_msg("kana_field(\"%s\") = %d \"%s\", want \"%s\"", in, n, buf, want);
}

static void kana_refused(const char *in, int want) {
  char buf[256] = "x";
  int n = mg_kana_field(in, buf, sizeof(buf));
  if (n != want || buf[0] != '\0')
    fail_msg("kana_field(\"%s\") = %d \"%s\", want %d", in ? in : "(null)", n,
             buf, want);
}

static void test_kana_field(void **state) {
  (void)state;
  kana_is("やまだ　たろう", "ヤマダ　タロウ");
  kana_is("ヤマダ タロウ", "ヤマダ　タロウ");
  kana_is("ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダ　タロウ");
  kana_is("  やまだ \t　 たろう　", "ヤマダ　タロウ");
  kana_is("ヤマダ", "ヤマダ");
  /* dakuten and handakuten */
  kana_is("ｶﾞ", "ガ");
  kana_is("ﾊﾟ", "パ");
  kana_is("ｶﾞｷﾞｸﾞｹﾞｺﾞ ﾊﾞﾋﾟﾌﾞﾍﾟﾎﾞ", "ガギグゲゴ　バピブペボ");
  kana_is("ｳﾞｧｲｵﾘﾝ", "ヴァイオリン");
  kana_is("ゔぁいおりん", "ヴァイオリン");
  kana_is("か\xe3\x82\x99", "ガ");  /* U+3099 */
  kana_is("ハ\xe3\x82\x9a", "パ");  /* U+309A */
  kana_is("ハ゜", "パ");            /* U+309C */
  kana_is("カ゛", "ガ");            /* U+309B */
  kana_is("ｦﾞ", "ヺ");
  /* ー, ・, small kana, iteration marks */
  kana_is("ﾗｰﾒﾝ", "ラーメン");
  kana_is("じょん・すみす", "ジョン・スミス");
  kana_is("ｼﾞｮﾝ･ｽﾐｽ", "ジョン・スミス");
  kana_is("ｷｮｳｺ", "キョウコ");
  kana_is("ぁぃぅぇぉっゃゅょゎゕゖ", "ァィゥェォッャュョヮヵヶ");
  kana_is("さゝき", "サヽキ");
  kana_is("ㇰㇷ゚", "ㇰㇷ゚"); /* Ainu small kana: ㇷ + U+309A, no precomposed */
  kana_is("ㇷﾟ", "ㇷ゚");
  kana_is("", "");
  kana_is(" 　 ", "");
  /* not kana: -2 */
  kana_refused("山田　太郎", -2);
  kana_refused("ヤマダ1", -2);
  kana_refused("ＹＡＭＡＤＡ", -2);
  kana_refused("yamada", -2);
  kana_refused("ヤマダ。", -2);
  kana_refused("ｱﾞ", -2);      /* no voiced ア */
  kana_refused("ﾞｶ", -2);      /* a mark joins nothing */
  kana_refused("ｶ ﾞ", -2);     /* not across a space */
  kana_refused("ㇷﾞ", -2);     /* ㇷ takes only the semi-voiced mark */
  kana_refused("ガ゛", -2);     /* no second mark */
  kana_is("ヤマダ\nタロウ", "ヤマダ　タロウ"); /* any space, as the rule says */
}

static void test_kana_field_limits(void **state) {
  (void)state;
  char buf[16];
  /* "ヤマダ　タロウ" is 21 bytes; "パン" 6: 7 fit with the NUL, 6 do not */
  assert_int_equal(mg_kana_field("ﾊﾟﾝ", buf, 7), 6);
  assert_string_equal(buf, "パン");
  assert_int_equal(mg_kana_field("ﾊﾟﾝ", buf, 6), -1);
  assert_string_equal(buf, "");
  /* the word gap counts; trailing spaces do not */
  assert_int_equal(mg_kana_field("ア イ", buf, 10), 9);
  assert_int_equal(mg_kana_field("ア イ", buf, 9), -1);
  assert_int_equal(mg_kana_field("ア      ", buf, 4), 3);
  /* -2 wins over a small buf, wherever the kanji is */
  assert_int_equal(mg_kana_field("ヤマダタロウ山", buf, 4), -2);
  assert_int_equal(mg_kana_field("山ヤマダタロウ", buf, 4), -2);
  assert_int_equal(mg_kana_field("", buf, 1), 0);
  assert_int_equal(mg_kana_field("ア", buf, 0), -1);
  assert_int_equal(mg_kana_field("ア", NULL, 8), -1);
  kana_refused(NULL, -1);
  static const char *bad[] = {"\x80", "ア\xe3\x81", "\xc0\xaf",
                              "\xed\xa0\x80", "\xf4\x90\x80\x80",
                              "山\xff" /* invalid UTF-8 wins over kanji */};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    kana_refused(bad[i], -1);
}

static void test_utf8_chars(void **state) {
  (void)state;
  assert_int_equal(mg_utf8_chars(""), 0);
  assert_int_equal(mg_utf8_chars("abc"), 3);
  assert_int_equal(mg_utf8_chars("住所"), 2);
  assert_int_equal(mg_utf8_chars("ｶﾞ"), 2);
  assert_int_equal(mg_utf8_chars("😀a"), 2);
  assert_int_equal(mg_utf8_chars("葛\xf3\xa0\x84\x81"), 2); /* + IVS */
  assert_int_equal(mg_utf8_chars(NULL), -1);
  static const char *bad[] = {"\x80", "a\xe3\x81", "\xc0\xaf",
                              "\xe0\x80\xaf", "\xed\xa0\x80",
                              "\xf4\x90\x80\x80", "\xff", "ab\xf0\x9f\x98"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (mg_utf8_chars(bad[i]) != -1)
      fail_msg("bad UTF-8 #%zu counted", i);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse),       cmocka_unit_test(test_cmp_today),
      cmocka_unit_test(test_add_days),    cmocka_unit_test(test_age),
      cmocka_unit_test(test_grade),       cmocka_unit_test(test_kana),
      cmocka_unit_test(test_kana_limits), cmocka_unit_test(test_luhn),
      cmocka_unit_test(test_parse_any_forms),
      cmocka_unit_test(test_parse_any_rules),
      cmocka_unit_test(test_era_boundaries),
      cmocka_unit_test(test_wareki_format),
      cmocka_unit_test(test_wareki_round_trip),
      cmocka_unit_test(test_check_digits),
      cmocka_unit_test(test_fold),
      cmocka_unit_test(test_kana_field),
      cmocka_unit_test(test_kana_field_limits),
      cmocka_unit_test(test_utf8_chars),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
