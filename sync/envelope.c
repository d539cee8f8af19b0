/*
 * envelope.c — MGE1 sealed records (see envelope.h for the format).
 * OpenSSL 3 EVP only: X25519 + HKDF-SHA256 + AES-256-GCM, Ed25519.
 *
 * The signature covers everything before it plus the context, and is
 * checked before any decryption: a tampered or moved envelope is refused
 * without touching the ciphertext (X1, X3).
 */
#include "envelope.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#define MAGIC "MGE1"
#define OFF_VER 4
#define OFF_EPH 5
#define OFF_NONCE 37
#define OFF_LEN 49
#define OFF_CT 53
#define TAG_LEN 16
#define SIG_LEN 64
#define HKDF_INFO "madoguchi envelope v1"

static const char *type_name(enum mg_env_key_type t) {
  return t == MG_ENV_ED25519 ? "Ed25519" : "X25519";
}

static int type_id(enum mg_env_key_type t) {
  return t == MG_ENV_ED25519 ? EVP_PKEY_ED25519 : EVP_PKEY_X25519;
}

/* ---------------------------------------------------------------------- */
/* Keys                                                                    */

/* mkdir -p with mode 0700 for the directories we create. */
static int mkdirs(const char *dir) {
  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp))
    return -ENAMETOOLONG;
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(tmp, 0700) && errno != EEXIST)
      return -errno;
    *p = '/';
  }
  if (mkdir(tmp, 0700) && errno != EEXIST)
    return -errno;
  return 0;
}

static int key_create(const char *path, enum mg_env_key_type type,
                      EVP_PKEY **out, struct mg_err *err) {
  char dir[PATH_MAX], tmp[PATH_MAX + 16] = "";
  EVP_PKEY *k = NULL;
  FILE *f = NULL;
  int fd = -1, rc = 0;

  snprintf(dir, sizeof(dir), "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = '\0';
    if ((rc = mkdirs(dir)) < 0) {
      rc = mg_err_set(err, rc, "%s: cannot create the key's directory: %s",
                      dir, strerror(-rc));
      goto out;
    }
  } else {
    snprintf(dir, sizeof(dir), "%s", slash ? "/" : ".");
  }
  k = EVP_PKEY_Q_keygen(NULL, NULL, type == MG_ENV_ED25519 ? "ED25519" : "X25519");
  if (!k) {
    rc = mg_err_set(err, -EIO, "%s: cannot generate an %s key", path,
                    type_name(type));
    goto out;
  }
  snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid());
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || !(f = fdopen(fd, "w"))) {
    rc = mg_err_set(err, -errno, "%s: cannot create: %s", tmp, strerror(errno));
    goto out;
  }
  fd = -1;
  if (!PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) || fflush(f) ||
      fsync(fileno(f))) {
    rc = mg_err_set(err, -EIO, "%s: cannot write the key", tmp);
    goto out;
  }
  if (fclose(f)) {
    f = NULL;
    rc = mg_err_set(err, -EIO, "%s: cannot write the key", tmp);
    goto out;
  }
  f = NULL;
  if (rename(tmp, path)) {
    rc = mg_err_set(err, -errno, "%s: cannot rename into place: %s", path,
                    strerror(errno));
    goto out;
  }
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  *out = k;
  k = NULL;
out:
  if (f) {
    fclose(f);
    unlink(tmp);
  } else if (fd >= 0) {
    close(fd);
    unlink(tmp);
  } else if (rc < 0 && tmp[0]) {
    unlink(tmp);
  }
  EVP_PKEY_free(k);
  return rc;
}

int mg_env_key_load(const char *path, enum mg_env_key_type type,
                    EVP_PKEY **out, struct mg_err *err) {
  struct stat st;
  FILE *f = NULL;
  EVP_PKEY *k = NULL;
  int rc = 0;

  *out = NULL;
  if (type != MG_ENV_ED25519 && type != MG_ENV_X25519)
    return mg_err_set(err, -EINVAL, "%s: unknown key type %d", path, (int)type);
  if (stat(path, &st)) {
    if (errno == ENOENT)
      return key_create(path, type, out, err);
    return mg_err_set(err, -errno, "%s: %s", path, strerror(errno));
  }
  if (!S_ISREG(st.st_mode))
    return mg_err_set(err, -EINVAL, "%s: not a regular file", path);
  if (st.st_mode & 077)
    return mg_err_set(err, -EPERM,
                      "%s: mode %04o lets group or others read a private key "
                      "(must be 0600 or stricter)",
                      path, (unsigned)(st.st_mode & 07777));
  if (!(f = fopen(path, "r"))) {
    rc = mg_err_set(err, -errno, "%s: %s", path, strerror(errno));
    goto out;
  }
  k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
  if (!k) {
    rc = mg_err_set(err, -EINVAL, "%s: not a PEM private key (PKCS#8)", path);
    goto out;
  }
  if (EVP_PKEY_get_id(k) != type_id(type)) {
    rc = mg_err_set(err, -EINVAL, "%s: holds a %s key where an %s key is required",
                    path, OBJ_nid2sn(EVP_PKEY_get_id(k)), type_name(type));
    goto out;
  }
  *out = k;
  k = NULL;
out:
  if (f)
    fclose(f);
  EVP_PKEY_free(k);
  return rc;
}

