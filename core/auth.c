/*
 * auth.c — staff accounts and sessions (auth.h).
 */
#include "auth.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto.h"
#include "csv.h"
#include "log.h"

#define SALT_LEN 16
#define KEY_LEN 32
#define TOKEN_LEN 32
#define CSRF_LEN 16

int mg_auth_role_parse(const char *s) {
  if (!s)
    return MG_ROLE_NONE;
  if (strcmp(s, "staff") == 0)
    return MG_ROLE_STAFF;
  if (strcmp(s, "supervisor") == 0)
    return MG_ROLE_SUPERVISOR;
  if (strcmp(s, "administrator") == 0)
    return MG_ROLE_ADMINISTRATOR;
  return MG_ROLE_NONE;
}


static void iso_date(time_t t, char out[16]) {
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 16, "%Y-%m-%d", &tm);
}

/* YYYY-MM-DD that names a real day. */
static int date_ok(const char *s) {
  struct tm tm = {0};
  char back[16];
  if (!s || strlen(s) != 10)
    return 0;
  const char *end = strptime(s, "%Y-%m-%d", &tm);
  if (!end || *end)
    return 0;
  strftime(back, sizeof(back), "%Y-%m-%d", &tm);
  return strcmp(back, s) == 0 && timegm(&tm) != (time_t)-1;
}

static int id_ok(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > 64)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
          s[i] == '_' || s[i] == '-' || s[i] == '.'))
      return 0;
  return 1;
}

/* ---------------------------------------------------------------------- */
/* Encoding                                                                */

static void b64(const unsigned char *in, size_t n, char *out) {
  EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* base64 without padding; -1 unless exactly `want` bytes come out */
static int unb64(const char *in, size_t in_len, unsigned char *out, size_t want) {
  unsigned char tmp[128];
  if (in_len == 0 || in_len > 128 || in_len % 4)
    return -1;
  int n = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)in_len);
  if (n < 0)
    return -1;
  for (size_t i = in_len; i > 0 && in[i - 1] == '='; i--)
    n--;
  if ((size_t)n != want)
    return -1;
  memcpy(out, tmp, want);
  OPENSSL_cleanse(tmp, sizeof(tmp));
  return 0;
}

static void b64url(const unsigned char *in, size_t n, char *out) {
  b64(in, n, out);
  for (char *p = out; *p; p++) {
    if (*p == '+')
      *p = '-';
    else if (*p == '/')
      *p = '_';
    else if (*p == '=')
      *p = '\0';
  }
}

int mg_auth_random_b64url(size_t n, char *out) {
  unsigned char raw[TOKEN_LEN];
  if (n > sizeof(raw) || RAND_bytes(raw, (int)n) != 1)
    return -EIO;
  b64url(raw, n, out);
  OPENSSL_cleanse(raw, sizeof(raw));
  return 0;
}

/* hex SHA-256 of a token: what the sessions table keys on */
static int token_hash(const char *token, char out[65]) {
  return mg_sha256_hex(token, strlen(token), out);
}

/* ---------------------------------------------------------------------- */
/* Passwords                                                               */

static int scrypt(const char *pw, const unsigned char *salt, size_t salt_len,
                  int log_n, unsigned r, unsigned p, unsigned char *key,
                  size_t key_len) {
  EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
  EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
  uint64_t n = (uint64_t)1 << log_n;
  uint32_t rr = r, pp = p;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pw,
                                        strlen(pw)),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt,
                                        salt_len),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &rr),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &pp),
      OSSL_PARAM_construct_end(),
  };
  int rc = ctx && EVP_KDF_derive(ctx, key, key_len, params) == 1 ? 0 : -EIO;
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  return rc;
}

