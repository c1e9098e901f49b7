/* ceiling.c — the raw-write ceiling of `make bench-compare`: the least work
 * a server can do and still speak the load generator's protocol.
 *
 *   ceiling PORT [--tls CERT KEY]   listen on 127.0.0.1:PORT (0: any), print
 *                                   LISTENING <port>; with --tls, wss:// only
 *
 * One process, one epoll loop, non-blocking sockets.  Left out, which is
 * what a ratio to it measures: JSON (a join is known by its prefix and gets
 * canned ack bytes; an emit's event, to and data are found with memmem, data
 * running to the last '}'), rooms (one list of "fan" members: whoever joined
 * a room not named echo-*; room:echo-* goes back to the sender), limits,
 * timeouts, UTF-8 checks, fragments, compression.
 *
 * Kept: the write side of the fastest servers.  Handlers only queue; after
 * each epoll batch every connection with output gets one write, and
 * EPOLLOUT only for what the kernel did not take (copied to a backlog).  A
 * delivery is framed once into an arena emptied after each pass, and each
 * recipient queues a reference to it; at the flush a connection's
 * references are copied into one hot loop buffer (like uWS' cork buffer)
 * or, past 64 KiB, handed to writev.  Measured against a copy into a buffer
 * per recipient, 1.3-2.5x less server CPU per delivery at 2000 bytes of
 * data (README.md).  No reference counts, since nothing but the backlog (a
 * copy) outlives the pass; no malloc per delivery, since the arena's chunks
 * are kept; no buffer held by an idle connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

enum { ST_HANDSHAKE, ST_OPEN, ST_CLOSING, ST_DEAD };
#define MAX_PAYLOAD  (1u << 20)    /* a bigger client frame closes the connection */
#define MAX_HEADER   8192          /* an upgrade request bigger than this closes it */
#define MAX_BACKLOG  (64u << 20)   /* a consumer this far behind is closed */
#define CHUNK        (MAX_PAYLOAD + 4096)   /* arena chunk: fits the biggest delivery */
#define RBUF_SIZE    (64u << 10)
#define IOV_BATCH    1024          /* IOV_MAX on Linux */
#define GATHER_MAX   (64u << 10)   /* a pass's output up to this is copied, then written */

/* A piece of a connection's output for this pass, in the arena. */
typedef struct seg { struct seg *next; const uint8_t *p; size_t n; } seg_t;

typedef struct buf { uint8_t *p; size_t len, cap, off; } buf_t;

typedef struct conn {
    int      fd;
    SSL     *ssl;              /* NULL without --tls */
    uint8_t  state, pending, armed, fan;
    uint8_t  doomed;           /* too far behind: closed at the end of the pass */
    uint8_t  id_len;
    char     id[14];
    uint32_t fan_idx, all_idx;
    seg_t   *head, *tail;      /* output of this pass (NULL between passes) */
    buf_t    in;               /* a partial handshake or frame, only while there is one */
    buf_t    backlog;          /* what the kernel did not take, only while there is some */
} conn_t;

typedef struct vec { conn_t **v; size_t n, cap; } vec_t;

typedef struct loop {
    int      ep, lfd;
    uint32_t next_id;
    vec_t    all, fan;         /* upgraded connections; fan members */
    vec_t    pending, dead;    /* output to write after the batch; to free after it */
    uint8_t **chunks;          /* the arena: emptied after every pass, kept */
    size_t   nchunks, cur, used;
    struct iovec iov[IOV_BATCH];
    SSL_CTX *tls;              /* NULL without --tls */
    buf_t    gather;           /* a connection's output of a pass in one piece */
    uint8_t  rbuf[RBUF_SIZE + 1];
} loop_t;

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p) { fprintf(stderr, "ceiling: out of memory\n"); exit(1); }
    return p;
}

static void vec_push(vec_t *v, conn_t *c)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 1024;
        v->v = xrealloc(v->v, v->cap * sizeof *v->v);
    }
    v->v[v->n++] = c;
}

