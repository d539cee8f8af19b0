/*
 * cups — prints on an IPP printer through libcups, straight to the
 * printer's IPP URI: no cupsd, no queue on the box (P1).
 *
 *   [printer "shimin"]
 *   plugin = cups
 *   counters = shimin-1, shimin-2
 *   uri = ipp://192.0.2.10/ipp/print
 *   timeout = 10s          ; one request (connect, send, status)
 *   job_timeout = 90s      ; the whole job, until the printer says completed
 *
 * Commands (args are a JSON object):
 *   print      {"path": "/abs/doc.pdf", "title": "..."} -> PENDING, then
 *              {"job": N, "state": "completed"} once the printer reports the
 *              job completed; N is the printer's job-id.  `title` (optional)
 *              becomes the IPP job-name.
 *   test-page  no args -> PENDING, then as above: a one-page PDF, made here,
 *              naming the box (gethostname), the printer and the time.
 * Events: print.job {"job": N, "state": "pending"|"processing"|"completed"|
 * "aborted"|"canceled", "printer": "<instance id>"} whenever the state seen
 * changes, plus "reasons" (the printer's job-state-reasons) when it has any.
 *
 * How a job runs: one work on a worker thread checks the printer
 * (Get-Printer-Attributes: stopped or not accepting -> RETRY) and sends the
 * document (Print-Job, application/pdf); then a one-shot timer on the loop
 * queues one short Get-Job-Attributes work per `poll` until the job ends or
 * `job_timeout` passes (the job is then cancelled and RETRY returned, so
 * that printing again gives one copy).  Workers call no host service;
 * events and answers are sent from done() and the timer, on the loop.
 *
 * Every blocking call is bounded: connects by `timeout`, and every read or
 * write by libcups' timeout callback, which gives up after `timeout`
 * without progress or at once when stop() asks.  Paths and titles may carry
 * residents' data: they are never logged.
 */
#include <madoguchi/plugin.h>

#include "mgp.h"

#include <cups/cups.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define JSON_DEPTH_MAX 32
#define IO_WAIT_S 0.2     /* how often libcups asks io_wait whether to go on */
#define CHUNK 65536       /* document bytes per cupsWriteRequestData */
#define JOB_NAME_MAX 255  /* IPP name(MAX) */
#define USER_NAME "madoguchid"

enum job_kind { JOB_PRINT, JOB_TEST_PAGE, JOB_PROBE };

struct cp;

struct job {
  struct cp *cp;
  struct job *next; /* cp->list */
  int kind;         /* enum job_kind */
  uint64_t req_id;
  char *path;       /* owned: the document; NULL for a test page or probe */
  char *doc;        /* owned: the test page PDF */
  size_t doc_len;
  char *title;      /* owned: the IPP job-name, may be NULL */
  http_t *http;     /* owned: kept between the works of this job */
  int64_t started;  /* monotonic ms when the job was accepted */
  struct mg_timer *timer; /* the wait before the next poll */
  const char *shown;      /* static: the state last emitted */
  int answered;           /* the request has its answer */
  char final[512];        /* the answer after a Cancel-Job at job_timeout */
  /* Set on the loop by stop(), read by the worker (libcups reads it too,
   * as httpConnect2's cancel flag): __atomic builtins on our side. */
  int cancel;
  /* Written by the worker, read in done() on the loop. */
  int status;       /* MG_PLUGIN_OK, RETRY or FATAL */
  char why[320];    /* static sentence plus printer facts; no residents' data */
  int timed_out;    /* io_wait gave up */
  int64_t mark;     /* monotonic ms of the last progress (worker only) */
  int job_id;       /* the printer's job-id, 0 before Print-Job answered */
  int jstate;       /* ipp_jstate_t seen last, 0 none */
  char jreasons[160];
  int gone;         /* Get-Job-Attributes: the printer forgot the job */
  int pstate;       /* ipp_pstate_t, 0 not checked, -1 unreachable */
  char preasons[160];
};

struct cp {
  /* config, stored by the host */
  char *uri;
  int64_t timeout_ms;
  int64_t job_timeout_ms;
  int64_t poll_ms;
  int64_t copies;
  char *media;
  int sides; /* index into SIDES */
  /* parsed from uri at init */
  char host[256];
  char resource[1024];
  int port;
  http_encryption_t enc;
  /* runtime */
  const struct mg_host *h;
  struct mg_instance *inst;
  uint64_t sent, failed;
  size_t active;
  struct job *list;
  int pstate; /* printer-state as last seen: 0 never, -1 unreachable */
  char preasons[160];
  time_t checked;
};

#define SIDES "one-sided|two-sided-long-edge|two-sided-short-edge"
static const char *const sides_kw[] = {"one-sided", "two-sided-long-edge",
                                       "two-sided-short-edge"};

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------------- */
/* The test page: a one-page PDF written by hand (ASCII, Helvetica)        */

/* A PDF string literal of s: ASCII printable only, ( ) \ escaped. */
static void pdf_str(struct mgp_sb *b, const char *s) {
  mgp_sb_add(b, "(", 1);
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '(' || c == ')' || c == '\\') {
      char e[2] = {'\\', (char)c};
      mgp_sb_add(b, e, 2);
    } else {
      char o = c >= 0x20 && c < 0x7F ? (char)c : '?';
      mgp_sb_add(b, &o, 1);
    }
  }
  mgp_sb_add(b, ")", 1);
}

/* The page names box, printer and time; the frame 10 mm inside the A4
 * edge shows whether the printer's margins cut the page. */
