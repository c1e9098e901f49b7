/* fuzz_message.c — libFuzzer target for the message reader (ws_message.c).
 *
 * Input: 4 bytes of setup, then the byte stream.
 *   byte 0: bit 0 permessage-deflate (an inflater), bit 1 inflate_reset,
 *           bits 2-4 window bits - 8, bit 5 a tiny max_message_size (64)
 *   bytes 1-3: chunk sizes, used in turn (value + 1; 255 = the rest)
 * The stream is fed to a server-role reader and to a client-role reader, each
 * read in an exact-size heap copy (so ASan sees any read past it), and every
 * event is checked against the contract of ws_message.h.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws_deflate.h"
#include "ws_message.h"
#include "ws_status.h"
#include "ws_utf8.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static volatile uint8_t sink;

static void check_event(const ws_msg_t *m, const ws_reader_config_t *cfg)
{
    uint8_t x = 0;
    for (size_t i = 0; i < m->len; i++) x ^= m->data[i];   /* every byte is readable */
    sink = x;
    CHECK(m->len == 0 || m->data != NULL);
    switch (m->type) {
    case WS_MSG_TEXT:
        CHECK(ws_utf8_is_valid(m->data, m->len));
        /* fall through */
    case WS_MSG_BINARY:
        CHECK(m->len <= cfg->max_message_size);
        CHECK(!m->compressed || cfg->inflater);
        break;
    case WS_MSG_CLOSE:
        CHECK(m->len <= WS_CONTROL_MAX - 2);
        CHECK(ws_utf8_is_valid(m->data, m->len));
        CHECK(m->close_code == WS_CLOSE_NO_STATUS ? m->len == 0 : ws_close_code_is_valid(m->close_code));
        CHECK(!m->compressed);
        break;
    case WS_MSG_PING:
    case WS_MSG_PONG:
        CHECK(m->len <= WS_CONTROL_MAX);
        CHECK(!m->compressed);
        break;
    default:
        CHECK(0);
    }
}

static void run(const ws_reader_config_t *cfg, const uint8_t *data, size_t size, const uint8_t chunk[3])
{
    ws_reader_t r;
    ws_reader_init(&r, cfg);
    size_t pos = 0;
    int closed = 0, err = 0;
    for (unsigned k = 0; pos < size && !err; k++) {
        size_t c = chunk[k % 3] == 255 ? size - pos : (size_t)chunk[k % 3] + 1;
        if (c > size - pos) c = size - pos;
        uint8_t *buf = malloc(c);
        if (!buf) abort();
        memcpy(buf, data + pos, c);
        size_t off = 0;
        for (;;) {
            size_t used = (size_t)-1;
            ws_msg_t m;
            int rc = ws_reader_feed(&r, buf + off, c - off, &used, &m);
            if (rc < 0) {
                CHECK(ws_err_close_code(rc) != 0);
                size_t u2;
                CHECK(ws_reader_feed(&r, buf, c, &u2, &m) == rc);
                err = rc;
                break;
            }
            CHECK(used <= c - off);
            off += used;
            if (rc == 0) {
                CHECK(off == c);
                break;
            }
            CHECK(rc == 1);
            CHECK(!closed);                     /* nothing after a CLOSE */
            check_event(&m, cfg);
            if (m.type == WS_MSG_CLOSE) closed = 1;
        }
        /* peer-driven memory stays bounded by the configured limit */
        CHECK(ws_reader_heap_bytes(&r) <= 8 * cfg->max_message_size + (256u << 10));
        free(buf);
        pos += c;
    }
    ws_reader_free(&r);
    CHECK(ws_reader_heap_bytes(&r) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) return 0;
    uint8_t flags = data[0];
    const uint8_t chunk[3] = { data[1], data[2], data[3] };
    data += 4;
    size -= 4;

    ws_inflater_t *inf = NULL;
    if (flags & 1) inf = ws_inflater_new(8 + ((flags >> 2) & 7));
    ws_reader_config_t cfg = {
        .max_message_size = (flags & 0x20) ? 64 : 4096,
        .role = WS_ROLE_SERVER,
        .inflater = inf,
        .inflate_reset = (flags >> 1) & 1,
    };
    run(&cfg, data, size, chunk);
    cfg.role = WS_ROLE_CLIENT;
    run(&cfg, data, size, chunk);
    if (inf) ws_inflater_free(inf);
    return 0;
}
