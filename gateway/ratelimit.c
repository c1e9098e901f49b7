/* ratelimit.c — see ratelimit.h. */
#include "ratelimit.h"

#include <netinet/in.h>
#include <string.h>

#include "ws_alloc.h"

int tbucket_take(tbucket_t *b, double rate, double burst, uint64_t now_ms, double cost)
{
    if (rate <= 0) return 1;
    if (b->last_ms == 0) {
        b->tokens = burst;
    } else if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * rate / 1000.0;
        if (b->tokens > burst) b->tokens = burst;
    }
    b->last_ms = now_ms ? now_ms : 1;
    if (b->tokens < cost) return 0;
    b->tokens -= cost;
    return 1;
}

static size_t ip_key(const struct sockaddr *peer, uint8_t key[17])
{
    key[0] = (uint8_t)peer->sa_family;
    if (peer->sa_family == AF_INET) {
        memcpy(key + 1, &((const struct sockaddr_in *)peer)->sin_addr, 4);
        return 5;
    }
    if (peer->sa_family == AF_INET6) {
        memcpy(key + 1, &((const struct sockaddr_in6 *)peer)->sin6_addr, 16);
        return 17;
    }
    return 1;
}

ip_entry_t *ip_table_get(ip_table_t *t, const struct sockaddr *peer)
{
    uint8_t key[17];
    size_t n = ip_key(peer, key);
    ip_entry_t *e = strmap_get(&t->map, (const char *)key, n);
    if (e) return e;
    e = ws_xcalloc(1, sizeof *e);
    memcpy(e->key, key, n);
    e->key_len = (uint8_t)n;
    strmap_put(&t->map, (const char *)e->key, n, e);
    return e;
}

void ip_table_sweep(ip_table_t *t, double rate, double burst, uint64_t now_ms)
{
    /* Collect first: deleting while walking the slots would skip entries
     * that backward-shift deletion moves. */
    size_t n = 0;
    ip_entry_t **gone = NULL;
    for (size_t i = 0; i < t->map.cap; i++) {
        ip_entry_t *e = t->map.slots[i].value;
        if (!t->map.slots[i].key || e->conns) continue;
        double refill = rate > 0 ? (double)(now_ms - e->rate.last_ms) * rate / 1000.0 : burst;
        if (e->rate.tokens + refill < burst) continue;
        gone = ws_xrealloc(gone, (n + 1) * sizeof *gone);
        gone[n++] = e;
    }
    for (size_t i = 0; i < n; i++) {
        strmap_del(&t->map, (const char *)gone[i]->key, gone[i]->key_len);
        ws_xfree(gone[i]);
    }
    ws_xfree(gone);
}

void ip_table_free(ip_table_t *t)
{
    for (size_t i = 0; i < t->map.cap; i++)
        if (t->map.slots[i].key) ws_xfree(t->map.slots[i].value);
    strmap_free(&t->map);
}
