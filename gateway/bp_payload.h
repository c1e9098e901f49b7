/* bp_payload.h — reading a payload that arrived from the backplane.
 *
 * Anything can arrive there: other nodes write well-formed payloads, but
 * any backend (or anyone with access to Redis) can publish anything.  This
 * is the one place that reads them: it validates the whole document as
 * RFC 8259 JSON with a top-level object and picks out the members the
 * gateway uses, as raw spans into the input (docs/protocol.md,
 * "Backplane").  Pure code, no allocation. */
#ifndef WSGW_BP_PAYLOAD_H
#define WSGW_BP_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "json_scan.h"

/* Raw value spans (len 0 when absent); a repeated member keeps the last. */
typedef struct bp_payload {
    json_span_t event, data, from, to, except, node, op, room, code, reason, seq;
} bp_payload_t;

/* 1 when p[0..len) is valid UTF-8 and a JSON object (members filled),
 * else 0. */
int bp_payload_parse(const uint8_t *p, size_t len, bp_payload_t *out);

/* The content of a JSON string value written without escapes (ids, rooms,
 * ops): 1 and *out set, or 0 when v is not such a string. */
int bp_plain_string(json_span_t v, json_span_t *out);

/* A node's sequence number (bp_seq.h): a JSON integer 1 .. 2^53 - 1 written
 * in plain digits (no sign, fraction, exponent or leading zero).  1 and
 * *out set, or 0 (absent or anything else: the payload is then taken as
 * unnumbered, as a backend's is). */
int bp_payload_seq(json_span_t v, uint64_t *out);

#endif
