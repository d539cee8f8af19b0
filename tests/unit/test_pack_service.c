/*
 * test_pack_service.c — activation without disruption: a visit holding a
 * pack keeps that release (model and files) while newer packs activate,
 * and the release is pruned only once nobody holds it.  Real git
 * repository, real SSH signatures, the real validator, a real loop.
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
#include <uv.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"
#include "pack.h"
#include "pack_service.h"

static char dir[64];
static char cmd[4096];

static void sh(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  if (system(cmd) != 0)
    fail_msg("command failed: %s", cmd);
}

/* Commit what is in the repository, signed; returns the commit id. */
static void commit(const char *msg, char out[41]) {
  sh("cd %s/repo && git add -A && git -c gpg.format=ssh -c user.signingkey=%s/key.pub "
     "-c user.name=t -c user.email=t@example.invalid commit -q -S -m '%s'",
     dir, dir, msg);
  snprintf(cmd, sizeof(cmd), "git -C %s/repo rev-parse HEAD", dir);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  assert_non_null(fgets(out, 41, p));
  pclose(p);
}

static int done_rc;
static int done_calls;
static void on_done(void *ud, int rc, const char *json) {
  (void)ud;
  (void)json;
  done_rc = rc;
  done_calls++;
}

static void pull(uv_loop_t *loop, struct mg_pack_service *s) {
  done_calls = 0;
  assert_int_equal(mg_pack_service_pull(s, on_done, NULL), 0);
  uv_run(loop, UV_RUN_DEFAULT); /* returns when the job is done */
  assert_int_equal(done_calls, 1);
  assert_int_equal(done_rc, 0);
}

static int release_exists(const char *commit) {
  struct stat st;
  snprintf(cmd, sizeof(cmd), "%s/state/packs/releases/%s", dir, commit);
  return stat(cmd, &st) == 0;
}

/* A signed repository holding the mini fixture pack (first commit in c1)
 * and a config pulling from it. */
static struct mg_config *setup(char c1[41], const char *extra) {
  char text[2048];
  struct mg_config *cfg = NULL;
  struct mg_err err = {{0}};
  snprintf(dir, sizeof(dir), "/tmp/mg-test-packsvc-XXXXXX");
  assert_non_null(mkdtemp(dir));
  sh("ssh-keygen -q -t ed25519 -N '' -f %s/key", dir);
  sh("printf 'a@city namespaces=\"git\" %%s\\n' \"$(cut -d' ' -f1,2 %s/key.pub)\" "
     "> %s/signers", dir, dir);
  sh("git init -q -b main %s/repo && cp -r %s/tests/fixtures/packs/mini/. %s/repo/",
     dir, MG_TEST_SOURCE_DIR, dir);
  commit("one", c1);
  snprintf(text, sizeof(text),
           "[daemon]\nstate_dir = %s/state\n[pack]\nurl = file://%s/repo\n"
           "allowed_signers = %s/signers\ninterval = 0\n%s",
           dir, dir, dir, extra);
  assert_int_equal(mg_config_parse(text, strlen(text), "t.conf", &cfg, &err), 0);
  return cfg;
}

/* The daemon's order: stop, let the loop close what was open, free. */
static void shut_down(uv_loop_t *loop, struct mg_pack_service *s) {
  mg_pack_service_stop(s);
  uv_run(loop, UV_RUN_DEFAULT);
  mg_pack_service_free(s);
  assert_int_equal(uv_loop_close(loop), 0);
}

static void test_visits_keep_their_pack(void **state) {
  (void)state;
  char c1[41], c2[41], c3[41], c4[41];
  struct mg_config *cfg = NULL;
  struct mg_err err = {{0}};
  struct mg_pack_service *s = NULL;
  uv_loop_t loop;

  cfg = setup(c1, "keep_releases = 1\n");
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(mg_pack_service_start(&loop, cfg, NULL, NULL, &s, &err), 0);
  assert_null(mg_pack_service_acquire(s)); /* nothing active yet */

  pull(&loop, s);
  struct mg_pack_use *v1 = mg_pack_service_acquire(s); /* a visit starts */
  assert_non_null(v1);
  assert_string_equal(mg_pack_use_commit(v1), c1);
  assert_non_null(mg_pack_use_model(v1));

  sh("sed -i 's/^name = .*/name = second/' %s/repo/pack.ini", dir);
  commit("two", c2);
  pull(&loop, s);
  struct mg_pack_use *v2 = mg_pack_service_acquire(s); /* a new visit */
  assert_string_equal(mg_pack_use_commit(v2), c2);
  assert_string_equal(mg_pack_use_commit(v1), c1); /* the old one keeps its */
  assert_ptr_not_equal(mg_pack_use_model(v1), mg_pack_use_model(v2));

  /* keep_releases = 1: c1 would go, but the first visit still holds it */
  sh("sed -i 's/^name = .*/name = third/' %s/repo/pack.ini", dir);
  commit("three", c3);
  pull(&loop, s);
  assert_true(release_exists(c1));
  assert_true(release_exists(c2));
  assert_true(release_exists(c3));

  /* the first visit ends: the next activation prunes c1 */
  mg_pack_service_release(s, v1);
  sh("sed -i 's/^name = .*/name = fourth/' %s/repo/pack.ini", dir);
  commit("four", c4);
  pull(&loop, s);
  assert_false(release_exists(c1));
  assert_true(release_exists(c2)); /* the second visit holds it */
  assert_true(release_exists(c4));

  mg_pack_service_release(s, v2);
  shut_down(&loop, s);
  mg_config_free(cfg);
  sh("rm -rf %s", dir);
}

/* After a restart the active release is loaded off the loop. */
static void test_restart_loads_the_active_pack(void **state) {
  (void)state;
  char c1[41];
  struct mg_config *cfg = NULL;
  struct mg_err err = {{0}};
  struct mg_pack_service *s = NULL;
  uv_loop_t loop;

  cfg = setup(c1, "");
  for (int run = 0; run < 2; run++) {
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(mg_pack_service_start(&loop, cfg, NULL, NULL, &s, &err), 0);
    if (run == 0)
      pull(&loop, s);
    else
      uv_run(&loop, UV_RUN_DEFAULT); /* the load job */
    struct mg_pack_use *v = mg_pack_service_acquire(s);
    assert_non_null(v);
    assert_string_equal(mg_pack_use_commit(v), c1);
    assert_non_null(mg_pack_use_model(v));
    mg_pack_service_release(s, v);
    shut_down(&loop, s);
  }
  mg_config_free(cfg);
  sh("rm -rf %s", dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_visits_keep_their_pack),
      cmocka_unit_test(test_restart_loads_the_active_pack),
  };
  setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
  mg_log_set_level(MG_LOG_ERR);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
