/*
 * json.c — strict RFC 8259 parser into a tree, and a streaming writer.
 *
 * The parser is recursive descent; recursion is bounded by max_depth.  Input
 * is never assumed NUL-terminated: every read is checked against len.
 */
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 -------------------------------------------------------------- */

enum {
  U8_CONT = -1,      /* continuation byte where a sequence should start */
  U8_OVERLONG = -2,  /* C0, C1, E0 80..9F, F0 80..8F */
  U8_SURROGATE = -3, /* ED A0..BF: U+D800..U+DFFF */
  U8_TOO_BIG = -4,   /* F4 90.., F5..F7: above U+10FFFF */
  U8_BAD_BYTE = -5,  /* F8..FF never appear */
  U8_TRUNC = -6      /* sequence cut short */
};

/* Length of the well-formed sequence at s[0..n) (n >= 1), or a U8_* reason.
 * Follows Unicode table 3-7, which rules out overlongs, surrogates and
 * values above U+10FFFF by narrowing the range of the second byte. */
static int utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0], lo = 0x80, hi = 0xBF;
  int len;
  if (c < 0x80)
    return 1;
  if (c < 0xC0)
    return U8_CONT;
  if (c < 0xC2)
    return U8_OVERLONG;
  if (c < 0xE0) {
    len = 2;
  } else if (c < 0xF0) {
    len = 3;
    if (c == 0xE0)
      lo = 0xA0;
    else if (c == 0xED)
      hi = 0x9F;
  } else if (c < 0xF5) {
    len = 4;
    if (c == 0xF0)
      lo = 0x90;
    else if (c == 0xF4)
      hi = 0x8F;
  } else {
    return c < 0xF8 ? U8_TOO_BIG : U8_BAD_BYTE;
  }
  if (n < 2 || s[1] < 0x80 || s[1] > 0xBF)
    return U8_TRUNC;
  if (s[1] < lo || s[1] > hi)
    return c == 0xE0 || c == 0xF0 ? U8_OVERLONG
           : c == 0xED            ? U8_SURROGATE
                                  : U8_TOO_BIG;
  for (int i = 2; i < len; i++)
    if ((size_t)i >= n || (s[i] & 0xC0) != 0x80)
      return U8_TRUNC;
  return len;
}

/* Indexed by -U8_*. */
static const char *const utf8_why[] = {"",
                                       "unexpected continuation byte",
                                       "overlong encoding",
                                       "encoded surrogate U+D800..U+DFFF",
                                       "code point above U+10FFFF",
                                       "byte that never appears in UTF-8",
                                       "truncated sequence"};

/* Encode cp (<= U+10FFFF, not a surrogate) at o; returns the byte count. */
static size_t utf8_put(char *o, unsigned cp) {
  static const unsigned char lead[] = {0, 0, 0xC0, 0xE0, 0xF0};
  size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  for (size_t i = n - 1; i > 0; i--, cp >>= 6)
    o[i] = (char)(0x80 | (cp & 0x3F));
  o[0] = (char)(lead[n] | cp);
  return n;
}

/* ---- parser ------------------------------------------------------------- */

struct parser {
  const unsigned char *s;
  size_t len, pos, max_depth;
  struct mg_json_error *err;
  char *scratch; /* string being decoded; mg_json_parse frees it on error */
  int rc;        /* first error, 0 while all is well */
};

/* Record the first error; line and column are worked out from the offset
 * only here, so the happy path keeps no line bookkeeping.  Returns NULL so
 * parse functions can `return fail(...)`. */
__attribute__((format(printf, 4, 5))) static void *
fail(struct parser *p, size_t off, int rc, const char *fmt, ...) {
  if (p->rc)
    return NULL;
  p->rc = rc;
  if (!p->err)
    return NULL;
  size_t line = 1, bol = 0;
  for (size_t i = 0; i < off && i < p->len; i++)
    if (p->s[i] == '\n') {
      line++;
      bol = i + 1;
    }
  struct mg_json_error *e = p->err;
  e->offset = off;
  e->line = line;
  e->col = off - bol + 1;
  int n =
      snprintf(e->msg, sizeof(e->msg), "line %zu, column %zu: ", line, e->col);
  if (n > 0 && (size_t)n < sizeof(e->msg)) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg + n, sizeof(e->msg) - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return NULL;
}

