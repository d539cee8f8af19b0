/*
 * scan.c — a guide slip's QR code or barcode from a camera image (G5).
 * See scan.h.  PNG through cairo, JPEG wrapped in a one-page PDF and
 * rendered by poppler (its DCT decoder is libjpeg's), then zbar on grey.
 */
#include "scan.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairo.h>
#include <poppler.h>
#include <zbar.h>

#include "jp.h"
#include "render_lock.h"

#define TOKEN_LEN 43 /* 32 random bytes in base64url (core/visit.c) */

static const unsigned char PNG_SIG[8] = {0x89, 'P', 'N', 'G', '\r', '\n',
                                         0x1A, '\n'};

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

static unsigned be16(const unsigned char *p) {
  return (unsigned)p[0] << 8 | p[1];
}

static int too_big(unsigned w, unsigned h, struct mg_err *err) {
  return mg_err_set(err, -EFBIG,
                    "image: larger than %dx%d (it is %ux%u; a photo of a slip "
                    "needs far less)",
                    MG_SCAN_SIDE_MAX, MG_SCAN_SIDE_MAX, w, h);
}

/* ---------------------------------------------------------------------- */
/* Headers: the size is known before anything is decoded                   */

static int png_header(const unsigned char *p, size_t len, int *w, int *h,
                      struct mg_err *err) {
  uint32_t pw, ph;
  if (len < 33 || be32(p + 8) != 13 || memcmp(p + 12, "IHDR", 4) != 0)
    return mg_err_set(
        err, -EINVAL, "image: a broken PNG (no IHDR chunk after the signature)");
  pw = be32(p + 16);
  ph = be32(p + 20);
  if (!pw || !ph)
    return mg_err_set(err, -EINVAL, "image: a PNG of no pixels");
  if (pw > MG_SCAN_SIDE_MAX || ph > MG_SCAN_SIDE_MAX)
    return too_big(pw, ph, err);
  *w = (int)pw;
  *h = (int)ph;
  return 0;
}

/* The frame header (SOFn) of a JPEG: size and components. */
static int jpeg_header(const unsigned char *p, size_t len, int *w, int *h,
                       int *nc, struct mg_err *err) {
  size_t i = 2;
  while (i + 4 <= len) {
    unsigned m, seg;
    if (p[i] != 0xFF)
      return mg_err_set(err, -EINVAL,
                        "image: a broken JPEG (no marker at byte %zu)", i);
    m = p[i + 1];
    if (m == 0xFF) { /* fill byte */
      i++;
      continue;
    }
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) { /* no length */
      i += 2;
      continue;
    }
    if (m == 0xD9 || m == 0xDA)
      break; /* image data or its end, and no frame header before */
    seg = be16(p + i + 2);
    if (seg < 2 || i + 2 + seg > len)
      return mg_err_set(err, -EINVAL,
                        "image: a truncated JPEG (segment at byte %zu)", i);
    if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
      unsigned bits, fh, fw, comps;
      if (seg < 8)
        return mg_err_set(err, -EINVAL, "image: a broken JPEG frame header");
      bits = p[i + 4];
      fh = be16(p + i + 5);
      fw = be16(p + i + 7);
      comps = p[i + 9];
      if (m != 0xC0 && m != 0xC1 && m != 0xC2 && m != 0xC9 && m != 0xCA)
        return mg_err_set(err, -EINVAL,
                          "image: a lossless or hierarchical JPEG (SOF%u); "
                          "send a baseline or progressive one, or a PNG",
                          m - 0xC0);
      if (bits != 8)
        return mg_err_set(err, -EINVAL,
                          "image: a %u-bit JPEG; only 8 bits per sample are "
                          "read",
                          bits);
      if (comps != 1 && comps != 3)
        return mg_err_set(err, -EINVAL,
                          "image: a JPEG with %u colour components; only grey "
                          "(1) and colour (3) are read, not CMYK",
                          comps);
      if (!fw || !fh)
        return mg_err_set(err, -EINVAL, "image: a JPEG of no pixels");
      if (fw > MG_SCAN_SIDE_MAX || fh > MG_SCAN_SIDE_MAX)
        return too_big(fw, fh, err);
      *w = (int)fw;
      *h = (int)fh;
      *nc = (int)comps;
      return 0;
    }
    i += 2 + seg;
  }
  return mg_err_set(err, -EINVAL, "image: a broken JPEG (no frame header)");
}

