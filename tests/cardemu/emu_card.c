/*
 * emu_card.c — the card side of our ID-card emulator (tests of I7).
 *
 * Written from ../shared/reference/id-cards.md and the residence card
 * spec (在留カード等仕様書 Ver1.5), not from devices/pcsc: the reader's
 * tests must be able to fail.  One struct emu_card models one card: its
 * files, the current DF/EF, the PIN and its counter, and the residence
 * card's authentication and secure messaging.
 */
#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "emu_card.h"

enum { T_MYNUMBER = 1, T_LICENSE, T_RESIDENCE };

/* Who may read an EF. */
enum {
  ACC_FREE,
  ACC_PIN,     /* after VERIFY of the card's PIN in this session */
  ACC_AUTH,    /* residence: after the card number was verified */
  ACC_AUTH_SM, /* residence: the same, and only by SM commands */
  ACC_NEVER,   /* a PIN EF: VERIFY only */
};

struct ef {
  uint16_t fid; /* 0: selectable only by short id */
  uint8_t sfi;  /* 0: none */
  int acc;
  uint8_t *data;
  size_t len;
};

#define MAX_EF 6
struct df {
  uint8_t aid[16];
  size_t aidlen; /* 0: the MF */
  struct ef ef[MAX_EF];
  int nef;
};

#define MAX_DF 4
struct emu_card {
  int type;
  struct df df[MAX_DF]; /* df[0] is the MF */
  int ndf;
  int cur_df, cur_ef; /* cur_ef -1: none */

  /* PIN (My Number 券面入力補助 / licence PIN1) */
  char pin[5];
  int tries, max_tries;
  int verified;
  int pin_df; /* the DF holding the PIN EF */
  uint16_t pin_fid;
  uint8_t pin_sfi;

  /* residence card */
  char card_number[13];
  uint8_t k[16]; /* Kenc = Kmac */
  uint8_t rnd_icc[8];
  int challenged;
  int sm;         /* session key agreed */
  uint8_t ks[16]; /* KSenc */
  int authed;     /* card number verified */
};

/* ------------------------------------------------------------ crypto */

static int cipher(const EVP_CIPHER *c, const uint8_t *key, int enc,
                  const uint8_t *in, size_t n, uint8_t *out) {
  uint8_t iv[8] = {0};
  int a = 0, b = 0, ok;
  EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
  if (!x)
    return -1;
  ok = EVP_CipherInit_ex(x, c, NULL, key, iv, enc) == 1 &&
       EVP_CIPHER_CTX_set_padding(x, 0) == 1 &&
       EVP_CipherUpdate(x, out, &a, in, (int)n) == 1 &&
       EVP_CipherFinal_ex(x, out + a, &b) == 1;
  EVP_CIPHER_CTX_free(x);
  return ok && (size_t)(a + b) == n ? 0 : -1;
}

/* 2-key TDES CBC, IV 0 */
static int tdes(const uint8_t key[16], int enc, const uint8_t *in, size_t n,
                uint8_t *out) {
  return cipher(EVP_des_ede_cbc(), key, enc, in, n, out);
}

/* Retail MAC, computed the long way: DES-CBC with K1 over every padded
 * block, then DES^-1 with K2 and DES with K1 on the result. */
static int retail_mac(const uint8_t key[16], const uint8_t *in, size_t n,
                      uint8_t out[8]) {
  size_t padded = (n / 8 + 1) * 8;
  uint8_t *buf = calloc(1, padded), *chain = malloc(padded);
  uint8_t k1[16], k2[16], t[8];
  int rc = -1;
  if (!buf || !chain)
    goto done;
  memcpy(buf, in, n);
  buf[n] = 0x80;
  memcpy(k1, key, 8);
  memcpy(k1 + 8, key, 8);
  memcpy(k2, key + 8, 8);
  memcpy(k2 + 8, key + 8, 8);
  if (cipher(EVP_des_ede_cbc(), k1, 1, buf, padded, chain) ||
      cipher(EVP_des_ede_ecb(), k2, 0, chain + padded - 8, 8, t) ||
      cipher(EVP_des_ede_ecb(), k1, 1, t, 8, out))
    goto done;
  rc = 0;
done:
  free(buf);
  free(chain);
  return rc;
}

static void sha1_16(const uint8_t *in, size_t n, uint8_t out[16]) {
  uint8_t h[EVP_MAX_MD_SIZE];
  unsigned hl = 0;
  EVP_Digest(in, n, h, &hl, EVP_sha1(), NULL);
  memcpy(out, h, 16);
}

/* ------------------------------------------------------- description */

struct desc {
  char *v[16];
  int line[16];
};

enum {
  K_TYPE, K_NAME, K_KANA, K_ADDRESS, K_BIRTH, K_SEX, K_MY_NUMBER, K_PIN,
  K_TRIES, K_PIN_SET, K_GAIJI, K_CARD_NUMBER, K_CARD_KIND, K_LICENSE_NUMBER,
  K_EXPIRY, K_N
};
static const char *const KEYS[K_N] = {
    "type",        "name",      "kana",   "address",  "birth",
    "sex",         "my_number", "pin",    "tries",    "pin_set",
    "gaiji",       "card_number", "card_kind", "license_number", "expiry"};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t')
    s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' ||
               s[n - 1] == '\n'))
    s[--n] = '\0';
  return s;
}

static int all_digits(const char *s, size_t n) {
  if (strlen(s) != n)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!isdigit((unsigned char)s[i]))
      return 0;
  return 1;
}

/* "YYYY-MM-DD" */
static int iso_date(const char *s, int *y, int *m, int *d) {
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
    return 0;
  for (int i = 0; i < 10; i++)
    if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
      return 0;
  *y = atoi(s);
  *m = atoi(s + 5);
  *d = atoi(s + 8);
  if (*m < 1 || *m > 12 || *d < 1 || *d > mdays[*m - 1])
    return 0;
  if (*m == 2 && *d == 29 && !((*y % 4 == 0 && *y % 100) || *y % 400 == 0))
    return 0;
  return *y >= 1873;
}

