/*
 * card_mynumber.c — the My Number card's 券面事項入力補助AP (I7;
 * id-cards.md §1.2–§1.5): tries left, PIN, 個人番号 (EF0001) and 基本4情報
 * (EF0002).
 *
 * APDUs of a read after card_identify (which selected the AP):
 *   SELECT EF0011, VERIFY (empty: tries), VERIFY PIN, SELECT EF0001,
 *   READ 15, SELECT EF0002, READ 7 (head: tag + BER length), READ rest
 * = 8 when the rest fits one READ (256 bytes short, 65536 extended).
 * The SELECT EF + P1P2-offset form is the conservative one (§1.2); the
 * short-EF-id form of one library would save the two EF SELECTs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "card_int.h"

static const uint8_t TEXT_AID[10] = {0xD3, 0x92, 0x10, 0x00, 0x31,
                                     0x00, 0x01, 0x01, 0x04, 0x08};

#define EF2_MAX 4096 /* EF0002 is some 100..300 bytes (§1.4) */

static int pin4_ok(const char *p) {
  if (!p)
    return 0;
  for (int i = 0; i < 4; i++)
    if (p[i] < '0' || p[i] > '9')
      return 0;
  return p[4] == '\0';
}

/* Make the AP and then EF `fid` current, skipping what is already so. */
static int select_ef(struct card__ctx *c, uint16_t fid, const char *what) {
  struct card_sel *s = &c->io->sel;
  int rc;
  if (s->app != CARD__SEL_MN_AP) {
    memset(s, 0, sizeof(*s));
    rc = card__select_aid(c, TEXT_AID, sizeof(TEXT_AID),
                          "券面事項入力補助AP");
    if (rc)
      return rc;
    s->app = CARD__SEL_MN_AP;
  }
  if (s->ef == fid)
    return 0;
  s->ef = 0;
  rc = card__select_ef(c, fid, what);
  if (rc)
    return rc;
  s->ef = fid;
  return 0;
}

/* Empty VERIFY on the selected PIN EF: tries left without spending one
 * (§1.5).  *tries: 0..15, or -1 when the PIN is verified already in this
 * session (90 00).  69 84 / 69 83 mean blocked: 0. */
static int empty_verify(struct card__ctx *c, int *tries) {
  static const uint8_t cmd[4] = {0x00, 0x20, 0x00, 0x80};
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
    return card__sw_fail(c, "VERIFY (tries left) EF0011");
  return 0;
}

int card__mn_tries(struct card__ctx *c, int *tries) {
  int rc = select_ef(c, 0x0011, "EF0011 (PIN)");
  if (rc)
    return rc;
  return empty_verify(c, tries);
}

static int parse_ef1(struct card__ctx *c, const uint8_t *b, size_t n,
                     struct card_result *out) {
  size_t pos = 0, vp, vl;
  uint32_t tag;
  int rc = card_tlv_next(b, n, &pos, &tag, &vp, &vl, "EF0001", c->err);
  if (rc)
    return rc;
  if (tag != 0xFF10)
    return card__fail(c->err, CARD_E_FORMAT,
                      "EF0001 at byte 0: tag %X where FF10 (個人番号) was "
                      "expected",
                      (unsigned)tag);
  if (vl != 12)
    return card__fail(c->err, CARD_E_FORMAT,
                      "EF0001 at byte %zu: 個人番号 of %zu bytes, 12 digits "
                      "expected",
                      vp, vl);
  for (size_t i = 0; i < 12; i++)
    if (b[vp + i] < '0' || b[vp + i] > '9')
      return card__fail(c->err, CARD_E_FORMAT,
                        "EF0001 at byte %zu: 個人番号 holds a non-digit",
                        vp + i);
  memcpy(out->my_number, b + vp, 12);
  out->my_number[12] = '\0';
  out->my_number_valid = card_mynumber_ok(out->my_number);
  return 0;
}

static int days_in(int y, int m) {
  static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
    return 29;
  return d[m - 1];
}

