/*
 * test_cups — the cups printer plugin (P1) against a fake host
 * (tests/unit/fake_host.h) and a fake IPP printer made here: a loopback
 * HTTP server that decodes the IPP requests with libcups and answers as
 * each test sets it up (idle or stopped, accepting or not, job states in
 * turn, a refused Print-Job, no answer at all).  Covered: a job followed to
 * completed with its print.job events, the document and the job template
 * as the printer received them, the test page (a valid PDF naming box and
 * printer), a stopped, refusing, unreachable or silent printer (RETRY with
 * the reason, nothing hangs), aborted and forgotten jobs, job_timeout
 * (Cancel-Job, RETRY), bad requests, stop with jobs in flight, config
 * rules, and that no path or title reaches the log.  The real printer
 * server (ippeveprinter) is driven by tests/integration/print.sh.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <cups/cups.h>

#include "config.h"
#include "plugin_host.h"

#include "fake_host.h"

#ifndef MG_TEST_PLUGIN_DIR
#error "MG_TEST_PLUGIN_DIR must name the directory of the built plugins"
#endif

/* ---------------------------------------------------------------------- */
/* A fake IPP printer                                                      */

#define MAX_CONNS 32

struct srv {
  int lfd, port;
  pthread_t th;
  int running; /* th was started */
  pthread_mutex_t mu;
  int stop;
  int conns[MAX_CONNS];
  pthread_t conn_th[MAX_CONNS];
  int n_conns;
  /* how to answer (set before the requests) */
  int pstate;             /* printer-state */
  const char *preasons;   /* printer-state-reasons */
  int accepting;          /* printer-is-accepting-jobs */
  ipp_status_t print_status; /* of Print-Job */
  int jstates[8];         /* job-state per Get-Job-Attributes; 0: not found */
  int n_jstates;          /* the last one repeats */
  int hang;               /* read requests, never answer */
  /* what arrived */
  int n_printer, n_print, n_get_job, n_cancel;
  char *doc;
  size_t doc_len;
  char job_name[300], format[64], media[64], sides[64], user[64];
  int copies;
};

struct cur {
  const unsigned char *p;
  size_t n, i;
};

static ssize_t mem_read(void *ctx, ipp_uchar_t *buf, size_t n) {
  struct cur *c = ctx;
  size_t k = c->n - c->i < n ? c->n - c->i : n;
  memcpy(buf, c->p + c->i, k);
  c->i += k;
  return (ssize_t)k;
}

struct wbuf {
  unsigned char *p;
  size_t n, cap;
};

static ssize_t mem_write(void *ctx, ipp_uchar_t *buf, size_t n) {
  struct wbuf *w = ctx;
  if (w->n + n > w->cap) {
    w->cap = (w->n + n) * 2;
    w->p = realloc(w->p, w->cap);
    if (!w->p)
      return -1;
  }
  memcpy(w->p + w->n, buf, n);
  w->n += n;
  return (ssize_t)n;
}

/* A buffered reader of one connection. */
struct rd {
  int fd;
  struct srv *s;
  char buf[65536];
  size_t a, b;
};

static int rd_fill(struct rd *r) {
  if (r->a < r->b)
    return 0;
  ssize_t n = read(r->fd, r->buf, sizeof(r->buf));
  if (n <= 0)
    return -1;
  r->a = 0;
  r->b = (size_t)n;
  return 0;
}

static int rd_line(struct rd *r, char *line, size_t len) {
  size_t o = 0;
  for (;;) {
    if (rd_fill(r))
      return -1;
    char c = r->buf[r->a++];
    if (c == '\n')
      break;
    if (c != '\r' && o + 1 < len)
      line[o++] = c;
  }
  line[o] = '\0';
  return 0;
}

static int rd_bytes(struct rd *r, unsigned char *dst, size_t n) {
  while (n) {
    if (rd_fill(r))
      return -1;
    size_t k = r->b - r->a < n ? r->b - r->a : n;
    memcpy(dst, r->buf + r->a, k);
    r->a += k;
    dst += k;
    n -= k;
  }
  return 0;
}

static void str_attr(ipp_t *req, const char *name, char *out, size_t len) {
  ipp_attribute_t *a = ippFindAttribute(req, name, IPP_TAG_ZERO);
  const char *v = a ? ippGetString(a, 0, NULL) : NULL;
  snprintf(out, len, "%s", v ? v : "");
}

