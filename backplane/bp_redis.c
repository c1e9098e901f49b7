/* bp_redis.c — the Redis backplane: configuration, the two connections
 * (reconnect, backoff, AUTH/SELECT handshake, connect timeout), the publish
 * side and the combined state.  Subscriptions live in bp_redis_sub.c.
 *
 * Written against hiredis 0.14 (Debian bookworm's), RESP2.  Facts about its
 * async.c that this file depends on:
 *   - reply callbacks run with REDIS_IN_CALLBACK set, so a redisAsyncFree()
 *     inside one is deferred until the callback returns; the connect
 *     callback is NOT run that way, so nothing here frees a context from
 *     inside it;
 *   - when a context dies (I/O error, EOF, an error reply nobody waited for)
 *     hiredis itself frees it: first every pending reply callback and every
 *     channel callback runs with a NULL reply, then the disconnect callback
 *     (only if it had connected; a failed connect reports through the
 *     connect callback with REDIS_ERR instead);
 *   - ac->data is never touched by hiredis: it points at our bp_rconn_t
 *     while the context is live and is set to NULL when we let go of it, so
 *     callbacks from a context we dropped are recognised and ignored;
 *   - redisAsyncConnect() calls getaddrinfo() on the caller's thread for the
 *     host it is given, so it is only ever given a numeric address (for
 *     which glibc answers without asking NSS or DNS).
 *
 * Host names.  A name ("redis" in docker-compose) is looked up by a
 * resolver thread (bp_resolve.c) on every attempt — the container's address
 * may change across restarts — and the connection then goes to the numeric
 * address.  The loop polls the lookup with a timer (1 ms, doubling up to
 * BP_RESOLVE_POLL_MAX_MS): backplane.h gives it timers, not a wake-up.  The
 * attempt's deadline (connect_timeout) covers the lookup too: a lookup that
 * has not answered by then fails the attempt ("timed out ... resolving"),
 * which is retried with backoff; the next attempt takes that same lookup
 * over rather than starting a second thread (see conn_start), so a dead DNS
 * server costs at most one thread per connection.  Numeric addresses and
 * unix_path never start a thread.
 *
 * Reconnecting together.  Each connection backs off on its own (exponential,
 * +-50 % jitter so that many nodes do not retry in step), but when one of
 * them is READY again Redis is evidently back: the other one is retried at
 * once with its backoff reset (pull_other), so both come back within a round
 * trip of each other instead of up to 1.5 x backoff_max apart.
 *
 * Publishes.  While the publish connection is READY a publish goes straight
 * into hiredis (which copies it into its output buffer) and its callback
 * waits in a ring, answered in order by PUBLISH's integer replies.  While it
 * is not, the publish is copied onto a wait queue that is sent, in order,
 * when the connection is READY again.  Both together are bounded by
 * max_pending_bytes (channel + payload bytes), which also bounds hiredis'
 * output buffer.  Publishes that were sent but not answered when the
 * connection dropped are NOT sent again — Redis may have executed them, and
 * a resend could deliver twice — they get BP_DROPPED and are counted.
 *
 * A connection that stays open but carries nothing raises no error here;
 * bp_redis_probe.c finds it and hands both connections to
 * bp_redis_conn_lost like any other loss.
 */
#include "bp_redis_int.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ws_alloc.h"

/* The resolver is polled after 1 ms, then at doubling intervals up to this:
 * /etc/hosts answers before the first poll, a DNS server's answer waits at
 * most this long to be picked up. */
#define BP_RESOLVE_POLL_MAX_MS 25

static void conn_start(bp_rconn_t *c);

/* ---- small helpers ------------------------------------------------------------- */

bp_rconn_t *bp_redis_conn_of(const redisAsyncContext *ac)
{
    bp_rconn_t *c = ac->data;
    return c && c->ac == ac ? c : NULL;
}

const char *bp_redis_errstr(const redisAsyncContext *ac, const char *fallback)
{
    return ac->c.err && ac->c.errstr[0] ? ac->c.errstr : fallback;
}

