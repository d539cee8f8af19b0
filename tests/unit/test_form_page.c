/*
 * test_form_page.c — page images and field boxes for the tablet's form
 * screen (core/form_pdf.h mg_form_page_png, mg_form_layout_json; A2, FM5,
 * FM7, S1) on the demo pack.  Images are read back with cairo and judged
 * by their pixels inside the layout.csv boxes; the template itself is
 * rasterised independently with poppler to show what a mask hides.  The
 * family is fictional.
 */
#include <errno.h>
#include <fontconfig/fontconfig.h>
#include <pthread.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairo.h>
#include <cmocka.h>
#include <poppler.h>

#include "render_test.h"

#include "buf.h"
#include "form_pdf.h"
#include "json.h"
#include "pack.h"

#define SHUNAN MG_TEST_SOURCE_DIR "/packs/shunan"

static struct mg_pack *pack;

/* Pixels darker than mid-grey inside a box of `mm` coordinates. */
static long dark_in(cairo_surface_t *s, double page_w_mm, double x, double y,
                    double w, double h) {
  cairo_surface_flush(s);
  int W = cairo_image_surface_get_width(s), H = cairo_image_surface_get_height(s);
  int stride = cairo_image_surface_get_stride(s);
  const unsigned char *d = cairo_image_surface_get_data(s);
  double k = W / page_w_mm;
  long n = 0;
  for (int py = (int)ceil(y * k); py < (int)floor((y + h) * k) && py < H; py++)
    for (int px = (int)ceil(x * k); px < (int)floor((x + w) * k) && px < W;
         px++) {
      uint32_t v = *(const uint32_t *)(d + py * stride + px * 4);
      int g = (((v >> 16) & 255) + ((v >> 8) & 255) + (v & 255)) / 3;
      n += g < 128;
    }
  return n;
}

static const struct mg_pack_box *box(const struct mg_pack_form *f,
                                     const char *field, long row) {
  for (size_t i = 0; i < f->n_boxes; i++)
    if (strcmp(f->boxes[i].field, field) == 0 && f->boxes[i].row == row)
      return &f->boxes[i];
  fail_msg("no box %s row %ld in form %s", field, row, f->id);
  return NULL;
}

static long dark_box(cairo_surface_t *s, const struct mg_pack_form *f,
                     const struct mg_pack_box *b) {
  return dark_in(s, f->page_width, b->x + 1, b->y + 1, b->width - 2,
                 b->height - 2);
}

static unsigned char *page_png(const struct mg_form_render *r, long page,
                               int width, int values, size_t *len) {
  unsigned char *png = NULL;
  struct mg_err e = {{0}};
  int rc = mg_form_page_png(r, page, width, values, &png, len, &e);
  if (rc)
    fail_msg("mg_form_page_png: %s", e.msg);
  assert_non_null(png);
  assert_memory_equal(png, "\x89PNG", 4);
  return png;
}

/* The template page alone is the background: as wide as asked, the page's
 * aspect kept, ink where the template has rules, and none of the sheet's
 * values or signature however many are given (it is cached for every
 * case).  With values, the name lands in its box. */
