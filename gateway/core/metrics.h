/* metrics.h — the gateway's counters and their Prometheus text rendering.
 *
 * Counters are plain uint64_t fields bumped inline on the loop thread (one
 * loop per process, so no atomics).  Gauges (connections, rooms) are read
 * from the server when /metrics is rendered.  Every limit the gateway
 * enforces has a counter here, so an operator can see it being hit. */
#ifndef WSGW_METRICS_H
#define WSGW_METRICS_H

#include <stdint.h>

#include "envelope.h"
#include "ws_alloc.h"

typedef enum wsgw_hs_fail {
    HS_FAIL_BAD_REQUEST = 0,  /* 400: malformed or not a valid upgrade */
    HS_FAIL_BAD_VERSION,      /* 426 */
    HS_FAIL_TOO_LARGE,        /* 431 */
    HS_FAIL_ORIGIN,           /* 403: CheckOrigin refused */
    HS_FAIL_ID,               /* 403: IDGenerator refused */
    HS_FAIL_TIMEOUT,          /* handshake_timeout passed */
    HS_FAIL_CAPACITY,         /* 503: max_connections / max_pending_handshakes */
    HS_FAIL_NOT_FOUND,        /* 404: upgrade on another path */
    HS_FAIL_TLS,              /* TLS handshake failed */
    HS_FAIL_PENDING,          /* max_pending_handshakes reached: closed at accept */
    HS_FAIL_IP_CONNS,         /* 429: max_conns_per_ip */
    HS_FAIL_IP_RATE,          /* 429: conn_rate_per_ip */
    HS_FAIL_AUTH,             /* 401: missing or invalid token */
    HS_FAIL_PROXY,            /* a trusted balancer's connection without a valid PROXY header */
    HS_FAIL_COUNT
} wsgw_hs_fail_t;

typedef enum wsgw_close_reason {
    CLOSE_BY_PEER = 0,        /* the client sent a close */
    CLOSE_BY_SERVER,          /* wsgw_disconnect / backend */
    CLOSE_PROTOCOL,           /* protocol error (1002/1007/1009) */
    CLOSE_SLOW_CONSUMER,
    CLOSE_PING_TIMEOUT,
    CLOSE_READ_TIMEOUT,
    CLOSE_WRITE_TIMEOUT,
    CLOSE_ABNORMAL,           /* socket ended without a close frame */
    CLOSE_SHUTDOWN,
    CLOSE_ERROR_RATE,         /* too many bad envelopes: 1008 */
    CLOSE_TOKEN_EXPIRED,      /* the token's exp passed: 4001 */
    CLOSE_REASON_COUNT
} wsgw_close_reason_t;

typedef struct wsgw_metrics {
    uint64_t connections_total;
    uint64_t closes[CLOSE_REASON_COUNT];
    uint64_t handshake_failures[HS_FAIL_COUNT];
    uint64_t messages_in;          /* data messages received */
    uint64_t bytes_in;             /* bytes read from sockets */
    uint64_t messages_out;         /* deliveries queued (one per receiver) */
    uint64_t bytes_out;            /* bytes written to sockets */
    uint64_t dropped_messages;     /* deliveries not queued: receiver closing or over limit */
    uint64_t dropped_bytes;        /* queued bytes discarded when a slow consumer was cut */
    uint64_t envelope_errors[ENVELOPE_CODE_COUNT];  /* error envelopes sent, by code */
    uint64_t http_requests;        /* plain HTTP requests answered */
    uint64_t accept_errors;        /* accept() failures (EMFILE etc.) */
    uint64_t compressed_messages;  /* outgoing messages compressed (once per fan-out) */
    uint64_t rate_limited_messages;  /* data messages refused by rate_messages */
    uint64_t rate_limited_bytes;     /* data messages refused by rate_bytes */
    uint64_t iris_errors;          /* Iris frames refused (malformed, or dropped as Iris did) */
    uint64_t http_write_timeouts;  /* HTTP responses cut: not written within http_write_timeout */
    uint64_t http_busy;            /* file/script requests answered 503 at max_http_responses */
} wsgw_metrics_t;

typedef struct wsgw_gauges {
    uint64_t connections;          /* WebSocket open */
    uint64_t handshaking;          /* handshakes under way plus HTTP responses being written */
    uint64_t http_responses;       /* HTTP responses being written */
    uint64_t rooms;
    uint64_t memberships;
    uint64_t queued_bytes;         /* over every connection */
    uint64_t uptime_seconds;
    uint64_t backplane_remote;      /* 1 with Redis */
    uint64_t backplane_up;          /* 1 when every subscription is in place */
    uint64_t backplane_published;   /* counters kept by the backplane */
    uint64_t backplane_dropped;
    uint64_t backplane_pending_bytes;
    uint64_t backplane_received;
    uint64_t backplane_reconnects;
    uint64_t backplane_stale;       /* connections found stale by the probe (then reconnected) */
    uint64_t backplane_subscriptions;
    uint64_t backplane_bad_messages;
    uint64_t backplane_lost;        /* seq gaps: other nodes' messages that never arrived */
    uint64_t backplane_late;        /* arrived after a later number: dropped (bp_seq.h) */
} wsgw_gauges_t;

const char *wsgw_hs_fail_name(wsgw_hs_fail_t f);
const char *wsgw_close_reason_name(wsgw_close_reason_t r);

/* Appends the Prometheus text exposition (format 0.0.4) to out. */
void wsgw_metrics_render(const wsgw_metrics_t *m, const wsgw_gauges_t *g, ws_buf_t *out);

#endif
