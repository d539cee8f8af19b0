/*
 * tenant.h — madoguchi-tenantd's parts (issue 8; API in docs/tenant-api.md):
 *   tenant_batch.c  checking a /t1/records body (pure: unit-tested)
 *   tenant_ca.c     the tenant CA: init-ca, box certificates at enrolment
 *   tenant_db.c     PostgreSQL: city schemas and roles (X3), pools, storing
 *   tenantd.c       main, subcommands, config, the HTTP handlers
 * Internal to the tenant: names mg_t_.
 */
#ifndef MG_TENANT_H
#define MG_TENANT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"

#define MG_T_API "t1"
#define MG_T_MAX_RECORDS 1000
#define MG_T_MAX_SEAL (1u << 20) /* one record's envelope, decoded */
#define MG_T_MAX_BODY (8 << 20)

/* ---------------------------------------------------------------- batch */

enum mg_t_kind { MG_T_APPLICATION = 1, MG_T_CASE = 2 };

enum mg_t_status { MG_T_STORED = 1, MG_T_DUPLICATE, MG_T_STALE, MG_T_REJECTED };

struct mg_t_record {
  char id[33];
  int kind;                /* enum mg_t_kind; 0 when the record is bad */
  int64_t version;
  unsigned char *seal;     /* decoded envelope (malloc'd); NULL if refused */
  size_t seal_len;
  /* outcome: set by the parser for a record refused on its own, later by
   * opening and storing */
  int status;              /* enum mg_t_status; 0 = not decided yet */
  const char *code;        /* rejected: "bad_record", "bad_seal", ... */
  char message[300];
  /* after opening */
  unsigned char *plain;    /* malloc'd, wiped before free */
  size_t plain_len;
  char plain_sha256[65];
  char number[32], token_sha256[65]; /* cases: lookup keys, "" if none */
};

struct mg_t_batch {
  char id[33];
  struct mg_t_record *r;
  size_t n;
};

/* Check a /t1/records body: 0 and *b; -EINVAL (err names the place and
 * the rule: "line 1, column 9: ...", "records[3].id: ...") for what makes
 * the whole batch unusable (not JSON, truncated, no batch id, ids not 32
 * lower-case hex, duplicate ids, more than 1000 records); -ENOMEM.  A
 * record that is bad on its own (kind, version, seal not base64 or over
 * 1 MiB) is marked rejected in *b and the batch goes on. */
int mg_t_batch_parse(const char *body, size_t len, struct mg_t_batch *b,
                     struct mg_err *err);
void mg_t_batch_free(struct mg_t_batch *b);
/* 1 when s is exactly 32 lower-case hex digits. */
int mg_t_is_id(const char *s);
/* City codes: 6 digits (全国地方公共団体コード).  Box names:
 * [a-z0-9][a-z0-9-]{0,62}.  1 when valid. */
int mg_t_is_city(const char *s);
int mg_t_is_box(const char *s);
/* Lower-case hex SHA-256 of data into out[65]. */
void mg_t_sha256_hex(const void *data, size_t len, char out[65]);
/* The envelope context of a record (envelope.h / docs/tenant-api.md). */
void mg_t_context(const struct mg_t_record *r, const char *city,
                  const char *box, char *out, size_t len);
/* After opening: the replay digest of the batch (ids, kinds, versions and
 * plaintext hashes or rejection codes, in order). */
void mg_t_batch_digest(const struct mg_t_batch *b, char out[65]);
/* Open every undecided record with the box's sign key (the records are
 * shared out over up to one thread a core: thread-safe keys only); a record that
 * does not open is rejected bad_seal; a case must carry its lookup keys
 * and an application must be a JSON object (bad_record otherwise). */
void mg_t_batch_open(struct mg_t_batch *b, EVP_PKEY *tenant_recv,
                     EVP_PKEY *box_sign, const char *city, const char *box);

/* ------------------------------------------------------------------- CA */

/* Create what is missing in dir: ca.key/ca.pem (EC P-256, 10 years),
 * server.key/server.pem for names (DNS names or IPs, comma separated),
 * tenant_recv.pem (X25519), tenant_sign.pem (Ed25519).  Existing files are
 * kept.  0 or negative errno with err. */
int mg_t_ca_init(const char *dir, const char *names, struct mg_err *err);
struct mg_t_ca {
  X509 *cert;
  EVP_PKEY *key;
};
int mg_t_ca_load(const char *dir, struct mg_t_ca *ca, struct mg_err *err);
void mg_t_ca_free(struct mg_t_ca *ca);
/* A client certificate for a box's key: CN = box, O = city, clientAuth,
 * 2 years.  *pem malloc'd; serial (out) lower-case hex. */
int mg_t_ca_issue(struct mg_t_ca *ca, EVP_PKEY *box_key, const char *city,
                  const char *box, char **pem, char serial[80],
                  struct mg_err *err);

/* ------------------------------------------------------------------- DB */

struct mg_t_pool; /* one city's connections, logged in as mg_city_<code> */

/* Retention (D1): how long the city keeps what boxes send. */
#define MG_T_RETENTION_DEFAULT (30 * 86400LL) /* a new city, until it sets one */
#define MG_T_RETENTION_MAX (3660 * 86400LL)   /* about 10 years */
/* "<n><unit>", unit s, m (minutes), h, d or w, 1s .. 3660d: 0 and *secs;
 * -EINVAL with err naming the rule. */