/* Licence era date "EYYMMDD" of an ISO date. */
static void to_era(int y, int m, int d, char out[8]) {
  long v = (long)y * 10000 + m * 100 + d;
  int e, base;
  if (v >= 20190501) e = 5, base = 2018;
  else if (v >= 19890108) e = 4, base = 1988;
  else if (v >= 19261225) e = 3, base = 1925;
  else if (v >= 19120730) e = 2, base = 1911;
  else e = 1, base = 1867;
  snprintf(out, 8, "%u%02u%02u%02u", (unsigned)e % 10u,
           (unsigned)(y - base) % 100u, (unsigned)m % 100u,
           (unsigned)d % 100u);
}

/* UTF-8 to JIS X 0208 row/cell pairs: ASCII is widened to its full-width
 * form first (cards hold no half-width text), then iconv to EUC-JP and
 * each byte & 0x7F.  *n pairs*2 bytes in a malloc'd buffer. */
static uint8_t *to_jis(const char *utf8, size_t *n) {
  size_t len = strlen(utf8);
  char *wide = malloc(len * 3 + 1), *w = wide;
  uint8_t *out = malloc(len * 2 + 2);
  iconv_t cd = iconv_open("EUC-JP", "UTF-8");
  uint8_t *res = NULL;
  if (!wide || !out || cd == (iconv_t)-1)
    goto done;
  for (const unsigned char *p = (const unsigned char *)utf8; *p; p++) {
    unsigned cp;
    if (*p == ' ')
      cp = 0x3000;
    else if (*p > 0x20 && *p < 0x7F)
      cp = 0xFF01 + (*p - 0x21);
    else {
      *w++ = (char)*p;
      continue;
    }
    *w++ = (char)(0xE0 | cp >> 12);
    *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *w++ = (char)(0x80 | (cp & 0x3F));
  }
  char *ip = wide, *op = (char *)out;
  size_t il = (size_t)(w - wide), ol = len * 2 + 2;
  if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1 || il)
    goto done;
  size_t olen = (size_t)(op - (char *)out);
  if (olen % 2)
    goto done;
  for (size_t i = 0; i < olen; i++) {
    if (out[i] < 0xA1 || out[i] > 0xFE) /* not JIS X 0208 (8E, 8F, ASCII) */
      goto done;
    out[i] &= 0x7F;
  }
  *n = olen;
  res = out;
  out = NULL;
done:
  if (cd != (iconv_t)-1)
    iconv_close(cd);
  free(wide);
  free(out);
  return res;
}

/* --------------------------------------------------------- file builder */

struct buf {
  uint8_t *p;
  size_t n, cap;
  int oom;
};

static void put(struct buf *b, const void *d, size_t n) {
  if (b->oom || n == 0)
    return;
  if (b->n + n > b->cap) {
    size_t cap = (b->n + n) * 2 + 64;
    uint8_t *q = realloc(b->p, cap);
    if (!q) {
      b->oom = 1;
      return;
    }
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->n, d, n);
  b->n += n;
}

static void put1(struct buf *b, uint8_t v) { put(b, &v, 1); }

/* tag (1 or 2 bytes) and the shortest BER length */
static void put_tl(struct buf *b, unsigned tag, size_t len) {
  if (tag > 0xFF)
    put1(b, (uint8_t)(tag >> 8));
  put1(b, (uint8_t)tag);
  if (len < 0x80) {
    put1(b, (uint8_t)len);
  } else if (len < 0x100) {
    put1(b, 0x81);
    put1(b, (uint8_t)len);
  } else {
    put1(b, 0x82);
    put1(b, (uint8_t)(len >> 8));
    put1(b, (uint8_t)len);
  }
}

static void put_tlv(struct buf *b, unsigned tag, const void *v, size_t n) {
  put_tl(b, tag, n);
  put(b, v, n);
}

static struct df *add_df(struct emu_card *c, const uint8_t *aid, size_t n) {
  struct df *d = &c->df[c->ndf++];
  if (n)
    memcpy(d->aid, aid, n);
  d->aidlen = n;
  return d;
}

/* Takes ownership of the buffer's bytes. */
static int add_ef(struct df *d, uint16_t fid, uint8_t sfi, int acc,
                  struct buf *b) {
  if (b->oom) {
    free(b->p);
    *b = (struct buf){0};
    return -1;
  }
  struct ef *e = &d->ef[d->nef++];
  e->fid = fid;
  e->sfi = sfi;
  e->acc = acc;
  e->data = b->p;
  e->len = b->n;
  *b = (struct buf){0};
  return 0;
}

