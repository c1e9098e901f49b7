/* lg_conn.h — the load generator's client side: one epoll loop, many
 * non-blocking WebSocket client connections built on proto/.
 *
 * A connection goes CONNECTING -> [TLS (wss:// only)] -> HANDSHAKE (request
 * written, reading the 101) -> WELCOME (upgraded, waiting for
 * {"op":"welcome"}) -> OPEN -> CLOSING (our close frame sent) -> DONE.
 * Server frames are parsed with a client-role ws_reader_t; our frames are
 * masked with ws_frame_write_header and ws_mask, and never compressed.
 * Pings are answered with pongs.
 *
 * Transport (lg_tls.h): plain TCP, or TLS when the URL is wss://.  Every
 * read and write goes through one pair of functions in lg_conn.c that
 * knows both; the TLS cross-direction waits (a read that needs the socket
 * writable, a write that needs it readable) are two fields of the
 * connection, and the epoll interest is computed from the state, those
 * fields and the output queue in one place (lg_conn_arm).  A TLS
 * connection whose read stopped with decrypted bytes still inside OpenSSL
 * goes on the loop's pending list and is read again after the next poll,
 * which then does not sleep.
 *
 * Extensions (lg_deflate.h): with --deflate, permessage-deflate is offered
 * and the answer checked.  A compressed message that arrives whole in one
 * read is taken off the wire here (its frame header parsed with the frame
 * codec) and inflated through the loop's cache; anything else — a message
 * split over reads, fragmented, or a control frame — goes through the
 * reader, which inflates with the same inflater.
 *
 * Dialect (lg_sio.h): with --dialect sio every envelope is wrapped in and
 * unwrapped from a Socket.IO event, at one point each in lg_conn.c; the
 * scenario's callbacks see wsgw's envelopes either way.
 *
 * Anything the benchmark does not expect — a refused or malformed
 * handshake, a protocol error, a binary frame, a close frame or EOF we did
 * not ask for, a socket or TLS error — is fatal: lg_fail() prints one line
 * naming the connection and exits with status 1.  A load generator that
 * keeps going after an error reports numbers that mean nothing.
 *
 * Memory: the loop owns one read buffer and one frame-building buffer; a
 * connection owns a reader (~150 bytes), its SSL object (wss://), its own
 * inflate stream (permessage-deflate with server context takeover only),
 * and heap only while it has a partial handshake response or output the
 * socket did not take.
 */
#ifndef LG_CONN_H
#define LG_CONN_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "lg_deflate.h"
#include "ws_alloc.h"
#include "ws_message.h"

typedef struct lg_loop lg_loop_t;
typedef struct lg_conn lg_conn_t;

typedef enum lg_state {
    LG_IDLE = 0,      /* no socket */
    LG_CONNECTING,    /* connect() in progress */
    LG_TLS,           /* TLS handshake in progress (wss://) */
    LG_HANDSHAKE,     /* request written, reading the response */
    LG_WELCOME,       /* upgraded, waiting for the welcome envelope */
    LG_OPEN,
    LG_CLOSING,       /* our close frame sent: waiting for theirs and EOF */
    LG_DONE           /* socket closed cleanly */
} lg_state_t;

enum { LG_DIALECT_WSGW = 0, LG_DIALECT_SIO = 1 };

/* Scenario callbacks, each given the connection. */
typedef struct lg_callbacks {
    void (*on_open)(lg_conn_t *c);                                /* welcome read */
    void (*on_text)(lg_conn_t *c, const uint8_t *p, size_t n);   /* any later envelope */
    void (*on_closed)(lg_conn_t *c);                              /* a close we asked for ended */
} lg_callbacks_t;

typedef struct lg_loop_opts {
    const char *url;            /* ws://HOST:PORT/PATH or wss://HOST:PORT/PATH */
    const char *bind;           /* source IPv4 address of every socket, or NULL */
    int         deflate;        /* offer permessage-deflate */
    int         dialect;        /* LG_DIALECT_*; sio replaces the URL's path */
    const char *sni;            /* wss://: server name sent; NULL: "localhost" when the
                                   URL says localhost, none for a numeric host */
    int         tls_verify;     /* wss://: verify the certificate (off by default) */
    const char *tls_ca;         /* wss://: trust anchors (implies tls_verify) */
    int         tls_release_buffers; /* wss://: free TLS buffers of quiet connections */
    size_t      size_hint;      /* usual size of a message's data: sizes the inflate cache */
    size_t      distinct_hint;  /* different messages in flight at once (fan-out window) */
} lg_loop_opts_t;

