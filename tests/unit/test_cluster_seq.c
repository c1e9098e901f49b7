/* test_cluster_seq.c — sequence numbers on the backplane (gateway/cluster_seq.c) and
 * the payload members that carry them (gateway/bp_payload.c). */
#include "test.h"

#include "nodemsg.h"
#include "cluster_seq.h"

static json_span_t span(const char *s) { return (json_span_t){ (const uint8_t *)s, strlen(s) }; }

static int parse(const char *s, nodemsg_t *p) { return nodemsg_parse((const uint8_t *)s, strlen(s), p); }

static void test_payload_seq_member(void)
{
    nodemsg_t p;
    uint64_t seq = 0;
    CHECK(parse("{\"event\":\"m\",\"node\":\"abc\",\"seq\":42}", &p));
    CHECK(nodemsg_seq(p.seq, &seq));
    CHECK_INT(seq, 42);
    CHECK(parse("{\"node\":\"abc\",\"seq\":9007199254740991}", &p));
    CHECK(nodemsg_seq(p.seq, &seq));
    CHECK_INT(seq, 9007199254740991ll);
    /* Absent: a backend's payload, unnumbered as before. */
    CHECK(parse("{\"event\":\"m\",\"data\":1}", &p));
    CHECK_INT(p.seq.len, 0);
    CHECK(!nodemsg_seq(p.seq, &seq));
    /* Anything but a plain positive integer under 2^53 is no seq. */
    const char *bad[] = { "0", "-1", "1.5", "1e3", "\"7\"", "null", "true", "[1]",
                          "9007199254740992", "12345678901234567" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char doc[96];
        snprintf(doc, sizeof doc, "{\"seq\":%s}", bad[i]);
        CHECK_MSG(parse(doc, &p), "%s", doc);
        CHECK_MSG(!nodemsg_seq(p.seq, &seq), "%s", doc);
    }
    CHECK(!nodemsg_seq(span("01"), &seq));
    CHECK(!nodemsg_seq(span(""), &seq));
    /* A repeated member keeps the last. */
    CHECK(parse("{\"seq\":3,\"seq\":5}", &p));
    CHECK(nodemsg_seq(p.seq, &seq));
    CHECK_INT(seq, 5);
}

static void test_payload_rejects_invalid_utf8(void)
{
    nodemsg_t p;
    CHECK(parse("{\"event\":\"m\",\"data\":\"\xc3\xa9\"}", &p));
    CHECK(!parse("{\"event\":\"m\",\"data\":\"\xc3\"}", &p));
    CHECK(!parse("{\"event\":\"m\",\"data\":\"\xed\xa0\x80\"}", &p));   /* a surrogate */
    CHECK(!parse("{\"event\":\"\xff\"}", &p));
}

static void test_unescape_prefix(void)
{
    uint8_t out[8];
    const char *raw = "ab\\u00e9cd";                       /* ab é cd: 6 bytes decoded */
    CHECK_INT(json_str_unescape_prefix((const uint8_t *)raw, strlen(raw), out, sizeof out), 6);
    CHECK_MEM(out, "ab\xc3\xa9" "cd", 6);
    /* Never splits an escape: é (2 bytes) does not fit in 3 after "ab". */
    CHECK_INT(json_str_unescape_prefix((const uint8_t *)raw, strlen(raw), out, 3), 2);
    CHECK_INT(json_str_unescape_prefix((const uint8_t *)raw, strlen(raw), out, 4), 4);
}

/* ---- receiver ------------------------------------------------------------- */

#define IN(in, ch, node, seq, trailer, now) \
    cluster_seq_in_check(&(in), ch, strlen(ch), node, strlen(node), seq, trailer, 0, now)
#define IN_FROM_ONE(in, ch, node, seq, trailer, now) \
    cluster_seq_in_check(&(in), ch, strlen(ch), node, strlen(node), seq, trailer, 1, now)

static void test_in_gaps_are_counted(void)
{
    cluster_seq_in_t in = {0};
    CHECK_INT(IN(in, "P:room:a", "n1", 5, 0, 0), 0);       /* first seen: nothing to compare */
    CHECK_INT(IN(in, "P:room:a", "n1", 6, 0, 1), 0);
    CHECK_INT(IN(in, "P:room:a", "n1", 10, 0, 2), 3);      /* 7, 8, 9 lost */
    CHECK_INT(IN(in, "P:room:a", "n1", 11, 0, 3), 0);
    /* Per origin and per channel. */
    CHECK_INT(IN(in, "P:room:a", "n2", 100, 0, 4), 0);
    CHECK_INT(IN(in, "P:room:a", "n2", 102, 0, 5), 1);
    CHECK_INT(IN(in, "P:room:b", "n1", 50, 0, 6), 0);
    CHECK_INT(IN(in, "P:room:a", "n1", 12, 0, 7), 0);
    cluster_seq_in_free(&in);
}

