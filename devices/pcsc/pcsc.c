/*
 * pcsc — Japanese ID cards (My Number card, driver's licence, residence
 * card) in a PC/SC reader, through libpcsclite and pcscd (I7).  The card
 * protocol is card.h (mgcard); this file is the reader: hot-plug, card
 * insert and removal, and the card operations on worker threads.
 *
 *   [reader "shimin-1-reader"]
 *   plugin = pcsc
 *   name = Virtual PCD 00 00     ; the reader's PC/SC name (pcsc_scan)
 *   extended_apdu = yes          ; optional (default no): one READ BINARY
 *                                ; per file instead of 256-byte pieces
 *   counter = shimin-1
 *
 * A monitor thread of the plugin's own (it blocks for the daemon's
 * lifetime, so not a libuv worker) holds its own SCARDCONTEXT and waits in
 * SCardGetStatusChange on the reader and on "\\?PnP?\Notification"
 * (readers plugged in or out).  It only publishes a snapshot under a
 * mutex and wakes the loop through a pipe (host->fd_watch); the loop
 * turns the changes into events.  stop() cancels the wait (SCardCancel)
 * and joins.  No pcscd, or a reader absent at start, is not an error:
 * the reader shows "waiting" until it comes.
 *
 * Events (to the bound counter):
 *   card.inserted {"reader","type","tries_left","pin_set"}  after the card
 *                 was identified on a worker (no PIN spent)
 *   card.removed  {"reader"}
 *   reader.state  {"reader","present"}  when the reader comes or goes
 * Commands (PENDING, then complete()):
 *   status  -> {"present","type","tries_left","pin_set"}
 *   read    {"pin"} | {"card_number"} | {} -> the card's items, or FATAL
 *           {"error","message","tries_left"?}
 * One card operation at a time; see docs/plugins.md for the whole
 * contract.
 *
 * Safety: a PIN or card number is copied out of the args into a buffer
 * that is wiped (explicit_bzero) after use; the args are not kept.  A
 * wrong PIN is never retried (card_read sends it at most once; this file
 * never calls card_read twice for a request).  No PIN, card number or
 * card content reaches a log: the log names codes, counts and times only.
 * The card is reset at the end of a read (SCARD_RESET_CARD), so that no
 * PIN-verified state outlives it.
 */
#include <madoguchi/plugin.h>

#include "card.h"
#include "mgp.h"

#include <winscard.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PNP_NAME "\\\\?PnP?\\Notification"
/* SCardGetStatusChange's wait.  stop() cancels it at once; the bound only
 * covers the window in which pcsc-lite 1.9 can miss a reader plugged in
 * between SCardListReaders and the wait (it counts readers at the call;
 * 2.x keeps a count of reader events, passed back in the PnP entry). */
#define MON_WAIT_MS 5000
#define MON_RETRY_MS 1000 /* pcscd not there: try again this often */
#define SECRET_MAX 32

enum op_kind { OP_IDENTIFY, OP_STATUS, OP_READ };
enum secret_kind { SEC_NONE, SEC_PIN, SEC_CARD_NUMBER };

struct pr;

/* One card operation.  The loop fills the request part, the worker the
 * result part; done() reads the result on the loop. */
struct op {
  struct pr *pr;
  int kind; /* enum op_kind */
  uint64_t req_id;
  unsigned gen; /* the card (pr->gen) the operation was asked for */
  int secret_kind;
  char secret[SECRET_MAX]; /* PIN or card number: wiped after use */
  /* result, written by the worker */
  const char *code;  /* NULL: success; else an error code of the contract */
  char msg[256];     /* English, no card contents */
  int type;          /* enum card_type */
  int tries;         /* -1: unknown / not a PIN card */
  int pin_set;
  int present;       /* status: a card answered */
  struct card_result res; /* read: what the card gave (wiped and freed) */
  int64_t ms;        /* the card work's wall time */
  struct mgp_sb out; /* read: the result object (card contents: wiped) */
};

/* What the monitor thread saw last (under pr->mu). */
struct snap {
  int reader; /* the reader is listed by pcscd */
  int card;   /* a card is in it */
  unsigned n_insert, n_remove; /* transitions counted by the monitor */
  unsigned err_seq;            /* bumped when err changes */
  char err[200];
};

struct pr {
  /* config, stored by the host */
  char *name;
  int extended; /* the reader carries extended-length APDUs */
  /* runtime */
  const struct mg_host *h;
  struct mg_instance *inst;
  int pipe_rd, pipe_wr;
  struct mg_watch *watch;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int mu_ready;
  pthread_t th;
  int th_started;
  /* shared with the monitor thread, under mu */
  int stopping;
  SCARDCONTEXT mon_ctx; /* valid while mon_valid: SCardCancel target */
  int mon_valid;
  struct snap snap;
  /* loop side */
  struct snap seen;    /* the snapshot as the loop handled it */
  int reader_present;  /* as emitted */
  int card_present;
  unsigned gen;        /* bumped on each insert and removal */
  int identified;      /* type/tries/pin_set hold for gen */
  int type, tries, pin_set;
  struct op *op;       /* running on a worker, or NULL */
  struct op *queued;   /* a command waiting behind the insert identify */
  int need_identify;   /* a card came while an operation ran */
  int stopped;
  /* the workers' context: one operation at a time uses it */
  SCARDCONTEXT op_ctx;
  int op_valid;
};

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------------- */
/* Monitor thread: PC/SC only, no host service                             */

static int mon_stopping(struct pr *pr) {
  pthread_mutex_lock(&pr->mu);
  int s = pr->stopping;
  pthread_mutex_unlock(&pr->mu);
  return s;
}

/* Sleep ms, or less when stop() asks. */
static void mon_sleep(struct pr *pr, int ms) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&pr->mu);
  while (!pr->stopping &&
         pthread_cond_timedwait(&pr->cv, &pr->mu, &ts) != ETIMEDOUT)
    ;
  pthread_mutex_unlock(&pr->mu);
}

