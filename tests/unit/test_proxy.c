/* test_proxy.c — proto/ws_proxy.c: PROXY protocol v1 and v2 headers, fed
 * whole, at every split point and byte by byte, with the bytes after the
 * header left unconsumed; and every error. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "test.h"
#include "ws_proxy.h"
#include "ws_status.h"

#define SIG "\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A"
#define AFTER "GET /ws HTTP/1.1\r\n"   /* what follows the header on the wire */

typedef struct vec {
    const char *name;
    const uint8_t *bytes;
    size_t len;                 /* the header, without AFTER */
} vec_t;

/* v2 TCP4 192.0.2.1:51234 -> 198.51.100.2:443 */
static const uint8_t v2_tcp4[] = SIG "\x21\x11\x00\x0C"
    "\xC0\x00\x02\x01" "\xC6\x33\x64\x02" "\xC8\x22" "\x01\xBB";
/* v2 TCP6 2001:db8::1:51234 -> 2001:db8::2:443 */
static const uint8_t v2_tcp6[] = SIG "\x21\x21\x00\x24"
    "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
    "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02"
    "\xC8\x22" "\x01\xBB";
/* v2 TCP4 with TLVs after the addresses (ALPN "h2", a NOOP): skipped. */
static const uint8_t v2_tlv[] = SIG "\x21\x11\x00\x16"
    "\x0A\x00\x00\x07" "\x0A\x00\x00\x01" "\x00\x50" "\x1F\x90"
    "\x01\x00\x02" "h2" "\x04\x00\x02" "\x00\x00";
/* v2 LOCAL as HAProxy's health checks send it: family UNSPEC, no addresses. */
static const uint8_t v2_local[] = SIG "\x20\x00\x00\x00";
/* LOCAL with an address block: the addresses are ignored. */
static const uint8_t v2_local_addr[] = SIG "\x20\x11\x00\x0C"
    "\x01\x02\x03\x04" "\x05\x06\x07\x08" "\x00\x01" "\x00\x02";

static const char v1_tcp4[] = "PROXY TCP4 192.0.2.1 198.51.100.2 51234 443\r\n";
static const char v1_tcp6[] = "PROXY TCP6 2001:db8::1 2001:db8::2 51234 443\r\n";
static const char v1_unknown[] = "PROXY UNKNOWN\r\n";
/* The longest line the spec allows: 107 bytes. */
static const char v1_longest[] =
    "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
static const char v1_port0[] = "PROXY TCP4 10.1.2.3 10.0.0.1 0 65535\r\n";

#define V(n, b) { n, (const uint8_t *)(b), sizeof (b) - 1 }

/* Feeds h (a header followed by AFTER) cut at `cut` (0: whole; SIZE_MAX: one
 * byte at a time) and checks the header's length, that nothing past it was
 * consumed, and returns the result. */
static int feed(const uint8_t *h, size_t n, size_t cut, ws_proxy_result_t *r, size_t *consumed)
{
    ws_proxy_parser_t p;
    ws_proxy_init(&p);
    size_t off = 0;
    int rc = WS_E_WANT_MORE;
    while (off < n && rc == WS_E_WANT_MORE) {
        size_t step = cut == SIZE_MAX ? 1 : cut && off < cut ? cut - off : n - off;
        size_t used = 0;
        rc = ws_proxy_parse(&p, h + off, step, &used, r);
        if (rc == WS_E_WANT_MORE && used != step) return -999;   /* must take all it was given */
        off += used;
    }
    *consumed = off;
    return rc;
}

static void check_vector(const vec_t *v, ws_proxy_result_t *want)
{
    uint8_t wire[256];
    memcpy(wire, v->bytes, v->len);
    memcpy(wire + v->len, AFTER, sizeof AFTER - 1);
    size_t n = v->len + sizeof AFTER - 1;
    size_t cuts[2 + 256];
    size_t nc = 0;
    cuts[nc++] = 0;
    cuts[nc++] = SIZE_MAX;
    for (size_t k = 1; k < n; k++) cuts[nc++] = k;
    for (size_t i = 0; i < nc; i++) {
        ws_proxy_result_t r;
        size_t consumed = 0;
        int rc = feed(wire, n, cuts[i], &r, &consumed);
        CHECK_MSG(rc == (int)v->len, "%s cut %zu: rc %d, want %zu", v->name, cuts[i], rc, v->len);
        CHECK_MSG(consumed == v->len, "%s cut %zu: consumed %zu", v->name, cuts[i], consumed);
        CHECK_MSG(r.kind == want->kind && r.family == want->family && r.port == want->port &&
                  r.version == want->version &&
                  memcmp(r.addr, want->addr, r.family == AF_INET6 ? 16 : 4) == 0,
                  "%s cut %zu: other result", v->name, cuts[i]);
    }
}

