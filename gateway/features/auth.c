/* auth.c — JSON Web Token authentication at the handshake, permissions from
 * token claims, expiry and refresh (auth.h; docs/protocol.md, "Authentication").
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

#include "auth.h"
#include "jwt.h"
#include "log.h"
#include "server_int.h"
#include "ws_status.h"

#define AUTH_CLOSE_EXPIRED 4001
#define EMIT_ALL (WSGW_EMIT_BROADCAST | WSGW_EMIT_ALL | WSGW_EMIT_ROOM | WSGW_EMIT_CONN)

typedef struct auth {
    wsgw_server_t *s;
    int            on;             /* a key is configured: tokens are checked */
    jwt_keys_t     keys;
    jwt_policy_t   policy;
} auth_t;

/* What a verified token said, in the connection's slot. */
typedef struct conn_auth {
    char          *user;           /* the token's sub, or NULL */
    uint64_t       token_exp_s;    /* the token's exp, 0 = none */
    uint8_t       *claim_rooms;    /* copy of the token's rooms claim (JSON array), or NULL */
    size_t         claim_rooms_len;
    unsigned       claim_emit;     /* WSGW_EMIT_* the token allows */
} conn_auth_t;

/* The slot index: every server of the process registers its features in
 * the same order (gateway/wsgw_server.c), so it is the same for all. */
static int auth_slot = -1;

static conn_auth_t *conn_auth(const wsgw_conn_t *c)
{
    return auth_slot >= 0 ? core_conn_get(c, auth_slot) : NULL;
}

const char *auth_user(const wsgw_conn_t *c)
{
    const conn_auth_t *a = conn_auth(c);
    return a ? a->user : NULL;
}

unsigned auth_emit_allowed(const wsgw_conn_t *c)
{
    const conn_auth_t *a = conn_auth(c);
    return a ? a->claim_emit : EMIT_ALL;
}

static int auth_init(auth_t *au, char *err, size_t errlen)
{
    const wsgw_config_t *cfg = au->s->cfg;
    const char *secret = cfg->auth_hs256_secret && cfg->auth_hs256_secret[0] ? cfg->auth_hs256_secret : NULL;
    const char *pem = cfg->auth_public_key && cfg->auth_public_key[0] ? cfg->auth_public_key : NULL;
    if (!secret && !pem) return 0;
    if (jwt_keys_load(&au->keys, secret, pem, err, errlen) != 0) return -1;
    au->on = 1;
    au->policy.leeway_s = (uint32_t)(cfg->auth_leeway_ms / 1000);
    au->policy.require_exp = cfg->auth_require_exp;   /* refused as "exp claim missing" */
    au->policy.check_iat = 1;
    au->policy.issuer = cfg->auth_issuer[0] ? cfg->auth_issuer : NULL;
    au->policy.audience = cfg->auth_audience[0] ? cfg->auth_audience : NULL;
    return 0;
}

static void auth_free(void *ud)
{
    auth_t *au = ud;
    if (au->on) jwt_keys_free(&au->keys);
    ws_xfree(au);
}

static void auth_conn_free(void *ud, wsgw_conn_t *c)
{
    (void)ud;
    conn_auth_t *a = conn_auth(c);
    if (!a) return;
    ws_xfree(a->user);
    ws_xfree(a->claim_rooms);
    ws_xfree(a);
    core_conn_set(c, auth_slot, NULL);
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
    conn_auth_t *a = conn_auth(c);
    if (!a) {
        a = ws_xcalloc(1, sizeof *a);
        core_conn_set(c, auth_slot, a);
    }
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
    a->claim_emit = 0;
    for (size_t i = 0; i < 4; i++)
        if (jwt_claims_allows_target(cl, kinds[i].kind)) a->claim_emit |= kinds[i].bit;
}

/* The handshake hook: 0 (anonymous, or a verified token from a header or
 * the query), CORE_HS_OFFER_WSGW (a verified token that came as a
 * "bearer." subprotocol entry: the "wsgw" subprotocol must be selected),
 * or -1 with a 401 queued. */
