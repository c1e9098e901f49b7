/* conn.c — one client connection: bytes in, the opening handshake, the
 * WebSocket read path, the batched write path, and the close handshake.
 *
 * Life of a connection (conn_state_t):
 *   HANDSHAKE --upgrade--> OPEN --close queued--> CLOSING --close written--> LINGER
 *       |                    |                        |                        |
 *       +--plain GET--> HTTP +---------- peer close received, ours written ----+--> DEAD
 * DEAD connections are unlinked from everything at once but freed only in
 * the server's prepare watcher, after the loop iteration (never inside a
 * callback that may still hold the pointer).
 *
 * Writes never happen inside handlers: conn_queue_* append to the queue and
 * link the connection on the server's pending list; the prepare watcher
 * flushes each pending connection with one writev() per pass.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/err.h>

#include "log.h"
#include "server_int.h"
#include "tls.h"
#include "ws_frame.h"
#include "ws_status.h"

#define CONN_LINGER_MS   2000   /* wait for the peer's close / EOF after ours */
#define CONN_WRITE_IOV   64
#define CONN_WRITE_PASS  (4u << 20)  /* bytes per connection per flush pass */

static void conn_after_drain(wsgw_conn_t *c);
static void conn_check_address(wsgw_conn_t *c, uint64_t now);
static void conn_set_events(wsgw_conn_t *c, int events);

/* The handshake, close and linger deadline: after_ms from now. */
static void conn_set_deadline(wsgw_conn_t *c, uint64_t after_ms)
{
    c->has_deadline = 1;
    c->deadline_ms = conn_ms(wsgw_now_ms(c->srv) + after_ms);
}

conn_app_t *conn_app(wsgw_conn_t *c)
{
    if (!c->app) c->app = ws_xcalloc(1, sizeof *c->app);
    return c->app;
}

void conn_report_error(wsgw_conn_t *c, const char *why)
{
    if (c->app && c->app->on_error) c->app->on_error(c, why, c->app->on_error_ud);
}

/* Out of the server's FIFO of handshakes under way (the slowloris
 * eviction's); idempotent. */
static void conn_hs_unlink(wsgw_conn_t *c)
{
    wsgw_server_t *s = c->srv;
    conn_hs_t *hs = c->hs;
    if (!hs || !hs->in_fifo) return;
    if (hs->pend_prev) hs->pend_prev->hs->pend_next = hs->pend_next;
    else s->pend_head = hs->pend_next;
    if (hs->pend_next) hs->pend_next->hs->pend_prev = hs->pend_prev;
    else s->pend_tail = hs->pend_prev;
    hs->pend_prev = hs->pend_next = NULL;
    hs->in_fifo = 0;
}

void conn_hs_free(wsgw_conn_t *c)
{
    if (!c->hs) return;
    conn_hs_unlink(c);
    c->held = 0;
    ws_buf_free(&c->hs->buf);
    ws_xfree(c->hs->proxy);
    ws_xfree(c->hs);
    c->hs = NULL;
}

void conn_start_http(wsgw_conn_t *c)
{
    wsgw_server_t *s = c->srv;
    if (c->state == CONN_HTTP) return;
    c->state = CONN_HTTP;
    conn_hs_unlink(c);
    if (c->counted_hs) {
        c->counted_hs = 0;
        s->n_handshaking--;
    }
    c->counted_http = 1;
    s->n_http++;
    conn_set_deadline(c, s->cfg->http_write_timeout_ms);
}

/* The response is out (or the connection is closing): it stops counting. */
static void conn_http_done(wsgw_conn_t *c)
{
    wsgw_server_t *s = c->srv;
    if (!c->counted_http) return;
    c->counted_http = 0;
    s->n_http--;
    if (c->http_file) {
        c->http_file = 0;
        s->n_http_files--;
    }
}

const char *conn_peer(const wsgw_conn_t *c)
{
    static char bufs[4][56];
    static unsigned next;
    char *out = bufs[next++ & 3];
    char host[INET6_ADDRSTRLEN] = "?";
    if (c->peer.family == AF_INET) {
        inet_ntop(AF_INET, &c->peer.v4.sin_addr, host, sizeof host);
        snprintf(out, 56, "%s:%d", host, ntohs(c->peer.v4.sin_port));
    } else if (c->peer.family == AF_INET6) {
        inet_ntop(AF_INET6, &c->peer.v6.sin6_addr, host, sizeof host);
        snprintf(out, 56, "[%s]:%d", host, ntohs(c->peer.v6.sin6_port));
    } else {
        snprintf(out, 56, "unix");
    }
    return out;
}

