/*
 * test_card.c — the ID-card reader library (devices/pcsc/card.h, I7)
 * against the card emulator's model (tests/cardemu/emu_card.h), written
 * apart from it, over an in-process transport; the residence card's
 * secure messaging against the spec's test vectors (別添2); the layouts
 * (BER-TLV, check digit, era dates, JIS X 0208).
 *
 * APDUs per read (identify + read), short APDUs; see card_*.c headers:
 *   My Number  1 + 8  = 9   (EF0002 up to 263 bytes; 313 bytes: 1 + 9)
 *   licence    4 + 6  = 10  (EF01 read in chunks of 256 until tag 21: one
 *                            chunk, or two for a long address; extended
 *                            APDUs: always one)
 *   residence  5 + 8  = 13  (4 + 8 when the card takes a bare SELECT MF)
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "card.h"
#include "emu_card.h"

#define CARDS MG_TEST_SOURCE_DIR "/tests/fixtures/cards/"

/* ---- the in-process transport ---- */

#define LOG_MAX 64
struct fake {
  struct emu_card *card;
  long fail_after; /* -1: never; else -ENODEV from this APDU on */
  unsigned sent;
  uint8_t log[LOG_MAX][8]; /* CLA INS P1 P2 Lc(short) ... of each APDU */
  size_t loglen[LOG_MAX];
  /* tamper with one answer: the n-th APDU (1-based), flip byte `at` */
  unsigned tamper_apdu;
  size_t tamper_at;
  uint8_t tamper_xor;
  int tamper_set; /* set the byte to tamper_xor instead */
};

static int fake_tx(void *ud, const uint8_t *c, size_t n, uint8_t *r,
                   size_t *rlen) {
  struct fake *f = ud;
  if (f->fail_after >= 0 && f->sent >= (unsigned long)f->fail_after)
    return -ENODEV;
  if (f->sent < LOG_MAX) {
    memcpy(f->log[f->sent], c, n < 8 ? n : 8);
    f->loglen[f->sent] = n;
  }
  f->sent++;
  size_t got = emu_card_apdu(f->card, c, n, r, *rlen);
  if (got < 2)
    return -EIO;
  if (f->tamper_apdu == f->sent && f->tamper_at < got)
    r[f->tamper_at] = f->tamper_set ? f->tamper_xor
                                    : (uint8_t)(r[f->tamper_at] ^ f->tamper_xor);
  *rlen = got;
  return 0;
}

static struct emu_card *load(const char *name) {
  char path[512], err[256];
  snprintf(path, sizeof(path), CARDS "%s", name);
  struct emu_card *c = emu_card_load(path, err, sizeof(err));
  if (!c)
    fail_msg("%s", err);
  return c;
}

static void setup(struct fake *f, struct card_io *io, const char *name) {
  memset(f, 0, sizeof(*f));
  f->card = load(name);
  f->fail_after = -1;
  memset(io, 0, sizeof(*io));
  io->ud = f;
  io->transmit = fake_tx;
}

/* VERIFY commands that carried a PIN (case 3: Lc present). */
static unsigned verifies_with_data(const struct fake *f) {
  unsigned n = 0;
  for (unsigned i = 0; i < f->sent && i < LOG_MAX; i++)
    if (f->log[i][1] == 0x20 && f->loglen[i] > 4)
      n++;
  return n;
}

/* The value of `key` in a .card file (our own small reading of it). */
static char *card_value(const char *name, const char *key) {
  char path[512], line[2048];
  snprintf(path, sizeof(path), CARDS "%s", name);
  FILE *fp = fopen(path, "r");
  if (!fp)
    fail_msg("%s: %s", path, strerror(errno));
  char *res = NULL;
  while (!res && fgets(line, sizeof(line), fp)) {
    if (line[0] == ';' || line[0] == '#')
      continue;
    char *eq = strchr(line, '=');
    if (!eq)
      continue;
    char *k = line, *ke = eq;
    while (ke > k && ke[-1] == ' ')
      ke--;
    if ((size_t)(ke - k) != strlen(key) || strncmp(k, key, strlen(key)))
      continue;
    char *v = eq + 1;
    while (*v == ' ')
      v++;
    char *sc = strstr(v, " ;");
    if (sc)
      *sc = '\0';
    size_t n = strlen(v);
    while (n && (v[n - 1] == '\n' || v[n - 1] == ' '))
      v[--n] = '\0';
    res = strdup(v);
  }
  fclose(fp);
  if (!res)
    fail_msg("%s: no %s", name, key);
  return res;
}

static void assert_value(const char *file, const char *key,
                         const char *got) {
  char *want = card_value(file, key);
  if (!got || strcmp(got, want))
    fail_msg("%s %s: read \"%s\", the file has \"%s\"", file, key,
             got ? got : "(null)", want);
  free(want);
}

/* ---- My Number card ---- */

static void test_mynumber(void **state) {
  (void)state;
  struct fake f;
  struct card_io io;
  struct card_err err;
  struct card_result r;
  int type = -1;
  setup(&f, &io, "mynumber.card");
  assert_int_equal(card_identify(&io, &type, &err), 0);
  assert_int_equal(type, CARD_MYNUMBER);
  assert_int_equal(io.apdus, 1); /* SELECT AP */
  int rc = card_read(&io, type, "1234", &r, &err);
  if (rc)
    fail_msg("%s", err.msg);
  assert_value("mynumber.card", "name", r.name);
  assert_value("mynumber.card", "address", r.address);
  assert_value("mynumber.card", "birth", r.birth_date);
  assert_value("mynumber.card", "sex", r.sex);
  assert_value("mynumber.card", "my_number", r.my_number);
  assert_int_equal(r.my_number_valid, 1);
  assert_null(r.kana);
  assert_null(r.face);
  assert_int_equal(r.tries_left, 3);
  /* SELECT EF0011, VERIFY (tries), VERIFY, SELECT EF0001, READ,
   * SELECT EF0002, READ head, READ rest */
  assert_int_equal(r.apdus, 8);
  assert_int_equal(io.apdus, 9);
  assert_int_equal(io.apdus, f.sent);
  assert_int_equal(verifies_with_data(&f), 1);
  card_result_free(&r);
  assert_null(r.name);

  /* without card_identify the read selects the AP itself: one more */
  struct card_io io2 = {.ud = &f, .transmit = fake_tx};
  emu_card_reset(f.card);
  assert_int_equal(card_read(&io2, CARD_MYNUMBER, "1234", &r, &err), 0);
  assert_int_equal(r.apdus, 9);
  assert_value("mynumber.card", "name", r.name);
  card_result_free(&r);

  /* a second read on the same connection repeats no SELECT of the AP */
  assert_int_equal(card_read(&io2, CARD_MYNUMBER, "1234", &r, &err), 0);
  assert_int_equal(r.apdus, 8);
  card_result_free(&r);
  emu_card_free(f.card);
}

