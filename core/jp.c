/*
 * jp.c — dates, legal age, school grades, kana search keys and the Luhn
 * check digit (jp.h); for the forms (issue 5: F2, F4, F5, F7, I6) 和暦
 * dates, the check digits of 個人番号 and 住民票コード, folding of
 * full-width input and フリガナ fields.
 */
#include "jp.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------------- */
/* Dates                                                                   */

static int is_leap(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int y, int m) {
  static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil): exact for any year, no table, no time_t. */
static long days_from_civil(int y, int m, int d) {
  long yy = (long)y - (m <= 2);
  long era = (yy >= 0 ? yy : yy - 399) / 400;
  long yoe = yy - era * 400;
  long doy = (153L * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void civil_from_days(long z, struct mg_date *out) {
  z += 719468;
  long era = (z >= 0 ? z : z - 146096) / 146097;
  long doe = z - era * 146097;
  long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  long mp = (5 * doy + 2) / 153;
  int d = (int)(doy - (153 * mp + 2) / 5 + 1);
  int m = (int)(mp < 10 ? mp + 3 : mp - 9);
  out->y = (int)(yoe + era * 400 + (m <= 2));
  out->m = m;
  out->d = d;
}

static int two_digits(const char *s) { return (s[0] - '0') * 10 + (s[1] - '0'); }

int mg_date_parse(const char *s, struct mg_date *out) {
  int rc = -EINVAL;
  if (!s || !out || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
    goto out;
  /* isdigit() would accept locale digits on some libcs; be exact */
  for (int i = 0; i < 10; i++)
    if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
      goto out;
  int y = two_digits(s) * 100 + two_digits(s + 2);
  int m = two_digits(s + 5);
  int d = two_digits(s + 8);
  /* 1868: the first year of Meiji, where the solar calendar's dates begin
   * to mean something in Japanese registers */
  if (y < 1868 || m < 1 || m > 12 || d < 1 || d > month_days(y, m))
    goto out;
  out->y = y;
  out->m = m;
  out->d = d;
  rc = 0;
out:
  return rc;
}

void mg_date_format(const struct mg_date *d, char *buf, size_t len) {
  if (!buf || len == 0)
    return;
  snprintf(buf, len, "%04d-%02d-%02d", d->y, d->m, d->d);
}

int mg_date_cmp(const struct mg_date *a, const struct mg_date *b) {
  if (a->y != b->y)
    return a->y < b->y ? -1 : 1;
  if (a->m != b->m)
    return a->m < b->m ? -1 : 1;
  if (a->d != b->d)
    return a->d < b->d ? -1 : 1;
  return 0;
}

void mg_date_today(struct mg_date *out) {
  time_t now = time(NULL);
  struct tm tm;
  /* localtime_r, not localtime: callers run on the loop and on workers */
  if (!localtime_r(&now, &tm)) {
    out->y = 1970;
    out->m = 1;
    out->d = 1;
    return;
  }
  out->y = tm.tm_year + 1900;
  out->m = tm.tm_mon + 1;
  out->d = tm.tm_mday;
}

void mg_date_add_days(struct mg_date *d, int days) {
  civil_from_days(days_from_civil(d->y, d->m, d->d) + days, d);
}

/* ---------------------------------------------------------------------- */
/* Age and school grade                                                    */

int mg_age_legal(const struct mg_date *birth, const struct mg_date *on) {
  if (mg_date_cmp(on, birth) < 0)
    return -1;
  /* A year is reached at the end of the day before the birthday, so on
   * `on` the person is as old as an ordinary birthday count says on the
   * day after.  This also settles 2/29: the day after 2/28 of a common
   * year is 3/1, which is past (2, 29). */
  struct mg_date next = *on;
  mg_date_add_days(&next, 1);
  int age = next.y - birth->y;
  if (next.m < birth->m || (next.m == birth->m && next.d < birth->d))
    age--;
  return age;
}

int mg_school_grade(const struct mg_date *birth, const struct mg_date *on) {
  /* Born up to 4/1: six years old by the end of 3/31, so school starts
   * the April of the sixth year; born from 4/2: a year later. */
  int entry = birth->y + ((birth->m < 4 || (birth->m == 4 && birth->d <= 1)) ? 6 : 7);
  /* the school year (年度) runs from 4/1 to 3/31 */
  int fiscal = on->m >= 4 ? on->y : on->y - 1;
  return fiscal - entry + 1;
}

/* ---------------------------------------------------------------------- */
/* Kana search keys                                                        */

/* Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
 * Returns the byte count, or 0 when `s` does not start a valid sequence. */
static int utf8_decode(const unsigned char *s, uint32_t *cp) {
  uint32_t c = s[0];
  int n;
  uint32_t min;
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    c &= 0x1F;
    min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    c &= 0x0F;
    min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    c &= 0x07;
    min = 0x10000;
  } else {
    return 0;
  }
  for (int i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80) /* the NUL terminator stops here too */
      return 0;
    c = (c << 6) | (s[i] & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
    return 0;
  *cp = c;
  return n;
}

static size_t utf8_encode(uint32_t c, char out[4]) {
  if (c < 0x80) {
    out[0] = (char)c;
    return 1;
  }
  if (c < 0x800) {
    out[0] = (char)(0xC0 | (c >> 6));
    out[1] = (char)(0x80 | (c & 0x3F));
    return 2;
  }
  if (c < 0x10000) {
    out[0] = (char)(0xE0 | (c >> 12));
    out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[2] = (char)(0x80 | (c & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (c >> 18));
  out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
  out[3] = (char)(0x80 | (c & 0x3F));
  return 4;
}

/* Half-width katakana U+FF66..U+FF9D as the low byte of U+30xx. */
static const unsigned char HALF_KANA[] = {
    0xF2, 0xA1, 0xA3, 0xA5, 0xA7, 0xA9, 0xE3, 0xE5, 0xE7, 0xC3, /* ｦｧｨｩｪｫｬｭｮｯ */
    0xFC, 0xA2, 0xA4, 0xA6, 0xA8, 0xAA, 0xAB, 0xAD, 0xAF, 0xB1, /* ｰｱｲｳｴｵｶｷｸｹ */
    0xB3, 0xB5, 0xB7, 0xB9, 0xBB, 0xBD, 0xBF, 0xC1, 0xC4, 0xC6, /* ｺｻｼｽｾｿﾀﾁﾂﾃ */
    0xC8, 0xCA, 0xCB, 0xCC, 0xCD, 0xCE, 0xCF, 0xD2, 0xD5, 0xD8, /* ﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍ */
    0xDB, 0xDE, 0xDF, 0xE0, 0xE1, 0xE2, 0xE4, 0xE6, 0xE8, 0xE9, /* ﾎﾏﾐﾑﾒﾓﾔﾕﾖﾗ */
    0xEA, 0xEB, 0xEC, 0xED, 0xEF, 0xF3,                         /* ﾘﾙﾚﾛﾜﾝ */
};

enum { MARK_NONE, MARK_VOICED, MARK_SEMI };

/* Which voicing mark `c` is: half-width (ﾞﾟ), combining (U+3099/309A) or
 * spacing (゛゜); all of them join the kana before them. */
static int voicing_mark(uint32_t c) {
  if (c == 0xFF9E || c == 0x3099 || c == 0x309B)
    return MARK_VOICED;
  if (c == 0xFF9F || c == 0x309A || c == 0x309C)
    return MARK_SEMI;
  return MARK_NONE;
}

/* The full-width katakana `base` with the mark, or 0 when it takes none. */
static uint32_t voice(uint32_t base, int mark) {
  /* ハヒフヘホ take both marks: +1 voiced, +2 semi-voiced */
  if (base >= 0x30CF && base <= 0x30DB && (base - 0x30CF) % 3 == 0)
    return base + (mark == MARK_SEMI ? 2 : 1);
  if (mark != MARK_VOICED)
    return 0;
  /* カ..チ: every other code point; ツテト: after the small ッ */
  if ((base >= 0x30AB && base <= 0x30C1 && (base - 0x30AB) % 2 == 0) ||
      base == 0x30C4 || base == 0x30C6 || base == 0x30C8)
    return base + 1;
  switch (base) {
  case 0x30A6: return 0x30F4; /* ウ → ヴ */
  case 0x30EF: return 0x30F7; /* ワ → ヷ */
  case 0x30F0: return 0x30F8; /* ヰ → ヸ */
  case 0x30F1: return 0x30F9; /* ヱ → ヹ */
  case 0x30F2: return 0x30FA; /* ヲ → ヺ */
  case 0x30FD: return 0x30FE; /* ヽ → ヾ */
  default: return 0;
  }
}

/* One input code point as it stands in a key; 0 when it is dropped. */
static uint32_t key_char(uint32_t c) {
  if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
      c == '\f' || c == 0x3000 || c == 0x30FB || c == 0xFF65)
    return 0;
  if (c >= 'A' && c <= 'Z')
    return c + ('a' - 'A');
  if (c >= 0xFF01 && c <= 0xFF5E) { /* full-width ASCII */
    c -= 0xFF01 - 0x21;
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
  }
  /* hiragana ぁ..ゖ (ゔ included) and the marks ゝゞ: katakana is 0x60 up */
  if ((c >= 0x3041 && c <= 0x3096) || c == 0x309D || c == 0x309E)
    return c + 0x60;
  if (c >= 0xFF66 && c <= 0xFF9D)
    return 0x3000 | HALF_KANA[c - 0xFF66];
  switch (c) {
  case 0xFF61: return 0x3002; /* ｡ */
  case 0xFF62: return 0x300C; /* ｢ */
  case 0xFF63: return 0x300D; /* ｣ */
  case 0xFF64: return 0x3001; /* ､ */
  case 0xFF9E: case 0x3099: return 0x309B; /* a mark left alone: ゛ */
  case 0xFF9F: case 0x309A: return 0x309C; /* ゜ */
  default: return c;
  }
}

int mg_kana_key(const char *in, char *buf, size_t len) {
  const unsigned char *p = (const unsigned char *)in;
  size_t used = 0;
  uint32_t pending = 0; /* the last kept character, held back for a mark */
  int rc = -1;
  if (!buf || len == 0)
    goto out;
  buf[0] = '\0';
  if (!in)
    goto out;
  for (;;) {
    uint32_t c = 0;
    int n = *p ? utf8_decode(p, &c) : 1;
    if (n == 0)
      goto out;
    int mark = *p ? voicing_mark(c) : MARK_NONE;
    uint32_t joined = mark && pending ? voice(pending, mark) : 0;
    if (joined) {
      pending = joined;
    } else {
      if (pending) {
        char enc[4];
        size_t k = utf8_encode(pending, enc);
        if (len - used <= k) /* keep a byte for the NUL */
          goto out;
        memcpy(buf + used, enc, k);
        used += k;
      }
      if (!*p)
        break;
      pending = key_char(c);
    }
    p += n;
  }
  buf[used] = '\0';
  rc = (int)used;
out:
  if (rc < 0 && buf && len > 0)
    buf[0] = '\0';
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Luhn                                                                    */

char mg_luhn_digit(const char *digits, size_t n) {
  int sum = 0;
  if (n > 0 && !digits)
    return '\0';
  /* the check digit goes on the right, so the rightmost digit here is
   * the first one doubled */
  for (size_t i = 0; i < n; i++) {
    char ch = digits[n - 1 - i];
    if (ch < '0' || ch > '9')
      return '\0';
    int v = ch - '0';
    if (i % 2 == 0) {
      v *= 2;
      if (v > 9)
        v -= 9;
    }
    sum += v;
  }
  return (char)('0' + (10 - sum % 10) % 10);
}

int mg_luhn_ok(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n < 2 || s[n - 1] < '0' || s[n - 1] > '9')
    return 0;
  char want = mg_luhn_digit(s, n - 1);
  return want != '\0' && want == s[n - 1];
}

/* ---------------------------------------------------------------------- */
/* UTF-8 length and folding of full-width input (I6, F4)                   */

long mg_utf8_chars(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  long n = -1;
  if (!s)
    goto out;
  for (n = 0; *p; n++) {
    uint32_t c;
    int k = utf8_decode(p, &c);
    if (k == 0) {
      n = -1;
      goto out;
    }
    p += k;
  }
out:
  return n;
}

static bool is_space_cp(uint32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f' || c == 0x3000;
}

static bool is_digit_cp(uint32_t c) { return c >= '0' && c <= '9'; }

/* One code point folded; the long vowel marks are left to the caller,
 * since they fold only between digits. */
static uint32_t fold_cp(uint32_t c) {
  if (c >= 0xFF01 && c <= 0xFF5E) /* full-width ASCII */
    return c - (0xFF01 - 0x21);
  if (c == 0x3000)
    return ' ';
  /* ‐ ‑ ‒ – — ―, minus sign, small hyphen-minus: typed for '-' by IMEs */
  if ((c >= 0x2010 && c <= 0x2015) || c == 0x2212 || c == 0xFE63)
    return '-';
  return c;
}

/* Append c to buf[0..len) keeping a byte for the NUL; false when full. */
static bool put_cp(char *buf, size_t len, size_t *used, uint32_t c) {
  char enc[4];
  size_t k = utf8_encode(c, enc);
  if (len - *used <= k)
    return false;
  memcpy(buf + *used, enc, k);
  *used += k;
  return true;
}

int mg_fold_ascii(const char *in, char *buf, size_t len) {
  const unsigned char *p = (const unsigned char *)in;
  size_t used = 0, keep = 0; /* keep: the length up to the last non-space */
  uint32_t prev = 0;         /* the last code point written */
  int rc = -1;
  if (!buf || len == 0)
    goto out;
  buf[0] = '\0';
  if (!in)
    goto out;
  while (*p) {
    uint32_t c;
    int n = utf8_decode(p, &c);
    if (n == 0)
      goto out;
    p += n;
    c = fold_cp(c);
    if (is_space_cp(c)) {
      /* leading spaces go; inner ones are written, trailing ones cut.
       * One that does not fit is dropped: no text fits after it either. */
      if (keep > 0 && len - used > 1)
        buf[used++] = (char)c;
      prev = c;
      continue;
    }
    if ((c == 0x30FC || c == 0xFF70) && is_digit_cp(prev)) {
      uint32_t next = 0;
      if (*p && utf8_decode(p, &next) && is_digit_cp(fold_cp(next)))
        c = '-'; /* 0120ー123ー456 */
    }
    if (!put_cp(buf, len, &used, c))
      goto out;
    keep = used;
    prev = c;
  }
  buf[keep] = '\0';
  rc = (int)keep;
out:
  if (rc < 0 && buf && len > 0)
    buf[0] = '\0';
  return rc;
}

/* ---------------------------------------------------------------------- */
/* フリガナ fields (F2)                                                     */

/* The full-width katakana that `c` stands for in a フリガナ, or 0 when it
 * is not kana (spaces and voicing marks are handled before). */
static uint32_t field_kana(uint32_t c) {
  if ((c >= 0x3041 && c <= 0x3096) || c == 0x309D || c == 0x309E)
    return c + 0x60; /* hiragana ぁ..ゖ, ゝゞ */
  if (c >= 0x30A1 && c <= 0x30FE)
    return c; /* katakana, ・ ー ヽ ヾ */
  if (c >= 0x31F0 && c <= 0x31FF)
    return c; /* small katakana ㇰ..ㇿ (Ainu names) */
  if (c >= 0xFF66 && c <= 0xFF9D)
    return 0x3000 | HALF_KANA[c - 0xFF66]; /* ｦ..ﾝ, ｰ included */
  if (c == 0xFF65)
    return 0x30FB; /* ･ */
  return 0;
}

int mg_kana_field(const char *in, char *buf, size_t len) {
  const unsigned char *p = (const unsigned char *)in;
  size_t used = 0;
  uint32_t pending = 0; /* the last kana, held back for a voicing mark */
  bool gap = false;     /* spaces seen since the last kana */
  bool small = false;   /* buf is full; scanning goes on for -2 */
  int rc = -1;
  if (!buf || len == 0)
    goto out;
  buf[0] = '\0';
  if (mg_utf8_chars(in) < 0)
    goto out;
  for (;;) {
    uint32_t c = 0;
    int n = *p ? utf8_decode(p, &c) : 0; /* valid: checked above */
    int mark = *p ? voicing_mark(c) : MARK_NONE;
    if (mark) {
      uint32_t joined = pending ? voice(pending, mark) : 0;
      if (!joined && pending == 0x31F7 && mark == MARK_SEMI) {
        /* ㇷ゚ (Ainu) has no precomposed form: keep the combining mark */
        if (!small && !put_cp(buf, len, &used, pending))
          small = true;
        joined = 0x309A;
      }
      if (!joined) { /* ｱﾞ, a mark after a space or at the start */
        rc = -2;
        goto out;
      }
      pending = joined;
      p += n;
      continue;
    }
    if (pending && !small && !put_cp(buf, len, &used, pending))
      small = true;
    pending = 0;
    if (!*p)
      break;
    p += n;
    if (is_space_cp(c)) {
      gap = used > 0 || small;
      continue;
    }
    if (!(pending = field_kana(c))) {
      rc = -2;
      goto out;
    }
    if (gap && !small && !put_cp(buf, len, &used, 0x3000))
      small = true;
    gap = false;
  }
  if (small)
    goto out;
  buf[used] = '\0';
  rc = (int)used;
out:
  if (rc < 0 && buf && len > 0)
    buf[0] = '\0';
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Check digits of 個人番号 and 住民票コード (I6)                             */

/* n ASCII digits then the NUL; the last digit is 11 - (Σ Pn×Qn mod 11),
 * 0 when the remainder is 0 or 1, where Pn is the n-th digit of the body
 * counted from its right end and Qn = n+1 for n <= 6, n-5 above. */
static bool mod11_ok(const char *s, size_t n) {
  if (!s)
    return false;
  for (size_t i = 0; i < n; i++) /* stops at a short string's NUL */
    if (s[i] < '0' || s[i] > '9')
      return false;
  if (s[n] != '\0')
    return false;
  int sum = 0;
  for (size_t k = 1; k < n; k++)
    sum += (s[n - 1 - k] - '0') * (int)(k <= 6 ? k + 1 : k - 5);
  int r = sum % 11;
  return s[n - 1] - '0' == (r <= 1 ? 0 : 11 - r);
}

bool mg_mynumber_ok(const char *s) { return mod11_ok(s, 12); }

bool mg_resident_code_ok(const char *s) { return mod11_ok(s, 11); }

/* ---------------------------------------------------------------------- */
/* 和暦 (F4)                                                               */

struct era {
  const char *name;     /* 令和 */
  const char *ligature; /* ㋿ */
  char letter;          /* R */
  struct mg_date first, last;
  const char *why_zero, *why_before, *why_after;
};

/* jp-admin-data.md §3.1.  On the two shared days (1912-07-30,
 * 1926-12-25) a date is read in either era and written in the new one. */
static const struct era ERAS[] = {
    {"明治", "㍾", 'M', {1868, 1, 25}, {1912, 7, 30},
     "明治0年という年はありません（元年から）", "明治は明治元年1月25日からです",
     "明治は明治45年7月30日までです"},
    {"大正", "㍽", 'T', {1912, 7, 30}, {1926, 12, 25},
     "大正0年という年はありません（元年から）", "大正は大正元年7月30日からです",
     "大正は大正15年12月25日までです"},
    {"昭和", "㍼", 'S', {1926, 12, 25}, {1989, 1, 7},
     "昭和0年という年はありません（元年から）", "昭和は昭和元年12月25日からです",
     "昭和は昭和64年1月7日までです"},
    {"平成", "㍻", 'H', {1989, 1, 8}, {2019, 4, 30},
     "平成0年という年はありません（元年から）", "平成は平成元年1月8日からです",
     "平成は平成31年4月30日までです"},
    {"令和", "㋿", 'R', {2019, 5, 1}, {9999, 12, 31},
     "令和0年という年はありません（元年から）", "令和は令和元年5月1日からです",
     "1868年から9999年までの日付を入力してください"},
};
#define N_ERAS (sizeof(ERAS) / sizeof(ERAS[0]))

static const char WHY_UNREADABLE[] =
    "日付として読めません（例: 令和8年4月1日、2026-04-01）";
static const char WHY_KYUREKI[] = "明治5年以前の和暦は旧暦の日付のため西暦に換算"
                                 "できません（西暦で入力してください）";
static const char WHY_YEARS[] = "1868年から9999年までの日付を入力してください";
static const char WHY_MONTH[] = "月は1から12までです";
static const char WHY_DAY[] = "日は1から31までです";

/* d is past the month's last day (and 1..31, m 1..12) */
static const char *why_no_such_day(int m, int d) {
  switch (m * 100 + d) {
  case 229: return "2月29日はうるう年にしかありません";
  case 230: return "2月30日は存在しない日付です";
  case 231: return "2月31日は存在しない日付です";
  case 431: return "4月31日は存在しない日付です";
  case 631: return "6月31日は存在しない日付です";
  case 931: return "9月31日は存在しない日付です";
  case 1131: return "11月31日は存在しない日付です";
  default: return WHY_UNREADABLE;
  }
}

static bool eat(const char **p, const char *word) {
  size_t n = strlen(word);
  if (strncmp(*p, word, n) != 0)
    return false;
  *p += n;
  return true;
}

static void skip_spaces(const char **p) {
  while (**p == ' ' || **p == '\t')
    (*p)++;
}

/* 1..max ASCII digits into *v; returns the digit count, 0 when there is
 * none or more than max. */
static int digits(const char **p, int max, int *v) {
  int k = 0;
  *v = 0;
  while (**p >= '0' && **p <= '9') {
    if (++k > max)
      return 0;
    *v = *v * 10 + (**p - '0');
    (*p)++;
  }
  return k;
}

/* "M月D日" or "<sep>M<sep>D" after a year, to the end of the text. */
static bool month_day(const char **p, bool kanji, int *m, int *d) {
  if (kanji) {
    skip_spaces(p);
    if (!digits(p, 2, m))
      return false;
    skip_spaces(p);
    if (!eat(p, "月"))
      return false;
    skip_spaces(p);
    if (!digits(p, 2, d))
      return false;
    skip_spaces(p);
    if (!eat(p, "日"))
      return false;
  } else {
    char sep = **p;
    if (sep != '-' && sep != '/' && sep != '.')
      return false;
    (*p)++;
    if (!digits(p, 2, m) || **p != sep)
      return false;
    (*p)++;
    if (!digits(p, 2, d))
      return false;
  }
  return **p == '\0';
}

/* The era named at *p (kanji, ligature or letter before a year), or NULL. */
static const struct era *era_at(const char **p) {
  for (size_t i = 0; i < N_ERAS; i++) {
    const struct era *e = &ERAS[i];
    if (eat(p, e->name) || eat(p, e->ligature))
      return e;
    const char *q = *p;
    if ((*q == e->letter || *q == e->letter + ('a' - 'A')) &&
        ((q[1] >= '0' && q[1] <= '9') || strncmp(q + 1, "元", 3) == 0)) {
      *p = q + 1;
      return e;
    }
  }
  return NULL;
}

int mg_date_parse_any(const char *s, struct mg_date *out, const char **why) {
  char t[128];
  const char *p = t, *w = WHY_UNREADABLE;
  const struct era *e;
  int y = 0, m = 0, d = 0, rc = -EINVAL;
  if (!s || !out || mg_fold_ascii(s, t, sizeof(t)) < 0)
    goto out;
  if ((e = era_at(&p))) {
    int ey = 0;
    skip_spaces(&p);
    if (eat(&p, "元"))
      ey = 1;
    else if (!digits(&p, 4, &ey))
      goto out;
    skip_spaces(&p);
    bool kanji = eat(&p, "年");
    if (!month_day(&p, kanji, &m, &d))
      goto out;
    if (ey == 0) {
      w = e->why_zero;
      goto out;
    }
    y = e->first.y - 1 + ey;
    /* before the solar calendar (明治6年1月1日) an era date is 旧暦, and
     * 明治5年2月30日 may even be a real one */
    if (e == &ERAS[0] && y < 1873) {
      w = WHY_KYUREKI;
      goto out;
    }
  } else {
    const char *q = p;
    int k = digits(&q, 8, &y);
    if (k == 8 && *q == '\0') { /* 20261125 */
      m = y / 100 % 100;
      d = y % 100;
      y /= 10000;
    } else {
      if (digits(&p, 4, &y) != 4)
        goto out;
      skip_spaces(&p);
      bool kanji = eat(&p, "年");
      if (!month_day(&p, kanji, &m, &d))
        goto out;
    }
  }
  if (y < 1868 || y > 9999) {
    w = WHY_YEARS;
    goto out;
  }
  if (m < 1 || m > 12) {
    w = WHY_MONTH;
    goto out;
  }
  if (d < 1 || d > 31) {
    w = WHY_DAY;
    goto out;
  }
  if (d > month_days(y, m)) {
    w = why_no_such_day(m, d);
    goto out;
  }
  struct mg_date r = {y, m, d};
  if (e && mg_date_cmp(&r, &e->first) < 0) {
    w = e->why_before;
    goto out;
  }
  if (e && mg_date_cmp(&r, &e->last) > 0) {
    w = e->why_after;
    goto out;
  }
  *out = r;
  w = NULL;
  rc = 0;
out:
  if (why)
    *why = w;
  return rc;
}

int mg_wareki_format(const struct mg_date *d, enum mg_wareki_style style,
                     char *buf, size_t len) {
  const struct era *e = NULL;
  char year[16];
  int n = -1, rc = -EINVAL;
  if (!buf || len == 0)
    goto out;
  buf[0] = '\0';
  if (!d || d->y < 1868 || d->y > 9999 || d->m < 1 || d->m > 12 ||
      d->d < 1 || d->d > month_days(d->y, d->m))
    goto out;
  /* the newest era begun by d: a shared first day goes to the new era */
  for (size_t i = N_ERAS; i-- > 0 && !e;)
    if (mg_date_cmp(d, &ERAS[i].first) >= 0)
      e = &ERAS[i];
  if (!e)
    goto out; /* before 明治 */
  int ey = d->y - e->first.y + 1;
  if (ey == 1)
    snprintf(year, sizeof(year), "元");
  else
    snprintf(year, sizeof(year), "%d", ey);
  switch (style) {
  case MG_WAREKI_LONG:
    n = snprintf(buf, len, "%s%s年%d月%d日", e->name, year, d->m, d->d);
    break;
  case MG_WAREKI_SHORT:
    n = snprintf(buf, len, "%c%d.%d.%d", e->letter, ey, d->m, d->d);
    break;
  case MG_WAREKI_YEAR:
    n = snprintf(buf, len, "%s%s年", e->name, year);
    break;
  }
  if (n < 0 || (size_t)n >= len) {
    buf[0] = '\0';
    goto out;
  }
  rc = n;
out:
  return rc;
}
