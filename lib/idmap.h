/* idmap.h — a hash index of items that carry their own string key (the
 * connections by id): open addressing, linear probing, one pointer per slot.
 *
 * Why not strmap: a strmap slot keeps a key pointer, length, hash and value
 * (32 bytes), which for the id index is ~50 bytes per idle connection at
 * the usual load; here the item is the value and holds its key, so a slot
 * is 8 bytes (~13 per connection).  Probes read the key through key_of(),
 * so a lookup touches the items it passes; lookups by id are not on the
 * fan-out path.  Deletion shifts the following run back (no tombstones).
 */
#ifndef WSGW_IDMAP_H
#define WSGW_IDMAP_H

#include <stddef.h>

/* Returns the item's key and its length in *len. */
typedef const char *(*idmap_key_fn)(const void *item, size_t *len);

typedef struct idmap {
    void       **slots;
    size_t       cap;       /* power of two, or 0 */
    size_t       count;
    idmap_key_fn key_of;
} idmap_t;

void  idmap_init(idmap_t *m, idmap_key_fn key_of);
void *idmap_get(const idmap_t *m, const char *key, size_t len);
/* Adds item under its key; returns 0, or -1 if an item with that key is
 * there already (nothing changes then). */
int   idmap_put(idmap_t *m, void *item);
/* Removes and returns the item with that key, or NULL. */
void *idmap_del(idmap_t *m, const char *key, size_t len);
void  idmap_free(idmap_t *m);

#endif
