/* test_core.c — the transport core (gateway/core/) through its seams, with
 * no feature registered: a server from core_server_new, a test codec and a
 * hooks table that record what the core calls, and connections fed bytes
 * through a socketpair(2) on a real libev loop.
 *
 * Covered: the upgrade and the hooks around it; the write path (output of
 * one iteration batched into one write, a partial write arming EV_WRITE
 * and the rest going out as the peer reads); the close handshake from
 * either side (codes, the linger state, the hooks); the slow consumer
 * (1008 at max_queued_bytes, unstarted backlog dropped); and the timeouts
 * the sweep enforces (handshake, read, ping / pong). */
#include "test.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core.h"
#include "log.h"
#include "server_int.h"
#include "ws_frame.h"
#include "ws_status.h"

static struct ev_loop *L;
static wsgw_config_t cfg;
static wsgw_server_t *S;

static struct {
    int      opened, closed, freed, opens, messages, joined, left, created, emptied, swept;
    uint16_t closed_code;
    char     msg[256];
    size_t   msg_len;
} seen;

/* ---- the test feature --------------------------------------------------------------- */

static void h_opened(void *ud, wsgw_conn_t *c) { (void)ud; (void)c; seen.opened++; }
static void h_closed(void *ud, wsgw_conn_t *c) { (void)ud; seen.closed++; seen.closed_code = c->close_code; }
static void h_free(void *ud, wsgw_conn_t *c) { (void)ud; (void)c; seen.freed++; }
static void h_created(void *ud, wsgw_room_t *r) { (void)ud; (void)r; seen.created++; }
static void h_emptied(void *ud, wsgw_room_t *r) { (void)ud; (void)r; seen.emptied++; }
static core_defer_t *held;                  /* a join's answer the test feature holds */
static int hold_joins;

static void h_joined(void *ud, wsgw_conn_t *c, wsgw_room_t *r, core_answer_t *a)
{
    (void)ud; (void)c; (void)r;
    seen.joined++;
    if (hold_joins && a) held = core_answer_hold(a);
}
static void h_left(void *ud, wsgw_conn_t *c, wsgw_room_t *r) { (void)ud; (void)c; (void)r; seen.left++; }
static int h_conn_sweep(void *ud, wsgw_conn_t *c, uint64_t now) { (void)ud; (void)c; (void)now; seen.swept++; return 0; }

static int k_open(void *ud, wsgw_conn_t *c) { (void)ud; (void)c; seen.opens++; return 0; }
static void k_message(void *ud, wsgw_conn_t *c, const uint8_t *p, size_t n, int binary)
{
    (void)ud; (void)c; (void)binary;
    seen.messages++;
    seen.msg_len = n < sizeof seen.msg ? n : sizeof seen.msg;
    memcpy(seen.msg, p, seen.msg_len);
}

static const core_codec_t test_codec = { .name = "test", .open = k_open, .message = k_message };

static void server_up(void)
{
    memset(&seen, 0, sizeof seen);
    L = ev_loop_new(EVFLAG_AUTO);
    char err[256];
    wsgw_listen_fd_t none = { -1, 0 };
    S = core_server_new(L, &cfg, &none, 0, err, sizeof err);   /* no listener: fds, but 0 of them */
    CHECK_MSG(S != NULL, "%s", err);
    core_hooks_t h = {
        .name = "test", .conn_opened = h_opened, .conn_closed = h_closed, .conn_free = h_free,
        .room_created = h_created, .room_emptied = h_emptied, .member_joined = h_joined,
        .member_left = h_left, .conn_sweep = h_conn_sweep,
    };
    CHECK_INT(core_register(S, &h), 0);
    CHECK_INT(core_codec_register(S, &test_codec), 0);
}

static void server_down(void)
{
    wsgw_server_free(S);
    ev_loop_destroy(L);
    wsgw_config_free(&cfg);
}

static void config(void)
{
    wsgw_config_init(&cfg);
}

/* Runs the loop without blocking: reads, handlers, then the flush. */
static void spin(int n)
{
    for (int i = 0; i < n; i++) ev_run(L, EVRUN_NOWAIT);
}

/* A connection whose client end is returned; *out is the server's side. */
static int client(wsgw_conn_t **out)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) abort();
    struct sockaddr_storage peer = { .ss_family = AF_UNIX };
    conn_accept(S, sv[0], &peer, 0);
    *out = S->conns;                         /* the newest is at the head */
    return sv[1];
}

static size_t drain(int fd, uint8_t *buf, size_t cap)
{
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n <= 0) return got;
        got += (size_t)n;
        if (got == cap) return got;
    }
}

