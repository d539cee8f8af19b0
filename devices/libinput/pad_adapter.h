/*
 * pad_adapter.h — a pen tablet's tool events to strokes of raw samples
 * (S1), for the signature-pad plugin (libinput.c).  Pure: no libinput, no
 * host; the plugin converts each libinput tablet-tool event into a struct
 * pad_event, and the tests feed synthetic ones.
 *
 * A stroke runs from tip down to tip up (or to the pen leaving proximity
 * with the tip still down: a missed tip-up).  Samples are clamped to the
 * pad's area, their time made non-decreasing; a sample that repeats the
 * last one exactly is dropped.  Strokes are kept until pad_clear.  Past
 * 256 strokes (the stroke engine's limit, core/stroke.h) or 20,000
 * samples (so that `take` stays under the host's 1 MiB for a result) the
 * rest is dropped and counted.
 *
 * Output is the raw capture that mg_stroke_feed_json reads:
 *   {"width": W, "height": H, "strokes": [[[x, y, pressure, t_ms], ...]]}
 * and, for the tablet's live view, one stroke normalised to the area.
 */
#ifndef PAD_ADAPTER_H
#define PAD_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

#include "mgp.h"

#define PAD_MAX_STROKES 256     /* MG_STROKE_MAX_STROKES */
#define PAD_MAX_SAMPLES 20000   /* 100 s at 200 Hz; `take` stays < 1 MiB */
#define PAD_LIVE_POINTS 256     /* at most, in one live stroke event */

enum pad_ev_type {
  PAD_PROX_IN = 1,  /* the pen came near the surface */
  PAD_PROX_OUT,     /* ... and left */
  PAD_TIP_DOWN,     /* touched */
  PAD_TIP_UP,       /* lifted */
  PAD_AXIS          /* moved, or pressure changed */
};

struct pad_event {
  int type;        /* enum pad_ev_type */
  double x, y;     /* in the area's units (mm), from its top-left, y down */
  double pressure; /* 0..1; negative: the tool has none */
  uint32_t t_ms;   /* the event's time */
};

struct pad_sample {
  double x, y, p;
  uint32_t t;
};

struct pad {
  double width, height; /* the area, > 0 */
  struct pad_sample *smp;
  size_t n_smp, cap_smp;
  size_t *ends; /* one past each stroke's last sample; the last may be
                   open (tip down) */
  size_t n_ends, cap_ends;
  int in_prox, tip_down;
  uint32_t last_t;
  uint64_t dropped; /* samples past the limits, since pad_clear */
};

/* What pad_feed did, as bits. */
#define PAD_STROKE_DONE 0x1 /* a stroke ended: the last of pad_strokes() */
#define PAD_PROX_CHANGED 0x2 /* p->in_prox changed */

void pad_init(struct pad *p, double width, double height);
void pad_free(struct pad *p);
/* Forget every stroke (the visitor taps やり直し, or the case took
 * them). */
void pad_clear(struct pad *p);

/* One event: PAD_* bits, 0, or -ENOMEM (the sample is lost, nothing
 * else). */
int pad_feed(struct pad *p, const struct pad_event *e);

/* Completed strokes (a stroke still being drawn is not counted). */
size_t pad_strokes(const struct pad *p);
size_t pad_samples(const struct pad *p); /* in completed strokes */

/* Append the completed strokes as the raw capture JSON. */
void pad_take_json(const struct pad *p, struct mgp_sb *b);
/* Append {"points": [[x, y, p], ...]} of completed stroke k, x and y
 * normalised 0..1 across the area, p -1 when none, at most max_points
 * (evenly picked, the first and last kept). */
void pad_stroke_json(const struct pad *p, size_t k, size_t max_points,
                     struct mgp_sb *b);

#endif
