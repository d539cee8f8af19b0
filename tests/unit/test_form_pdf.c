/*
 * test_form_pdf.c — filled forms on the demo pack's templates (core/
 * form_pdf.h: P1–P3, FG2, FG3, FM4, FM5, S1, I4) read back the way a
 * person reads them: the text of each box through `pdftotext` cropped to
 * the box (so a value is checked at its place), sizes through `pdftotext
 * -bbox`, fonts through `pdffonts`, pages through `pdfinfo`, masks and the
 * signature through `pdftoppm` pixels, images through `pdfimages`.  The
 * family is fictional.
 */
#include <fontconfig/fontconfig.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cairo.h>
#include <cmocka.h>

#include "render_test.h"

#include "form_pdf.h"
#include "pack.h"

#define SHUNAN MG_TEST_SOURCE_DIR "/packs/shunan"
#define MINI MG_TEST_SOURCE_DIR "/tests/fixtures/packs/mini"
#define MM (72.0 / 25.4)
#define GAIJI_TAKA "\xEE\x80\x80"  /* U+E000 髙 of the pack's gaiji font */
#define GAIJI_SAKI "\xEE\x80\x81"  /* U+E001 﨑 */

static struct mg_pack *pack, *mini;
static char dir[64];

/* ---- helpers ---- */

/* `s` without ASCII spaces, U+3000 and line breaks: wrapped text and
 * names with a space compare as one run. */
static char *squeeze(const char *s) {
  char *o = malloc(strlen(s) + 1);
  assert_non_null(o);
  size_t n = 0;
  for (const char *p = s; *p;) {
    if (*p == ' ' || *p == '\n' || *p == '\f' || *p == '\r') {
      p++;
      continue;
    }
    if (strncmp(p, "\xE3\x80\x80", 3) == 0) {
      p += 3;
      continue;
    }
    o[n++] = *p++;
  }
  o[n] = 0;
  return o;
}

static const struct mg_pack_form *form(const char *id) {
  const struct mg_pack_form *f = mg_pack_form(pack, id);
  if (!f)
    fail_msg("no form %s in the demo pack", id);
  return f;
}

static const struct mg_pack_box *box_of(const struct mg_pack_form *f,
                                        const char *field, long row) {
  for (size_t i = 0; i < f->n_boxes; i++)
    if (strcmp(f->boxes[i].field, field) == 0 && f->boxes[i].row == row)
      return &f->boxes[i];
  fail_msg("form %s has no box %s row %ld", f->id, field, row);
  return NULL;
}

static struct mg_form_render base(const struct mg_form_sheet *s, size_t n) {
  struct mg_form_render r = {.pack = pack, .pack_dir = SHUNAN, .sheets = s,
                             .n_sheets = n, .font_scale = 1.0};
  return r;
}

/* Render into dir/name; fails the test on an error. */
static void render_to(const struct mg_form_render *r, const char *name) {
  unsigned char *pdf = NULL;
  size_t len = 0;
  struct mg_err err = {{0}};
  int rc = mg_form_render_pdf(r, &pdf, &len, &err);
  if (rc)
    fail_msg("render %s: %d %s", name, rc, err.msg);
  assert_true(len > 1000);
  assert_memory_equal(pdf, "%PDF-", 5);
  rt_write_file(dir, name, pdf, len);
  free(pdf);
}

static int pages_of(const char *name) { return rt_pdf_pages(dir, name); }

/* The text printed inside `b` on `page` (a box a little larger than b,
 * since glyph boxes may overhang the ruled box by a hair), squeezed. */
static char *in_box(const char *name, int page, const struct mg_pack_box *b) {
  char *t =
      rt_run("pdftotext -f %d -l %d -x %d -y %d -W %d -H %d '%s/%s' -", page,
             page, (int)(b->x * MM) - 1, (int)(b->y * MM) - 1,
             (int)(b->width * MM) + 3, (int)(b->height * MM) + 3, dir, name);
  char *s = squeeze(t);
  free(t);
  return s;
}

static void expect_in_box(const char *name, int page,
                          const struct mg_pack_box *b, const char *want) {
  char *got = in_box(name, page, b);
  char *w = squeeze(want);
  if (!strstr(got, w))
    fail_msg("%s page %d box %s row %ld: want \"%s\", got \"%s\"", name, page,
             b->field, b->row, w, got);
  free(got);
  free(w);
}

/* Height in pt of the tallest word pdftotext finds inside `b` (-bbox
 * ignores -x/-y, so words are picked by their centre): the font size the
 * text was printed at (poppler's word box is the font's ascent to descent
 * at that size). */
static double word_height(const char *name, int page,
                          const struct mg_pack_box *b) {
  char *t =
      rt_run("pdftotext -bbox -f %d -l %d '%s/%s' -", page, page, dir, name);
  double best = -1;
  for (char *w = t; (w = strstr(w, "<word ")); w++) {
    double x0 = atof(strstr(w, "xMin=\"") + 6),
           y0 = atof(strstr(w, "yMin=\"") + 6),
           x1 = atof(strstr(w, "xMax=\"") + 6),
           y1 = atof(strstr(w, "yMax=\"") + 6);
    double cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
    if (cx >= b->x * MM && cx <= (b->x + b->width) * MM && cy >= b->y * MM &&
        cy <= (b->y + b->height) * MM && y1 - y0 > best)
      best = y1 - y0;
  }
  free(t);
  if (best < 0)
    fail_msg("no word in box %s of %s", b->field, name);
  return best;
}

/* Left and right edge in mm (page coordinates) of the words pdftotext
 * finds inside `b` (by their centre). */
