/* tls.h - the server's TLS contexts: a default certificate plus SNI ones. */
#ifndef MOONPOST_TLS_H
#define MOONPOST_TLS_H

#include <openssl/ssl.h>

#include <moonpost/config.h>

struct mp_tls;

/* Builds contexts from the config's `tls` records (TLS 1.2 and newer only).
 * Returns NULL with *error_r NULL when the config has no certificate, and
 * NULL with *error_r ("file:line: cert.pem: reason", caller frees) when one
 * cannot be loaded. The caller owns the result. */
struct mp_tls *mp_tls_new(const struct mp_config *cfg, char **error_r);
/* Adds a reference (connections hold one while they use the contexts). */
struct mp_tls *mp_tls_ref(struct mp_tls *tls);
/* Drops a reference; sets *tls NULL. */
void mp_tls_unref(struct mp_tls **tls);
/* A server-side SSL for fd, picking the certificate by SNI during the
 * handshake. NULL on failure (logged). The caller frees it with SSL_free. */
SSL *mp_tls_session_new(struct mp_tls *tls, int fd);
/* The last OpenSSL error as text, or fallback when there is none; the
 * queue is cleared. Static string, valid until the next call. */
const char *mp_tls_error_string(const char *fallback);

#endif
