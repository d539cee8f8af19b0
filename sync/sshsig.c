/*
 * sshsig.c — SSHSIG (openssh PROTOCOL.sshsig) verification against an
 * allowed_signers file, Ed25519 only, with OpenSSL 3.  Everything that
 * comes from outside (the armored signature, the allowed_signers text) is
 * parsed with explicit bounds; nothing is trusted because a length says so.
 */
#include "sshsig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "buf.h"

#define ED25519_NAME "ssh-ed25519"
#define ED25519_KEY_LEN 32
#define ED25519_SIG_LEN 64
#define ARMOR_BEGIN "-----BEGIN SSH SIGNATURE-----"
#define ARMOR_END "-----END SSH SIGNATURE-----"
#define SIGNERS_MAX_BYTES (1u << 20) /* far above any real allowed_signers */

struct signer {
  char *principals; /* as written, quotes removed */
  char *namespaces; /* pattern-list; NULL allows every namespace */
  unsigned char key[ED25519_KEY_LEN];
  int has_after, has_before;
  time_t after, before;
  size_t line;
};

struct mg_signers {
  struct signer *v;
  size_t n;
  char *name;
};

/* ---- small helpers ---------------------------------------------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_val(unsigned char c) {
  const char *p = c ? strchr(b64_alphabet, c) : NULL;
  return p ? (int)(p - b64_alphabet) : -1;
}

/* Strict RFC 4648: padded to a multiple of 4, '=' only at the end, unused
 * bits zero — so one byte string has exactly one accepted spelling.
 * out needs n / 4 * 3 bytes. */
static int b64_decode(const char *s, size_t n, unsigned char *out,
                      size_t *outlen) {
  size_t o = 0;
  if (n == 0 || n % 4)
    return -1;
  for (size_t i = 0; i < n; i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; k++) {
      unsigned char c = (unsigned char)s[i + k];
      if (c == '=' && i + 4 == n && k >= 2) {
        v[k] = 0;
        pad++;
      } else if (pad || (v[k] = b64_val(c)) < 0) {
        return -1;
      }
    }
    uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
                 (uint32_t)v[2] << 6 | (uint32_t)v[3];
    if ((pad == 2 && (w & 0xffff)) || (pad == 1 && (w & 0xff)))
      return -1;
    out[o++] = (unsigned char)(w >> 16);
    if (pad < 2)
      out[o++] = (unsigned char)(w >> 8);
    if (pad < 1)
      out[o++] = (unsigned char)w;
  }
  *outlen = o;
  return 0;
}

/* SHA256 fingerprint exactly as ssh-keygen -l: base64 without padding. */
static void fingerprint(const unsigned char *blob, size_t n, char out[64]) {
  unsigned char h[32], b64[48];
  unsigned int hl = 0;
  if (!EVP_Digest(blob, n, h, &hl, EVP_sha256(), NULL) || hl != 32) {
    ERR_clear_error();
    strcpy(out, "SHA256:?");
    return;
  }
  EVP_EncodeBlock(b64, h, 32); /* 44 chars, the last one '=' */
  snprintf(out, 64, "SHA256:%.43s", (const char *)b64);
}

