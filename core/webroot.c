#include "webroot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct entry {
  struct entry *next;
  char *urlpath;
  char *path;
  char *data; /* NULL when too large to keep */
  size_t len;
  struct timespec mtime;
  off_t size;
  ino_t ino;
  const char *type;
  char etag[48];
};

struct mg_webroot {
  char *dir;
  struct entry *files;
  size_t total; /* bytes of data kept */
};

static const struct {
  const char *ext, *type;
} mime_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".woff", "font/woff"},
    {".ttf", "font/ttf"},
    {".otf", "font/otf"},
    {".pdf", "application/pdf"},
    {".txt", "text/plain; charset=utf-8"},
    {".webmanifest", "application/manifest+json"},
};

static const char *mime_for(const char *path) {
  const char *dot = strrchr(path, '.');
  if (dot && !strchr(dot, '/'))
    for (size_t i = 0; i < sizeof(mime_types) / sizeof(mime_types[0]); i++)
      if (strcasecmp(dot, mime_types[i].ext) == 0)
        return mime_types[i].type;
  return NULL;
}

/* No segment starting with '.', no backslash, no control character. */
static int path_safe(const char *path) {
  if (path[0] != '/')
    return 0;
  for (const char *p = path; *p; p++) {
    if ((unsigned char)*p < 0x20 || *p == '\\')
      return 0;
    if (*p == '/' && p[1] == '.')
      return 0;
  }
  return 1;
}

int mg_webroot_create(const char *dir, struct mg_webroot **out) {
  struct mg_webroot *w = calloc(1, sizeof(*w));
  if (!w || !(w->dir = strdup(dir))) {
    free(w);
    return -ENOMEM;
  }
  *out = w;
  return 0;
}

void mg_webroot_free(struct mg_webroot *w) {
  if (!w)
    return;
  while (w->files) {
    struct entry *e = w->files;
    w->files = e->next;
    free(e->urlpath);
    free(e->path);
    free(e->data);
    free(e);
  }
  free(w->dir);
  free(w);
}

/* Read the whole file if it fits the limits; data stays NULL otherwise. */
static int load(struct mg_webroot *w, struct entry *e, const struct stat *st) {
  int fd = -1, rc = -ENOENT;
  char *data = NULL;
  size_t got = 0;

  w->total -= e->data ? e->len : 0;
  free(e->data);
  e->data = NULL;
  e->len = (size_t)st->st_size;
  if ((size_t)st->st_size <= MG_WEBROOT_MAX_FILE &&
      w->total + (size_t)st->st_size <= MG_WEBROOT_MAX_TOTAL) {
    if ((fd = open(e->path, O_RDONLY | O_CLOEXEC)) < 0)
      goto out;
    if (!(data = malloc((size_t)st->st_size + 1))) {
      rc = -ENOMEM;
      goto out;
    }
    while (got < (size_t)st->st_size) {
      ssize_t n = read(fd, data + got, (size_t)st->st_size - got);
      if (n <= 0)
        goto out; /* changed under us: the next request retries */
      got += (size_t)n;
    }
    e->data = data;
    data = NULL;
    w->total += e->len;
  }
  e->mtime = st->st_mtim;
  e->size = st->st_size;
  e->ino = st->st_ino;
  snprintf(e->etag, sizeof(e->etag), "\"%llx-%llx-%llx\"",
           (unsigned long long)st->st_mtim.tv_sec,
           (unsigned long long)st->st_mtim.tv_nsec,
           (unsigned long long)st->st_size);
  rc = 0;
out:
  free(data);
  if (fd >= 0)
    close(fd);
  return rc;
}

int mg_webroot_get(struct mg_webroot *w, const char *urlpath,
                   struct mg_webfile *f) {
  struct entry *e;
  struct stat st;
  const char *type;
  int rc;

  if (strcmp(urlpath, "/") == 0)
    urlpath = "/index.html";
  if (!path_safe(urlpath) || !(type = mime_for(urlpath)))
    return -ENOENT;
  for (e = w->files; e; e = e->next)
    if (strcmp(e->urlpath, urlpath) == 0)
      break;
  if (!e) {
    /* Remember only files that exist, so that probing for random paths
     * cannot grow the list. */
    char path[4096];
    if (snprintf(path, sizeof(path), "%s%s", w->dir, urlpath) >= (int)sizeof(path) ||
        stat(path, &st) != 0 || !S_ISREG(st.st_mode))
      return -ENOENT;
    e = calloc(1, sizeof(*e));
    if (!e || !(e->urlpath = strdup(urlpath)) || !(e->path = strdup(path))) {
      if (e)
        free(e->urlpath);
      free(e);
      return -ENOMEM;
    }
    e->type = type;
    e->next = w->files;
    w->files = e;
  } else if (stat(e->path, &st) != 0 || !S_ISREG(st.st_mode)) {
    return -ENOENT;
  }
  if (st.st_size != e->size || st.st_ino != e->ino ||
      st.st_mtim.tv_sec != e->mtime.tv_sec ||
      st.st_mtim.tv_nsec != e->mtime.tv_nsec || e->etag[0] == '\0') {
    e->etag[0] = '\0';
    if ((rc = load(w, e, &st)))
      return rc;
  }
  f->data = e->data;
  f->len = e->len;
  f->path = e->path;
  f->type = e->type;
  memcpy(f->etag, e->etag, sizeof(f->etag));
  return 0;
}