static int build_mynumber(struct emu_card *c, struct desc *ds) {
  static const uint8_t aid[10] = {0xD3, 0x92, 0x10, 0x00, 0x31,
                                  0x00, 0x01, 0x01, 0x04, 0x08};
  struct buf b = {0};
  int y, m, d, rc = 0;
  add_df(c, NULL, 0); /* MF */
  struct df *ap = add_df(c, aid, sizeof(aid));
  /* EF0001: FF 10 0C <12 digits>, then 2 bytes as on the real file */
  put_tlv(&b, 0xFF10, ds->v[K_MY_NUMBER], 12);
  put(&b, "\0\0", 2);
  rc |= add_ef(ap, 0x0001, 0x01, ACC_PIN, &b);
  /* EF0002: FF20 { DF21 offsets, DF22 name, DF23 address, DF24 birth,
   * DF25 sex } with BER long lengths where needed */
  const char *name = ds->v[K_NAME], *addr = ds->v[K_ADDRESS];
  char birth[9], sex = '9';
  iso_date(ds->v[K_BIRTH], &y, &m, &d);
  snprintf(birth, sizeof(birth), "%04u%02u%02u", (unsigned)y % 10000u,
           (unsigned)m % 100u, (unsigned)d % 100u);
  if (!strcmp(ds->v[K_SEX], "male"))
    sex = '1';
  else if (!strcmp(ds->v[K_SEX], "female"))
    sex = '2';
  struct buf in = {0};
  /* header: four big-endian offsets of the TLVs within the value */
  size_t nl = strlen(name), al = strlen(addr);
  size_t o1 = 2 + 1 + 8;
  size_t o2 = o1 + 2 + (nl < 0x80 ? 1 : nl < 0x100 ? 2 : 3) + nl;
  size_t o3 = o2 + 2 + (al < 0x80 ? 1 : al < 0x100 ? 2 : 3) + al;
  size_t o4 = o3 + 2 + 1 + 8;
  uint8_t hdr[8] = {(uint8_t)(o1 >> 8), (uint8_t)o1, (uint8_t)(o2 >> 8),
                    (uint8_t)o2,        (uint8_t)(o3 >> 8), (uint8_t)o3,
                    (uint8_t)(o4 >> 8), (uint8_t)o4};
  put_tlv(&in, 0xDF21, hdr, sizeof(hdr));
  put_tlv(&in, 0xDF22, name, nl);
  put_tlv(&in, 0xDF23, addr, al);
  put_tlv(&in, 0xDF24, birth, 8);
  put_tlv(&in, 0xDF25, &sex, 1);
  if (in.oom)
    rc = -1;
  else
    put_tlv(&b, 0xFF20, in.p, in.n);
  free(in.p);
  rc |= add_ef(ap, 0x0002, 0x02, ACC_PIN, &b);
  /* EF0011: the PIN (VERIFY only) */
  rc |= add_ef(ap, 0x0011, 0x11, ACC_NEVER, &b);
  c->pin_df = 1;
  c->pin_fid = 0x0011;
  c->pin_sfi = 0x11;
  return rc;
}

static int build_license(struct emu_card *c, struct desc *ds, int gaiji) {
  static const uint8_t df1[16] = {0xA0, 0x00, 0x00, 0x02, 0x31, 0x01};
  struct buf b = {0};
  int y, m, d, rc = 0;
  struct df *mf = add_df(c, NULL, 0);
  /* MF/EF01 共通データ要素: 45 0B "008" issue(BCD 4) expiry(BCD 4)
   * 46 02 <maker> <crypto> */
  iso_date(ds->v[K_EXPIRY], &y, &m, &d);
  int iy = y - 5, im = 4, id = 1; /* issued five years before */
  uint8_t common[11] = {'0', '0', '8'};
  common[3] = (uint8_t)((iy / 1000) << 4 | (iy / 100 % 10));
  common[4] = (uint8_t)((iy / 10 % 10) << 4 | (iy % 10));
  common[5] = (uint8_t)(im / 10 << 4 | im % 10);
  common[6] = (uint8_t)(id / 10 << 4 | id % 10);
  common[7] = (uint8_t)((y / 1000) << 4 | (y / 100 % 10));
  common[8] = (uint8_t)((y / 10 % 10) << 4 | (y % 10));
  common[9] = (uint8_t)(m / 10 << 4 | m % 10);
  common[10] = (uint8_t)(d / 10 << 4 | d % 10);
  put_tlv(&b, 0x45, common, sizeof(common));
  put_tlv(&b, 0x46, "\x01\x01", 2);
  rc |= add_ef(mf, 0x2F01, 0, ACC_FREE, &b);
  /* MF/EF02 暗証番号設定: one TLV, 01 = PIN set (tag C1 assumed) */
  uint8_t set = strcmp(ds->v[K_PIN_SET], "no") ? 1 : 0;
  put_tlv(&b, 0xC1, &set, 1);
  rc |= add_ef(mf, 0x000A, 0, ACC_FREE, &b);
  rc |= add_ef(mf, 0x0001, 0x01, ACC_NEVER, &b); /* IEF01 PIN1 */
  c->pin_df = 0;
  c->pin_fid = 0x0001;
  c->pin_sfi = 0x01;
  if (!set)
    memcpy(c->pin, "****", 5);

  /* DF1/EF01 記載事項: 35 TLVs in tag order 11..33, then FF */
  struct df *d1 = add_df(c, df1, sizeof(df1));
  size_t nn = 0, kn = 0, an = 0;
  uint8_t *jname = to_jis(ds->v[K_NAME], &nn);
  uint8_t *jkana = to_jis(ds->v[K_KANA], &kn);
  uint8_t *jaddr = to_jis(ds->v[K_ADDRESS], &an);
  size_t cn = 0, con = 0, pn = 0;
  uint8_t *jcolor = to_jis("優良", &cn);
  uint8_t *jcond = to_jis("眼鏡等", &con);
  uint8_t *jpsc = to_jis("山口県公安委員会", &pn);
  if (!jname || !jkana || !jaddr || !jcolor || !jcond || !jpsc) {
    rc = -1;
    goto out;
  }
  if (gaiji > 0) { /* the Nth character is 外字1 */
    jname[(gaiji - 1) * 2] = 0xFF;
    jname[(gaiji - 1) * 2 + 1] = 0xF1;
  }
  char eb[8], ee[8], ei[8];
  int by, bm, bd;
  iso_date(ds->v[K_BIRTH], &by, &bm, &bd);
  to_era(by, bm, bd, eb);
  to_era(y, m, d, ee);
  to_era(iy, im, id, ei);
  put_tlv(&b, 0x11, "\x90", 1);
  put_tlv(&b, 0x12, jname, nn);
  put_tlv(&b, 0x13, jkana, kn);
  put_tlv(&b, 0x14, "", 0);
  put_tlv(&b, 0x15, jkana, kn);
  put_tlv(&b, 0x16, eb, 7);
  put_tlv(&b, 0x17, jaddr, an);
  put_tlv(&b, 0x18, ei, 7);
  put_tlv(&b, 0x19, "123456", 6);
  put_tlv(&b, 0x1A, jcolor, cn);
  put_tlv(&b, 0x1B, ee, 7);
  put_tlv(&b, 0x1C, jcond, con);
  put_tlv(&b, 0x1D, "", 0);
  put_tlv(&b, 0x1E, "", 0);
  put_tlv(&b, 0x1F, "", 0);
  put_tlv(&b, 0x20, jpsc, pn);
  put_tlv(&b, 0x21, ds->v[K_LICENSE_NUMBER], 12);
  for (unsigned t = 0x22; t <= 0x33; t++) /* 普通 (26) held */
    put_tlv(&b, t, t == 0x26 ? ei : "0000000", 7);
  while (b.n < 880 && !b.oom)
    put1(&b, 0xFF);
  if (b.n > 880)
    rc = -1;
  rc |= add_ef(d1, 0x0001, 0x01, ACC_PIN, &b);
out:
  free(b.p);
  free(jname);
  free(jkana);
  free(jaddr);
  free(jcolor);
  free(jcond);
  free(jpsc);
  return rc;
}

