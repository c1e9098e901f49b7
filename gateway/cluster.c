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
 * the gaps as lost (bp_seq.h; wsgw_backplane_lost_total).
 */
#include <ev.h>
#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bp_payload.h"
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

/* ---- the event loop, handed to the backplane -------------------------------------- */

typedef struct bp_timer {
    ev_timer w;
    void   (*cb)(void *arg);
    void    *arg;
} bp_timer_t;

static void bp_timer_fire(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    bp_timer_t *t = (bp_timer_t *)w;
    void (*cb)(void *) = t->cb;
    void *arg = t->arg;
    ws_xfree(t);                      /* one-shot: gone before the callback runs */
    cb(arg);
}

static void *bp_timer_start(void *loop_ud, uint64_t ms, void (*cb)(void *arg), void *arg)
{
    bp_timer_t *t = ws_xmalloc(sizeof *t);
    t->cb = cb;
    t->arg = arg;
    ev_timer_init(&t->w, bp_timer_fire, (double)ms / 1000.0, 0);
    ev_timer_start((struct ev_loop *)loop_ud, &t->w);
    return t;
}

static void bp_timer_stop(void *loop_ud, void *timer)
{
    bp_timer_t *t = timer;
    ev_timer_stop((struct ev_loop *)loop_ud, &t->w);
    ws_xfree(t);
}

static int bp_attach(void *loop_ud, redisAsyncContext *ac)
{
    return redisLibevAttach((struct ev_loop *)loop_ud, ac) == REDIS_OK ? 0 : -1;
}

/* ---- channel names ----------------------------------------------------------------- */

static size_t channel(const wsgw_server_t *s, char *out, const char *kind, const char *name, size_t len)
{
    int n = snprintf(out, CHANNEL_MAX, "%s:%s%s%.*s", s->cfg->redis_prefix, kind,
                     name ? ":" : "", (int)(name ? len : 0), name ? name : "");
    if (n < 0 || (size_t)n >= CHANNEL_MAX) abort();   /* the limits above make this impossible */
    return (size_t)n;
}

static void room_created(wsgw_room_t *r, void *ud)
{
    wsgw_server_t *s = ud;
    char ch[CHANNEL_MAX];
    bp_subscribe(s->bp, ch, channel(s, ch, "room", r->name, r->name_len));
}

static void room_destroyed(wsgw_room_t *r, void *ud)
{
    wsgw_server_t *s = ud;
    char ch[CHANNEL_MAX];
    size_t chlen = channel(s, ch, "room", r->name, r->name_len);
    bp_unsubscribe(s->bp, ch, chlen);
    bp_seq_in_forget(&s->seq_in, ch, chlen);     /* what we no longer hear is not lost */
}

/* ---- payloads out --------------------------------------------------------------------- */

/* {"event":..,"data":..,"from":..,"to":..,"node":"<us>","seq":N}: the
 * delivery envelope with our node id, so we can recognise our own echo,
 * and the channel's sequence number (none when seq is 0). */
static void payload_delivery(const wsgw_server_t *s, const envelope_delivery_t *d, uint64_t seq,
                             ws_buf_t *out)
{
    size_t n = envelope_delivery_size(d);
    uint8_t *p = ws_buf_reserve(out, n + 16 + s->node_id_len + 28);
    envelope_delivery_write(d, p);
    p += n - 1;                                   /* over the closing brace */
    memcpy(p, ",\"node\":\"", 9); p += 9;
    memcpy(p, s->node_id, s->node_id_len); p += s->node_id_len;
    *p++ = '"';
    if (seq) p += sprintf((char *)p, ",\"seq\":%" PRIu64, seq);   /* at most 7 + 16 bytes */
    *p++ = '}';
    out->len += (size_t)(p - (out->data + out->len));
}

/* A trailer: {"node":"<us>","seq":N} repeating the last number published
 * on ch, sent once when ch has gone quiet, so that a receiver that lost
 * the end of a burst sees the gap (bp_seq.h). */
