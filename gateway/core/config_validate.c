/* config_validate.c — checks that involve more than one key (config.h lists
 * them).  Each failure names every key involved with its value and the
 * layer it came from, so the operator knows which line to change. */
#include "config_private.h"
#include "ws_alloc.h"

#include <ctype.h>
#include <stdarg.h>
#include <string.h>

/* "key=value (from)" for messages; long values are cut. */
static const char *desc(const wsgw_config_t *cfg, const char *key, char *buf, size_t n)
{
    const wsgw_key_t *k = wsgw_key_find(key, strlen(key));
    size_t cap = wsgw_config_format_cap(cfg, k);
    char *val = ws_xmalloc(cap), shown[128];
    wsgw_config_format(cfg, k, val, cap);
    wsgw_fmt_shown(val, shown, sizeof shown);
    ws_xfree(val);
    snprintf(buf, n, "%s=%s (%s)", key, shown[0] ? shown : "\"\"",
             wsgw_from_name(cfg->_key_from[wsgw_key_index(k)]));
    return buf;
}

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Host (lower case, no brackets) and port of a checked address. */
static void addr_key(const char *s, char *host, size_t hostlen, int *port)
{
    const char *why;
    if (wsgw_parse_hostport(s, host, hostlen, port, &why) != 0) {
        host[0] = '\0';  /* cannot happen: items were checked when set */
        *port = 0;
    }
    for (char *p = host; *p; p++) *p = (char)tolower((unsigned char)*p);
}

static int check_addresses(const wsgw_config_t *cfg, char *err, size_t errlen)
{
    const wsgw_strlist_t *lists[2] = { &cfg->listen, &cfg->tls_listen };
    const char *names[2] = { "listen", "tls_listen" };
    char a[256], b[256], d1[200], d2[200];
    int pa, pb;

    if (cfg->listen.n + cfg->tls_listen.n == 0)
        return fail(err, errlen, "no address to listen on: %s and %s are both empty",
                    desc(cfg, "listen", d1, sizeof d1), desc(cfg, "tls_listen", d2, sizeof d2));
    for (int la = 0; la < 2; la++)
        for (size_t i = 0; i < lists[la]->n; i++) {
            addr_key(lists[la]->v[i], a, sizeof a, &pa);
            for (int lb = la; lb < 2; lb++)
                for (size_t j = lb == la ? i + 1 : 0; j < lists[lb]->n; j++) {
                    addr_key(lists[lb]->v[j], b, sizeof b, &pb);
                    if (pa == pb && strcmp(a, b) == 0)
                        return fail(err, errlen, "%s: address %s is given twice (also in %s)",
                                    names[la], lists[la]->v[i], names[lb]);
                }
        }
    return 0;
}

static int check_tls(const wsgw_config_t *cfg, char *err, size_t errlen)
{
    char d1[200], d2[200];
    int cert = cfg->tls_cert[0] != 0, key = cfg->tls_key[0] != 0;
    if (cert != key)
        return fail(err, errlen, "tls_cert and tls_key go together: %s but %s",
                    desc(cfg, "tls_cert", d1, sizeof d1), desc(cfg, "tls_key", d2, sizeof d2));
    if (cfg->tls_listen.n && !cert)
        return fail(err, errlen, "%s needs tls_cert and tls_key",
                    desc(cfg, "tls_listen", d1, sizeof d1));
    if (cert && !cfg->tls_listen.n)
        return fail(err, errlen, "%s is set but tls_listen is empty: no address would use it",
                    desc(cfg, "tls_cert", d1, sizeof d1));
    return 0;
}

/* A connection keeps its subprotocol as a one-byte index. */
static int check_subprotocols(const wsgw_config_t *cfg, char *err, size_t errlen)
{
    char d1[200];
    if (cfg->subprotocols.n > 32)
        return fail(err, errlen, "%s lists %zu subprotocols; at most 32 are allowed",
                    desc(cfg, "subprotocols", d1, sizeof d1), (size_t)cfg->subprotocols.n);
    return 0;
}

