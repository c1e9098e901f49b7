/* lg_tls.c — see lg_tls.h. */
#include "lg_tls.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "lg_conn.h"

#define LG_TLS_READ_AHEAD (64u << 10)   /* bytes one read() may take off the socket */

/* OpenSSL's reason for the last failure, or `fallback`. */
static const char *lg_tls_reason(char *buf, size_t cap, const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    if (!e) return fallback;
    ERR_error_string_n(e, buf, cap);
    return buf;
}

/* ---- the socket BIO -------------------------------------------------------------
 * A socket BIO like OpenSSL's, but one that tells the connection whether its
 * last read() came back short: the socket was drained then.  With that,
 * lg_tls_read() stops once OpenSSL holds nothing more and the socket is
 * empty, instead of calling read() again to be told EAGAIN — one syscall
 * per readiness saved, which for a fan-out of small messages is one per
 * delivery. */

static BIO_METHOD *lg_bio_method;

static int lg_bio_read(BIO *b, char *buf, int len)
{
    lg_conn_t *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    for (;;) {
        ssize_t n = read(c->fd, buf, (size_t)len);
        if (n >= 0) {
            c->tls_drained = n < len;
            if (n == 0) BIO_set_flags(b, BIO_FLAGS_IN_EOF);   /* OpenSSL asks BIO_eof() */
            return (int)n;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->tls_drained = 1;
            BIO_set_retry_read(b);
        }
        return -1;
    }
}

static int lg_bio_write(BIO *b, const char *buf, int len)
{
    lg_conn_t *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    for (;;) {
        ssize_t n = write(c->fd, buf, (size_t)len);
        if (n >= 0) return (int)n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(b);
        return -1;
    }
}

static long lg_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num, (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_EOF:   return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
    default:             return 0;
    }
}

static int lg_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static int lg_bio_setup(char *err, size_t errlen)
{
    if (lg_bio_method) return 0;
    lg_bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "loadgen socket");
    if (!lg_bio_method || !BIO_meth_set_read(lg_bio_method, lg_bio_read) ||
        !BIO_meth_set_write(lg_bio_method, lg_bio_write) ||
        !BIO_meth_set_ctrl(lg_bio_method, lg_bio_ctrl) ||
        !BIO_meth_set_create(lg_bio_method, lg_bio_create)) {
        snprintf(err, errlen, "TLS: cannot set up the socket BIO");
        return -1;
    }
    return 0;
}

/* ---- context ------------------------------------------------------------------- */

SSL_CTX *lg_tls_ctx_new(const lg_tls_opts_t *o, char *err, size_t errlen)
{
    char why[256];
    if (lg_bio_setup(err, errlen) != 0) return NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, errlen, "SSL_CTX_new: %s", lg_tls_reason(why, sizeof why, "failed"));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* A full handshake per connection: no client session cache, no tickets
     * offered back.  A server closing without close_notify after the
     * WebSocket close handshake is an end of stream, not an error. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Writes come from lg_conn's output queue, which may move (realloc)
     * between a WANT_WRITE and the retry, and may have grown meanwhile. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Without read-ahead OpenSSL reads each record with two read() calls
     * (header, then body): a fan-out of small messages would cost the
     * generator two syscalls per delivery.  With it, one read takes as
     * many records as the buffer holds; what it takes beyond the record
     * returned stays in OpenSSL (lg_tls_pending). */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, LG_TLS_READ_AHEAD);
    if (o->verify || o->ca_file) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        int ok = o->ca_file ? SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL)
                            : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            snprintf(err, errlen, "TLS trust anchors %s: %s", o->ca_file ? o->ca_file : "(system)",
                     lg_tls_reason(why, sizeof why, "cannot load"));
            SSL_CTX_free(ctx);
            return NULL;
        }
        X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(ctx);
        int set = o->sni ? X509_VERIFY_PARAM_set1_host(vp, o->sni, 0)
                         : X509_VERIFY_PARAM_set1_ip_asc(vp, o->ip);
        if (set != 1) {
            snprintf(err, errlen, "TLS: cannot check the server name %s", o->sni ? o->sni : o->ip);
            SSL_CTX_free(ctx);
            return NULL;
        }
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    return ctx;
}

