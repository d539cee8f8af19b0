/*
 * tenant_sync.c — the box's client of the city's tenant (tenant_sync.h).
 *
 * A two-stage pipeline: rows due (core/outbox.h) are read on the loop,
 * sealed and turned into the JSON body on a worker, posted with curl's
 * multi interface on our loop, and the per-record results are written
 * back in one transaction.  While one batch is in flight the next one is
 * read (rows after it) and sealed, and waits ready to go: the box's CPU
 * work overlaps the tenant's (N3).  At most one batch flies, one more is
 * sealing or ready; a failure drops the ready one (its rows stay due as
 * they were) and a probe of a half-open circuit flies alone.
 *
 * curl on libuv (../shared/reference/c-daemon-patterns.md §3): one
 * uv_poll_t per socket, reused through curl_multi_assign and closed with
 * uv_close (freed in its close callback) on CURL_POLL_REMOVE; one uv_timer
 * for curl's timeout (-1 stops it, 0 becomes 1 ms, and curl is never called
 * from inside curl's own callbacks); CURL_CSELECT_ERR for a poll error;
 * finished transfers are collected after every socket action and timeout.
 * Our callbacks never return -1 (that would abort every transfer).
 */
#include "tenant_sync.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "envelope.h"
#include "log.h"
#include "outbox.h"
#include "version.h"

#define RESP_MAX (16u << 20) /* an answer larger than this is refused */

enum circuit { CIRCUIT_CLOSED, CIRCUIT_OPEN, CIRCUIT_HALF_OPEN };

struct xfer;
typedef void (*xfer_done_fn)(struct xfer *x, CURLcode rc, long status);

/* One HTTP request in flight. */
struct xfer {
  struct mg_sync *s;
  CURL *easy;
  struct curl_slist *hdrs;
  char *body; /* owned */
  size_t body_len;
  struct mg_buf resp;
  char errbuf[CURL_ERROR_SIZE];
  xfer_done_fn done;
  void *ud;
  struct xfer *next;
};

/* A socket curl asked us to watch. */
struct sockctx {
  uv_poll_t poll;
  struct mg_sync *s;
  curl_socket_t fd;
};

/* One record of a batch. */
struct rec {
  int64_t seq;
  char kind[12];
  char ref[33];
  int64_t version;
  unsigned char *plain; /* wiped and freed after sealing */
  size_t plain_len;
  char ctx[200];
};

/* A batch from the rows read on the loop to the tenant's answer. */
struct job {
  uv_work_t req;
  struct mg_sync *s;
  struct rec *r;
  size_t n;
  EVP_PKEY *to, *by; /* references taken for the worker */
  struct mg_buf body;
  char batch[33];
  int rc;
  struct mg_err err;
  int probe;
};

struct fetch {
  struct mg_sync *s;
  mg_sync_fetch_cb cb;
  void *ud;
};

struct enroll {
  struct mg_sync *s;
  mg_sync_enroll_cb cb;
  void *ud;
  char url[512], city[16], box[72];
};

struct mg_sync {
  uv_loop_t *loop;
  const struct mg_config *cfg;
  struct mg_store *st;
  const struct mg_key *dk;
  char dir[4096];
  char cert_path[4200], key_path[4200];
  /* client.crt as loaded: given to curl as a blob, because curl reuses a
   * connection (and TLS session) only for the same blob, and a path does
   * not change when the box enrols again */
  char *cert_pem;
  size_t cert_len;
  CURLM *multi;
  uv_timer_t curl_timer, tick;
  int handles_on;
  struct xfer *xfers;
  /* identity (tenant.json and the keys) */
  int enrolled;
  char city[16], box[72], serial[80], enrolled_url[512];
  EVP_PKEY *sign, *recv, *t_recv, *t_sign;
  /* the cycle */
  int paused, sealing, again, stopping, enrolling;
  int flying;             /* a batch posted, its answer awaited */
  int64_t flying_max_seq; /* its last outbox row */
  struct job *ready;      /* sealed, waits for the one in flight */
  int64_t failures;
  enum circuit circuit;
  uint64_t open_until; /* uv_now() ms */
  time_t warned_at;
  mg_sync_case_export_fn exporter;
  void *exporter_ud;
};

static void try_send(struct mg_sync *s);
static void batch_post(struct mg_sync *s, struct job *j);

/* ---------------------------------------------------------------------- */
/* sync_state (migration 6): what must survive a restart                 */

static char *state_get(struct mg_sync *s, const char *key) {
  sqlite3_stmt *q = NULL;
  char *v = NULL;
  if (sqlite3_prepare_v2(mg_store_db(s->st),
                         "SELECT value FROM sync_state WHERE key = ?1", -1, &q,
                         NULL) == SQLITE_OK &&
      sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC) == SQLITE_OK &&
      sqlite3_step(q) == SQLITE_ROW)
    v = strdup((const char *)sqlite3_column_text(q, 0));
  sqlite3_finalize(q);
  return v;
}

static void state_set(struct mg_sync *s, const char *key, const char *value) {
  sqlite3_stmt *q = NULL;
  if (sqlite3_prepare_v2(mg_store_db(s->st),
                         "INSERT INTO sync_state (key, value) VALUES (?1, ?2) "
                         "ON CONFLICT (key) DO UPDATE SET value = "
                         "excluded.value",
                         -1, &q, NULL) != SQLITE_OK ||
      sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC) != SQLITE_OK ||
      sqlite3_bind_text(q, 2, value, -1, SQLITE_STATIC) != SQLITE_OK ||
      sqlite3_step(q) != SQLITE_DONE)
    mg_log_err("sync", "cannot write sync_state %s: %s", key,
               sqlite3_errmsg(mg_store_db(s->st)));
  sqlite3_finalize(q);
}

static void state_add(struct mg_sync *s, const char *key, int64_t n) {
  char *v = state_get(s, key), buf[32];
  snprintf(buf, sizeof(buf), "%lld", (long long)((v ? atoll(v) : 0) + n));
  free(v);
  state_set(s, key, buf);
}

static void note_error(struct mg_sync *s, const char *why) {
  char now[24];
  mg_store_time(time(NULL), now);
  state_set(s, "last_error", why);
  state_set(s, "last_error_at", now);
}

/* ---------------------------------------------------------------------- */
/* curl on the loop                                                       */

static void check_multi_info(struct mg_sync *s);

static void sock_closed(uv_handle_t *h) { free(h->data); }

static void on_poll(uv_poll_t *h, int status, int events) {
  struct sockctx *c = h->data;
  struct mg_sync *s = c->s; /* c may be closed during the action */
  curl_socket_t fd = c->fd;
  int flags = 0, running = 0;
  if (status < 0)
    flags = CURL_CSELECT_ERR;
  else {
    if (events & UV_READABLE)
      flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
      flags |= CURL_CSELECT_OUT;
  }
  curl_multi_socket_action(s->multi, fd, flags, &running);
  check_multi_info(s);
}

