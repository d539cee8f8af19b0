/*
 * test_stroke.c — the signature stroke engine (core/stroke.h, S1) on the
 * sample captures of tests/fixtures/signature/ (made once by gen.py there:
 * 「山田」 on a pen pad, "Sato" with a finger on the tablet; fictional):
 *
 *  - golden: the vector path of yamada.json against yamada.golden at 1e-6.
 *    After a deliberate change of the engine, regenerate it with
 *      MG_STROKE_GOLDEN=update build/bin/test_stroke
 *    (rewrites the file in the source tree; review its diff);
 *  - properties: points within 0..1, aspect kept, centred, width grows with
 *    pressure, a jump splits a stroke, no movement is dropped, clear,
 *    limits (-E2BIG), empty (-ENODATA), bad options, bad raw JSON named by
 *    place and rule, all-or-nothing feeds;
 *  - the PNG decodes (cairo) with ink inside and nothing outside the ink;
 *  - the signature, through the JSON the API stores, lands in every
 *    `@signature` slot of the demo pack's forms: rendered with
 *    mg_form_render_pdf, rasterised with poppler-glib, ink inside each slot
 *    (blank before), centred, and the page unchanged outside the slots.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairo.h>
#include <cmocka.h>
#include <fontconfig/fontconfig.h>
#include <poppler.h>

#include "buf.h"
#include "form_pdf.h"
#include "json.h"
#include "pack.h"
#include "render_lock.h"
#include "render_test.h"
#include "stroke.h"

#define SIGDIR MG_TEST_SOURCE_DIR "/tests/fixtures/signature"
#define SHUNAN MG_TEST_SOURCE_DIR "/packs/shunan"
#define GOLDEN SIGDIR "/yamada.golden"
#define TOL 1e-6
#define PX_PER_MM 4.0 /* raster of the rendered forms, about 100 dpi */

/* ---- helpers ---- */

static struct mg_stroke *engine(double aspect, double max_jump) {
  struct mg_stroke_opts o;
  mg_stroke_opts_default(&o);
  o.aspect = aspect;
  o.max_jump = max_jump;
  struct mg_stroke *s = mg_stroke_new(&o);
  assert_non_null(s);
  return s;
}

/* Feed a sample file; fails the test on an error. */
static void feed_file(struct mg_stroke *s, const char *name) {
  char path[512];
  size_t len;
  struct mg_err err = {{0}};
  snprintf(path, sizeof(path), "%s/%s", SIGDIR, name);
  char *j = rt_read_file(path, &len);
  int rc = mg_stroke_feed_json(s, j, len, &err);
  if (rc)
    fail_msg("%s: %d %s", name, rc, err.msg);
  free(j);
}

static int feed_str(struct mg_stroke *s, const char *json,
                    struct mg_err *err) {
  return mg_stroke_feed_json(s, json, strlen(json), err);
}

static struct mg_stroke_sample smp(double x, double y, double p,
                                   uint32_t t) {
  struct mg_stroke_sample v = {x, y, p, t};
  return v;
}

/* A straight stroke from (x0,y0) to (x1,y1) in n steps, pressure p. */
static void line(struct mg_stroke *s, double x0, double y0, double x1,
                 double y1, int n, double p, uint32_t *t) {
  struct mg_stroke_sample v = smp(x0, y0, p, (*t)++);
  assert_int_equal(mg_stroke_down(s, &v), 0);
  for (int i = 1; i <= n; i++) {
    v = smp(x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n, p, (*t)++);
    assert_int_equal(mg_stroke_move(s, &v), 0);
  }
  assert_int_equal(mg_stroke_up(s), 0);
}

/* The ink's box in canvas units (x times aspect, y), widths included. */
struct box {
  double x0, y0, x1, y1;
};
static struct box ink_box(const struct mg_form_signature *g) {
  struct box b = {1e9, 1e9, -1e9, -1e9};
  for (size_t i = 0; i < g->n_points; i++) {
    const struct mg_form_point *p = &g->points[i];
    double x = p->x * g->aspect, h = p->w / 2;
    b.x0 = fmin(b.x0, x - h);
    b.x1 = fmax(b.x1, x + h);
    b.y0 = fmin(b.y0, p->y - h);
    b.y1 = fmax(b.y1, p->y + h);
  }
  return b;
}

/* Every point inside the canvas with a width of the options' range; the
 * ends increase to n_points. */
static void check_shape(const struct mg_form_signature *g) {
  struct mg_stroke_opts o;
  mg_stroke_opts_default(&o);
  assert_true(g->n_points > 0 && g->n_strokes > 0);
  assert_int_equal(g->stroke_ends[g->n_strokes - 1], g->n_points);
  for (size_t k = 0; k < g->n_strokes; k++)
    assert_true(g->stroke_ends[k] > (k ? g->stroke_ends[k - 1] : 0));
  for (size_t i = 0; i < g->n_points; i++) {
    const struct mg_form_point *p = &g->points[i];
    if (!(p->x >= 0 && p->x <= 1 && p->y >= 0 && p->y <= 1 &&
          p->w >= o.min_width - 1e-7 && p->w <= o.max_width + 1e-7))
      fail_msg("point %zu: %g %g %g outside the canvas or widths", i, p->x,
               p->y, p->w);
  }
}

/* ---- golden ---- */

static void golden_write(const struct mg_form_signature *g) {
  FILE *f = fopen(GOLDEN, "w");
  assert_non_null(f);
  fprintf(f, "# mg_stroke_result of yamada.json with the default options "
             "(tests/unit/test_stroke.c)\n"
             "# regenerate: MG_STROKE_GOLDEN=update build/bin/test_stroke\n"
             "aspect %.6f strokes %zu points %zu\n",
          g->aspect, g->n_strokes, g->n_points);
  for (size_t k = 0; k < g->n_strokes; k++) {
    size_t a = k ? g->stroke_ends[k - 1] : 0;
    fprintf(f, "stroke %zu\n", g->stroke_ends[k] - a);
    for (size_t i = a; i < g->stroke_ends[k]; i++)
      fprintf(f, "%.8f %.8f %.8f\n", g->points[i].x, g->points[i].y,
              g->points[i].w);
  }
  assert_int_equal(fclose(f), 0);
  print_message("wrote %s\n", GOLDEN);
}