static void send_trailer(void *ud, const char *ch, size_t chlen, uint64_t seq)
{
    wsgw_server_t *s = ud;
    char buf[96];
    int n = snprintf(buf, sizeof buf, "{\"node\":\"%s\",\"seq\":%" PRIu64 "}", s->node_id, seq);
    if (n > 0 && (size_t)n < sizeof buf)
        bp_publish(s->bp, ch, chlen, (const uint8_t *)buf, (size_t)n, NULL, NULL);
}

/* Bound of the publisher's table of sequence numbers: a channel published
 * on in the last BP_SEQ_OUT_IDLE_MS costs ~150 bytes; a client emitting to
 * many connection ids cannot make it grow past ~10 MB. */
#define SEQ_OUT_MAX_CHANNELS 65536

/* A node's heartbeat on P:lifecycle (see publish_heartbeat). */
#define NODE_HEARTBEAT_MS 5000u

static void publish_heartbeat(wsgw_server_t *s);

void cluster_sweep(wsgw_server_t *s, uint64_t now_ms)
{
    if (!s->bp_remote) return;
    if (s->bp_state == BP_UP && (!s->heartbeat_last_ms || now_ms - s->heartbeat_last_ms >= NODE_HEARTBEAT_MS)) {
        s->heartbeat_last_ms = now_ms;
        publish_heartbeat(s);
    }
    bp_seq_out_sweep(&s->seq_out, now_ms, s->bp_up_since_ms,
                     s->bp_state == BP_UP ? send_trailer : NULL, s);
    bp_seq_in_sweep(&s->seq_in, now_ms);
    if (s->seq_out.unsequenced != s->seq_unsequenced_logged) {
        wsgw_log(WSGW_LOG_WARN, "backplane_seq_full",
                 "published=%" PRIu64 " reason=\"%d channels numbered: published without seq, a loss of these is not detected\"",
                 s->seq_out.unsequenced - s->seq_unsequenced_logged, SEQ_OUT_MAX_CHANNELS);
        s->seq_unsequenced_logged = s->seq_out.unsequenced;
    }
}

static void put_lit(ws_buf_t *b, const char *lit)
{
    ws_buf_append(b, lit, strlen(lit));
}

static void put_str(ws_buf_t *b, const char *p, size_t n)
{
    json_span_t v = { (const uint8_t *)p, n };
    uint8_t *d = ws_buf_reserve(b, envelope_json_string_size(v));
    b->len += (size_t)(envelope_json_string_put(d, v) - d);
}

static void put_member(ws_buf_t *b, const char *key, const char *p, size_t n)
{
    put_lit(b, ",\"");
    put_lit(b, key);
    put_lit(b, "\":");
    put_str(b, p, n);
}

/* ---- deferred acks ------------------------------------------------------------------------ */

/* What a publish callback needs to answer an envelope: the connection, by
 * id (it may be gone by then), and the envelope's id as written. */
typedef struct pending_ack {
    wsgw_server_t *s;
    uint8_t        handled;        /* events: an on(event) handler took it */
    uint8_t        is_event;
    uint8_t        is_welcome;     /* bp_sync: send the welcome, not an ack */
    uint8_t        id_len;
    char           id[ENVELOPE_ID_STRING_MAX + 3];
    char           conn[];         /* NUL-terminated */
} pending_ack_t;

static pending_ack_t *pending_ack_alloc(wsgw_server_t *s, const wsgw_conn_t *c, json_span_t id)
{
    pending_ack_t *a = ws_xcalloc(1, sizeof *a + c->id_len + 1);
    a->s = s;
    a->id_len = (uint8_t)id.len;
    if (id.len) memcpy(a->id, id.p, id.len);
    memcpy(a->conn, c->id, c->id_len + 1);
    return a;
}

static pending_ack_t *pending_ack_new(wsgw_server_t *s, const wsgw_conn_t *c, json_span_t id)
{
    if (!c || !id.len || id.len > sizeof ((pending_ack_t *)0)->id) return NULL;
    return pending_ack_alloc(s, c, id);
}

/* bp_sync answered: the subscriptions this connection needs are in place
 * on Redis (or Redis is away: the node is degraded, and they are restored
 * when it returns), so the welcome or the join's ack can go now. */
