/* bp_harness.h — what the backplane unit tests share (test_backplane_local.c,
 * test_backplane_redis.c): bp_loop_t over ev_timer and the 5 ms tick that
 * measures loop blocking, the resolver's counted and slowable lookup, the
 * redis-server processes a test starts on free loopback ports (and a Unix
 * socket), the backplane peers ("processes") and publish results, and
 * cleanup().
 *
 * Every wait is bounded (WAIT_FOR): an event that does not come fails the
 * test instead of hanging it.  Servers, backplanes and publish results come
 * from static pools that cleanup() empties after each test, so a failed CHECK
 * (which returns early) leaves no server running and nothing to leak into the
 * next test.  Redis children die with this process (PR_SET_PDEATHSIG).
 *
 * Each test binary is one translation unit that includes test.h and then
 * this header, so the statics live here; a binary uses only part of them,
 * hence no unused-function warnings for this header.
 */
#ifndef WS_BP_HARNESS_H
#define WS_BP_HARNESS_H

#pragma GCC diagnostic ignored "-Wunused-function"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libev.h>

#include "backplane.h"
#include "bp_redis_int.h"     /* each connection's phase, for the restart timings */
#include "bp_resolve.h"       /* the lookup the resolver threads run, and their count */

/* ---- the loop: bp_loop_t over ev_timer ---------------------------------------- */

static struct ev_loop *L;
static ev_timer tick;
static int timers_live;
static int in_api;          /* > 0 while a test is inside a bp_* call */
static int reentered;       /* callbacks that ran inside a bp_* call */

typedef struct tt {
    ev_timer w;
    void   (*cb)(void *);
    void    *arg;
} tt_t;

static void tt_fire(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l;
    (void)revents;
    tt_t *t = (tt_t *)w;
    void (*cb)(void *) = t->cb;
    void *arg = t->arg;
    free(t);
    timers_live--;
    cb(arg);
}

static void *tt_start(void *ud, uint64_t ms, void (*cb)(void *), void *arg)
{
    tt_t *t = calloc(1, sizeof *t);
    t->cb = cb;
    t->arg = arg;
    ev_timer_init(&t->w, tt_fire, (double)ms / 1000.0, 0.);
    ev_timer_start((struct ev_loop *)ud, &t->w);
    timers_live++;
    return t;
}

static void tt_stop(void *ud, void *h)
{
    tt_t *t = h;
    ev_timer_stop((struct ev_loop *)ud, &t->w);
    free(t);
    timers_live--;
}

static bp_loop_t hooks = { tt_start, tt_stop, NULL };

static int attach_ev(void *loop_ud, redisAsyncContext *ac)
{
    return redisLibevAttach((struct ev_loop *)loop_ud, ac) == REDIS_OK ? 0 : -1;
}

/* The 5 ms tick stands for the gateway's clients: the longest gap between
 * two ticks since tick_reset() is how long the loop was blocked. */
static double tick_last, tick_max_gap;
static int tick_count;

static void tick_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_now_update(l);
    double now = ev_now(l);
    if (tick_last > 0 && now - tick_last > tick_max_gap) tick_max_gap = now - tick_last;
    tick_last = now;
    tick_count++;
}

static double mono(void)
{
    ev_now_update(L);
    return ev_now(L);
}

static void tick_reset(void)
{
    tick_last = mono();   /* a block right after the reset counts too */
    tick_max_gap = 0;
    tick_count = 0;
}

#define WAIT_FOR(cond, ms) do {                                                \
        double dl_ = mono() + (ms) / 1000.0;                                   \
        while (!(cond) && mono() < dl_) ev_run(L, EVRUN_ONCE);                \
    } while (0)

static void spin(int ms)
{
    double dl = mono() + ms / 1000.0;
    while (mono() < dl) ev_run(L, EVRUN_ONCE);
}

#define CALL(x) do { in_api++; x; in_api--; } while (0)

/* ---- the resolver's lookup: counted, and slowed down on demand ------------------- */

static atomic_int lookups_started, lookups_done;
static atomic_int lookup_delay_ms;   /* a slow DNS server */