static void test_template_and_values(void **state) {
  (void)state;
  const struct mg_pack_form *f = mg_pack_form(pack, "jidouteate");
  assert_non_null(f);
  struct mg_form_value vals[] = {{"name.family", 0, "架空"},
                                 {"name.given", 0, "太郎"},
                                 {"address", 0, "山口県周南市岐山通一丁目1番地"}};
  struct mg_form_sheet bare = {.form = f};
  struct mg_form_sheet full = {.form = f, .values = vals, .n_values = 3};
  struct mg_form_point pts[] = {{0.1f, 0.5f, 0.05f}, {0.5f, 0.2f, 0.05f},
                                {0.9f, 0.8f, 0.05f}};
  size_t ends[] = {3};
  struct mg_form_signature sig = {pts, 3, ends, 1, 3.0};
  struct mg_form_render r0 = {.pack = pack, .pack_dir = SHUNAN,
                              .sheets = &bare, .n_sheets = 1};
  struct mg_form_render r1 = r0;
  r1.sheets = &full;
  r1.signature = &sig;
  size_t l0, l1, l2;
  unsigned char *p0 = page_png(&r0, 1, 600, 0, &l0);
  unsigned char *p1 = page_png(&r1, 1, 600, 0, &l1);
  unsigned char *p2 = page_png(&r1, 1, 600, 1, &l2);
  assert_int_equal(l0, l1);
  assert_memory_equal(p0, p1, l0);

  cairo_surface_t *s0 = rt_png_decode(p0, l0), *s2 = rt_png_decode(p2, l2);
  assert_int_equal(cairo_image_surface_get_width(s0), 600);
  assert_int_equal(cairo_image_surface_get_height(s0),
                   (int)ceil(600 * f->page_height / f->page_width));
  /* the template has ink (its rules and printed labels) */
  assert_true(dark_in(s0, f->page_width, 0, 0, f->page_width,
                      f->page_height) > 1000);
  const struct mg_pack_box *fam = box(f, "name.family", 0),
                           *sg = box(f, "@signature", 0),
                           *addr = box(f, "address", 0);
  long t_fam = dark_box(s0, f, fam), v_fam = dark_box(s2, f, fam);
  long t_sig = dark_box(s0, f, sg), v_sig = dark_box(s2, f, sg);
  long t_addr = dark_box(s0, f, addr), v_addr = dark_box(s2, f, addr);
  assert_true(v_fam > t_fam + 20);
  assert_true(v_sig > t_sig + 20);
  assert_true(v_addr > t_addr + 50);
  cairo_surface_destroy(s0);
  cairo_surface_destroy(s2);
  free(p0);
  free(p1);
  free(p2);
}

/* FM5: a mask box is painted white on the image as on paper, though the
 * template has ink there. */
static void test_mask(void **state) {
  (void)state;
  const struct mg_pack_form *f = mg_pack_form(pack, "inkan_touroku");
  assert_non_null(f);
  const struct mg_pack_box *m = box(f, "@mask", 0);
  struct mg_form_sheet bare = {.form = f};
  struct mg_form_render r = {.pack = pack, .pack_dir = SHUNAN,
                             .sheets = &bare, .n_sheets = 1};
  size_t len;
  unsigned char *png = page_png(&r, m->page, 800, 0, &len);
  cairo_surface_t *s = rt_png_decode(png, len);

  /* the template alone, rasterised by poppler here */
  char uri[1024];
  snprintf(uri, sizeof(uri), "file://%s/forms/%s/%s", SHUNAN, f->id,
           f->template_file);
  GError *ge = NULL;
  PopplerDocument *doc = poppler_document_new_from_file(uri, NULL, &ge);
  assert_non_null(doc);
  PopplerPage *pg = poppler_document_get_page(doc, (int)m->page - 1);
  double pw, ph;
  poppler_page_get_size(pg, &pw, &ph);
  cairo_surface_t *raw = cairo_image_surface_create(
      CAIRO_FORMAT_RGB24, 800, (int)ceil(ph * 800 / pw));
  cairo_t *cr = cairo_create(raw);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_scale(cr, 800 / pw, 800 / pw);
  poppler_page_render_for_printing(pg, cr);
  cairo_destroy(cr);

  long under = dark_in(raw, f->page_width, m->x, m->y, m->width, m->height);
  long masked = dark_in(s, f->page_width, m->x + 0.5, m->y + 0.5,
                        m->width - 1, m->height - 1);
  assert_true(under > 0); /* there is something to hide */
  assert_int_equal(masked, 0);
  cairo_surface_destroy(raw);
  g_object_unref(pg);
  g_object_unref(doc);
  cairo_surface_destroy(s);
  free(png);
}

