/* test_message.c — the resumable message reader (proto/ws_message.c).
 *
 * Every stream is fed whole, byte by byte, split at every position (and
 * at every pair of positions when short), and in pseudo-random chunks; the
 * events (copied), the final error and the chunk in which the error was
 * reported must be the same whatever the split.  The cases follow
 * Autobahn|Testsuite sections 1-7, 9 and 10.
 */
#include <zlib.h>

#include "test.h"
#include "ws_deflate.h"
#include "ws_message.h"
#include "ws_status.h"
#include "ws_utf8.h"

/* ---- stream builder ------------------------------------------------------ */

typedef struct sb {
    uint8_t *d;
    size_t   n, cap;
    unsigned key;     /* varies the masking key frame by frame */
    int      client;  /* build unmasked (server → client) frames */
} sb_t;

static void sb_raw(sb_t *s, const void *p, size_t n)
{
    if (s->n + n > s->cap) {
        while (s->n + n > s->cap) s->cap = s->cap ? s->cap * 2 : 256;
        s->d = realloc(s->d, s->cap);
        if (!s->d) abort();
    }
    if (n) memcpy(s->d + s->n, p, n);
    s->n += n;
}

/* Appends a frame; b0 is the whole first byte (FIN|RSV|opcode) so tests can
 * build anything. */
static void sb_frame_b0(sb_t *s, uint8_t b0, const void *p, size_t len)
{
    uint8_t h[WS_FRAME_HEADER_MAX];
    uint8_t mask[4] = { (uint8_t)(0x37 + s->key), 0xfa, (uint8_t)(0x21 ^ s->key * 7), 0x3d };
    s->key++;
    size_t hl = ws_frame_write_header(h, b0 >> 7, (b0 >> 4) & 7, (ws_opcode_t)(b0 & 0xF), len,
                                      s->client ? NULL : mask);
    sb_raw(s, h, hl);
    size_t at = s->n;
    sb_raw(s, p, len);
    if (!s->client) ws_mask(s->d + at, len, mask, 0);
}

static void sb_frame(sb_t *s, int fin, int op, const void *p, size_t len)
{
    sb_frame_b0(s, (uint8_t)((fin ? 0x80 : 0) | op), p, len);
}

static void sb_free(sb_t *s) { free(s->d); memset(s, 0, sizeof *s); }

/* ---- feeding and expectations ---------------------------------------------- */

typedef struct ev {
    int      type;
    uint8_t *data;
    size_t   len;
    uint16_t code;
    int      compressed;
} ev_t;

typedef struct exp_ev {
    int            type;
    const void    *data;
    size_t         len;
    uint16_t       code;     /* CLOSE */
    int            compressed;
} exp_ev_t;

#define MAX_EV 64

typedef struct res {
    ev_t   ev[MAX_EV];
    int    n;
    int    err;
    size_t err_lo, err_hi;   /* the erroring chunk: stream bytes [lo, hi) */
    size_t heap_after;       /* heap bytes after one more empty feed */
    int    sticky_ok;
} res_t;

static void res_free(res_t *r)
{
    for (int i = 0; i < r->n; i++) free(r->ev[i].data);
    r->n = 0;
}

static ws_reader_config_t cfg_server(uint64_t max)
{
    ws_reader_config_t c = { .max_message_size = max, .role = WS_ROLE_SERVER };
    return c;
}

/* Feeds s[0..n) in chunks ending at cut[0..ncut) (ascending, the last = n). */
static void feed(const ws_reader_config_t *cfg, const uint8_t *s, size_t n,
                 const size_t *cut, size_t ncut, res_t *out)
{
    if (ncut && cut[ncut - 1] != n) abort();   /* the cuts must cover the stream */
    /* a compressed stream gets a fresh inflater per run, so a window kept
     * by one run (no context takeover reset) never leaks into the next */
    ws_reader_config_t local = *cfg;
    if (cfg->inflater) local.inflater = ws_inflater_new(15);
    ws_reader_t r;
    ws_reader_init(&r, &local);
    memset(out, 0, sizeof *out);
    out->sticky_ok = 1;
    size_t start = 0;
    for (size_t c = 0; c < ncut && !out->err; c++) {
        size_t clen = cut[c] - start;
        /* an exact-size heap copy per read, like a socket buffer */
        uint8_t *chunk = malloc(clen ? clen : 1);
        if (!chunk) abort();
        memcpy(chunk, s + start, clen);
        size_t off = 0;
        for (;;) {
            size_t used = 12345;
            ws_msg_t m;
            int rc = ws_reader_feed(&r, chunk + off, clen - off, &used, &m);
            if (rc < 0) {
                out->err = rc;
                out->err_lo = start;
                out->err_hi = cut[c];
                size_t u2;
                if (ws_reader_feed(&r, chunk, clen, &u2, &m) != rc) out->sticky_ok = 0;
                break;
            }
            if (used > clen - off) { out->err = -9999; break; }
            off += used;
            if (rc == 1) {
                if (out->n < MAX_EV) {
                    ev_t *e = &out->ev[out->n++];
                    e->type = m.type;
                    e->len = m.len;
                    e->data = malloc(m.len ? m.len : 1);
                    if (!e->data) abort();
                    if (m.len) memcpy(e->data, m.data, m.len);
                    e->code = m.close_code;
                    e->compressed = m.compressed;
                }
                continue;
            }
            if (off != clen) out->err = -9998;   /* 0 must mean "all consumed" */
            break;
        }
        free(chunk);
        start = cut[c];
    }
    if (!out->err) {
        size_t used;
        ws_msg_t m;
        ws_reader_feed(&r, NULL, 0, &used, &m);
        out->heap_after = ws_reader_heap_bytes(&r);
    }
    ws_reader_free(&r);
    if (cfg->inflater) ws_inflater_free(local.inflater);
}

static int same_events(const char *name, const char *mode, const res_t *r, const exp_ev_t *exp,
                       int nexp, int experr, long err_at)
{
    if (r->err != experr) {
        fprintf(stderr, "  %s [%s]: error %d (%s), want %d (%s)\n", name, mode, r->err,
                ws_err_str(r->err), experr, ws_err_str(experr));
        return 0;
    }
    if (experr && !r->sticky_ok) {
        fprintf(stderr, "  %s [%s]: error not sticky\n", name, mode);
        return 0;
    }
    if (experr && err_at >= 0 && !(r->err_lo < (size_t)err_at && (size_t)err_at <= r->err_hi)) {
        fprintf(stderr, "  %s [%s]: error in chunk [%zu,%zu), want the one holding byte %ld\n",
                name, mode, r->err_lo, r->err_hi, err_at - 1);
        return 0;
    }
    if (r->n != nexp) {
        fprintf(stderr, "  %s [%s]: %d events, want %d\n", name, mode, r->n, nexp);
        return 0;
    }
    for (int i = 0; i < nexp; i++) {
        const ev_t *e = &r->ev[i];
        const exp_ev_t *x = &exp[i];
        if (e->type != x->type || e->len != x->len || (x->len && memcmp(e->data, x->data, x->len)) ||
            (x->type == WS_MSG_CLOSE && e->code != x->code) || e->compressed != x->compressed) {
            fprintf(stderr, "  %s [%s]: event %d: type %d len %zu code %u c%d, want type %d len %zu code %u c%d\n",
                    name, mode, i, e->type, e->len, e->code, e->compressed, x->type, x->len, x->code,
                    x->compressed);
            return 0;
        }
    }
    if (!experr && r->heap_after != 0 && !(nexp && exp[nexp - 1].type == -1)) {
        fprintf(stderr, "  %s [%s]: %zu heap bytes left at the end\n", name, mode, r->heap_after);
        return 0;
    }
    return 1;
}

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

/* Runs one stream under every chunking.  err_at: the 1-based stream offset
 * of the byte at which the error becomes detectable (-1: don't check). */
static int run_all(const char *name, const ws_reader_config_t *cfg, const uint8_t *s, size_t n,
                   const exp_ev_t *exp, int nexp, int experr, long err_at)
{
    res_t r;
    int ok = 1;
    size_t *cut = malloc((n + 2) * sizeof *cut);
    if (!cut) abort();
    char mode[64];

    cut[0] = n;
    feed(cfg, s, n, cut, 1, &r);
    ok &= same_events(name, "whole", &r, exp, nexp, experr, err_at);
    res_free(&r);

    for (size_t i = 0; i < n; i++) cut[i] = i + 1;
    feed(cfg, s, n, cut, n ? n : 1, &r);
    ok &= same_events(name, "byte by byte", &r, exp, nexp, experr, err_at);
    /* byte by byte pins the error to its exact byte */
    if (ok && experr && err_at >= 0 && r.err_hi != (size_t)err_at) {
        fprintf(stderr, "  %s [byte by byte]: error at byte %zu, want %ld\n", name, r.err_hi, err_at);
        ok = 0;
    }
    res_free(&r);

    /* every split (sampled for long streams) */
    size_t step = n <= 2048 ? 1 : n / 512;
    for (size_t k = 1; ok && k < n; k += step) {
        cut[0] = k; cut[1] = n;
        feed(cfg, s, n, cut, 2, &r);
        snprintf(mode, sizeof mode, "split %zu", k);
        ok &= same_events(name, mode, &r, exp, nexp, experr, err_at);
        res_free(&r);
    }
    /* every pair of splits for short streams */
    for (size_t a = 1; ok && n <= 48 && a < n; a++) {
        for (size_t b = a + 1; ok && b < n; b++) {
            cut[0] = a; cut[1] = b; cut[2] = n;
            feed(cfg, s, n, cut, 3, &r);
            snprintf(mode, sizeof mode, "split %zu/%zu", a, b);
            ok &= same_events(name, mode, &r, exp, nexp, experr, err_at);
            res_free(&r);
        }
    }
    /* random chunk sizes */
    for (int it = 0; ok && it < 20; it++) {
        size_t k = 0, at = 0, maxc = 1 + (size_t)(rng() % (it < 10 ? 20 : 3000));
        while (at < n) {
            at += 1 + (size_t)(rng() % maxc);
            if (at > n) at = n;
            cut[k++] = at;
        }
        if (!k) cut[k++] = 0;
        feed(cfg, s, n, cut, k, &r);
        snprintf(mode, sizeof mode, "random %d", it);
        ok &= same_events(name, mode, &r, exp, nexp, experr, err_at);
        res_free(&r);
    }
    free(cut);
    return ok;
}

