/* lg_conn.c — see lg_conn.h. */
#include "lg_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lg_sio.h"
#include "lg_tls.h"
#include "ws_frame.h"
#include "ws_http.h"
#include "ws_status.h"

#define LG_READ_BUF     (256u << 10)
#define LG_READ_ROUNDS  4             /* reads per readiness before others get a turn */
#define LG_MAX_MESSAGE  (1u << 20)
#define LG_MAX_RESPONSE 4096          /* a 101 is a few hundred bytes */
#define LG_EVENTS       1024

enum { LG_EV_IN = 1, LG_EV_OUT = 2 };

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

static int lg_parse_url(lg_loop_t *l, const char *url, char *ip, size_t iplen, char *err, size_t errlen)
{
    const char *hp;
    if (strncmp(url, "ws://", 5) == 0) hp = url + 5;
    else if (strncmp(url, "wss://", 6) == 0) hp = url + 6, l->tls = 1;
    else {
        snprintf(err, errlen, "url %s: give ws://HOST:PORT/PATH or wss://HOST:PORT/PATH", url);
        return -1;
    }
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
    if (strcmp(host, "localhost") == 0) {
        snprintf(l->sni, sizeof l->sni, "localhost");
        snprintf(host, sizeof host, "127.0.0.1");
    }
    if (inet_pton(AF_INET, host, &l->addr.sin_addr) != 1) {
        snprintf(err, errlen, "url %s: host must be a numeric IPv4 address or localhost", url);
        return -1;
    }
    snprintf(ip, iplen, "%s", host);
    return 0;
}

/* Binds a throwaway socket to the --bind address, so a wrong one fails
 * here with one clear line rather than at the first connection. */
static int lg_check_bind(lg_loop_t *l, const char *bind_ip, char *err, size_t errlen)
{
    l->src.sin_family = AF_INET;
    if (inet_pton(AF_INET, bind_ip, &l->src.sin_addr) != 1) {
        snprintf(err, errlen, "--bind %s: give a numeric IPv4 address", bind_ip);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (const struct sockaddr *)&l->src, sizeof l->src) != 0) {
        snprintf(err, errlen, "--bind %s: %s (it must be an address of this host: 127.0.0.0/8 is)",
                 bind_ip, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    l->bind_src = 1;
    return 0;
}

int lg_loop_init(lg_loop_t *l, const lg_loop_opts_t *o, const lg_callbacks_t *cb, void *ud,
                 char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    l->epfd = -1;
    char ip[300];
    if (lg_parse_url(l, o->url, ip, sizeof ip, err, errlen) != 0) return -1;
    if (o->bind && lg_check_bind(l, o->bind, err, errlen) != 0) return -1;
    l->dialect = o->dialect;
    if (l->dialect == LG_DIALECT_SIO) snprintf(l->path, sizeof l->path, "%s", LG_SIO_PATH);
    if (o->sni) snprintf(l->sni, sizeof l->sni, "%s", o->sni);
    if (l->tls) {
        lg_tls_opts_t to = { .verify = o->tls_verify, .ca_file = o->tls_ca,
                             .sni = l->sni[0] ? l->sni : NULL, .ip = ip };
        l->tls_ctx = lg_tls_ctx_new(&to, err, errlen);
        if (!l->tls_ctx) return -1;
        l->tls_release_buffers = o->tls_release_buffers;
    } else if (o->sni || o->tls_verify || o->tls_ca) {
        snprintf(err, errlen, "--sni, --tls-verify and --tls-ca need a wss:// URL");
        return -1;
    }
    lg_pmd_init(&l->pmd, o->deflate, o->size_hint, o->distinct_hint);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
        return -1;
    }
    l->cb = *cb;
    l->ud = ud;
    l->rcap = LG_READ_BUF;
    l->rbuf = ws_xmalloc(l->rcap);
    ws_buf_reserve(&l->wbuf, 4096 + WS_FRAME_HEADER_MAX);
    l->rng = lg_now_ns() | 1;
    return 0;
}

void lg_loop_free(lg_loop_t *l)
{
    if (l->epfd >= 0) close(l->epfd);
    l->epfd = -1;
    ws_xfree(l->rbuf);
    l->rbuf = NULL;
    ws_buf_free(&l->wbuf);
    lg_pmd_free(&l->pmd);
    if (l->tls_ctx) lg_tls_ctx_free(l->tls_ctx);
    l->tls_ctx = NULL;
}