static void wake_loop(struct pr *pr) {
  char b = 1;
  if (write(pr->pipe_wr, &b, 1) < 0) {
    /* full: the loop has a wake-up pending already */
  }
}

/* Publish what the monitor knows; wakes the loop when anything changed.
 * err: NULL keeps the last message, "" clears it. */
static void mon_publish(struct pr *pr, const struct snap *s, const char *err) {
  int changed;
  pthread_mutex_lock(&pr->mu);
  changed = s->reader != pr->snap.reader || s->card != pr->snap.card ||
            s->n_insert != pr->snap.n_insert ||
            s->n_remove != pr->snap.n_remove;
  pr->snap.reader = s->reader;
  pr->snap.card = s->card;
  pr->snap.n_insert = s->n_insert;
  pr->snap.n_remove = s->n_remove;
  if (err && strcmp(err, pr->snap.err) != 0) {
    snprintf(pr->snap.err, sizeof(pr->snap.err), "%s", err);
    pr->snap.err_seq++;
    changed = 1;
  }
  pthread_mutex_unlock(&pr->mu);
  if (changed)
    wake_loop(pr);
}

static void mon_drop_ctx(struct pr *pr, SCARDCONTEXT *c, int *have) {
  if (!*have)
    return;
  pthread_mutex_lock(&pr->mu);
  pr->mon_valid = 0;
  SCardReleaseContext(*c); /* under mu: stop() must not cancel a freed one */
  pthread_mutex_unlock(&pr->mu);
  *have = 0;
}

/* 1 when pcscd lists the reader, 0 when not, -1 with *rv on a failure. */
static int mon_listed(SCARDCONTEXT c, const char *name, LONG *rv) {
  char *buf = NULL;
  DWORD len = 0;
  int found = 0;
  *rv = SCardListReaders(c, NULL, NULL, &len);
  if (*rv == (LONG)SCARD_E_NO_READERS_AVAILABLE) {
    *rv = SCARD_S_SUCCESS;
    return 0;
  }
  if (*rv != SCARD_S_SUCCESS)
    return -1;
  if (!(buf = malloc(len + 1))) {
    *rv = SCARD_E_NO_MEMORY;
    return -1;
  }
  *rv = SCardListReaders(c, NULL, buf, &len);
  if (*rv == (LONG)SCARD_E_NO_READERS_AVAILABLE ||
      *rv == (LONG)SCARD_E_INSUFFICIENT_BUFFER) { /* changed in between */
    *rv = SCARD_S_SUCCESS;
    free(buf);
    return 0;
  }
  if (*rv == SCARD_S_SUCCESS) {
    buf[len] = '\0';
    for (const char *p = buf; *p && p < buf + len; p += strlen(p) + 1)
      if (strcmp(p, name) == 0)
        found = 1;
  }
  free(buf);
  return *rv == SCARD_S_SUCCESS ? found : -1;
}

static int service_gone(LONG rv) {
  return rv == (LONG)SCARD_E_NO_SERVICE || rv == (LONG)SCARD_E_SERVICE_STOPPED ||
         rv == (LONG)SCARD_E_INVALID_HANDLE || rv == (LONG)SCARD_F_COMM_ERROR;
}

static void *monitor(void *arg) {
  struct pr *pr = arg;
  SCARDCONTEXT c = 0;
  SCARD_READERSTATE rs[2];
  DWORD cur = SCARD_STATE_UNAWARE; /* the reader's state as last seen */
  unsigned counter = 0;            /* pcscd's event counter of the reader */
  /* the PnP entry's last state: pcsc-lite >= 2.0 keeps a count of reader
   * events in its high word, so that none is missed between two waits */
  DWORD pnp = 0;
  int have = 0;
  struct snap s = {0};
  char why[200];

  while (!mon_stopping(pr)) {
    LONG rv;
    int listed;
    DWORD nreaders = 0;
    if (!have) {
      rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &c);
      if (rv != SCARD_S_SUCCESS) {
        if (s.card)
          s.n_remove++;
        s.reader = s.card = 0;
        snprintf(why, sizeof(why), "cannot reach pcscd (%s); waiting for it",
                 pcsc_stringify_error(rv));
        mon_publish(pr, &s, why);
        mon_sleep(pr, MON_RETRY_MS);
        continue;
      }
      pthread_mutex_lock(&pr->mu);
      pr->mon_ctx = c;
      pr->mon_valid = 1;
      pthread_mutex_unlock(&pr->mu);
      have = 1;
      cur = SCARD_STATE_UNAWARE;
      pnp = 0;
    }
    listed = mon_listed(c, pr->name, &rv);
    if (listed < 0) {
      if (service_gone(rv)) {
        mon_drop_ctx(pr, &c, &have);
        continue;
      }
      snprintf(why, sizeof(why), "cannot list the readers (%s)",
               pcsc_stringify_error(rv));
      mon_publish(pr, &s, why);
      mon_sleep(pr, MON_RETRY_MS);
      continue;
    }
    if (!listed) {
      if (s.card)
        s.n_remove++;
      s.reader = s.card = 0;
      cur = SCARD_STATE_UNAWARE;
    } else {
      s.reader = 1;
    }
    mon_publish(pr, &s, "");
    memset(rs, 0, sizeof(rs));
    if (listed) {
      rs[nreaders].szReader = pr->name;
      rs[nreaders].dwCurrentState = cur;
      nreaders++;
    }
    rs[nreaders].szReader = PNP_NAME;
    rs[nreaders].dwCurrentState = pnp;
    nreaders++;
    rv = SCardGetStatusChange(c, MON_WAIT_MS, rs, nreaders);
    if (rv == SCARD_S_SUCCESS || rv == (LONG)SCARD_E_TIMEOUT)
      pnp = rs[nreaders - 1].dwEventState & ~(DWORD)SCARD_STATE_CHANGED;
    if (rv == SCARD_S_SUCCESS && listed) {
      DWORD ev = rs[0].dwEventState;
      unsigned cnt = (unsigned)(ev >> 16) & 0xFFFFu;
      int present = (ev & SCARD_STATE_PRESENT) && !(ev & SCARD_STATE_UNKNOWN);
      if (ev & SCARD_STATE_UNKNOWN) { /* unplugged during the wait */
        s.reader = 0;
        cur = SCARD_STATE_UNAWARE;
      } else {
        cur = ev & ~(DWORD)SCARD_STATE_CHANGED;
      }
      if (present && (!s.card || cnt != counter)) {
        if (s.card) /* out and in again between two looks */
          s.n_remove++;
        s.n_insert++;
        s.card = 1;
      } else if (!present && s.card) {
        s.n_remove++;
        s.card = 0;
      }
      counter = cnt;
      mon_publish(pr, &s, NULL);
    } else if (rv == SCARD_S_SUCCESS || rv == (LONG)SCARD_E_TIMEOUT ||
               rv == (LONG)SCARD_E_CANCELLED) {
      /* the reader list changed, nothing happened, or stop() asks */
    } else if (rv == (LONG)SCARD_E_UNKNOWN_READER ||
               rv == (LONG)SCARD_E_READER_UNAVAILABLE) {
      cur = SCARD_STATE_UNAWARE; /* it went away: list again */
    } else if (service_gone(rv)) {
      mon_drop_ctx(pr, &c, &have);
    } else {
      snprintf(why, sizeof(why), "waiting for reader events failed (%s)",
               pcsc_stringify_error(rv));
      mon_publish(pr, &s, why);
      mon_sleep(pr, MON_RETRY_MS);
    }
  }
  mon_drop_ctx(pr, &c, &have);
  return NULL;
}

