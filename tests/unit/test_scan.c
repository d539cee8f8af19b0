/*
 * test_scan.c — a guide slip's codes from camera images (core/scan.h, G5).
 *
 * A real slip is rendered with mg_slip_render and its first page
 * rasterised at 150 dpi with poppler-glib, as a tablet's camera would
 * see a clean print; then made photo-like (smaller, turned, grey paper,
 * uneven light, noise), transparent, or JPEG (pdftoppm, colour and grey).
 * Each must give the slip's token; with the QR code painted over, the
 * barcode's number.  Codes that are not a slip's (QR codes made here with
 * libqrencode), garbage, blank, truncated and oversized images give the
 * kinds and the errors scan.h promises.  The family is fictional.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cairo.h>
#include <cmocka.h>
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <poppler.h>
#include <qrencode.h>
#include <zbar.h>

#include "render_lock.h"
#include "render_test.h"
#include "scan.h"
#include "slip.h"

#define TOKEN "JgGsVWL5VJeNTCJ9McRPLmR3PUfRWD77Jqx_qrOP0Xs"
#define PAYLOAD "MG1:" TOKEN
#define NUMBER "20481354" /* Luhn check digit 4 */

struct buf {
  unsigned char *p;
  size_t n, cap;
};

static cairo_status_t buf_write(void *closure, const unsigned char *data,
                                unsigned int len) {
  struct buf *b = closure;
  if (b->n + len > b->cap) {
    b->cap = (b->n + len) * 2;
    b->p = realloc(b->p, b->cap);
    if (!b->p)
      return CAIRO_STATUS_WRITE_ERROR;
  }
  memcpy(b->p + b->n, data, len);
  b->n += len;
  return CAIRO_STATUS_SUCCESS;
}

/* The slip of the fictional 山田 family, rendered once. */
static unsigned char *slip_pdf;
static size_t slip_len;
static char tmpdir[64];

static const char *const DOCS[] = {"転出証明書", "本人確認書類"};
static const struct mg_slip_item ITEMS[] = {
    {"転入届", 0, "市民課 1番窓口", "1F", "", DOCS, 2, "", "14日以内",
     "山田 太郎", "pending"},
    {"国民健康保険の加入", 0, "保険年金課 5番窓口", "1F", "", NULL, 0, "", "",
     "", "pending"},
};

static void render_slip(unsigned char **pdf, size_t *len) {
  struct mg_slip s = {
      .city = "周南市 窓口手続パック",
      .title = "転入（市外から引っ越してきた）",
      .number = NUMBER,
      .qr_payload = PAYLOAD,
      .issued_at = "2026年11月25日 10:32",
      .counter = "市民課 1番窓口",
      .resident = "山田 太郎 様",
      .address = "",
      .free_text = "",
      .items = ITEMS,
      .n_items = 2,
  };
  struct mg_err err = {{0}};
  int rc = mg_slip_render(&s, pdf, len, &err);
  if (rc)
    fail_msg("mg_slip_render: %d %s", rc, err.msg);
}

static int group_setup(void **state) {
  (void)state;
  render_slip(&slip_pdf, &slip_len);
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/mg-scan.XXXXXX");
  if (!mkdtemp(tmpdir))
    return -1;
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  free(slip_pdf);
  return rt_rm_rf(tmpdir);
}

/* Page 1 at dpi: RGB on white, or ARGB on nothing (transparent). */
static cairo_surface_t *raster(int dpi, int transparent) {
  GError *gerr = NULL;
  GBytes *bytes = g_bytes_new_static(slip_pdf, slip_len);
  cairo_surface_t *s;
  double w, h;
  mg__render_lock();
  PopplerDocument *doc = poppler_document_new_from_bytes(bytes, NULL, &gerr);
  assert_non_null(doc);
  PopplerPage *page = poppler_document_get_page(doc, 0);
  poppler_page_get_size(page, &w, &h);
  s = cairo_image_surface_create(transparent ? CAIRO_FORMAT_ARGB32
                                             : CAIRO_FORMAT_RGB24,
                                 (int)(w * dpi / 72.0), (int)(h * dpi / 72.0));
  cairo_t *cr = cairo_create(s);
  if (!transparent) {
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
  }
  cairo_scale(cr, dpi / 72.0, dpi / 72.0);
  poppler_page_render_for_printing(page, cr);
  assert_int_equal(cairo_status(cr), CAIRO_STATUS_SUCCESS);
  cairo_destroy(cr);
  g_object_unref(page);
  g_object_unref(doc);
  mg__render_unlock();
  g_bytes_unref(bytes);
  return s;
}