int mg_env_pub_b64(EVP_PKEY *k, char out[MG_ENV_KEY_B64]) {
  unsigned char raw[32];
  size_t n = sizeof(raw);
  out[0] = '\0';
  if (!k || EVP_PKEY_get_raw_public_key(k, raw, &n) != 1 || n != 32)
    return -EINVAL;
  EVP_EncodeBlock((unsigned char *)out, raw, 32);
  return 0;
}

int mg_env_pub_from_b64(const char *b64, enum mg_env_key_type type,
                        EVP_PKEY **out, struct mg_err *err) {
  unsigned char *raw = NULL;
  size_t n = 0;
  int rc;
  *out = NULL;
  if (!b64)
    return mg_err_set(err, -EINVAL, "%s public key: missing", type_name(type));
  if ((rc = mg_env_unb64(b64, strlen(b64), &raw, &n, err)) < 0)
    return rc;
  if (n != 32) {
    free(raw);
    return mg_err_set(err, -EINVAL,
                      "%s public key: %zu bytes where 32 are required",
                      type_name(type), n);
  }
  *out = EVP_PKEY_new_raw_public_key(type_id(type), NULL, raw, 32);
  free(raw);
  if (!*out)
    return mg_err_set(err, -EINVAL, "%s public key: not a valid key",
                      type_name(type));
  return 0;
}

/* ---------------------------------------------------------------------- */
/* The format's pieces                                                     */

static void put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

/* AES key from X25519(priv, peer): HKDF-SHA256 with salt eph_pub ||
 * recipient_pub.  0 or -1. */
static int derive_key(EVP_PKEY *priv, EVP_PKEY *peer,
                      const unsigned char eph_pub[32],
                      const unsigned char rcpt_pub[32], unsigned char key[32]) {
  EVP_PKEY_CTX *dc = NULL;
  EVP_KDF *kdf = NULL;
  EVP_KDF_CTX *kc = NULL;
  unsigned char shared[32], salt[64];
  size_t slen = sizeof(shared);
  int rc = -1;

  if (!(dc = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL)) ||
      EVP_PKEY_derive_init(dc) != 1 || EVP_PKEY_derive_set_peer(dc, peer) != 1 ||
      EVP_PKEY_derive(dc, shared, &slen) != 1 || slen != 32)
    goto out;
  memcpy(salt, eph_pub, 32);
  memcpy(salt + 32, rcpt_pub, 32);
  if (!(kdf = EVP_KDF_fetch(NULL, "HKDF", NULL)) || !(kc = EVP_KDF_CTX_new(kdf)))
    goto out;
  OSSL_PARAM p[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, shared, 32),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt, 64),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (char *)HKDF_INFO,
                                        strlen(HKDF_INFO)),
      OSSL_PARAM_construct_end()};
  if (EVP_KDF_derive(kc, key, 32, p) != 1)
    goto out;
  rc = 0;
out:
  OPENSSL_cleanse(shared, sizeof(shared));
  EVP_KDF_CTX_free(kc);
  EVP_KDF_free(kdf);
  EVP_PKEY_CTX_free(dc);
  return rc;
}

/* buf[0..n) || context, for the signature.  NULL: no memory. */
static unsigned char *with_context(const unsigned char *buf, size_t n,
                                   const char *context, size_t *out_len) {
  size_t cl = strlen(context);
  unsigned char *m = malloc(n + cl + 1);
  if (!m)
    return NULL;
  memcpy(m, buf, n);
  memcpy(m + n, context, cl);
  *out_len = n + cl;
  return m;
}

