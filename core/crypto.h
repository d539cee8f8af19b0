/*
 * crypto.h — residents' data at rest (architecture: "Residents' data at
 * rest is encrypted (AES-256-GCM, key file readable by the daemon only)").
 *
 * A sealed blob is: version byte 0x01 | 12-byte random nonce | ciphertext |
 * 16-byte tag.  The associated data (a row id) binds a blob to its row, so
 * a blob copied into another row does not open.
 *
 * Thread-safe (OpenSSL 3).  Keys are never logged.
 */
#ifndef MG_CRYPTO_H
#define MG_CRYPTO_H
#include <stddef.h>
#include "err.h"

#define MG_SEAL_OVERHEAD (1 + 12 + 16)

struct mg_key {
  unsigned char k[32];
};

/* Load the 32-byte key file at `path`; when it is absent, create it (and
 * its directory, 0700) with fresh random bytes, mode 0600, fsynced, written
 * to a temporary name then renamed.  A file of another size, or readable by
 * group/others, is refused (-EINVAL / -EPERM) with err naming the file and
 * the rule.  0 on success. */
int mg_key_load(const char *path, struct mg_key *key, struct mg_err *err);
/* Wipe the key (OPENSSL_cleanse). */
void mg_key_wipe(struct mg_key *key);

/* Seal `len` bytes: *out (malloc'd) gets len + MG_SEAL_OVERHEAD bytes.
 * 0, or -ENOMEM / -EIO. */
int mg_seal(const struct mg_key *key, const char *aad, const void *in,
            size_t len, unsigned char **out, size_t *out_len);
/* Open a sealed blob: *out (malloc'd, one extra NUL byte after *out_len so
 * text can be used as a C string).  0, or -EBADMSG when the blob is
 * malformed, of another version, or fails authentication (wrong key, wrong
 * aad, tampered), -ENOMEM. */
int mg_open(const struct mg_key *key, const char *aad, const void *in,
            size_t len, unsigned char **out, size_t *out_len);

/* Lower-case hex SHA-256 of `len` bytes (tokens are looked up by it).
 * 0, or -EIO. */
int mg_sha256_hex(const void *data, size_t len, char out[65]);

#endif
