/* test_envelope.c — envelope decoding and the encoders (the JSON scanner:
 * test_json_scan.c).
 *
 * Every input is copied into an exact-size heap block (no NUL after it), so
 * the ASan build catches any read past the end. */
#include "test.h"

#include "envelope.h"
#include "json_scan.h"

/* ---- helpers ---------------------------------------------------------------- */

static uint8_t *g_in;        /* the current input, exact size */
static envelope_msg_t M;     /* the current decode result */

static const uint8_t *heap_copy(const char *s, size_t n)
{
    free(g_in);
    g_in = malloc(n ? n : 1);
    memcpy(g_in, s, n);
    return g_in;
}

static envelope_code_t dec_n(const char *s, size_t n, const envelope_limits_t *lim)
{
    return envelope_decode(heap_copy(s, n), n, lim, &M);
}

static envelope_code_t dec(const char *s)
{
    return dec_n(s, strlen(s), NULL);
}

static envelope_code_t dec_lim(const char *s, size_t max_room, size_t max_event)
{
    envelope_limits_t lim = { max_room, max_event };
    return dec_n(s, strlen(s), &lim);
}

static int span_is(json_span_t sp, const char *lit)
{
    size_t n = strlen(lit);
    return sp.len == n && (n == 0 || memcmp(sp.p, lit, n) == 0);
}

#define CHECK_SPAN(sp, lit) CHECK_MSG(span_is((sp), (lit)), "span \"%.*s\" != \"%s\"", \
                                      (int)(sp).len, (sp).p ? (const char *)(sp).p : "", (lit))

static json_span_t S(const char *s)
{
    json_span_t v = { (const uint8_t *)s, s ? strlen(s) : 0 };
    return v;
}

/* "[[[...1...]]]" nested n deep, or the same inside {"k": ...} when obj. */
static char *nested(int n, int obj)
{
    char *b = malloc((size_t)n * 8 + 8), *p = b;
    for (int i = 0; i < n; i++) p += sprintf(p, obj ? "{\"k\":" : "[");
    *p++ = '1';
    for (int i = 0; i < n; i++) *p++ = obj ? '}' : ']';
    *p = 0;
    return b;
}

static char g_out[8192];
static size_t g_outlen;

/* The output of an encoder, written into an exact-size block (ASan sees an
 * overrun), checked to be as long as its size said, and valid JSON. */
#define ENCODE(size_expr, write_expr) do {                                    \
        size_t n_ = (size_expr);                                              \
        CHECK(n_ < sizeof g_out);                                             \
        uint8_t *dst = malloc(n_ ? n_ : 1);                                   \
        size_t w_ = (write_expr);                                             \
        memcpy(g_out, dst, w_ < n_ ? w_ : n_);                                \
        free(dst);                                                            \
        CHECK_INT(w_, n_);                                                    \
        g_out[n_] = 0;                                                        \
        g_outlen = n_;                                                        \
        size_t off_;                                                          \
        CHECK_MSG(json_scan_document((const uint8_t *)g_out, n_, &off_) == JSON_OK, \
                  "output is not JSON at %zu: %s", off_, g_out);              \
    } while (0)

/* ---- decode: each op ------------------------------------------------------------ */

static void test_decode_join_leave(void)
{
    CHECK_INT(dec("{\"op\":\"join\",\"room\":\"lobby\",\"id\":1}"), ENVELOPE_OK);
    CHECK_INT(M.op, ENVELOPE_OP_JOIN);
    CHECK_SPAN(M.room, "lobby");
    CHECK_SPAN(M.id, "1");
    CHECK_SPAN(M.data, "null");

    CHECK_INT(dec("{\"op\":\"leave\",\"room\":\"lobby\",\"id\":\"req-2\"}"), ENVELOPE_OK);
    CHECK_INT(M.op, ENVELOPE_OP_LEAVE);
    CHECK_SPAN(M.room, "lobby");
    CHECK_SPAN(M.id, "\"req-2\"");

    CHECK_INT(dec("{\"room\":\"a/b:c@d.e_f-G9\",\"op\":\"join\"}"), ENVELOPE_OK);
    CHECK_SPAN(M.room, "a/b:c@d.e_f-G9");
    CHECK_INT(M.id.len, 0);
}

static void test_decode_emit(void)
{
    CHECK_INT(dec("{\"op\":\"emit\",\"event\":\"chat\",\"to\":\"broadcast\","
                  "\"data\":{ \"a\" : [1, 2.50] },\"id\":3}"), ENVELOPE_OK);
    CHECK_INT(M.op, ENVELOPE_OP_EMIT);
    CHECK_SPAN(M.event, "chat");
    CHECK_INT(M.to, ENVELOPE_TO_BROADCAST);
    CHECK_SPAN(M.data, "{ \"a\" : [1, 2.50] }");
    CHECK_SPAN(M.id, "3");

    /* no `to`: backends only; no data: null */
    CHECK_INT(dec("{\"op\":\"emit\",\"event\":\"ping\"}"), ENVELOPE_OK);
    CHECK_INT(M.to, ENVELOPE_TO_BACKEND);
    CHECK_SPAN(M.data, "null");
    CHECK_INT(M.id.len, 0);

    CHECK_INT(dec("{\"op\":\"emit\",\"event\":\"e\",\"data\":null}"), ENVELOPE_OK);
    CHECK_SPAN(M.data, "null");
    CHECK_INT(dec("{\"op\":\"emit\",\"event\":\"e\",\"data\":\"\"}"), ENVELOPE_OK);
    CHECK_SPAN(M.data, "\"\"");

    /* events: UTF-8 raw, and escapes decoded into the result's buffer */
    CHECK_INT(dec("{\"op\":\"emit\",\"event\":\"caf\xc3\xa9 \xe2\x9c\x93\"}"), ENVELOPE_OK);
    CHECK_SPAN(M.event, "caf\xc3\xa9 \xe2\x9c\x93");
    CHECK_INT(dec("{\"op\":\"emit\",\"event\":\"say \\\"hi\\\" \\u00e9\\/\\uD83D\\uDE00\"}"), ENVELOPE_OK);
    CHECK_SPAN(M.event, "say \"hi\" \xc3\xa9/\xf0\x9f\x98\x80");
    CHECK(M.event.p == M._event_buf);
}