static void words_x(const char *name, int page, const struct mg_pack_box *b,
                    double *left, double *right) {
  char *t =
      rt_run("pdftotext -bbox -f %d -l %d '%s/%s' -", page, page, dir, name);
  *left = 1e9;
  *right = -1e9;
  for (char *w = t; (w = strstr(w, "<word ")); w++) {
    double x0 = atof(strstr(w, "xMin=\"") + 6),
           y0 = atof(strstr(w, "yMin=\"") + 6),
           x1 = atof(strstr(w, "xMax=\"") + 6),
           y1 = atof(strstr(w, "yMax=\"") + 6);
    double cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
    if (cx >= b->x * MM && cx <= (b->x + b->width) * MM && cy >= b->y * MM &&
        cy <= (b->y + b->height) * MM) {
      *left = x0 / MM < *left ? x0 / MM : *left;
      *right = x1 / MM > *right ? x1 / MM : *right;
    }
  }
  free(t);
  if (*left > *right)
    fail_msg("no word in box %s of %s", b->field, name);
}

/* A region (mm) of a page at 144 dpi as 8-bit grey (pdftoppm -gray, in
 * dir/TAG.pgm): malloc'd, *pw by *ph pixels. */
static unsigned char *crop_gray(const char *pdf_path, int page, double x,
                                double y, double w, double h, const char *tag,
                                int *pw, int *ph) {
  char out[256];
  snprintf(out, sizeof(out), "%s/%s", dir, tag);
  free(rt_run("pdftoppm -r 144 -gray -f %d -l %d -x %d -y %d -W %d -H %d "
              "-singlefile '%s' '%s'",
              page, page, (int)(x * MM * 2), (int)(y * MM * 2),
              (int)(w * MM * 2), (int)(h * MM * 2), pdf_path, out));
  char pgm[300];
  snprintf(pgm, sizeof(pgm), "%s.pgm", out);
  FILE *fp = fopen(pgm, "rb");
  assert_non_null(fp);
  int max = 0;
  *pw = *ph = 0;
  assert_int_equal(fscanf(fp, "P5 %d %d %d", pw, ph, &max), 3);
  fgetc(fp);
  size_t n = (size_t)*pw * (size_t)*ph;
  unsigned char *px = malloc(n ? n : 1);
  assert_non_null(px);
  assert_int_equal(fread(px, 1, n, fp), n);
  fclose(fp);
  return px;
}

/* Dark pixels (< 128 of 255) of a region (mm) of a page at 144 dpi. */
static long dark_pixels(const char *pdf_path, int page, double x, double y,
                        double w, double h) {
  int pw, ph;
  unsigned char *px = crop_gray(pdf_path, page, x, y, w, h, "crop", &pw, &ph);
  long dark = 0;
  for (long i = 0; i < (long)pw * ph; i++)
    dark += px[i] < 128;
  free(px);
  return dark;
}

/* Leftmost and rightmost dark column (mm from the region's left) on the
 * pixel row at mid-height of a region, -1 when none. */
static void dark_span(const char *pdf_path, int page, double x, double y,
                      double w, double h, double *left, double *right) {
  int pw, ph;
  unsigned char *px = crop_gray(pdf_path, page, x, y, w, h, "span", &pw, &ph);
  int l = -1, r = -1;
  for (int i = 0; i < pw; i++)
    if (px[(size_t)(ph / 2) * pw + i] < 128) {
      if (l < 0)
        l = i;
      r = i;
    }
  free(px);
  *left = l < 0 ? -1 : l / (2 * MM);
  *right = r < 0 ? -1 : r / (2 * MM);
}

/* ---- the family (fictional) ---- */

struct person {
  const char *name, *kana, *birth, *sex, *rel;
};
static const struct person FAMILY[] = {
    {"周防 太郎", "スオウ タロウ", "1988-06-15", "1", "setainushi"},
    {"周防 花子", "スオウ ハナコ", "1990-09-03", "2", "tsuma"},
    {"周防 一郎", "スオウ イチロウ", "2019-05-10", "1", "ko"},
    {"周防 さくら", "スオウ サクラ", "2025-03-02", "2", "ko"},
    {GAIJI_SAKI "田 キヨ", "サキタ キヨ", "1960-02-20", "2", "sonota"},
};

#define MAXV 64
struct values {
  struct mg_form_value v[MAXV];
  size_t n;
};

static void put(struct values *vs, const char *field, long row,
                const char *text) {
  assert_true(vs->n < MAXV);
  vs->v[vs->n++] = (struct mg_form_value){field, row, text};
}

/* The household rows of jumin_idou or kokuho_idou from person `first`:
 * a copy (I4) carries the people after the fourth in its own rows. */
static void household(struct values *vs, size_t first) {
  for (size_t i = first, row = 1; i < 5 && row <= 4; i++, row++) {
    put(vs, "m_name", (long)row, FAMILY[i].name);
    put(vs, "m_birth", (long)row, FAMILY[i].birth);
    put(vs, "m_sex", (long)row, FAMILY[i].sex);
    put(vs, "m_rel", (long)row, FAMILY[i].rel);
  }
}

static void applicant(struct values *vs) {
  put(vs, "filing_date", 0, "2026-11-25");
  put(vs, "name.family", 0, "周防");
  put(vs, "name.given", 0, "太郎");
  put(vs, "kana", 0, "スオウ タロウ");
  put(vs, "birth_date", 0, "1988-06-15");
  put(vs, "address", 0, "山口県周南市岐山通1丁目1番地");
  put(vs, "memo", 0, "本人確認済（運転免許証）");
}

/* ---- tests ---- */

