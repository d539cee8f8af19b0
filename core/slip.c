/*
 * slip.c — the guide slip of slip.h.  A slip is made in three steps so that
 * every text is shaped once and the page count ("1/2 ページ") is known
 * before anything is drawn: (1) every block of text becomes a PangoLayout
 * in a list of rows, (2) the rows are placed on pages from their heights,
 * (3) the pages are drawn into a PDF surface writing to memory.
 *
 * Units are PDF points (the pango context runs at 72 dpi).  Strings of
 * struct mg_slip and mg_slip_item that are NULL are taken as "" (the header
 * says "" for none; a NULL slips through from callers that build items from
 * optional JSON fields, and printing nothing is the right result).
 */
#include "slip.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cairo-pdf.h>
#include <fontconfig/fontconfig.h>
#include <pango/pangocairo.h>
#include <pango/pangofc-fontmap.h>
#include <qrencode.h>
#include <zint.h>

#include "buf.h"
#include "render_lock.h"

#define MM (72.0 / 25.4)
#define PAGE_W (210.0 * MM)
#define PAGE_H (297.0 * MM)
#define MARGIN (15.0 * MM)
#define CONTENT_W (PAGE_W - 2 * MARGIN)
#define TOP (13.0 * MM)
#define BOTTOM (PAGE_H - 21.0 * MM) /* end of the body; the footer is below */
#define QR_SIZE (34.0 * MM)         /* the symbol and its 4-module quiet zone */
#define QR_MAX 512                  /* payload bytes (version 18-M at most) */
#define BAR_MODULE (0.42 * MM)      /* 2.5 px at 150 dpi: scanners need >= 2 */
#define BAR_QUIET (10 * BAR_MODULE) /* Code 128 asks for 10 modules each side */
#define BAR_H (12.0 * MM)
#define NUM_COL (9.0 * MM)          /* the item number badge */
#define LABEL_X (MARGIN + NUM_COL)
#define VALUE_X (LABEL_X + 15.0 * MM)
#define VALUE_W (PAGE_W - MARGIN - VALUE_X)
#define MAX_TEXT_H (200.0 * MM)     /* longer texts are cut with "…" so that
                                       every row fits on a page */
#define FACES_MAX 4                 /* font maps kept per thread */
#define SYSTEM_FAMILY "IPAexGothic"

struct rgb {
  double r, g, b;
};
static const struct rgb INK = {0.10, 0.10, 0.10}, GRAY = {0.40, 0.40, 0.40},
                        RULE = {0.78, 0.78, 0.78}, NAVY = {0.12, 0.23, 0.41},
                        BLUE = {0.12, 0.37, 0.66}, GREEN = {0.18, 0.49, 0.20},
                        WHITE = {1, 1, 1}, BLACK = {0, 0, 0};

/* ---- font maps, cached per thread ---- */


struct face {
  char *file; /* NULL: the system's fonts */
  char family[128];
  PangoFontMap *fm;
};
struct faces {
  size_t n;
  struct face f[FACES_MAX];
};

/* Set once, then read only: the key of the per-thread cache. */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t faces_key;
static int faces_key_ok;

static void face_free(struct face *f) {
  /* pango < 1.54 never drops the FcConfig of set_config on finalize */
  if (f->fm && f->file)
    pango_fc_font_map_set_config((PangoFcFontMap *)f->fm, NULL);
  if (f->fm)
    g_object_unref(f->fm);
  free(f->file);
  memset(f, 0, sizeof(*f));
}

/* Thread exit: a uv worker's font maps go with it. */
static void faces_free(void *p) {
  struct faces *c = p;
  mg__render_lock();
  for (size_t i = 0; i < c->n; i++)
    face_free(&c->f[i]);
  mg__render_unlock();
  free(c);
}

static void init_once(void) {
  faces_key_ok = pthread_key_create(&faces_key, faces_free) == 0;
}

/* A font map that sees only `file` (a private FcConfig: the system's fonts
 * and other threads are untouched). */