static int auth_handshake(void *ud, wsgw_conn_t *c, const ws_http_request_t *req)
{
    auth_t *au = ud;
    wsgw_server_t *s = au->s;
    if (!au->on) return 0;
    const char *tok = NULL;
    size_t n = 0;
    int in_protocol = 0;
    int found = token_from_authorization(req, &tok, &n);
    if (!found && token_from_subprotocol(req, &tok, &n)) found = in_protocol = 1;
    if (!found) found = token_from_query(c, req, &tok, &n);
    if (!found) {
        if (s->cfg->auth_anonymous) return 0;
        handshake_refuse(c, 401, "missing token (Authorization: Bearer, or the bearer. subprotocol)",
                         HS_FAIL_AUTH);
        return -1;
    }
    jwt_claims_t cl;
    int rc = jwt_verify(&au->keys, tok, n, &au->policy, wsgw_now_ms(s) / 1000, &cl);
    if (rc != JWT_OK) {
        char why[160];
        snprintf(why, sizeof why, "invalid token: %s", jwt_err_str(rc));
        handshake_refuse(c, 401, why, HS_FAIL_AUTH);
        return -1;
    }
    auth_apply(c, &cl);
    return in_protocol ? CORE_HS_OFFER_WSGW : 0;
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
        core_leave(c, r->name, r->name_len);         /* may free r */
        json_span_t none = { NULL, 0 };
        protocol_error_not_yours(c, none, ENVELOPE_E_FORBIDDEN, msg);
    }
}

/* {"op":"auth","token":...}: a fresh token for the same user. */
static void auth_refresh(void *ud, wsgw_conn_t *c, const envelope_msg_t *m, const uint8_t *raw, size_t len)
{
    auth_t *au = ud;
    wsgw_server_t *s = au->s;
    (void)raw; (void)len;
    if (!au->on) {
        protocol_error(c, m->id, ENVELOPE_E_UNAUTHORIZED, "authentication is not configured here");
        return;
    }
    jwt_claims_t cl;
    int rc = jwt_verify(&au->keys, (const char *)m->token.p, m->token.len, &au->policy,
                        wsgw_now_ms(s) / 1000, &cl);
    if (rc != JWT_OK) {
        char why[160];
        snprintf(why, sizeof why, "token refused: %s", jwt_err_str(rc));
        wsgw_log(WSGW_LOG_INFO, "auth_refresh_refused", "id=%s reason=\"%s\"", c->id, jwt_err_str(rc));
        protocol_error(c, m->id, ENVELOPE_E_UNAUTHORIZED, why);
        return;
    }
    const char *user = auth_user(c);
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
    const conn_auth_t *a = conn_auth(c);
    if (a) rooms = (json_span_t){ a->claim_rooms, a->claim_rooms_len };
    return jwt_rooms_allow(rooms, room);
}

/* From the sweep: a token past its exp (plus leeway) ends the connection.
 * exp may be near 2^64 (the verifier saturates it there): the sum saturates
 * too, as jwt.c's does, or it would wrap to a time long past. */
static int auth_expired(void *ud, wsgw_conn_t *c, uint64_t now_ms)
{
    (void)ud;
    const conn_auth_t *a = conn_auth(c);
    if (!a || !a->token_exp_s) return 0;
    uint64_t exp = a->token_exp_s, leeway = c->srv->cfg->auth_leeway_ms / 1000;
    uint64_t limit = exp > UINT64_MAX - leeway ? UINT64_MAX : exp + leeway;
    if (now_ms / 1000 < limit) return 0;
    c->srv->metrics.closes[CLOSE_TOKEN_EXPIRED]++;
    char user[JWT_SUB_MAX * 4 + 3];         /* every byte escaped, quotes */
    wsgw_log(WSGW_LOG_INFO, "token_expired", "id=%s user=%s", c->id,
             a->user ? wsgw_log_value(user, sizeof user, a->user) : "-");
    conn_fail(c, AUTH_CLOSE_EXPIRED, "token expired");
    return 1;
}

int auth_attach(wsgw_server_t *s, protocol_t *p, char *err, size_t errlen)
{
    auth_t *au = ws_xcalloc(1, sizeof *au);
    au->s = s;
    core_hooks_t h = {
        .name = "auth", .ud = au, .handshake = auth_handshake, .conn_sweep = auth_expired,
        .conn_free = auth_conn_free, .free = auth_free,
    };
    int slot = core_conn_slot(s);
    if (slot < 0 || (auth_slot >= 0 && slot != auth_slot) || core_register(s, &h) != 0) {
        ws_xfree(au);
        snprintf(err, errlen, "auth: no connection slot or hook left");
        return -1;
    }
    auth_slot = slot;
    if (p && protocol_op_register(p, "auth", auth_refresh, au) != 0) {
        snprintf(err, errlen, "auth: the envelope op table is full");
        return -1;
    }
    return auth_init(au, err, errlen);
}
