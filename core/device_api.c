/*
 * device_api.c — the counter's devices through the API and madoctl:
 * ID cards read into a case (I7), the reader's status, and the
 * technician's read test (`madoctl card read`).  docs/api.md "Devices".
 *
 * A read is a command to the reader plugin bound to the session's counter
 * (devices/pcsc): the PIN (or a residence card's number) goes to it in the
 * command's arguments and nowhere else — not to a log, not to the
 * database, and the buffers that held it are wiped.  The plugin never
 * retries a wrong PIN; neither does anything here.  The full 個人番号 only
 * reaches the case (visit_card.c); answers carry its last four digits.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"
#include "visit_api_internal.h"
#include "scan.h"
#include "stroke.h"
#include "visit_card.h"
#include "visit_forms.h"

/* A card error code of the plugin, for the resident and the staff. */
static const struct {
  const char *code;
  int status;
  const char *msg;
} card_errors[] = {
    {"wrong_pin", 422, "暗証番号が違います。"},
    {"blocked", 422, "暗証番号がロックされています。お住まいの市区町村の"
                     "窓口でロックの解除が必要です。"},
    {"removed", 409, "読み取りの途中でカードが離れました。カードを置き直して"
                     "ください。入力済みの内容は変わっていません。"},
    {"no_card", 409, "カードが置かれていません。"},
    {"no_reader", 409, "カードリーダーが接続されていません。"},
    {"unknown_card", 409, "このカードは読み取れません（マイナンバーカード、"
                          "運転免許証、在留カードに対応しています）。"},
    {"busy", 409, "ほかの読み取りが終わるまでお待ちください。"},
    {"bad_request", 400, "暗証番号またはカード番号の形式が違います。"},
};

static void card_error_reply(struct mg_http_txn *t, const struct mg_json *r) {
  const char *code = mg_json_get_str(r, "error");
  int64_t tries = -1;
  int status = 502;
  char msg[400];
  const char *m = "カードを読み取れませんでした。カードを置き直して、もう一度"
                  "お試しください。";
  for (size_t i = 0; code && i < sizeof(card_errors) / sizeof(card_errors[0]);
       i++)
    if (strcmp(card_errors[i].code, code) == 0) {
      status = card_errors[i].status;
      m = card_errors[i].msg;
    }
  if (mg_json_get_int(r, "tries_left", &tries))
    tries = -1;
  if (code && strcmp(code, "wrong_pin") == 0 && tries >= 0)
    snprintf(msg, sizeof(msg), "%s残り%lld回です。", m, (long long)tries);
  else
    snprintf(msg, sizeof(msg), "%s", m);
  struct mg_buf b;
  struct mg_jw w;
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  mg_jw_obj(&w); /* the API's error shape, plus the tries left */
  mg_jw_key(&w, "error");
  mg_jw_obj(&w);
  mg_jw_kstr(&w, "code", code ? code : "card");
  mg_jw_kstr(&w, "message", msg);
  if (tries >= 0)
    mg_jw_kint(&w, "tries_left", tries);
  mg_jw_obj_end(&w);
  mg_jw_obj_end(&w);
  mg__api_reply_buf(t, status, &b);
}

/* The card fields every answer may show: never the full 個人番号. */
static void card_json(struct mg_jw *w, const struct mg_json *r, int images) {
  static const char *const text[] = {"type", "name", "kana", "address",
                                     "birth_date", "sex", "card_kind",
                                     "license_number", "expiry", NULL};
  static const char *const ints[] = {"tries_left", "gaiji", "apdus", "ms",
                                     NULL};
  const char *mn = mg_json_get_str(r, "my_number");
  int64_t v;
  for (size_t i = 0; text[i]; i++) {
    const char *s = mg_json_get_str(r, text[i]);
    if (s)
      mg_jw_kstr(w, text[i], s);
  }
  if (mn && strlen(mn) == 12) {
    mg_jw_kstr(w, "my_number_last4", mn + 8);
    mg_jw_kbool(w, "my_number_valid", mg_json_get_bool(r, "my_number_valid") == 1);
  }
  for (size_t i = 0; ints[i]; i++)
    if (mg_json_get_int(r, ints[i], &v) == 0)
      mg_jw_kint(w, ints[i], v);
  for (size_t i = 0; images && i < 2; i++) {
    const char *k = i ? "photo_jp2" : "face_tiff";
    const char *s = mg_json_get_str(r, k);
    if (s)
      mg_jw_kstr(w, k, s);
  }
}

