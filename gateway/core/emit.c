/* emit.c — delivery: frame a message once per codec in use, hand the same
 * block to every receiver of that codec (core_deliver, core_emit: core.h).
 *
 * A fan-out builds at most a few blocks per message: the delivery in each
 * codec's format that some receiver uses (the delivery envelope for codecs
 * without a frame function), and — only for codecs that compress, if some
 * receiver negotiated permessage-deflate and the payload is over
 * compression_threshold — one compressed frame per server window made
 * with the loop's shared deflater reset after each message
 * (server_no_context_takeover), so every such receiver gets the same bytes.
 * Rooms may carry a delivery filter (wsgw_room_t.filter) that a feature
 * sets to hold back or reorder what reaches a member.
 */
#include <fnmatch.h>
#include <string.h>

#include "json_scan.h"
#include "log.h"
#include "server_int.h"
#include "ws_frame.h"
#include "ws_status.h"
#include "ws_utf8.h"

#define PMD_WINDOWS 8   /* server_max_window_bits 8..15 */

typedef struct emit_msg {
    wsgw_server_t *s;
    const envelope_delivery_t *d;           /* NULL for native messages (raw bytes) */
    wsgw_block_t  *plain;                   /* the delivery envelope, or the raw message */
    size_t         hdr_len;                 /* header bytes in plain */
    wsgw_block_t  *coded[CORE_CODECS_MAX];  /* the delivery in a codec's own format */
    uint8_t        coded_failed[CORE_CODECS_MAX];
    wsgw_block_t  *deflated[PMD_WINDOWS];   /* plain, compressed per window */
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
    for (int i = 0; i < CORE_CODECS_MAX; i++) if (m->coded[i]) wsgw_block_unref(m->coded[i]);
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

/* A codec with a format of its own (Iris) gets deliveries framed by it,
 * once per fan-out; native messages go to it as they are.  NULL: this
 * delivery cannot be said in that format. */
static wsgw_block_t *emit_block_coded(emit_msg_t *m, const wsgw_conn_t *c, const core_codec_t *k)
{
    if (!m->d) return m->plain;
    int i = c->codec;
    if (m->coded[i] || m->coded_failed[i]) return m->coded[i];
    ws_buf_t *tmp = &m->s->frame_buf;
    tmp->len = 0;
    if (!k->frame(k->ud, m->d, tmp) || tmp->len == 0) {
        m->coded_failed[i] = 1;
        return NULL;
    }
    size_t hdr = ws_frame_header_size(tmp->len, 0);
    m->coded[i] = wsgw_block_new(hdr + tmp->len);
    ws_frame_write_header(m->coded[i]->data, 1, 0, (ws_opcode_t)m->opcode, tmp->len, NULL);
    memcpy(m->coded[i]->data + hdr, tmp->data, tmp->len);
    return m->coded[i];
}

/* The block this receiver gets: in its codec's format, compressed once per
 * window size, or plain. */
static wsgw_block_t *emit_block_for(emit_msg_t *m, const wsgw_conn_t *c)
{
    const core_codec_t *k = conn_codec(c);
    if (k->frame) return emit_block_coded(m, c, k);
    size_t plen = m->plain->len - m->hdr_len;
    if (!k->compress || !c->pmd || plen < m->s->cfg->compression_threshold) return m->plain;
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
            if (c == skip) continue;
            if (r->filter && !r->filter(r->filter_ud, r, c, m->d)) continue;
            n += deliver(m, c);
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

int core_deliver(wsgw_server_t *s, const envelope_delivery_t *d, wsgw_target_kind_t kind,
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

int emit_raw(wsgw_server_t *s, wsgw_block_t *frame, size_t hdr_len, int opcode,
             wsgw_target_kind_t kind, const char *name, size_t name_len,
             wsgw_conn_t *self, const wsgw_conn_t *skip)
{
    emit_msg_t m;
    emit_msg_init(&m, s, frame, hdr_len, opcode);
    int n = emit_route(s, self, skip, kind, name, name_len, &m);
    emit_msg_done(&m);
    return n;
}

int core_emit(wsgw_server_t *s, wsgw_conn_t *sender, wsgw_target_kind_t kind,
              const char *name, size_t name_len, const uint8_t *event, size_t event_len,
              const uint8_t *data, size_t data_len, core_answer_t *done)
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
    int n = core_deliver(s, &d, kind, name, name_len, sender,
                         kind == WSGW_TO_BROADCAST ? sender : NULL);
    CORE_EACH_HOOK(s, h)
        if (h->publish) h->publish(h->ud, sender, kind, name, name_len, &d, done);
    return n;
}

int core_emit_event(wsgw_conn_t *c, const envelope_delivery_t *d, core_answer_t *done)
{
    int taken = 0;
    CORE_EACH_HOOK(c->srv, h)
        if (h->publish_event && h->publish_event(h->ud, c, d, done)) taken = 1;
    return taken;
}

/* Queues a small control envelope (ack, error, welcome) to one connection. */
void core_reply(wsgw_conn_t *c, wsgw_block_t *b)
{
    conn_queue_block(c, b);
    wsgw_block_unref(b);
}

wsgw_block_t *core_reply_block(const wsgw_server_t *s, size_t len, uint8_t **payload)
{
    size_t hdr;
    wsgw_block_t *b = frame_alloc(data_opcode(s), len, &hdr);
    *payload = b->data + hdr;
    return b;
}

