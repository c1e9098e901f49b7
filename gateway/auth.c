/* auth.c — JSON Web Token authentication at the handshake, permissions from
 * token claims, expiry and refresh (docs/protocol.md, "Authentication").
 *
 * With auth_hs256_secret or auth_public_key set, a client must present a
 * token, from (in this order) `Authorization: Bearer <t>`, a
 * Sec-WebSocket-Protocol entry `bearer.<t>` (what a browser can send), or
 * the query parameter auth_query_param.  A refusal is a 401 whose body and
 * log line say why (jwt_err_str: never a byte of the token).  The token's
 * `sub` becomes the connection's user id; its `rooms` and `emit` claims
 * narrow what the configuration allows; when it expires the connection is
 * closed with 4001 unless the client sent a fresh one ({"op":"auth"}).
 * A connection keeps only what it needs of the claims (user, expiry, a copy
 * of the rooms array, an emit bit set), not the 4 KiB claims struct.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "server_int.h"
#include "ws_status.h"

#define AUTH_CLOSE_EXPIRED 4001

int auth_init(wsgw_server_t *s, char *err, size_t errlen)
{
    const wsgw_config_t *cfg = s->cfg;
    const char *secret = cfg->auth_hs256_secret && cfg->auth_hs256_secret[0] ? cfg->auth_hs256_secret : NULL;
    const char *pem = cfg->auth_public_key && cfg->auth_public_key[0] ? cfg->auth_public_key : NULL;
    if (!secret && !pem) return 0;
    if (jwt_keys_load(&s->jwt_keys, secret, pem, err, errlen) != 0) return -1;
    s->auth_on = 1;
    s->jwt_policy.leeway_s = (uint32_t)(cfg->auth_leeway_ms / 1000);
    s->jwt_policy.require_exp = cfg->auth_require_exp;   /* refused as "exp claim missing" */
    s->jwt_policy.check_iat = 1;
    s->jwt_policy.issuer = cfg->auth_issuer[0] ? cfg->auth_issuer : NULL;
    s->jwt_policy.audience = cfg->auth_audience[0] ? cfg->auth_audience : NULL;
    return 0;
}

void auth_free(wsgw_server_t *s)
{
    if (s->auth_on) jwt_keys_free(&s->jwt_keys);
    s->auth_on = 0;
}

void auth_conn_free(wsgw_conn_t *c)
{
    if (!c->auth) return;
    ws_xfree(c->auth->user);
    ws_xfree(c->auth->claim_rooms);
    ws_xfree(c->auth);
    c->auth = NULL;
}

/* ---- finding the token ------------------------------------------------------------ */

static int token_from_authorization(const ws_http_request_t *req, const char **t, size_t *n)
{
    const ws_http_header_t *h = ws_http_find_header(req, "Authorization", NULL);
    if (!h || h->value_len < 7 || strncasecmp(h->value, "Bearer ", 7) != 0) return 0;
    const char *p = h->value + 7, *end = h->value + h->value_len;
    while (p < end && *p == ' ') p++;
    *t = p;
    *n = (size_t)(end - p);
    return *n > 0;
}

static int token_from_subprotocol(const ws_http_request_t *req, const char **t, size_t *n)
{
    for (size_t i = 0; i < req->num_headers; i++) {
        const ws_http_header_t *h = &req->headers[i];
        if (h->name_len != 22 || strncasecmp(h->name, "Sec-WebSocket-Protocol", 22) != 0) continue;
        const char *p = h->value, *end = h->value + h->value_len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ',')) p++;
            const char *e = p;
            while (e < end && *e != ',' && *e != ' ') e++;
            if (e - p > 7 && strncmp(p, "bearer.", 7) == 0) {
                *t = p + 7;
                *n = (size_t)(e - p - 7);
                return 1;
            }
            p = e;
        }
    }
    return 0;
}

static int token_from_query(const wsgw_conn_t *c, const ws_http_request_t *req, const char **t, size_t *n)
{
    const char *name = c->srv->cfg->auth_query_param;
    size_t nl = strlen(name);
    if (!nl || !req->query) return 0;
    const char *p = req->query, *end = req->query + req->query_len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if ((size_t)(e - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=') {
            *t = p + nl + 1;
            *n = (size_t)(e - *t);
            return *n > 0;
        }
        p = amp ? amp + 1 : end;
    }
    return 0;
}

/* ---- applying a verified token ------------------------------------------------------ */

static void auth_apply(wsgw_conn_t *c, const jwt_claims_t *cl)
{
    if (!c->auth) c->auth = ws_xcalloc(1, sizeof *c->auth);
    conn_auth_t *a = c->auth;
    if (cl->has_sub) {
        ws_xfree(a->user);
        a->user = ws_xstrndup(cl->sub, cl->sub_len);
    }
    a->token_exp_s = cl->exp;
    ws_xfree(a->claim_rooms);
    a->claim_rooms = NULL;
    a->claim_rooms_len = 0;
    if (cl->rooms.len) {
        a->claim_rooms = (uint8_t *)ws_xstrndup((const char *)cl->rooms.p, cl->rooms.len);
        a->claim_rooms_len = cl->rooms.len;
    }
    static const struct { const char *kind; unsigned bit; } kinds[] = {
        { "broadcast", WSGW_EMIT_BROADCAST }, { "all", WSGW_EMIT_ALL },
        { "room", WSGW_EMIT_ROOM }, { "conn", WSGW_EMIT_CONN },
    };
    c->claim_emit = 0;
    for (size_t i = 0; i < 4; i++)
        if (jwt_claims_allows_target(cl, kinds[i].kind)) c->claim_emit |= kinds[i].bit;
}

