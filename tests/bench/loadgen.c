/* loadgen.c — a load generator for wsgw and its peers: one process, one
 * epoll loop on one core, many WebSocket clients speaking the envelope
 * protocol (docs/protocol.md).
 *
 * Scenarios:
 *   idle N        open N connections, each joins room "idle"; print
 *                 "ALL_JOINED" and hold them for --hold seconds (the
 *                 caller measures the server's memory meanwhile).  SIGTERM
 *                 or SIGINT during the hold ends it early, with the report
 *                 and status 0, so a caller running several generators can
 *                 stop them all once it has read what it needs
 *   handshakes N  open and close N connections, --concurrency at a time:
 *                 handshakes/s (101 checked and welcome read; each is then
 *                 closed with a close handshake); over wss:// each is a full
 *                 TLS handshake (no session resumption)
 *   fanout        --subscribers S join room "fan"; one publisher (also a
 *                 member: a client may only emit to a room it joined)
 *                 emits --messages M to room:fan, at most --window in
 *                 flight, or paced at --rate msgs/s; each carries its
 *                 sequence number and CLOCK_MONOTONIC send time in `data`,
 *                 so each subscriber records one-way latency and every
 *                 missing, duplicate or reordered delivery is counted
 *   echo          --conns K each join a room of their own and emit into it:
 *                 one message in flight per connection, round trips/s, RTT
 *
 * Modes, each an option, any combination:
 *   wss://        TLS (lg_tls.h), certificate not verified unless asked
 *   --deflate     permessage-deflate offered and inflated (lg_deflate.h)
 *   --dialect sio the Socket.IO v4 wrapping of the same envelopes (lg_sio.h)
 *   --bind ADDR   source address of every socket, for more than one
 *                 generator's worth of ports on one destination
 *
 * Output: human-readable lines, then one machine-readable line
 *   RESULT scenario=... key=value ...
 * with the generator's own CPU use over the measured phase (and the
 * server's, given --server-pid) and which side was the bottleneck.  The CPU
 * figures are getrusage() and /proc: everything the process does, TLS and
 * inflating included, so bound=generator-bound shows whenever the generator
 * used >= 90% of its core, whatever the mode; a server of several
 * processes (--server-pid A,B) is saturated when one of them used >= 90%
 * of a core or all together >= 90% of the CPUs they may run on.
 * other_cpu is what the rest of the machine used meanwhile (-1 without
 * --server-pid): a run that shares the CPUs with other work says so.  The
 * line ends with the mode:
 *   tls=0|1 [tls_params=VERSION/CIPHER] deflate=0|1
 *   [pmd="permessage-deflate;..." compressed=N uncompressed=N
 *    inflate_hits=N inflate_misses=N] dialect=wsgw|sio
 * (compressed/uncompressed count data messages received with and without
 * RSV1; hits + misses = compressed; a miss is a real inflate).
 *
 * Exit status: 0 on success (and when a signal ends the idle hold); 1 on
 * any protocol error, refused handshake, unexpected close, error envelope,
 * connect or TLS failure, or missing/duplicate delivery; 2 when --timeout
 * passes first; 64 on bad usage, including more connections than the
 * open-file limit allows; 128+N when signal N ends any other phase.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "lg_conn.h"
#include "lg_sio.h"
#include "lg_stats.h"

enum { SC_IDLE, SC_HANDSHAKES, SC_FANOUT, SC_ECHO };
static const char *const scenario_names[] = { "idle", "handshakes", "fanout", "echo" };

enum { PH_CONNECT, PH_RUN, PH_DRAIN, PH_HOLD, PH_DONE };
static const char *const phase_names[] = { "connect", "run", "drain", "hold", "done" };

#define LG_MAX_SERVER_PIDS 16

typedef struct opts {
    int      scenario;
    uint64_t n;             /* idle / handshakes: connections */
    const char *url;
    double   timeout_s;
    uint64_t concurrency;   /* handshakes in progress at a time */
    double   hold_s;
    uint64_t subscribers;
    uint64_t messages;
    uint64_t size;          /* bytes of `data` in each emit */
    uint64_t window;
    double   rate;          /* fanout msgs/s; 0 = window only */
    uint64_t conns;         /* echo */
    pid_t    server_pid[LG_MAX_SERVER_PIDS];
    size_t   n_server_pids;
    const char *bind;       /* source address */
    int      deflate;
    int      dialect;       /* LG_DIALECT_* */
    const char *sni;
    int      tls_verify;
    const char *tls_ca;
} opts_t;

typedef struct bench {
    opts_t     o;
    lg_loop_t  loop;
    lg_conn_t *conns;
    size_t     n_conns;       /* connections the scenario keeps */
    int        phase;
    uint64_t   start_ns, deadline_ns;
    /* connect pipeline: idle, fanout, echo */
    size_t     started, joined;
    uint64_t   connect_t0, connect_t1;
    /* measured phase */
    uint64_t   t0, t1;
    double     cpu0, cpu1, all0, all1;   /* this process; the whole machine */
    double     srv0[LG_MAX_SERVER_PIDS], srv1[LG_MAX_SERVER_PIDS];
    uint64_t   hold_t0, hold_t1;
    uint64_t   phase_until;
    lg_lat_t   lat;
    /* fanout */
    size_t     publisher;
    uint64_t   sent;
    uint64_t   complete_upto;  /* every message below this reached every subscriber */
    uint32_t  *msg_count;      /* deliveries of each message */
    uint64_t  *bits;           /* subscribers x messages: delivered? */
    size_t     words;          /* bitmap words per subscriber */
    uint64_t   unique, duplicates, reordered, bad_seq;
    double     decile_ns[10];  /* latency sums by join order (first 10% .. last 10%) */
    uint64_t   decile_n[10];
    char      *pad;            /* padding that makes `data` --size bytes */
    /* echo */
    uint64_t   rounds;
    /* handshakes */
    uint64_t   hs_started, hs_done, hs_closed;
    uint32_t  *free_slots;
    size_t     n_free;
} bench_t;

