/*
 * card_residence.c — the residence card / special permanent resident
 * certificate (I7; id-cards.md §3, 在留カード等仕様書 Ver1.5 別添1/別添2):
 * card kind, authentication from the card number with secure messaging
 * (2-key TDES-CBC, Retail MAC, SHA-1; OpenSSL libcrypto), the address
 * (DF2/EF01) and the front-face image and photo (DF1).
 *
 * APDUs of a read after card_identify (which read MF/EF02):
 *   GET CHALLENGE, MUTUAL AUTHENTICATE, VERIFY (SM), SELECT DF2,
 *   READ (SM) DF2/EF01, SELECT DF1, READ (SM) DF1/EF01, READ (SM) DF1/EF02
 * = 8.  Every READ takes the whole EF (extended Le 00 00, spec §4.2.5).
 * The address is read with SM too (allowed for every EF, §4.2.5) so that
 * it does not cross the air in the clear.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "card_int.h"

static const uint8_t DF1_AID[16] = {0xD3, 0x92, 0xF0, 0x00, 0x4F, 0x02,
                                    0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                    0x00, 0x00, 0x00, 0x00};
static const uint8_t DF2_AID[16] = {0xD3, 0x92, 0xF0, 0x00, 0x4F, 0x03,
                                    0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                    0x00, 0x00, 0x00, 0x00};

/* ---- crypto (別添1) ---- */

void card_rc_key(const char *card_number12, uint8_t k[16]) {
  uint8_t h[EVP_MAX_MD_SIZE];
  unsigned hl = 0;
  if (!EVP_Digest(card_number12, 12, h, &hl, EVP_sha1(), NULL) || hl < 16)
    memset(h, 0, 16); /* cannot happen with the default provider */
  memcpy(k, h, 16);
  explicit_bzero(h, sizeof(h));
}

/* EVP cipher without padding over n bytes (a multiple of 8), IV 0. */
static int evp_run(const EVP_CIPHER *ci, const uint8_t *key, int encrypt,
                   const uint8_t *in, size_t n, uint8_t *out) {
  static const uint8_t iv[8] = {0};
  int ok = 0, l1 = 0, l2 = 0;
  if (n % 8 || n > (size_t)1 << 30)
    return CARD_E_ARG;
  EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
  if (!x)
    return CARD_E_NOMEM;
  if (EVP_CipherInit_ex(x, ci, NULL, key, iv, encrypt) &&
      EVP_CIPHER_CTX_set_padding(x, 0) &&
      EVP_CipherUpdate(x, out, &l1, in, (int)n) &&
      EVP_CipherFinal_ex(x, out + l1, &l2) && (size_t)(l1 + l2) == n)
    ok = 1;
  EVP_CIPHER_CTX_free(x);
  return ok ? 0 : CARD_E_IO;
}

int card_tdes_cbc(const uint8_t k[16], int encrypt, const uint8_t *in,
                  size_t n, uint8_t *out) {
  return evp_run(EVP_des_ede_cbc(), k, encrypt, in, n, out);
}

int card_retail_mac(const uint8_t k[16], const uint8_t *in, size_t n,
                    uint8_t mac[8]) {
  /* ISO 9797-1 alg. 3: single-DES CBC with K1 over all blocks but the
   * last, then TDES (K1, K2) on the last.  Single DES is K1||K1 in EDE
   * (OpenSSL 3 keeps plain DES in the legacy provider). */
  uint8_t k11[16], h[8] = {0}, blk[8];
  int rc = 0;
  size_t full = n / 8 * 8; /* padding method 2: 80 00.. always added */
  size_t nblocks = full / 8 + 1;
  memcpy(k11, k, 8);
  memcpy(k11 + 8, k, 8);
  for (size_t i = 0; i + 1 < nblocks; i++) {
    for (int j = 0; j < 8; j++)
      blk[j] = h[j] ^ in[i * 8 + j];
    rc = evp_run(EVP_des_ede_ecb(), k11, 1, blk, 8, h);
    if (rc)
      goto out;
  }
  memset(blk, 0, 8);
  memcpy(blk, in + full, n - full);
  blk[n - full] = 0x80;
  for (int j = 0; j < 8; j++)
    blk[j] ^= h[j];
  rc = evp_run(EVP_des_ede_ecb(), k, 1, blk, 8, mac);
out:
  explicit_bzero(k11, sizeof(k11));
  explicit_bzero(h, sizeof(h));
  explicit_bzero(blk, sizeof(blk));
  return rc;
}