static int test_getaddrinfo(const char *node, const char *service,
                            const struct addrinfo *hints, struct addrinfo **res)
{
    atomic_fetch_add(&lookups_started, 1);
    int delay = atomic_load(&lookup_delay_ms);
    if (delay > 0) usleep((useconds_t)delay * 1000);
    int rc = getaddrinfo(node, service, hints, res);
    atomic_fetch_add(&lookups_done, 1);
    return rc;
}

/* ---- redis-server processes ------------------------------------------------------ */

typedef struct srv {
    pid_t       pid;
    int         port;
    char        sock[108];
    const char *user, *pass;     /* for the admin connection */
    const char *extra[16];
} srv_t;

static srv_t srvs[4];
static int nsrvs;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static redisContext *srv_connect(const srv_t *s)
{
    struct timeval tv = { 0, 300000 };
    redisContext *c = s->sock[0] ? redisConnectUnixWithTimeout(s->sock, tv)
                                 : redisConnectWithTimeout("127.0.0.1", s->port, tv);
    if (!c || c->err) {
        if (c) redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, (struct timeval){ 2, 0 });
    if (s->pass) {
        redisReply *r = s->user ? redisCommand(c, "AUTH %s %s", s->user, s->pass)
                                : redisCommand(c, "AUTH %s", s->pass);
        if (r) freeReplyObject(r);
    }
    return c;
}

static srv_t *srv_new(void)
{
    srv_t *s = &srvs[nsrvs++];
    memset(s, 0, sizeof *s);
    return s;
}

/* Starts (or restarts, same port/socket) s; srv_start also waits until it
 * answers PING. */
static int srv_spawn(srv_t *s)
{
    if (!s->sock[0] && !s->port) s->port = free_port();
    char port[16];
    snprintf(port, sizeof port, "%d", s->sock[0] ? 0 : s->port);
    const char *argv[48];
    int n = 0;
    argv[n++] = "redis-server";
    argv[n++] = "--port";          argv[n++] = port;
    argv[n++] = "--bind";          argv[n++] = "127.0.0.1";
    argv[n++] = "--save";          argv[n++] = "";
    argv[n++] = "--appendonly";    argv[n++] = "no";
    argv[n++] = "--daemonize";     argv[n++] = "no";
    if (s->sock[0]) {
        argv[n++] = "--unixsocket";     argv[n++] = s->sock;
        argv[n++] = "--unixsocketperm"; argv[n++] = "700";
    }
    for (int i = 0; s->extra[i]; i++) argv[n++] = s->extra[i];
    argv[n] = NULL;
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int fd = open("/dev/null", O_WRONLY);   /* not freopen: it would flush our stdout */
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    return 0;
}

static int srv_start(srv_t *s)
{
    if (srv_spawn(s) != 0) return -1;
    pid_t pid = s->pid;
    for (int i = 0; i < 500; i++) {
        redisContext *c = srv_connect(s);
        if (c) {
            redisReply *r = redisCommand(c, "PING");
            int ok = r != NULL;
            if (r) freeReplyObject(r);
            redisFree(c);
            if (ok) return 0;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            s->pid = 0;
            return -1;
        }
        usleep(10000);
    }
    return -1;
}

/* 1 when something accepts TCP connections on 127.0.0.1:port (on loopback
 * connect(2) succeeds or is refused at once: it never blocks the loop). */
static int port_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

static void srv_signal(srv_t *s, int sig)
{
    if (s->pid > 0) kill(s->pid, sig);
}

static void srv_kill(srv_t *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

static long long srv_numsub(srv_t *s, const char *ch)
{
    redisContext *c = srv_connect(s);
    if (!c) return -1;
    long long n = -1;
    redisReply *r = redisCommand(c, "PUBSUB NUMSUB %s", ch);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->type == REDIS_REPLY_INTEGER)
        n = r->element[1]->integer;
    if (r) freeReplyObject(r);
    redisFree(c);
    return n;
}

static long long srv_nchannels(srv_t *s)
{
    redisContext *c = srv_connect(s);
    if (!c) return -1;
    redisReply *r = redisCommand(c, "PUBSUB CHANNELS");
    long long n = r && r->type == REDIS_REPLY_ARRAY ? (long long)r->elements : -1;
    if (r) freeReplyObject(r);
    redisFree(c);
    return n;
}