static int test_page_pdf(const struct cp *cp, const char *box,
                         const char *printer, const char *when, char **out,
                         size_t *out_len) {
  struct mgp_sb c = {0}, d = {0};
  size_t off[6];
  char line[320];
  int rc = -1;

  mgp_sb_puts(&c, "0.5 w 28.35 28.35 538.3 785.3 re S\n");
  mgp_sb_puts(&c, "BT /F1 22 Tf 56.7 770 Td ");
  pdf_str(&c, "Madoguchi printer test page");
  mgp_sb_puts(&c, " Tj ET\nBT /F1 13 Tf 56.7 730 Td 20 TL\n");
  const char *lines[7];
  char l_box[320], l_prn[320], l_uri[1100], l_when[96], l_job[320];
  snprintf(l_box, sizeof(l_box), "Box: %s", box);
  snprintf(l_prn, sizeof(l_prn), "Printer: %s", printer);
  snprintf(l_uri, sizeof(l_uri), "URI: %s", cp->uri);
  snprintf(l_when, sizeof(l_when), "Printed: %s", when);
  snprintf(l_job, sizeof(l_job), "Media: %s   Sides: %s   Copies: %lld",
           cp->media && cp->media[0] ? cp->media : "(printer default)",
           sides_kw[cp->sides], (long long)cp->copies);
  lines[0] = l_box;
  lines[1] = l_prn;
  lines[2] = l_uri;
  lines[3] = l_when;
  lines[4] = l_job;
  lines[5] = "";
  lines[6] = "If the frame around this page is whole, the margins are fine.";
  for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
    pdf_str(&c, lines[i]);
    mgp_sb_puts(&c, i ? " '\n" : " Tj\n"); /* ' moves to the next line first */
  }
  mgp_sb_puts(&c, "ET\n");
  if (c.oom)
    goto out;

  mgp_sb_puts(&d, "%PDF-1.4\n%\xE2\xE3\xCF\xD3\n");
  off[1] = d.n;
  mgp_sb_puts(&d, "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
  off[2] = d.n;
  mgp_sb_puts(&d, "2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n");
  off[3] = d.n;
  mgp_sb_puts(&d, "3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595.28 "
              "841.89] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 "
              "R >>\nendobj\n");
  off[4] = d.n;
  mgp_sb_puts(&d, "4 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
              "/Encoding /WinAnsiEncoding >>\nendobj\n");
  off[5] = d.n;
  mgp_sb_printf(&d, "5 0 obj\n<< /Length %zu >>\nstream\n", c.n);
  mgp_sb_add(&d, c.p, c.n);
  mgp_sb_puts(&d, "endstream\nendobj\n");
  size_t xref = d.n;
  mgp_sb_puts(&d, "xref\n0 6\n0000000000 65535 f \n");
  for (int i = 1; i <= 5; i++) {
    snprintf(line, sizeof(line), "%010zu 00000 n \n", off[i]);
    mgp_sb_puts(&d, line);
  }
  mgp_sb_printf(&d, "trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n",
            xref);
  if (d.oom)
    goto out;
  *out = d.p;
  *out_len = d.n;
  d.p = NULL;
  rc = 0;
out:
  free(c.p);
  free(d.p);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Worker side: libcups only, no host services                            */

__attribute__((format(printf, 3, 4))) static void
w_fail(struct job *j, int status, const char *fmt, ...) {
  va_list ap;
  if (j->status != MG_PLUGIN_OK)
    return; /* the first failure is the reason */
  j->status = status;
  va_start(ap, fmt);
  vsnprintf(j->why, sizeof(j->why), fmt, ap);
  va_end(ap);
}

static int cancelled(struct job *j) {
  return __atomic_load_n(&j->cancel, __ATOMIC_ACQUIRE);
}

/* libcups' wait callback: 1 goes on waiting, 0 gives up. */
static int io_wait(http_t *http, void *ud) {
  struct job *j = ud;
  (void)http;
  if (cancelled(j))
    return 0;
  if (mono_ms() - j->mark >= j->cp->timeout_ms) {
    j->timed_out = 1;
    return 0;
  }
  return 1;
}

/* A printer asking for a password gets none: never a prompt on a tty. */
static const char *no_password(const char *prompt, http_t *http,
                               const char *method, const char *resource,
                               void *ud) {
  (void)prompt;
  (void)http;
  (void)method;
  (void)resource;
  (void)ud;
  return NULL;
}

static void w_begin(struct job *j) {
  j->status = MG_PLUGIN_OK;
  j->why[0] = '\0';
  j->timed_out = 0;
  j->mark = mono_ms();
  cupsSetPasswordCB2(no_password, NULL); /* per thread in libcups */
}

static void w_close(struct job *j) {
  if (j->http) {
    httpClose(j->http);
    j->http = NULL;
  }
}

static int w_connect(struct job *j) {
  struct cp *cp = j->cp;
  if (j->http)
    return 0;
  /* msec 0: not connected yet, so that a failure keeps its errno */
  j->http = httpConnect2(cp->host, cp->port, NULL, AF_UNSPEC, cp->enc, 1, 0,
                         NULL);
  if (!j->http) {
    j->pstate = -1;
    w_fail(j, MG_PLUGIN_RETRY, "cannot find the printer's host %s: %s",
           cp->host, cupsLastErrorString());
    return -1;
  }
  if (httpReconnect2(j->http, (int)cp->timeout_ms, &j->cancel) != 0) {
    int err = httpError(j->http);
    j->pstate = -1;
    w_close(j);
    if (cancelled(j))
      w_fail(j, MG_PLUGIN_RETRY, "the printer plugin is stopping");
    else if (err == ETIMEDOUT || !err)
      w_fail(j, MG_PLUGIN_RETRY,
             "cannot reach the printer at %s:%d: no answer within %lld s",
             cp->host, cp->port, (long long)(cp->timeout_ms / 1000));
    else /* libcups says EHOSTDOWN for a refused connection too */
      w_fail(j, MG_PLUGIN_RETRY,
             "cannot reach the printer at %s:%d: it did not take the "
             "connection (%s); is it switched on, and is uri right?",
             cp->host, cp->port, strerror(err));
    return -1;
  }
  httpSetTimeout(j->http, IO_WAIT_S, io_wait, j);
  return 0;
}

static int login_status(ipp_status_t st) {
  return st == IPP_STATUS_ERROR_FORBIDDEN ||
         st == IPP_STATUS_ERROR_NOT_AUTHENTICATED ||
         st == IPP_STATUS_ERROR_NOT_AUTHORIZED ||
         st == IPP_STATUS_ERROR_CUPS_AUTHENTICATION_CANCELED;
}

/* A failed request: transient (RETRY) or not (FATAL), and why. */
static void w_ipp_fail(struct job *j, const char *what) {
  ipp_status_t st = cupsLastError();
  const char *text = cupsLastErrorString();
  char msg[121];
  size_t n = 0;
  /* The printer's status-message, printable ASCII only: cut anywhere, it
   * stays valid in the JSON answer. */
  for (; text && text[n] && n < sizeof(msg) - 1; n++)
    msg[n] = text[n] >= 0x20 && text[n] < 0x7F ? text[n] : '?';
  msg[n] = '\0';
  if (cancelled(j)) {
    w_fail(j, MG_PLUGIN_RETRY, "the printer plugin is stopping");
  } else if (j->timed_out) {
    w_fail(j, MG_PLUGIN_RETRY, "%s: the printer did not answer within %lld s",
           what, (long long)(j->cp->timeout_ms / 1000));
  } else if (login_status(st)) {
    w_fail(j, MG_PLUGIN_FATAL,
           "%s: the printer asks for a login, which madoguchid does not give "
           "(allow printing without login on the printer)", what);
  } else if (st >= IPP_STATUS_ERROR_INTERNAL &&
             st < IPP_STATUS_ERROR_CUPS_AUTHENTICATION_CANCELED) {
    w_fail(j, MG_PLUGIN_RETRY, "%s: the printer is not ready: %s (%s)", what,
           msg, ippErrorString(st));
  } else {
    w_fail(j, MG_PLUGIN_FATAL, "%s refused by the printer: %s (%s)", what, msg,
           ippErrorString(st));
  }
  if (j->status == MG_PLUGIN_RETRY)
    w_close(j); /* the connection may be broken: a fresh one next time */
}

static ipp_t *w_new(struct job *j, ipp_op_t op) {
  ipp_t *req = ippNewRequest(op);
  if (!req)
    return NULL;
  ippAddString(req, IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", NULL,
               j->cp->uri);
  ippAddString(req, IPP_TAG_OPERATION, IPP_TAG_NAME, "requesting-user-name",
               NULL, USER_NAME);
  return req;
}

/* One request and its answer; NULL (and j->status set) on failure. */
static ipp_t *w_do(struct job *j, ipp_t *req, const char *what) {
  ipp_t *resp;
  if (!req) {
    w_fail(j, MG_PLUGIN_RETRY, "%s: out of memory", what);
    return NULL;
  }
  j->mark = mono_ms();
  resp = cupsDoRequest(j->http, req, j->cp->resource); /* frees req */
  if (!resp || cupsLastError() > IPP_STATUS_OK_EVENTS_COMPLETE) {
    w_ipp_fail(j, what);
    ippDelete(resp);
    return NULL;
  }
  return resp;
}

/* The values of a keyword attribute, comma separated, "none" left out. */
static void keywords(ipp_t *resp, const char *name, char *buf, size_t len) {
  ipp_attribute_t *a = ippFindAttribute(resp, name, IPP_TAG_KEYWORD);
  size_t o = 0;
  buf[0] = '\0';
  for (int i = 0; a && i < ippGetCount(a); i++) {
    const char *s = ippGetString(a, i, NULL);
    int n;
    if (!s || strcmp(s, "none") == 0)
      continue;
    n = snprintf(buf + o, len - o, "%s%s", o ? "," : "", s);
    if (n < 0 || (size_t)n >= len - o) {
      buf[o] = '\0'; /* drop a value that does not fit whole */
      break;
    }
    o += (size_t)n;
  }
}

/* Get-Printer-Attributes: a stopped printer or one refusing jobs gives
 * RETRY, with the reasons it states (media-empty-error, ...). */
static int w_printer(struct job *j) {
  static const char *const want[] = {"printer-state", "printer-state-reasons",
                                     "printer-is-accepting-jobs"};
  ipp_t *req = w_new(j, IPP_OP_GET_PRINTER_ATTRIBUTES), *resp;
  ipp_attribute_t *a;
  int rc = -1;
  if (req)
    ippAddStrings(req, IPP_TAG_OPERATION, IPP_TAG_KEYWORD,
                  "requested-attributes", 3, NULL, want);
  if (!(resp = w_do(j, req, "Get-Printer-Attributes")))
    goto out;
  a = ippFindAttribute(resp, "printer-state", IPP_TAG_ENUM);
  j->pstate = a ? ippGetInteger(a, 0) : IPP_PSTATE_IDLE;
  keywords(resp, "printer-state-reasons", j->preasons, sizeof(j->preasons));
  a = ippFindAttribute(resp, "printer-is-accepting-jobs", IPP_TAG_BOOLEAN);
  if (j->pstate == IPP_PSTATE_STOPPED)
    w_fail(j, MG_PLUGIN_RETRY, "the printer is stopped (%s)",
           j->preasons[0] ? j->preasons : "no reason given");
  else if (a && !ippGetBoolean(a, 0))
    w_fail(j, MG_PLUGIN_RETRY, "the printer does not accept jobs (%s)",
           j->preasons[0] ? j->preasons : "no reason given");
  else
    rc = 0;
out:
  ippDelete(resp);
  return rc;
}

/* Failure of the HTTP side of Print-Job (the document transfer). */
static void w_http_fail(struct job *j, http_status_t st) {
  if (st == HTTP_STATUS_UNAUTHORIZED || st == HTTP_STATUS_FORBIDDEN ||
      st == HTTP_STATUS_CUPS_AUTHORIZATION_CANCELED)
    w_fail(j, MG_PLUGIN_FATAL,
           "Print-Job: the printer asks for a login, which madoguchid does not "
           "give (allow printing without login on the printer)");
  else if (cancelled(j))
    w_fail(j, MG_PLUGIN_RETRY, "the printer plugin is stopping");
  else if (j->timed_out)
    w_fail(j, MG_PLUGIN_RETRY,
           "Print-Job: the printer did not take the document within %lld s",
           (long long)(j->cp->timeout_ms / 1000));
  else
    w_fail(j, MG_PLUGIN_RETRY, "Print-Job: sending the document failed: %s",
           st == HTTP_STATUS_ERROR ? cupsLastErrorString() : httpStatus(st));
  w_close(j);
}

/* Print-Job with the document streamed from fd (or from j->doc). */
static void w_print(struct job *j, int fd, size_t len) {
  struct cp *cp = j->cp;
  ipp_t *req = w_new(j, IPP_OP_PRINT_JOB), *resp = NULL;
  ipp_attribute_t *a;
  http_status_t st;
  char *buf = NULL;
  size_t sent = 0;
  if (!req || !(buf = malloc(CHUNK))) {
    w_fail(j, MG_PLUGIN_RETRY, "out of memory");
    goto out;
  }
  ippAddString(req, IPP_TAG_OPERATION, IPP_TAG_NAME, "job-name", NULL,
               j->title ? j->title : "madoguchi");
  ippAddString(req, IPP_TAG_OPERATION, IPP_TAG_MIMETYPE, "document-format",
               NULL, "application/pdf");
  if (cp->copies > 1)
    ippAddInteger(req, IPP_TAG_JOB, IPP_TAG_INTEGER, "copies", (int)cp->copies);
  if (cp->media && cp->media[0])
    ippAddString(req, IPP_TAG_JOB, IPP_TAG_KEYWORD, "media", NULL, cp->media);
  ippAddString(req, IPP_TAG_JOB, IPP_TAG_KEYWORD, "sides", NULL,
               sides_kw[cp->sides]);

  j->mark = mono_ms();
  /* the HTTP body is the IPP message and the document after it */
  st = cupsSendRequest(j->http, req, cp->resource, ippLength(req) + len);
  while (st == HTTP_STATUS_CONTINUE && sent < len) {
    size_t n = len - sent < CHUNK ? len - sent : CHUNK;
    if (fd >= 0) {
      ssize_t r = read(fd, buf, n);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0) { /* shorter than fstat said: it changed under us */
        w_fail(j, MG_PLUGIN_FATAL, "cannot read the document: %s",
               r < 0 ? strerror(errno) : "it became shorter while sent");
        w_close(j); /* the request is half sent */
        goto out;
      }
      n = (size_t)r;
    } else {
      memcpy(buf, j->doc + sent, n);
    }
    j->mark = mono_ms();
    st = cupsWriteRequestData(j->http, buf, n);
    sent += n;
  }
  if (st != HTTP_STATUS_CONTINUE) {
    w_http_fail(j, st);
    goto out;
  }
  j->mark = mono_ms();
  resp = cupsGetResponse(j->http, cp->resource);
  if (!resp || cupsLastError() > IPP_STATUS_OK_EVENTS_COMPLETE) {
    w_ipp_fail(j, "Print-Job");
    goto out;
  }
  a = ippFindAttribute(resp, "job-id", IPP_TAG_INTEGER);
  j->job_id = a ? ippGetInteger(a, 0) : 0;
  a = ippFindAttribute(resp, "job-state", IPP_TAG_ENUM);
  j->jstate = a ? ippGetInteger(a, 0) : IPP_JSTATE_PENDING;
  keywords(resp, "job-state-reasons", j->jreasons, sizeof(j->jreasons));
  if (j->job_id <= 0)
    w_fail(j, MG_PLUGIN_FATAL,
           "Print-Job: the printer took the document but gave no job-id");
out:
  ippDelete(req);
  ippDelete(resp);
  free(buf);
}

