/*
 * visit_apps.c — what leaves a case's forms (visit_forms.h): the input of
 * the PDF renderer for one sheet or the bundle, submitted applications
 * with their sealed payload, and the linkage rows for the exporter.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "form.h"
#include "log.h"
#include "outbox.h"
#include "visit_forms.h"
#include "visit_internal.h"

#define MASK_TEXT "＊＊＊"       /* a masked value in a linkage file (C2) */

/* The signature of a case for the renderer (b->points, ends, sig). */
static int sig_load(struct mg_visits *vs, const char *id,
                    struct mg_visit_bundle *b) {
  sqlite3_stmt *s = mg__visit_stmt(vs, "SELECT body FROM visit_signature "
                                       "WHERE visit_id = ?1");
  unsigned char *plain = NULL;
  size_t plen = 0, np = 0, ns = 0;
  struct mg_json *doc = NULL;
  struct mg_json_error je;
  char aad[64];
  int rc = 0;
  if (!s || sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC) != SQLITE_OK) {
    rc = -EIO;
    goto out;
  }
  if (sqlite3_step(s) != SQLITE_ROW)
    goto out; /* no signature: slots stay empty */
  mg__sig_aad(id, aad);
  if (mg_open(mg__visits_key(vs), aad, sqlite3_column_blob(s, 0),
              (size_t)sqlite3_column_bytes(s, 0), &plain, &plen) ||
      mg_json_parse((const char *)plain, plen, NULL, &doc, &je)) {
    rc = -EIO;
    goto out;
  }
  const struct mg_json *st = mg_json_get(doc, "strokes"),
                       *asp = mg_json_get(doc, "aspect");
  for (size_t i = 0; st && i < st->u.arr.n; i++)
    np += st->u.arr.items[i]->u.arr.n;
  b->points = calloc(np ? np : 1, sizeof(*b->points));
  b->ends = calloc(st && st->u.arr.n ? st->u.arr.n : 1, sizeof(*b->ends));
  if (!b->points || !b->ends) {
    rc = -ENOMEM;
    goto out;
  }
  np = 0;
  for (size_t i = 0; st && i < st->u.arr.n; i++) {
    const struct mg_json *sk = st->u.arr.items[i];
    for (size_t k = 0; k < sk->u.arr.n; k++) {
      const struct mg_json *pt = sk->u.arr.items[k];
      b->points[np].x = (float)pt->u.arr.items[0]->u.num.d;
      b->points[np].y = (float)pt->u.arr.items[1]->u.num.d;
      b->points[np].w = (float)pt->u.arr.items[2]->u.num.d;
      np++;
    }
    b->ends[ns++] = np;
  }
  b->sig.points = b->points;
  b->sig.n_points = np;
  b->sig.stroke_ends = b->ends;
  b->sig.n_strokes = ns;
  b->sig.aspect = asp ? asp->u.num.d : 3.0;
  b->r.signature = &b->sig;
out:
  mg__visit_stmt_done(vs, s);
  if (plain)
    OPENSSL_cleanse(plain, plen);
  free(plain);
  mg_json_free(doc);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Rendering input                                                        */

static const char *keep(struct mg_visit_bundle *b, const char *s) {
  char *c = strdup(s ? s : "");
  void *n = realloc(b->strings, (b->n_strings + 1) * sizeof(*b->strings));
  if (!c || !n) {
    free(c);
    if (n)
      b->strings = n;
    return NULL;
  }
  b->strings = n;
  b->strings[b->n_strings++] = c;
  return c;
}

void mg_visit_bundle_free(struct mg_visits *vs, struct mg_visit_bundle *b) {
  for (size_t i = 0; i < b->n_strings; i++) {
    OPENSSL_cleanse(b->strings[i], strlen(b->strings[i]));
    free(b->strings[i]);
  }
  free(b->strings);
  free(b->sheets);
  free(b->values);
  free(b->points);
  free(b->ends);
  mg_visits_pack_release(vs, b->use);
  memset(b, 0, sizeof(*b));
}

