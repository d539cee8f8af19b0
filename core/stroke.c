/*
 * stroke.c — the signature stroke engine (S1); stroke.h says what it does.
 *
 * Raw samples are kept as they come (so a result can be asked for again,
 * and a failed JSON feed rolled back); the signature is computed from them
 * on mg_stroke_result:
 *
 *   a scale from the raw bounding box -> the step in device units ->
 *   centripetal Catmull-Rom walked densely, a point emitted every step of
 *   arc length (streaming, no dense array) -> pressure moving average ->
 *   widths -> the scale at which the ink, each point with its own half
 *   width, fits the canvas; then once more at that scale, so that the
 *   step is exact -> centred.
 *
 * Arithmetic, sqrt and pow only, no clock, no randomness: the same input
 * gives the same floats (golden tests; pow may differ in the last bit
 * between libm versions, far below their 1e-6).  Nothing is logged: a
 * signature is personal data.
 */
#include "stroke.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cairo.h>

#include "buf.h"
#include "json.h"
#include "render_lock.h"

#define GAMMA 0.6          /* pressure^GAMMA: light touches still show */
#define NO_PRESSURE 0.5    /* a device without pressure */
#define SMOOTH_RADIUS 2    /* pressure moving average: 5 points */
#define DENSE_PER_STEP 4   /* spline evaluations per output step */
#define DENSE_MAX 4096     /* ... per raw segment at most */
#define JSON_MAX_BYTES (8u << 20)
#define PNG_MAX_SIDE 8192

struct mg_stroke {
  struct mg_stroke_opts o;
  struct mg_stroke_sample *smp; /* every stroke's samples, in order */
  size_t n_smp, cap_smp;
  size_t *ends; /* one past each stroke's last sample */
  size_t n_ends, cap_ends;
  int down; /* the pen is down: the last stroke is open */
  uint32_t last_t;
  /* the last result */
  struct mg_form_point *out;
  size_t cap_out;
  size_t *out_ends;
};

/* A point being produced, in device units until the end. */
struct rpt {
  double x, y, p;
};

void mg_stroke_opts_default(struct mg_stroke_opts *o) {
  o->aspect = 3.0;
  o->min_width = 0.01;
  o->max_width = 0.045;
  o->step = 0.004;
  o->max_jump = 0;
}

static int opts_ok(const struct mg_stroke_opts *o) {
  return isfinite(o->aspect) && o->aspect >= 0.1 && o->aspect <= 20 &&
         isfinite(o->min_width) && isfinite(o->max_width) &&
         o->min_width >= 0 && o->min_width <= o->max_width &&
         o->max_width <= 0.2 && o->max_width < o->aspect / 2 &&
         isfinite(o->step) && o->step >= 0.0005 && o->step <= 0.1 &&
         !isnan(o->max_jump);
}

struct mg_stroke *mg_stroke_new(const struct mg_stroke_opts *o) {
  struct mg_stroke *s;
  struct mg_stroke_opts d;
  if (!o) {
    mg_stroke_opts_default(&d);
    o = &d;
  }
  if (!opts_ok(o)) {
    errno = EINVAL;
    return NULL;
  }
  if (!(s = calloc(1, sizeof(*s)))) {
    errno = ENOMEM;
    return NULL;
  }
  s->o = *o;
  return s;
}

void mg_stroke_free(struct mg_stroke *s) {
  if (!s)
    return;
  free(s->smp);
  free(s->ends);
  free(s->out);
  free(s->out_ends);
  free(s);
}

/* Grow *p (of *cap elements of size sz) to hold n; 0 or -ENOMEM. */
static int grow(void **p, size_t *cap, size_t n, size_t sz) {
  if (n <= *cap)
    return 0;
  size_t c = *cap ? *cap : 64;
  while (c < n)
    c *= 2;
  void *q = realloc(*p, c * sz);
  if (!q)
    return -ENOMEM;
  *p = q;
  *cap = c;
  return 0;
}