#define EV(t, str) { (t), (str), sizeof(str) - 1, 0, 0 }
#define EVN(t, p, n) { (t), (p), (n), 0, 0 }
#define EVC(code, str) { WS_MSG_CLOSE, (str), sizeof(str) - 1, (code), 0 }
#define NEV(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- Autobahn 1.*: text and binary messages of many sizes ------------------ */

static void t_sizes(void)
{
    static const size_t sizes[] = { 0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 125, 126, 127,
                                    128, 1000, 4095, 4096, 4097, 65535, 65536, 65537, 131072 + 3 };
    uint8_t *p = malloc(200000);
    if (!p) abort();
    for (size_t i = 0; i < 200000; i++) p[i] = (uint8_t)('*' + i % 50);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        for (int op = WS_OP_TEXT; op <= WS_OP_BINARY; op++) {
            sb_t s = { 0 };
            sb_frame(&s, 1, op, p, sizes[k]);
            exp_ev_t e[] = { EVN(op, p, sizes[k]) };
            char name[64];
            snprintf(name, sizeof name, "op %d size %zu", op, sizes[k]);
            ws_reader_config_t c = cfg_server(1 << 20);
            CHECK_MSG(run_all(name, &c, s.d, s.n, e, 1, 0, -1), "%s", name);
            sb_free(&s);
        }
    }
    /* binary with every byte value */
    for (size_t i = 0; i < 256 * 4; i++) p[i] = (uint8_t)i;
    sb_t s = { 0 };
    sb_frame(&s, 1, WS_OP_BINARY, p, 1024);
    exp_ev_t e[] = { EVN(WS_MSG_BINARY, p, 1024) };
    ws_reader_config_t c = cfg_server(1024);
    CHECK(run_all("binary 0..255", &c, s.d, s.n, e, 1, 0, -1));
    sb_free(&s);
    free(p);
}

/* Several messages back to back in one stream. */
static void t_back_to_back(void)
{
    sb_t s = { 0 };
    sb_frame(&s, 1, WS_OP_TEXT, "one", 3);
    sb_frame(&s, 1, WS_OP_BINARY, "\x00\x01\x02", 3);
    sb_frame(&s, 1, WS_OP_PING, "", 0);
    sb_frame(&s, 1, WS_OP_TEXT, "", 0);
    sb_frame(&s, 1, WS_OP_PONG, "p", 1);
    sb_frame(&s, 1, WS_OP_TEXT, "two", 3);
    exp_ev_t e[] = { EV(WS_MSG_TEXT, "one"), EV(WS_MSG_BINARY, "\x00\x01\x02"), EV(WS_MSG_PING, ""),
                     EV(WS_MSG_TEXT, ""), EV(WS_MSG_PONG, "p"), EV(WS_MSG_TEXT, "two") };
    ws_reader_config_t c = cfg_server(100);
    CHECK(run_all("back to back", &c, s.d, s.n, e, NEV(e), 0, -1));
    sb_free(&s);
}

/* ---- Autobahn 2.*: ping / pong ---------------------------------------------- */

static void t_ping_pong(void)
{
    uint8_t p[126];
    for (int i = 0; i < 126; i++) p[i] = (uint8_t)(i * 3);
    sb_t s = { 0 };
    sb_frame(&s, 1, WS_OP_PING, "", 0);
    sb_frame(&s, 1, WS_OP_PING, "Hello, world!", 13);
    sb_frame(&s, 1, WS_OP_PING, "\x00\xff\xfe\xfd\xfc\xfb\x00\xff", 8);   /* binary payload */
    sb_frame(&s, 1, WS_OP_PING, p, 125);
    sb_frame(&s, 1, WS_OP_PONG, "unsolicited", 11);
    exp_ev_t e[] = { EV(WS_MSG_PING, ""), EV(WS_MSG_PING, "Hello, world!"),
                     EV(WS_MSG_PING, "\x00\xff\xfe\xfd\xfc\xfb\x00\xff"), EVN(WS_MSG_PING, p, 125),
                     EV(WS_MSG_PONG, "unsolicited") };
    ws_reader_config_t c = cfg_server(16);
    CHECK(run_all("pings", &c, s.d, s.n, e, NEV(e), 0, -1));
    sb_free(&s);

    /* 2.5: ping with 126 bytes of payload */
    sb_frame(&s, 1, WS_OP_PING, p, 126);
    CHECK(run_all("ping 126", &c, s.d, s.n, NULL, 0, WS_E_FRAME_CTRL_TOO_BIG, 2));
    sb_free(&s);
    /* control frames never count against max_message_size */
    sb_frame(&s, 1, WS_OP_PING, p, 100);
    exp_ev_t e2[] = { EVN(WS_MSG_PING, p, 100) };
    ws_reader_config_t c1 = cfg_server(1);
    CHECK(run_all("ping over max", &c1, s.d, s.n, e2, 1, 0, -1));
    sb_free(&s);
}

/* ---- Autobahn 3.*: reserved bits --------------------------------------------- */

static void t_rsv(void)
{
    static const int ops[] = { WS_OP_TEXT, WS_OP_BINARY, WS_OP_PING, WS_OP_PONG, WS_OP_CLOSE };
    for (int rsv = 1; rsv < 8; rsv++) {
        for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
            sb_t s = { 0 };
            sb_frame(&s, 1, WS_OP_TEXT, "ok", 2);
            size_t at = s.n;
            sb_frame_b0(&s, (uint8_t)(0x80 | rsv << 4 | ops[k]), "bad", 3);
            sb_frame(&s, 1, WS_OP_PING, "after", 5);
            exp_ev_t e[] = { EV(WS_MSG_TEXT, "ok") };
            ws_reader_config_t c = cfg_server(100);
            char name[64];
            snprintf(name, sizeof name, "rsv %d op %d", rsv, ops[k]);
            CHECK_MSG(run_all(name, &c, s.d, s.n, e, 1, WS_E_FRAME_RSV, (long)at + 1), "%s", name);
            sb_free(&s);
        }
    }
    /* RSV1 on a continuation / control frame without deflate is a frame error */
    sb_t s = { 0 };
    sb_frame(&s, 0, WS_OP_TEXT, "a", 1);
    size_t at = s.n;
    sb_frame_b0(&s, 0x80 | 0x40 | WS_OP_CONT, "b", 1);
    ws_reader_config_t c = cfg_server(100);
    CHECK(run_all("rsv1 cont, no deflate", &c, s.d, s.n, NULL, 0, WS_E_FRAME_RSV, (long)at + 1));
    sb_free(&s);
}

/* ---- Autobahn 4.*: reserved opcodes ------------------------------------------ */

static void t_reserved_opcodes(void)
{
    static const int ops[] = { 3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF };
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        for (int variant = 0; variant < 3; variant++) {
            sb_t s = { 0 };
            sb_frame(&s, 1, WS_OP_TEXT, "hi", 2);
            size_t at = s.n;
            if (variant == 0) sb_frame(&s, 1, ops[k], "", 0);
            else if (variant == 1) sb_frame(&s, 1, ops[k], "reserved opcode payload", 23);
            else sb_frame_b0(&s, (uint8_t)ops[k], "x", 1);   /* FIN=0 too */
            sb_frame(&s, 1, WS_OP_PING, "", 0);
            exp_ev_t e[] = { EV(WS_MSG_TEXT, "hi") };
            ws_reader_config_t c = cfg_server(100);
            char name[64];
            snprintf(name, sizeof name, "opcode %d v%d", ops[k], variant);
            CHECK_MSG(run_all(name, &c, s.d, s.n, e, 1, WS_E_FRAME_OPCODE, (long)at + 1), "%s", name);
            sb_free(&s);
        }
    }
}

/* ---- Autobahn 5.*: fragmentation --------------------------------------------- */