static void buf_append(buf_t *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        if (b->off) {                              /* reclaim what was written first */
            memmove(b->p, b->p + b->off, b->len - b->off);
            b->len -= b->off;
            b->off = 0;
        }
        while (b->cap < b->len + n) b->cap = b->cap ? b->cap * 2 : 4096;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void buf_free(buf_t *b) { free(b->p); memset(b, 0, sizeof *b); }

/* ---- output ------------------------------------------------------------------ */

/* n bytes that stay put until the end of the pass; 8-byte aligned.  The
 * chunks are kept, so a pass costs no malloc once they exist. */
static void *arena(loop_t *l, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (l->nchunks == 0 || l->used + n > CHUNK) {
        if (l->nchunks) l->cur++;
        if (l->cur == l->nchunks) {
            l->chunks = xrealloc(l->chunks, (l->nchunks + 1) * sizeof *l->chunks);
            l->chunks[l->nchunks++] = xrealloc(NULL, CHUNK);
        }
        l->used = 0;
    }
    void *p = l->chunks[l->cur] + l->used;
    l->used += n;
    return p;
}

static void want_flush(loop_t *l, conn_t *c)
{
    if (!c->pending) { c->pending = 1; vec_push(&l->pending, c); }
}

/* Queues p[0..n), which must stay valid until the end of the pass (in the
 * arena), for c: a reference, not a copy.  A connection the kernel is
 * already behind on gets a copy in its backlog instead, after what is
 * there, so order holds. */
static void out_ref(loop_t *l, conn_t *c, const uint8_t *p, size_t n)
{
    if (c->doomed || c->state == ST_DEAD) return;
    if (c->armed) {
        if (c->backlog.len - c->backlog.off + n <= MAX_BACKLOG) { buf_append(&c->backlog, p, n); return; }
        c->doomed = 1;                             /* closed after the pass: the caller */
        want_flush(l, c);                          /* may be walking the fan list */
        return;
    }
    seg_t *s = arena(l, sizeof *s);
    *s = (seg_t){ NULL, p, n };
    if (c->tail) c->tail->next = s; else c->head = s;
    c->tail = s;
    want_flush(l, c);
}

/* Queues a copy of p[0..n) for c. */
static void out_copy(loop_t *l, conn_t *c, const void *p, size_t n)
{
    uint8_t *a = arena(l, n);
    memcpy(a, p, n);
    out_ref(l, c, a, n);
}

static void set_armed(loop_t *l, conn_t *c, int on)
{
    struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };
    epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->armed = (uint8_t)on;
}

static void conn_close(loop_t *l, conn_t *c);

/* Writes up to n bytes: returns how many the socket took (0 when it is
 * full) or -1 on an error.  With TLS, partial writes are on, and what
 * SSL_write did not take goes to the backlog, whose first bytes are then
 * the retry OpenSSL wants. */
static ssize_t conn_write(conn_t *c, const uint8_t *p, size_t n)
{
    if (!c->ssl) {
        ssize_t w;
        do w = write(c->fd, p, n); while (w < 0 && errno == EINTR);
        return w >= 0 ? w : errno == EAGAIN ? 0 : -1;
    }
    size_t done = 0;
    while (done < n) {
        int w = SSL_write(c->ssl, p + done, (int)(n - done > (1u << 30) ? 1u << 30 : n - done));
        if (w > 0) { done += (size_t)w; continue; }
        int e = SSL_get_error(c->ssl, w);
        if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) return -1;
        break;
    }
    return (ssize_t)done;
}

/* Copies the segments into the loop's gather buffer (hot in cache: every
 * connection reuses it) and writes them with one write or SSL_write.
 * Measured against writev() of the references: 6% less server CPU per
 * delivery at 100 bytes of data, about the same at 2000 (README.md). */
static void flush_gathered(loop_t *l, conn_t *c, seg_t *s)
{
    buf_t *g = &l->gather;
    const uint8_t *p = s->p;
    size_t n = s->n;
    if (s->next) {                                 /* one segment needs no copy */
        for (g->len = 0; s; s = s->next) buf_append(g, s->p, s->n);
        p = g->p;
        n = g->len;
    }
    ssize_t w = conn_write(c, p, n);
    if (w < 0) { conn_close(l, c); return; }
    if ((size_t)w < n) {
        buf_append(&c->backlog, p + w, n - (size_t)w);
        set_armed(l, c, 1);
        return;
    }
    if (c->state == ST_CLOSING) conn_close(l, c);
}