static void send_all(int fd, const void *p, size_t n)
{
    CHECK_INT(write(fd, p, n), (long long)n);
}

/* A masked client frame. */
static void send_frame(int fd, ws_opcode_t op, const void *payload, size_t len)
{
    uint8_t buf[512];
    static const uint8_t mask[4] = { 1, 2, 3, 4 };
    size_t h = ws_frame_write_header(buf, 1, 0, op, len, mask);
    memcpy(buf + h, payload, len);
    ws_mask(buf + h, len, mask, 0);
    send_all(fd, buf, h + len);
}

static void check_upgraded(int fd, const wsgw_conn_t *c)
{
    uint8_t buf[1024];
    size_t n = drain(fd, buf, sizeof buf);
    CHECK(n > 12 && memcmp(buf, "HTTP/1.1 101", 12) == 0);
    CHECK_INT(c->state, CONN_OPEN);
}

static int upgrade(wsgw_conn_t **c)
{
    int fd = client(c);
    static const char req[] =
        "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    send_all(fd, req, sizeof req - 1);
    spin(2);
    check_upgraded(fd, *c);
    return fd;
}

/* The frames in buf[0..n): count, and the last one's opcode and close code. */
static int frames(const uint8_t *buf, size_t n, int *last_op, uint16_t *close_code)
{
    int count = 0;
    size_t off = 0;
    while (off < n) {
        ws_frame_hdr_t h;
        int hl = ws_frame_parse_header(buf + off, n - off, 0, WS_ROLE_CLIENT, &h);
        if (hl <= 0 || off + (size_t)hl + h.payload_len > n) break;
        *last_op = h.opcode;
        if (h.opcode == WS_OP_CLOSE && h.payload_len >= 2)
            *close_code = (uint16_t)(buf[off + hl] << 8 | buf[off + hl + 1]);
        off += (size_t)hl + h.payload_len;
        count++;
    }
    return count;
}

static void queue_text(wsgw_conn_t *c, size_t len, uint8_t fill)
{
    uint8_t *p;
    wsgw_block_t *b = core_reply_block(S, len, &p);
    memset(p, fill, len);
    core_reply(c, b);
}

/* ---- the tests -------------------------------------------------------------------------- */

static void test_upgrade_and_hooks(void)
{
    config();
    server_up();
    wsgw_conn_t *c;
    int fd = upgrade(&c);
    CHECK_INT(seen.opened, 1);
    CHECK_INT(seen.opens, 1);                /* the codec's open */
    CHECK_INT(S->n_open, 1);
    send_frame(fd, WS_OP_TEXT, "hello", 5);
    spin(1);
    CHECK_INT(seen.messages, 1);
    CHECK(seen.msg_len == 5 && memcmp(seen.msg, "hello", 5) == 0);
    /* Rooms: created / joined, then left / emptied. */
    CHECK_INT(core_join(c, "lobby", 5, NULL), 1);
    CHECK_INT(core_join(c, "lobby", 5, NULL), 0);
    CHECK_INT(seen.created, 1);
    CHECK_INT(seen.joined, 1);
    CHECK_INT(core_leave(c, "lobby", 5), 1);
    CHECK_INT(seen.left, 1);
    CHECK_INT(seen.emptied, 1);
    close(fd);
    spin(2);
    CHECK_INT(seen.closed, 1);
    CHECK_INT(seen.closed_code, WS_CLOSE_ABNORMAL);   /* EOF without a close frame */
    CHECK_INT(seen.freed, 1);
    server_down();
}

/* Handlers only queue: what one iteration queued goes out in one flush,
 * in order, and nothing is written before it. */
static void test_write_batched(void)
{
    config();
    server_up();
    wsgw_conn_t *c;
    int fd = upgrade(&c);
    uint8_t buf[4096];
    queue_text(c, 10, 'a');
    queue_text(c, 20, 'b');
    queue_text(c, 30, 'c');
    CHECK(c->in_pending);
    CHECK_INT(c->outq.bytes, 2 + 10 + 2 + 20 + 2 + 30);
    CHECK_INT(read(fd, buf, sizeof buf), -1);   /* nothing written inside the handler */
    spin(1);
    CHECK(!c->in_pending);
    CHECK_INT(c->outq.bytes, 0);
    int op = 0;
    uint16_t code = 0;
    size_t n = drain(fd, buf, sizeof buf);
    CHECK_INT(n, 66);
    CHECK_INT(frames(buf, n, &op, &code), 3);
    CHECK(buf[2] == 'a' && buf[14] == 'b' && buf[36] == 'c');
    close(fd);
    server_down();
}