/* ---------------------------------------------------------------------- */
/* Worker side: the card operations (PC/SC and card.h, no host service)   */

struct xport {
  SCARDCONTEXT ctx;
  SCARDHANDLE h;
  DWORD proto;
  const char *reader;
};

/* Was the card pulled?  After a failed transmit pcscd may not have seen
 * the removal yet (it polls the reader every 400 ms, later on a loaded
 * box), so wait up to GONE_WAIT_MS for the state to change: no card, or
 * another card (the event counter moved), is a removal.  Only a failure
 * waits, and a card still there after it is a real I/O error. */
#define GONE_WAIT_MS 5000
static int card_gone(struct xport *x) {
  SCARD_READERSTATE st;
  DWORD first;
  LONG rv;
  memset(&st, 0, sizeof(st));
  st.szReader = x->reader;
  st.dwCurrentState = SCARD_STATE_UNAWARE;
  if (SCardGetStatusChange(x->ctx, 0, &st, 1) != SCARD_S_SUCCESS)
    return 1;
  if (!(st.dwEventState & SCARD_STATE_PRESENT))
    return 1;
  first = st.dwEventState & ~(DWORD)SCARD_STATE_CHANGED;
  st.dwCurrentState = first;
  rv = SCardGetStatusChange(x->ctx, GONE_WAIT_MS, &st, 1);
  if (rv == (LONG)SCARD_E_TIMEOUT)
    return 0;
  if (rv != SCARD_S_SUCCESS)
    return 1;
  return !(st.dwEventState & SCARD_STATE_PRESENT) ||
         (st.dwEventState >> 16) != (first >> 16);
}

/* card.h's transport: -ENODEV when the card went away, -EIO otherwise. */
static int x_transmit(void *ud, const uint8_t *capdu, size_t clen,
                      uint8_t *rapdu, size_t *rlen) {
  struct xport *x = ud;
  DWORD n = (DWORD)*rlen;
  const SCARD_IO_REQUEST *pci =
      x->proto == SCARD_PROTOCOL_T1 ? SCARD_PCI_T1 : SCARD_PCI_T0;
  LONG rv = SCardTransmit(x->h, pci, capdu, (DWORD)clen, NULL, rapdu, &n);
  if (rv == SCARD_S_SUCCESS) {
    *rlen = n;
    return 0;
  }
  *rlen = 0;
  if (rv == (LONG)SCARD_W_REMOVED_CARD || rv == (LONG)SCARD_E_NO_SMARTCARD ||
      rv == (LONG)SCARD_E_READER_UNAVAILABLE ||
      rv == (LONG)SCARD_E_UNKNOWN_READER)
    return -ENODEV;
  /* a reset by another program, or a transfer cut short (vpcd: the
   * card's connection closed) is a removal when the card is gone */
  if (rv != (LONG)SCARD_E_INSUFFICIENT_BUFFER &&
      rv != (LONG)SCARD_E_INVALID_PARAMETER && card_gone(x))
    return -ENODEV;
  return -EIO;
}

__attribute__((format(printf, 3, 4))) static void
w_fail(struct op *op, const char *code, const char *fmt, ...) {
  va_list ap;
  if (op->code)
    return; /* the first failure is the reason */
  op->code = code;
  va_start(ap, fmt);
  vsnprintf(op->msg, sizeof(op->msg), fmt, ap);
  va_end(ap);
}

/* The contract's code for a card_*() result. */
static const char *card_code(int rc) {
  switch (rc) {
  case CARD_E_REMOVED:
    return "removed";
  case CARD_E_UNKNOWN:
    return "unknown_card";
  case CARD_E_PIN:
    return "wrong_pin";
  case CARD_E_BLOCKED:
    return "blocked";
  case CARD_E_FORMAT:
    return "format";
  case CARD_E_CARD:
  case CARD_E_AUTH:
    return "card";
  case CARD_E_ARG:
    return "bad_request";
  default:
    return "io";
  }
}

static void w_card_fail(struct op *op, int rc, const struct card_err *e) {
  switch (rc) {
  case CARD_E_REMOVED:
    w_fail(op, "removed", "the card was removed during the read; insert it "
                          "again and read again");
    break;
  case CARD_E_UNKNOWN:
    w_fail(op, "unknown_card", "not a My Number card, driver's licence or "
                               "residence card (no known application)");
    break;
  case CARD_E_PIN:
    if (op->type == CARD_RESIDENCE)
      w_fail(op, "wrong_pin", "the card number does not match this card");
    else if (op->tries >= 0)
      w_fail(op, "wrong_pin", "wrong PIN: %d tries left (it was not tried "
                              "again)", op->tries);
    else
      w_fail(op, "wrong_pin", "wrong PIN (it was not tried again)");
    break;
  case CARD_E_BLOCKED:
    w_fail(op, "blocked", "the PIN is blocked (no try left); the card's "
                          "issuer must unblock it");
    break;
  case CARD_E_AUTH:
    w_fail(op, "card", "the card failed mutual authentication: %s",
           e->msg[0] ? e->msg : "its answer did not check");
    break;
  default:
    w_fail(op, card_code(rc), "%s", e->msg[0] ? e->msg : "the card failed");
  }
}