/* A connection's own channel: numbered only after we subscribed, so the
 * first number seen says how many went before it. */
static void test_in_from_one(void)
{
    cluster_seq_in_t in = {0};
    CHECK_INT(IN_FROM_ONE(in, "P:conn:c1", "n1", 1, 0, 0), 0);     /* the first one came */
    CHECK_INT(IN_FROM_ONE(in, "P:conn:c1", "n1", 2, 0, 1), 0);
    CHECK_INT(IN_FROM_ONE(in, "P:conn:c1", "n1", 4, 0, 2), 1);     /* then as ever */
    CHECK_INT(IN_FROM_ONE(in, "P:conn:c2", "n1", 3, 0, 3), 2);     /* 1 and 2 never came */
    CHECK_INT(IN_FROM_ONE(in, "P:conn:c3", "n1", 2, 1, 4), 2);     /* a trailer first: 1 and 2 lost */
    CHECK_INT(IN_FROM_ONE(in, "P:conn:c3", "n1", 3, 0, 5), 0);
    cluster_seq_in_free(&in);
}

static void test_in_trailers(void)
{
    cluster_seq_in_t in = {0};
    CHECK_INT(IN(in, "P:all", "n1", 1, 0, 0), 0);
    CHECK_INT(IN(in, "P:all", "n1", 1, 1, 1), 0);           /* trailer repeating the last: nothing lost */
    CHECK_INT(IN(in, "P:all", "n1", 2, 0, 2), 0);
    CHECK_INT(IN(in, "P:all", "n1", 5, 1, 3), 3);           /* 3, 4, 5 lost: the trailer says 5 went out */
    CHECK_INT(IN(in, "P:all", "n1", 6, 0, 4), 0);
    CHECK_INT(IN(in, "P:all", "n1", 6, 1, 5), 0);
    CHECK_INT(IN(in, "P:all", "n2", 9, 1, 6), 0);           /* a trailer first: nothing to compare */
    CHECK_INT(IN(in, "P:all", "n2", 10, 0, 7), 0);
    cluster_seq_in_free(&in);
}

/* The publisher forgets a quiet channel (CLUSTER_SEQ_OUT_IDLE_MS) and numbers
 * it from 1 again: after that much quiet, 1 is a new start. */
static void test_in_restart_resets_without_counting(void)
{
    cluster_seq_in_t in = {0};
    uint64_t t = CLUSTER_SEQ_OUT_IDLE_MS;
    CHECK_INT(IN(in, "P:all", "n1", 40, 0, 0), 0);
    CHECK_INT(IN(in, "P:all", "n1", 40, 1, 3000), 0);       /* its trailer */
    CHECK_INT(IN(in, "P:all", "n1", 1, 0, t), 0);           /* the publisher forgot the channel */
    CHECK_INT(IN(in, "P:all", "n1", 2, 0, t + 1), 0);
    CHECK_INT(IN(in, "P:all", "n1", 4, 0, t + 2), 1);       /* counted from the new start */
    CHECK_INT(IN(in, "P:all", "n1", 5, 0, t + 3), 0);
    CHECK_INT(in.late, 0);
    cluster_seq_in_free(&in);
}

/* A number at or below the last, other than a new start, arrived late (a
 * connection given up on whose bytes reached Redis after the new one's) or
 * again: it is not delivered (CLUSTER_SEQ_IN_LATE), the last number stays, and
 * the gap it left was already counted. */
static void test_in_late_arrivals_dropped(void)
{
    cluster_seq_in_t in = {0};
    CHECK_INT(IN(in, "P:room:a", "n1", 10, 0, 0), 0);
    CHECK_INT(IN(in, "P:room:a", "n1", 14, 0, 1), 3);       /* 11, 12, 13 missing */
    CHECK(IN(in, "P:room:a", "n1", 12, 0, 2) == CLUSTER_SEQ_IN_LATE);
    CHECK(IN(in, "P:room:a", "n1", 14, 0, 3) == CLUSTER_SEQ_IN_LATE);   /* a repeat */
    CHECK_INT(IN(in, "P:room:a", "n1", 13, 1, 4), 0);       /* a late trailer: ignored */
    CHECK_INT(IN(in, "P:room:a", "n1", 15, 0, 5), 0);       /* counting goes on from 14 */
    /* 1 is late too when the origin was not quiet long enough to restart. */
    CHECK(IN(in, "P:room:a", "n1", 1, 0, 6) == CLUSTER_SEQ_IN_LATE);
    CHECK_INT(IN(in, "P:room:a", "n1", 16, 0, 7), 0);
    CHECK_INT(in.late, 3);
    cluster_seq_in_free(&in);
}

