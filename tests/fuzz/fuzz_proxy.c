/* fuzz_proxy.c — libFuzzer target for proto/ws_proxy.c.
 *
 * Besides "never crash or trip UBSan": the input fed whole, byte by byte
 * and split at a few points (each piece an exact-size heap copy, so ASan
 * sees a read past it) gives the same answer, the same result and the same
 * number of consumed bytes; the parser never consumes past the header it
 * reports, and a WANT-MORE consumes everything it was given; a result is
 * either LOCAL or a TCP source of the version the first byte announced;
 * an error is sticky.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ws_proxy.h"
#include "ws_status.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct outcome {
    int rc;
    size_t consumed;
    ws_proxy_result_t r;
} outcome_t;

/* Feeds data in pieces of `step` bytes (0: whole). */
static outcome_t feed(const uint8_t *data, size_t size, size_t step)
{
    ws_proxy_parser_t p;
    ws_proxy_init(&p);
    outcome_t o = { WS_E_WANT_MORE, 0, { 0 } };
    while (o.consumed < size && o.rc == WS_E_WANT_MORE) {
        size_t n = step && size - o.consumed > step ? step : size - o.consumed;
        uint8_t *piece = malloc(n);
        memcpy(piece, data + o.consumed, n);
        size_t used = (size_t)-1;
        o.rc = ws_proxy_parse(&p, piece, n, &used, &o.r);
        free(piece);
        REQUIRE(used <= n);
        if (o.rc == WS_E_WANT_MORE) REQUIRE(used == n);
        o.consumed += used;
    }
    if (o.rc < WS_E_WANT_MORE) {                 /* sticky */
        size_t used;
        ws_proxy_result_t r;
        REQUIRE(ws_proxy_parse(&p, data, size, &used, &r) == o.rc && used == 0);
    }
    return o;
}

static void require_same(const outcome_t *a, const outcome_t *b)
{
    REQUIRE(a->rc == b->rc);
    if (a->rc <= 0) return;
    REQUIRE(a->consumed == b->consumed);
    REQUIRE(a->r.kind == b->r.kind && a->r.family == b->r.family && a->r.port == b->r.port &&
            a->r.version == b->r.version && memcmp(a->r.addr, b->r.addr, 16) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    outcome_t whole = feed(data, size, 0);
    REQUIRE(whole.rc == WS_E_WANT_MORE || whole.rc > 0 ||
            (whole.rc <= WS_E_PROXY_SIGNATURE && whole.rc >= WS_E_PROXY_SYNTAX));
    if (whole.rc > 0) {
        REQUIRE((size_t)whole.rc == whole.consumed);
        REQUIRE(whole.r.version == (data[0] == 'P' ? 1 : 2));
        REQUIRE(whole.consumed <= (whole.r.version == 1 ? WS_PROXY_V1_MAX_LEN : WS_PROXY_V2_MAX_LEN));
        if (whole.r.kind == WS_PROXY_ADDR)
            REQUIRE(whole.r.family == AF_INET || whole.r.family == AF_INET6);
        else
            REQUIRE(whole.r.kind == WS_PROXY_LOCAL && whole.r.family == 0);
    }
    outcome_t o = feed(data, size, 1);
    require_same(&whole, &o);
    for (size_t step = 2; step < 40 && step < size; step += 7) {
        o = feed(data, size, step);
        require_same(&whole, &o);
    }
    return 0;
}
