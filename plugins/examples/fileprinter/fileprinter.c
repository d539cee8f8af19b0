/*
 * fileprinter — a "printer" that writes each job into a directory: for
 * the demo, for development, and for technicians at a counter without a
 * printer.  It is also the reference for writing a plugin: it touches
 * nothing of the daemon but struct mg_host and does its blocking file I/O
 * on a worker thread through host->queue_work.
 *
 *   [printer "counter-1-printer"]
 *   plugin = fileprinter
 *   counter = counter-1
 *   dir = /var/lib/madoguchi/printed
 *   delay = 2s
 *
 * Commands (args are a JSON object):
 *   print      {"path": "/abs/doc.pdf", "title": "..."} -> PENDING, then
 *              {"job": N, "file": "/dir/NAME"}; `title` (optional) goes
 *              into the NAME.meta.json sidecar only.
 *   test-page  no args -> PENDING, then {"job": N, "file": ...}: a short
 *              text file naming this printer.
 * Events: print.job {"job": N, "state": "processing"|"completed"|"aborted"}.
 *
 * A job is written as .NAME.part and renamed when complete, so whoever
 * watches the directory sees only whole files.  Paths and titles may carry
 * residents' data: they are never logged.
 */
#include <madoguchi/plugin.h>

#include "mgp.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define JSON_DEPTH_MAX 32

struct fp;

struct job {
  struct fp *fp;
  struct job *next; /* fp->jobs */
  uint64_t no;
  uint64_t req_id;
  char *src;   /* owned: document to copy; NULL for a test page */
  char *text;  /* owned: test page content */
  char *title; /* owned, may be NULL */
  char *dst;   /* owned: final path */
  char *meta;  /* owned: sidecar path when title is set */
  int64_t max; /* max_job_size, copied for the worker */
  struct mg_timer *delay;
  /* written by the worker, read in done() */
  int err;         /* errno, 0 when fine */
  const char *why; /* static: what failed */
  long long bytes;
  atomic_int cancel; /* set by stop(): the worker drops its output */
  int answered;      /* stop() already completed the request */
};

struct fp {
  /* config, stored by the host */
  char *dir;
  int64_t delay_ms;
  int64_t max_job_size;
  /* runtime */
  const struct mg_host *host;
  struct mg_instance *inst;
  uint64_t jobs; /* jobs accepted; numbers the next */
  size_t active;
  struct job *list; /* jobs not finished */
};

/* ---------------------------------------------------------------------- */
/* Worker side: no host services here                                      */

static void fail(struct job *j, int err, const char *why) {
  if (!j->err) {
    j->err = err ? err : EIO;
    j->why = why;
  }
}

/* The sidecar with the title; 1 when a file was created (to undo). */
static int write_meta(struct job *j) {
  struct mgp_sb m = {0};
  int fd = -1;
  mgp_sb_printf(&m, "{\"job\":%llu,\"title\":", (unsigned long long)j->no);
  mgp_sb_jstr(&m, j->title);
  mgp_sb_printf(&m, ",\"bytes\":%lld}\n", j->bytes);
  if (m.oom)
    fail(j, ENOMEM, "out of memory");
  else if ((fd = open(j->meta,
                      O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                      0640)) < 0)
    fail(j, errno, "cannot write the job's metadata");
  else if (mgp_write_all(fd, m.p, m.n) != 0)
    fail(j, errno, "cannot write the job's metadata");
  if (fd >= 0 && close(fd) != 0)
    fail(j, errno, "cannot write the job's metadata");
  free(m.p);
  return fd >= 0;
}