/* Synthetic images: a TIFF-like ("II*\0") and a JPEG 2000-like
 * codestream (FF 4F FF 51 ... FF D9), NUL-padded to the D0/D1 sizes. */
static void put_image(struct buf *b, unsigned tag, size_t size, int tiff,
                      uint32_t seed) {
  put_tl(b, tag, size);
  size_t start = b->n, body = tiff ? 4000 : 2000;
  if (tiff)
    put(b, "II*\0", 4);
  else
    put(b, "\xFF\x4F\xFF\x51", 4);
  uint32_t x = seed;
  while (b->n - start < body - 2 && !b->oom) {
    x = x * 1103515245u + 12345u;
    uint8_t v = (uint8_t)(x >> 16);
    put1(b, v ? v : 1);
  }
  put(b, tiff ? "\x42\x42" : "\xFF\xD9", 2);
  while (b->n - start < size && !b->oom)
    put1(b, 0x00);
}

static int build_residence(struct emu_card *c, struct desc *ds) {
  uint8_t aid[16] = {0xD3, 0x92, 0xF0, 0x00, 0x4F, 0x02};
  struct buf b = {0};
  int rc = 0;
  const char *kind = ds->v[K_CARD_KIND] ? ds->v[K_CARD_KIND] : "1";
  struct df *mf = add_df(c, NULL, 0);
  put_tlv(&b, 0xC0, "0001", 4);
  rc |= add_ef(mf, 0, 0x0B, ACC_FREE, &b);
  put_tlv(&b, 0xC1, kind, 1);
  rc |= add_ef(mf, 0, 0x0A, ACC_FREE, &b);

  struct df *d1 = add_df(c, aid, 16);
  put_image(&b, 0xD0, 7000, 1, 7);
  rc |= add_ef(d1, 0, 0x05, ACC_AUTH_SM, &b);
  put_image(&b, 0xD1, 3000, 0, 11);
  rc |= add_ef(d1, 0, 0x06, ACC_AUTH_SM, &b);

  aid[5] = 0x03;
  struct df *d2 = add_df(c, aid, 16);
  uint8_t addr[320] = {0};
  size_t al = strlen(ds->v[K_ADDRESS]);
  memcpy(addr, ds->v[K_ADDRESS], al); /* checked <= 320 at load */
  put_tlv(&b, 0xD2, "20240401", 8);
  put_tlv(&b, 0xD3, "352152", 6); /* 周南市 */
  put_tlv(&b, 0xD4, addr, sizeof(addr));
  rc |= add_ef(d2, 0, 0x01, ACC_AUTH, &b);
  if (kind[0] == '1') { /* 在留カード only */
    uint8_t z[120] = {0};
    put_tlv(&b, 0xD5, z, sizeof(z));
    rc |= add_ef(d2, 0, 0x02, ACC_AUTH, &b);
    put_tlv(&b, 0xD6, z, sizeof(z));
    rc |= add_ef(d2, 0, 0x03, ACC_AUTH, &b);
    put_tlv(&b, 0xD7, "0", 1);
    rc |= add_ef(d2, 0, 0x04, ACC_AUTH, &b);
  }

  aid[5] = 0x04;
  struct df *d3 = add_df(c, aid, 16);
  uint8_t z[1200] = {0};
  put_tlv(&b, 0xDA, z, 256);
  put_tlv(&b, 0xDB, z, 1200);
  rc |= add_ef(d3, 0, 0x02, ACC_AUTH, &b);

  memcpy(c->card_number, ds->v[K_CARD_NUMBER], 12);
  sha1_16((const uint8_t *)c->card_number, 12, c->k);
  return rc;
}

static int load_lines(FILE *f, const char *path, struct desc *ds, char *err,
                      size_t errlen) {
  char line[2048];
  int ln = 0;
  while (fgets(line, sizeof(line), f)) {
    ln++;
    if (!strchr(line, '\n') && !feof(f))
      return fail(err, errlen, "%s:%d: line longer than %zu bytes", path, ln,
                  sizeof(line) - 2);
    /* comments: ';' or '#' at the start or after a blank */
    for (char *p = line; *p; p++)
      if ((*p == ';' || *p == '#') &&
          (p == line || p[-1] == ' ' || p[-1] == '\t')) {
        *p = '\0';
        break;
      }
    char *s = trim(line);
    if (!*s)
      continue;
    char *eq = strchr(s, '=');
    if (!eq)
      return fail(err, errlen, "%s:%d: 'key = value' expected", path, ln);
    *eq = '\0';
    char *k = trim(s), *v = trim(eq + 1);
    int i;
    for (i = 0; i < K_N && strcmp(k, KEYS[i]); i++)
      ;
    if (i == K_N)
      return fail(err, errlen, "%s:%d: unknown key '%s'", path, ln, k);
    if (ds->v[i])
      return fail(err, errlen, "%s:%d: '%s' given twice (first on line %d)",
                  path, ln, k, ds->line[i]);
    if (!*v)
      return fail(err, errlen, "%s:%d: '%s' has no value", path, ln, k);
    if (!(ds->v[i] = strdup(v)))
      return fail(err, errlen, "%s:%d: out of memory", path, ln);
    ds->line[i] = ln;
  }
  if (ferror(f))
    return fail(err, errlen, "%s: %s", path, strerror(errno));
  return 0;
}

