/* test_deflate.c — permessage-deflate: RFC 7692 §7.2.3 examples, round
 * trips at every window, deflate bombs, corrupt input, negotiation.
 * Includes the .c to read the per-stream zlib byte counters. */
#include "../../proto/ws_deflate.c"

#include <time.h>

#include "test.h"
#include "ws_status.h"

#define LIMIT_NONE ((size_t)-1)

static const uint8_t hello_fixed[] = { 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00 };

/* Inflates `in` with a fresh inflater of `bits` and compares to `want`. */
static int inflate_eq(int bits, const uint8_t *in, size_t len, const char *want)
{
    ws_inflater_t *inf = ws_inflater_new(bits);
    ws_buf_t out = {0};
    int rc = ws_inflate(inf, in, len, 1, &out, LIMIT_NONE);
    int ok = rc == WS_OK && out.len == strlen(want) &&
             (out.len == 0 || memcmp(out.data, want, out.len) == 0);
    ws_buf_free(&out);
    ws_inflater_free(inf);
    return ok;
}

static uint32_t rng_state = 12345;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void fill(uint8_t *p, size_t n, int kind)
{
    static const char *words[] = { "alpha ", "beta ", "gamma ", "{\"topic\":", "\"x\"}", "delta " };
    for (size_t i = 0; i < n;) {
        if (kind == 0) { p[i++] = (uint8_t)rng(); continue; }
        const char *w = words[rng() % 6];
        for (size_t k = 0; w[k] && i < n; k++) p[i++] = (uint8_t)w[k];
    }
}

/* ---- RFC 7692 §7.2.3 ------------------------------------------------------ */

static void test_rfc_hello(void)                      /* §7.2.3.1 */
{
    CHECK(inflate_eq(15, hello_fixed, sizeof hello_fixed, "Hello"));
    CHECK(inflate_eq(8, hello_fixed, sizeof hello_fixed, "Hello"));
    ws_deflater_t *def = ws_deflater_new(15, -1, 8);
    ws_buf_t out = {0};
    CHECK_INT(ws_deflate(def, (const uint8_t *)"Hello", 5, 1, &out), WS_OK);
    ws_deflater_free(def);
    int same = out.len == sizeof hello_fixed && memcmp(out.data, hello_fixed, out.len) == 0;
    ws_buf_free(&out);
    CHECK(same);
}

static void test_rfc_shared_context(void)             /* §7.2.3.2 */
{
    static const uint8_t second[] = { 0xf2, 0x00, 0x11, 0x00, 0x00 };
    ws_deflater_t *def = ws_deflater_new(15, -1, 8);
    ws_buf_t a = {0}, b = {0}, c = {0};
    CHECK_INT(ws_deflate(def, (const uint8_t *)"Hello", 5, 0, &a), WS_OK);
    CHECK_INT(ws_deflate(def, (const uint8_t *)"Hello", 5, 1, &b), WS_OK);
    CHECK_INT(ws_deflate(def, (const uint8_t *)"Hello", 5, 1, &c), WS_OK);
    ws_deflater_free(def);
    CHECK_INT(a.len, sizeof hello_fixed);
    CHECK_MEM(a.data, hello_fixed, sizeof hello_fixed);
    CHECK_INT(b.len, sizeof second);
    CHECK_MEM(b.data, second, sizeof second);
    CHECK_INT(c.len, sizeof hello_fixed);             /* after reset: as the first */
    CHECK_MEM(c.data, hello_fixed, sizeof hello_fixed);

    ws_inflater_t *inf = ws_inflater_new(15);
    ws_buf_t o = {0};
    CHECK_INT(ws_inflate(inf, hello_fixed, sizeof hello_fixed, 0, &o, 100), WS_OK);
    CHECK_INT(ws_inflate(inf, second, sizeof second, 0, &o, 100), WS_OK);
    CHECK_INT(o.len, 10);
    CHECK_MEM(o.data, "HelloHello", 10);
    /* With reset, the second message refers to a window that is gone. */
    o.len = 0;
    CHECK_INT(ws_inflate(inf, hello_fixed, sizeof hello_fixed, 1, &o, 100), WS_OK);
    CHECK_INT(ws_inflate(inf, second, sizeof second, 1, &o, 100), WS_E_INFLATE);
    o.len = 0;
    CHECK_INT(ws_inflate(inf, hello_fixed, sizeof hello_fixed, 1, &o, 100), WS_OK);
    CHECK_INT(o.len, 5);
    ws_buf_free(&a); ws_buf_free(&b); ws_buf_free(&c); ws_buf_free(&o);
    ws_inflater_free(inf);
}

static void test_rfc_stored(void)                     /* §7.2.3.3 */
{
    static const uint8_t m[] = { 0x00, 0x05, 0x00, 0xfa, 0xff, 'H', 'e', 'l', 'l', 'o', 0x00 };
    CHECK(inflate_eq(15, m, sizeof m, "Hello"));
    CHECK(inflate_eq(9, m, sizeof m, "Hello"));
}

