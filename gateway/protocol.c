/* protocol.c — the envelope protocol (docs/protocol.md) on one connection:
 * decode a text frame, check it against the configured permissions, do
 * the join / leave / emit, and answer with an ack or an error envelope.
 *
 * Bad input never closes the connection by itself: each bad envelope gets
 * an error envelope and a counter.  A client that keeps sending them past
 * error_rate_limit per second (with error_rate_burst of slack) is closed
 * with 1008, because at that rate it is broken or hostile.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "envelope.h"
#include "iris.h"
#include "log.h"
#include "server_int.h"
#include "ws_status.h"
#include "ws_utf8.h"

void protocol_welcome(wsgw_conn_t *c)
{
    json_span_t id = { (const uint8_t *)c->id, c->id_len };
    uint8_t *p;
    uint64_t max = c->srv->cfg->max_message_size;
    wsgw_block_t *b = emit_reply_block(c->srv, envelope_welcome_size(id, max), &p);
    envelope_welcome_write(id, max, p);
    emit_reply(c, b);
}

void protocol_ack(wsgw_conn_t *c, json_span_t id)
{
    if (!id.len) return;
    uint8_t *p;
    wsgw_block_t *b = emit_reply_block(c->srv, envelope_ack_size(id), &p);
    envelope_ack_write(id, p);
    emit_reply(c, b);
}

/* A token bucket over bad messages (envelopes or Iris frames): past
 * error_rate_limit the client is closed with 1008. */