struct lg_conn {
    lg_loop_t  *loop;
    int         fd;
    uint32_t    idx;          /* the scenario's index, for messages */
    uint8_t     state;        /* lg_state_t */
    uint8_t     armed;        /* LG_EV_* registered with epoll; 0: not registered */
    uint8_t     close_seen;   /* the server's close frame arrived */
    uint8_t     id_len;
    uint8_t     read_want;    /* TLS: what the last read or handshake step waits for */
    uint8_t     write_want;   /* TLS: what the queued output waits for */
    uint8_t     pmd;          /* permessage-deflate agreed on this connection */
    uint8_t     at_boundary;  /* the reader holds nothing partial: a frame starts at the next byte */
    uint8_t     sio_stage;    /* LG_SIO_* (--dialect sio) */
    uint8_t     pending;      /* on the loop's pending list */
    uint8_t     tls_drained;  /* TLS: the last read() of the socket came back short */
    char        id[48];       /* connection id from the welcome */
    char        key[25];      /* Sec-WebSocket-Key sent */
    ws_reader_t reader;
    ws_buf_t    hs;           /* handshake response so far (freed once upgraded) */
    ws_buf_t    out;          /* bytes the socket did not take */
    size_t      out_off;
    struct ssl_st *ssl;       /* wss:// */
    ws_inflater_t *inflater;  /* permessage-deflate with server context takeover */
    lg_conn_t  *pend_next;    /* the loop's pending list */
    /* Scenario state: free for the scenario's use. */
    uint64_t    seq;
    uint64_t    sent_ns;
    uint64_t    count;
    uint64_t    rank;         /* order in which the join was acked, from 0 */
    uint64_t   *bits;
};

struct lg_loop {
    int                 epfd;
    struct sockaddr_in  addr;
    struct sockaddr_in  src;         /* --bind, when bind_src */
    int                 bind_src;
    char                host[300];   /* Host header: host:port */
    char                path[256];
    char                sni[256];    /* empty: none */
    int                 tls;         /* wss:// */
    struct ssl_ctx_st  *tls_ctx;
    int                 tls_release_buffers;
    char                tls_desc[96];/* protocol and cipher of the first TLS connection */
    int                 dialect;
    lg_pmd_t            pmd;
    lg_callbacks_t      cb;
    void               *ud;          /* the scenario */
    uint8_t            *rbuf;        /* one read buffer for every connection */
    size_t              rcap;
    ws_buf_t            wbuf;        /* frames are built here */
    lg_conn_t          *pend_head;   /* TLS connections with bytes left inside OpenSSL */
    uint64_t            now_ns;      /* CLOCK_MONOTONIC at the last read */
    uint64_t            rng;         /* masks and keys: speed, not secrecy */
    uint64_t            open;        /* sockets open now */
    uint64_t            frames_in;   /* counters for the report */
    uint64_t            bytes_in;    /* application bytes (decrypted, before inflating) */
    uint64_t            bytes_out;
};

/* Parses ws://HOST:PORT/PATH or wss://... (HOST numeric IPv4 or
 * "localhost") into the loop, checks --bind, sets up TLS and deflate, and
 * creates the epoll instance.  Returns 0, or -1 with a message in err. */
int  lg_loop_init(lg_loop_t *l, const lg_loop_opts_t *o, const lg_callbacks_t *cb, void *ud,
                  char *err, size_t errlen);
/* Waits up to timeout_ms for events and handles them (0 when connections
 * are on the pending list).  Returns the number of events handled (0 on
 * timeout or when a signal interrupted the wait). */
int  lg_loop_poll(lg_loop_t *l, int timeout_ms);
void lg_loop_free(lg_loop_t *l);

uint64_t lg_now_ns(void);

/* Starts a connection (c is zeroed except idx and bits, which are kept). */
void lg_conn_start(lg_loop_t *l, lg_conn_t *c);
/* Sends one envelope as a masked text frame (wrapped for the dialect);
 * what the socket does not take is kept and written when it becomes
 * writable. */
void lg_conn_send_text(lg_conn_t *c, const void *p, size_t n);
/* Sends close 1000 and waits for the server's close and EOF; on_closed
 * runs then.  Only from LG_OPEN. */
void lg_conn_close(lg_conn_t *c);
/* Closes the socket without a close handshake (end of a scenario). */
void lg_conn_drop(lg_conn_t *c);

/* Prints "loadgen: conn N (id): message" and exits 1. */
void lg_fail(const lg_conn_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

#endif