static ws_proxy_result_t addr4(const char *a, uint16_t port, uint8_t version)
{
    ws_proxy_result_t r;
    memset(&r, 0, sizeof r);
    r.kind = WS_PROXY_ADDR;
    r.family = AF_INET;
    inet_pton(AF_INET, a, r.addr);
    r.port = port;
    r.version = version;
    return r;
}

static ws_proxy_result_t addr6(const char *a, uint16_t port, uint8_t version)
{
    ws_proxy_result_t r = addr4("0.0.0.0", port, version);
    r.family = AF_INET6;
    inet_pton(AF_INET6, a, r.addr);
    return r;
}

static ws_proxy_result_t local(uint8_t version)
{
    ws_proxy_result_t r;
    memset(&r, 0, sizeof r);
    r.kind = WS_PROXY_LOCAL;
    r.version = version;
    return r;
}

static void test_v2_tcp4(void)
{
    vec_t v = V("v2 tcp4", v2_tcp4);
    ws_proxy_result_t want = addr4("192.0.2.1", 51234, 2);
    check_vector(&v, &want);
}

static void test_v2_tcp6(void)
{
    vec_t v = V("v2 tcp6", v2_tcp6);
    ws_proxy_result_t want = addr6("2001:db8::1", 51234, 2);
    check_vector(&v, &want);
}

static void test_v2_tlvs_skipped(void)
{
    vec_t v = V("v2 tlv", v2_tlv);
    ws_proxy_result_t want = addr4("10.0.0.7", 80, 2);
    check_vector(&v, &want);
}

static void test_v2_local(void)
{
    vec_t v = V("v2 local", v2_local);
    ws_proxy_result_t want = local(2);
    check_vector(&v, &want);
    vec_t w = V("v2 local with addresses", v2_local_addr);
    check_vector(&w, &want);
}

static void test_v1_tcp4(void)
{
    vec_t v = V("v1 tcp4", v1_tcp4);
    ws_proxy_result_t want = addr4("192.0.2.1", 51234, 1);
    check_vector(&v, &want);
    vec_t w = V("v1 port 0", v1_port0);
    want = addr4("10.1.2.3", 0, 1);
    check_vector(&w, &want);
}

static void test_v1_tcp6(void)
{
    vec_t v = V("v1 tcp6", v1_tcp6);
    ws_proxy_result_t want = addr6("2001:db8::1", 51234, 1);
    check_vector(&v, &want);
}

static void test_v1_unknown_is_local(void)
{
    vec_t v = V("v1 unknown", v1_unknown);
    ws_proxy_result_t want = local(1);
    check_vector(&v, &want);
    CHECK_INT(sizeof v1_longest - 1, WS_PROXY_V1_MAX_LEN);
    vec_t w = V("v1 longest", v1_longest);
    check_vector(&w, &want);
}

/* An error: whole, and byte by byte (the error comes at the same byte or
 * earlier, never later than the whole feed finds it); and it is sticky. */
static int error_of(const void *h, size_t n)
{
    ws_proxy_result_t r;
    size_t consumed;
    int whole = feed(h, n, 0, &r, &consumed);
    int bytewise = feed(h, n, SIZE_MAX, &r, &consumed);
    if (whole != bytewise) return -998;
    ws_proxy_parser_t p;
    ws_proxy_init(&p);
    size_t used;
    int rc = ws_proxy_parse(&p, h, n, &used, &r);
    if (rc < WS_E_WANT_MORE && ws_proxy_parse(&p, (const uint8_t *)v1_tcp4, sizeof v1_tcp4 - 1, &used, &r) != rc)
        return -997;
    return whole;
}

#define ERR(bytes) error_of(bytes, sizeof (bytes) - 1)