/* Check the printer, then send the document.  Also the start-up probe
 * (JOB_PROBE: the check only). */
static void submit_work(void *ud) {
  struct job *j = ud;
  struct stat st;
  char magic[5];
  int fd = -1;
  w_begin(j);
  if (cancelled(j)) {
    w_fail(j, MG_PLUGIN_RETRY, "the printer plugin is stopping");
    return;
  }
  if (j->path) {
    /* O_NONBLOCK: a FIFO must not hang the worker; it is refused below */
    fd = open(j->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
      w_fail(j, MG_PLUGIN_FATAL, "cannot open the document: %s",
             strerror(errno));
      goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      w_fail(j, MG_PLUGIN_FATAL, "the document is not a regular file");
      goto out;
    }
    if (st.st_size < 5 || pread(fd, magic, 5, 0) != 5 ||
        memcmp(magic, "%PDF-", 5) != 0) {
      w_fail(j, MG_PLUGIN_FATAL,
             "the document is not a PDF (this plugin sends application/pdf)");
      goto out;
    }
  }
  if (w_connect(j) || w_printer(j) || j->kind == JOB_PROBE)
    goto out;
  if (cancelled(j)) { /* stop() came while the printer was checked */
    w_fail(j, MG_PLUGIN_RETRY, "the printer plugin is stopping");
    goto out;
  }
  w_print(j, fd, j->path ? (size_t)st.st_size : j->doc_len);
out:
  if (fd >= 0)
    close(fd);
}