static bench_t B;

/* ---- helpers ------------------------------------------------------------------ */

static double secs(uint64_t ns) { return (double)ns / 1e9; }

static void sample_servers(const bench_t *b, double *out)
{
    for (size_t i = 0; i < b->o.n_server_pids; i++) out[i] = lg_cpu_pid(b->o.server_pid[i]);
}

static void begin_measure(bench_t *b)
{
    b->t0 = lg_now_ns();
    b->cpu0 = lg_cpu_self();
    b->all0 = lg_cpu_machine();
    sample_servers(b, b->srv0);
}

static void end_measure(bench_t *b, uint64_t t1)
{
    b->t1 = t1;
    b->cpu1 = lg_cpu_self();
    b->all1 = lg_cpu_machine();
    sample_servers(b, b->srv1);
}

/* CPUs the server processes may run on (the union of their affinity
 * masks): what "saturated" means for a server of several processes. */
static int server_cpus(const bench_t *b)
{
    cpu_set_t all, one;
    CPU_ZERO(&all);
    for (size_t i = 0; i < b->o.n_server_pids; i++) {
        if (sched_getaffinity(b->o.server_pid[i], sizeof one, &one) != 0) continue;
        CPU_OR(&all, &all, &one);
    }
    int n = CPU_COUNT(&all);
    return n > 0 ? n : 1;
}

/* CPU use of the measured phase as a fraction of one core, and a verdict.
 * The server is saturated when one of its processes used >= 90% of a
 * core (an event loop is single-threaded), or all of them together >= 90%
 * of the CPUs they may run on. */
static void print_cpu(const bench_t *b, char *kv, size_t kvlen)
{
    double wall = secs(b->t1 - b->t0);
    /* CPU counters tick in 10 ms; a wall time under that says nothing. */
    if (wall < 0.01) wall = 0.01;
    double gen = (b->cpu1 - b->cpu0) / wall;
    double srv = b->o.n_server_pids ? 0 : -1, srv_max = -1;
    for (size_t i = 0; i < b->o.n_server_pids; i++) {
        if (b->srv0[i] < 0 || b->srv1[i] < 0) { srv = srv_max = -1; break; }
        double u = (b->srv1[i] - b->srv0[i]) / wall;
        srv += u;
        if (u > srv_max) srv_max = u;
    }
    int srv_sat = srv >= 0 && (srv_max >= 0.9 || srv >= 0.9 * server_cpus(b));
    const char *bound = gen >= 0.9 && srv_sat ? "both-saturated"
                      : gen >= 0.9            ? "generator-bound"
                      : srv_sat               ? "server-bound"
                      : srv < 0               ? "unknown"
                                              : "neither-saturated";
    printf("  generator CPU %.0f%% of a core", gen * 100);
    if (srv >= 0) {
        printf(", server CPU %.0f%%", srv * 100);
        if (b->o.n_server_pids > 1) printf(" (%zu processes, busiest %.0f%%)", b->o.n_server_pids, srv_max * 100);
    }
    printf(" -> %s\n", bound);
    /* What the rest of the machine did meanwhile (other processes, and the
     * kernel's softirq work not charged to either side): a figure taken
     * while something else ran is not comparable. */
    double other = -1;
    if (srv >= 0 && b->all0 >= 0 && b->all1 >= 0) {
        other = (b->all1 - b->all0) / wall - gen - srv;
        if (other < 0) other = 0;
        if (other >= 0.25)
            printf("  warning: other work used %.0f%% of a CPU during the measurement: the figures are skewed\n",
                   other * 100);
    }
    int n = snprintf(kv, kvlen, "gen_cpu=%.2f srv_cpu=%.2f bound=%s other_cpu=%.2f", gen, srv, bound, other);
    if (b->o.n_server_pids > 1 && n > 0 && (size_t)n < kvlen)
        snprintf(kv + n, kvlen - (size_t)n, " srv_procs=%zu srv_cpu_max=%.2f", b->o.n_server_pids, srv_max);
}

/* The mode part of the RESULT line (see the header comment). */
static void mode_kv(const bench_t *b, char *kv, size_t kvlen)
{
    const lg_loop_t *l = &b->loop;
    size_t n = 0;
#define KV(...) do { int k_ = snprintf(kv + n, kvlen - n, __VA_ARGS__); \
                     if (k_ > 0) n = (size_t)k_ < kvlen - n ? n + (size_t)k_ : kvlen - 1; } while (0)
    KV("tls=%d", l->tls);
    if (l->tls && l->tls_desc[0]) KV(" tls_params=%s", l->tls_desc);
    KV(" deflate=%d", l->pmd.offered);
    if (l->pmd.offered) {
        char pmd[128] = "none";
        if (l->pmd.agreed) lg_pmd_describe(&l->pmd.params, pmd, sizeof pmd);
        KV(" pmd=\"%s\" compressed=%" PRIu64 " uncompressed=%" PRIu64 " inflate_hits=%" PRIu64
           " inflate_misses=%" PRIu64, pmd, l->pmd.compressed, l->pmd.uncompressed, l->pmd.hits,
           l->pmd.misses);
    }
    KV(" dialect=%s", l->dialect == LG_DIALECT_SIO ? "sio" : "wsgw");
