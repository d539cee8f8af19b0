/*
 * test_plugin_host.c — the plugin loader, configuration through plugin
 * tables, and the lifecycle on a real libuv loop, with the fixture plugins
 * of tests/fixtures (MG_TEST_FIXTURE_DIR) and the fileprinter example
 * (MG_TEST_PLUGIN_DIR).  Each lifecycle test ends by draining its loop and
 * requiring uv_loop_close() == 0: a handle the host forgot fails the test.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "json.h"
#include "plugin_host.h"

#ifndef MG_TEST_FIXTURE_DIR
#error "MG_TEST_FIXTURE_DIR must name the directory of the fixture plugins"
#endif
#ifndef MG_TEST_PLUGIN_DIR
#error "MG_TEST_PLUGIN_DIR must name the directory of the built plugins"
#endif

#define FX MG_TEST_FIXTURE_DIR
#define MAX_EVENTS 1024

struct ev {
  char *id, *counters, *topic, *json;
};

struct t {
  uv_loop_t loop;
  struct ev ev[MAX_EVENTS];
  size_t n_ev;
  char dir[64]; /* a fresh temp directory */
};

struct res {
  int called, status;
  char *json;
};

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */

static void on_emit(void *ud, const char *id, const char *const *counters,
                    const char *topic, const char *json) {
  struct t *t = ud;
  char cs[256] = "";
  assert_true(t->n_ev < MAX_EVENTS);
  for (size_t i = 0; counters && counters[i]; i++)
    snprintf(cs + strlen(cs), sizeof(cs) - strlen(cs), "%s%s", i ? "," : "",
             counters[i]);
  struct ev *e = &t->ev[t->n_ev++];
  e->id = strdup(id);
  e->counters = strdup(cs);
  e->topic = strdup(topic);
  e->json = json ? strdup(json) : NULL;
}

static void on_result(void *ud, int status, const char *json) {
  struct res *r = ud;
  r->called++;
  r->status = status;
  free(r->json);
  r->json = json ? strdup(json) : NULL;
}

static void res_reset(struct res *r) {
  free(r->json);
  memset(r, 0, sizeof(*r));
}

static size_t count_events(const struct t *t, const char *topic) {
  size_t n = 0;
  for (size_t i = 0; i < t->n_ev; i++)
    n += strcmp(t->ev[i].topic, topic) == 0;
  return n;
}

static const struct ev *nth_event(const struct t *t, const char *topic,
                                  size_t k) {
  for (size_t i = 0; i < t->n_ev; i++)
    if (strcmp(t->ev[i].topic, topic) == 0 && k-- == 0)
      return &t->ev[i];
  return NULL;
}

static void sleep_ms(long ms) {
  struct timespec ts = {0, ms * 1000000L};
  nanosleep(&ts, NULL);
}

/* Turn the loop until cond holds; at most about five seconds. */
#define RUN_UNTIL(loop, cond)                                                  \
  do {                                                                         \
    for (int i_ = 0; i_ < 5000 && !(cond); i_++) {                             \
      uv_run((loop), UV_RUN_NOWAIT);                                           \
      if (!(cond))                                                             \
        sleep_ms(1);                                                           \
    }                                                                          \
    assert_true(cond);                                                         \
  } while (0)

static void assert_has(const char *hay, const char *needle) {
  if (!hay || !strstr(hay, needle))
    fail_msg("expected \"%s\" in \"%s\"", needle, hay ? hay : "(null)");
}