static void golden_compare(const struct mg_form_signature *g) {
  FILE *f = fopen(GOLDEN, "r");
  char line[256];
  double aspect;
  size_t ns, np, n, at = 0;
  if (!f)
    fail_msg("no %s: MG_STROKE_GOLDEN=update makes it", GOLDEN);
  while (fgets(line, sizeof(line), f) && line[0] == '#')
    ;
  assert_int_equal(sscanf(line, "aspect %lf strokes %zu points %zu", &aspect,
                          &ns, &np), 3);
  assert_true(fabs(aspect - g->aspect) < TOL);
  if (ns != g->n_strokes || np != g->n_points)
    fail_msg("golden: %zu strokes %zu points, now %zu and %zu", ns, np,
             g->n_strokes, g->n_points);
  for (size_t k = 0; k < ns; k++) {
    assert_non_null(fgets(line, sizeof(line), f));
    assert_int_equal(sscanf(line, "stroke %zu", &n), 1);
    assert_int_equal(at + n, g->stroke_ends[k]);
    for (size_t i = 0; i < n; i++, at++) {
      double x, y, w;
      assert_non_null(fgets(line, sizeof(line), f));
      assert_int_equal(sscanf(line, "%lf %lf %lf", &x, &y, &w), 3);
      const struct mg_form_point *p = &g->points[at];
      if (fabs(x - p->x) > TOL || fabs(y - p->y) > TOL || fabs(w - p->w) > TOL)
        fail_msg("golden: stroke %zu point %zu is %.8f %.8f %.8f, was %.8f "
                 "%.8f %.8f", k, i, p->x, p->y, p->w, x, y, w);
    }
  }
  fclose(f);
}

/* The vector path of a sample is stable: golden file, and the same twice. */
static void test_golden(void **state) {
  (void)state;
  struct mg_stroke *s = engine(3, 0), *s2 = engine(3, 0);
  struct mg_form_signature g, g2;
  feed_file(s, "yamada.json");
  assert_int_equal(mg_stroke_count(s), 8);
  assert_int_equal(mg_stroke_result(s, &g), 0);
  check_shape(&g);
  assert_int_equal(g.n_strokes, 8);
  /* resampled at 0.004 of the height, not the 490 raw samples */
  assert_true(g.n_points > 1000 && g.n_points < MG_STROKE_MAX_POINTS);
  const char *env = getenv("MG_STROKE_GOLDEN");
  if (env && strcmp(env, "update") == 0)
    golden_write(&g);
  golden_compare(&g);
  /* deterministic: another engine, and the same engine asked again */
  feed_file(s2, "yamada.json");
  assert_int_equal(mg_stroke_result(s2, &g2), 0);
  assert_int_equal(g2.n_points, g.n_points);
  assert_memory_equal(g2.points, g.points, g.n_points * sizeof(*g.points));
  assert_memory_equal(g2.stroke_ends, g.stroke_ends,
                      g.n_strokes * sizeof(*g.stroke_ends));
  assert_int_equal(mg_stroke_result(s2, &g2), 0);
  assert_memory_equal(g2.points, g.points, g.n_points * sizeof(*g.points));
  mg_stroke_free(s);
  mg_stroke_free(s2);
}

/* ---- properties ---- */

/* Points within 0..1 and the ink fitted (touching two sides), centred, for
 * both samples and several box shapes. */
static void test_fit_centred(void **state) {
  (void)state;
  const char *files[] = {"yamada.json", "sato.json"};
  const double aspects[] = {0.5, 1, 3, 10};
  for (size_t f = 0; f < 2; f++) {
    for (size_t a = 0; a < 4; a++) {
      struct mg_stroke *s = engine(aspects[a], 0);
      struct mg_form_signature g;
      feed_file(s, files[f]);
      assert_int_equal(mg_stroke_result(s, &g), 0);
      check_shape(&g);
      assert_true(g.aspect == aspects[a]);
      struct box b = ink_box(&g);
      /* inside, touching the sides of one direction */
      assert_true(b.x0 >= -1e-5 && b.x1 <= g.aspect + 1e-5);
      assert_true(b.y0 >= -1e-5 && b.y1 <= 1 + 1e-5);
      if (fabs(b.x1 - b.x0 - g.aspect) > 1e-5 && fabs(b.y1 - b.y0 - 1) > 1e-5)
        fail_msg("%s aspect %g: ink %g x %g does not fill the box", files[f],
                 g.aspect, b.x1 - b.x0, b.y1 - b.y0);
      /* centred */
      assert_true(fabs((b.x0 + b.x1) / 2 - g.aspect / 2) < 1e-5);
      assert_true(fabs((b.y0 + b.y1) / 2 - 0.5) < 1e-5);
      mg_stroke_free(s);
    }
  }
}

/* The ink keeps its shape: an L of 300 x 50 units stays 6 : 1, wide or
 * tall, and each of its strokes stays straight. */
static void test_aspect(void **state) {
  (void)state;
  const double aspects[] = {3, 10, 0.5};
  for (size_t a = 0; a < 3; a++) {
    struct mg_stroke *s = engine(aspects[a], 0);
    struct mg_form_signature g;
    uint32_t t = 0;
    line(s, 100, 400, 400, 400, 30, 0.5, &t); /* horizontal, 300 */
    line(s, 100, 350, 100, 400, 5, 0.5, &t);  /* vertical, 50 */
    assert_int_equal(mg_stroke_result(s, &g), 0);
    check_shape(&g);
    double x0 = 1e9, x1 = -1e9, y0 = 1e9, y1 = -1e9;
    for (size_t i = 0; i < g.n_points; i++) {
      x0 = fmin(x0, g.points[i].x * g.aspect);
      x1 = fmax(x1, g.points[i].x * g.aspect);
      y0 = fmin(y0, g.points[i].y);
      y1 = fmax(y1, g.points[i].y);
    }
    if (fabs((x1 - x0) / (y1 - y0) - 6) > 1e-4)
      fail_msg("aspect %g: the L is %g x %g", aspects[a], x1 - x0, y1 - y0);
    /* the horizontal stroke is at the bottom, straight */
    for (size_t i = 0; i < g.stroke_ends[0]; i++)
      assert_true(fabs(g.points[i].y - y1) < 1e-6);
    /* even step: 0.004 of the height between neighbours (the last may be
     * up to one and a half) */
    for (size_t i = 1; i + 1 < g.stroke_ends[0]; i++) {
      double d = (g.points[i].x - g.points[i - 1].x) * g.aspect;
      assert_true(fabs(d - 0.004) < 1e-5);
    }
    mg_stroke_free(s);
  }
}