static int face_load_file(struct face *f, const char *file,
                          struct mg_err *err) {
  int rc = 0;
  FcConfig *cfg = NULL;
  FcChar8 *family = NULL;
  GType fc_type;
  cfg = FcConfigCreate();
  if (!cfg)
    return mg_err_set(err, -ENOMEM, "slip: out of memory");
  FcFontSet *set = NULL;
  if (FcConfigAppFontAddFile(cfg, (const FcChar8 *)file))
    set = FcConfigGetFonts(cfg, FcSetApplication);
  if (!set || set->nfont < 1 ||
      FcPatternGetString(set->fonts[0], FC_FAMILY, 0, &family) != FcResultMatch) {
    rc = mg_err_set(err, -EINVAL, "slip: font_file %s is not a font", file);
    goto out;
  }
  snprintf(f->family, sizeof(f->family), "%s", (const char *)family);
  f->file = strdup(file);
  if (!f->file) {
    rc = mg_err_set(err, -ENOMEM, "slip: out of memory");
    goto out;
  }
  f->fm = pango_cairo_font_map_new_for_font_type(CAIRO_FONT_TYPE_FT);
  fc_type = g_type_from_name("PangoFcFontMap"); /* registered by the above */
  if (f->fm && (!fc_type || !G_TYPE_CHECK_INSTANCE_TYPE(f->fm, fc_type)))
    g_clear_object(&f->fm);
  if (!f->fm) {
    rc = mg_err_set(err, -EIO, "slip: pango has no fontconfig font map");
    goto out;
  }
  pango_fc_font_map_set_config((PangoFcFontMap *)f->fm, cfg); /* takes its own reference */
out:
  FcConfigDestroy(cfg);
  if (rc)
    face_free(f);
  return rc;
}

/* The calling thread's font map for `file` (NULL: system fonts).  Making
 * one costs a font scan and a cold glyph cache, so each thread keeps the
 * last FACES_MAX; the pointer stays valid until this thread's next call. */
static int face_get(const char *file, struct face **out, struct mg_err *err) {
  struct stat st;
  pthread_once(&once, init_once);
  if (!faces_key_ok)
    return mg_err_set(err, -ENOMEM, "slip: no thread-local key");
  /* checked on every call, cached or not, so the answer never depends on
   * which worker thread runs the render */
  if (file && stat(file, &st) != 0)
    return mg_err_set(err, -errno, "slip: font_file %s: %s", file,
                      errno == ENOENT ? "no such file" : "cannot be read");
  if (file && !S_ISREG(st.st_mode))
    return mg_err_set(err, -EINVAL, "slip: font_file %s is not a file", file);
  struct faces *c = pthread_getspecific(faces_key);
  if (!c) {
    c = calloc(1, sizeof(*c));
    if (!c || pthread_setspecific(faces_key, c) != 0) {
      free(c);
      return mg_err_set(err, -ENOMEM, "slip: out of memory");
    }
  }
  for (size_t i = 0; i < c->n; i++)
    if (file ? c->f[i].file && strcmp(c->f[i].file, file) == 0
             : !c->f[i].file) {
      *out = &c->f[i];
      return 0;
    }
  if (c->n == FACES_MAX) { /* the oldest goes */
    face_free(&c->f[0]);
    memmove(&c->f[0], &c->f[1], (FACES_MAX - 1) * sizeof(c->f[0]));
    c->n--;
  }
  struct face f = {0};
  if (file) {
    int rc = face_load_file(&f, file, err);
    if (rc)
      return rc;
  } else {
    f.fm = pango_cairo_font_map_new();
    snprintf(f.family, sizeof(f.family), "%s", SYSTEM_FAMILY);
  }
  c->f[c->n] = f;
  *out = &c->f[c->n++];
  return 0;
}

/* ---- rows ---- */

enum kind { K_TEXT, K_HEAD, K_TITLE, K_BOX };
enum { F_GROUP = 1, /* starts a block kept on one page when it fits */
       F_KEEP = 2,  /* not the last row of a page */
       F_MUTED = 4, /* a done item */
       F_TOP = 8 }; /* placed first on its page */

struct row {
  enum kind kind;
  int flags;
  PangoLayout *label, *text; /* K_HEAD: label is the item number */
  PangoLayout *info, *done;  /* K_HEAD: the 「ご案内」 and 「済」 badges */
  double label_x, text_x;
  double label_dy, text_dy;  /* offsets that put both on one baseline */
  double gap, h;             /* space above (dropped at a page top), height */
  int page;
  double y;
};

struct slip {
  const struct mg_slip *s;
  cairo_t *cr;
  PangoContext *pc;
  PangoFontDescription *fd;
  char num[10]; /* 1234-5678 */
  QRcode *qr;
  struct zint_symbol *bar;
  PangoLayout *hdr[9]; /* page 1 header and number box, continuation header,
                          footer */
  double top1, top2;   /* where the body starts on page 1 and on others */
  struct row *rows;
  size_t n;
  int pages;
};

