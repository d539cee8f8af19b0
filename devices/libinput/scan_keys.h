/*
 * scan_keys.h — what a USB slip scanner types, back into text (G5).
 *
 * A barcode/QR scanner is a keyboard: it "types" each code as evdev key
 * presses (shift held for capitals and symbols) and ends it with Enter.
 * The decoder turns those key events into lines, for the layout the
 * scanner is set to (US, the factory default, or Japanese JIS 106); the
 * parser tells a guide slip's payload from anything else.
 *
 * Pure: no I/O, no allocation, no log; used by the scanner plugin
 * (scanner.c) and by tests/unit/test_scanner.c.  A line may be a
 * continuation token, a credential to a case: callers never log it.
 */
#ifndef SCAN_KEYS_H
#define SCAN_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define SCAN_KEYS_LINE_MAX 512 /* characters of one scan; longer is dropped */

enum scan_layout {
  SCAN_LAYOUT_US = 0, /* US QWERTY: what scanners type by default */
  SCAN_LAYOUT_JP = 1  /* Japanese JIS 106/109 (':' and '_' on other keys) */
};

/* What scan_keys_feed() reports. */
enum scan_keys_result {
  SCAN_KEYS_NONE = 0,      /* nothing complete yet */
  SCAN_KEYS_LINE = 1,      /* Enter ended a line: it is in `out` */
  SCAN_KEYS_TOO_LONG = -1, /* Enter ended a line longer than
                              SCAN_KEYS_LINE_MAX: dropped */
  SCAN_KEYS_CONTROL = -2,  /* Enter ended a line holding a control key (Tab,
                              Backspace, Esc, a Ctrl/Alt chord, a function
                              key, a key of no character): dropped */
  SCAN_KEYS_STALE = -3     /* a key came more than `gap` after the previous
                              one of an unfinished line (no Enter): that
                              line was dropped; this key starts a new one */
};

/* Decoder state; zero it with scan_keys_init(). */
struct scan_keys {
  int layout;      /* enum scan_layout */
  uint64_t gap_ms; /* longest pause inside one scan */
  unsigned mods;   /* modifier keys held (bits, see scan_keys.c) */
  int caps;        /* Caps Lock toggled on by this device */
  int bad;         /* 0, or the SCAN_KEYS_* error the line will end with */
  int started;     /* a key of the current line has come */
  uint64_t last_ms;
  size_t n;
  char line[SCAN_KEYS_LINE_MAX + 1];
};

void scan_keys_init(struct scan_keys *k, int layout, uint64_t gap_ms);

/* Forget an unfinished line and the modifiers held (the device went away). */
void scan_keys_reset(struct scan_keys *k);

/* One key event: `code` an evdev key code (linux/input-event-codes.h),
 * `pressed` 1 for a press and 0 for a release, `now_ms` the event's time
 * (monotonic).  On SCAN_KEYS_LINE, `out` (SCAN_KEYS_LINE_MAX + 1 bytes)
 * holds the line, NUL-terminated, printable ASCII only; an empty line
 * (Enter alone) is SCAN_KEYS_NONE.  Returns an enum scan_keys_result. */
int scan_keys_feed(struct scan_keys *k, uint32_t code, int pressed,
                   uint64_t now_ms, char out[SCAN_KEYS_LINE_MAX + 1]);

/* What a scanned line is. */
enum scan_kind {
  SCAN_OTHER = 0,  /* not a guide slip's code */
  SCAN_TOKEN = 1,  /* the slip's QR code: "MG1:" + 43 base64url characters */
  SCAN_NUMBER = 2  /* the procedure number: 8 digits, "12345678" (Code 128)
                      or "1234-5678" (as printed), Luhn check digit right */
};

/* Parse a line.  On SCAN_TOKEN `value` (at least 44 bytes) gets the token
 * without "MG1:"; on SCAN_NUMBER the 8 digits without the hyphen; on
 * SCAN_OTHER it is "".  Returns an enum scan_kind. */
int scan_payload_parse(const char *line, char *value, size_t value_len);

/* 1 when the 8 digits s[0..7] end with their Luhn check digit (the rule of
 * core/jp.c's mg_luhn_ok, which plugins cannot link). */
int scan_luhn_ok(const char *s);

#endif