#undef KV
}

/* The human-readable line about the modes, when any is on. */
static void print_modes(const bench_t *b)
{
    const lg_loop_t *l = &b->loop;
    if (l->tls) printf("  TLS: %s (certificate %s)\n", l->tls_desc[0] ? l->tls_desc : "no handshake done",
                       b->o.tls_verify || b->o.tls_ca ? "verified" : "not verified");
    if (l->pmd.offered) {
        char pmd[128] = "none";
        if (l->pmd.agreed) lg_pmd_describe(&l->pmd.params, pmd, sizeof pmd);
        printf("  deflate: %s; %" PRIu64 " messages compressed, %" PRIu64 " not; inflated %" PRIu64
               ", from the cache %" PRIu64 "\n", pmd, l->pmd.compressed, l->pmd.uncompressed,
               l->pmd.misses, l->pmd.hits);
    }
    if (l->dialect == LG_DIALECT_SIO) printf("  dialect: socket.io (%s)\n", LG_SIO_PATH);
}

/* The CPU line and verdict, the mode lines, and the RESULT line's tail. */
static void result_tail(const bench_t *b, char *kv, size_t kvlen)
{
    print_modes(b);
    print_cpu(b, kv, kvlen);
    size_t n = strlen(kv);
    if (n + 1 < kvlen) {
        kv[n++] = ' ';
        mode_kv(b, kv + n, kvlen - n);
    }
}

static void check_reply(lg_conn_t *c, const uint8_t *p, size_t n)
{
    if (n >= 13 && memcmp(p, "{\"op\":\"error\"", 13) == 0)
        lg_fail(c, "error envelope: %.*s", (int)(n > 300 ? 300 : n), (const char *)p);
}

/* Parses "[SEQ,TIME," at p; returns 0 on success. */
static int parse_data(const uint8_t *p, const uint8_t *end, uint64_t *seq, uint64_t *t)
{
    uint64_t v[2] = { 0, 0 };
    if (p >= end || *p++ != '[') return -1;
    for (int k = 0; k < 2; k++) {
        const uint8_t *s = p;
        while (p < end && *p >= '0' && *p <= '9') v[k] = v[k] * 10 + (uint64_t)(*p++ - '0');
        if (p == s || p >= end || *p++ != ',') return -1;
    }
    *seq = v[0];
    *t = v[1];
    return 0;
}

/* The emit envelope: data is [seq,now,"pad"] of --size bytes (at least). */
static void send_emit(bench_t *b, lg_conn_t *c, const char *event, const char *to, uint64_t seq)
{
    char msg[256 + 65536];
    uint64_t now = lg_now_ns();
    char head[64];
    int hl = snprintf(head, sizeof head, "[%" PRIu64 ",%" PRIu64 ",\"", seq, now);
    size_t pad = b->o.size > (size_t)hl + 2 ? b->o.size - (size_t)hl - 2 : 0;
    int n = snprintf(msg, sizeof msg, "{\"op\":\"emit\",\"event\":\"%s\",\"to\":\"%s\",\"data\":%s%.*s\"]}",
                     event, to, head, (int)pad, b->pad);
    c->sent_ns = now;
    lg_conn_send_text(c, msg, (size_t)n);
}

static void send_join(lg_conn_t *c, const char *room)
{
    char msg[160];
    int n = snprintf(msg, sizeof msg, "{\"op\":\"join\",\"room\":\"%s\",\"id\":1}", room);
    lg_conn_send_text(c, msg, (size_t)n);
}

/* Is this the ack of our join?  (Emits carry no id: no other ack comes.) */
static int is_join_ack(const uint8_t *p, size_t n)
{
    static const char ack[] = "{\"op\":\"ack\",\"id\":1}";
    return n == sizeof ack - 1 && memcmp(p, ack, n) == 0;
}

/* ---- connect pipeline (idle, fanout, echo) -------------------------------------- */

static void fill_pipeline(bench_t *b)
{
    while (b->started < b->n_conns && b->started - b->joined < b->o.concurrency)
        lg_conn_start(&b->loop, &b->conns[b->started++]);
}

static void room_for(const bench_t *b, const lg_conn_t *c, char *room, size_t len)
{
    switch (b->o.scenario) {
    case SC_IDLE:   snprintf(room, len, "idle"); break;
    case SC_FANOUT: snprintf(room, len, "fan"); break;
    default:        snprintf(room, len, "echo-%u", c->idx); break;
    }
}

static void on_open(lg_conn_t *c)
{
    bench_t *b = c->loop->ud;
    if (b->o.scenario == SC_HANDSHAKES) {
        b->hs_done++;
        if (b->hs_done == b->o.n) end_measure(b, c->loop->now_ns);
        lg_conn_close(c);
        return;
    }
    char room[64];
    room_for(b, c, room, sizeof room);
    send_join(c, room);
}

static void joined(bench_t *b, lg_conn_t *c)
{
    c->count = 0;
    c->seq = 1;                      /* joined */
    c->rank = b->joined;
    if (++b->joined == b->n_conns) b->connect_t1 = lg_now_ns();
}

/* ---- fanout ---------------------------------------------------------------------- */

