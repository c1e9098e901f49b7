/* bench_proto.c — throughput of the receive path of proto/: parse the frame
 * header, unmask the payload and validate UTF-8, for masked client text
 * frames of 64 B, 1 KiB and 64 KiB, fed to a server-role ws_reader_t the
 * way the gateway does (a read buffer holding many frames back to back).
 *
 * Usage: bench_proto [seconds-per-size]   (default 1.0)
 * Prints MB/s of payload and messages/s per size.  The buffer is re-masked
 * between passes (unmasking happens in place), and that cost is excluded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ws_frame.h"
#include "ws_message.h"
#include "ws_status.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Fills out with `count` masked text frames of `size` bytes of mixed ASCII
 * and multi-byte UTF-8, returns total bytes; payload copy in `plain`. */
static size_t build_frames(uint8_t *out, size_t size, size_t count, uint8_t *plain)
{
    static const char *pieces[] = { "hello ", "wörld ", "日本語 ", "emoji 😀 ", "{\"a\":1} " };
    size_t n = 0;
    while (n < size) {
        const char *p = pieces[(n / 7) % 5];
        for (size_t i = 0; p[i] && n < size; i++) plain[n++] = (uint8_t)p[i];
    }
    /* Never end inside a multi-byte sequence: pad the tail with ASCII. */
    size_t k = size;
    while (k > 0 && (plain[k - 1] & 0x80)) plain[--k] = ' ';
    size_t off = 0;
    const uint8_t mask[4] = { 0x37, 0xfa, 0x21, 0x3d };
    for (size_t f = 0; f < count; f++) {
        off += ws_frame_write_header(out + off, 1, 0, WS_OP_TEXT, size, mask);
        memcpy(out + off, plain, size);
        ws_mask(out + off, size, mask, 0);
        off += size;
    }
    return off;
}

static void bench_size(size_t size, double seconds)
{
    size_t per_pass = size >= 65536 ? 16 : (size >= 1024 ? 1024 : 16384);
    size_t cap = per_pass * (size + WS_FRAME_HEADER_MAX);
    uint8_t *plain = malloc(size);
    uint8_t *pristine = malloc(cap);
    uint8_t *buf = malloc(cap);
    if (!plain || !pristine || !buf) { perror("malloc"); exit(1); }
    size_t total = build_frames(pristine, size, per_pass, plain);

    ws_reader_config_t cfg = { .max_message_size = 1u << 20, .role = WS_ROLE_SERVER };
    ws_reader_t r;
    ws_reader_init(&r, &cfg);
    double busy = 0, t_end = now_s() + seconds;
    uint64_t msgs = 0;
    while (now_s() < t_end) {
        memcpy(buf, pristine, total);               /* restore the masked bytes */
        double t0 = now_s();
        size_t off = 0;
        while (off < total) {
            size_t used = 0;
            ws_msg_t m;
            int rc = ws_reader_feed(&r, buf + off, total - off, &used, &m);
            off += used;
            if (rc < 0) { fprintf(stderr, "bench: reader error %s\n", ws_err_str(rc)); exit(1); }
            if (rc == 1) {
                if (m.len != size || m.type != WS_MSG_TEXT) { fprintf(stderr, "bench: bad message\n"); exit(1); }
                msgs++;
            }
        }
        busy += now_s() - t0;
    }
    ws_reader_free(&r);
    double mb = (double)msgs * size / 1e6;
    printf("%8zu B messages: %9.1f MB/s  %11.0f msg/s  (%llu messages, %.2f s of parsing)\n",
           size, mb / busy, msgs / busy, (unsigned long long)msgs, busy);
    free(plain); free(pristine); free(buf);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    if (seconds <= 0) seconds = 1.0;
    printf("proto receive path: frame parse + unmask + UTF-8 validation, text frames, one core\n");
    bench_size(64, seconds);
    bench_size(1024, seconds);
    bench_size(65536, seconds);
    return 0;
}
