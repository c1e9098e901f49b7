/* config.h — every setting of the gateway, its default, and the four layers
 * that set it: defaults < config file < environment < command-line flags.
 *
 * Pure code: no sockets, no event loop.  One static table in config.c
 * ({key, type, field, default text, min, max, help}) drives defaults,
 * parsing, environment variables, flags, --help and the dump, so a new key
 * is one line there plus its field below.
 *
 * NAMES.  A key is snake_case (max_message_size).  The same key is
 *   - a file line      max_message_size = 64KiB
 *   - an env variable  WSGW_MAX_MESSAGE_SIZE=64KiB
 *   - a flag           --max-message-size 64KiB, --max-message-size=64KiB,
 *                      --max_message_size 64KiB (dashes and underscores are
 *                      interchangeable, so are upper and lower case).
 * Extra flags: --config FILE (or WSGW_CONFIG=FILE; the flag wins), --help
 * (-h), --version.  A bool flag alone (--enable-compression) means true
 * unless the next argument is a value that does not start with '-'.
 * Anything else on the command line, an unknown WSGW_* variable or an
 * unknown file key is an error: a typo must not be ignored.
 *
 * FILE FORMAT (see deploy/wsgw.conf for every key with its default):
 *   # a comment                       blank lines are ignored
 *   key = value                       spaces around '=' and the value are trimmed
 *   key = value   # trailing comment  '#' starts a comment in an unquoted value
 *   key = "a # b \"c\" \\ d"           double quotes keep '#' and spaces; the
 *                                      only escapes are \" and \\
 *   listen = :8080                    list keys may repeat (the items add up)
 *   listen = [::1]:8081, 10.0.0.1:80  or take comma-separated items
 *   allowed_origins =                 an empty value empties a list
 * CRLF line ends and a UTF-8 BOM are accepted; control characters and NUL
 * bytes in values are not.  A scalar key given twice in one file, or as two
 * flags, is an error (which one was meant?).  A list key set in a later
 * layer replaces the earlier layer's list: WSGW_LISTEN=a,b drops the file's
 * listen lines, and two --listen flags give a two-item list.
 *
 * VALUE TYPES.
 *   bool      true/false, yes/no, on/off, 1/0 (any case)
 *   int       decimal, within the key's range; workers also takes "auto"
 *   size      bytes: 1024, 64KiB = 64k = 64K, 1MiB = 1m = 1M, 1GiB = 1g = 1G,
 *             an optional trailing B (128B).  KB/MB/GB are refused as ambiguous.
 *   duration  a number with a unit, or several: 500ms, 54s, 2m, 1h, 1m30s.
 *             A bare number is an error (was it ms or s?) except 0, which
 *             means "off" on keys that allow it.  Stored as milliseconds.
 *   string    any text without control characters (max 4096 bytes)
 *   list      comma-separated strings, each checked like the key's items
 *             (at most 256 items of 4096 bytes; 64 KiB per value)
 *   enum      one of the names the key lists (any case)
 *   set       comma-separated names from the key's list (emit_targets)
 *
 * ERRORS.  Setup-style: functions return -1 and write one line into
 * `err` (always NUL-terminated, truncated to errlen) that names the key, the
 * source and the reason, e.g.
 *   max_message_size: WSGW_MAX_MESSAGE_SIZE=12x: not a size (use 1024, 64KiB, 1MiB)
 *   max_message_size: --max-message-size=12x: ...
 *   max_message_size: /etc/wsgw.conf:12: max_message_size=12x: ...
 * A bad value never falls back to a default.
 */
#ifndef WSGW_CONFIG_H
#define WSGW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"

#ifndef WSGW_VERSION
#define WSGW_VERSION "0.1.0-dev"
#endif

/* Room for private per-key bookkeeping; config.c asserts the table fits. */
#define WSGW_CONFIG_MAX_KEYS 96