/* Answer one decoded request; the document follows the IPP message. */
static ipp_t *answer(struct srv *s, ipp_t *req, const unsigned char *doc,
                     size_t doc_len) {
  ipp_t *resp = ippNewResponse(req);
  ipp_attribute_t *a;
  pthread_mutex_lock(&s->mu);
  ippSetStatusCode(resp, IPP_STATUS_OK);
  str_attr(req, "requesting-user-name", s->user, sizeof(s->user));
  switch (ippGetOperation(req)) {
  case IPP_OP_GET_PRINTER_ATTRIBUTES:
    s->n_printer++;
    ippAddInteger(resp, IPP_TAG_PRINTER, IPP_TAG_ENUM, "printer-state",
                  s->pstate);
    ippAddString(resp, IPP_TAG_PRINTER, IPP_TAG_KEYWORD,
                 "printer-state-reasons", NULL, s->preasons);
    ippAddBoolean(resp, IPP_TAG_PRINTER, "printer-is-accepting-jobs",
                  (char)s->accepting);
    break;
  case IPP_OP_PRINT_JOB:
    s->n_print++;
    free(s->doc);
    s->doc = malloc(doc_len + 1);
    memcpy(s->doc, doc, doc_len);
    s->doc[doc_len] = '\0';
    s->doc_len = doc_len;
    str_attr(req, "job-name", s->job_name, sizeof(s->job_name));
    str_attr(req, "document-format", s->format, sizeof(s->format));
    str_attr(req, "media", s->media, sizeof(s->media));
    str_attr(req, "sides", s->sides, sizeof(s->sides));
    a = ippFindAttribute(req, "copies", IPP_TAG_INTEGER);
    s->copies = a ? ippGetInteger(a, 0) : -1;
    if (s->print_status != IPP_STATUS_OK) {
      ippSetStatusCode(resp, s->print_status);
      ippAddString(resp, IPP_TAG_OPERATION, IPP_TAG_TEXT, "status-message",
                   NULL, "Unsupported document-format.");
      break;
    }
    ippAddInteger(resp, IPP_TAG_JOB, IPP_TAG_INTEGER, "job-id", s->n_print);
    ippAddInteger(resp, IPP_TAG_JOB, IPP_TAG_ENUM, "job-state",
                  IPP_JSTATE_PENDING);
    ippAddString(resp, IPP_TAG_JOB, IPP_TAG_KEYWORD, "job-state-reasons", NULL,
                 "none");
    break;
  case IPP_OP_GET_JOB_ATTRIBUTES: {
    int k = s->n_get_job < s->n_jstates ? s->n_get_job : s->n_jstates - 1;
    int st = k >= 0 ? s->jstates[k] : IPP_JSTATE_PROCESSING;
    s->n_get_job++;
    if (!st) {
      ippSetStatusCode(resp, IPP_STATUS_ERROR_NOT_FOUND);
      break;
    }
    ippAddInteger(resp, IPP_TAG_JOB, IPP_TAG_ENUM, "job-state", st);
    ippAddString(resp, IPP_TAG_JOB, IPP_TAG_KEYWORD, "job-state-reasons", NULL,
                 st == IPP_JSTATE_ABORTED     ? "document-format-error"
                 : st == IPP_JSTATE_COMPLETED ? "job-completed-successfully"
                 : st == IPP_JSTATE_STOPPED   ? "printer-stopped"
                                              : "job-printing");
    break;
  }
  case IPP_OP_CANCEL_JOB:
    s->n_cancel++;
    break;
  default:
    ippSetStatusCode(resp, IPP_STATUS_ERROR_OPERATION_NOT_SUPPORTED);
  }
  pthread_mutex_unlock(&s->mu);
  return resp;
}

static int stopping(struct srv *s) {
  pthread_mutex_lock(&s->mu);
  int st = s->stop;
  pthread_mutex_unlock(&s->mu);
  return st;
}

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w <= 0)
      return -1;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

struct conn_arg {
  struct srv *s;
  int fd;
};

static void *conn_main(void *arg) {
  struct conn_arg *ca = arg;
  struct rd *r = calloc(1, sizeof(*r));
  r->fd = ca->fd;
  r->s = ca->s;
  for (;;) {
    char line[1024];
    size_t clen = 0;
    int chunked = 0, expect = 0;
    unsigned char *body = NULL;
    size_t blen = 0;
    if (rd_line(r, line, sizeof(line)) || strncmp(line, "POST ", 5) != 0)
      break;
    for (;;) {
      if (rd_line(r, line, sizeof(line)))
        goto done;
      if (!line[0])
        break;
      if (strncasecmp(line, "Content-Length:", 15) == 0)
        clen = strtoul(line + 15, NULL, 10);
      else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0 &&
               strstr(line, "chunked"))
        chunked = 1;
      else if (strncasecmp(line, "Expect:", 7) == 0)
        expect = 1;
    }
    if (ca->s->hang) { /* a printer that took the connection and froze */
      while (!stopping(ca->s))
        poll(NULL, 0, 20);
      break;
    }
    if (expect && write_all(r->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25))
      break;
    if (chunked) {
      for (;;) {
        if (rd_line(r, line, sizeof(line)))
          goto done;
        size_t n = strtoul(line, NULL, 16);
        if (n == 0) {
          rd_line(r, line, sizeof(line));
          break;
        }
        body = realloc(body, blen + n);
        if (rd_bytes(r, body + blen, n) || rd_line(r, line, sizeof(line))) {
          free(body);
          goto done;
        }
        blen += n;
      }
    } else {
      body = malloc(clen + 1);
      if (rd_bytes(r, body, clen)) {
        free(body);
        break;
      }
      blen = clen;
    }
    struct cur c = {body, blen, 0};
    ipp_t *req = ippNew();
    ipp_state_t st = ippReadIO(&c, mem_read, 1, NULL, req);
    ipp_t *resp = st == IPP_STATE_DATA
                      ? answer(ca->s, req, body + c.i, blen - c.i)
                      : NULL;
    free(body);
    ippDelete(req);
    if (!resp)
      break;
    struct wbuf w = {0};
    ippWriteIO(&w, mem_write, 1, NULL, resp);
    ippDelete(resp);
    snprintf(line, sizeof(line),
             "HTTP/1.1 200 OK\r\nContent-Type: application/ipp\r\n"
             "Content-Length: %zu\r\n\r\n",
             w.n);
    int bad = write_all(r->fd, line, strlen(line)) ||
              write_all(r->fd, w.p, w.n);
    free(w.p);
    if (bad)
      break;
  }
