/* bp_payload.c — see bp_payload.h. */
#include "bp_payload.h"

#include <stddef.h>
#include <string.h>

#include "ws_utf8.h"

/* The content of a JSON string written without escapes (ids, rooms). */
int bp_plain_string(json_span_t v, json_span_t *out)
{
    if (v.len < 2 || v.p[0] != '"') return 0;
    for (size_t i = 1; i + 1 < v.len; i++) if (v.p[i] == '\\') return 0;
    out->p = v.p + 1;
    out->len = v.len - 2;
    return 1;
}

int bp_payload_parse(const uint8_t *p, size_t len, bp_payload_t *in)
{
    static const struct { const char *key; size_t off; } keys[] = {
        { "event", offsetof(bp_payload_t, event) }, { "data", offsetof(bp_payload_t, data) },
        { "from", offsetof(bp_payload_t, from) },   { "to", offsetof(bp_payload_t, to) },
        { "except", offsetof(bp_payload_t, except) }, { "node", offsetof(bp_payload_t, node) },
        { "op", offsetof(bp_payload_t, op) },       { "room", offsetof(bp_payload_t, room) },
        { "code", offsetof(bp_payload_t, code) },   { "reason", offsetof(bp_payload_t, reason) },
        { "seq", offsetof(bp_payload_t, seq) },
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


int bp_payload_seq(json_span_t v, uint64_t *out)
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
