/*
 * test_crypto.c — sealed blobs (round trip, every tampering refused, the
 * aad binding, random nonces) and the key file (created 0600, reloaded,
 * wrong size and loose modes refused) (core/crypto.h).
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

#include "crypto.h"

struct fx {
  char dir[64];
  char path[128];
};

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof(*f));
  snprintf(f->dir, sizeof(f->dir), "/tmp/mg-crypto.XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  /* a directory that does not exist yet: mg_key_load makes it */
  snprintf(f->path, sizeof(f->path), "%s/keys/sub/data.key", f->dir);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

static void fixed_key(struct mg_key *k, unsigned char seed) {
  for (size_t i = 0; i < sizeof(k->k); i++)
    k->k[i] = (unsigned char)(seed + i * 7);
}

static void write_file(const char *path, const void *data, size_t n, mode_t mode) {
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(data, 1, n, fp), n);
  assert_int_equal(fclose(fp), 0);
  assert_int_equal(chmod(path, mode), 0);
}

static void test_round_trip(void **state) {
  (void)state;
  struct mg_key k;
  unsigned char *blob = NULL, *text = NULL;
  size_t blob_len = 0, text_len = 0;
  const char *msg = "山田太郎 1980-01-01 山口県周南市岐山通1-1";
  fixed_key(&k, 1);
  assert_int_equal(mg_seal(&k, "resident:42", msg, strlen(msg), &blob, &blob_len), 0);
  assert_int_equal(blob_len, strlen(msg) + MG_SEAL_OVERHEAD);
  assert_int_equal(blob[0], 0x01);
  assert_null(memmem(blob, blob_len, "山田", strlen("山田")));
  assert_int_equal(mg_open(&k, "resident:42", blob, blob_len, &text, &text_len), 0);
  assert_int_equal(text_len, strlen(msg));
  assert_string_equal((char *)text, msg); /* NUL-terminated */
  free(text);
  free(blob);

  /* empty text, and NULL aad is "" */
  assert_int_equal(mg_seal(&k, NULL, NULL, 0, &blob, &blob_len), 0);
  assert_int_equal(blob_len, MG_SEAL_OVERHEAD);
  assert_int_equal(mg_open(&k, "", blob, blob_len, &text, &text_len), 0);
  assert_int_equal(text_len, 0);
  assert_int_equal(text[0], '\0');
  free(text);
  free(blob);

  /* binary with NULs, longer than a block */
  unsigned char bin[1000];
  for (size_t i = 0; i < sizeof(bin); i++)
    bin[i] = (unsigned char)(i * 31);
  assert_int_equal(mg_seal(&k, "b", bin, sizeof(bin), &blob, &blob_len), 0);
  assert_int_equal(mg_open(&k, "b", blob, blob_len, &text, &text_len), 0);
  assert_int_equal(text_len, sizeof(bin));
  assert_memory_equal(text, bin, sizeof(bin));
  assert_int_equal(text[sizeof(bin)], '\0');
  free(text);
  free(blob);
}

static void test_random_nonce(void **state) {
  (void)state;
  struct mg_key k;
  unsigned char *a = NULL, *b = NULL;
  size_t la = 0, lb = 0;
  fixed_key(&k, 2);
  assert_int_equal(mg_seal(&k, "r1", "same", 4, &a, &la), 0);
  assert_int_equal(mg_seal(&k, "r1", "same", 4, &b, &lb), 0);
  assert_int_equal(la, lb);
  assert_memory_not_equal(a + 1, b + 1, 12);  /* nonce */
  assert_memory_not_equal(a + 13, b + 13, 4); /* so the ciphertext too */
  free(a);
  free(b);
}

static void expect_bad(const struct mg_key *k, const char *aad,
                       const unsigned char *blob, size_t len) {
  unsigned char *text = (unsigned char *)"untouched";
  size_t text_len = 99;
  assert_int_equal(mg_open(k, aad, blob, len, &text, &text_len), -EBADMSG);
  assert_null(text);
  assert_int_equal(text_len, 0);
}

static void test_tamper(void **state) {
  (void)state;
  struct mg_key k, other;
  unsigned char *blob = NULL;
  size_t len = 0;
  fixed_key(&k, 3);
  fixed_key(&other, 4);
  assert_int_equal(mg_seal(&k, "resident:7", "secret", 6, &blob, &len), 0);
  /* every bit of every byte: version, nonce, ciphertext, tag */
  for (size_t i = 0; i < len; i++)
    for (int bit = 0; bit < 8; bit++) {
      blob[i] ^= (unsigned char)(1 << bit);
      expect_bad(&k, "resident:7", blob, len);
      blob[i] ^= (unsigned char)(1 << bit);
    }
  /* wrong row, wrong key */
  expect_bad(&k, "resident:8", blob, len);
  expect_bad(&k, NULL, blob, len);
  expect_bad(&other, "resident:7", blob, len);
  /* truncated anywhere, empty, nothing */
  for (size_t n = 0; n < len; n++)
    expect_bad(&k, "resident:7", blob, n);
  expect_bad(&k, "resident:7", NULL, 0);
  /* another version byte, even with everything else intact */
  blob[0] = 0x02;
  expect_bad(&k, "resident:7", blob, len);
  blob[0] = 0x00;
  expect_bad(&k, "resident:7", blob, len);
  blob[0] = 0x01;
  /* appended garbage moves the tag */
  unsigned char longer[64];
  memcpy(longer, blob, len);
  longer[len] = 0;
  expect_bad(&k, "resident:7", longer, len + 1);
  /* and the untouched blob still opens */
  unsigned char *text = NULL;
  size_t text_len = 0;
  assert_int_equal(mg_open(&k, "resident:7", blob, len, &text, &text_len), 0);
  assert_string_equal((char *)text, "secret");
  free(text);
  free(blob);
}

