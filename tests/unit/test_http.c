/* test_http.c — unit tests of proto/ws_http.c: request parsing (whole, byte
 * by byte, at every split), limits, the RFC 6455 §4.2.1 handshake rules,
 * subprotocol choice and the response writers. */
#include "test.h"

#include <stdarg.h>

#include "ws_http.h"
#include "ws_status.h"

#define SAMPLE_KEY    "dGhlIHNhbXBsZSBub25jZQ=="
/* The value RFC 6455 §1.3 and §4.2.2 print (python hashlib and openssl agree);
 * "s3pPLMBiTxaQ9kYGJzPO+BOo0Hk=", quoted in the task brief, is not it. */
#define SAMPLE_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* RFC 6455 §1.3, with the §4.1 Sec-WebSocket-Version the sample omits. */
#define SAMPLE_REQUEST                                   \
    "GET /chat HTTP/1.1\r\n"                             \
    "Host: server.example.com\r\n"                       \
    "Upgrade: websocket\r\n"                             \
    "Connection: Upgrade\r\n"                            \
    "Sec-WebSocket-Key: " SAMPLE_KEY "\r\n"              \
    "Origin: http://example.com\r\n"                     \
    "Sec-WebSocket-Protocol: chat, superchat\r\n"        \
    "Sec-WebSocket-Version: 13\r\n"                      \
    "\r\n"

#define GET_LINE "GET /chat HTTP/1.1\r\n"
#define H_HOST   "Host: server.example.com\r\n"
#define H_UPG    "Upgrade: websocket\r\n"
#define H_CONN   "Connection: Upgrade\r\n"
#define H_KEY    "Sec-WebSocket-Key: " SAMPLE_KEY "\r\n"
#define H_VER    "Sec-WebSocket-Version: 13\r\n"
#define GOOD     H_HOST H_UPG H_CONN H_KEY H_VER

#define FP_CAP 32768

/* ---- helpers -------------------------------------------------------------- */

