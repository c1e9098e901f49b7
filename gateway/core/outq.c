/* outq.c — see outq.h. */
#include "outq.h"

#include <string.h>

#include "ws_alloc.h"

wsgw_block_t *wsgw_block_new(size_t len)
{
    wsgw_block_t *b = ws_xmalloc(sizeof *b + len);
    b->refs = 1;
    b->len = (uint32_t)len;
    return b;
}

void wsgw_block_unref(wsgw_block_t *b)
{
    if (--b->refs == 0) ws_xfree(b);
}

/* The slots in use: the ring, or the inline slot as a ring of one. */
static inline wsgw_block_t **outq_slots(const wsgw_outq_t *q)
{
    return q->ring ? q->ring : (wsgw_block_t **)&q->one;
}

static inline uint32_t outq_cap(const wsgw_outq_t *q)
{
    return q->ring ? q->cap : 1;
}

static void outq_grow(wsgw_outq_t *q)
{
    uint32_t old = outq_cap(q), cap = q->ring ? q->cap * 2 : 8;
    wsgw_block_t **from = outq_slots(q);
    wsgw_block_t **ring = ws_xmalloc(cap * sizeof *ring);
    for (uint32_t i = 0; i < q->count; i++) ring[i] = from[(q->head + i) & (old - 1)];
    ws_xfree(q->ring);
    q->ring = ring;
    q->cap = cap;
    q->head = 0;
}

void outq_push(wsgw_outq_t *q, wsgw_block_t *b)
{
    if (q->count == outq_cap(q)) outq_grow(q);
    outq_slots(q)[(q->head + q->count) & (outq_cap(q) - 1)] = wsgw_block_ref(b);
    q->count++;
    q->bytes += b->len;
}

int outq_iov(const wsgw_outq_t *q, struct iovec *iov, int max)
{
    int n = 0;
    wsgw_block_t **slots = outq_slots(q);
    uint32_t mask = outq_cap(q) - 1;
    for (uint32_t i = 0; i < q->count && n < max; i++) {
        wsgw_block_t *b = slots[(q->head + i) & mask];
        uint32_t off = i == 0 ? q->head_off : 0;
        iov[n].iov_base = b->data + off;
        iov[n].iov_len = b->len - off;
        n++;
    }
    return n;
}

static wsgw_block_t *outq_pop(wsgw_outq_t *q)
{
    wsgw_block_t *b = outq_slots(q)[q->head];
    q->head = (q->head + 1) & (outq_cap(q) - 1);
    q->count--;
    q->head_off = 0;
    return b;
}

void outq_consume(wsgw_outq_t *q, size_t n)
{
    q->bytes -= n;
    while (n > 0) {
        wsgw_block_t *b = outq_slots(q)[q->head];
        size_t left = b->len - q->head_off;
        if (n < left) {
            q->head_off += (uint32_t)n;
            return;
        }
        n -= left;
        wsgw_block_unref(outq_pop(q));
    }
    if (q->count == 0) {
        /* An idle connection holds no ring: memory per idle socket matters. */
        ws_xfree(q->ring);
        q->ring = NULL;
        q->one = NULL;
        q->cap = 0;
        q->head = 0;
    }
}

size_t outq_drop_unstarted(wsgw_outq_t *q)
{
    size_t dropped = 0;
    uint32_t keep = q->head_off > 0 ? 1 : 0;
    while (q->count > keep) {
        uint32_t last = (q->head + q->count - 1) & (outq_cap(q) - 1);
        wsgw_block_t *b = outq_slots(q)[last];
        dropped += b->len;
        q->count--;
        wsgw_block_unref(b);
    }
    q->bytes -= dropped;
    return dropped;
}

void outq_clear(wsgw_outq_t *q)
{
    while (q->count) wsgw_block_unref(outq_pop(q));
    ws_xfree(q->ring);
    memset(q, 0, sizeof *q);
}
