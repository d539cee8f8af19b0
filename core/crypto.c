/*
 * crypto.c — the data key file and AES-256-GCM sealed blobs (crypto.h).
 */
#include "crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_LEN 32
#define NONCE_LEN 12
#define TAG_LEN 16
#define VERSION 0x01
/* EVP takes int lengths; feed big buffers in pieces well below INT_MAX */
#define CHUNK ((size_t)1 << 30)

/* ---------------------------------------------------------------------- */
/* Key file                                                                */

static int read_all(int fd, unsigned char *p, size_t n, size_t *got) {
  *got = 0;
  while (*got < n) {
    ssize_t r = read(fd, p + *got, n - *got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -errno;
    if (r == 0)
      break;
    *got += (size_t)r;
  }
  return 0;
}

static int write_all(int fd, const unsigned char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -errno;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* A rename or link is only durable once its directory is fsynced. */
static int fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int rc = 0;
  if (fd < 0)
    return -errno;
  if (fsync(fd) < 0)
    rc = -errno;
  close(fd);
  return rc;
}

/* mkdir -p of the directory part of `path`, new directories 0700.  `dir`
 * gets that directory ("." when there is none). */
static int make_dirs(const char *path, char *dir, size_t dir_len,
                     struct mg_err *err) {
  const char *slash = strrchr(path, '/');
  size_t n = slash ? (size_t)(slash - path) : 0;
  if (n + 2 > dir_len)
    return mg_err_set(err, -ENAMETOOLONG, "key file %s: path too long", path);
  if (!slash) {
    memcpy(dir, ".", 2);
    return 0;
  }
  if (n == 0) { /* "/key" */
    memcpy(dir, "/", 2);
    return 0;
  }
  memcpy(dir, path, n);
  dir[n] = '\0';
  for (size_t i = 1; i <= n; i++) {
    if (dir[i] != '/' && dir[i] != '\0')
      continue;
    char saved = dir[i];
    dir[i] = '\0';
    if (mkdir(dir, 0700) == 0) {
      /* make the new entry durable in its parent too */
      char *up = strrchr(dir, '/');
      if (up && up != dir) {
        *up = '\0';
        fsync_dir(dir);
        *up = '/';
      }
    } else if (errno != EEXIST) {
      int e = errno;
      dir[i] = saved;
      return mg_err_set(err, -e, "key file %s: cannot create directory: %s",
                        path, strerror(e));
    }
    dir[i] = saved;
  }
  return 0;
}

/* Write fresh random bytes under a temporary name and link it in place.
 * link(), unlike rename(), fails when another process made the key in the
 * meantime: then -EEXIST and the caller reads theirs. */
static int create_key(const char *path, struct mg_key *key, struct mg_err *err) {
  char dir[PATH_MAX], tmp[PATH_MAX];
  int fd = -1, rc;
  if ((rc = make_dirs(path, dir, sizeof(dir), err)) < 0)
    return rc;
  if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp))
    return mg_err_set(err, -ENAMETOOLONG, "key file %s: path too long", path);
  fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
  if (fd < 0) {
    tmp[0] = '\0';
    rc = mg_err_set(err, -errno, "key file %s: cannot create: %s", path,
                    strerror(errno));
    goto out;
  }
  if (RAND_bytes(key->k, KEY_LEN) != 1) {
    rc = mg_err_set(err, -EIO, "key file %s: no random bytes for a new key", path);
    goto out;
  }
  if (fchmod(fd, 0600) < 0 || (rc = write_all(fd, key->k, KEY_LEN)) < 0 ||
      fsync(fd) < 0) {
    rc = rc < 0 ? rc : -errno;
    rc = mg_err_set(err, rc, "key file %s: cannot write: %s", path, strerror(-rc));
    goto out;
  }
  close(fd);
  fd = -1;
  rc = link(tmp, path) < 0 ? -errno : 0;
  /* a file system without hard links: rename, and the race is lost */
  if ((rc == -EPERM || rc == -EOPNOTSUPP) && rename(tmp, path) == 0)
    rc = 0;
  if (rc < 0) {
    if (rc != -EEXIST)
      mg_err_set(err, rc, "key file %s: cannot put in place: %s", path,
                 strerror(-rc));
    goto out;
  }
  unlink(tmp);
  tmp[0] = '\0';
  if ((rc = fsync_dir(dir)) < 0) {
    mg_err_set(err, rc, "key file %s: cannot sync directory %s: %s", path, dir,
               strerror(-rc));
    goto out;
  }
  rc = 0;
