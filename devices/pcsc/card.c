/*
 * card.c — transport, identification, dispatch and layouts shared by the
 * three ID cards (I7; ../shared/reference/id-cards.md).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "card_int.h"

int card__fail(struct card_err *err, int rc, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
  }
  return rc;
}

/* ISO 7816-4 status words that the three cards use (spec 表4-5). */
static const char *sw_text(uint16_t sw) {
  if ((sw & 0xFFF0) == 0x63C0)
    return "wrong PIN";
  switch (sw) {
  case 0x6282: return "end of file reached";
  case 0x6283: return "DF blocked";
  case 0x6300: return "verification failed";
  case 0x6700: return "wrong length";
  case 0x6882: return "secure messaging not supported";
  case 0x6981: return "command incompatible with the file";
  case 0x6982: return "security status not satisfied";
  case 0x6983: return "authentication method blocked";
  case 0x6984: return "reference data blocked";
  case 0x6985: return "conditions of use not satisfied";
  case 0x6986: return "no current EF";
  case 0x6988: return "secure messaging data objects wrong";
  case 0x6A82: return "file not found";
  case 0x6A86: return "wrong P1/P2";
  case 0x6A88: return "reference data not found";
  case 0x6B00: return "offset outside the file";
  case 0x6D00: return "instruction not supported";
  case 0x6E00: return "class not supported";
  default: return "unexpected status";
  }
}

int card__sw_fail(struct card__ctx *c, const char *what) {
  return card__fail(c->err, CARD_E_CARD, "%s: status %04X (%s)", what,
                    c->sw, sw_text(c->sw));
}

int card_transmit(struct card_io *io, const uint8_t *capdu, size_t clen,
                  uint8_t *rapdu, size_t *rlen, uint16_t *sw,
                  struct card_err *err) {
  if (!io || !io->transmit || !capdu || clen < 4 || !rapdu || !rlen ||
      *rlen < 2 || !sw)
    return card__fail(err, CARD_E_ARG, "card_transmit: bad argument");
  size_t cap = *rlen, have = 0;
  const uint8_t *cmd = capdu;
  size_t cmdlen = clen;
  uint8_t getresp[5] = {capdu[0] & 0x03, 0xC0, 0x00, 0x00, 0x00};
  for (int round = 0;; round++) {
    size_t n = cap - have;
    unsigned nr = ++io->apdus;
    int rc = io->transmit(io->ud, cmd, cmdlen, rapdu + have, &n);
    if (rc == -ENODEV)
      return card__fail(err, CARD_E_REMOVED,
                        "the card was removed (APDU %u, INS %02X)", nr,
                        cmd[1]);
    if (rc < 0)
      return card__fail(err, CARD_E_IO, "APDU %u (INS %02X): transport: %s",
                        nr, cmd[1], strerror(-rc));
    if (n < 2 || n > cap - have)
      return card__fail(err, CARD_E_IO,
                        "APDU %u (INS %02X): a response of %zu bytes has no "
                        "status word or overflows %zu bytes",
                        nr, cmd[1], n, cap - have);
    have += n - 2;
    *sw = (uint16_t)(rapdu[have] << 8 | rapdu[have + 1]);
    /* 61 xx: more data waits (T=0 style); fetch it while room remains */
    if ((*sw >> 8) != 0x61 || round >= 64 || cap - have < 258)
      break;
    getresp[4] = (uint8_t)(*sw & 0xFF);
    cmd = getresp;
    cmdlen = sizeof(getresp);
  }
  *rlen = have;
  return 0;
}

int card__cmd(struct card__ctx *c, const uint8_t *capdu, size_t clen) {
  c->rn = CARD_RAPDU_MAX;
  c->sw = 0;
  int rc = card_transmit(c->io, capdu, clen, c->rb, &c->rn, &c->sw, c->err);
  if (rc)
    c->rn = 0;
  return rc;
}

int card__select_aid(struct card__ctx *c, const uint8_t *aid, size_t n,
                     const char *what) {
  uint8_t cmd[5 + 16] = {0x00, 0xA4, 0x04, 0x0C, (uint8_t)n};
  if (n > 16)
    return card__fail(c->err, CARD_E_ARG, "SELECT %s: AID too long", what);
  memcpy(cmd + 5, aid, n);
  int rc = card__cmd(c, cmd, 5 + n);
  if (rc)
    return rc;
  if (c->sw != 0x9000) {
    char w[64];
    snprintf(w, sizeof(w), "SELECT %s", what);
    return card__sw_fail(c, w);
  }
  return 0;
}

