/*
 * tenant_db.c — madoguchi-tenantd's PostgreSQL side (issue 8, X3, N4).
 *
 * One schema city_<code> per city, owned by the login role mg_city_<code>
 * that can use nothing else (the schema is closed to PUBLIC, so another
 * city's role gets "permission denied").  The server works only through
 * per-city pools logged in as that role; the admin conninfo serves only
 * init-city, the enrolment codes and revoke.  Retention (D1): each city's
 * own row in city_<code>.retention; the purge runs as the city's role.
 * Every call here blocks: the server
 * runs them on libuv worker threads.  Each batch is one transaction and is
 * answered only after COMMIT (synchronous_commit as the server has it: on
 * by default).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "buf.h"
#include "envelope.h"
#include "json.h"
#include "tenant.h"

struct mg_t_pool {
  char city[8];
  char *conninfo;
  PGconn **c;
  char *busy;
  int n;
  pthread_mutex_t mu;
  pthread_cond_t cv;
};

const char *mg_t_pool_city(const struct mg_t_pool *p) { return p->city; }

/* The first line of libpq's message, for err. */
static const char *pqmsg(PGconn *c, char *buf, size_t len) {
  snprintf(buf, len, "%s", c ? PQerrorMessage(c) : "no connection");
  char *nl = strchr(buf, '\n');
  if (nl)
    *nl = '\0';
  return buf;
}

/* Run sql with params (types NULL: inferred; binary arrays need them);
 * NULL on failure (err filled) else the result (PQclear it). */
static PGresult *qt(PGconn *c, const char *sql, int n, const Oid *types,
                    const char *const *v, const int *lens, const int *fmts,
                    struct mg_err *err) {
  char m[300];
  PGresult *r = PQexecParams(c, sql, n, types, v, lens, fmts, 0);
  ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
    return r;
  mg_err_set(err, -EIO, "database: %s", pqmsg(c, m, sizeof(m)));
  PQclear(r);
  return NULL;
}

static PGresult *q(PGconn *c, const char *sql, int n, const char *const *v,
                   const int *lens, const int *fmts, struct mg_err *err) {
  return qt(c, sql, n, NULL, v, lens, fmts, err);
}

static int exec(PGconn *c, const char *sql, struct mg_err *err) {
  PGresult *r = q(c, sql, 0, NULL, NULL, NULL, err);
  PQclear(r);
  return r ? 0 : -EIO;
}

static PGconn *admin_connect(const char *conninfo, struct mg_err *err) {
  char m[300];
  PGconn *c = PQconnectdb(conninfo);
  if (PQstatus(c) != CONNECTION_OK) {
    mg_err_set(err, -EIO, "admin connection: %s", pqmsg(c, m, sizeof(m)));
    PQfinish(c);
    return NULL;
  }
  return c;
}

/* ------------------------------------------------------------- admin */

static int write_secret(const char *state_dir, const char *city,
                        const char *pw, struct mg_err *err) {
  char dir[PATH_MAX], path[PATH_MAX + 32], tmp[PATH_MAX + 48];
  snprintf(dir, sizeof(dir), "%s/cities", state_dir);
  if (mkdir(dir, 0700) && errno != EEXIST)
    return mg_err_set(err, -errno, "%s: cannot create: %s", dir, strerror(errno));
  snprintf(path, sizeof(path), "%s/%s.secret", dir, city);
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return mg_err_set(err, -errno, "%s: cannot create: %s", tmp, strerror(errno));
  size_t n = strlen(pw);
  int ok = write(fd, pw, n) == (ssize_t)n && write(fd, "\n", 1) == 1 && !fsync(fd);
  close(fd);
  if (!ok || rename(tmp, path)) {
    unlink(tmp);
    return mg_err_set(err, -EIO, "%s: cannot write", path);
  }
  return 0;
}

/* ---------------------------------------------------------- retention */

int mg_t_retention_parse(const char *s, int64_t *secs, struct mg_err *err) {
  static const char rule[] =
      "must be a number and a unit s, m (minutes), h, d or w, from 1s to 3660d "
      "(e.g. 30d)";
  size_t nd = s ? strspn(s, "0123456789") : 0;
  int64_t mul = 0, n = 0;
  if (nd == 0 || nd > 12 || strlen(s + nd) != 1)
    return mg_err_set(err, -EINVAL, "--retention %s: %s", s ? s : "", rule);
  switch (s[nd]) {
  case 's': mul = 1; break;
  case 'm': mul = 60; break;
  case 'h': mul = 3600; break;
  case 'd': mul = 86400; break;
  case 'w': mul = 7 * 86400; break;
  default:
    return mg_err_set(err, -EINVAL, "--retention %s: %s", s, rule);
  }
  for (size_t i = 0; i < nd; i++)
    n = n * 10 + (s[i] - '0');
  if (n < 1 || n > MG_T_RETENTION_MAX / mul)
    return mg_err_set(err, -EINVAL, "--retention %s: %s", s, rule);
  *secs = n * mul;
  return 0;
}

void mg_t_retention_fmt(int64_t secs, char out[32]) {
  /* days rather than weeks: retention periods are set in days */
  static const struct { int64_t mul; char u; } units[] = {
      {86400, 'd'}, {3600, 'h'}, {60, 'm'}};
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
    if (secs >= units[i].mul && secs % units[i].mul == 0) {
      snprintf(out, 32, "%lld%c", (long long)(secs / units[i].mul), units[i].u);
      return;
    }
  snprintf(out, 32, "%llds", (long long)secs);
}

/* The city's retention in seconds (its `retention` row). */
static int get_retention(PGconn *c, const char *city, int64_t *secs,
                         struct mg_err *err) {
  char sql[128];
  snprintf(sql, sizeof(sql), "SELECT seconds FROM city_%s.retention", city);
  PGresult *r = q(c, sql, 0, NULL, NULL, NULL, err);
  int rc = 0;
  if (!r)
    return -EIO;
  if (PQntuples(r) != 1)
    rc = mg_err_set(err, -ENOENT, "city %s: no retention set (run init-city)", city);
  else
    *secs = atoll(PQgetvalue(r, 0, 0));
  PQclear(r);
  return rc;
}

