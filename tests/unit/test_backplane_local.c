/* Unit tests: the backplane's in-process implementation, bp_local —
 * delivery order, no re-entrant callbacks, refcounted payloads, frees with
 * deliveries pending and from inside callbacks — on the shared harness of
 * bp_harness.h (libev as the loop).  bp_redis: test_backplane_redis.c.
 */
#include "test.h"
#include "bp_harness.h"

/* ---- bp_local ------------------------------------------------------------------------- */

static void test_local_delivery_order(void)
{
    peer_t *a = peer_local();
    pubres_t *r = res_new();
    CHECK(a->bp);
    CHECK_INT(a->nstate, 0);                   /* not from inside bp_local_new */
    CHECK_INT(bp_state(a->bp), BP_UP);
    sub(a, "room");
    a->next_seq = 1;
    publish(a, "room", "1", r);
    publish(a, "room", "2", r);
    publish(a, "other", "x", r);
    publish(a, "room", "3", r);
    CHECK_INT(a->nmsg, 0);                     /* later, never inside the call */
    CHECK_INT(r->n, 0);
    WAIT_FOR(r->n == 4, 2000);
    CHECK_INT(r->n, 4);
    CHECK_INT(a->nmsg, 3);
    CHECK_INT(a->seq_bad, 0);
    CHECK_STR(a->last, "3");
    CHECK_INT(r->sum, 3);                      /* 1 + 1 + 0 + 1 */
    CHECK_INT(r->dropped, 0);
    CHECK_INT(a->nstate, 1);
    CHECK_INT(a->state, BP_UP);
    bp_stats_t st = stats(a);
    CHECK_INT(st.published, 4);
    CHECK_INT(st.received, 3);
    CHECK_INT(st.subscriptions, 1);
    CHECK_INT(st.pending_bytes, 0);
    CHECK_INT(st.state, BP_UP);
    CHECK_INT(reentered, 0);
    CHECK_STR(bp_state_name(BP_DOWN), "down");
    CHECK_STR(bp_state_name(BP_SYNCING), "syncing");
    CHECK_STR(bp_state_name(BP_UP), "up");
    bp_free(a->bp);
    a->bp = NULL;
    spin(5);
    CHECK_INT(timers_live, 0);
}

static void test_local_not_reentrant(void)
{
    peer_t *a = peer_local();
    sub(a, "chain");
    a->next_seq = 0;
    a->republish_left = 99;                    /* each message publishes the next */
    publish(a, "chain", "0", NULL);
    WAIT_FOR(a->nmsg == 100, 2000);
    CHECK_INT(a->nmsg, 100);
    CHECK_INT(a->seq_bad, 0);
    CHECK_INT(a->msg_nested, 0);
    spin(5);
    CHECK_INT(a->nmsg, 100);
    CHECK_INT(reentered, 0);
}

static void test_local_refcounts(void)
{
    peer_t *a = peer_local();
    pubres_t *r = res_new();
    sub(a, "x");
    sub(a, "x");
    CHECK_INT(stats(a).subscriptions, 1);
    unsub(a, "x");
    publish(a, "x", "still", r);
    WAIT_FOR(r->n == 1, 1000);
    CHECK_INT(r->last, 1);
    CHECK_INT(a->nmsg, 1);
    unsub(a, "x");
    CHECK_INT(stats(a).subscriptions, 0);
    publish(a, "x", "gone", r);
    WAIT_FOR(r->n == 2, 1000);
    CHECK_INT(r->last, 0);
    CHECK_INT(a->nmsg, 1);
    unsub(a, "x");                             /* unbalanced: ignored */
    unsub(a, "never");
    sub(a, "x");                               /* one subscribe is enough again */
    publish(a, "x", "back", r);
    WAIT_FOR(r->n == 3, 1000);
    CHECK_INT(r->last, 1);
    CHECK_INT(a->nmsg, 2);
    CHECK_STR(a->last, "back");
    CHECK_INT(stats(a).subscriptions, 1);
}

static void test_local_free_pending_and_in_callback(void)
{
    peer_t *a = peer_local();
    pubres_t *r = res_new();
    publish(a, "q", "1", r);
    publish(a, "q", "2", r);
    bp_free(a->bp);                      /* pending callbacks: BP_DROPPED, inside bp_free */
    a->bp = NULL;
    CHECK_INT(r->n, 2);
    CHECK_INT(r->dropped, 2);
    CHECK_INT(a->nstate, 0);                   /* the UP report never came: freed first */

    peer_t *b = peer_local();
    pubres_t *rb = res_new();
    sub(b, "f");
    b->free_in_msg = 1;
    for (int i = 0; i < 5; i++) publish(b, "f", "m", rb);
    WAIT_FOR(b->bp == NULL, 1000);
    CHECK(b->bp == NULL);
    CHECK_INT(b->nmsg, 1);
    CHECK_INT(rb->n, 5);                       /* every callback exactly once */
    CHECK_INT(rb->dropped, 5);
    spin(20);
    CHECK_INT(b->nmsg, 1);
    CHECK_INT(rb->n, 5);
    CHECK_INT(timers_live, 0);
    CHECK_INT(reentered, 0);
}

int main(void)
{
    harness_init();
    RUN_BP(test_local_delivery_order);
    RUN_BP(test_local_not_reentrant);
    RUN_BP(test_local_refcounts);
    RUN_BP(test_local_free_pending_and_in_callback);
    return harness_report("backplane_local");
}
