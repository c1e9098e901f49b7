/* test_utf8.c — the incremental UTF-8 validator (proto/ws_utf8.c).
 *
 * The .c is included to reach its statics: every test runs twice, with the
 * AVX2 path (when the CPU has it) and with the scalar DFA alone. */
#include "test.h"
#include "ws_frame.h"
#include "ws_utf8.c"

typedef struct vec {
    const char *s;
    size_t      len;   /* 0: strlen(s) */
    int         valid;
    int         bad_at; /* invalid: index of the first byte that cannot start/continue valid UTF-8 */
} vec_t;

#define V(str, ok, at) { str, sizeof(str) - 1, ok, at }

/* Markus Kuhn's stress test, in spirit: boundaries, malformed sequences,
 * overlongs, surrogates. */
static const vec_t vecs[] = {
    V("", 1, 0),
    V("Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!", 1, 0),
    V("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 1, 0),           /* κόσμε */
    /* first / last code point of each length */
    V("\x00", 1, 0),
    V("\xc2\x80", 1, 0),
    V("\xe0\xa0\x80", 1, 0),
    V("\xf0\x90\x80\x80", 1, 0),
    V("\x7f", 1, 0),
    V("\xdf\xbf", 1, 0),
    V("\xef\xbf\xbf", 1, 0),                                           /* U+FFFF */
    V("\xf4\x8f\xbf\xbf", 1, 0),                                       /* U+10FFFF */
    /* other boundaries */
    V("\xed\x9f\xbf", 1, 0),                                           /* U+D7FF */
    V("\xee\x80\x80", 1, 0),                                           /* U+E000 */
    V("\xef\xbf\xbd", 1, 0),                                           /* U+FFFD */
    V("\xf3\xbf\xbf\xbf", 1, 0),
    V("\xef\xbf\xbe", 1, 0),                                           /* U+FFFE: noncharacter, still valid */
    /* beyond U+10FFFF */
    V("\xf4\x90\x80\x80", 0, 1),                                       /* U+110000 */
    V("\xf7\xbf\xbf\xbf", 0, 0),
    V("\xf8\x88\x80\x80\x80", 0, 0),                                   /* 5-byte form */
    V("\xfc\x84\x80\x80\x80\x80", 0, 0),                               /* 6-byte form */
    V("\xf5", 0, 0), V("\xf6", 0, 0), V("\xfe", 0, 0), V("\xff", 0, 0),
    V("ab\xfe\xfe\xff\xff", 0, 2),
    /* lone / unexpected continuation bytes */
    V("\x80", 0, 0), V("\xbf", 0, 0), V("a\x80\xbf", 0, 1),
    V("\xc2\x80\x80", 0, 2),
    /* lead bytes followed by a space */
    V("\xc0 ", 0, 0), V("\xc2 ", 0, 1), V("\xe1 ", 0, 1), V("\xf1 ", 0, 1),
    V("\xe1\x80 ", 0, 2), V("\xf1\x80\x80 ", 0, 3),
    /* overlong forms */
    V("\xc0\xaf", 0, 0), V("\xc1\xbf", 0, 0),
    V("\xe0\x80\xaf", 0, 1), V("\xe0\x9f\xbf", 0, 1),
    V("\xf0\x80\x80\xaf", 0, 1), V("\xf0\x8f\xbf\xbf", 0, 1),
    V("\xc0\x80", 0, 0), V("\xe0\x80\x80", 0, 1), V("\xf0\x80\x80\x80", 0, 1),
    /* surrogates, single and paired */
    V("\xed\xa0\x80", 0, 1), V("\xed\xad\xbf", 0, 1), V("\xed\xae\x80", 0, 1),
    V("\xed\xaf\xbf", 0, 1), V("\xed\xb0\x80", 0, 1), V("\xed\xbe\x80", 0, 1),
    V("\xed\xbf\xbf", 0, 1), V("\xed\xa0\x80\xed\xb0\x80", 0, 1),
    V("\xed\xaf\xbf\xed\xbf\xbf", 0, 1),
    /* Autobahn 6.3.1-style: invalid in the middle of valid text */
    V("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64", 0, 12),
    /* a long ASCII run, then a bad byte beyond the 16-byte fast path */
    V("0123456789abcdef0123456789abcdef0123456789\xff", 0, 42),
    V("0123456789abcdef0123456789abcdef\xc3\xa9xyz0123456789abcdef0123", 1, 0),
};

/* Truncated sequences: valid prefixes that are not complete (state is
 * neither ACCEPT nor REJECT). */
static const char *const truncated[] = {
    "\xc2", "\xe0", "\xe0\xa0", "\xe1\x80", "\xed\x9f", "\xf0", "\xf0\x90",
    "\xf0\x90\x80", "\xf4\x8f\xbf", "\xf3", "abc\xe2\x82",
};

static void t_vectors(void)
{
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) {
        const vec_t *v = &vecs[i];
        const uint8_t *s = (const uint8_t *)v->s;
        uint32_t st = ws_utf8_validate(WS_UTF8_ACCEPT, s, v->len);
        CHECK_MSG(ws_utf8_is_valid(s, v->len) == v->valid, "vector %zu", i);
        if (v->valid) {
            CHECK_MSG(st == WS_UTF8_ACCEPT, "vector %zu state %u", i, st);
        } else {
            CHECK_MSG(st == WS_UTF8_REJECT, "vector %zu state %u", i, st);
        }
    }
}