/* Four forms, one of them copied for the fifth person (I4), another
 * two pages of a different size: every value at its box on its page,
 * labels of choices, wareki dates, split names, checkbox marks, the stamp
 * on every page. */
static void test_bundle(void **state) {
  (void)state;
  struct values jumin1 = {0}, jumin2 = {0}, kokuho = {0}, inkan = {0},
                mk = {0};
  applicant(&jumin1);
  put(&jumin1, "kind", 0, "tennyu");
  put(&jumin1, "move_date", 0, "2026-11-20");
  put(&jumin1, "head", 0, "周防 太郎");
  put(&jumin1, "new_address", 0, "山口県周南市岐山通1丁目1番地");
  put(&jumin1, "proxy", 0, "yes");
  household(&jumin1, 0);
  applicant(&jumin2);
  put(&jumin2, "proxy", 0, "no");
  household(&jumin2, 4);
  applicant(&kokuho);
  put(&kokuho, "kubun", 0, "shutoku");
  put(&kokuho, "jiyu", 0, "tennyu");
  put(&kokuho, "idou_date", 0, "2026-11-20");
  put(&kokuho, "prev_hoken", 0, "kyokai");
  household(&kokuho, 0);
  applicant(&inkan);
  put(&inkan, "sex", 0, "1");
  /* the fixture pack's two-page B5 form, on the demo pack's fonts */
  const struct mg_pack_form *mkf = mg_pack_form(mini, "kokuho");
  assert_non_null(mkf);
  put(&mk, "head_name.family", 0, "周防");
  put(&mk, "head_name.given", 0, "太郎");
  put(&mk, "mynumber", 0, "123456789018");
  put(&mk, "moved_on", 0, "2026-11-20");

  struct mg_form_sheet s[] = {
      {form("jumin_idou"), jumin1.v, jumin1.n, "受付番号 1234-5678  1/5"},
      {form("jumin_idou"), jumin2.v, jumin2.n, "受付番号 1234-5678  2/5"},
      {form("kokuho_idou"), kokuho.v, kokuho.n, "受付番号 1234-5678  3/5"},
      {form("inkan_touroku"), inkan.v, inkan.n, "受付番号 1234-5678  4/5"},
      {mkf, mk.v, mk.n, "受付番号 1234-5678  5/5"},
  };
  /* the mini form's template comes from a pack folder of its own */
  char pdir[128], cmd[2048];
  snprintf(pdir, sizeof(pdir), "%s/pack", dir);
  snprintf(cmd, sizeof(cmd),
           "mkdir -p '%s/forms' && ln -s '%s/fonts' '%s/fonts' && "
           "for f in jumin_idou kokuho_idou inkan_touroku; do ln -s "
           "'%s/forms/'$f '%s/forms/'$f; done && ln -s '%s/forms/kokuho' "
           "'%s/forms/kokuho'",
           pdir, SHUNAN, pdir, SHUNAN, pdir, MINI, pdir);
  assert_int_equal(system(cmd), 0);
  struct mg_form_render r = base(s, 5);
  r.pack_dir = pdir;
  render_to(&r, "bundle.pdf");

  /* pages: 1 + 1 + 1 + 1 + 2, the last two B5 */
  assert_int_equal(pages_of("bundle.pdf"), 6);
  char *info = rt_run("pdfinfo -f 1 -l 6 '%s/bundle.pdf'", dir);
  assert_non_null(strstr(info, "Page    1 size:  595.276 x 841.89"));
  assert_non_null(strstr(info, "Page    4 size:  595.276 x 841.89"));
  assert_non_null(strstr(info, "Page    5 size:  516 x 729"));
  assert_non_null(strstr(info, "Page    6 size:  516 x 729"));
  free(info);

  const struct mg_pack_form *ji = form("jumin_idou");
  /* page 1: four people, dates in wareki, labels instead of values */
  for (int i = 0; i < 4; i++)
    expect_in_box("bundle.pdf", 1, box_of(ji, "m_name", i + 1),
                  FAMILY[i].name);
  expect_in_box("bundle.pdf", 1, box_of(ji, "filing_date", 0),
                "令和8年11月25日");
  expect_in_box("bundle.pdf", 1, box_of(ji, "move_date", 0), "令和8年11月20日");
  expect_in_box("bundle.pdf", 1, box_of(ji, "m_birth", 1), "S63.6.15");
  expect_in_box("bundle.pdf", 1, box_of(ji, "m_birth", 2), "H2.9.3");
  expect_in_box("bundle.pdf", 1, box_of(ji, "m_birth", 3), "R1.5.10");
  expect_in_box("bundle.pdf", 1, box_of(ji, "kind", 0), "転入");
  expect_in_box("bundle.pdf", 1, box_of(ji, "m_sex", 1), "男");
  expect_in_box("bundle.pdf", 1, box_of(ji, "m_sex", 2), "女");
  expect_in_box("bundle.pdf", 1, box_of(ji, "m_rel", 1), "世帯主");
  expect_in_box("bundle.pdf", 1, box_of(ji, "m_rel", 2), "妻");
  expect_in_box("bundle.pdf", 1, box_of(ji, "name.family", 0), "周防");
  expect_in_box("bundle.pdf", 1, box_of(ji, "name.given", 0), "太郎");
  expect_in_box("bundle.pdf", 1, box_of(ji, "proxy", 0), "✓");
  expect_in_box("bundle.pdf", 1, box_of(ji, "memo", 0),
                "本人確認済（運転免許証）");
  /* halves in their own boxes, not in each other's */
  char *t = in_box("bundle.pdf", 1, box_of(ji, "name.given", 0));
  assert_null(strstr(t, "周防"));
  free(t);
  /* page 2: the copy holds the fifth person in its row 1, no mark */
  expect_in_box("bundle.pdf", 2, box_of(ji, "m_name", 1), "田キヨ");
  expect_in_box("bundle.pdf", 2, box_of(ji, "m_birth", 1), "S35.2.20");
  t = in_box("bundle.pdf", 2, box_of(ji, "m_name", 2));
  assert_string_equal(t, "");
  free(t);
  t = in_box("bundle.pdf", 2, box_of(ji, "proxy", 0));
  assert_null(strstr(t, "✓"));
  free(t);
  const struct mg_pack_form *kf = form("kokuho_idou");
  expect_in_box("bundle.pdf", 3, box_of(kf, "kubun", 0), "取得");
  expect_in_box("bundle.pdf", 3, box_of(kf, "prev_hoken", 0),
                "全国健康保険協会（協会けんぽ）");
  expect_in_box("bundle.pdf", 3, box_of(kf, "m_name", 4), "周防 さくら");
  const struct mg_pack_form *ik = form("inkan_touroku");
  expect_in_box("bundle.pdf", 4, box_of(ik, "sex", 0), "男");
  expect_in_box("bundle.pdf", 4, box_of(ik, "birth_date", 0),
                "昭和63年6月15日");
  /* the two-page form: a value on each page; iso format kept */
  expect_in_box("bundle.pdf", 5, box_of(mkf, "head_name.family", 0), "周防");
  expect_in_box("bundle.pdf", 5, box_of(mkf, "moved_on", 0), "令和8年11月20日");
  expect_in_box("bundle.pdf", 6, box_of(mkf, "mynumber", 0), "123456789018");
  t = rt_run("pdftotext -f 6 -l 6 '%s/bundle.pdf' -", dir);
  assert_null(strstr(t, "周防"));
  free(t);

  /* values never printed as stored; the stamp on each page */
  char *all = rt_run("pdftotext -layout '%s/bundle.pdf' -", dir);
  const char *raw[] = {"tennyu", "setainushi", "shutoku", "kyokai",
                       "2026-11-25", "1988-06-15", "yes"};
  for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++)
    if (strstr(all, raw[i]))
      fail_msg("the stored value \"%s\" was printed", raw[i]);
  free(all);
  for (int p = 1; p <= 6; p++) {
    char want[64];
    snprintf(want, sizeof(want), "受付番号1234-5678%d/5", p < 6 ? p : 5);
    t = rt_run(
        "pdftotext -f %d -l %d -x 0 -y %d -W 600 -H 40 '%s/bundle.pdf' -", p, p,
        p < 5 ? 800 : 688, dir);
    char *sq = squeeze(t);
    if (!strstr(sq, want))
      fail_msg("page %d: no stamp \"%s\" at the bottom (got \"%s\")", p, want,
               sq);
    free(sq);
    free(t);
  }
}

