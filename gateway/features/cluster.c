/* cluster.c — the gateway's side of the backplane: channel names, the JSON
 * payloads other nodes and backends exchange with us, and the libev glue
 * the backplane needs (docs/protocol.md, "Backplane").
 *
 * Channels (P = redis_prefix):
 *   P:all           broadcast / all; every node subscribes
 *   P:room:<name>   a room; a node subscribes while it has local members
 *   P:conn:<id>     one connection: deliveries and control ops; subscribed
 *                   by the node that holds the connection
 *   P:events        client events for backends (published, not subscribed)
 *   P:lifecycle     connect / disconnect (published, not subscribed)
 *   P:probe:<node>  this node's stale-connection probe (redis_probe_interval):
 *                   published and subscribed by the backplane itself, never
 *                   seen here (bp_redis_probe.c)
 *
 * A node delivers its own clients' messages locally at once and publishes
 * them with "node":<its id>; it ignores that id when Redis echoes them
 * back, so nothing is delivered twice.  With the in-process backplane
 * (no redis_url) there is no other node, so nothing is published.
 *
 * Deliveries a node publishes also carry "seq":N, numbered per channel, and
 * a channel gone quiet gets a trailer {"node":..,"seq":N}: a receiver counts
 * the gaps as lost (cluster_seq.h; wsgw_backplane_lost_total).
 */
#include <ev.h>
#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "backplane.h"
#include "cluster.h"
#include "cluster_seq.h"
#include "nodemsg.h"
#include "json_scan.h"
#include "log.h"
#include "randid.h"
#include "server_int.h"
#include "ws_utf8.h"

/* "<prefix>:room:<name>": the prefix is at most 64 bytes (wsgw_check_prefix),
 * a room name at most ENVELOPE_ROOM_NAME_MAX, a connection id at most 127.
 * Every channel fits whole: a cut name would make two rooms one channel. */
#define CHANNEL_PREFIX_MAX 64
#define CHANNEL_MAX (CHANNEL_PREFIX_MAX + sizeof ":lifecycle:" + ENVELOPE_ROOM_NAME_MAX + 1)
_Static_assert(ENVELOPE_ROOM_NAME_MAX >= ENVELOPE_CONN_ID_MAX, "conn ids fit where room names do");

typedef struct cluster {
    wsgw_server_t       *s;
    const wsgw_config_t *cfg;
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
} cluster_t;

/* ---- the event loop, handed to the backplane -------------------------------------- */

typedef struct loop_timer {
    ev_timer w;
    void   (*cb)(void *arg);
    void    *arg;
} loop_timer_t;

static void loop_timer_fire(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    loop_timer_t *t = (loop_timer_t *)w;
    void (*cb)(void *) = t->cb;
    void *arg = t->arg;
    ws_xfree(t);                      /* one-shot: gone before the callback runs */
    cb(arg);
}

static void *loop_timer_start(void *loop_ud, uint64_t ms, void (*cb)(void *arg), void *arg)
{
    loop_timer_t *t = ws_xmalloc(sizeof *t);
    t->cb = cb;
    t->arg = arg;
    ev_timer_init(&t->w, loop_timer_fire, (double)ms / 1000.0, 0);
    ev_timer_start((struct ev_loop *)loop_ud, &t->w);
    return t;
}

static void loop_timer_stop(void *loop_ud, void *timer)
{
    loop_timer_t *t = timer;
    ev_timer_stop((struct ev_loop *)loop_ud, &t->w);
    ws_xfree(t);
}

static int loop_attach_redis(void *loop_ud, redisAsyncContext *ac)
{
    return redisLibevAttach((struct ev_loop *)loop_ud, ac) == REDIS_OK ? 0 : -1;
}

/* ---- channel names ----------------------------------------------------------------- */

static size_t channel(const cluster_t *cl, char *out, const char *kind, const char *name, size_t len)
{
    int n = snprintf(out, CHANNEL_MAX, "%s:%s%s%.*s", cl->cfg->redis_prefix, kind,
                     name ? ":" : "", (int)(name ? len : 0), name ? name : "");
    if (n < 0 || (size_t)n >= CHANNEL_MAX) abort();   /* the limits above make this impossible */
    return (size_t)n;
}

