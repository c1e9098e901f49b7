/* protocol.c — see protocol.h. */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "envelope.h"
#include "log.h"
#include "protocol.h"
#include "server_int.h"
#include "ws_status.h"
#include "ws_utf8.h"

#define PROTOCOL_OPS_MAX 8

struct protocol {
    wsgw_server_t *s;
    struct {
        char           name[16];
        protocol_op_cb cb;
        void          *ud;
    } ops[PROTOCOL_OPS_MAX];
    size_t n_ops;
    core_codec_t codec;            /* registered on s: the `path` endpoint */
};

static void protocol_welcome(wsgw_conn_t *c)
{
    json_span_t id = { (const uint8_t *)c->id, c->id_len };
    uint8_t *p;
    uint64_t max = c->srv->cfg->max_message_size;
    wsgw_block_t *b = core_reply_block(c->srv, envelope_welcome_size(id, max), &p);
    envelope_welcome_write(id, max, p);
    core_reply(c, b);
}

void protocol_ack(wsgw_conn_t *c, json_span_t id)
{
    if (!id.len) return;
    uint8_t *p;
    wsgw_block_t *b = core_reply_block(c->srv, envelope_ack_size(id), &p);
    envelope_ack_write(id, p);
    core_reply(c, b);
}

void protocol_spend_error_budget(wsgw_conn_t *c)
{
    wsgw_server_t *s = c->srv;
    if (core_take_error_budget(c)) return;
    s->metrics.closes[CLOSE_ERROR_RATE]++;
    wsgw_log(WSGW_LOG_INFO, "error_rate_close", "id=%s remote=%s", c->id, conn_peer(c));
    conn_fail(c, WS_CLOSE_POLICY_VIOLATION, "too many invalid messages");
}

void protocol_error_not_yours(wsgw_conn_t *c, json_span_t id, envelope_code_t code, const char *message)
{
    wsgw_server_t *s = c->srv;
    s->metrics.envelope_errors[code]++;
    wsgw_log(WSGW_LOG_DEBUG, "envelope_error", "id=%s code=%s", c->id, envelope_code_str(code));
    uint8_t *p;
    wsgw_block_t *b = core_reply_block(s, envelope_error_size(id, code, message), &p);
    envelope_error_write(id, code, message, p);
    core_reply(c, b);
}

void protocol_error(wsgw_conn_t *c, json_span_t id, envelope_code_t code, const char *message)
{
    protocol_error_not_yours(c, id, code, message);
    protocol_spend_error_budget(c);
}

static int room_permitted(const wsgw_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->join_rooms.n; i++)
        if (fnmatch(cfg->join_rooms.v[i], name, 0) == 0) return 1;
    return 0;
}

int protocol_may_join(const wsgw_conn_t *c, const char *room)
{
    return room_permitted(c->srv->cfg, room) && auth_may_join(c, room);
}

envelope_code_t protocol_may_emit(const wsgw_conn_t *c, wsgw_target_kind_t kind,
                                         const char *name, size_t name_len)
{
    unsigned need;
    switch (kind) {
    case WSGW_TO_BROADCAST: need = WSGW_EMIT_BROADCAST; break;
    case WSGW_TO_ALL:       need = WSGW_EMIT_ALL;       break;
    case WSGW_TO_ROOM:      need = WSGW_EMIT_ROOM;      break;
    case WSGW_TO_CONN:      need = WSGW_EMIT_CONN;      break;
    default:                return ENVELOPE_OK;
    }
    if (!(c->srv->cfg->emit_targets & need & auth_emit_allowed(c))) return ENVELOPE_E_FORBIDDEN;
    if (kind == WSGW_TO_ROOM && !rooms_is_member(&c->member, name, name_len)) return ENVELOPE_E_NOT_JOINED;
    return ENVELOPE_OK;
}

/* The ack of an envelope whose answer a feature may defer (core.h):
 * arg is the envelope's id as written. */
static void ack_answered(wsgw_conn_t *c, int status, const uint8_t *arg, size_t len)
{
    (void)status;
    if (c) protocol_ack(c, (json_span_t){ arg, len });
}

/* A delivery's ack once the backplane answered: unavailable when the
 * publish never reached Redis (Redis' fault, not the client's). */
static void delivery_answered(wsgw_conn_t *c, int status, const uint8_t *arg, size_t len)
{
    if (!c) return;
    json_span_t id = { arg, len };
    if (status == CORE_DEFER_DROPPED)
        protocol_error_not_yours(c, id, ENVELOPE_E_UNAVAILABLE,
                                 "the backplane is unavailable: delivered on this node only");
    else
        protocol_ack(c, id);
}

/* An event's answer once the backplane answered: arg is the handled flag
 * (an on(event) handler took it) and the id. */