void lg_tls_ctx_free(SSL_CTX *ctx)
{
    SSL_CTX_free(ctx);
    BIO_meth_free(lg_bio_method);
    lg_bio_method = NULL;
}

void lg_tls_attach(lg_conn_t *c, SSL_CTX *ctx, const char *sni, int release_buffers)
{
    c->ssl = SSL_new(ctx);
    BIO *bio = BIO_new(lg_bio_method);
    if (!c->ssl || !bio) lg_fail(c, "TLS: SSL_new failed");
    BIO_set_data(bio, c);
    SSL_set_bio(c->ssl, bio, bio);      /* the SSL owns the one reference */
    c->tls_drained = 0;
    if (sni && SSL_set_tlsext_host_name(c->ssl, sni) != 1) lg_fail(c, "TLS: bad SNI name %s", sni);
    if (release_buffers) SSL_set_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);
    SSL_set_connect_state(c->ssl);
}

/* The outcome of a failed SSL call: a WANT, or the end of the process. */
static int lg_tls_want(lg_conn_t *c, int rc, const char *what)
{
    int e = SSL_get_error(c->ssl, rc);
    char why[256];
    switch (e) {
    case SSL_ERROR_WANT_READ:  return LG_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE: return LG_TLS_WANT_WRITE;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_last_error()) break;
        lg_fail(c, "TLS %s: %s", what, errno ? strerror(errno) : "connection closed by the server");
    case SSL_ERROR_SSL: {
        long v = SSL_get_verify_result(c->ssl);
        if (v != X509_V_OK)
            lg_fail(c, "TLS %s: certificate verification failed: %s", what,
                    X509_verify_cert_error_string(v));
        break;
    }
    default:
        break;
    }
    lg_fail(c, "TLS %s: %s", what, lg_tls_reason(why, sizeof why, "failed"));
}

int lg_tls_handshake(lg_conn_t *c)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(c->ssl);
    if (rc == 1) return LG_TLS_DONE;
    return lg_tls_want(c, rc, "handshake");
}

ssize_t lg_tls_read(lg_conn_t *c, void *buf, size_t cap, int *want)
{
    size_t got = 0;
    *want = LG_TLS_DONE;
    while (got < cap) {
        size_t room = cap - got;
        ERR_clear_error();
        int n = SSL_read(c->ssl, (char *)buf + got, room > INT_MAX ? INT_MAX : (int)room);
        if (n > 0) {
            got += (size_t)n;
            /* The last read() drained the socket and OpenSSL holds nothing
             * more: done, without a read() that would say EAGAIN. */
            if (c->tls_drained && !SSL_has_pending(c->ssl)) {
                *want = LG_TLS_WANT_READ;
                return (ssize_t)got;
            }
            continue;
        }
        if (SSL_get_error(c->ssl, n) == SSL_ERROR_ZERO_RETURN) return (ssize_t)got;   /* 0: EOF */
        *want = lg_tls_want(c, n, "read");
        return got ? (ssize_t)got : -1;
    }
    return (ssize_t)got;
}

ssize_t lg_tls_write(lg_conn_t *c, const void *p, size_t n, int *want)
{
    ERR_clear_error();
    int w = SSL_write(c->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
    *want = LG_TLS_DONE;
    if (w > 0) return w;
    *want = lg_tls_want(c, w, "write");
    return -1;
}

int lg_tls_pending(const lg_conn_t *c)
{
    return c->ssl && SSL_has_pending(c->ssl);
}

void lg_tls_describe(const lg_conn_t *c, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
}

void lg_tls_detach(lg_conn_t *c)
{
    SSL_free(c->ssl);     /* no close_notify: the WebSocket close handshake ended the session */
    c->ssl = NULL;
}
