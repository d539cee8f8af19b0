/*
 * visit.c — cases in the database, their guide state and masking
 * (visit.h).  One case is loaded whole for every request: a handful of
 * indexed SELECTs and one AES-GCM open, far below a millisecond, and no
 * cache that could serve stale or unmasked data.
 */
#include "visit.h"
#include "visit_internal.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "auth.h"
#include "log.h"
#include "outbox.h"
#include "pack.h"
#include "visit_cache.h"
#include "visit_transfer.h"

/* An audit row of a read, waiting for the next group commit. */
struct pending_audit {
  time_t at;
  char actor[72], counter[72], action[32], object[48];
  char *detail;
};

#define AUDIT_BATCH 256
#define STMT_CACHE 48

struct mg_visits {
  struct mg_store *st;
  const struct mg_key *key;
  struct mg_pack_service *packs;
  const struct mg_config *cfg;
  struct pending_audit q[AUDIT_BATCH];
  size_t nq;
  struct {
    const char *sql; /* a static text: the key is its address */
    sqlite3_stmt *s;
  } sc[STMT_CACHE];
  size_t nsc;
  /* issue 8: one more step inside the next change's transaction (the
   * submission's outbox row), and who hears of a row queued for the
   * tenant (the daemon kicks the sync client; visits know nothing of it) */
  int (*tx_hook)(void *ud);
  void *tx_hook_ud;
  void (*on_queued)(void *ud);
  void *on_queued_ud;
  /* a case snapshot was queued since the daemon last asked: it kicks the
   * sync client on its 250 ms flush tick (debounced; C1, G5) */
  int cases_queued;
  /* case states as the API shows them (visit_cache.h): wiped on purge */
  struct mg_visit_cache *cache;
};

/* Prepared statements of static SQL texts, parsed once for the daemon's
 * life instead of per request (the case is loaded with six statements on
 * every request).  Returned reset and unbound; stmt_done resets it again so
 * no read transaction stays open.  Past the cache's size a statement is
 * prepared per use and finalized. */
sqlite3_stmt *mg__visit_stmt(struct mg_visits *vs, const char *sql) {
  sqlite3_stmt *s = NULL;
  for (size_t i = 0; i < vs->nsc; i++)
    if (vs->sc[i].sql == sql) {
      sqlite3_reset(vs->sc[i].s);
      sqlite3_clear_bindings(vs->sc[i].s);
      return vs->sc[i].s;
    }
  if (sqlite3_prepare_v3(mg_store_db(vs->st), sql, -1,
                         vs->nsc < STMT_CACHE ? SQLITE_PREPARE_PERSISTENT : 0,
                         &s, NULL) != SQLITE_OK) {
    sqlite3_finalize(s);
    return NULL;
  }
  if (vs->nsc < STMT_CACHE) {
    vs->sc[vs->nsc].sql = sql;
    vs->sc[vs->nsc++].s = s;
  }
  return s;
}

void mg__visit_stmt_done(struct mg_visits *vs, sqlite3_stmt *s) {
  for (size_t i = 0; s && i < vs->nsc; i++)
    if (vs->sc[i].s == s) {
      sqlite3_reset(s);
      return;
    }
  sqlite3_finalize(s);
}

/* ---------------------------------------------------------------------- */
/* Small helpers                                                          */


static void hexlify(const unsigned char *in, size_t n, char *out) {
  static const char hx[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hx[in[i] >> 4];
    out[2 * i + 1] = hx[in[i] & 15];
  }
  out[2 * n] = 0;
}

static int token_hash(const char *token, char out[65]) {
  return mg_sha256_hex(token, strlen(token), out);
}

/* "1234-5678", "1234 5678" or "12345678" into 8 digits, check digit
 * verified (typed at a counter, or given to search). */
static int number_digits(const char *in, char out[9], struct mg_err *err) {
  size_t n = 0;
  for (const char *p = in; *p; p++) {
    if (*p == '-' || *p == ' ')
      continue;
    if (*p < '0' || *p > '9' || n >= 8)
      return mg_err_set(err, -EINVAL, "number: a procedure number is 8 digits");
    out[n++] = *p;
  }
  out[n] = 0;
  if (n != 8)
    return mg_err_set(err, -EINVAL, "number: a procedure number is 8 digits");
  if (!mg_luhn_ok(out))
    return mg_err_set(err, -EINVAL, "number: the check digit does not match "
                      "(a digit mistyped?)");
  return 0;
}

static int new_number(char out[9]) {
  unsigned char r[8];
  if (RAND_bytes(r, sizeof(r)) != 1)
    return -EIO;
  /* a leading 0 would be lost by spreadsheets and people alike */
  out[0] = (char)('1' + r[0] % 9);
  for (int i = 1; i < 7; i++)
    out[i] = (char)('0' + r[i] % 10);
  out[7] = mg_luhn_digit(out, 7);
  out[8] = 0;
  return 0;
}

static void col_copy(sqlite3_stmt *s, int i, char *out, size_t len) {
  const unsigned char *t = sqlite3_column_text(s, i);
  snprintf(out, len, "%s", t ? (const char *)t : "");
}

static int db_fail(sqlite3 *db, struct mg_err *err, const char *what) {
  mg_log_err("visit", "database: %s: %s", what, sqlite3_errmsg(db));
  return mg_err_set(err, -EIO, "the case could not be %s (database error)",
                    what);
}

/* Run one statement binding text parameters (NULL binds NULL). */
static int exec_args(struct mg_visits *vs, const char *sql,
                     const char *const *args, int n) {
  sqlite3_stmt *s = mg__visit_stmt(vs, sql);
  int rc = s ? SQLITE_OK : SQLITE_ERROR;
  for (int i = 0; rc == SQLITE_OK && i < n; i++)
    rc = sqlite3_bind_text(s, i + 1, args[i], -1, SQLITE_TRANSIENT);
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(s);
    rc = rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
  }
  mg__visit_stmt_done(vs, s);
  return rc;
}

static int begin(sqlite3 *db) {
  return sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
}

static int finish(sqlite3 *db, int ok) {
  if (ok)
    return sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return SQLITE_ERROR;
}

/* Reads are audited in groups: one transaction (one fsync) per batch
 * instead of one per GET.  Changes write their audit row in their own
 * transaction (apply). */
void mg_visits_audit(struct mg_visits *vs, const struct mg_visit_actor *a,
                     const char *action, const char *visit_id,
                     const char *detail) {
  if (vs->nq == AUDIT_BATCH)
    mg_visits_flush(vs);
  struct pending_audit *p = &vs->q[vs->nq];
  p->at = time(NULL);
  snprintf(p->actor, sizeof(p->actor), "%s", a ? a->user : "-");
  snprintf(p->counter, sizeof(p->counter), "%s", a ? a->counter : "-");
  snprintf(p->action, sizeof(p->action), "%s", action);
  snprintf(p->object, sizeof(p->object), "visit:%s", visit_id ? visit_id : "-");
  if (!(p->detail = strdup(detail ? detail : ""))) {
    mg_log_err("visit", "out of memory: an audit row of %s is lost", action);
    return;
  }
  vs->nq++;
}

int mg_visits_flush(struct mg_visits *vs) {
  sqlite3 *db;
  int ok;
  if (vs) /* the daemon's 250 ms tick: cached residents' data ages out */
    mg_visit_cache_expire(vs->cache, mg_visit_cache_now());
  if (!vs || !vs->nq)
    return 0;
  db = mg_store_db(vs->st);
  ok = begin(db) == SQLITE_OK;
  for (size_t i = 0; ok && i < vs->nq; i++) {
    struct pending_audit *p = &vs->q[i];
    ok = mg_audit_append(vs->st, p->at, p->actor, p->counter, p->action,
                         p->object, p->detail) == 0;
  }
  ok = finish(db, ok) == SQLITE_OK;
  if (!ok)
    mg_log_err("visit", "%zu audit row(s) of reads could not be written", vs->nq);
  for (size_t i = 0; i < vs->nq; i++)
    free(vs->q[i].detail);
  vs->nq = 0;
  return ok ? 0 : -EIO;
}

/* ---------------------------------------------------------------------- */
/* Personal data: sealed JSON                                             */