void conn_accept(wsgw_server_t *s, int fd, const struct sockaddr_storage *peer, int tls)
{
    SSL *ssl = NULL;
    if (tls) {
        ssl = SSL_new(s->ssl_ctx);
        if (!ssl || SSL_set_fd(ssl, fd) != 1) {
            char why[256];
            wsgw_log(WSGW_LOG_ERROR, "tls_error", "op=SSL_new err=\"%s\"", tls_last_error(why, sizeof why));
            if (ssl) SSL_free(ssl);
            close(fd);
            return;
        }
        SSL_set_accept_state(ssl);
    }
    wsgw_conn_t *c = ws_xcalloc(1, sizeof *c);
    c->srv = s;
    c->fd = fd;
    c->ssl = ssl;
    memcpy(&c->peer, peer, peer->ss_family == AF_INET6 ? sizeof c->peer.v6
                           : peer->ss_family == AF_INET ? sizeof c->peer.v4 : sizeof c->peer.family);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    uint64_t now = wsgw_now_ms(s);
    c->state = CONN_HANDSHAKE;
    c->last_read_ms = conn_ms(now);
    if (s->cfg->handshake_timeout_ms) conn_set_deadline(c, s->cfg->handshake_timeout_ms);
    c->hs = ws_xcalloc(1, sizeof *c->hs);
    ws_http_parser_init(&c->hs->parser);
    c->hs->since_ms = now;
    c->hs->in_fifo = 1;
    c->hs->pend_prev = s->pend_tail;
    if (s->pend_tail) s->pend_tail->hs->pend_next = c;
    else s->pend_head = c;
    s->pend_tail = c;
    if (s->n_proxy_trusted && cidr_match_any(s->proxy_trusted, s->n_proxy_trusted, (const struct sockaddr *)peer)) {
        /* A balancer: its client's address comes with the PROXY header,
         * and the per-address limits wait for it (conn_proxy_read). */
        c->hs->proxy = ws_xmalloc(sizeof *c->hs->proxy);
        ws_proxy_init(c->hs->proxy);
    }
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    s->n_handshaking++;
    c->counted_hs = 1;
    conn_set_events(c, EV_READ);           /* on failure: logged, closed */
    if (c->state == CONN_DEAD) return;
    if (!c->hs->proxy) conn_check_address(c, now);
}

/* Per-address limits, checked before a byte is read (or, behind a PROXY
 * balancer, once its header named the client): a refusal is a 429 that
 * says which limit, and costs the client its connection only. */
static void conn_check_address(wsgw_conn_t *c, uint64_t now)
{
    wsgw_server_t *s = c->srv;
    const wsgw_config_t *cfg = s->cfg;
    if (!cfg->max_conns_per_ip && !cfg->conn_rate_per_ip) return;
    ip_entry_t *e = ip_table_get(&s->ips, (const struct sockaddr *)&c->peer);
    if (cfg->max_conns_per_ip && e->conns >= (uint32_t)cfg->max_conns_per_ip) {
        handshake_refuse(c, 429, "too many connections from your address", HS_FAIL_IP_CONNS);
        return;
    }
    if (!tbucket_take(&e->rate, cfg->conn_rate_per_ip, cfg->conn_rate_per_ip_burst, now, 1)) {
        handshake_refuse(c, 429, "connecting too fast from your address", HS_FAIL_IP_RATE);
        return;
    }
    e->conns++;
    c->ip = e;
}

/* ---- socket I/O: cleartext or TLS ------------------------------------------- */

enum { IO_AGAIN = -1, IO_ERROR = -2 };

/* TLS errors that end a connection: a failed handshake is counted as such. */
static ssize_t conn_tls_error(wsgw_conn_t *c, const char *op, int ssl_err)
{
    char why[256];
    tls_last_error(why, sizeof why);
    if (!SSL_is_init_finished(c->ssl)) c->srv->metrics.handshake_failures[HS_FAIL_TLS]++;
    wsgw_log(WSGW_LOG_INFO, "tls_error", "remote=%s op=%s ssl_error=%d err=\"%s\"",
             conn_peer(c), op, ssl_err, why[0] ? why : strerror(errno));
    return IO_ERROR;
}

/* One SSL_read: bytes, 0 at close_notify / EOF, IO_AGAIN or IO_ERROR. */
static ssize_t conn_tls_read(wsgw_conn_t *c, uint8_t *buf, size_t cap)
{
    ERR_clear_error();
    int n = SSL_read(c->ssl, buf, (int)(cap > INT32_MAX ? INT32_MAX : cap));
    if (n > 0) return n;
    int e = SSL_get_error(c->ssl, n);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return IO_AGAIN;
    case SSL_ERROR_WANT_WRITE:           /* handshake or renegotiation: needs a write */
        c->tls_read_wants_write = 1;
        conn_mark_pending(c);            /* the flush arms EV_WRITE */
        return IO_AGAIN;
    case SSL_ERROR_ZERO_RETURN:          /* close_notify */
        return 0;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) return 0;   /* EOF without close_notify */
        /* fallthrough */
    default:
        return conn_tls_error(c, "read", e);
    }
}

/* What conn_recv() left behind. */
enum { RECV_DRAINED, RECV_FULL, RECV_END_NEXT };

/* Reads into buf: bytes read, 0 at EOF, IO_AGAIN or IO_ERROR; *rest says
 * whether the input is drained, may hold more (the buffer filled), or ends
 * with an EOF or error that the next call returns.  SSL_read hands out one
 * record at a time, so records are gathered until the buffer is full or
 * OpenSSL wants the socket: a whole batch of a client's messages is then
 * handled in one pass, and a fan-out queues several messages per
 * subscriber and writes them with one record and one syscall (one record
 * per message made wss:// fan-out about 30 times slower). */
static ssize_t conn_recv(wsgw_conn_t *c, uint8_t *buf, size_t cap, int *rest)
{
    *rest = RECV_DRAINED;
    if (!c->ssl) {
        for (;;) {
            ssize_t n = read(c->fd, buf, cap);
            if (n == (ssize_t)cap) *rest = RECV_FULL;
            if (n >= 0) return n;
            if (errno == EINTR) continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? IO_AGAIN : IO_ERROR;
        }
    }
    size_t got = 0;
    while (got < cap) {
        ssize_t n = conn_tls_read(c, buf + got, cap - got);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (!got) return n;
        if (n != IO_AGAIN) *rest = RECV_END_NEXT;    /* OpenSSL repeats it */
        return (ssize_t)got;
    }
    *rest = RECV_FULL;
    return (ssize_t)got;
}