/* Width grows with pressure; no pressure is 0.5; the ends are the
 * options' min and max widths. */
static void test_pressure(void **state) {
  (void)state;
  const double ps[] = {0, 0.1, 0.3, 0.5, 0.7, 0.9, 1, -1};
  double mean[8];
  struct mg_stroke_opts o;
  mg_stroke_opts_default(&o);
  for (size_t k = 0; k < 8; k++) {
    struct mg_stroke *s = engine(3, 0);
    struct mg_form_signature g;
    uint32_t t = 0;
    line(s, 0, 0, 300, 100, 40, ps[k], &t);
    assert_int_equal(mg_stroke_result(s, &g), 0);
    double sum = 0;
    for (size_t i = 0; i < g.n_points; i++)
      sum += g.points[i].w;
    mean[k] = sum / (double)g.n_points;
    for (size_t i = 0; i < g.n_points; i++) /* even pressure: even width */
      assert_true(fabs(g.points[i].w - mean[k]) < 1e-6);
    mg_stroke_free(s);
  }
  assert_true(fabs(mean[0] - o.min_width) < 1e-6);
  assert_true(fabs(mean[6] - o.max_width) < 1e-6);
  for (size_t k = 1; k < 7; k++)
    if (!(mean[k] > mean[k - 1]))
      fail_msg("pressure %g: width %g, not above %g at %g", ps[k], mean[k],
               mean[k - 1], ps[k - 1]);
  assert_true(fabs(mean[7] - mean[3]) < 1e-7); /* none = 0.5 */
  /* a light touch still shows (the gamma): pressure 0.1 gets more than
   * twice as far as a linear scale would take it */
  assert_true(mean[1] - o.min_width > 2 * 0.1 * (o.max_width - o.min_width));

  /* within one stroke: the heavy half is wider, the change is smoothed */
  struct mg_stroke *s = engine(3, 0);
  struct mg_form_signature g;
  struct mg_stroke_sample v = smp(0, 0, 0.2, 0);
  assert_int_equal(mg_stroke_down(s, &v), 0);
  for (int i = 1; i <= 40; i++) {
    v = smp(i * 10, 0, i <= 20 ? 0.2 : 0.9, (uint32_t)i);
    assert_int_equal(mg_stroke_move(s, &v), 0);
  }
  mg_stroke_up(s);
  assert_int_equal(mg_stroke_result(s, &g), 0);
  assert_true(g.points[g.n_points - 1].w > g.points[0].w + 0.01);
  for (size_t i = 1; i < g.n_points; i++) /* no step: averaged */
    assert_true(g.points[i].w - g.points[i - 1].w < 0.01);
  mg_stroke_free(s);
}

/* A sample further than max_jump starts a stroke; no movement is dropped;
 * a dot is one point; a missed pen-up ends the stroke. */
static void test_strokes(void **state) {
  (void)state;
  struct mg_stroke *s = engine(3, 20), *nolimit = engine(3, 0);
  struct mg_form_signature g;
  struct mg_stroke *both[] = {s, nolimit};
  for (int e = 0; e < 2; e++) {
    struct mg_stroke_sample v = smp(0, 0, 0.5, 0);
    assert_int_equal(mg_stroke_down(both[e], &v), 0);
    for (int i = 1; i <= 10; i++) {
      v = smp(i * 5, 0, 0.5, (uint32_t)i);
      assert_int_equal(mg_stroke_move(both[e], &v), 0);
    }
    v = smp(150, 30, 0.5, 11); /* 100 away: the pen left and came back */
    assert_int_equal(mg_stroke_move(both[e], &v), 0);
    v = smp(160, 30, 0.5, 12);
    assert_int_equal(mg_stroke_move(both[e], &v), 0);
    mg_stroke_up(both[e]);
  }
  assert_int_equal(mg_stroke_count(s), 2);
  assert_int_equal(mg_stroke_count(nolimit), 1);
  assert_int_equal(mg_stroke_result(s, &g), 0);
  assert_int_equal(g.n_strokes, 2);
  assert_int_equal(mg_stroke_result(nolimit, &g), 0);
  assert_int_equal(g.n_strokes, 1);
  mg_stroke_free(s);
  mg_stroke_free(nolimit);

  /* samples that do not move are dropped: same result as without them */
  struct mg_stroke *a = engine(3, 0), *b = engine(3, 0);
  struct mg_form_signature ga, gb;
  uint32_t t = 0;
  line(a, 0, 0, 100, 50, 10, 0.5, &t);
  struct mg_stroke_sample v = smp(0, 0, 0.5, 0);
  assert_int_equal(mg_stroke_down(b, &v), 0);
  for (int i = 1; i <= 10; i++) {
    v = smp(i * 10, i * 5, 0.5, (uint32_t)(2 * i));
    assert_int_equal(mg_stroke_move(b, &v), 0);
    v.t_ms++;
    assert_int_equal(mg_stroke_move(b, &v), 0); /* again, not moved */
  }
  mg_stroke_up(b);
  assert_int_equal(mg_stroke_result(a, &ga), 0);
  assert_int_equal(mg_stroke_result(b, &gb), 0);
  assert_int_equal(ga.n_points, gb.n_points);
  assert_memory_equal(ga.points, gb.points, ga.n_points * sizeof(*ga.points));

  /* a dot: one point, in the middle */
  mg_stroke_clear(a);
  v = smp(40, 40, 0.5, 0);
  assert_int_equal(mg_stroke_down(a, &v), 0);
  assert_int_equal(mg_stroke_move(a, &v), 0);
  mg_stroke_up(a);
  assert_int_equal(mg_stroke_result(a, &ga), 0);
  assert_int_equal(ga.n_points, 1);
  assert_int_equal(ga.n_strokes, 1);
  assert_true(fabs(ga.points[0].x - 0.5) < 1e-6 &&
              fabs(ga.points[0].y - 0.5) < 1e-6);

  /* down while down: the stroke before ends */
  mg_stroke_clear(a);
  v = smp(0, 0, 0.5, 0);
  assert_int_equal(mg_stroke_down(a, &v), 0);
  v = smp(10, 0, 0.5, 1);
  assert_int_equal(mg_stroke_move(a, &v), 0);
  v = smp(10, 10, 0.5, 2);
  assert_int_equal(mg_stroke_down(a, &v), 0);
  assert_int_equal(mg_stroke_count(a), 2);

  /* misuse */
  mg_stroke_up(a);
  assert_int_equal(mg_stroke_up(a), 0);
  v = smp(20, 10, 0.5, 3);
  assert_int_equal(mg_stroke_move(a, &v), -EINVAL); /* pen up */
  v = smp(20, 10, 0.5, 1);
  assert_int_equal(mg_stroke_down(a, &v), -EINVAL); /* back in time */
  v = smp(NAN, 10, 0.5, 9);
  assert_int_equal(mg_stroke_down(a, &v), -EINVAL);
  v = smp(10, 10, 1.5, 9);
  assert_int_equal(mg_stroke_down(a, &v), -EINVAL);
  assert_int_equal(mg_stroke_count(a), 2);
  mg_stroke_free(a);
  mg_stroke_free(b);
}