static void t_fragmentation(void)
{
    ws_reader_config_t c = cfg_server(1000);
    const char *msg = "Hello, fragmented world!";
    size_t L = strlen(msg);
    /* 1..L fragments of every equal-ish size, plus empty fragments */
    for (size_t nf = 1; nf <= L; nf++) {
        for (int empties = 0; empties < 2; empties++) {
            for (int op = WS_OP_TEXT; op <= WS_OP_BINARY; op++) {
                sb_t s = { 0 };
                size_t at = 0;
                for (size_t f = 0; f < nf; f++) {
                    size_t end = L * (f + 1) / nf;
                    if (empties) sb_frame(&s, 0, f == 0 ? op : WS_OP_CONT, "", 0);
                    sb_frame(&s, f + 1 == nf && !empties, (f == 0 && !empties) ? op : WS_OP_CONT,
                             msg + at, end - at);
                    at = end;
                }
                if (empties) sb_frame(&s, 1, WS_OP_CONT, "", 0);
                exp_ev_t e[] = { EVN(op, msg, L) };
                char name[64];
                snprintf(name, sizeof name, "%zu fragments e%d op %d", nf, empties, op);
                CHECK_MSG(run_all(name, &c, s.d, s.n, e, 1, 0, -1), "%s", name);
                sb_free(&s);
            }
        }
    }
    /* an empty message in three empty fragments */
    sb_t s = { 0 };
    sb_frame(&s, 0, WS_OP_TEXT, "", 0);
    sb_frame(&s, 0, WS_OP_CONT, "", 0);
    sb_frame(&s, 1, WS_OP_CONT, "", 0);
    exp_ev_t e0[] = { EV(WS_MSG_TEXT, "") };
    CHECK(run_all("empty fragments", &c, s.d, s.n, e0, 1, 0, -1));
    sb_free(&s);
}

/* 5.6-5.9, 5.19-5.20: control frames between fragments. */
static void t_interleaved_control(void)
{
    ws_reader_config_t c = cfg_server(1000);
    sb_t s = { 0 };
    sb_frame(&s, 0, WS_OP_TEXT, "fragment1", 9);
    sb_frame(&s, 1, WS_OP_PING, "ping1", 5);
    sb_frame(&s, 0, WS_OP_CONT, "fragment2", 9);
    sb_frame(&s, 1, WS_OP_PONG, "pong", 4);
    sb_frame(&s, 0, WS_OP_CONT, "", 0);
    sb_frame(&s, 1, WS_OP_PING, "", 0);
    sb_frame(&s, 1, WS_OP_PING, "ping3 with a longer payload that will be split across reads", 59);
    sb_frame(&s, 1, WS_OP_CONT, "fragment3", 9);
    sb_frame(&s, 1, WS_OP_TEXT, "next", 4);
    exp_ev_t e[] = { EV(WS_MSG_PING, "ping1"), EV(WS_MSG_PONG, "pong"), EV(WS_MSG_PING, ""),
                     EV(WS_MSG_PING, "ping3 with a longer payload that will be split across reads"),
                     EV(WS_MSG_TEXT, "fragment1fragment2fragment3"), EV(WS_MSG_TEXT, "next") };
    CHECK(run_all("interleaved control", &c, s.d, s.n, e, NEV(e), 0, -1));
    sb_free(&s);

    /* close in the middle of a fragmented message ends everything */
    sb_frame(&s, 0, WS_OP_BINARY, "part", 4);
    sb_frame(&s, 1, WS_OP_CLOSE, "\x03\xe8" "bye", 5);
    sb_frame(&s, 1, WS_OP_CONT, "never", 5);
    exp_ev_t e2[] = { EVC(1000, "bye") };
    CHECK(run_all("close mid-message", &c, s.d, s.n, e2, 1, 0, -1));
    sb_free(&s);
}

static void t_fragmentation_errors(void)
{
    ws_reader_config_t c = cfg_server(1000);
    sb_t s = { 0 };
    size_t at;

    /* 5.1/5.2: fragmented ping / pong */
    sb_frame(&s, 0, WS_OP_PING, "frag1", 5);
    sb_frame(&s, 1, WS_OP_CONT, "frag2", 5);
    CHECK(run_all("fragmented ping", &c, s.d, s.n, NULL, 0, WS_E_FRAME_CTRL_FRAG, 1));
    sb_free(&s);
    sb_frame(&s, 0, WS_OP_PONG, "", 0);
    CHECK(run_all("fragmented pong", &c, s.d, s.n, NULL, 0, WS_E_FRAME_CTRL_FRAG, 1));
    sb_free(&s);
    sb_frame(&s, 0, WS_OP_TEXT, "a", 1);
    at = s.n;
    sb_frame(&s, 0, WS_OP_CLOSE, "", 0);
    CHECK(run_all("fragmented close inside message", &c, s.d, s.n, NULL, 0, WS_E_FRAME_CTRL_FRAG, (long)at + 1));
    sb_free(&s);

    /* 5.9-5.12: continuation with nothing to continue.  Message-level rules
     * are checked once the whole header is in (6 bytes, masked). */
    sb_frame(&s, 1, WS_OP_CONT, "fragment", 8);
    CHECK(run_all("lone continuation fin", &c, s.d, s.n, NULL, 0, WS_E_MSG_BAD_CONT, 6));
    sb_free(&s);
    sb_frame(&s, 0, WS_OP_CONT, "fragment", 8);
    sb_frame(&s, 1, WS_OP_TEXT, "x", 1);
    CHECK(run_all("lone continuation", &c, s.d, s.n, NULL, 0, WS_E_MSG_BAD_CONT, 6));
    sb_free(&s);
    /* 5.13-5.15: continuation after a complete message */
    sb_frame(&s, 1, WS_OP_TEXT, "done", 4);
    at = s.n;
    sb_frame(&s, 1, WS_OP_CONT, "more", 4);
    exp_ev_t e1[] = { EV(WS_MSG_TEXT, "done") };
    CHECK(run_all("continuation after final", &c, s.d, s.n, e1, 1, WS_E_MSG_BAD_CONT, (long)at + 6));
    sb_free(&s);

    /* 5.16-5.18: a new data frame inside a fragmented message */
    for (int op = WS_OP_TEXT; op <= WS_OP_BINARY; op++) {
        for (int fin = 0; fin < 2; fin++) {
            sb_frame(&s, 0, WS_OP_TEXT, "frag1", 5);
            sb_frame(&s, 1, WS_OP_PING, "", 0);
            at = s.n;
            sb_frame(&s, fin, op, "frag2", 5);
            exp_ev_t e2[] = { EV(WS_MSG_PING, "") };
            CHECK(run_all("data inside fragmented", &c, s.d, s.n, e2, 1, WS_E_MSG_EXPECTED_CONT, (long)at + 6));
            sb_free(&s);
        }
    }
}

/* ---- Autobahn 6.*: UTF-8 ----------------------------------------------------- */

static void t_utf8_valid(void)
{
    ws_reader_config_t c = cfg_server(4096);
    static const char *const texts[] = {
        "",
        "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!",
        "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
        "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\xef\xbf\xbf\xed\x9f\xbf\xee\x80\x80",
        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e emoji \xf0\x9f\x98\x80",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        size_t L = strlen(texts[i]);
        /* one frame, then every two-fragment split (code points split across
         * fragments included), then one fragment per byte (6.2.4) */
        for (size_t k = 0; k <= L + 1; k++) {
            sb_t s = { 0 };
            if (k == 0) {
                sb_frame(&s, 1, WS_OP_TEXT, texts[i], L);
            } else if (k <= L) {
                sb_frame(&s, 0, WS_OP_TEXT, texts[i], k);
                sb_frame(&s, 1, WS_OP_CONT, texts[i] + k, L - k);
            } else {
                for (size_t j = 0; j < L; j++)
                    sb_frame(&s, j + 1 == L, j ? WS_OP_CONT : WS_OP_TEXT, texts[i] + j, 1);
                if (!L) sb_frame(&s, 1, WS_OP_TEXT, "", 0);
            }
            exp_ev_t e[] = { EVN(WS_MSG_TEXT, texts[i], L) };
            char name[64];
            snprintf(name, sizeof name, "utf8 valid %zu k %zu", i, k);
            CHECK_MSG(run_all(name, &c, s.d, s.n, e, 1, 0, -1), "%s", name);
            sb_free(&s);
        }
    }
    /* invalid UTF-8 in a *binary* message is fine */
    sb_t s = { 0 };
    sb_frame(&s, 1, WS_OP_BINARY, "\xff\xfe\xc0\x80", 4);
    exp_ev_t e[] = { EV(WS_MSG_BINARY, "\xff\xfe\xc0\x80") };
    CHECK(run_all("binary not utf8", &c, s.d, s.n, e, 1, 0, -1));
    sb_free(&s);
}

/* The error is reported at the first bad byte: within a frame, across
 * fragments, in the last fragment only, and when a fragment boundary
 * splits a code point. */
