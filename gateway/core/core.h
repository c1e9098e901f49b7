/* core.h — where features plug into the transport core (docs/architecture.md).
 *
 * The core (gateway/core/) accepts connections, runs the handshake, reads
 * frames, writes batched output, keeps rooms and sweeps timeouts.  It names
 * no feature: the envelope protocol, Iris, authentication and the cluster
 * glue (gateway/features/) register
 *
 *   - a hooks table (core_hooks_t): the core calls every registered table,
 *     in registration order, at each event below;
 *   - codecs (core_codec_t): what a connection's data frames mean and how a
 *     delivery is framed for it, chosen per connection by the path of its
 *     upgrade request.  The embedding program's wsgw_on_message overrides
 *     the input side of any codec (the "native" codec: frames handed over
 *     as they came; wsgw.h).
 *
 * Features keep their own state in their own struct (the hooks' ud); a
 * connection carries one pointer per slot (CORE_CONN_SLOTS) for features
 * that need state per connection, taken with core_conn_slot().
 *
 * Deferred answers (core_answer_t): an answer the client must get only once
 * features did their work — the welcome once the connection's channel is
 * subscribed, a join's ack once the room's subscription is confirmed (and,
 * later, its history replayed), an emit's ack once Redis took the publish.
 * Whoever owes the answer creates the defer; each feature with work to do
 * first holds it; the answer runs when the last hold is released.
 *
 * Everything here runs on the server's one loop; nothing is thread-safe.
 */
#ifndef WSGW_CORE_H
#define WSGW_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "rooms.h"
#include "ws_alloc.h"
#include "ws_http.h"
#include "wsgw.h"

typedef struct wsgw_block wsgw_block_t;
typedef struct wsgw_gauges wsgw_gauges_t;

/* ---- the server without features ------------------------------------------------ */

/* wsgw_server_new_with_fds (fds NULL: bind the config's addresses) with no
 * feature registered: the wiring (gateway/wsgw_server.c) registers them,
 * before the loop runs; a unit test registers its own.  A server without
 * a codec refuses every upgrade (404). */
wsgw_server_t *core_server_new(struct ev_loop *loop, const wsgw_config_t *cfg,
                               const wsgw_listen_fd_t *fds, size_t nfds, char *err, size_t errlen);

/* ---- deferred answers ------------------------------------------------------ */

typedef struct core_defer core_defer_t;

/* Outcome of the work an answer waited for: 0 (done) or the first non-zero
 * status a holder released it with. */
enum {
    CORE_DEFER_OK           = 0,
    CORE_DEFER_DROPPED      = 1,   /* a publish never reached the backplane */
    CORE_DEFER_NO_RECEIVERS = 2    /* it did, and nobody was subscribed */
};

/* Runs once, when the answer may go: c is the connection, looked up again
 * by id when the answer was held (NULL when it is gone or no longer open),
 * arg[0..len) the answer's bytes. */
typedef void (*core_defer_cb)(wsgw_conn_t *c, int status, const uint8_t *arg, size_t len);

/* An answer owed to c, on its creator's stack: nothing is allocated unless
 * a feature holds it.  Fill the first four members, hand it to the call
 * whose hooks may hold it (core_join, core_emit, core_emit_event), then
 * core_answer_finish: the callback runs now when nobody held it, else when
 * the last holder released it. */
typedef struct core_answer {
    wsgw_conn_t  *c;
    core_defer_cb cb;
    const void   *arg;             /* at most 80 bytes, copied when held */
    size_t        len;
    core_defer_t *_held;           /* made by the first hold */
} core_answer_t;

/* A feature holds the answer (allocates the first time): release it with
 * core_defer_release once its work is done. */
core_defer_t *core_answer_hold(core_answer_t *a);
void core_defer_release(core_defer_t *d, int status);
void core_answer_finish(core_answer_t *a, int status);

/* ---- the hooks table ---------------------------------------------------------- */

/* What /healthz says of the node (filled by a health hook; the defaults say
 * "embedded", not degraded, node ""). */
typedef struct core_health {
    const char *backplane;
    int         degraded;
    const char *node;
} core_health_t;

