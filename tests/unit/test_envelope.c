/*
 * test_envelope.c — MGE1 sealed records (sync/envelope.h; issue 8, X1, X3):
 * round trip, wrong context/recipient/sender, a flipped byte in every
 * region of the format, truncation, key files and base64 errors.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "envelope.h"

struct keys {
  EVP_PKEY *tenant_recv, *tenant_sign, *box_recv, *box_sign, *other_sign;
  char dir[64];
};

static int keys_setup(void **state) {
  struct keys *k = calloc(1, sizeof(*k));
  struct mg_err err;
  char p[128];
  snprintf(k->dir, sizeof(k->dir), "/tmp/mg-env.XXXXXX");
  assert_non_null(mkdtemp(k->dir));
  snprintf(p, sizeof(p), "%s/t/recv.pem", k->dir);
  assert_int_equal(mg_env_key_load(p, MG_ENV_X25519, &k->tenant_recv, &err), 0);
  snprintf(p, sizeof(p), "%s/t/sign.pem", k->dir);
  assert_int_equal(mg_env_key_load(p, MG_ENV_ED25519, &k->tenant_sign, &err), 0);
  snprintf(p, sizeof(p), "%s/b/recv.pem", k->dir);
  assert_int_equal(mg_env_key_load(p, MG_ENV_X25519, &k->box_recv, &err), 0);
  snprintf(p, sizeof(p), "%s/b/sign.pem", k->dir);
  assert_int_equal(mg_env_key_load(p, MG_ENV_ED25519, &k->box_sign, &err), 0);
  snprintf(p, sizeof(p), "%s/o/sign.pem", k->dir);
  assert_int_equal(mg_env_key_load(p, MG_ENV_ED25519, &k->other_sign, &err), 0);
  *state = k;
  return 0;
}

static int keys_teardown(void **state) {
  struct keys *k = *state;
  char cmd[128];
  EVP_PKEY_free(k->tenant_recv);
  EVP_PKEY_free(k->tenant_sign);
  EVP_PKEY_free(k->box_recv);
  EVP_PKEY_free(k->box_sign);
  EVP_PKEY_free(k->other_sign);
  snprintf(cmd, sizeof(cmd), "rm -rf %s", k->dir);
  assert_int_equal(system(cmd), 0);
  free(k);
  return 0;
}

#define CTX_A "madoguchi/t1 application 0123456789abcdef0123456789abcdef city 352152 box shunan-1f"
/* fictional applicant */
static const char PLAIN[] = "{\"form\":\"juminhyo\",\"name\":\"山田 花子\",\"copies\":2}";

static void seal_plain(struct keys *k, const char *ctx, unsigned char **env,
                       size_t *n) {
  struct mg_err err;
  assert_int_equal(mg_env_seal(k->tenant_recv, k->box_sign, ctx, PLAIN,
                               strlen(PLAIN), env, n, &err),
                   0);
  assert_int_equal(*n, strlen(PLAIN) + MG_ENV_OVERHEAD);
}

static void round_trip(void **state) {
  struct keys *k = *state;
  unsigned char *env, *pt, *env2;
  size_t n, pn, n2;
  struct mg_err err;
  seal_plain(k, CTX_A, &env, &n);
  assert_memory_equal(env, "MGE1\x01", 5);
  /* the plaintext is not visible in the envelope */
  assert_null(memmem(env, n, "juminhyo", 8));
  assert_int_equal(mg_env_open(k->tenant_recv, k->box_sign, CTX_A, env, n, &pt,
                               &pn, &err),
                   0);
  assert_int_equal(pn, strlen(PLAIN));
  assert_memory_equal(pt, PLAIN, pn);
  assert_int_equal(pt[pn], '\0');
  free(pt);
  /* two seals of the same text differ (ephemeral key, nonce) */
  seal_plain(k, CTX_A, &env2, &n2);
  assert_int_equal(n, n2);
  assert_memory_not_equal(env, env2, n);
  free(env2);
  free(env);
  /* empty plaintext works too */
  assert_int_equal(mg_env_seal(k->box_recv, k->tenant_sign, "c", "", 0, &env, &n,
                               &err),
                   0);
  assert_int_equal(n, MG_ENV_OVERHEAD);
  assert_int_equal(mg_env_open(k->box_recv, k->tenant_sign, "c", env, n, &pt, &pn,
                               &err),
                   0);
  assert_int_equal(pn, 0);
  free(pt);
  free(env);
}

/* A sealer (one ephemeral key for a batch, N3): its records share the
 * ephemeral key but not the nonce; each opens alone and through one
 * opener; the cached key never opens a record moved, altered or signed by
 * another box; an opener keeps working past its cache's size. */
