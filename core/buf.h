/*
 * buf.h — a growable byte buffer.  Allocation failure is sticky: after it
 * every append is a no-op and `oom` stays set, so callers check once at the
 * end instead of after every append.
 */
#ifndef MG_BUF_H
#define MG_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct mg_buf {
  char *data; /* NUL-terminated when not NULL */
  size_t len;
  size_t cap;
  int oom;
};

void mg_buf_init(struct mg_buf *b);
void mg_buf_free(struct mg_buf *b);
void mg_buf_reset(struct mg_buf *b); /* len = 0, keeps memory */
void mg_buf_append(struct mg_buf *b, const void *p, size_t n);
void mg_buf_puts(struct mg_buf *b, const char *s);
void mg_buf_putc(struct mg_buf *b, char c);
/* Room for n more bytes at the end: where to write them (len grows by n;
 * the caller fills all n, the NUL after them is set), or NULL after an
 * allocation failure. */
char *mg_buf_extend(struct mg_buf *b, size_t n);
void mg_buf_printf(struct mg_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void mg_buf_vprintf(struct mg_buf *b, const char *fmt, va_list ap);
/* Hand the data to the caller (free() it); the buffer is left empty.
 * Returns NULL on earlier allocation failure. */
char *mg_buf_steal(struct mg_buf *b);

#endif