/* A list of strings owned by the config.  v[0..n) are the items and v[n] is
 * NULL (v itself is NULL while n == 0), so `for (char **p = l.v; p && *p; p++)`
 * works too.  Items never contain commas or control characters and are
 * trimmed of surrounding spaces. */
typedef struct wsgw_strlist {
    char   **v;
    size_t   n;
} wsgw_strlist_t;

/* Enum values; the int fields below hold these. */
enum { WSGW_TLS_1_2 = 0, WSGW_TLS_1_3 = 1 };
enum { WSGW_ID_RANDOM = 0, WSGW_ID_HEADER = 1 };
enum { WSGW_SLOW_CLOSE = 0, WSGW_SLOW_DROP = 1 };
/* Log levels: wsgw_log_level_t in log.h (WSGW_LOG_DEBUG..WSGW_LOG_ERROR). */
enum { WSGW_LOG_TEXT = 0, WSGW_LOG_JSON = 1 };
enum { WSGW_BACKEND_EVENTS_NONE = 0, WSGW_BACKEND_EVENTS_UNTARGETED = 1, WSGW_BACKEND_EVENTS_ALL = 2 };
/* Bits of emit_targets: which envelope targets a client may emit to. */
enum {
    WSGW_EMIT_BROADCAST = 1u << 0, /* everyone but the sender */
    WSGW_EMIT_ALL       = 1u << 1, /* everyone including the sender */
    WSGW_EMIT_ROOM      = 1u << 2, /* the members of one room */
    WSGW_EMIT_CONN      = 1u << 3  /* one connection by id */
};

/* Every setting.  Strings are never NULL after wsgw_config_init() ("" means
 * unset); durations are milliseconds (0 = off where the key allows it);
 * sizes are bytes.  Fields starting with '_' are private. */
