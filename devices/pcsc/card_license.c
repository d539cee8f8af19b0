/*
 * card_license.c — the driver's licence (I7; id-cards.md §2): common data,
 * PIN setting, PIN1, DF1/EF01 記載事項 (JIS X 0208 text, era dates, 外字).
 *
 * APDUs (card_identify did SELECT MF, SELECT EF 2F01, READ 17):
 *   SELECT EF 000A, READ 3 (PIN set?), VERIFY 81 (empty: tries),
 *   VERIFY 81 PIN1, SELECT DF1, READ BINARY 81 (EF01 by short EF id) ...
 * VERIFY with P2 = 81 (IEF01 by short id, JDCardReaderCore) saves the
 * SELECT of IEF01; READ by short EF id saves the SELECT of EF01.  EF01 is
 * 880 bytes but the fields we need end at tag 21 (免許証の番号), so it is
 * read in chunks (256 bytes short, 880 at once extended) only until tag
 * 21 or the end mark 0xFF has been seen: one short READ for names and
 * addresses of ordinary length (tag 21 ends near byte 170), two for long
 * ones.  Read = 6 APDUs (7 with a long address), identify 4.
 */
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "card_int.h"

static const uint8_t DF1_AID[16] = {0xA0, 0x00, 0x00, 0x02, 0x31, 0x01,
                                    0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                    0x00, 0x00, 0x00, 0x00};

#define EF01_SIZE 880 /* DF1/EF01 記載事項(本籍除く) */

/* ---- era dates ---- */

static int dim(int y, int m) {
  static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
    return 29;
  return d[m - 1];
}

int card_era_date(const char *e7, char out[11]) {
  /* §2.4: era digit 1 明治 .. 5 令和; boundaries as jp-admin-data.md §3.1
   * (the shared first days 1912-07-30 and 1926-12-25 read in either era) */
  static const struct {
    int base;           /* Gregorian year of era year 0 */
    long first, last;   /* YYYYMMDD, inclusive */
  } era[5] = {
      {1867, 18730101, 19120730}, /* 明治: solar dates from 明治6年 */
      {1911, 19120730, 19261225}, /* 大正 */
      {1925, 19261225, 19890107}, /* 昭和 */
      {1988, 19890108, 20190430}, /* 平成 */
      {2018, 20190501, 99991231}, /* 令和 */
  };
  if (out)
    out[0] = '\0';
  if (!e7 || !out)
    return CARD_E_FORMAT;
  for (int i = 0; i < 7; i++)
    if (e7[i] < '0' || e7[i] > '9')
      return CARD_E_FORMAT;
  if (e7[7] != '\0')
    return CARD_E_FORMAT;
  if (strcmp(e7 + 1, "000000") == 0)
    return 0; /* not held (licence categories), era digit or 0 */
  int e = e7[0] - '0';
  if (e < 1 || e > 5)
    return CARD_E_FORMAT;
  int yy = (e7[1] - '0') * 10 + (e7[2] - '0');
  int m = (e7[3] - '0') * 10 + (e7[4] - '0');
  int d = (e7[5] - '0') * 10 + (e7[6] - '0');
  int y = era[e - 1].base + yy;
  if (yy < 1 || m < 1 || m > 12 || d < 1 || d > dim(y, m))
    return CARD_E_FORMAT;
  long v = (long)y * 10000 + m * 100 + d;
  if (v < era[e - 1].first || v > era[e - 1].last)
    return CARD_E_FORMAT;
  snprintf(out, 11, "%04u-%02u-%02u", (unsigned)y % 10000u,
           (unsigned)m % 100u, (unsigned)d % 100u);
  return 0;
}

/* ---- JIS X 0208 text ---- */

struct sbuf {
  char *p;
  size_t n, cap;
};

static int sb_put(struct sbuf *s, const char *t, size_t n) {
  if (s->cap - s->n <= n) {
    size_t cap = (s->cap + n + 1) * 2;
    char *q = malloc(cap);
    if (!q)
      return -1;
    if (s->p) {
      memcpy(q, s->p, s->n);
      explicit_bzero(s->p, s->cap);
      free(s->p);
    }
    s->p = q;
    s->cap = cap;
  }
  memcpy(s->p + s->n, t, n);
  s->n += n;
  s->p[s->n] = '\0';
  return 0;
}

