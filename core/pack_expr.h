/*
 * pack_expr.h — the condition language of procedure packs
 * (docs/packs.md "Expressions"):
 *
 *   expr  := or
 *   or    := and { "or" and }
 *   and   := not { "and" not }
 *   not   := "not" not | cmp
 *   cmp   := value [ ("=" | "!=" | "<" | "<=" | ">" | ">=") value ]
 *   value := NUMBER | "yes" | "no" | NAME | "(" expr ")"
 *
 * Three steps, so the validator and the guide engine share one code path:
 *   mg_expr_parse  text → tree (syntax), positions kept per node;
 *   mg_expr_check  names resolved by the caller, types inferred and checked;
 *   mg_expr_eval   the value for one visit, names looked up by the caller.
 *
 * Lexical rules: words are runs of [A-Za-z0-9_-]; a word of digits only is
 * a NUMBER (a non-negative integer, up to 9 digits), the keywords are
 * and/or/not/yes/no (case-sensitive), anything else is a NAME.  Operators
 * need no spaces around them (`age>=65` is fine).  Positions are 1-based
 * character (code point) columns in the source text.
 */
#ifndef MG_PACK_EXPR_H
#define MG_PACK_EXPR_H

#include <stddef.h>

#include "buf.h"

enum mg_expr_type { MG_EXPR_T_NONE = 0, MG_EXPR_T_BOOL, MG_EXPR_T_NUM };

enum mg_expr_op {
  MG_EXPR_NUM,  /* num */
  MG_EXPR_BOOL, /* num = 1 (yes) or 0 (no) */
  MG_EXPR_NAME, /* name */
  MG_EXPR_NOT,  /* a */
  MG_EXPR_AND,  /* a, b */
  MG_EXPR_OR,
  MG_EXPR_EQ,
  MG_EXPR_NE,
  MG_EXPR_LT,
  MG_EXPR_LE,
  MG_EXPR_GT,
  MG_EXPR_GE
};

struct mg_expr {
  enum mg_expr_op op;
  int pos;               /* 1-based character column of the node's token */
  long num;              /* MG_EXPR_NUM, MG_EXPR_BOOL */
  char *name;            /* MG_EXPR_NAME, owned */
  struct mg_expr *a, *b; /* operands, owned */
  enum mg_expr_type type; /* set by mg_expr_check (NONE before) */
};

#define MG_EXPR_MSG_MAX 256

/* Where and why: `pos` as in struct mg_expr, `msg` the rule. */
struct mg_expr_error {
  int pos;
  char msg[MG_EXPR_MSG_MAX];
};

/* Parse `src` (NUL-terminated UTF-8).  An empty or all-blank source is
 * NOT accepted here (the caller decides that an empty cell means "always").
 * On success *out owns a tree (free with mg_expr_free); returns 0, -EINVAL
 * with `e` filled, or -ENOMEM.  Nesting deeper than 64 is refused. */
int mg_expr_parse(const char *src, struct mg_expr **out,
                  struct mg_expr_error *e);
void mg_expr_free(struct mg_expr *x);

/* Name resolver for mg_expr_check: set *type (BOOL or NUM) and return 0;
 * or write why the name is not allowed into `why` (e.g. "unknown name
 * \"x\"", "... (question loop)") and return -1. */
typedef int (*mg_expr_resolve_fn)(void *ctx, const char *name,
                                  enum mg_expr_type *type, char *why,
                                  size_t whylen);

/* Resolve names and check types; the whole expression must be boolean.
 * Comparisons take two numbers, or two booleans with = and !=; not/and/or
 * take booleans.  Fills x->type down the tree.  Returns 0 or -EINVAL with
 * the first problem in `e` (position of the offending node). */
int mg_expr_check(struct mg_expr *x, mg_expr_resolve_fn resolve, void *ctx,
                  struct mg_expr_error *e);

/* Value lookup for mg_expr_eval: store the name's value (booleans 1/0) in
 * *val and return 0, or return -1 when it is unknown (a question not asked
 * or not answered, a fact not known at this visit). */
typedef int (*mg_expr_lookup_fn)(void *ctx, const char *name, long *val);

/* Evaluate a checked boolean expression: 1 true, 0 false.  An unknown
 * boolean name is false; a comparison with an unknown number is false
 * (so `not (age >= 65)` is true when the age is unknown). */
int mg_expr_eval(const struct mg_expr *x, mg_expr_lookup_fn lookup, void *ctx);

/* Append a canonical, fully parenthesised form: `((age >= 65) and not x)`
 * — for tests and for logs of pack ids (never residents' data). */
void mg_expr_print(const struct mg_expr *x, struct mg_buf *out);

#endif
