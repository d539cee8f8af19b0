/*
 * test_scanner — slip scanners (G5): the key decoder and payload parser of
 * devices/libinput/scan_keys.c (compiled in), and the built scanner.so
 * against a fake host (tests/unit/fake_host.h).
 *
 * Keys are typed by this test's own US and JIS tables (not the decoder's),
 * the way a scanner types them: shift held for capitals and symbols, Enter
 * at the end.  Covered: tokens and numbers in both layouts, Caps Lock, the
 * keypad, empty lines, the 512-character limit, control keys and chords,
 * a scan left without Enter, releases and modifiers alone; the parser's
 * rules (the Luhn check against mgcore's mg_luhn_ok); the plugin's config,
 * a missing device and a device that is no input device (start fails
 * naming the path), no commands, and describe.  With /dev/uinput (not on
 * our machines) a virtual scanner types a slip's code through the kernel
 * and libinput; otherwise that test is skipped.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/input-event-codes.h>
#include <linux/uinput.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "jp.h"
#include "plugin_host.h"

#include "fake_host.h"
#include "scan_keys.h"

#ifndef MG_TEST_PLUGIN_DIR
#error "MG_TEST_PLUGIN_DIR must name the directory of the built plugins"
#endif

#define TOKEN "JgGsVWL5VJeNTCJ9McRPLmR3PUfRWD77Jqx_qrOP0Xs" /* 43 */
#define PAYLOAD "MG1:" TOKEN
#define NUMBER "20481354" /* Luhn check digit 4 */

/* ---------------------------------------------------------------------- */
/* Typing like a scanner                                                    */

struct stroke {
  uint32_t code;
  int shift;
};

/* This test's own US table: the character a key and shift give. */
static int us_stroke(char c, struct stroke *s) {
  static const char *const rows[] = {"1234567890-=", "qwertyuiop[]",
                                     "asdfghjkl;'`", "\\zxcvbnm,./"};
  static const char *const shifted[] = {"!@#$%^&*()_+", "QWERTYUIOP{}",
                                        "ASDFGHJKL:\"~", "|ZXCVBNM<>?"};
  static const uint32_t first[] = {KEY_1, KEY_Q, KEY_A, KEY_BACKSLASH};
  if (c == ' ') {
    *s = (struct stroke){KEY_SPACE, 0};
    return 0;
  }
  for (int r = 0; r < 4; r++) {
    const char *p;
    /* row 3 starts with backslash (43), then z (44)...; others run on */
    if ((p = strchr(rows[r], c))) {
      *s = (struct stroke){first[r] + (uint32_t)(p - rows[r]), 0};
      return 0;
    }
    if ((p = strchr(shifted[r], c))) {
      *s = (struct stroke){first[r] + (uint32_t)(p - shifted[r]), 1};
      return 0;
    }
  }
  return -1;
}

/* The JIS layout: letters and digits as US; the symbols a slip needs. */
static int jp_stroke(char c, struct stroke *s) {
  switch (c) {
  case ':': *s = (struct stroke){KEY_APOSTROPHE, 0}; return 0;
  case '_': *s = (struct stroke){KEY_RO, 1}; return 0;
  case '-': *s = (struct stroke){KEY_MINUS, 0}; return 0;
  case '@': *s = (struct stroke){KEY_LEFTBRACE, 0}; return 0;
  case '"': *s = (struct stroke){KEY_2, 1}; return 0;
  default:
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9'))
      return us_stroke(c, s);
    return -1;
  }
}

struct typing {
  struct scan_keys k;
  uint64_t t;     /* ms */
  int results[8]; /* non-NONE results, in order */
  int n;
  char line[SCAN_KEYS_LINE_MAX + 1];
};

static void feed(struct typing *ty, uint32_t code, int pressed) {
  char out[SCAN_KEYS_LINE_MAX + 1];
  int rc;
  ty->t += 2; /* scanners type fast */
  rc = scan_keys_feed(&ty->k, code, pressed, ty->t, out);
  if (rc == SCAN_KEYS_NONE)
    return;
  assert_true(ty->n < 8);
  ty->results[ty->n++] = rc;
  if (rc == SCAN_KEYS_LINE)
    memcpy(ty->line, out, sizeof(out));
}

static void tap(struct typing *ty, uint32_t code) {
  feed(ty, code, 1);
  feed(ty, code, 0);
}