static uint64_t rng_next(bp_redis_t *r)
{
    /* xorshift64*: jitter only, no need for more */
    uint64_t x = r->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* backoff_min doubling per failed attempt up to backoff_max, then +-50 %. */
static uint64_t backoff_ms(bp_redis_t *r, unsigned attempt)
{
    uint64_t d = r->backoff_min;
    for (unsigned i = 0; i < attempt && d < r->backoff_max; i++) d *= 2;
    if (d > r->backoff_max) d = r->backoff_max;
    return d / 2 + rng_next(r) % (d + 1);
}

/* ---- the kick: work deferred to the next loop iteration ----------------------- */

static void drops_report(bp_redis_t *r)
{
    bp_t *bp = &r->base;
    /* Only the drops owed when the kick fired: a callback that publishes into
     * a full buffer again is answered by the next kick, not in a loop here. */
    size_t end = r->drops_len;
    while (r->drops_pos < end && !bp->freeing) {
        bp_rpend_t e = r->drops[r->drops_pos++];
        bp_emit_publish(bp, e.cb, e.privdata, BP_DROPPED);
    }
    if (bp->freeing) return;
    if (r->drops_pos < r->drops_len)
        memmove(r->drops, r->drops + r->drops_pos, (r->drops_len - r->drops_pos) * sizeof *r->drops);
    r->drops_len -= r->drops_pos;
    r->drops_pos = 0;
    if (r->drops_len) bp_redis_kick(r);
}

static void kick_cb(void *arg)
{
    bp_redis_t *r = arg;
    bp_t *bp = &r->base;
    r->kick = NULL;
    bp_enter(bp);
    drops_report(r);
    if (!bp->freeing) bp_redis_sub_flush(r);
    if (!bp->freeing) bp_redis_notify(r);
    bp_leave(bp);
}

void bp_redis_kick(bp_redis_t *r)
{
    if (!r->kick && !r->base.freeing) r->kick = bp_timer_start(&r->base, 0, kick_cb, r);
}

static void drop_later(bp_redis_t *r, bp_publish_cb cb, void *privdata)
{
    r->base.stats.publish_dropped++;
    if (!cb) return;
    if (r->drops_len == r->drops_cap) {
        r->drops_cap = r->drops_cap ? r->drops_cap * 2 : 16;
        r->drops = ws_xrealloc(r->drops, r->drops_cap * sizeof *r->drops);
    }
    r->drops[r->drops_len++] = (bp_rpend_t){ cb, privdata, 0 };
    bp_redis_kick(r);
}

/* ---- state ------------------------------------------------------------------------ */

static bp_state_t redis_state(const bp_t *bp)
{
    const bp_redis_t *r = (const bp_redis_t *)bp;
    bp_state_t p = r->pub.phase == BP_R_READY ? BP_UP : BP_DOWN;
    bp_state_t s = bp_redis_sub_state(r);
    return p < s ? p : s;
}

/* The failed connection to blame for BP_DOWN (the subscribe one first), or
 * NULL when none has failed yet (the first connect is still under way). */
static const bp_rconn_t *down_conn(const bp_redis_t *r)
{
    if (r->sub.phase != BP_R_READY && r->sub.why[0]) return &r->sub;
    if (r->pub.phase != BP_R_READY && r->pub.why[0]) return &r->pub;
    return NULL;
}

/* Tells on_state about a change of state, or about a new reason for being
 * down: a wrong password is news even though the state stays BP_DOWN; the
 * same refusal on every retry, or on the other connection, is not.
 * Outside a loop callback — inside a bp_* call or bp_redis_new — the report
 * waits for the kick. */
void bp_redis_notify(bp_redis_t *r)
{
    bp_t *bp = &r->base;
    if (bp->freeing) return;
    if (bp->depth == 0) {
        bp_redis_kick(r);
        return;
    }
    char why[256];
    const char *reason;   /* what the duplicate check compares */
    bp_state_t s = redis_state(bp);
    if (s == BP_DOWN) {
        const bp_rconn_t *c = down_conn(r);
        if (!c) {
            if (r->reported == BP_DOWN) return;   /* nothing new: still connecting */
            snprintf(why, sizeof why, "connecting");
        } else {
            snprintf(why, sizeof why, "%s connection: %s", c->name, c->why);
        }
        reason = c ? c->why : why;
    } else if (s == BP_SYNCING) {
        snprintf(why, sizeof why, "restoring %zu subscriptions", r->restored);
        reason = why;
    } else {
        if (r->restored) snprintf(why, sizeof why, "all %zu subscriptions restored", r->restored);
        else snprintf(why, sizeof why, "connected");
        reason = why;
    }
    if (s == r->reported && (s != BP_DOWN || strcmp(reason, r->reported_why) == 0)) return;
    r->reported = s;
    snprintf(r->reported_why, sizeof r->reported_why, "%s", reason);
    bp_emit_state(bp, s, why);
}

/* ---- publish side ------------------------------------------------------------------ */

static void ring_push(bp_redis_t *r, bp_rpend_t e)
{
    if (r->ring_len == r->ring_cap) {
        size_t cap = r->ring_cap ? r->ring_cap * 2 : 64;
        bp_rpend_t *ring = ws_xmalloc(cap * sizeof *ring);
        for (size_t i = 0; i < r->ring_len; i++) ring[i] = r->ring[(r->ring_head + i) & (r->ring_cap - 1)];
        ws_xfree(r->ring);
        r->ring = ring;
        r->ring_cap = cap;
        r->ring_head = 0;
    }
    r->ring[(r->ring_head + r->ring_len++) & (r->ring_cap - 1)] = e;
}

static bp_rpend_t ring_pop(bp_redis_t *r)
{
    bp_rpend_t e = r->ring[r->ring_head];
    r->ring_head = (r->ring_head + 1) & (r->ring_cap - 1);
    r->ring_len--;
    return e;
}

static void pending_sub(bp_redis_t *r, size_t bytes)
{
    r->pending_bytes -= bytes;
    r->base.stats.pending_bytes = r->pending_bytes;
}

static void pub_reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    bp_rconn_t *c = bp_redis_conn_of(ac);
    if (!c) return;
    bp_redis_t *r = c->r;
    bp_t *bp = &r->base;
    bp_enter(bp);
    if (!reply) {
        bp_redis_conn_lost(c, bp_redis_errstr(ac, "connection lost"), 0);
    } else if (!bp->freeing && r->ring_len) {
        const redisReply *rp = reply;
        bp_rpend_t e = ring_pop(r);
        pending_sub(r, e.bytes);
        if (rp->type == REDIS_REPLY_INTEGER) {
            bp->stats.published++;
            bp_emit_publish(bp, e.cb, e.privdata, (long)rp->integer);
        } else {
            /* an error reply (NOPERM, OOM ...): not published */
            bp->stats.publish_dropped++;
            bp_emit_publish(bp, e.cb, e.privdata, BP_DROPPED);
        }
    }
    bp_leave(bp);
}