static void sessions(void **state) {
  struct keys *k = *state;
  struct mg_env_sealer *s = NULL, *other = NULL;
  struct mg_env_opener *o = NULL;
  unsigned char *env[3], *pt, *x;
  size_t n[3], pn, xn;
  struct mg_err err;
  const char *ctx[3] = {CTX_A, CTX_A "x", CTX_A "y"};
  assert_int_equal(mg_env_sealer_new(k->tenant_recv, k->box_sign, &s, &err), 0);
  for (int i = 0; i < 3; i++)
    assert_int_equal(mg_env_sealer_seal(s, ctx[i], PLAIN, strlen(PLAIN),
                                        &env[i], &n[i], &err),
                     0);
  assert_memory_equal(env[0] + 5, env[1] + 5, 32);  /* one ephemeral key */
  assert_memory_not_equal(env[0] + 37, env[1] + 37, 12); /* own nonces */
  assert_int_equal(mg_env_opener_new(k->tenant_recv, k->box_sign, &o, &err), 0);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(mg_env_open(k->tenant_recv, k->box_sign, ctx[i], env[i],
                                 n[i], &pt, &pn, &err),
                     0);
    free(pt);
    assert_int_equal(mg_env_opener_open(o, ctx[i], env[i], n[i], &pt, &pn, &err), 0);
    assert_memory_equal(pt, PLAIN, pn);
    free(pt);
  }
  /* the key is cached now: a moved record or a flipped byte still fails */
  assert_int_equal(mg_env_opener_open(o, ctx[0], env[1], n[1], &pt, &pn, &err),
                   -EBADMSG);
  env[2][60] ^= 1;
  assert_int_equal(mg_env_opener_open(o, ctx[2], env[2], n[2], &pt, &pn, &err),
                   -EBADMSG);
  assert_non_null(strstr(err.msg, "bad signature"));
  /* another box's sealer: refused by this box's opener */
  assert_int_equal(mg_env_sealer_new(k->tenant_recv, k->other_sign, &other, &err), 0);
  assert_int_equal(mg_env_sealer_seal(other, CTX_A, PLAIN, strlen(PLAIN), &x,
                                      &xn, &err),
                   0);
  assert_int_equal(mg_env_opener_open(o, CTX_A, x, xn, &pt, &pn, &err), -EBADMSG);
  free(x);
  mg_env_sealer_free(other);
  /* more ephemeral keys than the opener keeps: each still opens */
  for (int i = 0; i < 20; i++) {
    assert_int_equal(mg_env_seal(k->tenant_recv, k->box_sign, CTX_A, PLAIN,
                                 strlen(PLAIN), &x, &xn, &err),
                     0);
    assert_int_equal(mg_env_opener_open(o, CTX_A, x, xn, &pt, &pn, &err), 0);
    free(pt);
    free(x);
  }
  assert_int_equal(mg_env_opener_open(o, ctx[0], env[0], n[0], &pt, &pn, &err), 0);
  free(pt);
  /* wrong key types are refused when the session starts */
  assert_int_equal(mg_env_sealer_new(k->box_sign, k->box_sign, &other, &err), -EINVAL);
  assert_null(other);
  for (int i = 0; i < 3; i++)
    free(env[i]);
  mg_env_opener_free(o);
  mg_env_sealer_free(s);
}

static void wrong_context_recipient_sender(void **state) {
  struct keys *k = *state;
  unsigned char *env, *pt = (unsigned char *)"x";
  size_t n, pn = 9;
  struct mg_err err;
  seal_plain(k, CTX_A, &env, &n);
  /* moved to another city / box / record */
  const char *others[] = {
      "madoguchi/t1 application 0123456789abcdef0123456789abcdef city 352153 box shunan-1f",
      "madoguchi/t1 application 0123456789abcdef0123456789abcdef city 352152 box shunan-2f",
      "madoguchi/t1 application 0123456789abcdef0123456789abcdee city 352152 box shunan-1f",
      ""};
  for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
    assert_int_equal(mg_env_open(k->tenant_recv, k->box_sign, others[i], env, n,
                                 &pt, &pn, &err),
                     -EBADMSG);
    assert_null(pt);
    assert_int_equal(pn, 0);
    assert_non_null(strstr(err.msg, "bad signature"));
  }
  /* signed by another box */
  assert_int_equal(mg_env_open(k->tenant_recv, k->other_sign, CTX_A, env, n, &pt,
                               &pn, &err),
                   -EBADMSG);
  assert_non_null(strstr(err.msg, "bad signature"));
  /* opened by the wrong recipient: signature fine, decryption fails */
  assert_int_equal(mg_env_open(k->box_recv, k->box_sign, CTX_A, env, n, &pt, &pn,
                               &err),
                   -EBADMSG);
  assert_non_null(strstr(err.msg, "authentication failed"));
  /* keys of the wrong type */
  assert_int_equal(mg_env_open(k->box_sign, k->box_sign, CTX_A, env, n, &pt, &pn,
                               &err),
                   -EINVAL);
  assert_int_equal(mg_env_seal(k->tenant_sign, k->box_sign, CTX_A, "a", 1, &pt,
                               &pn, &err),
                   -EINVAL);
  assert_int_equal(mg_env_seal(k->tenant_recv, k->box_recv, CTX_A, "a", 1, &pt,
                               &pn, &err),
                   -EINVAL);
  free(env);
}