static void person_free(struct mg_visit_person *p) {
  if (p->name)
    OPENSSL_cleanse(p->name, strlen(p->name));
  if (p->address)
    OPENSSL_cleanse(p->address, strlen(p->address));
  free(p->name);
  free(p->kana);
  free(p->address);
}

int mg__visit_seal_personal(struct mg_visits *vs, const char *id,
                            const struct mg_visit_person *people, size_t n,
                            const char *free_text, const char *token,
                            const struct mg_visit_value *values, size_t nv,
                            unsigned char **blob, size_t *blen) {
  struct mg_buf b;
  struct mg_jw w;
  char date[16];
  int rc;
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  mg_jw_obj(&w);
  mg_jw_key(&w, "people");
  mg_jw_arr(&w);
  for (size_t i = 0; i < n; i++) {
    mg_jw_obj(&w);
    mg_jw_kstr(&w, "name", people[i].name);
    mg_jw_kstr(&w, "kana", people[i].kana);
    mg_jw_kstr(&w, "address", people[i].address);
    if (people[i].birth.y) {
      mg_date_format(&people[i].birth, date, sizeof(date));
      mg_jw_kstr(&w, "birth_date", date);
    }
    mg_jw_kbool(&w, "support", people[i].support);
    mg_jw_obj_end(&w);
  }
  mg_jw_arr_end(&w);
  mg_jw_kstr(&w, "free_text", free_text ? free_text : "");
  mg_jw_kstr(&w, "token", token); /* to print the slip again anywhere */
  mg_jw_key(&w, "values");
  mg_jw_arr(&w);
  for (size_t i = 0; i < nv; i++) {
    const struct mg_visit_value *x = &values[i];
    mg_jw_obj(&w);
    mg_jw_kstr(&w, "k", x->key);
    mg_jw_kint(&w, "r", x->row);
    mg_jw_kstr(&w, "v", x->text);
    mg_jw_kstr(&w, "s", x->source);
    mg_jw_kstr(&w, "f", x->form);
    mg_jw_kstr(&w, "b", x->by);
    mg_jw_kstr(&w, "c", x->counter);
    mg_jw_kstr(&w, "t", x->at);
    mg_jw_obj_end(&w);
  }
  mg_jw_arr_end(&w);
  mg_jw_obj_end(&w);
  rc = b.oom ? -ENOMEM : mg_seal(vs->key, id, b.data, b.len, blob, blen);
  if (b.data)
    OPENSSL_cleanse(b.data, b.len);
  mg_buf_free(&b);
  return rc;
}

static const char *str_or_empty(const char *s) { return s ? s : ""; }

static int open_personal(struct mg_visits *vs, struct mg_visit *v,
                         const void *blob, size_t blen) {
  unsigned char *plain = NULL;
  size_t plen = 0;
  struct mg_json *doc = NULL;
  struct mg_json_error jerr;
  const struct mg_json *arr;
  int rc = mg_open(vs->key, v->id, blob, blen, &plain, &plen);
  if (rc)
    goto out;
  if (mg_json_parse((const char *)plain, plen, NULL, &doc, &jerr) ||
      !(arr = mg_json_get(doc, "people")) || arr->type != MG_JSON_ARRAY) {
    rc = -EBADMSG;
    goto out;
  }
  v->people = calloc(arr->u.arr.n ? arr->u.arr.n : 1, sizeof(*v->people));
  v->free_text = strdup(str_or_empty(mg_json_get_str(doc, "free_text")));
  snprintf(v->token, sizeof(v->token), "%s",
           str_or_empty(mg_json_get_str(doc, "token")));
  if (!v->people || !v->free_text) {
    rc = -ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < arr->u.arr.n; i++) {
    const struct mg_json *o = arr->u.arr.items[i];
    struct mg_visit_person *p = &v->people[v->n_people++];
    const char *bd = mg_json_get_str(o, "birth_date");
    p->name = strdup(str_or_empty(mg_json_get_str(o, "name")));
    p->kana = strdup(str_or_empty(mg_json_get_str(o, "kana")));
    p->address = strdup(str_or_empty(mg_json_get_str(o, "address")));
    p->support = mg_json_get_bool(o, "support") == 1;
    if (bd)
      mg_date_parse(bd, &p->birth);
    if (!p->name || !p->kana || !p->address) {
      rc = -ENOMEM;
      goto out;
    }
  }
  const struct mg_json *vals = mg_json_get(doc, "values");
  if (vals && vals->type == MG_JSON_ARRAY && vals->u.arr.n) {
    if (!(v->values = calloc(vals->u.arr.n, sizeof(*v->values)))) {
      rc = -ENOMEM;
      goto out;
    }
    for (size_t i = 0; i < vals->u.arr.n; i++) {
      const struct mg_json *o = vals->u.arr.items[i];
      struct mg_visit_value *x = &v->values[v->n_values++];
      int64_t row = 0;
      mg_json_get_int(o, "r", &row);
      x->row = (long)row;
      x->key = strdup(str_or_empty(mg_json_get_str(o, "k")));
      x->text = strdup(str_or_empty(mg_json_get_str(o, "v")));
      snprintf(x->source, sizeof(x->source), "%s",
               str_or_empty(mg_json_get_str(o, "s")));
      snprintf(x->form, sizeof(x->form), "%s",
               str_or_empty(mg_json_get_str(o, "f")));
      snprintf(x->by, sizeof(x->by), "%s", str_or_empty(mg_json_get_str(o, "b")));
      snprintf(x->counter, sizeof(x->counter), "%s",
               str_or_empty(mg_json_get_str(o, "c")));
      snprintf(x->at, sizeof(x->at), "%s", str_or_empty(mg_json_get_str(o, "t")));
      if (!x->key || !x->text) {
        rc = -ENOMEM;
        goto out;
      }
    }
  }
out:
  if (plain)
    OPENSSL_cleanse(plain, plen);
  free(plain);
  mg_json_free(doc);
  return rc;
}

/* A note's associated data: its case, author and time, so that no other
 * sealed blob (the case's personal data, another note) opens as this note. */
void mg__note_aad(const char *id, const char *author, const char *at,
                 char out[200]) {
  snprintf(out, 200, "%s/note/%s/%s", id, author, at);
}

/* ---------------------------------------------------------------------- */
/* Loading                                                                */

void mg_visit_free(struct mg_visit *v) {
  if (!v)
    return;
  for (size_t i = 0; i < v->n_people; i++)
    person_free(&v->people[i]);
  free(v->people);
  free(v->free_text);
  OPENSSL_cleanse(v->token, sizeof(v->token));
  for (size_t i = 0; i < v->n_answers; i++)
    free((char *)v->answers[i].question);
  free(v->answers);
  for (size_t i = 0; i < v->n_manual; i++)
    free((char *)v->manual[i].procedure);
  free(v->manual);
  free(v->statuses);
  for (size_t i = 0; i < v->n_notes; i++)
    free(v->notes[i].text);
  free(v->notes);
  for (size_t i = 0; i < v->n_values; i++)
    mg__visit_value_free(&v->values[i]);
  free(v->values);
  free(v->form_rows);
  free(v->apps);
  free(v);
}

