/*
 * libinput — a signature pad (S1): a pen tablet (Wacom-style, battery-less
 * pen) at a counter, read through libinput's path backend.
 *
 *   [pad "shimin-1-pad"]
 *   plugin  = libinput
 *   counter = shimin-1
 *   device  = /dev/input/by-id/usb-Wacom_Co._Ltd._XXXX-event-stylus
 *
 * libinput's fd is watched on the loop; on readiness libinput_dispatch
 * and its tablet-tool events (proximity, tip, axes with pressure) go
 * through pad_adapter.c, which makes strokes of raw samples in mm of the
 * pad's area (libinput refuses tablets without a resolution, so the size
 * is always known).  The strokes since the last `clear` are kept.
 *
 * Commands:
 *   take   -> {"width": W, "height": H, "strokes": [[[x, y, p, t], ...]]}
 *             the completed strokes, raw (mm, pressure 0..1, ms): what
 *             mg_stroke_feed_json (core/stroke.h) reads; also while the
 *             pad is unplugged (what was drawn stays)
 *   clear  -> OK; the strokes are forgotten (the visitor signs again)
 * Events, to the counters of the section:
 *   pad.proximity {"in": true|false}   the pen came near or left
 *   pad.stroke {"points": [[x, y, p], ...]}   a stroke ended: x and y 0..1
 *              across the pad, p the pressure (-1: none), at most 256
 *              points, for the tablet's live view
 *
 * A signature is personal data: no stroke reaches the log.  A pad
 * unplugged is looked for again every 2 s.
 */
#include <madoguchi/plugin.h>

#include "li_dev.h"
#include "mgp.h"
#include "pad_adapter.h"

#include <libinput.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lp {
  /* config, stored by the host */
  char *device;
  /* runtime */
  const struct mg_host *h;
  struct mg_instance *inst;
  struct li_dev dev; /* the device through libinput (li_dev.h) */
  int full_logged;
  struct pad pad;
  uint64_t strokes_seen;
};

/* ---------------------------------------------------------------------- */
/* The device (li_dev.c calls these)                                       */