int mg_t_retention_parse(const char *s, int64_t *secs, struct mg_err *err);
/* secs in its largest exact unit ("30d", "90m", "1s") into out. */
void mg_t_retention_fmt(int64_t secs, char out[32]);

/* init-city: schema city_<code>, role mg_city_<code> with a new password
 * (written to state_dir/cities/<code>.secret, 0600); idempotent.
 * retention > 0 sets the city's retention; 0 keeps the one set before (a
 * new city gets MG_T_RETENTION_DEFAULT).  *now_ret (out) the retention in
 * force afterwards. */
int mg_t_db_init_city(const char *admin_conninfo, const char *state_dir,
                      const char *city, int64_t retention, int64_t *now_ret,
                      struct mg_err *err);
/* enroll-code: a new one-time code for box (printed by the caller); it
 * also clears the box's count of wrong codes (a lock ends). */
int mg_t_db_enroll_code(const char *admin_conninfo, const char *city,
                        const char *box, char code[32], struct mg_err *err);
/* enroll-codes: the pending (unused, unexpired) codes of the city as text,
 * one "box<TAB>created<TAB>expires" line each (UTC), after a header line;
 * never the codes (only their hashes are stored).  *text malloc'd; *n how
 * many codes. */
int mg_t_db_list_codes(const char *admin_conninfo, const char *city,
                       char **text, int *n, struct mg_err *err);
/* expire-code: void every pending code of box; *n how many; -ENOENT when
 * there was none. */
int mg_t_db_expire_codes(const char *admin_conninfo, const char *city,
                         const char *box, int *n, struct mg_err *err);
/* revoke: every live certificate of box; *n how many. */
int mg_t_db_revoke(const char *admin_conninfo, const char *city,
                   const char *box, int *n, struct mg_err *err);

int mg_t_pool_open(const char *conninfo_base, const char *state_dir,
                   const char *city, int size, struct mg_t_pool **out,
                   struct mg_err *err);
void mg_t_pool_free(struct mg_t_pool *p);
const char *mg_t_pool_city(const struct mg_t_pool *p);

/* The enrolled, not revoked certificate `serial` of this city: box name and
 * its keys (b64).  0; -EACCES revoked; -ENOENT unknown; -EIO. */
struct mg_t_box {
  char box[72];
  char sign_key[48];
  char recv_key[48];
};
int mg_t_db_box(struct mg_t_pool *p, const char *serial, struct mg_t_box *out,
                struct mg_err *err);

/* Wrong enrolment codes: after `attempts` wrong codes for one box within
 * `lock_s` seconds the box is locked for `lock_s` seconds (every code,
 * even the right one, is refused) until it ends or enroll-code makes a new
 * code.  Counted in the city's schema, so restarts keep the count. */
struct mg_t_limits {
  int attempts;
  int64_t lock_s;
};
/* Enrolment: check and use the code, issue (through ca) and record the
 * certificate, in one transaction.  -EACCES bad code (err says why; the
 * box's wrong-code count goes up), -EBUSY the box is locked (*retry_after
 * seconds left), -EEXIST the box has a live certificate, -EIO. */
int mg_t_db_enroll(struct mg_t_pool *p, struct mg_t_ca *ca, const char *box,
                   const char *code, EVP_PKEY *sign_key, const char *sign_b64,
                   const char *recv_b64, const struct mg_t_limits *lim,
                   char **pem, char serial[80], int64_t *retry_after,
                   struct mg_err *err);

/* set-retention through the city's own role: *old (out) the one before. */
int mg_t_db_set_retention(struct mg_t_pool *p, int64_t secs, int64_t *old,
                          struct mg_err *err);
/* Purge (D1), as the city's own role, in one transaction: applications
 * stored, case snapshots last updated, batch rows received more than the
 * city's retention ago; enrolment codes used or expired that long ago and
 * wrong-code counts whose lock is over.  DELETE only: PostgreSQL reuses
 * the space after (auto)VACUUM (docs/tenant-api.md). */
struct mg_t_purge {
  int64_t retention;   /* seconds, as set by the city */
  char cutoff[32];     /* rows before this (UTC, ISO 8601) went */
  long long applications, cases, batches, codes, attempts;
};
int mg_t_db_purge(struct mg_t_pool *p, struct mg_t_purge *out,
                  struct mg_err *err);

/* Store an opened batch in one transaction (batch row + records), answer
 * written to *results (JSON text, malloc'd) after COMMIT.  *replayed set
 * when the same batch was stored before.  -EEXIST batch id reused with
 * other content; -EIO database trouble (nothing stored). */
int mg_t_db_store(struct mg_t_pool *p, struct mg_t_batch *b, const char *box,
                  const char *serial, char **results, int *replayed,
                  struct mg_err *err);

/* The newest case with this number or token hash (exactly one non-NULL).
 * 0 with *plain (malloc'd), id, version, origin box; -ENOENT; -EIO. */
int mg_t_db_case(struct mg_t_pool *p, const char *number, const char *token,
                 unsigned char **plain, size_t *len, char id[33],
                 int64_t *version, char origin[72], struct mg_err *err);

#endif