/* ---------------------------------------------------------------------- */
/* Decoding to 8-bit grey (Y800); all with the render lock held            */

/* Luma (BT.601) of an image surface, composited over white. */
static int grey_of(cairo_surface_t *s, unsigned char **out, int *w, int *h) {
  cairo_surface_t *rgb = NULL;
  const unsigned char *data;
  unsigned char *g = NULL;
  int sw, sh, stride, fmt, rc = 0;

  cairo_surface_flush(s);
  fmt = cairo_image_surface_get_format(s);
  sw = cairo_image_surface_get_width(s);
  sh = cairo_image_surface_get_height(s);
  if (fmt != CAIRO_FORMAT_ARGB32 && fmt != CAIRO_FORMAT_RGB24) {
    /* not what cairo's PNG reader makes today; paint it over white */
    cairo_t *cr;
    rgb = cairo_image_surface_create(CAIRO_FORMAT_RGB24, sw, sh);
    cr = cairo_create(rgb);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_source_surface(cr, s, 0, 0);
    cairo_paint(cr);
    rc = cairo_status(cr) != CAIRO_STATUS_SUCCESS ? -ENOMEM : 0;
    cairo_destroy(cr);
    if (rc)
      goto out;
    cairo_surface_flush(rgb);
    s = rgb;
    fmt = CAIRO_FORMAT_RGB24;
  }
  data = cairo_image_surface_get_data(s);
  stride = cairo_image_surface_get_stride(s);
  if (!data || !(g = malloc((size_t)sw * (size_t)sh))) {
    rc = -ENOMEM;
    goto out;
  }
  for (int y = 0; y < sh; y++) {
    const uint32_t *row =
        (const uint32_t *)(const void *)(data + (size_t)y * (size_t)stride);
    for (int x = 0; x < sw; x++) {
      uint32_t px = row[x];
      unsigned a = fmt == CAIRO_FORMAT_ARGB32 ? px >> 24 : 255u;
      unsigned r = (px >> 16) & 255u, gr = (px >> 8) & 255u, b = px & 255u;
      /* premultiplied: adding (255 - a) puts it over white */
      unsigned v = ((77u * r + 150u * gr + 29u * b) >> 8) + (255u - a);
      g[(size_t)y * (size_t)sw + (size_t)x] =
          (unsigned char)(v > 255 ? 255 : v);
    }
  }
  *out = g;
  *w = sw;
  *h = sh;
  g = NULL;
out:
  free(g);
  if (rgb)
    cairo_surface_destroy(rgb);
  return rc;
}

struct rd {
  const unsigned char *p;
  size_t n, i;
};

static cairo_status_t png_read(void *closure, unsigned char *data,
                               unsigned int length) {
  struct rd *r = closure;
  if (r->n - r->i < length)
    return CAIRO_STATUS_READ_ERROR;
  memcpy(data, r->p + r->i, length);
  r->i += length;
  return CAIRO_STATUS_SUCCESS;
}

static int decode_png(const unsigned char *img, size_t len, unsigned char **g,
                      int *w, int *h, struct mg_err *err) {
  struct rd r = {img, len, 0};
  cairo_surface_t *s;
  cairo_status_t st;
  int rc;

  mg__render_lock();
  s = cairo_image_surface_create_from_png_stream(png_read, &r);
  st = cairo_surface_status(s);
  if (st != CAIRO_STATUS_SUCCESS)
    rc = mg_err_set(err, st == CAIRO_STATUS_NO_MEMORY ? -ENOMEM : -EINVAL,
                    "image: the PNG cannot be decoded (%s)",
                    cairo_status_to_string(st));
  else if ((rc = grey_of(s, g, w, h)))
    mg_err_set(err, rc, "image: out of memory");
  cairo_surface_destroy(s);
  mg__render_unlock();
  return rc;
}