static void test_bad_input(void **state) {
  (void)state;
  const struct mg_pack_form *f = mg_pack_form(pack, "jidouteate");
  struct mg_form_sheet bare = {.form = f};
  struct mg_form_render r = {.pack = pack, .pack_dir = SHUNAN,
                             .sheets = &bare, .n_sheets = 1};
  unsigned char *png = (unsigned char *)"x";
  size_t len = 1;
  struct mg_err e = {{0}};
  assert_int_equal(mg_form_page_png(&r, 0, 600, 0, &png, &len, &e), -EINVAL);
  assert_null(png);
  assert_non_null(strstr(e.msg, "page 0: the form has pages 1 to 1"));
  assert_int_equal(mg_form_page_png(&r, 2, 600, 0, &png, &len, &e), -EINVAL);
  assert_int_equal(mg_form_page_png(&r, 1, 99, 0, &png, &len, &e), -EINVAL);
  assert_non_null(strstr(e.msg, "width: 99 pixels is not from 100 to 2400"));
  assert_int_equal(mg_form_page_png(&r, 1, 2401, 0, &png, &len, &e), -EINVAL);
  r.font_scale = 3;
  assert_int_equal(mg_form_page_png(&r, 1, 600, 1, &png, &len, &e), -EINVAL);
  r.font_scale = 0;
  r.pack_dir = "/nonexistent";
  assert_int_equal(mg_form_page_png(&r, 1, 600, 0, &png, &len, &e), -ENOENT);
  assert_non_null(strstr(e.msg, "form jidouteate: template"));
  assert_null(png);
}

/* A2, FM7: the boxes as layout.csv gives them, masks left out, staff-only
 * fields only in the staff's view. */
static void test_layout_json(void **state) {
  (void)state;
  const struct mg_pack_form *f = mg_pack_form(pack, "inkan_touroku");
  assert_non_null(f);
  for (int staff = 0; staff <= 1; staff++) {
    struct mg_buf b;
    struct mg_jw w;
    struct mg_json *doc = NULL;
    mg_buf_init(&b);
    mg_jw_init(&w, &b);
    mg_form_layout_json(f, staff, &w);
    assert_false(w.bad);
    assert_int_equal(mg_json_parse(b.data, b.len, NULL, &doc, NULL), 0);
    int64_t pages = 0;
    assert_int_equal(mg_json_get_int(doc, "pages", &pages), 0);
    assert_int_equal(pages, f->pages);
    const struct mg_json *ps = mg_json_get(doc, "page_size");
    assert_non_null(ps);
    assert_int_equal(ps->u.arr.n, 2);
    assert_true(fabs(ps->u.arr.items[0]->u.num.d - f->page_width) < 1e-9);
    const struct mg_json *bx = mg_json_get(doc, "boxes");
    assert_non_null(bx);
    size_t want = 0, memo = 0, masks = 0, sigs = 0;
    for (size_t i = 0; i < f->n_boxes; i++) {
      const char *fd = f->boxes[i].field;
      if (strcmp(fd, "@mask") == 0)
        continue;
      if (!staff && strcmp(fd, "memo") == 0)
        continue;
      want++;
    }
    assert_int_equal(bx->u.arr.n, want);
    for (size_t i = 0; i < bx->u.arr.n; i++) {
      const struct mg_json *o = bx->u.arr.items[i];
      const char *fd = mg_json_get_str(o, "field");
      int64_t row = -1, page = 0;
      assert_non_null(fd);
      assert_int_equal(mg_json_get_int(o, "row", &row), 0);
      assert_int_equal(mg_json_get_int(o, "page", &page), 0);
      memo += strcmp(fd, "memo") == 0;
      masks += strcmp(fd, "@mask") == 0;
      sigs += strcmp(fd, "@signature") == 0;
      const struct mg_pack_box *pb = box(f, fd, row);
      assert_int_equal(page, pb->page);
      assert_true(fabs(mg_json_get(o, "x")->u.num.d - pb->x) < 1e-9);
      assert_true(fabs(mg_json_get(o, "y")->u.num.d - pb->y) < 1e-9);
      assert_true(fabs(mg_json_get(o, "w")->u.num.d - pb->width) < 1e-9);
      assert_true(fabs(mg_json_get(o, "h")->u.num.d - pb->height) < 1e-9);
    }
    assert_int_equal(masks, 0);
    assert_int_equal(memo, staff ? 1 : 0);
    assert_int_equal(sigs, 1);
    mg_json_free(doc);
    mg_buf_free(&b);
  }
}

static int group_setup(void **state) {
  (void)state;
  return rt_pack_load(SHUNAN, &pack);
}

static int group_teardown(void **state) {
  (void)state;
  mg_pack_free(pack);
  return 0;
}

static void *suite(void *arg) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_template_and_values),
      cmocka_unit_test(test_mask),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_layout_json),
  };
  *(int *)arg = cmocka_run_group_tests(tests, group_setup, group_teardown);
  return NULL;
}

int main(void) { return rt_main(suite); }
