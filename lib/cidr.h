/* cidr.h — IP address ranges ("10.0.0.0/8", "fd00::/8", "192.0.2.7") and
 * the address views the gateway keys clients by.
 *
 * Pure code: no sockets are opened, nothing is allocated.  An IPv4 client
 * of a dual-stack listener arrives as an IPv4-mapped IPv6 address
 * (::ffff:192.0.2.7); ip_addr_view() and cidr_match() see it as the IPv4
 * address it is, so an IPv4 range matches it and it is limited per /32,
 * not lumped with every IPv4 client into ::ffff:0:0/64.
 */
#ifndef WSGW_CIDR_H
#define WSGW_CIDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct cidr {
    uint8_t family;     /* AF_INET or AF_INET6 */
    uint8_t bits;       /* prefix length: 0..32 or 0..128 */
    uint8_t addr[16];   /* network order; host bits are zero */
} cidr_t;

/* Parses ADDRESS or ADDRESS/BITS (IPv4 dotted quad or IPv6 text; no
 * brackets, no zone).  An address alone is /32 or /128.  Refuses a prefix
 * with host bits set (10.0.0.1/8: did you mean 10.0.0.0/8 or 10.0.0.1?).
 * Returns 0 and fills *out, or -1 and points *why at a static reason. */
int cidr_parse(const char *s, cidr_t *out, const char **why);

/* The address of an AF_INET or AF_INET6 sockaddr as bytes: returns AF_INET
 * with 4 bytes at *bytes (an IPv4-mapped IPv6 address included), AF_INET6
 * with 16, or 0 for any other family. */
int ip_addr_view(const struct sockaddr *sa, const uint8_t **bytes);

/* 1 when the address of sa falls in any of v[0..n), else 0. */
int cidr_match_any(const cidr_t *v, size_t n, const struct sockaddr *sa);

#endif
