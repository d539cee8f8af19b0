/*
 * address_api.c — the address API (docs/api.md "Address"; I1, F3):
 *   GET /api/v1/address/postal/{code}
 *   GET /api/v1/address/search?q=TEXT&limit=N
 * A staff session is needed.  Answers come from the national dictionary
 * (address.h); an in-city address gets its district from the active pack
 * (mg_pack_district).  Residents type these texts: they are never logged.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "auth.h"
#include "daemon.h"
#include "pack.h"

#define NO_DICTIONARY                                                          \
  "住所辞書がまだ取り込まれていません。技術担当者が madoctl address import "   \
  "で取り込んでください。 / No address dictionary has been imported yet: a "  \
  "technician imports one with `madoctl address import FILE`."

/* Every address of an answer, with its district when the pack knows it;
 * `common` ends as the one district all of them share, or NULL. */
struct deco {
  struct mg_jw *w;
  const struct mg_pack *p;
  char city5[6];     /* the pack's 全国地方公共団体コード without check digit */
  const char *common;
  int n, mixed;
};

static int deco_one(void *ud, const struct mg_addr *a) {
  struct deco *x = ud;
  const char *district = NULL;
  /* in the city: the same code, or none known (the dictionary may not
   * carry codes; districts.csv then decides by postal code alone) */
  if (x->p && *x->city5 && (!*a->city_code || !strcmp(a->city_code, x->city5)))
    district = mg_pack_district(x->p, a->postal_code, a->town);
  mg_addr_write(x->w, a, district);
  if (x->n++ == 0)
    x->common = district;
  else if (!district || !x->common || strcmp(district, x->common) != 0)
    x->mixed = 1;
  return 0;
}

/* {"postal_code", "addresses": [...], "district"} or {"addresses": [...]};
 * -EINVAL for a bad code or text, -ENODATA without a dictionary. */
static int answer(struct mg_daemon *d, const char *code, const char *q,
                  size_t limit, struct mg_jw *w, struct mg_err *err) {
  struct deco x = {.w = w};
  struct mg_pack_use *u = NULL;
  char pc[8];
  int rc;
  if (code && (rc = mg_addr_postal_normalize(code, pc, err)))
    return rc;
  if (!d->addr)
    return mg_err_set(err, -ENODATA, NO_DICTIONARY);
  if ((u = mg_pack_service_acquire(d->packs)))
    x.p = mg_pack_use_model(u);
  if (x.p && strlen(x.p->city_code) == 6)
    snprintf(x.city5, sizeof(x.city5), "%.5s", x.p->city_code);
  mg_jw_obj(w);
  if (code)
    mg_jw_kstr(w, "postal_code", pc);
  mg_jw_key(w, "addresses");
  mg_jw_arr(w);
  rc = code ? mg_addr_postal_each(d->addr, pc, deco_one, &x, err)
            : mg_addr_search_each(d->addr, q, limit, deco_one, &x, err);
  mg_jw_arr_end(w);
  if (code) {
    mg_jw_key(w, "district");
    if (x.common && !x.mixed)
      mg_jw_str(w, x.common);
    else
      mg_jw_null(w);
  }
  mg_jw_obj_end(w);
  mg_pack_service_release(d->packs, u);
  return rc;
}

int mg__address_postal_json(struct mg_daemon *d, const char *code,
                            struct mg_jw *w, struct mg_err *err) {
  return answer(d, code, NULL, 0, w, err);
}

static void reply(struct mg_daemon *d, struct mg_http_txn *t, const char *code,
                  const char *q, size_t limit) {
  struct mg_buf b;
  struct mg_jw w;
  struct mg_err err = {{0}};
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  int rc = answer(d, code, q, limit, &w, &err);
  if (rc == -EINVAL)
    mg_http_reply_error(t, 400, "bad_request", err.msg);
  else if (rc == -ENODATA)
    mg_http_reply_error(t, 503, "no_address_dictionary", err.msg);
  else if (rc || b.oom || w.bad)
    mg_http_reply_error(t, 500, "internal", "the address dictionary failed");
  else
    mg_http_reply_json(t, 200, b.data);
  mg_buf_free(&b);
}

/* GET /api/v1/address/postal/{code} */
static void postal(void *ud, struct mg_http_txn *t,
                   const struct mg_http_req *req) {
  struct mg_daemon *d = ud;
  struct mg_auth_session s;
  const char *code = req->path + strlen("/api/v1/address/postal/");
  if (mg__auth_require(d->store, t, MG_ROLE_STAFF, 0, &s))
    return;
  OPENSSL_cleanse(&s, sizeof(s));
  if (strchr(code, '/')) {
    mg_http_reply_error(t, 404, "not_found", "no such API path");
    return;
  }
  reply(d, t, code, NULL, 0);
}

/* GET /api/v1/address/search?q=TEXT&limit=N (N 1..100, default 20) */
static void search(void *ud, struct mg_http_txn *t,
                   const struct mg_http_req *req) {
  struct mg_daemon *d = ud;
  struct mg_auth_session s;
  char q[1024], lim[16];
  long limit = 20;
  if (mg__auth_require(d->store, t, MG_ROLE_STAFF, 0, &s))
    return;
  OPENSSL_cleanse(&s, sizeof(s));
  if (mg_http_query(req->query, "q", q, sizeof(q)) != 1 || !*q) {
    mg_http_reply_error(t, 400, "bad_request",
                        "q: the text to search (a town or city name, kanji "
                        "or kana, at most 200 bytes) is needed");
    return;
  }
  int has = mg_http_query(req->query, "limit", lim, sizeof(lim));
  if (has) {
    char *end = NULL;
    limit = has > 0 ? strtol(lim, &end, 10) : 0;
    if (has < 0 || end == lim || *end || limit < 1 ||
        limit > MG_ADDR_SEARCH_MAX) {
      mg_http_reply_error(t, 400, "bad_request", "limit: from 1 to 100");
      return;
    }
  }
  reply(d, t, NULL, q, (size_t)limit);
  OPENSSL_cleanse(q, sizeof(q)); /* a resident's address */
}

int mg__address_api_register(struct mg_daemon *d) {
  return mg_http_route(d->http, "GET", "/api/v1/address/postal/*", postal, d) ||
         mg_http_route(d->http, "GET", "/api/v1/address/search", search, d);
}
