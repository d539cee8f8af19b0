/*
 * pack_service.c — the active pack, pulls and rollbacks off the loop.
 *
 * One job (pull or rollback) runs at a time on a libuv worker; a pull
 * asked for while one runs joins it.  The worker does all git and disk
 * work (sync/packrepo.c) including validation (core/pack.c) and reads the
 * release list back; the loop only swaps in the result, logs, and tells
 * the tablets.
 */
#include "pack_service.h"
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pack.h"
#include "packrepo.h"
#include "sshsig.h"

enum { JOB_PULL, JOB_ROLLBACK, JOB_LOAD };

/* A loaded release: the active one, and older ones visits still use. */
struct mg_pack_use {
  struct mg_pack_use *next;
  char commit[41];
  char dir[4096]; /* the release folder (templates, fonts) */
  struct mg_pack *model;
  int refs; /* visits, plus one while it is the active release */
};

struct waiter {
  mg_pack_done_fn cb;
  void *ud;
  struct waiter *next;
};

struct job {
  uv_work_t req;
  struct mg_pack_service *s;
  int kind;
  /* outputs of the worker */
  int rc;
  int changed;
  struct mg_err err;
  int have_active;
  struct mg_pack_release active;
  struct mg_pack_release *prev;
  size_t n_prev;
  struct mg_pack *model;  /* the active release, loaded by the worker */
  char **in_use;          /* commits not to prune (NULL-terminated) */
};

struct mg_pack_service {
  uv_loop_t *loop;
  uv_timer_t timer;
  int timer_open;
  int stopping;
  int free_when_idle;
  char *dir, *url, *branch, *signers, *ssh_key, *ssh_host_key, *ca_file;
  int keep;
  int64_t interval_ms;
  mg_pack_event_fn event;
  void *event_ud;
  struct job *running;
  struct waiter *waiters;
  /* what is active now, and what is kept */
  int have_active;
  struct mg_pack_release active;
  struct mg_pack_release *prev;
  size_t n_prev;
  struct mg_pack_use *uses; /* loaded releases */
  struct mg_pack_use *current;
  /* the last pull */
  time_t last_at;
  int last_rc;
  char last_msg[MG_ERR_MSG_MAX];
};


static void release_json(const struct mg_pack_release *r, struct mg_jw *w) {
  char when[32];
  mg_store_time(r->activated_at, when);
  mg_jw_obj(w);
  mg_jw_kstr(w, "commit", r->commit);
  mg_jw_kstr(w, "signer", r->signer);
  mg_jw_kstr(w, "fingerprint", r->fingerprint);
  mg_jw_kstr(w, "activated_at", when);
  mg_jw_obj_end(w);
}

void mg_pack_service_json(const struct mg_pack_service *s, int full,
                          struct mg_jw *w) {
  mg_jw_obj(w);
  mg_jw_kstr(w, "state", s && s->have_active ? "active" : "none");
  if (s && s->have_active) {
    char when[32];
    mg_store_time(s->active.activated_at, when);
    mg_jw_kstr(w, "commit", s->active.commit);
    mg_jw_kstr(w, "signer", s->active.signer);
    mg_jw_kstr(w, "fingerprint", s->active.fingerprint);
    mg_jw_kstr(w, "activated_at", when);
  }
  if (s && full) {
    mg_jw_key(w, "source");
    mg_jw_obj(w);
    mg_jw_kstr(w, "url", s->url && *s->url ? s->url : NULL);
    mg_jw_kstr(w, "branch", s->branch);
    mg_jw_kint(w, "interval_s", s->interval_ms / 1000);
    mg_jw_obj_end(w);
    mg_jw_key(w, "last_pull");
    if (s->last_at) {
      char when[32];
      mg_store_time(s->last_at, when);
      mg_jw_obj(w);
      mg_jw_kstr(w, "at", when);
      mg_jw_kbool(w, "ok", s->last_rc == 0);
      mg_jw_kstr(w, "message", s->last_msg);
      mg_jw_obj_end(w);
    } else {
      mg_jw_null(w);
    }
    mg_jw_key(w, "previous");
    mg_jw_arr(w);
    for (size_t i = 0; i < s->n_prev; i++)
      release_json(&s->prev[i], w);
    mg_jw_arr_end(w);
  }
  mg_jw_obj_end(w);
}

/* ---------------------------------------------------------------------- */
/* Worker side                                                             */

