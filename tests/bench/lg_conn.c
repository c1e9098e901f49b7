/* lg_conn.c — see lg_conn.h. */
#include "lg_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ws_frame.h"
#include "ws_http.h"
#include "ws_status.h"

#define LG_READ_BUF     (256u << 10)
#define LG_MAX_MESSAGE  (1u << 20)
#define LG_MAX_RESPONSE 4096          /* a 101 is a few hundred bytes */
#define LG_EVENTS       1024

uint64_t lg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void lg_fail(const lg_conn_t *c, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    if (c) fprintf(stderr, "loadgen: conn %u (%s): ", c->idx, c->id_len ? c->id : "no id yet");
    else fprintf(stderr, "loadgen: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static uint64_t lg_rand(lg_loop_t *l)
{
    /* xorshift64*: masks only need to vary, not to be secret. */
    l->rng ^= l->rng >> 12;
    l->rng ^= l->rng << 25;
    l->rng ^= l->rng >> 27;
    return l->rng * 0x2545F4914F6CDD1Dull;
}

/* ---- loop ------------------------------------------------------------------ */

int lg_loop_init(lg_loop_t *l, const char *url, const lg_callbacks_t *cb, void *ud,
                 char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    if (strncmp(url, "ws://", 5) != 0) {
        snprintf(err, errlen, "url %s: only ws:// is supported", url);
        return -1;
    }
    const char *hp = url + 5;
    const char *slash = strchr(hp, '/');
    size_t hplen = slash ? (size_t)(slash - hp) : strlen(hp);
    if (hplen == 0 || hplen >= sizeof l->host) {
        snprintf(err, errlen, "url %s: no host", url);
        return -1;
    }
    memcpy(l->host, hp, hplen);
    l->host[hplen] = '\0';
    snprintf(l->path, sizeof l->path, "%s", slash ? slash : "/");
    char host[300];
    snprintf(host, sizeof host, "%s", l->host);
    char *colon = strrchr(host, ':');
    if (!colon) {
        snprintf(err, errlen, "url %s: give a port (ws://HOST:PORT/PATH)", url);
        return -1;
    }
    *colon = '\0';
    long port = strtol(colon + 1, NULL, 10);
    if (port <= 0 || port > 65535) {
        snprintf(err, errlen, "url %s: bad port", url);
        return -1;
    }
    l->addr.sin_family = AF_INET;
    l->addr.sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0) snprintf(host, sizeof host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &l->addr.sin_addr) != 1) {
        snprintf(err, errlen, "url %s: host must be a numeric IPv4 address", url);
        return -1;
    }
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
        return -1;
    }
    l->cb = *cb;
    l->ud = ud;
    l->rcap = LG_READ_BUF;
    l->rbuf = ws_xmalloc(l->rcap);
    l->rng = lg_now_ns() | 1;
    return 0;
}

void lg_loop_free(lg_loop_t *l)
{
    if (l->epfd >= 0) close(l->epfd);
    ws_xfree(l->rbuf);
    l->rbuf = NULL;
}

static void lg_conn_events(lg_conn_t *c, uint32_t ev, int op)
{
    struct epoll_event e = { .events = ev, .data.ptr = c };
    if (epoll_ctl(c->loop->epfd, op, c->fd, &e) != 0)
        lg_fail(c, "epoll_ctl: %s", strerror(errno));
}

/* ---- write path ------------------------------------------------------------- */

static void lg_conn_write(lg_conn_t *c, const void *p, size_t n)
{
    lg_loop_t *l = c->loop;
    if (c->out.len == c->out_off) {       /* nothing queued: write at once */
        while (n > 0) {
            ssize_t w = write(c->fd, p, n);
            if (w < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                lg_fail(c, "write: %s", strerror(errno));
            }
            l->bytes_out += (uint64_t)w;
            p = (const uint8_t *)p + w;
            n -= (size_t)w;
        }
        if (n == 0) return;
        c->out.len = c->out_off = 0;
    }
    ws_buf_append(&c->out, p, n);
    if (!c->out_armed) {
        c->out_armed = 1;
        lg_conn_events(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
    }
}

static void lg_conn_flush(lg_conn_t *c)
{
    while (c->out_off < c->out.len) {
        ssize_t w = write(c->fd, c->out.data + c->out_off, c->out.len - c->out_off);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            lg_fail(c, "write: %s", strerror(errno));
        }
        c->loop->bytes_out += (uint64_t)w;
        c->out_off += (size_t)w;
    }
    ws_buf_free(&c->out);
    c->out_off = 0;
    c->out_armed = 0;
    lg_conn_events(c, EPOLLIN, EPOLL_CTL_MOD);
}