/* Map a failed SCardConnect / SCardBeginTransaction. */
static void w_pcsc_fail(struct op *op, LONG rv, const char *what, int began) {
  const char *err = pcsc_stringify_error(rv);
  if (rv == (LONG)SCARD_E_NO_SMARTCARD || rv == (LONG)SCARD_W_REMOVED_CARD)
    w_fail(op, began ? "removed" : "no_card", "%s: no card in the reader (%s)",
           what, err);
  else if (rv == (LONG)SCARD_E_UNKNOWN_READER ||
           rv == (LONG)SCARD_E_READER_UNAVAILABLE || service_gone(rv))
    w_fail(op, "no_reader", "%s: the reader is not available (%s)", what, err);
  else if (rv == (LONG)SCARD_E_SHARING_VIOLATION)
    w_fail(op, "busy", "%s: another program holds the card (%s)", what, err);
  else if (rv == (LONG)SCARD_W_UNRESPONSIVE_CARD ||
           rv == (LONG)SCARD_W_UNPOWERED_CARD)
    w_fail(op, "card", "%s: the card does not answer (%s)", what, err);
  else
    w_fail(op, "io", "%s failed (%s)", what, err);
}

static int w_context(struct pr *pr, struct op *op) {
  LONG rv;
  if (pr->op_valid)
    return 0;
  rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &pr->op_ctx);
  if (rv != SCARD_S_SUCCESS) {
    w_fail(op, "no_reader", "cannot reach pcscd (%s)",
           pcsc_stringify_error(rv));
    return -1;
  }
  pr->op_valid = 1;
  return 0;
}

/* SCardConnect, again once with a fresh context if pcscd restarted. */
static int w_connect(struct pr *pr, struct op *op, struct xport *x) {
  LONG rv = SCARD_E_NO_SERVICE;
  for (int attempt = 0; attempt < 2; attempt++) {
    if (w_context(pr, op) != 0)
      return -1;
    rv = SCardConnect(pr->op_ctx, pr->name, SCARD_SHARE_SHARED,
                      SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &x->h, &x->proto);
    if (rv == SCARD_S_SUCCESS) {
      x->ctx = pr->op_ctx;
      x->reader = pr->name;
      return 0;
    }
    if (!service_gone(rv))
      break;
    SCardReleaseContext(pr->op_ctx);
    pr->op_valid = 0;
  }
  w_pcsc_fail(op, rv, "connecting to the card", 0);
  return -1;
}

static void b64(struct mgp_sb *b, const unsigned char *p, size_t n) {
  static const char t[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char q[4];
  mgp_sb_add(b, "\"", 1);
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)p[i + 1] << 8;
    if (i + 2 < n)
      v |= p[i + 2];
    q[0] = t[v >> 18 & 63];
    q[1] = t[v >> 12 & 63];
    q[2] = i + 1 < n ? t[v >> 6 & 63] : '=';
    q[3] = i + 2 < n ? t[v & 63] : '=';
    mgp_sb_add(b, q, 4);
  }
  mgp_sb_add(b, "\"", 1);
}

static void jkey_str(struct mgp_sb *b, const char *key, const char *v) {
  if (!v)
    return;
  mgp_sb_printf(b, ",\"%s\":", key);
  mgp_sb_jstr(b, v);
}

static void jtries(struct mgp_sb *b, int tries) {
  if (tries >= 0)
    mgp_sb_printf(b, ",\"tries_left\":%d", tries);
  else
    mgp_sb_puts(b, ",\"tries_left\":null");
}

/* The read's answer.  Holds card contents: op_free wipes it. */
static void w_result(struct op *op, const struct card_result *r,
                     unsigned apdus, int64_t ms) {
  struct mgp_sb *b = &op->out;
  mgp_sb_puts(b, "{\"type\":");
  mgp_sb_jstr(b, card_type_name(r->type));
  jkey_str(b, "name", r->name);
  jkey_str(b, "kana", r->kana);
  jkey_str(b, "address", r->address);
  jkey_str(b, "birth_date", r->birth_date);
  jkey_str(b, "sex", r->sex);
  if (r->my_number[0]) {
    jkey_str(b, "my_number", r->my_number);
    mgp_sb_printf(b, ",\"my_number_valid\":%s",
                  r->my_number_valid ? "true" : "false");
  }
  if (r->type == CARD_LICENSE)
    mgp_sb_printf(b, ",\"gaiji\":%d", r->gaiji);
  jkey_str(b, "license_number", r->license_number);
  jkey_str(b, "expiry", r->expiry);
  jkey_str(b, "card_kind", r->card_kind);
  if (r->face) {
    mgp_sb_puts(b, ",\"face_tiff\":");
    b64(b, r->face, r->face_len);
  }
  if (r->photo) {
    mgp_sb_puts(b, ",\"photo_jp2\":");
    b64(b, r->photo, r->photo_len);
  }
  jtries(b, r->tries_left);
  mgp_sb_printf(b, ",\"apdus\":%u,\"ms\":%lld}", apdus, (long long)ms);
  if (b->oom)
    w_fail(op, "io", "out of memory while building the answer");
}