static void test_mynumber_long(void **state) {
  (void)state;
  struct fake f;
  struct card_io io;
  struct card_err err;
  struct card_result r;
  int type;
  setup(&f, &io, "mynumber_long.card");

  /* the card really holds long BER lengths (raw look at EF0002) */
  uint8_t rb[65538];
  static const uint8_t sel_ap[] = {0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92,
                                   0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04,
                                   0x08};
  static const uint8_t sel_pin[] = {0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x11};
  static const uint8_t verify[] = {0x00, 0x20, 0x00, 0x80, 0x04,
                                   '0',  '4',  '2',  '0'};
  static const uint8_t sel_ef2[] = {0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x02};
  static const uint8_t rd[] = {0x00, 0xB0, 0x00, 0x00, 0x00, 0x01, 0x39};
  assert_int_equal(emu_card_apdu(f.card, sel_ap, sizeof(sel_ap), rb, 65538),
                   2);
  emu_card_apdu(f.card, sel_pin, sizeof(sel_pin), rb, 65538);
  emu_card_apdu(f.card, verify, sizeof(verify), rb, 65538);
  assert_int_equal(rb[0] << 8 | rb[1], 0x9000);
  emu_card_apdu(f.card, sel_ef2, sizeof(sel_ef2), rb, 65538);
  size_t n = emu_card_apdu(f.card, rd, sizeof(rd), rb, 65538);
  assert_int_equal(n, 313 + 2);
  assert_memory_equal(rb, "\xFF\x20\x82\x01\x34", 5);
  emu_card_reset(f.card);

  assert_int_equal(card_identify(&io, &type, &err), 0);
  assert_int_equal(card_read(&io, type, "0420", &r, &err), 0);
  assert_value("mynumber_long.card", "name", r.name);
  assert_value("mynumber_long.card", "address", r.address);
  assert_value("mynumber_long.card", "birth", r.birth_date);
  assert_value("mynumber_long.card", "sex", r.sex);
  assert_value("mynumber_long.card", "my_number", r.my_number);
  assert_int_equal(r.my_number_valid, 1);
  /* 313 bytes: head 7, then 256 + 50 in short READs */
  assert_int_equal(r.apdus, 9);
  card_result_free(&r);

  /* extended APDUs: the rest in one READ */
  emu_card_reset(f.card);
  struct card_io io2 = {.ud = &f, .transmit = fake_tx, .extended = 1};
  assert_int_equal(card_identify(&io2, &type, &err), 0);
  assert_int_equal(card_read(&io2, type, "0420", &r, &err), 0);
  assert_int_equal(r.apdus, 8);
  assert_value("mynumber_long.card", "address", r.address);
  card_result_free(&r);
  emu_card_free(f.card);
}

static void test_wrong_pin(void **state) {
  (void)state;
  struct fake f;
  struct card_io io;
  struct card_err err;
  struct card_result r;
  int type, tries = -9, pin_set = -9;
  setup(&f, &io, "mynumber.card");
  assert_int_equal(card_identify(&io, &type, &err), 0);
  assert_int_equal(card_tries_left(&io, type, &tries, &pin_set, &err), 0);
  assert_int_equal(tries, 3);
  assert_int_equal(pin_set, 1);
  assert_int_equal(emu_card_tries(f.card), 3); /* asking spent nothing */
  unsigned before = f.sent;
  assert_int_equal(card_read(&io, type, "9999", &r, &err), CARD_E_PIN);
  assert_int_equal(emu_card_tries(f.card), 2); /* exactly one try */
  assert_int_equal(r.tries_left, 2);
  assert_non_null(strstr(err.msg, "2 tries left"));
  assert_null(strstr(err.msg, "9999")); /* the PIN is never told */
  assert_null(r.name);
  assert_int_equal(r.my_number[0], '\0');
  /* never retried: one VERIFY with data, and the read stopped there */
  assert_int_equal(verifies_with_data(&f), 1);
  assert_int_equal(f.sent - before, r.apdus);
  assert_int_equal(f.log[f.sent - 1][1], 0x20);
  card_result_free(&r);
  assert_string_equal(card_error_code(CARD_E_PIN), "wrong_pin");

  /* the right PIN reads, and the counter is back at its maximum */
  assert_int_equal(card_read(&io, type, "1234", &r, &err), 0);
  assert_int_equal(emu_card_tries(f.card), 3);
  assert_int_equal(r.tries_left, 3);
  card_result_free(&r);

  /* not 4 digits: refused before any APDU */
  before = f.sent;
  assert_int_equal(card_read(&io, type, "12a4", &r, &err), CARD_E_ARG);
  assert_int_equal(card_read(&io, type, "12345", &r, &err), CARD_E_ARG);
  assert_int_equal(card_read(&io, type, NULL, &r, &err), CARD_E_ARG);
  assert_int_equal(f.sent, before);
  card_result_free(&r);

  /* the last try: 1 left, wrong again gives 0 and CARD_E_PIN; the next
   * read is CARD_E_BLOCKED without a VERIFY */
  emu_card_reset(f.card);
  memset(&io.sel, 0, sizeof(io.sel));
  assert_int_equal(card_read(&io, type, "0000", &r, &err), CARD_E_PIN);
  assert_int_equal(card_read(&io, type, "0000", &r, &err), CARD_E_PIN);
  assert_int_equal(r.tries_left, 1);
  assert_int_equal(card_read(&io, type, "0000", &r, &err), CARD_E_PIN);
  assert_int_equal(r.tries_left, 0);
  assert_int_equal(emu_card_tries(f.card), 0);
  unsigned v = verifies_with_data(&f);
  assert_int_equal(card_read(&io, type, "1234", &r, &err), CARD_E_BLOCKED);
  assert_int_equal(verifies_with_data(&f), v);
  card_result_free(&r);
  emu_card_free(f.card);
}