/* How many times the server executed `cmd` (INFO commandstats). */
static long long srv_calls(srv_t *s, const char *cmd)
{
    redisContext *c = srv_connect(s);
    if (!c) return -1;
    long long n = -1;
    redisReply *r = redisCommand(c, "INFO commandstats");
    if (r && r->type == REDIS_REPLY_STRING) {
        char key[64];
        snprintf(key, sizeof key, "cmdstat_%s:calls=", cmd);
        const char *p = strstr(r->str, key);
        n = p ? strtoll(p + strlen(key), NULL, 10) : 0;
    }
    if (r) freeReplyObject(r);
    redisFree(c);
    return n;
}

/* ---- backplane peers ("processes") and publish results ------------------------------ */

typedef struct peer {
    bp_t       *bp;
    int         nstate;
    bp_state_t  state;
    char        why[256];
    int         saw[3];          /* on_state calls per state */
    int         nmsg;
    char        ch[64];
    char        last[256];
    long        next_seq;        /* payloads "<n>" expected from here on */
    int         seq_bad;
    int         free_in_msg;     /* bp_free(self) inside on_message */
    int         republish_left;  /* on_message publishes "<n+1>" again */
    int         in_msg, msg_nested;
    srv_t      *check_srv;       /* on BP_UP: record NUMSUB of check_ch */
    const char *check_ch;
    long long   numsub_at_up;
    long long   channels_at_up;  /* PUBSUB CHANNELS count then */
} peer_t;

typedef struct pubres {
    int  n, dropped;
    long sum, last;
} pubres_t;

static peer_t peers[8];
static int npeers;
static pubres_t results[8];
static int nresults;

static void on_message(void *ud, const char *channel, size_t channel_len,
                       const uint8_t *payload, size_t len)
{
    peer_t *p = ud;
    if (in_api) reentered++;
    if (p->in_msg) p->msg_nested++;
    p->in_msg = 1;
    p->nmsg++;
    snprintf(p->ch, sizeof p->ch, "%.*s", (int)channel_len, channel);
    snprintf(p->last, sizeof p->last, "%.*s", (int)len, (const char *)payload);
    if (len && payload[0] >= '0' && payload[0] <= '9') {
        if (strtol(p->last, NULL, 10) != p->next_seq) p->seq_bad++;
        p->next_seq++;
    }
    if (p->republish_left > 0) {
        p->republish_left--;
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%ld", p->next_seq);
        bp_publish(p->bp, channel, channel_len, (const uint8_t *)buf, (size_t)n, NULL, NULL);
    }
    if (p->free_in_msg) {
        bp_free(p->bp);
        p->bp = NULL;
        p->free_in_msg = 0;
    }
    p->in_msg = 0;
}

static void on_state(void *ud, bp_state_t s, const char *why)
{
    peer_t *p = ud;
    if (in_api) reentered++;
    p->nstate++;
    p->state = s;
    p->saw[s]++;
    snprintf(p->why, sizeof p->why, "%s", why);
    if (getenv("TEST_VERBOSE")) printf("  peer %d: %s (%s)\n", (int)(p - peers), bp_state_name(s), why);
    if (s == BP_UP && p->check_srv) {
        p->numsub_at_up = srv_numsub(p->check_srv, p->check_ch);
        p->channels_at_up = srv_nchannels(p->check_srv);
    }
}

static void pub_cb(void *ud, long receivers, void *privdata)
{
    (void)ud;
    pubres_t *r = privdata;
    if (in_api) reentered++;
    r->n++;
    r->last = receivers;
    if (receivers == BP_DROPPED) r->dropped++;
    else r->sum += receivers;
}

/* A publish callback that frees the publisher on its first call. */
static peer_t *free_on_cb_peer;
static void pub_cb_free(void *ud, long receivers, void *privdata)
{
    pub_cb(ud, receivers, privdata);
    if (free_on_cb_peer && free_on_cb_peer->bp) {
        bp_free(free_on_cb_peer->bp);
        free_on_cb_peer->bp = NULL;
    }
}

