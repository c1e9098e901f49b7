/* iris.h — the Iris v10 websocket wire format (iris-ws.js), so an
 * unmodified Iris page can talk to wsgw (docs/protocol.md, "Iris v10
 * clients").
 *
 * A typed message is one frame:
 *     iris-websocket-message:<event>;<T>;<payload>
 * where the event runs to the first ';' (so it cannot contain one), <T> is
 * one digit — 0 string, 1 int, 2 bool, 3 bytes, 4 JSON — and the payload is
 * everything after "<T>;" (it may contain ';').  A frame without the prefix
 * is a "native" message.
 *
 * wsgw's own messages carry JSON data, so the codec converts both ways:
 *   Iris -> JSON: 0 and 3 become a JSON string, 1 a JSON integer, 2 true or
 *   false, 4 is validated JSON passed through.  Like the Iris server, an int
 *   that is not an integer (the client sends true as "1;true" and 3.14 as
 *   "1;3.14"), a bool that strconv.ParseBool would refuse, and JSON null
 *   are refused (the Iris server dropped them); unlike it, malformed frames
 *   (no ';' after the event, nothing after the type digit) are errors, not
 *   a crash.
 *   JSON -> Iris: a string is sent as type 0 (its decoded text), an integer
 *   as 1, true/false as 2, anything else (objects, arrays, fractions, null)
 *   as 4.
 * Pure code: no allocation except through the caller's ws_buf_t.
 */
#ifndef WSGW_IRIS_H
#define WSGW_IRIS_H

#include <stddef.h>
#include <stdint.h>

#include "json_scan.h"
#include "ws_alloc.h"

#define IRIS_PREFIX     "iris-websocket-message:"
#define IRIS_PREFIX_LEN 23

typedef enum iris_type {
    IRIS_STRING = 0,
    IRIS_INT    = 1,
    IRIS_BOOL   = 2,
    IRIS_BYTES  = 3,
    IRIS_JSON   = 4
} iris_type_t;

typedef enum iris_err {
    IRIS_OK          = 0,
    IRIS_E_NO_EVENT  = -1,   /* prefix, but no ';' after the event, or an empty event */
    IRIS_E_TYPE      = -2,   /* the type is not one digit 0..4 followed by ';' */
    IRIS_E_INT       = -3,   /* type 1 payload is not a decimal integer (Iris dropped it) */
    IRIS_E_BOOL      = -4,   /* type 2 payload is not a ParseBool form (Iris dropped it) */
    IRIS_E_JSON      = -5,   /* type 4 payload is not JSON, or is null (Iris dropped it) */
    IRIS_E_UTF8      = -6,   /* a string payload is not UTF-8 (binary frame) */
    IRIS_E_EVENT     = -7    /* the event name breaks the envelope event rule (the gateway checks it) */
} iris_err_t;

typedef struct iris_msg {
    int         native;      /* 1: no prefix; `payload` is the whole frame */
    json_span_t event;       /* typed only */
    iris_type_t type;
    json_span_t payload;
} iris_msg_t;

/* Splits a frame.  Returns IRIS_OK (typed or native), IRIS_E_NO_EVENT or
 * IRIS_E_TYPE; spans point into `in`. */
int iris_decode(const uint8_t *in, size_t len, iris_msg_t *m);

/* Appends the JSON value for a typed message's payload to *out.  Returns
 * IRIS_OK or IRIS_E_INT / IRIS_E_BOOL / IRIS_E_JSON / IRIS_E_UTF8 (out is
 * then left as it was). */
int iris_payload_to_json(const iris_msg_t *m, ws_buf_t *out);

/* The Iris frame for an event with JSON data (a valid JSON value, as the
 * gateway holds it): an upper bound of its size, and a writer that returns
 * the bytes it wrote — 0 when the event cannot travel in Iris' format
 * (empty, or containing ';', which Iris uses as its separator). */
size_t iris_encode_size(json_span_t event, json_span_t data);
size_t iris_encode(json_span_t event, json_span_t data, uint8_t *dst);

const char *iris_err_str(int err);

#endif
