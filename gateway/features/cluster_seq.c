/* cluster_seq.c — see cluster_seq.h. */
#include "cluster_seq.h"

#include <string.h>

#include "ws_alloc.h"

/* ---- publisher ------------------------------------------------------------ */

typedef struct cluster_seq_out_chan {
    char    *name;           /* owned: the strmap key */
    size_t   len;
    uint64_t seq;            /* last number given out (0: none yet) */
    uint64_t last_ms;        /* last cluster_seq_out_next() */
    int      trailer_owed;   /* numbered since the last trailer */
} cluster_seq_out_chan_t;

uint64_t cluster_seq_out_next(cluster_seq_out_t *o, const char *ch, size_t len, uint64_t now_ms)
{
    cluster_seq_out_chan_t *c = strmap_get(&o->chans, ch, len);
    if (!c) {
        if (o->max_channels && o->chans.count >= o->max_channels) {
            o->unsequenced++;
            return 0;
        }
        c = ws_xcalloc(1, sizeof *c);
        c->name = ws_xstrndup(ch, len);
        c->len = len;
        strmap_put(&o->chans, c->name, c->len, c);
    }
    /* 2^53 publishes on one channel are centuries away; wrap to 1 all the
     * same, which a receiver takes as a restart. */
    c->seq = c->seq >= CLUSTER_SEQ_MAX ? 1 : c->seq + 1;
    c->last_ms = now_ms;
    c->trailer_owed = 1;
    return c->seq;
}

void cluster_seq_out_unused(cluster_seq_out_t *o, const char *ch, size_t len, uint64_t seq)
{
    cluster_seq_out_chan_t *c = seq ? strmap_get(&o->chans, ch, len) : NULL;
    if (c && c->seq == seq) c->seq--;
}

static void out_chan_free(cluster_seq_out_chan_t *c)
{
    ws_xfree(c->name);
    ws_xfree(c);
}

typedef struct out_sweep {
    uint64_t now_ms, up_since_ms;
    cluster_seq_trailer_cb trailer;
    void *ud;
} out_sweep_t;

/* Sends a trailer that is due; returns 1 when the channel is forgotten. */
static int out_sweep_one(void *value, void *arg)
{
    cluster_seq_out_chan_t *c = value;
    const out_sweep_t *w = arg;
    uint64_t quiet_from = c->last_ms > w->up_since_ms ? c->last_ms : w->up_since_ms;
    if (w->trailer && c->trailer_owed && c->seq && w->now_ms - quiet_from >= CLUSTER_SEQ_TRAILER_MS) {
        c->trailer_owed = 0;
        w->trailer(w->ud, c->name, c->len, c->seq);
    }
    /* A trailer still owed (the backplane is down) keeps the entry:
     * forgetting it would lose the count of what was held. */
    return w->now_ms - c->last_ms >= CLUSTER_SEQ_OUT_IDLE_MS && !c->trailer_owed;
}

static void out_chan_release(void *value)
{
    out_chan_free(value);
}

void cluster_seq_out_sweep(cluster_seq_out_t *o, uint64_t now_ms, uint64_t up_since_ms,
                      cluster_seq_trailer_cb trailer, void *ud)
{
    out_sweep_t w = { now_ms, up_since_ms, trailer, ud };
    strmap_sweep(&o->chans, out_sweep_one, out_chan_release, &w);
}

void cluster_seq_out_free(cluster_seq_out_t *o)
{
    for (size_t i = 0; i < o->chans.cap; i++)
        if (o->chans.slots[i].key) out_chan_free(o->chans.slots[i].value);
    strmap_free(&o->chans);
}

/* ---- receiver ------------------------------------------------------------- */

typedef struct cluster_seq_origin {
    uint64_t last;           /* last number received from this node */
    uint64_t seen_ms;
    uint8_t  node_len;
    char     node[CLUSTER_SEQ_NODE_MAX];
} cluster_seq_origin_t;

typedef struct cluster_seq_in_chan {
    char            *name;   /* owned: the strmap key */
    size_t           len;
    size_t           n, cap;
    cluster_seq_origin_t *origins;
} cluster_seq_in_chan_t;

