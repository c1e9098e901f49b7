/* lg_tls.h — wss:// for the load generator: an OpenSSL client context and
 * non-blocking TLS reads, writes and handshakes for lg_conn.c.
 *
 * Certificate verification is OFF unless asked for (--tls-verify or
 * --tls-ca): the benchmark talks to servers on loopback with self-signed
 * certificates.  No session cache: every connection, and so every
 * handshake of the handshakes scenario, is a full TLS handshake.
 *
 * Each call that cannot finish now says which readiness it waits for: a
 * read may need the socket writable and a write may need it readable (TLS
 * 1.3 key updates, renegotiation in 1.2).  lg_conn.c keeps those as
 * cross-direction flags on the connection and arms epoll accordingly.
 * Fatal TLS errors end the process through lg_fail() with OpenSSL's
 * reason, like every other unexpected event.
 */
#ifndef LG_TLS_H
#define LG_TLS_H

#include <stddef.h>
#include <sys/types.h>

typedef struct lg_conn lg_conn_t;

/* Outcomes of a call that did not complete (or did). */
enum {
    LG_TLS_DONE       = 0,
    LG_TLS_WANT_READ  = 1,   /* call again once the socket is readable */
    LG_TLS_WANT_WRITE = 2    /* call again once the socket is writable */
};

typedef struct lg_tls_opts {
    int         verify;      /* 1: verify the server's chain and name */
    const char *ca_file;     /* PEM trust anchors (implies verify); NULL: system store */
    const char *sni;         /* server name sent and, with verify, checked; NULL: none */
    const char *ip;          /* numeric host, checked with verify when sni is NULL */
} lg_tls_opts_t;

/* An SSL_CTX for every connection of a loop.  Returns it, or NULL with a
 * message in err. */
struct ssl_ctx_st *lg_tls_ctx_new(const lg_tls_opts_t *o, char *err, size_t errlen);
void lg_tls_ctx_free(struct ssl_ctx_st *ctx);

/* Attaches a new client SSL to c->fd (c->ssl).  `release_buffers` frees
 * the 16-34 KiB record buffers whenever the connection is idle: good for
 * the idle scenario, an allocation per read for the busy ones. */
void lg_tls_attach(lg_conn_t *c, struct ssl_ctx_st *ctx, const char *sni, int release_buffers);
/* Runs the handshake as far as it goes: LG_TLS_DONE, or a WANT. */
int  lg_tls_handshake(lg_conn_t *c);
/* Reads decrypted bytes into buf[0..cap), calling SSL_read until the buffer
 * is full or nothing more is there.  Returns the bytes read (> 0), 0 at the
 * end of the stream (close_notify, or the TCP FIN without one), or -1 when
 * nothing is there now; *want is then LG_TLS_WANT_READ or _WRITE. */
ssize_t lg_tls_read(lg_conn_t *c, void *buf, size_t cap, int *want);
/* Writes p[0..n); returns the bytes taken (> 0) or -1 with *want set. */
ssize_t lg_tls_write(lg_conn_t *c, const void *p, size_t n, int *want);
/* Decrypted or buffered bytes that a read would return without the socket
 * becoming readable again. */
int  lg_tls_pending(const lg_conn_t *c);
/* "TLSv1.3/TLS_AES_256_GCM_SHA384" for the report. */
void lg_tls_describe(const lg_conn_t *c, char *out, size_t cap);
void lg_tls_detach(lg_conn_t *c);

#endif