static void *oom(struct parser *p) {
  return fail(p, p->pos, -ENOMEM, "out of memory");
}

static int at(const struct parser *p, char c) {
  return p->pos < p->len && p->s[p->pos] == (unsigned char)c;
}

static int is_digit(const struct parser *p, size_t i) {
  return i < p->len && p->s[i] >= '0' && p->s[i] <= '9';
}

static int starts_with(const struct parser *p, const char *word) {
  size_t n = strlen(word);
  return p->len - p->pos >= n && memcmp(p->s + p->pos, word, n) == 0;
}

static void skip_ws(struct parser *p) {
  while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                             p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
    p->pos++;
}

/* A syntax error where `what` was expected.  Comments and single quotes
 * get messages of their own: they are the usual cause. */
static void *syntax(struct parser *p, const char *what) {
  if (p->pos >= p->len)
    return fail(p, p->pos, -EINVAL, "unexpected end of input; expected %s",
                what);
  unsigned char c = p->s[p->pos];
  if (c == '/')
    return fail(p, p->pos, -EINVAL, "comments are not allowed in JSON");
  if (c == '\'')
    return fail(p, p->pos, -EINVAL,
                "single quotes are not allowed; strings use double quotes");
  if (c >= 0x80)
    return fail(p, p->pos, -EINVAL, "unexpected byte 0x%02X; expected %s", c,
                what);
  return fail(p, p->pos, -EINVAL, "expected %s", what);
}

static struct mg_json *new_node(struct parser *p, enum mg_json_type t) {
  struct mg_json *v = calloc(1, sizeof(*v));
  if (!v)
    return oom(p);
  v->type = t;
  return v;
}

/* Make room for element n; returns the (maybe moved) array, or NULL with
 * arr still valid and owned by the caller. */
static void *grow(struct parser *p, void *arr, size_t *cap, size_t n,
                  size_t size) {
  if (n < *cap)
    return arr;
  size_t nc = *cap ? *cap * 2 : 4;
  void *q = reallocarray(arr, nc, size);
  if (!q)
    return oom(p);
  *cap = nc;
  return q;
}

static int hex4(const unsigned char *s, size_t n, unsigned *out) {
  unsigned v = 0;
  for (size_t i = 0; i < 4; i++) {
    unsigned c = i < n ? s[i] : 0, lc = c | 0x20;
    if (c >= '0' && c <= '9')
      v = v << 4 | (c - '0');
    else if (lc >= 'a' && lc <= 'f')
      v = v << 4 | (lc - 'a' + 10);
    else
      return -1;
  }
  *out = v;
  return 0;
}

/* Decode the string whose opening quote is at p->pos; returns a fresh
 * NUL-terminated buffer.  A first pass finds the closing quote, so one
 * allocation of the raw length fits: decoding never makes text longer. */
