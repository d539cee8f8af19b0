/*
 * envbench.c — the cost of sealing and opening one record (sync/envelope.h;
 * issue 8, N3), single-threaded, on the sizes the box sends.
 *
 *   envbench [N] [BYTES]     (default 400 records of 1500 bytes, 5 rounds)
 *
 * Ours: mg_env_seal / mg_env_open one record at a time (a key agreement
 * each), and the sessions the sync client and the tenant use (one
 * ephemeral key per thread and batch).  Peer: OpenSSL's own primitives the
 * format cannot do without, timed bare: one Ed25519 signature (the
 * sealer's floor) and one Ed25519 verification (the opener's floor), plus
 * one X25519 agreement for reference.  Prints microseconds per record and
 * the ratio to the floor.  Everything sealed is filler text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "envelope.h"

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

#define ROUNDS 5
#define CTX "madoguchi/t1 application 0123456789abcdef0123456789abcdef city 000000 box bench"

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 400;
  size_t bytes = argc > 2 ? (size_t)atol(argv[2]) : 1500;
  EVP_PKEY *recv = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
  EVP_PKEY *sign = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  EVP_PKEY *peer = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
  unsigned char **env = NULL, *pt, *plain = NULL, sig[64], shared[32];
  size_t *elen = NULL, pn, sl, xl;
  struct mg_env_sealer *s = NULL;
  struct mg_env_opener *o = NULL;
  struct mg_err err;
  double t, one_seal, one_open, ses_seal, ses_open, raw_sign, raw_verify, raw_x;
  EVP_MD_CTX *mc = EVP_MD_CTX_new();
  EVP_PKEY_CTX *dc = NULL;
  int rc = 1;

  if (n < 1 || bytes < 1 || !recv || !sign || !peer || !mc ||
      !(plain = malloc(bytes)) || !(env = calloc((size_t)n, sizeof(*env))) ||
      !(elen = calloc((size_t)n, sizeof(*elen)))) {
    fprintf(stderr, "usage: envbench [N>0] [BYTES>0] (or out of memory)\n");
    goto out;
  }
  memset(plain, 'a', bytes);

#define FAIL(what)                                                             \
  do {                                                                         \
    fprintf(stderr, "envbench: %s: %s\n", what, err.msg);                      \
    goto out;                                                                  \
  } while (0)

  if (mg_env_sealer_new(recv, sign, &s, &err))
    FAIL("sealer");
  if (mg_env_opener_new(recv, sign, &o, &err))
    FAIL("opener");
  /* ROUNDS rounds, each measuring every variant in turn; the fastest round
   * of each counts (a shared machine only ever adds time) */
  one_seal = one_open = ses_seal = ses_open = raw_sign = raw_verify = raw_x = 1e30;
  for (int round = 0; round < ROUNDS; round++) {
    double v;
    t = now_us();
    for (int i = 0; i < n; i++)
      if (mg_env_seal(recv, sign, CTX, plain, bytes, &env[i], &elen[i], &err))
        FAIL("seal");
    v = (now_us() - t) / n;
    one_seal = v < one_seal ? v : one_seal;
    t = now_us();
    for (int i = 0; i < n; i++) {
      if (mg_env_open(recv, sign, CTX, env[i], elen[i], &pt, &pn, &err))
        FAIL("open");
      free(pt);
      free(env[i]);
      env[i] = NULL;
    }
    v = (now_us() - t) / n;
    one_open = v < one_open ? v : one_open;

    t = now_us();
    for (int i = 0; i < n; i++)
      if (mg_env_sealer_seal(s, CTX, plain, bytes, &env[i], &elen[i], &err))
        FAIL("sealer seal");
    v = (now_us() - t) / n;
    ses_seal = v < ses_seal ? v : ses_seal;
    t = now_us();
    for (int i = 0; i < n; i++) {
      if (mg_env_opener_open(o, CTX, env[i], elen[i], &pt, &pn, &err))
        FAIL("opener open");
      free(pt);
    }
    v = (now_us() - t) / n;
    ses_open = v < ses_open ? v : ses_open;

    /* the peer: bare primitives over the same bytes */
    t = now_us();
    for (int i = 0; i < n; i++) {
      sl = sizeof(sig);
      if (EVP_DigestSignInit(mc, NULL, NULL, NULL, sign) != 1 ||
          EVP_DigestSign(mc, sig, &sl, env[i], elen[i] - 64) != 1) {
        fprintf(stderr, "envbench: Ed25519 sign failed\n");
        goto out;
      }
    }
    v = (now_us() - t) / n;
    raw_sign = v < raw_sign ? v : raw_sign;
    t = now_us();
    for (int i = 0; i < n; i++) {
      if (EVP_DigestVerifyInit(mc, NULL, NULL, NULL, sign) != 1 ||
          EVP_DigestVerify(mc, sig, sizeof(sig), env[n - 1], elen[n - 1] - 64) != 1) {
        fprintf(stderr, "envbench: Ed25519 verify failed\n");
        goto out;
      }
    }
    v = (now_us() - t) / n;
    raw_verify = v < raw_verify ? v : raw_verify;
    t = now_us();
    for (int i = 0; i < n; i++) {
      xl = sizeof(shared);
      if (!(dc = EVP_PKEY_CTX_new_from_pkey(NULL, peer, NULL)) ||
          EVP_PKEY_derive_init(dc) != 1 || EVP_PKEY_derive_set_peer(dc, recv) != 1 ||
          EVP_PKEY_derive(dc, shared, &xl) != 1) {
        fprintf(stderr, "envbench: X25519 failed\n");
        goto out;
      }
      EVP_PKEY_CTX_free(dc);
      dc = NULL;
    }
    v = (now_us() - t) / n;
    raw_x = v < raw_x ? v : raw_x;
    for (int i = 0; i < n; i++) {
      free(env[i]);
      env[i] = NULL;
    }
  }

  printf("envelope (MGE1), %d records of %zu bytes, one thread, the fastest of %d rounds:\n",
         n, bytes, ROUNDS);
  printf("  %-44s %9s %9s %8s\n", "", "ours us", "floor us", "ratio");
  printf("  %-44s %9.1f %9.1f %7.2fx\n", "seal, a key agreement per record",
         one_seal, raw_sign, one_seal / raw_sign);
  printf("  %-44s %9.1f %9.1f %7.2fx\n", "seal, one sealer (per batch and thread)",
         ses_seal, raw_sign, ses_seal / raw_sign);
  printf("  %-44s %9.1f %9.1f %7.2fx\n", "open, a key agreement per record",
         one_open, raw_verify, one_open / raw_verify);
  printf("  %-44s %9.1f %9.1f %7.2fx\n", "open, one opener (per batch and thread)",
         ses_open, raw_verify, ses_open / raw_verify);
  printf("  floors: Ed25519 sign %.1f us, verify %.1f us (OpenSSL, bare); "
         "one X25519 agreement %.1f us\n", raw_sign, raw_verify, raw_x);
  rc = 0;
out:
  if (env)
    for (int i = 0; i < n; i++)
      free(env[i]);
  free(env);
  free(elen);
  free(plain);
  mg_env_sealer_free(s);
  mg_env_opener_free(o);
  EVP_PKEY_CTX_free(dc);
  EVP_MD_CTX_free(mc);
  EVP_PKEY_free(recv);
  EVP_PKEY_free(sign);
  EVP_PKEY_free(peer);
  return rc;
}