static void event_answered(wsgw_conn_t *c, int status, const uint8_t *arg, size_t len)
{
    if (!c) return;
    int handled = arg[0];
    json_span_t id = { arg + 1, len - 1 };
    if (status == CORE_DEFER_DROPPED && !handled)
        protocol_error_not_yours(c, id, ENVELOPE_E_UNAVAILABLE,
                                 "the backplane is unavailable: no backend received this event");
    else if (status == CORE_DEFER_NO_RECEIVERS && !handled)   /* a backend restarting, say */
        protocol_error_not_yours(c, id, ENVELOPE_E_NO_BACKEND, "no backend is subscribed to events");
    else
        protocol_ack(c, id);
}

static void protocol_join(wsgw_conn_t *c, const envelope_msg_t *m)
{
    char room[ENVELOPE_ROOM_NAME_MAX + 1];   /* the decoder applies max_room_name, at most this */
    if (m->room.len >= sizeof room) {        /* never match a pattern against a cut name */
        protocol_error(c, m->id, ENVELOPE_E_BAD_ROOM, "room name too long");
        return;
    }
    memcpy(room, m->room.p, m->room.len);
    room[m->room.len] = '\0';
    if (!protocol_may_join(c, room)) {
        protocol_error(c, m->id, ENVELOPE_E_FORBIDDEN, "joining this room is not allowed");
        return;
    }
    /* Features may hold the ack (member_joined): with Redis until the
     * room's subscription is confirmed, so "joined" means every node's
     * messages will arrive. */
    core_answer_t ack = { .c = c, .cb = ack_answered, .arg = m->id.p, .len = m->id.len };
    int rc = core_join(c, (const char *)m->room.p, m->room.len, m->id.len ? &ack : NULL);
    if (rc < 0) {
        protocol_error(c, m->id, ENVELOPE_E_TOO_MANY_ROOMS, "max_rooms_per_conn reached");
        return;
    }
    core_answer_finish(&ack, CORE_DEFER_OK);
}

static void protocol_leave(wsgw_conn_t *c, const envelope_msg_t *m)
{
    if (!core_leave(c, (const char *)m->room.p, m->room.len)) {
        protocol_error(c, m->id, ENVELOPE_E_NOT_JOINED, "not a member of this room");
        return;
    }
    protocol_ack(c, m->id);
}

/* Events without `to` go to this process's on(event) handlers and, with
 * Redis, to backends on PREFIX:events.  When nothing received them, say so
 * (no_backend) rather than ack a message that was dropped. */
static void protocol_emit_backend(wsgw_conn_t *c, const envelope_msg_t *m)
{
    char event[ENVELOPE_EVENT_NAME_MAX + 1];
    memcpy(event, m->event.p, m->event.len);
    event[m->event.len] = '\0';
    int handled = core_dispatch_event(c, event, (const char *)m->data.p, m->data.len);
    if (c->state != CONN_OPEN) return;
    envelope_delivery_t d = {
        .event = m->event, .data = m->data,
        .from = { (const uint8_t *)c->id, c->id_len },
        .to = ENVELOPE_TO_BACKEND,
    };
    /* The backplane's reply says whether a backend got it: an ack for an
     * id, and no_backend or unavailable when no handler took it, with or
     * without an id (an accepted message is never dropped silently).
     * Handled and without an id, there is nothing to say. */
    uint8_t arg[1 + ENVELOPE_ID_STRING_MAX + 3];
    arg[0] = (uint8_t)handled;
    if (m->id.len) memcpy(arg + 1, m->id.p, m->id.len);  /* the decoder bounds the id: it fits */
    core_answer_t answer = { .c = c, .cb = event_answered, .arg = arg, .len = 1 + m->id.len };
    int want = m->id.len || !handled;
    if (core_emit_event(c, &d, want ? &answer : NULL)) {
        if (want) core_answer_finish(&answer, CORE_DEFER_OK);   /* when the backplane replies */
        return;
    }
    if (!handled) {
        /* Not the client's fault (no backend yet, or backend_events off):
         * it costs no error budget. */
        protocol_error_not_yours(c, m->id, ENVELOPE_E_NO_BACKEND,
                                 "no handler for this event and no backend: give \"to\"");
        return;
    }
    protocol_ack(c, m->id);
}

