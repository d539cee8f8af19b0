/*
 * tenant_batch.c — checking and opening a /t1/records batch (issue 8).
 * Pure code (no database, no loop): tests/unit/test_tenant_batch.c.
 *
 * What breaks the whole batch is a 400 and nothing is stored; what is wrong
 * with one record is that record's "rejected" result (docs/tenant-api.md).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "envelope.h"
#include "json.h"
#include "tenant.h"

int mg_t_is_id(const char *s) {
  size_t i = 0;
  if (!s)
    return 0;
  for (; s[i]; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return i == 32;
}

int mg_t_is_city(const char *s) {
  size_t i = 0;
  if (!s)
    return 0;
  for (; s[i]; i++)
    if (s[i] < '0' || s[i] > '9')
      return 0;
  return i == 6;
}

int mg_t_is_box(const char *s) {
  size_t i = 0;
  if (!s || !s[0] || s[0] == '-')
    return 0;
  for (; s[i]; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
          s[i] == '-'))
      return 0;
  return i <= 63;
}

void mg_t_sha256_hex(const void *data, size_t len, char out[65]) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(data, len, md);
  for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
    snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void reject(struct mg_t_record *r, const char *code, const char *fmt,
                   ...) __attribute__((format(printf, 3, 4)));
static void reject(struct mg_t_record *r, const char *code, const char *fmt,
                   ...) {
  va_list ap;
  r->status = MG_T_REJECTED;
  r->code = code;
  va_start(ap, fmt);
  vsnprintf(r->message, sizeof(r->message), fmt, ap);
  va_end(ap);
}

void mg_t_batch_free(struct mg_t_batch *b) {
  if (!b)
    return;
  for (size_t i = 0; i < b->n; i++) {
    free(b->r[i].seal);
    if (b->r[i].plain) {
      OPENSSL_cleanse(b->r[i].plain, b->r[i].plain_len);
      free(b->r[i].plain);
    }
  }
  free(b->r);
  memset(b, 0, sizeof(*b));
}

/* One record's own fields; problems reject only this record. */
static void parse_record(struct mg_t_record *r, size_t i,
                         const struct mg_json *o) {
  struct mg_err err;
  for (size_t k = 0; k < o->u.obj.n; k++) {
    const char *key = o->u.obj.members[k].key;
    if (strcmp(key, "id") && strcmp(key, "kind") && strcmp(key, "version") &&
        strcmp(key, "seal")) {
      reject(r, "bad_record", "records[%zu].%.40s: unknown field", i, key);
      return;
    }
  }
  const char *kind = mg_json_get_str(o, "kind");
  if (!kind || (strcmp(kind, "application") && strcmp(kind, "case"))) {
    reject(r, "bad_record",
           "records[%zu].kind: must be \"application\" or \"case\"", i);
    return;
  }
  r->kind = strcmp(kind, "case") == 0 ? MG_T_CASE : MG_T_APPLICATION;
  int vr = mg_json_get_int(o, "version", &r->version);
  if (vr == -ENOENT && r->kind == MG_T_APPLICATION) {
    r->version = 0;
  } else if (vr != 0 || r->version < 0 ||
             (r->kind == MG_T_CASE && r->version < 1)) {
    reject(r, "bad_record",
           "records[%zu].version: must be an integer, >= 1 for a case and 0 "
           "for an application",
           i);
    return;
  }
  const struct mg_json *seal = mg_json_get(o, "seal");
  if (!seal || seal->type != MG_JSON_STRING) {
    reject(r, "bad_record", "records[%zu].seal: must be a base64 string", i);
    return;
  }
  /* base64 of 1 MiB is at most 4 * ceil(2^20 / 3) characters */
  if (seal->u.str.len > (MG_T_MAX_SEAL + 2) / 3 * 4) {
    reject(r, "too_large",
           "records[%zu].seal: larger than the 1 MiB an envelope may have", i);
    return;
  }
  if (mg_env_unb64(seal->u.str.s, seal->u.str.len, &r->seal, &r->seal_len,
                   &err)) {
    reject(r, "bad_seal", "records[%zu].seal: %s", i, err.msg);
    return;
  }
  if (r->seal_len > MG_T_MAX_SEAL) {
    free(r->seal);
    r->seal = NULL;
    reject(r, "too_large",
           "records[%zu].seal: larger than the 1 MiB an envelope may have", i);
  }
}

