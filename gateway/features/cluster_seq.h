/* cluster_seq.h — per-channel sequence numbers on the backplane, so that a
 * message Redis pub/sub lost between two nodes is counted, not silent
 * (docs/protocol.md, "Backplane", "Sequence numbers and loss counting").
 *
 * Redis pub/sub is at-most-once: after a Redis restart a node may publish
 * before another has subscribed again, and nobody is told.  Every payload a
 * node publishes on a delivery channel (P:all, P:room:<name>, P:conn:<id>)
 * carries "seq":N, numbered per (publishing node, channel) from 1.  A
 * receiving node remembers the last N per (origin node, channel); when the
 * next one jumps, the messages in between were lost on the way.
 *
 * What is detected: any loss followed, on the same channel, by a later
 * message or trailer from the same node (on a room or P:all, once the
 * receiver has had one number from that node there; on a connection's
 * channel, from the first).  A trailer is a payload with only
 * node and seq that repeats the last number, published once when a channel
 * has been quiet for CLUSTER_SEQ_TRAILER_MS (and the backplane has been up that
 * long), so that a loss at the end of a burst is detected too.  What is
 * not: a loss whose trailer was lost as well (the receiver was still away
 * CLUSTER_SEQ_TRAILER_MS after the publisher came back), and a loss just before
 * the publisher's counter restarts (an idle channel is forgotten after
 * CLUSTER_SEQ_OUT_IDLE_MS and starts again at 1; a receiver takes a number at or
 * below the last as such a restart and counts nothing).
 *
 * Two tables, both pure (no event loop, no I/O; time is passed in), both
 * bounded: the publisher's has an entry per channel published on in the
 * last CLUSTER_SEQ_OUT_IDLE_MS, at most max_channels (past that a publish goes
 * out without seq, counted in `unsequenced`); the receiver's an entry per
 * subscribed channel that received numbered messages, with at most
 * CLUSTER_SEQ_ORIGINS_MAX origin nodes each, forgotten when the channel is
 * unsubscribed or its origins are quiet for CLUSTER_SEQ_IN_IDLE_MS (longer than
 * the publisher's idle time, so a receiver never forgets a counter the
 * publisher still runs).  Allocation happens only when an entry is created;
 * the per-message calls do none. */
#ifndef WSGW_CLUSTER_SEQ_H
#define WSGW_CLUSTER_SEQ_H

#include <stddef.h>
#include <stdint.h>

#include "strmap.h"

#define CLUSTER_SEQ_TRAILER_MS    3000u     /* quiet time before a channel's trailer */
#define CLUSTER_SEQ_OUT_IDLE_MS   60000u    /* a publisher forgets a channel's counter */
#define CLUSTER_SEQ_IN_IDLE_MS    180000u   /* a receiver forgets an origin: > OUT_IDLE + TRAILER */
#define CLUSTER_SEQ_ORIGINS_MAX   128       /* origin nodes tracked per channel */
#define CLUSTER_SEQ_NODE_MAX      32        /* longer node ids are not tracked (ours are 12) */
#define CLUSTER_SEQ_MAX           9007199254740991ull   /* 2^53 - 1: exact in every JSON reader */

/* ---- publisher ------------------------------------------------------------ */

typedef struct cluster_seq_out {
    strmap_t chans;          /* channel -> cluster_seq_out_chan_t (private) */
    size_t   max_channels;   /* 0: no bound */
    uint64_t unsequenced;    /* publishes sent without seq: the table was full */
} cluster_seq_out_t;

/* The number for the next publish on channel (1 for a channel new to the
 * table), or 0 when the table is full: publish without seq.  Copies the
 * channel name when it creates an entry. */
uint64_t cluster_seq_out_next(cluster_seq_out_t *o, const char *ch, size_t len, uint64_t now_ms);

/* The publish numbered by the last cluster_seq_out_next() on ch was refused at
 * once (bp_publish returned BP_REFUSED): nothing went out, so the number is
 * given back and the next publish reuses it.  Only valid before any other
 * cluster_seq_out_next() on ch. */
void cluster_seq_out_unused(cluster_seq_out_t *o, const char *ch, size_t len, uint64_t seq);

/* Called by cluster_seq_out_sweep for a trailer: publish {node, seq} on ch. */
typedef void (*cluster_seq_trailer_cb)(void *ud, const char *ch, size_t len, uint64_t seq);

/* Periodic: forgets channels without a publish for CLUSTER_SEQ_OUT_IDLE_MS and,
 * when trailer is not NULL, calls it once for each channel numbered since
 * its last trailer that has been quiet for CLUSTER_SEQ_TRAILER_MS since
 * max(its last publish, up_since_ms) — up_since_ms being when the
 * backplane last came up (pass trailer = NULL while it is not up: the
 * trailer then waits). */
void cluster_seq_out_sweep(cluster_seq_out_t *o, uint64_t now_ms, uint64_t up_since_ms,
                      cluster_seq_trailer_cb trailer, void *ud);

void cluster_seq_out_free(cluster_seq_out_t *o);

/* ---- receiver ------------------------------------------------------------- */

typedef struct cluster_seq_in {
    strmap_t chans;          /* channel -> cluster_seq_in_chan_t (private) */
    uint64_t untracked;      /* numbered payloads not tracked: node id too long,
                                or CLUSTER_SEQ_ORIGINS_MAX origins on the channel */
    uint64_t late;           /* messages dropped as late arrivals (CLUSTER_SEQ_IN_LATE) */
} cluster_seq_in_t;

/* A payload numbered seq from node arrived on ch; trailer = 1 when it was a
 * trailer (repeats the last number sent rather than numbering a message).
 * from_one = 1 when node cannot have numbered anything on ch before we
 * subscribed (a connection's own channel: its random id was unknown until
 * the connection was announced, after the subscription).  Returns how many
 * messages from node on ch went missing before it: 0 in order; for the
 * first number seen from node on ch, 0, or with from_one those before it.
 *
 * A message numbered at or below the last one is either the publisher's
 * counter starting again (seq 1 after the origin was quiet for at least
 * half of CLUSTER_SEQ_OUT_IDLE_MS: it forgets a channel after that long) — 0,
 * and counting goes on from 1 — or a late arrival: it was counted missing
 * when a later number came first (a connection the publisher gave up on,
 * whose bytes still reached Redis after its new connection's), or it is a
 * repeat.  Then CLUSTER_SEQ_IN_LATE is returned, the last number is kept, `late`
 * counts it, and the caller drops it: delivered now it would arrive out of
 * order, after a loss already counted.  A late trailer is ignored (0). */
#define CLUSTER_SEQ_IN_LATE UINT64_MAX
uint64_t cluster_seq_in_check(cluster_seq_in_t *in, const char *ch, size_t chlen,
                         const char *node, size_t node_len, uint64_t seq, int trailer,
                         int from_one, uint64_t now_ms);

/* The node unsubscribed from ch: what it does not receive from now on is
 * not lost, so its numbers are forgotten. */
void cluster_seq_in_forget(cluster_seq_in_t *in, const char *ch, size_t chlen);

/* Periodic: forgets origins quiet for CLUSTER_SEQ_IN_IDLE_MS (a node that left). */
void cluster_seq_in_sweep(cluster_seq_in_t *in, uint64_t now_ms);

void cluster_seq_in_free(cluster_seq_in_t *in);

#endif