static int sample_ok(const struct mg_stroke *s,
                     const struct mg_stroke_sample *p) {
  if (!p || !isfinite(p->x) || !isfinite(p->y) || isnan(p->pressure) ||
      p->pressure > 1)
    return -EINVAL;
  if (s->n_smp && p->t_ms < s->last_t) /* time goes forward */
    return -EINVAL;
  return 0;
}

static int push(struct mg_stroke *s, const struct mg_stroke_sample *p,
                int new_stroke) {
  if (new_stroke && s->n_ends >= MG_STROKE_MAX_STROKES)
    return -E2BIG;
  if (s->n_smp >= MG_STROKE_MAX_SAMPLES)
    return -E2BIG;
  if (grow((void **)&s->smp, &s->cap_smp, s->n_smp + 1, sizeof(*s->smp)) ||
      (new_stroke && grow((void **)&s->ends, &s->cap_ends, s->n_ends + 1,
                          sizeof(*s->ends))))
    return -ENOMEM;
  s->smp[s->n_smp++] = *p;
  if (new_stroke)
    s->n_ends++;
  s->ends[s->n_ends - 1] = s->n_smp;
  s->last_t = p->t_ms;
  return 0;
}

int mg_stroke_down(struct mg_stroke *s, const struct mg_stroke_sample *p) {
  int rc = sample_ok(s, p);
  if (rc)
    return rc;
  s->down = 0; /* a missed pen-up ends the stroke before */
  if ((rc = push(s, p, 1)))
    return rc;
  s->down = 1;
  return 0;
}

int mg_stroke_move(struct mg_stroke *s, const struct mg_stroke_sample *p) {
  int rc;
  if (!s->down)
    return -EINVAL;
  if ((rc = sample_ok(s, p)))
    return rc;
  const struct mg_stroke_sample *l = &s->smp[s->n_smp - 1];
  double dx = p->x - l->x, dy = p->y - l->y;
  if (dx == 0 && dy == 0) { /* no movement */
    s->last_t = p->t_ms;
    return 0;
  }
  int jump = s->o.max_jump > 0 &&
             dx * dx + dy * dy > s->o.max_jump * s->o.max_jump;
  return push(s, p, jump);
}

int mg_stroke_up(struct mg_stroke *s) {
  s->down = 0;
  return 0;
}

void mg_stroke_clear(struct mg_stroke *s) {
  s->n_smp = s->n_ends = 0;
  s->down = 0;
  s->last_t = 0;
}

size_t mg_stroke_count(const struct mg_stroke *s) { return s->n_ends; }

/* ---------------------------------------------------------------------- */
/* The signature                                                           */

static double pressure_of(double p) { return p < 0 ? NO_PRESSURE : p; }

/* Output being built: points in device units (x, y) with pressure; the
 * emitted points of the current stroke start at `first`. */
struct emit {
  struct rpt *pt; /* scratch, parallel to s->out */
  size_t cap_pt;
  size_t n, first;
  double step; /* in device units */
  double need; /* arc length to the next point */
  struct rpt prev;
  int rc;
};

static void emit_point(struct emit *e, struct rpt p) {
  if (e->rc)
    return;
  if (e->n >= MG_STROKE_MAX_POINTS) {
    e->rc = -E2BIG;
    return;
  }
  if (grow((void **)&e->pt, &e->cap_pt, e->n + 1, sizeof(*e->pt))) {
    e->rc = -ENOMEM;
    return;
  }
  e->pt[e->n++] = p;
}

/* The dense curve reaches c: emit a point every step of arc length. */
static void walk_to(struct emit *e, struct rpt c) {
  double dx = c.x - e->prev.x, dy = c.y - e->prev.y;
  double seg = sqrt(dx * dx + dy * dy);
  double done = 0;
  while (!e->rc && seg - done >= e->need) {
    done += e->need;
    double f = done / seg;
    struct rpt q = {e->prev.x + dx * f, e->prev.y + dy * f,
                    e->prev.p + (c.p - e->prev.p) * f};
    emit_point(e, q);
    e->need = e->step;
  }
  e->need -= seg - done;
  e->prev = c;
}