static void test_blocked(void **state) {
  (void)state;
  static const char *files[] = {"mynumber_blocked.card",
                                "license_blocked.card"};
  static const char *pins[] = {"1111", "9876"};
  for (int i = 0; i < 2; i++) {
    struct fake f;
    struct card_io io;
    struct card_err err;
    struct card_result r;
    int type, tries = -9, pin_set;
    setup(&f, &io, files[i]);
    assert_int_equal(card_identify(&io, &type, &err), 0);
    assert_int_equal(type, i ? CARD_LICENSE : CARD_MYNUMBER);
    assert_int_equal(card_tries_left(&io, type, &tries, &pin_set, &err), 0);
    assert_int_equal(tries, 0);
    assert_int_equal(card_read(&io, type, pins[i], &r, &err),
                     CARD_E_BLOCKED);
    assert_int_equal(r.tries_left, 0);
    assert_string_equal(card_error_code(CARD_E_BLOCKED), "blocked");
    /* no VERIFY with a PIN ever left (a blocked card answers 69 84) */
    assert_int_equal(verifies_with_data(&f), 0);
    assert_int_equal(emu_card_tries(f.card), 0);
    assert_null(r.name);
    card_result_free(&r);
    emu_card_free(f.card);
  }
}

/* ---- licence ---- */

static void test_license(void **state) {
  (void)state;
  struct fake f;
  struct card_io io;
  struct card_err err;
  struct card_result r;
  int type;
  setup(&f, &io, "license.card");
  assert_int_equal(card_identify(&io, &type, &err), 0);
  assert_int_equal(type, CARD_LICENSE);
  /* SELECT AP (refused), SELECT MF, SELECT EF 2F01, READ 17 */
  assert_int_equal(io.apdus, 4);
  int rc = card_read(&io, type, "4321", &r, &err);
  if (rc)
    fail_msg("%s", err.msg);
  assert_value("license.card", "name", r.name);
  assert_value("license.card", "kana", r.kana);
  assert_value("license.card", "address", r.address);
  assert_value("license.card", "birth", r.birth_date);
  assert_value("license.card", "expiry", r.expiry);
  assert_value("license.card", "license_number", r.license_number);
  assert_null(r.sex);
  assert_int_equal(r.my_number[0], '\0');
  assert_int_equal(r.gaiji, 0);
  assert_int_equal(r.tries_left, 3);
  /* SELECT 000A, READ 3, VERIFY (tries), VERIFY, SELECT DF1, READ:
   * tag 21 ends at byte 170 of EF01 */
  assert_int_equal(r.apdus, 6);
  assert_int_equal(verifies_with_data(&f), 1);
  card_result_free(&r);

  /* extended APDUs: EF01 in one READ */
  emu_card_reset(f.card);
  struct card_io io2 = {.ud = &f, .transmit = fake_tx, .extended = 1};
  assert_int_equal(card_identify(&io2, &type, &err), 0);
  assert_int_equal(card_read(&io2, type, "4321", &r, &err), 0);
  assert_int_equal(r.apdus, 6);
  assert_value("license.card", "license_number", r.license_number);
  card_result_free(&r);

  /* a wrong PIN1 costs one try, reported */
  assert_int_equal(card_read(&io2, type, "1234", &r, &err), CARD_E_PIN);
  assert_int_equal(r.tries_left, 2);
  assert_int_equal(emu_card_tries(f.card), 2);
  card_result_free(&r);
  /* a PIN is set: no PIN given is refused before any VERIFY */
  unsigned v = verifies_with_data(&f);
  assert_int_equal(card_read(&io2, type, NULL, &r, &err), CARD_E_ARG);
  assert_int_equal(card_read(&io2, type, "", &r, &err), CARD_E_ARG);
  assert_int_equal(verifies_with_data(&f), v);
  card_result_free(&r);
  emu_card_free(f.card);
}

static void test_license_gaiji(void **state) {
  (void)state;
  struct fake f;
  struct card_io io;
  struct card_err err;
  struct card_result r;
  int type;
  setup(&f, &io, "license_gaiji.card");
  assert_int_equal(card_identify(&io, &type, &err), 0);
  assert_int_equal(card_read(&io, type, "2468", &r, &err), 0);
  /* the file's 高橋 with its 1st character replaced by 外字1 */
  char *name = card_value("license_gaiji.card", "name");
  assert_string_equal(name, "高橋　次郎");
  assert_string_equal(r.name, "【外字1】橋　次郎");
  free(name);
  assert_int_equal(r.gaiji, 1);
  assert_value("license_gaiji.card", "kana", r.kana);
  assert_value("license_gaiji.card", "address", r.address);
  assert_value("license_gaiji.card", "birth", r.birth_date); /* 平成元年 */
  assert_value("license_gaiji.card", "license_number", r.license_number);
  /* the long address puts tag 21 past byte 256: two short READs */
  assert_int_equal(r.apdus, 7);
  card_result_free(&r);
  emu_card_free(f.card);
}

static void test_license_nopin(void **state) {
  (void)state;
  struct fake f;
  struct card_io io;
  struct card_err err;
  struct card_result r;
  int type, tries = -9, pin_set = -9;
  setup(&f, &io, "license_nopin.card");
  assert_int_equal(card_identify(&io, &type, &err), 0);
  assert_int_equal(card_tries_left(&io, type, &tries, &pin_set, &err), 0);
  assert_int_equal(pin_set, 0);
  assert_int_equal(tries, -1);
  assert_int_equal(card_read(&io, type, NULL, &r, &err), 0);
  assert_value("license_nopin.card", "name", r.name);
  assert_value("license_nopin.card", "address", r.address);
  assert_value("license_nopin.card", "birth", r.birth_date);
  assert_int_equal(r.tries_left, -1);
  card_result_free(&r);
  /* the VERIFY carried "****" */
  int found = 0;
  for (unsigned i = 0; i < f.sent; i++)
    if (f.log[i][1] == 0x20 && f.loglen[i] == 9)
      found = 1;
  assert_true(found);
  /* a PIN typed anyway is ignored: still "****" */
  assert_int_equal(card_read(&io, type, "1234", &r, &err), 0);
  assert_int_equal(emu_card_tries(f.card), 3);
  card_result_free(&r);
  emu_card_free(f.card);
}