/* A write the socket takes only in part: the rest stays queued, EV_WRITE
 * is armed, and it goes out as the peer reads; then EV_WRITE is off. */
static void test_write_partial(void)
{
    config();
    server_up();
    wsgw_conn_t *c;
    int fd = upgrade(&c);
    int small = 4096;
    setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    size_t total = 0;
    for (int i = 0; i < 8; i++) {
        queue_text(c, 60000, (uint8_t)('a' + i));
        total += 60000 + 4;
    }
    spin(1);
    CHECK(c->outq.bytes > 0);
    CHECK(c->write_armed);
    CHECK(c->events & EV_WRITE);
    CHECK(c->stalled);
    static uint8_t buf[1 << 20];
    size_t got = 0;
    for (int round = 0; round < 10000 && got < total; round++) {
        got += drain(fd, buf + got, sizeof buf - got);
        spin(1);
    }
    CHECK_INT(got, total);
    CHECK_INT(c->outq.bytes, 0);
    CHECK(!c->write_armed);
    CHECK(!(c->events & EV_WRITE));
    CHECK(!c->stalled);
    int op = 0;
    uint16_t code = 0;
    CHECK_INT(frames(buf, got, &op, &code), 8);
    close(fd);
    server_down();
}

/* Past max_queued_bytes a slow consumer is closed with 1008: its unstarted
 * backlog is dropped, the close frame goes out. */
static void test_slow_consumer(void)
{
    config();
    cfg.max_queued_bytes = 100000;
    server_up();
    wsgw_conn_t *c;
    int fd = upgrade(&c);
    int small = 4096;
    setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    queue_text(c, 60000, 'x');
    spin(1);                                 /* part of it written, the rest queued */
    CHECK(c->outq.bytes > 0);
    queue_text(c, 40000, 'y');               /* under the limit, unstarted */
    CHECK_INT(c->state, CONN_OPEN);
    queue_text(c, 60000, 'z');               /* surely over it now */
    CHECK_INT(c->state, CONN_CLOSING);
    CHECK_INT(c->close_code, WS_CLOSE_POLICY_VIOLATION);
    CHECK_INT(S->metrics.closes[CLOSE_SLOW_CONSUMER], 1);
    CHECK(S->metrics.dropped_bytes > 0);
    /* The client reads again: the started frame, then the close 1008. */
    static uint8_t buf[1 << 20];
    size_t got = 0;
    for (int round = 0; round < 10000 && c->state == CONN_CLOSING; round++) {
        got += drain(fd, buf + got, sizeof buf - got);
        spin(1);
    }
    got += drain(fd, buf + got, sizeof buf - got);
    int op = 0;
    uint16_t code = 0;
    frames(buf, got, &op, &code);
    CHECK_INT(op, WS_OP_CLOSE);
    CHECK_INT(code, WS_CLOSE_POLICY_VIOLATION);
    CHECK_INT(c->state, CONN_LINGER);        /* our close is out; waiting for theirs */
    close(fd);
    spin(2);
    CHECK_INT(seen.closed, 1);
    CHECK_INT(seen.closed_code, WS_CLOSE_POLICY_VIOLATION);
    server_down();
}

/* The client closes: the server echoes its code and closes TCP first. */
static void test_close_by_client(void)
{
    config();
    server_up();
    wsgw_conn_t *c;
    int fd = upgrade(&c);
    uint8_t payload[2] = { 1000 >> 8, 1000 & 0xff };
    send_frame(fd, WS_OP_CLOSE, payload, 2);
    spin(2);
    uint8_t buf[256];
    size_t n = drain(fd, buf, sizeof buf);
    int op = 0;
    uint16_t code = 0;
    CHECK_INT(frames(buf, n, &op, &code), 1);
    CHECK_INT(op, WS_OP_CLOSE);
    CHECK_INT(code, 1000);
    CHECK_INT(read(fd, buf, sizeof buf), 0);  /* then EOF: the server closed */
    CHECK_INT(seen.closed, 1);
    CHECK_INT(seen.closed_code, 1000);
    CHECK_INT(S->metrics.closes[CLOSE_BY_PEER], 1);
    spin(1);
    CHECK_INT(seen.freed, 1);
    CHECK(S->conns == NULL);
    close(fd);
    server_down();
}

/* The server closes: close frame with code and reason, write side shut
 * (LINGER), and the client's answering close ends it with that code. */
