#include "ctl.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

#define CTL_MAX_REQUEST (64 * 1024)
#define CTL_CLIENT_TIMEOUT_MS 5000
#define CTL_CALL_TIMEOUT_MS 120000 /* a deferred device command */

struct ctl_client {
  struct mg_ctl *ctl;
  uv_pipe_t pipe;
  uv_timer_t timer;
  struct mg_buf in;
  int closing;
  int handles; /* open handles; free when 0 */
  struct mg_ctl_call *call; /* a deferred answer, if any */
  struct ctl_client *next, *prev;
};

struct mg_ctl_call {
  struct ctl_client *c; /* NULL once the client is gone */
};

struct mg_ctl {
  uv_loop_t *loop;
  uv_pipe_t listener;
  char *path;
  gid_t gid;
  int have_gid;
  mg_ctl_fn fn;
  void *ud;
  struct ctl_client *clients;
  int stopped;
};

static void client_handle_closed(uv_handle_t *h) {
  struct ctl_client *c = h->data;
  if (--c->handles == 0) {
    mg_buf_free(&c->in);
    free(c);
  }
}

static void client_close(struct ctl_client *c) {
  if (c->closing)
    return;
  c->closing = 1;
  if (c->call) {
    c->call->c = NULL;
    c->call = NULL;
  }
  if (c->prev)
    c->prev->next = c->next;
  else
    c->ctl->clients = c->next;
  if (c->next)
    c->next->prev = c->prev;
  uv_close((uv_handle_t *)&c->pipe, client_handle_closed);
  uv_close((uv_handle_t *)&c->timer, client_handle_closed);
}

struct write_req {
  uv_write_t req;
  struct ctl_client *c;
  char *data;
};

static void on_written(uv_write_t *req, int status) {
  struct write_req *w = (struct write_req *)req;
  (void)status;
  client_close(w->c);
  free(w->data);
  free(w);
}

static void reply(struct ctl_client *c, char *line /* owned */) {
  struct write_req *w = calloc(1, sizeof(*w));
  if (!w || !line) {
    free(w);
    free(line);
    client_close(c);
    return;
  }
  w->c = c;
  w->data = line;
  uv_buf_t b = uv_buf_init(line, (unsigned)strlen(line));
  uv_read_stop((uv_stream_t *)&c->pipe);
  if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_written)) {
    free(line);
    free(w);
    client_close(c);
  }
}

static void reply_error(struct ctl_client *c, const char *code, const char *msg) {
  struct mg_buf b;
  struct mg_jw w;
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  mg_jw_obj(&w);
  mg_jw_kbool(&w, "ok", 0);
  mg_jw_key(&w, "error");
  mg_jw_obj(&w);
  mg_jw_kstr(&w, "code", code);
  mg_jw_kstr(&w, "message", msg);
  mg_jw_obj_end(&w);
  mg_jw_obj_end(&w);
  mg_buf_putc(&b, '\n');
  reply(c, mg_buf_steal(&b));
}

static void on_timeout(uv_timer_t *t);

