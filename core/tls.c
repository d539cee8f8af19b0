#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static int mkdir_parent(const char *path) {
  char dir[4096];
  snprintf(dir, sizeof(dir), "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash || slash == dir)
    return 0;
  *slash = '\0';
  if (mkdir(dir, 0700) == 0 || errno == EEXIST)
    return 0;
  return -errno;
}

static int add_ext(X509 *cert, int nid, const char *value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
  X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  if (!ex)
    return -1;
  int ok = X509_add_ext(cert, ex, -1);
  X509_EXTENSION_free(ex);
  return ok ? 0 : -1;
}

/* Write via a temp file + rename so a crash never leaves half a key. */
static int write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert) {
  char tmp[4200];
  int rc = -EIO;
  FILE *f = NULL;
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return -errno;
  if (!(f = fdopen(fd, "w"))) {
    close(fd);
    goto out;
  }
  if (key ? !PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
          : !PEM_write_X509(f, cert))
    goto out;
  if (fflush(f) || fsync(fileno(f)))
    goto out;
  rc = 0;
out:
  if (f && fclose(f) && !rc)
    rc = -EIO;
  if (!rc && rename(tmp, path))
    rc = -errno;
  if (rc)
    unlink(tmp);
  return rc;
}

static void fingerprint_of(X509 *cert, char *out, size_t outlen) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!out || !outlen)
    return;
  out[0] = '\0';
  if (!X509_digest(cert, EVP_sha256(), md, &n))
    return;
  for (unsigned i = 0; i < n && (i + 1) * 3 <= outlen; i++)
    snprintf(out + i * 3, outlen - i * 3, "%02X%s", md[i], i + 1 < n ? ":" : "");
}

static int read_fingerprint(const char *cert_path, char *fp, size_t fplen,
                            struct mg_err *err) {
  FILE *f = fopen(cert_path, "r");
  X509 *cert = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
  if (f)
    fclose(f);
  if (!cert)
    return mg_err_set(err, -EINVAL, "%s: not a readable PEM certificate",
                      cert_path);
  fingerprint_of(cert, fp, fplen);
  X509_free(cert);
  return 0;
}

int mg_tls_ensure(const char *cert_path, const char *key_path,
                  const char *listen_host, char *fp, size_t fplen,
                  struct mg_err *err) {
  EVP_PKEY *key = NULL;
  X509 *cert = NULL;
  char host[256] = "localhost", san[1024];
  int rc = 0;
  int have_cert = access(cert_path, F_OK) == 0;
  int have_key = access(key_path, F_OK) == 0;

  if (have_cert && have_key)
    return read_fingerprint(cert_path, fp, fplen, err);
  if (have_cert != have_key)
    return mg_err_set(err, -EINVAL,
                      "%s exists but %s does not: install both or neither "
                      "(refusing to overwrite)",
                      have_cert ? cert_path : key_path,
                      have_cert ? key_path : cert_path);
  if ((rc = mkdir_parent(cert_path)) || (rc = mkdir_parent(key_path)))
    return mg_err_set(err, rc, "cannot create the directory of %s: %s",
                      cert_path, strerror(-rc));

  gethostname(host, sizeof(host) - 1);
  key = EVP_EC_gen("P-256");
  cert = X509_new();
  if (!key || !cert) {
    rc = mg_err_set(err, -ENOMEM, "cannot generate a TLS key");
    goto out;
  }
  X509_set_version(cert, 2);
  /* 128-bit random serial, as RFC 5280 recommends unpredictable ones */
  {
    BIGNUM *bn = BN_new();
    if (!bn || !BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
        !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert))) {
      BN_free(bn);
      rc = mg_err_set(err, -EIO, "cannot make a certificate serial");
      goto out;
    }
    BN_free(bn);
  }
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 825L * 24 * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME *name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                             (const unsigned char *)"Madoguchi", -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             (const unsigned char *)host, -1, -1, 0);
  X509_set_issuer_name(cert, name);
  snprintf(san, sizeof(san), "DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1", host);
  if (listen_host && *listen_host && strcmp(listen_host, "0.0.0.0") &&
      strcmp(listen_host, "::") && strcmp(listen_host, "127.0.0.1")) {
    size_t n = strlen(san);
    int is_ip = strspn(listen_host, "0123456789.:abcdefABCDEF") == strlen(listen_host);
    snprintf(san + n, sizeof(san) - n, ",%s:%s", is_ip ? "IP" : "DNS", listen_host);
  }
  if (add_ext(cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
      add_ext(cert, NID_key_usage, "critical,digitalSignature,keyCertSign") ||
      add_ext(cert, NID_ext_key_usage, "serverAuth") ||
      add_ext(cert, NID_subject_key_identifier, "hash") ||
      add_ext(cert, NID_subject_alt_name, san)) {
    rc = mg_err_set(err, -EIO, "cannot build the certificate extensions");
    goto out;
  }
  if (!X509_sign(cert, key, EVP_sha256())) {
    rc = mg_err_set(err, -EIO, "cannot sign the certificate");
    goto out;
  }
  if ((rc = write_pem(key_path, 0600, key, NULL))) {
    rc = mg_err_set(err, rc, "cannot write %s: %s", key_path, strerror(-rc));
    goto out;
  }
  if ((rc = write_pem(cert_path, 0644, NULL, cert))) {
    unlink(key_path);
    rc = mg_err_set(err, rc, "cannot write %s: %s", cert_path, strerror(-rc));
    goto out;
  }
  fingerprint_of(cert, fp, fplen);
  mg_log_notice("tls", "made a self-signed certificate %s for %s", cert_path,
                host);
out:
  X509_free(cert);
  EVP_PKEY_free(key);
  return rc;
}