void card_rc_session_key(const uint8_t kifd[16], const uint8_t kicc[16],
                         uint8_t ks[16]) {
  uint8_t m[20], h[EVP_MAX_MD_SIZE];
  unsigned hl = 0;
  for (int i = 0; i < 16; i++)
    m[i] = kifd[i] ^ kicc[i];
  m[16] = 0;
  m[17] = 0;
  m[18] = 0;
  m[19] = 1;
  if (!EVP_Digest(m, sizeof(m), h, &hl, EVP_sha1(), NULL) || hl < 16)
    memset(h, 0, 16);
  memcpy(ks, h, 16);
  explicit_bzero(m, sizeof(m));
  explicit_bzero(h, sizeof(h));
}

/* ---- the card ---- */

int card__rc_kind(struct card__ctx *c, int select_mf) {
  static const uint8_t sel_mf[7] = {0x00, 0xA4, 0x00, 0x00, 0x02, 0x3F, 0x00};
  /* READ BINARY MF/EF02 by short EF id 0A, extended Le 3 */
  static const uint8_t rd[7] = {0x00, 0xB0, 0x8A, 0x00, 0x00, 0x00, 0x03};
  struct card_sel *s = &c->io->sel;
  memset(s, 0, sizeof(*s));
  int rc;
  if (select_mf) {
    rc = card__cmd(c, sel_mf, sizeof(sel_mf));
    if (rc)
      return rc;
    if (c->sw != 0x9000)
      return card__sw_fail(c, "SELECT MF");
  }
  rc = card__cmd(c, rd, sizeof(rd));
  if (rc)
    return rc;
  if (c->sw != 0x9000)
    return card__sw_fail(c, "READ BINARY MF/EF02");
  size_t pos = 0, vp, vl;
  uint32_t tag;
  rc = card_tlv_next(c->rb, c->rn, &pos, &tag, &vp, &vl, "MF/EF02", c->err);
  if (rc)
    return rc;
  if (tag != 0xC1 || vl != 1 || (c->rb[vp] != '1' && c->rb[vp] != '2'))
    return card__fail(c->err, CARD_E_FORMAT,
                      "MF/EF02 at byte 0: card kind must be tag C1 with \"1\" "
                      "or \"2\"");
  s->app = CARD__SEL_RC_MF;
  s->kind = (char)c->rb[vp];
  return 0;
}

/* [A-Z]{2}[0-9]{8}[A-Z]{2}; lower case letters are taken as upper. */
static int card_number_ok(const char *in, char out[13]) {
  if (!in || strlen(in) != 12)
    return 0;
  for (int i = 0; i < 12; i++) {
    char ch = in[i];
    if (ch >= 'a' && ch <= 'z')
      ch = (char)(ch - 'a' + 'A');
    int letter = i < 2 || i >= 10;
    if (letter ? !(ch >= 'A' && ch <= 'Z') : !(ch >= '0' && ch <= '9'))
      return 0;
    out[i] = ch;
  }
  out[12] = '\0';
  return 1;
}

/* Keys of one session. */
struct sm {
  uint8_t k[16];  /* Kenc = Kmac */
  uint8_t ks[16]; /* KSenc */
};

