/* backplane.h — publish/subscribe between gateway processes.
 *
 * The backplane moves opaque payloads on named channels.  It knows Redis
 * (one implementation) and nothing of WebSocket, rooms or envelopes: the
 * gateway chooses channel names and payload formats (docs/protocol.md,
 * "Backplane").  It does not include libev either: the gateway hands it
 * the event loop through bp_loop_t (timers) and, for Redis, a function
 * that attaches a hiredis async context to the loop.
 *
 * Two implementations behind one interface:
 *   bp_local_new()  in-process, the embedded default for one process: a
 *                   publish reaches this process's own subscriptions, on a
 *                   later loop iteration (never re-entrantly).
 *   bp_redis_new()  Redis pub/sub through hiredis' async API: one connection
 *                   for SUBSCRIBE and one for PUBLISH per process,
 *                   pipelined; never one per client, never PSUBSCRIBE.
 *
 * Subscriptions are reference-counted: bp_subscribe() on a channel already
 * subscribed only counts; the SUBSCRIBE goes to Redis on the first and the
 * UNSUBSCRIBE on the last bp_unsubscribe().
 *
 * Faults (Redis implementation).  Redis going away never fails a call:
 *   - the state goes to BP_DOWN and on_state() says why;
 *   - both connections are retried with exponential backoff and jitter
 *     (backoff_min_ms doubling up to backoff_max_ms, each delay +-50 %);
 *     when one of them is back, the other is retried at once, its backoff
 *     reset, so both return within a round trip of each other;
 *   - a host name is looked up in a separate thread, never on the caller's
 *     loop, afresh for every attempt; a numeric address or unix_path needs
 *     no lookup.  connect_timeout_ms bounds the whole attempt (lookup,
 *     connect, AUTH/SELECT/PING); a lookup still running when the
 *     backplane is freed ends on its own and frees what it holds;
 *   - publishes made while the publish connection is down, or not yet
 *     answered, are held in order up to max_pending_bytes; past that a
 *     publish is dropped at once: its callback gets BP_DROPPED and the
 *     drop is counted (hiredis' own output buffer is thereby bounded);
 *   - a publish already handed to a connection that drops before Redis
 *     answers is NOT sent again (Redis may have executed it: a resend could
 *     deliver it twice): its callback gets BP_DROPPED and it is counted in
 *     publish_dropped; only publishes never sent wait for the reconnect;
 *   - on reconnect, AUTH and SELECT are sent first, then every channel in
 *     the subscription set is subscribed again, and only when Redis has
 *     confirmed all of them does the state return to BP_UP (BP_SYNCING
 *     until then; a bp_subscribe while BP_UP does not leave BP_UP);
 *   - the state is the worse of the two connections'; on_state is also
 *     called, state unchanged, when BP_DOWN gets a new reason (a wrong
 *     password after "connection refused"), not for each retry;
 *   - a connection that stays open but no longer carries anything (a
 *     half-open TCP connection, a subscriber left on a demoted node) raises
 *     no error.  With probe_channel and probe_interval_ms set, the backplane
 *     publishes a small probe to probe_channel on the publish connection
 *     every interval while BP_UP, and its subscribe connection is
 *     subscribed to that channel (one subscription, kept and restored like
 *     the others, not counted in stats.subscriptions).  A probe not back
 *     on the subscribe connection BP_PROBE_MISSES intervals after it was
 *     sent although Redis answered its PUBLISH, or BP_PROBE_SILENT_MISSES
 *     intervals after it when Redis answered nothing, makes the backplane
 *     declare itself stale: stats.stale counts
 *     it, both connections are dropped and retried as for any loss (the
 *     state goes BP_DOWN with a `why` starting "stale:"), and the set is
 *     restored.  Probes are never given to on_message, nor counted in
 *     stats.received or stats.published; a probe that comes back late
 *     (after its connection was declared stale) is ignored.
 * hiredis writes with write(2): the process must ignore SIGPIPE.
 * Redis pub/sub is at-most-once: a message published while a subscriber
 * was disconnected is not replayed to it.
 *
 * Ownership: channel names and payloads passed in are copied before the
 * call returns.  Channel and payload given to on_message are valid only
 * during the call.
 */
#ifndef WSGW_BACKPLANE_H
#define WSGW_BACKPLANE_H

#include <stddef.h>
#include <stdint.h>

typedef struct bp bp_t;

typedef enum bp_state {
    BP_DOWN = 0,      /* not connected (or never connected yet) */
    BP_SYNCING,       /* connected, restoring subscriptions */
    BP_UP             /* connected and every subscription confirmed */
} bp_state_t;

/* Result given to a publish callback: >= 0 is the number of subscribers
 * Redis delivered to (PUBLISH's reply); BP_DROPPED means it was not sent. */
#define BP_DROPPED (-1L)

typedef void (*bp_publish_cb)(void *ud, long receivers, void *privdata);

typedef struct bp_callbacks {
    /* A message on a subscribed channel. */
    void (*on_message)(void *ud, const char *channel, size_t channel_len,
                       const uint8_t *payload, size_t len);
    /* The state changed; `why` is a short human reason ("connection refused",
     * "all 12 subscriptions restored"). */
    void (*on_state)(void *ud, bp_state_t state, const char *why);
    void *ud;
} bp_callbacks_t;

/* Timers of the caller's event loop.  timer_start returns a handle that
 * timer_stop accepts (and that stays valid until the callback ran or
 * timer_stop was called); the callback runs once. */
typedef struct bp_loop {
    void *(*timer_start)(void *loop_ud, uint64_t ms, void (*cb)(void *arg), void *arg);
    void  (*timer_stop)(void *loop_ud, void *timer);
    void  *loop_ud;
} bp_loop_t;

