/*
 * test_auth.c — password hashing, lockout, validity, sessions and CSRF
 * against a real database (core/auth.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth.h"

struct fx {
  char dir[64];
  struct mg_store *st;
};

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof(*f));
  struct mg_err err = {{0}};
  char db[128];
  snprintf(f->dir, sizeof(f->dir), "/tmp/mg-auth.XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(db, sizeof(db), "%s/madoguchi.db", f->dir);
  assert_int_equal(mg_store_open(db, &f->st, &err), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  char cmd[128];
  mg_store_close(f->st);
  snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

static const time_t NOW = 1712000000; /* 2024-04-01T19:33:20Z */

static void test_hash(void **state) {
  char h[MG_AUTH_HASH_MAX], h2[MG_AUTH_HASH_MAX];
  (void)state;
  assert_int_equal(mg_auth_hash_password("correct horse", h), 0);
  assert_true(strncmp(h, "scrypt$15$8$1$", 14) == 0);
  assert_int_equal(strlen(h), 14 + 24 + 1 + 44);
  assert_int_equal(mg_auth_verify_password("correct horse", h), 1);
  assert_int_equal(mg_auth_verify_password("correct horsE", h), 0);
  assert_int_equal(mg_auth_hash_password("correct horse", h2), 0);
  assert_string_not_equal(h, h2); /* salted */
  assert_int_equal(mg_auth_verify_password("x", "scrypt$15$8$1$bad$bad"), 0);
  assert_int_equal(mg_auth_verify_password("x", "plain"), 0);
}

static void add(struct fx *f, const char *id, const char *from, const char *until) {
  struct mg_err err = {{0}};
  assert_int_equal(mg_auth_user_add(f->st, id, "Name", "staff", "password-1",
                                    from, until, NOW, &err), 0);
}

static void test_login_lockout(void **state) {
  struct fx *f = *state;
  struct mg_auth_session s, g;
  struct mg_err err = {{0}};
  add(f, "tanaka", NULL, NULL);
  assert_int_equal(mg_auth_user_add(f->st, "tanaka", "N", "staff", "password-1",
                                    NULL, NULL, NOW, &err), -EEXIST);
  assert_int_equal(mg_auth_user_add(f->st, "x", "N", "boss", "password-1",
                                    NULL, NULL, NOW, &err), -EINVAL);
  assert_int_equal(mg_auth_user_add(f->st, "x", "N", "staff", "short",
                                    NULL, NULL, NOW, &err), -EINVAL);
  assert_int_equal(mg_auth_login(f->st, "nobody", "password-1", "c1", NOW, &s),
                   MG_AUTH_BAD);
  /* failures, then a success resets the count */
  for (int i = 0; i < 4; i++)
    assert_int_equal(mg_auth_login(f->st, "tanaka", "wrong", "c1", NOW, &s),
                     MG_AUTH_BAD);
  assert_int_equal(mg_auth_login(f->st, "tanaka", "password-1", "c1", NOW, &s),
                   MG_AUTH_OK);
  for (int i = 0; i < 4; i++)
    assert_int_equal(mg_auth_login(f->st, "tanaka", "wrong", "c1", NOW, &s),
                     MG_AUTH_BAD);
  assert_int_equal(mg_auth_login(f->st, "tanaka", "wrong", "c1", NOW, &s),
                   MG_AUTH_LOCKED);
  assert_string_equal(s.locked_until, "2024-04-01T19:48:20Z");
  assert_int_equal(mg_auth_login(f->st, "tanaka", "password-1", "c1", NOW + 60, &s),
                   MG_AUTH_LOCKED);
  /* the lock runs out after 15 minutes */
  assert_int_equal(mg_auth_login(f->st, "tanaka", "password-1", "c1",
                                 NOW + MG_AUTH_LOCK_S + 1, &s),
                   MG_AUTH_OK);
  assert_int_equal(strlen(s.token), 43);
  assert_int_equal(strlen(s.csrf), 22);
  assert_string_equal(s.counter, "c1");
  /* lookup, CSRF, expiry */
  assert_int_equal(mg_auth_session_get(f->st, s.token, NOW + 3600, &g), 0);
  assert_string_equal(g.user_id, "tanaka");
  assert_true(mg_auth_csrf_ok(&g, s.csrf));
  assert_false(mg_auth_csrf_ok(&g, "nope"));
  assert_false(mg_auth_csrf_ok(&g, ""));
  assert_int_equal(mg_auth_session_get(f->st, "not-a-token", NOW, &g), -ENOENT);
  assert_int_equal(mg_auth_session_get(f->st, s.token,
                                       NOW + MG_AUTH_LOCK_S + 1 + MG_AUTH_SESSION_S, &g),
                   -ENOENT);
  assert_int_equal(mg_auth_session_get(f->st, s.token, NOW + 3600, &g), -ENOENT);
  /* logout */
  assert_int_equal(mg_auth_login(f->st, "tanaka", "password-1", "c1", NOW, &s), MG_AUTH_OK);
  assert_int_equal(mg_auth_logout(f->st, s.token), 0);
  assert_int_equal(mg_auth_session_get(f->st, s.token, NOW, &g), -ENOENT);
  /* deleting the user ends their sessions */
  assert_int_equal(mg_auth_login(f->st, "tanaka", "password-1", "c1", NOW, &s), MG_AUTH_OK);
  assert_int_equal(mg_auth_user_del(f->st, "tanaka"), 0);
  assert_int_equal(mg_auth_session_get(f->st, s.token, NOW, &g), -ENOENT);
}

static void test_validity(void **state) {
  struct fx *f = *state;
  struct mg_auth_session s;
  add(f, "later", "2024-04-02", NULL);
  add(f, "gone", NULL, "2024-03-31");
  add(f, "today", "2024-04-01", "2024-04-01");
  assert_int_equal(mg_auth_login(f->st, "later", "password-1", "c", NOW, &s),
                   MG_AUTH_NOT_VALID);
  assert_int_equal(mg_auth_login(f->st, "later", "password-1", "c", NOW + 86400, &s),
                   MG_AUTH_OK);
  assert_int_equal(mg_auth_login(f->st, "gone", "password-1", "c", NOW, &s),
                   MG_AUTH_NOT_VALID);
  assert_int_equal(mg_auth_login(f->st, "today", "password-1", "c", NOW, &s), MG_AUTH_OK);
  /* a wrong password does not learn about validity */
  assert_int_equal(mg_auth_login(f->st, "gone", "wrong-pass", "c", NOW, &s), MG_AUTH_BAD);
}

static void test_cookie(void **state) {
  char tok[80];
  (void)state;
  assert_int_equal(mg__auth_cookie_token("a=1; mg_session=abc; b=2", tok, sizeof(tok)), 0);
  assert_string_equal(tok, "abc");
  assert_int_equal(mg__auth_cookie_token("mg_session=xyz", tok, sizeof(tok)), 0);
  assert_string_equal(tok, "xyz");
  assert_int_equal(mg__auth_cookie_token("xmg_session=1", tok, sizeof(tok)), -1);
  assert_int_equal(mg__auth_cookie_token("mg_session=", tok, sizeof(tok)), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hash),
      cmocka_unit_test_setup_teardown(test_login_lockout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_validity, setup, teardown),
      cmocka_unit_test(test_cookie),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