static int utf8_chars(const char *s) {
  int n = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80)
      n++;
  return n;
}

/* Values and the keys each type needs; then the files. */
static int check(struct emu_card *c, struct desc *ds, const char *path,
                 char *err, size_t errlen) {
#define NEED(k)                                                               \
  do {                                                                        \
    if (!ds->v[k])                                                            \
      return fail(err, errlen, "%s: '%s' is required for type %s", path,      \
                  KEYS[k], ds->v[K_TYPE]);                                    \
  } while (0)
#define BAD(k, why)                                                           \
  fail(err, errlen, "%s:%d: %s: %s", path, ds->line[k], KEYS[k], why)
  int y, m, d;
  if (!ds->v[K_TYPE])
    return fail(err, errlen, "%s: 'type' is required", path);
  if (!strcmp(ds->v[K_TYPE], "mynumber"))
    c->type = T_MYNUMBER;
  else if (!strcmp(ds->v[K_TYPE], "license"))
    c->type = T_LICENSE;
  else if (!strcmp(ds->v[K_TYPE], "residence"))
    c->type = T_RESIDENCE;
  else
    return BAD(K_TYPE, "mynumber, license or residence expected");
  if (ds->v[K_BIRTH] && !iso_date(ds->v[K_BIRTH], &y, &m, &d))
    return BAD(K_BIRTH, "an ISO date YYYY-MM-DD from 1873 expected");
  if (ds->v[K_EXPIRY] && !iso_date(ds->v[K_EXPIRY], &y, &m, &d))
    return BAD(K_EXPIRY, "an ISO date YYYY-MM-DD expected");
  if (ds->v[K_SEX] && strcmp(ds->v[K_SEX], "male") &&
      strcmp(ds->v[K_SEX], "female") &&
      strcmp(ds->v[K_SEX], "not_applicable"))
    return BAD(K_SEX, "male, female or not_applicable expected");
  if (ds->v[K_MY_NUMBER] && !all_digits(ds->v[K_MY_NUMBER], 12))
    return BAD(K_MY_NUMBER, "12 digits expected");
  if (ds->v[K_PIN] && !all_digits(ds->v[K_PIN], 4))
    return BAD(K_PIN, "4 digits expected");
  if (ds->v[K_LICENSE_NUMBER] && !all_digits(ds->v[K_LICENSE_NUMBER], 12))
    return BAD(K_LICENSE_NUMBER, "12 digits expected");
  c->max_tries = 3;
  c->tries = 3;
  if (ds->v[K_TRIES]) {
    char *end;
    long t = strtol(ds->v[K_TRIES], &end, 10);
    if (*end || t < 0 || t > 15)
      return BAD(K_TRIES, "a number 0..15 expected");
    c->tries = (int)t;
    if (t > c->max_tries)
      c->max_tries = (int)t;
  }
  if (!ds->v[K_PIN_SET])
    ds->v[K_PIN_SET] = strdup("yes");
  if (!ds->v[K_PIN_SET] || (strcmp(ds->v[K_PIN_SET], "yes") &&
                            strcmp(ds->v[K_PIN_SET], "no")))
    return BAD(K_PIN_SET, "yes or no expected");
  if (ds->v[K_CARD_NUMBER]) {
    const char *s = ds->v[K_CARD_NUMBER];
    int ok = strlen(s) == 12;
    for (int i = 0; ok && i < 12; i++)
      ok = (i < 2 || i >= 10) ? isupper((unsigned char)s[i])
                              : isdigit((unsigned char)s[i]) != 0;
    if (!ok)
      return BAD(K_CARD_NUMBER, "2 capital letters, 8 digits, 2 capital "
                                "letters expected");
  }
  if (ds->v[K_CARD_KIND] && strcmp(ds->v[K_CARD_KIND], "1") &&
      strcmp(ds->v[K_CARD_KIND], "2"))
    return BAD(K_CARD_KIND, "1 (在留カード) or 2 (特別永住者証明書) expected");

  int gaiji = 0;
  switch (c->type) {
  case T_MYNUMBER:
    NEED(K_NAME); NEED(K_ADDRESS); NEED(K_BIRTH); NEED(K_SEX);
    NEED(K_MY_NUMBER); NEED(K_PIN);
    memcpy(c->pin, ds->v[K_PIN], 5);
    if (build_mynumber(c, ds))
      return fail(err, errlen, "%s: out of memory", path);
    return 0;
  case T_LICENSE:
    NEED(K_NAME); NEED(K_KANA); NEED(K_ADDRESS); NEED(K_BIRTH);
    NEED(K_LICENSE_NUMBER); NEED(K_EXPIRY);
    if (strcmp(ds->v[K_PIN_SET], "no")) {
      NEED(K_PIN);
      memcpy(c->pin, ds->v[K_PIN], 5);
    }
    if (ds->v[K_GAIJI]) {
      char *end;
      long g = strtol(ds->v[K_GAIJI], &end, 10);
      if (*end || g < 1 || g > utf8_chars(ds->v[K_NAME]))
        return BAD(K_GAIJI, "a character position in the name expected");
      gaiji = (int)g;
    }
    for (int k = K_NAME; k <= K_ADDRESS; k++) {
      size_t n;
      uint8_t *j = to_jis(ds->v[k], &n);
      if (!j)
        return BAD(k, "holds a character outside JIS X 0208");
      free(j);
    }
    if (build_license(c, ds, gaiji))
      return fail(err, errlen, "%s: the licence data does not fit 880 bytes",
                  path);
    return 0;
  default:
    NEED(K_CARD_NUMBER); NEED(K_ADDRESS);
    if (strlen(ds->v[K_ADDRESS]) > 320)
      return BAD(K_ADDRESS, "longer than the 320 bytes of D4");
    if (build_residence(c, ds))
      return fail(err, errlen, "%s: out of memory", path);
    return 0;
  }
#undef NEED
#undef BAD
}