/* Clear drops everything: nothing to give, then the same as a new one. */
static void test_clear(void **state) {
  (void)state;
  struct mg_stroke *s = engine(3, 0), *fresh = engine(3, 0);
  struct mg_form_signature g, gf;
  feed_file(s, "yamada.json");
  assert_int_equal(mg_stroke_result(s, &g), 0);
  mg_stroke_clear(s);
  assert_int_equal(mg_stroke_count(s), 0);
  assert_int_equal(mg_stroke_result(s, &g), -ENODATA);
  feed_file(s, "sato.json");
  feed_file(fresh, "sato.json");
  assert_int_equal(mg_stroke_result(s, &g), 0);
  assert_int_equal(mg_stroke_result(fresh, &gf), 0);
  assert_int_equal(g.n_points, gf.n_points);
  assert_memory_equal(g.points, gf.points, g.n_points * sizeof(*g.points));
  mg_stroke_free(s);
  mg_stroke_free(fresh);
}

/* Nothing drawn: -ENODATA, also after an empty capture. */
static void test_empty(void **state) {
  (void)state;
  struct mg_stroke *s = engine(3, 0);
  struct mg_form_signature g;
  struct mg_err err = {{0}};
  assert_int_equal(mg_stroke_result(s, &g), -ENODATA);
  assert_int_equal(g.n_points, 0);
  assert_int_equal(
      feed_str(s, "{\"width\": 100, \"height\": 50, \"strokes\": []}", &err),
      0);
  assert_int_equal(mg_stroke_count(s), 0);
  assert_int_equal(mg_stroke_result(s, &g), -ENODATA);
  mg_stroke_free(s);
  mg_stroke_free(NULL);
}

/* The API's limits: 256 strokes, 20,000 points; raw samples; options. */
static void test_limits(void **state) {
  (void)state;
  struct mg_stroke *s = engine(3, 0);
  struct mg_form_signature g;
  struct mg_stroke_sample v;
  struct mg_err err = {{0}};
  for (int i = 0; i < MG_STROKE_MAX_STROKES; i++) {
    v = smp(i % 16 * 10, i / 16 * 10, 0.5, (uint32_t)(2 * i));
    assert_int_equal(mg_stroke_down(s, &v), 0);
    v.x += 5;
    v.t_ms++;
    assert_int_equal(mg_stroke_move(s, &v), 0);
    mg_stroke_up(s);
  }
  v = smp(0, 0, 0.5, 9999);
  assert_int_equal(mg_stroke_down(s, &v), -E2BIG);
  assert_int_equal(mg_stroke_count(s), MG_STROKE_MAX_STROKES);
  assert_int_equal(mg_stroke_result(s, &g), 0);
  assert_int_equal(g.n_strokes, MG_STROKE_MAX_STROKES);
  /* a jump past the limit */
  mg_stroke_clear(s);
  mg_stroke_free(s);
  s = engine(3, 1);
  v = smp(0, 0, 0.5, 0);
  assert_int_equal(mg_stroke_down(s, &v), 0);
  int rc = 0;
  for (int i = 1; i <= MG_STROKE_MAX_STROKES && !rc; i++) {
    v = smp(i * 10, 0, 0.5, (uint32_t)i);
    rc = mg_stroke_move(s, &v);
  }
  assert_int_equal(rc, -E2BIG);
  assert_int_equal(mg_stroke_count(s), MG_STROKE_MAX_STROKES);

  /* raw samples */
  mg_stroke_clear(s);
  mg_stroke_free(s);
  s = engine(3, 0);
  v = smp(0, 0, 0.5, 0);
  assert_int_equal(mg_stroke_down(s, &v), 0);
  for (int i = 1; i < MG_STROKE_MAX_SAMPLES; i++) {
    v = smp(i % 2 ? 1 : 0, i / 2, 0.5, (uint32_t)i); /* a narrow zigzag */
    assert_int_equal(mg_stroke_move(s, &v), 0);
  }
  v = smp(5, 5, 0.5, MG_STROKE_MAX_SAMPLES);
  assert_int_equal(mg_stroke_move(s, &v), -E2BIG);
  assert_int_equal(mg_stroke_count(s), 1);
  mg_stroke_clear(s);

  /* 20,000 output points: a zigzag across the box; 39 heights long is
   * 9,750 points of 0.004, 90 heights 22,500 */
  for (int len = 39; len <= 90; len += 51) {
    uint32_t t = 0;
    v = smp(0, 0, 0.5, t++);
    assert_int_equal(mg_stroke_down(s, &v), 0);
    for (int i = 1; i <= len; i++) {
      v = smp(i * 1e-3, i % 2 ? 100 : 0, 0.5, t++);
      assert_int_equal(mg_stroke_move(s, &v), 0);
    }
    mg_stroke_up(s);
    rc = mg_stroke_result(s, &g);
    if (len == 39) {
      assert_int_equal(rc, 0);
      assert_true(g.n_points > 9000 && g.n_points < 10500);
    } else {
      assert_int_equal(rc, -E2BIG);
    }
    mg_stroke_clear(s);
  }

  /* JSON: more than 256 strokes */
  struct mg_buf b;
  mg_buf_init(&b);
  mg_buf_puts(&b, "{\"width\": 10, \"height\": 10, \"strokes\": [");
  for (int i = 0; i <= MG_STROKE_MAX_STROKES; i++)
    mg_buf_printf(&b, "%s[[1, 1, 0.5, %d]]", i ? "," : "", i);
  mg_buf_puts(&b, "]}");
  assert_false(b.oom);
  assert_int_equal(mg_stroke_feed_json(s, b.data, b.len, &err), -E2BIG);
  assert_non_null(strstr(err.msg, "strokes: 257 strokes, at most 256"));
  assert_int_equal(mg_stroke_count(s), 0);
  mg_buf_free(&b);
  mg_stroke_free(s);

  /* options */
  struct mg_stroke_opts o;
  const struct {
    double aspect, min_w, max_w, step;
  } bad[] = {{0.05, 0.01, 0.045, 0.004}, {25, 0.01, 0.045, 0.004},
             {3, 0.05, 0.01, 0.004},     {3, 0.01, 0.3, 0.004},
             {0.2, 0.01, 0.15, 0.004},   {3, 0.01, 0.045, 0},
             {3, -0.01, 0.045, 0.004},   {NAN, 0.01, 0.045, 0.004}};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    mg_stroke_opts_default(&o);
    o.aspect = bad[i].aspect;
    o.min_width = bad[i].min_w;
    o.max_width = bad[i].max_w;
    o.step = bad[i].step;
    errno = 0;
    if ((s = mg_stroke_new(&o))) {
      mg_stroke_free(s);
      fail_msg("bad options %zu accepted", i);
    }
    assert_int_equal(errno, EINVAL);
  }
  s = mg_stroke_new(NULL); /* the defaults */
  assert_non_null(s);
  mg_stroke_free(s);
}