/* Writes the segments of this pass: gathered when small or over TLS (which
 * has no writev), else with writev (one call unless there are more than
 * IOV_BATCH), so big deliveries are not copied.  What the kernel does not
 * take goes to the backlog, and EPOLLOUT is asked for. */
static void flush_pass(loop_t *l, conn_t *c)
{
    seg_t *s = c->head;
    c->head = c->tail = NULL;
    size_t total = 0;
    for (seg_t *t = s; t && total <= GATHER_MAX; t = t->next) total += t->n;
    if (c->ssl || total <= GATHER_MAX) { flush_gathered(l, c, s); return; }
    while (s) {
        int k = 0;
        size_t want = 0;
        seg_t *from = s;
        for (; s && k < IOV_BATCH; s = s->next, k++) {
            l->iov[k] = (struct iovec){ (void *)s->p, s->n };
            want += s->n;
        }
        ssize_t w;
        do w = writev(c->fd, l->iov, k); while (w < 0 && errno == EINTR);
        if (w < 0 && errno != EAGAIN) { conn_close(l, c); return; }
        if (w == (ssize_t)want) continue;
        size_t skip = w > 0 ? (size_t)w : 0;       /* the rest goes to the backlog */
        for (s = from; s; s = s->next) {
            if (skip >= s->n) { skip -= s->n; continue; }
            buf_append(&c->backlog, s->p + skip, s->n - skip);
            skip = 0;
        }
        set_armed(l, c, 1);
        return;
    }
    if (c->state == ST_CLOSING) conn_close(l, c);
}

/* EPOLLOUT: write the backlog; when it is gone, back to plain passes. */
static void flush_backlog(loop_t *l, conn_t *c)
{
    buf_t *b = &c->backlog;
    ssize_t w = conn_write(c, b->p + b->off, b->len - b->off);
    if (w < 0) { conn_close(l, c); return; }
    b->off += (size_t)w;
    if (b->off < b->len) return;
    buf_free(b);
    set_armed(l, c, 0);
    if (c->state == ST_CLOSING) conn_close(l, c);
}

/* ---- connections ---------------------------------------------------------------- */

static void list_remove(vec_t *v, uint32_t i, int fan)
{
    conn_t *last = v->v[--v->n];
    v->v[i] = last;
    if (fan) last->fan_idx = i; else last->all_idx = i;
}

static void conn_close(loop_t *l, conn_t *c)
{
    if (c->state == ST_DEAD) return;
    if (c->fan) list_remove(&l->fan, c->fan_idx, 1);
    if (c->state != ST_HANDSHAKE) list_remove(&l->all, c->all_idx, 0);
    if (c->ssl && SSL_is_init_finished(c->ssl)) SSL_shutdown(c->ssl);   /* close_notify, best effort */
    close(c->fd);                                  /* also leaves the epoll set */
    c->state = ST_DEAD;
    vec_push(&l->dead, c);                         /* freed after the batch */
}

static void conn_accept(loop_t *l)
{
    for (int k = 0; k < 256; k++) {
        int fd = accept4(l->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn_t *c = xrealloc(NULL, sizeof *c);
        memset(c, 0, sizeof *c);
        c->fd = fd;
        if (l->tls) {
            c->ssl = SSL_new(l->tls);
            if (!c->ssl || !SSL_set_fd(c->ssl, fd)) { fprintf(stderr, "ceiling: SSL_new failed\n"); exit(1); }
            SSL_set_accept_state(c->ssl);
        }
        c->id_len = (uint8_t)snprintf(c->id, sizeof c->id, "c%u", l->next_id++);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev);
    }
}

/* ---- WebSocket ------------------------------------------------------------------- */

static size_t frame_header(uint8_t *h, uint8_t opcode, size_t n)
{
    h[0] = (uint8_t)(0x80 | opcode);
    if (n < 126) { h[1] = (uint8_t)n; return 2; }
    if (n < 65536) { h[1] = 126; h[2] = (uint8_t)(n >> 8); h[3] = (uint8_t)n; return 4; }
    h[1] = 127;
    for (int i = 0; i < 8; i++) h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    return 10;
}

static void send_frame(loop_t *l, conn_t *c, uint8_t opcode, const void *p, size_t n)
{
    uint8_t *f = arena(l, 10 + n);
    size_t hl = frame_header(f, opcode, n);
    memcpy(f + hl, p, n);
    out_ref(l, c, f, hl + n);
}

