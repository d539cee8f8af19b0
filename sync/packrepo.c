/*
 * packrepo.c — procedure packs from git; packrepo.h is the contract and
 * describes the layout under `dir`.
 *
 * Crash safety rests on three rules:
 *   - a release folder gets its final name only when complete (checkout
 *     into releases/.staging-*, validate, fsync, rename);
 *   - every small file (.json, state.json) is written to NAME.tmp, fsynced
 *     and renamed over NAME;
 *   - `current` only ever changes by rename(2) of a fresh symlink.
 * So `current` always names a complete release, and anything else found
 * lying around (staging folders, .tmp files, folders without a readable
 * record, stale libgit2 lock files) is debris of an interrupted run that
 * the next pull removes before it starts.
 *
 * Release order is a sequence number kept in each record next to
 * activated_at: the box's clock may jump, and several activations can
 * fall in one second.
 */
#include "packrepo.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>
#include <openssl/evp.h>

#include "buf.h"
#include "json.h"
#include "log.h"

#define HEX_LEN 40
#define JSON_MAX (64 * 1024)
#define WALK_MAX_DEPTH 64
/* Every path is dir plus a short suffix; the entry points refuse a longer
 * dir, so pathf() cannot truncate. */
#define DIR_MAX (PATH_MAX - 128)

/* A release as recorded in releases/<commit>.json. */
struct rel {
  struct mg_pack_release r;
  int64_t seq; /* activation order, 0 when unknown */
};

static pthread_once_t git_once = PTHREAD_ONCE_INIT;

static void git_init_once(void) { git_libgit2_init(); }

/* ---- small helpers ------------------------------------------------------ */

__attribute__((format(printf, 2, 3))) static void pathf(char *out,
                                                        const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(out, PATH_MAX, fmt, ap);
  va_end(ap);
}

static int check_dir(const char *dir, struct mg_err *err) {
  if (!dir || !dir[0])
    return mg_err_set(err, -EINVAL, "no pack folder given");
  if (strlen(dir) > DIR_MAX)
    return mg_err_set(err, -ENAMETOOLONG, "pack folder path is too long");
  return 0;
}

static int is_hex40(const char *s, size_t len) {
  if (len != HEX_LEN)
    return 0;
  for (size_t i = 0; i < len; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return 1;
}

static int is_dir(const char *path) { /* never through a symlink */
  struct stat st;
  return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int git_fail(struct mg_err *err, int code, const char *what) {
  const git_error *e = git_error_last();
  return mg_err_set(err, code, "%s: %s", what,
                    e && e->message ? e->message : "unknown libgit2 error");
}

/* The URL without user:password@, so that a token never reaches a log. */
static void url_redact(const char *url, char *out, size_t len) {
  const char *scheme = strstr(url, "://");
  const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
  const char *slash = scheme ? strchr(scheme + 3, '/') : NULL;
  if (at && (!slash || at < slash))
    snprintf(out, len, "%.*s***%s", (int)(scheme + 3 - url), url, at);
  else
    snprintf(out, len, "%s", url);
}

static int fsync_dir(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  int rc = fsync(fd) == 0 ? 0 : -errno;
  close(fd);
  return rc;
}

static int unlink_quiet(const char *path) {
  return (unlink(path) == 0 || errno == ENOENT) ? 0 : -errno;
}

static int mkdir_p(const char *path) {
  char tmp[PATH_MAX];
  struct stat st;
  snprintf(tmp, sizeof(tmp), "%s", path);
  for (char *p = tmp + 1;; p++) {
    if (*p && *p != '/')
      continue;
    char c = *p;
    *p = '\0';
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
      return -errno;
    if (!(*p = c))
      break;
  }
  return stat(tmp, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* ---- walking trees: fsync, remove, unlock ------------------------------- */

enum walk_mode { WALK_FSYNC, WALK_REMOVE, WALK_UNLOCK };

/* Apply mode to everything below the directory dfd (consumed), depth
 * first; WALK_FSYNC also fsyncs dfd itself after its entries.  Symlinks are
 * never followed.  Own recursion rather than nftw(): no globals needed. */
static int walk(int dfd, enum walk_mode mode, int depth) {
  DIR *d = NULL; /* owns dfd once opened */
  int rc = 0;
  if (depth > WALK_MAX_DEPTH || !(d = fdopendir(dfd))) {
    rc = depth > WALK_MAX_DEPTH ? -ELOOP : -errno;
    close(dfd);
    return rc;
  }
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(d);
    if (!e) {
      rc = errno ? -errno : 0;
      break;
    }
    const char *name = e->d_name;
    size_t n = strlen(name);
    struct stat st;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
      continue;
    if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      rc = -errno;
      break;
    }
    if (S_ISDIR(st.st_mode)) {
      int sub = openat(dirfd(d), name,
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      rc = sub < 0 ? -errno : walk(sub, mode, depth + 1);
      if (!rc && mode == WALK_REMOVE &&
          unlinkat(dirfd(d), name, AT_REMOVEDIR) != 0)
        rc = -errno;
    } else if (mode == WALK_REMOVE ||
               (mode == WALK_UNLOCK && n > 5 &&
                strcmp(name + n - 5, ".lock") == 0)) {
      if (unlinkat(dirfd(d), name, 0) != 0 && errno != ENOENT)
        rc = -errno;
    } else if (mode == WALK_FSYNC && S_ISREG(st.st_mode)) {
      int fd = openat(dirfd(d), name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0 || fsync(fd) != 0)
        rc = -errno;
      if (fd >= 0)
        close(fd);
    }
    if (rc)
      break;
  }
  if (!rc && mode == WALK_FSYNC && fsync(dirfd(d)) != 0)
    rc = -errno;
  closedir(d);
  return rc;
}

static int walk_path(const char *path, enum walk_mode mode) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  return fd < 0 ? -errno : walk(fd, mode, 0);
}

/* rm -rf path; absent is fine. */
static int rm_rf(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0)
    return errno == ENOENT ? 0 : -errno;
  if (!S_ISDIR(st.st_mode))
    return unlink_quiet(path);
  int rc = walk_path(path, WALK_REMOVE);
  if (!rc && rmdir(path) != 0)
    rc = -errno;
  return rc;
}

/* ---- small files -------------------------------------------------------- */

/* Parse a small JSON file: 0 and *out (mg_json_free), -ENOENT when absent,
 * -EBADMSG when damaged, another -errno when unreadable. */
static int load_json(const char *path, struct mg_json **out) {
  struct mg_buf b; /* owned */
  char chunk[4096];
  size_t n;
  int rc = 0;
  *out = NULL;
  FILE *fp = fopen(path, "re");
  if (!fp)
    return -errno;
  mg_buf_init(&b);
  while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0 && b.len <= JSON_MAX)
    mg_buf_append(&b, chunk, n);
  if (ferror(fp))
    rc = -EIO;
  else if (b.oom)
    rc = -ENOMEM;
  else if (b.len > JSON_MAX ||
           mg_json_parse(b.data ? b.data : "", b.len, NULL, out, NULL) != 0)
    rc = -EBADMSG;
  fclose(fp);
  mg_buf_free(&b);
  return rc;
}

