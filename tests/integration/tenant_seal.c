/*
 * tenant_seal.c — a box's side of the tenant API for the tests (issue 8):
 * envelopes (sync/envelope.h) and enrolment bodies, so shell tests can
 * talk to madoguchi-tenantd with curl.  Keys are made when absent.
 *
 *   tenant-seal enroll-body --sign K --recv K --city C --box B --code CODE
 *       the JSON body of POST /t1/enroll (proof of possession included)
 *   tenant-seal record --sign K --to TENANT_RECV_B64 --city C --box B
 *       --kind application|case --id ID [--version N] < plaintext
 *       one record of POST /t1/records: {"id","kind","version","seal"}
 *   tenant-seal open --recv K --from TENANT_SIGN_B64 --context CTX < b64
 *       the plaintext of an envelope (case fetch answers)
 *   tenant-seal pub --sign K | --recv K      the public key in base64
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

static unsigned char *read_all(FILE *f, size_t *len) {
  size_t cap = 65536, n = 0, r;
  unsigned char *b = malloc(cap + 1);
  while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
    n += r;
    if (n == cap) {
      unsigned char *nb = realloc(b, cap * 2 + 1);
      if (!nb) {
        free(b);
        return NULL;
      }
      b = nb;
      cap *= 2;
    }
  }
  if (b)
    b[n] = '\0';
  *len = n;
  return b;
}

static const char *arg(int argc, char **argv, const char *name) {
  for (int i = 2; i + 1 < argc; i++)
    if (!strcmp(argv[i], name))
      return argv[i + 1];
  return NULL;
}

static int die(const char *what, struct mg_err *err) {
  fprintf(stderr, "tenant-seal: %s%s%s\n", what, err ? ": " : "", err ? err->msg : "");
  return 1;
}

static EVP_PKEY *sign, *recv, *peer;

static void free_keys(void) {
  EVP_PKEY_free(sign);
  EVP_PKEY_free(recv);
  EVP_PKEY_free(peer);
}

int main(int argc, char **argv) {
  struct mg_err err;
  atexit(free_keys);
  if (argc < 2)
    return die("usage: see tests/integration/tenant_seal.c", NULL);
  const char *cmd = argv[1];
  const char *sk = arg(argc, argv, "--sign"), *rk = arg(argc, argv, "--recv");
  if (sk && mg_env_key_load(sk, MG_ENV_ED25519, &sign, &err))
    return die("--sign", &err);
  if (rk && mg_env_key_load(rk, MG_ENV_X25519, &recv, &err))
    return die("--recv", &err);

  if (!strcmp(cmd, "pub")) {
    char b64[MG_ENV_KEY_B64];
    if (mg_env_pub_b64(sign ? sign : recv, b64))
      return die("pub needs --sign or --recv", NULL);
    puts(b64);
    return 0;
  }
  if (!strcmp(cmd, "enroll-body")) {
    const char *city = arg(argc, argv, "--city"), *box = arg(argc, argv, "--box"),
               *code = arg(argc, argv, "--code");
    char msg[512], sb[MG_ENV_KEY_B64], rb[MG_ENV_KEY_B64], *pop = NULL;
    unsigned char sig[64];
    size_t sl = 64;
    if (!sign || !recv || !city || !box || !code)
      return die("enroll-body needs --sign --recv --city --box --code", NULL);
    int n = snprintf(msg, sizeof(msg), "madoguchi/t1 enroll %s %s %s", city, box, code);
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    if (EVP_DigestSignInit(mc, NULL, NULL, NULL, sign) != 1 ||
        EVP_DigestSign(mc, sig, &sl, (unsigned char *)msg, (size_t)n) != 1)
      return die("cannot sign", NULL);
    EVP_MD_CTX_free(mc);
    mg_env_pub_b64(sign, sb);
    mg_env_pub_b64(recv, rb);
    mg_env_b64(sig, 64, &pop);
    printf("{\"city\":\"%s\",\"box\":\"%s\",\"code\":\"%s\",\"sign_key\":\"%s\","
           "\"recv_key\":\"%s\",\"pop\":\"%s\"}\n",
           city, box, code, sb, rb, pop);
    free(pop);
    return 0;
  }
  if (!strcmp(cmd, "record")) {
    const char *to = arg(argc, argv, "--to"), *city = arg(argc, argv, "--city"),
               *box = arg(argc, argv, "--box"), *kind = arg(argc, argv, "--kind"),
               *id = arg(argc, argv, "--id"), *ver = arg(argc, argv, "--version");
    char ctx[256], *b64 = NULL;
    unsigned char *plain, *env = NULL;
    size_t len, elen;
    long long v = ver ? atoll(ver) : 0;
    if (!sign || !to || !city || !box || !kind || !id)
      return die("record needs --sign --to --city --box --kind --id", NULL);
    if (mg_env_pub_from_b64(to, MG_ENV_X25519, &peer, &err))
      return die("--to", &err);
    if (!strcmp(kind, "case"))
      snprintf(ctx, sizeof(ctx), "madoguchi/t1 case %s v%lld city %s box %s", id, v,
               city, box);
    else
      snprintf(ctx, sizeof(ctx), "madoguchi/t1 application %s city %s box %s", id,
               city, box);
    if (!(plain = read_all(stdin, &len)))
      return die("out of memory", NULL);
    if (mg_env_seal(peer, sign, ctx, plain, len, &env, &elen, &err))
      return die("seal", &err);
    mg_env_b64(env, elen, &b64);
    printf("{\"id\":\"%s\",\"kind\":\"%s\",\"version\":%lld,\"seal\":\"%s\"}\n", id,
           kind, v, b64);
    free(plain);
    free(env);
    free(b64);
    return 0;
  }
  if (!strcmp(cmd, "open")) {
    const char *from = arg(argc, argv, "--from"), *ctx = arg(argc, argv, "--context");
    unsigned char *in, *env = NULL, *plain = NULL;
    size_t len, elen, plen;
    if (!recv || !from || !ctx)
      return die("open needs --recv --from --context", NULL);
    if (mg_env_pub_from_b64(from, MG_ENV_ED25519, &peer, &err))
      return die("--from", &err);
    if (!(in = read_all(stdin, &len)))
      return die("out of memory", NULL);
    while (len && (in[len - 1] == '\n' || in[len - 1] == '\r'))
      len--;
    if (mg_env_unb64((char *)in, len, &env, &elen, &err) ||
        mg_env_open(recv, peer, ctx, env, elen, &plain, &plen, &err))
      return die("open", &err);
    fwrite(plain, 1, plen, stdout);
    free(in);
    free(env);
    free(plain);
    return 0;
  }
  return die("unknown command", NULL);
}
