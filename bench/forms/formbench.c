/*
 * formbench — the move-in bundle of the demo pack rendered N times in one
 * process (bench/forms/render.sh runs it; core/form_pdf.h, issue 5).
 *
 *   formbench --pack ABS_DIR [--runs N] [--out FILE.pdf]
 *             [--html FILE.html] [--probe 1]
 *
 * The bundle: the 14 move-in (tennyu) forms of procedures.csv that apply
 * to a family of five — two adults (1988-06-15, 1990-09-03), a child of 7,
 * a child of 1, a grandmother of 66 with a disability certificate — i.e.
 * all but hitorioya_iryo (a two-parent family), plus the copies (I4) of
 * jumin_idou and kokuho_idou for the fifth person: 16 sheets, one page
 * each, with the signature in every slot.  Every field gets a value made
 * from its type (fictional people and places).
 *
 * Prints one line: runs, the first (cold) render and the p50/p99/mean/min
 * of the others in ms, the PDF's size.  --probe 1 adds a second thread
 * doing what the event loop does on every field save, a fit check
 * (mg_form_text_fits), every 2 ms while the renders run, and prints how
 * long those checks took beside the same checks with no render running:
 * renders hold the render lock (core/render_lock.h), yielding between
 * sheets.  --html writes the same content as
 * an HTML page for the Chromium peer: a page per sheet with the template
 * image (img/<form>.png, made by render.sh) as background and the same
 * printed strings at the same boxes, the signature as SVG.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cairo.h>
#include <fontconfig/fontconfig.h>

#include "form_pdf.h"
#include "jp.h"
#include "pack.h"

#define FILING "2026-11-25"
#define MAXV 128
#define SHEETS 16
#define SIG_POINTS 420

struct person {
  const char *name, *kana, *birth, *sex, *rel;
};
/* U+E001 is the pack's gaiji 﨑 (P3) */
static const struct person FAMILY[5] = {
    {"周防 太郎", "スオウ タロウ", "1988-06-15", "1", "setainushi"},
    {"周防 花子", "スオウ ハナコ", "1990-09-03", "2", "tsuma"},
    {"周防 一郎", "スオウ イチロウ", "2019-05-10", "1", "ko"},
    {"周防 さくら", "スオウ サクラ", "2025-03-02", "2", "ko"},
    {"\xEE\x80\x81田 キヨ", "サキタ キヨ", "1960-02-20", "2", "haha"},
};

static const char *const BUNDLE[SHEETS] = {
    "jumin_idou",    "jumin_idou",       "mynumber_henkou", "kokuho_idou",
    "kokuho_idou",   "nenkin_todoke",    "kouki_idou",      "kaigo_idou",
    "jidouteate",    "kodomo_iryo",      "hoiku_moushikomi", "tennyugaku",
    "shougai_idou",  "inkan_touroku",    "gentsuki",        "inu_henkou"};

struct sheet_values {
  struct mg_form_value v[MAXV];
  char buf[MAXV][160]; /* strings made here (split names, ages) */
  size_t n;
};

static void put(struct sheet_values *s, const char *field, long row,
                const char *text) {
  if (s->n == MAXV) {
    fprintf(stderr, "formbench: more than %d values in a sheet\n", MAXV);
    exit(1);
  }
  snprintf(s->buf[s->n], sizeof(s->buf[s->n]), "%s", text);
  s->v[s->n] = (struct mg_form_value){field, row, s->buf[s->n]};
  s->n++;
}

/* The list's value for `want`, else its first value. */
static const char *choice(const struct mg_pack *p, const char *list,
                          const char *want) {
  const struct mg_pack_choice_list *l = mg_pack_choices(p, list);
  if (!l || !l->n)
    return want;
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->v[i].value, want) == 0)
      return want;
  return l->v[0].value;
}

