/* server.c — the server object: listeners and accept, the per-iteration
 * flush of pending writes, the single sweep timer for every timeout, and
 * graceful shutdown.
 *
 * One libev loop per process drives everything.  The loop is passed in, so
 * a test can run several servers on one loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "server_int.h"
#include "tls.h"
#include "ws_status.h"

#define ACCEPT_PER_EVENT 64   /* bound the work one readiness event can cause */

uint64_t wsgw_now_ms(const wsgw_server_t *s)
{
    return (uint64_t)(ev_now(s->loop) * 1000.0);
}

/* ---- listening ---------------------------------------------------------------- */

static int socket_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) return -1;
    return ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                    : ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int wsgw_listen_socket(const char *spec, char *err, size_t errlen)
{
    if (errlen) err[0] = '\0';
    char host[256];
    int port;
    const char *why = NULL;
    if (wsgw_parse_hostport(spec, host, sizeof host, &port, &why) != 0) {
        snprintf(err, errlen, "listen %s: %s", spec, why ? why : "bad address");
        return -1;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int gai = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "listen %s: %s", spec, gai_strerror(gai));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        /* Several workers bind the same port; the kernel spreads accepts. */
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        if (ai->ai_family == AF_INET6 && host[0]) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 4096) == 0) break;
        snprintf(err, errlen, "listen %s: %s", spec, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0 && !err[0]) snprintf(err, errlen, "listen %s: no usable address", spec);
    return fd;
}

/* EMFILE/ENFILE: the pending connection stays in the backlog and the
 * listener stays readable, so the loop would spin.  Give back the spare
 * descriptor, accept and close the one connection, and take the spare again
 * (libuv's trick): the peer sees a prompt close instead of a hang. */
static void accept_shed_one(wsgw_server_t *s, int lfd)
{
    if (s->spare_fd < 0) return;
    close(s->spare_fd);
    int fd = accept(lfd, NULL, NULL);
    if (fd >= 0) close(fd);
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* At max_pending_handshakes, the oldest handshake makes room for the new
 * connection if it has dragged on for PENDING_STALE_MS (a real client
 * finishes in a few round trips): a slowloris that fills the table then
 * loses its oldest sockets to newcomers, and the balancer's health checks
 * and real clients still get in, instead of every new connection being
 * refused until the attacker stops.  Only a flood of fresh handshakes is
 * refused.  Returns 1 when a slot was freed. */
#define PENDING_STALE_MS 1000u

static int pending_make_room(wsgw_server_t *s)
{
    wsgw_conn_t *old = s->pend_head;
    uint64_t stale = s->cfg->handshake_timeout_ms / 2;
    if (stale > PENDING_STALE_MS) stale = PENDING_STALE_MS;
    if (!old || wsgw_now_ms(s) - old->hs->since_ms < stale) return 0;
    s->metrics.handshake_failures[HS_FAIL_PENDING]++;
    wsgw_log(WSGW_LOG_DEBUG, "handshake_evicted", "remote=%s reason=\"oldest pending handshake, table full\"",
             conn_peer(old));
    conn_close_now(old, 0);
    return 1;
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop; (void)revents;
    listener_t *l = container_of(w, listener_t, io);
    wsgw_server_t *s = l->srv;
    for (int i = 0; i < ACCEPT_PER_EVENT; i++) {
        struct sockaddr_storage peer;
        socklen_t pl = sizeof peer;
        int fd = accept4(l->fd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            int err = errno;
            s->metrics.accept_errors++;
            /* Out of descriptors, every new client fails again: one line a
             * second (with how many it stands for), not a flood. */
            uint64_t now = wsgw_now_ms(s);
            if (!s->accept_err_logged_ms || now - s->accept_err_logged_ms >= 1000) {
                wsgw_log(WSGW_LOG_WARN, "accept_error", "err=\"%s\" connections=%zu since_last_line=%llu",
                         strerror(err), s->n_conns, (unsigned long long)s->accept_err_unlogged + 1);
                s->accept_err_logged_ms = now;
                s->accept_err_unlogged = 0;
            } else {
                s->accept_err_unlogged++;
            }
            if (err == EMFILE || err == ENFILE) accept_shed_one(s, l->fd);
            return;
        }
        if (s->n_handshaking >= (size_t)s->cfg->max_pending_handshakes && !pending_make_room(s)) {
            /* Slowloris guard: no buffer is spent on it. */
            s->metrics.handshake_failures[HS_FAIL_PENDING]++;
            close(fd);
            continue;
        }
        conn_accept(s, fd, &peer, l->tls);
    }
}

/* ---- per-iteration work -------------------------------------------------------- */

/* Runs before the loop blocks: every write queued during this iteration's
 * callbacks goes out now, in one writev per connection; then connections
 * closed during the iteration are freed. */
static void flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop; (void)revents;
    wsgw_server_t *s = container_of(w, wsgw_server_t, flush_w);
    /* Other nodes' share of a fan-out first: they start while we write ours. */
    hooks_flush(s);
    while (s->pending) {
        wsgw_conn_t *list = s->pending;
        s->pending = s->pending_tail = NULL;
        while (list) {
            wsgw_conn_t *c = list;
            list = c->pending_next;
            c->in_pending = 0;
            c->pending_next = NULL;
            if (c->state != CONN_DEAD) conn_flush(c);
        }
    }
    while (s->to_free) {
        wsgw_conn_t *c = s->to_free;
        s->to_free = c->free_next;
        conn_free(c);
    }
    if (s->draining && s->n_conns == 0 && s->drain_done) {
        void (*done)(void *) = s->drain_done;
        s->drain_done = NULL;
        ev_timer_stop(s->loop, &s->drain_w);
        done(s->drain_done_ud);
    }
}