/* Hands one PUBLISH to hiredis; 0 on success. */
static int pub_send(bp_redis_t *r, const char *channel, size_t channel_len,
                    const uint8_t *payload, size_t len, bp_publish_cb cb, void *privdata)
{
    const char *argv[3] = { "PUBLISH", channel, payload ? (const char *)payload : "" };
    size_t lens[3] = { 7, channel_len, len };
    if (redisAsyncCommandArgv(r->pub.ac, pub_reply_cb, NULL, 3, argv, lens) != REDIS_OK) return -1;
    ring_push(r, (bp_rpend_t){ cb, privdata, channel_len + len });
    return 0;
}

static void pub_flush_waiting(bp_redis_t *r)
{
    while (r->wait_head && r->pub.phase == BP_R_READY) {
        bp_rmsg_t *m = r->wait_head;
        if (pub_send(r, (const char *)m->data, m->channel_len, m->data + m->channel_len, m->len,
                     m->cb, m->privdata) != 0)
            return;   /* hiredis refuses: the context is going away; keep the rest */
        r->wait_head = m->next;
        if (!r->wait_head) r->wait_tail = NULL;
        ws_xfree(m);
    }
}

static void redis_publish(bp_t *bp, const char *channel, size_t channel_len,
                          const uint8_t *payload, size_t len, bp_publish_cb cb, void *privdata)
{
    bp_redis_t *r = (bp_redis_t *)bp;
    uint64_t bytes = (uint64_t)channel_len + len;
    if (bytes > r->max_pending - r->pending_bytes) {
        drop_later(r, cb, privdata);
        return;
    }
    r->pending_bytes += bytes;
    bp->stats.pending_bytes = r->pending_bytes;
    if (r->pub.phase == BP_R_READY && !r->wait_head &&
        pub_send(r, channel, channel_len, payload, len, cb, privdata) == 0)
        return;
    bp_rmsg_t *m = ws_xmalloc(sizeof *m + channel_len + len);
    m->next = NULL;
    m->cb = cb;
    m->privdata = privdata;
    m->channel_len = channel_len;
    m->len = len;
    memcpy(m->data, channel, channel_len);
    if (len) memcpy(m->data + channel_len, payload, len);
    if (r->wait_tail) r->wait_tail->next = m;
    else r->wait_head = m;
    r->wait_tail = m;
}