/* GCM over one envelope: AAD = env[0, OFF_CT) || context.  `enc` 1 seals
 * `ct` bytes of `in` into `out` and writes the tag after them; 0 opens and
 * checks the tag at in + ct.  0 or -1. */
static int gcm_run(EVP_CIPHER_CTX *cc, const EVP_CIPHER *gcm,
                   const unsigned char key[32], const unsigned char *env,
                   const char *context, const unsigned char *in, size_t ct,
                   unsigned char *out, unsigned char *tag, int enc) {
  int n = 0;
  if (EVP_CipherInit_ex2(cc, gcm, key, env + OFF_NONCE, enc, NULL) != 1 ||
      EVP_CipherUpdate(cc, NULL, &n, env, OFF_CT) != 1 ||
      EVP_CipherUpdate(cc, NULL, &n, (const unsigned char *)context,
                       (int)strlen(context)) != 1 ||
      (ct && EVP_CipherUpdate(cc, out, &n, in, (int)ct) != 1))
    return -1;
  if (!enc && EVP_CIPHER_CTX_ctrl(cc, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1)
    return -1;
  if (EVP_CipherFinal_ex(cc, out + ct, &n) != 1)
    return -1;
  if (enc && EVP_CIPHER_CTX_ctrl(cc, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
    return -1;
  return 0;
}

static int check_keys(EVP_PKEY *x25519, EVP_PKEY *ed25519, const char *context,
                      struct mg_err *err) {
  if (!x25519 || !ed25519 || EVP_PKEY_get_id(x25519) != EVP_PKEY_X25519 ||
      EVP_PKEY_get_id(ed25519) != EVP_PKEY_ED25519)
    return mg_err_set(err, -EINVAL,
                      "envelope: the recipient must be an X25519 key and the "
                      "sender an Ed25519 key");
  if (!context)
    return mg_err_set(err, -EINVAL, "envelope: a context string is required");
  return 0;
}

/* What a sealer and an opener both hold: the X25519 key of the recipient
 * and the Ed25519 key of the sender (references), the cipher fetched once,
 * and a cipher and a digest context reused record after record. */
struct session {
  EVP_PKEY *x, *ed;
  EVP_CIPHER *gcm;
  EVP_CIPHER_CTX *cc;
  EVP_MD_CTX *mc;
};

static void session_done(struct session *b) {
  EVP_PKEY_free(b->x);
  EVP_PKEY_free(b->ed);
  EVP_CIPHER_free(b->gcm);
  EVP_CIPHER_CTX_free(b->cc);
  EVP_MD_CTX_free(b->mc);
}

/* 0, or an error set (b half set up: session_done it). */
static int session_init(struct session *b, EVP_PKEY *x, EVP_PKEY *ed,
                        struct mg_err *err) {
  int rc = check_keys(x, ed, "", err);
  if (rc)
    return rc;
  if (EVP_PKEY_up_ref(x) == 1)
    b->x = x;
  if (EVP_PKEY_up_ref(ed) == 1)
    b->ed = ed;
  if (!b->x || !b->ed || !(b->gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL)) ||
      !(b->cc = EVP_CIPHER_CTX_new()) || !(b->mc = EVP_MD_CTX_new()))
    return mg_err_set(err, -EIO, "envelope: cannot set up the ciphers");
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Sealing                                                                 */

/* Records sealed under one ephemeral key before the sealer takes a new
 * one; far below what random 96-bit GCM nonces allow under one key. */
#define SEALER_MAX 100000

struct mg_env_sealer {
  struct session b; /* x: the recipient, ed: the sender */
  unsigned char eph_pub[32], key[32];
  unsigned long used;
};

static int sealer_rekey(struct mg_env_sealer *s) {
  EVP_PKEY *eph = NULL;
  unsigned char rpub[32];
  size_t en = 32, rn = 32;
  int rc = -1;
  if ((eph = EVP_PKEY_Q_keygen(NULL, NULL, "X25519")) &&
      EVP_PKEY_get_raw_public_key(eph, s->eph_pub, &en) == 1 &&
      EVP_PKEY_get_raw_public_key(s->b.x, rpub, &rn) == 1 &&
      derive_key(eph, s->b.x, s->eph_pub, rpub, s->key) == 0)
    rc = 0;
  s->used = 0;
  EVP_PKEY_free(eph); /* the ephemeral private key lives no longer */
  return rc;
}

void mg_env_sealer_free(struct mg_env_sealer *s) {
  if (!s)
    return;
  OPENSSL_cleanse(s->key, sizeof(s->key));
  session_done(&s->b);
  free(s);
}

int mg_env_sealer_new(EVP_PKEY *recipient, EVP_PKEY *sender,
                      struct mg_env_sealer **out, struct mg_err *err) {
  struct mg_env_sealer *s = calloc(1, sizeof(*s));
  int rc;
  *out = NULL;
  if (!s)
    return mg_err_set(err, -ENOMEM, "out of memory");
  if ((rc = session_init(&s->b, recipient, sender, err)) ||
      (sealer_rekey(s) && (rc = mg_err_set(err, -EIO,
                                           "envelope: key agreement failed")))) {
    mg_env_sealer_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

int mg_env_sealer_seal(struct mg_env_sealer *s, const char *context,
                       const void *plain, size_t len, unsigned char **out,
                       size_t *out_len, struct mg_err *err) {
  unsigned char *env = NULL, *msg = NULL;
  size_t mlen = 0, siglen = SIG_LEN;
  int rc = -EIO;

  *out = NULL;
  *out_len = 0;
  if (!context)
    return mg_err_set(err, -EINVAL, "envelope: a context string is required");
  if (len > (size_t)INT_MAX - MG_ENV_OVERHEAD)
    return mg_err_set(err, -EINVAL, "envelope: %zu bytes is too large to seal",
                      len);
  if (s->used >= SEALER_MAX && sealer_rekey(s))
    return mg_err_set(err, -EIO, "envelope: key agreement failed");
  if (!(env = malloc(len + MG_ENV_OVERHEAD))) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  memcpy(env, MAGIC, 4);
  env[OFF_VER] = 1;
  memcpy(env + OFF_EPH, s->eph_pub, 32);
  put32(env + OFF_LEN, (uint32_t)len);
  if (RAND_bytes(env + OFF_NONCE, 12) != 1 ||
      gcm_run(s->b.cc, s->b.gcm, s->key, env, context, plain, len, env + OFF_CT,
              env + OFF_CT + len, 1)) {
    rc = mg_err_set(err, -EIO, "envelope: encryption failed");
    goto out;
  }
  s->used++;
  if (!(msg = with_context(env, OFF_CT + len + TAG_LEN, context, &mlen))) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  if (EVP_DigestSignInit(s->b.mc, NULL, NULL, NULL, s->b.ed) != 1 ||
      EVP_DigestSign(s->b.mc, env + OFF_CT + len + TAG_LEN, &siglen, msg, mlen) != 1 ||
      siglen != SIG_LEN) {
    rc = mg_err_set(err, -EIO, "envelope: signing failed");
    goto out;
  }
  *out = env;
  *out_len = len + MG_ENV_OVERHEAD;
  env = NULL;
  rc = 0;
out:
  free(env);
  free(msg);
  return rc;
}

int mg_env_seal(EVP_PKEY *recipient, EVP_PKEY *sender, const char *context,
                const void *plain, size_t len, unsigned char **out,
                size_t *out_len, struct mg_err *err) {
  struct mg_env_sealer *s = NULL;
  int rc;
  *out = NULL;
  *out_len = 0;
  if ((rc = check_keys(recipient, sender, context, err)) ||
      (rc = mg_env_sealer_new(recipient, sender, &s, err)))
    return rc;
  rc = mg_env_sealer_seal(s, context, plain, len, out, out_len, err);
  mg_env_sealer_free(s);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Opening                                                                 */

/* Ephemeral keys whose AES keys an opener keeps: a batch is sealed by a
 * few threads, one ephemeral key each. */
#define OPENER_KEYS 8

struct mg_env_opener {
  struct session b; /* x: the recipient, ed: the sender */
  unsigned char rpub[32];
  struct {
    unsigned char eph[32], key[32];
    int set;
  } k[OPENER_KEYS];
  unsigned next;
};

void mg_env_opener_free(struct mg_env_opener *o) {
  if (!o)
    return;
  OPENSSL_cleanse(o->k, sizeof(o->k));
  session_done(&o->b);
  free(o);
}

int mg_env_opener_new(EVP_PKEY *recipient, EVP_PKEY *sender_pub,
                      struct mg_env_opener **out, struct mg_err *err) {
  struct mg_env_opener *o = calloc(1, sizeof(*o));
  size_t rn = 32;
  int rc;
  *out = NULL;
  if (!o)
    return mg_err_set(err, -ENOMEM, "out of memory");
  if ((rc = session_init(&o->b, recipient, sender_pub, err)) ||
      (EVP_PKEY_get_raw_public_key(recipient, o->rpub, &rn) != 1 &&
       (rc = mg_err_set(err, -EIO, "envelope: cannot read the recipient's key")))) {
    mg_env_opener_free(o);
    return rc;
  }
  *out = o;
  return 0;
}

/* The AES key of the (signed, so authentic) ephemeral key at env + OFF_EPH:
 * from the cache, or by key agreement.  NULL when it fails. */
static const unsigned char *opener_key(struct mg_env_opener *o,
                                       const unsigned char *env) {
  EVP_PKEY *eph = NULL;
  unsigned slot;
  for (unsigned i = 0; i < OPENER_KEYS; i++)
    if (o->k[i].set && memcmp(o->k[i].eph, env + OFF_EPH, 32) == 0)
      return o->k[i].key;
  slot = o->next++ % OPENER_KEYS;
  o->k[slot].set = 0;
  if (!(eph = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, env + OFF_EPH, 32)))
    return NULL;
  if (derive_key(o->b.x, eph, env + OFF_EPH, o->rpub, o->k[slot].key)) {
    EVP_PKEY_free(eph);
    return NULL;
  }
  EVP_PKEY_free(eph);
  memcpy(o->k[slot].eph, env + OFF_EPH, 32);
  o->k[slot].set = 1;
  return o->k[slot].key;
}

int mg_env_opener_open(struct mg_env_opener *o, const char *context,
                       const void *in, size_t len, unsigned char **plain,
                       size_t *plain_len, struct mg_err *err) {
  const unsigned char *env = in, *key;
  unsigned char *msg = NULL, *pt = NULL;
  size_t mlen = 0;
  uint32_t ct = 0;
  int rc = -EBADMSG;

  *plain = NULL;
  *plain_len = 0;
  if (!context)
    return mg_err_set(err, -EINVAL, "envelope: a context string is required");
  if (len < MG_ENV_OVERHEAD)
    return mg_err_set(err, -EBADMSG,
                      "envelope: offset %zu: %zu bytes is shorter than the "
                      "%d-byte minimum",
                      len, len, MG_ENV_OVERHEAD);
  if (memcmp(env, MAGIC, 4) != 0)
    return mg_err_set(err, -EBADMSG, "envelope: offset 0: magic is not \"MGE1\"");
  if (env[OFF_VER] != 1)
    return mg_err_set(err, -EBADMSG, "envelope: offset 4: version %u is not 1",
                      (unsigned)env[OFF_VER]);
  ct = get32(env + OFF_LEN);
  size_t left = len - MG_ENV_OVERHEAD;
  if (ct > left)
    return mg_err_set(err, -EBADMSG,
                      "envelope: offset 49: ciphertext length %u exceeds the "
                      "%zu bytes left",
                      (unsigned)ct, left);
  if (ct < left)
    return mg_err_set(err, -EBADMSG,
                      "envelope: offset %zu: %zu bytes after the signature",
                      (size_t)ct + MG_ENV_OVERHEAD, left - ct);
  size_t sig_off = OFF_CT + ct + TAG_LEN;
  if (!(msg = with_context(env, sig_off, context, &mlen))) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  if (EVP_DigestVerifyInit(o->b.mc, NULL, NULL, NULL, o->b.ed) != 1) {
    rc = mg_err_set(err, -EIO, "envelope: cannot verify signatures");
    goto out;
  }
  if (EVP_DigestVerify(o->b.mc, env + sig_off, SIG_LEN, msg, mlen) != 1) {
    rc = mg_err_set(err, -EBADMSG,
                    "envelope: offset %zu: bad signature (another sender or "
                    "record, or altered bytes)",
                    sig_off);
    goto out;
  }
  if (!(key = opener_key(o, env))) {
    rc = mg_err_set(err, -EBADMSG, "envelope: offset 5: key agreement failed");
    goto out;
  }
  if (!(pt = malloc((size_t)ct + 1))) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  if (gcm_run(o->b.cc, o->b.gcm, key, env, context, env + OFF_CT, ct, pt,
              (unsigned char *)(env + OFF_CT + ct), 0)) {
    rc = mg_err_set(err, -EBADMSG,
                    "envelope: offset 53: authentication failed (not sealed "
                    "to this recipient)");
    goto out;
  }
  pt[ct] = '\0';
  *plain = pt;
  *plain_len = ct;
  pt = NULL;
  rc = 0;
out:
  if (pt) {
    OPENSSL_cleanse(pt, (size_t)ct);
    free(pt);
  }
  free(msg);
  return rc;
}

int mg_env_open(EVP_PKEY *recipient, EVP_PKEY *sender_pub,
                const char *context, const void *in, size_t len,
                unsigned char **plain, size_t *plain_len, struct mg_err *err) {
  struct mg_env_opener *o = NULL;
  int rc;
  *plain = NULL;
  *plain_len = 0;
  if ((rc = check_keys(recipient, sender_pub, context, err)) ||
      (rc = mg_env_opener_new(recipient, sender_pub, &o, err)))
    return rc;
  rc = mg_env_opener_open(o, context, in, len, plain, plain_len, err);
  mg_env_opener_free(o);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Base64                                                                  */

int mg_env_b64(const void *in, size_t len, char **out) {
  *out = NULL;
  if (len > (size_t)INT_MAX / 4 * 3 - 3)
    return -EINVAL;
  char *s = malloc((len + 2) / 3 * 4 + 1);
  if (!s)
    return -ENOMEM;
  size_t done = 0, o = 0;
  /* EVP_EncodeBlock takes an int: go in large slices (multiple of 3) */
  while (done < len) {
    size_t n = len - done;
    if (n > 3u << 20)
      n = 3u << 20;
    o += (size_t)EVP_EncodeBlock((unsigned char *)s + o,
                                 (const unsigned char *)in + done, (int)n);
    done += n;
  }
  s[o] = '\0';
  *out = s;
  return 0;
}

/* 1 + the base64 value of each byte; 0: not in the alphabet */
static const unsigned char b64_tab[256] = {
    ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6,
    ['G'] = 7, ['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12,
    ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18,
    ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30,
    ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
    ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
    ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54,
    ['2'] = 55, ['3'] = 56, ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60,
    ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64};

static int b64_val(unsigned char c) { return (int)b64_tab[c] - 1; }

int mg_env_unb64(const char *in, size_t in_len, unsigned char **out,
                 size_t *out_len, struct mg_err *err) {
  const unsigned char *s = (const unsigned char *)in;
  size_t pad = 0;
  *out = NULL;
  *out_len = 0;
  if (in_len % 4)
    return mg_err_set(err, -EINVAL,
                      "base64: offset %zu: length %zu is not a multiple of 4 "
                      "(truncated?)",
                      in_len, in_len);
  if (in_len >= 1 && s[in_len - 1] == '=')
    pad = (in_len >= 2 && s[in_len - 2] == '=') ? 2 : 1;
  for (size_t i = 0; i < in_len - pad; i++)
    if (!b64_tab[s[i]])
      return mg_err_set(err, -EINVAL,
                        "base64: offset %zu: byte 0x%02x is not a base64 "
                        "character",
                        i, (unsigned)s[i]);
  unsigned char *o = malloc(in_len / 4 * 3 + 1);
  if (!o)
    return mg_err_set(err, -ENOMEM, "out of memory");
  size_t k = 0, whole = pad ? in_len - 4 : in_len;
  /* whole groups by table; the padded last one below */
  for (size_t i = 0; i < whole; i += 4) {
    uint32_t v = (uint32_t)b64_val(s[i]) << 18 | (uint32_t)b64_val(s[i + 1]) << 12 |
                 (uint32_t)b64_val(s[i + 2]) << 6 | (uint32_t)b64_val(s[i + 3]);
    o[k++] = (unsigned char)(v >> 16);
    o[k++] = (unsigned char)(v >> 8);
    o[k++] = (unsigned char)v;
  }
  if (pad) {
    size_t i = whole;
    uint32_t v = (uint32_t)b64_val(s[i]) << 18 | (uint32_t)b64_val(s[i + 1]) << 12 |
                 (pad == 1 ? (uint32_t)b64_val(s[i + 2]) << 6 : 0);
    o[k++] = (unsigned char)(v >> 16);
    if (pad == 1)
      o[k++] = (unsigned char)(v >> 8);
  }
  /* a padded last group must not carry bits beyond what it encodes */
  if (pad && ((pad == 1 && (b64_val(s[in_len - 2]) & 0x3)) ||
              (pad == 2 && (b64_val(s[in_len - 3]) & 0xf)))) {
    free(o);
    return mg_err_set(err, -EINVAL,
                      "base64: offset %zu: non-zero bits before the padding "
                      "(not canonical)",
                      in_len - pad - 1);
  }
  o[k] = '\0';
  *out = o;
  *out_len = k;
  return 0;
}