static void test_close_by_server(void)
{
    config();
    server_up();
    wsgw_conn_t *c;
    int fd = upgrade(&c);
    core_fail(c, 4000, "bye");
    core_fail(c, 4001, "again");            /* idempotent */
    CHECK_INT(c->state, CONN_CLOSING);
    queue_text(c, 5, 'q');                   /* refused after our close */
    spin(1);
    CHECK_INT(c->state, CONN_LINGER);
    uint8_t buf[256];
    size_t n = drain(fd, buf, sizeof buf);
    int op = 0;
    uint16_t code = 0;
    CHECK_INT(frames(buf, n, &op, &code), 1);
    CHECK_INT(code, 4000);
    CHECK(n == 2 + 2 + 3 && memcmp(buf + 4, "bye", 3) == 0);
    CHECK_INT(read(fd, buf, sizeof buf), 0);  /* half-closed: EOF after the frame */
    uint8_t payload[2] = { 4000 >> 8, 4000 & 0xff };
    send_frame(fd, WS_OP_CLOSE, payload, 2);
    spin(1);
    CHECK_INT(seen.closed, 1);
    CHECK_INT(seen.closed_code, 4000);
    close(fd);
    server_down();
}

/* A handshake that never completes is dropped by the sweep. */
static void test_handshake_timeout(void)
{
    config();
    cfg.handshake_timeout_ms = 100;
    server_up();
    wsgw_conn_t *c;
    int fd = client(&c);
    send_all(fd, "GET /ws HTTP/1.1\r\n", 18);
    spin(1);
    conn_sweep(c, wsgw_now_ms(S) + 50);
    CHECK_INT(c->state, CONN_HANDSHAKE);
    conn_sweep(c, wsgw_now_ms(S) + 150);
    CHECK_INT(c->state, CONN_DEAD);
    CHECK_INT(S->metrics.handshake_failures[HS_FAIL_TIMEOUT], 1);
    CHECK_INT(seen.opened, 0);
    CHECK_INT(seen.closed, 0);               /* never opened: no close hook */
    uint8_t buf[16];
    CHECK_INT(read(fd, buf, sizeof buf), 0);
    spin(1);
    CHECK_INT(seen.freed, 1);
    close(fd);
    server_down();
}

/* read_timeout, ping_period and pong_timeout ride the same sweep. */
static void test_idle_timeouts(void)
{
    config();
    cfg.read_timeout_ms = 1000;
    cfg.ping_period_ms = 300;
    cfg.pong_timeout_ms = 600;
    server_up();
    wsgw_conn_t *c;
    int fd = upgrade(&c);
    uint64_t t0 = wsgw_now_ms(S);
    conn_sweep(c, t0 + 100);
    CHECK(!c->awaiting_pong);
    CHECK(seen.swept >= 1);                  /* the features' per-connection sweep */
    conn_sweep(c, t0 + 350);                 /* ping_period: a ping */
    CHECK(c->awaiting_pong);
    spin(1);
    uint8_t buf[256];
    int op = 0;
    uint16_t code = 0;
    size_t n = drain(fd, buf, sizeof buf);
    CHECK_INT(frames(buf, n, &op, &code), 1);
    CHECK_INT(op, WS_OP_PING);
    send_frame(fd, WS_OP_PONG, "", 0);       /* answered: no pong timeout */
    spin(1);
    CHECK(!c->awaiting_pong);
    CHECK_INT(c->state, CONN_OPEN);
    conn_sweep(c, t0 + 1100);                /* nothing read for read_timeout */
    CHECK_INT(c->state, CONN_CLOSING);
    CHECK_INT(c->close_code, WS_CLOSE_GOING_AWAY);
    CHECK_INT(S->metrics.closes[CLOSE_READ_TIMEOUT], 1);
    close(fd);
    spin(2);

    /* A ping never answered: pong_timeout closes with 1001. */
    fd = upgrade(&c);
    t0 = wsgw_now_ms(S);
    conn_sweep(c, t0 + 350);
    CHECK(c->awaiting_pong);
    conn_sweep(c, t0 + 350 + 610);          /* before read_timeout (1000) */
    CHECK_INT(c->state, CONN_CLOSING);
    CHECK_INT(c->close_code, WS_CLOSE_GOING_AWAY);
    CHECK_INT(S->metrics.closes[CLOSE_PING_TIMEOUT], 1);
    close(fd);
    server_down();
}

/* A join's answer: at once when no feature holds it, else when the last
 * holder releases it, with its status; a connection gone by then gets
 * the callback with NULL. */
static struct { int calls; wsgw_conn_t *c; int status; char arg[8]; } answered;

static void answer_cb(wsgw_conn_t *c, int status, const uint8_t *arg, size_t len)
{
    answered.calls++;
    answered.c = c;
    answered.status = status;
    memcpy(answered.arg, arg, len < sizeof answered.arg ? len : sizeof answered.arg);
}