/* The secret the card's type needs, checked before anything is sent. */
static int w_secret_fits(struct op *op) {
  switch (op->type) {
  case CARD_MYNUMBER:
    if (op->secret_kind != SEC_PIN) {
      w_fail(op, "bad_request", "a My Number card is read with its 4-digit "
                                "PIN: {\"pin\": \"NNNN\"}");
      return 0;
    }
    return 1;
  case CARD_LICENSE:
    if (op->secret_kind == SEC_CARD_NUMBER) {
      w_fail(op, "bad_request", "a driver's licence is read with its PIN1 "
                                "{\"pin\": \"NNNN\"}, or {} when none is set");
      return 0;
    }
    if (op->secret_kind == SEC_NONE && op->pin_set) {
      w_fail(op, "bad_request", "this driver's licence has a PIN set: read it "
                                "with {\"pin\": \"NNNN\"}");
      return 0;
    }
    return 1;
  case CARD_RESIDENCE:
    if (op->secret_kind != SEC_CARD_NUMBER) {
      w_fail(op, "bad_request", "a residence card is read with its card "
                                "number: {\"card_number\": \"AA12345678BB\"}");
      return 0;
    }
    return 1;
  default:
    return 1;
  }
}

/* The card part of an operation, inside a transaction. */
static void w_card(struct op *op, struct card_io *io) {
  struct card_err e = {{0}};
  int rc;

  if ((rc = card_identify(io, &op->type, &e)) != 0) {
    w_card_fail(op, rc, &e);
    return;
  }
  op->present = 1;
  if (op->type == CARD_UNKNOWN) {
    if (op->kind == OP_READ)
      w_card_fail(op, CARD_E_UNKNOWN, &e);
    return;
  }
  /* the tries left cost no try; a read needs them only to keep a
   * licence without a PIN from being sent "****" when one is set */
  if (op->kind != OP_READ ||
      (op->type == CARD_LICENSE && op->secret_kind == SEC_NONE)) {
    if ((rc = card_tries_left(io, op->type, &op->tries, &op->pin_set, &e)) !=
        0) {
      if (rc == CARD_E_BLOCKED) {
        op->tries = 0;
        op->pin_set = 1;
      }
      if (op->kind == OP_READ || rc != CARD_E_BLOCKED)
        w_card_fail(op, rc, &e);
      return;
    }
    if (op->type == CARD_RESIDENCE) /* no PIN: a card number instead */
      op->pin_set = 0;
  }
  if (op->kind != OP_READ)
    return;
  if (!w_secret_fits(op))
    return;
  rc = card_read(io, op->type, op->secret_kind == SEC_NONE ? NULL : op->secret,
                 &op->res, &e);
  explicit_bzero(op->secret, sizeof(op->secret)); /* sent at most once */
  op->tries = op->res.tries_left;
  if (rc == CARD_E_BLOCKED)
    op->tries = 0;
  if (rc != 0)
    w_card_fail(op, rc, &e);
}

static void op_work(void *ud) {
  struct op *op = ud;
  struct pr *pr = op->pr;
  struct xport x;
  struct card_io io;
  LONG rv;
  int64_t t0 = mono_ms();

  memset(&x, 0, sizeof(x));
  memset(&io, 0, sizeof(io));
  op->tries = -1;
  if (w_connect(pr, op, &x) != 0)
    goto out;
  if ((rv = SCardBeginTransaction(x.h)) != SCARD_S_SUCCESS) {
    w_pcsc_fail(op, rv, "reserving the card", 1);
    SCardDisconnect(x.h, SCARD_LEAVE_CARD);
    goto out;
  }
  io.ud = &x;
  io.transmit = x_transmit;
  io.extended = pr->extended;
  w_card(op, &io);
  SCardEndTransaction(x.h, SCARD_LEAVE_CARD);
  /* a read leaves no PIN-verified state behind */
  SCardDisconnect(x.h, op->kind == OP_READ ? SCARD_RESET_CARD
                                           : SCARD_LEAVE_CARD);
  /* "ms": the whole card work, connect to disconnect */
  op->ms = mono_ms() - t0;
  if (op->kind == OP_READ && !op->code)
    w_result(op, &op->res, io.apdus, op->ms);
out:
  card_result_free(&op->res);
  explicit_bzero(op->secret, sizeof(op->secret));
}

/* ---------------------------------------------------------------------- */
/* Loop side                                                               */

static void op_free(struct op *op) {
  if (!op)
    return;
  explicit_bzero(op->secret, sizeof(op->secret));
  card_result_free(&op->res);
  if (op->out.p) {
    explicit_bzero(op->out.p, op->out.cap);
    free(op->out.p);
  }
  free(op);
}

static void emit_inserted(struct pr *pr, const char *why) {
  struct mgp_sb b = {0};
  mgp_sb_puts(&b, "{\"reader\":");
  mgp_sb_jstr(&b, pr->h->instance_id(pr->inst));
  mgp_sb_puts(&b, ",\"type\":");
  mgp_sb_jstr(&b, card_type_name(pr->type));
  jtries(&b, pr->tries);
  mgp_sb_printf(&b, ",\"pin_set\":%s", pr->pin_set ? "true" : "false");
  if (why) {
    mgp_sb_puts(&b, ",\"error\":");
    mgp_sb_jstr(&b, why);
  }
  mgp_sb_puts(&b, "}");
  if (!b.oom)
    pr->h->emit(pr->inst, "card.inserted", b.p);
  free(b.p);
}

static void emit_simple(struct pr *pr, const char *topic, int with_present,
                        int present) {
  struct mgp_sb b = {0};
  mgp_sb_puts(&b, "{\"reader\":");
  mgp_sb_jstr(&b, pr->h->instance_id(pr->inst));
  if (with_present)
    mgp_sb_printf(&b, ",\"present\":%s", present ? "true" : "false");
  mgp_sb_puts(&b, "}");
  if (!b.oom)
    pr->h->emit(pr->inst, topic, b.p);
  free(b.p);
}

/* Answer FATAL with the contract's error object. */
static void answer_error(struct pr *pr, uint64_t req_id, const char *code,
                         const char *msg, int tries) {
  struct mgp_sb b = {0};
  mgp_sb_puts(&b, "{\"error\":");
  mgp_sb_jstr(&b, code);
  mgp_sb_puts(&b, ",\"message\":");
  mgp_sb_jstr(&b, msg);
  if (tries >= 0)
    mgp_sb_printf(&b, ",\"tries_left\":%d", tries);
  mgp_sb_puts(&b, "}");
  pr->h->complete(pr->inst, req_id, MG_PLUGIN_FATAL, b.oom ? NULL : b.p);
  free(b.p);
}