/* FG3: max_chars cuts (by graphemes), a long value is shrunk into a
 * one-line box or wrapped and shrunk into a wrapping one, and the
 * validator's question says which values cannot fit at 6 pt. */
static void test_fit(void **state) {
  (void)state;
  const struct mg_pack_form *ji = form("jumin_idou");
  struct mg_pack_form f = *ji;
  struct mg_pack_box *boxes = calloc(ji->n_boxes, sizeof(*boxes));
  assert_non_null(boxes);
  memcpy(boxes, ji->boxes, ji->n_boxes * sizeof(*boxes));
  f.boxes = boxes;
  struct mg_pack_box *cut = (struct mg_pack_box *)box_of(&f, "m_name", 1);
  cut->max_chars = 4;
  const struct mg_pack_box *longname = box_of(&f, "m_name", 2);
  const struct mg_pack_box *shortname = box_of(&f, "m_name", 3);
  const struct mg_pack_box *addr = box_of(&f, "new_address", 0);
  struct mg_pack_box *right = (struct mg_pack_box *)box_of(&f, "m_name", 4);
  right->align = MG_PACK_RIGHT;
  const struct mg_pack_box *center = box_of(&f, "kind", 0);
  assert_int_equal(center->align, MG_PACK_CENTER);
  const char *long_name = "周防谷口田中長谷川 アレクサンドラ・マリア・テレジア";
  const char *long_addr =
      "山口県周南市岐山通1丁目1番地 周南ハイツ岐山通り壱番館1001号室"
      "（株式会社サンプル商事 周南営業所 社員寮）気付 "
      "周防 太郎 様方 郵便受けは建物裏手の通用口にあります";
  struct values v = {0};
  put(&v, "m_name", 1, "周防多恵子次郎");
  put(&v, "m_name", 2, long_name);
  put(&v, "m_name", 3, "周防 一郎");
  put(&v, "new_address", 0, long_addr);
  put(&v, "m_name", 4, "周防 さくら");
  put(&v, "kind", 0, "tennyu");
  struct mg_form_sheet s = {&f, v.v, v.n, NULL};
  struct mg_form_render r = base(&s, 1);
  render_to(&r, "fit.pdf");

  /* max_chars 4: the rest is dropped */
  char *t = in_box("fit.pdf", 1, cut);
  assert_string_equal(t, "周防多恵");
  free(t);
  /* align (FM4): left 0.8 mm in, right 0.8 mm in, centred */
  double l, rt;
  words_x("fit.pdf", 1, shortname, &l, &rt);
  if (fabs(l - (shortname->x + 0.8)) > 0.3)
    fail_msg("left-aligned text starts at %.2f mm, box at %.2f", l,
             shortname->x);
  words_x("fit.pdf", 1, right, &l, &rt);
  if (fabs(rt - (right->x + right->width - 0.8)) > 0.3)
    fail_msg("right-aligned text ends at %.2f mm, box at %.2f", rt,
             right->x + right->width);
  words_x("fit.pdf", 1, center, &l, &rt);
  if (fabs((l + rt) / 2 - (center->x + center->width / 2)) > 0.3)
    fail_msg("centred text spans %.2f..%.2f mm, box %.2f..%.2f", l, rt,
             center->x, center->x + center->width);
  /* the long name is all there, inside its box, and smaller */
  expect_in_box("fit.pdf", 1, longname, long_name);
  double hl = word_height("fit.pdf", 1, longname),
         hs = word_height("fit.pdf", 1, shortname);
  if (!(hl < hs * 0.8))
    fail_msg("long name %.2f pt high, short %.2f: not shrunk", hl, hs);
  /* the long address wraps onto lines inside its box, all of it */
  expect_in_box("fit.pdf", 1, addr, long_addr);
  char *lines =
      rt_run("pdftotext -f 1 -l 1 -x %d -y %d -W %d -H %d "
             "'%s/fit.pdf' -",
             (int)(addr->x * MM), (int)(addr->y * MM),
             (int)(addr->width * MM) + 2, (int)(addr->height * MM) + 2, dir);
  int n = 0;
  for (char *p = lines; (p = strchr(p, '\n')); p++)
    n++;
  assert_true(n >= 3);
  free(lines);

  /* what the validator asks (FG3) */
  assert_int_equal(mg_form_text_fits(&r, shortname, "周防 一郎"), 1);
  /* 13 full-width characters in 38 mm: shrunk to 8.4 pt, fine; the long
   * name's 28 would need 3.9 pt (printed so, but refused by the form) */
  assert_int_equal(mg_form_text_fits(&r, shortname, "周防谷口田中長谷川 太郎丸"),
                   1);
  assert_int_equal(mg_form_text_fits(&r, shortname, long_name), 0);
  char huge[3 * 120 + 1] = "";
  for (int i = 0; i < 120; i++)
    strcat(huge, "長");
  assert_int_equal(mg_form_text_fits(&r, shortname, huge), 0);
  assert_int_equal(mg_form_text_fits(&r, addr, long_addr), 1);
  char essay[3 * 600 + 1] = "";
  for (int i = 0; i < 600; i++)
    strcat(essay, "住");
  assert_int_equal(mg_form_text_fits(&r, addr, essay), 0);
  /* max_chars: more characters do not fit; a base with its variation
   * selector (葛󠄀, U+845B U+E0100) is one character */
  assert_int_equal(mg_form_text_fits(&r, cut, "周防多恵"), 1);
  assert_int_equal(mg_form_text_fits(&r, cut, "周防多恵子"), 0);
  assert_int_equal(mg_form_text_fits(&r, cut, "葛\xF3\xA0\x84\x80城多恵"), 1);
  /* empty prints nothing and fits; bad input is refused */
  assert_int_equal(mg_form_text_fits(&r, shortname, ""), 1);
  assert_int_equal(mg_form_text_fits(&r, shortname, "\xE5\xB1"), -EINVAL);
  assert_int_equal(mg_form_text_fits(&r, box_of(&f, "@signature", 0), "x"),
                   -EINVAL);
  assert_int_equal(mg_form_text_fits(NULL, shortname, "x"), -EINVAL);
  /* a date is measured as it prints (令和8年11月25日), not as stored */
  assert_int_equal(mg_form_text_fits(&r, box_of(ji, "filing_date", 0),
                                     "2026-11-25"),
                   1);
  free(boxes);
}

