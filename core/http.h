/*
 * http.h — the tablets' HTTPS + WebSocket listener on the daemon's libuv
 * loop.  libwebsockets (lws 4.1.6, foreign libuv loop) stays behind this
 * header: no other file includes libwebsockets.h, so the server could be
 * swapped without touching the API handlers.
 *
 * - TLS only (1.2 minimum); plain HTTP on the port fails the handshake.
 * - /api/v1/... goes to routes registered with mg_http_route() (so does
 *   any other path a route matches, e.g. the tenant's /t1/...); every
 *   error body is {"error": {"code": "...", "message": "..."}}.
 * - /api/v1/events is the WebSocket for events to the tablets.
 * - Anything else is a static file under web_dir (types, ETag, caching).
 */
#ifndef MG_HTTP_H
#define MG_HTTP_H

#include <stddef.h>
#include <uv.h>

#include "buf.h"
#include "config.h"
#include "err.h"

struct mg_http;
struct mg_http_txn; /* one request, alive until answered */

struct mg_http_req {
  const char *method; /* "GET", "POST", ... */
  const char *path;   /* "/api/v1/health" (percent-decoded by lws) */
  const char *query;  /* "a=1&b=2" or "" */
  const char *body;   /* NUL-terminated; may also contain NUL */
  size_t body_len;
};

/* A route handler runs on the loop.  It must answer with mg_http_reply*
 * exactly once, now or later (after queued work); `req` is valid only
 * during the call. */
typedef void (*mg_http_handler_fn)(void *ud, struct mg_http_txn *t,
                                   const struct mg_http_req *req);

/* Start listening per cfg ([http], [tls], web_dir).  The TLS files must
 * exist (mg_tls_ensure makes them). */
int mg_http_start(uv_loop_t *loop, const struct mg_config *cfg,
                  struct mg_http **out, struct mg_err *err);

/* Mutual TLS (issue 8, X3; madoguchi-tenantd).  With ca_file set, every
 * handshake asks for a client certificate; one that is presented must chain
 * to ca_file (and be in its validity period) or the handshake fails.
 * Requests whose path starts with one of prefixes[] (NULL-terminated) and
 * that came without a verified certificate get 401
 * client_certificate_required before any handler runs. */
struct mg_http_mtls {
  const char *ca_file;         /* PEM; copied by lws at start */
  const char *const *prefixes; /* e.g. {"/t1/records", NULL}; copied */
};
/* mg_http_start, with mutual TLS when mtls is not NULL. */
int mg_http_start_mtls(uv_loop_t *loop, const struct mg_config *cfg,
                       const struct mg_http_mtls *mtls, struct mg_http **out,
                       struct mg_err *err);
/* The verified client certificate of t's connection (out). */
struct mg_http_peer {
  char serial[80]; /* lower-case hex of the serial number, no leading zeros */
  char cn[128];    /* subject commonName, "" when none */
  char o[128];     /* subject organizationName, "" when none */
};
/* 0 and *out; -ENOENT no verified certificate; -ENOTCONN the client went
 * away.  Valid during the handler call (copy what a queued job needs). */
int mg_http_peer_cert(struct mg_http_txn *t, struct mg_http_peer *out);

/* The value of `name` in a request's query string into out: 1 found, 0
 * absent, -1 too long for len.  lws has already percent-decoded each
 * argument. */
int mg_http_query(const char *query, const char *name, char *out, size_t len);

/* path: exact ("/api/v1/health"), or a prefix ending in "/" followed by "*". */
int mg_http_route(struct mg_http *h, const char *method, const char *path,
                  mg_http_handler_fn fn, void *ud);

/* Answer (copies the body).  Safe after the client went away. */
void mg_http_reply(struct mg_http_txn *t, int status, const char *content_type,
                   const void *body, size_t len);
void mg_http_reply_json(struct mg_http_txn *t, int status, const char *json);
void mg_http_reply_error(struct mg_http_txn *t, int status, const char *code,
                         const char *message);

/* Copy the request header `name` (lower case with the colon: "cookie:",
 * "x-csrf-token:") into buf, NUL-terminated.  Returns its length, or -1
 * when absent, too long for buf, or the client has gone.  Valid only
 * during the handler call: a handler that queues work copies what it
 * needs first. */
int mg_http_header(struct mg_http_txn *t, const char *name, char *buf,
                   size_t len);
/* An extra response header ("set-cookie:", value), copied; call before
 * mg_http_reply*.  At most a few per response (excess ones are dropped
 * and logged). */
void mg_http_set_header(struct mg_http_txn *t, const char *name,
                        const char *value);

/* Who may open the events WebSocket (U1, W1).  fn (in: the upgrade's
 * Cookie header, "" when none) writes the counter the socket serves into
 * counter (out, NUL-terminated, at most len bytes) and returns 0 to accept;
 * non-zero refuses the upgrade (no 101).  It is asked again for every open
 * socket by mg_http_ws_recheck(), which closes those it now refuses (a
 * session logged out or expired).  The listener keeps a copy of each
 * socket's Cookie header for that (wiped when the socket closes) and knows
 * nothing else of sessions.  Without fn (tests of the listener alone) every
 * upgrade is accepted and receives every event. */
typedef int (*mg_http_ws_auth_fn)(void *ud, const char *cookie, char *counter,
                                  size_t len);
void mg_http_set_ws_auth(struct mg_http *h, mg_http_ws_auth_fn fn, void *ud);
/* Re-run the auth fn for every WebSocket client; refused ones are closed.
 * Returns how many were closed. */
size_t mg_http_ws_recheck(struct mg_http *h);

/* Send a text frame (copied) to the WebSocket clients of the given counters
 * (counters[0..n)), or to every client when n is 0 (box-wide events).  Clients
 * that fall too far behind are dropped rather than letting memory grow. */
void mg_http_broadcast_to(struct mg_http *h, const char *json,
                          const char *const *counters, size_t n);
/* mg_http_broadcast_to(h, json, NULL, 0): to every client. */
void mg_http_broadcast(struct mg_http *h, const char *json);

int mg_http_port(const struct mg_http *h);
size_t mg_http_ws_clients(const struct mg_http *h);
size_t mg_http_inflight(const struct mg_http *h);
/* Config values that SIGHUP may change. */
void mg_http_reload(struct mg_http *h, const struct mg_config *cfg);

/* Graceful stop: new requests get 503 and close; requests in flight may
 * finish until drain_timeout; then the listener and every connection are
 * closed and close_others(ud) is called: the owner closes its own handles
 * there.  Once the loop holds nothing else, the server frees lws and closes
 * its last handle, so uv_run() returns; mg_http_free() may then be called. */
void mg_http_stop(struct mg_http *h, void (*close_others)(void *ud), void *ud);
void mg_http_free(struct mg_http *h);

#endif
