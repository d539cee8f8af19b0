/*
 * test_libinput_pad — the signature pad (S1): the pure adapter of
 * devices/libinput/pad_adapter.c (compiled in) on synthetic tablet-tool
 * event sequences, the glue of devices/libinput/libinput.c (included
 * below, so that its event and command handlers can be driven without a
 * kernel device) against a fake host (tests/unit/fake_host.h), and the
 * built libinput.so loaded like the daemon loads it: config, a missing
 * device and a device that is no pen tablet (start fails naming the path),
 * commands and describe after that.  The adapter's capture goes through
 * the stroke engine (core/stroke.h) to a signature: sample 「山田」 of
 * tests/fixtures/signature replayed as pen events gives the same signature
 * as the sample fed directly.  With /dev/uinput (not on our machines) a
 * virtual pen tablet draws a stroke through the kernel and libinput;
 * otherwise that test is skipped.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/input-event-codes.h>
#include <linux/uinput.h>
#include <math.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "json.h"
#include "plugin_host.h"
#include "stroke.h"

#include "fake_host.h"

/* The plugin's glue, white-box: its static handlers become callable.  The
 * built libinput.so is a separate copy, loaded with RTLD_LOCAL below. */
#include "../../devices/libinput/libinput.c"

#ifndef MG_TEST_PLUGIN_DIR
#error "MG_TEST_PLUGIN_DIR must name the directory of the built plugins"
#endif

#define SIGDIR MG_TEST_SOURCE_DIR "/tests/fixtures/signature"

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */

static int ev(struct pad *p, int type, double x, double y, double pr,
              uint32_t t) {
  struct pad_event e = {type, x, y, pr, t};
  return pad_feed(p, &e);
}

static char *take(const struct pad *p) {
  struct mgp_sb b = {0};
  pad_take_json(p, &b);
  assert_false(b.oom);
  return b.p;
}

static struct mg_json *parse(const char *s) {
  struct mg_json *doc = NULL;
  struct mg_json_error je;
  if (mg_json_parse(s, strlen(s), NULL, &doc, &je))
    fail_msg("not JSON (%s): %s", je.msg, s);
  return doc;
}

static double num(const struct mg_json *a, size_t i) {
  assert_int_equal(a->type, MG_JSON_ARRAY);
  assert_true(i < a->u.arr.n);
  assert_int_equal(a->u.arr.items[i]->type, MG_JSON_NUMBER);
  return a->u.arr.items[i]->u.num.d;
}

static const struct mg_json *item(const struct mg_json *a, size_t i) {
  assert_int_equal(a->type, MG_JSON_ARRAY);
  assert_true(i < a->u.arr.n);
  return a->u.arr.items[i];
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    fail_msg("cannot open %s", path);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  long n = ftell(f);
  rewind(f);
  char *b = malloc((size_t)n + 1);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
  b[n] = 0;
  fclose(f);
  return b;
}

/* ---------------------------------------------------------------------- */
/* The adapter                                                             */

