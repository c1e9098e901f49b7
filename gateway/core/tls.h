/* tls.h — the server's TLS context (OpenSSL), for wss:// and https://.
 *
 * One SSL_CTX per server, loaded once at start-up: certificate chain and
 * key (PEM), TLS 1.2 or 1.3 as the minimum, the tls_ciphers list for TLS
 * 1.2 (ECDHE + AEAD by default), session tickets on, and
 * SSL_MODE_RELEASE_BUFFERS so an idle TLS connection holds no 16 KiB record
 * buffers (measured per idle connection in docs/performance.md).
 * The per-connection I/O that uses it lives in conn.c. */
#ifndef WSGW_TLS_H
#define WSGW_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

/* Returns a context, or NULL with err filled ("tls_cert /path: ...") when
 * a file cannot be read, the key does not match the certificate, etc. */
SSL_CTX *tls_ctx_new(const char *cert, const char *key, int min_tls13, const char *ciphers,
                     char *err, size_t errlen);
void tls_ctx_free(SSL_CTX *ctx);

/* The newest OpenSSL error on this thread as text ("" when none); clears
 * the error queue. */
const char *tls_last_error(char *buf, size_t cap);

#endif