static int load_rows(struct mg_visits *vs, struct mg_visit *v,
                     const struct mg_visit_actor *a) {
  sqlite3_stmt *s = NULL;
  char now[24];
  int rc = 0;
  mg_store_time(time(NULL), now);

#define PREP(sql)                                                            \
  do {                                                                       \
    mg__visit_stmt_done(vs, s);                                                        \
    if (!(s = mg__visit_stmt(vs, sql)) ||                                              \
        sqlite3_bind_text(s, 1, v->id, -1, SQLITE_STATIC) != SQLITE_OK) {    \
      rc = -EIO;                                                             \
      goto out;                                                              \
    }                                                                        \
  } while (0)

  PREP("SELECT question, answer FROM visit_answers WHERE visit_id = ?1 "
       "ORDER BY at");
  while (sqlite3_step(s) == SQLITE_ROW) {
    void *n = realloc(v->answers, (v->n_answers + 1) * sizeof(*v->answers));
    if (!n)
      goto oom;
    v->answers = n;
    v->answers[v->n_answers].question =
        strdup((const char *)sqlite3_column_text(s, 0));
    v->answers[v->n_answers].yes = sqlite3_column_int(s, 1);
    if (!v->answers[v->n_answers++].question)
      goto oom;
  }
  PREP("SELECT procedure, action FROM visit_manual WHERE visit_id = ?1 "
       "ORDER BY at");
  while (sqlite3_step(s) == SQLITE_ROW) {
    void *n = realloc(v->manual, (v->n_manual + 1) * sizeof(*v->manual));
    if (!n)
      goto oom;
    v->manual = n;
    v->manual[v->n_manual].procedure =
        strdup((const char *)sqlite3_column_text(s, 0));
    v->manual[v->n_manual].add =
        strcmp((const char *)sqlite3_column_text(s, 1), "add") == 0;
    if (!v->manual[v->n_manual++].procedure)
      goto oom;
  }
  PREP("SELECT procedure, counter, status, by_user, at FROM visit_status "
       "WHERE visit_id = ?1 ORDER BY at");
  while (sqlite3_step(s) == SQLITE_ROW) {
    void *n = realloc(v->statuses, (v->n_statuses + 1) * sizeof(*v->statuses));
    if (!n)
      goto oom;
    v->statuses = n;
    struct mg_visit_status *x = &v->statuses[v->n_statuses++];
    col_copy(s, 0, x->procedure, sizeof(x->procedure));
    col_copy(s, 1, x->counter, sizeof(x->counter));
    col_copy(s, 2, x->status, sizeof(x->status));
    col_copy(s, 3, x->by, sizeof(x->by));
    col_copy(s, 4, x->at, sizeof(x->at));
  }
  PREP("SELECT author, counter, at, body FROM visit_notes WHERE visit_id = ?1 "
       "ORDER BY id");
  char aad[200];
  while (sqlite3_step(s) == SQLITE_ROW) {
    void *n = realloc(v->notes, (v->n_notes + 1) * sizeof(*v->notes));
    unsigned char *plain = NULL;
    size_t plen = 0;
    if (!n)
      goto oom;
    v->notes = n;
    struct mg_visit_note *x = &v->notes[v->n_notes];
    memset(x, 0, sizeof(*x));
    col_copy(s, 0, x->author, sizeof(x->author));
    col_copy(s, 1, x->counter, sizeof(x->counter));
    col_copy(s, 2, x->at, sizeof(x->at));
    mg__note_aad(v->id, x->author, x->at, aad);
    if (mg_open(vs->key, aad, sqlite3_column_blob(s, 3),
                (size_t)sqlite3_column_bytes(s, 3), &plain, &plen)) {
      rc = -EIO;
      goto out;
    }
    x->text = (char *)plain;
    v->n_notes++;
  }
  PREP("SELECT instance, form, action FROM visit_forms WHERE visit_id = ?1 "
       "ORDER BY at, instance");
  while (sqlite3_step(s) == SQLITE_ROW) {
    void *n = realloc(v->form_rows, (v->n_form_rows + 1) * sizeof(*v->form_rows));
    if (!n)
      goto oom;
    v->form_rows = n;
    struct mg_visit_form_row *x = &v->form_rows[v->n_form_rows++];
    col_copy(s, 0, x->instance, sizeof(x->instance));
    col_copy(s, 1, x->form, sizeof(x->form));
    x->add = strcmp((const char *)sqlite3_column_text(s, 2), "add") == 0;
  }
  PREP("SELECT id, form, submitted_at, submitted_by, counter, "
       "IFNULL(exported_at, '') FROM applications WHERE visit_id = ?1 "
       "ORDER BY submitted_at, id");
  while (sqlite3_step(s) == SQLITE_ROW) {
    void *n = realloc(v->apps, (v->n_apps + 1) * sizeof(*v->apps));
    if (!n)
      goto oom;
    v->apps = n;
    struct mg_visit_app *x = &v->apps[v->n_apps++];
    col_copy(s, 0, x->id, sizeof(x->id));
    col_copy(s, 1, x->form, sizeof(x->form));
    col_copy(s, 2, x->at, sizeof(x->at));
    col_copy(s, 3, x->by, sizeof(x->by));
    col_copy(s, 4, x->counter, sizeof(x->counter));
    col_copy(s, 5, x->exported_at, sizeof(x->exported_at));
  }
  PREP("SELECT 1 FROM visit_signature WHERE visit_id = ?1");
  v->has_signature = sqlite3_step(s) == SQLITE_ROW;
  PREP("SELECT until FROM visit_unmask WHERE visit_id = ?1 AND counter = ?2 "
       "AND until > ?3");
  sqlite3_bind_text(s, 2, a ? a->counter : "", -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 3, now, -1, SQLITE_STATIC);
  if (sqlite3_step(s) == SQLITE_ROW)
    col_copy(s, 0, v->unmasked_until, sizeof(v->unmasked_until));
#undef PREP
  goto out;
oom:
  rc = -ENOMEM;
out:
  mg__visit_stmt_done(vs, s);
  return rc;
}

/* Load by a column (id, token_hash or number). */
static int load_by(struct mg_visits *vs, const struct mg_visit_actor *a,
                   const char *col, const char *value, struct mg_visit **out,
                   struct mg_err *err) {
  sqlite3 *db = mg_store_db(vs->st);
  sqlite3_stmt *s = NULL;
  struct mg_visit *v = NULL;
  struct mg_json *facts = NULL;
  struct mg_json_error jerr;
  int rc;
#define CASE_COLS                                                            \
  "SELECT id, number, life_event, pack_commit, counter, created_by, "        \
  "created_at, filing_date, status, IFNULL(closed_at, ''), "                 \
  "IFNULL(support_counter, ''), facts, personal FROM visits WHERE "
  static const char *const by_id = CASE_COLS "id = ?1",
                           *const by_token = CASE_COLS "token_hash = ?1",
                           *const by_number = CASE_COLS "number = ?1";
#undef CASE_COLS
  const char *sql = strcmp(col, "id") == 0           ? by_id
                    : strcmp(col, "token_hash") == 0 ? by_token
                                                     : by_number;

  *out = NULL;
  if (!(s = mg__visit_stmt(vs, sql)) ||
      sqlite3_bind_text(s, 1, value, -1, SQLITE_STATIC) != SQLITE_OK) {
    rc = db_fail(db, err, "read");
    goto out;
  }
  rc = sqlite3_step(s);
  if (rc != SQLITE_ROW) {
    rc = rc == SQLITE_DONE ? mg_err_set(err, -ENOENT, "no such case")
                           : db_fail(db, err, "read");
    goto out;
  }
  if (!(v = calloc(1, sizeof(*v)))) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  col_copy(s, 0, v->id, sizeof(v->id));
  col_copy(s, 1, v->number, sizeof(v->number));
  col_copy(s, 2, v->life_event, sizeof(v->life_event));
  col_copy(s, 3, v->pack_commit, sizeof(v->pack_commit));
  col_copy(s, 4, v->counter, sizeof(v->counter));
  col_copy(s, 5, v->created_by, sizeof(v->created_by));
  col_copy(s, 6, v->created_at, sizeof(v->created_at));
  col_copy(s, 7, v->filing_date, sizeof(v->filing_date));
  col_copy(s, 8, v->status, sizeof(v->status));
  col_copy(s, 9, v->closed_at, sizeof(v->closed_at));
  col_copy(s, 10, v->support_counter, sizeof(v->support_counter));
  const char *ft = (const char *)sqlite3_column_text(s, 11);
  if (ft && mg_json_parse(ft, strlen(ft), NULL, &facts, &jerr) == 0) {
    v->has_mynumber_card = mg_json_get_bool(facts, "has_mynumber_card") == 1;
    v->foreign_resident = mg_json_get_bool(facts, "foreign_resident") == 1;
  }
  rc = open_personal(vs, v, sqlite3_column_blob(s, 12),
                     (size_t)sqlite3_column_bytes(s, 12));
  if (rc == 0)
    rc = load_rows(vs, v, a);
  if (rc) {
    mg_log_err("visit", "case %s cannot be read (%s)", v->id, strerror(-rc));
    rc = mg_err_set(err, rc == -ENOMEM ? -ENOMEM : -EIO,
                    "the case cannot be read");
    goto out;
  }
  *out = v;
  v = NULL;
out:
  mg__visit_stmt_done(vs, s);
  mg_json_free(facts);
  mg_visit_free(v);
  return rc;
}