static int check_timeouts(const wsgw_config_t *cfg, char *err, size_t errlen)
{
    char d1[200], d2[200];
    uint64_t ping = cfg->ping_period_ms, pong = cfg->pong_timeout_ms, rd = cfg->read_timeout_ms;
    if (ping && pong && ping >= pong)
        return fail(err, errlen, "%s must be less than %s, or a late pong closes live clients",
                    desc(cfg, "ping_period", d1, sizeof d1), desc(cfg, "pong_timeout", d2, sizeof d2));
    if (pong && !ping)
        return fail(err, errlen, "%s needs pings but %s; set pong_timeout=0 to turn liveness checks off",
                    desc(cfg, "pong_timeout", d1, sizeof d1), desc(cfg, "ping_period", d2, sizeof d2));
    if (rd && ping && rd <= ping)
        return fail(err, errlen, "%s must be greater than %s, or idle live clients time out between pings",
                    desc(cfg, "read_timeout", d1, sizeof d1), desc(cfg, "ping_period", d2, sizeof d2));
    return 0;
}

int wsgw_config_validate(const wsgw_config_t *cfg, char *err, size_t errlen)
{
    char d1[200], d2[200];
    if (check_addresses(cfg, err, errlen) || check_tls(cfg, err, errlen) ||
        check_timeouts(cfg, err, errlen) || check_subprotocols(cfg, err, errlen))
        return -1;
    if (cfg->id_generator == WSGW_ID_HEADER && !cfg->id_header[0])
        return fail(err, errlen, "%s needs a header name but %s",
                    desc(cfg, "id_generator", d1, sizeof d1), desc(cfg, "id_header", d2, sizeof d2));
    if (cfg->client_js_path[0] && strcmp(cfg->client_js_path, cfg->path) == 0)
        return fail(err, errlen, "%s and %s are the same URL",
                    desc(cfg, "client_js_path", d1, sizeof d1), desc(cfg, "path", d2, sizeof d2));
    if (cfg->iris_path[0] && (strcmp(cfg->iris_path, cfg->path) == 0 ||
                              strcmp(cfg->iris_path, cfg->client_js_path) == 0))
        return fail(err, errlen, "%s must differ from %s and client_js_path",
                    desc(cfg, "iris_path", d1, sizeof d1), desc(cfg, "path", d2, sizeof d2));
    if (cfg->rate_bytes && cfg->rate_bytes_burst < cfg->max_message_size)
        return fail(err, errlen, "%s must be at least %s, or a message at the limit never passes",
                    desc(cfg, "rate_bytes_burst", d1, sizeof d1), desc(cfg, "max_message_size", d2, sizeof d2));
    if (cfg->drain_spread_ms && cfg->drain_timeout_ms && cfg->drain_spread_ms >= cfg->drain_timeout_ms)
        return fail(err, errlen, "%s must be shorter than %s, or the last clients are cut without a close",
                    desc(cfg, "drain_spread", d1, sizeof d1), desc(cfg, "drain_timeout", d2, sizeof d2));
    if (cfg->max_pending_handshakes > cfg->max_connections)
        return fail(err, errlen, "%s must not exceed %s",
                    desc(cfg, "max_pending_handshakes", d1, sizeof d1),
                    desc(cfg, "max_connections", d2, sizeof d2));
    if (cfg->max_queued_bytes < cfg->max_message_size)
        return fail(err, errlen, "%s must be at least %s, or one large message makes a slow consumer",
                    desc(cfg, "max_queued_bytes", d1, sizeof d1),
                    desc(cfg, "max_message_size", d2, sizeof d2));
    if (cfg->iris_rooms.n > (size_t)cfg->max_rooms_per_conn)
        return fail(err, errlen, "%s lists more rooms than %s: every Iris client would be refused the rest "
                    "at open, spending its error budget",
                    desc(cfg, "iris_rooms", d1, sizeof d1), desc(cfg, "max_rooms_per_conn", d2, sizeof d2));
    for (size_t i = 0; i < cfg->allowed_origins.n && cfg->allowed_origins.n > 1; i++)
        if (strcmp(cfg->allowed_origins.v[i], "*") == 0)
            return fail(err, errlen, "%s: * allows every origin, so it must be the only item",
                        desc(cfg, "allowed_origins", d1, sizeof d1));
    return 0;
}
