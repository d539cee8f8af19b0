/*
 * addrbench — the address dictionary (I1) through its C API, for
 * bench/forms/address.sh:
 *
 *   addrbench import SRC DST            time mg_addr_import of a KEN_ALL file
 *   addrbench query DB FILE ROUNDS      time each query of FILE ROUNDS times
 *
 * FILE has one query a line: "P\t<postal code>" (mg_addr_by_postal) or
 * "S\t<limit>\t<text>" (mg_addr_search), each answer written as JSON the
 * way the API writes it.  Prints, per kind, one line
 *   postal n=N p50_ms=… p99_ms=… max_ms=… rows=R
 * where rows counts the addresses returned (the peer must find some too).
 * The first round warms the page cache and is not counted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "address.h"
#include "buf.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p) {
  size_t i = (size_t)(p * (double)(n - 1) + 0.5);
  return n ? v[i < n ? i : n - 1] : 0.0;
}

struct q {
  char kind;   /* 'P' or 'S' */
  size_t limit;
  char *text;
};

static int run_import(const char *src, const char *dst) {
  struct mg_err err = {{0}};
  size_t rows = 0;
  double t0 = now_ms();
  int rc = mg_addr_import(src, dst, &rows, &err);
  if (rc) {
    fprintf(stderr, "addrbench: %s\n", err.msg);
    return 1;
  }
  printf("import rows=%zu ms=%.1f\n", rows, now_ms() - t0);
  return 0;
}

/* Count the objects of a JSON array answer ("postal_code" once each). */
static size_t count_rows(const char *json) {
  size_t n = 0;
  for (const char *p = json ? strstr(json, "\"postal_code\"") : NULL; p;
       p = strstr(p + 1, "\"postal_code\""))
    n++;
  return n;
}

static int run_queries(const char *dbpath, const char *file, long rounds) {
  struct mg_addr_db *db = NULL;
  struct mg_err err = {{0}};
  struct q *qs = NULL;
  size_t nq = 0, cap = 0;
  char *line = NULL;
  size_t lcap = 0;
  double *tp = NULL, *ts = NULL;
  size_t np = 0, ns = 0, rows_p = 0, rows_s = 0;
  int ret = 1;
  FILE *f = fopen(file, "r");

  if (!f) {
    fprintf(stderr, "addrbench: %s: %s\n", file, strerror(errno));
    goto out;
  }
  while (getline(&line, &lcap, f) > 0) {
    line[strcspn(line, "\n")] = '\0';
    if (nq == cap) {
      cap = cap ? 2 * cap : 256;
      struct q *n = realloc(qs, cap * sizeof(*qs));
      if (!n)
        goto out;
      qs = n;
    }
    struct q *q = &qs[nq];
    q->kind = line[0];
    q->limit = 0;
    if (q->kind == 'P' && line[1] == '\t') {
      q->text = strdup(line + 2);
    } else if (q->kind == 'S' && line[1] == '\t') {
      char *end = NULL;
      q->limit = (size_t)strtoul(line + 2, &end, 10);
      if (*end != '\t') {
        fprintf(stderr, "addrbench: %s:%zu: S\\tLIMIT\\tTEXT\n", file, nq + 1);
        goto out;
      }
      q->text = strdup(end + 1);
    } else {
      fprintf(stderr, "addrbench: %s:%zu: P or S, then a tab\n", file, nq + 1);
      goto out;
    }
    if (!q->text)
      goto out;
    nq++;
  }
  if (mg_addr_open(dbpath, &db, &err)) {
    fprintf(stderr, "addrbench: %s\n", err.msg);
    goto out;
  }
  tp = calloc(nq * (size_t)rounds + 1, sizeof(double));
  ts = calloc(nq * (size_t)rounds + 1, sizeof(double));
  if (!tp || !ts)
    goto out;
  for (long r = 0; r <= rounds; r++) {
    for (size_t i = 0; i < nq; i++) {
      struct mg_buf b;
      struct mg_jw w;
      mg_buf_init(&b);
      mg_jw_init(&w, &b);
      double t0 = now_ms();
      int rc = qs[i].kind == 'P'
                   ? mg_addr_by_postal(db, qs[i].text, &w, &err)
                   : mg_addr_search(db, qs[i].text, qs[i].limit, &w, &err);
      double dt = now_ms() - t0;
      if (rc) {
        fprintf(stderr, "addrbench: query %zu: %s\n", i + 1, err.msg);
        mg_buf_free(&b);
        goto out;
      }
      if (r > 0) { /* round 0 warms up */
        if (qs[i].kind == 'P') {
          tp[np++] = dt;
          rows_p += count_rows(b.data);
        } else {
          ts[ns++] = dt;
          rows_s += count_rows(b.data);
        }
      }
      mg_buf_free(&b);
    }
  }
  qsort(tp, np, sizeof(double), cmp_double);
  qsort(ts, ns, sizeof(double), cmp_double);
  printf("postal n=%zu p50_ms=%.4f p99_ms=%.4f max_ms=%.4f rows=%zu\n", np,
         pct(tp, np, 0.5), pct(tp, np, 0.99), np ? tp[np - 1] : 0.0, rows_p);
  printf("search n=%zu p50_ms=%.4f p99_ms=%.4f max_ms=%.4f rows=%zu\n", ns,
         pct(ts, ns, 0.5), pct(ts, ns, 0.99), ns ? ts[ns - 1] : 0.0, rows_s);
  ret = 0;
out:
  if (f)
    fclose(f);
  for (size_t i = 0; i < nq; i++)
    free(qs[i].text);
  free(qs);
  free(line);
  free(tp);
  free(ts);
  mg_addr_close(db);
  return ret;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "import") == 0)
    return run_import(argv[2], argv[3]);
  if (argc == 5 && strcmp(argv[1], "query") == 0) {
    long rounds = strtol(argv[4], NULL, 10);
    if (rounds >= 1)
      return run_queries(argv[2], argv[3], rounds);
  }
  fprintf(stderr, "usage: addrbench import SRC DST\n"
                  "       addrbench query DB FILE ROUNDS\n");
  return 2;
}