/* Write path via path.tmp + fsync + rename, then fsync the folder. */
static int write_atomic(const char *path, const char *parent,
                        const char *data, size_t len) {
  char tmp[PATH_MAX];
  int rc = 0;
  pathf(tmp, "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return -errno;
  for (size_t off = 0; off < len && !rc;) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0 && errno != EINTR)
      rc = -errno;
    else if (w > 0)
      off += (size_t)w;
  }
  if (!rc && fsync(fd) != 0)
    rc = -errno;
  if (close(fd) != 0 && !rc)
    rc = -errno;
  if (!rc && rename(tmp, path) != 0)
    rc = -errno;
  if (rc)
    unlink(tmp);
  return rc ? rc : fsync_dir(parent);
}

/* releases/<hex>.json and its folder: 0 when both are there and agree. */
static int read_release(const char *dir, const char *hex, struct rel *out) {
  struct mg_json *j = NULL; /* owned */
  char path[PATH_MAX];
  int64_t at = 0;
  int rc;
  memset(out, 0, sizeof(*out));
  pathf(path, "%s/releases/%s", dir, hex);
  if (!is_dir(path))
    return -ENOENT;
  pathf(path, "%s/releases/%s.json", dir, hex);
  if ((rc = load_json(path, &j)))
    return rc;
  const char *c = mg_json_get_str(j, "commit");
  const char *s = mg_json_get_str(j, "signer");
  const char *f = mg_json_get_str(j, "fingerprint");
  if (!c || strcmp(c, hex) != 0 || !s || !f ||
      strlen(s) >= sizeof(out->r.signer) ||
      strlen(f) >= sizeof(out->r.fingerprint) ||
      mg_json_get_int(j, "activated_at", &at) != 0) {
    rc = -EBADMSG;
  } else {
    if (mg_json_get_int(j, "seq", &out->seq) != 0)
      out->seq = 0;
    snprintf(out->r.commit, sizeof(out->r.commit), "%s", c);
    snprintf(out->r.signer, sizeof(out->r.signer), "%s", s);
    snprintf(out->r.fingerprint, sizeof(out->r.fingerprint), "%s", f);
    out->r.activated_at = (time_t)at;
  }
  mg_json_free(j);
  return rc;
}

