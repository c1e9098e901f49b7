/* api.c — the connection half of the public API (wsgw.h): emits, rooms,
 * callbacks and accessors.  The server half is in server.c; wsgw_conn_user
 * belongs to the auth feature (gateway/wsgw_server.c). */
#include <string.h>

#include "json_scan.h"
#include "server_int.h"
#include "ws_frame.h"
#include "ws_status.h"
#include "ws_utf8.h"

/* A block holding one unmasked frame of `payload_len` bytes. */
static wsgw_block_t *frame_alloc(int opcode, size_t payload_len, size_t *hdr_len)
{
    *hdr_len = ws_frame_header_size(payload_len, 0);
    wsgw_block_t *b = wsgw_block_new(*hdr_len + payload_len);
    ws_frame_write_header(b->data, 1, 0, (ws_opcode_t)opcode, payload_len, NULL);
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
    return core_emit(c->srv, c, kind, name, name ? strlen(name) : 0,
                     (const uint8_t *)event, strlen(event), (const uint8_t *)data, len, NULL);
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
    return core_emit(s, NULL, kind, name, name ? strlen(name) : 0,
                     (const uint8_t *)event, strlen(event), (const uint8_t *)data, len, NULL);
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
    return emit_raw(c->srv, b, hdr, op, kind, name, name ? strlen(name) : 0, c,
                    kind == WSGW_TO_BROADCAST ? c : NULL);
}

/* ---- public API: rooms, lifecycle, accessors -------------------------------------- */

int wsgw_join(wsgw_conn_t *c, const char *room)
{
    if (!c || !room) return WSGW_E_ARG;
    size_t n = strlen(room);
    if (!envelope_room_valid((const uint8_t *)room, n, (size_t)c->srv->cfg->max_room_name)) return WSGW_E_ARG;
    if (c->state != CONN_OPEN) return WSGW_E_CLOSED;
    int rc = core_join(c, room, n, NULL);
    return rc < 0 ? WSGW_E_LIMIT : rc;
}

int wsgw_leave(wsgw_conn_t *c, const char *room)
{
    if (!c || !room) return WSGW_E_ARG;
    return core_leave(c, room, strlen(room));
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
const char *wsgw_conn_subprotocol(const wsgw_conn_t *c) { return conn_subprotocol(c); }
void  wsgw_conn_set_data(wsgw_conn_t *c, void *data) { conn_app(c)->user_data = data; }
void *wsgw_conn_data(const wsgw_conn_t *c) { return c->app ? c->app->user_data : NULL; }
wsgw_server_t *wsgw_conn_server(const wsgw_conn_t *c) { return c->srv; }