static const char *nz(const char *p) { return p ? p : ""; }

static double lw(PangoLayout *l) {
  int w;
  pango_layout_get_size(l, &w, NULL);
  return (double)w / PANGO_SCALE;
}

static double lh(PangoLayout *l) {
  int h;
  pango_layout_get_size(l, NULL, &h);
  return (double)h / PANGO_SCALE;
}

static double base(PangoLayout *l) {
  return (double)pango_layout_get_baseline(l) / PANGO_SCALE;
}

/* A layout of `text` at `pt` points; width > 0 wraps (Japanese between
 * characters, over-long Latin words too) and caps the height.  Like every
 * glib allocation, pango's abort on OOM: only our own buffers can report
 * -ENOMEM. */
static PangoLayout *mk(struct slip *r, const char *text, double pt,
                       double width) {
  PangoLayout *l = pango_layout_new(r->pc);
  pango_font_description_set_size(r->fd, (gint)(pt * PANGO_SCALE + 0.5));
  pango_layout_set_font_description(l, r->fd);
  if (width > 0) {
    pango_layout_set_width(l, (int)(width * PANGO_SCALE));
    pango_layout_set_wrap(l, PANGO_WRAP_WORD_CHAR);
    pango_layout_set_height(l, (int)(MAX_TEXT_H * PANGO_SCALE));
    pango_layout_set_ellipsize(l, PANGO_ELLIPSIZE_END);
  }
  pango_layout_set_text(l, text, -1);
  return l;
}

/* Append a row that takes `label` and `text` (room was made by build). */
static struct row *add(struct slip *r, enum kind kind, int flags,
                       PangoLayout *label, double label_x, PangoLayout *text,
                       double text_x, double gap) {
  struct row *w = &r->rows[r->n++];
  *w = (struct row){.kind = kind, .flags = flags, .label = label,
                    .text = text, .label_x = label_x, .text_x = text_x,
                    .gap = gap};
  w->h = lh(text) + (kind == K_TITLE ? 2 * MM : 0); /* the underline */
  if (label) {
    double d = base(text) - base(label);
    w->label_dy = MAX(d, 0);
    w->text_dy = MAX(-d, 0);
    w->h = MAX(w->text_dy + lh(text), w->label_dy + lh(label));
  }
  return w;
}

/* A labelled line such as 期限; nothing when the value is empty. */
static void field(struct slip *r, const char *label, const char *value,
                  double pt, double gap) {
  if (value[0])
    add(r, K_TEXT, 0, label[0] ? mk(r, label, 8.5, 0) : NULL, LABEL_X,
        mk(r, value, pt, VALUE_W), VALUE_X, gap);
}

#define ITEM_ROWS 6 /* besides one per document */

#define BADGE_H (6.5 * MM)

static void item_rows(struct slip *r, const struct mg_slip_item *it,
                      size_t i) {
  char num[24];
  int done = strcmp(nz(it->status), "done") == 0;
  /* room for the badges: 「ご案内」 takes 13 mm, 「済」 8 mm, plus gaps */
  double name_w = CONTENT_W - NUM_COL - (it->info ? 15 * MM : 0) -
                  (done ? 10 * MM : 0);
  snprintf(num, sizeof(num), "%zu", i + 1);
  /* the first item stays with the list's title: no group of its own */
  struct row *w =
      add(r, K_HEAD, (i ? F_GROUP : 0) | F_KEEP | (done ? F_MUTED : 0),
          mk(r, num, 11, 0), MARGIN, mk(r, nz(it->name), 13.5, name_w),
          LABEL_X, i ? 4.5 * MM : 2 * MM);
  w->info = it->info ? mk(r, "ご案内", 8.5, 0) : NULL;
  w->done = done ? mk(r, "済", 9.5, 0) : NULL;
  /* the number centred in its badge, the name on the number's baseline */
  w->label_dy = (BADGE_H - lh(w->label)) / 2;
  w->text_dy = w->label_dy + base(w->label) - base(w->text);
  w->h = MAX(BADGE_H, w->text_dy + lh(w->text));

  const char *fl = nz(it->floor), *co = nz(it->counter);
  char *where = g_strconcat(fl, fl[0] && co[0] ? " " : "", co, NULL);
  field(r, "窓口", where, 10.5, 1.5 * MM);
  g_free(where);
  field(r, "", nz(it->counter_note), 9, 0.8 * MM);
  for (size_t d = 0, shown = 0; d < it->n_documents; d++) {
    if (!nz(it->documents[d])[0])
      continue;
    char *t = g_strconcat("・", it->documents[d], NULL);
    PangoLayout *l = mk(r, t, 10, VALUE_W);
    g_free(t);
    pango_layout_set_indent(l, -10 * PANGO_SCALE); /* lines hang after ・ */
    int first = shown++ == 0;
    add(r, K_TEXT, 0, first ? mk(r, "持ち物", 8.5, 0) : NULL, LABEL_X, l,
        VALUE_X, first ? 1.5 * MM : 0.4 * MM);
  }
  field(r, "備考", nz(it->notes), 10, 1.5 * MM);
  field(r, "期限", nz(it->deadline), 10, 1.5 * MM);
  field(r, "対象", nz(it->people), 10, 1.5 * MM);
}

