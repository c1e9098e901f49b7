/* cluster.h — the gateway's side of the backplane as a feature (docs/protocol.md,
 * "Backplane"): channel names, the payloads other nodes and backends
 * exchange with us (gateway/wire/nodemsg.h), and the libev glue the
 * backplane needs.  It hooks into the core (core.h) for
 *
 *   conn_opened / conn_closed   P:conn:<id> subscribed, connect / disconnect events
 *   first_answer, member_joined the welcome and a join's ack held until Redis
 *                               confirmed the subscriptions (bp_sync)
 *   room_created / room_emptied P:room:<name> subscribed while it has members here
 *   publish, publish_event      deliveries and events published; the sender's
 *                               answer released with Redis' reply
 *   sweep                       heartbeats, trailers, the ageing of sequence numbers
 *   flush, health, gauges       bp_flush before the writes, /healthz, /metrics
 *
 * Its state (the backplane, the node id, sequence numbers, counters, the
 * per-loop payload buffer) is its own struct, freed with the server. */
#ifndef WSGW_CLUSTER_H
#define WSGW_CLUSTER_H

#include <stddef.h>

#include "core.h"

/* Registers the cluster on s: the in-process backplane without redis_url,
 * else Redis.  -1 with err filled when the URL is bad or the backplane
 * cannot be made. */
int cluster_attach(wsgw_server_t *s, char *err, size_t errlen);

#endif