static void poll_work(void *ud) {
  static const char *const want[] = {"job-state", "job-state-reasons"};
  struct job *j = ud;
  ipp_t *req, *resp;
  ipp_attribute_t *a;
  w_begin(j);
  if (w_connect(j))
    return;
  if ((req = w_new(j, IPP_OP_GET_JOB_ATTRIBUTES))) {
    ippAddInteger(req, IPP_TAG_OPERATION, IPP_TAG_INTEGER, "job-id", j->job_id);
    ippAddStrings(req, IPP_TAG_OPERATION, IPP_TAG_KEYWORD,
                  "requested-attributes", 2, NULL, want);
  }
  if (!(resp = w_do(j, req, "Get-Job-Attributes"))) {
    if (cupsLastError() == IPP_STATUS_ERROR_NOT_FOUND && !j->timed_out) {
      j->gone = 1; /* purged from its list: it ended */
      j->status = MG_PLUGIN_OK;
    }
    return;
  }
  if ((a = ippFindAttribute(resp, "job-state", IPP_TAG_ENUM)))
    j->jstate = ippGetInteger(a, 0);
  keywords(resp, "job-state-reasons", j->jreasons, sizeof(j->jreasons));
  ippDelete(resp);
}

static void cancel_work(void *ud) {
  struct job *j = ud;
  ipp_t *req;
  w_begin(j);
  if (w_connect(j))
    return;
  if ((req = w_new(j, IPP_OP_CANCEL_JOB)))
    ippAddInteger(req, IPP_TAG_OPERATION, IPP_TAG_INTEGER, "job-id", j->job_id);
  ippDelete(w_do(j, req, "Cancel-Job"));
}

