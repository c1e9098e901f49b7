/* test_nodemsg.c — the backplane payloads (nodemsg.h): the exact bytes each
 * writer produces (other nodes and backends read them: the format is a
 * contract, docs/protocol.md "Backplane"), and reading them back. */
#include "test.h"

#include "nodemsg.h"

static json_span_t S(const char *s) { return (json_span_t){ (const uint8_t *)s, strlen(s) }; }
static const json_span_t NONE = { NULL, 0 };

static void check_buf(ws_buf_t *b, const char *want, int line)
{
    if (b->len != strlen(want) || memcmp(b->data, want, b->len) != 0) {
        fprintf(stderr, "line %d: got %.*s\n     want %s\n", line, (int)b->len, (const char *)b->data, want);
        CHECK(0);
    }
    b->len = 0;
}
#define BUF_IS(b, want) check_buf(b, want, __LINE__)

static void test_delivery_bytes(void)
{
    ws_buf_t b = {0};
    envelope_delivery_t d = { .event = S("chat"), .data = S("{\"t\":1}"), .from = S("c1"),
                              .to = ENVELOPE_TO_ROOM, .to_name = S("lobby") };
    nodemsg_put_delivery(&b, &d, S("n0"), 0, NONE);
    BUF_IS(&b, "{\"event\":\"chat\",\"data\":{\"t\":1},\"from\":\"c1\",\"to\":\"room:lobby\",\"node\":\"n0\"}");
    nodemsg_put_delivery(&b, &d, S("n0"), 12, NONE);
    BUF_IS(&b, "{\"event\":\"chat\",\"data\":{\"t\":1},\"from\":\"c1\",\"to\":\"room:lobby\",\"node\":\"n0\",\"seq\":12}");
    envelope_delivery_t e = { .event = S("a\"b"), .from = S("c1"), .to = ENVELOPE_TO_BACKEND };
    nodemsg_put_delivery(&b, &e, S("n0"), 0, S("bob\n"));
    BUF_IS(&b, "{\"event\":\"a\\\"b\",\"data\":null,\"from\":\"c1\",\"node\":\"n0\",\"user\":\"bob\\n\"}");
    nodemsg_put_delivery(&b, &e, S("n0"), 0, S(""));            /* an empty sub is still a user */
    BUF_IS(&b, "{\"event\":\"a\\\"b\",\"data\":null,\"from\":\"c1\",\"node\":\"n0\",\"user\":\"\"}");
    ws_buf_free(&b);
}

static void test_lifecycle_bytes(void)
{
    ws_buf_t b = {0};
    nodemsg_put_trailer(&b, S("n0"), 9007199254740991ull);
    BUF_IS(&b, "{\"node\":\"n0\",\"seq\":9007199254740991}");
    nodemsg_put_heartbeat(&b, S("n0"), 3, 5000);
    BUF_IS(&b, "{\"op\":\"node\",\"node\":\"n0\",\"connections\":3,\"interval_ms\":5000}");
    nodemsg_put_disconnect(&b, S("c1"), S("n0"), 1001);
    BUF_IS(&b, "{\"op\":\"disconnect\",\"conn\":\"c1\",\"node\":\"n0\",\"code\":1001}");
    nodemsg_put_connect(&b, S("c1"), S("n0"), S("127.0.0.1:5"), NONE);
    nodemsg_put_connect_end(&b);
    BUF_IS(&b, "{\"op\":\"connect\",\"conn\":\"c1\",\"node\":\"n0\",\"remote\":\"127.0.0.1:5\",\"headers\":{}}");
    json_span_t xff[2] = { S("1.2.3.4"), S("5.6.7.8 \"x\"") }, ua[1] = { S("curl") };
    nodemsg_put_connect(&b, S("c1"), S("n0"), S("[::1]:5"), S("al"));
    nodemsg_put_header(&b, 1, S("X-Forwarded-For"), xff, 2);
    nodemsg_put_header(&b, 0, S("User-Agent"), ua, 1);
    nodemsg_put_connect_end(&b);
    BUF_IS(&b, "{\"op\":\"connect\",\"conn\":\"c1\",\"node\":\"n0\",\"remote\":\"[::1]:5\",\"user\":\"al\","
               "\"headers\":{\"X-Forwarded-For\":\"1.2.3.4, 5.6.7.8 \\\"x\\\"\",\"User-Agent\":\"curl\"}}");
    ws_buf_free(&b);
}

static void test_read_back(void)
{
    ws_buf_t b = {0};
    envelope_delivery_t d = { .event = S("chat"), .data = S("[1]"), .from = S("c1"),
                              .to = ENVELOPE_TO_CONN, .to_name = S("c2") };
    nodemsg_put_delivery(&b, &d, S("n0"), 5, S("u"));
    nodemsg_t m;
    CHECK(nodemsg_parse(b.data, b.len, &m));
    json_span_t v;
    uint64_t seq;
    CHECK(nodemsg_plain_string(m.node, &v) && v.len == 2 && memcmp(v.p, "n0", 2) == 0);
    CHECK(nodemsg_plain_string(m.to, &v) && v.len == 7 && memcmp(v.p, "conn:c2", 7) == 0);
    CHECK(nodemsg_seq(m.seq, &seq) && seq == 5);
    CHECK(m.data.len == 3 && memcmp(m.data.p, "[1]", 3) == 0);
    CHECK(m.user.len == 3);
    CHECK(!m.op.len && !m.except.len);
    ws_buf_free(&b);
    CHECK(!nodemsg_parse((const uint8_t *)"[1]", 3, &m));            /* not an object */
    CHECK(!nodemsg_parse((const uint8_t *)"{\"a\":\"\xff\"}", 9, &m));  /* not UTF-8 */
    CHECK(!nodemsg_seq(S("0"), &seq) && !nodemsg_seq(S("01"), &seq) && !nodemsg_seq(S("9007199254740992"), &seq));
}

static void test_close_reason(void)
{
    char why[NODEMSG_REASON_MAX + 2];
    CHECK_INT(nodemsg_close_reason(NONE, why), 0);
    CHECK_INT(nodemsg_close_reason(S("4000"), why), SIZE_MAX);
    CHECK_INT(nodemsg_close_reason(S("\"bye\\n\""), why), 4);
    CHECK(memcmp(why, "bye\n", 4) == 0);
    /* 62 two-byte characters: 124 bytes, cut to 122 (a whole character) */
    char big[2 + 62 * 2 + 1] = "\"";
    for (int i = 0; i < 62; i++) memcpy(big + 1 + 2 * i, "\xc3\xa9", 2);
    big[1 + 124] = '"';
    CHECK_INT(nodemsg_close_reason((json_span_t){ (const uint8_t *)big, 126 }, why), 122);
}

int main(void)
{
    RUN(test_delivery_bytes);
    RUN(test_lifecycle_bytes);
    RUN(test_read_back);
    RUN(test_close_reason);
    return test_report("nodemsg");
}