static void sb_drop(struct sbuf *s) {
  if (s->p) {
    explicit_bzero(s->p, s->cap);
    free(s->p);
  }
  s->p = NULL;
  s->n = s->cap = 0;
}

/* One row/cell pair through iconv (EUC-JP: each byte | 0x80).  1: the
 * pair has no character (unassigned code point). */
static int jis_char(iconv_t cd, uint8_t hi, uint8_t lo, struct sbuf *s) {
  char in[2] = {(char)(hi | 0x80), (char)(lo | 0x80)};
  char outb[8];
  char *ip = in, *op = outb;
  size_t il = 2, ol = sizeof(outb);
  iconv(cd, NULL, NULL, NULL, NULL);
  if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1 || il != 0)
    return 1;
  int rc = sb_put(s, outb, (size_t)(op - outb)) ? -1 : 0;
  explicit_bzero(outb, sizeof(outb));
  return rc;
}

char *card_jis0208_to_utf8(const uint8_t *b, size_t n, int *gaiji,
                           struct card_err *err) {
  struct sbuf s = {NULL, 0, 0};
  iconv_t cd = (iconv_t)-1;
  int count = 0;
  if (gaiji)
    *gaiji = 0;
  if (!b && n) {
    card__fail(err, CARD_E_ARG, "card_jis0208_to_utf8: no data");
    goto fail;
  }
  if (n % 2) {
    card__fail(err, CARD_E_FORMAT,
               "JIS X 0208 text of %zu bytes: an odd length, 2 bytes per "
               "character",
               n);
    goto fail;
  }
  cd = iconv_open("UTF-8", "EUC-JP");
  if (cd == (iconv_t)-1) {
    card__fail(err, CARD_E_NOMEM, "iconv EUC-JP to UTF-8: %s",
               strerror(errno));
    goto fail;
  }
  if (sb_put(&s, "", 0))
    goto nomem;
  for (size_t i = 0; i < n; i += 2) {
    uint8_t hi = b[i], lo = b[i + 1];
    int rc = 1;
    if (hi >= 0x21 && hi <= 0x7E && lo >= 0x21 && lo <= 0x7E) {
      rc = jis_char(cd, hi, lo, &s);
      if (rc < 0)
        goto nomem;
      if (rc == 0)
        continue;
    }
    /* §2.5: FFF1..FFF7 外字1..7, FFFA 欠字, in either byte order; any
     * other code is shown as 〓 for staff to confirm */
    uint8_t other = hi == 0xFF ? lo : lo == 0xFF ? hi : 0;
    char ph[32];
    if (other >= 0xF1 && other <= 0xF7)
      snprintf(ph, sizeof(ph), "【外字%d】", other - 0xF0);
    else if (other == 0xFA)
      snprintf(ph, sizeof(ph), "【欠字】");
    else
      snprintf(ph, sizeof(ph), "〓");
    if (sb_put(&s, ph, strlen(ph)))
      goto nomem;
    count++;
  }
  iconv_close(cd);
  if (gaiji)
    *gaiji = count;
  return s.p;
nomem:
  card__fail(err, CARD_E_NOMEM, "out of memory");
fail:
  if (cd != (iconv_t)-1)
    iconv_close(cd);
  sb_drop(&s);
  return NULL;
}

/* ---- the card ---- */

static int pin4_ok(const char *p) {
  for (int i = 0; i < 4; i++)
    if (p[i] < '0' || p[i] > '9')
      return 0;
  return p[4] == '\0';
}