/* A one-page PDF of exactly the JPEG, one point per pixel: poppler decodes
 * it (DCTDecode) as it decodes photos in the city's PDFs. */
static int jpeg_pdf(const unsigned char *img, size_t len, int w, int h, int nc,
                    char **out, size_t *out_len) {
  char head[768], content[96], tail[512];
  size_t off[6], n = 0, hl, cl, tl;
  char *pdf;
  int k;

  k = snprintf(content, sizeof(content), "q %d 0 0 %d 0 0 cm /I Do Q\n", w, h);
  cl = (size_t)k;
  /* objects 1-3 and the start of 4 */
  hl = 0;
  k = snprintf(head, sizeof(head), "%%PDF-1.4\n%%\xE2\xE3\xCF\xD3\n");
  hl += (size_t)k;
  off[1] = hl;
  k = snprintf(head + hl, sizeof(head) - hl,
               "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
  hl += (size_t)k;
  off[2] = hl;
  k = snprintf(head + hl, sizeof(head) - hl,
               "2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n");
  hl += (size_t)k;
  off[3] = hl;
  k = snprintf(head + hl, sizeof(head) - hl,
               "3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] "
               "/Resources << /XObject << /I 4 0 R >> >> /Contents 5 0 R >>\n"
               "endobj\n",
               w, h);
  hl += (size_t)k;
  off[4] = hl;
  k = snprintf(head + hl, sizeof(head) - hl,
               "4 0 obj\n<< /Type /XObject /Subtype /Image /Width %d /Height "
               "%d /ColorSpace /%s /BitsPerComponent 8 /Filter /DCTDecode "
               "/Length %zu >>\nstream\n",
               w, h, nc == 1 ? "DeviceGray" : "DeviceRGB", len);
  hl += (size_t)k;
  off[5] = hl + len + strlen("\nendstream\nendobj\n");
  k = snprintf(tail, sizeof(tail),
               "\nendstream\nendobj\n5 0 obj\n<< /Length %zu >>\nstream\n",
               cl);
  tl = (size_t)k;
  if (!(pdf = malloc(hl + len + tl + cl + 400)))
    return -ENOMEM;
  memcpy(pdf, head, hl);
  n = hl;
  memcpy(pdf + n, img, len);
  n += len;
  memcpy(pdf + n, tail, tl);
  n += tl;
  memcpy(pdf + n, content, cl);
  n += cl;
  size_t xref = n + strlen("endstream\nendobj\n");
  n += (size_t)sprintf(pdf + n, "endstream\nendobj\nxref\n0 6\n"
                                "0000000000 65535 f \n");
  for (int i = 1; i <= 5; i++)
    n += (size_t)sprintf(pdf + n, "%010zu 00000 n \n", off[i]);
  n += (size_t)sprintf(pdf + n,
                       "trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n%zu\n"
                       "%%%%EOF\n",
                       xref);
  *out = pdf;
  *out_len = n;
  return 0;
}

static int decode_jpeg(const unsigned char *img, size_t len, int w, int h,
                       int nc, unsigned char **g, int *gw, int *gh,
                       struct mg_err *err) {
  char *pdf = NULL;
  size_t pdf_len = 0;
  GBytes *bytes = NULL;
  GError *gerr = NULL;
  PopplerDocument *doc = NULL;
  PopplerPage *page = NULL;
  cairo_surface_t *s = NULL;
  cairo_t *cr = NULL;
  int rc, locked = 0;

  if ((rc = jpeg_pdf(img, len, w, h, nc, &pdf, &pdf_len))) {
    mg_err_set(err, rc, "image: out of memory");
    goto out;
  }
  mg__render_lock();
  locked = 1;
  bytes = g_bytes_new_static(pdf, pdf_len);
  doc = poppler_document_new_from_bytes(bytes, NULL, &gerr);
  if (!doc || !(page = poppler_document_get_page(doc, 0))) {
    rc = mg_err_set(err, -EIO, "image: the JPEG cannot be read (%s)",
                    gerr ? gerr->message : "poppler");
    goto out;
  }
  s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
  cr = cairo_create(s);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  poppler_page_render(page, cr);
  if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
    rc = mg_err_set(err, -EIO, "image: the JPEG cannot be drawn (%s)",
                    cairo_status_to_string(cairo_status(cr)));
    goto out;
  }
  if ((rc = grey_of(s, g, gw, gh)))
    mg_err_set(err, rc, "image: out of memory");
out:
  if (cr)
    cairo_destroy(cr);
  if (s)
    cairo_surface_destroy(s);
  if (page)
    g_object_unref(page);
  if (doc)
    g_object_unref(doc);
  if (bytes)
    g_bytes_unref(bytes);
  if (locked)
    mg__render_unlock();
  if (gerr)
    g_error_free(gerr);
  free(pdf);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* What a code says                                                        */

/* Bytes of the valid UTF-8 sequence at p (at most n), 0 when invalid. */
static size_t utf8_len(const unsigned char *p, size_t n) {
  size_t k;
  uint32_t c;
  if (p[0] < 0x80)
    return 1;
  if (p[0] >= 0xC2 && p[0] <= 0xDF)
    k = 2, c = p[0] & 0x1Fu;
  else if (p[0] >= 0xE0 && p[0] <= 0xEF)
    k = 3, c = p[0] & 0x0Fu;
  else if (p[0] >= 0xF0 && p[0] <= 0xF4)
    k = 4, c = p[0] & 0x07u;
  else
    return 0;
  if (k > n)
    return 0;
  for (size_t i = 1; i < k; i++) {
    if ((p[i] & 0xC0) != 0x80)
      return 0;
    c = c << 6 | (p[i] & 0x3Fu);
  }
  if ((k == 3 && (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF))) ||
      (k == 4 && (c < 0x10000 || c > 0x10FFFF)))
    return 0;
  return k;
}