static void protocol_spend_error_budget(wsgw_conn_t *c)
{
    wsgw_server_t *s = c->srv;
    const wsgw_config_t *cfg = s->cfg;
    if (cfg->error_rate_limit <= 0 ||
        tbucket_take(&c->err_bucket, cfg->error_rate_limit, cfg->error_rate_burst, wsgw_now_ms(s), 1))
        return;
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
    wsgw_block_t *b = emit_reply_block(s, envelope_error_size(id, code, message), &p);
    envelope_error_write(id, code, message, p);
    emit_reply(c, b);
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

/* The client permissions, one place for both codecs (envelopes and Iris):
 * a join needs join_rooms and the token's rooms claim; an emit needs the
 * target kind in emit_targets and in the token's emit claim, and a room
 * target needs membership.  Emits without a target (to backends) need
 * neither. */
static int protocol_may_join(const wsgw_conn_t *c, const char *room)
{
    return room_permitted(c->srv->cfg, room) && auth_may_join(c, room);
}

static envelope_code_t protocol_may_emit(const wsgw_conn_t *c, wsgw_target_kind_t kind,
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
    if (!(c->srv->cfg->emit_targets & need & c->claim_emit)) return ENVELOPE_E_FORBIDDEN;
    if (kind == WSGW_TO_ROOM && !rooms_is_member(&c->member, name, name_len)) return ENVELOPE_E_NOT_JOINED;
    return ENVELOPE_OK;
}

/* Hands an event to the on(event) handlers set through the C API; returns
 * 1 when at least one took it.  A handler may close the connection. */
static int protocol_dispatch(wsgw_conn_t *c, const char *event, const char *data, size_t len)
{
    int handled = 0;
    for (uint16_t i = 0; c->app && i < c->app->n_handlers && c->state == CONN_OPEN; i++) {
        if (strcmp(c->app->handlers[i].event, event) != 0) continue;
        c->app->handlers[i].cb(c, event, data, len, c->app->handlers[i].ud);
        handled = 1;
    }
    return handled;
}

static void protocol_join(wsgw_conn_t *c, const envelope_msg_t *m)
{
    const wsgw_config_t *cfg = c->srv->cfg;
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
    int rc = rooms_join(&c->srv->rooms, &c->member, (const char *)m->room.p, m->room.len,
                        (size_t)cfg->max_rooms_per_conn);
    if (rc < 0) {
        protocol_error(c, m->id, ENVELOPE_E_TOO_MANY_ROOMS, "max_rooms_per_conn reached");
        return;
    }
    /* A new room here means a new Redis subscription: ack once it is
     * confirmed, so "joined" means every node's messages will arrive. */
    if (rc == 1 && cluster_after_sync(c, m->id, 0)) return;
    protocol_ack(c, m->id);
}

static void protocol_leave(wsgw_conn_t *c, const envelope_msg_t *m)
{
    if (!rooms_leave(&c->srv->rooms, &c->member, (const char *)m->room.p, m->room.len)) {
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
    int handled = protocol_dispatch(c, event, (const char *)m->data.p, m->data.len);
    if (c->state != CONN_OPEN) return;
    int later = 0;
    if (cluster_publish_event(c, m, handled, &later)) {
        if (!later) protocol_ack(c, m->id);              /* a handler took it */
        return;                                          /* else answered when Redis replies */
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
    int deferred = 0;
    emit_event(c->srv, c, kind, (const char *)m->to_name.p, m->to_name.len,
               m->event.p, m->event.len, m->data.p, m->data.len, m->id, &deferred);
    if (!deferred && c->state == CONN_OPEN) protocol_ack(c, m->id);
}

void protocol_on_text(wsgw_conn_t *c, const uint8_t *data, size_t len)
{
    const wsgw_config_t *cfg = c->srv->cfg;
    envelope_limits_t lim = { .max_room_name = (size_t)cfg->max_room_name,
                              .max_event_name = (size_t)cfg->max_event_name };
    envelope_msg_t m;
    envelope_code_t code = envelope_decode(data, len, &lim, &m);
    if (code != ENVELOPE_OK) {
        char why[160];
        protocol_error(c, m.id, code, envelope_explain(code, &m, why, sizeof why));
        return;
    }
    switch (m.op) {
    case ENVELOPE_OP_JOIN:  protocol_join(c, &m);  break;
    case ENVELOPE_OP_LEAVE: protocol_leave(c, &m); break;
    case ENVELOPE_OP_EMIT:  protocol_emit(c, &m);  break;
    case ENVELOPE_OP_AUTH:  auth_refresh(c, &m);   break;
    default: protocol_error(c, m.id, ENVELOPE_E_UNKNOWN_OP, "unknown op"); break;
    }
}

void protocol_on_binary(wsgw_conn_t *c, const uint8_t *data, size_t len)
{
    (void)data; (void)len;
    json_span_t none = { NULL, 0 };
    protocol_error(c, none, ENVELOPE_E_NOT_OBJECT,
                   "binary frames carry no envelope: send envelopes as text frames");
}

/* ---- Iris v10 clients (iris.h, docs/protocol.md "Iris v10 clients") -------------------- */

/* Iris has no error replies: what an envelope client would be answered
 * with an error envelope (forbidden, not_joined, too_many_rooms) is dropped,
 * counted under the same code, logged, given to on_error, and spends the
 * same error budget. */
static void iris_deny(wsgw_conn_t *c, envelope_code_t code, const char *why)
{
    c->srv->metrics.envelope_errors[code]++;
    wsgw_log(WSGW_LOG_DEBUG, "iris_denied", "id=%s code=%s reason=\"%s\"", c->id, envelope_code_str(code), why);
    conn_report_error(c, why);
    protocol_spend_error_budget(c);
}

/* Iris' server code joined rooms in OnConnection; iris_rooms says which,
 * within the same permissions as an envelope client's join. */
void protocol_iris_open(wsgw_conn_t *c)
{
    const wsgw_config_t *cfg = c->srv->cfg;
    for (size_t i = 0; i < cfg->iris_rooms.n && c->state == CONN_OPEN; i++) {
        const char *room = cfg->iris_rooms.v[i];
        if (!protocol_may_join(c, room)) {
            iris_deny(c, ENVELOPE_E_FORBIDDEN, "joining this iris_rooms room is not allowed");
            continue;
        }
        if (rooms_join(&c->srv->rooms, &c->member, room, strlen(room), (size_t)cfg->max_rooms_per_conn) < 0)
            iris_deny(c, ENVELOPE_E_TOO_MANY_ROOMS, "max_rooms_per_conn reached");
    }
}

/* Iris had no error replies: a refused frame is counted, logged, and given
 * to on_error — the connection stays open, as it did in Iris (minus the
 * crash on malformed frames), until it spends the error budget. */
static void iris_refuse(wsgw_conn_t *c, int err)
{
    c->srv->metrics.iris_errors++;
    wsgw_log(WSGW_LOG_DEBUG, "iris_error", "id=%s reason=\"%s\"", c->id, iris_err_str(err));
    conn_report_error(c, iris_err_str(err));
    protocol_spend_error_budget(c);
}

/* The configured iris_emit_to target, checked as an envelope emit to it is. */
static void iris_emit(wsgw_conn_t *c, json_span_t event, const ws_buf_t *json)
{
    wsgw_server_t *s = c->srv;
    size_t name_len = s->iris_name ? strlen(s->iris_name) : 0;
    envelope_code_t code = protocol_may_emit(c, s->iris_kind, s->iris_name, name_len);
    if (code != ENVELOPE_OK) {
        iris_deny(c, code, code == ENVELOPE_E_FORBIDDEN ? "iris_emit_to is not an allowed target for this client"
                                                        : "not a member of the iris_emit_to room");
        return;
    }
    json_span_t none = { NULL, 0 };
    emit_event(s, c, s->iris_kind, s->iris_name, name_len, event.p, event.len, json->data, json->len, none, NULL);
}

/* A typed Iris message goes to the server's on(event) handlers, as in Iris;
 * when none takes it, to the configured iris_emit_to target (and to
 * backends per backend_events).  Clients of both codecs receive it, each
 * in its own format. */
void protocol_iris_on_frame(wsgw_conn_t *c, const uint8_t *data, size_t len)
{
    wsgw_server_t *s = c->srv;
    iris_msg_t im;
    int rc = iris_decode(data, len, &im);
    if (rc != IRIS_OK) { iris_refuse(c, rc); return; }
    if (im.native) {                 /* native messages need a server handler (wsgw_on_message) */
        iris_refuse(c, IRIS_E_NO_EVENT);
        return;
    }
    size_t max_event = (size_t)s->cfg->max_event_name;
    if (max_event > ENVELOPE_EVENT_NAME_MAX) max_event = ENVELOPE_EVENT_NAME_MAX;
    if (!ws_utf8_is_valid(im.event.p, im.event.len) || !envelope_event_valid(im.event.p, im.event.len, max_event)) {
        iris_refuse(c, IRIS_E_EVENT);
        return;
    }
    ws_buf_t json = {0};
    rc = iris_payload_to_json(&im, &json);
    if (rc != IRIS_OK) { iris_refuse(c, rc); ws_buf_free(&json); return; }
    char event[ENVELOPE_EVENT_NAME_MAX + 1];
    memcpy(event, im.event.p, im.event.len);
    event[im.event.len] = '\0';
    int handled = protocol_dispatch(c, event, (const char *)json.data, json.len);
    if (!handled && c->state == CONN_OPEN) {
        if (s->iris_kind == WSGW_TO_SELF) {              /* "backend" */
            envelope_msg_t m = { .op = ENVELOPE_OP_EMIT, .event = im.event,
                                 .data = { json.data, json.len } };
            cluster_publish_event(c, &m, 0, NULL);     /* Iris has no answers */
        } else {
            iris_emit(c, im.event, &json);
        }
    }
    ws_buf_free(&json);
}
