/* idmap.c — see idmap.h. */
#include "idmap.h"

#include <string.h>

#include "strmap.h"
#include "ws_alloc.h"

void idmap_init(idmap_t *m, idmap_key_fn key_of)
{
    memset(m, 0, sizeof *m);
    m->key_of = key_of;
}

static size_t home_of(const idmap_t *m, const void *item)
{
    size_t len;
    const char *k = m->key_of(item, &len);
    return (size_t)strmap_hash(k, len) & (m->cap - 1);
}

static int has_key(const idmap_t *m, const void *item, const char *key, size_t len)
{
    size_t ilen;
    const char *k = m->key_of(item, &ilen);
    return ilen == len && memcmp(k, key, len) == 0;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t find(const idmap_t *m, const char *key, size_t len)
{
    size_t mask = m->cap - 1, i = (size_t)strmap_hash(key, len) & mask;
    while (m->slots[i] && !has_key(m, m->slots[i], key, len)) i = (i + 1) & mask;
    return i;
}

void *idmap_get(const idmap_t *m, const char *key, size_t len)
{
    if (!m->count) return NULL;
    return m->slots[find(m, key, len)];
}

static void grow(idmap_t *m)
{
    void **old = m->slots;
    size_t old_cap = m->cap;
    m->cap = old_cap ? old_cap * 2 : 64;
    m->slots = ws_xcalloc(m->cap, sizeof *m->slots);
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i]) continue;
        size_t j = home_of(m, old[i]);
        while (m->slots[j]) j = (j + 1) & (m->cap - 1);
        m->slots[j] = old[i];
    }
    ws_xfree(old);
}

int idmap_put(idmap_t *m, void *item)
{
    /* At most 3/4 full: linear probing stays short. */
    if ((m->count + 1) * 4 > m->cap * 3) grow(m);
    size_t len;
    const char *k = m->key_of(item, &len);
    size_t i = find(m, k, len);
    if (m->slots[i]) return -1;
    m->slots[i] = item;
    m->count++;
    return 0;
}

void *idmap_del(idmap_t *m, const char *key, size_t len)
{
    if (!m->count) return NULL;
    size_t mask = m->cap - 1, i = find(m, key, len);
    void *item = m->slots[i];
    if (!item) return NULL;
    m->slots[i] = NULL;
    m->count--;
    /* Move back every later item of the run whose home is not in (i, j]:
     * a lookup for it would otherwise stop at the hole. */
    for (size_t j = (i + 1) & mask; m->slots[j]; j = (j + 1) & mask) {
        size_t h = home_of(m, m->slots[j]);
        if (((j - h) & mask) >= ((j - i) & mask)) {
            m->slots[i] = m->slots[j];
            m->slots[j] = NULL;
            i = j;
        }
    }
    return item;
}

void idmap_free(idmap_t *m)
{
    ws_xfree(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}
