/*
 * form_api.c — the forms of a case over HTTP (docs/api.md "Forms"):
 *
 *   GET    /api/v1/visits/{id}/forms                  open sheets, counts
 *   POST   /api/v1/visits/{id}/forms                  {"form"}: add (A3)
 *   GET    /api/v1/visits/{id}/forms/{sheet}          fields and values
 *                                                     (?view=visitor)
 *   PUT    /api/v1/visits/{id}/forms/{sheet}/{field}  {"value"|"family",
 *                                                     "given", "row"}
 *   POST   /api/v1/visits/{id}/forms/{sheet}/copy     next sheet (I4)
 *   DELETE /api/v1/visits/{id}/forms/{sheet}          remove (A3)
 *   POST   /api/v1/visits/{id}/forms/{form}/submit    an application
 *   GET    /api/v1/visits/{id}/forms/{sheet}/pdf      one sheet (P1)
 *   GET    /api/v1/visits/{id}/bundle.pdf             every sheet (P1)
 *   GET    /api/v1/visits/{id}/forms/{sheet}/page-N.png
 *          ?width=W[&values=1&font_scale=F]           a page as an image (A2)
 *   POST   /api/v1/visits/{id}/forms/{sheet}/print    {"font_scale"}
 *   POST   /api/v1/visits/{id}/bundle/print           {"font_scale"}
 *   PUT    /api/v1/visits/{id}/signature              {"aspect","strokes"}
 *
 * PDFs render on a worker thread (form_pdf.h) and print through the
 * counter's printer plugin; submitted forms' linkage rows go to the
 * exporter plugin (csvexport) one at a time, retried until written.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "visit_api_internal.h"
#include "visit_forms.h"

static int font_scale_of(const char *s, double *out, struct mg_err *e) {
  char *end = NULL;
  *out = 1.0;
  if (!s || !*s)
    return 0;
  *out = strtod(s, &end);
  if (*end || !(*out >= 0.5 && *out <= 2.0))
    return mg_err_set(e, -EINVAL, "font_scale: a number from 0.5 to 2.0");
  return 0;
}

static void reply_forms(struct mg_daemon *d, struct mg_http_txn *t,
                        const struct mg__who *w, const char *id,
                        const char *extra_key, const char *extra) {
  struct mg_visit *v = NULL;
  struct mg_err e = {{0}};
  struct mg_buf b;
  struct mg_jw jw;
  int rc = mg_visit_get(d->visits, &w->a, id, &v, &e);
  if (rc) {
    mg__api_reply_err(t, rc, &e);
    return;
  }
  mg_buf_init(&b);
  mg_jw_init(&jw, &b);
  if (extra_key) {
    mg_jw_obj(&jw);
    mg_jw_kstr(&jw, extra_key, extra);
    mg_jw_key(&jw, "forms");
  }
  rc = mg_visit_forms_json(d->visits, v, &w->a, &jw, &e);
  if (extra_key)
    mg_jw_obj_end(&jw);
  mg_visit_free(v);
  if (rc) {
    mg_buf_free(&b);
    mg__api_reply_err(t, rc, &e);
    return;
  }
  mg__api_reply_buf(t, 200, &b);
}

/* The sheet's open form in the case's pack release into *f: *u is held
 * for the caller (mg_visits_pack_release, also on failure). */
static int sheet_form(struct mg_daemon *d, const struct mg_visit *v,
                      const char *inst, struct mg_pack_use **u,
                      const struct mg_pack_form **f, struct mg_err *e) {
  struct mg_visit_form *fs = NULL;
  size_t n = 0;
  const struct mg_pack *p;
  *f = NULL;
  *u = mg_visits_pack(d->visits, v);
  p = *u ? mg_pack_use_model(*u) : NULL;
  if (!p)
    return mg_err_set(e, -ENODATA, "the pack release of this case is no "
                      "longer on the box");
  if (mg_visit_forms(v, p, &fs, &n))
    return mg_err_set(e, -ENOMEM, "the forms cannot be listed");
  for (size_t i = 0; i < n && !*f; i++)
    if (strcmp(fs[i].id, inst) == 0)
      *f = fs[i].form;
  free(fs);
  if (!*f)
    return mg_err_set(e, -ENOENT, "form: \"%.64s\" is not open in this "
                      "case", inst);
  return 0;
}