/* DF24: 8 ASCII digits YYYYMMDD (§1.4, community code) */
static int birth_iso(struct card__ctx *c, const uint8_t *v, size_t n,
                     size_t at, char **outp) {
  int ok = n == 8;
  for (size_t i = 0; ok && i < 8; i++)
    ok = v[i] >= '0' && v[i] <= '9';
  int y = 0, m = 0, d = 0;
  if (ok) {
    y = (v[0] - '0') * 1000 + (v[1] - '0') * 100 + (v[2] - '0') * 10 +
        (v[3] - '0');
    m = (v[4] - '0') * 10 + (v[5] - '0');
    d = (v[6] - '0') * 10 + (v[7] - '0');
    ok = y >= 1868 && m >= 1 && m <= 12 && d >= 1 && d <= days_in(y, m);
  }
  if (!ok)
    return card__fail(c->err, CARD_E_FORMAT,
                      "EF0002 at byte %zu: birth date (DF24) is not a date "
                      "YYYYMMDD",
                      at);
  char *s = malloc(11);
  if (!s)
    return card__fail(c->err, CARD_E_NOMEM, "out of memory");
  snprintf(s, 11, "%04u-%02u-%02u", (unsigned)y % 10000u, (unsigned)m % 100u,
           (unsigned)d % 100u);
  *outp = s;
  return 0;
}

static int text_field(struct card__ctx *c, const uint8_t *v, size_t n,
                      size_t at, const char *label, char **outp) {
  if (!card__utf8_ok(v, n))
    return card__fail(c->err, CARD_E_FORMAT,
                      "EF0002 at byte %zu: %s is not valid UTF-8", at, label);
  char *s = card__strndup(v, n);
  if (!s)
    return card__fail(c->err, CARD_E_NOMEM, "out of memory");
  *outp = s;
  return 0;
}

static int parse_ef2(struct card__ctx *c, const uint8_t *b, size_t n,
                     struct card_result *out) {
  size_t pos = 0, vp, vl;
  uint32_t tag;
  int rc = card_tlv_next(b, n, &pos, &tag, &vp, &vl, "EF0002", c->err);
  if (rc)
    return rc;
  if (tag != 0xFF20)
    return card__fail(c->err, CARD_E_FORMAT,
                      "EF0002 at byte 0: tag %X where FF20 (基本4情報) was "
                      "expected",
                      (unsigned)tag);
  size_t end = vp + vl;
  unsigned seen = 0;
  pos = vp;
  while (pos < end) {
    size_t at = pos;
    rc = card_tlv_next(b, end, &pos, &tag, &vp, &vl, "EF0002", c->err);
    if (rc)
      return rc;
    if (tag < 0xDF21 || tag > 0xDF25)
      continue; /* a later addition: not ours */
    unsigned bit = 1u << (tag - 0xDF21);
    if (seen & bit)
      return card__fail(c->err, CARD_E_FORMAT,
                        "EF0002 at byte %zu: tag %X appears twice", at,
                        (unsigned)tag);
    seen |= bit;
    switch (tag) {
    case 0xDF22:
      rc = text_field(c, b + vp, vl, at, "the name (DF22)", &out->name);
      break;
    case 0xDF23:
      rc = text_field(c, b + vp, vl, at, "the address (DF23)",
                      &out->address);
      break;
    case 0xDF24:
      rc = birth_iso(c, b + vp, vl, at, &out->birth_date);
      break;
    case 0xDF25: {
      /* ISO 5218 (§1.4); "0" (not known) and others stay NULL */
      const char *sx = NULL;
      if (vl == 1 && b[vp] == '1')
        sx = "male";
      else if (vl == 1 && b[vp] == '2')
        sx = "female";
      else if (vl == 1 && b[vp] == '9')
        sx = "not_applicable";
      if (sx && !(out->sex = strdup(sx)))
        rc = card__fail(c->err, CARD_E_NOMEM, "out of memory");
      break;
    }
    default:
      break; /* DF21: offsets header, not needed */
    }
    if (rc)
      return rc;
  }
  if (!out->name || !out->address)
    return card__fail(c->err, CARD_E_FORMAT,
                      "EF0002: the %s (%s) is missing",
                      out->name ? "address" : "name",
                      out->name ? "DF23" : "DF22");
  return 0;
}

