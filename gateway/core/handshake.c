/* handshake.c — from the first request byte to an open WebSocket (or a
 * plain HTTP answer): limits, routing by path, RFC 6455 validation,
 * CheckOrigin, IDGenerator, subprotocol and permessage-deflate choice.
 *
 * The request bytes are kept in a per-connection buffer only until the
 * header block is complete (bounded by the HTTP limits); bytes that follow
 * it in the same read (a client may send its first frames at once) are fed
 * to the WebSocket reader right after the upgrade.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "envelope.h"
#include "log.h"
#include "randid.h"
#include "server_int.h"
#include "ws_status.h"

/* Bodies from the handshake_error hook: a page, not a document. */
#define HANDSHAKE_ERROR_BODY_MAX 1024

/* Answers with an HTTP error and closes after it is written. */
void handshake_refuse(wsgw_conn_t *c, int status, const char *why, wsgw_hs_fail_t kind)
{
    wsgw_server_t *s = c->srv;
    char body[HANDSHAKE_ERROR_BODY_MAX + 1];
    const char *text = why;
    if (s->hs_error) {                        /* Iris' Config.Error */
        size_t len = s->hs_error(c, status, why, body, sizeof body - 1, s->hs_error_ud);
        if (len > 0 && len < sizeof body && !memchr(body, '\0', len)) {
            body[len] = '\0';
            text = body;
        } else if (len > 0) {
            wsgw_log(WSGW_LOG_WARN, "handshake_error_hook", "reason=\"body too long or has NUL: default kept\"");
        }
    }
    char resp[HANDSHAKE_ERROR_BODY_MAX + 512];
    int n = ws_http_error_response(resp, sizeof resp, status, text);
    s->metrics.handshake_failures[kind]++;
    wsgw_log(WSGW_LOG_INFO, "handshake_refused", "remote=%s status=%d reason=\"%s\"",
             conn_peer(c), status, why);
    conn_start_http(c);
    if (n > 0) conn_queue_bytes(c, resp, (size_t)n);
    else conn_close_now(c, 0);
}

/* ---- connection ids ----------------------------------------------------------- */

/* The envelope's conn:<id> rules, and room for the NUL in a 128-byte buffer. */
int wsgw_id_valid(const char *id, size_t len)
{
    return len <= 127 && envelope_conn_id_valid((const uint8_t *)id, len);
}

static size_t id_from_header(wsgw_conn_t *c, char *out, size_t cap)
{
    const char *v = wsgw_conn_header(c, c->srv->cfg->id_header);
    if (!v) return 0;
    size_t n = strlen(v);
    if (n >= cap || !wsgw_id_valid(v, n)) return 0;
    memcpy(out, v, n + 1);
    return n;
}

/* ---- CheckOrigin ---------------------------------------------------------------- */

/* Default CheckOrigin: no Origin (not a browser) passes; "*" passes all;
 * otherwise the Origin must match an allowed_origins glob, or — with an
 * empty list — name the same host[:port] as the Host header. */
static int origin_allowed(const wsgw_server_t *s, const char *origin, size_t olen,
                          const char *host, size_t hlen)
{
    if (!origin) return 1;
    char o[512];
    if (olen >= sizeof o) return 0;
    memcpy(o, origin, olen);
    o[olen] = '\0';
    const wsgw_strlist_t *allowed = &s->cfg->allowed_origins;
    if (allowed->n == 0) {
        const char *p = strstr(o, "://");
        if (!p) return 0;
        p += 3;
        return strlen(p) == hlen && strncasecmp(p, host, hlen) == 0;
    }
    for (size_t i = 0; i < allowed->n; i++) {
        if (strcmp(allowed->v[i], "*") == 0) return 1;
        if (fnmatch(allowed->v[i], o, FNM_CASEFOLD) == 0) return 1;
    }
    return 0;
}

/* ---- the upgrade ----------------------------------------------------------------- */

static void negotiate_compression(wsgw_conn_t *c, const ws_http_request_t *req)
{
    wsgw_server_t *s = c->srv;
    if (!s->cfg->enable_compression) return;
    for (size_t i = 0; i < req->num_headers; i++) {
        const ws_http_header_t *h = &req->headers[i];
        if (h->name_len != 24 || strncasecmp(h->name, "Sec-WebSocket-Extensions", 24) != 0) continue;
        if (ws_pmd_negotiate(h->value, h->value_len, &s->pmd_policy, &c->pmd_params) == 1) {
            c->pmd = 1;
            return;
        }
    }
}

