/*
 * tenant_ca.c — the tenant's own CA (issue 8, X3): it signs the tenant's
 * server certificate and each box's client certificate at enrolment.
 *
 * The CA and server keys are EC P-256 (what every TLS stack takes); the
 * box's certificate carries the box's Ed25519 key (TLS 1.3 client auth
 * with Ed25519 works with OpenSSL 3 on both ends: lws and libcurl), so a
 * box has one identity key for TLS and for envelope signatures.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "envelope.h"
#include "tenant.h"

#define DAY 86400L

/* Write a PEM produced by fn to path via a temp file, mode `mode`. */
static int write_pem(const char *path, int mode,
                     int (*fn)(FILE *f, void *obj), void *obj,
                     struct mg_err *err) {
  char tmp[PATH_MAX + 32]; /* path + ".tmp<pid>" */
  int rc = 0;
  int n = snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid());
  if (n < 0 || (size_t)n >= sizeof(tmp))
    return mg_err_set(err, -ENAMETOOLONG, "%s: path too long", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (!f) {
    if (fd >= 0)
      close(fd);
    return mg_err_set(err, -errno, "%s: cannot create: %s", tmp, strerror(errno));
  }
  if (!fn(f, obj) || fflush(f) || fsync(fileno(f)))
    rc = mg_err_set(err, -EIO, "%s: cannot write", tmp);
  if (fclose(f) && rc == 0)
    rc = mg_err_set(err, -EIO, "%s: cannot write", tmp);
  if (rc == 0 && rename(tmp, path))
    rc = mg_err_set(err, -errno, "%s: cannot rename into place: %s", path,
                    strerror(errno));
  if (rc)
    unlink(tmp);
  return rc;
}

static int pem_key(FILE *f, void *k) {
  return PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
}
static int pem_cert(FILE *f, void *x) { return PEM_write_X509(f, x); }

static int rand_serial(X509 *x, char hex[80]) {
  unsigned char b[16];
  BIGNUM *bn = NULL;
  char *h = NULL;
  int rc = -1;
  if (RAND_bytes(b, sizeof(b)) != 1)
    return -1;
  b[0] &= 0x7f; /* positive */
  b[0] |= 0x40; /* and always 16 bytes: 32 hex digits */
  if (!(bn = BN_bin2bn(b, sizeof(b), NULL)) ||
      !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) || !(h = BN_bn2hex(bn)))
    goto out;
  size_t j = 0;
  for (const char *p = h; *p && j + 1 < 80; p++)
    hex[j++] = (char)((*p >= 'A' && *p <= 'F') ? *p + 32 : *p);
  hex[j] = '\0';
  rc = 0;
out:
  OPENSSL_free(h);
  BN_free(bn);
  return rc;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
  X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  if (!e)
    return -1;
  int ok = X509_add_ext(x, e, -1);
  X509_EXTENSION_free(e);
  return ok ? 0 : -1;
}