/* Untrusted bytes shown in a message: printable ASCII only, bounded. */
static const char *shown(char *dst, size_t cap, const void *src, size_t n) {
  const unsigned char *s = src;
  size_t o = 0;
  for (size_t i = 0; i < n && o + 4 < cap; i++)
    dst[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
  if (o + 4 >= cap && n > o)
    memcpy(dst + o, "...", 3), o += 3;
  dst[o] = '\0';
  return dst;
}

/* OpenSSH glob: '*' any run, '?' one char.  Iterative with one backtrack
 * point, so hostile patterns cannot blow up. */
static int glob_match(const char *s, const char *p, size_t plen) {
  const char *star = NULL, *resume = NULL, *pe = p + plen;
  while (*s) {
    if (p < pe && (*p == '?' || *p == *s)) {
      s++, p++;
    } else if (p < pe && *p == '*') {
      star = ++p;
      resume = s;
    } else if (star) {
      p = star;
      s = ++resume;
    } else {
      return 0;
    }
  }
  while (p < pe && *p == '*')
    p++;
  return p == pe;
}

/* ssh_config(5) PATTERNS: 1 when a positive entry matches and no negated
 * ("!pat") entry does. */
static int pattern_list_match(const char *s, const char *list) {
  int ok = 0;
  while (*list) {
    size_t n = strcspn(list, ",");
    int neg = list[0] == '!';
    if (glob_match(s, list + neg, n - (size_t)neg)) {
      if (neg)
        return 0;
      ok = 1;
    }
    list += n + (list[n] == ',');
  }
  return ok;
}

/* ---- ssh wire format -------------------------------------------------- */

struct rd {
  const unsigned char *p;
  size_t left;
};

/* Read string <what>; message "<ctx>: <what> length N runs past the end". */
static int rd_string(struct rd *r, const unsigned char **s, size_t *n,
                     const char *ctx, const char *what, struct mg_err *err) {
  if (r->left < 4)
    return mg_err_set(err, -EBADMSG, "%s: truncated before the %s length", ctx,
                      what);
  uint32_t len = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 |
                 (uint32_t)r->p[2] << 8 | r->p[3];
  if (len > r->left - 4)
    return mg_err_set(err, -EBADMSG,
                      "%s: %s length %lu runs past the end (%zu bytes left)",
                      ctx, what, (unsigned long)len, r->left - 4);
  *s = r->p + 4;
  *n = len;
  r->p += 4 + (size_t)len;
  r->left -= 4 + (size_t)len;
  return 0;
}

static int bytes_eq(const unsigned char *p, size_t n, const char *s) {
  return n == strlen(s) && memcmp(p, s, n) == 0;
}

/* Key types OpenSSH knows but we refuse (as opposed to a typo). */
static int other_ssh_key_type(const char *t, size_t n) {
  /* space-delimited, so only a whole name matches */
  static const char known[] =
      " ssh-rsa ssh-dss ecdsa-sha2-nistp256 ecdsa-sha2-nistp384"
      " ecdsa-sha2-nistp521 sk-ecdsa-sha2-nistp256@openssh.com"
      " sk-ssh-ed25519@openssh.com ssh-xmss@openssh.com ";
  static const char cert[] = "-cert-v01@openssh.com";
  const char *hit = memmem(known, sizeof(known) - 1, t, n);
  if (n && !memchr(t, ' ', n) && hit && hit[-1] == ' ' && hit[n] == ' ')
    return 1;
  return n > sizeof(cert) - 1 &&
         memcmp(t + n - (sizeof(cert) - 1), cert, sizeof(cert) - 1) == 0;
}

/* A public key blob: string "ssh-ed25519" || string key[32], nothing more.
 * -ENOTSUP for another well-formed key type, -EBADMSG otherwise. */
static int parse_pubkey(const unsigned char *blob, size_t n,
                        unsigned char key[ED25519_KEY_LEN], const char *ctx,
                        struct mg_err *err) {
  struct rd r = {blob, n};
  const unsigned char *t = NULL, *k = NULL;
  size_t tn = 0, kn = 0; /* -O3 cannot see rd_string sets them */
  char tmp[64];
  int rc = rd_string(&r, &t, &tn, ctx, "key type", err);
  if (rc)
    return rc;
  if (!bytes_eq(t, tn, ED25519_NAME))
    return mg_err_set(err, -ENOTSUP,
                      "%s: key type \"%s\" is not supported (only "
                      "ssh-ed25519 keys are supported)",
                      ctx, shown(tmp, sizeof(tmp), t, tn));
  if ((rc = rd_string(&r, &k, &kn, ctx, "key", err)))
    return rc;
  if (kn != ED25519_KEY_LEN)
    return mg_err_set(err, -EBADMSG, "%s: ssh-ed25519 key is %zu bytes, not 32",
                      ctx, kn);
  if (r.left)
    return mg_err_set(err, -EBADMSG, "%s: %zu bytes of trailing data", ctx,
                      r.left);
  memcpy(key, k, ED25519_KEY_LEN);
  return 0;
}

/* ---- allowed_signers -------------------------------------------------- */

static int is_days_ok(int y, int m, int d) {
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m >= 1 && m <= 12 && d >= 1 && d <= mdays[m - 1] + (m == 2 && leap);
}

/* YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z]; local time unless Z, as OpenSSH. */
static int parse_time(const char *s, size_t n, time_t *out) {
  int utc = n > 0 && s[n - 1] == 'Z';
  int f[6] = {0, 0, 0, 0, 0, 0};
  n -= (size_t)utc;
  if (n != 8 && n != 12 && n != 14)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    size_t fi = i < 4 ? 0 : (i - 4) / 2 + 1;
    f[fi] = f[fi] * 10 + (s[i] - '0');
  }
  if (f[0] < 1970 || !is_days_ok(f[0], f[1], f[2]) || f[3] > 23 || f[4] > 59 ||
      f[5] > 59)
    return -1;
  struct tm tm = {.tm_year = f[0] - 1900, .tm_mon = f[1] - 1, .tm_mday = f[2]};
  tm.tm_hour = f[3], tm.tm_min = f[4], tm.tm_sec = f[5], tm.tm_isdst = -1;
  *out = utc ? timegm(&tm) : mktime(&tm);
  return *out == (time_t)-1 ? -1 : 0;
}

