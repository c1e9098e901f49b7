/* bp_local.c — the in-process backplane: a publish reaches this process's
 * own subscriptions on a later loop iteration.
 *
 * bp_publish copies the message onto a queue and arms one 0 ms timer; the
 * timer delivers the queue as it stood when it fired, in publish order.
 * Publishes made while it delivers (from on_message or a publish callback)
 * go onto the queue behind and arm the timer again, so nothing is ever
 * delivered re-entrantly and a publish loop cannot starve the event loop.
 * Whether a channel is subscribed is decided at delivery time.
 *
 * The queue is bounded like the Redis publish buffer (BP_LOCAL_MAX_PENDING
 * bytes of channel + payload): past it a publish gets BP_DROPPED, in its
 * place in the queue, and is counted.
 */
#include "bp_int.h"

#include <string.h>

#include "ws_alloc.h"

#define BP_LOCAL_MAX_PENDING (8u << 20)

typedef struct bp_local_msg {
    struct bp_local_msg *next;
    bp_publish_cb        cb;        /* NULL once its callback ran */
    void                *privdata;
    size_t               channel_len, len;
    int                  dropped;   /* over the bound: BP_DROPPED, no delivery */
    uint8_t              data[];    /* channel, then payload */
} bp_local_msg_t;

typedef struct bp_local {
    bp_t            base;
    bp_local_msg_t *head, *tail;    /* the queue; head is being delivered */
    uint64_t        pending_bytes;
    void           *deliver_timer;
    void           *state_timer;    /* reports BP_UP once, after bp_local_new */
} bp_local_t;

static void local_deliver_cb(void *arg);

static void local_publish(bp_t *bp, const char *channel, size_t channel_len,
                          const uint8_t *payload, size_t len, bp_publish_cb cb, void *privdata)
{
    bp_local_t *l = (bp_local_t *)bp;
    size_t bytes = channel_len + len;
    int dropped = l->pending_bytes + bytes > BP_LOCAL_MAX_PENDING;
    bp_local_msg_t *m = ws_xmalloc(sizeof *m + (dropped ? 0 : bytes));
    m->next = NULL;
    m->cb = cb;
    m->privdata = privdata;
    m->dropped = dropped;
    m->channel_len = dropped ? 0 : channel_len;
    m->len = dropped ? 0 : len;
    if (dropped) {
        bp->stats.publish_dropped++;
    } else {
        memcpy(m->data, channel, channel_len);
        if (len) memcpy(m->data + channel_len, payload, len);
        l->pending_bytes += bytes;
        bp->stats.pending_bytes = l->pending_bytes;
    }
    if (l->tail) l->tail->next = m;
    else l->head = m;
    l->tail = m;
    if (!l->deliver_timer) l->deliver_timer = bp_timer_start(bp, 0, local_deliver_cb, l);
}

static void local_unlink_head(bp_local_t *l)
{
    bp_local_msg_t *m = l->head;
    l->head = m->next;
    if (!l->head) l->tail = NULL;
    l->pending_bytes -= m->channel_len + m->len;
    l->base.stats.pending_bytes = l->pending_bytes;
}

static void local_deliver_cb(void *arg)
{
    bp_local_t *l = arg;
    bp_t *bp = &l->base;
    l->deliver_timer = NULL;
    bp_enter(bp);
    /* Deliver what was queued before this callback started; later publishes
     * wait for the next timer. */
    bp_local_msg_t *last = l->tail;
    while (l->head && !bp->freeing) {
        bp_local_msg_t *m = l->head;
        long receivers = BP_DROPPED;
        if (!m->dropped) {
            /* m stays on the queue while on_message runs: a bp_free from in
             * there reports it as dropped and keeps its bytes alive until the
             * deferred free. */
            receivers = bp_deliver(bp, (const char *)m->data, m->channel_len,
                                   m->data + m->channel_len, m->len);
            if (bp->freeing) break;
            bp->stats.published++;
        }
        int was_last = m == last;
        bp_publish_cb cb = m->cb;
        void *privdata = m->privdata;
        local_unlink_head(l);
        ws_xfree(m);
        bp_emit_publish(bp, cb, privdata, receivers);
        if (was_last) break;
    }
    if (!bp->freeing && l->head && !l->deliver_timer)
        l->deliver_timer = bp_timer_start(bp, 0, local_deliver_cb, l);
    bp_leave(bp);
}

static void local_state_cb(void *arg)
{
    bp_local_t *l = arg;
    l->state_timer = NULL;
    bp_enter(&l->base);
    bp_emit_state(&l->base, BP_UP, "in-process");
    bp_leave(&l->base);
}

static void local_chan_changed(bp_t *bp, bp_chan_t *ch)
{
    (void)bp;
    (void)ch;   /* delivery looks the channel up when it happens */
}

static bp_state_t local_state(const bp_t *bp)
{
    (void)bp;
    return BP_UP;
}

static void local_shutdown(bp_t *bp)
{
    bp_local_t *l = (bp_local_t *)bp;
    bp_timer_stop(bp, &l->deliver_timer);
    bp_timer_stop(bp, &l->state_timer);
    for (bp_local_msg_t *m = l->head; m; m = m->next) {
        bp_publish_cb cb = m->cb;
        m->cb = NULL;
        if (!m->dropped) bp->stats.publish_dropped++;
        bp_emit_publish(bp, cb, m->privdata, BP_DROPPED);
    }
}

static void local_destroy(bp_t *bp)
{
    bp_local_t *l = (bp_local_t *)bp;
    while (l->head) {
        bp_local_msg_t *m = l->head;
        l->head = m->next;
        ws_xfree(m);
    }
    l->tail = NULL;
}

static const bp_vtable_t local_vt = {
    .publish = local_publish,
    .chan_changed = local_chan_changed,
    .state = local_state,
    .shutdown = local_shutdown,
    .destroy = local_destroy,
};

bp_t *bp_local_new(const bp_callbacks_t *cb, const bp_loop_t *loop)
{
    if (!loop || !loop->timer_start || !loop->timer_stop) return NULL;
    bp_local_t *l = ws_xcalloc(1, sizeof *l);
    bp_init(&l->base, &local_vt, cb, loop);
    l->state_timer = bp_timer_start(&l->base, 0, local_state_cb, l);
    return &l->base;
}
