/* server_int.h — private layout of the server and its connections, shared by
 * the gateway's .c files (server.c, conn.c, emit.c, http_routes.c,
 * protocol.c).  Nothing outside gateway/ includes it. */
#ifndef WSGW_SERVER_INT_H
#define WSGW_SERVER_INT_H

#include <ev.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "backplane.h"
#include "cluster_seq.h"
#include "cidr.h"
#include "config.h"
#include "envelope.h"
#include "idmap.h"
#include "jwt.h"
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

enum { CODEC_ENVELOPE = 0, CODEC_IRIS = 1 };
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

/* What a verified token said: allocated when a token is accepted, so an
 * anonymous connection pays one pointer. */
typedef struct conn_auth {
    char          *user;           /* the token's sub, or NULL */
    uint64_t       token_exp_s;    /* the token's exp, 0 = none */
    uint8_t       *claim_rooms;    /* copy of the token's rooms claim (JSON array), or NULL */
    size_t         claim_rooms_len;
} conn_auth_t;

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
    uint8_t        codec;          /* CODEC_ENVELOPE or CODEC_IRIS */
    unsigned       in_pending:1;   /* linked on srv->pending (has output) */
    unsigned       write_armed:1;  /* EV_WRITE is on: the kernel buffer was full */
    unsigned       opened:1;       /* on_connection ran: on_disconnect is owed */
    unsigned       awaiting_pong:1;
    unsigned       pmd:1;          /* permessage-deflate negotiated */
    unsigned       upgraded:1;     /* counted in n_open */
    unsigned       counted_hs:1;   /* counted in n_handshaking (and on srv->pend_head's list) */
    unsigned       counted_http:1; /* counted in n_http: an HTTP response is being written */
    unsigned       http_file:1;    /* that response is a file or script (max_http_responses) */
    unsigned       token_in_protocol:1; /* the token came as a "bearer." subprotocol entry */
    unsigned       tls_read_wants_write:1; /* SSL_read needs the socket writable */
    unsigned       tls_write_wants_read:1; /* SSL_write needs the socket readable */
    unsigned       has_deadline:1; /* deadline_ms is set */
    unsigned       stalled:1;      /* output is waiting: stalled_since_ms is set */
    unsigned       held:1;         /* open, the welcome queued but held: no input read or handled (conn_hold) */
    unsigned       has_file:1;     /* `file` below holds a static file response being sent */
    uint8_t        id_len;
    uint8_t        claim_emit;     /* WSGW_EMIT_* the token allows (all without a claim) */
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
    conn_auth_t   *auth;           /* what a verified token said, or NULL */
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

    bp_t                *bp;         /* the backplane: local or Redis */
    int                  bp_remote;  /* 1 with Redis: other nodes exist */
    bp_state_t           bp_state;
    char                 node_id[24];
    size_t               node_id_len;
    uint64_t             bp_bad_messages;  /* unparseable payloads from the backplane */
    uint64_t             bp_lost;    /* other nodes' messages that never arrived (seq gaps) */
    uint64_t             bp_up_since_ms;   /* when bp_state last became BP_UP */
    uint64_t             bp_stale_seen;    /* bp stats.stale already logged */
    int                  bp_stale;   /* found stale, not BP_UP again yet: /healthz says "stale" */
    cluster_seq_out_t    seq_out;    /* our sequence numbers, per channel published on */
    cluster_seq_in_t     seq_in;     /* other nodes' numbers, per channel received on */
    uint64_t             seq_unsequenced_logged;
    uint64_t             heartbeat_last_ms;  /* last {"op":"node"} on P:lifecycle */
    ws_buf_t             bp_out;     /* one per loop: the payload being published (nodemsg.h) */

    wsgw_target_kind_t   iris_kind;  /* iris_emit_to, parsed; SELF means "backend" */
    const char          *iris_name;  /* room name for WSGW_TO_ROOM */
    ws_buf_t             iris_js;    /* iris_client_js, loaded at start */

    int                  auth_on;    /* a key is configured: tokens are checked */
    jwt_keys_t           jwt_keys;
    jwt_policy_t         jwt_policy;
};

uint64_t wsgw_now_ms(const wsgw_server_t *s);

const char *conn_subprotocol(const wsgw_conn_t *c);   /* NULL when none was selected */
static inline const char *conn_user(const wsgw_conn_t *c) { return c->auth ? c->auth->user : NULL; }
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

/* emit.c */
/* Frames one delivery envelope once and queues it for this node's
 * receivers of the target (Iris semantics): SELF means `self`, `skip` is
 * left out.  Returns the number of receivers. */
