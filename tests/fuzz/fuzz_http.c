/* fuzz_http.c — libFuzzer target for proto/ws_http.c.
 *
 * Besides "never crash, leak or trip UBSan", it checks the parser's central
 * promise: the input parsed whole, byte by byte, and split at a few points
 * (each prefix in an exact-size heap copy, so ASan sees reads past it) gives
 * the same answer and the same request.  It does so under the default
 * limits and under tight ones that the small inputs of a fuzzer can reach.
 * A request that parses is then run through everything downstream: lookup,
 * token lists, validation, subprotocol choice and every response writer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws_http.h"
#include "ws_status.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static ws_http_request_t g_whole, g_other;

static size_t off(const char *p, const char *base) { return p ? (size_t)(p - base) + 1 : 0; }

/* The static "/" that ws_http gives as the path of an absolute-form target
 * without one (ws_http.h): the same pointer whatever the buffer, so it is
 * compared as a pointer and every other path by its offset. */
static const char *g_static_root;

static const char *static_root(void)
{
    if (!g_static_root) {
        static const char m[] = "GET http://h HTTP/1.1\r\n\r\n";
        static ws_http_request_t r;               /* not g_other: it may be in use */
        ws_http_parser_t p;
        ws_http_parser_init(&p);
        REQUIRE(ws_http_parse(&p, m, sizeof m - 1, NULL, &r) == (int)sizeof m - 1);
        REQUIRE(r.path_len == 1 && r.path[0] == '/' && r.authority == m + 11);
        g_static_root = r.path;
    }
    return g_static_root;
}

static int same_path(const ws_http_request_t *a, const char *abase,
                     const ws_http_request_t *b, const char *bbase)
{
    if (a->path_len != b->path_len) return 0;
    if (a->path == static_root() || b->path == static_root()) return a->path == b->path;
    return off(a->path, abase) == off(b->path, bbase);
}

/* Same request, compared by offsets since the two may sit in different
 * copies of the input. */
static int same_request(const ws_http_request_t *a, const char *abase,
                        const ws_http_request_t *b, const char *bbase)
{
    if (off(a->method, abase) != off(b->method, bbase) || a->method_len != b->method_len ||
        off(a->target, abase) != off(b->target, bbase) || a->target_len != b->target_len ||
        off(a->authority, abase) != off(b->authority, bbase) ||
        a->authority_len != b->authority_len || !same_path(a, abase, b, bbase) ||
        off(a->query, abase) != off(b->query, bbase) || a->query_len != b->query_len ||
        a->minor_version != b->minor_version || a->num_headers != b->num_headers)
        return 0;
    for (size_t i = 0; i < a->num_headers; i++) {
        const ws_http_header_t *x = &a->headers[i], *y = &b->headers[i];
        if (off(x->name, abase) != off(y->name, bbase) || x->name_len != y->name_len ||
            off(x->value, abase) != off(y->value, bbase) || x->value_len != y->value_len)
            return 0;
    }
    return 1;
}

static void require_same(int rc, int rc2, const char *abase, const char *bbase)
{
    REQUIRE(rc == rc2);
    if (rc > 0) REQUIRE(same_request(&g_whole, abase, &g_other, bbase));
}

static void check_bytewise(const char *buf, size_t size, const ws_http_limits_t *lim, int rc)
{
    ws_http_parser_t p;
    ws_http_parser_init(&p);
    int r = WS_E_WANT_MORE;
    for (size_t k = 0; k <= size && r == WS_E_WANT_MORE; k++)
        r = ws_http_parse(&p, buf, k, lim, &g_other);
    require_same(rc, r, buf, buf);
}

static void check_split(const char *buf, size_t size, size_t k, const ws_http_limits_t *lim, int rc)
{
    ws_http_parser_t p;
    ws_http_parser_init(&p);
    char *copy = malloc(k ? k : 1);
    memcpy(copy, buf, k);
    int r = ws_http_parse(&p, copy, k, lim, &g_other);
    if (r == WS_E_WANT_MORE) {
        r = ws_http_parse(&p, buf, size, lim, &g_other);
        require_same(rc, r, buf, buf);
    } else {
        require_same(rc, r, buf, copy);
    }
    free(copy);
}

/* Whole, byte by byte and split; returns the answer of the whole parse,
 * with g_whole filled when it is a complete request. */