int mg_visit_bundle(struct mg_visits *vs, const struct mg_visit *v,
                    const struct mg_visit_actor *a, const char *instance,
                    double font_scale, struct mg_visit_bundle *b,
                    struct mg_err *err) {
  struct mg_visit_form *fs = NULL;
  size_t n = 0, nv = 0, cap = 0, ns = 0;
  struct mg__fctx c;
  int rc;
  memset(b, 0, sizeof(*b));
  b->use = mg_visits_pack(vs, v);
  const struct mg_pack *p = b->use ? mg_pack_use_model(b->use) : NULL;
  if (!p) {
    rc = mg_err_set(err, -ENODATA, "the pack release of this case is no "
                    "longer on the box");
    goto out;
  }
  if (!(font_scale >= 0.5 && font_scale <= 2.0)) {
    rc = mg_err_set(err, -EINVAL, "font_scale: from 0.5 to 2.0");
    goto out;
  }
  mg__ctx_init(&c, v, p, a);
  if ((rc = mg__forms_list(&c, &fs, &n))) {
    rc = mg_err_set(err, rc, "the forms cannot be listed");
    goto out;
  }
  if (instance && !mg__find_inst(fs, n, instance)) {
    rc = mg_err_set(err, -ENOENT, "form: \"%.64s\" is not open in this case",
                    instance);
    goto out;
  }
  if (!n) {
    rc = mg_err_set(err, -ENOENT, "no form is open in this case");
    goto out;
  }
  if (!(b->sheets = calloc(n, sizeof(*b->sheets)))) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  /* value ranges per sheet are fixed once every value is collected */
  size_t *first = calloc(n + 1, sizeof(*first));
  if (!first) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    if (instance && strcmp(fs[i].id, instance) != 0)
      continue;
    const struct mg_pack_form *f = fs[i].form;
    char stamp[160];
    first[ns] = nv;
    for (size_t k = 0; k < f->n_boxes; k++) {
      const struct mg_pack_box *bx = &f->boxes[k];
      char id[80], half[512];
      const char *dot = strchr(bx->field, '.');
      if (bx->field[0] == '@')
        continue;
      snprintf(id, sizeof(id), "%.*s",
               (int)(dot ? (size_t)(dot - bx->field) : strlen(bx->field)),
               bx->field);
      const struct mg_pack_field *fld = mg__form_field(f, id);
      struct mg__res r;
      if (!fld)
        continue;
      mg__field_value(&c, f, fs[i].sheet, fld, fld->group[0] ? bx->row : 0, &r);
      if (!r.text)
        continue;
      const char *t = r.text;
      if (dot) {
        mg_form_name_half(r.text, strcmp(dot + 1, "given") == 0, half,
                          sizeof(half));
        t = half;
      }
      if (nv == cap) {
        size_t nc = cap ? cap * 2 : 256;
        void *np = realloc(b->values, nc * sizeof(*b->values));
        if (!np) {
          free(first);
          rc = mg_err_set(err, -ENOMEM, "out of memory");
          goto out;
        }
        b->values = np;
        cap = nc;
      }
      b->values[nv].field = bx->field;
      b->values[nv].row = bx->row;
      if (!(b->values[nv].text = keep(b, t))) {
        free(first);
        rc = mg_err_set(err, -ENOMEM, "out of memory");
        goto out;
      }
      nv++;
    }
    snprintf(stamp, sizeof(stamp), "受付番号 %.4s-%.4s　%s %d/%d", v->number,
             v->number + 4, f->id, fs[i].sheet, mg__sheets_of(fs, n, f));
    b->sheets[ns].form = f;
    b->sheets[ns].stamp = keep(b, stamp);
    ns++;
  }
  first[ns] = nv;
  for (size_t i = 0; i < ns; i++) { /* values may have moved while growing */
    b->sheets[i].values = b->values + first[i];
    b->sheets[i].n_values = first[i + 1] - first[i];
  }
  free(first);
  if ((rc = sig_load(vs, v->id, b))) {
    rc = mg_err_set(err, rc, "the signature cannot be read");
    goto out;
  }
  b->r.pack = p;
  b->r.pack_dir = mg_pack_use_dir(b->use);
  b->r.sheets = b->sheets;
  b->r.n_sheets = ns;
  b->r.font_scale = font_scale;
out:
  free(fs);
  if (rc)
    mg_visit_bundle_free(vs, b);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Submission (applications) and linkage rows (X4)                        */