static void lg_conn_send_frame(lg_conn_t *c, ws_opcode_t op, const void *p, size_t n)
{
    uint8_t stack[4096];
    size_t need = WS_FRAME_HEADER_MAX + n;
    uint8_t *buf = need <= sizeof stack ? stack : ws_xmalloc(need);
    uint64_t r = lg_rand(c->loop);
    uint8_t mask[4] = { (uint8_t)r, (uint8_t)(r >> 8), (uint8_t)(r >> 16), (uint8_t)(r >> 24) };
    size_t h = ws_frame_write_header(buf, 1, 0, op, n, mask);
    if (n) {
        memcpy(buf + h, p, n);
        ws_mask(buf + h, n, mask, 0);
    }
    lg_conn_write(c, buf, h + n);
    if (buf != stack) ws_xfree(buf);
}

void lg_conn_send_text(lg_conn_t *c, const void *p, size_t n)
{
    if (c->state != LG_OPEN) lg_fail(c, "send in state %d", c->state);
    lg_conn_send_frame(c, WS_OP_TEXT, p, n);
}

void lg_conn_close(lg_conn_t *c)
{
    if (c->state != LG_OPEN) lg_fail(c, "close in state %d", c->state);
    uint8_t payload[2] = { 1000 >> 8, 1000 & 0xff };
    lg_conn_send_frame(c, WS_OP_CLOSE, payload, sizeof payload);
    c->state = LG_CLOSING;
}

static void lg_conn_release(lg_conn_t *c)
{
    if (c->fd >= 0) close(c->fd);     /* also removes it from the epoll set */
    c->fd = -1;
    ws_reader_free(&c->reader);
    ws_buf_free(&c->hs);
    ws_buf_free(&c->out);
    c->out_off = 0;
    c->out_armed = 0;
}

void lg_conn_drop(lg_conn_t *c)
{
    lg_conn_release(c);
    c->state = LG_DONE;
}

/* ---- connect and handshake --------------------------------------------------- */

static void lg_make_key(lg_loop_t *l, char out[25])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t raw[18];
    uint64_t a = lg_rand(l), b = lg_rand(l);
    memcpy(raw, &a, 8);
    memcpy(raw + 8, &b, 8);
    raw[16] = raw[17] = 0;
    size_t o = 0;
    for (size_t i = 0; i < 18; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
        out[o++] = b64[v & 63];
    }
    /* 16 bytes -> 22 characters and "==" */
    out[22] = out[23] = '=';
    out[24] = '\0';
}

/* The upgrade request into out; returns its length. */
static size_t lg_request(const lg_conn_t *c, char *out, size_t cap)
{
    int n = snprintf(out, cap,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     c->loop->path, c->loop->host, c->key);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

void lg_conn_start(lg_loop_t *l, lg_conn_t *c)
{
    uint32_t idx = c->idx;
    uint64_t *bits = c->bits;
    memset(c, 0, sizeof *c);
    c->idx = idx;
    c->bits = bits;       /* the scenario's, kept across restarts */
    c->loop = l;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) lg_fail(c, "socket: %s (raise ulimit -n?)", strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = connect(c->fd, (const struct sockaddr *)&l->addr, sizeof l->addr);
    if (rc != 0 && errno != EINPROGRESS) lg_fail(c, "connect: %s", strerror(errno));
    lg_make_key(l, c->key);
    /* On loopback the connection is usually established by the time
     * connect() returns: send the request at once and skip a wait for
     * writability (two syscalls and a loop pass per handshake).  A socket
     * still in SYN_SENT answers EAGAIN, and we wait as usual. */
    char req[1024];
    size_t n = lg_request(c, req, sizeof req);
    ssize_t w = write(c->fd, req, n);
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN)
        lg_fail(c, "connect: %s", strerror(errno));
    if (w < 0) {
        c->state = LG_CONNECTING;
        lg_conn_events(c, EPOLLOUT, EPOLL_CTL_ADD);
        return;
    }
    l->bytes_out += (uint64_t)w;
    c->state = LG_HANDSHAKE;
    lg_conn_events(c, EPOLLIN, EPOLL_CTL_ADD);
    if ((size_t)w < n) lg_conn_write(c, req + w, n - (size_t)w);
}