int mg_visit_get(struct mg_visits *vs, const struct mg_visit_actor *a,
                 const char *id, struct mg_visit **out, struct mg_err *err) {
  if (strlen(id) != 32 || strspn(id, "0123456789abcdef") != 32) {
    *out = NULL;
    return mg_err_set(err, -ENOENT, "no such case");
  }
  return load_by(vs, a, "id", id, out, err);
}

int mg_visit_by_token(struct mg_visits *vs, const struct mg_visit_actor *a,
                      const char *token, struct mg_visit **out,
                      struct mg_err *err) {
  char h[65];
  *out = NULL;
  if (strncmp(token, "MG1:", 4) == 0)
    token += 4;
  if (strlen(token) != 43 ||
      strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                    "0123456789-_") != 43)
    return mg_err_set(err, -EINVAL, "token: not a continuation token (43 "
                      "base64url characters, optionally after \"MG1:\")");
  if (token_hash(token, h))
    return mg_err_set(err, -EIO, "cannot hash the token");
  int rc = load_by(vs, a, "token_hash", h, out, err);
  if (rc == -ENOENT)
    mg_err_set(err, rc, "no case has this continuation token");
  return rc;
}

int mg_visit_by_number(struct mg_visits *vs, const struct mg_visit_actor *a,
                       const char *number, struct mg_visit **out,
                       struct mg_err *err) {
  char digits[9];
  *out = NULL;
  int rc = number_digits(number, digits, err);
  if (rc)
    return rc;
  rc = load_by(vs, a, "number", digits, out, err);
  if (rc == -ENOENT)
    mg_err_set(err, rc, "no case has this procedure number");
  return rc;
}

/* ---------------------------------------------------------------------- */
/* The case's pack and guide                                              */

struct mg_pack_use *mg_visits_pack(struct mg_visits *vs,
                                   const struct mg_visit *v) {
  return mg_pack_service_acquire_commit(vs->packs, v->pack_commit);
}

void mg_visits_pack_release(struct mg_visits *vs, struct mg_pack_use *u) {
  mg_pack_service_release(vs->packs, u);
}

int mg_visit_guide(const struct mg_visit *v, const struct mg_pack *p,
                   struct mg_guide_input *in, struct mg_date *births,
                   struct mg_guide_state *st) {
  memset(in, 0, sizeof(*in));
  in->pack = p;
  in->life_event = v->life_event;
  if (mg_date_parse(v->filing_date, &in->filing))
    mg_date_today(&in->filing);
  for (size_t i = 0; i < v->n_people && i < MG_GUIDE_MAX_PEOPLE; i++)
    births[i] = v->people[i].birth;
  in->births = births;
  in->n_people = v->n_people < MG_GUIDE_MAX_PEOPLE ? v->n_people
                                                     : MG_GUIDE_MAX_PEOPLE;
  in->has_mynumber_card = v->has_mynumber_card;
  in->foreign_resident = v->foreign_resident;
  in->answers = v->answers;
  in->n_answers = v->n_answers;
  in->manual = v->manual;
  in->n_manual = v->n_manual;
  return mg_guide_compute(in, st);
}

/* ---------------------------------------------------------------------- */
/* Creating                                                               */

const struct mg_key *mg__visits_key(struct mg_visits *vs) { return vs->key; }
struct mg_store *mg__visits_store(struct mg_visits *vs) { return vs->st; }

int mg__visits_sync(struct mg_visits *vs) { return mg_store_sync(vs->st); }

void mg__visit_tx_hook(struct mg_visits *vs, int (*fn)(void *ud), void *ud) {
  vs->tx_hook = fn;
  vs->tx_hook_ud = ud;
}

void mg_visits_set_on_queued(struct mg_visits *vs, void (*fn)(void *ud),
                             void *ud) {
  vs->on_queued = fn;
  vs->on_queued_ud = ud;
}

void mg__visits_queued(struct mg_visits *vs) {
  if (vs->on_queued)
    vs->on_queued(vs->on_queued_ud);
}

int mg_visits_take_cases_queued(struct mg_visits *vs) {
  int q = vs && vs->cases_queued;
  if (vs)
    vs->cases_queued = 0;
  return q;
}

/* Case versions grow with time (C1, G5): a change makes
 * max(version + 1, microseconds since the epoch), so two boxes that
 * change the same version make different versions and the later change
 * is the greater (the tenant keeps the greatest; an equal version with
 * other content would be refused as a conflict, docs/tenant-api.md).  A
 * clock behind the stored version still moves it on by one. */