static void t_utf8_invalid(void)
{
    ws_reader_config_t c = cfg_server(4096);
    static const struct { const char *s; size_t bad; } v[] = {
        { "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64", 12 },
        { "Hello\xff world", 5 },
        { "\xc0\xaf", 0 },
        { "abc\xe0\x80\xaf", 4 },
        { "\xf4\x90\x80\x80", 1 },
        { "\xf8\x88\x80\x80\x80", 0 },
        { "\xed\xbf\xbf tail", 1 },
        { "abcdefghijklmnopqrstuvwxyz0123456789\x80", 36 },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t L = strlen(v[i].s);
        for (size_t k = 0; k <= L; k++) {
            /* k == 0: one frame; else two fragments split at k */
            sb_t s = { 0 };
            size_t first_hdr = 0, second_hdr = 0;
            if (k == 0) {
                sb_frame(&s, 1, WS_OP_TEXT, v[i].s, L);
                first_hdr = s.n - L;
            } else {
                sb_frame(&s, 0, WS_OP_TEXT, v[i].s, k);
                first_hdr = s.n - k;
                sb_frame(&s, 1, WS_OP_CONT, v[i].s + k, L - k);
                second_hdr = s.n - (L - k);
            }
            /* stream offset of the bad byte */
            size_t bad = v[i].bad < k || k == 0 ? first_hdr + v[i].bad : second_hdr + (v[i].bad - k);
            char name[64];
            snprintf(name, sizeof name, "utf8 invalid %zu k %zu", i, k);
            CHECK_MSG(run_all(name, &c, s.d, s.n, NULL, 0, WS_E_UTF8, (long)bad + 1), "%s", name);
            sb_free(&s);
        }
    }
    /* 6.3.2-style: valid in every fragment but the last */
    sb_t s = { 0 };
    sb_frame(&s, 0, WS_OP_TEXT, "\xce\xba\xe1\xbd\xb9", 5);
    sb_frame(&s, 0, WS_OP_CONT, "\xcf\x83\xce\xbc\xce\xb5", 6);
    sb_frame(&s, 1, WS_OP_CONT, "\xf4\x90\x80\x80", 4);
    CHECK(run_all("invalid in last fragment", &c, s.d, s.n, NULL, 0, WS_E_UTF8, (long)s.n - 2));
    sb_free(&s);
    /* message ends inside a code point: detected at the end of the last frame */
    sb_frame(&s, 0, WS_OP_TEXT, "ab\xe2", 3);
    sb_frame(&s, 1, WS_OP_CONT, "\x82", 1);
    CHECK(run_all("truncated at end", &c, s.d, s.n, NULL, 0, WS_E_UTF8, (long)s.n));
    sb_free(&s);
    sb_frame(&s, 1, WS_OP_TEXT, "\xf0\x9f\x98", 3);
    CHECK(run_all("truncated single frame", &c, s.d, s.n, NULL, 0, WS_E_UTF8, (long)s.n));
    sb_free(&s);
    /* a frame may end mid code point when more fragments follow */
    sb_frame(&s, 0, WS_OP_TEXT, "\xf0", 1);
    sb_frame(&s, 0, WS_OP_CONT, "\x9f", 1);
    sb_frame(&s, 1, WS_OP_PING, "", 0);
    sb_frame(&s, 0, WS_OP_CONT, "\x98", 1);
    sb_frame(&s, 1, WS_OP_CONT, "\x80", 1);
    exp_ev_t e[] = { EV(WS_MSG_PING, ""), EV(WS_MSG_TEXT, "\xf0\x9f\x98\x80") };
    CHECK(run_all("code point over 4 frames", &c, s.d, s.n, e, 2, 0, -1));
    sb_free(&s);
    /* invalid byte in a long frame fails before the frame is complete */
    uint8_t big[3000];
    memset(big, 'a', sizeof big);
    big[100] = 0xff;
    sb_frame(&s, 1, WS_OP_TEXT, big, sizeof big);
    CHECK(run_all("bad byte early in a long frame", &c, s.d, s.n, NULL, 0, WS_E_UTF8, (long)(s.n - 3000 + 101)));
    sb_free(&s);
}

/* ---- Autobahn 7.*: close ------------------------------------------------------ */

static void t_close(void)
{
    ws_reader_config_t c = cfg_server(100);
    sb_t s = { 0 };
    /* 7.3.1 empty close */
    sb_frame(&s, 1, WS_OP_CLOSE, "", 0);
    exp_ev_t e1[] = { EVC(WS_CLOSE_NO_STATUS, "") };
    CHECK(run_all("close empty", &c, s.d, s.n, e1, 1, 0, -1));
    sb_free(&s);
    /* 7.3.2 close with 1 byte */
    sb_frame(&s, 1, WS_OP_CLOSE, "\x03", 1);
    CHECK(run_all("close len 1", &c, s.d, s.n, NULL, 0, WS_E_MSG_CLOSE_LEN1, (long)s.n));
    sb_free(&s);
    /* 7.3.3 code only, 7.3.4 code + reason, 7.3.5 max reason */
    sb_frame(&s, 1, WS_OP_CLOSE, "\x03\xe8", 2);
    exp_ev_t e3[] = { EVC(1000, "") };
    CHECK(run_all("close code only", &c, s.d, s.n, e3, 1, 0, -1));
    sb_free(&s);
    sb_frame(&s, 1, WS_OP_CLOSE, "\x03\xe8" "Hello World!", 14);
    exp_ev_t e4[] = { EVC(1000, "Hello World!") };
    CHECK(run_all("close code reason", &c, s.d, s.n, e4, 1, 0, -1));
    sb_free(&s);
    char reason[126];
    reason[0] = 0x03; reason[1] = (char)0xe8;
    memset(reason + 2, '*', 123);
    sb_frame(&s, 1, WS_OP_CLOSE, reason, 125);
    exp_ev_t e5[] = { { WS_MSG_CLOSE, reason + 2, 123, 1000, 0 } };
    CHECK(run_all("close max reason", &c, s.d, s.n, e5, 1, 0, -1));
    sb_free(&s);
    /* 7.3.6 reason too long: a control frame over 125 */
    memset(reason + 2, '*', 124);
    sb_frame(&s, 1, WS_OP_CLOSE, reason, 126);
    CHECK(run_all("close too long", &c, s.d, s.n, NULL, 0, WS_E_FRAME_CTRL_TOO_BIG, 2));
    sb_free(&s);
    /* 7.5.1 invalid UTF-8 reason */
    sb_frame(&s, 1, WS_OP_CLOSE, "\x03\xe8\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64", 18);
    CHECK(run_all("close reason utf8", &c, s.d, s.n, NULL, 0, WS_E_MSG_CLOSE_UTF8, (long)s.n));
    sb_free(&s);
    sb_frame(&s, 1, WS_OP_CLOSE, "\x03\xe8\xe2\x82", 4);    /* reason ends mid code point */
    CHECK(run_all("close reason truncated", &c, s.d, s.n, NULL, 0, WS_E_MSG_CLOSE_UTF8, (long)s.n));
    sb_free(&s);

    /* 7.7.*: valid codes; 7.9.*: invalid codes */
    static const unsigned valid[] = { 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
                                      1013, 1014, 3000, 3999, 4000, 4999 };
    static const unsigned invalid[] = { 0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999,
                                        5000, 65535 };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        uint8_t p[2] = { (uint8_t)(valid[i] >> 8), (uint8_t)valid[i] };
        sb_frame(&s, 1, WS_OP_CLOSE, p, 2);
        exp_ev_t e[] = { { WS_MSG_CLOSE, "", 0, (uint16_t)valid[i], 0 } };
        char name[32];
        snprintf(name, sizeof name, "close %u", valid[i]);
        CHECK_MSG(run_all(name, &c, s.d, s.n, e, 1, 0, -1), "%s", name);
        sb_free(&s);
    }
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        uint8_t p[5] = { (uint8_t)(invalid[i] >> 8), (uint8_t)invalid[i], 'a', 'b', 'c' };
        for (int withreason = 0; withreason < 2; withreason++) {
            sb_frame(&s, 1, WS_OP_CLOSE, p, withreason ? 5 : 2);
            char name[32];
            snprintf(name, sizeof name, "close %u", invalid[i]);
            CHECK_MSG(run_all(name, &c, s.d, s.n, NULL, 0, WS_E_MSG_CLOSE_CODE, (long)s.n), "%s", name);
            sb_free(&s);
        }
    }
}

/* 7.1.*: nothing after a close is looked at, not even garbage. */
static void t_after_close(void)
{
    ws_reader_config_t c = cfg_server(100);
    sb_t s = { 0 };
    sb_frame(&s, 1, WS_OP_TEXT, "before", 6);
    sb_frame(&s, 1, WS_OP_CLOSE, "\x03\xe8", 2);
    sb_frame(&s, 1, WS_OP_TEXT, "after", 5);
    sb_frame(&s, 1, WS_OP_PING, "after", 5);
    sb_raw(&s, "\xff\xff\xff\xff garbage", 12);
    exp_ev_t e[] = { EV(WS_MSG_TEXT, "before"), EVC(1000, "") };
    CHECK(run_all("after close", &c, s.d, s.n, e, 2, 0, -1));
    sb_free(&s);

    /* and the reader keeps discarding on later feeds */
    sb_frame(&s, 1, WS_OP_CLOSE, "", 0);
    ws_reader_t r;
    ws_reader_init(&r, &c);
    size_t used;
    ws_msg_t m;
    CHECK_INT(ws_reader_feed(&r, s.d, s.n, &used, &m), 1);
    CHECK_INT(m.type, WS_MSG_CLOSE);
    CHECK_INT(m.close_code, 1005);
    CHECK_INT(used, s.n);
    uint8_t junk[7] = { 0x81, 0x05, 'x', 'x', 'x', 'x', 'x' };
    for (int i = 0; i < 3; i++) {
        CHECK_INT(ws_reader_feed(&r, junk, sizeof junk, &used, &m), 0);
        CHECK_INT(used, sizeof junk);
    }
    CHECK_INT(ws_reader_heap_bytes(&r), 0);
    ws_reader_free(&r);
    sb_free(&s);
}

