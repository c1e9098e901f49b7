/* envelope.h — wsgw's JSON envelope protocol: decode client messages,
 * encode deliveries, acks, errors and the welcome.  docs/protocol.md is the
 * user-facing description; this header is the contract for code.
 *
 * Client -> gateway, one JSON object per text frame:
 *   {"op":"join","room":"lobby","id":1}
 *   {"op":"leave","room":"lobby","id":2}
 *   {"op":"emit","event":"chat","to":"broadcast","data":<any JSON>,"id":3}
 *
 * Decoding is pure and allocation-free: the result is spans into the
 * caller's input (plus, for an event name written with escapes, into a
 * buffer inside the result struct).  The whole document is validated by
 * json_scan (strict RFC 8259, depth <= 32 counting the envelope object
 * itself, so `data` may nest 31 levels).  `data` is kept byte for byte.
 *
 * Encoding writes into a caller buffer whose exact size a *_size() call
 * gives first: the fan-out path sizes a delivery once, reserves room for the
 * WebSocket header in front of it, and writes the payload in one pass.
 * Every string the encoders write (event, from, to, conn, message) is
 * JSON-escaped; raw spans (data, id) are copied as they are and must
 * already be valid JSON (a decoded envelope's spans are).
 */
#ifndef WSGW_ENVELOPE_H
#define WSGW_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "json_scan.h"

#define ENVELOPE_ROOM_NAME_DEFAULT  64
#define ENVELOPE_EVENT_NAME_DEFAULT 64
#define ENVELOPE_ROOM_NAME_MAX      255  /* the config refuses more: rooms become Redis channel names */
#define ENVELOPE_EVENT_NAME_MAX     256  /* the config refuses more */
#define ENVELOPE_CONN_ID_MAX        128
#define ENVELOPE_ID_STRING_MAX      64   /* bytes between the quotes, as written */
#define ENVELOPE_ID_INT_MAX         9007199254740991ULL  /* 2^53 - 1 */
#define ENVELOPE_MAX_MEMBERS        32   /* top-level members per envelope */

/* Peer-facing limits, from the config.  A field of 0 means its default. */
typedef struct envelope_limits {
    size_t max_room_name;   /* bytes, default 64, at most ENVELOPE_ROOM_NAME_MAX */
    size_t max_event_name;  /* decoded bytes, default 64, at most 256 */
} envelope_limits_t;

typedef enum envelope_op {
    ENVELOPE_OP_NONE = 0,   /* only in a result whose decode failed */
    ENVELOPE_OP_JOIN,
    ENVELOPE_OP_LEAVE,
    ENVELOPE_OP_EMIT,
    ENVELOPE_OP_AUTH        /* {"op":"auth","token":"<JWT>"}: a fresh token */
} envelope_op_t;

typedef enum envelope_target {
    ENVELOPE_TO_BACKEND = 0, /* `to` absent: for backends only, no client gets it */
    ENVELOPE_TO_BROADCAST,   /* "broadcast": every connection but the sender */
    ENVELOPE_TO_ALL,         /* "all": every connection, sender included */
    ENVELOPE_TO_ROOM,        /* "room:<name>": the room's members, sender too if joined */
    ENVELOPE_TO_CONN         /* "conn:<id>": that one connection */
} envelope_target_t;

/* Error codes of the protocol.  Each has a stable wire string
 * (envelope_code_str) and a one-line human message (envelope_code_message).
 * envelope_decode() returns only the codes from BAD_JSON to TOO_DEEP; the
 * rest are for the gateway to send. */