static int parse_every_way(const char *buf, size_t size, const ws_http_limits_t *lim)
{
    ws_http_parser_t p;
    ws_http_parser_init(&p);
    int rc = ws_http_parse(&p, buf, size, lim, &g_whole);
    REQUIRE(rc > 0 || rc == WS_E_WANT_MORE || ws_err_http_status(rc) >= 400);
    if (rc > 0) REQUIRE((size_t)rc <= size && (size_t)rc <= lim->max_header_bytes);
    check_bytewise(buf, size, lim, rc);
    const size_t splits[] = { size / 3, size / 2, size - size / 4, size ? (uint8_t)buf[0] % size : 0 };
    for (size_t i = 0; i < sizeof splits / sizeof splits[0]; i++)
        check_split(buf, size, splits[i], lim, rc);
    return rc;
}

static void check_inside(const char *p, size_t n, const char *buf, size_t len)
{
    REQUIRE(p >= buf && n <= len && (size_t)(p - buf) <= len - n);
}

static void exercise_request(const ws_http_request_t *r, const char *buf, size_t len)
{
    static const char *const protos[] = { "chat", "superchat", "mqtt", "v2.json", "Chat" };
    char out[1024], value[256];

    check_inside(r->target, r->target_len, buf, len);
    /* path, query and authority lie within the target, except the static
     * "/" of an absolute-form target without a path. */
    const char *t_end = r->target + r->target_len;
    REQUIRE(r->path_len > 0 && r->path[0] == '/');
    if (r->path == static_root())
        REQUIRE(r->authority != NULL);
    else
        REQUIRE(r->path >= r->target && r->path_len <= (size_t)(t_end - r->path));
    if (r->query) REQUIRE(r->query >= r->target && r->query_len <= (size_t)(t_end - r->query));
    if (r->authority) {
        REQUIRE(r->authority > r->target && r->authority_len > 0 &&
                r->authority_len <= (size_t)(t_end - r->authority));
        REQUIRE(memchr(r->authority, '@', r->authority_len) == NULL);
    }
    for (size_t i = 0; i < r->num_headers; i++) {
        const ws_http_header_t *h = &r->headers[i];
        check_inside(h->value, h->value_len, buf, len);
        ws_http_has_token(h->value, h->value_len, "upgrade");
        size_t n = h->value_len < sizeof value - 1 ? h->value_len : sizeof value - 1;
        memcpy(value, h->value, n);
        value[n] = '\0';
        ws_http_find_header(r, value, NULL);
        int w = ws_handshake_response(out, sizeof out, h->value, h->value_len, value, value);
        REQUIRE(w > 0 || w == WS_E_NOSPACE);
    }
    size_t count;
    ws_http_find_header(r, "Sec-WebSocket-Protocol", &count);
    ws_http_is_upgrade(r);

    int sp = ws_handshake_select_subprotocol(r, protos, sizeof protos / sizeof protos[0]);
    REQUIRE(sp >= -1 && sp < (int)(sizeof protos / sizeof protos[0]));
    ws_handshake_t hs;
    int vrc = ws_handshake_validate(r, &hs);
    if (vrc == WS_OK) {
        REQUIRE(hs.key_len == 24 && hs.host_len > 0);
        int w = ws_handshake_response(out, sizeof out, hs.key, hs.key_len,
                                      sp >= 0 ? protos[sp] : NULL, NULL);
        REQUIRE(w > 0);
    } else {
        int status = ws_err_http_status(vrc);
        REQUIRE(status >= 400);
        REQUIRE(ws_http_error_response(out, sizeof out, status, ws_err_str(vrc)) > 0);
        REQUIRE(ws_http_error_response(out, 40, status, ws_err_str(vrc)) == WS_E_NOSPACE);
    }
    REQUIRE(ws_http_response_head(out, sizeof out, 200, "text/plain", len, r->minor_version, NULL) > 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    ws_http_limits_t lim;
    ws_http_limits_default(&lim);
    int rc = parse_every_way(buf, size, &lim);
    if (rc > 0) exercise_request(&g_whole, buf, (size_t)rc);
    if (rc < 0 && rc != WS_E_WANT_MORE) {
        char out[512];
        REQUIRE(ws_http_error_response(out, sizeof out, ws_err_http_status(rc), NULL) > 0);
    }

    /* Limits small enough for the fuzzer's inputs to cross each of them. */
    const ws_http_limits_t tight = { 24, 3, 96 };
    rc = parse_every_way(buf, size, &tight);
    if (rc > 0) exercise_request(&g_whole, buf, (size_t)rc);

    char acc[29];
    ws_handshake_accept(buf, size, acc);
    REQUIRE(strlen(acc) == 28);
    ws_http_has_token(buf, size, "websocket");
    return 0;
}