int mg_auth_hash_password(const char *pw, char out[MG_AUTH_HASH_MAX]) {
  unsigned char salt[SALT_LEN], key[KEY_LEN];
  char s64[32], k64[48];
  int rc = -EIO;
  if (RAND_bytes(salt, sizeof(salt)) != 1)
    goto out;
  if ((rc = scrypt(pw, salt, sizeof(salt), 15, 8, 1, key, sizeof(key))))
    goto out;
  b64(salt, sizeof(salt), s64);
  b64(key, sizeof(key), k64);
  snprintf(out, MG_AUTH_HASH_MAX, "scrypt$15$8$1$%s$%s", s64, k64);
out:
  OPENSSL_cleanse(key, sizeof(key));
  return rc;
}

int mg_auth_verify_password(const char *pw, const char *stored) {
  unsigned char salt[SALT_LEN], want[KEY_LEN], got[KEY_LEN];
  int log_n, r, p, ns = 0, nk = 0, match = 0;
  char s64[64], k64[64];
  if (!pw || !stored ||
      sscanf(stored, "scrypt$%d$%d$%d$%63[A-Za-z0-9+/=]%n$%63[A-Za-z0-9+/=]%n",
             &log_n, &r, &p, s64, &ns, k64, &nk) != 5 ||
      stored[nk] != '\0')
    return 0;
  /* bounds that keep a tampered row from asking for gigabytes */
  if (log_n < 10 || log_n > 20 || r < 1 || r > 16 || p < 1 || p > 4 ||
      unb64(s64, strlen(s64), salt, sizeof(salt)) ||
      unb64(k64, strlen(k64), want, sizeof(want)))
    return 0;
  if (scrypt(pw, salt, sizeof(salt), log_n, (unsigned)r, (unsigned)p, got,
             sizeof(got)) == 0)
    match = CRYPTO_memcmp(got, want, sizeof(got)) == 0;
  OPENSSL_cleanse(got, sizeof(got));
  (void)ns;
  return match;
}

/* ---------------------------------------------------------------------- */
/* Users                                                                   */

static int exec_id(struct mg_store *st, const char *sql, const char *id) {
  sqlite3 *db = mg_store_db(st);
  sqlite3_stmt *s = NULL;
  int rc = -EIO;
  if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_DONE)
      rc = sqlite3_changes(db) ? 0 : -ENOENT;
  }
  if (rc == -EIO)
    mg_log_err("auth", "database: %s", sqlite3_errmsg(db));
  sqlite3_finalize(s);
  return rc;
}

int mg_auth_user_add(struct mg_store *st, const char *id, const char *name,
                     const char *role, const char *password,
                     const char *valid_from, const char *valid_until,
                     time_t now, struct mg_err *err) {
  char hash[MG_AUTH_HASH_MAX];
  int rc;
  if (!password || strlen(password) < MG_AUTH_MIN_PASSWORD)
    return mg_err_set(err, -EINVAL, "the password needs at least %d characters",
                      MG_AUTH_MIN_PASSWORD);
  if ((rc = mg_auth_hash_password(password, hash)))
    return mg_err_set(err, rc, "cannot hash the password");
  rc = mg_auth_user_add_hashed(st, id, name, role, hash, valid_from,
                               valid_until, now, err);
  OPENSSL_cleanse(hash, sizeof(hash));
  return rc;
}