/* The read's arguments: {"pin"} or {"card_number"} (or {} for a licence
 * with no PIN set).  Checked here for a clear 400; wiped by the caller. */
static int secret_args(const char *pin, const char *card_number,
                       struct mg_buf *b, struct mg_err *e) {
  struct mg_jw w;
  if (pin && *pin) {
    if (strlen(pin) != 4 || strspn(pin, "0123456789") != 4)
      return mg_err_set(e, -EINVAL, "pin: 4 digits");
  }
  if (card_number && *card_number) {
    if (strlen(card_number) != 12 ||
        strspn(card_number, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != 12)
      return mg_err_set(e, -EINVAL, "card_number: the 12 letters and digits "
                        "printed on the residence card");
  }
  mg_jw_init(&w, b);
  mg_jw_obj(&w);
  if (pin && *pin)
    mg_jw_kstr(&w, "pin", pin);
  if (card_number && *card_number)
    mg_jw_kstr(&w, "card_number", card_number);
  mg_jw_obj_end(&w);
  return b->oom ? mg_err_set(e, -ENOMEM, "out of memory") : 0;
}

static void wipe_buf(struct mg_buf *b) {
  if (b->data)
    OPENSSL_cleanse(b->data, b->len);
  mg_buf_free(b);
}

/* ---------------------------------------------------------------------- */
/* POST /api/v1/visits/{id}/card                                          */

struct card_req {
  struct mg_daemon *d;
  struct mg_http_txn *t;
  struct mg__who w;
  char visit_id[33];
  long person;
};

static void card_done(void *ud, int status, const char *json) {
  struct card_req *q = ud;
  struct mg_json *r = NULL;
  struct mg_err e = {{0}};
  struct mg_buf b;
  struct mg_jw w;
  long row = 0;
  int rc;
  mg_buf_init(&b);
  if (json)
    mg_json_parse(json, strlen(json), NULL, &r, NULL);
  if (status != MG_PLUGIN_OK || !r) {
    const char *code = mg_json_get_str(r, "error");
    mg_visits_audit(q->d->visits, &q->w.a, "visit.card.failed", q->visit_id,
                    code ? code : "card");
    card_error_reply(q->t, r);
    goto out;
  }
  const char *mn = mg_json_get_str(r, "my_number");
  struct mg_visit_card c = {
      .type = mg_json_get_str(r, "type"),
      .name = mg_json_get_str(r, "name"),
      .kana = mg_json_get_str(r, "kana"),
      .address = mg_json_get_str(r, "address"),
      .birth_date = mg_json_get_str(r, "birth_date"),
      .sex = mg_json_get_str(r, "sex"),
      /* a number failing its check digit is shown, not kept (I6) */
      .my_number = mg_json_get_bool(r, "my_number_valid") == 1 ? mn : NULL,
  };
  rc = mg_visit_card_fill(q->d->visits, &q->w.a, q->visit_id, q->person, &c,
                          &row, &e);
  if (rc) {
    mg__api_reply_err(q->t, rc, &e);
    goto out;
  }
  mg_jw_init(&w, &b);
  mg_jw_obj(&w);
  mg_jw_kint(&w, "person", row);
  mg_jw_key(&w, "card");
  mg_jw_obj(&w);
  card_json(&w, r, 1);
  mg_jw_obj_end(&w);
  mg_jw_obj_end(&w);
  mg__api_reply_buf(q->t, 200, &b);
out:
  if (r)
    mg_json_free(r);
  if (json) /* the host's copy of the result, freed after this */
    OPENSSL_cleanse((void *)json, strlen(json));
  OPENSSL_cleanse(q, sizeof(*q));
  free(q);
}

static void card_read_h(struct mg_daemon *d, struct mg_http_txn *t,
                        const struct mg_http_req *req, const struct mg__who *w,
                        const char *id) {
  static const char *const keys[] = {"person", "pin", "card_number", NULL};
  struct mg_err e = {{0}};
  struct mg_json *doc = NULL;
  struct mg_buf args;
  struct card_req *q = NULL;
  const char *pin, *cn;
  int64_t person = 0;
  int rc;
  mg_buf_init(&args);
  if (!(doc = mg__api_body(t, req)))
    return;
  if ((rc = mg__api_only_keys(doc, keys, "body", &e)) ||
      (rc = mg__api_opt_str(doc, "pin", &pin, "", &e)) ||
      (rc = mg__api_opt_str(doc, "card_number", &cn, "", &e)))
    goto fail;
  if (mg_json_get(doc, "person") &&
      (mg_json_get_int(doc, "person", &person) || person < 0)) {
    rc = mg_err_set(&e, -EINVAL, "person: the row of the person to fill "
                    "(1 = the applicant), or 0 for a new person");
    goto fail;
  }
  if ((rc = secret_args(pin, cn, &args, &e)))
    goto fail;
  const char *reader =
      mg_plugin_host_device_for(d->plugins, "reader", w->a.counter);
  if (!reader) {
    mg_http_reply_error(t, 409, "no_reader",
                        "この窓口にはカードリーダーが設定されていません。");
    goto out;
  }
  if (!(q = calloc(1, sizeof(*q)))) {
    rc = mg_err_set(&e, -ENOMEM, "out of memory");
    goto fail;
  }
  q->d = d;
  q->t = t;
  mg__who_copy(&q->w, w);
  q->person = (long)person;
  snprintf(q->visit_id, sizeof(q->visit_id), "%s", id);
  rc = mg_plugin_host_command(d->plugins, reader, "read", args.data, card_done,
                              q);
  if (rc)
    mg_http_reply_error(t, 503, "no_reader",
                        "カードリーダーが動いていません（madoctl devices）。");
  else
    q = NULL; /* card_done has it */
  goto out;
fail:
  mg__api_reply_err(t, rc, &e);
out:
  free(q);
  wipe_buf(&args);
  mg_json_free(doc);
}

/* ---------------------------------------------------------------------- */
/* POST /api/v1/visits/{id}/signature/strokes and .../signature/pad (S1)   */

/* Raw strokes through the stroke engine, on a worker (its PNG takes the
 * render lock, which a long render may hold). */
struct sig_job {
  uv_work_t req;
  struct mg_daemon *d;
  struct mg_http_txn *t;
  struct mg__who w;
  char visit_id[33];
  char pad[80];        /* the pad to clear once stored, "" for a browser */
  char *raw;           /* owned: the capture */
  size_t raw_len;
  struct mg_buf json;  /* the signature as stored */
  unsigned char *png;
  size_t png_len, strokes, points;
  int rc;
  struct mg_err err;
};

static void sig_job_free(struct sig_job *j) {
  if (j->raw)
    OPENSSL_cleanse(j->raw, j->raw_len);
  free(j->raw);
  wipe_buf(&j->json);
  free(j->png);
  OPENSSL_cleanse(&j->w, sizeof(j->w));
  free(j);
}

static void sig_work(uv_work_t *req) {
  struct sig_job *j = req->data;
  struct mg_form_signature sig;
  struct mg_stroke *s = mg_stroke_new(NULL);
  if (!s) {
    j->rc = mg_err_set(&j->err, -ENOMEM, "out of memory");
    return;
  }
  if ((j->rc = mg_stroke_feed_json(s, j->raw, j->raw_len, &j->err)))
    goto out;
  if ((j->rc = mg_stroke_result(s, &sig))) {
    mg_err_set(&j->err, j->rc, j->rc == -ENODATA ? "nothing was drawn"
                                 : j->rc == -E2BIG
                                     ? "at most 256 strokes and 20,000 points"
                                     : "out of memory");
    goto out;
  }
  j->strokes = sig.n_strokes;
  j->points = sig.n_points;
  if ((j->rc = mg_stroke_json(&sig, &j->json)) ||
      (j->rc = mg_stroke_png(&sig, 160, &j->png, &j->png_len)))
    mg_err_set(&j->err, j->rc, "the signature cannot be drawn");
out:
  mg_stroke_free(s);
}

static void ignore_result(void *ud, int status, const char *json) {
  (void)ud, (void)status, (void)json;
}

static void sig_done(uv_work_t *req, int status) {
  struct sig_job *j = req->data;
  struct mg_err e = {{0}};
  struct mg_buf b;
  int rc = status ? mg_err_set(&e, -ECANCELED, "cancelled") : j->rc;
  mg_buf_init(&b);
  if (rc) {
    if (!status)
      e = j->err;
    if (rc == -ENODATA) /* nothing drawn: a request to fix, not a fault */
      rc = -EINVAL;
    mg__api_reply_err(j->t, rc, &e);
    goto out;
  }
  if ((rc = mg_visit_signature_set(j->d->visits, &j->w.a, j->visit_id,
                                   j->json.data, j->json.len, &e))) {
    mg__api_reply_err(j->t, rc, &e);
    goto out;
  }
  if (j->pad[0]) /* the pad starts over for the next visitor */
    mg_plugin_host_command(j->d->plugins, j->pad, "clear", NULL, ignore_result,
                           NULL);
  size_t n64 = 4 * ((j->png_len + 2) / 3) + 1;
  char *b64 = malloc(n64);
  if (!b64) {
    mg_http_reply_error(j->t, 500, "internal", "out of memory");
    goto out;
  }
  EVP_EncodeBlock((unsigned char *)b64, j->png, (int)j->png_len);
  mg_buf_printf(&b, "{\"signature\":true,\"strokes\":%zu,\"points\":%zu,"
                    "\"png\":\"%s\"}",
                j->strokes, j->points, b64);
  free(b64);
  mg__api_reply_buf(j->t, 200, &b);
out:
  sig_job_free(j);
}

/* Takes raw (malloc'd) whatever happens. */
static void sig_start(struct mg_daemon *d, struct mg_http_txn *t,
                      const struct mg__who *w, const char *id,
                      const char *pad, char *raw, size_t len) {
  struct sig_job *j = calloc(1, sizeof(*j));
  if (!j) {
    if (raw)
      OPENSSL_cleanse(raw, len);
    free(raw);
    mg_http_reply_error(t, 500, "internal", "out of memory");
    return;
  }
  j->d = d;
  j->t = t;
  mg__who_copy(&j->w, w);
  j->raw = raw;
  j->raw_len = len;
  mg_buf_init(&j->json);
  snprintf(j->visit_id, sizeof(j->visit_id), "%s", id);
  snprintf(j->pad, sizeof(j->pad), "%s", pad ? pad : "");
  j->req.data = j;
  if (uv_queue_work(&d->loop, &j->req, sig_work, sig_done)) {
    mg_http_reply_error(t, 500, "internal", "cannot start");
    sig_job_free(j);
  }
}

struct pad_req {
  struct mg_daemon *d;
  struct mg_http_txn *t;
  struct mg__who w;
  char visit_id[33], pad[80];
};

static void pad_taken(void *ud, int status, const char *json) {
  struct pad_req *p = ud;
  char *raw = status == MG_PLUGIN_OK && json ? strdup(json) : NULL;
  if (status != MG_PLUGIN_OK)
    mg_http_reply_error(p->t, 502, "pad_failed",
                        "署名パッドから読み取れませんでした。");
  else if (!raw)
    mg_http_reply_error(p->t, 500, "internal", "out of memory");
  else
    sig_start(p->d, p->t, &p->w, p->visit_id, p->pad, raw, strlen(raw));
  OPENSSL_cleanse(&p->w, sizeof(p->w));
  free(p);
}

static void sig_pad_h(struct mg_daemon *d, struct mg_http_txn *t,
                      const struct mg__who *w, const char *id) {
  const char *pad = mg_plugin_host_device_for(d->plugins, "pad", w->a.counter);
  struct pad_req *p = pad ? calloc(1, sizeof(*p)) : NULL;
  if (!pad) {
    mg_http_reply_error(t, 409, "no_pad",
                        "この窓口には署名パッドが設定されていません。");
    return;
  }
  if (!p) {
    mg_http_reply_error(t, 500, "internal", "out of memory");
    return;
  }
  p->d = d;
  p->t = t;
  mg__who_copy(&p->w, w);
  snprintf(p->visit_id, sizeof(p->visit_id), "%s", id);
  snprintf(p->pad, sizeof(p->pad), "%s", pad);
  if (mg_plugin_host_command(d->plugins, pad, "take", NULL, pad_taken, p)) {
    mg_http_reply_error(t, 503, "no_pad",
                        "署名パッドが動いていません（madoctl devices）。");
    free(p);
  }
}

/* Called from visit_api.c's router for /api/v1/visits/{id}/...: 0 when
 * the path is ours (answered), -ENOENT otherwise. */
int mg__device_api(struct mg_daemon *d, struct mg_http_txn *t,
                   const struct mg_http_req *req, const struct mg__who *w,
                   char seg[4][80], size_t n) {
  int post = strcmp(req->method, "POST") == 0;
  if (post && n == 2 && strcmp(seg[1], "card") == 0) {
    card_read_h(d, t, req, w, seg[0]);
    return 0;
  }
  if (post && n == 3 && strcmp(seg[1], "signature") == 0 &&
      strcmp(seg[2], "strokes") == 0) {
    char *raw = malloc(req->body_len + 1);
    if (!raw) {
      mg_http_reply_error(t, 500, "internal", "out of memory");
      return 0;
    }
    memcpy(raw, req->body, req->body_len);
    raw[req->body_len] = 0;
    sig_start(d, t, w, seg[0], NULL, raw, req->body_len);
    return 0;
  }
  if (post && n == 3 && strcmp(seg[1], "signature") == 0 &&
      strcmp(seg[2], "pad") == 0) {
    sig_pad_h(d, t, w, seg[0]);
    return 0;
  }
  return -ENOENT;
}

/* ---------------------------------------------------------------------- */
/* GET /api/v1/devices/card: the reader of this counter, what lies on it  */

static void status_done(void *ud, int status, const char *json) {
  struct mg_http_txn *t = ud;
  if (status == MG_PLUGIN_OK && json && *json)
    mg_http_reply_json(t, 200, json);
  else
    mg_http_reply_error(t, 503, "no_reader",
                        "カードリーダーの状態を読めませんでした。");
}

static void card_status_h(void *ud, struct mg_http_txn *t,
                          const struct mg_http_req *req) {
  struct mg_daemon *d = ud;
  struct mg__who w;
  (void)req;
  if (mg__who_require(d, t, 0, &w))
    return;
  const char *reader =
      mg_plugin_host_device_for(d->plugins, "reader", w.a.counter);
  if (!reader) {
    mg_http_reply_error(t, 409, "no_reader",
                        "この窓口にはカードリーダーが設定されていません。");
    return;
  }
  if (mg_plugin_host_command(d->plugins, reader, "status", NULL, status_done,
                             t))
    mg_http_reply_error(t, 503, "no_reader",
                        "カードリーダーが動いていません（madoctl devices）。");
}

/* ---------------------------------------------------------------------- */
/* POST /api/v1/scan: a camera image of a slip (G5)                       */

struct scan_job {
  uv_work_t req;
  struct mg_http_txn *t;
  unsigned char *img;
  size_t len;
  struct mg_scan_result res;
  struct mg_err err;
  int rc;
};

static void scan_work(uv_work_t *req) {
  struct scan_job *j = req->data;
  j->rc = mg_scan_image(j->img, j->len, &j->res, &j->err);
}

static void scan_done(uv_work_t *req, int status) {
  struct scan_job *j = req->data;
  struct mg_buf b;
  struct mg_jw w;
  mg_buf_init(&b);
  if (status || j->rc) {
    int rc = status ? -ECANCELED : j->rc;
    mg_http_reply_error(j->t, rc == -ENOENT ? 422 : rc == -EFBIG ? 413 : 400,
                        rc == -ENOENT ? "no_code" : "bad_image",
                        status ? "cancelled" : j->err.msg);
  } else {
    /* a slip's token or number; any other code's text is not echoed: it
     * may be a resident's data */
    mg_jw_init(&w, &b);
    mg_jw_obj(&w);
    mg_jw_kstr(&w, "kind", j->res.kind == MG_SCAN_TOKEN    ? "token"
                           : j->res.kind == MG_SCAN_NUMBER ? "number"
                                                           : "other");
    if (j->res.kind == MG_SCAN_TOKEN)
      mg_jw_kstr(&w, "token", j->res.value);
    else if (j->res.kind == MG_SCAN_NUMBER)
      mg_jw_kstr(&w, "number", j->res.value);
    mg_jw_kstr(&w, "symbology", j->res.symbology);
    mg_jw_obj_end(&w);
    mg__api_reply_buf(j->t, 200, &b);
  }
  OPENSSL_cleanse(&j->res, sizeof(j->res));
  free(j->img);
  free(j);
}

static void scan_h(void *ud, struct mg_http_txn *t,
                   const struct mg_http_req *req) {
  struct mg_daemon *d = ud;
  struct mg__who w;
  struct scan_job *j = NULL;
  if (mg__who_require(d, t, 1, &w))
    return;
  if (!req->body_len) {
    mg_http_reply_error(t, 400, "bad_image", "body: a PNG or JPEG image");
    return;
  }
  if (!(j = calloc(1, sizeof(*j))) || !(j->img = malloc(req->body_len))) {
    free(j);
    mg_http_reply_error(t, 500, "internal", "out of memory");
    return;
  }
  memcpy(j->img, req->body, req->body_len);
  j->len = req->body_len;
  j->t = t;
  j->req.data = j;
  if (uv_queue_work(&d->loop, &j->req, scan_work, scan_done)) {
    free(j->img);
    free(j);
    mg_http_reply_error(t, 500, "internal", "cannot start");
  }
}

int mg__device_api_register(struct mg_daemon *d) {
  return mg_http_route(d->http, "GET", "/api/v1/devices/card", card_status_h,
                       d) ||
         mg_http_route(d->http, "POST", "/api/v1/scan", scan_h, d);
}

/* ---------------------------------------------------------------------- */
/* madoctl card read                                                      */

static void ctl_card_done(void *ud, int status, const char *json) {
  struct mg_ctl_call *call = ud;
  struct mg_json *r = NULL;
  struct mg_buf b;
  struct mg_jw w;
  char msg[300];
  mg_buf_init(&b);
  if (json)
    mg_json_parse(json, strlen(json), NULL, &r, NULL);
  if (status != MG_PLUGIN_OK || !r) {
    const char *code = mg_json_get_str(r, "error"),
               *why = mg_json_get_str(r, "message");
    int64_t tries = -1;
    if (mg_json_get_int(r, "tries_left", &tries))
      tries = -1;
    if (tries >= 0)
      snprintf(msg, sizeof(msg), "%s: %.200s (tries left: %lld)",
               code ? code : "card", why ? why : "the card was not read",
               (long long)tries);
    else
      snprintf(msg, sizeof(msg), "%s: %.200s", code ? code : "card",
               why ? why : "the card was not read");
    mg_ctl_finish(call, -EIO, NULL, msg);
  } else {
    mg_jw_init(&w, &b);
    mg_jw_obj(&w);
    card_json(&w, r, 0);
    mg_jw_obj_end(&w);
    mg_ctl_finish(call, b.oom ? -ENOMEM : 0, b.oom ? NULL : b.data,
                  b.oom ? "out of memory" : NULL);
  }
  if (r)
    mg_json_free(r);
  if (json)
    OPENSSL_cleanse((void *)json, strlen(json));
  wipe_buf(&b);
}

/* Item i of madoctl's string array, "" when absent. */
static const char *arg_at(const struct mg_json *args, size_t i) {
  return args && args->type == MG_JSON_ARRAY && i < args->u.arr.n &&
                 args->u.arr.items[i]->type == MG_JSON_STRING
             ? args->u.arr.items[i]->u.str.s
             : "";
}

/* args [reader, pin, card_number] ("" = none): the secret came on
 * madoctl's stdin and over the control socket, never on a command line. */
int mg__device_ctl_card_read(struct mg_daemon *d, struct mg_ctl_call *call,
                             const struct mg_json *args, struct mg_err *err) {
  const char *reader = arg_at(args, 0);
  struct mg_buf b;
  size_t count = 0;
  int rc;
  mg_buf_init(&b);
  if (!reader || !*reader) {
    reader = mg_plugin_host_device_only(d->plugins, "reader", &count);
    if (!reader) {
      rc = mg_err_set(err, -EINVAL, count ? "%zu readers are configured: "
                      "name one with --reader" : "no [reader] in the "
                      "configuration", count);
      goto out;
    }
  }
  if ((rc = secret_args(arg_at(args, 1), arg_at(args, 2), &b, err)))
    goto out;
  rc = mg_plugin_host_command(d->plugins, reader, "read", b.data,
                              ctl_card_done, call);
  if (rc == -ENOENT)
    rc = mg_err_set(err, -EINVAL, "no reader \"%s\" in the configuration",
                    reader);
  else if (rc == -ENODEV)
    rc = mg_err_set(err, -ENODEV, "reader \"%s\" is not running", reader);
  else if (rc)
    rc = mg_err_set(err, rc, "cannot send the command: %s", strerror(-rc));
out:
  wipe_buf(&b);
  return rc;
}
