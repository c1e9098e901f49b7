/* metrics.c — see metrics.h. */
#include "metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

static const char *const hs_fail_names[HS_FAIL_COUNT] = {
    "bad_request", "bad_version", "too_large", "origin", "id_refused",
    "timeout", "capacity", "not_found", "tls", "pending_limit", "ip_conns", "ip_rate", "auth",
    "proxy",
};

static const char *const close_reason_names[CLOSE_REASON_COUNT] = {
    "peer", "server", "protocol_error", "slow_consumer", "ping_timeout",
    "read_timeout", "write_timeout", "abnormal", "shutdown", "error_rate", "token_expired",
};

const char *wsgw_hs_fail_name(wsgw_hs_fail_t f) { return hs_fail_names[f]; }
const char *wsgw_close_reason_name(wsgw_close_reason_t r) { return close_reason_names[r]; }

static void put(ws_buf_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(ws_buf_t *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *dst = (char *)ws_buf_reserve(out, 256);
    int n = vsnprintf(dst, 256, fmt, ap);
    va_end(ap);
    if (n >= 256) {               /* rare: long line, format again with room */
        va_start(ap, fmt);
        dst = (char *)ws_buf_reserve(out, (size_t)n + 1);
        vsnprintf(dst, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    out->len += (size_t)n;
}

static void metric(ws_buf_t *out, const char *name, const char *type, const char *help, uint64_t v)
{
    put(out, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type, name, v);
}

void wsgw_metrics_render(const wsgw_metrics_t *m, const wsgw_gauges_t *g, ws_buf_t *out)
{
    metric(out, "wsgw_connections", "gauge", "Open WebSocket connections.", g->connections);
    metric(out, "wsgw_handshakes_pending", "gauge", "Accepted connections not yet upgraded: WebSocket handshakes under way and plain HTTP responses being written, this one included.", g->handshaking);
    metric(out, "wsgw_http_responses", "gauge", "Plain HTTP responses being written (at most max_http_responses for files and scripts), this one included.", g->http_responses);
    metric(out, "wsgw_rooms", "gauge", "Rooms with at least one local member.", g->rooms);
    metric(out, "wsgw_room_memberships", "gauge", "Room memberships over all connections.", g->memberships);
    metric(out, "wsgw_queued_bytes", "gauge", "Outgoing bytes queued over all connections.", g->queued_bytes);
    metric(out, "wsgw_uptime_seconds", "gauge", "Seconds since the server started.", g->uptime_seconds);
    metric(out, "wsgw_connections_total", "counter", "WebSocket connections opened.", m->connections_total);
    put(out, "# HELP wsgw_disconnects_total Connections closed, by reason.\n# TYPE wsgw_disconnects_total counter\n");
    for (int i = 0; i < CLOSE_REASON_COUNT; i++)
        put(out, "wsgw_disconnects_total{reason=\"%s\"} %" PRIu64 "\n", close_reason_names[i], m->closes[i]);
    put(out, "# HELP wsgw_handshake_failures_total Refused opening handshakes, by reason.\n# TYPE wsgw_handshake_failures_total counter\n");
    for (int i = 0; i < HS_FAIL_COUNT; i++)
        put(out, "wsgw_handshake_failures_total{reason=\"%s\"} %" PRIu64 "\n", hs_fail_names[i], m->handshake_failures[i]);
    metric(out, "wsgw_messages_in_total", "counter", "Data messages received from clients.", m->messages_in);
    metric(out, "wsgw_bytes_in_total", "counter", "Bytes read from client sockets.", m->bytes_in);
    metric(out, "wsgw_messages_out_total", "counter", "Messages queued to clients (one per receiver).", m->messages_out);
    metric(out, "wsgw_bytes_out_total", "counter", "Bytes written to client sockets.", m->bytes_out);
    metric(out, "wsgw_dropped_messages_total", "counter", "Deliveries not made: receiver closing or over its queue limit, an event an Iris client cannot carry, a publish the backplane dropped (also in wsgw_backplane_dropped_total).", m->dropped_messages);
    metric(out, "wsgw_dropped_bytes_total", "counter", "Queued bytes discarded when a slow consumer was cut off.", m->dropped_bytes);
    metric(out, "wsgw_slow_consumer_closes_total", "counter", "Connections closed for exceeding max_queued_bytes.", m->closes[CLOSE_SLOW_CONSUMER]);
    put(out, "# HELP wsgw_envelope_errors_total Error envelopes sent to clients (and Iris joins or emits refused for the same reason), by code (docs/protocol.md): "
             "bad input, and refusals such as forbidden, not_joined, rate_limited.\n"
             "# TYPE wsgw_envelope_errors_total counter\n");
    for (int i = 1; i < ENVELOPE_CODE_COUNT; i++)
        put(out, "wsgw_envelope_errors_total{code=\"%s\"} %" PRIu64 "\n", envelope_code_str((envelope_code_t)i),
            m->envelope_errors[i]);
    metric(out, "wsgw_http_requests_total", "counter", "Plain HTTP requests answered.", m->http_requests);
    metric(out, "wsgw_http_write_timeouts_total", "counter", "Plain HTTP responses cut because they were not written within http_write_timeout.", m->http_write_timeouts);
    metric(out, "wsgw_http_busy_total", "counter", "Requests for a file or script answered 503 because max_http_responses were being written.", m->http_busy);
    metric(out, "wsgw_accept_errors_total", "counter", "accept() failures (EMFILE and others).", m->accept_errors);
    metric(out, "wsgw_compressed_messages_total", "counter", "Outgoing messages compressed (once per fan-out).", m->compressed_messages);
    put(out, "# HELP wsgw_rate_limited_messages_total Data messages refused by a per-connection rate, by limit.\n"
             "# TYPE wsgw_rate_limited_messages_total counter\n"
             "wsgw_rate_limited_messages_total{limit=\"rate_messages\"} %" PRIu64 "\n"
             "wsgw_rate_limited_messages_total{limit=\"rate_bytes\"} %" PRIu64 "\n",
        m->rate_limited_messages, m->rate_limited_bytes);
    metric(out, "wsgw_iris_errors_total", "counter", "Iris frames refused: malformed, or dropped as the Iris server did.", m->iris_errors);
    metric(out, "wsgw_backplane_remote", "gauge", "1 when the backplane is Redis, 0 when in-process.", g->backplane_remote);
    metric(out, "wsgw_backplane_up", "gauge", "1 when the backplane is connected with every subscription restored.", g->backplane_up);
    metric(out, "wsgw_backplane_published_total", "counter", "Messages published and acknowledged by the backplane.", g->backplane_published);
    metric(out, "wsgw_backplane_dropped_total", "counter", "Publishes this node gave up on: refused at once (backplane away past redis_max_pending), refused by Redis, or unanswered when the connection dropped (those may have reached Redis).", g->backplane_dropped);
    metric(out, "wsgw_backplane_pending_bytes", "gauge", "Publish bytes waiting for the backplane.", g->backplane_pending_bytes);
    metric(out, "wsgw_backplane_received_total", "counter", "Messages received from the backplane.", g->backplane_received);
    metric(out, "wsgw_backplane_reconnects_total", "counter", "Reconnections to the backplane after a loss.", g->backplane_reconnects);
    metric(out, "wsgw_backplane_stale_total", "counter", "Times the Redis connections were found stale (a probe published to this node did not come back within 3 x redis_probe_interval) and were reconnected (logged).", g->backplane_stale);
    metric(out, "wsgw_backplane_subscriptions", "gauge", "Channels subscribed on the backplane.", g->backplane_subscriptions);
    metric(out, "wsgw_backplane_bad_messages_total", "counter", "Backplane payloads that could not be used (logged).", g->backplane_bad_messages);
    metric(out, "wsgw_backplane_lost_total", "counter", "Messages other nodes published on a channel this node subscribes to that never arrived: gaps in their sequence numbers (logged).", g->backplane_lost);
    metric(out, "wsgw_backplane_late_total", "counter", "Messages from other nodes dropped because they arrived after a later number from the same node on the same channel (a gap already counted in wsgw_backplane_lost_total, or a repeat): delivered they would have been out of order (logged).", g->backplane_late);
}