static void status_answer(struct pr *pr, uint64_t req_id, int present,
                          int type, int tries, int pin_set) {
  struct mgp_sb b = {0};
  mgp_sb_printf(&b, "{\"present\":%s,\"type\":", present ? "true" : "false");
  if (present)
    mgp_sb_jstr(&b, card_type_name(type));
  else
    mgp_sb_puts(&b, "null");
  jtries(&b, present ? tries : -1);
  mgp_sb_printf(&b, ",\"pin_set\":%s}", present && pin_set ? "true" : "false");
  pr->h->complete(pr->inst, req_id, MG_PLUGIN_OK, b.oom ? NULL : b.p);
  free(b.p);
}

static void op_done(void *ud, int status);
static void start_next(struct pr *pr);

/* Hand op to a worker as the running operation; on failure it is
 * answered (commands) and freed. */
static void op_start(struct pr *pr, struct op *op) {
  int rc;
  op->gen = pr->gen;
  pr->op = op;
  rc = pr->h->queue_work(pr->inst, op_work, op_done, op);
  if (rc != 0) {
    pr->op = NULL;
    if (op->kind != OP_IDENTIFY)
      answer_error(pr, op->req_id, "io",
                   rc == -ESHUTDOWN ? "the reader plugin is stopping"
                                    : "cannot queue the card operation",
                   -1);
    op_free(op);
  }
  /* op may be gone already: the work may have run inline */
}

static void identify_card(struct pr *pr) {
  struct op *op;
  if (pr->op) {
    pr->need_identify = 1;
    return;
  }
  pr->need_identify = 0;
  if (!(op = calloc(1, sizeof(*op)))) {
    pr->h->log(pr->inst, MG_PLUGIN_LOG_ERR, "out of memory");
    return;
  }
  op->pr = pr;
  op->kind = OP_IDENTIFY;
  op_start(pr, op);
}

static void start_next(struct pr *pr) {
  if (pr->op || pr->stopped)
    return;
  if (pr->queued) {
    struct op *q = pr->queued;
    pr->queued = NULL;
    op_start(pr, q);
    return;
  }
  if (pr->need_identify && pr->card_present)
    identify_card(pr);
}

static void log_read(struct pr *pr, const struct op *op) {
  if (op->code)
    pr->h->log(pr->inst, MG_PLUGIN_LOG_NOTICE, "%s read failed: %s (%s)",
               card_type_name(op->type), op->code, op->msg);
  else
    pr->h->log(pr->inst, MG_PLUGIN_LOG_INFO, "%s read (%lld ms)",
               card_type_name(op->type), (long long)op->ms);
}

static void op_done(void *ud, int status) {
  struct op *op = ud;
  struct pr *pr = op->pr;
  int same = op->gen == pr->gen && pr->card_present;
  int counted = !op->code || !strcmp(op->code, "wrong_pin") ||
                !strcmp(op->code, "blocked");

  if (pr->op == op)
    pr->op = NULL;
  if (status != 0 && !op->code)
    w_fail(op, "io", "the reader plugin is stopping");
  /* what the card told about itself holds until it is removed */
  if (same && status == 0 && op->present && counted) {
    pr->type = op->type;
    pr->identified = 1;
    if (op->kind != OP_READ) {
      pr->tries = op->tries;
      pr->pin_set = op->pin_set;
    } else if (op->tries >= 0) {
      pr->tries = op->tries;
    }
  }
  switch (op->kind) {
  case OP_IDENTIFY:
    if (status != 0 || pr->stopped)
      break;
    if (!same) /* removed (or swapped) meanwhile: removed said it */
      break;
    if (op->code && strcmp(op->code, "removed") == 0)
      break; /* card.removed follows */
    if (op->code) { /* told as far as it got, with the reason */
      pr->type = op->present ? op->type : CARD_UNKNOWN;
      pr->tries = -1;
      pr->pin_set = 0;
      pr->identified = 1;
      pr->h->log(pr->inst, MG_PLUGIN_LOG_NOTICE,
                 "card not fully identified: %s (%s)", op->code, op->msg);
    }
    emit_inserted(pr, op->code);
    break;
  case OP_STATUS:
    if (op->code && (!strcmp(op->code, "no_card") ||
                     !strcmp(op->code, "removed")))
      status_answer(pr, op->req_id, 0, CARD_UNKNOWN, -1, 0);
    else if (op->code)
      answer_error(pr, op->req_id, op->code, op->msg, -1);
    else
      status_answer(pr, op->req_id, op->present, op->type, op->tries,
                    op->pin_set);
    break;
  case OP_READ:
    log_read(pr, op);
    if (op->code) {
      answer_error(pr, op->req_id, op->code, op->msg,
                   !strcmp(op->code, "wrong_pin") ||
                           !strcmp(op->code, "blocked")
                       ? op->tries
                       : -1);
    } else {
      pr->h->complete(pr->inst, op->req_id, MG_PLUGIN_OK, op->out.p);
    }
    break;
  }
  op_free(op);
  start_next(pr);
}