static cluster_seq_origin_t *origin_find(cluster_seq_in_chan_t *c, const char *node, size_t node_len)
{
    /* A handful of nodes publish on one channel: a linear scan is the
     * fastest lookup at that size, and CLUSTER_SEQ_ORIGINS_MAX bounds it. */
    for (size_t i = 0; i < c->n; i++)
        if (c->origins[i].node_len == node_len && memcmp(c->origins[i].node, node, node_len) == 0)
            return &c->origins[i];
    return NULL;
}

static cluster_seq_origin_t *origin_add(cluster_seq_in_t *in, const char *ch, size_t chlen,
                                   cluster_seq_in_chan_t *c, const char *node, size_t node_len)
{
    if (!c) {
        c = ws_xcalloc(1, sizeof *c);
        c->name = ws_xstrndup(ch, chlen);
        c->len = chlen;
        strmap_put(&in->chans, c->name, c->len, c);
    }
    if (c->n == CLUSTER_SEQ_ORIGINS_MAX) return NULL;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 4;
        c->origins = ws_xrealloc(c->origins, c->cap * sizeof *c->origins);
    }
    cluster_seq_origin_t *o = &c->origins[c->n++];
    memset(o, 0, sizeof *o);
    memcpy(o->node, node, node_len);
    o->node_len = (uint8_t)node_len;
    return o;
}

uint64_t cluster_seq_in_check(cluster_seq_in_t *in, const char *ch, size_t chlen,
                         const char *node, size_t node_len, uint64_t seq, int trailer,
                         int from_one, uint64_t now_ms)
{
    if (node_len == 0 || node_len > CLUSTER_SEQ_NODE_MAX || seq == 0) {
        in->untracked++;
        return 0;
    }
    cluster_seq_in_chan_t *c = strmap_get(&in->chans, ch, chlen);
    cluster_seq_origin_t *o = c ? origin_find(c, node, node_len) : NULL;
    if (!o) {
        o = origin_add(in, ch, chlen, c, node, node_len);
        if (!o) { in->untracked++; return 0; }
        o->last = seq;                        /* the first we see */
        o->seen_ms = now_ms;
        /* Nothing to compare with, unless every number was given while we
         * were subscribed: then those before it were lost. */
        return from_one ? (trailer ? seq : seq - 1) : 0;
    }
    uint64_t quiet_ms = now_ms - o->seen_ms;
    o->seen_ms = now_ms;
    if (trailer ? seq < o->last : seq <= o->last) {
        if (trailer) return 0;                /* a late trailer says nothing new */
        if (seq == 1 && quiet_ms >= CLUSTER_SEQ_OUT_IDLE_MS / 2) {
            o->last = 1;                      /* the publisher's counter started again */
            return 0;
        }
        in->late++;
        return CLUSTER_SEQ_IN_LATE;
    }
    /* A message numbered seq follows seq - 1; a trailer repeats the last
     * number sent, so it follows itself. */
    uint64_t expected_last = trailer ? seq : seq - 1;
    uint64_t missing = expected_last > o->last ? expected_last - o->last : 0;
    o->last = seq;
    return missing;
}

static void in_chan_free(cluster_seq_in_chan_t *c)
{
    ws_xfree(c->origins);
    ws_xfree(c->name);
    ws_xfree(c);
}

void cluster_seq_in_forget(cluster_seq_in_t *in, const char *ch, size_t chlen)
{
    cluster_seq_in_chan_t *c = strmap_del(&in->chans, ch, chlen);
    if (c) in_chan_free(c);
}

/* Forgets quiet origins; returns 1 when none is left on the channel. */
static int in_sweep_one(void *value, void *arg)
{
    cluster_seq_in_chan_t *c = value;
    uint64_t now_ms = *(const uint64_t *)arg;
    for (size_t k = 0; k < c->n;) {
        if (now_ms - c->origins[k].seen_ms >= CLUSTER_SEQ_IN_IDLE_MS) c->origins[k] = c->origins[--c->n];
        else k++;
    }
    return c->n == 0;
}

static void in_chan_release(void *value)
{
    in_chan_free(value);
}

void cluster_seq_in_sweep(cluster_seq_in_t *in, uint64_t now_ms)
{
    strmap_sweep(&in->chans, in_sweep_one, in_chan_release, &now_ms);
}

void cluster_seq_in_free(cluster_seq_in_t *in)
{
    for (size_t i = 0; i < in->chans.cap; i++)
        if (in->chans.slots[i].key) in_chan_free(in->chans.slots[i].value);
    strmap_free(&in->chans);
}
