/* fuzz_inflate.c — ws_inflate on arbitrary data, and ws_deflate round trips.
 *
 * Byte 0 picks the setup: bits 0-2 window bits 8..15, bit 3 reset after
 * each message, bits 4-5 the inflated-size limit, bits 6-7 how many
 * messages (1..4) the rest is cut into, inflated in order by one inflater
 * (so context takeover is exercised).  Then each piece is deflated with a
 * deflater of the same window and must inflate back to itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws_deflate.h"
#include "ws_status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const size_t fuzz_limits[4] = { 65536, 16384, 1000, 0 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int bits = 8 + (data[0] & 7);
    int reset = (data[0] >> 3) & 1;
    size_t limit = fuzz_limits[(data[0] >> 4) & 3];
    size_t parts = 1 + (size_t)(data[0] >> 6);
    data++;
    size--;
    size_t each = size / parts;

    ws_inflater_t *inf = ws_inflater_new(bits);
    ws_buf_t out = {0};
    for (size_t i = 0; i < parts; i++) {
        size_t n = i + 1 == parts ? size - i * each : each;
        out.len = 0;
        int rc = ws_inflate(inf, data + i * each, n, reset, &out, limit);
        if (rc != WS_OK && rc != WS_E_INFLATE && rc != WS_E_INFLATE_TOO_BIG) abort();
        if (rc == WS_OK && out.len > limit) abort();
        if (rc == WS_E_INFLATE_TOO_BIG && (out.len <= limit || out.len > limit + 16384)) abort();
    }

    /* Round trip through our deflater, same window, same reset mode. */
    ws_deflater_t *def = ws_deflater_new(bits, (int)(size % 9) + 1, 8);
    ws_inflater_t *inf2 = ws_inflater_new(bits);
    ws_buf_t c = {0};
    for (size_t i = 0; i < parts; i++) {
        size_t n = i + 1 == parts ? size - i * each : each;
        c.len = out.len = 0;
        if (ws_deflate(def, data + i * each, n, reset, &c) != WS_OK) abort();
        if (ws_inflate(inf2, c.data, c.len, reset, &out, n) != WS_OK) abort();
        if (out.len != n || (n && memcmp(out.data, data + i * each, n) != 0)) abort();
    }
    ws_buf_free(&c);
    ws_buf_free(&out);
    ws_deflater_free(def);
    ws_inflater_free(inf2);
    ws_inflater_free(inf);
    return 0;
}