/* The monitor's news, on the loop. */
static void on_wake(void *ud, int fd, int revents) {
  struct pr *pr = ud;
  struct snap s;
  char buf[64];
  (void)revents;
  while (read(fd, buf, sizeof(buf)) > 0)
    ;
  pthread_mutex_lock(&pr->mu);
  s = pr->snap;
  pthread_mutex_unlock(&pr->mu);
  if (pr->stopped)
    return;
  if (s.err_seq != pr->seen.err_seq && s.err[0])
    pr->h->log(pr->inst, MG_PLUGIN_LOG_WARNING, "%s", s.err);
  if (s.reader != pr->reader_present) {
    pr->reader_present = s.reader;
    pr->h->log(pr->inst, MG_PLUGIN_LOG_NOTICE, "reader \"%s\" %s", pr->name,
               s.reader ? "present" : "absent; waiting for it");
    emit_simple(pr, "reader.state", 1, s.reader);
  }
  if (s.n_remove != pr->seen.n_remove && pr->card_present) {
    pr->card_present = 0;
    pr->gen++;
    pr->identified = 0;
    pr->need_identify = 0;
    emit_simple(pr, "card.removed", 0, 0);
  }
  if (s.n_insert != pr->seen.n_insert && s.card) {
    pr->card_present = 1;
    pr->gen++;
    pr->identified = 0;
    pr->type = CARD_UNKNOWN;
    pr->tries = -1;
    pr->pin_set = 0;
    identify_card(pr);
  } else if (!s.card && pr->card_present) { /* missed count: be safe */
    pr->card_present = 0;
    pr->gen++;
    pr->identified = 0;
    emit_simple(pr, "card.removed", 0, 0);
  }
  pr->seen = s;
}

/* ---------------------------------------------------------------------- */
/* Commands                                                                */

static int reject(struct pr *pr, uint64_t req_id, const char *code,
                  const char *msg) {
  answer_error(pr, req_id, code, msg, -1);
  return MG_PLUGIN_PENDING;
}

static void wipe_free(char *s) {
  if (!s)
    return;
  explicit_bzero(s, strlen(s));
  free(s);
}

static int all_digits(const char *s, size_t n) {
  if (strlen(s) != n)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return 0;
  return 1;
}

/* Residence card number: 2 letters, 8 digits, 2 letters (§3.2). */
static int card_number_ok(const char *s) {
  if (strlen(s) != 12)
    return 0;
  for (int i = 0; i < 12; i++) {
    int letter = s[i] >= 'A' && s[i] <= 'Z';
    int digit = s[i] >= '0' && s[i] <= '9';
    if (i < 2 || i >= 10 ? !letter : !digit)
      return 0;
  }
  return 1;
}

/* Copy the secret out of the args into op; 0, or -1 after answering. */
static int take_secret(struct pr *pr, uint64_t req_id, const char *args,
                       struct op *op) {
  char *pin = NULL, *num = NULL;
  int rc = -1, a, b;

  a = mgp_json_get_str(args, "pin", &pin);
  b = mgp_json_get_str(args, "card_number", &num);
  if (a < 0 || b < 0) {
    reject(pr, req_id, "bad_request",
           "read takes a JSON object: {\"pin\": \"NNNN\"}, {\"card_number\": "
           "\"AA12345678BB\"} or {}; pin and card_number are strings");
    goto out;
  }
  if (pin && num) {
    reject(pr, req_id, "bad_request",
           "read takes either pin or card_number, not both");
    goto out;
  }
  if (pin) {
    if (!all_digits(pin, 4)) {
      reject(pr, req_id, "bad_request", "pin must be 4 digits");
      goto out;
    }
    op->secret_kind = SEC_PIN;
    memcpy(op->secret, pin, 4);
  } else if (num) {
    if (!card_number_ok(num)) {
      reject(pr, req_id, "bad_request",
             "card_number must be the 12 characters printed on the card: 2 "
             "capital letters, 8 digits, 2 capital letters");
      goto out;
    }
    op->secret_kind = SEC_CARD_NUMBER;
    memcpy(op->secret, num, 12);
  }
  rc = 0;
out:
  wipe_free(pin);
  wipe_free(num);
  return rc;
}

static int pr_command(void *ctx, uint64_t req_id, const char *op_name,
                      const char *args) {
  struct pr *pr = ctx;
  struct op *op = NULL;
  int kind;

  if (strcmp(op_name, "status") == 0) {
    kind = OP_STATUS;
  } else if (strcmp(op_name, "read") == 0) {
    kind = OP_READ;
  } else {
    pr->h->log(pr->inst, MG_PLUGIN_LOG_WARNING,
               "unknown command (this reader knows status and read)");
    return MG_PLUGIN_FATAL;
  }
  if (!(op = calloc(1, sizeof(*op))))
    return MG_PLUGIN_RETRY;
  op->pr = pr;
  op->kind = kind;
  op->req_id = req_id;
  op->gen = pr->gen;
  if (kind == OP_READ && take_secret(pr, req_id, args, op) != 0)
    goto answered;
  if (!pr->reader_present || !pr->card_present) {
    if (kind == OP_STATUS)
      status_answer(pr, req_id, 0, CARD_UNKNOWN, -1, 0);
    else if (!pr->reader_present)
      reject(pr, req_id, "no_reader",
             "the card reader is not connected (or pcscd is not running)");
    else
      reject(pr, req_id, "no_card", "no card in the reader");
    goto answered;
  }
  if (pr->op) {
    if (pr->op->kind == OP_IDENTIFY && !pr->queued) {
      pr->queued = op; /* runs when the card is identified */
      return MG_PLUGIN_PENDING;
    }
    reject(pr, req_id, "busy",
           "the reader is busy with another card operation; try again");
    goto answered;
  }
  op_start(pr, op);
  return MG_PLUGIN_PENDING;
answered:
  op_free(op);
  return MG_PLUGIN_PENDING;
}

/* ---------------------------------------------------------------------- */
/* Configuration and lifecycle                                             */

static const char *check_name(const void *stored) {
  const char *s = *(char *const *)stored;
  if (!s || !s[0])
    return "must be the reader's PC/SC name, e.g. \"Virtual PCD 00 00\" "
           "(pcsc_scan lists them)";
  if (strlen(s) > 127)
    return "must be at most 127 bytes (a PC/SC reader name)";
  return NULL;
}

