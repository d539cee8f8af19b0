/*
 * mgp.h — helpers shared by the device plugins (linked into each as a
 * static, position-independent library, hidden like the rest of a
 * plugin): a growing string with a JSON string writer, and a bounds-checked
 * reader of the top level of a JSON object.  Plugins do not link mgcore.
 */
#ifndef MGP_H
#define MGP_H
#include <stddef.h>

/* A growing NUL-terminated string; `oom` is sticky. */
struct mgp_sb {
  char *p;
  size_t n, cap;
  int oom;
};

void mgp_sb_add(struct mgp_sb *b, const char *s, size_t n);
void mgp_sb_puts(struct mgp_sb *b, const char *s);
/* For short pieces only (at most 511 bytes; longer sets oom). */
void mgp_sb_printf(struct mgp_sb *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append s as a JSON string literal. */
void mgp_sb_jstr(struct mgp_sb *b, const char *s);

/* describe(): copy b into buf (len bytes) and free b; the bytes written,
 * or -1 when b ran out of memory or does not fit. */
int mgp_sb_take(struct mgp_sb *b, char *buf, size_t len);

/* A JSON text being read: s[i..n). */
struct mgp_jr {
  const char *s;
  size_t i, n;
};

void mgp_jr_ws(struct mgp_jr *r);
/* A string at r->i, decoded into *out (malloc'd) when out is not NULL;
 * NUL (raw or \u0000) is refused.  0 or -1. */
int mgp_jr_string(struct mgp_jr *r, char **out);
/* Skip any value (depth-limited).  0 or -1. */
int mgp_jr_value(struct mgp_jr *r, int depth);
/* The string member `key` of a JSON object (*out malloc'd, NULL when
 * absent).  0, or -1 when the text is not a JSON object. */
int mgp_json_get_str(const char *json, const char *key, char **out);

/* write(2) all of p, again after EINTR: 0 or -1 (errno set). */
int mgp_write_all(int fd, const char *p, size_t n);
/* A config check (struct mg_config_item.check) for an absolute path. */
const char *mgp_check_abs(const void *stored);
#endif