/* ---------------------------------------------------------------------- */
/* Loop side                                                               */

static const char *state_name(int jstate) {
  switch (jstate) {
  case IPP_JSTATE_PROCESSING:
  case IPP_JSTATE_STOPPED: return "processing";
  case IPP_JSTATE_CANCELED: return "canceled";
  case IPP_JSTATE_ABORTED: return "aborted";
  case IPP_JSTATE_COMPLETED: return "completed";
  default: return "pending";
  }
}

static int terminal(int jstate) { return jstate >= IPP_JSTATE_CANCELED; }

static const char *pstate_name(int pstate) {
  switch (pstate) {
  case -1: return "unreachable";
  case IPP_PSTATE_IDLE: return "idle";
  case IPP_PSTATE_PROCESSING: return "processing";
  case IPP_PSTATE_STOPPED: return "stopped";
  default: return "unknown";
  }
}

static void job_event(struct job *j, const char *state) {
  struct cp *cp = j->cp;
  struct mgp_sb b = {0};
  if (j->shown && strcmp(j->shown, state) == 0)
    return;
  j->shown = state;
  mgp_sb_printf(&b, "{\"job\":%d,\"state\":\"%s\",\"printer\":", j->job_id, state);
  mgp_sb_jstr(&b, cp->h->instance_id(cp->inst));
  if (j->jreasons[0]) {
    mgp_sb_puts(&b, ",\"reasons\":");
    mgp_sb_jstr(&b, j->jreasons);
  }
  mgp_sb_puts(&b, "}");
  if (!b.oom)
    cp->h->emit(cp->inst, "print.job", b.p);
  free(b.p);
}

/* Unlink from cp->list and free. */
static void job_free(struct job *j) {
  for (struct job **pp = &j->cp->list; *pp; pp = &(*pp)->next) {
    if (*pp == j) {
      *pp = j->next;
      j->cp->active--;
      break;
    }
  }
  w_close(j);
  free(j->path);
  free(j->doc);
  free(j->title);
  free(j);
}

/* The one answer of a request: {"job", "state"} and "error" on failure. */
static void job_answer(struct job *j, int status, const char *why) {
  struct cp *cp = j->cp;
  struct mgp_sb b = {0};
  if (j->answered || j->kind == JOB_PROBE)
    return;
  j->answered = 1;
  if (status != MG_PLUGIN_OK)
    cp->failed++;
  mgp_sb_puts(&b, "{");
  if (j->job_id > 0)
    mgp_sb_printf(&b, "\"job\":%d,\"state\":\"%s\"%s", j->job_id,
              state_name(j->jstate), why ? "," : "");
  if (why) {
    mgp_sb_puts(&b, "\"error\":");
    mgp_sb_jstr(&b, why);
  }
  mgp_sb_puts(&b, "}");
  cp->h->complete(cp->inst, j->req_id, b.oom ? MG_PLUGIN_RETRY : status,
                  b.oom ? NULL : b.p);
  free(b.p);
}

