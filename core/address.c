/*
 * address.c — the national address dictionary (I1, docs/api.md "Address
 * dictionary", docs/control.md).
 *
 * Import: KEN_ALL lines are read one at a time (the national file is
 * ~18 MB; only one record is held), checked, normalised (address.h) and
 * inserted into a new SQLite file "<dst>.tmp" built without a journal
 * (nothing to recover: a failed import deletes it); then indexes are made,
 * the file is fsync'd and renamed over dst, and the directory fsync'd.
 *
 * Schema (format 1, application_id "MGAD"):
 *   addr      one row an address, as shown, and `len`: the bytes of its
 *             whole name (都道府県+市区町村+町域), for "shorter first";
 *   beg       where names begin (the town; for a city as a whole, the
 *             address without a town, also the city and the whole name;
 *             kanji and kana, all through mg_kana_key) with the address,
 *             the kind and len: a range scan finds the names that begin
 *             with the text, ranked from this table alone;
 *   short     beg under its first one and two characters, ranked, for
 *             texts that short (one index range read in order);
 *   addr_fts  FTS5 trigram index (contentless) over the whole name in
 *             kanji and in kana: texts of three characters or more inside
 *             a name, asked only when the names that begin with the text
 *             are fewer than the limit.
 * Broad texts (北海道, ト) stay fast: ranking reads covering indexes, and
 * only the chosen addresses are read.
 */
#include "address.h"

#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "jp.h"

#define ADDR_APP_ID 0x4D474144 /* "MGAD" */
#define ADDR_FORMAT 1
#define ADDR_COLS 15          /* a KEN_ALL line */
#define ADDR_LINE_MAX 8192    /* longer lines are not KEN_ALL */
#define ADDR_QUERY_MAX 200    /* bytes of a search text */
#define ADDR_FTS_CAP 2000     /* substring matches ranked, at most */

/* beg.kind: where in the name a beg row's key begins */
enum { BEG_TOWN = 0, BEG_CITY = 1, BEG_PREF = 2 };

struct mg_addr_db {
  sqlite3 *db;
  sqlite3_stmt *by_postal, *by_id, *begins, *shorts, *inside;
  int64_t rows;
  char imported_at[32];
};

/* ---------------------------------------------------------------------- */
/* Small text helpers                                                      */

/* Length of the UTF-8 sequence at p (n bytes available), or 0 when
 * invalid (cut off by the end included). */
static int utf8_len(const unsigned char *p, size_t n) {
  int len;
  unsigned char c = p[0];
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    len = 2;
  else if (c >= 0xE0 && c <= 0xEF)
    len = 3;
  else if (c >= 0xF0 && c <= 0xF4)
    len = 4;
  else
    return 0;
  for (int i = 1; i < len; i++) {
    if ((size_t)i >= n)
      return 0;
    if ((p[i] & 0xC0) != 0x80)
      return 0;
  }
  /* overlongs, surrogates and beyond U+10FFFF */
  if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F) ||
      (c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))
    return 0;
  return len;
}

/* Offset of the first invalid byte, or n when all is valid UTF-8. */
static size_t utf8_check(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    int len = utf8_len(p + i, n - i);
    if (len <= 0)
      return i;
    i += (size_t)len;
  }
  return n;
}

static size_t utf8_chars(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    n += ((unsigned char)*s & 0xC0) != 0x80;
  return n;
}

static int ends_with(const char *s, const char *tail) {
  size_t n = strlen(s), m = strlen(tail);
  return n >= m && memcmp(s + n - m, tail, m) == 0;
}

static size_t count_of(const char *s, const char *what) {
  size_t n = 0, m = strlen(what);
  for (const char *p = strstr(s, what); p; p = strstr(p + m, what))
    n++;
  return n;
}

static int all_digits(const char *s, size_t n) {
  return strlen(s) == n && strspn(s, "0123456789") == n;
}

/* ---------------------------------------------------------------------- */
/* Postal codes                                                            */

/* A hyphen as people type it: -, －, ‐‑‒–—―, −, ー, ｰ.  Its length or 0. */
static size_t hyphen_len(const unsigned char *p) {
  if (p[0] == '-')
    return 1;
  if (p[0] == 0xEF && p[1] == 0xBC && p[2] == 0x8D) /* U+FF0D */
    return 3;
  if (p[0] == 0xE2 && p[1] == 0x80 && p[2] >= 0x90 && p[2] <= 0x95)
    return 3; /* U+2010..U+2015 */
  if (p[0] == 0xE2 && p[1] == 0x88 && p[2] == 0x92) /* U+2212 */
    return 3;
  if (p[0] == 0xE3 && p[1] == 0x83 && p[2] == 0xBC) /* U+30FC */
    return 3;
  if (p[0] == 0xEF && p[1] == 0xBD && p[2] == 0xB0) /* U+FF70 */
    return 3;
  return 0;
}

static size_t space_len(const unsigned char *p) {
  if (p[0] == ' ' || p[0] == '\t')
    return 1;
  if (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80) /* U+3000 */
    return 3;
  return 0;
}

