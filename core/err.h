/*
 * err.h — an error message travelling with a negative errno result.
 * Functions that can fail for reasons a person must read take an optional
 * `struct mg_err *err` (out) and fill it with one English sentence that
 * names the place (file:line, offset, key) and the rule broken.
 */
#ifndef MG_ERR_H
#define MG_ERR_H

#define MG_ERR_MSG_MAX 512

struct mg_err {
  char msg[MG_ERR_MSG_MAX];
};

/* Format into err (when not NULL); returns `code` for `return mg_err_set(...)`. */
int mg_err_set(struct mg_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
