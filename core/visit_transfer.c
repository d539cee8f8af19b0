/*
 * visit_transfer.c — a case as one JSON document for cross-floor
 * continuation (visit_transfer.h; issue 8, C1, G5).
 *
 * The export ("format": "madoguchi/case-1"), every key always present:
 *
 *   {"format", "id", "version", "number", "token", "token_sha256",
 *    "life_event", "pack_commit", "counter", "created_by", "created_at",
 *    "filing_date", "status", "closed_at"|null, "purge_after"|null,
 *    "updated_at", "support_counter"|null, "origin_box"|null,
 *    "facts": {"has_mynumber_card", "foreign_resident"},
 *    "people": [{"name", "kana", "address", "birth_date"|null, "support"}],
 *    "free_text",
 *    "answers":  [{"question", "answer": bool, "by", "counter", "at"}],
 *    "manual":   [{"procedure", "action": "add"|"remove", "by", "counter", "at"}],
 *    "statuses": [{"procedure", "counter", "status", "by", "at"}],
 *    "notes":    [{"author", "counter", "at", "text"}],
 *    "forms":    [{"instance", "form", "action", "by", "counter", "at"}],
 *    "values":   [{"key", "row", "text", "source", "form", "by", "counter", "at"}],
 *    "signature": null | {"by", "counter", "at", "data": "<the signature JSON>"},
 *    "unmask":   [{"counter", "by", "at", "until"}],
 *    "applications": [{"id", "form", "pack_commit", "submitted_by", "counter",
 *                      "submitted_at", "export_name"|null, "exported_at"|null,
 *                      "payload": "<the application JSON>"}]}
 *
 * Times are UTC "YYYY-MM-DDTHH:MM:SSZ" (store.h).  The import checks every
 * member (type, length, shape, the token against its hash, the number's
 * check digit) before anything is written, names the place and the rule
 * in its error and never a value (the document is residents' data).
 * Unknown members are ignored: a format that adds data gets a new name.
 * An imported application's linkage file is not made again here (the box
 * that took the application made it) and its outbox row stays with the
 * box that took it.
 */
#include "visit_transfer.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "log.h"
#include "store.h"
#include "visit_internal.h"

/* ---------------------------------------------------------------------- */
/* Export                                                                 */

/* Rows of one child table as an array of objects, in the order the case
 * loads them (ties in insertion order, kept by the import): column i under
 * names[i]; a name starting with '?' is an integer written as a boolean
 * (the '?' dropped).  NULL columns are null. */
static int rows_json(struct mg_visits *vs, struct mg_jw *w, const char *key,
                     const char *sql, const char *id,
                     const char *const *names) {
  sqlite3_stmt *s = mg__visit_stmt(vs, sql);
  int rc;
  if (!s || sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC) != SQLITE_OK) {
    mg__visit_stmt_done(vs, s);
    return -EIO;
  }
  mg_jw_key(w, key);
  mg_jw_arr(w);
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    mg_jw_obj(w);
    for (int i = 0; names[i]; i++) {
      if (names[i][0] == '?') {
        mg_jw_kbool(w, names[i] + 1, sqlite3_column_int(s, i) != 0);
        continue;
      }
      mg_jw_kstr(w, names[i], (const char *)sqlite3_column_text(s, i));
    }
    mg_jw_obj_end(w);
  }
  mg_jw_arr_end(w);
  mg__visit_stmt_done(vs, s);
  return rc == SQLITE_DONE ? 0 : -EIO;
}

static void opt_str(struct mg_jw *w, const char *key, const char *s) {
  mg_jw_kstr(w, key, s && *s ? s : NULL);
}

/* The visitor's signature: opened and written as a string. */
static int signature_json(struct mg_visits *vs, struct mg_jw *w,
                          const char *id) {
  sqlite3_stmt *s = mg__visit_stmt(vs, "SELECT body, by_user, counter, at "
                                       "FROM visit_signature WHERE "
                                       "visit_id = ?1");
  unsigned char *plain = NULL;
  size_t plen = 0;
  char aad[64];
  int rc = -EIO;
  if (!s || sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC) != SQLITE_OK)
    goto out;
  mg_jw_key(w, "signature");
  if ((rc = sqlite3_step(s)) == SQLITE_DONE) {
    mg_jw_null(w);
    rc = 0;
    goto out;
  }
  if (rc != SQLITE_ROW) {
    rc = -EIO;
    goto out;
  }
  mg__sig_aad(id, aad);
  if ((rc = mg_open(mg__visits_key(vs), aad, sqlite3_column_blob(s, 0),
                    (size_t)sqlite3_column_bytes(s, 0), &plain, &plen)))
    goto out;
  mg_jw_obj(w);
  mg_jw_kstr(w, "by", (const char *)sqlite3_column_text(s, 1));
  mg_jw_kstr(w, "counter", (const char *)sqlite3_column_text(s, 2));
  mg_jw_kstr(w, "at", (const char *)sqlite3_column_text(s, 3));
  mg_jw_key(w, "data");
  mg_jw_strn(w, (const char *)plain, plen);
  mg_jw_obj_end(w);
out:
  mg__visit_stmt_done(vs, s);
  if (plain)
    OPENSSL_cleanse(plain, plen);
  free(plain);
  return rc;
}

