/* ws_proxy.c — the PROXY protocol header, v1 and v2 (see ws_proxy.h). */
#include "ws_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "ws_status.h"

static const uint8_t v2_signature[12] = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};
static const char v1_prefix[] = "PROXY ";

#define V2_FIXED     16u  /* signature, version/command, family/transport, length */
#define V2_KEPT      (V2_FIXED + 36u)  /* the fixed part and the largest address block used */
#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
#define V2_TCP4      0x11
#define V2_TCP6      0x21

_Static_assert(V2_KEPT <= sizeof ((ws_proxy_parser_t *)0)->_kept, "v2 kept bytes fit");

void ws_proxy_init(ws_proxy_parser_t *p)
{
    memset(p, 0, sizeof *p);
}

/* ---- v1: one text line ----------------------------------------------------- */

/* 0..65535 in decimal, no sign, no leading zero (except "0" itself). */
static int v1_port(const char *s, uint16_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0')) return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535) return -1;
    *out = (uint16_t)v;
    return 0;
}

/* The complete line is in _kept[0.._got), ending in CRLF. */
static int v1_line(ws_proxy_parser_t *p, ws_proxy_result_t *out)
{
    char *body = (char *)p->_kept + sizeof v1_prefix - 1;
    p->_kept[p->_got - 2] = '\0';                       /* over the CR */
    if (strncmp(body, "UNKNOWN", 7) == 0 && (body[7] == '\0' || body[7] == ' ')) {
        out->kind = WS_PROXY_LOCAL;                     /* the rest of the line is ignored */
        return p->_got;
    }
    /* Exactly five fields separated by single spaces (a sixth is counted,
     * not kept). */
    char *f[5];
    int n = 0;
    for (char *s = body; n < 6;) {
        if (n < 5) f[n] = s;
        n++;
        char *sp = strchr(s, ' ');
        if (!sp) break;
        *sp = '\0';
        s = sp + 1;
    }
    int family;
    if (strcmp(f[0], "TCP4") == 0) family = AF_INET;
    else if (strcmp(f[0], "TCP6") == 0) family = AF_INET6;
    else return WS_E_PROXY_FAMILY;
    if (n != 5) return WS_E_PROXY_SYNTAX;
    uint8_t dst[16];
    uint16_t dport;
    if (inet_pton(family, f[1], out->addr) != 1 || inet_pton(family, f[2], dst) != 1 ||
        v1_port(f[3], &out->port) != 0 || v1_port(f[4], &dport) != 0)
        return WS_E_PROXY_SYNTAX;
    out->kind = WS_PROXY_ADDR;
    out->family = family;
    return p->_got;
}

static int v1_feed(ws_proxy_parser_t *p, const uint8_t *buf, size_t len, size_t *i,
                   ws_proxy_result_t *out)
{
    while (*i < len) {
        uint8_t c = buf[*i];
        size_t got = p->_got;
        if (got == WS_PROXY_V1_MAX_LEN) return WS_E_PROXY_TOO_LONG;
        if (got < sizeof v1_prefix - 1) {
            if (c != (uint8_t)v1_prefix[got]) return WS_E_PROXY_SIGNATURE;
        } else if (p->_kept[got - 1] == '\r') {
            if (c != '\n') return WS_E_PROXY_SYNTAX;   /* a CR belongs only before the LF */
        } else if (c == '\n' || (c != '\r' && (c < 0x20 || c > 0x7e))) {
            return WS_E_PROXY_SYNTAX;                 /* bare LF, control byte or non-ASCII */
        }
        p->_kept[p->_got++] = c;
        (*i)++;
        if (c == '\n') return v1_line(p, out);
    }
    return WS_E_WANT_MORE;
}

/* ---- v2: binary ------------------------------------------------------------- */

