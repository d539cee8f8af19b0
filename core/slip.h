/*
 * slip.h — the guide slip (案内票, G4): an A4 PDF in Japanese listing the
 * procedures of a visit, what to bring, where to go and the notes, with the
 * procedure number printed large, a QR code carrying the continuation
 * token and a Code 128 barcode of the number (G5, C1).
 *
 * Rendered with cairo + pango; the font (IPAexGothic from
 * fonts-ipaexfont-gothic unless `font_file` says otherwise) is embedded as
 * a subset.  QR: libqrencode (error correction M); barcode: zint.
 *
 * Thread-safe: runs on uv worker threads, several at once.  Nothing is
 * logged: the slip holds residents' data.
 */
#ifndef MG_SLIP_H
#define MG_SLIP_H
#include <stddef.h>
#include "err.h"

/* One procedure (or info-only guide) on the slip.  All strings UTF-8,
 * borrowed; "" for none (never NULL except documents when n_documents 0). */
struct mg_slip_item {
  const char *name;        /* 転入届 */
  int info;                /* 1: an info-only guide (「ご案内」), no form */
  const char *counter;     /* 市民課 1番窓口（転入・転出・転居） */
  const char *floor;       /* 1F */
  const char *counter_note;/* the counter's note from the pack */
  const char *const *documents; /* what to bring */
  size_t n_documents;
  const char *notes;
  const char *deadline;    /* 住み始めた日から14日以内 */
  const char *people;      /* for whom: "山田 太郎、山田 花子" or "" (household) */
  const char *status;      /* "pending" | "in_progress" | "done" (done ones are
                              printed with 済) */
};

struct mg_slip {
  const char *city;        /* pack name: 周南市 窓口手続パック */
  const char *title;       /* the life event: 転入（市外から引っ越してきた） */
  const char *number;      /* procedure number, 8 digits; printed large as
                              "1234-5678" and encoded in the barcode as is */
  const char *qr_payload;  /* ASCII; "MG1:<token>" */
  const char *issued_at;   /* already formatted: 2026年11月25日 10:32 */
  const char *counter;     /* the issuing counter's name */
  const char *resident;    /* names line ("" = none) */
  const char *address;     /* "" = not printed; a masked case passes "" */
  const char *free_text;   /* staff's free text, may hold line breaks */
  const struct mg_slip_item *items;
  size_t n_items;          /* any number: pages are added as needed */
  const char *font_file;   /* NULL: fontconfig family "IPAexGothic" */
};

/* Render.  0 with *pdf (malloc'd, caller frees) and *len; otherwise a
 * negative errno with err saying why (-EINVAL bad input such as an empty
 * number or a payload too long for a QR code, -ENOMEM, -EIO cairo/pango
 * failure, -ENOENT font_file missing). */
int mg_slip_render(const struct mg_slip *s, unsigned char **pdf, size_t *len,
                   struct mg_err *err);

#endif