static int applications_json(struct mg_visits *vs, struct mg_jw *w,
                             const char *id) {
  sqlite3_stmt *s = mg__visit_stmt(
      vs, "SELECT id, form, pack_commit, submitted_by, counter, "
          "submitted_at, export_name, exported_at, payload FROM "
          "applications WHERE visit_id = ?1 ORDER BY submitted_at, id");
  char aad[64];
  int rc = -EIO;
  if (!s || sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC) != SQLITE_OK)
    goto out;
  mg_jw_key(w, "applications");
  mg_jw_arr(w);
  static const char *const names[] = {"id", "form", "pack_commit",
                                      "submitted_by", "counter",
                                      "submitted_at", "export_name",
                                      "exported_at"};
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    unsigned char *plain = NULL;
    size_t plen = 0;
    snprintf(aad, sizeof(aad), "app/%s",
             (const char *)sqlite3_column_text(s, 0));
    if ((rc = mg_open(mg__visits_key(vs), aad, sqlite3_column_blob(s, 8),
                      (size_t)sqlite3_column_bytes(s, 8), &plain, &plen)))
      goto out;
    mg_jw_obj(w);
    for (int i = 0; i < 8; i++)
      mg_jw_kstr(w, names[i], (const char *)sqlite3_column_text(s, i));
    mg_jw_key(w, "payload");
    mg_jw_strn(w, (const char *)plain, plen);
    mg_jw_obj_end(w);
    OPENSSL_cleanse(plain, plen);
    free(plain);
  }
  mg_jw_arr_end(w);
  rc = rc == SQLITE_DONE ? 0 : -EIO;
out:
  mg__visit_stmt_done(vs, s);
  return rc;
}

/* The columns of visits that the loaded case does not hold. */
struct meta {
  char token_hash[65], purge_after[24], updated_at[24], origin_box[72];
  int64_t version;
};

static int meta_load(struct mg_visits *vs, const char *id, struct meta *m) {
  sqlite3_stmt *s = mg__visit_stmt(
      vs, "SELECT token_hash, IFNULL(purge_after, ''), updated_at, version, "
          "IFNULL(origin_box, '') FROM visits WHERE id = ?1");
  int rc = -EIO;
  memset(m, 0, sizeof(*m));
  if (!s || sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC) != SQLITE_OK)
    goto out;
  if ((rc = sqlite3_step(s)) != SQLITE_ROW) {
    rc = rc == SQLITE_DONE ? -ENOENT : -EIO;
    goto out;
  }
  snprintf(m->token_hash, sizeof(m->token_hash), "%s",
           (const char *)sqlite3_column_text(s, 0));
  snprintf(m->purge_after, sizeof(m->purge_after), "%s",
           (const char *)sqlite3_column_text(s, 1));
  snprintf(m->updated_at, sizeof(m->updated_at), "%s",
           (const char *)sqlite3_column_text(s, 2));
  m->version = sqlite3_column_int64(s, 3);
  snprintf(m->origin_box, sizeof(m->origin_box), "%s",
           (const char *)sqlite3_column_text(s, 4));
  rc = 0;
out:
  mg__visit_stmt_done(vs, s);
  return rc;
}

static void people_json(struct mg_jw *w, const struct mg_visit *v) {
  char date[16];
  mg_jw_key(w, "people");
  mg_jw_arr(w);
  for (size_t i = 0; i < v->n_people; i++) {
    const struct mg_visit_person *p = &v->people[i];
    mg_jw_obj(w);
    mg_jw_kstr(w, "name", p->name);
    mg_jw_kstr(w, "kana", p->kana);
    mg_jw_kstr(w, "address", p->address);
    if (p->birth.y)
      mg_date_format(&p->birth, date, sizeof(date));
    mg_jw_kstr(w, "birth_date", p->birth.y ? date : NULL);
    mg_jw_kbool(w, "support", p->support);
    mg_jw_obj_end(w);
  }
  mg_jw_arr_end(w);
}

static void notes_values_json(struct mg_jw *w, const struct mg_visit *v) {
  mg__visit_notes_json(w, v);
  mg_jw_key(w, "values");
  mg_jw_arr(w);
  for (size_t i = 0; i < v->n_values; i++) {
    const struct mg_visit_value *x = &v->values[i];
    mg_jw_obj(w);
    mg_jw_kstr(w, "key", x->key);
    mg_jw_kint(w, "row", x->row);
    mg_jw_kstr(w, "text", x->text);
    mg_jw_kstr(w, "source", x->source);
    mg_jw_kstr(w, "form", x->form);
    mg_jw_kstr(w, "by", x->by);
    mg_jw_kstr(w, "counter", x->counter);
    mg_jw_kstr(w, "at", x->at);
    mg_jw_obj_end(w);
  }
  mg_jw_arr_end(w);
}