/* The first problem of a sheet, in err; 0 when none. */
static int sheet_problem(const struct mg__fctx *c, const struct mg_visit_form *in,
                         struct mg_err *err) {
  const struct mg_pack_form *f = in->form;
  for (size_t i = 0; i < f->n_fields; i++) {
    const struct mg_pack_field *fld = &f->fields[i];
    long rows = mg__group_rows(f, fld->group);
    for (long r = rows ? 1 : 0; r <= rows; r++) {
      struct mg__res v;
      int used = rows ? (mg__row_used(c, f, in->sheet, fld->group, r) ||
                         (r == 1 && in->sheet == 1 &&
                          !mg__row_used(c, f, 1, fld->group, 1)))
                      : 1;
      mg__field_value(c, f, in->sheet, fld, r, &v);
      if (mg__field_error(c, f, in->sheet, fld, r, &v, used, err))
        return -EINVAL;
    }
  }
  return 0;
}

/* The linkage row of a form over its sheets: header and one row. */
static void export_json(const struct mg__fctx *c, const struct mg_visit_form *fs,
                        size_t n, const struct mg_pack_form *f,
                        const char *name, struct mg_jw *w) {
  int sheets = mg__sheets_of(fs, n, f);
  mg_jw_obj(w);
  mg_jw_kstr(w, "name", name);
  for (int pass = 0; pass < 2; pass++) {
    mg_jw_key(w, pass ? "rows" : "header");
    mg_jw_arr(w);
    if (pass)
      mg_jw_arr(w);
    for (size_t i = 0; i < f->n_fields; i++) {
      const struct mg_pack_field *fld = &f->fields[i];
      long rows = mg__group_rows(f, fld->group);
      int split = fld->type == MG_PACK_NAME_SPLIT;
      if (!fld->csv_export)
        continue;
      for (long g = rows ? 1 : 0; g <= (rows ? rows * sheets : 0); g++) {
        struct mg__res v;
        char col[160], h[512];
        if (pass) {
          int sheet = rows ? (int)((g - 1) / rows) + 1 : 1;
          mg__field_value(c, f, sheet, fld, rows ? (g - 1) % rows + 1 : 0, &v);
        }
        for (int half = 0; half <= split; half++) {
          if (!pass) {
            snprintf(col, sizeof(col), "%s%s%s", fld->id,
                     split ? (half ? ".given" : ".family") : "",
                     rows ? "." : "");
            if (rows)
              snprintf(col + strlen(col), sizeof(col) - strlen(col), "%ld", g);
            mg_jw_str(w, col);
          } else if (v.masked) {
            mg_jw_str(w, MASK_TEXT);
          } else if (split) {
            mg_form_name_half(v.text, half, h, sizeof(h));
            mg_jw_str(w, h);
          } else {
            mg_jw_str(w, v.text ? v.text : "");
          }
        }
      }
    }
    if (pass)
      mg_jw_arr_end(w);
    mg_jw_arr_end(w);
  }
  mg_jw_obj_end(w);
}

/* The application's payload: every value of every sheet, unmasked (the
 * application is the legal record; masking is for who looks at it). */
static void payload_json(const struct mg__fctx *c, const struct mg_visit_form *fs,
                         size_t n, const struct mg_pack_form *f,
                         const char *app_id, const struct mg_visit_actor *a,
                         const char *now, struct mg_jw *w) {
  struct mg__fctx open = *c;
  open.masked = 0;
  mg_jw_obj(w);
  mg_jw_kstr(w, "application", app_id);
  mg_jw_kstr(w, "visit", c->v->id);
  mg_jw_kstr(w, "number", c->v->number);
  mg_jw_kstr(w, "form", f->id);
  mg_jw_kstr(w, "name", f->name);
  mg_jw_kstr(w, "pack_commit", c->v->pack_commit);
  mg_jw_kstr(w, "filing_date", c->v->filing_date);
  mg_jw_kstr(w, "submitted_at", now);
  mg_jw_kstr(w, "submitted_by", a->user);
  mg_jw_kstr(w, "counter", a->counter);
  mg_jw_kint(w, "sheets", mg__sheets_of(fs, n, f));
  mg_jw_key(w, "values");
  mg_jw_arr(w);
  for (size_t s = 0; s < n; s++) {
    if (fs[s].form != f)
      continue;
    for (size_t i = 0; i < f->n_fields; i++) {
      const struct mg_pack_field *fld = &f->fields[i];
      long rows = mg__group_rows(f, fld->group);
      for (long r = rows ? 1 : 0; r <= rows; r++) {
        struct mg__res v;
        mg__field_value(&open, f, fs[s].sheet, fld, r, &v);
        if (!v.text || (rows && fs[s].sheet > 1 && !fld->group[0]))
          continue;
        if (!rows && fs[s].sheet > 1)
          continue; /* shared by the sheets: once */
        mg_jw_obj(w);
        mg_jw_kstr(w, "field", fld->id);
        if (rows)
          mg_jw_kint(w, "row", mg__global_row(f, fld, fs[s].sheet, r));
        mg_jw_kstr(w, "value", v.text);
        mg_jw_kstr(w, "source", v.source ? v.source : "");
        mg_jw_obj_end(w);
      }
    }
  }
  mg_jw_arr_end(w);
  mg_jw_obj_end(w);
}