static int write_release(const char *dir, const struct rel *rl,
                         struct mg_err *err) {
  struct mg_buf b; /* owned */
  struct mg_jw w;
  char path[PATH_MAX], parent[PATH_MAX];
  int rc = -ENOMEM;
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  mg_jw_obj(&w);
  mg_jw_kstr(&w, "commit", rl->r.commit);
  mg_jw_kstr(&w, "signer", rl->r.signer);
  mg_jw_kstr(&w, "fingerprint", rl->r.fingerprint);
  mg_jw_kint(&w, "activated_at", (int64_t)rl->r.activated_at);
  mg_jw_kint(&w, "seq", rl->seq);
  mg_jw_obj_end(&w);
  mg_buf_putc(&b, '\n');
  pathf(path, "%s/releases/%s.json", dir, rl->r.commit);
  pathf(parent, "%s/releases", dir);
  if (!w.bad && !b.oom)
    rc = write_atomic(path, parent, b.data, b.len);
  if (rc)
    mg_err_set(err, rc, "cannot write %s: %s", path, strerror(-rc));
  mg_buf_free(&b);
  return rc;
}

/* The commit `current` points at into hex ("" and 0 when there is none). */
static int read_current(const char *dir, char hex[HEX_LEN + 1],
                        struct mg_err *err) {
  char path[PATH_MAX], target[PATH_MAX];
  hex[0] = '\0';
  pathf(path, "%s/current", dir);
  ssize_t n = readlink(path, target, sizeof(target) - 1);
  if (n < 0)
    return errno == ENOENT ? 0
                           : mg_err_set(err, -EIO, "cannot read %s: %s", path,
                                        strerror(errno));
  target[n] = '\0';
  if (strncmp(target, "releases/", 9) != 0 ||
      !is_hex40(target + 9, (size_t)n - 9))
    return mg_err_set(err, -EIO,
                      "%s points at '%s', not at releases/<commit>; "
                      "remove it to start again",
                      path, target);
  memcpy(hex, target + 9, HEX_LEN + 1);
  return 0;
}

/* The rollback pin from state.json into pin ("" when none). */
static int read_pin(const char *dir, char pin[HEX_LEN + 1],
                    struct mg_err *err) {
  struct mg_json *j = NULL; /* owned */
  char path[PATH_MAX];
  const char *p = NULL;
  pin[0] = '\0';
  pathf(path, "%s/state.json", dir);
  int rc = load_json(path, &j);
  if (rc == -ENOENT)
    return 0;
  /* Written atomically, so damage is not ours: refuse rather than guess
   * and maybe re-activate a pack an administrator rolled back. */
  if (!rc && (p = mg_json_get_str(j, "pinned")) && !is_hex40(p, strlen(p)))
    rc = -EBADMSG;
  if (rc)
    mg_err_set(err, rc, "%s is unreadable (%s); remove it to clear the "
               "rollback pin", path, strerror(-rc));
  else if (p)
    memcpy(pin, p, HEX_LEN + 1);
  mg_json_free(j);
  return rc;
}

static int write_pin(const char *dir, const char *pin, struct mg_err *err) {
  char path[PATH_MAX], text[128];
  snprintf(text, sizeof(text), "{\"pinned\":\"%s\"}\n", pin);
  pathf(path, "%s/state.json", dir);
  int rc = write_atomic(path, dir, text, strlen(text));
  return rc ? mg_err_set(err, rc, "cannot write %s: %s", path, strerror(-rc))
            : 0;
}

/* Point `current` at releases/<hex>: a fresh symlink renamed over it. */
static int flip_current(const char *dir, const char *hex,
                        struct mg_err *err) {
  char tmp[PATH_MAX], cur[PATH_MAX], target[64];
  int rc = 0;
  snprintf(target, sizeof(target), "releases/%s", hex);
  pathf(tmp, "%s/current.tmp", dir);
  pathf(cur, "%s/current", dir);
  unlink(tmp);
  if (symlink(target, tmp) != 0 || rename(tmp, cur) != 0) {
    rc = mg_err_set(err, -errno, "cannot point %s at %s: %s", cur, target,
                    strerror(errno));
    unlink(tmp);
  } else if ((rc = fsync_dir(dir))) {
    mg_err_set(err, rc, "cannot fsync %s: %s", dir, strerror(-rc));
  }
  return rc;
}

/* Remove releases/<hex>.json, then the folder: without its record a folder
 * is debris, so an interruption in between is tidied later. */
static int remove_release(const char *dir, const char *hex) {
  char path[PATH_MAX];
  pathf(path, "%s/releases/%s.json", dir, hex);
  int rc = unlink_quiet(path);
  pathf(path, "%s/releases/%s", dir, hex);
  return rc ? rc : rm_rf(path);
}