struct emu_card *emu_card_load(const char *path, char *err, size_t errlen) {
  struct desc ds;
  struct emu_card *c = NULL;
  int ok = 0;
  memset(&ds, 0, sizeof(ds));
  FILE *f = fopen(path, "r");
  if (!f) {
    fail(err, errlen, "%s: %s", path, strerror(errno));
    return NULL;
  }
  c = calloc(1, sizeof(*c));
  if (!c) {
    fail(err, errlen, "%s: out of memory", path);
    goto out;
  }
  if (load_lines(f, path, &ds, err, errlen) ||
      check(c, &ds, path, err, errlen))
    goto out;
  ok = 1;
  emu_card_reset(c);
out:
  fclose(f);
  for (int i = 0; i < K_N; i++)
    free(ds.v[i]);
  if (!ok) {
    emu_card_free(c);
    c = NULL;
  }
  return c;
}

void emu_card_free(struct emu_card *c) {
  if (!c)
    return;
  for (int i = 0; i < c->ndf; i++)
    for (int j = 0; j < c->df[i].nef; j++)
      free(c->df[i].ef[j].data);
  free(c);
}

size_t emu_card_atr(const struct emu_card *c, uint8_t *atr, size_t cap) {
  /* PC/SC part 3, ISO 14443-B: 3B 88 80 01 + ATQB app data (4) +
   * protocol info (3) + MBLI, then TCK (XOR of T0..TCK is 0) */
  uint8_t a[13] = {0x3B, 0x88, 0x80, 0x01, 0x00, 0x00, 0x00, 0x00,
                   0x00, 0x81, 0x81, 0x00, 0x00};
  a[7] = (uint8_t)(c ? c->type : 0);
  for (int i = 1; i < 12; i++)
    a[12] ^= a[i];
  if (cap < sizeof(a))
    return 0;
  memcpy(atr, a, sizeof(a));
  return sizeof(a);
}

void emu_card_reset(struct emu_card *c) {
  if (!c)
    return;
  c->cur_df = 0;
  c->cur_ef = -1;
  c->verified = 0;
  c->challenged = 0;
  c->sm = 0;
  c->authed = 0;
  memset(c->ks, 0, sizeof(c->ks));
  memset(c->rnd_icc, 0, sizeof(c->rnd_icc));
}

int emu_card_tries(const struct emu_card *c) { return c ? c->tries : -1; }

/* -------------------------------------------------------------- APDUs */

struct cmd {
  uint8_t cla, ins, p1, p2;
  const uint8_t *data;
  size_t lc;
  int has_le;
  size_t le; /* Ne: 1..65536 */
  int le_max; /* Le was 00 / 0000 */
  int ext;
};

/* ISO 7816-3 12.1.3 cases 1..4, short and extended. */
static int parse(const uint8_t *a, size_t n, struct cmd *k) {
  memset(k, 0, sizeof(*k));
  if (n < 4)
    return -1;
  k->cla = a[0];
  k->ins = a[1];
  k->p1 = a[2];
  k->p2 = a[3];
  if (n == 4)
    return 0;
  if (n == 5) {
    k->has_le = 1;
    k->le = a[4] ? a[4] : 256;
    k->le_max = !a[4];
    return 0;
  }
  if (a[4] != 0) {
    k->lc = a[4];
    k->data = a + 5;
    if (n == 5 + k->lc)
      return 0;
    if (n == 6 + k->lc) {
      k->has_le = 1;
      k->le = a[n - 1] ? a[n - 1] : 256;
      k->le_max = !a[n - 1];
      return 0;
    }
    return -1;
  }
  k->ext = 1;
  if (n == 7) {
    size_t le = (size_t)a[5] << 8 | a[6];
    k->has_le = 1;
    k->le = le ? le : 65536;
    k->le_max = !le;
    return 0;
  }
  k->lc = (size_t)a[5] << 8 | a[6];
  if (k->lc == 0)
    return -1;
  k->data = a + 7;
  if (n == 7 + k->lc)
    return 0;
  if (n == 9 + k->lc) {
    size_t le = (size_t)a[n - 2] << 8 | a[n - 1];
    k->has_le = 1;
    k->le = le ? le : 65536;
    k->le_max = !le;
    return 0;
  }
  return -1;
}

static size_t sw(uint8_t *r, uint16_t s) {
  r[0] = (uint8_t)(s >> 8);
  r[1] = (uint8_t)s;
  return 2;
}

static size_t data_sw(uint8_t *r, size_t cap, const uint8_t *d, size_t n,
                      uint16_t s) {
  if (n + 2 > cap)
    return sw(r, 0x6700);
  memcpy(r, d, n);
  return n + sw(r + n, s);
}

static struct ef *find_fid(struct df *d, uint16_t fid) {
  for (int i = 0; i < d->nef; i++)
    if (d->ef[i].fid && d->ef[i].fid == fid)
      return &d->ef[i];
  return NULL;
}

static int find_sfi(struct df *d, uint8_t sfi) {
  for (int i = 0; i < d->nef; i++)
    if (d->ef[i].sfi == sfi)
      return i;
  return -1;
}

