/* server_int.h — private layout of the server and its connections, shared by
 * the core's .c files (server.c, conn.c, conn_write.c, emit.c, handshake.c,
 * http_routes.c, hooks.c).  Features reach the core through core.h; those
 * that still read a field here are listed in docs/architecture.md. */
#ifndef WSGW_SERVER_INT_H
#define WSGW_SERVER_INT_H

#include <ev.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "cidr.h"
#include "config.h"
#include "core.h"
#include "envelope.h"
#include "idmap.h"
#include "metrics.h"
#include "outq.h"
#include "poller.h"
#include "ratelimit.h"
#include "rooms.h"
#include "strmap.h"
#include "wsgw.h"
#include "ws_alloc.h"
#include "ws_deflate.h"
#include "ws_http.h"
#include "ws_message.h"
#include "ws_proxy.h"

#define container_of(p, T, field) ((T *)((char *)(p) - offsetof(T, field)))

typedef enum conn_state {
    CONN_HANDSHAKE = 0,   /* reading the HTTP request */
    CONN_HTTP,            /* plain HTTP response queued; closing after it */
    CONN_OPEN,            /* WebSocket open */
    CONN_CLOSING,         /* our close frame queued or sent; reading for theirs */
    CONN_LINGER,          /* close frame written, write side shut, draining reads */
    CONN_DEAD             /* socket closed; waiting on the free list */
} conn_state_t;

enum { SUBPROTO_NONE = 0, SUBPROTO_WSGW = 255 };   /* config allows at most 32 subprotocols */

/* A connection's timestamps are the low 32 bits of wsgw_now_ms(), compared
 * by wrap-safe difference: every span measured against one is under 2^31 ms
 * (config caps the timeouts at 24 hours, deadlines are minutes), and the 16
 * bytes saved per connection count at 100 000 connections per process. */
typedef uint32_t conn_ms_t;
static inline conn_ms_t conn_ms(uint64_t now_ms) { return (conn_ms_t)now_ms; }
/* Milliseconds from t to now. */
static inline uint64_t conn_ms_since(uint64_t now_ms, conn_ms_t t) { return (conn_ms_t)((conn_ms_t)now_ms - t); }
/* Has the deadline d passed at now? */
static inline int conn_ms_reached(uint64_t now_ms, conn_ms_t d) { return (int32_t)((conn_ms_t)now_ms - d) >= 0; }

/* The client's address, kept compact (a sockaddr_storage is 128 bytes). */
typedef union conn_addr {
    sa_family_t         family;
    struct sockaddr_in  v4;
    struct sockaddr_in6 v6;
} conn_addr_t;

/* What only the opening handshake needs: allocated at accept, freed once
 * the connection is upgraded or answered. */
typedef struct conn_hs {
    ws_buf_t           buf;        /* the request bytes received so far */
    ws_http_parser_t   parser;
    ws_http_request_t *req;        /* only during handshake callbacks */
    ws_proxy_parser_t *proxy;      /* a trusted balancer's PROXY header still to come, else NULL */
    /* The server's FIFO of handshakes under way, oldest first: at
     * max_pending_handshakes a stale one makes room (server.c). */
    struct wsgw_conn  *pend_prev, *pend_next;
    uint64_t           since_ms;   /* accepted at */
    unsigned           in_fifo:1;  /* linked on the FIFO above (until the upgrade) */
    /* Upgraded, and the welcome waits for Redis (wsgw_conn.held): the
     * frames that came with the request start at buf[held_off], and only
     * out_allowed more bytes (the 101, and what on_connection queued) may
     * be written: the welcome and all after it wait. */
    size_t             held_off;
    size_t             out_allowed;
} conn_hs_t;

/* A static file being sent (http_routes.c): set when the response starts,
 * its fd closed once the last byte is read or sent, or when the connection
 * closes (conn_close_now).  Nothing of the file is held here: it is read
 * from the open file as the socket drains (conn_flush).  It lives in the
 * space of the WebSocket reader (wsgw_conn.file). */
typedef struct conn_file {
    int            fd;
    off_t          off;            /* next byte to read or send */
    off_t          end;            /* the size when the response started (its Content-Length) */
} conn_file_t;

typedef struct conn_handler {
    char          *event;
    wsgw_event_cb  cb;
    void          *ud;
} conn_handler_t;

/* What an embedding program attaches to a connection (wsgw_on & co):
 * allocated on the first such call, so the plain gateway pays 8 bytes. */
