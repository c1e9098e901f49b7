/* bp_redis_probe.c — finds a stale Redis connection: one that stays open
 * but no longer carries anything (a half-open TCP connection whose peer
 * vanished without a FIN or RST, a subscriber left on a node demoted by a
 * failover).  Such a connection raises no error: hiredis waits forever, the
 * state stays BP_UP, and every message for this node is lost in silence.
 *
 * Every probe_interval, while the backplane is BP_UP, the publish
 * connection sends PUBLISH <probe channel> <n> (n = 1, 2, ... over the bp's
 * life) and the subscribe connection, subscribed to that channel, must see
 * it come back.  The check rides the same tick: when the probe sent
 * BP_PROBE_MISSES ticks ago has not come back although Redis answered its
 * PUBLISH, the subscribe connection is stale; when Redis answered nothing
 * since either, that may be a busy Redis (a slow script, a fork), which
 * delays everything and loses nothing, so the connections get until
 * BP_PROBE_SILENT_MISSES ticks (4 s at 500 ms: a dead path is still found
 * within 5 s) before they are taken for stale.
 * Counting ticks rather than reading a clock keeps it honest under a loop
 * stall: ticks do not pile up while the loop is blocked (the timer is armed
 * again only after it ran), so a stall costs one tick and the replies it
 * held up are read before the next one.  With the gateway's default 500 ms
 * interval a frozen subscriber is found 1.5 to 2 s after it began, and the
 * connections are back before the 3 s trailer of a channel whose last
 * messages were lost meanwhile (docs/protocol.md, "Stale connections").
 *
 * Both connections are dropped, not just the subscriber: a probe that did
 * not come back may have been lost on either (its PUBLISH reply tells
 * which, and goes into the `why` text), and the existing reconnect path
 * (bp_redis_conn_lost: backoff from 50-150 ms, the other connection pulled
 * along, the subscription set restored before BP_UP) is what brings them
 * back.  A probe from before that (numbered <= probe_base) that turns up
 * late is ignored.
 *
 * The tradeoff: a subscriber that is alive but more than BP_PROBE_MISSES
 * intervals behind its stream (Redis' output buffer for it holds that much)
 * is treated as stale too; its reconnect drops that backlog, which the
 * gateway's sequence numbers then count as lost.  Redis' own
 * client-output-buffer-limit for pub/sub would cut such a client soon after.
 *
 * Probes are not publishes of the user's: they go straight to hiredis (no
 * ring entry, no pending bytes, not in stats.published) with their own
 * reply callback, which hiredis calls in order with the ring's.
 */
#include "bp_redis_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws_alloc.h"

static void probe_tick(void *arg);

void bp_redis_probe_init(bp_redis_t *r, const char *channel, uint64_t interval_ms)
{
    if (!channel || !channel[0] || !interval_ms) return;
    r->probe_chan.len = strlen(channel);
    r->probe_chan.name = ws_xstrndup(channel, r->probe_chan.len);
    r->probe_chan.refs = 1;               /* never released: see bp_redis_int.h */
    r->probe_interval = interval_ms;
    r->probe_timer = bp_timer_start(&r->base, interval_ms, probe_tick, r);
}

void bp_redis_probe_stop(bp_redis_t *r)
{
    bp_timer_stop(&r->base, &r->probe_timer);
}

void bp_redis_probe_destroy(bp_redis_t *r)
{
    ws_xfree(r->probe_chan.name);
    r->probe_chan.name = NULL;
}

static void probe_reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    bp_rconn_t *c = bp_redis_conn_of(ac);
    if (!c) return;
    bp_redis_t *r = c->r;
    bp_t *bp = &r->base;
    bp_enter(bp);
    if (!reply) {
        bp_redis_conn_lost(c, bp_redis_errstr(ac, "connection lost"), 0);
    } else if (((const redisReply *)reply)->type == REDIS_REPLY_INTEGER) {
        uint64_t n = (uint64_t)(uintptr_t)privdata;
        if (n > r->probe_acked) r->probe_acked = n;
    }
    bp_leave(bp);
}