static double vlen(double dx, double dy) { return sqrt(dx * dx + dy * dy); }

static double dist(const struct mg_stroke_sample *a,
                   const struct mg_stroke_sample *b) {
  return vlen(a->x - b->x, a->y - b->y);
}

/* Point i of a stroke of n samples, with reflected phantoms at -1 and n
 * (duplicated end points would give centripetal knots of length 0). */
static struct rpt ctl(const struct mg_stroke_sample *v, size_t n, long i) {
  struct rpt r;
  if (i < 0) {
    r.x = 2 * v[0].x - v[1].x;
    r.y = 2 * v[0].y - v[1].y;
    r.p = pressure_of(v[0].pressure);
  } else if ((size_t)i >= n) {
    r.x = 2 * v[n - 1].x - v[n - 2].x;
    r.y = 2 * v[n - 1].y - v[n - 2].y;
    r.p = pressure_of(v[n - 1].pressure);
  } else {
    r.x = v[i].x;
    r.y = v[i].y;
    r.p = pressure_of(v[i].pressure);
  }
  return r;
}

static struct rpt lerp2(struct rpt a, double wa, struct rpt b, double wb) {
  struct rpt r = {a.x * wa + b.x * wb, a.y * wa + b.y * wb, 0};
  return r;
}

/* Centripetal Catmull-Rom (alpha 1/2, Barry-Goldman's pyramid) on the
 * segment p1 -> p2, at u in [0, 1]; pressure linear along the segment. */
static struct rpt catmull(struct rpt p0, struct rpt p1, struct rpt p2,
                          struct rpt p3, double u) {
  double t0 = 0;
  double t1 = t0 + sqrt(vlen(p1.x - p0.x, p1.y - p0.y));
  double t2 = t1 + sqrt(vlen(p2.x - p1.x, p2.y - p1.y));
  double t3 = t2 + sqrt(vlen(p3.x - p2.x, p3.y - p2.y));
  double t = t1 + (t2 - t1) * u;
  struct rpt a1 = lerp2(p0, (t1 - t) / (t1 - t0), p1, (t - t0) / (t1 - t0));
  struct rpt a2 = lerp2(p1, (t2 - t) / (t2 - t1), p2, (t - t1) / (t2 - t1));
  struct rpt a3 = lerp2(p2, (t3 - t) / (t3 - t2), p3, (t - t2) / (t3 - t2));
  struct rpt b1 = lerp2(a1, (t2 - t) / (t2 - t0), a2, (t - t0) / (t2 - t0));
  struct rpt b2 = lerp2(a2, (t3 - t) / (t3 - t1), a3, (t - t1) / (t3 - t1));
  struct rpt c = lerp2(b1, (t2 - t) / (t2 - t1), b2, (t - t1) / (t2 - t1));
  c.p = p1.p + (p2.p - p1.p) * u;
  return c;
}

/* One stroke of n >= 1 samples into e: smoothed and resampled. */
static void stroke_points(struct emit *e, const struct mg_stroke_sample *v,
                          size_t n) {
  e->first = e->n;
  struct rpt start = ctl(v, n, 0);
  emit_point(e, start);
  if (n == 1)
    return; /* a dot */
  e->prev = start;
  e->need = e->step;
  for (size_t i = 0; i + 1 < n && !e->rc; i++) {
    struct rpt p0 = ctl(v, n, (long)i - 1), p1 = ctl(v, n, (long)i),
               p2 = ctl(v, n, (long)i + 1), p3 = ctl(v, n, (long)i + 2);
    double chord = dist(&v[i], &v[i + 1]);
    double k = ceil(chord / e->step * DENSE_PER_STEP);
    size_t m = k < 1 ? 1 : k > DENSE_MAX ? DENSE_MAX : (size_t)k;
    for (size_t j = 1; j < m; j++)
      walk_to(e, catmull(p0, p1, p2, p3, (double)j / (double)m));
    walk_to(e, p2); /* exactly the sample */
  }
  if (e->rc)
    return;
  /* the end exactly: replace a point closer than half a step, else add */
  struct rpt end = ctl(v, n, (long)n - 1), *last = &e->pt[e->n - 1];
  double gap = vlen(end.x - last->x, end.y - last->y);
  if (e->n - e->first > 1 && gap < e->step / 2)
    *last = end;
  else if (gap > 0)
    emit_point(e, end);
}

