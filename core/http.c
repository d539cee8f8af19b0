/*
 * http.c — HTTPS, static files and the events WebSocket, on libwebsockets
 * 4.1.6 driven by our own libuv loop (a "foreign loop" for lws).
 *
 * Why no lws mounts: our routes, error bodies and cache headers must be
 * ours; lws mounts add redirects and HTML error pages.  One protocol
 * callback handles every HTTP request and the /api/v1/events WebSocket.
 *
 * Teardown with a foreign libuv loop is asynchronous: lws_context_destroy()
 * starts closing lws's handles and lws writes NULL to `pcontext` once it is
 * done; only then may our own handles go and the loop close (see the lws
 * foreign-loop example and warmcat/libwebsockets#2129, #2595).
 */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "webroot.h"

#define WS_QUEUE_MAX 256        /* messages queued per client before a drop */
#define HDR_MAX 2048

struct route {
  char *method;
  char *path;
  size_t prefix; /* >0: match path[0..prefix) only */
  mg_http_handler_fn fn;
  void *ud;
};

struct ws_msg {
  struct ws_msg *next;
  size_t len;
  unsigned char data[]; /* LWS_PRE headroom, then the text */
};

struct conn;

#define MG__HTTP_XH 4 /* extra response headers per answer */

struct mg_http_txn {
  struct mg_http *h;
  struct conn *c;     /* NULL once the client went away */
  char method[8];
  char *path;
  char *query;
  struct mg_buf body;
  int has_body;       /* waiting for HTTP_BODY_COMPLETION */
  int too_large;
  int answered;
  int close_after;
  /* the response */
  int status;
  char content_type[64];
  const char *cache_control; /* static string; NULL: no-store */
  char etag[48];
  char *xh_name[MG__HTTP_XH], *xh_value[MG__HTTP_XH]; /* mg_http_set_header */
  struct mg_buf out;
  size_t sent;
  int headers_sent;
};

/* Per-connection data (lws per_session_data). */
struct conn {
  struct mg_http *h;
  struct lws *wsi;
  struct mg_http_txn *txn;
  int is_ws;
  int streaming; /* a large file is being sent by lws (counted in flight) */
  /* WebSocket send queue */
  struct ws_msg *q_head, *q_tail;
  size_t q_len;
  struct conn *ws_next, *ws_prev;
  /* the session behind the socket (mg_http_set_ws_auth): its counter, and
   * the upgrade's Cookie header to ask again (a credential: wiped at close) */
  char counter[72];
  char *cookie;
  int closing; /* being dropped: queue nothing more */
};

struct mg_http {
  uv_loop_t *loop;
  struct lws_context *ctx;  /* NULL once lws has finished tearing down */
  struct lws_vhost *vh;
  struct lws_protocols protocols[2];
  struct lws_protocol_vhost_options headers[6];
  struct mg_webroot *web;
  char cache_assets[48];  /* Cache-Control of /assets/ */
  unsigned char *scratch; /* LWS_PRE + headers + one body chunk */
  int64_t max_body;
  int64_t static_max_age_s;
  int64_t drain_ms;
  struct route *routes;
  size_t n_routes;
  struct conn *ws_clients;
  size_t n_ws;
  mg_http_ws_auth_fn ws_auth; /* NULL: every upgrade accepted, sees all */
  void *ws_auth_ud;
  size_t inflight; /* transactions not yet written (or dropped), plus
                      files being streamed */
  int draining;
  uv_timer_t timer;   /* drain deadline, then teardown polling */
  int timer_open;
  uint64_t drain_deadline;
  void (*done)(void *ud);
  void *done_ud;
  int destroying;
  int zombie; /* freed while handlers still owed answers: see mg_http_free */
  char **mtls_prefixes; /* mg_http_start_mtls: paths needing a client cert */
  size_t n_mtls;
};

static void lws_log_emit(int level, const char *line) {
  char msg[512];
  size_t n = strlen(line);
  if (n >= sizeof(msg))
    n = sizeof(msg) - 1;
  memcpy(msg, line, n);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
    n--;
  msg[n] = '\0';
  /* lws reports per-connection trouble (a client that hung up, a refused
   * handshake) at ERR/WARN: for the daemon that is a warning or less. */
  mg_log(level == LLL_ERR ? MG_LOG_WARNING : MG_LOG_INFO, "lws", "%s", msg);
}

/* ---------------------------------------------------------------------- */
/* Transactions                                                            */

/* A transaction counts as in flight from txn_new until it is freed: after
 * its answer was written, or once it can no longer be (client gone).  A
 * graceful stop waits for that, not only for the handler's answer. */
static void txn_free(struct mg_http_txn *t) {
  if (!t)
    return;
  t->h->inflight--;
  free(t->path);
  free(t->query);
  for (int i = 0; i < MG__HTTP_XH; i++) {
    free(t->xh_name[i]);
    free(t->xh_value[i]);
  }
  mg_buf_free(&t->body);
  mg_buf_free(&t->out);
  free(t);
}

/* The connection is gone or moved on: a txn still waiting for its handler
 * stays alive (detached) until mg_http_reply drops it. */