/* Write src (or the text) to a .part file beside dst, then rename. */
static void job_work(void *ud) {
  struct job *j = ud;
  char buf[65536], *part = NULL;
  int in = -1, out = -1, made_meta = 0;
  struct stat st;
  const char *slash = strrchr(j->dst, '/');

  if (asprintf(&part, "%.*s/.%s.part", (int)(slash - j->dst), j->dst,
               slash + 1) < 0) {
    part = NULL;
    fail(j, ENOMEM, "out of memory");
    goto out;
  }
  if (j->src) {
    /* O_NONBLOCK: a FIFO must not hang the worker; it is refused below. */
    if ((in = open(j->src, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0) {
      fail(j, errno, "cannot open the document");
      goto out;
    }
    if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
      fail(j, EINVAL, "the document is not a regular file");
      goto out;
    }
    if (st.st_size > j->max) {
      fail(j, EFBIG, "the document is larger than max_job_size");
      goto out;
    }
  }
  out = open(part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (out < 0) {
    fail(j, errno, "cannot create the job file");
    goto out;
  }
  if (!j->src) {
    if (mgp_write_all(out, j->text, strlen(j->text)) != 0)
      fail(j, errno, "cannot write the job file");
    j->bytes = (long long)strlen(j->text);
  }
  while (j->src && !j->err) {
    ssize_t n = read(in, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      fail(j, errno, "cannot read the document");
    else if (n == 0)
      break;
    else if ((j->bytes += n) > j->max) /* it grew while we copied */
      fail(j, EFBIG, "the document is larger than max_job_size");
    else if (mgp_write_all(out, buf, (size_t)n) != 0)
      fail(j, errno, "cannot write the job file");
  }
  if (close(out) != 0)
    fail(j, errno, "cannot write the job file");
  out = -1;
  if (atomic_load(&j->cancel))
    fail(j, ECANCELED, "the printer stopped");
  /* Names carry instance, time and job number; never replace a file. */
  if (!j->err && access(j->dst, F_OK) == 0)
    fail(j, EEXIST, "a job file of that name already exists");
  if (!j->err && j->meta)
    made_meta = write_meta(j);
  if (!j->err && rename(part, j->dst) != 0)
    fail(j, errno, "cannot rename the job file");
  if (j->err && made_meta)
    unlink(j->meta);
out:
  if (in >= 0)
    close(in);
  if (out >= 0)
    close(out);
  if (j->err && part)
    unlink(part);
  free(part);
}

/* ---------------------------------------------------------------------- */
/* Loop side                                                               */

static void job_event(struct job *j, const char *state) {
  char data[96];
  snprintf(data, sizeof(data), "{\"job\":%llu,\"state\":\"%s\"}",
           (unsigned long long)j->no, state);
  j->fp->host->emit(j->fp->inst, "print.job", data);
}

/* Unlink from fp->list and free. */
static void job_free(struct job *j) {
  for (struct job **pp = &j->fp->list; *pp; pp = &(*pp)->next) {
    if (*pp == j) {
      *pp = j->next;
      j->fp->active--;
      break;
    }
  }
  free(j->src);
  free(j->text);
  free(j->title);
  free(j->dst);
  free(j->meta);
  free(j);
}

/* Abort a job with an error result for the caller. */
static void job_abort(struct job *j, int status, const char *why, int err) {
  struct mgp_sb r = {0};
  struct fp *fp = j->fp;
  mgp_sb_printf(&r, "{\"job\":%llu,\"error\":", (unsigned long long)j->no);
  mgp_sb_jstr(&r, why);
  if (err) {
    mgp_sb_add(&r, ",\"detail\":", 10);
    mgp_sb_jstr(&r, strerror(err));
  }
  mgp_sb_add(&r, "}", 1);
  job_event(j, "aborted");
  fp->host->complete(fp->inst, j->req_id, status, r.oom ? NULL : r.p);
  free(r.p);
}

static void job_done(void *ud, int status) {
  struct job *j = ud;
  struct fp *fp = j->fp;
  struct mgp_sb r = {0};
  if (j->answered) { /* stop() already told the caller */
    job_free(j);
    return;
  }
  if (status != 0) {
    job_abort(j, MG_PLUGIN_RETRY, "the daemon is stopping", 0);
  } else if (j->err) {
    fp->host->log(fp->inst, MG_PLUGIN_LOG_WARNING, "job %llu aborted: %s",
                  (unsigned long long)j->no, j->why);
    job_abort(j,
              j->err == ENOENT || j->err == EFBIG || j->err == EINVAL
                  ? MG_PLUGIN_FATAL
                  : MG_PLUGIN_RETRY,
              j->why, j->err);
  } else {
    mgp_sb_printf(&r, "{\"job\":%llu,\"file\":", (unsigned long long)j->no);
    mgp_sb_jstr(&r, j->dst);
    mgp_sb_printf(&r, ",\"bytes\":%lld}", j->bytes);
    fp->host->log(fp->inst, MG_PLUGIN_LOG_INFO, "job %llu printed (%lld bytes)",
                  (unsigned long long)j->no, j->bytes);
    job_event(j, "completed");
    fp->host->complete(fp->inst, j->req_id,
                       r.oom ? MG_PLUGIN_RETRY : MG_PLUGIN_OK,
                       r.oom ? NULL : r.p);
    free(r.p);
  }
  job_free(j);
}

static int job_queue(struct job *j) {
  return j->fp->host->queue_work(j->fp->inst, job_work, job_done, j);
}

static void delay_done(void *ud) {
  struct job *j = ud;
  j->fp->host->timer_stop(j->delay);
  j->delay = NULL;
  if (job_queue(j) != 0) {
    job_abort(j, MG_PLUGIN_RETRY, "cannot queue the job", 0);
    job_free(j);
  }
}

/* A fresh job named <instance>-<UTC time>-<N><ext> in dir. */
static struct job *job_new(struct fp *fp, uint64_t req_id, const char *ext) {
  struct job *j = calloc(1, sizeof(*j));
  struct timespec ts;
  struct tm tm;
  char when[32];
  if (!j)
    return NULL;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &tm);
  j->fp = fp;
  j->no = fp->jobs + 1;
  j->req_id = req_id;
  j->max = fp->max_job_size;
  atomic_init(&j->cancel, 0);
  if (asprintf(&j->dst, "%s/%s-%s-%06llu%s", fp->dir,
               fp->host->instance_id(fp->inst), when, (unsigned long long)j->no,
               ext) < 0) {
    free(j);
    return NULL;
  }
  return j;
}

/* Keep a short alphanumeric extension of the document (".pdf"). */
static void doc_ext(const char *path, char *ext, size_t len) {
  const char *base = strrchr(path, '/'), *dot;
  size_t n;
  ext[0] = '\0';
  dot = strrchr(base ? base : path, '.');
  if (!dot || (n = strlen(dot)) < 2 || n > 9 || n >= len)
    return;
  for (size_t i = 1; i < n; i++)
    if (!((dot[i] >= 'a' && dot[i] <= 'z') ||
          (dot[i] >= 'A' && dot[i] <= 'Z') || (dot[i] >= '0' && dot[i] <= '9')))
      return;
  memcpy(ext, dot, n + 1);
}

/* Answer a bad request with a reason; complete() may come before PENDING
 * is returned. */
static int reject(struct fp *fp, uint64_t req_id, const char *why) {
  struct mgp_sb r = {0};
  mgp_sb_add(&r, "{\"error\":", 9);
  mgp_sb_jstr(&r, why);
  mgp_sb_add(&r, "}", 1);
  fp->host->complete(fp->inst, req_id, MG_PLUGIN_FATAL, r.oom ? NULL : r.p);
  free(r.p);
  return MG_PLUGIN_PENDING;
}

static int fp_command(void *ctx, uint64_t req_id, const char *op,
                      const char *args) {
  struct fp *fp = ctx;
  struct job *j = NULL;
  char *path = NULL, *title = NULL, ext[16] = "";
  int rc = MG_PLUGIN_PENDING;

  if (strcmp(op, "print") == 0) {
    if (mgp_json_get_str(args, "path", &path) != 0 || path[0] != '/') {
      rc = reject(fp, req_id, "print needs {\"path\": \"/absolute/file\"}");
      goto out;
    }
    if (mgp_json_get_str(args, "title", &title) < 0) {
      rc = reject(fp, req_id, "title must be a string");
      goto out;
    }
    doc_ext(path, ext, sizeof(ext));
  } else if (strcmp(op, "test-page") == 0) {
    snprintf(ext, sizeof(ext), "-test-page.txt");
  } else {
    fp->host->log(fp->inst, MG_PLUGIN_LOG_WARNING, "unknown command");
    return MG_PLUGIN_FATAL;
  }
  if (!(j = job_new(fp, req_id, ext))) {
    rc = MG_PLUGIN_RETRY;
    goto out;
  }
  if (path) {
    j->src = path;
    path = NULL;
  } else if (asprintf(&j->text,
                      "madoguchi fileprinter test page\nprinter: %s\n"
                      "directory: %s\njob: %llu\n",
                      fp->host->instance_id(fp->inst), fp->dir,
                      (unsigned long long)j->no) < 0) {
    j->text = NULL;
    rc = MG_PLUGIN_RETRY;
    goto out;
  }
  if (title) {
    j->title = title;
    title = NULL;
    if (asprintf(&j->meta, "%s.meta.json", j->dst) < 0) {
      j->meta = NULL;
      rc = MG_PLUGIN_RETRY;
      goto out;
    }
  }
  j->next = fp->list;
  fp->list = j;
  fp->active++;
  fp->jobs++;
  job_event(j, "processing");
  if (fp->delay_ms > 0 ? fp->host->timer_start(fp->inst, (uint64_t)fp->delay_ms,
                                               0, delay_done, j, &j->delay)
                       : job_queue(j)) {
    job_event(j, "aborted");
    job_free(j);
    rc = MG_PLUGIN_RETRY;
  }
  j = NULL; /* listed: job_done, delay_done or stop frees it */
out:
  if (j) {
    free(j->src);
    free(j->text);
    free(j->title);
    free(j->dst);
    free(j->meta);
    free(j);
  }
  free(path);
  free(title);
  return rc;
}

static int fp_init(void *ctx, const struct mg_host *host,
                   struct mg_instance *inst) {
  struct fp *fp = ctx;
  /* Everything used below exists since ABI 1.0. */
  if (host->abi_major != MG_PLUGIN_ABI_MAJOR ||
      host->size < offsetof(struct mg_host, instance_id) + sizeof(void *))
    return MG_PLUGIN_FATAL;
  fp->host = host;
  fp->inst = inst;
  return MG_PLUGIN_OK;
}

static int fp_start(void *ctx) {
  struct fp *fp = ctx;
  struct stat st;
  if (stat(fp->dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
      access(fp->dir, W_OK | X_OK) != 0) {
    fp->host->log(fp->inst, MG_PLUGIN_LOG_ERR,
                  "dir %s is not a writable directory", fp->dir);
    return MG_PLUGIN_FATAL;
  }
  return MG_PLUGIN_OK;
}

/* Jobs waiting on their delay end here; jobs in the worker are told to
 * drop their output and are freed by job_done. */
static void fp_stop(void *ctx) {
  struct fp *fp = ctx;
  struct job *j = fp->list, *next;
  for (; j; j = next) {
    next = j->next;
    if (j->answered)
      continue;
    job_abort(j, MG_PLUGIN_RETRY, "the printer stopped", 0);
    if (j->delay) {
      fp->host->timer_stop(j->delay);
      job_free(j);
    } else {
      atomic_store(&j->cancel, 1);
      j->answered = 1;
    }
  }
}

static void fp_fini(void *ctx) {
  struct fp *fp = ctx;
  while (fp->list) /* none: the host runs fini after every done() */
    job_free(fp->list);
}

static int fp_describe(void *ctx, char *buf, size_t len) {
  struct fp *fp = ctx;
  struct mgp_sb b = {0};
  mgp_sb_add(&b, "{\"dir\":", 7);
  mgp_sb_jstr(&b, fp->dir);
  mgp_sb_printf(&b, ",\"jobs\":%llu,\"active\":%zu}", (unsigned long long)fp->jobs,
            fp->active);
  return mgp_sb_take(&b, buf, len);
}

static const struct mg_config_item config[] = {
    {MG_CFG_STR, "dir", NULL, offsetof(struct fp, dir), MG_CFG_REQUIRED, 0, 0,
     NULL, mgp_check_abs,
     "Directory the jobs are written into (absolute path, must exist and be "
     "writable by the daemon)."},
    {MG_CFG_DURATION, "delay", "0ms", offsetof(struct fp, delay_ms), 0, 0,
     600000, NULL, NULL, "Simulated print time of each job."},
    {MG_CFG_SIZE, "max_job_size", "64M", offsetof(struct fp, max_job_size), 0,
     1, 4LL << 30, NULL, NULL, "Largest document accepted."},
    {0, NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL}};

static const struct mg_plugin plugin = {
    .abi_major = MG_PLUGIN_ABI_MAJOR,
    .abi_minor = MG_PLUGIN_ABI_MINOR,
    .size = sizeof(struct mg_plugin),
    .name = "fileprinter",
    .version = "1.0.0",
    .kind = MG_PLUGIN_KIND_PRINTER,
    .description = "Writes print jobs into a directory (demo, no printer)",
    .config = config,
    .ctx_size = sizeof(struct fp),
    .init = fp_init,
    .start = fp_start,
    .command = fp_command,
    .stop = fp_stop,
    .fini = fp_fini,
    .describe = fp_describe,
};

MG_PLUGIN_EXPORT const struct mg_plugin *mg_plugin_entry_v1(void);
MG_PLUGIN_EXPORT const struct mg_plugin *mg_plugin_entry_v1(void) {
  return &plugin;
}