static void t_truncated(void)
{
    for (size_t i = 0; i < sizeof truncated / sizeof truncated[0]; i++) {
        const uint8_t *s = (const uint8_t *)truncated[i];
        uint32_t st = ws_utf8_validate(WS_UTF8_ACCEPT, s, strlen(truncated[i]));
        CHECK_MSG(st != WS_UTF8_ACCEPT && st != WS_UTF8_REJECT, "truncated %zu state %u", i, st);
        CHECK(!ws_utf8_is_valid(s, strlen(truncated[i])));
    }
}

/* Fail fast: every prefix shorter than bad_at+1 is not REJECT; the prefix
 * that ends at the bad byte is. */
static void t_fail_fast(void)
{
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) {
        const vec_t *v = &vecs[i];
        if (v->valid) continue;
        const uint8_t *s = (const uint8_t *)v->s;
        for (size_t n = 0; n <= v->len; n++) {
            uint32_t st = ws_utf8_validate(WS_UTF8_ACCEPT, s, n);
            if (n <= (size_t)v->bad_at)
                CHECK_MSG(st != WS_UTF8_REJECT, "vector %zu prefix %zu rejected early", i, n);
            else
                CHECK_MSG(st == WS_UTF8_REJECT, "vector %zu prefix %zu not rejected", i, n);
        }
    }
}

/* Every valid vector, split at every position (and at every pair of
 * positions), validates incrementally to ACCEPT; invalid ones to REJECT. */
static void t_splits(void)
{
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) {
        const vec_t *v = &vecs[i];
        const uint8_t *s = (const uint8_t *)v->s;
        for (size_t a = 0; a <= v->len; a++) {
            for (size_t b = a; b <= v->len; b++) {
                uint32_t st = ws_utf8_validate(WS_UTF8_ACCEPT, s, a);
                st = ws_utf8_validate(st, s + a, b - a);
                st = ws_utf8_validate(st, s + b, v->len - b);
                CHECK_MSG(st == (v->valid ? WS_UTF8_ACCEPT : WS_UTF8_REJECT),
                          "vector %zu split %zu/%zu state %u", i, a, b, st);
            }
        }
        /* byte by byte */
        uint32_t st = WS_UTF8_ACCEPT;
        for (size_t k = 0; k < v->len; k++) st = ws_utf8_validate(st, s + k, 1);
        CHECK(st == (v->valid ? WS_UTF8_ACCEPT : WS_UTF8_REJECT));
    }
}

static void t_reject_sticky(void)
{
    CHECK_INT(ws_utf8_validate(WS_UTF8_REJECT, (const uint8_t *)"abc", 3), WS_UTF8_REJECT);
    CHECK_INT(ws_utf8_validate(WS_UTF8_REJECT, (const uint8_t *)"", 0), WS_UTF8_REJECT);
    uint32_t st = ws_utf8_validate(WS_UTF8_ACCEPT, (const uint8_t *)"\xff", 1);
    CHECK_INT(st, WS_UTF8_REJECT);
    st = ws_utf8_validate(st, (const uint8_t *)"hello, world, all ASCII here", 28);
    CHECK_INT(st, WS_UTF8_REJECT);
    st = ws_utf8_validate(st, (const uint8_t *)"\xc3\xa9", 2);
    CHECK_INT(st, WS_UTF8_REJECT);
}