static struct buf png_of(cairo_surface_t *s) {
  struct buf b = {0};
  mg__render_lock();
  assert_int_equal(cairo_surface_write_to_png_stream(s, buf_write, &b),
                   CAIRO_STATUS_SUCCESS);
  cairo_surface_destroy(s);
  mg__render_unlock();
  return b;
}

static void expect_slip(const struct buf *b, const char *what) {
  struct mg_scan_result r;
  struct mg_err err = {{0}};
  int rc = mg_scan_image(b->p, b->n, &r, &err);
  if (rc)
    fail_msg("%s: %d %s", what, rc, err.msg);
  if (r.kind != MG_SCAN_TOKEN || strcmp(r.value, TOKEN) != 0)
    fail_msg("%s: kind %d value \"%s\" text \"%s\"", what, r.kind, r.value,
             r.text);
  assert_string_equal(r.text, PAYLOAD);
  assert_string_equal(r.symbology, "QR-Code");
  assert_int_equal(r.truncated, 0);
}

/* ---------------------------------------------------------------------- */

static void test_slip_png(void **state) {
  (void)state;
  struct buf b = png_of(raster(150, 0));
  struct mg_scan_result r;
  expect_slip(&b, "150 dpi");
  /* both codes are on the slip; the QR code's token wins */
  assert_int_equal(mg_scan_image(b.p, b.n, &r, NULL), 0);
  assert_int_equal(r.codes, 2);
  free(b.p);
}

/* The barcode alone: the QR code, found with zbar here, painted over. */
static void test_barcode(void **state) {
  (void)state;
  cairo_surface_t *s = raster(150, 0);
  int w, h, stride, x0 = 1 << 30, y0 = 1 << 30, x1 = 0, y1 = 0;
  unsigned char *g, *data;

  mg__render_lock();
  cairo_surface_flush(s);
  w = cairo_image_surface_get_width(s);
  h = cairo_image_surface_get_height(s);
  stride = cairo_image_surface_get_stride(s);
  data = cairo_image_surface_get_data(s);
  g = malloc((size_t)w * (size_t)h);
  assert_non_null(g);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      g[y * w + x] = data[y * stride + x * 4 + 1]; /* green is enough */
  mg__render_unlock();
  zbar_image_scanner_t *zs = zbar_image_scanner_create();
  zbar_image_scanner_set_config(zs, ZBAR_NONE, ZBAR_CFG_ENABLE, 0);
  zbar_image_scanner_set_config(zs, ZBAR_QRCODE, ZBAR_CFG_ENABLE, 1);
  zbar_image_t *zi = zbar_image_create();
  zbar_image_set_format(zi, zbar_fourcc('Y', '8', '0', '0'));
  zbar_image_set_size(zi, (unsigned)w, (unsigned)h);
  zbar_image_set_data(zi, g, (unsigned long)w * (unsigned long)h, NULL);
  assert_int_equal(zbar_scan_image(zs, zi), 1);
  const zbar_symbol_t *q = zbar_image_first_symbol(zi);
  for (unsigned i = 0; i < zbar_symbol_get_loc_size(q); i++) {
    int x = zbar_symbol_get_loc_x(q, i), y = zbar_symbol_get_loc_y(q, i);
    x0 = x < x0 ? x : x0;
    y0 = y < y0 ? y : y0;
    x1 = x > x1 ? x : x1;
    y1 = y > y1 ? y : y1;
  }
  zbar_image_destroy(zi);
  zbar_image_scanner_destroy(zs);
  free(g);
  assert_true(x1 > x0 && y1 > y0);

  mg__render_lock();
  cairo_t *cr = cairo_create(s);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_rectangle(cr, x0 - 20, y0 - 20, x1 - x0 + 40, y1 - y0 + 40);
  cairo_fill(cr);
  cairo_destroy(cr);
  mg__render_unlock();
  struct buf b = png_of(s);
  struct mg_scan_result r;
  struct mg_err err = {{0}};
  int rc = mg_scan_image(b.p, b.n, &r, &err);
  if (rc)
    fail_msg("%d %s", rc, err.msg);
  assert_int_equal(r.kind, MG_SCAN_NUMBER);
  assert_string_equal(r.value, NUMBER);
  assert_string_equal(r.text, NUMBER);
  assert_string_equal(r.symbology, "CODE-128");
  assert_int_equal(r.codes, 1);
  free(b.p);
}

/* A photo, more or less: 60 % of the size, turned 4 degrees, on grey paper
 * lit from one side, with noise. */