static int setup(void **state) {
  struct t *t = calloc(1, sizeof(*t));
  assert_non_null(t);
  assert_int_equal(uv_loop_init(&t->loop), 0);
  snprintf(t->dir, sizeof(t->dir), "/tmp/mg-plugin-test.XXXXXX");
  assert_non_null(mkdtemp(t->dir));
  *state = t;
  return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int teardown(void **state) {
  struct t *t = *state;
  /* Close callbacks and late work must finish without help. */
  for (int i = 0; i < 5000 && uv_loop_alive(&t->loop); i++) {
    uv_run(&t->loop, UV_RUN_NOWAIT);
    sleep_ms(1);
  }
  assert_int_equal(uv_loop_close(&t->loop), 0);
  for (size_t i = 0; i < t->n_ev; i++) {
    free(t->ev[i].id);
    free(t->ev[i].counters);
    free(t->ev[i].topic);
    free(t->ev[i].json);
  }
  nftw(t->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(t);
  return 0;
}

static struct mg_config *cfg_parse(const char *plugin_dir, const char *body) {
  char text[4096];
  struct mg_err err = {{0}};
  struct mg_config *cfg = NULL;
  snprintf(text, sizeof(text), "[daemon]\nplugin_dir = %s\n%s", plugin_dir,
           body);
  int rc = mg_config_parse(text, strlen(text), "test.conf", &cfg, &err);
  if (rc)
    fail_msg("config does not parse: %s", err.msg);
  return cfg;
}

/* A host on t's loop (or none), configured from body; started when asked. */
static struct mg_plugin_host *host_up(struct t *t, const char *dir,
                                      const char *body, int start) {
  struct mg_plugin_host *h = NULL;
  struct mg_config *cfg = cfg_parse(dir, body);
  struct mg_err err = {{0}};
  assert_int_equal(
      mg_plugin_host_create(t ? &t->loop : NULL, NULL, on_emit, t, &h), 0);
  int rc = mg_plugin_host_configure(h, cfg, &err);
  if (rc)
    fail_msg("configure failed: %s", err.msg);
  mg_config_free(cfg); /* the host keeps copies of what it needs */
  if (start)
    assert_int_equal(mg_plugin_host_start(h), 0);
  return h;
}

static char *json_of(const struct mg_plugin_host *h, int devices) {
  struct mg_buf b;
  struct mg_jw w;
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  if (devices)
    mg_plugin_host_devices_json(h, &w);
  else
    mg_plugin_host_plugins_json(h, &w);
  assert_false(w.bad);
  assert_false(b.oom);
  return mg_buf_steal(&b);
}

static struct mg_json *parse(const char *text) {
  struct mg_json *v = NULL;
  struct mg_json_error e;
  if (mg_json_parse(text, strlen(text), NULL, &v, &e))
    fail_msg("not JSON (%s): %s", e.msg, text);
  return v;
}

/* The object of device `id` in a parsed devices array. */
static const struct mg_json *device(const struct mg_json *arr, const char *id) {
  assert_int_equal(arr->type, MG_JSON_ARRAY);
  for (size_t i = 0; i < arr->u.arr.n; i++) {
    const char *s = mg_json_get_str(arr->u.arr.items[i], "id");
    if (s && strcmp(s, id) == 0)
      return arr->u.arr.items[i];
  }
  fail_msg("no device %s", id);
  return NULL;
}

static void write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

static char *read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  char *p = NULL;
  long len;
  if (!f)
    fail_msg("cannot open %s", path);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  len = ftell(f);
  rewind(f);
  p = malloc((size_t)len + 1);
  assert_non_null(p);
  assert_int_equal(fread(p, 1, (size_t)len, f), (size_t)len);
  p[len] = '\0';
  fclose(f);
  *n = (size_t)len;
  return p;
}

/* ---------------------------------------------------------------------- */
/* Loader                                                                  */

static void expect_load_fail(const char *path, int rc_want, const char *s1,
                             const char *s2) {
  struct mg_plugin_lib *lib = (void *)1;
  struct mg_err err = {{0}};
  int rc = mg_plugin_load(path, &lib, &err);
  if (rc != rc_want)
    fail_msg("%s: rc %d, want %d (%s)", path, rc, rc_want, err.msg);
  assert_null(lib);
  assert_has(err.msg, path); /* every message names the file */
  assert_has(err.msg, s1);
  if (s2)
    assert_has(err.msg, s2);
}

static void test_load_good(void **state) {
  (void)state;
  struct mg_plugin_lib *lib = NULL;
  struct mg_err err = {{0}};
  assert_int_equal(mg_plugin_load(FX "/good.so", &lib, &err), 0);
  assert_non_null(lib);
  assert_string_equal(lib->desc->name, "good");
  assert_string_equal(lib->path, FX "/good.so");
  assert_int_equal(lib->desc->kind, MG_PLUGIN_KIND_CARD_READER);
  mg_plugin_unload(lib);
  mg_plugin_unload(NULL);
}

static void test_load_missing(void **state) {
  (void)state;
  expect_load_fail(FX "/nope.so", -ENOENT, "No such file", NULL);
  expect_load_fail("good.so", -EINVAL, "must contain a /", NULL);
}

static void test_load_not_elf(void **state) {
  struct t *t = *state;
  char path[128];
  snprintf(path, sizeof(path), "%s/junk.so", t->dir);
  write_file(path, "not an ELF file\n", 16);
  expect_load_fail(path, -ENOEXEC, "cannot load plugin", NULL);
}

static void test_load_world_writable(void **state) {
  struct t *t = *state;
  char path[128];
  size_t n;
  char *so = read_file(FX "/good.so", &n);
  snprintf(path, sizeof(path), "%s/good.so", t->dir);
  write_file(path, so, n);
  free(so);
  assert_int_equal(chmod(path, 0666), 0);
  expect_load_fail(path, -EPERM, "writable by every user", NULL);
  /* The same bytes under another file name break the name rule. */
  assert_int_equal(chmod(path, 0644), 0);
  char other[128];
  snprintf(other, sizeof(other), "%s/other.so", t->dir);
  assert_int_equal(rename(path, other), 0);
  expect_load_fail(other, -EINVAL, "name \"good\" must equal the file name",
                   "\"other\"");
}

static void test_load_no_entry(void **state) {
  (void)state;
  expect_load_fail(FX "/no_entry.so", -ENOEXEC,
                   "no MG entry symbol mg_plugin_entry_v1",
                   "not a madoguchi plugin?");
  expect_load_fail(FX "/null_entry.so", -EINVAL,
                   "mg_plugin_entry_v1() returned NULL", NULL);
}

static void test_load_wrong_major(void **state) {
  (void)state;
  expect_load_fail(FX "/wrong_major.so", -EPROTO, "plugin ABI 2.0",
                   "this daemon speaks 1.x");
}

static void test_load_short_struct(void **state) {
  (void)state;
  expect_load_fail(FX "/short_struct.so", -EPROTO, "short struct mg_plugin",
                   NULL);
}

static void test_load_null_callback(void **state) {
  (void)state;
  expect_load_fail(FX "/null_callback.so", -EINVAL,
                   "mandatory callback `fini` is NULL", NULL);
}

static void test_load_name_mismatch(void **state) {
  (void)state;
  expect_load_fail(FX "/name_mismatch.so", -EINVAL, "\"other\"",
                   "(\"name_mismatch\")");
}

static void test_load_bad_kind(void **state) {
  (void)state;
  expect_load_fail(FX "/bad_kind.so", -EINVAL, "unknown plugin kind 42", NULL);
}

static void test_load_bad_table(void **state) {
  (void)state;
  expect_load_fail(FX "/bad_table.so", -EINVAL, "config key `outside`",
                   "inside ctx_size 8");
}

static void test_load_minor_versions(void **state) {
  (void)state;
  struct mg_plugin_lib *lib = NULL;
  assert_int_equal(mg_plugin_load(FX "/newer_minor.so", &lib, NULL), 0);
  assert_true(lib->desc->abi_minor > MG_PLUGIN_ABI_MINOR);
  mg_plugin_unload(lib);
  assert_int_equal(mg_plugin_load(FX "/old_minor.so", &lib, NULL), 0);
  mg_plugin_unload(lib);
}

static void test_kind_names(void **state) {
  (void)state;
  const char *want[] = {"unknown", "card-reader", "printer", "signature-pad",
                        "camera",  "exporter",    "ocr",     "scanner",
                        "unknown"};
  for (int k = 0; k < 9; k++)
    assert_string_equal(mg_plugin_kind_name(k), want[k]);
}

/* ---------------------------------------------------------------------- */
/* Configure (no loop, as `madoctl config check`)                          */

/* Lines: 1 [daemon], 2 plugin_dir, the body from line 3. */
static void expect_configure_fail(const char *dir, const char *body,
                                  int rc_want, const char *s1, const char *s2) {
  struct mg_plugin_host *h = NULL;
  struct mg_config *cfg = cfg_parse(dir, body);
  struct mg_err err = {{0}};
  assert_int_equal(mg_plugin_host_create(NULL, NULL, NULL, NULL, &h), 0);
  int rc = mg_plugin_host_configure(h, cfg, &err);
  if (rc != rc_want)
    fail_msg("rc %d, want %d (%s)", rc, rc_want, err.msg);
  assert_has(err.msg, s1);
  if (s2)
    assert_has(err.msg, s2);
  mg_plugin_host_destroy(h);
  mg_config_free(cfg);
}

static void test_configure_errors(void **state) {
  (void)state;
  expect_configure_fail(FX,
                        "[reader \"r1\"]\nplugin = good\nserial = 1\n"
                        "bogus = 2\n",
                        -EINVAL, "test.conf:6: unknown key `bogus`",
                        "[reader \"r1\"]");
  expect_configure_fail(FX, "[printer \"p\"]\nplugin = good\nserial = 1\n",
                        -EINVAL,
                        "test.conf:3: [printer \"p\"] uses plugin good which "
                        "drives card-reader devices",
                        NULL);
  expect_configure_fail(FX, "[reader \"r\"]\nplugin = absent\n", -ENOENT,
                        "test.conf:3: [reader \"r\"]: ", FX "/absent.so");
  expect_configure_fail(FX, "\n[reader \"r\"]\nplugin = good\n", -EINVAL,
                        "test.conf:4: [reader \"r\"] needs `serial`", NULL);
  expect_configure_fail(FX,
                        "[reader \"r\"]\nplugin = good\nserial = 1\n"
                        "count = 500\n",
                        -EINVAL, "test.conf:6: `count`", "between 0 and 100");
  expect_configure_fail(FX,
                        "[reader \"r\"]\nplugin = good\nserial = 1\n"
                        "mode = c\n",
                        -EINVAL, "test.conf:6: `mode`", "one of a|b");
  expect_configure_fail(FX, "[reader \"r\"]\nplugin = wrong_major\n", -EPROTO,
                        "test.conf:3: [reader \"r\"]: ", "plugin ABI 2.0");
  expect_configure_fail(FX, "[reader \"r\"]\nplugin = ../fixtures/good\n",
                        -EINVAL, "test.conf:3", "may hold only letters");
  expect_configure_fail(MG_TEST_PLUGIN_DIR,
                        "[printer \"p\"]\nplugin = fileprinter\n"
                        "dir = relative/dir\n",
                        -EINVAL, "test.conf:5: `dir`",
                        "must be an absolute path");
  expect_configure_fail(MG_TEST_PLUGIN_DIR,
                        "[printer \"p\"]\nplugin = fileprinter\n", -EINVAL,
                        "test.conf:3: [printer \"p\"] needs `dir`", NULL);
}

static void test_configure_only(void **state) {
  (void)state;
  struct mg_plugin_host *h = host_up(
      NULL, FX,
      "[reader \"r1\"]\nplugin = good\nserial = \"S-1\"\ngreeting = hi\n"
      "count = 5\nmode = b\ntags = x, y\ncounters = c1, c2\n"
      "[reader \"r2\"]\nplugin = good\nserial = 2\n"
      "[printer \"p0\"]\nplugin = fileprinter\nenabled = false\n"
      "[camera \"cam\"]\nplugin = newer_minor\n",
      0);
  struct mg_err err = {{0}};
  assert_int_equal(mg_plugin_host_start(h), -EINVAL); /* no loop */
  struct mg_config *cfg = cfg_parse(FX, "");
  assert_int_equal(mg_plugin_host_configure(h, cfg, &err), -EALREADY);
  mg_config_free(cfg);
  assert_int_equal(mg_plugin_host_count_plugins(h), 2); /* good shared */
  assert_int_equal(mg_plugin_host_count_failed(h), 0);

  char *pj = json_of(h, 0);
  struct mg_json *pv = parse(pj);
  assert_int_equal(pv->u.arr.n, 2);
  const struct mg_json *good = pv->u.arr.items[0];
  assert_string_equal(mg_json_get_str(good, "name"), "good");
  assert_string_equal(mg_json_get_str(good, "version"), "1.2.3");
  assert_string_equal(mg_json_get_str(good, "kind"), "card-reader");
  char abi[16]; /* good.c is built against the current header */
  snprintf(abi, sizeof(abi), "%d.%d", MG_PLUGIN_ABI_MAJOR, MG_PLUGIN_ABI_MINOR);
  assert_string_equal(mg_json_get_str(good, "abi"), abi);
  assert_string_equal(mg_json_get_str(good, "path"), FX "/good.so");
  int64_t n = 0;
  assert_int_equal(mg_json_get_int(good, "instances", &n), 0);
  assert_int_equal(n, 2);
  mg_json_free(pv);
  free(pj);

  char *dj = json_of(h, 1);
  struct mg_json *dv = parse(dj);
  const struct mg_json *r1 = device(dv, "r1");
  assert_string_equal(mg_json_get_str(r1, "state"), "configured");
  assert_string_equal(mg_json_get_str(r1, "type"), "reader");
  assert_string_equal(mg_json_get_str(r1, "plugin"), "good");
  const struct mg_json *cs = mg_json_get(r1, "counters");
  assert_int_equal(cs->u.arr.n, 2);
  assert_string_equal(cs->u.arr.items[1]->u.str.s, "c2");
  assert_int_equal(mg_json_get(r1, "detail")->type, MG_JSON_NULL);
  const struct mg_json *p0 = device(dv, "p0");
  assert_string_equal(mg_json_get_str(p0, "state"), "disabled");
  assert_int_equal(mg_json_get(p0, "error")->type, MG_JSON_NULL);
  mg_json_free(dv);
  free(dj);
  mg_plugin_host_destroy(h); /* config strings released: ASan checks */
  mg_plugin_host_destroy(NULL);
}

/* ---------------------------------------------------------------------- */
/* Lifecycle on a loop                                                     */

static void test_lifecycle_good(void **state) {
  struct t *t = *state;
  struct res r = {0};
  struct mg_plugin_host *h =
      host_up(t, FX,
              "[reader \"r1\"]\nplugin = good\nserial = S1\ntick = 5ms\n"
              "counters = c1, c2\ngreeting = hi\ncount = 7\nmode = b\n",
              1);
  /* The periodic timer emits through the host to our callback. */
  RUN_UNTIL(&t->loop, count_events(t, "good.tick") >= 2);
  const struct ev *e = nth_event(t, "good.tick", 0);
  assert_string_equal(e->id, "r1");
  assert_string_equal(e->counters, "c1,c2");
  assert_string_equal(e->json, "{\"n\":1}");

  /* Immediate answers arrive before command() returns. */
  const struct {
    const char *op;
    int status;
  } now[] = {{"ping", MG_PLUGIN_OK},
             {"busy", MG_PLUGIN_RETRY},
             {"broken", MG_PLUGIN_FATAL},
             {"badstatus", MG_PLUGIN_FATAL}};
  for (size_t i = 0; i < sizeof(now) / sizeof(now[0]); i++) {
    res_reset(&r);
    assert_int_equal(
        mg_plugin_host_command(h, "r1", now[i].op, NULL, on_result, &r), 0);
    assert_int_equal(r.called, 1);
    assert_int_equal(r.status, now[i].status);
    assert_null(r.json);
  }

  /* PENDING through queue_work: work off the loop, done on it. */
  res_reset(&r);
  assert_int_equal(
      mg_plugin_host_command(h, "r1", "echo", "{\"a\":1}", on_result, &r), 0);
  assert_int_equal(r.called, 0);
  RUN_UNTIL(&t->loop, r.called == 1);
  assert_int_equal(r.status, MG_PLUGIN_OK);
  assert_has(r.json, "\"echo\":{\"a\":1}");
  assert_has(r.json, "\"worker_thread\":true");
  assert_has(r.json, "\"done_on_loop\":true");
  assert_int_equal(count_events(t, "good.work"), 1);

  /* PENDING through the fd watch. */
  res_reset(&r);
  assert_int_equal(mg_plugin_host_command(h, "r1", "poke", NULL, on_result, &r),
                   0);
  assert_int_equal(r.called, 0);
  RUN_UNTIL(&t->loop, r.called == 1);
  assert_int_equal(r.status, MG_PLUGIN_OK);
  assert_string_equal(r.json, "{\"fd_events\":1}");
  assert_int_equal(count_events(t, "good.fd"), 1);

  assert_int_equal(
      mg_plugin_host_command(h, "nobody", "ping", NULL, on_result, &r),
      -ENOENT);
  assert_int_equal(mg_plugin_host_command(h, "r1", "", NULL, on_result, &r),
                   -EINVAL);

  /* describe() shows config as applied and the counters of activity. */
  char *dj = json_of(h, 1);
  struct mg_json *dv = parse(dj);
  const struct mg_json *r1 = device(dv, "r1");
  assert_string_equal(mg_json_get_str(r1, "state"), "running");
  const struct mg_json *d = mg_json_get(r1, "detail");
  assert_string_equal(mg_json_get_str(d, "serial"), "S1");
  assert_string_equal(mg_json_get_str(d, "greeting"), "hi");
  int64_t v = 0;
  assert_int_equal(mg_json_get_int(d, "count", &v), 0);
  assert_int_equal(v, 7);
  assert_int_equal(mg_json_get_int(d, "mode", &v), 0);
  assert_int_equal(v, 1);
  assert_int_equal(mg_json_get_int(d, "tick_ms", &v), 0);
  assert_int_equal(v, 5);
  assert_int_equal(mg_json_get_int(d, "works", &v), 0);
  assert_int_equal(v, 1);
  mg_json_free(dv);
  free(dj);

  mg_plugin_host_stop(h);
  assert_int_equal(mg_plugin_host_command(h, "r1", "ping", NULL, on_result, &r),
                   -ENODEV);
  size_t ticks = count_events(t, "good.tick");
  RUN_UNTIL(&t->loop, !uv_loop_alive(&t->loop)); /* nothing left open */
  assert_int_equal(count_events(t, "good.tick"), ticks);
  dj = json_of(h, 1);
  dv = parse(dj);
  r1 = device(dv, "r1");
  assert_string_equal(mg_json_get_str(r1, "state"), "stopped");
  /* Nothing new may be opened once stop() began. */
  assert_int_equal(mg_json_get_int(mg_json_get(r1, "detail"), "late_rc", &v),
                   0);
  assert_int_equal(v, -ESHUTDOWN);
  mg_json_free(dv);
  free(dj);
  mg_plugin_host_destroy(h);
  res_reset(&r);
}

static void test_command_edges(void **state) {
  struct t *t = *state;
  struct res r = {0};
  struct mg_plugin_host *h = host_up(
      t, FX, "[reader \"r1\"]\nplugin = good\nserial = 1\ntick = 1h\n", 1);
  /* A second complete() is ignored: the caller hears once. */
  assert_int_equal(
      mg_plugin_host_command(h, "r1", "double", NULL, on_result, &r), 0);
  assert_int_equal(r.called, 1);
  assert_string_equal(r.json, "{\"n\":1}");
  /* complete() then OK: still once, with the completed result. */
  res_reset(&r);
  assert_int_equal(
      mg_plugin_host_command(h, "r1", "early", NULL, on_result, &r), 0);
  assert_int_equal(r.called, 1);
  assert_string_equal(r.json, "{\"early\":true}");
  /* A result that is not JSON becomes FATAL with an error object. */
  res_reset(&r);
  assert_int_equal(
      mg_plugin_host_command(h, "r1", "badjson", NULL, on_result, &r), 0);
  assert_int_equal(r.called, 1);
  assert_int_equal(r.status, MG_PLUGIN_FATAL);
  assert_has(r.json, "invalid result");
  /* An unknown req_id is ignored. */
  res_reset(&r);
  assert_int_equal(
      mg_plugin_host_command(h, "r1", "stray", NULL, on_result, &r), 0);
  assert_int_equal(r.called, 1);
  assert_int_equal(r.status, MG_PLUGIN_OK);
  /* Bad topics and non-object data never reach the tablets. */
  res_reset(&r);
  size_t before = t->n_ev;
  assert_int_equal(
      mg_plugin_host_command(h, "r1", "emitbad", NULL, on_result, &r), 0);
  assert_int_equal(r.called, 1);
  struct mg_json *v = parse(r.json);
  int64_t rc = 0;
  assert_int_equal(mg_json_get_int(v, "topic_rc", &rc), 0);
  assert_int_equal(rc, -EINVAL);
  assert_int_equal(mg_json_get_int(v, "data_rc", &rc), 0);
  assert_int_equal(rc, -EINVAL);
  mg_json_free(v);
  assert_int_equal(t->n_ev, before);
  /* What is still pending at stop is failed with RETRY "stopping". */
  res_reset(&r);
  assert_int_equal(mg_plugin_host_command(h, "r1", "hold", NULL, on_result, &r),
                   0);
  assert_int_equal(r.called, 0);
  mg_plugin_host_stop(h);
  assert_int_equal(r.called, 1);
  assert_int_equal(r.status, MG_PLUGIN_RETRY);
  assert_string_equal(r.json, "{\"error\":\"stopping\"}");
  mg_plugin_host_stop(h); /* twice is harmless */
  assert_int_equal(r.called, 1);
  mg_plugin_host_destroy(h);
  res_reset(&r);
}

static void test_forgotten_handles(void **state) {
  struct t *t = *state;
  struct mg_plugin_host *h = host_up(
      t, FX,
      "[reader \"r1\"]\nplugin = good\nserial = 1\ntick = 2ms\nleak = 1\n", 1);
  RUN_UNTIL(&t->loop, count_events(t, "good.tick") >= 1);
  mg_plugin_host_stop(h); /* the plugin keeps its watch and timer open */
  size_t ticks = count_events(t, "good.tick");
  RUN_UNTIL(&t->loop, !uv_loop_alive(&t->loop));
  assert_int_equal(count_events(t, "good.tick"), ticks);
  mg_plugin_host_destroy(h); /* fini releases them late: harmless */
}

static void test_destroy_before_close_callbacks(void **state) {
  struct t *t = *state;
  struct mg_plugin_host *h = host_up(
      t, FX, "[reader \"r1\"]\nplugin = good\nserial = 1\nleak = 1\n", 1);
  mg_plugin_host_destroy(h); /* stops; libuv still owes close callbacks */
  RUN_UNTIL(&t->loop, !uv_loop_alive(&t->loop));
}

static void test_work_outlives_host(void **state) {
  struct t *t = *state;
  struct res r = {0};
  struct mg_plugin_host *h =
      host_up(t, FX,
              "[reader \"r1\"]\nplugin = good\nserial = 1\nwork = 100ms\n"
              "tick = 1h\n",
              1);
  assert_int_equal(mg_plugin_host_command(h, "r1", "echo", NULL, on_result, &r),
                   0);
  sleep_ms(20); /* let a worker pick it up, so it cannot be cancelled */
  mg_plugin_host_destroy(h);
  assert_int_equal(r.called, 1); /* failed at stop */
  assert_int_equal(r.status, MG_PLUGIN_RETRY);
  size_t before = t->n_ev;
  /* done() runs on an instance whose host is gone: it must not reach our
   * emit callback, and fini/dlclose follow it (ASan watches). */
  RUN_UNTIL(&t->loop, !uv_loop_alive(&t->loop));
  assert_int_equal(t->n_ev, before);
  assert_int_equal(r.called, 1);
  res_reset(&r);
}

/* Fill every libuv worker with a blocker, so that queued plugin work
 * cannot start before stop() cancels it. */
static uv_sem_t gate;
static void block_work(uv_work_t *w) {
  (void)w;
  uv_sem_wait(&gate);
}
static void block_done(uv_work_t *w, int status) {
  (void)status;
  free(w);
}

static void test_work_cancelled_at_stop(void **state) {
  struct t *t = *state;
  struct res r = {0};
  const char *env = getenv("UV_THREADPOOL_SIZE");
  int threads = env && atoi(env) > 0 ? atoi(env) : 4;
  char want[64];
  struct mg_plugin_host *h = host_up(
      t, FX, "[reader \"r1\"]\nplugin = good\nserial = 1\ntick = 1h\n", 1);
  assert_int_equal(uv_sem_init(&gate, 0), 0);
  for (int i = 0; i < threads; i++) {
    uv_work_t *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    assert_int_equal(uv_queue_work(&t->loop, w, block_work, block_done), 0);
  }
  assert_int_equal(mg_plugin_host_command(h, "r1", "echo", NULL, on_result, &r),
                   0);
  mg_plugin_host_stop(h);
  assert_int_equal(r.called, 1);
  assert_int_equal(r.status, MG_PLUGIN_RETRY);
  for (int i = 0; i < threads; i++)
    uv_sem_post(&gate);
  RUN_UNTIL(&t->loop, count_events(t, "good.work") == 1);
  snprintf(want, sizeof(want), "\"status\":%d", -ECANCELED);
  assert_has(nth_event(t, "good.work", 0)->json, want);
  assert_int_equal(r.called, 1);
  RUN_UNTIL(&t->loop, !uv_loop_alive(&t->loop));
  uv_sem_destroy(&gate);
  mg_plugin_host_destroy(h);
  res_reset(&r);
}

static void test_failed_devices(void **state) {
  struct t *t = *state;
  struct res r = {0};
  struct mg_plugin_host *h =
      host_up(t, FX,
              "[reader \"bad\"]\nplugin = init_fails\n"
              "[reader \"ok\"]\nplugin = good\nserial = 1\ntick = 1h\n"
              "[reader \"late\"]\nplugin = init_fails\nat = start\n"
              "[exporter \"old\"]\nplugin = old_minor\n"
              "[camera \"new\"]\nplugin = newer_minor\n",
              0);
  assert_int_equal(mg_plugin_host_start(h), 2);
  assert_int_equal(mg_plugin_host_count_failed(h), 2);
  assert_int_equal(
      mg_plugin_host_command(h, "bad", "ping", NULL, on_result, &r), -ENODEV);
  assert_int_equal(mg_plugin_host_command(h, "ok", "ping", NULL, on_result, &r),
                   0);
  assert_int_equal(r.called, 1);

  char *dj = json_of(h, 1);
  struct mg_json *dv = parse(dj);
  const struct mg_json *bad = device(dv, "bad");
  assert_string_equal(mg_json_get_str(bad, "state"), "failed");
  assert_has(mg_json_get_str(bad, "error"),
             "init returned FATAL: no reader at /dev/fixture-reader");
  const struct mg_json *late = device(dv, "late");
  assert_string_equal(mg_json_get_str(late, "state"), "failed");
  assert_has(mg_json_get_str(late, "error"),
             "start returned FATAL: reader firmware too old");
  assert_string_equal(mg_json_get_str(device(dv, "ok"), "state"), "running");
  /* describe() beyond an old plugin's size is never read (it aborts). */
  assert_int_equal(mg_json_get(device(dv, "old"), "detail")->type,
                   MG_JSON_NULL);
  assert_int_equal(
      mg_json_get_bool(mg_json_get(device(dv, "new"), "detail"), "newer"), 1);
  mg_json_free(dv);
  free(dj);
  /* The 60 s timer of the half-started device was closed by the host. */
  mg_plugin_host_stop(h);
  RUN_UNTIL(&t->loop, !uv_loop_alive(&t->loop));
  mg_plugin_host_destroy(h);
  res_reset(&r);
}

/* ---------------------------------------------------------------------- */
/* fileprinter                                                             */

static struct mg_plugin_host *printer_up(struct t *t, const char *extra,
                                         char *out, size_t outlen) {
  char body[1024];
  snprintf(out, outlen, "%s/out", t->dir);
  assert_int_equal(mkdir(out, 0700), 0);
  snprintf(body, sizeof(body),
           "[printer \"p1\"]\nplugin = fileprinter\ncounter = c1\ndir = %s\n%s",
           out, extra);
  return host_up(t, MG_TEST_PLUGIN_DIR, body, 1);
}

static size_t dir_entries(const char *path) {
  DIR *d = opendir(path);
  struct dirent *e;
  size_t n = 0;
  assert_non_null(d);
  while ((e = readdir(d)))
    n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  return n;
}

static void test_fileprinter_print(void **state) {
  struct t *t = *state;
  struct res r = {0};
  char out[128], src[128], args[512];
  size_t n = 300000, got_n = 0; /* several read/write rounds */
  unsigned char *data = malloc(n);
  assert_non_null(data);
  for (size_t i = 0; i < n; i++)
    data[i] = (unsigned char)(i * 131 + i / 7);
  snprintf(src, sizeof(src), "%s/doc.pdf", t->dir);
  write_file(src, data, n);
  struct mg_plugin_host *h = printer_up(t, "", out, sizeof(out));

  snprintf(args, sizeof(args),
           "{\"copies\":[1,{\"x\":\"}\"}],\"title\":\"\\u4f4f\\u6c11\\u7968 "
           "\\\"A\\\"\",\"path\":\"%s\"}",
           src);
  assert_int_equal(
      mg_plugin_host_command(h, "p1", "print", args, on_result, &r), 0);
  RUN_UNTIL(&t->loop, r.called == 1);
  if (r.status != MG_PLUGIN_OK)
    fail_msg("print failed: %s", r.json ? r.json : "(no result)");
  struct mg_json *v = parse(r.json);
  int64_t job = 0;
  assert_int_equal(mg_json_get_int(v, "job", &job), 0);
  assert_int_equal(job, 1);
  const char *file = mg_json_get_str(v, "file");
  char prefix[160];
  snprintf(prefix, sizeof(prefix), "%s/p1-", out);
  assert_non_null(file);
  assert_memory_equal(file, prefix, strlen(prefix));
  assert_string_equal(file + strlen(file) - 4, ".pdf");
  char *got = read_file(file, &got_n);
  assert_int_equal(got_n, n);
  assert_memory_equal(got, data, n);
  free(got);
  char meta[512];
  snprintf(meta, sizeof(meta), "%s.meta.json", file);
  got = read_file(meta, &got_n);
  assert_has(got, "\"title\":\"住民票 \\\"A\\\"\"");
  free(got);
  mg_json_free(v);
  assert_int_equal(dir_entries(out), 2); /* no .part left behind */

  /* Events in order, to the printer's counter. */
  assert_int_equal(count_events(t, "print.job"), 2);
  assert_string_equal(nth_event(t, "print.job", 0)->json,
                      "{\"job\":1,\"state\":\"processing\"}");
  assert_string_equal(nth_event(t, "print.job", 1)->json,
                      "{\"job\":1,\"state\":\"completed\"}");
  assert_string_equal(nth_event(t, "print.job", 1)->counters, "c1");

  /* A test page names the printer. */
  res_reset(&r);
  assert_int_equal(
      mg_plugin_host_command(h, "p1", "test-page", NULL, on_result, &r), 0);
  RUN_UNTIL(&t->loop, r.called == 1);
  assert_int_equal(r.status, MG_PLUGIN_OK);
  v = parse(r.json);
  got = read_file(mg_json_get_str(v, "file"), &got_n);
  assert_has(got, "printer: p1");
  free(got);
  mg_json_free(v);

  char *dj = json_of(h, 1);
  assert_has(dj, "\"jobs\":2,\"active\":0");
  free(dj);
  mg_plugin_host_stop(h);
  mg_plugin_host_destroy(h);
  res_reset(&r);
  free(data);
}

static void expect_print_fail(struct t *t, struct mg_plugin_host *h,
                              const char *op, const char *args, int status,
                              const char *why) {
  struct res r = {0};
  assert_int_equal(mg_plugin_host_command(h, "p1", op, args, on_result, &r), 0);
  RUN_UNTIL(&t->loop, r.called == 1);
  assert_int_equal(r.status, status);
  if (why)
    assert_has(r.json, why);
  res_reset(&r);
}

static void test_fileprinter_errors(void **state) {
  struct t *t = *state;
  char out[128], big[128], args[256];
  char data[2048] = {0};
  struct mg_plugin_host *h =
      printer_up(t, "max_job_size = 1k\n", out, sizeof(out));
  snprintf(big, sizeof(big), "%s/big.pdf", t->dir);
  write_file(big, data, sizeof(data));

  expect_print_fail(t, h, "print", NULL, MG_PLUGIN_FATAL,
                    "needs {\\\"path\\\"");
  expect_print_fail(t, h, "print", "{\"path\":\"rel/doc.pdf\"}",
                    MG_PLUGIN_FATAL, "absolute");
  expect_print_fail(t, h, "print", "{\"path\":\"/a\\u0000b\"}", MG_PLUGIN_FATAL,
                    "absolute");
  expect_print_fail(t, h, "print", "{\"path\":", MG_PLUGIN_FATAL, "absolute");
  expect_print_fail(t, h, "print", "{\"path\":\"/x\",\"title\":3}",
                    MG_PLUGIN_FATAL, "title must be a string");
  expect_print_fail(t, h, "staple", NULL, MG_PLUGIN_FATAL, NULL);
  assert_int_equal(count_events(t, "print.job"), 0); /* never accepted */

  snprintf(args, sizeof(args), "{\"path\":\"%s/missing.pdf\"}", t->dir);
  expect_print_fail(t, h, "print", args, MG_PLUGIN_FATAL,
                    "cannot open the document");
  snprintf(args, sizeof(args), "{\"path\":\"%s\"}", big);
  expect_print_fail(t, h, "print", args, MG_PLUGIN_FATAL,
                    "larger than max_job_size");
  assert_int_equal(count_events(t, "print.job"), 4);
  assert_string_equal(nth_event(t, "print.job", 3)->json,
                      "{\"job\":2,\"state\":\"aborted\"}");
  assert_int_equal(dir_entries(out), 0);
  mg_plugin_host_destroy(h);
}

static void test_fileprinter_stop_during_delay(void **state) {
  struct t *t = *state;
  struct res r = {0};
  char out[128], src[128], args[256];
  struct mg_plugin_host *h = printer_up(t, "delay = 10s\n", out, sizeof(out));
  snprintf(src, sizeof(src), "%s/doc.txt", t->dir);
  write_file(src, "hello", 5);
  snprintf(args, sizeof(args), "{\"path\":\"%s\"}", src);
  assert_int_equal(
      mg_plugin_host_command(h, "p1", "print", args, on_result, &r), 0);
  uv_run(&t->loop, UV_RUN_NOWAIT);
  assert_int_equal(r.called, 0);
  mg_plugin_host_stop(h); /* the plugin aborts its own job */
  assert_int_equal(r.called, 1);
  assert_int_equal(r.status, MG_PLUGIN_RETRY);
  assert_has(r.json, "the printer stopped");
  assert_string_equal(nth_event(t, "print.job", 1)->json,
                      "{\"job\":1,\"state\":\"aborted\"}");
  RUN_UNTIL(&t->loop, !uv_loop_alive(&t->loop)); /* the 10 s timer is gone */
  assert_int_equal(dir_entries(out), 0);
  mg_plugin_host_destroy(h);
  res_reset(&r);
}

static void test_fileprinter_missing_dir(void **state) {
  struct t *t = *state;
  char body[512];
  struct mg_plugin_host *h = NULL;
  snprintf(body, sizeof(body),
           "[printer \"p1\"]\nplugin = fileprinter\ndir = %s/absent\n", t->dir);
  struct mg_config *cfg = cfg_parse(MG_TEST_PLUGIN_DIR, body);
  assert_int_equal(mg_plugin_host_create(&t->loop, NULL, on_emit, t, &h), 0);
  assert_int_equal(mg_plugin_host_configure(h, cfg, NULL), 0);
  mg_config_free(cfg);
  assert_int_equal(mg_plugin_host_start(h), 1);
  char *dj = json_of(h, 1);
  assert_has(dj, "\"state\":\"failed\"");
  assert_has(dj, "is not a writable directory");
  free(dj);
  mg_plugin_host_destroy(h);
}

/* The fake host pattern of docs/plugins.md: a plugin driven without the
 * daemon, by services that record what they get and run work inline. */
static struct {
  int completes, status, events;
  char json[512];
} fake;

__attribute__((format(printf, 3, 4))) static void
fk_log(struct mg_instance *inst, int level, const char *fmt, ...) {
  (void)inst;
  (void)level;
  (void)fmt;
}
static int fk_queue(struct mg_instance *inst, void (*work)(void *ud),
                    void (*done)(void *ud, int status), void *ud) {
  (void)inst;
  work(ud);
  done(ud, 0);
  return 0;
}
static int fk_emit(struct mg_instance *inst, const char *topic,
                   const char *json) {
  (void)inst;
  (void)json;
  fake.events += strcmp(topic, "print.job") == 0;
  return 0;
}
static void fk_complete(struct mg_instance *inst, uint64_t req_id, int status,
                        const char *json) {
  (void)inst;
  (void)req_id;
  fake.completes++;
  fake.status = status;
  snprintf(fake.json, sizeof(fake.json), "%s", json ? json : "");
}
static const char *fk_id(struct mg_instance *inst) {
  (void)inst;
  return "fake";
}

static void test_fileprinter_fake_host(void **state) {
  struct t *t = *state;
  struct mg_plugin_lib *lib = NULL;
  const struct mg_host host = {.abi_major = MG_PLUGIN_ABI_MAJOR,
                               .abi_minor = MG_PLUGIN_ABI_MINOR,
                               .size = sizeof(host),
                               .log = fk_log,
                               .queue_work = fk_queue,
                               .emit = fk_emit,
                               .complete = fk_complete,
                               .instance_id = fk_id};
  struct mg_config_kv kv[] = {{(char *)"dir", t->dir, 3}};
  char src[128], args[256];
  assert_int_equal(
      mg_plugin_load(MG_TEST_PLUGIN_DIR "/fileprinter.so", &lib, NULL), 0);
  const struct mg_plugin *p = lib->desc;
  void *ctx = calloc(1, p->ctx_size);
  assert_non_null(ctx);
  assert_int_equal(mg_config_apply(p->config, ctx, kv, 1, "fake.conf", 2,
                                   "[printer \"fake\"]", NULL),
                   0);
  assert_int_equal(p->init(ctx, &host, NULL), MG_PLUGIN_OK);
  assert_int_equal(p->start(ctx), MG_PLUGIN_OK);
  snprintf(src, sizeof(src), "%s/doc.pdf", t->dir);
  write_file(src, "%PDF-1.4\n", 9);
  snprintf(args, sizeof(args), "{\"path\":\"%s\"}", src);
  assert_int_equal(p->command(ctx, 1, "print", args), MG_PLUGIN_PENDING);
  assert_int_equal(fake.completes, 1); /* inline work: already complete */
  assert_int_equal(fake.status, MG_PLUGIN_OK);
  assert_has(fake.json, "\"job\":1,\"file\":\"");
  assert_has(fake.json, "/fake-");
  assert_int_equal(fake.events, 2);
  p->stop(ctx);
  p->fini(ctx);
  mg_config_release(p->config, ctx);
  free(ctx);
  mg_plugin_unload(lib);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_load_good),
      cmocka_unit_test(test_load_missing),
      cmocka_unit_test_setup_teardown(test_load_not_elf, setup, teardown),
      cmocka_unit_test_setup_teardown(test_load_world_writable, setup,
                                      teardown),
      cmocka_unit_test(test_load_no_entry),
      cmocka_unit_test(test_load_wrong_major),
      cmocka_unit_test(test_load_short_struct),
      cmocka_unit_test(test_load_null_callback),
      cmocka_unit_test(test_load_name_mismatch),
      cmocka_unit_test(test_load_bad_kind),
      cmocka_unit_test(test_load_bad_table),
      cmocka_unit_test(test_load_minor_versions),
      cmocka_unit_test(test_kind_names),
      cmocka_unit_test(test_configure_errors),
      cmocka_unit_test(test_configure_only),
      cmocka_unit_test_setup_teardown(test_lifecycle_good, setup, teardown),
      cmocka_unit_test_setup_teardown(test_command_edges, setup, teardown),
      cmocka_unit_test_setup_teardown(test_forgotten_handles, setup, teardown),
      cmocka_unit_test_setup_teardown(test_destroy_before_close_callbacks,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_work_outlives_host, setup, teardown),
      cmocka_unit_test_setup_teardown(test_work_cancelled_at_stop, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_failed_devices, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fileprinter_print, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fileprinter_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fileprinter_stop_during_delay, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_fileprinter_missing_dir, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_fileprinter_fake_host, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