static int build(struct slip *r) {
  const struct mg_slip *s = r->s;
  const char *city = nz(s->city), *at = nz(s->issued_at), *co = nz(s->counter);
  /* every row the slip can have is counted first, so adding never fails */
  size_t max = 5;
  for (size_t i = 0; i < s->n_items; i++) {
    if (s->items[i].n_documents > SIZE_MAX / sizeof(struct row) - max)
      return -ENOMEM;
    max += ITEM_ROWS + s->items[i].n_documents;
  }
  r->rows = calloc(max, sizeof(*r->rows));
  if (!r->rows)
    return -ENOMEM;
  /* page 1 header: a column beside the QR code, then the number box */
  double left_w = CONTENT_W - QR_SIZE - 6 * MM;
  char *issued = g_strconcat(at[0] || co[0] ? "発行 " : "", at,
                             at[0] && co[0] ? "　" : "", co, NULL);
  char *cont =
      g_strconcat(city, city[0] ? "　" : "", "ご案内票（つづき）", NULL);
  char *cnum = g_strconcat("受付番号 ", r->num, NULL);
  r->hdr[0] = mk(r, city, 9, left_w);
  r->hdr[1] = mk(r, "ご案内票", 22, 0);
  r->hdr[2] = mk(r, nz(s->title), 14, left_w);
  r->hdr[3] = mk(r, issued, 9, left_w);
  r->hdr[4] = mk(r, "受付番号", 9.5, 0);
  r->hdr[5] = mk(r, r->num, 30, 0);
  r->hdr[6] = mk(r, cont, 9, CONTENT_W - 60 * MM);
  r->hdr[7] = mk(r, cnum, 12, 0);
  r->hdr[8] = mk(r, "この票を次の窓口でお見せください。", 10.5, 0);
  g_free(issued);
  g_free(cont);
  g_free(cnum);
  double left_h = lh(r->hdr[0]) + lh(r->hdr[1]) + lh(r->hdr[2]) + 2 * MM +
                  lh(r->hdr[3]);
  double box_h = MAX(3 * MM + lh(r->hdr[4]) + lh(r->hdr[5]) + 2 * MM,
                     BAR_H + 9 * MM);
  r->top1 = TOP + MAX(left_h, QR_SIZE) + 4 * MM + box_h + 5 * MM;
  r->top2 = TOP + MAX(lh(r->hdr[6]), lh(r->hdr[7])) + 5 * MM;

  /* name and address: no number column */
  if (nz(s->resident)[0])
    add(r, K_TEXT, 0, mk(r, "お名前", 8.5, 0), MARGIN,
        mk(r, s->resident, 12, CONTENT_W - 18 * MM), MARGIN + 18 * MM, 0);
  if (nz(s->address)[0])
    add(r, K_TEXT, 0, mk(r, "ご住所", 8.5, 0), MARGIN,
        mk(r, s->address, 10.5, CONTENT_W - 18 * MM), MARGIN + 18 * MM,
        1.5 * MM);
  if (s->n_items) {
    char *t = g_strdup_printf("本日のお手続き・ご案内（%zu件）", s->n_items);
    add(r, K_TITLE, F_GROUP | F_KEEP, NULL, 0, mk(r, t, 13, CONTENT_W), MARGIN,
        r->n ? 6 * MM : 0);
    g_free(t);
  }
  for (size_t i = 0; i < s->n_items; i++)
    item_rows(r, &s->items[i], i);
  if (nz(s->free_text)[0]) {
    add(r, K_TITLE, F_GROUP | F_KEEP, NULL, 0, mk(r, "職員からのメモ", 12, 0),
        MARGIN, 7 * MM);
    add(r, K_BOX, 0, NULL, 0, mk(r, s->free_text, 10.5, CONTENT_W - 8 * MM),
        MARGIN + 4 * MM, 2 * MM)->h += 6 * MM; /* the box's padding */
  }
  return 0;
}