/* The epoll interest a connection needs now, from its state, the TLS
 * waits and its output queue; epoll_ctl only when that changes. */
static void lg_conn_arm(lg_conn_t *c)
{
    uint8_t want;
    switch (c->state) {
    case LG_CONNECTING:
        want = LG_EV_OUT;
        break;
    case LG_TLS:
        want = c->read_want == LG_TLS_WANT_WRITE ? LG_EV_OUT : LG_EV_IN;
        break;
    default:
        want = LG_EV_IN;
        if (c->read_want == LG_TLS_WANT_WRITE) want |= LG_EV_OUT;
        if (c->out_off < c->out.len && c->write_want != LG_TLS_WANT_READ) want |= LG_EV_OUT;
        break;
    }
    if (want == c->armed) return;
    struct epoll_event e = {
        .events = ((want & LG_EV_IN) ? EPOLLIN : 0u) | ((want & LG_EV_OUT) ? EPOLLOUT : 0u),
        .data.ptr = c
    };
    if (epoll_ctl(c->loop->epfd, c->armed ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e) != 0)
        lg_fail(c, "epoll_ctl: %s", strerror(errno));
    c->armed = want;
}

/* ---- transport: the one place that knows plain TCP from TLS ------------------ */

static void lg_conn_connect_failed(lg_conn_t *c, int err) __attribute__((noreturn));

/* Writes what the transport takes of p[0..n) now; returns that count. */
static size_t lg_io_write(lg_conn_t *c, const void *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w;
        if (c->ssl) {
            int want;
            w = lg_tls_write(c, (const uint8_t *)p + done, n - done, &want);
            c->write_want = (uint8_t)want;
            if (w < 0) break;
        } else {
            w = write(c->fd, (const uint8_t *)p + done, n - done);
            if (w < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                if (errno == ECONNREFUSED) lg_conn_connect_failed(c, errno);
                lg_fail(c, "write: %s", strerror(errno));
            }
        }
        done += (size_t)w;
    }
    c->loop->bytes_out += done;
    return done;
}

/* Reads into the loop's buffer: the bytes read (> 0), 0 at the end of the
 * stream, -1 when nothing is there now. */
static ssize_t lg_io_read(lg_conn_t *c)
{
    lg_loop_t *l = c->loop;
    if (c->ssl) {
        int want;
        ssize_t n = lg_tls_read(c, l->rbuf, l->rcap, &want);
        c->read_want = (uint8_t)want;
        return n;
    }
    for (;;) {
        ssize_t n = read(c->fd, l->rbuf, l->rcap);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return -1;
        if (errno == ECONNREFUSED) lg_conn_connect_failed(c, errno);
        lg_fail(c, "read: %s", strerror(errno));
    }
}

/* ---- write path ------------------------------------------------------------- */

static void lg_conn_write(lg_conn_t *c, const void *p, size_t n)
{
    if (c->out.len == c->out_off) {       /* nothing queued: write at once */
        size_t w = lg_io_write(c, p, n);
        if (w == n) return;
        p = (const uint8_t *)p + w;
        n -= w;
        c->out.len = c->out_off = 0;
    }
    ws_buf_append(&c->out, p, n);
    lg_conn_arm(c);
}

static void lg_conn_flush(lg_conn_t *c)
{
    c->out_off += lg_io_write(c, c->out.data + c->out_off, c->out.len - c->out_off);
    if (c->out_off == c->out.len) {
        ws_buf_free(&c->out);
        c->out_off = 0;
    }
    lg_conn_arm(c);
}

/* One masked frame whose payload is head + p + tail (the dialect's
 * wrapping; head and tail may be empty), built in the loop's buffer. */
static void lg_conn_send_parts(lg_conn_t *c, ws_opcode_t op, const char *head, size_t hl,
                               const void *p, size_t n, const char *tail, size_t tl)
{
    lg_loop_t *l = c->loop;
    size_t len = hl + n + tl;
    l->wbuf.len = 0;
    uint8_t *buf = ws_buf_reserve(&l->wbuf, WS_FRAME_HEADER_MAX + len);
    uint64_t r = lg_rand(l);
    uint8_t mask[4] = { (uint8_t)r, (uint8_t)(r >> 8), (uint8_t)(r >> 16), (uint8_t)(r >> 24) };
    size_t h = ws_frame_write_header(buf, 1, 0, op, len, mask);
    if (hl) memcpy(buf + h, head, hl);
    if (n) memcpy(buf + h + hl, p, n);
    if (tl) memcpy(buf + h + hl + n, tail, tl);
    if (len) ws_mask(buf + h, len, mask, 0);
    lg_conn_write(c, buf, h + len);
}

