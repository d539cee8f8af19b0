/*
 * tls.h — the listener's certificate.  On first start a box has none: make
 * a self-signed one (EC P-256, SAN for the host name, localhost and the
 * listen address) so the counter works before the city installs its own.
 */
#ifndef MG_TLS_H
#define MG_TLS_H

#include <stddef.h>

#include "err.h"

/* When neither cert_path nor key_path exists, create both (key mode 0600,
 * written to a temp file and renamed).  When only one exists: an error,
 * never overwrite.  fingerprint (out, may be NULL) receives the SHA-256 of
 * the certificate as "AB:CD:..." for technicians to compare on a tablet. */
int mg_tls_ensure(const char *cert_path, const char *key_path,
                  const char *listen_host, char *fingerprint, size_t fplen,
                  struct mg_err *err);

#endif