/* Raw captures that break a rule: refused, the place and the rule named,
 * nothing kept. */
static void test_bad_json(void **state) {
  (void)state;
  static const struct {
    const char *json;
    int rc;
    const char *msg;
  } cases[] = {
      {"nope", -EINVAL, "signature capture: line 1, column 1"},
      {"[1, 2]", -EINVAL, "a JSON object {\"width\", \"height\", \"strokes\"}"},
      {"{\"width\": 10, \"height\": 10, \"strokes\": [], \"colour\": 1}",
       -EINVAL, "unknown key \"colour\" (known: width, height, strokes)"},
      {"{\"height\": 10, \"strokes\": []}", -EINVAL, "width: missing"},
      {"{\"width\": 0, \"height\": 10, \"strokes\": []}", -EINVAL,
       "width: must be a number above 0"},
      {"{\"width\": 10, \"height\": \"10\", \"strokes\": []}", -EINVAL,
       "height: must be a number above 0"},
      {"{\"width\": 10, \"height\": 10}", -EINVAL,
       "strokes: must be an array of strokes"},
      {"{\"width\": 10, \"height\": 10, \"strokes\": [[]]}", -EINVAL,
       "strokes[0]: must be an array of one or more points"},
      {"{\"width\": 10, \"height\": 10, \"strokes\": [[[1, 2, 0.5]]]}",
       -EINVAL, "strokes[0][0]: must be a point [x, y, pressure, t_ms]"},
      {"{\"width\": 10, \"height\": 10, \"strokes\": [[[1, 2, 0.5, 0]], "
       "[[1, 2, 0.5, 1], [2, 2, 0.5, 2], [3, 3, 1.5, 3]]]}",
       -EINVAL, "strokes[1][2]: pressure must be from 0 to 1 (or -1: none)"},
      {"{\"width\": 10, \"height\": 10, \"strokes\": [[[1, 2, -0.5, 0]]]}",
       -EINVAL, "strokes[0][0]: pressure must be from 0 to 1"},
      {"{\"width\": 10, \"height\": 10, \"strokes\": [[[11, 2, 0.5, 0]]]}",
       -EINVAL, "strokes[0][0]: x must be from 0 to width (10)"},
      {"{\"width\": 10, \"height\": 5, \"strokes\": [[[1, -2, 0.5, 0]]]}",
       -EINVAL, "strokes[0][0]: y must be from 0 to height (5)"},
      {"{\"width\": 10, \"height\": 10, \"strokes\": [[[1, \"2\", 0.5, 0]]]}",
       -EINVAL, "strokes[0][0]: y must be a number"},
      {"{\"width\": 10, \"height\": 10, \"strokes\": [[[1, 2, 0.5, -1]]]}",
       -EINVAL, "strokes[0][0]: t_ms must be from 0 to 4294967295"},
      {"{\"width\": 10, \"height\": 10, \"strokes\": [[[1, 2, 0.5, 10], "
       "[2, 2, 0.5, 5]]]}",
       -EINVAL, "strokes[0][1]: t_ms 5 goes back in time (after 10)"},
      {"{\"width\": 10, \"height\": 10, \"strokes\": [[1, 2, 0.5, 0]]}",
       -EINVAL, "strokes[0][0]: must be a point"},
  };
  struct mg_stroke *s = engine(3, 0);
  struct mg_form_signature g;
  struct mg_err err;
  /* something drawn before (at t 0, so that the cases' times are not
   * before it): kept as it was by every refused feed */
  for (int k = 0; k < 2; k++) {
    struct mg_stroke_sample w = smp(k, 5, 0.6, 0);
    assert_int_equal(mg_stroke_down(s, &w), 0);
    for (int i = 1; i <= 8; i++) {
      w = smp(k + i, 5 - (k ? i / 2.0 : i / 4.0), 0.6, 0);
      assert_int_equal(mg_stroke_move(s, &w), 0);
    }
    mg_stroke_up(s);
  }
  uint32_t t;
  assert_int_equal(mg_stroke_result(s, &g), 0);
  size_t n0 = g.n_points, c0 = mg_stroke_count(s);
  struct mg_form_point *p0 = malloc(n0 * sizeof(*p0));
  assert_non_null(p0);
  memcpy(p0, g.points, n0 * sizeof(*p0));
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    memset(&err, 0, sizeof(err));
    int rc = feed_str(s, cases[i].json, &err);
    if (rc != cases[i].rc || !strstr(err.msg, cases[i].msg))
      fail_msg("case %zu: %d \"%s\", want %d \"%s\"", i, rc, err.msg,
               cases[i].rc, cases[i].msg);
    assert_int_equal(mg_stroke_count(s), c0);
  }
  assert_int_equal(mg_stroke_result(s, &g), 0);
  assert_int_equal(g.n_points, n0);
  assert_memory_equal(g.points, p0, n0 * sizeof(*p0));
  /* a time before what was drawn already */
  t = 1000;
  line(s, 5, 5, 9, 9, 4, 0.5, &t);
  assert_int_equal(feed_str(s, "{\"width\": 10, \"height\": 10, \"strokes\": "
                               "[[[1, 1, 0.5, 1]]]}", &err), -EINVAL);
  assert_non_null(strstr(err.msg, "strokes[0][0]: t_ms 1 goes back in time "
                                  "(after 1004)"));
  assert_int_equal(mg_stroke_count(s), c0 + 1);
  /* while a stroke is open, a refused feed leaves it open and whole */
  struct mg_stroke_sample v = smp(1, 1, 0.5, 100000);
  assert_int_equal(mg_stroke_down(s, &v), 0);
  assert_int_equal(feed_str(s, "{\"width\": 10, \"height\": 10, \"strokes\": "
                               "[[[1, 1, 0.5, 100001], [2, 1, 2, 100002]]]}",
                            &err), -EINVAL);
  v = smp(2, 2, 0.5, 100001);
  assert_int_equal(mg_stroke_move(s, &v), 0);
  assert_int_equal(mg_stroke_count(s), c0 + 2);
  free(p0);
  mg_stroke_free(s);
}