int mg_t_db_init_city(const char *admin_conninfo, const char *state_dir,
                      const char *city, int64_t retention, int64_t *now_ret,
                      struct mg_err *err) {
  unsigned char raw[24];
  char pw[49], sql[8192];
  PGconn *c = NULL;
  int rc = 0;
  if (!mg_t_is_city(city))
    return mg_err_set(err, -EINVAL, "--city %s: must be a 6-digit city code", city);
  if (retention < 0 || retention > MG_T_RETENTION_MAX)
    return mg_err_set(err, -EINVAL, "--retention: from 1s to 3660d");
  if (RAND_bytes(raw, sizeof(raw)) != 1)
    return mg_err_set(err, -EIO, "no random bytes");
  for (size_t i = 0; i < sizeof(raw); i++)
    snprintf(pw + 2 * i, 3, "%02x", raw[i]);
  if (!(c = admin_connect(admin_conninfo, err)))
    return -EIO;
  /* names are built from the checked 6 digits only */
  snprintf(sql, sizeof(sql),
           "SET client_min_messages = warning;"
           "BEGIN;"
           "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
           "'mg_city_%1$s') THEN CREATE ROLE mg_city_%1$s; END IF; END$$;"
           "ALTER ROLE mg_city_%1$s LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
           "NOINHERIT NOREPLICATION NOBYPASSRLS PASSWORD '%2$s';"
           "ALTER ROLE mg_city_%1$s SET search_path = city_%1$s;"
           "DO $$BEGIN EXECUTE format('REVOKE ALL ON DATABASE %%I FROM PUBLIC', "
           "current_database()); EXECUTE format('GRANT CONNECT ON DATABASE %%I "
           "TO mg_city_%1$s', current_database()); END$$;"
           "REVOKE ALL ON SCHEMA public FROM PUBLIC;"
           "CREATE SCHEMA IF NOT EXISTS city_%1$s AUTHORIZATION mg_city_%1$s;"
           "REVOKE ALL ON SCHEMA city_%1$s FROM PUBLIC;"
           "SET LOCAL ROLE mg_city_%1$s;"
           "CREATE TABLE IF NOT EXISTS city_%1$s.certs ("
           " serial text PRIMARY KEY, box text NOT NULL, sign_key text NOT NULL,"
           " recv_key text NOT NULL, issued_at timestamptz NOT NULL DEFAULT now(),"
           " revoked_at timestamptz);"
           "CREATE UNIQUE INDEX IF NOT EXISTS certs_live ON city_%1$s.certs(box)"
           " WHERE revoked_at IS NULL;"
           "CREATE TABLE IF NOT EXISTS city_%1$s.enrol_codes ("
           " code_sha256 text PRIMARY KEY, box text NOT NULL,"
           " created_at timestamptz NOT NULL DEFAULT now(),"
           " expires_at timestamptz NOT NULL, used_at timestamptz, serial text);"
           "CREATE TABLE IF NOT EXISTS city_%1$s.batches ("
           " id text PRIMARY KEY, box text NOT NULL, serial text NOT NULL,"
           " digest text NOT NULL, n integer NOT NULL, results text NOT NULL,"
           " received_at timestamptz NOT NULL DEFAULT now());"
           "CREATE TABLE IF NOT EXISTS city_%1$s.applications ("
           " id text PRIMARY KEY, box text NOT NULL, serial text NOT NULL,"
           " batch text NOT NULL, plain_sha256 text NOT NULL, plain bytea NOT NULL,"
           " seal bytea NOT NULL, stored_at timestamptz NOT NULL DEFAULT now());"
           "CREATE TABLE IF NOT EXISTS city_%1$s.cases ("
           " id text PRIMARY KEY, version bigint NOT NULL, box text NOT NULL,"
           " serial text NOT NULL, batch text NOT NULL, number text,"
           " token_sha256 text, plain_sha256 text NOT NULL, plain bytea NOT NULL,"
           " seal bytea NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());"
           "CREATE INDEX IF NOT EXISTS cases_number ON city_%1$s.cases(number);"
           "CREATE INDEX IF NOT EXISTS cases_token ON city_%1$s.cases(token_sha256);"
           /* D1: what the purge looks at, and the city's own retention */
           "CREATE INDEX IF NOT EXISTS applications_stored ON "
           " city_%1$s.applications(stored_at);"
           "CREATE INDEX IF NOT EXISTS cases_updated ON city_%1$s.cases(updated_at);"
           "CREATE INDEX IF NOT EXISTS batches_received ON "
           " city_%1$s.batches(received_at);"
           "CREATE TABLE IF NOT EXISTS city_%1$s.retention ("
           " one boolean PRIMARY KEY DEFAULT true CHECK (one),"
           " seconds bigint NOT NULL CHECK (seconds > 0),"
           " set_at timestamptz NOT NULL DEFAULT now());"
           "INSERT INTO city_%1$s.retention (seconds) VALUES (%3$lld)"
           " ON CONFLICT (one) DO %4$s;"
           /* wrong enrolment codes per box (too_many_attempts) */
           "CREATE TABLE IF NOT EXISTS city_%1$s.enrol_attempts ("
           " box text PRIMARY KEY, failures integer NOT NULL,"
           " window_start timestamptz NOT NULL, locked_until timestamptz);"
           "RESET ROLE;"
           "COMMIT;",
           city, pw, (long long)(retention > 0 ? retention : MG_T_RETENTION_DEFAULT),
           retention > 0 ? "UPDATE SET seconds = EXCLUDED.seconds, set_at = now()"
                         : "NOTHING");
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    char m[300];
    rc = mg_err_set(err, -EIO, "init-city %s: %s", city, pqmsg(c, m, sizeof(m)));
    PQclear(r);
    goto out;
  }
  PQclear(r);
  if ((rc = get_retention(c, city, now_ret, err)))
    goto out;
  rc = write_secret(state_dir, city, pw, err);
out:
  OPENSSL_cleanse(pw, sizeof(pw));
  OPENSSL_cleanse(sql, sizeof(sql));
  PQfinish(c);
  return rc;
}

