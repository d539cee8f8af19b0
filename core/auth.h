/*
 * auth.h — staff accounts and counter sessions (tables of migration 3).
 *
 * Passwords: scrypt (OpenSSL 3 EVP_KDF, N=2^15 r=8 p=1, 16-byte salt,
 * 32-byte key) stored as "scrypt$15$8$1$<salt b64>$<key b64>".  Sessions:
 * a 32-byte random token (base64url) of which only the SHA-256 is stored,
 * a 16-byte CSRF token, and a 10-hour life (a counter day).  Five wrong
 * passwords in a row lock an account for 15 minutes.
 *
 * Passwords, tokens and hashes are never logged; user ids are.
 * Everything runs on the loop except mg_auth_verify_password /
 * mg_auth_hash_password, which are slow (~50-100 ms) and thread-safe: the
 * HTTP handler runs them on a worker.
 */
#ifndef MG_AUTH_H
#define MG_AUTH_H

#include <stddef.h>
#include <time.h>

#include "err.h"
#include "http.h"
#include "json.h"
#include "store.h"

#define MG_AUTH_HASH_MAX 128
#define MG_AUTH_MAX_FAILED 5
#define MG_AUTH_LOCK_S (15 * 60)
#define MG_AUTH_SESSION_S (10 * 3600)
#define MG_AUTH_MIN_PASSWORD 8

enum mg_auth_role {
  MG_ROLE_NONE = 0,
  MG_ROLE_STAFF = 1,
  MG_ROLE_SUPERVISOR = 2,
  MG_ROLE_ADMINISTRATOR = 3,
};
/* "staff" -> MG_ROLE_STAFF ...; MG_ROLE_NONE when unknown. */
int mg_auth_role_parse(const char *s);

enum mg_auth_result {
  MG_AUTH_OK = 0,
  MG_AUTH_BAD,       /* unknown user or wrong password (one answer) */
  MG_AUTH_LOCKED,    /* too many failures; see locked_until */
  MG_AUTH_NOT_VALID, /* outside valid_from..valid_until */
  MG_AUTH_ERROR,     /* database or system failure */
};

struct mg_auth_session {
  char token[64];       /* base64url; only set by login */
  char csrf[32];
  char user_id[72];
  char name[256];
  char role[16];
  char counter[72];
  char expires_at[24];  /* 2024-04-01T18:00:00Z */
  char locked_until[24]; /* set when login answers MG_AUTH_LOCKED */
};

/* n (<= 32) random bytes as base64url without padding into out (at least
 * 4 * ceil(n / 3) + 1 bytes): tokens of sessions, tablets and cases.
 * 0, or -EIO. */
int mg_auth_random_b64url(size_t n, char *out);

/* Hash / verify (thread-safe, slow).  verify: 1 match, 0 no match (a
 * malformed stored hash never matches). */
int mg_auth_hash_password(const char *pw, char out[MG_AUTH_HASH_MAX]);
int mg_auth_verify_password(const char *pw, const char *stored);

/* Users.  id is [a-z0-9_.-]{1,64}; dates YYYY-MM-DD (UTC), NULL or "" for
 * no bound; the password at least MG_AUTH_MIN_PASSWORD bytes.
 * -EEXIST when the id is taken, -ENOENT when absent. */
int mg_auth_user_add(struct mg_store *st, const char *id, const char *name,
                     const char *role, const char *password,
                     const char *valid_from, const char *valid_until,
                     time_t now, struct mg_err *err);
/* The same with the password already hashed (mg_auth_hash_password), so
 * that the slow scrypt can run on a worker and only this runs on the loop. */
int mg_auth_user_add_hashed(struct mg_store *st, const char *id,
                            const char *name, const char *role,
                            const char *hash, const char *valid_from,
                            const char *valid_until, time_t now,
                            struct mg_err *err);
int mg_auth_user_del(struct mg_store *st, const char *id);
/* Seed users from a CSV file (id,name,role,password_hash[,valid_from,
 * valid_until]; hashes from mg_auth_hash_password): users the box does not
 * have yet are added, others left alone.  Returns how many were added, or a
 * negative errno with err naming FILE:LINE and the rule (nothing after the
 * bad row is added).  A file writable by group or others is refused. */
int mg_auth_seed_file(struct mg_store *st, const char *path, time_t now,
                      struct mg_err *err);
int mg_auth_user_unlock(struct mg_store *st, const char *id);
/* One object {"id","name","role","valid_from","valid_until","failed",
 * "locked_until","created_at"} (never the hash); -ENOENT when absent. */
int mg_auth_user_json(struct mg_store *st, const char *id, struct mg_jw *w);
/* An array of the objects above, by id. */
int mg_auth_user_list_json(struct mg_store *st, struct mg_jw *w);

/* Login in three steps so the scrypt runs off the loop:
 * begin (loop) copies the stored hash (a dummy one for an unknown user, so
 * that the time taken does not tell who exists); verify (worker);
 * finish (loop) applies lockout, validity and creates the session. */
int mg_auth_login_begin(struct mg_store *st, const char *id,
                        char hash[MG_AUTH_HASH_MAX]);
enum mg_auth_result mg_auth_login_finish(struct mg_store *st, const char *id,
                                         int matched, const char *counter,
                                         time_t now,
                                         struct mg_auth_session *out);
/* All three at once (blocking: madoctl, tests). */
enum mg_auth_result mg_auth_login(struct mg_store *st, const char *id,
                                  const char *password, const char *counter,
                                  time_t now, struct mg_auth_session *out);

/* The session of a token: 0, or -ENOENT (unknown or expired: an expired
 * one is deleted).  out->token stays empty. */
int mg_auth_session_get(struct mg_store *st, const char *token, time_t now,
                        struct mg_auth_session *out);
int mg_auth_logout(struct mg_store *st, const char *token);
/* Constant-time comparison of a presented CSRF token. */
int mg_auth_csrf_ok(const struct mg_auth_session *s, const char *presented);

/* For API handlers: the session of the request's mg_session cookie, with
 * at least role_min and, when need_csrf, a matching X-CSRF-Token header.
 * 0 and *out; otherwise the request has been answered (401 not_logged_in,
 * 403 csrf_failed, 403 forbidden) and -1 is returned. */
int mg__auth_require(struct mg_store *st, struct mg_http_txn *t, int role_min,
                     int need_csrf, struct mg_auth_session *out);
/* Tablets (C1, U1): an administrator registers a tablet to a counter; the
 * tablet keeps a long-lived random token (cookie mg_tablet, only its
 * SHA-256 stored) and staff logging in on it are bound to that counter.
 * token gets 43 base64url characters, id 12. */
int mg_auth_tablet_add(struct mg_store *st, const char *counter,
                       const char *name, const char *by, time_t now,
                       char token[64], char id[24], struct mg_err *err);
/* The counter of a tablet token: 0, or -ENOENT. */
int mg_auth_tablet_counter(struct mg_store *st, const char *token,
                           char counter[72]);
/* [{id, counter, name, created_by, created_at}] by counter. */
int mg_auth_tablet_list_json(struct mg_store *st, struct mg_jw *w);
/* Remove a registration: the tablet's staff can no longer log in on it.
 * 0, -ENOENT. */
int mg_auth_tablet_del(struct mg_store *st, const char *id);
/* A cookie's value out of a Cookie header; 0 when found. */
int mg__auth_cookie_value(const char *cookie, const char *name, char *out,
                          size_t len);
/* The mg_session cookie's value out of a Cookie header; 0 when found. */
int mg__auth_cookie_token(const char *cookie, char *out, size_t len);

#endif
