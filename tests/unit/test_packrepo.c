/*
 * test_packrepo.c — procedure packs from real git repositories made with
 * the git CLI in temporary folders, commits signed with throwaway Ed25519
 * keys (git -c gpg.format=ssh commit -S), verified through sshsig.
 *
 * Covers: activation and its record, incremental updates, every refusal
 * rule (other key, unsigned, not a fast-forward, invalid pack) leaving the
 * active release untouched, rollback and its pin, pruning, recovery from
 * the debris of interrupted runs, and real kill -9 at random moments.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <git2.h>

#include "json.h"
#include "packrepo.h"
#include "sshsig.h"

/* Keys and signers shared by every test (made once in group setup). */
static struct {
  char dir[64];
  char admin[128]; /* private key path; .pub next to it */
  char other[128]; /* a key that is not an allowed signer */
  struct mg_signers *signers;
} g;

struct fx {
  char root[64];
  char src[256];   /* the remote: a normal repository, branch main */
  char packs[256]; /* opts.dir (made by the code under test) */
  struct mg_packrepo_opts o;
  int validate_calls;
};

/* ---- helpers ------------------------------------------------------------ */

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  int rc = system(cmd);
  if (rc != 0)
    fail_msg("command failed (%d): %s", rc, cmd);
}

static void sh_out(char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void sh_out(char *out, size_t len, const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = fread(out, 1, len - 1, p);
  out[n] = '\0';
  while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
    out[--n] = '\0';
  if (pclose(p) != 0)
    fail_msg("command failed: %s", cmd);
}

static void write_file(const char *path, const char *text) {
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs(text, fp);
  assert_int_equal(fclose(fp), 0);
}

static char *slurp(const char *path) {
  FILE *fp = fopen(path, "r");
  if (!fp)
    return NULL;
  char *buf = calloc(1, 65536);
  assert_non_null(buf);
  size_t n = fread(buf, 1, 65535, fp);
  buf[n] = '\0';
  fclose(fp);
  return buf;
}

static int exists(const char *fmt, const char *a, const char *b) {
  char path[PATH_MAX];
  struct stat st;
  snprintf(path, sizeof(path), fmt, a, b);
  return lstat(path, &st) == 0;
}

/* Commit file=content in the remote, signed with key (NULL: unsigned). */
static void commit_file(struct fx *f, const char *key, const char *file,
                        const char *content, char out[41]) {
  char path[PATH_MAX];
  snprintf(path, sizeof(path), "%s/%s", f->src, file);
  write_file(path, content);
  sh("git -C %s add -A", f->src);
  if (key)
    sh("git -C %s -c gpg.format=ssh -c user.signingkey=%s.pub "
       "-c user.name=Admin -c user.email=admin@example.invalid "
       "commit -q -S -m 'pack %s'",
       f->src, key, file);
  else
    sh("git -C %s -c user.name=Admin -c user.email=admin@example.invalid "
       "-c commit.gpgsign=false commit -q -m 'pack %s'",
       f->src, file);
  sh_out(out, 41, "git -C %s rev-parse HEAD", f->src);
  assert_int_equal(strlen(out), 40);
}

static void link_target(struct fx *f, char *out, size_t len) {
  char path[PATH_MAX];
  snprintf(path, sizeof(path), "%s/current", f->packs);
  ssize_t n = readlink(path, out, len - 1);
  if (n < 0)
    fail_msg("%s: %s", path, strerror(errno));
  out[n] = '\0';
}

/* releases/<hex> holds exactly the tree of commit hex in the remote. */
static void assert_tree(struct fx *f, const char *hex) {
  sh("cd %s/releases/%s && git -C %s ls-tree -r --name-only %s | "
     "while read -r p; do git -C %s show %s:\"$p\" | cmp -s - \"$p\" || "
     "{ echo \"differs: $p\"; exit 1; }; done && "
     "test \"$(find . -type f | wc -l)\" = "
     "\"$(git -C %s ls-tree -r --name-only %s | wc -l)\"",
     f->packs, hex, f->src, hex, f->src, hex, f->src, hex);
}

/* current -> releases/<hex>, complete, its record names the signer. */
static void assert_active(struct fx *f, const char *hex) {
  char target[PATH_MAX], want[64], path[PATH_MAX];
  link_target(f, target, sizeof(target));
  snprintf(want, sizeof(want), "releases/%s", hex);
  assert_string_equal(target, want);
  struct mg_pack_release a;
  struct mg_err e = {{0}};
  int rc = mg_packrepo_status(f->packs, &a, NULL, NULL, &e);
  if (rc)
    fail_msg("status: %d %s", rc, e.msg);
  assert_string_equal(a.commit, hex);
  assert_string_equal(a.signer, "admin@city");
  assert_memory_equal(a.fingerprint, "SHA256:", 7);
  assert_true(a.activated_at > 0);
  assert_int_equal(mg_packrepo_current_dir(f->packs, path, sizeof(path)), 0);
  assert_non_null(strstr(path, want));
  assert_tree(f, hex);
}

static int count_prefix(struct fx *f, const char *prefix) {
  char path[PATH_MAX];
  snprintf(path, sizeof(path), "%s/releases", f->packs);
  DIR *d = opendir(path);
  if (!d)
    return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
      n++;
  closedir(d);
  return n;
}

static int pull(struct fx *f, int *changed, struct mg_pack_release *a,
                struct mg_err *e) {
  struct mg_pack_release tmp;
  int ch = -1;
  memset(e, 0, sizeof(*e));
  int rc = mg_packrepo_pull(&f->o, a ? a : &tmp, changed ? changed : &ch, e);
  return rc;
}

static void pull_ok(struct fx *f, int want_changed, const char *hex) {
  struct mg_pack_release a;
  struct mg_err e;
  int changed = -1;
  int rc = pull(f, &changed, &a, &e);
  if (rc)
    fail_msg("pull: %d %s", rc, e.msg);
  assert_int_equal(changed, want_changed);
  assert_string_equal(a.commit, hex);
}

/* Refused with rc, the message naming the commit and containing sub. */
static void pull_refused(struct fx *f, int want_rc, const char *hex,
                         const char *sub) {
  struct mg_err e;
  int changed = -1;
  int rc = pull(f, &changed, NULL, &e);
  char shortid[8];
  snprintf(shortid, sizeof(shortid), "%.7s", hex);
  if (rc != want_rc || !strstr(e.msg, sub) || !strstr(e.msg, shortid))
    fail_msg("pull: rc %d (want %d), \"%s\" (want %s and \"%s\")", rc,
             want_rc, e.msg, shortid, sub);
  assert_int_equal(changed, 0);
  assert_int_equal(count_prefix(f, ".staging-"), 0);
  assert_false(exists("%s/releases/%s", f->packs, hex));
}

static int need_manifest(void *ud, const char *tree, struct mg_err *err) {
  struct fx *f = ud;
  char path[PATH_MAX];
  f->validate_calls++;
  if (!strstr(tree, "/releases/.staging-"))
    return mg_err_set(err, -EINVAL, "validated outside staging: %s", tree);
  snprintf(path, sizeof(path), "%s/manifest.json", tree);
  if (access(path, F_OK) != 0)
    return mg_err_set(err, -EINVAL, "manifest.json is missing");
  return 0;
}

/* ---- fixtures ----------------------------------------------------------- */

static int group_setup(void **state) {
  (void)state;
  char pub[1024], text[1200];
  struct mg_err e = {{0}};
  /* No user or system git configuration, no agent. */
  setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
  setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
  unsetenv("SSH_AUTH_SOCK");
  snprintf(g.dir, sizeof(g.dir), "/tmp/tpr-keys-XXXXXX");
  if (!mkdtemp(g.dir))
    return -1;
  snprintf(g.admin, sizeof(g.admin), "%s/admin", g.dir);
  snprintf(g.other, sizeof(g.other), "%s/other", g.dir);
  char cmd[PATH_MAX * 2];
  snprintf(cmd, sizeof(cmd),
           "ssh-keygen -q -t ed25519 -N '' -f %s && "
           "ssh-keygen -q -t ed25519 -N '' -f %s",
           g.admin, g.other);
  if (system(cmd) != 0)
    return -1;
  snprintf(cmd, sizeof(cmd), "cut -d' ' -f1,2 %s.pub", g.admin);
  FILE *p = popen(cmd, "r");
  if (!p || !fgets(pub, sizeof(pub), p))
    return -1;
  pclose(p);
  pub[strcspn(pub, "\n")] = '\0';
  snprintf(text, sizeof(text), "admin@city namespaces=\"git\" %s\n", pub);
  if (mg_signers_parse(text, strlen(text), "allowed_signers", &g.signers,
                       &e) != 0) {
    fprintf(stderr, "signers: %s\n", e.msg);
    return -1;
  }
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  char cmd[128];
  mg_signers_free(g.signers);
  snprintf(cmd, sizeof(cmd), "rm -rf %s", g.dir);
  if (system(cmd) != 0)
    return -1;
  git_libgit2_shutdown(); /* packrepo initialised it once */
  return 0;
}

static int fx_setup(void **state) {
  struct fx *f = calloc(1, sizeof(*f));
  if (!f)
    return -1;
  snprintf(f->root, sizeof(f->root), "/tmp/tpr-XXXXXX");
  if (!mkdtemp(f->root))
    return -1;
  snprintf(f->src, sizeof(f->src), "%s/src", f->root);
  snprintf(f->packs, sizeof(f->packs), "%s/state/packs", f->root);
  char cmd[PATH_MAX + 64];
  snprintf(cmd, sizeof(cmd), "git init -q -b main %s", f->src);
  if (system(cmd) != 0)
    return -1;
  f->o.dir = f->packs;
  f->o.url = f->src;
  f->o.branch = "main";
  f->o.signers = g.signers;
  f->o.keep_releases = 3;
  *state = f;
  return 0;
}

static int fx_teardown(void **state) {
  struct fx *f = *state;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", f->root);
  int rc = system(cmd);
  free(f);
  return rc == 0 ? 0 : -1;
}

/* ---- tests -------------------------------------------------------------- */

static void test_signed_tip_activates(void **state) {
  struct fx *f = *state;
  char c1[41], path[PATH_MAX];
  commit_file(f, g.admin, "procedure.txt", "転入届 v1\n", c1);
  sh("mkdir -p %s/forms && echo form > %s/forms/a.txt && "
     "git -C %s add -A && git -C %s -c gpg.format=ssh "
     "-c user.signingkey=%s.pub -c user.name=Admin "
     "-c user.email=admin@example.invalid commit -q -S --amend --no-edit",
     f->src, f->src, f->src, f->src, g.admin);
  sh_out(c1, sizeof(c1), "git -C %s rev-parse HEAD", f->src);
  pull_ok(f, 1, c1);
  assert_active(f, c1);
  snprintf(path, sizeof(path), "%s/releases/%s.json", f->packs, c1);
  char *json = slurp(path);
  assert_non_null(json);
  struct mg_json *j = NULL;
  assert_int_equal(mg_json_parse(json, strlen(json), NULL, &j, NULL), 0);
  assert_string_equal(mg_json_get_str(j, "commit"), c1);
  assert_string_equal(mg_json_get_str(j, "signer"), "admin@city");
  int64_t at = 0;
  assert_int_equal(mg_json_get_int(j, "activated_at", &at), 0);
  assert_true(at > 0 && at <= (int64_t)time(NULL));
  mg_json_free(j);
  free(json);
  /* Same tip again: nothing to do. */
  pull_ok(f, 0, c1);
  /* The bare cache got no index from the checkout. */
  assert_false(exists("%s/cache.git/%s", f->packs, "index"));
  assert_true(exists("%s/cache.git/%s", f->packs, "HEAD"));
}

static void test_second_commit_incremental(void **state) {
  struct fx *f = *state;
  char c1[41], c2[41], url[PATH_MAX + 8];
  snprintf(url, sizeof(url), "file://%s", f->src);
  f->o.url = url;
  commit_file(f, g.admin, "a.txt", "one\n", c1);
  pull_ok(f, 1, c1);
  commit_file(f, g.admin, "b.txt", "two\n", c2);
  pull_ok(f, 1, c2);
  assert_active(f, c2);
  assert_true(exists("%s/releases/%s", f->packs, c1));
  struct mg_pack_release a, *prev = NULL;
  size_t n = 0;
  struct mg_err e;
  assert_int_equal(mg_packrepo_status(f->packs, &a, &prev, &n, &e), 0);
  assert_int_equal(n, 1);
  assert_string_equal(prev[0].commit, c1);
  assert_string_equal(prev[0].signer, "admin@city");
  free(prev);
}

static void test_other_key_rejected(void **state) {
  struct fx *f = *state;
  char c1[41], c2[41];
  commit_file(f, g.admin, "a.txt", "one\n", c1);
  pull_ok(f, 1, c1);
  commit_file(f, g.other, "a.txt", "evil\n", c2);
  pull_refused(f, -EKEYREJECTED, c2, "commit");
  assert_active(f, c1);
}

static void test_unsigned_refused(void **state) {
  struct fx *f = *state;
  char c0[41], c1[41], c2[41];
  struct mg_err e;
  commit_file(f, NULL, "a.txt", "zero\n", c0);
  pull_refused(f, -EKEYREJECTED, c0, "is not signed");
  assert_false(exists("%s/%s", f->packs, "current"));
  assert_int_equal(mg_packrepo_status(f->packs, NULL, NULL, NULL, &e),
                   -ENOENT);
  commit_file(f, g.admin, "a.txt", "one\n", c1);
  pull_ok(f, 1, c1);
  commit_file(f, NULL, "a.txt", "two\n", c2);
  pull_refused(f, -EKEYREJECTED, c2, "is not signed");
  assert_active(f, c1);
}

static void test_force_push_stale(void **state) {
  struct fx *f = *state;
  char c1[41], c2[41], c3[41];
  commit_file(f, g.admin, "a.txt", "one\n", c1);
  pull_ok(f, 1, c1);
  commit_file(f, g.admin, "a.txt", "two\n", c2);
  pull_ok(f, 1, c2);
  /* Rewrite history: c3 is signed but a sibling of c2. */
  sh("git -C %s reset -q --hard %s", f->src, c1);
  commit_file(f, g.admin, "a.txt", "three\n", c3);
  pull_refused(f, -ESTALE, c3, "not a fast-forward of the active pack");
  assert_active(f, c2);
  /* Replaying the older signed c1 (still kept) is refused too. */
  sh("git -C %s reset -q --hard %s", f->src, c1);
  struct mg_err e;
  assert_int_equal(pull(f, NULL, NULL, &e), -ESTALE);
  assert_non_null(strstr(e.msg, "not a fast-forward"));
  assert_active(f, c2);
}

static void test_validate_fails(void **state) {
  struct fx *f = *state;
  char c1[41], c2[41];
  struct mg_err e;
  f->o.validate = need_manifest;
  f->o.validate_ud = f;
  commit_file(f, g.admin, "manifest.json", "{}\n", c1);
  pull_ok(f, 1, c1);
  assert_int_equal(f->validate_calls, 1);
  sh("git -C %s rm -q manifest.json", f->src);
  commit_file(f, g.admin, "other.txt", "x\n", c2);
  int rc = pull(f, NULL, NULL, &e);
  assert_int_equal(rc, -EINVAL);
  assert_non_null(strstr(e.msg, "manifest.json is missing"));
  assert_non_null(strstr(e.msg, "invalid"));
  assert_int_equal(f->validate_calls, 2);
  assert_int_equal(count_prefix(f, ".staging-"), 0);
  assert_false(exists("%s/releases/%s", f->packs, c2));
  assert_active(f, c1);
}

static void test_rollback_and_pin(void **state) {
  struct fx *f = *state;
  char c1[41], c2[41], c3[41], path[PATH_MAX];
  struct mg_pack_release a;
  struct mg_err e;
  commit_file(f, g.admin, "a.txt", "one\n", c1);
  pull_ok(f, 1, c1);
  assert_int_equal(mg_packrepo_rollback(f->packs, &a, &e), -ENOENT);
  commit_file(f, g.admin, "a.txt", "two\n", c2);
  pull_ok(f, 1, c2);
  assert_int_equal(mg_packrepo_rollback(f->packs, &a, &e), 0);
  assert_string_equal(a.commit, c1);
  assert_active(f, c1);
  snprintf(path, sizeof(path), "%s/state.json", f->packs);
  char *st = slurp(path);
  assert_non_null(st);
  assert_non_null(strstr(st, c2));
  free(st);
  /* The remote still has c2: pinned, not re-activated. */
  pull_ok(f, 0, c1);
  assert_active(f, c1);
  /* Nothing older than c1. */
  assert_int_equal(mg_packrepo_rollback(f->packs, &a, &e), -ENOENT);
  assert_active(f, c1);
  /* A newer commit activates and clears the pin. */
  commit_file(f, g.admin, "a.txt", "three\n", c3);
  pull_ok(f, 1, c3);
  assert_active(f, c3);
  assert_false(exists("%s/%s", f->packs, "state.json"));
  struct mg_pack_release *prev = NULL;
  size_t n = 0;
  assert_int_equal(mg_packrepo_status(f->packs, &a, &prev, &n, &e), 0);
  assert_int_equal(n, 2);
  free(prev);
}

static void test_double_rollback_keeps_pin(void **state) {
  struct fx *f = *state;
  char c[3][41];
  struct mg_pack_release a;
  struct mg_err e;
  for (int i = 0; i < 3; i++) {
    char text[16];
    snprintf(text, sizeof(text), "v%d\n", i);
    commit_file(f, g.admin, "a.txt", text, c[i]);
    pull_ok(f, 1, c[i]);
  }
  assert_int_equal(mg_packrepo_rollback(f->packs, &a, &e), 0);
  assert_string_equal(a.commit, c[1]);
  assert_int_equal(mg_packrepo_rollback(f->packs, &a, &e), 0);
  assert_string_equal(a.commit, c[0]);
  pull_ok(f, 0, c[0]);
  assert_active(f, c[0]);
}

static void test_keep_releases_prunes(void **state) {
  struct fx *f = *state;
  char c[4][41];
  f->o.keep_releases = 1;
  for (int i = 0; i < 4; i++) {
    char text[16];
    snprintf(text, sizeof(text), "v%d\n", i);
    commit_file(f, g.admin, "a.txt", text, c[i]);
    pull_ok(f, 1, c[i]);
  }
  assert_active(f, c[3]);
  assert_true(exists("%s/releases/%s", f->packs, c[2]));
  assert_false(exists("%s/releases/%s", f->packs, c[1]));
  assert_false(exists("%s/releases/%s", f->packs, c[0]));
  char name[64];
  snprintf(name, sizeof(name), "%s.json", c[0]);
  assert_false(exists("%s/releases/%s", f->packs, name));
  struct mg_pack_release a, *prev = NULL;
  size_t n = 0;
  struct mg_err e;
  assert_int_equal(mg_packrepo_status(f->packs, &a, &prev, &n, &e), 0);
  assert_int_equal(n, 1);
  assert_string_equal(prev[0].commit, c[2]);
  free(prev);
}

static void test_crash_debris_recovered(void **state) {
  struct fx *f = *state;
  char c1[41], c2[41], path[PATH_MAX];
  const char *orphan = "0123456789abcdef0123456789abcdef01234567";
  commit_file(f, g.admin, "a.txt", "one\n", c1);
  pull_ok(f, 1, c1);
  commit_file(f, g.admin, "a.txt", "two\n", c2);
  /* What interrupted runs leave: a staging folder, a dangling
   * current.tmp, a half-written record next to a half-built folder, a
   * temp record, a record without a folder. */
  sh("mkdir -p %s/releases/.staging-x/sub && echo x > "
     "%s/releases/.staging-x/sub/f",
     f->packs, f->packs);
  snprintf(path, sizeof(path), "%s/current.tmp", f->packs);
  assert_int_equal(symlink("releases/nowhere", path), 0);
  sh("mkdir -p %s/releases/%s && printf '{\"commit\":\"%s\",\"sig' > "
     "%s/releases/%s.json",
     f->packs, c2, c2, f->packs, c2);
  sh("printf '{\"com' > %s/releases/%s.json.tmp", f->packs, c1);
  sh("echo '{}' > %s/releases/%s.json", f->packs, orphan);
  /* Meanwhile status and current_dir still see c1. */
  assert_active(f, c1);
  pull_ok(f, 1, c2);
  assert_active(f, c2);
  assert_int_equal(count_prefix(f, ".staging-"), 0);
  assert_false(exists("%s/%s", f->packs, "current.tmp"));
  assert_int_equal(count_prefix(f, orphan), 0);
  /* A damaged record of the active release is rewritten by the next pull
   * (same tip: no change). */
  sh("printf '{\"commit\":' > %s/releases/%s.json", f->packs, c2);
  assert_int_equal(mg_packrepo_current_dir(f->packs, path, sizeof(path)), 0);
  pull_ok(f, 0, c2);
  assert_active(f, c2);
}

static void test_crash_before_flip(void **state) {
  struct fx *f = *state;
  char c1[41], c2[41], c3[41], path[PATH_MAX], cur[PATH_MAX];
  commit_file(f, g.admin, "a.txt", "one\n", c1);
  pull_ok(f, 1, c1);
  commit_file(f, g.admin, "a.txt", "two\n", c2);
  pull_ok(f, 1, c2);
  /* As if killed after c2's record but before the flip... */
  snprintf(path, sizeof(path), "%s/current.tmp", f->packs);
  snprintf(cur, sizeof(cur), "%s/current", f->packs);
  char target[64];
  snprintf(target, sizeof(target), "releases/%s", c1);
  assert_int_equal(symlink(target, path), 0);
  assert_int_equal(rename(path, cur), 0);
  /* ...and in the middle of a fetch updating the tracking ref. */
  sh("touch %s/cache.git/refs/remotes/origin/main.lock "
     "%s/cache.git/packed-refs.lock",
     f->packs, f->packs);
  assert_active(f, c1);
  pull_ok(f, 1, c2);
  assert_active(f, c2);
  commit_file(f, g.admin, "a.txt", "three\n", c3);
  pull_ok(f, 1, c3);
  assert_active(f, c3);
}

static void test_bad_input(void **state) {
  struct fx *f = *state;
  char c1[41], buf[PATH_MAX];
  struct mg_pack_release a;
  struct mg_err e;
  assert_int_equal(mg_packrepo_status(f->packs, &a, NULL, NULL, &e),
                   -ENOENT);
  assert_int_equal(mg_packrepo_current_dir(f->packs, buf, sizeof(buf)),
                   -ENOENT);
  assert_int_equal(mg_packrepo_rollback(f->packs, &a, &e), -ENOENT);
  commit_file(f, g.admin, "a.txt", "one\n", c1);
  f->o.keep_releases = 0;
  assert_int_equal(pull(f, NULL, NULL, &e), -EINVAL);
  f->o.keep_releases = 2;
  f->o.branch = "bad..name";
  assert_int_equal(pull(f, NULL, NULL, &e), -EINVAL);
  f->o.branch = "nope";
  assert_int_equal(pull(f, NULL, NULL, &e), -ENOENT);
  assert_non_null(strstr(e.msg, "nope"));
  f->o.branch = "main";
  pull_ok(f, 1, c1);
  /* Unreachable remotes fail and leave the release; no secret in text. */
  f->o.url = "/nonexistent/packs.git";
  assert_int_equal(pull(f, NULL, NULL, &e), -ENOENT);
  assert_non_null(strstr(e.msg, "/nonexistent/packs.git"));
  f->o.url = "https://user:secret@127.0.0.1:1/packs.git";
  assert_int_equal(pull(f, NULL, NULL, &e), -EIO);
  assert_null(strstr(e.msg, "secret"));
  assert_non_null(strstr(e.msg, "127.0.0.1"));
  assert_active(f, c1);
}

/* A remote that asks for a password: fail at once and say so. */
static void test_credentials_refused(void **state) {
  struct fx *f = *state;
  char path[PATH_MAX], cmd[PATH_MAX + 16], url[128];
  struct mg_err e;
  int port = 0, pid = 0;
  if (system("command -v python3 >/dev/null") != 0)
    skip();
  snprintf(path, sizeof(path), "%s/srv.py", f->root);
  write_file(path,
             "import http.server, os\n"
             "class H(http.server.BaseHTTPRequestHandler):\n"
             "  def do_GET(s):\n"
             "    s.send_response(401)\n"
             "    s.send_header('WWW-Authenticate', 'Basic realm=\"x\"')\n"
             "    s.send_header('Content-Length', '0')\n"
             "    s.end_headers()\n"
             "  def log_message(s, *a): pass\n"
             "srv = http.server.HTTPServer(('127.0.0.1', 0), H)\n"
             "print(srv.server_address[1], os.getpid(), flush=True)\n"
             "srv.serve_forever()\n");
  snprintf(cmd, sizeof(cmd), "exec python3 %s", path);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  assert_int_equal(fscanf(p, "%d %d", &port, &pid), 2);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/packs.git", port);
  f->o.url = url;
  int rc = pull(f, NULL, NULL, &e);
  kill(pid, SIGTERM);
  pclose(p);
  assert_int_equal(rc, -EACCES);
  assert_non_null(strstr(e.msg, "credentials"));
}

static long long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* current is a complete release whose tree is its commit's. */
static void assert_consistent(struct fx *f, unsigned seed, int iter) {
  char target[PATH_MAX], path[PATH_MAX];
  link_target(f, target, sizeof(target));
  if (strncmp(target, "releases/", 9) != 0 || strlen(target) != 49)
    fail_msg("seed %u iter %d: current -> %s", seed, iter, target);
  char hex[41];
  memcpy(hex, target + 9, 40);
  hex[40] = '\0';
  snprintf(path, sizeof(path), "%s/releases/%s.json", f->packs, hex);
  char *json = slurp(path);
  struct mg_json *j = NULL;
  if (!json || mg_json_parse(json, strlen(json), NULL, &j, NULL) != 0)
    fail_msg("seed %u iter %d: record of %s unreadable", seed, iter, hex);
  const char *c = mg_json_get_str(j, "commit");
  const char *s = mg_json_get_str(j, "signer");
  if (!c || strcmp(c, hex) != 0 || !s || strcmp(s, "admin@city") != 0)
    fail_msg("seed %u iter %d: record of %s incomplete: %s", seed, iter, hex,
             json);
  mg_json_free(j);
  free(json);
  assert_tree(f, hex);
}

static void test_kill9_random(void **state) {
  struct fx *f = *state;
  enum { N = 6, ITER = 14 };
  char c[N + 1][41];
  struct mg_err e;
  unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
  srand(seed);
  /* Many files, all rewritten each commit: a longer checkout and fsync. */
  sh("cd %s && for i in $(seq 1 200); do echo base $i > f$i.txt; done",
     f->src);
  commit_file(f, g.admin, "proc.txt", "version 0\n", c[0]);
  for (int i = 1; i <= N; i++) {
    char text[32];
    sh("cd %s && for i in $(seq 1 200); do echo v%d $i > f$i.txt; done",
       f->src, i);
    snprintf(text, sizeof(text), "version %d\n", i);
    commit_file(f, g.admin, "proc.txt", text, c[i]);
  }
  /* The packs follow `live`, moved along the chain one step at a time. */
  f->o.branch = "live";
  sh("git -C %s update-ref refs/heads/live %s", f->src, c[0]);
  pull_ok(f, 1, c[0]);
  sh("git -C %s update-ref refs/heads/live %s", f->src, c[1]);
  long long t0 = now_us();
  pull_ok(f, 1, c[1]);
  long long span = now_us() - t0;
  int k = 1;
  for (int it = 0; it < ITER; it++) {
    if (it % 2 == 0 && k < N) {
      k++;
      sh("git -C %s update-ref refs/heads/live %s", f->src, c[k]);
    }
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      struct mg_err ce;
      int ch;
      for (int j = 0; j < 3; j++)
        mg_packrepo_pull(&f->o, NULL, &ch, &ce);
      _exit(0);
    }
    usleep((useconds_t)(rand() % (2 * span + 2000)));
    kill(pid, SIGKILL);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_consistent(f, seed, it);
  }
  /* A later pull recovers whatever the last kill left. */
  if (pull(f, NULL, NULL, &e) != 0)
    fail_msg("seed %u: recovery pull: %s", seed, e.msg);
  assert_active(f, c[k]);
  assert_int_equal(count_prefix(f, ".staging-"), 0);
  assert_false(exists("%s/%s", f->packs, "current.tmp"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_signed_tip_activates, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_second_commit_incremental,
                                      fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_other_key_rejected, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_unsigned_refused, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_force_push_stale, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_validate_fails, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_rollback_and_pin, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_double_rollback_keeps_pin,
                                      fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_keep_releases_prunes, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_crash_debris_recovered, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_crash_before_flip, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_bad_input, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_credentials_refused, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_kill9_random, fx_setup,
                                      fx_teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