static int age_of(const struct person *x) {
  struct mg_date b, on;
  mg_date_parse(x->birth, &b);
  mg_date_parse(FILING, &on);
  return mg_age_legal(&b, &on);
}

/* The value of field `f` for person `x`. */
static void fill(const struct mg_pack *p, struct sheet_values *s,
                 const struct mg_pack_field *f, long row,
                 const struct person *x) {
  char t[160];
  switch (f->type) {
  case MG_PACK_NAME:
    put(s, f->id, row, x->name);
    return;
  case MG_PACK_NAME_SPLIT: { /* every name has a space */
    const char *sp = strchr(x->name, ' ');
    snprintf(t, sizeof(t), "%.*s", (int)(sp - x->name), x->name);
    put(s, NULL, row, t);      /* named ID.family by make_sheet */
    put(s, NULL, row, sp + 1); /* ID.given */
    return;
  }
  case MG_PACK_KANA:
    put(s, f->id, row, x->kana);
    return;
  case MG_PACK_DATE:
    put(s, f->id, row,
        strstr(f->id, "birth") ? x->birth
        : strcmp(f->id, "filing_date") == 0 ? FILING
                                             : "2026-11-20");
    return;
  case MG_PACK_SELECT:
  case MG_PACK_RADIO:
    if (strcmp(f->choices, "seibetsu") == 0)
      put(s, f->id, row, choice(p, f->choices, x->sex));
    else if (strncmp(f->choices, "zokugara", 8) == 0)
      put(s, f->id, row, choice(p, f->choices, x->rel));
    else
      put(s, f->id, row, choice(p, f->choices, ""));
    return;
  case MG_PACK_CHECKBOX:
    put(s, f->id, row, "yes");
    return;
  case MG_PACK_NUMBER:
    if (f->compute == MG_PACK_COMPUTE_AGE)
      snprintf(t, sizeof(t), "%d", age_of(x));
    else
      snprintf(t, sizeof(t), "%d", 12345);
    put(s, f->id, row, t);
    return;
  case MG_PACK_POSTAL_CODE:
    put(s, f->id, row, "7450004");
    return;
  case MG_PACK_ADDRESS:
    put(s, f->id, row,
        strstr(f->id, "prev") ? "大阪府大阪市北区サンプル町1丁目2番3号 "
                                "サンプルハイツ405号室"
                              : "山口県周南市岐山通1丁目1番地 周南サンプル"
                                "レジデンス201号室");
    return;
  case MG_PACK_MYNUMBER:
    put(s, f->id, row, "123456789018");
    return;
  case MG_PACK_RESIDENT_CODE:
    put(s, f->id, row, "12345678901");
    return;
  case MG_PACK_PHONE:
    put(s, f->id, row, "0834-00-0000");
    return;
  case MG_PACK_TEXT:
  default:
    if (f->compute == MG_PACK_COMPUTE_SCHOOL_GRADE)
      put(s, f->id, row, "小2");
    else if (f->compute == MG_PACK_COMPUTE_DISTRICT)
      put(s, f->id, row, "岐山地区");
    else if (f->staff_only)
      put(s, f->id, row, "本人確認済（運転免許証）。書類は後日郵送。");
    else {
      snprintf(t, sizeof(t), "%s（記入例）", f->label);
      put(s, f->id, row, t);
    }
    return;
  }
}

/* Whose sheet: the grandmother's forms, the children's fields. */
static const struct person *subject(const char *form, const char *field) {
  if (!strcmp(form, "kaigo_idou") || !strcmp(form, "kouki_idou") ||
      !strcmp(form, "shougai_idou"))
    return &FAMILY[4];
  if (!strcmp(form, "hoiku_moushikomi") && !strncmp(field, "c_", 2))
    return &FAMILY[3];
  if (!strcmp(form, "tennyugaku") && !strncmp(field, "s_", 2))
    return &FAMILY[2];
  return &FAMILY[0];
}

