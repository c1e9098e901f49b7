/* envelope.c — decode and encode wsgw's JSON envelopes (see envelope.h). */
#include "envelope.h"

#include <stdio.h>
#include <string.h>

/* ---- codes ------------------------------------------------------------------ */

static const struct {
    const char *wire;
    const char *message;
} code_table[ENVELOPE_CODE_COUNT] = {
    [ENVELOPE_OK]                = { "ok", "ok" },
    [ENVELOPE_E_BAD_JSON]        = { "bad_json", "the message is not valid JSON" },
    [ENVELOPE_E_NOT_OBJECT]      = { "not_object", "the message must be a JSON object" },
    [ENVELOPE_E_UNKNOWN_OP]      = { "unknown_op", "unknown op; expected \"join\", \"leave\", \"emit\" or \"auth\"" },
    [ENVELOPE_E_MISSING_FIELD]   = { "missing_field", "a required field is missing" },
    [ENVELOPE_E_BAD_FIELD]       = { "bad_field", "a field has the wrong type" },
    [ENVELOPE_E_BAD_ROOM]        = { "bad_room", "invalid room name" },
    [ENVELOPE_E_BAD_EVENT]       = { "bad_event", "invalid event name" },
    [ENVELOPE_E_BAD_TARGET]      = { "bad_target",
                                     "invalid target; expected \"broadcast\", \"all\", \"room:<name>\" or \"conn:<id>\"" },
    [ENVELOPE_E_BAD_ID]          = { "bad_id", "invalid id; expected an integer 0..2^53-1 or a string of 1..64 bytes" },
    [ENVELOPE_E_DUPLICATE_FIELD] = { "duplicate_field", "a field appears twice" },
    [ENVELOPE_E_TOO_DEEP]        = { "too_deep", "JSON nested deeper than 32 levels" },
    [ENVELOPE_E_FORBIDDEN]       = { "forbidden", "not allowed" },
    [ENVELOPE_E_NOT_JOINED]      = { "not_joined", "not a member of that room" },
    [ENVELOPE_E_RATE_LIMITED]    = { "rate_limited", "too many messages; slow down" },
    [ENVELOPE_E_TOO_MANY_ROOMS]  = { "too_many_rooms", "too many rooms joined" },
    [ENVELOPE_E_INTERNAL]        = { "internal", "internal error" },
    [ENVELOPE_E_NO_BACKEND]      = { "no_backend", "no handler or backend received this event" },
    [ENVELOPE_E_UNAVAILABLE]     = { "unavailable", "the backplane is unavailable: delivered on this node only" },
    [ENVELOPE_E_UNAUTHORIZED]    = { "unauthorized", "the token was refused" },
};

static envelope_code_t code_clamp(envelope_code_t code)
{
    return (unsigned)code < ENVELOPE_CODE_COUNT ? code : ENVELOPE_E_INTERNAL;
}

const char *envelope_code_str(envelope_code_t code)
{
    return code_table[code_clamp(code)].wire;
}

const char *envelope_code_message(envelope_code_t code)
{
    return code_table[code_clamp(code)].message;
}

const char *envelope_explain(envelope_code_t code, const envelope_msg_t *m,
                             char *buf, size_t cap)
{
    const char *f = m ? m->err_field : NULL;
    if (cap == 0) return buf;
    switch (code_clamp(code)) {
    case ENVELOPE_E_BAD_JSON:
        snprintf(buf, cap, "invalid JSON at byte %zu", m ? m->err_offset : 0);
        break;
    case ENVELOPE_E_TOO_DEEP:
        snprintf(buf, cap, "JSON nested deeper than %d levels at byte %zu",
                 JSON_SCAN_MAX_DEPTH, m ? m->err_offset : 0);
        break;
    case ENVELOPE_E_MISSING_FIELD:
        if (f) snprintf(buf, cap, "missing field \"%s\"", f);
        else snprintf(buf, cap, "%s", envelope_code_message(code));
        break;
    case ENVELOPE_E_BAD_FIELD:
        if (f) snprintf(buf, cap, "field \"%s\" has the wrong type", f);
        else snprintf(buf, cap, "too many members (at most %d)", ENVELOPE_MAX_MEMBERS);
        break;
    case ENVELOPE_E_DUPLICATE_FIELD:
        if (f) snprintf(buf, cap, "duplicate field \"%s\"", f);
        else snprintf(buf, cap, "%s", envelope_code_message(code));
        break;
    default:
        snprintf(buf, cap, "%s", envelope_code_message(code));
        break;
    }
    return buf;
}