/* Every member may be NULL.  `ud` is the feature's own state. */
typedef struct core_hooks {
    const char *name;
    void       *ud;
    /* The upgrade request is valid and the connection about to be given an
     * id: 0 goes on, CORE_HS_OFFER_WSGW goes on and asks for the "wsgw"
     * subprotocol when no configured one was chosen, -1 means the hook
     * refused it (and answered, core_refuse). */
    int  (*handshake)(void *ud, wsgw_conn_t *c, const ws_http_request_t *req);
    /* Open, with its id, before on_connection: conn_req(c) is still set. */
    void (*conn_opened)(void *ud, wsgw_conn_t *c);
    /* The first answer (the welcome) is queued: hold it until it may go. */
    void (*first_answer)(void *ud, wsgw_conn_t *c, core_answer_t *a);
    /* An open connection closed: rooms are left, the id is still set. */
    void (*conn_closed)(void *ud, wsgw_conn_t *c);
    /* The connection is being freed (after the loop iteration). */
    void (*conn_free)(void *ud, wsgw_conn_t *c);
    /* From the sweep, per open connection: return 1 when it was closed. */
    int  (*conn_sweep)(void *ud, wsgw_conn_t *c, uint64_t now_ms);
    /* From the sweep, once per tick. */
    void (*sweep)(void *ud, uint64_t now_ms);
    /* Rooms: the first member came, the last one went (r is freed after). */
    void (*room_created)(void *ud, wsgw_room_t *r);
    void (*room_emptied)(void *ud, wsgw_room_t *r);
    /* Membership through core_join / core_leave.  ack is the join's
     * deferred answer (NULL when nobody waits for one): hold it until the
     * member may be told it joined. */
    void (*member_joined)(void *ud, wsgw_conn_t *c, wsgw_room_t *r, core_answer_t *ack);
    void (*member_left)(void *ud, wsgw_conn_t *c, wsgw_room_t *r);
    /* A delivery was made on this node (core_emit): take it beyond (other
     * nodes), holding done until that is known, if given. */
    void (*publish)(void *ud, wsgw_conn_t *sender, wsgw_target_kind_t kind, const char *name,
                    size_t name_len, const envelope_delivery_t *d, core_answer_t *done);
    /* An event for backends (no target): 1 when it was taken (done held
     * until it is known whether anyone received it), 0 when there is no
     * backend path. */
    int  (*publish_event)(void *ud, wsgw_conn_t *c, const envelope_delivery_t *d, core_answer_t *done);
    /* Before the iteration's writes. */
    void (*flush)(void *ud);
    /* /healthz and /metrics. */
    void (*health)(void *ud, core_health_t *h);
    void (*gauges)(void *ud, wsgw_gauges_t *g);
    /* A plain GET nobody else answered: 1 when answered (core_http_send). */
    int  (*http_get)(void *ud, wsgw_conn_t *c, const ws_http_request_t *req, int head_only);
    /* The server is being freed: release ud. */
    void (*free)(void *ud);
} core_hooks_t;

enum { CORE_HS_OFFER_WSGW = 1 };

#define CORE_HOOKS_MAX 8
/* Registers a table (copied) on s; returns 0, or -1 when CORE_HOOKS_MAX
 * are registered already. */
int core_register(wsgw_server_t *s, const core_hooks_t *h);

/* ---- codecs ------------------------------------------------------------------- */

typedef struct core_codec {
    const char *name;
    void       *ud;
    /* The upgrade path that selects it (NULL or "": none). */
    const char *path;
    /* After on_connection: the welcome, the initial rooms (core_is_native
     * says whether the program took the messages).  Returns 1 when it
     * queued a first answer that features may hold (first_answer hooks),
     * else 0. */
    int  (*open)(void *ud, wsgw_conn_t *c);
    /* A data message within the rate limits. */
    void (*message)(void *ud, wsgw_conn_t *c, const uint8_t *data, size_t len, int binary);
    /* A data message over rate_messages / rate_bytes was dropped. */
    void (*rate_limited)(void *ud, wsgw_conn_t *c);
    /* Frame a delivery for this codec's connections: the payload of one
     * data frame, appended to out; 0 when it cannot be said in this format
     * (the receiver misses it, counted as dropped).  NULL: the delivery
     * envelope itself (docs/protocol.md). */
    int  (*frame)(void *ud, const envelope_delivery_t *d, ws_buf_t *out);
    /* permessage-deflate applies to its deliveries. */
    int         compress;
} core_codec_t;