typedef struct bp_stats {
    bp_state_t state;
    uint64_t published;         /* publishes acknowledged by Redis (or delivered locally) */
    uint64_t publish_dropped;   /* publishes dropped (buffer full, unanswered when the
                                   connection dropped, error reply, bp_free) */
    uint64_t pending_bytes;     /* channel + payload bytes waiting to be sent or answered */
    uint64_t received;          /* messages given to on_message */
    uint64_t reconnects;        /* successful reconnections after a loss (per connection:
                                   Redis restarting counts 2) */
    uint64_t subscriptions;     /* channels in the subscription set */
    uint64_t stale;             /* times the connections were found stale (a probe not
                                   back in time) and dropped to reconnect */
} bp_stats_t;

/* A probe not back this many probe intervals after it was sent declares the
 * connections stale (Redis implementation, probe_interval_ms set) — when
 * Redis answered its PUBLISH: the subscribe connection no longer receives.
 * When nothing answered either, the silence is the same as a busy Redis (a
 * slow script, a fork on a slow disk), so the connections are given
 * BP_PROBE_SILENT_MISSES intervals before they are taken for stale: a
 * stall shorter than that delays messages, it does not lose them. */
#define BP_PROBE_MISSES 3
#define BP_PROBE_SILENT_MISSES 8

/* ---- the interface ----------------------------------------------------------- */

/* Publishes payload on channel.  `cb` (may be NULL) is called exactly once,
 * later, never inside this call: with the receiver count, or BP_DROPPED.
 * Messages published by one process are sent in call order.
 * Returns 0 when the publish was taken (sent, or held until the connection
 * is back), BP_REFUSED when it was dropped at once (the buffer is full, or
 * the backplane is being freed): nothing of it will reach Redis, and the
 * callback still gets BP_DROPPED later.  A publish that was taken can
 * still end in BP_DROPPED (see "Faults" above): then it may or may not
 * have reached Redis. */
#define BP_REFUSED (-1)
int bp_publish(bp_t *bp, const char *channel, size_t channel_len,
               const uint8_t *payload, size_t len, bp_publish_cb cb, void *privdata);

void bp_subscribe(bp_t *bp, const char *channel, size_t channel_len);
void bp_unsubscribe(bp_t *bp, const char *channel, size_t channel_len);

/* A barrier for subscriptions: `cb` is called once, later (never inside
 * this call), when every bp_subscribe/bp_unsubscribe made before this call
 * has been confirmed by the server (confirmed = 1), or with confirmed = 0
 * when that cannot happen now (the subscribe connection is down or was
 * lost; the subscriptions are restored when it returns) or the backplane is
 * being freed.  A gateway acknowledges a join only after it, so "joined"
 * means "will receive the room's messages from every node". */
typedef void (*bp_sync_cb)(void *ud, int confirmed, void *privdata);
void bp_sync(bp_t *bp, bp_sync_cb cb, void *privdata);

/* Writes the publishes buffered in this loop pass now rather than when the
 * loop next polls.  The gateway calls it before writing to its clients, so
 * that other nodes start their part of a fan-out while this one writes its
 * own (otherwise they start only after it).  Never calls a callback. */
void bp_flush(bp_t *bp);

bp_state_t bp_state(const bp_t *bp);
void bp_get_stats(const bp_t *bp, bp_stats_t *out);
const char *bp_state_name(bp_state_t s);   /* "down", "syncing", "up" */

/* Frees everything.  Pending publish callbacks are called with BP_DROPPED
 * first; no other callback runs after this returns.  Safe from inside any
 * of this bp's callbacks: then the memory is released on the next loop
 * iteration (the loop must run once more), and bp_* calls made on it from
 * the BP_DROPPED callbacks are ignored. */
void bp_free(bp_t *bp);

/* ---- implementations ---------------------------------------------------------- */

bp_t *bp_local_new(const bp_callbacks_t *cb, const bp_loop_t *loop);

typedef struct redisAsyncContext redisAsyncContext;

typedef struct bp_redis_config {
    const char *host;           /* TCP host (NULL or "" with unix_path) */
    int         port;
    const char *unix_path;      /* Unix-socket path, or NULL */
    const char *user;           /* ACL user (AUTH user pass), or NULL */
    const char *password;       /* AUTH password, or NULL */
    int         db;             /* SELECT db when > 0 */
    uint64_t    max_pending_bytes;   /* publish buffer bound (default 8 MiB when 0) */
    uint64_t    backoff_min_ms;      /* default 100 when 0 */
    uint64_t    backoff_max_ms;      /* default 1000 when 0 */
    uint64_t    connect_timeout_ms;  /* one attempt: lookup + connect + handshake;
                                        default 2000 when 0 */
    /* Stale-connection probe ("Faults" above): a channel that only this
     * backplane uses (the gateway passes "<prefix>:probe:<node id>") and
     * the interval between probes; off when either is NULL / 0. */
    const char *probe_channel;
    uint64_t    probe_interval_ms;
    /* Attaches a new hiredis async context to the caller's event loop
     * (the gateway passes a wrapper around redisLibevAttach); returns 0 on
     * success. */
    int       (*attach)(void *loop_ud, redisAsyncContext *ac);
} bp_redis_config_t;

/* Starts connecting at once and returns; the state is BP_DOWN until the
 * connections are up.  Returns NULL with err filled only for a bad config
 * (no host and no unix_path, no attach function). */
bp_t *bp_redis_new(const bp_redis_config_t *cfg, const bp_callbacks_t *cb,
                   const bp_loop_t *loop, char *err, size_t errlen);

#endif