/* ---- PNG ---- */

static void test_png(void **state) {
  (void)state;
  struct mg_stroke *s = engine(3, 0);
  struct mg_form_signature g;
  unsigned char *png = NULL, *png2 = NULL;
  size_t len = 0, len2 = 0;
  feed_file(s, "yamada.json");
  assert_int_equal(mg_stroke_result(s, &g), 0);
  assert_int_equal(mg_stroke_png(&g, 200, &png, &len), 0);
  assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
  assert_int_equal(mg_stroke_png(&g, 200, &png2, &len2), 0);
  assert_int_equal(len, len2); /* deterministic */
  assert_memory_equal(png, png2, len);
  free(png2);

  cairo_surface_t *img = rt_png_decode(png, len);
  assert_int_equal(cairo_image_surface_get_width(img), 600);
  assert_int_equal(cairo_image_surface_get_height(img), 200);
  assert_int_equal(cairo_image_surface_get_format(img), CAIRO_FORMAT_ARGB32);
  const unsigned char *d = cairo_image_surface_get_data(img);
  int stride = cairo_image_surface_get_stride(img);
  /* the ink's box in pixels, from the points, a pixel of antialiasing */
  struct box b = ink_box(&g);
  double k = 200;
  long ink = 0, outside = 0, coloured = 0;
  for (int y = 0; y < 200; y++) {
    for (int x = 0; x < 600; x++) {
      uint32_t px = *(const uint32_t *)(d + y * stride + x * 4);
      unsigned a = px >> 24;
      if (px & 0xFFFFFF) /* black ink, premultiplied: no colour at all */
        coloured++;
      if (!a)
        continue;
      if (a > 128)
        ink++;
      if (x < b.x0 * k - 1 || x > b.x1 * k + 1 || y < b.y0 * k - 1 ||
          y > b.y1 * k + 1)
        outside++;
    }
  }
  if (ink < 3000 || outside || coloured)
    fail_msg("PNG: %ld inked pixels, %ld outside the ink's box, %ld not "
             "black", ink, outside, coloured);
  /* transparent corners: the background */
  assert_int_equal(*(const uint32_t *)d, 0);
  assert_int_equal(*(const uint32_t *)(d + 199 * stride + 599 * 4), 0);
  mg__render_lock();
  cairo_surface_destroy(img);
  mg__render_unlock();
  free(png);

  /* refused */
  struct mg_form_signature none = {NULL, 0, NULL, 0, 3};
  assert_int_equal(mg_stroke_png(&none, 200, &png, &len), -ENODATA);
  assert_null(png);
  assert_int_equal(mg_stroke_png(&g, 2, &png, &len), -EINVAL);
  assert_int_equal(mg_stroke_png(&g, 100000, &png, &len), -EINVAL);
  struct mg_form_point off[] = {{0.5f, 1.5f, 0.01f}};
  size_t one[] = {1}, two[] = {2};
  struct mg_form_signature bad[] = {{off, 1, one, 1, 3},
                                    {g.points, 1, two, 1, 3},
                                    {g.points, 1, one, 1, 0}};
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(mg_stroke_png(&bad[i], 100, &png, &len), -EINVAL);
    assert_null(png);
  }
  mg_stroke_free(s);
}

/* ---- in the forms ---- */

/* A rendered page as 8-bit grey, PX_PER_MM pixels per mm. */
struct gray {
  int w, h;
  unsigned char *v;
};