#define CORE_CODECS_MAX 4
/* Registers a codec (the pointer is kept: it must live as long as s, in
 * the feature's state); the first one
 * registered serves the configured `path`.  Returns its index, or -1. */
int core_codec_register(wsgw_server_t *s, const core_codec_t *k);

/* ---- per-connection state of features ------------------------------------------ */

#define CORE_CONN_SLOTS 1
/* A slot index for a feature's per-connection pointer, or -1 when all are
 * taken.  The feature frees what it put there (conn_free hook). */
int   core_conn_slot(wsgw_server_t *s);
void *core_conn_get(const wsgw_conn_t *c, int slot);
void  core_conn_set(wsgw_conn_t *c, int slot, void *p);

/* ---- what features call ----------------------------------------------------------- */

const wsgw_config_t *core_cfg(const wsgw_server_t *s);
struct ev_loop *core_loop(const wsgw_server_t *s);
uint64_t core_now_ms(const wsgw_server_t *s);
wsgw_server_t *core_server(const wsgw_conn_t *c);
size_t core_open_count(const wsgw_server_t *s);
/* An open connection by id, or NULL. */
wsgw_conn_t *core_find(wsgw_server_t *s, const char *id, size_t len);
int  core_is_open(const wsgw_conn_t *c);
const char *core_id(const wsgw_conn_t *c, size_t *len);
/* The connection's codec index (core_codec_register). */
int  core_codec_of(const wsgw_conn_t *c);
/* The embedding program took its messages (wsgw_on_message): the codec's
 * input side is bypassed; its open still runs and decides what applies. */
int  core_is_native(const wsgw_conn_t *c);

/* Joins / leaves with the membership hooks: rooms_join's and rooms_leave's
 * results.  ack (may be NULL) is handed to member_joined hooks. */
int  core_join(wsgw_conn_t *c, const char *room, size_t len, core_answer_t *ack);
int  core_leave(wsgw_conn_t *c, const char *room, size_t len);
int  core_is_member(const wsgw_conn_t *c, const char *room, size_t len);

/* Frames d once per codec in use and queues it for this node's receivers
 * of the target (Iris semantics: SELF means self, skip is left out).
 * Returns the number of receivers. */
int core_deliver(wsgw_server_t *s, const envelope_delivery_t *d, wsgw_target_kind_t kind,
                 const char *name, size_t name_len, wsgw_conn_t *self, const wsgw_conn_t *skip);
/* An emit from sender (NULL: the server): delivered here at once, then
 * handed to the publish hooks with done (may be NULL).  Returns the local
 * receiver count. */
int core_emit(wsgw_server_t *s, wsgw_conn_t *sender, wsgw_target_kind_t kind,
              const char *name, size_t name_len, const uint8_t *event, size_t event_len,
              const uint8_t *data, size_t data_len, core_answer_t *done);
/* An event for backends through the publish_event hooks: 1 when one took it. */
int core_emit_event(wsgw_conn_t *c, const envelope_delivery_t *d, core_answer_t *done);
/* One data frame of len payload bytes to c alone: write the payload at
 * *payload, then core_reply() queues it. */
wsgw_block_t *core_reply_block(const wsgw_server_t *s, size_t len, uint8_t **payload);
void core_reply(wsgw_conn_t *c, wsgw_block_t *b);

/* Starts the close handshake with code and reason (idempotent). */
void core_fail(wsgw_conn_t *c, uint16_t code, const char *reason);
/* During a handshake hook: answer with an HTTP error and close. */
void core_refuse(wsgw_conn_t *c, int status, const char *why, int fail_kind);
/* The embedding program's on_error, when set. */
void core_report_error(wsgw_conn_t *c, const char *why);
/* on(event) handlers of the embedding program: 1 when one took it. */
int  core_dispatch_event(wsgw_conn_t *c, const char *event, const char *data, size_t len);
/* A connection's token buckets: 1 when a token was taken. */
int  core_take_error_budget(wsgw_conn_t *c);
/* "ip:port" of the client (see conn_peer). */
const char *core_peer(const wsgw_conn_t *c);
/* The 200 answer of an http_get hook, a file-like response (it takes one of
 * max_http_responses, or is answered 503), with Cache-Control: no-cache. */
void core_http_send(wsgw_conn_t *c, const char *ctype, const void *body, size_t len, int head_only);

#endif
