/* ws_utf8.c — incremental UTF-8 validation (see ws_utf8.h).
 *
 * A DFA in the manner of Björn Höhrmann's decoder, with the tables laid out
 * for speed: each input byte first maps to one of 12 character classes, and
 * each class has one 64-bit "row" that holds the next state for every
 * current state, 6 bits per state.  A state *is* the bit offset of its
 * 6-bit field, so one step is
 *
 *     state = row[class[byte]] >> (state & 63)
 *
 * The two loads depend only on the byte, not on the state, so the chain
 * that carries from byte to byte is a single shift (~1 cycle) instead of
 * the two dependent loads of the classic table.  Offsets were chosen so
 * that ACCEPT is 0 and REJECT is 12, the values ws_utf8.h publishes.
 *
 * On top of the DFA, runs of ASCII are skipped 16 bytes at a time whenever
 * the state is ACCEPT (SSE2 where it exists — it is baseline on x86_64 —
 * two 64-bit words elsewhere).  Non-ASCII input is stepped through the DFA
 * 16 bytes at a time with one REJECT check per block; REJECT maps to REJECT
 * for every byte, so stopping at the block end reports the same state as
 * stopping at the bad byte.
 *
 * On x86_64 CPUs with AVX2 (picked at run time, so the baseline build gets
 * it too) the bulk of a long input goes through a vector check instead —
 * the nibble-lookup method of Keiser & Lemire, "Validating UTF-8 in less
 * than one instruction per byte" (2021), tables derived below — and the
 * DFA only finishes a sequence left open by the previous call and
 * resumes after the last complete code point.  Text with many multi-byte
 * characters, where the ASCII skip never fires, then costs well under a
 * cycle per byte instead of about one.
 */
#include "ws_utf8.h"
#include "ws_internal.h"
#include "ws_frame.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define WS_UTF8_HAVE_AVX2_PATH 1
#include <immintrin.h>
#endif

/* States: bit offsets into a row.  Names say what is still expected. */
enum {
    U_ACC = 0,   /* at a code-point boundary */
    U_C1  = 6,   /* one more continuation byte 80..BF */
    U_REJ = 12,  /* an invalid byte was seen (sticky) */
    U_C2  = 18,  /* two more continuation bytes, any 80..BF */
    U_E0  = 24,  /* after E0: A0..BF (else overlong), then one more */
    U_ED  = 30,  /* after ED: 80..9F (else surrogate), then one more */
    U_C3  = 36,  /* three more continuation bytes, any 80..BF */
    U_F0  = 42,  /* after F0: 90..BF (else overlong), then two more */
    U_F4  = 48   /* after F4: 80..8F (else > U+10FFFF), then two more */
};

/* Character classes. */
enum {
    K_ASCII = 0, /* 00..7F */
    K_C80,       /* 80..8F continuation */
    K_C90,       /* 90..9F continuation */
    K_CA0,       /* A0..BF continuation */
    K_L2,        /* C2..DF lead of a 2-byte sequence */
    K_E0,        /* E0 */
    K_L3,        /* E1..EC, EE..EF lead of a 3-byte sequence */
    K_ED,        /* ED */
    K_F0,        /* F0 */
    K_L4,        /* F1..F3 lead of a 4-byte sequence */
    K_F4,        /* F4 */
    K_BAD        /* C0, C1 (always overlong), F5..FF (beyond U+10FFFF) */
};