/* Place the rows: a block (an item, the memo) goes to a new page when it
 * does not fit in what is left but fits on an empty page; a longer block
 * breaks between rows, never right after a row marked F_KEEP. */
static void paginate(struct slip *r) {
  int page = 1;
  double top = r->top1, y = top;
  for (size_t i = 0; i < r->n; i++) {
    struct row *w = &r->rows[i];
    if (w->flags & F_GROUP && y > top) {
      double gh = w->h;
      for (size_t j = i + 1; j < r->n && !(r->rows[j].flags & F_GROUP); j++)
        gh += r->rows[j].gap + r->rows[j].h;
      if (y + w->gap + gh > BOTTOM && gh <= BOTTOM - r->top2) {
        page++;
        y = top = r->top2;
      }
    }
    double need = (y > top ? w->gap : 0) + w->h;
    if (w->flags & F_KEEP && i + 1 < r->n)
      need += r->rows[i + 1].gap + r->rows[i + 1].h;
    if (y > top && y + need > BOTTOM) {
      page++;
      y = top = r->top2;
    }
    if (y > top)
      y += w->gap;
    else
      w->flags |= F_TOP;
    w->page = page;
    w->y = y;
    y += w->h;
  }
  r->pages = page;
}

static void color(cairo_t *cr, struct rgb c) {
  cairo_set_source_rgb(cr, c.r, c.g, c.b);
}

static void show(cairo_t *cr, PangoLayout *l, double x, double y,
                 struct rgb c) {
  color(cr, c);
  cairo_move_to(cr, x, y);
  pango_cairo_show_layout(cr, l);
}

static void round_rect(cairo_t *cr, double x, double y, double w, double h,
                       double rad) {
  cairo_new_sub_path(cr);
  cairo_arc(cr, x + w - rad, y + rad, rad, -G_PI / 2, 0);
  cairo_arc(cr, x + w - rad, y + h - rad, rad, 0, G_PI / 2);
  cairo_arc(cr, x + rad, y + h - rad, rad, G_PI / 2, G_PI);
  cairo_arc(cr, x + rad, y + rad, rad, G_PI, 3 * G_PI / 2);
  cairo_close_path(cr);
}

static void hline(cairo_t *cr, double y, double width, struct rgb c) {
  color(cr, c);
  cairo_set_line_width(cr, width);
  cairo_move_to(cr, MARGIN, y);
  cairo_line_to(cr, PAGE_W - MARGIN, y);
  cairo_stroke(cr);
}

/* A badge right-aligned at x_right; returns its left edge. */
static double badge(cairo_t *cr, PangoLayout *l, double x_right, double y,
                    int filled, struct rgb c) {
  double w = lw(l) + 4 * MM, h = lh(l) + 1.2 * MM;
  double x = x_right - w, by = y + (BADGE_H - h) / 2;
  round_rect(cr, x, by, w, h, 1 * MM);
  color(cr, c);
  cairo_set_line_width(cr, 0.8);
  if (filled)
    cairo_fill(cr);
  else
    cairo_stroke(cr);
  show(cr, l, x + 2 * MM, by + 0.6 * MM, filled ? WHITE : c);
  return x - 1.5 * MM;
}

static void draw_row(struct slip *r, const struct row *w) {
  cairo_t *cr = r->cr;
  double y = w->y;
  switch (w->kind) {
  case K_HEAD: {
    int muted = w->flags & F_MUTED;
    if ((w->flags & (F_GROUP | F_TOP)) == F_GROUP) /* not under a title */
      hline(cr, y - w->gap / 2, 0.5, RULE);
    double bw = MAX(BADGE_H, lw(w->label) + 2 * MM);
    round_rect(cr, MARGIN, y, bw, BADGE_H, 1.2 * MM);
    color(cr, muted ? GRAY : NAVY);
    cairo_fill(cr);
    show(cr, w->label, MARGIN + (bw - lw(w->label)) / 2, y + w->label_dy,
         WHITE);
    show(cr, w->text, w->text_x, y + w->text_dy, muted ? GRAY : INK);
    double x = PAGE_W - MARGIN;
    if (w->done)
      x = badge(cr, w->done, x, y, 1, GREEN);
    if (w->info)
      badge(cr, w->info, x, y, 0, BLUE);
    break;
  }
  case K_TEXT:
    if (w->label)
      show(cr, w->label, w->label_x, y + w->label_dy, GRAY);
    show(cr, w->text, w->text_x, y + w->text_dy, INK);
    break;
  case K_TITLE:
    show(cr, w->text, w->text_x, y, NAVY);
    hline(cr, y + w->h - 0.6 * MM, 0.8, NAVY);
    break;
  case K_BOX:
    round_rect(cr, MARGIN, y, CONTENT_W, w->h, 2 * MM);
    color(cr, GRAY);
    cairo_set_line_width(cr, 0.8);
    cairo_stroke(cr);
    show(cr, w->text, w->text_x, y + 3 * MM, INK);
    break;
  }
}