static void raster(PopplerDocument *doc, int page, struct gray *out) {
  mg__render_lock(); /* poppler and cairo: render_lock.h */
  PopplerPage *pg = poppler_document_get_page(doc, page);
  assert_non_null(pg);
  double pw, ph;
  poppler_page_get_size(pg, &pw, &ph);
  double k = PX_PER_MM * 25.4 / 72;
  out->w = (int)ceil(pw * k);
  out->h = (int)ceil(ph * k);
  cairo_surface_t *surf =
      cairo_image_surface_create(CAIRO_FORMAT_RGB24, out->w, out->h);
  cairo_t *cr = cairo_create(surf);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_scale(cr, k, k);
  poppler_page_render(pg, cr);
  cairo_destroy(cr);
  cairo_surface_flush(surf);
  out->v = malloc((size_t)out->w * (size_t)out->h);
  assert_non_null(out->v);
  const unsigned char *d = cairo_image_surface_get_data(surf);
  int stride = cairo_image_surface_get_stride(surf);
  for (int y = 0; y < out->h; y++)
    for (int x = 0; x < out->w; x++) {
      uint32_t px = *(const uint32_t *)(d + y * stride + x * 4);
      out->v[y * out->w + x] =
          (unsigned char)((((px >> 16) & 255) * 3 + ((px >> 8) & 255) * 6 +
                           (px & 255)) / 10);
    }
  cairo_surface_destroy(surf);
  g_object_unref(pg);
  mg__render_unlock();
}

static PopplerDocument *open_pdf(const unsigned char *pdf, size_t len) {
  GError *e = NULL;
  GBytes *bytes = g_bytes_new(pdf, len);
  mg__render_lock();
  PopplerDocument *doc = poppler_document_new_from_bytes(bytes, NULL, &e);
  mg__render_unlock();
  g_bytes_unref(bytes);
  if (!doc)
    fail_msg("poppler: %s", e ? e->message : "?");
  return doc;
}

static void close_pdf(PopplerDocument *doc) {
  mg__render_lock();
  g_object_unref(doc);
  mg__render_unlock();
}

/* Dark pixels in a rectangle (mm) that are not dark in `not_in` (when
 * given), and their box (mm, page coordinates). */
static long dark(const struct gray *g, const struct gray *not_in, double x,
                 double y, double w, double h, struct box *ink) {
  long n = 0;
  struct box b = {1e9, 1e9, -1e9, -1e9};
  int x0 = (int)ceil(x * PX_PER_MM), y0 = (int)ceil(y * PX_PER_MM),
      x1 = (int)floor((x + w) * PX_PER_MM),
      y1 = (int)floor((y + h) * PX_PER_MM);
  for (int j = y0 < 0 ? 0 : y0; j < y1 && j < g->h; j++)
    for (int i = x0 < 0 ? 0 : x0; i < x1 && i < g->w; i++)
      if (g->v[j * g->w + i] < 160 &&
          !(not_in && not_in->v[j * g->w + i] < 160)) {
        n++;
        b.x0 = fmin(b.x0, i / PX_PER_MM);
        b.x1 = fmax(b.x1, (i + 1) / PX_PER_MM);
        b.y0 = fmin(b.y0, j / PX_PER_MM);
        b.y1 = fmax(b.y1, (j + 1) / PX_PER_MM);
      }
  if (ink)
    *ink = b;
  return n;
}

/* Pixels that differ between two rasters outside every box of `skip`
 * (mm, grown by 0.5 mm). */
static long changed_outside(const struct gray *a, const struct gray *b,
                            const struct box *skip, size_t n_skip) {
  long n = 0;
  assert_int_equal(a->w, b->w);
  assert_int_equal(a->h, b->h);
  for (int j = 0; j < a->h; j++)
    for (int i = 0; i < a->w; i++) {
      if (a->v[j * a->w + i] == b->v[j * a->w + i])
        continue;
      double x = (i + 0.5) / PX_PER_MM, y = (j + 0.5) / PX_PER_MM;
      int in = 0;
      for (size_t k = 0; k < n_skip && !in; k++)
        in = x >= skip[k].x0 - 0.5 && x <= skip[k].x1 + 0.5 &&
             y >= skip[k].y0 - 0.5 && y <= skip[k].y1 + 0.5;
      n += !in;
    }
  return n;
}

/* The JSON the API stores, read back the way core/visit_apps.c reads it
 * for the renderer. */
struct stored {
  struct mg_form_point *p;
  size_t *ends;
  struct mg_form_signature sig;
};
static void store_and_load(const struct mg_form_signature *g,
                           struct stored *st) {
  struct mg_buf b;
  struct mg_json *doc = NULL;
  struct mg_json_error je;
  mg_buf_init(&b);
  assert_int_equal(mg_stroke_json(g, &b), 0);
  assert_int_equal(mg_json_parse(b.data, b.len, NULL, &doc, &je), 0);
  const struct mg_json *sk = mg_json_get(doc, "strokes"),
                       *asp = mg_json_get(doc, "aspect");
  assert_non_null(sk);
  assert_non_null(asp);
  /* the API's rules (docs/api.md, PUT .../signature) */
  assert_true(asp->u.num.d >= 0.2 && asp->u.num.d <= 10);
  assert_true(sk->u.arr.n >= 1 && sk->u.arr.n <= 256);
  st->p = calloc(g->n_points, sizeof(*st->p));
  st->ends = calloc(sk->u.arr.n, sizeof(*st->ends));
  assert_non_null(st->p);
  assert_non_null(st->ends);
  size_t np = 0;
  for (size_t i = 0; i < sk->u.arr.n; i++) {
    const struct mg_json *s = sk->u.arr.items[i];
    for (size_t k = 0; k < s->u.arr.n; k++, np++) {
      const struct mg_json *pt = s->u.arr.items[k];
      assert_int_equal(pt->u.arr.n, 3);
      st->p[np].x = (float)pt->u.arr.items[0]->u.num.d;
      st->p[np].y = (float)pt->u.arr.items[1]->u.num.d;
      st->p[np].w = (float)pt->u.arr.items[2]->u.num.d;
      assert_true(st->p[np].w > 0 && st->p[np].w <= 0.2f);
      assert_true(fabs(st->p[np].x - g->points[np].x) <= 5.1e-5);
    }
    st->ends[i] = np;
  }
  assert_int_equal(np, g->n_points);
  assert_true(np <= 20000);
  st->sig.points = st->p;
  st->sig.n_points = np;
  st->sig.stroke_ends = st->ends;
  st->sig.n_strokes = sk->u.arr.n;
  st->sig.aspect = asp->u.num.d;
  mg_json_free(doc);
  mg_buf_free(&b);
}