static void test_in_forget_and_sweep(void)
{
    cluster_seq_in_t in = {0};
    CHECK_INT(IN(in, "P:room:a", "n1", 1, 0, 0), 0);
    cluster_seq_in_forget(&in, "P:room:a", 8);                   /* unsubscribed: the gap is not a loss */
    CHECK_INT(in.chans.count, 0);
    CHECK_INT(IN(in, "P:room:a", "n1", 9, 0, 10), 0);
    cluster_seq_in_forget(&in, "P:room:zz", 9);                  /* unknown: ignored */
    /* Origins quiet for CLUSTER_SEQ_IN_IDLE_MS go, the busy ones stay. */
    CHECK_INT(IN(in, "P:room:a", "n2", 1, 0, 1000), 0);
    CHECK_INT(IN(in, "P:room:b", "n1", 1, 0, 20), 0);
    cluster_seq_in_sweep(&in, 10 + CLUSTER_SEQ_IN_IDLE_MS - 1);
    CHECK_INT(in.chans.count, 2);
    cluster_seq_in_sweep(&in, 20 + CLUSTER_SEQ_IN_IDLE_MS);
    CHECK_INT(in.chans.count, 1);                           /* P:room:b gone, P:room:a keeps n2 */
    CHECK_INT(IN(in, "P:room:a", "n2", 3, 0, 1100), 1);
    CHECK_INT(IN(in, "P:room:a", "n1", 20, 0, 1100), 0);    /* n1 forgotten: first seen again */
    cluster_seq_in_sweep(&in, 1100 + CLUSTER_SEQ_IN_IDLE_MS);
    CHECK_INT(in.chans.count, 0);
    cluster_seq_in_free(&in);
}

static void test_in_bounds(void)
{
    cluster_seq_in_t in = {0};
    char node[64];
    for (int i = 0; i < CLUSTER_SEQ_ORIGINS_MAX + 5; i++) {
        snprintf(node, sizeof node, "node%d", i);
        CHECK_INT(IN(in, "P:all", node, 1, 0, 0), 0);
    }
    CHECK_INT(in.untracked, 5);
    CHECK_INT(IN(in, "P:all", "node3", 3, 0, 0), 1);         /* the tracked ones still count */
    memset(node, 'x', sizeof node - 1);
    node[CLUSTER_SEQ_NODE_MAX + 1] = '\0';
    CHECK_INT(IN(in, "P:room:q", node, 1, 0, 0), 0);
    CHECK_INT(IN(in, "P:room:q", node, 9, 0, 0), 0);        /* too long: not tracked */
    CHECK_INT(in.untracked, 7);
    cluster_seq_in_free(&in);
}

/* ---- publisher ------------------------------------------------------------ */

typedef struct trailers { int n; char ch[8][32]; uint64_t seq[8]; } trailers_t;

static void on_trailer(void *ud, const char *ch, size_t len, uint64_t seq)
{
    trailers_t *t = ud;
    if (t->n < 8) {
        snprintf(t->ch[t->n], sizeof t->ch[0], "%.*s", (int)len, ch);
        t->seq[t->n] = seq;
    }
    t->n++;
}

static void test_out_numbers_per_channel(void)
{
    cluster_seq_out_t o = {0};
    CHECK_INT(cluster_seq_out_next(&o, "P:all", 5, 0), 1);
    CHECK_INT(cluster_seq_out_next(&o, "P:all", 5, 0), 2);
    CHECK_INT(cluster_seq_out_next(&o, "P:room:a", 8, 0), 1);
    CHECK_INT(cluster_seq_out_next(&o, "P:all", 5, 0), 3);
    /* Refused at once: the number is reused, so no receiver sees a gap. */
    uint64_t s = cluster_seq_out_next(&o, "P:all", 5, 0);
    CHECK_INT(s, 4);
    cluster_seq_out_unused(&o, "P:all", 5, s);
    CHECK_INT(cluster_seq_out_next(&o, "P:all", 5, 0), 4);
    cluster_seq_out_unused(&o, "P:all", 5, 0);                   /* unsequenced: nothing to give back */
    CHECK_INT(cluster_seq_out_next(&o, "P:all", 5, 0), 5);
    cluster_seq_out_free(&o);
}

static void test_out_bound(void)
{
    cluster_seq_out_t o = { .max_channels = 2 };
    CHECK_INT(cluster_seq_out_next(&o, "a", 1, 0), 1);
    CHECK_INT(cluster_seq_out_next(&o, "b", 1, 0), 1);
    CHECK_INT(cluster_seq_out_next(&o, "c", 1, 0), 0);           /* full: published without seq */
    CHECK_INT(o.unsequenced, 1);
    CHECK_INT(cluster_seq_out_next(&o, "a", 1, 0), 2);           /* known channels go on */
    cluster_seq_out_free(&o);
}

