/*
 * test_sshsig.c — SSHSIG verification against allowed_signers, with real
 * keys and signatures made at test time by ssh-keygen and git, our
 * verdicts cross-checked against ssh-keygen -Y verify, and every blob
 * field and allowed_signers rule broken on purpose.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "sshsig.h"

#define PRINC_A "alice@example.invalid"
#define PRINC_B "bob@example.invalid"

static char dir[64];    /* mkdtemp under /tmp */
static char pub_a[256]; /* "ssh-ed25519 AAAA..." (no comment) */
static char pub_b[256];
static char fp_a[64]; /* from ssh-keygen -l */
static char *data;    /* the signed file */
static size_t data_len;
static char *sig512, *sig256, *sig_file_ns, *sig_b; /* armored */
static time_t now_2030; /* a fixed "now" for validity tests */

/* ---- helpers ---------------------------------------------------------- */

static char *path_in(const char *name) {
  static char p[4][256];
  static int k;
  k = (k + 1) % 4;
  snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
  return p[k];
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    fail_msg("cannot open %s", path);
  char *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 8192;
      buf = realloc(buf, cap);
      assert_non_null(buf);
    }
    size_t r = fread(buf + n, 1, 4096, f);
    n += r;
    if (r == 0)
      break;
  }
  fclose(f);
  buf[n] = '\0';
  if (len)
    *len = n;
  return buf;
}