int mg_addr_postal_normalize(const char *in, char out[8], struct mg_err *err) {
  const unsigned char *p = (const unsigned char *)(in ? in : "");
  size_t n = 0, k;
  int hyphens = 0;
  out[0] = '\0';
  while ((k = space_len(p)))
    p += k;
  if (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x92) /* 〒 */
    p += 3;
  while ((k = space_len(p)))
    p += k;
  for (;;) {
    if (*p >= '0' && *p <= '9') {
      if (n < 7)
        out[n] = (char)*p;
      n++;
      p++;
    } else if (p[0] == 0xEF && p[1] == 0xBC && p[2] >= 0x90 && p[2] <= 0x99) {
      if (n < 7)
        out[n] = (char)('0' + (p[2] - 0x90)); /* full-width digit */
      n++;
      p += 3;
    } else if ((k = hyphen_len(p)) && n == 3 && !hyphens) {
      hyphens++;
      p += k;
    } else {
      break;
    }
  }
  while ((k = space_len(p)))
    p += k;
  if (*p || n != 7) {
    out[0] = '\0';
    return mg_err_set(err, -EINVAL,
                      "postal code: 7 digits, with a hyphen after the third "
                      "if any (e.g. 745-0004 or 7450004)");
  }
  out[7] = '\0';
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Import                                                                  */

/* One address being assembled; a town split over lines grows here. */
struct rec {
  int line;           /* where it started */
  char city_code[8];  /* "" when 00000 */
  char postal[8];
  char pref[128], city[256];
  char pref_kana[256], city_kana[512];
  struct mg_buf town, town_kana;
};

struct imp {
  const char *src;
  FILE *f;
  iconv_t cd;         /* Shift_JIS (CP932) -> UTF-8, or (iconv_t)-1 */
  int utf8_line;      /* the line that showed the file is UTF-8, or 0 */
  int line;
  char *raw;          /* getline's buffer */
  size_t raw_cap;
  struct mg_buf conv; /* the line in UTF-8 */
  sqlite3 *db;
  sqlite3_stmt *ins, *ins_fts, *ins_beg;
  struct rec r;
  int open;           /* r holds a town whose （ is not closed yet */
  size_t rows;
  struct mg_err *err;
};

/* The next line as UTF-8 (im->conv), without its end; 1 at the end of the
 * file. */
static int next_line(struct imp *im) {
  ssize_t got = getline(&im->raw, &im->raw_cap, im->f);
  size_t n;
  if (got < 0) {
    if (ferror(im->f))
      return mg_err_set(im->err, -EIO, "%s:%d: read error", im->src,
                        im->line + 1);
    return 1;
  }
  im->line++;
  n = (size_t)got;
  while (n && (im->raw[n - 1] == '\n' || im->raw[n - 1] == '\r'))
    n--;
  if (n > ADDR_LINE_MAX)
    return mg_err_set(im->err, -EINVAL,
                      "%s:%d: line longer than %d bytes (not a KEN_ALL line)",
                      im->src, im->line, ADDR_LINE_MAX);
  if (memchr(im->raw, '\0', n))
    return mg_err_set(im->err, -EINVAL, "%s:%d: NUL byte (not a text file)",
                      im->src, im->line);
  mg_buf_reset(&im->conv);
  char *text = im->raw;
  if (im->line == 1 && n >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
    text += 3, n -= 3; /* a BOM: UTF-8 */
    im->utf8_line = 1;
  }
  if (!im->utf8_line && im->cd == (iconv_t)-1) {
    /* the first line that is not ASCII decides: Shift_JIS text is never
     * valid UTF-8 in practice */
    size_t i = 0;
    while (i < n && (unsigned char)text[i] < 0x80)
      i++;
    if (i < n && utf8_check(text, n) == n)
      im->utf8_line = im->line;
    else if (i < n && (im->cd = iconv_open("UTF-8", "CP932")) == (iconv_t)-1)
      return mg_err_set(im->err, -ENOTSUP,
                        "%s:%d: the file is not UTF-8 and this system cannot "
                        "convert Shift_JIS (CP932) with iconv",
                        im->src, im->line);
  }
  if (im->cd == (iconv_t)-1) {
    size_t bad = utf8_check(text, n);
    if (bad != n)
      return mg_err_set(im->err, -EINVAL,
                        "%s:%d: invalid UTF-8 at byte %zu (0x%02X); the file "
                        "is UTF-8 (line %d) and must be so throughout",
                        im->src, im->line, bad + 1,
                        (unsigned)(unsigned char)text[bad], im->utf8_line);
    mg_buf_append(&im->conv, text, n);
  } else {
    char out[4 * ADDR_LINE_MAX], *op = out, *ip = text;
    size_t il = n, ol = sizeof(out);
    iconv(im->cd, NULL, NULL, NULL, NULL);
    if (iconv(im->cd, &ip, &il, &op, &ol) == (size_t)-1)
      return mg_err_set(im->err, -EINVAL,
                        "%s:%d: invalid Shift_JIS (CP932) at byte %zu "
                        "(0x%02X); the file is Shift_JIS and must be so "
                        "throughout",
                        im->src, im->line, (size_t)(ip - text) + 1,
                        (unsigned)(unsigned char)*ip);
    mg_buf_append(&im->conv, out, (size_t)(op - out));
  }
  mg_buf_putc(&im->conv, '\0'); /* data stays NUL-terminated either way */
  if (im->conv.oom)
    return mg_err_set(im->err, -ENOMEM, "out of memory");
  im->conv.len--;
  return 0;
}

/* Split a CSV line in place: quoted ("" inside) or bare cells. */
static int split(struct imp *im, char *s, char **cell, int *n) {
  *n = 0;
  for (;;) {
    char *w = s;
    if (*n == ADDR_COLS + 1)
      break; /* too many: counted as ADDR_COLS + 1 */
    cell[(*n)++] = s;
    if (*s == '"') {
      char *r = s + 1;
      for (;;) {
        if (!*r)
          return mg_err_set(im->err, -EINVAL,
                            "%s:%d: column %d: a quoted cell is not closed",
                            im->src, im->line, *n);
        if (*r == '"' && r[1] == '"') {
          *w++ = '"';
          r += 2;
        } else if (*r == '"') {
          r++;
          break;
        } else {
          *w++ = *r++;
        }
      }
      if (*r && *r != ',')
        return mg_err_set(im->err, -EINVAL,
                          "%s:%d: column %d: text after the closing quote",
                          im->src, im->line, *n);
      s = r;
    } else {
      while (*s && *s != ',') {
        if (*s == '"')
          return mg_err_set(im->err, -EINVAL,
                            "%s:%d: column %d: a quote inside an unquoted cell",
                            im->src, im->line, *n);
        s++;
      }
      w = s;
    }
    int more = *s == ',';
    *w = '\0';
    if (!more)
      return 0;
    s++;
  }
  return 0;
}

/* mg_kana_key into a fresh buffer of b (reset first). */
static int key_of(struct mg_buf *b, const char *s) {
  size_t cap = 2 * strlen(s) + 8;
  mg_buf_reset(b);
  for (size_t i = 0; i < cap; i++)
    mg_buf_putc(b, '\0');
  if (b->oom)
    return -ENOMEM;
  int n = mg_kana_key(s, b->data, cap);
  if (n < 0)
    return -EINVAL;
  b->len = (size_t)n;
  return 0;
}

/* Copy a cell into a fixed field; -E2BIG when it does not fit. */
static int take(char *dst, size_t cap, const char *cell) {
  size_t n = strlen(cell);
  if (n >= cap)
    return -E2BIG;
  memcpy(dst, cell, n + 1);
  return 0;
}

/* Run an insert; its statement is reset and unbound either way. */
static int step_done(struct imp *im, sqlite3_stmt *s) {
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  if (rc == SQLITE_DONE)
    return 0;
  return mg_err_set(im->err, -EIO, "%s: cannot write the dictionary: %s",
                    im->src, sqlite3_errmsg(im->db));
}

/* Normalise the record (address.h) and insert it. */
static int store_rec(struct imp *im) {
  struct rec *r = &im->r;
  struct mg_buf town, kana, note, pk, ck, tk, pkk, ckk, tkk, key, kkey;
  const char *T = r->town.data ? r->town.data : "";
  int rc = 0;
  struct mg_buf *bufs[] = {&town, &kana, &note, &pk, &ck, &tk,
                           &pkk, &ckk, &tkk, &key, &kkey};
  for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
    mg_buf_init(bufs[i]);

  if ((rc = key_of(&kana, r->town_kana.data ? r->town_kana.data : "")))
    goto out;
  size_t cut = strlen(T);
  if (strcmp(T, "以下に掲載がない場合") == 0 ||
      ends_with(T, "の次に番地がくる場合")) {
    mg_buf_puts(&note, T);
    cut = 0;
  } else if (ends_with(T, "一円") && strcmp(T, "一円") != 0) {
    /* 「○○一円」: the whole of city ○○; 多賀町「一円」 is a town */
    size_t base = strlen(T) - strlen("一円");
    char head[512];
    if (base < sizeof(head)) {
      memcpy(head, T, base);
      head[base] = '\0';
      if (ends_with(r->city, head)) {
        mg_buf_puts(&note, "一円");
        cut = 0;
      }
    }
  }
  const char *br = cut ? strstr(T, "（") : NULL;
  if (br) {
    const char *in = br + strlen("（");
    size_t n = strlen(in);
    if (ends_with(in, "）"))
      n -= strlen("）");
    mg_buf_append(&note, in, n);
    cut = (size_t)(br - T);
  }
  mg_buf_append(&town, T, cut);
  if (cut < strlen(T)) {
    /* the kana of a bracket (in ASCII parentheses after mg_kana_key), or
     * none at all for an emptied town */
    char *paren = kana.data ? strchr(kana.data, '(') : NULL;
    if (cut == 0 && kana.data)
      kana.data[0] = '\0', kana.len = 0;
    else if (paren)
      *paren = '\0', kana.len = (size_t)(paren - kana.data);
  }
  mg_buf_putc(&town, '\0');
  mg_buf_putc(&note, '\0');
  town.len--, note.len--;
  if (town.oom || note.oom) {
    rc = -ENOMEM;
    goto out;
  }
  if ((rc = key_of(&pk, r->pref)) || (rc = key_of(&ck, r->city)) ||
      (rc = key_of(&tk, town.data)) || (rc = key_of(&pkk, r->pref_kana)) ||
      (rc = key_of(&ckk, r->city_kana)) || (rc = key_of(&tkk, kana.data ? kana.data : "")))
    goto out;
  mg_buf_printf(&key, "%s%s%s", pk.data, ck.data, tk.data);
  mg_buf_printf(&kkey, "%s%s%s", pkk.data, ckk.data, tkk.data);
  if (key.oom || kkey.oom) {
    rc = -ENOMEM;
    goto out;
  }
  sqlite3_stmt *s = im->ins;
  sqlite3_bind_text(s, 1, r->postal, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, r->city_code, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 3, r->pref, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 4, r->city, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 5, town.data, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 6, pkk.data, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 7, ckk.data, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 8, tkk.data, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 9, note.data, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 10, (sqlite3_int64)key.len);
  if ((rc = step_done(im, s)))
    goto out;
  sqlite3_int64 id = sqlite3_last_insert_rowid(im->db);
  s = im->ins_fts;
  sqlite3_bind_int64(s, 1, id);
  sqlite3_bind_text(s, 2, key.data, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 3, kkey.data, -1, SQLITE_STATIC);
  if ((rc = step_done(im, s)))
    goto out;
  /* where names begin: from the town, kanji and kana; from the city and
   * the prefecture only for the city as a whole (the address without a
   * town, which every municipality has): the other addresses of a city
   * would make one- and two-character texts scan a whole prefecture, and
   * longer texts find them in addr_fts */
  const char *beg[6] = {key.data, key.data + pk.len, tk.data,
                        kkey.data, kkey.data + pkk.len, tkk.data};
  static const int kind[6] = {BEG_PREF, BEG_CITY, BEG_TOWN,
                              BEG_PREF, BEG_CITY, BEG_TOWN};
  for (size_t i = 0; i < 6; i++) {
    if (!*beg[i] || (kind[i] != BEG_TOWN && *tk.data))
      continue;
    s = im->ins_beg;
    sqlite3_bind_text(s, 1, beg[i], -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, id);
    sqlite3_bind_int(s, 3, kind[i]);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)key.len);
    if ((rc = step_done(im, s)))
      goto out;
  }
  im->rows++;