/* Writes some of iov: bytes written, IO_AGAIN or IO_ERROR.  With TLS the
 * queued frames are copied into the loop's write buffer so that small
 * messages share records; after WANT_*, the same bytes (the unchanged head
 * of the queue) are rebuilt and passed again, as OpenSSL requires. */
static ssize_t conn_send(wsgw_conn_t *c, const struct iovec *iov, int cnt)
{
    if (!c->ssl) {
        for (;;) {
            ssize_t n = writev(c->fd, iov, cnt);
            if (n >= 0) return n;
            if (errno == EINTR) continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? IO_AGAIN : IO_ERROR;
        }
    }
    wsgw_server_t *s = c->srv;
    size_t want = c->tls_retry_len ? c->tls_retry_len : s->write_cap, len = 0;
    for (int i = 0; i < cnt && len < want; i++) {
        size_t take = iov[i].iov_len < want - len ? iov[i].iov_len : want - len;
        memcpy(s->write_buf + len, iov[i].iov_base, take);
        len += take;
    }
    ERR_clear_error();
    int n = SSL_write(c->ssl, s->write_buf, (int)len);
    if (n > 0) {
        c->tls_retry_len = 0;
        return n;
    }
    int e = SSL_get_error(c->ssl, n);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        c->tls_retry_len = (uint32_t)len;
        if (e == SSL_ERROR_WANT_READ) c->tls_write_wants_read = 1;
        return IO_AGAIN;
    }
    return conn_tls_error(c, "write", e);
}

/* ---- write path --------------------------------------------------------- */

/* Appends at the tail: a fan-out queues its receivers in room order and
 * they are written in that order, so no member is always served last. */
void conn_mark_pending(wsgw_conn_t *c)
{
    wsgw_server_t *s = c->srv;
    if (c->in_pending) return;
    c->in_pending = 1;
    c->pending_next = NULL;
    if (s->pending_tail) s->pending_tail->pending_next = c;
    else s->pending = c;
    s->pending_tail = c;
}

static void conn_set_events(wsgw_conn_t *c, int events)
{
    if (poller_set(&c->srv->poller, c->fd, c, &c->events, events) == 0) return;
    /* Only ENOMEM or a bug gets here: a socket we cannot watch is dead. */
    wsgw_log(WSGW_LOG_ERROR, "poll_error", "id=%s remote=%s err=\"%s\"",
             c->id ? c->id : "-", conn_peer(c), strerror(errno));
    conn_close_now(c, WS_CLOSE_ABNORMAL);
}

/* Control frames, the handshake response and close frames: no state or
 * limit checks (they are bounded by the protocol, and must go out). */
void conn_queue_bytes(wsgw_conn_t *c, const void *p, size_t n)
{
    if (c->state == CONN_DEAD || c->state == CONN_LINGER) return;
    wsgw_block_t *b = wsgw_block_new(n);
    memcpy(b->data, p, n);
    outq_push(&c->outq, b);
    wsgw_block_unref(b);
    conn_mark_pending(c);
}

/* Would `add` more bytes take the queue past max_queued_bytes?  Then the
 * peer is a slow consumer: with slow_consumer_action=close its unstarted
 * backlog is dropped and the close handshake starts.  Returns 1 when the
 * bytes must not be queued.  An empty queue always takes one message: a
 * message at max_message_size plus its frame header (or deflate's growth)
 * is not a slow consumer. */
static int conn_queue_full(wsgw_conn_t *c, size_t add)
{
    wsgw_server_t *s = c->srv;
    if (!c->outq.bytes || c->outq.bytes + add <= s->cfg->max_queued_bytes) return 0;
    if (s->cfg->slow_consumer_action == WSGW_SLOW_DROP || c->state != CONN_OPEN) return 1;
    size_t dropped = outq_drop_unstarted(&c->outq);
    s->metrics.dropped_bytes += dropped;
    wsgw_log(WSGW_LOG_WARN, "slow_consumer", "id=%s remote=%s queued=%zu limit=%llu dropped_bytes=%zu",
             c->id, conn_peer(c), c->outq.bytes + dropped + add,
             (unsigned long long)s->cfg->max_queued_bytes, dropped);
    s->metrics.closes[CLOSE_SLOW_CONSUMER]++;
    conn_fail(c, WS_CLOSE_POLICY_VIOLATION, "slow consumer");
    return 1;
}

/* Data messages: refused once our close is queued, and bounded by
 * max_queued_bytes (a slow consumer is cut off, never allowed to grow). */
void conn_queue_block(wsgw_conn_t *c, wsgw_block_t *b)
{
    wsgw_server_t *s = c->srv;
    if (c->state != CONN_OPEN) {
        s->metrics.dropped_messages++;
        return;
    }
    if (conn_queue_full(c, b->len)) {
        s->metrics.dropped_messages++;
        return;
    }
    outq_push(&c->outq, b);
    s->metrics.messages_out++;
    conn_mark_pending(c);
}