static void room_created(void *ud, wsgw_room_t *r)
{
    cluster_t *cl = ud;
    char ch[CHANNEL_MAX];
    if (!cl->bp_remote) return;
    bp_subscribe(cl->bp, ch, channel(cl, ch, "room", r->name, r->name_len));
}

static void room_destroyed(void *ud, wsgw_room_t *r)
{
    cluster_t *cl = ud;
    char ch[CHANNEL_MAX];
    if (!cl->bp_remote) return;
    size_t chlen = channel(cl, ch, "room", r->name, r->name_len);
    bp_unsubscribe(cl->bp, ch, chlen);
    cluster_seq_in_forget(&cl->seq_in, ch, chlen);     /* what we no longer hear is not lost */
}

/* ---- payloads out --------------------------------------------------------------------- */

/* Our node id, as the payloads carry it. */
static json_span_t node_span(const cluster_t *cl)
{
    return (json_span_t){ (const uint8_t *)cl->node_id, cl->node_id_len };
}

static json_span_t cstr_span(const char *p)
{
    return (json_span_t){ (const uint8_t *)p, p ? strlen(p) : 0 };
}

/* The per-loop buffer every payload is written into before it is handed
 * to the backplane (which copies it): emptied, not freed. */
static ws_buf_t *scratch(cluster_t *cl)
{
    cl->bp_out.len = 0;
    return &cl->bp_out;
}

/* A trailer: {"node":"<us>","seq":N} repeating the last number published
 * on ch, sent once when ch has gone quiet, so that a receiver that lost
 * the end of a burst sees the gap (cluster_seq.h). */
static void send_trailer(void *ud, const char *ch, size_t chlen, uint64_t seq)
{
    cluster_t *cl = ud;
    ws_buf_t *out = scratch(cl);
    nodemsg_put_trailer(out, node_span(cl), seq);
    bp_publish(cl->bp, ch, chlen, out->data, out->len, NULL, NULL);
}

/* Bound of the publisher's table of sequence numbers: a channel published
 * on in the last CLUSTER_SEQ_OUT_IDLE_MS costs ~150 bytes; a client emitting to
 * many connection ids cannot make it grow past ~10 MB. */
#define SEQ_OUT_MAX_CHANNELS 65536

/* A node's heartbeat on P:lifecycle (see publish_heartbeat). */
#define NODE_HEARTBEAT_MS 5000u

static void publish_heartbeat(cluster_t *cl);

static void cluster_sweep(void *ud, uint64_t now_ms)
{
    cluster_t *cl = ud;
    if (!cl->bp_remote) return;
    if (cl->bp_state == BP_UP && (!cl->heartbeat_last_ms || now_ms - cl->heartbeat_last_ms >= NODE_HEARTBEAT_MS)) {
        cl->heartbeat_last_ms = now_ms;
        publish_heartbeat(cl);
    }
    cluster_seq_out_sweep(&cl->seq_out, now_ms, cl->bp_up_since_ms,
                     cl->bp_state == BP_UP ? send_trailer : NULL, cl);
    cluster_seq_in_sweep(&cl->seq_in, now_ms);
    if (cl->seq_out.unsequenced != cl->seq_unsequenced_logged) {
        wsgw_log(WSGW_LOG_WARN, "backplane_seq_full",
                 "published=%" PRIu64 " reason=\"%d channels numbered: published without seq, a loss of these is not detected\"",
                 cl->seq_out.unsequenced - cl->seq_unsequenced_logged, SEQ_OUT_MAX_CHANNELS);
        cl->seq_unsequenced_logged = cl->seq_out.unsequenced;
    }
}

/* ---- deferred answers ---------------------------------------------------------------- */

/* bp_sync answered: the subscriptions this connection needs are in place
 * on Redis (or Redis is away: the node is degraded, and they are restored
 * when it returns), so the welcome or the join's ack can go now. */