/* Handles a complete request header in req[0..n) (NUL-terminated). */
static int handshake(loop_t *l, conn_t *c, char *req)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char *k = strcasestr(req, "\nSec-WebSocket-Key:");
    if (!k) return -1;
    k += 19;
    while (*k == ' ' || *k == '\t') k++;
    size_t kl = strcspn(k, " \t\r\n");
    if (kl == 0 || kl > 64) return -1;
    char cat[64 + sizeof guid];
    memcpy(cat, k, kl);
    memcpy(cat + kl, guid, sizeof guid - 1);
    uint8_t sha[SHA_DIGEST_LENGTH];
    SHA1((const uint8_t *)cat, kl + sizeof guid - 1, sha);
    char acc[32], resp[256], welcome[64];
    EVP_EncodeBlock((uint8_t *)acc, sha, sizeof sha);
    int n = snprintf(resp, sizeof resp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", acc);
    out_copy(l, c, resp, (size_t)n);
    n = snprintf(welcome, sizeof welcome, "{\"op\":\"welcome\",\"conn\":\"%s\"}", c->id);
    send_frame(l, c, 1, welcome, (size_t)n);
    c->state = ST_OPEN;
    c->all_idx = (uint32_t)l->all.n;
    vec_push(&l->all, c);
    return 0;
}

/* The string value after `key` (which ends with the opening quote). */
static const uint8_t *str_field(const uint8_t *p, size_t n, const char *key, size_t *len)
{
    size_t kl = strlen(key);
    const uint8_t *v = memmem(p, n, key, kl);
    if (!v) return NULL;
    v += kl;
    const uint8_t *e = memchr(v, '"', (size_t)(p + n - v));
    if (!e) return NULL;
    *len = (size_t)(e - v);
    return v;
}

static void append(uint8_t **w, const void *p, size_t n) { memcpy(*w, p, n); *w += n; }
#define APPEND_LIT(w, s) append(w, s, sizeof s - 1)

/* Frames the delivery once, in the arena, and queues it for every recipient. */
static void emit(loop_t *l, conn_t *c, const uint8_t *p, size_t n)
{
    size_t evl, tol;
    const uint8_t *ev = str_field(p, n, "\"event\":\"", &evl);
    const uint8_t *to = str_field(p, n, "\"to\":\"", &tol);
    const uint8_t *data = memmem(p, n, "\"data\":", 7);
    const uint8_t *end = p + n;
    while (end > p && end[-1] != '}') end--;
    if (!ev || !to || !data || (data += 7) >= end) return;
    size_t dl = (size_t)(end - 1 - data);
    uint8_t *frame = arena(l, 10 + 38 + evl + dl + c->id_len + tol);
    uint8_t *body = frame + 10, *w = body;        /* the header goes in front */
    APPEND_LIT(&w, "{\"event\":\"");
    append(&w, ev, evl);
    APPEND_LIT(&w, "\",\"data\":");
    append(&w, data, dl);
    APPEND_LIT(&w, ",\"from\":\"");
    append(&w, c->id, c->id_len);
    APPEND_LIT(&w, "\",\"to\":\"");
    append(&w, to, tol);
    APPEND_LIT(&w, "\"}");
    uint8_t h[10];
    size_t hl = frame_header(h, 1, (size_t)(w - body));
    const uint8_t *f = memcpy(body - hl, h, hl);
    size_t fl = (size_t)(w - f);
    if (tol >= 10 && memcmp(to, "room:echo-", 10) == 0) { out_ref(l, c, f, fl); return; }
    vec_t *v = tol >= 5 && memcmp(to, "room:", 5) == 0 ? &l->fan : &l->all;
    int all = tol == 3 && memcmp(to, "all", 3) == 0;
    for (size_t i = 0; i < v->n; i++)
        if (v->v[i] != c || all || v == &l->fan) out_ref(l, v->v[i], f, fl);
}