/* The QR code as filled rectangles, one per run of dark modules, in one
 * path (a single fill leaves no seams between neighbours). */
static void draw_qr(struct slip *r, double x, double y) {
  const QRcode *q = r->qr;
  int n = q->width;
  double m = QR_SIZE / (n + 8);
  for (int j = 0; j < n; j++)
    for (int i = 0; i < n;) {
      int k = i;
      while (k < n && q->data[j * n + k] & 1)
        k++;
      if (k > i)
        cairo_rectangle(r->cr, x + (4 + i) * m, y + (4 + j) * m, (k - i) * m,
                        m);
      i = k > i ? k : i + 1;
    }
  color(r->cr, BLACK);
  cairo_fill(r->cr);
}

/* zint's bars, scaled so that one module is BAR_MODULE wide; every
 * Code 128 bar is full height, so only x and width are taken. */
static void draw_bars(struct slip *r, double x, double y) {
  const struct zint_vector_rect *v;
  double x0 = 1e9, x1 = -1e9;
  for (v = r->bar->vector->rectangles; v; v = v->next) {
    x0 = MIN(x0, v->x);
    x1 = MAX(x1, v->x + v->width);
  }
  double k = r->bar->width * BAR_MODULE / (x1 - x0);
  for (v = r->bar->vector->rectangles; v; v = v->next)
    cairo_rectangle(r->cr, x + (v->x - x0) * k, y, v->width * k, BAR_H);
  color(r->cr, BLACK);
  cairo_fill(r->cr);
}

static void draw_header(struct slip *r) {
  cairo_t *cr = r->cr;
  double y = TOP;
  show(cr, r->hdr[0], MARGIN, y, GRAY);
  y += lh(r->hdr[0]);
  show(cr, r->hdr[1], MARGIN, y, NAVY);
  y += lh(r->hdr[1]);
  show(cr, r->hdr[2], MARGIN, y, INK);
  y += lh(r->hdr[2]) + 2 * MM;
  show(cr, r->hdr[3], MARGIN, y, GRAY);
  y += lh(r->hdr[3]);
  draw_qr(r, PAGE_W - MARGIN - QR_SIZE, TOP);
  /* the number box */
  y = TOP + MAX(y - TOP, QR_SIZE) + 4 * MM;
  double h = r->top1 - 5 * MM - y;
  round_rect(cr, MARGIN, y, CONTENT_W, h, 2 * MM);
  color(cr, NAVY);
  cairo_set_line_width(cr, 1.2);
  cairo_stroke(cr);
  show(cr, r->hdr[4], MARGIN + 5 * MM, y + 3 * MM, NAVY);
  show(cr, r->hdr[5], MARGIN + 5 * MM, y + 3 * MM + lh(r->hdr[4]), INK);
  /* bars right-aligned, the quiet zone kept clear inside the border */
  double bw = r->bar->width * BAR_MODULE;
  draw_bars(r, PAGE_W - MARGIN - 2 * MM - BAR_QUIET - bw, y + (h - BAR_H) / 2);
}

static void draw_cont_header(struct slip *r) {
  double d = base(r->hdr[7]) - base(r->hdr[6]);
  show(r->cr, r->hdr[6], MARGIN, TOP + MAX(d, 0), GRAY);
  show(r->cr, r->hdr[7], PAGE_W - MARGIN - lw(r->hdr[7]), TOP + MAX(-d, 0),
       NAVY);
  hline(r->cr, r->top2 - 3 * MM, 0.8, NAVY);
}