static void synced(void *ud, int confirmed, void *privdata)
{
    (void)ud; (void)confirmed;
    core_defer_release(privdata, CORE_DEFER_OK);
}

/* The welcome (first_answer) and a join's ack (member_joined) wait for
 * every subscription made so far: "joined" means every node's messages
 * will arrive.  Without Redis there is nothing to wait for. */
static void hold_until_synced(cluster_t *cl, core_answer_t *a)
{
    if (!cl->bp_remote || !a) return;
    bp_sync(cl->bp, synced, core_answer_hold(a));
}

static void first_answer(void *ud, wsgw_conn_t *c, core_answer_t *a)
{
    (void)c;
    hold_until_synced(ud, a);
}

static void member_joined(void *ud, wsgw_conn_t *c, wsgw_room_t *r, core_answer_t *ack)
{
    (void)c; (void)r;
    hold_until_synced(ud, ack);
}

/* Redis' reply to a publish: the answer's status (the owner of the answer
 * decides what the client is told). */
static void published(void *ud, long receivers, void *privdata)
{
    cluster_t *cl = ud;
    if (receivers == BP_DROPPED) cl->s->metrics.dropped_messages++;
    if (!privdata) return;
    core_defer_release(privdata, receivers == BP_DROPPED ? CORE_DEFER_DROPPED
                               : receivers == 0 ? CORE_DEFER_NO_RECEIVERS : CORE_DEFER_OK);
}

/* A client's emit for backends on P:events: the delivery as clients see it
 * ("to" absent for an emit without one), our node id, the user. */
static void publish_for_backends(cluster_t *cl, const wsgw_conn_t *c, const envelope_delivery_t *d,
                                 core_defer_t *done)
{
    ws_buf_t *out = scratch(cl);
    /* the authenticated user, for backends */
    nodemsg_put_delivery(out, d, node_span(cl), 0, cstr_span(auth_user(c)));
    char ch[CHANNEL_MAX];
    size_t chlen = channel(cl, ch, "events", NULL, 0);
    bp_publish(cl->bp, ch, chlen, out->data, out->len, published, done);
}

/* The publish hook: a delivery made here, for the other nodes.  The
 * sender's answer (done) waits for Redis' reply to the delivery's publish. */
static void publish_delivery(void *ud, wsgw_conn_t *sender, wsgw_target_kind_t kind,
                             const char *name, size_t name_len, const envelope_delivery_t *d,
                             core_answer_t *done)
{
    cluster_t *cl = ud;
    if (!cl->bp_remote) return;
    /* backend_events = all: backends see targeted emits too, whatever the
     * target, before and apart from their delivery (the sender's ack
     * follows the delivery's publish, or comes at once, as without). */
    if (sender && cl->cfg->backend_events == WSGW_BACKEND_EVENTS_ALL)
        publish_for_backends(cl, sender, d, NULL);
    if (kind == WSGW_TO_SELF) return;
    if (kind == WSGW_TO_CONN && core_find(cl->s, name, name_len)) return;  /* it is here */
    char ch[CHANNEL_MAX];
    size_t chlen = kind == WSGW_TO_ROOM ? channel(cl, ch, "room", name, name_len)
                 : kind == WSGW_TO_CONN ? channel(cl, ch, "conn", name, name_len)
                                        : channel(cl, ch, "all", NULL, 0);
    ws_buf_t *out = scratch(cl);
    uint64_t seq = cluster_seq_out_next(&cl->seq_out, ch, chlen, wsgw_now_ms(cl->s));
    nodemsg_put_delivery(out, d, node_span(cl), seq, (json_span_t){ NULL, 0 });
    core_defer_t *held = sender && done ? core_answer_hold(done) : NULL;
    /* Refused at once: it never reaches Redis, so its number is given back
     * and no receiver counts it lost (wsgw_backplane_dropped_total has it). */
    if (bp_publish(cl->bp, ch, chlen, out->data, out->len, published, held) == BP_REFUSED)
        cluster_seq_out_unused(&cl->seq_out, ch, chlen, seq);
}