static void test_decode_whitespace_and_extras(void)
{
    CHECK_INT(dec("\r\n\t { \"op\" :\t\"join\" ,\n\"room\" : \"r\" , \"id\" : 7 } \n"), ENVELOPE_OK);
    CHECK_SPAN(M.room, "r");
    CHECK_SPAN(M.id, "7");
    /* unknown members are ignored, whatever they hold */
    CHECK_INT(dec("{\"v\":2,\"op\":\"join\",\"x\":{\"deep\":[1,{\"id\":5}]},\"room\":\"r\",\"meta\":null}"),
              ENVELOPE_OK);
    CHECK_INT(M.id.len, 0);
    /* members an op does not use are ignored, even with odd types */
    CHECK_INT(dec("{\"op\":\"join\",\"room\":\"r\",\"event\":5,\"to\":[],\"data\":1}"), ENVELOPE_OK);
    CHECK_INT(dec("{\"op\":\"emit\",\"event\":\"e\",\"room\":5}"), ENVELOPE_OK);
    /* keys and op compare by decoded value */
    CHECK_INT(dec("{\"\\u006fp\":\"\\u006Aoin\",\"r\\u006fom\":\"r\"}"), ENVELOPE_OK);
    CHECK_INT(M.op, ENVELOPE_OP_JOIN);
    CHECK_SPAN(M.room, "r");
}

static void test_decode_targets(void)
{
    CHECK_INT(dec("{\"op\":\"emit\",\"event\":\"e\",\"to\":\"all\"}"), ENVELOPE_OK);
    CHECK_INT(M.to, ENVELOPE_TO_ALL);
    CHECK_INT(dec("{\"op\":\"emit\",\"event\":\"e\",\"to\":\"broadcast\"}"), ENVELOPE_OK);
    CHECK_INT(M.to, ENVELOPE_TO_BROADCAST);
    CHECK_INT(dec("{\"op\":\"emit\",\"event\":\"e\",\"to\":\"room:lobby/1\"}"), ENVELOPE_OK);
    CHECK_INT(M.to, ENVELOPE_TO_ROOM);
    CHECK_SPAN(M.to_name, "lobby/1");
    CHECK_INT(dec("{\"op\":\"emit\",\"event\":\"e\",\"to\":\"room:room:x\"}"), ENVELOPE_OK);
    CHECK_SPAN(M.to_name, "room:x");
    CHECK_INT(dec("{\"op\":\"emit\",\"event\":\"e\",\"to\":\"conn:AbC.1_2:3@4-5\"}"), ENVELOPE_OK);
    CHECK_INT(M.to, ENVELOPE_TO_CONN);
    CHECK_SPAN(M.to_name, "AbC.1_2:3@4-5");

    static const char *const bad[] = {
        "everyone", "", "Broadcast", "ALL", "all ", " all", "room", "conn", "conn:",
        "conn:a b", "conn:a/b", "\\u0061ll", "room\\u003ax", "broadcast\\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char doc[128];
        snprintf(doc, sizeof doc, "{\"op\":\"emit\",\"event\":\"e\",\"to\":\"%s\",\"id\":9}", bad[i]);
        CHECK_MSG(dec(doc) == ENVELOPE_E_BAD_TARGET, "%s", bad[i]);
        CHECK_SPAN(M.id, "9");
        CHECK_STR(M.err_field, "to");
        CHECK_INT(M.op, ENVELOPE_OP_NONE);
    }
    /* room: with a bad room name is bad_room */
    CHECK_INT(dec("{\"op\":\"emit\",\"event\":\"e\",\"to\":\"room:\",\"id\":9}"), ENVELOPE_E_BAD_ROOM);
    CHECK_SPAN(M.id, "9");
    CHECK_INT(dec("{\"op\":\"emit\",\"event\":\"e\",\"to\":\"room:a b\"}"), ENVELOPE_E_BAD_ROOM);
    /* `to` of the wrong type */
    CHECK_INT(dec("{\"op\":\"emit\",\"event\":\"e\",\"to\":null}"), ENVELOPE_E_BAD_FIELD);
    CHECK_STR(M.err_field, "to");
    CHECK_INT(dec("{\"op\":\"emit\",\"event\":\"e\",\"to\":[\"all\"]}"), ENVELOPE_E_BAD_FIELD);
}

/* ---- decode: names at their limits ---------------------------------------------- */

static char *repeat(char c, size_t n)
{
    static char b[1024];
    memset(b, c, n);
    b[n] = 0;
    return b;
}