static void fanout_delivery(bench_t *b, lg_conn_t *c, const uint8_t *p, size_t n)
{
    static const char pre[] = "{\"event\":\"b\",\"data\":";
    const size_t pl = sizeof pre - 1;
    uint64_t seq, t;
    if (n < pl || memcmp(p, pre, pl) != 0 || parse_data(p + pl, p + n, &seq, &t) != 0)
        lg_fail(c, "unexpected message: %.*s", (int)(n > 300 ? 300 : n), (const char *)p);
    if (c->idx == b->publisher) return;          /* the publisher's own copy */
    if (seq >= b->o.messages) { b->bad_seq++; return; }
    uint64_t *w = &c->bits[seq / 64], bit = 1ull << (seq % 64);
    if (*w & bit) { b->duplicates++; return; }
    *w |= bit;
    if (seq < c->count) b->reordered++;          /* c->count: next expected seq */
    else c->count = seq + 1;
    b->unique++;
    uint64_t now = c->loop->now_ns, lat = now > t ? now - t : 0;
    lg_lat_add(&b->lat, lat);
    /* Ranks follow the order join acks arrived, which is the server's room
     * order up to the few joins it handles in one loop iteration. */
    size_t d = c->rank * 10 / b->n_conns;
    b->decile_ns[d] += (double)lat;
    b->decile_n[d]++;
    if (++b->msg_count[seq] == b->o.subscribers) {
        while (b->complete_upto < b->o.messages && b->msg_count[b->complete_upto] == b->o.subscribers)
            b->complete_upto++;
    }
    if (b->unique == b->o.subscribers * b->o.messages) {
        end_measure(b, now);
        b->phase = PH_DRAIN;                     /* late duplicates still count */
        b->phase_until = lg_now_ns() + 200000000ull;
    }
}

static void fanout_publish(bench_t *b)
{
    lg_conn_t *pub = &b->conns[b->publisher];
    uint64_t limit = b->o.messages;
    if (b->complete_upto + b->o.window < limit) limit = b->complete_upto + b->o.window;
    if (b->o.rate > 0) {
        uint64_t due = (uint64_t)(secs(lg_now_ns() - b->t0) * b->o.rate) + 1;
        if (due < limit) limit = due;
    }
    while (b->sent < limit) {
        send_emit(b, pub, "b", "room:fan", b->sent);
        b->sent++;
    }
}

/* ---- echo ---------------------------------------------------------------------- */

static void echo_send(bench_t *b, lg_conn_t *c)
{
    char to[64];
    snprintf(to, sizeof to, "room:echo-%u", c->idx);
    send_emit(b, c, "e", to, c->count);
}

static void echo_delivery(bench_t *b, lg_conn_t *c, const uint8_t *p, size_t n)
{
    static const char pre[] = "{\"event\":\"e\",\"data\":";
    const size_t pl = sizeof pre - 1;
    uint64_t seq, t;
    if (n < pl || memcmp(p, pre, pl) != 0 || parse_data(p + pl, p + n, &seq, &t) != 0)
        lg_fail(c, "unexpected message: %.*s", (int)(n > 300 ? 300 : n), (const char *)p);
    if (seq != c->count)
        lg_fail(c, "echo %" PRIu64 " arrived while %" PRIu64 " was outstanding", seq, c->count);
    lg_lat_add(&b->lat, c->loop->now_ns - c->sent_ns);
    c->count++;
    b->rounds++;
    if (c->count < b->o.messages) echo_send(b, c);
    else if (b->rounds == b->o.conns * b->o.messages) {
        end_measure(b, c->loop->now_ns);
        b->phase = PH_DONE;
    }
}

/* ---- callbacks --------------------------------------------------------------------- */

static void on_text(lg_conn_t *c, const uint8_t *p, size_t n)
{
    bench_t *b = c->loop->ud;
    check_reply(c, p, n);
    if (c->seq == 0) {                           /* waiting for the join ack */
        if (!is_join_ack(p, n))
            lg_fail(c, "expected the join ack, got: %.*s", (int)(n > 300 ? 300 : n), (const char *)p);
        joined(b, c);
        return;
    }
    switch (b->o.scenario) {
    case SC_FANOUT: fanout_delivery(b, c, p, n); return;
    case SC_ECHO:   echo_delivery(b, c, p, n); return;
    default:
        lg_fail(c, "unexpected message: %.*s", (int)(n > 300 ? 300 : n), (const char *)p);
    }
}

static void on_closed(lg_conn_t *c)
{
    bench_t *b = c->loop->ud;
    if (b->o.scenario != SC_HANDSHAKES) lg_fail(c, "closed unexpectedly");
    /* Restarted after the poll returns: events for the old socket may still
     * be in this batch. */
    b->hs_closed++;
    b->free_slots[b->n_free++] = c->idx;
}

/* ---- per-iteration work -------------------------------------------------------------- */

static void tick_connect_phase(bench_t *b)
{
    fill_pipeline(b);
    if (b->joined < b->n_conns) return;
    double ct = secs(b->connect_t1 - b->connect_t0);
    printf("  %zu connections open and joined in %.2f s (%.0f/s, %" PRIu64 " handshakes in flight at most)\n",
           b->n_conns, ct, (double)b->n_conns / (ct > 0 ? ct : 1e-9), b->o.concurrency);
    fflush(stdout);
    switch (b->o.scenario) {
    case SC_IDLE:
        end_measure(b, b->connect_t1);
        printf("ALL_JOINED connections=%zu\n", b->n_conns);
        fflush(stdout);
        b->phase = PH_HOLD;
        b->hold_t0 = lg_now_ns();
        b->phase_until = b->hold_t0 + (uint64_t)(b->o.hold_s * 1e9);
        b->deadline_ns += (uint64_t)(b->o.hold_s * 1e9);
        return;
    case SC_FANOUT:
        b->phase = PH_RUN;
        begin_measure(b);
        return;
    case SC_ECHO:
        b->phase = PH_RUN;
        begin_measure(b);
        for (size_t i = 0; i < b->n_conns; i++) echo_send(b, &b->conns[i]);
        return;
    }
}