static void sweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    wsgw_server_t *s = container_of(w, wsgw_server_t, sweep_w);
    uint64_t now = wsgw_now_ms(s);
    for (wsgw_conn_t *c = s->conns, *next; c; c = next) {
        next = c->next;                       /* c may close (and unlink) itself */
        conn_sweep(c, now);
    }
    if (s->cfg->conn_rate_per_ip || s->cfg->max_conns_per_ip)
        ip_table_sweep(&s->ips, s->cfg->conn_rate_per_ip, s->cfg->conn_rate_per_ip_burst, now);
    hooks_sweep(s, now);
}

/* The sweep runs often enough for the shortest configured timeout. */
static double sweep_interval(const wsgw_config_t *cfg)
{
    uint64_t t[] = { cfg->handshake_timeout_ms, cfg->read_timeout_ms, cfg->write_timeout_ms,
                     cfg->pong_timeout_ms, cfg->ping_period_ms, cfg->http_write_timeout_ms };
    uint64_t shortest = 1000;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i] && t[i] / 4 < shortest) shortest = t[i] / 4;
    if (shortest < 25) shortest = 25;
    return (double)shortest / 1000.0;
}

/* ---- construction ------------------------------------------------------------------ */

static void server_add_listener(wsgw_server_t *s, int fd, int tls, const char *spec)
{
    listener_t *l = &s->listeners[s->n_listeners++];
    l->fd = fd;
    l->port = socket_port(fd);
    l->srv = s;
    l->tls = tls;
    ev_io_init(&l->io, accept_cb, l->fd, EV_READ);
    ev_io_start(s->loop, &l->io);
    wsgw_log(WSGW_LOG_INFO, "listening", "addr=%s port=%d path=%s tls=%d", spec, l->port,
             s->cfg->path, tls);
}

/* Listeners: cfg->listen (cleartext) first, then cfg->tls_listen, so
 * wsgw_server_port(s, i) counts them in that order. */
static int server_listen_all(wsgw_server_t *s, char *err, size_t errlen)
{
    const wsgw_strlist_t *lists[2] = { &s->cfg->listen, &s->cfg->tls_listen };
    s->listeners = ws_xcalloc(lists[0]->n + lists[1]->n + 1, sizeof *s->listeners);
    for (int tls = 0; tls < 2; tls++) {
        for (size_t i = 0; i < lists[tls]->n; i++) {
            int fd = wsgw_listen_socket(lists[tls]->v[i], err, errlen);
            if (fd < 0) return -1;
            server_add_listener(s, fd, tls, lists[tls]->v[i]);
        }
    }
    return 0;
}

static const char *conn_id_key(const void *item, size_t *len)
{
    const wsgw_conn_t *c = item;
    *len = c->id_len;
    return c->id;
}

/* proxy_protocol: the config checked each item already; an embedding
 * program that filled the list itself is told which item is wrong. */
static int server_proxy_init(wsgw_server_t *s, char *err, size_t errlen)
{
    const wsgw_strlist_t *l = &s->cfg->proxy_protocol;
    if (!l->n) return 0;
    s->proxy_trusted = ws_xcalloc(l->n, sizeof *s->proxy_trusted);
    for (size_t i = 0; i < l->n; i++) {
        const char *why = NULL;
        if (cidr_parse(l->v[i], &s->proxy_trusted[i], &why) != 0) {
            if (err && errlen) snprintf(err, errlen, "proxy_protocol: \"%s\": %s", l->v[i], why);
            return -1;
        }
    }
    s->n_proxy_trusted = l->n;
    return 0;
}