int card__lic_probe(struct card__ctx *c, uint16_t *mf_sw) {
  static const uint8_t sel_mf[4] = {0x00, 0xA4, 0x00, 0x00};
  static const uint8_t sel_2f01[7] = {0x00, 0xA4, 0x02, 0x0C,
                                      0x02, 0x2F, 0x01};
  static const uint8_t rd[5] = {0x00, 0xB0, 0x00, 0x00, 0x11};
  struct card_sel *s = &c->io->sel;
  memset(s, 0, sizeof(*s));
  int rc = card__cmd(c, sel_mf, sizeof(sel_mf));
  if (rc)
    return rc;
  if (mf_sw)
    *mf_sw = c->sw;
  rc = card__cmd(c, sel_2f01, sizeof(sel_2f01));
  if (rc)
    return rc;
  if (c->sw != 0x9000)
    return 0;
  rc = card__cmd(c, rd, sizeof(rd));
  if (rc)
    return rc;
  if (c->sw != 0x9000 || c->rn != 17)
    return 0;
  /* §2.3: 45 0B <version 3, issue BCD 4, expiry BCD 4> 46 02 <2> */
  size_t pos = 0, vp, vl;
  uint32_t tag;
  if (card_tlv_next(c->rb, c->rn, &pos, &tag, &vp, &vl, "MF/EF01", NULL) ||
      tag != 0x45 || vl != 11)
    return 0;
  s->app = CARD__SEL_LIC_MF;
  s->ef = 0x2F01;
  s->checked = 1;
  return 1;
}

/* MF, common data checked, then EF 000A: PIN set (1) or not (0). */
static int pin_setting(struct card__ctx *c, int *pin_set) {
  struct card_sel *s = &c->io->sel;
  int rc;
  if (s->app != CARD__SEL_LIC_MF || !s->checked) {
    rc = card__lic_probe(c, NULL);
    if (rc < 0)
      return rc;
    if (rc == 0)
      return card__fail(c->err, CARD_E_FORMAT,
                        "MF/EF01: no licence common data (tag 45, 11 bytes)"
                        " on this card (status %04X)",
                        c->sw);
  }
  if (s->ef != 0x000A) {
    s->ef = 0;
    rc = card__select_ef(c, 0x000A, "MF/EF02 (暗証番号設定)");
    if (rc)
      return rc;
    s->ef = 0x000A;
  }
  uint8_t b[3];
  size_t got;
  rc = card__read(c, 0, 0, sizeof(b), 0, b, &got, 0, "MF/EF02");
  if (rc)
    return rc;
  /* one TLV; its value byte 01 = PIN set, 00 = not (TRET) */
  size_t pos = 0, vp, vl;
  uint32_t tag;
  rc = card_tlv_next(b, sizeof(b), &pos, &tag, &vp, &vl, "MF/EF02", c->err);
  if (rc)
    return rc;
  if (vl != 1 || b[vp] > 1)
    return card__fail(c->err, CARD_E_FORMAT,
                      "MF/EF02 at byte %zu: PIN setting must be one byte 00 "
                      "or 01",
                      vp);
  *pin_set = b[vp];
  return 0;
}

/* Empty VERIFY on IEF01 by short EF id: tries left without spending one.
 * -1 when verified already in this session. */
static int empty_verify(struct card__ctx *c, int *tries) {
  static const uint8_t cmd[4] = {0x00, 0x20, 0x00, 0x81};
  int rc = card__cmd(c, cmd, sizeof(cmd));
  if (rc)
    return rc;
  if ((c->sw & 0xFFF0) == 0x63C0)
    *tries = c->sw & 0x0F;
  else if (c->sw == 0x6984 || c->sw == 0x6983)
    *tries = 0;
  else if (c->sw == 0x9000)
    *tries = -1;
  else
    return card__sw_fail(c, "VERIFY (tries left) IEF01");
  return 0;
}

int card__lic_tries(struct card__ctx *c, int *tries, int *pin_set) {
  int rc = pin_setting(c, pin_set);
  if (rc)
    return rc;
  *tries = -1;
  if (!*pin_set)
    return 0;
  return empty_verify(c, tries);
}

/* What we take from EF01, as value offsets into the buffer. */
struct fields {
  size_t vp[0x22], vl[0x22];
  unsigned char seen[0x22];
  int done; /* tag 21 or the end mark reached */
};

/* One TLV of EF01.  Its tags are single bytes 11..33, including 1F
 * (免許の条件4), which BER would take for a multi-byte tag: so the tag is
 * one byte, or 5F xx (TRET accepts those); the length is BER. */