static void test_deferred_answer(void)
{
    config();
    server_up();
    wsgw_conn_t *c;
    int fd = upgrade(&c);
    memset(&answered, 0, sizeof answered);
    core_answer_t a = { .c = c, .cb = answer_cb, .arg = "id1", .len = 4 };
    CHECK_INT(core_join(c, "r1", 2, &a), 1);
    core_answer_finish(&a, CORE_DEFER_OK);            /* nobody held it: now */
    CHECK_INT(answered.calls, 1);
    CHECK(answered.c == c);

    hold_joins = 1;
    core_answer_t b = { .c = c, .cb = answer_cb, .arg = "id2", .len = 4 };
    CHECK_INT(core_join(c, "r2", 2, &b), 1);
    CHECK(held != NULL);
    core_answer_finish(&b, CORE_DEFER_OK);
    CHECK_INT(answered.calls, 1);                     /* still held */
    core_defer_release(held, CORE_DEFER_DROPPED);
    CHECK_INT(answered.calls, 2);
    CHECK(answered.c == c);
    CHECK_INT(answered.status, CORE_DEFER_DROPPED);
    CHECK(memcmp(answered.arg, "id2", 4) == 0);       /* copied when held */

    core_answer_t d = { .c = c, .cb = answer_cb, .arg = "id3", .len = 4 };
    CHECK_INT(core_join(c, "r3", 2, &d), 1);
    core_answer_finish(&d, CORE_DEFER_OK);
    close(fd);
    spin(2);                                          /* the connection is gone */
    core_defer_release(held, CORE_DEFER_OK);
    CHECK_INT(answered.calls, 3);
    CHECK(answered.c == NULL);
    hold_joins = 0;
    held = NULL;
    server_down();
}

/* A room's delivery filter decides, per member, what the fan-out queues. */
static int filter_calls;
static int skip_odd(void *ud, const wsgw_room_t *r, wsgw_conn_t *c, const envelope_delivery_t *d)
{
    (void)r; (void)d;
    filter_calls++;
    return c != ud;
}

static void test_room_filter(void)
{
    config();
    server_up();
    wsgw_conn_t *a, *b;
    int fa = upgrade(&a), fb = upgrade(&b);
    CHECK_INT(core_join(a, "lobby", 5, NULL), 1);
    CHECK_INT(core_join(b, "lobby", 5, NULL), 1);
    envelope_delivery_t d = {
        .event = { (const uint8_t *)"chat", 4 }, .data = { (const uint8_t *)"1", 1 },
        .to = ENVELOPE_TO_ROOM, .to_name = { (const uint8_t *)"lobby", 5 },
    };
    CHECK_INT(core_deliver(S, &d, WSGW_TO_ROOM, "lobby", 5, NULL, NULL), 2);
    wsgw_room_t *r = rooms_find(&S->rooms, "lobby", 5);
    r->filter = skip_odd;
    r->filter_ud = b;
    CHECK_INT(core_deliver(S, &d, WSGW_TO_ROOM, "lobby", 5, NULL, NULL), 1);
    CHECK_INT(filter_calls, 2);
    spin(1);
    uint8_t buf[512];
    int op = 0;
    uint16_t code = 0;
    CHECK_INT(frames(buf, drain(fa, buf, sizeof buf), &op, &code), 2);
    CHECK_INT(frames(buf, drain(fb, buf, sizeof buf), &op, &code), 1);
    close(fa);
    close(fb);
    server_down();
}

/* An upgrade to a path no codec serves is refused (404), before any hook. */
static void test_no_codec_path(void)
{
    config();
    server_up();
    wsgw_conn_t *c;
    int fd = client(&c);
    static const char req[] =
        "GET /elsewhere HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    send_all(fd, req, sizeof req - 1);
    spin(2);
    uint8_t buf[1024];
    size_t n = drain(fd, buf, sizeof buf);
    CHECK(n > 12 && memcmp(buf, "HTTP/1.1 404", 12) == 0);
    CHECK_INT(seen.opened, 0);
    close(fd);
    server_down();
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);                /* as wsgw_run does: EPIPE, not a signal */
    wsgw_log_set_level(WSGW_LOG_ERROR);      /* the closes it causes are expected */
    RUN(test_upgrade_and_hooks);
    RUN(test_write_batched);
    RUN(test_write_partial);
    RUN(test_slow_consumer);
    RUN(test_close_by_client);
    RUN(test_close_by_server);
    RUN(test_handshake_timeout);
    RUN(test_idle_timeouts);
    RUN(test_no_codec_path);
    RUN(test_deferred_answer);
    RUN(test_room_filter);
    return test_report("core");
}