/* Moving average of the pressure within one stroke [a, b). */
static void smooth(struct rpt *pt, size_t a, size_t b, double *tmp) {
  for (size_t i = a; i < b; i++) {
    size_t lo = i >= a + SMOOTH_RADIUS ? i - SMOOTH_RADIUS : a;
    size_t hi = i + SMOOTH_RADIUS < b ? i + SMOOTH_RADIUS : b - 1;
    double sum = 0;
    for (size_t j = lo; j <= hi; j++)
      sum += pt[j].p;
    tmp[i - a] = sum / (double)(hi - lo + 1);
  }
  for (size_t i = a; i < b; i++)
    pt[i].p = tmp[i - a];
}

static double clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

/* Scale (canvas heights per device unit) fitting a box bw x bh into
 * aspect x 1 less a margin m each side; 0 for a single point.  A first
 * guess, from the raw samples. */
static double fit_box(double bw, double bh, double aspect, double m) {
  double k = 0;
  if (bw > 0)
    k = (aspect - 2 * m) / bw;
  if (bh > 0 && (k == 0 || (1 - 2 * m) / bh < k))
    k = (1 - 2 * m) / bh;
  return k;
}

/* The extent of the ink along one axis at scale k: points at v*k, each
 * with its half width h (= its w / 2). */
static void extent(const struct rpt *pt, size_t n, int y, double k,
                   double *lo, double *hi) {
  *lo = INFINITY;
  *hi = -INFINITY;
  for (size_t i = 0; i < n; i++) {
    double v = (y ? pt[i].y : pt[i].x) * k, h = pt[i].p / 2;
    *lo = fmin(*lo, v - h);
    *hi = fmax(*hi, v + h);
  }
}

/* The largest k at which the ink spans at most `room` along one axis;
 * INFINITY when the points do not spread along it.  The span grows with k
 * (it is convex and least at 0), so bisection finds it. */
static double fit_axis(const struct rpt *pt, size_t n, int y, double room) {
  double vlo = INFINITY, vhi = -INFINITY, lo, hi;
  for (size_t i = 0; i < n; i++) {
    vlo = fmin(vlo, y ? pt[i].y : pt[i].x);
    vhi = fmax(vhi, y ? pt[i].y : pt[i].x);
  }
  if (!(vhi > vlo))
    return INFINITY;
  double a = 0, b = room / (vhi - vlo); /* at b the points alone fill it */
  for (int it = 0; it < 64; it++) {
    double mid = (a + b) / 2;
    extent(pt, n, y, mid, &lo, &hi);
    if (hi - lo <= room)
      a = mid;
    else
      b = mid;
  }
  return a;
}

/* Every stroke of s smoothed and resampled at `step` device units into
 * e->pt, with the line width in p; s->out_ends set. */