static int lic_tlv_next(const uint8_t *b, size_t n, size_t *pos,
                        uint32_t *tag, size_t *vp, size_t *vl,
                        struct card_err *err) {
  size_t p = *pos, start = p;
  uint32_t t = b[p++];
  if (t == 0x5F) {
    if (p >= n)
      return card__fail(err, CARD_E_FORMAT,
                        "DF1/EF01 at byte %zu: tag cut short by the end of "
                        "the data (%zu bytes)",
                        start, n);
    t = t << 8 | b[p++];
  }
  size_t l;
  int rc = card__ber_len(b, n, &p, &l, "DF1/EF01", err);
  if (rc)
    return rc;
  if (l > n - p)
    return card__fail(err, CARD_E_FORMAT,
                      "DF1/EF01 at byte %zu: value of tag %X (%zu bytes from "
                      "byte %zu) runs past the end of the data (%zu bytes)",
                      start, (unsigned)t, l, p, n);
  *tag = t;
  *vp = p;
  *vl = l;
  *pos = p + l;
  return 0;
}

/* Parse the TLVs in b[0..n).  0: parsed all that is whole; the last TLV
 * may be cut (then, with n < EF01_SIZE, more is read). */
static int ef01_scan(struct card__ctx *c, const uint8_t *b, size_t n,
                     struct fields *f, int final) {
  size_t pos = 0, vp = 0, vl = 0;
  uint32_t tag = 0;
  memset(f, 0, sizeof(*f));
  while (pos < n) {
    if (b[pos] == 0xFF) { /* end of the data (§2.4) */
      f->done = 1;
      return 0;
    }
    size_t at = pos;
    struct card_err e;
    int rc = lic_tlv_next(b, n, &pos, &tag, &vp, &vl, &e);
    if (rc) {
      if (!final)
        return 0; /* cut by the chunk: read more */
      if (c->err)
        *c->err = e;
      return rc;
    }
    if (tag < 0x22) {
      if (f->seen[tag])
        return card__fail(c->err, CARD_E_FORMAT,
                          "DF1/EF01 at byte %zu: tag %02X appears twice", at,
                          (unsigned)tag);
      f->seen[tag] = 1;
      f->vp[tag] = vp;
      f->vl[tag] = vl;
      if (tag == 0x21) {
        f->done = 1;
        return 0;
      }
    }
  }
  if (final)
    f->done = 1;
  return 0;
}

static int jis_field(struct card__ctx *c, const uint8_t *b,
                     const struct fields *f, unsigned tag, const char *label,
                     char **outp, int *gaiji) {
  if (!f->seen[tag])
    return 0;
  struct card_err e;
  int g = 0;
  char *s = card_jis0208_to_utf8(b + f->vp[tag], f->vl[tag], &g, &e);
  if (!s)
    return card__fail(c->err, CARD_E_FORMAT, "DF1/EF01 at byte %zu: %s: %s",
                      f->vp[tag], label, e.msg);
  *outp = s;
  *gaiji += g;
  return 0;
}

static int date_field(struct card__ctx *c, const uint8_t *b,
                      const struct fields *f, unsigned tag, const char *label,
                      char **outp) {
  if (!f->seen[tag])
    return 0;
  char e7[8], iso[11];
  int ok = f->vl[tag] == 7;
  if (ok) {
    memcpy(e7, b + f->vp[tag], 7);
    e7[7] = '\0';
    ok = card_era_date(e7, iso) == 0;
  }
  if (!ok)
    return card__fail(c->err, CARD_E_FORMAT,
                      "DF1/EF01 at byte %zu: %s (tag %02X) is not an era "
                      "date EYYMMDD",
                      f->vp[tag], label, tag);
  if (iso[0] && !(*outp = strdup(iso)))
    return card__fail(c->err, CARD_E_NOMEM, "out of memory");
  return 0;
}

static int ef01_fields(struct card__ctx *c, const uint8_t *b,
                       const struct fields *f, struct card_result *out) {
  int rc, g = 0;
  if (!f->seen[0x12])
    return card__fail(c->err, CARD_E_FORMAT,
                      "DF1/EF01: the name (tag 12) is missing");
  if ((rc = jis_field(c, b, f, 0x12, "name", &out->name, &g)) ||
      (rc = jis_field(c, b, f, 0x13, "kana", &out->kana, &g)) ||
      (rc = jis_field(c, b, f, 0x17, "address", &out->address, &g)) ||
      (rc = date_field(c, b, f, 0x16, "birth date", &out->birth_date)) ||
      (rc = date_field(c, b, f, 0x1B, "expiry", &out->expiry)))
    return rc;
  out->gaiji = g;
  if (f->seen[0x21]) {
    size_t vp = f->vp[0x21], vl = f->vl[0x21];
    int ok = vl == 12;
    for (size_t i = 0; ok && i < vl; i++)
      ok = b[vp + i] >= '0' && b[vp + i] <= '9';
    if (!ok)
      return card__fail(c->err, CARD_E_FORMAT,
                        "DF1/EF01 at byte %zu: licence number (tag 21) is "
                        "not 12 digits",
                        vp);
    if (!(out->license_number = card__strndup(b + vp, vl)))
      return card__fail(c->err, CARD_E_NOMEM, "out of memory");
  }
  return 0;
}