/* Proximity, tip, moves, lift, away: one stroke with every sample. */
static void test_adapter_stroke(void **state) {
  (void)state;
  struct pad p;
  pad_init(&p, 150, 60);
  assert_int_equal(ev(&p, PAD_PROX_IN, 10, 10, 0, 100), PAD_PROX_CHANGED);
  assert_int_equal(ev(&p, PAD_AXIS, 11, 10, 0, 105), 0); /* hovering */
  assert_int_equal(ev(&p, PAD_TIP_DOWN, 12, 10, 0.2, 110), 0);
  assert_int_equal(pad_strokes(&p), 0); /* not done yet */
  assert_int_equal(ev(&p, PAD_AXIS, 13, 11, 0.5, 115), 0);
  assert_int_equal(ev(&p, PAD_AXIS, 13, 11, 0.5, 118), 0); /* the same */
  assert_int_equal(ev(&p, PAD_AXIS, 13, 11, 0.6, 120), 0); /* pressure */
  assert_int_equal(ev(&p, PAD_AXIS, 15, 12, 0.7, 125), 0);
  char *open = take(&p); /* a stroke being drawn is not given */
  assert_string_equal(open, "{\"width\":150,\"height\":60,\"strokes\":[]}");
  free(open);
  assert_int_equal(ev(&p, PAD_TIP_UP, 16, 12, 0, 130), PAD_STROKE_DONE);
  assert_int_equal(ev(&p, PAD_AXIS, 17, 12, 0, 135), 0); /* hovering */
  assert_int_equal(ev(&p, PAD_PROX_OUT, 17, 12, 0, 140), PAD_PROX_CHANGED);
  assert_int_equal(pad_strokes(&p), 1);
  assert_int_equal(pad_samples(&p), 5);
  char *j = take(&p);
  assert_string_equal(j, "{\"width\":150,\"height\":60,\"strokes\":[["
                         "[12,10,0.2000,110],[13,11,0.5000,115],"
                         "[13,11,0.6000,120],[15,12,0.7000,125],"
                         "[16,12,0.0000,130]]]}");
  free(j);
  /* the live event: normalised to the area */
  struct mgp_sb b = {0};
  pad_stroke_json(&p, 0, PAD_LIVE_POINTS, &b);
  assert_string_equal(b.p, "{\"points\":[[0.0800,0.1667,0.200],"
                           "[0.0867,0.1833,0.500],[0.0867,0.1833,0.600],"
                           "[0.1000,0.2000,0.700],[0.1067,0.2000,0.000]]}");
  free(b.p);
  pad_free(&p);
}

/* Several strokes, a missed tip-up, a tip without proximity, clamping,
 * time going back, a pen without pressure. */
static void test_adapter_edges(void **state) {
  (void)state;
  struct pad p;
  pad_init(&p, 100, 50);
  /* tip down first: proximity implied */
  assert_int_equal(ev(&p, PAD_TIP_DOWN, 1, 1, 0.5, 10), PAD_PROX_CHANGED);
  assert_int_equal(ev(&p, PAD_TIP_DOWN, 2, 2, 0.5, 11), 0); /* again */
  assert_int_equal(ev(&p, PAD_AXIS, 120, -5, 1.7, 12), 0);  /* clamped */
  assert_int_equal(ev(&p, PAD_AXIS, NAN, 60, 0.5, 5), 0);   /* and back */
  /* away with the tip down: the stroke ends there */
  assert_int_equal(ev(&p, PAD_PROX_OUT, 0, 0, 0, 20),
                   PAD_STROKE_DONE | PAD_PROX_CHANGED);
  assert_int_equal(ev(&p, PAD_TIP_UP, 3, 3, 0, 21), 0); /* late: nothing */
  /* a pen without pressure */
  assert_int_equal(ev(&p, PAD_PROX_IN, 0, 0, -1, 30), PAD_PROX_CHANGED);
  assert_int_equal(ev(&p, PAD_TIP_DOWN, 40, 20, -1, 31), 0);
  assert_int_equal(ev(&p, PAD_AXIS, 41, 20, -1, 32), 0);
  assert_int_equal(ev(&p, PAD_TIP_UP, 41, 20, -1, 33), PAD_STROKE_DONE);
  assert_int_equal(pad_strokes(&p), 2);
  char *j = take(&p);
  assert_string_equal(j, "{\"width\":100,\"height\":50,\"strokes\":["
                         "[[1,1,0.5000,10],[100,0,1.0000,12],"
                         "[0,50,0.5000,12]],"
                         "[[40,20,-1,31],[41,20,-1,32]]]}");
  /* what the stroke engine reads */
  struct mg_stroke *s = mg_stroke_new(NULL);
  struct mg_err err = {{0}};
  assert_non_null(s);
  if (mg_stroke_feed_json(s, j, strlen(j), &err))
    fail_msg("the engine refuses the pad's capture: %s", err.msg);
  assert_int_equal(mg_stroke_count(s), 2);
  mg_stroke_free(s);
  free(j);
  /* clear in the middle of a stroke: the rest of it is dropped */
  assert_int_equal(ev(&p, PAD_TIP_DOWN, 5, 5, 0.5, 40), 0);
  assert_int_equal(ev(&p, PAD_AXIS, 6, 5, 0.5, 41), 0);
  pad_clear(&p);
  assert_int_equal(ev(&p, PAD_AXIS, 7, 5, 0.5, 42), 0);
  assert_int_equal(ev(&p, PAD_TIP_UP, 8, 5, 0, 43), 0);
  assert_int_equal(pad_strokes(&p), 0);
  assert_true(p.in_prox); /* the pen is still there */
  j = take(&p);
  assert_string_equal(j, "{\"width\":100,\"height\":50,\"strokes\":[]}");
  free(j);
  pad_free(&p);
}