/* A certificate for key with subject (CN, O), signed by issuer/ikey (self
 * when issuer is NULL). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *o,
                       X509 *issuer, EVP_PKEY *ikey, long days, int is_ca,
                       const char *san, int client, char serial[80]) {
  X509 *x = X509_new();
  X509_NAME *n;
  char tmp[80];
  if (!x || !X509_set_version(x, 2) || rand_serial(x, serial ? serial : tmp) ||
      !X509_gmtime_adj(X509_getm_notBefore(x), -300) ||
      !X509_gmtime_adj(X509_getm_notAfter(x), days * DAY) ||
      !X509_set_pubkey(x, key) || !(n = X509_get_subject_name(x)) ||
      !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
                                  -1, -1, 0) ||
      !X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)o,
                                  -1, -1, 0) ||
      !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n))
    goto fail;
  X509 *iss = issuer ? issuer : x;
  if (add_ext(x, iss, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE") ||
      add_ext(x, iss, NID_key_usage,
              is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature") ||
      add_ext(x, iss, NID_subject_key_identifier, "hash") ||
      (issuer && add_ext(x, iss, NID_authority_key_identifier, "keyid:always")) ||
      (!is_ca && add_ext(x, iss, NID_ext_key_usage, client ? "clientAuth" : "serverAuth")) ||
      (san && add_ext(x, iss, NID_subject_alt_name, san)))
    goto fail;
  if (!X509_sign(x, ikey ? ikey : key, EVP_sha256()))
    goto fail;
  return x;
fail:
  X509_free(x);
  return NULL;
}

static int exists(const char *p) { return access(p, F_OK) == 0; }

int mg_t_ca_init(const char *dir, const char *names, struct mg_err *err) {
  char p_cakey[PATH_MAX], p_ca[PATH_MAX], p_key[PATH_MAX], p_crt[PATH_MAX],
      p[PATH_MAX], san[1024];
  struct mg_t_ca ca = {0};
  EVP_PKEY *k = NULL, *ek = NULL;
  X509 *x = NULL;
  int rc = 0;

  if (mkdir(dir, 0700) && errno != EEXIST)
    return mg_err_set(err, -errno, "%s: cannot create: %s", dir, strerror(errno));
  snprintf(p_cakey, sizeof(p_cakey), "%s/ca.key", dir);
  snprintf(p_ca, sizeof(p_ca), "%s/ca.pem", dir);
  snprintf(p_key, sizeof(p_key), "%s/server.key", dir);
  snprintf(p_crt, sizeof(p_crt), "%s/server.pem", dir);
  if (exists(p_cakey) != exists(p_ca)) {
    rc = mg_err_set(err, -EINVAL,
                    "%s: only one of ca.key and ca.pem exists; refusing to make "
                    "a new CA over it",
                    dir);
    goto out;
  }
  if (!exists(p_ca)) {
    if (!(k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) ||
        !(x = make_cert(k, "madoguchi tenant CA", "madoguchi tenant", NULL,
                        NULL, 3650, 1, NULL, 0, NULL))) {
      rc = mg_err_set(err, -EIO, "cannot make the CA certificate");
      goto out;
    }
    if ((rc = write_pem(p_cakey, 0600, pem_key, k, err)) ||
        (rc = write_pem(p_ca, 0644, pem_cert, x, err)))
      goto out;
    EVP_PKEY_free(k);
    X509_free(x);
    k = NULL;
    x = NULL;
  }
  if ((rc = mg_t_ca_load(dir, &ca, err)))
    goto out;
  if (!exists(p_crt) || !exists(p_key)) {
    /* SAN: DNS:name or IP:addr for each of names */
    size_t o = 0;
    san[0] = '\0';
    const char *s = names && *names ? names : "localhost,127.0.0.1";
    while (*s) {
      const char *e = strchr(s, ',');
      size_t n = e ? (size_t)(e - s) : strlen(s);
      while (n && *s == ' ')
        s++, n--;
      if (n) {
        int ip = strspn(s, "0123456789.:") == n;
        o += (size_t)snprintf(san + o, sizeof(san) - o, "%s%s:%.*s", o ? "," : "",
                              ip ? "IP" : "DNS", (int)n, s);
        if (o >= sizeof(san)) {
          rc = mg_err_set(err, -EINVAL, "server names: too long");
          goto out;
        }
      }
      s += n;
      if (*s == ',')
        s++;
    }
    if (!(k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) ||
        !(x = make_cert(k, "madoguchi tenant", "madoguchi tenant", ca.cert,
                        ca.key, 825, 0, san, 0, NULL))) {
      rc = mg_err_set(err, -EIO, "cannot make the server certificate (names %s)",
                      san);
      goto out;
    }
    if ((rc = write_pem(p_key, 0600, pem_key, k, err)) ||
        (rc = write_pem(p_crt, 0644, pem_cert, x, err)))
      goto out;
  }
  snprintf(p, sizeof(p), "%s/tenant_recv.pem", dir);
  if ((rc = mg_env_key_load(p, MG_ENV_X25519, &ek, err)))
    goto out;
  EVP_PKEY_free(ek);
  ek = NULL;
  snprintf(p, sizeof(p), "%s/tenant_sign.pem", dir);
  if ((rc = mg_env_key_load(p, MG_ENV_ED25519, &ek, err)))
    goto out;
out:
  EVP_PKEY_free(ek);
  EVP_PKEY_free(k);
  X509_free(x);
  mg_t_ca_free(&ca);
  return rc;
}

int mg_t_ca_load(const char *dir, struct mg_t_ca *ca, struct mg_err *err) {
  char p[PATH_MAX];
  FILE *f;
  struct stat st;
  memset(ca, 0, sizeof(*ca));
  snprintf(p, sizeof(p), "%s/ca.pem", dir);
  if (!(f = fopen(p, "r")))
    return mg_err_set(err, -errno, "%s: %s (run init-ca first)", p, strerror(errno));
  ca->cert = PEM_read_X509(f, NULL, NULL, NULL);
  fclose(f);
  snprintf(p, sizeof(p), "%s/ca.key", dir);
  if (stat(p, &st) == 0 && (st.st_mode & 077)) {
    mg_t_ca_free(ca);
    return mg_err_set(err, -EPERM, "%s: mode %04o lets others read the CA key (must be 0600)",
                      p, (unsigned)(st.st_mode & 07777));
  }
  if ((f = fopen(p, "r"))) {
    ca->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
  }
  if (!ca->cert || !ca->key || X509_check_private_key(ca->cert, ca->key) != 1) {
    mg_t_ca_free(ca);
    return mg_err_set(err, -EINVAL, "%s: ca.pem and ca.key are missing, unreadable "
                      "or do not match", dir);
  }
  return 0;
}

void mg_t_ca_free(struct mg_t_ca *ca) {
  X509_free(ca->cert);
  EVP_PKEY_free(ca->key);
  ca->cert = NULL;
  ca->key = NULL;
}

static int pem_to_mem(X509 *x, char **out) {
  BIO *b = BIO_new(BIO_s_mem());
  char *p;
  long n;
  int rc = -1;
  if (b && PEM_write_bio_X509(b, x) && (n = BIO_get_mem_data(b, &p)) > 0 &&
      (*out = malloc((size_t)n + 1))) {
    memcpy(*out, p, (size_t)n);
    (*out)[n] = '\0';
    rc = 0;
  }
  BIO_free(b);
  return rc;
}

int mg_t_ca_issue(struct mg_t_ca *ca, EVP_PKEY *box_key, const char *city,
                  const char *box, char **pem, char serial[80],
                  struct mg_err *err) {
  *pem = NULL;
  X509 *x = make_cert(box_key, box, city, ca->cert, ca->key, 730, 0, NULL, 1,
                      serial);
  if (!x)
    return mg_err_set(err, -EIO, "cannot issue the box certificate");
  int rc = pem_to_mem(x, pem) ? mg_err_set(err, -ENOMEM, "out of memory") : 0;
  X509_free(x);
  return rc;
}