/* The publish connection dropped: what it had sent will not be answered. */
static void pub_lost(bp_redis_t *r)
{
    while (r->ring_len) {
        bp_rpend_t e = ring_pop(r);
        pending_sub(r, e.bytes);
        drop_later(r, e.cb, e.privdata);
    }
}

/* ---- connections ------------------------------------------------------------------- */

static void retry_cb(void *arg)
{
    bp_rconn_t *c = arg;
    bp_t *bp = &c->r->base;
    c->retry_timer = NULL;
    bp_enter(bp);
    conn_start(c);
    bp_leave(bp);
}

void bp_redis_conn_lost(bp_rconn_t *c, const char *why, int free_ac)
{
    bp_redis_t *r = c->r;
    bp_t *bp = &r->base;
    /* `why` may live in the context: copy it before letting go. */
    snprintf(c->why, sizeof c->why, "%s", why);
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    if (ac) {
        ac->data = NULL;
        if (free_ac) {
            /* Given up on (a timeout, a stale probe): abort, so that what the
             * kernel still holds for Redis is discarded, not retransmitted
             * once a partition heals — commands arriving after those of the
             * new connection would reorder the channels they publish on. */
            if (ac->c.fd >= 0) {
                struct linger abort_now = { 1, 0 };
                setsockopt(ac->c.fd, SOL_SOCKET, SO_LINGER, &abort_now, sizeof abort_now);
            }
            redisAsyncFree(ac);
        }
    }
    bp_timer_stop(bp, &c->timeout_timer);
    bp_timer_stop(bp, &c->poll_timer);   /* c->resolve stays: see conn_start */
    c->phase = BP_R_IDLE;
    r->probe_live = 0;                   /* the next BP_UP period probes afresh */
    if (c == &r->pub) pub_lost(r);
    else bp_redis_sub_lost(r);
    if (bp->freeing) return;
    if (!c->retry_timer)
        c->retry_timer = bp_timer_start(bp, backoff_ms(r, c->attempt++), retry_cb, c);
    bp_redis_notify(r);
}

/* Drops a connection attempt without reporting anything: it is replaced at
 * once.  Only for CONNECTING (nothing sent on it yet); never called from a
 * callback of c's own context. */
static void conn_abandon(bp_rconn_t *c)
{
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    ac->data = NULL;
    redisAsyncFree(ac);
    bp_timer_stop(&c->r->base, &c->timeout_timer);
    c->phase = BP_R_IDLE;
}

/* c is READY: Redis accepts connections again.  The other connection does
 * not sit out its backoff: if it is waiting to retry, it retries now (on the
 * next loop iteration) at c's address, which was just looked up and works,
 * and its backoff starts over.  An attempt of it still connecting to another
 * address (the one resolved before Redis moved) is dropped and started
 * again; one resolving, connecting to the same address or in its handshake
 * is left to finish. */
