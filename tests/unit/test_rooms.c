/* Unit tests: strmap, rooms, outq (the gateway's in-memory structures). */
#include "test.h"

#include <stdlib.h>
#include <string.h>

#include "idmap.h"
#include "outq.h"
#include "rooms.h"
#include "strmap.h"

static void test_strmap_put_get_del_churn(void)
{
    strmap_t m = {0};
    static char keys[5000][16];
    for (int i = 0; i < 5000; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        CHECK(strmap_put(&m, keys[i], strlen(keys[i]), (void *)(intptr_t)(i + 1)) == NULL);
    }
    CHECK_INT(m.count, 5000);
    for (int i = 0; i < 5000; i += 2)
        CHECK_INT((intptr_t)strmap_del(&m, keys[i], strlen(keys[i])), i + 1);
    CHECK_INT(m.count, 2500);
    for (int i = 0; i < 5000; i++) {
        void *v = strmap_get(&m, keys[i], strlen(keys[i]));
        if (i % 2) CHECK_INT((intptr_t)v, i + 1);
        else CHECK(v == NULL);
    }
    CHECK(strmap_del(&m, "absent", 6) == NULL);
    CHECK((intptr_t)strmap_put(&m, keys[1], strlen(keys[1]), (void *)7) == 2);
    CHECK_INT((intptr_t)strmap_get(&m, keys[1], strlen(keys[1])), 7);
    strmap_free(&m);
}

/* Values are heap strings that own their key, as the gateway's entries do. */
static int sweep_visits, sweep_released;
static int drop_multiples_of_3(void *value, void *ud)
{
    (void)ud;
    sweep_visits++;
    return atoi((const char *)value + 1) % 3 == 0;
}
static void release_key(void *value)
{
    sweep_released++;
    free(value);
}

static void test_strmap_sweep(void)
{
    strmap_t m = {0};
    for (int i = 0; i < 3000; i++) {
        char *k = malloc(16);
        snprintf(k, 16, "k%d", i);
        strmap_put(&m, k, strlen(k), k);
    }
    /* Backward-shift deletion moves entries: a plain walk that deleted as
     * it went would visit some twice or skip them. */
    CHECK_INT(strmap_sweep(&m, drop_multiples_of_3, release_key, NULL), 1000);
    CHECK_INT(sweep_visits, 3000);
    CHECK_INT(sweep_released, 1000);
    CHECK_INT(m.count, 2000);
    for (int i = 0; i < 3000; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        void *v = strmap_get(&m, k, strlen(k));
        if (i % 3 == 0) CHECK(v == NULL);
        else CHECK(v != NULL && strcmp(v, k) == 0);
    }
    for (size_t i = 0; i < m.cap; i++) free(m.slots[i].key ? m.slots[i].value : NULL);
    strmap_free(&m);
}

static int created, destroyed;
static void on_created(wsgw_room_t *r, void *ud) { (void)r; (void)ud; created++; }
static void on_destroyed(wsgw_room_t *r, void *ud) { (void)r; (void)ud; destroyed++; }

static void test_rooms_join_leave_semantics(void)
{
    wsgw_rooms_t rs = { .on_room_created = on_created, .on_room_destroyed = on_destroyed };
    wsgw_member_t a = {0}, b = {0}, c = {0};
    created = destroyed = 0;
    CHECK_INT(rooms_join(&rs, &a, "lobby", 5, 8), 1);
    CHECK_INT(rooms_join(&rs, &a, "lobby", 5, 8), 0);      /* twice: one membership */
    CHECK_INT(rooms_join(&rs, &b, "lobby", 5, 8), 1);
    CHECK_INT(rooms_join(&rs, &c, "lobby", 5, 8), 1);
    CHECK_INT(created, 1);
    wsgw_room_t *r = rooms_find(&rs, "lobby", 5);
    CHECK(r && r->count == 3);
    CHECK_INT(rooms_leave(&rs, &a, "lobby", 5), 1);        /* swap-remove moves c */
    CHECK_INT(rooms_leave(&rs, &a, "lobby", 5), 0);
    CHECK(r->count == 2 && rooms_is_member(&b, "lobby", 5) && rooms_is_member(&c, "lobby", 5));
    CHECK_INT(rooms_leave(&rs, &c, "lobby", 5), 1);        /* c's index must have been fixed */
    CHECK(r->count == 1 && r->members[0] == &b);
    CHECK_INT(rooms_leave(&rs, &b, "lobby", 5), 1);
    CHECK_INT(destroyed, 1);
    CHECK(rooms_find(&rs, "lobby", 5) == NULL);
    CHECK_INT(rooms_count(&rs), 0);
    CHECK(a.cap == 0 && b.cap == 0 && c.cap == 0);   /* nothing left allocated */
    rooms_free(&rs);
}