static void test_room_rules(void)
{
    char doc[1200];
    snprintf(doc, sizeof doc, "{\"op\":\"join\",\"room\":\"%s\"}", repeat('r', 64));
    CHECK_INT(dec(doc), ENVELOPE_OK);
    CHECK_INT(M.room.len, 64);
    snprintf(doc, sizeof doc, "{\"op\":\"join\",\"room\":\"%s\",\"id\":1}", repeat('r', 65));
    CHECK_INT(dec(doc), ENVELOPE_E_BAD_ROOM);
    CHECK_SPAN(M.id, "1");
    CHECK_STR(M.err_field, "room");
    /* a configured limit */
    CHECK_INT(dec_lim("{\"op\":\"join\",\"room\":\"12345678\"}", 8, 0), ENVELOPE_OK);
    CHECK_INT(dec_lim("{\"op\":\"join\",\"room\":\"123456789\"}", 8, 0), ENVELOPE_E_BAD_ROOM);
    snprintf(doc, sizeof doc, "{\"op\":\"join\",\"room\":\"%s\"}", repeat('r', 200));
    CHECK_INT(dec_lim(doc, 200, 0), ENVELOPE_OK);

    static const char *const bad[] = {
        "", "a b", "a#b", "a\\u0020b", "a\\/b", "caf\xc3\xa9", "a,b", "a\\\\b", "a\\\"b", "a+b", "~",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(doc, sizeof doc, "{\"op\":\"leave\",\"room\":\"%s\",\"id\":\"x\"}", bad[i]);
        CHECK_MSG(dec(doc) == ENVELOPE_E_BAD_ROOM, "%s", bad[i]);
        CHECK_SPAN(M.id, "\"x\"");
    }
    CHECK_INT(dec("{\"op\":\"join\",\"room\":1}"), ENVELOPE_E_BAD_FIELD);
    CHECK_STR(M.err_field, "room");
    CHECK_INT(dec("{\"op\":\"join\",\"room\":null}"), ENVELOPE_E_BAD_FIELD);

    CHECK(envelope_room_valid((const uint8_t *)"a", 1, 0));
    CHECK(!envelope_room_valid((const uint8_t *)"a", 0, 0));
    CHECK(envelope_room_valid((const uint8_t *)repeat('z', 64), 64, 0));
    CHECK(!envelope_room_valid((const uint8_t *)repeat('z', 65), 65, 0));
}

static void test_event_rules(void)
{
    char doc[1200];
    snprintf(doc, sizeof doc, "{\"op\":\"emit\",\"event\":\"%s\"}", repeat('e', 64));
    CHECK_INT(dec(doc), ENVELOPE_OK);
    snprintf(doc, sizeof doc, "{\"op\":\"emit\",\"event\":\"%s\",\"id\":2}", repeat('e', 65));
    CHECK_INT(dec(doc), ENVELOPE_E_BAD_EVENT);
    CHECK_SPAN(M.id, "2");
    CHECK_STR(M.err_field, "event");
    /* the limit counts decoded bytes: 32 x "\u00e9" is 64 bytes */
    char *p = doc + sprintf(doc, "{\"op\":\"emit\",\"event\":\"");
    for (int i = 0; i < 32; i++) p += sprintf(p, "\\u00e9");
    strcpy(p, "\"}");
    CHECK_INT(dec(doc), ENVELOPE_OK);
    CHECK_INT(M.event.len, 64);
    p = doc + sprintf(doc, "{\"op\":\"emit\",\"event\":\"x");
    for (int i = 0; i < 32; i++) p += sprintf(p, "\\u00e9");
    strcpy(p, "\"}");
    CHECK_INT(dec(doc), ENVELOPE_E_BAD_EVENT);
    /* configured limits, clamped to 256 */
    CHECK_INT(dec_lim("{\"op\":\"emit\",\"event\":\"abcd\"}", 0, 4), ENVELOPE_OK);
    CHECK_INT(dec_lim("{\"op\":\"emit\",\"event\":\"abcde\"}", 0, 4), ENVELOPE_E_BAD_EVENT);
    snprintf(doc, sizeof doc, "{\"op\":\"emit\",\"event\":\"%s\"}", repeat('e', 256));
    CHECK_INT(dec_lim(doc, 0, 10000), ENVELOPE_OK);
    snprintf(doc, sizeof doc, "{\"op\":\"emit\",\"event\":\"%s\"}", repeat('e', 257));
    CHECK_INT(dec_lim(doc, 0, 10000), ENVELOPE_E_BAD_EVENT);
    snprintf(doc, sizeof doc, "{\"op\":\"emit\",\"event\":\"\\n%s\"}", repeat('e', 255));
    CHECK_INT(dec_lim(doc, 0, 10000), ENVELOPE_E_BAD_EVENT);  /* decoded but a control char */

    static const char *const bad[] = {
        "", "a\\u0000b", "a\\nb", "\\t", "\\u001f", "a\x7f", "\\u007f", "\\u0085", "\xc2\x80", "\xc2\x9f",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(doc, sizeof doc, "{\"op\":\"emit\",\"event\":\"%s\",\"id\":4}", bad[i]);
        CHECK_MSG(dec(doc) == ENVELOPE_E_BAD_EVENT, "%s", bad[i]);
        CHECK_SPAN(M.id, "4");
    }
    static const char *const good[] = {
        " ", "a b", "a;b", "\xc2\xa0", "\xc2\xa1", "\\u00a0", "\xe2\x80\xa8", "{}", "\\\\", "\\\"",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(doc, sizeof doc, "{\"op\":\"emit\",\"event\":\"%s\"}", good[i]);
        CHECK_MSG(dec(doc) == ENVELOPE_OK, "%s", good[i]);
    }
    CHECK_INT(dec("{\"op\":\"emit\",\"event\":[]}"), ENVELOPE_E_BAD_FIELD);
    CHECK_STR(M.err_field, "event");
}