int mg_t_db_enroll_code(const char *admin_conninfo, const char *city,
                        const char *box, char code[32], struct mg_err *err) {
  static const char alpha[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  unsigned char raw[16];
  char sql[256], h[65];
  PGconn *c = NULL;
  int rc = 0;
  if (!mg_t_is_city(city) || !mg_t_is_box(box))
    return mg_err_set(err, -EINVAL,
                      "--city must be 6 digits and --box [a-z0-9][a-z0-9-]{0,62}");
  if (RAND_bytes(raw, sizeof(raw)) != 1)
    return mg_err_set(err, -EIO, "no random bytes");
  size_t o = 0;
  for (int i = 0; i < 16; i++) {
    if (i && i % 4 == 0)
      code[o++] = '-';
    code[o++] = alpha[raw[i] & 31];
  }
  code[o] = '\0';
  mg_t_sha256_hex(code, o, h);
  if (!(c = admin_connect(admin_conninfo, err)))
    return -EIO;
  snprintf(sql, sizeof(sql),
           "INSERT INTO city_%s.enrol_codes (code_sha256, box, expires_at) "
           "VALUES ($1, $2, now() + interval '24 hours')",
           city);
  const char *v[] = {h, box};
  PGresult *r = q(c, sql, 2, v, NULL, NULL, err);
  if (!r)
    rc = -EIO;
  PQclear(r);
  /* a new code ends the box's lock for wrong codes (the technician acted) */
  snprintf(sql, sizeof(sql), "DELETE FROM city_%s.enrol_attempts WHERE box = $1",
           city);
  const char *v2[] = {box};
  if (!rc && !(r = q(c, sql, 1, v2, NULL, NULL, err)))
    rc = -EIO;
  if (!rc)
    PQclear(r);
  PQfinish(c);
  return rc;
}

int mg_t_db_list_codes(const char *admin_conninfo, const char *city,
                       char **text, int *n, struct mg_err *err) {
  char sql[400];
  PGconn *c = NULL;
  PGresult *r = NULL;
  struct mg_buf b;
  int rc = 0;
  *text = NULL;
  *n = 0;
  mg_buf_init(&b);
  if (!mg_t_is_city(city))
    return mg_err_set(err, -EINVAL, "--city %s: must be a 6-digit city code", city);
  if (!(c = admin_connect(admin_conninfo, err)))
    return -EIO;
  snprintf(sql, sizeof(sql),
           "SELECT box, to_char(created_at AT TIME ZONE 'UTC', "
           "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), to_char(expires_at AT TIME ZONE "
           "'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM city_%s.enrol_codes "
           "WHERE used_at IS NULL AND expires_at > now() ORDER BY box, created_at",
           city);
  if (!(r = q(c, sql, 0, NULL, NULL, NULL, err))) {
    rc = -EIO;
    goto out;
  }
  mg_buf_printf(&b, "box\tcreated\texpires\n");
  for (int i = 0; i < PQntuples(r); i++)
    mg_buf_printf(&b, "%s\t%s\t%s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                  PQgetvalue(r, i, 2));
  if (b.oom) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  *n = PQntuples(r);
  *text = mg_buf_steal(&b);
out:
  mg_buf_free(&b);
  PQclear(r);
  PQfinish(c);
  return rc;
}

/* One UPDATE of a box's rows in a city's schema as the admin: `sql_fmt`
 * has one %s (the city) and $1 (the box); *n rows changed, -ENOENT naming
 * `none` when nothing matched. */
static int admin_update_box(const char *admin_conninfo, const char *city,
                            const char *box, const char *sql_fmt,
                            const char *none, int *n, struct mg_err *err) {
  char sql[256];
  PGconn *c = NULL;
  int rc = 0;
  *n = 0;
  if (!mg_t_is_city(city) || !mg_t_is_box(box))
    return mg_err_set(err, -EINVAL,
                      "--city must be 6 digits and --box [a-z0-9][a-z0-9-]{0,62}");
  if (!(c = admin_connect(admin_conninfo, err)))
    return -EIO;
  snprintf(sql, sizeof(sql), sql_fmt, city);
  const char *v[] = {box};
  PGresult *r = q(c, sql, 1, v, NULL, NULL, err);
  if (!r) {
    rc = -EIO;
  } else {
    *n = atoi(PQcmdTuples(r));
    if (*n == 0)
      rc = mg_err_set(err, -ENOENT, "city %s has no %s for box %s", city,
                      none, box);
  }
  PQclear(r);
  PQfinish(c);
  return rc;
}

int mg_t_db_expire_codes(const char *admin_conninfo, const char *city,
                         const char *box, int *n, struct mg_err *err) {
  /* voided = expired now: enrolment then answers bad_code "expired" */
  return admin_update_box(admin_conninfo, city, box,
                          "UPDATE city_%s.enrol_codes SET expires_at = now() "
                          "WHERE box = $1 AND used_at IS NULL AND expires_at > "
                          "now()",
                          "pending code", n, err);
}

int mg_t_db_revoke(const char *admin_conninfo, const char *city,
                   const char *box, int *n, struct mg_err *err) {
  return admin_update_box(admin_conninfo, city, box,
                          "UPDATE city_%s.certs SET revoked_at = now() WHERE "
                          "box = $1 AND revoked_at IS NULL",
                          "live certificate", n, err);
}

/* -------------------------------------------------------------- pools */

int mg_t_pool_open(const char *conninfo_base, const char *state_dir,
                   const char *city, int size, struct mg_t_pool **out,
                   struct mg_err *err) {
  char path[PATH_MAX], pw[128] = "";
  struct mg_t_pool *p = NULL;
  FILE *f = NULL;
  int rc = 0;
  *out = NULL;
  snprintf(path, sizeof(path), "%s/cities/%s.secret", state_dir, city);
  if (!(f = fopen(path, "r")) || !fgets(pw, sizeof(pw), f)) {
    rc = mg_err_set(err, -ENOENT, "%s: cannot read the city's password (run "
                    "init-city --city %s)", path, city);
    goto out;
  }
  pw[strcspn(pw, "\r\n")] = '\0';
  if (!(p = calloc(1, sizeof(*p))) || !(p->c = calloc((size_t)size, sizeof(*p->c))) ||
      !(p->busy = calloc((size_t)size, 1))) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  snprintf(p->city, sizeof(p->city), "%s", city);
  p->n = size;
  size_t n = strlen(conninfo_base) + strlen(pw) + 64;
  if (!(p->conninfo = malloc(n))) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  snprintf(p->conninfo, n, "%s user=mg_city_%s password=%s", conninfo_base,
           city, pw);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  /* one connection now: a wrong password or host shows at start */
  char m[300];
  p->c[0] = PQconnectdb(p->conninfo);
  if (PQstatus(p->c[0]) != CONNECTION_OK) {
    rc = mg_err_set(err, -EIO, "city %s: cannot log in as mg_city_%s: %s", city,
                    city, pqmsg(p->c[0], m, sizeof(m)));
    goto out;
  }
  *out = p;
  p = NULL;
out:
  if (f)
    fclose(f);
  OPENSSL_cleanse(pw, sizeof(pw));
  mg_t_pool_free(p);
  return rc;
}

void mg_t_pool_free(struct mg_t_pool *p) {
  if (!p)
    return;
  for (int i = 0; p->c && i < p->n; i++)
    PQfinish(p->c[i]);
  if (p->conninfo) {
    OPENSSL_cleanse(p->conninfo, strlen(p->conninfo));
    free(p->conninfo);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
  }
  free(p->c);
  free(p->busy);
  free(p);
}

/* A connection of the pool (waits for a free one); -1 when it cannot
 * connect. */
static int take(struct mg_t_pool *p, struct mg_err *err) {
  int i;
  char m[300];
  pthread_mutex_lock(&p->mu);
  for (;;) {
    for (i = 0; i < p->n && p->busy[i]; i++)
      ;
    if (i < p->n)
      break;
    pthread_cond_wait(&p->cv, &p->mu);
  }
  p->busy[i] = 1;
  pthread_mutex_unlock(&p->mu);
  if (!p->c[i] || PQstatus(p->c[i]) != CONNECTION_OK) {
    PQfinish(p->c[i]);
    p->c[i] = PQconnectdb(p->conninfo);
    if (PQstatus(p->c[i]) != CONNECTION_OK) {
      mg_err_set(err, -EIO, "database: %s", pqmsg(p->c[i], m, sizeof(m)));
      PQfinish(p->c[i]);
      p->c[i] = NULL;
      pthread_mutex_lock(&p->mu);
      p->busy[i] = 0;
      pthread_cond_signal(&p->cv);
      pthread_mutex_unlock(&p->mu);
      return -1;
    }
  }
  return i;
}

static void give(struct mg_t_pool *p, int i) {
  pthread_mutex_lock(&p->mu);
  p->busy[i] = 0;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

/* Leave a connection outside a transaction whatever happened. */
static void rollback(PGconn *c) {
  if (PQtransactionStatus(c) != PQTRANS_IDLE)
    PQclear(PQexec(c, "ROLLBACK"));
}

/* ------------------------------------------------------------ queries */

int mg_t_db_box(struct mg_t_pool *p, const char *serial, struct mg_t_box *out,
                struct mg_err *err) {
  char sql[200];
  int i = take(p, err), rc = 0;
  PGresult *r = NULL;
  memset(out, 0, sizeof(*out));
  if (i < 0)
    return -EIO;
  snprintf(sql, sizeof(sql),
           "SELECT box, sign_key, recv_key, revoked_at IS NOT NULL FROM "
           "city_%s.certs WHERE serial = $1",
           p->city);
  const char *v[] = {serial};
  if (!(r = q(p->c[i], sql, 1, v, NULL, NULL, err))) {
    rc = -EIO;
  } else if (PQntuples(r) != 1) {
    rc = mg_err_set(err, -ENOENT,
                    "certificate %s is not enrolled in city %s", serial, p->city);
  } else {
    snprintf(out->box, sizeof(out->box), "%s", PQgetvalue(r, 0, 0));
    snprintf(out->sign_key, sizeof(out->sign_key), "%s", PQgetvalue(r, 0, 1));
    snprintf(out->recv_key, sizeof(out->recv_key), "%s", PQgetvalue(r, 0, 2));
    if (strcmp(PQgetvalue(r, 0, 3), "t") == 0)
      rc = mg_err_set(err, -EACCES, "certificate %s of box %s was revoked",
                      serial, out->box);
  }
  PQclear(r);
  give(p, i);
  return rc;
}

/* One more wrong code for box (outside the refused enrolment's
 * transaction, so it stays); the box is locked when it reaches the limit.
 * A failure here is only logged by the caller's err: the refusal stands. */
static void count_wrong_code(PGconn *c, const char *city, const char *box,
                             const struct mg_t_limits *lim) {
  char sql[700], lock[24], lim_s[16];
  struct mg_err e;
  snprintf(lock, sizeof(lock), "%lld", (long long)lim->lock_s);
  snprintf(lim_s, sizeof(lim_s), "%d", lim->attempts);
  /* a count older than the window starts again */
  snprintf(sql, sizeof(sql),
           "INSERT INTO city_%1$s.enrol_attempts AS a (box, failures, window_start) "
           "VALUES ($1, 1, now()) ON CONFLICT (box) DO UPDATE SET failures = "
           "CASE WHEN a.window_start < now() - $2::bigint * interval '1 second' "
           "THEN 1 ELSE a.failures + 1 END, window_start = CASE WHEN "
           "a.window_start < now() - $2::bigint * interval '1 second' THEN now() "
           "ELSE a.window_start END",
           city);
  const char *v[] = {box, lock};
  PQclear(q(c, sql, 2, v, NULL, NULL, &e));
  snprintf(sql, sizeof(sql),
           "UPDATE city_%s.enrol_attempts SET locked_until = now() + $2::bigint * "
           "interval '1 second', failures = 0, window_start = now() WHERE box = $1 "
           "AND failures >= $3::integer",
           city);
  const char *v2[] = {box, lock, lim_s};
  PQclear(q(c, sql, 3, v2, NULL, NULL, &e));
}

int mg_t_db_enroll(struct mg_t_pool *p, struct mg_t_ca *ca, const char *box,
                   const char *code, EVP_PKEY *sign_key, const char *sign_b64,
                   const char *recv_b64, const struct mg_t_limits *lim,
                   char **pem, char serial[80], int64_t *retry_after,
                   struct mg_err *err) {
  char sql[300], h[65];
  PGresult *r = NULL;
  int i = take(p, err), rc = 0;
  *pem = NULL;
  *retry_after = 0;
  if (i < 0)
    return -EIO;
  PGconn *c = p->c[i];
  mg_t_sha256_hex(code, strlen(code), h);
  if ((rc = exec(c, "BEGIN", err)))
    goto out;
  /* a locked box: refused before its code is even looked at */
  snprintf(sql, sizeof(sql),
           "SELECT ceil(extract(epoch FROM locked_until - now()))::bigint FROM "
           "city_%s.enrol_attempts WHERE box = $1 AND locked_until > now()",
           p->city);
  const char *v0[] = {box};
  if (!(r = q(c, sql, 1, v0, NULL, NULL, err))) {
    rc = -EIO;
    goto out;
  }
  if (PQntuples(r) == 1) {
    *retry_after = atoll(PQgetvalue(r, 0, 0));
    rc = mg_err_set(err, -EBUSY,
                    "code: too many wrong codes for box %s (%d within %lld s); "
                    "try again in %lld s, or make a new code (enroll-code)",
                    box, lim->attempts, (long long)lim->lock_s,
                    (long long)*retry_after);
    goto out;
  }
  PQclear(r);
  snprintf(sql, sizeof(sql),
           "SELECT box, expires_at < now(), used_at IS NOT NULL FROM "
           "city_%s.enrol_codes WHERE code_sha256 = $1 FOR UPDATE",
           p->city);
  const char *v1[] = {h};
  if (!(r = q(c, sql, 1, v1, NULL, NULL, err))) {
    rc = -EIO;
    goto out;
  }
  if (PQntuples(r) != 1 || strcmp(PQgetvalue(r, 0, 0), box) != 0) {
    rc = mg_err_set(err, -EACCES, "code: unknown for box %s of city %s", box,
                    p->city);
    goto out;
  }
  if (strcmp(PQgetvalue(r, 0, 2), "t") == 0) {
    rc = mg_err_set(err, -EACCES, "code: already used (codes are single use)");
    goto out;
  }
  if (strcmp(PQgetvalue(r, 0, 1), "t") == 0) {
    rc = mg_err_set(err, -EACCES,
                    "code: expired or voided (codes last 24 hours; expire-code "
                    "voids them)");
    goto out;
  }
  PQclear(r);
  snprintf(sql, sizeof(sql),
           "SELECT serial FROM city_%s.certs WHERE box = $1 AND revoked_at IS NULL",
           p->city);
  const char *v2[] = {box};
  if (!(r = q(c, sql, 1, v2, NULL, NULL, err))) {
    rc = -EIO;
    goto out;
  }
  if (PQntuples(r) > 0) {
    rc = mg_err_set(err, -EEXIST,
                    "box %s already has the live certificate %s; revoke it first",
                    box, PQgetvalue(r, 0, 0));
    goto out;
  }
  PQclear(r);
  r = NULL;
  if ((rc = mg_t_ca_issue(ca, sign_key, p->city, box, pem, serial, err)))
    goto out;
  snprintf(sql, sizeof(sql),
           "INSERT INTO city_%s.certs (serial, box, sign_key, recv_key) "
           "VALUES ($1, $2, $3, $4)",
           p->city);
  const char *v3[] = {serial, box, sign_b64, recv_b64};
  if (!(r = q(c, sql, 4, v3, NULL, NULL, err))) {
    rc = -EIO;
    goto out;
  }
  PQclear(r);
  snprintf(sql, sizeof(sql),
           "UPDATE city_%s.enrol_codes SET used_at = now(), serial = $2 WHERE "
           "code_sha256 = $1",
           p->city);
  const char *v4[] = {h, serial};
  if (!(r = q(c, sql, 2, v4, NULL, NULL, err))) {
    rc = -EIO;
    goto out;
  }
  PQclear(r);
  snprintf(sql, sizeof(sql), "DELETE FROM city_%s.enrol_attempts WHERE box = $1",
           p->city);
  if (!(r = q(c, sql, 1, v0, NULL, NULL, err))) {
    rc = -EIO;
    goto out;
  }
  rc = exec(c, "COMMIT", err);
out:
  PQclear(r);
  rollback(c);
  if (rc == -EACCES)
    count_wrong_code(c, p->city, box, lim);
  if (rc) {
    free(*pem);
    *pem = NULL;
  }
  give(p, i);
  return rc;
}

/* ------------------------------------------------- storing a batch (N3)
 *
 * A batch is stored with a few statements, not a few per record (N3: the
 * per-statement parse, plan and round trip dominated): all of its
 * applications in one INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO
 * NOTHING RETURNING id, all of its case snapshots in one upsert that
 * replaces only an older version (... DO UPDATE ... WHERE version <
 * EXCLUDED.version RETURNING id).  Only the records not returned are looked
 * at again, to tell duplicate (same plaintext hash), stale (a newer
 * snapshot is stored) and conflict (same id or version, other content)
 * apart.  The conflicting rows are locked by the INSERT (PostgreSQL locks
 * them even when DO UPDATE's WHERE is false), so what that SELECT sees is
 * what the transaction commits with.  The arrays go in PostgreSQL's binary
 * array format: no escaping of the seals. */

#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25
#define OID_BYTEA_ARR 1001
#define OID_TEXT_ARR 1009
#define OID_INT8_ARR 1016

static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

/* A one-dimensional binary array parameter being built. */
struct arr {
  struct mg_buf b;
  uint32_t n;
};

static void arr_begin(struct arr *a, uint32_t elem_oid) {
  unsigned char h[20];
  mg_buf_init(&a->b);
  a->n = 0;
  put_be32(h, 1);        /* ndim */
  put_be32(h + 4, 1);    /* may hold NULLs */
  put_be32(h + 8, elem_oid);
  put_be32(h + 12, 0);   /* element count: set by arr_end */
  put_be32(h + 16, 1);   /* lower bound */
  mg_buf_append(&a->b, h, sizeof(h));
}

/* An element; p NULL is SQL NULL. */
static void arr_add(struct arr *a, const void *p, size_t len) {
  unsigned char l[4];
  put_be32(l, p ? (uint32_t)len : 0xffffffffu);
  mg_buf_append(&a->b, l, 4);
  if (p && len)
    mg_buf_append(&a->b, p, len);
  a->n++;
}

static void arr_add_i64(struct arr *a, int64_t v) {
  unsigned char x[8];
  uint64_t u = (uint64_t)v;
  for (int i = 7; i >= 0; i--, u >>= 8)
    x[i] = (unsigned char)u;
  arr_add(a, x, 8);
}

/* 0, or -ENOMEM (the buffer is sticky on failure). */
static int arr_end(struct arr *a) {
  if (a->b.oom || !a->b.data)
    return -ENOMEM;
  put_be32((unsigned char *)a->b.data + 12, a->n);
  return 0;
}

static void arr_free(struct arr *a) {
  if (a->b.data)
    OPENSSL_cleanse(a->b.data, a->b.len); /* plaintexts */
  mg_buf_free(&a->b);
}

/* Records of the batch by id (ids are unique in a batch: the parser
 * refuses repeats), to map RETURNING rows back to their records. */
struct byid {
  struct mg_t_record **r; /* sorted by id */
  size_t n;
};

static int byid_cmp(const void *x, const void *y) {
  return strcmp((*(struct mg_t_record *const *)x)->id,
                (*(struct mg_t_record *const *)y)->id);
}

static int byid_init(struct byid *m, struct mg_t_batch *b) {
  m->n = b->n;
  if (!(m->r = malloc((b->n ? b->n : 1) * sizeof(*m->r))))
    return -ENOMEM;
  for (size_t i = 0; i < b->n; i++)
    m->r[i] = &b->r[i];
  qsort(m->r, m->n, sizeof(*m->r), byid_cmp);
  return 0;
}

/* The record with this id, NULL if none. */
static struct mg_t_record *byid_find(const struct byid *m, const char *id) {
  size_t lo = 0, hi = m->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    struct mg_t_record *r = m->r[mid];
    int c = strcmp(r->id, id);
    if (c == 0)
      return r;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

static size_t rec_index(const struct mg_t_batch *b, const struct mg_t_record *r) {
  return (size_t)(r - b->r);
}

/* After a batch INSERT ... RETURNING id: the returned records of `kind`
 * are stored.  Then the ids of `kind` still undecided (already there:
 * same content or not) are looked up with `select_sql` (one text[]
 * parameter); *res is its answer, NULL when none is left.  0, -EIO,
 * -ENOMEM.  Takes over `inserted` (cleared). */
static int stored_then_left(PGconn *c, PGresult *inserted,
                            struct mg_t_batch *b, const struct byid *m,
                            int kind,
                            const char *select_sql, PGresult **res,
                            struct mg_err *err) {
  struct arr left;
  size_t nleft = 0;
  int rc = 0;
  *res = NULL;
  for (int t = 0; t < PQntuples(inserted); t++) {
    struct mg_t_record *r = byid_find(m, PQgetvalue(inserted, t, 0));
    if (r && (int)r->kind == kind && !r->status)
      r->status = MG_T_STORED;
  }
  PQclear(inserted);
  arr_begin(&left, OID_TEXT);
  for (size_t k = 0; k < b->n; k++) {
    const struct mg_t_record *r = &b->r[k];
    if (!r->status && (int)r->kind == kind) {
      arr_add(&left, r->id, 32);
      nleft++;
    }
  }
  if (nleft == 0)
    goto out;
  if (arr_end(&left)) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  const Oid types[] = {OID_TEXT_ARR};
  const char *v[] = {left.b.data};
  const int lens[] = {(int)left.b.len}, fmts[] = {1};
  if (!(*res = qt(c, select_sql, 1, types, v, lens, fmts, err)))
    rc = -EIO;
out:
  arr_free(&left);
  return rc;
}

/* Every undecided application of the batch: stored, duplicate or
 * conflict.  -EIO on database trouble, -ENOMEM. */
static int store_apps(PGconn *c, const char *city, struct mg_t_batch *b,
                      const struct byid *m, const char *box,
                      const char *serial, struct mg_err *err) {
  char sql[600];
  struct arr ids, hs, ps, ss;
  PGresult *res = NULL;
  int rc = 0;
  arr_begin(&ids, OID_TEXT);
  arr_begin(&hs, OID_TEXT);
  arr_begin(&ps, OID_BYTEA);
  arr_begin(&ss, OID_BYTEA);
  for (size_t k = 0; k < b->n; k++) {
    const struct mg_t_record *r = &b->r[k];
    if (r->status || r->kind != MG_T_APPLICATION)
      continue;
    arr_add(&ids, r->id, 32);
    arr_add(&hs, r->plain_sha256, 64);
    arr_add(&ps, r->plain, r->plain_len);
    arr_add(&ss, r->seal, r->seal_len);
  }
  if (ids.n == 0)
    goto out;
  if (arr_end(&ids) || arr_end(&hs) || arr_end(&ps) || arr_end(&ss)) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  snprintf(sql, sizeof(sql),
           "INSERT INTO city_%s.applications (id, box, serial, batch, "
           "plain_sha256, plain, seal) SELECT u.id, $1, $2, $3, u.h, u.p, u.s "
           "FROM unnest($4::text[], $5::text[], $6::bytea[], $7::bytea[]) AS "
           "u(id, h, p, s) ON CONFLICT (id) DO NOTHING RETURNING id",
           city);
  {
    const Oid types[] = {OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT_ARR,
                         OID_TEXT_ARR, OID_BYTEA_ARR, OID_BYTEA_ARR};
    const char *v[] = {box, serial, b->id, ids.b.data, hs.b.data, ps.b.data,
                       ss.b.data};
    const int lens[] = {0, 0, 0, (int)ids.b.len, (int)hs.b.len, (int)ps.b.len,
                        (int)ss.b.len};
    const int fmts[] = {0, 0, 0, 1, 1, 1, 1};
    if (!(res = qt(c, sql, 7, types, v, lens, fmts, err))) {
      rc = -EIO;
      goto out;
    }
  }
  /* the rest was there already: same content or not */
  snprintf(sql, sizeof(sql),
           "SELECT id, plain_sha256 FROM city_%s.applications WHERE id = "
           "ANY($1::text[])",
           city);
  {
    PGresult *ins = res;
    res = NULL;
    if ((rc = stored_then_left(c, ins, b, m, MG_T_APPLICATION, sql, &res,
                               err)) ||
        !res)
      goto out;
  }
  for (int t = 0; t < PQntuples(res); t++) {
    struct mg_t_record *r = byid_find(m, PQgetvalue(res, t, 0));
    if (!r || r->kind != MG_T_APPLICATION || r->status)
      continue;
    if (strcmp(PQgetvalue(res, t, 1), r->plain_sha256) == 0) {
      r->status = MG_T_DUPLICATE;
    } else {
      r->status = MG_T_REJECTED;
      r->code = "conflict";
      snprintf(r->message, sizeof(r->message),
               "records[%zu]: application %s is already stored with other "
               "content",
               rec_index(b, r), r->id);
    }
  }
  /* neither inserted nor there: only a concurrent delete could do that */
  for (size_t k = 0; k < b->n && !rc; k++)
    if (!b->r[k].status && b->r[k].kind == MG_T_APPLICATION)
      rc = mg_err_set(err, -EIO,
                      "database: application %s neither stored nor found; "
                      "send the batch again",
                      b->r[k].id);
out:
  PQclear(res);
  arr_free(&ids);
  arr_free(&hs);
  arr_free(&ps);
  arr_free(&ss);
  return rc;
}

/* Every undecided case snapshot of the batch: stored (new, or newer than
 * the one stored), duplicate, stale or conflict.  -EIO, -ENOMEM. */
static int store_cases(PGconn *c, const char *city, struct mg_t_batch *b,
                       const struct byid *m, const char *box,
                       const char *serial, struct mg_err *err) {
  char sql[1200];
  struct arr ids, vs, nums, toks, hs, ps, ss;
  PGresult *res = NULL;
  int rc = 0;
  arr_begin(&ids, OID_TEXT);
  arr_begin(&vs, OID_INT8);
  arr_begin(&nums, OID_TEXT);
  arr_begin(&toks, OID_TEXT);
  arr_begin(&hs, OID_TEXT);
  arr_begin(&ps, OID_BYTEA);
  arr_begin(&ss, OID_BYTEA);
  for (size_t k = 0; k < b->n; k++) {
    const struct mg_t_record *r = &b->r[k];
    if (r->status || r->kind != MG_T_CASE)
      continue;
    arr_add(&ids, r->id, 32);
    arr_add_i64(&vs, r->version);
    arr_add(&nums, r->number[0] ? r->number : NULL, strlen(r->number));
    arr_add(&toks, r->token_sha256[0] ? r->token_sha256 : NULL,
            strlen(r->token_sha256));
    arr_add(&hs, r->plain_sha256, 64);
    arr_add(&ps, r->plain, r->plain_len);
    arr_add(&ss, r->seal, r->seal_len);
  }
  if (ids.n == 0)
    goto out;
  if (arr_end(&ids) || arr_end(&vs) || arr_end(&nums) || arr_end(&toks) ||
      arr_end(&hs) || arr_end(&ps) || arr_end(&ss)) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  /* newer versions replace older ones; an equal or older one is left
   * alone (and sorted out below) */
  snprintf(sql, sizeof(sql),
           "INSERT INTO city_%s.cases AS c (id, version, box, serial, batch, "
           "number, token_sha256, plain_sha256, plain, seal) SELECT u.id, u.v, "
           "$1, $2, $3, u.num, u.tok, u.h, u.p, u.s FROM unnest($4::text[], "
           "$5::int8[], $6::text[], $7::text[], $8::text[], $9::bytea[], "
           "$10::bytea[]) AS u(id, v, num, tok, h, p, s) ON CONFLICT (id) DO "
           "UPDATE SET version = EXCLUDED.version, box = EXCLUDED.box, serial "
           "= EXCLUDED.serial, batch = EXCLUDED.batch, number = "
           "EXCLUDED.number, token_sha256 = EXCLUDED.token_sha256, "
           "plain_sha256 = EXCLUDED.plain_sha256, plain = EXCLUDED.plain, seal "
           "= EXCLUDED.seal, updated_at = now() WHERE c.version < "
           "EXCLUDED.version RETURNING id",
           city);
  {
    const Oid types[] = {OID_TEXT,      OID_TEXT,     OID_TEXT,
                         OID_TEXT_ARR,  OID_INT8_ARR, OID_TEXT_ARR,
                         OID_TEXT_ARR,  OID_TEXT_ARR, OID_BYTEA_ARR,
                         OID_BYTEA_ARR};
    const char *v[] = {box,        serial,      b->id,       ids.b.data,
                       vs.b.data,  nums.b.data, toks.b.data, hs.b.data,
                       ps.b.data,  ss.b.data};
    const int lens[] = {0,
                        0,
                        0,
                        (int)ids.b.len,
                        (int)vs.b.len,
                        (int)nums.b.len,
                        (int)toks.b.len,
                        (int)hs.b.len,
                        (int)ps.b.len,
                        (int)ss.b.len};
    const int fmts[] = {0, 0, 0, 1, 1, 1, 1, 1, 1, 1};
    if (!(res = qt(c, sql, 10, types, v, lens, fmts, err))) {
      rc = -EIO;
      goto out;
    }
  }
  snprintf(sql, sizeof(sql),
           "SELECT id, version, plain_sha256 FROM city_%s.cases WHERE id = "
           "ANY($1::text[])",
           city);
  {
    PGresult *ins = res;
    res = NULL;
    if ((rc = stored_then_left(c, ins, b, m, MG_T_CASE, sql, &res, err)) ||
        !res)
      goto out;
  }
  for (int t = 0; t < PQntuples(res); t++) {
    struct mg_t_record *r = byid_find(m, PQgetvalue(res, t, 0));
    if (!r || r->kind != MG_T_CASE || r->status)
      continue;
    long long sv = atoll(PQgetvalue(res, t, 1));
    if (sv > r->version) {
      r->status = MG_T_STALE;
    } else if (sv == r->version &&
               strcmp(PQgetvalue(res, t, 2), r->plain_sha256) == 0) {
      r->status = MG_T_DUPLICATE;
    } else if (sv == r->version) {
      r->status = MG_T_REJECTED;
      r->code = "conflict";
      snprintf(r->message, sizeof(r->message),
               "records[%zu]: case %s version %lld is already stored with "
               "other content",
               rec_index(b, r), r->id, (long long)r->version);
    }
  }
  for (size_t k = 0; k < b->n && !rc; k++)
    if (!b->r[k].status && b->r[k].kind == MG_T_CASE)
      rc = mg_err_set(err, -EIO,
                      "database: case %s neither stored nor found; send the "
                      "batch again",
                      b->r[k].id);
out:
  PQclear(res);
  arr_free(&ids);
  arr_free(&vs);
  arr_free(&nums);
  arr_free(&toks);
  arr_free(&hs);
  arr_free(&ps);
  arr_free(&ss);
  return rc;
}

static const char *status_name(int s) {
  switch (s) {
  case MG_T_STORED:
    return "stored";
  case MG_T_DUPLICATE:
    return "duplicate";
  case MG_T_STALE:
    return "stale";
  default:
    return "rejected";
  }
}

static char *results_json(const struct mg_t_batch *b) {
  struct mg_buf buf;
  struct mg_jw w;
  mg_buf_init(&buf);
  mg_jw_init(&w, &buf);
  mg_jw_arr(&w);
  for (size_t i = 0; i < b->n; i++) {
    const struct mg_t_record *r = &b->r[i];
    mg_jw_obj(&w);
    mg_jw_kstr(&w, "id", r->id);
    mg_jw_kstr(&w, "status", status_name(r->status));
    if (r->status == MG_T_REJECTED) {
      mg_jw_kstr(&w, "code", r->code);
      mg_jw_kstr(&w, "message", r->message);
    }
    mg_jw_obj_end(&w);
  }
  mg_jw_arr_end(&w);
  if (buf.oom || w.bad) {
    mg_buf_free(&buf);
    return NULL;
  }
  return mg_buf_steal(&buf);
}

int mg_t_db_store(struct mg_t_pool *p, struct mg_t_batch *b, const char *box,
                  const char *serial, char **results, int *replayed,
                  struct mg_err *err) {
  char sql[300], digest[65], nbuf[16];
  PGresult *r = NULL;
  char *res = NULL;
  int i = take(p, err), rc = 0;
  *results = NULL;
  *replayed = 0;
  struct byid m = {NULL, 0};
  if (i < 0)
    return -EIO;
  PGconn *c = p->c[i];
  mg_t_batch_digest(b, digest);
  if (byid_init(&m, b)) {
    give(p, i);
    return mg_err_set(err, -ENOMEM, "out of memory");
  }
  /* A concurrent copy of the same batch makes our INSERT of the batch row
   * fail; the second pass then answers it as a replay. */
  for (int attempt = 0; attempt < 2; attempt++) {
    rc = 0;
    rollback(c);
    if ((rc = exec(c, "BEGIN", err)))
      break;
    snprintf(sql, sizeof(sql),
             "SELECT digest, results FROM city_%s.batches WHERE id = $1", p->city);
    const char *v1[] = {b->id};
    if (!(r = q(c, sql, 1, v1, NULL, NULL, err))) {
      rc = -EIO;
      break;
    }
    if (PQntuples(r) == 1) {
      if (strcmp(PQgetvalue(r, 0, 0), digest) != 0) {
        rc = mg_err_set(err, -EEXIST,
                        "batch %s was already received with other records; "
                        "a new batch needs a new id",
                        b->id);
      } else if (!(*results = strdup(PQgetvalue(r, 0, 1)))) {
        rc = mg_err_set(err, -ENOMEM, "out of memory");
      } else {
        *replayed = 1;
      }
      break;
    }
    PQclear(r);
    r = NULL;
    for (size_t k = 0; k < b->n; k++)
      if (b->r[k].status != MG_T_REJECTED) /* a second pass starts over */
        b->r[k].status = 0;
    if ((rc = store_apps(c, p->city, b, &m, box, serial, err)) ||
        (rc = store_cases(c, p->city, b, &m, box, serial, err)))
      break;
    free(res);
    if (!(res = results_json(b))) {
      rc = mg_err_set(err, -ENOMEM, "out of memory");
      break;
    }
    snprintf(sql, sizeof(sql),
             "INSERT INTO city_%s.batches (id, box, serial, digest, n, results) "
             "VALUES ($1, $2, $3, $4, $5, $6)",
             p->city);
    snprintf(nbuf, sizeof(nbuf), "%zu", b->n);
    const char *v2[] = {b->id, box, serial, digest, nbuf, res};
    if (!(r = q(c, sql, 6, v2, NULL, NULL, err))) {
      rc = -EIO;
      continue; /* maybe a concurrent copy: look again */
    }
    PQclear(r);
    r = NULL;
    if ((rc = exec(c, "COMMIT", err)))
      break;
    *results = res;
    res = NULL;
    break;
  }
  PQclear(r);
  rollback(c);
  free(res);
  free(m.r);
  give(p, i);
  return rc;
}

int mg_t_db_case(struct mg_t_pool *p, const char *number, const char *token,
                 unsigned char **plain, size_t *len, char id[33],
                 int64_t *version, char origin[72], struct mg_err *err) {
  char sql[300];
  PGresult *r = NULL;
  int i = take(p, err), rc = 0;
  *plain = NULL;
  *len = 0;
  if (i < 0)
    return -EIO;
  snprintf(sql, sizeof(sql),
           "SELECT id, version, box, plain FROM city_%s.cases WHERE %s = $1 "
           "ORDER BY version DESC, updated_at DESC LIMIT 1",
           p->city, number ? "number" : "token_sha256");
  const char *v[] = {number ? number : token};
  if (!(r = q(p->c[i], sql, 1, v, NULL, NULL, err))) {
    rc = -EIO;
  } else if (PQntuples(r) != 1) {
    rc = mg_err_set(err, -ENOENT, "no such case in this city");
  } else {
    snprintf(id, 33, "%s", PQgetvalue(r, 0, 0));
    *version = atoll(PQgetvalue(r, 0, 1));
    snprintf(origin, 72, "%s", PQgetvalue(r, 0, 2));
    size_t n = 0;
    unsigned char *u = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 3), &n);
    if (!u || !(*plain = malloc(n + 1))) {
      rc = mg_err_set(err, -ENOMEM, "out of memory");
    } else {
      memcpy(*plain, u, n);
      (*plain)[n] = '\0';
      *len = n;
    }
    if (u) {
      OPENSSL_cleanse(u, n);
      PQfreemem(u);
    }
  }
  PQclear(r);
  give(p, i);
  return rc;
}

/* ------------------------------------------------------ retention (D1) */

int mg_t_db_set_retention(struct mg_t_pool *p, int64_t secs, int64_t *old,
                          struct mg_err *err) {
  char sql[300], val[24];
  PGresult *r = NULL;
  int i = take(p, err), rc = 0;
  *old = 0;
  if (i < 0)
    return -EIO;
  if (secs < 1 || secs > MG_T_RETENTION_MAX) {
    rc = mg_err_set(err, -EINVAL, "--retention: from 1s to 3660d");
    goto out;
  }
  snprintf(val, sizeof(val), "%lld", (long long)secs);
  snprintf(sql, sizeof(sql),
           "UPDATE city_%1$s.retention n SET seconds = $1::bigint, set_at = now() "
           "FROM (SELECT seconds FROM city_%1$s.retention FOR UPDATE) o "
           "RETURNING o.seconds",
           p->city);
  const char *v[] = {val};
  if (!(r = q(p->c[i], sql, 1, v, NULL, NULL, err)))
    rc = -EIO;
  else if (PQntuples(r) != 1)
    rc = mg_err_set(err, -ENOENT, "city %s: no retention row (run init-city)",
                    p->city);
  else
    *old = atoll(PQgetvalue(r, 0, 0));
out:
  PQclear(r);
  give(p, i);
  return rc;
}

/* DELETE ... WHERE <col> < the cutoff: how many went into *n. */
static int purge_table(PGconn *c, const char *city, const char *table,
                       const char *where, const char *secs, long long *n,
                       struct mg_err *err) {
  char sql[400];
  snprintf(sql, sizeof(sql), "DELETE FROM city_%s.%s WHERE %s", city, table, where);
  const char *v[] = {secs};
  PGresult *r = q(c, sql, strstr(where, "$1") ? 1 : 0, v, NULL, NULL, err);
  if (!r)
    return -EIO;
  *n = atoll(PQcmdTuples(r));
  PQclear(r);
  return 0;
}

int mg_t_db_purge(struct mg_t_pool *p, struct mg_t_purge *out,
                  struct mg_err *err) {
  /* now() is the transaction's start: one cutoff for every table */
#define CUTOFF "now() - $1::bigint * interval '1 second'"
  char sql[300], secs[24];
  PGresult *r = NULL;
  int i = take(p, err), rc = 0;
  memset(out, 0, sizeof(*out));
  if (i < 0)
    return -EIO;
  PGconn *c = p->c[i];
  if ((rc = exec(c, "BEGIN", err)) ||
      (rc = get_retention(c, p->city, &out->retention, err)))
    goto out;
  snprintf(secs, sizeof(secs), "%lld", (long long)out->retention);
  snprintf(sql, sizeof(sql),
           "SELECT to_char((" CUTOFF ") AT TIME ZONE 'UTC', "
           "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')");
  const char *v[] = {secs};
  if (!(r = q(c, sql, 1, v, NULL, NULL, err))) {
    rc = -EIO;
    goto out;
  }
  snprintf(out->cutoff, sizeof(out->cutoff), "%s", PQgetvalue(r, 0, 0));
  if ((rc = purge_table(c, p->city, "applications", "stored_at < " CUTOFF, secs,
                        &out->applications, err)) ||
      (rc = purge_table(c, p->city, "cases", "updated_at < " CUTOFF, secs,
                        &out->cases, err)) ||
      (rc = purge_table(c, p->city, "batches", "received_at < " CUTOFF, secs,
                        &out->batches, err)) ||
      (rc = purge_table(c, p->city, "enrol_codes",
                        "coalesce(used_at, expires_at) < " CUTOFF, secs,
                        &out->codes, err)) ||
      /* counts of wrong codes hold no personal data: a day after */
      (rc = purge_table(c, p->city, "enrol_attempts",
                        "coalesce(locked_until, window_start) < now() - "
                        "interval '1 day'",
                        secs, &out->attempts, err)))
    goto out;
  rc = exec(c, "COMMIT", err);
out:
  PQclear(r);
  rollback(c);
  if (rc) /* nothing went: the counts would lie */
    memset(out, 0, sizeof(*out));
  give(p, i);
  return rc;
#undef CUTOFF
}