/* P2: font_scale changes the printed size; out of range is refused. */
static void test_font_scale(void **state) {
  (void)state;
  const struct mg_pack_form *ik = form("inkan_touroku");
  struct values v = {0};
  applicant(&v);
  struct mg_form_sheet s = {ik, v.v, v.n, NULL};
  struct mg_form_render r = base(&s, 1);
  render_to(&r, "scale10.pdf");
  r.font_scale = 1.5;
  render_to(&r, "scale15.pdf");
  r.font_scale = 0; /* taken as 1.0 */
  render_to(&r, "scale00.pdf");
  const struct mg_pack_box *b = box_of(ik, "name.family", 0);
  double h10 = word_height("scale10.pdf", 1, b),
         h15 = word_height("scale15.pdf", 1, b),
         h00 = word_height("scale00.pdf", 1, b);
  if (h15 / h10 < 1.4 || h15 / h10 > 1.6)
    fail_msg("scale 1.5: %.2f pt against %.2f pt", h15, h10);
  assert_true(h00 > h10 - 0.01 && h00 < h10 + 0.01);
  expect_in_box("scale15.pdf", 1, b, "周防");
  unsigned char *pdf = (unsigned char *)"x";
  size_t len = 9;
  struct mg_err err = {{0}};
  const double bad[] = {0.3, 2.5, -1, NAN};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    r.font_scale = bad[i];
    assert_int_equal(mg_form_render_pdf(&r, &pdf, &len, &err), -EINVAL);
    assert_null(pdf);
    assert_int_equal(len, 0);
    assert_non_null(strstr(err.msg, "font_scale"));
  }
}

