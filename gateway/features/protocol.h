/* protocol.h — the envelope protocol (docs/protocol.md) as a feature: the
 * codec of the `path` endpoint.  It decodes a text frame, checks it against
 * the configured permissions, does the join / leave / emit, and answers
 * with an ack or an error envelope — an ack that features may defer
 * (core_answer_t): a join's until its subscription is confirmed, an emit's
 * until Redis took it.
 *
 * Bad input never closes the connection by itself: each bad envelope gets
 * an error envelope and a counter.  A client that keeps sending them past
 * error_rate_limit per second (with error_rate_burst of slack) is closed
 * with 1008, because at that rate it is broken or hostile. */
#ifndef WSGW_PROTOCOL_H
#define WSGW_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"
#include "envelope.h"

typedef struct protocol protocol_t;

/* Registers the envelope codec (it must be the first codec: it serves
 * `path`) and the protocol's state on s; freed with the server.  NULL when
 * s has no room for another codec. */
protocol_t *protocol_attach(wsgw_server_t *s);

/* An op of its own: {"op":"<name>",...} envelopes that the decoder does not
 * know (or knows but leaves to a feature, as "auth") go to cb with the
 * decoded fields it read (m->id set when valid) and the raw frame, to read
 * the rest itself.  Returns 0, or -1 when the table is full. */
typedef void (*protocol_op_cb)(void *ud, wsgw_conn_t *c, const envelope_msg_t *m,
                               const uint8_t *raw, size_t len);
int protocol_op_register(protocol_t *p, const char *op, protocol_op_cb cb, void *ud);

/* Answers to one envelope client (nothing when id is empty for an ack). */
void protocol_ack(wsgw_conn_t *c, json_span_t id);
void protocol_error(wsgw_conn_t *c, json_span_t id, envelope_code_t code, const char *message);
/* The same error envelope for what is not the client's fault (the
 * backplane is unavailable, no backend is subscribed to events, a
 * refreshed token took rooms away): counted, but it does not spend the
 * error budget. */
void protocol_error_not_yours(wsgw_conn_t *c, json_span_t id, envelope_code_t code, const char *message);

/* The client permissions, one place for both codecs (envelopes and Iris):
 * a join needs join_rooms and the token's rooms claim; an emit needs the
 * target kind in emit_targets and in the token's emit claim, and a room
 * target needs membership.  Emits without a target (to backends) need
 * neither. */
int protocol_may_join(const wsgw_conn_t *c, const char *room);
envelope_code_t protocol_may_emit(const wsgw_conn_t *c, wsgw_target_kind_t kind,
                                  const char *name, size_t name_len);
/* One bad message (envelope or Iris frame): past error_rate_limit the
 * client is closed with 1008. */
void protocol_spend_error_budget(wsgw_conn_t *c);

#endif
