/* master.c — `workers = N` (N > 1, or auto): a master process and N workers.
 *
 * The master owns the listening sockets: for every listen / tls_listen
 * address it binds one SO_REUSEPORT socket per worker slot, so the kernel
 * spreads new connections over the slots.  A worker inherits its slot's
 * sockets by fork() and runs a whole gateway — its own libev loop, its own
 * backplane node — on them.  Because the sockets stay open in the master:
 *   - a worker that dies is restarted on the same sockets (with backoff),
 *     and connections that arrived meanwhile wait in the slot's backlog
 *     instead of being refused;
 *   - on SIGHUP the master reloads the configuration, starts a new
 *     generation of workers on the same sockets, and sends SIGTERM to the
 *     old ones, which stop accepting and close their clients with 1001
 *     (asked to move: they reconnect to the new workers).  Nothing queued in
 *     the kernel is lost, because no listening socket is closed;
 *   - SIGTERM / SIGINT are forwarded to every worker; the master waits for
 *     them to drain (drain_timeout plus a margin, then SIGKILL) and exits 0.
 *
 * The master runs no event loop (a forked child must not inherit one): it
 * waits for signals with sigtimedwait().  Workers need a shared backplane
 * to reach each other's clients, so more than one worker requires
 * redis_url; main() refuses to start otherwise.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "master.h"
#include "ws_alloc.h"

#define RESTART_MIN_MS   100
#define RESTART_MAX_MS   10000
#define HEALTHY_AFTER_MS 30000   /* a worker up this long resets its backoff */

typedef struct worker {
    pid_t    pid;               /* 0: not running */
    int      generation;
    uint64_t started_ms;
    uint64_t restart_at_ms;     /* 0: no restart pending */
    uint64_t backoff_ms;
} worker_t;

typedef struct master {
    wsgw_config_t *cfg;          /* current configuration (owned) */
    int            argc;
    char         **argv, **envp;
    int            n;            /* worker slots */
    int            n_addrs;      /* listen + tls_listen addresses */
    int           *fds;          /* [slot * n_addrs + addr] */
    int           *tls;          /* [addr] */
    worker_t      *workers;      /* current generation, one per slot */
    int            generation;
    int            stopping;
    pid_t         *old;          /* draining workers of earlier generations */
    int            n_old;
    worker_main_fn run;
} master_t;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int master_bind(master_t *m, char *err, size_t errlen)
{
    const wsgw_strlist_t *lists[2] = { &m->cfg->listen, &m->cfg->tls_listen };
    m->n_addrs = (int)(lists[0]->n + lists[1]->n);
    m->fds = ws_xcalloc((size_t)(m->n * m->n_addrs), sizeof *m->fds);
    m->tls = ws_xcalloc((size_t)m->n_addrs, sizeof *m->tls);
    for (int slot = 0; slot < m->n; slot++) {
        int a = 0;
        for (int t = 0; t < 2; t++) {
            for (size_t i = 0; i < lists[t]->n; i++, a++) {
                int fd = wsgw_listen_socket(lists[t]->v[i], err, errlen);
                if (fd < 0) return -1;
                m->fds[slot * m->n_addrs + a] = fd;
                m->tls[a] = t;
            }
        }
    }
    return 0;
}