static int trace(struct mg_stroke *s, struct emit *e, double step) {
  const struct mg_stroke_opts *o = &s->o;
  double *tmp = NULL;
  e->n = 0;
  e->step = step;
  for (size_t k = 0; k < s->n_ends && !e->rc; k++) {
    size_t a = k ? s->ends[k - 1] : 0;
    stroke_points(e, s->smp + a, s->ends[k] - a);
    s->out_ends[k] = e->n;
  }
  if (e->rc)
    return e->rc;
  if (!(tmp = malloc(e->n * sizeof(*tmp))))
    return -ENOMEM;
  for (size_t k = 0; k < s->n_ends; k++)
    smooth(e->pt, k ? s->out_ends[k - 1] : 0, s->out_ends[k], tmp);
  free(tmp);
  for (size_t i = 0; i < e->n; i++) {
    double p = pow(clamp01(e->pt[i].p), GAMMA);
    e->pt[i].p = o->min_width + (o->max_width - o->min_width) * p;
  }
  return 0;
}

int mg_stroke_result(struct mg_stroke *s, struct mg_form_signature *out) {
  struct emit e = {0};
  const struct mg_stroke_opts *o = &s->o;
  int rc = 0;
  memset(out, 0, sizeof(*out));
  if (!s->n_ends)
    return -ENODATA;
  if (!s->out_ends &&
      !(s->out_ends = malloc(MG_STROKE_MAX_STROKES * sizeof(*s->out_ends))))
    return -ENOMEM;

  /* The step is a fraction of the canvas height, so it needs the scale,
   * which needs the resampled ink: a first pass at the scale of the raw
   * samples, a second at the scale the first found (even steps). */
  double x0 = s->smp[0].x, x1 = x0, y0 = s->smp[0].y, y1 = y0;
  for (size_t i = 1; i < s->n_smp; i++) {
    x0 = fmin(x0, s->smp[i].x);
    x1 = fmax(x1, s->smp[i].x);
    y0 = fmin(y0, s->smp[i].y);
    y1 = fmax(y1, s->smp[i].y);
  }
  double k = fit_box(x1 - x0, y1 - y0, o->aspect, o->max_width / 2);
  /* k = 0: every sample at one place, so every stroke is a dot */
  for (int pass = 0; pass < 2; pass++) {
    if ((rc = trace(s, &e, k > 0 ? o->step / k : 1)))
      goto out;
    double kx = fit_axis(e.pt, e.n, 0, o->aspect),
           ky = fit_axis(e.pt, e.n, 1, 1);
    k = fmin(kx, ky);
    if (!isfinite(k))
      break; /* dots at one place */
  }
  if (!isfinite(k))
    k = 0;

  /* centred: the ink's box (widths included) in the middle */
  double lx, hx, ly, hy;
  extent(e.pt, e.n, 0, k, &lx, &hx);
  extent(e.pt, e.n, 1, k, &ly, &hy);
  if (grow((void **)&s->out, &s->cap_out, e.n, sizeof(*s->out))) {
    rc = -ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < e.n; i++) {
    double X = e.pt[i].x * k - (lx + hx) / 2 + o->aspect / 2,
           Y = e.pt[i].y * k - (ly + hy) / 2 + 0.5;
    s->out[i].x = (float)clamp01(X / o->aspect);
    s->out[i].y = (float)clamp01(Y);
    s->out[i].w = (float)e.pt[i].p;
  }
  out->points = s->out;
  out->n_points = e.n;
  out->stroke_ends = s->out_ends;
  out->n_strokes = s->n_ends;
  out->aspect = o->aspect;
out:
  free(e.pt);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* PNG                                                                     */

static int sig_ok(const struct mg_form_signature *g) {
  if (!isfinite(g->aspect) || g->aspect < 0.1 || g->aspect > 20 ||
      !g->points || !g->stroke_ends || !g->n_strokes ||
      g->stroke_ends[g->n_strokes - 1] != g->n_points)
    return 0;
  for (size_t i = 0; i < g->n_strokes; i++)
    if (g->stroke_ends[i] <= (i ? g->stroke_ends[i - 1] : 0))
      return 0;
  for (size_t i = 0; i < g->n_points; i++) {
    const struct mg_form_point *p = &g->points[i];
    if (!(p->x >= 0 && p->x <= 1 && p->y >= 0 && p->y <= 1 && p->w >= 0 &&
          p->w <= 1))
      return 0;
  }
  return 1;
}

/* As core/form_pdf.c draws it: a pressure-less w = 0 is 0.012. */
static double seg_w(const struct mg_form_point *a,
                    const struct mg_form_point *b, double h) {
  double w = (a->w + b->w) / 2;
  return (w > 0 ? w : 0.012) * h;
}

static void draw(cairo_t *cr, const struct mg_form_signature *g, double W,
                 double H) {
  const struct mg_form_point *p = g->points;
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  for (size_t k = 0; k < g->n_strokes; k++) {
    size_t a = k ? g->stroke_ends[k - 1] : 0, e = g->stroke_ends[k];
    if (e - a == 1) { /* a dot */
      cairo_new_sub_path(cr);
      cairo_arc(cr, p[a].x * W, p[a].y * H, seg_w(&p[a], &p[a], H) / 2, 0,
                2 * M_PI);
      cairo_fill(cr);
      continue;
    }
    for (size_t i = a; i + 1 < e;) { /* same width within 8 %: one path */
      double w = seg_w(&p[i], &p[i + 1], H);
      size_t j = i;
      cairo_move_to(cr, p[i].x * W, p[i].y * H);
      while (j + 1 < e && fabs(seg_w(&p[j], &p[j + 1], H) - w) <= 0.08 * w) {
        cairo_line_to(cr, p[j + 1].x * W, p[j + 1].y * H);
        j++;
      }
      cairo_set_line_width(cr, w);
      cairo_stroke(cr);
      i = j;
    }
  }
}

static cairo_status_t png_write(void *closure, const unsigned char *data,
                                unsigned int length) {
  struct mg_buf *b = closure;
  mg_buf_append(b, data, length);
  return b->oom ? CAIRO_STATUS_WRITE_ERROR : CAIRO_STATUS_SUCCESS;
}

int mg_stroke_png(const struct mg_form_signature *sig, int height,
                  unsigned char **png, size_t *len) {
  struct mg_buf b;
  cairo_surface_t *surf = NULL;
  cairo_t *cr = NULL;
  int rc = 0, width;
  mg_buf_init(&b);
  *png = NULL;
  *len = 0;
  if (!sig || !sig->n_points)
    return -ENODATA;
  if (!sig_ok(sig) || height < 8 || height > PNG_MAX_SIDE ||
      sig->aspect * height > PNG_MAX_SIDE)
    return -EINVAL;
  width = (int)lround(sig->aspect * height);
  if (width < 1)
    width = 1;
  mg__render_lock(); /* every cairo use: render_lock.h */
  surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width, height);
  cr = cairo_create(surf); /* the surface starts transparent */
  draw(cr, sig, width, height);
  cairo_surface_flush(surf);
  if (cairo_status(cr) != CAIRO_STATUS_SUCCESS ||
      cairo_surface_write_to_png_stream(surf, png_write, &b) !=
          CAIRO_STATUS_SUCCESS)
    rc = b.oom || cairo_status(cr) == CAIRO_STATUS_NO_MEMORY ? -ENOMEM
                                                              : -EIO;
  cairo_destroy(cr);
  cairo_surface_destroy(surf);
  mg__render_unlock();
  if (!rc) {
    *len = b.len;
    *png = (unsigned char *)mg_buf_steal(&b);
    if (!*png)
      rc = -ENOMEM;
  }
  mg_buf_free(&b);
  return rc;
}