static void on_text(loop_t *l, conn_t *c, const uint8_t *p, size_t n)
{
    static const char ack[] = "{\"op\":\"ack\",\"id\":1}";
    if (n >= 12 && memcmp(p, "{\"op\":\"join\"", 12) == 0) {
        size_t rl;
        const uint8_t *room = str_field(p, n, "\"room\":\"", &rl);
        if (room && !c->fan && !(rl >= 5 && memcmp(room, "echo-", 5) == 0)) {
            c->fan = 1;
            c->fan_idx = (uint32_t)l->fan.n;
            vec_push(&l->fan, c);
        }
        send_frame(l, c, 1, ack, sizeof ack - 1);
    } else if (n >= 12 && memcmp(p, "{\"op\":\"emit\"", 12) == 0) {
        emit(l, c, p, n);
    }
}

/* Unmasks 8 bytes at a time: the mask repeats every 4, so twice is a word. */
static void unmask(uint8_t *p, size_t n, const uint8_t key[4])
{
    uint32_t k32;
    memcpy(&k32, key, 4);
    uint64_t k = (uint64_t)k32 << 32 | k32, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) { memcpy(&w, p + i, 8); w ^= k; memcpy(p + i, &w, 8); }
    for (; i < n; i++) p[i] ^= key[i & 3];
}

/* Parses and handles whole frames in p[0..n); returns bytes consumed, or
 * -1 when the connection was closed. */
static ssize_t frames(loop_t *l, conn_t *c, uint8_t *p, size_t n)
{
    size_t at = 0;
    while (c->state == ST_OPEN && n - at >= 6) {
        uint8_t *h = p + at, op = h[0] & 0x0f;
        size_t hl = 2, len = h[1] & 0x7f;
        if (!(h[0] & 0x80) || op == 0 || !(h[1] & 0x80)) { conn_close(l, c); return -1; }
        if (len == 126) { hl = 4; if (n - at < 8) break; len = (size_t)h[2] << 8 | h[3]; }
        else if (len == 127) {
            hl = 10;
            if (n - at < 14) break;
            len = 0;
            for (int i = 2; i < 10; i++) len = len << 8 | h[i];
        }
        if (len > MAX_PAYLOAD) { conn_close(l, c); return -1; }
        if (n - at < hl + 4 + len) break;
        uint8_t *pl = h + hl + 4;
        unmask(pl, len, h + hl);
        at += hl + 4 + len;
        if (op == 1) on_text(l, c, pl, len);
        else if (op == 9) send_frame(l, c, 10, pl, len);
        else if (op == 8) {                        /* echo the code, close after the flush */
            send_frame(l, c, 8, pl, len >= 2 ? 2 : 0);
            if (c->state == ST_OPEN) c->state = ST_CLOSING;
        }
    }
    return c->state == ST_DEAD ? -1 : (ssize_t)at;
}

/* Handshake bytes or frames in p[0..n); returns bytes consumed or -1. */
static ssize_t consume(loop_t *l, conn_t *c, uint8_t *p, size_t n)
{
    if (c->state != ST_HANDSHAKE) return c->state == ST_OPEN ? frames(l, c, p, n) : (ssize_t)n;
    uint8_t *e = memmem(p, n, "\r\n\r\n", 4);
    if (!e) {
        if (n > MAX_HEADER) { conn_close(l, c); return -1; }
        return 0;
    }
    uint8_t save = e[2];
    e[2] = '\0';
    int rc = handshake(l, c, (char *)p);
    e[2] = save;
    if (rc != 0) { conn_close(l, c); return -1; }
    ssize_t more = frames(l, c, e + 4, (size_t)(p + n - (e + 4)));
    return more < 0 ? -1 : (e + 4 - p) + more;
}

static ssize_t tls_error(loop_t *l, conn_t *c, int r)
{
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_WRITE && !c->armed) set_armed(l, c, 1);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? -1 : e == SSL_ERROR_ZERO_RETURN ? 0 : -2;
}

/* Reads into the loop buffer: returns bytes, 0 at EOF, -1 when there is
 * nothing now, -2 on an error.  TLS: the handshake runs here first; one
 * that cannot write waits for EPOLLOUT. */
static ssize_t conn_read(loop_t *l, conn_t *c)
{
    if (!c->ssl) {
        ssize_t r = read(c->fd, l->rbuf, RBUF_SIZE);
        return r >= 0 ? r : errno == EAGAIN || errno == EINTR ? -1 : -2;
    }
    if (!SSL_is_init_finished(c->ssl)) {
        int h = SSL_do_handshake(c->ssl);
        if (h != 1) return tls_error(l, c, h);
    }
    int r = SSL_read(c->ssl, l->rbuf, RBUF_SIZE);
    return r > 0 ? r : tls_error(l, c, r);
}

