/* bp_payload.c — see bp_payload.h. */
#include "bp_payload.h"

#include <stddef.h>
#include <string.h>

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
    };
    memset(in, 0, sizeof *in);
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