/* The application's outbox row (issue 8, N3): its plaintext (the same
 * JSON as the sealed payload) goes to the tenant; written inside the
 * submission's transaction so that no application is acknowledged
 * without it. */
struct outbox_put {
  struct mg_visits *vs;
  const char *app_id;
  const struct mg_buf *json;
};

static int outbox_put(void *ud) {
  const struct outbox_put *o = ud;
  return mg_outbox_put_application(mg__visits_store(o->vs),
                                   mg__visits_key(o->vs), o->app_id,
                                   o->json->data, o->json->len);
}

int mg_visit_form_submit(struct mg_visits *vs, const struct mg_visit_actor *a,
                         const char *id, const char *form, char app_id[33],
                         struct mg_err *err) {
  struct mg__change ch;
  struct mg_visit_form *fs = NULL;
  size_t n = 0, blen = 0, elen = 0;
  struct mg__fctx c;
  struct mg_buf pb, eb;
  struct mg_jw w;
  unsigned char raw[16], *blob = NULL, *eblob = NULL;
  char now[24], name[160], aad[64], stamp[16];
  int rc = mg__visit_begin(vs, a, id, &ch, err);
  mg_buf_init(&pb);
  mg_buf_init(&eb);
  app_id[0] = 0;
  if (rc || (rc = mg__open_sheets(&ch, a, &c, &fs, &n, err)))
    goto out;
  const struct mg_visit_form *in = mg__find_inst(fs, n, form);
  if (!in || in->sheet != 1) {
    rc = mg_err_set(err, -ENOENT, "form: \"%.64s\" is not open in this case",
                    form);
    goto out;
  }
  const struct mg_pack_form *f = in->form;
  if (mg__app_of(ch.v, f->id)) {
    rc = mg_err_set(err, -EALREADY, "form: \"%s\" was submitted already",
                    f->id);
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    struct mg_err pe = {{0}};
    if (fs[i].form == f && sheet_problem(&c, &fs[i], &pe)) {
      rc = mg_err_set(err, -EINVAL, "%s (%s)", pe.msg, fs[i].id);
      goto out;
    }
  }
  if (RAND_bytes(raw, sizeof(raw)) != 1) {
    rc = mg_err_set(err, -EIO, "no random bytes");
    goto out;
  }
  for (int i = 0; i < 16; i++)
    snprintf(app_id + 2 * i, 3, "%02x", raw[i]);
  time_t t = time(NULL);
  struct tm tm;
  localtime_r(&t, &tm);
  strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
  mg_store_time(t, now);
  /* a consumer sorts by name: form, time, case number, application */
  snprintf(name, sizeof(name), "%s_%s_%s_%.8s", f->id, stamp, ch.v->number,
           app_id);
  mg_jw_init(&w, &pb);
  payload_json(&c, fs, n, f, app_id, a, now, &w);
  if (f->csv_export) {
    mg_jw_init(&w, &eb);
    export_json(&c, fs, n, f, name, &w);
  }
  snprintf(aad, sizeof(aad), "app/%s", app_id);
  if (pb.oom || eb.oom ||
      mg_seal(mg__visits_key(vs), aad, pb.data, pb.len, &blob, &blen)) {
    rc = mg_err_set(err, -EIO, "cannot seal the application");
    goto out;
  }
  snprintf(aad, sizeof(aad), "app/%s/export", app_id);
  if (f->csv_export &&
      mg_seal(mg__visits_key(vs), aad, eb.data, eb.len, &eblob, &elen)) {
    rc = mg_err_set(err, -EIO, "cannot seal the linkage row");
    goto out;
  }
  struct mg__stmt sv[2] = {
      {"INSERT INTO applications (id, visit_id, form, pack_commit, "
       "submitted_by, counter, submitted_at, export_name, payload) VALUES "
       "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
       {app_id, id, f->id, ch.v->pack_commit, a->user, a->counter, now,
        f->csv_export ? name : NULL},
       8, blob, blen},
      {"UPDATE applications SET export = ?2 WHERE id = ?1", {app_id}, 1, eblob,
       elen}};
  struct outbox_put op = {vs, app_id, &pb};
  mg__visit_tx_hook(vs, outbox_put, &op);
  rc = mg__visit_apply(vs, a, id, sv, f->csv_export ? 2 : 1, "visit.submit",
                       f->id, err);
  mg__visit_tx_hook(vs, NULL, NULL);
  /* an application is acknowledged only once it is on disk */
  if (rc == 0 && mg__visits_sync(vs) != 0)
    rc = mg_err_set(err, -EIO, "the application is stored but could not be "
                    "flushed to disk; see the log");
  if (rc == 0) {
    mg_log_info("visit", "case %s: form %s submitted as application %s", id,
                f->id, app_id);
    mg__visits_queued(vs); /* durable: the tenant may have it now */
  }
out:
  if (pb.data)
    OPENSSL_cleanse(pb.data, pb.len);
  if (eb.data)
    OPENSSL_cleanse(eb.data, eb.len);
  mg_buf_free(&pb);
  mg_buf_free(&eb);
  free(blob);
  free(eblob);
  free(fs);
  mg__visit_end(vs, &ch);
  if (rc)
    app_id[0] = 0;
  return rc;
}