/* FM5: the masked region of the template is white in the output. */
static void test_mask(void **state) {
  (void)state;
  const struct mg_pack_form *ik = form("inkan_touroku");
  const struct mg_pack_box *m = box_of(ik, "@mask", 0);
  struct values v = {0};
  applicant(&v);
  struct mg_form_sheet s = {ik, v.v, v.n, NULL};
  struct mg_form_render r = base(&s, 1);
  render_to(&r, "mask.pdf");
  char tpl[512], out[256];
  snprintf(tpl, sizeof(tpl), "%s/forms/inkan_touroku/template.pdf", SHUNAN);
  snprintf(out, sizeof(out), "%s/mask.pdf", dir);
  /* inside by half a millimetre: the edge pixels are shared */
  double x = m->x + 0.5, y = m->y + 0.5, w = m->width - 1, h = m->height - 1;
  long before = dark_pixels(tpl, 1, x, y, w, h),
       after = dark_pixels(out, 1, x, y, w, h);
  if (before < 100 || after != 0)
    fail_msg("mask: %ld dark pixels in the template, %ld after", before,
             after);
  /* next to it the template is untouched */
  assert_int_equal(dark_pixels(tpl, 1, 12, 262, 40, 6),
                   dark_pixels(out, 1, 12, 262, 40, 6));
}

/* A signature of one horizontal line across a 4:1 canvas. */
static const struct mg_form_point LINE[] = {
    {0.0f, 0.5f, 0.05f}, {0.25f, 0.5f, 0.05f}, {0.5f, 0.5f, 0.05f},
    {0.75f, 0.5f, 0.05f}, {1.0f, 0.5f, 0.05f}};
static const size_t LINE_ENDS[] = {5};

/* S1: the signature is drawn in every slot as vector paths, its aspect
 * kept and centred; nothing outside the slot changes. */
static void test_signature(void **state) {
  (void)state;
  const struct mg_pack_form *ji = form("jumin_idou"), *ik = form("inkan_touroku");
  struct mg_form_signature sig = {LINE, 5, LINE_ENDS, 1, 4.0};
  struct mg_form_sheet s[] = {{ji, NULL, 0, NULL}, {ik, NULL, 0, NULL}};
  struct mg_form_render r = base(s, 2);
  render_to(&r, "nosig.pdf");
  r.signature = &sig;
  render_to(&r, "sig.pdf");
  char with[256], without[256];
  snprintf(with, sizeof(with), "%s/sig.pdf", dir);
  snprintf(without, sizeof(without), "%s/nosig.pdf", dir);
  for (int p = 1; p <= 2; p++) {
    const struct mg_pack_box *b = box_of(p == 1 ? ji : ik, "@signature", 0);
    long in0 = dark_pixels(without, p, b->x, b->y, b->width, b->height),
         in1 = dark_pixels(with, p, b->x, b->y, b->width, b->height);
    if (in1 < in0 + 500)
      fail_msg("page %d: %ld dark pixels in the slot with the signature, "
               "%ld without",
               p, in1, in0);
    /* below and right of the slot: unchanged */
    assert_int_equal(dark_pixels(without, p, b->x, b->y + b->height + 1,
                                 b->width, 20),
                     dark_pixels(with, p, b->x, b->y + b->height + 1,
                                 b->width, 20));
    assert_int_equal(dark_pixels(without, p, b->x + b->width + 1, b->y, 40,
                                 b->height),
                     dark_pixels(with, p, b->x + b->width + 1, b->y, 40,
                                 b->height));
    /* aspect 4 in an 80 x 14 mm slot (0.5 mm inset): 13 mm high, so the
     * line is 52 mm long, centred (±1 mm and the round caps) */
    double l, rt;
    /* 1 mm in from the slot's sides, off its rules */
    dark_span(with, p, b->x + 1, b->y, b->width - 2, b->height, &l, &rt);
    double len = rt - l, mid = 1 + (l + rt) / 2;
    if (l < 0 || len < 51 || len > 55 || mid < b->width / 2 - 1 ||
        mid > b->width / 2 + 1)
      fail_msg("page %d: the line spans %.1f..%.1f mm of the %.0f mm slot", p,
               l, rt, b->width);
  }
  /* vector: no image in the whole PDF */
  char *img = rt_run("pdfimages -list '%s/sig.pdf'", dir);
  int lines = 0;
  for (char *q = img; (q = strchr(q, '\n')); q++)
    lines++;
  if (lines > 2)
    fail_msg("images in the PDF:\n%s", img);
  free(img);

  /* bad signatures */
  unsigned char *pdf = NULL;
  size_t len = 0;
  struct mg_err err = {{0}};
  struct mg_form_point off[] = {{0.5f, 1.5f, 0.01f}};
  size_t one[] = {1}, wrong[] = {4};
  struct mg_form_signature bad[] = {
      {LINE, 5, LINE_ENDS, 1, 0.0},  /* no aspect */
      {off, 1, one, 1, 3.0},         /* outside the canvas */
      {LINE, 5, wrong, 1, 3.0},      /* ends before the last point */
      {LINE, 5, NULL, 1, 3.0},       /* no ends */
      {LINE, 5, LINE_ENDS, 0, 3.0},  /* points without strokes */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    r.signature = &bad[i];
    if (mg_form_render_pdf(&r, &pdf, &len, &err) != -EINVAL)
      fail_msg("bad signature %zu accepted", i);
    assert_null(pdf);
    assert_non_null(strstr(err.msg, "signature"));
  }
  /* an empty signature is no signature */
  struct mg_form_signature empty = {NULL, 0, NULL, 0, 3.0};
  r.signature = &empty;
  render_to(&r, "emptysig.pdf");
}

/* P3: fonts are embedded subsets; a private-use character prints in the
 * pack's gaiji font and reads back as itself. */
