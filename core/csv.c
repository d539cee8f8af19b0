/*
 * csv.c — the strict CSV reader of csv.h.  Parsing is byte-wise: every
 * delimiter is ASCII and the text was validated as UTF-8 first, so a
 * multi-byte character can never be split.
 */
#include "csv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

static int fail(struct mg_csv_error *e, int line, int col, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));

static int fail(struct mg_csv_error *e, int line, int col, const char *fmt,
                ...) {
  if (e) {
    va_list ap;
    va_start(ap, fmt);
    e->line = line;
    e->col = col;
    vsnprintf(e->rule, sizeof(e->rule), fmt, ap);
    va_end(ap);
  }
  return -EINVAL;
}

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n) {
  unsigned char c = p[0];
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    len = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0)
      lo = 0xA0; /* overlong */
    if (c == 0xED)
      hi = 0x9F; /* surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0)
      lo = 0x90;
    if (c == 0xF4)
      hi = 0x8F;
  } else
    return 0;
  if (n < len || p[1] < lo || p[1] > hi)
    return 0;
  for (size_t i = 2; i < len; i++)
    if ((p[i] & 0xC0) != 0x80)
      return 0;
  return len;
}

int mg_csv_check_text(const char *data, size_t len, struct mg_csv_error *e) {
  const unsigned char *p = (const unsigned char *)data;
  size_t i = 0, skip = 0;
  int line = 1, col = 1;
  if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
    i = skip = 3;
  while (i < len) {
    if (p[i] == 0)
      return fail(e, line, col, "NUL byte (not a text file)");
    size_t l = utf8_len(p + i, len - i);
    if (l == 0)
      return fail(e, line, col,
                  "invalid UTF-8 byte 0x%02X (is the file Shift_JIS? save it "
                  "as CSV UTF-8)",
                  p[i]);
    if (p[i] == '\n') {
      line++;
      col = 1;
    } else
      col++;
    i += l;
  }
  return (int)skip;
}

/* Parser state: position in bytes and as line/character column. */
struct cur {
  const char *p;
  size_t len, i;
  int line, col;
};

static void advance(struct cur *c) {
  if (c->p[c->i] == '\n') {
    c->line++;
    c->col = 1;
  } else if (((unsigned char)c->p[c->i] & 0xC0) != 0x80)
    c->col++;
  c->i++;
  /* continuation bytes belong to the character already counted */
  while (c->i < c->len && ((unsigned char)c->p[c->i] & 0xC0) == 0x80)
    c->i++;
}

static void row_free(struct mg_csv_row *r) {
  for (size_t i = 0; i < r->n; i++)
    free(r->cells[i].text);
  free(r->cells);
  memset(r, 0, sizeof(*r));
}

void mg_csv_free(struct mg_csv *csv) {
  if (!csv)
    return;
  row_free(&csv->header);
  for (size_t i = 0; i < csv->n_rows; i++)
    row_free(&csv->rows[i]);
  free(csv->rows);
  memset(csv, 0, sizeof(*csv));
}

static int add_cell(struct mg_csv_row *r, struct mg_buf *b, int line, int col) {
  struct mg_csv_cell *c = realloc(r->cells, (r->n + 1) * sizeof(*c));
  if (!c)
    return -ENOMEM;
  r->cells = c;
  c[r->n].text = strdup(b->data ? b->data : "");
  c[r->n].line = line;
  c[r->n].col = col;
  if (!c[r->n].text)
    return -ENOMEM;
  r->n++;
  return 0;
}

/* Read one record starting at c->i into `r`.  On return c->i is past the
 * record's line end.  `*end_line`/`*end_col` say where the record ended
 * (for "too few cells"). */
static int read_record(struct cur *c, struct mg_csv_row *r, struct mg_buf *b,
                       int *end_line, int *end_col, struct mg_csv_error *e) {
  int rc;
  r->line = c->line;
  for (;;) {
    int cl = c->line, cc = c->col;
    mg_buf_reset(b);
    if (c->i < c->len && c->p[c->i] == '"') {
      int ql = c->line, qc = c->col;
      advance(c);
      cl = c->line;
      cc = c->col;
      for (;;) {
        if (c->i >= c->len)
          return fail(e, ql, qc, "unterminated quoted field");
        char ch = c->p[c->i];
        if (ch == '"') {
          if (c->i + 1 < c->len && c->p[c->i + 1] == '"') {
            mg_buf_putc(b, '"');
            advance(c);
            advance(c);
            continue;
          }
          advance(c);
          break;
        }
        if (ch == '\r' && c->i + 1 < c->len && c->p[c->i + 1] == '\n') {
          c->i++; /* CRLF inside a cell is kept as LF */
          continue;
        }
        size_t s = c->i;
        advance(c);
        mg_buf_append(b, c->p + s, c->i - s);
      }
      if (c->i < c->len && c->p[c->i] != ',' && c->p[c->i] != '\n' &&
          !(c->p[c->i] == '\r' && c->i + 1 < c->len && c->p[c->i + 1] == '\n'))
        return fail(e, c->line, c->col,
                    "text after a closing quote (a quote inside a field must "
                    "be doubled: \"\")");
    } else {
      while (c->i < c->len) {
        char ch = c->p[c->i];
        if (ch == ',' || ch == '\n')
          break;
        if (ch == '\r') {
          if (c->i + 1 < c->len && c->p[c->i + 1] == '\n')
            break;
          return fail(e, c->line, c->col,
                      "a carriage return (CR) without a line feed: lines must "
                      "end in CRLF or LF");
        }
        if (ch == '"')
          return fail(e, c->line, c->col,
                      "a quote inside an unquoted field (put the field in "
                      "double quotes and double the quote)");
        size_t s = c->i;
        advance(c);
        mg_buf_append(b, c->p + s, c->i - s);
      }
    }
    if (b->oom)
      return -ENOMEM;
    if ((rc = add_cell(r, b, cl, cc)) != 0)
      return rc;
    if (c->i < c->len && c->p[c->i] == ',') {
      advance(c);
      continue;
    }
    *end_line = c->line;
    *end_col = c->col;
    if (c->i < c->len && c->p[c->i] == '\r')
      c->i++;
    if (c->i < c->len) /* the '\n' */
      advance(c);
    return 0;
  }
}