/* The request is only valid during the handshake callbacks; the connection
 * may already be closed (and its handshake state freed) by one of them. */
static void set_no_req(wsgw_conn_t *c)
{
    if (c->hs) c->hs->req = NULL;
}

static void handshake_upgrade(wsgw_conn_t *c, ws_http_request_t *req, size_t hdr_len)
{
    wsgw_server_t *s = c->srv;
    const wsgw_config_t *cfg = s->cfg;
    /* The codec is chosen by the path: the first one registered serves
     * `path`, the others their own (iris_path). */
    size_t plen = strlen(cfg->path);
    int codec = -1;
    for (size_t i = 1; i < s->n_codecs && codec < 0; i++) {
        const char *kp = s->codecs[i]->path;
        size_t klen = kp ? strlen(kp) : 0;
        if (klen && req->path_len == klen && memcmp(req->path, kp, klen) == 0) codec = (int)i;
    }
    if (codec < 0 && s->n_codecs && req->path_len == plen && memcmp(req->path, cfg->path, plen) == 0)
        codec = 0;
    if (codec < 0) {
        handshake_refuse(c, 404, "no WebSocket endpoint at this path", HS_FAIL_NOT_FOUND);
        return;
    }
    c->codec = (uint8_t)codec;
    ws_handshake_t hs;
    int rc = ws_handshake_validate(req, &hs);
    if (rc != WS_OK) {
        int status = ws_err_http_status(rc);
        handshake_refuse(c, status ? status : 400, ws_err_str(rc),
                         status == 426 ? HS_FAIL_BAD_VERSION : HS_FAIL_BAD_REQUEST);
        return;
    }
    if (s->draining) {
        handshake_refuse(c, 503, "server is shutting down", HS_FAIL_CAPACITY);
        return;
    }
    if (s->n_open >= (size_t)cfg->max_connections) {
        handshake_refuse(c, 503, "connection limit reached", HS_FAIL_CAPACITY);
        return;
    }
    c->hs->req = req;
    int origin_ok = s->check_origin
        ? s->check_origin(c, hs.origin, hs.origin_len, s->check_origin_ud)
        : origin_allowed(s, hs.origin, hs.origin_len, hs.host, hs.host_len);
    if (!origin_ok) {
        set_no_req(c);
        handshake_refuse(c, 403, "origin not allowed", HS_FAIL_ORIGIN);
        return;
    }
    int hs_flags = hooks_handshake(c, req);
    if (hs_flags < 0) {                           /* refused: 401 already queued */
        set_no_req(c);
        return;
    }
    c->offer_wsgw = (hs_flags & CORE_HS_OFFER_WSGW) != 0;
    char id[128];
    size_t id_len;
    if (s->id_gen) id_len = s->id_gen(c, id, sizeof id, s->id_gen_ud);
    else if (cfg->id_generator == WSGW_ID_HEADER) id_len = id_from_header(c, id, sizeof id);
    else id_len = randid_make(id, sizeof id, 16);   /* 128 bits: 22 characters */
    if (id_len == 0 || !wsgw_id_valid(id, id_len) || idmap_get(&s->by_id, id, id_len)) {
        set_no_req(c);
        handshake_refuse(c, 403, id_len ? "connection id already in use or invalid"
                                        : "no connection id", HS_FAIL_ID);
        return;
    }
    c->id = id_len < sizeof c->id_small ? c->id_small : ws_xmalloc(id_len + 1);
    memcpy(c->id, id, id_len);
    c->id[id_len] = '\0';
    c->id_len = (uint8_t)id_len;

    int proto = ws_handshake_select_subprotocol(req, (const char *const *)cfg->subprotocols.v,
                                                cfg->subprotocols.n);
    c->subprotocol = proto >= 0 && proto < SUBPROTO_WSGW - 1 ? (uint8_t)(proto + 1) : SUBPROTO_NONE;
    if (!c->subprotocol && c->offer_wsgw) {
        /* A browser that offered protocols fails the handshake unless one
         * is selected, and the bearer entry must not be echoed: the
         * convention is to offer "wsgw" beside it, which is selected. */
        static const char *const wsgw_proto[] = { "wsgw" };
        if (ws_handshake_select_subprotocol(req, wsgw_proto, 1) == 0) c->subprotocol = SUBPROTO_WSGW;
    }
    negotiate_compression(c, req);
    char ext[160];
    if (c->pmd && ws_pmd_format_response(&c->pmd_params, ext, sizeof ext) < 0) c->pmd = 0;

    char resp[512];
    int n = ws_handshake_response(resp, sizeof resp, hs.key, hs.key_len, conn_subprotocol(c),
                                  c->pmd ? ext : NULL);
    if (n < 0) {
        set_no_req(c);
        handshake_refuse(c, 500, "response too large", HS_FAIL_BAD_REQUEST);
        return;
    }
    conn_queue_bytes(c, resp, (size_t)n);

    ws_reader_config_t rcfg = {
        .max_message_size = cfg->max_message_size,
        .role = WS_ROLE_SERVER,
        .inflater = c->pmd ? s->inflater : NULL,
        .inflate_reset = 1,   /* policy answers client_no_context_takeover */
    };
    ws_reader_init(&c->reader, &rcfg);
    uint64_t now = wsgw_now_ms(s);
    c->state = CONN_OPEN;
    c->has_deadline = 0;
    c->last_ping_ms = conn_ms(now);
    s->n_handshaking--;
    c->counted_hs = 0;
    s->n_open++;
    c->upgraded = 1;
    idmap_put(&s->by_id, c);   /* unique: checked above */
    s->metrics.connections_total++;
    c->opened = 1;
    hooks_conn_opened(c);
    wsgw_log(WSGW_LOG_DEBUG, "conn_open", "id=%s remote=%s compression=%d", c->id, conn_peer(c), c->pmd);
    if (s->on_connection) s->on_connection(c, s->on_connection_ud);
    set_no_req(c);
    if (c->state != CONN_OPEN) return;      /* disconnected inside on_connection */
    /* The codec's opening (the welcome; Iris' rooms).  A feature may hold
     * the first answer (with Redis, until P:conn:<id> is subscribed): the
     * frames that came with the request, and any queued after it, wait for
     * it (conn_hold). */
    size_t before = c->outq.bytes;                /* the 101, what on_connection sent */
    if (hooks_open(c)) {
        conn_hold(c, before, hdr_len);
        return;
    }

    /* Frames that arrived with the request: feed them, then drop the buffer. */
    ws_buf_t hsbuf = c->hs->buf;
    memset(&c->hs->buf, 0, sizeof c->hs->buf);
    conn_hs_free(c);
    if (hsbuf.len > hdr_len) conn_ws_input(c, hsbuf.data + hdr_len, hsbuf.len - hdr_len);
    ws_buf_free(&hsbuf);
}