/* ---- name rules --------------------------------------------------------------- */

static int is_alnum(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int is_conn_char(uint8_t c)
{
    return is_alnum(c) || c == '_' || c == '.' || c == ':' || c == '@' || c == '-';
}

static int is_room_char(uint8_t c)
{
    return is_conn_char(c) || c == '/';
}

int envelope_room_valid(const uint8_t *name, size_t len, size_t max_len)
{
    if (max_len == 0) max_len = ENVELOPE_ROOM_NAME_DEFAULT;
    if (len == 0 || len > max_len) return 0;
    for (size_t i = 0; i < len; i++)
        if (!is_room_char(name[i])) return 0;
    return 1;
}

int envelope_conn_id_valid(const uint8_t *id, size_t len)
{
    if (len == 0 || len > ENVELOPE_CONN_ID_MAX) return 0;
    for (size_t i = 0; i < len; i++)
        if (!is_conn_char(id[i])) return 0;
    return 1;
}

/* Decoded event bytes: no C0 controls, no DEL, no C1 controls (U+0080..
 * U+009F, encoded C2 80..C2 9F).  The input is valid UTF-8, so anything
 * else is a printable or format character. */
int envelope_event_valid(const uint8_t *p, size_t len, size_t max_len)
{
    if (len == 0 || len > max_len) return 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < 0x20 || p[i] == 0x7F) return 0;
        if (p[i] == 0xC2 && i + 1 < len && p[i + 1] >= 0x80 && p[i + 1] <= 0x9F) return 0;
    }
    return 1;
}

/* ---- decode ----------------------------------------------------------------- */

enum { K_OP, K_ROOM, K_EVENT, K_TO, K_DATA, K_ID, K_TOKEN, K_COUNT };
static const char *const key_names[K_COUNT] = { "op", "room", "event", "to", "data", "id", "token" };

static int lit_equal(json_span_t raw, const char *lit)
{
    return json_str_equal(raw.p, raw.len, (const uint8_t *)lit, strlen(lit));
}

static int known_key(json_span_t key)
{
    static const uint8_t key_lens[K_COUNT] = { 2, 4, 5, 2, 4, 2, 5 };
    if (!memchr(key.p, '\\', key.len)) {
        /* the common case: a plain key, so a length check and memcmp */
        for (int k = 0; k < K_COUNT; k++)
            if (key.len == key_lens[k] && memcmp(key.p, key_names[k], key.len) == 0) return k;
        return -1;
    }
    for (int k = 0; k < K_COUNT; k++)
        if (lit_equal(key, key_names[k])) return k;
    return -1;
}

static int is_string(json_span_t v)
{
    return v.len >= 2 && v.p[0] == '"';
}

static json_span_t string_content(json_span_t v)
{
    json_span_t c = { v.p + 1, v.len - 2 };
    return c;
}

/* An id is an integer token 0..2^53-1 (digits only: the scanner already
 * refused leading zeros) or a string of 1..64 bytes as written. */
static int id_valid(json_span_t v)
{
    if (is_string(v)) return v.len - 2 >= 1 && v.len - 2 <= ENVELOPE_ID_STRING_MAX;
    if (v.len == 0 || v.len > 16) return 0;
    uint64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9') return 0;
        n = n * 10 + (uint64_t)(v.p[i] - '0');
    }
    return n <= ENVELOPE_ID_INT_MAX;
}

static envelope_code_t fail(envelope_msg_t *m, envelope_code_t code, const char *field)
{
    m->err_field = field;
    return code;
}

