/* tls.c — see tls.h. */
#include "tls.h"

#include <openssl/err.h>
#include <stdio.h>

const char *tls_last_error(char *buf, size_t cap)
{
    unsigned long e = ERR_get_error();
    if (!e) {
        if (cap) buf[0] = '\0';
    } else {
        ERR_error_string_n(e, buf, cap);
    }
    ERR_clear_error();
    return buf;
}

SSL_CTX *tls_ctx_new(const char *cert, const char *key, int min_tls13,
                     char *err, size_t errlen)
{
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "TLS: cannot create a context: %s", tls_last_error(why, sizeof why));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, min_tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    /* Partial writes let a slow socket take whole records at a time;
     * a moving buffer lets a retry come from the rebuilt (identical)
     * scratch copy; released buffers keep idle connections small. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                             SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(err, errlen, "tls_cert %s: %s", cert, tls_last_error(why, sizeof why));
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        snprintf(err, errlen, "tls_key %s: %s", key, tls_last_error(why, sizeof why));
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "tls_key %s does not match tls_cert %s: %s", key, cert,
                 tls_last_error(why, sizeof why));
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

void tls_ctx_free(SSL_CTX *ctx)
{
    SSL_CTX_free(ctx);
}