static void draw_footer(struct slip *r, int page) {
  char t[96];
  double y = PAGE_H - 17.5 * MM;
  hline(r->cr, PAGE_H - 19 * MM, 0.5, RULE);
  show(r->cr, r->hdr[8], MARGIN, y, INK);
  snprintf(t, sizeof(t), "受付番号 %s　%d/%d ページ", r->num, page, r->pages);
  PangoLayout *l = mk(r, t, 8.5, 0);
  show(r->cr, l, PAGE_W - MARGIN - lw(l), y + base(r->hdr[8]) - base(l), GRAY);
  g_object_unref(l);
}

/* ---- input, codes, output ---- */

static int bad_text(const char *s) {
  return s && !g_utf8_validate(s, -1, NULL);
}

static int check(const struct mg_slip *s, struct mg_err *err) {
  if (!s)
    return mg_err_set(err, -EINVAL, "slip: no slip given");
  const char *n = nz(s->number);
  size_t i = 0;
  while (n[i] >= '0' && n[i] <= '9')
    i++;
  if (i != 8 || n[i])
    return mg_err_set(err, -EINVAL,
                      "slip: the procedure number must be exactly 8 digits");
  const char *q = nz(s->qr_payload);
  size_t ql = strnlen(q, QR_MAX + 1);
  if (!ql)
    return mg_err_set(err, -EINVAL, "slip: the QR payload is empty");
  if (ql > QR_MAX)
    return mg_err_set(err, -EINVAL,
                      "slip: the QR payload is longer than %d bytes", QR_MAX);
  for (i = 0; i < ql; i++)
    if (q[i] < 0x20 || q[i] > 0x7E)
      return mg_err_set(err, -EINVAL,
                        "slip: the QR payload must be printable ASCII (byte "
                        "%zu is not)", i + 1);
  const char *top[] = {s->city,     s->title,   s->issued_at, s->counter,
                       s->resident, s->address, s->free_text};
  for (i = 0; i < sizeof(top) / sizeof(top[0]); i++)
    if (bad_text(top[i]))
      return mg_err_set(err, -EINVAL, "slip: a header field is not UTF-8");
  if (s->n_items && !s->items)
    return mg_err_set(err, -EINVAL, "slip: %zu items but no item array",
                      s->n_items);
  for (i = 0; i < s->n_items; i++) {
    const struct mg_slip_item *it = &s->items[i];
    const char *f[] = {it->name,  it->counter,  it->floor,  it->counter_note,
                       it->notes, it->deadline, it->people, it->status};
    int bad = 0;
    for (size_t j = 0; j < sizeof(f) / sizeof(f[0]); j++)
      bad |= bad_text(f[j]);
    if (it->n_documents && !it->documents)
      return mg_err_set(err, -EINVAL, "slip: item %zu has %zu documents but "
                        "no document array", i + 1, it->n_documents);
    for (size_t j = 0; j < it->n_documents; j++)
      bad |= bad_text(it->documents[j]);
    if (bad)
      return mg_err_set(err, -EINVAL, "slip: item %zu holds text that is not "
                        "UTF-8", i + 1);
  }
  return 0;
}

static int codes(struct slip *r, struct mg_err *err) {
  const char *q = r->s->qr_payload;
  errno = 0;
  r->qr = QRcode_encodeData((int)strlen(q), (const unsigned char *)q, 0,
                            QR_ECLEVEL_M);
  if (!r->qr)
    return errno == ENOMEM ? mg_err_set(err, -ENOMEM, "slip: out of memory")
           : errno == ERANGE
               ? mg_err_set(err, -EINVAL, "slip: the QR payload is too long "
                                          "for a QR code")
               : mg_err_set(err, -EIO, "slip: QR encoding failed");
  r->bar = ZBarcode_Create();
  if (!r->bar)
    return mg_err_set(err, -ENOMEM, "slip: out of memory");
  r->bar->symbology = BARCODE_CODE128;
  r->bar->show_hrt = 0;
  r->bar->output_options = BARCODE_NO_QUIET_ZONES; /* we keep them clear */
  if (ZBarcode_Encode(r->bar, (const unsigned char *)r->s->number, 8) >=
          ZINT_ERROR ||
      ZBarcode_Buffer_Vector(r->bar, 0) >= ZINT_ERROR || !r->bar->vector ||
      !r->bar->vector->rectangles)
    return mg_err_set(err, -EIO, "slip: Code 128 encoding failed: %s",
                      r->bar->errtxt);
  return 0;
}

static cairo_status_t pdf_write(void *closure, const unsigned char *data,
                                unsigned int length) {
  struct mg_buf *b = closure;
  mg_buf_append(b, data, length);
  return b->oom ? CAIRO_STATUS_WRITE_ERROR : CAIRO_STATUS_SUCCESS;
}