static int authenticate(struct card__ctx *c, const char *cardno,
                        struct sm *sm) {
  static const uint8_t gc[5] = {0x00, 0x84, 0x00, 0x00, 0x08};
  uint8_t rnd[32], e[32], cmd[5 + 40 + 1], dec[32], mac[8];
  uint8_t vcmd[5 + 3 + 16], blk[16];
  int rc;
  card_rc_key(cardno, sm->k);
  rc = card__cmd(c, gc, sizeof(gc));
  if (rc)
    goto out;
  if (c->sw != 0x9000 || c->rn != 8) {
    rc = c->sw == 0x9000
             ? card__fail(c->err, CARD_E_CARD,
                          "GET CHALLENGE: %zu bytes, 8 expected", c->rn)
             : card__sw_fail(c, "GET CHALLENGE");
    goto out;
  }
  /* RND.IFD || RND.ICC || K.IFD */
  if (RAND_bytes(rnd, 8) != 1 || RAND_bytes(rnd + 16, 16) != 1) {
    rc = card__fail(c->err, CARD_E_IO, "no random numbers (RAND_bytes)");
    goto out;
  }
  memcpy(rnd + 8, c->rb, 8);
  cmd[0] = 0x00;
  cmd[1] = 0x82;
  cmd[2] = 0x00;
  cmd[3] = 0x00;
  cmd[4] = 0x28;
  if ((rc = card_tdes_cbc(sm->k, 1, rnd, 32, cmd + 5)) ||
      (rc = card_retail_mac(sm->k, cmd + 5, 32, cmd + 37))) {
    card__fail(c->err, rc, "E_IFD/M_IFD: cipher failed");
    goto out;
  }
  cmd[45] = 0x00;
  rc = card__cmd(c, cmd, sizeof(cmd));
  if (rc)
    goto out;
  if (c->sw == 0x6300 || c->sw == 0x6982 || c->sw == 0x6988) {
    /* the card could not check our MAC: its key (the card number)
     * differs from ours */
    rc = card__fail(c->err, CARD_E_PIN,
                    "MUTUAL AUTHENTICATE: the card refused the card number "
                    "(status %04X)",
                    c->sw);
    goto out;
  }
  if (c->sw != 0x9000) {
    rc = card__sw_fail(c, "MUTUAL AUTHENTICATE");
    goto out;
  }
  if (c->rn != 40) {
    rc = card__fail(c->err, CARD_E_AUTH,
                    "MUTUAL AUTHENTICATE: %zu bytes answered, 40 expected",
                    c->rn);
    goto out;
  }
  memcpy(e, c->rb, 32);
  if ((rc = card_retail_mac(sm->k, e, 32, mac))) {
    card__fail(c->err, rc, "M_ICC: cipher failed");
    goto out;
  }
  if (CRYPTO_memcmp(mac, c->rb + 32, 8) != 0) {
    rc = card__fail(c->err, CARD_E_AUTH,
                    "MUTUAL AUTHENTICATE: the card's MAC (M_ICC) does not "
                    "check");
    goto out;
  }
  if ((rc = card_tdes_cbc(sm->k, 0, e, 32, dec))) {
    card__fail(c->err, rc, "E_ICC: cipher failed");
    goto out;
  }
  /* RND.ICC || RND.IFD || K.ICC */
  if (CRYPTO_memcmp(dec, rnd + 8, 8) || CRYPTO_memcmp(dec + 8, rnd, 8)) {
    rc = card__fail(c->err, CARD_E_AUTH,
                    "MUTUAL AUTHENTICATE: the card's answer does not hold our "
                    "nonces (RND.ICC/RND.IFD)");
    goto out;
  }
  card_rc_session_key(rnd + 16, dec + 16, sm->ks);

  /* VERIFY (SM): 86 11 01 || e(KSenc, card number || 80 00 00 00) */
  memcpy(blk, cardno, 12);
  memcpy(blk + 12, "\x80\x00\x00\x00", 4);
  memcpy(vcmd, "\x08\x20\x00\x86\x13\x86\x11\x01", 8);
  if ((rc = card_tdes_cbc(sm->ks, 1, blk, 16, vcmd + 8))) {
    card__fail(c->err, rc, "VERIFY: cipher failed");
    goto out;
  }
  rc = card__cmd(c, vcmd, sizeof(vcmd));
  if (rc)
    goto out;
  if (c->sw == 0x6300) {
    rc = card__fail(c->err, CARD_E_PIN,
                    "VERIFY: the card number does not match (status 6300)");
    goto out;
  }
  if (c->sw != 0x9000)
    rc = card__sw_fail(c, "VERIFY (card number)");
out:
  explicit_bzero(rnd, sizeof(rnd));
  explicit_bzero(e, sizeof(e));
  explicit_bzero(cmd, sizeof(cmd));
  explicit_bzero(dec, sizeof(dec));
  explicit_bzero(mac, sizeof(mac));
  explicit_bzero(vcmd, sizeof(vcmd));
  explicit_bzero(blk, sizeof(blk));
  return rc;
}