int card__select_ef(struct card__ctx *c, uint16_t fid, const char *what) {
  uint8_t cmd[7] = {0x00, 0xA4, 0x02, 0x0C, 0x02, (uint8_t)(fid >> 8),
                    (uint8_t)fid};
  int rc = card__cmd(c, cmd, sizeof(cmd));
  if (rc)
    return rc;
  if (c->sw != 0x9000) {
    char w[64];
    snprintf(w, sizeof(w), "SELECT %s", what);
    return card__sw_fail(c, w);
  }
  return 0;
}

int card__read(struct card__ctx *c, int sfi, size_t off, size_t n, int ext,
               uint8_t *dst, size_t *got, int allow_short,
               const char *what) {
  size_t done = 0;
  int first = 1;
  *got = 0;
  while (done < n) {
    size_t at = off + done, want = n - done;
    size_t max = ext ? 65536 : 256;
    if (want > max)
      want = max;
    uint8_t cmd[7];
    size_t clen;
    cmd[0] = 0x00;
    cmd[1] = 0xB0;
    if (first && sfi > 0) {
      if (at > 0xFF)
        return card__fail(c->err, CARD_E_ARG,
                          "READ %s: offset %zu too large for a short EF id",
                          what, at);
      cmd[2] = (uint8_t)(0x80 | sfi);
      cmd[3] = (uint8_t)at;
    } else {
      if (at > 0x7FFF)
        return card__fail(c->err, CARD_E_FORMAT,
                          "READ %s: offset %zu beyond the 15-bit limit", what,
                          at);
      cmd[2] = (uint8_t)(at >> 8);
      cmd[3] = (uint8_t)at;
    }
    if (ext) {
      cmd[4] = 0x00;
      cmd[5] = (uint8_t)(want == 65536 ? 0 : want >> 8);
      cmd[6] = (uint8_t)want;
      clen = 7;
    } else {
      cmd[4] = (uint8_t)want; /* 256 encodes as 00 */
      clen = 5;
    }
    first = 0;
    int rc = card__cmd(c, cmd, clen);
    if (rc)
      return rc;
    if (c->sw != 0x9000 && c->sw != 0x6282) {
      char w[80];
      snprintf(w, sizeof(w), "READ BINARY %s at byte %zu", what, at);
      return card__sw_fail(c, w);
    }
    if (c->rn > want)
      return card__fail(c->err, CARD_E_CARD,
                        "READ BINARY %s at byte %zu: %zu bytes answered where "
                        "at most %zu were asked",
                        what, at, c->rn, want);
    memcpy(dst + done, c->rb, c->rn);
    done += c->rn;
    if (c->rn == 0 || c->sw == 0x6282) {
      if (done < n && !allow_short)
        return card__fail(c->err, CARD_E_FORMAT,
                          "%s: the file ends at byte %zu, %zu bytes were "
                          "expected",
                          what, off + done, off + n);
      break;
    }
  }
  *got = done;
  return 0;
}

int card__utf8_ok(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t b = s[i];
    size_t k;
    uint32_t cp;
    if (b == 0)
      return 0;
    if (b < 0x80) {
      i++;
      continue;
    } else if ((b & 0xE0) == 0xC0) {
      k = 1;
      cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      k = 2;
      cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      k = 3;
      cp = b & 0x07;
    } else {
      return 0;
    }
    if (n - i <= k)
      return 0;
    for (size_t j = 1; j <= k; j++) {
      if ((s[i + j] & 0xC0) != 0x80)
        return 0;
      cp = cp << 6 | (s[i + j] & 0x3F);
    }
    if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) ||
        (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += k + 1;
  }
  return 1;
}