static char *parse_string(struct parser *p, size_t *out_len) {
  static const char esc_in[] = "\"\\/bfnrt", esc_out[] = "\"\\/\b\f\n\r\t";
  const unsigned char *s = p->s;
  size_t start = p->pos + 1, end = start, k = 0;
  int plain = 1; /* printable ASCII only: copied in one go (long base64
                    seals of a tenant batch are most of its bytes, N3) */
  for (;;) {
    if (end >= p->len)
      return fail(p, p->pos, -EINVAL, "unterminated string (no closing '\"')");
    if (s[end] == '"')
      break;
    if (s[end] < 0x20)
      return fail(p, end, -EINVAL,
                  "control character U+%04X must be escaped in a string",
                  s[end]);
    if (s[end] == '\\' || s[end] >= 0x80)
      plain = 0;
    end += s[end] == '\\' ? 2 : 1;
  }
  char *o = p->scratch = malloc(end - start + 1);
  if (!o)
    return oom(p);
  if (plain) {
    memcpy(o, s + start, end - start);
    k = end - start;
  }
  for (size_t i = plain ? end : start; i < end;) {
    unsigned c = s[i], e, cp, lo;
    if (c >= 0x80) {
      int n = utf8_len(s + i, end - i);
      if (n < 0)
        return fail(p, i, -EINVAL,
                    "invalid UTF-8 in a string: %s (byte 0x%02X)", utf8_why[-n],
                    c);
      memcpy(o + k, s + i, (size_t)n);
      k += (size_t)n;
      i += (size_t)n;
      continue;
    }
    if (c != '\\') {
      o[k++] = (char)c;
      i++;
      continue;
    }
    e = s[i + 1]; /* the first pass ensures it is before the closing quote */
    const char *simple = memchr(esc_in, (int)e, sizeof(esc_in) - 1);
    if (simple) {
      o[k++] = esc_out[simple - esc_in];
      i += 2;
      continue;
    }
    if (e != 'u')
      return e > 0x20 && e < 0x7F
                 ? fail(p, i, -EINVAL, "invalid escape '\\%c' in a string", e)
                 : fail(p, i, -EINVAL,
                        "invalid escape (byte 0x%02X after '\\')", e);
    if (hex4(s + i + 2, end - (i + 2), &cp) < 0)
      return fail(p, i, -EINVAL, "expected 4 hex digits after \\u");
    if (cp >= 0xDC00 && cp <= 0xDFFF)
      return fail(p, i, -EINVAL, "lone low surrogate \\u%04X", cp);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (end - (i + 6) < 6 || s[i + 6] != '\\' || s[i + 7] != 'u' ||
          hex4(s + i + 8, 4, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
        return fail(p, i, -EINVAL,
                    "high surrogate \\u%04X is not followed by a low "
                    "surrogate \\uDC00..\\uDFFF",
                    cp);
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      i += 6;
    }
    k += utf8_put(o + k, cp);
    i += 6;
  }
  o[k] = '\0';
  *out_len = k;
  p->pos = end + 1;
  p->scratch = NULL; /* the caller owns it now */
  return o;
}

static struct mg_json *parse_number(struct parser *p) {
  size_t start = p->pos, i = start;
  int neg = p->s[i] == '-', is_int = 1;
  if (neg) {
    if (++i < p->len && p->s[i] == 'I')
      return fail(p, start, -EINVAL,
                  "NaN and Infinity are not allowed in JSON");
    if (!is_digit(p, i))
      return fail(p, i, -EINVAL, "expected a digit after '-'");
  }
  if (p->s[i] == '0' && is_digit(p, i + 1))
    return fail(p, i, -EINVAL, "leading zeros are not allowed in numbers");
  while (is_digit(p, i))
    i++;
  size_t int_end = i;
  if (i < p->len && p->s[i] == '.') {
    is_int = 0;
    if (!is_digit(p, ++i))
      return fail(p, i, -EINVAL, "expected a digit after the decimal point");
    while (is_digit(p, i))
      i++;
  }
  if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
    is_int = 0;
    if (++i < p->len && (p->s[i] == '+' || p->s[i] == '-'))
      i++;
    if (!is_digit(p, i))
      return fail(p, i, -EINVAL, "expected a digit in the exponent");
    while (is_digit(p, i))
      i++;
  }

  /* strtod needs a NUL-terminated copy; the input is not terminated. */
  size_t tlen = i - start;
  char small[64], *tok = tlen < sizeof(small) ? small : malloc(tlen + 1);
  if (!tok)
    return oom(p);
  memcpy(tok, p->s + start, tlen);
  tok[tlen] = '\0';
  double d = strtod(tok, NULL);
  if (tok != small)
    free(tok);
  if (isinf(d))
    return fail(p, start, -EINVAL, "number is too large for a double");

  struct mg_json *v = new_node(p, MG_JSON_NUMBER);
  if (!v)
    return NULL;
  v->u.num.d = d;
  /* Accumulate the magnitude unsigned so that INT64_MIN fits. */
  uint64_t m = 0, max = (uint64_t)INT64_MAX + (uint64_t)neg;
  for (size_t j = start + (size_t)neg; j < int_end && is_int; j++) {
    unsigned dg = p->s[j] - '0';
    if (m > (max - dg) / 10)
      is_int = 0;
    m = m * 10 + dg;
  }
  if (is_int) {
    v->u.num.is_int = 1;
    /* -(m - 1) - 1 avoids overflowing on 2^63 */
    v->u.num.i = neg && m ? -(int64_t)(m - 1) - 1 : (int64_t)m;
  }
  p->pos = i;
  return v;
}