/* Split-name halves are named by the box strings "ID.family"/"ID.given"
 * of the form, which live as long as the pack. */
static const char *half_name(const struct mg_pack_form *f, const char *id,
                             const char *part) {
  size_t n = strlen(id);
  for (size_t i = 0; i < f->n_boxes; i++)
    if (!strncmp(f->boxes[i].field, id, n) && f->boxes[i].field[n] == '.' &&
        !strcmp(f->boxes[i].field + n + 1, part))
      return f->boxes[i].field;
  return NULL;
}

static void make_sheet(const struct mg_pack *p, const struct mg_pack_form *f,
                       int copy, struct sheet_values *s) {
  s->n = 0;
  for (size_t i = 0; i < f->n_fields; i++) {
    const struct mg_pack_field *fd = &f->fields[i];
    if (!fd->group[0]) {
      size_t before = s->n;
      fill(p, s, fd, 0, subject(f->id, fd->id));
      if (fd->type == MG_PACK_NAME_SPLIT) {
        s->v[before].field = half_name(f, fd->id, "family");
        s->v[before + 1].field = half_name(f, fd->id, "given");
      }
      continue;
    }
    long rows = 0;
    for (size_t g = 0; g < f->n_groups; g++)
      if (!strcmp(f->groups[g].name, fd->group))
        rows = f->groups[g].rows;
    /* household: all five; children: the two children */
    const struct person *who[5];
    int n = 0;
    if (!strcmp(fd->group, "children")) {
      who[n++] = &FAMILY[2];
      who[n++] = &FAMILY[3];
    } else
      for (int k = 0; k < 5; k++)
        who[n++] = &FAMILY[k];
    for (long r = 1; r <= rows; r++) {
      long k = copy * rows + r - 1;
      if (k < n)
        fill(p, s, fd, r, who[k]);
    }
  }
}

/* A signature: three strokes of a cursive-like curve with pressure. */
static struct mg_form_point POINTS[SIG_POINTS];
static size_t ENDS[3];

