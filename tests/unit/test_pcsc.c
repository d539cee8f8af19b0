/*
 * test_pcsc — the pcsc card-reader plugin (I7) as built (pcsc.so, dlopen)
 * against the fake host (tests/unit/fake_host.h), reading through the
 * real stack: libpcsclite, a private pcscd with vsmartcard's vpcd driver
 * (tests/cardemu/pcscd-env.sh) and our card emulator (cardemu) holding the
 * fictional people of tests/fixtures/cards/ (*.card files).
 *
 * Covered: insert -> card.inserted with the type, tries and PIN state;
 * status; a read of each card type, every field checked against the card
 * file; a wrong PIN costs exactly one try (the card's own counter, asked
 * again through status) and is not retried; a blocked PIN; a residence
 * card refusing a wrong card number; the card pulled in the middle of a
 * read (cardemu --drop-after); one operation at a time (busy); bad
 * requests; no reader at start (waiting, then pcscd comes); stop while the
 * monitor waits in SCardGetStatusChange; no PIN or card content in the
 * log.  Skipped (exit 77) where no private pcscd can run (not root).
 */
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "json.h"
#include "plugin_host.h"

#include "fake_host.h"

#ifndef MG_TEST_PLUGIN_DIR
#error "MG_TEST_PLUGIN_DIR must name the directory of the built plugins"
#endif
#ifndef MG_TEST_CARDEMU
#error "MG_TEST_CARDEMU must name the built cardemu"
#endif

#define ENV_SH MG_TEST_SOURCE_DIR "/tests/cardemu/pcscd-env.sh"
#define CARDS MG_TEST_SOURCE_DIR "/tests/fixtures/cards/"
#define READER "Virtual PCD 00 00"
#define WAIT_MS 10000

static char g_dir[64]; /* pcscd's DIR: one per process (libpcsclite caches
                          the socket name) */

/* ---------------------------------------------------------------------- */
/* The harness: pcscd-env.sh run as a script                               */

