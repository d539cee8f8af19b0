/*
 * webroot.h — the tablet web app's files (web_dir), served from memory.
 * Each lookup stats the file and reloads it when its size or mtime changed,
 * so an upgrade shows at the next request; files too large to keep are
 * streamed from disk by the caller.  Only known types are served, and no
 * path with a segment starting with '.' (no "..", no hidden files).
 */
#ifndef MG_WEBROOT_H
#define MG_WEBROOT_H

#include <stddef.h>

#define MG_WEBROOT_MAX_FILE (1u << 20)   /* larger files are streamed */
#define MG_WEBROOT_MAX_TOTAL (32u << 20) /* memory kept for all files */

struct mg_webroot;

struct mg_webfile {
  const char *data; /* contents, or NULL: stream `path` from disk */
  size_t len;
  const char *path; /* full file path */
  const char *type; /* Content-Type */
  char etag[48];    /* quoted, from mtime and size */
};

int mg_webroot_create(const char *dir, struct mg_webroot **out);
void mg_webroot_free(struct mg_webroot *w); /* NULL is fine */

/* Find the file for a request path ("/" means "/index.html").  0 and *f
 * (valid until the next call), or -ENOENT (missing, unsafe, unknown type,
 * unreadable). */
int mg_webroot_get(struct mg_webroot *w, const char *urlpath,
                   struct mg_webfile *f);

#endif
