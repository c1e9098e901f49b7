/* iris_codec.c — see iris_codec.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "envelope.h"
#include "iris.h"
#include "iris_codec.h"
#include "log.h"
#include "protocol.h"
#include "server_int.h"
#include "ws_utf8.h"

typedef struct iris_feature {
    wsgw_server_t     *s;
    wsgw_target_kind_t kind;       /* iris_emit_to, parsed; SELF means "backend" */
    const char        *name;       /* room name for WSGW_TO_ROOM */
    ws_buf_t           js;         /* iris_client_js, loaded at start */
    core_codec_t       codec;
} iris_feature_t;

/* iris_emit_to parsed once; iris_client_js loaded once, so a missing file
 * stops start-up instead of answering 404 later. */
static int iris_init(iris_feature_t *f, char *err, size_t errlen)
{
    const char *to = f->s->cfg->iris_emit_to;
    if (!strcmp(to, "backend")) f->kind = WSGW_TO_SELF;
    else if (!strcmp(to, "all")) f->kind = WSGW_TO_ALL;
    else if (!strncmp(to, "room:", 5)) { f->kind = WSGW_TO_ROOM; f->name = to + 5; }
    else f->kind = WSGW_TO_BROADCAST;
    const char *path = f->s->cfg->iris_client_js;
    if (!path || !path[0]) return 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "iris_client_js %s: %s", path, strerror(errno));
        return -1;
    }
    uint8_t chunk[16384];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0 && f->js.len < (8u << 20))
        ws_buf_append(&f->js, chunk, n);
    fclose(fp);
    return 0;
}

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
 * within the same permissions as an envelope client's join.  Iris has no
 * welcome: nothing to hold. */
static int iris_open(void *ud, wsgw_conn_t *c)
{
    (void)ud;
    const wsgw_config_t *cfg = c->srv->cfg;
    for (size_t i = 0; i < cfg->iris_rooms.n && c->state == CONN_OPEN; i++) {
        const char *room = cfg->iris_rooms.v[i];
        if (!protocol_may_join(c, room)) {
            iris_deny(c, ENVELOPE_E_FORBIDDEN, "joining this iris_rooms room is not allowed");
            continue;
        }
        if (core_join(c, room, strlen(room), NULL) < 0)
            iris_deny(c, ENVELOPE_E_TOO_MANY_ROOMS, "max_rooms_per_conn reached");
    }
    return 0;
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
static void iris_emit(iris_feature_t *f, wsgw_conn_t *c, json_span_t event, const ws_buf_t *json)
{
    size_t name_len = f->name ? strlen(f->name) : 0;
    envelope_code_t code = protocol_may_emit(c, f->kind, f->name, name_len);
    if (code != ENVELOPE_OK) {
        iris_deny(c, code, code == ENVELOPE_E_FORBIDDEN ? "iris_emit_to is not an allowed target for this client"
                                                        : "not a member of the iris_emit_to room");
        return;
    }
    core_emit(f->s, c, f->kind, f->name, name_len, event.p, event.len, json->data, json->len, NULL);
}

/* A typed Iris message goes to the server's on(event) handlers, as in Iris;
 * when none takes it, to the configured iris_emit_to target (and to
 * backends per backend_events).  Clients of both codecs receive it, each
 * in its own format. */
static void iris_message(void *ud, wsgw_conn_t *c, const uint8_t *data, size_t len, int binary)
{
    iris_feature_t *f = ud;
    wsgw_server_t *s = f->s;
    (void)binary;                                        /* Iris ignored the opcode */
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
    int handled = core_dispatch_event(c, event, (const char *)json.data, json.len);
    if (!handled && c->state == CONN_OPEN) {
        if (f->kind == WSGW_TO_SELF) {                   /* "backend" */
            envelope_delivery_t d = {
                .event = im.event, .data = { json.data, json.len },
                .from = { (const uint8_t *)c->id, c->id_len }, .to = ENVELOPE_TO_BACKEND,
            };
            core_emit_event(c, &d, NULL);                /* Iris has no answers */
        } else {
            iris_emit(f, c, im.event, &json);
        }
    }
    ws_buf_free(&json);
}

static void iris_rate_limited(void *ud, wsgw_conn_t *c)
{
    (void)ud;
    conn_report_error(c, "rate limited");
}

/* A delivery in Iris' format (iris-websocket-message:); 0 when it cannot
 * be said in it (an event with ';', say). */
static int iris_frame(void *ud, const envelope_delivery_t *d, ws_buf_t *out)
{
    (void)ud;
    uint8_t *p = ws_buf_reserve(out, iris_encode_size(d->event, d->data));
    size_t n = iris_encode(d->event, d->data, p);
    out->len += n;
    return n != 0;
}

static int iris_http_get(void *ud, wsgw_conn_t *c, const ws_http_request_t *req, int head_only)
{
    iris_feature_t *f = ud;
    if (!f->js.len || req->path_len != 11 || memcmp(req->path, "/iris-ws.js", 11) != 0) return 0;
    core_http_send(c, "text/javascript; charset=utf-8", f->js.data, f->js.len, head_only);
    return 1;
}

static void iris_free(void *ud)
{
    iris_feature_t *f = ud;
    ws_buf_free(&f->js);
    ws_xfree(f);
}

int iris_codec_attach(wsgw_server_t *s, char *err, size_t errlen)
{
    iris_feature_t *f = ws_xcalloc(1, sizeof *f);
    f->s = s;
    core_hooks_t h = { .name = "iris", .ud = f, .http_get = iris_http_get, .free = iris_free };
    if (core_register(s, &h) != 0) {
        iris_free(f);
        snprintf(err, errlen, "iris: too many features");
        return -1;
    }
    f->codec = (core_codec_t){
        .name = "iris", .ud = f, .path = s->cfg->iris_path, .open = iris_open,
        .message = iris_message, .rate_limited = iris_rate_limited, .frame = iris_frame,
    };
    if (core_codec_register(s, &f->codec) < 0) {
        snprintf(err, errlen, "iris: too many codecs");
        return -1;
    }
    return iris_init(f, err, errlen);
}