static void conn_drop_txn(struct conn *c) {
  struct mg_http_txn *t = c->txn;
  c->txn = NULL;
  if (!t)
    return;
  if (!t->answered) {
    t->c = NULL;
    return;
  }
  txn_free(t);
}

void mg_http_reply(struct mg_http_txn *t, int status, const char *content_type,
                   const void *body, size_t len) {
  if (t->answered)
    return;
  t->answered = 1;
  if (!t->c) { /* client gone while the handler worked */
    struct mg_http *h = t->h;
    txn_free(t);
    if (h->zombie && h->inflight == 0)
      free(h);
    return;
  }
  t->status = status;
  snprintf(t->content_type, sizeof(t->content_type), "%s",
           content_type ? content_type : "application/octet-stream");
  mg_buf_append(&t->out, body, len);
  lws_callback_on_writable(t->c->wsi);
}

void mg_http_reply_json(struct mg_http_txn *t, int status, const char *json) {
  mg_http_reply(t, status, "application/json; charset=utf-8", json,
                strlen(json));
}

void mg_http_reply_error(struct mg_http_txn *t, int status, const char *code,
                         const char *message) {
  struct mg_buf b;
  struct mg_jw w;
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  mg_jw_obj(&w);
  mg_jw_key(&w, "error");
  mg_jw_obj(&w);
  mg_jw_kstr(&w, "code", code);
  mg_jw_kstr(&w, "message", message);
  mg_jw_obj_end(&w);
  mg_jw_obj_end(&w);
  mg_http_reply_json(t, status, b.oom ? "{}" : b.data);
  mg_buf_free(&b);
}

#define CHUNK 65536

/* Write the response of c->txn: the headers and the first chunk of the
 * body in one lws_write (one TLS record, one syscall for most answers),
 * the rest a chunk per writeable callback.  On h1 lws_write queues what
 * the socket does not take at once. */
static int txn_write(struct conn *c) {
  struct mg_http_txn *t = c->txn;
  unsigned char *start = c->h->scratch + LWS_PRE, *p = start;
  unsigned char *end = start + HDR_MAX;

  if (!t || !t->answered)
    return 0;
  if (!t->headers_sent) {
    const char *cc = t->cache_control ? t->cache_control : "no-store";
    if (lws_add_http_common_headers(c->wsi, (unsigned)t->status,
                                    t->content_type, t->out.len, &p, end) ||
        lws_add_http_header_by_name(c->wsi,
                                    (const unsigned char *)"cache-control:",
                                    (const unsigned char *)cc, (int)strlen(cc),
                                    &p, end))
      return -1;
    if (t->etag[0] &&
        lws_add_http_header_by_name(c->wsi, (const unsigned char *)"etag:",
                                    (const unsigned char *)t->etag,
                                    (int)strlen(t->etag), &p, end))
      return -1;
    for (int i = 0; i < MG__HTTP_XH && t->xh_name[i]; i++)
      if (lws_add_http_header_by_name(c->wsi, (const unsigned char *)t->xh_name[i],
                                      (const unsigned char *)t->xh_value[i],
                                      (int)strlen(t->xh_value[i]), &p, end))
        return -1;
    if ((t->close_after || c->h->draining) &&
        lws_add_http_header_by_token(c->wsi, WSI_TOKEN_CONNECTION,
                                     (const unsigned char *)"close", 5, &p, end))
      return -1;
    if (lws_finalize_http_header(c->wsi, &p, end))
      return -1;
    t->headers_sent = 1;
  }
  size_t chunk = t->out.len - t->sent;
  if (chunk > CHUNK)
    chunk = CHUNK;
  if (chunk)
    memcpy(p, t->out.data + t->sent, chunk);
  t->sent += chunk;
  int final = t->sent == t->out.len;
  size_t n = (size_t)(p - start) + chunk;
  if (lws_write(c->wsi, start, n, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) !=
      (int)n)
    return -1;
  if (!final) {
    lws_callback_on_writable(c->wsi);
    return 0;
  }
  int close_it = t->close_after || c->h->draining;
  conn_drop_txn(c);
  if (close_it)
    return -1;
  /* keep-alive: back to waiting for the next request, or close */
  return lws_http_transaction_completed(c->wsi) ? -1 : 0;
}

/* ---------------------------------------------------------------------- */
/* Static files                                                            */

static struct mg_http_txn *txn_new(struct conn *c, const char *method,
                                   const char *path);

static void conn_end_stream(struct conn *c) {
  if (c && c->streaming) {
    c->streaming = 0;
    c->h->inflight--;
  }
}

/* Serve a file of web_dir: 0 answered or streaming, -1 not found, -2 close
 * the connection.  index.html and friends must be revalidated so that an
 * upgrade is seen at once; /assets/ may be cached. */