#define K_ K_ASCII
static const uint8_t ws_utf8_class[256] = {
    /* 00..7F */
    K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_, K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,
    K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_, K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,
    K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_, K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,
    K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_, K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,K_,
    /* 80..8F, 90..9F */
    K_C80,K_C80,K_C80,K_C80,K_C80,K_C80,K_C80,K_C80, K_C80,K_C80,K_C80,K_C80,K_C80,K_C80,K_C80,K_C80,
    K_C90,K_C90,K_C90,K_C90,K_C90,K_C90,K_C90,K_C90, K_C90,K_C90,K_C90,K_C90,K_C90,K_C90,K_C90,K_C90,
    /* A0..BF */
    K_CA0,K_CA0,K_CA0,K_CA0,K_CA0,K_CA0,K_CA0,K_CA0, K_CA0,K_CA0,K_CA0,K_CA0,K_CA0,K_CA0,K_CA0,K_CA0,
    K_CA0,K_CA0,K_CA0,K_CA0,K_CA0,K_CA0,K_CA0,K_CA0, K_CA0,K_CA0,K_CA0,K_CA0,K_CA0,K_CA0,K_CA0,K_CA0,
    /* C0..DF */
    K_BAD,K_BAD,K_L2,K_L2,K_L2,K_L2,K_L2,K_L2, K_L2,K_L2,K_L2,K_L2,K_L2,K_L2,K_L2,K_L2,
    K_L2,K_L2,K_L2,K_L2,K_L2,K_L2,K_L2,K_L2,   K_L2,K_L2,K_L2,K_L2,K_L2,K_L2,K_L2,K_L2,
    /* E0..EF */
    K_E0,K_L3,K_L3,K_L3,K_L3,K_L3,K_L3,K_L3,   K_L3,K_L3,K_L3,K_L3,K_L3,K_ED,K_L3,K_L3,
    /* F0..FF */
    K_F0,K_L4,K_L4,K_L4,K_F4,K_BAD,K_BAD,K_BAD, K_BAD,K_BAD,K_BAD,K_BAD,K_BAD,K_BAD,K_BAD,K_BAD,
};
#undef K_

/* One row per class: the next state for each current state.  ROW lists the
 * next state from ACC, C1, C2, E0, ED, C3, F0, F4 in that order; REJ always
 * goes to REJ. */
#define NX(from, to) ((uint64_t)(to) << (from))
#define ROW(acc, c1, c2, e0, ed, c3, f0, f4)                                  \
    (NX(U_ACC, acc) | NX(U_C1, c1) | NX(U_REJ, U_REJ) | NX(U_C2, c2) |        \
     NX(U_E0, e0) | NX(U_ED, ed) | NX(U_C3, c3) | NX(U_F0, f0) | NX(U_F4, f4))
#define R U_REJ
static const uint64_t ws_utf8_row[12] = {
    /*            ACC    C1     C2    E0    ED    C3    F0    F4  */
    [K_ASCII] = ROW(U_ACC, R,     R,    R,    R,    R,    R,    R),
    [K_C80]   = ROW(R,     U_ACC, U_C1, R,    U_C1, U_C2, R,    U_C2),
    [K_C90]   = ROW(R,     U_ACC, U_C1, R,    U_C1, U_C2, U_C2, R),
    [K_CA0]   = ROW(R,     U_ACC, U_C1, U_C1, R,    U_C2, U_C2, R),
    [K_L2]    = ROW(U_C1,  R,     R,    R,    R,    R,    R,    R),
    [K_E0]    = ROW(U_E0,  R,     R,    R,    R,    R,    R,    R),
    [K_L3]    = ROW(U_C2,  R,     R,    R,    R,    R,    R,    R),
    [K_ED]    = ROW(U_ED,  R,     R,    R,    R,    R,    R,    R),
    [K_F0]    = ROW(U_F0,  R,     R,    R,    R,    R,    R,    R),
    [K_L4]    = ROW(U_C3,  R,     R,    R,    R,    R,    R,    R),
    [K_F4]    = ROW(U_F4,  R,     R,    R,    R,    R,    R,    R),
    [K_BAD]   = ROW(R,     R,     R,    R,    R,    R,    R,    R),
};
#undef R
#undef ROW
#undef NX

_Static_assert(U_ACC == WS_UTF8_ACCEPT && U_REJ == WS_UTF8_REJECT,
               "state offsets must match the published ACCEPT/REJECT values");

/* Length of the ASCII prefix of s[0..n), looked at 16 bytes at a time;
 * stops at the first 16-byte block holding a non-ASCII byte and reports the
 * exact position inside it. */
static size_t ws_utf8_ascii_prefix(const uint8_t *s, size_t n)
{
    size_t i = 0;
#if defined(__SSE2__)
    for (; i + 16 <= n; i += 16) {
        int m = _mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(const void *)(s + i)));
        if (m) return i + (size_t)__builtin_ctz((unsigned)m);
    }
#else
    for (; i + 16 <= n; i += 16) {
        uint64_t a, b;
        memcpy(&a, s + i, 8);
        memcpy(&b, s + i + 8, 8);
        if ((a | b) & 0x8080808080808080ull) break;
    }
