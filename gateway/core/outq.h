/* outq.h — reference-counted output blocks and the per-connection queue.
 *
 * A block holds bytes ready for the wire (one or more whole frames).  A
 * message fanned out to N connections is framed once into one block and
 * pushed onto N queues: each push takes a reference, each queue drops it
 * when the block is fully written or discarded (uWS prepareMessage, h2o
 * shared buffers).  Nothing is copied per receiver.
 *
 * The queue is a ring of block pointers plus the offset written into the
 * head block.  One block fits inline (the common case: a delivery to an
 * idle connection is written at once), so a ring is allocated only when two
 * or more are waiting, and freed when the queue drains.
 */
#ifndef WSGW_OUTQ_H
#define WSGW_OUTQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct wsgw_block {
    uint32_t refs;
    uint32_t len;
    uint8_t  data[];
} wsgw_block_t;

/* A block of `len` bytes (uninitialised) holding one reference. */
wsgw_block_t *wsgw_block_new(size_t len);
static inline wsgw_block_t *wsgw_block_ref(wsgw_block_t *b) { b->refs++; return b; }
/* Drops one reference; frees the block at zero. */
void wsgw_block_unref(wsgw_block_t *b);

typedef struct wsgw_outq {
    wsgw_block_t **ring;   /* NULL: the inline slot is the ring (cap 1) */
    wsgw_block_t  *one;    /* the inline slot */
    uint32_t cap;          /* slots, a power of two (0 or 1: the inline slot) */
    uint32_t head;         /* index of the oldest block */
    uint32_t count;        /* blocks queued */
    uint32_t head_off;     /* bytes of the head block already written */
    size_t   bytes;        /* bytes queued and not yet written */
} wsgw_outq_t;

/* Appends b to the queue, taking a new reference. */
void outq_push(wsgw_outq_t *q, wsgw_block_t *b);

/* Fills up to `max` iovecs with the unwritten bytes in order; returns how
 * many were filled. */
int outq_iov(const wsgw_outq_t *q, struct iovec *iov, int max);

/* Marks n bytes written: releases blocks written to the end. */
void outq_consume(wsgw_outq_t *q, size_t n);

/* Releases every block that has not started to go out and returns how many
 * bytes that dropped; a partly written head block is kept so the stream
 * stays well-formed (its frame must be completed before anything else). */
size_t outq_drop_unstarted(wsgw_outq_t *q);

/* Releases every block and the ring. */
void outq_clear(wsgw_outq_t *q);

#endif