static void test_conn_id_rules(void)
{
    char doc[1200];
    snprintf(doc, sizeof doc, "{\"op\":\"emit\",\"event\":\"e\",\"to\":\"conn:%s\"}", repeat('c', 128));
    CHECK_INT(dec(doc), ENVELOPE_OK);
    CHECK_INT(M.to_name.len, 128);
    snprintf(doc, sizeof doc, "{\"op\":\"emit\",\"event\":\"e\",\"to\":\"conn:%s\"}", repeat('c', 129));
    CHECK_INT(dec(doc), ENVELOPE_E_BAD_TARGET);
    CHECK(envelope_conn_id_valid((const uint8_t *)"a-Z_0.9:x@y", 11));
    CHECK(!envelope_conn_id_valid((const uint8_t *)"a/b", 3));  /* '/' is for rooms only */
    CHECK(!envelope_conn_id_valid((const uint8_t *)"", 0));
    CHECK(!envelope_conn_id_valid((const uint8_t *)"a\"", 2));
}

/* ---- decode: every error code, with the id where it can be kept ----------------- */

static void test_err_bad_json(void)
{
    CHECK_INT(dec("not json"), ENVELOPE_E_BAD_JSON);
    CHECK_INT(M.err_offset, 1);  /* "n" could start null */
    CHECK_INT(M.id.len, 0);
    CHECK_INT(dec(""), ENVELOPE_E_BAD_JSON);
    CHECK_INT(dec("{\"id\":7,\"op\":\"join\","), ENVELOPE_E_BAD_JSON);
    CHECK_INT(M.err_offset, 20);
    CHECK_SPAN(M.id, "7");  /* read before the error, so it is echoed */
    CHECK_INT(dec("{\"op\":\"join\",\"room\":\"r\",\"id\":1} x"), ENVELOPE_E_BAD_JSON);
    CHECK_INT(M.err_offset, 32);
    CHECK_INT(dec("{\"op\":\"join\",\"room\":\"r\",\"id\":01}"), ENVELOPE_E_BAD_JSON);
    CHECK_INT(M.id.len, 0);
    CHECK_INT(dec("{\"op\":\"emit\",\"event\":\"e\",\"data\":NaN,\"id\":2}"), ENVELOPE_E_BAD_JSON);
    CHECK_INT(M.err_offset, 32);
    CHECK_INT(M.id.len, 0);  /* the id comes after the error */
    CHECK_INT(dec("{\"id\":3,\"op\":\"emit\",\"event\":\"e\",\"data\":\"\\uD800\"}"), ENVELOPE_E_BAD_JSON);
    CHECK_SPAN(M.id, "3");
    /* bad_json beats a semantic error found earlier */
    CHECK_INT(dec("{\"op\":\"kick\",\"op\":1,\"id\":1,"), ENVELOPE_E_BAD_JSON);
    CHECK_INT(dec("{\"op\":\"emit\",\"event\":\"e\",\"data\":[1,],\"id\":3}"), ENVELOPE_E_BAD_JSON);
    CHECK_INT(dec_n("{\"op\":\"emit\",\"event\":\"e\"}\0", 26, NULL), ENVELOPE_E_BAD_JSON);
    CHECK_INT(M.err_offset, 25);
}

static void test_err_not_object(void)
{
    static const char *const docs[] = { "[1,2]", "\"join\"", "42", "null", " true ", "[{\"op\":\"join\"}]" };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        CHECK_MSG(dec(docs[i]) == ENVELOPE_E_NOT_OBJECT, "%s", docs[i]);
        CHECK_INT(M.id.len, 0);
    }
    CHECK_INT(dec("[1,2"), ENVELOPE_E_BAD_JSON);  /* invalid JSON first */
    CHECK_INT(M.err_offset, 4);
}

static void test_err_unknown_op(void)
{
    CHECK_INT(dec("{\"op\":\"kick\",\"id\":\"k\"}"), ENVELOPE_E_UNKNOWN_OP);
    CHECK_SPAN(M.id, "\"k\"");
    CHECK_STR(M.err_field, "op");
    CHECK_INT(dec("{\"op\":\"JOIN\",\"room\":\"r\"}"), ENVELOPE_E_UNKNOWN_OP);
    CHECK_INT(dec("{\"op\":\"\",\"room\":\"r\"}"), ENVELOPE_E_UNKNOWN_OP);
    CHECK_INT(dec("{\"op\":\"join \",\"room\":\"r\"}"), ENVELOPE_E_UNKNOWN_OP);
    CHECK_INT(dec("{\"op\":\"ack\",\"id\":5}"), ENVELOPE_E_UNKNOWN_OP);
    CHECK_SPAN(M.id, "5");
}