/* One flipped bit at every offset: never opens.  Each region gets its own
 * message: magic, version, length (offset 49), body/tag/signature (bad
 * signature, since the signature is checked before decryption). */
static void tampered_everywhere(void **state) {
  struct keys *k = *state;
  unsigned char *env, *pt;
  size_t n, pn;
  struct mg_err err;
  seal_plain(k, CTX_A, &env, &n);
  for (size_t off = 0; off < n; off++) {
    for (int bit = 0; bit < 8; bit += 7) {
      env[off] ^= (unsigned char)(1u << bit);
      int rc = mg_env_open(k->tenant_recv, k->box_sign, CTX_A, env, n, &pt, &pn,
                           &err);
      env[off] ^= (unsigned char)(1u << bit);
      assert_int_equal(rc, -EBADMSG);
      assert_null(pt);
      const char *want = off < 4    ? "offset 0: magic"
                         : off == 4 ? "offset 4: version"
                         : (off >= 49 && off < 53) ? "offset"
                                                   : "bad signature";
      if (!strstr(err.msg, want))
        fail_msg("offset %zu bit %d: message \"%s\" lacks \"%s\"", off, bit,
                 err.msg, want);
    }
  }
  /* the length field raised: names offset 49 and the rule */
  env[49] ^= 0x01;
  assert_int_equal(mg_env_open(k->tenant_recv, k->box_sign, CTX_A, env, n, &pt,
                               &pn, &err),
                   -EBADMSG);
  assert_non_null(strstr(err.msg, "offset 49: ciphertext length"));
  assert_non_null(strstr(err.msg, "exceeds"));
  env[49] ^= 0x01;
  assert_int_equal(mg_env_open(k->tenant_recv, k->box_sign, CTX_A, env, n, &pt,
                               &pn, &err),
                   0);
  free(pt);
  free(env);
}

static void truncated_and_extended(void **state) {
  struct keys *k = *state;
  unsigned char *env, *pt;
  size_t n, pn;
  struct mg_err err;
  seal_plain(k, CTX_A, &env, &n);
  for (size_t cut = 0; cut < n; cut++) {
    assert_int_equal(mg_env_open(k->tenant_recv, k->box_sign, CTX_A, env, cut,
                                 &pt, &pn, &err),
                     -EBADMSG);
    assert_non_null(strstr(err.msg, "offset"));
  }
  assert_int_equal(mg_env_open(k->tenant_recv, k->box_sign, CTX_A, env, 10, &pt,
                               &pn, &err),
                   -EBADMSG);
  assert_non_null(strstr(err.msg, "shorter than the 133-byte minimum"));
  unsigned char *big = malloc(n + 3);
  memcpy(big, env, n);
  memset(big + n, 0, 3);
  assert_int_equal(mg_env_open(k->tenant_recv, k->box_sign, CTX_A, big, n + 3,
                               &pt, &pn, &err),
                   -EBADMSG);
  assert_non_null(strstr(err.msg, "3 bytes after the signature"));
  free(big);
  free(env);
}

/* A valid envelope whose signature was replaced by another key's
 * signature over the same bytes: refused. */
static void resigned_by_other(void **state) {
  struct keys *k = *state;
  unsigned char *env, *pt;
  size_t n, pn, sl = 64;
  struct mg_err err;
  seal_plain(k, CTX_A, &env, &n);
  size_t body = n - 64, cl = strlen(CTX_A);
  unsigned char *m = malloc(body + cl);
  memcpy(m, env, body);
  memcpy(m + body, CTX_A, cl);
  EVP_MD_CTX *mc = EVP_MD_CTX_new();
  assert_int_equal(EVP_DigestSignInit(mc, NULL, NULL, NULL, k->other_sign), 1);
  assert_int_equal(EVP_DigestSign(mc, env + body, &sl, m, body + cl), 1);
  EVP_MD_CTX_free(mc);
  free(m);
  assert_int_equal(mg_env_open(k->tenant_recv, k->box_sign, CTX_A, env, n, &pt,
                               &pn, &err),
                   -EBADMSG);
  assert_non_null(strstr(err.msg, "bad signature"));
  assert_int_equal(mg_env_open(k->tenant_recv, k->other_sign, CTX_A, env, n, &pt,
                               &pn, &err),
                   0);
  free(pt);
  free(env);
}