static void tick(bench_t *b)
{
    uint64_t now = lg_now_ns();
    switch (b->phase) {
    case PH_CONNECT:
        tick_connect_phase(b);
        return;
    case PH_RUN:
        if (b->o.scenario == SC_FANOUT) fanout_publish(b);
        if (b->o.scenario == SC_HANDSHAKES) {
            while (b->n_free && b->hs_started < b->o.n) {
                lg_conn_t *c = &b->conns[b->free_slots[--b->n_free]];
                lg_conn_start(&b->loop, c);
                b->hs_started++;
            }
            if (b->hs_closed == b->o.n) b->phase = PH_DONE;
        }
        return;
    case PH_DRAIN:
        if (now >= b->phase_until) b->phase = PH_DONE;
        return;
    case PH_HOLD:
        if (now >= b->phase_until) {
            b->hold_t1 = now;
            b->phase = PH_DONE;
        }
        return;
    }
}

static void timeout_fail(bench_t *b)
{
    fflush(stdout);
    fprintf(stderr, "loadgen: %s: timeout after %.1f s: ", scenario_names[b->o.scenario],
            secs(lg_now_ns() - b->start_ns));
    if (b->phase == PH_CONNECT)
        fprintf(stderr, "connect phase, %zu of %zu connections joined\n", b->joined, b->n_conns);
    else if (b->o.scenario == SC_FANOUT)
        fprintf(stderr, "%" PRIu64 " of %" PRIu64 " messages sent, %" PRIu64 " of %" PRIu64
                " deliveries (missing %" PRIu64 ", duplicate %" PRIu64 ")\n",
                b->sent, b->o.messages, b->unique, b->o.subscribers * b->o.messages,
                b->o.subscribers * b->o.messages - b->unique, b->duplicates);
    else if (b->o.scenario == SC_ECHO)
        fprintf(stderr, "%" PRIu64 " of %" PRIu64 " round trips\n", b->rounds, b->o.conns * b->o.messages);
    else
        fprintf(stderr, "%" PRIu64 " of %" PRIu64 " handshakes, %" PRIu64 " closed\n",
                b->hs_done, b->o.n, b->hs_closed);
    exit(2);
}

/* ---- reports ------------------------------------------------------------------------ */

static void report(bench_t *b)
{
    char cpu[640];
    double wall = secs(b->t1 - b->t0);
    if (wall <= 0) wall = 1e-9;
    lg_lat_sort(&b->lat);
    double p50 = lg_lat_quantile_us(&b->lat, 0.50), p99 = lg_lat_quantile_us(&b->lat, 0.99);
    double pmax = lg_lat_quantile_us(&b->lat, 1.0);
    switch (b->o.scenario) {
    case SC_IDLE: {
        size_t rss = lg_rss_self();
        printf("idle: %zu connections held %.1f s%s; generator RSS %.1f MiB (%.0f B/connection)\n",
               b->n_conns, secs(b->hold_t1 - b->hold_t0), b->hold_t1 < b->phase_until ? " (ended by a signal)" : "",
               rss / 1048576.0, (double)rss / (double)b->n_conns);
        result_tail(b, cpu, sizeof cpu);
        printf("RESULT scenario=idle connections=%zu connect_s=%.3f connect_per_s=%.0f %s\n",
               b->n_conns, wall, b->n_conns / wall, cpu);
        return;
    }
    case SC_HANDSHAKES:
        printf("handshakes: %" PRIu64 " in %.2f s = %.0f/s (concurrency %" PRIu64
               "; each: connect, upgrade, welcome, close handshake)\n",
               b->o.n, wall, b->o.n / wall, b->o.concurrency);
        result_tail(b, cpu, sizeof cpu);
        printf("RESULT scenario=handshakes count=%" PRIu64 " seconds=%.3f per_s=%.0f %s\n",
               b->o.n, wall, b->o.n / wall, cpu);
        return;
    case SC_FANOUT: {
        uint64_t expect = b->o.subscribers * b->o.messages;
        uint64_t missing = expect - b->unique;
        printf("fanout: %" PRIu64 " subscribers x %" PRIu64 " messages of %" PRIu64 " B data, window %" PRIu64,
               b->o.subscribers, b->o.messages, b->o.size, b->o.window);
        if (b->o.rate > 0) printf(", paced at %.0f msg/s", b->o.rate);
        printf("\n  %" PRIu64 " deliveries in %.3f s = %.0f deliveries/s (%.0f messages/s)\n",
               b->unique, wall, b->unique / wall, b->o.messages / wall);
        printf("  one-way latency: p50 %.0f us, p99 %.0f us, max %.0f us\n", p50, p99, pmax);
        printf("  mean latency by join order, first to last 10%% of subscribers (ms):");
        for (int d = 0; d < 10; d++) printf(" %.1f", b->decile_n[d] ? b->decile_ns[d] / b->decile_n[d] / 1e6 : 0.0);
        printf("\n  missing %" PRIu64 ", duplicate %" PRIu64 ", reordered %" PRIu64 ", bad sequence %" PRIu64 "\n",
               missing, b->duplicates, b->reordered, b->bad_seq);
        result_tail(b, cpu, sizeof cpu);
        printf("RESULT scenario=fanout subscribers=%" PRIu64 " messages=%" PRIu64 " size=%" PRIu64
               " window=%" PRIu64 " rate=%.0f deliveries=%" PRIu64 " seconds=%.3f deliveries_per_s=%.0f"
               " p50_us=%.0f p99_us=%.0f max_us=%.0f first10_ms=%.1f last10_ms=%.1f missing=%" PRIu64
               " duplicate=%" PRIu64 " reordered=%" PRIu64 " %s\n",
               b->o.subscribers, b->o.messages, b->o.size, b->o.window, b->o.rate, b->unique, wall,
               b->unique / wall, p50, p99, pmax,
               b->decile_n[0] ? b->decile_ns[0] / b->decile_n[0] / 1e6 : 0.0,
               b->decile_n[9] ? b->decile_ns[9] / b->decile_n[9] / 1e6 : 0.0,
               missing, b->duplicates, b->reordered, cpu);
        return;
    }
    case SC_ECHO:
        printf("echo: %" PRIu64 " connections x %" PRIu64 " round trips = %" PRIu64 " in %.3f s = %.0f/s\n",
               b->o.conns, b->o.messages, b->rounds, wall, b->rounds / wall);
        printf("  round-trip time: p50 %.0f us, p99 %.0f us, max %.0f us\n", p50, p99, pmax);
        result_tail(b, cpu, sizeof cpu);
        printf("RESULT scenario=echo conns=%" PRIu64 " round_trips=%" PRIu64 " seconds=%.3f per_s=%.0f"
               " p50_us=%.0f p99_us=%.0f max_us=%.0f %s\n",
               b->o.conns, b->rounds, wall, b->rounds / wall, p50, p99, pmax, cpu);
        return;
    }
}

