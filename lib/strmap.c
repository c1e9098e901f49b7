/* strmap.c — see strmap.h. */
#include "strmap.h"

#include <string.h>

#include "ws_alloc.h"

uint64_t strmap_hash(const char *key, size_t len)
{
    /* FNV-1a, then a final avalanche so linear probing sees spread bits. */
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)key[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static strmap_slot_t *strmap_find(const strmap_t *m, const char *key, size_t len, uint64_t h)
{
    if (m->cap == 0) return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        strmap_slot_t *s = &m->slots[i];
        if (!s->key) return s;
        if (s->hash == h && s->key_len == len && memcmp(s->key, key, len) == 0) return s;
    }
}

static void strmap_grow(strmap_t *m)
{
    size_t old_cap = m->cap;
    strmap_slot_t *old = m->slots;
    m->cap = old_cap ? old_cap * 2 : 16;
    m->slots = ws_xcalloc(m->cap, sizeof *m->slots);
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i].key) continue;
        strmap_slot_t *s = strmap_find(m, old[i].key, old[i].key_len, old[i].hash);
        *s = old[i];
    }
    ws_xfree(old);
}

void *strmap_get(const strmap_t *m, const char *key, size_t len)
{
    strmap_slot_t *s = strmap_find(m, key, len, strmap_hash(key, len));
    return s && s->key ? s->value : NULL;
}

void *strmap_put(strmap_t *m, const char *key, size_t len, void *value)
{
    if ((m->count + 1) * 4 > m->cap * 3) strmap_grow(m);
    uint64_t h = strmap_hash(key, len);
    strmap_slot_t *s = strmap_find(m, key, len, h);
    if (s->key) {
        void *prev = s->value;
        s->key = key;          /* the new owner's copy of the same bytes */
        s->value = value;
        return prev;
    }
    s->key = key;
    s->key_len = len;
    s->hash = h;
    s->value = value;
    m->count++;
    return NULL;
}

void *strmap_del(strmap_t *m, const char *key, size_t len)
{
    strmap_slot_t *s = strmap_find(m, key, len, strmap_hash(key, len));
    if (!s || !s->key) return NULL;
    void *value = s->value;
    size_t mask = m->cap - 1;
    size_t hole = (size_t)(s - m->slots);
    /* Backward-shift deletion: pull later entries of the probe run into the
     * hole when their home slot does not lie between the hole and them. */
    for (size_t j = (hole + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        int between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (between) continue;
        m->slots[hole] = m->slots[j];
        hole = j;
    }
    memset(&m->slots[hole], 0, sizeof m->slots[hole]);
    m->count--;
    return value;
}

size_t strmap_sweep(strmap_t *m, int (*visit)(void *value, void *ud), void (*release)(void *value),
                    void *ud)
{
    strmap_slot_t *gone = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key || !visit(m->slots[i].value, ud)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            gone = ws_xrealloc(gone, cap * sizeof *gone);
        }
        gone[n++] = m->slots[i];
    }
    for (size_t i = 0; i < n; i++) {
        strmap_del(m, gone[i].key, gone[i].key_len);
        if (release) release(gone[i].value);
    }
    ws_xfree(gone);
    return n;
}

void strmap_free(strmap_t *m)
{
    ws_xfree(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}