static void lg_conn_send_frame(lg_conn_t *c, ws_opcode_t op, const void *p, size_t n)
{
    lg_conn_send_parts(c, op, NULL, 0, p, n, NULL, 0);
}

void lg_conn_send_text(lg_conn_t *c, const void *p, size_t n)
{
    static const char head[] = LG_SIO_HEAD, tail[] = LG_SIO_TAIL;
    if (c->state != LG_OPEN) lg_fail(c, "send in state %d", c->state);
    if (c->loop->dialect == LG_DIALECT_SIO)
        lg_conn_send_parts(c, WS_OP_TEXT, head, sizeof head - 1, p, n, tail, sizeof tail - 1);
    else
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
    if (c->ssl) lg_tls_detach(c);
    if (c->fd >= 0) {
        close(c->fd);                 /* also removes it from the epoll set */
        c->loop->open--;
    }
    c->fd = -1;
    c->armed = 0;
    ws_reader_free(&c->reader);
    ws_inflater_free(c->inflater);
    c->inflater = NULL;
    ws_buf_free(&c->hs);
    ws_buf_free(&c->out);
    c->out_off = 0;
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
    const lg_loop_t *l = c->loop;
    int n = snprintf(out, cap,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                     l->path, l->host, c->key, l->pmd.offered ? LG_PMD_OFFER_HEADER : "");
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Says what failed and why, in the terms of the fix. */
static void lg_conn_connect_failed(lg_conn_t *c, int err)
{
    const lg_loop_t *l = c->loop;
    char dst[64], src[32] = "";
    inet_ntop(AF_INET, &l->addr.sin_addr, dst, sizeof dst);
    snprintf(dst + strlen(dst), sizeof dst - strlen(dst), ":%u", (unsigned)ntohs(l->addr.sin_port));
    if (l->bind_src) inet_ntop(AF_INET, &l->src.sin_addr, src, sizeof src);
    if (err == EADDRNOTAVAIL)
        lg_fail(c, "connect to %s from %s: %s: no local port left for this source and destination "
                   "(%" PRIu64 " sockets open in this process; each source address gives at most the ports of "
                   "net.ipv4.ip_local_port_range per destination): spread the connections over "
                   "several generators with different --bind addresses (127.0.0.2, 127.0.0.3, ...)",
                dst, l->bind_src ? src : "the default address", strerror(err), l->open);
    if (err == ECONNREFUSED)
        lg_fail(c, "connect to %s: connection refused: is the server listening there? "
                   "(%" PRIu64 " sockets open)", dst, l->open);
    lg_fail(c, "connect to %s: %s", dst, strerror(err));
}

static void lg_conn_send_request(lg_conn_t *c)
{
    char req[1024];
    size_t n = lg_request(c, req, sizeof req);
    c->state = LG_HANDSHAKE;
    lg_conn_write(c, req, n);
    lg_conn_arm(c);
}

/* One step of the TLS handshake; the upgrade request once it is done. */
static void lg_conn_tls_step(lg_conn_t *c)
{
    int r = lg_tls_handshake(c);
    c->read_want = (uint8_t)r;
    if (r != LG_TLS_DONE) {
        lg_conn_arm(c);
        return;
    }
    lg_loop_t *l = c->loop;
    if (!l->tls_desc[0]) lg_tls_describe(c, l->tls_desc, sizeof l->tls_desc);
    lg_conn_send_request(c);
}

static void lg_conn_tls_begin(lg_conn_t *c)
{
    lg_loop_t *l = c->loop;
    lg_tls_attach(c, l->tls_ctx, l->sni[0] ? l->sni : NULL, l->tls_release_buffers);
    c->state = LG_TLS;
    lg_conn_tls_step(c);
}

void lg_conn_start(lg_loop_t *l, lg_conn_t *c)
{
    uint32_t idx = c->idx;
    uint64_t *bits = c->bits;
    uint8_t pending = c->pending;
    lg_conn_t *pend_next = c->pend_next;
    memset(c, 0, sizeof *c);
    c->idx = idx;
    c->bits = bits;       /* the scenario's, kept across restarts */
    c->pending = pending; /* the loop's list, which may still hold this slot */
    c->pend_next = pend_next;
    c->loop = l;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        struct rlimit rl = { 0, 0 };
        getrlimit(RLIMIT_NOFILE, &rl);
        lg_fail(c, "socket: %s (%" PRIu64 " sockets open, open-file limit %llu)", strerror(errno),
                l->open, (unsigned long long)rl.rlim_cur);
    }
    l->open++;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (l->bind_src) {
        /* The port is picked at connect(), per (source, destination): with
         * a bind() alone it would be unique per source address, and one
         * address would run out after ~28k connections in total. */
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(c->fd, (const struct sockaddr *)&l->src, sizeof l->src) != 0)
            lg_fail(c, "bind: %s", strerror(errno));
    }
    int rc = connect(c->fd, (const struct sockaddr *)&l->addr, sizeof l->addr);
    if (rc != 0 && errno != EINPROGRESS) lg_conn_connect_failed(c, errno);
    lg_make_key(l, c->key);
    if (l->tls) {
        /* On loopback the connection is usually established by the time
         * connect() returns: start the TLS handshake at once when it is. */
        struct sockaddr_in peer;
        socklen_t pl = sizeof peer;
        if (rc == 0 || getpeername(c->fd, (struct sockaddr *)&peer, &pl) == 0) {
            lg_conn_tls_begin(c);
        } else {
            c->state = LG_CONNECTING;
            lg_conn_arm(c);
        }
        return;
    }
    /* Plain: send the request at once and skip a wait for writability (two
     * syscalls and a loop pass per handshake).  A socket still in SYN_SENT
     * answers EAGAIN or ENOTCONN, and we wait as usual. */
    char req[1024];
    size_t n = lg_request(c, req, sizeof req);
    ssize_t w = write(c->fd, req, n);
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN)
        lg_conn_connect_failed(c, errno);
    if (w < 0) {
        c->state = LG_CONNECTING;
        lg_conn_arm(c);
        return;
    }
    l->bytes_out += (uint64_t)w;
    c->state = LG_HANDSHAKE;
    lg_conn_arm(c);
    if ((size_t)w < n) lg_conn_write(c, req + w, n - (size_t)w);
}

