/*
 * csvexport — linkage files for RPA and other systems (X4): one CSV file
 * per `export` command, written atomically into a set directory.  Which
 * forms and which fields are exported (FG6, X4) is decided by the caller;
 * this plugin only writes what it is given.  Other formats (the Digital
 * Agency's linkage standard, fixed-width) follow as other exporter plugins
 * with the same `export` command.
 *
 *   [exporter "rpa"]
 *   plugin = csvexport
 *   dir = /var/lib/madoguchi/export   ; must exist, writable by the daemon
 *   bom = yes                         ; UTF-8 BOM first (Excel needs it)
 *   mode = 0640                       ; permissions of the files
 *
 * Command (args are a JSON object):
 *   export  {"name": "tennyu-20260401", "header": ["col", ...],
 *            "rows": [["v", ...], ...]} -> PENDING, then
 *           {"file": "<dir>/<name>.csv", "rows": N, "bytes": B}.
 *
 * The file is UTF-8 (with a BOM when `bom`), CRLF line ends, RFC 4180
 * quoting: a cell containing a comma, a quote, CR or LF, or with a leading
 * or trailing space or tab is quoted, inner quotes doubled.  The header row
 * comes first.  The args are checked and encoded on the loop (a bad request
 * is answered FATAL with the rule and the place, e.g. `rows[3][1]`, before
 * PENDING is returned); a worker writes `<dir>/.<name>.csv.part`, fsyncs
 * it, renames it to `<dir>/<name>.csv` (replacing an older file of that
 * name: a re-export after a crash is idempotent) and fsyncs the directory,
 * so whoever watches the directory sees whole files only.
 *
 * Cells are residents' data: neither they nor file names are logged.
 */
#include <madoguchi/plugin.h>

#include "mgp.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JSON_DEPTH_MAX 32
#define NAME_MAX_LEN 128
#define COLUMNS_MAX 4096

struct cx;

struct xjob {
  struct cx *cx;
  struct xjob *next; /* cx->list */
  uint64_t req_id;
  char name[NAME_MAX_LEN + 1];
  char *part;  /* owned: <dir>/.<name>.csv.part */
  char *dst;   /* owned: <dir>/<name>.csv */
  char *data;  /* owned: the encoded file */
  size_t len;
  size_t rows;
  mode_t mode;
  const char *dir; /* cx->dir: the host keeps it until fini */
  /* written by the worker, read in done() */
  int err;         /* errno, 0 when fine */
  const char *why; /* static: the step that failed */
};

struct cx {
  /* config, stored by the host */
  char *dir;
  int bom;
  char *mode_s;
  /* runtime */
  mode_t mode;
  const struct mg_host *h;
  struct mg_instance *inst;
  uint64_t exports, failed;
  size_t active;
  struct xjob *list;
};

/* ---------------------------------------------------------------------- */
/* JSON reading, bounds-checked                                            */

/* What the value at r->i is, for messages. */
static const char *jr_kind(const struct mgp_jr *r) {
  char c = r->i < r->n ? r->s[r->i] : '\0';
  switch (c) {
  case '"': return "a string";
  case '[': return "an array";
  case '{': return "an object";
  case 't':
  case 'f': return "a boolean";
  case 'n': return "null";
  default: return "a number";
  }
}