/* 256 strokes and 20,000 samples at most; the rest counted as dropped.
 * A long stroke's live event has at most PAD_LIVE_POINTS points, the ends
 * kept. */
static void test_adapter_limits(void **state) {
  (void)state;
  struct pad p;
  uint32_t t = 0;
  pad_init(&p, 100, 100);
  for (int k = 0; k < PAD_MAX_STROKES + 3; k++) {
    ev(&p, PAD_TIP_DOWN, k % 100, 10, 0.5, t++);
    ev(&p, PAD_AXIS, k % 100, 20, 0.5, t++);
    int r = ev(&p, PAD_TIP_UP, k % 100, 30, 0.5, t++);
    assert_int_equal(r, k < PAD_MAX_STROKES ? PAD_STROKE_DONE : 0);
  }
  assert_int_equal(pad_strokes(&p), PAD_MAX_STROKES);
  assert_int_equal(p.dropped, 3);
  pad_clear(&p);
  assert_int_equal(p.dropped, 0);

  ev(&p, PAD_TIP_DOWN, 0, 0, 0.5, t++);
  for (int i = 1; i < PAD_MAX_SAMPLES + 10; i++)
    ev(&p, PAD_AXIS, i % 2 ? 100 : 0, (double)i / PAD_MAX_SAMPLES * 100, 0.5,
       t++);
  assert_int_equal(ev(&p, PAD_TIP_UP, 50, 50, 0, t++), PAD_STROKE_DONE);
  assert_int_equal(pad_samples(&p), PAD_MAX_SAMPLES);
  assert_int_equal(p.dropped, 11); /* the moves and the tip-up */
  char *j = take(&p); /* the host takes a result of at most 1 MiB */
  assert_true(strlen(j) < 1024 * 1024);
  free(j);

  struct mgp_sb b = {0};
  pad_stroke_json(&p, 0, PAD_LIVE_POINTS, &b);
  assert_false(b.oom);
  struct mg_json *doc = parse(b.p);
  const struct mg_json *pts = mg_json_get(doc, "points");
  assert_non_null(pts);
  assert_int_equal(pts->u.arr.n, PAD_LIVE_POINTS);
  assert_true(fabs(num(item(pts, 0), 0) - 0) < 1e-9);
  assert_true(fabs(num(item(pts, 0), 1) - 0) < 1e-9);
  assert_true(fabs(num(item(pts, PAD_LIVE_POINTS - 1), 1) -
                   p.smp[PAD_MAX_SAMPLES - 1].y / 100) < 1e-4);
  mg_json_free(doc);
  free(b.p);
  pad_free(&p);
}

/* 「山田」 replayed as pen events: the capture is the sample's, and the
 * stroke engine makes the same signature of it. */