static void test_out_trailers_and_eviction(void)
{
    cluster_seq_out_t o = {0};
    trailers_t t = {0};
    cluster_seq_out_next(&o, "P:all", 5, 1000);
    cluster_seq_out_next(&o, "P:all", 5, 1000);
    cluster_seq_out_next(&o, "P:room:a", 8, 2000);
    cluster_seq_out_sweep(&o, 1000 + CLUSTER_SEQ_TRAILER_MS - 1, 0, on_trailer, &t);
    CHECK_INT(t.n, 0);                                      /* not quiet long enough */
    cluster_seq_out_sweep(&o, 1000 + CLUSTER_SEQ_TRAILER_MS, 0, on_trailer, &t);
    CHECK_INT(t.n, 1);
    CHECK_STR(t.ch[0], "P:all");
    CHECK_INT(t.seq[0], 2);                                 /* repeats the last number */
    cluster_seq_out_sweep(&o, 1000 + 2 * CLUSTER_SEQ_TRAILER_MS, 0, on_trailer, &t);
    CHECK_INT(t.n, 2);                                      /* P:room:a; P:all only once */
    CHECK_STR(t.ch[1], "P:room:a");
    /* Down: no trailer; up again: quiet counted from the time it came up. */
    cluster_seq_out_next(&o, "P:all", 5, 10000);
    cluster_seq_out_sweep(&o, 20000, 0, NULL, NULL);
    CHECK_INT(t.n, 2);
    cluster_seq_out_sweep(&o, 20000, 19000, on_trailer, &t);
    CHECK_INT(t.n, 2);
    cluster_seq_out_sweep(&o, 19000 + CLUSTER_SEQ_TRAILER_MS, 19000, on_trailer, &t);
    CHECK_INT(t.n, 3);
    CHECK_INT(t.seq[2], 3);
    /* Forgotten after CLUSTER_SEQ_OUT_IDLE_MS without a publish: starts at 1 again. */
    cluster_seq_out_sweep(&o, 10000 + CLUSTER_SEQ_OUT_IDLE_MS - 1, 0, on_trailer, &t);
    CHECK_INT(o.chans.count, 1);                            /* P:room:a went (2000 + idle < now) */
    cluster_seq_out_sweep(&o, 10000 + CLUSTER_SEQ_OUT_IDLE_MS, 0, on_trailer, &t);
    CHECK_INT(o.chans.count, 0);
    CHECK_INT(cluster_seq_out_next(&o, "P:all", 5, 200000), 1);
    /* A trailer still owed keeps the entry, however long the backplane is down. */
    cluster_seq_out_sweep(&o, 200000 + 10 * CLUSTER_SEQ_OUT_IDLE_MS, 0, NULL, NULL);
    CHECK_INT(o.chans.count, 1);
    cluster_seq_out_free(&o);
}

/* The two ends together: what a publisher numbers, a receiver checks. */
static void test_end_to_end_loss_accounting(void)
{
    cluster_seq_out_t o = {0};
    cluster_seq_in_t in = {0};
    trailers_t t = {0};
    uint64_t lost = 0, delivered = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t s = cluster_seq_out_next(&o, "P:all", 5, (uint64_t)i);
        if (i >= 40 && i < 55) continue;                    /* an outage in the middle */
        if (i >= 95) continue;                              /* and at the end */
        delivered++;
        lost += IN(in, "P:all", "n1", s, 0, (uint64_t)i);
    }
    CHECK_INT(lost, 15);                                    /* the trailing 5 not yet */
    cluster_seq_out_sweep(&o, 99 + CLUSTER_SEQ_TRAILER_MS, 0, on_trailer, &t);
    CHECK_INT(t.n, 1);
    lost += IN(in, "P:all", "n1", t.seq[0], 1, 99 + CLUSTER_SEQ_TRAILER_MS);
    CHECK_INT(lost, 20);
    CHECK_INT(lost + delivered, 100);
    cluster_seq_out_free(&o);
    cluster_seq_in_free(&in);
}

int main(void)
{
    RUN(test_payload_seq_member);
    RUN(test_payload_rejects_invalid_utf8);
    RUN(test_unescape_prefix);
    RUN(test_in_gaps_are_counted);
    RUN(test_in_from_one);
    RUN(test_in_trailers);
    RUN(test_in_restart_resets_without_counting);
    RUN(test_in_late_arrivals_dropped);
    RUN(test_in_forget_and_sweep);
    RUN(test_in_bounds);
    RUN(test_out_numbers_per_channel);
    RUN(test_out_bound);
    RUN(test_out_trailers_and_eviction);
    RUN(test_end_to_end_loss_accounting);
    return test_report("cluster_seq");
}