/* ---- setup ------------------------------------------------------------------------- */

/* Descriptors besides the connections: stdin/stdout/stderr, the epoll
 * instance, and a /proc file read now and then for the CPU figures. */
#define LG_SPARE_FDS 6

static void usage(FILE *f)
{
    fprintf(f,
        "usage: loadgen [options] idle N | handshakes N | fanout | echo\n"
        "  idle N          open N connections, join room \"idle\", print ALL_JOINED, hold --hold s\n"
        "                  (SIGTERM/SIGINT during the hold: report and exit 0)\n"
        "  handshakes N    open and close N connections, --concurrency at a time\n"
        "  fanout          --subscribers join room \"fan\"; one publisher emits --messages to it\n"
        "  echo            --conns each emit to a room of their own, one message in flight each\n"
        "options:\n"
        "  --url URL            ws://HOST:PORT/PATH or wss://HOST:PORT/PATH, HOST a numeric IPv4\n"
        "                       address or localhost (default ws://127.0.0.1:8080/ws).  wss:// is\n"
        "                       TLS 1.2+ with a full handshake per connection and the server\n"
        "                       certificate NOT verified unless --tls-verify or --tls-ca\n"
        "  --timeout S          abort with status 2 after S seconds, --hold excluded (default 60)\n"
        "  --concurrency N      handshakes in flight at a time (default 500; handshakes: 100)\n"
        "  --hold S             idle: seconds to hold the connections (default 10)\n"
        "  --subscribers N      fanout: subscribers (default 5000)\n"
        "  --messages N         fanout: messages (default 200); echo: round trips per conn (1000)\n"
        "  --size B             bytes of the data field of each emit (default 100)\n"
        "  --window N           fanout: messages not yet delivered to everyone (default 64)\n"
        "  --rate R             fanout: messages per second (default 0: as the window allows)\n"
        "  --conns N            echo: connections (default 100)\n"
        "  --server-pid PID[,PID...]  also report the server's CPU use over the measured phase\n"
        "                       (summed over the processes given; it is saturated when one of\n"
        "                       them uses >= 90%% of a core or all of them >= 90%% of their CPUs)\n"
        "  --bind ADDR          bind every socket to source address ADDR (e.g. 127.0.0.2) before\n"
        "                       connecting: each (source, destination) pair has its own ~28k\n"
        "                       ephemeral ports, so generators with different ADDRs can together\n"
        "                       open more connections to one server port than one could\n"
        "  --deflate            offer permessage-deflate (RFC 7692): first \"server_no_context_takeover;\n"
        "                       client_no_context_takeover\", then \"client_no_context_takeover\";\n"
        "                       fail unless the server accepts one.  Compressed messages are\n"
        "                       inflated (identical ones once, from a cache, when the server\n"
        "                       keeps no context); ours are sent uncompressed\n"
        "  --dialect wsgw|sio   sio: speak the envelopes as Socket.IO v4 events named \"wsgw\"\n"
        "                       (path /socket.io/?EIO=4&transport=websocket replaces the URL's)\n"
        "  --sni NAME           wss://: server name to send (default: localhost for a localhost\n"
        "                       URL, none for a numeric address)\n"
        "  --tls-verify         wss://: verify the server certificate against the system CAs and\n"
        "                       the name (SNI, else the IP address).  Verification is OFF by\n"
        "                       default: benchmarks run against self-signed certificates\n"
        "  --tls-ca FILE        wss://: verify against the CA certificates in FILE instead\n"
        "Each connection is a file descriptor: the generator raises its soft open-file limit\n"
        "to the hard one and refuses to start (status 64) when the connections and %d spare\n"
        "descriptors do not fit; beyond that, and beyond the ports of one source address, use\n"
        "several processes (and --bind).  The RESULT line is described in loadgen.c's header.\n",
        LG_SPARE_FDS);
}