static void test_adapter_to_engine(void **state) {
  (void)state;
  char *raw = slurp(SIGDIR "/yamada.json");
  struct mg_json *doc = parse(raw);
  const struct mg_json *st = mg_json_get(doc, "strokes");
  struct pad p;
  pad_init(&p, 150, 60);
  for (size_t k = 0; k < st->u.arr.n; k++) {
    const struct mg_json *s = item(st, k);
    const struct mg_json *a = item(s, 0);
    uint32_t t0 = (uint32_t)num(a, 3);
    ev(&p, PAD_PROX_IN, num(a, 0), num(a, 1), 0, t0 - 30);
    for (size_t i = 0; i < s->u.arr.n; i++) {
      const struct mg_json *q = item(s, i);
      int r = ev(&p, i ? PAD_AXIS : PAD_TIP_DOWN, num(q, 0), num(q, 1),
                 num(q, 2), (uint32_t)num(q, 3));
      assert_true(r >= 0 && !(r & PAD_STROKE_DONE));
    }
    const struct mg_json *z = item(s, s->u.arr.n - 1);
    /* the tip-up at the last place with no pressure adds nothing the
     * engine keeps (no movement) */
    assert_int_equal(ev(&p, PAD_TIP_UP, num(z, 0), num(z, 1), 0,
                        (uint32_t)num(z, 3)),
                     PAD_STROKE_DONE);
    ev(&p, PAD_PROX_OUT, 0, 0, 0, (uint32_t)num(z, 3) + 20);
  }
  assert_int_equal(pad_strokes(&p), 8);
  char *j = take(&p);
  struct mg_stroke *direct = mg_stroke_new(NULL), *via = mg_stroke_new(NULL);
  struct mg_form_signature g1, g2;
  struct mg_err err = {{0}};
  assert_int_equal(mg_stroke_feed_json(direct, raw, strlen(raw), &err), 0);
  if (mg_stroke_feed_json(via, j, strlen(j), &err))
    fail_msg("the engine refuses the pad's capture: %s", err.msg);
  assert_int_equal(mg_stroke_result(direct, &g1), 0);
  assert_int_equal(mg_stroke_result(via, &g2), 0);
  assert_int_equal(g1.n_strokes, g2.n_strokes);
  assert_int_equal(g1.n_points, g2.n_points);
  for (size_t i = 0; i < g1.n_points; i++)
    if (fabs(g1.points[i].x - g2.points[i].x) > 1e-6 ||
        fabs(g1.points[i].y - g2.points[i].y) > 1e-6 ||
        fabs(g1.points[i].w - g2.points[i].w) > 1e-6)
      fail_msg("point %zu differs", i);
  mg_stroke_free(direct);
  mg_stroke_free(via);
  free(j);
  pad_free(&p);
  mg_json_free(doc);
  free(raw);
}

/* ---------------------------------------------------------------------- */
/* The glue (libinput.c, included): events and commands, fake host       */

static const char *answer(uint64_t req) { return fk_json_for(req); }

static int answer_status(uint64_t req) {
  for (int i = 0; i < fk.completes && i < FK_MAX; i++)
    if (fk.req[i] == req)
      return fk.status[i];
  return 99;
}