static void test_fonts(void **state) {
  (void)state;
  const struct mg_pack_form *ik = form("inkan_touroku");
  struct values v = {0};
  applicant(&v);
  v.v[1].text = GAIJI_TAKA "田"; /* name.family */
  struct mg_form_sheet s = {ik, v.v, v.n, NULL};
  struct mg_form_render r = base(&s, 1);
  render_to(&r, "gaiji.pdf");
  char *fonts = rt_run("pdffonts '%s/gaiji.pdf'", dir);
  int gaiji = 0, gothic = 0, n = 0;
  for (char *line = strtok(fonts, "\n"); line; line = strtok(NULL, "\n")) {
    if (strncmp(line, "name", 4) == 0 || line[0] == '-')
      continue;
    n++;
    /* columns: name type encoding emb sub uni id */
    if (!strstr(line, " yes yes "))
      fail_msg("not an embedded subset: %s", line);
    gaiji += strstr(line, "+ShunanGaiji") != NULL;
    gothic += strstr(line, "+IPAexGothic") != NULL;
  }
  free(fonts);
  assert_true(n >= 2);
  assert_true(gaiji == 1);
  assert_true(gothic >= 1);
  expect_in_box("gaiji.pdf", 1, box_of(ik, "name.family", 0),
                GAIJI_TAKA "田");
  /* without a PUA character, no gaiji font */
  v.v[1].text = "周防";
  render_to(&r, "nogaiji.pdf");
  fonts = rt_run("pdffonts '%s/nogaiji.pdf'", dir);
  assert_null(strstr(fonts, "ShunanGaiji"));
  free(fonts);

  /* a pack without fonts: the system's IPAexGothic */
  struct mg_pack bare = *pack;
  bare.n_fonts = 0;
  r.pack = &bare;
  render_to(&r, "system.pdf");
  fonts = rt_run("pdffonts '%s/system.pdf'", dir);
  assert_non_null(strstr(fonts, "IPAexGothic"));
  free(fonts);
  expect_in_box("system.pdf", 1, box_of(ik, "name.family", 0), "周防");
}

/* A template missing, broken, too short or of the wrong size, a font
 * missing, and bad input: errors that name the form, page and box. */
static void test_errors(void **state) {
  (void)state;
  unsigned char *pdf = NULL;
  size_t len = 0;
  struct mg_err err = {{0}};
  char pdir[128], cmd[1024];
  snprintf(pdir, sizeof(pdir), "%s/errpack", dir);
  snprintf(cmd, sizeof(cmd), "mkdir -p '%s/forms/inkan_touroku' && ln -s "
           "'%s/fonts' '%s/fonts'",
           pdir, SHUNAN, pdir);
  assert_int_equal(system(cmd), 0);
  const struct mg_pack_form *ik = form("inkan_touroku");
  struct mg_form_sheet s = {ik, NULL, 0, NULL};
  struct mg_form_render r = base(&s, 1);
  r.pack_dir = pdir;

  assert_int_equal(mg_form_render_pdf(&r, &pdf, &len, &err), -ENOENT);
  assert_null(pdf);
  assert_non_null(strstr(err.msg, "inkan_touroku"));
  assert_non_null(strstr(err.msg, "template"));

  char tpl[300];
  snprintf(tpl, sizeof(tpl), "%s/forms/inkan_touroku/template.pdf", pdir);
  FILE *fp = fopen(tpl, "w");
  assert_non_null(fp);
  fputs("%PDF-1.4\nthis is not a PDF\n", fp);
  fclose(fp);
  assert_int_equal(mg_form_render_pdf(&r, &pdf, &len, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "inkan_touroku"));

  /* a real template, then the form asks for more pages or another size */
  snprintf(cmd, sizeof(cmd), "cp '%s/forms/inkan_touroku/template.pdf' '%s'",
           SHUNAN, tpl);
  assert_int_equal(system(cmd), 0);
  struct mg_pack_form two = *ik;
  two.pages = 2;
  s.form = &two;
  assert_int_equal(mg_form_render_pdf(&r, &pdf, &len, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "pages"));
  struct mg_pack_form b5 = *ik;
  b5.page_width = 182;
  b5.page_height = 257;
  s.form = &b5;
  assert_int_equal(mg_form_render_pdf(&r, &pdf, &len, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "page_size"));
  assert_non_null(strstr(err.msg, "page 1"));
  s.form = ik;
  render_to(&r, "errpack-ok.pdf");

  /* a value that is not UTF-8: the form, page and box are named */
  struct mg_form_value bad = {"kana", 0, "\xE3\x82"};
  s.values = &bad;
  s.n_values = 1;
  assert_int_equal(mg_form_render_pdf(&r, &pdf, &len, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "inkan_touroku page 1 box \"kana\""));
  assert_non_null(strstr(err.msg, "layout.csv:"));
  s.values = NULL;
  s.n_values = 0;

  /* a font missing */
  snprintf(cmd, sizeof(cmd), "rm '%s/fonts' && mkdir '%s/fonts'", pdir, pdir);
  assert_int_equal(system(cmd), 0);
  assert_int_equal(mg_form_render_pdf(&r, &pdf, &len, &err), -ENOENT);
  assert_non_null(strstr(err.msg, "fonts/gaiji.ttf"));

  /* bad calls */
  r.pack_dir = "packs/shunan";
  assert_int_equal(mg_form_render_pdf(&r, &pdf, &len, &err), -EINVAL);
  r.pack_dir = SHUNAN;
  r.n_sheets = 0;
  assert_int_equal(mg_form_render_pdf(&r, &pdf, &len, &err), -EINVAL);
  r.n_sheets = 1;
  s.n_values = 2;
  assert_int_equal(mg_form_render_pdf(&r, &pdf, &len, &err), -EINVAL);
  s.n_values = 0;
  s.stamp = "\xFF";
  assert_int_equal(mg_form_render_pdf(&r, &pdf, &len, &err), -EINVAL);
  s.stamp = NULL;
  assert_int_equal(mg_form_render_pdf(NULL, &pdf, &len, &err), -EINVAL);
  assert_int_equal(mg_form_render_pdf(&r, NULL, &len, &err), -EINVAL);
  assert_int_equal(mg_form_render_pdf(&r, &pdf, NULL, &err), -EINVAL);
}