static int cairo_rc(cairo_status_t st, const struct mg_buf *out,
                    struct mg_err *err) {
  if (st == CAIRO_STATUS_SUCCESS)
    return 0;
  if (st == CAIRO_STATUS_NO_MEMORY || out->oom)
    return mg_err_set(err, -ENOMEM, "slip: out of memory");
  return mg_err_set(err, -EIO, "slip: cairo: %s", cairo_status_to_string(st));
}

int mg_slip_render(const struct mg_slip *s, unsigned char **pdf, size_t *len,
                   struct mg_err *err) {
  struct slip r;
  struct mg_buf out;
  struct face *face = NULL;
  cairo_surface_t *surf = NULL;
  int rc, locked = 0;
  memset(&r, 0, sizeof(r));
  mg_buf_init(&out);
  if (!pdf || !len)
    return mg_err_set(err, -EINVAL, "slip: no output given");
  *pdf = NULL;
  *len = 0;
  if ((rc = check(s, err)))
    goto out;
  r.s = s;
  snprintf(r.num, sizeof(r.num), "%.4s-%.4s", s->number, s->number + 4);
  if ((rc = codes(&r, err)))
    goto out;
  mg__render_lock();
  locked = 1;
  if ((rc = face_get(s->font_file, &face, err)))
    goto out;
  surf = cairo_pdf_surface_create_for_stream(pdf_write, &out, PAGE_W, PAGE_H);
  r.cr = cairo_create(surf);
  if ((rc = cairo_rc(cairo_status(r.cr), &out, err)))
    goto out;
  /* a fixed title: the PDF's metadata must not carry residents' data */
  cairo_pdf_surface_set_metadata(surf, CAIRO_PDF_METADATA_TITLE, "ご案内票");
  cairo_pdf_surface_set_metadata(surf, CAIRO_PDF_METADATA_CREATOR,
                                 "madoguchi");
  r.pc = pango_font_map_create_context(face->fm);
  pango_cairo_update_context(r.cr, r.pc); /* unhinted metrics of the PDF */
  pango_cairo_context_set_resolution(r.pc, 72); /* 1 pt = 1 unit */
  pango_context_set_language(r.pc, pango_language_from_string("ja-jp"));
  pango_context_set_round_glyph_positions(r.pc, FALSE);
  r.fd = pango_font_description_new();
  pango_font_description_set_family(r.fd, face->family);
  if ((rc = build(&r))) {
    mg_err_set(err, rc, "slip: out of memory");
    goto out;
  }
  paginate(&r);
  size_t i = 0;
  for (int p = 1; p <= r.pages; p++) {
    if (p == 1)
      draw_header(&r);
    else
      draw_cont_header(&r);
    for (; i < r.n && r.rows[i].page == p; i++)
      draw_row(&r, &r.rows[i]);
    draw_footer(&r, p);
    cairo_show_page(r.cr);
  }
  if ((rc = cairo_rc(cairo_status(r.cr), &out, err)))
    goto out;
  cairo_destroy(r.cr);
  r.cr = NULL;
  cairo_surface_finish(surf); /* writes the fonts and the trailer */
  if ((rc = cairo_rc(cairo_surface_status(surf), &out, err)))
    goto out;
  *len = out.len;
  *pdf = (unsigned char *)mg_buf_steal(&out);
  if (!*pdf) {
    *len = 0;
    rc = mg_err_set(err, -ENOMEM, "slip: out of memory");
  }
out:
  for (size_t k = 0; k < r.n; k++) {
    g_clear_object(&r.rows[k].label);
    g_clear_object(&r.rows[k].text);
    g_clear_object(&r.rows[k].info);
    g_clear_object(&r.rows[k].done);
  }
  free(r.rows);
  for (size_t k = 0; k < sizeof(r.hdr) / sizeof(r.hdr[0]); k++)
    g_clear_object(&r.hdr[k]);
  g_clear_pointer(&r.fd, pango_font_description_free);
  g_clear_object(&r.pc);
  g_clear_pointer(&r.cr, cairo_destroy);
  g_clear_pointer(&surf, cairo_surface_destroy); /* before `out` goes */
  if (locked)
    mg__render_unlock();
  g_clear_pointer(&r.bar, ZBarcode_Delete);
  g_clear_pointer(&r.qr, QRcode_free);
  mg_buf_free(&out);
  return rc;
}
