/*
 * sshsig.h — SSH signatures as git makes them with gpg.format=ssh
 * (openssh PROTOCOL.sshsig), checked against an OpenSSH allowed_signers
 * file (ssh-keygen(1), "ALLOWED SIGNERS"), verified with OpenSSL.
 * Ed25519 keys only: what ssh-keygen -t ed25519 makes and what the city's
 * administrators are given.  Requirement: packs are activated only when
 * signed by a listed administrator (architecture: Security model).
 */
#ifndef MG_SSHSIG_H
#define MG_SSHSIG_H

#include <stddef.h>
#include <time.h>

#include "err.h"

struct mg_signers; /* a parsed allowed_signers file */

/* Parse an allowed_signers file.  Each problem is an error naming
 * FILE:LINE and the rule (unknown key type, bad base64, unknown option,
 * malformed valid-after, ...); nothing is silently skipped.  Comment and
 * blank lines are allowed.  0 and *out, or -EINVAL (-ENOMEM, -EIO). */
int mg_signers_load(const char *path, struct mg_signers **out,
                    struct mg_err *err);
int mg_signers_parse(const char *text, size_t len, const char *name,
                     struct mg_signers **out, struct mg_err *err);
void mg_signers_free(struct mg_signers *s); /* NULL is fine */
size_t mg_signers_count(const struct mg_signers *s);

struct mg_sshsig_result {
  char principal[256];  /* principals field of the matching line (or its
                           first principal when longer); success only */
  char fingerprint[64]; /* "SHA256:..." as ssh-keygen -l prints it; set as
                           soon as the blob parses, for logging refusals */
};

/* Verify the armored signature (-----BEGIN SSH SIGNATURE----- ...) over
 * data[0..len) for namespace ns (git uses "git") at time `now` (for
 * valid-after/valid-before).  Returns:
 *   0             good, and *res names the signer
 *   -EINVAL       NULL arguments or an empty ns
 *   -EBADMSG      malformed armor or blob (err names the field and rule),
 *                 or a signature made for another namespace
 *   -ENOTSUP      a key or hash type other than ssh-ed25519 / sha256|sha512
 *   -EKEYREJECTED the key is not in signers, is not allowed for ns, or is
 *                 outside its validity period
 *   -EBADE        the signature does not match the data
 *   -EIO, -ENOMEM OpenSSL or allocation failure
 * res may be NULL.  Option values in allowed_signers are double-quoted as
 * OpenSSH requires (valid-after="20300101Z"). */
int mg_sshsig_verify(const struct mg_signers *signers, const char *ns,
                     const void *data, size_t len, const char *armored,
                     size_t armored_len, time_t now,
                     struct mg_sshsig_result *res, struct mg_err *err);

#endif