static int rel_newer_first(const void *pa, const void *pb) {
  const struct rel *a = pa, *b = pb;
  if (a->seq != b->seq)
    return a->seq > b->seq ? -1 : 1;
  if (a->r.activated_at != b->r.activated_at)
    return a->r.activated_at > b->r.activated_at ? -1 : 1;
  return strcmp(a->r.commit, b->r.commit);
}

/* The complete releases other than `active` into *out (malloc'd), newest
 * first.  With tidy, also remove debris of interrupted runs: staging
 * folders, .tmp files, folders without a readable record, records without
 * a folder.  The active release is never touched. */
static int list_releases(const char *dir, const char *active, int tidy,
                         struct rel **out, size_t *n_out,
                         struct mg_err *err) {
  char rdir[PATH_MAX], path[PATH_MAX];
  DIR *d = NULL;        /* owned */
  struct rel *v = NULL; /* owned until handed out */
  size_t n = 0, cap = 0;
  int rc = 0;
  *out = NULL;
  *n_out = 0;
  pathf(rdir, "%s/releases", dir);
  if (tidy) {
    pathf(path, "%s/current.tmp", dir);
    unlink_quiet(path);
    pathf(path, "%s/state.json.tmp", dir);
    unlink_quiet(path);
  }
  if (!(d = opendir(rdir)))
    return errno == ENOENT ? 0
                           : mg_err_set(err, -errno, "cannot read %s: %s",
                                        rdir, strerror(errno));
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(d);
    if (!e) {
      if (errno)
        rc = mg_err_set(err, -errno, "cannot read %s: %s", rdir,
                        strerror(errno));
      break;
    }
    const char *name = e->d_name;
    size_t len = strlen(name);
    char hex[HEX_LEN + 1] = "";
    if (is_hex40(name, len) || (len == HEX_LEN + 5 && is_hex40(name, HEX_LEN) &&
                                strcmp(name + HEX_LEN, ".json") == 0)) {
      memcpy(hex, name, HEX_LEN);
      hex[HEX_LEN] = '\0';
      if (strcmp(hex, active) == 0)
        continue;
    } else if (strncmp(name, ".staging-", 9) != 0 &&
               !(len > 4 && strcmp(name + len - 4, ".tmp") == 0)) {
      continue; /* not ours; leave it */
    }
    if (hex[0] && len == HEX_LEN) { /* a folder: keep when recorded */
      struct rel r;
      if (read_release(dir, hex, &r) == 0) {
        if (n == cap) {
          struct rel *nv = realloc(v, (cap = cap ? cap * 2 : 8) * sizeof(*v));
          if (!nv) {
            rc = mg_err_set(err, -ENOMEM, "out of memory");
            break;
          }
          v = nv;
        }
        v[n++] = r;
        continue;
      }
    } else if (hex[0]) { /* a record: debris only without its folder */
      pathf(path, "%s/%s", rdir, hex);
      if (is_dir(path))
        continue;
    }
    if (!tidy)
      continue;
    pathf(path, "%s/%s", rdir, name);
    if ((rc = hex[0] ? remove_release(dir, hex) : rm_rf(path))) {
      mg_err_set(err, rc, "cannot remove %s: %s", path, strerror(-rc));
      break;
    }
    mg_log_info("pack", "removed %s, left by an interrupted run", name);
  }
  closedir(d);
  if (rc) {
    free(v);
    return rc;
  }
  if (n > 1)
    qsort(v, n, sizeof(*v), rel_newer_first);
  *out = v;
  *n_out = n;
  return 0;
}

/* ---- git ---------------------------------------------------------------- */

struct cred_state {
  const char *ssh_key;  /* deploy key for ssh://, or NULL */
  const char *host_key; /* pinned "SHA256:..." of the ssh server, or NULL */
  int asked;            /* times the server asked */
  int host_mismatch;    /* the ssh server showed another host key */
};

/* https: libgit2's own verification decides.  ssh: libgit2 1.5.1 has no
 * known_hosts; the server's key is accepted when it matches the pinned
 * fingerprint ([pack] ssh_host_key), or when none is pinned (the commit
 * signature and the fast-forward rule still decide what is activated). */
static int check_host(git_cert *cert, int valid, const char *host,
                      void *payload) {
  struct cred_state *cs = payload;
  (void)valid;
  (void)host;
  if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2)
    return GIT_PASSTHROUGH;
  if (!cs->host_key)
    return 0;
  const git_cert_hostkey *hk = (const git_cert_hostkey *)cert;
  if (!(hk->type & GIT_CERT_SSH_SHA256))
    return cs->host_mismatch = 1, GIT_ECERTIFICATE;
  unsigned char b64[64];
  int n = EVP_EncodeBlock(b64, hk->hash_sha256, 32);
  while (n > 0 && b64[n - 1] == '=')
    n--; /* ssh-keygen prints the base64 unpadded */
  b64[n] = '\0';
  if (strncmp(cs->host_key, "SHA256:", 7) != 0 ||
      strcmp(cs->host_key + 7, (const char *)b64) != 0)
    return cs->host_mismatch = 1, GIT_ECERTIFICATE;
  return 0;
}

