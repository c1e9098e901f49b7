/* fuzz_bp_payload.c — what arrives from Redis (a backend can publish
 * anything): parse it as the gateway does, and check every span it returns
 * lies inside the input and that plain-string extraction stays in bounds. */
#include <stdint.h>
#include <stdlib.h>

#include "bp_payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(json_span_t v, const uint8_t *data, size_t size)
{
    if (!v.len) return;
    if (v.p < data || v.p + v.len > data + size) abort();
    json_span_t s;
    if (bp_plain_string(v, &s) && (s.p < data || s.p + s.len > data + size)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bp_payload_t p;
    if (!bp_payload_parse(data, size, &p)) return 0;
    check(p.event, data, size); check(p.data, data, size); check(p.from, data, size);
    check(p.to, data, size);    check(p.except, data, size); check(p.node, data, size);
    check(p.op, data, size);    check(p.room, data, size); check(p.code, data, size);
    check(p.reason, data, size); check(p.seq, data, size);
    uint64_t seq;
    if (bp_payload_seq(p.seq, &seq) && (seq == 0 || seq > 9007199254740991ull)) abort();
    if (p.event.len >= 2 && p.event.p[0] == '"') {
        uint8_t buf[256];
        (void)json_str_unescape(p.event.p + 1, p.event.len - 2, buf, sizeof buf);
    }
    return 0;
}