int mg_stroke_json(const struct mg_form_signature *sig, struct mg_buf *out) {
  struct mg_jw w;
  if (!sig || !sig->n_points)
    return -ENODATA;
  if (!sig_ok(sig))
    return -EINVAL;
  mg_jw_init(&w, out);
  mg_jw_obj(&w);
  mg_jw_key(&w, "aspect");
  mg_jw_double(&w, sig->aspect);
  mg_jw_key(&w, "strokes");
  mg_jw_arr(&w);
  for (size_t k = 0; k < sig->n_strokes; k++) {
    mg_jw_arr(&w);
    for (size_t i = k ? sig->stroke_ends[k - 1] : 0; i < sig->stroke_ends[k];
         i++) {
      const struct mg_form_point *p = &sig->points[i];
      mg_jw_arr(&w);
      mg_jw_double(&w, round(p->x * 1e4) / 1e4);
      mg_jw_double(&w, round(p->y * 1e4) / 1e4);
      mg_jw_double(&w, round(p->w * 1e4) / 1e4);
      mg_jw_arr_end(&w);
    }
    mg_jw_arr_end(&w);
  }
  mg_jw_arr_end(&w);
  mg_jw_obj_end(&w);
  return out->oom ? -ENOMEM : w.bad ? -EINVAL : 0;
}