static void test_errors_signature(void)
{
    CHECK_INT(ERR("GET /ws HTTP/1.1\r\n"), WS_E_PROXY_SIGNATURE);
    CHECK_INT(ERR("PROXX TCP4"), WS_E_PROXY_SIGNATURE);
    CHECK_INT(ERR("proxy TCP4"), WS_E_PROXY_SIGNATURE);
    CHECK_INT(ERR("\x16\x03\x01\x02\x00"), WS_E_PROXY_SIGNATURE);   /* a TLS ClientHello */
    CHECK_INT(ERR("\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x55\x0A\x21\x11"), WS_E_PROXY_SIGNATURE);
    CHECK_INT(ERR("\x0D\x0A\x0D\x0A\x01"), WS_E_PROXY_SIGNATURE);
    /* A failure comes at the first byte that cannot fit, not after more. */
    ws_proxy_parser_t p;
    ws_proxy_result_t r;
    size_t used;
    ws_proxy_init(&p);
    CHECK_INT(ws_proxy_parse(&p, (const uint8_t *)"PRO", 3, &used, &r), WS_E_WANT_MORE);
    CHECK_INT(ws_proxy_parse(&p, (const uint8_t *)"Z", 1, &used, &r), WS_E_PROXY_SIGNATURE);
}

static void test_errors_v2(void)
{
    CHECK_INT(ERR(SIG "\x11\x11\x00\x0C" "12345678abcd"), WS_E_PROXY_VERSION);   /* version 1 */
    CHECK_INT(ERR(SIG "\x31\x11\x00\x0C" "12345678abcd"), WS_E_PROXY_VERSION);   /* version 3 */
    CHECK_INT(ERR(SIG "\x22\x11\x00\x0C" "12345678abcd"), WS_E_PROXY_VERSION);   /* command 2 */
    CHECK_INT(ERR(SIG "\x21\x31\x00\xD8"), WS_E_PROXY_FAMILY);                 /* UNIX */
    CHECK_INT(ERR(SIG "\x21\x12\x00\x0C" "12345678abcd"), WS_E_PROXY_FAMILY);   /* UDP */
    CHECK_INT(ERR(SIG "\x21\x00\x00\x00"), WS_E_PROXY_FAMILY);                 /* PROXY + UNSPEC */
    CHECK_INT(ERR(SIG "\x21\x10\x00\x0C" "12345678abcd"), WS_E_PROXY_FAMILY);   /* INET, no transport */
    CHECK_INT(ERR(SIG "\x21\x41\x00\x0C" "12345678abcd"), WS_E_PROXY_FAMILY);   /* family 4 */
    CHECK_INT(ERR(SIG "\x20\x41\x00\x00"), WS_E_PROXY_FAMILY);                 /* even with LOCAL */
    CHECK_INT(ERR(SIG "\x20\x13\x00\x00"), WS_E_PROXY_FAMILY);                 /* transport 3 */
    CHECK_INT(ERR(SIG "\x21\x11\x00\x0B" "12345678abc"), WS_E_PROXY_LENGTH);    /* short TCP4 block */
    CHECK_INT(ERR(SIG "\x21\x21\x00\x0C" "12345678abcd"), WS_E_PROXY_LENGTH);   /* TCP6 in 12 bytes */
    CHECK_INT(ERR(SIG "\x21\x21\x00\x23"), WS_E_PROXY_LENGTH);                 /* 35 < 36 */
    CHECK_INT(ERR(SIG "\x21\x11\x0F\xF1"), WS_E_PROXY_TOO_LONG);               /* 16 + 4081 */
    CHECK_INT(ERR(SIG "\x20\x00\xFF\xFF"), WS_E_PROXY_TOO_LONG);
    /* The largest accepted header: 4096 bytes, TLVs skipped. */
    static uint8_t big[WS_PROXY_V2_MAX_LEN + 8];
    memset(big, 0, sizeof big);
    memcpy(big, v2_tcp4, 16);
    big[14] = (WS_PROXY_V2_MAX_LEN - 16) >> 8;
    big[15] = (WS_PROXY_V2_MAX_LEN - 16) & 0xFF;
    ws_proxy_result_t r;
    size_t consumed;
    CHECK_INT(feed(big, sizeof big, 0, &r, &consumed), WS_PROXY_V2_MAX_LEN);
    CHECK_INT(consumed, WS_PROXY_V2_MAX_LEN);
    CHECK_INT(feed(big, sizeof big, 100, &r, &consumed), WS_PROXY_V2_MAX_LEN);
}

