/* rooms.c — see rooms.h. */
#include "rooms.h"

#include <string.h>

#include "ws_alloc.h"

wsgw_room_t *rooms_find(const wsgw_rooms_t *rs, const char *name, size_t len)
{
    return strmap_get(&rs->by_name, name, len);
}

static wsgw_membership_t *slots(wsgw_member_t *m)
{
    return m->cap <= 1 ? &m->u.one : m->u.many;
}

static int member_index(const wsgw_member_t *m, const char *name, size_t len)
{
    const wsgw_membership_t *ms = rooms_memberships(m);
    for (uint16_t i = 0; i < m->count; i++) {
        const wsgw_room_t *r = ms[i].room;
        if (r->name_len == len && memcmp(r->name, name, len) == 0) return i;
    }
    return -1;
}

int rooms_is_member(const wsgw_member_t *m, const char *name, size_t len)
{
    return member_index(m, name, len) >= 0;
}

static wsgw_room_t *room_create(wsgw_rooms_t *rs, const char *name, size_t len)
{
    wsgw_room_t *r = ws_xcalloc(1, sizeof *r);
    r->name = ws_xstrndup(name, len);
    r->name_len = len;
    strmap_put(&rs->by_name, r->name, len, r);
    if (rs->on_room_created) rs->on_room_created(r, rs->hook_ud);
    return r;
}

static void room_destroy(wsgw_rooms_t *rs, wsgw_room_t *r)
{
    if (rs->on_room_destroyed) rs->on_room_destroyed(r, rs->hook_ud);
    strmap_del(&rs->by_name, r->name, r->name_len);
    ws_xfree(r->members);
    ws_xfree(r->name);
    ws_xfree(r);
}

int rooms_join(wsgw_rooms_t *rs, wsgw_member_t *m, const char *name, size_t len,
               size_t max_rooms)
{
    if (member_index(m, name, len) >= 0) return 0;
    if (m->count >= max_rooms || m->count == UINT16_MAX) return -1;
    wsgw_room_t *r = rooms_find(rs, name, len);
    if (!r) r = room_create(rs, name, len);
    if (r->count == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 4;
        r->members = ws_xrealloc(r->members, r->cap * sizeof *r->members);
    }
    if (m->count == m->cap) {
        if (m->cap == 0) {
            m->cap = 1;
        } else if (m->cap == 1) {
            wsgw_membership_t first = m->u.one;
            m->u.many = ws_xmalloc(4 * sizeof *m->u.many);
            m->u.many[0] = first;
            m->cap = 4;
        } else {
            m->cap = m->cap > UINT16_MAX / 2 ? UINT16_MAX : (uint16_t)(m->cap * 2);
            m->u.many = ws_xrealloc(m->u.many, m->cap * sizeof *m->u.many);
        }
    }
    wsgw_membership_t *ms = slots(m);
    ms[m->count].room = r;
    ms[m->count].idx = r->count;
    m->count++;
    r->members[r->count++] = m;
    rs->memberships++;
    return 1;
}

/* Removes membership i of m: swap-remove on both sides. */
static void leave_at(wsgw_rooms_t *rs, wsgw_member_t *m, uint16_t i)
{
    wsgw_membership_t *ms = slots(m);
    wsgw_room_t *r = ms[i].room;
    uint32_t idx = ms[i].idx;
    wsgw_member_t *moved = r->members[--r->count];
    r->members[idx] = moved;
    if (moved != m) {
        /* Fix the moved member's stored index for this room. */
        wsgw_membership_t *mv = slots(moved);
        for (uint16_t k = 0; k < moved->count; k++)
            if (mv[k].room == r) { mv[k].idx = idx; break; }
    }
    ms[i] = ms[--m->count];
    rs->memberships--;
    if (r->count == 0) room_destroy(rs, r);
}

static void member_release(wsgw_member_t *m)
{
    if (m->cap > 1) ws_xfree(m->u.many);
    memset(&m->u, 0, sizeof m->u);
    m->cap = 0;
}

int rooms_leave(wsgw_rooms_t *rs, wsgw_member_t *m, const char *name, size_t len)
{
    int i = member_index(m, name, len);
    if (i < 0) return 0;
    leave_at(rs, m, (uint16_t)i);
    if (m->count == 0) member_release(m);
    return 1;
}

void rooms_leave_all(wsgw_rooms_t *rs, wsgw_member_t *m)
{
    while (m->count) leave_at(rs, m, (uint16_t)(m->count - 1));
    member_release(m);
}

void rooms_free(wsgw_rooms_t *rs)
{
    for (size_t i = 0; i < rs->by_name.cap; i++) {
        wsgw_room_t *r = rs->by_name.slots[i].value;
        if (!rs->by_name.slots[i].key) continue;
        ws_xfree(r->members);
        ws_xfree(r->name);
        ws_xfree(r);
    }
    strmap_free(&rs->by_name);
    rs->memberships = 0;
}