static void test_glue(void **state) {
  (void)state;
  struct lp lp;
  memset(&lp, 0, sizeof(lp));
  fk_reset();
  lp.device = (char *)"/dev/input/by-id/usb-Fictional_Pad-event-stylus";
  assert_int_equal(lp_init(&lp, &fk_host, NULL), MG_PLUGIN_OK);
  /* as device_open leaves it for a 152 x 95 mm pad */
  lp.pad.width = 152;
  lp.pad.height = 95;
  lp.dev.present = 1;

  /* take and clear on an empty pad */
  assert_int_equal(lp_command(&lp, 1, "take", NULL), MG_PLUGIN_PENDING);
  assert_int_equal(answer_status(1), MG_PLUGIN_OK);
  assert_string_equal(answer(1),
                      "{\"width\":152,\"height\":95,\"strokes\":[]}");
  assert_int_equal(lp_command(&lp, 2, "clear", NULL), MG_PLUGIN_OK);

  /* a stroke: proximity and the stroke go to the tablets */
  struct pad_event seq[] = {
      {PAD_PROX_IN, 10, 10, 0, 1000},  {PAD_TIP_DOWN, 10, 10, 0.3, 1005},
      {PAD_AXIS, 20, 15, 0.6, 1010},   {PAD_AXIS, 30, 19, 0.6, 1015},
      {PAD_TIP_UP, 31, 19, 0, 1020},   {PAD_PROX_OUT, 31, 19, 0, 1040},
  };
  for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++)
    on_pad_event(&lp, &seq[i]);
  assert_int_equal(fk.events, 3);
  assert_string_equal(fk.event[0], "pad.proximity {\"in\":true}");
  assert_string_equal(fk.event[1],
                      "pad.stroke {\"points\":[[0.0658,0.1053,0.300],"
                      "[0.1316,0.1579,0.600],[0.1974,0.2000,0.600],"
                      "[0.2039,0.2000,0.000]]}");
  assert_string_equal(fk.event[2], "pad.proximity {\"in\":false}");
  assert_int_equal(lp_command(&lp, 3, "take", "{}"), MG_PLUGIN_PENDING);
  assert_string_equal(answer(3), "{\"width\":152,\"height\":95,\"strokes\":"
                                 "[[[10,10,0.3000,1005],[20,15,0.6000,1010],"
                                 "[30,19,0.6000,1015],[31,19,0.0000,1020]]]}");
  /* describe: counts, no positions */
  char buf[512];
  assert_true(lp_describe(&lp, buf, sizeof(buf)) > 0);
  assert_string_equal(buf, "{\"device\":\"/dev/input/by-id/usb-Fictional_Pad-"
                           "event-stylus\",\"state\":\"open\",\"width_mm\":"
                           "152.0,\"height_mm\":95.0,\"in_proximity\":false,"
                           "\"strokes\":1,\"samples\":4,\"dropped\":0,"
                           "\"strokes_seen\":1}");
  /* clear: nothing to take */
  assert_int_equal(lp_command(&lp, 4, "clear", NULL), MG_PLUGIN_OK);
  assert_int_equal(lp_command(&lp, 5, "take", NULL), MG_PLUGIN_PENDING);
  assert_string_equal(answer(5),
                      "{\"width\":152,\"height\":95,\"strokes\":[]}");
  /* unknown command: refused with the reason */
  assert_int_equal(lp_command(&lp, 6, "print", NULL), MG_PLUGIN_PENDING);
  assert_int_equal(answer_status(6), MG_PLUGIN_FATAL);
  assert_non_null(strstr(answer(6), "unknown command \\\"print\\\" (a "
                                    "signature pad knows take and clear)"));
  /* the pad full: logged once, no position in any log */
  for (int k = 0; k <= PAD_MAX_STROKES; k++) {
    struct pad_event d = {PAD_TIP_DOWN, 1 + k % 100, 2, 0.5, 2000 + 2 * k},
                     u = {PAD_TIP_UP, 2 + k % 100, 3, 0, 2001 + 2 * k};
    on_pad_event(&lp, &d);
    on_pad_event(&lp, &u);
  }
  int full = 0;
  for (int i = 0; i < fk.logs && i < FK_MAX; i++)
    full += strstr(fk.log[i], "more are dropped until `clear`") != NULL;
  assert_int_equal(full, 1);
  assert_true(fk_logs_lack("[1"));
  assert_true(fk_logs_lack("points"));
  lp_fini(&lp);
  fk_reset();
}

/* ---------------------------------------------------------------------- */
/* The built plugin, loaded like the daemon does                           */

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
      mg_plugin_load(MG_TEST_PLUGIN_DIR "/libinput.so", &t->lib, NULL), 0);
  t->p = t->lib->desc;
  assert_string_equal(t->p->name, "libinput");
  assert_int_equal(t->p->kind, MG_PLUGIN_KIND_SIGNATURE_PAD);
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
static int open_pad(struct t *t, struct mg_err *err, ...) {
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
                            "[pad \"p\"]", err)))
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
  assert_int_equal(open_pad(t, &err, NULL), -EINVAL);
  assert_non_null(strstr(err.msg, "device"));
  mg_config_release(t->p->config, t->ctx);
  memset(t->ctx, 0, t->p->ctx_size);
  assert_int_equal(open_pad(t, &err, "device", "event5", NULL), -EINVAL);
  assert_non_null(strstr(err.msg, "box.conf:2"));
  assert_non_null(strstr(err.msg, "absolute path"));
  mg_config_release(t->p->config, t->ctx);
  memset(t->ctx, 0, t->p->ctx_size);
  assert_int_equal(open_pad(t, &err, "device", "/dev/input/event5", "width_mm",
                            "150", NULL),
                   -EINVAL);
  assert_non_null(strstr(err.msg, "width_mm"));
}

