/* ratelimit.c — see ratelimit.h. */
#include "ratelimit.h"

#include <netinet/in.h>
#include <string.h>

#include "cidr.h"
#include "ws_alloc.h"

#define TBUCKET_STALE (1u << 30)

static double tbucket_level(const tbucket_t *b, double rate, double burst, uint64_t now_ms)
{
    if (b->last_ms == 0) return burst;
    uint32_t elapsed = (uint32_t)now_ms - b->last_ms;
    if (elapsed >= TBUCKET_STALE) return burst;     /* (or the clock went back) */
    double t = (double)b->tokens + (double)elapsed * rate / 1000.0;
    return t > burst ? burst : t;
}

int tbucket_take(tbucket_t *b, double rate, double burst, uint64_t now_ms, double cost)
{
    if (rate <= 0) return 1;
    double t = tbucket_level(b, rate, burst, now_ms);
    b->last_ms = (uint32_t)now_ms ? (uint32_t)now_ms : 1;
    if (t < cost) {
        b->tokens = (float)t;
        return 0;
    }
    b->tokens = (float)(t - cost);
    return 1;
}

void tbucket_age(tbucket_t *b, uint64_t now_ms)
{
    if (b->last_ms && (uint32_t)now_ms - b->last_ms >= TBUCKET_STALE) b->last_ms = 0;
}

int tbucket_full(const tbucket_t *b, double rate, double burst, uint64_t now_ms)
{
    return rate <= 0 || tbucket_level(b, rate, burst, now_ms) >= burst;
}

/* IPv4 per address (/32), IPv6 per /64: one customer (a home line, a VM)
 * is given a whole /64 and may use any address in it, so a key per /128
 * would give it 2^64 budgets.  An IPv4-mapped address is its IPv4 address
 * (ip_addr_view), not one /64 shared by every IPv4 client. */
static size_t ip_key(const struct sockaddr *peer, uint8_t key[IP_KEY_MAX])
{
    const uint8_t *a = NULL;
    int family = ip_addr_view(peer, &a);
    key[0] = (uint8_t)family;
    if (family == AF_INET) {
        memcpy(key + 1, a, 4);
        return 5;
    }
    if (family == AF_INET6) {
        memcpy(key + 1, a, 8);
        return 9;
    }
    return 1;
}

ip_entry_t *ip_table_get(ip_table_t *t, const struct sockaddr *peer)
{
    uint8_t key[IP_KEY_MAX];
    size_t n = ip_key(peer, key);
    ip_entry_t *e = strmap_get(&t->map, (const char *)key, n);
    if (e) return e;
    e = ws_xcalloc(1, sizeof *e);
    memcpy(e->key, key, n);
    e->key_len = (uint8_t)n;
    strmap_put(&t->map, (const char *)e->key, n, e);
    return e;
}

typedef struct ip_sweep {
    double   rate, burst;
    uint64_t now_ms;
} ip_sweep_t;

/* An address with no connection and a full bucket is forgotten. */
static int ip_sweep_one(void *value, void *arg)
{
    ip_entry_t *e = value;
    const ip_sweep_t *w = arg;
    tbucket_age(&e->rate, w->now_ms);
    return !e->conns && tbucket_full(&e->rate, w->rate, w->burst, w->now_ms);
}

void ip_table_sweep(ip_table_t *t, double rate, double burst, uint64_t now_ms)
{
    ip_sweep_t w = { rate, burst, now_ms };
    strmap_sweep(&t->map, ip_sweep_one, ws_xfree, &w);
}

void ip_table_free(ip_table_t *t)
{
    for (size_t i = 0; i < t->map.cap; i++)
        if (t->map.slots[i].key) ws_xfree(t->map.slots[i].value);
    strmap_free(&t->map);
}
