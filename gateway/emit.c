/* emit.c — delivery: frame a message once, hand the same block to every
 * receiver, and the connection half of the public API (wsgw.h).
 *
 * A fan-out builds at most two blocks per message: the plain frame, and —
 * only if some receiver negotiated permessage-deflate and the payload is
 * over compression_threshold — one compressed frame made with the loop's
 * shared deflater reset after each message (server_no_context_takeover),
 * so every such receiver gets the same bytes.  Receivers that asked for a
 * smaller server window get a frame compressed for that window.
 */
#include <fnmatch.h>
#include <string.h>

#include "envelope.h"
#include "iris.h"
#include "json_scan.h"
#include "log.h"
#include "server_int.h"
#include "ws_frame.h"
#include "ws_status.h"
#include "ws_utf8.h"

#define PMD_WINDOWS 8   /* server_max_window_bits 8..15 */

typedef struct emit_msg {
    wsgw_server_t *s;
    const envelope_delivery_t *d;           /* NULL for native messages */
    wsgw_block_t  *iris;                    /* the same delivery in Iris' format */
    uint8_t        iris_failed;
    wsgw_block_t  *plain;
    size_t         hdr_len;                 /* header bytes in plain */
    wsgw_block_t  *deflated[PMD_WINDOWS];
    uint8_t        deflate_failed[PMD_WINDOWS];
    int            opcode;
} emit_msg_t;

static void emit_msg_init(emit_msg_t *m, wsgw_server_t *s, wsgw_block_t *plain, size_t hdr_len, int opcode)
{
    memset(m, 0, sizeof *m);
    m->s = s;
    m->plain = plain;
    m->hdr_len = hdr_len;
    m->opcode = opcode;
}

static void emit_msg_done(emit_msg_t *m)
{
    wsgw_block_unref(m->plain);
    if (m->iris) wsgw_block_unref(m->iris);
    for (int i = 0; i < PMD_WINDOWS; i++) if (m->deflated[i]) wsgw_block_unref(m->deflated[i]);
}

/* One deflater per window size in use, made on demand (almost always just
 * 15); each is reset after every message, so they hold no per-client state. */
static ws_deflater_t *deflater_for(wsgw_server_t *s, int bits)
{
    ws_deflater_t **d = &s->deflaters[bits - 8];
    if (!*d) *d = ws_deflater_new(bits, s->cfg->compression_level, 8);
    return *d;
}

/* An Iris client gets deliveries as iris-websocket-message frames, built
 * once per fan-out like every other variant; native messages go to it as
 * they are.  NULL: this delivery cannot be said in Iris' format. */
static wsgw_block_t *emit_block_iris(emit_msg_t *m)
{
    if (!m->d) return m->plain;
    if (m->iris || m->iris_failed) return m->iris;
    size_t bound = iris_encode_size(m->d->event, m->d->data);
    uint8_t *tmp = ws_xmalloc(bound);
    size_t n = iris_encode(m->d->event, m->d->data, tmp);
    if (n == 0) {
        m->iris_failed = 1;
    } else {
        size_t hdr = ws_frame_header_size(n, 0);
        m->iris = wsgw_block_new(hdr + n);
        ws_frame_write_header(m->iris->data, 1, 0, (ws_opcode_t)m->opcode, n, NULL);
        memcpy(m->iris->data + hdr, tmp, n);
    }
    ws_xfree(tmp);
    return m->iris;
}

/* The block this receiver gets: in its codec, compressed once per window
 * size, or plain. */
static wsgw_block_t *emit_block_for(emit_msg_t *m, const wsgw_conn_t *c)
{
    if (c->codec == CODEC_IRIS) return emit_block_iris(m);
    size_t plen = m->plain->len - m->hdr_len;
    if (!c->pmd || plen < m->s->cfg->compression_threshold) return m->plain;
    int bits = c->pmd_params.server_max_window_bits;
    if (bits < 8 || bits > 15) bits = 15;
    int i = bits - 8;
    if (m->deflated[i]) return m->deflated[i];
    if (m->deflate_failed[i]) return m->plain;
    ws_buf_t z = {0};
    if (ws_deflate(deflater_for(m->s, bits), m->plain->data + m->hdr_len, plen, 1, &z) != WS_OK ||
        z.len >= plen) {
        /* Failed, or incompressible: send it plain (RSV1 is per message). */
        m->deflate_failed[i] = 1;
        ws_buf_free(&z);
        return m->plain;
    }
    size_t h = ws_frame_header_size(z.len, 0);
    wsgw_block_t *b = wsgw_block_new(h + z.len);
    ws_frame_write_header(b->data, 1, WS_RSV1, (ws_opcode_t)m->opcode, z.len, NULL);
    memcpy(b->data + h, z.data, z.len);
    ws_buf_free(&z);
    m->deflated[i] = b;
    m->s->metrics.compressed_messages++;
    return b;
}