static void test_photo(void **state) {
  (void)state;
  cairo_surface_t *page = raster(150, 0);
  mg__render_lock();
  int pw = cairo_image_surface_get_width(page);
  int ph = cairo_image_surface_get_height(page);
  int w = (int)(pw * 0.6) + 80, h = (int)(ph * 0.6) + 80;
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
  cairo_t *cr = cairo_create(s);
  cairo_set_source_rgb(cr, 0.55, 0.5, 0.45); /* the desk */
  cairo_paint(cr);
  cairo_translate(cr, w / 2.0, h / 2.0);
  cairo_rotate(cr, 4.0 * M_PI / 180.0);
  cairo_scale(cr, 0.6, 0.6);
  cairo_translate(cr, -pw / 2.0, -ph / 2.0);
  cairo_set_source_surface(cr, page, 0, 0);
  cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_GOOD);
  cairo_paint_with_alpha(cr, 0.9); /* greyish paper */
  cairo_identity_matrix(cr);
  cairo_pattern_t *light = cairo_pattern_create_linear(0, 0, w, 0);
  cairo_pattern_add_color_stop_rgba(light, 0, 0, 0, 0, 0.25);
  cairo_pattern_add_color_stop_rgba(light, 1, 0, 0, 0, 0);
  cairo_set_source(cr, light);
  cairo_paint(cr);
  cairo_pattern_destroy(light);
  cairo_destroy(cr);
  cairo_surface_destroy(page);
  cairo_surface_flush(s);
  unsigned char *d = cairo_image_surface_get_data(s);
  int stride = cairo_image_surface_get_stride(s);
  uint32_t x = 2463534242u;
  for (int y = 0; y < h; y++)
    for (int i = 0; i < w * 4; i++) {
      if (i % 4 == 3)
        continue;
      x ^= x << 13, x ^= x >> 17, x ^= x << 5; /* xorshift: fixed noise */
      int v = d[y * stride + i] + (int)(x % 41) - 20;
      d[y * stride + i] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
  cairo_surface_mark_dirty(s);
  mg__render_unlock();
  struct buf b = png_of(s);
  expect_slip(&b, "photo-like");
  free(b.p);
}

/* A transparent background counts as white (black on nothing would
 * otherwise be black on black). */
static void test_transparent(void **state) {
  (void)state;
  struct buf b = png_of(raster(120, 1));
  expect_slip(&b, "transparent PNG");
  free(b.p);
}

/* Page 1 of the slip as a JPEG made by pdftoppm with `opts`. */
static struct buf jpeg_of(const char *opts) {
  char path[128], cmd[512];
  rt_write_file(tmpdir, "slip.pdf", slip_pdf, slip_len);
  snprintf(path, sizeof(path), "%s/slip.pdf", tmpdir);
  snprintf(cmd, sizeof(cmd),
           "pdftoppm -r 150 -jpeg %s -f 1 -l 1 -singlefile '%s' '%s/page'",
           opts, path, tmpdir);
  assert_int_equal(system(cmd), 0);
  snprintf(path, sizeof(path), "%s/page.jpg", tmpdir);
  struct buf b = {0};
  b.p = (unsigned char *)rt_read_file(path, &b.n);
  assert_true(b.n > 1000 && b.p[0] == 0xFF && b.p[1] == 0xD8);
  return b;
}

static void test_jpeg(void **state) {
  (void)state;
  const char *const modes[] = {"", "-gray", "-jpegopt progressive=y"};
  for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
    struct buf b = jpeg_of(modes[i]);
    expect_slip(&b, modes[i][0] ? modes[i] : "JPEG");
    /* cut in its headers: an error; cut in its data: whatever the part
     * that arrived shows (libjpeg pads the rest), never a crash */
    struct mg_scan_result r;
    struct mg_err err = {{0}};
    assert_int_equal(mg_scan_image(b.p, 100, &r, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "JPEG"));
    assert_int_equal(r.kind, 0);
    int rc = mg_scan_image(b.p, b.n / 3, &r, &err);
    assert_true(rc == 0 || rc == -ENOENT);
    free(b.p);
  }
}

/* A QR code of `data` (n bytes), 6 px per module, as PNG. */
static struct buf qr_png(const char *data, size_t n) {
  QRcode *q = QRcode_encodeData((int)n, (const unsigned char *)data, 0,
                                QR_ECLEVEL_M);
  assert_non_null(q);
  int side = (q->width + 8) * 6;
  mg__render_lock();
  cairo_surface_t *s =
      cairo_image_surface_create(CAIRO_FORMAT_RGB24, side, side);
  cairo_t *cr = cairo_create(s);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_set_source_rgb(cr, 0, 0, 0);
  for (int y = 0; y < q->width; y++)
    for (int x = 0; x < q->width; x++)
      if (q->data[y * q->width + x] & 1)
        cairo_rectangle(cr, (x + 4) * 6, (y + 4) * 6, 6, 6);
  cairo_fill(cr);
  cairo_destroy(cr);
  mg__render_unlock();
  QRcode_free(q);
  return png_of(s);
}