/* Bytes the flush may write: all that are queued, or while the welcome is
 * held (conn_hold) only those queued before it. */
static size_t conn_out_ready(const wsgw_conn_t *c)
{
    if (!c->held || c->hs->out_allowed >= c->outq.bytes) return c->outq.bytes;
    return c->hs->out_allowed;
}

/* Cuts iov[0..cnt) to at most max bytes; returns the iovecs left. */
static int iov_clip(struct iovec *iov, int cnt, size_t max)
{
    size_t sum = 0;
    for (int i = 0; i < cnt; i++) {
        if (sum + iov[i].iov_len >= max) {
            iov[i].iov_len = max - sum;
            return iov[i].iov_len ? i + 1 : i;
        }
        sum += iov[i].iov_len;
    }
    return cnt;
}

/* Cleartext file responses: the kernel copies the file to the socket, so
 * the response holds no user memory at all.  Up to max bytes: bytes sent,
 * IO_AGAIN or IO_ERROR (a file that shrank since its size was sent too). */
static ssize_t conn_sendfile(wsgw_conn_t *c, size_t max)
{
    conn_file_t *f = &c->file;
    size_t want = f->end - f->off < (off_t)max ? (size_t)(f->end - f->off) : max;
    for (;;) {
        ssize_t n = sendfile(c->fd, f->fd, &f->off, want);
        if (n > 0) return n;
        if (n == 0) {
            errno = EIO;
            wsgw_log(WSGW_LOG_WARN, "http_file_error", "remote=%s offset=%lld size=%lld err=\"%s\"",
                     conn_peer(c), (long long)f->off, (long long)f->end, "file shrank while served");
            return IO_ERROR;
        }
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? IO_AGAIN : IO_ERROR;
    }
}

/* Writes as much of the queue as the socket takes, then as much of a file
 * response (c->file) as it takes: the file's next chunk is read only once
 * the queue is empty, so a response never holds more than one. */
void conn_flush(wsgw_conn_t *c)
{
    wsgw_server_t *s = c->srv;
    size_t pass = 0;
    while (c->state != CONN_DEAD) {
        ssize_t n;
        if (conn_out_ready(c)) {
            struct iovec iov[CONN_WRITE_IOV];
            int cnt = outq_iov(&c->outq, iov, CONN_WRITE_IOV);
            if (c->held) cnt = iov_clip(iov, cnt, c->hs->out_allowed);
            n = conn_send(c, iov, cnt);
            if (n >= 0) {
                outq_consume(&c->outq, (size_t)n);
                if (c->held) c->hs->out_allowed -= (size_t)n;
            }
        } else if (c->has_file && c->ssl) {
            if (http_file_fill(c) < 0) return;     /* closed */
            continue;
        } else if (c->has_file) {
            n = conn_sendfile(c, CONN_WRITE_PASS - pass);
            if (n >= 0 && c->file.off == c->file.end) http_file_close(c);
        } else {
            break;
        }
        if (n == IO_AGAIN) break;
        if (n < 0) {
            wsgw_log(WSGW_LOG_DEBUG, "write_error", "id=%s remote=%s err=\"%s\"",
                     c->id ? c->id : "-", conn_peer(c), strerror(errno));
            if (c->opened) s->metrics.closes[CLOSE_ABNORMAL]++;
            conn_close_now(c, WS_CLOSE_ABNORMAL);
            return;
        }
        s->metrics.bytes_out += (uint64_t)n;
        pass += (size_t)n;
        if (pass >= CONN_WRITE_PASS) { conn_mark_pending(c); return; }  /* fairness */
    }
    if (c->state == CONN_DEAD) return;
    int want_read = c->state != CONN_HTTP && !c->held;
    if (conn_out_ready(c) || c->has_file || c->tls_read_wants_write) {
        if (!c->stalled) {
            c->stalled = 1;
            c->stalled_since_ms = conn_ms(wsgw_now_ms(s));
        }
        c->write_armed = 1;
        conn_set_events(c, (want_read ? EV_READ : 0) | EV_WRITE);
        return;
    }
    c->stalled = 0;
    if (c->write_armed && !c->tls_read_wants_write) {
        c->write_armed = 0;
        conn_set_events(c, want_read ? EV_READ : 0);
    }
    conn_after_drain(c);
}

/* The queue just emptied: advance the close handshake if one is under way. */
static void conn_after_drain(wsgw_conn_t *c)
{
    if (c->state == CONN_HTTP) {
        /* The response is out: half-close and drain what the client sent,
         * so unread input does not turn our close into a reset that eats
         * the response (a 4xx to a client that pipelined its frames). */
        shutdown(c->fd, SHUT_WR);
        c->state = CONN_LINGER;
        conn_set_deadline(c, CONN_LINGER_MS);
        conn_http_done(c);
        return;
    }
    if (!(c->close_bits & WS_CLOSE_STATE_QUEUED) || (c->close_bits & WS_CLOSE_STATE_SENT)) return;
    c->close_bits |= WS_CLOSE_STATE_SENT;
    if (c->close_bits & WS_CLOSE_STATE_RECEIVED) {
        /* RFC 6455 §7.1.1: the server closes the TCP connection first. */
        conn_close_now(c, c->close_code);
        return;
    }
    /* Our close is out; theirs has not come.  Half-close and keep reading
     * until it does (or EOF, or the linger deadline): closing with unread
     * input would send a RST that can destroy our close frame in flight. */
    if (c->ssl) {
        ERR_clear_error();
        SSL_shutdown(c->ssl);                /* close_notify, best effort */
    }
    shutdown(c->fd, SHUT_WR);
    c->state = CONN_LINGER;
    conn_set_deadline(c, CONN_LINGER_MS);
}