static void synced(void *ud, int confirmed, void *privdata)
{
    wsgw_server_t *s = ud;
    pending_ack_t *a = privdata;
    (void)confirmed;
    wsgw_conn_t *c = idmap_get(&s->by_id, a->conn, strlen(a->conn));
    if (c && c->state == CONN_OPEN) {
        json_span_t id = { (const uint8_t *)a->id, a->id_len };
        if (a->is_welcome) conn_release(c);
        else protocol_ack(c, id);
    }
    ws_xfree(a);
}

int cluster_after_sync(wsgw_conn_t *c, json_span_t ack_id, int welcome)
{
    wsgw_server_t *s = c->srv;
    if (!s->bp_remote) return 0;
    if (!welcome && (!ack_id.len || ack_id.len > sizeof ((pending_ack_t *)0)->id)) return 0;
    pending_ack_t *a = pending_ack_alloc(s, c, ack_id);
    a->is_welcome = (uint8_t)welcome;
    bp_sync(s->bp, synced, a);
    return 1;
}

static void published(void *ud, long receivers, void *privdata)
{
    wsgw_server_t *s = ud;
    pending_ack_t *a = privdata;
    if (receivers == BP_DROPPED) s->metrics.dropped_messages++;
    if (!a) return;
    wsgw_conn_t *c = idmap_get(&s->by_id, a->conn, strlen(a->conn));
    json_span_t id = { (const uint8_t *)a->id, a->id_len };
    if (c && c->state == CONN_OPEN) {
        if (receivers == BP_DROPPED && !a->handled)     /* Redis' fault, not the client's */
            protocol_error_not_yours(c, id, ENVELOPE_E_UNAVAILABLE,
                           a->is_event ? "the backplane is unavailable: no backend received this event"
                                       : "the backplane is unavailable: delivered on this node only");
        else if (a->is_event && receivers == 0 && !a->handled)   /* a backend restarting, say */
            protocol_error_not_yours(c, id, ENVELOPE_E_NO_BACKEND, "no backend is subscribed to events");
        else
            protocol_ack(c, id);
    }
    ws_xfree(a);
}

/* A client's emit for backends on P:events: the delivery as clients see it
 * ("to" absent for an emit without one), our node id, the user. */
static void publish_for_backends(wsgw_server_t *s, const wsgw_conn_t *c, const envelope_delivery_t *d,
                                 pending_ack_t *a)
{
    ws_buf_t payload = {0};
    payload_delivery(s, d, 0, &payload);
    const char *user = conn_user(c);
    if (user) {                                   /* the authenticated user, for backends */
        payload.len--;                            /* over the closing brace */
        put_member(&payload, "user", user, strlen(user));
        put_lit(&payload, "}");
    }
    char ch[CHANNEL_MAX];
    size_t chlen = channel(s, ch, "events", NULL, 0);
    bp_publish(s->bp, ch, chlen, payload.data, payload.len, published, a);
    ws_buf_free(&payload);
}

int cluster_publish_delivery(wsgw_server_t *s, wsgw_conn_t *sender, wsgw_target_kind_t kind,
                             const char *name, size_t name_len, const envelope_delivery_t *d,
                             json_span_t ack_id)
{
    if (!s->bp_remote) return 0;
    /* backend_events = all: backends see targeted emits too, whatever the
     * target, before and apart from their delivery (the sender's ack
     * follows the delivery's publish, or comes at once, as without). */
    if (sender && s->cfg->backend_events == WSGW_BACKEND_EVENTS_ALL)
        publish_for_backends(s, sender, d, NULL);
    if (kind == WSGW_TO_SELF) return 0;
    if (kind == WSGW_TO_CONN && idmap_get(&s->by_id, name, name_len)) return 0;  /* it is here */
    char ch[CHANNEL_MAX];
    size_t chlen = kind == WSGW_TO_ROOM ? channel(s, ch, "room", name, name_len)
                 : kind == WSGW_TO_CONN ? channel(s, ch, "conn", name, name_len)
                                        : channel(s, ch, "all", NULL, 0);
    ws_buf_t payload = {0};
    uint64_t seq = bp_seq_out_next(&s->seq_out, ch, chlen, wsgw_now_ms(s));
    payload_delivery(s, d, seq, &payload);
    pending_ack_t *a = pending_ack_new(s, sender, ack_id);
    /* Refused at once: it never reaches Redis, so its number is given back
     * and no receiver counts it lost (wsgw_backplane_dropped_total has it). */
    if (bp_publish(s->bp, ch, chlen, payload.data, payload.len, published, a) == BP_REFUSED)
        bp_seq_out_unused(&s->seq_out, ch, chlen, seq);
    ws_buf_free(&payload);
    return a != NULL;
}

