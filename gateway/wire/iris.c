/* iris.c — see iris.h. */
#include "iris.h"

#include <string.h>

#include "envelope.h"
#include "ws_utf8.h"

const char *iris_err_str(int err)
{
    switch (err) {
    case IRIS_OK:         return "ok";
    case IRIS_E_NO_EVENT: return "Iris frame without an event (no ';' after it)";
    case IRIS_E_TYPE:     return "Iris frame type is not one of 0..4 followed by ';'";
    case IRIS_E_INT:      return "Iris int payload is not an integer";
    case IRIS_E_BOOL:     return "Iris bool payload is not true/false/1/0/t/f";
    case IRIS_E_JSON:     return "Iris JSON payload is not JSON, or is null";
    case IRIS_E_UTF8:     return "Iris string payload is not UTF-8";
    case IRIS_E_EVENT:    return "Iris event name too long, not UTF-8, or with control characters";
    default:              return "unknown Iris error";
    }
}

int iris_decode(const uint8_t *in, size_t len, iris_msg_t *m)
{
    memset(m, 0, sizeof *m);
    if (len < IRIS_PREFIX_LEN || memcmp(in, IRIS_PREFIX, IRIS_PREFIX_LEN) != 0) {
        m->native = 1;
        m->payload.p = in;
        m->payload.len = len;
        return IRIS_OK;
    }
    const uint8_t *p = in + IRIS_PREFIX_LEN, *end = in + len;
    const uint8_t *semi = memchr(p, ';', (size_t)(end - p));
    if (!semi || semi == p) return IRIS_E_NO_EVENT;
    m->event.p = p;
    m->event.len = (size_t)(semi - p);
    p = semi + 1;
    /* Iris read one digit and skipped one byte unchecked; we check it. */
    if (end - p < 2 || p[0] < '0' || p[0] > '4' || p[1] != ';') return IRIS_E_TYPE;
    m->type = (iris_type_t)(p[0] - '0');
    m->payload.p = p + 2;
    m->payload.len = (size_t)(end - (p + 2));
    return IRIS_OK;
}

/* strconv.Atoi: optional sign, decimal digits, fits in 64 bits. */
static int is_go_int(json_span_t s)
{
    size_t i = 0;
    if (s.len && (s.p[0] == '-' || s.p[0] == '+')) i = 1;
    if (i == s.len || s.len - i > 19) return 0;
    for (; i < s.len; i++) if (s.p[i] < '0' || s.p[i] > '9') return 0;
    return 1;
}

static int bool_value(json_span_t s)
{
    static const char *const yes[] = { "1", "t", "T", "TRUE", "true", "True" };
    static const char *const no[] = { "0", "f", "F", "FALSE", "false", "False" };
    for (size_t i = 0; i < 6; i++) {
        if (s.len == strlen(yes[i]) && memcmp(s.p, yes[i], s.len) == 0) return 1;
        if (s.len == strlen(no[i]) && memcmp(s.p, no[i], s.len) == 0) return 0;
    }
    return -1;
}

int iris_payload_to_json(const iris_msg_t *m, ws_buf_t *out)
{
    json_span_t v = m->payload;
    switch (m->type) {
    case IRIS_STRING:
    case IRIS_BYTES: {
        if (!ws_utf8_is_valid(v.p, v.len)) return IRIS_E_UTF8;
        uint8_t *d = ws_buf_reserve(out, envelope_json_string_size(v));
        out->len += (size_t)(envelope_json_string_put(d, v) - d);
        return IRIS_OK;
    }
    case IRIS_INT: {
        if (!is_go_int(v)) return IRIS_E_INT;
        /* JSON has no '+' and no leading zeros: write the canonical form. */
        size_t i = 0;
        int neg = v.p[0] == '-';
        if (v.p[0] == '-' || v.p[0] == '+') i = 1;
        while (i + 1 < v.len && v.p[i] == '0') i++;
        int zero = v.len - i == 1 && v.p[i] == '0';
        if (neg && !zero) ws_buf_append(out, "-", 1);
        ws_buf_append(out, v.p + i, v.len - i);
        return IRIS_OK;
    }
    case IRIS_BOOL: {
        int b = bool_value(v);
        if (b < 0) return IRIS_E_BOOL;
        ws_buf_append(out, b ? "true" : "false", b ? 4 : 5);
        return IRIS_OK;
    }
    case IRIS_JSON: {
        size_t pos = 0;
        json_span_t val;
        if (json_scan_document(v.p, v.len, NULL) != JSON_OK ||
            json_scan_value(v.p, v.len, &pos, 0, &val) != JSON_OK) return IRIS_E_JSON;
        if (val.len == 4 && memcmp(val.p, "null", 4) == 0) return IRIS_E_JSON;
        ws_buf_append(out, val.p, val.len);
        return IRIS_OK;
    }
    }
    return IRIS_E_TYPE;
}

/* How a JSON value travels to an Iris client. */
static iris_type_t json_kind(json_span_t d)
{
    if (d.len && d.p[0] == '"') return IRIS_STRING;
    if ((d.len == 4 && memcmp(d.p, "true", 4) == 0) || (d.len == 5 && memcmp(d.p, "false", 5) == 0))
        return IRIS_BOOL;
    size_t i = d.len && d.p[0] == '-' ? 1 : 0;
    if (i == d.len) return IRIS_JSON;
    for (; i < d.len; i++) if (d.p[i] < '0' || d.p[i] > '9') return IRIS_JSON;
    return d.len - (d.p[0] == '-') <= 19 ? IRIS_INT : IRIS_JSON;
}

size_t iris_encode_size(json_span_t event, json_span_t data)
{
    /* A string's decoded text is never longer than its JSON form. */
    size_t n = IRIS_PREFIX_LEN + event.len + 3;
    return json_kind(data) == IRIS_STRING ? n + data.len - 2 : n + data.len;
}

size_t iris_encode(json_span_t event, json_span_t data, uint8_t *dst)
{
    if (!event.len || memchr(event.p, ';', event.len)) return 0;
    uint8_t *d = dst;
    iris_type_t t = json_kind(data);
    memcpy(d, IRIS_PREFIX, IRIS_PREFIX_LEN); d += IRIS_PREFIX_LEN;
    memcpy(d, event.p, event.len); d += event.len;
    *d++ = ';';
    *d++ = (uint8_t)('0' + t);
    *d++ = ';';
    if (t == IRIS_STRING) {
        d += json_str_unescape(data.p + 1, data.len - 2, d, data.len - 2);
    } else {
        memcpy(d, data.p, data.len);
        d += data.len;
    }
    return (size_t)(d - dst);
}