static size_t deliver(emit_msg_t *m, wsgw_conn_t *c)
{
    if (c->state != CONN_OPEN) return 0;
    wsgw_block_t *b = emit_block_for(m, c);
    if (!b) {
        m->s->metrics.dropped_messages++;       /* e.g. an event with ';' to an Iris client */
        return 0;
    }
    conn_queue_block(c, b);
    return 1;
}

/* Iris v10 semantics, per target.  `self` is who SELF means; `skip` is the
 * one connection a BROADCAST (the sender) or a backend's "except" leaves
 * out. */
static int emit_route(wsgw_server_t *s, wsgw_conn_t *self, const wsgw_conn_t *skip,
                      wsgw_target_kind_t kind, const char *name, size_t name_len, emit_msg_t *m)
{
    size_t n = 0;
    switch (kind) {
    case WSGW_TO_SELF:
        if (self) n = deliver(m, self);
        break;
    case WSGW_TO_BROADCAST:
    case WSGW_TO_ALL:
        for (wsgw_conn_t *c = s->conns; c; c = c->next)
            if (c != skip) n += deliver(m, c);
        break;
    case WSGW_TO_ROOM: {
        wsgw_room_t *r = rooms_find(&s->rooms, name, name_len);
        if (!r || !r->count) break;
        /* Writes go out in queue order, so the member queued first is
         * served first: start each fan-out at a different member (spread
         * over the room by a multiplicative hash of a counter), and every
         * member is first, and last, about as often as the others. */
        uint32_t start = (uint32_t)(((uint64_t)(s->fanout_turn++ * 2654435761u) * r->count) >> 32);
        for (uint32_t k = 0; k < r->count; k++) {
            uint32_t i = start + k < r->count ? start + k : start + k - r->count;
            wsgw_conn_t *c = container_of(r->members[i], wsgw_conn_t, member);
            if (c != skip) n += deliver(m, c);
        }
        break;
    }
    case WSGW_TO_CONN: {
        wsgw_conn_t *c = idmap_get(&s->by_id, name, name_len);
        if (c && c != skip) n = deliver(m, c);
        break;
    }
    }
    return (int)n;
}

/* A block holding one unmasked frame of `payload_len` bytes whose payload
 * the caller writes at block->data + *hdr_len. */
static wsgw_block_t *frame_alloc(int opcode, size_t payload_len, size_t *hdr_len)
{
    *hdr_len = ws_frame_header_size(payload_len, 0);
    wsgw_block_t *b = wsgw_block_new(*hdr_len + payload_len);
    ws_frame_write_header(b->data, 1, 0, (ws_opcode_t)opcode, payload_len, NULL);
    return b;
}

static int data_opcode(const wsgw_server_t *s)
{
    return s->cfg->binary_messages ? WS_OP_BINARY : WS_OP_TEXT;
}

static envelope_target_t to_envelope_target(wsgw_target_kind_t kind)
{
    switch (kind) {
    case WSGW_TO_BROADCAST: return ENVELOPE_TO_BROADCAST;
    case WSGW_TO_ALL:       return ENVELOPE_TO_ALL;
    case WSGW_TO_ROOM:      return ENVELOPE_TO_ROOM;
    default:                return ENVELOPE_TO_CONN;
    }
}

/* Frames one delivery envelope once and routes it to this node's
 * receivers; returns how many it was queued for. */
int emit_delivery(wsgw_server_t *s, const envelope_delivery_t *d, wsgw_target_kind_t kind,
                  const char *name, size_t name_len, wsgw_conn_t *self, const wsgw_conn_t *skip)
{
    size_t hdr, len = envelope_delivery_size(d);
    wsgw_block_t *b = frame_alloc(data_opcode(s), len, &hdr);
    envelope_delivery_write(d, b->data + hdr);
    emit_msg_t m;
    emit_msg_init(&m, s, b, hdr, data_opcode(s));
    m.d = d;
    int n = emit_route(s, self, skip, kind, name, name_len, &m);
    emit_msg_done(&m);
    return n;
}

