/* config_parse.c — value parsers, formatters and per-value checks of the
 * configuration (see config.h).  No state, no allocation: every function
 * reads a NUL-terminated string and answers with a static reason. */
#include "cidr.h"
#include "config_private.h"
#include "envelope.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_alnum(int c) { return is_digit(c) || is_alpha(c); }

/* Decimal digits only (no sign, no spaces).  Returns 0, -1 when s is not a
 * number, -2 when it is larger than max. */
int wsgw_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!is_digit((unsigned char)*s)) return -1;
    for (; is_digit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10) {
            while (is_digit((unsigned char)*s)) s++;
            return *s ? -1 : -2;
        }
        v = v * 10 + d;
    }
    if (*s) return -1;
    *out = v;
    return 0;
}

/* Reads the leading digits of *p into *v; -1 when there are none, -2 on
 * overflow of 2^64-1. */
static int take_digits(const char **p, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    if (!is_digit((unsigned char)*s)) return -1;
    for (; is_digit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (x > (UINT64_MAX - d) / 10) return -2;
        x = x * 10 + d;
    }
    *p = s;
    *v = x;
    return 0;
}

int wsgw_parse_bool(const char *s, bool *out, const char **why)
{
    static const char *const yes[] = { "true", "yes", "on", "1" };
    static const char *const no[] = { "false", "no", "off", "0" };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(s, yes[i]) == 0) { *out = true; return 0; }
        if (strcasecmp(s, no[i]) == 0) { *out = false; return 0; }
    }
    *why = "not a bool (use true/false, yes/no, on/off, 1/0)";
    return -1;
}

int wsgw_parse_size(const char *s, uint64_t *out, const char **why)
{
    static const struct { const char *suffix; uint64_t mul; } units[] = {
        { "", 1 }, { "B", 1 },
        { "k", 1ull << 10 }, { "K", 1ull << 10 }, { "KiB", 1ull << 10 },
        { "m", 1ull << 20 }, { "M", 1ull << 20 }, { "MiB", 1ull << 20 },
        { "g", 1ull << 30 }, { "G", 1ull << 30 }, { "GiB", 1ull << 30 },
    };
    const char *p = s;
    uint64_t v;
    int rc = take_digits(&p, &v);
    if (rc == -2) { *why = "too large"; return -1; }
    if (rc < 0) goto bad;
    const char *num_end = p;
    while (*p == ' ') p++;
    if (p != num_end && *p == '\0') goto bad;  /* "128 " */
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(p, units[i].suffix) != 0) continue;
        if (v > UINT64_MAX / units[i].mul) { *why = "too large"; return -1; }
        *out = v * units[i].mul;
        return 0;
    }
    if (strcasecmp(p, "kb") == 0 || strcasecmp(p, "mb") == 0 || strcasecmp(p, "gb") == 0) {
        *why = "KB/MB/GB are ambiguous (use KiB, MiB, GiB or a byte count)";
        return -1;
    }
bad:
    *why = "not a size (use 1024, 64KiB, 1MiB)";
    return -1;
}

int wsgw_parse_duration_ms(const char *s, uint64_t *out, const char **why)
{
    static const struct { const char *unit; uint64_t ms; } units[] = {
        { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
    };
    static const char bad[] = "not a duration (use 500ms, 54s, 2m, 1h)";
    const char *p = s;
    uint64_t total = 0;
    if (strcmp(s, "0") == 0) { *out = 0; return 0; }
    if (*p == '\0') { *why = bad; return -1; }
    while (*p) {
        uint64_t v;
        int rc = take_digits(&p, &v);
        if (rc == -2) { *why = "too large"; return -1; }
        if (rc < 0) { *why = bad; return -1; }
        if (*p == '.' || *p == ',') {
            *why = "fractions are not supported (write 1500ms, 90s)";
            return -1;
        }
        if (*p == '\0') {
            *why = p == s + strspn(s, "0123456789")
                 ? "a unit is required (write 54s, 500ms, 2m or 1h)" : bad;
            return -1;
        }
        size_t i, n = 0;
        for (i = 0; i < sizeof units / sizeof units[0]; i++) {
            n = strlen(units[i].unit);
            /* "ms" is tried before "m"; "m" must not be followed by 's'. */
            if (strncmp(p, units[i].unit, n) == 0 && !is_alpha((unsigned char)p[n])) break;
        }
        if (i == sizeof units / sizeof units[0]) { *why = bad; return -1; }
        if (v > UINT64_MAX / units[i].ms || total > UINT64_MAX - v * units[i].ms) {
            *why = "too large";
            return -1;
        }
        total += v * units[i].ms;
        p += n;
    }
    *out = total;
    return 0;
}

/* A DNS name or "": letters, digits, '-', '_' and '.', labels not empty
 * (one trailing dot allowed), at most 253 characters. */
static int valid_hostname(const char *h, size_t n)
{
    if (n > 253) return 0;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c == '.') {
            if (label == 0) return 0;
            label = 0;
        } else if (is_alnum(c) || c == '-' || c == '_') {
            if (++label > 63) return 0;
        } else {
            return 0;
        }
    }
    return 1;
}