/* ---- residence card ---- */

static void test_residence(void **state) {
  (void)state;
  struct fake f;
  struct card_io io;
  struct card_err err;
  struct card_result r;
  int type, tries = -9, pin_set;
  setup(&f, &io, "residence.card");
  assert_int_equal(card_identify(&io, &type, &err), 0);
  assert_int_equal(type, CARD_RESIDENCE);
  /* SELECT AP, SELECT MF (bare: 67 00), SELECT EF 2F01 (6A 86),
   * SELECT MF 3F00, READ MF/EF02 */
  assert_int_equal(io.apdus, 5);
  assert_int_equal(card_tries_left(&io, type, &tries, &pin_set, &err), 0);
  assert_int_equal(tries, -1);
  assert_int_equal(io.apdus, 5);

  /* a wrong card number: refused, and tries stay unlimited */
  assert_int_equal(card_read(&io, type, "AA12345678BC", &r, &err),
                   CARD_E_PIN);
  assert_int_equal(r.tries_left, -1);
  assert_null(r.address);
  assert_null(r.face);
  assert_null(strstr(err.msg, "AA12345678")); /* not told */
  card_result_free(&r);
  /* ill-formed: refused before any APDU */
  unsigned before = f.sent;
  assert_int_equal(card_read(&io, type, "AA1234", &r, &err), CARD_E_ARG);
  assert_int_equal(card_read(&io, type, "1A12345678BB", &r, &err),
                   CARD_E_ARG);
  assert_int_equal(f.sent, before);
  card_result_free(&r);

  /* the right one (letters in any case) */
  emu_card_reset(f.card);
  memset(&io.sel, 0, sizeof(io.sel));
  assert_int_equal(card_identify(&io, &type, &err), 0);
  int rc = card_read(&io, type, "aa12345678bb", &r, &err);
  if (rc)
    fail_msg("%s", err.msg);
  assert_value("residence.card", "address", r.address);
  assert_string_equal(r.card_kind, "在留カード");
  assert_null(r.name); /* only in the image */
  assert_null(r.birth_date);
  assert_null(r.sex);
  assert_int_equal(r.tries_left, -1);
  /* GET CHALLENGE, MUTUAL AUTH, VERIFY, SELECT DF2, READ, SELECT DF1,
   * READ, READ */
  assert_int_equal(r.apdus, 8);
  assert_non_null(r.face);
  assert_int_equal(r.face_len, 7000); /* the whole D0 value */
  assert_memory_equal(r.face, "II*\0", 4);
  assert_non_null(r.photo);
  assert_int_equal(r.photo_len, 3000);
  assert_memory_equal(r.photo, "\xFF\x4F\xFF\x51", 4);
  card_result_free(&r);
  assert_null(r.face);
  emu_card_free(f.card);

  setup(&f, &io, "residence_special.card");
  assert_int_equal(card_identify(&io, &type, &err), 0);
  assert_int_equal(card_read(&io, type, "AB98765432CD", &r, &err), 0);
  assert_string_equal(r.card_kind, "特別永住者証明書");
  assert_value("residence_special.card", "address", r.address);
  card_result_free(&r);
  emu_card_free(f.card);
}

static void hex(const char *s, uint8_t *out, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    if (sscanf(s + 2 * i, "%2x", &v) != 1)
      fail_msg("bad hex %s", s);
    out[i] = (uint8_t)v;
  }
}

/* 在留カード等仕様書 別添2: every step of the example */
static void test_rc_vectors(void **state) {
  (void)state;
  uint8_t k[16], want[40], in[32], out[32], mac[8], ks[16];
  card_rc_key("AA12345678BB", k);
  hex("6522B4E171195BB218223A976C040111", want, 16);
  assert_memory_equal(k, want, 16);
  /* E_IFD = e(Kenc, RND.IFD || RND.ICC || K.IFD) */
  hex("1122334455667788" "5A6E7E385162B7A3"
      "404142434445464748494A4B4C4D4E4F", in, 32);
  assert_int_equal(card_tdes_cbc(k, 1, in, 32, out), 0);
  hex("937745C20883A1BAD1E04193722A1592"
      "378F81A8F1DC589157AEB0F7544FA1BA", want, 32);
  assert_memory_equal(out, want, 32);
  assert_int_equal(card_retail_mac(k, out, 32, mac), 0);
  hex("1AD7FB6A3389E017", want, 8);
  assert_memory_equal(mac, want, 8);
  /* the card's answer: M_ICC checks, E_ICC decrypts to its nonces */
  uint8_t eicc[32];
  hex("5860775B4D032CC564BA204B8EA868F6"
      "94A74E7475A8FEF240588BDA1AF496CE", eicc, 32);
  assert_int_equal(card_retail_mac(k, eicc, 32, mac), 0);
  hex("59388FD6CD45248B", want, 8);
  assert_memory_equal(mac, want, 8);
  assert_int_equal(card_tdes_cbc(k, 0, eicc, 32, out), 0);
  hex("5A6E7E385162B7A31122334455667788"
      "19D049490FFF52EEDBFCB930BC810ED0", want, 32);
  assert_memory_equal(out, want, 32);
  /* KSenc from K.IFD and K.ICC */
  card_rc_session_key(in + 16, out + 16, ks);
  hex("CE94938E19E3B97DF96EABCEDC1715CC", want, 16);
  assert_memory_equal(ks, want, 16);
  /* the encrypted card number of the VERIFY */
  memcpy(in, "AA12345678BB\x80\x00\x00\x00", 16);
  assert_int_equal(card_tdes_cbc(ks, 1, in, 16, out), 0);
  hex("1AA82973DB959A811F9711D728F0EEF6", want, 16);
  assert_memory_equal(out, want, 16);
  /* and back */
  assert_int_equal(card_tdes_cbc(ks, 0, out, 16, in), 0);
  assert_memory_equal(in, "AA12345678BB\x80\x00\x00\x00", 16);
  /* not a multiple of 8 */
  assert_int_not_equal(card_tdes_cbc(ks, 1, in, 15, out), 0);
  /* MAC of a length that is not a multiple of 8 differs per byte */
  uint8_t m1[8], m2[8];
  assert_int_equal(card_retail_mac(k, in, 5, m1), 0);
  in[4] ^= 1;
  assert_int_equal(card_retail_mac(k, in, 5, m2), 0);
  assert_memory_not_equal(m1, m2, 8);
}