/* ---- closing -------------------------------------------------------------- */

static void conn_queue_close(wsgw_conn_t *c, uint16_t code, const char *reason)
{
    uint8_t frame[2 + WS_CONTROL_MAX];
    size_t n = ws_frame_write_close(frame, code, reason, reason ? strlen(reason) : 0);
    conn_queue_bytes(c, frame, n);
    c->close_bits |= WS_CLOSE_STATE_QUEUED;
}

/* Starts the closing handshake from our side (a protocol error, a limit, a
 * server disconnect).  Data already queued goes out first; nothing more is
 * accepted after the close frame. */
void conn_fail(wsgw_conn_t *c, uint16_t code, const char *reason)
{
    if (c->state == CONN_HANDSHAKE || c->state == CONN_HTTP) {
        conn_close_now(c, 0);
        return;
    }
    if (c->state != CONN_OPEN) return;     /* already closing: idempotent */
    if (c->held) {
        /* The close frame must get out: the welcome goes before it (nothing
         * is promised of a closing connection), the held frames are dropped. */
        conn_hs_free(c);
        conn_set_events(c, EV_READ | (c->write_armed ? EV_WRITE : 0));
        if (c->state != CONN_OPEN) return;
    }
    c->close_code = code;
    c->state = CONN_CLOSING;
    conn_queue_close(c, code, reason);
    conn_set_deadline(c, CONN_LINGER_MS +
                         (c->srv->cfg->write_timeout_ms ? c->srv->cfg->write_timeout_ms : 5000));
    /* The reason may come from outside (a backend's disconnect op): quoted
     * and escaped, so it cannot end its field and forge another. */
    char quoted[4 * (WS_CONTROL_MAX - 2) + 3];      /* every byte escaped, the quotes */
    wsgw_log(code == WS_CLOSE_NORMAL || code == WS_CLOSE_GOING_AWAY ? WSGW_LOG_DEBUG : WSGW_LOG_INFO,
             "close_sent", "id=%s remote=%s code=%u reason=%s", c->id, conn_peer(c), (unsigned)code,
             wsgw_log_quote(quoted, sizeof quoted, reason ? reason : "", reason ? strlen(reason) : 0));
}

void conn_close_now(wsgw_conn_t *c, uint16_t reported_code)
{
    wsgw_server_t *s = c->srv;
    if (c->state == CONN_DEAD) return;
    int was_open = c->opened;
    /* By what was counted, not by state: a refused handshake lingers too. */
    if (c->upgraded) s->n_open--;
    if (c->counted_hs) {
        c->counted_hs = 0;
        s->n_handshaking--;
    }
    conn_http_done(c);
    c->state = CONN_DEAD;
    if (!c->close_code) c->close_code = reported_code ? reported_code : WS_CLOSE_ABNORMAL;
    /* close() below also takes the socket out of the poller's set. */
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->outq.bytes || c->has_file) {
        /* Bytes we could not deliver (a peer that stopped reading until the
         * write or close deadline): end with a reset, not a FIN in the middle
         * of a frame that would look like an orderly close, and free the
         * kernel's send buffer now instead of after its retries
         * (nginx's reset_timedout_connection). */
        struct linger reset = { 1, 0 };
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    }
    close(c->fd);
    c->fd = -1;
    http_file_close(c);                     /* a file response cut short */
    if (was_open) {
        c->opened = 0;
        if (c->app && c->app->on_disconnect)
            c->app->on_disconnect(c, c->close_code, c->app->on_disconnect_ud);
        rooms_leave_all(&s->rooms, &c->member);
        idmap_del(&s->by_id, c->id, c->id_len);
        hooks_conn_closed(c);
        wsgw_log(WSGW_LOG_DEBUG, "conn_closed", "id=%s remote=%s code=%u", c->id, conn_peer(c),
                 (unsigned)c->close_code);
    }
    if (c->ip) {
        c->ip->conns--;
        c->ip = NULL;
    }
    outq_clear(&c->outq);
    ws_reader_free(&c->reader);
    conn_hs_free(c);
    /* Unlink from the live list now; free after this loop iteration. */
    if (s->spread_next == c) s->spread_next = c->next;   /* the drain's cursor */
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    s->n_conns--;
    c->free_next = s->to_free;
    s->to_free = c;
}

void conn_free(wsgw_conn_t *c)
{
    hooks_conn_free(c);
    if (c->app) {
        for (uint16_t i = 0; i < c->app->n_handlers; i++) ws_xfree(c->app->handlers[i].event);
        ws_xfree(c->app->handlers);
        ws_xfree(c->app);
    }
    if (c->id != c->id_small) ws_xfree(c->id);
    ws_xfree(c);
}

/* ---- read path -------------------------------------------------------------- */

/* rate_messages / rate_bytes: a message over the rate is refused (an
 * error envelope for envelope clients, which also spends the error budget,
 * so a flood ends with 1008). */