static void test_rooms_limit_and_leave_all(void)
{
    wsgw_rooms_t rs = {0};
    wsgw_member_t m[10];
    memset(m, 0, sizeof m);
    char name[16];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "r%d", i);
        CHECK_INT(rooms_join(&rs, &m[0], name, strlen(name), 4), 1);
        for (int k = 1; k < 10; k++) CHECK_INT(rooms_join(&rs, &m[k], name, strlen(name), 4), 1);
    }
    CHECK_INT(rooms_join(&rs, &m[0], "r9", 2, 4), -1);
    CHECK_INT(rs.memberships, 40);
    /* leave_all in an order that exercises index fix-ups everywhere. */
    for (int k = 9; k >= 0; k -= 2) rooms_leave_all(&rs, &m[k]);
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "r%d", i);
        wsgw_room_t *r = rooms_find(&rs, name, strlen(name));
        CHECK(r && r->count == 5);
        for (uint32_t j = 0; j < r->count; j++) {
            wsgw_member_t *mm = r->members[j];
            int found = 0;
            const wsgw_membership_t *ms = rooms_memberships(mm);
            for (int q = 0; q < mm->count; q++)
                if (ms[q].room == r) { CHECK_INT(ms[q].idx, j); found = 1; }
            CHECK(found);
        }
    }
    for (int k = 0; k < 10; k += 2) rooms_leave_all(&rs, &m[k]);
    CHECK_INT(rooms_count(&rs), 0);
    CHECK_INT(rs.memberships, 0);
    rooms_free(&rs);
}

/* One membership is inline; a second moves both to an array, and leaving
 * down to none and joining again returns to the inline slot. */
static void test_rooms_inline_then_array(void)
{
    wsgw_rooms_t rs = {0};
    wsgw_member_t a = {0}, b = {0};
    CHECK_INT(rooms_join(&rs, &a, "one", 3, 8), 1);
    CHECK_INT(a.cap, 1);
    CHECK_INT(rooms_join(&rs, &b, "one", 3, 8), 1);
    CHECK_INT(rooms_join(&rs, &a, "two", 3, 8), 1);
    CHECK(a.cap > 1 && a.count == 2);
    CHECK(rooms_is_member(&a, "one", 3) && rooms_is_member(&a, "two", 3));
    CHECK_INT(rooms_leave(&rs, &a, "one", 3), 1);          /* b's index in "one" is fixed */
    wsgw_room_t *one = rooms_find(&rs, "one", 3);
    CHECK(one && one->count == 1 && one->members[0] == &b && rooms_memberships(&b)[0].idx == 0);
    CHECK_INT(rooms_leave(&rs, &a, "two", 3), 1);
    CHECK_INT(a.cap, 0);
    CHECK_INT(rooms_join(&rs, &a, "three", 5, 8), 1);
    CHECK(a.cap == 1 && rooms_memberships(&a)[0].room == rooms_find(&rs, "three", 5));
    rooms_leave_all(&rs, &a);
    rooms_leave_all(&rs, &b);
    CHECK_INT(rooms_count(&rs), 0);
    rooms_free(&rs);
}

typedef struct item { char key[16]; size_t len; } item_t;
static const char *item_key(const void *p, size_t *len)
{
    const item_t *it = p;
    *len = it->len;
    return it->key;
}

/* Put, get and delete in an order that exercises the backward shift of
 * probe runs, checked against what must be there. */
