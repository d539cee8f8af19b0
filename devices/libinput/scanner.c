/*
 * scanner — a USB barcode/QR scanner on the box reads guide slips (G5).
 *
 *   [scanner "shimin-1-scan"]
 *   plugin  = scanner
 *   counter = shimin-1
 *   device  = /dev/input/by-id/usb-XXXX_Scanner-event-kbd
 *   layout  = us            ; us | jp: the keyboard layout the scanner types
 *   gap     = 1s            ; longest pause inside one scan
 *
 * The scanner is a keyboard: libinput's path backend reads its key events
 * (the fd watched on the loop, nothing blocks); the device is grabbed, so
 * that nothing else sees the keystrokes.  scan_keys.c turns them into
 * lines (Enter ends one) and tells what a line is.  Events, sent to the
 * counters of the section:
 *   slip.scanned {"token": "<43 base64url characters>"}  the slip's QR code
 *                                                        (without "MG1:")
 *   slip.scanned {"number": "12345678"}  its barcode, or the number as
 *                                        printed ("1234-5678"); the Luhn
 *                                        check digit is right
 *   slip.unknown {}  anything else, a line with control keys or one longer
 *                    than 512 characters: no content, ever
 * Either can go to POST /api/v1/visits/resume as it is.
 *
 * A token opens a case: no scanned text reaches the log, only what kind
 * of line it was.  A scanner unplugged is looked for again every 2 s.
 * No commands.
 */
#include <madoguchi/plugin.h>

#include "li_dev.h"
#include "mgp.h"
#include "scan_keys.h"

#include <libinput.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sc {
  /* config, stored by the host */
  char *device;
  int layout;     /* enum scan_layout */
  int64_t gap_ms;
  /* runtime */
  const struct mg_host *h;
  struct mg_instance *inst;
  struct li_dev dev; /* the device, grabbed, through libinput (li_dev.h) */
  struct scan_keys keys;
  uint64_t scans, unknown, dropped;
};

static const char *const layouts[] = {"us", "jp"};

/* ---------------------------------------------------------------------- */
/* The device (li_dev.c calls these)                                       */