/* ---- Autobahn 9.*, 10.*: sizes and limits ------------------------------------ */

static void t_max_size(void)
{
    uint8_t *p = malloc(70000);
    if (!p) abort();
    memset(p, 'z', 70000);
    sb_t s = { 0 };
    /* exactly at the limit is fine, one over fails at the header — before
     * any payload arrives */
    ws_reader_config_t c = cfg_server(1000);
    sb_frame(&s, 1, WS_OP_TEXT, p, 1000);
    exp_ev_t e[] = { EVN(WS_MSG_TEXT, p, 1000) };
    CHECK(run_all("at limit", &c, s.d, s.n, e, 1, 0, -1));
    sb_free(&s);
    sb_frame(&s, 1, WS_OP_BINARY, p, 1001);
    CHECK(run_all("over limit", &c, s.d, s.n, NULL, 0, WS_E_MSG_TOO_BIG, 8));
    sb_free(&s);
    /* announced 64-bit length, no payload at all */
    static const uint8_t huge[] = { 0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4 };
    CHECK(run_all("huge announced", &c, huge, sizeof huge, NULL, 0, WS_E_MSG_TOO_BIG, 14));
    static const uint8_t maxlen[] = { 0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4 };
    CHECK(run_all("max announced", &c, maxlen, sizeof maxlen, NULL, 0, WS_E_MSG_TOO_BIG, 14));
    /* across fragments: the fragment that would pass the limit fails at its header */
    sb_frame(&s, 0, WS_OP_TEXT, p, 600);
    sb_frame(&s, 1, WS_OP_PING, "", 0);
    sb_frame(&s, 0, WS_OP_CONT, p, 400);
    size_t at = s.n;
    sb_frame(&s, 1, WS_OP_CONT, p, 1);
    exp_ev_t e2[] = { EV(WS_MSG_PING, "") };
    CHECK(run_all("over limit across fragments", &c, s.d, s.n, e2, 1, WS_E_MSG_TOO_BIG, (long)at + 6));
    sb_free(&s);
    sb_frame(&s, 0, WS_OP_TEXT, p, 600);
    sb_frame(&s, 0, WS_OP_CONT, p, 400);
    sb_frame(&s, 1, WS_OP_CONT, p, 0);
    exp_ev_t e3[] = { EVN(WS_MSG_TEXT, p, 1000) };
    CHECK(run_all("at limit across fragments", &c, s.d, s.n, e3, 1, 0, -1));
    sb_free(&s);
    /* the limit is per message: many messages at the limit are fine */
    for (int i = 0; i < 5; i++) sb_frame(&s, 1, WS_OP_BINARY, p, 1000);
    exp_ev_t e4[5];
    for (int i = 0; i < 5; i++) e4[i] = (exp_ev_t)EVN(WS_MSG_BINARY, p, 1000);
    CHECK(run_all("many at limit", &c, s.d, s.n, e4, 5, 0, -1));
    sb_free(&s);
    free(p);
    CHECK_INT(ws_err_close_code(WS_E_MSG_TOO_BIG), 1009);
}

/* 9.*-like: big messages in many fragments, fed in socket-sized reads. */
static void t_big_fragmented(void)
{
    size_t L = 1u << 20;
    uint8_t *p = malloc(L);
    if (!p) abort();
    /* valid UTF-8 with multi-byte sequences crossing every kind of boundary */
    static const char pat[] = "abc\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80xyz";
    for (size_t i = 0; i < L;) {
        size_t k = sizeof pat - 1;
        if (i + k > L) { p[i++] = '.'; continue; }
        memcpy(p + i, pat, k);
        i += k;
    }
    static const size_t fragsz[] = { 64, 256, 1000, 4096, 65536, 1u << 20 };
    for (size_t f = 0; f < sizeof fragsz / sizeof fragsz[0]; f++) {
        sb_t s = { 0 };
        for (size_t at = 0; at < L; at += fragsz[f]) {
            size_t n = L - at < fragsz[f] ? L - at : fragsz[f];
            sb_frame(&s, at + n == L, at ? WS_OP_CONT : WS_OP_TEXT, p + at, n);
        }
        ws_reader_config_t c = cfg_server(L);
        static const size_t reads[] = { 1 << 20, 65536, 4096, 1500, 999 };
        for (size_t rd = 0; rd < sizeof reads / sizeof reads[0]; rd++) {
            size_t ncut = 0, *cut = malloc((s.n / reads[rd] + 2) * sizeof *cut);
            if (!cut) abort();
            for (size_t at = reads[rd]; at < s.n; at += reads[rd]) cut[ncut++] = at;
            cut[ncut++] = s.n;
            res_t r;
            feed(&c, s.d, s.n, cut, ncut, &r);
            exp_ev_t e[] = { EVN(WS_MSG_TEXT, p, L) };
            CHECK_MSG(same_events("big fragmented", "reads", &r, e, 1, 0, -1), "frag %zu read %zu",
                      fragsz[f], reads[rd]);
            res_free(&r);
            free(cut);
        }
        sb_free(&s);
    }
    free(p);
}

/* ---- memory, zero copy, stickiness, roles ---------------------------------------- */

static void t_zero_copy(void)
{
    ws_reader_config_t c = cfg_server(1 << 20);
    sb_t s = { 0 };
    uint8_t big[70000];
    memset(big, 'q', sizeof big);
    sb_frame(&s, 1, WS_OP_TEXT, "Hello", 5);
    sb_frame(&s, 1, WS_OP_PING, "ping", 4);
    sb_frame(&s, 1, WS_OP_BINARY, big, sizeof big);
    ws_reader_t r;
    ws_reader_init(&r, &c);
    size_t used, off = 0;
    ws_msg_t m;
    CHECK_INT(ws_reader_feed(&r, s.d, s.n, &used, &m), 1);
    CHECK(m.data == s.d + 6);                    /* in place, unmasked */
    CHECK_MEM(s.d + 6, "Hello", 5);
    CHECK_INT(ws_reader_heap_bytes(&r), 0);
    off += used;
    CHECK_INT(ws_reader_feed(&r, s.d + off, s.n - off, &used, &m), 1);
    CHECK(m.type == WS_MSG_PING && m.data == s.d + off + 6 && m.len == 4);
    off += used;
    CHECK_INT(ws_reader_feed(&r, s.d + off, s.n - off, &used, &m), 1);
    CHECK(m.type == WS_MSG_BINARY && m.data == s.d + off + 14 && m.len == sizeof big);
    CHECK_MEM(m.data, big, sizeof big);
    CHECK_INT(ws_reader_heap_bytes(&r), 0);
    off += used;
    CHECK_INT(off, s.n);
    CHECK_INT(ws_reader_feed(&r, s.d + off, 0, &used, &m), 0);
    CHECK_INT(used, 0);
    /* a zero-copy message after a spilled header: still in place */
    sb_free(&s);
    sb_frame(&s, 1, WS_OP_TEXT, "abcdef", 6);
    CHECK_INT(ws_reader_feed(&r, s.d, 3, &used, &m), 0);
    CHECK_INT(used, 3);
    CHECK_INT(ws_reader_feed(&r, s.d + 3, s.n - 3, &used, &m), 1);
    CHECK(m.data == s.d + 6);
    CHECK_INT(ws_reader_heap_bytes(&r), 0);
    ws_reader_free(&r);
    sb_free(&s);
}

static void t_heap(void)
{
    ws_reader_config_t c = cfg_server(1 << 20);
    sb_t s = { 0 };
    uint8_t big[5000];
    memset(big, 'h', sizeof big);
    sb_frame(&s, 0, WS_OP_BINARY, big, 3000);
    size_t mid = s.n;
    sb_frame(&s, 1, WS_OP_CONT, big, 2000);
    ws_reader_t r;
    ws_reader_init(&r, &c);
    size_t used;
    ws_msg_t m;
    CHECK_INT(ws_reader_feed(&r, s.d, mid, &used, &m), 0);
    size_t h1 = ws_reader_heap_bytes(&r);
    CHECK(h1 >= 3000 && h1 <= 2 * 3000 + 256);   /* grows with bytes received, not more */
    CHECK_INT(ws_reader_feed(&r, s.d + mid, s.n - mid, &used, &m), 1);
    CHECK_INT(m.len, 5000);
    CHECK(ws_reader_heap_bytes(&r) >= 5000);
    CHECK_INT(ws_reader_feed(&r, s.d, 0, &used, &m), 0);
    CHECK_INT(ws_reader_heap_bytes(&r), 0);
    sb_free(&s);

    /* a split control frame spills into 125 bytes, released after */
    sb_frame(&s, 1, WS_OP_PING, "0123456789", 10);
    CHECK_INT(ws_reader_feed(&r, s.d, 9, &used, &m), 0);
    CHECK_INT(ws_reader_heap_bytes(&r), WS_CONTROL_MAX);
    CHECK_INT(ws_reader_feed(&r, s.d + 9, s.n - 9, &used, &m), 1);
    CHECK_MEM(m.data, "0123456789", 10);
    CHECK_INT(ws_reader_feed(&r, s.d, 0, &used, &m), 0);
    CHECK_INT(ws_reader_heap_bytes(&r), 0);
    sb_free(&s);

    /* a big announced frame allocates nothing until bytes arrive */
    sb_frame(&s, 0, WS_OP_BINARY, big, 5000);
    CHECK_INT(ws_reader_feed(&r, s.d, 8, &used, &m), 0);
    CHECK_INT(ws_reader_heap_bytes(&r), 0);
    CHECK_INT(ws_reader_feed(&r, s.d + 8, 10, &used, &m), 0);
    CHECK(ws_reader_heap_bytes(&r) <= 256);
    ws_reader_free(&r);
    CHECK_INT(ws_reader_heap_bytes(&r), 0);
    sb_free(&s);

    /* the reader's own state stays small */
    CHECK(sizeof(ws_reader_t) <= 160);
}