static void handle_line(struct ctl_client *c, const char *line, size_t len) {
  struct mg_json *req = NULL;
  struct mg_json_error jerr;
  struct mg_err err = {{0}};
  struct mg_buf b, res;
  struct mg_jw w;
  const char *cmd;

  mg_buf_init(&b);
  mg_buf_init(&res);
  if (mg_json_parse(line, len, NULL, &req, &jerr)) {
    reply_error(c, "bad_request", jerr.msg);
    goto out;
  }
  cmd = mg_json_get_str(req, "cmd");
  if (!cmd) {
    reply_error(c, "bad_request", "the request needs a \"cmd\" string");
    goto out;
  }
  mg_jw_init(&w, &res);
  struct mg_ctl_call *call = calloc(1, sizeof(*call));
  if (!call) {
    reply_error(c, "internal", "out of memory");
    goto out;
  }
  call->c = c;
  c->call = call;
  int rc = c->ctl->fn(c->ctl->ud, call, cmd, mg_json_get(req, "args"), &w, &err);
  if (rc == MG_CTL_LATER) {
    if (!c->call) /* already finished from inside fn */
      goto out;
    uv_read_stop((uv_stream_t *)&c->pipe);
    uv_timer_start(&c->timer, on_timeout, CTL_CALL_TIMEOUT_MS, 0);
    goto out;
  }
  c->call = NULL;
  free(call);
  if (rc == -ENOENT) {
    reply_error(c, "unknown_command", err.msg[0] ? err.msg : "unknown command");
  } else if (rc) {
    reply_error(c, "failed", err.msg[0] ? err.msg : strerror(-rc));
  } else if (res.oom || w.bad || !res.len) {
    reply_error(c, "internal", "could not build the answer");
  } else {
    mg_buf_puts(&b, "{\"ok\":true,\"result\":");
    mg_buf_append(&b, res.data, res.len);
    mg_buf_puts(&b, "}\n");
    reply(c, mg_buf_steal(&b));
  }
out:
  mg_json_free(req);
  mg_buf_free(&res);
  mg_buf_free(&b);
}

void mg_ctl_finish(struct mg_ctl_call *call, int rc, const char *result_json,
                   const char *message) {
  struct ctl_client *c = call->c;
  free(call);
  if (!c)
    return;
  c->call = NULL;
  if (rc || !result_json) {
    reply_error(c, "failed", message ? message : "the command failed");
    return;
  }
  struct mg_buf b;
  mg_buf_init(&b);
  mg_buf_puts(&b, "{\"ok\":true,\"result\":");
  mg_buf_puts(&b, result_json);
  mg_buf_puts(&b, "}\n");
  reply(c, mg_buf_steal(&b));
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  buf->base = malloc(suggested);
  buf->len = buf->base ? suggested : 0;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct ctl_client *c = s->data;
  if (n < 0) {
    client_close(c);
  } else if (n > 0) {
    mg_buf_append(&c->in, buf->base, (size_t)n);
    char *nl = c->in.data ? memchr(c->in.data, '\n', c->in.len) : NULL;
    if (c->in.oom || c->in.len > CTL_MAX_REQUEST)
      reply_error(c, "bad_request", "request larger than 64 KiB");
    else if (nl)
      handle_line(c, c->in.data, (size_t)(nl - c->in.data));
  }
  free(buf->base);
}

static void on_timeout(uv_timer_t *t) {
  struct ctl_client *c = t->data;
  mg_log_info("ctl", "closing a control client that sent nothing in time");
  client_close(c);
}

/* Root, our own user, or a member of the ctl group. */
static int peer_allowed(struct mg_ctl *ctl, int fd, uid_t *uid_out) {
  struct ucred cr;
  socklen_t len = sizeof(cr);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
    return 0;
  *uid_out = cr.uid;
  if (cr.uid == 0 || cr.uid == geteuid())
    return 1;
  if (!ctl->have_gid)
    return 0;
  if (cr.gid == ctl->gid)
    return 1;
  struct passwd pw, *pwp = NULL;
  char pwbuf[4096];
  if (getpwuid_r(cr.uid, &pw, pwbuf, sizeof(pwbuf), &pwp) || !pwp)
    return 0;
  gid_t groups[256];
  int ng = 256;
  if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &ng) < 0)
    return 0;
  for (int i = 0; i < ng; i++)
    if (groups[i] == ctl->gid)
      return 1;
  return 0;
}

