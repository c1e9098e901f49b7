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
 */
#include "ws_utf8.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
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

uint32_t ws_utf8_validate(uint32_t state, const uint8_t *s, size_t len)
{
    uint64_t st = state;
    if (st == U_REJ) return U_REJ;
    const uint8_t *end = s + len;
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

int ws_utf8_is_valid(const uint8_t *s, size_t len)
{
    return ws_utf8_validate(WS_UTF8_ACCEPT, s, len) == WS_UTF8_ACCEPT;
}