#endif
    while (i < n && s[i] < 0x80) i++;
    return i;
}

/* The DFA with the ASCII skip, from any state. */
static uint32_t ws_utf8_dfa(uint64_t st, const uint8_t *s, const uint8_t *end)
{
    while (s < end) {
        if ((st & 63) == U_ACC) {
            s += ws_utf8_ascii_prefix(s, (size_t)(end - s));
            if (s == end) break;
        }
        /* Step the DFA over a block; the REJECT check is once per block. */
        size_t n = (size_t)(end - s);
        if (n > 16) n = 16;
        for (size_t i = 0; i < n; i++)
            st = ws_utf8_row[ws_utf8_class[s[i]]] >> (st & 63);
        s += n;
        if ((st & 63) == U_REJ) return U_REJ;
    }
    return (uint32_t)(st & 63);
}

#ifdef WS_UTF8_HAVE_AVX2_PATH
/* Vector check.  For each byte `cur` and the byte before it `prev1`, three
 * table lookups — by the high nibble of prev1, the low nibble of prev1 and
 * the high nibble of cur — each give a set of error kinds; a kind holds when
 * it is in all three sets, because each kind below is a product of one
 * condition per nibble:
 *   TOO_SHORT   lead (C..F)        any    cur not a continuation (0..7, C..F)
 *   TOO_LONG    ASCII (0..7)       any    continuation (8..B)
 *   OVERLONG_3  E                  0      8..9     E0 80..9F
 *   SURROGATE   E                  D      A..B     ED A0..BF
 *   OVERLONG_2  C                  0..1   8..B     C0, C1 + continuation
 *   OL4_BIG     F                  0,5..F 8        F0 80..8F; F5..FF 80..8F
 *   TOO_LARGE   F                  4..F   9..B     F4 90..BF; F5..FF 90..BF
 *   TWO_CONTS   continuation (8..B) any   8..B     not an error by itself
 * TWO_CONTS (bit 7) must hold exactly where the byte is the third or fourth
 * of a sequence (the byte two back is >= E0 or three back is >= F0), so
 * XOR-ing it with that condition leaves an error bit either way it fails.
 * Every check looks only backwards, so an error flagged inside s[0..n) is
 * an error of every input that starts with s[0..n); what it cannot see is
 * a sequence left open at the end, which the caller hands to the DFA. */
#define E_TOO_SHORT  0x01
#define E_TOO_LONG   0x02
#define E_OVERLONG_3 0x04
#define E_SURROGATE  0x08
#define E_OVERLONG_2 0x10
#define E_OL4_BIG    0x20
#define E_TOO_LARGE  0x40
#define E_TWO_CONTS  0x80
#define DUP16(...) __VA_ARGS__, __VA_ARGS__

#define WS_AVX2 __attribute__((target("avx2")))

