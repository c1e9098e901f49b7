/* nodemsg.h — reading a payload that arrived from the backplane.
 *
 * Anything can arrive there: other nodes write well-formed payloads, but
 * any backend (or anyone with access to Redis) can publish anything.  This
 * is the one place that reads them: it validates the whole document as
 * RFC 8259 JSON with a top-level object and picks out the members the
 * gateway uses, as raw spans into the input (docs/protocol.md,
 * "Backplane").  Pure code, no allocation. */
#ifndef WSGW_NODEMSG_H
#define WSGW_NODEMSG_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "json_scan.h"
#include "ws_alloc.h"

/* Raw value spans (len 0 when absent); a repeated member keeps the last. */
typedef struct nodemsg {
    json_span_t event, data, from, to, except, node, op, room, code, reason, seq, user;
} nodemsg_t;

/* 1 when p[0..len) is valid UTF-8 and a JSON object (members filled),
 * else 0. */
int nodemsg_parse(const uint8_t *p, size_t len, nodemsg_t *out);

/* The content of a JSON string value written without escapes (ids, rooms,
 * ops): 1 and *out set, or 0 when v is not such a string. */
int nodemsg_plain_string(json_span_t v, json_span_t *out);

/* A node's sequence number (cluster_seq.h): a JSON integer 1 .. 2^53 - 1 written
 * in plain digits (no sign, fraction, exponent or leading zero).  1 and
 * *out set, or 0 (absent or anything else: the payload is then taken as
 * unnumbered, as a backend's is). */
int nodemsg_seq(json_span_t v, uint64_t *out);

/* The reason of a disconnect op, decoded and cut to NODEMSG_REASON_MAX
 * bytes on a UTF-8 boundary (a cut character would make the close frame
 * invalid UTF-8 and the client fail the connection with 1007) into
 * why[0..NODEMSG_REASON_MAX + 1): its length, 0 without a reason, SIZE_MAX
 * when it is not a string or not valid UTF-8.  A close frame carries at
 * most 123 bytes of reason (RFC 6455 5.5: 125 bytes of payload, 2 of them
 * the code). */
#define NODEMSG_REASON_MAX 123
size_t nodemsg_close_reason(json_span_t v, char *why);

/* ---- writing ------------------------------------------------------------
 * Ids (node, conn) are written as they are: they are plain strings by
 * construction (randid, wsgw_id_valid).  Other strings are escaped. */

/* A delivery: {"event":..,"data":..,"from":..,"to":..,"node":"<node>"}
 * then ,"seq":N when seq > 0 and ,"user":".." when user.p is not NULL. */
void nodemsg_put_delivery(ws_buf_t *out, const envelope_delivery_t *d, json_span_t node,
                          uint64_t seq, json_span_t user);

/* A trailer: {"node":"<node>","seq":N} (cluster_seq.h). */
void nodemsg_put_trailer(ws_buf_t *out, json_span_t node, uint64_t seq);

/* {"op":"node","node":..,"connections":N,"interval_ms":..}: a heartbeat. */
void nodemsg_put_heartbeat(ws_buf_t *out, json_span_t node, uint64_t connections,
                           unsigned interval_ms);

/* {"op":"connect","conn":..,"node":..,"remote":..[,"user":..],"headers":{
 * (user only when user.p is not NULL), then one nodemsg_put_header per
 * header, then nodemsg_put_connect_end. */
void nodemsg_put_connect(ws_buf_t *out, json_span_t conn, json_span_t node, json_span_t remote,
                         json_span_t user);
/* "name":"v1, v2, ..." (a comma first unless first): the values of a
 * repeated header joined as RFC 9110 §5.3 says; each must be UTF-8. */
void nodemsg_put_header(ws_buf_t *out, int first, json_span_t name, const json_span_t *values,
                        size_t n_values);
void nodemsg_put_connect_end(ws_buf_t *out);

/* {"op":"disconnect","conn":..,"node":..,"code":N} */
void nodemsg_put_disconnect(ws_buf_t *out, json_span_t conn, json_span_t node, unsigned code);

#endif