int wsgw_parse_hostport(const char *s, char *host, size_t hostlen, int *port,
                        const char **why)
{
    const char *h, *colon;
    size_t hn;
    char tmp[256];
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close) { *why = "missing ] after an IPv6 address"; return -1; }
        h = s + 1;
        hn = (size_t)(close - h);
        if (close[1] != ':') {
            *why = close[1] ? "expected :PORT after ]" : "missing :PORT (e.g. [::1]:8080)";
            return -1;
        }
        colon = close + 1;
        if (hn == 0 || hn >= sizeof tmp) { *why = "bad IPv6 address"; return -1; }
        struct in6_addr a6;
        memcpy(tmp, h, hn);
        tmp[hn] = '\0';
        if (inet_pton(AF_INET6, tmp, &a6) != 1) { *why = "bad IPv6 address"; return -1; }
    } else {
        colon = strrchr(s, ':');
        if (!colon) { *why = "missing :PORT (e.g. 0.0.0.0:8080 or :8080)"; return -1; }
        h = s;
        hn = (size_t)(colon - s);
        if (memchr(s, ':', hn)) {
            *why = "an IPv6 address needs brackets (e.g. [::1]:8080)";
            return -1;
        }
        if (hn > 0 && strspn(h, "0123456789.") >= hn) {
            struct in_addr a4;
            if (hn >= sizeof tmp) { *why = "bad IPv4 address"; return -1; }
            memcpy(tmp, h, hn);
            tmp[hn] = '\0';
            if (inet_pton(AF_INET, tmp, &a4) != 1) { *why = "bad IPv4 address"; return -1; }
        } else if (!valid_hostname(h, hn)) {
            *why = "bad host name";
            return -1;
        }
    }
    uint64_t p;
    if (colon[1] == '\0') { *why = "missing port after ':'"; return -1; }
    if (wsgw_parse_uint(colon + 1, 65535, &p) != 0 || p == 0) {
        *why = "port must be a number 1..65535";
        return -1;
    }
    if (hn >= hostlen) { *why = "host name too long"; return -1; }
    memcpy(host, h, hn);
    host[hn] = '\0';
    *port = (int)p;
    return 0;
}

/* Whether HOST[:PORT] text has the :PORT part ([v6] needs ':' after ']'). */
static int has_port(const char *hp)
{
    if (hp[0] == '[') {
        const char *close = strchr(hp, ']');
        return close && close[1] == ':';
    }
    return strchr(hp, ':') != NULL;
}

static int hexval(int c)
{
    if (is_digit(c)) return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* %XX-decodes s[0..n) into out[outlen]; -1 on a bad escape, %00 or overflow. */
static int pct_decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n) return -1;
            int hi = hexval((unsigned char)s[i + 1]), lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0 || (hi | lo) == 0) return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (o + 1 >= outlen) return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

