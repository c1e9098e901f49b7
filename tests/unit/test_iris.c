/* Unit tests: the Iris v10 wire codec (gateway/wire/iris.c), with the frames the
 * research notes confirmed by running Iris' own serializers. */
#include "test.h"

#include "iris.h"

#define S(lit) ((json_span_t){ (const uint8_t *)(lit), sizeof(lit) - 1 })

static int to_json(const char *frame, char *out, size_t cap)
{
    iris_msg_t m;
    int rc = iris_decode((const uint8_t *)frame, strlen(frame), &m);
    if (rc != IRIS_OK) return rc;
    if (m.native) return 99;
    ws_buf_t b = {0};
    rc = iris_payload_to_json(&m, &b);
    if (rc == IRIS_OK) snprintf(out, cap, "%.*s", (int)b.len, (const char *)b.data);
    ws_buf_free(&b);
    return rc;
}

static void test_decode_examples(void)
{
    char out[128];
    iris_msg_t m;
    const char *f = "iris-websocket-message:chat;0;hello; world";
    CHECK_INT(iris_decode((const uint8_t *)f, strlen(f), &m), IRIS_OK);
    CHECK(!m.native && m.type == IRIS_STRING);
    CHECK_MEM(m.event.p, "chat", 4);
    CHECK_INT(m.payload.len, 12);                      /* ';' inside the payload */
    CHECK_INT(to_json(f, out, sizeof out), IRIS_OK);
    CHECK_STR(out, "\"hello; world\"");
    CHECK_INT(to_json("iris-websocket-message:count;1;42", out, sizeof out), IRIS_OK);
    CHECK_STR(out, "42");
    CHECK_INT(to_json("iris-websocket-message:n;1;-007", out, sizeof out), IRIS_OK);
    CHECK_STR(out, "-7");
    CHECK_INT(to_json("iris-websocket-message:n;1;+0", out, sizeof out), IRIS_OK);
    CHECK_STR(out, "0");
    CHECK_INT(to_json("iris-websocket-message:user;4;{\"name\":\"Ann\",\"age\":3}", out, sizeof out), IRIS_OK);
    CHECK_STR(out, "{\"name\":\"Ann\",\"age\":3}");
    CHECK_INT(to_json("iris-websocket-message:typing;2;false", out, sizeof out), IRIS_OK);
    CHECK_STR(out, "false");
    CHECK_INT(to_json("iris-websocket-message:typing;2;T", out, sizeof out), IRIS_OK);
    CHECK_STR(out, "true");
    CHECK_INT(to_json("iris-websocket-message:q;0;say \"hi\"\n", out, sizeof out), IRIS_OK);
    CHECK_STR(out, "\"say \\\"hi\\\"\\n\"");
    CHECK_INT(to_json("iris-websocket-message:objectupdate;0;2;all;2.UsrSchedule_v1_1", out, sizeof out), IRIS_OK);
    CHECK_STR(out, "\"2;all;2.UsrSchedule_v1_1\"");
    /* Native: no prefix (the JS client's prefix-anywhere quirk is not ours). */
    CHECK_INT(iris_decode((const uint8_t *)"ping", 4, &m), IRIS_OK);
    CHECK(m.native && m.payload.len == 4);
    CHECK_INT(iris_decode((const uint8_t *)"x iris-websocket-message:a;0;b", 30, &m), IRIS_OK);
    CHECK(m.native);
}

static void test_iris_quirks_dropped_like_the_iris_server(void)
{
    char out[64];
    /* The JS client sends true as "1;true" and 3.14 as "1;3.14": Iris' Atoi failed. */
    CHECK_INT(to_json("iris-websocket-message:typing;1;true", out, sizeof out), IRIS_E_INT);
    CHECK_INT(to_json("iris-websocket-message:n;1;3.14", out, sizeof out), IRIS_E_INT);
    CHECK_INT(to_json("iris-websocket-message:n;1;", out, sizeof out), IRIS_E_INT);
    CHECK_INT(to_json("iris-websocket-message:n;1;12345678901234567890", out, sizeof out), IRIS_E_INT);
    CHECK_INT(to_json("iris-websocket-message:b;2;yes", out, sizeof out), IRIS_E_BOOL);
    CHECK_INT(to_json("iris-websocket-message:j;4;null", out, sizeof out), IRIS_E_JSON);
    CHECK_INT(to_json("iris-websocket-message:j;4;{bad", out, sizeof out), IRIS_E_JSON);
    /* Frames that made the Iris server's reader panic are plain errors here. */
    CHECK_INT(to_json("iris-websocket-message:", out, sizeof out), IRIS_E_NO_EVENT);
    CHECK_INT(to_json("iris-websocket-message:noseparator", out, sizeof out), IRIS_E_NO_EVENT);
    CHECK_INT(to_json("iris-websocket-message:;0;x", out, sizeof out), IRIS_E_NO_EVENT);
    CHECK_INT(to_json("iris-websocket-message:x;0", out, sizeof out), IRIS_E_TYPE);
    CHECK_INT(to_json("iris-websocket-message:x;9;a", out, sizeof out), IRIS_E_TYPE);
    CHECK_INT(to_json("iris-websocket-message:x;00;a", out, sizeof out), IRIS_E_TYPE);
    /* A bytes/string payload from a binary frame must be UTF-8 to be JSON. */
    const uint8_t bin[] = "iris-websocket-message:b;3;\xff\xfe";
    iris_msg_t m;
    CHECK_INT(iris_decode(bin, sizeof bin - 1, &m), IRIS_OK);
    ws_buf_t b = {0};
    CHECK_INT(iris_payload_to_json(&m, &b), IRIS_E_UTF8);
    CHECK_INT(b.len, 0);
    ws_buf_free(&b);
}

static void check_encode(json_span_t ev, json_span_t data, const char *want)
{
    uint8_t out[256];
    size_t bound = iris_encode_size(ev, data);
    size_t n = iris_encode(ev, data, out);
    CHECK(n <= bound);
    CHECK_INT(n, strlen(want));
    CHECK_MEM(out, want, n);
}

static void test_encode(void)
{
    check_encode(S("chat"), S("\"hello; world\""), "iris-websocket-message:chat;0;hello; world");
    check_encode(S("chat"), S("\"a\\\"b\\u00e9\""), "iris-websocket-message:chat;0;a\"b\xc3\xa9");
    check_encode(S("n"), S("42"), "iris-websocket-message:n;1;42");
    check_encode(S("n"), S("-5"), "iris-websocket-message:n;1;-5");
    check_encode(S("n"), S("3.5"), "iris-websocket-message:n;4;3.5");
    check_encode(S("n"), S("12345678901234567890"), "iris-websocket-message:n;4;12345678901234567890");
    check_encode(S("t"), S("true"), "iris-websocket-message:t;2;true");
    check_encode(S("u"), S("{\"name\":\"Ann\",\"age\":3}"), "iris-websocket-message:u;4;{\"name\":\"Ann\",\"age\":3}");
    check_encode(S("z"), S("null"), "iris-websocket-message:z;4;null");
    uint8_t out[64];
    CHECK_INT(iris_encode(S("a;b"), S("1"), out), 0);       /* ';' cannot travel */
    CHECK_INT(iris_encode(S(""), S("1"), out), 0);
}

int main(void)
{
    RUN(test_decode_examples);
    RUN(test_iris_quirks_dropped_like_the_iris_server);
    RUN(test_encode);
    return test_report("iris");
}