int emit_delivery(wsgw_server_t *s, const envelope_delivery_t *d, wsgw_target_kind_t kind,
                  const char *name, size_t name_len, wsgw_conn_t *self, const wsgw_conn_t *skip);
/* An emit from `sender` (NULL: from the server): delivered here at once,
 * and published for the other nodes.  When ack_id is not empty and the
 * backplane will confirm the publish, *ack_deferred is set to 1 and the
 * ack (or an "unavailable" error) is sent to the sender later; otherwise
 * it is 0 and the caller acks.  Returns the local receiver count. */
int emit_event(wsgw_server_t *s, wsgw_conn_t *sender, wsgw_target_kind_t kind,
               const char *name, size_t name_len, const uint8_t *event, size_t event_len,
               const uint8_t *data, size_t data_len, json_span_t ack_id, int *ack_deferred);
/* A one-frame block for a reply of `len` payload bytes: write them at
 * *payload, then emit_reply() queues it to c and drops the reference. */
wsgw_block_t *emit_reply_block(const wsgw_server_t *s, size_t len, uint8_t **payload);
void emit_reply(wsgw_conn_t *c, wsgw_block_t *b);

/* cluster.c: the gateway's side of the backplane (docs/protocol.md,
 * "Backplane"). */
int  cluster_init(wsgw_server_t *s, char *err, size_t errlen);
void cluster_free(wsgw_server_t *s);
void cluster_conn_opened(wsgw_conn_t *c);          /* during the handshake: conn_req(c) is set */
void cluster_conn_closed(wsgw_conn_t *c);
/* Publishes a delivery for the other nodes; returns 1 when the ack for
 * ack_id will be sent when the backplane answers (see emit_event). */
int  cluster_publish_delivery(wsgw_server_t *s, wsgw_conn_t *sender, wsgw_target_kind_t kind,
                              const char *name, size_t name_len, const envelope_delivery_t *d,
                              json_span_t ack_id);
/* An emit without "to", for backends on P:events.  Returns 1 when it was
 * published (or held for Redis), 0 when it was not: no Redis, or
 * backend_events = none.  Whether it was published says nothing about an
 * answer: *answer_later (NULL: never answer, as for Iris clients) is set to
 * 1 when the answer to m (ack, no_backend or unavailable, with m's id or
 * without one) will be sent once Redis replied, else 0 and the caller
 * answers now: when published, only `handled` (an on(event) handler took
 * it) leaves it at 0, so that answer is an ack. */
int  cluster_publish_event(wsgw_conn_t *c, const envelope_msg_t *m, int handled, int *answer_later);
const char *cluster_health(const wsgw_server_t *s);   /* "embedded", "up", "syncing", "down", "stale" */
/* From the periodic sweep: trailers and the ageing of sequence numbers. */
void cluster_sweep(wsgw_server_t *s, uint64_t now_ms);
/* With Redis: releases the connection's held welcome (welcome = 1,
 * conn_release) or sends the ack for ack_id once every subscription made
 * so far is confirmed by Redis, and returns 1; returns 0 when the caller
 * should answer now (no Redis, or no id). */
int  cluster_after_sync(wsgw_conn_t *c, json_span_t ack_id, int welcome);

/* auth.c */
int  auth_init(wsgw_server_t *s, char *err, size_t errlen);
void auth_free(wsgw_server_t *s);
int  auth_handshake(wsgw_conn_t *c, const ws_http_request_t *req);   /* -1: refused (401 sent) */
void auth_refresh(wsgw_conn_t *c, const envelope_msg_t *m);
int  auth_may_join(const wsgw_conn_t *c, const char *room);
int  auth_expired(wsgw_conn_t *c, uint64_t now_ms);                  /* 1: closing it */
void auth_conn_free(wsgw_conn_t *c);

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

/* protocol.c: the envelope protocol over text frames. */
void protocol_welcome(wsgw_conn_t *c);
void protocol_on_text(wsgw_conn_t *c, const uint8_t *data, size_t len);
void protocol_on_binary(wsgw_conn_t *c, const uint8_t *data, size_t len);
void protocol_ack(wsgw_conn_t *c, json_span_t id);
void protocol_iris_on_frame(wsgw_conn_t *c, const uint8_t *data, size_t len);
void protocol_iris_open(wsgw_conn_t *c);
void protocol_error(wsgw_conn_t *c, json_span_t id, envelope_code_t code, const char *message);
/* The same error envelope for what is not the client's fault (the
 * backplane is unavailable, no backend is subscribed to events, a
 * refreshed token took rooms away): counted,
 * but it does not spend the error budget. */
void protocol_error_not_yours(wsgw_conn_t *c, json_span_t id, envelope_code_t code, const char *message);

#endif