int wsgw_parse_redis_url(const char *s, wsgw_redis_addr_t *o, const char **why)
{
    static const char usage[] =
        "not a Redis URL (use redis://[user:pass@]host:port[/db] or unix:///path)";
    memset(o, 0, sizeof *o);
    if (strchr(s, '?')) { *why = "query parameters are not supported"; return -1; }
    if (strncmp(s, "unix://", 7) == 0) {
        const char *path = s + 7;
        if (path[0] != '/') { *why = "unix:// needs an absolute path (unix:///run/redis.sock)"; return -1; }
        if (strlen(path) >= sizeof o->path) { *why = "unix socket path too long"; return -1; }
        o->is_unix = true;
        strcpy(o->path, path);
        return 0;
    }
    if (strncmp(s, "rediss://", 9) == 0) {
        *why = "TLS to Redis (rediss://) is not supported; use redis:// or unix://";
        return -1;
    }
    if (strncmp(s, "redis://", 8) != 0) { *why = usage; return -1; }
    const char *auth = s + 8;
    const char *slash = strchr(auth, '/');
    size_t an = slash ? (size_t)(slash - auth) : strlen(auth);
    const char *at = NULL;
    for (size_t i = 0; i < an; i++)
        if (auth[i] == '@') at = auth + i;
    const char *hp = auth;
    if (at) {
        const char *c = memchr(auth, ':', (size_t)(at - auth));
        size_t un = c ? (size_t)(c - auth) : (size_t)(at - auth);
        if (pct_decode(auth, un, o->user, sizeof o->user) != 0) {
            *why = "bad user name (use %XX escapes)";
            return -1;
        }
        if (c && pct_decode(c + 1, (size_t)(at - c - 1), o->pass, sizeof o->pass) != 0) {
            *why = "bad password (use %XX escapes for @ : / and %)";
            return -1;
        }
        hp = at + 1;
    }
    size_t hn = (size_t)(auth + an - hp);
    char buf[300];
    if (hn == 0) { *why = "missing host"; return -1; }
    if (hn + 6 >= sizeof buf) { *why = "host name too long"; return -1; }
    memcpy(buf, hp, hn);
    buf[hn] = '\0';
    if (!has_port(buf)) strcat(buf, ":6379");
    if (wsgw_parse_hostport(buf, o->host, sizeof o->host, &o->port, why) != 0) return -1;
    if (!o->host[0]) { *why = "missing host"; return -1; }
    if (slash && slash[1]) {
        uint64_t db;
        if (wsgw_parse_uint(slash + 1, 65535, &db) != 0) {
            *why = "db must be a number 0..65535 (redis://host:6379/0)";
            return -1;
        }
        o->db = (int)db;
    }
    return 0;
}

void wsgw_fmt_size(uint64_t v, char *buf, size_t n)
{
    if (v != 0 && v % (1ull << 30) == 0) snprintf(buf, n, "%lluGiB", (unsigned long long)(v >> 30));
    else if (v != 0 && v % (1ull << 20) == 0) snprintf(buf, n, "%lluMiB", (unsigned long long)(v >> 20));
    else if (v != 0 && v % (1ull << 10) == 0) snprintf(buf, n, "%lluKiB", (unsigned long long)(v >> 10));
    else snprintf(buf, n, "%llu", (unsigned long long)v);
}

void wsgw_fmt_duration(uint64_t ms, char *buf, size_t n)
{
    if (ms == 0) snprintf(buf, n, "0");
    else if (ms % 3600000 == 0) snprintf(buf, n, "%lluh", (unsigned long long)(ms / 3600000));
    else if (ms % 60000 == 0) snprintf(buf, n, "%llum", (unsigned long long)(ms / 60000));
    else if (ms % 1000 == 0) snprintf(buf, n, "%llus", (unsigned long long)(ms / 1000));
    else snprintf(buf, n, "%llums", (unsigned long long)ms);
}

void wsgw_fmt_shown(const char *s, char *buf, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, shown = 0;
    if (n == 0) return;
    for (; *s && o + 5 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (++shown > 60) {
            if (o + 4 < n) { memcpy(buf + o, "...", 3); o += 3; }
            break;
        }
        if (c < 0x20 || c == 0x7f) {
            buf[o++] = '\\'; buf[o++] = 'x';
            buf[o++] = hex[c >> 4]; buf[o++] = hex[c & 15];
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o] = '\0';
}

/* ---- per-value checks: NULL = fine, else why ---- */

const char *wsgw_check_hostport(const char *s)
{
    char host[256];
    int port;
    const char *why = NULL;
    return wsgw_parse_hostport(s, host, sizeof host, &port, &why) == 0 ? NULL : why;
}

const char *wsgw_check_url_path(const char *s)
{
    if (s[0] != '/') return "must start with /";
    if (strlen(s) > 1024) return "longer than 1024 bytes";
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f || *s == '?' || *s == '#')
            return "only printable ASCII without spaces, ? or # in a path";
    return NULL;
}