static void type_with(struct typing *ty, const char *s,
                      int (*map)(char, struct stroke *)) {
  for (; *s; s++) {
    struct stroke st = {0};
    if (map(*s, &st) != 0)
      fail_msg("the test cannot type '%c'", *s);
    if (st.shift)
      feed(ty, KEY_LEFTSHIFT, 1);
    tap(ty, st.code);
    if (st.shift)
      feed(ty, KEY_LEFTSHIFT, 0);
  }
}

static void typing_init(struct typing *ty, int layout) {
  memset(ty, 0, sizeof(*ty));
  ty->t = 1000;
  scan_keys_init(&ty->k, layout, 1000);
}

/* Type s and Enter; the one result it gave. */
static int scan_line(struct typing *ty, const char *s,
                     int (*map)(char, struct stroke *)) {
  ty->n = 0;
  ty->line[0] = '\0';
  type_with(ty, s, map);
  tap(ty, KEY_ENTER);
  assert_int_equal(ty->n, 1);
  return ty->results[0];
}

/* ---------------------------------------------------------------------- */
/* The decoder                                                              */

static void test_decode_us(void **state) {
  (void)state;
  struct typing ty;
  typing_init(&ty, SCAN_LAYOUT_US);
  assert_int_equal(scan_line(&ty, PAYLOAD, us_stroke), SCAN_KEYS_LINE);
  assert_string_equal(ty.line, PAYLOAD);
  assert_int_equal(scan_line(&ty, "2048-1354", us_stroke), SCAN_KEYS_LINE);
  assert_string_equal(ty.line, "2048-1354");
  /* every printable ASCII character the US table has */
  const char *all = "!\"#$%&'()*+,-./0123456789:;<=>?@"
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
                    "abcdefghijklmnopqrstuvwxyz{|}~ ";
  assert_int_equal(scan_line(&ty, all, us_stroke), SCAN_KEYS_LINE);
  assert_string_equal(ty.line, all);
  /* the right shift key too */
  ty.n = 0;
  feed(&ty, KEY_RIGHTSHIFT, 1);
  tap(&ty, KEY_M);
  tap(&ty, KEY_SEMICOLON);
  feed(&ty, KEY_RIGHTSHIFT, 0);
  tap(&ty, KEY_M);
  tap(&ty, KEY_SEMICOLON);
  tap(&ty, KEY_KPENTER); /* the keypad's Enter ends a line too */
  assert_int_equal(ty.n, 1);
  assert_string_equal(ty.line, "M:m;");
}

static void test_decode_jp(void **state) {
  (void)state;
  struct typing ty;
  typing_init(&ty, SCAN_LAYOUT_JP);
  assert_int_equal(scan_line(&ty, PAYLOAD, jp_stroke), SCAN_KEYS_LINE);
  assert_string_equal(ty.line, PAYLOAD);
  assert_int_equal(scan_line(&ty, "a@b\"-", jp_stroke), SCAN_KEYS_LINE);
  assert_string_equal(ty.line, "a@b\"-");
  /* a JIS scanner read as US gives something else: the layout matters */
  typing_init(&ty, SCAN_LAYOUT_US);
  assert_int_equal(scan_line(&ty, PAYLOAD, jp_stroke), SCAN_KEYS_CONTROL);
  typing_init(&ty, SCAN_LAYOUT_US);
  assert_int_equal(scan_line(&ty, "MG1:", jp_stroke), SCAN_KEYS_LINE);
  assert_string_equal(ty.line, "MG1'");
  /* 半角/全角 types nothing: a control key on JIS */
  typing_init(&ty, SCAN_LAYOUT_JP);
  ty.n = 0;
  tap(&ty, KEY_GRAVE);
  type_with(&ty, "12", jp_stroke);
  tap(&ty, KEY_ENTER);
  assert_int_equal(ty.results[0], SCAN_KEYS_CONTROL);
}