int cluster_publish_event(wsgw_conn_t *c, const envelope_msg_t *m, int handled, int *answer_later)
{
    wsgw_server_t *s = c->srv;
    if (answer_later) *answer_later = 0;
    if (!s->bp_remote || s->cfg->backend_events == WSGW_BACKEND_EVENTS_NONE) return 0;
    envelope_delivery_t d = {
        .event = m->event, .data = m->data,
        .from = { (const uint8_t *)c->id, c->id_len },
        .to = ENVELOPE_TO_BACKEND,
    };
    /* Redis' reply says whether a backend got it: an ack for an id, and
     * no_backend or unavailable when no handler took it, with or without
     * an id (an accepted message is never dropped silently).  Handled and
     * without an id, there is nothing to say. */
    pending_ack_t *a = NULL;
    if (answer_later && (m->id.len || !handled)) {
        a = pending_ack_alloc(s, c, m->id);      /* the decoder bounds the id: it fits */
        a->is_event = 1;
        a->handled = (uint8_t)handled;
        *answer_later = 1;
    }
    publish_for_backends(s, c, &d, a);
    return 1;
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

static void publish_lifecycle(wsgw_server_t *s, ws_buf_t *b)
{
    char ch[CHANNEL_MAX];
    size_t chlen = channel(s, ch, "lifecycle", NULL, 0);
    bp_publish(s->bp, ch, chlen, b->data, b->len, published, NULL);
    ws_buf_free(b);
}

/* {"op":"node","node":..,"connections":N,"interval_ms":..} every
 * NODE_HEARTBEAT_MS while the backplane is up: a node killed with SIGKILL
 * (or cut off from Redis) sends no disconnect events, so a backend that
 * tracks connections expires a node's ones when its heartbeats stop. */
static void publish_heartbeat(wsgw_server_t *s)
{
    if (!s->cfg->lifecycle_events) return;
    ws_buf_t b = {0};
    char tail[64];
    put_lit(&b, "{\"op\":\"node\"");
    put_member(&b, "node", s->node_id, s->node_id_len);
    snprintf(tail, sizeof tail, ",\"connections\":%zu,\"interval_ms\":%u}", s->n_open, NODE_HEARTBEAT_MS);
    put_lit(&b, tail);
    publish_lifecycle(s, &b);
}

/* Every value of the header `name` in request order, joined with ", " (RFC
 * 9110 §5.3: repeated field lines are one comma-separated list), into *out
 * (reset first).  A proxy that appends to X-Forwarded-For adds its line
 * after the client's own, so the first line alone is what the client
 * forged.  Values that are not UTF-8 are left out (a JSON string cannot
 * carry them).  Returns 0 when none is left.  No cap of its own: the values
 * come from a header block that the parser bounds by max_header_bytes, and
 * each ", " replaces at least a line's "name:" and line end, so one
 * header's joined values stay under that bound (the event: under it times
 * the number of lifecycle_headers). */
static int header_joined(const ws_http_request_t *req, const char *name, ws_buf_t *out)
{
    size_t nlen = strlen(name);
    out->len = 0;
    int any = 0;
    for (size_t i = 0; i < req->num_headers; i++) {
        const ws_http_header_t *h = &req->headers[i];
        if (h->name_len != nlen || strncasecmp(h->name, name, nlen) != 0) continue;
        if (!ws_utf8_is_valid((const uint8_t *)h->value, h->value_len)) continue;
        if (any) ws_buf_append(out, ", ", 2);
        ws_buf_append(out, h->value, h->value_len);
        any = 1;
    }
    return any;
}

void cluster_conn_opened(wsgw_conn_t *c)
{
    wsgw_server_t *s = c->srv;
    char ch[CHANNEL_MAX];
    if (!s->bp_remote) return;
    bp_subscribe(s->bp, ch, channel(s, ch, "conn", c->id, c->id_len));
    if (!s->cfg->lifecycle_events) return;
    ws_buf_t b = {0};
    put_lit(&b, "{\"op\":\"connect\"");
    put_member(&b, "conn", c->id, c->id_len);
    put_member(&b, "node", s->node_id, s->node_id_len);
    put_member(&b, "remote", conn_peer(c), strlen(conn_peer(c)));
    if (conn_user(c)) put_member(&b, "user", conn_user(c), strlen(conn_user(c)));
    put_lit(&b, ",\"headers\":{");
    int first = 1;
    ws_buf_t joined = {0};
    for (size_t i = 0; conn_req(c) && i < s->cfg->lifecycle_headers.n; i++) {
        const char *name = s->cfg->lifecycle_headers.v[i];
        if (!header_joined(conn_req(c), name, &joined)) continue;
        if (!first) put_lit(&b, ",");
        put_str(&b, name, strlen(name));
        put_lit(&b, ":");
        put_str(&b, (const char *)joined.data, joined.len);
        first = 0;
    }
    ws_buf_free(&joined);
    put_lit(&b, "}}");
    publish_lifecycle(s, &b);
}

void cluster_conn_closed(wsgw_conn_t *c)
{
    wsgw_server_t *s = c->srv;
    char ch[CHANNEL_MAX], code[16];
    if (!s->bp_remote) return;
    size_t chlen = channel(s, ch, "conn", c->id, c->id_len);
    bp_unsubscribe(s->bp, ch, chlen);
    bp_seq_in_forget(&s->seq_in, ch, chlen);
    if (!s->cfg->lifecycle_events) return;
    ws_buf_t b = {0};
    put_lit(&b, "{\"op\":\"disconnect\"");
    put_member(&b, "conn", c->id, c->id_len);
    put_member(&b, "node", s->node_id, s->node_id_len);
    snprintf(code, sizeof code, ",\"code\":%u}", (unsigned)c->close_code);
    put_lit(&b, code);
    publish_lifecycle(s, &b);
}

/* ---- payloads in ----------------------------------------------------------------------------- */

static void bad_payload(wsgw_server_t *s, const char *channel_name, size_t chlen, const char *why)
{
    s->bp_bad_messages++;
    wsgw_log(WSGW_LOG_WARN, "backplane_bad_message", "channel=%.*s reason=\"%s\"",
             (int)(chlen > 200 ? 200 : chlen), channel_name, why);
}

/* A close frame carries at most 123 bytes of reason (RFC 6455 5.5: 125
 * bytes of payload, 2 of them the code). */
#define CLOSE_REASON_MAX 123

/* The reason of a disconnect op, decoded and cut to CLOSE_REASON_MAX bytes
 * on a UTF-8 boundary (a cut character would make the close frame invalid
 * UTF-8 and the client fail the connection with 1007) into
 * why[0..CLOSE_REASON_MAX + 1): its length, 0 without a reason, SIZE_MAX
 * when it is not a string or not valid UTF-8. */
static size_t close_reason(json_span_t v, char *why)
{
    if (!v.len) return 0;
    if (v.len < 2 || v.p[0] != '"') return SIZE_MAX;
    /* One byte past the limit, to see whether the character at the limit
     * is whole. */
    size_t n = json_str_unescape_prefix(v.p + 1, v.len - 2, (uint8_t *)why, CLOSE_REASON_MAX + 1);
    n = ws_utf8_cut((const uint8_t *)why, n, CLOSE_REASON_MAX);
    return ws_utf8_is_valid((const uint8_t *)why, n) ? n : SIZE_MAX;
}

/* Control ops for one connection: {"op":"join"|"leave","room":".."},
 * {"op":"disconnect","code":4000,"reason":".."}.  Backends are trusted: no
 * join_rooms check, but the room-name rules and limits hold. */
static void inbound_control(wsgw_server_t *s, wsgw_conn_t *c, const bp_payload_t *in,
                            const char *chname, size_t chlen)
{
    json_span_t op, room;
    if (!bp_plain_string(in->op, &op)) { bad_payload(s, chname, chlen, "op is not a plain string"); return; }
    if (op.len == 10 && memcmp(op.p, "disconnect", 10) == 0) {
        unsigned long code = 1000;
        if (in->code.len) code = strtoul((const char *)in->code.p, NULL, 10);
        char why[CLOSE_REASON_MAX + 2];
        size_t n = close_reason(in->reason, why);
        if (n == SIZE_MAX) { bad_payload(s, chname, chlen, "disconnect reason is not a UTF-8 string"); n = 0; }
        why[n] = '\0';
        wsgw_disconnect(c, (uint16_t)(code > 4999 ? 1000 : code), why);
        return;
    }
    int join = op.len == 4 && memcmp(op.p, "join", 4) == 0;
    int leave = op.len == 5 && memcmp(op.p, "leave", 5) == 0;
    if ((!join && !leave) || !bp_plain_string(in->room, &room) ||
        !envelope_room_valid(room.p, room.len, (size_t)s->cfg->max_room_name)) {
        bad_payload(s, chname, chlen, "unknown op or bad room");
        return;
    }
    if (join) rooms_join(&s->rooms, &c->member, (const char *)room.p, room.len,
                         (size_t)s->cfg->max_rooms_per_conn);
    else rooms_leave(&s->rooms, &c->member, (const char *)room.p, room.len);
}

/* A payload's node id as one log field.  Anyone who can PUBLISH on Redis
 * (a backend) writes it: a space or '=' in it must not end its field and
 * forge another, so it is quoted then (wsgw_log_value).  bp_seq_in_check
 * tracks only ids of at most BP_SEQ_NODE_MAX bytes: nothing is cut. */
#define LOG_NODE_MAX (4 * BP_SEQ_NODE_MAX + 3)   /* every byte escaped, the quotes */
static const char *log_node(json_span_t node, char quoted[LOG_NODE_MAX])
{
    char raw[BP_SEQ_NODE_MAX + 1];
    size_t n = node.len < BP_SEQ_NODE_MAX ? node.len : BP_SEQ_NODE_MAX;
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
 * Returns 0 when the payload is to be dropped: a late arrival (bp_seq.h,
 * BP_SEQ_IN_LATE), already counted missing. */
static int inbound_seq(wsgw_server_t *s, const char *ch, size_t chlen, json_span_t node,
                        uint64_t seq, int trailer, int conn_channel)
{
    /* A live connection's channel is numbered only after its id was
     * announced, so after our subscription — when ids are random: a header
     * id or a custom IDGenerator's can be known, and published to, before
     * its connection exists. */
    int from_one = conn_channel && s->cfg->id_generator == WSGW_ID_RANDOM && !s->id_gen;
    uint64_t missing = bp_seq_in_check(&s->seq_in, ch, chlen, (const char *)node.p, node.len,
                                       seq, trailer, from_one, wsgw_now_ms(s));
    char quoted[LOG_NODE_MAX];
    if (missing == BP_SEQ_IN_LATE) {
        wsgw_log(WSGW_LOG_WARN, "backplane_late", "node=%s channel=%.*s seq=%" PRIu64
                 " reason=\"arrived after a later number, or again: dropped (a gap it left was counted lost)\"",
                 log_node(node, quoted), (int)(chlen > 200 ? 200 : chlen), ch, seq);
        return 0;
    }
    if (!missing) return 1;
    s->bp_lost += missing;
    wsgw_log(WSGW_LOG_WARN, "backplane_lost", "node=%s channel=%.*s missing=%" PRIu64
             " reason=\"seq jumped to %" PRIu64 "%s: lost between Redis and this node\"",
             log_node(node, quoted), (int)(chlen > 200 ? 200 : chlen), ch, missing, seq,
             trailer ? " (trailer)" : "");
    return 1;
}

static void on_message(void *ud, const char *ch, size_t chlen, const uint8_t *payload, size_t len)
{
    wsgw_server_t *s = ud;
    size_t plen = strlen(s->cfg->redis_prefix);
    if (chlen <= plen + 1 || memcmp(ch, s->cfg->redis_prefix, plen) != 0 || ch[plen] != ':') return;
    const char *kind = ch + plen + 1;
    size_t klen = chlen - plen - 1;
    bp_payload_t in;
    if (!bp_payload_parse(payload, len, &in)) { bad_payload(s, ch, chlen, "not a JSON object in UTF-8"); return; }
    json_span_t node;
    int has_node = in.node.len && bp_plain_string(in.node, &node);
    if (has_node && node.len == s->node_id_len && memcmp(node.p, s->node_id, node.len) == 0)
        return;                                   /* our own message, delivered already */

    wsgw_target_kind_t target;
    const char *name = NULL;
    size_t name_len = 0;
    if (klen == 3 && memcmp(kind, "all", 3) == 0) {
        json_span_t to;
        target = bp_plain_string(in.to, &to) && to.len == 9 && memcmp(to.p, "broadcast", 9) == 0
               ? WSGW_TO_BROADCAST : WSGW_TO_ALL;
    } else if (klen > 5 && memcmp(kind, "room:", 5) == 0) {
        target = WSGW_TO_ROOM; name = kind + 5; name_len = klen - 5;
    } else if (klen > 5 && memcmp(kind, "conn:", 5) == 0) {
        target = WSGW_TO_CONN; name = kind + 5; name_len = klen - 5;
    } else {
        return;                                   /* not a channel we deliver from */
    }
    uint64_t seq;
    if (has_node && bp_payload_seq(in.seq, &seq)) {
        int trailer = !in.event.len && !in.op.len;
        if (!inbound_seq(s, ch, chlen, node, seq, trailer,
                         target == WSGW_TO_CONN && idmap_get(&s->by_id, name, name_len) != NULL))
            return;                               /* late: delivering it now would reorder */
        if (trailer) return;
    }
    if (in.op.len) {
        wsgw_conn_t *c = target == WSGW_TO_CONN ? idmap_get(&s->by_id, name, name_len) : NULL;
        if (c && c->state == CONN_OPEN) inbound_control(s, c, &in, ch, chlen);
        else if (target != WSGW_TO_CONN) bad_payload(s, ch, chlen, "control ops go to PREFIX:conn:<id>");
        return;
    }
    uint8_t event[ENVELOPE_EVENT_NAME_MAX];
    size_t elen = in.event.len >= 2 && in.event.p[0] == '"'
                ? json_str_unescape(in.event.p + 1, in.event.len - 2, event, sizeof event) : SIZE_MAX;
    if (elen == SIZE_MAX || elen == 0) { bad_payload(s, ch, chlen, "event missing, not a string or too long"); return; }
    envelope_delivery_t d = {
        .event = { event, elen },
        .data = in.data.len ? in.data : (json_span_t){ (const uint8_t *)"null", 4 },
        .to = target == WSGW_TO_BROADCAST ? ENVELOPE_TO_BROADCAST : target == WSGW_TO_ALL ? ENVELOPE_TO_ALL
            : target == WSGW_TO_ROOM ? ENVELOPE_TO_ROOM : ENVELOPE_TO_CONN,
        .to_name = { (const uint8_t *)name, name_len },
    };
    json_span_t from, except;
    if (bp_plain_string(in.from, &from) && envelope_conn_id_valid(from.p, from.len)) d.from = from;
    const wsgw_conn_t *skip = NULL;
    if (bp_plain_string(in.except, &except))
        skip = idmap_get(&s->by_id, (const char *)except.p, except.len);
    emit_delivery(s, &d, target, name, name_len, NULL, skip);
}

static void on_state(void *ud, bp_state_t state, const char *why)
{
    wsgw_server_t *s = ud;
    /* The backplane reports a change of state, or a new reason while down
     * (a wrong password, a refused connection): each is worth a line. */
    if (state == BP_UP && s->bp_state != BP_UP) s->bp_up_since_ms = wsgw_now_ms(s);
    s->bp_state = state;
    /* The probe found the connections stale (they are being reconnected):
     * /healthz says so until the backplane is up again. */
    bp_stats_t st;
    bp_get_stats(s->bp, &st);
    if (st.stale != s->bp_stale_seen) {
        s->bp_stale_seen = st.stale;
        s->bp_stale = 1;
        wsgw_log(WSGW_LOG_WARN, "backplane_stale", "stale_total=%" PRIu64 " reason=\"%s\"",
                 st.stale, why ? why : "");
    }
    if (state == BP_UP) s->bp_stale = 0;
    wsgw_log(state == BP_UP ? WSGW_LOG_INFO : WSGW_LOG_WARN, "backplane", "state=%s reason=\"%s\"",
             bp_state_name(state), why ? why : "");
}

/* ---- set-up ------------------------------------------------------------------------------------ */

int cluster_init(wsgw_server_t *s, char *err, size_t errlen)
{
    const wsgw_config_t *cfg = s->cfg;
    randid_make(s->node_id, sizeof s->node_id, 9);
    s->node_id_len = strlen(s->node_id);
    bp_callbacks_t cb = { .on_message = on_message, .on_state = on_state, .ud = s };
    bp_loop_t loop = { .timer_start = bp_timer_start, .timer_stop = bp_timer_stop, .loop_ud = s->loop };
    s->bp_state = BP_DOWN;
    if (!cfg->redis_url || !cfg->redis_url[0]) {
        s->bp = bp_local_new(&cb, &loop);
        return s->bp ? 0 : -1;
    }
    wsgw_redis_addr_t addr;
    const char *why = NULL;
    if (wsgw_parse_redis_url(cfg->redis_url, &addr, &why) != 0) {
        snprintf(err, errlen, "redis_url: %s", why ? why : "invalid");
        return -1;
    }
    char probe_ch[CHANNEL_MAX];
    channel(s, probe_ch, "probe", s->node_id, s->node_id_len);
    bp_redis_config_t rc = {
        .host = addr.is_unix ? NULL : addr.host, .port = addr.port,
        .unix_path = addr.is_unix ? addr.path : NULL,
        .user = addr.user[0] ? addr.user : NULL, .password = addr.pass[0] ? addr.pass : NULL,
        .db = addr.db, .max_pending_bytes = cfg->redis_max_pending,
        .probe_channel = probe_ch, .probe_interval_ms = cfg->redis_probe_interval_ms,
        .attach = bp_attach,
    };
    s->bp = bp_redis_new(&rc, &cb, &loop, err, errlen);
    if (!s->bp) return -1;
    s->bp_remote = 1;
    s->seq_out.max_channels = SEQ_OUT_MAX_CHANNELS;
    s->rooms.on_room_created = room_created;
    s->rooms.on_room_destroyed = room_destroyed;
    s->rooms.hook_ud = s;
    char ch[CHANNEL_MAX];
    bp_subscribe(s->bp, ch, channel(s, ch, "all", NULL, 0));
    wsgw_log(WSGW_LOG_INFO, "backplane", "state=connecting redis=%s%s node=%s prefix=%s",
             addr.is_unix ? "unix:" : addr.host, addr.is_unix ? addr.path : "",
             s->node_id, cfg->redis_prefix);
    return 0;
}

void cluster_free(wsgw_server_t *s)
{
    if (s->bp) bp_free(s->bp);
    s->bp = NULL;
    bp_seq_out_free(&s->seq_out);
    bp_seq_in_free(&s->seq_in);
}

const char *cluster_health(const wsgw_server_t *s)
{
    if (!s->bp_remote) return "embedded";
    return s->bp_stale && s->bp_state != BP_UP ? "stale" : bp_state_name(s->bp_state);
}