static void expect_code(const char *data, int kind, const char *value,
                        const char *text) {
  struct buf b = qr_png(data, strlen(data));
  struct mg_scan_result r;
  struct mg_err err = {{0}};
  int rc = mg_scan_image(b.p, b.n, &r, &err);
  if (rc)
    fail_msg("\"%s\": %d %s", data, rc, err.msg);
  if (r.kind != kind || strcmp(r.value, value) || strcmp(r.text, text))
    fail_msg("\"%s\": kind %d value \"%s\" text \"%s\"", data, r.kind,
             r.value, r.text);
  assert_int_equal(r.codes, 1);
  free(b.p);
}

static void test_other_codes(void **state) {
  (void)state;
  expect_code("https://www.city.shunan.example/", MG_SCAN_OTHER, "",
              "https://www.city.shunan.example/");
  expect_code("2048-1354", MG_SCAN_NUMBER, NUMBER, "2048-1354");
  expect_code("2048-1357", MG_SCAN_OTHER, "", "2048-1357"); /* check digit */
  expect_code("MG1:" TOKEN "x", MG_SCAN_OTHER, "", "MG1:" TOKEN "x");
  expect_code("a\tb\x7f" "c", MG_SCAN_OTHER, "", "a?b?c");
  expect_code("山田 太郎", MG_SCAN_OTHER, "", "山田 太郎");
  /* longer than 512 bytes: cut, said so */
  char big[701];
  memset(big, 'A', 700);
  big[700] = '\0';
  struct buf b = qr_png(big, 700);
  struct mg_scan_result r;
  assert_int_equal(mg_scan_image(b.p, b.n, &r, NULL), 0);
  assert_int_equal(r.kind, MG_SCAN_OTHER);
  assert_int_equal(r.truncated, 1);
  assert_int_equal(strlen(r.text), MG_SCAN_TEXT_MAX);
  free(b.p);
}

static void expect_fail(const unsigned char *img, size_t len, int want,
                        const char *msg) {
  struct mg_scan_result r;
  struct mg_err err = {{0}};
  memset(&r, 0x55, sizeof(r));
  int rc = mg_scan_image(img, len, &r, &err);
  if (rc != want || !strstr(err.msg, msg))
    fail_msg("got %d \"%s\", want %d \"%s\"", rc, err.msg, want, msg);
  assert_int_equal(r.kind, 0);
  assert_int_equal(r.codes, 0);
  assert_string_equal(r.value, "");
}

static struct buf blank_png(int w, int h) {
  mg__render_lock();
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
  cairo_t *cr = cairo_create(s);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_destroy(cr);
  mg__render_unlock();
  return png_of(s);
}

static void test_errors(void **state) {
  (void)state;
  const char *bad = "GIF89a this is not an image we take";
  expect_fail((const unsigned char *)bad, strlen(bad), -EINVAL,
              "image: not a PNG (it must start with \\x89PNG)");
  expect_fail(NULL, 0, -EINVAL, "not a PNG");
  expect_fail((const unsigned char *)"\x89PNG", 4, -EINVAL, "not a PNG");

  struct buf b = blank_png(800, 600);
  expect_fail(b.p, b.n, -ENOENT, "no QR code or barcode found");
  expect_fail(b.p, 40, -EINVAL, "the PNG cannot be decoded");
  expect_fail(b.p, 20, -EINVAL, "a broken PNG");
  /* the size is refused from the header, before decoding */
  b.p[16] = 0, b.p[17] = 0, b.p[18] = 0x13, b.p[19] = 0x88; /* width 5000 */
  expect_fail(b.p, b.n, -EFBIG, "image: larger than 4096x4096");
  free(b.p);
  b = blank_png(4097, 8);
  expect_fail(b.p, b.n, -EFBIG, "larger than 4096x4096 (it is 4097x8");
  free(b.p);
  b = blank_png(8, 4097);
  expect_fail(b.p, b.n, -EFBIG, "larger than 4096x4096");
  free(b.p);
  b = blank_png(4096, 16); /* the limit itself is fine */
  expect_fail(b.p, b.n, -ENOENT, "no QR code");
  free(b.p);

  /* JPEG frame headers: SOI, APP0 (short), SOFn */
  unsigned char j[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00,
                       0xFF, 0xC0, 0x00, 0x11, 0x08, 0x13, 0x88, 0x00,
                       0x10, 0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1};
  expect_fail(j, sizeof(j), -EFBIG, "larger than 4096x4096 (it is 16x5000");
  j[13] = 0x00, j[14] = 0x10; /* 16x16 */
  j[17] = 4;                  /* CMYK */
  expect_fail(j, sizeof(j), -EINVAL, "not CMYK");
  j[17] = 3;
  j[12] = 12; /* 12 bits */
  expect_fail(j, sizeof(j), -EINVAL, "12-bit JPEG");
  j[12] = 8;
  j[9] = 0xC3; /* lossless */
  expect_fail(j, sizeof(j), -EINVAL, "lossless or hierarchical JPEG (SOF3)");
  j[9] = 0xC0;
  expect_fail(j, 20, -EINVAL, "truncated JPEG");
  expect_fail(j, 8, -EINVAL, "no frame header");
  j[8] = 0x00;
  expect_fail(j, sizeof(j), -EINVAL, "no marker at byte 8");
}