static size_t do_select(struct emu_card *c, const struct cmd *k, uint8_t *r) {
  if (k->cla != 0x00)
    return sw(r, 0x6882);
  switch (k->p1) {
  case 0x00: /* MF: no data (licence), or 3F00 */
    if (k->p2 != 0x00 && k->p2 != 0x0C)
      return sw(r, 0x6A86);
    if (k->lc == 0 && c->type == T_RESIDENCE)
      return sw(r, 0x6700); /* its spec: Lc 02, 3F00 */
    if (k->lc && (k->lc != 2 || k->data[0] != 0x3F || k->data[1] != 0x00))
      return sw(r, 0x6A82);
    c->cur_df = 0;
    c->cur_ef = -1;
    return sw(r, 0x9000);
  case 0x04: /* DF by AID */
    if (k->p2 != 0x0C)
      return sw(r, 0x6A86);
    if (k->lc == 0)
      return sw(r, 0x6700);
    for (int i = 1; i < c->ndf; i++)
      if (c->df[i].aidlen == k->lc &&
          !memcmp(c->df[i].aid, k->data, k->lc)) {
        c->cur_df = i;
        c->cur_ef = -1;
        return sw(r, 0x9000);
      }
    return sw(r, 0x6A82);
  case 0x02: /* EF by file id under the current DF */
    if (c->type == T_RESIDENCE)
      return sw(r, 0x6A86);
    if (k->p2 != 0x0C)
      return sw(r, 0x6A86);
    if (k->lc != 2)
      return sw(r, 0x6700);
    {
      struct df *d = &c->df[c->cur_df];
      struct ef *e = find_fid(d, (uint16_t)(k->data[0] << 8 | k->data[1]));
      if (!e)
        return sw(r, 0x6A82);
      c->cur_ef = (int)(e - d->ef);
    }
    return sw(r, 0x9000);
  default:
    return sw(r, 0x6A86);
  }
}

/* VERIFY of the PIN (My Number, licence PIN1). */
static size_t do_verify_pin(struct emu_card *c, const struct cmd *k,
                            uint8_t *r) {
  if (k->cla != 0x00)
    return sw(r, 0x6882);
  if (k->p1 != 0x00)
    return sw(r, 0x6A86);
  if (k->p2 == 0x80) {
    /* the current EF must be the PIN EF */
    struct ef *pe = find_fid(&c->df[c->pin_df], c->pin_fid);
    if (c->cur_df != c->pin_df || c->cur_ef < 0 ||
        &c->df[c->cur_df].ef[c->cur_ef] != pe)
      return sw(r, 0x6986);
  } else if (k->p2 == (0x80 | c->pin_sfi)) {
    /* by short EF id, reachable from the PIN's DF and below */
    if (c->type == T_MYNUMBER && c->cur_df != c->pin_df)
      return sw(r, 0x6A82);
  } else if ((k->p2 & 0x80) && (k->p2 & 0x1F)) {
    return sw(r, 0x6A88); /* e.g. PIN2: not modelled */
  } else {
    return sw(r, 0x6A86);
  }
  if (k->lc == 0) { /* tries left, nothing spent */
    if (c->tries == 0)
      return sw(r, 0x63C0);
    if (c->verified)
      return sw(r, 0x9000);
    return sw(r, (uint16_t)(0x63C0 | c->tries));
  }
  if (c->tries == 0)
    return sw(r, 0x6984);
  if (k->lc != 4)
    return sw(r, 0x6700);
  if (!memcmp(k->data, c->pin, 4)) {
    c->verified = 1;
    c->tries = c->max_tries;
    return sw(r, 0x9000);
  }
  c->verified = 0;
  c->tries--;
  return sw(r, (uint16_t)(0x63C0 | c->tries));
}

static size_t do_get_challenge(struct emu_card *c, const struct cmd *k,
                               uint8_t *r) {
  if (k->cla != 0x00)
    return sw(r, 0x6882);
  if (k->p1 || k->p2)
    return sw(r, 0x6A86);
  if (!k->has_le || k->lc || k->le != 8)
    return sw(r, 0x6700);
  if (RAND_bytes(c->rnd_icc, 8) != 1)
    return sw(r, 0x6F00);
  c->challenged = 1;
  memcpy(r, c->rnd_icc, 8);
  return 8 + sw(r + 8, 0x9000);
}

static size_t do_mutual_auth(struct emu_card *c, const struct cmd *k,
                             uint8_t *r) {
  uint8_t mac[8], dec[32], resp[32], kicc[16], x[20];
  if (k->cla != 0x00)
    return sw(r, 0x6882);
  if (k->p1 || k->p2)
    return sw(r, 0x6A86);
  if (k->lc != 40)
    return sw(r, 0x6700);
  if (!c->challenged)
    return sw(r, 0x6985);
  c->challenged = 0; /* one answer per challenge */
  c->sm = 0;
  c->authed = 0;
  if (retail_mac(c->k, k->data, 32, mac) || memcmp(mac, k->data + 32, 8))
    return sw(r, 0x6300); /* another card number's key */
  if (tdes(c->k, 0, k->data, 32, dec))
    return sw(r, 0x6F00);
  if (memcmp(dec + 8, c->rnd_icc, 8))
    return sw(r, 0x6300);
  if (RAND_bytes(kicc, 16) != 1)
    return sw(r, 0x6F00);
  /* E_ICC = e(RND.ICC || RND.IFD || K.ICC), M_ICC */
  memcpy(resp, c->rnd_icc, 8);
  memcpy(resp + 8, dec, 8);
  memcpy(resp + 16, kicc, 16);
  if (tdes(c->k, 1, resp, 32, r) || retail_mac(c->k, r, 32, r + 32))
    return sw(r, 0x6F00);
  for (int i = 0; i < 16; i++)
    x[i] = dec[16 + i] ^ kicc[i];
  memcpy(x + 16, "\x00\x00\x00\x01", 4);
  sha1_16(x, sizeof(x), c->ks);
  c->sm = 1;
  return 40 + sw(r + 40, 0x9000);
}