/* Error bits of the 32 bytes `cur`, given the 32 bytes before them. */
static inline WS_AVX2 __attribute__((always_inline))
__m256i ws_utf8_avx2_errors(__m256i prev, __m256i cur)
{
    const __m256i t_prev_hi = _mm256_setr_epi8(DUP16(
        E_TOO_LONG, E_TOO_LONG, E_TOO_LONG, E_TOO_LONG,
        E_TOO_LONG, E_TOO_LONG, E_TOO_LONG, E_TOO_LONG,
        E_TWO_CONTS, E_TWO_CONTS, E_TWO_CONTS, E_TWO_CONTS,
        E_TOO_SHORT | E_OVERLONG_2,
        E_TOO_SHORT,
        E_TOO_SHORT | E_OVERLONG_3 | E_SURROGATE,
        E_TOO_SHORT | E_TOO_LARGE | E_OL4_BIG));
#define ANY_ (E_TOO_SHORT | E_TOO_LONG | E_TWO_CONTS)
    const __m256i t_prev_lo = _mm256_setr_epi8(DUP16(
        (char)(ANY_ | E_OVERLONG_3 | E_OVERLONG_2 | E_OL4_BIG),        /* 0 */
        (char)(ANY_ | E_OVERLONG_2),                                   /* 1 */
        (char)ANY_, (char)ANY_,                                        /* 2, 3 */
        (char)(ANY_ | E_TOO_LARGE),                                    /* 4 */
        (char)(ANY_ | E_TOO_LARGE | E_OL4_BIG), (char)(ANY_ | E_TOO_LARGE | E_OL4_BIG),
        (char)(ANY_ | E_TOO_LARGE | E_OL4_BIG), (char)(ANY_ | E_TOO_LARGE | E_OL4_BIG),
        (char)(ANY_ | E_TOO_LARGE | E_OL4_BIG), (char)(ANY_ | E_TOO_LARGE | E_OL4_BIG),
        (char)(ANY_ | E_TOO_LARGE | E_OL4_BIG), (char)(ANY_ | E_TOO_LARGE | E_OL4_BIG),
        (char)(ANY_ | E_TOO_LARGE | E_OL4_BIG | E_SURROGATE),          /* D */
        (char)(ANY_ | E_TOO_LARGE | E_OL4_BIG), (char)(ANY_ | E_TOO_LARGE | E_OL4_BIG)));
#undef ANY_
#define CONT_ (E_TOO_LONG | E_TWO_CONTS | E_OVERLONG_2)
    const __m256i t_cur_hi = _mm256_setr_epi8(DUP16(
        E_TOO_SHORT, E_TOO_SHORT, E_TOO_SHORT, E_TOO_SHORT,
        E_TOO_SHORT, E_TOO_SHORT, E_TOO_SHORT, E_TOO_SHORT,
        (char)(CONT_ | E_OVERLONG_3 | E_OL4_BIG),                      /* 8 */
        (char)(CONT_ | E_OVERLONG_3 | E_TOO_LARGE),                    /* 9 */
        (char)(CONT_ | E_SURROGATE | E_TOO_LARGE),                     /* A */
        (char)(CONT_ | E_SURROGATE | E_TOO_LARGE),                     /* B */
        E_TOO_SHORT, E_TOO_SHORT, E_TOO_SHORT, E_TOO_SHORT));
#undef CONT_
    const __m256i nib = _mm256_set1_epi8(0x0F);
    __m256i carry = _mm256_permute2x128_si256(prev, cur, 0x21);
    __m256i p1 = _mm256_alignr_epi8(cur, carry, 15);
    __m256i p2 = _mm256_alignr_epi8(cur, carry, 14);
    __m256i p3 = _mm256_alignr_epi8(cur, carry, 13);
    __m256i k = _mm256_and_si256(
        _mm256_and_si256(
            _mm256_shuffle_epi8(t_prev_hi, _mm256_and_si256(_mm256_srli_epi16(p1, 4), nib)),
            _mm256_shuffle_epi8(t_prev_lo, _mm256_and_si256(p1, nib))),
        _mm256_shuffle_epi8(t_cur_hi, _mm256_and_si256(_mm256_srli_epi16(cur, 4), nib)));
    __m256i must = _mm256_or_si256(_mm256_subs_epu8(p2, _mm256_set1_epi8((char)(0xE0 - 1))),
                                   _mm256_subs_epu8(p3, _mm256_set1_epi8((char)(0xF0 - 1))));
    must = _mm256_and_si256(_mm256_cmpgt_epi8(must, _mm256_setzero_si256()),
                            _mm256_set1_epi8((char)0x80));
    return _mm256_xor_si256(must, k);
}
#undef DUP16

/* 1 when s[0..n) (n a multiple of 32, starting at a code-point boundary)
 * has no error the backward checks can see. */
static WS_AVX2 int ws_utf8_avx2_valid(const uint8_t *s, size_t n)
{
    __m256i prev = _mm256_setzero_si256(), err = prev;
    for (size_t i = 0; i < n; i += 32) {
        __m256i cur = _mm256_loadu_si256((const __m256i *)(const void *)(s + i));
        err = _mm256_or_si256(err, ws_utf8_avx2_errors(prev, cur));
        prev = cur;
        if ((i & 511) == 480 && !_mm256_testz_si256(err, err)) return 0;
    }
    return _mm256_testz_si256(err, err);
}

/* The same, unmasking each block in the register it is checked from: one
 * pass over memory, and no load that has to wait for the stores of a
 * separate unmasking pass.  `m32` is the key rotated to s[0]. */