static int64_t clock_us(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
    return 0;
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int mg_visits_create(struct mg_store *st, const struct mg_key *key,
                     struct mg_pack_service *packs, const struct mg_config *cfg,
                     struct mg_visits **out) {
  struct mg_visits *vs = calloc(1, sizeof(*vs));
  if (!vs)
    return -ENOMEM;
  vs->st = st;
  vs->key = key;
  vs->packs = packs;
  vs->cfg = cfg;
  if (mg_visit_cache_create(&vs->cache)) {
    free(vs);
    return -ENOMEM;
  }
  *out = vs;
  return 0;
}

struct mg_visit_cache *mg__visits_cache(struct mg_visits *vs) {
  return vs ? vs->cache : NULL;
}

void mg_visits_free(struct mg_visits *vs) {
  mg_visits_flush(vs);
  for (size_t i = 0; vs && i < vs->nsc; i++)
    sqlite3_finalize(vs->sc[i].s);
  if (vs)
    mg_visit_cache_free(vs->cache);
  free(vs);
}

static int check_people(const struct mg_visit_person *people, size_t n,
                        struct mg_err *err) {
  if (n > MG_GUIDE_MAX_PEOPLE)
    return mg_err_set(err, -EINVAL, "people: at most %d people in a case",
                      MG_GUIDE_MAX_PEOPLE);
  for (size_t i = 0; i < n; i++) {
    const struct mg_visit_person *p = &people[i];
    if (strlen(str_or_empty(p->name)) > 200 ||
        strlen(str_or_empty(p->kana)) > 200 ||
        strlen(str_or_empty(p->address)) > 600)
      return mg_err_set(err, -EINVAL, "people[%zu]: a name or kana is at "
                        "most 200 bytes, an address 600", i);
  }
  return 0;
}

int mg_visit_new(struct mg_visits *vs, const struct mg_visit_actor *a,
                 const char *life_event, const struct mg_date *filing,
                 const struct mg_visit_person *people, size_t n_people,
                 int has_mynumber_card, int foreign_resident,
                 struct mg_visit **out, char token[64], struct mg_err *err) {
  sqlite3 *db = mg_store_db(vs->st);
  struct mg_pack_use *u = mg_pack_service_acquire(vs->packs);
  const struct mg_pack *p = u ? mg_pack_use_model(u) : NULL;
  unsigned char raw[16], *blob = NULL;
  size_t blen = 0;
  char id[33], number[9], th[65], now[24], fdate[16];
  struct mg_date f;
  const struct mg_pack_life_event *le = p ? mg_pack_life_event(p, life_event)
                                          : NULL;
  int rc;

  *out = NULL;
  if (!p) {
    rc = mg_err_set(err, -ENODATA, "no procedure pack is active on this box");
    goto out;
  }
  if (!le) {
    rc = mg_err_set(err, -ENOENT, "life_event: no life event \"%.64s\" in "
                    "the active pack", life_event);
    goto out;
  }
  if (!mg_pack_list_has(&le->counters, a->counter)) {
    rc = mg_err_set(err, -EINVAL, "life_event: \"%s\" is not offered at "
                    "counter %s", life_event, a->counter);
    goto out;
  }
  if ((rc = check_people(people, n_people, err)))
    goto out;
  if (filing)
    f = *filing;
  else
    mg_date_today(&f);
  mg_date_format(&f, fdate, sizeof(fdate));
  mg_store_time(time(NULL), now);
  if (RAND_bytes(raw, sizeof(raw)) != 1 || mg_auth_random_b64url(32, token) ||
      token_hash(token, th)) {
    rc = mg_err_set(err, -EIO, "no random bytes");
    goto out;
  }
  hexlify(raw, sizeof(raw), id);
  if ((rc = mg__visit_seal_personal(vs, id, people, n_people, "", token, NULL,
                                    0, &blob, &blen))) {
    rc = mg_err_set(err, rc, "cannot seal the personal data");
    goto out;
  }
  /* The case and its audit row in one transaction.  A random number may
   * collide with a kept case: draw again. */
  if (begin(db) != SQLITE_OK) {
    rc = db_fail(db, err, "created");
    goto out;
  }
  for (int tries = 0;; tries++) {
    sqlite3_stmt *s = NULL;
    char facts[96];
    snprintf(facts, sizeof(facts),
             "{\"has_mynumber_card\":%s,\"foreign_resident\":%s}",
             has_mynumber_card ? "true" : "false",
             foreign_resident ? "true" : "false");
    if (new_number(number)) {
      rc = mg_err_set(err, -EIO, "no random bytes");
      goto out;
    }
    rc = sqlite3_prepare_v2(
        db,
        "INSERT INTO visits (id, number, token_hash, life_event, pack_commit, "
        "counter, created_by, created_at, filing_date, facts, personal, "
        "updated_at, version) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?8,1)",
        -1, &s, NULL);
    const char *txt[] = {id, number, th, life_event, mg_pack_use_commit(u),
                         a->counter, a->user, now, fdate, facts};
    for (int i = 0; rc == SQLITE_OK && i < 10; i++)
      rc = sqlite3_bind_text(s, i + 1, txt[i], -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
      rc = sqlite3_bind_blob(s, 11, blob, (int)blen, SQLITE_STATIC);
    if (rc == SQLITE_OK)
      rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc == SQLITE_DONE)
      break;
    /* extended result codes are on: SQLITE_CONSTRAINT_UNIQUE is a number
     * already in use (drawn again) */
    if ((rc & 0xff) != SQLITE_CONSTRAINT || tries >= 20) {
      rc = db_fail(db, err, "created"); /* before the rollback clears it */
      finish(db, 0);
      goto out;
    }
  }
  char obj[48];
  snprintf(obj, sizeof(obj), "visit:%s", id);
  /* version 1, queued for the tenant with the case (cross-floor, C1) */
  if (finish(db, mg_audit_append(vs->st, time(NULL), a->user, a->counter,
                                 "visit.create", obj, life_event) == 0 &&
                     mg_outbox_case_changed(vs->st, id, 1) == 0) !=
      SQLITE_OK) {
    rc = db_fail(db, err, "created");
    goto out;
  }
  vs->cases_queued = 1;
  mg_log_info("visit", "case %s opened at %s by %s (%zu people)", id,
              a->counter, a->user, n_people);
  rc = load_by(vs, a, "id", id, out, err);
out:
  OPENSSL_cleanse(raw, sizeof(raw));
  free(blob);
  mg_pack_service_release(vs->packs, u);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Changes                                                                */

/* Load an open case and its pack for a change. */
int mg__visit_begin(struct mg_visits *vs, const struct mg_visit_actor *a,
                        const char *id, struct mg__change *c, struct mg_err *err) {
  memset(c, 0, sizeof(*c));
  int rc = mg_visit_get(vs, a, id, &c->v, err);
  if (rc)
    return rc;
  if (strcmp(c->v->status, "open") != 0)
    return mg_err_set(err, -ESTALE, "the case is closed");
  if (!(c->u = mg_visits_pack(vs, c->v)) || !(c->p = mg_pack_use_model(c->u)))
    return mg_err_set(err, -ENODATA, "the pack release of this case (%.12s) "
                      "is no longer on the box", c->v->pack_commit);
  return 0;
}

void mg__visit_end(struct mg_visits *vs, struct mg__change *c) {
  mg_visits_pack_release(vs, c->u);
  mg_visit_free(c->v);
}

/* The one place every change of a case commits through (issue 8, C1, G5):
 * touch updated_at, bump the version (clock_us: versions grow with time)
 * and queue the case's snapshot for the tenant (outbox row, payload
 * exported when the batch is built), inside the change's transaction.  0, -ENOENT (no such case) or -EIO. */
static int bump_version(struct mg_visits *vs, const char *id,
                        const char *now) {
  sqlite3_stmt *s = mg__visit_stmt(
      vs, "UPDATE visits SET updated_at = ?1, version = MAX(version + 1, "
          "?3) WHERE id = ?2 RETURNING version");
  int64_t version = -1;
  int rc = -EIO;
  if (!s || sqlite3_bind_text(s, 1, now, -1, SQLITE_STATIC) != SQLITE_OK ||
      sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC) != SQLITE_OK ||
      sqlite3_bind_int64(s, 3, clock_us()) != SQLITE_OK)
    goto out;
  if ((rc = sqlite3_step(s)) != SQLITE_ROW) {
    rc = rc == SQLITE_DONE ? -ENOENT : -EIO;
    goto out;
  }
  version = sqlite3_column_int64(s, 0);
  rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
out:
  mg__visit_stmt_done(vs, s);
  return rc ? rc : mg_outbox_case_changed(vs->st, id, version);
}

/* Run statements (each with its text args) and the audit row in one
 * transaction, and bump the case's version (bump_version). */
int mg__visit_apply(struct mg_visits *vs, const struct mg_visit_actor *a,
                 const char *id, const struct mg__stmt *sv, size_t n,
                 const char *action, const char *detail, struct mg_err *err) {
  sqlite3 *db = mg_store_db(vs->st);
  char now[24];
  int ok = begin(db) == SQLITE_OK;
  mg_store_time(time(NULL), now);
  for (size_t i = 0; ok && i < n; i++) {
    sqlite3_stmt *s = mg__visit_stmt(vs, sv[i].sql);
    int rc = s ? SQLITE_OK : SQLITE_ERROR;
    for (int k = 0; rc == SQLITE_OK && k < sv[i].n; k++)
      rc = sqlite3_bind_text(s, k + 1, sv[i].args[k], -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && sv[i].blob)
      rc = sqlite3_bind_blob(s, sv[i].n + 1, sv[i].blob, (int)sv[i].blen,
                             SQLITE_STATIC);
    if (rc == SQLITE_OK)
      rc = sqlite3_step(s);
    ok = rc == SQLITE_DONE;
    mg__visit_stmt_done(vs, s);
  }
  ok = ok && bump_version(vs, id, now) == 0;
  ok = ok && (!vs->tx_hook || vs->tx_hook(vs->tx_hook_ud) == 0);
  if (ok) {
    char obj[48];
    snprintf(obj, sizeof(obj), "visit:%s", id);
    ok = mg_audit_append(vs->st, time(NULL), a->user, a->counter, action, obj,
                         detail ? detail : "") == 0;
  }
  if (finish(db, ok) != SQLITE_OK)
    return db_fail(db, err, "changed");
  vs->cases_queued = 1;
  return 0;
}

/* The answer in a loaded case, as a reload would show it (answers are
 * looked up by question: their order does not matter).  0 or -ENOMEM. */
static int set_answer(struct mg_visit *v, const char *question, int yes) {
  void *n;
  char *q;
  for (size_t i = 0; i < v->n_answers; i++)
    if (strcmp(v->answers[i].question, question) == 0) {
      v->answers[i].yes = yes;
      return 0;
    }
  if (!(q = strdup(question)))
    return -ENOMEM;
  if (!(n = realloc(v->answers, (v->n_answers + 1) * sizeof(*v->answers)))) {
    free(q);
    return -ENOMEM;
  }
  v->answers = n;
  v->answers[v->n_answers].question = q;
  v->answers[v->n_answers++].yes = yes;
  return 0;
}

int mg_visit_answer(struct mg_visits *vs, const struct mg_visit_actor *a,
                    const char *id, const char *question, int yes,
                    struct mg_err *err) {
  return mg_visit_answer_get(vs, a, id, question, yes, NULL, err);
}

int mg_visit_answer_get(struct mg_visits *vs, const struct mg_visit_actor *a,
                        const char *id, const char *question, int yes,
                        struct mg_visit **out, struct mg_err *err) {
  struct mg__change c;
  struct mg_guide_input in;
  struct mg_guide_state gs;
  struct mg_date births[MG_GUIDE_MAX_PEOPLE];
  char now[24];
  int rc = mg__visit_begin(vs, a, id, &c, err);
  memset(&gs, 0, sizeof(gs));
  if (rc)
    goto out;
  if ((rc = mg_visit_guide(c.v, c.p, &in, births, &gs))) {
    rc = mg_err_set(err, rc, "the guide cannot be computed");
    goto out;
  }
  const struct mg_guide_question *gq = mg_guide_question(&gs, question);
  if (!gq) {
    rc = mg_err_set(err, -ENOENT, "question: \"%.64s\" is not a question of "
                    "life event %s", question, c.v->life_event);
    goto out;
  }
  if (!gq->asked) {
    rc = mg_err_set(err, -EINVAL, "question: \"%s\" is not asked in this "
                    "case (its condition does not hold)", question);
    goto out;
  }
  mg_store_time(time(NULL), now);
  struct mg__stmt sv[] = {
      {"INSERT INTO visit_answers (visit_id, question, answer, by_user, "
       "counter, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (visit_id, "
       "question) DO UPDATE SET answer = ?3, by_user = ?4, counter = ?5, "
       "at = ?6",
       {id, question, yes ? "1" : "0", a->user, a->counter, now}, 6, NULL, 0}};
  /* the question only: an answer (e.g. to the support-measures question)
   * is the resident's data, and audit rows outlive the case */
  rc = mg__visit_apply(vs, a, id, sv, 1, "visit.answer", question, err);
  /* the case as it is now, without loading it again (issue 4's latency);
   * on no memory the caller loads it */
  if (rc == 0 && out && set_answer(c.v, question, yes) == 0) {
    *out = c.v;
    c.v = NULL;
  }
out:
  mg_guide_state_free(&gs);
  mg__visit_end(vs, &c);
  return rc;
}

/* Rewrite the sealed personal blob. */
int mg__visit_store(struct mg_visits *vs, const struct mg_visit_actor *a,
                          const struct mg_visit *v,
                          const struct mg_visit_person *people,
                          size_t n, const char *free_text,
                          const char *extra_sql, const char *const *extra_args,
                          int n_extra, const char *action, const char *detail,
                          struct mg_err *err) {
  const char *id = v->id;
  unsigned char *blob = NULL;
  size_t blen = 0;
  int rc = mg__visit_seal_personal(vs, id, people, n, free_text, v->token,
                         v->values, v->n_values, &blob, &blen);
  if (rc)
    return mg_err_set(err, rc, "cannot seal the personal data");
  struct mg__stmt sv[2] = {
      {"UPDATE visits SET personal = ?2 WHERE id = ?1", {id}, 1, blob, blen},
      {extra_sql, {NULL}, n_extra, NULL, 0}};
  for (int i = 0; i < n_extra; i++)
    sv[1].args[i] = extra_args[i];
  rc = mg__visit_apply(vs, a, id, sv, extra_sql ? 2 : 1, action, detail, err);
  free(blob);
  return rc;
}

int mg_visit_set_people(struct mg_visits *vs, const struct mg_visit_actor *a,
                        const char *id, const struct mg_visit_person *people,
                        size_t n_people, struct mg_err *err) {
  struct mg__change c;
  struct mg_visit_person *copy = NULL;
  char detail[32];
  int rc = mg__visit_begin(vs, a, id, &c, err);
  if (rc || (rc = check_people(people, n_people, err)))
    goto out;
  /* A counter that sees masked addresses would write them back empty. */
  if (mg_visit_masked(c.v, a, 0)) {
    rc = mg_err_set(err, -EPERM, "the addresses of this case are masked at "
                    "this counter; its people are changed at counter %s",
                    c.v->support_counter);
    goto out;
  }
  /* support flags stay with the people already flagged (by position) */
  if (!(copy = calloc(n_people ? n_people : 1, sizeof(*copy)))) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  memcpy(copy, people, n_people * sizeof(*copy));
  for (size_t i = 0; i < n_people && i < c.v->n_people; i++)
    copy[i].support |= c.v->people[i].support;
  snprintf(detail, sizeof(detail), "%zu people", n_people);
  /* the household screen now holds the basic four: form values typed for
   * them give way (they are read from the people again), except what a
   * card read and the new people still hold unchanged */
  mg__visit_values_drop_people(c.v, copy, n_people);
  rc = mg__visit_store(vs, a, c.v, copy, n_people, c.v->free_text, NULL, NULL, 0,
                      "visit.people", detail, err);
out:
  free(copy);
  mg__visit_end(vs, &c);
  return rc;
}

int mg_visit_manual(struct mg_visits *vs, const struct mg_visit_actor *a,
                    const char *id, const char *procedure, int add,
                    struct mg_err *err) {
  struct mg__change c;
  char now[24];
  int rc = mg__visit_begin(vs, a, id, &c, err);
  if (rc)
    goto out;
  if (!mg_pack_procedure(c.p, procedure)) {
    rc = mg_err_set(err, -ENOENT, "procedure: no procedure \"%.64s\" in the "
                    "pack of this case", procedure);
    goto out;
  }
  mg_store_time(time(NULL), now);
  struct mg__stmt set = {
      "INSERT INTO visit_manual (visit_id, procedure, action, by_user, "
      "counter, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (visit_id, "
      "procedure) DO UPDATE SET action = ?3, by_user = ?4, counter = ?5, "
      "at = ?6",
      {id, procedure, add ? "add" : "remove", a->user, a->counter, now}, 6,
      NULL, 0};
  struct mg__stmt undo = {"DELETE FROM visit_manual WHERE visit_id = ?1 AND "
                      "procedure = ?2",
                      {id, procedure}, 2, NULL, 0};
  rc = mg__visit_apply(vs, a, id, add < 0 ? &undo : &set, 1,
             add < 0 ? "visit.procedure.undo"
             : add   ? "visit.procedure.add"
                     : "visit.procedure.remove",
             procedure, err);
out:
  mg__visit_end(vs, &c);
  return rc;
}

int mg_visit_set_status(struct mg_visits *vs, const struct mg_visit_actor *a,
                        const char *id, const char *procedure,
                        const char *status, struct mg_err *err) {
  struct mg__change c;
  struct mg_guide_input in;
  struct mg_guide_state gs;
  struct mg_date births[MG_GUIDE_MAX_PEOPLE];
  char now[24], detail[128];
  int rc = mg__visit_begin(vs, a, id, &c, err), found = 0;
  memset(&gs, 0, sizeof(gs));
  if (rc)
    goto out;
  if (strcmp(status, "pending") && strcmp(status, "in_progress") &&
      strcmp(status, "done")) {
    rc = mg_err_set(err, -EINVAL, "status: must be pending, in_progress or "
                    "done");
    goto out;
  }
  if ((rc = mg_visit_guide(c.v, c.p, &in, births, &gs))) {
    rc = mg_err_set(err, rc, "the guide cannot be computed");
    goto out;
  }
  for (size_t i = 0; i < gs.n_procs && !found; i++)
    found = strcmp(gs.procs[i].p->id, procedure) == 0 &&
            gs.procs[i].source != MG_GUIDE_REMOVED;
  if (!found) {
    rc = mg_err_set(err, -ENOENT, "procedure: \"%.64s\" is not among the "
                    "procedures of this case", procedure);
    goto out;
  }
  mg_store_time(time(NULL), now);
  struct mg__stmt sv = {
      "INSERT INTO visit_status (visit_id, procedure, counter, status, "
      "by_user, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (visit_id, "
      "procedure, counter) DO UPDATE SET status = ?4, by_user = ?5, at = ?6",
      {id, procedure, a->counter, status, a->user, now}, 6, NULL, 0};
  snprintf(detail, sizeof(detail), "%s=%s", procedure, status);
  rc = mg__visit_apply(vs, a, id, &sv, 1, "visit.status", detail, err);
out:
  mg_guide_state_free(&gs);
  mg__visit_end(vs, &c);
  return rc;
}

/* Characters, not bytes (UTF-8). */
static size_t u8_chars(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    n += ((unsigned char)*s & 0xC0) != 0x80;
  return n;
}

int mg_visit_add_note(struct mg_visits *vs, const struct mg_visit_actor *a,
                      const char *id, const char *text, struct mg_err *err) {
  struct mg__change c;
  unsigned char *blob = NULL;
  size_t blen = 0;
  char now[24], aad[200];
  int rc = mg__visit_begin(vs, a, id, &c, err);
  if (rc)
    goto out;
  if (!*text || u8_chars(text) > MG_VISIT_MAX_TEXT) {
    rc = mg_err_set(err, -EINVAL, "text: a note has 1 to %d characters",
                    MG_VISIT_MAX_TEXT);
    goto out;
  }
  mg_store_time(time(NULL), now);
  mg__note_aad(id, a->user, now, aad);
  if ((rc = mg_seal(vs->key, aad, text, strlen(text), &blob, &blen))) {
    rc = mg_err_set(err, rc, "cannot seal the note");
    goto out;
  }
  struct mg__stmt sv = {"INSERT INTO visit_notes (visit_id, author, counter, at, "
                    "body) VALUES (?1, ?2, ?3, ?4, ?5)",
                    {id, a->user, a->counter, now}, 4, blob, blen};
  rc = mg__visit_apply(vs, a, id, &sv, 1, "visit.note", "", err);
out:
  free(blob);
  mg__visit_end(vs, &c);
  return rc;
}

int mg_visit_set_free_text(struct mg_visits *vs, const struct mg_visit_actor *a,
                           const char *id, const char *text,
                           struct mg_err *err) {
  struct mg__change c;
  int rc = mg__visit_begin(vs, a, id, &c, err);
  if (rc)
    goto out;
  if (u8_chars(text) > MG_VISIT_MAX_TEXT) {
    rc = mg_err_set(err, -EINVAL, "text: at most %d characters",
                    MG_VISIT_MAX_TEXT);
    goto out;
  }
  rc = mg__visit_store(vs, a, c.v, c.v->people, c.v->n_people, text, NULL, NULL,
                      0, "visit.slip_text", "", err);
out:
  mg__visit_end(vs, &c);
  return rc;
}

int mg_visit_support(struct mg_visits *vs, const struct mg_visit_actor *a,
                     const char *id, size_t person, int on,
                     struct mg_err *err) {
  struct mg__change c;
  char detail[48];
  int rc = mg__visit_begin(vs, a, id, &c, err);
  if (rc)
    goto out;
  if (person >= c.v->n_people) {
    rc = mg_err_set(err, -EINVAL, "person: the case has %zu people (0-based "
                    "index)", c.v->n_people);
    goto out;
  }
  if (!on && a->role < MG_ROLE_SUPERVISOR) {
    rc = mg_err_set(err, -EPERM, "only a supervisor may lift support "
                    "measures");
    goto out;
  }
  /* Only the counter that flagged the case sees the address; a second
   * counter flagging someone else does not take that over. */
  if (on && c.v->support_counter[0] &&
      strcmp(c.v->support_counter, a->counter) != 0) {
    rc = mg_err_set(err, -EPERM, "support measures of this case are handled "
                    "at counter %s", c.v->support_counter);
    goto out;
  }
  c.v->people[person].support = on;
  int any = 0;
  for (size_t i = 0; i < c.v->n_people; i++)
    any |= c.v->people[i].support;
  const char *args[] = {id, any ? (c.v->support_counter[0] ? c.v->support_counter
                                                           : a->counter)
                                : NULL};
  snprintf(detail, sizeof(detail), "person %zu %s", person, on ? "on" : "off");
  rc = mg__visit_store(vs, a, c.v, c.v->people, c.v->n_people, c.v->free_text,
                      "UPDATE visits SET support_counter = ?2 WHERE id = ?1",
                      args, 2, on ? "visit.support.on" : "visit.support.off",
                      detail, err);
out:
  mg__visit_end(vs, &c);
  return rc;
}

int mg_visit_unmask(struct mg_visits *vs, const struct mg_visit_actor *a,
                    const char *id, const char *reason, struct mg_err *err) {
  struct mg__change c;
  char now[24], until[24];
  int rc = mg__visit_begin(vs, a, id, &c, err);
  if (rc)
    goto out;
  if (a->role < MG_ROLE_SUPERVISOR) {
    rc = mg_err_set(err, -EPERM, "only a supervisor may unmask a case");
    goto out;
  }
  size_t n = u8_chars(reason);
  if (n < 4 || n > 500) {
    rc = mg_err_set(err, -EINVAL, "reason: state why (4 to 500 characters)");
    goto out;
  }
  time_t t = time(NULL);
  mg_store_time(t, now);
  mg_store_time(t + (time_t)(vs->cfg->visit_unmask_for / 1000), until);
  struct mg__stmt sv = {
      "INSERT INTO visit_unmask (visit_id, counter, by_user, at, until) "
      "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (visit_id, counter) DO UPDATE "
      "SET by_user = ?3, at = ?4, until = ?5",
      {id, a->counter, a->user, now, until}, 5, NULL, 0};
  /* the reason is staff's words for the audit, kept with it */
  rc = mg__visit_apply(vs, a, id, &sv, 1, "visit.unmask", reason, err);
out:
  mg__visit_end(vs, &c);
  return rc;
}

int mg_visit_close(struct mg_visits *vs, const struct mg_visit_actor *a,
                   const char *id, struct mg_err *err) {
  struct mg__change c;
  char now[24], purge[24];
  int rc = mg__visit_begin(vs, a, id, &c, err);
  if (rc && rc != -ENODATA)
    goto out;
  time_t t = time(NULL);
  mg_store_time(t, now);
  mg_store_time(t + (time_t)(vs->cfg->visit_retention / 1000), purge);
  struct mg__stmt sv = {"UPDATE visits SET status = 'closed', closed_at = ?2, "
                    "purge_after = ?3 WHERE id = ?1",
                    {id, now, purge}, 3, NULL, 0};
  rc = mg__visit_apply(vs, a, id, &sv, 1, "visit.close", "", err);
out:
  mg__visit_end(vs, &c);
  return rc;
}

/* The whole household's addresses are masked, not only the flagged
 * person's: people of one case mostly share one address, and any of them
 * would give it away (reference §4.1: 同一住所の者も併せて対象). */
int mg_visit_masked(const struct mg_visit *v, const struct mg_visit_actor *a,
                    size_t i) {
  return i < v->n_people && v->support_counter[0] &&
         strcmp(v->support_counter, a->counter) != 0 && !v->unmasked_until[0];
}

/* ---------------------------------------------------------------------- */
/* Housekeeping                                                           */

/* Close open cases created before args[2] (now, purge_after, cut): each
 * closed case's version is bumped and its snapshot queued for the tenant,
 * as for any change (bump_version).  Inside the caller's transaction. */
static int close_open(struct mg_visits *vs, const char *const *args,
                      size_t *n) {
  sqlite3_stmt *s = mg__visit_stmt(
      vs, "UPDATE visits SET status = 'closed', closed_at = ?1, "
          "purge_after = ?2, updated_at = ?1, version = MAX(version + 1, ?4) "
          "WHERE status = 'open' AND created_at < ?3 RETURNING id, version");
  struct closed {
    char id[33];
    int64_t version;
  } *c = NULL;
  size_t nc = 0;
  int rc = s ? SQLITE_OK : SQLITE_ERROR;
  for (int i = 0; rc == SQLITE_OK && i < 3; i++)
    rc = sqlite3_bind_text(s, i + 1, args[i], -1, SQLITE_STATIC);
  if (rc == SQLITE_OK) /* the real clock, not the housekeeping's "now" */
    rc = sqlite3_bind_int64(s, 4, clock_us());
  while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    void *m = realloc(c, (nc + 1) * sizeof(*c));
    if (!m)
      break;
    c = m;
    col_copy(s, 0, c[nc].id, sizeof(c[nc].id));
    c[nc++].version = sqlite3_column_int64(s, 1);
    rc = SQLITE_OK;
  }
  mg__visit_stmt_done(vs, s);
  rc = rc == SQLITE_DONE ? 0 : -EIO;
  for (size_t i = 0; rc == 0 && i < nc; i++)
    rc = mg_outbox_case_changed(vs->st, c[i].id, c[i].version);
  *n = nc;
  free(c);
  return rc;
}

