/* ws_frame.c — the RFC 6455 §5 frame codec (see ws_frame.h). */
#include "ws_frame.h"
#include "ws_utf8.h"
#include "ws_internal.h"
#include "ws_status.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__AVX2__)
#include <immintrin.h>
#endif

/* Opcodes 0-2 and 8-A are defined; 3-7 and B-F are reserved (§5.2). */
#define WS_OPCODE_DEFINED_BITS 0x0707u

int ws_frame_parse_header(const uint8_t *buf, size_t len, int allowed_rsv,
                          ws_role_t role, ws_frame_hdr_t *h)
{
    if (len < 1) return WS_E_WANT_MORE;
    /* Byte 0 is checked as soon as it is here, so a bad frame fails at its
     * first byte whatever the split. */
    unsigned b0 = buf[0];
    unsigned op = b0 & 0x0F, rsv = (b0 >> 4) & 7, fin = b0 >> 7;
    if (!((WS_OPCODE_DEFINED_BITS >> op) & 1)) return WS_E_FRAME_OPCODE;
    if (rsv & ~(unsigned)allowed_rsv) return WS_E_FRAME_RSV;
    if (WS_OP_IS_CONTROL(op)) {
        if (rsv & WS_RSV1) return WS_E_FRAME_RSV;   /* deflate never owns control frames */
        if (!fin) return WS_E_FRAME_CTRL_FRAG;
    }
    if (len < 2) return WS_E_WANT_MORE;

    unsigned b1 = buf[1];
    unsigned masked = b1 >> 7, len7 = b1 & 0x7F;
    if (role == WS_ROLE_SERVER && !masked) return WS_E_FRAME_UNMASKED;
    if (role != WS_ROLE_SERVER && masked) return WS_E_FRAME_MASKED;
    if (WS_OP_IS_CONTROL(op) && len7 > WS_CONTROL_MAX) return WS_E_FRAME_CTRL_TOO_BIG;

    size_t hl = 2;
    uint64_t plen = len7;
    if (len7 == 126) {
        if (len < 4) return WS_E_WANT_MORE;
        plen = (uint64_t)buf[2] << 8 | buf[3];
        if (plen < 126) return WS_E_FRAME_LEN_NONCANON;
        hl = 4;
    } else if (len7 == 127) {
        if (len > 2 && (buf[2] & 0x80)) return WS_E_FRAME_LEN_MSB;
        if (len < 10) return WS_E_WANT_MORE;
        plen = 0;
        for (int i = 2; i < 10; i++) plen = plen << 8 | buf[i];
        if (plen <= 0xFFFF) return WS_E_FRAME_LEN_NONCANON;
        hl = 10;
    }
    if (masked) {
        if (len < hl + 4) return WS_E_WANT_MORE;
        memcpy(h->mask, buf + hl, 4);
        hl += 4;
    } else {
        memset(h->mask, 0, 4);
    }
    h->payload_len = plen;
    h->opcode = (uint8_t)op;
    h->fin = (uint8_t)fin;
    h->rsv = (uint8_t)rsv;
    h->masked = (uint8_t)masked;
    h->header_len = (uint8_t)hl;
    return (int)hl;
}

/* The key rotated so that byte k of it applies to data[k] (data starts at
 * mask position `offset`); every chunk below is a multiple of 4 bytes long,
 * so the same rotated key fits each chunk start. */