/* ---------------------------------------------------------------------- */
/* Raw JSON                                                                */

/* A number member of the root: > 0 and finite. */
static int positive(const struct mg_json *root, const char *key, double *out,
                    struct mg_err *err) {
  const struct mg_json *v = mg_json_get(root, key);
  if (!v)
    return mg_err_set(err, -EINVAL, "%s: missing (the capture area's %s in "
                      "device units)", key, key);
  if (v->type != MG_JSON_NUMBER || !(v->u.num.d > 0) || v->u.num.d > 1e9)
    return mg_err_set(err, -EINVAL, "%s: must be a number above 0 (the "
                      "capture area's %s in device units)", key, key);
  *out = v->u.num.d;
  return 0;
}

/* strokes[i][k] into *p, checked against the area. */
static int raw_point(const struct mg_json *pt, size_t i, size_t k, double W,
                     double H, struct mg_stroke_sample *p,
                     struct mg_err *err) {
  static const char *const name[4] = {"x", "y", "pressure", "t_ms"};
  double v[4];
  if (pt->type != MG_JSON_ARRAY || pt->u.arr.n != 4)
    return mg_err_set(err, -EINVAL, "strokes[%zu][%zu]: must be a point "
                      "[x, y, pressure, t_ms]", i, k);
  for (int j = 0; j < 4; j++) {
    const struct mg_json *x = pt->u.arr.items[j];
    if (x->type != MG_JSON_NUMBER)
      return mg_err_set(err, -EINVAL, "strokes[%zu][%zu]: %s must be a "
                        "number", i, k, name[j]);
    v[j] = x->u.num.d;
  }
  if (!(v[0] >= 0 && v[0] <= W))
    return mg_err_set(err, -EINVAL, "strokes[%zu][%zu]: x must be from 0 to "
                      "width (%g)", i, k, W);
  if (!(v[1] >= 0 && v[1] <= H))
    return mg_err_set(err, -EINVAL, "strokes[%zu][%zu]: y must be from 0 to "
                      "height (%g)", i, k, H);
  if (!((v[2] >= 0 && v[2] <= 1) || v[2] == -1))
    return mg_err_set(err, -EINVAL, "strokes[%zu][%zu]: pressure must be "
                      "from 0 to 1 (or -1: none)", i, k);
  if (!(v[3] >= 0 && v[3] <= 4294967295.0))
    return mg_err_set(err, -EINVAL, "strokes[%zu][%zu]: t_ms must be from 0 "
                      "to 4294967295", i, k);
  p->x = v[0];
  p->y = v[1];
  p->pressure = v[2];
  p->t_ms = (uint32_t)v[3];
  return 0;
}