/* Nobody is there to type a password: an ssh:// server gets the deploy
 * key ([pack] ssh_key) once; anything else fails at once with our own
 * message rather than libgit2's retry loop. */
static int credentials(git_credential **out, const char *url,
                       const char *user, unsigned int allowed, void *payload) {
  struct cred_state *cs = payload;
  (void)url;
  if (cs->asked++ == 0 && cs->ssh_key && (allowed & GIT_CREDENTIAL_SSH_KEY))
    return git_credential_ssh_key_new(out, user && *user ? user : "git", NULL,
                                      cs->ssh_key, NULL);
  return GIT_EUSER;
}

/* Open dir/cache.git, or make it afresh when absent or unreadable (it is
 * only a cache).  Lock files left by a killed fetch are removed first:
 * nobody else uses this repository. */
static int open_cache(const char *dir, git_repository **repo,
                      struct mg_err *err) {
  static const char *const locks[] = {"HEAD.lock", "config.lock",
                                      "packed-refs.lock", "FETCH_HEAD.lock",
                                      "index.lock"};
  char path[PATH_MAX], lock[PATH_MAX];
  int rc;
  *repo = NULL;
  pathf(path, "%s/cache.git", dir);
  if (is_dir(path)) {
    for (size_t i = 0; i < sizeof(locks) / sizeof(locks[0]); i++) {
      pathf(lock, "%s/%s", path, locks[i]);
      unlink_quiet(lock);
    }
    pathf(lock, "%s/refs", path);
    walk_path(lock, WALK_UNLOCK);
    if (git_repository_open_bare(repo, path) == 0)
      return 0;
    const git_error *e = git_error_last();
    mg_log_warn("pack", "cache %s is unreadable (%s); making it afresh", path,
                e && e->message ? e->message : "?");
    if ((rc = rm_rf(path)))
      return mg_err_set(err, rc, "cannot remove %s: %s", path, strerror(-rc));
  }
  if (git_repository_init(repo, path, 1) != 0)
    return git_fail(err, -EIO, "cannot create the pack cache");
  return 0;
}

/* Fetch o->branch from o->url into refs/remotes/origin/<branch>, *tip. */
static int fetch_tip(git_repository *repo, const struct mg_packrepo_opts *o,
                     git_oid *tip, struct mg_err *err) {
  git_remote *remote = NULL; /* owned */
  struct cred_state cs = {o->ssh_key && *o->ssh_key ? o->ssh_key : NULL,
                          o->ssh_host_key && *o->ssh_host_key ? o->ssh_host_key
                                                              : NULL,
                          0, 0};
  char spec[512], ref[300], url[512], what[1024];
  int rc = 0;
  snprintf(spec, sizeof(spec), "+refs/heads/%s:refs/remotes/origin/%s",
           o->branch, o->branch);
  snprintf(ref, sizeof(ref), "refs/remotes/origin/%s", o->branch);
  url_redact(o->url, url, sizeof(url));
  char *specs[] = {spec};
  git_strarray refspecs = {specs, 1};
  git_fetch_options fo;
  git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
  fo.callbacks.credentials = credentials;
  fo.callbacks.certificate_check = check_host;
  fo.callbacks.payload = &cs;
  fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
  fo.update_fetchhead = 0;
  /* Anonymous: the URL comes from our configuration each time and no
   * remote is written into the cache's config.  Skipping url.insteadOf
   * keeps git config from redirecting it, and avoids a pcre2 leak in
   * 1.5.1's config glob (about 200 KB per call, fatal for a daemon). */
  git_remote_create_options ro;
  git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
  ro.repository = repo;
  ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF;
  /* A process-wide libgit2 setting; one pack source per daemon, one job
   * at a time.  It adds to the system's trusted CAs. */
  if (o->ca_file && *o->ca_file &&
      git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, o->ca_file, NULL) != 0) {
    rc = git_fail(err, -EINVAL, "cannot use [pack] ca_file");
  } else if (git_remote_create_with_opts(&remote, o->url, &ro) != 0) {
    snprintf(what, sizeof(what), "bad pack repository URL %s", url);
    rc = git_fail(err, -EINVAL, what);
  } else if (!strchr(o->url, ':') && access(o->url, F_OK) != 0) {
    rc = mg_err_set(err, -ENOENT, "pack repository %s: %s", url,
                    strerror(errno));
  } else if (git_remote_fetch(remote, &refspecs, &fo, "pack fetch") != 0) {
    snprintf(what, sizeof(what), "fetch of branch %s from %s failed",
             o->branch, url);
    rc = cs.host_mismatch
             ? mg_err_set(err, -EKEYREJECTED,
                          "%s: the ssh server's host key is not %s ([pack] "
                          "ssh_host_key)",
                          url, cs.host_key)
         : cs.asked && cs.ssh_key
             ? mg_err_set(err, -EACCES,
                          "%s refused the deploy key %s ([pack] ssh_key)", url,
                          cs.ssh_key)
         : cs.asked
             ? mg_err_set(err, -EACCES,
                          "%s asks for credentials; pack fetches offer only "
                          "an SSH deploy key ([pack] ssh_key) to ssh:// URLs",
                          url)
             : git_fail(err, -EIO, what);
  } else if (git_reference_name_to_id(tip, repo, ref) != 0) {
    rc = mg_err_set(err, -ENOENT, "branch %s not found at %s", o->branch,
                    url);
  }
  git_remote_free(remote);
  return rc;
}