typedef struct wsgw_config {
    /* listeners and TLS */
    wsgw_strlist_t listen;            /* HOST:PORT, [v6]:PORT, :PORT (all interfaces) */
    wsgw_strlist_t tls_listen;        /* same, served with TLS */
    char          *tls_cert;          /* PEM certificate chain path */
    char          *tls_key;           /* PEM private key path */
    int            tls_min_version;   /* WSGW_TLS_* */
    char          *tls_ciphers;       /* OpenSSL cipher list for TLS <= 1.2 */
    /* HTTP surface */
    char          *path;              /* WebSocket endpoint, starts with '/' */
    char          *static_dir;        /* served at / when not "" */
    char          *client_js_path;    /* where the JS client is served; "" = not served */
    int            id_generator;      /* WSGW_ID_* */
    char          *id_header;         /* request header holding the id (id_generator=header) */
    wsgw_strlist_t allowed_origins;   /* empty = same-origin + no Origin; "*" = all */
    /* timeouts (ms) */
    uint64_t       handshake_timeout_ms;
    uint64_t       read_timeout_ms;
    uint64_t       write_timeout_ms;
    uint64_t       pong_timeout_ms;
    uint64_t       ping_period_ms;
    uint64_t       drain_timeout_ms;
    uint64_t       drain_spread_ms;    /* 0: every client gets its 1001 at once */
    /* messages and buffers (bytes) */
    uint64_t       max_message_size;
    bool           binary_messages;
    uint64_t       read_buffer_size;
    uint64_t       write_buffer_size;
    /* permessage-deflate */
    bool           enable_compression;
    int            compression_level;           /* 1..9 */
    uint64_t       compression_threshold;       /* smaller messages go uncompressed */
    wsgw_strlist_t subprotocols;                /* first match in this order wins */
    /* back-pressure and limits */
    uint64_t       max_queued_bytes;
    int            slow_consumer_action;        /* WSGW_SLOW_* */
    int            max_connections;
    int            max_pending_handshakes;
    int            max_http_responses;  /* file/script responses in flight; past it 503 */
    uint64_t       http_write_timeout_ms; /* a plain HTTP response is cut after this */
    /* logging */
    int            log_level;                   /* WSGW_LOG_DEBUG..ERROR */
    int            log_format;                  /* WSGW_LOG_TEXT / JSON */
    /* rooms and envelopes */
    int            max_room_name;
    int            max_rooms_per_conn;
    int            max_event_name;
    wsgw_strlist_t join_rooms;                  /* glob patterns */
    unsigned       emit_targets;                /* WSGW_EMIT_* bits */
    int            rate_messages;               /* per connection per second; 0 = off */
    int            rate_messages_burst;
    uint64_t       rate_bytes;                  /* per connection per second; 0 = off */
    uint64_t       rate_bytes_burst;
    int            max_conns_per_ip;            /* 0 = off */
    int            conn_rate_per_ip;            /* new connections/s per address; 0 = off */
    int            conn_rate_per_ip_burst;
    wsgw_strlist_t proxy_protocol;              /* CIDRs of balancers that send a PROXY header; empty = off */
    int            error_rate_limit;            /* bad envelopes/s; 0 = never close */
    int            error_rate_burst;
    /* scale-out */
    char          *auth_hs256_secret;           /* "" = none */
    char          *auth_public_key;             /* PEM path, "" = none */
    bool           auth_anonymous;
    bool           auth_require_exp;
    char          *auth_issuer;
    char          *auth_audience;
    uint64_t       auth_leeway_ms;
    char          *auth_query_param;
    char          *redis_url;                   /* "" = embedded backplane */
    char          *redis_prefix;
    char          *iris_path;                   /* "" = no Iris endpoint */
    wsgw_strlist_t iris_rooms;
    char          *iris_emit_to;                /* broadcast|all|room:<name>|backend */
    char          *iris_client_js;              /* "" = /iris-ws.js not served */
    uint64_t       redis_max_pending;           /* publish buffer bound, bytes */
    uint64_t       redis_probe_interval_ms;     /* stale-connection probe; 0 = off */
    int            backend_events;              /* WSGW_BACKEND_EVENTS_* */
    bool           lifecycle_events;
    wsgw_strlist_t lifecycle_headers;
    int            workers;                     /* 0 = auto (one per CPU) */

    /* The file that was loaded ("" when none); owned like the strings. */
    char          *config_path;

    /* private: which layer set each key last (see config_private.h) */
    unsigned       _layer;
    unsigned char  _from;
    unsigned       _key_layer[WSGW_CONFIG_MAX_KEYS];
    unsigned char  _key_from[WSGW_CONFIG_MAX_KEYS];
} wsgw_config_t;

/* Fills *cfg with the defaults of every key.  Cannot fail (a default that
 * does not parse is a bug and aborts).  Pair with wsgw_config_free(). */
void wsgw_config_init(wsgw_config_t *cfg);

/* Frees every string and list and zeroes *cfg.  Safe to call twice; call
 * wsgw_config_init() again before reusing it. */
void wsgw_config_free(wsgw_config_t *cfg);

/* All four layers into an initialised cfg, then wsgw_config_validate().
 * argv[0] is the program name; envp is a NULL-terminated "NAME=value" array
 * (main's envp or `environ`; NULL skips the environment).  The file named by
 * --config, else by WSGW_CONFIG, is loaded first so that the environment and
 * then the flags override it.
 * Returns 0 on success; 1 when --help or --version was given (the text went
 * to stdout: free cfg and exit 0); -1 with err filled on any error. */
int wsgw_config_load(wsgw_config_t *cfg, int argc, char **argv, char **envp,
                     char *err, size_t errlen);

/* Applies config-file text text[0..len) (need not be NUL-terminated; may hold
 * any bytes) as one layer; `name` labels errors ("name:line").  Stops at
 * the first error: returns -1 with err filled, keys before that line stay
 * applied.  Does not validate across keys.  Returns 0 on success. */
int wsgw_config_load_text(wsgw_config_t *cfg, const char *text, size_t len,
                          const char *name, char *err, size_t errlen);

