/*
 * jp.h — small Japanese administrative rules shared by the guide, the
 * visits and the forms: dates (西暦 and 和暦), the legal age, school grades,
 * kana normalisation for search and for フリガナ fields, folding of
 * full-width input, and the check digits of procedure numbers, 個人番号 and
 * 住民票コード.  Pure functions, thread-safe, no allocation.
 */
#ifndef MG_JP_H
#define MG_JP_H
#include <stdbool.h>
#include <stddef.h>

struct mg_date {
  int y, m, d;
};

/* Parse a strict ISO date "YYYY-MM-DD" (real calendar date, year
 * 1868..9999).  0 or -EINVAL. */
int mg_date_parse(const char *s, struct mg_date *out);
/* "YYYY-MM-DD" into buf (>= 11 bytes). */
void mg_date_format(const struct mg_date *d, char *buf, size_t len);
/* -1, 0, +1 */
int mg_date_cmp(const struct mg_date *a, const struct mg_date *b);
/* Today in the box's local time (Asia/Tokyo on the appliance). */
void mg_date_today(struct mg_date *out);
/* Add days (negative too). */
void mg_date_add_days(struct mg_date *d, int days);

/* Age on `on` by the legal rule (年齢計算ニ関スル法律 + 民法143条): a
 * year is reached at the end of the day before the birthday, so a person
 * born on 4/2 is a year older from 4/1; born 2/29, from 2/28 in common
 * years.  -1 when `on` is before `birth`. */
int mg_age_legal(const struct mg_date *birth, const struct mg_date *on);

/* School grade on `on` (学校教育法17条, 4/2 cut-off): 1..6 = 小1..小6,
 * 7..9 = 中1..中3, 10..12 = 高1..高3 (the age group, for 児童手当),
 * 0 or less = before 小1 (0 = the year before), 13+ after 高3. */
int mg_school_grade(const struct mg_date *birth, const struct mg_date *on);

/* Normalise a kana name for search: hiragana → katakana, half-width
 * katakana (with dakuten/handakuten combining) → full-width, full-width
 * ASCII → ASCII lower case, long vowel marks and small kana kept, and every
 * space (ASCII, U+3000, tabs) and middle dot (・, U+30FB, U+FF65) removed.
 * Output is NUL-terminated UTF-8 into buf; returns its length, or -1 when
 * buf is too small or the input is not valid UTF-8. */
int mg_kana_key(const char *in, char *buf, size_t len);

/* Procedure numbers: digits whose last is a Luhn check digit of the
 * others.  mg_luhn_digit: the check digit ('0'..'9') of `digits` (n
 * digits, no check digit); mg_luhn_ok: 1 when the whole string (digits
 * only, the last one the check digit, length >= 2) is valid. */
char mg_luhn_digit(const char *digits, size_t n);
int mg_luhn_ok(const char *s);

/* ---------------------------------------------------------------------- */
/* Forms (issue 5: F2, F4, F5, F7, I6)                                     */

/* F4: a date typed in 西暦 or 和暦 (s in, out out, *why out).  Full-width
 * digits, letters and separators are folded first (mg_fold_ascii) and
 * surrounding spaces ignored.  Accepted forms:
 *   2026-11-25  2026/11/25  2026.11.25  2026年11月25日  20261125
 *   令和8年11月25日  令和元年5月1日  平成31年4月30日  昭和64年1月7日
 *   R8.11.25  R8/11/25  r8-11-25  H31.4.30  S64.1.7  T15.12.25  M45.7.29
 * and also 令和８年１１月２５日, 令和8.11.25, R元.5.1, ㋿8年… (the era
 * ligatures), 1- or 2-digit months and days, spaces between the parts of
 * the 年月日 form.  A 西暦 year has 4 digits.
 * Strict: a real calendar date (2月30日 refused), era year >= 1 (令和0年
 * refused; 元年 = 1), the date inside its era (jp-admin-data.md §3.1:
 * 平成 ends 2019-04-30; on the shared first days 1912-07-30 and 1926-12-25
 * both 明治45年7月30日 / 大正元年7月30日 and 大正15年12月25日 / 昭和元年12月25日
 * are read), years 1868..9999.  和暦 dates before 明治6年1月1日 are refused:
 * they are 旧暦 (lunisolar) dates, which do not convert by the year offset.
 * Returns 0 (*why = NULL), or -EINVAL with *why (when why is not NULL) set
 * to a static Japanese sentence naming the rule, e.g.
 * 「2月30日は存在しない日付です」「令和0年という年はありません（元年から）」
 * 「平成は平成31年4月30日までです」「日付として読めません（例: 令和8年4月1日、2026-04-01）」.
 * *out is written only on success. */