/* One sheet with its "layout"; status 422 with the rule when a value was
 * saved but breaks it (nothing typed is lost). */
static void reply_form(struct mg_daemon *d, struct mg_http_txn *t,
                       const struct mg__who *w, const char *id,
                       const char *inst, int staff_view, int status,
                       const char *invalid) {
  struct mg_visit *v = NULL;
  struct mg_pack_use *u = NULL;
  const struct mg_pack_form *f = NULL;
  struct mg_err e = {{0}};
  struct mg_buf b, sb;
  struct mg_jw jw, sw;
  int rc = mg_visit_get(d->visits, &w->a, id, &v, &e);
  if (rc) {
    mg__api_reply_err(t, rc, &e);
    return;
  }
  mg_buf_init(&b);
  mg_buf_init(&sb);
  mg_jw_init(&jw, &b);
  mg_jw_init(&sw, &sb);
  /* the sheet's object, with "layout" added before its closing brace */
  rc = mg_visit_form_json(d->visits, v, &w->a, inst, staff_view, &sw, &e);
  if (!rc)
    rc = sheet_form(d, v, inst, &u, &f, &e);
  if (!rc && (sb.oom || sb.len < 2 || sb.data[sb.len - 1] != '}'))
    rc = mg_err_set(&e, -ENOMEM, "out of memory");
  if (!rc) {
    struct mg_jw lw;
    sb.data[--sb.len] = 0;
    mg_buf_puts(&sb, ",\"layout\":");
    mg_jw_init(&lw, &sb);
    mg_form_layout_json(f, staff_view, &lw);
    mg_buf_putc(&sb, '}');
  }
  mg_visits_pack_release(d->visits, u);
  if (rc) {
    mg_visit_free(v);
    if (sb.data)
      OPENSSL_cleanse(sb.data, sb.len);
    mg_buf_free(&sb);
    mg_buf_free(&b);
    mg__api_reply_err(t, rc, &e);
    return;
  }
  if (invalid) {
    mg_jw_obj(&jw);
    mg_jw_key(&jw, "error");
    mg_jw_obj(&jw);
    mg_jw_kstr(&jw, "code", "invalid_value");
    mg_jw_kstr(&jw, "message", invalid);
    mg_jw_obj_end(&jw);
    mg_jw_kbool(&jw, "saved", 1);
    mg_jw_kraw(&jw, "form", sb.data);
    mg_jw_obj_end(&jw);
  }
  mg_visit_free(v);
  if (invalid) {
    OPENSSL_cleanse(sb.data, sb.len);
    mg_buf_free(&sb);
    mg__api_reply_buf(t, status, &b);
  } else {
    mg_buf_free(&b);
    mg__api_reply_buf(t, status, &sb);
  }
}

/* ---------------------------------------------------------------------- */
/* PDFs                                                                   */

struct pdf_job {
  uv_work_t work;
  struct mg_daemon *d;
  struct mg_http_txn *t;
  struct mg__who w;
  struct mg_visit_bundle b;
  char visit_id[33], number[9], path[4200];
  int print;
  int rc;
  struct mg_err err;
  unsigned char *pdf;
  size_t len;
};

static void pdf_job_free(struct pdf_job *j) {
  if (j->pdf)
    OPENSSL_cleanse(j->pdf, j->len);
  free(j->pdf);
  mg_visit_bundle_free(j->d->visits, &j->b);
  free(j);
}

static void pdf_work(uv_work_t *req) {
  struct pdf_job *j = req->data;
  j->rc = mg_form_render_pdf(&j->b.r, &j->pdf, &j->len, &j->err);
  if (j->rc == 0 && j->print)
    j->rc = mg__api_spool(j->path, j->pdf, j->len, &j->err);
}