typedef enum envelope_code {
    ENVELOPE_OK = 0,
    ENVELOPE_E_BAD_JSON,        /* "bad_json": not RFC 8259 JSON (err_offset set) */
    ENVELOPE_E_NOT_OBJECT,      /* "not_object": valid JSON, but not an object */
    ENVELOPE_E_UNKNOWN_OP,      /* "unknown_op": op is not join/leave/emit */
    ENVELOPE_E_MISSING_FIELD,   /* "missing_field": err_field names it */
    ENVELOPE_E_BAD_FIELD,       /* "bad_field": wrong JSON type (err_field), or > 32 members */
    ENVELOPE_E_BAD_ROOM,        /* "bad_room": room name breaks the rules */
    ENVELOPE_E_BAD_EVENT,       /* "bad_event": event name breaks the rules */
    ENVELOPE_E_BAD_TARGET,      /* "bad_target": `to` is not a known form / bad conn id */
    ENVELOPE_E_BAD_ID,          /* "bad_id": id neither an integer 0..2^53-1 nor a 1..64-byte string */
    ENVELOPE_E_DUPLICATE_FIELD, /* "duplicate_field": a top-level key repeats */
    ENVELOPE_E_TOO_DEEP,        /* "too_deep": nesting > 32 (err_offset set) */
    ENVELOPE_E_FORBIDDEN,       /* gateway: "forbidden" */
    ENVELOPE_E_NOT_JOINED,      /* gateway: "not_joined" */
    ENVELOPE_E_RATE_LIMITED,    /* gateway: "rate_limited" */
    ENVELOPE_E_TOO_MANY_ROOMS,  /* gateway: "too_many_rooms" */
    ENVELOPE_E_INTERNAL,        /* gateway: "internal" */
    ENVELOPE_E_NO_BACKEND,      /* gateway: "no_backend": an emit without "to" reached no one */
    ENVELOPE_E_UNAVAILABLE,     /* gateway: "unavailable": backplane down, other nodes missed it */
    ENVELOPE_E_UNAUTHORIZED,    /* gateway: "unauthorized": an auth op's token was refused */
    ENVELOPE_CODE_COUNT
} envelope_code_t;

/* A decoded client message.  Spans point into the input given to
 * envelope_decode() and are valid as long as it is — except `event`, which
 * may point into this struct's own _event_buf: do not copy the struct by
 * value and keep using the copy's `event`. */
typedef struct envelope_msg {
    envelope_op_t     op;
    json_span_t       room;     /* join/leave: the name (no escapes allowed, so raw == decoded) */
    json_span_t       event;    /* emit: the decoded event name (UTF-8, no control chars) */
    envelope_target_t to;       /* emit */
    json_span_t       to_name;  /* ROOM/CONN: the part after "room:"/"conn:" */
    json_span_t       data;     /* emit: the raw value, byte-exact; "null" when absent */
    json_span_t       id;       /* raw token (quotes kept for a string); len 0 = none */
    json_span_t       token;    /* auth: the JWT, between the quotes (no escapes) */
    json_span_t       op_name;  /* op as written (between the quotes), once it was read: with
                                   ENVELOPE_E_UNKNOWN_OP, an op the decoder does not know, which
                                   the caller may handle itself from the raw input */
    const char       *err_field;  /* on error: the member concerned ("op", "room", ...) or NULL */
    size_t            err_offset; /* BAD_JSON / TOO_DEEP: byte offset in the input */
    uint8_t           _event_buf[ENVELOPE_EVENT_NAME_MAX];
} envelope_msg_t;

/* Decodes one text-frame payload in[0..len) (already valid UTF-8) under
 * `lim` (NULL = defaults).  Returns ENVELOPE_OK with *m filled, or an error
 * code; on error, m->id still holds the id when one was read and valid
 * before the error was found (so the error reply can carry it), else len 0,
 * and err_field / err_offset say where.  Order of checks: JSON validity and
 * depth first (bad_json / too_deep win over everything), then, in member
 * order, duplicates and the id, then op, then the op's fields.  Fields an
 * op does not use, and unknown members, are ignored. */
envelope_code_t envelope_decode(const uint8_t *in, size_t len,
                                const envelope_limits_t *lim, envelope_msg_t *m);

/* Wire string ("bad_room") and human message for a code; "internal" and
 * its message for an out-of-range value.  Static strings. */