static void test_decode_locks_keypad(void **state) {
  (void)state;
  struct typing ty;
  typing_init(&ty, SCAN_LAYOUT_US);
  /* Caps Lock inverts letters only; shift inverts them back */
  ty.n = 0;
  tap(&ty, KEY_CAPSLOCK);
  type_with(&ty, "ab1-", us_stroke);
  feed(&ty, KEY_LEFTSHIFT, 1);
  tap(&ty, KEY_C);
  tap(&ty, KEY_1);
  feed(&ty, KEY_LEFTSHIFT, 0);
  tap(&ty, KEY_CAPSLOCK);
  tap(&ty, KEY_D);
  tap(&ty, KEY_ENTER);
  assert_int_equal(ty.n, 1);
  assert_string_equal(ty.line, "AB1-c!d");
  /* keypad digits, with Num Lock toggled around them (ignored) */
  ty.n = 0;
  tap(&ty, KEY_NUMLOCK);
  const uint32_t kp[] = {KEY_KP2, KEY_KP0, KEY_KP4, KEY_KP8, KEY_KPMINUS,
                         KEY_KP1, KEY_KP3, KEY_KP5, KEY_KP4};
  for (size_t i = 0; i < sizeof(kp) / sizeof(kp[0]); i++)
    tap(&ty, kp[i]);
  tap(&ty, KEY_NUMLOCK);
  tap(&ty, KEY_KPENTER);
  assert_int_equal(ty.n, 1);
  assert_string_equal(ty.line, "2048-1354");
}

static void test_decode_empty_and_releases(void **state) {
  (void)state;
  struct typing ty;
  typing_init(&ty, SCAN_LAYOUT_US);
  tap(&ty, KEY_ENTER); /* Enter alone: nothing */
  tap(&ty, KEY_ENTER);
  feed(&ty, KEY_A, 0); /* a release without its press */
  feed(&ty, KEY_LEFTSHIFT, 1);
  feed(&ty, KEY_LEFTSHIFT, 0);
  feed(&ty, KEY_LEFTCTRL, 1);
  feed(&ty, KEY_LEFTCTRL, 0);
  assert_int_equal(ty.n, 0);
  /* the modifiers are up again: plain text follows */
  assert_int_equal(scan_line(&ty, "ok", us_stroke), SCAN_KEYS_LINE);
  assert_string_equal(ty.line, "ok");
}

static void test_decode_too_long(void **state) {
  (void)state;
  struct typing ty;
  char s[SCAN_KEYS_LINE_MAX + 2];
  typing_init(&ty, SCAN_LAYOUT_US);
  memset(s, 'a', SCAN_KEYS_LINE_MAX);
  s[SCAN_KEYS_LINE_MAX] = '\0';
  assert_int_equal(scan_line(&ty, s, us_stroke), SCAN_KEYS_LINE); /* 512 */
  assert_int_equal(strlen(ty.line), SCAN_KEYS_LINE_MAX);
  s[SCAN_KEYS_LINE_MAX] = 'b';
  s[SCAN_KEYS_LINE_MAX + 1] = '\0';
  assert_int_equal(scan_line(&ty, s, us_stroke), SCAN_KEYS_TOO_LONG); /* 513 */
  assert_string_equal(ty.line, ""); /* nothing handed out */
  /* far longer: still one result, at Enter */
  char big[3000];
  memset(big, 'z', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  assert_int_equal(scan_line(&ty, big, us_stroke), SCAN_KEYS_TOO_LONG);
  /* the next scan is whole */
  assert_int_equal(scan_line(&ty, NUMBER, us_stroke), SCAN_KEYS_LINE);
  assert_string_equal(ty.line, NUMBER);
}

static void test_decode_control(void **state) {
  (void)state;
  struct typing ty;
  const uint32_t controls[] = {KEY_TAB, KEY_BACKSPACE, KEY_ESC, KEY_F1,
                               KEY_LEFT, KEY_DELETE, KEY_102ND, KEY_YEN};
  typing_init(&ty, SCAN_LAYOUT_US);
  for (size_t i = 0; i < sizeof(controls) / sizeof(controls[0]); i++) {
    ty.n = 0;
    type_with(&ty, "MG1:", us_stroke);
    tap(&ty, controls[i]);
    type_with(&ty, TOKEN, us_stroke);
    tap(&ty, KEY_ENTER);
    assert_int_equal(ty.n, 1);
    if (ty.results[0] != SCAN_KEYS_CONTROL)
      fail_msg("key %u: result %d", controls[i], ty.results[0]);
    assert_string_equal(ty.line, "");
  }
  /* chords: Ctrl+J (a line feed), Alt+1, Super+a */
  const uint32_t mods[] = {KEY_LEFTCTRL, KEY_RIGHTCTRL, KEY_LEFTALT,
                           KEY_RIGHTALT, KEY_LEFTMETA};
  for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++) {
    ty.n = 0;
    type_with(&ty, "12", us_stroke);
    feed(&ty, mods[i], 1);
    tap(&ty, KEY_J);
    feed(&ty, mods[i], 0);
    type_with(&ty, "34", us_stroke);
    tap(&ty, KEY_ENTER);
    assert_int_equal(ty.n, 1);
    assert_int_equal(ty.results[0], SCAN_KEYS_CONTROL);
  }
  /* and the next line is fine */
  assert_int_equal(scan_line(&ty, NUMBER, us_stroke), SCAN_KEYS_LINE);
}