/* One whitespace-delimited field; quotes may hide spaces.  -1 when a quote
 * is left open. */
static int next_field(char **cur, char **tok, size_t *len) {
  char *p = *cur + strspn(*cur, " \t"), *q = p;
  int quoted = 0;
  while (*q && (quoted || (*q != ' ' && *q != '\t'))) {
    if (*q == '"')
      quoted = !quoted;
    q++;
  }
  *tok = p;
  *len = (size_t)(q - p);
  *cur = q;
  return quoted ? -1 : 0;
}

static int is_key_type_word(const char *t, size_t n) {
  return bytes_eq((const unsigned char *)t, n, ED25519_NAME) ||
         other_ssh_key_type(t, n);
}

struct at { /* where in allowed_signers we are, for messages */
  const char *name;
  size_t line;
  struct mg_err *err;
};

static int bad(const struct at *at, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int bad(const struct at *at, const char *fmt, ...) {
  char msg[MG_ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return mg_err_set(at->err, -EINVAL, "%s:%zu: %s", at->name, at->line, msg);
}

/* Options "opt[,opt...]": namespaces="list", valid-after="time",
 * valid-before="time".  Values must be double-quoted as OpenSSH demands
 * ("missing start quote" there), so a file we accept, ssh-keygen accepts. */
static int parse_options(const char *o, size_t n, struct signer *sg,
                         const struct at *at) {
  char tmp[64];
  size_t i = 0;
  while (i < n) {
    size_t k = i;
    while (k < n && o[k] != '=' && o[k] != ',')
      k++;
    const char *kw = o + i;
    int kwn = (int)(k - i);
    int ns = kwn == 10 && !strncasecmp(kw, "namespaces", 10);
    int va = kwn == 11 && !strncasecmp(kw, "valid-after", 11);
    int vb = kwn == 12 && !strncasecmp(kw, "valid-before", 12);
    if (kwn == 14 && !strncasecmp(kw, "cert-authority", 14))
      return bad(at, "option cert-authority is not supported (only plain "
                     "ssh-ed25519 keys)");
    if (!ns && !va && !vb)
      return bad(at, "unknown option \"%s\"", shown(tmp, 64, kw, k - i));
    if (k + 1 >= n || o[k] != '=' || o[k + 1] != '"')
      return bad(at, "option %.*s needs a value in double quotes", kwn, kw);
    const char *v = o + k + 2, *ve = memchr(v, '"', n - (k + 2));
    if (!ve)
      return bad(at, "unterminated quote in option %.*s", kwn, kw);
    size_t vn = (size_t)(ve - v);
    i = (size_t)(ve - o) + 1;
    if (i < n && o[i] != ',')
      return bad(at, "expected ',' after option %.*s", kwn, kw);
    if (i + 1 == n)
      return bad(at, "options end with ','");
    i += i < n; /* the comma */
    if (ns) {
      if (sg->namespaces)
        return bad(at, "namespaces given twice");
      if (vn == 0 || memchr(v, ' ', vn) || memchr(v, '\t', vn))
        return bad(at, "namespaces list is empty or has spaces");
      if (!(sg->namespaces = strndup(v, vn)))
        return mg_err_set(at->err, -ENOMEM, "out of memory");
    } else {
      int *has = va ? &sg->has_after : &sg->has_before;
      if (*has)
        return bad(at, "%.*s given twice", kwn, kw);
      if (parse_time(v, vn, va ? &sg->after : &sg->before))
        return bad(at, "malformed %.*s \"%s\" (want YYYYMMDD[HHMM[SS]][Z])",
                   kwn, kw, shown(tmp, sizeof(tmp), v, vn));
      *has = 1;
    }
  }
  if (sg->has_after && sg->has_before && sg->after > sg->before)
    return bad(at, "valid-after is later than valid-before");
  return 0;
}

/* One non-comment line: principals [options] keytype base64 [comment].
 * As OpenSSH, the field after the principals is options unless it is a
 * key type. */
static int parse_line(char *p, struct signer *sg, const struct at *at) {
  char tmp[64], *pr, *f[3] = {NULL, NULL, NULL};
  size_t prn, fn[3] = {0, 0, 0};
  if (*p == '"') { /* a quoted list may hold spaces */
    pr = p + 1;
    char *q = strchr(pr, '"');
    if (!q)
      return bad(at, "unterminated quote in principals");
    prn = (size_t)(q - pr);
    p = q + 1;
    if (*p && *p != ' ' && *p != '\t')
      return bad(at, "text right after the closing quote of the principals");
  } else {
    pr = p;
    prn = strcspn(p, " \t");
    p += prn;
    if (memchr(pr, '"', prn))
      return bad(at, "stray quote in principals (quote the whole list)");
  }
  if (prn == 0 || pr[0] == ',' || pr[prn - 1] == ',' ||
      memmem(pr, prn, ",,", 2))
    return bad(at, "empty principal");
  /* The third field is only read when there are options: without them it
   * is the comment, which may hold anything. */
  if (next_field(&p, &f[0], &fn[0]) || next_field(&p, &f[1], &fn[1]))
    return bad(at, "unterminated quote");
  const char *opt = NULL, *type = f[0], *b64 = f[1];
  size_t typen = fn[0], b64n = fn[1];
  if (!is_key_type_word(f[0], fn[0]) &&
      (is_key_type_word(f[1], fn[1]) || memchr(f[0], '=', fn[0]) ||
       (fn[0] == 14 && !strncasecmp(f[0], "cert-authority", 14)))) {
    if (next_field(&p, &f[2], &fn[2]))
      return bad(at, "unterminated quote");
    opt = f[0];
    type = f[1], typen = fn[1], b64 = f[2], b64n = fn[2];
  }
  int rc;
  if (opt && (rc = parse_options(opt, fn[0], sg, at)))
    return rc;
  if (typen == 0 || (b64n == 0 && is_key_type_word(type, typen)))
    return bad(at, "missing key");
  if (other_ssh_key_type(type, typen))
    return bad(at, "key type %.*s: only ssh-ed25519 keys are supported",
               (int)typen, type);
  if (!bytes_eq((const unsigned char *)type, typen, ED25519_NAME))
    return bad(at, "unknown key type \"%s\"", shown(tmp, 64, type, typen));
  unsigned char blob[128];
  size_t bn = 0;
  if (b64n > sizeof(blob) / 3 * 4 || b64_decode(b64, b64n, blob, &bn))
    return bad(at, "bad base64 in key");
  if (parse_pubkey(blob, bn, sg->key, "key", NULL))
    return bad(at, "key blob does not decode to ssh-ed25519 + 32 bytes");
  if (!(sg->principals = strndup(pr, prn)))
    return mg_err_set(at->err, -ENOMEM, "out of memory");
  sg->line = at->line;
  return 0;
}

void mg_signers_free(struct mg_signers *s) {
  if (!s)
    return;
  for (size_t i = 0; i < s->n; i++) {
    free(s->v[i].principals);
    free(s->v[i].namespaces);
  }
  free(s->v);
  free(s->name);
  free(s);
}

size_t mg_signers_count(const struct mg_signers *s) { return s ? s->n : 0; }

int mg_signers_parse(const char *text, size_t len, const char *name,
                     struct mg_signers **out, struct mg_err *err) {
  struct mg_signers *s = NULL;
  char *copy = NULL;
  struct signer sg = {0};
  int rc = 0;
  if (!out || (!text && len))
    return mg_err_set(err, -EINVAL, "mg_signers_parse: bad arguments");
  *out = NULL;
  if (!name)
    name = "allowed_signers";
  size_t lines = 1; /* at most one signer per line: allocate once */
  for (size_t i = 0; i < len; i++)
    lines += text[i] == '\n';
  if (!(s = calloc(1, sizeof(*s))) || !(s->name = strdup(name)) ||
      !(copy = malloc(len + 1)) || !(s->v = calloc(lines, sizeof(*s->v)))) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  if (len)
    memcpy(copy, text, len);
  copy[len] = '\0';
  size_t line = 0;
  char *p = copy;
  while (p < copy + len) {
    char *nl = memchr(p, '\n', (size_t)(copy + len - p));
    char *end = nl ? nl : copy + len;
    line++;
    if (memchr(p, '\0', (size_t)(end - p))) {
      rc = mg_err_set(err, -EINVAL, "%s:%zu: NUL byte", name, line);
      goto out;
    }
    *end = '\0';
    if (end > p && end[-1] == '\r') /* CRLF files */
      end[-1] = '\0';
    char *q = p + strspn(p, " \t");
    struct at at = {name, line, err};
    if (*q && *q != '#') {
      if ((rc = parse_line(q, &sg, &at)))
        goto out;
      s->v[s->n++] = sg;
      memset(&sg, 0, sizeof(sg)); /* ownership moved */
    }
    p = nl ? nl + 1 : copy + len;
  }
  *out = s;
  s = NULL;
out:
  free(sg.principals);
  free(sg.namespaces);
  free(copy);
  mg_signers_free(s);
  return rc;
}

int mg_signers_load(const char *path, struct mg_signers **out,
                    struct mg_err *err) {
  char *text = NULL;
  struct stat st;
  int rc, e;
  FILE *f = fopen(path, "re");
  if (out)
    *out = NULL;
  if (!f) {
    e = errno;
    return mg_err_set(err, -e, "%s: %s", path, strerror(e));
  }
  if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) ||
      st.st_size > SIGNERS_MAX_BYTES) {
    rc = mg_err_set(err, -EINVAL, "%s: not a regular file of at most %u bytes",
                    path, SIGNERS_MAX_BYTES);
  } else if (!(text = malloc((size_t)st.st_size + 1))) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
  } else { /* one byte more than expected tells a file that grew */
    size_t len = fread(text, 1, (size_t)st.st_size + 1, f);
    if (ferror(f) || len > (size_t)st.st_size)
      rc = mg_err_set(err, -EIO, "%s: read error or file changed", path);
    else
      rc = mg_signers_parse(text, len, path, out, err);
  }
  free(text);
  fclose(f);
  return rc;
}