static envelope_code_t decode_target(json_span_t v, envelope_msg_t *m, size_t max_room)
{
    if (!is_string(v)) return fail(m, ENVELOPE_E_BAD_FIELD, "to");
    json_span_t c = string_content(v);
    /* Every valid target is plain ASCII that never needs an escape. */
    if (memchr(c.p, '\\', c.len)) return fail(m, ENVELOPE_E_BAD_TARGET, "to");
    if (c.len == 9 && memcmp(c.p, "broadcast", 9) == 0) {
        m->to = ENVELOPE_TO_BROADCAST;
        return ENVELOPE_OK;
    }
    if (c.len == 3 && memcmp(c.p, "all", 3) == 0) {
        m->to = ENVELOPE_TO_ALL;
        return ENVELOPE_OK;
    }
    if (c.len >= 5 && memcmp(c.p, "room:", 5) == 0) {
        m->to_name.p = c.p + 5;
        m->to_name.len = c.len - 5;
        if (!envelope_room_valid(m->to_name.p, m->to_name.len, max_room))
            return fail(m, ENVELOPE_E_BAD_ROOM, "to");
        m->to = ENVELOPE_TO_ROOM;
        return ENVELOPE_OK;
    }
    if (c.len >= 5 && memcmp(c.p, "conn:", 5) == 0) {
        m->to_name.p = c.p + 5;
        m->to_name.len = c.len - 5;
        if (!envelope_conn_id_valid(m->to_name.p, m->to_name.len))
            return fail(m, ENVELOPE_E_BAD_TARGET, "to");
        m->to = ENVELOPE_TO_CONN;
        return ENVELOPE_OK;
    }
    return fail(m, ENVELOPE_E_BAD_TARGET, "to");
}

static envelope_code_t decode_event(json_span_t v, envelope_msg_t *m, size_t max_event)
{
    if (!is_string(v)) return fail(m, ENVELOPE_E_BAD_FIELD, "event");
    json_span_t c = string_content(v);
    if (memchr(c.p, '\\', c.len)) {
        size_t n = json_str_unescape(c.p, c.len, m->_event_buf, max_event);
        if (n == SIZE_MAX) return fail(m, ENVELOPE_E_BAD_EVENT, "event");
        c.p = m->_event_buf;
        c.len = n;
    }
    if (!envelope_event_valid(c.p, c.len, max_event)) return fail(m, ENVELOPE_E_BAD_EVENT, "event");
    m->event = c;
    return ENVELOPE_OK;
}

static envelope_code_t decode_room(json_span_t v, envelope_msg_t *m, size_t max_room)
{
    if (!is_string(v)) return fail(m, ENVELOPE_E_BAD_FIELD, "room");
    json_span_t c = string_content(v);
    /* no escapes: every allowed byte is printable ASCII */
    if (!envelope_room_valid(c.p, c.len, max_room)) return fail(m, ENVELOPE_E_BAD_ROOM, "room");
    m->room = c;
    return ENVELOPE_OK;
}