/* Bytes are parsed from the loop buffer; only a partial handshake or frame
 * is copied into the connection's own buffer. */
static void input(loop_t *l, conn_t *c, size_t n)
{
    uint8_t *p = l->rbuf;
    buf_t *in = &c->in;
    if (in->len) {
        if (in->len + n + 1 > in->cap) { in->cap = in->len + n + 1; in->p = xrealloc(in->p, in->cap); }
        memcpy(in->p + in->len, p, n);
        in->len += n;
        p = in->p;
        n = in->len;
    }
    ssize_t used = consume(l, c, p, n);
    if (used < 0) return;
    size_t rest = n - (size_t)used;
    if (rest == 0) { buf_free(in); return; }
    if (p == l->rbuf) { in->cap = rest + 1; in->p = xrealloc(NULL, in->cap); }
    memmove(in->p, p + used, rest);
    in->len = rest;
}

/* One read per readiness event (level-triggered: what the socket still
 * holds comes back in the next pass).  TLS: SSL_read returns one record at
 * a time, so read on while OpenSSL holds read-ahead bytes the socket will
 * not announce again, but not once more just to hear "want read" (a
 * read() that finds nothing). */
static void on_readable(loop_t *l, conn_t *c)
{
    do {
        ssize_t r = conn_read(l, c);
        if (r == -1) return;
        if (r <= 0) { conn_close(l, c); return; }
        input(l, c, (size_t)r);
    } while (c->ssl && c->state != ST_DEAD && SSL_has_pending(c->ssl));
}

/* ---- the loop ----------------------------------------------------------------------- */

/* After the batch: one write per connection with output, then the frees. */
static void end_of_pass(loop_t *l)
{
    for (size_t i = 0; i < l->pending.n; i++) {
        conn_t *c = l->pending.v[i];
        c->pending = 0;
        if (c->doomed) conn_close(l, c);
        else if (c->state != ST_DEAD) flush_pass(l, c);
    }
    l->pending.n = 0;
    l->cur = l->used = 0;
    for (size_t i = 0; i < l->dead.n; i++) {
        conn_t *c = l->dead.v[i];
        free(c->in.p);
        free(c->backlog.p);
        SSL_free(c->ssl);
        free(c);
    }
    l->dead.n = 0;
}

static int listen_on(int port, int *bound)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4096) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
        perror("ceiling: listen");
        exit(1);
    }
    *bound = ntohs(a.sin_port);
    return fd;
}

/* TLS 1.2 and up, OpenSSL's default ciphers (as wsgw).  Read-ahead saves a
 * read() per record; idle connections give their buffers back. */
static SSL_CTX *tls_context(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        fprintf(stderr, "ceiling: cannot use %s / %s\n", cert, key);
        exit(1);
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1);
    return ctx;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    long port = argc == 2 || argc == 5 ? strtol(argv[1], &end, 10) : -1;
    if (!end || *end || port < 0 || port > 65535 || (argc == 5 && strcmp(argv[2], "--tls") != 0)) {
        fprintf(stderr, "usage: ceiling PORT [--tls CERT KEY]\n");
        return 64;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = { .sa_handler = on_signal };   /* no SA_RESTART: epoll_wait returns */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    static loop_t loop;
    loop_t *l = &loop;
    int bound;
    l->lfd = listen_on((int)port, &bound);
    if (argc == 5) l->tls = tls_context(argv[3], argv[4]);
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
    epoll_ctl(l->ep, EPOLL_CTL_ADD, l->lfd, &lev);
    printf("LISTENING %d\n", bound);
    fflush(stdout);

    struct epoll_event evs[1024];
    while (!stop) {
        int n = epoll_wait(l->ep, evs, 1024, -1);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (!c) { conn_accept(l); continue; }
            if (c->state == ST_DEAD) continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(l, c);
            if (c->state == ST_DEAD || !(evs[i].events & EPOLLOUT)) continue;
            if (c->backlog.len) { flush_backlog(l, c); continue; }
            set_armed(l, c, 0);                    /* TLS wanted to write: try again */
            on_readable(l, c);
        }
        end_of_pass(l);
    }
    return 0;
}