/* Checks byte `at` (12..15) of the fixed part once it is kept. */
static int v2_fixed_byte(ws_proxy_parser_t *p, size_t at)
{
    const uint8_t *k = p->_kept;
    switch (at) {
    case 12:
        if ((k[12] >> 4) != 2 || (k[12] & 0x0F) > V2_CMD_PROXY) return WS_E_PROXY_VERSION;
        return 0;
    case 13:
        /* Families 0..3 (UNSPEC, INET, INET6, UNIX), transports 0..2
         * (UNSPEC, STREAM, DGRAM); only TCP over IP has a client address. */
        if ((k[13] >> 4) > 3 || (k[13] & 0x0F) > 2) return WS_E_PROXY_FAMILY;
        if ((k[12] & 0x0F) == V2_CMD_PROXY && k[13] != V2_TCP4 && k[13] != V2_TCP6)
            return WS_E_PROXY_FAMILY;
        return 0;
    case 15: {
        size_t total = V2_FIXED + ((size_t)k[14] << 8 | k[15]);
        if (total > WS_PROXY_V2_MAX_LEN) return WS_E_PROXY_TOO_LONG;
        if ((k[12] & 0x0F) == V2_CMD_PROXY && total < V2_FIXED + (k[13] == V2_TCP4 ? 12u : 36u))
            return WS_E_PROXY_LENGTH;
        p->_total = (uint16_t)total;
        return 0;
    }
    default:
        return 0;
    }
}

static int v2_done(ws_proxy_parser_t *p, ws_proxy_result_t *out)
{
    const uint8_t *k = p->_kept;
    if ((k[12] & 0x0F) == V2_CMD_LOCAL) {
        out->kind = WS_PROXY_LOCAL;     /* the balancer's own connection: addresses ignored */
        return p->_total;
    }
    out->kind = WS_PROXY_ADDR;
    if (k[13] == V2_TCP4) {
        out->family = AF_INET;
        memcpy(out->addr, k + V2_FIXED, 4);                  /* src, dst, sport, dport */
        out->port = (uint16_t)(k[V2_FIXED + 8] << 8 | k[V2_FIXED + 9]);
    } else {
        out->family = AF_INET6;
        memcpy(out->addr, k + V2_FIXED, 16);
        out->port = (uint16_t)(k[V2_FIXED + 32] << 8 | k[V2_FIXED + 33]);
    }
    return p->_total;
}

static int v2_feed(ws_proxy_parser_t *p, const uint8_t *buf, size_t len, size_t *i,
                   ws_proxy_result_t *out)
{
    while (*i < len && p->_got < V2_FIXED) {
        size_t at = p->_got;
        if (at < sizeof v2_signature && buf[*i] != v2_signature[at]) return WS_E_PROXY_SIGNATURE;
        p->_kept[at] = buf[(*i)++];
        p->_got++;
        int rc = v2_fixed_byte(p, at);
        if (rc) return rc;
    }
    if (p->_got < V2_FIXED) return WS_E_WANT_MORE;
    /* The address block and TLVs: keep what the result needs, skip the rest. */
    size_t take = (size_t)p->_total - p->_got;
    if (take > len - *i) take = len - *i;
    if (p->_got < V2_KEPT) {
        size_t keep = V2_KEPT - p->_got < take ? V2_KEPT - p->_got : take;
        memcpy(p->_kept + p->_got, buf + *i, keep);
    }
    p->_got = (uint16_t)(p->_got + take);
    *i += take;
    return p->_got == p->_total ? v2_done(p, out) : WS_E_WANT_MORE;
}

int ws_proxy_parse(ws_proxy_parser_t *p, const uint8_t *buf, size_t len, size_t *used,
                   ws_proxy_result_t *out)
{
    *used = 0;
    if (p->_error) return p->_error;
    if (len == 0) return WS_E_WANT_MORE;
    if (!p->_version) {
        if (buf[0] == (uint8_t)v1_prefix[0]) p->_version = 1;
        else if (buf[0] == v2_signature[0]) p->_version = 2;
        else return p->_error = WS_E_PROXY_SIGNATURE;
    }
    memset(out, 0, sizeof *out);
    out->version = p->_version;
    size_t i = 0;
    int rc = p->_version == 1 ? v1_feed(p, buf, len, &i, out) : v2_feed(p, buf, len, &i, out);
    *used = i;
    if (rc < 0 && rc != WS_E_WANT_MORE) p->_error = (int8_t)rc;
    return rc;
}