envelope_code_t envelope_decode(const uint8_t *in, size_t len,
                                const envelope_limits_t *lim, envelope_msg_t *m)
{
    size_t max_room = lim && lim->max_room_name ? lim->max_room_name : ENVELOPE_ROOM_NAME_DEFAULT;
    size_t max_event = lim && lim->max_event_name ? lim->max_event_name : ENVELOPE_EVENT_NAME_DEFAULT;
    if (max_room > ENVELOPE_ROOM_NAME_MAX) max_room = ENVELOPE_ROOM_NAME_MAX;
    if (max_event > ENVELOPE_EVENT_NAME_MAX) max_event = ENVELOPE_EVENT_NAME_MAX;

    static const uint8_t null_lit[] = "null";
    const json_span_t none = { NULL, 0 };
    m->op = ENVELOPE_OP_NONE;
    m->room = m->event = m->to_name = m->id = m->token = m->op_name = none;
    m->to = ENVELOPE_TO_BACKEND;
    m->data.p = null_lit;
    m->data.len = 4;
    m->err_field = NULL;
    m->err_offset = 0;

    json_obj_iter_t it;
    if (json_obj_begin(&it, in, len) != JSON_OK) {
        size_t off = 0;
        json_scan_err_t r = json_scan_document(in, len, &off);
        m->err_offset = off;
        if (r == JSON_OK) return ENVELOPE_E_NOT_OBJECT;
        return r == JSON_E_DEPTH ? ENVELOPE_E_TOO_DEEP : ENVELOPE_E_BAD_JSON;
    }

    /* Duplicates: a known key repeats when its slot is already filled;
     * unknown keys are kept here and compared pairwise, which the member
     * cap bounds to <= 496 short compares with the state on the stack. */
    json_span_t other[ENVELOPE_MAX_MEMBERS];
    json_span_t val[K_COUNT] = { { NULL, 0 } };
    size_t nmembers = 0, nother = 0;
    envelope_code_t late = ENVELOPE_OK;  /* first semantic error, reported after the scan */
    const char *late_field = NULL;
    json_member_t mem;
    int r;

    /* After a semantic error the loop goes on: bad_json still wins, and a
     * later id is still worth echoing. */
    while ((r = json_obj_next(&it, &mem)) > 0) {
        int k = known_key(mem.key), dup = 0;
        if (++nmembers > ENVELOPE_MAX_MEMBERS && late == ENVELOPE_OK) {
            late = ENVELOPE_E_BAD_FIELD;  /* err_field NULL: "too many members" */
            late_field = NULL;
        }
        if (k >= 0) {
            dup = val[k].p != NULL;
        } else {
            for (size_t i = 0; i < nother && !dup; i++)
                dup = json_str_equal(other[i].p, other[i].len, mem.key.p, mem.key.len);
            if (!dup && nother < ENVELOPE_MAX_MEMBERS) other[nother++] = mem.key;
        }
        if (dup) {
            if (late == ENVELOPE_OK) {
                late = ENVELOPE_E_DUPLICATE_FIELD;
                late_field = k >= 0 ? key_names[k] : NULL;
            }
            if (k == K_ID) m->id = none;  /* which one would we echo?  neither */
            continue;
        }
        if (k < 0) continue;  /* unknown members are ignored (forward compatibility) */
        val[k] = mem.value;
        if (k == K_ID) {
            if (id_valid(mem.value)) {
                m->id = mem.value;
            } else if (late == ENVELOPE_OK) {
                late = ENVELOPE_E_BAD_ID;
                late_field = "id";
            }
        }
    }
    if (r < 0) {
        m->err_offset = it.err_off;
        if (m->id.len) {
            /* Echo the id only if a ',' or '}' properly ended it: in
             * "id":01 the scanner took "0" as the whole value. */
            size_t e = (size_t)(m->id.p + m->id.len - in);
            while (e < len && (in[e] == ' ' || in[e] == '\t' || in[e] == '\n' || in[e] == '\r')) e++;
            if (it.err_off <= e) m->id = none;
        }
        return r == JSON_E_DEPTH ? ENVELOPE_E_TOO_DEEP : ENVELOPE_E_BAD_JSON;
    }
    if (late != ENVELOPE_OK) return fail(m, late, late_field);

    json_span_t op = val[K_OP];
    if (!op.p) return fail(m, ENVELOPE_E_MISSING_FIELD, "op");
    if (!is_string(op)) return fail(m, ENVELOPE_E_BAD_FIELD, "op");
    op = string_content(op);
    m->op_name = op;
    envelope_code_t c;
    if (lit_equal(op, "join") || lit_equal(op, "leave")) {
        m->op = lit_equal(op, "join") ? ENVELOPE_OP_JOIN : ENVELOPE_OP_LEAVE;
        if (!val[K_ROOM].p) return fail(m, ENVELOPE_E_MISSING_FIELD, "room");
        c = decode_room(val[K_ROOM], m, max_room);
    } else if (lit_equal(op, "emit")) {
        m->op = ENVELOPE_OP_EMIT;
        if (!val[K_EVENT].p) return fail(m, ENVELOPE_E_MISSING_FIELD, "event");
        c = decode_event(val[K_EVENT], m, max_event);
        if (c == ENVELOPE_OK && val[K_TO].p) c = decode_target(val[K_TO], m, max_room);
        if (c == ENVELOPE_OK && val[K_DATA].p) m->data = val[K_DATA];
    } else if (lit_equal(op, "auth")) {
        /* A fresh token for this connection: compact JWS characters only,
         * so it is written without escapes (and never echoed anywhere). */
        m->op = ENVELOPE_OP_AUTH;
        if (!val[K_TOKEN].p) return fail(m, ENVELOPE_E_MISSING_FIELD, "token");
        if (!is_string(val[K_TOKEN]) || val[K_TOKEN].len < 3 || val[K_TOKEN].len > 8194 ||
            memchr(val[K_TOKEN].p + 1, '\\', val[K_TOKEN].len - 2))
            return fail(m, ENVELOPE_E_BAD_FIELD, "token");
        m->token = string_content(val[K_TOKEN]);
        c = ENVELOPE_OK;
    } else {
        return fail(m, ENVELOPE_E_UNKNOWN_OP, "op");
    }
    if (c != ENVELOPE_OK) m->op = ENVELOPE_OP_NONE;
    return c;
}