typedef struct conn_app {
    conn_handler_t    *handlers;
    uint16_t           n_handlers;
    wsgw_message_cb    on_message;
    void              *on_message_ud;
    wsgw_disconnect_cb on_disconnect;
    void              *on_disconnect_ud;
    wsgw_error_cb      on_error;
    void              *on_error_ud;
    void              *user_data;
} conn_app_t;

typedef struct listener {
    ev_io          io;
    int            fd;
    int            port;
    int            tls;            /* connections accepted here speak TLS */
    wsgw_server_t *srv;
} listener_t;

struct wsgw_conn {
    wsgw_server_t *srv;
    int            fd;
    uint8_t        events;         /* EV_READ | EV_WRITE registered with srv->poller */
    uint8_t        state;          /* conn_state_t */
    uint8_t        close_bits;     /* WS_CLOSE_STATE_* */
    uint8_t        codec;          /* index in srv->codecs (core_codec_register) */
    unsigned       in_pending:1;   /* linked on srv->pending (has output) */
    unsigned       write_armed:1;  /* EV_WRITE is on: the kernel buffer was full */
    unsigned       opened:1;       /* on_connection ran: on_disconnect is owed */
    unsigned       awaiting_pong:1;
    unsigned       pmd:1;          /* permessage-deflate negotiated */
    unsigned       upgraded:1;     /* counted in n_open */
    unsigned       counted_hs:1;   /* counted in n_handshaking (and on srv->pend_head's list) */
    unsigned       counted_http:1; /* counted in n_http: an HTTP response is being written */
    unsigned       http_file:1;    /* that response is a file or script (max_http_responses) */
    unsigned       offer_wsgw:1;   /* a handshake hook asked for "wsgw" (CORE_HS_OFFER_WSGW) */
    unsigned       tls_read_wants_write:1; /* SSL_read needs the socket writable */
    unsigned       tls_write_wants_read:1; /* SSL_write needs the socket readable */
    unsigned       has_deadline:1; /* deadline_ms is set */
    unsigned       stalled:1;      /* output is waiting: stalled_since_ms is set */
    unsigned       held:1;         /* open, the welcome queued but held: no input read or handled (conn_hold) */
    unsigned       has_file:1;     /* `file` below holds a static file response being sent */
    uint8_t        id_len;
    uint16_t       close_code;     /* code reported to on_disconnect */
    ws_pmd_params_t pmd_params;
    uint8_t        subprotocol;    /* SUBPROTO_NONE, SUBPROTO_WSGW, or 1 + index in cfg->subprotocols */
    char          *id;             /* NUL-terminated: id_small, or owned heap for long ids */
    char           id_small[24];   /* the default ids (22 characters) live here */
    conn_addr_t    peer;           /* 28 bytes: formatted only when needed */
    uint32_t       tls_retry_len;  /* bytes of a SSL_write to repeat after WANT_* */
    SSL           *ssl;            /* NULL for cleartext connections */

    /* A plain HTTP response never reads frames, and a WebSocket never sends
     * a file: the reader's space holds the file (has_file says which), so
     * an idle WebSocket pays nothing for file responses. */
    union {
        ws_reader_t reader;        /* zero unless the connection was upgraded */
        conn_file_t file;          /* only while has_file; zeroed after */
    };
    wsgw_outq_t    outq;
    wsgw_member_t  member;
    conn_hs_t     *hs;             /* request bytes and parser: only until the handshake is done */

    /* Times are conn_ms_t: see conn_ms() below. */
    conn_ms_t      last_read_ms;   /* last bytes from the peer */
    conn_ms_t      last_ping_ms;   /* our last ping (or the open time) */
    conn_ms_t      deadline_ms;    /* handshake / close / linger deadline, if has_deadline */
    conn_ms_t      stalled_since_ms; /* output waiting since, if stalled (write_timeout) */
    tbucket_t      err_bucket;     /* bad envelopes (error_rate_limit) */
    tbucket_t      msg_bucket;     /* rate_messages */
    tbucket_t      byte_bucket;    /* rate_bytes */
    ip_entry_t    *ip;             /* per-address counters, when those limits are on */
    void          *slot[CORE_CONN_SLOTS]; /* features' per-connection state (core_conn_slot) */
    conn_app_t    *app;            /* callbacks set through the C API; NULL for the wsgw binary */

    wsgw_conn_t   *prev, *next;    /* srv->conns: every live connection */
    wsgw_conn_t   *pending_next;   /* srv->pending */
    wsgw_conn_t   *free_next;      /* srv->to_free */
};

