/*
 * mgprobe — small client tools for the integration tests, where curl and
 * openssl s_client fall short:
 *
 *   mgprobe ws PORT PATH TIMEOUT_MS [CMD...]
 *       TLS-connect to 127.0.0.1:PORT, ask for a WebSocket upgrade on PATH,
 *       print the status line; on 101 run CMD (if any) and print the first
 *       text frame that arrives within TIMEOUT_MS.  Exit 0 when upgraded
 *       (and a frame arrived, if CMD was given).  With MGPROBE_COOKIE in
 *       the environment ("mg_session=..."), the upgrade sends it as its
 *       Cookie header (the events socket needs a staff session).
 *   mgprobe hold PORT TIMEOUT_MS [TEXT]
 *       TLS-connect, send TEXT (\r and \n written as such), then read until
 *       the server closes; print the milliseconds that took.  Exit 1 when
 *       the connection is still open after TIMEOUT_MS (slow clients must be
 *       dropped).
 *   mgprobe notify SOCKET UNTIL TIMEOUT_MS
 *       Bind a datagram socket like systemd's NOTIFY_SOCKET and print the
 *       messages received (one per line, newlines as '|') until one
 *       contains UNTIL; exit 1 if none did within TIMEOUT_MS.
 */
#include <errno.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Read exactly n bytes within the deadline. */
static int ssl_read_full(SSL *ssl, int fd, unsigned char *buf, size_t n,
                         long long deadline) {
  size_t got = 0;
  while (got < n) {
    if (!SSL_pending(ssl)) {
      long long left = deadline - now_ms();
      struct pollfd p = {fd, POLLIN, 0};
      if (left <= 0 || poll(&p, 1, (int)left) <= 0)
        return -1;
    }
    int r = SSL_read(ssl, buf + got, (int)(n - got));
    if (r <= 0)
      return -1;
    got += (size_t)r;
  }
  return 0;
}

static int cmd_ws(int argc, char **argv) {
  int port, fd = -1, rc = 1, n;
  const char *path;
  long long deadline;
  SSL_CTX *ctx = NULL;
  SSL *ssl = NULL;
  pid_t pid = -1;
  char req[1024], hdr[4096], cookie[600] = "";
  const char *ck = getenv("MGPROBE_COOKIE");
  size_t hl = 0;

  if (argc < 5)
    return 2;
  port = atoi(argv[2]);
  path = argv[3];
  deadline = now_ms() + atoll(argv[4]);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  ctx = SSL_CTX_new(TLS_client_method());
  fd = socket(AF_INET, SOCK_STREAM, 0);
  if (!ctx || fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    perror("connect");
    goto out;
  }
  ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) != 1) {
    fprintf(stderr, "TLS handshake failed\n");
    goto out;
  }
  if (ck && *ck)
    snprintf(cookie, sizeof(cookie), "Cookie: %s\r\n", ck);
  n = snprintf(req, sizeof(req),
               "GET %s HTTP/1.1\r\nHost: localhost:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\n%s\r\n",
               path, port, cookie);
  SSL_write(ssl, req, n);
  /* headers up to the blank line */
  while (hl < sizeof(hdr) - 1) {
    if (ssl_read_full(ssl, fd, (unsigned char *)hdr + hl, 1, deadline)) {
      hdr[hl] = '\0';
      printf("no upgrade: %.*s\n", (int)strcspn(hdr, "\r\n"), hdr);
      goto out;
    }
    hl++;
    if (hl >= 4 && memcmp(hdr + hl - 4, "\r\n\r\n", 4) == 0)
      break;
  }
  hdr[hl] = '\0';
  printf("%.*s\n", (int)strcspn(hdr, "\r\n"), hdr);
  if (strncmp(hdr, "HTTP/1.1 101", 12) != 0)
    goto out;
  if (argc == 5) {
    rc = 0;
    goto out;
  }
  pid = fork();
  if (pid == 0) {
    execvp(argv[5], argv + 5);
    _exit(127);
  }
  for (;;) {
    unsigned char h2[2], ext[8], *payload;
    size_t len;
    if (ssl_read_full(ssl, fd, h2, 2, deadline))
      break;
    len = h2[1] & 0x7f;
    if (len == 126) {
      if (ssl_read_full(ssl, fd, ext, 2, deadline))
        break;
      len = (size_t)ext[0] << 8 | ext[1];
    } else if (len == 127) {
      if (ssl_read_full(ssl, fd, ext, 8, deadline))
        break;
      len = 0;
      for (int i = 0; i < 8; i++)
        len = len << 8 | ext[i];
    }
    payload = malloc(len + 1);
    if (!payload || ssl_read_full(ssl, fd, payload, len, deadline)) {
      free(payload);
      break;
    }
    payload[len] = '\0';
    int text = (h2[0] & 0x0f) == 1;
    if (text)
      printf("%s\n", payload);
    free(payload);
    if (text) {
      rc = 0;
      break;
    }
  }
