/*
 * render_test.h — helpers of the tests that read back what the renderers
 * make (P1-P3, S1, G5): test_form_pdf, test_form_page, test_slip,
 * test_scan, test_stroke.  A shell command's output (pdftotext, pdfinfo,
 * pdffonts ...), files in and out, a PNG decoded with cairo, and a main()
 * that runs the suite on a thread of its own.
 * Header-only: every function is static inline, so a test that does not
 * use one does not warn.  Include after <cmocka.h>.
 */
#ifndef MG_TEST_RENDER_TEST_H
#define MG_TEST_RENDER_TEST_H

#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pack.h"
#include "render_lock.h"

/* Output of a shell command (malloc'd, NUL-terminated); fails the test
 * unless it exits 0. */
static inline char *rt_run(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static inline char *rt_run(const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = 0, cap = 4096;
  char *out = malloc(cap);
  assert_non_null(out);
  for (size_t got; (got = fread(out + n, 1, cap - n - 1, p)) > 0;) {
    n += got;
    if (cap - n < 2) {
      cap *= 2;
      out = realloc(out, cap);
      assert_non_null(out);
    }
  }
  out[n] = 0;
  int st = pclose(p);
  if (st != 0)
    fail_msg("`%s` exited with status %d", cmd, st);
  return out;
}

/* The pages of dir/name (pdfinfo). */
static inline int rt_pdf_pages(const char *dir, const char *name) {
  char *info = rt_run("pdfinfo '%s/%s'", dir, name);
  char *p = strstr(info, "Pages:");
  assert_non_null(p);
  int n = atoi(p + 6);
  free(info);
  return n;
}

/* Loads the pack at dir into *pack: 0, or -1 with the loader's report on
 * stderr. */
static inline int rt_pack_load(const char *dir, struct mg_pack **pack) {
  struct mg_pack_report rep;
  mg_pack_report_init(&rep);
  int rc = mg_pack_load(dir, pack, &rep) == 0 ? 0 : -1;
  if (rc)
    mg_pack_report_print(&rep, stderr);
  mg_pack_report_free(&rep);
  return rc;
}

/* rm -rf dir (a test's temporary directory): 0, or -1. */
static inline int rt_rm_rf(const char *dir) {
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* The whole file (malloc'd, NUL-terminated; *len without the NUL); fails
 * the test when it cannot be read. */
static inline char *rt_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    fail_msg("cannot open %s", path);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  long n = ftell(f);
  assert_true(n >= 0);
  rewind(f);
  char *b = malloc((size_t)n + 1);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
  b[n] = 0;
  fclose(f);
  *len = (size_t)n;
  return b;
}

/* p[0..len) into dir/name; fails the test on an error. */
static inline void rt_write_file(const char *dir, const char *name,
                                 const void *p, size_t len) {
  char path[256];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(p, 1, len, fp), len);
  assert_int_equal(fclose(fp), 0);
}

struct rt_png_in {
  const unsigned char *p;
  size_t n, at;
};

static inline cairo_status_t rt_png_read(void *closure, unsigned char *data,
                                         unsigned int length) {
  struct rt_png_in *r = closure;
  if (r->n - r->at < length)
    return CAIRO_STATUS_READ_ERROR;
  memcpy(data, r->p + r->at, length);
  r->at += length;
  return CAIRO_STATUS_SUCCESS;
}

/* A PNG as a cairo image (the caller destroys it); fails the test unless
 * it decodes.  Under the render lock (render_lock.h), as the renderers
 * themselves run. */
static inline cairo_surface_t *rt_png_decode(const unsigned char *png,
                                             size_t len) {
  struct rt_png_in r = {png, len, 0};
  mg__render_lock();
  cairo_surface_t *s =
      cairo_image_surface_create_from_png_stream(rt_png_read, &r);
  mg__render_unlock();
  assert_int_equal(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
  return s;
}

/* main() of a render test: SUITE (which stores cmocka's result through its
 * int * argument) runs on a thread of its own, so that the renderers'
 * per-thread caches go at its exit as a uv worker's do; then cairo's and
 * fontconfig's process-wide caches are torn down, because LSan cannot
 * follow fontconfig's patterns (linked by offsets, not pointers). */
static inline int rt_main(void *(*suite)(void *)) {
  pthread_t t;
  int rc = 1;
  if (pthread_create(&t, NULL, suite, &rc) != 0 || pthread_join(t, NULL) != 0)
    return 1;
  cairo_debug_reset_static_data();
  FcFini();
  return rc;
}

#endif