static void pull_other(bp_rconn_t *c)
{
    bp_redis_t *r = c->r;
    bp_rconn_t *o = c == &r->pub ? &r->sub : &r->pub;
    o->attempt = 0;
    if (o->phase == BP_R_CONNECTING && strcmp(o->addr, c->addr) != 0) conn_abandon(o);
    if (o->phase != BP_R_IDLE) return;
    snprintf(o->addr, sizeof o->addr, "%s", c->addr);
    o->addr_from_other = 1;
    bp_timer_stop(&r->base, &o->retry_timer);
    o->retry_timer = bp_timer_start(&r->base, 0, retry_cb, o);
}

static void conn_ready(bp_rconn_t *c)
{
    bp_redis_t *r = c->r;
    bp_timer_stop(&r->base, &c->timeout_timer);
    c->phase = BP_R_READY;
    c->attempt = 0;
    pull_other(c);
    c->why[0] = '\0';
    if (c->was_ready) r->base.stats.reconnects++;
    c->was_ready = 1;
    if (c == &r->pub) pub_flush_waiting(r);
    else bp_redis_sub_ready(r);
    bp_redis_notify(r);
}

static void handshake_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    bp_rconn_t *c = bp_redis_conn_of(ac);
    if (!c) return;
    bp_t *bp = &c->r->base;
    const redisReply *rp = reply;
    bp_enter(bp);
    if (!rp)
        bp_redis_conn_lost(c, bp_redis_errstr(ac, "connection lost"), 0);
    else if (bp->freeing)
        ;
    else if (rp->type == REDIS_REPLY_ERROR)   /* WRONGPASS, NOAUTH, DB index out of range ... */
        bp_redis_conn_lost(c, rp->str, 1);
    else if (--c->handshake_left == 0)
        conn_ready(c);
    bp_leave(bp);
}

/* AUTH and SELECT before anything else; PING when neither is configured, so
 * that READY always means "Redis answered" (and a server that wants a
 * password says NOAUTH here rather than to the first SUBSCRIBE). */
static void start_handshake(bp_rconn_t *c)
{
    bp_redis_t *r = c->r;
    c->phase = BP_R_HANDSHAKE;
    c->handshake_left = 0;
    if (r->password) {
        const char *argv[3] = { "AUTH", r->user, r->password };
        size_t lens[3] = { 4, r->user ? strlen(r->user) : 0, strlen(r->password) };
        int argc = 3;
        if (!r->user) {
            argv[1] = r->password;
            lens[1] = lens[2];
            argc = 2;
        }
        if (redisAsyncCommandArgv(c->ac, handshake_cb, NULL, argc, argv, lens) == REDIS_OK)
            c->handshake_left++;
    }
    if (r->db > 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", r->db);
        const char *argv[2] = { "SELECT", db };
        size_t lens[2] = { 6, strlen(db) };
        if (redisAsyncCommandArgv(c->ac, handshake_cb, NULL, 2, argv, lens) == REDIS_OK)
            c->handshake_left++;
    }
    if (!r->password && r->db <= 0) {
        const char *argv[1] = { "PING" };
        size_t lens[1] = { 4 };
        if (redisAsyncCommandArgv(c->ac, handshake_cb, NULL, 1, argv, lens) == REDIS_OK)
            c->handshake_left++;
    }
    /* If hiredis refused every command the timeout ends this attempt: no
     * context may be freed inside the connect callback. */
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    bp_rconn_t *c = bp_redis_conn_of(cac);
    if (!c) return;
    bp_t *bp = &c->r->base;
    bp_enter(bp);
    if (status != REDIS_OK)   /* hiredis frees the context after this returns */
        bp_redis_conn_lost(c, bp_redis_errstr(cac, "connect failed"), 0);
    else if (!bp->freeing)
        start_handshake(c);
    bp_leave(bp);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    bp_rconn_t *c = bp_redis_conn_of(cac);
    if (!c) return;
    bp_t *bp = &c->r->base;
    bp_enter(bp);
    bp_redis_conn_lost(c, status == REDIS_OK ? "connection closed"
                                             : bp_redis_errstr(cac, "connection lost"), 0);
    bp_leave(bp);
}