int card__lic_read(struct card__ctx *c, const char *pin,
                   struct card_result *out) {
  uint8_t vcmd[9] = {0x00, 0x20, 0x00, 0x81, 0x04};
  uint8_t *b = NULL;
  struct fields f;
  int rc, pin_set = 0, tries = -1;
  int given = pin && pin[0];
  if (given && !pin4_ok(pin)) {
    rc = card__fail(c->err, CARD_E_ARG, "暗証番号1 must be 4 digits");
    goto out;
  }
  rc = pin_setting(c, &pin_set);
  if (rc)
    goto out;
  if (pin_set && !given) {
    rc = card__fail(c->err, CARD_E_ARG,
                    "this licence has a PIN: 暗証番号1 (4 digits) is needed");
    goto out;
  }
  rc = empty_verify(c, &tries);
  if (rc)
    goto out;
  out->tries_left = tries;
  if (tries == 0) {
    rc = card__fail(c->err, CARD_E_BLOCKED,
                    "暗証番号1 is blocked (no try left); the police's reset "
                    "is needed");
    goto out;
  }
  /* no PIN set: PIN1 is "****" (2A x4, §2.2) */
  memcpy(vcmd + 5, pin_set ? pin : "****", 4);
  rc = card__cmd(c, vcmd, sizeof(vcmd));
  explicit_bzero(vcmd, sizeof(vcmd));
  if (rc)
    goto out;
  if ((c->sw & 0xFFF0) == 0x63C0) {
    out->tries_left = c->sw & 0x0F;
    rc = card__fail(c->err, CARD_E_PIN, "wrong 暗証番号1: %d tries left",
                    out->tries_left);
    goto out;
  }
  if (c->sw == 0x6984 || c->sw == 0x6983) {
    out->tries_left = 0;
    rc = card__fail(c->err, CARD_E_BLOCKED, "暗証番号1 is blocked");
    goto out;
  }
  if (c->sw != 0x9000) {
    rc = card__sw_fail(c, "VERIFY IEF01 (暗証番号1)");
    goto out;
  }
  out->tries_left = pin_set ? CARD__LIC_MAX_TRIES : -1;

  c->io->sel.app = CARD__SEL_UNKNOWN;
  rc = card__select_aid(c, DF1_AID, sizeof(DF1_AID), "DF1");
  if (rc)
    goto out;
  c->io->sel.app = CARD__SEL_LIC_DF1;
  c->io->sel.ef = 0;
  b = malloc(EF01_SIZE);
  if (!b) {
    rc = card__fail(c->err, CARD_E_NOMEM, "out of memory");
    goto out;
  }
  size_t have = 0;
  memset(&f, 0, sizeof(f));
  while (!f.done) {
    size_t chunk = c->io->extended ? EF01_SIZE - have : 256;
    if (chunk > EF01_SIZE - have)
      chunk = EF01_SIZE - have;
    size_t got;
    /* the first READ names EF01 by its short id and makes it current */
    rc = card__read(c, have ? 0 : 1, have, chunk, c->io->extended, b + have,
                    &got, 1, "DF1/EF01");
    if (rc)
      goto out;
    have += got;
    int final = have == EF01_SIZE || got < chunk;
    rc = ef01_scan(c, b, have, &f, final);
    if (rc)
      goto out;
  }
  c->io->sel.ef = 0x0001;
  rc = ef01_fields(c, b, &f, out);
out:
  if (b) {
    explicit_bzero(b, EF01_SIZE);
    free(b);
  }
  return rc;
}
