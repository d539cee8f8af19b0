/*
 * cardemu — our ID-card emulator (emu_card.c) behind vsmartcard's vpcd
 * protocol, for the tests and the card bench (I7).  It plays the card:
 * vpcd inside pcscd listens, cardemu connects as the client.
 *
 *   cardemu [--host 127.0.0.1] [--port 35963] [--drop-after N]
 *           [--count-file F] [--ready-file F] CARD_FILE
 *
 * Protocol (../shared/reference/id-cards.md §5.2): every message either
 * way is a 2-byte big-endian length and the payload.  A 1-byte payload is
 * a control byte: 00 power off, 01 power on, 02 reset (no reply), 04 get
 * ATR (reply: the ATR).  Anything else is a command APDU, answered with
 * the response APDU (data + SW1 SW2).
 *
 *   --drop-after N   close the connection after answering N APDUs: the
 *                    card is pulled in the middle of a read.
 *   --count-file F   at exit, write the number of APDUs answered to F.
 *   --ready-file F   create F once pcscd has powered the card (the first
 *                    power-on or reset): the harness waits for it.
 *
 *   cardemu --wait absent|present [--reader NAME] [--timeout-ms N]
 *
 * asks pcscd (libpcsclite; PCSCLITE_CSOCK_NAME names its socket) until
 * the reader (default "Virtual PCD 00 00") has no card / a card, for up to
 * N ms (default 5000): exit 0 when it does, 1 when not.  The harness
 * waits so after pulling a card: vpcd takes a new connection for the
 * same card when it comes before pcscd polled the reader (every 400 ms),
 * and pcscd would never see the card change.
 *
 * The connect is retried for up to 10 s (pcscd may still be starting).
 * SIGTERM or SIGINT closes the socket (the card is removed) and exits 0;
 * so does vpcd closing the connection.  Nothing of the card's contents or
 * of the APDUs is ever printed: only counts and the reason of a failure.
 */
#include "emu_card.h"

#include <winscard.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_WAIT_MS 10000
#define RAPDU_CAP 65538
#define FRAME_MAX 65535 /* the length prefix is 16 bits */

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig) {
  int saved = errno;
  unsigned char b = (unsigned char)sig;
  if (write(sig_pipe[1], &b, 1) < 0) {
    /* the pipe is full: a signal is already pending */
  }
  errno = saved;
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(void) {
  fprintf(stderr, "usage: cardemu [--host ADDR] [--port N] [--drop-after N] "
                  "[--count-file F] [--ready-file F] CARD_FILE\n"
                  "       cardemu --wait absent|present [--reader NAME] "
                  "[--timeout-ms N]\n");
}

/* --wait: 0 when the reader reached the state within timeout_ms. */
static int wait_state(const char *reader, int want_present, long timeout_ms) {
  SCARDCONTEXT c;
  SCARD_READERSTATE st;
  int64_t until = mono_ms() + timeout_ms;
  int rc = 1;
  LONG rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &c);
  if (rv != SCARD_S_SUCCESS) {
    fprintf(stderr, "cardemu: --wait: cannot reach pcscd (%s)\n",
            pcsc_stringify_error(rv));
    return 1;
  }
  memset(&st, 0, sizeof(st));
  st.szReader = reader;
  st.dwCurrentState = SCARD_STATE_UNAWARE;
  for (;;) {
    int64_t left = until - mono_ms();
    rv = SCardGetStatusChange(c, left > 0 ? (DWORD)left : 0, &st, 1);
    if (rv == SCARD_S_SUCCESS) {
      int present = (st.dwEventState & SCARD_STATE_PRESENT) != 0;
      if (present == want_present) {
        rc = 0;
        break;
      }
      st.dwCurrentState = st.dwEventState & ~(DWORD)SCARD_STATE_CHANGED;
    } else if (rv != (LONG)SCARD_E_TIMEOUT) {
      fprintf(stderr, "cardemu: --wait: %s: %s\n", reader,
              pcsc_stringify_error(rv));
      break;
    }
    if (mono_ms() >= until) {
      fprintf(stderr, "cardemu: --wait: %s still %s after %ld ms\n", reader,
              want_present ? "empty" : "holds a card", timeout_ms);
      break;
    }
  }
  SCardReleaseContext(c);
  return rc;
}