static int on_curl_socket(CURL *e, curl_socket_t fd, int what, void *userp,
                          void *socketp) {
  struct mg_sync *s = userp;
  struct sockctx *c = socketp;
  (void)e;
  if (what == CURL_POLL_REMOVE) {
    if (c) {
      uv_poll_stop(&c->poll);
      uv_close((uv_handle_t *)&c->poll, sock_closed);
      curl_multi_assign(s->multi, fd, NULL);
    }
    return 0;
  }
  if (!c) {
    if (!(c = calloc(1, sizeof(*c))))
      return 0; /* not -1: that would abort every transfer; times out */
    if (uv_poll_init_socket(s->loop, &c->poll, fd) != 0) {
      mg_log_err("sync", "cannot watch socket %d", (int)fd);
      free(c);
      return 0;
    }
    c->poll.data = c;
    c->s = s;
    c->fd = fd;
    curl_multi_assign(s->multi, fd, c);
  }
  int ev = ((what & CURL_POLL_IN) ? UV_READABLE : 0) |
           ((what & CURL_POLL_OUT) ? UV_WRITABLE : 0);
  uv_poll_start(&c->poll, ev, on_poll);
  return 0;
}

static void on_curl_timeout(uv_timer_t *t) {
  struct mg_sync *s = t->data;
  int running = 0;
  curl_multi_socket_action(s->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_multi_info(s); /* always: the last transfer may end on a timeout */
}

static int on_curl_timer(CURLM *m, long ms, void *userp) {
  struct mg_sync *s = userp;
  (void)m;
  if (s->stopping && !s->handles_on)
    return 0;
  if (ms < 0)
    uv_timer_stop(&s->curl_timer);
  else /* 0 would re-fire in the same pass of libuv's timers: 1 ms */
    uv_timer_start(&s->curl_timer, on_curl_timeout, ms ? (uint64_t)ms : 1, 0);
  return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  struct xfer *x = ud;
  size_t len = size * n;
  if (x->resp.len + len > RESP_MAX)
    return 0; /* curl fails the transfer (CURLE_WRITE_ERROR) */
  mg_buf_append(&x->resp, p, len);
  return x->resp.oom ? 0 : len;
}

static void xfer_free(struct xfer *x) {
  if (!x)
    return;
  if (x->easy)
    curl_easy_cleanup(x->easy);
  curl_slist_free_all(x->hdrs);
  if (x->body)
    OPENSSL_cleanse(x->body, x->body_len);
  free(x->body);
  if (x->resp.data)
    OPENSSL_cleanse(x->resp.data, x->resp.len);
  mg_buf_free(&x->resp);
  free(x);
}

static void check_multi_info(struct mg_sync *s) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(s->multi, &left))) {
    if (m->msg != CURLMSG_DONE)
      continue;
    CURL *e = m->easy_handle;
    CURLcode rc = m->data.result; /* m is invalid after the removal */
    struct xfer *x = NULL;
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(s->multi, e);
    for (struct xfer **pp = &s->xfers; *pp; pp = &(*pp)->next)
      if (*pp == x) {
        *pp = x->next;
        break;
      }
    if (x) {
      x->done(x, rc, status);
      xfer_free(x);
    }
  }
}

/* A POST of `body` (taken over) to url + path; done runs on the loop. */
static int xfer_start(struct mg_sync *s, const char *url, const char *path,
                      char *body, size_t len, int client_cert,
                      xfer_done_fn done, void *ud) {
  struct xfer *x = calloc(1, sizeof(*x));
  char full[1024];
  size_t ul = strlen(url);
  if (!x) {
    free(body);
    return -ENOMEM;
  }
  x->s = s;
  x->body = body;
  x->body_len = len;
  x->done = done;
  x->ud = ud;
  mg_buf_init(&x->resp);
  while (ul && url[ul - 1] == '/')
    ul--;
  snprintf(full, sizeof(full), "%.*s%s", (int)ul, url, path);
  if (!(x->easy = curl_easy_init()) ||
      !(x->hdrs = curl_slist_append(NULL, "Content-Type: application/json")) ||
      !(x->hdrs = curl_slist_append(x->hdrs, "Expect:"))) {
    xfer_free(x);
    return -ENOMEM;
  }
  CURL *e = x->easy;
  const struct mg_config *c = s->cfg;
  curl_easy_setopt(e, CURLOPT_URL, full);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PRIVATE, x);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "madoguchid/" MG_VERSION);
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->sync_timeout);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   (long)(c->sync_timeout < 10000 ? c->sync_timeout : 10000));
  curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  if (c->sync_ca_file && *c->sync_ca_file)
    curl_easy_setopt(e, CURLOPT_CAINFO, c->sync_ca_file);
  if (client_cert) {
    struct curl_blob cert = {s->cert_pem, s->cert_len, CURL_BLOB_COPY};
    curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cert);
    curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(e, CURLOPT_SSLKEY, s->key_path);
    curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
  }
  if (curl_multi_add_handle(s->multi, e) != CURLM_OK) {
    xfer_free(x);
    return -EIO;
  }
  x->next = s->xfers;
  s->xfers = x;
  return 0;
}

/* "http 503 unavailable: the database is down" or curl's own error:
 * never a record's content (the tenant's messages name fields, not
 * values). */
static void xfer_why(struct xfer *x, CURLcode rc, long status, char *out,
                     size_t len) {
  if (rc != CURLE_OK) {
    snprintf(out, len, "%s: %s", curl_easy_strerror(rc),
             x->errbuf[0] ? x->errbuf : "no detail");
    return;
  }
  struct mg_json *doc = NULL;
  mg_json_parse(x->resp.data ? x->resp.data : "", x->resp.len, NULL, &doc,
                NULL);
  const struct mg_json *e = mg_json_get(doc, "error");
  snprintf(out, len, "http %ld %s: %.300s", status,
           mg_json_get_str(e, "code") ? mg_json_get_str(e, "code") : "error",
           mg_json_get_str(e, "message") ? mg_json_get_str(e, "message")
                                         : "(no error body)");
  mg_json_free(doc);
}

/* ---------------------------------------------------------------------- */
/* Identity                                                               */

static void identity_drop(struct mg_sync *s) {
  EVP_PKEY_free(s->sign);
  EVP_PKEY_free(s->recv);
  EVP_PKEY_free(s->t_recv);
  EVP_PKEY_free(s->t_sign);
  s->sign = s->recv = s->t_recv = s->t_sign = NULL;
  free(s->cert_pem);
  s->cert_pem = NULL;
  s->cert_len = 0;
  s->enrolled = 0;
}

static int read_file(const char *path, char **out, size_t *len) {
  FILE *fp = fopen(path, "rb");
  struct mg_buf b;
  char chunk[4096];
  size_t n;
  if (!fp)
    return -errno;
  mg_buf_init(&b);
  while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0 && b.len < (1u << 20))
    mg_buf_append(&b, chunk, n);
  fclose(fp);
  if (b.oom) {
    mg_buf_free(&b);
    return -ENOMEM;
  }
  *len = b.len;
  *out = mg_buf_steal(&b);
  return *out ? 0 : -ENOMEM;
}

