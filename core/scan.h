/*
 * scan.h — reading a guide slip's codes from a camera image (G5).
 *
 * The tablet's camera takes a picture of the slip; the API hands the image
 * here.  It is decoded (PNG with cairo; JPEG through poppler's DCT decoder,
 * so no image library beyond those the slips and forms already use),
 * turned into 8-bit grey and searched by zbar for a QR code and a Code 128
 * barcode — the two codes the slip carries (core/slip.h):
 *   QR code   "MG1:<token>", the continuation token: 43 base64url
 *             characters (core/visit.c)
 *   Code 128  the procedure number, 8 digits, the last a Luhn check digit
 *             (mg_luhn_ok, core/jp.h)
 * Either goes to POST /api/v1/visits/resume as {"token": value} or
 * {"number": value}.
 *
 * Thread-safe and blocking (tens to hundreds of milliseconds for a large
 * photo): call it on a worker thread.  It takes the render lock
 * (render_lock.h) around the cairo and poppler work, so never call it with
 * that lock held.  Nothing is logged; an image of a slip shows residents'
 * data and a token opens a case, so callers must not log `text` or `value`
 * either.
 */
#ifndef MG_SCAN_H
#define MG_SCAN_H

#include <stddef.h>

#include "err.h"

#define MG_SCAN_SIDE_MAX 4096 /* pixels: a larger image is refused */
#define MG_SCAN_TEXT_MAX 512  /* bytes of a code's text kept in the result */

enum mg_scan_kind {
  MG_SCAN_OTHER = 0,  /* a code, but not one of a guide slip */
  MG_SCAN_TOKEN = 1,  /* the slip's QR code */
  MG_SCAN_NUMBER = 2  /* the slip's barcode (or any code holding a procedure
                         number: 8 digits, "1234-5678" too) */
};

/* What mg_scan_image found (out; plain storage, nothing to free). */
struct mg_scan_result {
  int kind;       /* enum mg_scan_kind */
  /* MG_SCAN_TOKEN: the 43-character token without "MG1:";
   * MG_SCAN_NUMBER: the 8 digits, no hyphen; MG_SCAN_OTHER: "". */
  char value[44];
  /* The chosen code's data as decoded: UTF-8, control characters and
   * invalid bytes replaced by '?', cut to MG_SCAN_TEXT_MAX bytes at a
   * character boundary (then `truncated` is 1).  May be a resident's data
   * when the code is not a slip's. */
  char text[MG_SCAN_TEXT_MAX + 1];
  int truncated;
  char symbology[16]; /* zbar's name: "QR-Code", "CODE-128" */
  int codes;          /* how many codes the image held (>= 1) */
};

/*
 * Find the slip's code in an image.
 *   img, len  in: the file's bytes (borrowed): a PNG (any colour type,
 *             depth or interlace cairo reads) or a JPEG (baseline or
 *             progressive, grey or RGB), at most MG_SCAN_SIDE_MAX pixels
 *             wide and high.  Transparent pixels count as white.
 *   out       out: filled on success; zeroed on failure.
 *   err       out, may be NULL: why it failed.
 * When the image holds several codes the first token wins, then the first
 * number, then the first code of any kind (zbar's order).  A JPEG's EXIF
 * orientation is not applied: zbar reads codes turned any way.
 *
 * Returns 0, or:
 *   -EINVAL  not a PNG or JPEG ("image: not a PNG (it must start with
 *            \x89PNG) nor a JPEG (FF D8 FF)"), or one that cannot be
 *            decoded (truncated, a CMYK or 12-bit JPEG, ...)
 *   -EFBIG   "image: larger than 4096x4096" (checked from the header,
 *            before anything is decoded)
 *   -ENOENT  "no QR code or barcode found" (none, or none readable: too
 *            small, blurred, cut off)
 *   -ENOMEM, -EIO (cairo, poppler or zbar failed)
 */
int mg_scan_image(const unsigned char *img, size_t len,
                  struct mg_scan_result *out, struct mg_err *err);

/* The kind of a code's text, the rules above; `value` (44 bytes) gets the
 * token or the digits, or "".  Exposed for the API's tests. */
int mg_scan_parse(const char *text, char value[44]);

#endif
