/* cidr.c — see cidr.h. */
#include "cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

int cidr_parse(const char *s, cidr_t *out, const char **why)
{
    char host[64];
    const char *slash = strchr(s, '/');
    size_t hn = slash ? (size_t)(slash - s) : strlen(s);
    memset(out, 0, sizeof *out);
    if (hn == 0 || hn >= sizeof host) { *why = "not an IP address or CIDR (use 10.0.0.0/8, fd00::/8, 192.0.2.7)"; return -1; }
    memcpy(host, s, hn);
    host[hn] = '\0';
    unsigned max;
    if (inet_pton(AF_INET, host, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, host, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        *why = "not an IP address or CIDR (use 10.0.0.0/8, fd00::/8, 192.0.2.7)";
        return -1;
    }
    unsigned bits = max;
    if (slash) {
        const char *b = slash + 1;
        size_t bn = strlen(b);
        if (bn == 0 || bn > 3 || strspn(b, "0123456789") != bn || (bn > 1 && b[0] == '0')) {
            *why = "prefix length must be a number (10.0.0.0/8)";
            return -1;
        }
        bits = (unsigned)atoi(b);
        if (bits > max) {
            *why = max == 32 ? "IPv4 prefix length over 32" : "IPv6 prefix length over 128";
            return -1;
        }
    }
    out->bits = (uint8_t)bits;
    for (unsigned i = bits; i < max; i++) {
        if (out->addr[i / 8] & (0x80u >> (i % 8))) {
            *why = "host bits set after the prefix length (write the network address, e.g. 10.0.0.0/8)";
            return -1;
        }
    }
    return 0;
}

int ip_addr_view(const struct sockaddr *sa, const uint8_t **bytes)
{
    static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    if (sa->sa_family == AF_INET) {
        *bytes = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        return AF_INET;
    }
    if (sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (memcmp(a, v4mapped, sizeof v4mapped) == 0) {
            *bytes = a + 12;
            return AF_INET;
        }
        *bytes = a;
        return AF_INET6;
    }
    return 0;
}

static int prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0) return 0;
    if (!rest) return 1;
    uint8_t mask = (uint8_t)(0xFFu << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

int cidr_match_any(const cidr_t *v, size_t n, const struct sockaddr *sa)
{
    const uint8_t *bytes = NULL;
    int family = ip_addr_view(sa, &bytes);
    if (!family) return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i].family == family && prefix_equal(bytes, v[i].addr, v[i].bits)) return 1;
    return 0;
}