static void timeout_cb(void *arg)
{
    bp_rconn_t *c = arg;
    bp_redis_t *r = c->r;
    c->timeout_timer = NULL;
    char why[160];
    unsigned long long ms = (unsigned long long)r->connect_timeout;
    if (c->phase == BP_R_RESOLVING)
        snprintf(why, sizeof why, "timed out after %llu ms resolving %s", ms, r->host);
    else if (c->phase == BP_R_CONNECTING && !r->unix_path)
        snprintf(why, sizeof why, "timed out after %llu ms connecting to %s port %d", ms, c->addr, r->port);
    else
        snprintf(why, sizeof why, "timed out after %llu ms %s", ms,
                 c->phase == BP_R_CONNECTING ? "connecting" : "waiting for the AUTH/SELECT/PING reply");
    bp_enter(&r->base);
    bp_redis_conn_lost(c, why, 1);   /* outside hiredis: freed at once, its callbacks ignored */
    bp_leave(&r->base);
}

/* Connects to addr, a numeric address (hiredis does no lookup for it), or
 * to unix_path. */
static void conn_connect(bp_rconn_t *c, const char *addr)
{
    bp_redis_t *r = c->r;
    snprintf(c->addr, sizeof c->addr, "%s", addr);
    redisAsyncContext *ac = r->unix_path ? redisAsyncConnectUnix(r->unix_path)
                                         : redisAsyncConnect(c->addr, r->port);
    if (!ac) {
        bp_redis_conn_lost(c, "cannot allocate a hiredis context", 0);
        return;
    }
    if (ac->c.err) {
        char why[160];
        snprintf(why, sizeof why, "%s", bp_redis_errstr(ac, "connect failed"));
        redisAsyncFree(ac);
        bp_redis_conn_lost(c, why, 0);
        return;
    }
    if (!r->unix_path) redisEnableKeepAlive(&ac->c);   /* notice a vanished peer on a quiet link */
    if (r->attach(r->base.loop.loop_ud, ac) != 0) {
        redisAsyncFree(ac);
        bp_redis_conn_lost(c, "cannot attach to the event loop", 0);
        return;
    }
    ac->data = c;
    c->ac = ac;
    c->phase = BP_R_CONNECTING;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
}

static void resolve_poll_cb(void *arg)
{
    bp_rconn_t *c = arg;
    bp_t *bp = &c->r->base;
    c->poll_timer = NULL;
    char addr[BP_RESOLVE_ADDR_MAX], err[160];
    bp_resolve_status_t st = bp_resolve_poll(c->resolve, addr, sizeof addr, err, sizeof err);
    if (st == BP_RESOLVE_PENDING) {
        if (c->poll_ms < BP_RESOLVE_POLL_MAX_MS) c->poll_ms *= 2;
        if (c->poll_ms > BP_RESOLVE_POLL_MAX_MS) c->poll_ms = BP_RESOLVE_POLL_MAX_MS;
        c->poll_timer = bp_timer_start(bp, c->poll_ms, resolve_poll_cb, c);
        return;
    }
    bp_resolve_release(c->resolve);
    c->resolve = NULL;
    bp_enter(bp);
    if (st == BP_RESOLVE_OK) conn_connect(c, addr);
    else bp_redis_conn_lost(c, err, 0);   /* "cannot resolve HOST: <reason>" */
    bp_leave(bp);
}