int emit_event(wsgw_server_t *s, wsgw_conn_t *sender, wsgw_target_kind_t kind,
               const char *name, size_t name_len, const uint8_t *event, size_t event_len,
               const uint8_t *data, size_t data_len, json_span_t ack_id, int *ack_deferred)
{
    envelope_delivery_t d = {
        .event = { event, event_len },
        .data = { data, data_len },
        .from = { sender ? (const uint8_t *)sender->id : NULL, sender ? sender->id_len : 0 },
        .to = to_envelope_target(kind),
        .to_name = { (const uint8_t *)name, name_len },
    };
    if (kind == WSGW_TO_SELF) {
        d.to_name.p = (const uint8_t *)sender->id;
        d.to_name.len = sender->id_len;
    }
    int n = emit_delivery(s, &d, kind, name, name_len, sender,
                          kind == WSGW_TO_BROADCAST ? sender : NULL);
    int deferred = cluster_publish_delivery(s, sender, kind, name, name_len, &d, ack_id);
    if (ack_deferred) *ack_deferred = deferred;
    return n;
}

/* Queues a small control envelope (ack, error, welcome) to one connection. */
void emit_reply(wsgw_conn_t *c, wsgw_block_t *b)
{
    conn_queue_block(c, b);
    wsgw_block_unref(b);
}

wsgw_block_t *emit_reply_block(const wsgw_server_t *s, size_t len, uint8_t **payload)
{
    size_t hdr;
    wsgw_block_t *b = frame_alloc(data_opcode(s), len, &hdr);
    *payload = b->data + hdr;
    return b;
}

/* ---- public API: emits ------------------------------------------------------------ */

static int api_check(const wsgw_conn_t *c, const char *event, const char *data, size_t len)
{
    if (!c || !event || !event[0] || strlen(event) > ENVELOPE_EVENT_NAME_MAX) return WSGW_E_ARG;
    if (data && json_scan_document((const uint8_t *)data, len, NULL) != JSON_OK) return WSGW_E_ARG;
    return c->state == CONN_OPEN ? 0 : WSGW_E_CLOSED;
}

int wsgw_to_emit(wsgw_conn_t *c, wsgw_target_kind_t kind, const char *name,
                 const char *event, const char *data, size_t len)
{
    int rc = api_check(c, event, data, len);
    if (rc) return rc;
    if ((kind == WSGW_TO_ROOM || kind == WSGW_TO_CONN) && !name) return WSGW_E_ARG;
    if (!data) { data = "null"; len = 4; }
    json_span_t none = { NULL, 0 };
    return emit_event(c->srv, c, kind, name, name ? strlen(name) : 0,
                      (const uint8_t *)event, strlen(event), (const uint8_t *)data, len, none, NULL);
}

int wsgw_emit(wsgw_conn_t *c, const char *event, const char *data, size_t len)
{
    return wsgw_to_emit(c, WSGW_TO_SELF, NULL, event, data, len);
}

int wsgw_server_emit(wsgw_server_t *s, wsgw_target_kind_t kind, const char *name,
                     const char *event, const char *data, size_t len)
{
    if (!s || !event || !event[0] || kind == WSGW_TO_SELF) return WSGW_E_ARG;
    if ((kind == WSGW_TO_ROOM || kind == WSGW_TO_CONN) && !name) return WSGW_E_ARG;
    if (!data) { data = "null"; len = 4; }
    if (json_scan_document((const uint8_t *)data, len, NULL) != JSON_OK) return WSGW_E_ARG;
    json_span_t none = { NULL, 0 };
    return emit_event(s, NULL, kind, name, name ? strlen(name) : 0,
                      (const uint8_t *)event, strlen(event), (const uint8_t *)data, len, none, NULL);
}