int mg_auth_user_add_hashed(struct mg_store *st, const char *id,
                            const char *name, const char *role,
                            const char *hash, const char *valid_from,
                            const char *valid_until, time_t now,
                            struct mg_err *err) {
  char created[24];
  sqlite3 *db = mg_store_db(st);
  sqlite3_stmt *s = NULL;
  int rc;
  if (valid_from && !*valid_from)
    valid_from = NULL;
  if (valid_until && !*valid_until)
    valid_until = NULL;
  if (!id_ok(id))
    return mg_err_set(err, -EINVAL, "a user id is 1-64 of a-z 0-9 . _ -");
  if (!name || !*name || strlen(name) > 200)
    return mg_err_set(err, -EINVAL, "a user needs a name (up to 200 bytes)");
  if (mg_auth_role_parse(role) == MG_ROLE_NONE)
    return mg_err_set(err, -EINVAL,
                      "the role is one of staff, supervisor, administrator");
  if ((valid_from && !date_ok(valid_from)) || (valid_until && !date_ok(valid_until)))
    return mg_err_set(err, -EINVAL, "dates are YYYY-MM-DD");
  if (valid_from && valid_until && strcmp(valid_from, valid_until) > 0)
    return mg_err_set(err, -EINVAL, "valid-from is after valid-until");
  mg_store_time(now, created);
  rc = -EIO;
  if (sqlite3_prepare_v2(db,
                         "INSERT INTO users(id, name, role, pw_hash, valid_from, "
                         "valid_until, created_at) VALUES (?,?,?,?,?,?,?)",
                         -1, &s, NULL) == SQLITE_OK) {
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, role, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, valid_from, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, valid_until, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, created, -1, SQLITE_STATIC);
    int step = sqlite3_step(s);
    if (step == SQLITE_DONE)
      rc = 0;
    else if (sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_PRIMARYKEY)
      rc = mg_err_set(err, -EEXIST, "user \"%s\" exists already", id);
  }
  if (rc == -EIO)
    mg_err_set(err, rc, "database: %s", sqlite3_errmsg(db));
  sqlite3_finalize(s);
  if (rc == 0)
    mg_log_notice("auth", "user %s added (%s)", id, role);
  return rc;
}

int mg_auth_user_del(struct mg_store *st, const char *id) {
  int rc = exec_id(st, "DELETE FROM users WHERE id = ?", id);
  if (rc == 0)
    mg_log_notice("auth", "user %s deleted (and their sessions)", id);
  return rc;
}

int mg_auth_user_unlock(struct mg_store *st, const char *id) {
  int rc = exec_id(st, "UPDATE users SET failed = 0, locked_until = NULL WHERE id = ?",
                   id);
  if (rc == 0)
    mg_log_notice("auth", "user %s unlocked", id);
  return rc;
}

#define USER_COLS "id, name, role, valid_from, valid_until, failed, locked_until, created_at"

static void user_row_json(sqlite3_stmt *s, struct mg_jw *w) {
  static const char *const keys[] = {"id", "name", "role", "valid_from",
                                     "valid_until", "failed", "locked_until",
                                     "created_at"};
  mg_jw_obj(w);
  for (int i = 0; i < 8; i++) {
    if (i == 5)
      mg_jw_kint(w, keys[i], sqlite3_column_int64(s, i));
    else
      mg_jw_kstr(w, keys[i], (const char *)sqlite3_column_text(s, i));
  }
  mg_jw_obj_end(w);
}

int mg_auth_user_json(struct mg_store *st, const char *id, struct mg_jw *w) {
  sqlite3_stmt *s = NULL;
  int rc = -EIO;
  if (sqlite3_prepare_v2(mg_store_db(st), "SELECT " USER_COLS " FROM users WHERE id = ?",
                         -1, &s, NULL) == SQLITE_OK) {
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
      user_row_json(s, w);
      rc = 0;
    } else if (step == SQLITE_DONE) {
      rc = -ENOENT;
    }
  }
  sqlite3_finalize(s);
  return rc;
}