int card__mn_read(struct card__ctx *c, const char *pin,
                  struct card_result *out) {
  uint8_t vcmd[9] = {0x00, 0x20, 0x00, 0x80, 0x04};
  uint8_t ef1[15];
  uint8_t *ef2 = NULL;
  size_t ef2n = 0, ef2cap = 0, got;
  int rc, tries = -1;
  if (!pin4_ok(pin)) {
    rc = card__fail(c->err, CARD_E_ARG,
                    "the 券面事項入力補助用暗証番号 must be 4 digits");
    goto out;
  }
  rc = card__mn_tries(c, &tries);
  if (rc)
    goto out;
  out->tries_left = tries;
  if (tries == 0) {
    /* blocked: no VERIFY goes out (it would answer 69 84 anyway) */
    rc = card__fail(c->err, CARD_E_BLOCKED,
                    "the 券面事項入力補助用暗証番号 is blocked (no try left); "
                    "the city office's reset is needed");
    goto out;
  }
  memcpy(vcmd + 5, pin, 4);
  rc = card__cmd(c, vcmd, sizeof(vcmd));
  explicit_bzero(vcmd, sizeof(vcmd));
  if (rc)
    goto out;
  if ((c->sw & 0xFFF0) == 0x63C0) {
    out->tries_left = c->sw & 0x0F;
    rc = card__fail(c->err, CARD_E_PIN,
                    "wrong 券面事項入力補助用暗証番号: %d tries left",
                    out->tries_left);
    goto out;
  }
  if (c->sw == 0x6984 || c->sw == 0x6983) {
    out->tries_left = 0;
    rc = card__fail(c->err, CARD_E_BLOCKED,
                    "the 券面事項入力補助用暗証番号 is blocked");
    goto out;
  }
  if (c->sw != 0x9000) {
    rc = card__sw_fail(c, "VERIFY EF0011");
    goto out;
  }
  /* a right PIN resets the counter (ISO 7816-4 VERIFY) */
  out->tries_left = CARD__MN_MAX_TRIES;

  /* 個人番号: FF 10 0C + 12 digits = 15 bytes, all we need */
  rc = select_ef(c, 0x0001, "EF0001 (個人番号)");
  if (rc)
    goto out;
  rc = card__read(c, 0, 0, sizeof(ef1), 0, ef1, &got, 0, "EF0001");
  if (rc)
    goto out;
  rc = parse_ef1(c, ef1, sizeof(ef1), out);
  if (rc)
    goto out;

  /* 基本4情報: the head gives the BER length, then the rest at once */
  rc = select_ef(c, 0x0002, "EF0002 (基本4情報)");
  if (rc)
    goto out;
  uint8_t head[7]; /* the longest header: 3 tag + 4 length bytes */
  rc = card__read(c, 0, 0, sizeof(head), 0, head, &got, 1, "EF0002");
  if (rc)
    goto out;
  {
    size_t hl, vl;
    uint32_t tag;
    rc = card__tlv_head(head, got, &hl, &tag, &vl, "EF0002", c->err);
    if (rc)
      goto out;
    ef2n = hl + vl;
  }
  if (ef2n > EF2_MAX) {
    rc = card__fail(c->err, CARD_E_FORMAT,
                    "EF0002 at byte 0: a TLV of %zu bytes is over the "
                    "%d-byte limit of 基本4情報",
                    ef2n, EF2_MAX);
    goto out;
  }
  ef2cap = ef2n > sizeof(head) ? ef2n : sizeof(head);
  ef2 = malloc(ef2cap);
  if (!ef2) {
    rc = card__fail(c->err, CARD_E_NOMEM, "out of memory");
    goto out;
  }
  memcpy(ef2, head, got);
  explicit_bzero(head, sizeof(head));
  if (ef2n > got) {
    size_t more;
    rc = card__read(c, 0, got, ef2n - got, c->io->extended, ef2 + got, &more,
                    0, "EF0002");
    if (rc)
      goto out;
  }
  rc = parse_ef2(c, ef2, ef2n, out);
out:
  explicit_bzero(ef1, sizeof(ef1));
  if (ef2) {
    explicit_bzero(ef2, ef2cap);
    free(ef2);
  }
  return rc;
}