static int conn_within_rate(wsgw_conn_t *c, size_t len)
{
    wsgw_server_t *s = c->srv;
    const wsgw_config_t *cfg = s->cfg;
    uint64_t now = wsgw_now_ms(s);
    if (!tbucket_take(&c->msg_bucket, cfg->rate_messages, cfg->rate_messages_burst, now, 1))
        s->metrics.rate_limited_messages++;
    else if (!tbucket_take(&c->byte_bucket, (double)cfg->rate_bytes, (double)cfg->rate_bytes_burst, now, (double)len))
        s->metrics.rate_limited_bytes++;
    else
        return 1;
    const core_codec_t *k = conn_codec(c);
    if (conn_native(c) || !k->rate_limited) conn_report_error(c, "rate limited");
    else k->rate_limited(k->ud, c);
    return 0;
}

static void conn_on_message(wsgw_conn_t *c, const ws_msg_t *m)
{
    wsgw_server_t *s = c->srv;
    switch (m->type) {
    case WS_MSG_TEXT:
    case WS_MSG_BINARY:
        if (c->state != CONN_OPEN) return;          /* after our close: discarded */
        s->metrics.messages_in++;
        if (!conn_within_rate(c, m->len)) return;
        if (conn_native(c)) {
            c->app->on_message(c, m->data, m->len, m->type == WS_MSG_BINARY, c->app->on_message_ud);
        } else {
            const core_codec_t *k = conn_codec(c);
            k->message(k->ud, c, m->data, m->len, m->type == WS_MSG_BINARY);
        }
        return;
    case WS_MSG_PING: {
        if (c->close_bits & WS_CLOSE_STATE_QUEUED) return;  /* no frames after our close */
        uint8_t frame[2 + WS_CONTROL_MAX];
        long n = ws_frame_write(frame, sizeof frame, 1, 0, WS_OP_PONG, m->data, m->len);
        /* Pongs count against max_queued_bytes too: a peer that floods pings
         * and never reads is a slow consumer, not a way to grow our memory.
         * (RFC 6455 §5.5.3 lets a pong answer only the latest ping.) */
        if (n > 0 && !conn_queue_full(c, (size_t)n)) conn_queue_bytes(c, frame, (size_t)n);
        return;
    }
    case WS_MSG_PONG:
        c->awaiting_pong = 0;
        return;
    case WS_MSG_CLOSE:
        c->close_bits |= WS_CLOSE_STATE_RECEIVED;
        if (!(c->close_bits & WS_CLOSE_STATE_QUEUED)) {
            uint8_t frame[2 + WS_CONTROL_MAX];
            conn_queue_bytes(c, frame, ws_close_reply(frame, m->close_code));
            c->close_bits |= WS_CLOSE_STATE_QUEUED;
            c->close_code = m->close_code;
            c->state = CONN_CLOSING;
            conn_set_deadline(c, CONN_LINGER_MS);
            s->metrics.closes[CLOSE_BY_PEER]++;
        } else if (c->close_bits & WS_CLOSE_STATE_SENT) {
            conn_close_now(c, c->close_code);       /* the handshake is complete */
        }
        return;
    }
}

/* Feeds WebSocket bytes to the reader; `buf` is modified (unmasked). */
void conn_ws_input(wsgw_conn_t *c, uint8_t *buf, size_t n)
{
    size_t off = 0;
    while (off < n && (c->state == CONN_OPEN || c->state == CONN_CLOSING || c->state == CONN_LINGER)) {
        size_t used = 0;
        ws_msg_t m;
        int rc = ws_reader_feed(&c->reader, buf + off, n - off, &used, &m);
        off += used;
        if (rc == 0) return;
        if (rc < 0) {
            if (c->state != CONN_OPEN) return;       /* already closing: ignore the rest */
            uint16_t code = ws_err_close_code(rc);
            const char *why = ws_err_str(rc);
            wsgw_log(WSGW_LOG_INFO, "protocol_error", "id=%s remote=%s code=%u reason=\"%s\"",
                     c->id, conn_peer(c), (unsigned)code, why);
            c->srv->metrics.closes[CLOSE_PROTOCOL]++;
            conn_report_error(c, why);
            conn_fail(c, code, why);
            return;
        }
        conn_on_message(c, &m);
    }
}

static void conn_on_eof(wsgw_conn_t *c)
{
    if (c->state == CONN_OPEN) c->srv->metrics.closes[CLOSE_ABNORMAL]++;
    /* EOF before the peer's close frame: the close was abnormal (1006). */
    conn_close_now(c, (c->close_bits & WS_CLOSE_STATE_RECEIVED) ? c->close_code : WS_CLOSE_ABNORMAL);
}

/* ---- the PROXY header of a trusted balancer ------------------------------------ */

static void conn_proxy_refuse(wsgw_conn_t *c, const char *why)
{
    c->srv->metrics.handshake_failures[HS_FAIL_PROXY]++;
    wsgw_log(WSGW_LOG_INFO, "proxy_refused", "remote=%s reason=\"%s\"", conn_peer(c), why);
    conn_close_now(c, 0);
}

static void conn_set_peer(wsgw_conn_t *c, const ws_proxy_result_t *r)
{
    memset(&c->peer, 0, sizeof c->peer);
    if (r->family == AF_INET) {
        c->peer.v4.sin_family = AF_INET;
        memcpy(&c->peer.v4.sin_addr, r->addr, 4);
        c->peer.v4.sin_port = htons(r->port);
    } else {
        c->peer.v6.sin6_family = AF_INET6;
        memcpy(&c->peer.v6.sin6_addr, r->addr, 16);
        c->peer.v6.sin6_port = htons(r->port);
    }
}