const char *wsgw_check_url_path_opt(const char *s)
{
    return s[0] ? wsgw_check_url_path(s) : NULL;
}

static int is_tchar(int c)
{
    return is_alnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

const char *wsgw_check_token(const char *s)
{
    if (!*s) return "must not be empty";
    if (strlen(s) > 255) return "longer than 255 bytes";
    for (; *s; s++)
        if (!is_tchar((unsigned char)*s)) return "not an HTTP token (letters, digits, !#$%&'*+-.^_`|~)";
    return NULL;
}

const char *wsgw_check_token_opt(const char *s)
{
    return s[0] ? wsgw_check_token(s) : NULL;
}

const char *wsgw_check_origin(const char *s)
{
    static const char usage[] = "not an origin (use https://host[:port], https://*.example.com or *)";
    if (strcmp(s, "*") == 0) return NULL;
    const char *sep = strstr(s, "://");
    if (!sep || sep == s || !is_alpha((unsigned char)s[0])) return usage;
    for (const char *p = s; p < sep; p++)
        if (!is_alnum((unsigned char)*p) && !strchr("+.-", *p)) return usage;
    const char *h = sep + 3;
    /* One leading "*." label matches any subdomain (fnmatch at run time). */
    if (h[0] == '*' && h[1] == '.') h += 2;
    if (strchr(h, '/')) return "an origin has no path, not even a trailing / (https://example.com)";
    if (!*h) return "missing host";
    if (strlen(h) > 260) return "host name too long";
    if (h[0] == ':') return "missing host";
    if (has_port(h)) return wsgw_check_hostport(h) ? usage : NULL;
    char buf[300];
    snprintf(buf, sizeof buf, "%s:1", h);
    return wsgw_check_hostport(buf) ? usage : NULL;
}

const char *wsgw_check_glob(const char *s)
{
    if (!*s) return "must not be empty";
    if (strlen(s) > 255) return "longer than 255 bytes";
    return NULL;
}

const char *wsgw_check_prefix(const char *s)
{
    if (!*s) return "must not be empty";
    if (strlen(s) > 64) return "longer than 64 bytes";
    for (; *s; s++)
        /* No ':': it ends the prefix in every channel name, so prefix "app"
         * can never reach the channels of prefix "app:room:x" (another
         * app's) through a room named "x:room:...". */
        if (!is_alnum((unsigned char)*s) && !strchr("_.-", *s))
            return "only letters, digits and _ . - are allowed";
    return NULL;
}

const char *wsgw_check_redis_url(const char *s)
{
    wsgw_redis_addr_t a;
    const char *why = NULL;
    if (!*s) return NULL;
    return wsgw_parse_redis_url(s, &a, &why) == 0 ? NULL : why;
}

/* The envelope's room rules (envelope_room_valid), with a reason. */
const char *wsgw_check_room(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) return "a room name has 1..64 characters";
    if (!envelope_room_valid((const uint8_t *)s, n, 64))
        return "a room name uses only letters, digits and _ . : @ / -";
    return NULL;
}

const char *wsgw_check_iris_target(const char *s)
{
    if (!strcmp(s, "broadcast") || !strcmp(s, "all") || !strcmp(s, "backend")) return NULL;
    if (strncmp(s, "room:", 5) == 0) return wsgw_check_room(s + 5);
    return "one of broadcast, all, room:<name>, backend";
}

const char *wsgw_check_path_opt(const char *s)
{
    if (strlen(s) > 4096) return "path longer than 4096 bytes";
    for (; *s; s++) if ((unsigned char)*s < 0x20) return "control character in a path";
    return NULL;
}

const char *wsgw_check_cidr(const char *s)
{
    cidr_t c;
    const char *why = NULL;
    return cidr_parse(s, &c, &why) == 0 ? NULL : why;
}

/* OpenSSL itself judges the list (its syntax grows with its versions): a
 * list that selects no cipher at all is refused, unknown names beside known
 * ones are ignored as OpenSSL does. */
const char *wsgw_check_tls_ciphers(const char *s)
{
    if (!*s) return "must not be empty";
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) return "OpenSSL cannot create a context";
    int ok = SSL_CTX_set_cipher_list(ctx, s) == 1;
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return ok ? NULL : "selects no cipher OpenSSL knows (see `openssl ciphers -v LIST`)";
}