int mg_visits_housekeeping(struct mg_visits *vs, time_t now, size_t *closed,
                           size_t *purged) {
  sqlite3 *db = mg_store_db(vs->st);
  const char *ca = vs->cfg->visit_close_at;
  char now_s[24], cut[24], purge[24];
  int rc = 0;
  size_t nc = 0, np = 0;

  mg_store_time(now, now_s);
  if (ca && *ca) {
    /* the latest close of business at or before now, local time */
    struct tm tm;
    localtime_r(&now, &tm);
    tm.tm_hour = atoi(ca);
    tm.tm_min = atoi(ca + 3);
    tm.tm_sec = 0;
    tm.tm_isdst = -1;
    time_t t = mktime(&tm);
    if (t > now)
      t -= 86400;
    mg_store_time(t, cut);
    mg_store_time(now + (time_t)(vs->cfg->visit_retention / 1000), purge);
    const char *args[] = {now_s, purge, cut};
    if (begin(db) != SQLITE_OK)
      return -EIO;
    int ok = close_open(vs, args, &nc) == 0;
    if (ok && nc) {
      char d[80];
      snprintf(d, sizeof(d), "%zu case(s) at close of business", nc);
      ok = mg_audit_append(vs->st, now, "-", "-", "visit.close", "visits", d) == 0;
    }
    if (finish(db, ok) != SQLITE_OK)
      rc = -EIO;
    else if (nc)
      vs->cases_queued = 1;
    if (nc) /* closed cases are not kept in memory (visit_cache.h) */
      mg_visit_cache_drop(vs->cache, NULL);
  }
  if (rc == 0) {
    const char *args[] = {now_s};
    if (begin(db) != SQLITE_OK)
      return -EIO;
    int ok = exec_args(vs, "DELETE FROM visits WHERE status = 'closed' AND "
                           "purge_after <= ?1",
                       args, 1) == SQLITE_OK;
    np = (size_t)sqlite3_changes(db);
    if (ok && np) {
      char d[80];
      snprintf(d, sizeof(d), "%zu case(s) past retention", np);
      ok = mg_audit_append(vs->st, now, "-", "-", "visit.purge", "visits", d) == 0;
    }
    if (finish(db, ok) != SQLITE_OK)
      rc = -EIO;
    if (np) /* nothing of a purged case stays in memory either */
      mg_visit_cache_drop(vs->cache, NULL);
    /* secure_delete zeroed the pages; the WAL still holds the old page
     * images until a checkpoint, so take them out too. */
    if (rc == 0 && np)
      sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL,
                                NULL);
  }
  if (nc || np)
    mg_log_notice("visit", "housekeeping: %zu case(s) closed, %zu purged", nc,
                  np);
  if (closed)
    *closed = nc;
  if (purged)
    *purged = np;
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Search                                                                 */