/* The validator, as packrepo's check before a tree may become active. */
static int validate(void *ud, const char *tree, struct mg_err *err) {
  struct mg_pack_report rep;
  int rc;
  (void)ud;
  mg_pack_report_init(&rep);
  rc = mg_pack_verify(tree, &rep);
  if (rc) {
    for (size_t i = 0; i < rep.n && i < 20; i++)
      mg_log_warn("pack", "invalid: %s:%d: %s", rep.v[i].file, rep.v[i].line,
                  rep.v[i].msg);
    if (rep.n)
      mg_err_set(err, -EINVAL, "the pack has %zu problem(s); first: %s:%d: %s",
                 rep.n + rep.dropped, rep.v[0].file, rep.v[0].line,
                 rep.v[0].msg);
    else
      mg_err_set(err, -EINVAL, "the pack could not be read");
    rc = -EINVAL;
  }
  mg_pack_report_free(&rep);
  return rc;
}

static void job_run(uv_work_t *req) {
  struct job *j = req->data;
  struct mg_pack_service *s = j->s;
  struct mg_signers *signers = NULL;
  struct mg_err serr = {{0}};

  if (j->kind == JOB_PULL) {
    j->rc = mg_signers_load(s->signers, &signers, &j->err);
    if (!j->rc) {
      struct mg_packrepo_opts o = {s->dir,    s->url,   s->branch,
                                   signers,   s->keep,  validate,
                                   NULL,      (const char *const *)j->in_use,
                                   s->ssh_key, s->ssh_host_key, s->ca_file};
      j->rc = mg_packrepo_pull(&o, NULL, &j->changed, &j->err);
    }
  } else if (j->kind == JOB_ROLLBACK) {
    j->rc = mg_packrepo_rollback(s->dir, NULL, &j->err);
    j->changed = j->rc == 0;
  } else {
    j->changed = 1; /* load what is active (at start) */
  }
  mg_signers_free(signers);
  /* Read back what is active and kept, whatever happened. */
  j->have_active =
      mg_packrepo_status(s->dir, &j->active, &j->prev, &j->n_prev, &serr) == 0;
  /* A new active release is loaded here, off the loop.  It was validated
   * before activation; a failure now means its files were damaged. */
  if (j->have_active && j->changed && !j->rc) {
    char tree[4096];
    struct mg_pack_report rep;
    mg_pack_report_init(&rep);
    if (mg_packrepo_current_dir(s->dir, tree, sizeof(tree)) != 0 ||
        mg_pack_load(tree, &j->model, &rep) != 0)
      mg_log_err("pack", "the active release %.12s cannot be loaded (%zu "
                 "problem(s)): new visits cannot start",
                 j->active.commit, rep.n);
    mg_pack_report_free(&rep);
  }
}

/* ---------------------------------------------------------------------- */
/* Loop side                                                               */

static void schedule(struct mg_pack_service *s, uint64_t ms);

static void use_unref(struct mg_pack_service *s, struct mg_pack_use *u) {
  if (--u->refs > 0)
    return;
  for (struct mg_pack_use **pp = &s->uses; *pp; pp = &(*pp)->next)
    if (*pp == u) {
      *pp = u->next;
      break;
    }
  mg_pack_free(u->model);
  free(u);
}

/* A newly active release becomes what new visits get; the previous one
 * lives on while visits hold it. */
static void set_current(struct mg_pack_service *s, const char *commit,
                        struct mg_pack *model) {
  struct mg_pack_use *u = calloc(1, sizeof(*u));
  if (!u) {
    mg_pack_free(model);
    return;
  }
  snprintf(u->commit, sizeof(u->commit), "%s", commit);
  snprintf(u->dir, sizeof(u->dir), "%s/releases/%s", s->dir, commit);
  u->model = model;
  u->refs = 1;
  u->next = s->uses;
  s->uses = u;
  if (s->current)
    use_unref(s, s->current);
  s->current = u;
}

struct mg_pack_use *mg_pack_service_acquire(struct mg_pack_service *s) {
  if (!s || !s->current)
    return NULL;
  s->current->refs++;
  return s->current;
}

struct mg_pack_use *mg_pack_service_acquire_commit(struct mg_pack_service *s,
                                                   const char *commit) {
  char tree[4096];
  struct mg_pack_report rep;
  struct mg_pack *model = NULL;
  struct mg_pack_use *u;
  if (!s || strlen(commit) != 40 || strspn(commit, "0123456789abcdef") != 40)
    return NULL;
  for (u = s->uses; u; u = u->next)
    if (strcmp(u->commit, commit) == 0) {
      u->refs++;
      return u;
    }
  /* An older release a case started with before a restart: load it once
   * (blocking, tens of ms) while its folder is still kept. */
  if (snprintf(tree, sizeof(tree), "%s/releases/%s", s->dir, commit) >=
      (int)sizeof(tree))
    return NULL;
  mg_pack_report_init(&rep);
  int rc = mg_pack_load(tree, &model, &rep);
  mg_pack_report_free(&rep);
  if (rc != 0 || !(u = calloc(1, sizeof(*u)))) {
    mg_pack_free(model);
    return NULL;
  }
  snprintf(u->commit, sizeof(u->commit), "%s", commit);
  snprintf(u->dir, sizeof(u->dir), "%s", tree);
  u->model = model;
  u->refs = 1;
  u->next = s->uses;
  s->uses = u;
  return u;
}