/* The tip's SSH signature, verified against signers for namespace git. */
static int verify_tip(git_repository *repo, const git_oid *tip,
                      const char *shortid, const struct mg_signers *signers,
                      struct mg_sshsig_result *res, struct mg_err *err) {
  git_buf sig = GIT_BUF_INIT, data = GIT_BUF_INIT; /* owned */
  struct mg_err verr = {{0}};
  int rc = 0;
  git_oid id = *tip; /* the 1.5.1 API takes a non-const oid */
  int grc = git_commit_extract_signature(&sig, &data, repo, &id, NULL);
  if (grc == GIT_ENOTFOUND)
    rc = mg_err_set(err, -EKEYREJECTED, "commit %s is not signed", shortid);
  else if (grc != 0)
    rc = git_fail(err, -EIO, "cannot read the tip commit's signature");
  else if ((rc = mg_sshsig_verify(signers, "git", data.ptr, data.size,
                                  sig.ptr, sig.size, time(NULL), res, &verr)))
    mg_err_set(err, rc, "commit %s: %s", shortid,
               verr.msg[0] ? verr.msg : "signature refused");
  git_buf_dispose(&sig);
  git_buf_dispose(&data);
  return rc;
}

/* Check out the tip into a staging folder, validate it, fsync it, and give
 * it its final name releases/<hex>. */
static int build_release(git_repository *repo, const git_oid *tip,
                         const char *hex, const char *shortid,
                         const struct mg_packrepo_opts *o,
                         struct mg_err *err) {
  git_commit *commit = NULL; /* owned */
  char staging[PATH_MAX];    /* removed at out unless renamed */
  char final[PATH_MAX];
  int rc = 0, staged = 0;
  struct mg_err verr = {{0}};
  pathf(staging, "%s/releases/.staging-XXXXXX", o->dir);
  pathf(final, "%s/releases/%s", o->dir, hex);
  if (!mkdtemp(staging)) {
    rc = mg_err_set(err, -errno, "cannot create %s: %s", staging,
                    strerror(errno));
    goto out;
  }
  staged = 1;
  chmod(staging, 0755); /* mkdtemp makes 0700; match the tree's folders */
  git_checkout_options co;
  git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
  /* NONE would be a dry run; the folder is empty, so recreate everything;
   * the bare cache has no index worth writing. */
  co.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_RECREATE_MISSING |
                         GIT_CHECKOUT_DONT_UPDATE_INDEX |
                         GIT_CHECKOUT_DONT_WRITE_INDEX;
  co.target_directory = staging;
  if (git_commit_lookup(&commit, repo, tip) != 0 ||
      git_checkout_tree(repo, (const git_object *)commit, &co) != 0) {
    rc = git_fail(err, -EIO, "checkout failed");
  } else if (o->validate && o->validate(o->validate_ud, staging, &verr)) {
    rc = mg_err_set(err, -EINVAL, "pack at commit %s is invalid: %s",
                    shortid, verr.msg[0] ? verr.msg : "refused");
  } else if ((rc = walk_path(staging, WALK_FSYNC))) {
    mg_err_set(err, rc, "cannot fsync %s: %s", staging, strerror(-rc));
  } else if (rename(staging, final) != 0) {
    rc = mg_err_set(err, -errno, "cannot rename %s to %s: %s", staging, final,
                    strerror(errno));
  } else {
    staged = 0;
  }
out:
  if (staged)
    rm_rf(staging);
  git_commit_free(commit);
  return rc;
}

/* ---- API ---------------------------------------------------------------- */

