/* nodemsg.c — see nodemsg.h. */
#include "nodemsg.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "ws_utf8.h"

/* The content of a JSON string written without escapes (ids, rooms). */
int nodemsg_plain_string(json_span_t v, json_span_t *out)
{
    if (v.len < 2 || v.p[0] != '"') return 0;
    for (size_t i = 1; i + 1 < v.len; i++) if (v.p[i] == '\\') return 0;
    out->p = v.p + 1;
    out->len = v.len - 2;
    return 1;
}

int nodemsg_parse(const uint8_t *p, size_t len, nodemsg_t *in)
{
    static const struct { const char *key; size_t off; } keys[] = {
        { "event", offsetof(nodemsg_t, event) }, { "data", offsetof(nodemsg_t, data) },
        { "from", offsetof(nodemsg_t, from) },   { "to", offsetof(nodemsg_t, to) },
        { "except", offsetof(nodemsg_t, except) }, { "node", offsetof(nodemsg_t, node) },
        { "op", offsetof(nodemsg_t, op) },       { "room", offsetof(nodemsg_t, room) },
        { "code", offsetof(nodemsg_t, code) },   { "reason", offsetof(nodemsg_t, reason) },
        { "seq", offsetof(nodemsg_t, seq) },     { "user", offsetof(nodemsg_t, user) },
    };
    memset(in, 0, sizeof *in);
    /* The JSON scanner takes bytes >= 0x80 in strings on trust (the message
     * layer checks clients' text): what a backend published is not checked
     * yet, and clients would fail the connection (1007) on what it passes. */
    if (!ws_utf8_is_valid(p, len)) return 0;
    json_obj_iter_t it;                           /* validates the whole document */
    if (json_obj_begin(&it, p, len) != JSON_OK) return 0;
    json_member_t m;
    int rc;
    while ((rc = json_obj_next(&it, &m)) == 1) {
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            size_t kl = strlen(keys[k].key);
            if (json_str_equal(m.key.p, m.key.len, (const uint8_t *)keys[k].key, kl))
                *(json_span_t *)((char *)in + keys[k].off) = m.value;
        }
    }
    return rc == 0;
}


int nodemsg_seq(json_span_t v, uint64_t *out)
{
    /* 16 digits hold 2^53 - 1; more cannot be in range. */
    if (v.len == 0 || v.len > 16 || v.p[0] < '1' || v.p[0] > '9') return 0;
    uint64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9') return 0;
        n = n * 10 + (uint64_t)(v.p[i] - '0');
    }
    if (n > 9007199254740991ull) return 0;
    *out = n;
    return 1;
}

size_t nodemsg_close_reason(json_span_t v, char *why)
{
    if (!v.len) return 0;
    if (v.len < 2 || v.p[0] != '"') return SIZE_MAX;
    /* One byte past the limit, to see whether the character at the limit
     * is whole. */
    size_t n = json_str_unescape_prefix(v.p + 1, v.len - 2, (uint8_t *)why, NODEMSG_REASON_MAX + 1);
    n = ws_utf8_cut((const uint8_t *)why, n, NODEMSG_REASON_MAX);
    return ws_utf8_is_valid((const uint8_t *)why, n) ? n : SIZE_MAX;
}

/* ---- writing ------------------------------------------------------------ */

static void put_lit(ws_buf_t *b, const char *lit)
{
    ws_buf_append(b, lit, strlen(lit));
}

static void put_raw(ws_buf_t *b, json_span_t v)
{
    ws_buf_append(b, v.p, v.len);
}

static void put_str(ws_buf_t *b, json_span_t v)
{
    uint8_t *d = ws_buf_reserve(b, envelope_json_string_size(v));
    b->len += (size_t)(envelope_json_string_put(d, v) - d);
}

/* ,"key":"<id>" for an id written as it is. */
static void put_id(ws_buf_t *b, const char *key, json_span_t id)
{
    put_lit(b, ",\"");
    put_lit(b, key);
    put_lit(b, "\":\"");
    put_raw(b, id);
    put_lit(b, "\"");
}

static void put_member(ws_buf_t *b, const char *key, json_span_t v)
{
    put_lit(b, ",\"");
    put_lit(b, key);
    put_lit(b, "\":");
    put_str(b, v);
}

static void put_u64(ws_buf_t *b, const char *key, uint64_t n)
{
    char tmp[48];
    int k = snprintf(tmp, sizeof tmp, ",\"%s\":%" PRIu64, key, n);
    ws_buf_append(b, tmp, (size_t)k);
}

void nodemsg_put_delivery(ws_buf_t *out, const envelope_delivery_t *d, json_span_t node,
                          uint64_t seq, json_span_t user)
{
    size_t n = envelope_delivery_size(d) - 1;            /* without the closing brace */
    uint8_t *p = ws_buf_reserve(out, n);
    out->len += envelope_delivery_members_write(d, p);
    put_id(out, "node", node);
    if (seq) put_u64(out, "seq", seq);
    if (user.p) put_member(out, "user", user);
    put_lit(out, "}");
}

void nodemsg_put_trailer(ws_buf_t *out, json_span_t node, uint64_t seq)
{
    put_lit(out, "{\"node\":\"");
    put_raw(out, node);
    put_lit(out, "\"");
    put_u64(out, "seq", seq);
    put_lit(out, "}");
}

void nodemsg_put_heartbeat(ws_buf_t *out, json_span_t node, uint64_t connections,
                           unsigned interval_ms)
{
    put_lit(out, "{\"op\":\"node\"");
    put_member(out, "node", node);
    put_u64(out, "connections", connections);
    put_u64(out, "interval_ms", interval_ms);
    put_lit(out, "}");
}

void nodemsg_put_connect(ws_buf_t *out, json_span_t conn, json_span_t node, json_span_t remote,
                         json_span_t user)
{
    put_lit(out, "{\"op\":\"connect\"");
    put_member(out, "conn", conn);
    put_member(out, "node", node);
    put_member(out, "remote", remote);
    if (user.p) put_member(out, "user", user);
    put_lit(out, ",\"headers\":{");
}

void nodemsg_put_header(ws_buf_t *out, int first, json_span_t name, const json_span_t *values,
                        size_t n_values)
{
    if (!first) put_lit(out, ",");
    put_str(out, name);
    put_lit(out, ":\"");
    for (size_t i = 0; i < n_values; i++) {
        if (i) put_lit(out, ", ");
        uint8_t *d = ws_buf_reserve(out, envelope_json_escaped_size(values[i]));
        out->len += (size_t)(envelope_json_escaped_put(d, values[i]) - d);
    }
    put_lit(out, "\"");
}

void nodemsg_put_connect_end(ws_buf_t *out)
{
    put_lit(out, "}}");
}

void nodemsg_put_disconnect(ws_buf_t *out, json_span_t conn, json_span_t node, unsigned code)
{
    put_lit(out, "{\"op\":\"disconnect\"");
    put_member(out, "conn", conn);
    put_member(out, "node", node);
    put_u64(out, "code", code);
    put_lit(out, "}");
}