static uint16_t apdu(struct emu_card *c, const uint8_t *a, size_t n,
                     uint8_t *r, size_t *rn) {
  size_t got = emu_card_apdu(c, a, n, r, 65538);
  assert_true(got >= 2);
  if (rn)
    *rn = got - 2;
  return (uint16_t)(r[got - 2] << 8 | r[got - 1]);
}

/* The card side by hand, with the reader's crypto: VERIFY 63 00 for a
 * wrong number inside a good session, SM-only access to DF1. */
static void test_rc_emulator_sm(void **state) {
  (void)state;
  struct emu_card *c = load("residence.card");
  static uint8_t r[65538];
  size_t rn;
  uint8_t k[16], blk[40], ks[16], kifd[16], mac[8];
  card_rc_key("AA12345678BB", k);
  assert_int_equal(apdu(c, (const uint8_t *)"\x00\x84\x00\x00\x08", 5, r,
                        &rn), 0x9000);
  assert_int_equal(rn, 8);
  uint8_t plain[32];
  memcpy(plain, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
  memcpy(plain + 8, r, 8);
  memset(kifd, 0x5A, 16);
  memcpy(plain + 16, kifd, 16);
  uint8_t ma[46] = {0x00, 0x82, 0x00, 0x00, 0x28};
  card_tdes_cbc(k, 1, plain, 32, ma + 5);
  card_retail_mac(k, ma + 5, 32, ma + 37);
  /* MUTUAL AUTHENTICATE without a fresh challenge is refused */
  assert_int_equal(apdu(c, ma, sizeof(ma), r, &rn), 0x9000);
  assert_int_equal(rn, 40);
  assert_int_equal(apdu(c, ma, sizeof(ma), blk, NULL), 0x6985);
  card_retail_mac(k, r, 32, mac);
  assert_memory_equal(mac, r + 32, 8);
  card_tdes_cbc(k, 0, r, 32, blk);
  assert_memory_equal(blk + 8, plain, 8); /* RND.IFD back */
  card_rc_session_key(kifd, blk + 16, ks);
  /* plain reads before authentication: security status */
  uint8_t sel_df1[21] = {0x00, 0xA4, 0x04, 0x0C, 0x10, 0xD3, 0x92, 0xF0,
                         0x00, 0x4F, 0x02};
  static const uint8_t rd_sm[13] = {0x08, 0xB0, 0x85, 0x00, 0x00, 0x00, 0x04,
                                    0x96, 0x02, 0x00, 0x00, 0x00, 0x00};
  /* VERIFY of another number under the right session key: 63 00 */
  uint8_t v[24] = {0x08, 0x20, 0x00, 0x86, 0x13, 0x86, 0x11, 0x01};
  memcpy(blk, "AA12345678BC\x80\x00\x00\x00", 16);
  card_tdes_cbc(ks, 1, blk, 16, v + 8);
  assert_int_equal(apdu(c, v, sizeof(v), r, NULL), 0x6300);
  assert_int_equal(apdu(c, sel_df1, sizeof(sel_df1), r, NULL), 0x9000);
  assert_int_equal(apdu(c, rd_sm, sizeof(rd_sm), r, NULL), 0x6982);
  /* the right number: 90 00, then DF1 only through SM */
  memcpy(blk, "AA12345678BB\x80\x00\x00\x00", 16);
  card_tdes_cbc(ks, 1, blk, 16, v + 8);
  assert_int_equal(apdu(c, v, sizeof(v), r, NULL), 0x9000);
  static const uint8_t rd_plain[7] = {0x00, 0xB0, 0x85, 0x00,
                                      0x00, 0x00, 0x00};
  assert_int_equal(apdu(c, rd_plain, sizeof(rd_plain), r, NULL), 0x6982);
  assert_int_equal(apdu(c, rd_sm, sizeof(rd_sm), r, &rn), 0x9000);
  /* 86 82 1B 61 01 <7008> as the spec's example */
  assert_int_equal(rn, 5 + 7008);
  assert_memory_equal(r, "\x86\x82\x1B\x61\x01", 5);
  static uint8_t d[7008];
  card_tdes_cbc(ks, 0, r + 5, 7008, d);
  assert_memory_equal(d, "\xD0\x82\x1B\x58", 4);
  assert_memory_equal(d + 7004, "\x80\x00\x00\x00", 4);
  /* plain VERIFY is refused (SM only); reset clears the session */
  v[0] = 0x00;
  assert_int_equal(apdu(c, v, sizeof(v), r, NULL), 0x6982);
  emu_card_reset(c);
  assert_int_equal(apdu(c, sel_df1, sizeof(sel_df1), r, NULL), 0x9000);
  assert_int_equal(apdu(c, rd_sm, sizeof(rd_sm), r, NULL), 0x6982);
  emu_card_free(c);
}

/* A card whose MAC does not check (one bit of M_ICC flipped on the way)
 * fails the authentication; so does a broken EF0002 length. */
static void test_tampered(void **state) {
  (void)state;
  struct fake f;
  struct card_io io;
  struct card_err err;
  struct card_result r;
  int type;
  setup(&f, &io, "residence.card");
  assert_int_equal(card_identify(&io, &type, &err), 0);
  f.tamper_apdu = f.sent + 2; /* the MUTUAL AUTHENTICATE answer */
  f.tamper_at = 35;
  f.tamper_xor = 0x01;
  assert_int_equal(card_read(&io, type, "AA12345678BB", &r, &err),
                   CARD_E_AUTH);
  assert_non_null(strstr(err.msg, "M_ICC"));
  card_result_free(&r);
  emu_card_free(f.card);

  setup(&f, &io, "mynumber.card");
  assert_int_equal(card_identify(&io, &type, &err), 0);
  f.tamper_apdu = f.sent + 7; /* READ EF0002 head: its length byte 84 */
  f.tamper_at = 2;
  f.tamper_xor = 0x84;
  f.tamper_set = 1;
  assert_int_equal(card_read(&io, type, "1234", &r, &err), CARD_E_FORMAT);
  assert_non_null(strstr(err.msg, "EF0002 at byte 2"));
  assert_non_null(strstr(err.msg, "longer than 3 bytes"));
  assert_null(r.name);
  card_result_free(&r);
  emu_card_free(f.card);
}

/* Removal after N APDUs, for every N of a whole identify + read. */
static void test_removal(void **state) {
  (void)state;
  static const struct {
    const char *file, *secret;
    unsigned total;
  } cases[] = {
      {"mynumber.card", "1234", 9},
      {"license.card", "4321", 10},
      {"license_gaiji.card", "2468", 11},
      {"residence.card", "AA12345678BB", 13},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    for (unsigned n = 0; n <= cases[i].total; n++) {
      struct fake f;
      struct card_io io;
      struct card_err err;
      struct card_result r;
      int type = -1;
      setup(&f, &io, cases[i].file);
      int tries0 = emu_card_tries(f.card);
      f.fail_after = n;
      int rc = card_identify(&io, &type, &err);
      if (rc == 0) {
        rc = card_read(&io, type, cases[i].secret, &r, &err);
        if (rc) {
          assert_null(r.name);
          assert_null(r.address);
          assert_null(r.face);
          assert_null(r.photo);
        }
        card_result_free(&r);
      }
      if (n < cases[i].total) {
        if (rc != CARD_E_REMOVED)
          fail_msg("%s, removed after %u APDUs: %d (%s)", cases[i].file, n,
                   rc, err.msg);
        assert_non_null(strstr(err.msg, "removed"));
        assert_int_equal(io.sel.app, 0); /* state forgotten */
      } else {
        if (rc)
          fail_msg("%s: %s", cases[i].file, err.msg);
      }
      /* the tries are intact whatever the moment */
      assert_int_equal(emu_card_tries(f.card), tries0);
      emu_card_free(f.card);
    }
  }
}

/* A card none of the three answers: unknown, naming the status words. */
static int blank_tx(void *ud, const uint8_t *c, size_t n, uint8_t *r,
                    size_t *rlen) {
  (void)c;
  (void)n;
  (*(unsigned *)ud)++;
  r[0] = 0x6A;
  r[1] = 0x82;
  *rlen = 2;
  return 0;
}

static int eio_tx(void *ud, const uint8_t *c, size_t n, uint8_t *r,
                  size_t *rlen) {
  (void)ud;
  (void)c;
  (void)n;
  (void)r;
  (void)rlen;
  return -EIO;
}

static void test_identify_unknown(void **state) {
  (void)state;
  unsigned calls = 0;
  struct card_io io = {.ud = &calls, .transmit = blank_tx};
  struct card_err err;
  int type = -1;
  assert_int_equal(card_identify(&io, &type, &err), CARD_E_UNKNOWN);
  assert_int_equal(type, CARD_UNKNOWN);
  assert_non_null(strstr(err.msg, "6A82"));
  assert_int_equal(calls, io.apdus);
  struct card_io io2 = {.transmit = eio_tx};
  assert_int_equal(card_identify(&io2, &type, &err), CARD_E_IO);
  assert_string_equal(card_type_name(CARD_MYNUMBER), "mynumber");
  assert_string_equal(card_type_name(CARD_LICENSE), "license");
  assert_string_equal(card_type_name(CARD_RESIDENCE), "residence");
  assert_string_equal(card_type_name(42), "unknown");
  assert_string_equal(card_error_code(CARD_E_REMOVED), "removed");
  struct card_result r;
  assert_int_equal(card_read(&io, 42, "1234", &r, &err), CARD_E_ARG);
  card_result_free(&r);
  card_result_free(NULL);
}

/* 61 xx: the rest is fetched with GET RESPONSE, each APDU counted. */
static int chained_tx(void *ud, const uint8_t *c, size_t n, uint8_t *r,
                      size_t *rlen) {
  unsigned *calls = ud;
  (*calls)++;
  if (c[1] == 0xC0) { /* GET RESPONSE, Le 3 */
    if (n != 5 || c[4] != 3)
      return -EIO;
    memcpy(r, "\xAA\xBB\xCC\x90\x00", 5);
    *rlen = 5;
  } else if (c[1] == 0xCA) {
    r[0] = 0x90; /* one byte: no status word */
    *rlen = 1;
  } else {
    memcpy(r, "\x11\x61\x03", 3);
    *rlen = 3;
  }
  return 0;
}

static void test_transmit(void **state) {
  (void)state;
  unsigned calls = 0;
  struct card_io io = {.ud = &calls, .transmit = chained_tx};
  struct card_err err;
  uint8_t r[CARD_RAPDU_MAX];
  size_t rn = sizeof(r);
  uint16_t sw = 0;
  assert_int_equal(card_transmit(&io, (const uint8_t *)"\x00\xB0\x00\x00",
                                 4, r, &rn, &sw, &err), 0);
  assert_int_equal(sw, 0x9000);
  assert_int_equal(rn, 4);
  assert_memory_equal(r, "\x11\xAA\xBB\xCC", 4);
  assert_int_equal(io.apdus, 2);
  assert_int_equal(calls, 2);
  rn = sizeof(r);
  assert_int_equal(card_transmit(&io, (const uint8_t *)"\x00\xCA\x00\x00",
                                 4, r, &rn, &sw, &err), CARD_E_IO);
  assert_non_null(strstr(err.msg, "no status word"));
  rn = 1; /* no room for a status word */
  assert_int_equal(card_transmit(&io, (const uint8_t *)"\x00\xCA\x00\x00",
                                 4, r, &rn, &sw, &err), CARD_E_ARG);
}

/* ---- the emulator's answers to what it does not do ---- */

static void test_emulator_errors(void **state) {
  (void)state;
  struct emu_card *c = load("mynumber.card");
  static uint8_t r[65538];
  assert_int_equal(apdu(c, (const uint8_t *)"\x00\xCA\x00\x00\x00", 5, r,
                        NULL), 0x6D00);
  assert_int_equal(apdu(c, (const uint8_t *)"\x00\xA4\x07\x0C\x02\x00\x01",
                        7, r, NULL), 0x6A86);
  static const uint8_t sel_ap[] = {0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92,
                                   0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04,
                                   0x08};
  assert_int_equal(apdu(c, sel_ap, sizeof(sel_ap), r, NULL), 0x9000);
  assert_int_equal(apdu(c, (const uint8_t *)"\x00\xA4\x02\x0C\x02\x00\x09",
                        7, r, NULL), 0x6A82);
  assert_int_equal(apdu(c, (const uint8_t *)"\x00\xA4\x02\x0C\x02\x00\x01",
                        7, r, NULL), 0x9000);
  assert_int_equal(apdu(c, (const uint8_t *)"\x00\xB0\x00\x00\x0F", 5, r,
                        NULL), 0x6982);
  assert_int_equal(apdu(c, (const uint8_t *)"\x00\xB0\x00", 3, r, NULL),
                   0x6700);
  assert_int_equal(apdu(c, (const uint8_t *)"\x80\xB0\x00\x00\x0F", 5, r,
                        NULL), 0x6E00);
  /* after the PIN: offsets, end of file (62 82), outside (6B 00) */
  apdu(c, (const uint8_t *)"\x00\xA4\x02\x0C\x02\x00\x11", 7, r, NULL);
  assert_int_equal(apdu(c, (const uint8_t *)"\x00\x20\x00\x80\x04""1234",
                        9, r, NULL), 0x9000);
  apdu(c, (const uint8_t *)"\x00\xA4\x02\x0C\x02\x00\x01", 7, r, NULL);
  size_t rn;
  assert_int_equal(apdu(c, (const uint8_t *)"\x00\xB0\x00\x03\x0C", 5, r,
                        &rn), 0x9000);
  assert_int_equal(rn, 12);
  assert_memory_equal(r, "123456789018", 12);
  assert_int_equal(apdu(c, (const uint8_t *)"\x00\xB0\x00\x0F\x10", 5, r,
                        &rn), 0x6282);
  assert_int_equal(rn, 2); /* 17-byte file */
  assert_int_equal(apdu(c, (const uint8_t *)"\x00\xB0\x00\x20\x01", 5, r,
                        NULL), 0x6B00);
  /* extended Le 0000: all of it */
  assert_int_equal(apdu(c, (const uint8_t *)"\x00\xB0\x00\x00\x00\x00\x00",
                        7, r, &rn), 0x9000);
  assert_int_equal(rn, 17);
  /* the PIN EF cannot be read */
  apdu(c, (const uint8_t *)"\x00\xA4\x02\x0C\x02\x00\x11", 7, r, NULL);
  assert_int_equal(apdu(c, (const uint8_t *)"\x00\xB0\x00\x00\x01", 5, r,
                        NULL), 0x6981);
  emu_card_free(c);

  /* description errors name the file and line */
  char path[] = "/tmp/test_card_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *bad = "type = mynumber\nname = 架空　花子\npin = 12x4\n";
  assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
  close(fd);
  char err[256];
  assert_null(emu_card_load(path, err, sizeof(err)));
  char want[300];
  snprintf(want, sizeof(want), "%s:3: pin", path);
  assert_non_null(strstr(err, want));
  FILE *fp = fopen(path, "w");
  fputs("type = license\nname = 架空　花子\nsurname = x\n", fp);
  fclose(fp);
  assert_null(emu_card_load(path, err, sizeof(err)));
  snprintf(want, sizeof(want), "%s:3: unknown key 'surname'", path);
  assert_non_null(strstr(err, want));
  unlink(path);
}

/* ---- layouts ---- */

static void test_tlv(void **state) {
  (void)state;
  struct card_err err;
  size_t pos, vp, vl;
  uint32_t tag;
  /* short, 81, 82, 83 and 3-byte tags */
  static const uint8_t ok[] = {0x45, 0x02, 0xAA, 0xBB,       /* 45 */
                               0xDF, 0x22, 0x81, 0x01, 0xCC, /* DF22 81 */
                               0x5F, 0x81, 0x01, 0x82, 0x00, 0x01, 0xDD,
                               0xD0, 0x83, 0x00, 0x00, 0x00};
  pos = 0;
  assert_int_equal(card_tlv_next(ok, sizeof(ok), &pos, &tag, &vp, &vl, "X",
                                 &err), 0);
  assert_int_equal(tag, 0x45);
  assert_int_equal(vp, 2);
  assert_int_equal(vl, 2);
  assert_int_equal(card_tlv_next(ok, sizeof(ok), &pos, &tag, &vp, &vl, "X",
                                 &err), 0);
  assert_int_equal(tag, 0xDF22);
  assert_int_equal(vl, 1);
  assert_int_equal(card_tlv_next(ok, sizeof(ok), &pos, &tag, &vp, &vl, "X",
                                 &err), 0);
  assert_int_equal(tag, 0x5F8101);
  assert_int_equal(vl, 1);
  assert_int_equal(ok[vp], 0xDD);
  assert_int_equal(card_tlv_next(ok, sizeof(ok), &pos, &tag, &vp, &vl, "X",
                                 &err), 0);
  assert_int_equal(tag, 0xD0);
  assert_int_equal(vl, 0);
  assert_int_equal(pos, sizeof(ok));
  /* the end */
  assert_int_equal(card_tlv_next(ok, sizeof(ok), &pos, &tag, &vp, &vl, "X",
                                 &err), CARD_E_FORMAT);
  assert_non_null(strstr(err.msg, "X at byte 21"));

  static const struct {
    const char *bytes;
    size_t n;
    const char *msg;
  } bad[] = {
      {"\xFF\x20\x05\x01\x02", 5, "EF0002 at byte 0: value of tag FF20"},
      {"\x00\x00\xFF\x20\x84\x00\x00\x00\x01", 9,
       "EF0002 at byte 4: BER length 0x84 longer than 3 bytes"},
      {"\x00\x00\xFF\x20\x82\x01", 6,
       "EF0002 at byte 4: BER length 0x82 needs 2 more bytes"},
      {"\x00\x00\xFF\x20\x80\x00\x00", 7, "EF0002 at byte 4: indefinite"},
      {"\x00\x00\xDF", 3, "EF0002 at byte 2: tag cut short"},
      {"\x00\x00\x5F\x81\x82\x83\x01\x00", 8,
       "EF0002 at byte 2: tag longer than 3 bytes"},
      {"\x00\x00\x45", 3, "EF0002 at byte 3: tag 45 has no length"},
      {"\x00\x00\xD0\x82\x01\x00\x00", 7,
       "EF0002 at byte 2: value of tag D0 (256 bytes from byte 6) runs"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    pos = bad[i].bytes[0] == 0 ? 2 : 0;
    assert_int_equal(card_tlv_next((const uint8_t *)bad[i].bytes, bad[i].n,
                                   &pos, &tag, &vp, &vl, "EF0002", &err),
                     CARD_E_FORMAT);
    if (!strstr(err.msg, bad[i].msg))
      fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.msg, bad[i].msg);
    assert_int_equal(pos, bad[i].bytes[0] == 0 ? 2 : 0); /* not moved */
  }
}

static void test_mynumber_ok(void **state) {
  (void)state;
  assert_true(card_mynumber_ok("983205673214"));
  assert_false(card_mynumber_ok("983205673210"));
  assert_true(card_mynumber_ok("123456789018"));
  assert_false(card_mynumber_ok("123456789017"));
  assert_true(card_mynumber_ok("000000000000"));
  assert_false(card_mynumber_ok("98320567321"));
  assert_false(card_mynumber_ok("9832056732140"));
  assert_false(card_mynumber_ok("98320567321a"));
  assert_false(card_mynumber_ok(NULL));
}

static void era(const char *e7, const char *want) {
  char out[11];
  int rc = card_era_date(e7, out);
  if (want) {
    if (rc || strcmp(out, want))
      fail_msg("%s: rc %d \"%s\", want %s", e7, rc, out, want);
  } else if (rc != CARD_E_FORMAT) {
    fail_msg("%s: accepted as %s", e7, out);
  }
}

static void test_era(void **state) {
  (void)state;
  era("5010501", "2019-05-01"); /* 令和元年 first day */
  era("5010430", NULL);
  era("4310430", "2019-04-30"); /* 平成 last day */
  era("4310501", NULL);
  era("4010108", "1989-01-08");
  era("4010107", NULL);
  era("3640107", "1989-01-07");
  era("3640108", NULL);
  era("3011225", "1926-12-25"); /* shared day, both eras */
  era("2151225", "1926-12-25");
  era("3011224", NULL);
  era("2151226", NULL);
  era("2010730", "1912-07-30");
  era("1450730", "1912-07-30");
  era("1450731", NULL);
  era("2010729", NULL);
  era("1060101", "1873-01-01"); /* solar calendar from 明治6年 */
  era("1051231", NULL);
  era("3500108", "1975-01-08");
  era("5060229", "2024-02-29");
  era("5050229", NULL);
  era("5001010", NULL); /* year 0 */
  era("0000000", "");   /* not held */
  era("5000000", "");
  era("6010101", NULL);
  era("501050", NULL);
  era("50105011", NULL);
  era("5a10501", NULL);
  era("5011301", NULL);
  era("5010432", NULL);
  char out[11];
  assert_int_equal(card_era_date(NULL, out), CARD_E_FORMAT);
}

static void test_jis(void **state) {
  (void)state;
  struct card_err err;
  int g = -1;
  static const uint8_t yamada[] = {0x3B, 0x33, 0x45, 0x44, 0x21,
                                   0x21, 0x42, 0x40, 0x4F, 0x3A};
  char *s = card_jis0208_to_utf8(yamada, sizeof(yamada), &g, &err);
  assert_non_null(s);
  assert_string_equal(s, "山田　太郎");
  assert_int_equal(g, 0);
  free(s);
  /* 外字 in either byte order, 欠字, an unassigned code */
  static const uint8_t gai[] = {0x3B, 0x33, 0xFF, 0xF1, 0xF3, 0xFF,
                                0xFF, 0xFA, 0x00, 0x00, 0x2F, 0x21};
  s = card_jis0208_to_utf8(gai, sizeof(gai), &g, &err);
  assert_non_null(s);
  assert_string_equal(s, "山【外字1】【外字3】【欠字】〓〓");
  assert_int_equal(g, 5);
  free(s);
  s = card_jis0208_to_utf8(yamada, 3, &g, &err);
  assert_null(s);
  assert_non_null(strstr(err.msg, "odd length"));
  s = card_jis0208_to_utf8(yamada, 0, &g, &err);
  assert_non_null(s);
  assert_string_equal(s, "");
  free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mynumber),
      cmocka_unit_test(test_mynumber_long),
      cmocka_unit_test(test_wrong_pin),
      cmocka_unit_test(test_blocked),
      cmocka_unit_test(test_license),
      cmocka_unit_test(test_license_gaiji),
      cmocka_unit_test(test_license_nopin),
      cmocka_unit_test(test_residence),
      cmocka_unit_test(test_rc_vectors),
      cmocka_unit_test(test_rc_emulator_sm),
      cmocka_unit_test(test_tampered),
      cmocka_unit_test(test_removal),
      cmocka_unit_test(test_identify_unknown),
      cmocka_unit_test(test_transmit),
      cmocka_unit_test(test_emulator_errors),
      cmocka_unit_test(test_tlv),
      cmocka_unit_test(test_mynumber_ok),
      cmocka_unit_test(test_era),
      cmocka_unit_test(test_jis),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
