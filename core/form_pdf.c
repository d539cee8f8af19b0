/*
 * form_pdf.c — filled forms of form_pdf.h.  A render draws, for every page
 * of every sheet: the template page, the masks, the values, the signature
 * and the stamp, into one cairo PDF surface writing to memory.
 *
 * The template page is a cairo recording of poppler drawing it, made once
 * and replayed: cairo writes a replayed recording once per PDF as a form
 * XObject (vector), so a form's copies (I4) cost one reference each and no
 * render parses the template again.  The signature is recorded once per
 * render the same way and placed in every slot.
 *
 * Caches, per thread: pango font maps are not thread-safe, poppler
 * documents are not meant to be shared between threads, and the uv
 * workers are few and long-lived, so each keeps its own:
 *  - templates by path, checked on every use against inode, size and
 *    mtime (a changed file is opened again);
 *  - font maps by pack_dir and the size and mtime of its fonts: a private
 *    FcConfig holding only the pack's fonts (FcConfigAppFontAddFile, as
 *    slip.c does), or the system's fonts when the pack ships none.
 * Everything that touches cairo's fonts or poppler runs under the
 * process-wide render lock (render_lock.h says why).  Entries in use by
 * the running render are never evicted.
 *
 * Units are PDF points (the pango context runs at 72 dpi).  Text is
 * shaped once at the box's size and shrunk with a cairo scale: without
 * hinting, text scales linearly, so the scaled layout is exactly the
 * layout at the smaller size.
 */
#include "form_pdf.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cairo-pdf.h>
#include <fontconfig/fontconfig.h>
#include <pango/pangocairo.h>
#include <pango/pangofc-fontmap.h>
#include <poppler.h>

#include "buf.h"
#include "jp.h"
#include "json.h"
#include "render_lock.h"

#define MM (72.0 / 25.4)
#define TPL_MAX 32          /* templates kept per thread */
#define FMAP_MAX 4          /* font maps kept per thread */
#define TPL_MAX_BYTES (64L << 20)
#define PAD_X (0.8 * MM)    /* text keeps off the box's rules */
#define PAD_Y (0.3 * MM)
#define RENDER_MIN_PT 1.0   /* below this, text is clipped to its box */
#define SIG_H 1000.0        /* the signature canvas's height in its units */
#define SIG_INSET (0.5 * MM)
#define STAMP_PT 7.0
#define STAMP_BOTTOM (4.0 * MM) /* the stamp's bottom above the page's */
#define SYSTEM_FAMILY "IPAexGothic"
#define CHECK_MARK "\xE2\x9C\x93" /* ✓ */

/* ---- per-thread caches ---- */

struct tpl {
  char *path;
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
  PopplerDocument *doc;
  int n_pages;
  cairo_surface_t **rec; /* per page, recorded on first use */
  double *pw, *ph;       /* page size in pt, set with rec */
  unsigned long used;    /* the render that last used it */
};

struct font_name {
  char *csv;    /* the family as fonts.csv and layout.csv name it */
  char *family; /* the font's own family, as fontconfig knows it */
};

struct fmap {
  char *key;
  PangoFontMap *fm;
  PangoContext *pc;
  int own_config;
  const char *def_family;   /* for boxes without `font` (in names[] or
                               static) */
  const char *gaiji_family; /* in names[]; NULL: no gaiji font */
  FcCharSet *gaiji_cs;
  struct font_name *names;
  size_t n_names;
  unsigned long used;
};

struct tcache {
  struct tpl **tpl;
  size_t n_tpl, cap_tpl;
  struct fmap *fm[FMAP_MAX];
  size_t n_fm;
  unsigned long tick;
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t cache_key;
static int cache_key_ok;

static void tpl_free(struct tpl *t) {
  if (!t)
    return;
  for (int i = 0; t->rec && i < t->n_pages; i++)
    if (t->rec[i])
      cairo_surface_destroy(t->rec[i]);
  if (t->doc)
    g_object_unref(t->doc);
  free(t->rec);
  free(t->pw);
  free(t->ph);
  free(t->path);
  free(t);
}

static void fmap_free(struct fmap *f) {
  if (!f)
    return;
  if (f->gaiji_cs) /* before its config goes */
    FcCharSetDestroy(f->gaiji_cs);
  g_clear_object(&f->pc);
  /* pango < 1.54 never drops the FcConfig of set_config on finalize */
  if (f->fm && f->own_config)
    pango_fc_font_map_set_config((PangoFcFontMap *)f->fm, NULL);
  g_clear_object(&f->fm);
  for (size_t i = 0; i < f->n_names; i++) {
    free(f->names[i].csv);
    free(f->names[i].family);
  }
  free(f->names);
  free(f->key);
  free(f);
}

/* Thread exit: a uv worker's templates and font maps go with it. */
static void cache_free(void *p) {
  struct tcache *c = p;
  mg__render_lock();
  for (size_t i = 0; i < c->n_tpl; i++)
    tpl_free(c->tpl[i]);
  free(c->tpl);
  for (size_t i = 0; i < c->n_fm; i++)
    fmap_free(c->fm[i]);
  mg__render_unlock();
  free(c);
}

static void init_once(void) {
  cache_key_ok = pthread_key_create(&cache_key, cache_free) == 0;
}

static struct tcache *cache_get(void) {
  pthread_once(&once, init_once);
  if (!cache_key_ok)
    return NULL;
  struct tcache *c = pthread_getspecific(cache_key);
  if (!c) {
    c = calloc(1, sizeof(*c));
    if (!c || pthread_setspecific(cache_key, c) != 0) {
      free(c);
      return NULL;
    }
  }
  return c;
}

/* Keep at most TPL_MAX templates, the least recently used going first;
 * called when a render starts, so nothing of a running render goes. */
static void tpl_trim(struct tcache *c) {
  while (c->n_tpl > TPL_MAX) {
    size_t old = 0;
    for (size_t i = 1; i < c->n_tpl; i++)
      if (c->tpl[i]->used < c->tpl[old]->used)
        old = i;
    tpl_free(c->tpl[old]);
    c->tpl[old] = c->tpl[--c->n_tpl];
  }
}

/* ---- templates ---- */

/* Where a message starts: "form kokuho_idou". */
#define FORM_FMT "form %s"

/* Open `path` (the template of `f`) into a new entry. */
static int tpl_load(const struct mg_pack_form *f, const char *rel,
                    const char *path, struct tpl **out, struct mg_err *err) {
  int rc = 0, fd = -1;
  char *data = NULL;
  GBytes *bytes = NULL;
  GError *gerr = NULL;
  struct stat st;
  struct tpl *t = calloc(1, sizeof(*t));
  if (!t)
    return mg_err_set(err, -ENOMEM, "form_pdf: out of memory");
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat(fd, &st) != 0) {
    rc = -errno;
    mg_err_set(err, rc, FORM_FMT ": template %s: %s", f->id, rel,
               errno == ENOENT ? "no such file" : "cannot be read");
    goto out;
  }
  if (!S_ISREG(st.st_mode) || st.st_size < 5 || st.st_size > TPL_MAX_BYTES) {
    rc = mg_err_set(err, -EINVAL,
                    FORM_FMT ": template %s is not a PDF file of at most "
                    "64 MB",
                    f->id, rel);
    goto out;
  }
  data = malloc((size_t)st.st_size);
  if (!data) {
    rc = mg_err_set(err, -ENOMEM, "form_pdf: out of memory");
    goto out;
  }
  for (off_t got = 0; got < st.st_size;) {
    ssize_t n = read(fd, data + got, (size_t)(st.st_size - got));
    if (n <= 0) {
      rc = mg_err_set(err, -EIO, FORM_FMT ": template %s: read failed",
                      f->id, rel);
      goto out;
    }
    got += n;
  }
  if (memcmp(data, "%PDF-", 5) != 0) {
    rc = mg_err_set(err, -EINVAL,
                    FORM_FMT ": template %s is not a PDF (it must start "
                    "with %%PDF-)",
                    f->id, rel);
    goto out;
  }
  bytes = g_bytes_new_take(data, (gsize)st.st_size);
  data = NULL;
  t->doc = poppler_document_new_from_bytes(bytes, NULL, &gerr);
  if (t->doc)
    t->n_pages = poppler_document_get_n_pages(t->doc);
  if (!t->doc) {
    rc = mg_err_set(err, -EINVAL, FORM_FMT ": template %s cannot be read "
                    "as a PDF (poppler: %s)",
                    f->id, rel, gerr ? gerr->message : "unknown error");
    goto out;
  }
  t->rec = calloc((size_t)(t->n_pages > 0 ? t->n_pages : 1), sizeof(*t->rec));
  t->pw = calloc((size_t)(t->n_pages > 0 ? t->n_pages : 1), sizeof(double));
  t->ph = calloc((size_t)(t->n_pages > 0 ? t->n_pages : 1), sizeof(double));
  t->path = strdup(path);
  if (!t->rec || !t->pw || !t->ph || !t->path) {
    rc = mg_err_set(err, -ENOMEM, "form_pdf: out of memory");
    goto out;
  }
  t->dev = st.st_dev;
  t->ino = st.st_ino;
  t->size = st.st_size;
  t->mtime = st.st_mtim;
out:
  if (gerr)
    g_error_free(gerr);
  if (bytes)
    g_bytes_unref(bytes);
  free(data);
  if (fd >= 0)
    close(fd);
  if (rc) {
    tpl_free(t);
    t = NULL;
  }
  *out = t;
  return rc;
}

