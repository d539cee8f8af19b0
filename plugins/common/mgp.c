/*
 * mgp.c — small helpers every device plugin needs (mgp.h).  Plugins do not
 * link mgcore: they see the daemon only through struct mg_host.
 */
#include "mgp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#define JSON_DEPTH_MAX 32

void mgp_sb_add(struct mgp_sb *b, const char *s, size_t n) {
  if (b->oom)
    return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

void mgp_sb_puts(struct mgp_sb *b, const char *s) { mgp_sb_add(b, s, strlen(s)); }

void mgp_sb_printf(struct mgp_sb *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof(tmp))
    b->oom = 1; /* only short pieces go through here */
  else
    mgp_sb_add(b, tmp, (size_t)n);
}

/* Append s as a JSON string literal. */
void mgp_sb_jstr(struct mgp_sb *b, const char *s) {
  mgp_sb_add(b, "\"", 1);
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      mgp_sb_add(b, e, 2);
    } else if (c < 0x20) {
      mgp_sb_printf(b, "\\u%04x", c);
    } else {
      mgp_sb_add(b, s, 1);
    }
  }
  mgp_sb_add(b, "\"", 1);
}

/* A minimal reader for the top level of a JSON object: enough to pull out
 * string members, skipping every other value.  Bounds-checked. */