/* One attempt: [lookup,] connect, handshake, all within connect_timeout. */
static void conn_start(bp_rconn_t *c)
{
    bp_redis_t *r = c->r;
    bp_t *bp = &r->base;
    c->timeout_timer = bp_timer_start(bp, r->connect_timeout, timeout_cb, c);
    if (r->host_is_numeric) {
        conn_connect(c, r->unix_path ? "" : r->host);
        return;
    }
    if (c->addr_from_other) {   /* pulled by the other connection: its address */
        c->addr_from_other = 0;
        char addr[BP_RESOLVE_ADDR_MAX];
        snprintf(addr, sizeof addr, "%s", c->addr);
        conn_connect(c, addr);
        return;
    }
    /* A lookup left by the previous attempt (which ran out of time waiting
     * for it) is not wasted: still running, it is waited for again rather
     * than joined by a second thread; finished with an address, that address
     * is used (looked up at most one timeout and one backoff ago).  So a
     * resolver slower than connect_timeout still gets an answer through, and
     * a dead one costs one thread per connection. */
    if (c->resolve) {
        char addr[BP_RESOLVE_ADDR_MAX], err[160];
        bp_resolve_status_t st = bp_resolve_poll(c->resolve, addr, sizeof addr, err, sizeof err);
        if (st != BP_RESOLVE_PENDING) {
            bp_resolve_release(c->resolve);
            c->resolve = NULL;
        }
        if (st == BP_RESOLVE_OK) {
            conn_connect(c, addr);
            return;
        }
    }
    if (!c->resolve) {   /* every other attempt looks the name up afresh */
        char err[160];
        c->resolve = bp_resolve_start(r->host, err, sizeof err);
        if (!c->resolve) {
            bp_redis_conn_lost(c, err, 0);
            return;
        }
    }
    c->addr[0] = '\0';
    c->phase = BP_R_RESOLVING;
    c->poll_ms = 1;
    c->poll_timer = bp_timer_start(bp, c->poll_ms, resolve_poll_cb, c);
}

/* ---- free ----------------------------------------------------------------------------- */

static void redis_shutdown(bp_t *bp)
{
    bp_redis_t *r = (bp_redis_t *)bp;
    bp_timer_stop(bp, &r->kick);
    bp_redis_probe_stop(r);
    bp_rconn_t *conns[2] = { &r->pub, &r->sub };
    for (int i = 0; i < 2; i++) {
        bp_timer_stop(bp, &conns[i]->retry_timer);
        bp_timer_stop(bp, &conns[i]->timeout_timer);
        bp_timer_stop(bp, &conns[i]->poll_timer);
    }
    /* Every callback still owed, each popped before it runs. */
    while (r->drops_pos < r->drops_len) {
        bp_rpend_t e = r->drops[r->drops_pos++];
        bp_emit_publish(bp, e.cb, e.privdata, BP_DROPPED);
    }
    while (r->ring_len) {
        bp_rpend_t e = ring_pop(r);
        pending_sub(r, e.bytes);
        bp->stats.publish_dropped++;
        bp_emit_publish(bp, e.cb, e.privdata, BP_DROPPED);
    }
    while (r->wait_head) {
        bp_rmsg_t *m = r->wait_head;
        r->wait_head = m->next;
        if (!r->wait_head) r->wait_tail = NULL;
        pending_sub(r, m->channel_len + m->len);
        bp->stats.publish_dropped++;
        bp_publish_cb cb = m->cb;
        void *privdata = m->privdata;
        ws_xfree(m);
        bp_emit_publish(bp, cb, privdata, BP_DROPPED);
    }
    /* The contexts stay until destroy: a message being delivered lives in
     * a hiredis reply. */
}

static void redis_destroy(bp_t *bp)
{
    bp_redis_t *r = (bp_redis_t *)bp;
    bp_rconn_t *conns[2] = { &r->pub, &r->sub };
    for (int i = 0; i < 2; i++) {
        redisAsyncContext *ac = conns[i]->ac;
        conns[i]->ac = NULL;
        if (ac) {
            ac->data = NULL;      /* the NULL-reply callbacks it runs are ignored */
            redisAsyncFree(ac);   /* not inside a hiredis callback: immediate */
        }
        /* A lookup still running keeps its job until it returns: the
         * thread frees it then (it holds nothing of ours). */
        bp_resolve_release(conns[i]->resolve);
        conns[i]->resolve = NULL;
    }
    bp_redis_probe_destroy(r);
    ws_xfree(r->ring);
    ws_xfree(r->drops);
    ws_xfree(r->host);
    ws_xfree(r->unix_path);
    ws_xfree(r->user);
    ws_xfree(r->password);
}

