/* test_frame.c — the frame codec (proto/ws_frame.c). */
#include "test.h"
#include "ws_frame.h"
#include "ws_status.h"

#define B(...) ((const uint8_t[]){ __VA_ARGS__ }), sizeof((const uint8_t[]){ __VA_ARGS__ })

/* Parses buf whole and checks the header fields; also checks every proper
 * prefix answers WANT_MORE. */
static int parse_all(const uint8_t *buf, size_t len, int rsv, ws_role_t role, ws_frame_hdr_t *h)
{
    for (size_t n = 0; n < len; n++) {
        ws_frame_hdr_t t;
        int rc = ws_frame_parse_header(buf, n, rsv, role, &t);
        if (rc >= 0) return -1000;   /* a prefix must not parse */
        if (rc != WS_E_WANT_MORE) return rc;
    }
    return ws_frame_parse_header(buf, len, rsv, role, h);
}

/* RFC 6455 §5.7 examples. */
static void t_rfc_examples(void)
{
    ws_frame_hdr_t h;
    /* single-frame unmasked text "Hello" (server → client) */
    static const uint8_t unmasked[] = { 0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
    CHECK_INT(parse_all(unmasked, 2, 0, WS_ROLE_CLIENT, &h), 2);
    CHECK_INT(h.fin, 1); CHECK_INT(h.opcode, WS_OP_TEXT); CHECK_INT(h.rsv, 0);
    CHECK_INT(h.masked, 0); CHECK_INT(h.payload_len, 5); CHECK_INT(h.header_len, 2);
    CHECK_MEM(unmasked + 2, "Hello", 5);
    /* the same frame is a protocol error for a server */
    CHECK_INT(ws_frame_parse_header(unmasked, sizeof unmasked, 0, WS_ROLE_SERVER, &h), WS_E_FRAME_UNMASKED);

    /* single-frame masked text "Hello" (client → server) */
    uint8_t masked[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    CHECK_INT(parse_all(masked, 6, 0, WS_ROLE_SERVER, &h), 6);
    CHECK_INT(h.masked, 1); CHECK_INT(h.payload_len, 5);
    CHECK_MEM(h.mask, "\x37\xfa\x21\x3d", 4);
    ws_mask(masked + 6, 5, h.mask, 0);
    CHECK_MEM(masked + 6, "Hello", 5);
    CHECK_INT(ws_frame_parse_header(masked, sizeof masked, 0, WS_ROLE_CLIENT, &h), WS_E_FRAME_MASKED);

    /* fragmented unmasked text "Hel" + "lo" */
    static const uint8_t frag1[] = { 0x01, 0x03, 0x48, 0x65, 0x6c };
    static const uint8_t frag2[] = { 0x80, 0x02, 0x6c, 0x6f };
    CHECK_INT(parse_all(frag1, 2, 0, WS_ROLE_CLIENT, &h), 2);
    CHECK_INT(h.fin, 0); CHECK_INT(h.opcode, WS_OP_TEXT); CHECK_INT(h.payload_len, 3);
    CHECK_INT(parse_all(frag2, 2, 0, WS_ROLE_CLIENT, &h), 2);
    CHECK_INT(h.fin, 1); CHECK_INT(h.opcode, WS_OP_CONT); CHECK_INT(h.payload_len, 2);

    /* unmasked ping "Hello" and masked pong "Hello" */
    static const uint8_t ping[] = { 0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
    CHECK_INT(parse_all(ping, 2, 0, WS_ROLE_CLIENT, &h), 2);
    CHECK_INT(h.opcode, WS_OP_PING); CHECK_INT(h.payload_len, 5);
    uint8_t pong[] = { 0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    CHECK_INT(parse_all(pong, 6, 0, WS_ROLE_SERVER, &h), 6);
    CHECK_INT(h.opcode, WS_OP_PONG);
    ws_mask(pong + 6, 5, h.mask, 0);
    CHECK_MEM(pong + 6, "Hello", 5);

    /* 256 bytes binary, 64 KiB binary in one unmasked frame */
    static const uint8_t b256[] = { 0x82, 0x7E, 0x01, 0x00 };
    CHECK_INT(parse_all(b256, sizeof b256, 0, WS_ROLE_CLIENT, &h), 4);
    CHECK_INT(h.opcode, WS_OP_BINARY); CHECK_INT(h.payload_len, 256);
    static const uint8_t b64k[] = { 0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0 };
    CHECK_INT(parse_all(b64k, sizeof b64k, 0, WS_ROLE_CLIENT, &h), 10);
    CHECK_INT(h.payload_len, 65536); CHECK_INT(h.header_len, 10);
    /* and masked: 14-byte header */
    static const uint8_t b64km[] = { 0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4 };
    CHECK_INT(parse_all(b64km, sizeof b64km, 0, WS_ROLE_SERVER, &h), 14);
    CHECK_INT(h.payload_len, 65536); CHECK_MEM(h.mask, "\x01\x02\x03\x04", 4);
}

static void t_lengths(void)
{
    ws_frame_hdr_t h;
    CHECK_INT(ws_frame_parse_header(B(0x82, 0x7D), 0, WS_ROLE_CLIENT, &h), 2);
    CHECK_INT(h.payload_len, 125);
    CHECK_INT(ws_frame_parse_header(B(0x82, 0x7E, 0x00, 0x7E), 0, WS_ROLE_CLIENT, &h), 4);
    CHECK_INT(h.payload_len, 126);
    CHECK_INT(ws_frame_parse_header(B(0x82, 0x7E, 0xFF, 0xFF), 0, WS_ROLE_CLIENT, &h), 4);
    CHECK_INT(h.payload_len, 65535);
    CHECK_INT(ws_frame_parse_header(B(0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF),
                                    0, WS_ROLE_CLIENT, &h), 10);
    CHECK(h.payload_len == 0x7FFFFFFFFFFFFFFFull);
    /* non-minimal */
    CHECK_INT(ws_frame_parse_header(B(0x82, 0x7E, 0x00, 0x7D), 0, WS_ROLE_CLIENT, &h), WS_E_FRAME_LEN_NONCANON);
    CHECK_INT(ws_frame_parse_header(B(0x82, 0x7E, 0x00, 0x00), 0, WS_ROLE_CLIENT, &h), WS_E_FRAME_LEN_NONCANON);
    CHECK_INT(ws_frame_parse_header(B(0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF), 0, WS_ROLE_CLIENT, &h),
              WS_E_FRAME_LEN_NONCANON);
    CHECK_INT(ws_frame_parse_header(B(0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0, 5), 0, WS_ROLE_CLIENT, &h),
              WS_E_FRAME_LEN_NONCANON);
    /* MSB set: detected as soon as the first length byte is here */
    CHECK_INT(ws_frame_parse_header(B(0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0), 0, WS_ROLE_CLIENT, &h),
              WS_E_FRAME_LEN_MSB);
    CHECK_INT(ws_frame_parse_header(B(0x82, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4),
                                    0, WS_ROLE_SERVER, &h), WS_E_FRAME_LEN_MSB);
}

static void t_invalid_headers(void)
{
    ws_frame_hdr_t h;
    /* reserved opcodes, data and control, either role: fail at byte 0 */
    for (unsigned op = 0; op < 16; op++) {
        uint8_t b[6] = { (uint8_t)(0x80 | op), 0x80, 1, 2, 3, 4 };
        int rc = ws_frame_parse_header(b, sizeof b, 0, WS_ROLE_SERVER, &h);
        int reserved = (op >= 3 && op <= 7) || op >= 0xB;
        if (reserved) {
            CHECK_INT(rc, WS_E_FRAME_OPCODE);
            CHECK_INT(ws_frame_parse_header(b, 1, 0, WS_ROLE_SERVER, &h), WS_E_FRAME_OPCODE);
            CHECK_INT(ws_frame_parse_header(b, 1, WS_RSV1, WS_ROLE_CLIENT, &h), WS_E_FRAME_OPCODE);
        } else {
            CHECK_INT(rc, 6);
            CHECK_INT(h.opcode, op);
        }
    }
    /* RSV bits without an extension */
    for (unsigned rsv = 1; rsv < 8; rsv++) {
        uint8_t b[6] = { (uint8_t)(0x80 | rsv << 4 | WS_OP_TEXT), 0x80, 1, 2, 3, 4 };
        CHECK_INT(ws_frame_parse_header(b, sizeof b, 0, WS_ROLE_SERVER, &h), WS_E_FRAME_RSV);
        CHECK_INT(ws_frame_parse_header(b, 1, 0, WS_ROLE_SERVER, &h), WS_E_FRAME_RSV);
        /* with RSV1 claimed, only RSV1 alone passes */
        int rc = ws_frame_parse_header(b, sizeof b, WS_RSV1, WS_ROLE_SERVER, &h);
        if (rsv == 4) { CHECK_INT(rc, 6); CHECK_INT(h.rsv, WS_RSV1); }
        else CHECK_INT(rc, WS_E_FRAME_RSV);
    }
    /* RSV1 on control frames even when claimed */
    for (unsigned op = 8; op <= 0xA; op++) {
        uint8_t b[6] = { (uint8_t)(0xC0 | op), 0x80, 1, 2, 3, 4 };
        CHECK_INT(ws_frame_parse_header(b, sizeof b, WS_RSV1, WS_ROLE_SERVER, &h), WS_E_FRAME_RSV);
        CHECK_INT(ws_frame_parse_header(b, sizeof b, WS_RSV1 | WS_RSV2 | WS_RSV3, WS_ROLE_SERVER, &h),
                  WS_E_FRAME_RSV);
        /* ... but RSV2 on a control frame is fine if an extension claimed it */
        b[0] = (uint8_t)(0xA0 | op);
        CHECK_INT(ws_frame_parse_header(b, sizeof b, WS_RSV2, WS_ROLE_SERVER, &h), 6);
    }
    /* masking by role */
    CHECK_INT(ws_frame_parse_header(B(0x81, 0x00), 0, WS_ROLE_SERVER, &h), WS_E_FRAME_UNMASKED);
    CHECK_INT(ws_frame_parse_header(B(0x81, 0x80), 0, WS_ROLE_CLIENT, &h), WS_E_FRAME_MASKED);
    /* control frames: payload over 125 (len7 126 and 127 too), FIN=0 */
    CHECK_INT(ws_frame_parse_header(B(0x89, 0xFE, 0x00, 0x7E), 0, WS_ROLE_SERVER, &h), WS_E_FRAME_CTRL_TOO_BIG);
    CHECK_INT(ws_frame_parse_header(B(0x89, 0xFE), 0, WS_ROLE_SERVER, &h), WS_E_FRAME_CTRL_TOO_BIG);
    CHECK_INT(ws_frame_parse_header(B(0x88, 0xFF), 0, WS_ROLE_SERVER, &h), WS_E_FRAME_CTRL_TOO_BIG);
    CHECK_INT(ws_frame_parse_header(B(0x8A, 0x7E), 0, WS_ROLE_CLIENT, &h), WS_E_FRAME_CTRL_TOO_BIG);
    CHECK_INT(ws_frame_parse_header(B(0x89, 0xFD, 1, 2, 3, 4), 0, WS_ROLE_SERVER, &h), 6);
    CHECK_INT(h.payload_len, 125);
    for (unsigned op = 8; op <= 0xA; op++) {
        uint8_t b[2] = { (uint8_t)op, 0x80 };
        CHECK_INT(ws_frame_parse_header(b, 2, 0, WS_ROLE_SERVER, &h), WS_E_FRAME_CTRL_FRAG);
        CHECK_INT(ws_frame_parse_header(b, 1, 0, WS_ROLE_SERVER, &h), WS_E_FRAME_CTRL_FRAG);
    }
    /* data frames may have FIN=0 */
    CHECK_INT(ws_frame_parse_header(B(0x02, 0x80, 1, 2, 3, 4), 0, WS_ROLE_SERVER, &h), 6);
    CHECK_INT(h.fin, 0);
    /* nothing yet */
    CHECK_INT(ws_frame_parse_header(NULL, 0, 0, WS_ROLE_SERVER, &h), WS_E_WANT_MORE);
    /* every close code in ws_status maps frame errors to 1002 */
    int errs[] = { WS_E_FRAME_RSV, WS_E_FRAME_OPCODE, WS_E_FRAME_UNMASKED, WS_E_FRAME_MASKED,
                   WS_E_FRAME_CTRL_TOO_BIG, WS_E_FRAME_CTRL_FRAG, WS_E_FRAME_LEN_NONCANON,
                   WS_E_FRAME_LEN_MSB };
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++)
        CHECK_INT(ws_err_close_code(errs[i]), 1002);
}

static void ref_mask(uint8_t *d, size_t n, const uint8_t m[4], uint64_t off)
{
    for (size_t i = 0; i < n; i++) d[i] ^= m[(off + i) % 4];
}

/* Every start alignment, mask offset and length 0..67 (and a few big
 * ones) against the byte-wise reference; bytes around the range are
 * untouched. */
static void t_mask(void)
{
    static uint8_t a[4200], b[4200];
    const uint8_t m[4] = { 0xA5, 0x3C, 0x0F, 0xD2 };
    size_t lens[] = { 0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 67, 127, 128, 129,
                      255, 256, 1000, 4096 };
    for (size_t align = 0; align < 32; align++) {
        for (uint64_t off = 0; off < 8; off++) {
            for (size_t len = 0; len <= 67 + 4096; len = len < 67 ? len + 1 : len + 1 + len / 3) {
                for (size_t i = 0; i < sizeof a; i++) a[i] = b[i] = (uint8_t)(i * 7 + 3);
                ws_mask(a + align + 8, len, m, off);
                ref_mask(b + align + 8, len, m, off);
                CHECK_MSG(memcmp(a, b, sizeof a) == 0, "align %zu off %llu len %zu", align,
                          (unsigned long long)off, len);
            }
            for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
                for (size_t i = 0; i < sizeof a; i++) a[i] = b[i] = (uint8_t)(i ^ 0x5A);
                ws_mask(a + align, lens[k], m, off + (1ull << 40));
                ref_mask(b + align, lens[k], m, off + (1ull << 40));
                CHECK(memcmp(a, b, sizeof a) == 0);
            }
        }
    }
    /* split unmasking with running offsets equals one pass */
    for (size_t split = 0; split <= 100; split++) {
        for (size_t i = 0; i < 100; i++) a[i] = b[i] = (uint8_t)(i * 13);
        ws_mask(a, split, m, 0);
        ws_mask(a + split, 100 - split, m, split);
        ref_mask(b, 100, m, 0);
        CHECK_MEM(a, b, 100);
    }
    /* masking twice restores */
    for (size_t i = 0; i < 1000; i++) a[i] = b[i] = (uint8_t)i;
    ws_mask(a + 3, 997, m, 1);
    ws_mask(a + 3, 997, m, 1);
    CHECK_MEM(a, b, 1000);
}

static void t_header_size_and_write(void)
{
    CHECK_INT(ws_frame_header_size(0, 0), 2);
    CHECK_INT(ws_frame_header_size(125, 0), 2);
    CHECK_INT(ws_frame_header_size(126, 0), 4);
    CHECK_INT(ws_frame_header_size(65535, 0), 4);
    CHECK_INT(ws_frame_header_size(65536, 0), 10);
    CHECK_INT(ws_frame_header_size(0, 1), 6);
    CHECK_INT(ws_frame_header_size(126, 1), 8);
    CHECK_INT(ws_frame_header_size(1ull << 40, 1), 14);

    uint8_t out[WS_FRAME_HEADER_MAX];
    CHECK_INT(ws_frame_write_header(out, 1, 0, WS_OP_TEXT, 5, NULL), 2);
    CHECK_MEM(out, "\x81\x05", 2);
    const uint8_t m[4] = { 0x37, 0xfa, 0x21, 0x3d };
    CHECK_INT(ws_frame_write_header(out, 1, 0, WS_OP_TEXT, 5, m), 6);
    CHECK_MEM(out, "\x81\x85\x37\xfa\x21\x3d", 6);
    CHECK_INT(ws_frame_write_header(out, 1, 0, WS_OP_BINARY, 256, NULL), 4);
    CHECK_MEM(out, "\x82\x7e\x01\x00", 4);
    CHECK_INT(ws_frame_write_header(out, 1, 0, WS_OP_BINARY, 65536, NULL), 10);
    CHECK_MEM(out, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
    CHECK_INT(ws_frame_write_header(out, 0, WS_RSV1, WS_OP_TEXT, 65535, m), 8);
    CHECK_MEM(out, "\x41\xfe\xff\xff\x37\xfa\x21\x3d", 8);
    CHECK_INT(ws_frame_write_header(out, 1, 0, WS_OP_CONT, 0, NULL), 2);
    CHECK_MEM(out, "\x80\x00", 2);

    /* round trip through the parser for many lengths, both roles */
    uint64_t lens[] = { 0, 1, 125, 126, 127, 65535, 65536, 1ull << 32, (1ull << 63) - 1 };
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        ws_frame_hdr_t h;
        size_t n = ws_frame_write_header(out, 1, 0, WS_OP_BINARY, lens[i], m);
        CHECK_INT(n, ws_frame_header_size(lens[i], 1));
        CHECK_INT(ws_frame_parse_header(out, n, 0, WS_ROLE_SERVER, &h), (int)n);
        CHECK(h.payload_len == lens[i]);
        n = ws_frame_write_header(out, 0, 0, WS_OP_TEXT, lens[i], NULL);
        CHECK_INT(ws_frame_parse_header(out, n, 0, WS_ROLE_CLIENT, &h), (int)n);
        CHECK(h.payload_len == lens[i]);
        CHECK_INT(h.fin, 0);
    }
}

static void t_frame_write(void)
{
    uint8_t out[300];
    CHECK_INT(ws_frame_write(out, sizeof out, 1, 0, WS_OP_TEXT, (const uint8_t *)"Hello", 5), 7);
    CHECK_MEM(out, "\x81\x05Hello", 7);
    CHECK_INT(ws_frame_write(out, 7, 1, 0, WS_OP_TEXT, (const uint8_t *)"Hello", 5), 7);
    memset(out, 0xEE, sizeof out);
    CHECK_INT(ws_frame_write(out, 6, 1, 0, WS_OP_TEXT, (const uint8_t *)"Hello", 5), WS_E_NOSPACE);
    CHECK_INT(out[0], 0xEE);
    CHECK_INT(ws_frame_write(out, 1, 1, 0, WS_OP_TEXT, NULL, 0), WS_E_NOSPACE);
    CHECK_INT(ws_frame_write(out, 2, 1, 0, WS_OP_PONG, NULL, 0), 2);
    CHECK_MEM(out, "\x8a\x00", 2);
    uint8_t big[256];
    memset(big, 'x', sizeof big);
    CHECK_INT(ws_frame_write(out, sizeof out, 1, 0, WS_OP_BINARY, big, 256), 260);
    CHECK_MEM(out, "\x82\x7e\x01\x00", 4);
    CHECK_MEM(out + 4, big, 256);
    CHECK_INT(ws_frame_write(out, sizeof out, 1, 0, WS_OP_PING, big, 126), WS_E_INVALID_ARG);
    CHECK_INT(ws_frame_write(out, sizeof out, 1, 0, WS_OP_PING, big, 125), 127);
    CHECK_INT(ws_frame_write(out, sizeof out, 0, WS_RSV1, WS_OP_TEXT, big, 3), 5);
    CHECK_INT(out[0], 0x41);
}

static void t_frame_write_close(void)
{
    uint8_t out[2 + WS_CONTROL_MAX + 8];
    CHECK_INT(ws_frame_write_close(out, 0, "ignored", 7), 2);
    CHECK_MEM(out, "\x88\x00", 2);
    CHECK_INT(ws_frame_write_close(out, 1000, NULL, 0), 4);
    CHECK_MEM(out, "\x88\x02\x03\xe8", 4);
    CHECK_INT(ws_frame_write_close(out, 1001, "bye", 3), 7);
    CHECK_MEM(out, "\x88\x05\x03\xe9" "bye", 7);

    /* reasons over 123 bytes are cut to 123, or less on a code point boundary */
    char r[200];
    memset(r, 'a', sizeof r);
    CHECK_INT(ws_frame_write_close(out, 1000, r, sizeof r), 2 + 125);
    CHECK_INT(out[1], 125);
    CHECK_INT(ws_frame_write_close(out, 1000, r, 123), 2 + 125);
    CHECK_INT(ws_frame_write_close(out, 1000, r, 124), 2 + 125);
    /* "é" (2 bytes) straddling byte 123 */
    for (int at = 118; at <= 125; at++) {
        memset(r, 'a', sizeof r);
        r[at] = (char)0xC3; r[at + 1] = (char)0xA9;
        size_t n = ws_frame_write_close(out, 1000, r, sizeof r);
        size_t rl = n - 4;
        CHECK_MSG(rl == (at == 122 ? 122 : 123), "at %d: reason %zu", at, rl);
        CHECK_INT(out[1], rl + 2);
        /* the written reason is valid UTF-8: no lead byte without its tail */
        CHECK(!((out[4 + rl - 1] & 0xC0) == 0xC0));
    }
    /* "😀" (4 bytes) at every position around the cut */
    for (int at = 116; at <= 124; at++) {
        memset(r, 'b', sizeof r);
        memcpy(r + at, "\xf0\x9f\x98\x80", 4);
        size_t rl = ws_frame_write_close(out, 4000, r, sizeof r) - 4;
        size_t want = (at + 4 <= 123) ? 123 : (at < 123 ? (size_t)at : 123);
        CHECK_MSG(rl == want, "at %d: reason %zu want %zu", at, rl, want);
        CHECK_MEM(out + 2, "\x0f\xa0", 2);
    }
}

int main(void)
{
    RUN(t_rfc_examples);
    RUN(t_lengths);
    RUN(t_invalid_headers);
    RUN(t_mask);
    RUN(t_header_size_and_write);
    RUN(t_frame_write);
    RUN(t_frame_write_close);
    return test_report("frame");
}
