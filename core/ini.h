/*
 * ini.h — the INI syntax shared by madoguchid.conf (config.c) and the
 * pack's pack.ini and form.ini (pack.c): `[section]` or `[type "id"]`,
 * `key = value`, `;`/`#` comments at the start of a line or after white
 * space, optional double quotes around a value, a UTF-8 BOM accepted.
 * It reads syntax only; what sections and keys mean is the caller's.
 */
#ifndef MG_INI_H
#define MG_INI_H

#include <stddef.h>

#include "config.h"
#include "err.h"

struct mg_ini_section {
  char *type; /* "daemon", or "reader" of [reader "id"] */
  char *id;   /* NULL for plain sections */
  int line;
  struct mg_config_kv *kv; /* in file order */
  size_t n_kv;
};

struct mg_ini {
  struct mg_ini_section *s;
  size_t n;
  int err_line; /* line of the syntax error, when mg_ini_read failed */
};

/* Read text[0..len) (`file` names it in messages).  0, or -EINVAL with
 * "FILE:LINE: rule" for the first syntax error, or -ENOMEM.  *ini holds
 * what was read so far either way: free it with mg_ini_free. */
int mg_ini_read(const char *text, size_t len, const char *file,
                struct mg_ini *ini, struct mg_err *err);
void mg_ini_free(struct mg_ini *ini);

/* A malloc'd copy of p[0..n) without leading and trailing white space. */
char *mg__trimdup(const char *p, size_t n);

#endif