/* A template replaced in place is read again (the cache is keyed by
 * inode, size and mtime), not served stale. */
static void test_template_changed(void **state) {
  (void)state;
  char pdir[128], cmd[2048];
  snprintf(pdir, sizeof(pdir), "%s/chpack", dir);
  snprintf(cmd, sizeof(cmd),
           "mkdir -p '%s/forms/inkan_touroku' && ln -s '%s/fonts' '%s/fonts' "
           "&& cp '%s/forms/inkan_touroku/template.pdf' "
           "'%s/forms/inkan_touroku/'",
           pdir, SHUNAN, pdir, SHUNAN, pdir);
  assert_int_equal(system(cmd), 0);
  struct mg_form_sheet s = {form("inkan_touroku"), NULL, 0, NULL};
  struct mg_form_render r = base(&s, 1);
  r.pack_dir = pdir;
  render_to(&r, "before.pdf");
  char *t = rt_run("pdftotext '%s/before.pdf' - | tr -d ' '", dir);
  assert_non_null(strstr(t, "印鑑登録申請書"));
  free(t);
  snprintf(cmd, sizeof(cmd),
           "cp '%s/forms/zei_shoumei/template.pdf' "
           "'%s/forms/inkan_touroku/template.pdf.new' && mv "
           "'%s/forms/inkan_touroku/template.pdf.new' "
           "'%s/forms/inkan_touroku/template.pdf'",
           SHUNAN, pdir, pdir, pdir);
  assert_int_equal(system(cmd), 0);
  render_to(&r, "after.pdf");
  t = rt_run("pdftotext '%s/after.pdf' - | tr -d ' '", dir);
  assert_null(strstr(t, "印鑑登録申請書"));
  assert_non_null(strstr(t, "税務証明交付申請書"));
  free(t);
}

/* ---- threads ---- */

struct job {
  const struct mg_form_render *r;
  unsigned char *pdf;
  size_t len;
  int rc;
};

/* The PDF with its creation time blanked (the only part that may differ
 * between two renders of the same input). */
static void blank_date(unsigned char *pdf, size_t len) {
  unsigned char *p = memmem(pdf, len, "/CreationDate (D:", 17);
  if (p)
    for (p += 17; p < pdf + len && *p != ')'; p++)
      *p = '0';
}

static void *worker(void *arg) {
  struct job *j = arg;
  struct mg_err err = {{0}};
  for (int i = 0; i < 3 && !j->rc; i++) {
    free(j->pdf);
    j->pdf = NULL;
    j->rc = mg_form_render_pdf(j->r, &j->pdf, &j->len, &err);
  }
  return NULL;
}

/* Four renders at once, as on four uv workers, each with its own caches
 * (released at the thread's exit): the same bytes as one alone. */
static void test_threads(void **state) {
  (void)state;
  struct values v[4];
  memset(v, 0, sizeof(v));
  const char *ids[] = {"jumin_idou", "kokuho_idou", "inkan_touroku",
                       "jidouteate"};
  struct mg_form_sheet s[4];
  for (int i = 0; i < 4; i++) {
    applicant(&v[i]);
    household(&v[i], 0);
    s[i] = (struct mg_form_sheet){form(ids[i]), v[i].v, v[i].n, "1/4"};
  }
  struct mg_form_signature sig = {LINE, 5, LINE_ENDS, 1, 4.0};
  struct mg_form_render r = base(s, 4);
  r.signature = &sig;
  struct job ref = {&r, NULL, 0, 0};
  worker(&ref);
  assert_int_equal(ref.rc, 0);
  blank_date(ref.pdf, ref.len);
  pthread_t t[4];
  struct job j[4];
  for (int i = 0; i < 4; i++) {
    j[i] = (struct job){&r, NULL, 0, 0};
    assert_int_equal(pthread_create(&t[i], NULL, worker, &j[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(j[i].rc, 0);
    blank_date(j[i].pdf, j[i].len);
    assert_int_equal(j[i].len, ref.len);
    assert_memory_equal(j[i].pdf, ref.pdf, ref.len);
    free(j[i].pdf);
  }
  free(ref.pdf);
}

static int group_setup(void **state) {
  (void)state;
  if (rt_pack_load(SHUNAN, &pack) || rt_pack_load(MINI, &mini))
    return -1;
  snprintf(dir, sizeof(dir), "/tmp/mg-formpdf.XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  int rc = rt_rm_rf(dir);
  mg_pack_free(pack);
  mg_pack_free(mini);
  return rc;
}

static void *suite(void *arg) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bundle),
      cmocka_unit_test(test_fit),
      cmocka_unit_test(test_font_scale),
      cmocka_unit_test(test_mask),
      cmocka_unit_test(test_signature),
      cmocka_unit_test(test_fonts),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_template_changed),
      cmocka_unit_test(test_threads),
  };
  *(int *)arg = cmocka_run_group_tests(tests, group_setup, group_teardown);
  return NULL;
}

int main(void) { return rt_main(suite); }