static int check_opts(const struct mg_packrepo_opts *o, struct mg_err *err) {
  char ref[300];
  int valid = 0, rc;
  if (!o || !o->url || !o->url[0] || !o->branch || !o->branch[0] ||
      !o->signers)
    return mg_err_set(err, -EINVAL,
                      "pack options need dir, url, branch and signers");
  if ((rc = check_dir(o->dir, err)))
    return rc;
  if (o->keep_releases < 1)
    return mg_err_set(err, -EINVAL, "keep_releases is %d; it must be >= 1",
                      o->keep_releases);
  snprintf(ref, sizeof(ref), "refs/heads/%s", o->branch);
  if (strlen(o->branch) > 200 || git_reference_name_is_valid(&valid, ref) ||
      !valid)
    return mg_err_set(err, -EINVAL, "'%s' is not a valid branch name",
                      o->branch);
  return 0;
}

int mg_packrepo_pull(const struct mg_packrepo_opts *o,
                     struct mg_pack_release *active, int *changed,
                     struct mg_err *err) {
  git_repository *repo = NULL; /* owned */
  struct rel *others = NULL;   /* owned */
  size_t n_others = 0;
  struct rel act, next;
  struct mg_sshsig_result res;
  char act_hex[HEX_LEN + 1] = "", pin[HEX_LEN + 1] = "";
  char hex[HEX_LEN + 1], shortid[8], path[PATH_MAX];
  git_oid tip;
  int rc, act_ok = 0;

  memset(&act, 0, sizeof(act));
  memset(&next, 0, sizeof(next));
  if (changed)
    *changed = 0;
  pthread_once(&git_once, git_init_once);
  if ((rc = check_opts(o, err)))
    goto out;
  pathf(path, "%s/releases", o->dir);
  if ((rc = mkdir_p(path))) {
    mg_err_set(err, rc, "cannot create %s: %s", path, strerror(-rc));
    goto out;
  }
  if ((rc = read_current(o->dir, act_hex, err)))
    goto out;
  act_ok = act_hex[0] && read_release(o->dir, act_hex, &act) == 0;
  if ((rc = list_releases(o->dir, act_hex, 1, &others, &n_others, err)) ||
      (rc = read_pin(o->dir, pin, err)) ||
      (rc = open_cache(o->dir, &repo, err)) ||
      (rc = fetch_tip(repo, o, &tip, err)))
    goto out;
  git_oid_tostr(hex, sizeof(hex), &tip);
  snprintf(shortid, sizeof(shortid), "%.7s", hex);

  /* Rule 1: nothing new (or the commit an administrator rolled back). */
  if ((act_ok && strcmp(hex, act_hex) == 0) ||
      (act_hex[0] && pin[0] && strcmp(hex, pin) == 0)) {
    if (!act_ok)
      snprintf(act.r.commit, sizeof(act.r.commit), "%s", act_hex);
    if (active)
      *active = act.r;
    goto out;
  }
  /* Rule 2: fast-forward only, so an old signed commit cannot be replayed. */
  if (act_hex[0] && strcmp(hex, act_hex) != 0) {
    git_oid aid;
    int d = git_oid_fromstr(&aid, act_hex) == 0
                ? git_graph_descendant_of(repo, &tip, &aid)
                : -1;
    if (d != 1) {
      rc = mg_err_set(err, -ESTALE,
                      "commit %s on %s is not a fast-forward of the active "
                      "pack %.7s%s",
                      shortid, o->branch, act_hex,
                      d < 0 ? " (the active commit is not in its history)"
                            : "");
      goto out;
    }
  }
  /* Rules 3 and 4: signed by an allowed signer. */
  if ((rc = verify_tip(repo, &tip, shortid, o->signers, &res, err)))
    goto out;

  /* Rebuild unless this is the active release merely missing its record;
   * a non-active folder of the same commit is stale and replaced. */
  pathf(path, "%s/releases/%s", o->dir, hex);
  if (!(strcmp(hex, act_hex) == 0 && is_dir(path))) {
    if ((rc = remove_release(o->dir, hex))) {
      mg_err_set(err, rc, "cannot remove the stale %s: %s", path,
                 strerror(-rc));
      goto out;
    }
    if ((rc = build_release(repo, &tip, hex, shortid, o, err)))
      goto out;
  }
  snprintf(next.r.commit, sizeof(next.r.commit), "%s", hex);
  snprintf(next.r.signer, sizeof(next.r.signer), "%s", res.principal);
  snprintf(next.r.fingerprint, sizeof(next.r.fingerprint), "%s",
           res.fingerprint);
  next.r.activated_at = time(NULL);
  next.seq = act.seq + 1;
  for (size_t i = 0; i < n_others; i++)
    if (others[i].seq >= next.seq)
      next.seq = others[i].seq + 1;
  if ((rc = write_release(o->dir, &next, err)) ||
      (rc = flip_current(o->dir, hex, err)))
    goto out;
  if (changed)
    *changed = strcmp(hex, act_hex) != 0;
  if (active)
    *active = next.r;
  mg_log_info("pack", "%s %s signed by %s (%s)",
              strcmp(hex, act_hex) ? "activated" : "re-recorded", shortid,
              next.r.signer, next.r.fingerprint);

  /* Activation is done; what follows only tidies, so it logs, not fails. */
  struct mg_err perr = {{0}};
  if (pin[0]) {
    pathf(path, "%s/state.json", o->dir);
    if (unlink_quiet(path) != 0 || fsync_dir(o->dir) != 0)
      mg_log_warn("pack", "cannot clear the rollback pin in %s", path);
  }
  free(others);
  others = NULL;
  if (list_releases(o->dir, hex, 1, &others, &n_others, &perr) != 0)
    mg_log_warn("pack", "cannot prune releases: %s", perr.msg);
  for (size_t i = (size_t)o->keep_releases; others && i < n_others; i++) {
    int used = 0;
    for (size_t u = 0; o->in_use && o->in_use[u]; u++)
      used |= strcmp(o->in_use[u], others[i].r.commit) == 0;
    if (used) { /* a visit still works with it; a later pull prunes it */
      mg_log_info("pack", "keeping release %.7s: still in use",
                  others[i].r.commit);
      continue;
    }
    int prc = remove_release(o->dir, others[i].r.commit);
    if (prc)
      mg_log_warn("pack", "cannot prune release %.7s: %s", others[i].r.commit,
                  strerror(-prc));
    else
      mg_log_info("pack", "pruned release %.7s", others[i].r.commit);
  }
out:
  free(others);
  git_repository_free(repo);
  return rc;
}

