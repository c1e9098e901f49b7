/* test_protocol.c — the envelope protocol feature on a core server (no
 * cluster, no auth): the welcome from its codec, an op registered without
 * touching the decoder, an unknown op still refused, a join acked at once
 * when no feature holds the answer.  Connections through a socketpair(2). */
#include "test.h"

#include <ev.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core.h"
#include "log.h"
#include "protocol.h"
#include "server_int.h"
#include "ws_frame.h"

static struct ev_loop *L;
static wsgw_config_t cfg;
static wsgw_server_t *S;
static protocol_t *P;

static void spin(int n)
{
    for (int i = 0; i < n; i++) ev_run(L, EVRUN_NOWAIT);
}

static size_t drain(int fd, uint8_t *buf, size_t cap)
{
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n <= 0 || (got += (size_t)n) == cap) return got;
    }
}

static void send_text(int fd, const char *text)
{
    uint8_t buf[512];
    static const uint8_t mask[4] = { 9, 8, 7, 6 };
    size_t len = strlen(text), h = ws_frame_write_header(buf, 1, 0, WS_OP_TEXT, len, mask);
    memcpy(buf + h, text, len);
    ws_mask(buf + h, len, mask, 0);
    if (write(fd, buf, h + len) != (ssize_t)(h + len)) abort();
}

/* The payloads of the text frames in buf[0..n), NUL-separated into out. */
static int texts(const uint8_t *buf, size_t n, char *out, size_t cap)
{
    int count = 0;
    size_t off = 0, o = 0;
    while (off < n) {
        ws_frame_hdr_t h;
        int hl = ws_frame_parse_header(buf + off, n - off, 0, WS_ROLE_CLIENT, &h);
        if (hl <= 0 || off + (size_t)hl + h.payload_len > n || o + h.payload_len + 1 > cap) break;
        memcpy(out + o, buf + off + hl, h.payload_len);
        o += h.payload_len;
        out[o++] = '\0';
        off += (size_t)hl + h.payload_len;
        count++;
    }
    return count;
}

static struct { int calls; char id[16]; size_t raw_len; } op_seen;

static void my_op(void *ud, wsgw_conn_t *c, const envelope_msg_t *m, const uint8_t *raw, size_t len)
{
    (void)raw;
    op_seen.calls++;
    op_seen.raw_len = len;
    memcpy(op_seen.id, m->id.p, m->id.len < 15 ? m->id.len : 15);
    protocol_ack(c, m->id);
    CHECK(ud == &op_seen);
}

static void test_protocol_ops(void)
{
    wsgw_config_init(&cfg);
    L = ev_loop_new(EVFLAG_AUTO);
    char err[256];
    wsgw_listen_fd_t none = { -1, 0 };
    S = core_server_new(L, &cfg, &none, 0, err, sizeof err);
    CHECK(S != NULL);
    P = protocol_attach(S);
    CHECK(P != NULL);
    CHECK_INT(protocol_op_register(P, "history", my_op, &op_seen), 0);

    int sv[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    struct sockaddr_storage peer = { .ss_family = AF_UNIX };
    conn_accept(S, sv[0], &peer, 0);
    static const char req[] =
        "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    CHECK_INT(write(sv[1], req, sizeof req - 1), (long long)(sizeof req - 1));
    spin(2);
    uint8_t buf[4096];
    size_t n = drain(sv[1], buf, sizeof buf);
    const uint8_t *end = memmem(buf, n, "\r\n\r\n", 4);
    CHECK(end != NULL);
    size_t hdr = (size_t)(end + 4 - buf);
    char out[4096];
    CHECK_INT(texts(buf + hdr, n - hdr, out, sizeof out), 1);
    CHECK(strncmp(out, "{\"op\":\"welcome\"", 15) == 0);

    send_text(sv[1], "{\"op\":\"history\",\"room\":\"lobby\",\"id\":7}");
    send_text(sv[1], "{\"op\":\"nope\",\"id\":8}");
    send_text(sv[1], "{\"op\":\"join\",\"room\":\"lobby\",\"id\":9}");
    spin(2);
    CHECK_INT(op_seen.calls, 1);
    CHECK(strcmp(op_seen.id, "7") == 0);
    CHECK_INT(op_seen.raw_len, 38);
    n = drain(sv[1], buf, sizeof buf);
    CHECK_INT(texts(buf, n, out, sizeof out), 3);
    const char *a = out, *b = a + strlen(a) + 1, *c = b + strlen(b) + 1;
    CHECK_STR(a, "{\"op\":\"ack\",\"id\":7}");
    CHECK(strncmp(b, "{\"op\":\"error\",\"id\":8,\"code\":\"unknown_op\"", 40) == 0);
    CHECK_STR(c, "{\"op\":\"ack\",\"id\":9}");
    close(sv[1]);
    spin(2);
    wsgw_server_free(S);
    ev_loop_destroy(L);
    wsgw_config_free(&cfg);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    wsgw_log_set_level(WSGW_LOG_ERROR);
    RUN(test_protocol_ops);
    return test_report("protocol");
}