static void test_rfc_bfinal(void)                     /* §7.2.3.4 */
{
    static const uint8_t m[] = { 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00 };
    CHECK(inflate_eq(15, m, sizeof m, "Hello"));
    /* Without the trailing 0x00 too: the BFINAL block ends the message. */
    CHECK(inflate_eq(15, m, sizeof m - 1, "Hello"));
    /* With context takeover: the next message still sees "Hello". */
    static const uint8_t second[] = { 0xf2, 0x00, 0x11, 0x00, 0x00 };
    ws_inflater_t *inf = ws_inflater_new(15);
    ws_buf_t o = {0};
    for (int round = 0; round < 2; round++) {
        size_t mlen = round ? sizeof m - 1 : sizeof m;
        o.len = 0;
        CHECK_INT(ws_inflate(inf, m, mlen, 0, &o, 100), WS_OK);
        CHECK_INT(ws_inflate(inf, second, sizeof second, 0, &o, 100), WS_OK);
        CHECK_INT(ws_inflate(inf, hello_fixed, sizeof hello_fixed, 0, &o, 100), WS_OK);
        CHECK_INT(o.len, 15);
        CHECK_MEM(o.data, "HelloHelloHello", 15);
    }
    /* Two BFINAL streams in one message, the second referring to the first. */
    static const uint8_t two[] = { 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00,
                                   0xf3, 0x00, 0x11, 0x00, 0x00 };
    o.len = 0;
    CHECK_INT(ws_inflate(inf, two, sizeof two, 1, &o, 100), WS_OK);
    CHECK_INT(o.len, 10);
    CHECK_MEM(o.data, "HelloHello", 10);
    ws_buf_free(&o);
    ws_inflater_free(inf);
}

/* Many empty BFINAL blocks ("03 00") after a full window: each restarts
 * the stream; that must stay cheap (no window copy per block), and the
 * window must survive all of them. */
static void test_many_bfinal(void)
{
    enum { N = 1000000 };
    uint8_t win[32768];
    fill(win, sizeof win, 0);
    ws_deflater_t *def = ws_deflater_new(15, -1, 8);
    ws_buf_t m = {0}, o = {0};
    CHECK_INT(ws_deflate(def, win, sizeof win, 0, &m), WS_OK);
    ws_buf_append(&m, "\x00\x00\xff\xff", 4);   /* mid-message: flush kept */
    for (int i = 0; i < N; i++) ws_buf_append(&m, "\x03\x00", 2);
    /* then the last 258 bytes of the window again, by reference */
    CHECK_INT(ws_deflate(def, win + sizeof win - 258, 258, 1, &m), WS_OK);
    ws_deflater_free(def);
    ws_inflater_t *inf = ws_inflater_new(15);
    clock_t t0 = clock();
    int rc = ws_inflate(inf, m.data, m.len, 1, &o, 40000);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    ws_inflater_free(inf);
    size_t olen = o.len;
    int same = olen == sizeof win + 258 && memcmp(o.data + sizeof win, win + sizeof win - 258, 258) == 0;
    ws_buf_free(&m); ws_buf_free(&o);
    CHECK_INT(rc, WS_OK);
    CHECK(same);
    if (getenv("TEST_VERBOSE")) printf("%d BFINAL blocks: %.3f s\n", N, secs);
    CHECK_MSG(secs < 0.25, "%.2f s", secs);     /* copying the window: 0.5 s */
}

static void test_rfc_two_blocks(void)                 /* §7.2.3.5 */
{
    static const uint8_t m[] = { 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff,
                                 0xca, 0xc9, 0xc9, 0x07, 0x00 };
    CHECK(inflate_eq(15, m, sizeof m, "Hello"));
}

