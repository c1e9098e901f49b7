/* ws_internal.h — helpers shared inside proto/ (frame codec, UTF-8, message
 * reader).  Not part of the public contract. */
#ifndef WS_INTERNAL_H
#define WS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The masking key as one 32-bit word whose in-memory bytes are the key
 * rotated to start at mask position `offset`, so `word ^= key` unmasks 4
 * payload bytes that start there.  Built with a rotate, not byte stores
 * plus a reload: a 4-byte load of 4 fresh 1-byte stores cannot be
 * store-forwarded and stalls ~15 cycles on every call. */
static inline uint32_t ws_mask_key32(const uint8_t mask[4], uint64_t offset)
{
    uint32_t k;
    memcpy(&k, mask, 4);
    unsigned r = (unsigned)(offset & 3) * 8;
    if (!r) return k;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return k << r | k >> (32 - r);
#else
    return k >> r | k << (32 - r);
#endif
}

/* Unmasks s[0..len) in place exactly as ws_mask(s, len, mask, offset) and
 * validates the result exactly as ws_utf8_validate(state, s, len), in one
 * pass where the CPU allows it (each block is checked from the register it
 * was unmasked in).  On WS_UTF8_REJECT the bytes after the block holding
 * the first invalid byte may be left masked.  (ws_utf8.c) */
uint32_t ws_utf8_unmask_validate(uint32_t state, uint8_t *s, size_t len,
                                 const uint8_t mask[4], uint64_t offset);

#endif