/* Reads the PROXY header before anything else (with TLS, before OpenSSL
 * reads the ClientHello from the socket itself): the input is peeked, fed
 * to the parser, and only the header's own bytes are taken off the socket,
 * so what follows is left for the HTTP parser or OpenSSL as if the header
 * had never been there.  Every peeked byte of an incomplete header is
 * consumed, so the level-triggered poller does not report the same bytes
 * again.  Returns 1 when the header is complete and the handshake goes on,
 * 0 while it is incomplete or when the connection was refused. */
static int conn_proxy_read(wsgw_conn_t *c)
{
    wsgw_server_t *s = c->srv;
    ws_proxy_parser_t *p = c->hs->proxy;
    ssize_t n;
    do n = recv(c->fd, s->read_buf, s->read_cap, MSG_PEEK); while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    if (n <= 0 && !ws_proxy_received(p)) {
        conn_on_eof(c);                     /* closed or reset before a byte (a connect-only
                                             * probe): not a refused header */
        return 0;
    }
    if (n <= 0) {
        conn_proxy_refuse(c, n == 0 ? "connection closed inside the PROXY header" : strerror(errno));
        return 0;
    }
    size_t used = 0;
    ws_proxy_result_t r;
    int rc = ws_proxy_parse(p, s->read_buf, (size_t)n, &used, &r);
    if (used) {
        ssize_t got;
        do got = recv(c->fd, s->read_buf, used, 0); while (got < 0 && errno == EINTR);
        if (got != (ssize_t)used) {          /* peeked bytes are there: only a bug gets here */
            conn_proxy_refuse(c, got < 0 ? strerror(errno) : "short read of peeked bytes");
            return 0;
        }
        s->metrics.bytes_in += used;
    }
    if (rc == WS_E_WANT_MORE) return 0;
    if (rc < 0) {
        conn_proxy_refuse(c, ws_err_str(rc));
        return 0;
    }
    ws_xfree(c->hs->proxy);
    c->hs->proxy = NULL;
    const char *balancer = conn_peer(c);
    if (r.kind == WS_PROXY_ADDR) conn_set_peer(c, &r);
    wsgw_log(WSGW_LOG_DEBUG, "proxy_header", "remote=%s balancer=%s version=%u%s", conn_peer(c),
             balancer, (unsigned)r.version, r.kind == WS_PROXY_LOCAL ? " local=1" : "");
    conn_check_address(c, wsgw_now_ms(s));
    return c->state == CONN_HANDSHAKE;
}

static void conn_read(wsgw_conn_t *c)
{
    wsgw_server_t *s = c->srv;
    if (c->held) return;                    /* a TLS write's read: after the welcome */
    if (c->hs && c->hs->proxy && !conn_proxy_read(c)) return;
    /* A few full buffers per event at most, so one busy peer cannot starve
     * others: the poller is level-triggered, so input left in the socket is
     * reported again on its next pass.  Bytes OpenSSL holds are not
     * announced by the socket, and neither is an EOF or error it has seen
     * after some bytes, so those are always read now. */
    int rest = RECV_FULL;
    for (int round = 0; c->state != CONN_DEAD && !c->held; round++) {
        if (rest == RECV_DRAINED) return;
        if (rest == RECV_FULL && round >= 4 && !(c->ssl && SSL_has_pending(c->ssl))) return;
        ssize_t n = conn_recv(c, s->read_buf, s->read_cap, &rest);
        if (n == IO_AGAIN) return;
        if (n == 0 || n == IO_ERROR) { conn_on_eof(c); return; }
        s->metrics.bytes_in += (uint64_t)n;
        c->last_read_ms = conn_ms(wsgw_now_ms(s));
        switch (c->state) {
        case CONN_HANDSHAKE: handshake_input(c, s->read_buf, (size_t)n); break;
        case CONN_HTTP:      break;                 /* one request per connection */
        case CONN_LINGER:                           /* only a WebSocket waits for a close frame */
            if (c->opened) conn_ws_input(c, s->read_buf, (size_t)n);
            break;
        default:             conn_ws_input(c, s->read_buf, (size_t)n); break;
        }
    }
}

void conn_ready(void *ptr, int revents)
{
    wsgw_conn_t *c = ptr;
    if (c->state == CONN_DEAD) return;      /* closed earlier in the same batch */
    if (revents & EV_WRITE) {
        if (c->tls_read_wants_write) {       /* TLS read was blocked on a write */
            c->tls_read_wants_write = 0;
            conn_read(c);
        }
        if (c->state != CONN_DEAD) conn_flush(c);
    }
    if ((revents & EV_READ) && c->state != CONN_DEAD) {
        conn_read(c);
        if (c->tls_write_wants_read && c->state != CONN_DEAD) {
            c->tls_write_wants_read = 0;     /* TLS write was blocked on a read */
            conn_flush(c);
        }
    }
}

/* ---- the welcome first (conn_hold, server_int.h) ------------------------------ */

void conn_hold(wsgw_conn_t *c, size_t out_allowed, size_t in_off)
{
    conn_hs_t *hs = c->hs;
    conn_hs_unlink(c);                       /* open: no longer a pending handshake */
    hs->held_off = in_off;
    hs->out_allowed = out_allowed;
    c->held = 1;
    /* The hold is part of the handshake: it ends by the handshake's
     * deadline.  Meanwhile nothing is read (the socket's buffer and TCP's
     * window bound what the client can send), and what is queued for the
     * client counts against max_queued_bytes as ever. */
    if (c->srv->cfg->handshake_timeout_ms) conn_set_deadline(c, c->srv->cfg->handshake_timeout_ms);
    conn_set_events(c, c->write_armed ? EV_WRITE : 0);
}