static void on_connection(uv_stream_t *server, int status) {
  struct mg_ctl *ctl = server->data;
  struct ctl_client *c;
  uv_os_fd_t fd;
  uid_t uid = (uid_t)-1;

  if (status < 0 || ctl->stopped)
    return;
  c = calloc(1, sizeof(*c));
  if (!c)
    return;
  c->ctl = ctl;
  mg_buf_init(&c->in);
  uv_pipe_init(ctl->loop, &c->pipe, 0);
  uv_timer_init(ctl->loop, &c->timer);
  c->pipe.data = c->timer.data = c;
  c->handles = 2;
  c->next = ctl->clients;
  if (ctl->clients)
    ctl->clients->prev = c;
  ctl->clients = c;
  if (uv_accept(server, (uv_stream_t *)&c->pipe) ||
      uv_fileno((uv_handle_t *)&c->pipe, &fd)) {
    client_close(c);
    return;
  }
  if (!peer_allowed(ctl, fd, &uid)) {
    mg_log_warn("ctl", "refused a control client with uid %ld",
                (long)(int)uid);
    reply_error(c, "permission_denied",
                "only root, the daemon's user and the ctl_group may use this "
                "socket");
    return;
  }
  uv_timer_start(&c->timer, on_timeout, CTL_CLIENT_TIMEOUT_MS, 0);
  uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

/* A socket file left by a crash is removed; one that answers belongs to a
 * running daemon and is an error. */
static int clear_stale(const char *path, struct mg_err *err) {
  struct stat st;
  if (lstat(path, &st) != 0)
    return 0;
  if (!S_ISSOCK(st.st_mode))
    return mg_err_set(err, -EEXIST, "%s exists and is not a socket", path);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int live = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
  if (fd >= 0)
    close(fd);
  if (live)
    return mg_err_set(err, -EADDRINUSE,
                      "%s answers: another madoguchid is running", path);
  unlink(path);
  return 0;
}

int mg_ctl_start(uv_loop_t *loop, const char *path, const char *group,
                 mg_ctl_fn fn, void *ud, struct mg_ctl **out,
                 struct mg_err *err) {
  struct mg_ctl *ctl = NULL;
  int rc;

  *out = NULL;
  if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
    return mg_err_set(err, -ENAMETOOLONG, "%s: path too long for a socket", path);
  if ((rc = clear_stale(path, err)))
    return rc;
  ctl = calloc(1, sizeof(*ctl));
  if (!ctl || !(ctl->path = strdup(path))) {
    free(ctl);
    return mg_err_set(err, -ENOMEM, "out of memory");
  }
  ctl->loop = loop;
  ctl->fn = fn;
  ctl->ud = ud;
  if (group && *group) {
    struct group gr, *grp = NULL;
    char grbuf[4096];
    if (getgrnam_r(group, &gr, grbuf, sizeof(grbuf), &grp) == 0 && grp) {
      ctl->gid = grp->gr_gid;
      ctl->have_gid = 1;
    }
  }
  uv_pipe_init(loop, &ctl->listener, 0);
  ctl->listener.data = ctl;
  /* Created 0600 by the umask below, then opened up to 0660 + group. */
  mode_t old = umask(0177);
  rc = uv_pipe_bind(&ctl->listener, path);
  umask(old);
  if (!rc)
    rc = uv_listen((uv_stream_t *)&ctl->listener, 16, on_connection);
  if (rc) {
    mg_err_set(err, rc, "cannot listen on %s: %s", path, uv_strerror(rc));
    ctl->stopped = 1;
    uv_close((uv_handle_t *)&ctl->listener, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    free(ctl->path);
    free(ctl);
    return rc;
  }
  if (ctl->have_gid && chown(path, (uid_t)-1, ctl->gid) != 0)
    mg_log_info("ctl", "cannot give %s to group %s (%s); only root and our "
                "user can use it", path, group, strerror(errno));
  chmod(path, 0660);
  *out = ctl;
  return 0;
}

static void listener_closed(uv_handle_t *h) {
  struct mg_ctl *ctl = h->data;
  free(ctl->path);
  free(ctl);
}

void mg_ctl_stop(struct mg_ctl *ctl) {
  if (!ctl || ctl->stopped)
    return;
  ctl->stopped = 1;
  while (ctl->clients)
    client_close(ctl->clients);
  unlink(ctl->path);
  uv_close((uv_handle_t *)&ctl->listener, listener_closed);
}
