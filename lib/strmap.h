/* strmap.h — a string-keyed hash map (open addressing, linear probing).
 *
 * Used for room name -> room and connection id -> connection.  Keys are not
 * copied: the caller keeps each key alive while it is in the map (rooms and
 * connections own their names).  Lookups do no allocation; inserts grow the
 * table at 3/4 load; deletes use backward-shift so no tombstones pile up
 * under join/leave churn.
 */
#ifndef WSGW_STRMAP_H
#define WSGW_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct strmap_slot {
    const char *key;
    size_t      key_len;
    uint64_t    hash;
    void       *value;
} strmap_slot_t;

typedef struct strmap {
    strmap_slot_t *slots;
    size_t         cap;    /* power of two, or 0 */
    size_t         count;
} strmap_t;

/* A zero-initialised strmap_t is an empty map. */
void *strmap_get(const strmap_t *m, const char *key, size_t len);
/* Inserts or replaces; returns the previous value or NULL. */
void *strmap_put(strmap_t *m, const char *key, size_t len, void *value);
/* Removes key; returns its value or NULL when absent. */
void *strmap_del(strmap_t *m, const char *key, size_t len);
void  strmap_free(strmap_t *m);

/* Iteration: for (size_t i = 0; i < m->cap; i++) if (m->slots[i].key) ...
 * Do not insert or delete while iterating. */

/* Visits every entry once; each for which visit() returns nonzero is
 * removed, then handed to release() (which may free the key's memory: it
 * runs after the removal).  Deleting during a plain walk would skip entries
 * that backward-shift deletion moves, so the removed ones are collected
 * first (one array per sweep, grown by doubling).  Returns how many went. */
size_t strmap_sweep(strmap_t *m, int (*visit)(void *value, void *ud), void (*release)(void *value),
                    void *ud);

uint64_t strmap_hash(const char *key, size_t len);

#endif