static void t_sticky(void)
{
    ws_reader_config_t c = cfg_server(100);
    ws_reader_t r;
    ws_reader_init(&r, &c);
    uint8_t bad[2] = { 0x83, 0x80 };
    size_t used;
    ws_msg_t m;
    CHECK_INT(ws_reader_feed(&r, bad, 2, &used, &m), WS_E_FRAME_OPCODE);
    sb_t s = { 0 };
    sb_frame(&s, 1, WS_OP_TEXT, "fine", 4);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(ws_reader_feed(&r, s.d, s.n, &used, &m), WS_E_FRAME_OPCODE);
        CHECK_INT(used, 0);
    }
    ws_reader_free(&r);
    /* re-initialised, the reader works again */
    ws_reader_init(&r, &c);
    CHECK_INT(ws_reader_feed(&r, s.d, s.n, &used, &m), 1);
    ws_reader_free(&r);
    sb_free(&s);
}

static void t_client_role(void)
{
    ws_reader_config_t c = { .max_message_size = 1000, .role = WS_ROLE_CLIENT };
    sb_t s = { .client = 1 };
    sb_frame(&s, 0, WS_OP_TEXT, "Hel", 3);
    sb_frame(&s, 1, WS_OP_PING, "p", 1);
    sb_frame(&s, 1, WS_OP_CONT, "lo", 2);
    sb_frame(&s, 1, WS_OP_BINARY, "\x01\x02", 2);
    sb_frame(&s, 1, WS_OP_CLOSE, "\x03\xe9" "going", 7);
    exp_ev_t e[] = { EV(WS_MSG_PING, "p"), EV(WS_MSG_TEXT, "Hello"), EV(WS_MSG_BINARY, "\x01\x02"),
                     EVC(1001, "going") };
    CHECK(run_all("client role", &c, s.d, s.n, e, NEV(e), 0, -1));
    sb_free(&s);
    /* the RFC's unmasked "Hello" */
    static const uint8_t hello[] = { 0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
    exp_ev_t e1[] = { EV(WS_MSG_TEXT, "Hello") };
    CHECK(run_all("client rfc hello", &c, hello, sizeof hello, e1, 1, 0, -1));
    /* masked frames are refused by a client */
    sb_t m = { 0 };
    sb_frame(&m, 1, WS_OP_TEXT, "Hello", 5);
    CHECK(run_all("client masked", &c, m.d, m.n, NULL, 0, WS_E_FRAME_MASKED, 2));
    sb_free(&m);
    /* and unmasked frames by a server */
    ws_reader_config_t sc = cfg_server(1000);
    CHECK(run_all("server unmasked", &sc, hello, sizeof hello, NULL, 0, WS_E_FRAME_UNMASKED, 2));
}

/* The RFC 6455 §5.7 examples through the reader. */
static void t_rfc_examples(void)
{
    ws_reader_config_t c = cfg_server(1 << 17);
    static const uint8_t masked[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    exp_ev_t e[] = { EV(WS_MSG_TEXT, "Hello") };
    CHECK(run_all("rfc masked hello", &c, masked, sizeof masked, e, 1, 0, -1));
    ws_reader_config_t cc = { .max_message_size = 1 << 17, .role = WS_ROLE_CLIENT };
    static const uint8_t frag[] = { 0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f };
    CHECK(run_all("rfc fragmented hello", &cc, frag, sizeof frag, e, 1, 0, -1));
    static const uint8_t ping[] = { 0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
    exp_ev_t ep[] = { EV(WS_MSG_PING, "Hello") };
    CHECK(run_all("rfc ping", &cc, ping, sizeof ping, ep, 1, 0, -1));
    static const uint8_t pong[] = { 0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    exp_ev_t eq[] = { EV(WS_MSG_PONG, "Hello") };
    CHECK(run_all("rfc pong", &c, pong, sizeof pong, eq, 1, 0, -1));
    /* 256 bytes and 64 KiB binary, unmasked, for a client */
    uint8_t *b = calloc(1, 65536 + 10);
    if (!b) abort();
    memcpy(b, "\x82\x7e\x01\x00", 4);
    for (int i = 0; i < 256; i++) b[4 + i] = (uint8_t)i;
    exp_ev_t e256[] = { EVN(WS_MSG_BINARY, b + 4, 256) };
    CHECK(run_all("rfc 256", &cc, b, 260, e256, 1, 0, -1));
    memcpy(b, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
    for (int i = 0; i < 65536; i++) b[10 + i] = (uint8_t)(i * 31);
    uint8_t *copy = malloc(65536);
    if (!copy) abort();
    memcpy(copy, b + 10, 65536);
    exp_ev_t e64[] = { EVN(WS_MSG_BINARY, copy, 65536) };
    CHECK(run_all("rfc 64k", &cc, b, 65546, e64, 1, 0, -1));
    free(copy);
    free(b);
}

/* Each error of the reader maps to the close code RFC 6455 asks for. */
static void t_close_codes(void)
{
    static const struct { int err; uint16_t code; } map[] = {
        { WS_E_FRAME_RSV, 1002 }, { WS_E_FRAME_OPCODE, 1002 }, { WS_E_FRAME_UNMASKED, 1002 },
        { WS_E_FRAME_MASKED, 1002 }, { WS_E_FRAME_CTRL_TOO_BIG, 1002 }, { WS_E_FRAME_CTRL_FRAG, 1002 },
        { WS_E_FRAME_LEN_NONCANON, 1002 }, { WS_E_FRAME_LEN_MSB, 1002 },
        { WS_E_MSG_BAD_CONT, 1002 }, { WS_E_MSG_EXPECTED_CONT, 1002 }, { WS_E_MSG_TOO_BIG, 1009 },
        { WS_E_MSG_CLOSE_LEN1, 1002 }, { WS_E_MSG_CLOSE_CODE, 1002 }, { WS_E_MSG_CLOSE_UTF8, 1007 },
        { WS_E_MSG_RSV1_CONT, 1002 }, { WS_E_UTF8, 1007 }, { WS_E_INFLATE, 1007 },
        { WS_E_INFLATE_TOO_BIG, 1009 },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        CHECK_MSG(ws_err_close_code(map[i].err) == map[i].code, "err %d", map[i].err);
        CHECK(strlen(ws_err_str(map[i].err)) <= 123);
    }
}

static void t_close_reply(void)
{
    uint8_t out[2 + WS_CONTROL_MAX];
    CHECK_INT(ws_close_reply(out, WS_CLOSE_NO_STATUS), 2);
    CHECK_MEM(out, "\x88\x00", 2);
    CHECK_INT(ws_close_reply(out, 1000), 4);
    CHECK_MEM(out, "\x88\x02\x03\xe8", 4);
    CHECK_INT(ws_close_reply(out, 4999), 4);
    CHECK_MEM(out, "\x88\x02\x13\x87", 4);
    /* the reply parses as a valid close for a client reader */
    ws_reader_config_t cc = { .max_message_size = 10, .role = WS_ROLE_CLIENT };
    ws_reader_t r;
    ws_reader_init(&r, &cc);
    size_t used;
    ws_msg_t m;
    size_t n = ws_close_reply(out, 1001);
    CHECK_INT(ws_reader_feed(&r, out, n, &used, &m), 1);
    CHECK_INT(m.close_code, 1001);
    ws_reader_free(&r);
}


/* ---- permessage-deflate (RFC 7692) ---------------------------------------------- */

/* Raw DEFLATE with a sync flush and the 00 00 ff ff tail removed (§7.2.1),
 * by zlib directly rather than ws_deflate, so the reader is checked against
 * an independent compressor.  `zs` NULL: a fresh stream (no takeover). */
static size_t pmd_compress(z_stream *zs, const void *in, size_t n, uint8_t *out, size_t cap)
{
    z_stream local;
    if (!zs) {
        memset(&local, 0, sizeof local);
        if (deflateInit2(&local, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
        zs = &local;
    }
    zs->next_in = (Bytef *)(uintptr_t)in;
    zs->avail_in = (uInt)n;
    zs->next_out = out;
    zs->avail_out = (uInt)cap;
    if (deflate(zs, Z_SYNC_FLUSH) != Z_OK || zs->avail_out == 0) abort();
    size_t len = cap - zs->avail_out;
    if (len < 4 || memcmp(out + len - 4, "\x00\x00\xff\xff", 4)) abort();
    if (zs == &local) deflateEnd(&local);
    return len - 4;
}

static ws_inflater_t *g_inf;   /* marks a config as deflate-enabled; feed() uses a fresh one */

static ws_reader_config_t cfg_pmd(uint64_t max, ws_role_t role, int reset)
{
    ws_reader_config_t c = { .max_message_size = max, .role = role, .inflater = g_inf,
                             .inflate_reset = reset };
    return c;
}

#define EVZ(t, str) { (t), (str), sizeof(str) - 1, 0, 1 }

/* RFC 7692 §7.2.3: the examples, sent by a server (unmasked, client-role
 * reader) and by a client (masked, server-role reader). */
static void t_pmd_rfc_examples(void)
{
    static const struct { const char *name; const uint8_t *b; size_t n; } ex[] = {
        { "7.2.3.1 Hello", (const uint8_t *)"\xc1\x07\xf2\x48\xcd\xc9\xc9\x07\x00", 9 },
        { "7.2.3.1 fragmented", (const uint8_t *)"\x41\x03\xf2\x48\xcd\x80\x04\xc9\xc9\x07\x00", 11 },
        { "7.2.3.3 stored", (const uint8_t *)"\xc1\x0b\x00\x05\x00\xfa\xff\x48\x65\x6c\x6c\x6f\x00", 13 },
        { "7.2.3.4 BFINAL", (const uint8_t *)"\xc1\x08\xf3\x48\xcd\xc9\xc9\x07\x00\x00", 10 },
        { "7.2.3.5 two blocks", (const uint8_t *)"\xc1\x0d\xf2\x48\x05\x00\x00\x00\xff\xff\xca\xc9\xc9\x07\x00", 15 },
    };
    exp_ev_t e[] = { EVZ(WS_MSG_TEXT, "Hello") };
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        for (int reset = 0; reset < 2; reset++) {
            ws_reader_config_t cc = cfg_pmd(100, WS_ROLE_CLIENT, reset);
            CHECK_MSG(run_all(ex[i].name, &cc, ex[i].b, ex[i].n, e, 1, 0, -1), "%s", ex[i].name);
            /* the same frames, masked, to a server */
            sb_t s = { 0 };
            size_t at = 0;
            while (at < ex[i].n) {
                uint8_t b0 = ex[i].b[at];
                size_t len = ex[i].b[at + 1];
                sb_frame_b0(&s, b0, ex[i].b + at + 2, len);
                at += 2 + len;
            }
            ws_reader_config_t sc = cfg_pmd(100, WS_ROLE_SERVER, reset);
            CHECK_MSG(run_all(ex[i].name, &sc, s.d, s.n, e, 1, 0, -1), "%s masked", ex[i].name);
            /* the same as binary (the brief's c2 07 ...) */
            s.d[0] = (uint8_t)((s.d[0] & 0xF0) | WS_OP_BINARY);
            exp_ev_t eb[] = { EVZ(WS_MSG_BINARY, "Hello") };
            CHECK_MSG(run_all(ex[i].name, &sc, s.d, s.n, eb, 1, 0, -1), "%s binary", ex[i].name);
            sb_free(&s);
        }
    }
    /* §7.2.3.2: two messages sharing the LZ77 window, then the same without
     * context takeover: the back-reference is corrupt data (1007) */
    static const uint8_t shared[] = { 0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00,
                                      0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00 };
    exp_ev_t e2[] = { EVZ(WS_MSG_TEXT, "Hello"), EVZ(WS_MSG_TEXT, "Hello") };
    ws_reader_config_t keep = cfg_pmd(100, WS_ROLE_CLIENT, 0);
    CHECK(run_all("7.2.3.2 shared window", &keep, shared, sizeof shared, e2, 2, 0, -1));
    ws_reader_config_t reset = cfg_pmd(100, WS_ROLE_CLIENT, 1);
    CHECK(run_all("7.2.3.2 reset", &reset, shared, sizeof shared, e2, 1, WS_E_INFLATE, (long)sizeof shared));
    /* §7.2.3.6: an empty message is one 0x00 */
    static const uint8_t empty[] = { 0xc1, 0x01, 0x00, 0xc2, 0x00 };
    exp_ev_t e3[] = { EVZ(WS_MSG_TEXT, ""), EVZ(WS_MSG_BINARY, "") };
    CHECK(run_all("7.2.3.6 empty", &keep, empty, sizeof empty, e3, 2, 0, -1));
}

static void t_pmd_messages(void)
{
    static uint8_t plain[70000], z[80000];
    /* text with multi-byte characters, compressible */
    for (size_t i = 0; i < sizeof plain;) {
        static const char pat[] = "permessage-deflate \xe2\x9c\x93 \xf0\x9f\x98\x80 ";
        size_t k = sizeof pat - 1;
        if (i + k > sizeof plain) { plain[i++] = '.'; continue; }
        memcpy(plain + i, pat, k);
        i += k;
    }
    ws_reader_config_t c = cfg_pmd(sizeof plain, WS_ROLE_SERVER, 1);
    size_t zn = pmd_compress(NULL, plain, sizeof plain, z, sizeof z);
    sb_t s = { 0 };
    sb_frame_b0(&s, 0x80 | 0x40 | WS_OP_TEXT, z, zn);
    exp_ev_t e[] = { { WS_MSG_TEXT, plain, sizeof plain, 0, 1 } };
    CHECK(run_all("compressed 70000", &c, s.d, s.n, e, 1, 0, -1));
    sb_free(&s);

    /* fragmented in many pieces with control frames between them, then an
     * uncompressed message, then a compressed one again */
    for (size_t fs = 1; fs <= zn; fs = fs * 3 + 7) {
        for (size_t at = 0; at < zn; at += fs) {
            size_t n = zn - at < fs ? zn - at : fs;
            uint8_t b0 = (uint8_t)((at + n == zn ? 0x80 : 0) | (at ? WS_OP_CONT : 0x40 | WS_OP_TEXT));
            sb_frame_b0(&s, b0, z + at, n);
            if (at == 0) sb_frame(&s, 1, WS_OP_PING, "zz", 2);
        }
        sb_frame(&s, 1, WS_OP_BINARY, "plain", 5);
        sb_frame_b0(&s, 0x80 | 0x40 | WS_OP_BINARY, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
        exp_ev_t e2[] = { EV(WS_MSG_PING, "zz"), { WS_MSG_TEXT, plain, sizeof plain, 0, 1 },
                          EV(WS_MSG_BINARY, "plain"), EVZ(WS_MSG_BINARY, "Hello") };
        char name[64];
        snprintf(name, sizeof name, "compressed fragments of %zu", fs);
        /* every-split runs on the long streams would take minutes: socket-sized reads */
        static const size_t reads[] = { 1, 7, 1000, 1u << 20 };
        for (size_t rd = 0; rd < sizeof reads / sizeof reads[0]; rd++) {
            size_t ncut = 0, *cut = malloc((s.n / reads[rd] + 2) * sizeof *cut);
            if (!cut) abort();
            for (size_t a = reads[rd]; a < s.n; a += reads[rd]) cut[ncut++] = a;
            cut[ncut++] = s.n;
            res_t r;
            feed(&c, s.d, s.n, cut, ncut, &r);
            CHECK_MSG(same_events(name, "reads", &r, e2, 4, 0, -1), "%s read %zu", name, reads[rd]);
            res_free(&r);
            free(cut);
        }
        sb_free(&s);
    }

    /* context takeover across messages (reset 0): a zlib stream kept open */
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    CHECK(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    for (int i = 0; i < 4; i++) {
        zn = pmd_compress(&zs, plain, 3000, z, sizeof z);
        sb_frame_b0(&s, 0x80 | 0x40 | WS_OP_TEXT, z, zn);
    }
    deflateEnd(&zs);
    exp_ev_t e3[4];
    for (int i = 0; i < 4; i++) e3[i] = (exp_ev_t){ WS_MSG_TEXT, plain, 3000, 0, 1 };
    ws_reader_config_t keep = cfg_pmd(3000, WS_ROLE_SERVER, 0);
    CHECK(run_all("context takeover", &keep, s.d, s.n, e3, 4, 0, -1));
    sb_free(&s);
}

static void t_pmd_errors(void)
{
    static uint8_t big[1u << 20], z[1u << 17];
    ws_reader_config_t c = cfg_pmd(1000, WS_ROLE_SERVER, 1);
    sb_t s = { 0 };
    size_t at;

    /* RSV1 on a continuation frame */
    sb_frame_b0(&s, 0x40 | WS_OP_TEXT, "\xf2\x48", 2);
    at = s.n;
    sb_frame_b0(&s, 0x80 | 0x40 | WS_OP_CONT, "\xcd\xc9\xc9\x07\x00", 5);
    CHECK(run_all("rsv1 on continuation", &c, s.d, s.n, NULL, 0, WS_E_MSG_RSV1_CONT, (long)at + 6));
    sb_free(&s);
    /* ... also when the message itself was not compressed */
    sb_frame(&s, 0, WS_OP_TEXT, "He", 2);
    at = s.n;
    sb_frame_b0(&s, 0x80 | 0x40 | WS_OP_CONT, "llo", 3);
    CHECK(run_all("rsv1 on continuation of plain", &c, s.d, s.n, NULL, 0, WS_E_MSG_RSV1_CONT, (long)at + 6));
    sb_free(&s);
    /* RSV1 on a control frame even with deflate; RSV2/RSV3 still refused */
    sb_frame_b0(&s, 0x80 | 0x40 | WS_OP_PING, "", 0);
    CHECK(run_all("rsv1 on ping", &c, s.d, s.n, NULL, 0, WS_E_FRAME_RSV, 1));
    sb_free(&s);
    sb_frame_b0(&s, 0x80 | 0x60 | WS_OP_TEXT, "", 0);
    CHECK(run_all("rsv1+2", &c, s.d, s.n, NULL, 0, WS_E_FRAME_RSV, 1));
    sb_free(&s);
    /* RSV1 without deflate negotiated */
    sb_frame_b0(&s, 0x80 | 0x40 | WS_OP_TEXT, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
    ws_reader_config_t plain = cfg_server(1000);
    CHECK(run_all("rsv1 without deflate", &plain, s.d, s.n, NULL, 0, WS_E_FRAME_RSV, 1));
    sb_free(&s);

    /* deflate bomb: 1 MiB of zeros in ~1 KiB, limit 64 KiB: 1009 */
    ws_reader_config_t c64 = cfg_pmd(65536, WS_ROLE_SERVER, 1);
    size_t zn = pmd_compress(NULL, big, sizeof big, z, sizeof z);
    CHECK(zn < 2000);
    sb_frame_b0(&s, 0x80 | 0x40 | WS_OP_BINARY, z, zn);
    CHECK(run_all("deflate bomb", &c64, s.d, s.n, NULL, 0, WS_E_INFLATE_TOO_BIG, (long)s.n));
    sb_free(&s);
    CHECK_INT(ws_err_close_code(WS_E_INFLATE_TOO_BIG), 1009);
    /* exactly the limit inflates fine; one more byte does not */
    zn = pmd_compress(NULL, big, 65536, z, sizeof z);
    sb_frame_b0(&s, 0x80 | 0x40 | WS_OP_BINARY, z, zn);
    exp_ev_t e1[] = { { WS_MSG_BINARY, big, 65536, 0, 1 } };
    CHECK(run_all("inflated at limit", &c64, s.d, s.n, e1, 1, 0, -1));
    sb_free(&s);
    zn = pmd_compress(NULL, big, 65537, z, sizeof z);
    sb_frame_b0(&s, 0x80 | 0x40 | WS_OP_BINARY, z, zn);
    CHECK(run_all("inflated over limit", &c64, s.d, s.n, NULL, 0, WS_E_INFLATE_TOO_BIG, (long)s.n));
    sb_free(&s);

    /* incompressible data at the limit fits the compressed-size slack */
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < 65536; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        big[i] = (uint8_t)x;
    }
    zn = pmd_compress(NULL, big, 65536, z, sizeof z);
    CHECK(zn > 65536);
    sb_frame_b0(&s, 0x40 | WS_OP_BINARY, z, zn / 2);
    sb_frame(&s, 1, WS_OP_CONT, z + zn / 2, zn - zn / 2);
    exp_ev_t e2[] = { { WS_MSG_BINARY, big, 65536, 0, 1 } };
    CHECK(run_all("incompressible at limit", &c64, s.d, s.n, e2, 1, 0, -1));
    sb_free(&s);
    memset(big, 0, 65537);

    /* the compressed bytes themselves are bounded, at the header:
     * 1000 + 1000/64 + 1024 = 2039 */
    memset(z, 0, 2100);
    sb_frame_b0(&s, 0x80 | 0x40 | WS_OP_BINARY, z, 2040);
    CHECK(run_all("compressed too big", &c, s.d, s.n, NULL, 0, WS_E_MSG_TOO_BIG, 8));
    sb_free(&s);
    sb_frame_b0(&s, 0x40 | WS_OP_BINARY, z, 2000);
    at = s.n;
    sb_frame(&s, 1, WS_OP_CONT, z, 40);
    CHECK(run_all("compressed too big across fragments", &c, s.d, s.n, NULL, 0, WS_E_MSG_TOO_BIG, (long)at + 6));
    sb_free(&s);

    /* corrupt data: 1007 */
    sb_frame_b0(&s, 0x80 | 0x40 | WS_OP_BINARY, "\xff\xff\xff\xff\x00\x01", 6);
    CHECK(run_all("corrupt", &c, s.d, s.n, NULL, 0, WS_E_INFLATE, (long)s.n));
    sb_free(&s);
    CHECK_INT(ws_err_close_code(WS_E_INFLATE), 1007);
    /* a message cut short inside a block */
    sb_frame_b0(&s, 0x80 | 0x40 | WS_OP_TEXT, "\xf2\x48\xcd", 3);
    CHECK(run_all("truncated deflate", &c, s.d, s.n, NULL, 0, WS_E_INFLATE, (long)s.n));
    sb_free(&s);
    /* valid deflate, invalid UTF-8 inside: 1007 */
    zn = pmd_compress(NULL, "abc\xed\xa0\x80xyz", 9, z, sizeof z);
    sb_frame_b0(&s, 0x80 | 0x40 | WS_OP_TEXT, z, zn);
    CHECK(run_all("compressed bad utf8", &c, s.d, s.n, NULL, 0, WS_E_UTF8, (long)s.n));
    sb_free(&s);
    /* ... and ending mid code point */
    zn = pmd_compress(NULL, "abc\xe2\x82", 5, z, sizeof z);
    sb_frame_b0(&s, 0x80 | 0x40 | WS_OP_TEXT, z, zn);
    CHECK(run_all("compressed truncated utf8", &c, s.d, s.n, NULL, 0, WS_E_UTF8, (long)s.n));
    sb_free(&s);
    /* Fragmented, the invalid bytes in the first fragment: reported at the
     * last byte of the final frame, once the message is inflated (the
     * trade-off ws_message.h describes), not when the fragment arrives. */
    static const char bad_first[] = "\xed\xa0\x80 then enough text to span two fragments";
    zn = pmd_compress(NULL, bad_first, sizeof bad_first - 1, z, sizeof z);
    sb_frame_b0(&s, 0x40 | WS_OP_TEXT, z, zn / 2);
    sb_frame(&s, 1, WS_OP_CONT, z + zn / 2, zn - zn / 2);
    CHECK(run_all("compressed bad utf8 in first fragment", &c, s.d, s.n, NULL, 0, WS_E_UTF8, (long)s.n));
    sb_free(&s);
    /* the same bytes as binary are fine */
    zn = pmd_compress(NULL, "abc\xe2\x82", 5, z, sizeof z);
    sb_frame_b0(&s, 0x80 | 0x40 | WS_OP_BINARY, z, zn);
    exp_ev_t e3[] = { { WS_MSG_BINARY, "abc\xe2\x82", 5, 0, 1 } };
    CHECK(run_all("compressed binary", &c, s.d, s.n, e3, 1, 0, -1));
    sb_free(&s);
}

/* A compressed message uses heap only while it is assembled and returned. */
static void t_pmd_heap(void)
{
    ws_inflater_t *inf = ws_inflater_new(15);
    ws_reader_config_t c = { .max_message_size = 1 << 16, .role = WS_ROLE_SERVER, .inflater = inf,
                             .inflate_reset = 1 };
    static uint8_t plain[20000], z[30000];
    for (size_t i = 0; i < sizeof plain; i++) plain[i] = (uint8_t)('a' + i % 7);
    size_t zn = pmd_compress(NULL, plain, sizeof plain, z, sizeof z);
    sb_t s = { 0 };
    sb_frame_b0(&s, 0x80 | 0x40 | WS_OP_TEXT, z, zn);
    ws_reader_t r;
    ws_reader_init(&r, &c);
    size_t used;
    ws_msg_t m;
    CHECK_INT(ws_reader_feed(&r, s.d, s.n, &used, &m), 1);
    CHECK_INT(m.compressed, 1);
    CHECK_INT(m.len, sizeof plain);
    CHECK_MEM(m.data, plain, sizeof plain);
    CHECK(ws_reader_heap_bytes(&r) >= sizeof plain);     /* the inflated copy */
    CHECK_INT(ws_reader_feed(&r, s.d, 0, &used, &m), 0);
    CHECK_INT(ws_reader_heap_bytes(&r), 0);
    ws_reader_free(&r);
    sb_free(&s);
    ws_inflater_free(inf);
}

int main(void)
{
    g_inf = ws_inflater_new(15);
    RUN(t_sizes);
    RUN(t_back_to_back);
    RUN(t_ping_pong);
    RUN(t_rsv);
    RUN(t_reserved_opcodes);
    RUN(t_fragmentation);
    RUN(t_interleaved_control);
    RUN(t_fragmentation_errors);
    RUN(t_utf8_valid);
    RUN(t_utf8_invalid);
    RUN(t_close);
    RUN(t_after_close);
    RUN(t_max_size);
    RUN(t_big_fragmented);
    RUN(t_zero_copy);
    RUN(t_heap);
    RUN(t_sticky);
    RUN(t_client_role);
    RUN(t_rfc_examples);
    RUN(t_close_codes);
    RUN(t_close_reply);
    RUN(t_pmd_rfc_examples);
    RUN(t_pmd_messages);
    RUN(t_pmd_errors);
    RUN(t_pmd_heap);
    ws_inflater_free(g_inf);
    return test_report("message");
}