/* READ BINARY (SM) of the whole EF with short id sfi in the current DF,
 * decrypted and without its padding: *plain (malloc'd, *plen bytes). */
static int sm_read(struct card__ctx *c, const struct sm *sm, int sfi,
                   const char *what, uint8_t **plain, size_t *plen) {
  uint8_t cmd[13] = {0x08, 0xB0, (uint8_t)(0x80 | sfi), 0x00, 0x00, 0x00,
                     0x04, 0x96, 0x02, 0x00, 0x00, 0x00, 0x00};
  uint8_t *p = NULL;
  size_t n = 0;
  *plain = NULL;
  *plen = 0;
  int rc = card__cmd(c, cmd, sizeof(cmd));
  if (rc)
    return rc;
  if (c->sw != 0x9000) {
    char w[64];
    snprintf(w, sizeof(w), "READ BINARY (SM) %s", what);
    return card__sw_fail(c, w);
  }
  /* 86 L 01 || encrypted data (spec §4.2.5 (4)(i)) */
  size_t pos = 0, vp, vl;
  uint32_t tag;
  char where[48];
  snprintf(where, sizeof(where), "%s (SM answer)", what);
  rc = card_tlv_next(c->rb, c->rn, &pos, &tag, &vp, &vl, where, c->err);
  if (rc)
    return rc;
  if (tag != 0x86 || vl < 9 || c->rb[vp] != 0x01 || (vl - 1) % 8)
    return card__fail(c->err, CARD_E_FORMAT,
                      "%s at byte 0: tag 86 holding 01 and whole 8-byte "
                      "blocks expected (tag %X, %zu bytes)",
                      where, (unsigned)tag, vl);
  n = vl - 1;
  p = malloc(n);
  if (!p)
    return card__fail(c->err, CARD_E_NOMEM, "out of memory");
  rc = card_tdes_cbc(sm->ks, 0, c->rb + vp + 1, n, p);
  if (rc) {
    card__fail(c->err, rc, "%s: cipher failed", what);
    goto fail;
  }
  /* padding 80 00..00 (1..8 bytes) */
  size_t end = n;
  while (end > 0 && n - end < 8 && p[end - 1] == 0x00)
    end--;
  if (end == 0 || p[end - 1] != 0x80 || n - end >= 8) {
    rc = card__fail(c->err, CARD_E_AUTH,
                    "%s: no 80 00.. padding after decryption (wrong session "
                    "key?)",
                    what);
    goto fail;
  }
  *plain = p;
  *plen = end - 1;
  return 0;
fail:
  explicit_bzero(p, n);
  free(p);
  return rc;
}

/* The value of the TLV with `want` in d[0..n), or an error. */
static int find_do(struct card__ctx *c, const uint8_t *d, size_t n,
                   uint32_t want, const char *what, size_t *vp, size_t *vl) {
  size_t pos = 0;
  uint32_t tag;
  while (pos < n) {
    int rc = card_tlv_next(d, n, &pos, &tag, vp, vl, what, c->err);
    if (rc)
      return rc;
    if (tag == want)
      return 0;
  }
  return card__fail(c->err, CARD_E_FORMAT, "%s: tag %X is missing", what,
                    (unsigned)want);
}

/* Copy an image value whole (spec 3.3.4.3/4): its NUL padding stays, as
 * a TIFF may end in zero bytes of its own (the last next-IFD offset) and
 * readers go by offsets; all zeros is no image. */
static int take_image(struct card__ctx *c, const uint8_t *v, size_t n,
                      unsigned char **out, size_t *outlen, const char *what) {
  size_t k = n;
  while (k > 0 && v[k - 1] == 0x00)
    k--;
  if (k == 0) {
    *out = NULL; /* e.g. no photo on an under-16 card (spec 3.3.5) */
    *outlen = 0;
    return 0;
  }
  *out = malloc(n);
  if (!*out)
    return card__fail(c->err, CARD_E_NOMEM, "%s: out of memory", what);
  memcpy(*out, v, n);
  *outlen = n;
  return 0;
}

