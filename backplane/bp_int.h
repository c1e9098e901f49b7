/* bp_int.h — private layout of the backplane: the generic part (bp.c) and
 * what an implementation (bp_local.c, bp_redis*.c) plugs into it.
 *
 * An implementation embeds `bp_t` as its first member, fills in a vtable and
 * calls bp_init().  bp.c owns the subscription set (channel -> reference
 * count), the statistics, the user's callbacks and the deferred free.
 *
 * Re-entrancy rule.  Every entry point from the event loop (a timer, a
 * hiredis callback) runs between bp_enter() and bp_leave().  bp_free()
 * called while such a callback runs (bp->depth > 0) only marks the bp as
 * freeing, lets the implementation drop its pending publishes (their
 * callbacks run inside bp_free) and stop its timers, and leaves the real free
 * to a 0 ms timer: the code that called the user is still on the stack, and
 * so may be hiredis, which keeps using its context after our callback
 * returns.  After a user callback an implementation checks bp->freeing and
 * stops touching anything but memory.
 */
#ifndef WSGW_BP_INT_H
#define WSGW_BP_INT_H

#include "backplane.h"
#include "strmap.h"

/* Bits of bp_chan_t.held: reasons an implementation keeps an entry alive
 * after its last bp_unsubscribe(). */
#define BP_CHAN_REMOTE 0x1u   /* subscribed on the server (Redis: SUBSCRIBE sent) */
#define BP_CHAN_QUEUED 0x2u   /* on the implementation's change list */

typedef struct bp_chan {
    char           *name;     /* owned, NUL-terminated (channels may hold NULs: use len) */
    size_t          len;
    uint32_t        refs;     /* bp_subscribe() calls minus bp_unsubscribe() calls */
    uint32_t        held;     /* BP_CHAN_* bits, set by the implementation */
    struct bp_chan *next;     /* the implementation's change list */
} bp_chan_t;

typedef struct bp_vtable {
    /* bp_publish() after the generic checks (not freeing).  A publish
     * refused at once is counted in stats.publish_dropped before this
     * returns: that is how bp_publish() knows to return BP_REFUSED. */
    void (*publish)(bp_t *bp, const char *channel, size_t channel_len,
                    const uint8_t *payload, size_t len, bp_publish_cb cb, void *privdata);
    /* ch->refs went 0 -> 1 or 1 -> 0.  Called inside bp_(un)subscribe. */
    void (*chan_changed)(bp_t *bp, bp_chan_t *ch);
    bp_state_t (*state)(const bp_t *bp);
    /* bp_flush(): write buffered publishes now.  May be NULL. */
    void (*flush)(bp_t *bp);
    /* bp_free() started: call every pending publish callback with
     * BP_DROPPED, stop every timer; no user callback may follow.  Memory that
     * a running callback may still read (a payload being delivered) stays. */
    void (*shutdown)(bp_t *bp);
    /* Release the implementation's resources (not the bp_t block itself,
     * not the subscription set).  Never called inside a loop callback of
     * this bp. */
    void (*destroy)(bp_t *bp);
    /* bp_sync(): the change batch that must be confirmed, 0 when nothing is
     * pending, BP_SYNC_NEVER when the connection is down.  NULL: always 0. */
    uint64_t (*sync_target)(bp_t *bp);
} bp_vtable_t;

#define BP_SYNC_NEVER UINT64_MAX

typedef struct bp_sync_waiter {
    bp_sync_cb             cb;
    void                  *privdata;
    uint64_t               target;   /* 0: confirmed now; BP_SYNC_NEVER: failed now */
    struct bp_sync_waiter *next;
} bp_sync_waiter_t;

struct bp {
    const bp_vtable_t *vt;
    bp_callbacks_t     cb;
    bp_loop_t          loop;
    strmap_t           chans;     /* name -> bp_chan_t */
    bp_stats_t         stats;     /* .state unused (vt->state); .subscriptions kept by bp.c */
    int                depth;     /* loop callbacks of this bp on the stack */
    int                freeing;   /* bp_free() was called */
    void              *reap;      /* the 0 ms timer that finishes a deferred free */
    bp_sync_waiter_t  *sync_head, *sync_tail;   /* bp_sync() waiters, targets ascending */
    void              *sync_timer;              /* fires waiters that need no batch */
};

/* The implementation confirmed change batch `seq`: waiters up to it fire. */
void bp_sync_reached(bp_t *bp, uint64_t seq);
/* Every waiter fires with confirmed = 0 (connection lost, freeing). */
void bp_sync_fail_all(bp_t *bp);

void bp_init(bp_t *bp, const bp_vtable_t *vt, const bp_callbacks_t *cb, const bp_loop_t *loop);

static inline void bp_enter(bp_t *bp) { bp->depth++; }
static inline void bp_leave(bp_t *bp) { bp->depth--; }

static inline void *bp_timer_start(bp_t *bp, uint64_t ms, void (*fn)(void *), void *arg)
{
    return bp->loop.timer_start(bp->loop.loop_ud, ms, fn, arg);
}
/* Stops *t if it is running and clears it. */
static inline void bp_timer_stop(bp_t *bp, void **t)
{
    if (*t) {
        bp->loop.timer_stop(bp->loop.loop_ud, *t);
        *t = NULL;
    }
}

bp_chan_t *bp_chan_find(const bp_t *bp, const char *name, size_t len);
/* Frees ch when nothing holds it any more (refs == 0 and held == 0). */
void bp_chan_release(bp_t *bp, bp_chan_t *ch);

/* Hands a message to on_message when the channel is subscribed here and the
 * bp is not being freed; counts it.  Returns 1 when delivered. */
int bp_deliver(bp_t *bp, const char *channel, size_t channel_len,
               const uint8_t *payload, size_t len);
/* Calls on_state unless the bp is being freed. */
void bp_emit_state(bp_t *bp, bp_state_t s, const char *why);
/* Calls a publish callback (NULL allowed). */
static inline void bp_emit_publish(bp_t *bp, bp_publish_cb cb, void *privdata, long receivers)
{
    if (cb) cb(bp->cb.ud, receivers, privdata);
}

#endif