static void test_errors_v1(void)
{
    CHECK_INT(ERR("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), WS_E_PROXY_SYNTAX);      /* bare LF */
    CHECK_INT(ERR("PROXY TCP4 1.2.3.4\rx"), WS_E_PROXY_SYNTAX);                 /* CR alone */
    CHECK_INT(ERR("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"), WS_E_PROXY_SYNTAX);  /* two spaces */
    CHECK_INT(ERR("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"), WS_E_PROXY_SYNTAX);  /* trailing space */
    CHECK_INT(ERR("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), WS_E_PROXY_SYNTAX); /* six fields */
    CHECK_INT(ERR("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), WS_E_PROXY_SYNTAX);     /* four */
    CHECK_INT(ERR("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"), WS_E_PROXY_SYNTAX);     /* bad address */
    CHECK_INT(ERR("PROXY TCP4 1.2.3.4 5.6.7.256 1 2\r\n"), WS_E_PROXY_SYNTAX);
    CHECK_INT(ERR("PROXY TCP4 ::1 ::1 1 2\r\n"), WS_E_PROXY_SYNTAX);            /* family mismatch */
    CHECK_INT(ERR("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"), WS_E_PROXY_SYNTAX);
    CHECK_INT(ERR("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), WS_E_PROXY_SYNTAX); /* port range */
    CHECK_INT(ERR("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"), WS_E_PROXY_SYNTAX);  /* leading zero */
    CHECK_INT(ERR("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n"), WS_E_PROXY_SYNTAX);
    CHECK_INT(ERR("PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n"), WS_E_PROXY_SYNTAX);
    CHECK_INT(ERR("PROXY \r\n"), WS_E_PROXY_FAMILY);                        /* no protocol field */
    CHECK_INT(ERR("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"), WS_E_PROXY_FAMILY);
    CHECK_INT(ERR("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), WS_E_PROXY_FAMILY);
    CHECK_INT(ERR("PROXY UNKNOWNX\r\n"), WS_E_PROXY_FAMILY);
    CHECK_INT(ERR("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\x00\r\n"), WS_E_PROXY_SYNTAX);  /* NUL */
    CHECK_INT(ERR("PROXY TCP4 1.2.3.4 5.6.7.8 1 \xC3\xA9\r\n"), WS_E_PROXY_SYNTAX);
    /* 107 bytes without the end of the line: too long at the 108th. */
    char line[WS_PROXY_V1_MAX_LEN + 3];
    memset(line, 'x', sizeof line);
    memcpy(line, "PROXY UNKNOWN ", 14);
    memcpy(line + WS_PROXY_V1_MAX_LEN + 1, "\r\n", 2);
    CHECK_INT(error_of(line, sizeof line), WS_E_PROXY_TOO_LONG);
    ws_proxy_parser_t p;
    ws_proxy_result_t r;
    size_t used;
    ws_proxy_init(&p);
    CHECK_INT(ws_proxy_parse(&p, (const uint8_t *)line, WS_PROXY_V1_MAX_LEN, &used, &r), WS_E_WANT_MORE);
    CHECK_INT(used, WS_PROXY_V1_MAX_LEN);
    CHECK_INT(ws_proxy_parse(&p, (const uint8_t *)"\r\n", 2, &used, &r), WS_E_PROXY_TOO_LONG);
}

/* A truncated header is not an error for the parser: the caller decides at
 * EOF or at its deadline.  Every proper prefix wants more and takes it all. */
static void test_truncated_wants_more(void)
{
    const vec_t vs[] = { V("v2 tcp6", v2_tcp6), V("v1 tcp4", v1_tcp4), V("v2 local", v2_local) };
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        for (size_t k = 0; k < vs[i].len; k++) {
            ws_proxy_parser_t p;
            ws_proxy_result_t r;
            size_t used = 99;
            ws_proxy_init(&p);
            CHECK_INT(ws_proxy_parse(&p, vs[i].bytes, k, &used, &r), WS_E_WANT_MORE);
            CHECK_INT(used, k);
        }
    }
}

static void test_error_strings(void)
{
    for (int e = WS_E_PROXY_SYNTAX; e <= WS_E_PROXY_SIGNATURE; e++) {
        CHECK_MSG(strstr(ws_err_str(e), "PROXY") != NULL, "%d: %s", e, ws_err_str(e));
        CHECK_INT(ws_err_close_code(e), 0);
        CHECK_INT(ws_err_http_status(e), 0);
    }
}

int main(void)
{
    RUN(test_v2_tcp4);
    RUN(test_v2_tcp6);
    RUN(test_v2_tlvs_skipped);
    RUN(test_v2_local);
    RUN(test_v1_tcp4);
    RUN(test_v1_tcp6);
    RUN(test_v1_unknown_is_local);
    RUN(test_errors_signature);
    RUN(test_errors_v2);
    RUN(test_errors_v1);
    RUN(test_truncated_wants_more);
    RUN(test_error_strings);
    return test_report("proxy");
}