static void test_idmap_churn(void)
{
    static item_t items[6000];
    idmap_t m;
    idmap_init(&m, item_key);
    for (int i = 0; i < 6000; i++) {
        items[i].len = (size_t)snprintf(items[i].key, sizeof items[i].key, "id%d", i);
        CHECK_INT(idmap_put(&m, &items[i]), 0);
    }
    CHECK_INT(idmap_put(&m, &items[17]), -1);              /* key already there */
    CHECK_INT(m.count, 6000);
    for (int i = 0; i < 6000; i += 3) CHECK(idmap_del(&m, items[i].key, items[i].len) == &items[i]);
    CHECK(idmap_del(&m, "id0", 3) == NULL);
    CHECK(idmap_del(&m, "absent", 6) == NULL);
    for (int i = 0; i < 6000; i++) {
        void *v = idmap_get(&m, items[i].key, items[i].len);
        if (i % 3) CHECK(v == &items[i]);
        else CHECK(v == NULL);
    }
    for (int i = 0; i < 6000; i += 3) CHECK_INT(idmap_put(&m, &items[i]), 0);
    for (int i = 0; i < 6000; i++) CHECK(idmap_get(&m, items[i].key, items[i].len) == &items[i]);
    CHECK_INT(m.count, 6000);
    idmap_free(&m);
}

static void test_outq_shared_blocks(void)
{
    wsgw_outq_t q1 = {0}, q2 = {0};
    wsgw_block_t *b = wsgw_block_new(10);
    memcpy(b->data, "0123456789", 10);
    outq_push(&q1, b);
    outq_push(&q2, b);
    wsgw_block_unref(b);                  /* the queues hold it now */
    CHECK_INT(b->refs, 2);
    for (int i = 0; i < 20; i++) {        /* grow the ring past 8 */
        wsgw_block_t *x = wsgw_block_new(3);
        memcpy(x->data, "abc", 3);
        outq_push(&q1, x);
        wsgw_block_unref(x);
    }
    CHECK_INT(q1.bytes, 70);
    struct iovec iov[64];
    CHECK_INT(outq_iov(&q1, iov, 64), 21);
    outq_consume(&q1, 4);
    CHECK_INT(outq_iov(&q1, iov, 64), 21);
    CHECK_INT(iov[0].iov_len, 6);
    CHECK_MEM(iov[0].iov_base, "456789", 6);
    outq_consume(&q1, 6 + 3 + 1);         /* finish b, one "abc", 1 byte of the next */
    CHECK_INT(b->refs, 1);
    CHECK_INT(q1.bytes, 70 - 14);
    CHECK_INT(outq_drop_unstarted(&q1), 3 * 18);   /* keeps the started head */
    CHECK_INT(q1.count, 1);
    CHECK_INT(q1.bytes, 2);
    outq_consume(&q1, 2);
    CHECK(q1.count == 0 && q1.ring == NULL);
    outq_clear(&q2);                      /* frees b */
    CHECK(q2.count == 0 && q2.bytes == 0);
}

static void test_outq_inline_slot(void)
{
    wsgw_outq_t q = {0};
    wsgw_block_t *a = wsgw_block_new(4), *b = wsgw_block_new(2);
    memcpy(a->data, "abcd", 4);
    memcpy(b->data, "xy", 2);
    outq_push(&q, a);                       /* one block: no ring allocated */
    CHECK(q.ring == NULL && q.count == 1);
    struct iovec iov[4];
    CHECK_INT(outq_iov(&q, iov, 4), 1);
    CHECK_MEM(iov[0].iov_base, "abcd", 4);
    outq_consume(&q, 1);                    /* partly written stays inline */
    CHECK(q.ring == NULL && q.head_off == 1);
    outq_push(&q, b);                       /* a second one: now a ring */
    CHECK(q.ring != NULL && q.count == 2);
    CHECK_INT(outq_iov(&q, iov, 4), 2);
    CHECK_MEM(iov[0].iov_base, "bcd", 3);
    CHECK_MEM(iov[1].iov_base, "xy", 2);
    outq_consume(&q, 5);
    CHECK(q.ring == NULL && q.count == 0 && q.bytes == 0);
    outq_push(&q, b);                       /* inline again after draining */
    CHECK(q.ring == NULL && q.count == 1);
    CHECK_INT(outq_drop_unstarted(&q), 2);
    CHECK(q.count == 0);
    outq_clear(&q);
    CHECK_INT(a->refs, 1);
    CHECK_INT(b->refs, 1);
    wsgw_block_unref(a);
    wsgw_block_unref(b);
}

int main(void)
{
    RUN(test_strmap_put_get_del_churn);
    RUN(test_strmap_sweep);
    RUN(test_rooms_join_leave_semantics);
    RUN(test_rooms_limit_and_leave_all);
    RUN(test_rooms_inline_then_array);
    RUN(test_idmap_churn);
    RUN(test_outq_shared_blocks);
    RUN(test_outq_inline_slot);
    return test_report("rooms");
}