static void test_decode_stale(void **state) {
  (void)state;
  struct typing ty;
  typing_init(&ty, SCAN_LAYOUT_US);
  ty.n = 0;
  type_with(&ty, "MG1:JgGs", us_stroke); /* a scan cut short, no Enter */
  ty.t += 1001;                          /* more than gap (1 s) */
  type_with(&ty, NUMBER, us_stroke);
  tap(&ty, KEY_ENTER);
  assert_int_equal(ty.n, 2);
  assert_int_equal(ty.results[0], SCAN_KEYS_STALE);
  assert_int_equal(ty.results[1], SCAN_KEYS_LINE);
  assert_string_equal(ty.line, NUMBER);
  /* exactly the gap is still one scan */
  ty.n = 0;
  type_with(&ty, "2048", us_stroke);
  ty.t += 996; /* the release +2, the press +2: 1000 ms after the last press */
  type_with(&ty, "1354", us_stroke);
  tap(&ty, KEY_ENTER);
  assert_int_equal(ty.n, 1);
  assert_string_equal(ty.line, NUMBER);
  /* a pause before Enter alone drops the unfinished text */
  ty.n = 0;
  type_with(&ty, "2048", us_stroke);
  ty.t += 5000;
  tap(&ty, KEY_ENTER);
  assert_int_equal(ty.n, 1);
  assert_int_equal(ty.results[0], SCAN_KEYS_STALE);
  /* gap 0: no limit */
  scan_keys_init(&ty.k, SCAN_LAYOUT_US, 0);
  ty.n = 0;
  type_with(&ty, "2048", us_stroke);
  ty.t += 600000;
  type_with(&ty, "1354", us_stroke);
  tap(&ty, KEY_ENTER);
  assert_int_equal(ty.n, 1);
  assert_string_equal(ty.line, NUMBER);
}

/* ---------------------------------------------------------------------- */
/* The parser                                                               */

static void expect_parse(const char *line, int kind, const char *value) {
  char v[SCAN_KEYS_LINE_MAX + 1];
  memset(v, 'x', sizeof(v));
  int got = scan_payload_parse(line, v, sizeof(v));
  if (got != kind || strcmp(v, value) != 0)
    fail_msg("\"%s\": got %d \"%s\", want %d \"%s\"", line, got, v, kind,
             value);
}

static void test_parse(void **state) {
  (void)state;
  expect_parse(PAYLOAD, SCAN_TOKEN, TOKEN);
  expect_parse("MG1:" TOKEN "A", SCAN_OTHER, "");       /* 44 characters */
  expect_parse("MG1:JgGsVWL5VJeNTCJ9McRPLmR3PUfRWD77Jqx_qrOP0X", SCAN_OTHER,
                "");                                    /* 42 */
  expect_parse("MG1:JgGsVWL5VJeNTCJ9McRPLmR3PUfRWD77Jqx+qrOP0Xs", SCAN_OTHER,
                "");                                    /* '+' is base64 */
  expect_parse("mg1:" TOKEN, SCAN_OTHER, "");
  expect_parse(TOKEN, SCAN_OTHER, "");                  /* no prefix */
  expect_parse("MG2:" TOKEN, SCAN_OTHER, "");
  expect_parse(" " PAYLOAD, SCAN_OTHER, "");
  expect_parse(NUMBER, SCAN_NUMBER, NUMBER);
  expect_parse("2048-1354", SCAN_NUMBER, NUMBER);
  expect_parse("20481357", SCAN_OTHER, "");             /* check digit */
  expect_parse("2048-1357", SCAN_OTHER, "");
  expect_parse("2048 1354", SCAN_OTHER, "");
  expect_parse("204-81354", SCAN_OTHER, "");
  expect_parse("2048--1354", SCAN_OTHER, "");
  expect_parse("204813540", SCAN_OTHER, "");
  expect_parse("2048135", SCAN_OTHER, "");
  expect_parse("2048-135a", SCAN_OTHER, "");
  expect_parse("", SCAN_OTHER, "");
  expect_parse("https://example.jp/", SCAN_OTHER, "");
  /* too small a buffer never overflows */
  char small[8] = "zzzzzzz";
  assert_int_equal(scan_payload_parse(NUMBER, small, sizeof(small)),
                   SCAN_OTHER);
  assert_string_equal(small, "");
}