int mg_t_batch_parse(const char *body, size_t len, struct mg_t_batch *b,
                     struct mg_err *err) {
  struct mg_json *root = NULL;
  struct mg_json_error je;
  struct mg_json_limits lim = {8, MG_T_MAX_BODY + 4096};
  int rc = 0;

  memset(b, 0, sizeof(*b));
  if ((rc = mg_json_parse(body, len, &lim, &root, &je)) < 0) {
    rc = rc == -ENOMEM ? mg_err_set(err, -ENOMEM, "out of memory")
                       : mg_err_set(err, -EINVAL, "batch: %s", je.msg);
    goto out;
  }
  if (root->type != MG_JSON_OBJECT) {
    rc = mg_err_set(err, -EINVAL, "batch: must be a JSON object");
    goto out;
  }
  for (size_t k = 0; k < root->u.obj.n; k++) {
    const char *key = root->u.obj.members[k].key;
    if (strcmp(key, "batch") && strcmp(key, "records")) {
      rc = mg_err_set(err, -EINVAL,
                      "batch.%.40s: unknown field (only batch and records)", key);
      goto out;
    }
  }
  const char *id = mg_json_get_str(root, "batch");
  if (!mg_t_is_id(id)) {
    rc = mg_err_set(err, -EINVAL, "batch.batch: must be 32 lower-case hex digits");
    goto out;
  }
  snprintf(b->id, sizeof(b->id), "%s", id);
  const struct mg_json *recs = mg_json_get(root, "records");
  if (!recs || recs->type != MG_JSON_ARRAY || recs->u.arr.n == 0 ||
      recs->u.arr.n > MG_T_MAX_RECORDS) {
    rc = mg_err_set(err, -EINVAL,
                    "batch.records: must be an array of 1 to %d records",
                    MG_T_MAX_RECORDS);
    goto out;
  }
  if (!(b->r = calloc(recs->u.arr.n, sizeof(*b->r)))) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  b->n = recs->u.arr.n;
  for (size_t i = 0; i < b->n; i++) {
    const struct mg_json *o = recs->u.arr.items[i];
    const char *rid = o->type == MG_JSON_OBJECT ? mg_json_get_str(o, "id") : NULL;
    if (!mg_t_is_id(rid)) {
      rc = mg_err_set(err, -EINVAL,
                      "records[%zu].id: must be 32 lower-case hex digits "
                      "(each record an object with an id)",
                      i);
      goto out;
    }
    snprintf(b->r[i].id, sizeof(b->r[i].id), "%s", rid);
    for (size_t j = 0; j < i; j++)
      if (strcmp(b->r[j].id, rid) == 0) {
        rc = mg_err_set(err, -EINVAL,
                        "records[%zu].id: the same id as records[%zu] (one "
                        "record per id in a batch)",
                        i, j);
        goto out;
      }
    parse_record(&b->r[i], i, o);
  }
out:
  mg_json_free(root);
  if (rc < 0)
    mg_t_batch_free(b);
  return rc;
}

void mg_t_context(const struct mg_t_record *r, const char *city,
                  const char *box, char *out, size_t len) {
  if (r->kind == MG_T_CASE)
    snprintf(out, len, "madoguchi/t1 case %s v%lld city %s box %s", r->id,
             (long long)r->version, city, box);
  else
    snprintf(out, len, "madoguchi/t1 application %s city %s box %s", r->id,
             city, box);
}

/* A case must say which case it is and carry its lookup keys. */
static void check_plain(struct mg_t_record *r, size_t i) {
  struct mg_json *root = NULL;
  struct mg_json_error je;
  if (mg_json_parse((const char *)r->plain, r->plain_len, NULL, &root, &je) ||
      root->type != MG_JSON_OBJECT) {
    reject(r, "bad_record",
           "records[%zu]: the sealed content is not a JSON object%s%s", i,
           root ? "" : ": ", root ? "" : je.msg);
    goto out;
  }
  if (r->kind == MG_T_CASE) {
    const char *id = mg_json_get_str(root, "id");
    const char *num = mg_json_get_str(root, "number");
    const char *tok = mg_json_get_str(root, "token_sha256");
    int64_t v = 0;
    if (!id || strcmp(id, r->id) != 0) {
      reject(r, "bad_record", "records[%zu]: the sealed case's id is not the record's id", i);
      goto out;
    }
    if (mg_json_get_int(root, "version", &v) == 0 && v != r->version) {
      reject(r, "bad_record",
             "records[%zu]: the sealed case is version %lld, the record says %lld",
             i, (long long)v, (long long)r->version);
      goto out;
    }
    if (num && strlen(num) < sizeof(r->number))
      snprintf(r->number, sizeof(r->number), "%s", num);
    if (tok && strlen(tok) == 64)
      snprintf(r->token_sha256, sizeof(r->token_sha256), "%s", tok);
  }
out:
  mg_json_free(root);
}