int mg_auth_user_list_json(struct mg_store *st, struct mg_jw *w) {
  sqlite3_stmt *s = NULL;
  int rc = -EIO, step = SQLITE_ERROR;
  if (sqlite3_prepare_v2(mg_store_db(st), "SELECT " USER_COLS " FROM users ORDER BY id",
                         -1, &s, NULL) == SQLITE_OK) {
    mg_jw_arr(w);
    while ((step = sqlite3_step(s)) == SQLITE_ROW)
      user_row_json(s, w);
    mg_jw_arr_end(w);
    rc = step == SQLITE_DONE ? 0 : -EIO;
  }
  sqlite3_finalize(s);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Login and sessions                                                      */

/* A hash of a random password: unknown users cost the same scrypt. */
static char dummy_hash[MG_AUTH_HASH_MAX];

int mg_auth_login_begin(struct mg_store *st, const char *id,
                        char hash[MG_AUTH_HASH_MAX]) {
  sqlite3_stmt *s = NULL;
  int rc = -ENOENT;
  if (id_ok(id) &&
      sqlite3_prepare_v2(mg_store_db(st), "SELECT pw_hash FROM users WHERE id = ?",
                         -1, &s, NULL) == SQLITE_OK) {
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0)) {
      snprintf(hash, MG_AUTH_HASH_MAX, "%s", (const char *)sqlite3_column_text(s, 0));
      rc = 0;
    }
  }
  sqlite3_finalize(s);
  if (rc) {
    if (!dummy_hash[0]) {
      char pw[48];
      if (mg_auth_random_b64url(TOKEN_LEN, pw) == 0)
        mg_auth_hash_password(pw, dummy_hash);
      OPENSSL_cleanse(pw, sizeof(pw));
    }
    snprintf(hash, MG_AUTH_HASH_MAX, "%s", dummy_hash);
  }
  return rc;
}