static int serve_static(struct conn *c, const char *path) {
  struct mg_http *h = c->h;
  struct mg_webfile f;
  char inm[64];
  int cacheable = strncmp(path, "/assets/", 8) == 0 && h->static_max_age_s > 0;

  if (mg_webroot_get(h->web, path, &f))
    return -1;
  int not_modified =
      lws_hdr_copy(c->wsi, inm, sizeof(inm), WSI_TOKEN_HTTP_IF_NONE_MATCH) > 0 &&
      strcmp(inm, f.etag) == 0;
  if (f.data || not_modified) {
    struct mg_http_txn *t = txn_new(c, "GET", path);
    if (!t)
      return -2;
    t->cache_control = cacheable ? h->cache_assets : "no-cache";
    snprintf(t->etag, sizeof(t->etag), "%s", f.etag);
    if (not_modified)
      mg_http_reply(t, 304, f.type, NULL, 0);
    else
      mg_http_reply(t, 200, f.type, f.data, f.len);
    return 0;
  }
  /* Too large to keep in memory: lws streams it from disk. */
  char hdrs[192];
  snprintf(hdrs, sizeof(hdrs), "cache-control: %s\r\netag: %s\r\n",
           cacheable ? h->cache_assets : "no-cache", f.etag);
  int n = lws_serve_http_file(c->wsi, f.path, f.type, hdrs, (int)strlen(hdrs));
  if (n < 0 || (n > 0 && lws_http_transaction_completed(c->wsi)))
    return -2;
  if (n == 0) { /* a graceful stop waits for the transfer to finish */
    c->streaming = 1;
    h->inflight++;
  }
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Requests                                                                */

static const struct {
  enum lws_token_indexes tok;
  const char *name;
} methods[] = {
    {WSI_TOKEN_GET_URI, "GET"},       {WSI_TOKEN_POST_URI, "POST"},
    {WSI_TOKEN_PUT_URI, "PUT"},       {WSI_TOKEN_PATCH_URI, "PATCH"},
    {WSI_TOKEN_DELETE_URI, "DELETE"}, {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
    {WSI_TOKEN_HEAD_URI, "HEAD"},
};

static const char *req_method(struct lws *wsi) {
  for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
    if (lws_hdr_total_length(wsi, methods[i].tok))
      return methods[i].name;
  return NULL;
}

int mg_http_header(struct mg_http_txn *t, const char *name, char *buf,
                   size_t len) {
  int n = -1;
  if (!t || !t->c || !t->c->wsi || !buf || len == 0 || len > INT_MAX)
    return -1;
  buf[0] = '\0';
  /* Headers lws knows have a token; others are "custom" headers. */
  for (int i = 0; i < (int)WSI_TOKEN_COUNT; i++) {
    const unsigned char *tn = lws_token_to_string((enum lws_token_indexes)i);
    if (tn && strcasecmp((const char *)tn, name) == 0) {
      if (lws_hdr_total_length(t->c->wsi, (enum lws_token_indexes)i) <= 0)
        return -1;
      n = lws_hdr_copy(t->c->wsi, buf, (int)len, (enum lws_token_indexes)i);
      return n > 0 ? n : -1;
    }
  }
  n = lws_hdr_custom_copy(t->c->wsi, buf, (int)len, name, (int)strlen(name));
  return n > 0 ? n : -1;
}

void mg_http_set_header(struct mg_http_txn *t, const char *name,
                        const char *value) {
  if (!t || t->answered)
    return;
  for (int i = 0; i < MG__HTTP_XH; i++) {
    if (t->xh_name[i])
      continue;
    t->xh_name[i] = strdup(name);
    t->xh_value[i] = strdup(value);
    if (!t->xh_name[i] || !t->xh_value[i]) {
      free(t->xh_name[i]);
      free(t->xh_value[i]);
      t->xh_name[i] = t->xh_value[i] = NULL;
      mg_log_err("http", "out of memory for a response header");
    }
    return;
  }
  mg_log_warn("http", "too many extra response headers; %s dropped", name);
}

static void dispatch(struct mg_http_txn *t) {
  struct mg_http *h = t->h;
  struct mg_http_req req = {t->method, t->path, t->query ? t->query : "",
                            t->body.data ? t->body.data : "", t->body.len};
  int path_known = 0;
  if (h->draining) {
    t->close_after = 1;
    mg_http_reply_error(t, 503, "shutting_down",
                        "the daemon is stopping; try again in a moment");
    return;
  }
  for (size_t i = 0; i < h->n_mtls; i++) {
    struct mg_http_peer peer;
    if (strncmp(t->path, h->mtls_prefixes[i], strlen(h->mtls_prefixes[i])) == 0 &&
        mg_http_peer_cert(t, &peer) != 0) {
      mg_http_reply_error(t, 401, "client_certificate_required",
                          "this path needs the box's client certificate "
                          "(issued at enrolment) in the TLS handshake");
      return;
    }
  }
  for (size_t i = 0; i < h->n_routes; i++) {
    struct route *r = &h->routes[i];
    int match = r->prefix ? strncmp(t->path, r->path, r->prefix) == 0
                          : strcmp(t->path, r->path) == 0;
    if (!match)
      continue;
    path_known = 1;
    if (strcmp(r->method, t->method) == 0) {
      r->fn(r->ud, t, &req);
      return;
    }
  }
  if (path_known)
    mg_http_reply_error(t, 405, "method_not_allowed",
                        "this method is not allowed on this path");
  else
    mg_http_reply_error(t, 404, "not_found", "no such API path");
}

/* Read the query string: lws splits it into URI_ARGS fragments. */
static char *req_query(struct lws *wsi) {
  struct mg_buf b;
  char frag[1024];
  mg_buf_init(&b);
  for (int i = 0; lws_hdr_copy_fragment(wsi, frag, sizeof(frag),
                                        WSI_TOKEN_HTTP_URI_ARGS, i) > 0;
       i++) {
    if (i)
      mg_buf_putc(&b, '&');
    mg_buf_puts(&b, frag);
  }
  return mg_buf_steal(&b);
}

/* A transaction for the request now on c; counted in flight until it is
 * answered.  NULL when out of memory. */
static struct mg_http_txn *txn_new(struct conn *c, const char *method,
                                   const char *path) {
  struct mg_http_txn *t = calloc(1, sizeof(*t));
  if (!t)
    return NULL;
  t->h = c->h;
  t->h->inflight++; /* txn_free counts it out */
  t->c = c;
  snprintf(t->method, sizeof(t->method), "%s", method);
  t->path = strdup(path);
  t->query = req_query(c->wsi);
  mg_buf_init(&t->body);
  mg_buf_init(&t->out);
  if (!t->path || !t->query) {
    txn_free(t);
    return NULL;
  }
  c->txn = t;
  return t;
}

/* Does a registered route match path (any method)? */
static int route_known(const struct mg_http *h, const char *path) {
  for (size_t i = 0; i < h->n_routes; i++) {
    const struct route *r = &h->routes[i];
    if (r->prefix ? strncmp(path, r->path, r->prefix) == 0
                  : strcmp(path, r->path) == 0)
      return 1;
  }
  return 0;
}

static int on_http(struct conn *c, const char *uri, size_t uri_len) {
  struct mg_http *h = c->h;
  const char *method = req_method(c->wsi);
  char path[2048], cl[32];
  struct mg_http_txn *t = NULL;

  if (!method || uri_len >= sizeof(path))
    return lws_return_http_status(c->wsi, HTTP_STATUS_BAD_REQUEST, NULL), -1;
  memcpy(path, uri, uri_len);
  path[uri_len] = '\0';

  if (strncmp(path, "/api/", 5) != 0 && !route_known(h, path)) {
    int rc = strcmp(method, "GET") == 0 ? serve_static(c, path) : -1;
    if (rc == 0)
      return 0;
    if (rc == -2)
      return -1;
    if (!(t = txn_new(c, method, path)))
      return -1;
    if (strcmp(method, "GET") != 0)
      mg_http_reply_error(t, 405, "method_not_allowed", "static files are GET only");
    else
      mg_http_reply_error(t, 404, "not_found", "no such file");
    return 0;
  }
  if (!(t = txn_new(c, method, path)))
    return -1;

  long long len = -1;
  if (lws_hdr_copy(c->wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0) {
    char *end;
    len = strtoll(cl, &end, 10);
    if (*end || len < 0) {
      t->close_after = 1;
      mg_http_reply_error(t, 400, "bad_request", "Content-Length is not a number");
      return 0;
    }
  }
  int body_method = !strcmp(method, "POST") || !strcmp(method, "PUT") ||
                    !strcmp(method, "PATCH");
  if (body_method && len < 0) {
    t->close_after = 1;
    mg_http_reply_error(t, 411, "length_required",
                        "a request body needs a Content-Length header");
    return 0;
  }
  if (!body_method && len > 0) {
    t->close_after = 1;
    mg_http_reply_error(t, 400, "bad_request", "this method takes no body");
    return 0;
  }
  if (len > h->max_body) {
    t->close_after = 1;
    mg_http_reply_error(t, 413, "body_too_large",
                        "the request body is larger than [http] max_body");
    return 0;
  }
  /* lws delivers a body (also an empty POST body) through HTTP_BODY
   * callbacks after this returns; other requests are complete now. */
  if (body_method && (len > 0 || !strcmp(method, "POST"))) {
    t->has_body = 1;
    return 0;
  }
  dispatch(t);
  return 0;
}

/* ---------------------------------------------------------------------- */
/* WebSocket                                                               */

static void ws_queue_free(struct conn *c) {
  while (c->q_head) {
    struct ws_msg *m = c->q_head;
    c->q_head = m->next;
    free(m);
  }
  c->q_tail = NULL;
  c->q_len = 0;
}

void mg_http_set_ws_auth(struct mg_http *h, mg_http_ws_auth_fn fn, void *ud) {
  h->ws_auth = fn;
  h->ws_auth_ud = ud;
}

/* Ask the auth fn about an upgrade request: 0 and the counter, or -1.
 * cookie_out (optional) gets a malloc'd copy of the Cookie header. */
static int ws_authorize(struct mg_http *h, struct lws *wsi, char *counter,
                        size_t len, char **cookie_out) {
  char cookie[4096] = "";
  int rc = -1;
  counter[0] = '\0';
  if (!h->ws_auth)
    return 0;
  if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_COOKIE) > 0 &&
      lws_hdr_copy(wsi, cookie, sizeof(cookie), WSI_TOKEN_HTTP_COOKIE) < 0)
    goto out;
  if (h->ws_auth(h->ws_auth_ud, cookie, counter, len) != 0)
    goto out;
  if (cookie_out && !(*cookie_out = strdup(cookie)))
    goto out;
  rc = 0;
out:
  OPENSSL_cleanse(cookie, sizeof(cookie));
  return rc;
}

static void ws_kill(struct conn *c) {
  c->closing = 1;
  lws_set_timeout(c->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
}

size_t mg_http_ws_recheck(struct mg_http *h) {
  size_t closed = 0;
  if (!h->ws_auth)
    return 0;
  for (struct conn *c = h->ws_clients; c; c = c->ws_next) {
    char counter[sizeof(c->counter)];
    if (c->closing)
      continue;
    if (c->cookie &&
        h->ws_auth(h->ws_auth_ud, c->cookie, counter, sizeof(counter)) == 0)
      continue;
    /* The session ended (logout, expiry, user removed): no more events. */
    c->counter[0] = '\0';
    ws_queue_free(c);
    ws_kill(c);
    closed++;
  }
  if (closed)
    mg_log_info("http", "closed %zu WebSocket client(s) whose session ended",
                closed);
  return closed;
}

/* Does client c get an event for counters[0..n)? */
static int ws_wants(const struct mg_http *h, const struct conn *c,
                    const char *const *counters, size_t n) {
  if (c->closing)
    return 0;
  if (!h->ws_auth || n == 0)
    return 1;
  if (!c->counter[0])
    return 0;
  for (size_t i = 0; i < n; i++)
    if (counters[i] && strcmp(counters[i], c->counter) == 0)
      return 1;
  return 0;
}

void mg_http_broadcast(struct mg_http *h, const char *json) {
  mg_http_broadcast_to(h, json, NULL, 0);
}

void mg_http_broadcast_to(struct mg_http *h, const char *json,
                          const char *const *counters, size_t n) {
  size_t len = strlen(json);
  for (struct conn *c = h->ws_clients; c; c = c->ws_next) {
    if (!ws_wants(h, c, counters, n))
      continue;
    if (c->q_len >= WS_QUEUE_MAX) {
      /* A stuck tablet must not grow our memory; it reconnects and
       * refetches state. */
      mg_log_warn("http", "dropping a WebSocket client %zu messages behind",
                  c->q_len);
      ws_kill(c);
      continue;
    }
    struct ws_msg *m = malloc(sizeof(*m) + LWS_PRE + len);
    if (!m)
      continue;
    m->next = NULL;
    m->len = len;
    memcpy(m->data + LWS_PRE, json, len);
    if (c->q_tail)
      c->q_tail->next = m;
    else
      c->q_head = m;
    c->q_tail = m;
    c->q_len++;
    lws_callback_on_writable(c->wsi);
  }
}

static int ws_write(struct conn *c) {
  struct ws_msg *m = c->q_head;
  if (!m)
    return 0;
  if (lws_write(c->wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT) < (int)m->len)
    return -1;
  c->q_head = m->next;
  if (!c->q_head)
    c->q_tail = NULL;
  c->q_len--;
  free(m);
  if (c->q_head)
    lws_callback_on_writable(c->wsi);
  return 0;
}

/* ---------------------------------------------------------------------- */

static int callback(struct lws *wsi, enum lws_callback_reasons reason,
                    void *user, void *in, size_t len) {
  /* mTLS: lws asks here with no wsi; len is OpenSSL's preverify_ok.  A
   * certificate that does not chain to [tls] client_ca fails the handshake
   * (lws's default would accept it). */
  if (reason == LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION)
    return len ? 0 : 1;
  struct conn *c = user;
  struct mg_http *h = lws_context_user(lws_get_context(wsi));

  switch (reason) {
  case LWS_CALLBACK_HTTP_BIND_PROTOCOL:
    if (c) {
      memset(c, 0, sizeof(*c));
      c->h = h;
      c->wsi = wsi;
    }
    break;
  case LWS_CALLBACK_HTTP:
    if (!c->h) { /* bind is not called on every path: be sure */
      c->h = h;
      c->wsi = wsi;
    }
    conn_drop_txn(c);
    return on_http(c, in, len) ? -1 : 0;
  case LWS_CALLBACK_HTTP_BODY:
    if (c->txn && !c->txn->too_large) {
      if ((int64_t)(c->txn->body.len + len) > h->max_body)
        c->txn->too_large = 1;
      else
        mg_buf_append(&c->txn->body, in, len);
    }
    return 0;
  case LWS_CALLBACK_HTTP_BODY_COMPLETION:
    if (c->txn && c->txn->has_body) {
      c->txn->has_body = 0;
      if (c->txn->too_large || c->txn->body.oom) {
        c->txn->close_after = 1;
        mg_http_reply_error(c->txn, 413, "body_too_large",
                            "the request body is larger than [http] max_body");
      } else {
        dispatch(c->txn);
      }
    }
    return 0;
  case LWS_CALLBACK_HTTP_WRITEABLE:
    if (c && c->txn)
      return txn_write(c) ? -1 : 0;
    break;
  case LWS_CALLBACK_HTTP_FILE_COMPLETION:
    conn_end_stream(c);
    if (h->draining)
      return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
  case LWS_CALLBACK_CLOSED_HTTP:
  case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    if (c && c->h) {
      conn_drop_txn(c);
      conn_end_stream(c);
    }
    break;

  case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
    char uri[64];
    if (h->draining)
      return 1;
    if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
        strcmp(uri, "/api/v1/events") != 0)
      return 1; /* only one WebSocket endpoint */
    {
      /* a staff session (U1): no session, no socket */
      char counter[72];
      if (ws_authorize(h, wsi, counter, sizeof(counter), NULL)) {
        mg_log_info("http", "WebSocket upgrade refused: no valid staff session");
        return 1;
      }
    }
    return 0;
  }
  case LWS_CALLBACK_ESTABLISHED:
    memset(c, 0, sizeof(*c));
    c->h = h;
    c->wsi = wsi;
    /* asked again: the per-session data is fresh here, and the session
     * may have ended since the filter */
    if (ws_authorize(h, wsi, c->counter, sizeof(c->counter), &c->cookie))
      return -1;
    c->is_ws = 1;
    c->ws_next = h->ws_clients;
    if (h->ws_clients)
      h->ws_clients->ws_prev = c;
    h->ws_clients = c;
    h->n_ws++;
    mg_log_debug("http", "WebSocket client connected (%zu)", h->n_ws);
    return 0;
  case LWS_CALLBACK_SERVER_WRITEABLE:
    return ws_write(c) ? -1 : 0;
  case LWS_CALLBACK_RECEIVE:
    /* The tablets only listen on this socket; they talk through the API. */
    return 0;
  case LWS_CALLBACK_CLOSED:
    if (c && c->is_ws) {
      if (c->ws_prev)
        c->ws_prev->ws_next = c->ws_next;
      else
        h->ws_clients = c->ws_next;
      if (c->ws_next)
        c->ws_next->ws_prev = c->ws_prev;
      h->n_ws--;
      ws_queue_free(c);
      c->is_ws = 0;
    }
    if (c && c->cookie) {
      OPENSSL_cleanse(c->cookie, strlen(c->cookie));
      free(c->cookie);
      c->cookie = NULL;
    }
    return 0;
  default:
    break;
  }
  return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---------------------------------------------------------------------- */
/* Life cycle                                                              */

int mg_http_route(struct mg_http *h, const char *method, const char *path,
                  mg_http_handler_fn fn, void *ud) {
  struct route *r = realloc(h->routes, (h->n_routes + 1) * sizeof(*r));
  if (!r)
    return -ENOMEM;
  h->routes = r;
  r = &r[h->n_routes];
  size_t n = strlen(path);
  r->method = strdup(method);
  r->path = strdup(path);
  r->prefix = (n >= 2 && strcmp(path + n - 2, "/*") == 0) ? n - 1 : 0;
  r->fn = fn;
  r->ud = ud;
  if (!r->method || !r->path) {
    free(r->method);
    free(r->path);
    return -ENOMEM;
  }
  h->n_routes++;
  return 0;
}

static void set_max_age(struct mg_http *h, int64_t ms) {
  h->static_max_age_s = ms / 1000;
  snprintf(h->cache_assets, sizeof(h->cache_assets), "public, max-age=%lld",
           (long long)h->static_max_age_s);
}

void mg_http_reload(struct mg_http *h, const struct mg_config *cfg) {
  set_max_age(h, cfg->static_max_age);
  h->drain_ms = cfg->drain_timeout;
}

static size_t other_handles(uv_loop_t *loop, uv_handle_t *except);
static void finish_destroy(struct mg_http *h);

int mg_http_start(uv_loop_t *loop, const struct mg_config *cfg,
                  struct mg_http **out, struct mg_err *err) {
  return mg_http_start_mtls(loop, cfg, NULL, out, err);
}

int mg_http_start_mtls(uv_loop_t *loop, const struct mg_config *cfg,
                       const struct mg_http_mtls *mtls, struct mg_http **out,
                       struct mg_err *err) {
  struct lws_context_creation_info info;
  void *foreign_loops[1] = {loop};
  char host[256];
  int port, rc = 0;
  struct mg_http *h = calloc(1, sizeof(*h));

  *out = NULL;
  if (!h)
    return mg_err_set(err, -ENOMEM, "out of memory");
  h->loop = loop;
  h->max_body = cfg->max_body;
  set_max_age(h, cfg->static_max_age);
  h->drain_ms = cfg->drain_timeout;
  h->scratch = malloc(LWS_PRE + HDR_MAX + CHUNK);
  if (!h->scratch || mg_webroot_create(cfg->web_dir, &h->web)) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  if (mg_config_listen_split(cfg->listen, host, sizeof(host), &port)) {
    rc = mg_err_set(err, -EINVAL, "bad listen address %s", cfg->listen);
    goto out;
  }
  lws_set_log_level(getenv("MG_LWS_DEBUG") ? 0xff : (LLL_ERR | LLL_WARN), lws_log_emit);

  h->protocols[0].name = "mg-http";
  h->protocols[0].callback = callback;
  h->protocols[0].per_session_data_size = sizeof(struct conn);
  h->protocols[0].rx_buffer_size = 4096;
  /* lws cuts every write into pieces of this size; one piece (and so one
   * TLS record and one syscall) should carry headers plus a chunk. */
  h->protocols[0].tx_packet_size = HDR_MAX + CHUNK;

  /* Headers on every response; the CSP allows only our own origin. */
  static const char *const hdr[][2] = {
      {"x-content-type-options:", "nosniff"},
      {"x-frame-options:", "deny"},
      {"referrer-policy:", "no-referrer"},
      {"content-security-policy:",
       "default-src 'self'; img-src 'self' data: blob:; media-src 'self' "
       "blob:; connect-src 'self'; object-src 'none'; frame-ancestors "
       "'none'; base-uri 'none'; form-action 'self'"},
  };
  for (size_t i = 0; i < sizeof(hdr) / sizeof(hdr[0]); i++) {
    h->headers[i].next = i ? &h->headers[i - 1] : NULL;
    h->headers[i].name = hdr[i][0];
    h->headers[i].value = hdr[i][1];
  }

  memset(&info, 0, sizeof(info));
  info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
                 LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN |
                 LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
  info.foreign_loops = foreign_loops;
  info.pcontext = &h->ctx;
  info.user = h;
  info.fd_limit_per_thread = (unsigned)cfg->max_connections + 32;
  info.timeout_secs = (unsigned)((cfg->request_timeout + 999) / 1000);
  info.keepalive_timeout = (int)((cfg->idle_timeout + 999) / 1000);
  info.max_http_header_data = 4096;
  /* lws sends a file in chunks of this size: the default 4 KiB costs a
   * TLS record and a loop pass per 4 KiB of a typical asset. */
  info.pt_serv_buf_size = 32768;
  info.max_http_header_pool = (unsigned short)(cfg->max_connections < 1024
                                                   ? cfg->max_connections
                                                   : 1024);
  h->ctx = lws_create_context(&info);
  if (!h->ctx) {
    rc = mg_err_set(err, -EIO, "cannot create the HTTP server context");
    goto out;
  }

  memset(&info, 0, sizeof(info));
  info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  if (strchr(host, ':') == NULL && strcmp(host, "0.0.0.0") == 0)
    info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
  info.vhost_name = "madoguchi";
  info.port = port;
  info.iface = (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0) ? NULL
                                                                          : host;
  info.protocols = h->protocols;
  info.headers = &h->headers[sizeof(hdr) / sizeof(hdr[0]) - 1];
  info.ssl_cert_filepath = cfg->cert;
  info.ssl_private_key_filepath = cfg->key;
  info.alpn = "http/1.1";
  if (mtls && mtls->ca_file) {
    /* ask for a certificate, verify one that is given, allow none (the
     * per-path rule is in dispatch) */
    info.options |= LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT |
                    LWS_SERVER_OPTION_PEER_CERT_NOT_REQUIRED;
    info.ssl_ca_filepath = mtls->ca_file;
    for (size_t i = 0; mtls->prefixes && mtls->prefixes[i]; i++) {
      char **np = realloc(h->mtls_prefixes, (h->n_mtls + 1) * sizeof(*np));
      if (!np || !(np[h->n_mtls] = strdup(mtls->prefixes[i]))) {
        if (np)
          h->mtls_prefixes = np;
        rc = mg_err_set(err, -ENOMEM, "out of memory");
        goto out;
      }
      h->mtls_prefixes = np;
      h->n_mtls++;
    }
  }
  info.ssl_options_set = SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 |
                         SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE;
  if (cfg->tls_min == 1)
    info.ssl_options_set |= SSL_OP_NO_TLSv1_2;
  info.timeout_secs = (unsigned)((cfg->request_timeout + 999) / 1000);
  /* a client holding a header table without finishing its request */
  info.timeout_secs_ah_idle = info.timeout_secs;
  info.keepalive_timeout = (int)((cfg->idle_timeout + 999) / 1000);
  h->vh = lws_create_vhost(h->ctx, &info);
  if (!h->vh) {
    rc = mg_err_set(err, -EADDRINUSE,
                    "cannot listen on %s with %s and %s (address in use, bad "
                    "interface or unreadable TLS files; see the lws messages "
                    "above)",
                    cfg->listen, cfg->cert, cfg->key);
    goto out;
  }
  mg_log_notice("http", "listening on https://%s:%d/", host,
                lws_get_vhost_listen_port(h->vh));
  *out = h;
  h = NULL;
out:
  if (h) {
    if (h->ctx) {
      /* Nothing else runs on the loop yet: let lws close its handles,
       * then free its context. */
      lws_context_destroy(h->ctx);
      for (int i = 0; other_handles(loop, NULL) && i < 10000; i++)
        uv_run(loop, UV_RUN_NOWAIT);
      finish_destroy(h);
    }
    mg_http_free(h);
  }
  return rc;
}

int mg_http_port(const struct mg_http *h) {
  return h->vh ? lws_get_vhost_listen_port(h->vh) : -1;
}

size_t mg_http_ws_clients(const struct mg_http *h) { return h->n_ws; }

size_t mg_http_inflight(const struct mg_http *h) { return h->inflight; }

static void count_handle(uv_handle_t *handle, void *arg) {
  void **a = arg;
  if (handle != a[0])
    (*(size_t *)a[1])++;
}

/* Handles in the loop other than `except` (closing ones included). */
static size_t other_handles(uv_loop_t *loop, uv_handle_t *except) {
  size_t n = 0;
  void *arg[2] = {except, &n};
  uv_walk(loop, count_handle, arg);
  return n;
}

/* lws on a foreign libuv loop: the first lws_context_destroy() closes its
 * handles asynchronously; only when they are all closed may the second
 * call free the context (which then writes NULL to h->ctx). */
static void finish_destroy(struct mg_http *h) {
  lws_context_destroy(h->ctx);
  if (h->ctx)
    mg_log_err("http", "lws did not finish tearing down");
}

static void timer_closed(uv_handle_t *handle) {
  struct mg_http *h = handle->data;
  h->timer_open = 0;
}

static void on_stop_timer(uv_timer_t *tm) {
  struct mg_http *h = tm->data;
  if (!h->destroying) {
    if (h->inflight && uv_now(h->loop) < h->drain_deadline)
      return;
    if (h->inflight)
      mg_log_warn("http", "%zu requests still running after drain_timeout",
                  h->inflight);
    h->destroying = 1;
    lws_context_destroy(h->ctx);
    /* Our owner closes its handles now; we wait for the loop to hold
     * nothing but this timer. */
    if (h->done)
      h->done(h->done_ud);
    return;
  }
  if (other_handles(h->loop, (uv_handle_t *)tm))
    return;
  finish_destroy(h);
  uv_timer_stop(tm);
  uv_close((uv_handle_t *)tm, timer_closed);
}

void mg_http_stop(struct mg_http *h, void (*done)(void *ud), void *ud) {
  if (h->draining)
    return;
  h->draining = 1;
  h->done = done;
  h->done_ud = ud;
  h->drain_deadline = uv_now(h->loop) + (uint64_t)h->drain_ms;
  uv_timer_init(h->loop, &h->timer);
  h->timer.data = h;
  h->timer_open = 1;
  uv_timer_start(&h->timer, on_stop_timer, 0, 5);
}

void mg_http_free(struct mg_http *h) {
  if (!h)
    return;
  for (size_t i = 0; i < h->n_routes; i++) {
    free(h->routes[i].method);
    free(h->routes[i].path);
  }
  free(h->routes);
  for (size_t i = 0; i < h->n_mtls; i++)
    free(h->mtls_prefixes[i]);
  free(h->mtls_prefixes);
  h->mtls_prefixes = NULL;
  h->n_mtls = 0;
  mg_webroot_free(h->web);
  free(h->scratch);
  h->routes = NULL;
  h->web = NULL;
  h->scratch = NULL;
  /* A handler that outlived drain_timeout still holds a transaction that
   * points here; the last such answer frees the struct. */
  if (h->inflight) {
    h->zombie = 1;
    return;
  }
  free(h);
}

/* The value of `name` in the query string into out: 1 found, 0 absent,
 * -1 too long.  lws has already percent-decoded each argument. */
int mg_http_query(const char *query, const char *name, char *out,
                  size_t len) {
  size_t n = strlen(name);
  out[0] = '\0';
  for (const char *p = query; p && *p;) {
    const char *amp = strchr(p, '&');
    size_t l = amp ? (size_t)(amp - p) : strlen(p);
    if (l > n && strncmp(p, name, n) == 0 && p[n] == '=') {
      if (l - n - 1 >= len)
        return -1;
      memcpy(out, p + n + 1, l - n - 1);
      out[l - n - 1] = '\0';
      return 1;
    }
    p = amp ? amp + 1 : NULL;
  }
  return 0;
}

/* The verified client certificate (mg_http_start_mtls). */
int mg_http_peer_cert(struct mg_http_txn *t, struct mg_http_peer *out) {
  memset(out, 0, sizeof(*out));
  if (!t || !t->c || !t->c->wsi)
    return -ENOTCONN;
  SSL *ssl = lws_get_ssl(t->c->wsi);
  X509 *x = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
  if (!x || SSL_get_verify_result(ssl) != X509_V_OK)
    return -ENOENT;
  BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
  char *hex = bn ? BN_bn2hex(bn) : NULL;
  BN_free(bn);
  if (!hex)
    return -ENOMEM;
  size_t j = 0;
  for (const char *p = hex; *p && j + 1 < sizeof(out->serial); p++)
    out->serial[j++] = (char)((*p >= 'A' && *p <= 'F') ? *p + 32 : *p);
  out->serial[j] = '\0';
  OPENSSL_free(hex);
  X509_NAME *sn = X509_get_subject_name(x);
  if (X509_NAME_get_text_by_NID(sn, NID_commonName, out->cn, sizeof(out->cn)) < 0)
    out->cn[0] = '\0';
  if (X509_NAME_get_text_by_NID(sn, NID_organizationName, out->o,
                                sizeof(out->o)) < 0)
    out->o[0] = '\0';
  return 0;
}