/* Opening is CPU-bound (Ed25519 verify, AES-GCM, the JSON of the
 * plaintext, and X25519 once per ephemeral key: one opener a thread; most
 * of the tenant's time per record, N3): the records of one
 * batch are shared out over up to MG_T_OPEN_THREADS threads, one a core.
 * Each thread writes only its own records; the keys are only read
 * (OpenSSL 3 keys may be used from several threads at once). */
#define MG_T_OPEN_THREADS 4
#define MG_T_OPEN_MIN 16 /* records per thread worth a thread */

struct opener {
  struct mg_t_batch *b;
  EVP_PKEY *recv, *sign;
  const char *city, *box;
  size_t first, step;
};

static void open_some(const struct opener *o) {
  char ctx[256];
  struct mg_err err;
  struct mg_env_opener *eo = NULL;
  int rc = mg_env_opener_new(o->recv, o->sign, &eo, &err);
  for (size_t i = o->first; i < o->b->n; i += o->step) {
    struct mg_t_record *r = &o->b->r[i];
    if (r->status)
      continue;
    mg_t_context(r, o->city, o->box, ctx, sizeof(ctx));
    if (rc || mg_env_opener_open(eo, ctx, r->seal, r->seal_len, &r->plain,
                                 &r->plain_len, &err)) {
      reject(r, "bad_seal", "records[%zu].seal: %s", i, err.msg);
      continue;
    }
    mg_t_sha256_hex(r->plain, r->plain_len, r->plain_sha256);
    check_plain(r, i);
  }
  mg_env_opener_free(eo);
}

static void *open_thread(void *x) {
  open_some(x);
  return NULL;
}

void mg_t_batch_open(struct mg_t_batch *b, EVP_PKEY *tenant_recv,
                     EVP_PKEY *box_sign, const char *city, const char *box) {
  struct opener o[MG_T_OPEN_THREADS];
  pthread_t th[MG_T_OPEN_THREADS];
  int started[MG_T_OPEN_THREADS] = {0};
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  size_t nt = cpus < 1 ? 1 : (size_t)cpus;
  if (nt > MG_T_OPEN_THREADS)
    nt = MG_T_OPEN_THREADS;
  if (nt > b->n / MG_T_OPEN_MIN)
    nt = b->n / MG_T_OPEN_MIN ? b->n / MG_T_OPEN_MIN : 1;
  for (size_t t = 0; t < nt; t++)
    o[t] = (struct opener){b, tenant_recv, box_sign, city, box, t, nt};
  /* a thread that cannot start leaves its share to this one */
  for (size_t t = 1; t < nt; t++)
    started[t] = pthread_create(&th[t], NULL, open_thread, &o[t]) == 0;
  open_some(&o[0]);
  for (size_t t = 1; t < nt; t++) {
    if (started[t])
      pthread_join(th[t], NULL);
    else
      open_some(&o[t]);
  }
}

void mg_t_batch_digest(const struct mg_t_batch *b, char out[65]) {
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  unsigned char md[SHA256_DIGEST_LENGTH];
  char line[200];
  memset(md, 0, sizeof(md));
  if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1)
    goto out;
  for (size_t i = 0; i < b->n; i++) {
    const struct mg_t_record *r = &b->r[i];
    int n = snprintf(line, sizeof(line), "%s %d %lld %s\n", r->id, r->kind,
                     (long long)r->version,
                     r->status == MG_T_REJECTED ? r->code : r->plain_sha256);
    EVP_DigestUpdate(c, line, (size_t)n);
  }
  EVP_DigestFinal_ex(c, md, NULL);
out:
  EVP_MD_CTX_free(c);
  for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
    snprintf(out + 2 * i, 3, "%02x", md[i]);
}