static size_t do_verify_rc(struct emu_card *c, const struct cmd *k,
                           uint8_t *r) {
  uint8_t plain[16];
  if (k->cla != 0x08)
    return sw(r, 0x6982); /* SM only */
  if (k->p1 != 0x00 || k->p2 != 0x86)
    return sw(r, 0x6A86);
  if (!c->sm)
    return sw(r, 0x6982);
  if (k->lc != 19 || k->data[0] != 0x86 || k->data[1] != 0x11 ||
      k->data[2] != 0x01)
    return sw(r, 0x6988);
  if (tdes(c->ks, 0, k->data + 3, 16, plain))
    return sw(r, 0x6F00);
  if (memcmp(plain, c->card_number, 12) ||
      memcmp(plain + 12, "\x80\x00\x00\x00", 4)) {
    c->authed = 0; /* no counter: unlimited failures (spec 4.2.2) */
    return sw(r, 0x6300);
  }
  c->authed = 1;
  return sw(r, 0x9000);
}

static size_t do_read(struct emu_card *c, const struct cmd *k, uint8_t *r,
                      size_t cap) {
  int smcmd = k->cla == 0x08;
  size_t le;
  int le_max;
  if (k->cla != 0x00 && !(smcmd && c->type == T_RESIDENCE))
    return sw(r, smcmd ? 0x6882 : 0x6E00);
  if (smcmd) {
    /* data: 96 02 XX XX (the Le object); Le 00 00 */
    if (!c->sm)
      return sw(r, 0x6982);
    if (k->lc != 4 || k->data[0] != 0x96 || k->data[1] != 0x02 ||
        !k->has_le)
      return sw(r, 0x6988);
    le = (size_t)k->data[2] << 8 | k->data[3];
    le_max = le == 0;
    if (!le)
      le = 65536;
  } else {
    if (k->lc || !k->has_le)
      return sw(r, 0x6700);
    le = k->le;
    le_max = k->le_max;
  }
  struct df *d = &c->df[c->cur_df];
  size_t off;
  int idx;
  if (k->p1 & 0x80) {
    if (k->p1 & 0x60)
      return sw(r, 0x6A86);
    idx = find_sfi(d, k->p1 & 0x1F);
    if (idx < 0)
      return sw(r, 0x6A82);
    off = k->p2;
  } else {
    idx = c->cur_ef;
    if (idx < 0)
      return sw(r, 0x6986);
    off = (size_t)k->p1 << 8 | k->p2;
  }
  struct ef *e = &d->ef[idx];
  switch (e->acc) {
  case ACC_NEVER:
    return sw(r, 0x6981);
  case ACC_PIN:
    if (!c->verified)
      return sw(r, 0x6982);
    break;
  case ACC_AUTH:
    if (!c->authed)
      return sw(r, 0x6982);
    break;
  case ACC_AUTH_SM:
    if (!c->authed || !smcmd)
      return sw(r, 0x6982);
    break;
  default:
    break;
  }
  c->cur_ef = idx; /* a READ by short id makes the EF current */
  if (off >= e->len)
    return sw(r, 0x6B00);
  size_t n = e->len - off;
  if (n > le)
    n = le;
  /* fewer bytes than a definite Le: "end of file reached" (62 82);
   * the residence card reads "as much as there is" (spec 4.2.5) */
  uint16_t s = (n < le && !le_max && c->type != T_RESIDENCE) ? 0x6282
                                                             : 0x9000;
  if (!smcmd) {
    if (!k->ext && n > 256)
      n = 256;
    return data_sw(r, cap, e->data + off, n, s);
  }
  /* SM answer: 86 L 01 || e(KSenc, data || 80 00..) */
  size_t padded = (n / 8 + 1) * 8;
  uint8_t *p = calloc(1, padded);
  if (!p)
    return sw(r, 0x6F00);
  memcpy(p, e->data + off, n);
  p[n] = 0x80;
  size_t hdr = padded + 1 < 0x80 ? 2 : padded + 1 < 0x100 ? 3 : 4;
  if (hdr + 1 + padded + 2 > cap) {
    free(p);
    return sw(r, 0x6700);
  }
  r[0] = 0x86;
  size_t L = padded + 1;
  if (hdr == 2) {
    r[1] = (uint8_t)L;
  } else if (hdr == 3) {
    r[1] = 0x81;
    r[2] = (uint8_t)L;
  } else {
    r[1] = 0x82;
    r[2] = (uint8_t)(L >> 8);
    r[3] = (uint8_t)L;
  }
  r[hdr] = 0x01;
  int bad = tdes(c->ks, 1, p, padded, r + hdr + 1);
  free(p);
  if (bad)
    return sw(r, 0x6F00);
  return hdr + 1 + padded + sw(r + hdr + 1 + padded, s);
}

size_t emu_card_apdu(struct emu_card *c, const uint8_t *capdu, size_t clen,
                     uint8_t *rapdu, size_t cap) {
  struct cmd k;
  if (!c || !rapdu || cap < 2)
    return 0;
  if (!capdu || parse(capdu, clen, &k))
    return sw(rapdu, 0x6700);
  if (k.cla != 0x00 && k.cla != 0x08)
    return sw(rapdu, 0x6E00);
  switch (k.ins) {
  case 0xA4:
    return do_select(c, &k, rapdu);
  case 0x20:
    if (c->type == T_RESIDENCE)
      return do_verify_rc(c, &k, rapdu);
    return do_verify_pin(c, &k, rapdu);
  case 0xB0:
    return do_read(c, &k, rapdu, cap);
  case 0x84:
    if (c->type == T_RESIDENCE)
      return do_get_challenge(c, &k, rapdu);
    break;
  case 0x82:
    if (c->type == T_RESIDENCE)
      return do_mutual_auth(c, &k, rapdu);
    break;
  default:
    break;
  }
  return sw(rapdu, 0x6D00);
}