int mg_visit_export(struct mg_visits *vs, const char *id, int64_t *version,
                    unsigned char **json, size_t *len) {
  static const char *const n_answers[] = {"question", "?answer", "by",
                                          "counter", "at", NULL};
  static const char *const n_manual[] = {"procedure", "action", "by",
                                         "counter", "at", NULL};
  static const char *const n_status[] = {"procedure", "counter", "status",
                                         "by", "at", NULL};
  static const char *const n_forms[] = {"instance", "form", "action", "by",
                                        "counter", "at", NULL};
  static const char *const n_unmask[] = {"counter", "by", "at", "until",
                                         NULL};
  struct mg_visit *v = NULL;
  struct mg_err e = {{0}};
  struct meta m;
  struct mg_buf b;
  struct mg_jw w;
  int rc;

  *json = NULL;
  *len = 0;
  mg_buf_init(&b);
  if ((rc = mg_visit_get(vs, NULL, id, &v, &e)) || (rc = meta_load(vs, id, &m)))
    goto out;
  mg_jw_init(&w, &b);
  mg_jw_obj(&w);
  mg_jw_kstr(&w, "format", MG_VISIT_EXPORT_FORMAT);
  mg_jw_kstr(&w, "id", v->id);
  mg_jw_kint(&w, "version", m.version);
  mg_jw_kstr(&w, "number", v->number);
  mg_jw_kstr(&w, "token", v->token);
  mg_jw_kstr(&w, "token_sha256", m.token_hash);
  mg_jw_kstr(&w, "life_event", v->life_event);
  mg_jw_kstr(&w, "pack_commit", v->pack_commit);
  mg_jw_kstr(&w, "counter", v->counter);
  mg_jw_kstr(&w, "created_by", v->created_by);
  mg_jw_kstr(&w, "created_at", v->created_at);
  mg_jw_kstr(&w, "filing_date", v->filing_date);
  mg_jw_kstr(&w, "status", v->status);
  opt_str(&w, "closed_at", v->closed_at);
  opt_str(&w, "purge_after", m.purge_after);
  mg_jw_kstr(&w, "updated_at", m.updated_at);
  opt_str(&w, "support_counter", v->support_counter);
  opt_str(&w, "origin_box", m.origin_box);
  mg_jw_key(&w, "facts");
  mg_jw_obj(&w);
  mg_jw_kbool(&w, "has_mynumber_card", v->has_mynumber_card);
  mg_jw_kbool(&w, "foreign_resident", v->foreign_resident);
  mg_jw_obj_end(&w);
  people_json(&w, v);
  mg_jw_kstr(&w, "free_text", v->free_text);
  if ((rc = rows_json(vs, &w, "answers",
                      "SELECT question, answer, by_user, counter, at FROM "
                      "visit_answers WHERE visit_id = ?1 ORDER BY at, "
                      "rowid",
                      id, n_answers)) ||
      (rc = rows_json(vs, &w, "manual",
                      "SELECT procedure, action, by_user, counter, at FROM "
                      "visit_manual WHERE visit_id = ?1 ORDER BY at, "
                      "rowid",
                      id, n_manual)) ||
      (rc = rows_json(vs, &w, "statuses",
                      "SELECT procedure, counter, status, by_user, at FROM "
                      "visit_status WHERE visit_id = ?1 ORDER BY at, "
                      "rowid",
                      id, n_status)))
    goto out;
  notes_values_json(&w, v);
  if ((rc = rows_json(vs, &w, "forms",
                      "SELECT instance, form, action, by_user, counter, at "
                      "FROM visit_forms WHERE visit_id = ?1 ORDER BY at, "
                      "instance",
                      id, n_forms)) ||
      (rc = signature_json(vs, &w, id)) ||
      (rc = rows_json(vs, &w, "unmask",
                      "SELECT counter, by_user, at, until FROM visit_unmask "
                      "WHERE visit_id = ?1 ORDER BY counter",
                      id, n_unmask)) ||
      (rc = applications_json(vs, &w, id)))
    goto out;
  mg_jw_obj_end(&w);
  if (b.oom || w.bad) {
    rc = -ENOMEM;
    goto out;
  }
  *version = m.version;
  *len = b.len;
  *json = (unsigned char *)mg_buf_steal(&b);
out:
  if (rc && rc != -ENOENT)
    mg_log_err("visit", "case %s cannot be exported (%s)", id, strerror(-rc));
  if (b.data)
    OPENSSL_cleanse(b.data, b.len);
  mg_buf_free(&b);
  mg_visit_free(v);
  return rc == -EBADMSG ? -EIO : rc;
}

int mg_visit_export_cb(void *ud, const char *case_id, int64_t version,
                       unsigned char **json, size_t *len) {
  int64_t exported = 0;
  int rc = mg_visit_export(ud, case_id, &exported, json, len);
  /* row and case move together; only a change between picking the row and
   * exporting it makes the export newer (then the newer one goes) */
  if (rc == 0 && exported != version)
    mg_log_info("visit", "case %s: queued as version %lld, exported as %lld",
                case_id, (long long)version, (long long)exported);
  return rc;
}