static struct mg_json *parse_value(struct parser *p, size_t depth);

struct keyref {
  const char *k;
  size_t len, off;
};

static int keyref_cmp(const void *a, const void *b) {
  const struct keyref *x = a, *y = b;
  if (x->len != y->len)
    return x->len < y->len ? -1 : 1;
  int c = memcmp(x->k, y->k, x->len);
  return c ? c : (x->off > y->off) - (x->off < y->off);
}

/* Sorting finds duplicates in O(n log n), so a huge object cannot make this
 * quadratic.  The key named is the duplicate met first in the text; control
 * bytes in it become '?' and a long one is cut on a character boundary. */
static int check_dups(struct parser *p, struct keyref *r, size_t n) {
  const struct keyref *dup = NULL;
  char name[72];
  qsort(r, n, sizeof(*r), keyref_cmp);
  for (size_t i = 1; i < n; i++)
    if (r[i].len == r[i - 1].len && memcmp(r[i].k, r[i - 1].k, r[i].len) == 0 &&
        (!dup || r[i].off < dup->off))
      dup = &r[i];
  if (!dup)
    return 0;
  size_t len = dup->len < sizeof(name) - 4 ? dup->len : sizeof(name) - 4, i;
  while (len < dup->len && len > 0 && (dup->k[len] & 0xC0) == 0x80)
    len--;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)dup->k[i];
    name[i] = c < 0x20 || c == 0x7F ? '?' : (char)c;
  }
  strcpy(name + i, len < dup->len ? "..." : "");
  fail(p, dup->off, -EINVAL, "duplicate object key \"%s\"", name);
  return -1;
}

/* An array or object; the separators and their errors are shared. */
static struct mg_json *parse_container(struct parser *p, size_t depth) {
  int obj = p->s[p->pos] == '{';
  char close = obj ? '}' : ']';
  struct mg_json *v = new_node(p, obj ? MG_JSON_OBJECT : MG_JSON_ARRAY);
  struct keyref *refs = NULL;
  size_t cap = 0, rcap = 0;
  if (!v)
    return NULL;
  p->pos++;
  skip_ws(p);
  if (at(p, close))
    goto done;
  for (;;) {
    if (obj) {
      size_t n = v->u.obj.n, koff = p->pos;
      if (!at(p, '"')) {
        syntax(p, "a string key in double quotes");
        goto fail;
      }
      struct mg_json_member *m = grow(p, v->u.obj.members, &cap, n, sizeof(*m));
      if (!m)
        goto fail;
      v->u.obj.members = m;
      struct keyref *r = grow(p, refs, &rcap, n, sizeof(*r));
      if (!r)
        goto fail;
      refs = r;
      m += n;
      m->value = NULL;
      if (!(m->key = parse_string(p, &m->key_len)))
        goto fail;
      v->u.obj.n++; /* from here mg_json_free owns the key */
      refs[n] = (struct keyref){m->key, m->key_len, koff};
      skip_ws(p);
      if (!at(p, ':')) {
        syntax(p, "':' after an object key");
        goto fail;
      }
      p->pos++;
      if (!(m->value = parse_value(p, depth)))
        goto fail;
    } else {
      struct mg_json **items =
          grow(p, v->u.arr.items, &cap, v->u.arr.n, sizeof(*items));
      if (!items)
        goto fail;
      v->u.arr.items = items;
      if (!(items[v->u.arr.n] = parse_value(p, depth)))
        goto fail;
      v->u.arr.n++;
    }
    skip_ws(p);
    if (at(p, close))
      break;
    if (!at(p, ',')) {
      syntax(p, obj ? "',' or '}' after an object member"
                    : "',' or ']' after an array element");
      goto fail;
    }
    size_t comma = p->pos++;
    skip_ws(p);
    if (at(p, close)) {
      fail(p, comma, -EINVAL, "trailing comma before '%c'", close);
      goto fail;
    }
  }
  if (obj && check_dups(p, refs, v->u.obj.n) < 0)
    goto fail;
done:
  p->pos++;
  free(refs);
  return v;
fail:
  free(refs);
  mg_json_free(v);
  return NULL;
}