static void test_err_missing_field(void)
{
    CHECK_INT(dec("{\"id\":3}"), ENVELOPE_E_MISSING_FIELD);
    CHECK_STR(M.err_field, "op");
    CHECK_SPAN(M.id, "3");
    CHECK_INT(dec("{}"), ENVELOPE_E_MISSING_FIELD);
    CHECK_STR(M.err_field, "op");
    CHECK_INT(dec("{\"op\":\"join\",\"id\":4}"), ENVELOPE_E_MISSING_FIELD);
    CHECK_STR(M.err_field, "room");
    CHECK_SPAN(M.id, "4");
    CHECK_INT(dec("{\"op\":\"leave\"}"), ENVELOPE_E_MISSING_FIELD);
    CHECK_STR(M.err_field, "room");
    CHECK_INT(dec("{\"op\":\"emit\",\"to\":\"all\",\"data\":1,\"id\":\"q\"}"), ENVELOPE_E_MISSING_FIELD);
    CHECK_STR(M.err_field, "event");
    CHECK_SPAN(M.id, "\"q\"");
}

static void test_err_bad_field(void)
{
    CHECK_INT(dec("{\"op\":5,\"id\":1}"), ENVELOPE_E_BAD_FIELD);
    CHECK_STR(M.err_field, "op");
    CHECK_SPAN(M.id, "1");
    CHECK_INT(dec("{\"op\":null}"), ENVELOPE_E_BAD_FIELD);
    CHECK_INT(dec("{\"op\":[\"join\"]}"), ENVELOPE_E_BAD_FIELD);
    /* 32 members are fine, 33 are not */
    char doc[1024], *p = doc + sprintf(doc, "{\"op\":\"join\",\"room\":\"r\",\"id\":8");
    for (int i = 0; i < 29; i++) p += sprintf(p, ",\"x%d\":%d", i, i);
    strcpy(p, "}");
    CHECK_INT(dec(doc), ENVELOPE_OK);
    strcpy(p, ",\"y\":0}");
    CHECK_INT(dec(doc), ENVELOPE_E_BAD_FIELD);
    CHECK(M.err_field == NULL);
    CHECK_SPAN(M.id, "8");
    char why[128];
    CHECK_STR(envelope_explain(ENVELOPE_E_BAD_FIELD, &M, why, sizeof why), "too many members (at most 32)");
}

static void test_err_bad_id(void)
{
    CHECK_INT(dec("{\"op\":\"join\",\"room\":\"r\",\"id\":9007199254740991}"), ENVELOPE_OK);
    CHECK_SPAN(M.id, "9007199254740991");
    CHECK_INT(dec("{\"op\":\"join\",\"room\":\"r\",\"id\":0}"), ENVELOPE_OK);
    CHECK_SPAN(M.id, "0");
    char doc[1200];
    snprintf(doc, sizeof doc, "{\"op\":\"join\",\"room\":\"r\",\"id\":\"%s\"}", repeat('i', 64));
    CHECK_INT(dec(doc), ENVELOPE_OK);
    CHECK_INT(M.id.len, 66);
    CHECK_INT(dec("{\"op\":\"join\",\"room\":\"r\",\"id\":\"a\\\"b\\u00e9\"}"), ENVELOPE_OK);
    CHECK_SPAN(M.id, "\"a\\\"b\\u00e9\"");  /* raw, escapes kept */

    static const char *const bad[] = {
        "9007199254740992", "99999999999999999", "12345678901234567890", "-1", "-0", "1.0", "1e3", "0.5",
        "\"\"", "true", "false", "null", "[]", "{}", "[1]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(doc, sizeof doc, "{\"op\":\"join\",\"room\":\"r\",\"id\":%s}", bad[i]);
        CHECK_MSG(dec(doc) == ENVELOPE_E_BAD_ID, "%s", bad[i]);
        CHECK_INT(M.id.len, 0);
        CHECK_STR(M.err_field, "id");
    }
    snprintf(doc, sizeof doc, "{\"op\":\"join\",\"room\":\"r\",\"id\":\"%s\"}", repeat('i', 65));
    CHECK_INT(dec(doc), ENVELOPE_E_BAD_ID);
    /* bad_id comes before the op checks */
    CHECK_INT(dec("{\"op\":\"kick\",\"id\":-5}"), ENVELOPE_E_BAD_ID);
}

static void test_err_duplicate(void)
{
    CHECK_INT(dec("{\"op\":\"join\",\"op\":\"leave\",\"room\":\"r\",\"id\":1}"), ENVELOPE_E_DUPLICATE_FIELD);
    CHECK_STR(M.err_field, "op");
    CHECK_SPAN(M.id, "1");  /* id read after the duplicate is still echoed */
    CHECK_INT(dec("{\"id\":1,\"op\":\"join\",\"room\":\"a\",\"id\":2}"), ENVELOPE_E_DUPLICATE_FIELD);
    CHECK_STR(M.err_field, "id");
    CHECK_INT(M.id.len, 0);
    CHECK_INT(dec("{\"id\":1,\"id\":1}"), ENVELOPE_E_DUPLICATE_FIELD);
    CHECK_INT(M.id.len, 0);
    CHECK_INT(dec("{\"x\":1,\"op\":\"join\",\"room\":\"r\",\"x\":2,\"id\":9}"), ENVELOPE_E_DUPLICATE_FIELD);
    CHECK(M.err_field == NULL);
    CHECK_SPAN(M.id, "9");
    /* equal after decoding */
    CHECK_INT(dec("{\"op\":\"join\",\"room\":\"r\",\"r\\u006fom\":\"s\"}"), ENVELOPE_E_DUPLICATE_FIELD);
    CHECK_STR(M.err_field, "room");
    CHECK_INT(dec("{\"op\":\"join\",\"room\":\"r\",\"\\u00e9\":1,\"\xc3\xa9\":2}"), ENVELOPE_E_DUPLICATE_FIELD);
    /* case matters, and a prefix is not a duplicate */
    CHECK_INT(dec("{\"op\":\"join\",\"room\":\"r\",\"Op\":1,\"opp\":2}"), ENVELOPE_OK);
    /* the first semantic error wins */
    CHECK_INT(dec("{\"id\":-1,\"op\":\"join\",\"op\":\"join\"}"), ENVELOPE_E_BAD_ID);
    CHECK_INT(dec("{\"op\":\"join\",\"op\":\"join\",\"id\":-1}"), ENVELOPE_E_DUPLICATE_FIELD);
    CHECK_INT(M.id.len, 0);
}