/* The plugin's Luhn check agrees with mgcore's on every kind of number. */
static void test_luhn_agrees(void **state) {
  (void)state;
  char s[9];
  unsigned x = 12345;
  int valid = 0;
  for (int i = 0; i < 20000; i++) {
    for (int j = 0; j < 8; j++) {
      x = x * 1103515245u + 12345u;
      s[j] = (char)('0' + (x >> 16) % 10);
    }
    s[8] = '\0';
    if (i % 2) /* half of them made valid on purpose */
      s[7] = mg_luhn_digit(s, 7);
    valid += scan_luhn_ok(s);
    if (scan_luhn_ok(s) != mg_luhn_ok(s))
      fail_msg("%s: plugin %d, mgcore %d", s, scan_luhn_ok(s), mg_luhn_ok(s));
  }
  assert_true(valid >= 10000 && valid < 12500);
  assert_int_equal(scan_luhn_ok("2048135a"), 0);
}

/* ---------------------------------------------------------------------- */
/* The plugin, through a fake host                                          */

static struct {
  int fd;
  void (*cb)(void *ud, int fd, int revents);
  void *ud;
  int watching;
} wt;

static int t_fd_watch(struct mg_instance *inst, int fd, int events,
                      void (*cb)(void *ud, int fd, int revents), void *ud,
                      struct mg_watch **out) {
  (void)inst;
  assert_int_equal(events, MG_WATCH_READ);
  assert_false(wt.watching);
  wt.fd = fd;
  wt.cb = cb;
  wt.ud = ud;
  wt.watching = 1;
  *out = (struct mg_watch *)&wt;
  return 0;
}

static void t_fd_unwatch(struct mg_watch *w) {
  assert_ptr_equal(w, &wt);
  wt.watching = 0;
}

static struct mg_host host;

struct t {
  struct mg_plugin_lib *lib;
  const struct mg_plugin *p;
  void *ctx;
  int inited, started;
};

static int setup(void **state) {
  struct t *t = calloc(1, sizeof(*t));
  assert_non_null(t);
  fk_reset();
  memset(&wt, 0, sizeof(wt));
  host = fk_host;
  host.fd_watch = t_fd_watch;
  host.fd_unwatch = t_fd_unwatch;
  assert_int_equal(
      mg_plugin_load(MG_TEST_PLUGIN_DIR "/scanner.so", &t->lib, NULL), 0);
  t->p = t->lib->desc;
  assert_int_equal(t->p->kind, MG_PLUGIN_KIND_SCANNER);
  assert_string_equal(mg_plugin_kind_name(t->p->kind), "scanner");
  t->ctx = calloc(1, t->p->ctx_size);
  assert_non_null(t->ctx);
  *state = t;
  return 0;
}

static int teardown(void **state) {
  struct t *t = *state;
  if (t->started)
    t->p->stop(t->ctx);
  if (t->inited)
    t->p->fini(t->ctx);
  assert_false(wt.watching); /* stop unwatched */
  assert_int_equal(fk_armed(), 0);
  mg_config_release(t->p->config, t->ctx);
  free(t->ctx);
  mg_plugin_unload(t->lib);
  free(t);
  fk_reset();
  return 0;
}

/* Config from "key", "value", ... NULL; then init and start. */
static int open_scanner(struct t *t, struct mg_err *err, ...) {
  struct mg_config_kv kv[8];
  size_t n = 0;
  va_list ap;
  int rc;
  va_start(ap, err);
  for (const char *k; (k = va_arg(ap, const char *)) && n < 8; n++) {
    kv[n].key = (char *)k;
    kv[n].value = va_arg(ap, char *);
    kv[n].line = (int)n + 2;
  }
  va_end(ap);
  if ((rc = mg_config_apply(t->p->config, t->ctx, kv, n, "box.conf", 1,
                            "[scanner \"s\"]", err)))
    return rc;
  if ((rc = t->p->init(t->ctx, &host, NULL)) != MG_PLUGIN_OK)
    return rc;
  t->inited = 1;
  t->started = 1; /* stop follows start, failed or not */
  return t->p->start(t->ctx);
}