out:
  if (rc == -ENOMEM)
    mg_err_set(im->err, rc, "out of memory");
  else if (rc == -EINVAL)
    mg_err_set(im->err, rc, "%s:%d: a name is too long or not valid text",
               im->src, r->line);
  for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
    mg_buf_free(bufs[i]);
  return rc;
}

/* One line: check it, then start, continue or finish a record. */
static int take_line(struct imp *im) {
  char *cell[ADDR_COLS + 1];
  int n, rc;
  struct rec *r = &im->r;
  if (im->conv.len == 0)
    return 0; /* an empty line (at the end, say) holds nothing */
  if ((rc = split(im, im->conv.data, cell, &n)))
    return rc;
  if (n != ADDR_COLS)
    return mg_err_set(im->err, -EINVAL,
                      "%s:%d: %s%d columns; a KEN_ALL line has %d", im->src,
                      im->line, n > ADDR_COLS ? "more than " : "",
                      n > ADDR_COLS ? ADDR_COLS : n, ADDR_COLS);
  if (!all_digits(cell[0], 5))
    return mg_err_set(im->err, -EINVAL,
                      "%s:%d: column 1 (全国地方公共団体コード) is not 5 digits",
                      im->src, im->line);
  if (!all_digits(cell[2], 7))
    return mg_err_set(im->err, -EINVAL,
                      "%s:%d: column 3 (郵便番号) is not 7 digits", im->src,
                      im->line);
  if (!*cell[6] || !*cell[7])
    return mg_err_set(im->err, -EINVAL,
                      "%s:%d: column %d (%s) is empty", im->src, im->line,
                      *cell[6] ? 8 : 7, *cell[6] ? "市区町村名" : "都道府県名");
  if (im->open) {
    /* the continuation of a town whose （ is still open */
    if (strcmp(cell[2], r->postal) != 0)
      return mg_err_set(im->err, -EINVAL,
                        "%s:%d: the town opened with （ on line %d is not "
                        "closed before another postal code",
                        im->src, im->line, r->line);
    mg_buf_puts(&r->town, cell[8]);
    mg_buf_puts(&r->town_kana, cell[5]);
  } else {
    memset(r->city_code, 0, sizeof(r->city_code));
    if (strcmp(cell[0], "00000") != 0)
      memcpy(r->city_code, cell[0], 5);
    memcpy(r->postal, cell[2], 8);
    if (take(r->pref, sizeof(r->pref), cell[6]) ||
        take(r->city, sizeof(r->city), cell[7]) ||
        take(r->pref_kana, sizeof(r->pref_kana), cell[3]) ||
        take(r->city_kana, sizeof(r->city_kana), cell[4]))
      return mg_err_set(im->err, -EINVAL,
                        "%s:%d: a prefecture or city name is too long",
                        im->src, im->line);
    r->line = im->line;
    mg_buf_reset(&r->town);
    mg_buf_reset(&r->town_kana);
    mg_buf_puts(&r->town, cell[8]);
    mg_buf_puts(&r->town_kana, cell[5]);
  }
  if (r->town.oom || r->town_kana.oom)
    return mg_err_set(im->err, -ENOMEM, "out of memory");
  if (r->town.len > ADDR_LINE_MAX)
    return mg_err_set(im->err, -EINVAL,
                      "%s:%d: the town begun on line %d grows beyond %d bytes",
                      im->src, im->line, r->line, ADDR_LINE_MAX);
  im->open = count_of(r->town.data, "（") > count_of(r->town.data, "）");
  return im->open ? 0 : store_rec(im);
}

