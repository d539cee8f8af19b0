/*
 * test_tenant_batch.c — madoguchi-tenantd's batch checking and opening
 * (sync/tenant/tenant_batch.c; issue 8, X1, X3): what is a 400 for the
 * whole batch, what rejects one record, and the replay digest.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "envelope.h"
#include "tenant.h"

#define ID1 "0123456789abcdef0123456789abcdef"
#define ID2 "fedcba9876543210fedcba9876543210"
#define BID "00112233445566778899aabbccddeeff"

static EVP_PKEY *t_recv, *t_sign, *b_sign, *o_sign;

static int setup(void **state) {
  (void)state;
  t_recv = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
  t_sign = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  b_sign = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  o_sign = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  return !(t_recv && t_sign && b_sign && o_sign);
}

static int teardown(void **state) {
  (void)state;
  EVP_PKEY_free(t_recv);
  EVP_PKEY_free(t_sign);
  EVP_PKEY_free(b_sign);
  EVP_PKEY_free(o_sign);
  return 0;
}

/* A record's JSON with a seal made for (city, box) by signer. */
static char *rec(const char *id, const char *kind, long long ver,
                 const char *plain, EVP_PKEY *signer, const char *city,
                 const char *box) {
  struct mg_t_record r = {0};
  char ctx[256], *b64 = NULL, *out;
  unsigned char *env;
  size_t n;
  struct mg_err err;
  snprintf(r.id, sizeof(r.id), "%s", id);
  r.kind = strcmp(kind, "case") == 0 ? MG_T_CASE : MG_T_APPLICATION;
  r.version = ver;
  mg_t_context(&r, city, box, ctx, sizeof(ctx));
  assert_int_equal(mg_env_seal(t_recv, signer, ctx, plain, strlen(plain), &env,
                               &n, &err),
                   0);
  assert_int_equal(mg_env_b64(env, n, &b64), 0);
  free(env);
  out = malloc(strlen(b64) + 200);
  sprintf(out, "{\"id\":\"%s\",\"kind\":\"%s\",\"version\":%lld,\"seal\":\"%s\"}",
          id, kind, ver, b64);
  free(b64);
  return out;
}

static char *batch2(const char *a, const char *b) {
  char *out = malloc(strlen(a) + (b ? strlen(b) : 0) + 100);
  sprintf(out, "{\"batch\":\"" BID "\",\"records\":[%s%s%s]}", a, b ? "," : "",
          b ? b : "");
  return out;
}