static void test_parse(void **state) {
  (void)state;
  char v[44];
  assert_int_equal(mg_scan_parse(PAYLOAD, v), MG_SCAN_TOKEN);
  assert_string_equal(v, TOKEN);
  assert_int_equal(mg_scan_parse(TOKEN, v), MG_SCAN_OTHER);
  assert_string_equal(v, "");
  assert_int_equal(mg_scan_parse("MG1:" TOKEN "=", v), MG_SCAN_OTHER);
  assert_int_equal(
      mg_scan_parse("MG1:JgGsVWL5VJeNTCJ9McRPLmR3PUfRWD77Jqx/qrOP0Xs", v),
      MG_SCAN_OTHER); /* '/' is base64, not base64url */
  assert_int_equal(mg_scan_parse(NUMBER, v), MG_SCAN_NUMBER);
  assert_string_equal(v, NUMBER);
  assert_int_equal(mg_scan_parse("2048-1354", v), MG_SCAN_NUMBER);
  assert_string_equal(v, NUMBER);
  assert_int_equal(mg_scan_parse("20481357", v), MG_SCAN_OTHER);
  assert_int_equal(mg_scan_parse("2048 1354", v), MG_SCAN_OTHER);
  assert_int_equal(mg_scan_parse("20-481354", v), MG_SCAN_OTHER);
  assert_int_equal(mg_scan_parse("", v), MG_SCAN_OTHER);
}

/* Scans on several threads while a slip renders: the render lock keeps
 * cairo and poppler serialised, and nothing deadlocks. */
static struct buf shared_png, shared_jpg;

static void *scan_thread(void *arg) {
  (void)arg;
  for (int i = 0; i < 2; i++) {
    struct mg_scan_result r;
    if (mg_scan_image(shared_png.p, shared_png.n, &r, NULL) != 0 ||
        r.kind != MG_SCAN_TOKEN)
      return (void *)1;
    if (mg_scan_image(shared_jpg.p, shared_jpg.n, &r, NULL) != 0 ||
        r.kind != MG_SCAN_TOKEN)
      return (void *)1;
  }
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  pthread_t th[3];
  shared_png = png_of(raster(150, 0));
  shared_jpg = jpeg_of("");
  for (int i = 0; i < 3; i++)
    assert_int_equal(pthread_create(&th[i], NULL, scan_thread, NULL), 0);
  for (int i = 0; i < 2; i++) {
    unsigned char *pdf = NULL;
    size_t len = 0;
    render_slip(&pdf, &len);
    free(pdf);
  }
  for (int i = 0; i < 3; i++) {
    void *ret = (void *)2;
    assert_int_equal(pthread_join(th[i], &ret), 0);
    assert_null(ret);
  }
  free(shared_png.p);
  free(shared_jpg.p);
}

static void *suite(void *arg) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_slip_png),    cmocka_unit_test(test_barcode),
      cmocka_unit_test(test_photo),       cmocka_unit_test(test_transparent),
      cmocka_unit_test(test_jpeg),        cmocka_unit_test(test_other_codes),
      cmocka_unit_test(test_errors),      cmocka_unit_test(test_parse),
      cmocka_unit_test(test_threads),
  };
  *(int *)arg = cmocka_run_group_tests(tests, group_setup, group_teardown);
  return NULL;
}

int main(void) { return rt_main(suite); }
