/*
 * li_dev — one input device read through libinput's path backend on the
 * host's loop: the glue shared by the signature pad (libinput.c, S1) and
 * the slip scanner (scanner.c, G5).  The context holds this one device;
 * its fd is watched, an unplugged device is looked for every 2 s, and what
 * the device sends goes to the plugin's callbacks.  Messages name the
 * device path, never what was drawn or typed.
 */
#ifndef MG_LI_DEV_H
#define MG_LI_DEV_H

#include <madoguchi/plugin.h>

#include <libinput.h>

#define LI_DEV_RETRY_MS 2000 /* how often an unplugged device is looked for */

/* What differs between plugins; a static const table, borrowed. */
struct li_dev_ops {
  /* for "is the <noun> plugged in? a /dev/input/by-id/…-<by_id> path stays
   * the same across replugs" and "an input event device such as <example>
   * is needed" */
  const char *noun, *by_id, *example;
  /* The device was added: 0 it is taken, or -1 when it is not what the
   * plugin reads, having removed it (libinput_path_remove_device) and
   * logged why as an error when `loud`. */
  int (*added)(void *ud, struct libinput_device *dev, int loud);
  /* Any event but LIBINPUT_EVENT_DEVICE_REMOVED; the glue destroys it. */
  void (*event)(void *ud, struct libinput_event *ev);
  /* The device went away (present is already 0); before it is logged. */
  void (*removed)(void *ud);
};

struct li_dev {
  const struct mg_host *host; /* borrowed */
  struct mg_instance *inst;   /* borrowed */
  const char *path;           /* borrowed: the plugin's `device` key */
  int grab;                   /* EVIOCGRAB the device: it is ours alone */
  const struct li_dev_ops *ops;
  void *ud; /* the plugin's context, given to ops */
  /* runtime, owned */
  struct libinput *li;
  struct mg_watch *watch;
  struct mg_timer *retry;
  int present;  /* the device is open (and grabbed) */
  int open_err; /* errno of the last failed open_restricted, 0 none */
  int grab_err; /* ... when it was the EVIOCGRAB that failed */
};

/* From the plugin's init: d (out) is set up, nothing opened yet. */
void li_dev_init(struct li_dev *d, const struct mg_host *host,
                 struct mg_instance *inst, const char *path, int grab,
                 const struct li_dev_ops *ops, void *ud);

/* From start: create the context, add the device (reasons logged as
 * errors) and watch its fd.  0, or a negative errno; li_dev_close (from
 * stop) frees what was made either way.  The caller then logs how it reads
 * and calls li_dev_drain for the events already queued. */
int li_dev_open(struct li_dev *d);

/* Hand the queued events to ops (DEVICE_REMOVED starts the retry timer). */
void li_dev_drain(struct li_dev *d);

/* From stop: unwatch, stop the retry timer, free the context (closing and
 * ungrabbing the device); d can be opened again. */
void li_dev_close(struct li_dev *d);

#endif