/* kinds of beg rows: where in the name the text begins */
#define SCHEMA_SQL                                                             \
  "PRAGMA application_id = 1296515396;\n" /* ADDR_APP_ID */                   \
  "PRAGMA user_version = 1;\n"            /* ADDR_FORMAT */                   \
  "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) "              \
  "WITHOUT ROWID;\n"                                                           \
  "CREATE TABLE addr(id INTEGER PRIMARY KEY, postal_code TEXT NOT NULL, "      \
  "city_code TEXT NOT NULL, pref TEXT NOT NULL, city TEXT NOT NULL, "          \
  "town TEXT NOT NULL, pref_kana TEXT NOT NULL, city_kana TEXT NOT NULL, "     \
  "town_kana TEXT NOT NULL, note TEXT NOT NULL, len INTEGER NOT NULL);\n"      \
  "CREATE TABLE beg(k TEXT NOT NULL, id INTEGER NOT NULL, "                    \
  "kind INTEGER NOT NULL, len INTEGER NOT NULL, PRIMARY KEY (k, id)) "         \
  "WITHOUT ROWID;\n"                                                           \
  "CREATE TABLE short(p TEXT NOT NULL, rank INTEGER NOT NULL, "               \
  "len INTEGER NOT NULL, id INTEGER NOT NULL, "                                \
  "PRIMARY KEY (p, rank, len, id)) WITHOUT ROWID;\n"                           \
  "CREATE VIRTUAL TABLE addr_fts USING fts5(key, kkey, content='', "           \
  "tokenize='trigram', columnsize=0);\n"                                       \
  "BEGIN;\n"