static struct mg_json *parse_literal(struct parser *p, const char *word,
                                     enum mg_json_type t) {
  if (!starts_with(p, word))
    return fail(p, p->pos, -EINVAL, "invalid literal; expected '%s'", word);
  p->pos += strlen(word);
  return new_node(p, t);
}

/* depth: containers already open around this value. */
static struct mg_json *parse_value(struct parser *p, size_t depth) {
  skip_ws(p);
  if (p->pos >= p->len)
    return syntax(p, "a value");
  unsigned char c = p->s[p->pos];
  if (c == '[' || c == '{')
    return depth >= p->max_depth
               ? fail(p, p->pos, -E2BIG,
                      "nesting is deeper than the limit of %zu levels",
                      p->max_depth)
               : parse_container(p, depth + 1);
  if (c == '"') {
    struct mg_json *v = new_node(p, MG_JSON_STRING);
    if (v && !(v->u.str.s = parse_string(p, &v->u.str.len))) {
      free(v);
      v = NULL;
    }
    return v;
  }
  if (c == 't')
    return parse_literal(p, "true", MG_JSON_TRUE);
  if (c == 'f')
    return parse_literal(p, "false", MG_JSON_FALSE);
  if (c == 'n')
    return parse_literal(p, "null", MG_JSON_NULL);
  if (c == '-' || (c >= '0' && c <= '9'))
    return parse_number(p);
  if (c == '+')
    return fail(p, p->pos, -EINVAL, "'+' is not allowed before a number");
  if (c == '.')
    return fail(p, p->pos, -EINVAL,
                "a number must start with a digit, not '.'");
  if (starts_with(p, "NaN") || starts_with(p, "Infinity"))
    return fail(p, p->pos, -EINVAL, "NaN and Infinity are not allowed in JSON");
  if (starts_with(p, "\xEF\xBB\xBF"))
    return fail(p, p->pos, -EINVAL, "a byte order mark is not allowed");
  return syntax(p, "a value");
}

int mg_json_parse(const char *text, size_t len,
                  const struct mg_json_limits *limits, struct mg_json **out,
                  struct mg_json_error *err) {
  struct parser p = {.s = (const unsigned char *)text, .len = len, .err = err};
  struct mg_json *v = NULL;
  p.max_depth = limits && limits->max_depth ? limits->max_depth
                                            : MG_JSON_DEFAULT_MAX_DEPTH;
  if (p.max_depth > MG_JSON_MAX_DEPTH_CEILING) /* bounds the recursion */
    p.max_depth = MG_JSON_MAX_DEPTH_CEILING;
  if (err)
    memset(err, 0, sizeof(*err));
  if (out)
    *out = NULL;
  if (!out || (!text && len)) {
    p.len = 0; /* keeps fail() away from a NULL text */
    fail(&p, 0, -EINVAL, "invalid arguments");
  } else if (limits && limits->max_bytes && len > limits->max_bytes) {
    fail(&p, limits->max_bytes, -E2BIG,
         "input is %zu bytes, over the limit of %zu bytes", len,
         limits->max_bytes);
  } else if (skip_ws(&p), p.pos >= p.len) {
    fail(&p, p.pos, -EINVAL, "empty input; expected a JSON value");
  } else if ((v = parse_value(&p, 0))) {
    skip_ws(&p);
    if (at(&p, '/'))
      fail(&p, p.pos, -EINVAL, "comments are not allowed in JSON");
    else if (p.pos < p.len)
      fail(&p, p.pos, -EINVAL, "trailing data after the JSON value");
  }
  if (p.rc) {
    free(p.scratch);
    mg_json_free(v);
    return p.rc;
  }
  *out = v;
  return 0;
}

