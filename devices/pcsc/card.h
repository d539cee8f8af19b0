/*
 * card.h — reading Japanese ID cards over any APDU transport (I7).
 *
 * Pure protocol code: no PC/SC here.  The pcsc plugin (pcsc.c) gives it a
 * transport over SCardTransmit; the unit tests give it the card emulator's
 * model (tests/cardemu/emu_card.h) in-process.  Facts, APDUs and layouts:
 * ../shared/reference/id-cards.md (§ numbers below refer to it).
 *
 * Safety rules every function here keeps:
 *  - a PIN is sent at most once per card_read() and never retried;
 *    a wrong PIN ends the read with CARD_E_PIN and tries_left set;
 *  - the tries left are read before verifying, without spending one
 *    (empty VERIFY, §1.5); a blocked PIN (0 tries, 69 84) is CARD_E_BLOCKED
 *    and no VERIFY is sent;
 *  - PINs, card numbers and card contents never go to a log; buffers that
 *    held them are wiped (explicit_bzero) before they are freed;
 *  - every parser checks lengths against the buffer and fails with a
 *    message naming the file, the offset and the rule.
 */
#ifndef MG_CARD_H
#define MG_CARD_H

#include <stddef.h>
#include <stdint.h>

#define CARD_APDU_MAX 65546 /* extended: 7 header/Lc + 65536 + Le */
#define CARD_RAPDU_MAX 65538 /* 65536 data + SW1 SW2 */

/* What card.c last left selected on the card, so that card_read() does
 * not repeat the SELECTs and reads card_identify() already did.  Owned by
 * card.c; a zeroed struct means "unknown".  Zero it again whenever the
 * card was reset or reconnected. */
struct card_sel {
  int app;       /* internal enum (card_int.h); 0: unknown */
  uint16_t ef;   /* current EF's file id under app; 0: none/unknown */
  char kind;     /* residence: MF/EF02 card kind '1' | '2' (0: not read) */
  char checked;  /* licence: MF/EF01 common data read and checked */
};

/* The transport: send one command APDU, receive the response with its
 * status word at the end.  Returns 0, or a negative errno: -ENODEV when
 * the card went away (removed), -EIO for another transport failure. */
struct card_io {
  void *ud;
  int (*transmit)(void *ud, const uint8_t *capdu, size_t clen,
                  uint8_t *rapdu, size_t *rlen /* in: capacity, out: len */);
  unsigned apdus; /* counted by card_transmit(): APDUs sent so far */
  /* In: the reader and transport carry extended-length APDUs (pcscd +
   * vpcd do).  Then a My Number or licence file is read in one READ
   * BINARY instead of chunks of 256 bytes.  0 (the default of a zeroed
   * struct): short APDUs only.  The residence card always needs extended
   * Le (its spec, §4.2.5), whatever this says. */
  int extended;
  struct card_sel sel; /* card.c's own state, see above */
};

enum card_type {
  CARD_UNKNOWN = 0,
  CARD_MYNUMBER = 1,  /* 個人番号カード, 券面事項入力補助AP */
  CARD_LICENSE = 2,   /* 運転免許証 */
  CARD_RESIDENCE = 3  /* 在留カード / 特別永住者証明書 */
};

/* Result vocabulary of card_*(): 0 or one of these (all negative). */
enum card_error {
  CARD_E_IO = -1,        /* transport failed (not a removal) */
  CARD_E_REMOVED = -2,   /* the card went away mid-read */
  CARD_E_UNKNOWN = -3,   /* none of the three applications answered */
  CARD_E_PIN = -4,       /* wrong PIN (or card number): tries_left set */
  CARD_E_BLOCKED = -5,   /* PIN blocked: no try left; nothing was sent */
  CARD_E_FORMAT = -6,    /* the card's data broke a layout rule */
  CARD_E_CARD = -7,      /* the card answered an unexpected status word */
  CARD_E_ARG = -8,       /* bad argument (PIN not 4 digits, ...) */
  CARD_E_NOMEM = -9,
  CARD_E_AUTH = -10      /* residence card: mutual authentication failed
                            (the card's MAC or nonce did not check) */
};

/* What a read found.  All strings are UTF-8, NUL-terminated, owned by the
 * struct (card_result_free wipes and frees them); NULL when the card has
 * no such item. */