/* All 1..4-byte encodings: encode every scalar value and check it is valid;
 * surrogates and overlong encodings of every value are invalid. */
static size_t enc(uint32_t cp, uint8_t *o)
{
    if (cp < 0x80) { o[0] = (uint8_t)cp; return 1; }
    if (cp < 0x800) { o[0] = (uint8_t)(0xC0 | cp >> 6); o[1] = (uint8_t)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | cp >> 12); o[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F)); return 3;
    }
    o[0] = (uint8_t)(0xF0 | cp >> 18); o[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F)); o[3] = (uint8_t)(0x80 | (cp & 0x3F)); return 4;
}

static size_t enc_len(uint32_t cp, size_t n, uint8_t *o)   /* forced length (overlong) */
{
    switch (n) {
    case 2: o[0] = (uint8_t)(0xC0 | cp >> 6); o[1] = (uint8_t)(0x80 | (cp & 0x3F)); return 2;
    case 3: o[0] = (uint8_t)(0xE0 | cp >> 12); o[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
            o[2] = (uint8_t)(0x80 | (cp & 0x3F)); return 3;
    default: o[0] = (uint8_t)(0xF0 | cp >> 18); o[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
            o[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F)); o[3] = (uint8_t)(0x80 | (cp & 0x3F)); return 4;
    }
}

static void t_all_code_points(void)
{
    uint8_t b[4];
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        size_t n = enc(cp, b);
        int want = !(cp >= 0xD800 && cp <= 0xDFFF);
        CHECK_MSG(ws_utf8_is_valid(b, n) == want, "U+%04X", (unsigned)cp);
        /* every shorter-than-minimal form is overlong */
        if (n == 1) continue;
        for (size_t m = n + 1; m <= 4; m++) {
            size_t k = enc_len(cp, m, b);
            CHECK_MSG(!ws_utf8_is_valid(b, k), "overlong U+%04X in %zu", (unsigned)cp, m);
        }
    }
    for (uint32_t cp = 0x110000; cp < 0x200000; cp += 0x1234) {
        size_t n = enc_len(cp, 4, b);
        CHECK_MSG(!ws_utf8_is_valid(b, n), "U+%X", (unsigned)cp);
    }
}

/* Reference: a straightforward byte-at-a-time decoder written from RFC
 * 3629 §4, independent of the DFA.  Returns the state class: 0 accept,
 * 1 reject, 2 incomplete. */
static int ref_validate(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t need;
        uint32_t cp, min;
        if (c < 0x80) { i++; continue; }
        else if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0F; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07; min = 0x10000; }
        else return 1;
        size_t j;
        for (j = 1; j <= need; j++) {
            if (i + j >= n) {
                /* incomplete: but is the prefix already impossible? */
                uint32_t lo = cp, hi = cp;
                for (size_t k = j; k <= need; k++) { lo = lo << 6; hi = hi << 6 | 0x3F; }
                if (hi < min || lo > 0x10FFFF || (lo >= 0xD800 && hi <= 0xDFFF)) return 1;
                return 2;
            }
            uint8_t d = s[i + j];
            if ((d & 0xC0) != 0x80) return 1;
            cp = cp << 6 | (d & 0x3F);
            /* check the partial value as soon as it pins the range */
            uint32_t lo = cp, hi = cp;
            for (size_t k = j + 1; k <= need; k++) { lo = lo << 6; hi = hi << 6 | 0x3F; }
            if (hi < min || lo > 0x10FFFF || (lo >= 0xD800 && hi <= 0xDFFF)) return 1;
        }
        i += need + 1;
    }
    return 0;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)   /* xorshift64*: deterministic */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

/* Random text built from a mix of ASCII runs, valid code points and the
 * occasional random byte; fed whole and in random pieces, compared with
 * the reference and with byte-at-a-time feeding of the DFA. */