/* The publish_event hook: an emit without "to", for backends on P:events.
 * Taken (1) unless there is no Redis or backend_events = none; the answer,
 * if any, waits for Redis' reply. */
static int publish_event(void *ud, wsgw_conn_t *c, const envelope_delivery_t *d, core_answer_t *done)
{
    cluster_t *cl = ud;
    if (!cl->bp_remote || cl->cfg->backend_events == WSGW_BACKEND_EVENTS_NONE) return 0;
    publish_for_backends(cl, c, d, done ? core_answer_hold(done) : NULL);
    return 1;
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

static void publish_lifecycle(cluster_t *cl, const ws_buf_t *b)
{
    char ch[CHANNEL_MAX];
    size_t chlen = channel(cl, ch, "lifecycle", NULL, 0);
    bp_publish(cl->bp, ch, chlen, b->data, b->len, published, NULL);
}

/* {"op":"node","node":..,"connections":N,"interval_ms":..} every
 * NODE_HEARTBEAT_MS while the backplane is up: a node killed with SIGKILL
 * (or cut off from Redis) sends no disconnect events, so a backend that
 * tracks connections expires a node's ones when its heartbeats stop. */
static void publish_heartbeat(cluster_t *cl)
{
    if (!cl->cfg->lifecycle_events) return;
    ws_buf_t *out = scratch(cl);
    nodemsg_put_heartbeat(out, node_span(cl), core_open_count(cl->s), NODE_HEARTBEAT_MS);
    publish_lifecycle(cl, out);
}

/* Every value of the header `name` in request order into vals[0..cap) (a
 * request has at most cap header lines): nodemsg_put_header joins them
 * with ", " (RFC 9110 §5.3: repeated field lines are one comma-separated
 * list).  A proxy that appends to X-Forwarded-For adds its line after the
 * client's own, so the first line alone is what the client forged.  Values
 * that are not UTF-8 are left out (a JSON string cannot carry them).
 * Returns how many.  No cap of its own: the values come from a header
 * block that the parser bounds by max_header_bytes, and each ", " replaces
 * at least a line's "name:" and line end, so one header's joined values
 * stay under that bound (the event: under it times the number of
 * lifecycle_headers). */
static size_t header_values(const ws_http_request_t *req, const char *name, json_span_t *vals)
{
    size_t nlen = strlen(name), n = 0;
    for (size_t i = 0; i < req->num_headers; i++) {
        const ws_http_header_t *h = &req->headers[i];
        if (h->name_len != nlen || strncasecmp(h->name, name, nlen) != 0) continue;
        if (!ws_utf8_is_valid((const uint8_t *)h->value, h->value_len)) continue;
        vals[n++] = (json_span_t){ (const uint8_t *)h->value, h->value_len };
    }
    return n;
}

static void cluster_conn_opened(void *ud, wsgw_conn_t *c)
{
    cluster_t *cl = ud;
    char ch[CHANNEL_MAX];
    if (!cl->bp_remote) return;
    bp_subscribe(cl->bp, ch, channel(cl, ch, "conn", c->id, c->id_len));
    if (!cl->cfg->lifecycle_events) return;
    ws_buf_t *out = scratch(cl);
    nodemsg_put_connect(out, (json_span_t){ (const uint8_t *)c->id, c->id_len }, node_span(cl),
                        cstr_span(conn_peer(c)), cstr_span(auth_user(c)));
    const ws_http_request_t *req = conn_req(c);
    int first = 1;
    for (size_t i = 0; req && i < cl->cfg->lifecycle_headers.n; i++) {
        const char *name = cl->cfg->lifecycle_headers.v[i];
        json_span_t vals[WS_HTTP_MAX_HEADERS_HARD];
        size_t n = header_values(req, name, vals);
        if (!n) continue;
        nodemsg_put_header(out, first, cstr_span(name), vals, n);
        first = 0;
    }
    nodemsg_put_connect_end(out);
    publish_lifecycle(cl, out);
}

static void cluster_conn_closed(void *ud, wsgw_conn_t *c)
{
    cluster_t *cl = ud;
    char ch[CHANNEL_MAX];
    if (!cl->bp_remote) return;
    size_t chlen = channel(cl, ch, "conn", c->id, c->id_len);
    bp_unsubscribe(cl->bp, ch, chlen);
    cluster_seq_in_forget(&cl->seq_in, ch, chlen);
    if (!cl->cfg->lifecycle_events) return;
    ws_buf_t *out = scratch(cl);
    nodemsg_put_disconnect(out, (json_span_t){ (const uint8_t *)c->id, c->id_len }, node_span(cl),
                           c->close_code);
    publish_lifecycle(cl, out);
}

/* ---- payloads in ----------------------------------------------------------------------------- */

static void bad_payload(cluster_t *cl, const char *channel_name, size_t chlen, const char *why)
{
    cl->bp_bad_messages++;
    wsgw_log(WSGW_LOG_WARN, "backplane_bad_message", "channel=%.*s reason=\"%s\"",
             (int)(chlen > 200 ? 200 : chlen), channel_name, why);
}

/* Control ops for one connection: {"op":"join"|"leave","room":".."},
 * {"op":"disconnect","code":4000,"reason":".."}.  Backends are trusted: no
 * join_rooms check, but the room-name rules and limits hold. */
static void inbound_control(cluster_t *cl, wsgw_conn_t *c, const nodemsg_t *in,
                            const char *chname, size_t chlen)
{
    json_span_t op, room;
    if (!nodemsg_plain_string(in->op, &op)) { bad_payload(cl, chname, chlen, "op is not a plain string"); return; }
    if (op.len == 10 && memcmp(op.p, "disconnect", 10) == 0) {
        unsigned long code = 1000;
        if (in->code.len) code = strtoul((const char *)in->code.p, NULL, 10);
        char why[NODEMSG_REASON_MAX + 2];
        size_t n = nodemsg_close_reason(in->reason, why);
        if (n == SIZE_MAX) { bad_payload(cl, chname, chlen, "disconnect reason is not a UTF-8 string"); n = 0; }
        why[n] = '\0';
        wsgw_disconnect(c, (uint16_t)(code > 4999 ? 1000 : code), why);
        return;
    }
    int join = op.len == 4 && memcmp(op.p, "join", 4) == 0;
    int leave = op.len == 5 && memcmp(op.p, "leave", 5) == 0;
    if ((!join && !leave) || !nodemsg_plain_string(in->room, &room) ||
        !envelope_room_valid(room.p, room.len, (size_t)cl->cfg->max_room_name)) {
        bad_payload(cl, chname, chlen, "unknown op or bad room");
        return;
    }
    if (join) core_join(c, (const char *)room.p, room.len, NULL);
    else core_leave(c, (const char *)room.p, room.len);
}

/* A payload's node id as one log field.  Anyone who can PUBLISH on Redis
 * (a backend) writes it: a space or '=' in it must not end its field and
 * forge another, so it is quoted then (wsgw_log_value).  cluster_seq_in_check
 * tracks only ids of at most CLUSTER_SEQ_NODE_MAX bytes: nothing is cut. */
#define LOG_NODE_MAX (4 * CLUSTER_SEQ_NODE_MAX + 3)   /* every byte escaped, the quotes */
static const char *log_node(json_span_t node, char quoted[LOG_NODE_MAX])
{
    char raw[CLUSTER_SEQ_NODE_MAX + 1];
    size_t n = node.len < CLUSTER_SEQ_NODE_MAX ? node.len : CLUSTER_SEQ_NODE_MAX;
    memcpy(raw, node.p, n);
    raw[n] = '\0';
    const char *v = wsgw_log_value(quoted, LOG_NODE_MAX, raw);
    if (v == raw) {                               /* plain: outlives this call in quoted */
        memcpy(quoted, raw, n + 1);
        v = quoted;
    }
    return v;
}

/* A numbered payload from another node: count what went missing before it.
 * Returns 0 when the payload is to be dropped: a late arrival (cluster_seq.h,
 * CLUSTER_SEQ_IN_LATE), already counted missing. */
static int inbound_seq(cluster_t *cl, const char *ch, size_t chlen, json_span_t node,
                       uint64_t seq, int trailer, int conn_channel)
{
    /* A live connection's channel is numbered only after its id was
     * announced, so after our subscription — when ids are random: a header
     * id or a custom IDGenerator's can be known, and published to, before
     * its connection exists. */
    int from_one = conn_channel && cl->cfg->id_generator == WSGW_ID_RANDOM && !cl->s->id_gen;
    uint64_t missing = cluster_seq_in_check(&cl->seq_in, ch, chlen, (const char *)node.p, node.len,
                                            seq, trailer, from_one, wsgw_now_ms(cl->s));
    char quoted[LOG_NODE_MAX];
    if (missing == CLUSTER_SEQ_IN_LATE) {
        wsgw_log(WSGW_LOG_WARN, "backplane_late", "node=%s channel=%.*s seq=%" PRIu64
                 " reason=\"arrived after a later number, or again: dropped (a gap it left was counted lost)\"",
                 log_node(node, quoted), (int)(chlen > 200 ? 200 : chlen), ch, seq);
        return 0;
    }
    if (!missing) return 1;
    cl->bp_lost += missing;
    wsgw_log(WSGW_LOG_WARN, "backplane_lost", "node=%s channel=%.*s missing=%" PRIu64
             " reason=\"seq jumped to %" PRIu64 "%s: lost between Redis and this node\"",
             log_node(node, quoted), (int)(chlen > 200 ? 200 : chlen), ch, missing, seq,
             trailer ? " (trailer)" : "");
    return 1;
}

static void on_message(void *ud, const char *ch, size_t chlen, const uint8_t *payload, size_t len)
{
    cluster_t *cl = ud;
    size_t plen = strlen(cl->cfg->redis_prefix);
    if (chlen <= plen + 1 || memcmp(ch, cl->cfg->redis_prefix, plen) != 0 || ch[plen] != ':') return;
    const char *kind = ch + plen + 1;
    size_t klen = chlen - plen - 1;
    nodemsg_t in;
    if (!nodemsg_parse(payload, len, &in)) { bad_payload(cl, ch, chlen, "not a JSON object in UTF-8"); return; }
    json_span_t node;
    int has_node = in.node.len && nodemsg_plain_string(in.node, &node);
    if (has_node && node.len == cl->node_id_len && memcmp(node.p, cl->node_id, node.len) == 0)
        return;                                   /* our own message, delivered already */

    wsgw_target_kind_t target;
    const char *name = NULL;
    size_t name_len = 0;
    if (klen == 3 && memcmp(kind, "all", 3) == 0) {
        json_span_t to;
        target = nodemsg_plain_string(in.to, &to) && to.len == 9 && memcmp(to.p, "broadcast", 9) == 0
               ? WSGW_TO_BROADCAST : WSGW_TO_ALL;
    } else if (klen > 5 && memcmp(kind, "room:", 5) == 0) {
        target = WSGW_TO_ROOM; name = kind + 5; name_len = klen - 5;
    } else if (klen > 5 && memcmp(kind, "conn:", 5) == 0) {
        target = WSGW_TO_CONN; name = kind + 5; name_len = klen - 5;
    } else {
        return;                                   /* not a channel we deliver from */
    }
    uint64_t seq;
    if (has_node && nodemsg_seq(in.seq, &seq)) {
        int trailer = !in.event.len && !in.op.len;
        if (!inbound_seq(cl, ch, chlen, node, seq, trailer,
                         target == WSGW_TO_CONN && core_find(cl->s, name, name_len) != NULL))
            return;                               /* late: delivering it now would reorder */
        if (trailer) return;
    }
    if (in.op.len) {
        wsgw_conn_t *c = target == WSGW_TO_CONN ? core_find(cl->s, name, name_len) : NULL;
        if (c && c->state == CONN_OPEN) inbound_control(cl, c, &in, ch, chlen);
        else if (target != WSGW_TO_CONN) bad_payload(cl, ch, chlen, "control ops go to PREFIX:conn:<id>");
        return;
    }
    uint8_t event[ENVELOPE_EVENT_NAME_MAX];
    size_t elen = in.event.len >= 2 && in.event.p[0] == '"'
                ? json_str_unescape(in.event.p + 1, in.event.len - 2, event, sizeof event) : SIZE_MAX;
    if (elen == SIZE_MAX || elen == 0) { bad_payload(cl, ch, chlen, "event missing, not a string or too long"); return; }
    envelope_delivery_t d = {
        .event = { event, elen },
        .data = in.data.len ? in.data : (json_span_t){ (const uint8_t *)"null", 4 },
        .to = target == WSGW_TO_BROADCAST ? ENVELOPE_TO_BROADCAST : target == WSGW_TO_ALL ? ENVELOPE_TO_ALL
            : target == WSGW_TO_ROOM ? ENVELOPE_TO_ROOM : ENVELOPE_TO_CONN,
        .to_name = { (const uint8_t *)name, name_len },
    };
    json_span_t from, except;
    if (nodemsg_plain_string(in.from, &from) && envelope_conn_id_valid(from.p, from.len)) d.from = from;
    const wsgw_conn_t *skip = NULL;
    if (nodemsg_plain_string(in.except, &except))
        skip = core_find(cl->s, (const char *)except.p, except.len);
    core_deliver(cl->s, &d, target, name, name_len, NULL, skip);
}

static void on_state(void *ud, bp_state_t state, const char *why)
{
    cluster_t *cl = ud;
    /* The backplane reports a change of state, or a new reason while down
     * (a wrong password, a refused connection): each is worth a line. */
    if (state == BP_UP && cl->bp_state != BP_UP) cl->bp_up_since_ms = wsgw_now_ms(cl->s);
    cl->bp_state = state;
    /* The probe found the connections stale (they are being reconnected):
     * /healthz says so until the backplane is up again. */
    bp_stats_t st;
    bp_get_stats(cl->bp, &st);
    if (st.stale != cl->bp_stale_seen) {
        cl->bp_stale_seen = st.stale;
        cl->bp_stale = 1;
        wsgw_log(WSGW_LOG_WARN, "backplane_stale", "stale_total=%" PRIu64 " reason=\"%s\"",
                 st.stale, why ? why : "");
    }
    if (state == BP_UP) cl->bp_stale = 0;
    wsgw_log(state == BP_UP ? WSGW_LOG_INFO : WSGW_LOG_WARN, "backplane", "state=%s reason=\"%s\"",
             bp_state_name(state), why ? why : "");
}

/* ---- set-up ------------------------------------------------------------------------------------ */

static int cluster_init(cluster_t *cl, char *err, size_t errlen)
{
    const wsgw_config_t *cfg = cl->cfg;
    randid_make(cl->node_id, sizeof cl->node_id, 9);
    cl->node_id_len = strlen(cl->node_id);
    bp_callbacks_t cb = { .on_message = on_message, .on_state = on_state, .ud = cl };
    bp_loop_t loop = { .timer_start = loop_timer_start, .timer_stop = loop_timer_stop, .loop_ud = cl->s->loop };
    cl->bp_state = BP_DOWN;
    if (!cfg->redis_url || !cfg->redis_url[0]) {
        cl->bp = bp_local_new(&cb, &loop);
        return cl->bp ? 0 : -1;
    }
    wsgw_redis_addr_t addr;
    const char *why = NULL;
    if (wsgw_parse_redis_url(cfg->redis_url, &addr, &why) != 0) {
        snprintf(err, errlen, "redis_url: %s", why ? why : "invalid");
        return -1;
    }
    char probe_ch[CHANNEL_MAX];
    channel(cl, probe_ch, "probe", cl->node_id, cl->node_id_len);
    bp_redis_config_t rc = {
        .host = addr.is_unix ? NULL : addr.host, .port = addr.port,
        .unix_path = addr.is_unix ? addr.path : NULL,
        .user = addr.user[0] ? addr.user : NULL, .password = addr.pass[0] ? addr.pass : NULL,
        .db = addr.db, .max_pending_bytes = cfg->redis_max_pending,
        .probe_channel = probe_ch, .probe_interval_ms = cfg->redis_probe_interval_ms,
        .attach = loop_attach_redis,
    };
    cl->bp = bp_redis_new(&rc, &cb, &loop, err, errlen);
    if (!cl->bp) return -1;
    cl->bp_remote = 1;
    cl->seq_out.max_channels = SEQ_OUT_MAX_CHANNELS;
    char ch[CHANNEL_MAX];
    bp_subscribe(cl->bp, ch, channel(cl, ch, "all", NULL, 0));
    wsgw_log(WSGW_LOG_INFO, "backplane", "state=connecting redis=%s%s node=%s prefix=%s",
             addr.is_unix ? "unix:" : addr.host, addr.is_unix ? addr.path : "",
             cl->node_id, cfg->redis_prefix);
    return 0;
}

static void cluster_free(void *ud)
{
    cluster_t *cl = ud;
    if (cl->bp) bp_free(cl->bp);
    cl->bp = NULL;
    cluster_seq_out_free(&cl->seq_out);
    ws_buf_free(&cl->bp_out);
    cluster_seq_in_free(&cl->seq_in);
    ws_xfree(cl);
}

/* "embedded", "up", "syncing", "down", "stale"; Redis away is "degraded". */
static void cluster_health(void *ud, core_health_t *h)
{
    cluster_t *cl = ud;
    h->backplane = !cl->bp_remote ? "embedded"
                 : cl->bp_stale && cl->bp_state != BP_UP ? "stale" : bp_state_name(cl->bp_state);
    h->degraded = cl->bp_remote && cl->bp_state != BP_UP;
    h->node = cl->node_id;
}

static void cluster_gauges(void *ud, wsgw_gauges_t *g)
{
    cluster_t *cl = ud;
    if (cl->bp) {
        bp_stats_t st;
        bp_get_stats(cl->bp, &st);
        g->backplane_remote = (uint64_t)cl->bp_remote;
        g->backplane_up = !cl->bp_remote || cl->bp_state == BP_UP;
        g->backplane_published = st.published;
        g->backplane_dropped = st.publish_dropped;
        g->backplane_pending_bytes = st.pending_bytes;
        g->backplane_received = st.received;
        g->backplane_reconnects = st.reconnects;
        g->backplane_stale = st.stale;
        g->backplane_subscriptions = st.subscriptions;
    }
    g->backplane_bad_messages = cl->bp_bad_messages;
    g->backplane_lost = cl->bp_lost;
    g->backplane_late = cl->seq_in.late;
}

/* Other nodes' share of a fan-out first: they start while we write ours. */
static void cluster_flush(void *ud)
{
    cluster_t *cl = ud;
    bp_flush(cl->bp);
}

int cluster_attach(wsgw_server_t *s, char *err, size_t errlen)
{
    cluster_t *cl = ws_xcalloc(1, sizeof *cl);
    cl->s = s;
    cl->cfg = s->cfg;
    core_hooks_t h = {
        .name = "cluster", .ud = cl,
        .conn_opened = cluster_conn_opened, .first_answer = first_answer,
        .conn_closed = cluster_conn_closed, .sweep = cluster_sweep,
        .room_created = room_created, .room_emptied = room_destroyed,
        .member_joined = member_joined, .publish = publish_delivery,
        .publish_event = publish_event, .flush = cluster_flush,
        .health = cluster_health, .gauges = cluster_gauges, .free = cluster_free,
    };
    if (core_register(s, &h) != 0) {
        ws_xfree(cl);
        snprintf(err, errlen, "cluster: too many features");
        return -1;
    }
    return cluster_init(cl, err, errlen);
}