static int jr_null(struct mgp_jr *r) {
  if (r->n - r->i >= 4 && strncmp(r->s + r->i, "null", 4) == 0) {
    r->i += 4;
    return 1;
  }
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Checking and encoding the request (on the loop)                        */

/* Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF. */
static int utf8_valid(const unsigned char *s) {
  while (*s) {
    unsigned c = *s, need, min, u;
    if (c < 0x80) {
      s++;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF)
      need = 1, min = 0x80, u = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
      need = 2, min = 0x800, u = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
      need = 3, min = 0x10000, u = c & 0x07;
    else
      return 0;
    s++;
    for (unsigned k = 0; k < need; k++, s++) {
      if ((*s & 0xC0) != 0x80)
        return 0;
      u = u << 6 | (*s & 0x3F);
    }
    if (u < min || u > 0x10FFFF || (u >= 0xD800 && u < 0xE000))
      return 0;
  }
  return 1;
}

/* One cell, RFC 4180 quoted when it has to be. */
static void csv_cell(struct mgp_sb *b, const char *s) {
  size_t n = strlen(s);
  int quote = n && (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' ||
                    s[n - 1] == '\t');
  if (!quote && strpbrk(s, ",\"\r\n"))
    quote = 1;
  if (!quote) {
    mgp_sb_add(b, s, n);
    return;
  }
  mgp_sb_add(b, "\"", 1);
  for (const char *q; (q = strchr(s, '"')); s = q + 1) {
    mgp_sb_add(b, s, (size_t)(q - s) + 1);
    mgp_sb_add(b, "\"", 1); /* the quote again */
  }
  mgp_sb_puts(b, s);
  mgp_sb_add(b, "\"", 1);
}

/* A request being checked: the first problem wins. */
struct req {
  char err[256];
  struct mgp_sb out;
  size_t columns, rows;
};

__attribute__((format(printf, 2, 3))) static int bad(struct req *q,
                                                     const char *fmt, ...) {
  va_list ap;
  if (!q->err[0]) {
    va_start(ap, fmt);
    vsnprintf(q->err, sizeof(q->err), fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* An array of cells at r->i as one CSV line.  where: "header" or
 * "rows[N]".  null cells are empty, except in the header. */
static int parse_line(struct req *q, struct mgp_jr *r, const char *where,
                      int header) {
  size_t n = 0;
  if (r->i >= r->n || r->s[r->i] != '[')
    return bad(q, "%s: must be an array of %s, not %s", where,
               header ? "strings" : "strings or nulls", jr_kind(r));
  r->i++;
  mgp_jr_ws(r);
  if (r->i < r->n && r->s[r->i] == ']') {
    r->i++;
  } else {
    for (;;) {
      char *cell = NULL;
      if (n >= COLUMNS_MAX)
        return bad(q, "%s: more than %d cells", where, COLUMNS_MAX);
      if (n)
        mgp_sb_add(&q->out, ",", 1);
      if (!header && jr_null(r)) {
        /* an empty cell */
      } else if (r->i < r->n && r->s[r->i] == '"') {
        if (mgp_jr_string(r, &cell))
          return bad(q, "%s[%zu]: a malformed string (or one holding \\u0000)",
                     where, n);
        if (!utf8_valid((const unsigned char *)cell)) {
          free(cell);
          return bad(q, "%s[%zu]: is not valid UTF-8", where, n);
        }
        csv_cell(&q->out, cell);
        free(cell);
      } else {
        return bad(q, "%s[%zu]: must be a string%s, not %s", where, n,
                   header ? "" : " or null", jr_kind(r));
      }
      n++;
      mgp_jr_ws(r);
      if (r->i < r->n && r->s[r->i] == ']') {
        r->i++;
        break;
      }
      if (r->i >= r->n || r->s[r->i++] != ',')
        return bad(q, "%s: malformed array", where);
      mgp_jr_ws(r);
    }
  }
  if (header) {
    if (n == 0)
      return bad(q, "header: must name at least one column");
    q->columns = n;
  } else if (n != q->columns) {
    return bad(q, "%s: has %zu cells, the header has %zu (every row needs one "
                  "cell per column)", where, n, q->columns);
  }
  mgp_sb_add(&q->out, "\r\n", 2);
  return 0;
}

static int parse_rows(struct req *q, struct mgp_jr *r) {
  char where[48];
  if (r->i >= r->n || r->s[r->i] != '[')
    return bad(q, "rows: must be an array of rows, not %s", jr_kind(r));
  r->i++;
  mgp_jr_ws(r);
  if (r->i < r->n && r->s[r->i] == ']')
    return 0;
  for (;;) {
    snprintf(where, sizeof(where), "rows[%zu]", q->rows);
    if (parse_line(q, r, where, 0))
      return -1;
    q->rows++;
    mgp_jr_ws(r);
    if (r->i < r->n && r->s[r->i] == ']')
      return 0;
    if (r->i >= r->n || r->s[r->i++] != ',')
      return bad(q, "rows: malformed array");
    mgp_jr_ws(r);
  }
}

static int name_ok(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > NAME_MAX_LEN || s[0] == '.')
    return 0;
  for (; *s; s++)
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
          (*s >= '0' && *s <= '9') || strchr("_.-", *s)))
      return 0;
  return 1;
}

/* Check args and encode the file into q->out (BOM first when bom). */
static int parse_export(struct req *q, const char *args, int bom, char *name) {
  struct mgp_jr r = {args, 0, args ? strlen(args) : 0};
  size_t at_header = 0, at_rows = 0;
  int seen_name = 0;
  mgp_jr_ws(&r);
  if (r.i >= r.n || r.s[r.i++] != '{')
    return bad(q, "export needs {\"name\": ..., \"header\": [...], \"rows\": "
                  "[[...], ...]}");
  mgp_jr_ws(&r);
  if (r.i < r.n && r.s[r.i] == '}')
    r.i++;
  else
    for (;;) { /* find the members; header must be read before rows */
      char *k = NULL, *v = NULL;
      if (mgp_jr_string(&r, &k))
        return bad(q, "export: malformed JSON object");
      mgp_jr_ws(&r);
      if (r.i >= r.n || r.s[r.i++] != ':') {
        free(k);
        return bad(q, "export: malformed JSON object");
      }
      mgp_jr_ws(&r);
      if (strcmp(k, "name") == 0) {
        if (mgp_jr_string(&r, &v) || !name_ok(v)) {
          free(k);
          free(v);
          return bad(q, "name: must be 1-%d characters of A-Z a-z 0-9 _ . - "
                        "not starting with '.' (the file's name without "
                        ".csv)", NAME_MAX_LEN);
        }
        snprintf(name, NAME_MAX_LEN + 1, "%s", v);
        free(v);
        seen_name = 1;
      } else if (strcmp(k, "header") == 0 || strcmp(k, "rows") == 0) {
        *(k[0] == 'h' ? &at_header : &at_rows) = r.i + 1; /* 0: absent */
        if (mgp_jr_value(&r, 1)) {
          free(k);
          return bad(q, "export: malformed JSON");
        }
      } else {
        bad(q, "export: unknown key \"%.40s\" (known: name, header, rows)", k);
        free(k);
        return -1;
      }
      free(k);
      mgp_jr_ws(&r);
      if (r.i < r.n && r.s[r.i] == '}') {
        r.i++;
        break;
      }
      if (r.i >= r.n || r.s[r.i++] != ',')
        return bad(q, "export: malformed JSON object");
      mgp_jr_ws(&r);
    }
  mgp_jr_ws(&r);
  if (r.i != r.n)
    return bad(q, "export: text after the JSON object");
  if (!seen_name)
    return bad(q, "name: missing (the file's name without .csv)");
  if (!at_header)
    return bad(q, "header: missing (the column names)");
  if (!at_rows)
    return bad(q, "rows: missing (an array of rows, may be empty)");
  if (bom)
    mgp_sb_add(&q->out, "\xEF\xBB\xBF", 3);
  r.i = at_header - 1;
  if (parse_line(q, &r, "header", 1))
    return -1;
  r.i = at_rows - 1;
  if (parse_rows(q, &r))
    return -1;
  if (q->out.oom)
    return bad(q, "out of memory");
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Worker side: no host services here                                     */

static void fail(struct xjob *x, int err, const char *why) {
  if (!x->err) {
    x->err = err ? err : EIO;
    x->why = why;
  }
}

/* .part, fsync, rename, fsync the directory: whole files or none. */
static void export_work(void *ud) {
  struct xjob *x = ud;
  int fd = -1, dfd = -1, renamed = 0;
  /* O_TRUNC: a .part left by a crash is ours to overwrite */
  fd = open(x->part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
            x->mode);
  if (fd < 0) {
    fail(x, errno, "cannot create the file");
    goto out;
  }
  if (fchmod(fd, x->mode) != 0) /* exact, whatever the umask */
    fail(x, errno, "cannot set the file's mode");
  else if (mgp_write_all(fd, x->data, x->len) != 0)
    fail(x, errno, "cannot write the file");
  else if (fsync(fd) != 0)
    fail(x, errno, "cannot flush the file to disk");
  if (close(fd) != 0)
    fail(x, errno, "cannot write the file");
  fd = -1;
  if (x->err)
    goto out;
  if (rename(x->part, x->dst) != 0) {
    fail(x, errno, "cannot rename the file into place");
    goto out;
  }
  renamed = 1;
  if ((dfd = open(x->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
      fsync(dfd) != 0)
    fail(x, errno, "cannot flush the directory to disk");
out:
  if (fd >= 0)
    close(fd);
  if (dfd >= 0)
    close(dfd);
  if (x->err && !renamed)
    unlink(x->part);
}

/* ---------------------------------------------------------------------- */
/* Loop side                                                               */

static void xjob_free(struct xjob *x) {
  for (struct xjob **pp = &x->cx->list; *pp; pp = &(*pp)->next) {
    if (*pp == x) {
      *pp = x->next;
      x->cx->active--;
      break;
    }
  }
  free(x->part);
  free(x->dst);
  free(x->data);
  free(x);
}

static void answer(struct cx *cx, uint64_t req_id, int status,
                   const char *why) {
  struct mgp_sb r = {0};
  mgp_sb_puts(&r, "{\"error\":");
  mgp_sb_jstr(&r, why);
  mgp_sb_puts(&r, "}");
  cx->h->complete(cx->inst, req_id, status, r.oom ? NULL : r.p);
  free(r.p);
}

static void export_done(void *ud, int status) {
  struct xjob *x = ud;
  struct cx *cx = x->cx;
  struct mgp_sb r = {0};
  char why[256];
  if (status != 0) {
    cx->failed++;
    answer(cx, x->req_id, MG_PLUGIN_RETRY, "the daemon is stopping");
  } else if (x->err) {
    cx->failed++;
    cx->h->log(cx->inst, MG_PLUGIN_LOG_WARNING, "an export failed: %s: %s",
               x->why, strerror(x->err));
    snprintf(why, sizeof(why), "%s: %s", x->why, strerror(x->err));
    /* a full disk may be freed; a directory made read-only needs a
     * technician */
    answer(cx, x->req_id,
           x->err == ENOSPC || x->err == EDQUOT || x->err == EIO ||
                   x->err == EINTR || x->err == EAGAIN
               ? MG_PLUGIN_RETRY
               : MG_PLUGIN_FATAL,
           why);
  } else {
    cx->exports++;
    cx->h->log(cx->inst, MG_PLUGIN_LOG_INFO, "export written (%zu rows)",
               x->rows);
    mgp_sb_puts(&r, "{\"file\":");
    mgp_sb_jstr(&r, x->dst);
    mgp_sb_printf(&r, ",\"rows\":%zu,\"bytes\":%zu}", x->rows, x->len);
    cx->h->complete(cx->inst, x->req_id, r.oom ? MG_PLUGIN_RETRY : MG_PLUGIN_OK,
                    r.oom ? NULL : r.p);
    free(r.p);
  }
  xjob_free(x);
}

static int cx_command(void *ctx, uint64_t req_id, const char *op,
                      const char *args) {
  struct cx *cx = ctx;
  struct req q = {0};
  struct xjob *x = NULL;
  size_t dl;
  int rc = MG_PLUGIN_PENDING;

  if (strcmp(op, "export") != 0) {
    cx->h->log(cx->inst, MG_PLUGIN_LOG_WARNING,
               "unknown command (this exporter knows export)");
    return MG_PLUGIN_FATAL;
  }
  if (!(x = calloc(1, sizeof(*x)))) {
    rc = MG_PLUGIN_RETRY;
    goto out;
  }
  if (parse_export(&q, args, cx->bom, x->name) != 0) {
    answer(cx, req_id, MG_PLUGIN_FATAL, q.err);
    goto out;
  }
  for (struct xjob *o = cx->list; o; o = o->next) {
    if (strcmp(o->name, x->name) == 0) { /* both would write one .part */
      answer(cx, req_id, MG_PLUGIN_RETRY,
             "an export of that name is being written; try again");
      goto out;
    }
  }
  dl = strlen(cx->dir);
  while (dl > 1 && cx->dir[dl - 1] == '/')
    dl--;
  if (asprintf(&x->dst, "%.*s/%s.csv", (int)dl, cx->dir, x->name) < 0) {
    x->dst = NULL; /* undefined after a failure */
    rc = MG_PLUGIN_RETRY;
    goto out;
  }
  if (asprintf(&x->part, "%.*s/.%s.csv.part", (int)dl, cx->dir, x->name) < 0) {
    x->part = NULL;
    rc = MG_PLUGIN_RETRY;
    goto out;
  }
  x->cx = cx;
  x->req_id = req_id;
  x->data = q.out.p;
  x->len = q.out.n;
  q.out.p = NULL;
  x->rows = q.rows;
  x->mode = cx->mode;
  x->dir = cx->dir;
  x->next = cx->list;
  cx->list = x;
  cx->active++;
  if (cx->h->queue_work(cx->inst, export_work, export_done, x) != 0) {
    xjob_free(x);
    rc = MG_PLUGIN_RETRY;
  }
  x = NULL; /* queued (done frees it) or freed; done may have run inline */
out:
  if (x) {
    free(x->part);
    free(x->dst);
    free(x->data);
    free(x);
  }
  free(q.out.p);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Configuration and lifecycle                                             */

/* "0640": octal permission bits, nothing beyond 0777. */
static int parse_mode(const char *s, mode_t *out) {
  size_t n = s ? strlen(s) : 0;
  unsigned v = 0;
  if (n < 3 || n > 4)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '7')
      return -1;
    v = v * 8 + (unsigned)(s[i] - '0');
  }
  if (v > 0777)
    return -1;
  *out = (mode_t)v;
  return 0;
}

static const char *check_mode(const void *stored) {
  mode_t m;
  if (parse_mode(*(char *const *)stored, &m) != 0)
    return "must be octal permissions such as 0640 (no setuid, setgid or "
           "sticky bits)";
  if ((m & 0600) != 0600)
    return "must let the daemon read and write its files (owner rw, e.g. "
           "0640)";
  return NULL;
}

static int cx_init(void *ctx, const struct mg_host *host,
                   struct mg_instance *inst) {
  struct cx *cx = ctx;
  if (host->abi_major != MG_PLUGIN_ABI_MAJOR ||
      host->size < offsetof(struct mg_host, instance_id) + sizeof(void *))
    return MG_PLUGIN_FATAL;
  cx->h = host;
  cx->inst = inst;
  if (parse_mode(cx->mode_s, &cx->mode) != 0) { /* the table checked it */
    host->log(inst, MG_PLUGIN_LOG_ERR, "mode must be octal such as 0640");
    return MG_PLUGIN_FATAL;
  }
  return MG_PLUGIN_OK;
}

static int cx_start(void *ctx) {
  struct cx *cx = ctx;
  struct stat st;
  if (stat(cx->dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
      access(cx->dir, W_OK | X_OK) != 0) {
    cx->h->log(cx->inst, MG_PLUGIN_LOG_ERR,
               "dir %s must be an existing directory the daemon can write "
               "into", cx->dir);
    return MG_PLUGIN_FATAL;
  }
  return MG_PLUGIN_OK;
}

/* Nothing to stop: a write in progress is short and finishes, so that its
 * file is whole; its late answer is dropped by the host. */
static void cx_stop(void *ctx) { (void)ctx; }

static void cx_fini(void *ctx) {
  struct cx *cx = ctx;
  while (cx->list) /* none: the host runs fini after every done() */
    xjob_free(cx->list);
}

static int cx_describe(void *ctx, char *buf, size_t len) {
  struct cx *cx = ctx;
  struct mgp_sb b = {0};
  mgp_sb_puts(&b, "{\"dir\":");
  mgp_sb_jstr(&b, cx->dir);
  mgp_sb_printf(&b, ",\"bom\":%s,\"exports\":%llu,\"failed\":%llu,\"active\":%zu}",
            cx->bom ? "true" : "false", (unsigned long long)cx->exports,
            (unsigned long long)cx->failed, cx->active);
  return mgp_sb_take(&b, buf, len);
}

static const struct mg_config_item config[] = {
    {MG_CFG_STR, "dir", NULL, offsetof(struct cx, dir), MG_CFG_REQUIRED, 0, 0,
     NULL, mgp_check_abs,
     "Directory the CSV files are written into (absolute path; must exist and "
     "be writable by the daemon)."},
    {MG_CFG_BOOL, "bom", "yes", offsetof(struct cx, bom), 0, 0, 0, NULL, NULL,
     "Start each file with the UTF-8 byte order mark (Excel reads UTF-8 only "
     "with it)."},
    {MG_CFG_STR, "mode", "0640", offsetof(struct cx, mode_s), 0, 0, 0, NULL,
     check_mode, "Permissions of the files written, in octal."},
    {0, NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL}};

static const struct mg_plugin plugin = {
    .abi_major = MG_PLUGIN_ABI_MAJOR,
    .abi_minor = MG_PLUGIN_ABI_MINOR,
    .size = sizeof(struct mg_plugin),
    .name = "csvexport",
    .version = "1.0.0",
    .kind = MG_PLUGIN_KIND_EXPORTER,
    .description = "Writes linkage CSV files (UTF-8, RFC 4180) into a "
                   "directory for RPA",
    .config = config,
    .ctx_size = sizeof(struct cx),
    .init = cx_init,
    .start = cx_start,
    .command = cx_command,
    .stop = cx_stop,
    .fini = cx_fini,
    .describe = cx_describe,
};

MG_PLUGIN_EXPORT const struct mg_plugin *mg_plugin_entry_v1(void);
MG_PLUGIN_EXPORT const struct mg_plugin *mg_plugin_entry_v1(void) {
  return &plugin;
}