/* Answer, log and free: the end of every job. */
static void job_finish(struct job *j, int status, const char *why) {
  struct cp *cp = j->cp;
  if (status == MG_PLUGIN_OK)
    cp->h->log(cp->inst, MG_PLUGIN_LOG_INFO, "job %d completed", j->job_id);
  else if (j->job_id > 0)
    cp->h->log(cp->inst, MG_PLUGIN_LOG_WARNING, "job %d failed: %s", j->job_id,
               why);
  else
    cp->h->log(cp->inst, MG_PLUGIN_LOG_WARNING, "a job was not sent: %s", why);
  job_answer(j, status, why);
  job_free(j);
}

/* The printer's state as this job's check saw it, for describe. */
static void printer_seen(struct job *j) {
  struct cp *cp = j->cp;
  if (!j->pstate)
    return;
  cp->pstate = j->pstate;
  snprintf(cp->preasons, sizeof(cp->preasons), "%s", j->preasons);
  cp->checked = time(NULL);
}

static void poll_done(void *ud, int status);
static void cancel_done(void *ud, int status);

static void tick(void *ud) {
  struct job *j = ud;
  struct cp *cp = j->cp;
  cp->h->timer_stop(j->timer);
  j->timer = NULL;
  if (cp->h->queue_work(cp->inst, poll_work, poll_done, j) != 0)
    job_finish(j, MG_PLUGIN_RETRY,
               "cannot follow the job (the daemon is stopping); it may still "
               "print");
  /* j may be gone already: the work may have run inline */
}

/* After a state is known: finish, wait for the next poll, or give up. */
static void job_next(struct job *j) {
  struct cp *cp = j->cp;
  char why[sizeof(j->why)];
  if (terminal(j->jstate)) {
    if (j->jstate == IPP_JSTATE_COMPLETED) {
      job_finish(j, MG_PLUGIN_OK, NULL);
    } else {
      snprintf(why, sizeof(why), "the printer %s job %d (%s)",
               j->jstate == IPP_JSTATE_ABORTED ? "aborted" : "canceled",
               j->job_id, j->jreasons[0] ? j->jreasons : "no reason given");
      job_finish(j, MG_PLUGIN_FATAL, why);
    }
    return;
  }
  if (mono_ms() - j->started >= cp->job_timeout_ms) {
    /* Cancel it, so that printing again gives one copy, not two. */
    snprintf(j->final, sizeof(j->final),
             "job %d did not finish within job_timeout (%lld s) and was "
             "cancelled; print again when the printer is ready%s%.320s",
             j->job_id, (long long)(cp->job_timeout_ms / 1000),
             j->status != MG_PLUGIN_OK ? "; last check: " : "",
             j->status != MG_PLUGIN_OK ? j->why : "");
    if (cp->h->queue_work(cp->inst, cancel_work, cancel_done, j) != 0)
      job_finish(j, MG_PLUGIN_RETRY, j->final);
    return;
  }
  if (cp->h->timer_start(cp->inst, (uint64_t)cp->poll_ms, 0, tick, j,
                         &j->timer) != 0) {
    j->timer = NULL;
    job_finish(j, MG_PLUGIN_RETRY,
               "cannot follow the job (the daemon is stopping); it may still "
               "print");
  }
}

static void submit_done(void *ud, int status) {
  struct job *j = ud;
  struct cp *cp = j->cp;
  if (status != 0 && j->status == MG_PLUGIN_OK)
    w_fail(j, MG_PLUGIN_RETRY, "the daemon is stopping");
  printer_seen(j);
  if (j->kind == JOB_PROBE) {
    if (j->status == MG_PLUGIN_OK)
      cp->h->log(cp->inst, MG_PLUGIN_LOG_NOTICE, "printer %s:%d is %s%s%s",
                 cp->host, cp->port, pstate_name(cp->pstate),
                 cp->preasons[0] ? ": " : "", cp->preasons);
    else
      cp->h->log(cp->inst, MG_PLUGIN_LOG_WARNING, "%s", j->why);
    job_free(j);
    return;
  }
  if (j->answered) { /* stop() answered already */
    job_free(j);
    return;
  }
  if (j->status != MG_PLUGIN_OK) {
    job_finish(j, j->status, j->why);
    return;
  }
  cp->sent++;
  cp->h->log(cp->inst, MG_PLUGIN_LOG_INFO, "job %d sent (%s)", j->job_id,
             j->kind == JOB_TEST_PAGE ? "test page" : "document");
  job_event(j, state_name(j->jstate));
  job_next(j);
}

static void poll_done(void *ud, int status) {
  struct job *j = ud;
  struct cp *cp = j->cp;
  if (j->answered) {
    job_free(j);
    return;
  }
  if (status != 0) {
    job_finish(j, MG_PLUGIN_RETRY,
               "the daemon is stopping; the job may still print");
    return;
  }
  if (j->gone) {
    cp->h->log(cp->inst, MG_PLUGIN_LOG_NOTICE,
               "job %d left the printer's list; taken as completed",
               j->job_id);
    j->jstate = IPP_JSTATE_COMPLETED;
  }
  if (j->status == MG_PLUGIN_OK)
    job_event(j, state_name(j->jstate));
  job_next(j); /* a failed check is retried until job_timeout */
}

static void cancel_done(void *ud, int status) {
  struct job *j = ud;
  if (j->answered) {
    job_free(j);
    return;
  }
  if (status == 0 && j->status == MG_PLUGIN_OK) {
    j->jstate = IPP_JSTATE_CANCELED;
    job_event(j, "canceled");
  }
  job_finish(j, MG_PLUGIN_RETRY, j->final);
}

/* Answer a bad request with a reason; complete() may come before PENDING
 * is returned. */