/* No device: start fails naming the path; take says why, clear is fine. */
static void test_plugin_missing_device(void **state) {
  struct t *t = *state;
  struct mg_err err = {{0}};
  const char *dev = "/dev/input/by-id/usb-Fictional_Pad-event-stylus";
  assert_int_equal(open_pad(t, &err, "device", dev, NULL), MG_PLUGIN_FATAL);
  assert_non_null(strstr(last_log(), dev));
  assert_non_null(strstr(last_log(), "No such file or directory"));
  assert_false(wt.watching);
  char buf[512];
  assert_true(t->p->describe(t->ctx, buf, sizeof(buf)) > 0);
  assert_non_null(strstr(buf, "\"state\":\"absent\""));
  assert_non_null(strstr(buf, "\"strokes\":0"));
  assert_int_equal(t->p->command(t->ctx, 7, "take", NULL), MG_PLUGIN_PENDING);
  assert_int_equal(answer_status(7), MG_PLUGIN_RETRY);
  assert_non_null(strstr(answer(7), dev));
  assert_int_equal(t->p->command(t->ctx, 8, "clear", NULL), MG_PLUGIN_OK);
  assert_int_equal(fk.events, 0);
}

static void test_plugin_not_a_pad(void **state) {
  struct t *t = *state;
  struct mg_err err = {{0}};
  /* a character device that is no input device */
  assert_int_equal(open_pad(t, &err, "device", "/dev/null", NULL),
                   MG_PLUGIN_FATAL);
  assert_non_null(strstr(last_log(), "/dev/null"));
  assert_false(wt.watching);
  fk_reset();
  /* not a character device at all */
  struct t *t2 = calloc(1, sizeof(*t2));
  assert_non_null(t2);
  t2->p = t->p;
  t2->ctx = calloc(1, t->p->ctx_size);
  assert_non_null(t2->ctx);
  assert_int_equal(open_pad(t2, &err, "device", "/tmp", NULL),
                   MG_PLUGIN_FATAL);
  assert_non_null(strstr(last_log(), "/tmp is not a character device"));
  t2->p->stop(t2->ctx);
  t2->p->fini(t2->ctx);
  mg_config_release(t2->p->config, t2->ctx);
  free(t2->ctx);
  free(t2);
}

/* ---------------------------------------------------------------------- */
/* Through the kernel: a virtual pen tablet on /dev/uinput, if any         */

static void ui_emit(int fd, int type, int code, int value) {
  struct input_event e = {.type = (unsigned short)type,
                          .code = (unsigned short)code, .value = value};
  assert_int_equal(write(fd, &e, sizeof(e)), (ssize_t)sizeof(e));
}

static void ui_pen(int fd, int x, int y, int pressure, int touch) {
  ui_emit(fd, EV_ABS, ABS_X, x);
  ui_emit(fd, EV_ABS, ABS_Y, y);
  ui_emit(fd, EV_ABS, ABS_PRESSURE, pressure);
  if (touch >= 0)
    ui_emit(fd, EV_KEY, BTN_TOUCH, touch);
  ui_emit(fd, EV_SYN, SYN_REPORT, 0);
  usleep(5000);
}

/* The /dev/input/eventN of the uinput device. */
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

static void ui_abs(int fd, int code, int max, int res) {
  struct uinput_abs_setup a = {.code = (unsigned short)code,
                               .absinfo = {.maximum = max,
                                           .resolution = res}};
  assert_int_equal(ioctl(fd, UI_ABS_SETUP, &a), 0);
}