static void test_err_too_deep(void)
{
    /* the envelope is level 1, so data may nest 31 levels */
    char doc[1024];
    char *d31 = nested(31, 0), *d32 = nested(32, 1);
    snprintf(doc, sizeof doc, "{\"id\":5,\"op\":\"emit\",\"event\":\"e\",\"data\":%s}", d31);
    envelope_code_t r31 = dec(doc);
    json_span_t data31 = M.data;
    int ok31 = span_is(data31, d31);
    snprintf(doc, sizeof doc, "{\"id\":5,\"op\":\"emit\",\"event\":\"e\",\"data\":%s}", d32);
    envelope_code_t r32 = dec(doc);
    free(d31); free(d32);
    CHECK_INT(r31, ENVELOPE_OK);
    CHECK(ok31);
    CHECK_INT(r32, ENVELOPE_E_TOO_DEEP);
    CHECK_SPAN(M.id, "5");
    CHECK_INT(M.err_offset, 39 + 31 * 5);
    /* a too-deep non-object is too_deep, not not_object */
    char *a33 = nested(33, 0);
    envelope_code_t ra = dec(a33);
    free(a33);
    CHECK_INT(ra, ENVELOPE_E_TOO_DEEP);
    CHECK_INT(M.err_offset, 32);
}

/* ---- data passthrough ---------------------------------------------------------- */

static void test_data_passthrough(void)
{
    static const char *const datas[] = {
        "12345678901234567890", "1.10", "-0.0E+00", "1e400", "0.1000000000000000000000001",
        "\"\\ud83d\\ude00 \\u00E9 \\/\"", "\"\xf0\x9f\x98\x80\"", "[1,{\"b\":-0.0E+00},\"x\"]",
        "{ }", "[ 1 ,\t2 ]", "{\"a\":{\"a\":1},\"a\":2}", "true", "null", "\"\"",
    };
    for (size_t i = 0; i < sizeof datas / sizeof datas[0]; i++) {
        char doc[256];
        snprintf(doc, sizeof doc, "{\"op\":\"emit\",\"event\":\"e\",\"to\":\"all\",\"data\": %s ,\"id\":1}", datas[i]);
        CHECK_MSG(dec(doc) == ENVELOPE_OK, "%s", datas[i]);
        CHECK_SPAN(M.data, datas[i]);
        envelope_delivery_t d = { M.event, M.data, S("c1"), M.to, M.to_name };
        ENCODE(envelope_delivery_size(&d), envelope_delivery_write(&d, dst));
        char want[256];
        snprintf(want, sizeof want, "{\"event\":\"e\",\"data\":%s,\"from\":\"c1\",\"to\":\"all\"}", datas[i]);
        CHECK_STR(g_out, want);
    }
}

/* ---- encoders --------------------------------------------------------------------- */

static void test_encode_delivery(void)
{
    envelope_delivery_t d = { S("chat"), S("{\"a\":1}"), S("c1"), ENVELOPE_TO_ROOM, S("lobby") };
    ENCODE(envelope_delivery_size(&d), envelope_delivery_write(&d, dst));
    CHECK_STR(g_out, "{\"event\":\"chat\",\"data\":{\"a\":1},\"from\":\"c1\",\"to\":\"room:lobby\"}");

    d.to = ENVELOPE_TO_CONN;
    d.to_name = S("x.1");
    ENCODE(envelope_delivery_size(&d), envelope_delivery_write(&d, dst));
    CHECK_STR(g_out, "{\"event\":\"chat\",\"data\":{\"a\":1},\"from\":\"c1\",\"to\":\"conn:x.1\"}");

    d.to = ENVELOPE_TO_BROADCAST;
    d.from = S(NULL);  /* from a backend */
    ENCODE(envelope_delivery_size(&d), envelope_delivery_write(&d, dst));
    CHECK_STR(g_out, "{\"event\":\"chat\",\"data\":{\"a\":1},\"to\":\"broadcast\"}");

    d.to = ENVELOPE_TO_ALL;
    d.data = S(NULL);
    d.from = S("");
    ENCODE(envelope_delivery_size(&d), envelope_delivery_write(&d, dst));
    CHECK_STR(g_out, "{\"event\":\"chat\",\"data\":null,\"to\":\"all\"}");

    d.to = ENVELOPE_TO_BACKEND;
    ENCODE(envelope_delivery_size(&d), envelope_delivery_write(&d, dst));
    CHECK_STR(g_out, "{\"event\":\"chat\",\"data\":null}");

    /* escaping of every string written */
    envelope_delivery_t e = { S("a\"b\\c\n\x01\x1f\t\r\b\f/\xc3\xa9\x7f"), S("1"), S("q\"c"),
                              ENVELOPE_TO_ROOM, S("r\\") };
    ENCODE(envelope_delivery_size(&e), envelope_delivery_write(&e, dst));
    CHECK_STR(g_out, "{\"event\":\"a\\\"b\\\\c\\n\\u0001\\u001f\\t\\r\\b\\f/\xc3\xa9\x7f\",\"data\":1,"
                     "\"from\":\"q\\\"c\",\"to\":\"room:r\\\\\"}");
    /* a NUL byte in a name becomes \u0000 */
    json_span_t nul = { (const uint8_t *)"a\0b", 3 };
    envelope_delivery_t f = { nul, S("2"), S("c"), ENVELOPE_TO_BROADCAST, S(NULL) };
    ENCODE(envelope_delivery_size(&f), envelope_delivery_write(&f, dst));
    CHECK_STR(g_out, "{\"event\":\"a\\u0000b\",\"data\":2,\"from\":\"c\",\"to\":\"broadcast\"}");
}