static void lg_conn_connected(lg_conn_t *c)
{
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    if (soerr) lg_fail(c, "connect: %s", strerror(soerr));
    char req[1024];
    size_t n = lg_request(c, req, sizeof req);
    c->state = LG_HANDSHAKE;
    lg_conn_events(c, EPOLLIN, EPOLL_CTL_MOD);
    lg_conn_write(c, req, n);
}

/* Value of header `name` in the response head, or NULL; *len its length. */
static const char *lg_header(const char *head, size_t hlen, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    const char *p = memchr(head, '\n', hlen);
    const char *end = head + hlen;
    while (p && p + 1 < end) {
        const char *line = p + 1;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol) break;
        if ((size_t)(eol - line) > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            *len = (size_t)(ve - v);
            return v;
        }
        p = eol;
    }
    return NULL;
}

static void lg_conn_ws_input(lg_conn_t *c, uint8_t *buf, size_t n);

static void lg_conn_handshake_input(lg_conn_t *c, const uint8_t *buf, size_t n)
{
    ws_buf_append(&c->hs, buf, n);
    if (c->hs.len > LG_MAX_RESPONSE) lg_fail(c, "handshake response over %u bytes", LG_MAX_RESPONSE);
    const char *head = (const char *)c->hs.data;
    const char *end = memmem(head, c->hs.len, "\r\n\r\n", 4);
    if (!end) return;
    size_t hlen = (size_t)(end - head) + 4;
    if (hlen < 13 || memcmp(head, "HTTP/1.1 101 ", 13) != 0) {
        const char *eol = memchr(head, '\r', hlen);
        lg_fail(c, "handshake refused: %.*s", (int)(eol - head), head);
    }
    char expect[29];
    ws_handshake_accept(c->key, 24, expect);
    size_t alen = 0;
    const char *accept = lg_header(head, hlen, "Sec-WebSocket-Accept", &alen);
    if (!accept || alen != 28 || memcmp(accept, expect, 28) != 0)
        lg_fail(c, "bad or missing Sec-WebSocket-Accept");
    ws_reader_config_t rcfg = { .max_message_size = LG_MAX_MESSAGE, .role = WS_ROLE_CLIENT };
    ws_reader_init(&c->reader, &rcfg);
    c->state = LG_WELCOME;
    /* Frames that came with the 101 (the welcome usually does). */
    ws_buf_t hs = c->hs;
    memset(&c->hs, 0, sizeof c->hs);
    if (hs.len > hlen) lg_conn_ws_input(c, hs.data + hlen, hs.len - hlen);
    ws_buf_free(&hs);
}

/* ---- WebSocket input ---------------------------------------------------------- */

static void lg_conn_welcome(lg_conn_t *c, const uint8_t *p, size_t n)
{
    static const char pre[] = "{\"op\":\"welcome\",\"conn\":\"";
    size_t pl = sizeof pre - 1;
    if (n < pl + 2 || memcmp(p, pre, pl) != 0)
        lg_fail(c, "expected a welcome, got: %.*s", (int)(n > 200 ? 200 : n), (const char *)p);
    const uint8_t *q = memchr(p + pl, '"', n - pl);
    if (!q || q == p + pl || (size_t)(q - (p + pl)) >= sizeof c->id)
        lg_fail(c, "bad welcome: %.*s", (int)(n > 200 ? 200 : n), (const char *)p);
    c->id_len = (uint8_t)(q - (p + pl));
    memcpy(c->id, p + pl, c->id_len);
    c->id[c->id_len] = '\0';
    c->state = LG_OPEN;
    if (c->loop->cb.on_open) c->loop->cb.on_open(c);
}