const char *envelope_code_str(envelope_code_t code);
const char *envelope_code_message(envelope_code_t code);

/* Formats the message for an error envelope_decode() returned, with detail
 * from *m ("missing field \"room\"", "invalid JSON at byte 17") into
 * buf[0..cap) (NUL-terminated, truncated to fit) and returns buf.  The
 * text is ASCII and never quotes client bytes. */
const char *envelope_explain(envelope_code_t code, const envelope_msg_t *m,
                             char *buf, size_t cap);

/* 1 when name[0..len) is a valid room name under max_len (0 = default):
 * 1..max_len bytes of [A-Za-z0-9_.:@/-]. */
int envelope_room_valid(const uint8_t *name, size_t len, size_t max_len);
/* 1 when p[0..len), valid UTF-8 (the caller checks), is a valid event name:
 * 1..max_len bytes without C0 controls, DEL or C1 controls.  The rule for
 * envelope events (after unescaping) and Iris events alike. */
int envelope_event_valid(const uint8_t *p, size_t len, size_t max_len);
/* 1 when id[0..len) is a valid connection id: 1..128 bytes of [A-Za-z0-9_.:@-]. */
int envelope_conn_id_valid(const uint8_t *id, size_t len);

/* ---- encoders ------------------------------------------------------------
 * Each *_size() returns the exact byte count its *_write() then writes to
 * dst (which must have that much room), and *_write() returns that count.
 * Nothing is NUL-terminated. */

/* {"event":"chat","data":<raw>,"from":"<conn>","to":"room:lobby"}
 * data.len == 0 writes null; from.len == 0 omits "from" (the sender is a
 * backend); to == ENVELOPE_TO_BACKEND omits "to". */
typedef struct envelope_delivery {
    json_span_t       event;    /* decoded name; escaped on output */
    json_span_t       data;     /* raw JSON value */
    json_span_t       from;     /* sender's conn id, or len 0 */
    envelope_target_t to;
    json_span_t       to_name;  /* for ROOM/CONN */
} envelope_delivery_t;

size_t envelope_delivery_size(const envelope_delivery_t *d);
size_t envelope_delivery_write(const envelope_delivery_t *d, uint8_t *dst);
/* The same without the closing brace (envelope_delivery_size() - 1
 * bytes), for a payload that adds members of its own (nodemsg.h). */
size_t envelope_delivery_members_write(const envelope_delivery_t *d, uint8_t *dst);

/* {"op":"ack","id":<raw id>}   ("id" omitted when id.len == 0) */
size_t envelope_ack_size(json_span_t id);
size_t envelope_ack_write(json_span_t id, uint8_t *dst);

/* {"op":"error","id":<raw id>,"code":"bad_room","message":"..."}
 * id omitted when id.len == 0; message NULL = envelope_code_message(code). */
size_t envelope_error_size(json_span_t id, envelope_code_t code, const char *message);
size_t envelope_error_write(json_span_t id, envelope_code_t code, const char *message,
                            uint8_t *dst);

/* {"op":"welcome","conn":"<conn id>","max_message_size":N}, sent when a
 * connection opens: N tells clients the largest message (bytes, after
 * decompression) the gateway takes, so they can refuse larger ones. */
size_t envelope_welcome_size(json_span_t conn, uint64_t max_message_size);
size_t envelope_welcome_write(json_span_t conn, uint64_t max_message_size, uint8_t *dst);

/* A JSON string literal for s (UTF-8): its size with the quotes and
 * escapes, and a writer that returns the end of what it wrote. */
size_t envelope_json_string_size(json_span_t s);
uint8_t *envelope_json_string_put(uint8_t *dst, json_span_t s);
/* The same without the quotes: escaping is byte by byte, so the escapes of
 * two strings side by side are the escape of the two joined. */
size_t envelope_json_escaped_size(json_span_t s);
uint8_t *envelope_json_escaped_put(uint8_t *dst, json_span_t s);

#endif
