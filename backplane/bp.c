/* bp.c — the generic backplane layer: dispatch to an implementation, the
 * reference-counted subscription set, the deferred free.  See backplane.h
 * for the contract and bp_int.h for the rules an implementation follows. */
#include "bp_int.h"

#include <string.h>

#include "ws_alloc.h"

void bp_init(bp_t *bp, const bp_vtable_t *vt, const bp_callbacks_t *cb, const bp_loop_t *loop)
{
    memset(bp, 0, sizeof *bp);
    bp->vt = vt;
    if (cb) bp->cb = *cb;
    bp->loop = *loop;
}

const char *bp_state_name(bp_state_t s)
{
    switch (s) {
    case BP_DOWN:    return "down";
    case BP_SYNCING: return "syncing";
    case BP_UP:      return "up";
    }
    return "unknown";
}

/* ---- subscription set -------------------------------------------------------- */

bp_chan_t *bp_chan_find(const bp_t *bp, const char *name, size_t len)
{
    return strmap_get(&bp->chans, name, len);
}

static void bp_chan_free(bp_chan_t *ch)
{
    ws_xfree(ch->name);
    ws_xfree(ch);
}

void bp_chan_release(bp_t *bp, bp_chan_t *ch)
{
    if (ch->refs || ch->held) return;
    strmap_del(&bp->chans, ch->name, ch->len);
    bp_chan_free(ch);
}

void bp_subscribe(bp_t *bp, const char *channel, size_t channel_len)
{
    if (!bp || bp->freeing) return;
    bp_chan_t *ch = bp_chan_find(bp, channel, channel_len);
    if (!ch) {
        ch = ws_xcalloc(1, sizeof *ch);
        ch->name = ws_xstrndup(channel, channel_len);
        ch->len = channel_len;
        strmap_put(&bp->chans, ch->name, ch->len, ch);
    }
    if (ch->refs++ == 0) {
        bp->stats.subscriptions++;
        bp->vt->chan_changed(bp, ch);
    }
}

/* An unsubscribe without a matching subscribe is ignored: the count never
 * goes below zero, so one stray call cannot cancel someone else's. */
void bp_unsubscribe(bp_t *bp, const char *channel, size_t channel_len)
{
    if (!bp || bp->freeing) return;
    bp_chan_t *ch = bp_chan_find(bp, channel, channel_len);
    if (!ch || ch->refs == 0) return;
    if (--ch->refs == 0) {
        bp->stats.subscriptions--;
        bp->vt->chan_changed(bp, ch);
        bp_chan_release(bp, ch);
    }
}

int bp_deliver(bp_t *bp, const char *channel, size_t channel_len,
               const uint8_t *payload, size_t len)
{
    if (bp->freeing) return 0;
    /* A message that was in flight when the last bp_unsubscribe() ran is not
     * handed over: after unsubscribing, the gateway has nobody to give it to. */
    bp_chan_t *ch = bp_chan_find(bp, channel, channel_len);
    if (!ch || ch->refs == 0) return 0;
    bp->stats.received++;
    if (bp->cb.on_message) bp->cb.on_message(bp->cb.ud, channel, channel_len, payload, len);
    return 1;
}

void bp_emit_state(bp_t *bp, bp_state_t s, const char *why)
{
    if (!bp->freeing && bp->cb.on_state) bp->cb.on_state(bp->cb.ud, s, why);
}

/* ---- dispatch ------------------------------------------------------------------ */

int bp_publish(bp_t *bp, const char *channel, size_t channel_len,
               const uint8_t *payload, size_t len, bp_publish_cb cb, void *privdata)
{
    /* During bp_free (a publish callback publishing again) there is no later
     * in which a callback could run: the publish is ignored. */
    if (!bp || bp->freeing) return BP_REFUSED;
    /* An implementation counts a publish it refuses at once in
     * publish_dropped before returning (and owes the callback for later);
     * nothing else can be counted during the call, since neither
     * implementation does I/O or runs callbacks inside it. */
    uint64_t dropped = bp->stats.publish_dropped;
    bp->vt->publish(bp, channel, channel_len, payload, len, cb, privdata);
    return bp->stats.publish_dropped != dropped ? BP_REFUSED : 0;
}

void bp_flush(bp_t *bp)
{
    if (bp && !bp->freeing && bp->vt->flush) bp->vt->flush(bp);
}