void mg_json_free(struct mg_json *v) {
  if (!v)
    return;
  switch (v->type) {
  case MG_JSON_STRING:
    free(v->u.str.s);
    break;
  case MG_JSON_ARRAY:
    for (size_t i = 0; i < v->u.arr.n; i++)
      mg_json_free(v->u.arr.items[i]);
    free(v->u.arr.items);
    break;
  case MG_JSON_OBJECT:
    for (size_t i = 0; i < v->u.obj.n; i++) {
      free(v->u.obj.members[i].key);
      mg_json_free(v->u.obj.members[i].value);
    }
    free(v->u.obj.members);
    break;
  default:
    break;
  }
  free(v);
}

/* ---- lookups ------------------------------------------------------------ */

const struct mg_json *mg_json_get(const struct mg_json *obj, const char *key) {
  if (!obj || obj->type != MG_JSON_OBJECT || !key)
    return NULL;
  size_t n = strlen(key);
  for (size_t i = 0; i < obj->u.obj.n; i++) {
    const struct mg_json_member *m = &obj->u.obj.members[i];
    if (m->key_len == n && memcmp(m->key, key, n) == 0)
      return m->value;
  }
  return NULL;
}

/* A string with an embedded NUL is refused: as a C string it would read as
 * a shorter, different value ("admin\u0000x" as "admin"). */
const char *mg_json_get_str(const struct mg_json *obj, const char *key) {
  const struct mg_json *v = mg_json_get(obj, key);
  if (!v || v->type != MG_JSON_STRING || strlen(v->u.str.s) != v->u.str.len)
    return NULL;
  return v->u.str.s;
}

int mg_json_get_int(const struct mg_json *obj, const char *key, int64_t *out) {
  const struct mg_json *v = mg_json_get(obj, key);
  if (!v)
    return -ENOENT;
  if (v->type != MG_JSON_NUMBER || !v->u.num.is_int)
    return -EINVAL;
  if (out)
    *out = v->u.num.i;
  return 0;
}

int mg_json_get_bool(const struct mg_json *obj, const char *key) {
  const struct mg_json *v = mg_json_get(obj, key);
  if (!v || (v->type != MG_JSON_TRUE && v->type != MG_JSON_FALSE))
    return -1;
  return v->type == MG_JSON_TRUE;
}

/* ---- writer ------------------------------------------------------------- */

/* How mg_json_escape treats a byte: 0 copied as it is (printable ASCII but
 * '"' and '\\'), 1 escaped (controls, '"', '\\'), 2 the start or middle of a
 * UTF-8 sequence (checked). */
#define C8(k) k, k, k, k, k, k, k, k
static const unsigned char json_class[256] = {
    C8(1), C8(1), C8(1), C8(1),                         /* 00-1F */
    0, 0, 1, 0, 0, 0, 0, 0, C8(0),                      /* 20-2F: '"' */
    C8(0), C8(0), C8(0), C8(0),                         /* 30-4F */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,     /* 50-5F: '\\' */
    C8(0), C8(0), C8(0), C8(0),                         /* 60-7F */
    C8(2), C8(2), C8(2), C8(2), C8(2), C8(2), C8(2), C8(2),
    C8(2), C8(2), C8(2), C8(2), C8(2), C8(2), C8(2), C8(2), /* 80-FF */
};
#undef C8