int wsgw_emit_message(wsgw_conn_t *c, wsgw_target_kind_t kind, const char *name,
                      const uint8_t *data, size_t len, int binary)
{
    if (!c || (!data && len)) return WSGW_E_ARG;
    if ((kind == WSGW_TO_ROOM || kind == WSGW_TO_CONN) && !name) return WSGW_E_ARG;
    if (c->state != CONN_OPEN) return WSGW_E_CLOSED;
    int op = binary || c->srv->cfg->binary_messages ? WS_OP_BINARY : WS_OP_TEXT;
    if (op == WS_OP_TEXT && !ws_utf8_is_valid(data, len)) return WSGW_E_ARG;
    size_t hdr;
    wsgw_block_t *b = frame_alloc(op, len, &hdr);
    if (len) memcpy(b->data + hdr, data, len);
    emit_msg_t m;
    emit_msg_init(&m, c->srv, b, hdr, op);
    int n = emit_route(c->srv, c, kind == WSGW_TO_BROADCAST ? c : NULL, kind, name,
                       name ? strlen(name) : 0, &m);
    emit_msg_done(&m);
    return n;
}

/* ---- public API: rooms, lifecycle, accessors -------------------------------------- */

int wsgw_join(wsgw_conn_t *c, const char *room)
{
    if (!c || !room) return WSGW_E_ARG;
    size_t n = strlen(room);
    if (!envelope_room_valid((const uint8_t *)room, n, (size_t)c->srv->cfg->max_room_name)) return WSGW_E_ARG;
    if (c->state != CONN_OPEN) return WSGW_E_CLOSED;
    int rc = rooms_join(&c->srv->rooms, &c->member, room, n, (size_t)c->srv->cfg->max_rooms_per_conn);
    return rc < 0 ? WSGW_E_LIMIT : rc;
}

int wsgw_leave(wsgw_conn_t *c, const char *room)
{
    if (!c || !room) return WSGW_E_ARG;
    return rooms_leave(&c->srv->rooms, &c->member, room, strlen(room));
}

void wsgw_leave_all(wsgw_conn_t *c)
{
    rooms_leave_all(&c->srv->rooms, &c->member);
}

int wsgw_is_joined(const wsgw_conn_t *c, const char *room)
{
    return c && room && rooms_is_member(&c->member, room, strlen(room));
}

void wsgw_disconnect(wsgw_conn_t *c, uint16_t code, const char *reason)
{
    if (!c || c->state != CONN_OPEN) return;
    if (!ws_close_code_is_valid(code)) code = WS_CLOSE_NORMAL;
    c->srv->metrics.closes[CLOSE_BY_SERVER]++;
    conn_fail(c, code, reason);
}

wsgw_conn_t *wsgw_server_find(wsgw_server_t *s, const char *id)
{
    return id ? idmap_get(&s->by_id, id, strlen(id)) : NULL;
}

void wsgw_on(wsgw_conn_t *c, const char *event, wsgw_event_cb cb, void *ud)
{
    conn_app_t *a = conn_app(c);
    a->handlers = ws_xrealloc(a->handlers, (a->n_handlers + 1u) * sizeof *a->handlers);
    a->handlers[a->n_handlers].event = ws_xstrndup(event, strlen(event));
    a->handlers[a->n_handlers].cb = cb;
    a->handlers[a->n_handlers].ud = ud;
    a->n_handlers++;
}

void wsgw_on_message(wsgw_conn_t *c, wsgw_message_cb cb, void *ud) { conn_app(c)->on_message = cb; c->app->on_message_ud = ud; }
void wsgw_on_disconnect(wsgw_conn_t *c, wsgw_disconnect_cb cb, void *ud) { conn_app(c)->on_disconnect = cb; c->app->on_disconnect_ud = ud; }
void wsgw_on_error(wsgw_conn_t *c, wsgw_error_cb cb, void *ud) { conn_app(c)->on_error = cb; c->app->on_error_ud = ud; }
const char *wsgw_conn_id(const wsgw_conn_t *c) { return c->id; }
const char *wsgw_conn_remote_addr(const wsgw_conn_t *c) { return conn_peer(c); }
const char *wsgw_conn_user(const wsgw_conn_t *c) { return conn_user(c); }
const char *wsgw_conn_subprotocol(const wsgw_conn_t *c) { return conn_subprotocol(c); }
void  wsgw_conn_set_data(wsgw_conn_t *c, void *data) { conn_app(c)->user_data = data; }
void *wsgw_conn_data(const wsgw_conn_t *c) { return c->app ? c->app->user_data : NULL; }
wsgw_server_t *wsgw_conn_server(const wsgw_conn_t *c) { return c->srv; }