static int pr_init(void *ctx, const struct mg_host *host,
                   struct mg_instance *inst) {
  struct pr *pr = ctx;
  int p[2] = {-1, -1};
  const char *bad;
  if (host->abi_major != MG_PLUGIN_ABI_MAJOR ||
      host->size < offsetof(struct mg_host, instance_id) + sizeof(void *))
    return MG_PLUGIN_FATAL;
  pr->h = host;
  pr->inst = inst;
  pr->pipe_rd = pr->pipe_wr = -1;
  pr->tries = -1;
  if ((bad = check_name(&pr->name))) {
    host->log(inst, MG_PLUGIN_LOG_ERR, "name %s", bad);
    return MG_PLUGIN_FATAL;
  }
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
    host->log(inst, MG_PLUGIN_LOG_ERR, "cannot make a pipe: %s",
              strerror(errno));
    return MG_PLUGIN_FATAL;
  }
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  if (pthread_mutex_init(&pr->mu, NULL) != 0 ||
      pthread_cond_init(&pr->cv, &ca) != 0) {
    pthread_condattr_destroy(&ca);
    close(p[0]);
    close(p[1]);
    host->log(inst, MG_PLUGIN_LOG_ERR, "cannot make a mutex");
    return MG_PLUGIN_FATAL;
  }
  pthread_condattr_destroy(&ca);
  pr->mu_ready = 1;
  pr->pipe_rd = p[0];
  pr->pipe_wr = p[1];
  return MG_PLUGIN_OK;
}

static int pr_start(void *ctx) {
  struct pr *pr = ctx;
  int rc = pr->h->fd_watch(pr->inst, pr->pipe_rd, MG_WATCH_READ, on_wake, pr,
                           &pr->watch);
  if (rc != 0) {
    pr->watch = NULL;
    pr->h->log(pr->inst, MG_PLUGIN_LOG_ERR, "cannot watch the monitor's pipe");
    return MG_PLUGIN_FATAL;
  }
  if ((rc = pthread_create(&pr->th, NULL, monitor, pr)) != 0) {
    pr->h->log(pr->inst, MG_PLUGIN_LOG_ERR,
               "cannot start the reader's monitor thread: %s", strerror(rc));
    return MG_PLUGIN_FATAL;
  }
  pr->th_started = 1;
  pr->h->log(pr->inst, MG_PLUGIN_LOG_INFO, "watching reader \"%s\"",
             pr->name);
  return MG_PLUGIN_OK;
}

/* Ends the monitor: SCardCancel wakes SCardGetStatusChange; it is sent
 * again until the thread is gone, since a cancel that lands between two
 * waits is lost. */
static void pr_stop(void *ctx) {
  struct pr *pr = ctx;
  pr->stopped = 1;
  if (pr->mu_ready) {
    pthread_mutex_lock(&pr->mu);
    pr->stopping = 1;
    pthread_cond_broadcast(&pr->cv);
    pthread_mutex_unlock(&pr->mu);
  }
  if (pr->th_started) {
    for (;;) {
      struct timespec ts;
      pthread_mutex_lock(&pr->mu);
      if (pr->mon_valid)
        SCardCancel(pr->mon_ctx);
      pthread_mutex_unlock(&pr->mu);
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += 50 * 1000000L;
      if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
      }
      if (pthread_timedjoin_np(pr->th, NULL, &ts) == 0)
        break;
    }
    pr->th_started = 0;
  }
  if (pr->watch) {
    pr->h->fd_unwatch(pr->watch);
    pr->watch = NULL;
  }
  if (pr->queued) { /* never started: the host answers it "stopping" */
    op_free(pr->queued);
    pr->queued = NULL;
  }
}

static void pr_fini(void *ctx) {
  struct pr *pr = ctx;
  if (pr->op_valid) {
    SCardReleaseContext(pr->op_ctx);
    pr->op_valid = 0;
  }
  if (pr->pipe_rd >= 0)
    close(pr->pipe_rd);
  if (pr->pipe_wr >= 0)
    close(pr->pipe_wr);
  pr->pipe_rd = pr->pipe_wr = -1;
  if (pr->mu_ready) {
    pthread_cond_destroy(&pr->cv);
    pthread_mutex_destroy(&pr->mu);
    pr->mu_ready = 0;
  }
}

static int pr_describe(void *ctx, char *buf, size_t len) {
  struct pr *pr = ctx;
  struct mgp_sb b = {0};
  const char *card = "none";
  if (pr->card_present)
    card = pr->identified ? card_type_name(pr->type) : "unknown";
  mgp_sb_puts(&b, "{\"reader\":");
  mgp_sb_jstr(&b, pr->name);
  mgp_sb_printf(&b, ",\"present\":%s,\"card\":\"%s\",\"state\":\"%s\"}",
                pr->reader_present ? "true" : "false", card,
                !pr->reader_present ? "waiting"
                : pr->op            ? "busy"
                                    : "ready");
  return mgp_sb_take(&b, buf, len);
}

static const struct mg_config_item config[] = {
    {MG_CFG_STR, "name", NULL, offsetof(struct pr, name), MG_CFG_REQUIRED, 0,
     0, NULL, check_name,
     "The reader's PC/SC name as pcscd lists it (pcsc_scan), e.g. "
     "\"SONY FeliCa RC-S300/P 00 00\"."},
    {MG_CFG_BOOL, "extended_apdu", "no", offsetof(struct pr, extended), 0, 0,
     0, NULL, NULL,
     "The reader carries extended-length APDUs (pcscd's vpcd does; check a "
     "real reader's data sheet): a file is then read in one APDU instead of "
     "256-byte pieces."},
    {0, NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL}};

static const struct mg_plugin plugin = {
    .abi_major = MG_PLUGIN_ABI_MAJOR,
    .abi_minor = MG_PLUGIN_ABI_MINOR,
    .size = sizeof(struct mg_plugin),
    .name = "pcsc",
    .version = "1.0.0",
    .kind = MG_PLUGIN_KIND_CARD_READER,
    .description = "Reads My Number cards, driver's licences and residence "
                   "cards in a PC/SC reader (pcscd)",
    .config = config,
    .ctx_size = sizeof(struct pr),
    .init = pr_init,
    .start = pr_start,
    .command = pr_command,
    .stop = pr_stop,
    .fini = pr_fini,
    .describe = pr_describe,
};

MG_PLUGIN_EXPORT const struct mg_plugin *mg_plugin_entry_v1(void);
MG_PLUGIN_EXPORT const struct mg_plugin *mg_plugin_entry_v1(void) {
  return &plugin;
}