static void lg_conn_message(lg_conn_t *c, const ws_msg_t *m)
{
    lg_loop_t *l = c->loop;
    l->frames_in++;
    switch (m->type) {
    case WS_MSG_TEXT:
        if (c->state == LG_WELCOME) lg_conn_welcome(c, m->data, m->len);
        else if (c->state == LG_OPEN && l->cb.on_text) l->cb.on_text(c, m->data, m->len);
        /* LG_CLOSING: deliveries still in flight when we closed are fine. */
        return;
    case WS_MSG_BINARY:
        lg_fail(c, "unexpected binary message (%zu bytes)", m->len);
    case WS_MSG_PING:
        if (c->state != LG_CLOSING) lg_conn_send_frame(c, WS_OP_PONG, m->data, m->len);
        return;
    case WS_MSG_PONG:
        return;
    case WS_MSG_CLOSE:
        if (c->state != LG_CLOSING)
            lg_fail(c, "server closed the connection: code %u reason \"%.*s\"",
                    (unsigned)m->close_code, (int)m->len, (const char *)m->data);
        if (m->close_code != 1000)
            lg_fail(c, "server answered our close with code %u", (unsigned)m->close_code);
        c->close_seen = 1;
        return;
    }
}

static void lg_conn_ws_input(lg_conn_t *c, uint8_t *buf, size_t n)
{
    size_t off = 0;
    while (off < n) {
        size_t used = 0;
        ws_msg_t m;
        int rc = ws_reader_feed(&c->reader, buf + off, n - off, &used, &m);
        off += used;
        if (rc == 0) return;
        if (rc < 0) lg_fail(c, "protocol error from server: %s", ws_err_str(rc));
        lg_conn_message(c, &m);
        if (c->state == LG_DONE || c->fd < 0) return;
    }
}

static void lg_conn_eof(lg_conn_t *c)
{
    if (c->state != LG_CLOSING || !c->close_seen)
        lg_fail(c, "server closed the TCP connection without a close handshake (state %d)", c->state);
    lg_conn_release(c);
    c->state = LG_DONE;
    if (c->loop->cb.on_closed) c->loop->cb.on_closed(c);
}

static void lg_conn_readable(lg_conn_t *c)
{
    lg_loop_t *l = c->loop;
    for (int round = 0; round < 4; round++) {
        ssize_t n = read(c->fd, l->rbuf, l->rcap);
        if (n == 0) { lg_conn_eof(c); return; }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            lg_fail(c, "read: %s", strerror(errno));
        }
        l->bytes_in += (uint64_t)n;
        l->now_ns = lg_now_ns();
        if (c->state == LG_HANDSHAKE) lg_conn_handshake_input(c, l->rbuf, (size_t)n);
        else lg_conn_ws_input(c, l->rbuf, (size_t)n);
        if (c->fd < 0) return;
        /* A short read drained the socket, unless the server's close just
         * came: its EOF is usually right behind, so read on for it. */
        if ((size_t)n < l->rcap && !(c->state == LG_CLOSING && c->close_seen)) return;
    }
}

int lg_loop_poll(lg_loop_t *l, int timeout_ms)
{
    struct epoll_event ev[LG_EVENTS];
    int n = epoll_wait(l->epfd, ev, LG_EVENTS, timeout_ms);
    if (n < 0) {
        if (errno == EINTR) return 0;
        lg_fail(NULL, "epoll_wait: %s", strerror(errno));
    }
    for (int i = 0; i < n; i++) {
        lg_conn_t *c = ev[i].data.ptr;
        if (c->fd < 0) continue;                       /* closed earlier in this batch */
        uint32_t e = ev[i].events;
        if (c->state == LG_CONNECTING) {
            if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) lg_conn_connected(c);
            continue;
        }
        if ((e & EPOLLOUT) && c->out_armed) lg_conn_flush(c);
        if (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) lg_conn_readable(c);
    }
    return n;
}
