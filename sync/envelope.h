/*
 * envelope.h — end-to-end sealed records between a box and the tenant
 * (issue 8: X1, X3).  A TLS-terminating proxy in the city network sees only
 * envelopes: each is encrypted to the recipient's X25519 key and signed with
 * the sender's Ed25519 key, so the tenant can prove which box sent what.
 *
 * Format "MGE1" (all integers big-endian):
 *   off 0      4   magic "MGE1"
 *   off 4      1   version = 1
 *   off 5     32   sender's ephemeral X25519 public key
 *   off 37    12   AES-GCM nonce (random)
 *   off 49     4   n = ciphertext length
 *   off 53     n   AES-256-GCM ciphertext
 *   off 53+n  16   GCM tag
 *   off 69+n  64   Ed25519 signature by the sender over bytes [0, 69+n)
 *                  followed by the context string
 * AES key = HKDF-SHA256(ikm = X25519(ephemeral, recipient),
 *                       salt = ephemeral_pub || recipient_pub,
 *                       info = "madoguchi envelope v1");
 * GCM AAD = bytes [0, 53) followed by the context string.
 *
 * One ephemeral key may seal many records (a sealer: the records of one
 * batch, each with its own random nonce and its own signature): the key
 * agreement is then paid once a batch, not once a record, and an opener
 * keeps the AES keys of the last few ephemeral keys it saw (N3).  The
 * ephemeral private key never leaves the sealer and is freed with it.
 *
 * The context binds an envelope to its record (docs/tenant-api.md):
 *   "madoguchi/t1 application <app_id> city <city> box <box>" and so on;
 * an envelope moved to another record, city or box does not open.
 *
 * Thread-safe (OpenSSL 3); nothing is logged.  Library mgenvelope (OpenSSL
 * and core/err.c only) so the daemon and madoguchi-tenantd share it.
 */
#ifndef MG_ENVELOPE_H
#define MG_ENVELOPE_H
#include <stddef.h>

#include <openssl/evp.h>

#include "err.h"

#define MG_ENV_OVERHEAD (53 + 16 + 64)
#define MG_ENV_KEY_B64 45 /* 32 raw bytes in base64 (44) + NUL */

enum mg_env_key_type { MG_ENV_ED25519 = 1, MG_ENV_X25519 = 2 };

/* Load the PKCS#8 PEM private key at `path` of `type`; when absent create
 * it (directory 0700, file 0600, fsynced, temp name then rename).  A key of
 * another type, or a file readable by group/others, is refused (-EINVAL /
 * -EPERM) naming the file and the rule.  *out: caller frees with
 * EVP_PKEY_free.  0 or negative errno. */
int mg_env_key_load(const char *path, enum mg_env_key_type type,
                    EVP_PKEY **out, struct mg_err *err);
/* The raw 32-byte public key of `k` in standard base64 (44 chars + NUL). */
int mg_env_pub_b64(EVP_PKEY *k, char out[MG_ENV_KEY_B64]);
/* A public key from its base64 (as above); -EINVAL naming the rule. */
int mg_env_pub_from_b64(const char *b64, enum mg_env_key_type type,
                        EVP_PKEY **out, struct mg_err *err);

/* Seal `len` bytes of `plain` for `recipient` (X25519, public part used),
 * signed by `sender` (Ed25519 private).  *out malloc'd, len +
 * MG_ENV_OVERHEAD bytes.  0, or -EINVAL (wrong key types), -ENOMEM, -EIO. */
int mg_env_seal(EVP_PKEY *recipient, EVP_PKEY *sender, const char *context,
                const void *plain, size_t len, unsigned char **out,
                size_t *out_len, struct mg_err *err);

/* Check the signature with `sender_pub` (Ed25519) first, then decrypt with
 * `recipient` (X25519 private).  *plain malloc'd with one NUL after
 * *plain_len.  0; -EBADMSG: malformed (err names the offset and the rule:
 * "envelope: offset 49: ciphertext length 900 exceeds the 120 bytes
 * left"), bad signature, wrong context or failed authentication
 * (tampered); -ENOMEM; -EIO. */
int mg_env_open(EVP_PKEY *recipient, EVP_PKEY *sender_pub,
                const char *context, const void *in, size_t len,
                unsigned char **plain, size_t *plain_len, struct mg_err *err);

/* A sealing session: one ephemeral key for many records to `recipient`,
 * signed by `sender` (references taken).  One thread at a time per sealer.
 * mg_env_seal is new + seal + free.  0, -EINVAL, -ENOMEM or -EIO. */
struct mg_env_sealer;
int mg_env_sealer_new(EVP_PKEY *recipient, EVP_PKEY *sender,
                      struct mg_env_sealer **out, struct mg_err *err);
int mg_env_sealer_seal(struct mg_env_sealer *s, const char *context,
                       const void *plain, size_t len, unsigned char **out,
                       size_t *out_len, struct mg_err *err);
void mg_env_sealer_free(struct mg_env_sealer *s); /* wipes the AES key */

/* An opening session for records of one sender to `recipient` (references
 * taken), keeping the AES keys of the last ephemeral keys whose records
 * verified.  One thread at a time per opener.  mg_env_open is new + open +
 * free; the results are mg_env_open's. */
struct mg_env_opener;
int mg_env_opener_new(EVP_PKEY *recipient, EVP_PKEY *sender_pub,
                      struct mg_env_opener **out, struct mg_err *err);
int mg_env_opener_open(struct mg_env_opener *o, const char *context,
                       const void *in, size_t len, unsigned char **plain,
                       size_t *plain_len, struct mg_err *err);
void mg_env_opener_free(struct mg_env_opener *o); /* wipes the AES keys */

/* Standard base64 (no line breaks) of `len` bytes; *out malloc'd, NUL
 * terminated.  And back: -EINVAL naming the offset of the first bad
 * character. */
int mg_env_b64(const void *in, size_t len, char **out);
int mg_env_unb64(const char *in, size_t in_len, unsigned char **out,
                 size_t *out_len, struct mg_err *err);

#endif