/* Reads `path` (at most 1 MiB) and applies it with wsgw_config_load_text();
 * records the path in cfg->config_path.  Returns 0 or -1 with err filled
 * (strerror text when the file cannot be read). */
int wsgw_config_load_file(wsgw_config_t *cfg, const char *path,
                          char *err, size_t errlen);

/* Sets one key from text, as a file line / variable / flag would.  `key`
 * may use dashes or upper case; `source` labels errors (NULL = the key).
 * List keys add the value's comma-separated items, except that the first
 * set of a list after init or after a load replaces the older list; setting
 * a scalar key twice in that span is an error.  Returns 0 or -1 with err
 * filled ("key: source=value: reason"); on error cfg keeps its old value. */
int wsgw_config_set(wsgw_config_t *cfg, const char *key, const char *value,
                    const char *source, char *err, size_t errlen);

/* Cross-field checks, run by wsgw_config_load() after the last layer:
 * at least one listen or tls_listen address and no address twice;
 * tls_cert and tls_key together, and present exactly when tls_listen is
 * not empty; ping_period < pong_timeout when both are set, and a
 * pong_timeout needs pings; read_timeout > ping_period when both are set;
 * id_header set when id_generator=header; client_js_path != path;
 * max_pending_handshakes <= max_connections; max_queued_bytes >=
 * max_message_size; "*" alone in allowed_origins.
 * Returns 0 or -1 with err naming the keys, values and where each came from. */
int wsgw_config_validate(const wsgw_config_t *cfg, char *err, size_t errlen);

/* Writes the --help text: usage, the value syntax, then every key with its
 * flag, type and range, default and a one-line description. */
void wsgw_config_usage(FILE *out);

/* Writes one "key=value" line per key in table order, values in canonical
 * form (64KiB, 54s, comma-joined lists, strings quoted when needed) — text
 * that wsgw_config_load_text() reads back to the same config.  The password
 * in redis_url is written as "***" (this goes into the startup log). */
void wsgw_config_dump(const wsgw_config_t *cfg, FILE *out);

/* The i-th key name of the table, or NULL when i is past the end. */
const char *wsgw_config_key(size_t i);

/* ---- value parsers (config_parse.c) ------------------------------------
 * Each takes a NUL-terminated string without surrounding spaces, returns 0
 * and fills *out, or returns -1 and points *why at a static reason
 * ("not a size (use 1024, 64KiB, 1MiB)").  Range checks are the caller's. */

/* true/false, yes/no, on/off, 1/0, case-insensitive. */
int wsgw_parse_bool(const char *s, bool *out, const char **why);
/* Bytes: digits with an optional K/k/KiB, M/m/MiB, G/g/GiB and/or B suffix. */
int wsgw_parse_size(const char *s, uint64_t *out, const char **why);
/* "0", or one or more NUMBER UNIT pairs with units ms, s, m, h; milliseconds. */
int wsgw_parse_duration_ms(const char *s, uint64_t *out, const char **why);
/* HOST:PORT, [IPV6]:PORT or :PORT.  Writes the host without brackets into
 * host[hostlen] ("" for :PORT, meaning every interface: pass NULL and
 * AI_PASSIVE to getaddrinfo) and the port (1..65535) into *port. */
int wsgw_parse_hostport(const char *s, char *host, size_t hostlen, int *port,
                        const char **why);

/* A parsed redis_url: redis://[user[:pass]@]host[:port][/db] (port defaults
 * to 6379, db to 0; user and password are %XX-decoded) or unix:///path. */
typedef struct wsgw_redis_addr {
    bool is_unix;
    char host[256];    /* without brackets; "" for unix */
    int  port;
    char path[108];    /* unix socket path (fits sun_path) */
    char user[128];
    char pass[256];
    int  db;           /* 0..65535 */
} wsgw_redis_addr_t;
int wsgw_parse_redis_url(const char *s, wsgw_redis_addr_t *out, const char **why);

#endif