/* ---- encode ----------------------------------------------------------------- */

/* Extra bytes each input byte needs when JSON-escaped: 1 for \" \\ \b \f
 * \n \r \t, 5 for the other C0 controls (\u00XX), 0 otherwise.  Bytes >=
 * 0x80 are passed through: callers hand us UTF-8. */
static size_t esc_extra(uint8_t c)
{
    if (c == '"' || c == '\\') return 1;
    if (c >= 0x20) return 0;
    if (c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') return 1;
    return 5;
}

static size_t esc_size(json_span_t s)
{
    size_t n = s.len;
    for (size_t i = 0; i < s.len; i++) n += esc_extra(s.p[i]);
    return n;
}

static uint8_t *put(uint8_t *d, const char *lit)
{
    size_t n = strlen(lit);
    memcpy(d, lit, n);
    return d + n;
}

static uint8_t *put_span(uint8_t *d, json_span_t s)
{
    if (s.len) memcpy(d, s.p, s.len);
    return d + s.len;
}

static uint8_t *put_esc(uint8_t *d, json_span_t s)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < s.len; i++) {
        uint8_t c = s.p[i];
        if (!esc_extra(c)) { *d++ = c; continue; }
        *d++ = '\\';
        switch (c) {
        case '"':  *d++ = '"'; break;
        case '\\': *d++ = '\\'; break;
        case '\b': *d++ = 'b'; break;
        case '\f': *d++ = 'f'; break;
        case '\n': *d++ = 'n'; break;
        case '\r': *d++ = 'r'; break;
        case '\t': *d++ = 't'; break;
        default:
            *d++ = 'u'; *d++ = '0'; *d++ = '0';
            *d++ = (uint8_t)hex[c >> 4];
            *d++ = (uint8_t)hex[c & 15];
            break;
        }
    }
    return d;
}

size_t envelope_json_string_size(json_span_t s)
{
    return esc_size(s) + 2;
}

size_t envelope_json_escaped_size(json_span_t s)
{
    return esc_size(s);
}

uint8_t *envelope_json_escaped_put(uint8_t *dst, json_span_t s)
{
    return put_esc(dst, s);
}

uint8_t *envelope_json_string_put(uint8_t *dst, json_span_t s)
{
    *dst++ = '"';
    dst = put_esc(dst, s);
    *dst++ = '"';
    return dst;
}

static json_span_t cstr(const char *s)
{
    json_span_t v = { (const uint8_t *)s, strlen(s) };
    return v;
}

static const char *target_prefix(envelope_target_t to)
{
    switch (to) {
    case ENVELOPE_TO_BROADCAST: return "broadcast";
    case ENVELOPE_TO_ALL:       return "all";
    case ENVELOPE_TO_ROOM:      return "room:";
    case ENVELOPE_TO_CONN:      return "conn:";
    default:                    return NULL;
    }
}

#define LIT_LEN(s) (sizeof(s) - 1)