void handshake_input(wsgw_conn_t *c, const uint8_t *buf, size_t n)
{
    wsgw_server_t *s = c->srv;
    /* The parser refuses a header block over max_header_bytes, so at most
     * that plus one read is ever held here. */
    if (!c->hs) return;                      /* already answered */
    ws_buf_append(&c->hs->buf, buf, n);
    ws_http_request_t req;
    int rc = ws_http_parse(&c->hs->parser, (const char *)c->hs->buf.data, c->hs->buf.len,
                           &s->http_limits, &req);
    if (rc == WS_E_WANT_MORE) return;
    if (rc < 0) {
        int status = ws_err_http_status(rc);
        handshake_refuse(c, status ? status : 400, ws_err_str(rc),
                         status == 431 ? HS_FAIL_TOO_LARGE : HS_FAIL_BAD_REQUEST);
        return;
    }
    if (ws_http_is_upgrade(&req)) {
        handshake_upgrade(c, &req, (size_t)rc);
        return;
    }
    conn_start_http(c);
    c->hs->req = &req;
    http_route(c, &req);
    set_no_req(c);
    conn_hs_free(c);
}

const char *conn_subprotocol(const wsgw_conn_t *c)
{
    if (c->subprotocol == SUBPROTO_NONE) return NULL;
    if (c->subprotocol == SUBPROTO_WSGW) return "wsgw";
    return c->srv->cfg->subprotocols.v[c->subprotocol - 1];
}

const char *wsgw_conn_header(const wsgw_conn_t *c, const char *name)
{
    static char value[16384];                /* valid until the next call: see wsgw.h */
    if (!conn_req(c) || !name) return NULL;
    const ws_http_header_t *h = ws_http_find_header(conn_req(c), name, NULL);
    if (!h || h->value_len >= sizeof value) return NULL;
    memcpy(value, h->value, h->value_len);
    value[h->value_len] = '\0';
    return value;
}