int mg_visit_origin_box(struct mg_visits *vs, const char *id, char out[72]) {
  struct meta m;
  int rc = meta_load(vs, id, &m);
  snprintf(out, 72, "%s", rc ? "" : m.origin_box);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Import: checking                                                       */

/* The first problem found; later checks do nothing. */
struct rd {
  struct mg_err *err;
  int rc;
};

static void bad(struct rd *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void bad(struct rd *r, const char *fmt, ...) {
  char msg[200];
  va_list ap;
  if (r->rc)
    return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  r->rc = mg_err_set(r->err, -EINVAL, "case export: %s", msg);
}

enum {
  R_OPT = 1,   /* absent or null: NULL */
  R_EMPTY = 2, /* "" allowed */
  R_TIME = 4,  /* YYYY-MM-DDTHH:MM:SSZ */
  R_DATE = 8,  /* YYYY-MM-DD */
};

static int is_time(const char *s) {
  static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
  if (strlen(s) != sizeof(shape) - 1)
    return 0;
  for (size_t i = 0; shape[i]; i++)
    if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
      return 0;
  return 1;
}

/* A string member of o (at `place`), at most max bytes. */
static const char *rstr(struct rd *r, const struct mg_json *o,
                        const char *place, const char *key, size_t max,
                        int fl) {
  const struct mg_json *x = mg_json_get(o, key);
  struct mg_date d;
  if (r->rc)
    return NULL;
  if (!x || x->type == MG_JSON_NULL) {
    if (!(fl & R_OPT))
      bad(r, "%s.%s: required", place, key);
    return NULL;
  }
  if (x->type != MG_JSON_STRING || strlen(x->u.str.s) != x->u.str.len) {
    bad(r, "%s.%s: must be a string", place, key);
    return NULL;
  }
  const char *s = x->u.str.s;
  if (!*s && !(fl & (R_EMPTY | R_OPT)))
    bad(r, "%s.%s: must not be empty", place, key);
  else if (x->u.str.len > max)
    bad(r, "%s.%s: at most %zu bytes", place, key, max);
  else if ((fl & R_TIME) && *s && !is_time(s))
    bad(r, "%s.%s: must be a time YYYY-MM-DDTHH:MM:SSZ", place, key);
  else if ((fl & R_DATE) && *s && mg_date_parse(s, &d))
    bad(r, "%s.%s: must be a date YYYY-MM-DD", place, key);
  return r->rc ? NULL : s;
}

/* s made only of the characters of `set`, n bytes (0: any length). */
static void rset(struct rd *r, const char *s, const char *place,
                 const char *key, const char *set, size_t n,
                 const char *rule) {
  if (r->rc || !s)
    return;
  if (strspn(s, set) != strlen(s) || (n && strlen(s) != n))
    bad(r, "%s.%s: %s", place, key, rule);
}

static const char *rone(struct rd *r, const struct mg_json *o,
                        const char *place, const char *key,
                        const char *const *allowed) {
  const char *s = rstr(r, o, place, key, 32, 0);
  for (size_t i = 0; s && allowed[i]; i++)
    if (strcmp(s, allowed[i]) == 0)
      return s;
  if (s) {
    char list[96] = "";
    for (size_t i = 0; allowed[i]; i++)
      snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
               i ? ", " : "", allowed[i]);
    bad(r, "%s.%s: must be one of %s", place, key, list);
  }
  return NULL;
}

static int rbool(struct rd *r, const struct mg_json *o, const char *place,
                 const char *key) {
  int b = mg_json_get_bool(o, key);
  if (b < 0)
    bad(r, "%s.%s: must be true or false", place, key);
  return b == 1;
}

static const struct mg_json *rarr(struct rd *r, const struct mg_json *o,
                                  const char *key, size_t max) {
  const struct mg_json *a = mg_json_get(o, key);
  if (r->rc)
    return NULL;
  if (!a || a->type != MG_JSON_ARRAY) {
    bad(r, "case.%s: required (an array)", key);
    return NULL;
  }
  if (a->u.arr.n > max) {
    bad(r, "case.%s: at most %zu entries", key, max);
    return NULL;
  }
  for (size_t i = 0; i < a->u.arr.n; i++)
    if (a->u.arr.items[i]->type != MG_JSON_OBJECT) {
      bad(r, "case.%s[%zu]: must be an object", key, i);
      return NULL;
    }
  return a;
}

#define HEX "0123456789abcdef"
#define ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
#define B64URL ALNUM "-_"
#define BOXCHARS ALNUM "._-"
#define NAME_MAX_B 71 /* user, counter, procedure, question ids: char[72] */
#define MAX_ROWS 10000

/* The scalar members of the case, checked. */
struct head {
  const char *id, *number, *token, *token_sha256, *life_event, *pack_commit,
      *counter, *created_by, *created_at, *filing_date, *status, *closed_at,
      *purge_after, *updated_at, *support_counter, *origin_box, *free_text;
  int64_t version;
  int card, foreign;
};

static void read_head(struct rd *r, const struct mg_json *doc,
                      struct head *h) {
  static const char *const statuses[] = {"open", "closed", NULL};
  const char *fmt = rstr(r, doc, "case", "format", 64, 0);
  char th[65];
  if (fmt && strcmp(fmt, MG_VISIT_EXPORT_FORMAT) != 0)
    bad(r, "case.format: must be \"%s\"", MG_VISIT_EXPORT_FORMAT);
  h->id = rstr(r, doc, "case", "id", 32, 0);
  rset(r, h->id, "case", "id", HEX, 32, "32 lower-case hex digits");
  if (!r->rc && mg_json_get_int(doc, "version", &h->version))
    bad(r, "case.version: required (an integer)");
  if (!r->rc && h->version < 1)
    bad(r, "case.version: at least 1");
  h->number = rstr(r, doc, "case", "number", 8, 0);
  rset(r, h->number, "case", "number", "0123456789", 8, "8 digits");
  if (!r->rc && !mg_luhn_ok(h->number))
    bad(r, "case.number: the check digit does not match");
  h->token = rstr(r, doc, "case", "token", 43, 0);
  rset(r, h->token, "case", "token", B64URL, 43, "43 base64url characters");
  h->token_sha256 = rstr(r, doc, "case", "token_sha256", 64, 0);
  rset(r, h->token_sha256, "case", "token_sha256", HEX, 64,
       "64 lower-case hex digits");
  if (!r->rc && (mg_sha256_hex(h->token, strlen(h->token), th) ||
                 strcmp(th, h->token_sha256) != 0))
    bad(r, "case.token_sha256: must be the SHA-256 of case.token");
  h->life_event = rstr(r, doc, "case", "life_event", NAME_MAX_B, 0);
  h->pack_commit = rstr(r, doc, "case", "pack_commit", 47, 0);
  rset(r, h->pack_commit, "case", "pack_commit", HEX, 0,
       "a commit id (lower-case hex)");
  h->counter = rstr(r, doc, "case", "counter", NAME_MAX_B, 0);
  h->created_by = rstr(r, doc, "case", "created_by", NAME_MAX_B, 0);
  h->created_at = rstr(r, doc, "case", "created_at", 23, R_TIME);
  h->filing_date = rstr(r, doc, "case", "filing_date", 10, R_DATE);
  h->status = rone(r, doc, "case", "status", statuses);
  h->closed_at = rstr(r, doc, "case", "closed_at", 23, R_TIME | R_OPT);
  h->purge_after = rstr(r, doc, "case", "purge_after", 23, R_TIME | R_OPT);
  if (!r->rc && strcmp(h->status, "closed") == 0 &&
      (!h->closed_at || !h->purge_after))
    bad(r, "case.closed_at, case.purge_after: required for a closed case");
  h->updated_at = rstr(r, doc, "case", "updated_at", 23, R_TIME);
  h->support_counter =
      rstr(r, doc, "case", "support_counter", NAME_MAX_B, R_OPT);
  h->origin_box = rstr(r, doc, "case", "origin_box", 64, R_OPT);
  rset(r, h->origin_box, "case", "origin_box", BOXCHARS, 0,
       "a box name (letters, digits, '.', '_', '-')");
  h->free_text = rstr(r, doc, "case", "free_text", 4 * MG_VISIT_MAX_TEXT,
                      R_EMPTY);
  const struct mg_json *facts = mg_json_get(doc, "facts");
  if (!r->rc && (!facts || facts->type != MG_JSON_OBJECT))
    bad(r, "case.facts: required (an object)");
  h->card = rbool(r, facts, "case.facts", "has_mynumber_card");
  h->foreign = rbool(r, facts, "case.facts", "foreign_resident");
}

/* People and values into arrays for sealing (strings borrowed from the
 * document). */
static void read_personal(struct rd *r, const struct mg_json *doc,
                          struct mg_visit_person **pp, size_t *np,
                          struct mg_visit_value **vp, size_t *nv) {
  static const char *const sources[] = {"typed", "card", NULL};
  char place[48];
  const struct mg_json *people = rarr(r, doc, "people", MG_GUIDE_MAX_PEOPLE);
  const struct mg_json *values = rarr(r, doc, "values", MAX_ROWS);
  if (r->rc)
    return;
  *pp = calloc(people->u.arr.n + 1, sizeof(**pp));
  *vp = calloc(values->u.arr.n + 1, sizeof(**vp));
  if (!*pp || !*vp) {
    r->rc = mg_err_set(r->err, -ENOMEM, "out of memory");
    return;
  }
  for (size_t i = 0; !r->rc && i < people->u.arr.n; i++) {
    const struct mg_json *o = people->u.arr.items[i];
    struct mg_visit_person *p = &(*pp)[i];
    snprintf(place, sizeof(place), "case.people[%zu]", i);
    p->name = (char *)rstr(r, o, place, "name", 200, R_EMPTY);
    p->kana = (char *)rstr(r, o, place, "kana", 200, R_EMPTY);
    p->address = (char *)rstr(r, o, place, "address", 600, R_EMPTY);
    const char *bd = rstr(r, o, place, "birth_date", 10, R_DATE | R_OPT);
    if (bd && *bd)
      mg_date_parse(bd, &p->birth);
    p->support = rbool(r, o, place, "support");
    *np = i + 1;
  }
  for (size_t i = 0; !r->rc && i < values->u.arr.n; i++) {
    const struct mg_json *o = values->u.arr.items[i];
    struct mg_visit_value *x = &(*vp)[i];
    const char *s;
    int64_t row = -1;
    snprintf(place, sizeof(place), "case.values[%zu]", i);
    x->key = (char *)rstr(r, o, place, "key", 200, 0);
    x->text = (char *)rstr(r, o, place, "text", 8192, R_EMPTY);
    if (!r->rc && (mg_json_get_int(o, "row", &row) || row < 0 ||
                   row > MAX_ROWS))
      bad(r, "%s.row: an integer from 0 to %d", place, MAX_ROWS);
    x->row = (long)row;
    if ((s = rone(r, o, place, "source", sources)))
      snprintf(x->source, sizeof(x->source), "%s", s);
    if ((s = rstr(r, o, place, "form", sizeof(x->form) - 1, R_EMPTY)))
      snprintf(x->form, sizeof(x->form), "%s", s);
    if ((s = rstr(r, o, place, "by", NAME_MAX_B, R_EMPTY)))
      snprintf(x->by, sizeof(x->by), "%s", s);
    if ((s = rstr(r, o, place, "counter", NAME_MAX_B, R_EMPTY)))
      snprintf(x->counter, sizeof(x->counter), "%s", s);
    if ((s = rstr(r, o, place, "at", 23, R_EMPTY | R_TIME)))
      snprintf(x->at, sizeof(x->at), "%s", s);
    *nv = i + 1;
  }
}

/* ---------------------------------------------------------------------- */
/* Import: writing                                                        */

/* One statement: text args ?1..?n (NULL binds NULL), blob as ?(n+1). */
static int run(struct mg_visits *vs, const char *sql, const char *const *args,
               int n, const void *blob, size_t blen) {
  sqlite3_stmt *s = mg__visit_stmt(vs, sql);
  int rc = s ? SQLITE_OK : SQLITE_ERROR;
  for (int i = 0; rc == SQLITE_OK && i < n; i++)
    rc = sqlite3_bind_text(s, i + 1, args[i], -1, SQLITE_STATIC);
  if (rc == SQLITE_OK && blob)
    rc = sqlite3_bind_blob(s, n + 1, blob, (int)blen, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  mg__visit_stmt_done(vs, s);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Seal `text` under aad and run sql with it as the last parameter. */
static int run_sealed(struct mg_visits *vs, const char *sql,
                      const char *const *args, int n, const char *aad,
                      const char *text) {
  unsigned char *blob = NULL;
  size_t blen = 0;
  if (mg_seal(mg__visits_key(vs), aad, text, strlen(text), &blob, &blen))
    return SQLITE_ERROR;
  int rc = run(vs, sql, args, n, blob, blen);
  free(blob);
  return rc;
}

/* A child table: every entry of case.<key> checked (keys[i] with flags
 * fl[i], or one of `allowed` where given) and inserted with `sql`
 * (?1 = the case id, ?2.. = the members in order).  answer: keys[i]
 * starting with '?' is a boolean bound as 0/1. */
struct child {
  const char *key;
  const char *sql;
  const char *members[8];
  int fl[8];
  const char *const *allowed[8];
};

static const char *const ADD_REMOVE[] = {"add", "remove", NULL};
static const char *const STATUSES[] = {"pending", "in_progress", "done",
                                       NULL};

static const struct child CHILDREN[] = {
    {"answers",
     "INSERT INTO visit_answers (visit_id, question, answer, by_user, "
     "counter, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
     {"question", "?answer", "by", "counter", "at"},
     {0, 0, 0, 0, R_TIME},
     {NULL}},
    {"manual",
     "INSERT INTO visit_manual (visit_id, procedure, action, by_user, "
     "counter, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
     {"procedure", "action", "by", "counter", "at"},
     {0, 0, 0, 0, R_TIME},
     {NULL, ADD_REMOVE}},
    {"statuses",
     "INSERT INTO visit_status (visit_id, procedure, counter, status, "
     "by_user, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
     {"procedure", "counter", "status", "by", "at"},
     {0, 0, 0, 0, R_TIME},
     {NULL, NULL, STATUSES}},
    {"forms",
     "INSERT INTO visit_forms (visit_id, instance, form, action, by_user, "
     "counter, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
     {"instance", "form", "action", "by", "counter", "at"},
     {0, 0, 0, 0, 0, R_TIME},
     {NULL, NULL, ADD_REMOVE}},
    {"unmask",
     "INSERT INTO visit_unmask (visit_id, counter, by_user, at, until) "
     "VALUES (?1, ?2, ?3, ?4, ?5)",
     {"counter", "by", "at", "until"},
     {0, 0, R_TIME, R_TIME},
     {NULL}},
};

static void child_rows(struct rd *r, struct mg_visits *vs,
                       const struct mg_json *doc, const char *id,
                       const struct child *c, int write) {
  char place[48];
  const struct mg_json *a = rarr(r, doc, c->key, MAX_ROWS);
  for (size_t i = 0; a && !r->rc && i < a->u.arr.n; i++) {
    const struct mg_json *o = a->u.arr.items[i];
    const char *args[9] = {id};
    int n = 1;
    snprintf(place, sizeof(place), "case.%s[%zu]", c->key, i);
    for (; n <= 8 && c->members[n - 1]; n++) {
      const char *m = c->members[n - 1];
      if (m[0] == '?')
        args[n] = rbool(r, o, place, m + 1) ? "1" : "0";
      else if (c->allowed[n - 1])
        args[n] = rone(r, o, place, m, c->allowed[n - 1]);
      else
        args[n] = rstr(r, o, place, m,
                       strcmp(m, "instance") == 0 ? 79 : NAME_MAX_B,
                       c->fl[n - 1]);
    }
    if (!r->rc && write && run(vs, c->sql, args, n, NULL, 0) != SQLITE_OK)
      bad(r, "%s: cannot be stored (a duplicate entry?)", place);
  }
}

static void notes_rows(struct rd *r, struct mg_visits *vs,
                       const struct mg_json *doc, const char *id, int write) {
  char place[48], aad[200];
  const struct mg_json *a = rarr(r, doc, "notes", MAX_ROWS);
  for (size_t i = 0; a && !r->rc && i < a->u.arr.n; i++) {
    const struct mg_json *o = a->u.arr.items[i];
    snprintf(place, sizeof(place), "case.notes[%zu]", i);
    const char *args[] = {id, rstr(r, o, place, "author", NAME_MAX_B, 0),
                          rstr(r, o, place, "counter", NAME_MAX_B, 0),
                          rstr(r, o, place, "at", 23, R_TIME)};
    const char *text = rstr(r, o, place, "text", 4 * MG_VISIT_MAX_TEXT, 0);
    if (r->rc || !write)
      continue;
    mg__note_aad(id, args[1], args[3], aad);
    if (run_sealed(vs, "INSERT INTO visit_notes (visit_id, author, counter, "
                       "at, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                   args, 4, aad, text) != SQLITE_OK)
      r->rc = mg_err_set(r->err, -EIO, "%s: cannot be stored", place);
  }
}

/* A JSON object kept as a string (the signature, an application). */
static const char *json_text(struct rd *r, const struct mg_json *o,
                             const char *place, const char *key, size_t max) {
  const char *s = rstr(r, o, place, key, max, 0);
  struct mg_json *doc = NULL;
  struct mg_json_error je;
  if (s && (mg_json_parse(s, strlen(s), NULL, &doc, &je) ||
            doc->type != MG_JSON_OBJECT))
    bad(r, "%s.%s: must hold a JSON object", place, key);
  mg_json_free(doc);
  return r->rc ? NULL : s;
}

static void signature_row(struct rd *r, struct mg_visits *vs,
                          const struct mg_json *doc, const char *id,
                          int write) {
  const struct mg_json *o = mg_json_get(doc, "signature");
  char aad[64];
  if (r->rc || (o && o->type == MG_JSON_NULL))
    return;
  if (!o || o->type != MG_JSON_OBJECT) {
    bad(r, "case.signature: required (an object or null)");
    return;
  }
  const char *args[] = {id, rstr(r, o, "case.signature", "by", NAME_MAX_B, 0),
                        rstr(r, o, "case.signature", "counter", NAME_MAX_B, 0),
                        rstr(r, o, "case.signature", "at", 23, R_TIME)};
  const char *data = json_text(r, o, "case.signature", "data", 1 << 20);
  if (r->rc || !write)
    return;
  mg__sig_aad(id, aad);
  if (run_sealed(vs, "INSERT INTO visit_signature (visit_id, by_user, "
                     "counter, at, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                 args, 4, aad, data) != SQLITE_OK)
    r->rc = mg_err_set(r->err, -EIO, "case.signature: cannot be stored");
}

static void application_rows(struct rd *r, struct mg_visits *vs,
                             const struct mg_json *doc, const char *id,
                             int write) {
  char place[48], aad[64];
  const struct mg_json *a = rarr(r, doc, "applications", 1000);
  for (size_t i = 0; a && !r->rc && i < a->u.arr.n; i++) {
    const struct mg_json *o = a->u.arr.items[i];
    snprintf(place, sizeof(place), "case.applications[%zu]", i);
    const char *args[] = {
        rstr(r, o, place, "id", 32, 0), id,
        rstr(r, o, place, "form", NAME_MAX_B, 0),
        rstr(r, o, place, "pack_commit", 47, 0),
        rstr(r, o, place, "submitted_by", NAME_MAX_B, 0),
        rstr(r, o, place, "counter", NAME_MAX_B, 0),
        rstr(r, o, place, "submitted_at", 23, R_TIME),
        rstr(r, o, place, "export_name", 159, R_OPT),
        rstr(r, o, place, "exported_at", 23, R_TIME | R_OPT)};
    rset(r, args[0], place, "id", HEX, 32, "32 lower-case hex digits");
    const char *payload = json_text(r, o, place, "payload", 1 << 20);
    if (r->rc || !write)
      continue;
    snprintf(aad, sizeof(aad), "app/%s", args[0]);
    /* export stays NULL: the linkage file is the taking box's job */
    if (run_sealed(vs, "INSERT INTO applications (id, visit_id, form, "
                       "pack_commit, submitted_by, counter, submitted_at, "
                       "export_name, exported_at, payload) VALUES (?1, ?2, "
                       "?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                   args, 9, aad, payload) != SQLITE_OK)
      bad(r, "%s: cannot be stored (its id is taken?)", place);
  }
}

/* Every row of the case (write 0: only check them). */
static void child_all(struct rd *r, struct mg_visits *vs,
                      const struct mg_json *doc, const char *id, int write) {
  for (size_t i = 0; i < sizeof(CHILDREN) / sizeof(CHILDREN[0]); i++)
    child_rows(r, vs, doc, id, &CHILDREN[i], write);
  notes_rows(r, vs, doc, id, write);
  signature_row(r, vs, doc, id, write);
  application_rows(r, vs, doc, id, write);
}

/* The parsed document holds residents' data: wiped before it is freed. */
static void json_wipe(struct mg_json *j) {
  if (!j)
    return;
  if (j->type == MG_JSON_STRING)
    OPENSSL_cleanse(j->u.str.s, j->u.str.len);
  else if (j->type == MG_JSON_ARRAY)
    for (size_t i = 0; i < j->u.arr.n; i++)
      json_wipe(j->u.arr.items[i]);
  else if (j->type == MG_JSON_OBJECT)
    for (size_t i = 0; i < j->u.obj.n; i++)
      json_wipe(j->u.obj.members[i].value);
}

static int stored_version(struct mg_visits *vs, const char *id,
                          int64_t *out) {
  sqlite3_stmt *s = mg__visit_stmt(vs, "SELECT version FROM visits WHERE "
                                       "id = ?1");
  int rc = -EIO;
  if (s && sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC) == SQLITE_OK) {
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
      *out = sqlite3_column_int64(s, 0);
    rc = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
  }
  mg__visit_stmt_done(vs, s);
  return rc;
}

int mg_visit_import(struct mg_visits *vs, const unsigned char *json,
                    size_t len, const char *origin_box, char id_out[33],
                    struct mg_err *err) {
  sqlite3 *db = mg_store_db(mg__visits_store(vs));
  struct mg_json_limits lim = {0, MG_VISIT_EXPORT_MAX};
  struct mg_json *doc = NULL;
  struct mg_json_error je;
  struct mg_visit_person *people = NULL;
  struct mg_visit_value *values = NULL;
  size_t np = 0, nv = 0, blen = 0;
  unsigned char *blob = NULL;
  struct head h;
  struct rd r = {err, 0};
  int64_t have = 0;
  int in_tx = 0, rc;
  char ver[24], facts[96], obj[48], detail[120];

  id_out[0] = 0;
  memset(&h, 0, sizeof(h));
  if (len > MG_VISIT_EXPORT_MAX) {
    rc = mg_err_set(err, -E2BIG, "case export: at most %u bytes",
                    MG_VISIT_EXPORT_MAX);
    goto out;
  }
  if ((rc = mg_json_parse((const char *)json, len, &lim, &doc, &je))) {
    rc = mg_err_set(err, rc == -E2BIG ? -E2BIG : -EINVAL,
                    "case export: not JSON (%s)", je.msg);
    goto out;
  }
  if (doc->type != MG_JSON_OBJECT) {
    rc = mg_err_set(err, -EINVAL, "case export: must be a JSON object");
    goto out;
  }
  read_head(&r, doc, &h);
  if (!r.rc && origin_box && *origin_box) {
    if (strlen(origin_box) > 64 ||
        strspn(origin_box, BOXCHARS) != strlen(origin_box))
      bad(&r, "origin_box: a box name (letters, digits, '.', '_', '-')");
    h.origin_box = origin_box;
  }
  read_personal(&r, doc, &people, &np, &values, &nv);
  if (!r.rc)
    snprintf(id_out, 33, "%s", h.id);
  child_all(&r, vs, doc, h.id, 0); /* everything checked before writing */
  if ((rc = r.rc))
    goto out;
  if ((rc = mg__visit_seal_personal(vs, h.id, people, np, h.free_text,
                                    h.token, values, nv, &blob, &blen))) {
    rc = mg_err_set(err, -EIO, "case export: cannot seal the personal data");
    goto out;
  }
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
    rc = mg_err_set(err, -EIO, "the case could not be imported (database "
                    "error)");
    goto out;
  }
  in_tx = 1;
  rc = stored_version(vs, h.id, &have);
  if (rc == 0 && have >= h.version) {
    rc = mg_err_set(err, -ESTALE, "case: version %lld is not newer than "
                    "version %lld stored here (last writer wins)",
                    (long long)h.version, (long long)have);
    goto out;
  }
  if (rc && rc != -ENOENT) {
    rc = mg_err_set(err, -EIO, "the case could not be imported (database "
                    "error)");
    goto out;
  }
  /* an older copy goes with its rows (ON DELETE CASCADE); its pending
   * snapshot is superseded too: the newer version is the tenant's */
  const char *ida[] = {h.id};
  if (rc == 0 &&
      (run(vs, "DELETE FROM visits WHERE id = ?1", ida, 1, NULL, 0) ||
       run(vs, "DELETE FROM outbox WHERE kind = 'case' AND ref = ?1 AND "
               "acked_at IS NULL", ida, 1, NULL, 0))) {
    rc = mg_err_set(err, -EIO, "the older copy of the case could not be "
                    "replaced (database error)");
    goto out;
  }
  snprintf(ver, sizeof(ver), "%lld", (long long)h.version);
  snprintf(facts, sizeof(facts),
           "{\"has_mynumber_card\":%s,\"foreign_resident\":%s}",
           h.card ? "true" : "false", h.foreign ? "true" : "false");
  const char *va[] = {h.id, h.number, h.token_sha256, h.life_event,
                      h.pack_commit, h.counter, h.created_by, h.created_at,
                      h.filing_date, h.status, h.closed_at, h.purge_after,
                      h.support_counter, facts, h.updated_at, ver,
                      h.origin_box};
  rc = run(vs, "INSERT INTO visits (id, number, token_hash, life_event, "
               "pack_commit, counter, created_by, created_at, filing_date, "
               "status, closed_at, purge_after, support_counter, facts, "
               "updated_at, version, origin_box, personal) VALUES (?1, ?2, "
               "?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
               "?16, ?17, ?18)",
           va, 17, blob, blen);
  if (rc != SQLITE_OK) {
    rc = (rc & 0xff) == SQLITE_CONSTRAINT
             ? mg_err_set(err, -EEXIST, "case: another case on this box has "
                          "the same number or continuation token")
             : mg_err_set(err, -EIO, "the case could not be imported "
                          "(database error)");
    goto out;
  }
  child_all(&r, vs, doc, h.id, 1);
  if ((rc = r.rc))
    goto out;
  snprintf(obj, sizeof(obj), "visit:%s", h.id);
  snprintf(detail, sizeof(detail), "v%lld from %s", (long long)h.version,
           h.origin_box ? h.origin_box : "the tenant");
  if (mg_audit_append(mg__visits_store(vs), time(NULL), "-", "-",
                      "visit.import", obj, detail)) {
    rc = mg_err_set(err, -EIO, "the import could not be audited");
    goto out;
  }
  in_tx = 0;
  if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    rc = mg_err_set(err, -EIO, "the case could not be imported (database "
                    "error)");
    goto out;
  }
  mg_log_info("visit", "case %s v%lld imported (from %s)", h.id,
              (long long)h.version, h.origin_box ? h.origin_box : "tenant");
out:
  if (in_tx)
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  free(blob);
  free(people);
  free(values);
  json_wipe(doc);
  mg_json_free(doc);
  return rc;
}