size_t envelope_delivery_size(const envelope_delivery_t *d)
{
    size_t n = LIT_LEN("{\"event\":\"") + esc_size(d->event) + LIT_LEN("\",\"data\":")
             + (d->data.len ? d->data.len : 4) + LIT_LEN("}");
    if (d->from.len) n += LIT_LEN(",\"from\":\"") + esc_size(d->from) + 1;
    const char *pre = target_prefix(d->to);
    if (pre) {
        n += LIT_LEN(",\"to\":\"") + strlen(pre) + 1;
        if (d->to == ENVELOPE_TO_ROOM || d->to == ENVELOPE_TO_CONN) n += esc_size(d->to_name);
    }
    return n;
}

size_t envelope_delivery_write(const envelope_delivery_t *d, uint8_t *dst)
{
    size_t n = envelope_delivery_members_write(d, dst);
    dst[n] = '}';
    return n + 1;
}

size_t envelope_delivery_members_write(const envelope_delivery_t *d, uint8_t *dst)
{
    uint8_t *p = put(dst, "{\"event\":\"");
    p = put_esc(p, d->event);
    p = put(p, "\",\"data\":");
    p = d->data.len ? put_span(p, d->data) : put(p, "null");
    if (d->from.len) {
        p = put(p, ",\"from\":\"");
        p = put_esc(p, d->from);
        *p++ = '"';
    }
    const char *pre = target_prefix(d->to);
    if (pre) {
        p = put(p, ",\"to\":\"");
        p = put(p, pre);
        if (d->to == ENVELOPE_TO_ROOM || d->to == ENVELOPE_TO_CONN) p = put_esc(p, d->to_name);
        *p++ = '"';
    }
    return (size_t)(p - dst);
}

size_t envelope_ack_size(json_span_t id)
{
    return LIT_LEN("{\"op\":\"ack\"") + (id.len ? LIT_LEN(",\"id\":") + id.len : 0) + 1;
}

size_t envelope_ack_write(json_span_t id, uint8_t *dst)
{
    uint8_t *p = put(dst, "{\"op\":\"ack\"");
    if (id.len) {
        p = put(p, ",\"id\":");
        p = put_span(p, id);
    }
    *p++ = '}';
    return (size_t)(p - dst);
}

size_t envelope_error_size(json_span_t id, envelope_code_t code, const char *message)
{
    if (!message) message = envelope_code_message(code);
    return LIT_LEN("{\"op\":\"error\",") + (id.len ? LIT_LEN("\"id\":,") + id.len : 0)
         + LIT_LEN("\"code\":\"") + strlen(envelope_code_str(code))
         + LIT_LEN("\",\"message\":\"") + esc_size(cstr(message)) + LIT_LEN("\"}");
}

size_t envelope_error_write(json_span_t id, envelope_code_t code, const char *message,
                            uint8_t *dst)
{
    if (!message) message = envelope_code_message(code);
    uint8_t *p = put(dst, "{\"op\":\"error\",");
    if (id.len) {
        p = put(p, "\"id\":");
        p = put_span(p, id);
        *p++ = ',';
    }
    p = put(p, "\"code\":\"");
    p = put(p, envelope_code_str(code));
    p = put(p, "\",\"message\":\"");
    p = put_esc(p, cstr(message));
    p = put(p, "\"}");
    return (size_t)(p - dst);
}

size_t envelope_welcome_size(json_span_t conn, uint64_t max_message_size)
{
    char digits[24];
    return LIT_LEN("{\"op\":\"welcome\",\"conn\":\"") + esc_size(conn) +
           LIT_LEN("\",\"max_message_size\":") +
           (size_t)snprintf(digits, sizeof digits, "%llu", (unsigned long long)max_message_size) + LIT_LEN("}");
}

size_t envelope_welcome_write(json_span_t conn, uint64_t max_message_size, uint8_t *dst)
{
    uint8_t *p = put(dst, "{\"op\":\"welcome\",\"conn\":\"");
    p = put_esc(p, conn);
    p = put(p, "\",\"max_message_size\":");
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)max_message_size);
    memcpy(p, digits, (size_t)n);
    p = put(p + n, "}");
    return (size_t)(p - dst);
}