static const char *last_log(void) {
  return fk.logs > 0 && fk.logs <= FK_MAX ? fk.log[fk.logs - 1] : "";
}

static void test_plugin_config(void **state) {
  struct t *t = *state;
  struct mg_err err = {{0}};
  assert_int_equal(open_scanner(t, &err, "layout", "us", NULL), -EINVAL);
  assert_non_null(strstr(err.msg, "device"));
  mg_config_release(t->p->config, t->ctx);
  memset(t->ctx, 0, t->p->ctx_size);
  assert_int_equal(open_scanner(t, &err, "device", "event3", NULL), -EINVAL);
  assert_non_null(strstr(err.msg, "box.conf:2"));
  assert_non_null(strstr(err.msg, "absolute path"));
  mg_config_release(t->p->config, t->ctx);
  memset(t->ctx, 0, t->p->ctx_size);
  assert_int_equal(open_scanner(t, &err, "device", "/dev/input/event3",
                                "layout", "de", NULL),
                   -EINVAL);
  assert_non_null(strstr(err.msg, "us|jp"));
  mg_config_release(t->p->config, t->ctx);
  memset(t->ctx, 0, t->p->ctx_size);
  assert_int_equal(open_scanner(t, &err, "device", "/dev/input/event3", "gap",
                                "10ms", NULL),
                   -EINVAL);
  assert_non_null(strstr(err.msg, "gap"));
}

static void test_plugin_missing_device(void **state) {
  struct t *t = *state;
  struct mg_err err = {{0}};
  const char *dev = "/dev/input/by-id/usb-Fictional_Scanner-event-kbd";
  assert_int_equal(open_scanner(t, &err, "device", dev, NULL), MG_PLUGIN_FATAL);
  assert_non_null(strstr(last_log(), dev));
  assert_non_null(strstr(last_log(), "No such file or directory"));
  assert_false(wt.watching);
  /* describe says so; commands are refused */
  char buf[512];
  int n = t->p->describe(t->ctx, buf, sizeof(buf));
  assert_true(n > 0);
  assert_non_null(strstr(buf, "\"state\":\"absent\""));
  assert_non_null(strstr(buf, dev));
  assert_int_equal(t->p->command(t->ctx, 1, "scan", NULL), MG_PLUGIN_FATAL);
  assert_non_null(strstr(last_log(), "no commands"));
  assert_int_equal(fk.events, 0);
}

static void test_plugin_not_input(void **state) {
  struct t *t = *state;
  struct mg_err err = {{0}};
  /* a character device that is no input device */
  assert_int_equal(open_scanner(t, &err, "device", "/dev/null", NULL),
                   MG_PLUGIN_FATAL);
  assert_non_null(strstr(last_log(), "/dev/null"));
  assert_false(wt.watching);
  fk_reset();
  /* not a character device at all */
  struct t *t2 = calloc(1, sizeof(*t2));
  assert_non_null(t2);
  t2->p = t->p;
  t2->ctx = calloc(1, t->p->ctx_size);
  assert_int_equal(open_scanner(t2, &err, "device", "/tmp", NULL),
                   MG_PLUGIN_FATAL);
  assert_non_null(strstr(last_log(), "/tmp is not a character device"));
  t2->p->stop(t2->ctx);
  t2->p->fini(t2->ctx);
  mg_config_release(t2->p->config, t2->ctx);
  free(t2->ctx);
  free(t2);
}

/* ---------------------------------------------------------------------- */
/* Through the kernel: a virtual scanner on /dev/uinput, when there is one */

static void ui_emit(int fd, int type, int code, int value) {
  struct input_event ev = {.type = (unsigned short)type,
                           .code = (unsigned short)code, .value = value};
  assert_int_equal(write(fd, &ev, sizeof(ev)), (ssize_t)sizeof(ev));
}

static void ui_key(int fd, uint32_t code, int value) {
  ui_emit(fd, EV_KEY, (int)code, value);
  ui_emit(fd, EV_SYN, SYN_REPORT, 0);
}