/* Wait until fd is readable or a signal arrived: 1 readable, 0 signal,
 * -1 error. */
static int wait_readable(int fd) {
  struct pollfd p[2] = {{fd, POLLIN, 0}, {sig_pipe[0], POLLIN, 0}};
  for (;;) {
    int n = poll(p, 2, -1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    if (p[1].revents)
      return 0;
    return 1;
  }
}

/* Read exactly n bytes: 1 done, 0 the peer closed or a signal came (see
 * *signalled), -1 error. */
static int read_full(int fd, uint8_t *buf, size_t n, int *signalled) {
  size_t got = 0;
  while (got < n) {
    int w = wait_readable(fd);
    if (w == 0) {
      *signalled = 1;
      return 0;
    }
    if (w < 0)
      return -1;
    /* Debian's vpcd (3.3) sends the length and the payload in two
     * segments without TCP_NODELAY: its Nagle holds the payload until the
     * length is acknowledged, so acknowledge at once instead of after the
     * 40 ms delayed-ACK timer.  Linux clears quick-ACK mode by itself:
     * set it again before every read. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
    ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (r < 0)
      return errno == ECONNRESET ? 0 : -1;
    if (r == 0)
      return 0;
    got += (size_t)r;
  }
  return 1;
}

static int write_full(int fd, const uint8_t *buf, size_t n) {
  while (n) {
    ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -1;
    buf += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Length and payload in one write: two small segments would wait for
 * the peer's delayed ACK. */
static int send_frame(int fd, uint8_t *frame, size_t n) {
  frame[0] = (uint8_t)(n >> 8);
  frame[1] = (uint8_t)n;
  return write_full(fd, frame, n + 2);
}

/* Connect to vpcd, again every 50 ms for up to 10 s; -1 when it never
 * listened (or a signal asked to stop: *signalled). */
static int connect_vpcd(const char *host, int port, int *signalled) {
  struct sockaddr_in sa;
  int64_t until = mono_ms() + CONNECT_WAIT_MS;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
    fprintf(stderr, "cardemu: --host %s: must be an IPv4 address\n", host);
    return -1;
  }
  for (;;) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      perror("cardemu: socket");
      return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      return fd;
    }
    int e = errno;
    close(fd);
    if (mono_ms() >= until) {
      fprintf(stderr, "cardemu: cannot connect to vpcd at %s:%d within %d s: "
                      "%s\n", host, port, CONNECT_WAIT_MS / 1000, strerror(e));
      return -1;
    }
    struct pollfd p = {sig_pipe[0], POLLIN, 0};
    if (poll(&p, 1, 50) > 0) {
      *signalled = 1;
      return -1;
    }
  }
}

static void write_count(const char *path, unsigned long n) {
  FILE *f;
  if (!path)
    return;
  if (!(f = fopen(path, "w"))) {
    fprintf(stderr, "cardemu: --count-file %s: %s\n", path, strerror(errno));
    return;
  }
  fprintf(f, "%lu\n", n);
  fclose(f);
}

static void touch(const char *path) {
  int fd;
  if (!path)
    return;
  if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
    fprintf(stderr, "cardemu: --ready-file %s: %s\n", path, strerror(errno));
    return;
  }
  close(fd);
}