static void make_signature(struct mg_form_signature *sig) {
  size_t n = 0;
  for (int s = 0; s < 3; s++) {
    int m = SIG_POINTS / 3;
    for (int i = 0; i < m; i++) {
      double t = (double)i / (m - 1);
      double x0 = 0.05 + s * 0.31;
      POINTS[n].x = (float)(x0 + 0.27 * t + 0.03 * sin(t * 18 + s));
      POINTS[n].y = (float)(0.5 + 0.3 * sin(t * 9 + s * 2) * (1 - 0.5 * t));
      POINTS[n].w = (float)(0.025 + 0.015 * sin(t * 3.1));
      n++;
    }
    ENDS[s] = n;
  }
  *sig = (struct mg_form_signature){POINTS, n, ENDS, 3, 4.0};
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* ---- the HTML peer ---- */

static void html_text(FILE *o, const char *s) {
  for (; *s; s++)
    switch (*s) {
    case '<': fputs("&lt;", o); break;
    case '>': fputs("&gt;", o); break;
    case '&': fputs("&amp;", o); break;
    case '\n': fputs("<br>", o); break;
    default: fputc(*s, o);
    }
}

/* What the box prints: the same rules as form_pdf.c (form_pdf.h). */
static const char *printed(const struct mg_pack *p,
                           const struct mg_pack_form *f,
                           const struct mg_pack_box *b, const char *text,
                           char *buf, size_t len) {
  size_t n = strcspn(b->field, ".");
  const struct mg_pack_field *fd = NULL;
  for (size_t i = 0; i < f->n_fields; i++)
    if (strlen(f->fields[i].id) == n && !strncmp(f->fields[i].id, b->field, n))
      fd = &f->fields[i];
  if (!text || !text[0] || !fd)
    return text;
  struct mg_date d;
  switch (fd->type) {
  case MG_PACK_DATE:
    if (!strcmp(b->format, "iso") || mg_date_parse(text, &d))
      return text;
    return mg_wareki_format(&d, strcmp(b->format, "wareki_short")
                                    ? MG_WAREKI_LONG
                                    : MG_WAREKI_SHORT,
                            buf, len) > 0
               ? buf
               : text;
  case MG_PACK_CHECKBOX:
    return strcmp(text, "yes") ? NULL : b->format[0] ? b->format : "✓";
  case MG_PACK_SELECT:
  case MG_PACK_RADIO: {
    const struct mg_pack_choice_list *l = mg_pack_choices(p, fd->choices);
    for (size_t i = 0; l && i < l->n; i++)
      if (!strcmp(l->v[i].value, text))
        return l->v[i].label;
    return text;
  }
  default:
    return text;
  }
}

static int write_html(const char *path, const struct mg_pack *p,
                      const struct mg_form_sheet *sh, size_t n,
                      const struct mg_form_signature *sig) {
  FILE *o = fopen(path, "w");
  if (!o)
    return -errno;
  fputs("<!DOCTYPE html>\n<html lang=\"ja\"><head><meta charset=\"utf-8\">"
        "<title>申請書</title><style>\n"
        "@font-face{font-family:ShunanGaiji;src:url(gaiji.ttf)}\n"
        "@page{size:A4;margin:0}\n"
        "body{margin:0;font-family:IPAexGothic,ShunanGaiji}\n"
        ".page{position:relative;width:210mm;height:297mm;overflow:hidden;"
        "background-size:100% 100%;break-after:page}\n"
        ".b{position:absolute;box-sizing:border-box;padding:0.3mm 0.8mm;"
        "overflow:hidden;display:flex;align-items:center;line-height:1.2}\n"
        ".n{white-space:nowrap}.w{align-items:flex-start}\n"
        ".m{position:absolute;background:#fff}\n"
        ".s{position:absolute}\n"
        ".st{position:absolute;left:0;right:0;bottom:4mm;text-align:center;"
        "font-size:7pt;color:#404040}\n"
        "</style></head><body>\n",
        o);
  /* the signature as one SVG symbol, used in every slot */
  fprintf(o, "<svg width=\"0\" height=\"0\" style=\"position:absolute\">"
             "<symbol id=\"sig\" viewBox=\"0 0 %g 1000\">",
          sig->aspect * 1000);
  for (size_t k = 0; k < sig->n_strokes; k++) {
    size_t a = k ? sig->stroke_ends[k - 1] : 0;
    for (size_t i = a; i + 1 < sig->stroke_ends[k]; i++)
      fprintf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                 "stroke=\"#000\" stroke-width=\"%.1f\" "
                 "stroke-linecap=\"round\"/>",
              sig->points[i].x * sig->aspect * 1000, sig->points[i].y * 1000,
              sig->points[i + 1].x * sig->aspect * 1000,
              sig->points[i + 1].y * 1000,
              (sig->points[i].w + sig->points[i + 1].w) / 2 * 1000);
  }
  fputs("</symbol></svg>\n", o);
  for (size_t s = 0; s < n; s++) {
    const struct mg_pack_form *f = sh[s].form;
    fprintf(o, "<div class=\"page\" style=\"background-image:url(img/%s.png)\">\n",
            f->id);
    for (size_t i = 0; i < f->n_boxes; i++) {
      const struct mg_pack_box *b = &f->boxes[i];
      if (!strcmp(b->field, "@mask")) {
        fprintf(o, "<div class=\"m\" style=\"left:%gmm;top:%gmm;width:%gmm;"
                   "height:%gmm\"></div>\n",
                b->x, b->y, b->width, b->height);
        continue;
      }
      if (!strcmp(b->field, "@signature")) {
        fprintf(o, "<svg class=\"s\" style=\"left:%gmm;top:%gmm;width:%gmm;"
                   "height:%gmm\"><use href=\"#sig\"/></svg>\n",
                b->x, b->y, b->width, b->height);
        continue;
      }
      const char *v = NULL;
      for (size_t k = 0; k < sh[s].n_values; k++)
        if (sh[s].values[k].field && sh[s].values[k].row == b->row &&
            !strcmp(sh[s].values[k].field, b->field))
          v = sh[s].values[k].text;
      char buf[64];
      v = printed(p, f, b, v, buf, sizeof(buf));
      if (!v || !v[0])
        continue;
      fprintf(o, "<div class=\"b %s\" style=\"left:%gmm;top:%gmm;width:%gmm;"
                 "height:%gmm;font-size:%gpt;justify-content:%s\">",
              b->wrap ? "w" : "n", b->x, b->y, b->width, b->height,
              b->font_size,
              b->align == MG_PACK_CENTER  ? "center"
              : b->align == MG_PACK_RIGHT ? "flex-end"
                                          : "flex-start");
      html_text(o, v);
      fputs("</div>\n", o);
    }
    if (sh[s].stamp) {
      fputs("<div class=\"st\">", o);
      html_text(o, sh[s].stamp);
      fputs("</div>", o);
    }
    fputs("</div>\n", o);
  }
  fputs("</body></html>\n", o);
  return fclose(o) ? -errno : 0;
}

