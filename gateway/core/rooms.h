/* rooms.h — the room registry: room name -> members, member -> rooms.
 *
 * It knows nothing of connections or sockets: a member is a small struct
 * embedded in whatever joins (the gateway embeds one in each connection and
 * recovers the connection with container_of).  Join, leave and membership
 * tests are O(1) on the room side (swap-remove with a stored index) and
 * O(rooms of the member) on the member side, which the configuration
 * bounds (max_rooms_per_conn).  A room exists while it has members: it is
 * created by the first join and freed by the last leave, and the hooks let
 * a backplane subscribe and unsubscribe exactly then.
 */
#ifndef WSGW_ROOMS_H
#define WSGW_ROOMS_H

#include <stddef.h>
#include <stdint.h>

#include "strmap.h"

typedef struct wsgw_room wsgw_room_t;
typedef struct wsgw_member wsgw_member_t;

typedef struct wsgw_membership {
    wsgw_room_t *room;
    uint32_t     idx;     /* this member's index in room->members */
} wsgw_membership_t;

/* Most connections are in one room: that membership is kept inline, and
 * an array is allocated only for a second one. */
struct wsgw_member {
    union {
        wsgw_membership_t  one;    /* cap <= 1 */
        wsgw_membership_t *many;   /* cap > 1: owned array */
    } u;
    uint16_t count, cap;
};

struct wsgw_conn;
struct envelope_delivery;
/* A room's delivery filter: 1 delivers d to member c, 0 holds it back
 * (the feature that set it delivers it later itself, or never).  Set by a
 * feature that must order what members get (history merging live
 * messages by offset); d is NULL for raw messages (wsgw_emit_message). */
typedef int (*wsgw_room_filter_cb)(void *ud, const wsgw_room_t *r, struct wsgw_conn *c,
                                   const struct envelope_delivery *d);

struct wsgw_room {
    char           *name;      /* NUL-terminated, owned */
    size_t          name_len;
    wsgw_member_t **members;
    uint32_t        count, cap;
    wsgw_room_filter_cb filter; /* NULL: every member gets everything */
    void           *filter_ud;
};

typedef struct wsgw_rooms {
    strmap_t by_name;
    size_t   memberships;      /* total over all rooms */
    /* Called after a room is created / before it is freed; may be NULL. */
    void   (*on_room_created)(wsgw_room_t *room, void *ud);
    void   (*on_room_destroyed)(wsgw_room_t *room, void *ud);
    void    *hook_ud;
} wsgw_rooms_t;

/* The member's count memberships. */
static inline const wsgw_membership_t *rooms_memberships(const wsgw_member_t *m)
{
    return m->cap <= 1 ? &m->u.one : m->u.many;
}

/* Returns 1 joined, 0 already a member (Iris joined twice and delivered
 * twice; we do not), -1 when the member is in max_rooms rooms already. */
int rooms_join(wsgw_rooms_t *rs, wsgw_member_t *m, const char *name, size_t len,
               size_t max_rooms);
/* Returns 1 left, 0 was not a member. */
int rooms_leave(wsgw_rooms_t *rs, wsgw_member_t *m, const char *name, size_t len);
/* Leaves every room; frees the member's list. */
void rooms_leave_all(wsgw_rooms_t *rs, wsgw_member_t *m);
int rooms_is_member(const wsgw_member_t *m, const char *name, size_t len);
wsgw_room_t *rooms_find(const wsgw_rooms_t *rs, const char *name, size_t len);
static inline size_t rooms_count(const wsgw_rooms_t *rs) { return rs->by_name.count; }
/* Frees every room (members keep dangling lists: call after they are gone). */
void rooms_free(wsgw_rooms_t *rs);

#endif
