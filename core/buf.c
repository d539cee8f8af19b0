#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mg_buf_init(struct mg_buf *b) { memset(b, 0, sizeof(*b)); }

void mg_buf_free(struct mg_buf *b) {
  free(b->data);
  memset(b, 0, sizeof(*b));
}

void mg_buf_reset(struct mg_buf *b) {
  b->len = 0;
  if (b->data)
    b->data[0] = '\0';
}

/* Make room for n more bytes plus the terminating NUL. */
static int reserve(struct mg_buf *b, size_t n) {
  if (b->oom)
    return -1;
  if (n > ((size_t)-1) / 2 - b->len) {
    b->oom = 1;
    return -1;
  }
  if (b->len + n + 1 <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->len + n + 1)
    cap *= 2;
  char *p = realloc(b->data, cap);
  if (!p) {
    b->oom = 1;
    return -1;
  }
  b->data = p;
  b->cap = cap;
  return 0;
}

void mg_buf_append(struct mg_buf *b, const void *p, size_t n) {
  if (reserve(b, n) < 0)
    return;
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

char *mg_buf_extend(struct mg_buf *b, size_t n) {
  if (reserve(b, n) < 0)
    return NULL;
  char *p = b->data + b->len;
  b->len += n;
  b->data[b->len] = '\0';
  return p;
}

void mg_buf_puts(struct mg_buf *b, const char *s) { mg_buf_append(b, s, strlen(s)); }

void mg_buf_putc(struct mg_buf *b, char c) {
  if (!b->oom && b->len + 2 <= b->cap) { /* room for c and the NUL */
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
    return;
  }
  mg_buf_append(b, &c, 1);
}

void mg_buf_vprintf(struct mg_buf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0 || reserve(b, (size_t)n) < 0)
    return;
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
}

void mg_buf_printf(struct mg_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  mg_buf_vprintf(b, fmt, ap);
  va_end(ap);
}

char *mg_buf_steal(struct mg_buf *b) {
  char *p = NULL;
  if (!b->oom) {
    p = b->data ? b->data : strdup("");
    b->data = NULL;
  }
  mg_buf_free(b);
  return p;
}