static int kana_match(const char *key, const struct mg_visit_person *p) {
  char k[1024];
  if (mg_kana_key(p->kana, k, sizeof(k)) >= 0 && strstr(k, key))
    return 1;
  return mg_kana_key(p->name, k, sizeof(k)) >= 0 && strstr(k, key);
}

int mg_visit_search(struct mg_visits *vs, const struct mg_visit_actor *a,
                    const char *kana, const char *birth_date,
                    const char *number, struct mg_jw *w, struct mg_err *err) {
  sqlite3 *db = mg_store_db(vs->st);
  sqlite3_stmt *s = NULL;
  char key[1024], since[24], digits[16] = "", detail[64];
  struct mg_date bd = {0, 0, 0};
  size_t found = 0;
  int rc = 0;

  if ((!kana || !*kana) && (!birth_date || !*birth_date) &&
      (!number || !*number))
    return mg_err_set(err, -EINVAL, "give kana, birth_date or number");
  if (kana && *kana && mg_kana_key(kana, key, sizeof(key)) <= 0)
    return mg_err_set(err, -EINVAL, "kana: not a name to search for");
  if (birth_date && *birth_date && mg_date_parse(birth_date, &bd))
    return mg_err_set(err, -EINVAL, "birth_date: must be a date YYYY-MM-DD");
  if (number && *number && (rc = number_digits(number, digits, err)))
    return rc;
  mg_store_time(time(NULL) - (time_t)vs->cfg->visit_search_days * 86400, since);
  if (sqlite3_prepare_v2(db,
                         "SELECT id, number, life_event, created_at, status, "
                         "counter, personal FROM visits WHERE created_at >= ?1 "
                         "AND (?2 = '' OR number = ?2) ORDER BY created_at "
                         "DESC LIMIT 5000",
                         -1, &s, NULL) != SQLITE_OK ||
      sqlite3_bind_text(s, 1, since, -1, SQLITE_STATIC) != SQLITE_OK ||
      sqlite3_bind_text(s, 2, digits, -1, SQLITE_STATIC) != SQLITE_OK) {
    rc = db_fail(db, err, "searched");
    goto out;
  }
  mg_jw_arr(w);
  /* Personal data is sealed: recent cases are opened and matched here.  A
   * box serves hundreds of cases a day; an open is ~10 us, so a week's
   * cases take milliseconds. */
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    /* only the columns shown and the sealed people: one open per case */
    struct mg_visit *v = calloc(1, sizeof(*v));
    int hit = 0;
    if (!v)
      continue;
    col_copy(s, 0, v->id, sizeof(v->id));
    col_copy(s, 1, v->number, sizeof(v->number));
    col_copy(s, 2, v->life_event, sizeof(v->life_event));
    col_copy(s, 3, v->created_at, sizeof(v->created_at));
    col_copy(s, 4, v->status, sizeof(v->status));
    col_copy(s, 5, v->counter, sizeof(v->counter));
    if (open_personal(vs, v, sqlite3_column_blob(s, 6),
                      (size_t)sqlite3_column_bytes(s, 6))) {
      mg_log_err("visit", "case %s cannot be read", v->id);
      mg_visit_free(v);
      continue;
    }
    for (size_t i = 0; i < v->n_people && !hit; i++)
      hit = (!kana || !*kana || kana_match(key, &v->people[i])) &&
            (!bd.y || mg_date_cmp(&bd, &v->people[i].birth) == 0);
    if (v->n_people == 0)
      hit = (!kana || !*kana) && !bd.y;
    if (hit) {
      found++;
      mg_jw_obj(w);
      mg_jw_kstr(w, "id", v->id);
      mg_jw_kstr(w, "number", v->number);
      mg_jw_kstr(w, "life_event", v->life_event);
      mg_jw_kstr(w, "created_at", v->created_at);
      mg_jw_kstr(w, "status", v->status);
      mg_jw_kstr(w, "counter", v->counter);
      mg_jw_key(w, "people");
      mg_jw_arr(w);
      for (size_t i = 0; i < v->n_people; i++) {
        char date[16] = "";
        mg_jw_obj(w);
        mg_jw_kstr(w, "name", v->people[i].name);
        mg_jw_kstr(w, "kana", v->people[i].kana);
        if (v->people[i].birth.y)
          mg_date_format(&v->people[i].birth, date, sizeof(date));
        mg_jw_kstr(w, "birth_date", date[0] ? date : NULL);
        mg_jw_obj_end(w);
      }
      mg_jw_arr_end(w);
      mg_jw_obj_end(w);
    }
    mg_visit_free(v);
  }
  mg_jw_arr_end(w);
  if (rc != SQLITE_DONE) {
    rc = db_fail(db, err, "searched");
    goto out;
  }
  rc = 0;
  /* what was searched is personal: only how many came back is audited */
  snprintf(detail, sizeof(detail), "%zu found", found);
  mg_visits_audit(vs, a, "visit.search", NULL, detail);
out:
  sqlite3_finalize(s);
  return rc;
}