static void protocol_emit(wsgw_conn_t *c, const envelope_msg_t *m)
{
    wsgw_target_kind_t kind;
    switch (m->to) {
    case ENVELOPE_TO_BACKEND:   protocol_emit_backend(c, m); return;
    case ENVELOPE_TO_BROADCAST: kind = WSGW_TO_BROADCAST; break;
    case ENVELOPE_TO_ALL:       kind = WSGW_TO_ALL;       break;
    case ENVELOPE_TO_ROOM:      kind = WSGW_TO_ROOM;      break;
    default:                    kind = WSGW_TO_CONN;      break;
    }
    envelope_code_t code = protocol_may_emit(c, kind, (const char *)m->to_name.p, m->to_name.len);
    if (code == ENVELOPE_E_FORBIDDEN) {
        protocol_error(c, m->id, code, "this target is not allowed for clients");
        return;
    }
    if (code != ENVELOPE_OK) {
        protocol_error(c, m->id, code, "join the room before emitting to it");
        return;
    }
    /* A feature may hold the ack until the publish is known (cluster). */
    core_answer_t ack = { .c = c, .cb = delivery_answered, .arg = m->id.p, .len = m->id.len };
    core_emit(c->srv, c, kind, (const char *)m->to_name.p, m->to_name.len,
              m->event.p, m->event.len, m->data.p, m->data.len, m->id.len ? &ack : NULL);
    if (m->id.len) core_answer_finish(&ack, CORE_DEFER_OK);
}

static int op_is(json_span_t name, const char *op)
{
    return name.len == strlen(op) && memcmp(name.p, op, name.len) == 0;
}

static void protocol_on_text(protocol_t *p, wsgw_conn_t *c, const uint8_t *data, size_t len)
{
    const wsgw_config_t *cfg = c->srv->cfg;
    envelope_limits_t lim = { .max_room_name = (size_t)cfg->max_room_name,
                              .max_event_name = (size_t)cfg->max_event_name };
    envelope_msg_t m;
    envelope_code_t code = envelope_decode(data, len, &lim, &m);
    if (code == ENVELOPE_OK || code == ENVELOPE_E_UNKNOWN_OP) {
        /* Ops the decoder leaves to a feature (auth), or does not know. */
        for (size_t i = 0; i < p->n_ops; i++) {
            if (!op_is(m.op_name, p->ops[i].name)) continue;
            if (code == ENVELOPE_OK && m.op != ENVELOPE_OP_AUTH) break;   /* join, leave, emit: ours */
            p->ops[i].cb(p->ops[i].ud, c, &m, data, len);
            return;
        }
    }
    if (code != ENVELOPE_OK) {
        char why[160];
        protocol_error(c, m.id, code, envelope_explain(code, &m, why, sizeof why));
        return;
    }
    switch (m.op) {
    case ENVELOPE_OP_JOIN:  protocol_join(c, &m);  break;
    case ENVELOPE_OP_LEAVE: protocol_leave(c, &m); break;
    case ENVELOPE_OP_EMIT:  protocol_emit(c, &m);  break;
    default: protocol_error(c, m.id, ENVELOPE_E_UNKNOWN_OP, "unknown op"); break;
    }
}

/* ---- the codec ------------------------------------------------------------------- */

static void codec_message(void *ud, wsgw_conn_t *c, const uint8_t *data, size_t len, int binary)
{
    if (!binary) {
        protocol_on_text(ud, c, data, len);
        return;
    }
    json_span_t none = { NULL, 0 };
    protocol_error(c, none, ENVELOPE_E_NOT_OBJECT,
                   "binary frames carry no envelope: send envelopes as text frames");
}

static void codec_rate_limited(void *ud, wsgw_conn_t *c)
{
    (void)ud;
    json_span_t none = { NULL, 0 };
    protocol_error(c, none, ENVELOPE_E_RATE_LIMITED, "message rate over the limit: message dropped");
}

/* The welcome, unless the program took the messages (native): the first
 * answer, which features may hold (first_answer hooks). */
static int codec_open(void *ud, wsgw_conn_t *c)
{
    (void)ud;
    if (core_is_native(c)) return 0;
    protocol_welcome(c);
    return 1;
}

static void protocol_free(void *ud)
{
    ws_xfree(ud);
}

protocol_t *protocol_attach(wsgw_server_t *s)
{
    protocol_t *p = ws_xcalloc(1, sizeof *p);
    p->s = s;
    p->codec = (core_codec_t){
        .name = "envelope", .ud = p, .open = codec_open, .message = codec_message,
        .rate_limited = codec_rate_limited, .compress = 1,
    };
    core_hooks_t h = { .name = "protocol", .ud = p, .free = protocol_free };
    if (core_register(s, &h) != 0 || core_codec_register(s, &p->codec) != 0) {
        ws_xfree(p);
        return NULL;
    }
    return p;
}

int protocol_op_register(protocol_t *p, const char *op, protocol_op_cb cb, void *ud)
{
    if (p->n_ops == PROTOCOL_OPS_MAX || strlen(op) >= sizeof p->ops[0].name) return -1;
    strcpy(p->ops[p->n_ops].name, op);
    p->ops[p->n_ops].cb = cb;
    p->ops[p->n_ops].ud = ud;
    p->n_ops++;
    return 0;
}