bp_state_t bp_state(const bp_t *bp)
{
    return bp->vt->state(bp);
}

void bp_get_stats(const bp_t *bp, bp_stats_t *out)
{
    *out = bp->stats;
    out->state = bp->vt->state(bp);
}

/* ---- free ------------------------------------------------------------------------ */

static void bp_destroy(bp_t *bp)
{
    bp->vt->destroy(bp);
    for (size_t i = 0; i < bp->chans.cap; i++)
        if (bp->chans.slots[i].key) bp_chan_free(bp->chans.slots[i].value);
    strmap_free(&bp->chans);
    ws_xfree(bp);   /* bp_t is the first member of the implementation's block */
}

static void bp_reap_cb(void *arg)
{
    bp_t *bp = arg;
    bp->reap = NULL;
    bp_destroy(bp);
}

/* ---- bp_sync ------------------------------------------------------------------ */

static void sync_fire(bp_t *bp, bp_sync_waiter_t *w, int confirmed)
{
    bp_sync_cb cb = w->cb;
    void *privdata = w->privdata;
    ws_xfree(w);
    bp_enter(bp);
    cb(bp->cb.ud, confirmed, privdata);
    bp_leave(bp);
}

/* Pops waiters from the head while `pred` holds for them. */
static void sync_fire_while(bp_t *bp, uint64_t upto, int all, int confirmed)
{
    while (bp->sync_head && (all || bp->sync_head->target <= upto || bp->sync_head->target == BP_SYNC_NEVER)) {
        bp_sync_waiter_t *w = bp->sync_head;
        bp->sync_head = w->next;
        if (!bp->sync_head) bp->sync_tail = NULL;
        int ok = all ? confirmed : w->target != BP_SYNC_NEVER;
        sync_fire(bp, w, ok);
    }
}

static void sync_timer_cb(void *arg)
{
    bp_t *bp = arg;
    bp->sync_timer = NULL;
    /* Waiters that needed no batch (target 0) or could not have one
     * (BP_SYNC_NEVER) sit at the head: fire them. */
    while (bp->sync_head && (bp->sync_head->target == 0 || bp->sync_head->target == BP_SYNC_NEVER)) {
        bp_sync_waiter_t *w = bp->sync_head;
        bp->sync_head = w->next;
        if (!bp->sync_head) bp->sync_tail = NULL;
        sync_fire(bp, w, w->target == 0);
    }
}

void bp_sync(bp_t *bp, bp_sync_cb cb, void *privdata)
{
    if (!bp || bp->freeing || !cb) return;
    uint64_t target = bp->vt->sync_target ? bp->vt->sync_target(bp) : 0;
    bp_sync_waiter_t *w = ws_xcalloc(1, sizeof *w);
    w->cb = cb;
    w->privdata = privdata;
    w->target = target;
    /* Targets only grow, and immediate ones (0, NEVER) are answered on the
     * next iteration: they go first so they never wait behind a batch. */
    if (target == 0 || target == BP_SYNC_NEVER) {
        w->next = bp->sync_head;
        bp->sync_head = w;
        if (!bp->sync_tail) bp->sync_tail = w;
        if (!bp->sync_timer) bp->sync_timer = bp_timer_start(bp, 0, sync_timer_cb, bp);
        return;
    }
    if (bp->sync_tail) bp->sync_tail->next = w;
    else bp->sync_head = w;
    bp->sync_tail = w;
}

void bp_sync_reached(bp_t *bp, uint64_t seq)
{
    sync_fire_while(bp, seq, 0, 1);
}

void bp_sync_fail_all(bp_t *bp)
{
    sync_fire_while(bp, 0, 1, 0);
}

void bp_free(bp_t *bp)
{
    if (!bp || bp->freeing) return;
    bp->freeing = 1;
    bp_timer_stop(bp, &bp->sync_timer);
    bp_sync_fail_all(bp);
    bp->vt->shutdown(bp);
    if (bp->depth > 0) {
        /* Inside one of our loop callbacks: the caller up the stack (and
         * hiredis above it) still holds pointers into this bp.  Finish on the
         * next loop iteration; nothing of ours calls the user until then. */
        bp->reap = bp_timer_start(bp, 0, bp_reap_cb, bp);
        return;
    }
    bp_destroy(bp);
}