char *card__strndup(const uint8_t *s, size_t n) {
  char *p = malloc(n + 1);
  if (!p)
    return NULL;
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

void card__wipe_free(char *s) {
  if (s) {
    explicit_bzero(s, strlen(s));
    free(s);
  }
}

/* ---- identification and dispatch ---- */

static const uint8_t MN_TEXT_AID[10] = {0xD3, 0x92, 0x10, 0x00, 0x31,
                                        0x00, 0x01, 0x01, 0x04, 0x08};

static int ctx_open(struct card__ctx *c, struct card_io *io,
                    struct card_err *err) {
  memset(c, 0, sizeof(*c));
  c->io = io;
  c->err = err;
  if (err)
    err->msg[0] = '\0';
  if (!io || !io->transmit)
    return card__fail(err, CARD_E_ARG, "no transport");
  c->rb = malloc(CARD_RAPDU_MAX);
  if (!c->rb)
    return card__fail(err, CARD_E_NOMEM, "out of memory");
  return 0;
}

static void ctx_close(struct card__ctx *c) {
  if (c->rb) {
    explicit_bzero(c->rb, CARD_RAPDU_MAX); /* card contents */
    free(c->rb);
    c->rb = NULL;
  }
}

int card_identify(struct card_io *io, int *type, struct card_err *err) {
  struct card__ctx c;
  uint16_t mn_sw = 0, mf_sw = 0, lic_sw = 0;
  if (type)
    *type = CARD_UNKNOWN;
  int rc = ctx_open(&c, io, err);
  if (rc)
    goto out;
  if (!type) {
    rc = card__fail(err, CARD_E_ARG, "card_identify: no type");
    goto out;
  }
  memset(&io->sel, 0, sizeof(io->sel));
  /* 1. My Number: the 券面事項入力補助AP answers its AID (§6) */
  uint8_t sel_mn[5 + 10] = {0x00, 0xA4, 0x04, 0x0C, 0x0A};
  memcpy(sel_mn + 5, MN_TEXT_AID, 10);
  rc = card__cmd(&c, sel_mn, sizeof(sel_mn));
  if (rc)
    goto out;
  mn_sw = c.sw;
  if (c.sw == 0x9000) {
    io->sel.app = CARD__SEL_MN_AP;
    *type = CARD_MYNUMBER;
    goto out;
  }
  /* 2. licence: MF, EF 2F01 with the common data (tag 45) */
  rc = card__lic_probe(&c, &mf_sw);
  if (rc < 0)
    goto out;
  lic_sw = c.sw;
  if (rc == 1) {
    rc = 0;
    *type = CARD_LICENSE;
    goto out;
  }
  /* 3. residence card: MF/EF02 tag C1 (free read, §3.1).  The licence
   * probe's bare SELECT MF is not the spec's form (Lc 02 3F00): when the
   * card refused it, select the MF the residence card's way. */
  rc = card__rc_kind(&c, mf_sw != 0x9000);
  if (rc == 0) {
    *type = CARD_RESIDENCE;
    goto out;
  }
  if (rc != CARD_E_CARD && rc != CARD_E_FORMAT)
    goto out;
  rc = card__fail(err, CARD_E_UNKNOWN,
                  "no ID card application answered (My Number AP: %04X, "
                  "licence MF/EF 2F01: %04X, residence MF/EF02: %04X)",
                  mn_sw, lic_sw, c.sw);
out:
  if (rc && io)
    memset(&io->sel, 0, sizeof(io->sel));
  ctx_close(&c);
  return rc;
}

int card_tries_left(struct card_io *io, int type, int *tries, int *pin_set,
                    struct card_err *err) {
  struct card__ctx c;
  int t = -1, ps = 1;
  int rc = ctx_open(&c, io, err);
  if (rc)
    goto out;
  switch (type) {
  case CARD_MYNUMBER:
    rc = card__mn_tries(&c, &t);
    break;
  case CARD_LICENSE:
    rc = card__lic_tries(&c, &t, &ps);
    break;
  case CARD_RESIDENCE:
    break; /* no counter: failures are unlimited (spec §4.2.2) */
  default:
    rc = card__fail(err, CARD_E_ARG, "card_tries_left: card type %d", type);
  }
out:
  if (rc && io)
    memset(&io->sel, 0, sizeof(io->sel));
  if (tries)
    *tries = rc ? -1 : t;
  if (pin_set)
    *pin_set = ps;
  ctx_close(&c);
  return rc;
}

static void result_clear_contents(struct card_result *r) {
  card__wipe_free(r->name);
  card__wipe_free(r->kana);
  card__wipe_free(r->address);
  card__wipe_free(r->birth_date);
  card__wipe_free(r->license_number);
  card__wipe_free(r->expiry);
  free(r->card_kind); /* static text copy, nothing personal */
  if (r->face) {
    explicit_bzero(r->face, r->face_len);
    free(r->face);
  }
  if (r->photo) {
    explicit_bzero(r->photo, r->photo_len);
    free(r->photo);
  }
  card__wipe_free(r->sex);
  r->name = r->kana = r->address = r->birth_date = NULL;
  r->license_number = r->expiry = r->card_kind = r->sex = NULL;
  r->face = r->photo = NULL;
  r->face_len = r->photo_len = 0;
  explicit_bzero(r->my_number, sizeof(r->my_number));
  r->my_number_valid = 0;
  r->gaiji = 0;
}

int card_read(struct card_io *io, int type, const char *secret,
              struct card_result *out, struct card_err *err) {
  struct card__ctx c;
  if (!out)
    return card__fail(err, CARD_E_ARG, "card_read: no result");
  memset(out, 0, sizeof(*out));
  out->type = type;
  out->tries_left = -1;
  unsigned start = io ? io->apdus : 0;
  int rc = ctx_open(&c, io, err);
  if (rc)
    goto out;
  switch (type) {
  case CARD_MYNUMBER:
    rc = card__mn_read(&c, secret, out);
    break;
  case CARD_LICENSE:
    rc = card__lic_read(&c, secret, out);
    break;
  case CARD_RESIDENCE:
    rc = card__rc_read(&c, secret, out);
    break;
  default:
    rc = card__fail(err, CARD_E_ARG, "card_read: card type %d", type);
  }
out:
  if (io)
    out->apdus = io->apdus - start;
  if (rc) {
    /* nothing half-read leaves: the caller sees the reason, the tries
     * and the APDU count only */
    result_clear_contents(out);
    if (io)
      memset(&io->sel, 0, sizeof(io->sel));
  }
  ctx_close(&c);
  return rc;
}

void card_result_free(struct card_result *r) {
  if (!r)
    return;
  result_clear_contents(r);
}

const char *card_type_name(int type) {
  switch (type) {
  case CARD_MYNUMBER: return "mynumber";
  case CARD_LICENSE: return "license";
  case CARD_RESIDENCE: return "residence";
  default: return "unknown";
  }
}

const char *card_error_code(int rc) {
  switch (rc) {
  case 0: return "ok";
  case CARD_E_IO: return "io";
  case CARD_E_REMOVED: return "removed";
  case CARD_E_UNKNOWN: return "unknown_card";
  case CARD_E_PIN: return "wrong_pin";
  case CARD_E_BLOCKED: return "blocked";
  case CARD_E_FORMAT: return "bad_card_data";
  case CARD_E_CARD: return "card_error";
  case CARD_E_ARG: return "bad_argument";
  case CARD_E_NOMEM: return "no_memory";
  case CARD_E_AUTH: return "auth_failed";
  default: return "error";
  }
}

/* ---- layouts ---- */

/* Tag and length of the TLV at buf[p] (within len); *p moves to the
 * value.  `start` is the TLV's offset in the file for the messages. */
static int tlv_head_at(const uint8_t *buf, size_t len, size_t *pp,
                       uint32_t *tag, size_t *vlen, const char *where,
                       struct card_err *err) {
  size_t p = *pp, start = p;
  if (p >= len)
    return card__fail(err, CARD_E_FORMAT,
                      "%s at byte %zu: a TLV was expected but the data ends "
                      "(%zu bytes)",
                      where, p, len);
  /* tag: 1 byte, or a first byte with all number bits set (x1F) and up
   * to 2 more bytes, each but the last with bit 8 set (ISO 7816-4 5.2.2) */
  uint32_t t = buf[p++];
  if ((t & 0x1F) == 0x1F) {
    for (int i = 0;; i++) {
      if (i == 2)
        return card__fail(err, CARD_E_FORMAT,
                          "%s at byte %zu: tag longer than 3 bytes", where,
                          start);
      if (p >= len)
        return card__fail(err, CARD_E_FORMAT,
                          "%s at byte %zu: tag cut short by the end of the "
                          "data (%zu bytes)",
                          where, start, len);
      uint8_t b = buf[p++];
      t = t << 8 | b;
      if (!(b & 0x80))
        break;
    }
  }
  if (p >= len)
    return card__fail(err, CARD_E_FORMAT,
                      "%s at byte %zu: tag %X has no length byte", where, p,
                      (unsigned)t);
  size_t l;
  int rc = card__ber_len(buf, len, &p, &l, where, err);
  if (rc)
    return rc;
  *tag = t;
  *vlen = l;
  *pp = p;
  return 0;
}

int card__ber_len(const uint8_t *buf, size_t len, size_t *pp, size_t *vlen,
                  const char *where, struct card_err *err) {
  /* short form 00..7F, or 81/82/83 followed by 1..3 bytes */
  size_t p = *pp;
  if (p >= len)
    return card__fail(err, CARD_E_FORMAT,
                      "%s at byte %zu: a length was expected but the data "
                      "ends",
                      where, p);
  size_t lpos = p;
  uint8_t l0 = buf[p++];
  size_t l = l0;
  if (l0 == 0x80)
    return card__fail(err, CARD_E_FORMAT,
                      "%s at byte %zu: indefinite BER length (80) is not "
                      "allowed",
                      where, lpos);
  if (l0 > 0x80) {
    size_t nb = l0 & 0x7F;
    if (nb > 3)
      return card__fail(err, CARD_E_FORMAT,
                        "%s at byte %zu: BER length 0x%02X longer than 3 "
                        "bytes",
                        where, lpos, l0);
    if (len - p < nb)
      return card__fail(err, CARD_E_FORMAT,
                        "%s at byte %zu: BER length 0x%02X needs %zu more "
                        "bytes, the data ends at %zu",
                        where, lpos, l0, nb, len);
    l = 0;
    for (size_t i = 0; i < nb; i++)
      l = l << 8 | buf[p++];
  }
  *vlen = l;
  *pp = p;
  return 0;
}

int card__tlv_head(const uint8_t *buf, size_t len, size_t *hlen,
                   uint32_t *tag, size_t *vlen, const char *where,
                   struct card_err *err) {
  size_t p = 0;
  int rc = tlv_head_at(buf, len, &p, tag, vlen, where ? where : "data", err);
  if (rc == 0)
    *hlen = p;
  return rc;
}

int card_tlv_next(const uint8_t *buf, size_t len, size_t *pos, uint32_t *tag,
                  size_t *vpos, size_t *vlen, const char *where,
                  struct card_err *err) {
  if (!where)
    where = "data";
  if (!buf || !pos || !tag || !vpos || !vlen)
    return card__fail(err, CARD_E_ARG, "%s: card_tlv_next: bad argument",
                      where);
  size_t p = *pos, start = p, l = 0; /* = 0: -O3 cannot see them set */
  uint32_t t = 0;
  int rc = tlv_head_at(buf, len, &p, &t, &l, where, err);
  if (rc)
    return rc;
  if (l > len - p)
    return card__fail(err, CARD_E_FORMAT,
                      "%s at byte %zu: value of tag %X (%zu bytes from byte "
                      "%zu) runs past the end of the data (%zu bytes)",
                      where, start, (unsigned)t, l, p, len);
  *tag = t;
  *vpos = p;
  *vlen = l;
  *pos = p + l;
  return 0;
}

int card_mynumber_ok(const char *d) {
  if (!d)
    return 0;
  for (int i = 0; i < 12; i++)
    if (d[i] < '0' || d[i] > '9')
      return 0;
  if (d[12] != '\0')
    return 0;
  /* §4.1: Pn counted from the lowest digit of the 11-digit body,
   * Qn = n+1 (n <= 6), n-5 (n >= 7) */
  int sum = 0;
  for (int n = 1; n <= 11; n++) {
    int p = d[11 - n] - '0';
    int q = n <= 6 ? n + 1 : n - 5;
    sum += p * q;
  }
  int r = sum % 11;
  int check = r <= 1 ? 0 : 11 - r;
  return check == d[11] - '0';
}