int mg_packrepo_status(const char *dir, struct mg_pack_release *active,
                       struct mg_pack_release **prev, size_t *n_prev,
                       struct mg_err *err) {
  struct rel *others = NULL; /* owned */
  size_t n = 0;
  char hex[HEX_LEN + 1];
  struct rel act;
  int rc;
  if (prev)
    *prev = NULL;
  if (n_prev)
    *n_prev = 0;
  if ((rc = check_dir(dir, err)) || (rc = read_current(dir, hex, err)))
    return rc;
  if (!hex[0])
    return mg_err_set(err, -ENOENT, "no pack is active in %s", dir);
  if (read_release(dir, hex, &act) != 0) /* the tree is what counts */
    snprintf(act.r.commit, sizeof(act.r.commit), "%s", hex);
  if (active)
    *active = act.r;
  if (!prev || !n_prev ||
      (rc = list_releases(dir, hex, 0, &others, &n, err)) || !n)
    return rc;
  if (!(*prev = malloc(n * sizeof(**prev)))) {
    free(others);
    return mg_err_set(err, -ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++)
    (*prev)[i] = others[i].r;
  *n_prev = n;
  free(others);
  return 0;
}

int mg_packrepo_rollback(const char *dir, struct mg_pack_release *active,
                         struct mg_err *err) {
  struct rel *others = NULL; /* owned */
  size_t n = 0;
  char hex[HEX_LEN + 1], pin[HEX_LEN + 1];
  struct rel act;
  const struct rel *to = NULL;
  int rc;
  if ((rc = check_dir(dir, err)) || (rc = read_current(dir, hex, err)))
    goto out;
  if (!hex[0]) {
    rc = mg_err_set(err, -ENOENT, "no pack is active in %s", dir);
    goto out;
  }
  if (read_release(dir, hex, &act) != 0)
    act.seq = INT64_MAX; /* record lost: every kept release is older */
  if ((rc = list_releases(dir, hex, 1, &others, &n, err)) ||
      (rc = read_pin(dir, pin, err)))
    goto out;
  for (size_t i = 0; i < n && !to; i++) /* newest first */
    if (rel_newer_first(&others[i], &act) > 0)
      to = &others[i];
  if (!to) {
    rc = mg_err_set(err, -ENOENT, "no kept release is older than %.7s", hex);
    goto out;
  }
  /* While already rolled back, keep the first pin: it is still the
   * remote's tip, and a second step back must not let it return. */
  if ((rc = write_pin(dir, pin[0] ? pin : hex, err)) ||
      (rc = flip_current(dir, to->r.commit, err)))
    goto out;
  mg_log_notice("pack", "rolled back from %.7s to %.7s", hex, to->r.commit);
  if (active)
    *active = to->r;
out:
  free(others);
  return rc;
}

int mg_packrepo_current_dir(const char *dir, char *buf, size_t len) {
  char path[PATH_MAX], real[PATH_MAX];
  int rc = check_dir(dir, NULL);
  if (rc)
    return rc;
  pathf(path, "%s/current", dir);
  if (!realpath(path, real))
    return -errno;
  if (!is_dir(real))
    return -ENOTDIR;
  int n = snprintf(buf, len, "%s", real);
  return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