/* hiredis would write on its next writable event, after the gateway's
 * client writes of this pass.  A write error takes the usual disconnect
 * path (on_state may run); no reply callback can run here. */
static void redis_flush(bp_t *bp)
{
    bp_redis_t *r = (bp_redis_t *)bp;
    redisAsyncContext *ac = r->pub.ac;
    if (r->pub.phase != BP_R_READY || !ac || sdslen(ac->c.obuf) == 0) return;
    bp_enter(bp);
    redisAsyncHandleWrite(ac);
    bp_leave(bp);
}

static const bp_vtable_t redis_vt = {
    .publish = redis_publish,
    .flush = redis_flush,
    .chan_changed = bp_redis_sub_changed,
    .sync_target = bp_redis_sync_target,
    .state = redis_state,
    .shutdown = redis_shutdown,
    .destroy = redis_destroy,
};

/* ---- construction ------------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
    return s && s[0] ? ws_xstrndup(s, strlen(s)) : NULL;
}

static bp_t *config_error(char *err, size_t errlen, const char *msg)
{
    if (err && errlen) snprintf(err, errlen, "%s", msg);
    return NULL;
}

bp_t *bp_redis_new(const bp_redis_config_t *cfg, const bp_callbacks_t *cb,
                   const bp_loop_t *loop, char *err, size_t errlen)
{
    if (!cfg) return config_error(err, errlen, "backplane: no Redis configuration");
    int use_unix = cfg->unix_path && cfg->unix_path[0];
    if (!use_unix && !(cfg->host && cfg->host[0]))
        return config_error(err, errlen, "backplane: Redis needs a host or a unix_path");
    if (!use_unix && (cfg->port <= 0 || cfg->port > 65535))
        return config_error(err, errlen, "backplane: Redis port out of range 1-65535");
    if (!cfg->attach) return config_error(err, errlen, "backplane: no attach function for hiredis");
    if (!loop || !loop->timer_start || !loop->timer_stop)
        return config_error(err, errlen, "backplane: no loop timers");
    if (cfg->user && cfg->user[0] && !(cfg->password && cfg->password[0]))
        return config_error(err, errlen, "backplane: a Redis user needs a password");
    if (cfg->db < 0) return config_error(err, errlen, "backplane: negative Redis db");

    bp_redis_t *r = ws_xcalloc(1, sizeof *r);
    bp_init(&r->base, &redis_vt, cb, loop);
    r->unix_path = use_unix ? dup_or_null(cfg->unix_path) : NULL;
    r->host = use_unix ? NULL : dup_or_null(cfg->host);
    r->port = cfg->port;
    r->host_is_numeric = use_unix || bp_resolve_is_numeric(r->host);
    r->password = dup_or_null(cfg->password);
    r->user = r->password ? dup_or_null(cfg->user) : NULL;
    r->db = cfg->db;
    r->max_pending = cfg->max_pending_bytes ? cfg->max_pending_bytes : 8u << 20;
    r->backoff_min = cfg->backoff_min_ms ? cfg->backoff_min_ms : 100;
    /* 1 s: with +-50 % jitter a retry is at most 1.5 s away, so a node is
     * back within ~1.5 s of Redis accepting connections again (the other
     * connection follows at once: pull_other), at the cost of about one
     * refused connect per connection per second while Redis is away. */
    r->backoff_max = cfg->backoff_max_ms ? cfg->backoff_max_ms : 1000;
    if (r->backoff_max < r->backoff_min) r->backoff_max = r->backoff_min;
    r->connect_timeout = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 2000;
    r->attach = cfg->attach;
    r->rng = ((uint64_t)(uintptr_t)r ^ ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid()) | 1;
    r->pub = (bp_rconn_t){ .r = r, .name = "publish" };
    r->sub = (bp_rconn_t){ .r = r, .name = "subscribe" };
    r->reported = BP_DOWN;
    bp_redis_probe_init(r, cfg->probe_channel, cfg->probe_interval_ms);
    conn_start(&r->pub);
    conn_start(&r->sub);
    return &r->base;
}