done:
  free(r);
  free(ca);
  return NULL;
}

static void *srv_main(void *arg) {
  struct srv *s = arg;
  while (!stopping(s)) {
    struct pollfd p = {s->lfd, POLLIN, 0};
    if (poll(&p, 1, 20) <= 0)
      continue;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
      continue;
    pthread_mutex_lock(&s->mu);
    if (s->n_conns >= MAX_CONNS) {
      pthread_mutex_unlock(&s->mu);
      close(fd);
      continue;
    }
    struct conn_arg *ca = malloc(sizeof(*ca));
    ca->s = s;
    ca->fd = fd;
    s->conns[s->n_conns] = fd;
    pthread_create(&s->conn_th[s->n_conns], NULL, conn_main, ca);
    s->n_conns++;
    pthread_mutex_unlock(&s->mu);
  }
  return NULL;
}

/* listen: 0 binds a port and never accepts (a frozen printer's kernel
 * still completes the TCP handshake); 1 serves. */
static void srv_start(struct srv *s, int serve) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof(a);
  s->pstate = IPP_PSTATE_IDLE;
  s->preasons = "none";
  s->accepting = 1;
  pthread_mutex_init(&s->mu, NULL);
  s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(s->lfd >= 0);
  assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(listen(s->lfd, 16), 0);
  assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
  s->port = ntohs(a.sin_port);
  if (serve) {
    assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
    s->running = 1;
  }
}

static void srv_stop(struct srv *s) {
  pthread_mutex_lock(&s->mu);
  s->stop = 1;
  pthread_mutex_unlock(&s->mu);
  if (s->running)
    pthread_join(s->th, NULL);
  for (int i = 0; i < s->n_conns; i++)
    shutdown(s->conns[i], SHUT_RDWR); /* wakes a blocked read */
  for (int i = 0; i < s->n_conns; i++) {
    pthread_join(s->conn_th[i], NULL);
    close(s->conns[i]);
  }
  close(s->lfd);
  free(s->doc);
  pthread_mutex_destroy(&s->mu);
}

/* ---------------------------------------------------------------------- */
/* The plugin under the fake host                                          */

struct t {
  char dir[64];
  char pdf[128]; /* a small PDF document */
  char uri[128];
  struct srv srv;
  int serving;
  struct mg_plugin_lib *lib;
  const struct mg_plugin *p;
  void *ctx;
  int started;
};

static int rm_cb(const char *path, const struct stat *st, int flag,
                 struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static const char doc_pdf[] = "%PDF-1.4\n% a fictional slip for 山田 太郎\n"
                              "%%EOF\n";

static void write_file(const char *path, const char *data, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, n, f), n);
  fclose(f);
}

static int setup_with(void **state, int serve) {
  struct t *t = calloc(1, sizeof(*t));
  assert_non_null(t);
  snprintf(t->dir, sizeof(t->dir), "/tmp/mg-cups.XXXXXX");
  assert_non_null(mkdtemp(t->dir));
  snprintf(t->pdf, sizeof(t->pdf), "%s/slip-yamada.pdf", t->dir);
  write_file(t->pdf, doc_pdf, sizeof(doc_pdf) - 1);
  srv_start(&t->srv, serve);
  t->serving = 1;
  snprintf(t->uri, sizeof(t->uri), "ipp://127.0.0.1:%d/ipp/print",
           t->srv.port);
  fk_reset();
  *state = t;
  return 0;
}

static int setup(void **state) { return setup_with(state, 1); }
static int setup_frozen(void **state) { return setup_with(state, 0); }

