/* config.c — the key table and what it drives: defaults, setting one key,
 * the dump and --help.  Loading layers is config_load.c, cross-field checks
 * config_validate.c, value syntax config_parse.c. */
#include "config_private.h"
#include "envelope.h"
#include "ws_alloc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* offsetof with a type check: comparing &field with a T * pointer of another
 * type is a constraint violation, so a table line that names the wrong
 * type does not compile (-Werror).  sizeof does not evaluate it. */
#define FIELD(f, T) \
    (offsetof(wsgw_config_t, f) + 0 * sizeof(&((wsgw_config_t *)0)->f == (T *)0))

#define KBOOL(k, d, h) \
    { #k, WSGW_K_BOOL, FIELD(k, bool), d, 0, 1, 0, NULL, NULL, "BOOL", h }
#define KINT(k, d, lo, hi, fl, h) \
    { #k, WSGW_K_INT, FIELD(k, int), d, lo, hi, fl, NULL, NULL, "N", h }
#define KSIZE(k, d, lo, hi, h) \
    { #k, WSGW_K_SIZE, FIELD(k, uint64_t), d, lo, hi, 0, NULL, NULL, "SIZE", h }
#define KDUR(k, d, lo, hi, fl, h) \
    { #k, WSGW_K_DUR, FIELD(k##_ms, uint64_t), d, lo, hi, fl, NULL, NULL, "DURATION", h }
#define KSTR(k, d, chk, meta, fl, h) \
    { #k, WSGW_K_STR, FIELD(k, char *), d, 0, 0, fl, NULL, chk, meta, h }
#define KLIST(k, d, chk, meta, h) \
    { #k, WSGW_K_LIST, FIELD(k, wsgw_strlist_t), d, 0, 0, 0, NULL, chk, meta, h }
#define KENUM(k, d, names, h) \
    { #k, WSGW_K_ENUM, FIELD(k, int), d, 0, 0, 0, names, NULL, NULL, h }
#define KSET(k, d, names, h) \
    { #k, WSGW_K_SET, FIELD(k, unsigned), d, 0, 0, 0, names, NULL, NULL, h }

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define SEC 1000ull
#define MIN (60 * SEC)
#define HOUR (60 * MIN)

/* Index order = the WSGW_* enum values in config.h. */
static const char *const tls_versions[] = { "1.2", "1.3", NULL };
static const char *const id_generators[] = { "random", "header", NULL };
static const char *const slow_actions[] = { "close", "drop", NULL };
static const char *const log_levels[] = { "debug", "info", "warn", "error", NULL };
static const char *const log_formats[] = { "text", "json", NULL };
static const char *const emit_names[] = { "broadcast", "all", "room", "conn", NULL };
static const char *const backend_event_modes[] = { "none", "untargeted", "all", NULL };

/* Bounds: wide enough for any real deployment, narrow enough that a typo
 * (a missing unit letter, an extra zero) is caught rather than obeyed. */
const wsgw_key_t wsgw_keys[] = {
    KLIST(listen, "0.0.0.0:8080", wsgw_check_hostport, "HOST:PORT",
          "address for plain ws:// (repeatable; [::1]:8080; :8080 = all interfaces)"),
    KLIST(tls_listen, "", wsgw_check_hostport, "HOST:PORT",
          "address served with TLS (wss://); needs tls_cert and tls_key"),
    KSTR(tls_cert, "", NULL, "PATH", 0, "PEM certificate chain for tls_listen"),
    KSTR(tls_key, "", NULL, "PATH", 0, "PEM private key for tls_cert"),
    KENUM(tls_min_version, "1.2", tls_versions, "oldest TLS version accepted"),
    /* Forward secrecy and AEAD only: no static RSA key exchange (a stolen
     * key decrypts recorded traffic) and no CBC (Lucky13, padding oracles).
     * Every TLS 1.2 client of the last decade offers one of these. */
    KSTR(tls_ciphers,
         "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
         "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
         "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305",
         wsgw_check_tls_ciphers, "CIPHERS", 0,
         "OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are fixed); default: ECDHE with AES-GCM or ChaCha20-Poly1305 only"),
    KSTR(path, "/ws", wsgw_check_url_path, "PATH", 0, "URL path of the WebSocket endpoint"),
    KSTR(static_dir, "", NULL, "DIR", 0, "folder served at / (demo page); empty = none"),
    KSTR(client_js_path, "/wsgw.js", wsgw_check_url_path_opt, "PATH", 0,
         "URL path of the JavaScript client; empty = not served"),
    KENUM(id_generator, "random", id_generators,
          "connection ids: random = 128 bits from the OS CSPRNG; header = from id_header"),
    KSTR(id_header, "X-Connection-Id", wsgw_check_token_opt, "NAME", 0,
         "request header holding the id when id_generator=header (set by a trusted proxy: duplicates are refused per process only)"),
    KLIST(allowed_origins, "", wsgw_check_origin, "ORIGIN",
          "allowed Origin values; empty = same-origin or no Origin; * = any"),
    KDUR(handshake_timeout, "10s", 100, 5 * MIN, 0,
         "time from accept to a completed upgrade (never off: slowloris)"),
    KDUR(read_timeout, "0", 1 * SEC, 24 * HOUR, WSGW_KF_ZERO_OFF,
         "close when nothing (not even a pong) arrives for this long"),
    KDUR(write_timeout, "0", 100, 1 * HOUR, WSGW_KF_ZERO_OFF,
         "close when queued output makes no progress for this long"),
    KDUR(pong_timeout, "60s", 100, 1 * HOUR, WSGW_KF_ZERO_OFF,
         "close when no pong follows a ping within this time"),
    KDUR(ping_period, "54s", 100, 1 * HOUR, WSGW_KF_ZERO_OFF,
         "interval between server pings (Iris: 9/10 of 60s)"),
    /* Iris/gorilla default to 1024 bytes, which refuses ordinary JSON state
     * and chat payloads with close 1009.  64 KiB equals the per-loop read
     * buffer, and a connection only holds memory for a message while it is
     * being reassembled from fragments, so the larger limit costs nothing
     * per idle connection. */
    KSIZE(max_message_size, "64KiB", 16, 256 * MiB,
          "largest inbound message; larger ones close with 1009 (Iris: 1024)"),
    KBOOL(binary_messages, "false", "send every message with the binary opcode"),
    KSIZE(read_buffer_size, "64KiB", 4 * KiB, 16 * MiB, "size of the per-loop read buffer"),
    KSIZE(write_buffer_size, "16KiB", 4 * KiB, 16 * MiB, "size of the per-loop output scratch"),
    KBOOL(enable_compression, "false", "negotiate permessage-deflate"),
    KINT(compression_level, "1", 1, 9, 0, "zlib level for outgoing messages"),
    KSIZE(compression_threshold, "128", 0, 1 * GiB, "messages smaller than this go uncompressed"),
    KLIST(subprotocols, "", wsgw_check_token, "NAME",
          "Sec-WebSocket-Protocol values offered; first match in this order"),
    KSIZE(max_queued_bytes, "1MiB", 4 * KiB, 4 * GiB,
          "outgoing backlog per connection before it is a slow consumer"),
    KENUM(slow_consumer_action, "close", slow_actions,
          "what to do at max_queued_bytes: close (1008) or drop new messages"),
    KINT(max_connections, "10000", 1, 10000000, 0, "open connections per worker"),
    KINT(max_pending_handshakes, "1024", 1, 1000000, 0,
         "handshakes under way (requests not yet read); plain HTTP responses being written are apart"),
    /* A static file is streamed from its open file, never held whole: a
     * response holds an fd and, with TLS, one 64 KiB chunk (about 93 KiB
     * of RSS with OpenSSL's buffer; 0.3 KiB in cleartext, where sendfile
     * copies in the kernel).  This bounds those fds and chunks (256: 23 MiB
     * at most with TLS), and a slow reader holds a slot only for
     * http_write_timeout. */
    KINT(max_http_responses, "256", 1, 1000000, 0,
         "file and script responses being written at once (each holds an fd and at most one 64 KiB chunk); "
         "past it 503 (/healthz, /metrics, errors always answered)"),
    KDUR(http_write_timeout, "30s", 100, 1 * HOUR, 0,
         "a plain HTTP response not fully written by then is cut (never off: slow readers)"),
    KDUR(drain_spread, "0", 100, 10 * MIN, WSGW_KF_ZERO_OFF,
         "on shutdown, close clients over this long instead of all at once, so they do not "
         "reconnect to the other gateways all at once; 0 = all at once"),
    KDUR(drain_timeout, "10s", 100, 10 * MIN, WSGW_KF_ZERO_OFF,
         "on shutdown, time for clients to close before they are cut; 0 = cut at once"),
    KENUM(log_level, "info", log_levels, "least severe level logged"),
    KENUM(log_format, "text", log_formats, "log line format"),
    KINT(max_room_name, "64", 1, ENVELOPE_ROOM_NAME_MAX, 0, "longest room name in bytes"),
    KINT(max_rooms_per_conn, "64", 1, 65536, 0, "rooms one connection may join"),
    KINT(max_event_name, "64", 1, ENVELOPE_EVENT_NAME_MAX, 0, "longest event name in bytes"),
    KLIST(join_rooms, "*", wsgw_check_glob, "GLOB",
          "glob patterns of rooms a client may join; empty = none"),
    KSET(emit_targets, "broadcast,all,room", emit_names,
         "envelope targets a client may emit to (room: only rooms it joined)"),
    KINT(rate_messages, "1000", 0, 10000000, 0,
         "data messages per second per connection (token bucket); 0 = unlimited"),
    KINT(rate_messages_burst, "2000", 1, 100000000, 0, "messages a connection may send in a burst"),
    KSIZE(rate_bytes, "16MiB", 0, 64 * GiB, "data bytes per second per connection; 0 = unlimited"),
    KSIZE(rate_bytes_burst, "32MiB", 1, 64 * GiB, "bytes a connection may send in a burst"),
    KINT(max_conns_per_ip, "0", 0, 10000000, 0,
         "open connections per client address (IPv6: per /64); 0 = unlimited (behind a balancer: see proxy_protocol)"),
    KINT(conn_rate_per_ip, "0", 0, 10000000, 0, "new connections per second per client address; 0 = unlimited"),
    KINT(conn_rate_per_ip_burst, "20", 1, 10000000, 0, "new connections per client address in a burst"),
    KLIST(proxy_protocol, "", wsgw_check_cidr, "CIDR",
          "load balancers (10.0.0.0/8, fd00::/8, 192.0.2.7) that must send a PROXY protocol header first; "
          "their clients' addresses are used; empty = off"),
    KINT(error_rate_limit, "10", 0, 100000, 0,
         "bad envelopes or Iris frames per second tolerated before close 1008; 0 = never close"),
    KINT(error_rate_burst, "20", 1, 1000000, 0, "bad envelopes or Iris frames allowed in a burst"),
    KSTR(auth_hs256_secret, "", NULL, "SECRET", WSGW_KF_SECRET,
         "JWT authentication: HS256 shared secret; empty = no HS256"),
    KSTR(auth_public_key, "", wsgw_check_path_opt, "FILE", 0,
         "JWT authentication: PEM public key (RSA: RS256, EC P-256: ES256); empty = none"),
    KBOOL(auth_anonymous, "false", "with a key configured, also admit clients without a token"),
    KBOOL(auth_require_exp, "false", "refuse tokens without an exp claim (at the handshake and in auth refreshes)"),
    KSTR(auth_issuer, "", NULL, "ISS", 0, "required JWT iss; empty = any"),
    KSTR(auth_audience, "", NULL, "AUD", 0, "required JWT aud; empty = any"),
    KDUR(auth_leeway, "30s", 0, 1 * HOUR, WSGW_KF_ZERO_OFF, "clock skew allowed on exp/nbf/iat"),
    KSTR(auth_query_param, "token", wsgw_check_token_opt, "NAME", 0,
         "query parameter that may carry the token; empty = not accepted there"),
    KSTR(redis_url, "", wsgw_check_redis_url, "URL", WSGW_KF_SECRET,
         "backplane: redis://[user:pass@]host:port[/db] or unix:///path; empty = in-process"),
    KSTR(redis_prefix, "wsgw", wsgw_check_prefix, "PREFIX", 0, "prefix of Redis channel names"),
    KSTR(iris_path, "", wsgw_check_url_path_opt, "PATH", 0,
         "endpoint speaking the Iris v10 wire format (iris-ws.js); empty = off"),
    KLIST(iris_rooms, "", wsgw_check_room, "ROOM",
          "rooms every Iris connection joins on open (those join_rooms and its token allow)"),
    KSTR(iris_emit_to, "broadcast", wsgw_check_iris_target, "TARGET", 0,
         "where an Iris client's Emit goes without a server handler: broadcast, all, room:<name>, backend"),
    KSTR(iris_client_js, "", wsgw_check_path_opt, "FILE", 0,
         "file served at /iris-ws.js (Iris' own client, supplied by the operator); empty = not served"),
    KSIZE(redis_max_pending, "8MiB", 64 * KiB, 1 * GiB,
          "publishes held while Redis is slow or away; past it they are dropped and counted"),
    KDUR(redis_probe_interval, "500ms", 100, 1 * MIN, WSGW_KF_ZERO_OFF,
         "stale-connection probe to PREFIX:probe:<node> this often; not back within 3 intervals "
         "(8 when Redis answers nothing): stale, reconnect"),
    KENUM(backend_events, "untargeted", backend_event_modes,
          "client events published to PREFIX:events: none, untargeted (no \"to\") or all"),
    KBOOL(lifecycle_events, "true", "publish connect/disconnect to PREFIX:lifecycle"),
    KLIST(lifecycle_headers, "User-Agent,Origin,X-Forwarded-For", wsgw_check_token, "HEADER",
          "request headers passed to backends in connect events"),
    KINT(workers, "1", 1, 256, WSGW_KF_AUTO, "worker processes; auto = one per CPU"),
};
const size_t wsgw_nkeys = sizeof wsgw_keys / sizeof wsgw_keys[0];

_Static_assert(sizeof wsgw_keys / sizeof wsgw_keys[0] <= WSGW_CONFIG_MAX_KEYS,
               "raise WSGW_CONFIG_MAX_KEYS");

#define MAX_VALUE 65536   /* bytes of one value (a whole list) */
#define MAX_ITEM  4096    /* bytes of one string or list item */
#define MAX_ITEMS 256     /* items of one list */

const char *wsgw_config_key(size_t i)
{
    return i < wsgw_nkeys ? wsgw_keys[i].key : NULL;
}

size_t wsgw_key_index(const wsgw_key_t *k)
{
    return (size_t)(k - wsgw_keys);
}

const char *wsgw_from_name(unsigned from)
{
    static const char *const names[] = { "default", "set", "file", "environment", "flag" };
    return from < sizeof names / sizeof names[0] ? names[from] : "?";
}

const wsgw_key_t *wsgw_key_find(const char *name, size_t len)
{
    for (size_t i = 0; i < wsgw_nkeys; i++) {
        const char *k = wsgw_keys[i].key;
        size_t j = 0;
        for (; j < len && k[j]; j++) {
            int c = tolower((unsigned char)name[j]);
            if (c == '-') c = '_';
            if (c != k[j]) break;
        }
        if (j == len && k[j] == '\0') return &wsgw_keys[i];
    }
    return NULL;
}

void wsgw_config_begin_layer(wsgw_config_t *cfg, unsigned from)
{
    cfg->_layer++;
    cfg->_from = (unsigned char)from;
}

#define AT(cfg, k, T) ((T *)((char *)(cfg) + (k)->off))
#define CAT(cfg, k, T) ((const T *)((const char *)(cfg) + (k)->off))

static void list_clear(wsgw_strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++) ws_xfree(l->v[i]);
    ws_xfree(l->v);
    l->v = NULL;
    l->n = 0;
}

static void list_push(wsgw_strlist_t *l, const char *s, size_t n)
{
    l->v = ws_xrealloc(l->v, (l->n + 2) * sizeof *l->v);
    l->v[l->n++] = ws_xstrndup(s, n);
    l->v[l->n] = NULL;
}

/* Splits a list value at commas into trimmed items.  Fills item[]/ilen[]
 * (pointers into s) and returns the count, or -1 for an empty item or too
 * many; a value of only spaces is zero items. */
static int split_items(const char *s, const char **item, size_t *ilen, const char **why)
{
    int n = 0;
    if (s[strspn(s, " \t")] == '\0') return 0;
    for (;;) {
        const char *end = strchr(s, ',');
        if (!end) end = s + strlen(s);
        const char *a = s, *b = end;
        while (a < b && (*a == ' ' || *a == '\t')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
        if (a == b) { *why = "empty item in a comma-separated list"; return -1; }
        if (n == MAX_ITEMS) { *why = "too many items (at most 256)"; return -1; }
        item[n] = a;
        ilen[n++] = (size_t)(b - a);
        if (!*end) return n;
        s = end + 1;
    }
}

static int set_fail(const wsgw_key_t *k, const char *label, const char *value,
                    const char *why, char *err, size_t errlen)
{
    char shown[256];
    wsgw_fmt_shown(value, shown, sizeof shown);
    snprintf(err, errlen, "%s: %s=%s: %s", k->key, label, shown, why);
    return -1;
}

static int range_fail(const wsgw_key_t *k, const char *label, const char *value,
                      char *err, size_t errlen)
{
    char lo[32], hi[32], why[128];
    if (k->type == WSGW_K_SIZE) {
        wsgw_fmt_size(k->min, lo, sizeof lo);
        wsgw_fmt_size(k->max, hi, sizeof hi);
    } else if (k->type == WSGW_K_DUR) {
        wsgw_fmt_duration(k->min, lo, sizeof lo);
        wsgw_fmt_duration(k->max, hi, sizeof hi);
    } else {
        snprintf(lo, sizeof lo, "%llu", (unsigned long long)k->min);
        snprintf(hi, sizeof hi, "%llu", (unsigned long long)k->max);
    }
    snprintf(why, sizeof why, "out of range (%s..%s%s)", lo, hi,
             k->flags & WSGW_KF_ZERO_OFF ? ", or 0 for off" :
             k->flags & WSGW_KF_AUTO ? ", or auto" : "");
    return set_fail(k, label, value, why, err, errlen);
}

/* Index of s in a NULL-terminated name list, or -1. */
static int name_index(const char *const *names, const char *s, size_t n)
{
    for (int i = 0; names[i]; i++)
        if (strlen(names[i]) == n && strncasecmp(names[i], s, n) == 0) return i;
    return -1;
}

static int enum_fail(const wsgw_key_t *k, const char *label, const char *value,
                     char *err, size_t errlen)
{
    char why[160] = "must be one of ";
    for (int i = 0; k->names[i]; i++) {
        if (i) strcat(why, "|");
        strcat(why, k->names[i]);
    }
    return set_fail(k, label, value, why, err, errlen);
}

int wsgw_config_set_key(wsgw_config_t *cfg, const wsgw_key_t *k, const char *value,
                        const char *label, char *err, size_t errlen)
{
    size_t idx = wsgw_key_index(k);
    int new_layer = cfg->_key_layer[idx] != cfg->_layer;
    const char *why = NULL;
    uint64_t u = 0;

    size_t vlen = strlen(value);
    if (vlen > MAX_VALUE || (vlen > MAX_ITEM && k->type != WSGW_K_LIST && k->type != WSGW_K_SET))
        return set_fail(k, label, value, vlen > MAX_VALUE ? "longer than 65536 bytes" :
                        "longer than 4096 bytes", err, errlen);
    for (const char *p = value; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return set_fail(k, label, value, "control character in value", err, errlen);
    if (!new_layer && k->type != WSGW_K_LIST && k->type != WSGW_K_SET)
        return set_fail(k, label, value,
                        cfg->_from == WSGW_FROM_FILE ? "set twice in this file (only list keys repeat)" :
                        cfg->_from == WSGW_FROM_FLAG ? "flag given twice (only list keys repeat)" :
                        "set twice (only list keys repeat)", err, errlen);

    switch (k->type) {
    case WSGW_K_BOOL: {
        bool b;
        if (wsgw_parse_bool(value, &b, &why) != 0) return set_fail(k, label, value, why, err, errlen);
        *AT(cfg, k, bool) = b;
        break;
    }
    case WSGW_K_INT: {
        if ((k->flags & WSGW_KF_AUTO) && strcasecmp(value, "auto") == 0) {
            *AT(cfg, k, int) = 0;
            break;
        }
        int rc = wsgw_parse_uint(value, k->max, &u);
        if (rc == -1)
            return set_fail(k, label, value, k->flags & WSGW_KF_AUTO ?
                            "not a whole number or auto" : "not a whole number", err, errlen);
        if (rc == -2 || u < k->min) return range_fail(k, label, value, err, errlen);
        *AT(cfg, k, int) = (int)u;
        break;
    }
    case WSGW_K_SIZE:
        if (wsgw_parse_size(value, &u, &why) != 0) return set_fail(k, label, value, why, err, errlen);
        if (u < k->min || u > k->max) return range_fail(k, label, value, err, errlen);
        *AT(cfg, k, uint64_t) = u;
        break;
    case WSGW_K_DUR:
        if (wsgw_parse_duration_ms(value, &u, &why) != 0)
            return set_fail(k, label, value, why, err, errlen);
        if (u == 0 && !(k->flags & WSGW_KF_ZERO_OFF))
            return set_fail(k, label, value, "cannot be 0 (off) for this key", err, errlen);
        if (u != 0 && (u < k->min || u > k->max)) return range_fail(k, label, value, err, errlen);
        *AT(cfg, k, uint64_t) = u;
        break;
    case WSGW_K_STR: {
        if (k->check && (why = k->check(value)) != NULL)
            return set_fail(k, label, value, why, err, errlen);
        char **slot = AT(cfg, k, char *);
        ws_xfree(*slot);
        *slot = ws_xstrndup(value, strlen(value));
        break;
    }
    case WSGW_K_ENUM: {
        int i = name_index(k->names, value, strlen(value));
        if (i < 0) return enum_fail(k, label, value, err, errlen);
        *AT(cfg, k, int) = i;
        break;
    }
    case WSGW_K_LIST:
    case WSGW_K_SET: {
        const char *item[MAX_ITEMS];
        size_t ilen[MAX_ITEMS];
        unsigned mask = 0;
        int n = split_items(value, item, ilen, &why);
        if (n < 0) return set_fail(k, label, value, why, err, errlen);
        for (int i = 0; i < n; i++) {
            if (k->type == WSGW_K_SET) {
                int bit = name_index(k->names, item[i], ilen[i]);
                if (bit < 0) return enum_fail(k, label, value, err, errlen);
                mask |= 1u << bit;
            } else if (ilen[i] > MAX_ITEM) {
                return set_fail(k, label, value, "an item is longer than 4096 bytes", err, errlen);
            } else if (k->check) {
                char one[MAX_ITEM + 1];
                memcpy(one, item[i], ilen[i]);
                one[ilen[i]] = '\0';
                if ((why = k->check(one)) != NULL) {
                    char msg[256], shown[128];
                    wsgw_fmt_shown(one, shown, sizeof shown);
                    if (n == 1) snprintf(msg, sizeof msg, "%s", why);
                    else snprintf(msg, sizeof msg, "item \"%s\": %s", shown, why);
                    return set_fail(k, label, value, msg, err, errlen);
                }
            }
        }
        if (k->type == WSGW_K_SET) {
            unsigned *m = AT(cfg, k, unsigned);
            *m = new_layer ? mask : (*m | mask);
            break;
        }
        wsgw_strlist_t *l = AT(cfg, k, wsgw_strlist_t);
        if ((new_layer ? 0 : l->n) + (size_t)n > MAX_ITEMS)
            return set_fail(k, label, value, "too many items (at most 256)", err, errlen);
        if (new_layer) list_clear(l);
        for (int i = 0; i < n; i++) list_push(l, item[i], ilen[i]);
        break;
    }
    }
    cfg->_key_layer[idx] = cfg->_layer;
    cfg->_key_from[idx] = cfg->_from;
    return 0;
}

int wsgw_config_set(wsgw_config_t *cfg, const char *key, const char *value,
                    const char *source, char *err, size_t errlen)
{
    const wsgw_key_t *k = wsgw_key_find(key, strlen(key));
    if (!k) {
        char shown[128];
        wsgw_fmt_shown(key, shown, sizeof shown);
        snprintf(err, errlen, "%s: unknown key \"%s\" (see --help)", source ? source : "set", shown);
        return -1;
    }
    return wsgw_config_set_key(cfg, k, value, source ? source : k->key, err, errlen);
}

void wsgw_config_init(wsgw_config_t *cfg)
{
    char err[256];
    memset(cfg, 0, sizeof *cfg);
    cfg->config_path = ws_xstrndup("", 0);
    cfg->_layer = 1;
    cfg->_from = WSGW_FROM_DEFAULT;
    for (size_t i = 0; i < wsgw_nkeys; i++) {
        if (wsgw_config_set_key(cfg, &wsgw_keys[i], wsgw_keys[i].def, "default", err, sizeof err) != 0) {
            fprintf(stderr, "wsgw: fatal: bad built-in default: %s\n", err);
            abort();
        }
    }
    wsgw_config_begin_layer(cfg, WSGW_FROM_SET);
}

void wsgw_config_free(wsgw_config_t *cfg)
{
    for (size_t i = 0; i < wsgw_nkeys; i++) {
        const wsgw_key_t *k = &wsgw_keys[i];
        if (k->type == WSGW_K_STR) {
            ws_xfree(*AT(cfg, k, char *));
            *AT(cfg, k, char *) = NULL;
        } else if (k->type == WSGW_K_LIST) {
            list_clear(AT(cfg, k, wsgw_strlist_t));
        }
    }
    ws_xfree(cfg->config_path);
    memset(cfg, 0, sizeof *cfg);
}

/* Appends s[0..l) to buf[n] at *o, as far as it fits. */
static void put_n(char *buf, size_t n, size_t *o, const char *s, size_t l)
{
    if (*o + 1 >= n) return;
    if (l > n - 1 - *o) l = n - 1 - *o;
    memcpy(buf + *o, s, l);
    *o += l;
    buf[*o] = '\0';
}

static void put(char *buf, size_t n, size_t *o, const char *s)
{
    put_n(buf, n, o, s, strlen(s));
}

/* redis://user:secret@host -> redis://user:***@host */
/* Secrets in the dump: a URL keeps all but its password; any other
 * non-empty secret is written as *** whole. */
static void mask_url(const char *url, char *buf, size_t n)
{
    const char *auth = strstr(url, "://");
    size_t o = 0;
    buf[0] = '\0';
    if (!auth && url[0]) {
        put(buf, n, &o, "***");
        return;
    }
    if (auth) {
        auth += 3;
        const char *end = auth + strcspn(auth, "/");
        const char *at = NULL;
        for (const char *p = auth; p < end; p++)
            if (*p == '@') at = p;
        const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon) {
            put_n(buf, n, &o, url, (size_t)(colon + 1 - url));
            put(buf, n, &o, "***");
            put(buf, n, &o, at);
            return;
        }
    }
    put(buf, n, &o, url);
}

void wsgw_config_format(const wsgw_config_t *cfg, const wsgw_key_t *k, char *buf, size_t n)
{
    size_t o = 0;
    buf[0] = '\0';
    switch (k->type) {
    case WSGW_K_BOOL:
        put(buf, n, &o, *CAT(cfg, k, bool) ? "true" : "false");
        break;
    case WSGW_K_INT:
        if ((k->flags & WSGW_KF_AUTO) && *CAT(cfg, k, int) == 0) put(buf, n, &o, "auto");
        else snprintf(buf, n, "%d", *CAT(cfg, k, int));
        break;
    case WSGW_K_SIZE:
        wsgw_fmt_size(*CAT(cfg, k, uint64_t), buf, n);
        break;
    case WSGW_K_DUR:
        wsgw_fmt_duration(*CAT(cfg, k, uint64_t), buf, n);
        break;
    case WSGW_K_STR:
        if (k->flags & WSGW_KF_SECRET) mask_url(*CAT(cfg, k, char *), buf, n);
        else put(buf, n, &o, *CAT(cfg, k, char *));
        break;
    case WSGW_K_ENUM:
        put(buf, n, &o, k->names[*CAT(cfg, k, int)]);
        break;
    case WSGW_K_LIST: {
        const wsgw_strlist_t *l = CAT(cfg, k, wsgw_strlist_t);
        for (size_t i = 0; i < l->n; i++) {
            if (i) put(buf, n, &o, ",");
            put(buf, n, &o, l->v[i]);
        }
        break;
    }
    case WSGW_K_SET: {
        unsigned m = *CAT(cfg, k, unsigned);
        for (int i = 0; k->names[i]; i++) {
            if (!(m & (1u << i))) continue;
            if (o) put(buf, n, &o, ",");
            put(buf, n, &o, k->names[i]);
        }
        break;
    }
    }
}

/* Writes v so that the file parser reads it back: bare when it survives
 * trimming and has no '#', '"' or '\\', else double-quoted with escapes. */
static void put_value(FILE *out, const char *v, int empty_bare)
{
    size_t n = strlen(v);
    int bare = n ? !strpbrk(v, "#\"\\") && v[0] != ' ' && v[0] != '\t' &&
                   v[n - 1] != ' ' && v[n - 1] != '\t'
                 : empty_bare;
    if (bare) { fputs(v, out); return; }
    fputc('"', out);
    for (; *v; v++) {
        if (*v == '"' || *v == '\\') fputc('\\', out);
        fputc(*v, out);
    }
    fputc('"', out);
}

size_t wsgw_config_format_cap(const wsgw_config_t *cfg, const wsgw_key_t *k)
{
    size_t cap = 128;  /* numbers, enums, sets */
    if (k->type == WSGW_K_STR) {
        cap += strlen(*CAT(cfg, k, char *));  /* "***" may be longer than the password */
    } else if (k->type == WSGW_K_LIST) {
        const wsgw_strlist_t *l = CAT(cfg, k, wsgw_strlist_t);
        for (size_t i = 0; i < l->n; i++) cap += strlen(l->v[i]) + 1;
    }
    return cap;
}

void wsgw_config_dump(const wsgw_config_t *cfg, FILE *out)
{
    for (size_t i = 0; i < wsgw_nkeys; i++) {
        const wsgw_key_t *k = &wsgw_keys[i];
        size_t cap = wsgw_config_format_cap(cfg, k);
        char *buf = ws_xmalloc(cap);
        wsgw_config_format(cfg, k, buf, cap);
        fprintf(out, "%s=", k->key);
        put_value(out, buf, k->type == WSGW_K_LIST || k->type == WSGW_K_SET);
        fputc('\n', out);
        ws_xfree(buf);
    }
}

static void type_text(const wsgw_key_t *k, char *buf, size_t n)
{
    char lo[32], hi[32];
    size_t o = 0;
    switch (k->type) {
    case WSGW_K_BOOL: snprintf(buf, n, "bool"); break;
    case WSGW_K_INT:
        snprintf(buf, n, "int %llu..%llu%s", (unsigned long long)k->min,
                 (unsigned long long)k->max, k->flags & WSGW_KF_AUTO ? " or auto" : "");
        break;
    case WSGW_K_SIZE:
        wsgw_fmt_size(k->min, lo, sizeof lo);
        wsgw_fmt_size(k->max, hi, sizeof hi);
        snprintf(buf, n, "size %s..%s", lo, hi);
        break;
    case WSGW_K_DUR:
        wsgw_fmt_duration(k->min, lo, sizeof lo);
        wsgw_fmt_duration(k->max, hi, sizeof hi);
        snprintf(buf, n, "duration %s..%s%s", lo, hi,
                 k->flags & WSGW_KF_ZERO_OFF ? ", 0 = off" : "");
        break;
    case WSGW_K_STR: snprintf(buf, n, "string"); break;
    case WSGW_K_LIST: snprintf(buf, n, "list"); break;
    case WSGW_K_ENUM:
    case WSGW_K_SET:
        buf[0] = '\0';
        put(buf, n, &o, k->type == WSGW_K_ENUM ? "enum " : "set of ");
        for (int i = 0; k->names[i]; i++) {
            if (i) put(buf, n, &o, k->type == WSGW_K_ENUM ? "|" : ",");
            put(buf, n, &o, k->names[i]);
        }
        break;
    }
}

void wsgw_config_usage(FILE *out)
{
    fputs("Usage: wsgw [--config FILE] [--KEY VALUE | --KEY=VALUE]...\n"
          "       wsgw --help | --version\n"
          "\n"
          "Every KEY below is also a config-file line (key = value) and an environment\n"
          "variable (WSGW_KEY in upper case).  Later layers win: defaults < file <\n"
          "environment < flags.  --config FILE (or WSGW_CONFIG) names the file.\n"
          "Lists take comma-separated items; list flags repeat (--listen a --listen b).\n"
          "Sizes: 1024, 64KiB (64k), 1MiB (1m), 1GiB.  Durations need a unit: 500ms,\n"
          "54s, 2m, 1h, 1m30s; 0 = off where allowed.  Bools: true/false, yes/no, on/off, 1/0.\n"
          "\n", out);
    for (size_t i = 0; i < wsgw_nkeys; i++) {
        const wsgw_key_t *k = &wsgw_keys[i];
        char flag[64], type[160];
        size_t j;
        for (j = 0; k->key[j] && j + 1 < sizeof flag; j++)
            flag[j] = k->key[j] == '_' ? '-' : k->key[j];
        flag[j] = '\0';
        type_text(k, type, sizeof type);
        fprintf(out, "  --%s %s\n      %s; %s; default: %s\n", flag,
                k->meta ? k->meta : "VALUE", k->help, type, k->def[0] ? k->def : "(empty)");
    }
}