out:
  if (pid > 0) {
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "command failed\n");
      rc = 1;
    }
  }
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  if (fd >= 0)
    close(fd);
  return rc;
}

static int cmd_hold(int argc, char **argv) {
  int fd = -1, rc = 1;
  SSL_CTX *ctx = NULL;
  SSL *ssl = NULL;
  char text[1024];
  size_t tl = 0;

  if (argc < 4)
    return 2;
  long long start = now_ms(), deadline = start + atoll(argv[3]);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)atoi(argv[2]))};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  for (const char *p = argc > 4 ? argv[4] : ""; *p && tl < sizeof(text); p++) {
    if (p[0] == '\\' && (p[1] == 'r' || p[1] == 'n')) {
      text[tl++] = p[1] == 'r' ? '\r' : '\n';
      p++;
    } else {
      text[tl++] = *p;
    }
  }
  ctx = SSL_CTX_new(TLS_client_method());
  fd = socket(AF_INET, SOCK_STREAM, 0);
  if (!ctx || fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
    goto out;
  ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) != 1)
    goto out;
  if (tl && SSL_write(ssl, text, (int)tl) != (int)tl)
    goto out;
  for (;;) {
    unsigned char b;
    if (ssl_read_full(ssl, fd, &b, 1, deadline)) {
      if (now_ms() < deadline) { /* closed by the server */
        printf("closed after %lld ms\n", now_ms() - start);
        rc = 0;
      } else {
        printf("still open after %lld ms\n", now_ms() - start);
      }
      break;
    }
  }
out:
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  if (fd >= 0)
    close(fd);
  return rc;
}

static int cmd_notify(int argc, char **argv) {
  if (argc < 5)
    return 2;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[2]);
  const char *until = argv[3];
  long long deadline = now_ms() + atoll(argv[4]);
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  unlink(argv[2]);
  if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    perror("bind");
    return 1;
  }
  printf("listening\n");
  fflush(stdout);
  for (;;) {
    long long left = deadline - now_ms();
    struct pollfd p = {fd, POLLIN, 0};
    if (left <= 0 || poll(&p, 1, (int)left) <= 0)
      return 1;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    if (n < 0)
      return 1;
    buf[n] = '\0';
    int done = strstr(buf, until) != NULL;
    for (char *c = buf; *c; c++)
      if (*c == '\n')
        *c = '|';
    printf("%s\n", buf);
    fflush(stdout);
    if (done)
      return 0;
  }
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "ws") == 0)
    return cmd_ws(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "hold") == 0)
    return cmd_hold(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "notify") == 0)
    return cmd_notify(argc, argv);
  fprintf(stderr, "usage: mgprobe ws PORT PATH TIMEOUT_MS [CMD...] | hold PORT TIMEOUT_MS [TEXT]\n"
                  "       | notify SOCKET UNTIL TIMEOUT_MS\n");
  return 2;
}