/* Load sync/tenant.json and the keys; -ENOENT when not enrolled. */
static int identity_load(struct mg_sync *s, struct mg_err *err) {
  char path[4200], *text = NULL;
  size_t len = 0;
  struct mg_json *doc = NULL;
  struct mg_json_error je;
  int rc;
  identity_drop(s);
  snprintf(path, sizeof(path), "%s/tenant.json", s->dir);
  if ((rc = read_file(path, &text, &len)) == -ENOENT ||
      access(s->cert_path, F_OK) != 0) {
    rc = -ENOENT;
    goto out;
  }
  if (rc) {
    rc = mg_err_set(err, rc, "%s: cannot read: %s", path, strerror(-rc));
    goto out;
  }
  if (mg_json_parse(text, len, NULL, &doc, &je)) {
    rc = mg_err_set(err, -EINVAL, "%s: %s", path, je.msg);
    goto out;
  }
  const char *f[] = {"city", "box", "tenant_recv", "tenant_sign"};
  for (size_t i = 0; i < 4; i++)
    if (!mg_json_get_str(doc, f[i])) {
      rc = mg_err_set(err, -EINVAL, "%s: \"%s\" is missing (re-enrol: "
                      "madoctl sync enroll)", path, f[i]);
      goto out;
    }
  snprintf(s->city, sizeof(s->city), "%s", mg_json_get_str(doc, "city"));
  snprintf(s->box, sizeof(s->box), "%s", mg_json_get_str(doc, "box"));
  snprintf(s->serial, sizeof(s->serial), "%s",
           mg_json_get_str(doc, "serial") ? mg_json_get_str(doc, "serial")
                                          : "");
  snprintf(s->enrolled_url, sizeof(s->enrolled_url), "%s",
           mg_json_get_str(doc, "url") ? mg_json_get_str(doc, "url") : "");
  if ((rc = mg_env_pub_from_b64(mg_json_get_str(doc, "tenant_recv"),
                                MG_ENV_X25519, &s->t_recv, err)) ||
      (rc = mg_env_pub_from_b64(mg_json_get_str(doc, "tenant_sign"),
                                MG_ENV_ED25519, &s->t_sign, err)))
    goto out;
  snprintf(path, sizeof(path), "%s/box_recv.pem", s->dir);
  if ((rc = mg_env_key_load(s->key_path, MG_ENV_ED25519, &s->sign, err)) ||
      (rc = mg_env_key_load(path, MG_ENV_X25519, &s->recv, err)))
    goto out;
  if ((rc = read_file(s->cert_path, &s->cert_pem, &s->cert_len))) {
    rc = mg_err_set(err, rc, "%s: cannot read: %s", s->cert_path,
                    strerror(-rc));
    goto out;
  }
  s->enrolled = 1;
out:
  if (rc)
    identity_drop(s);
  free(text);
  mg_json_free(doc);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Backoff and the circuit                                                */

double mg__sync_backoff_ms(int64_t min_ms, int64_t max_ms, int64_t failures,
                           double r) {
  double cap = (double)min_ms;
  for (int64_t i = 0; i < failures && cap < (double)max_ms; i++)
    cap *= 2;
  if (cap > (double)max_ms)
    cap = (double)max_ms;
  return r * cap;
}

static double random01(void) {
  uint64_t v = 0;
  if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
    v = (uint64_t)rand();
  return (double)(v >> 11) / 9007199254740992.0; /* 2^53 */
}

/* ---------------------------------------------------------------------- */
/* Batches                                                                */

static void job_free(struct job *j) {
  if (!j)
    return;
  for (size_t i = 0; i < j->n; i++)
    if (j->r[i].plain) {
      OPENSSL_cleanse(j->r[i].plain, j->r[i].plain_len);
      free(j->r[i].plain);
    }
  free(j->r);
  EVP_PKEY_free(j->to);
  EVP_PKEY_free(j->by);
  if (j->body.data)
    OPENSSL_cleanse(j->body.data, j->body.len);
  mg_buf_free(&j->body);
  free(j);
}

/* Sealing is CPU-bound (an Ed25519 signature per record, and a key
 * agreement per thread and batch: one sealer each; most of the box's time
 * per record, N3): the records of a batch are shared out over up to
 * SEAL_THREADS threads, one a core.  Each
 * thread writes only its own records' seals; the keys are only read
 * (OpenSSL 3 keys may be used from several threads at once). */
#define SEAL_THREADS 4
#define SEAL_MIN 16 /* records per thread worth a thread */

struct sealer {
  struct job *j;
  char **b64; /* per record, malloc'd */
  size_t first, step;
  int rc;
  struct mg_err err;
};

static void seal_some(struct sealer *o) {
  struct job *j = o->j;
  struct mg_env_sealer *es = NULL;
  o->rc = mg_env_sealer_new(j->to, j->by, &es, &o->err);
  for (size_t i = o->first; i < j->n && !o->rc; i += o->step) {
    struct rec *r = &j->r[i];
    unsigned char *env = NULL;
    size_t elen = 0;
    o->rc = mg_env_sealer_seal(es, r->ctx, r->plain, r->plain_len, &env,
                               &elen, &o->err);
    if (!o->rc && mg_env_b64(env, elen, &o->b64[i]))
      o->rc = mg_err_set(&o->err, -ENOMEM, "out of memory");
    free(env);
    OPENSSL_cleanse(r->plain, r->plain_len);
    free(r->plain);
    r->plain = NULL;
  }
  mg_env_sealer_free(es);
}

static void *seal_thread(void *x) {
  seal_some(x);
  return NULL;
}

/* Worker: seal every record and write the batch's JSON. */
static void seal_work(uv_work_t *req) {
  struct job *j = req->data;
  struct mg_jw w;
  unsigned char raw[16];
  struct sealer o[SEAL_THREADS];
  pthread_t th[SEAL_THREADS];
  int started[SEAL_THREADS] = {0};
  char **b64 = NULL;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  size_t nt = cpus < 1 ? 1 : (size_t)cpus;
  mg_buf_init(&j->body);
  if (RAND_bytes(raw, sizeof(raw)) != 1) {
    j->rc = mg_err_set(&j->err, -EIO, "no random bytes");
    return;
  }
  for (int i = 0; i < 16; i++)
    snprintf(j->batch + 2 * i, 3, "%02x", raw[i]);
  if (!(b64 = calloc(j->n ? j->n : 1, sizeof(*b64)))) {
    j->rc = mg_err_set(&j->err, -ENOMEM, "out of memory");
    return;
  }
  if (nt > SEAL_THREADS)
    nt = SEAL_THREADS;
  if (nt > j->n / SEAL_MIN)
    nt = j->n / SEAL_MIN ? j->n / SEAL_MIN : 1;
  for (size_t t = 0; t < nt; t++) {
    memset(&o[t], 0, sizeof(o[t]));
    o[t].j = j;
    o[t].b64 = b64;
    o[t].first = t;
    o[t].step = nt;
  }
  /* a thread that cannot start leaves its share to this one */
  for (size_t t = 1; t < nt; t++)
    started[t] = pthread_create(&th[t], NULL, seal_thread, &o[t]) == 0;
  seal_some(&o[0]);
  for (size_t t = 1; t < nt; t++) {
    if (started[t])
      pthread_join(th[t], NULL);
    else
      seal_some(&o[t]);
  }
  for (size_t t = 0; t < nt && !j->rc; t++)
    if (o[t].rc) {
      j->rc = o[t].rc;
      j->err = o[t].err;
    }
  if (!j->rc) {
    mg_jw_init(&w, &j->body);
    mg_jw_obj(&w);
    mg_jw_kstr(&w, "batch", j->batch);
    mg_jw_key(&w, "records");
    mg_jw_arr(&w);
    for (size_t i = 0; i < j->n; i++) {
      struct rec *r = &j->r[i];
      mg_jw_obj(&w);
      mg_jw_kstr(&w, "id", r->ref);
      mg_jw_kstr(&w, "kind", r->kind);
      mg_jw_kint(&w, "version", r->version);
      mg_jw_kstr(&w, "seal", b64[i]);
      mg_jw_obj_end(&w);
    }
    mg_jw_arr_end(&w);
    mg_jw_obj_end(&w);
    if (j->body.oom || w.bad)
      j->rc = mg_err_set(&j->err, -ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < j->n; i++)
    free(b64[i]);
  free(b64);
}

/* A case snapshot is acknowledged only while its row still holds the
 * version sent (a newer one queued meanwhile stays due). */
static void ack_row(struct mg_sync *s, const struct rec *r, time_t now) {
  mg_outbox_acked(s->st, r->seq, strcmp(r->kind, "case") == 0 ? r->version : -1,
                  now);
}

/* Every row of the batch back off; the failure counts for the circuit. */
static void batch_failed(struct mg_sync *s, struct job *j, const char *why) {
  time_t now = time(NULL);
  s->failures++;
  double d = mg__sync_backoff_ms(s->cfg->sync_backoff_min,
                                 s->cfg->sync_backoff_max, s->failures - 1,
                                 random01()) / 1000.0;
  sqlite3_exec(mg_store_db(s->st), "BEGIN IMMEDIATE", NULL, NULL, NULL);
  for (size_t i = 0; i < j->n; i++)
    mg_outbox_retry_later(s->st, j->r[i].seq, now, d, why);
  note_error(s, why);
  sqlite3_exec(mg_store_db(s->st), "COMMIT", NULL, NULL, NULL);
  if (j->probe || s->failures >= s->cfg->sync_circuit_after) {
    if (s->circuit != CIRCUIT_OPEN)
      mg_log_warn("sync", "circuit open for %lld s after %lld failure(s) in "
                  "a row: %s", (long long)(s->cfg->sync_circuit_open / 1000),
                  (long long)s->failures, why);
    s->circuit = CIRCUIT_OPEN;
    uv_update_time(s->loop);
    s->open_until = uv_now(s->loop) + (uint64_t)s->cfg->sync_circuit_open;
  } else {
    /* an outage must not flood the log (N4): the first failure in a row and
     * every 20th are warnings, the others debug; status shows the last */
    mg_log(s->failures == 1 || s->failures % 20 == 0 ? MG_LOG_WARNING
                                                     : MG_LOG_DEBUG,
           "sync", "batch of %zu not delivered (failure %lld in a row, retry "
           "in %.1f s): %s", j->n, (long long)s->failures, d, why);
  }
}

static void records_done(struct xfer *x, CURLcode rc, long status) {
  struct mg_sync *s = x->s;
  struct job *j = x->ud;
  struct mg_json *doc = NULL;
  char why[600];
  time_t now = time(NULL);
  size_t acked = 0, rejected = 0, retried = 0;
  s->flying = 0;
  if (s->stopping) /* cancelled: the rows stay due as they are */
    goto out;
  if (rc != CURLE_OK || status != 200) {
    xfer_why(x, rc, status, why, sizeof(why));
    batch_failed(s, j, why);
    goto out;
  }
  const struct mg_json *res = NULL;
  if (mg_json_parse(x->resp.data ? x->resp.data : "", x->resp.len, NULL, &doc,
                    NULL) ||
      !(res = mg_json_get(doc, "results")) || res->type != MG_JSON_ARRAY) {
    batch_failed(s, j, "bad_answer: the tenant's answer has no results array");
    goto out;
  }
  sqlite3_exec(mg_store_db(s->st), "BEGIN IMMEDIATE", NULL, NULL, NULL);
  for (size_t i = 0; i < j->n; i++) {
    struct rec *r = &j->r[i];
    const struct mg_json *e = i < res->u.arr.n ? res->u.arr.items[i] : NULL;
    const char *st = mg_json_get_str(e, "status");
    const char *id = mg_json_get_str(e, "id");
    if (!e || !id || strcmp(id, r->ref) != 0 || !st) {
      mg_outbox_retry_later(s->st, r->seq, now, 1, "bad_answer: no result "
                            "for this record");
      retried++;
    } else if (!strcmp(st, "stored") || !strcmp(st, "duplicate") ||
               !strcmp(st, "stale")) {
      ack_row(s, r, now);
      acked++;
    } else if (!strcmp(st, "rejected")) {
      snprintf(why, sizeof(why), "%s: %.400s",
               mg_json_get_str(e, "code") ? mg_json_get_str(e, "code")
                                          : "rejected",
               mg_json_get_str(e, "message") ? mg_json_get_str(e, "message")
                                             : "");
      mg_outbox_rejected(s->st, r->seq, why);
      mg_log_err("sync", "the tenant rejected %s %s: %s (kept; see madoctl "
                 "sync status)", r->kind, r->ref, why);
      rejected++;
    } else {
      mg_outbox_retry_later(s->st, r->seq, now, 1, "bad_answer: unknown "
                            "status");
      retried++;
    }
  }
  {
    char t[24];
    mg_store_time(now, t);
    state_set(s, "last_success", t);
    state_add(s, "acked_total", (int64_t)acked);
  }
  sqlite3_exec(mg_store_db(s->st), "COMMIT", NULL, NULL, NULL);
  if (s->circuit != CIRCUIT_CLOSED)
    mg_log_notice("sync", "the tenant answers again: circuit closed");
  s->circuit = CIRCUIT_CLOSED;
  s->failures = 0;
  mg_log_debug("sync", "batch %s: %zu acknowledged, %zu rejected, %zu to "
               "retry", j->batch, acked, rejected, retried);
  if (j->n >= (size_t)s->cfg->sync_batch || j->probe)
    s->again = 1; /* more may be due */
  if (s->ready) { /* the next batch goes at once */
    struct job *next = s->ready;
    s->ready = NULL;
    batch_post(s, next);
  }
out:
  mg_json_free(doc);
  job_free(j);
  /* failed (or stopping): the sealed one is dropped, its rows stay due and
   * follow the backoff and the circuit */
  job_free(s->ready);
  s->ready = NULL;
  if (s->again && !s->stopping) {
    s->again = 0;
    try_send(s);
  }
}

/* Post a sealed batch (nothing else is in flight).  Takes j. */
static void batch_post(struct mg_sync *s, struct job *j) {
  size_t len = j->body.len;
  char *body = mg_buf_steal(&j->body);
  int rc = body ? xfer_start(s, s->cfg->sync_url, "/t1/records", body, len, 1,
                             records_done, j)
                : -ENOMEM;
  if (rc) {
    batch_failed(s, j, "cannot start the request");
    job_free(j);
    return;
  }
  s->flying = 1;
  s->flying_max_seq = 0;
  for (size_t i = 0; i < j->n; i++)
    if (j->r[i].seq > s->flying_max_seq)
      s->flying_max_seq = j->r[i].seq;
  /* a full batch: more may be due, read and seal it while this one flies */
  if (j->n >= (size_t)s->cfg->sync_batch && !j->probe)
    try_send(s);
}

static void seal_done(uv_work_t *req, int status) {
  struct job *j = req->data;
  struct mg_sync *s = j->s;
  s->sealing = 0;
  if (s->stopping || status) {
    job_free(j);
    return;
  }
  if (j->rc) {
    mg_log_err("sync", "cannot seal a batch: %s", j->err.msg);
    batch_failed(s, j, j->err.msg);
    job_free(j);
    return;
  }
  if (s->flying) {
    s->ready = j; /* goes when the answer to the one in flight is in */
    return;
  }
  batch_post(s, j);
}

/* Read what is due and hand it to a worker. */
static void try_send(struct mg_sync *s) {
  struct mg_outbox_row *rows = NULL;
  struct job *j = NULL;
  size_t n = 0;
  time_t now = time(NULL);
  sqlite3 *db = mg_store_db(s->st);
  int txn = 0;
  if (s->stopping || s->paused || !s->enrolled || !*s->cfg->sync_url)
    return;
  /* the pipeline is full, or a batch flies while the circuit is not
   * closed (a probe flies alone): after the answer */
  if (s->sealing || s->ready || (s->flying && s->circuit != CIRCUIT_CLOSED)) {
    s->again = 1;
    return;
  }
  if (s->circuit == CIRCUIT_OPEN) {
    uv_update_time(s->loop);
    if (uv_now(s->loop) < s->open_until)
      return;
    s->circuit = CIRCUIT_HALF_OPEN; /* one probe batch */
  }
  int probe = s->circuit == CIRCUIT_HALF_OPEN;
  /* one read transaction for the rows and their cases' exports: not one
   * per statement (each takes and drops the WAL's locks, N3) */
  txn = sqlite3_get_autocommit(db) &&
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
  if (mg_outbox_due_after(s->st, s->dk, now, s->flying ? s->flying_max_seq : 0,
                          probe ? 1 : (size_t)s->cfg->sync_batch, &rows, &n) ||
      n == 0)
    goto out;
  if (!(j = calloc(1, sizeof(*j))) || !(j->r = calloc(n, sizeof(*j->r))))
    goto out;
  j->s = s;
  j->probe = probe;
  j->req.data = j;
  for (size_t i = 0; i < n; i++) {
    struct rec *r = &j->r[j->n];
    r->seq = rows[i].seq;
    snprintf(r->kind, sizeof(r->kind), "%s", rows[i].kind);
    snprintf(r->ref, sizeof(r->ref), "%s", rows[i].ref);
    r->version = rows[i].version;
    if (strcmp(r->kind, "case") == 0) {
      int rc = s->exporter ? s->exporter(s->exporter_ud, r->ref, r->version,
                                         &r->plain, &r->plain_len)
                           : -ENOSYS;
      if (rc == -ENOENT) { /* the case is gone: nothing to send */
        sqlite3_stmt *q = NULL;
        if (sqlite3_prepare_v2(mg_store_db(s->st),
                               "DELETE FROM outbox WHERE seq = ?1", -1, &q,
                               NULL) == SQLITE_OK)
          sqlite3_bind_int64(q, 1, r->seq), sqlite3_step(q);
        sqlite3_finalize(q);
        continue;
      }
      if (rc) {
        if (rc != -ENOSYS)
          mg_outbox_retry_later(s->st, r->seq, now, 60, "export failed");
        continue;
      }
      snprintf(r->ctx, sizeof(r->ctx),
               "madoguchi/t1 case %s v%lld city %s box %s", r->ref,
               (long long)r->version, s->city, s->box);
    } else {
      r->plain = rows[i].plain; /* taken over */
      r->plain_len = rows[i].plain_len;
      rows[i].plain = NULL;
      snprintf(r->ctx, sizeof(r->ctx),
               "madoguchi/t1 application %s city %s box %s", r->ref, s->city,
               s->box);
    }
    j->n++;
  }
  if (j->n == 0)
    goto out;
  EVP_PKEY_up_ref(s->t_recv);
  EVP_PKEY_up_ref(s->sign);
  j->to = s->t_recv;
  j->by = s->sign;
  if (uv_queue_work(s->loop, &j->req, seal_work, seal_done) != 0)
    goto out;
  s->sealing = 1;
  j = NULL;
out:
  if (txn && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  job_free(j);
  mg_outbox_rows_free(rows, n);
}

static void on_tick(uv_timer_t *t) {
  struct mg_sync *s = t->data;
  time_t now = time(NULL);
  if (now - s->warned_at >= 60) {
    struct mg_outbox_stats st;
    if (mg_outbox_stats(s->st, now, &st) == 0 &&
        st.pending >= s->cfg->sync_warn_depth) {
      mg_log_warn("sync", "%lld application(s) and case(s) wait for the "
                  "tenant (warn_depth %lld); oldest %lld s",
                  (long long)st.pending, (long long)s->cfg->sync_warn_depth,
                  (long long)st.oldest_age_s);
      s->warned_at = now;
    }
  }
  try_send(s);
}

/* ---------------------------------------------------------------------- */
/* Public                                                                 */

int mg_sync_start(uv_loop_t *loop, const struct mg_config *cfg,
                  struct mg_store *st, const struct mg_key *data_key,
                  struct mg_sync **out, struct mg_err *err) {
  struct mg_sync *s = calloc(1, sizeof(*s));
  int rc = 0;
  char *p = NULL;
  *out = NULL;
  if (!s)
    return mg_err_set(err, -ENOMEM, "out of memory");
  s->loop = loop;
  s->cfg = cfg;
  s->st = st;
  s->dk = data_key;
  snprintf(s->dir, sizeof(s->dir), "%s/sync", cfg->state_dir);
  snprintf(s->cert_path, sizeof(s->cert_path), "%s/client.crt", s->dir);
  snprintf(s->key_path, sizeof(s->key_path), "%s/box_sign.pem", s->dir);
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
      !(s->multi = curl_multi_init())) {
    free(s);
    return mg_err_set(err, -EIO, "cannot initialise libcurl");
  }
  curl_multi_setopt(s->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl_multi_setopt(s->multi, CURLMOPT_SOCKETDATA, s);
  curl_multi_setopt(s->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(s->multi, CURLMOPT_TIMERDATA, s);
  uv_timer_init(loop, &s->curl_timer);
  uv_timer_init(loop, &s->tick);
  s->curl_timer.data = s->tick.data = s;
  s->handles_on = 1;
  p = state_get(s, "paused");
  s->paused = p && strcmp(p, "1") == 0;
  free(p);
  /* A broken identity does not stop the counter: applications queue, and
   * the status says what to fix (re-enrol). */
  struct mg_err ie = {{0}};
  rc = identity_load(s, &ie);
  if (rc == -ENOENT && *cfg->sync_url)
    mg_log_notice("sync", "not enrolled with the tenant yet: madoctl sync "
                  "enroll; applications queue meanwhile");
  else if (rc && rc != -ENOENT) {
    mg_log_err("sync", "%s; nothing is sent until this is fixed", ie.msg);
    note_error(s, ie.msg);
  }
  rc = 0;
  if (s->enrolled && *cfg->sync_url && *s->enrolled_url &&
      strcmp(s->enrolled_url, cfg->sync_url) != 0)
    mg_log_warn("sync", "[sync] url %s is not the url the box was enrolled "
                "with (%s)", cfg->sync_url, s->enrolled_url);
  if (*cfg->sync_url)
    uv_timer_start(&s->tick, on_tick, 10, (uint64_t)cfg->sync_interval);
  mg_log_info("sync", "tenant %s: %s%s", *cfg->sync_url ? cfg->sync_url
                                                        : "(off)",
              s->enrolled ? "enrolled as box " : "not enrolled",
              s->enrolled ? s->box : "");
  *out = s;
  return 0;
}

static void kick_cb(uv_timer_t *t) { on_tick(t); }

void mg_sync_kick(struct mg_sync *s) {
  if (!s || s->stopping || !*s->cfg->sync_url)
    return;
  if (s->sealing || s->ready) {
    s->again = 1;
    return;
  }
  /* coalesce: the next loop turn sends everything queued by then; the
   * interval timer restarts after it */
  uv_timer_start(&s->tick, kick_cb, 0, (uint64_t)s->cfg->sync_interval);
}

void mg_sync_now(struct mg_sync *s) {
  if (!s)
    return;
  if (mg_outbox_all_due(s->st))
    mg_log_warn("sync", "sync now: the outbox could not be updated");
  if (s->circuit == CIRCUIT_OPEN)
    s->open_until = 0; /* the next try is the probe */
  mg_sync_kick(s);
}

void mg_sync_pause(struct mg_sync *s, int on) {
  if (!s)
    return;
  s->paused = on ? 1 : 0;
  state_set(s, "paused", on ? "1" : "0");
  mg_log_notice("sync", "sending %s by madoctl", on ? "paused" : "resumed");
  if (!on) {
    s->circuit = CIRCUIT_CLOSED; /* a technician's resume tries at once */
    s->failures = 0;
    mg_sync_kick(s);
  }
}

int mg_sync_status_json(struct mg_sync *s, struct mg_jw *w) {
  struct mg_outbox_stats st;
  time_t now = time(NULL);
  const char *state;
  char until[24] = "";
  if (mg_outbox_stats(s->st, now, &st))
    return -EIO;
  char *ls = state_get(s, "last_success"), *le = state_get(s, "last_error"),
       *la = state_get(s, "last_error_at"), *at = state_get(s, "acked_total");
  if (!*s->cfg->sync_url)
    state = "off";
  else if (!s->enrolled)
    state = "not_enrolled";
  else if (s->paused)
    state = "paused";
  else if (s->circuit == CIRCUIT_OPEN)
    state = "circuit_open";
  else if (s->sealing || s->flying)
    state = "sending";
  else if (s->failures)
    state = "backoff";
  else
    state = "idle";
  if (s->circuit == CIRCUIT_OPEN) {
    uv_update_time(s->loop);
    uint64_t t = uv_now(s->loop);
    mg_store_time(now + (time_t)((s->open_until > t ? s->open_until - t : 0) +
                                 999) / 1000,
                  until);
  }
  mg_jw_obj(w);
  mg_jw_kstr(w, "state", state);
  mg_jw_kstr(w, "url", s->cfg->sync_url);
  mg_jw_kbool(w, "enrolled", s->enrolled);
  mg_jw_kstr(w, "city", s->enrolled ? s->city : NULL);
  mg_jw_kstr(w, "box", s->enrolled ? s->box : NULL);
  mg_jw_kstr(w, "serial", s->enrolled && *s->serial ? s->serial : NULL);
  mg_jw_kbool(w, "paused", s->paused);
  mg_jw_kint(w, "queue_depth", st.pending);
  mg_jw_kint(w, "oldest_age_s", st.oldest_age_s);
  mg_jw_kint(w, "rejected", st.rejected);
  mg_jw_kint(w, "acked_retained", st.acked);
  mg_jw_kint(w, "acked_total", at ? atoll(at) : 0);
  mg_jw_kstr(w, "last_success", ls);
  mg_jw_kstr(w, "last_error", le);
  mg_jw_kstr(w, "last_error_at", la);
  mg_jw_kint(w, "failures_in_row", s->failures);
  mg_jw_kstr(w, "circuit", s->circuit == CIRCUIT_OPEN        ? "open"
                           : s->circuit == CIRCUIT_HALF_OPEN ? "half_open"
                                                             : "closed");
  mg_jw_kstr(w, "circuit_open_until", *until ? until : NULL);
  mg_jw_kint(w, "warn_depth", s->cfg->sync_warn_depth);
  if (st.pending >= s->cfg->sync_warn_depth) {
    char msg[160];
    snprintf(msg, sizeof(msg), "%lld rows wait for the tenant (warn_depth "
             "%lld)", (long long)st.pending,
             (long long)s->cfg->sync_warn_depth);
    mg_jw_kstr(w, "warning", msg);
  } else {
    mg_jw_kstr(w, "warning", NULL);
  }
  /* the rejected rows (ids and the tenant's reasons; no content) */
  mg_jw_key(w, "rejected_rows");
  mg_jw_arr(w);
  {
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(mg_store_db(s->st),
                           "SELECT kind, ref, last_error, created_at FROM "
                           "outbox WHERE rejected = 1 AND acked_at IS NULL "
                           "ORDER BY seq LIMIT 20",
                           -1, &q, NULL) == SQLITE_OK)
      while (sqlite3_step(q) == SQLITE_ROW) {
        mg_jw_obj(w);
        mg_jw_kstr(w, "kind", (const char *)sqlite3_column_text(q, 0));
        mg_jw_kstr(w, "id", (const char *)sqlite3_column_text(q, 1));
        mg_jw_kstr(w, "error", (const char *)sqlite3_column_text(q, 2));
        mg_jw_kstr(w, "queued_at", (const char *)sqlite3_column_text(q, 3));
        mg_jw_obj_end(w);
      }
    sqlite3_finalize(q);
  }
  mg_jw_arr_end(w);
  mg_jw_obj_end(w);
  free(ls);
  free(le);
  free(la);
  free(at);
  return 0;
}

void mg_sync_set_case_exporter(struct mg_sync *s, mg_sync_case_export_fn fn,
                               void *ud) {
  s->exporter = fn;
  s->exporter_ud = ud;
}

/* ---- case fetch ------------------------------------------------------ */

static void fetch_done(struct xfer *x, CURLcode rc, long status) {
  struct fetch *f = x->ud;
  struct mg_sync *s = x->s;
  struct mg_json *doc = NULL;
  struct mg_err err = {{0}};
  unsigned char *env = NULL, *plain = NULL;
  size_t elen = 0, plen = 0;
  char ctx[256], why[600];
  int r = 0;
  if (rc != CURLE_OK || status >= 500 || status == 0) {
    xfer_why(x, rc, status, why, sizeof(why));
    mg_log_warn("sync", "case fetch: the tenant could not be asked: %s", why);
    r = -EAGAIN;
    goto out;
  }
  if (status == 404) {
    r = -ENOENT;
    goto out;
  }
  if (status != 200) {
    xfer_why(x, rc, status, why, sizeof(why));
    mg_log_warn("sync", "case fetch refused: %s", why);
    r = status == 401 || status == 403 ? -EACCES : -EPROTO;
    goto out;
  }
  int64_t version = 0;
  const char *id = NULL, *seal = NULL;
  if (mg_json_parse(x->resp.data ? x->resp.data : "", x->resp.len, NULL, &doc,
                    NULL) ||
      !(id = mg_json_get_str(doc, "id")) ||
      mg_json_get_int(doc, "version", &version) ||
      !(seal = mg_json_get_str(doc, "seal")) || strlen(id) != 32 ||
      strspn(id, "0123456789abcdef") != 32) {
    mg_log_warn("sync", "case fetch: the tenant's answer lacks id, version "
                "or seal");
    r = -EBADMSG;
    goto out;
  }
  snprintf(ctx, sizeof(ctx), "madoguchi/t1 case-fetch %s v%lld city %s box %s",
           id, (long long)version, s->city, s->box);
  if (mg_env_unb64(seal, strlen(seal), &env, &elen, &err) ||
      mg_env_open(s->recv, s->t_sign, ctx, env, elen, &plain, &plen, &err)) {
    mg_log_warn("sync", "case fetch: the envelope does not open: %s", err.msg);
    r = -EBADMSG;
    goto out;
  }
out:
  f->cb(f->ud, r, r ? NULL : plain, r ? 0 : plen,
        r ? NULL : mg_json_get_str(doc, "origin_box"));
  if (r && plain) {
    OPENSSL_cleanse(plain, plen);
    free(plain);
  }
  free(env);
  mg_json_free(doc);
  free(f);
}

int mg_sync_fetch_case(struct mg_sync *s, const char *number,
                       const char *token_sha256, mg_sync_fetch_cb cb,
                       void *ud) {
  struct mg_buf b;
  struct mg_jw w;
  struct fetch *f = NULL;
  if (!s || s->stopping || !s->enrolled || !*s->cfg->sync_url ||
      (s->circuit == CIRCUIT_OPEN && uv_now(s->loop) < s->open_until))
    return -EAGAIN;
  if (!cb || !number == !token_sha256 ||
      (number && (strlen(number) != 8 || strspn(number, "0123456789") != 8)) ||
      (token_sha256 && (strlen(token_sha256) != 64 ||
                        strspn(token_sha256, "0123456789abcdef") != 64)))
    return -EINVAL;
  if (!(f = calloc(1, sizeof(*f))))
    return -ENOMEM;
  f->s = s;
  f->cb = cb;
  f->ud = ud;
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  mg_jw_obj(&w);
  if (number)
    mg_jw_kstr(&w, "number", number);
  else
    mg_jw_kstr(&w, "token_sha256", token_sha256);
  mg_jw_obj_end(&w);
  size_t len = b.len;
  char *body = b.oom ? NULL : mg_buf_steal(&b);
  mg_buf_free(&b);
  int rc = body ? xfer_start(s, s->cfg->sync_url, "/t1/cases/fetch", body, len,
                             1, fetch_done, f)
                : -ENOMEM;
  if (rc)
    free(f);
  return rc;
}

/* ---- enrolment ------------------------------------------------------- */

/* Write `len` bytes to path through a temporary name: 0600, fsynced,
 * renamed, directory fsynced. */
static int write_atomic(const char *dir, const char *path, const void *data,
                        size_t len) {
  char tmp[4300];
  int fd, rc = 0;
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  unlink(tmp);
  if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
    return -errno;
  const char *p = data;
  size_t left = len;
  while (left && rc == 0) {
    ssize_t n = write(fd, p, left);
    if (n < 0)
      rc = -errno;
    else {
      p += n;
      left -= (size_t)n;
    }
  }
  if (rc == 0 && fsync(fd) != 0)
    rc = -errno;
  close(fd);
  if (rc == 0 && rename(tmp, path) != 0)
    rc = -errno;
  if (rc) {
    unlink(tmp);
    return rc;
  }
  if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
    fsync(fd);
    close(fd);
  }
  return 0;
}

static void enroll_done(struct xfer *x, CURLcode rc, long status) {
  struct enroll *en = x->ud;
  struct mg_sync *s = x->s;
  struct mg_json *doc = NULL;
  struct mg_err err = {{0}};
  struct mg_buf b;
  struct mg_jw w;
  char why[700], path[4200];
  int r = 0;
  EVP_PKEY *k1 = NULL, *k2 = NULL;
  mg_buf_init(&b);
  s->enrolling = 0;
  if (rc != CURLE_OK || status != 201) {
    xfer_why(x, rc, status, why, sizeof(why));
    r = rc != CURLE_OK ? -EAGAIN
        : status == 403 ? -EACCES
        : status == 409 ? -EEXIST
        : status == 400 ? -EINVAL
                        : -EPROTO;
    mg_log_warn("sync", "enrolment failed: %s", why);
    goto out;
  }
  const char *cert = NULL, *tr = NULL, *ts = NULL;
  if (mg_json_parse(x->resp.data ? x->resp.data : "", x->resp.len, NULL, &doc,
                    NULL) ||
      !(cert = mg_json_get_str(doc, "certificate")) ||
      strncmp(cert, "-----BEGIN CERTIFICATE-----", 27) != 0 ||
      !(tr = mg_json_get_str(doc, "tenant_recv")) ||
      !(ts = mg_json_get_str(doc, "tenant_sign")) ||
      mg_env_pub_from_b64(tr, MG_ENV_X25519, &k1, &err) ||
      mg_env_pub_from_b64(ts, MG_ENV_ED25519, &k2, &err)) {
    snprintf(why, sizeof(why), "the tenant's answer lacks a certificate or "
             "its keys%s%s", err.msg[0] ? ": " : "", err.msg);
    r = -EPROTO;
    goto out;
  }
  mg_jw_init(&w, &b);
  mg_jw_obj(&w);
  mg_jw_kstr(&w, "url", en->url);
  mg_jw_kstr(&w, "city", en->city);
  mg_jw_kstr(&w, "box", en->box);
  mg_jw_kstr(&w, "serial", mg_json_get_str(doc, "serial"));
  mg_jw_kstr(&w, "tenant_recv", tr);
  mg_jw_kstr(&w, "tenant_sign", ts);
  mg_jw_obj_end(&w);
  mg_buf_putc(&b, '\n');
  snprintf(path, sizeof(path), "%s/tenant.json", s->dir);
  if (b.oom ||
      (r = write_atomic(s->dir, s->cert_path, cert, strlen(cert))) ||
      (r = write_atomic(s->dir, path, b.data, b.len))) {
    snprintf(why, sizeof(why), "cannot write %.500s: %s", s->dir,
             strerror(r ? -r : ENOMEM));
    r = r ? r : -ENOMEM;
    goto out;
  }
  if ((r = identity_load(s, &err))) {
    snprintf(why, sizeof(why), "%s", err.msg);
    goto out;
  }
  mg_log_notice("sync", "enrolled with the tenant as box %s of city %s "
                "(certificate serial %s)", s->box, s->city, s->serial);
  s->circuit = CIRCUIT_CLOSED;
  s->failures = 0;
  snprintf(why, sizeof(why),
           "{\"url\":\"%.400s\",\"city\":\"%s\",\"box\":\"%s\",\"serial\":\"%.79s\"}",
           en->url, s->city, s->box, s->serial);
  mg_sync_kick(s);
out:
  en->cb(en->ud, r, why);
  EVP_PKEY_free(k1);
  EVP_PKEY_free(k2);
  mg_buf_free(&b);
  mg_json_free(doc);
  free(en);
}

static int name_ok(const char *s, size_t max, const char *set) {
  size_t n = s ? strlen(s) : 0;
  return n && n <= max && strspn(s, set) == n;
}

int mg_sync_enroll(struct mg_sync *s, const char *url, const char *city,
                   const char *box, const char *code, mg_sync_enroll_cb cb,
                   void *ud, struct mg_err *err) {
  struct enroll *en = NULL;
  EVP_PKEY *sign = NULL, *recv = NULL;
  EVP_MD_CTX *md = NULL;
  struct mg_buf b;
  struct mg_jw w;
  char sp[MG_ENV_KEY_B64], rp[MG_ENV_KEY_B64], msg[400], path[4200];
  char *pop = NULL;
  unsigned char sig[64];
  size_t siglen = sizeof(sig);
  int rc = 0;
  mg_buf_init(&b);
  if (s->enrolling)
    return mg_err_set(err, -EBUSY, "an enrolment is already running");
  if (!url || strncmp(url, "https://", 8) != 0 || strlen(url) > 400 ||
      strpbrk(url, " \t\"'<>\\"))
    return mg_err_set(err, -EINVAL, "--url: an https:// address of the "
                      "tenant");
  if (!name_ok(city, 6, "0123456789") || strlen(city) != 6)
    return mg_err_set(err, -EINVAL, "--city: the 6-digit local government "
                      "code (e.g. 352152)");
  if (!name_ok(box, 63, "abcdefghijklmnopqrstuvwxyz0123456789-"))
    return mg_err_set(err, -EINVAL, "--box: 1-63 characters a-z, 0-9 and -");
  if (!code || !*code || strlen(code) > 128 ||
      strspn(code, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789-_") != strlen(code))
    return mg_err_set(err, -EINVAL, "the code (stdin): the one-time code "
                      "the tenant's administrator gave, letters, digits, - "
                      "and _");
  /* keys: created on first use (0700 directory, 0600 files) */
  snprintf(path, sizeof(path), "%s/box_recv.pem", s->dir);
  if ((rc = mg_env_key_load(s->key_path, MG_ENV_ED25519, &sign, err)) ||
      (rc = mg_env_key_load(path, MG_ENV_X25519, &recv, err)))
    goto out;
  if (mg_env_pub_b64(sign, sp) || mg_env_pub_b64(recv, rp)) {
    rc = mg_err_set(err, -EIO, "cannot read the box's public keys");
    goto out;
  }
  /* proof of possession of the signing key */
  snprintf(msg, sizeof(msg), "madoguchi/t1 enroll %s %s %s", city, box, code);
  if (!(md = EVP_MD_CTX_new()) ||
      EVP_DigestSignInit(md, NULL, NULL, NULL, sign) != 1 ||
      EVP_DigestSign(md, sig, &siglen, (const unsigned char *)msg,
                     strlen(msg)) != 1 ||
      mg_env_b64(sig, siglen, &pop)) {
    rc = mg_err_set(err, -EIO, "cannot sign the proof of possession");
    goto out;
  }
  mg_jw_init(&w, &b);
  mg_jw_obj(&w);
  mg_jw_kstr(&w, "city", city);
  mg_jw_kstr(&w, "box", box);
  mg_jw_kstr(&w, "code", code);
  mg_jw_kstr(&w, "sign_key", sp);
  mg_jw_kstr(&w, "recv_key", rp);
  mg_jw_kstr(&w, "pop", pop);
  mg_jw_obj_end(&w);
  if (b.oom || !(en = calloc(1, sizeof(*en)))) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  en->s = s;
  en->cb = cb;
  en->ud = ud;
  snprintf(en->url, sizeof(en->url), "%s", url);
  snprintf(en->city, sizeof(en->city), "%s", city);
  snprintf(en->box, sizeof(en->box), "%s", box);
  size_t len = b.len;
  if ((rc = xfer_start(s, url, "/t1/enroll", mg_buf_steal(&b), len, 0,
                       enroll_done, en))) {
    free(en);
    rc = mg_err_set(err, rc, "cannot start the request");
    goto out;
  }
  s->enrolling = 1;
out:
  OPENSSL_cleanse(msg, sizeof(msg));
  if (b.data)
    OPENSSL_cleanse(b.data, b.len);
  mg_buf_free(&b);
  EVP_MD_CTX_free(md);
  EVP_PKEY_free(sign);
  EVP_PKEY_free(recv);
  free(pop);
  return rc;
}

/* ---- stop ------------------------------------------------------------ */

static void timer_closed(uv_handle_t *h) { (void)h; }

void mg_sync_stop(struct mg_sync *s) {
  if (!s || s->stopping)
    return;
  s->stopping = 1;
  job_free(s->ready); /* sealed, never sent: its rows stay due */
  s->ready = NULL;
  /* transfers in flight are cancelled: their rows stay due (a batch the
   * tenant stored meanwhile is answered "duplicate" next time) */
  while (s->xfers) {
    struct xfer *x = s->xfers;
    s->xfers = x->next;
    curl_multi_remove_handle(s->multi, x->easy);
    x->done(x, CURLE_ABORTED_BY_CALLBACK, 0);
    xfer_free(x);
  }
  /* may call the socket callback (cached connections close): the loop
   * and our contexts are still valid */
  curl_multi_cleanup(s->multi);
  s->multi = NULL;
  if (s->handles_on) {
    uv_close((uv_handle_t *)&s->curl_timer, timer_closed);
    uv_close((uv_handle_t *)&s->tick, timer_closed);
    s->handles_on = 0;
  }
}

void mg_sync_free(struct mg_sync *s) {
  if (!s)
    return;
  if (s->multi)
    curl_multi_cleanup(s->multi);
  identity_drop(s);
  free(s);
  curl_global_cleanup();
}