/* ---- the signature ---------------------------------------------------- */

struct sshsig {
  const unsigned char *pub, *ns, *halg, *sig;
  size_t pubn, nsn, halgn;
  unsigned char key[ED25519_KEY_LEN];
};

/* Armor to blob: BEGIN line, base64 lines, END line, then only line ends.
 * *blob is malloc'd. */
static int dearmor(const char *a, size_t n, unsigned char **blob, size_t *blobn,
                   struct mg_err *err) {
  const size_t bl = sizeof(ARMOR_BEGIN) - 1, el = sizeof(ARMOR_END) - 1;
  char *b64 = NULL;
  size_t b64n = 0;
  int rc = 0;
  *blob = NULL;
  while (n > 0 && (a[n - 1] == '\n' || a[n - 1] == '\r'))
    n--;
  if (n < bl || memcmp(a, ARMOR_BEGIN, bl) != 0)
    return mg_err_set(err, -EBADMSG,
                      "signature armor: does not start with " ARMOR_BEGIN);
  if (n < bl + el + 1 || memcmp(a + n - el, ARMOR_END, el) != 0 ||
      a[n - el - 1] != '\n')
    return mg_err_set(err, -EBADMSG,
                      "signature armor: does not end with an " ARMOR_END
                      " line");
  /* body: after the BEGIN line's end up to and including the '\n' that
   * precedes END */
  const char *p = a + bl, *end = a + n - el - 1;
  p += *p == '\r';
  if (*p++ != '\n' || p > end)
    return mg_err_set(err, -EBADMSG,
                      "signature armor: no base64 lines after the BEGIN line");
  if (!(b64 = malloc((size_t)(end - p) + 1)) ||
      !(*blob = malloc((size_t)(end - p) / 4 * 3 + 3))) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  for (size_t line = 2, empty = 1; p <= end; p++) {
    if (*p == '\r' && p < end && p[1] == '\n')
      continue;
    if (*p == '\n' && empty) {
      rc =
          mg_err_set(err, -EBADMSG, "signature armor: line %zu is empty", line);
      goto out;
    }
    if (*p == '\n') {
      line++, empty = 1;
      continue;
    }
    if (b64_val((unsigned char)*p) < 0 && *p != '=') {
      rc = mg_err_set(err, -EBADMSG,
                      "signature armor: line %zu has a non-base64 byte", line);
      goto out;
    }
    b64[b64n++] = *p, empty = 0;
  }
  if (b64_decode(b64, b64n, *blob, blobn))
    rc = mg_err_set(err, -EBADMSG,
                    "signature armor: base64 is malformed (bad padding or "
                    "length)");
out:
  free(b64);
  if (rc) {
    free(*blob);
    *blob = NULL;
  }
  return rc;
}