static void t_random_vs_reference(void)
{
    static uint8_t buf[4096];
    for (int iter = 0; iter < 4000; iter++) {
        size_t n = 0, target = (size_t)(rng() % sizeof buf);
        int noise = (int)(rng() % 4);   /* 0: none; else rate of random bytes */
        while (n + 4 < target) {
            uint64_t r = rng();
            switch (r % 5) {
            case 0: case 1: {               /* ASCII run */
                size_t k = (size_t)(r >> 8) % 40;
                while (k-- && n < target) buf[n++] = (uint8_t)(0x20 + (rng() % 95));
                break;
            }
            case 2: n += enc((uint32_t)(0x80 + (r >> 8) % 0x780), buf + n); break;
            case 3: {
                uint32_t cp = (uint32_t)(0x800 + (r >> 8) % 0xF800);
                if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xE000;
                n += enc(cp, buf + n);
                break;
            }
            default: n += enc((uint32_t)(0x10000 + (r >> 8) % 0x100000), buf + n); break;
            }
            if (noise && rng() % (200 * (uint64_t)noise) == 0 && n > 0)
                buf[rng() % n] = (uint8_t)rng();
        }
        int ref = ref_validate(buf, n);
        uint32_t st = ws_utf8_validate(WS_UTF8_ACCEPT, buf, n);
        int got = st == WS_UTF8_ACCEPT ? 0 : st == WS_UTF8_REJECT ? 1 : 2;
        CHECK_MSG(got == ref, "iter %d: ref %d got %d (n=%zu)", iter, ref, got, n);

        uint32_t b1 = WS_UTF8_ACCEPT;
        for (size_t k = 0; k < n; k++) b1 = ws_utf8_validate(b1, buf + k, 1);
        CHECK_MSG(b1 == st, "iter %d: byte-wise %u whole %u", iter, b1, st);

        uint32_t sp = WS_UTF8_ACCEPT;
        for (size_t off = 0; off < n;) {
            size_t k = 1 + (size_t)(rng() % 70);
            if (k > n - off) k = n - off;
            sp = ws_utf8_validate(sp, buf + off, k);
            off += k;
        }
        CHECK_MSG(sp == st, "iter %d: split %u whole %u", iter, sp, st);

        /* The exact first bad byte agrees with the reference on prefixes. */
        if (ref == 1) {
            size_t lo = 0, hi = n;      /* smallest prefix the reference rejects */
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (ref_validate(buf, mid) == 1) hi = mid; else lo = mid + 1;
            }
            CHECK(ws_utf8_validate(WS_UTF8_ACCEPT, buf, lo) == WS_UTF8_REJECT);
            CHECK(ws_utf8_validate(WS_UTF8_ACCEPT, buf, lo - 1) != WS_UTF8_REJECT);
        }
    }
}

/* Every byte value after every state reached by a 0..3 byte prefix, against
 * the reference: exhausts the DFA's transitions. */
static void t_exhaustive_short(void)
{
    uint8_t b[3];
    for (unsigned x = 0; x < 256; x++) {
        b[0] = (uint8_t)x;
        CHECK_INT(ws_utf8_validate(WS_UTF8_ACCEPT, b, 1) == WS_UTF8_REJECT, ref_validate(b, 1) == 1);
        for (unsigned y = 0x80; y < 0x100 + 0x80; y++) {   /* y >= 0x100: ASCII 00..7F */
            b[1] = (uint8_t)y;
            int r2 = ref_validate(b, 2);
            uint32_t s2 = ws_utf8_validate(WS_UTF8_ACCEPT, b, 2);
            CHECK_MSG((s2 == WS_UTF8_ACCEPT ? 0 : s2 == WS_UTF8_REJECT ? 1 : 2) == r2,
                      "%02x %02x", x, b[1]);
            if (x < 0xE0 || r2 != 2) continue;
            for (unsigned z = 0; z < 256; z++) {
                b[2] = (uint8_t)z;
                int r3 = ref_validate(b, 3);
                uint32_t s3 = ws_utf8_validate(WS_UTF8_ACCEPT, b, 3);
                CHECK_MSG((s3 == WS_UTF8_ACCEPT ? 0 : s3 == WS_UTF8_REJECT ? 1 : 2) == r3,
                          "%02x %02x %02x", x, b[1], z);
            }
        }
    }
}

/* Every 1-3 byte pattern of t_exhaustive_short, placed in a longer ASCII
 * buffer at offsets around the 32-byte vector blocks and the resume point,
 * so the vector check sees each byte pair and triple. */