static void spew(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(p, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

/* "ssh-ed25519 AAAA... comment\n" -> "ssh-ed25519 AAAA..." */
static void read_pub(const char *key, char out[256]) {
  char pubpath[300];
  snprintf(pubpath, sizeof(pubpath), "%s.pub", key);
  char *t = slurp(pubpath, NULL);
  char *sp = strchr(t, ' ');
  assert_non_null(sp);
  sp = strchr(sp + 1, ' ');
  if (sp)
    *sp = '\0';
  t[strcspn(t, "\n")] = '\0';
  snprintf(out, 256, "%s", t);
  free(t);
}

static struct mg_signers *signers(const char *text) {
  struct mg_signers *s = NULL;
  struct mg_err err = {{0}};
  int rc = mg_signers_parse(text, strlen(text), "as", &s, &err);
  if (rc)
    fail_msg("unexpected parse error %d: %s", rc, err.msg);
  return s;
}

/* Verify sig over data against an allowed_signers text. */
static int verify_as(const char *as, const char *ns, const void *d, size_t n,
                     const char *sig, time_t now, struct mg_sshsig_result *res,
                     struct mg_err *err) {
  struct mg_signers *s = signers(as);
  int rc = mg_sshsig_verify(s, ns, d, n, sig, strlen(sig), now, res, err);
  mg_signers_free(s);
  return rc;
}

static void expect_msg(const struct mg_err *err, const char *want) {
  if (!strstr(err->msg, want))
    fail_msg("message \"%s\" lacks \"%s\"", err->msg, want);
}

/* Our verdict must be the same as `ssh-keygen -Y verify` on the same
 * allowed_signers, signature, data and time. */
static void cross_check(const char *as, const char *ns, const char *sig,
                        const void *d, size_t n, time_t now, int want_rc) {
  struct mg_err err = {{0}};
  int rc = verify_as(as, ns, d, n, sig, now, NULL, &err);
  char ts[32];
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(ts, sizeof(ts), "%Y%m%d%H%M%SZ", &tm);
  spew(path_in("x.as"), as, strlen(as));
  spew(path_in("x.sig"), sig, strlen(sig));
  spew(path_in("x.dat"), d, n);
  int ssh = run("ssh-keygen -Y verify -f %s -I " PRINC_A " -n %s -s %s "
                "-Overify-time=%s < %s >/dev/null 2>&1",
                path_in("x.as"), ns, path_in("x.sig"), ts, path_in("x.dat"));
  if (rc != want_rc)
    fail_msg("ours: %d (%s), wanted %d", rc, err.msg, want_rc);
  if ((rc == 0) != (ssh == 0))
    fail_msg("verdicts differ: ours %d (%s), ssh-keygen exit %d", rc, err.msg,
             ssh);
}

static char *line_a(const char *opts) {
  static char b[1024];
  snprintf(b, sizeof(b), PRINC_A " %s%s%s\n", opts, *opts ? " " : "", pub_a);
  return b;
}

/* ---- base64 and the blob, built independently of the code under test -- */

static unsigned char *unarmor(const char *armored, size_t *n) {
  const char *p = strchr(armored, '\n') + 1;
  const char *e = strstr(armored, "-----END");
  char *b64 = calloc(1, (size_t)(e - p) + 1);
  size_t k = 0;
  assert_non_null(b64);
  for (; p < e; p++)
    if (*p != '\n' && *p != '\r')
      b64[k++] = *p;
  unsigned char *out = calloc(1, k + 1);
  assert_non_null(out);
  int r = EVP_DecodeBlock(out, (unsigned char *)b64, (int)k);
  assert_true(r >= 0);
  *n = (size_t)r - (k && b64[k - 1] == '=') - (k > 1 && b64[k - 2] == '=');
  free(b64);
  return out;
}

static char *armor(const unsigned char *blob, size_t n) {
  size_t b64n = 4 * ((n + 2) / 3);
  char *b64 = malloc(b64n + 1);
  EVP_EncodeBlock((unsigned char *)b64, blob, (int)n);
  char *out = malloc(b64n + b64n / 70 + 80);
  char *o = out + sprintf(out, "-----BEGIN SSH SIGNATURE-----\n");
  for (size_t i = 0; i < b64n; i += 70) {
    size_t l = b64n - i < 70 ? b64n - i : 70;
    memcpy(o, b64 + i, l);
    o += l;
    *o++ = '\n';
  }
  strcpy(o, "-----END SSH SIGNATURE-----\n");
  free(b64);
  return out;
}

struct blob {
  unsigned char b[1024];
  size_t n;
};

static void put_raw(struct blob *b, const void *p, size_t n) {
  assert_true(b->n + n <= sizeof(b->b));
  memcpy(b->b + b->n, p, n);
  b->n += n;
}

static void put_u32(struct blob *b, uint32_t v) {
  unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                        (unsigned char)(v >> 8), (unsigned char)v};
  put_raw(b, x, 4);
}

static void put_str(struct blob *b, const void *p, size_t n) {
  put_u32(b, (uint32_t)n);
  put_raw(b, p, n);
}

static void put_cstr(struct blob *b, const char *s) {
  put_str(b, s, strlen(s));
}

/* Fields of a real signature, so rebuilt blobs still verify. */
struct fields {
  unsigned char key[32], sig[64];
  char ns[32], halg[16];
};

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

static void split_sig(const char *armored, struct fields *f) {
  size_t n;
  unsigned char *b = unarmor(armored, &n), *p = b + 10;
  assert_memory_equal(b, "SSHSIG\0\0\0\1", 10);
  p += 4 + 4 + 11 + 4; /* publickey len, type len, type, key len */
  memcpy(f->key, p, 32);
  p += 32;
  uint32_t l = get_u32(p);
  memcpy(f->ns, p + 4, l), f->ns[l] = '\0';
  p += 4 + l;
  p += 4 + get_u32(p); /* reserved */
  l = get_u32(p);
  memcpy(f->halg, p + 4, l), f->halg[l] = '\0';
  p += 4 + l;
  p += 4 + 4 + 11; /* signature string len, type len, type */
  memcpy(f->sig, p + 4, 64);
  assert_int_equal(p + 4 + 64, b + n);
  free(b);
}

struct knobs { /* what to break while rebuilding */
  const char *magic, *keytype, *ns, *reserved, *halg, *sigtype;
  uint32_t version;
  size_t keylen, siglen, trailing, key_trailing;
};

static void build(const struct fields *f, const struct knobs *k,
                  struct blob *b) {
  struct blob pk = {.n = 0}, sg = {.n = 0};
  unsigned char key[40] = {0}, sig[80] = {0};
  memcpy(key, f->key, 32);
  memcpy(sig, f->sig, 64);
  put_cstr(&pk, k->keytype ? k->keytype : "ssh-ed25519");
  put_str(&pk, key, k->keylen ? k->keylen : 32);
  for (size_t i = 0; i < k->key_trailing; i++)
    put_raw(&pk, "k", 1);
  put_cstr(&sg, k->sigtype ? k->sigtype : "ssh-ed25519");
  put_str(&sg, sig, k->siglen ? k->siglen : 64);
  b->n = 0;
  put_raw(b, k->magic ? k->magic : "SSHSIG", 6);
  put_u32(b, k->version ? k->version : 1);
  put_str(b, pk.b, pk.n);
  put_cstr(b, k->ns ? k->ns : f->ns);
  put_cstr(b, k->reserved ? k->reserved : "");
  put_cstr(b, k->halg ? k->halg : f->halg);
  put_str(b, sg.b, sg.n);
  for (size_t i = 0; i < k->trailing; i++)
    put_raw(b, "x", 1);
}

static int verify_blob(const unsigned char *b, size_t n, struct mg_err *err) {
  char *a = armor(b, n);
  int rc = verify_as(line_a(""), "git", data, data_len, a, now_2030, NULL, err);
  free(a);
  return rc;
}

/* ---- fixtures --------------------------------------------------------- */

static int group_setup(void **state) {
  (void)state;
  strcpy(dir, "/tmp/test_sshsig.XXXXXX");
  if (!mkdtemp(dir))
    return -1;
  unsetenv("SSH_AUTH_SOCK"); /* sign with the key files, not an agent */
  setenv("HOME", dir, 1);    /* keep the user's git config out */
  setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
  if (run("cd %s && ssh-keygen -q -t ed25519 -N '' -C a -f a && "
          "ssh-keygen -q -t ed25519 -N '' -C b -f b && "
          "head -c 5000 /dev/urandom > data && "
          "ssh-keygen -q -Y sign -n git -f a data 2>/dev/null && "
          "mv data.sig data.sig512 && "
          "ssh-keygen -q -Y sign -n git -f a -O hashalg=sha256 data "
          "2>/dev/null && mv data.sig data.sig256 && "
          "ssh-keygen -q -Y sign -n file -f a data 2>/dev/null && "
          "mv data.sig data.sigfile && "
          "ssh-keygen -q -Y sign -n git -f b data 2>/dev/null && "
          "mv data.sig data.sigb && "
          "ssh-keygen -l -f a.pub | cut -d' ' -f2 > a.fp",
          dir))
    return -1;
  read_pub(path_in("a"), pub_a);
  read_pub(path_in("b"), pub_b);
  char *fp = slurp(path_in("a.fp"), NULL);
  fp[strcspn(fp, "\n")] = '\0';
  snprintf(fp_a, sizeof(fp_a), "%s", fp);
  free(fp);
  data = slurp(path_in("data"), &data_len);
  sig512 = slurp(path_in("data.sig512"), NULL);
  sig256 = slurp(path_in("data.sig256"), NULL);
  sig_file_ns = slurp(path_in("data.sigfile"), NULL);
  sig_b = slurp(path_in("data.sigb"), NULL);
  struct tm tm = {.tm_year = 130, .tm_mon = 0, .tm_mday = 1, .tm_hour = 12};
  now_2030 = timegm(&tm);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  free(data);
  free(sig512);
  free(sig256);
  free(sig_file_ns);
  free(sig_b);
  if (strncmp(dir, "/tmp/test_sshsig.", 17) == 0)
    run("rm -rf '%s'", dir);
  return 0;
}

/* ---- good signatures -------------------------------------------------- */

static void test_good_sha512(void **state) {
  (void)state;
  struct mg_sshsig_result res;
  struct mg_err err = {{0}};
  struct fields f;
  split_sig(sig512, &f);
  assert_string_equal(f.halg, "sha512");
  int rc = verify_as(line_a(""), "git", data, data_len, sig512, time(NULL),
                     &res, &err);
  if (rc)
    fail_msg("%d: %s", rc, err.msg);
  assert_string_equal(res.principal, PRINC_A);
  assert_string_equal(res.fingerprint, fp_a);
  assert_int_equal(strncmp(fp_a, "SHA256:", 7), 0);
  cross_check(line_a(""), "git", sig512, data, data_len, now_2030, 0);
}

static void test_good_sha256(void **state) {
  (void)state;
  struct fields f;
  split_sig(sig256, &f);
  assert_string_equal(f.halg, "sha256");
  cross_check(line_a(""), "git", sig256, data, data_len, now_2030, 0);
}

static void test_null_res_and_err(void **state) {
  (void)state;
  struct mg_signers *s = signers(line_a(""));
  assert_int_equal(mg_sshsig_verify(s, "git", data, data_len, sig512,
                                    strlen(sig512), now_2030, NULL, NULL),
                   0);
  assert_int_equal(mg_sshsig_verify(s, "git", data, 1, sig512, strlen(sig512),
                                    now_2030, NULL, NULL),
                   -EBADE);
  assert_int_equal(mg_sshsig_verify(s, "", data, data_len, sig512,
                                    strlen(sig512), now_2030, NULL, NULL),
                   -EINVAL);
  assert_int_equal(mg_sshsig_verify(NULL, "git", data, data_len, sig512,
                                    strlen(sig512), now_2030, NULL, NULL),
                   -EINVAL);
  mg_signers_free(s);
}

static void test_empty_data(void **state) {
  (void)state;
  assert_int_equal(run("cd %s && : > empty && ssh-keygen -q -Y sign -n git "
                       "-f a empty 2>/dev/null",
                       dir),
                   0);
  char *sig = slurp(path_in("empty.sig"), NULL);
  cross_check(line_a(""), "git", sig, "", 0, now_2030, 0);
  struct mg_signers *s = signers(line_a(""));
  assert_int_equal(mg_sshsig_verify(s, "git", NULL, 0, sig, strlen(sig),
                                    now_2030, NULL, NULL),
                   0);
  mg_signers_free(s);
  free(sig);
}

/* ---- rejections ------------------------------------------------------- */

static void test_wrong_namespace(void **state) {
  (void)state;
  struct mg_err err = {{0}};
  assert_int_equal(verify_as(line_a(""), "git", data, data_len, sig_file_ns,
                             now_2030, NULL, &err),
                   -EBADMSG);
  expect_msg(&err, "namespace \"file\" is not the expected \"git\"");
  cross_check(line_a(""), "git", sig_file_ns, data, data_len, now_2030,
              -EBADMSG);
  /* and the same signature is good in its own namespace */
  cross_check(line_a(""), "file", sig_file_ns, data, data_len, now_2030, 0);
}

static void test_key_not_listed(void **state) {
  (void)state;
  char as[1024];
  struct mg_err err = {{0}};
  struct mg_sshsig_result res;
  snprintf(as, sizeof(as), PRINC_B " %s\n", pub_b);
  assert_int_equal(
      verify_as(as, "git", data, data_len, sig512, now_2030, &res, &err),
      -EKEYREJECTED);
  expect_msg(&err, "is not listed in as");
  expect_msg(&err, fp_a);
  assert_string_equal(res.principal, "");
  cross_check(as, "git", sig512, data, data_len, now_2030, -EKEYREJECTED);
  /* an empty file lists nobody */
  cross_check("# nobody\n", "git", sig512, data, data_len, now_2030,
              -EKEYREJECTED);
}

static void test_second_key_principal(void **state) {
  (void)state;
  char as[1024];
  struct mg_sshsig_result res;
  struct mg_err err = {{0}};
  snprintf(as, sizeof(as), PRINC_B " %s\n" PRINC_A ",alt@x %s\n", pub_b, pub_a);
  assert_int_equal(
      verify_as(as, "git", data, data_len, sig512, now_2030, &res, &err), 0);
  assert_string_equal(res.principal, PRINC_A ",alt@x");
  assert_int_equal(
      verify_as(as, "git", data, data_len, sig_b, now_2030, &res, &err), 0);
  assert_string_equal(res.principal, PRINC_B);
  assert_string_not_equal(res.fingerprint, fp_a);
}

static void test_long_principals_first_only(void **state) {
  (void)state;
  char as[2048], many[600];
  struct mg_sshsig_result res;
  memset(many, 'x', sizeof(many));
  memcpy(many, "first@x,", 8);
  many[sizeof(many) - 1] = '\0';
  snprintf(as, sizeof(as), "%s %s\n", many, pub_a);
  assert_int_equal(
      verify_as(as, "git", data, data_len, sig512, now_2030, &res, NULL), 0);
  assert_string_equal(res.principal, "first@x");
}

static void test_namespaces_option(void **state) {
  (void)state;
  struct mg_err err = {{0}};
  cross_check(line_a("namespaces=\"git\""), "git", sig512, data, data_len,
              now_2030, 0);
  cross_check(line_a("namespaces=\"file,g?t\""), "git", sig512, data, data_len,
              now_2030, 0);
  cross_check(line_a("NameSpaces=\"*\""), "git", sig512, data, data_len,
              now_2030, 0);
  cross_check(line_a("namespaces=\"file\""), "git", sig512, data, data_len,
              now_2030, -EKEYREJECTED);
  cross_check(line_a("namespaces=\"*,!git\""), "git", sig512, data, data_len,
              now_2030, -EKEYREJECTED);
  assert_int_equal(verify_as(line_a("namespaces=\"file,x*\""), "git", data,
                             data_len, sig512, now_2030, NULL, &err),
                   -EKEYREJECTED);
  expect_msg(&err, "as:1 is not allowed for namespace \"git\"");
  expect_msg(&err, fp_a);
}

static void test_same_key_two_lines(void **state) {
  (void)state;
  char as[1024];
  struct mg_sshsig_result res;
  snprintf(as, sizeof(as),
           "files@x namespaces=\"file\" %s\n" PRINC_A
           " namespaces=\"git\" %s\n",
           pub_a, pub_a);
  assert_int_equal(
      verify_as(as, "git", data, data_len, sig512, now_2030, &res, NULL), 0);
  assert_string_equal(res.principal, PRINC_A);
}

static void test_validity(void **state) {
  (void)state;
  struct mg_err err = {{0}};
  struct tm tm = {.tm_year = 130, .tm_mon = 0, .tm_mday = 1};
  time_t midnight = timegm(&tm);
  /* not yet valid, then valid from the exact second */
  const char *va = line_a("valid-after=\"20300101Z\"");
  assert_int_equal(
      verify_as(va, "git", data, data_len, sig512, midnight - 1, NULL, &err),
      -EKEYREJECTED);
  expect_msg(&err, "as:1 is not valid before 2030-01-01T00:00:00Z");
  assert_int_equal(
      verify_as(va, "git", data, data_len, sig512, midnight, NULL, &err), 0);
  cross_check(va, "git", sig512, data, data_len, midnight - 3600,
              -EKEYREJECTED);
  cross_check(va, "git", sig512, data, data_len, midnight + 3600, 0);
  /* expired; valid up to and including the second */
  const char *vb = line_a("valid-before=\"203001010000Z\"");
  assert_int_equal(
      verify_as(vb, "git", data, data_len, sig512, midnight + 1, NULL, &err),
      -EKEYREJECTED);
  expect_msg(&err, "expired at 2030-01-01T00:00:00Z");
  expect_msg(&err, fp_a);
  assert_int_equal(
      verify_as(vb, "git", data, data_len, sig512, midnight, NULL, &err), 0);
  cross_check(vb, "git", sig512, data, data_len, midnight + 86400,
              -EKEYREJECTED);
  /* a window, seconds precision */
  const char *w =
      line_a("valid-after=\"20291231235959Z\",valid-before=\"20300102Z\"");
  cross_check(w, "git", sig512, data, data_len, midnight, 0);
  cross_check(w, "git", sig512, data, data_len, midnight - 2, -EKEYREJECTED);
  /* local time without Z parses (value depends on TZ) */
  struct mg_signers *s = signers(line_a("valid-after=\"20200101\""));
  assert_int_equal(mg_signers_count(s), 1);
  mg_signers_free(s);
}

static void test_tampered_data(void **state) {
  (void)state;
  struct mg_err err = {{0}};
  char *d = malloc(data_len);
  memcpy(d, data, data_len);
  d[data_len / 2] ^= 1;
  assert_int_equal(
      verify_as(line_a(""), "git", d, data_len, sig512, now_2030, NULL, &err),
      -EBADE);
  expect_msg(&err, "does not match the data");
  assert_int_equal(ERR_peek_error(), 0); /* no stale OpenSSL errors left */
  cross_check(line_a(""), "git", sig512, d, data_len, now_2030, -EBADE);
  cross_check(line_a(""), "git", sig256, d, data_len - 1, now_2030, -EBADE);
  free(d);
}

static void test_tampered_signature(void **state) {
  (void)state;
  struct fields f;
  struct knobs k = {0};
  struct blob b;
  struct mg_err err = {{0}};
  split_sig(sig512, &f);
  build(&f, &k, &b); /* unchanged rebuild must verify: the builder is right */
  assert_int_equal(verify_blob(b.b, b.n, &err), 0);
  for (size_t i = 0; i < 64; i += 7) {
    struct fields g = f;
    g.sig[i] ^= 0x10;
    build(&g, &k, &b);
    assert_int_equal(verify_blob(b.b, b.n, &err), -EBADE);
  }
  struct fields g = f;
  g.key[3] ^= 1; /* another key: not listed */
  build(&g, &k, &b);
  assert_int_equal(verify_blob(b.b, b.n, &err), -EKEYREJECTED);
  /* sha256 signature relabelled sha512 no longer matches */
  split_sig(sig256, &g);
  k.halg = "sha512";
  build(&g, &k, &b);
  assert_int_equal(verify_blob(b.b, b.n, &err), -EBADE);
}

static void test_reserved_is_ignored(void **state) {
  (void)state;
  struct fields f;
  struct knobs k = {.reserved = "anything"};
  struct blob b;
  split_sig(sig512, &f);
  build(&f, &k, &b);
  char *a = armor(b.b, b.n);
  cross_check(line_a(""), "git", a, data, data_len, now_2030, 0);
  free(a);
}

/* ---- malformed blobs -------------------------------------------------- */

static void test_blob_fields(void **state) {
  (void)state;
  struct fields f;
  struct blob b;
  struct mg_err err = {{0}};
  split_sig(sig512, &f);
  static const struct {
    struct knobs k;
    int rc;
    const char *msg;
  } cases[] = {
      {{.magic = "SSHSIH"}, -EBADMSG, "magic"},
      {{.version = 2}, -EBADMSG, "version 2 is not supported"},
      {{.version = 0xffffffff}, -EBADMSG, "version"},
      {{.keytype = "ssh-rsa"}, -ENOTSUP, "only ssh-ed25519"},
      {{.keytype = "sk-ssh-ed25519@openssh.com"}, -ENOTSUP, "not supported"},
      {{.keylen = 31}, -EBADMSG, "is 31 bytes, not 32"},
      {{.keylen = 33}, -EBADMSG, "is 33 bytes, not 32"},
      {{.key_trailing = 2}, -EBADMSG, "publickey: 2 bytes of trailing data"},
      {{.ns = ""}, -EBADMSG, "namespace is empty"},
      {{.ns = "gi"}, -EBADMSG, "namespace \"gi\""},
      {{.ns = "git\n"}, -EBADMSG, "namespace \"git?\""},
      {{.halg = "sha1"}, -ENOTSUP, "hash_algorithm \"sha1\""},
      {{.halg = "SHA512"}, -ENOTSUP, "hash_algorithm"},
      {{.halg = ""}, -ENOTSUP, "hash_algorithm"},
      {{.sigtype = "ssh-rsa"}, -EBADMSG, "signature type \"ssh-rsa\""},
      {{.siglen = 63}, -EBADMSG, "exactly 64"},
      {{.siglen = 65}, -EBADMSG, "exactly 64"},
      {{.trailing = 1}, -EBADMSG, "1 bytes of trailing data"},
      {{.trailing = 100}, -EBADMSG, "trailing"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    build(&f, &cases[i].k, &b);
    err.msg[0] = '\0';
    int rc = verify_blob(b.b, b.n, &err);
    if (rc != cases[i].rc || !strstr(err.msg, cases[i].msg))
      fail_msg("case %zu: %d \"%s\", want %d \"%s\"", i, rc, err.msg,
               cases[i].rc, cases[i].msg);
  }
}

/* Every uint32 length in the blob set to huge values must be caught. */
static void test_blob_lying_lengths(void **state) {
  (void)state;
  struct fields f;
  struct knobs k = {0};
  struct blob b;
  struct mg_err err = {{0}};
  split_sig(sig512, &f);
  build(&f, &k, &b);
  /* offsets of the length fields in a standard blob */
  size_t o_pub = 10, o_kt = 14, o_key = 14 + 4 + 11, o_ns = o_pub + 4 + 51;
  size_t o_res = o_ns + 4 + 3, o_halg = o_res + 4, o_sig = o_halg + 4 + 6;
  size_t o_st = o_sig + 4, o_sb = o_st + 4 + 11;
  const struct {
    size_t off;
    const char *msg;
  } at[] = {{o_pub, "signature blob: publickey length"},
            {o_kt, "publickey: key type length"},
            {o_key, "publickey: key length"},
            {o_ns, "signature blob: namespace length"},
            {o_res, "signature blob: reserved length"},
            {o_halg, "signature blob: hash_algorithm length"},
            {o_sig, "signature blob: signature length"},
            {o_st, "signature: type length"},
            {o_sb, "signature: bytes length"}};
  static const uint32_t lies[] = {0xffffffffu, 0x80000000u, 0x7fffffffu,
                                  0xfffffffcu, 1000};
  assert_int_equal(o_sb + 4 + 64, b.n);
  for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++)
    for (size_t j = 0; j < sizeof(lies) / sizeof(lies[0]); j++) {
      struct blob c = b;
      c.b[at[i].off] = (unsigned char)(lies[j] >> 24);
      c.b[at[i].off + 1] = (unsigned char)(lies[j] >> 16);
      c.b[at[i].off + 2] = (unsigned char)(lies[j] >> 8);
      c.b[at[i].off + 3] = (unsigned char)lies[j];
      err.msg[0] = '\0';
      int rc = verify_blob(c.b, c.n, &err);
      if (rc != -EBADMSG || !strstr(err.msg, at[i].msg) ||
          !strstr(err.msg, "runs past the end"))
        fail_msg("field %zu lie %#x: %d \"%s\"", i, (unsigned)lies[j], rc,
                 err.msg);
    }
  /* the exact message the brief promises */
  struct blob c = b;
  memset(c.b + o_ns, 0xff, 4);
  verify_blob(c.b, c.n, &err);
  expect_msg(&err, "signature blob: namespace length 4294967295 runs past "
                   "the end");
}

static void test_blob_truncated_everywhere(void **state) {
  (void)state;
  struct fields f;
  struct knobs k = {0};
  struct blob b;
  struct mg_err err = {{0}};
  split_sig(sig512, &f);
  build(&f, &k, &b);
  for (size_t n = 0; n < b.n; n++) {
    err.msg[0] = '\0';
    int rc = verify_blob(b.b, n, &err);
    if (rc != -EBADMSG)
      fail_msg("truncated at %zu: %d \"%s\"", n, rc, err.msg);
  }
  assert_int_equal(verify_blob(b.b, b.n, &err), 0);
}

/* ---- armor ------------------------------------------------------------ */

static int verify_text(const char *sig, struct mg_err *err) {
  return verify_as(line_a(""), "git", data, data_len, sig, now_2030, NULL, err);
}

static char *replace(const char *s, const char *from, const char *to) {
  const char *p = strstr(s, from);
  assert_non_null(p);
  char *out = malloc(strlen(s) + strlen(to) + 1);
  sprintf(out, "%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
  return out;
}

static void test_armor(void **state) {
  (void)state;
  struct mg_err err = {{0}};
  size_t n = strlen(sig512);
  char *s;
  /* no trailing newline, CRLF line ends: fine */
  s = strndup(sig512, n - 1);
  assert_int_equal(verify_text(s, &err), 0);
  free(s);
  s = malloc(2 * n + 1);
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (sig512[i] == '\n')
      s[o++] = '\r';
    s[o++] = sig512[i];
  }
  s[o] = '\0';
  assert_int_equal(verify_text(s, &err), 0);
  free(s);
  static const struct {
    const char *from, *to, *msg;
  } cases[] = {
      {"-----BEGIN SSH SIGNATURE-----", "-----BEGIN SSH SIGNATURE----",
       "does not start"},
      {"-----BEGIN", " -----BEGIN", "does not start"},
      {"-----END SSH SIGNATURE-----", "-----END SIGNATURE-----",
       "does not end"},
      {"-----END SSH SIGNATURE-----\n", "-----END SSH SIGNATURE-----\nx\n",
       "does not end"},
      {"SIGNATURE-----\nU1NI", "SIGNATURE-----\n\nU1NI", "line 2 is empty"},
      {"SIGNATURE-----\nU1NI", "SIGNATURE-----\nU1 NI", "non-base64"},
      {"SIGNATURE-----\nU1NI", "SIGNATURE-----\nU1N*", "non-base64"},
      {"SIGNATURE-----\nU1NI", "SIGNATURE-----\nU1N", "base64 is malformed"},
      {"SIGNATURE-----\nU1NI", "SIGNATURE-----\nU1N=", "base64 is malformed"},
      {"SIGNATURE-----\nU1NI", "SIGNATURE-----\nU1NIU", "base64 is malformed"},
      {"SIGNATURE-----\nU1NI",
       "SIGNATURE-----\nU1NIU===", "base64 is malformed"},
      {"SIGNATURE-----\nU1NI", "SIGNATURE-----\nZZ==U1NI",
       "base64 is malformed"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    s = replace(sig512, cases[i].from, cases[i].to);
    err.msg[0] = '\0';
    int rc = verify_text(s, &err);
    if (rc != -EBADMSG || !strstr(err.msg, cases[i].msg))
      fail_msg("case %zu: %d \"%s\"", i, rc, err.msg);
    free(s);
  }
  /* non-canonical final base64 character (unused bits set) */
  s = strdup(sig512);
  char *eq = strstr(s, "=\n-----END");
  if (eq) {
    eq[-1] = eq[-1] == 'M' ? 'N' : (char)(eq[-1] ^ 1);
    assert_int_equal(verify_text(s, &err), -EBADMSG);
  }
  free(s);
  assert_int_equal(verify_text("", &err), -EBADMSG);
  assert_int_equal(verify_text("-----BEGIN SSH SIGNATURE-----\n"
                               "-----END SSH SIGNATURE-----\n",
                               &err),
                   -EBADMSG);
  expect_msg(&err, "no base64");
}

static void test_armor_truncated_everywhere(void **state) {
  (void)state;
  struct mg_signers *s = signers(line_a(""));
  size_t n = strlen(sig512);
  for (size_t i = 0; i + 1 < n; i++) {
    char *t = malloc(i ? i : 1); /* exact size: ASan catches over-reads */
    memcpy(t, sig512, i);
    int rc =
        mg_sshsig_verify(s, "git", data, data_len, t, i, now_2030, NULL, NULL);
    if (rc != -EBADMSG)
      fail_msg("armor cut at %zu: %d", i, rc);
    free(t);
  }
  mg_signers_free(s);
}

/* ---- allowed_signers parsing ------------------------------------------ */

static void parse_bad(const char *text, const char *where, const char *want) {
  struct mg_signers *s = (struct mg_signers *)1;
  struct mg_err err = {{0}};
  int rc = mg_signers_parse(text, strlen(text), "as", &s, &err);
  if (rc >= 0)
    fail_msg("accepted: %s", text);
  assert_null(s);
  if (!strstr(err.msg, where) || !strstr(err.msg, want))
    fail_msg("message \"%s\" lacks \"%s\" / \"%s\"", err.msg, where, want);
}

static void test_signers_good(void **state) {
  (void)state;
  char as[2048];
  snprintf(as, sizeof(as),
           "# comment\n"
           "\n"
           "   \t\n"
           "   %s %s with a comment \"unbalanced\r\n"
           "\"Alice Example,a@x\" namespaces=\"git\" %s\n"
           "  b@x,*@city.example VALID-AFTER=\"20200101Z\",namespaces=\"a b\" "
           "%s c\n",
           PRINC_B, pub_b, pub_a, pub_a);
  /* the last line has a space in namespaces: rejected */
  parse_bad(as, "as:6:", "namespaces");
  snprintf(as, sizeof(as),
           "# comment\n"
           "\n"
           "   \t\n"
           "   %s %s with a comment \"unbalanced\r\n"
           "\"Alice Example,a@x\" namespaces=\"git\" %s\r\n"
           "  b@x,*@city.example VALID-AFTER=\"20200101Z\",namespaces=\"a,b\" "
           "%s c",
           PRINC_B, pub_b, pub_a, pub_a);
  struct mg_signers *s = signers(as);
  assert_int_equal(mg_signers_count(s), 3);
  struct mg_sshsig_result res;
  assert_int_equal(mg_sshsig_verify(s, "git", data, data_len, sig512,
                                    strlen(sig512), now_2030, &res, NULL),
                   0);
  assert_string_equal(res.principal, "Alice Example,a@x");
  mg_signers_free(s);
  s = signers("");
  assert_int_equal(mg_signers_count(s), 0);
  mg_signers_free(s);
  assert_int_equal(mg_signers_count(NULL), 0);
  mg_signers_free(NULL);
}

static void test_signers_errors(void **state) {
  (void)state;
  char l[1024];
  const char *key_b64 = strchr(pub_a, ' ') + 1;
  /* the error is on line 3, after a comment and a blank line */
#define BAD(fmt, want, ...)                                                    \
  do {                                                                         \
    snprintf(l, sizeof(l), "# c\n\n  " fmt "\n", __VA_ARGS__);                 \
    parse_bad(l, "as:3:", want);                                               \
  } while (0)
  BAD("a@x ssh-foo %s", "unknown key type \"ssh-foo\"", key_b64);
  BAD("a@x %s", "unknown key type", key_b64);
  BAD("a@x ssh-rsa %s", "only ssh-ed25519 keys are supported", key_b64);
  BAD("a@x namespaces=\"git\" ecdsa-sha2-nistp256 %s",
      "only ssh-ed25519 keys are supported", key_b64);
  BAD("a@x ssh-ed25519-cert-v01@openssh.com %s",
      "only ssh-ed25519 keys are supported", key_b64);
  BAD("a@x ssh-ed25519 %s*", "bad base64", key_b64);
  BAD("a@x ssh-ed25519 %.61s", "bad base64", key_b64);
  BAD("a@x ssh-ed25519 %s", "bad base64", "AAAAC3NzaC1lZDI1NTE5AAAAI=");
  /* decodes, but to an RSA-type blob / a short key */
  BAD("a@x ssh-ed25519 %s", "does not decode to ssh-ed25519 + 32 bytes",
      "AAAAB3NzaC1yc2EAAAADAQAB");
  BAD("a@x ssh-ed25519 %s", "does not decode to ssh-ed25519 + 32 bytes",
      "AAAAC3NzaC1lZDI1NTE5AAAAAQA=");
  BAD("a@x ssh-ed25519 %s", "does not decode to ssh-ed25519 + 32 bytes",
      "AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAeA"
      "==");
  BAD("a@x foo=\"bar\" ssh-ed25519 %s", "unknown option \"foo\"", key_b64);
  BAD("a@x no-touch-required ssh-ed25519 %s", "unknown option", key_b64);
  BAD("a@x cert-authority ssh-ed25519 %s", "cert-authority is not supported",
      key_b64);
  BAD("a@x valid-after=\"2024133\" ssh-ed25519 %s", "malformed valid-after",
      key_b64);
  BAD("a@x valid-after=\"20240230\" ssh-ed25519 %s", "malformed valid-after",
      key_b64);
  BAD("a@x valid-before=\"20240101235960Z\" ssh-ed25519 %s",
      "malformed valid-before", key_b64);
  BAD("a@x valid-before=\"202401011260Z\" ssh-ed25519 %s",
      "malformed valid-before", key_b64);
  BAD("a@x valid-before=\"2024010112Z\" ssh-ed25519 %s",
      "malformed valid-before", key_b64);
  BAD("a@x valid-after=20240101 ssh-ed25519 %s", "double quotes", key_b64);
  BAD("a@x valid-after=\"20250101\",valid-before=\"20240101\" ssh-ed25519 %s",
      "later than valid-before", key_b64);
  BAD("a@x namespaces=\"git\",namespaces=\"x\" ssh-ed25519 %s", "given twice",
      key_b64);
  BAD("a@x namespaces=\"\" ssh-ed25519 %s", "empty", key_b64);
  BAD("a@x namespaces=\"git\", ssh-ed25519 %s", "end with ','", key_b64);
  BAD("a@x namespaces=\"git\"x ssh-ed25519 %s", "expected ','", key_b64);
  BAD("a@x namespaces=\"git ssh-ed25519 %s", "unterminated quote", key_b64);
  BAD("\"a@x ssh-ed25519 %s", "unterminated quote", key_b64);
  BAD("\"a@x\"b ssh-ed25519 %s", "closing quote", key_b64);
  BAD("a\"@x\" ssh-ed25519 %s", "stray quote", key_b64);
  BAD("a@x,,b@x ssh-ed25519 %s", "empty principal", key_b64);
  BAD("a@x, ssh-ed25519 %s", "empty principal", key_b64);
  BAD("a@x%s", "missing key", "");
  BAD("a@x ssh-ed25519%s", "missing key", "");
  BAD("a@x namespaces=\"git\" ssh-ed25519%s", "missing key", "");
  BAD("a@x namespaces=\"git\"%s", "missing key", "");
#undef BAD
  /* a NUL byte is an error, not the end of the text */
  struct mg_signers *s = NULL;
  struct mg_err err = {{0}};
  int ln = snprintf(l, sizeof(l), "# c\na@x ssh-ed25519 %s@ x\n", key_b64);
  l[strlen(l) - 4] = '\0';
  assert_int_equal(mg_signers_parse(l, (size_t)ln, "as", &s, &err), -EINVAL);
  assert_null(s);
  expect_msg(&err, "as:2: NUL byte");
}

static void test_signers_load(void **state) {
  (void)state;
  struct mg_signers *s = NULL;
  struct mg_err err = {{0}};
  char text[1024];
  snprintf(text, sizeof(text), "%s %s\n%s %s\n", PRINC_A, pub_a, PRINC_B,
           pub_b);
  spew(path_in("allowed"), text, strlen(text));
  assert_int_equal(mg_signers_load(path_in("allowed"), &s, &err), 0);
  assert_int_equal(mg_signers_count(s), 2);
  mg_signers_free(s);
  strcat(text, "c@x ssh-dss AAAA\n");
  spew(path_in("allowed"), text, strlen(text));
  assert_int_equal(mg_signers_load(path_in("allowed"), &s, &err), -EINVAL);
  assert_null(s);
  expect_msg(&err, path_in("allowed"));
  expect_msg(&err, "allowed:3: key type ssh-dss: only ssh-ed25519");
  assert_int_equal(mg_signers_load(path_in("nope"), &s, &err), -ENOENT);
  expect_msg(&err, "nope");
  assert_int_equal(mg_signers_load(dir, &s, &err), -EINVAL);
}

/* ---- the way the pack puller uses it: a signed git commit -------------- */

/* Split `git cat-file commit` output into the gpgsig value (continuation
 * lines lose their one leading space) and the payload without it. */
static void split_commit(const char *obj, char **sig, char **payload) {
  size_t n = strlen(obj);
  char *s = calloc(1, n + 1), *p = calloc(1, n + 1);
  size_t so = 0, po = 0;
  int in_headers = 1, in_sig = 0;
  for (const char *l = obj; *l;) {
    const char *nl = strchr(l, '\n');
    size_t ll = nl ? (size_t)(nl - l) + 1 : strlen(l);
    if (in_headers && ll == 1)
      in_headers = 0;
    if (in_headers && strncmp(l, "gpgsig ", 7) == 0) {
      in_sig = 1;
      memcpy(s + so, l + 7, ll - 7), so += ll - 7;
    } else if (in_sig && l[0] == ' ') {
      memcpy(s + so, l + 1, ll - 1), so += ll - 1;
    } else {
      in_sig = 0;
      memcpy(p + po, l, ll), po += ll;
    }
    l += ll;
  }
  *sig = s;
  *payload = p;
}

static void test_git_commit(void **state) {
  (void)state;
  assert_int_equal(
      run("cd %s && git init -q repo && cd repo && "
          "git -c gpg.format=ssh -c user.signingkey=%s -c user.name=t "
          "-c user.email=t@example.invalid commit -q -S --allow-empty -m x "
          ">/dev/null 2>&1 && git cat-file commit HEAD > ../commit.txt",
          dir, path_in("a.pub")),
      0);
  char *obj = slurp(path_in("commit.txt"), NULL), *sig, *payload;
  split_commit(obj, &sig, &payload);
  assert_non_null(strstr(sig, "-----BEGIN SSH SIGNATURE-----\n"));
  assert_null(strstr(payload, "gpgsig"));
  assert_null(strstr(payload, "SSH SIGNATURE"));
  struct mg_sshsig_result res;
  struct mg_err err = {{0}};
  int rc = verify_as(line_a("namespaces=\"git\""), "git", payload,
                     strlen(payload), sig, time(NULL), &res, &err);
  if (rc)
    fail_msg("%d: %s", rc, err.msg);
  assert_string_equal(res.principal, PRINC_A);
  assert_string_equal(res.fingerprint, fp_a);
  cross_check(line_a(""), "git", sig, payload, strlen(payload), now_2030, 0);
  /* a rewritten message no longer verifies */
  char *forged = replace(payload, "\nx\n", "\ny\n");
  cross_check(line_a(""), "git", sig, forged, strlen(forged), now_2030, -EBADE);
  free(forged);
  free(obj);
  free(sig);
  free(payload);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good_sha512),
      cmocka_unit_test(test_good_sha256),
      cmocka_unit_test(test_null_res_and_err),
      cmocka_unit_test(test_empty_data),
      cmocka_unit_test(test_wrong_namespace),
      cmocka_unit_test(test_key_not_listed),
      cmocka_unit_test(test_second_key_principal),
      cmocka_unit_test(test_long_principals_first_only),
      cmocka_unit_test(test_namespaces_option),
      cmocka_unit_test(test_same_key_two_lines),
      cmocka_unit_test(test_validity),
      cmocka_unit_test(test_tampered_data),
      cmocka_unit_test(test_tampered_signature),
      cmocka_unit_test(test_reserved_is_ignored),
      cmocka_unit_test(test_blob_fields),
      cmocka_unit_test(test_blob_lying_lengths),
      cmocka_unit_test(test_blob_truncated_everywhere),
      cmocka_unit_test(test_armor),
      cmocka_unit_test(test_armor_truncated_everywhere),
      cmocka_unit_test(test_signers_good),
      cmocka_unit_test(test_signers_errors),
      cmocka_unit_test(test_signers_load),
      cmocka_unit_test(test_git_commit),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
