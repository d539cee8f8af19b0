/*
 * csv.h — a strict RFC 4180 reader for the small tables of a procedure pack
 * (docs/packs.md "Text files"), which staff edit in Excel.
 *
 * Accepted: UTF-8 only (every byte is validated; one leading byte order
 * mark, as Excel's "CSV UTF-8" writes, is skipped), comma separated,
 * double-quote quoting with "" for a quote and line breaks inside quotes,
 * lines ending in CRLF or LF, a header row first, every row as wide as the
 * header.  Empty lines, and rows whose cells are all empty (Excel writes
 * ",,,," for a cleared row), are skipped.
 *
 * Refused, with a line, a column and the rule: invalid UTF-8 (Shift_JIS
 * files mostly), NUL bytes, a lone CR, an unterminated quoted field, text
 * after a closing quote, a quote inside an unquoted field, a row of the
 * wrong width, an empty or repeated column name.
 *
 * Positions: lines are 1-based physical lines (a cell with line breaks
 * spans several); COLUMNS ARE 1-BASED CHARACTER POSITIONS within the line
 * (UTF-8 code points, so 住所 counts 2, not 6), which is what an editor's
 * status bar shows.
 */
#ifndef MG_CSV_H
#define MG_CSV_H

#include <stddef.h>

#define MG_CSV_RULE_MAX 256

/* Where and why parsing stopped.  `rule` has no file:line prefix, so a
 * caller can file it in its own report; mg_csv_error_format() adds one. */
struct mg_csv_error {
  int line;
  int col;
  char rule[MG_CSV_RULE_MAX];
};

struct mg_csv_cell {
  char *text; /* owned, NUL-terminated, CRLF inside quotes turned into LF */
  int line;   /* where the cell's text starts (after an opening quote) */
  int col;
};

struct mg_csv_row {
  int line; /* line of the row's first cell */
  size_t n; /* == the header's width */
  struct mg_csv_cell *cells;
};

struct mg_csv {
  struct mg_csv_row header; /* column names */
  size_t n_rows;            /* data rows, header excluded */
  struct mg_csv_row *rows;
};

/* Parse `len` bytes of `data` into `out` (which the caller frees with
 * mg_csv_free, also after an error).  Returns 0, -EINVAL with `e` filled
 * (when not NULL), or -ENOMEM. */
int mg_csv_parse(const char *data, size_t len, struct mg_csv *out,
                 struct mg_csv_error *e);
void mg_csv_free(struct mg_csv *csv);

/* Check that `data` is text: valid UTF-8 without NUL bytes.  Returns the
 * number of bytes of a leading BOM to skip (0 or 3), or -EINVAL with `e`
 * naming the line, the column and the byte.  Shared with the INI readers. */
int mg_csv_check_text(const char *data, size_t len, struct mg_csv_error *e);

/* Index of the column named `name`, or -1. */
int mg_csv_column(const struct mg_csv *csv, const char *name);

/* Called once per problem by mg_csv_check_columns; `msg` is the rule. */
typedef void (*mg_csv_report_fn)(void *ctx, int line, int col,
                                 const char *msg);

/* Report each header column not in `known` and each name of `required`
 * missing from the header.  Both arrays are NULL-terminated; `required`
 * may be NULL.  Returns the number of problems reported. */
int mg_csv_check_columns(const struct mg_csv *csv, const char *const *known,
                         const char *const *required, mg_csv_report_fn report,
                         void *ctx);

/* "FILE:LINE:COL: rule" into buf (always NUL-terminated). */
void mg_csv_error_format(const struct mg_csv_error *e, const char *file,
                         char *buf, size_t size);

#endif