/* The blob, field by field (PROTOCOL.sshsig), in order. */
static int parse_blob(const unsigned char *b, size_t n, const char *want_ns,
                      struct sshsig *s, struct mg_err *err) {
  static const char ctx[] = "signature blob";
  struct rd r = {b, n};
  const unsigned char *x, *st, *sb;
  size_t xn, stn, sbn;
  char tmp[64];
  int rc;
  if (n < 6 || memcmp(b, "SSHSIG", 6) != 0)
    return mg_err_set(err, -EBADMSG, "%s: magic is not \"SSHSIG\"", ctx);
  if (n < 10)
    return mg_err_set(err, -EBADMSG, "%s: truncated in the version", ctx);
  uint32_t ver =
      (uint32_t)b[6] << 24 | (uint32_t)b[7] << 16 | (uint32_t)b[8] << 8 | b[9];
  if (ver != 1)
    return mg_err_set(err, -EBADMSG, "%s: version %lu is not supported (1 is)",
                      ctx, (unsigned long)ver);
  r.p += 10, r.left -= 10;
  if ((rc = rd_string(&r, &s->pub, &s->pubn, ctx, "publickey", err)))
    return rc;
  if ((rc = parse_pubkey(s->pub, s->pubn, s->key, "signature blob: publickey",
                         err)))
    return rc;
  if ((rc = rd_string(&r, &s->ns, &s->nsn, ctx, "namespace", err)) ||
      (rc = rd_string(&r, &x, &xn, ctx, "reserved", err)) ||
      (rc = rd_string(&r, &s->halg, &s->halgn, ctx, "hash_algorithm", err)) ||
      (rc = rd_string(&r, &x, &xn, ctx, "signature", err)))
    return rc;
  if (r.left)
    return mg_err_set(err, -EBADMSG, "%s: %zu bytes of trailing data", ctx,
                      r.left);
  if (s->nsn == 0)
    return mg_err_set(err, -EBADMSG, "%s: namespace is empty", ctx);
  if (!bytes_eq(s->ns, s->nsn, want_ns))
    return mg_err_set(err, -EBADMSG,
                      "%s: namespace \"%s\" is not the expected \"%s\"", ctx,
                      shown(tmp, sizeof(tmp), s->ns, s->nsn), want_ns);
  if (!bytes_eq(s->halg, s->halgn, "sha256") &&
      !bytes_eq(s->halg, s->halgn, "sha512"))
    return mg_err_set(err, -ENOTSUP,
                      "%s: hash_algorithm \"%s\" is not supported (sha256 or "
                      "sha512)",
                      ctx, shown(tmp, sizeof(tmp), s->halg, s->halgn));
  /* signature = string "ssh-ed25519" || string sig[64] */
  struct rd sr = {x, xn};
  if ((rc = rd_string(&sr, &st, &stn, "signature blob: signature", "type",
                      err)) ||
      (rc = rd_string(&sr, &sb, &sbn, "signature blob: signature", "bytes",
                      err)))
    return rc;
  if (!bytes_eq(st, stn, ED25519_NAME))
    return mg_err_set(err, -EBADMSG,
                      "%s: signature type \"%s\" does not match the "
                      "ssh-ed25519 key",
                      ctx, shown(tmp, sizeof(tmp), st, stn));
  if (sbn != ED25519_SIG_LEN || sr.left)
    return mg_err_set(err, -EBADMSG,
                      "%s: signature is not exactly 64 Ed25519 bytes", ctx);
  s->sig = sb;
  return 0;
}

