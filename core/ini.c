/*
 * ini.c — INI syntax (see ini.h).  Every problem names FILE:LINE.
 */
#include "ini.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

char *mg__trimdup(const char *p, size_t n) {
  while (n && isspace((unsigned char)*p)) {
    p++;
    n--;
  }
  while (n && isspace((unsigned char)p[n - 1]))
    n--;
  return strndup(p, n);
}

void mg_ini_free(struct mg_ini *ini) {
  for (size_t i = 0; i < ini->n; i++) {
    for (size_t j = 0; j < ini->s[i].n_kv; j++) {
      free(ini->s[i].kv[j].key);
      free(ini->s[i].kv[j].value);
    }
    free(ini->s[i].kv);
    free(ini->s[i].type);
    free(ini->s[i].id);
  }
  free(ini->s);
  ini->s = NULL;
  ini->n = 0;
}

static int is_key_char(int c) { return islower(c) || isdigit(c) || c == '_'; }

/* Strip a comment that starts at `;`/`#` after white space (outside quotes). */
static size_t value_end(const char *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((v[i] == ';' || v[i] == '#') &&
        (i == 0 || isspace((unsigned char)v[i - 1])))
      return i;
  return n;
}

static int parse_header(const char *p, size_t n, struct mg_ini_section *sec,
                        const char *file, int line, struct mg_err *err) {
  /* p/n: the text between [ and ] */
  size_t i = 0, t0;
  while (i < n && isspace((unsigned char)p[i]))
    i++;
  t0 = i;
  while (i < n && is_key_char((unsigned char)p[i]))
    i++;
  if (i == t0)
    return mg_err_set(err, -EINVAL,
                      "%s:%d: a section name must be lowercase letters, digits "
                      "or _",
                      file, line);
  sec->type = strndup(p + t0, i - t0);
  while (i < n && isspace((unsigned char)p[i]))
    i++;
  if (i < n) {
    if (p[i] != '"')
      return mg_err_set(err, -EINVAL,
                        "%s:%d: expected `[type \"id\"]` in the section header",
                        file, line);
    size_t q0 = ++i;
    while (i < n && p[i] != '"')
      i++;
    if (i >= n || i == q0)
      return mg_err_set(err, -EINVAL,
                        "%s:%d: the section id must be a non-empty quoted "
                        "string",
                        file, line);
    for (size_t k = q0; k < i; k++)
      if (!(isalnum((unsigned char)p[k]) || strchr("-_.", p[k])))
        return mg_err_set(err, -EINVAL,
                          "%s:%d: a section id may hold only letters, digits, "
                          "- _ and .",
                          file, line);
    sec->id = strndup(p + q0, i - q0);
    i++;
    while (i < n && isspace((unsigned char)p[i]))
      i++;
    if (i < n)
      return mg_err_set(err, -EINVAL, "%s:%d: unexpected text after the id",
                        file, line);
  }
  if (!sec->type || (sec->id == NULL && i < n))
    return mg_err_set(err, -ENOMEM, "out of memory");
  return 0;
}

int mg_ini_read(const char *text, size_t len, const char *file,
                struct mg_ini *ini, struct mg_err *err) {
  size_t pos = 0;
  int line = 0;
  if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
    pos = 3; /* a BOM from an editor on Windows */
  if (memchr(text, '\0', len))
    return ini->err_line = line,
           mg_err_set(err, -EINVAL, "%s: contains a NUL byte (not a text file)",
                      file);
  while (pos < len) {
    const char *p = text + pos;
    const char *nl = memchr(p, '\n', len - pos);
    size_t n = nl ? (size_t)(nl - p) : len - pos;
    pos += n + (nl ? 1 : 0);
    line++;
    if (n && p[n - 1] == '\r')
      n--;
    while (n && isspace((unsigned char)*p)) {
      p++;
      n--;
    }
    while (n && isspace((unsigned char)p[n - 1]))
      n--;
    if (n == 0 || *p == ';' || *p == '#')
      continue;
    if (*p == '[') {
      size_t close = value_end(p, n);
      while (close && isspace((unsigned char)p[close - 1]))
        close--;
      if (close < 2 || p[close - 1] != ']')
        return ini->err_line = line,
               mg_err_set(err, -EINVAL,
                          "%s:%d: a section header must end with ]", file,
                          line);
      struct mg_ini_section *s = realloc(ini->s, (ini->n + 1) * sizeof(*s));
      if (!s)
        return mg_err_set(err, -ENOMEM, "out of memory");
      ini->s = s;
      memset(&s[ini->n], 0, sizeof(*s));
      s[ini->n].line = line;
      ini->n++;
      int rc = parse_header(p + 1, close - 2, &s[ini->n - 1], file, line, err);
      if (rc) {
        ini->err_line = line;
        return rc;
      }
      continue;
    }
    if (ini->n == 0)
      return ini->err_line = line,
             mg_err_set(err, -EINVAL,
                        "%s:%d: `key = value` before any [section]", file,
                        line);
    const char *eq = memchr(p, '=', n);
    size_t kl = eq ? (size_t)(eq - p) : 0;
    while (kl && isspace((unsigned char)p[kl - 1]))
      kl--;
    if (!eq || kl == 0)
      return ini->err_line = line,
             mg_err_set(err, -EINVAL, "%s:%d: expected `key = value`", file,
                        line);
    for (size_t i = 0; i < kl; i++)
      if (!is_key_char((unsigned char)p[i]))
        return ini->err_line = line,
               mg_err_set(err, -EINVAL,
                          "%s:%d: a key must be lowercase letters, digits or _",
                          file, line);
    const char *v = eq + 1;
    size_t vn = n - (size_t)(v - p);
    while (vn && isspace((unsigned char)*v)) {
      v++;
      vn--;
    }
    char *value;
    if (vn && *v == '"') {
      const char *q = memchr(v + 1, '"', vn - 1);
      if (!q)
        return ini->err_line = line,
               mg_err_set(err, -EINVAL, "%s:%d: unterminated quoted value",
                          file, line);
      size_t rest = vn - (size_t)(q + 1 - v);
      const char *r = q + 1;
      while (rest && isspace((unsigned char)*r)) {
        r++;
        rest--;
      }
      if (rest && *r != ';' && *r != '#')
        return ini->err_line = line,
               mg_err_set(err, -EINVAL,
                          "%s:%d: unexpected text after the quoted value", file,
                          line);
      value = strndup(v + 1, (size_t)(q - v - 1));
    } else {
      value = mg__trimdup(v, value_end(v, vn));
    }
    struct mg_ini_section *sec = &ini->s[ini->n - 1];
    struct mg_config_kv *kv = realloc(sec->kv, (sec->n_kv + 1) * sizeof(*kv));
    if (!kv || !value) {
      free(value);
      if (kv)
        sec->kv = kv;
      return mg_err_set(err, -ENOMEM, "out of memory");
    }
    sec->kv = kv;
    kv[sec->n_kv].key = strndup(p, kl);
    kv[sec->n_kv].value = value;
    kv[sec->n_kv].line = line;
    sec->n_kv++;
    if (!kv[sec->n_kv - 1].key)
      return mg_err_set(err, -ENOMEM, "out of memory");
  }
  return 0;
}