static WS_AVX2 int ws_utf8_avx2_unmask_valid(uint8_t *s, size_t n, uint32_t m32)
{
    const __m256i key = _mm256_set1_epi32((int)m32);
    __m256i prev = _mm256_setzero_si256(), err = prev;
    for (size_t i = 0; i < n; i += 32) {
        __m256i *p = (__m256i *)(void *)(s + i);
        __m256i cur = _mm256_xor_si256(_mm256_loadu_si256(p), key);
        _mm256_storeu_si256(p, cur);
        err = _mm256_or_si256(err, ws_utf8_avx2_errors(prev, cur));
        prev = cur;
        if ((i & 511) == 480 && !_mm256_testz_si256(err, err)) return 0;
    }
    return _mm256_testz_si256(err, err);
}

/* Tests set this to check the scalar path on an AVX2 machine. */
static int ws_utf8_no_avx2;

static int ws_utf8_use_avx2(void)
{
#if defined(__AVX2__)
    return !ws_utf8_no_avx2;
#else
    return !ws_utf8_no_avx2 && __builtin_cpu_supports("avx2");
#endif
}

/* Where the DFA resumes after a vector check of s[0..n): the last byte of
 * the final three that is not a continuation (every sequence before it was
 * checked to its end), or n when all three are continuations (then they
 * close a 4-byte sequence, or the check flagged them). */
static size_t ws_utf8_resume(const uint8_t *s, size_t n)
{
    for (size_t k = 1; k <= 3; k++)
        if ((s[n - k] & 0xC0) != 0x80) return n - k;
    return n;
}
#endif

uint32_t ws_utf8_validate(uint32_t state, const uint8_t *s, size_t len)
{
    uint64_t st = state;
    if (st == U_REJ || len == 0) return (uint32_t)st;   /* also: s may be NULL when len is 0 */
    const uint8_t *end = s + len;
    /* Finish a sequence a previous call left open. */
    while (st != U_ACC && s < end) {
        st = ws_utf8_row[ws_utf8_class[*s++]] >> (st & 63);
        st &= 63;
        if (st == U_REJ) return U_REJ;
    }
#ifdef WS_UTF8_HAVE_AVX2_PATH
    if (end - s >= 64 && ws_utf8_use_avx2()) {
        size_t n = (size_t)(end - s) & ~(size_t)31;
        if (!ws_utf8_avx2_valid(s, n)) return U_REJ;
        s += ws_utf8_resume(s, n);
    }
#endif
    return ws_utf8_dfa(st, s, end);
}

uint32_t ws_utf8_unmask_validate(uint32_t state, uint8_t *s, size_t len,
                                 const uint8_t mask[4], uint64_t offset)
{
#ifdef WS_UTF8_HAVE_AVX2_PATH
    uint64_t st = state;
    if (st != U_REJ && len >= 32 && ws_utf8_use_avx2()) {
        size_t i = 0;
        /* Finish a sequence a previous call left open, a byte at a time. */
        for (; st != U_ACC && i < len; i++) {
            s[i] ^= mask[(offset + i) & 3];
            st = ws_utf8_row[ws_utf8_class[s[i]]] >> (st & 63);
            st &= 63;
            if (st == U_REJ) return U_REJ;
        }
        size_t n = (len - i) & ~(size_t)31;
        if (n) {
            if (!ws_utf8_avx2_unmask_valid(s + i, n, ws_mask_key32(mask, offset + i)))
                return U_REJ;
            if (len - i - n) ws_mask(s + i + n, len - i - n, mask, offset + i + n);
            return ws_utf8_dfa(U_ACC, s + i + ws_utf8_resume(s + i, n), s + len);
        }
        ws_mask(s + i, len - i, mask, offset + i);
        return ws_utf8_dfa(st, s + i, s + len);
    }
#endif
    ws_mask(s, len, mask, offset);
    return ws_utf8_validate(state, s, len);
}

int ws_utf8_is_valid(const uint8_t *s, size_t len)
{
    return ws_utf8_validate(WS_UTF8_ACCEPT, s, len) == WS_UTF8_ACCEPT;
}

size_t ws_utf8_cut(const uint8_t *s, size_t len, size_t max)
{
    if (len <= max) return len;
    while (max > 0 && (s[max] & 0xC0) == 0x80) max--;
    return max;
}