/* RFC 4253 string: uint32 big-endian length, then the bytes. */
static void put_string(struct mg_buf *b, const void *p, size_t n) {
  unsigned char l[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                        (unsigned char)(n >> 8), (unsigned char)n};
  mg_buf_append(b, l, 4);
  mg_buf_append(b, p, n);
}

static void fmt_time(time_t t, char out[32]) {
  struct tm tm;
  if (!gmtime_r(&t, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
    snprintf(out, 32, "@%lld", (long long)t);
}

/* The first line that lists the key and allows ns at now; otherwise say why
 * the first line listing the key did not. */
static int find_signer(const struct mg_signers *ss, const struct sshsig *s,
                       const char *ns, time_t now, const char *fp,
                       const struct signer **out, struct mg_err *err) {
  const struct signer *first = NULL;
  for (size_t i = 0; i < ss->n; i++) {
    const struct signer *sg = &ss->v[i];
    if (memcmp(sg->key, s->key, ED25519_KEY_LEN) != 0)
      continue;
    if ((!sg->namespaces || pattern_list_match(ns, sg->namespaces)) &&
        (!sg->has_after || now >= sg->after) &&
        (!sg->has_before || now <= sg->before)) {
      *out = sg;
      return 0;
    }
    if (!first)
      first = sg;
  }
  char when[32];
  if (!first)
    return mg_err_set(err, -EKEYREJECTED, "key %s is not listed in %s", fp,
                      ss->name);
  if (first->namespaces && !pattern_list_match(ns, first->namespaces))
    return mg_err_set(err, -EKEYREJECTED,
                      "key %s at %s:%zu is not allowed for namespace \"%s\"",
                      fp, ss->name, first->line, ns);
  if (first->has_after && now < first->after) {
    fmt_time(first->after, when);
    return mg_err_set(err, -EKEYREJECTED,
                      "key %s at %s:%zu is not valid before %s", fp, ss->name,
                      first->line, when);
  }
  fmt_time(first->before, when);
  return mg_err_set(err, -EKEYREJECTED, "key %s at %s:%zu expired at %s", fp,
                    ss->name, first->line, when);
}

int mg_sshsig_verify(const struct mg_signers *signers, const char *ns,
                     const void *data, size_t len, const char *armored,
                     size_t armored_len, time_t now,
                     struct mg_sshsig_result *res, struct mg_err *err) {
  static const unsigned char empty[1];
  unsigned char *blob = NULL;
  struct mg_buf tbs;
  EVP_MD_CTX *mctx = NULL;
  EVP_PKEY *pkey = NULL;
  struct sshsig s = {0};
  const struct signer *sg = NULL;
  size_t bloblen = 0;
  char fp[64];
  int rc;
  mg_buf_init(&tbs);
  if (res)
    memset(res, 0, sizeof(*res));
  if (!signers || !ns || !*ns || (!data && len) || !armored)
    return mg_err_set(err, -EINVAL, "mg_sshsig_verify: bad arguments");
  if (!data)
    data = empty;
  if ((rc = dearmor(armored, armored_len, &blob, &bloblen, err)) ||
      (rc = parse_blob(blob, bloblen, ns, &s, err)))
    goto out;
  fingerprint(s.pub, s.pubn, fp);
  if (res)
    snprintf(res->fingerprint, sizeof(res->fingerprint), "%s", fp);
  if ((rc = find_signer(signers, &s, ns, now, fp, &sg, err)))
    goto out;

  /* What was signed: "SSHSIG" || string ns || string "" || string halg ||
   * string H(data); the blob's reserved field is not part of it. */
  const EVP_MD *md =
      bytes_eq(s.halg, s.halgn, "sha256") ? EVP_sha256() : EVP_sha512();
  unsigned char h[EVP_MAX_MD_SIZE];
  unsigned int hl = 0;
  if (!EVP_Digest(data, len, h, &hl, md, NULL)) {
    rc = mg_err_set(err, -EIO, "hashing the signed data failed");
    goto out;
  }
  mg_buf_append(&tbs, "SSHSIG", 6);
  put_string(&tbs, s.ns, s.nsn);
  put_string(&tbs, "", 0);
  put_string(&tbs, s.halg, s.halgn);
  put_string(&tbs, h, hl);
  if (tbs.oom) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  if (!(pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, s.key,
                                           ED25519_KEY_LEN)) ||
      !(mctx = EVP_MD_CTX_new()) ||
      EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, pkey) != 1) {
    rc = mg_err_set(err, -EIO, "OpenSSL could not set up Ed25519");
    goto out;
  }
  /* Ed25519 is one-shot: no md, no Update/Final. */
  if (EVP_DigestVerify(mctx, s.sig, ED25519_SIG_LEN,
                       (const unsigned char *)tbs.data, tbs.len) != 1) {
    rc = mg_err_set(err, -EBADE, "signature by key %s does not match the data",
                    fp);
    goto out;
  }
  if (res) {
    size_t pl = strlen(sg->principals);
    if (pl >= sizeof(res->principal)) /* too long: the first one only */
      pl = strcspn(sg->principals, ",");
    snprintf(res->principal, sizeof(res->principal), "%.*s", (int)pl,
             sg->principals);
  }
out:
  if (rc)
    ERR_clear_error(); /* leave no stale errors for the TLS code */
  EVP_MD_CTX_free(mctx);
  EVP_PKEY_free(pkey);
  mg_buf_free(&tbs);
  free(blob);
  return rc;
}