static void key_files(void **state) {
  struct keys *k = *state;
  char p[128], p2[128];
  EVP_PKEY *a = NULL, *b = NULL;
  struct mg_err err;
  struct stat st;
  /* created 0600 in a 0700 directory, and loaded back the same */
  snprintf(p, sizeof(p), "%s/new/deeper/sign.pem", k->dir);
  assert_int_equal(mg_env_key_load(p, MG_ENV_ED25519, &a, &err), 0);
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  snprintf(p2, sizeof(p2), "%s/new/deeper", k->dir);
  assert_int_equal(stat(p2, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
  assert_int_equal(mg_env_key_load(p, MG_ENV_ED25519, &b, &err), 0);
  assert_int_equal(EVP_PKEY_eq(a, b), 1);
  EVP_PKEY_free(b);
  b = NULL;
  /* the wrong type */
  assert_int_equal(mg_env_key_load(p, MG_ENV_X25519, &b, &err), -EINVAL);
  assert_null(b);
  assert_non_null(strstr(err.msg, p));
  assert_non_null(strstr(err.msg, "X25519"));
  /* readable by others */
  assert_int_equal(chmod(p, 0640), 0);
  assert_int_equal(mg_env_key_load(p, MG_ENV_ED25519, &b, &err), -EPERM);
  assert_non_null(strstr(err.msg, "0640"));
  assert_int_equal(chmod(p, 0600), 0);
  /* garbage */
  snprintf(p2, sizeof(p2), "%s/new/garbage.pem", k->dir);
  FILE *f = fopen(p2, "w");
  fputs("not a key\n", f);
  fclose(f);
  chmod(p2, 0600);
  assert_int_equal(mg_env_key_load(p2, MG_ENV_ED25519, &b, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "not a PEM private key"));
  /* public keys through base64 */
  char b64[MG_ENV_KEY_B64];
  assert_int_equal(mg_env_pub_b64(a, b64), 0);
  assert_int_equal(strlen(b64), 44);
  assert_int_equal(mg_env_pub_from_b64(b64, MG_ENV_ED25519, &b, &err), 0);
  assert_int_equal(EVP_PKEY_eq(a, b), 1);
  EVP_PKEY_free(b);
  b = NULL;
  assert_int_equal(mg_env_pub_from_b64("AAAA", MG_ENV_ED25519, &b, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "3 bytes where 32"));
  EVP_PKEY_free(a);
}

static void base64(void **state) {
  (void)state;
  unsigned char *o;
  size_t n;
  char *s;
  struct mg_err err;
  for (size_t len = 0; len < 70; len++) {
    unsigned char in[70];
    for (size_t i = 0; i < len; i++)
      in[i] = (unsigned char)(i * 37 + len);
    assert_int_equal(mg_env_b64(in, len, &s), 0);
    assert_int_equal(strlen(s), (len + 2) / 3 * 4);
    assert_int_equal(mg_env_unb64(s, strlen(s), &o, &n, &err), 0);
    assert_int_equal(n, len);
    assert_memory_equal(o, in, len);
    free(o);
    free(s);
  }
  assert_int_equal(mg_env_unb64("aGVsbG8=", 8, &o, &n, &err), 0);
  assert_int_equal(n, 5);
  assert_memory_equal(o, "hello", 5);
  free(o);
  assert_int_equal(mg_env_unb64("aGVsb*8=", 8, &o, &n, &err), -EINVAL);
  assert_null(o);
  assert_non_null(strstr(err.msg, "offset 5: byte 0x2a"));
  assert_int_equal(mg_env_unb64("aGVsbG8", 7, &o, &n, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "length 7 is not a multiple of 4"));
  assert_int_equal(mg_env_unb64("aG=sbG8=", 8, &o, &n, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "offset 2"));
  assert_int_equal(mg_env_unb64("aGVsbG9=", 8, &o, &n, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "not canonical"));
  assert_int_equal(mg_env_unb64("aGVsbG8\n", 8, &o, &n, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "offset 7"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(round_trip),
      cmocka_unit_test(sessions),
      cmocka_unit_test(wrong_context_recipient_sender),
      cmocka_unit_test(tampered_everywhere),
      cmocka_unit_test(truncated_and_extended),
      cmocka_unit_test(resigned_by_other),
      cmocka_unit_test(key_files),
      cmocka_unit_test(base64),
  };
  return cmocka_run_group_tests(tests, keys_setup, keys_teardown);
}
