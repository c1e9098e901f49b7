/* fuzz_nodemsg.c — the backplane payload in both directions (nodemsg.h).
 *
 * Decoding: what arrives from Redis (a backend can publish anything) is
 * parsed as the gateway does; every span it returns must lie inside the
 * input, and plain-string extraction must stay in bounds.
 *
 * Encoding: from what was decoded, the delivery a node would publish is
 * written, then read back: decode(encode(x)) == x for every member the
 * gateway reads (event, data, from, to, node, seq, user), and encoding what
 * was read back gives the same bytes again (encode(decode(bytes)) is
 * stable).  The lifecycle payloads (connect, disconnect, heartbeat,
 * trailer) must read back as JSON objects with the members written. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nodemsg.h"
#include "ws_utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(json_span_t v, const uint8_t *data, size_t size)
{
    if (!v.len) return;
    if (v.p < data || v.p + v.len > data + size) abort();
    json_span_t s;
    if (nodemsg_plain_string(v, &s) && (s.p < data || s.p + s.len > data + size)) abort();
}

static int same(json_span_t a, json_span_t b)
{
    return a.len == b.len && (!a.len || memcmp(a.p, b.p, a.len) == 0);
}

/* The decoded content of a string member (at most cap bytes), or SIZE_MAX. */
static size_t str_of(json_span_t v, uint8_t *out, size_t cap)
{
    if (v.len < 2 || v.p[0] != '"') return SIZE_MAX;
    return json_str_unescape(v.p + 1, v.len - 2, out, cap);
}

/* The delivery x read from a parsed payload, as cluster.c reads one. */
typedef struct {
    uint8_t     event[256], user[256];
    envelope_delivery_t d;
    json_span_t node, user_span;
    uint64_t    seq;
} delivery_t;

static int delivery_of(const nodemsg_t *in, delivery_t *x)
{
    memset(x, 0, sizeof *x);
    size_t elen = str_of(in->event, x->event, sizeof x->event);
    if (elen == SIZE_MAX || !ws_utf8_is_valid(x->event, elen)) return 0;
    x->d.event = (json_span_t){ x->event, elen };
    x->d.data = in->data;
    json_span_t from, to, node;
    if (nodemsg_plain_string(in->from, &from)) x->d.from = from;
    x->d.to = ENVELOPE_TO_BACKEND;
    if (nodemsg_plain_string(in->to, &to) && to.len > 5 && memcmp(to.p, "room:", 5) == 0) {
        x->d.to = ENVELOPE_TO_ROOM;
        x->d.to_name = (json_span_t){ to.p + 5, to.len - 5 };
    }
    if (!nodemsg_plain_string(in->node, &node)) return 0;
    x->node = node;
    if (!nodemsg_seq(in->seq, &x->seq)) x->seq = 0;
    size_t ulen = str_of(in->user, x->user, sizeof x->user);
    if (ulen != SIZE_MAX && ws_utf8_is_valid(x->user, ulen))
        x->user_span = (json_span_t){ x->user, ulen };
    return 1;
}

static void round_trip(const nodemsg_t *in)
{
    delivery_t x, y;
    if (!delivery_of(in, &x)) return;
    ws_buf_t a = {0}, b = {0};
    nodemsg_put_delivery(&a, &x.d, x.node, x.seq, x.user_span);
    nodemsg_t back;
    if (!nodemsg_parse(a.data, a.len, &back)) abort();          /* we write valid JSON */
    if (!delivery_of(&back, &y)) abort();
    if (!same(x.d.event, y.d.event) || !same(x.d.from, y.d.from) || x.d.to != y.d.to ||
        !same(x.d.to_name, y.d.to_name) || !same(x.node, y.node) || x.seq != y.seq ||
        !same(x.user_span, y.user_span))
        abort();
    if (x.d.data.len ? !same(x.d.data, y.d.data) : !same(y.d.data, (json_span_t){ (const uint8_t *)"null", 4 }))
        abort();
    nodemsg_put_delivery(&b, &y.d, y.node, y.seq, y.user_span);
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) abort();   /* stable */
    ws_buf_free(&a);
    ws_buf_free(&b);
}

/* The lifecycle payloads, with spans from the input as strings. */
static void lifecycle(const uint8_t *data, size_t size)
{
    if (!ws_utf8_is_valid(data, size)) return;
    size_t h = size / 2;
    while (h < size && (data[h] & 0xC0) == 0x80) h++;      /* on a character boundary */
    json_span_t s1 = { data, h }, s2 = { data + h, size - h };
    json_span_t node = { (const uint8_t *)"n0de", 4 }, conn = { (const uint8_t *)"c0nn", 4 };
    ws_buf_t out = {0};
    nodemsg_t m;
    json_span_t got;

    nodemsg_put_connect(&out, conn, node, s1, s2);
    json_span_t vals[2] = { s1, s2 };
    nodemsg_put_header(&out, 1, s2, vals, 2);
    nodemsg_put_header(&out, 0, s1, vals, 1);
    nodemsg_put_connect_end(&out);
    if (!nodemsg_parse(out.data, out.len, &m) || !nodemsg_plain_string(m.op, &got) ||
        got.len != 7 || memcmp(got.p, "connect", 7) != 0)
        abort();

    out.len = 0;
    nodemsg_put_disconnect(&out, conn, node, (unsigned)size);
    if (!nodemsg_parse(out.data, out.len, &m) || !m.code.len) abort();

    out.len = 0;
    nodemsg_put_heartbeat(&out, node, size, 5000);
    if (!nodemsg_parse(out.data, out.len, &m)) abort();

    out.len = 0;
    nodemsg_put_trailer(&out, node, size + 1);
    uint64_t seq;
    if (!nodemsg_parse(out.data, out.len, &m) || !nodemsg_seq(m.seq, &seq) || seq != size + 1 ||
        !same(m.node, (json_span_t){ (const uint8_t *)"\"n0de\"", 6 }))
        abort();
    ws_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lifecycle(data, size);
    nodemsg_t p;
    if (!nodemsg_parse(data, size, &p)) return 0;
    check(p.event, data, size); check(p.data, data, size); check(p.from, data, size);
    check(p.to, data, size);    check(p.except, data, size); check(p.node, data, size);
    check(p.op, data, size);    check(p.room, data, size); check(p.code, data, size);
    check(p.reason, data, size); check(p.seq, data, size); check(p.user, data, size);
    uint64_t seq;
    if (nodemsg_seq(p.seq, &seq) && (seq == 0 || seq > 9007199254740991ull)) abort();
    char why[NODEMSG_REASON_MAX + 2];
    size_t n = nodemsg_close_reason(p.reason, why);
    if (n != SIZE_MAX && (n > NODEMSG_REASON_MAX || !ws_utf8_is_valid((const uint8_t *)why, n))) abort();
    round_trip(&p);
    return 0;
}