struct args {
  int argc;
  char **argv;
  int rc;
};
static int run(int argc, char **argv);
static void *run_thread(void *p) {
  struct args *a = p;
  a->rc = run(a->argc, a->argv);
  return NULL;
}

/* Renders run on a thread of their own, as on a uv worker, whose caches go
 * at its exit; then cairo's and fontconfig's are torn down, so that an
 * ASan build reports no leaks. */
int main(int argc, char **argv) {
  struct args a = {argc, argv, 1};
  pthread_t t;
  if (pthread_create(&t, NULL, run_thread, &a) != 0 ||
      pthread_join(t, NULL) != 0)
    return 1;
  cairo_debug_reset_static_data();
  FcFini();
  return a.rc;
}

/* The fit-check probe: a box of the first sheet, checked again and again. */
struct probe {
  const struct mg_form_render *r;
  const struct mg_pack_box *box;
  volatile int stop;
  double ms[100000];
  long n;
};

static void *probe_thread(void *arg) {
  struct probe *pr = arg;
  struct timespec pause = {0, 2000000};
  while (!pr->stop && pr->n < 100000) {
    double t0 = now_ms();
    mg_form_text_fits(pr->r, pr->box, "架空　花子");
    pr->ms[pr->n++] = now_ms() - t0;
    nanosleep(&pause, NULL);
  }
  return NULL;
}

static void probe_print(const char *what, struct probe *pr) {
  qsort(pr->ms, (size_t)pr->n, sizeof(double), cmp_d);
  if (pr->n)
    printf("fit check %s: n %ld p50 %.2f p99 %.2f max %.2f ms\n", what, pr->n,
           pr->ms[(pr->n - 1) / 2], pr->ms[(long)ceil(0.99 * pr->n) - 1],
           pr->ms[pr->n - 1]);
}