void conn_release(wsgw_conn_t *c)
{
    if (!c->held || c->state != CONN_OPEN) return;
    ws_buf_t in = c->hs->buf;
    size_t off = c->hs->held_off;
    memset(&c->hs->buf, 0, sizeof c->hs->buf);
    conn_hs_free(c);
    c->has_deadline = 0;
    conn_mark_pending(c);                    /* the welcome, and what waited behind it */
    conn_set_events(c, EV_READ | (c->write_armed ? EV_WRITE : 0));
    if (c->state == CONN_OPEN && in.len > off) conn_ws_input(c, in.data + off, in.len - off);
    ws_buf_free(&in);
    /* Records OpenSSL read ahead are not announced by the socket. */
    if (c->ssl && c->state == CONN_OPEN && SSL_has_pending(c->ssl)) conn_read(c);
}

/* ---- the one periodic sweep -------------------------------------------------- */

void conn_sweep(wsgw_conn_t *c, uint64_t now)
{
    wsgw_server_t *s = c->srv;
    const wsgw_config_t *cfg = s->cfg;
    switch (c->state) {
    case CONN_HANDSHAKE:
        if (c->has_deadline && conn_ms_reached(now, c->deadline_ms)) {
            s->metrics.handshake_failures[HS_FAIL_TIMEOUT]++;
            wsgw_log(WSGW_LOG_INFO, "handshake_timeout", "remote=%s bytes=%zu", conn_peer(c), c->hs ? c->hs->buf.len : 0);
            conn_close_now(c, 0);
        }
        return;
    case CONN_OPEN:
        if (c->held && c->has_deadline && conn_ms_reached(now, c->deadline_ms)) {
            s->metrics.handshake_failures[HS_FAIL_TIMEOUT]++;
            wsgw_log(WSGW_LOG_INFO, "welcome_timeout", "id=%s remote=%s reason=\"P:conn:<id> not subscribed within handshake_timeout\"",
                     c->id, conn_peer(c));
            conn_fail(c, WS_CLOSE_TRY_AGAIN_LATER, "backplane not ready");
            return;
        }
        break;
    case CONN_HTTP:
        if (c->has_deadline && conn_ms_reached(now, c->deadline_ms)) {
            /* A reader too slow for the whole response (or one that stopped
             * reading): cut, so it holds neither the response's chunk and
             * file nor a max_http_responses slot past http_write_timeout. */
            s->metrics.http_write_timeouts++;
            wsgw_log(WSGW_LOG_INFO, "http_write_timeout", "remote=%s unsent=%llu", conn_peer(c),
                     (unsigned long long)c->outq.bytes +
                         (c->has_file ? (unsigned long long)(c->file.end - c->file.off) : 0));
            conn_close_now(c, 0);
        }
        return;
    default:
        if (c->has_deadline && conn_ms_reached(now, c->deadline_ms)) conn_close_now(c, c->close_code);
        return;
    }
    /* Buckets untouched for 12 days: see ratelimit.h. */
    tbucket_age(&c->err_bucket, now);
    tbucket_age(&c->msg_bucket, now);
    tbucket_age(&c->byte_bucket, now);
    if (cfg->write_timeout_ms && c->stalled && conn_ms_since(now, c->stalled_since_ms) >= cfg->write_timeout_ms) {
        /* The socket took nothing for write_timeout: a close frame could not
         * get through either, so drop the connection. */
        s->metrics.closes[CLOSE_WRITE_TIMEOUT]++;
        wsgw_log(WSGW_LOG_INFO, "write_timeout", "id=%s remote=%s queued=%zu", c->id, conn_peer(c), c->outq.bytes);
        conn_close_now(c, WS_CLOSE_ABNORMAL);
        return;
    }
    if (hooks_conn_sweep(c, now)) return;   /* a feature closed it (an expired token) */
    if (cfg->read_timeout_ms && conn_ms_since(now, c->last_read_ms) >= cfg->read_timeout_ms) {
        s->metrics.closes[CLOSE_READ_TIMEOUT]++;
        conn_fail(c, WS_CLOSE_GOING_AWAY, "read timeout");
        return;
    }
    if (c->awaiting_pong && cfg->pong_timeout_ms && conn_ms_since(now, c->last_ping_ms) >= cfg->pong_timeout_ms) {
        s->metrics.closes[CLOSE_PING_TIMEOUT]++;
        wsgw_log(WSGW_LOG_INFO, "pong_timeout", "id=%s remote=%s", c->id, conn_peer(c));
        conn_fail(c, WS_CLOSE_GOING_AWAY, "pong timeout");
        return;
    }
    if (cfg->ping_period_ms && !c->awaiting_pong && conn_ms_since(now, c->last_ping_ms) >= cfg->ping_period_ms) {
        uint8_t frame[2];
        ws_frame_write_header(frame, 1, 0, WS_OP_PING, 0, NULL);
        conn_queue_bytes(c, frame, sizeof frame);
        c->awaiting_pong = 1;
        c->last_ping_ms = conn_ms(now);
    }
}