wsgw_server_t *core_server_new(struct ev_loop *loop, const wsgw_config_t *cfg,
                                 const wsgw_listen_fd_t *fds, size_t nfds, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    wsgw_server_t *s = ws_xcalloc(1, sizeof *s);
    s->loop = loop;
    idmap_init(&s->by_id, conn_id_key);
    s->cfg = cfg;
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (poller_init(&s->poller, loop, conn_ready) != 0) {
        if (err && errlen) snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
        s->poller.epfd = -1;
        wsgw_server_free(s);
        return NULL;
    }
    s->read_cap = cfg->read_buffer_size;
    s->read_buf = ws_xmalloc(s->read_cap);
    s->write_cap = cfg->write_buffer_size;
    s->write_buf = ws_xmalloc(s->write_cap);
    if (cfg->tls_listen.n) {
        s->ssl_ctx = tls_ctx_new(cfg->tls_cert, cfg->tls_key, cfg->tls_min_version == WSGW_TLS_1_3,
                                 cfg->tls_ciphers, err, errlen);
        if (!s->ssl_ctx) {
            wsgw_server_free(s);
            return NULL;
        }
    }
    if (server_proxy_init(s, err, errlen) != 0) {
        wsgw_server_free(s);
        return NULL;
    }
    ws_http_limits_default(&s->http_limits);
    ws_pmd_policy_default(&s->pmd_policy);
    s->pmd_policy.enable = cfg->enable_compression;
    /* One inflater for the whole loop: every client is asked to use no
     * context takeover, so no zlib stream is kept per connection. */
    s->pmd_policy.allow_client_context_takeover = 0;
    s->pmd_policy.allow_server_context_takeover = 0;
    if (cfg->enable_compression) {
        s->inflater = ws_inflater_new(15);
    }
    hooks_rooms_attach(s);
    if (fds) {
        s->listeners = ws_xcalloc(nfds + 1, sizeof *s->listeners);
        for (size_t i = 0; i < nfds; i++) server_add_listener(s, fds[i].fd, fds[i].tls, "inherited");
    } else if (server_listen_all(s, err, errlen) != 0) {
        wsgw_server_free(s);
        return NULL;
    }
    ev_prepare_init(&s->flush_w, flush_cb);
    ev_prepare_start(loop, &s->flush_w);
    double iv = sweep_interval(cfg);
    ev_timer_init(&s->sweep_w, sweep_cb, iv, iv);
    ev_timer_start(loop, &s->sweep_w);
    s->started_ms = wsgw_now_ms(s);
    return s;
}


void wsgw_server_on_connection(wsgw_server_t *s, wsgw_connection_cb cb, void *ud)
{
    s->on_connection = cb;
    s->on_connection_ud = ud;
}

void wsgw_server_set_id_generator(wsgw_server_t *s, wsgw_id_generator_cb cb, void *ud)
{
    s->id_gen = cb;
    s->id_gen_ud = ud;
}

void wsgw_server_set_handshake_error(wsgw_server_t *s, wsgw_handshake_error_cb cb, void *ud)
{
    s->hs_error = cb;
    s->hs_error_ud = ud;
}

void wsgw_server_set_check_origin(wsgw_server_t *s, wsgw_check_origin_cb cb, void *ud)
{
    s->check_origin = cb;
    s->check_origin_ud = ud;
}

size_t wsgw_server_connections(const wsgw_server_t *s) { return s->n_open; }

int wsgw_server_port(const wsgw_server_t *s, size_t i)
{
    return i < s->n_listeners ? s->listeners[i].port : -1;
}

static void server_close_listeners(wsgw_server_t *s)
{
    for (size_t i = 0; i < s->n_listeners; i++) {
        ev_io_stop(s->loop, &s->listeners[i].io);
        close(s->listeners[i].fd);
    }
    s->n_listeners = 0;
}

static void drain_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    wsgw_server_t *s = container_of(w, wsgw_server_t, drain_w);
    wsgw_log(WSGW_LOG_WARN, "drain_timeout", "remaining=%zu", s->n_conns);
    if (ev_is_active(&s->spread_w)) ev_timer_stop(loop, &s->spread_w);
    s->spread_next = NULL;
    for (wsgw_conn_t *c = s->conns, *next; c; c = next) {
        next = c->next;
        conn_close_now(c, WS_CLOSE_GOING_AWAY);
    }
    /* flush_cb calls done() once the list is empty, on the next iteration. */
}

/* Closes up to `max` open connections from s->spread_next on; returns how
 * many.  The cursor survives connections freed meanwhile: conn_close_now
 * moves it past the one it unlinks. */