static void worker_start(master_t *m, int slot)
{
    worker_t *w = &m->workers[slot];
    pid_t pid = fork();
    if (pid < 0) {
        wsgw_log(WSGW_LOG_ERROR, "worker_fork_failed", "slot=%d err=\"%s\"", slot, strerror(errno));
        w->restart_at_ms = now_ms() + RESTART_MAX_MS;
        return;
    }
    if (pid == 0) {
        /* The child: default signal handling, no inherited mask, only its
         * own slot's sockets. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int s = 0; s < m->n; s++)
            if (s != slot)
                for (int a = 0; a < m->n_addrs; a++) close(m->fds[s * m->n_addrs + a]);
        wsgw_listen_fd_t *fds = ws_xcalloc((size_t)m->n_addrs, sizeof *fds);
        for (int a = 0; a < m->n_addrs; a++) {
            fds[a].fd = m->fds[slot * m->n_addrs + a];
            fds[a].tls = m->tls[a];
        }
        int rc = m->run(m->cfg, fds, (size_t)m->n_addrs, slot);
        _exit(rc);
    }
    w->pid = pid;
    w->generation = m->generation;
    w->started_ms = now_ms();
    w->restart_at_ms = 0;
    wsgw_log(WSGW_LOG_INFO, "worker_started", "slot=%d pid=%d generation=%d", slot, (int)pid, m->generation);
}

static worker_t *worker_by_pid(master_t *m, pid_t pid)
{
    for (int i = 0; i < m->n; i++) if (m->workers[i].pid == pid) return &m->workers[i];
    return NULL;
}

/* Reaps children: a current-generation worker that exits while we are not
 * stopping is restarted after its backoff; old generations just leave. */
static int master_reap(master_t *m, int *old_alive)
{
    int status, reaped = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        reaped++;
        worker_t *w = worker_by_pid(m, pid);
        char how[48];
        if (WIFSIGNALED(status)) snprintf(how, sizeof how, "signal=%d", WTERMSIG(status));
        else snprintf(how, sizeof how, "status=%d", WEXITSTATUS(status));
        if (!w) {
            (*old_alive)--;
            for (int i = 0; i < m->n_old; i++) if (m->old[i] == pid) m->old[i] = m->old[--m->n_old];
            wsgw_log(WSGW_LOG_INFO, "worker_exited", "pid=%d %s generation=old", (int)pid, how);
            continue;
        }
        int slot = (int)(w - m->workers);
        w->pid = 0;
        if (m->stopping) {
            wsgw_log(WSGW_LOG_INFO, "worker_exited", "slot=%d pid=%d %s", slot, (int)pid, how);
            continue;
        }
        uint64_t now = now_ms();
        if (now - w->started_ms >= HEALTHY_AFTER_MS) w->backoff_ms = 0;
        w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : RESTART_MIN_MS;
        if (w->backoff_ms > RESTART_MAX_MS) w->backoff_ms = RESTART_MAX_MS;
        w->restart_at_ms = now + w->backoff_ms;
        wsgw_log(WSGW_LOG_WARN, "worker_died", "slot=%d pid=%d %s restart_in_ms=%llu", slot, (int)pid,
                 how, (unsigned long long)w->backoff_ms);
    }
    return reaped;
}

static void master_signal_all(master_t *m, int sig)
{
    for (int i = 0; i < m->n; i++) if (m->workers[i].pid > 0) kill(m->workers[i].pid, sig);
}

/* SIGHUP: a new configuration, a new generation on the same sockets, and
 * the old generation drained.  A configuration that does not load, or that
 * changes what cannot change without new sockets, keeps the old workers. */
static void master_reload(master_t *m, int *old_alive)
{
    wsgw_config_t *next = ws_xcalloc(1, sizeof *next);
    char err[512];
    wsgw_config_init(next);
    int rc = wsgw_config_load(next, m->argc, m->argv, m->envp, err, sizeof err);
    if (rc == 0 && (next->listen.n + next->tls_listen.n != (size_t)m->n_addrs ||
                    (next->workers ? next->workers : m->n) != m->n)) {
        snprintf(err, sizeof err, "listen addresses and workers cannot change on reload: restart instead");
        rc = -1;
    }
    if (rc == 0 && (!next->redis_url || !next->redis_url[0])) {    /* as at start-up (run.c) */
        snprintf(err, sizeof err, "workers: %d workers need a backplane to reach each other's clients: "
                                  "set redis_url", m->n);
        rc = -1;
    }
    if (rc != 0) {
        wsgw_log(WSGW_LOG_ERROR, "reload_failed", "reason=\"%s\" action=\"kept the running workers\"", err);
        wsgw_config_free(next);
        ws_xfree(next);
        return;
    }
    wsgw_log_set_level((wsgw_log_level_t)next->log_level);
    worker_t *old = m->workers;
    wsgw_config_t *old_cfg = m->cfg;
    m->cfg = next;
    m->generation++;
    m->workers = ws_xcalloc((size_t)m->n, sizeof *m->workers);
    for (int i = 0; i < m->n; i++) worker_start(m, i);
    m->old = ws_xrealloc(m->old, (size_t)(m->n_old + m->n) * sizeof *m->old);
    for (int i = 0; i < m->n; i++) {
        if (old[i].pid > 0) {
            kill(old[i].pid, SIGTERM);
            m->old[m->n_old++] = old[i].pid;
            (*old_alive)++;
        }
    }
    wsgw_log(WSGW_LOG_INFO, "reloaded", "generation=%d draining_old=%d", m->generation, *old_alive);
    ws_xfree(old);
    /* The children forked before this point keep their own copy. */
    wsgw_config_free(old_cfg);
    ws_xfree(old_cfg);
}

static int master_stop(master_t *m, int old_alive)
{
    m->stopping = 1;
    master_signal_all(m, SIGTERM);
    for (int i = 0; i < m->n_old; i++) kill(m->old[i], SIGTERM);
    uint64_t deadline = now_ms() + m->cfg->drain_timeout_ms + 5000;
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            worker_t *w = worker_by_pid(m, pid);
            if (w) w->pid = 0;
            for (int i = 0; i < m->n_old; i++) if (m->old[i] == pid) m->old[i] = m->old[--m->n_old];
            continue;
        }
        if (pid < 0 && errno == ECHILD) break;
        if (now_ms() >= deadline) {
            wsgw_log(WSGW_LOG_WARN, "workers_killed", "reason=\"drain took too long\"");
            master_signal_all(m, SIGKILL);
            for (int i = 0; i < m->n_old; i++) kill(m->old[i], SIGKILL);
            while (waitpid(-1, NULL, 0) > 0) {}
            break;
        }
        usleep(20000);
    }
    (void)old_alive;
    wsgw_log(WSGW_LOG_INFO, "stopped", "status=0 role=master");
    for (int i = 0; i < m->n * m->n_addrs; i++) close(m->fds[i]);
    ws_xfree(m->fds);
    ws_xfree(m->tls);
    ws_xfree(m->old);
    wsgw_config_free(m->cfg);
    ws_xfree(m->cfg);
    return 0;
}