static void t_patterns_in_blocks(void)
{
    static const size_t offs2[] = { 0, 1, 15, 16, 30, 31, 32, 33, 47, 60, 61, 62, 63, 64, 93, 94, 95 };
    static const size_t offs3[] = { 0, 15, 29, 30, 31, 62, 93 };
    uint8_t buf[96];
    for (unsigned x = 0; x < 256; x++) {
        for (unsigned y = 0; y < 256; y++) {
            uint8_t pat[2] = { (uint8_t)x, (uint8_t)y };
            for (size_t o = 0; o < sizeof offs2 / sizeof offs2[0]; o++) {
                size_t at = offs2[o];
                memset(buf, 'a', sizeof buf);
                buf[at] = pat[0];
                size_t n = at + 1 < sizeof buf ? sizeof buf : at + 1;
                if (at + 1 < sizeof buf) buf[at + 1] = pat[1];
                int ref = ref_validate(buf, n);
                uint32_t st = ws_utf8_validate(WS_UTF8_ACCEPT, buf, n);
                CHECK_MSG((st == WS_UTF8_ACCEPT ? 0 : st == WS_UTF8_REJECT ? 1 : 2) == ref,
                          "%02x %02x at %zu", x, y, at);
            }
            /* third bytes after every lead >= E0 and continuation, including
             * pairs already invalid (the vector check must flag them too) */
            if (x < 0xE0 || (y & 0xC0) != 0x80) continue;

            for (unsigned z = 0; z < 256; z++) {
                for (size_t o = 0; o < sizeof offs3 / sizeof offs3[0]; o++) {
                    size_t at = offs3[o];
                    memset(buf, 'a', sizeof buf);
                    buf[at] = (uint8_t)x; buf[at + 1] = (uint8_t)y; buf[at + 2] = (uint8_t)z;
                    int ref = ref_validate(buf, sizeof buf);
                    uint32_t st = ws_utf8_validate(WS_UTF8_ACCEPT, buf, sizeof buf);
                    CHECK_MSG((st == WS_UTF8_ACCEPT ? 0 : st == WS_UTF8_REJECT ? 1 : 2) == ref,
                              "%02x %02x %02x at %zu", x, y, z, at);
                    /* and ending right after the pattern (open sequence at the end) */
                    ref = ref_validate(buf, at + 3);
                    st = ws_utf8_validate(WS_UTF8_ACCEPT, buf, at + 3);
                    CHECK_MSG((st == WS_UTF8_ACCEPT ? 0 : st == WS_UTF8_REJECT ? 1 : 2) == ref,
                              "%02x %02x %02x ending at %zu", x, y, z, at + 3);
                }
            }
        }
    }
}

/* 4-byte sequences (valid and not) straddling every position of a 128-byte
 * buffer, with and without a sequence left open at the end. */
static void t_four_byte_positions(void)
{
    static const char *const quads[] = { "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf", "\xf4\x90\x80\x80",
                                         "\xf0\x8f\xbf\xbf", "\xf3\xbf\xbf\xbf", "\xf1\x80\x80\x41",
                                         "\xe2\x82\xac\x80", "\xc3\xa9\x80\x80", "\xf5\x80\x80\x80" };
    uint8_t buf[128];
    for (size_t q = 0; q < sizeof quads / sizeof quads[0]; q++) {
        for (size_t at = 0; at + 4 <= sizeof buf; at++) {
            for (size_t cut = at; cut <= sizeof buf; cut += (cut < at + 5 ? 1 : 40)) {
                memset(buf, 'x', sizeof buf);
                memcpy(buf + at, quads[q], 4);
                int ref = ref_validate(buf, cut);
                uint32_t st = ws_utf8_validate(WS_UTF8_ACCEPT, buf, cut);
                CHECK_MSG((st == WS_UTF8_ACCEPT ? 0 : st == WS_UTF8_REJECT ? 1 : 2) == ref,
                          "quad %zu at %zu cut %zu", q, at, cut);
            }
        }
    }
}


/* The fused unmask + validate (ws_internal.h) equals ws_mask followed by
 * ws_utf8_validate: same state, same bytes (unless REJECT), for random
 * text, every mask offset, a state carried in from a prefix, and lengths
 * around the 32-byte blocks. */