static int parse_num(const char *s, long max, long *out) {
  char *end;
  long v;
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < 0 || v > max)
    return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *count_file = NULL, *ready_file = NULL;
  const char *card_file = NULL, *wait = NULL, *reader = "Virtual PCD 00 00";
  long port = 35963, drop_after = -1, timeout_ms = 5000;
  struct emu_card *card = NULL;
  uint8_t *in = NULL, *out = NULL;
  unsigned long apdus = 0;
  int fd = -1, rc = 1, signalled = 0, ready = 0;
  char err[256] = "";
  struct sigaction sa;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--host") && i + 1 < argc) {
      host = argv[++i];
    } else if (!strcmp(a, "--port") && i + 1 < argc) {
      if (parse_num(argv[++i], 65535, &port) != 0 || port == 0) {
        fprintf(stderr, "cardemu: --port must be 1-65535\n");
        goto out;
      }
    } else if (!strcmp(a, "--drop-after") && i + 1 < argc) {
      if (parse_num(argv[++i], 1000000, &drop_after) != 0 || drop_after < 1) {
        fprintf(stderr, "cardemu: --drop-after must be a count of APDUs "
                        "(1 or more)\n");
        goto out;
      }
    } else if (!strcmp(a, "--count-file") && i + 1 < argc) {
      count_file = argv[++i];
    } else if (!strcmp(a, "--ready-file") && i + 1 < argc) {
      ready_file = argv[++i];
    } else if (!strcmp(a, "--wait") && i + 1 < argc) {
      wait = argv[++i];
      if (strcmp(wait, "absent") != 0 && strcmp(wait, "present") != 0) {
        usage();
        goto out;
      }
    } else if (!strcmp(a, "--reader") && i + 1 < argc) {
      reader = argv[++i];
    } else if (!strcmp(a, "--timeout-ms") && i + 1 < argc) {
      if (parse_num(argv[++i], 600000, &timeout_ms) != 0) {
        fprintf(stderr, "cardemu: --timeout-ms must be 0-600000\n");
        goto out;
      }
    } else if (a[0] == '-' || card_file) {
      usage();
      goto out;
    } else {
      card_file = a;
    }
  }
  if (wait) {
    rc = wait_state(reader, !strcmp(wait, "present"), timeout_ms);
    goto out;
  }
  if (!card_file) {
    usage();
    goto out;
  }
  if (!(card = emu_card_load(card_file, err, sizeof(err)))) {
    fprintf(stderr, "cardemu: %s\n", err);
    goto out;
  }
  if (!(in = malloc(FRAME_MAX)) || !(out = malloc(RAPDU_CAP + 2))) {
    fprintf(stderr, "cardemu: out of memory\n");
    goto out;
  }
  if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    perror("cardemu: pipe");
    goto out;
  }
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  if ((fd = connect_vpcd(host, (int)port, &signalled)) < 0) {
    rc = signalled ? 0 : 1;
    goto out;
  }
  for (;;) {
    uint8_t hdr[2];
    size_t n = 0;
    int r = read_full(fd, hdr, 2, &signalled);
    if (r == 1) {
      n = (size_t)hdr[0] << 8 | hdr[1];
      r = n ? read_full(fd, in, n, &signalled) : 1;
    }
    if (r == 0) { /* vpcd went away, or we were told to pull the card */
      rc = 0;
      break;
    }
    if (r < 0) {
      perror("cardemu: read from vpcd");
      break;
    }
    if (n == 1) {
      int fail = 0;
      switch (in[0]) {
      case 0x00: /* power off: nothing to keep */
        break;
      case 0x01:
      case 0x02:
        emu_card_reset(card);
        if (!ready) {
          touch(ready_file);
          ready = 1;
        }
        break;
      case 0x04: {
        size_t alen = emu_card_atr(card, out + 2, RAPDU_CAP);
        fail = send_frame(fd, out, alen);
        break;
      }
      default:
        fprintf(stderr, "cardemu: unknown control byte 0x%02x ignored\n",
                in[0]);
      }
      if (fail) {
        perror("cardemu: write to vpcd");
        break;
      }
      continue;
    }
    size_t rlen = emu_card_apdu(card, in, n, out + 2, RAPDU_CAP);
    if (rlen > FRAME_MAX || rlen < 2) {
      /* the framing cannot carry it (65536 bytes of data + SW) */
      fprintf(stderr, "cardemu: a response of %zu bytes does not fit vpcd's "
                      "16-bit length; answered 6F 00\n", rlen);
      out[2] = 0x6F;
      out[3] = 0x00;
      rlen = 2;
    }
    if (send_frame(fd, out, rlen) != 0) {
      perror("cardemu: write to vpcd");
      break;
    }
    apdus++;
    if (drop_after >= 0 && apdus >= (unsigned long)drop_after) {
      rc = 0; /* pulled mid-read, as asked */
      break;
    }
  }
  if (signalled)
    rc = 0;
out:
  if (fd >= 0)
    close(fd);
  if (card_file && card)
    write_count(count_file, apdus);
  if (card)
    emu_card_free(card);
  free(in);
  free(out);
  if (sig_pipe[0] >= 0) {
    close(sig_pipe[0]);
    close(sig_pipe[1]);
  }
  return rc;
}