out:
  if (fd >= 0)
    close(fd);
  if (tmp[0])
    unlink(tmp);
  if (rc < 0)
    OPENSSL_cleanse(key, sizeof(*key));
  return rc;
}

/* Read an existing key file; -ENOENT (no message) when there is none. */
static int read_key(const char *path, struct mg_key *key, struct mg_err *err) {
  unsigned char raw[KEY_LEN + 1];
  size_t got = 0;
  struct stat st;
  int rc;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    rc = -errno;
    if (rc != -ENOENT)
      mg_err_set(err, rc, "key file %s: cannot open: %s", path, strerror(-rc));
    goto out;
  }
  if (fstat(fd, &st) < 0) {
    rc = mg_err_set(err, -errno, "key file %s: %s", path, strerror(errno));
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    rc = mg_err_set(err, -EINVAL, "key file %s: is not a regular file", path);
    goto out;
  }
  /* Any access by group or others is refused, not only reading: a key
   * someone else can replace would encrypt new data under their key. */
  if (st.st_mode & 077) {
    rc = mg_err_set(err, -EPERM,
                    "key file %s: mode %04o lets group or others in; it must "
                    "be readable by the daemon only (chmod 600)",
                    path, (unsigned)(st.st_mode & 07777));
    goto out;
  }
  /* one byte more than a key, so a longer file shows */
  if ((rc = read_all(fd, raw, sizeof(raw), &got)) < 0) {
    mg_err_set(err, rc, "key file %s: cannot read: %s", path, strerror(-rc));
    goto out;
  }
  if (got != KEY_LEN) {
    rc = mg_err_set(err, -EINVAL,
                    "key file %s: is %lld bytes long; a key file holds "
                    "exactly %d bytes",
                    path, got > KEY_LEN ? (long long)st.st_size : (long long)got,
                    KEY_LEN);
    goto out;
  }
  memcpy(key->k, raw, KEY_LEN);
  rc = 0;
out:
  OPENSSL_cleanse(raw, sizeof(raw));
  if (fd >= 0)
    close(fd);
  return rc;
}

int mg_key_load(const char *path, struct mg_key *key, struct mg_err *err) {
  int rc;
  if (!path || !*path || !key)
    return mg_err_set(err, -EINVAL, "no key file given");
  rc = read_key(path, key, err);
  if (rc == -ENOENT) {
    rc = create_key(path, key, err);
    if (rc == -EEXIST) /* lost a race with another process: use theirs */
      rc = read_key(path, key, err);
    if (rc == -ENOENT) /* something is there that open() cannot follow */
      mg_err_set(err, rc, "key file %s: exists but cannot be opened (a "
                 "dangling symbolic link?)", path);
  }
  if (rc < 0)
    OPENSSL_cleanse(key, sizeof(*key));
  return rc;
}

void mg_key_wipe(struct mg_key *key) {
  if (key)
    OPENSSL_cleanse(key, sizeof(*key));
}

/* ---------------------------------------------------------------------- */
/* Sealing                                                                 */

/* EVP_CipherUpdate over any size; `out` NULL feeds associated data. */
static int update(EVP_CIPHER_CTX *ctx, unsigned char *out, const unsigned char *in,
                  size_t len) {
  while (len > 0) {
    int n = (int)(len < CHUNK ? len : CHUNK), outl = 0;
    if (EVP_CipherUpdate(ctx, out, &outl, in, n) != 1)
      return -1;
    if (out)
      out += outl;
    in += n;
    len -= (size_t)n;
  }
  return 0;
}

/* AES-256-GCM fetched once for the process: EVP_aes_256_gcm() in an init
 * looks the algorithm up again on every call (OpenSSL 3), and every value
 * of a case goes through here.  Kept until exit (reachable, not leaked). */
static EVP_CIPHER *gcm_alg;
static pthread_once_t gcm_once = PTHREAD_ONCE_INIT;
static void gcm_fetch(void) { gcm_alg = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL); }