int auth_handshake(wsgw_conn_t *c, const ws_http_request_t *req)
{
    wsgw_server_t *s = c->srv;
    c->claim_emit = WSGW_EMIT_BROADCAST | WSGW_EMIT_ALL | WSGW_EMIT_ROOM | WSGW_EMIT_CONN;
    if (!s->auth_on) return 0;
    const char *tok = NULL;
    size_t n = 0;
    int found = token_from_authorization(req, &tok, &n);
    if (!found && token_from_subprotocol(req, &tok, &n)) found = c->token_in_protocol = 1;
    if (!found) found = token_from_query(c, req, &tok, &n);
    if (!found) {
        if (s->cfg->auth_anonymous) return 0;
        handshake_refuse(c, 401, "missing token (Authorization: Bearer, or the bearer. subprotocol)",
                         HS_FAIL_AUTH);
        return -1;
    }
    jwt_claims_t cl;
    int rc = jwt_verify(&s->jwt_keys, tok, n, &s->jwt_policy, wsgw_now_ms(s) / 1000, &cl);
    if (rc != JWT_OK) {
        char why[160];
        snprintf(why, sizeof why, "invalid token: %s", jwt_err_str(rc));
        handshake_refuse(c, 401, why, HS_FAIL_AUTH);
        return -1;
    }
    auth_apply(c, &cl);
    return 0;
}

/* A fresh token's rooms claim takes effect at once: rooms it no longer
 * allows are left, and the client is told of each. */
static void auth_leave_forbidden_rooms(wsgw_conn_t *c)
{
    for (size_t i = c->member.count; i-- > 0;) {
        if (i >= c->member.count) continue;          /* a leave reorders the list */
        const wsgw_room_t *r = rooms_memberships(&c->member)[i].room;
        if (auth_may_join(c, r->name)) continue;
        char msg[ENVELOPE_ROOM_NAME_MAX + 64];
        snprintf(msg, sizeof msg, "left room %s: the refreshed token does not allow it", r->name);
        rooms_leave(&c->srv->rooms, &c->member, r->name, r->name_len);   /* may free r */
        json_span_t none = { NULL, 0 };
        protocol_error_not_yours(c, none, ENVELOPE_E_FORBIDDEN, msg);
    }
}

/* {"op":"auth","token":...}: a fresh token for the same user. */
void auth_refresh(wsgw_conn_t *c, const envelope_msg_t *m)
{
    wsgw_server_t *s = c->srv;
    if (!s->auth_on) {
        protocol_error(c, m->id, ENVELOPE_E_UNAUTHORIZED, "authentication is not configured here");
        return;
    }
    jwt_claims_t cl;
    int rc = jwt_verify(&s->jwt_keys, (const char *)m->token.p, m->token.len, &s->jwt_policy,
                        wsgw_now_ms(s) / 1000, &cl);
    if (rc != JWT_OK) {
        char why[160];
        snprintf(why, sizeof why, "token refused: %s", jwt_err_str(rc));
        wsgw_log(WSGW_LOG_INFO, "auth_refresh_refused", "id=%s reason=\"%s\"", c->id, jwt_err_str(rc));
        protocol_error(c, m->id, ENVELOPE_E_UNAUTHORIZED, why);
        return;
    }
    const char *user = conn_user(c);
    if (user && (!cl.has_sub || strlen(user) != cl.sub_len || memcmp(user, cl.sub, cl.sub_len) != 0)) {
        protocol_error(c, m->id, ENVELOPE_E_UNAUTHORIZED, "token refused: it names another user");
        return;
    }
    auth_apply(c, &cl);
    auth_leave_forbidden_rooms(c);
    protocol_ack(c, m->id);
}

int auth_may_join(const wsgw_conn_t *c, const char *room)
{
    json_span_t rooms = { NULL, 0 };
    if (c->auth) rooms = (json_span_t){ c->auth->claim_rooms, c->auth->claim_rooms_len };
    return jwt_rooms_allow(rooms, room);
}

/* From the sweep: a token past its exp (plus leeway) ends the connection.
 * exp may be near 2^64 (the verifier saturates it there): the sum saturates
 * too, as jwt.c's does, or it would wrap to a time long past. */
int auth_expired(wsgw_conn_t *c, uint64_t now_ms)
{
    if (!c->auth || !c->auth->token_exp_s) return 0;
    uint64_t exp = c->auth->token_exp_s, leeway = c->srv->cfg->auth_leeway_ms / 1000;
    uint64_t limit = exp > UINT64_MAX - leeway ? UINT64_MAX : exp + leeway;
    if (now_ms / 1000 < limit) return 0;
    c->srv->metrics.closes[CLOSE_TOKEN_EXPIRED]++;
    char user[JWT_SUB_MAX * 4 + 3];         /* every byte escaped, quotes */
    wsgw_log(WSGW_LOG_INFO, "token_expired", "id=%s user=%s", c->id,
             c->auth->user ? wsgw_log_value(user, sizeof user, c->auth->user) : "-");
    conn_fail(c, AUTH_CLOSE_EXPIRED, "token expired");
    return 1;
}