static int set_failed(sqlite3 *db, const char *id, int failed,
                      const char *locked_until) {
  sqlite3_stmt *s = NULL;
  int rc = -EIO;
  if (sqlite3_prepare_v2(db, "UPDATE users SET failed = ?, locked_until = ? WHERE id = ?",
                         -1, &s, NULL) == SQLITE_OK) {
    sqlite3_bind_int(s, 1, failed);
    sqlite3_bind_text(s, 2, locked_until, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
  }
  sqlite3_finalize(s);
  return rc;
}

static void copy_col(char *dst, size_t len, sqlite3_stmt *s, int col) {
  const unsigned char *v = sqlite3_column_text(s, col);
  snprintf(dst, len, "%s", v ? (const char *)v : "");
}

enum mg_auth_result mg_auth_login_finish(struct mg_store *st, const char *id,
                                         int matched, const char *counter,
                                         time_t now,
                                         struct mg_auth_session *out) {
  sqlite3 *db = mg_store_db(st);
  sqlite3_stmt *s = NULL;
  char nowiso[24], today[16], from[16], until[16], locked[24], th[65];
  int failed = 0;
  enum mg_auth_result res = MG_AUTH_ERROR;

  memset(out, 0, sizeof(*out));
  mg_store_time(now, nowiso);
  iso_date(now, today);
  if (!id_ok(id))
    return MG_AUTH_BAD;
  if (sqlite3_prepare_v2(db,
                         "SELECT name, role, valid_from, valid_until, failed, "
                         "locked_until FROM users WHERE id = ?",
                         -1, &s, NULL) != SQLITE_OK)
    goto out;
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  int step = sqlite3_step(s);
  if (step == SQLITE_DONE) {
    res = MG_AUTH_BAD;
    mg_log_info("auth", "login refused: unknown user");
    goto out;
  }
  if (step != SQLITE_ROW)
    goto out;
  copy_col(out->name, sizeof(out->name), s, 0);
  copy_col(out->role, sizeof(out->role), s, 1);
  copy_col(from, sizeof(from), s, 2);
  copy_col(until, sizeof(until), s, 3);
  failed = sqlite3_column_int(s, 4);
  copy_col(locked, sizeof(locked), s, 5);
  sqlite3_finalize(s);
  s = NULL;

  /* A locked account answers "locked" whatever the password, and the
   * attempt does not count. */
  if (locked[0] && strcmp(locked, nowiso) > 0) {
    snprintf(out->locked_until, sizeof(out->locked_until), "%s", locked);
    mg_log_notice("auth", "login refused: user %s is locked until %s", id, locked);
    res = MG_AUTH_LOCKED;
    goto out;
  }
  if (!matched) {
    failed = locked[0] ? 1 : failed + 1; /* a lock that ran out starts over */
    if (failed >= MG_AUTH_MAX_FAILED) {
      mg_store_time(now + MG_AUTH_LOCK_S, out->locked_until);
      if (set_failed(db, id, 0, out->locked_until))
        goto out;
      mg_log_warn("auth", "user %s locked until %s after %d wrong passwords", id,
                  out->locked_until, MG_AUTH_MAX_FAILED);
      res = MG_AUTH_LOCKED;
    } else {
      if (set_failed(db, id, failed, NULL))
        goto out;
      mg_log_notice("auth", "login refused: wrong password for user %s (%d in a row)",
                    id, failed);
      res = MG_AUTH_BAD;
    }
    goto out;
  }
  if (set_failed(db, id, 0, NULL))
    goto out;
  /* Only the right password learns that the account is out of its dates. */
  if ((from[0] && strcmp(today, from) < 0) || (until[0] && strcmp(today, until) > 0)) {
    mg_log_notice("auth", "login refused: user %s is outside its validity period", id);
    res = MG_AUTH_NOT_VALID;
    goto out;
  }
  if (mg_auth_random_b64url(TOKEN_LEN, out->token) || mg_auth_random_b64url(CSRF_LEN, out->csrf) ||
      token_hash(out->token, th))
    goto out;
  snprintf(out->user_id, sizeof(out->user_id), "%s", id);
  snprintf(out->counter, sizeof(out->counter), "%s", counter);
  mg_store_time(now + MG_AUTH_SESSION_S, out->expires_at);
  if (sqlite3_prepare_v2(db,
                         "INSERT INTO sessions(token_hash, user_id, counter, csrf, "
                         "created_at, expires_at) VALUES (?,?,?,?,?,?)",
                         -1, &s, NULL) != SQLITE_OK)
    goto out;
  sqlite3_bind_text(s, 1, th, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 3, counter, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 4, out->csrf, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 5, nowiso, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 6, out->expires_at, -1, SQLITE_STATIC);
  if (sqlite3_step(s) != SQLITE_DONE)
    goto out;
  /* Old sessions are swept at each login rather than by a timer. */
  sqlite3_finalize(s);
  s = NULL;
  if (sqlite3_prepare_v2(db, "DELETE FROM sessions WHERE expires_at <= ?", -1, &s,
                         NULL) == SQLITE_OK) {
    sqlite3_bind_text(s, 1, nowiso, -1, SQLITE_STATIC);
    sqlite3_step(s);
  }
  mg_log_notice("auth", "user %s logged in at counter %s", id, counter);
  res = MG_AUTH_OK;
out:
  if (res == MG_AUTH_ERROR)
    mg_log_err("auth", "login of user %s failed: %s", id, sqlite3_errmsg(db));
  if (res != MG_AUTH_OK) {
    char keep[24];
    memcpy(keep, out->locked_until, sizeof(keep));
    OPENSSL_cleanse(out, sizeof(*out));
    memcpy(out->locked_until, keep, sizeof(keep));
  }
  sqlite3_finalize(s);
  return res;
}

enum mg_auth_result mg_auth_login(struct mg_store *st, const char *id,
                                  const char *password, const char *counter,
                                  time_t now, struct mg_auth_session *out) {
  char hash[MG_AUTH_HASH_MAX];
  int known = mg_auth_login_begin(st, id, hash) == 0;
  int matched = mg_auth_verify_password(password, hash) && known;
  OPENSSL_cleanse(hash, sizeof(hash));
  return mg_auth_login_finish(st, id, matched, counter, now, out);
}

int mg_auth_session_get(struct mg_store *st, const char *token, time_t now,
                        struct mg_auth_session *out) {
  sqlite3_stmt *s = NULL;
  char th[65], nowiso[24];
  int rc = -ENOENT;
  memset(out, 0, sizeof(*out));
  if (!token || !*token || strlen(token) > 64 || token_hash(token, th))
    return -ENOENT;
  mg_store_time(now, nowiso);
  /* every request looks its session up: parsed once (mg_store_stmt) */
  if (!(s = mg_store_stmt(st, "SELECT s.user_id, u.name, u.role, s.counter, "
                              "s.csrf, s.expires_at FROM sessions s JOIN users "
                              "u ON u.id = s.user_id WHERE s.token_hash = ?")))
    return -EIO;
  sqlite3_bind_text(s, 1, th, -1, SQLITE_STATIC);
  if (sqlite3_step(s) == SQLITE_ROW) {
    copy_col(out->user_id, sizeof(out->user_id), s, 0);
    copy_col(out->name, sizeof(out->name), s, 1);
    copy_col(out->role, sizeof(out->role), s, 2);
    copy_col(out->counter, sizeof(out->counter), s, 3);
    copy_col(out->csrf, sizeof(out->csrf), s, 4);
    copy_col(out->expires_at, sizeof(out->expires_at), s, 5);
    rc = strcmp(out->expires_at, nowiso) > 0 ? 0 : -ETIMEDOUT;
  }
  mg_store_stmt_done(st, s);
  if (rc == -ETIMEDOUT) {
    mg_log_info("auth", "session of user %s expired", out->user_id);
    exec_id(st, "DELETE FROM sessions WHERE token_hash = ?", th);
    rc = -ENOENT;
  }
  if (rc)
    OPENSSL_cleanse(out, sizeof(*out));
  return rc;
}

int mg_auth_logout(struct mg_store *st, const char *token) {
  char th[65];
  if (!token || !*token || strlen(token) > 64 || token_hash(token, th))
    return -ENOENT;
  return exec_id(st, "DELETE FROM sessions WHERE token_hash = ?", th);
}

int mg_auth_csrf_ok(const struct mg_auth_session *s, const char *presented) {
  size_t n = strlen(s->csrf);
  if (!presented || n == 0 || strlen(presented) != n)
    return 0;
  return CRYPTO_memcmp(s->csrf, presented, n) == 0;
}

/* ---------------------------------------------------------------------- */
/* HTTP                                                                    */

int mg__auth_cookie_token(const char *cookie, char *out, size_t len) {
  static const char name[] = "mg_session=";
  const char *p = cookie;
  while (p && *p) {
    while (*p == ' ' || *p == ';')
      p++;
    size_t n = strcspn(p, ";");
    if (strncmp(p, name, sizeof(name) - 1) == 0) {
      size_t v = n - (sizeof(name) - 1);
      if (v == 0 || v >= len)
        return -1;
      memcpy(out, p + sizeof(name) - 1, v);
      out[v] = '\0';
      return 0;
    }
    p += n;
  }
  return -1;
}

int mg__auth_require(struct mg_store *st, struct mg_http_txn *t, int role_min,
                     int need_csrf, struct mg_auth_session *out) {
  char cookie[4096], token[80], csrf[80];
  int rc = -1;
  cookie[0] = token[0] = csrf[0] = '\0';
  if (mg_http_header(t, "cookie:", cookie, sizeof(cookie)) < 0 ||
      mg__auth_cookie_token(cookie, token, sizeof(token)) ||
      mg_auth_session_get(st, token, time(NULL), out)) {
    mg_http_reply_error(t, 401, "not_logged_in", "log in first (POST /api/v1/session)");
    goto out;
  }
  if (need_csrf && (mg_http_header(t, "x-csrf-token:", csrf, sizeof(csrf)) < 0 ||
                    !mg_auth_csrf_ok(out, csrf))) {
    mg_http_reply_error(t, 403, "csrf_failed",
                        "the X-CSRF-Token header is missing or wrong");
    goto out;
  }
  if (mg_auth_role_parse(out->role) < role_min) {
    mg_http_reply_error(t, 403, "forbidden", "your role may not do this");
    goto out;
  }
  rc = 0;
out:
  /* what was written (a 4 KiB wipe per request otherwise) */
  OPENSSL_cleanse(cookie, strnlen(cookie, sizeof(cookie)));
  OPENSSL_cleanse(token, sizeof(token));
  if (rc)
    OPENSSL_cleanse(out, sizeof(*out));
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Seed users ([auth] users_file)                                          */

int mg_auth_seed_file(struct mg_store *st, const char *path, time_t now,
                      struct mg_err *err) {
  static const char *const cols[] = {"id", "name", "role", "password_hash",
                                     "valid_from", "valid_until"};
  struct mg_csv csv;
  struct mg_csv_error ce;
  char *data = NULL;
  size_t len = 0;
  int idx[6], rc = 0, added = 0;
  FILE *f = fopen(path, "re");

  memset(&csv, 0, sizeof(csv));
  if (!f)
    return mg_err_set(err, -errno, "%s: cannot open: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fileno(f), &sb) == 0 && (sb.st_mode & 022)) {
    rc = mg_err_set(err, -EPERM, "%s: must not be writable by group or others "
                    "(it decides who may log in)", path);
    goto out;
  }
  for (;;) {
    char chunk[4096];
    size_t n = fread(chunk, 1, sizeof(chunk), f);
    if (n == 0)
      break;
    char *p = realloc(data, len + n + 1);
    if (!p) {
      rc = mg_err_set(err, -ENOMEM, "out of memory");
      goto out;
    }
    data = p;
    memcpy(data + len, chunk, n);
    len += n;
  }
  if ((rc = mg_csv_parse(data ? data : "", len, &csv, &ce))) {
    rc = mg_err_set(err, rc, "%s:%d:%d: %s", path, ce.line, ce.col, ce.rule);
    goto out;
  }
  for (size_t k = 0; k < 6; k++) {
    idx[k] = mg_csv_column(&csv, cols[k]);
    if (idx[k] < 0 && k < 4) {
      rc = mg_err_set(err, -EINVAL, "%s:1: column \"%s\" is missing (id, "
                      "name, role, password_hash[, valid_from, valid_until])",
                      path, cols[k]);
      goto out;
    }
  }
  if ((int)csv.header.n > 6 - (idx[4] < 0) - (idx[5] < 0)) {
    rc = mg_err_set(err, -EINVAL, "%s:1: unknown column (id, name, role, "
                    "password_hash, valid_from, valid_until)", path);
    goto out;
  }
  for (size_t r = 0; r < csv.n_rows; r++) {
    const struct mg_csv_row *row = &csv.rows[r];
    const char *v[6];
    struct mg_err e;
    for (size_t k = 0; k < 6; k++)
      v[k] = idx[k] >= 0 ? row->cells[idx[k]].text : "";
    if (strncmp(v[3], "scrypt$", 7) != 0) {
      rc = mg_err_set(err, -EINVAL, "%s:%d: password_hash: not a hash (make "
                      "one with `madoctl user hash --password-stdin`)",
                      path, row->line);
      goto out;
    }
    int a = mg_auth_user_add_hashed(st, v[0], v[1], v[2], v[3], v[4], v[5],
                                    now, &e);
    if (a == -EEXIST)
      continue; /* the box's own changes win over the seed */
    if (a) {
      rc = mg_err_set(err, a, "%s:%d: %s", path, row->line, e.msg);
      goto out;
    }
    added++;
  }
  if (added)
    mg_log_notice("auth", "%d user(s) added from %s", added, path);
  rc = added;
out:
  if (f)
    fclose(f);
  if (data)
    OPENSSL_cleanse(data, len);
  free(data);
  mg_csv_free(&csv);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Tablets registered to counters                                         */

int mg_auth_tablet_add(struct mg_store *st, const char *counter,
                       const char *name, const char *by, time_t now,
                       char token[64], char id[24], struct mg_err *err) {
  sqlite3 *db = mg_store_db(st);
  sqlite3_stmt *s = NULL;
  char th[65], created[24];
  int rc = -EIO;
  if (!name || !*name || strlen(name) > 100)
    return mg_err_set(err, -EINVAL, "name: a tablet needs a name (up to 100 "
                      "bytes)");
  if (mg_auth_random_b64url(TOKEN_LEN, token) || mg_auth_random_b64url(9, id) ||
      token_hash(token, th))
    return mg_err_set(err, -EIO, "no random bytes");
  mg_store_time(now, created);
  if (sqlite3_prepare_v2(db,
                         "INSERT INTO tablets (id, token_hash, counter, name, "
                         "created_by, created_at) VALUES (?,?,?,?,?,?)",
                         -1, &s, NULL) == SQLITE_OK) {
    const char *v[] = {id, th, counter, name, by, created};
    for (int i = 0; i < 6; i++)
      sqlite3_bind_text(s, i + 1, v[i], -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_DONE)
      rc = 0;
  }
  sqlite3_finalize(s);
  if (rc)
    return mg_err_set(err, rc, "the tablet could not be stored: %s",
                      sqlite3_errmsg(db));
  mg_log_notice("auth", "tablet %s registered to counter %s by %s", id,
                counter, by);
  return 0;
}

int mg_auth_tablet_counter(struct mg_store *st, const char *token,
                           char counter[72]) {
  sqlite3 *db = mg_store_db(st);
  sqlite3_stmt *s = NULL;
  char th[65];
  int rc = -ENOENT;
  if (token_hash(token, th))
    return -EIO;
  if (sqlite3_prepare_v2(db, "SELECT counter FROM tablets WHERE token_hash = ?",
                         -1, &s, NULL) == SQLITE_OK &&
      sqlite3_bind_text(s, 1, th, -1, SQLITE_STATIC) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW) {
    snprintf(counter, 72, "%s", (const char *)sqlite3_column_text(s, 0));
    rc = 0;
  }
  sqlite3_finalize(s);
  return rc;
}

int mg__auth_cookie_value(const char *cookie, const char *name, char *out,
                          size_t len) {
  size_t nl = strlen(name);
  for (const char *p = cookie; p && *p;) {
    while (*p == ' ' || *p == ';')
      p++;
    const char *end = strchr(p, ';');
    size_t l = end ? (size_t)(end - p) : strlen(p);
    if (l > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
      if (l - nl - 1 >= len)
        return -1;
      memcpy(out, p + nl + 1, l - nl - 1);
      out[l - nl - 1] = 0;
      return 0;
    }
    p = end;
  }
  return -1;
}

int mg_auth_tablet_list_json(struct mg_store *st, struct mg_jw *w) {
  sqlite3_stmt *s = NULL;
  int rc;
  if (sqlite3_prepare_v2(mg_store_db(st),
                         "SELECT id, counter, name, created_by, created_at FROM "
                         "tablets ORDER BY counter, created_at",
                         -1, &s, NULL) != SQLITE_OK)
    return -EIO;
  mg_jw_arr(w);
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    static const char *const keys[] = {"id", "counter", "name", "created_by",
                                       "created_at"};
    mg_jw_obj(w);
    for (int i = 0; i < 5; i++)
      mg_jw_kstr(w, keys[i], (const char *)sqlite3_column_text(s, i));
    mg_jw_obj_end(w);
  }
  mg_jw_arr_end(w);
  sqlite3_finalize(s);
  return rc == SQLITE_DONE ? 0 : -EIO;
}

int mg_auth_tablet_del(struct mg_store *st, const char *id) {
  sqlite3_stmt *s = NULL;
  int rc = -EIO;
  if (sqlite3_prepare_v2(mg_store_db(st), "DELETE FROM tablets WHERE id = ?",
                         -1, &s, NULL) == SQLITE_OK &&
      sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_DONE)
    rc = sqlite3_changes(mg_store_db(st)) ? 0 : -ENOENT;
  sqlite3_finalize(s);
  if (rc == 0)
    mg_log_notice("auth", "tablet %s removed", id);
  return rc;
}