static peer_t *peer_new(void)
{
    peer_t *p = &peers[npeers++];
    memset(p, 0, sizeof *p);
    p->numsub_at_up = -1;
    return p;
}

static pubres_t *res_new(void)
{
    pubres_t *r = &results[nresults++];
    memset(r, 0, sizeof *r);
    return r;
}

static bp_callbacks_t callbacks_for(peer_t *p)
{
    return (bp_callbacks_t){ .on_message = on_message, .on_state = on_state, .ud = p };
}

static peer_t *peer_local(void)
{
    peer_t *p = peer_new();
    bp_callbacks_t cb = callbacks_for(p);
    p->bp = bp_local_new(&cb, &hooks);
    return p;
}

static bp_redis_config_t cfg_for(const srv_t *s)
{
    bp_redis_config_t c = {
        .host = s->sock[0] ? NULL : "127.0.0.1",
        .port = s->port,
        .unix_path = s->sock[0] ? s->sock : NULL,
        .backoff_min_ms = 20,
        .backoff_max_ms = 200,
        .connect_timeout_ms = 1000,
        .attach = attach_ev,
    };
    return c;
}

static peer_t *peer_redis(const bp_redis_config_t *cfg)
{
    peer_t *p = peer_new();
    bp_callbacks_t cb = callbacks_for(p);
    char err[128] = "";
    p->bp = bp_redis_new(cfg, &cb, &hooks, err, sizeof err);
    return p;
}

/* Returns what bp_publish returned: 0 taken, BP_REFUSED dropped at once. */
static int publish(peer_t *p, const char *ch, const char *payload, pubres_t *r)
{
    int rc;
    CALL(rc = bp_publish(p->bp, ch, strlen(ch), (const uint8_t *)payload, strlen(payload),
                         r ? pub_cb : NULL, r));
    return rc;
}

static void sub(peer_t *p, const char *ch) { CALL(bp_subscribe(p->bp, ch, strlen(ch))); }
static void unsub(peer_t *p, const char *ch) { CALL(bp_unsubscribe(p->bp, ch, strlen(ch))); }

static bp_stats_t stats(peer_t *p)
{
    bp_stats_t st;
    bp_get_stats(p->bp, &st);
    return st;
}

/* After every test: free what is left, let deferred frees run, stop servers. */
static void cleanup(void)
{
    for (int i = 0; i < npeers; i++) {
        if (peers[i].bp) bp_free(peers[i].bp);
        peers[i].bp = NULL;
    }
    spin(20);
    for (int i = 0; i < nsrvs; i++) {
        srv_kill(&srvs[i]);
        if (srvs[i].sock[0]) unlink(srvs[i].sock);
    }
    npeers = nsrvs = nresults = 0;
    reentered = 0;
    free_on_cb_peer = NULL;
}

#define RUN_BP(fn) do { RUN(fn); cleanup(); } while (0)

/* Before the first test: the loop, its hooks, the tick, the counted lookup. */
static void harness_init(void)
{
    signal(SIGPIPE, SIG_IGN);   /* hiredis writes with write(2) */
    bp_resolve_getaddrinfo = test_getaddrinfo;
    L = ev_loop_new(EVFLAG_AUTO);
    hooks.loop_ud = L;
    ev_timer_init(&tick, tick_cb, 0.005, 0.005);
    ev_timer_start(L, &tick);
}

/* After the last test: no resolver job and no backplane timer left behind
 * (each counts as a failed test), then the summary line. */
static int harness_report(const char *suite)
{
    ev_timer_stop(L, &tick);
    for (int i = 0; i < 300 && bp_resolve_live() != 0; i++) usleep(10000);
    if (bp_resolve_live() != 0) {
        fprintf(stderr, "FAIL %d resolver jobs never freed\n", bp_resolve_live());
        test_failed_++;
    }
    if (timers_live != 0) {
        fprintf(stderr, "FAIL %d backplane timers still running\n", timers_live);
        test_failed_++;
    }
    ev_loop_destroy(L);
    return test_report(suite);
}

#endif
