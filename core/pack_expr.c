/*
 * pack_expr.c — recursive-descent parser, checker and evaluator of the pack
 * condition language (pack_expr.h).
 */
#include "pack_expr.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

enum tok_kind { T_END, T_NUM, T_WORD, T_OP, T_LP, T_RP };

struct parser {
  const char *s;
  size_t i;
  int col; /* character column of s[i] */
  /* the current token */
  enum tok_kind kind;
  size_t start, len;
  int tcol;
  int depth;
  struct mg_expr_error *e;
};

static int perr(struct parser *p, int pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int perr(struct parser *p, int pos, const char *fmt, ...) {
  if (p->e) {
    va_list ap;
    va_start(ap, fmt);
    p->e->pos = pos;
    vsnprintf(p->e->msg, sizeof(p->e->msg), fmt, ap);
    va_end(ap);
  }
  return -EINVAL;
}

static int is_word(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static void step(struct parser *p) {
  p->i++;
  while (((unsigned char)p->s[p->i] & 0xC0) == 0x80)
    p->i++;
  p->col++;
}

/* Read the next token into p->kind/start/len/tcol. */
static int next(struct parser *p) {
  while (p->s[p->i] == ' ' || p->s[p->i] == '\t')
    step(p);
  p->start = p->i;
  p->tcol = p->col;
  char c = p->s[p->i];
  if (!c) {
    p->kind = T_END;
    p->len = 0;
    return 0;
  }
  if (is_word(c)) {
    int digits = 1;
    while (is_word(p->s[p->i])) {
      if (p->s[p->i] < '0' || p->s[p->i] > '9')
        digits = 0;
      step(p);
    }
    p->kind = digits ? T_NUM : T_WORD;
  } else if (c == '(' || c == ')') {
    p->kind = c == '(' ? T_LP : T_RP;
    step(p);
  } else if (c == '=') {
    p->kind = T_OP;
    step(p);
  } else if (c == '!' || c == '<' || c == '>') {
    step(p);
    if (p->s[p->i] == '=')
      step(p);
    else if (c == '!')
      return perr(p, p->tcol, "\"!\" must be followed by \"=\" (use \"not\")");
    p->kind = T_OP;
  } else if ((unsigned char)c == 0xE3 && (unsigned char)p->s[p->i + 1] == 0x80 &&
             (unsigned char)p->s[p->i + 2] == 0x80) {
    return perr(p, p->tcol, "a full-width space; use an ASCII space");
  } else {
    size_t s = p->i;
    step(p);
    return perr(p, p->tcol, "unexpected character \"%.*s\"", (int)(p->i - s),
                p->s + s);
  }
  p->len = p->i - p->start;
  return 0;
}

static int tok_is(const struct parser *p, const char *w) {
  return (p->kind == T_WORD || p->kind == T_OP) && strlen(w) == p->len &&
         memcmp(p->s + p->start, w, p->len) == 0;
}

static struct mg_expr *node(enum mg_expr_op op, int pos) {
  struct mg_expr *x = calloc(1, sizeof(*x));
  if (x) {
    x->op = op;
    x->pos = pos;
  }
  return x;
}

void mg_expr_free(struct mg_expr *x) {
  if (!x)
    return;
  mg_expr_free(x->a);
  mg_expr_free(x->b);
  free(x->name);
  free(x);
}

static int parse_or(struct parser *p, struct mg_expr **out);

static const char *tok_desc(const struct parser *p, char *buf, size_t n) {
  if (p->kind == T_END)
    return "the end";
  snprintf(buf, n, "\"%.*s\"", (int)(p->len > 40 ? 40 : p->len),
           p->s + p->start);
  return buf;
}

static int parse_value(struct parser *p, struct mg_expr **out) {
  char d[64];
  int rc;
  *out = NULL;
  if (p->kind == T_NUM) {
    if (p->len > 9)
      return perr(p, p->tcol, "number too large");
    struct mg_expr *x = node(MG_EXPR_NUM, p->tcol);
    if (!x)
      return -ENOMEM;
    x->num = strtol(p->s + p->start, NULL, 10);
    *out = x;
    return next(p);
  }
  if (p->kind == T_LP) {
    int pos = p->tcol;
    if (++p->depth > MAX_DEPTH)
      return perr(p, pos, "nested too deeply");
    if ((rc = next(p)) != 0 || (rc = parse_or(p, out)) != 0)
      return rc;
    if (p->kind != T_RP)
      return perr(p, p->tcol, "expected \")\" (to close the \"(\" at column "
                  "%d), found %s", pos, tok_desc(p, d, sizeof(d)));
    p->depth--;
    return next(p);
  }
  if (p->kind == T_WORD) {
    if (tok_is(p, "yes") || tok_is(p, "no")) {
      struct mg_expr *x = node(MG_EXPR_BOOL, p->tcol);
      if (!x)
        return -ENOMEM;
      x->num = tok_is(p, "yes");
      *out = x;
      return next(p);
    }
    if (tok_is(p, "and") || tok_is(p, "or") || tok_is(p, "not"))
      return perr(p, p->tcol, "expected a value, found %s",
                  tok_desc(p, d, sizeof(d)));
    struct mg_expr *x = node(MG_EXPR_NAME, p->tcol);
    if (!x || !(x->name = strndup(p->s + p->start, p->len))) {
      free(x);
      return -ENOMEM;
    }
    *out = x;
    return next(p);
  }
  return perr(p, p->tcol, "expected a value, found %s",
              tok_desc(p, d, sizeof(d)));
}

static int parse_cmp(struct parser *p, struct mg_expr **out) {
  static const struct {
    const char *s;
    enum mg_expr_op op;
  } ops[] = {{"=", MG_EXPR_EQ}, {"!=", MG_EXPR_NE}, {"<", MG_EXPR_LT},
             {"<=", MG_EXPR_LE}, {">", MG_EXPR_GT}, {">=", MG_EXPR_GE}};
  int rc = parse_value(p, out);
  if (rc || p->kind != T_OP)
    return rc;
  for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
    if (!tok_is(p, ops[k].s))
      continue;
    struct mg_expr *x = node(ops[k].op, p->tcol);
    if (!x)
      return -ENOMEM;
    x->a = *out;
    *out = x;
    if ((rc = next(p)) != 0 || (rc = parse_value(p, &x->b)) != 0)
      return rc;
    if (p->kind == T_OP)
      return perr(p, p->tcol,
                  "comparisons do not chain; use \"and\" (a < b and b < c)");
    return 0;
  }
  return perr(p, p->tcol, "unknown operator");
}

static int parse_not(struct parser *p, struct mg_expr **out) {
  if (tok_is(p, "not")) {
    int rc;
    struct mg_expr *x = node(MG_EXPR_NOT, p->tcol);
    if (!x)
      return -ENOMEM;
    *out = x;
    if (++p->depth > MAX_DEPTH)
      return perr(p, p->tcol, "nested too deeply");
    if ((rc = next(p)) != 0 || (rc = parse_not(p, &x->a)) != 0)
      return rc;
    p->depth--;
    return 0;
  }
  return parse_cmp(p, out);
}

static int parse_bin(struct parser *p, struct mg_expr **out, const char *word,
                     enum mg_expr_op op,
                     int (*sub)(struct parser *, struct mg_expr **)) {
  int rc = sub(p, out);
  while (!rc && tok_is(p, word)) {
    struct mg_expr *x = node(op, p->tcol);
    if (!x)
      return -ENOMEM;
    x->a = *out;
    *out = x;
    if ((rc = next(p)) != 0)
      return rc;
    rc = sub(p, &x->b);
  }
  return rc;
}

static int parse_and(struct parser *p, struct mg_expr **out) {
  return parse_bin(p, out, "and", MG_EXPR_AND, parse_not);
}

static int parse_or(struct parser *p, struct mg_expr **out) {
  return parse_bin(p, out, "or", MG_EXPR_OR, parse_and);
}

int mg_expr_parse(const char *src, struct mg_expr **out,
                  struct mg_expr_error *e) {
  struct parser p = {.s = src, .col = 1, .e = e};
  struct mg_expr *x = NULL;
  char d[64];
  int rc;
  *out = NULL;
  if ((rc = next(&p)) != 0)
    goto fail;
  if (p.kind == T_END) {
    rc = perr(&p, 1, "empty expression");
    goto fail;
  }
  if ((rc = parse_or(&p, &x)) != 0)
    goto fail;
  if (p.kind != T_END) {
    rc = perr(&p, p.tcol, "unexpected %s (missing \"and\"/\"or\"?)",
              tok_desc(&p, d, sizeof(d)));
    goto fail;
  }
  *out = x;
  return 0;
fail:
  if (rc == -ENOMEM && e) {
    e->pos = p.col;
    snprintf(e->msg, sizeof(e->msg), "out of memory");
  }
  mg_expr_free(x);
  return rc;
}

/* ---------------------------------------------------------------------- */

static const char *op_text(enum mg_expr_op op) {
  static const char *const t[] = {"", "", "", "not", "and", "or", "=",
                                  "!=", "<", "<=", ">", ">="};
  return t[op];
}

static const char *type_name(enum mg_expr_type t) {
  return t == MG_EXPR_T_NUM ? "a number" : "yes/no";
}

static int cerr(struct mg_expr_error *e, int pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int cerr(struct mg_expr_error *e, int pos, const char *fmt, ...) {
  if (e) {
    va_list ap;
    va_start(ap, fmt);
    e->pos = pos;
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
  }
  return -EINVAL;
}

static int check(struct mg_expr *x, mg_expr_resolve_fn resolve, void *ctx,
                 struct mg_expr_error *e) {
  int rc;
  switch (x->op) {
  case MG_EXPR_NUM:
    x->type = MG_EXPR_T_NUM;
    return 0;
  case MG_EXPR_BOOL:
    x->type = MG_EXPR_T_BOOL;
    return 0;
  case MG_EXPR_NAME: {
    char why[MG_EXPR_MSG_MAX] = "";
    enum mg_expr_type t = MG_EXPR_T_NONE;
    if (resolve(ctx, x->name, &t, why, sizeof(why)) != 0 ||
        (t != MG_EXPR_T_BOOL && t != MG_EXPR_T_NUM))
      return cerr(e, x->pos, "%s",
                  why[0] ? why : "unknown name (not a question or a fact)");
    x->type = t;
    return 0;
  }
  case MG_EXPR_NOT:
    if ((rc = check(x->a, resolve, ctx, e)) != 0)
      return rc;
    if (x->a->type != MG_EXPR_T_BOOL)
      return cerr(e, x->pos, "\"not\" takes yes/no, not a number");
    x->type = MG_EXPR_T_BOOL;
    return 0;
  case MG_EXPR_AND:
  case MG_EXPR_OR:
    if ((rc = check(x->a, resolve, ctx, e)) != 0 ||
        (rc = check(x->b, resolve, ctx, e)) != 0)
      return rc;
    if (x->a->type != MG_EXPR_T_BOOL || x->b->type != MG_EXPR_T_BOOL)
      return cerr(e, x->a->type != MG_EXPR_T_BOOL ? x->a->pos : x->b->pos,
                  "\"%s\" takes yes/no on both sides, not a number",
                  op_text(x->op));
    x->type = MG_EXPR_T_BOOL;
    return 0;
  default:
    if ((rc = check(x->a, resolve, ctx, e)) != 0 ||
        (rc = check(x->b, resolve, ctx, e)) != 0)
      return rc;
    if (x->a->type != x->b->type)
      return cerr(e, x->pos, "\"%s\" compares %s with %s (type error)",
                  op_text(x->op), type_name(x->a->type),
                  type_name(x->b->type));
    if (x->a->type == MG_EXPR_T_BOOL && x->op != MG_EXPR_EQ &&
        x->op != MG_EXPR_NE)
      return cerr(e, x->pos,
                  "\"%s\" needs numbers; yes/no compare only with = and !=",
                  op_text(x->op));
    x->type = MG_EXPR_T_BOOL;
    return 0;
  }
}

int mg_expr_check(struct mg_expr *x, mg_expr_resolve_fn resolve, void *ctx,
                  struct mg_expr_error *e) {
  int rc = check(x, resolve, ctx, e);
  if (rc)
    return rc;
  if (x->type != MG_EXPR_T_BOOL)
    return cerr(e, x->pos,
                "a condition must be yes/no, not a number (compare it: "
                "age >= 65)");
  return 0;
}

/* Value of x; -1 when it depends on an unknown number. */
static int value(const struct mg_expr *x, mg_expr_lookup_fn lookup, void *ctx,
                 long *v) {
  switch (x->op) {
  case MG_EXPR_NUM:
  case MG_EXPR_BOOL:
    *v = x->num;
    return 0;
  case MG_EXPR_NAME:
    if (lookup(ctx, x->name, v) != 0) {
      if (x->type == MG_EXPR_T_NUM)
        return -1;
      *v = 0; /* unanswered question / unknown flag: false */
    } else if (x->type == MG_EXPR_T_BOOL)
      *v = *v != 0;
    return 0;
  default:
    *v = mg_expr_eval(x, lookup, ctx);
    return 0;
  }
}

int mg_expr_eval(const struct mg_expr *x, mg_expr_lookup_fn lookup,
                 void *ctx) {
  long a, b;
  switch (x->op) {
  case MG_EXPR_NOT:
    return !mg_expr_eval(x->a, lookup, ctx);
  case MG_EXPR_AND:
    return mg_expr_eval(x->a, lookup, ctx) && mg_expr_eval(x->b, lookup, ctx);
  case MG_EXPR_OR:
    return mg_expr_eval(x->a, lookup, ctx) || mg_expr_eval(x->b, lookup, ctx);
  case MG_EXPR_NUM:
  case MG_EXPR_BOOL:
  case MG_EXPR_NAME:
    return value(x, lookup, ctx, &a) == 0 && a != 0;
  default:
    break;
  }
  if (value(x->a, lookup, ctx, &a) != 0 || value(x->b, lookup, ctx, &b) != 0)
    return 0;
  switch (x->op) {
  case MG_EXPR_EQ:
    return a == b;
  case MG_EXPR_NE:
    return a != b;
  case MG_EXPR_LT:
    return a < b;
  case MG_EXPR_LE:
    return a <= b;
  case MG_EXPR_GT:
    return a > b;
  default:
    return a >= b;
  }
}

void mg_expr_print(const struct mg_expr *x, struct mg_buf *out) {
  switch (x->op) {
  case MG_EXPR_NUM:
    mg_buf_printf(out, "%ld", x->num);
    return;
  case MG_EXPR_BOOL:
    mg_buf_puts(out, x->num ? "yes" : "no");
    return;
  case MG_EXPR_NAME:
    mg_buf_puts(out, x->name);
    return;
  case MG_EXPR_NOT:
    mg_buf_puts(out, "not ");
    mg_expr_print(x->a, out);
    return;
  default: {
    /* a "not" under a comparison needs its own parentheses to re-parse */
    int cmp = x->op != MG_EXPR_AND && x->op != MG_EXPR_OR;
    int pa = cmp && x->a->op == MG_EXPR_NOT, pb = cmp && x->b->op == MG_EXPR_NOT;
    mg_buf_putc(out, '(');
    mg_buf_puts(out, pa ? "(" : "");
    mg_expr_print(x->a, out);
    mg_buf_puts(out, pa ? ")" : "");
    mg_buf_printf(out, " %s ", op_text(x->op));
    mg_buf_puts(out, pb ? "(" : "");
    mg_expr_print(x->b, out);
    mg_buf_puts(out, pb ? ")" : "");
    mg_buf_putc(out, ')');
  }
  }
}