void mg_json_escape(struct mg_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  static const char short_in[] = "\"\\\b\f\n\r\t", short_out[] = "\"\\bfnrt";
  size_t run = 0; /* start of the bytes not yet copied out */
  if (!s)
    s = "", n = 0;
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  /* Most strings need no escape: then one copy, quotes included. */
  while (i < n) {
    if (json_class[u[i]] == 0) {
      i++;
    } else if (u[i] >= 0xE1 && u[i] <= 0xEF && u[i] != 0xED && n - i >= 3 &&
               (u[i + 1] & 0xC0) == 0x80 && (u[i + 2] & 0xC0) == 0x80) {
      i += 3;
    } else {
      break;
    }
  }
  if (i == n) {
    char *p = mg_buf_extend(b, n + 2);
    if (p) {
      p[0] = '"';
      memcpy(p + 1, s, n);
      p[n + 1] = '"';
    }
    return;
  }
  mg_buf_putc(b, '"');
  for (; i < n;) {
    /* Fast paths for what case states are mostly made of (the escape was
     * most of a case GET's cost): runs of printable ASCII, four bytes a
     * step, and well-formed 3-byte UTF-8 outside E0 and ED (kana and
     * kanji), which utf8_len would accept as it is. */
    while (n - i >= 4 && !(json_class[u[i]] | json_class[u[i + 1]] |
                           json_class[u[i + 2]] | json_class[u[i + 3]]))
      i += 4;
    if (i == n)
      break;
    unsigned c = u[i];
    if (json_class[c] == 0) {
      i++;
      continue;
    }
    if (c >= 0xE1 && c <= 0xEF && c != 0xED && n - i >= 3 &&
        (u[i + 1] & 0xC0) == 0x80 && (u[i + 2] & 0xC0) == 0x80) {
      i += 3;
      continue;
    }
    char tmp[7] = {'\\', 'u', '0', '0', hex[c >> 4 & 15], hex[c & 15], '\0'};
    const char *esc = tmp, *sh;
    if (c >= 0x80) {
      int l = utf8_len(u + i, n - i);
      if (l > 0) {
        i += (size_t)l;
        continue;
      }
      esc = "\xEF\xBF\xBD"; /* U+FFFD, one per invalid byte */
    } else if ((sh = memchr(short_in, (int)c, sizeof(short_in) - 1))) {
      tmp[1] = short_out[sh - short_in];
      tmp[2] = '\0';
    }
    mg_buf_append(b, s + run, i - run);
    mg_buf_puts(b, esc);
    run = ++i;
  }
  mg_buf_append(b, s + run, n - run);
  mg_buf_putc(b, '"');
}

void mg_jw_init(struct mg_jw *w, struct mg_buf *b) {
  memset(w, 0, sizeof(*w));
  w->b = b;
}

/*
 * Levels: the container open at depth d (1..MG_JW_MAX_DEPTH) uses slot d-1.
 * At depth 0, count[0] records that the one top-level value was written, so
 * a second one (which would run together, "12") is refused.
 */
static int begin_value(struct mg_jw *w) {
  if (w->bad)
    return -1;
  if (w->depth == 0) {
    if (w->count[0])
      goto bad;
    w->count[0] = 1;
    return 0;
  }
  int d = w->depth - 1;
  if (w->in_obj[d]) {
    if (!w->want_value)
      goto bad;
    w->want_value = 0;
    return 0;
  }
  if (w->count[d])
    mg_buf_putc(w->b, ',');
  w->count[d] = 1;
  return 0;
bad:
  w->bad = 1;
  return -1;
}

static void open_container(struct mg_jw *w, int obj) {
  if (w->bad || w->depth >= MG_JW_MAX_DEPTH) {
    w->bad = 1;
    return;
  }
  if (begin_value(w) < 0)
    return;
  w->in_obj[w->depth] = (unsigned char)obj;
  w->count[w->depth] = 0;
  w->depth++;
  mg_buf_putc(w->b, obj ? '{' : '[');
}

