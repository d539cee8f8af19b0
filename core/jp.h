/*
 * jp.h — small Japanese administrative rules shared by the guide, the
 * visits and (later) the forms: dates, the legal age, school grades, kana
 * normalisation for search, and the procedure number's check digit.
 * Pure functions, thread-safe, no allocation unless said.
 */
#ifndef MG_JP_H
#define MG_JP_H
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

#endif
