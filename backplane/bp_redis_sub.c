/* bp_redis_sub.c — the subscribe connection of the Redis backplane:
 * batched SUBSCRIBE/UNSUBSCRIBE, the restore after a reconnect, messages.
 *
 * Each channel entry says whether the server has it (BP_CHAN_REMOTE: a
 * SUBSCRIBE was sent on the current connection) and bp_subscribe /
 * bp_unsubscribe only queue the entries whose count crossed zero.  A flush
 * — on the kick, i.e. once per loop iteration — compares each queued entry's
 * count with REMOTE and sends one SUBSCRIBE ch1 ch2 ... and one UNSUBSCRIBE
 * ... for the lot (chunked at BP_SUB_CHUNK channels).  A channel subscribed
 * and unsubscribed again before the flush sends nothing.
 *
 * One batch on the wire at a time.  Its confirmations are counted, so the
 * end of the restore batch is known exactly (BP_SYNCING -> BP_UP), and a
 * channel is never in two unconfirmed commands at once, so hiredis'
 * per-channel callback entries never see a SUBSCRIBE and an UNSUBSCRIBE of
 * the same channel interleaved.  Changes made meanwhile wait for the batch's
 * last confirmation (one round trip at most) and go out together.  Within a
 * batch SUBSCRIBE goes first, so the server's count for the connection can
 * reach 0 only on the batch's last reply, when hiredis leaves subscribed
 * mode with nothing of ours pending.
 *
 * In subscribed mode hiredis hands the SUBSCRIBE confirmation, every
 * message and the UNSUBSCRIBE confirmation of a channel to that channel's
 * callback.  An error reply to SUBSCRIBE (NOPERM ...) has no callback to go
 * to: hiredis closes the context with the error text as errstr, which
 * arrives here as a NULL reply or a disconnect, and the backplane goes
 * BP_DOWN with that text and retries.
 *
 * The probe channel (bp_redis_probe.c) rides along with the set: restored
 * first after every reconnect, never unsubscribed, and its messages are
 * taken before bp_deliver, so they never reach on_message.
 */
#include "bp_redis_int.h"

#include <string.h>
#include <strings.h>

#include "ws_alloc.h"

#define BP_SUB_CHUNK 1024   /* channels per SUBSCRIBE / UNSUBSCRIBE command */

bp_state_t bp_redis_sub_state(const bp_redis_t *r)
{
    if (r->sub.phase != BP_R_READY) return BP_DOWN;
    return r->syncing ? BP_SYNCING : BP_UP;
}

static void queue_change(bp_redis_t *r, bp_chan_t *ch)
{
    if (ch->held & BP_CHAN_QUEUED) return;
    ch->held |= BP_CHAN_QUEUED;
    ch->next = r->changes;
    r->changes = ch;
}

void bp_redis_sub_changed(bp_t *bp, bp_chan_t *ch)
{
    bp_redis_t *r = (bp_redis_t *)bp;
    /* Not READY: the server has nothing (REMOTE is clear everywhere) and the
     * restore after the handshake takes the whole set as it then is. */
    if (r->sub.phase != BP_R_READY) return;
    queue_change(r, ch);
    if (!r->sub_inflight) bp_redis_kick(r);   /* else the batch's end flushes */
}

static void sub_reply_cb(redisAsyncContext *ac, void *reply, void *privdata);

/* Sends `list` (n channels, linked by ->next) as `cmd` commands of at most
 * BP_SUB_CHUNK channels.  Returns 0, or -1 when hiredis refused (the context
 * is going away; its loss resets everything). */
static int send_list(bp_redis_t *r, const char *cmd, bp_chan_t *list, size_t n, int subscribe)
{
    bp_t *bp = &r->base;
    if (!n) return 0;
    size_t cap = 1 + (n < BP_SUB_CHUNK ? n : BP_SUB_CHUNK);
    const char **argv = ws_xmalloc(cap * sizeof *argv);
    size_t *lens = ws_xmalloc(cap * sizeof *lens);
    int rc = 0;
    argv[0] = cmd;
    lens[0] = strlen(cmd);
    while (list) {
        size_t k = 1;
        for (bp_chan_t *ch = list; ch && k < cap; ch = ch->next, k++) {
            argv[k] = ch->name;
            lens[k] = ch->len;
        }
        int ok = rc == 0 &&
                 redisAsyncCommandArgv(r->sub.ac, sub_reply_cb, NULL, (int)k, argv, lens) == REDIS_OK;
        if (ok) r->sub_inflight += k - 1;
        else rc = -1;
        for (size_t i = 1; i < k; i++) {
            bp_chan_t *ch = list;
            list = ch->next;
            ch->next = NULL;
            /* A refused SUBSCRIBE leaves REMOTE clear: the reconnect restores
             * it.  A refused UNSUBSCRIBE needs nothing: the server forgets
             * everything with the connection. */
            if (ok && subscribe) ch->held |= BP_CHAN_REMOTE;
            else if (!subscribe) ch->held &= ~BP_CHAN_REMOTE;
            bp_chan_release(bp, ch);
        }
    }
    ws_xfree(argv);
    ws_xfree(lens);
    return rc;
}