static void test_encode_ack_error_welcome(void)
{
    ENCODE(envelope_ack_size(S("3")), envelope_ack_write(S("3"), dst));
    CHECK_STR(g_out, "{\"op\":\"ack\",\"id\":3}");
    ENCODE(envelope_ack_size(S("\"a\\\"b\"")), envelope_ack_write(S("\"a\\\"b\""), dst));
    CHECK_STR(g_out, "{\"op\":\"ack\",\"id\":\"a\\\"b\"}");
    ENCODE(envelope_ack_size(S(NULL)), envelope_ack_write(S(NULL), dst));
    CHECK_STR(g_out, "{\"op\":\"ack\"}");

    ENCODE(envelope_error_size(S("7"), ENVELOPE_E_BAD_ROOM, NULL),
           envelope_error_write(S("7"), ENVELOPE_E_BAD_ROOM, NULL, dst));
    CHECK_STR(g_out, "{\"op\":\"error\",\"id\":7,\"code\":\"bad_room\",\"message\":\"invalid room name\"}");
    ENCODE(envelope_error_size(S(NULL), ENVELOPE_E_RATE_LIMITED, "slow \"down\"\n\\"),
           envelope_error_write(S(NULL), ENVELOPE_E_RATE_LIMITED, "slow \"down\"\n\\", dst));
    CHECK_STR(g_out, "{\"op\":\"error\",\"code\":\"rate_limited\",\"message\":\"slow \\\"down\\\"\\n\\\\\"}");
    ENCODE(envelope_error_size(S("\"x\""), ENVELOPE_E_UNKNOWN_OP, NULL),
           envelope_error_write(S("\"x\""), ENVELOPE_E_UNKNOWN_OP, NULL, dst));
    CHECK_STR(g_out, "{\"op\":\"error\",\"id\":\"x\",\"code\":\"unknown_op\","
                     "\"message\":\"unknown op; expected \\\"join\\\", \\\"leave\\\", \\\"emit\\\" or \\\"auth\\\"\"}");
    ENCODE(envelope_error_size(S(NULL), ENVELOPE_E_INTERNAL, ""),
           envelope_error_write(S(NULL), ENVELOPE_E_INTERNAL, "", dst));
    CHECK_STR(g_out, "{\"op\":\"error\",\"code\":\"internal\",\"message\":\"\"}");

    ENCODE(envelope_welcome_size(S("c-42"), 65536), envelope_welcome_write(S("c-42"), 65536, dst));
    CHECK_STR(g_out, "{\"op\":\"welcome\",\"conn\":\"c-42\",\"max_message_size\":65536}");
    ENCODE(envelope_welcome_size(S("a\"\x02"), 0), envelope_welcome_write(S("a\"\x02"), 0, dst));
    CHECK_STR(g_out, "{\"op\":\"welcome\",\"conn\":\"a\\\"\\u0002\",\"max_message_size\":0}");
    ENCODE(envelope_welcome_size(S("x"), UINT64_MAX), envelope_welcome_write(S("x"), UINT64_MAX, dst));
    CHECK_STR(g_out, "{\"op\":\"welcome\",\"conn\":\"x\",\"max_message_size\":18446744073709551615}");
}