static uint64_t num_arg(const char *name, const char *v, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end || x < min || x > max) {
        fprintf(stderr, "loadgen: %s: expected an integer %" PRIu64 "..%" PRIu64 ", got \"%s\"\n",
                name, min, max, v);
        exit(64);
    }
    return x;
}

static double real_arg(const char *name, const char *v, double min, double max)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= min && x <= max)) {
        fprintf(stderr, "loadgen: %s: expected a number %g..%g, got \"%s\"\n", name, min, max, v);
        exit(64);
    }
    return x;
}

static void pid_list_arg(opts_t *o, const char *v)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", v);
    o->n_server_pids = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->n_server_pids == LG_MAX_SERVER_PIDS) {
            fprintf(stderr, "loadgen: --server-pid: at most %d processes\n", LG_MAX_SERVER_PIDS);
            exit(64);
        }
        o->server_pid[o->n_server_pids++] = (pid_t)num_arg("--server-pid", t, 1, 1u << 30);
    }
    if (!o->n_server_pids) num_arg("--server-pid", v, 1, 1u << 30);   /* says what is wrong */
}

static void parse_args(opts_t *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "url", 1, 0, 'u' }, { "timeout", 1, 0, 't' }, { "concurrency", 1, 0, 'c' },
        { "hold", 1, 0, 'H' }, { "subscribers", 1, 0, 's' }, { "messages", 1, 0, 'm' },
        { "size", 1, 0, 'z' }, { "window", 1, 0, 'w' }, { "rate", 1, 0, 'r' },
        { "conns", 1, 0, 'k' }, { "server-pid", 1, 0, 'p' }, { "bind", 1, 0, 'b' },
        { "deflate", 0, 0, 'd' }, { "dialect", 1, 0, 'D' }, { "sni", 1, 0, 'S' },
        { "tls-verify", 0, 0, 'V' }, { "tls-ca", 1, 0, 'C' }, { "help", 0, 0, 'h' }, { 0, 0, 0, 0 }
    };
    memset(o, 0, sizeof *o);
    o->url = "ws://127.0.0.1:8080/ws";
    o->timeout_s = 60;
    o->hold_s = 10;
    o->subscribers = 5000;
    o->size = 100;
    o->window = 64;
    o->conns = 100;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'u': o->url = optarg; break;
        case 't': o->timeout_s = real_arg("--timeout", optarg, 0.1, 86400); break;
        case 'c': o->concurrency = num_arg("--concurrency", optarg, 1, 1000000); break;
        case 'H': o->hold_s = real_arg("--hold", optarg, 0, 86400); break;
        case 's': o->subscribers = num_arg("--subscribers", optarg, 1, 1000000); break;
        case 'm': o->messages = num_arg("--messages", optarg, 1, 100000000); break;
        case 'z': o->size = num_arg("--size", optarg, 0, 65536); break;
        case 'w': o->window = num_arg("--window", optarg, 1, 1000000); break;
        case 'r': o->rate = real_arg("--rate", optarg, 0, 1e9); break;
        case 'k': o->conns = num_arg("--conns", optarg, 1, 1000000); break;
        case 'p': pid_list_arg(o, optarg); break;
        case 'b': o->bind = optarg; break;
        case 'd': o->deflate = 1; break;
        case 'D':
            if (strcmp(optarg, "wsgw") == 0) o->dialect = LG_DIALECT_WSGW;
            else if (strcmp(optarg, "sio") == 0) o->dialect = LG_DIALECT_SIO;
            else { fprintf(stderr, "loadgen: --dialect: wsgw or sio, not \"%s\"\n", optarg); exit(64); }
            break;
        case 'S': o->sni = optarg; break;
        case 'V': o->tls_verify = 1; break;
        case 'C': o->tls_ca = optarg; break;
        case 'h': usage(stdout); exit(0);
        default:  usage(stderr); exit(64);
        }
    }
    if (optind >= argc) { usage(stderr); exit(64); }
    const char *sc = argv[optind++];
    o->scenario = -1;
    for (int i = 0; i < 4; i++) if (strcmp(sc, scenario_names[i]) == 0) o->scenario = i;
    if (o->scenario < 0) { fprintf(stderr, "loadgen: unknown scenario \"%s\"\n", sc); usage(stderr); exit(64); }
    if (o->scenario == SC_IDLE || o->scenario == SC_HANDSHAKES) {
        if (optind >= argc) { fprintf(stderr, "loadgen: %s needs a count N\n", sc); exit(64); }
        o->n = num_arg(sc, argv[optind++], 1, 10000000);
    }
    if (optind < argc) { fprintf(stderr, "loadgen: unexpected argument \"%s\"\n", argv[optind]); exit(64); }
    if (!o->concurrency) o->concurrency = o->scenario == SC_HANDSHAKES ? 100 : 500;
    if (!o->messages) o->messages = o->scenario == SC_ECHO ? 1000 : 200;
}


/* Each connection is a descriptor: raise the soft limit to the hard one
 * (a process cannot go past that without CAP_SYS_RESOURCE), and refuse to
 * start a run that cannot fit rather than fail in the middle of it. */
static void raise_fd_limit(const bench_t *b)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur != rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur == RLIM_INFINITY || b->n_conns + LG_SPARE_FDS <= rl.rlim_cur) return;
    unsigned long long most = rl.rlim_cur > LG_SPARE_FDS ? rl.rlim_cur - LG_SPARE_FDS : 0;
    fprintf(stderr, "loadgen: %s: %zu connections need %zu open files, but this process may "
            "open %llu (hard limit): at most %llu connections per generator here; run several "
            "generators (with --bind 127.0.0.N each for more local ports)\n",
            scenario_names[b->o.scenario], b->n_conns, b->n_conns + LG_SPARE_FDS,
            (unsigned long long)rl.rlim_cur, most);
    exit(64);
}