static int run(int argc, char **argv) {
  const char *dir = NULL, *out = NULL, *html = NULL;
  long runs = 50;
  int probe = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--pack"))
      dir = argv[i + 1];
    else if (!strcmp(argv[i], "--runs"))
      runs = strtol(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--out"))
      out = argv[i + 1];
    else if (!strcmp(argv[i], "--html"))
      html = argv[i + 1];
    else if (!strcmp(argv[i], "--probe"))
      probe = atoi(argv[i + 1]);
  }
  if (!dir || dir[0] != '/' || runs < 2 || argc % 2 == 0) {
    fprintf(stderr, "usage: formbench --pack ABS_DIR [--runs N>=2] "
                    "[--out FILE.pdf] [--html FILE.html]\n");
    return 2;
  }
  struct mg_pack_report rep;
  struct mg_pack *p = NULL;
  mg_pack_report_init(&rep);
  if (mg_pack_load(dir, &p, &rep) != 0) {
    mg_pack_report_print(&rep, stderr);
    return 1;
  }
  mg_pack_report_free(&rep);
  static struct sheet_values vals[SHEETS];
  struct mg_form_sheet sheets[SHEETS];
  static char stamps[SHEETS][64];
  int copies[SHEETS] = {0};
  for (int i = 0; i < SHEETS; i++) {
    const struct mg_pack_form *f = mg_pack_form(p, BUNDLE[i]);
    if (!f) {
      fprintf(stderr, "formbench: the pack has no form %s\n", BUNDLE[i]);
      return 1;
    }
    for (int k = 0; k < i; k++)
      copies[i] += !strcmp(BUNDLE[k], BUNDLE[i]);
    make_sheet(p, f, copies[i], &vals[i]);
    snprintf(stamps[i], sizeof(stamps[i]), "受付番号 2048-1357  %d/%d", i + 1,
             SHEETS);
    sheets[i] = (struct mg_form_sheet){f, vals[i].v, vals[i].n, stamps[i]};
  }
  struct mg_form_signature sig;
  make_signature(&sig);
  struct mg_form_render r = {.pack = p, .pack_dir = dir, .sheets = sheets,
                             .n_sheets = SHEETS, .signature = &sig,
                             .font_scale = 1.0};
  double *ms = calloc((size_t)runs, sizeof(double));
  unsigned char *pdf = NULL;
  size_t len = 0;
  static struct probe pr;
  pthread_t pt;
  if (!ms)
    return 1;
  if (probe) {
    pr.r = &r;
    pr.box = sheets[0].form->boxes;
    for (size_t k = 0; k < sheets[0].form->n_boxes; k++)
      if (sheets[0].form->boxes[k].field[0] != '@') {
        pr.box = &sheets[0].form->boxes[k];
        break;
      }
    /* alone first (also warms the probe's font map) */
    for (int k = 0; k < 200; k++) {
      double t0 = now_ms();
      mg_form_text_fits(&r, pr.box, "架空　花子");
      pr.ms[pr.n++] = now_ms() - t0;
    }
    probe_print("alone", &pr);
    pr.n = 0;
    if (pthread_create(&pt, NULL, probe_thread, &pr) != 0)
      return 1;
  }
  for (long i = 0; i < runs; i++) {
    struct mg_err err = {{0}};
    free(pdf);
    pdf = NULL;
    double t0 = now_ms();
    int rc = mg_form_render_pdf(&r, &pdf, &len, &err);
    ms[i] = now_ms() - t0;
    if (rc) {
      fprintf(stderr, "formbench: render %ld: %s\n", i + 1, err.msg);
      return 1;
    }
  }
  if (probe) {
    pr.stop = 1;
    pthread_join(pt, NULL);
    probe_print("during renders", &pr);
  }
  double first = ms[0], sum = 0;
  qsort(ms + 1, (size_t)runs - 1, sizeof(double), cmp_d);
  for (long i = 1; i < runs; i++)
    sum += ms[i];
  long m = runs - 1;
  printf("runs %ld first %.1f p50 %.1f p99 %.1f mean %.1f min %.1f bytes %zu\n",
         m, first, ms[1 + (m - 1) / 2], ms[1 + (long)ceil(0.99 * m) - 1],
         sum / m, ms[1], len);
  if (out) {
    FILE *o = fopen(out, "wb");
    if (!o || fwrite(pdf, 1, len, o) != len || fclose(o)) {
      perror(out);
      return 1;
    }
  }
  if (html && write_html(html, p, sheets, SHEETS, &sig)) {
    perror(html);
    return 1;
  }
  free(pdf);
  free(ms);
  mg_pack_free(p);
  return 0;
}
