/*
 * form_pdf.h — filled forms printed onto the city's template PDFs (P1, P2,
 * P3, FG2, FG3, FM4, FM5, S1): every page of a form's template.pdf is drawn
 * as the vector background, the pack's layout.csv boxes get their values,
 * `@mask` boxes are painted white and `@signature` boxes get the visitor's
 * one signature.  Layout rules are docs/packs.md "layout.csv".
 *
 * Rendered with poppler-glib (the template) and cairo + pango (the values);
 * fonts are embedded as subsets.  Opened templates and the pack's font maps
 * are cached per thread (form_pdf.c says what and why).
 *
 * Thread-safe: runs on uv worker threads, several at once.  Nothing is
 * logged: the PDF holds residents' data.
 */
#ifndef MG_FORM_PDF_H
#define MG_FORM_PDF_H
#include <stddef.h>

#include "err.h"
#include "pack.h"

/* The value of one box, ready except for what depends on the box:
 *  - dates come as ISO "YYYY-MM-DD" and are printed by the box's `format`
 *    (wareki → 令和8年11月25日, wareki_short → R8.11.25, iso; default
 *    wareki); a value that is not an ISO date is printed as is;
 *  - checkbox values "yes"/"no": "yes" prints the box's `format` mark
 *    (default ✓), "no" nothing;
 *  - select/radio values are choice `value`s, printed as their `label` from
 *    the pack's list (field->choices); a value not in the list as is;
 *  - everything else printed as is. */
struct mg_form_value {
  const char *field; /* the box's field: "name", "name.family", "name.given"
                        (name_split halves) */
  long row;          /* group row 1..rows; 0 outside groups */
  const char *text;  /* UTF-8, borrowed; NULL or "" prints nothing */
};

/* One sheet: a form of the pack with its values.  A visit's form copies
 * (I4) are separate sheets with their own rows. */
struct mg_form_sheet {
  const struct mg_pack_form *form;    /* borrowed; its choice lists are
                                         looked up in mg_form_render.pack
                                         and its template under pack_dir */
  const struct mg_form_value *values; /* borrowed, any order; a value whose
                                         field/row has no box is ignored */
  size_t n_values;
  const char *stamp; /* small footer text printed at the bottom margin of
                        every page, e.g. "受付番号 1234-5678  1/2"; NULL =
                        none */
};

/* The visitor's one signature (S1): strokes of points in a canvas of
 * aspect `aspect` (width/height); x, y in [0,1] from the canvas's top-left;
 * w = line width as a fraction of the canvas height (from pen pressure). */
struct mg_form_point {
  float x, y, w;
};
struct mg_form_signature {
  const struct mg_form_point *points; /* borrowed */
  size_t n_points;
  const size_t *stroke_ends; /* borrowed: index one past the last point of
                                each stroke, increasing, the last n_points */
  size_t n_strokes;
  double aspect; /* 0.1 .. 20 */
};

struct mg_form_render {
  const struct mg_pack *pack; /* borrowed */
  const char *pack_dir; /* absolute: the release folder
                           (forms/<id>/template.pdf, fonts/) */
  const struct mg_form_sheet *sheets; /* borrowed */
  size_t n_sheets; /* >= 1: all into one PDF, in order */
  const struct mg_form_signature *signature; /* NULL: signature slots stay
                                                empty */
  double font_scale; /* P2/FG2: 1.0 normal; 0.5..2.0 scales every box's
                        font size (then shrink/wrap still fit the box);
                        0 is taken as 1.0 */
};

/* Render every page of every sheet (form->pages pages each, the template
 * page drawn with poppler-glib as the background, vector, not rasterised)
 * into one PDF; fonts embedded as subsets.  Boxes: text fitted into the box
 * by the box's rules (wrap or shrink; max_chars cut with the remainder
 * dropped; align; vertically centred for one line); `@signature` boxes get
 * the signature (vector paths, aspect kept, centred); `@mask` boxes are
 * painted white (FM5) after the template and before values.  Fonts: the
 * box's `font` family from fonts.csv, else the pack's default font, else
 * IPAexGothic; characters the font lacks — in particular the city's 外字 in
 * the Private Use Area — fall back to the pack's `gaiji` font (P3); a
 * Private Use Area character the gaiji font has is always taken from it
 * (a default font's own PUA glyphs must not hide the city's 外字).
 * 0 with *pdf (malloc'd, caller frees) and *len, or a negative errno with
 * err naming the form, page and box (e.g. -ENOENT template or font
 * missing, -EINVAL bad template or input, -EIO cairo/poppler failure,
 * -ENOMEM).  Thread-safe: several renders at once on uv worker threads;
 * nothing is logged (the PDF holds residents' data). */
int mg_form_render_pdf(const struct mg_form_render *r, unsigned char **pdf,
                       size_t *len, struct mg_err *err);

/* Text longer than its box (FG3) is not an error at render time (it is
 * shrunk or wrapped); the form validator asks this before accepting a value:
 * 1 when `text` fits into `box` (a box of a form of r->pack, whose field
 * says how the value prints; any other box prints it as is; r->sheets is
 * not used) at its font size × font_scale with the box's wrap rule without
 * going below a minimum legible size (MG_FORM_MIN_PT), 0 when it does not
 * or when it has more characters than the box's max_chars (they would be
 * dropped), negative errno on failure.  `text` is the value as given to
 * mg_form_render_pdf (a date as ISO, a choice as its value). */
#define MG_FORM_MIN_PT 6.0
int mg_form_text_fits(const struct mg_form_render *r,
                      const struct mg_pack_box *box, const char *text);

/* A2: one page of the first sheet of `r` as a PNG `width` pixels wide
 * (the height keeps the page's aspect), drawn exactly as
 * mg_form_render_pdf draws it.  values 0: the template page and its
 * `@mask` boxes only — the background the tablet lays its own fields over,
 * with no resident's data (cacheable per pack release, form, page and
 * width); values 1: the page as printed, with the sheet's values, the
 * signature, the stamp and r->font_scale (a preview: it holds residents'
 * data).  0 with *png (malloc'd, caller frees) and *len, or a negative
 * errno with err naming the form and page (-EINVAL page or width out of
 * range, and as mg_form_render_pdf).  Thread-safe (render lock held). */
#define MG_FORM_PNG_MIN_W 100
#define MG_FORM_PNG_MAX_W 2400
int mg_form_page_png(const struct mg_form_render *r, long page, int width,
                     int values, unsigned char **png, size_t *len,
                     struct mg_err *err);

/* A2: where each field prints, for the tablet to lay its values over the
 * page image and to show the field being typed, written as one JSON value:
 * {"pages": N, "page_size": [W, H], "boxes": [{"field", "row", "page",
 * "x", "y", "w", "h"}, …]} in mm from the page's top-left, in layout.csv
 * order.  Split names give "ID.family" and "ID.given", "@signature" slots
 * are listed, "@mask" boxes are not; staff_view 0 (the visitor's view)
 * leaves out staff-only fields (FM7). */
struct mg_jw;
void mg_form_layout_json(const struct mg_pack_form *f, int staff_view,
                         struct mg_jw *jw);

#endif
