/*
 * stroke.h — the signature stroke engine (S1): raw pen samples in, the
 * normalised signature of form_pdf.h out.  Pure: no device, no loop.
 *
 * Two feeds use it: the libinput signature-pad plugin (tablet-tool
 * proximity/tip/axis events, devices/libinput) and the counter tablet's
 * browser (Pointer Events, PUT /api/v1/visits/{id}/signature with "raw").
 *
 * What it does, in order:
 *  1. strokes: a stroke runs from pen-down (tip) to pen-up; samples with
 *     no movement are dropped, a sample further than max_jump from the
 *     last one starts a new stroke (a pen that left proximity);
 *  2. smoothing: a centripetal Catmull-Rom pass resampled at an even step
 *     (so fast strokes with few samples stay round), then a light moving
 *     average of the pressure;
 *  3. width: pressure (0..1; none given = 0.5) to a line width between
 *     min_width and max_width (fractions of the box height), with a
 *     gamma so that light touches still show;
 *  4. normalisation: the ink's bounding box (plus the half width) is
 *     fitted into the signature box, aspect kept, centred, so the output
 *     points are 0..1 across a canvas of `aspect` (width/height).
 * The output is deterministic for a given input (golden tests).
 */
#ifndef MG_STROKE_H
#define MG_STROKE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "form_pdf.h" /* struct mg_form_point, mg_form_signature */

/* One raw sample in device units (any origin, y down), pressure 0..1
 * (negative: the device has none), t in ms (monotonic; only order and
 * speed use it). */
struct mg_stroke_sample {
  double x, y, pressure;
  uint32_t t_ms;
};

struct mg_stroke_opts {
  double aspect;     /* the signature box's width/height (0.1..20) */
  double min_width;  /* line width at no pressure, fraction of height */
  double max_width;  /* at full pressure */
  double step;       /* resampling step, fraction of height */
  double max_jump;   /* in device units; <= 0: no limit */
};
/* aspect 3, widths 0.01..0.045, step 0.004, no jump limit. */
void mg_stroke_opts_default(struct mg_stroke_opts *o);

/* An engine collects strokes, then produces the signature. */
struct mg_stroke;
/* NULL opts: the defaults.  NULL with errno EINVAL for options out of
 * range (aspect 0.1..20; 0 <= min_width <= max_width <= 0.2 and
 * max_width < aspect / 2; step 0.0005..0.1), ENOMEM. */
struct mg_stroke *mg_stroke_new(const struct mg_stroke_opts *o);
void mg_stroke_free(struct mg_stroke *s);
/* Pen down starts a stroke; samples between down and up join it.  0,
 * -EINVAL (x or y not finite, pressure NaN or above 1, t_ms before the
 * last sample's, a move with the pen up), -E2BIG (past
 * MG_STROKE_MAX_STROKES strokes or MG_STROKE_MAX_SAMPLES samples),
 * -ENOMEM.  A down while down ends the stroke before; an up while up is
 * nothing. */
int mg_stroke_down(struct mg_stroke *s, const struct mg_stroke_sample *p);
int mg_stroke_move(struct mg_stroke *s, const struct mg_stroke_sample *p);
int mg_stroke_up(struct mg_stroke *s);
/* Drop everything collected (the visitor taps やり直し). */
void mg_stroke_clear(struct mg_stroke *s);
/* Strokes collected, one being drawn included. */
size_t mg_stroke_count(const struct mg_stroke *s);

/* The signature: points (owned by the engine, valid until the next call
 * on it) in the form_pdf.h format; -ENODATA when nothing was drawn,
 * -E2BIG past 256 strokes or 20,000 points (the API's limits), -ENOMEM.
 * A stroke being drawn is included; the engine may be fed more and asked
 * again. */
int mg_stroke_result(struct mg_stroke *s, struct mg_form_signature *out);

/* A PNG of a signature for the screen (transparent background, black
 * ink, drawn as core/form_pdf.c draws it), `height` pixels high and
 * height * aspect wide; malloc'd into *png.  0, -ENODATA (no points),
 * -EINVAL (a malformed signature, height outside 8..8192, wider than
 * 8192), -ENOMEM, -EIO.  Takes the render lock (render_lock.h): never
 * call it with the lock held. */
int mg_stroke_png(const struct mg_form_signature *sig, int height,
                  unsigned char **png, size_t *len);

/* The signature as the body of PUT /api/v1/visits/{id}/signature, the
 * way the daemon stores it (docs/api.md): {"aspect": A, "strokes":
 * [[[x, y, w], ...], ...]}, numbers rounded to 1e-4 as the API keeps
 * them; appended to *out.  0, -ENODATA (no points), -EINVAL (malformed,
 * as mg_stroke_png), -ENOMEM. */
int mg_stroke_json(const struct mg_form_signature *sig, struct mg_buf *out);

/* The limits (S1): the API's, and raw samples (a pad at 200 Hz for more
 * than eight minutes). */
#define MG_STROKE_MAX_STROKES 256
#define MG_STROKE_MAX_POINTS 20000
#define MG_STROKE_MAX_SAMPLES 100000

/* Feed a raw capture, the format of the signature-pad plugin's `take` and
 * of the tablet browser:
 *   {"width": W, "height": H,
 *    "strokes": [[[x, y, pressure, t_ms], ...], ...]}
 * W, H > 0 in device units (pad mm, CSS pixels); x in 0..W, y in 0..H
 * (y down); pressure 0..1, or -1 when the device has none; t_ms 0..2^32-1,
 * not going back.  Each stroke is fed as down, moves, up, appended to what
 * s holds.  All or nothing: on an error s is as before, and err names the
 * place and the rule ("strokes[3][7]: pressure must be from 0 to 1 (or -1:
 * none)").  0, -EINVAL, -E2BIG (over a limit above), -ENOMEM. */
int mg_stroke_feed_json(struct mg_stroke *s, const char *json, size_t len,
                        struct mg_err *err);

#endif