static void setup(bench_t *b)
{
    const opts_t *o = &b->o;
    b->pad = ws_xmalloc(o->size + 1);
    memset(b->pad, 'x', o->size);
    b->pad[o->size] = '\0';
    switch (o->scenario) {
    case SC_IDLE:       b->n_conns = o->n; break;
    case SC_HANDSHAKES: b->n_conns = o->concurrency < o->n ? o->concurrency : o->n; break;
    case SC_FANOUT:     b->n_conns = o->subscribers + 1; break;
    case SC_ECHO:       b->n_conns = o->conns; break;
    }
    raise_fd_limit(b);
    b->conns = ws_xcalloc(b->n_conns, sizeof *b->conns);
    for (size_t i = 0; i < b->n_conns; i++) {
        b->conns[i].idx = (uint32_t)i;
        b->conns[i].fd = -1;
    }
    if (o->scenario == SC_FANOUT) {
        b->publisher = o->subscribers;
        b->words = (o->messages + 63) / 64;
        b->bits = ws_xcalloc(o->subscribers * b->words, sizeof *b->bits);
        for (size_t i = 0; i < o->subscribers; i++) b->conns[i].bits = b->bits + i * b->words;
        b->msg_count = ws_xcalloc(o->messages, sizeof *b->msg_count);
        lg_lat_init(&b->lat, o->subscribers * o->messages);
    } else if (o->scenario == SC_ECHO) {
        lg_lat_init(&b->lat, o->conns * o->messages);
    } else if (o->scenario == SC_HANDSHAKES) {
        b->free_slots = ws_xcalloc(b->n_conns, sizeof *b->free_slots);
        for (size_t i = 0; i < b->n_conns; i++) b->free_slots[i] = (uint32_t)(b->n_conns - 1 - i);
        b->n_free = b->n_conns;
    }
}

/* SIGTERM/SIGINT: noted here, acted on by the main loop (epoll_wait
 * returns EINTR: no SA_RESTART). */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* A server that closes while we write must show as an error, not kill
     * us silently. */
    signal(SIGPIPE, SIG_IGN);
}

/* A signal ends the idle hold normally; any other phase is cut short. */
static void handle_stop_signal(bench_t *b)
{
    int sig = stop_signal;
    if (b->phase == PH_HOLD) {
        b->hold_t1 = lg_now_ns();
        b->phase = PH_DONE;
        return;
    }
    fflush(stdout);
    fprintf(stderr, "loadgen: %s: stopped by signal %d in the %s phase, before the measurement ended\n",
            scenario_names[b->o.scenario], sig, phase_names[b->phase]);
    exit(128 + sig);
}

int main(int argc, char **argv)
{
    bench_t *b = &B;
    parse_args(&b->o, argc, argv);
    install_signals();
    setup(b);
    lg_callbacks_t cb = { .on_open = on_open, .on_text = on_text, .on_closed = on_closed };
    lg_loop_opts_t lo = {
        .url = b->o.url, .bind = b->o.bind, .deflate = b->o.deflate, .dialect = b->o.dialect,
        .sni = b->o.sni, .tls_verify = b->o.tls_verify, .tls_ca = b->o.tls_ca,
        /* Idle connections hold TLS record buffers for nothing; busy ones
         * would allocate them again on every read. */
        .tls_release_buffers = b->o.scenario == SC_IDLE,
        .size_hint = b->o.size,
        .distinct_hint = b->o.scenario == SC_FANOUT ? b->o.window : 16,
    };
    char err[512];
    if (lg_loop_init(&b->loop, &lo, &cb, b, err, sizeof err) != 0) {
        fprintf(stderr, "loadgen: %s\n", err);
        return 64;
    }
    b->start_ns = lg_now_ns();
    b->deadline_ns = b->start_ns + (uint64_t)(b->o.timeout_s * 1e9);
    b->connect_t0 = b->start_ns;
    begin_measure(b);      /* fanout and echo start again once everyone joined */
    b->phase = b->o.scenario == SC_HANDSHAKES ? PH_RUN : PH_CONNECT;
    tick(b);
    while (b->phase != PH_DONE) {
        int wait_ms = b->phase == PH_RUN && b->o.rate > 0 ? 1 : 50;
        lg_loop_poll(&b->loop, wait_ms);
        if (stop_signal) handle_stop_signal(b);
        if (b->phase == PH_DONE) break;
        tick(b);
        if (b->phase != PH_DONE && lg_now_ns() > b->deadline_ns) timeout_fail(b);
    }
    report(b);
    int rc = 0;
    if (b->o.scenario == SC_FANOUT &&
        (b->duplicates || b->reordered || b->bad_seq || b->unique != b->o.subscribers * b->o.messages)) {
        fprintf(stderr, "loadgen: fanout: deliveries were lost, duplicated or reordered\n");
        rc = 1;
    }
    for (size_t i = 0; i < b->n_conns; i++) if (b->conns[i].fd >= 0) lg_conn_drop(&b->conns[i]);
    lg_loop_free(&b->loop);
    lg_lat_free(&b->lat);
    ws_xfree(b->conns);
    ws_xfree(b->bits);
    ws_xfree(b->msg_count);
    ws_xfree(b->free_slots);
    ws_xfree(b->pad);
    return rc;
}
