/*
 * cardbench.c — ID-card reads through the real libpcsclite (bench/cards).
 *
 *   cardbench READER TYPE SECRET N
 *
 * Ours: N reads with card.h (identify, tries, PIN, files), each on a fresh
 * connection reset at the end, as the pcsc plugin does.  Peer: the same
 * APDUs, recorded from one read, replayed N times with bare SCardTransmit
 * on the same kind of connection — the card's own time (pcscd, vpcd, the
 * emulator).  Prints both, per read, and what our code adds.
 */
#include <winscard.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "card.h"

#define MAX_REC 64

static int extended; /* MG_CARD_EXTENDED=1: extended APDUs, as the plugin's
                        extended_apdu setting */

struct rec {
  uint8_t *apdu[MAX_REC];
  size_t len[MAX_REC];
  size_t n;
  int on;
};

struct link {
  SCARDHANDLE h;
  DWORD proto;
  struct rec *rec;
};

static int tx(void *ud, const uint8_t *c, size_t cl, uint8_t *r, size_t *rl) {
  struct link *l = ud;
  const SCARD_IO_REQUEST *pci =
      l->proto == SCARD_PROTOCOL_T1 ? SCARD_PCI_T1 : SCARD_PCI_T0;
  DWORD n = (DWORD)*rl;
  if (l->rec && l->rec->on && l->rec->n < MAX_REC) {
    l->rec->apdu[l->rec->n] = malloc(cl);
    memcpy(l->rec->apdu[l->rec->n], c, cl);
    l->rec->len[l->rec->n++] = cl;
  }
  LONG rv = SCardTransmit(l->h, pci, c, (DWORD)cl, NULL, r, &n);
  if (rv != SCARD_S_SUCCESS)
    return rv == SCARD_W_REMOVED_CARD ? -ENODEV : -EIO;
  *rl = n;
  return 0;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int connect_card(SCARDCONTEXT ctx, const char *reader,
                        struct link *l) {
  return SCardConnect(ctx, reader, SCARD_SHARE_SHARED,
                      SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &l->h,
                      &l->proto) == SCARD_S_SUCCESS
             ? 0
             : -1;
}

/* One read with card.h; 0 or a card_error. */
static int read_once(SCARDCONTEXT ctx, const char *reader, const char *secret,
                     struct rec *rec, unsigned *apdus) {
  struct link l = {0, 0, rec};
  struct card_io io;
  struct card_result res;
  struct card_err err;
  int type = 0, rc;
  memset(&res, 0, sizeof(res));
  memset(&io, 0, sizeof(io));
  io.ud = &l;
  io.transmit = tx;
  io.extended = extended;
  if (connect_card(ctx, reader, &l))
    return CARD_E_IO;
  rc = card_identify(&io, &type, &err);
  if (!rc)
    rc = card_read(&io, type, secret, &res, &err);
  if (rc)
    fprintf(stderr, "cardbench: %s: %s\n", card_error_code(rc), err.msg);
  *apdus = io.apdus;
  card_result_free(&res);
  SCardDisconnect(l.h, SCARD_RESET_CARD);
  return rc;
}

static int replay_once(SCARDCONTEXT ctx, const char *reader,
                       const struct rec *rec) {
  struct link l = {0, 0, NULL};
  static uint8_t r[CARD_RAPDU_MAX];
  if (connect_card(ctx, reader, &l))
    return -1;
  for (size_t i = 0; i < rec->n; i++) {
    size_t rl = sizeof(r);
    if (tx(&l, rec->apdu[i], rec->len[i], r, &rl))
      return -1;
  }
  SCardDisconnect(l.h, SCARD_RESET_CARD);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: cardbench READER TYPE SECRET N\n");
    return 2;
  }
  const char *reader = argv[1], *type = argv[2], *secret = argv[3];
  int n = atoi(argv[4]);
  extended = getenv("MG_CARD_EXTENDED") && atoi(getenv("MG_CARD_EXTENDED"));
  SCARDCONTEXT ctx;
  struct rec rec;
  unsigned apdus = 0;
  memset(&rec, 0, sizeof(rec));
  if (SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx) !=
      SCARD_S_SUCCESS) {
    fprintf(stderr, "cardbench: no pcscd\n");
    return 1;
  }
  rec.on = 1; /* the first read records the APDUs of the peer */
  if (read_once(ctx, reader, secret, &rec, &apdus))
    return 1;
  rec.on = 0;
  double t0 = now_ms();
  for (int i = 0; i < n; i++)
    if (read_once(ctx, reader, secret, NULL, &apdus))
      return 1;
  double ours = (now_ms() - t0) / n;
  t0 = now_ms();
  for (int i = 0; i < n; i++)
    if (replay_once(ctx, reader, &rec))
      return 1;
  double peer = (now_ms() - t0) / n;
  printf("%-9s %3u APDUs  ours %7.2f ms/read  replay %7.2f ms/read  "
         "added %6.2f ms  ratio %.2f\n",
         type, apdus, ours, peer, ours - peer, peer > 0 ? ours / peer : 0);
  for (size_t i = 0; i < rec.n; i++)
    free(rec.apdu[i]);
  SCardReleaseContext(ctx);
  return 0;
}