struct wsgw_server {
    struct ev_loop      *loop;
    const wsgw_config_t *cfg;
    listener_t          *listeners;
    size_t               n_listeners;
    wsgw_poller_t        poller;     /* every client socket */
    ev_prepare           flush_w;    /* before the loop blocks: flush writes, free conns */
    ev_timer             sweep_w;    /* the one timer for every timeout */
    ev_timer             drain_w;
    ev_timer             spread_w;     /* drain_spread: closes a batch per tick */
    wsgw_conn_t         *spread_next;  /* next connection it will consider */
    size_t               spread_batch; /* connections closed per tick */
    int                  spare_fd;   /* closed and reopened to shed a connection on EMFILE */
    wsgw_conn_t         *pend_head, *pend_tail;  /* handshakes under way, oldest first */
    uint64_t             accept_err_logged_ms;   /* accept errors: one log line a second at most */
    uint64_t             accept_err_unlogged;    /* errors since that line */

    wsgw_conn_t         *conns;      /* all live connections */
    size_t               n_conns;    /* live (any state) */
    size_t               n_open;     /* WebSocket open */
    size_t               n_handshaking; /* requests being read (max_pending_handshakes) */
    size_t               n_http;     /* plain HTTP responses being written, apart: the
                                        slowloris eviction cannot reclaim them */
    size_t               n_http_files; /* of those, files and scripts (max_http_responses) */
    idmap_t              by_id;      /* open connections by id */
    wsgw_rooms_t         rooms;
    uint32_t             fanout_turn; /* rotates the first member of room fan-outs */
    wsgw_conn_t         *pending;    /* FIFO: flushed in the order they got output */
    wsgw_conn_t         *pending_tail;
    wsgw_conn_t         *to_free;

    ip_table_t           ips;        /* per client address (max_conns_per_ip, conn_rate_per_ip) */
    cidr_t              *proxy_trusted;   /* proxy_protocol, parsed: balancers that send a PROXY header */
    size_t               n_proxy_trusted;
    uint8_t             *read_buf;   /* one per loop */
    size_t               read_cap;
    uint8_t             *write_buf;  /* one per loop: TLS record coalescing */
    size_t               write_cap;
    SSL_CTX             *ssl_ctx;    /* NULL without tls_listen */
    ws_inflater_t       *inflater;   /* shared: every client uses no context takeover */
    ws_deflater_t       *deflaters[8]; /* by server window bits 8..15, made on demand */
    ws_pmd_policy_t      pmd_policy;
    ws_http_limits_t     http_limits;

    wsgw_connection_cb   on_connection;
    void                *on_connection_ud;
    wsgw_id_generator_cb id_gen;
    void                *id_gen_ud;
    wsgw_check_origin_cb check_origin;
    void                *check_origin_ud;
    wsgw_handshake_error_cb hs_error;
    void                *hs_error_ud;

    int                  draining;
    void               (*drain_done)(void *ud);
    void                *drain_done_ud;
    uint64_t             started_ms;
    wsgw_metrics_t       metrics;

    /* Features (core.h): called in registration order. */
    core_hooks_t         hooks[CORE_HOOKS_MAX];
    size_t               n_hooks;
    const core_codec_t  *codecs[CORE_CODECS_MAX];
    size_t               n_codecs;
    int                  n_slots;
    ws_buf_t             frame_buf;  /* one per loop: a codec's delivery being framed */
};

uint64_t wsgw_now_ms(const wsgw_server_t *s);

const char *conn_subprotocol(const wsgw_conn_t *c);   /* NULL when none was selected */
/* The parsed request: only during the handshake callbacks, else NULL. */
static inline ws_http_request_t *conn_req(const wsgw_conn_t *c) { return c->hs ? c->hs->req : NULL; }

/* conn.c */
/* "ip:port" or "[ipv6]:port", formatted into one of a few static buffers:
 * valid until the fourth later call (enough for any log line). */
const char *conn_peer(const wsgw_conn_t *c);
void conn_hs_free(wsgw_conn_t *c);
/* The request is answered with plain HTTP: the connection stops counting
 * as a handshake (and leaves the eviction list) and counts in n_http until
 * the response is written, which it must be within http_write_timeout.
 * Idempotent. */
void conn_start_http(wsgw_conn_t *c);
/* With Redis the welcome may go only once P:conn:<id> is subscribed, and
 * nothing may be answered before it: conn_hold, at the upgrade, right after
 * the welcome was queued, keeps c->hs (the request buffer, whose bytes
 * past in_off are frames that came with the request), stops reading, and
 * lets only the first out_allowed queued bytes be written.  conn_release
 * lets the welcome and what follows it out, and handles the held frames at
 * once (they are read already: no readable event will announce them).  The
 * hold ends by handshake_timeout (closed with 1013), or with conn_fail. */