__attribute__((format(printf, 4, 5)))
static void appendf(char *out, size_t cap, size_t *n, const char *fmt, ...)
{
    if (*n >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(out + *n, cap - *n, fmt, ap);
    va_end(ap);
    if (w > 0) *n += (size_t)w;
}

/* A printable summary of what a parse returned, comparable across buffers. */
static void fingerprint(const ws_http_request_t *r, int rc, char *out, size_t cap)
{
    size_t n = 0;
    appendf(out, cap, &n, "rc=%d", rc);
    if (rc <= 0) return;
    appendf(out, cap, &n, " m=%.*s t=%.*s a=%s%.*s p=%.*s q=%s%.*s v=%d h=%zu",
            (int)r->method_len, r->method, (int)r->target_len, r->target,
            r->authority ? "+" : "-", (int)r->authority_len, r->authority ? r->authority : "",
            (int)r->path_len, r->path, r->query ? "+" : "-",
            (int)r->query_len, r->query ? r->query : "", r->minor_version, r->num_headers);
    for (size_t i = 0; i < r->num_headers; i++)
        appendf(out, cap, &n, " [%.*s|%.*s]", (int)r->headers[i].name_len, r->headers[i].name,
                (int)r->headers[i].value_len, r->headers[i].value);
}

/* Parses msg[0..k) from an exact-size heap copy, so ASan sees any read past
 * the bytes handed over. */
static int parse_copy(ws_http_parser_t *p, const char *msg, size_t k,
                      const ws_http_limits_t *lim, char *fp)
{
    static ws_http_request_t req;
    char *b = malloc(k ? k : 1);
    memcpy(b, msg, k);
    int rc = ws_http_parse(p, b, k, lim, &req);
    fingerprint(&req, rc, fp, FP_CAP);
    free(b);
    return rc;
}

/* Parses msg whole, as growing prefixes one byte apart, and at every split
 * point (prefix, then whole); returns 0 when all give the same answer and
 * the same request.  *rc gets the answer; *stop how many bytes the
 * byte-by-byte feed had given when the parser answered. */
static int parse_all_ways(const char *msg, size_t len, const ws_http_limits_t *lim,
                          int *rc, size_t *stop)
{
    static char want[FP_CAP], got[FP_CAP];
    ws_http_parser_t p;
    ws_http_parser_init(&p);
    *rc = parse_copy(&p, msg, len, lim, want);

    ws_http_parser_init(&p);
    int r = WS_E_WANT_MORE;
    size_t k = 0;
    for (; k <= len; k++)
        if ((r = parse_copy(&p, msg, k, lim, got)) != WS_E_WANT_MORE) break;
    *stop = k > len ? len : k;
    if (strcmp(want, got) != 0) {
        fprintf(stderr, "byte by byte differs:\n  whole: %s\n  bytes: %s\n", want, got);
        return -1;
    }
    for (size_t s = 0; s <= len; s++) {
        ws_http_parser_init(&p);
        r = parse_copy(&p, msg, s, lim, got);
        if (r == WS_E_WANT_MORE) parse_copy(&p, msg, len, lim, got);
        if (strcmp(want, got) != 0) {
            fprintf(stderr, "split at %zu differs:\n  whole: %s\n  split: %s\n", s, want, got);
            return -1;
        }
    }
    return 0;
}

/* The answer to parsing msg every way, or a sentinel when the ways differ. */
#define PARSE_DIFFERS 12345
static int parse_rc(const char *msg, const ws_http_limits_t *lim)
{
    int rc;
    size_t stop;
    return parse_all_ways(msg, strlen(msg), lim, &rc, &stop) == 0 ? rc : PARSE_DIFFERS;
}

static ws_http_request_t g_req;
static char g_buf[65536];

/* Parses msg (which must be a complete request) into g_req from g_buf. */
static int parse_whole(const char *msg, size_t len)
{
    ws_http_parser_t p;
    ws_http_parser_init(&p);
    memcpy(g_buf, msg, len);
    return ws_http_parse(&p, g_buf, len, NULL, &g_req);
}

/* Parse then validate; a parse failure comes back as PARSE_DIFFERS so it
 * can never pass for a validation code. */
static int validate(const char *msg, ws_handshake_t *hs)
{
    int rc = parse_whole(msg, strlen(msg));
    if (rc <= 0) return PARSE_DIFFERS;
    return ws_handshake_validate(&g_req, hs);
}

static int hdr_eq(const ws_http_header_t *h, const char *name, const char *value)
{
    return h && h->name_len == strlen(name) && memcmp(h->name, name, h->name_len) == 0 &&
           h->value_len == strlen(value) && memcmp(h->value, value, h->value_len) == 0;
}

/* ---- accept value --------------------------------------------------------- */

static void test_accept_rfc_vector(void)
{
    char acc[29];
    memset(acc, 'x', sizeof acc);
    ws_handshake_accept(SAMPLE_KEY, strlen(SAMPLE_KEY), acc);
    CHECK_STR(acc, SAMPLE_ACCEPT);
    ws_handshake_accept("wDqumtseNBJdhkihL6PW7w==", 24, acc);  /* a second, browser-made key */
    CHECK_STR(acc, "0FFP+2nmNIf/h+4BP36k9uzrYGk=");
}

/* ---- parsing: the sample, split every way --------------------------------- */

static void test_sample_all_ways(void)
{
    int rc;
    size_t stop;
    const char *msg = SAMPLE_REQUEST;
    CHECK_INT(parse_all_ways(msg, strlen(msg), NULL, &rc, &stop), 0);
    CHECK_INT(rc, strlen(msg));
    CHECK_INT(stop, strlen(msg));
}

static void test_sample_fields(void)
{
    const char *msg = SAMPLE_REQUEST;
    CHECK_INT(parse_whole(msg, strlen(msg)), strlen(msg));
    CHECK(g_req.method_len == 3 && memcmp(g_req.method, "GET", 3) == 0);
    CHECK(g_req.method == g_buf);
    CHECK(g_req.target_len == 5 && memcmp(g_req.target, "/chat", 5) == 0);
    CHECK(g_req.path == g_req.target && g_req.path_len == 5);
    CHECK(g_req.query == NULL && g_req.query_len == 0);
    CHECK_INT(g_req.minor_version, 1);
    CHECK_INT(g_req.num_headers, 7);
    CHECK(hdr_eq(&g_req.headers[0], "Host", "server.example.com"));
    CHECK(hdr_eq(&g_req.headers[5], "Sec-WebSocket-Protocol", "chat, superchat"));
    CHECK(hdr_eq(&g_req.headers[6], "Sec-WebSocket-Version", "13"));
}

static void test_bare_lf_and_mixed(void)
{
    const char *lf = "GET /chat HTTP/1.1\nHost: a\nUpgrade: websocket\r\nConnection: Upgrade\n"
                     "Sec-WebSocket-Key: " SAMPLE_KEY "\nSec-WebSocket-Version: 13\n\n";
    int rc;
    size_t stop;
    CHECK_INT(parse_all_ways(lf, strlen(lf), NULL, &rc, &stop), 0);
    CHECK_INT(rc, strlen(lf));
    ws_handshake_t hs;
    CHECK_INT(validate(lf, &hs), WS_OK);
    CHECK(hs.host_len == 1 && hs.host[0] == 'a');
    CHECK_INT(parse_rc("GET / HTTP/1.1\r\nA: b\n\r\n", NULL), 23);  /* CRLF blank after LF line */
}

static void test_path_query_split(void)
{
    const char *m = "GET /a/b?x=1&y=%20?z HTTP/1.0\r\n\r\n";
    CHECK_INT(parse_whole(m, strlen(m)), strlen(m));
    CHECK(g_req.path_len == 4 && memcmp(g_req.path, "/a/b", 4) == 0);
    CHECK(g_req.query_len == 11 && memcmp(g_req.query, "x=1&y=%20?z", 11) == 0);
    CHECK_INT(g_req.minor_version, 0);
    CHECK_INT(g_req.num_headers, 0);
    m = "GET /? HTTP/1.1\r\n\r\n";
    CHECK_INT(parse_whole(m, strlen(m)), strlen(m));
    CHECK(g_req.path_len == 1 && g_req.query != NULL && g_req.query_len == 0);
}

static void test_trailing_bytes_not_consumed(void)
{
    const char *m = "GET / HTTP/1.1\r\nHost: h\r\n\r\n\x81\x85garbage";
    int rc;
    size_t stop;
    CHECK_INT(parse_all_ways(m, strlen(m), NULL, &rc, &stop), 0);
    CHECK_INT(rc, 27);
    CHECK_INT(stop, 27);
}

static void test_want_more(void)
{
    CHECK_INT(parse_rc("", NULL), WS_E_WANT_MORE);
    CHECK_INT(parse_rc("GET / HTTP/1.1\r\nHost: x\r\n\r", NULL), WS_E_WANT_MORE);
}

/* ---- parsing: limits, each hit before the header block ends --------------- */

static void test_limit_request_line(void)
{
    ws_http_limits_t lim;
    ws_http_limits_default(&lim);
    lim.max_request_line = 20;                       /* "GET /123456 HTTP/1.1" */
    CHECK_INT(parse_rc("GET /123456 HTTP/1.1\r\n\r\n", &lim), 24);
    CHECK_INT(parse_rc("GET /123456 HTTP/1.1\r", &lim), WS_E_WANT_MORE);  /* CR may be CRLF */
    CHECK_INT(parse_rc("GET /1234567 HTTP/1.1", &lim), WS_E_HTTP_LINE_TOO_LONG);
    CHECK_INT(parse_rc("GET /1234567 HTTP/1.1\r\n\r\n", &lim), WS_E_HTTP_LINE_TOO_LONG);
    CHECK_INT(parse_rc("GET /123456789012345678901234567890", &lim), WS_E_HTTP_LINE_TOO_LONG);
    CHECK_INT(ws_err_http_status(WS_E_HTTP_LINE_TOO_LONG), 431);
    /* Header lines are bounded by max_header_bytes, not by this limit. */
    const char *hdr = "GET / HTTP/1.1\r\nX: 0123456789012345678901234567890\r\n\r\n";
    CHECK_INT(parse_rc(hdr, &lim), strlen(hdr));
}

static void test_limit_header_count(void)
{
    ws_http_limits_t lim;
    ws_http_limits_default(&lim);
    lim.max_headers = 3;
    const char *three = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    CHECK_INT(parse_rc(three, &lim), strlen(three));
    /* The 4th header is refused on its first byte. */
    const char *m = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD";
    int rc;
    size_t stop;
    CHECK_INT(parse_all_ways(m, strlen(m), &lim, &rc, &stop), 0);
    CHECK_INT(rc, WS_E_HTTP_TOO_MANY_HDRS);
    CHECK_INT(stop, strlen(m));
    CHECK_INT(ws_err_http_status(rc), 431);
}

static void test_limit_header_count_hard_cap(void)
{
    static char m[8192];
    ws_http_limits_t lim;
    ws_http_limits_default(&lim);
    lim.max_headers = 100000;                        /* clamped to the array size */
    size_t n = (size_t)snprintf(m, sizeof m, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < WS_HTTP_MAX_HEADERS_HARD; i++)
        n += (size_t)snprintf(m + n, sizeof m - n, "H%d: v\r\n", i);
    memcpy(m + n, "\r\n", 3);
    CHECK_INT(parse_rc(m, &lim), n + 2);
    memcpy(m + n, "X", 2);
    CHECK_INT(parse_rc(m, &lim), WS_E_HTTP_TOO_MANY_HDRS);
}

static void test_limit_header_bytes(void)
{
    ws_http_limits_t lim;
    ws_http_limits_default(&lim);
    const char *m = "GET / HTTP/1.1\r\nHost: abc\r\n\r\n";   /* 29 bytes */
    lim.max_header_bytes = 29;
    CHECK_INT(parse_rc(m, &lim), 29);
    lim.max_header_bytes = 28;
    CHECK_INT(parse_rc(m, &lim), WS_E_HTTP_HDRS_TOO_BIG);
    /* Refused once the bytes pass the limit, long before any blank line. */
    const char *flood = "GET / HTTP/1.1\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    lim.max_header_bytes = 40;
    int rc;
    size_t stop;
    CHECK_INT(parse_all_ways(flood, strlen(flood), &lim, &rc, &stop), 0);
    CHECK_INT(rc, WS_E_HTTP_HDRS_TOO_BIG);
    CHECK_INT(stop, 40);
    CHECK_INT(ws_err_http_status(rc), 431);
    /* Bytes after the block do not count against it. */
    lim.max_header_bytes = 29;
    CHECK_INT(parse_rc("GET / HTTP/1.1\r\nHost: abc\r\n\r\nbodybodybody", &lim), 29);
}

static void test_parse_repeat_and_misuse(void)
{
    ws_http_parser_t p;
    ws_http_request_t *r = &g_req;
    const char *bad = "GET / HTTP/1.1\r\nBad Name: x\r\n";
    ws_http_parser_init(&p);
    CHECK_INT(ws_http_parse(&p, bad, 16, NULL, r), WS_E_WANT_MORE);
    CHECK_INT(ws_http_parse(&p, bad, strlen(bad), NULL, r), WS_E_HTTP_SYNTAX);
    CHECK_INT(ws_http_parse(&p, bad, strlen(bad), NULL, r), WS_E_HTTP_SYNTAX);
    const char *ok = "GET / HTTP/1.1\r\n\r\nmore";
    ws_http_parser_init(&p);
    CHECK_INT(ws_http_parse(&p, ok, strlen(ok), NULL, r), 18);
    CHECK_INT(ws_http_parse(&p, ok, strlen(ok), NULL, r), 18);
    ws_http_parser_init(&p);
    CHECK_INT(ws_http_parse(&p, ok, 10, NULL, r), WS_E_WANT_MORE);
    CHECK_INT(ws_http_parse(&p, ok, 9, NULL, r), WS_E_INVALID_ARG);  /* buffer shrank */
    CHECK_INT(ws_http_parse(NULL, ok, 9, NULL, r), WS_E_INVALID_ARG);
    CHECK_INT(ws_http_parse(&p, ok, 10, NULL, NULL), WS_E_INVALID_ARG);
    ws_http_parser_init(&p);
    CHECK_INT(ws_http_parse(&p, NULL, 0, NULL, r), WS_E_WANT_MORE);
}

/* ---- parsing: malformed lines ---------------------------------------------- */

static void test_malformed_header_syntax(void)
{
    CHECK_INT(parse_rc("GET / HTTP/1.1\r\nNoColon\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET / HTTP/1.1\r\nHost : x\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET / HTTP/1.1\r\n: x\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET / HTTP/1.1\r\nA(b: x\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET / HTTP/1.1\r\n\r\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(ws_err_http_status(WS_E_HTTP_SYNTAX), 400);
}

static void test_malformed_obs_fold(void)
{
    CHECK_INT(parse_rc("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    /* Refused on the fold's first byte, before the line or block ends. */
    CHECK_INT(parse_rc("GET / HTTP/1.1\r\nX: a\r\n ", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET / HTTP/1.1\r\n Host: a\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
}

static void test_malformed_control_chars(void)
{
    static const char m[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";  /* NUL inside */
    int rc;
    size_t stop;
    CHECK_INT(parse_all_ways(m, sizeof m - 1, NULL, &rc, &stop), 0);
    CHECK_INT(rc, WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET / HTTP/1.1\r\nX: a\x01" "b\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET / HTTP/1.1\r\nX: a\x1b[0m\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    /* HTAB and obs-text are field content. */
    const char *ok = "GET / HTTP/1.1\r\nX: a\tb \xc3\xa9\r\n\r\n";
    CHECK_INT(parse_whole(ok, strlen(ok)), strlen(ok));
    CHECK(hdr_eq(&g_req.headers[0], "X", "a\tb \xc3\xa9"));
}

static void test_value_ows_trimmed(void)
{
    const char *m = "GET / HTTP/1.1\r\nA: \t v  w \t \r\nB:\r\nC:x\r\nD:   \r\n\r\n";
    CHECK_INT(parse_whole(m, strlen(m)), strlen(m));
    CHECK_INT(g_req.num_headers, 4);
    CHECK(hdr_eq(&g_req.headers[0], "A", "v  w"));
    CHECK(hdr_eq(&g_req.headers[1], "B", ""));
    CHECK(hdr_eq(&g_req.headers[2], "C", "x"));
    CHECK(hdr_eq(&g_req.headers[3], "D", ""));
}

static void test_malformed_method(void)
{
    CHECK_INT(parse_rc("G(T / HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc(" GET / HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("\x16\x03\x01", NULL), WS_E_HTTP_SYNTAX);   /* TLS on the plain port */
    CHECK_INT(parse_rc("GET\t/ HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("\r\nGET / HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    /* Any token is a method; the handshake, not the parser, wants GET. */
    CHECK_INT(parse_rc("M-SEARCH / HTTP/1.1\r\n\r\n", NULL), 23);
}

static void test_malformed_target(void)
{
    CHECK_INT(parse_rc("GET /a b HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET  / HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET /\x01 HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET /\x7f HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET /\xc3\xa9 HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET  HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
}

/* ---- parsing: absolute-form targets (RFC 9112 §3.2.2) ---------------------- */

/* Parses msg every way; 1 when it is a complete request whose authority
 * (NULL: none), path and query (NULL: none) are the ones given. */
static int target_is(const char *msg, const char *authority, const char *path, const char *query)
{
    int rc;
    size_t stop;
    if (parse_all_ways(msg, strlen(msg), NULL, &rc, &stop) != 0 || rc != (int)strlen(msg)) return 0;
    if (parse_whole(msg, strlen(msg)) != (int)strlen(msg)) return 0;
    const ws_http_request_t *r = &g_req;
    int a_ok = authority ? r->authority && r->authority_len == strlen(authority) &&
                           memcmp(r->authority, authority, r->authority_len) == 0
                         : r->authority == NULL && r->authority_len == 0;
    int q_ok = query ? r->query && r->query_len == strlen(query) &&
                       memcmp(r->query, query, r->query_len) == 0
                     : r->query == NULL && r->query_len == 0;
    return a_ok && q_ok && r->path_len == strlen(path) && memcmp(r->path, path, r->path_len) == 0;
}

static void test_absolute_form_reduced_to_path(void)
{
    CHECK(target_is("GET http://a/ HTTP/1.1\r\n\r\n", "a", "/", NULL));
    CHECK(target_is("GET http://server.example.com/chat?x=1 HTTP/1.1\r\nHost: h\r\n\r\n",
                    "server.example.com", "/chat", "x=1"));
    CHECK(target_is("GET https://h:8443/ws HTTP/1.1\r\n\r\n", "h:8443", "/ws", NULL));
    CHECK(target_is("GET HTTPS://H/ws HTTP/1.1\r\n\r\n", "H", "/ws", NULL));   /* scheme any case */
    CHECK(target_is("GET hTtP://[::1]:80/a/b? HTTP/1.1\r\n\r\n", "[::1]:80", "/a/b", ""));
    /* An empty path is "/" (RFC 9110 §4.2.3). */
    CHECK(target_is("GET http://h HTTP/1.1\r\n\r\n", "h", "/", NULL));
    CHECK(target_is("GET http://h?q=/x HTTP/1.1\r\n\r\n", "h", "/", "q=/x"));
    CHECK(target_is("GET http://h//x HTTP/1.1\r\n\r\n", "h", "//x", NULL));
    /* The target stays as sent; origin-form has no authority. */
    const char *m = "GET http://h/ws?a HTTP/1.1\r\n\r\n";
    CHECK_INT(parse_whole(m, strlen(m)), strlen(m));
    CHECK(g_req.target == g_buf + 4 && g_req.target_len == 13);
    CHECK(g_req.path == g_buf + 12 && g_req.query == g_buf + 16);
    CHECK(target_is("GET /ws HTTP/1.1\r\n\r\n", NULL, "/ws", NULL));
}

static void test_absolute_form_refused(void)
{
    int rc = parse_rc("GET ws://h/ws HTTP/1.1\r\n\r\n", NULL);
    CHECK_INT(rc, WS_E_HTTP_TARGET);
    CHECK_INT(ws_err_http_status(rc), 400);
    CHECK_INT(parse_rc("GET wss://h/ws HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_TARGET);
    CHECK_INT(parse_rc("GET ftp://h/ HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_TARGET);
    CHECK_INT(parse_rc("GET http:/h/ HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_TARGET);
    CHECK_INT(parse_rc("GET http:h HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_TARGET);
    CHECK_INT(parse_rc("GET httpx://h/ HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_TARGET);
    CHECK_INT(parse_rc("GET http:// HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_TARGET);      /* no host */
    CHECK_INT(parse_rc("GET http:///ws HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_TARGET);
    CHECK_INT(parse_rc("GET http://:80/ws HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_TARGET);
    CHECK_INT(parse_rc("GET http://?q HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_TARGET);
    CHECK_INT(parse_rc("GET http://u:p@h/ws HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_TARGET); /* userinfo */
    CHECK_INT(parse_rc("GET http://h#f/ws HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_TARGET);
    CHECK_INT(parse_rc("GET http://h\\x/ HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_TARGET);
    CHECK_INT(parse_rc("GET h/ws HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_TARGET);
    CHECK_INT(parse_rc("OPTIONS * HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_TARGET);       /* asterisk-form */
    CHECK_INT(parse_rc("CONNECT h:443 HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_TARGET);   /* authority-form */
}

/* RFC 9112 §3.2.2: the target's authority, not Host, names the host the
 * handshake is for; Host must still be there, once. */
static void test_validate_absolute_form(void)
{
    ws_handshake_t hs;
    const char *m = "GET http://server.example.com/chat HTTP/1.1\r\n" GOOD "\r\n";
    CHECK_INT(validate(m, &hs), WS_OK);
    CHECK(hs.host_len == 18 && memcmp(hs.host, "server.example.com", 18) == 0);
    CHECK(hs.host == g_req.authority);
    CHECK(g_req.path_len == 5 && memcmp(g_req.path, "/chat", 5) == 0);
    m = "GET https://other.example:444/chat HTTP/1.1\r\n" GOOD "\r\n";
    CHECK_INT(validate(m, &hs), WS_OK);
    CHECK(hs.host_len == 17 && memcmp(hs.host, "other.example:444", 17) == 0);
    CHECK_INT(validate("GET http://h/chat HTTP/1.1\r\n" H_UPG H_CONN H_KEY H_VER "\r\n", NULL),
              WS_E_HTTP_NO_HOST);
    CHECK_INT(validate("GET http://h/chat HTTP/1.1\r\nHost: h\r\n" GOOD "\r\n", NULL),
              WS_E_HTTP_NO_HOST);
}

static void test_version_later_1x_is_1_1(void)
{
    int rc;
    size_t stop;
    const char *m = "GET / HTTP/1.2\r\n\r\n";
    CHECK_INT(parse_all_ways(m, strlen(m), NULL, &rc, &stop), 0);
    CHECK_INT(rc, strlen(m));
    CHECK_INT(parse_whole(m, strlen(m)), strlen(m));
    CHECK_INT(g_req.minor_version, 1);
    m = "GET / HTTP/1.9\r\n\r\n";
    CHECK_INT(parse_whole(m, strlen(m)), strlen(m));
    CHECK_INT(g_req.minor_version, 1);
    CHECK_INT(validate("GET /chat HTTP/1.2\r\n" GOOD "\r\n", NULL), WS_OK);
    CHECK_INT(validate("GET /chat HTTP/1.7\r\n" GOOD "\r\n", NULL), WS_OK);
}

static void test_version_other_major_refused(void)
{
    int rc = parse_rc("GET / HTTP/2.0\r\n\r\n", NULL);
    CHECK_INT(rc, WS_E_HTTP_VERSION_UNSUPPORTED);
    CHECK_INT(ws_err_http_status(rc), 505);
    CHECK_INT(parse_rc("GET / HTTP/3.0\r\n\r\n", NULL), WS_E_HTTP_VERSION_UNSUPPORTED);
    CHECK_INT(parse_rc("GET / HTTP/0.9\r\n\r\n", NULL), WS_E_HTTP_VERSION_UNSUPPORTED);
    /* The HTTP/2 preface says what is wrong, not that '*' is a bad target. */
    CHECK_INT(parse_rc("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", NULL), WS_E_HTTP_VERSION_UNSUPPORTED);
    char out[512];
    int n = ws_http_error_response(out, sizeof out, 505, ws_err_str(rc));
    CHECK(n > 0 && memcmp(out, "HTTP/1.1 505 HTTP Version Not Supported\r\n", 41) == 0);
    CHECK(memmem(out, (size_t)n, "HTTP/1.1\n", 9) != NULL);     /* the body names what we speak */
}

static void test_malformed_version(void)
{
    CHECK_INT(parse_rc("GET / HTTP/1.x\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET / HTTP/x.1\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET / HTTP/1-1\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET / HTTP/11.\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET / HTTP/2\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET / http/1.1\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET / HTTP/1.1 \r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET /  HTTP/1.1\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET / HTTP/1.10\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);
    CHECK_INT(parse_rc("GET /\r\n\r\n", NULL), WS_E_HTTP_SYNTAX);       /* HTTP/0.9 */
    CHECK_INT(parse_rc("GET / HTTP/1.0\r\n\r\n", NULL), 18);
}

/* ---- header lookup ---------------------------------------------------------- */

static void test_find_header(void)
{
    const char *m = "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\nHOST2: b\r\n\r\n";
    CHECK_INT(parse_whole(m, strlen(m)), strlen(m));
    size_t n = 99;
    const ws_http_header_t *h = ws_http_find_header(&g_req, "X-a", &n);
    CHECK_INT(n, 2);
    CHECK(hdr_eq(h, "X-A", "1"));
    CHECK(ws_http_find_header(&g_req, "host", &n) == &g_req.headers[0] && n == 1);
    CHECK(ws_http_find_header(&g_req, "Hos", &n) == NULL && n == 0);
    CHECK(ws_http_find_header(&g_req, "Origin", NULL) == NULL);
}

static void test_has_token(void)
{
    const char *v = "keep-alive, Upgrade";
    CHECK_INT(ws_http_has_token(v, strlen(v), "upgrade"), 1);
    CHECK_INT(ws_http_has_token(v, strlen(v), "KEEP-ALIVE"), 1);
    CHECK_INT(ws_http_has_token(v, strlen(v), "keep"), 0);
    v = " ,\tUPGRADE\t , ,close,";
    CHECK_INT(ws_http_has_token(v, strlen(v), "upgrade"), 1);
    CHECK_INT(ws_http_has_token(v, strlen(v), "close"), 1);
    CHECK_INT(ws_http_has_token(v, strlen(v), ""), 0);
    v = "upgrade2, xupgrade, up grade";
    CHECK_INT(ws_http_has_token(v, strlen(v), "upgrade"), 0);
    CHECK_INT(ws_http_has_token("upgrade", 6, "upgrade"), 0);    /* len is honoured */
    CHECK_INT(ws_http_has_token("", 0, "upgrade"), 0);
}

static void test_is_upgrade(void)
{
    const char *m = "GET / HTTP/1.1\r\nUpgrade: h2c\r\nUpgrade: WebSocket\r\n\r\n";
    CHECK_INT(parse_whole(m, strlen(m)), strlen(m));
    CHECK_INT(ws_http_is_upgrade(&g_req), 1);
    m = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
    CHECK_INT(parse_whole(m, strlen(m)), strlen(m));
    CHECK_INT(ws_http_is_upgrade(&g_req), 0);
}

/* ---- handshake validation --------------------------------------------------- */

static void test_validate_ok(void)
{
    ws_handshake_t hs;
    CHECK_INT(validate(SAMPLE_REQUEST, &hs), WS_OK);
    CHECK(hs.key_len == 24 && memcmp(hs.key, SAMPLE_KEY, 24) == 0);
    CHECK(hs.host_len == 18 && memcmp(hs.host, "server.example.com", 18) == 0);
    CHECK(hs.origin_len == 18 && memcmp(hs.origin, "http://example.com", 18) == 0);
    CHECK(hs.key >= g_buf && hs.key < g_buf + sizeof g_buf);
    CHECK_INT(validate(GET_LINE GOOD "\r\n", &hs), WS_OK);
    CHECK(hs.origin == NULL && hs.origin_len == 0);
    CHECK_INT(validate(GET_LINE GOOD "\r\n", NULL), WS_OK);
    CHECK_INT(ws_handshake_validate(NULL, &hs), WS_E_INVALID_ARG);
}

static void test_validate_token_lists(void)
{
    CHECK_INT(validate(GET_LINE H_HOST "Upgrade: WebSocket\r\nConnection: keep-alive , \tUPGRADE\r\n"
                       H_KEY H_VER "\r\n", NULL), WS_OK);
    CHECK_INT(validate(GET_LINE H_HOST "upgrade: websocket, h2c\r\nConnection: keep-alive\r\n"
                       "CONNECTION: upgrade\r\n" H_KEY H_VER "\r\n", NULL), WS_OK);
    CHECK_INT(validate(GET_LINE H_HOST "Upgrade: websocket\r\nConnection:Upgrade\r\n"
                       "sec-websocket-key:" SAMPLE_KEY "\r\nsec-websocket-version:13\r\n\r\n",
                       NULL), WS_OK);
}

static void test_validate_method(void)
{
    int rc = validate("POST /chat HTTP/1.1\r\n" GOOD "\r\n", NULL);
    CHECK_INT(rc, WS_E_HTTP_METHOD);
    CHECK_INT(ws_err_http_status(rc), 400);
    CHECK_INT(validate("get /chat HTTP/1.1\r\n" GOOD "\r\n", NULL), WS_E_HTTP_METHOD);
    /* The first rule broken is the one reported. */
    CHECK_INT(validate("HEAD /chat HTTP/1.0\r\n\r\n", NULL), WS_E_HTTP_METHOD);
}

static void test_validate_http10(void)
{
    int rc = validate("GET /chat HTTP/1.0\r\n" GOOD "\r\n", NULL);
    CHECK_INT(rc, WS_E_HTTP_VERSION);
    CHECK_INT(ws_err_http_status(rc), 400);
}

static void test_validate_host(void)
{
    int rc = validate(GET_LINE H_UPG H_CONN H_KEY H_VER "\r\n", NULL);
    CHECK_INT(rc, WS_E_HTTP_NO_HOST);
    CHECK_INT(ws_err_http_status(rc), 400);
    CHECK_INT(validate(GET_LINE "Host: a\r\n" GOOD "\r\n", NULL), WS_E_HTTP_NO_HOST);
    CHECK_INT(validate(GET_LINE "Host:\r\n" H_UPG H_CONN H_KEY H_VER "\r\n", NULL),
              WS_E_HTTP_NO_HOST);
}

static void test_validate_upgrade(void)
{
    int rc = validate(GET_LINE H_HOST H_CONN H_KEY H_VER "\r\n", NULL);
    CHECK_INT(rc, WS_E_HTTP_NO_UPGRADE);
    CHECK_INT(ws_err_http_status(rc), 400);
    CHECK_INT(validate(GET_LINE H_HOST "Upgrade: h2c\r\n" H_CONN H_KEY H_VER "\r\n", NULL),
              WS_E_HTTP_NO_UPGRADE);
    CHECK_INT(validate(GET_LINE H_HOST "Upgrade: websockets\r\n" H_CONN H_KEY H_VER "\r\n", NULL),
              WS_E_HTTP_NO_UPGRADE);
}

static void test_validate_connection(void)
{
    int rc = validate(GET_LINE H_HOST H_UPG "Connection: keep-alive\r\n" H_KEY H_VER "\r\n", NULL);
    CHECK_INT(rc, WS_E_HTTP_NO_CONNECTION);
    CHECK_INT(ws_err_http_status(rc), 400);
    CHECK_INT(validate(GET_LINE H_HOST H_UPG H_KEY H_VER "\r\n", NULL), WS_E_HTTP_NO_CONNECTION);
    CHECK_INT(validate(GET_LINE H_HOST H_UPG "Connection: upgraded\r\n" H_KEY H_VER "\r\n", NULL),
              WS_E_HTTP_NO_CONNECTION);
}

#define KEY_REQ(k) GET_LINE H_HOST H_UPG H_CONN "Sec-WebSocket-Key: " k "\r\n" H_VER "\r\n"

static void test_validate_bad_key(void)
{
    int rc = validate(KEY_REQ("dGhlIHNhbXBsZSBub25jZQ="), NULL);       /* 23 chars */
    CHECK_INT(rc, WS_E_HTTP_BAD_KEY);
    CHECK_INT(ws_err_http_status(rc), 400);
    CHECK_INT(validate(KEY_REQ("dGhlIHNhbXBsZSBub25jZQ==="), NULL), WS_E_HTTP_BAD_KEY);
    CHECK_INT(validate(KEY_REQ("dGhlIHNhbXBsZSBub25jZQ"), NULL), WS_E_HTTP_BAD_KEY);
    CHECK_INT(validate(KEY_REQ("dGhlIHNhbXBsZSBub25j!Q=="), NULL), WS_E_HTTP_BAD_KEY);
    CHECK_INT(validate(KEY_REQ("dGhlIHNhbXBsZSBub25j-Q=="), NULL), WS_E_HTTP_BAD_KEY);  /* url-safe */
    CHECK_INT(validate(KEY_REQ("dGhlIHNhbXBsZSBub2 5jZQ=="), NULL), WS_E_HTTP_BAD_KEY);
    CHECK_INT(validate(KEY_REQ("AAAAAAAAAAAAAAAAAAAA"), NULL), WS_E_HTTP_BAD_KEY);      /* 15 bytes */
    CHECK_INT(validate(KEY_REQ("AAAAAAAAAAAAAAAAAAAA===="), NULL), WS_E_HTTP_BAD_KEY);  /* 15, padded */
    CHECK_INT(validate(KEY_REQ("AAAAAAAAAAAAAAAAAAAAAAA="), NULL), WS_E_HTTP_BAD_KEY);  /* 17 bytes */
    CHECK_INT(validate(KEY_REQ("dGhlIHNhbXBsZSBub25jZR=="), NULL), WS_E_HTTP_BAD_KEY);  /* spare bits */
    CHECK_INT(validate(KEY_REQ(""), NULL), WS_E_HTTP_BAD_KEY);
    CHECK_INT(validate(GET_LINE H_HOST H_UPG H_CONN H_VER "\r\n", NULL), WS_E_HTTP_BAD_KEY);
    CHECK_INT(validate(GET_LINE GOOD H_KEY "\r\n", NULL), WS_E_HTTP_BAD_KEY);           /* twice */
    CHECK_INT(validate(KEY_REQ("AAAAAAAAAAAAAAAAAAAAAA=="), NULL), WS_OK);
    CHECK_INT(validate(KEY_REQ("+/+/+/+/+/+/+/+/+/+/+w=="), NULL), WS_OK);
}

#define VER_REQ(v) GET_LINE H_HOST H_UPG H_CONN H_KEY v "\r\n"

static void test_validate_bad_ws_version(void)
{
    char out[512];
    int rc = validate(VER_REQ("Sec-WebSocket-Version: 8\r\n"), NULL);
    CHECK_INT(rc, WS_E_HTTP_BAD_WS_VERSION);
    int status = ws_err_http_status(rc);
    CHECK_INT(status, 426);
    int n = ws_http_error_response(out, sizeof out, status, ws_err_str(rc));
    CHECK(n > 0);
    CHECK(memmem(out, (size_t)n, "\r\nSec-WebSocket-Version: 13\r\n", 29) != NULL);
    CHECK(memcmp(out, "HTTP/1.1 426 Upgrade Required\r\n", 31) == 0);
    /* Well-formed versions (RFC 6455 §4.1: 0-255, no leading zero) we do not speak. */
    CHECK_INT(validate(VER_REQ("Sec-WebSocket-Version: 0\r\n"), NULL), WS_E_HTTP_BAD_WS_VERSION);
    CHECK_INT(validate(VER_REQ("Sec-WebSocket-Version: 14\r\n"), NULL), WS_E_HTTP_BAD_WS_VERSION);
    CHECK_INT(validate(VER_REQ("Sec-WebSocket-Version: 255\r\n"), NULL), WS_E_HTTP_BAD_WS_VERSION);
    CHECK_INT(validate(VER_REQ("Sec-WebSocket-Version:  13 \r\n"), NULL), WS_OK);
    CHECK_INT(validate(VER_REQ("sec-websocket-version: 13\r\n"), NULL), WS_OK);
}

/* Missing, repeated or malformed is a bad handshake (400), not a version
 * we could negotiate (426). */
static void test_validate_malformed_ws_version(void)
{
    char out[512];
    int rc = validate(VER_REQ(""), NULL);
    CHECK_INT(rc, WS_E_HTTP_WS_VERSION_SYNTAX);
    CHECK_INT(ws_err_http_status(rc), 400);
    int n = ws_http_error_response(out, sizeof out, ws_err_http_status(rc), ws_err_str(rc));
    CHECK(n > 0 && memcmp(out, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
    CHECK(memmem(out, (size_t)n, "Sec-WebSocket-Version must be sent once", 39) != NULL);
    CHECK_INT(validate(VER_REQ(H_VER H_VER), NULL), WS_E_HTTP_WS_VERSION_SYNTAX);
    CHECK_INT(validate(VER_REQ(H_VER "Sec-WebSocket-Version: 8\r\n"), NULL),
              WS_E_HTTP_WS_VERSION_SYNTAX);
    CHECK_INT(validate(VER_REQ("Sec-WebSocket-Version: 13, 8\r\n"), NULL), WS_E_HTTP_WS_VERSION_SYNTAX);
    CHECK_INT(validate(VER_REQ("Sec-WebSocket-Version: 13,\r\n"), NULL), WS_E_HTTP_WS_VERSION_SYNTAX);
    CHECK_INT(validate(VER_REQ("Sec-WebSocket-Version: 013\r\n"), NULL), WS_E_HTTP_WS_VERSION_SYNTAX);
    CHECK_INT(validate(VER_REQ("Sec-WebSocket-Version: 00\r\n"), NULL), WS_E_HTTP_WS_VERSION_SYNTAX);
    CHECK_INT(validate(VER_REQ("Sec-WebSocket-Version: 256\r\n"), NULL), WS_E_HTTP_WS_VERSION_SYNTAX);
    CHECK_INT(validate(VER_REQ("Sec-WebSocket-Version: 1300\r\n"), NULL), WS_E_HTTP_WS_VERSION_SYNTAX);
    CHECK_INT(validate(VER_REQ("Sec-WebSocket-Version: 1 3\r\n"), NULL), WS_E_HTTP_WS_VERSION_SYNTAX);
    CHECK_INT(validate(VER_REQ("Sec-WebSocket-Version: +13\r\n"), NULL), WS_E_HTTP_WS_VERSION_SYNTAX);
    CHECK_INT(validate(VER_REQ("Sec-WebSocket-Version: v13\r\n"), NULL), WS_E_HTTP_WS_VERSION_SYNTAX);
    CHECK_INT(validate(VER_REQ("Sec-WebSocket-Version:\r\n"), NULL), WS_E_HTTP_WS_VERSION_SYNTAX);
}

static void test_validate_body(void)
{
    int rc = validate(GET_LINE GOOD "Content-Length: 5\r\n\r\n", NULL);
    CHECK_INT(rc, WS_E_HTTP_BODY);
    CHECK_INT(ws_err_http_status(rc), 400);
    CHECK_INT(validate(GET_LINE GOOD "Transfer-Encoding: chunked\r\n\r\n", NULL), WS_E_HTTP_BODY);
    CHECK_INT(validate(GET_LINE GOOD "transfer-encoding: identity\r\n\r\n", NULL), WS_E_HTTP_BODY);
    CHECK_INT(validate(GET_LINE GOOD "Content-Length: 0\r\nContent-Length: 1\r\n\r\n", NULL),
              WS_E_HTTP_BODY);
    CHECK_INT(validate(GET_LINE GOOD "Content-Length: 0\r\n\r\n", NULL), WS_OK);
}

/* ---- subprotocol -------------------------------------------------------------- */

static void test_subprotocol_server_order(void)
{
    const char *m = GET_LINE GOOD "Sec-WebSocket-Protocol: superchat\r\n"
                    "Sec-WebSocket-Protocol: foo , chat\r\n\r\n";
    const char *const server[] = { "mqtt", "chat", "superchat" };
    CHECK_INT(parse_whole(m, strlen(m)), strlen(m));
    CHECK_INT(ws_handshake_select_subprotocol(&g_req, server, 3), 1);
    const char *const server2[] = { "superchat", "chat" };
    CHECK_INT(ws_handshake_select_subprotocol(&g_req, server2, 2), 0);
    const char *const server3[] = { NULL, "foo" };
    CHECK_INT(ws_handshake_select_subprotocol(&g_req, server3, 2), 1);
    CHECK_INT(ws_handshake_select_subprotocol(&g_req, server, 0), -1);
}

static void test_subprotocol_case_and_none(void)
{
    const char *m = GET_LINE GOOD "Sec-WebSocket-Protocol: Chat, v2.json\r\n\r\n";
    const char *const server[] = { "chat", "V2.JSON" };
    CHECK_INT(parse_whole(m, strlen(m)), strlen(m));
    CHECK_INT(ws_handshake_select_subprotocol(&g_req, server, 2), -1);
    const char *const server2[] = { "chat", "v2.json" };
    CHECK_INT(ws_handshake_select_subprotocol(&g_req, server2, 2), 1);
    m = GET_LINE GOOD "\r\n";
    CHECK_INT(parse_whole(m, strlen(m)), strlen(m));
    CHECK_INT(ws_handshake_select_subprotocol(&g_req, server2, 2), -1);
}

/* ---- response writers --------------------------------------------------------- */

static void test_handshake_response_format(void)
{
    char out[512];
    const char *want = "HTTP/1.1 101 Switching Protocols\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: " SAMPLE_ACCEPT "\r\n"
                       "\r\n";
    int n = ws_handshake_response(out, sizeof out, SAMPLE_KEY, 24, NULL, NULL);
    CHECK_INT(n, strlen(want));
    CHECK_MEM(out, want, (size_t)n);
    want = "HTTP/1.1 101 Switching Protocols\r\n"
           "Upgrade: websocket\r\n"
           "Connection: Upgrade\r\n"
           "Sec-WebSocket-Accept: " SAMPLE_ACCEPT "\r\n"
           "Sec-WebSocket-Protocol: chat\r\n"
           "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
           "\r\n";
    n = ws_handshake_response(out, sizeof out, SAMPLE_KEY, 24, "chat",
                              "permessage-deflate; server_no_context_takeover");
    CHECK_INT(n, strlen(want));
    CHECK_MEM(out, want, (size_t)n);
    CHECK_INT(ws_handshake_response(out, sizeof out, SAMPLE_KEY, 24, "a\r\nX: y", NULL),
              WS_E_INVALID_ARG);
}

static void test_error_response_format(void)
{
    char out[512];
    const char *want = "HTTP/1.1 400 Bad Request\r\n"
                       "Content-Type: text/plain; charset=utf-8\r\n"
                       "Content-Length: 8\r\n"
                       "Connection: close\r\n"
                       "\r\n"
                       "bad key\n";
    int n = ws_http_error_response(out, sizeof out, 400, "bad key");
    CHECK_INT(n, strlen(want));
    CHECK_MEM(out, want, (size_t)n);
    want = "HTTP/1.1 405 Method Not Allowed\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n"
           "Content-Length: 19\r\n"
           "Allow: GET\r\n"
           "Connection: close\r\n"
           "\r\n"
           "Method Not Allowed\n";
    n = ws_http_error_response(out, sizeof out, 405, NULL);
    CHECK_INT(n, strlen(want));
    CHECK_MEM(out, want, (size_t)n);
    const int statuses[] = { 400, 403, 404, 405, 426, 431, 500, 503 };
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        n = ws_http_error_response(out, sizeof out, statuses[i], "why");
        CHECK(n > 0);
        CHECK(memmem(out, (size_t)n, "\r\nConnection: close\r\n", 21) != NULL);
        CHECK(memcmp(out + n - 8, "\r\n\r\nwhy\n", 8) == 0);
        CHECK(strcmp(ws_http_status_text(statuses[i]), "Unknown") != 0);
    }
    CHECK_INT(ws_http_error_response(out, sizeof out, 42, "x"), WS_E_INVALID_ARG);
}

static void test_response_head_format(void)
{
    char out[512];
    const char *want = "HTTP/1.1 200 OK\r\n"
                       "Content-Type: text/plain\r\n"
                       "Content-Length: 1234567890123\r\n"
                       "Connection: keep-alive\r\n"
                       "Cache-Control: no-store\r\n"
                       "\r\n";
    int n = ws_http_response_head(out, sizeof out, 200, "text/plain", 1234567890123ULL, 1,
                                  "Cache-Control: no-store\r\n");
    CHECK_INT(n, strlen(want));
    CHECK_MEM(out, want, (size_t)n);
    want = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
    n = ws_http_response_head(out, sizeof out, 204, NULL, 0, 0, NULL);
    CHECK_INT(n, strlen(want));
    CHECK_MEM(out, want, (size_t)n);
    want = "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 0\r\n"
           "Connection: close\r\n\r\n";
    n = ws_http_response_head(out, sizeof out, 404, "text/html", 0, 0, "");
    CHECK_INT(n, strlen(want));
    CHECK_MEM(out, want, (size_t)n);
    CHECK_INT(ws_http_response_head(out, sizeof out, 200, "a\nb", 0, 0, NULL), WS_E_INVALID_ARG);
}

static void test_status_text(void)
{
    CHECK_STR(ws_http_status_text(101), "Switching Protocols");
    CHECK_STR(ws_http_status_text(400), "Bad Request");
    CHECK_STR(ws_http_status_text(426), "Upgrade Required");
    CHECK_STR(ws_http_status_text(431), "Request Header Fields Too Large");
    CHECK_STR(ws_http_status_text(503), "Service Unavailable");
    CHECK_STR(ws_http_status_text(299), "Unknown");
    CHECK_STR(ws_http_status_text(-1), "Unknown");
}

/* Every writer, at every capacity below the length it needs: WS_E_NOSPACE
 * and not one byte written past the capacity. */
enum { W_101, W_ERR, W_426, W_HEAD, W_COUNT };

static int write_one(int which, char *out, size_t cap)
{
    switch (which) {
    case W_101:  return ws_handshake_response(out, cap, SAMPLE_KEY, 24, "chat", "permessage-deflate");
    case W_ERR:  return ws_http_error_response(out, cap, 400, "nope");
    case W_426:  return ws_http_error_response(out, cap, 426, NULL);
    default:     return ws_http_response_head(out, cap, 200, "text/plain", 12, 1, "X-A: b\r\n");
    }
}

static void test_nospace(void)
{
    char out[512];
    for (int w = 0; w < W_COUNT; w++) {
        int full = write_one(w, out, sizeof out);
        CHECK(full > 0);
        CHECK_INT(write_one(w, NULL, 0), WS_E_NOSPACE);
        for (size_t cap = 0; cap < (size_t)full; cap++) {
            memset(out, '#', sizeof out);
            CHECK_INT(write_one(w, out, cap), WS_E_NOSPACE);
            for (size_t i = cap; i < sizeof out; i++) CHECK_MSG(out[i] == '#', "wrote at %zu", i);
        }
        memset(out, '#', sizeof out);
        CHECK_INT(write_one(w, out, (size_t)full), full);
        CHECK(out[full] == '#');
    }
}

int main(void)
{
    RUN(test_accept_rfc_vector);
    RUN(test_sample_all_ways);
    RUN(test_sample_fields);
    RUN(test_bare_lf_and_mixed);
    RUN(test_path_query_split);
    RUN(test_trailing_bytes_not_consumed);
    RUN(test_want_more);
    RUN(test_limit_request_line);
    RUN(test_limit_header_count);
    RUN(test_limit_header_count_hard_cap);
    RUN(test_limit_header_bytes);
    RUN(test_parse_repeat_and_misuse);
    RUN(test_malformed_header_syntax);
    RUN(test_malformed_obs_fold);
    RUN(test_malformed_control_chars);
    RUN(test_value_ows_trimmed);
    RUN(test_malformed_method);
    RUN(test_malformed_target);
    RUN(test_absolute_form_reduced_to_path);
    RUN(test_absolute_form_refused);
    RUN(test_version_later_1x_is_1_1);
    RUN(test_version_other_major_refused);
    RUN(test_malformed_version);
    RUN(test_find_header);
    RUN(test_has_token);
    RUN(test_is_upgrade);
    RUN(test_validate_ok);
    RUN(test_validate_token_lists);
    RUN(test_validate_method);
    RUN(test_validate_http10);
    RUN(test_validate_host);
    RUN(test_validate_upgrade);
    RUN(test_validate_connection);
    RUN(test_validate_bad_key);
    RUN(test_validate_bad_ws_version);
    RUN(test_validate_malformed_ws_version);
    RUN(test_validate_absolute_form);
    RUN(test_validate_body);
    RUN(test_subprotocol_server_order);
    RUN(test_subprotocol_case_and_none);
    RUN(test_handshake_response_format);
    RUN(test_error_response_format);
    RUN(test_response_head_format);
    RUN(test_status_text);
    RUN(test_nospace);
    return test_report("http");
}