static size_t drain_close_some(wsgw_server_t *s, size_t max)
{
    size_t closed = 0;
    while (s->spread_next && closed < max) {
        wsgw_conn_t *c = s->spread_next;
        s->spread_next = c->next;
        if (c->state == CONN_OPEN) {
            s->metrics.closes[CLOSE_SHUTDOWN]++;
            conn_fail(c, WS_CLOSE_GOING_AWAY, "server shutting down");
            closed++;
        } else if (c->state == CONN_HANDSHAKE) {
            conn_close_now(c, 0);
        }
    }
    return closed;
}

#define DRAIN_SPREAD_TICK_MS 50

static void drain_spread_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    wsgw_server_t *s = container_of(w, wsgw_server_t, spread_w);
    drain_close_some(s, s->spread_batch);
    if (!s->spread_next) ev_timer_stop(loop, w);
}

void wsgw_server_shutdown(wsgw_server_t *s, void (*done)(void *ud), void *ud)
{
    if (s->draining) return;
    s->draining = 1;
    s->drain_done = done;
    s->drain_done_ud = ud;
    server_close_listeners(s);
    uint64_t spread = s->cfg->drain_spread_ms;
    wsgw_log(WSGW_LOG_INFO, "shutdown", "connections=%zu drain_timeout_ms=%llu drain_spread_ms=%llu",
             s->n_conns, (unsigned long long)s->cfg->drain_timeout_ms, (unsigned long long)spread);
    s->spread_next = s->conns;
    if (spread < 2 * DRAIN_SPREAD_TICK_MS || s->n_open <= 1) {
        drain_close_some(s, SIZE_MAX);
    } else {
        /* Every tick a share, so the last close goes out after `spread`:
         * their reconnects reach the other gateways as a stream, not a wall. */
        size_t ticks = (size_t)(spread / DRAIN_SPREAD_TICK_MS);
        s->spread_batch = (s->n_open + ticks - 1) / ticks;
        drain_close_some(s, s->spread_batch);
        ev_timer_init(&s->spread_w, drain_spread_cb, DRAIN_SPREAD_TICK_MS / 1000.0, DRAIN_SPREAD_TICK_MS / 1000.0);
        ev_timer_start(s->loop, &s->spread_w);
    }
    ev_timer_init(&s->drain_w, drain_timeout_cb, (double)s->cfg->drain_timeout_ms / 1000.0, 0);
    ev_timer_start(s->loop, &s->drain_w);
    ev_feed_event(s->loop, &s->flush_w, EV_PREPARE);  /* done() now if nobody was connected */
}

void wsgw_server_free(wsgw_server_t *s)
{
    if (!s) return;
    server_close_listeners(s);
    for (wsgw_conn_t *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->app) c->app->on_disconnect = NULL;   /* no callbacks from a dying server */
        conn_close_now(c, WS_CLOSE_GOING_AWAY);
    }
    while (s->to_free) {
        wsgw_conn_t *c = s->to_free;
        s->to_free = c->free_next;
        conn_free(c);
    }
    poller_free(&s->poller);
    if (ev_is_active(&s->flush_w)) ev_prepare_stop(s->loop, &s->flush_w);
    if (ev_is_active(&s->sweep_w)) ev_timer_stop(s->loop, &s->sweep_w);
    if (ev_is_active(&s->drain_w)) ev_timer_stop(s->loop, &s->drain_w);
    if (ev_is_active(&s->spread_w)) ev_timer_stop(s->loop, &s->spread_w);
    hooks_free(s);                              /* the features, last registered first */
    ws_buf_free(&s->frame_buf);
    rooms_free(&s->rooms);
    idmap_free(&s->by_id);
    ip_table_free(&s->ips);
    ws_xfree(s->proxy_trusted);
    if (s->inflater) ws_inflater_free(s->inflater);
    for (int i = 0; i < 8; i++) if (s->deflaters[i]) ws_deflater_free(s->deflaters[i]);
    if (s->spare_fd >= 0) close(s->spare_fd);
    ws_xfree(s->listeners);
    if (s->ssl_ctx) tls_ctx_free(s->ssl_ctx);
    ws_xfree(s->read_buf);
    ws_xfree(s->write_buf);
    ws_xfree(s);
}

void wsgw_server_gauges(const wsgw_server_t *s, wsgw_gauges_t *g)
{
    memset(g, 0, sizeof *g);
    g->connections = s->n_open;
    g->handshaking = s->n_handshaking + s->n_http;
    g->http_responses = s->n_http;
    g->rooms = rooms_count(&s->rooms);
    g->memberships = s->rooms.memberships;
    for (const wsgw_conn_t *c = s->conns; c; c = c->next) g->queued_bytes += c->outq.bytes;
    g->uptime_seconds = (wsgw_now_ms(s) - s->started_ms) / 1000;
    CORE_EACH_HOOK(s, h) if (h->gauges) h->gauges(h->ud, g);
}