int master_run(wsgw_config_t *cfg, int argc, char **argv, char **envp, worker_main_fn run)
{
    master_t m = { .cfg = cfg, .argc = argc, .argv = argv, .envp = envp, .run = run };
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    m.n = cfg->workers ? cfg->workers : (int)(cpus > 0 ? cpus : 1);
    char err[512];
    if (master_bind(&m, err, sizeof err) != 0) {
        fprintf(stderr, "wsgw: cannot start: %s\n", err);
        return 1;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    m.workers = ws_xcalloc((size_t)m.n, sizeof *m.workers);
    wsgw_log(WSGW_LOG_INFO, "master_started", "pid=%d workers=%d", (int)getpid(), m.n);
    for (int i = 0; i < m.n; i++) worker_start(&m, i);
    int old_alive = 0;
    for (;;) {
        /* Sleep until a signal or the next pending restart. */
        uint64_t now = now_ms(), next = now + 1000;
        for (int i = 0; i < m.n; i++)
            if (m.workers[i].restart_at_ms && m.workers[i].restart_at_ms < next) next = m.workers[i].restart_at_ms;
        if (next < now) next = now;            /* a restart fell due while we forked: no wait */
        struct timespec ts = { (time_t)((next - now) / 1000), (long)((next - now) % 1000) * 1000000 };
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            wsgw_log(WSGW_LOG_INFO, "signal", "signal=%s role=master", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            int rc = master_stop(&m, old_alive);
            ws_xfree(m.workers);
            return rc;
        }
        if (sig == SIGHUP) master_reload(&m, &old_alive);
        master_reap(&m, &old_alive);
        now = now_ms();
        for (int i = 0; i < m.n; i++)
            if (!m.workers[i].pid && m.workers[i].restart_at_ms && m.workers[i].restart_at_ms <= now)
                worker_start(&m, i);
    }
}
