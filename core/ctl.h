/*
 * ctl.h — the control socket (runtime_dir/ctl.sock) that madoctl talks to.
 *
 * Protocol: the client sends one JSON object on one line,
 *   {"cmd": "status", "args": ["..."]}
 * and gets one line back and the connection closes:
 *   {"ok": true, "result": {...}}  or
 *   {"ok": false, "error": {"code": "...", "message": "..."}}
 * The socket is mode 0660, group ctl_group; each client's credentials
 * (SO_PEERCRED) must be root, the daemon's own user, or a ctl_group member.
 */
#ifndef MG_CTL_H
#define MG_CTL_H

#include <uv.h>

#include "err.h"
#include "json.h"

/* One command being answered. */
struct mg_ctl_call;

#define MG_CTL_LATER 1

/* Answer one command: write exactly one JSON value (the result) into w and
 * return 0; or return a negative errno with err set (nothing written),
 * -ENOENT meaning "unknown command"; or return MG_CTL_LATER and call
 * mg_ctl_finish(call, ...) exactly once later, on the loop (a device
 * command, say). */
typedef int (*mg_ctl_fn)(void *ud, struct mg_ctl_call *call, const char *cmd,
                         const struct mg_json *args, struct mg_jw *w,
                         struct mg_err *err);

/* Finish a deferred call: result_json (a JSON value) when rc is 0, else
 * message.  Safe when the client has gone or the socket is stopping. */
void mg_ctl_finish(struct mg_ctl_call *call, int rc, const char *result_json,
                   const char *message);

struct mg_ctl;

int mg_ctl_start(uv_loop_t *loop, const char *path, const char *group,
                 mg_ctl_fn fn, void *ud, struct mg_ctl **out,
                 struct mg_err *err);
/* Close the listener and clients; memory goes in the close callbacks, so
 * run the loop afterwards.  The socket file is removed. */
void mg_ctl_stop(struct mg_ctl *c);

#endif
