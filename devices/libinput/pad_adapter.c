/* pad_adapter.c — tablet-tool events to strokes (S1); see pad_adapter.h. */
#include "pad_adapter.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void pad_init(struct pad *p, double width, double height) {
  memset(p, 0, sizeof(*p));
  p->width = width;
  p->height = height;
}

void pad_free(struct pad *p) {
  free(p->smp);
  free(p->ends);
  p->smp = NULL;
  p->ends = NULL;
  p->cap_smp = p->cap_ends = 0;
  pad_clear(p);
}

void pad_clear(struct pad *p) {
  /* a stroke being drawn goes too: the rest of it is dropped */
  p->n_smp = p->n_ends = 0;
  p->dropped = 0;
  p->last_t = 0;
  p->tip_down = 0;
}

/* Grow *a (of *cap elements of size sz) to hold n; 0 or -ENOMEM. */
static int grow(void **a, size_t *cap, size_t n, size_t sz) {
  if (n <= *cap)
    return 0;
  size_t c = *cap ? *cap : 256;
  while (c < n)
    c *= 2;
  void *q = realloc(*a, c * sz);
  if (!q)
    return -ENOMEM;
  *a = q;
  *cap = c;
  return 0;
}

static double clamp(double v, double hi) {
  return v >= 0 ? (v <= hi ? v : hi) : 0; /* NaN: 0 */
}

/* The event's sample, clamped to the area, time not going back. */
static struct pad_sample sample_of(struct pad *p, const struct pad_event *e) {
  struct pad_sample s;
  s.x = clamp(e->x, p->width);
  s.y = clamp(e->y, p->height);
  s.p = e->pressure < 0 ? -1 : clamp(e->pressure, 1);
  s.t = e->t_ms < p->last_t ? p->last_t : e->t_ms;
  p->last_t = s.t;
  return s;
}

/* Append to the open stroke, or start one.  0, 1 when dropped (a limit),
 * -ENOMEM. */
static int add(struct pad *p, const struct pad_sample *s, int start) {
  if (start && p->n_ends >= PAD_MAX_STROKES) {
    p->dropped++;
    return 1;
  }
  if (!start && p->n_smp) {
    const struct pad_sample *l = &p->smp[p->n_smp - 1];
    if (l->x == s->x && l->y == s->y && l->p == s->p)
      return 0; /* nothing new */
  }
  if (p->n_smp >= PAD_MAX_SAMPLES) {
    p->dropped++;
    return 1;
  }
  if (grow((void **)&p->smp, &p->cap_smp, p->n_smp + 1, sizeof(*p->smp)) ||
      (start && grow((void **)&p->ends, &p->cap_ends, p->n_ends + 1,
                     sizeof(*p->ends))))
    return -ENOMEM;
  p->smp[p->n_smp++] = *s;
  if (start)
    p->n_ends++;
  p->ends[p->n_ends - 1] = p->n_smp;
  return 0;
}

int pad_feed(struct pad *p, const struct pad_event *e) {
  struct pad_sample s;
  int rc = 0, r;
  switch (e->type) {
  case PAD_PROX_IN:
    if (!p->in_prox)
      rc |= PAD_PROX_CHANGED;
    p->in_prox = 1;
    break;
  case PAD_PROX_OUT:
    if (p->tip_down) { /* lifted away without a tip-up */
      p->tip_down = 0;
      rc |= PAD_STROKE_DONE;
    }
    if (p->in_prox)
      rc |= PAD_PROX_CHANGED;
    p->in_prox = 0;
    break;
  case PAD_TIP_DOWN:
    if (!p->in_prox) /* a tip is near: some tablets say so late */
      rc |= PAD_PROX_CHANGED;
    p->in_prox = 1;
    if (p->tip_down)
      break;
    s = sample_of(p, e);
    if ((r = add(p, &s, 1)) < 0)
      return r;
    p->tip_down = r == 0; /* a dropped stroke stays up */
    break;
  case PAD_AXIS:
    if (!p->tip_down)
      break; /* hovering */
    s = sample_of(p, e);
    if ((r = add(p, &s, 0)) < 0)
      return r;
    break;
  case PAD_TIP_UP:
    if (!p->tip_down)
      break;
    s = sample_of(p, e);
    if ((r = add(p, &s, 0)) < 0)
      return r;
    p->tip_down = 0;
    rc |= PAD_STROKE_DONE;
    break;
  default:
    break;
  }
  return rc;
}

size_t pad_strokes(const struct pad *p) {
  return p->n_ends - (p->tip_down ? 1 : 0);
}

size_t pad_samples(const struct pad *p) {
  size_t n = pad_strokes(p);
  return n ? p->ends[n - 1] : 0;
}

void pad_take_json(const struct pad *p, struct mgp_sb *b) {
  size_t n = pad_strokes(p);
  /* %.6g for the area and the points alike: rounding keeps x <= width */
  mgp_sb_printf(b, "{\"width\":%.6g,\"height\":%.6g,\"strokes\":[", p->width,
                p->height);
  for (size_t k = 0; k < n; k++) {
    size_t a = k ? p->ends[k - 1] : 0;
    mgp_sb_puts(b, k ? ",[" : "[");
    for (size_t i = a; i < p->ends[k]; i++) {
      const struct pad_sample *s = &p->smp[i];
      if (s->p < 0)
        mgp_sb_printf(b, "%s[%.6g,%.6g,-1,%u]", i > a ? "," : "", s->x, s->y,
                      s->t);
      else
        mgp_sb_printf(b, "%s[%.6g,%.6g,%.4f,%u]", i > a ? "," : "", s->x,
                      s->y, s->p, s->t);
    }
    mgp_sb_puts(b, "]");
  }
  mgp_sb_puts(b, "]}");
}

void pad_stroke_json(const struct pad *p, size_t k, size_t max_points,
                     struct mgp_sb *b) {
  size_t a = k ? p->ends[k - 1] : 0, n = p->ends[k] - a;
  size_t m = n <= max_points || max_points < 2 ? n : max_points;
  mgp_sb_puts(b, "{\"points\":[");
  for (size_t j = 0; j < m; j++) {
    /* evenly picked: j * (n - 1) / (m - 1), rounded */
    size_t i = m == n ? j : (j * (n - 1) + (m - 1) / 2) / (m - 1);
    const struct pad_sample *s = &p->smp[a + i];
    if (s->p < 0)
      mgp_sb_printf(b, "%s[%.4f,%.4f,-1]", j ? "," : "", s->x / p->width,
                    s->y / p->height);
    else
      mgp_sb_printf(b, "%s[%.4f,%.4f,%.3f]", j ? "," : "", s->x / p->width,
                    s->y / p->height, s->p);
  }
  mgp_sb_puts(b, "]}");
}