int mg_visits_next_export(struct mg_visits *vs, char app_id[33], char **args) {
  sqlite3_stmt *s = mg__visit_stmt(
      vs, "SELECT id, export FROM applications WHERE export IS NOT NULL AND "
          "exported_at IS NULL ORDER BY submitted_at, id LIMIT 1");
  unsigned char *plain = NULL;
  size_t plen = 0;
  char aad[64];
  int rc;
  *args = NULL;
  if (!s) {
    rc = -EIO;
    goto out;
  }
  if ((rc = sqlite3_step(s)) != SQLITE_ROW) {
    rc = rc == SQLITE_DONE ? -ENOENT : -EIO;
    goto out;
  }
  snprintf(app_id, 33, "%s", (const char *)sqlite3_column_text(s, 0));
  snprintf(aad, sizeof(aad), "app/%s/export", app_id);
  rc = mg_open(mg__visits_key(vs), aad, sqlite3_column_blob(s, 1),
               (size_t)sqlite3_column_bytes(s, 1), &plain, &plen)
           ? -EIO
           : 0;
  if (rc == 0) {
    *args = (char *)plain; /* NUL-terminated by mg_open */
    plain = NULL;
  }
out:
  mg__visit_stmt_done(vs, s);
  free(plain);
  return rc;
}

int mg_visits_export_done(struct mg_visits *vs, const char *app_id,
                          const char *file) {
  char now[24];
  sqlite3_stmt *s = mg__visit_stmt(
      vs, "UPDATE applications SET exported_at = ?2, export_name = ?3 "
          "WHERE id = ?1");
  int rc;
  mg_store_time(time(NULL), now);
  rc = s && sqlite3_bind_text(s, 1, app_id, -1, SQLITE_STATIC) == SQLITE_OK &&
               sqlite3_bind_text(s, 2, now, -1, SQLITE_STATIC) == SQLITE_OK &&
               sqlite3_bind_text(s, 3, file, -1, SQLITE_STATIC) == SQLITE_OK &&
               sqlite3_step(s) == SQLITE_DONE
           ? 0
           : -EIO;
  mg__visit_stmt_done(vs, s);
  return rc;
}