void ws_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset)
{
    uint32_t m32 = ws_mask_key32(mask, offset);
    size_t i = 0;
#if defined(__AVX2__)
    {
        __m256i v = _mm256_set1_epi32((int)m32);
        for (; i + 128 <= len; i += 128) {
            __m256i *p = (__m256i *)(void *)(data + i);
            __m256i a = _mm256_loadu_si256(p), b = _mm256_loadu_si256(p + 1);
            __m256i c = _mm256_loadu_si256(p + 2), d = _mm256_loadu_si256(p + 3);
            _mm256_storeu_si256(p, _mm256_xor_si256(a, v));
            _mm256_storeu_si256(p + 1, _mm256_xor_si256(b, v));
            _mm256_storeu_si256(p + 2, _mm256_xor_si256(c, v));
            _mm256_storeu_si256(p + 3, _mm256_xor_si256(d, v));
        }
        for (; i + 32 <= len; i += 32) {
            __m256i *p = (__m256i *)(void *)(data + i);
            _mm256_storeu_si256(p, _mm256_xor_si256(_mm256_loadu_si256(p), v));
        }
    }
#endif
#if defined(__SSE2__)
    {
        __m128i v = _mm_set1_epi32((int)m32);
        for (; i + 64 <= len; i += 64) {
            __m128i *p = (__m128i *)(void *)(data + i);
            __m128i a = _mm_loadu_si128(p), b = _mm_loadu_si128(p + 1);
            __m128i c = _mm_loadu_si128(p + 2), d = _mm_loadu_si128(p + 3);
            _mm_storeu_si128(p, _mm_xor_si128(a, v));
            _mm_storeu_si128(p + 1, _mm_xor_si128(b, v));
            _mm_storeu_si128(p + 2, _mm_xor_si128(c, v));
            _mm_storeu_si128(p + 3, _mm_xor_si128(d, v));
        }
        for (; i + 16 <= len; i += 16) {
            __m128i *p = (__m128i *)(void *)(data + i);
            _mm_storeu_si128(p, _mm_xor_si128(_mm_loadu_si128(p), v));
        }
    }
#endif
    uint64_t m64 = (uint64_t)m32 << 32 | m32;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, data + i, 8);
        w ^= m64;
        memcpy(data + i, &w, 8);
    }
    if (i + 4 <= len) {
        uint32_t w;
        memcpy(&w, data + i, 4);
        w ^= m32;
        memcpy(data + i, &w, 4);
        i += 4;
    }
    for (; i < len; i++) data[i] ^= mask[(offset + i) & 3];
}

size_t ws_frame_header_size(uint64_t payload_len, int masked)
{
    size_t n = payload_len < 126 ? 2 : payload_len <= 0xFFFF ? 4 : 10;
    return n + (masked ? 4 : 0);
}

size_t ws_frame_write_header(uint8_t *out, int fin, int rsv, ws_opcode_t op,
                             uint64_t payload_len, const uint8_t mask[4])
{
    size_t n;
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (rsv & 7) << 4 | (op & 0x0F));
    uint8_t mbit = mask ? 0x80 : 0;
    if (payload_len < 126) {
        out[1] = (uint8_t)(mbit | payload_len);
        n = 2;
    } else if (payload_len <= 0xFFFF) {
        out[1] = mbit | 126;
        out[2] = (uint8_t)(payload_len >> 8);
        out[3] = (uint8_t)payload_len;
        n = 4;
    } else {
        out[1] = mbit | 127;
        for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
        n = 10;
    }
    if (mask) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

long ws_frame_write(uint8_t *out, size_t cap, int fin, int rsv, ws_opcode_t op,
                    const uint8_t *payload, size_t len)
{
    if (WS_OP_IS_CONTROL(op) && len > WS_CONTROL_MAX) return WS_E_INVALID_ARG;
    size_t hl = ws_frame_header_size(len, 0);
    if (cap < hl || cap - hl < len) return WS_E_NOSPACE;
    ws_frame_write_header(out, fin, rsv, op, len, NULL);
    if (len) memcpy(out + hl, payload, len);
    return (long)(hl + len);
}

size_t ws_frame_write_close(uint8_t *out, uint16_t code, const char *reason,
                            size_t reason_len)
{
    if (code == 0) return ws_frame_write_header(out, 1, 0, WS_OP_CLOSE, 0, NULL);
    const uint8_t *r = (const uint8_t *)reason;
    if (!r) reason_len = 0;
    reason_len = ws_utf8_cut(r, reason_len, WS_CONTROL_MAX - 2);   /* never half a code point */
    size_t n = ws_frame_write_header(out, 1, 0, WS_OP_CLOSE, 2 + reason_len, NULL);
    out[n] = (uint8_t)(code >> 8);
    out[n + 1] = (uint8_t)code;
    if (reason_len) memcpy(out + n + 2, r, reason_len);
    return n + 2 + reason_len;
}