static void close_container(struct mg_jw *w, int obj) {
  if (w->bad || w->depth == 0 || w->in_obj[w->depth - 1] != obj ||
      w->want_value) {
    w->bad = 1;
    return;
  }
  w->depth--;
  if (w->depth == 0)
    w->count[0] = 1; /* slot 0 goes back to meaning "top level written" */
  mg_buf_putc(w->b, obj ? '}' : ']');
}

void mg_jw_obj(struct mg_jw *w) { open_container(w, 1); }
void mg_jw_obj_end(struct mg_jw *w) { close_container(w, 1); }
void mg_jw_arr(struct mg_jw *w) { open_container(w, 0); }
void mg_jw_arr_end(struct mg_jw *w) { close_container(w, 0); }

void mg_jw_key(struct mg_jw *w, const char *key) {
  int d = w->depth - 1;
  if (w->bad || !key || w->depth == 0 || !w->in_obj[d] || w->want_value) {
    w->bad = 1;
    return;
  }
  if (w->count[d])
    mg_buf_putc(w->b, ',');
  w->count[d] = 1;
  mg_json_escape(w->b, key, strlen(key));
  mg_buf_putc(w->b, ':');
  w->want_value = 1;
}

void mg_jw_str(struct mg_jw *w, const char *s) {
  if (!s)
    mg_jw_null(w);
  else
    mg_jw_strn(w, s, strlen(s));
}

void mg_jw_strn(struct mg_jw *w, const char *s, size_t n) {
  if (begin_value(w) == 0)
    mg_json_escape(w->b, s, n);
}

/* Decimal digits without printf (two vsnprintf calls per number were a
 * visible part of a case state's cost). */
static void put_u64(struct mg_buf *b, uint64_t v, int neg) {
  char tmp[24];
  size_t i = sizeof(tmp);
  do
    tmp[--i] = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  if (neg)
    tmp[--i] = '-';
  mg_buf_append(b, tmp + i, sizeof(tmp) - i);
}

void mg_jw_int(struct mg_jw *w, int64_t v) {
  if (begin_value(w) == 0)
    put_u64(w->b, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, v < 0);
}

void mg_jw_uint(struct mg_jw *w, uint64_t v) {
  if (begin_value(w) == 0)
    put_u64(w->b, v, 0);
}

/* The shortest of %.15g..%.17g that reads back as the same double, so 0.1
 * is written "0.1" rather than "0.10000000000000001". */
void mg_jw_double(struct mg_jw *w, double v) {
  char tmp[40];
  if (!isfinite(v)) {
    mg_jw_null(w);
    return;
  }
  if (begin_value(w) < 0)
    return;
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
    if (strtod(tmp, NULL) == v)
      break;
  }
  mg_buf_puts(w->b, tmp);
}

void mg_jw_bool(struct mg_jw *w, int v) {
  if (begin_value(w) == 0)
    mg_buf_puts(w->b, v ? "true" : "false");
}

void mg_jw_null(struct mg_jw *w) {
  if (begin_value(w) == 0)
    mg_buf_puts(w->b, "null");
}

/* Empty or NULL text would leave a hole ("[,1]"), so it is misuse. */
void mg_jw_raw(struct mg_jw *w, const char *json) {
  if (!json || !*json) {
    w->bad = 1;
    return;
  }
  if (begin_value(w) == 0)
    mg_buf_puts(w->b, json);
}

void mg_jw_kstr(struct mg_jw *w, const char *key, const char *s) {
  mg_jw_key(w, key);
  mg_jw_str(w, s);
}

void mg_jw_kint(struct mg_jw *w, const char *key, int64_t v) {
  mg_jw_key(w, key);
  mg_jw_int(w, v);
}

void mg_jw_kbool(struct mg_jw *w, const char *key, int v) {
  mg_jw_key(w, key);
  mg_jw_bool(w, v);
}

void mg_jw_kraw(struct mg_jw *w, const char *key, const char *json) {
  mg_jw_key(w, key);
  mg_jw_raw(w, json);
}