static int reject(struct cp *cp, uint64_t req_id, const char *why) {
  struct mgp_sb r = {0};
  mgp_sb_puts(&r, "{\"error\":");
  mgp_sb_jstr(&r, why);
  mgp_sb_puts(&r, "}");
  cp->h->complete(cp->inst, req_id, MG_PLUGIN_FATAL, r.oom ? NULL : r.p);
  free(r.p);
  return MG_PLUGIN_PENDING;
}

/* Cut s to at most max bytes, not inside a UTF-8 sequence. */
static void cut_utf8(char *s, size_t max) {
  size_t n = strlen(s);
  if (n <= max)
    return;
  while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
    max--;
  s[max] = '\0';
}

static struct job *job_new(struct cp *cp, int kind, uint64_t req_id) {
  struct job *j = calloc(1, sizeof(*j));
  if (!j)
    return NULL;
  j->cp = cp;
  j->kind = kind;
  j->req_id = req_id;
  j->started = mono_ms();
  return j;
}

/* List j and hand it to a worker; on failure j is freed. */
static int job_queue(struct job *j) {
  struct cp *cp = j->cp;
  j->next = cp->list;
  cp->list = j;
  cp->active++;
  if (cp->h->queue_work(cp->inst, submit_work, submit_done, j) != 0) {
    job_free(j);
    return -1;
  }
  return 0; /* j may be gone already: the work may have run inline */
}

static int cp_command(void *ctx, uint64_t req_id, const char *op,
                      const char *args) {
  struct cp *cp = ctx;
  struct job *j = NULL;
  char *path = NULL, *title = NULL;
  int rc = MG_PLUGIN_PENDING;

  if (strcmp(op, "print") == 0) {
    if (mgp_json_get_str(args, "path", &path) != 0 || path[0] != '/') {
      rc = reject(cp, req_id, "print needs {\"path\": \"/absolute/file.pdf\"}");
      goto out;
    }
    if (mgp_json_get_str(args, "title", &title) < 0) {
      rc = reject(cp, req_id, "print: title must be a string");
      goto out;
    }
    if (!(j = job_new(cp, JOB_PRINT, req_id))) {
      rc = MG_PLUGIN_RETRY;
      goto out;
    }
    if (title)
      cut_utf8(title, JOB_NAME_MAX);
    j->path = path;
    j->title = title;
    path = title = NULL;
  } else if (strcmp(op, "test-page") == 0) {
    char box[256] = "", when[64];
    time_t now = time(NULL);
    struct tm tm;
    if (gethostname(box, sizeof(box) - 1) != 0)
      snprintf(box, sizeof(box), "(unknown)");
    localtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", &tm);
    if (!(j = job_new(cp, JOB_TEST_PAGE, req_id)) ||
        !(j->title = strdup("madoguchi test page")) ||
        test_page_pdf(cp, box, cp->h->instance_id(cp->inst), when, &j->doc,
                      &j->doc_len) != 0) {
      rc = MG_PLUGIN_RETRY;
      goto out;
    }
  } else {
    cp->h->log(cp->inst, MG_PLUGIN_LOG_WARNING,
               "unknown command (this printer knows print and test-page)");
    return MG_PLUGIN_FATAL;
  }
  rc = job_queue(j) == 0 ? MG_PLUGIN_PENDING : MG_PLUGIN_RETRY;
  j = NULL; /* queued (done frees it) or freed */
out:
  if (j) {
    free(j->path);
    free(j->doc);
    free(j->title);
    free(j);
  }
  free(path);
  free(title);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Configuration and lifecycle                                             */

/* Split uri; NULL when fine, else the rule it breaks. */
static const char *parse_uri(const char *uri, char *host, size_t hlen,
                             int *port, char *resource, size_t rlen,
                             http_encryption_t *enc) {
  char scheme[32], user[256];
  if (!uri || httpSeparateURI(HTTP_URI_CODING_ALL, uri, scheme, sizeof(scheme),
                              user, sizeof(user), host, (int)hlen, port,
                              resource, (int)rlen) < HTTP_URI_STATUS_OK)
    return "must be a printer's IPP address such as ipp://192.0.2.10/ipp/print";
  if (strcmp(scheme, "ipp") != 0 && strcmp(scheme, "ipps") != 0)
    return "must start with ipp:// or ipps:// (the printer itself, not a "
           "cupsd queue)";
  if (!host[0])
    return "must name the printer's host";
  if (user[0])
    return "must not carry a user name or password";
  *enc = strcmp(scheme, "ipps") == 0 ? HTTP_ENCRYPTION_ALWAYS
                                     : HTTP_ENCRYPTION_IF_REQUESTED;
  return NULL;
}

static const char *check_uri(const void *stored) {
  char host[256], resource[1024];
  int port;
  http_encryption_t enc;
  return parse_uri(*(char *const *)stored, host, sizeof(host), &port, resource,
                   sizeof(resource), &enc);
}

static const char *check_media(const void *stored) {
  const char *s = *(char *const *)stored;
  for (; s && *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
          strchr("_.-", *s)))
      return "must be a PWG media name such as iso_a4_210x297mm (a-z 0-9 _ . "
             "-), or empty for the printer's default";
  return NULL;
}