/* After the rows (an index grows faster in one go).  `short` holds beg
 * under its first one and two characters, ranked as BEGIN_SQL ranks, so
 * that texts of one or two characters read `limit` rows in index order
 * instead of sorting thousands (お, と). */
#define INDEX_SQL                                                              \
  "INSERT OR IGNORE INTO short SELECT substr(k, 1, 1), "                       \
  "(CASE WHEN length(k) = 1 THEN 0 ELSE 2 END) + (kind != 0), len, id "        \
  "FROM beg;\n"                                                                \
  "INSERT OR IGNORE INTO short SELECT substr(k, 1, 2), "                       \
  "(CASE WHEN length(k) = 2 THEN 0 ELSE 2 END) + (kind != 0), len, id "        \
  "FROM beg WHERE length(k) >= 2;\n"                                           \
  "CREATE INDEX addr_postal ON addr(postal_code);\n"                           \
  "INSERT INTO addr_fts(addr_fts) VALUES('optimize');\n"

static int fsync_path(const char *path, int dir) {
  int fd = open(path, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
  int rc = 0;
  if (fd < 0)
    return -errno;
  if (fsync(fd) != 0)
    rc = -errno;
  close(fd);
  return rc;
}

static int exec(struct imp *im, const char *sql, const char *what) {
  char *msg = NULL;
  if (sqlite3_exec(im->db, sql, NULL, NULL, &msg) == SQLITE_OK)
    return 0;
  mg_err_set(im->err, -EIO, "%s: cannot %s: %s", im->src, what,
             msg ? msg : sqlite3_errmsg(im->db));
  sqlite3_free(msg);
  return -EIO;
}

int mg_addr_import(const char *src, const char *dst, size_t *rows,
                   struct mg_err *err) {
  struct imp im;
  char tmp[4096], dir[4096], when[32], *slash;
  const char *base;
  sqlite3_stmt *meta = NULL;
  int rc = 0, made_tmp = 0;
  time_t now = time(NULL);
  struct tm tm;

  memset(&im, 0, sizeof(im));
  im.src = src;
  im.cd = (iconv_t)-1;
  im.err = err;
  mg_buf_init(&im.conv);
  mg_buf_init(&im.r.town);
  mg_buf_init(&im.r.town_kana);
  if (rows)
    *rows = 0;
  if (snprintf(tmp, sizeof(tmp), "%s.tmp", dst) >= (int)sizeof(tmp) ||
      snprintf(dir, sizeof(dir), "%s", dst) >= (int)sizeof(dir)) {
    rc = mg_err_set(err, -ENAMETOOLONG, "%s: path too long", dst);
    goto out;
  }
  slash = strrchr(dir, '/');
  if (slash == dir)
    dir[1] = '\0';
  else if (slash)
    *slash = '\0';
  else
    snprintf(dir, sizeof(dir), ".");
  if (!(im.f = fopen(src, "rb"))) {
    rc = mg_err_set(err, -errno, "%s: cannot open: %s", src, strerror(errno));
    goto out;
  }

  /* a leftover of a crash is ours to remove */
  if (unlink(tmp) != 0 && errno != ENOENT) {
    rc = mg_err_set(err, -errno, "%s: cannot remove: %s", tmp, strerror(errno));
    goto out;
  }
  made_tmp = 1;
  if (sqlite3_open_v2(tmp, &im.db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                          SQLITE_OPEN_NOFOLLOW,
                      NULL) != SQLITE_OK) {
    rc = mg_err_set(err, -EIO, "%s: cannot create: %s", tmp,
                    im.db ? sqlite3_errmsg(im.db) : "out of memory");
    goto out;
  }
  /* no journal: a failed import deletes the file; modest memory */
  if ((rc = exec(&im, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; "
                      "PRAGMA cache_size=-16384; PRAGMA temp_store=FILE;",
                 "set up the new dictionary")) ||
      (rc = exec(&im, SCHEMA_SQL, "create the tables")))
    goto out;
  if (sqlite3_prepare_v2(
          im.db,
          "INSERT INTO addr(postal_code, city_code, pref, city, town, "
          "pref_kana, city_kana, town_kana, note, len) VALUES (?1, ?2, ?3, "
          "?4, ?5, ?6, ?7, ?8, ?9, ?10)",
          -1, &im.ins, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(im.db,
                         "INSERT INTO addr_fts(rowid, key, kkey) VALUES (?1, "
                         "?2, ?3)",
                         -1, &im.ins_fts, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(im.db,
                         "INSERT OR IGNORE INTO beg(k, id, kind, len) VALUES "
                         "(?1, ?2, ?3, ?4)",
                         -1, &im.ins_beg, NULL) != SQLITE_OK) {
    rc = mg_err_set(err, -EIO, "%s: %s", tmp, sqlite3_errmsg(im.db));
    goto out;
  }
  while ((rc = next_line(&im)) == 0)
    if ((rc = take_line(&im)))
      goto out;
  if (rc < 0)
    goto out;
  rc = 0;
  if (im.open) {
    rc = mg_err_set(err, -EINVAL,
                    "%s:%d: the town opened with （ on line %d is never "
                    "closed (end of file)",
                    src, im.line, im.r.line);
    goto out;
  }
  if (im.rows == 0) {
    rc = mg_err_set(err, -EINVAL,
                    "%s: no address in the file; the dictionary is left as "
                    "it was",
                    src);
    goto out;
  }
  gmtime_r(&now, &tm);
  strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
  base = strrchr(src, '/') ? strrchr(src, '/') + 1 : src;
  if (sqlite3_prepare_v2(im.db,
                         "INSERT INTO meta(key, value) VALUES ('rows', ?1), "
                         "('imported_at', ?2), ('source', ?3)",
                         -1, &meta, NULL) != SQLITE_OK) {
    rc = mg_err_set(err, -EIO, "%s: %s", tmp, sqlite3_errmsg(im.db));
    goto out;
  }
  sqlite3_bind_int64(meta, 1, (sqlite3_int64)im.rows);
  sqlite3_bind_text(meta, 2, when, -1, SQLITE_STATIC);
  sqlite3_bind_text(meta, 3, base, -1, SQLITE_STATIC);
  if (sqlite3_step(meta) != SQLITE_DONE) {
    rc = mg_err_set(err, -EIO, "%s: %s", tmp, sqlite3_errmsg(im.db));
    goto out;
  }
  if ((rc = exec(&im, INDEX_SQL, "index the addresses")) ||
      (rc = exec(&im, "COMMIT; VACUUM;", "finish the dictionary")))
    goto out;
  sqlite3_finalize(im.ins);
  sqlite3_finalize(im.ins_fts);
  sqlite3_finalize(im.ins_beg);
  sqlite3_finalize(meta);
  im.ins = im.ins_fts = im.ins_beg = meta = NULL;
  if (sqlite3_close(im.db) != SQLITE_OK) {
    rc = mg_err_set(err, -EIO, "%s: cannot close", tmp);
    goto out;
  }
  im.db = NULL;
  if ((rc = fsync_path(tmp, 0))) {
    mg_err_set(err, rc, "%s: fsync: %s", tmp, strerror(-rc));
    goto out;
  }
  if (rename(tmp, dst) != 0) {
    rc = mg_err_set(err, -errno, "%s: cannot replace: %s", dst,
                    strerror(errno));
    goto out;
  }
  made_tmp = 0;
  if ((rc = fsync_path(dir, 1))) {
    mg_err_set(err, rc, "%s: fsync: %s", dir, strerror(-rc));
    goto out;
  }
  if (rows)
    *rows = im.rows;
out:
  sqlite3_finalize(im.ins);
  sqlite3_finalize(im.ins_fts);
  sqlite3_finalize(im.ins_beg);
  sqlite3_finalize(meta);
  if (im.db)
    sqlite3_close_v2(im.db);
  if (made_tmp)
    unlink(tmp);
  if (im.f)
    fclose(im.f);
  if (im.cd != (iconv_t)-1)
    iconv_close(im.cd);
  free(im.raw);
  mg_buf_free(&im.conv);
  mg_buf_free(&im.r.town);
  mg_buf_free(&im.r.town_kana);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Open                                                                    */

#define COLS                                                                   \
  "a.postal_code, a.pref, a.city, a.town, a.pref_kana, a.city_kana, "          \
  "a.town_kana, a.note, a.city_code"

/* Names beginning with the text ?1 (?2 = the text followed by 0xFF, above
 * every string that begins with it): 0 the town itself; 1 city+town or the
 * whole name; 2 a town beginning with it; 3 a city or prefecture beginning
 * with it.  Then shorter names first.  An address has up to six beg rows,
 * so ?3 is six times the number wanted. */
#define BEGIN_SQL                                                              \
  "SELECT id FROM beg WHERE k >= ?1 AND k < ?2 ORDER BY CASE WHEN k = ?1 "     \
  "THEN kind != 0 ELSE 2 + (kind != 0) END, len, id LIMIT ?3"
/* The same for a text of one or two characters (?1), from `short`. */
#define SHORT_SQL                                                              \
  "SELECT id FROM short WHERE p = ?1 ORDER BY rank, len, id LIMIT ?3"
/* Rank 4, texts inside names: the first ADDR_FTS_CAP matches (postal code
 * order), shortest first. */
#define INSIDE_SQL                                                             \
  "SELECT a.id FROM addr a WHERE a.id IN (SELECT rowid FROM addr_fts WHERE "   \
  "addr_fts MATCH ?1 LIMIT ?2) ORDER BY a.len, a.id LIMIT ?3"

static int open_fail(struct mg_addr_db *d, const char *path, int code,
                     struct mg_err *err, const char *what) {
  mg_err_set(err, code, "%s: %s: %s", path, what,
             d->db ? sqlite3_errmsg(d->db) : "out of memory");
  return code;
}

int mg_addr_open(const char *path, struct mg_addr_db **out,
                 struct mg_err *err) {
  struct mg_addr_db *d = NULL;
  sqlite3_stmt *st = NULL;
  struct stat sb;
  int rc = 0, app = 0, ver = 0;

  *out = NULL;
  if (stat(path, &sb) != 0) {
    rc = mg_err_set(err, -errno, "%s: %s", path,
                    errno == ENOENT ? "no address dictionary imported yet"
                                    : strerror(errno));
    goto out;
  }
  if (!(d = calloc(1, sizeof(*d)))) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  if (sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    rc = open_fail(d, path, -EIO, err, "cannot open");
    goto out;
  }
  if (sqlite3_prepare_v2(d->db,
                         "SELECT (SELECT application_id FROM "
                         "pragma_application_id), (SELECT user_version FROM "
                         "pragma_user_version)",
                         -1, &st, NULL) != SQLITE_OK ||
      sqlite3_step(st) != SQLITE_ROW) {
    rc = open_fail(d, path, -EIO, err, "not readable as a database");
    goto out;
  }
  app = sqlite3_column_int(st, 0);
  ver = sqlite3_column_int(st, 1);
  sqlite3_finalize(st);
  st = NULL;
  if ((unsigned)app != ADDR_APP_ID || ver != ADDR_FORMAT) {
    rc = mg_err_set(err, -EPROTO,
                    "%s: not an address dictionary of this madoguchid "
                    "(application_id 0x%08x, format %d; expected 0x%08x, "
                    "format %d): import KEN_ALL again",
                    path, (unsigned)app, ver, (unsigned)ADDR_APP_ID,
                    ADDR_FORMAT);
    goto out;
  }
  if (sqlite3_prepare_v2(d->db,
                         "SELECT (SELECT value FROM meta WHERE key = 'rows'), "
                         "(SELECT value FROM meta WHERE key = 'imported_at')",
                         -1, &st, NULL) != SQLITE_OK ||
      sqlite3_step(st) != SQLITE_ROW) {
    rc = open_fail(d, path, -EIO, err, "damaged");
    goto out;
  }
  d->rows = sqlite3_column_int64(st, 0);
  snprintf(d->imported_at, sizeof(d->imported_at), "%s",
           sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1)
                                      : "");
  if (sqlite3_prepare_v2(d->db,
                         "SELECT " COLS " FROM addr a WHERE a.postal_code = ?1 "
                         "ORDER BY a.id",
                         -1, &d->by_postal, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(d->db, "SELECT " COLS " FROM addr a WHERE a.id = ?1",
                         -1, &d->by_id, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(d->db, BEGIN_SQL, -1, &d->begins, NULL) !=
          SQLITE_OK ||
      sqlite3_prepare_v2(d->db, SHORT_SQL, -1, &d->shorts, NULL) !=
          SQLITE_OK ||
      sqlite3_prepare_v2(d->db, INSIDE_SQL, -1, &d->inside, NULL) !=
          SQLITE_OK) {
    rc = open_fail(d, path, -EIO, err, "damaged");
    goto out;
  }
  *out = d;
  d = NULL;
out:
  sqlite3_finalize(st);
  mg_addr_close(d);
  return rc;
}

void mg_addr_close(struct mg_addr_db *d) {
  if (!d)
    return;
  sqlite3_finalize(d->by_postal);
  sqlite3_finalize(d->by_id);
  sqlite3_finalize(d->begins);
  sqlite3_finalize(d->shorts);
  sqlite3_finalize(d->inside);
  sqlite3_close_v2(d->db);
  free(d);
}

int64_t mg_addr_rows(const struct mg_addr_db *d) { return d ? d->rows : 0; }

const char *mg_addr_imported_at(const struct mg_addr_db *d) {
  return d ? d->imported_at : "";
}

/* ---------------------------------------------------------------------- */
/* Lookups                                                                 */

static const char *col(sqlite3_stmt *s, int i) {
  const unsigned char *t = sqlite3_column_text(s, i);
  return t ? (const char *)t : "";
}

/* Step s, handing each row to fn; s is reset either way. */
static int walk(struct mg_addr_db *d, sqlite3_stmt *s, mg_addr_fn fn,
                void *ud, struct mg_err *err) {
  int rc = 0, st;
  while ((st = sqlite3_step(s)) == SQLITE_ROW) {
    struct mg_addr a = {col(s, 0), col(s, 1), col(s, 2), col(s, 3), col(s, 4),
                        col(s, 5), col(s, 6), col(s, 7), col(s, 8)};
    if ((rc = fn(ud, &a)))
      goto out;
  }
  if (st != SQLITE_DONE)
    rc = mg_err_set(err, -EIO, "address dictionary: %s", sqlite3_errmsg(d->db));
out:
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return rc;
}

int mg_addr_postal_each(struct mg_addr_db *d, const char *code, mg_addr_fn fn,
                        void *ud, struct mg_err *err) {
  char pc[8];
  int rc = mg_addr_postal_normalize(code, pc, err);
  if (rc)
    return rc;
  sqlite3_bind_text(d->by_postal, 1, pc, 7, SQLITE_TRANSIENT);
  return walk(d, d->by_postal, fn, ud, err);
}

/* A search under way: ids handed out, so that none comes twice. */
struct found {
  struct mg_addr_db *d;
  int64_t id[MG_ADDR_SEARCH_MAX];
  size_t n, limit;
  mg_addr_fn fn;
  void *ud;
  struct mg_err *err;
};

/* Hand out the ids s yields, up to the limit (s is reset either way): 0,
 * a negative errno, or the callback's non-zero code. */
static int hand_out(struct found *f, sqlite3_stmt *s) {
  int rc = 0, st = SQLITE_DONE;
  while (f->n < f->limit && (st = sqlite3_step(s)) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(s, 0);
    size_t i = 0;
    while (i < f->n && f->id[i] != id)
      i++;
    if (i < f->n)
      continue;
    f->id[f->n++] = id;
    sqlite3_bind_int64(f->d->by_id, 1, id);
    if ((rc = walk(f->d, f->d->by_id, f->fn, f->ud, f->err)))
      goto out;
  }
  if (st != SQLITE_DONE && st != SQLITE_ROW)
    rc = mg_err_set(f->err, -EIO, "address dictionary: %s",
                    sqlite3_errmsg(f->d->db));
out:
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return rc;
}

int mg_addr_search_each(struct mg_addr_db *d, const char *q, size_t limit,
                        mg_addr_fn fn, void *ud, struct mg_err *err) {
  char key[ADDR_QUERY_MAX + 8], hi[ADDR_QUERY_MAX + 9];
  char match[2 * ADDR_QUERY_MAX + 32];
  size_t m = 0;
  struct found f = {.d = d, .limit = limit, .fn = fn, .ud = ud, .err = err};
  int rc;
  if (limit < 1 || limit > MG_ADDR_SEARCH_MAX)
    return mg_err_set(err, -EINVAL, "limit: from 1 to %d",
                      MG_ADDR_SEARCH_MAX);
  if (!q || strlen(q) > ADDR_QUERY_MAX)
    return mg_err_set(err, -EINVAL, "q: at most %d bytes of text",
                      ADDR_QUERY_MAX);
  if (mg_addr_postal_normalize(q, key, NULL) == 0)
    return mg_addr_postal_each(d, key, fn, ud, err); /* a postal code */
  if (mg_kana_key(q, key, sizeof(key)) < 0)
    return mg_err_set(err, -EINVAL, "q: not valid UTF-8 text");
  if (!key[0])
    return mg_err_set(err, -EINVAL,
                      "q: empty (a town or city name, kanji or kana, is "
                      "needed)");
  snprintf(hi, sizeof(hi), "%s\xff", key);
  sqlite3_stmt *s = utf8_chars(key) < 3 ? d->shorts : d->begins;
  sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 2, hi, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(s, 3, (sqlite3_int64)(6 * limit));
  if ((rc = hand_out(&f, s)) || f.n == limit || s == d->shorts)
    return rc;
  /* then inside names: one FTS5 phrase (a substring for trigrams), with
   * " doubled; one or two characters are too short for trigrams */
  match[m++] = '"';
  for (const char *p = key; *p; p++) {
    if (*p == '"')
      match[m++] = '"';
    match[m++] = *p;
  }
  match[m++] = '"';
  match[m] = '\0';
  sqlite3_bind_text(d->inside, 1, match, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(d->inside, 2, ADDR_FTS_CAP);
  sqlite3_bind_int64(d->inside, 3, (sqlite3_int64)(limit + f.n));
  return hand_out(&f, d->inside);
}

void mg_addr_write(struct mg_jw *w, const struct mg_addr *a,
                   const char *district) {
  mg_jw_obj(w);
  mg_jw_kstr(w, "postal_code", a->postal_code);
  mg_jw_kstr(w, "pref", a->pref);
  mg_jw_kstr(w, "city", a->city);
  mg_jw_kstr(w, "town", a->town);
  mg_jw_kstr(w, "pref_kana", a->pref_kana);
  mg_jw_kstr(w, "city_kana", a->city_kana);
  mg_jw_kstr(w, "town_kana", a->town_kana);
  mg_jw_kstr(w, "note", a->note);
  mg_jw_kstr(w, "city_code", a->city_code);
  if (district)
    mg_jw_kstr(w, "district", district);
  mg_jw_obj_end(w);
}

static int write_one(void *ud, const struct mg_addr *a) {
  mg_addr_write(ud, a, NULL);
  return 0;
}

/* Run a walker into a JSON array; nothing is written when it refuses the
 * input before the first row. */
int mg_addr_by_postal(struct mg_addr_db *d, const char *code, struct mg_jw *w,
                      struct mg_err *err) {
  char pc[8];
  int rc = mg_addr_postal_normalize(code, pc, err);
  if (rc)
    return rc;
  mg_jw_arr(w);
  rc = mg_addr_postal_each(d, pc, write_one, w, err);
  mg_jw_arr_end(w);
  return rc;
}

int mg_addr_search(struct mg_addr_db *d, const char *q, size_t limit,
                   struct mg_jw *w, struct mg_err *err) {
  /* check first, so that a refused text writes nothing */
  char key[ADDR_QUERY_MAX + 8];
  if (limit < 1 || limit > MG_ADDR_SEARCH_MAX || !q ||
      strlen(q) > ADDR_QUERY_MAX || mg_kana_key(q, key, sizeof(key)) <= 0)
    return mg_addr_search_each(d, q, limit, write_one, w, err);
  mg_jw_arr(w);
  int rc = mg_addr_search_each(d, q, limit, write_one, w, err);
  mg_jw_arr_end(w);
  return rc;
}