/* The /dev/input/eventN of the uinput device called sysname. */
static int ui_node(int fd, char *path, size_t len) {
  char sys[64], dir[160];
  if (ioctl(fd, UI_GET_SYSNAME(sizeof(sys)), sys) < 0)
    return -1;
  snprintf(dir, sizeof(dir), "/sys/devices/virtual/input/%s", sys);
  DIR *d = opendir(dir);
  struct dirent *e;
  int rc = -1;
  if (!d)
    return -1;
  while ((e = readdir(d)))
    if (strncmp(e->d_name, "event", 5) == 0) {
      snprintf(path, len, "/dev/input/%.64s", e->d_name);
      rc = 0;
      break;
    }
  closedir(d);
  return rc;
}

static void test_uinput(void **state) {
  struct t *t = *state;
  struct mg_err err = {{0}};
  struct uinput_setup us = {.id = {.bustype = BUS_USB, .vendor = 0x1234,
                                   .product = 0x5678},
                            .name = "madoguchi test scanner"};
  char node[96];
  int fd = open("/dev/uinput", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    print_message("skipped: no /dev/uinput (%s)\n", strerror(errno));
    skip();
  }
  assert_int_equal(ioctl(fd, UI_SET_EVBIT, EV_KEY), 0);
  for (int k = KEY_ESC; k <= KEY_KPDOT; k++)
    assert_int_equal(ioctl(fd, UI_SET_KEYBIT, k), 0);
  assert_int_equal(ioctl(fd, UI_DEV_SETUP, &us), 0);
  assert_int_equal(ioctl(fd, UI_DEV_CREATE), 0);
  int found = -1;
  for (int i = 0; i < 50 && found != 0; i++) { /* udev makes the node */
    found = ui_node(fd, node, sizeof(node));
    if (found == 0 && access(node, R_OK) != 0)
      found = -1;
    if (found != 0)
      usleep(100000);
  }
  if (found != 0) {
    ioctl(fd, UI_DEV_DESTROY);
    close(fd);
    print_message("skipped: the uinput device got no /dev/input node\n");
    skip();
  }
  usleep(200000); /* let udev tag it */
  if (open_scanner(t, &err, "device", node, NULL) != MG_PLUGIN_OK) {
    ioctl(fd, UI_DEV_DESTROY);
    close(fd);
    print_message("skipped: libinput does not take %s here: %s\n", node,
                  last_log());
    skip();
  }
  assert_true(wt.watching);
  /* grabbed: these keys reach no console */
  const char *s = PAYLOAD;
  for (; *s; s++) {
    struct stroke st = {0};
    assert_int_equal(us_stroke(*s, &st), 0);
    if (st.shift)
      ui_key(fd, KEY_LEFTSHIFT, 1);
    ui_key(fd, st.code, 1);
    ui_key(fd, st.code, 0);
    if (st.shift)
      ui_key(fd, KEY_LEFTSHIFT, 0);
  }
  ui_key(fd, KEY_ENTER, 1);
  ui_key(fd, KEY_ENTER, 0);
  for (int i = 0; i < 40 && fk.events == 0; i++) {
    struct pollfd p = {.fd = wt.fd, .events = POLLIN};
    if (poll(&p, 1, 50) > 0)
      wt.cb(wt.ud, wt.fd, MG_WATCH_READ);
  }
  assert_int_equal(fk.events, 1);
  assert_string_equal(fk.event[0], "slip.scanned {\"token\":\"" TOKEN "\"}");
  assert_true(fk_logs_lack(TOKEN));
  t->p->stop(t->ctx);
  t->started = 0;
  ioctl(fd, UI_DEV_DESTROY);
  close(fd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decode_us),
      cmocka_unit_test(test_decode_jp),
      cmocka_unit_test(test_decode_locks_keypad),
      cmocka_unit_test(test_decode_empty_and_releases),
      cmocka_unit_test(test_decode_too_long),
      cmocka_unit_test(test_decode_control),
      cmocka_unit_test(test_decode_stale),
      cmocka_unit_test(test_parse),
      cmocka_unit_test(test_luhn_agrees),
      cmocka_unit_test_setup_teardown(test_plugin_config, setup, teardown),
      cmocka_unit_test_setup_teardown(test_plugin_missing_device, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_plugin_not_input, setup, teardown),
      cmocka_unit_test_setup_teardown(test_uinput, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