static void test_codes_and_explain(void)
{
    static const char *const wire[ENVELOPE_CODE_COUNT] = {
        "ok", "bad_json", "not_object", "unknown_op", "missing_field", "bad_field", "bad_room",
        "bad_event", "bad_target", "bad_id", "duplicate_field", "too_deep", "forbidden",
        "not_joined", "rate_limited", "too_many_rooms", "internal", "no_backend", "unavailable", "unauthorized",
    };
    for (int c = 0; c < ENVELOPE_CODE_COUNT; c++) {
        CHECK_STR(envelope_code_str((envelope_code_t)c), wire[c]);
        const char *msg = envelope_code_message((envelope_code_t)c);
        CHECK(msg && *msg);
        /* every error reply is valid JSON, with and without an id */
        ENCODE(envelope_error_size(S("1"), (envelope_code_t)c, NULL),
               envelope_error_write(S("1"), (envelope_code_t)c, NULL, dst));
    }
    CHECK_STR(envelope_code_str((envelope_code_t)999), "internal");
    CHECK_STR(envelope_code_str((envelope_code_t)-1), "internal");

    char why[128];
    CHECK_INT(dec("{\"op\":\"join\",\"room\":"), ENVELOPE_E_BAD_JSON);
    CHECK_STR(envelope_explain(ENVELOPE_E_BAD_JSON, &M, why, sizeof why), "invalid JSON at byte 20");
    CHECK_INT(dec("{\"op\":\"join\"}"), ENVELOPE_E_MISSING_FIELD);
    CHECK_STR(envelope_explain(ENVELOPE_E_MISSING_FIELD, &M, why, sizeof why), "missing field \"room\"");
    CHECK_INT(dec("{\"op\":\"emit\",\"event\":\"e\",\"to\":1}"), ENVELOPE_E_BAD_FIELD);
    CHECK_STR(envelope_explain(ENVELOPE_E_BAD_FIELD, &M, why, sizeof why), "field \"to\" has the wrong type");
    CHECK_INT(dec("{\"to\":1,\"to\":2}"), ENVELOPE_E_DUPLICATE_FIELD);
    CHECK_STR(envelope_explain(ENVELOPE_E_DUPLICATE_FIELD, &M, why, sizeof why), "duplicate field \"to\"");
    CHECK_INT(dec("{\"op\":\"join\",\"room\":\"#\"}"), ENVELOPE_E_BAD_ROOM);
    CHECK_STR(envelope_explain(ENVELOPE_E_BAD_ROOM, &M, why, sizeof why), "invalid room name");
    CHECK_STR(envelope_explain(ENVELOPE_E_FORBIDDEN, NULL, why, sizeof why), "not allowed");
    CHECK_STR(envelope_explain(ENVELOPE_E_MISSING_FIELD, &M, why, 8), "missing");  /* truncated */
}

/* decode -> error reply carries the id exactly as the client wrote it */
static void test_error_reply_roundtrip(void)
{
    char why[128];
    CHECK_INT(dec("{\"op\":\"join\",\"room\":\"no spaces\",\"id\":\"r-1\"}"), ENVELOPE_E_BAD_ROOM);
    envelope_explain(ENVELOPE_E_BAD_ROOM, &M, why, sizeof why);
    ENCODE(envelope_error_size(M.id, ENVELOPE_E_BAD_ROOM, why),
           envelope_error_write(M.id, ENVELOPE_E_BAD_ROOM, why, dst));
    CHECK_STR(g_out, "{\"op\":\"error\",\"id\":\"r-1\",\"code\":\"bad_room\",\"message\":\"invalid room name\"}");
    CHECK_INT(dec("{\"op\":\"join\",\"room\":\"ok\",\"id\":12}"), ENVELOPE_OK);
    ENCODE(envelope_ack_size(M.id), envelope_ack_write(M.id, dst));
    CHECK_STR(g_out, "{\"op\":\"ack\",\"id\":12}");
}

static void test_json_string_put(void)
{
    static const uint8_t in[] = "a\"b\\c\n\x01\xc3\xa9";
    json_span_t span = { in, sizeof in - 1 };
    uint8_t out[64];
    size_t n = envelope_json_string_size(span);
    uint8_t *end = envelope_json_string_put(out, span);
    CHECK_INT(end - out, n);
    CHECK_MEM(out, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\"", n);
    CHECK_INT(json_scan_document(out, n, NULL), JSON_OK);
}

static void test_auth_op(void)
{
    envelope_msg_t m;
    const char *ok = "{\"op\":\"auth\",\"token\":\"aaa.bbb.ccc\",\"id\":4}";
    CHECK_INT(envelope_decode((const uint8_t *)ok, strlen(ok), NULL, &m), ENVELOPE_OK);
    CHECK_INT(m.op, ENVELOPE_OP_AUTH);
    CHECK_INT(m.token.len, 11);
    CHECK_MEM(m.token.p, "aaa.bbb.ccc", 11);
    const char *missing = "{\"op\":\"auth\",\"id\":4}";
    CHECK_INT(envelope_decode((const uint8_t *)missing, strlen(missing), NULL, &m), ENVELOPE_E_MISSING_FIELD);
    const char *notstr = "{\"op\":\"auth\",\"token\":5}";
    CHECK_INT(envelope_decode((const uint8_t *)notstr, strlen(notstr), NULL, &m), ENVELOPE_E_BAD_FIELD);
    const char *escaped = "{\"op\":\"auth\",\"token\":\"a\\u0041\"}";
    CHECK_INT(envelope_decode((const uint8_t *)escaped, strlen(escaped), NULL, &m), ENVELOPE_E_BAD_FIELD);
}

int main(void)
{
    RUN(test_json_string_put);
    RUN(test_auth_op);
    RUN(test_decode_join_leave);
    RUN(test_decode_emit);
    RUN(test_decode_whitespace_and_extras);
    RUN(test_decode_targets);
    RUN(test_room_rules);
    RUN(test_event_rules);
    RUN(test_conn_id_rules);
    RUN(test_err_bad_json);
    RUN(test_err_not_object);
    RUN(test_err_unknown_op);
    RUN(test_err_missing_field);
    RUN(test_err_bad_field);
    RUN(test_err_bad_id);
    RUN(test_err_duplicate);
    RUN(test_err_too_deep);
    RUN(test_data_passthrough);
    RUN(test_encode_delivery);
    RUN(test_encode_ack_error_welcome);
    RUN(test_codes_and_explain);
    RUN(test_error_reply_roundtrip);
    free(g_in);
    return test_report("envelope");
}