static int row_blank(const struct mg_csv_row *r) {
  for (size_t i = 0; i < r->n; i++)
    if (r->cells[i].text[0])
      return 0;
  return 1;
}

int mg_csv_parse(const char *data, size_t len, struct mg_csv *out,
                 struct mg_csv_error *e) {
  struct mg_buf b;
  struct mg_csv_row r = {0};
  struct cur c = {data, len, 0, 1, 1};
  int have_header = 0, rc;
  mg_buf_init(&b);
  memset(out, 0, sizeof(*out));
  rc = mg_csv_check_text(data, len, e);
  if (rc < 0)
    goto out;
  c.i = (size_t)rc;
  rc = 0;
  while (c.i < c.len) {
    int el = 0, ec = 0;
    /* empty line: skipped without a record */
    if (data[c.i] == '\n' ||
        (data[c.i] == '\r' && c.i + 1 < len && data[c.i + 1] == '\n')) {
      if (data[c.i] == '\r')
        c.i++;
      advance(&c);
      continue;
    }
    if ((rc = read_record(&c, &r, &b, &el, &ec, e)) != 0)
      goto out;
    if (!have_header) {
      for (size_t i = 0; i < r.n; i++) {
        if (!r.cells[i].text[0]) {
          rc = fail(e, r.cells[i].line, r.cells[i].col,
                    "header cell %zu is empty (every column needs a name)",
                    i + 1);
          goto out;
        }
        for (size_t j = 0; j < i; j++)
          if (strcmp(r.cells[i].text, r.cells[j].text) == 0) {
            rc = fail(e, r.cells[i].line, r.cells[i].col,
                      "column \"%s\" appears twice in the header",
                      r.cells[i].text);
            goto out;
          }
      }
      out->header = r;
      memset(&r, 0, sizeof(r));
      have_header = 1;
      continue;
    }
    if (row_blank(&r)) {
      row_free(&r);
      continue;
    }
    if (r.n != out->header.n) {
      int l = r.n > out->header.n ? r.cells[out->header.n].line : el;
      int cl = r.n > out->header.n ? r.cells[out->header.n].col : ec;
      rc = fail(e, l, cl, "row has %zu cells, the header has %zu", r.n,
                out->header.n);
      goto out;
    }
    struct mg_csv_row *rows =
        realloc(out->rows, (out->n_rows + 1) * sizeof(*rows));
    if (!rows) {
      rc = -ENOMEM;
      goto out;
    }
    out->rows = rows;
    rows[out->n_rows++] = r;
    memset(&r, 0, sizeof(r));
  }
  if (!have_header)
    rc = fail(e, 1, 1, "empty file: the first line must name the columns");
out:
  row_free(&r);
  mg_buf_free(&b);
  if (rc == -ENOMEM)
    fail(e, c.line, c.col, "out of memory");
  return rc;
}

int mg_csv_column(const struct mg_csv *csv, const char *name) {
  for (size_t i = 0; i < csv->header.n; i++)
    if (strcmp(csv->header.cells[i].text, name) == 0)
      return (int)i;
  return -1;
}

static int in_list(const char *const *list, const char *s) {
  for (; list && *list; list++)
    if (strcmp(*list, s) == 0)
      return 1;
  return 0;
}

int mg_csv_check_columns(const struct mg_csv *csv, const char *const *known,
                         const char *const *required, mg_csv_report_fn report,
                         void *ctx) {
  char msg[MG_CSV_RULE_MAX];
  int n = 0;
  for (size_t i = 0; i < csv->header.n; i++) {
    const struct mg_csv_cell *h = &csv->header.cells[i];
    if (!in_list(known, h->text)) {
      snprintf(msg, sizeof(msg), "unknown column \"%.100s\"", h->text);
      report(ctx, h->line, h->col, msg);
      n++;
    }
  }
  for (; required && *required; required++)
    if (mg_csv_column(csv, *required) < 0) {
      snprintf(msg, sizeof(msg), "missing required column \"%.100s\"",
               *required);
      report(ctx, csv->header.line ? csv->header.line : 1, 0, msg);
      n++;
    }
  return n;
}

void mg_csv_error_format(const struct mg_csv_error *e, const char *file,
                         char *buf, size_t size) {
  snprintf(buf, size, "%s:%d:%d: %s", file, e->line, e->col, e->rule);
}
