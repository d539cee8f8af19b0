/*
 * card_int.h — what card.c shares with card_mynumber.c, card_license.c
 * and card_residence.c (I7).  Not installed, not for the plugin.
 */
#ifndef MG_CARD_INT_H
#define MG_CARD_INT_H

#include <stdarg.h>

#include "card.h"

/* card_sel.app: what is selected now. */
enum {
  CARD__SEL_UNKNOWN = 0,
  CARD__SEL_MN_AP,   /* My Number 券面事項入力補助AP */
  CARD__SEL_LIC_MF,  /* licence MF */
  CARD__SEL_LIC_DF1, /* licence DF1 */
  CARD__SEL_RC_MF,   /* residence card MF */
  CARD__SEL_RC_DF1,
  CARD__SEL_RC_DF2,
};

#define CARD__MN_MAX_TRIES 3  /* §1.5 券面入力補助 PIN */
#define CARD__LIC_MAX_TRIES 3 /* §2.2 PIN1 */

/* One read or probe: the transport, where errors go and a response
 * buffer of CARD_RAPDU_MAX bytes (wiped and freed by card.c). */
struct card__ctx {
  struct card_io *io;
  struct card_err *err;
  uint8_t *rb;  /* response data of the last command */
  size_t rn;    /* its length (without SW) */
  uint16_t sw;  /* its status word */
};

/* Sets err->msg (printf-style) and returns rc. */
int card__fail(struct card_err *err, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "what: status 6A82 (file not found)" with rc CARD_E_CARD. */
int card__sw_fail(struct card__ctx *c, const char *what);

/* Send capdu; the answer lands in c->rb/rn/sw.  Only transport errors
 * fail here; the caller judges the status word. */
int card__cmd(struct card__ctx *c, const uint8_t *capdu, size_t clen);

/* SELECT DF by AID (00 A4 04 0C), SELECT EF by file id (00 A4 02 0C),
 * both requiring 90 00.  `what` names the file in errors. */
int card__select_aid(struct card__ctx *c, const uint8_t *aid, size_t n,
                     const char *what);
int card__select_ef(struct card__ctx *c, uint16_t fid, const char *what);

/* READ BINARY of n bytes from offset off of an EF into dst (plain).
 * sfi > 0: the first command names the EF by its short id (P1 = 80|sfi,
 * off < 256), which makes it current; later chunks use P1P2 offsets of the
 * current EF.  Chunks: 256 bytes (short Le) or up to 65536 (extended Le)
 * when ext; a short answer is followed by another READ at the new offset.
 * *got: bytes read; fewer than n only when the card reported the end of
 * the file (62 82) and allow_short is set. */
int card__read(struct card__ctx *c, int sfi, size_t off, size_t n, int ext,
               uint8_t *dst, size_t *got, int allow_short,
               const char *what);

/* Parse only the tag and length of the TLV at buf[0] (value may lie
 * beyond len): *hlen header bytes, *vlen value bytes.  Errors as
 * card_tlv_next. */
int card__tlv_head(const uint8_t *buf, size_t len, size_t *hlen,
                   uint32_t *tag, size_t *vlen, const char *where,
                   struct card_err *err);

/* The BER length at buf[*pp] (short form, or 81/82/83 + 1..3 bytes);
 * *pp moves past it.  `where` names the file in errors. */
int card__ber_len(const uint8_t *buf, size_t len, size_t *pp, size_t *vlen,
                  const char *where, struct card_err *err);

/* Strict UTF-8 (no NUL, no overlong forms, no surrogates). */
int card__utf8_ok(const uint8_t *s, size_t n);
/* malloc'd NUL-terminated copy, NULL on ENOMEM. */
char *card__strndup(const uint8_t *s, size_t n);
/* Free a string after wiping it (NULL is fine). */
void card__wipe_free(char *s);

/* The per-card parts (card_mynumber.c, card_license.c,
 * card_residence.c): secret checked by the caller only for NULL-ness. */
int card__mn_tries(struct card__ctx *c, int *tries);
int card__mn_read(struct card__ctx *c, const char *pin,
                  struct card_result *out);
int card__lic_tries(struct card__ctx *c, int *tries, int *pin_set);
int card__lic_read(struct card__ctx *c, const char *pin,
                   struct card_result *out);
/* MF/EF02 card kind into c->io->sel.kind (SELECT MF first when mf). */
int card__rc_kind(struct card__ctx *c, int select_mf);
int card__rc_read(struct card__ctx *c, const char *card_number,
                  struct card_result *out);

/* Licence identification step shared with card_identify: SELECT MF
 * (sw of it in *mf_sw), SELECT EF 2F01 and READ its 17 bytes; 1 when
 * they hold the common data (tag 45), 0 when not, or a card_error. */
int card__lic_probe(struct card__ctx *c, uint16_t *mf_sw);

#endif