void conn_hold(wsgw_conn_t *c, size_t out_allowed, size_t in_off);
void conn_release(wsgw_conn_t *c);
/* The poller's callback: ptr is the connection. */
void conn_ready(void *ptr, int revents);
conn_app_t *conn_app(wsgw_conn_t *c);                 /* allocates it on first use */
void conn_report_error(wsgw_conn_t *c, const char *why);   /* on_error, when set */
static inline int conn_native(const wsgw_conn_t *c) { return c->app && c->app->on_message; }
void conn_mark_pending(wsgw_conn_t *c);
void conn_ws_input(wsgw_conn_t *c, uint8_t *buf, size_t n);
void conn_accept(wsgw_server_t *s, int fd, const struct sockaddr_storage *peer, int tls);
void conn_queue_block(wsgw_conn_t *c, wsgw_block_t *b);   /* bypasses nothing: checks limits */
void conn_queue_bytes(wsgw_conn_t *c, const void *p, size_t n);
void conn_fail(wsgw_conn_t *c, uint16_t code, const char *reason);
void conn_close_now(wsgw_conn_t *c, uint16_t reported_code);
void conn_flush(wsgw_conn_t *c);
void conn_sweep(wsgw_conn_t *c, uint64_t now);
void conn_free(wsgw_conn_t *c);

/* handshake.c */
void handshake_input(wsgw_conn_t *c, const uint8_t *buf, size_t n);
void handshake_refuse(wsgw_conn_t *c, int status, const char *why, wsgw_hs_fail_t kind);
int  wsgw_id_valid(const char *id, size_t len);

/* emit.c: the fan-out (core_deliver, core_emit in core.h).  emit_raw routes
 * one framed message (frame: hdr_len header bytes, then the payload) as it
 * is to every receiver, and drops the reference to it. */
int emit_raw(wsgw_server_t *s, wsgw_block_t *frame, size_t hdr_len, int opcode,
             wsgw_target_kind_t kind, const char *name, size_t name_len,
             wsgw_conn_t *self, const wsgw_conn_t *skip);

/* http_routes.c: answers a plain GET (not an upgrade). */
void http_route(wsgw_conn_t *c, const ws_http_request_t *req);
/* A static file response streams from its open file: conn_flush calls
 * http_file_fill when the queue is empty and c->has_file is set.  With TLS it
 * reads the next chunk (at most HTTP_FILE_CHUNK) into a block on the
 * queue; in cleartext conn_flush sends from the file itself (sendfile) and
 * http_file_fill is not called.  Returns 0, or -1 when the file could not
 * be read to its promised length (the connection is closed).  When the
 * last byte is read the file is closed (http_file_close). */
#define HTTP_FILE_CHUNK (64u << 10)
int  http_file_fill(wsgw_conn_t *c);
/* Closes c->file, if has_file, and zeroes its space (the
 * reader's, which conn_close_now frees as a reader): idempotent. */
void http_file_close(wsgw_conn_t *c);

/* hooks.c: calling the features (core.h) */
#define CORE_EACH_HOOK(s, h) \
    for (const core_hooks_t *h = (s)->hooks; h < (s)->hooks + (s)->n_hooks; h++)
/* The codec of c (conn_native(c) bypasses its input side). */
static inline const core_codec_t *conn_codec(const wsgw_conn_t *c) { return c->srv->codecs[c->codec]; }
int  hooks_handshake(wsgw_conn_t *c, const ws_http_request_t *req);
void hooks_conn_opened(wsgw_conn_t *c);
void hooks_conn_closed(wsgw_conn_t *c);
void hooks_conn_free(wsgw_conn_t *c);
int  hooks_conn_sweep(wsgw_conn_t *c, uint64_t now);
void hooks_sweep(wsgw_server_t *s, uint64_t now);
void hooks_flush(wsgw_server_t *s);
void hooks_free(wsgw_server_t *s);
/* Runs the codec's open and the first_answer hooks; 1 when the first
 * answer is held (conn_hold), 0 when it may go now. */
int  hooks_open(wsgw_conn_t *c);
void hooks_rooms_attach(wsgw_server_t *s);
void wsgw_server_gauges(const wsgw_server_t *s, wsgw_gauges_t *g);

#endif
