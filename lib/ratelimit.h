/* ratelimit.h — token buckets, and the per-client-address table they live
 * in for connection limits.
 *
 * A bucket holds up to `burst` tokens and refills at `rate` per second; an
 * action costing n tokens passes when n are there.  The state is 16 bytes
 * and the refill is computed on use, so there is no timer per bucket.
 *
 * The address table counts open connections per client address and keeps
 * a bucket of new connections per second for it.  An address is an IPv4
 * address (/32) or an IPv6 /64 (what one customer is given); an
 * IPv4-mapped IPv6 address counts as its IPv4 address.  Entries live while the
 * address has connections, or while its bucket is not full again (so a
 * client cannot reset its rate by disconnecting); ratelimit_sweep() drops
 * the others, which bounds the table by the clients seen in the last
 * burst/rate seconds.
 *
 * A bucket is 8 bytes (one lives in every connection for each of three
 * limits): tokens as a float, and the low 32 bits of the millisecond clock,
 * compared by wrap-safe difference.  A bucket left alone for 2^30 ms (12
 * days) would see a wrapped difference, so the owner's periodic sweep calls
 * tbucket_age(), which marks such a bucket unused: it is full then anyway.
 */
#ifndef WSGW_RATELIMIT_H
#define WSGW_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "strmap.h"

typedef struct tbucket {
    float    tokens;
    uint32_t last_ms;      /* low bits of the clock; 0: never used (starts full) */
} tbucket_t;

/* Takes `cost` tokens if the bucket has them (1) or takes nothing (0).
 * rate <= 0 means unlimited (always 1). */
int tbucket_take(tbucket_t *b, double rate, double burst, uint64_t now_ms, double cost);
/* Marks the bucket unused if it was last used 2^30 ms ago or more. */
void tbucket_age(tbucket_t *b, uint64_t now_ms);
/* Would the bucket be full by now? */
int tbucket_full(const tbucket_t *b, double rate, double burst, uint64_t now_ms);

#define IP_KEY_MAX 9   /* family byte + 4 bytes (IPv4) or the 8-byte /64 prefix (IPv6) */

typedef struct ip_entry {
    uint8_t   key[IP_KEY_MAX];
    uint8_t   key_len;
    uint32_t  conns;       /* open connections from this address */
    tbucket_t rate;        /* new connections per second */
} ip_entry_t;

typedef struct ip_table {
    strmap_t map;
} ip_table_t;

/* The entry for the address of `peer`, an AF_INET or AF_INET6 sockaddr
 * (created at zero when absent). */
ip_entry_t *ip_table_get(ip_table_t *t, const struct sockaddr *peer);
/* Drops entries with no connection whose bucket is full again. */
void ip_table_sweep(ip_table_t *t, double rate, double burst, uint64_t now_ms);
void ip_table_free(ip_table_t *t);
static inline size_t ip_table_size(const ip_table_t *t) { return t->map.count; }

#endif