static void whole_batch_errors(void **state) {
  (void)state;
  struct mg_t_batch b;
  struct mg_err err;
  static const struct {
    const char *body, *want;
  } cases[] = {
      {"{\"batch\":\"" BID "\",\"records\":[{\"id\":\"" ID1, "line 1, column"},
      {"[]", "must be a JSON object"},
      {"{\"records\":[]}", "batch.batch: must be 32"},
      {"{\"batch\":\"0123456789ABCDEF0123456789ABCDEF\",\"records\":[]}",
       "batch.batch: must be 32 lower-case"},
      {"{\"batch\":\"" BID "\",\"records\":[]}", "batch.records: must be an array of 1 to 1000"},
      {"{\"batch\":\"" BID "\",\"records\":{}}", "batch.records"},
      {"{\"batch\":\"" BID "\",\"records\":[1]}", "records[0].id"},
      {"{\"batch\":\"" BID "\",\"records\":[{\"id\":\"abc\"}]}", "records[0].id"},
      {"{\"batch\":\"" BID "\",\"records\":[{\"id\":\"" ID1 "\"},{\"id\":\"" ID1 "\"}]}",
       "records[1].id: the same id as records[0]"},
      {"{\"batch\":\"" BID "\",\"records\":[],\"extra\":1}", "batch.extra: unknown field"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    int rc = mg_t_batch_parse(cases[i].body, strlen(cases[i].body), &b, &err);
    if (rc != -EINVAL || !strstr(err.msg, cases[i].want))
      fail_msg("case %zu: rc %d, message \"%s\" lacks \"%s\"", i, rc, err.msg,
               cases[i].want);
    assert_null(b.r);
  }
  /* 1001 records */
  size_t cap = 1001 * 60 + 100, o = 0;
  char *big = malloc(cap);
  o += (size_t)sprintf(big, "{\"batch\":\"" BID "\",\"records\":[");
  for (int i = 0; i < 1001; i++)
    o += (size_t)sprintf(big + o, "%s{\"id\":\"%032x\"}", i ? "," : "", i);
  sprintf(big + o, "]}");
  assert_int_equal(mg_t_batch_parse(big, strlen(big), &b, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "1 to 1000"));
  free(big);
}

static void record_errors(void **state) {
  (void)state;
  struct mg_t_batch b;
  struct mg_err err;
  char *big = malloc((MG_T_MAX_SEAL / 3 + 2) * 4 + 200);
  size_t o = (size_t)sprintf(big, "{\"id\":\"%032x\",\"kind\":\"application\",\"seal\":\"", 8);
  memset(big + o, 'A', (MG_T_MAX_SEAL / 3 + 2) * 4);
  o += (MG_T_MAX_SEAL / 3 + 2) * 4;
  sprintf(big + o, "\"}");
  const char *recs[] = {
      "{\"id\":\"" ID1 "\",\"kind\":\"form\",\"seal\":\"AAAA\"}",
      "{\"id\":\"" ID2 "\",\"kind\":\"case\",\"version\":0,\"seal\":\"AAAA\"}",
      "{\"id\":\"00000000000000000000000000000003\",\"kind\":\"application\",\"seal\":\"AA*A\"}",
      "{\"id\":\"00000000000000000000000000000004\",\"kind\":\"application\",\"seal\":7}",
      "{\"id\":\"00000000000000000000000000000005\",\"kind\":\"application\",\"seal\":\"AAAA\",\"x\":1}",
      "{\"id\":\"00000000000000000000000000000006\",\"kind\":\"application\",\"version\":\"1\",\"seal\":\"AAAA\"}",
      "{\"id\":\"00000000000000000000000000000007\",\"kind\":\"application\",\"seal\":\"AAAA\"}",
      big,
  };
  const char *want_code[] = {"bad_record", "bad_record", "bad_seal", "bad_record",
                             "bad_record", "bad_record", NULL, "too_large"};
  const char *want_msg[] = {"records[0].kind", "records[1].version",
                            "records[2].seal: base64: offset 2",
                            "records[3].seal", "records[4].x: unknown field",
                            "records[5].version", NULL, "records[7].seal: larger"};
  size_t n = sizeof(recs) / sizeof(recs[0]), len = 100;
  for (size_t i = 0; i < n; i++)
    len += strlen(recs[i]) + 1;
  char *body = malloc(len);
  o = (size_t)sprintf(body, "{\"batch\":\"" BID "\",\"records\":[");
  for (size_t i = 0; i < n; i++)
    o += (size_t)sprintf(body + o, "%s%s", i ? "," : "", recs[i]);
  sprintf(body + o, "]}");
  assert_int_equal(mg_t_batch_parse(body, strlen(body), &b, &err), 0);
  assert_int_equal(b.n, n);
  assert_string_equal(b.id, BID);
  for (size_t i = 0; i < n; i++) {
    if (!want_code[i]) {
      assert_int_equal(b.r[i].status, 0);
      assert_non_null(b.r[i].seal);
      assert_int_equal(b.r[i].seal_len, 3);
      continue;
    }
    assert_int_equal(b.r[i].status, MG_T_REJECTED);
    if (strcmp(b.r[i].code, want_code[i]) || !strstr(b.r[i].message, want_msg[i]))
      fail_msg("record %zu: %s \"%s\"; want %s \"%s\"", i, b.r[i].code,
               b.r[i].message, want_code[i], want_msg[i]);
    assert_null(b.r[i].seal);
  }
  /* record 6 is a 3-byte envelope: opening rejects it, naming the rule */
  mg_t_batch_open(&b, t_recv, b_sign, "352152", "shunan-1f");
  assert_string_equal(b.r[6].code, "bad_seal");
  assert_non_null(strstr(b.r[6].message, "records[6].seal: envelope: offset 3"));
  mg_t_batch_free(&b);
  free(body);
  free(big);
}

static void open_and_digest(void **state) {
  (void)state;
  struct mg_t_batch b, b2;
  struct mg_err err;
  char d1[65], d2[65];
  const char *app = "{\"form\":\"juminhyo\",\"applicant\":\"山田 花子\"}";
  const char *cas = "{\"id\":\"" ID2 "\",\"version\":3,\"number\":\"12345678\","
                    "\"token_sha256\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}";
  char *r1 = rec(ID1, "application", 0, app, b_sign, "352152", "shunan-1f");
  char *r2 = rec(ID2, "case", 3, cas, b_sign, "352152", "shunan-1f");
  char *body = batch2(r1, r2);
  assert_int_equal(mg_t_batch_parse(body, strlen(body), &b, &err), 0);
  mg_t_batch_open(&b, t_recv, b_sign, "352152", "shunan-1f");
  assert_int_equal(b.r[0].status, 0);
  assert_int_equal(b.r[1].status, 0);
  assert_int_equal(b.r[0].plain_len, strlen(app));
  assert_memory_equal(b.r[0].plain, app, strlen(app));
  assert_string_equal(b.r[1].number, "12345678");
  assert_int_equal(strlen(b.r[1].token_sha256), 64);
  mg_t_batch_digest(&b, d1);
  /* the same records sealed again: other bytes, the same digest */
  free(r1);
  free(r2);
  free(body);
  r1 = rec(ID1, "application", 0, app, b_sign, "352152", "shunan-1f");
  r2 = rec(ID2, "case", 3, cas, b_sign, "352152", "shunan-1f");
  body = batch2(r1, r2);
  assert_int_equal(mg_t_batch_parse(body, strlen(body), &b2, &err), 0);
  assert_memory_not_equal(b.r[0].seal, b2.r[0].seal, 32);
  mg_t_batch_open(&b2, t_recv, b_sign, "352152", "shunan-1f");
  mg_t_batch_digest(&b2, d2);
  assert_string_equal(d1, d2);
  mg_t_batch_free(&b2);
  /* opened as another box or city: bad_seal; the digest changes */
  assert_int_equal(mg_t_batch_parse(body, strlen(body), &b2, &err), 0);
  mg_t_batch_open(&b2, t_recv, b_sign, "352153", "shunan-1f");
  assert_string_equal(b2.r[0].code, "bad_seal");
  assert_string_equal(b2.r[1].code, "bad_seal");
  mg_t_batch_digest(&b2, d2);
  assert_string_not_equal(d1, d2);
  mg_t_batch_free(&b2);
  assert_int_equal(mg_t_batch_parse(body, strlen(body), &b2, &err), 0);
  mg_t_batch_open(&b2, t_recv, o_sign, "352152", "shunan-1f");
  assert_string_equal(b2.r[0].code, "bad_seal");
  assert_non_null(strstr(b2.r[0].message, "bad signature"));
  mg_t_batch_free(&b2);
  mg_t_batch_free(&b);
  free(r1);
  free(r2);
  free(body);

  /* a case whose content names another id, and a non-object application */
  r1 = rec(ID1, "application", 0, "[1,2]", b_sign, "352152", "shunan-1f");
  r2 = rec(ID2, "case", 3, "{\"id\":\"" ID1 "\"}", b_sign,
           "352152", "shunan-1f");
  body = batch2(r1, r2);
  assert_int_equal(mg_t_batch_parse(body, strlen(body), &b, &err), 0);
  mg_t_batch_open(&b, t_recv, b_sign, "352152", "shunan-1f");
  assert_string_equal(b.r[0].code, "bad_record");
  assert_non_null(strstr(b.r[0].message, "not a JSON object"));
  assert_string_equal(b.r[1].code, "bad_record");
  assert_non_null(strstr(b.r[1].message, "id is not the record's id"));
  mg_t_batch_free(&b);
  free(r1);
  free(r2);
  free(body);
}

static void names(void **state) {
  (void)state;
  assert_true(mg_t_is_city("352152"));
  assert_false(mg_t_is_city("35215"));
  assert_false(mg_t_is_city("3521522"));
  assert_false(mg_t_is_city("35215a"));
  assert_false(mg_t_is_city(NULL));
  assert_true(mg_t_is_box("shunan-1f"));
  assert_false(mg_t_is_box("-x"));
  assert_false(mg_t_is_box("Shunan"));
  assert_false(mg_t_is_box("a b"));
  assert_false(mg_t_is_box(""));
  char long_box[70];
  memset(long_box, 'a', 64);
  long_box[64] = '\0';
  assert_false(mg_t_is_box(long_box));
  long_box[63] = '\0';
  assert_true(mg_t_is_box(long_box));
  assert_true(mg_t_is_id(ID1));
  assert_false(mg_t_is_id("0123456789abcdef0123456789abcde"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(whole_batch_errors),
      cmocka_unit_test(record_errors),
      cmocka_unit_test(open_and_digest),
      cmocka_unit_test(names),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