static void text_copy(struct mg_scan_result *out, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, o = 0;
  while (i < n) {
    size_t k = utf8_len(p + i, n - i);
    int plain = k > 0 && !(k == 1 && (p[i] < 0x20 || p[i] == 0x7F));
    size_t put = plain ? k : 1;
    if (o + put > MG_SCAN_TEXT_MAX) {
      out->truncated = 1;
      break;
    }
    if (plain)
      memcpy(out->text + o, p + i, k);
    else
      out->text[o] = '?';
    o += put;
    i += k ? k : 1;
  }
  out->text[o] = '\0';
}

int mg_scan_parse(const char *t, char value[44]) {
  static const char b64url[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  static const char digits[] = "0123456789";
  size_t n = strlen(t);
  char d[9];

  value[0] = '\0';
  if (strncmp(t, "MG1:", 4) == 0) {
    if (n != 4 + TOKEN_LEN || strspn(t + 4, b64url) != TOKEN_LEN)
      return MG_SCAN_OTHER;
    memcpy(value, t + 4, TOKEN_LEN + 1);
    return MG_SCAN_TOKEN;
  }
  if (n == 8 && strspn(t, digits) == 8) {
    memcpy(d, t, 9);
  } else if (n == 9 && t[4] == '-' && strspn(t, digits) == 4 &&
             strspn(t + 5, digits) == 4) {
    memcpy(d, t, 4);
    memcpy(d + 4, t + 5, 5);
  } else {
    return MG_SCAN_OTHER;
  }
  if (!mg_luhn_ok(d))
    return MG_SCAN_OTHER;
  memcpy(value, d, 9);
  return MG_SCAN_NUMBER;
}

static int rank(int kind) {
  return kind == MG_SCAN_TOKEN ? 2 : kind == MG_SCAN_NUMBER ? 1 : 0;
}

/* zbar over the grey image: QR codes and Code 128 only. */
static int find_codes(const unsigned char *g, int w, int h,
                      struct mg_scan_result *out, struct mg_err *err) {
  zbar_image_scanner_t *zs = zbar_image_scanner_create();
  zbar_image_t *zi = zbar_image_create();
  const zbar_symbol_t *best = NULL, *sym;
  int best_kind = MG_SCAN_OTHER, n, rc = 0;
  char value[44] = "";

  if (!zs || !zi) {
    rc = mg_err_set(err, -ENOMEM, "image: out of memory");
    goto out;
  }
  zbar_image_scanner_set_config(zs, ZBAR_NONE, ZBAR_CFG_ENABLE, 0);
  zbar_image_scanner_set_config(zs, ZBAR_QRCODE, ZBAR_CFG_ENABLE, 1);
  zbar_image_scanner_set_config(zs, ZBAR_CODE128, ZBAR_CFG_ENABLE, 1);
  zbar_image_set_format(zi, zbar_fourcc('Y', '8', '0', '0'));
  zbar_image_set_size(zi, (unsigned)w, (unsigned)h);
  zbar_image_set_data(zi, g, (unsigned long)w * (unsigned long)h, NULL);
  n = zbar_scan_image(zs, zi);
  if (n < 0) {
    rc = mg_err_set(err, -EIO, "image: zbar failed");
    goto out;
  }
  if (n == 0) {
    rc = mg_err_set(err, -ENOENT, "no QR code or barcode found");
    goto out;
  }
  /* a token, else a number, else the first code */
  for (sym = zbar_image_first_symbol(zi); sym; sym = zbar_symbol_next(sym)) {
    char t[MG_SCAN_TEXT_MAX + 1];
    unsigned len = zbar_symbol_get_data_length(sym);
    int kind = MG_SCAN_OTHER;
    value[0] = '\0';
    out->codes++;
    if (len < sizeof(t)) {
      memcpy(t, zbar_symbol_get_data(sym), len);
      t[len] = '\0';
      if (strlen(t) == len) /* no NUL inside */
        kind = mg_scan_parse(t, value);
    }
    if (!best || rank(kind) > rank(best_kind)) {
      best = sym;
      best_kind = kind;
      memcpy(out->value, value, sizeof(value));
    }
  }
  out->kind = best_kind;
  if (best_kind == MG_SCAN_OTHER)
    out->value[0] = '\0';
  text_copy(out, zbar_symbol_get_data(best), zbar_symbol_get_data_length(best));
  snprintf(out->symbology, sizeof(out->symbology), "%s",
           zbar_get_symbol_name(zbar_symbol_get_type(best)));
out:
  if (zi)
    zbar_image_destroy(zi); /* the data is ours: no cleanup handler set */
  if (zs)
    zbar_image_scanner_destroy(zs);
  return rc;
}

int mg_scan_image(const unsigned char *img, size_t len,
                  struct mg_scan_result *out, struct mg_err *err) {
  unsigned char *g = NULL;
  int w = 0, h = 0, gw = 0, gh = 0, nc = 0, rc;

  memset(out, 0, sizeof(*out));
  if (img && len >= sizeof(PNG_SIG) && memcmp(img, PNG_SIG, 8) == 0) {
    if ((rc = png_header(img, len, &w, &h, err)) ||
        (rc = decode_png(img, len, &g, &gw, &gh, err)))
      goto out;
  } else if (img && len >= 4 && img[0] == 0xFF && img[1] == 0xD8 &&
             img[2] == 0xFF) {
    if ((rc = jpeg_header(img, len, &w, &h, &nc, err)) ||
        (rc = decode_jpeg(img, len, w, h, nc, &g, &gw, &gh, err)))
      goto out;
  } else {
    rc = mg_err_set(err, -EINVAL,
                    "image: not a PNG (it must start with \\x89PNG) nor a JPEG "
                    "(FF D8 FF)");
    goto out;
  }
  rc = find_codes(g, gw, gh, out, err);
out:
  free(g);
  if (rc)
    memset(out, 0, sizeof(*out));
  return rc;
}