static void test_rfc_empty(void)                      /* §7.2.3.6 */
{
    static const uint8_t zero[] = { 0x00 };
    static const uint8_t fixed_empty[] = { 0x02, 0x00 };
    CHECK(inflate_eq(15, zero, 1, ""));
    CHECK(inflate_eq(15, fixed_empty, 2, ""));
    CHECK(inflate_eq(15, NULL, 0, ""));               /* no data at all: taken as empty */
    /* A first fragment flushed whole (tail kept: not the end of the
     * message), then an empty last fragment 0x00. */
    static const uint8_t frag[] = { 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00,
                                    0x00, 0x00, 0xff, 0xff, 0x00 };
    CHECK(inflate_eq(15, frag, sizeof frag, "Hello"));

    /* Our deflater: the single byte 0x00, fresh or after a message. */
    ws_deflater_t *def = ws_deflater_new(15, -1, 8);
    ws_buf_t out = {0};
    CHECK_INT(ws_deflate(def, NULL, 0, 0, &out), WS_OK);
    CHECK_INT(out.len, 1);
    CHECK_INT(out.data[0], 0x00);
    CHECK_INT(ws_deflate(def, (const uint8_t *)"Hello", 5, 0, &out), WS_OK);
    size_t mark = out.len;
    CHECK_INT(ws_deflate(def, (const uint8_t *)"", 0, 0, &out), WS_OK);
    CHECK_INT(out.len, mark + 1);
    CHECK_INT(out.data[mark], 0x00);
    ws_deflater_free(def);
    ws_buf_free(&out);

    /* zlib's own output for an empty sync flush, tail stripped, is 0x00 too. */
    z_stream z;
    memset(&z, 0, sizeof z);
    CHECK_INT(deflateInit2(&z, -1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    uint8_t buf[16];
    z.next_out = buf;
    z.avail_out = sizeof buf;
    CHECK_INT(deflate(&z, Z_SYNC_FLUSH), Z_OK);
    size_t n = sizeof buf - z.avail_out;
    deflateEnd(&z);
    CHECK_INT(n, 5);
    CHECK_MEM(buf, "\x00\x00\x00\xff\xff", 5);
}

/* ---- round trips ----------------------------------------------------------- */

static void test_roundtrip_windows(void)
{
    static uint8_t msg[5][70000];
    size_t lens[5] = { 1, 100, 3000, 40000, 70000 };
    for (int m = 0; m < 5; m++) fill(msg[m], lens[m], m & 1);
    for (int w = 8; w <= 15; w++) {
        for (int reset = 0; reset <= 1; reset++) {
            ws_deflater_t *def = ws_deflater_new(w, -1, 8);
            ws_inflater_t *same = ws_inflater_new(w);
            ws_inflater_t *big = ws_inflater_new(15);
            CHECK(def && same && big);
            for (int round = 0; round < 3; round++) {
                for (int m = 0; m < 5; m++) {
                    ws_buf_t c = {0}, a = {0}, b = {0};
                    CHECK_INT(ws_deflate(def, msg[m], lens[m], reset, &c), WS_OK);
                    CHECK_INT(ws_inflate(same, c.data, c.len, reset, &a, lens[m]), WS_OK);
                    CHECK_INT(ws_inflate(big, c.data, c.len, reset, &b, lens[m]), WS_OK);
                    CHECK_INT(a.len, lens[m]);
                    CHECK_MEM(a.data, msg[m], lens[m]);
                    CHECK_INT(b.len, lens[m]);
                    CHECK_MEM(b.data, msg[m], lens[m]);
                    ws_buf_free(&c); ws_buf_free(&a); ws_buf_free(&b);
                }
            }
            ws_deflater_free(def);
            ws_inflater_free(same);
            ws_inflater_free(big);
        }
    }
}

/* Window 8 must not refer further back than 256 bytes: Z_HUFFMAN_ONLY
 * emits none at all, so the data grows for repetitive input but any
 * 256-byte-window inflater can read it. */
static void test_window8_no_matches(void)
{
    uint8_t msg[4096];
    for (size_t i = 0; i < sizeof msg; i++) msg[i] = "abcd"[i % 4];
    ws_deflater_t *d8 = ws_deflater_new(8, 9, 8);
    ws_deflater_t *d9 = ws_deflater_new(9, 9, 8);
    ws_buf_t c8 = {0}, c9 = {0};
    CHECK_INT(ws_deflate(d8, msg, sizeof msg, 1, &c8), WS_OK);
    CHECK_INT(ws_deflate(d9, msg, sizeof msg, 1, &c9), WS_OK);
    CHECK(c8.len > 1000);                             /* ~2 bits a symbol, no matches */
    CHECK(c9.len < 100);                              /* matches */
    /* zlib's own raw inflate with a 256-byte window accepts it. */
    z_stream z;
    memset(&z, 0, sizeof z);
    CHECK_INT(inflateInit2(&z, -8), Z_OK);
    static uint8_t out[8192];
    ws_buf_append(&c8, ws_pmd_tail, 4);
    z.next_in = c8.data; z.avail_in = (uInt)c8.len;
    z.next_out = out; z.avail_out = sizeof out;
    int zr = inflate(&z, Z_SYNC_FLUSH);
    size_t n = sizeof out - z.avail_out;
    inflateEnd(&z);
    ws_buf_free(&c8); ws_buf_free(&c9);
    ws_deflater_free(d8); ws_deflater_free(d9);
    CHECK_INT(zr, Z_OK);
    CHECK_INT(n, sizeof msg);
    CHECK_MEM(out, msg, sizeof msg);
}

/* Fan-out property: with reset, the same message always gives the same
 * bytes, and each inflates alone with a fresh inflater. */
static void test_reset_identical(void)
{
    uint8_t msg[2000];
    fill(msg, sizeof msg, 1);
    ws_deflater_t *def = ws_deflater_new(15, 6, 8);
    ws_buf_t first = {0};
    CHECK_INT(ws_deflate(def, msg, sizeof msg, 1, &first), WS_OK);
    for (int i = 0; i < 5; i++) {
        ws_buf_t c = {0};
        uint8_t other[300];
        fill(other, sizeof other, 1);
        CHECK_INT(ws_deflate(def, other, sizeof other, 1, &c), WS_OK);
        c.len = 0;
        CHECK_INT(ws_deflate(def, msg, sizeof msg, 1, &c), WS_OK);
        CHECK_INT(c.len, first.len);
        CHECK_MEM(c.data, first.data, first.len);
        ws_buf_free(&c);
    }
    CHECK(inflate_eq(15, first.data, first.len, "") == 0);
    ws_inflater_t *inf = ws_inflater_new(15);
    ws_buf_t o = {0};
    CHECK_INT(ws_inflate(inf, first.data, first.len, 1, &o, sizeof msg), WS_OK);
    CHECK_INT(o.len, sizeof msg);
    CHECK_MEM(o.data, msg, sizeof msg);
    ws_buf_free(&o); ws_buf_free(&first);
    ws_inflater_free(inf);
    ws_deflater_free(def);
}

/* Context takeover: a repeated message gets much smaller. */
static void test_context_takeover(void)
{
    uint8_t msg[1000];
    fill(msg, sizeof msg, 0);
    ws_deflater_t *def = ws_deflater_new(15, -1, 8);
    ws_inflater_t *inf = ws_inflater_new(15);
    ws_buf_t c1 = {0}, c2 = {0}, o = {0};
    CHECK_INT(ws_deflate(def, msg, sizeof msg, 0, &c1), WS_OK);
    CHECK_INT(ws_deflate(def, msg, sizeof msg, 0, &c2), WS_OK);
    CHECK(c1.len > 1000);
    CHECK(c2.len < 20);
    CHECK_INT(ws_inflate(inf, c1.data, c1.len, 0, &o, 1000), WS_OK);
    CHECK_INT(ws_inflate(inf, c2.data, c2.len, 0, &o, 1000), WS_OK);
    CHECK_INT(o.len, 2000);
    CHECK_MEM(o.data + 1000, msg, 1000);
    ws_buf_free(&c1); ws_buf_free(&c2); ws_buf_free(&o);
    ws_deflater_free(def);
    ws_inflater_free(inf);
}

/* ---- limits and errors ----------------------------------------------------- */

static void test_bomb(void)
{
    size_t big = 10u * 1024 * 1024;
    uint8_t *zeros = calloc(1, big);
    ws_deflater_t *def = ws_deflater_new(15, 9, 9);
    ws_buf_t c = {0};
    CHECK_INT(ws_deflate(def, zeros, big, 1, &c), WS_OK);
    free(zeros);
    ws_deflater_free(def);
    CHECK(c.len < 20000);
    ws_inflater_t *inf = ws_inflater_new(15);
    size_t limits[] = { 0, 1, 1000, 16384, 65536, 1000000 };
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        ws_buf_t o = {0};
        CHECK_INT(ws_inflate(inf, c.data, c.len, 1, &o, limits[i]), WS_E_INFLATE_TOO_BIG);
        CHECK(o.len > limits[i]);
        CHECK(o.len <= limits[i] + WS_INFLATE_STEP);
        CHECK(o.cap <= limits[i] + WS_INFLATE_STEP + 1024);
        ws_buf_free(&o);
    }
    /* Exactly at the limit is fine, and the inflater is usable after. */
    ws_buf_t o = {0};
    CHECK_INT(ws_inflate(inf, c.data, c.len, 1, &o, big), WS_OK);
    CHECK_INT(o.len, big);
    CHECK(o.cap <= big + 1);
    ws_buf_free(&o);
    CHECK_INT(ws_inflate(inf, c.data, c.len, 1, &o, big - 1), WS_E_INFLATE_TOO_BIG);
    ws_buf_free(&o);
    CHECK_INT(ws_inflate(inf, hello_fixed, sizeof hello_fixed, 1, &o, 5), WS_OK);
    CHECK_INT(ws_inflate(inf, hello_fixed, sizeof hello_fixed, 1, &o, 4), WS_E_INFLATE_TOO_BIG);
    ws_buf_free(&o);
    ws_buf_free(&c);
    ws_inflater_free(inf);
}

static void test_corrupt(void)
{
    ws_inflater_t *inf = ws_inflater_new(15);
    ws_buf_t o = {0};
    static const uint8_t bad_btype[] = { 0x07, 0x00 };          /* BTYPE 11 */
    static const uint8_t bad_nlen[] = { 0x00, 0x05, 0x00, 0x00, 0x00, 'H' };
    static const uint8_t far[] = { 0xf2, 0x00, 0x11, 0x00, 0x00 }; /* distance 5, empty window */
    static const uint8_t cut[] = { 0xf2, 0x48, 0xcd };         /* message cut short */
    static const uint8_t stored_open[] = { 0x00, 0x10, 0x00, 0xef, 0xff, 'a' };
    CHECK_INT(ws_inflate(inf, bad_btype, sizeof bad_btype, 0, &o, 100), WS_E_INFLATE);
    CHECK_INT(ws_inflate(inf, hello_fixed, sizeof hello_fixed, 0, &o, 100), WS_OK);
    CHECK_INT(ws_inflate(inf, bad_nlen, sizeof bad_nlen, 0, &o, 100), WS_E_INFLATE);
    o.len = 0;
    CHECK_INT(ws_inflate(inf, far, sizeof far, 0, &o, 100), WS_E_INFLATE); /* window was reset */
    CHECK_INT(ws_inflate(inf, cut, sizeof cut, 0, &o, 100), WS_E_INFLATE);
    CHECK_INT(ws_inflate(inf, stored_open, sizeof stored_open, 0, &o, 100), WS_E_INFLATE);
    o.len = 0;
    CHECK_INT(ws_inflate(inf, hello_fixed, sizeof hello_fixed, 0, &o, 100), WS_OK);
    CHECK_INT(o.len, 5);
    CHECK_MEM(o.data, "Hello", 5);
    ws_buf_free(&o);
    ws_inflater_free(inf);
}

static void test_bad_args(void)
{
    ws_buf_t o = {0};
    CHECK(ws_inflater_new(7) == NULL);
    CHECK(ws_inflater_new(16) == NULL);
    CHECK(ws_deflater_new(16, -1, 8) == NULL);
    CHECK(ws_deflater_new(15, 10, 8) == NULL);
    CHECK(ws_deflater_new(15, -1, 0) == NULL);
    CHECK_INT(ws_inflate(NULL, hello_fixed, 1, 0, &o, 1), WS_E_INVALID_ARG);
    CHECK_INT(ws_deflate(NULL, hello_fixed, 1, 0, &o), WS_E_INVALID_ARG);
    ws_inflater_free(NULL);
    ws_deflater_free(NULL);
}

/* ---- memory per stream ----------------------------------------------------- */

static void test_memory(void)
{
    for (int w = 8; w <= 15; w++) {
        int zw = w < 9 ? 9 : w;
        ws_inflater_t *inf = ws_inflater_new(w);
        size_t state = inf->zmem;
        ws_buf_t o = {0};
        CHECK_INT(ws_inflate(inf, hello_fixed, sizeof hello_fixed, 1, &o, 10), WS_OK);
        ws_buf_free(&o);
        size_t window = inf->zmem - state;
        if (getenv("TEST_VERBOSE"))
            printf("inflate W=%d: state %zu + window %zu\n", w, state, window);
        CHECK(state < 8 * 1024);
        CHECK_INT(window, ((size_t)1 << zw));
        ws_inflater_free(inf);

        for (int ml = 1; ml <= 9; ml += 7) {
            ws_deflater_t *def = ws_deflater_new(w, -1, ml);
            size_t formula = ((size_t)1 << (zw + 2)) + ((size_t)1 << (ml + 9));
            if (getenv("TEST_VERBOSE"))
                printf("deflate W=%d memLevel=%d: %zu (formula %zu)\n", w, ml, def->zmem, formula);
            CHECK(def->zmem >= formula);
            CHECK(def->zmem - formula < 6 * 1024);
            ws_buf_t c = {0};
            size_t before = def->zmem;
            CHECK_INT(ws_deflate(def, hello_fixed, sizeof hello_fixed, 0, &c), WS_OK);
            CHECK_INT(def->zmem, before);             /* nothing allocated later */
            ws_buf_free(&c);
            ws_deflater_free(def);
        }
    }
}

/* ---- negotiation ----------------------------------------------------------- */

/* Negotiates `offer` under `pol` (default policy when NULL) and returns the
 * response string, "" when declined, or "ERR" on an error. */
static const char *nego(const char *offer, const ws_pmd_policy_t *pol, ws_pmd_params_t *pp)
{
    static char resp[256];
    ws_pmd_policy_t def;
    ws_pmd_policy_default(&def);
    ws_pmd_params_t p;
    memset(&p, 0xaa, sizeof p);
    int rc = ws_pmd_negotiate(offer, strlen(offer), pol ? pol : &def, &p);
    if (rc == 0) return "";
    if (rc != 1) return "ERR";
    if (pp) *pp = p;
    if (ws_pmd_format_response(&p, resp, sizeof resp) < 0) return "ERR";
    return resp;
}

#define NDEF "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

static void test_nego_basic(void)
{
    ws_pmd_params_t p;
    CHECK_STR(nego("permessage-deflate", NULL, &p), NDEF);
    CHECK_INT(p.server_no_context_takeover, 1);
    CHECK_INT(p.client_no_context_takeover, 1);
    CHECK_INT(p.server_max_window_bits, 15);
    CHECK_INT(p.client_max_window_bits, 15);
    CHECK_INT(p.client_max_window_bits_sent, 0);
    CHECK_INT(p.server_max_window_bits_sent, 0);
    CHECK_STR(nego("  permessage-deflate  ", NULL, NULL), NDEF);
    CHECK_STR(nego("permessage-deflate;server_no_context_takeover", NULL, NULL), NDEF);
    CHECK_STR(nego("permessage-deflate; client_no_context_takeover", NULL, NULL), NDEF);
    CHECK_STR(nego("permessage-deflate; server_max_window_bits=10", NULL, &p),
              NDEF "; server_max_window_bits=10");
    CHECK_INT(p.server_max_window_bits, 10);
    CHECK_STR(nego("permessage-deflate; server_max_window_bits=15", NULL, NULL),
              NDEF "; server_max_window_bits=15");          /* a request is always echoed */
    CHECK_STR(nego("permessage-deflate; server_max_window_bits=8", NULL, &p),
              NDEF "; server_max_window_bits=8");
    CHECK_INT(p.server_max_window_bits, 8);
    CHECK_STR(nego("permessage-deflate; client_max_window_bits", NULL, &p),
              NDEF "; client_max_window_bits=15");
    CHECK_INT(p.client_max_window_bits, 15);
    CHECK_INT(p.client_max_window_bits_sent, 1);
    CHECK_STR(nego("permessage-deflate; client_max_window_bits=9", NULL, &p),
              NDEF "; client_max_window_bits=9");
    CHECK_INT(p.client_max_window_bits, 9);
    CHECK_STR(nego("permessage-deflate; client_max_window_bits=8", NULL, &p),
              NDEF "; client_max_window_bits=8");
    CHECK_STR(nego("permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                   "server_max_window_bits=12; client_max_window_bits=11", NULL, NULL),
              NDEF "; server_max_window_bits=12; client_max_window_bits=11");
    /* Parameters in any order; response order is fixed. */
    CHECK_STR(nego("permessage-deflate; client_max_window_bits; server_max_window_bits=9 ;"
                   "client_no_context_takeover", NULL, NULL),
              NDEF "; server_max_window_bits=9; client_max_window_bits=15");
}

static void test_nego_quoted(void)
{
    CHECK_STR(nego("permessage-deflate; server_max_window_bits=\"10\"", NULL, NULL),
              NDEF "; server_max_window_bits=10");
    CHECK_STR(nego("permessage-deflate; client_max_window_bits=\"12\"", NULL, NULL),
              NDEF "; client_max_window_bits=12");
    CHECK_STR(nego("permessage-deflate; client_max_window_bits=\"\\1\\2\"", NULL, NULL),
              NDEF "; client_max_window_bits=12");           /* quoted-pairs unescaped */
    CHECK_STR(nego("permessage-deflate; server_max_window_bits=\"1 0\"", NULL, NULL), "");
    CHECK_STR(nego("permessage-deflate; server_max_window_bits=\"\"", NULL, NULL), "");
    CHECK_STR(nego("permessage-deflate; server_no_context_takeover=\"\"", NULL, NULL), "");
    /* A quoted value in another extension, with a comma inside. */
    CHECK_STR(nego("foo; bar=\"a, b\\\"c\", permessage-deflate", NULL, NULL), NDEF);
}

static void test_nego_declined(void)
{
    static const char *bad[] = {
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=08",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; server_max_window_bits=-9",
        "permessage-deflate; server_max_window_bits=9a",
        "permessage-deflate; server_max_window_bits=100000000000000000009",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=0",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=true",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; client_max_window_bits=10; client_max_window_bits",
        "permessage-deflate; foo",
        "permessage-deflate; foo=1",
        "permessage-deflate; Server_No_Context_Takeover",
        "Permessage-Deflate",
        "permessage-deflat",
        "permessage-deflate-x",
        "x-webkit-deflate-frame",
        "deflate-frame; no_context_takeover",
        /* syntax errors */
        "permessage-deflate;",
        "permessage-deflate; ;server_no_context_takeover",
        "permessage-deflate; server_max_window_bits=",
        "permessage-deflate; server_max_window_bits=\"10",
        "permessage-deflate server_no_context_takeover",
        "permessage-deflate; =10",
        "permessage-deflate; client_max_window_bits=1\x01",
        "\"permessage-deflate\"",
        "",
        " , ,",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(strcmp(nego(bad[i], NULL, NULL), "") == 0, "accepted: %s", bad[i]);
}

static void test_nego_several(void)
{
    ws_pmd_params_t p;
    CHECK_STR(nego("permessage-deflate; server_max_window_bits=7, "
                   "permessage-deflate; server_max_window_bits=9", NULL, &p),
              NDEF "; server_max_window_bits=9");
    CHECK_STR(nego("permessage-deflate; foo, permessage-deflate; client_max_window_bits", NULL, NULL),
              NDEF "; client_max_window_bits=15");
    /* First acceptable wins, even if a later one asks for more. */
    CHECK_STR(nego("permessage-deflate, permessage-deflate; client_max_window_bits", NULL, NULL), NDEF);
    CHECK_STR(nego("x-webkit-deflate-frame, permessage-deflate", NULL, NULL), NDEF);
    CHECK_STR(nego("x-webkit-deflate-frame; max_window_bits=10,permessage-deflate", NULL, NULL), NDEF);
    CHECK_STR(nego(",, permessage-deflate ,", NULL, NULL), NDEF);
    CHECK_STR(nego("foo; a=b c, permessage-deflate", NULL, NULL), NDEF);  /* resync after junk */
    CHECK_STR(nego("permessage-deflate; a b, permessage-deflate; server_max_window_bits=11",
                   NULL, NULL), NDEF "; server_max_window_bits=11");
    CHECK_STR(nego("foo; a=\"unterminated, permessage-deflate", NULL, NULL), "");
    CHECK_STR(nego("permessage-deflate\t;\tclient_max_window_bits = 10", NULL, NULL),
              NDEF "; client_max_window_bits=10");
}

static void test_nego_policy(void)
{
    ws_pmd_policy_t pol;
    ws_pmd_params_t p;
    ws_pmd_policy_default(&pol);
    CHECK_INT(pol.enable, 1);
    CHECK_INT(pol.allow_server_context_takeover, 0);
    CHECK_INT(pol.allow_client_context_takeover, 0);
    CHECK_INT(pol.server_max_window_bits, 15);
    CHECK_INT(pol.client_max_window_bits, 15);

    pol.enable = 0;
    CHECK_INT(ws_pmd_negotiate("permessage-deflate", 18, &pol, &p), 0);

    ws_pmd_policy_default(&pol);
    pol.allow_server_context_takeover = 1;
    pol.allow_client_context_takeover = 1;
    CHECK_STR(nego("permessage-deflate", &pol, &p), "permessage-deflate");
    CHECK_INT(p.server_no_context_takeover, 0);
    CHECK_INT(p.client_no_context_takeover, 0);
    CHECK_STR(nego("permessage-deflate; server_no_context_takeover", &pol, NULL),
              "permessage-deflate; server_no_context_takeover");
    CHECK_STR(nego("permessage-deflate; client_no_context_takeover", &pol, NULL),
              "permessage-deflate; client_no_context_takeover");
    pol.allow_client_context_takeover = 0;
    CHECK_STR(nego("permessage-deflate", &pol, NULL),
              "permessage-deflate; client_no_context_takeover");

    /* Our own window ceilings. */
    ws_pmd_policy_default(&pol);
    pol.server_max_window_bits = 10;
    pol.client_max_window_bits = 9;
    CHECK_STR(nego("permessage-deflate", &pol, &p), NDEF "; server_max_window_bits=10");
    CHECK_INT(p.client_max_window_bits, 15);          /* not offered: the client uses 15 */
    CHECK_INT(p.client_max_window_bits_sent, 0);
    CHECK_STR(nego("permessage-deflate; server_max_window_bits=12", &pol, NULL),
              NDEF "; server_max_window_bits=10");
    CHECK_STR(nego("permessage-deflate; server_max_window_bits=8", &pol, NULL),
              NDEF "; server_max_window_bits=8");
    CHECK_STR(nego("permessage-deflate; client_max_window_bits", &pol, &p),
              NDEF "; server_max_window_bits=10; client_max_window_bits=9");
    CHECK_INT(p.client_max_window_bits, 9);
    CHECK_STR(nego("permessage-deflate; client_max_window_bits=8", &pol, NULL),
              NDEF "; server_max_window_bits=10; client_max_window_bits=8");

    /* Bad arguments. */
    ws_pmd_policy_default(&pol);
    CHECK_INT(ws_pmd_negotiate(NULL, 1, &pol, &p), WS_E_INVALID_ARG);
    CHECK_INT(ws_pmd_negotiate("x", 1, NULL, &p), WS_E_INVALID_ARG);
    CHECK_INT(ws_pmd_negotiate("x", 1, &pol, NULL), WS_E_INVALID_ARG);
    CHECK_INT(ws_pmd_negotiate(NULL, 0, &pol, &p), 0);
    pol.server_max_window_bits = 16;
    CHECK_INT(ws_pmd_negotiate("permessage-deflate", 18, &pol, &p), WS_E_INVALID_ARG);
    /* Length is honoured: no NUL needed, nothing read past it. */
    ws_pmd_policy_default(&pol);
    CHECK_INT(ws_pmd_negotiate("permessage-deflate; foo", 18, &pol, &p), 1);
    CHECK_INT(ws_pmd_negotiate("permessage-deflate; server_max_window_bits=10", 43, &pol, &p), 0);
}

static void test_format_response(void)
{
    ws_pmd_params_t p = { 1, 1, 15, 15, 0, 0 };
    char buf[128];
    CHECK_INT(ws_pmd_format_response(&p, buf, sizeof buf), (int)strlen(NDEF));
    CHECK_STR(buf, NDEF);
    CHECK_INT(ws_pmd_format_response(&p, buf, strlen(NDEF) + 1), (int)strlen(NDEF));
    CHECK_INT(ws_pmd_format_response(&p, buf, strlen(NDEF)), WS_E_NOSPACE);
    CHECK_INT(ws_pmd_format_response(&p, NULL, 0), WS_E_NOSPACE);
    ws_pmd_params_t all = { 1, 1, 8, 9, 1, 1 };
    const char *want = NDEF "; server_max_window_bits=8; client_max_window_bits=9";
    CHECK_INT(ws_pmd_format_response(&all, buf, sizeof buf), (int)strlen(want));
    CHECK_STR(buf, want);
    CHECK_INT(ws_pmd_format_response(&all, buf, strlen(want)), WS_E_NOSPACE);
    ws_pmd_params_t none = { 0, 0, 15, 15, 0, 0 };
    CHECK_INT(ws_pmd_format_response(&none, buf, sizeof buf), 18);
    CHECK_STR(buf, "permessage-deflate");
    ws_pmd_params_t bad = { 0, 0, 7, 15, 0, 0 };
    CHECK_INT(ws_pmd_format_response(&bad, buf, sizeof buf), WS_E_INVALID_ARG);
    CHECK_INT(ws_pmd_format_response(NULL, buf, sizeof buf), WS_E_INVALID_ARG);
}

/* Negotiated parameters drive a working pair: our deflater at
 * server_max_window_bits, a client-side inflater at the same. */
static void test_nego_then_stream(void)
{
    static const char *offers[] = {
        "permessage-deflate; server_max_window_bits=8",
        "permessage-deflate; server_max_window_bits=9; client_max_window_bits",
        "permessage-deflate; server_max_window_bits=12; client_max_window_bits=10",
    };
    uint8_t msg[5000];
    fill(msg, sizeof msg, 1);
    for (size_t i = 0; i < 3; i++) {
        ws_pmd_policy_t pol;
        ws_pmd_params_t p;
        ws_pmd_policy_default(&pol);
        CHECK_INT(ws_pmd_negotiate(offers[i], strlen(offers[i]), &pol, &p), 1);
        ws_deflater_t *def = ws_deflater_new(p.server_max_window_bits, -1, 8);
        ws_deflater_t *cli = ws_deflater_new(p.client_max_window_bits, -1, 8);
        ws_inflater_t *cli_inf = ws_inflater_new(p.server_max_window_bits);
        ws_inflater_t *srv_inf = ws_inflater_new(p.client_max_window_bits);
        ws_buf_t c = {0}, o = {0};
        CHECK_INT(ws_deflate(def, msg, sizeof msg, p.server_no_context_takeover, &c), WS_OK);
        CHECK_INT(ws_inflate(cli_inf, c.data, c.len, 1, &o, sizeof msg), WS_OK);
        CHECK_INT(o.len, sizeof msg);
        c.len = o.len = 0;
        CHECK_INT(ws_deflate(cli, msg, sizeof msg, 1, &c), WS_OK);
        CHECK_INT(ws_inflate(srv_inf, c.data, c.len, p.client_no_context_takeover, &o, sizeof msg), WS_OK);
        CHECK_MEM(o.data, msg, sizeof msg);
        ws_buf_free(&c); ws_buf_free(&o);
        ws_deflater_free(def); ws_deflater_free(cli);
        ws_inflater_free(cli_inf); ws_inflater_free(srv_inf);
    }
}

int main(void)
{
    RUN(test_rfc_hello);
    RUN(test_rfc_shared_context);
    RUN(test_rfc_stored);
    RUN(test_rfc_bfinal);
    RUN(test_rfc_two_blocks);
    RUN(test_many_bfinal);
    RUN(test_rfc_empty);
    RUN(test_roundtrip_windows);
    RUN(test_window8_no_matches);
    RUN(test_reset_identical);
    RUN(test_context_takeover);
    RUN(test_bomb);
    RUN(test_corrupt);
    RUN(test_bad_args);
    RUN(test_memory);
    RUN(test_nego_basic);
    RUN(test_nego_quoted);
    RUN(test_nego_declined);
    RUN(test_nego_several);
    RUN(test_nego_policy);
    RUN(test_format_response);
    RUN(test_nego_then_stream);
    return test_report("deflate");
}
