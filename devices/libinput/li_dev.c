/*
 * li_dev — libinput path-backend glue shared by the signature pad (S1) and
 * the slip scanner (G5); see li_dev.h.
 */
#include "li_dev.h"

#include <linux/input.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------------- */
/* libinput's side                                                         */

static int open_restricted(const char *path, int flags, void *ud) {
  struct li_dev *d = ud;
  int fd = open(path, flags | O_CLOEXEC);
  if (fd < 0) {
    d->open_err = errno;
    d->grab_err = 0;
    return -d->open_err;
  }
  /* Grab the device: the kernel then hands its events to this fd alone.
   * A scanner is a keyboard, and without the grab every scan would also be
   * typed into the box's console (a getty: a login attempt with a case's
   * token as the user name, kept in the auth log) or the desktop session's
   * focused window.  A device already grabbed (EBUSY) is someone else's. */
  if (d->grab && ioctl(fd, EVIOCGRAB, (void *)1) != 0) {
    d->open_err = errno;
    d->grab_err = 1;
    close(fd);
    return -d->open_err;
  }
  return fd;
}

static void close_restricted(int fd, void *ud) {
  struct li_dev *d = ud;
  if (d->grab)
    (void)ioctl(fd, EVIOCGRAB, (void *)0); /* close releases it anyway */
  close(fd);
}

static const struct libinput_interface iface = {
    .open_restricted = open_restricted,
    .close_restricted = close_restricted,
};

/* libinput's own messages (errors only, its default) go to our log; they
 * name devices, never positions or keys. */
static void li_log(struct libinput *li, enum libinput_log_priority prio,
                   const char *fmt, va_list ap) {
  struct li_dev *d = libinput_get_user_data(li);
  char msg[400];
  size_t n;
  (void)prio;
  vsnprintf(msg, sizeof(msg), fmt, ap);
  n = strlen(msg);
  while (n > 0 && msg[n - 1] == '\n')
    msg[--n] = '\0';
  d->host->log(d->inst, MG_PLUGIN_LOG_WARNING, "libinput: %s", msg);
}

/* Add the device to the context.  0, or -1 with the reason logged as an
 * error when `loud` (at start; the retries of an unplugged device stay
 * quiet). */
static int device_add(struct li_dev *d, int loud) {
  const struct mg_host *h = d->host;
  struct libinput_device *dev;
  struct stat st;
  int lvl = MG_PLUGIN_LOG_ERR;

  /* libinput says only "failed" for a missing path: look first. */
  if (stat(d->path, &st) != 0) {
    if (loud)
      h->log(d->inst, lvl,
             "device %s: %s (is the %s plugged in? a /dev/input/by-id/…-%s "
             "path stays the same across replugs)",
             d->path, strerror(errno), d->ops->noun, d->ops->by_id);
    return -1;
  }
  if (!S_ISCHR(st.st_mode)) {
    if (loud)
      h->log(d->inst, lvl,
             "device %s is not a character device (an input event device "
             "such as %s is needed)",
             d->path, d->ops->example);
    return -1;
  }
  d->open_err = 0;
  d->grab_err = 0;
  if (!(dev = libinput_path_add_device(d->li, d->path))) {
    if (!loud)
      return -1;
    if (d->grab_err && d->open_err == EBUSY)
      h->log(d->inst, lvl,
             "device %s is grabbed by another program (EVIOCGRAB: %s)",
             d->path, strerror(d->open_err));
    else if (d->grab_err)
      h->log(d->inst, lvl,
             "device %s is not an input event device (EVIOCGRAB: %s)",
             d->path, strerror(d->open_err));
    else if (d->open_err)
      h->log(d->inst, lvl,
             "device %s: cannot open it: %s (the daemon reads input "
             "devices through the group `input`)",
             d->path, strerror(d->open_err));
    else
      h->log(d->inst, lvl,
             "device %s: libinput does not take it (not an input device "
             "that udev has tagged; is systemd-udevd running?)",
             d->path);
    return -1;
  }
  if (d->ops->added(d->ud, dev, loud) != 0)
    return -1;
  d->present = 1;
  return 0;
}

/* ---------------------------------------------------------------------- */
/* The loop's side                                                         */

static void retry_cb(void *ud);

void li_dev_drain(struct li_dev *d) {
  struct libinput_event *ev;
  while ((ev = libinput_get_event(d->li))) {
    if (libinput_event_get_type(ev) == LIBINPUT_EVENT_DEVICE_REMOVED) {
      /* unplugged (libinput read ENODEV); the only device of this context */
      d->present = 0;
      d->ops->removed(d->ud);
      d->host->log(d->inst, MG_PLUGIN_LOG_WARNING,
                   "device %s went away; looking for it every %d s", d->path,
                   LI_DEV_RETRY_MS / 1000);
      if (!d->retry &&
          d->host->timer_start(d->inst, LI_DEV_RETRY_MS, LI_DEV_RETRY_MS,
                               retry_cb, d, &d->retry) != 0)
        d->retry = NULL; /* the daemon is stopping */
    } else {
      d->ops->event(d->ud, ev);
    }
    libinput_event_destroy(ev);
  }
}

static void on_readable(void *ud, int fd, int revents) {
  struct li_dev *d = ud;
  int rc;
  (void)fd;
  (void)revents;
  if ((rc = libinput_dispatch(d->li)) != 0)
    d->host->log(d->inst, MG_PLUGIN_LOG_WARNING, "libinput_dispatch: %s",
                 strerror(-rc));
  li_dev_drain(d);
}

static void retry_cb(void *ud) {
  struct li_dev *d = ud;
  if (d->present || device_add(d, 0) != 0)
    return;
  d->host->timer_stop(d->retry);
  d->retry = NULL;
  d->host->log(d->inst, MG_PLUGIN_LOG_NOTICE, "device %s is back", d->path);
  li_dev_drain(d);
}

/* ---------------------------------------------------------------------- */
/* Lifecycle                                                               */

void li_dev_init(struct li_dev *d, const struct mg_host *host,
                 struct mg_instance *inst, const char *path, int grab,
                 const struct li_dev_ops *ops, void *ud) {
  memset(d, 0, sizeof(*d));
  d->host = host;
  d->inst = inst;
  d->path = path;
  d->grab = grab;
  d->ops = ops;
  d->ud = ud;
}

int li_dev_open(struct li_dev *d) {
  int rc;
  if (!(d->li = libinput_path_create_context(&iface, d))) {
    d->host->log(d->inst, MG_PLUGIN_LOG_ERR,
                 "cannot create a libinput context");
    return -ENOMEM;
  }
  libinput_log_set_handler(d->li, li_log);
  if (device_add(d, 1) != 0)
    return -ENODEV; /* li_dev_close follows and frees the context */
  if ((rc = d->host->fd_watch(d->inst, libinput_get_fd(d->li), MG_WATCH_READ,
                              on_readable, d, &d->watch)) != 0) {
    d->watch = NULL;
    d->host->log(d->inst, MG_PLUGIN_LOG_ERR, "cannot watch device %s: %s",
                 d->path, strerror(-rc));
    return rc;
  }
  return 0;
}

void li_dev_close(struct li_dev *d) {
  if (d->watch) {
    d->host->fd_unwatch(d->watch);
    d->watch = NULL;
  }
  if (d->retry) {
    d->host->timer_stop(d->retry);
    d->retry = NULL;
  }
  if (d->li) { /* closes (and ungrabs) the device */
    libinput_unref(d->li);
    d->li = NULL;
  }
  d->present = 0;
}