/* Stale: counted, and both connections go down the usual reconnect path.
 * Called from the tick, outside hiredis: the contexts are freed at once
 * and their pending callbacks (NULL replies) are ignored. */
static void declare_stale(bp_redis_t *r, unsigned misses)
{
    bp_t *bp = &r->base;
    uint64_t n = r->probe_sent - misses + 1;   /* the probe overdue */
    char why[160];
    snprintf(why, sizeof why,
             "stale: probe %" PRIu64 " not back after %" PRIu64 " ms (its PUBLISH %s)",
             n, r->probe_interval * misses,
             r->probe_acked >= n ? "was answered: the subscribe connection no longer receives"
                                 : "is unanswered: Redis answers nothing on either connection");
    bp->stats.stale++;
    bp_redis_conn_lost(&r->sub, why, 1);
    if (!bp->freeing) bp_redis_conn_lost(&r->pub, why, 1);
}

static void probe_send(bp_redis_t *r)
{
    char buf[24];
    uint64_t n = r->probe_sent + 1;
    int len = snprintf(buf, sizeof buf, "%" PRIu64, n);
    const char *argv[3] = { "PUBLISH", r->probe_chan.name, buf };
    size_t lens[3] = { 7, r->probe_chan.len, (size_t)len };
    if (redisAsyncCommandArgv(r->pub.ac, probe_reply_cb, (void *)(uintptr_t)n, 3, argv, lens) == REDIS_OK)
        r->probe_sent = n;
}

/* The probe sent `misses` ticks ago (in this BP_UP period) has not come
 * back: no later one did either. */
static int probe_overdue(const bp_redis_t *r, unsigned misses)
{
    return r->probe_sent - r->probe_base >= misses && r->probe_back <= r->probe_sent - misses;
}

static void probe_tick(void *arg)
{
    bp_redis_t *r = arg;
    bp_t *bp = &r->base;
    r->probe_timer = NULL;
    bp_enter(bp);
    if (bp_state(bp) != BP_UP) {
        r->probe_live = 0;                  /* down or restoring: nothing to measure */
    } else if (!r->probe_live) {            /* a new BP_UP period: count from here */
        r->probe_live = 1;
        r->probe_base = r->probe_sent;
        probe_send(r);
    } else if (probe_overdue(r, BP_PROBE_MISSES) &&
               r->probe_acked >= r->probe_sent - BP_PROBE_MISSES + 1) {
        declare_stale(r, BP_PROBE_MISSES);          /* Redis works; the subscriber hears nothing */
    } else if (probe_overdue(r, BP_PROBE_SILENT_MISSES)) {
        declare_stale(r, BP_PROBE_SILENT_MISSES);   /* silent longer than a busy Redis would be */
    } else {
        probe_send(r);
    }
    if (!bp->freeing) r->probe_timer = bp_timer_start(bp, r->probe_interval, probe_tick, r);
    bp_leave(bp);
}

int bp_redis_probe_message(bp_redis_t *r, const char *channel, size_t channel_len,
                           const char *payload, size_t len)
{
    if (!r->probe_chan.name || channel_len != r->probe_chan.len ||
        memcmp(channel, r->probe_chan.name, channel_len) != 0)
        return 0;
    char buf[24];
    if (len == 0 || len >= sizeof buf) return 1;   /* not ours: still never delivered */
    memcpy(buf, payload, len);
    buf[len] = '\0';
    char *end;
    uint64_t n = strtoull(buf, &end, 10);
    /* Only this period's probes count; one from before the last reconnect
     * says nothing about the connections we have now. */
    if (*end == '\0' && n > r->probe_base && n <= r->probe_sent && n > r->probe_back)
        r->probe_back = n;
    return 1;
}