static void test_uinput(void **state) {
  struct t *t = *state;
  struct mg_err err = {{0}};
  struct uinput_setup us = {.id = {.bustype = BUS_USB, .vendor = 0x1234,
                                   .product = 0x5679},
                            .name = "madoguchi test pen"};
  char node[96];
  int fd = open("/dev/uinput", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    print_message("skipped: no /dev/uinput (%s)\n", strerror(errno));
    skip();
  }
  /* what libinput needs of a tablet: xy with a resolution, pen, stylus */
  assert_int_equal(ioctl(fd, UI_SET_EVBIT, EV_KEY), 0);
  assert_int_equal(ioctl(fd, UI_SET_EVBIT, EV_ABS), 0);
  assert_int_equal(ioctl(fd, UI_SET_KEYBIT, BTN_TOOL_PEN), 0);
  assert_int_equal(ioctl(fd, UI_SET_KEYBIT, BTN_TOUCH), 0);
  assert_int_equal(ioctl(fd, UI_SET_KEYBIT, BTN_STYLUS), 0);
  assert_int_equal(ioctl(fd, UI_SET_PROPBIT, INPUT_PROP_POINTER), 0);
  ui_abs(fd, ABS_X, 15200, 100); /* 152 x 95 mm at 100 units/mm */
  ui_abs(fd, ABS_Y, 9500, 100);
  ui_abs(fd, ABS_PRESSURE, 2047, 0);
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
  if (open_pad(t, &err, "device", node, NULL) != MG_PLUGIN_OK) {
    ioctl(fd, UI_DEV_DESTROY);
    close(fd);
    print_message("skipped: libinput does not take %s here: %s\n", node,
                  last_log());
    skip();
  }
  assert_true(wt.watching);
  /* near, down, a line to the right, up, away */
  ui_emit(fd, EV_KEY, BTN_TOOL_PEN, 1);
  ui_pen(fd, 1000, 2000, 0, -1);
  ui_pen(fd, 1000, 2000, 800, 1);
  for (int i = 1; i <= 20; i++)
    ui_pen(fd, 1000 + i * 200, 2000 + i * 10, 800 + i * 20, -1);
  ui_pen(fd, 5000, 2200, 0, 0);
  ui_emit(fd, EV_KEY, BTN_TOOL_PEN, 0);
  ui_emit(fd, EV_SYN, SYN_REPORT, 0);
  int strokes = 0;
  for (int i = 0; i < 60 && strokes == 0; i++) {
    struct pollfd pf = {.fd = wt.fd, .events = POLLIN};
    if (poll(&pf, 1, 50) > 0)
      wt.cb(wt.ud, wt.fd, MG_WATCH_READ);
    strokes = 0;
    for (int k = 0; k < fk.events && k < FK_MAX; k++)
      strokes += strncmp(fk.event[k], "pad.stroke ", 11) == 0;
  }
  assert_int_equal(strokes, 1);
  assert_int_equal(t->p->command(t->ctx, 9, "take", NULL), MG_PLUGIN_PENDING);
  struct mg_json *doc = parse(answer(9));
  assert_true(fabs(mg_json_get(doc, "width")->u.num.d - 152) < 0.5);
  assert_true(fabs(mg_json_get(doc, "height")->u.num.d - 95) < 0.5);
  const struct mg_json *st = mg_json_get(doc, "strokes");
  assert_int_equal(st->u.arr.n, 1);
  const struct mg_json *first = item(item(st, 0), 0);
  assert_true(fabs(num(first, 0) - 10) < 0.5); /* 1000 units: 10 mm */
  assert_true(fabs(num(first, 1) - 20) < 0.5);
  assert_true(num(first, 2) > 0.2);
  mg_json_free(doc);
  t->p->stop(t->ctx);
  t->started = 0;
  ioctl(fd, UI_DEV_DESTROY);
  close(fd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_adapter_stroke),
      cmocka_unit_test(test_adapter_edges),
      cmocka_unit_test(test_adapter_limits),
      cmocka_unit_test(test_adapter_to_engine),
      cmocka_unit_test(test_glue),
      cmocka_unit_test_setup_teardown(test_plugin_config, setup, teardown),
      cmocka_unit_test_setup_teardown(test_plugin_missing_device, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_plugin_not_a_pad, setup, teardown),
      cmocka_unit_test_setup_teardown(test_uinput, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