static int cp_init(void *ctx, const struct mg_host *host,
                   struct mg_instance *inst) {
  struct cp *cp = ctx;
  const char *bad;
  /* Everything used below exists since ABI 1.0. */
  if (host->abi_major != MG_PLUGIN_ABI_MAJOR ||
      host->size < offsetof(struct mg_host, instance_id) + sizeof(void *))
    return MG_PLUGIN_FATAL;
  cp->h = host;
  cp->inst = inst;
  if ((bad = parse_uri(cp->uri, cp->host, sizeof(cp->host), &cp->port,
                       cp->resource, sizeof(cp->resource), &cp->enc))) {
    host->log(inst, MG_PLUGIN_LOG_ERR, "uri %s", bad);
    return MG_PLUGIN_FATAL;
  }
  if (cp->poll_ms >= cp->job_timeout_ms) {
    host->log(inst, MG_PLUGIN_LOG_ERR, "poll must be shorter than job_timeout");
    return MG_PLUGIN_FATAL;
  }
  httpInitialize(); /* once, here on the loop: TLS set-up, SIGPIPE ignored */
  return MG_PLUGIN_OK;
}

/* A printer that is off in the morning is no reason to fail: start only
 * checks it in the background and logs what it found. */
static int cp_start(void *ctx) {
  struct cp *cp = ctx;
  struct job *j = job_new(cp, JOB_PROBE, 0);
  if (!j || job_queue(j) != 0) /* job_queue frees j when it fails */
    cp->h->log(cp->inst, MG_PLUGIN_LOG_WARNING, "cannot check the printer");
  return MG_PLUGIN_OK;
}

/* Jobs waiting for their next poll end here; jobs on a worker are told to
 * give up their I/O and end in their done(). */
static void cp_stop(void *ctx) {
  struct cp *cp = ctx;
  struct job *j = cp->list, *next;
  for (; j; j = next) {
    next = j->next;
    __atomic_store_n(&j->cancel, 1, __ATOMIC_RELEASE);
    if (j->timer) {
      cp->h->timer_stop(j->timer);
      j->timer = NULL;
      job_answer(j, MG_PLUGIN_RETRY,
                 "the printer plugin stopped; the job was sent and may still "
                 "print");
      job_free(j);
    } else {
      job_answer(j, MG_PLUGIN_RETRY, "the printer plugin stopped");
      j->answered = 1;
    }
  }
}

static void cp_fini(void *ctx) {
  struct cp *cp = ctx;
  while (cp->list) /* none: the host runs fini after every done() */
    job_free(cp->list);
}

static int cp_describe(void *ctx, char *buf, size_t len) {
  struct cp *cp = ctx;
  struct mgp_sb b = {0};
  char when[32] = "";
  struct tm tm;
  mgp_sb_puts(&b, "{\"uri\":");
  mgp_sb_jstr(&b, cp->uri);
  mgp_sb_printf(&b, ",\"state\":\"%s\",\"reasons\":", pstate_name(cp->pstate));
  mgp_sb_jstr(&b, cp->preasons);
  if (cp->checked && gmtime_r(&cp->checked, &tm))
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
  mgp_sb_puts(&b, ",\"checked\":");
  if (when[0])
    mgp_sb_jstr(&b, when);
  else
    mgp_sb_puts(&b, "null");
  mgp_sb_printf(&b, ",\"jobs_sent\":%llu,\"jobs_failed\":%llu,\"active\":%zu}",
            (unsigned long long)cp->sent, (unsigned long long)cp->failed,
            cp->active);
  return mgp_sb_take(&b, buf, len);
}

static const struct mg_config_item config[] = {
    {MG_CFG_STR, "uri", NULL, offsetof(struct cp, uri), MG_CFG_REQUIRED, 0, 0,
     NULL, check_uri,
     "The printer's IPP address, ipp://HOST[:PORT]/PATH or ipps://… (e.g. "
     "ipp://192.0.2.10/ipp/print); no cupsd is involved."},
    {MG_CFG_DURATION, "timeout", "10s", offsetof(struct cp, timeout_ms), 0,
     1000, 600000, NULL, NULL,
     "How long one request may wait for the printer (connect, send, status) "
     "before the job is given up as RETRY."},
    {MG_CFG_DURATION, "job_timeout", "90s", offsetof(struct cp, job_timeout_ms),
     0, 2000, 3600000, NULL, NULL,
     "How long a job may take until the printer reports it completed; then it "
     "is cancelled and answered RETRY (madoctl waits 120 s at most)."},
    {MG_CFG_DURATION, "poll", "1s", offsetof(struct cp, poll_ms), 0, 100,
     60000, NULL, NULL, "How often the state of a job is asked while it prints."},
    {MG_CFG_INT, "copies", "1", offsetof(struct cp, copies), 0, 1, 99, NULL,
     NULL, "Copies of each document."},
    {MG_CFG_STR, "media", "iso_a4_210x297mm", offsetof(struct cp, media), 0, 0,
     0, NULL, check_media,
     "PWG media name sent with each job; empty: the printer's default."},
    {MG_CFG_ENUM, "sides", "one-sided", offsetof(struct cp, sides), 0, 0, 0,
     SIDES, NULL, "One- or two-sided printing."},
    {0, NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL}};

static const struct mg_plugin plugin = {
    .abi_major = MG_PLUGIN_ABI_MAJOR,
    .abi_minor = MG_PLUGIN_ABI_MINOR,
    .size = sizeof(struct mg_plugin),
    .name = "cups",
    .version = "1.0.0",
    .kind = MG_PLUGIN_KIND_PRINTER,
    .description = "Prints PDF on an IPP printer through libcups (no cupsd)",
    .config = config,
    .ctx_size = sizeof(struct cp),
    .init = cp_init,
    .start = cp_start,
    .command = cp_command,
    .stop = cp_stop,
    .fini = cp_fini,
    .describe = cp_describe,
};

MG_PLUGIN_EXPORT const struct mg_plugin *mg_plugin_entry_v1(void);
MG_PLUGIN_EXPORT const struct mg_plugin *mg_plugin_entry_v1(void) {
  return &plugin;
}