static void pdf_done(uv_work_t *req, int status) {
  struct pdf_job *j = req->data;
  mg__api_pdf_done(j->d, j->t, &j->w, "forms", j->visit_id, j->number,
                   j->print, j->path, status || j->rc,
                   status ? "cancelled" : j->err.msg, j->pdf, j->len);
  pdf_job_free(j);
}

static void pdf_start(struct mg_daemon *d, struct mg_http_txn *t,
                      const struct mg__who *w, const char *id,
                      const char *inst, double font_scale, int print) {
  struct mg_err e = {{0}};
  struct mg_visit *v = NULL;
  unsigned char rnd[8];
  struct pdf_job *j = calloc(1, sizeof(*j));
  int rc;
  if (!j) {
    mg_http_reply_error(t, 500, "internal", "out of memory");
    return;
  }
  j->d = d;
  j->t = t;
  mg__who_copy(&j->w, w);
  j->print = print;
  j->work.data = j;
  if ((rc = mg_visit_get(d->visits, &w->a, id, &v, &e)) ||
      (rc = mg_visit_bundle(d->visits, v, &w->a, inst, font_scale, &j->b, &e)))
    goto fail;
  snprintf(j->visit_id, sizeof(j->visit_id), "%s", v->id);
  snprintf(j->number, sizeof(j->number), "%s", v->number);
  RAND_bytes(rnd, sizeof(rnd));
  snprintf(j->path, sizeof(j->path), "%s/spool/forms-%02x%02x%02x%02x%02x%02x.pdf",
           d->cfg->state_dir, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
  if (uv_queue_work(&d->loop, &j->work, pdf_work, pdf_done)) {
    rc = mg_err_set(&e, -EIO, "cannot start rendering");
    goto fail;
  }
  mg_visit_free(v);
  return;
fail:
  mg__api_reply_err(t, rc, &e);
  mg_visit_free(v);
  j->d = d;
  pdf_job_free(j);
}

/* ---------------------------------------------------------------------- */
/* Page images (A2): GET …/forms/{sheet}/page-N.png?width=W[&values=1]     */

/* Template pages (values=0) hold no resident's data and depend only on the
 * pack release, form, page and width: kept here, on the loop thread, the
 * least recently used going first. */
#define PNG_CACHE_N 48
#define PNG_CACHE_BYTES (32u << 20)
static struct png_entry {
  char key[200]; /* the ETag, quotes included */
  unsigned char *png;
  size_t len;
  unsigned long used;
} png_cache[PNG_CACHE_N];
static unsigned long png_tick;

static struct png_entry *png_find(const char *key) {
  for (size_t i = 0; i < PNG_CACHE_N; i++)
    if (png_cache[i].png && strcmp(png_cache[i].key, key) == 0) {
      png_cache[i].used = ++png_tick;
      return &png_cache[i];
    }
  return NULL;
}

/* Takes png. */
static void png_keep(const char *key, unsigned char *png, size_t len) {
  size_t total = len;
  for (size_t i = 0; i < PNG_CACHE_N; i++)
    total += png_cache[i].len;
  for (;;) {
    struct png_entry *old = NULL, *empty = NULL;
    for (size_t i = 0; i < PNG_CACHE_N; i++) {
      if (!png_cache[i].png)
        empty = &png_cache[i];
      else if (!old || png_cache[i].used < old->used)
        old = &png_cache[i];
    }
    if (empty && total <= PNG_CACHE_BYTES) {
      snprintf(empty->key, sizeof(empty->key), "%s", key);
      empty->png = png;
      empty->len = len;
      empty->used = ++png_tick;
      return;
    }
    if (!old) { /* larger than the whole cache */
      free(png);
      return;
    }
    total -= old->len;
    free(old->png);
    memset(old, 0, sizeof(*old));
  }
}

struct png_job {
  uv_work_t work;
  struct mg_daemon *d;
  struct mg_http_txn *t;
  struct mg__who w;
  struct mg_visit_bundle b;   /* values=1 */
  struct mg_pack_use *use;    /* values=0: the release, held */
  struct mg_form_sheet sheet; /* values=0: the form only */
  struct mg_form_render r;
  long page;
  int width, values, rc;
  char etag[200], visit_id[33];
  struct mg_err err;
  unsigned char *png;
  size_t len;
};

static void png_job_free(struct png_job *j) {
  if (j->png && j->values)
    OPENSSL_cleanse(j->png, j->len);
  free(j->png);
  mg_visit_bundle_free(j->d->visits, &j->b);
  mg_visits_pack_release(j->d->visits, j->use);
  free(j);
}

static void png_work(uv_work_t *req) {
  struct png_job *j = req->data;
  j->rc = mg_form_page_png(j->values ? &j->b.r : &j->r, j->page, j->width,
                           j->values, &j->png, &j->len, &j->err);
}

static void png_done(uv_work_t *req, int status) {
  struct png_job *j = req->data;
  if (status || j->rc) {
    mg_http_reply_error(j->t, j->rc == -EINVAL ? 400 : 500,
                        j->rc == -EINVAL ? "bad_request" : "render_failed",
                        status ? "cancelled" : j->err.msg);
  } else if (j->values) {
    mg_http_reply(j->t, 200, "image/png", j->png, j->len);
    mg_visits_audit(j->d->visits, &j->w.a, "forms.preview", j->visit_id, "");
  } else {
    mg_http_set_header(j->t, "etag:", j->etag);
    mg_http_reply(j->t, 200, "image/png", j->png, j->len);
    png_keep(j->etag, j->png, j->len);
    j->png = NULL;
  }
  png_job_free(j);
}

/* "page-N.png" → N (1..999), else 0. */
static long page_of(const char *seg) {
  char *end = NULL;
  if (strncmp(seg, "page-", 5) != 0 || seg[5] < '1' || seg[5] > '9')
    return 0;
  long n = strtol(seg + 5, &end, 10);
  return strcmp(end, ".png") == 0 && n <= 999 ? n : 0;
}

static void png_start(struct mg_daemon *d, struct mg_http_txn *t,
                      const struct mg_http_req *req, const struct mg__who *w,
                      const char *id, const char *inst, long page) {
  struct mg_err e = {{0}};
  struct mg_visit *v = NULL;
  struct png_job *j = NULL;
  const struct mg_pack_form *f = NULL;
  char q[32], inm[256];
  double fs = 1.0;
  long width = 800;
  int rc, values = 0;
  if (mg_http_query(req->query, "width", q, sizeof(q)) > 0) {
    char *end = NULL;
    width = strtol(q, &end, 10);
    if (*end || width < MG_FORM_PNG_MIN_W || width > MG_FORM_PNG_MAX_W) {
      rc = mg_err_set(&e, -EINVAL, "width: pixels from %d to %d",
                      MG_FORM_PNG_MIN_W, MG_FORM_PNG_MAX_W);
      goto fail;
    }
  }
  if (mg_http_query(req->query, "values", q, sizeof(q)) < 0 ||
      (*q && strcmp(q, "0") && strcmp(q, "1"))) {
    rc = mg_err_set(&e, -EINVAL, "values: 0 (the template page) or 1 (the "
                    "page as printed)");
    goto fail;
  }
  values = strcmp(q, "1") == 0;
  if (mg_http_query(req->query, "font_scale", q, sizeof(q)) < 0)
    snprintf(q, sizeof(q), "?");
  if ((rc = font_scale_of(q, &fs, &e)))
    goto fail;
  if (!(j = calloc(1, sizeof(*j)))) {
    rc = mg_err_set(&e, -ENOMEM, "out of memory");
    goto fail;
  }
  j->d = d;
  j->t = t;
  j->page = page;
  j->width = (int)width;
  j->values = values;
  j->work.data = j;
  mg__who_copy(&j->w, w);
  if ((rc = mg_visit_get(d->visits, &w->a, id, &v, &e)))
    goto fail;
  snprintf(j->visit_id, sizeof(j->visit_id), "%s", v->id);
  if (values) {
    if ((rc = mg_visit_bundle(d->visits, v, &w->a, inst, fs, &j->b, &e)))
      goto fail;
    f = j->b.sheets[0].form;
  } else {
    if ((rc = sheet_form(d, v, inst, &j->use, &f, &e)))
      goto fail;
    if (page > f->pages) {
      rc = mg_err_set(&e, -ENOENT, "page: form %s has pages 1 to %ld",
                      f->id, f->pages);
      goto fail;
    }
    snprintf(j->etag, sizeof(j->etag), "\"tpl-%.40s-%s-%ld-%ld\"",
             v->pack_commit, f->id, page, width);
    struct png_entry *hit = png_find(j->etag);
    if (mg_http_header(t, "if-none-match:", inm, sizeof(inm)) > 0 &&
        strcmp(inm, j->etag) == 0) {
      mg_http_set_header(t, "etag:", j->etag);
      mg_http_reply(t, 304, "image/png", NULL, 0);
      goto answered;
    }
    if (hit) {
      mg_http_set_header(t, "etag:", j->etag);
      mg_http_reply(t, 200, "image/png", hit->png, hit->len);
      goto answered;
    }
    j->sheet.form = f;
    j->r.pack = mg_pack_use_model(j->use);
    j->r.pack_dir = mg_pack_use_dir(j->use);
    j->r.sheets = &j->sheet;
    j->r.n_sheets = 1;
    j->r.font_scale = 1.0;
  }
  if (page > f->pages) {
    rc = mg_err_set(&e, -ENOENT, "page: form %s has pages 1 to %ld", f->id,
                    f->pages);
    goto fail;
  }
  if (uv_queue_work(&d->loop, &j->work, png_work, png_done)) {
    rc = mg_err_set(&e, -EIO, "cannot start rendering");
    goto fail;
  }
  mg_visit_free(v);
  return;
fail:
  mg__api_reply_err(t, rc, &e);
answered:
  mg_visit_free(v);
  if (j)
    png_job_free(j);
}

/* ---------------------------------------------------------------------- */
/* Linkage files: one export at a time, retried every 30 s              */

static void export_pump(struct mg_daemon *d);

static void export_retry(uv_timer_t *tm) { export_pump(tm->data); }

static void export_later(struct mg_daemon *d) {
  if (!d->stopping)
    uv_timer_start(&d->export_timer, export_retry, 30000, 0);
}

static void export_done(void *ud, int status, const char *json) {
  struct mg_daemon *d = ud;
  struct mg_json *doc = NULL;
  struct mg_json_error je;
  const char *file = NULL;
  d->export_busy = 0;
  if (status == MG_PLUGIN_OK && json &&
      mg_json_parse(json, strlen(json), NULL, &doc, &je) == 0)
    file = mg_json_get_str(doc, "file");
  if (file && mg_visits_export_done(d->visits, d->export_app, file) == 0) {
    mg_log_info("export", "application %s written to its linkage file",
                d->export_app);
    mg_json_free(doc);
    export_pump(d);
    return;
  }
  mg_log_warn("export", "the linkage file of application %s was not "
                 "written (%s); retrying in 30 s", d->export_app,
                 status == MG_PLUGIN_RETRY ? "exporter busy" : "exporter failed");
  mg_json_free(doc);
  export_later(d);
}

static void export_pump(struct mg_daemon *d) {
  char *args = NULL;
  if (d->export_busy || d->stopping)
    return;
  const char *exporter = mg_plugin_host_device_for(d->plugins, "exporter", "");
  if (!exporter)
    return; /* linkage files stay queued until an exporter is configured */
  int rc = mg_visits_next_export(d->visits, d->export_app, &args);
  if (rc == -ENOENT)
    return;
  if (rc == 0)
    rc = mg_plugin_host_command(d->plugins, exporter, "export", args,
                                export_done, d);
  if (args) {
    OPENSSL_cleanse(args, strlen(args));
    free(args);
  }
  if (rc) {
    mg_log_warn("export", "cannot hand a linkage file to %s (%s); "
                   "retrying in 30 s", exporter, strerror(-rc));
    export_later(d);
    return;
  }
  d->export_busy = 1;
}

void mg__form_api_start(struct mg_daemon *d) {
  uv_timer_init(&d->loop, &d->export_timer);
  d->export_timer.data = d;
  d->export_timer_on = 1;
  export_pump(d); /* what a crash or stop left pending */
}

/* ---------------------------------------------------------------------- */
/* Routing                                                                */

/* PUT .../forms/{sheet}/{field}: {"value": "..."} or, for a split name,
 * {"family", "given"}; "row" for a grouped field; "source" may only be
 * "typed" (the default). */
static int put_field(struct mg_daemon *d, const struct mg__who *w,
                     const char *id, const char *inst, const char *field,
                     const struct mg_json *doc, struct mg_err *e) {
  static const char *const keys[] = {"value", "family", "given", "row",
                                     "source", NULL};
  const char *value, *fam, *giv, *src;
  int64_t row = 0;
  char *joined = NULL;
  int rc;
  if ((rc = mg__api_only_keys(doc, keys, "body", e)) ||
      (rc = mg__api_opt_str(doc, "value", &value, "", e)) ||
      (rc = mg__api_opt_str(doc, "family", &fam, "", e)) ||
      (rc = mg__api_opt_str(doc, "given", &giv, "", e)) ||
      (rc = mg__api_opt_str(doc, "source", &src, "", e)))
    return rc;
  if (mg_json_get(doc, "row") && mg_json_get_int(doc, "row", &row))
    return mg_err_set(e, -EINVAL, "row: an integer");
  if (!*src)
    src = "typed";
  /* "card" is the reader's word (POST …/card, device_api.c): a client
   * cannot claim it */
  if (strcmp(src, "typed"))
    return mg_err_set(e, -EINVAL, "source: only \"typed\"; values read "
                      "from an ID card come through POST …/card");
  int has_v = mg_json_get(doc, "value") != NULL,
      has_split = mg_json_get(doc, "family") || mg_json_get(doc, "given");
  if (has_v == has_split)
    return mg_err_set(e, -EINVAL, "body: either \"value\" or \"family\" and "
                      "\"given\"");
  if (has_split) {
    size_t n = strlen(fam) + strlen(giv) + 4;
    if (!(joined = malloc(n)))
      return mg_err_set(e, -ENOMEM, "out of memory");
    snprintf(joined, n, "%s%s%s", fam, *fam && *giv ? "\xE3\x80\x80" : "", giv);
    value = joined;
  }
  rc = mg_visit_form_set(d->visits, &w->a, id, inst, field, (long)row, value,
                         src, e);
  if (joined) {
    OPENSSL_cleanse(joined, strlen(joined));
    free(joined);
  }
  return rc;
}

int mg__form_api(struct mg_daemon *d, struct mg_http_txn *t,
                 const struct mg_http_req *req, const struct mg__who *w,
                 char seg[4][80], size_t n) {
  const char *m = req->method, *id = seg[0];
  struct mg_err e = {{0}};
  struct mg_json *doc = NULL;
  char q[32], newid[80], app[33];
  double fs = 1.0;
  int get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0,
      put = strcmp(m, "PUT") == 0, del = strcmp(m, "DELETE") == 0;
  int forms = n >= 2 && strcmp(seg[1], "forms") == 0;
  int rc;

  if (mg_http_query(req->query, "font_scale", q, sizeof(q)) < 0)
    snprintf(q, sizeof(q), "?"); /* too long: refused below */
  if (get && n == 2 && forms) {
    reply_forms(d, t, w, id, NULL, NULL);
    mg_visits_audit(d->visits, &w->a, "visit.forms.view", id, "");
  } else if (get && n == 3 && forms) {
    if (mg_http_query(req->query, "view", q, sizeof(q)) < 0 ||
        (*q && strcmp(q, "visitor") && strcmp(q, "staff"))) {
      rc = mg_err_set(&e, -EINVAL, "view: \"visitor\" or \"staff\"");
      goto fail;
    }
    mg_visits_audit(d->visits, &w->a, "visit.form.view", id, seg[2]);
    reply_form(d, t, w, id, seg[2], strcmp(q, "visitor") != 0, 200, NULL);
  } else if (get && n == 4 && forms && page_of(seg[3])) {
    png_start(d, t, req, w, id, seg[2], page_of(seg[3]));
  } else if ((get && n == 4 && forms && strcmp(seg[3], "pdf") == 0) ||
             (get && n == 2 && strcmp(seg[1], "bundle.pdf") == 0)) {
    if ((rc = font_scale_of(q, &fs, &e)))
      goto fail;
    pdf_start(d, t, w, id, n == 4 ? seg[2] : NULL, fs, 0);
  } else if (post && ((n == 4 && forms && strcmp(seg[3], "print") == 0) ||
                      (n == 3 && strcmp(seg[1], "bundle") == 0 &&
                       strcmp(seg[2], "print") == 0))) {
    static const char *const keys[] = {"font_scale", NULL};
    const struct mg_json *x;
    if (req->body_len && !(doc = mg__api_body(t, req)))
      return 0;
    if (doc && (rc = mg__api_only_keys(doc, keys, "body", &e)))
      goto fail;
    if (doc && (x = mg_json_get(doc, "font_scale"))) {
      if (x->type != MG_JSON_NUMBER || !(x->u.num.d >= 0.5 && x->u.num.d <= 2)) {
        rc = mg_err_set(&e, -EINVAL, "font_scale: a number from 0.5 to 2.0");
        goto fail;
      }
      fs = x->u.num.d;
    }
    pdf_start(d, t, w, id, n == 4 ? seg[2] : NULL, fs, 1);
  } else if (post && n == 2 && forms) {
    static const char *const keys[] = {"form", NULL};
    const char *form;
    if (!(doc = mg__api_body(t, req)))
      return 0;
    if ((rc = mg__api_only_keys(doc, keys, "body", &e)) ||
        (rc = mg__api_need(doc, "form", &e)) ||
        (rc = mg__api_opt_str(doc, "form", &form, "", &e)) ||
        (rc = mg_visit_form_add(d->visits, &w->a, id, form, newid, &e)))
      goto fail;
    reply_forms(d, t, w, id, "added", newid);
  } else if (post && n == 4 && forms && strcmp(seg[3], "copy") == 0) {
    if ((rc = mg_visit_form_copy(d->visits, &w->a, id, seg[2], newid, &e)))
      goto fail;
    reply_forms(d, t, w, id, "added", newid);
  } else if (del && n == 3 && forms) {
    if ((rc = mg_visit_form_remove(d->visits, &w->a, id, seg[2], &e)))
      goto fail;
    reply_forms(d, t, w, id, NULL, NULL);
  } else if (post && n == 4 && forms && strcmp(seg[3], "submit") == 0) {
    if ((rc = mg_visit_form_submit(d->visits, &w->a, id, seg[2], app, &e)))
      goto fail;
    export_pump(d);
    reply_forms(d, t, w, id, "application", app);
  } else if (put && n == 4 && forms) {
    if (!(doc = mg__api_body(t, req)))
      return 0;
    rc = put_field(d, w, id, seg[2], seg[3], doc, &e);
    if (rc == -EDOM) {
      /* saved, but it breaks a rule: the form with the message */
      reply_form(d, t, w, id, seg[2], 1, 422, e.msg);
    } else if (rc) {
      goto fail;
    } else {
      reply_form(d, t, w, id, seg[2], 1, 200, NULL);
    }
  } else if (put && n == 2 && strcmp(seg[1], "signature") == 0) {
    if ((rc = mg_visit_signature_set(d->visits, &w->a, id, req->body,
                                     req->body_len, &e)))
      goto fail;
    reply_forms(d, t, w, id, NULL, NULL);
  } else {
    return -ENOENT;
  }
  mg_json_free(doc);
  return 0;
fail:
  if (rc == -EPERM)
    mg_visits_audit(d->visits, &w->a, "visit.refused", id, e.msg);
  mg__api_reply_err(t, rc, &e);
  mg_json_free(doc);
  return 0;
}