void mgp_jr_ws(struct mgp_jr *r) {
  while (r->i < r->n && r->s[r->i] && strchr(" \t\r\n", r->s[r->i]))
    r->i++;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static int jr_u4(struct mgp_jr *r, unsigned *cp) {
  *cp = 0;
  if (r->n - r->i < 4)
    return -1;
  for (int k = 0; k < 4; k++) {
    int v = hexval(r->s[r->i++]);
    if (v < 0)
      return -1;
    *cp = *cp << 4 | (unsigned)v;
  }
  return 0;
}

/* A string at r->i, decoded into *out (malloc'd) when out is not NULL.
 * NUL (raw or \u0000) is refused: it would cut a path short. */
int mgp_jr_string(struct mgp_jr *r, char **out) {
  size_t start = r->i + 1, o = 0;
  char *d = NULL;
  if (r->i >= r->n || r->s[r->i] != '"')
    return -1;
  r->i++;
  if (out && !(d = malloc(r->n - start + 1))) /* decoded is never longer */
    return -1;
  while (r->i < r->n && r->s[r->i] != '"') {
    unsigned char c = (unsigned char)r->s[r->i++];
    unsigned u;
    if (c < 0x20)
      goto bad;
    if (c != '\\') {
      if (d)
        d[o++] = (char)c;
      continue;
    }
    if (r->i >= r->n)
      goto bad;
    c = (unsigned char)r->s[r->i++];
    const char *esc = strchr("\"\\/bfnrt", c);
    if (c && esc) {
      if (d)
        d[o++] = "\"\\/\b\f\n\r\t"[esc - "\"\\/bfnrt"];
      continue;
    }
    /* \u0000 is skipped over but never decoded: the decoding pass
     * names its place */
    if (c != 'u' || jr_u4(r, &u) || (u == 0 && d) ||
        (u >= 0xDC00 && u < 0xE000))
      goto bad;
    if (u >= 0xD800 && u < 0xDC00) { /* a surrogate pair */
      unsigned lo;
      if (r->n - r->i < 2 || r->s[r->i] != '\\' || r->s[r->i + 1] != 'u')
        goto bad;
      r->i += 2;
      if (jr_u4(r, &lo) || lo < 0xDC00 || lo >= 0xE000)
        goto bad;
      u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (!d)
      continue;
    if (u < 0x80) {
      d[o++] = (char)u;
    } else if (u < 0x800) {
      d[o++] = (char)(0xC0 | u >> 6);
      d[o++] = (char)(0x80 | (u & 0x3F));
    } else if (u < 0x10000) {
      d[o++] = (char)(0xE0 | u >> 12);
      d[o++] = (char)(0x80 | (u >> 6 & 0x3F));
      d[o++] = (char)(0x80 | (u & 0x3F));
    } else {
      d[o++] = (char)(0xF0 | u >> 18);
      d[o++] = (char)(0x80 | (u >> 12 & 0x3F));
      d[o++] = (char)(0x80 | (u >> 6 & 0x3F));
      d[o++] = (char)(0x80 | (u & 0x3F));
    }
  }
  if (r->i >= r->n)
    goto bad;
  r->i++; /* closing quote */
  if (d) {
    d[o] = '\0';
    *out = d;
  }
  return 0;
bad:
  if (d) /* it may have held a PIN (devices/pcsc) */
    explicit_bzero(d, o);
  free(d);
  return -1;
}

int mgp_jr_value(struct mgp_jr *r, int depth) {
  if (depth > JSON_DEPTH_MAX || r->i >= r->n)
    return -1;
  char c = r->s[r->i];
  if (c == '"')
    return mgp_jr_string(r, NULL);
  if (c == '{' || c == '[') {
    char close = c == '{' ? '}' : ']';
    r->i++;
    mgp_jr_ws(r);
    if (r->i < r->n && r->s[r->i] == close) {
      r->i++;
      return 0;
    }
    for (;;) {
      if (c == '{') {
        if (mgp_jr_string(r, NULL))
          return -1;
        mgp_jr_ws(r);
        if (r->i >= r->n || r->s[r->i++] != ':')
          return -1;
        mgp_jr_ws(r);
      }
      if (mgp_jr_value(r, depth + 1))
        return -1;
      mgp_jr_ws(r);
      if (r->i >= r->n)
        return -1;
      if (r->s[r->i] == close) {
        r->i++;
        return 0;
      }
      if (r->s[r->i++] != ',')
        return -1;
      mgp_jr_ws(r);
    }
  }
  size_t start = r->i; /* number or literal: checked loosely, it is skipped */
  while (r->i < r->n && r->s[r->i] &&
         strchr("-+.0123456789eEtruefalsn", r->s[r->i]))
    r->i++;
  return r->i > start ? 0 : -1;
}

/* The string member `key` of the object `json`: 0 and *out (malloc'd),
 * 1 when absent or JSON null (or json is NULL), -1 when malformed or not a
 * string. */
int mgp_json_get_str(const char *json, const char *key, char **out) {
  struct mgp_jr r = {json, 0, json ? strlen(json) : 0};
  *out = NULL;
  if (!json)
    return 1;
  mgp_jr_ws(&r);
  if (r.i >= r.n || r.s[r.i++] != '{')
    return -1;
  mgp_jr_ws(&r);
  if (r.i < r.n && r.s[r.i] == '}')
    return 1;
  for (;;) {
    char *k = NULL;
    if (mgp_jr_string(&r, &k))
      return -1;
    int match = strcmp(k, key) == 0;
    free(k);
    mgp_jr_ws(&r);
    if (r.i >= r.n || r.s[r.i++] != ':')
      return -1;
    mgp_jr_ws(&r);
    if (match) {
      if (r.n - r.i >= 4 && strncmp(r.s + r.i, "null", 4) == 0)
        return 1;
      return mgp_jr_string(&r, out);
    }
    if (mgp_jr_value(&r, 1))
      return -1;
    mgp_jr_ws(&r);
    if (r.i >= r.n)
      return -1;
    if (r.s[r.i] == '}')
      return 1;
    if (r.s[r.i++] != ',')
      return -1;
    mgp_jr_ws(&r);
  }
}

int mgp_sb_take(struct mgp_sb *b, char *buf, size_t len) {
  int n = -1;
  if (!b->oom && b->p && b->n < len) {
    memcpy(buf, b->p, b->n + 1);
    n = (int)b->n;
  }
  free(b->p);
  b->p = NULL;
  return n;
}

int mgp_write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

const char *mgp_check_abs(const void *stored) {
  const char *s = *(char *const *)stored;
  return s && s[0] == '/' ? NULL : "must be an absolute path";
}
