/*
 * emu_card.h — the card side of our ID-card emulator (tests only).
 *
 * A model of the three Japanese ID cards answering APDUs as the real cards
 * do (../shared/reference/id-cards.md; residence card: the spec PDF beside
 * it), written independently of devices/pcsc/card.c so that the reader's
 * tests can fail.  cardemu.c puts it behind vsmartcard's vpcd protocol
 * (TCP, 2-byte big-endian length framing) for pcscd; the unit tests call
 * emu_card_apdu() directly.
 *
 * A card is described by a small key = value file (emu_card_load), e.g.
 *   type = mynumber            ; mynumber | license | residence
 *   name = 架空　花子
 *   kana = カクウ　ハナコ        ; licence only
 *   address = 山口県周南市岐山通一丁目1番地
 *   birth = 1985-04-02         ; ISO; the licence stores it as an era date
 *   sex = female               ; male | female | not_applicable
 *   my_number = 123456789018
 *   pin = 1234                 ; My Number 券面入力補助 PIN / licence PIN1
 *   tries = 3                  ; tries left now (0: blocked)
 *   pin_set = yes              ; licence: no = no PIN set (PIN1 is ****)
 *   gaiji = 2                  ; licence: replace the name's 2nd char by
 *                              ; 外字1 (code FF F1)
 *   card_number = AA12345678BB ; residence: the key of the SM
 *   card_kind = 1              ; residence: 1 在留カード, 2 特別永住者証明書
 *   license_number = 123456789012
 *   expiry = 2030-05-05
 * Text given in the file is converted by the model to each card's own
 * encoding (UTF-8 / JIS X 0208 / era dates).
 */
#ifndef MG_EMU_CARD_H
#define MG_EMU_CARD_H

#include <stddef.h>
#include <stdint.h>

struct emu_card; /* opaque */

/* Load a card description; NULL with a message "FILE:LINE: rule" in err. */
struct emu_card *emu_card_load(const char *path, char *err, size_t errlen);
void emu_card_free(struct emu_card *c);

/* The ATR (a PC/SC part-3 contactless ATR; the reader must not rely on
 * it).  Returns its length. */
size_t emu_card_atr(const struct emu_card *c, uint8_t *atr, size_t cap);

/* Power on / reset: back to the MF, security state and SM session
 * cleared (the tries counter is kept, as on a real card). */
void emu_card_reset(struct emu_card *c);

/* Answer one command APDU.  Returns the response length (data + SW1 SW2)
 * written to rapdu (capacity cap >= 65538). */
size_t emu_card_apdu(struct emu_card *c, const uint8_t *capdu, size_t clen,
                     uint8_t *rapdu, size_t cap);

/* Tries left now (tests check that a wrong PIN costs exactly one). */
int emu_card_tries(const struct emu_card *c);

#endif