void mg_pack_service_release(struct mg_pack_service *s, struct mg_pack_use *u) {
  if (s && u)
    use_unref(s, u);
}

const struct mg_pack *mg_pack_use_model(const struct mg_pack_use *u) {
  return u->model;
}

const char *mg_pack_use_commit(const struct mg_pack_use *u) { return u->commit; }

const char *mg_pack_use_dir(const struct mg_pack_use *u) { return u->dir; }

static void free_in_use(char **v) {
  for (size_t i = 0; v && v[i]; i++)
    free(v[i]);
  free(v);
}

/* The commits visits still hold, copied for the worker. */
static char **in_use_now(const struct mg_pack_service *s) {
  size_t n = 0, i = 0;
  for (const struct mg_pack_use *u = s->uses; u; u = u->next)
    n++;
  char **v = calloc(n + 1, sizeof(*v));
  for (const struct mg_pack_use *u = s->uses; v && u; u = u->next)
    if (!(v[i++] = strdup(u->commit))) {
      free_in_use(v);
      return NULL;
    }
  return v;
}

static void job_done(uv_work_t *req, int status) {
  struct job *j = req->data;
  struct mg_pack_service *s = j->s;
  struct waiter *list = s->waiters;
  int rc = status ? -ECANCELED : j->rc;

  s->waiters = NULL;
  s->running = NULL;
  if (!status) {
    free(s->prev);
    s->have_active = j->have_active;
    s->active = j->active;
    s->prev = j->prev;
    s->n_prev = j->n_prev;
    j->prev = NULL;
    if (j->model)
      set_current(s, j->active.commit, j->model);
    j->model = NULL;
  }
  if (j->kind == JOB_PULL) {
    s->last_at = time(NULL);
    s->last_rc = rc;
    snprintf(s->last_msg, sizeof(s->last_msg), "%s",
             rc ? (j->err.msg[0] ? j->err.msg : strerror(-rc))
                : (j->changed ? "activated" : "up to date"));
  }
  if (rc)
    mg_log_warn("pack", "%s failed, the active pack stays: %s",
                j->kind == JOB_PULL ? "pull" : "rollback",
                j->err.msg[0] ? j->err.msg : strerror(-rc));
  if (!rc && j->changed && s->have_active && j->kind != JOB_LOAD) {
    char json[512];
    mg_log_notice("pack", "%s %.12s signed by %s",
                  j->kind == JOB_PULL ? "activated" : "rolled back to",
                  s->active.commit, s->active.signer);
    snprintf(json, sizeof(json), "{\"commit\":\"%s\",\"rollback\":%s}",
             s->active.commit, j->kind == JOB_ROLLBACK ? "true" : "false");
    if (s->event && !s->stopping)
      s->event(s->event_ud, "pack.activated", json);
  }
  { /* the answer says whether this job changed the active pack */
    struct mg_buf b;
    struct mg_jw w;
    mg_buf_init(&b);
    mg_jw_init(&w, &b);
    mg_jw_obj(&w);
    mg_jw_kbool(&w, "changed", j->changed);
    mg_jw_key(&w, "pack");
    mg_pack_service_json(s, 0, &w);
    mg_jw_obj_end(&w);
    while (list) {
      struct waiter *n = list->next;
      list->cb(list->ud, rc,
               rc ? (j->err.msg[0] ? j->err.msg : strerror(-rc))
                  : (b.oom ? "{}" : b.data));
      free(list);
      list = n;
    }
    mg_buf_free(&b);
  }
  mg_pack_free(j->model);
  free_in_use(j->in_use);
  free(j->prev);
  free(j);
  if (s->free_when_idle) {
    mg_pack_service_free(s);
    return;
  }
  if (!s->stopping && *s->url && s->interval_ms > 0)
    schedule(s, (uint64_t)s->interval_ms);
}

static int start_job(struct mg_pack_service *s, int kind, mg_pack_done_fn cb,
                     void *ud) {
  struct waiter *wt = NULL;
  if (s->stopping)
    return -ESHUTDOWN;
  if (s->running && s->running->kind != kind)
    return -EBUSY;
  if (cb) {
    if (!(wt = calloc(1, sizeof(*wt))))
      return -ENOMEM;
    wt->cb = cb;
    wt->ud = ud;
    wt->next = s->waiters;
    s->waiters = wt;
  }
  if (s->running)
    return 0; /* joined */
  struct job *j = calloc(1, sizeof(*j));
  if (!j) {
    if (wt) {
      s->waiters = wt->next;
      free(wt);
    }
    return -ENOMEM;
  }
  j->s = s;
  j->kind = kind;
  j->req.data = j;
  j->in_use = in_use_now(s);
  if (uv_queue_work(s->loop, &j->req, job_run, job_done)) {
    free_in_use(j->in_use);
    free(j);
    if (wt) {
      s->waiters = wt->next;
      free(wt);
    }
    return -EIO;
  }
  s->running = j;
  return 0;
}