/* A pen tablet with a size is taken; its size is the pad's. */
static int pad_added(void *ud, struct libinput_device *dev, int loud) {
  struct lp *lp = ud;
  double w = 0, h = 0;
  if (!libinput_device_has_capability(dev, LIBINPUT_DEVICE_CAP_TABLET_TOOL) ||
      libinput_device_get_size(dev, &w, &h) != 0 || !(w > 0 && h > 0)) {
    libinput_path_remove_device(dev);
    if (loud)
      lp->h->log(lp->inst, MG_PLUGIN_LOG_ERR,
                 "device %s is not a pen tablet (no tablet-tool capability "
                 "with a size; a pen pad's stylus node is named "
                 "…-event-stylus or …-Pen)",
                 lp->device);
    return -1;
  }
  if (lp->pad.width != w || lp->pad.height != h) {
    if (pad_strokes(&lp->pad))
      lp->h->log(lp->inst, MG_PLUGIN_LOG_NOTICE,
                 "another pad (%.0f x %.0f mm): the strokes so far are "
                 "dropped", w, h);
    pad_clear(&lp->pad);
    lp->pad.width = w;
    lp->pad.height = h;
  }
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Pen events to strokes and events                                        */

static void emit_json(struct lp *lp, const char *topic, struct mgp_sb *b) {
  if (b->oom || lp->h->emit(lp->inst, topic, b->p) != 0)
    lp->h->log(lp->inst, MG_PLUGIN_LOG_WARNING,
               "a %s event could not be sent to the tablets", topic);
  free(b->p);
  b->p = NULL;
}

/* One tool event, converted or synthetic (a device that went away). */
static void on_pad_event(struct lp *lp, const struct pad_event *e) {
  struct mgp_sb b = {0};
  int r = pad_feed(&lp->pad, e);
  if (r < 0) {
    lp->h->log(lp->inst, MG_PLUGIN_LOG_WARNING,
               "out of memory: a pen sample was lost");
    return;
  }
  if (lp->pad.dropped && !lp->full_logged) {
    lp->full_logged = 1;
    lp->h->log(lp->inst, MG_PLUGIN_LOG_WARNING,
               "the pad holds %d strokes or %d samples: more are dropped "
               "until `clear`", PAD_MAX_STROKES, PAD_MAX_SAMPLES);
  }
  if (r & PAD_PROX_CHANGED) {
    mgp_sb_puts(&b, lp->pad.in_prox ? "{\"in\":true}" : "{\"in\":false}");
    emit_json(lp, "pad.proximity", &b);
  }
  if (r & PAD_STROKE_DONE) {
    lp->strokes_seen++;
    pad_stroke_json(&lp->pad, pad_strokes(&lp->pad) - 1, PAD_LIVE_POINTS, &b);
    emit_json(lp, "pad.stroke", &b);
  }
}

static void on_tool(struct lp *lp, struct libinput_event *ev,
                    enum libinput_event_type type) {
  struct libinput_event_tablet_tool *t =
      libinput_event_get_tablet_tool_event(ev);
  struct libinput_tablet_tool *tool = libinput_event_tablet_tool_get_tool(t);
  struct pad_event e = {0};
  switch (libinput_tablet_tool_get_type(tool)) {
  case LIBINPUT_TABLET_TOOL_TYPE_ERASER: /* the pen turned round */
  case LIBINPUT_TABLET_TOOL_TYPE_MOUSE:
  case LIBINPUT_TABLET_TOOL_TYPE_LENS:
    return; /* these do not write */
  default:
    break;
  }
  e.x = libinput_event_tablet_tool_get_x(t); /* mm from the top-left */
  e.y = libinput_event_tablet_tool_get_y(t);
  e.pressure = libinput_tablet_tool_has_pressure(tool)
                   ? libinput_event_tablet_tool_get_pressure(t)
                   : -1;
  e.t_ms = libinput_event_tablet_tool_get_time(t);
  if (type == LIBINPUT_EVENT_TABLET_TOOL_PROXIMITY)
    e.type = libinput_event_tablet_tool_get_proximity_state(t) ==
                     LIBINPUT_TABLET_TOOL_PROXIMITY_STATE_IN
                 ? PAD_PROX_IN
                 : PAD_PROX_OUT;
  else if (type == LIBINPUT_EVENT_TABLET_TOOL_TIP)
    e.type = libinput_event_tablet_tool_get_tip_state(t) ==
                     LIBINPUT_TABLET_TOOL_TIP_DOWN
                 ? PAD_TIP_DOWN
                 : PAD_TIP_UP;
  else
    e.type = PAD_AXIS;
  on_pad_event(lp, &e);
}

static void pad_event(void *ud, struct libinput_event *ev) {
  struct lp *lp = ud;
  enum libinput_event_type type = libinput_event_get_type(ev);
  switch (type) {
  case LIBINPUT_EVENT_TABLET_TOOL_PROXIMITY:
  case LIBINPUT_EVENT_TABLET_TOOL_TIP:
  case LIBINPUT_EVENT_TABLET_TOOL_AXIS:
    on_tool(lp, ev, type);
    break;
  default:
    break;
  }
}

/* Unplugged: a stroke being drawn ends there. */
static void pad_removed(void *ud) {
  struct lp *lp = ud;
  struct pad_event out = {.type = PAD_PROX_OUT, .pressure = -1};
  out.t_ms = lp->pad.last_t;
  on_pad_event(lp, &out);
}

static const struct li_dev_ops pad_ops = {
    .noun = "pad",
    .by_id = "event-stylus",
    .example = "/dev/input/event5",
    .added = pad_added,
    .event = pad_event,
    .removed = pad_removed,
};

/* ---------------------------------------------------------------------- */
/* Commands and lifecycle                                                  */

static void answer_error(struct lp *lp, uint64_t req_id, int status,
                         const char *why) {
  struct mgp_sb r = {0};
  mgp_sb_puts(&r, "{\"error\":");
  mgp_sb_jstr(&r, why);
  mgp_sb_puts(&r, "}");
  lp->h->complete(lp->inst, req_id, status, r.oom ? NULL : r.p);
  free(r.p);
}

static int lp_command(void *ctx, uint64_t req_id, const char *op,
                      const char *args) {
  struct lp *lp = ctx;
  struct mgp_sb b = {0};
  char why[128];
  (void)args;
  if (strcmp(op, "take") == 0) {
    if (!(lp->pad.width > 0)) { /* only between a failed start and stop */
      snprintf(why, sizeof(why), "no pad: device %.80s was never opened",
               lp->device);
      answer_error(lp, req_id, MG_PLUGIN_RETRY, why);
      return MG_PLUGIN_PENDING;
    }
    pad_take_json(&lp->pad, &b);
    if (b.oom) {
      free(b.p);
      return MG_PLUGIN_RETRY;
    }
    lp->h->complete(lp->inst, req_id, MG_PLUGIN_OK, b.p);
    free(b.p);
    return MG_PLUGIN_PENDING;
  }
  if (strcmp(op, "clear") == 0) {
    pad_clear(&lp->pad);
    lp->full_logged = 0;
    return MG_PLUGIN_OK;
  }
  snprintf(why, sizeof(why),
           "unknown command \"%.40s\" (a signature pad knows take and clear)",
           op);
  answer_error(lp, req_id, MG_PLUGIN_FATAL, why);
  return MG_PLUGIN_PENDING;
}

static int lp_init(void *ctx, const struct mg_host *host,
                   struct mg_instance *inst) {
  struct lp *lp = ctx;
  /* Everything used here exists since ABI 1.0. */
  if (host->abi_major != MG_PLUGIN_ABI_MAJOR ||
      host->size < offsetof(struct mg_host, instance_id) + sizeof(void *))
    return MG_PLUGIN_FATAL;
  lp->h = host;
  lp->inst = inst;
  li_dev_init(&lp->dev, host, inst, lp->device, 0, &pad_ops, lp);
  pad_init(&lp->pad, 0, 0); /* the size comes with the device */
  return MG_PLUGIN_OK;
}

static int lp_start(void *ctx) {
  struct lp *lp = ctx;
  if (li_dev_open(&lp->dev) != 0)
    return MG_PLUGIN_FATAL; /* stop() follows and frees the context */
  lp->h->log(lp->inst, MG_PLUGIN_LOG_INFO,
             "reading the pen from %s (%.1f x %.1f mm)", lp->device,
             lp->pad.width, lp->pad.height);
  li_dev_drain(&lp->dev); /* DEVICE_ADDED, queued by libinput_path_add_device */
  return MG_PLUGIN_OK;
}

static void lp_stop(void *ctx) {
  struct lp *lp = ctx;
  li_dev_close(&lp->dev); /* closes the device */
}

static void lp_fini(void *ctx) {
  struct lp *lp = ctx;
  pad_free(&lp->pad);
}

static int lp_describe(void *ctx, char *buf, size_t len) {
  struct lp *lp = ctx;
  struct mgp_sb b = {0};
  mgp_sb_puts(&b, "{\"device\":");
  mgp_sb_jstr(&b, lp->device);
  mgp_sb_printf(&b,
                ",\"state\":\"%s\",\"width_mm\":%.1f,\"height_mm\":%.1f,"
                "\"in_proximity\":%s,\"strokes\":%zu,\"samples\":%zu,"
                "\"dropped\":%llu,\"strokes_seen\":%llu}",
                lp->dev.present ? "open" : "absent", lp->pad.width,
                lp->pad.height, lp->pad.in_prox ? "true" : "false",
                pad_strokes(&lp->pad), pad_samples(&lp->pad),
                (unsigned long long)lp->pad.dropped,
                (unsigned long long)lp->strokes_seen);
  return mgp_sb_take(&b, buf, len);
}

static const struct mg_config_item config[] = {
    {MG_CFG_STR, "device", NULL, offsetof(struct lp, device), MG_CFG_REQUIRED,
     0, 0, NULL, mgp_check_abs,
     "The pen tablet's input event device, best its stable name "
     "/dev/input/by-id/usb-…-event-stylus."},
    {0, NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL}};

static const struct mg_plugin plugin = {
    .abi_major = MG_PLUGIN_ABI_MAJOR,
    .abi_minor = MG_PLUGIN_ABI_MINOR,
    .size = sizeof(struct mg_plugin),
    .name = "libinput",
    .version = "1.0.0",
    .kind = MG_PLUGIN_KIND_SIGNATURE_PAD,
    .description = "Reads signatures from a pen tablet (libinput tablet tool)",
    .config = config,
    .ctx_size = sizeof(struct lp),
    .init = lp_init,
    .start = lp_start,
    .command = lp_command,
    .stop = lp_stop,
    .fini = lp_fini,
    .describe = lp_describe,
};

MG_PLUGIN_EXPORT const struct mg_plugin *mg_plugin_entry_v1(void);
MG_PLUGIN_EXPORT const struct mg_plugin *mg_plugin_entry_v1(void) {
  return &plugin;
}