void bp_redis_sub_flush(bp_redis_t *r)
{
    bp_t *bp = &r->base;
    if (r->sub.phase != BP_R_READY || r->sub_inflight || !r->changes) return;
    bp_chan_t *list = r->changes, *subs = NULL, *unsubs = NULL;
    size_t nsub = 0, nunsub = 0;
    r->changes = NULL;
    while (list) {
        bp_chan_t *ch = list;
        list = ch->next;
        ch->held &= ~BP_CHAN_QUEUED;
        int want = ch->refs > 0, have = (ch->held & BP_CHAN_REMOTE) != 0;
        if (want && !have) {
            ch->next = subs;
            subs = ch;
            nsub++;
        } else if (!want && have) {   /* REMOTE keeps it alive until sent */
            ch->next = unsubs;
            unsubs = ch;
            nunsub++;
        } else {
            ch->next = NULL;
            bp_chan_release(bp, ch);  /* subscribed and unsubscribed again: nothing to send */
        }
    }
    r->batch_sent++;
    send_list(r, "SUBSCRIBE", subs, nsub, 1);
    send_list(r, "UNSUBSCRIBE", unsubs, nunsub, 0);
    if (!r->sub_inflight) {
        /* Nothing went out (every change cancelled itself): the batch is
         * trivially confirmed, and bp_sync waiters on it must not hang. */
        r->batch_done = r->batch_sent;
        bp_sync_reached(bp, r->batch_done);
    }
}

/* The batch that carries every change made so far: the one on the wire,
 * or the next one when changes are queued.  Down: it cannot be confirmed. */
uint64_t bp_redis_sync_target(bp_t *bp)
{
    bp_redis_t *r = (bp_redis_t *)bp;
    if (r->sub.phase != BP_R_READY) return BP_SYNC_NEVER;
    if (r->changes) return r->batch_sent + 1;
    return r->sub_inflight ? r->batch_sent : 0;
}

void bp_redis_sub_ready(bp_redis_t *r)
{
    bp_t *bp = &r->base;
    r->restored = 0;
    if (r->probe_chan.name) queue_change(r, &r->probe_chan);   /* not counted: not the user's */
    for (size_t i = 0; i < bp->chans.cap; i++) {
        bp_chan_t *ch = bp->chans.slots[i].key ? bp->chans.slots[i].value : NULL;
        if (ch && ch->refs) {
            queue_change(r, ch);
            r->restored++;
        }
    }
    r->syncing = 1;
    bp_redis_sub_flush(r);
    if (!r->sub_inflight) r->syncing = 0;   /* nothing to restore */
}

void bp_redis_sub_lost(bp_redis_t *r)
{
    bp_t *bp = &r->base;
    r->sub_inflight = 0;
    r->syncing = 0;
    r->batch_done = r->batch_sent;
    bp_sync_fail_all(bp);                 /* restored on reconnect; not confirmed now */
    bp_chan_t *list = r->changes, *gone = NULL;
    r->changes = NULL;
    while (list) {
        bp_chan_t *ch = list;
        list = ch->next;
        ch->next = NULL;
        ch->held &= ~(BP_CHAN_QUEUED | BP_CHAN_REMOTE);
        bp_chan_release(bp, ch);
    }
    /* The server forgot every subscription of the connection. */
    r->probe_chan.held &= ~BP_CHAN_REMOTE;
    for (size_t i = 0; i < bp->chans.cap; i++) {
        bp_chan_t *ch = bp->chans.slots[i].key ? bp->chans.slots[i].value : NULL;
        if (!ch) continue;
        ch->held &= ~BP_CHAN_REMOTE;
        if (!ch->refs && !ch->held) {   /* cannot free while iterating the map */
            ch->next = gone;
            gone = ch;
        }
    }
    while (gone) {
        bp_chan_t *ch = gone;
        gone = ch->next;
        ch->next = NULL;
        bp_chan_release(bp, ch);
    }
}

/* The last confirmation of a batch arrived. */
static void batch_done(bp_redis_t *r)
{
    r->batch_done = r->batch_sent;
    bp_sync_reached(&r->base, r->batch_done);
    if (r->base.freeing) return;
    if (r->syncing) {
        r->syncing = 0;
        bp_redis_notify(r);   /* BP_UP if the publish connection is READY too */
        if (r->base.freeing) return;
    }
    bp_redis_sub_flush(r);
}

static void sub_reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    bp_rconn_t *c = bp_redis_conn_of(ac);
    if (!c) return;
    bp_redis_t *r = c->r;
    bp_t *bp = &r->base;
    const redisReply *rp = reply;
    bp_enter(bp);
    if (!rp) {
        bp_redis_conn_lost(c, bp_redis_errstr(ac, "connection lost"), 0);
    } else if (!bp->freeing && rp->type == REDIS_REPLY_ARRAY && rp->elements >= 3 &&
               rp->element[0]->type == REDIS_REPLY_STRING) {
        const char *kind = rp->element[0]->str;
        const redisReply *ch = rp->element[1], *msg = rp->element[2];
        if (strcasecmp(kind, "message") == 0) {
            if (ch->type == REDIS_REPLY_STRING && msg->type == REDIS_REPLY_STRING &&
                !bp_redis_probe_message(r, ch->str, ch->len, msg->str, msg->len))
                bp_deliver(bp, ch->str, ch->len, (const uint8_t *)msg->str, msg->len);
        } else if (strcasecmp(kind, "subscribe") == 0 || strcasecmp(kind, "unsubscribe") == 0) {
            if (r->sub_inflight && --r->sub_inflight == 0) batch_done(r);
        }
    }
    bp_leave(bp);
}