static void t_unmask_validate(void)
{
    static uint8_t plain[3000], a[3000], b[3000];
    const uint8_t mask[4] = { 0x9d, 0x00, 0x5a, 0xf3 };
    for (int iter = 0; iter < 1500; iter++) {
        size_t n = 0, target = (size_t)(rng() % sizeof plain);
        int noise = (int)(rng() % 3);
        while (n + 4 < target) {
            uint64_t r = rng();
            if (r % 3 == 0) plain[n++] = (uint8_t)(0x20 + (r >> 8) % 95);
            else {
                uint32_t cp = (uint32_t)(0x80 + (r >> 8) % (0x110000 - 0x80));
                if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
                n += enc(cp, plain + n);
            }
            if (noise && rng() % (300 * (uint64_t)noise) == 0 && n) plain[rng() % n] = (uint8_t)rng();
        }
        /* the state coming in: validate a short prefix (0..5 bytes) first */
        size_t pre = n ? (size_t)(rng() % (n < 6 ? n + 1 : 6)) : 0;
        uint32_t st0 = ws_utf8_validate(WS_UTF8_ACCEPT, plain, pre);
        uint64_t off = pre + (rng() % 2 ? (1ull << 33) : 0);
        size_t len = n - pre;
        memcpy(a, plain + pre, len);
        ws_mask(a, len, mask, off);                 /* what the wire carries */
        memcpy(b, a, len);
        uint32_t sa = ws_utf8_unmask_validate(st0, a, len, mask, off);
        ws_mask(b, len, mask, off);
        uint32_t sb = ws_utf8_validate(st0, b, len);
        CHECK_MSG(sa == sb, "iter %d: fused %u, two passes %u (pre %zu len %zu)", iter, sa, sb, pre, len);
        if (sa != WS_UTF8_REJECT) CHECK_MSG(memcmp(a, b, len) == 0, "iter %d: bytes differ", iter);
    }
    /* every short length, offset and alignment on valid text */
    static const char txt[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5 \xf0\x9f\x98\x80 hello "
                              "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e 0123456789 \xc3\xa9\xc3\xa8 end.";
    size_t L = sizeof txt - 1;
    for (size_t cut = 0; cut <= L; cut++) {
        uint32_t st0 = ws_utf8_validate(WS_UTF8_ACCEPT, (const uint8_t *)txt, cut);
        for (uint64_t off = 0; off < 4; off++) {
            for (size_t al = 0; al < 3; al++) {
                memcpy(a + al, txt + cut, L - cut);
                ws_mask(a + al, L - cut, mask, off);
                uint32_t st = ws_utf8_unmask_validate(st0, a + al, L - cut, mask, off);
                CHECK_MSG(st == WS_UTF8_ACCEPT, "cut %zu off %u al %zu: %u", cut, (unsigned)off, al, st);
                CHECK(memcmp(a + al, txt + cut, L - cut) == 0);
            }
        }
    }
}

/* ws_utf8_cut never leaves half a code point: every cut of valid text at
 * every limit is valid, and at most one code point shorter than the limit. */
static void t_cut(void)
{
    const char *txt = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z";   /* a é € 😀 z: 1+2+3+4+1 */
    size_t len = strlen(txt);
    for (size_t max = 0; max <= len + 1; max++) {
        size_t n = ws_utf8_cut((const uint8_t *)txt, len, max);
        CHECK_MSG(n <= max && n + 4 > (max < len ? max : len), "max %zu: %zu", max, n);
        CHECK_MSG(ws_utf8_is_valid((const uint8_t *)txt, n), "max %zu: cut at %zu splits a code point", max, n);
    }
    CHECK_INT(ws_utf8_cut((const uint8_t *)txt, len, 4), 3);   /* before € */
    CHECK_INT(ws_utf8_cut((const uint8_t *)txt, len, 9), 6);   /* before 😀 */
    CHECK_INT(ws_utf8_cut((const uint8_t *)txt, len, 10), 10); /* 😀 whole */
    CHECK_INT(ws_utf8_cut((const uint8_t *)txt, len, len), len);
}

static void run_suite(void)
{
    RUN(t_cut);
    RUN(t_vectors);
    RUN(t_truncated);
    RUN(t_fail_fast);
    RUN(t_splits);
    RUN(t_reject_sticky);
    RUN(t_all_code_points);
    RUN(t_random_vs_reference);
    RUN(t_exhaustive_short);
    RUN(t_patterns_in_blocks);
    RUN(t_four_byte_positions);
    RUN(t_unmask_validate);
}

int main(void)
{
    run_suite();                 /* AVX2 path where the CPU has it */
    ws_utf8_no_avx2 = 1;
    run_suite();                 /* the scalar DFA alone */
    return test_report("utf8");
}