/* A keyboard is taken; the keys half-typed before are forgotten. */
static int sc_added(void *ud, struct libinput_device *dev, int loud) {
  struct sc *sc = ud;
  if (!libinput_device_has_capability(dev, LIBINPUT_DEVICE_CAP_KEYBOARD)) {
    libinput_path_remove_device(dev);
    if (loud)
      sc->h->log(sc->inst, MG_PLUGIN_LOG_ERR,
                 "device %s is not a keyboard (a slip scanner types like one; "
                 "is it set to USB keyboard mode?)",
                 sc->device);
    return -1;
  }
  scan_keys_reset(&sc->keys);
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Lines to events                                                         */

static void emit_line(struct sc *sc, const char *line) {
  char value[SCAN_KEYS_LINE_MAX + 1];
  struct mgp_sb b = {0};
  int kind = scan_payload_parse(line, value, sizeof(value));

  if (kind == SCAN_OTHER) {
    sc->unknown++;
    sc->h->log(sc->inst, MG_PLUGIN_LOG_NOTICE,
               "a code that is not a guide slip's was scanned");
    sc->h->emit(sc->inst, "slip.unknown", "{}");
    return;
  }
  sc->scans++;
  mgp_sb_puts(&b, kind == SCAN_TOKEN ? "{\"token\":" : "{\"number\":");
  mgp_sb_jstr(&b, value);
  mgp_sb_puts(&b, "}");
  sc->h->log(sc->inst, MG_PLUGIN_LOG_INFO, "a guide slip's %s was scanned",
             kind == SCAN_TOKEN ? "QR code" : "number");
  if (b.oom || sc->h->emit(sc->inst, "slip.scanned", b.p) != 0)
    sc->h->log(sc->inst, MG_PLUGIN_LOG_WARNING,
               "a scanned slip could not be sent to the tablets");
  explicit_bzero(value, sizeof(value));
  if (b.p)
    explicit_bzero(b.p, b.n);
  free(b.p);
}

static void on_key(struct sc *sc, struct libinput_event_keyboard *kev) {
  char line[SCAN_KEYS_LINE_MAX + 1];
  uint32_t code = libinput_event_keyboard_get_key(kev);
  int pressed = libinput_event_keyboard_get_key_state(kev) ==
                LIBINPUT_KEY_STATE_PRESSED;
  uint64_t ms = libinput_event_keyboard_get_time_usec(kev) / 1000;

  switch (scan_keys_feed(&sc->keys, code, pressed, ms, line)) {
  case SCAN_KEYS_LINE:
    emit_line(sc, line);
    explicit_bzero(line, sizeof(line));
    break;
  case SCAN_KEYS_TOO_LONG:
    sc->dropped++;
    sc->h->log(sc->inst, MG_PLUGIN_LOG_WARNING,
               "a scan longer than %d characters was dropped",
               SCAN_KEYS_LINE_MAX);
    sc->h->emit(sc->inst, "slip.unknown", "{}");
    break;
  case SCAN_KEYS_CONTROL:
    sc->dropped++;
    sc->h->log(sc->inst, MG_PLUGIN_LOG_WARNING,
               "a scan with control keys (Tab, Ctrl, function keys…) was "
               "dropped; set the scanner to send text and Enter only");
    sc->h->emit(sc->inst, "slip.unknown", "{}");
    break;
  case SCAN_KEYS_STALE:
    sc->dropped++;
    sc->h->log(sc->inst, MG_PLUGIN_LOG_WARNING,
               "an unfinished scan (no Enter within %lld ms) was dropped; is "
               "the scanner set to end each code with Enter?",
               (long long)sc->gap_ms);
    break;
  default:
    break;
  }
}

static void sc_event(void *ud, struct libinput_event *ev) {
  struct sc *sc = ud;
  if (libinput_event_get_type(ev) == LIBINPUT_EVENT_KEYBOARD_KEY)
    on_key(sc, libinput_event_get_keyboard_event(ev));
}

/* Unplugged: a scan half-typed is lost. */
static void sc_removed(void *ud) {
  struct sc *sc = ud;
  scan_keys_reset(&sc->keys);
}

static const struct li_dev_ops sc_ops = {
    .noun = "scanner",
    .by_id = "event-kbd",
    .example = "/dev/input/event3",
    .added = sc_added,
    .event = sc_event,
    .removed = sc_removed,
};

/* ---------------------------------------------------------------------- */
/* Lifecycle                                                               */

static int sc_init(void *ctx, const struct mg_host *host,
                   struct mg_instance *inst) {
  struct sc *sc = ctx;
  /* Everything used here exists since ABI 1.0. */
  if (host->abi_major != MG_PLUGIN_ABI_MAJOR ||
      host->size < offsetof(struct mg_host, instance_id) + sizeof(void *))
    return MG_PLUGIN_FATAL;
  sc->h = host;
  sc->inst = inst;
  li_dev_init(&sc->dev, host, inst, sc->device, 1, &sc_ops, sc);
  scan_keys_init(&sc->keys, sc->layout, (uint64_t)sc->gap_ms);
  return MG_PLUGIN_OK;
}

static int sc_start(void *ctx) {
  struct sc *sc = ctx;
  if (li_dev_open(&sc->dev) != 0)
    return MG_PLUGIN_FATAL; /* stop() follows and frees the context */
  sc->h->log(sc->inst, MG_PLUGIN_LOG_INFO, "reading slips from %s (%s layout)",
             sc->device, layouts[sc->layout]);
  li_dev_drain(&sc->dev); /* DEVICE_ADDED, queued by libinput_path_add_device */
  return MG_PLUGIN_OK;
}

static int sc_command(void *ctx, uint64_t req_id, const char *op,
                      const char *args) {
  struct sc *sc = ctx;
  (void)req_id;
  (void)op;
  (void)args;
  sc->h->log(sc->inst, MG_PLUGIN_LOG_WARNING,
             "unknown command (a slip scanner takes no commands)");
  return MG_PLUGIN_FATAL;
}

static void sc_stop(void *ctx) {
  struct sc *sc = ctx;
  li_dev_close(&sc->dev); /* closes (and ungrabs) the device */
  explicit_bzero(&sc->keys, sizeof(sc->keys));
}

static void sc_fini(void *ctx) {
  (void)ctx; /* stop() freed everything */
}

static int sc_describe(void *ctx, char *buf, size_t len) {
  struct sc *sc = ctx;
  struct mgp_sb b = {0};
  mgp_sb_puts(&b, "{\"device\":");
  mgp_sb_jstr(&b, sc->device);
  mgp_sb_printf(&b,
                ",\"state\":\"%s\",\"layout\":\"%s\",\"scans\":%llu,"
                "\"unknown\":%llu,\"dropped\":%llu}",
                sc->dev.present ? "open" : "absent", layouts[sc->layout],
                (unsigned long long)sc->scans,
                (unsigned long long)sc->unknown,
                (unsigned long long)sc->dropped);
  return mgp_sb_take(&b, buf, len);
}

static const struct mg_config_item config[] = {
    {MG_CFG_STR, "device", NULL, offsetof(struct sc, device), MG_CFG_REQUIRED,
     0, 0, NULL, mgp_check_abs,
     "The scanner's input event device, best its stable name "
     "/dev/input/by-id/usb-…-event-kbd."},
    {MG_CFG_ENUM, "layout", "us", offsetof(struct sc, layout), 0, 0, 0, "us|jp",
     NULL,
     "The keyboard layout the scanner types in: us (the factory default of "
     "most scanners) or jp (JIS)."},
    {MG_CFG_DURATION, "gap", "1s", offsetof(struct sc, gap_ms), 0, 50, 10000,
     NULL, NULL,
     "Longest pause between two keystrokes of one scan; text left without "
     "Enter for longer is dropped."},
    {0, NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL}};

static const struct mg_plugin plugin = {
    .abi_major = MG_PLUGIN_ABI_MAJOR,
    .abi_minor = MG_PLUGIN_ABI_MINOR,
    .size = sizeof(struct mg_plugin),
    .name = "scanner",
    .version = "1.0.0",
    .kind = MG_PLUGIN_KIND_SCANNER,
    .description = "Reads guide slips with a USB barcode/QR scanner (libinput)",
    .config = config,
    .ctx_size = sizeof(struct sc),
    .init = sc_init,
    .start = sc_start,
    .command = sc_command,
    .stop = sc_stop,
    .fini = sc_fini,
    .describe = sc_describe,
};

MG_PLUGIN_EXPORT const struct mg_plugin *mg_plugin_entry_v1(void);
MG_PLUGIN_EXPORT const struct mg_plugin *mg_plugin_entry_v1(void) {
  return &plugin;
}