int card__rc_read(struct card__ctx *c, const char *card_number,
                  struct card_result *out) {
  struct sm sm;
  char cardno[13];
  uint8_t *d = NULL;
  size_t dn = 0, vp, vl;
  int rc;
  memset(&sm, 0, sizeof(sm));
  memset(cardno, 0, sizeof(cardno));
  out->tries_left = -1; /* no counter: failures are unlimited (§4.2.2) */
  if (!card_number_ok(card_number, cardno)) {
    rc = card__fail(c->err, CARD_E_ARG,
                    "the residence card number must be 2 letters, 8 digits "
                    "and 2 letters");
    goto out;
  }
  if (!c->io->sel.kind) {
    rc = card__rc_kind(c, 1);
    if (rc)
      goto out;
  }
  const char *kind =
      c->io->sel.kind == '2' ? "特別永住者証明書" : "在留カード";
  if (!(out->card_kind = strdup(kind))) {
    rc = card__fail(c->err, CARD_E_NOMEM, "out of memory");
    goto out;
  }
  rc = authenticate(c, cardno, &sm);
  if (rc)
    goto out;

  /* DF2/EF01 住居地: D2 date (8), D3 city code (6), D4 address (320) */
  c->io->sel.app = CARD__SEL_UNKNOWN;
  rc = card__select_aid(c, DF2_AID, sizeof(DF2_AID), "DF2");
  if (rc)
    goto out;
  c->io->sel.app = CARD__SEL_RC_DF2;
  rc = sm_read(c, &sm, 1, "DF2/EF01", &d, &dn);
  if (rc)
    goto out;
  rc = find_do(c, d, dn, 0xD4, "DF2/EF01", &vp, &vl);
  if (rc)
    goto out;
  /* UTF-8, padded with NULs (and spaces) to 320 bytes */
  while (vl > 0 && (d[vp + vl - 1] == 0x00 || d[vp + vl - 1] == ' '))
    vl--;
  if (!card__utf8_ok(d + vp, vl)) {
    rc = card__fail(c->err, CARD_E_FORMAT,
                    "DF2/EF01 at byte %zu: the address (D4) is not valid "
                    "UTF-8",
                    vp);
    goto out;
  }
  if (!(out->address = card__strndup(d + vp, vl))) {
    rc = card__fail(c->err, CARD_E_NOMEM, "out of memory");
    goto out;
  }
  explicit_bzero(d, dn);
  free(d);
  d = NULL;

  /* DF1: the front face (D0, TIFF) and the photo (D1, JPEG 2000) */
  c->io->sel.app = CARD__SEL_UNKNOWN;
  rc = card__select_aid(c, DF1_AID, sizeof(DF1_AID), "DF1");
  if (rc)
    goto out;
  c->io->sel.app = CARD__SEL_RC_DF1;
  rc = sm_read(c, &sm, 5, "DF1/EF01", &d, &dn);
  if (rc)
    goto out;
  rc = find_do(c, d, dn, 0xD0, "DF1/EF01", &vp, &vl);
  if (rc)
    goto out;
  rc = take_image(c, d + vp, vl, &out->face, &out->face_len, "DF1/EF01");
  if (rc)
    goto out;
  explicit_bzero(d, dn);
  free(d);
  d = NULL;
  rc = sm_read(c, &sm, 6, "DF1/EF02", &d, &dn);
  if (rc)
    goto out;
  rc = find_do(c, d, dn, 0xD1, "DF1/EF02", &vp, &vl);
  if (rc)
    goto out;
  rc = take_image(c, d + vp, vl, &out->photo, &out->photo_len, "DF1/EF02");
out:
  if (d) {
    explicit_bzero(d, dn);
    free(d);
  }
  explicit_bzero(&sm, sizeof(sm));
  explicit_bzero(cardno, sizeof(cardno));
  return rc;
}