struct card_result {
  int type;            /* enum card_type */
  char *name;          /* 氏名 */
  char *kana;          /* licence 呼び名 (カナ); NULL for other cards */
  char *address;       /* 住所 / 住居地 */
  char *birth_date;    /* ISO 8601 YYYY-MM-DD (licence: from the era date) */
  char *sex;           /* "male" | "female" | "not_applicable" | NULL */
  char my_number[13];  /* 12 digits, or "" when not read (My Number only) */
  int my_number_valid; /* check digit (§4.1) holds */
  int gaiji;           /* licence: how many 外字/欠字 placeholders the text
                          holds (〓 marks such as 【外字1】); staff confirm */
  char *license_number;  /* licence 免許証の番号 (12 digits) */
  char *expiry;          /* licence 有効期間の末日, ISO date */
  char *card_kind;       /* residence: "在留カード" | "特別永住者証明書" */
  unsigned char *face;   /* residence: front-face image DF1/EF01 (TIFF, the
                            whole D0 value, NUL padding included) */
  size_t face_len;
  unsigned char *photo;  /* residence: DF1/EF02 face photo (JPEG 2000) */
  size_t photo_len;
  int tries_left;      /* PIN tries left after this read (-1: unknown or
                          not a PIN card) */
  unsigned apdus;      /* APDUs this read used */
};

/* What went wrong, for the operator: names the card file, the offset and
 * the rule, e.g. "EF0002 at byte 3: BER length 0x84 longer than 3 bytes".
 * Never holds card contents. */
struct card_err {
  char msg[192];
};

/* Send one APDU through io (counts it in io->apdus).  rapdu receives the
 * response data without the status word (*rlen in: capacity, at least
 * 2; out: data length); *sw the status word.  61 xx is followed by GET
 * RESPONSE (counted too).  Returns 0 or a card_error. */
int card_transmit(struct card_io *io, const uint8_t *capdu, size_t clen,
                  uint8_t *rapdu, size_t *rlen, uint16_t *sw,
                  struct card_err *err);

/* Which card is present, by SELECTing applications (never by ATR):
 * My Number 券面事項入力補助AP, then the licence (MF/EF 2F01 common data
 * + DF1 AID), then the residence card (MF/EF02 card type, tag C1). */
int card_identify(struct card_io *io, int *type, struct card_err *err);

/* PIN tries left without spending one (My Number: EF0011; licence: PIN1
 * IEF01, or -1 with *pin_set = 0 when the licence has no PIN set, in which
 * case the read uses "****").  Residence cards have no counter: -1. */
int card_tries_left(struct card_io *io, int type, int *tries, int *pin_set,
                    struct card_err *err);

/* Read the card of `type` (from card_identify).  secret:
 *  - My Number: the 4-digit 券面事項入力補助用暗証番号;
 *  - licence: PIN1 (4 digits), or NULL/"" when no PIN is set ("****");
 *  - residence: the 12-character card number (authentication, SM).
 * Fills *out (zeroed first; card_result_free it in every case). */
int card_read(struct card_io *io, int type, const char *secret,
              struct card_result *out, struct card_err *err);

void card_result_free(struct card_result *r);

/* "mynumber" | "license" | "residence" | "unknown" */
const char *card_type_name(int type);
/* A short English reason for a card_error, for logs and API codes:
 * "removed", "wrong_pin", "blocked", ... */
const char *card_error_code(int rc);

/* ---- layouts, exposed for the unit tests ---- */

/* BER-TLV: parse one TLV at buf[*pos] (tag of 1-3 bytes, definite length
 * in short or long form up to 3 length bytes) within len; on success
 * *tag, *vpos, *vlen are set and *pos moves past it.  `where` names the
 * file in the error ("EF0002"). */
int card_tlv_next(const uint8_t *buf, size_t len, size_t *pos, uint32_t *tag,
                  size_t *vpos, size_t *vlen, const char *where,
                  struct card_err *err);

/* 12-digit 個人番号 check digit (§4.1). */
int card_mynumber_ok(const char *digits12);

/* Licence text: JIS X 0208 row/cell byte pairs to UTF-8 (iconv); a pair
 * outside 0x21..0x7E becomes a visible placeholder 【外字n】 (FFF1..FFF7,
 * either byte order) or 【欠字】 (FFFA), counted in *gaiji.  Returns a
 * malloc'd string or NULL with err set. */
char *card_jis0208_to_utf8(const uint8_t *b, size_t n, int *gaiji,
                           struct card_err *err);

/* Licence era date "EYYMMDD" (E: 1 明治 .. 5 令和) to "YYYY-MM-DD";
 * all zeros (not held) gives "".  Returns 0 or CARD_E_FORMAT. */
int card_era_date(const char *e7, char out[11]);

/* Residence card secure messaging (§3.2), exposed for the spec's test
 * vectors (別添2). */
void card_rc_key(const char *card_number12, uint8_t k[16]);
int card_tdes_cbc(const uint8_t k[16], int encrypt, const uint8_t *in,
                  size_t n, uint8_t *out); /* n a multiple of 8; IV 0 */
int card_retail_mac(const uint8_t k[16], const uint8_t *in, size_t n,
                    uint8_t mac[8]); /* ISO 9797-1 alg 3, padding 2 */
void card_rc_session_key(const uint8_t kifd[16], const uint8_t kicc[16],
                         uint8_t ks[16]);

#endif