int mg_stroke_feed_json(struct mg_stroke *s, const char *json, size_t len,
                        struct mg_err *err) {
  struct mg_json *doc = NULL;
  struct mg_json_error je;
  struct mg_json_limits lim = {0, JSON_MAX_BYTES};
  const struct mg_json *strokes;
  double W = 0, H = 0; /* = 0: -O3 cannot see them set */
  /* the state to come back to */
  size_t n_smp = s->n_smp, n_ends = s->n_ends;
  int down = s->down;
  uint32_t last_t = s->last_t;
  size_t total = 0;
  int rc = mg_json_parse(json, len, &lim, &doc, &je);
  if (rc) {
    rc = mg_err_set(err, rc == -ENOMEM ? -ENOMEM : rc,
                    "signature capture: %s", je.msg);
    goto out;
  }
  if (doc->type != MG_JSON_OBJECT) {
    rc = mg_err_set(err, -EINVAL, "signature capture: a JSON object "
                    "{\"width\", \"height\", \"strokes\"} is expected");
    goto out;
  }
  for (size_t i = 0; i < doc->u.obj.n; i++) {
    const char *key = doc->u.obj.members[i].key;
    if (strcmp(key, "width") && strcmp(key, "height") &&
        strcmp(key, "strokes")) {
      rc = mg_err_set(err, -EINVAL, "signature capture: unknown key "
                      "\"%.40s\" (known: width, height, strokes)", key);
      goto out;
    }
  }
  if ((rc = positive(doc, "width", &W, err)) ||
      (rc = positive(doc, "height", &H, err)))
    goto out;
  strokes = mg_json_get(doc, "strokes");
  if (!strokes || strokes->type != MG_JSON_ARRAY) {
    rc = mg_err_set(err, -EINVAL, "strokes: must be an array of strokes, "
                    "each an array of [x, y, pressure, t_ms]");
    goto out;
  }
  if (strokes->u.arr.n > MG_STROKE_MAX_STROKES) {
    rc = mg_err_set(err, -E2BIG, "strokes: %zu strokes, at most %d",
                    strokes->u.arr.n, MG_STROKE_MAX_STROKES);
    goto out;
  }
  for (size_t i = 0; i < strokes->u.arr.n; i++) {
    const struct mg_json *st = strokes->u.arr.items[i];
    if (st->type != MG_JSON_ARRAY || !st->u.arr.n) {
      rc = mg_err_set(err, -EINVAL, "strokes[%zu]: must be an array of one "
                      "or more points [x, y, pressure, t_ms]", i);
      goto out;
    }
    if ((total += st->u.arr.n) > MG_STROKE_MAX_SAMPLES) {
      rc = mg_err_set(err, -E2BIG, "strokes[%zu]: more than %d points in "
                      "all", i, MG_STROKE_MAX_SAMPLES);
      goto out;
    }
    for (size_t k = 0; k < st->u.arr.n; k++) {
      struct mg_stroke_sample p;
      if ((rc = raw_point(st->u.arr.items[k], i, k, W, H, &p, err)))
        goto out;
      if (s->n_smp && p.t_ms < s->last_t) {
        rc = mg_err_set(err, -EINVAL, "strokes[%zu][%zu]: t_ms %u goes back "
                        "in time (after %u)", i, k, p.t_ms, s->last_t);
        goto out;
      }
      rc = k ? mg_stroke_move(s, &p) : mg_stroke_down(s, &p);
      if (rc == -E2BIG)
        rc = mg_err_set(err, rc, "strokes[%zu][%zu]: with what was drawn "
                        "before, over %d strokes or %d points", i, k,
                        MG_STROKE_MAX_STROKES, MG_STROKE_MAX_SAMPLES);
      else if (rc)
        rc = mg_err_set(err, rc, "strokes[%zu][%zu]: %s", i, k,
                        strerror(-rc));
      if (rc)
        goto out;
    }
    mg_stroke_up(s);
  }
out:
  if (rc) { /* all or nothing */
    s->n_smp = n_smp;
    s->n_ends = n_ends;
    s->down = down;
    s->last_t = last_t;
    if (n_ends)
      s->ends[n_ends - 1] = n_smp; /* an open stroke may have grown */
  }
  mg_json_free(doc);
  return rc;
}
