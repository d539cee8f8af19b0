/*
 * visit_api_internal.h — request helpers shared by the cases API
 * (visit_api.c) and the forms API (form_api.c).
 */
#ifndef MG_VISIT_API_INTERNAL_H
#define MG_VISIT_API_INTERNAL_H
#include "auth.h"
#include "daemon.h"
#include "json.h"
#include "visit.h"

/* The session behind a request, as an actor. */
struct mg__who {
  struct mg_auth_session s;
  struct mg_visit_actor a;
};

/* Copy a session for a job that outlives the request: dst's actor points
 * into dst's own session. */
void mg__who_copy(struct mg__who *dst, const struct mg__who *src);
/* A staff session (and the CSRF token when csrf): -1 after answering. */
int mg__who_require(struct mg_daemon *d, struct mg_http_txn *t, int csrf,
                    struct mg__who *w);
/* Answer a visit.h result code with its JSON error. */
void mg__api_reply_err(struct mg_http_txn *t, int rc, const struct mg_err *e);
/* Answer b as JSON (freed and wiped). */
void mg__api_reply_buf(struct mg_http_txn *t, int status, struct mg_buf *b);
/* A JSON object body; answers 400 and returns NULL otherwise. */
struct mg_json *mg__api_body(struct mg_http_txn *t,
                             const struct mg_http_req *req);
/* Unknown keys are refused: a typo must not silently drop a value. */
int mg__api_only_keys(const struct mg_json *o, const char *const *keys,
                      const char *where, struct mg_err *e);
int mg__api_need(const struct mg_json *o, const char *key, struct mg_err *e);
/* A string member, "" when absent; -EINVAL when not a string. */
int mg__api_opt_str(const struct mg_json *o, const char *key,
                    const char **out, const char *where, struct mg_err *e);
int mg__api_opt_bool(const struct mg_json *o, const char *key, int *out,
                     struct mg_err *e);

/* Write a rendered PDF into a private spool file (a worker thread). */
int mg__api_spool(const char *path, const unsigned char *pdf, size_t len,
                  struct mg_err *err);
/* Print a spooled PDF on the printer of the actor's counter and answer t
 * (200 {"printed", "result"}, 409/503 no_printer, 502 print_failed); the
 * spool file is removed after; `action` is audited when printed. */
void mg__api_print(struct mg_daemon *d, struct mg_http_txn *t,
                   const struct mg__who *w, const char *visit_id,
                   const char *path, const char *title, const char *action);

/* The end of a PDF job on the loop (slips and forms): 500 render_failed
 * when it failed, else print it (mg__api_print, audit KIND.print) or
 * answer it as a download (audit KIND.download). */
void mg__api_pdf_done(struct mg_daemon *d, struct mg_http_txn *t,
                      const struct mg__who *w, const char *kind,
                      const char *visit_id, const char *number, int print,
                      const char *path, int failed, const char *why,
                      const unsigned char *pdf, size_t len);

/* form_api.c: /api/v1/visits/{id}/forms..., /signature, /bundle.pdf.
 * Returns 0 when it answered, -ENOENT when the path is not its own. */
/* device_api.c: /api/v1/visits/{id}/card (0 when answered, else
 * -ENOENT: not its path). */
int mg__device_api(struct mg_daemon *d, struct mg_http_txn *t,
                   const struct mg_http_req *req, const struct mg__who *w,
                   char seg[4][80], size_t n);
int mg__form_api(struct mg_daemon *d, struct mg_http_txn *t,
                 const struct mg_http_req *req, const struct mg__who *w,
                 char seg[4][80], size_t n);
#endif