int mg_date_parse_any(const char *s, struct mg_date *out, const char **why);

enum mg_wareki_style {
  MG_WAREKI_LONG = 0, /* 令和8年11月25日; 令和元年5月1日 for year 1 */
  MG_WAREKI_SHORT,    /* R8.11.25 (R1.5.1 for year 1) */
  MG_WAREKI_YEAR      /* 令和8年 */
};
/* Format a date (in) in the Japanese era into buf (out, NUL-terminated).
 * An era begins on its first day (1912-07-30 is 大正元年, 1926-12-25 昭和元年).
 * Dates from 明治's first day (1868-01-25, jp-admin-data.md §3.1) to
 * 1872-12-31 are written with the year offset on the Gregorian date, as
 * the usual libraries do (the 旧暦 date of that day differs).  Returns the
 * length, or -EINVAL for a date before 1868-01-25, after 9999-12-31 or not
 * a real date, or when buf is too small (>= 32 bytes is always enough);
 * buf is then "" when len > 0. */
int mg_wareki_format(const struct mg_date *d, enum mg_wareki_style style,
                     char *buf, size_t len);

/* I6: check digits (modulus 11, weights 2..7 then 2.. from the right,
 * remainder 0 or 1 giving 0).  個人番号: 番号法施行令8条 and 総務省令85号
 * 5条; 住民票コード: 住民基本台帳法施行規則1条 and 平成14年総務省告示436号.
 * s (in) must be exactly 12 (個人番号) / 11 (住民票コード) ASCII digits;
 * anything else, NULL included, is false. */
bool mg_mynumber_ok(const char *s);
bool mg_resident_code_ok(const char *s);

/* Fold full-width ASCII (U+FF01..FF5E) and U+3000 to ASCII, the dash
 * marks ‐ ‑ ‒ – — ― − ﹣ to '-', the long vowel marks ー and ｰ to '-' only
 * between two digits (ラーメン keeps its ー), and trim spaces (ASCII
 * whitespace, U+3000) at both ends; everything else is copied.  For
 * numbers, postal codes, phone numbers, 個人番号.  in (in) → buf (out,
 * NUL-terminated); returns its length, or -1 when buf is too small or in
 * is NULL or not valid UTF-8 (buf is then "" when len > 0). */
int mg_fold_ascii(const char *in, char *buf, size_t len);

/* Kana fields (フリガナ, F2): to full-width katakana — hiragana to
 * katakana, half-width katakana to full width, voicing marks (ﾞ ﾟ, U+3099
 * U+309A, ゛ ゜) joined to the kana before them, runs of any spaces (ASCII
 * whitespace, U+3000) to ONE U+3000 between words, trimmed at both ends;
 * ー, ・, ヽ ヾ and small kana (ㇰ..ㇿ too; ㇷ゚ keeps its combining mark)
 * kept.  in (in) → buf (out, NUL-terminated).
 * Returns the length; -1 when in is NULL or not valid UTF-8 or buf is too
 * small; -2 when a character other than kana, spaces, ー or ・ is present,
 * or a voicing mark that joins nothing (ｱﾞ) — the caller then says
 * 「カタカナで入力してください」.  -2 wins over a small buf.  buf is "" on
 * failure (when len > 0). */
int mg_kana_field(const char *in, char *buf, size_t len);

/* Characters (code points) of a UTF-8 string (in); -1 when s is NULL or
 * not valid UTF-8 (overlong forms, surrogates, > U+10FFFF refused). */
long mg_utf8_chars(const char *s);

#endif