/* The calling thread's entry for the template of `f`, opened or checked
 * against the file; valid until the next render starts. */
static int tpl_get(struct tcache *c, const char *pack_dir,
                   const struct mg_pack_form *f, struct tpl **out,
                   struct mg_err *err) {
  char rel[700], path[4200];
  struct stat st;
  snprintf(rel, sizeof(rel), "forms/%.300s/%.300s", f->id, f->template_file);
  if ((size_t)snprintf(path, sizeof(path), "%s/%s", pack_dir, rel) >=
      sizeof(path))
    return mg_err_set(err, -ENAMETOOLONG, FORM_FMT ": template path too long",
                      f->id);
  if (stat(path, &st) != 0)
    return mg_err_set(err, -errno, FORM_FMT ": template %s: %s", f->id, rel,
                      errno == ENOENT ? "no such file" : "cannot be read");
  for (size_t i = 0; i < c->n_tpl; i++) {
    struct tpl *t = c->tpl[i];
    if (strcmp(t->path, path) != 0)
      continue;
    if ((t->dev == st.st_dev && t->ino == st.st_ino && t->size == st.st_size &&
         t->mtime.tv_sec == st.st_mtim.tv_sec &&
         t->mtime.tv_nsec == st.st_mtim.tv_nsec) ||
        t->used == c->tick) { /* one render sees one version */
      t->used = c->tick;
      *out = t;
      return 0;
    }
    tpl_free(t); /* changed since: open it again */
    c->tpl[i] = c->tpl[--c->n_tpl];
    break;
  }
  if (c->n_tpl == c->cap_tpl) {
    size_t cap = c->cap_tpl ? c->cap_tpl * 2 : 8;
    struct tpl **v = realloc(c->tpl, cap * sizeof(*v));
    if (!v)
      return mg_err_set(err, -ENOMEM, "form_pdf: out of memory");
    c->tpl = v;
    c->cap_tpl = cap;
  }
  struct tpl *t = NULL;
  int rc = tpl_load(f, rel, path, &t, err);
  if (rc)
    return rc;
  t->used = c->tick;
  c->tpl[c->n_tpl++] = t;
  *out = t;
  return 0;
}

/* Page `i` (0-based) of a template as a recording, with its size. */
static int tpl_page(struct tpl *t, const struct mg_pack_form *f, int i,
                    struct mg_err *err) {
  if (t->rec[i])
    return 0;
  int rc = 0;
  PopplerPage *pg = poppler_document_get_page(t->doc, i);
  if (!pg)
    return mg_err_set(err, -EINVAL, FORM_FMT ": template page %d cannot be "
                      "read", f->id, i + 1);
  double w = 0, h = 0;
  poppler_page_get_size(pg, &w, &h);
  cairo_rectangle_t ext = {0, 0, w, h};
  cairo_surface_t *rec =
      cairo_recording_surface_create(CAIRO_CONTENT_COLOR_ALPHA, &ext);
  cairo_t *cr = cairo_create(rec);
  poppler_page_render_for_printing(pg, cr);
  cairo_status_t st = cairo_status(cr);
  cairo_destroy(cr);
  g_object_unref(pg);
  if (st == CAIRO_STATUS_SUCCESS)
    st = cairo_surface_status(rec);
  if (st != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(rec);
    rc = st == CAIRO_STATUS_NO_MEMORY
             ? mg_err_set(err, -ENOMEM, "form_pdf: out of memory")
             : mg_err_set(err, -EIO, FORM_FMT ": template page %d: cairo: %s",
                          f->id, i + 1, cairo_status_to_string(st));
  } else {
    t->rec[i] = rec;
    t->pw[i] = w;
    t->ph[i] = h;
  }
  return rc;
}

/* ---- fonts ---- */

/* The key of a pack's fonts: pack_dir and each font's size and mtime, so
 * that a font replaced in place is loaded again. */
