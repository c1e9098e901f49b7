/* bp_redis_int.h — private layout of the Redis backplane, shared by
 * bp_redis.c (connections, publish side, state) and bp_redis_sub.c
 * (subscription batches, messages). */
#ifndef WSGW_BP_REDIS_INT_H
#define WSGW_BP_REDIS_INT_H

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "bp_int.h"
#include "bp_resolve.h"

/* Where a connection is.  Only READY connections carry traffic. */
typedef enum bp_rphase {
    BP_R_IDLE = 0,      /* no context; a retry timer may be running */
    BP_R_RESOLVING,     /* a resolver thread looks the host name up (bp_resolve.h) */
    BP_R_CONNECTING,    /* connect(2) in progress */
    BP_R_HANDSHAKE,     /* AUTH / SELECT / PING sent, replies pending */
    BP_R_READY
} bp_rphase_t;

typedef struct bp_redis bp_redis_t;

typedef struct bp_rconn {
    bp_redis_t        *r;
    redisAsyncContext *ac;          /* the live context, or NULL; ac->data == this */
    const char        *name;        /* "publish" / "subscribe", for `why` texts */
    bp_rphase_t        phase;
    int                handshake_left;   /* handshake replies still expected */
    int                was_ready;        /* the next READY is a reconnection */
    unsigned           attempt;          /* failures since the last READY: backoff exponent */
    void              *retry_timer;
    void              *timeout_timer;    /* the attempt's deadline: resolve + connect + handshake */
    bp_resolve_t      *resolve;          /* our hold on the lookup, or NULL; may outlive
                                            the attempt that started it (see conn_start) */
    void              *poll_timer;       /* RESOLVING: checks the lookup */
    unsigned           poll_ms;          /* its next interval */
    char               addr[BP_RESOLVE_ADDR_MAX];   /* numeric address of this attempt ("" for unix) */
    int                addr_from_other;  /* the next attempt skips the lookup: addr is the
                                            other connection's, which just worked */
    char               why[160];         /* last failure (hiredis' or Redis' text), for on_state */
} bp_rconn_t;

/* A publish callback still owed: sent and unanswered (the ring), or to be
 * reported as dropped (the drop list). */
typedef struct bp_rpend {
    bp_publish_cb cb;
    void         *privdata;
    size_t        bytes;
} bp_rpend_t;

/* A publish held while the publish connection is not READY. */
typedef struct bp_rmsg {
    struct bp_rmsg *next;
    bp_publish_cb   cb;
    void           *privdata;
    size_t          channel_len, len;
    uint8_t         data[];         /* channel, then payload */
} bp_rmsg_t;

struct bp_redis {
    bp_t          base;
    /* configuration (strings owned) */
    char         *host, *unix_path, *user, *password;
    int           port, db;
    int           host_is_numeric;  /* no lookup needed (or unix_path) */
    uint64_t      max_pending, backoff_min, backoff_max, connect_timeout;
    int         (*attach)(void *loop_ud, redisAsyncContext *ac);
    uint64_t      rng;

    bp_rconn_t    pub, sub;

    /* publish side: every byte counted in pending_bytes is in one of these */
    bp_rmsg_t    *wait_head, *wait_tail;    /* not sent yet, in call order */
    bp_rpend_t   *ring;                     /* sent, awaiting PUBLISH's reply */
    size_t        ring_cap, ring_head, ring_len;   /* cap: power of two */
    uint64_t      pending_bytes;
    bp_rpend_t   *drops;                    /* BP_DROPPED owed, reported by the kick */
    size_t        drops_len, drops_cap, drops_pos;

    /* subscribe side */
    bp_chan_t    *changes;       /* channels whose refs crossed 0 since the last batch */
    size_t        sub_inflight;  /* (un)subscribe confirmations still expected */
    uint64_t      batch_sent;    /* change batches sent (bp_sync targets) */
    uint64_t      batch_done;    /* change batches confirmed */
    int           syncing;       /* the batch on the wire restores the set */
    size_t        restored;      /* channels in that batch */

    /* stale-connection probe (bp_redis_probe.c); probe_chan.name is NULL
     * when probing is off.  probe_chan is not in the subscription map: no
     * bp_deliver, no stats.subscriptions; refs stays 1 so it is never freed
     * by bp_chan_release. */
    bp_chan_t     probe_chan;
    uint64_t      probe_interval;
    void         *probe_timer;   /* the tick, every probe_interval */
    uint64_t      probe_sent;    /* probes numbered 1, 2, ... over the bp's life */
    uint64_t      probe_base;    /* probe_sent when the current BP_UP period began */
    uint64_t      probe_back;    /* the last probe seen on the subscribe connection */
    uint64_t      probe_acked;   /* the last probe whose PUBLISH Redis answered */
    int           probe_live;    /* probing in the current BP_UP period */

    void         *kick;          /* 0 ms timer: drops, subscription batch, state */
    bp_state_t    reported;      /* last state given to on_state */
    char          reported_why[256];  /* for BP_DOWN: the failure text without the connection name */
};

/* bp_redis.c */
void bp_redis_kick(bp_redis_t *r);
void bp_redis_notify(bp_redis_t *r);
/* The connection failed or was lost.  free_ac: 1 when we drop the context
 * (hiredis defers that itself inside its callbacks), 0 when hiredis is
 * already freeing it (disconnect callback, NULL reply, failed connect). */
void bp_redis_conn_lost(bp_rconn_t *c, const char *why, int free_ac);
/* The live connection of a hiredis context, or NULL for a stale one. */
bp_rconn_t *bp_redis_conn_of(const redisAsyncContext *ac);
const char *bp_redis_errstr(const redisAsyncContext *ac, const char *fallback);

/* bp_redis_sub.c */
void bp_redis_sub_changed(bp_t *bp, bp_chan_t *ch);
void bp_redis_sub_ready(bp_redis_t *r);    /* handshake done: restore the set */
void bp_redis_sub_lost(bp_redis_t *r);     /* forget what the server had */
void bp_redis_sub_flush(bp_redis_t *r);    /* send the pending changes as one batch */
uint64_t bp_redis_sync_target(bp_t *bp);   /* bp_sync(): the batch to wait for */
bp_state_t bp_redis_sub_state(const bp_redis_t *r);

/* bp_redis_probe.c */
void bp_redis_probe_init(bp_redis_t *r, const char *channel, uint64_t interval_ms);
void bp_redis_probe_stop(bp_redis_t *r);      /* shutdown: the tick stops */
void bp_redis_probe_destroy(bp_redis_t *r);
/* A message on the subscribe connection: 1 when it was on the probe
 * channel (consumed here, never delivered), else 0. */
int bp_redis_probe_message(bp_redis_t *r, const char *channel, size_t channel_len,
                           const char *payload, size_t len);

#endif