static void lg_conn_connected(lg_conn_t *c)
{
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    if (soerr) lg_conn_connect_failed(c, soerr);
    if (c->loop->tls) lg_conn_tls_begin(c);
    else lg_conn_send_request(c);
}

/* Value of header `name` in the response head after `from` (NULL: the
 * first), or NULL; *len its length. */
static const char *lg_header(const char *head, size_t hlen, const char *name, size_t *len,
                             const char *from)
{
    size_t nl = strlen(name);
    const char *end = head + hlen;
    const char *p = from ? memchr(from, '\n', (size_t)(end - from)) : memchr(head, '\n', hlen);
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

/* Checks the server's Sec-WebSocket-Extensions against our offer and sets
 * up inflating for this connection. */
static void lg_conn_extensions(lg_conn_t *c, const char *head, size_t hlen)
{
    lg_loop_t *l = c->loop;
    size_t xlen = 0, more = 0;
    const char *x = lg_header(head, hlen, "Sec-WebSocket-Extensions", &xlen, NULL);
    if (x && lg_header(head, hlen, "Sec-WebSocket-Extensions", &more, x))
        lg_fail(c, "the 101 has more than one Sec-WebSocket-Extensions line");
    if (!l->pmd.offered) {
        if (x) lg_fail(c, "server answered extensions we did not offer: %.*s", (int)xlen, x);
        return;
    }
    if (!x)
        lg_fail(c, "--deflate: the server declined permessage-deflate (is compression enabled on it?)");
    lg_pmd_params_t p;
    char err[512];
    if (lg_pmd_parse_answer(x, xlen, &p, err, sizeof err) != 0) lg_fail(c, "%s", err);
    if (lg_pmd_agree(&l->pmd, &p) != 0) {
        char a[128], b[128];
        lg_pmd_describe(&p, a, sizeof a);
        lg_pmd_describe(&l->pmd.params, b, sizeof b);
        lg_fail(c, "permessage-deflate agreed as %s, but as %s on the first connection", a, b);
    }
    c->pmd = 1;
    if (!p.server_no_context_takeover) c->inflater = ws_inflater_new(p.server_max_window_bits);
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
    const char *accept = lg_header(head, hlen, "Sec-WebSocket-Accept", &alen, NULL);
    if (!accept || alen != 28 || memcmp(accept, expect, 28) != 0)
        lg_fail(c, "bad or missing Sec-WebSocket-Accept");
    lg_conn_extensions(c, head, hlen);
    lg_loop_t *l = c->loop;
    ws_reader_config_t rcfg = { .max_message_size = LG_MAX_MESSAGE, .role = WS_ROLE_CLIENT };
    if (c->pmd) {
        rcfg.inflater = c->inflater ? c->inflater : l->pmd.shared;
        rcfg.inflate_reset = l->pmd.params.server_no_context_takeover;
    }
    ws_reader_init(&c->reader, &rcfg);
    c->state = LG_WELCOME;
    c->at_boundary = 1;
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

/* A whole text message, inflated: through the dialect to the envelope
 * handlers. */
static void lg_conn_text(lg_conn_t *c, const uint8_t *p, size_t n)
{
    lg_loop_t *l = c->loop;
    if (c->state == LG_CLOSING) return;   /* deliveries still in flight when we closed are fine */
    if (l->dialect == LG_DIALECT_SIO) {
        const char *reply;
        if (!lg_sio_input(c, p, n, &p, &n, &reply)) {
            if (reply) lg_conn_send_frame(c, WS_OP_TEXT, reply, strlen(reply));
            return;
        }
    }
    if (c->state == LG_WELCOME) lg_conn_welcome(c, p, n);
    else if (c->state == LG_OPEN && l->cb.on_text) l->cb.on_text(c, p, n);
}

static void lg_conn_message(lg_conn_t *c, const ws_msg_t *m)
{
    lg_loop_t *l = c->loop;
    l->frames_in++;
    switch (m->type) {
    case WS_MSG_TEXT:
        if (c->pmd) {
            if (!m->compressed) l->pmd.uncompressed++;
            else {                        /* split over reads: the reader inflated it */
                l->pmd.compressed++;
                l->pmd.misses++;
            }
        }
        lg_conn_text(c, m->data, m->len);
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

/* A compressed text message that arrived whole: inflated through the
 * loop's cache (or the connection's own stream), never through the reader. */
static void lg_conn_compressed(lg_conn_t *c, const uint8_t *p, size_t n)
{
    lg_loop_t *l = c->loop;
    const uint8_t *t;
    size_t tn;
    int rc = lg_pmd_inflate(&l->pmd, c->inflater, p, n, LG_MAX_MESSAGE, &t, &tn);
    if (rc != WS_OK) lg_fail(c, "permessage-deflate from server: %s", ws_err_str(rc));
    l->frames_in++;
    lg_conn_text(c, t, tn);
}

static void lg_conn_ws_input(lg_conn_t *c, uint8_t *buf, size_t n)
{
    size_t off = 0;
    while (off < n) {
        size_t whole = 0;   /* length of the complete frame at off, when known */
        if (c->pmd && c->at_boundary) {
            ws_frame_hdr_t h;
            int hl = ws_frame_parse_header(buf + off, n - off, WS_RSV1, WS_ROLE_CLIENT, &h);
            if (hl > 0 && h.payload_len <= n - off - (size_t)hl) {
                whole = (size_t)hl + (size_t)h.payload_len;
                if ((h.rsv & WS_RSV1) && h.fin && h.opcode == WS_OP_TEXT) {
                    if (h.payload_len > LG_MAX_MESSAGE)
                        lg_fail(c, "protocol error from server: %s", ws_err_str(WS_E_MSG_TOO_BIG));
                    off += whole;
                    lg_conn_compressed(c, buf + off - h.payload_len, (size_t)h.payload_len);
                    if (c->state == LG_DONE || c->fd < 0) return;
                    continue;
                }
            }
            /* Anything else, errors included, is the reader's. */
        }
        size_t used = 0;
        ws_msg_t m;
        int rc = ws_reader_feed(&c->reader, buf + off, n - off, &used, &m);
        off += used;
        if (rc < 0) lg_fail(c, "protocol error from server: %s", ws_err_str(rc));
        if (rc == 0) {                       /* the reader now holds part of something */
            c->at_boundary = 0;
            return;
        }
        /* The reader is between messages after a data message, or after a
         * control frame that was the one whole frame at off (not one that
         * interrupted a fragmented message); never after a close. */
        c->at_boundary = m.type == WS_MSG_TEXT || m.type == WS_MSG_BINARY ||
                         (whole && used == whole && m.type != WS_MSG_CLOSE);
        lg_conn_message(c, &m);
        if (c->state == LG_DONE || c->fd < 0) return;
    }
}

static void lg_conn_eof(lg_conn_t *c)
{
    if (c->state != LG_CLOSING || !c->close_seen)
        lg_fail(c, "server closed the %s connection without a close handshake (state %d)",
                c->ssl ? "TLS" : "TCP", c->state);
    lg_conn_release(c);
    c->state = LG_DONE;
    if (c->loop->cb.on_closed) c->loop->cb.on_closed(c);
}

static void lg_loop_pend(lg_loop_t *l, lg_conn_t *c)
{
    if (c->pending) return;
    c->pending = 1;
    c->pend_next = l->pend_head;
    l->pend_head = c;
}

static void lg_conn_readable(lg_conn_t *c)
{
    lg_loop_t *l = c->loop;
    for (int round = 0; round < LG_READ_ROUNDS; round++) {
        ssize_t n = lg_io_read(c);
        if (n == 0) { lg_conn_eof(c); return; }
        if (n < 0) { lg_conn_arm(c); return; }
        l->bytes_in += (uint64_t)n;
        l->now_ns = lg_now_ns();
        if (c->state == LG_HANDSHAKE) lg_conn_handshake_input(c, l->rbuf, (size_t)n);
        else lg_conn_ws_input(c, l->rbuf, (size_t)n);
        if (c->fd < 0) return;
        /* A short read drained the socket (and OpenSSL), unless the
         * server's close just came: its EOF is usually right behind, so
         * read on for it. */
        if ((size_t)n < l->rcap && !(c->state == LG_CLOSING && c->close_seen)) {
            lg_conn_arm(c);
            return;
        }
    }
    /* Out of turns.  The socket stays readable for epoll; bytes OpenSSL has
     * already taken off it do not, so such a connection is read again
     * after the next poll. */
    if (c->ssl && lg_tls_pending(c)) lg_loop_pend(l, c);
    lg_conn_arm(c);
}

/* One epoll event for c. */
static void lg_conn_event(lg_conn_t *c, uint32_t e)
{
    if (c->state == LG_CONNECTING) {
        if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) lg_conn_connected(c);
        return;
    }
    if (c->state == LG_TLS) {
        lg_conn_tls_step(c);
        return;
    }
    int queued = c->out_off < c->out.len;
    int rd = (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0;
    if (e & EPOLLOUT) {
        if (c->read_want == LG_TLS_WANT_WRITE) rd = 1;         /* a read waited for this */
        if (queued && c->write_want != LG_TLS_WANT_READ) {
            lg_conn_flush(c);
            queued = 0;
        }
    }
    if (!rd) return;
    if (queued && c->write_want == LG_TLS_WANT_READ) lg_conn_flush(c);   /* a write waited for this */
    lg_conn_readable(c);
}

int lg_loop_poll(lg_loop_t *l, int timeout_ms)
{
    struct epoll_event ev[LG_EVENTS];
    int n = epoll_wait(l->epfd, ev, LG_EVENTS, l->pend_head ? 0 : timeout_ms);
    if (n < 0) {
        if (errno != EINTR) lg_fail(NULL, "epoll_wait: %s", strerror(errno));
        n = 0;
    }
    for (int i = 0; i < n; i++) {
        lg_conn_t *c = ev[i].data.ptr;
        if (c->fd < 0) continue;                       /* closed earlier in this batch */
        lg_conn_event(c, ev[i].events);
    }
    /* The pending list as it was: connections that go back on it now wait
     * for the next call. */
    lg_conn_t *c = l->pend_head;
    l->pend_head = NULL;
    while (c) {
        lg_conn_t *next = c->pend_next;
        c->pending = 0;
        c->pend_next = NULL;
        if (c->fd >= 0 && c->ssl && c->state >= LG_HANDSHAKE && c->state != LG_DONE) lg_conn_readable(c);
        c = next;
    }
    return n;
}