/* S1: signed once, the signature lands in every @signature slot of every
 * form of the demo pack that has one, and nowhere else. */
static void test_in_forms(void **state) {
  (void)state;
  struct mg_pack *pack = NULL;
  if (rt_pack_load(SHUNAN, &pack))
    fail_msg("cannot load the demo pack");

  /* the forms with a slot, one sheet each, no values */
  struct mg_form_sheet sheets[64];
  long first_page[64];
  size_t n = 0, slots = 0;
  long pages = 0;
  for (size_t i = 0; i < pack->n_forms && n < 64; i++) {
    const struct mg_pack_form *f = &pack->forms[i];
    int has = 0;
    for (size_t b = 0; b < f->n_boxes; b++)
      has |= strcmp(f->boxes[b].field, "@signature") == 0;
    if (!has)
      continue;
    sheets[n] = (struct mg_form_sheet){f, NULL, 0, NULL};
    first_page[n] = pages;
    pages += f->pages;
    n++;
  }
  assert_true(n >= 2); /* the pack has ten */

  struct mg_stroke *s = engine(3, 0);
  struct mg_form_signature g;
  struct stored st;
  feed_file(s, "yamada.json");
  assert_int_equal(mg_stroke_result(s, &g), 0);
  store_and_load(&g, &st);
  struct box want = ink_box(&st.sig); /* canvas units */

  struct mg_form_render r = {.pack = pack, .pack_dir = SHUNAN,
                             .sheets = sheets, .n_sheets = n,
                             .font_scale = 1.0};
  unsigned char *pdf0 = NULL, *pdf1 = NULL;
  size_t len0 = 0, len1 = 0;
  struct mg_err err = {{0}};
  if (mg_form_render_pdf(&r, &pdf0, &len0, &err))
    fail_msg("render without a signature: %s", err.msg);
  r.signature = &st.sig;
  if (mg_form_render_pdf(&r, &pdf1, &len1, &err))
    fail_msg("render with the signature: %s", err.msg);
  PopplerDocument *d0 = open_pdf(pdf0, len0), *d1 = open_pdf(pdf1, len1);
  assert_int_equal(poppler_document_get_n_pages(d0), pages);
  assert_int_equal(poppler_document_get_n_pages(d1), pages);

  for (long p = 0; p < pages; p++) {
    struct gray before, after;
    struct box skip[16];
    size_t n_skip = 0;
    raster(d0, (int)p, &before);
    raster(d1, (int)p, &after);
    for (size_t i = 0; i < n; i++) {
      const struct mg_pack_form *f = sheets[i].form;
      for (size_t k = 0; k < f->n_boxes; k++) {
        const struct mg_pack_box *b = &f->boxes[k];
        if (strcmp(b->field, "@signature") || first_page[i] + b->page - 1 != p)
          continue;
        assert_true(n_skip < 16);
        skip[n_skip++] = (struct box){b->x, b->y, b->x + b->width,
                                      b->y + b->height};
        slots++;
        /* 1 mm in from the slot's rules */
        double x = b->x + 1, y = b->y + 1, w = b->width - 2,
               h = b->height - 2;
        struct box ink;
        long n0 = dark(&before, NULL, x, y, w, h, NULL),
             n1 = dark(&after, &before, x, y, w, h, &ink);
        if (n0 > 0.03 * w * h * PX_PER_MM * PX_PER_MM || n1 < 500)
          fail_msg("%s page %ld: %ld dark pixels in the slot before (a "
                   "printed hint at most), %ld new with the signature",
                   f->id, b->page, n0, n1);
        /* centred in the slot, as tall as the canvas allows: the canvas
         * is the slot's height less 0.5 mm each side (form_pdf.c) */
        double cx = (ink.x0 + ink.x1) / 2, cy = (ink.y0 + ink.y1) / 2;
        double canvas_h = b->height - 1;
        double want_w = (want.x1 - want.x0) * canvas_h,
               want_h = (want.y1 - want.y0) * canvas_h;
        if (fabs(cx - (b->x + b->width / 2)) > 0.75 ||
            fabs(cy - (b->y + b->height / 2)) > 0.75 ||
            fabs(ink.x1 - ink.x0 - want_w) > 1 ||
            fabs(ink.y1 - ink.y0 - want_h) > 1)
          fail_msg("%s: ink %.1f x %.1f mm centred at %.1f, %.1f; want %.1f "
                   "x %.1f at %.1f, %.1f", f->id, ink.x1 - ink.x0,
                   ink.y1 - ink.y0, cx, cy, want_w, want_h,
                   b->x + b->width / 2, b->y + b->height / 2);
      }
    }
    long ch = changed_outside(&before, &after, skip, n_skip);
    if (ch)
      fail_msg("page %ld: %ld pixels changed outside the signature slots",
               p + 1, ch);
    free(before.v);
    free(after.v);
  }
  assert_true(slots >= n);
  close_pdf(d0);
  close_pdf(d1);
  free(pdf0);
  free(pdf1);
  free(st.p);
  free(st.ends);
  mg_stroke_free(s);
  mg_pack_free(pack);
}

static void *suite(void *arg) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_golden),   cmocka_unit_test(test_fit_centred),
      cmocka_unit_test(test_aspect),   cmocka_unit_test(test_pressure),
      cmocka_unit_test(test_strokes),  cmocka_unit_test(test_clear),
      cmocka_unit_test(test_empty),    cmocka_unit_test(test_limits),
      cmocka_unit_test(test_bad_json), cmocka_unit_test(test_png),
      cmocka_unit_test(test_in_forms),
  };
  *(int *)arg = cmocka_run_group_tests(tests, NULL, NULL);
  return NULL;
}

int main(void) { return rt_main(suite); }