static int fmap_key(const struct mg_form_render *r, struct mg_buf *key,
                    struct mg_err *err) {
  const struct mg_pack *p = r->pack;
  if (!p->n_fonts) {
    mg_buf_puts(key, "\x01system");
    return key->oom ? mg_err_set(err, -ENOMEM, "form_pdf: out of memory") : 0;
  }
  mg_buf_puts(key, r->pack_dir);
  for (size_t i = 0; i < p->n_fonts; i++) {
    struct stat st;
    char path[4200];
    snprintf(path, sizeof(path), "%s/fonts/%s", r->pack_dir, p->fonts[i].file);
    if (stat(path, &st) != 0)
      return mg_err_set(err, errno == ENOENT ? -ENOENT : -EIO,
                        "fonts.csv:%d: fonts/%s: %s", p->fonts[i].line,
                        p->fonts[i].file,
                        errno == ENOENT ? "no such file" : "cannot be read");
    if (!S_ISREG(st.st_mode))
      return mg_err_set(err, -EINVAL, "fonts.csv:%d: fonts/%s is not a file",
                        p->fonts[i].line, p->fonts[i].file);
    mg_buf_printf(key, "\n%s:%lld:%lld.%09ld:%d", p->fonts[i].file,
                  (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                  st.st_mtim.tv_nsec, (int)p->fonts[i].role);
  }
  return key->oom ? mg_err_set(err, -ENOMEM, "form_pdf: out of memory") : 0;
}

static PangoContext *context_new(PangoFontMap *fm) {
  PangoContext *pc = pango_font_map_create_context(fm);
  cairo_font_options_t *o = cairo_font_options_create();
  /* what a PDF surface asks for: unhinted outlines and metrics, so that
   * measuring (mg_form_text_fits) and printing agree and scale linearly */
  cairo_font_options_set_hint_metrics(o, CAIRO_HINT_METRICS_OFF);
  cairo_font_options_set_hint_style(o, CAIRO_HINT_STYLE_NONE);
  pango_cairo_context_set_font_options(pc, o);
  cairo_font_options_destroy(o);
  pango_cairo_context_set_resolution(pc, 72); /* 1 pt = 1 unit */
  pango_context_set_language(pc, pango_language_from_string("ja-jp"));
  pango_context_set_round_glyph_positions(pc, FALSE);
  return pc;
}

/* A font map that sees only the pack's fonts. */
static int fmap_load_pack(struct fmap *m, const struct mg_form_render *r,
                          struct mg_err *err) {
  const struct mg_pack *p = r->pack;
  int rc = 0;
  FcConfig *cfg = FcConfigCreate();
  char **paths = calloc(p->n_fonts, sizeof(*paths));
  m->names = calloc(p->n_fonts, sizeof(*m->names));
  if (!cfg || !paths || !m->names) {
    rc = mg_err_set(err, -ENOMEM, "form_pdf: out of memory");
    goto out;
  }
  for (size_t i = 0; i < p->n_fonts; i++) {
    paths[i] = g_strdup_printf("%s/fonts/%s", r->pack_dir, p->fonts[i].file);
    if (!FcConfigAppFontAddFile(cfg, (const FcChar8 *)paths[i])) {
      rc = mg_err_set(err, -EINVAL, "fonts.csv:%d: fonts/%s is not a font "
                      "fontconfig can read",
                      p->fonts[i].line, p->fonts[i].file);
      goto out;
    }
  }
  FcFontSet *set = FcConfigGetFonts(cfg, FcSetApplication);
  for (size_t i = 0; i < p->n_fonts; i++) {
    const struct mg_pack_font *pf = &p->fonts[i];
    FcPattern *pat = NULL;
    for (int k = 0; set && k < set->nfont && !pat; k++) {
      FcChar8 *file = NULL;
      int index = 0;
      if (FcPatternGetString(set->fonts[k], FC_FILE, 0, &file) ==
              FcResultMatch &&
          strcmp((const char *)file, paths[i]) == 0 &&
          (FcPatternGetInteger(set->fonts[k], FC_INDEX, 0, &index) !=
               FcResultMatch ||
           index == 0))
        pat = set->fonts[k];
    }
    FcChar8 *family = NULL;
    if (!pat ||
        FcPatternGetString(pat, FC_FAMILY, 0, &family) != FcResultMatch) {
      rc = mg_err_set(err, -EINVAL, "fonts.csv:%d: fonts/%s has no family "
                      "name",
                      pf->line, pf->file);
      goto out;
    }
    m->names[i].csv = strdup(pf->family);
    m->names[i].family = strdup((const char *)family);
    m->n_names = i + 1;
    if (!m->names[i].csv || !m->names[i].family) {
      rc = mg_err_set(err, -ENOMEM, "form_pdf: out of memory");
      goto out;
    }
    if (pf->role == MG_PACK_FONT_DEFAULT && !m->def_family)
      m->def_family = m->names[i].family;
    if (pf->role == MG_PACK_FONT_GAIJI && !m->gaiji_family) {
      FcCharSet *cs = NULL;
      m->gaiji_family = m->names[i].family;
      if (FcPatternGetCharSet(pat, FC_CHARSET, 0, &cs) == FcResultMatch)
        m->gaiji_cs = FcCharSetCopy(cs);
    }
  }
  if (!m->def_family) {
    /* no default in the pack: the box's IPAexGothic joins the pack's
     * fonts (a 6 MB font every box has need not travel in every pull) */
    FcPattern *want = FcNameParse((const FcChar8 *)SYSTEM_FAMILY), *got = NULL;
    FcResult fr;
    FcChar8 *file = NULL, *fam = NULL;
    if (want) {
      FcConfigSubstitute(NULL, want, FcMatchPattern);
      FcDefaultSubstitute(want);
      got = FcFontMatch(NULL, want, &fr);
    }
    if (!got || FcPatternGetString(got, FC_FAMILY, 0, &fam) != FcResultMatch ||
        strcmp((const char *)fam, SYSTEM_FAMILY) != 0 ||
        FcPatternGetString(got, FC_FILE, 0, &file) != FcResultMatch ||
        !FcConfigAppFontAddFile(cfg, file)) {
      rc = mg_err_set(err, -ENOENT, "fonts.csv names no default font and "
                      "the box has no %s (Debian fonts-ipaexfont-gothic)",
                      SYSTEM_FAMILY);
    }
    if (got)
      FcPatternDestroy(got);
    if (want)
      FcPatternDestroy(want);
    if (rc)
      goto out;
    m->def_family = SYSTEM_FAMILY;
  }
  m->fm = pango_cairo_font_map_new_for_font_type(CAIRO_FONT_TYPE_FT);
  GType fc_type = g_type_from_name("PangoFcFontMap"); /* registered above */
  if (m->fm && (!fc_type || !G_TYPE_CHECK_INSTANCE_TYPE(m->fm, fc_type)))
    g_clear_object(&m->fm);
  if (!m->fm) {
    rc = mg_err_set(err, -EIO, "form_pdf: pango has no fontconfig font map");
    goto out;
  }
  pango_fc_font_map_set_config((PangoFcFontMap *)m->fm, cfg); /* own ref */
  m->own_config = 1;
out:
  if (cfg)
    FcConfigDestroy(cfg);
  for (size_t i = 0; paths && i < p->n_fonts; i++)
    g_free(paths[i]);
  free(paths);
  return rc;
}

/* The calling thread's font map for the pack of `r`. */
static int fmap_get(struct tcache *c, const struct mg_form_render *r,
                    struct fmap **out, struct mg_err *err) {
  struct mg_buf key;
  struct fmap *m = NULL;
  int rc;
  mg_buf_init(&key);
  if ((rc = fmap_key(r, &key, err)))
    goto out;
  for (size_t i = 0; i < c->n_fm; i++)
    if (strcmp(c->fm[i]->key, key.data) == 0) {
      c->fm[i]->used = c->tick;
      *out = c->fm[i];
      goto out;
    }
  m = calloc(1, sizeof(*m));
  if (!m) {
    rc = mg_err_set(err, -ENOMEM, "form_pdf: out of memory");
    goto out;
  }
  m->key = mg_buf_steal(&key);
  if (!m->key) {
    rc = mg_err_set(err, -ENOMEM, "form_pdf: out of memory");
    goto out;
  }
  if (r->pack->n_fonts) {
    if ((rc = fmap_load_pack(m, r, err)))
      goto out;
  } else {
    m->fm = pango_cairo_font_map_new();
    m->def_family = SYSTEM_FAMILY;
  }
  m->pc = context_new(m->fm);
  if (c->n_fm == FMAP_MAX) { /* the least recently used goes */
    size_t old = 0;
    for (size_t i = 1; i < c->n_fm; i++)
      if (c->fm[i]->used < c->fm[old]->used)
        old = i;
    fmap_free(c->fm[old]);
    c->fm[old] = c->fm[--c->n_fm];
  }
  m->used = c->tick;
  c->fm[c->n_fm++] = m;
  *out = m;
  m = NULL;
out:
  fmap_free(m);
  mg_buf_free(&key);
  return rc;
}

/* The font family list for a box: its own font or the default, then the
 * gaiji font for what those lack.  Malloc'd. */
static char *box_families(const struct fmap *m, const struct mg_pack_box *b) {
  const char *fam = m->def_family;
  if (b->font[0])
    for (size_t i = 0; i < m->n_names; i++)
      if (strcmp(m->names[i].csv, b->font) == 0) {
        fam = m->names[i].family;
        break;
      }
  return g_strconcat(fam, m->gaiji_family ? "," : "",
                     m->gaiji_family ? m->gaiji_family : "", NULL);
}

static int is_pua(gunichar u) {
  return (u >= 0xE000 && u <= 0xF8FF) || (u >= 0xF0000 && u <= 0xFFFFD) ||
         (u >= 0x100000 && u <= 0x10FFFD);
}

/* Runs of Private Use Area characters the gaiji font has are set in it
 * first, whatever the box's font holds at those code points (IPA fonts
 * put glyphs of their own at U+F860…, jp-admin-data.md §2.1). */
static void gaiji_attrs(PangoLayout *l, const struct fmap *m,
                        const char *fams, const char *text) {
  if (!m->gaiji_family || !m->gaiji_cs)
    return;
  PangoAttrList *al = NULL;
  char *first = NULL;
  const char *run = NULL;
  for (const char *p = text;; p = g_utf8_next_char(p)) {
    gunichar u = *p ? g_utf8_get_char(p) : 0;
    int in = u && is_pua(u) && FcCharSetHasChar(m->gaiji_cs, u);
    if (in && !run)
      run = p;
    if (!in && run) {
      if (!al) {
        al = pango_attr_list_new();
        first = g_strconcat(m->gaiji_family, ",", fams, NULL);
      }
      PangoAttribute *a = pango_attr_family_new(first);
      a->start_index = (guint)(run - text);
      a->end_index = (guint)(p - text);
      pango_attr_list_insert(al, a);
      run = NULL;
    }
    if (!*p)
      break;
  }
  if (al) {
    pango_layout_set_attributes(l, al);
    pango_attr_list_unref(al);
  }
  g_free(first);
}

/* ---- values ---- */

static const struct mg_pack_field *box_field(const struct mg_pack_form *f,
                                             const struct mg_pack_box *b) {
  size_t n = strcspn(b->field, ".");
  for (size_t i = 0; i < f->n_fields; i++)
    if (strlen(f->fields[i].id) == n &&
        memcmp(f->fields[i].id, b->field, n) == 0)
      return &f->fields[i];
  return NULL;
}

/* What a box prints for `text` (form_pdf.h, struct mg_form_value); NULL
 * for nothing.  `buf` holds a formatted date. */
static const char *printed(const struct mg_pack *p,
                           const struct mg_pack_field *fd,
                           const struct mg_pack_box *b, const char *text,
                           char *buf, size_t len) {
  if (!text || !text[0])
    return NULL;
  if (!fd)
    return text;
  switch (fd->type) {
  case MG_PACK_DATE: {
    struct mg_date d;
    if (strcmp(b->format, "iso") == 0 || mg_date_parse(text, &d) != 0)
      return text;
    enum mg_wareki_style st = strcmp(b->format, "wareki_short") == 0
                                  ? MG_WAREKI_SHORT
                                  : MG_WAREKI_LONG;
    return mg_wareki_format(&d, st, buf, len) > 0 ? buf : text;
  }
  case MG_PACK_CHECKBOX:
    if (strcmp(text, "yes") != 0)
      return NULL;
    return b->format[0] ? b->format : CHECK_MARK;
  case MG_PACK_SELECT:
  case MG_PACK_RADIO: {
    const struct mg_pack_choice_list *l = mg_pack_choices(p, fd->choices);
    for (size_t i = 0; l && i < l->n; i++)
      if (strcmp(l->v[i].value, text) == 0)
        return l->v[i].label;
    return text;
  }
  default:
    return text;
  }
}

/* A copy of `s` for a box: line breaks kept only where it wraps, other
 * control characters as spaces, cut after `max` graphemes (0 = no limit;
 * *cut says whether anything was dropped). */
static char *box_text(const char *s, int wrap, long max, int *cut) {
  size_t len = strlen(s);
  char *t = g_malloc(len + 1);
  size_t n = 0;
  *cut = 0;
  for (size_t i = 0; i < len; i++) {
    char ch = s[i];
    if (ch == '\r' && s[i + 1] == '\n')
      continue;
    if (ch == '\r' || ch == '\n')
      ch = wrap ? '\n' : ' ';
    else if ((unsigned char)ch < 0x20 || ch == 0x7F)
      ch = ' ';
    t[n++] = ch;
  }
  t[n] = 0;
  if (max <= 0)
    return t;
  glong chars = g_utf8_strlen(t, (gssize)n);
  if (chars <= max)
    return t;
  /* grapheme boundaries: a base with its IVS selector or combining mark
   * is one character on paper (jp-admin-data.md §2.3) */
  PangoLogAttr *a = g_new(PangoLogAttr, (gsize)chars + 1);
  pango_get_log_attrs(t, (int)n, -1, pango_language_from_string("ja-jp"), a,
                      (int)chars + 1);
  long seen = 0;
  const char *p = t;
  for (glong i = 1; i <= chars; i++) {
    p = g_utf8_next_char(p);
    if (a[i].is_cursor_position && ++seen == max) {
      if (*p) {
        *cut = 1;
        t[p - t] = 0;
      }
      break;
    }
  }
  g_free(a);
  return t;
}

/* ---- fitting text into a box ---- */

struct fitted {
  PangoLayout *l; /* at the box's size */
  double k;       /* the scale that fits it (<= 1) */
  double x, y;    /* where the layout's origin goes, unscaled page pt */
  int fits;       /* it fits at min_pt or more */
  int clip;       /* it does not fit even at min_pt (wrap only) */
};

static void extents(PangoLayout *l, PangoRectangle *lr) {
  pango_layout_get_extents(l, NULL, lr);
}

/* Lay `text` out for box `b` at `pt` points and find how much it must
 * shrink to fit: wrap = no shrinks the one line to the box's width and
 * height; wrap = yes searches the largest size at which the wrapped lines
 * are no higher than the box, down to min_pt. */
static void fit(const struct fmap *m, const struct mg_pack_box *b,
                const char *text, double pt, double min_pt,
                struct fitted *o) {
  double bx = b->x * MM, by = b->y * MM, bw = b->width * MM,
         bh = b->height * MM;
  double px = MIN(PAD_X, bw * 0.1), py = MIN(PAD_Y, bh * 0.1);
  double aw = bw - 2 * px, ah = bh - 2 * py;
  char *fams = box_families(m, b);
  PangoFontDescription *fd = pango_font_description_new();
  pango_font_description_set_family(fd, fams);
  pango_font_description_set_absolute_size(fd, pt * PANGO_SCALE);
  PangoLayout *l = pango_layout_new(m->pc);
  pango_layout_set_font_description(l, fd);
  pango_font_description_free(fd);
  gaiji_attrs(l, m, fams, text);
  g_free(fams);
  pango_layout_set_alignment(l, b->align == MG_PACK_CENTER  ? PANGO_ALIGN_CENTER
                                : b->align == MG_PACK_RIGHT ? PANGO_ALIGN_RIGHT
                                                            : PANGO_ALIGN_LEFT);
  pango_layout_set_text(l, text, -1);
  PangoRectangle lr;
  double lo = MIN(1.0, min_pt / pt), k = 1;
  o->clip = 0;
  if (!b->wrap) {
    extents(l, &lr);
    double w = (double)lr.width / PANGO_SCALE,
           h = (double)lr.height / PANGO_SCALE;
    if (w * k > aw && w > 0)
      k = aw / w;
    if (h * k > ah && h > 0)
      k = ah / h;
  } else {
    pango_layout_set_wrap(l, PANGO_WRAP_WORD_CHAR);
    pango_layout_set_width(l, (int)(aw * PANGO_SCALE));
    extents(l, &lr);
    if ((double)lr.height / PANGO_SCALE > ah) {
      /* at scale k the lines are aw / k wide and must be ah / k high */
      pango_layout_set_width(l, (int)(aw / lo * PANGO_SCALE));
      extents(l, &lr);
      if ((double)lr.height / PANGO_SCALE * lo > ah) {
        k = lo;
        o->clip = 1;
      } else {
        double hi = 1;
        for (int i = 0; i < 12 && hi - lo > 0.002; i++) {
          double mid = (lo + hi) / 2;
          pango_layout_set_width(l, (int)(aw / mid * PANGO_SCALE));
          extents(l, &lr);
          if ((double)lr.height / PANGO_SCALE * mid <= ah)
            lo = mid;
          else
            hi = mid;
        }
        k = lo;
      }
      pango_layout_set_width(l, (int)(aw / k * PANGO_SCALE));
      extents(l, &lr);
    }
  }
  o->fits = !o->clip && k * pt >= MIN(min_pt, pt) - 1e-6;
  double w = (double)lr.width / PANGO_SCALE * k,
         h = (double)lr.height / PANGO_SCALE * k;
  double lx = (double)lr.x / PANGO_SCALE * k,
         ly = (double)lr.y / PANGO_SCALE * k;
  if (b->wrap)
    o->x = bx + px; /* pango aligns the lines within the width */
  else if (b->align == MG_PACK_CENTER)
    o->x = bx + (bw - w) / 2 - lx;
  else if (b->align == MG_PACK_RIGHT)
    o->x = bx + bw - px - w - lx;
  else
    o->x = bx + px - lx;
  /* one line (or too many to fit) centred, several from the top */
  if (pango_layout_get_line_count(l) <= 1 || o->clip)
    o->y = by + (bh - h) / 2 - ly;
  else
    o->y = by + py - ly;
  o->l = l;
  o->k = k;
}

/* ---- signature ---- */

static int sig_check(const struct mg_form_signature *s, struct mg_err *err) {
  if (!isfinite(s->aspect) || s->aspect < 0.1 || s->aspect > 20)
    return mg_err_set(err, -EINVAL,
                      "signature: aspect %g is not a width/height from 0.1 "
                      "to 20",
                      s->aspect);
  if ((s->n_points && !s->points) || (s->n_strokes && !s->stroke_ends))
    return mg_err_set(err, -EINVAL, "signature: %zu points and %zu strokes "
                      "but no array",
                      s->n_points, s->n_strokes);
  if (!s->n_strokes != !s->n_points)
    return mg_err_set(err, -EINVAL, "signature: %zu points in %zu strokes",
                      s->n_points, s->n_strokes);
  for (size_t i = 0; i < s->n_strokes; i++) {
    size_t start = i ? s->stroke_ends[i - 1] : 0;
    if (s->stroke_ends[i] <= start || s->stroke_ends[i] > s->n_points)
      return mg_err_set(err, -EINVAL, "signature: stroke %zu ends at point "
                        "%zu (ends must increase, up to %zu)",
                        i + 1, s->stroke_ends[i], s->n_points);
  }
  if (s->n_strokes && s->stroke_ends[s->n_strokes - 1] != s->n_points)
    return mg_err_set(err, -EINVAL, "signature: the last stroke ends at point "
                      "%zu but there are %zu points",
                      s->stroke_ends[s->n_strokes - 1], s->n_points);
  for (size_t i = 0; i < s->n_points; i++) {
    const struct mg_form_point *p = &s->points[i];
    if (!isfinite(p->x) || !isfinite(p->y) || !isfinite(p->w) || p->x < 0 ||
        p->x > 1 || p->y < 0 || p->y > 1 || p->w < 0 || p->w > 1)
      return mg_err_set(err, -EINVAL, "signature: point %zu is outside the "
                        "canvas (x, y and w must be from 0 to 1)",
                        i + 1);
  }
  return 0;
}

/* Width of a segment in canvas units: pressure-less pads send w = 0. */
static double sig_w(const struct mg_form_point *a,
                    const struct mg_form_point *b) {
  double w = (a->w + b->w) / 2;
  return (w > 0 ? w : 0.012) * SIG_H;
}

/* The signature as a recording of vector strokes in a canvas SIG_H high.
 * Neighbouring segments of about the same width are one path (round
 * joins), so a stroke costs a few PDF operators, not one per point. */
static cairo_surface_t *sig_record(const struct mg_form_signature *s) {
  double W = s->aspect * SIG_H;
  cairo_rectangle_t ext = {0, 0, W, SIG_H};
  cairo_surface_t *rec =
      cairo_recording_surface_create(CAIRO_CONTENT_COLOR_ALPHA, &ext);
  cairo_t *cr = cairo_create(rec);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  for (size_t k = 0; k < s->n_strokes; k++) {
    size_t a = k ? s->stroke_ends[k - 1] : 0, e = s->stroke_ends[k];
    const struct mg_form_point *p = s->points;
    if (e - a == 1) { /* a dot */
      double rad = sig_w(&p[a], &p[a]) / 2;
      cairo_new_sub_path(cr);
      cairo_arc(cr, p[a].x * W, p[a].y * SIG_H, rad, 0, 2 * G_PI);
      cairo_fill(cr);
      continue;
    }
    for (size_t i = a; i + 1 < e;) {
      double w = sig_w(&p[i], &p[i + 1]);
      cairo_move_to(cr, p[i].x * W, p[i].y * SIG_H);
      size_t j = i;
      /* same width within 8 %: one path */
      while (j + 1 < e && fabs(sig_w(&p[j], &p[j + 1]) - w) <= 0.08 * w) {
        cairo_line_to(cr, p[j + 1].x * W, p[j + 1].y * SIG_H);
        j++;
      }
      cairo_set_line_width(cr, w);
      cairo_stroke(cr);
      i = j;
    }
  }
  cairo_destroy(cr);
  return rec;
}

/* ---- the render ---- */

struct job {
  const struct mg_form_render *r;
  struct tcache *c;
  struct fmap *m;
  cairo_t *cr;
  cairo_surface_t *surf;
  cairo_surface_t *sig; /* NULL: no signature */
  double scale;
  int locked; /* holds the render lock */
};

static cairo_status_t pdf_write(void *closure, const unsigned char *data,
                                unsigned int length) {
  struct mg_buf *b = closure;
  mg_buf_append(b, data, length);
  return b->oom ? CAIRO_STATUS_WRITE_ERROR : CAIRO_STATUS_SUCCESS;
}

/* Takes the render lock and this thread's caches for a render; job_close
 * gives them back (also after an error here). */
static int job_open(struct job *j, struct mg_err *err) {
  mg__render_lock();
  j->locked = 1;
  j->c = cache_get();
  if (!j->c)
    return mg_err_set(err, -ENOMEM, "form_pdf: out of memory");
  j->c->tick++;
  tpl_trim(j->c);
  return 0;
}

/* Frees what a render made (the surface before the buffer it writes to
 * goes) and lets the render lock go. */
static void job_close(struct job *j) {
  g_clear_pointer(&j->cr, cairo_destroy);
  g_clear_pointer(&j->surf, cairo_surface_destroy);
  g_clear_pointer(&j->sig, cairo_surface_destroy);
  if (j->locked)
    mg__render_unlock();
  j->locked = 0;
}

static int cairo_rc(cairo_status_t st, const struct mg_buf *out,
                    struct mg_err *err) {
  if (st == CAIRO_STATUS_SUCCESS)
    return 0;
  if (st == CAIRO_STATUS_NO_MEMORY || out->oom)
    return mg_err_set(err, -ENOMEM, "form_pdf: out of memory");
  return mg_err_set(err, -EIO, "form_pdf: cairo: %s",
                    cairo_status_to_string(st));
}

static const char *value_of(const struct mg_form_sheet *s,
                            const struct mg_pack_box *b) {
  for (size_t i = 0; i < s->n_values; i++)
    if (s->values[i].row == b->row && s->values[i].field &&
        strcmp(s->values[i].field, b->field) == 0)
      return s->values[i].text;
  return NULL;
}

static void draw_text(struct job *j, const struct mg_pack_box *b,
                      const char *text) {
  int cut;
  char *t = box_text(text, b->wrap, b->max_chars, &cut);
  struct fitted o;
  fit(j->m, b, t, b->font_size * j->scale, RENDER_MIN_PT, &o);
  g_free(t);
  cairo_t *cr = j->cr;
  cairo_save(cr);
  if (o.clip) { /* only text the validator should have refused (FG3) */
    cairo_rectangle(cr, b->x * MM, b->y * MM, b->width * MM, b->height * MM);
    cairo_clip(cr);
  }
  cairo_translate(cr, o.x, o.y);
  cairo_scale(cr, o.k, o.k);
  cairo_move_to(cr, 0, 0);
  pango_cairo_show_layout(cr, o.l);
  cairo_restore(cr);
  g_object_unref(o.l);
}

static void draw_signature(struct job *j, const struct mg_pack_box *b) {
  const struct mg_form_signature *s = j->r->signature;
  double bw = b->width * MM - 2 * SIG_INSET,
         bh = b->height * MM - 2 * SIG_INSET;
  if (bw <= 0 || bh <= 0) {
    bw = b->width * MM;
    bh = b->height * MM;
  }
  double k = MIN(bw / (s->aspect * SIG_H), bh / SIG_H);
  double w = s->aspect * SIG_H * k, h = SIG_H * k;
  cairo_t *cr = j->cr;
  cairo_save(cr);
  cairo_rectangle(cr, b->x * MM, b->y * MM, b->width * MM, b->height * MM);
  cairo_clip(cr);
  cairo_translate(cr, b->x * MM + (b->width * MM - w) / 2,
                  b->y * MM + (b->height * MM - h) / 2);
  cairo_scale(cr, k, k);
  cairo_set_source_surface(cr, j->sig, 0, 0);
  cairo_paint(cr);
  cairo_restore(cr);
}

static void draw_stamp(struct job *j, const char *stamp, double pw,
                       double ph) {
  PangoFontDescription *fd = pango_font_description_new();
  char *fams = g_strconcat(j->m->def_family, j->m->gaiji_family ? "," : "",
                           j->m->gaiji_family ? j->m->gaiji_family : "", NULL);
  pango_font_description_set_family(fd, fams);
  pango_font_description_set_absolute_size(fd, STAMP_PT * PANGO_SCALE);
  PangoLayout *l = pango_layout_new(j->m->pc);
  pango_layout_set_font_description(l, fd);
  pango_layout_set_text(l, stamp, -1);
  PangoRectangle lr;
  extents(l, &lr);
  double w = (double)lr.width / PANGO_SCALE,
         h = (double)lr.height / PANGO_SCALE;
  cairo_save(j->cr);
  cairo_set_source_rgb(j->cr, 0.25, 0.25, 0.25);
  cairo_move_to(j->cr, (pw - w) / 2, ph - STAMP_BOTTOM - h);
  pango_cairo_show_layout(j->cr, l);
  cairo_restore(j->cr);
  g_object_unref(l);
  pango_font_description_free(fd);
  g_free(fams);
}

/* Values, masks, signature slots and stamp of one page. */
static int draw_page(struct job *j, const struct mg_form_sheet *s,
                     struct tpl *t, long page, struct mg_err *err) {
  const struct mg_pack_form *f = s->form;
  int rc = tpl_page(t, f, (int)page - 1, err);
  if (rc)
    return rc;
  double pw = t->pw[page - 1], ph = t->ph[page - 1];
  if (fabs(pw - f->page_width * MM) > 2 * MM ||
      fabs(ph - f->page_height * MM) > 2 * MM)
    return mg_err_set(err, -EINVAL, FORM_FMT ": template forms/%s/%s page "
                      "%ld is %.0fx%.0f mm but form.ini says %.0fx%.0f mm "
                      "(page_size)",
                      f->id, f->id, f->template_file, page, pw / MM, ph / MM,
                      f->page_width, f->page_height);
  cairo_t *cr = j->cr;
  if (cairo_surface_get_type(j->surf) == CAIRO_SURFACE_TYPE_PDF)
    cairo_pdf_surface_set_size(j->surf, pw, ph); /* not for a PNG page */
  cairo_save(cr);
  cairo_set_source_surface(cr, t->rec[page - 1], 0, 0);
  cairo_paint(cr);
  cairo_restore(cr);
  /* FM5: masks first, so that nothing printed is painted over */
  cairo_set_source_rgb(cr, 1, 1, 1);
  for (size_t i = 0; i < f->n_boxes; i++) {
    const struct mg_pack_box *b = &f->boxes[i];
    if (b->page == page && strcmp(b->field, "@mask") == 0)
      cairo_rectangle(cr, b->x * MM, b->y * MM, b->width * MM,
                      b->height * MM);
  }
  cairo_fill(cr);
  cairo_set_source_rgb(cr, 0, 0, 0);
  for (size_t i = 0; i < f->n_boxes; i++) {
    const struct mg_pack_box *b = &f->boxes[i];
    if (b->page != page)
      continue;
    if (b->field[0] == '@') {
      if (j->sig && strcmp(b->field, "@signature") == 0)
        draw_signature(j, b);
      continue;
    }
    char buf[64];
    const char *v = value_of(s, b);
    if (v && !g_utf8_validate(v, -1, NULL))
      return mg_err_set(err, -EINVAL, FORM_FMT " page %ld box \"%s\" row "
                        "%ld (layout.csv:%d): the value is not UTF-8",
                        f->id, page, b->field, b->row, b->line);
    v = printed(j->r->pack, box_field(f, b), b, v, buf, sizeof(buf));
    if (v)
      draw_text(j, b, v);
  }
  if (s->stamp && s->stamp[0])
    draw_stamp(j, s->stamp, pw, ph);
  cairo_show_page(cr);
  return 0;
}

static int check_render(const struct mg_form_render *r, double *scale,
                        struct mg_err *err) {
  if (!r || !r->pack || !r->pack_dir || r->pack_dir[0] != '/')
    return mg_err_set(err, -EINVAL,
                      "form_pdf: no pack, or pack_dir is not absolute");
  double k = r->font_scale == 0 ? 1.0 : r->font_scale;
  if (!isfinite(k) || k < 0.5 || k > 2.0)
    return mg_err_set(err, -EINVAL, "form_pdf: font_scale %g is not from "
                      "0.5 to 2.0 (P2)",
                      r->font_scale);
  *scale = k;
  return 0;
}

int mg_form_render_pdf(const struct mg_form_render *r, unsigned char **pdf,
                       size_t *len, struct mg_err *err) {
  struct job j;
  struct mg_buf out;
  int rc;
  memset(&j, 0, sizeof(j));
  mg_buf_init(&out);
  if (!pdf || !len)
    return mg_err_set(err, -EINVAL, "form_pdf: no output given");
  *pdf = NULL;
  *len = 0;
  if ((rc = check_render(r, &j.scale, err)))
    goto out;
  if (!r->n_sheets || !r->sheets) {
    rc = mg_err_set(err, -EINVAL, "form_pdf: no sheets to render");
    goto out;
  }
  for (size_t i = 0; i < r->n_sheets; i++) {
    const struct mg_form_sheet *s = &r->sheets[i];
    if (!s->form || (s->n_values && !s->values)) {
      rc = mg_err_set(err, -EINVAL, "form_pdf: sheet %zu has no form or no "
                      "value array",
                      i + 1);
      goto out;
    }
    if (s->stamp && !g_utf8_validate(s->stamp, -1, NULL)) {
      rc = mg_err_set(err, -EINVAL, FORM_FMT ": the stamp is not UTF-8",
                      s->form->id);
      goto out;
    }
  }
  if (r->signature && (rc = sig_check(r->signature, err)))
    goto out;
  j.r = r;
  if ((rc = job_open(&j, err)) || (rc = fmap_get(j.c, r, &j.m, err)))
    goto out;
  const struct mg_pack_form *f0 = r->sheets[0].form;
  j.surf = cairo_pdf_surface_create_for_stream(
      pdf_write, &out, f0->page_width * MM, f0->page_height * MM);
  j.cr = cairo_create(j.surf);
  if ((rc = cairo_rc(cairo_status(j.cr), &out, err)))
    goto out;
  /* a fixed title: the PDF's metadata must not carry residents' data */
  cairo_pdf_surface_set_metadata(j.surf, CAIRO_PDF_METADATA_TITLE, "申請書");
  cairo_pdf_surface_set_metadata(j.surf, CAIRO_PDF_METADATA_CREATOR,
                                 "madoguchi");
  if (r->signature && r->signature->n_points)
    j.sig = sig_record(r->signature);
  for (size_t i = 0; i < r->n_sheets; i++) {
    const struct mg_form_sheet *s = &r->sheets[i];
    struct tpl *t = NULL;
    if (i)
      mg__render_yield(); /* a waiting fit check goes first */
    if ((rc = tpl_get(j.c, r->pack_dir, s->form, &t, err)))
      goto out;
    if (t->n_pages < s->form->pages) {
      rc = mg_err_set(err, -EINVAL, FORM_FMT ": template forms/%s/%s has "
                      "%d page(s) but form.ini says %ld (pages)",
                      s->form->id, s->form->id, s->form->template_file,
                      t->n_pages, s->form->pages);
      goto out;
    }
    for (long p = 1; p <= s->form->pages; p++)
      if ((rc = draw_page(&j, s, t, p, err)))
        goto out;
  }
  if ((rc = cairo_rc(cairo_status(j.cr), &out, err)))
    goto out;
  cairo_destroy(j.cr);
  j.cr = NULL;
  cairo_surface_finish(j.surf); /* writes the fonts and the trailer */
  if ((rc = cairo_rc(cairo_surface_status(j.surf), &out, err)))
    goto out;
  *len = out.len;
  *pdf = (unsigned char *)mg_buf_steal(&out);
  if (!*pdf) {
    *len = 0;
    rc = mg_err_set(err, -ENOMEM, "form_pdf: out of memory");
  }
out:
  job_close(&j);
  mg_buf_free(&out);
  return rc;
}

int mg_form_page_png(const struct mg_form_render *r, long page, int width,
                     int values, unsigned char **png, size_t *len,
                     struct mg_err *err) {
  struct job j;
  struct mg_buf out;
  struct mg_form_sheet bare;
  struct tpl *t = NULL;
  int rc;
  memset(&j, 0, sizeof(j));
  memset(&bare, 0, sizeof(bare));
  mg_buf_init(&out);
  if (!png || !len)
    return mg_err_set(err, -EINVAL, "form_pdf: no output given");
  *png = NULL;
  *len = 0;
  if ((rc = check_render(r, &j.scale, err)))
    goto out;
  if (!r->n_sheets || !r->sheets || !r->sheets[0].form ||
      (r->sheets[0].n_values && !r->sheets[0].values)) {
    rc = mg_err_set(err, -EINVAL, "form_pdf: no sheet to draw");
    goto out;
  }
  const struct mg_form_sheet *s = &r->sheets[0];
  const struct mg_pack_form *f = s->form;
  if (page < 1 || page > f->pages) {
    rc = mg_err_set(err, -EINVAL, FORM_FMT ": page %ld: the form has pages "
                    "1 to %ld", f->id, page, f->pages);
    goto out;
  }
  if (width < MG_FORM_PNG_MIN_W || width > MG_FORM_PNG_MAX_W) {
    rc = mg_err_set(err, -EINVAL, "width: %d pixels is not from %d to %d",
                    width, MG_FORM_PNG_MIN_W, MG_FORM_PNG_MAX_W);
    goto out;
  }
  if (values && s->stamp && !g_utf8_validate(s->stamp, -1, NULL)) {
    rc = mg_err_set(err, -EINVAL, FORM_FMT ": the stamp is not UTF-8", f->id);
    goto out;
  }
  if (values && r->signature && (rc = sig_check(r->signature, err)))
    goto out;
  bare.form = f; /* the template and its masks, nothing of the case */
  j.r = r;
  if ((rc = job_open(&j, err)) ||
      (values && (rc = fmap_get(j.c, r, &j.m, err))) ||
      (rc = tpl_get(j.c, r->pack_dir, f, &t, err)))
    goto out;
  if (t->n_pages < page) {
    rc = mg_err_set(err, -EINVAL, FORM_FMT ": template forms/%s/%s has %d "
                    "page(s) but form.ini says %ld (pages)",
                    f->id, f->id, f->template_file, t->n_pages, f->pages);
    goto out;
  }
  if ((rc = tpl_page(t, f, (int)page - 1, err)))
    goto out;
  double k = width / t->pw[page - 1];
  int height = (int)ceil(t->ph[page - 1] * k);
  if (height < 1 || height > 4 * MG_FORM_PNG_MAX_W) {
    rc = mg_err_set(err, -EINVAL, FORM_FMT ": page %ld is too narrow to draw "
                    "%d pixels wide", f->id, page, width);
    goto out;
  }
  j.surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
  j.cr = cairo_create(j.surf);
  if ((rc = cairo_rc(cairo_status(j.cr), &out, err)))
    goto out;
  cairo_set_source_rgb(j.cr, 1, 1, 1);
  cairo_paint(j.cr);
  cairo_scale(j.cr, k, k);
  if (values && r->signature && r->signature->n_points)
    j.sig = sig_record(r->signature);
  if ((rc = draw_page(&j, values ? s : &bare, t, page, err)) ||
      (rc = cairo_rc(cairo_status(j.cr), &out, err)))
    goto out;
  cairo_surface_flush(j.surf);
  if ((rc = cairo_rc(cairo_surface_write_to_png_stream(j.surf, pdf_write,
                                                       &out),
                     &out, err)))
    goto out;
  *len = out.len;
  *png = (unsigned char *)mg_buf_steal(&out);
  if (!*png) {
    *len = 0;
    rc = mg_err_set(err, -ENOMEM, "form_pdf: out of memory");
  }
out:
  g_clear_pointer(&j.cr, cairo_destroy);
  if (j.surf && values && cairo_image_surface_get_data(j.surf))
    memset(cairo_image_surface_get_data(j.surf), 0, /* residents' data */
           (size_t)cairo_image_surface_get_stride(j.surf) *
               (size_t)cairo_image_surface_get_height(j.surf));
  job_close(&j);
  if (out.data)
    memset(out.data, 0, out.len);
  mg_buf_free(&out);
  return rc;
}

/* ---- layout for the tablet (A2) ---- */

void mg_form_layout_json(const struct mg_pack_form *f, int staff_view,
                          struct mg_jw *jw) {
  mg_jw_obj(jw);
  mg_jw_kint(jw, "pages", f->pages);
  mg_jw_key(jw, "page_size");
  mg_jw_arr(jw);
  mg_jw_double(jw, f->page_width);
  mg_jw_double(jw, f->page_height);
  mg_jw_arr_end(jw);
  mg_jw_key(jw, "boxes");
  mg_jw_arr(jw);
  for (size_t i = 0; i < f->n_boxes; i++) {
    const struct mg_pack_box *b = &f->boxes[i];
    size_t idlen = strcspn(b->field, ".");
    int hide = strcmp(b->field, "@mask") == 0;
    for (size_t k = 0; !hide && !staff_view && k < f->n_fields; k++)
      hide = f->fields[k].staff_only && strlen(f->fields[k].id) == idlen &&
             memcmp(f->fields[k].id, b->field, idlen) == 0;
    if (hide)
      continue;
    mg_jw_obj(jw);
    mg_jw_kstr(jw, "field", b->field);
    mg_jw_kint(jw, "row", b->row);
    mg_jw_kint(jw, "page", b->page);
    mg_jw_key(jw, "x");
    mg_jw_double(jw, b->x);
    mg_jw_key(jw, "y");
    mg_jw_double(jw, b->y);
    mg_jw_key(jw, "w");
    mg_jw_double(jw, b->width);
    mg_jw_key(jw, "h");
    mg_jw_double(jw, b->height);
    mg_jw_obj_end(jw);
  }
  mg_jw_arr_end(jw);
  mg_jw_obj_end(jw);
}

/* The form of the pack that holds `box`. */
static const struct mg_pack_form *form_of(const struct mg_pack *p,
                                          const struct mg_pack_box *box) {
  for (size_t i = 0; i < p->n_forms; i++) {
    const struct mg_pack_form *f = &p->forms[i];
    if (f->n_boxes && box >= f->boxes && box < f->boxes + f->n_boxes)
      return f;
  }
  return NULL;
}

int mg_form_text_fits(const struct mg_form_render *r,
                      const struct mg_pack_box *box, const char *text) {
  double scale = 1.0;
  struct fmap *m = NULL;
  if (check_render(r, &scale, NULL) || !box || box->field[0] == '@')
    return -EINVAL;
  const struct mg_pack_form *f = form_of(r->pack, box);
  if (text && !g_utf8_validate(text, -1, NULL))
    return -EINVAL;
  char buf[64];
  const char *v = printed(r->pack, f ? box_field(f, box) : NULL, box, text,
                          buf, sizeof(buf));
  if (!v)
    return 1; /* nothing to print */
  mg__render_lock();
  int rc = -ENOMEM, cut;
  struct tcache *c = cache_get();
  if (c) {
    c->tick++;
    rc = fmap_get(c, r, &m, NULL);
  }
  if (!rc) {
    char *t = box_text(v, box->wrap, box->max_chars, &cut);
    struct fitted o;
    fit(m, box, t, box->font_size * scale, MG_FORM_MIN_PT, &o);
    g_free(t);
    g_object_unref(o.l);
    rc = o.fits && !cut;
  }
  mg__render_unlock();
  return rc;
}