static void on_timer(uv_timer_t *t) {
  struct mg_pack_service *s = t->data;
  if (start_job(s, JOB_PULL, NULL, NULL) == -EBUSY)
    schedule(s, 60000); /* a rollback runs: try again in a minute */
}

/* Next pull in about `ms`, with ±10 % jitter so that the boxes of a city
 * do not all knock on the git server at the same second. */
static void schedule(struct mg_pack_service *s, uint64_t ms) {
  if (!s->timer_open || s->stopping)
    return;
  uint64_t spread = ms / 10;
  uint64_t jitter = spread ? (uint64_t)rand() % (2 * spread + 1) : 0;
  uv_timer_start(&s->timer, on_timer, ms - spread + jitter, 0);
}

int mg_pack_service_pull(struct mg_pack_service *s, mg_pack_done_fn cb,
                         void *ud) {
  if (!s->url || !*s->url)
    return -ENOENT;
  return start_job(s, JOB_PULL, cb, ud);
}

int mg_pack_service_rollback(struct mg_pack_service *s, mg_pack_done_fn cb,
                             void *ud) {
  return start_job(s, JOB_ROLLBACK, cb, ud);
}

int mg_pack_service_start(uv_loop_t *loop, const struct mg_config *cfg,
                          mg_pack_event_fn event, void *event_ud,
                          struct mg_pack_service **out, struct mg_err *err) {
  struct mg_pack_service *s = calloc(1, sizeof(*s));
  struct mg_err serr = {{0}};

  *out = NULL;
  if (!s)
    return mg_err_set(err, -ENOMEM, "out of memory");
  s->loop = loop;
  s->event = event;
  s->event_ud = event_ud;
  s->keep = (int)cfg->pack_keep;
  s->interval_ms = cfg->pack_interval;
  if (asprintf(&s->dir, "%s/packs", cfg->state_dir) < 0)
    s->dir = NULL;
  s->url = strdup(cfg->pack_url ? cfg->pack_url : "");
  s->branch = strdup(cfg->pack_branch ? cfg->pack_branch : "main");
  s->signers = strdup(cfg->pack_signers ? cfg->pack_signers : "");
  s->ssh_key = strdup(cfg->pack_ssh_key ? cfg->pack_ssh_key : "");
  s->ssh_host_key = strdup(cfg->pack_ssh_host_key ? cfg->pack_ssh_host_key : "");
  s->ca_file = strdup(cfg->pack_ca_file ? cfg->pack_ca_file : "");
  if (!s->dir || !s->url || !s->branch || !s->signers || !s->ssh_key ||
      !s->ssh_host_key || !s->ca_file) {
    mg_pack_service_free(s);
    return mg_err_set(err, -ENOMEM, "out of memory");
  }
  s->have_active =
      mg_packrepo_status(s->dir, &s->active, &s->prev, &s->n_prev, &serr) == 0;
  if (s->have_active)
    mg_log_info("pack", "active pack %.12s signed by %s", s->active.commit,
                s->active.signer);
  uv_timer_init(loop, &s->timer);
  s->timer.data = s;
  s->timer_open = 1;
  if (*s->url && s->interval_ms > 0)
    schedule(s, 3000); /* soon after start, then every interval */
  if (s->have_active)
    start_job(s, JOB_LOAD, NULL, NULL); /* the model, off the loop */
  *out = s;
  return 0;
}

static void timer_closed(uv_handle_t *h) {
  struct mg_pack_service *s = h->data;
  s->timer_open = 0;
}

void mg_pack_service_stop(struct mg_pack_service *s) {
  if (!s || s->stopping)
    return;
  s->stopping = 1;
  if (s->timer_open) {
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, timer_closed);
  }
  if (s->running)
    uv_cancel((uv_req_t *)&s->running->req); /* EBUSY once it runs */
}

void mg_pack_service_free(struct mg_pack_service *s) {
  if (!s)
    return;
  if (s->running) { /* the worker still uses s: free when it is done */
    s->free_when_idle = 1;
    return;
  }
  while (s->uses) { /* visits are gone by now */
    struct mg_pack_use *u = s->uses;
    s->uses = u->next;
    mg_pack_free(u->model);
    free(u);
  }
  free(s->dir);
  free(s->url);
  free(s->branch);
  free(s->signers);
  free(s->ssh_key);
  free(s->ssh_host_key);
  free(s->ca_file);
  free(s->prev);
  free(s);
}