/* A context set up for `enc` with the key and nonce and the aad fed. */
static EVP_CIPHER_CTX *gcm_start(const struct mg_key *key, const unsigned char *nonce,
                                 const char *aad, int enc) {
  pthread_once(&gcm_once, gcm_fetch);
  EVP_CIPHER_CTX *ctx = gcm_alg ? EVP_CIPHER_CTX_new() : NULL;
  if (!ctx)
    return NULL;
  if (EVP_CipherInit_ex(ctx, gcm_alg, NULL, NULL, NULL, enc) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
      EVP_CipherInit_ex(ctx, NULL, NULL, key->k, nonce, enc) != 1 ||
      update(ctx, NULL, (const unsigned char *)aad, strlen(aad)) < 0) {
    EVP_CIPHER_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

int mg_seal(const struct mg_key *key, const char *aad, const void *in,
            size_t len, unsigned char **out, size_t *out_len) {
  EVP_CIPHER_CTX *ctx = NULL;
  unsigned char *blob = NULL;
  int outl = 0, rc = -EIO;
  if (out)
    *out = NULL;
  if (out_len)
    *out_len = 0;
  if (!key || !out || !out_len || (!in && len > 0))
    return -EINVAL;
  if (len > SIZE_MAX - MG_SEAL_OVERHEAD || !(blob = malloc(len + MG_SEAL_OVERHEAD))) {
    rc = -ENOMEM;
    goto out;
  }
  unsigned char *nonce = blob + 1, *ct = blob + 1 + NONCE_LEN, *tag = ct + len;
  blob[0] = VERSION;
  /* A random nonce per blob: 2^-32 collision odds only after ~2^32 blobs
   * under one key, far beyond a city hall's residents. */
  if (RAND_bytes(nonce, NONCE_LEN) != 1)
    goto out;
  if (!(ctx = gcm_start(key, nonce, aad ? aad : "", 1)) ||
      update(ctx, ct, in, len) < 0 || EVP_EncryptFinal_ex(ctx, tag, &outl) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
    goto out;
  *out = blob;
  *out_len = len + MG_SEAL_OVERHEAD;
  blob = NULL;
  rc = 0;
out:
  EVP_CIPHER_CTX_free(ctx);
  free(blob);
  return rc;
}

int mg_open(const struct mg_key *key, const char *aad, const void *in,
            size_t len, unsigned char **out, size_t *out_len) {
  const unsigned char *p = in;
  EVP_CIPHER_CTX *ctx = NULL;
  unsigned char *plain = NULL, tag[TAG_LEN];
  int outl = 0, rc = -EBADMSG;
  size_t ct_len;
  if (out)
    *out = NULL;
  if (out_len)
    *out_len = 0;
  if (!key || !out || !out_len)
    return -EINVAL;
  if (!p || len < MG_SEAL_OVERHEAD || p[0] != VERSION)
    goto out;
  ct_len = len - MG_SEAL_OVERHEAD;
  if (!(plain = malloc(ct_len + 1))) {
    rc = -ENOMEM;
    goto out;
  }
  memcpy(tag, p + len - TAG_LEN, TAG_LEN); /* the ctrl wants it writable */
  if (!(ctx = gcm_start(key, p + 1, aad ? aad : "", 0)) ||
      update(ctx, plain, p + 1 + NONCE_LEN, ct_len) < 0 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1) {
    /* not the blob's fault: the library could not even start */
    rc = ctx ? -EIO : -ENOMEM;
    goto out;
  }
  if (EVP_DecryptFinal_ex(ctx, plain + ct_len, &outl) != 1)
    goto out; /* authentication failed: -EBADMSG */
  plain[ct_len] = '\0';
  *out = plain;
  *out_len = ct_len;
  plain = NULL;
  rc = 0;
out:
  EVP_CIPHER_CTX_free(ctx);
  if (plain) {
    /* never hand back, nor leave behind, text that did not authenticate */
    OPENSSL_cleanse(plain, ct_len);
    free(plain);
  }
  return rc;
}

int mg_sha256_hex(const void *data, size_t len, char out[65]) {
  static const char hx[] = "0123456789abcdef";
  unsigned char md[32];
  unsigned int n = 0;
  if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
    return -EIO;
  for (int i = 0; i < 32; i++) {
    out[2 * i] = hx[md[i] >> 4];
    out[2 * i + 1] = hx[md[i] & 15];
  }
  out[64] = 0;
  return 0;
}