__attribute__((format(printf, 1, 2))) static int sh(const char *fmt, ...) {
  char args[1024], cmd[1400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof(args), fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof(cmd), "bash '%s' %s", ENV_SH, args);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void card_insert(const char *file, const char *extra) {
  assert_int_equal(sh("card_insert '%s' %s", file, extra ? extra : ""), 0);
}

static void card_remove(void) { assert_int_equal(sh("card_remove"), 0); }

/* ---------------------------------------------------------------------- */
/* Card files: the expected values, and variants written into g_dir        */

/* The value of `key` in a card file (malloc'd; NULL when absent). */
static char *card_get(const char *path, const char *key) {
  FILE *f = fopen(path, "r");
  char line[1024], *val = NULL;
  assert_non_null(f);
  while (fgets(line, sizeof(line), f)) {
    char *eq = strchr(line, '='), *k = line, *v, *e;
    if (line[0] == ';' || line[0] == '#' || !eq)
      continue;
    *eq = '\0';
    v = eq + 1;
    while (*k == ' ' || *k == '\t')
      k++;
    for (e = eq; e > k && (e[-1] == ' ' || e[-1] == '\t'); e--)
      ;
    *e = '\0';
    if (strcmp(k, key) != 0)
      continue;
    for (char *c = v; *c; c++) /* a comment after the value */
      if (*c == ';' && c > v && (c[-1] == ' ' || c[-1] == '\t')) {
        *c = '\0';
        break;
      }
    while (*v == ' ' || *v == '\t')
      v++;
    for (e = v + strlen(v); e > v && strchr(" \t\r\n", e[-1]); e--)
      ;
    *e = '\0';
    free(val);
    val = strdup(v);
  }
  fclose(f);
  return val;
}

static int card_int(const char *path, const char *key, int def) {
  char *v = card_get(path, key);
  int n = v ? atoi(v) : def;
  free(v);
  return n;
}

/* Copy src to g_dir/name with key=value lines replaced or added
 * (NULL-terminated pairs); returns the new path (static buffer). */
static const char *card_variant(const char *src, const char *name, ...) {
  static char out[256];
  char line[1024], keys[8][64], vals[8][256];
  int n = 0, done[8] = {0};
  va_list ap;
  va_start(ap, name);
  for (const char *k; n < 8 && (k = va_arg(ap, const char *)); n++) {
    snprintf(keys[n], sizeof(keys[n]), "%s", k);
    snprintf(vals[n], sizeof(vals[n]), "%s", va_arg(ap, const char *));
  }
  va_end(ap);
  snprintf(out, sizeof(out), "%s/%s", g_dir, name);
  FILE *in = fopen(src, "r"), *o = fopen(out, "w");
  assert_non_null(in);
  assert_non_null(o);
  while (fgets(line, sizeof(line), in)) {
    const char *k = line;
    int hit = -1;
    while (*k == ' ' || *k == '\t')
      k++;
    for (int i = 0; i < n; i++) {
      size_t kl = strlen(keys[i]);
      if (!strncmp(k, keys[i], kl) && strchr(" \t=", k[kl]))
        hit = i;
    }
    if (hit >= 0) {
      fprintf(o, "%s = %s\n", keys[hit], vals[hit]);
      done[hit] = 1;
    } else {
      fputs(line, o);
      if (!strchr(line, '\n'))
        fputc('\n', o);
    }
  }
  for (int i = 0; i < n; i++)
    if (!done[i])
      fprintf(o, "%s = %s\n", keys[i], vals[i]);
  fclose(in);
  fclose(o);
  return out;
}

/* ---------------------------------------------------------------------- */
/* The plugin under the fake host                                          */

struct t {
  struct mg_plugin_lib *lib;
  const struct mg_plugin *p;
  void *ctx;
  int started;
  int seen; /* events before this index are consumed */
};

static void close_plugin(struct t *t) {
  if (t->started) {
    t->p->stop(t->ctx);
    while (fk_run(0))
      ;
    t->p->fini(t->ctx);
  }
  if (t->p && t->ctx)
    mg_config_release(t->p->config, t->ctx);
  free(t->ctx);
  mg_plugin_unload(t->lib);
  memset(t, 0, sizeof(*t));
}

/* Load, configure (name, extended_apdu = yes), init and start. */
static int open_plugin(struct t *t, const char *name) {
  struct mg_config_kv kv[2] = {{(char *)"name", (char *)name, 2},
                               {(char *)"extended_apdu", (char *)"yes", 3}};
  struct mg_err err = {{0}};
  int rc;
  assert_int_equal(
      mg_plugin_load(MG_TEST_PLUGIN_DIR "/pcsc.so", &t->lib, &err), 0);
  t->p = t->lib->desc;
  assert_int_equal(t->p->kind, MG_PLUGIN_KIND_CARD_READER);
  assert_non_null(t->ctx = calloc(1, t->p->ctx_size));
  /* name NULL: only extended_apdu, the required name is missing */
  rc = mg_config_apply(t->p->config, t->ctx, name ? kv : kv + 1, name ? 2 : 1,
                       "box.conf", 1, "[reader \"r\"]", &err);
  if (rc != 0) {
    fk_log(NULL, 3, "%s", err.msg);
    return rc;
  }
  if ((rc = t->p->init(t->ctx, &fk_host, NULL)) != MG_PLUGIN_OK)
    return rc;
  t->started = 1;
  return t->p->start(t->ctx);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The data of the next event `topic` (after t->seen), parsed; NULL when
 * none came within WAIT_MS.  Events passed over are consumed. */
static struct mg_json *wait_event(struct t *t, const char *topic) {
  size_t tl = strlen(topic);
  int64_t until = now_ms() + WAIT_MS;
  for (;;) {
    for (; t->seen < fk.events && t->seen < FK_MAX; t->seen++) {
      const char *e = fk.event[t->seen];
      if (!strncmp(e, topic, tl) && e[tl] == ' ') {
        struct mg_json *j = NULL;
        assert_int_equal(mg_json_parse(e + tl + 1, strlen(e + tl + 1), NULL,
                                       &j, NULL),
                         0);
        t->seen++;
        return j;
      }
    }
    if (now_ms() >= until)
      return NULL;
    fk_poll(50);
  }
}

/* No event `topic` arrives within ms. */
static int no_event(struct t *t, const char *topic, int ms) {
  int64_t until = now_ms() + ms;
  size_t tl = strlen(topic);
  while (now_ms() < until)
    fk_poll(20);
  for (int i = t->seen; i < fk.events && i < FK_MAX; i++)
    if (!strncmp(fk.event[i], topic, tl) && fk.event[i][tl] == ' ')
      return 0;
  return 1;
}

static int n_complete(uint64_t id) {
  int n = 0;
  for (int i = 0; i < fk.completes && i < FK_MAX; i++)
    n += fk.req[i] == id;
  return n;
}

static int status_of(uint64_t id) {
  for (int i = 0; i < fk.completes && i < FK_MAX; i++)
    if (fk.req[i] == id)
      return fk.status[i];
  return 99;
}

/* Run a command and wait for its answer; *status gets it; the parsed
 * answer is returned. */
static struct mg_json *cmd(struct t *t, uint64_t id, const char *op,
                           const char *args, int *status) {
  struct mg_json *j = NULL;
  int64_t until = now_ms() + WAIT_MS;
  assert_int_equal(t->p->command(t->ctx, id, op, args), MG_PLUGIN_PENDING);
  while (!n_complete(id) && now_ms() < until)
    if (!fk_run(0))
      fk_poll(20);
  assert_int_equal(n_complete(id), 1);
  *status = status_of(id);
  const char *s = fk_json_for(id);
  assert_int_equal(mg_json_parse(s, strlen(s), NULL, &j, NULL), 0);
  return j;
}

static int64_t jint(const struct mg_json *j, const char *key) {
  int64_t v = -999;
  if (mg_json_get_int(j, key, &v) != 0)
    return -999; /* absent or null */
  return v;
}

static void expect_str(const struct mg_json *j, const char *key,
                       const char *want) {
  const char *got = mg_json_get_str(j, key);
  if (!want) {
    if (got)
      fail_msg("%s: expected absent, got \"%s\"", key, got);
    return;
  }
  if (!got || strcmp(got, want) != 0)
    fail_msg("%s: expected \"%s\", got \"%s\"", key, want,
             got ? got : "(absent)");
}

/* card's key as the read must give it back (NULL: absent from the file) */
static void expect_from(const struct mg_json *j, const char *key,
                        const char *file, const char *file_key) {
  char *v = card_get(file, file_key);
  if (v)
    expect_str(j, key, v);
  free(v);
}

static int describe_has(struct t *t, const char *needle) {
  char buf[512];
  int n = t->p->describe(t->ctx, buf, sizeof(buf));
  assert_true(n > 0);
  if (strstr(buf, needle))
    return 1;
  print_message("describe \"%s\" lacks \"%s\"\n", buf, needle);
  return 0;
}

/* Start with the reader seen present. */
static void open_ready(struct t *t) {
  struct mg_json *e;
  assert_int_equal(open_plugin(t, READER), MG_PLUGIN_OK);
  assert_non_null(e = wait_event(t, "reader.state"));
  assert_int_equal(mg_json_get_bool(e, "present"), 1);
  mg_json_free(e);
}

/* Insert a card and wait for card.inserted; returns its data. */
static struct mg_json *insert(struct t *t, const char *file,
                              const char *extra) {
  struct mg_json *e;
  card_insert(file, extra);
  assert_non_null(e = wait_event(t, "card.inserted"));
  expect_str(e, "reader", fk_id(NULL));
  return e;
}

static void remove_card(struct t *t) {
  struct mg_json *e;
  card_remove();
  assert_non_null(e = wait_event(t, "card.removed"));
  expect_str(e, "reader", fk_id(NULL));
  mg_json_free(e);
}

/* status: tries_left as the card tells it now (-999: null) */
static int64_t tries_now(struct t *t, uint64_t id) {
  int st;
  struct mg_json *j = cmd(t, id, "status", NULL, &st);
  assert_int_equal(st, MG_PLUGIN_OK);
  assert_int_equal(mg_json_get_bool(j, "present"), 1);
  int64_t n = jint(j, "tries_left");
  mg_json_free(j);
  return n;
}

static int setup(void **state) {
  struct t *t = calloc(1, sizeof(*t));
  assert_non_null(t);
  fk_reset();
  sh("card_remove");
  *state = t;
  return 0;
}

static int teardown(void **state) {
  struct t *t = *state;
  close_plugin(t);
  sh("card_remove");
  fk_reset();
  free(t);
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Tests                                                                   */

static void read_mynumber(void **state, const char *f) {
  struct t *t = *state;
  char *pin = card_get(f, "pin"), *name = card_get(f, "name"),
       *num = card_get(f, "my_number"), args[64];
  struct mg_json *e, *j;
  int st, tries = card_int(f, "tries", 3);

  assert_non_null(pin);
  open_ready(t);
  assert_true(describe_has(t, "\"state\":\"ready\""));
  assert_true(describe_has(t, "\"card\":\"none\""));
  e = insert(t, f, NULL);
  expect_str(e, "type", "mynumber");
  assert_int_equal(jint(e, "tries_left"), tries);
  assert_int_equal(mg_json_get_bool(e, "pin_set"), 1);
  mg_json_free(e);
  assert_true(describe_has(t, "\"card\":\"mynumber\""));
  assert_true(describe_has(t, "\"present\":true"));

  j = cmd(t, 1, "status", NULL, &st);
  assert_int_equal(st, MG_PLUGIN_OK);
  assert_int_equal(mg_json_get_bool(j, "present"), 1);
  expect_str(j, "type", "mynumber");
  assert_int_equal(jint(j, "tries_left"), tries);
  assert_int_equal(mg_json_get_bool(j, "pin_set"), 1);
  mg_json_free(j);

  snprintf(args, sizeof(args), "{\"pin\":\"%s\"}", pin);
  j = cmd(t, 2, "read", args, &st);
  if (st != MG_PLUGIN_OK)
    fail_msg("read: %s", fk_json_for(2));
  expect_str(j, "type", "mynumber");
  expect_from(j, "name", f, "name");
  expect_from(j, "address", f, "address");
  expect_from(j, "birth_date", f, "birth");
  expect_from(j, "sex", f, "sex");
  expect_str(j, "my_number", num);
  assert_int_equal(mg_json_get_bool(j, "my_number_valid"), 1);
  expect_str(j, "kana", NULL);
  expect_str(j, "face_tiff", NULL);
  assert_int_equal(jint(j, "tries_left"), tries);
  assert_true(jint(j, "apdus") > 0);
  assert_true(jint(j, "ms") >= 0);
  mg_json_free(j);

  /* nothing of the card or the PIN in the log */
  assert_true(fk_logs_lack(pin));
  assert_true(fk_logs_lack(name));
  assert_true(fk_logs_lack(num));

  remove_card(t);
  assert_true(describe_has(t, "\"card\":\"none\""));
  j = cmd(t, 3, "status", NULL, &st);
  assert_int_equal(st, MG_PLUGIN_OK);
  assert_int_equal(mg_json_get_bool(j, "present"), 0);
  mg_json_free(j);
  j = cmd(t, 4, "read", args, &st);
  assert_int_equal(st, MG_PLUGIN_FATAL);
  expect_str(j, "error", "no_card");
  mg_json_free(j);
  free(pin);
  free(name);
  free(num);
}

static void test_mynumber(void **state) {
  read_mynumber(state, CARDS "mynumber.card");
}

/* name + address over 127 bytes: BER long lengths in EF0002 */
static void test_mynumber_long(void **state) {
  read_mynumber(state, CARDS "mynumber_long.card");
}

static void read_license(void **state, const char *f) {
  struct t *t = *state;
  char *pin = card_get(f, "pin"), args[64];
  struct mg_json *e, *j;
  int st;

  assert_non_null(pin);
  open_ready(t);
  e = insert(t, f, NULL);
  expect_str(e, "type", "license");
  assert_int_equal(mg_json_get_bool(e, "pin_set"), 1);
  assert_int_equal(jint(e, "tries_left"), card_int(f, "tries", 3));
  mg_json_free(e);

  snprintf(args, sizeof(args), "{\"pin\":\"%s\"}", pin);
  j = cmd(t, 1, "read", args, &st);
  if (st != MG_PLUGIN_OK)
    fail_msg("read: %s", fk_json_for(1));
  expect_str(j, "type", "license");
  expect_from(j, "kana", f, "kana");
  expect_from(j, "address", f, "address");
  expect_from(j, "birth_date", f, "birth");
  expect_from(j, "license_number", f, "license_number");
  expect_from(j, "expiry", f, "expiry");
  expect_str(j, "my_number", NULL);
  if (card_int(f, "gaiji", 0) > 0) {
    /* the 外字 is a visible placeholder for staff to confirm; the rest of
     * the name is read as it is */
    const char *name = mg_json_get_str(j, "name");
    char *want = card_get(f, "name");
    assert_non_null(name);
    assert_non_null(strstr(name, "【外字1】"));
    assert_true(strlen(want) > 6);
    assert_non_null(strstr(name, want + 6)); /* after 2 kanji of 3 bytes */
    assert_int_equal(jint(j, "gaiji"), 1);
    free(want);
  } else {
    expect_from(j, "name", f, "name");
    assert_int_equal(jint(j, "gaiji"), 0);
  }
  mg_json_free(j);
  assert_true(fk_logs_lack(pin));
  free(pin);
}

static void test_license(void **state) {
  read_license(state, CARDS "license.card");
}

static void test_license_gaiji(void **state) {
  read_license(state, CARDS "license_gaiji.card");
}

/* A licence without a PIN is read with {}; one with a PIN is not read
 * with {} (nothing is sent, no try spent). */
static void test_license_no_pin(void **state) {
  struct t *t = *state;
  const char *f = CARDS "license_nopin.card";
  struct mg_json *e, *j;
  int st;

  open_ready(t);
  e = insert(t, f, NULL);
  expect_str(e, "type", "license");
  assert_int_equal(mg_json_get_bool(e, "pin_set"), 0);
  mg_json_free(e);
  j = cmd(t, 1, "read", "{}", &st);
  if (st != MG_PLUGIN_OK)
    fail_msg("read: %s", fk_json_for(1));
  expect_from(j, "address", f, "address");
  mg_json_free(j);
  remove_card(t);

  e = insert(t, CARDS "license.card", NULL);
  int64_t before = jint(e, "tries_left");
  mg_json_free(e);
  j = cmd(t, 2, "read", "{}", &st);
  assert_int_equal(st, MG_PLUGIN_FATAL);
  expect_str(j, "error", "bad_request");
  mg_json_free(j);
  assert_int_equal(tries_now(t, 3), before);
}

static void read_residence(void **state, const char *f) {
  struct t *t = *state;
  char *num = card_get(f, "card_number"), args[64];
  struct mg_json *e, *j;
  int st;

  assert_non_null(num);
  open_ready(t);
  e = insert(t, f, NULL);
  expect_str(e, "type", "residence");
  assert_int_equal(jint(e, "tries_left"), -999); /* null: no counter */
  assert_int_equal(mg_json_get_bool(e, "pin_set"), 0);
  mg_json_free(e);

  snprintf(args, sizeof(args), "{\"card_number\":\"%s\"}", num);
  j = cmd(t, 1, "read", args, &st);
  if (st != MG_PLUGIN_OK)
    fail_msg("read: %s", fk_json_for(1));
  expect_str(j, "type", "residence");
  expect_from(j, "name", f, "name");
  expect_from(j, "address", f, "address");
  const char *kind = mg_json_get_str(j, "card_kind");
  assert_non_null(kind);
  assert_string_equal(kind, card_int(f, "card_kind", 1) == 2
                                ? "特別永住者証明書"
                                : "在留カード");
  const char *face = mg_json_get_str(j, "face_tiff");
  assert_non_null(face);
  assert_true(strlen(face) > 8 && strlen(face) % 4 == 0);
  mg_json_free(j);
  assert_true(fk_logs_lack(num));

  /* a wrong card number (well formed) is refused */
  char wrong[16];
  snprintf(wrong, sizeof(wrong), "%s", num);
  wrong[5] = wrong[5] == '9' ? '0' : (char)(wrong[5] + 1);
  snprintf(args, sizeof(args), "{\"card_number\":\"%s\"}", wrong);
  j = cmd(t, 2, "read", args, &st);
  assert_int_equal(st, MG_PLUGIN_FATAL);
  expect_str(j, "error", "wrong_pin");
  assert_non_null(mg_json_get_str(j, "message"));
  expect_str(j, "name", NULL);
  mg_json_free(j);
  /* the card needs its number: a PIN is a bad request */
  j = cmd(t, 3, "read", "{\"pin\":\"1234\"}", &st);
  assert_int_equal(st, MG_PLUGIN_FATAL);
  expect_str(j, "error", "bad_request");
  mg_json_free(j);
  free(num);
}

static void test_residence(void **state) {
  read_residence(state, CARDS "residence.card");
}

static void test_residence_special(void **state) {
  read_residence(state, CARDS "residence_special.card");
}

/* One wrong PIN costs exactly one try, told in the answer and by the
 * card's own counter; it is not retried. */
static void test_wrong_pin(void **state) {
  struct t *t = *state;
  const char *f = card_variant(CARDS "mynumber.card", "wrong.card", "tries",
                               "3", NULL);
  char *pin = card_get(f, "pin"), wrong[8], args[64];
  struct mg_json *e, *j;
  int st;

  open_ready(t);
  e = insert(t, f, NULL);
  assert_int_equal(jint(e, "tries_left"), 3);
  mg_json_free(e);
  snprintf(wrong, sizeof(wrong), "%s", pin);
  wrong[0] = wrong[0] == '9' ? '0' : (char)(wrong[0] + 1);
  snprintf(args, sizeof(args), "{\"pin\":\"%s\"}", wrong);
  j = cmd(t, 1, "read", args, &st);
  assert_int_equal(st, MG_PLUGIN_FATAL);
  expect_str(j, "error", "wrong_pin");
  assert_int_equal(jint(j, "tries_left"), 2);
  expect_str(j, "name", NULL);
  mg_json_free(j);
  assert_int_equal(tries_now(t, 2), 2); /* exactly one was spent */
  assert_true(fk_logs_lack(wrong));
  /* the right PIN still reads */
  snprintf(args, sizeof(args), "{\"pin\":\"%s\"}", pin);
  j = cmd(t, 3, "read", args, &st);
  assert_int_equal(st, MG_PLUGIN_OK);
  expect_from(j, "name", f, "name");
  mg_json_free(j);
  free(pin);
}

static void blocked(void **state, const char *f, const char *type) {
  struct t *t = *state;
  char *pin = card_get(f, "pin"), args[64];
  struct mg_json *e, *j;
  int st;

  open_ready(t);
  e = insert(t, f, NULL);
  expect_str(e, "type", type);
  assert_int_equal(jint(e, "tries_left"), 0);
  mg_json_free(e);
  snprintf(args, sizeof(args), "{\"pin\":\"%s\"}", pin);
  j = cmd(t, 1, "read", args, &st);
  assert_int_equal(st, MG_PLUGIN_FATAL);
  expect_str(j, "error", "blocked");
  assert_int_equal(jint(j, "tries_left"), 0);
  assert_non_null(strstr(mg_json_get_str(j, "message"), "blocked"));
  mg_json_free(j);
  assert_int_equal(tries_now(t, 2), 0);
  free(pin);
}

static void test_blocked(void **state) {
  blocked(state, CARDS "mynumber_blocked.card", "mynumber");
}

static void test_license_blocked(void **state) {
  blocked(state, CARDS "license_blocked.card", "license");
}

/* The card pulled in the middle of a read: FATAL removed, card.removed. */
static void test_removed_mid_read(void **state) {
  struct t *t = *state;
  const char *f = CARDS "mynumber.card";
  char *pin = card_get(f, "pin"), args[64], count[128], opt[256];
  struct mg_json *e, *j;
  int st;
  long total = 0;
  int64_t read_apdus;

  open_ready(t);
  snprintf(count, sizeof(count), "%s/count", g_dir);
  snprintf(opt, sizeof(opt), "--count-file '%s'", count);
  /* a whole read first: how many APDUs the insert and the read take */
  e = insert(t, f, opt);
  mg_json_free(e);
  snprintf(args, sizeof(args), "{\"pin\":\"%s\"}", pin);
  j = cmd(t, 1, "read", args, &st);
  assert_int_equal(st, MG_PLUGIN_OK);
  read_apdus = jint(j, "apdus");
  mg_json_free(j);
  remove_card(t);
  FILE *c = fopen(count, "r");
  assert_non_null(c);
  assert_int_equal(fscanf(c, "%ld", &total), 1);
  fclose(c);
  assert_true(read_apdus >= 2 && total > read_apdus);

  /* then the card goes away half-way through the read */
  snprintf(opt, sizeof(opt), "--drop-after %ld",
           total - read_apdus + read_apdus / 2);
  e = insert(t, f, opt);
  mg_json_free(e);
  j = cmd(t, 2, "read", args, &st);
  assert_int_equal(st, MG_PLUGIN_FATAL);
  expect_str(j, "error", "removed");
  expect_str(j, "name", NULL);
  mg_json_free(j);
  assert_non_null(e = wait_event(t, "card.removed"));
  mg_json_free(e);
  assert_true(describe_has(t, "\"card\":\"none\""));
  free(pin);
}

/* One card operation at a time: a command waits behind the insert's
 * identification; a second one while a command runs is busy. */
static void test_busy(void **state) {
  struct t *t = *state;
  const char *f = CARDS "mynumber.card";
  char *pin = card_get(f, "pin"), args[64];
  struct mg_json *e, *j;
  int st;

  open_ready(t);
  fk.deferred = 1;
  card_insert(f, NULL);
  int64_t until = now_ms() + WAIT_MS;
  while (!fk.n_work && now_ms() < until) /* the identify is queued */
    fk_poll(50);
  assert_int_equal(fk.n_work, 1);
  assert_true(describe_has(t, "\"state\":\"busy\""));
  snprintf(args, sizeof(args), "{\"pin\":\"%s\"}", pin);
  assert_int_equal(t->p->command(t->ctx, 1, "read", args), MG_PLUGIN_PENDING);
  assert_int_equal(n_complete(1), 0); /* waits for the identification */
  assert_int_equal(t->p->command(t->ctx, 2, "status", NULL),
                   MG_PLUGIN_PENDING);
  assert_int_equal(status_of(2), MG_PLUGIN_FATAL);
  assert_non_null(strstr(fk_json_for(2), "\"busy\""));
  assert_int_equal(fk_run(0), 1); /* identify; then the read is queued */
  assert_non_null(e = wait_event(t, "card.inserted"));
  mg_json_free(e);
  assert_int_equal(n_complete(1), 0);
  assert_int_equal(fk.n_work, 1);
  assert_int_equal(t->p->command(t->ctx, 3, "read", args), MG_PLUGIN_PENDING);
  assert_int_equal(status_of(3), MG_PLUGIN_FATAL);
  assert_non_null(strstr(fk_json_for(3), "\"busy\""));
  assert_int_equal(fk_run(0), 1);
  assert_int_equal(status_of(1), MG_PLUGIN_OK);
  fk.deferred = 0;
  j = cmd(t, 4, "status", NULL, &st); /* free again */
  assert_int_equal(st, MG_PLUGIN_OK);
  mg_json_free(j);
  free(pin);
}

static void test_bad_requests(void **state) {
  struct t *t = *state;
  static const char *const bad[] = {
      "{\"pin\":\"12\"}",      "{\"pin\":\"12a4\"}",
      "{\"pin\":1234}",        "[\"1234\"]",
      "{\"card_number\":\"aa12345678bb\"}",
      "{\"pin\":\"1234\",\"card_number\":\"AA12345678BB\"}"};
  struct mg_json *e, *j;
  int st;

  open_ready(t);
  e = insert(t, CARDS "mynumber.card", NULL);
  int64_t before = jint(e, "tries_left");
  mg_json_free(e);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    j = cmd(t, 10 + i, "read", bad[i], &st);
    assert_int_equal(st, MG_PLUGIN_FATAL);
    expect_str(j, "error", "bad_request");
    mg_json_free(j);
  }
  /* a My Number card needs the PIN: nothing is sent without one */
  j = cmd(t, 20, "read", "{}", &st);
  assert_int_equal(st, MG_PLUGIN_FATAL);
  expect_str(j, "error", "bad_request");
  mg_json_free(j);
  assert_int_equal(tries_now(t, 21), before);
  assert_int_equal(t->p->command(t->ctx, 22, "eject", NULL), MG_PLUGIN_FATAL);
  assert_true(fk_logs_lack("1234"));
}

/* No pcscd at start: waiting, no crash; pcscd comes: the reader shows. */
static void test_reader_absent(void **state) {
  struct t *t = *state;
  struct mg_json *e, *j;
  int st;

  assert_int_equal(sh("pcscd_stop"), 0);
  assert_int_equal(open_plugin(t, READER), MG_PLUGIN_OK);
  assert_true(no_event(t, "reader.state", 300));
  assert_true(describe_has(t, "\"state\":\"waiting\""));
  assert_true(describe_has(t, "\"present\":false"));
  j = cmd(t, 1, "status", NULL, &st);
  assert_int_equal(st, MG_PLUGIN_OK);
  assert_int_equal(mg_json_get_bool(j, "present"), 0);
  mg_json_free(j);
  j = cmd(t, 2, "read", "{\"pin\":\"1234\"}", &st);
  assert_int_equal(st, MG_PLUGIN_FATAL);
  expect_str(j, "error", "no_reader");
  mg_json_free(j);
  assert_int_equal(sh("pcscd_start '%s'", g_dir), 0);
  assert_non_null(e = wait_event(t, "reader.state"));
  assert_int_equal(mg_json_get_bool(e, "present"), 1);
  mg_json_free(e);
  assert_true(describe_has(t, "\"state\":\"ready\""));
  e = insert(t, CARDS "mynumber.card", NULL);
  expect_str(e, "type", "mynumber");
  mg_json_free(e);
  close_plugin(t);
  /* a reader pcscd does not know: waiting too */
  fk_reset();
  assert_int_equal(open_plugin(t, "Virtual PCD 00 07"), MG_PLUGIN_OK);
  assert_true(no_event(t, "reader.state", 300));
  assert_true(describe_has(t, "\"state\":\"waiting\""));
}

/* stop() while the monitor blocks in SCardGetStatusChange returns at once
 * (SCardCancel), not after the wait's own 5 s bound. */
static void test_stop_prompt(void **state) {
  struct t *t = *state;
  open_ready(t);
  usleep(300 * 1000); /* the monitor is waiting now */
  int64_t t0 = now_ms();
  t->p->stop(t->ctx);
  int64_t took = now_ms() - t0;
  t->p->fini(t->ctx);
  t->started = 0;
  if (took >= 2000)
    fail_msg("stop took %lld ms", (long long)took);
  assert_int_equal(fk_watching(), 0);
}

static void test_config(void **state) {
  struct t *t = *state;
  assert_int_not_equal(open_plugin(t, NULL), 0);
  assert_true(fk.logs >= 1);
  assert_non_null(strstr(fk.log[fk.logs - 1], "name"));
  close_plugin(t);
  fk_reset();
  assert_int_not_equal(open_plugin(t, ""), 0);
  assert_true(fk.logs >= 1);
  assert_non_null(strstr(fk.log[fk.logs - 1], "PC/SC name"));
  assert_non_null(strstr(fk.log[fk.logs - 1], "box.conf:2"));
}

/* ---------------------------------------------------------------------- */

static int rm_cb(const char *path, const struct stat *st, int flag,
                 struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_mynumber, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mynumber_long, setup, teardown),
      cmocka_unit_test_setup_teardown(test_license, setup, teardown),
      cmocka_unit_test_setup_teardown(test_license_gaiji, setup, teardown),
      cmocka_unit_test_setup_teardown(test_license_no_pin, setup, teardown),
      cmocka_unit_test_setup_teardown(test_residence, setup, teardown),
      cmocka_unit_test_setup_teardown(test_residence_special, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_wrong_pin, setup, teardown),
      cmocka_unit_test_setup_teardown(test_blocked, setup, teardown),
      cmocka_unit_test_setup_teardown(test_license_blocked, setup, teardown),
      cmocka_unit_test_setup_teardown(test_removed_mid_read, setup, teardown),
      cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stop_prompt, setup, teardown),
      cmocka_unit_test_setup_teardown(test_config, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reader_absent, setup, teardown),
  };
  char sock[128];
  int rc;

  snprintf(g_dir, sizeof(g_dir), "/tmp/mg-pcsc.XXXXXX");
  if (!mkdtemp(g_dir)) {
    perror("mkdtemp");
    return 1;
  }
  snprintf(sock, sizeof(sock), "%s/run/pcscd.comm", g_dir);
  setenv("PCSCLITE_CSOCK_NAME", sock, 1); /* read once by libpcsclite */
  setenv("PCSCD_DIR", g_dir, 1);
  setenv("CARDEMU", MG_TEST_CARDEMU, 1);
  rc = sh("pcscd_start '%s'", g_dir);
  if (rc == 77) {
    fprintf(stderr, "test_pcsc: skipped (no private pcscd here)\n");
    nftw(g_dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    return 77;
  }
  if (rc != 0) {
    fprintf(stderr, "test_pcsc: pcscd did not start\n");
    nftw(g_dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    return 1;
  }
  rc = cmocka_run_group_tests(tests, NULL, NULL);
  sh("pcscd_stop");
  nftw(g_dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
  return rc;
}