static void test_key_create_load(void **state) {
  struct fx *f = *state;
  struct mg_key k1, k2, zero;
  struct mg_err err = {{0}};
  struct stat st;
  memset(&zero, 0, sizeof(zero));
  assert_int_equal(mg_key_load(f->path, &k1, &err), 0);
  assert_int_equal(stat(f->path, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  assert_int_equal(st.st_size, 32);
  assert_memory_not_equal(&k1, &zero, sizeof(k1));
  /* the new directories are the daemon's only */
  char dir[160];
  snprintf(dir, sizeof(dir), "%s/keys", f->dir);
  assert_int_equal(stat(dir, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0700);
  snprintf(dir, sizeof(dir), "%s/keys/sub", f->dir);
  assert_int_equal(stat(dir, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0700);
  /* no temporary file left behind */
  char cmd[256];
  snprintf(cmd, sizeof(cmd), "test $(ls -A %s | wc -l) -eq 1", dir);
  assert_int_equal(system(cmd), 0);

  /* loaded again: the same key, and it opens what the first sealed */
  assert_int_equal(mg_key_load(f->path, &k2, &err), 0);
  assert_memory_equal(&k1, &k2, sizeof(k1));
  unsigned char *blob = NULL, *text = NULL;
  size_t len = 0, text_len = 0;
  assert_int_equal(mg_seal(&k1, "x", "kept", 4, &blob, &len), 0);
  assert_int_equal(mg_open(&k2, "x", blob, len, &text, &text_len), 0);
  assert_string_equal((char *)text, "kept");
  free(text);
  free(blob);

  mg_key_wipe(&k2);
  assert_memory_equal(&k2, &zero, sizeof(k2));
  mg_key_wipe(&k1);
}

static void test_key_refused(void **state) {
  struct fx *f = *state;
  struct mg_key k;
  struct mg_err err = {{0}};
  unsigned char bytes[33];
  char path[160];
  memset(bytes, 0xA5, sizeof(bytes));

  snprintf(path, sizeof(path), "%s/short.key", f->dir);
  write_file(path, bytes, 31, 0600);
  assert_int_equal(mg_key_load(path, &k, &err), -EINVAL);
  assert_non_null(strstr(err.msg, path));
  assert_non_null(strstr(err.msg, "31 bytes"));
  assert_non_null(strstr(err.msg, "32"));

  snprintf(path, sizeof(path), "%s/long.key", f->dir);
  write_file(path, bytes, 33, 0600);
  assert_int_equal(mg_key_load(path, &k, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "33 bytes"));

  snprintf(path, sizeof(path), "%s/empty.key", f->dir);
  write_file(path, bytes, 0, 0600);
  assert_int_equal(mg_key_load(path, &k, &err), -EINVAL);

  /* right size, loose mode */
  snprintf(path, sizeof(path), "%s/open.key", f->dir);
  write_file(path, bytes, 32, 0644);
  assert_int_equal(mg_key_load(path, &k, &err), -EPERM);
  assert_non_null(strstr(err.msg, path));
  assert_non_null(strstr(err.msg, "0644"));
  assert_non_null(strstr(err.msg, "chmod 600"));
  assert_int_equal(chmod(path, 0640), 0);
  assert_int_equal(mg_key_load(path, &k, &err), -EPERM);
  assert_int_equal(chmod(path, 0604), 0);
  assert_int_equal(mg_key_load(path, &k, &err), -EPERM);
  assert_int_equal(chmod(path, 0400), 0);
  assert_int_equal(mg_key_load(path, &k, &err), 0); /* read-only is fine */
  assert_memory_equal(k.k, bytes, 32);
  mg_key_wipe(&k);

  /* a directory where the file should be */
  snprintf(path, sizeof(path), "%s/dir.key", f->dir);
  assert_int_equal(mkdir(path, 0700), 0);
  assert_int_equal(mg_key_load(path, &k, &err), -EINVAL);
  assert_non_null(strstr(err.msg, path));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_random_nonce),
      cmocka_unit_test(test_tamper),
      cmocka_unit_test_setup_teardown(test_key_create_load, setup, teardown),
      cmocka_unit_test_setup_teardown(test_key_refused, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
