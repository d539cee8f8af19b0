/*
 * json.h — a strict JSON (RFC 8259) parser into a small tree, and a
 * streaming writer into an mg_buf.
 *
 * The parser rejects, with the line, column and the rule broken: trailing
 * data, trailing commas, comments, single quotes, leading zeros, NaN and
 * Infinity, control characters in strings, invalid UTF-8, lone surrogate
 * escapes, duplicate object keys, nesting deeper than the limit, input
 * larger than the limit, numbers that overflow a double, a byte order mark,
 * and non-object/array/scalar garbage.  Strings are decoded to UTF-8 and
 * may contain NUL (use `len`).  Positions count lines by '\n' and columns
 * in bytes.  Over-deep nesting and oversized input return -E2BIG.
 */
#ifndef MG_JSON_H
#define MG_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define MG_JSON_DEFAULT_MAX_DEPTH 64
#define MG_JSON_MAX_DEPTH_CEILING 512 /* the parser recurses once a level */

enum mg_json_type {
  MG_JSON_NULL = 0,
  MG_JSON_FALSE,
  MG_JSON_TRUE,
  MG_JSON_NUMBER,
  MG_JSON_STRING,
  MG_JSON_ARRAY,
  MG_JSON_OBJECT
};

struct mg_json;

struct mg_json_member {
  char *key; /* UTF-8, NUL-terminated */
  size_t key_len;
  struct mg_json *value;
};

struct mg_json {
  enum mg_json_type type;
  union {
    struct {
      double d;
      int64_t i;      /* valid when is_int */
      int is_int;     /* the text was an integer that fits int64_t */
    } num;
    struct {
      char *s;        /* UTF-8, NUL-terminated (may contain NUL too) */
      size_t len;
    } str;
    struct {
      struct mg_json **items;
      size_t n;
    } arr;
    struct {
      struct mg_json_member *members; /* in document order */
      size_t n;
    } obj;
  } u;
};

struct mg_json_error {
  size_t offset; /* byte offset of the problem */
  size_t line;   /* 1-based */
  size_t col;    /* 1-based, in bytes */
  char msg[192]; /* "line 3, column 7: expected ',' or '}' after an object member" */
};

struct mg_json_limits {
  size_t max_depth; /* 0: MG_JSON_DEFAULT_MAX_DEPTH */
  size_t max_bytes; /* 0: no limit */
};

/* Parse text[0..len).  On success *out owns a tree (mg_json_free) and 0 is
 * returned; on failure *out is NULL, err (if not NULL) is filled and
 * -EINVAL (bad input), -E2BIG (over a limit) or -ENOMEM is returned.
 * limits may be NULL. */
int mg_json_parse(const char *text, size_t len,
                  const struct mg_json_limits *limits,
                  struct mg_json **out, struct mg_json_error *err);
void mg_json_free(struct mg_json *v);

/* Lookups; all return NULL/defaults when v is NULL or of another type.
 * mg_json_get_str returns NULL for a string holding "\u0000", which would
 * read as a shorter C string. */
const struct mg_json *mg_json_get(const struct mg_json *obj, const char *key);
const char *mg_json_get_str(const struct mg_json *obj, const char *key);
/* 0 and *out set when key holds an integer number; -ENOENT absent,
 * -EINVAL another type. */
int mg_json_get_int(const struct mg_json *obj, const char *key, int64_t *out);
/* 1 true, 0 false, -1 absent or not a boolean. */
int mg_json_get_bool(const struct mg_json *obj, const char *key);

/*
 * Writer.  Commas and key/value colons are placed automatically; strings
 * are escaped (control characters as \u00XX, '/' left alone, invalid UTF-8
 * replaced by U+FFFD).  Misuse (value without key inside an object,
 * unbalanced end, a second top-level value, an empty mg_jw_raw) sets `bad`
 * and nothing more is written; callers check it once at the end.
 */
#define MG_JW_MAX_DEPTH 64
struct mg_jw {
  struct mg_buf *b;
  int depth;
  unsigned char in_obj[MG_JW_MAX_DEPTH]; /* 1: object, 0: array */
  unsigned char count[MG_JW_MAX_DEPTH];  /* 0: nothing written yet */
  int want_value; /* a key was written, its value is due */
  int bad;
};

void mg_jw_init(struct mg_jw *w, struct mg_buf *b);
void mg_jw_obj(struct mg_jw *w);      /* { */
void mg_jw_obj_end(struct mg_jw *w);  /* } */
void mg_jw_arr(struct mg_jw *w);      /* [ */
void mg_jw_arr_end(struct mg_jw *w);  /* ] */
void mg_jw_key(struct mg_jw *w, const char *key);
void mg_jw_str(struct mg_jw *w, const char *s);        /* NULL writes null */
void mg_jw_strn(struct mg_jw *w, const char *s, size_t n);
void mg_jw_int(struct mg_jw *w, int64_t v);
void mg_jw_uint(struct mg_jw *w, uint64_t v);
void mg_jw_double(struct mg_jw *w, double v); /* non-finite writes null */
void mg_jw_bool(struct mg_jw *w, int v);
void mg_jw_null(struct mg_jw *w);
/* Insert already-valid JSON text as a value. */
void mg_jw_raw(struct mg_jw *w, const char *json);
/* key + value shorthands */
void mg_jw_kstr(struct mg_jw *w, const char *key, const char *s);
void mg_jw_kint(struct mg_jw *w, const char *key, int64_t v);
void mg_jw_kbool(struct mg_jw *w, const char *key, int v);
void mg_jw_kraw(struct mg_jw *w, const char *key, const char *json);

/* Append s as a JSON string literal (with quotes) to b. */
void mg_json_escape(struct mg_buf *b, const char *s, size_t n);

#endif