static void close_plugin(struct t *t) {
  if (t->started) {
    t->p->stop(t->ctx);
    while (fk_run(0)) /* what stop left on "workers" ends */
      ;
    t->p->fini(t->ctx);
  }
  if (t->p && t->ctx)
    mg_config_release(t->p->config, t->ctx);
  free(t->ctx);
  mg_plugin_unload(t->lib);
  t->started = 0;
  t->ctx = NULL;
  t->p = NULL;
  t->lib = NULL;
}

static int teardown(void **state) {
  struct t *t = *state;
  close_plugin(t);
  if (t->serving)
    srv_stop(&t->srv);
  nftw(t->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
  free(t);
  fk_reset();
  return 0;
}

/* Load and configure with "key", "value", ... NULL (uri added unless
 * given); returns the config result, then init's, then start's. */
static int open_plugin(struct t *t, ...) {
  struct mg_config_kv kv[10];
  size_t n = 0;
  int has_uri = 0;
  struct mg_err err = {{0}};
  va_list ap;
  va_start(ap, t);
  for (const char *k; (k = va_arg(ap, const char *)) && n < 9; n++) {
    kv[n].key = (char *)k;
    kv[n].value = va_arg(ap, char *);
    kv[n].line = (int)n + 2;
    has_uri |= strcmp(k, "uri") == 0;
  }
  va_end(ap);
  if (!has_uri) {
    kv[n].key = (char *)"uri";
    kv[n].value = t->uri;
    kv[n].line = (int)n + 2;
    n++;
  }
  assert_int_equal(mg_plugin_load(MG_TEST_PLUGIN_DIR "/cups.so", &t->lib, NULL),
                   0);
  t->p = t->lib->desc;
  assert_int_equal(t->p->kind, MG_PLUGIN_KIND_PRINTER);
  t->ctx = calloc(1, t->p->ctx_size);
  assert_non_null(t->ctx);
  int rc = mg_config_apply(t->p->config, t->ctx, kv, n, "box.conf", 1,
                           "[printer \"p\"]", &err);
  if (rc != 0) {
    fk_log(NULL, 3, "%s", err.msg); /* for the test to read */
    return rc;
  }
  if ((rc = t->p->init(t->ctx, &fk_host, NULL)) != MG_PLUGIN_OK)
    return rc;
  t->started = 1;
  return t->p->start(t->ctx);
}

static char *print_args(const char *path, const char *title) {
  char *s = NULL;
  assert_true(asprintf(&s, "{\"path\":\"%s\",\"title\":\"%s\"}", path,
                       title) > 0);
  return s;
}

/* Fire poll timers until the request is answered (at most n ticks). */
static void follow(int n) {
  for (int i = 0; i < n && !fk.completes && fk_fire(); i++)
    ;
}

static int has(const char *hay, const char *needle) {
  if (hay && strstr(hay, needle))
    return 1;
  print_message("\"%s\" lacks \"%s\"\n", hay ? hay : "(null)", needle);
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Tests                                                                   */

static void test_print_completes(void **state) {
  struct t *t = *state;
  char d[1024];
  t->srv.jstates[0] = IPP_JSTATE_PROCESSING;
  t->srv.jstates[1] = IPP_JSTATE_PROCESSING;
  t->srv.jstates[2] = IPP_JSTATE_COMPLETED;
  t->srv.n_jstates = 3;
  assert_int_equal(open_plugin(t, "poll", "100ms", NULL), MG_PLUGIN_OK);
  assert_int_equal(t->srv.n_printer, 1); /* the start-up check */
  char *args = print_args(t->pdf, "slip 12345678");
  assert_int_equal(t->p->command(t->ctx, 7, "print", args), MG_PLUGIN_PENDING);
  free(args);
  if (fk.completes)
    print_message("answered early: %s\n", fk.json[0]);
  assert_int_equal(fk.completes, 0); /* it waits for the printer */
  assert_int_equal(fk_armed(), 1);
  assert_int_equal(fk.timers[0].ms, 100);
  follow(10);
  assert_int_equal(fk.completes, 1);
  assert_int_equal(fk.req[0], 7);
  assert_int_equal(fk.status[0], MG_PLUGIN_OK);
  assert_string_equal(fk.json[0], "{\"job\":1,\"state\":\"completed\"}");
  assert_int_equal(fk_armed(), 0);
  /* what the printer got */
  assert_int_equal(t->srv.n_print, 1);
  assert_int_equal(t->srv.n_get_job, 3);
  assert_int_equal(t->srv.doc_len, sizeof(doc_pdf) - 1);
  assert_memory_equal(t->srv.doc, doc_pdf, sizeof(doc_pdf) - 1);
  assert_string_equal(t->srv.format, "application/pdf");
  assert_string_equal(t->srv.job_name, "slip 12345678");
  assert_string_equal(t->srv.media, "iso_a4_210x297mm");
  assert_string_equal(t->srv.sides, "one-sided");
  assert_string_equal(t->srv.user, "madoguchid");
  assert_int_equal(t->srv.copies, -1); /* 1 copy: left to the default */
  /* one event per state seen, not per poll */
  assert_int_equal(fk.events, 3);
  assert_string_equal(fk.event[0], "print.job {\"job\":1,\"state\":\"pending\","
                                   "\"printer\":\"fake-printer\"}");
  assert_string_equal(fk.event[1],
                      "print.job {\"job\":1,\"state\":\"processing\","
                      "\"printer\":\"fake-printer\",\"reasons\":\"job-printing\"}");
  assert_true(has(fk.event[2], "\"state\":\"completed\""));
  /* describe */
  assert_true(t->p->describe(t->ctx, d, sizeof(d)) > 0);
  assert_true(has(d, "\"state\":\"idle\""));
  assert_true(has(d, "\"jobs_sent\":1,\"jobs_failed\":0,\"active\":0"));
  assert_true(has(d, t->uri));
  /* no path, no title in the log */
  assert_true(fk_logs_lack("yamada"));
  assert_true(fk_logs_lack("12345678"));
  assert_true(fk.logs >= 2);
}

static void test_job_template(void **state) {
  struct t *t = *state;
  t->srv.jstates[0] = IPP_JSTATE_COMPLETED;
  t->srv.n_jstates = 1;
  assert_int_equal(open_plugin(t, "copies", "2", "media", "", "sides",
                               "two-sided-long-edge", NULL),
                   MG_PLUGIN_OK);
  char *args = print_args(t->pdf, "申請書");
  assert_int_equal(t->p->command(t->ctx, 1, "print", args), MG_PLUGIN_PENDING);
  free(args);
  follow(5);
  assert_int_equal(fk.status[0], MG_PLUGIN_OK);
  assert_int_equal(t->srv.copies, 2);
  assert_string_equal(t->srv.media, ""); /* empty: the printer's default */
  assert_string_equal(t->srv.sides, "two-sided-long-edge");
  assert_string_equal(t->srv.job_name, "申請書");
}

static int run_quiet(const char *cmd) {
  int st = system(cmd);
  return st == -1 ? -1 : WEXITSTATUS(st);
}

static void test_test_page(void **state) {
  struct t *t = *state;
  char host[256] = "", path[128], cmd[512], text[4096];
  t->srv.jstates[0] = IPP_JSTATE_COMPLETED;
  t->srv.n_jstates = 1;
  assert_int_equal(open_plugin(t, NULL), MG_PLUGIN_OK);
  assert_int_equal(t->p->command(t->ctx, 3, "test-page", NULL),
                   MG_PLUGIN_PENDING);
  follow(5);
  assert_int_equal(fk.status[0], MG_PLUGIN_OK);
  assert_string_equal(t->srv.job_name, "madoguchi test page");
  assert_string_equal(t->srv.format, "application/pdf");
  const char *pdf = t->srv.doc;
  size_t len = t->srv.doc_len;
  assert_true(len > 400 && memcmp(pdf, "%PDF-1.4\n", 9) == 0);
  /* the xref table points at each object */
  const char *sx = strstr(pdf, "startxref\n");
  assert_non_null(sx);
  size_t xref = strtoul(sx + 10, NULL, 10);
  assert_true(xref < len && strncmp(pdf + xref, "xref\n0 6\n", 9) == 0);
  for (int i = 1; i <= 5; i++) {
    char want[16];
    size_t off = strtoul(pdf + xref + 9 + 20 * i, NULL, 10);
    snprintf(want, sizeof(want), "%d 0 obj", i);
    assert_true(off < len && strncmp(pdf + off, want, strlen(want)) == 0);
  }
  /* poppler reads it and finds the box and the printer named */
  gethostname(host, sizeof(host) - 1);
  snprintf(path, sizeof(path), "%s/test-page.pdf", t->dir);
  write_file(path, pdf, len);
  snprintf(cmd, sizeof(cmd), "pdfinfo '%s' >/dev/null 2>&1", path);
  assert_int_equal(run_quiet(cmd), 0);
  snprintf(cmd, sizeof(cmd), "pdftotext '%s' '%s.txt'", path, path);
  assert_int_equal(run_quiet(cmd), 0);
  snprintf(path + strlen(path), sizeof(path) - strlen(path), ".txt");
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  size_t n = fread(text, 1, sizeof(text) - 1, f);
  text[n] = '\0';
  fclose(f);
  assert_true(has(text, "Madoguchi printer test page"));
  assert_true(has(text, "Printer: fake-printer"));
  char box[300];
  snprintf(box, sizeof(box), "Box: %s", host);
  assert_true(has(text, box));
  assert_true(has(text, t->uri));
}

static void test_printer_stopped(void **state) {
  struct t *t = *state;
  char d[1024];
  t->srv.pstate = IPP_PSTATE_STOPPED;
  t->srv.preasons = "media-empty-error";
  assert_int_equal(open_plugin(t, NULL), MG_PLUGIN_OK);
  char *args = print_args(t->pdf, "slip 1");
  assert_int_equal(t->p->command(t->ctx, 1, "print", args), MG_PLUGIN_PENDING);
  free(args);
  assert_int_equal(fk.completes, 1);
  assert_int_equal(fk.status[0], MG_PLUGIN_RETRY);
  assert_string_equal(fk.json[0], "{\"error\":\"the printer is stopped "
                                  "(media-empty-error)\"}");
  assert_int_equal(t->srv.n_print, 0); /* nothing was sent */
  assert_int_equal(fk.events, 0);
  assert_true(t->p->describe(t->ctx, d, sizeof(d)) > 0);
  assert_true(has(d, "\"state\":\"stopped\",\"reasons\":\"media-empty-error\""));
  assert_true(has(d, "\"jobs_sent\":0,\"jobs_failed\":1"));
}

static void test_not_accepting(void **state) {
  struct t *t = *state;
  t->srv.accepting = 0;
  assert_int_equal(open_plugin(t, NULL), MG_PLUGIN_OK);
  assert_int_equal(t->p->command(t->ctx, 1, "test-page", NULL),
                   MG_PLUGIN_PENDING);
  assert_int_equal(fk.status[0], MG_PLUGIN_RETRY);
  assert_true(has(fk.json[0], "the printer does not accept jobs"));
}

static void test_printer_down(void **state) {
  struct t *t = *state;
  char uri[64], d[1024], want[128];
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof(a);
  /* a port that was free a moment ago: nobody listens there */
  assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(getsockname(s, (struct sockaddr *)&a, &al), 0);
  close(s);
  snprintf(uri, sizeof(uri), "ipp://127.0.0.1:%d/ipp/print", ntohs(a.sin_port));
  assert_int_equal(open_plugin(t, "uri", uri, NULL), MG_PLUGIN_OK);
  /* start does not fail for a printer that is off; it says so */
  assert_true(has(fk.log[fk.logs - 1], "cannot reach the printer"));
  assert_int_equal(t->p->command(t->ctx, 1, "test-page", NULL),
                   MG_PLUGIN_PENDING);
  assert_int_equal(fk.status[0], MG_PLUGIN_RETRY);
  snprintf(want, sizeof(want), "cannot reach the printer at 127.0.0.1:%d: ",
           ntohs(a.sin_port));
  assert_true(has(fk.json[0], want));
  assert_true(has(fk.json[0], "it did not take the connection"));
  assert_true(t->p->describe(t->ctx, d, sizeof(d)) > 0);
  assert_true(has(d, "\"state\":\"unreachable\""));
}

/* A printer whose kernel takes the connection but which never answers:
 * given up after `timeout`, not hung. */
static void test_printer_silent(void **state) {
  struct t *t = *state;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  assert_int_equal(open_plugin(t, "timeout", "1s", NULL), MG_PLUGIN_OK);
  assert_int_equal(t->p->command(t->ctx, 1, "test-page", NULL),
                   MG_PLUGIN_PENDING);
  clock_gettime(CLOCK_MONOTONIC, &b);
  assert_int_equal(fk.status[0], MG_PLUGIN_RETRY);
  assert_true(has(fk.json[0], "the printer did not answer within 1 s"));
  double s = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
  assert_true(s < 6.0); /* the probe at start and the job: ~1 s each */
}

static void test_job_aborted(void **state) {
  struct t *t = *state;
  t->srv.jstates[0] = IPP_JSTATE_ABORTED;
  t->srv.n_jstates = 1;
  assert_int_equal(open_plugin(t, NULL), MG_PLUGIN_OK);
  char *args = print_args(t->pdf, "slip 2");
  assert_int_equal(t->p->command(t->ctx, 1, "print", args), MG_PLUGIN_PENDING);
  free(args);
  follow(5);
  assert_int_equal(fk.status[0], MG_PLUGIN_FATAL);
  assert_string_equal(fk.json[0],
                      "{\"job\":1,\"state\":\"aborted\",\"error\":\"the printer "
                      "aborted job 1 (document-format-error)\"}");
  assert_true(has(fk.event[fk.events - 1], "\"state\":\"aborted\""));
}

static void test_print_refused(void **state) {
  struct t *t = *state;
  t->srv.print_status = IPP_STATUS_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED;
  assert_int_equal(open_plugin(t, NULL), MG_PLUGIN_OK);
  char *args = print_args(t->pdf, "slip 3");
  assert_int_equal(t->p->command(t->ctx, 1, "print", args), MG_PLUGIN_PENDING);
  free(args);
  assert_int_equal(fk.status[0], MG_PLUGIN_FATAL);
  assert_true(has(fk.json[0], "Print-Job refused by the printer: "
                              "Unsupported document-format. "
                              "(client-error-document-format-not-supported)"));
}

/* The printer forgot the job (a real one purges finished jobs). */
static void test_job_gone(void **state) {
  struct t *t = *state;
  t->srv.jstates[0] = IPP_JSTATE_PROCESSING;
  t->srv.jstates[1] = 0;
  t->srv.n_jstates = 2;
  assert_int_equal(open_plugin(t, NULL), MG_PLUGIN_OK);
  assert_int_equal(t->p->command(t->ctx, 1, "test-page", NULL),
                   MG_PLUGIN_PENDING);
  follow(5);
  assert_int_equal(fk.status[0], MG_PLUGIN_OK);
  assert_true(has(fk.json[0], "\"state\":\"completed\""));
}

static void test_job_timeout(void **state) {
  struct t *t = *state;
  t->srv.jstates[0] = IPP_JSTATE_STOPPED; /* out of paper, say */
  t->srv.n_jstates = 1;
  assert_int_equal(open_plugin(t, "job_timeout", "2s", "poll", "100ms", NULL),
                   MG_PLUGIN_OK);
  assert_int_equal(t->p->command(t->ctx, 1, "test-page", NULL),
                   MG_PLUGIN_PENDING);
  for (int i = 0; i < 100 && !fk.completes; i++) {
    poll(NULL, 0, 50);
    fk_fire();
  }
  assert_int_equal(fk.completes, 1);
  assert_int_equal(fk.status[0], MG_PLUGIN_RETRY);
  assert_true(has(fk.json[0], "job 1 did not finish within job_timeout (2 s) "
                              "and was cancelled"));
  assert_int_equal(t->srv.n_cancel, 1);
  assert_true(has(fk.event[fk.events - 1], "\"state\":\"canceled\""));
  assert_int_equal(fk_armed(), 0);
}

static void test_bad_requests(void **state) {
  struct t *t = *state;
  char path[128], *args;
  assert_int_equal(open_plugin(t, NULL), MG_PLUGIN_OK);
  assert_int_equal(t->p->command(t->ctx, 1, "print", "{}"), MG_PLUGIN_PENDING);
  assert_int_equal(fk.status[0], MG_PLUGIN_FATAL);
  assert_true(has(fk.json[0], "print needs {\\\"path\\\""));
  assert_int_equal(
      t->p->command(t->ctx, 2, "print", "{\"path\":\"relative.pdf\"}"),
      MG_PLUGIN_PENDING);
  assert_int_equal(fk.status[1], MG_PLUGIN_FATAL);
  args = NULL;
  assert_true(asprintf(&args, "{\"path\":\"%s\",\"title\":5}", t->pdf) > 0);
  assert_int_equal(t->p->command(t->ctx, 3, "print", args), MG_PLUGIN_PENDING);
  free(args);
  assert_int_equal(fk.status[2], MG_PLUGIN_FATAL);
  assert_true(has(fk.json[2], "title must be a string"));
  snprintf(path, sizeof(path), "%s/absent.pdf", t->dir);
  args = print_args(path, "x");
  assert_int_equal(t->p->command(t->ctx, 4, "print", args), MG_PLUGIN_PENDING);
  free(args);
  assert_int_equal(fk.status[3], MG_PLUGIN_FATAL);
  assert_true(has(fk.json[3], "cannot open the document: No such file"));
  snprintf(path, sizeof(path), "%s/note.txt", t->dir);
  write_file(path, "not a pdf\n", 10);
  args = print_args(path, "x");
  assert_int_equal(t->p->command(t->ctx, 5, "print", args), MG_PLUGIN_PENDING);
  free(args);
  assert_int_equal(fk.status[4], MG_PLUGIN_FATAL);
  assert_true(has(fk.json[4], "the document is not a PDF"));
  args = print_args(t->dir, "x");
  assert_int_equal(t->p->command(t->ctx, 6, "print", args), MG_PLUGIN_PENDING);
  free(args);
  assert_true(has(fk.json[5], "not a regular file"));
  assert_int_equal(t->p->command(t->ctx, 7, "scan", NULL), MG_PLUGIN_FATAL);
  assert_int_equal(fk.completes, 6);
  assert_int_equal(t->srv.n_print, 0);
  assert_true(fk_logs_lack(t->dir)); /* paths stay out of the log */
}

/* stop: a job waiting for its next poll is answered and freed at once; a
 * job on a worker is answered and its I/O told to give up. */
static void test_stop_with_jobs(void **state) {
  struct t *t = *state;
  t->srv.jstates[0] = IPP_JSTATE_PROCESSING;
  t->srv.n_jstates = 1;
  assert_int_equal(open_plugin(t, NULL), MG_PLUGIN_OK);
  assert_int_equal(t->p->command(t->ctx, 1, "test-page", NULL),
                   MG_PLUGIN_PENDING);
  assert_int_equal(fk_armed(), 1); /* job 1 waits for a poll */
  fk.deferred = 1;
  assert_int_equal(t->p->command(t->ctx, 2, "test-page", NULL),
                   MG_PLUGIN_PENDING);
  assert_int_equal(fk.n_work, 1); /* job 2 is "on a worker" */
  t->p->stop(t->ctx);
  assert_int_equal(fk.completes, 2);
  assert_int_equal(fk.status[0], MG_PLUGIN_RETRY);
  assert_int_equal(fk.status[1], MG_PLUGIN_RETRY);
  assert_true(has(fk_json_for(1), "\"job\":1,\"state\":\"pending\""));
  assert_true(has(fk_json_for(1), "may still print"));
  assert_true(has(fk_json_for(2), "the printer plugin stopped"));
  assert_int_equal(fk_armed(), 0);
  /* the worker runs now, with cancel set: it gives up, answers nothing */
  assert_int_equal(fk_run(0), 1);
  assert_int_equal(fk.completes, 2);
  assert_int_equal(t->srv.n_print, 1); /* only job 1 reached the printer */
  t->p->fini(t->ctx);
  t->started = 0;
  mg_config_release(t->p->config, t->ctx);
  free(t->ctx);
  t->ctx = NULL;
}

/* queue_work refused (the daemon is stopping): RETRY, nothing leaks. */
static void test_queue_refused(void **state) {
  struct t *t = *state;
  assert_int_equal(open_plugin(t, NULL), MG_PLUGIN_OK);
  fk.refuse = 1;
  assert_int_equal(t->p->command(t->ctx, 1, "test-page", NULL),
                   MG_PLUGIN_RETRY);
  fk.refuse = 0;
  /* a work cancelled before it started is answered RETRY */
  fk.deferred = 1;
  assert_int_equal(t->p->command(t->ctx, 2, "test-page", NULL),
                   MG_PLUGIN_PENDING);
  assert_int_equal(fk_run(-ECANCELED), 1);
  assert_int_equal(fk.status[0], MG_PLUGIN_RETRY);
  assert_true(has(fk.json[0], "the daemon is stopping"));
}

static void test_config_rules(void **state) {
  struct t *t = *state;
  static const struct {
    const char *key, *value, *msg;
  } cases[] = {
      {"uri", "http://192.0.2.10/ipp/print", "must start with ipp:// or ipps://"},
      {"uri", "ipp://alice:secret@192.0.2.10/ipp/print",
       "must not carry a user name or password"},
      {"uri", "192.0.2.10", "must be a printer's IPP address"},
      {"media", "A4 paper", "must be a PWG media name"},
      {"sides", "both", "one-sided"},
      {"copies", "0", "copies"},
      {"timeout", "5ms", "timeout"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    fk_reset();
    assert_int_not_equal(open_plugin(t, cases[i].key, cases[i].value, NULL), 0);
    assert_true(fk.logs >= 1);
    if (!strstr(fk.log[fk.logs - 1], cases[i].msg) ||
        !strstr(fk.log[fk.logs - 1], "box.conf:2"))
      fail_msg("case %zu: \"%s\" lacks \"%s\" or the line", i,
               fk.log[fk.logs - 1], cases[i].msg);
    close_plugin(t);
  }
  /* a rule across keys: init refuses, naming both */
  fk_reset();
  assert_int_equal(open_plugin(t, "poll", "10s", "job_timeout", "5s", NULL),
                   MG_PLUGIN_FATAL);
  assert_true(has(fk.log[fk.logs - 1], "poll must be shorter than job_timeout"));
  close_plugin(t);
  /* ipps and a default port are fine */
  fk_reset();
  struct mg_err err = {{0}};
  struct mg_config_kv kv[] = {{(char *)"uri", (char *)"ipps://printer.example/ipp/print", 2}};
  assert_int_equal(mg_plugin_load(MG_TEST_PLUGIN_DIR "/cups.so", &t->lib, NULL),
                   0);
  t->p = t->lib->desc;
  t->ctx = calloc(1, t->p->ctx_size);
  assert_int_equal(mg_config_apply(t->p->config, t->ctx, kv, 1, "box.conf", 1,
                                   "[printer \"p\"]", &err),
                   0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_print_completes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_job_template, setup, teardown),
      cmocka_unit_test_setup_teardown(test_test_page, setup, teardown),
      cmocka_unit_test_setup_teardown(test_printer_stopped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_not_accepting, setup, teardown),
      cmocka_unit_test_setup_teardown(test_printer_down, setup, teardown),
      cmocka_unit_test_setup_teardown(test_printer_silent, setup_frozen,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_job_aborted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_print_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_job_gone, setup, teardown),
      cmocka_unit_test_setup_teardown(test_job_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stop_with_jobs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_queue_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_config_rules, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
