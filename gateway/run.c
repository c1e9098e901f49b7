/* run.c — wsgw_run(): a whole gateway process from argv, the way the wsgw
 * binary and the examples run (Iris' app.Run): configuration (file,
 * WSGW_* environment, flags), logging, one server on one libev loop, the
 * application's on_connection, signals, and with workers > 1 the master
 * process (master.c).
 *
 * SIGTERM / SIGINT: stop accepting, close every client with 1001, wait up to
 * drain_timeout, exit 0.  A second signal exits at once (status 1).  SIGHUP
 * reloads with workers > 1 and is logged and ignored with one process. */
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "master.h"
#include "ws_alloc.h"
#include "wsgw.h"

extern char **environ;

/* The application's hooks: one set per process (wsgw_run is called once). */
static wsgw_hooks_t run_hooks;

typedef struct app {
    struct ev_loop *loop;
    wsgw_server_t  *srv;
    int             stopping;
    ev_signal       sigterm, sigint, sighup;
} app_t;

/* One process has no master to start a new generation: a reload needs
 * workers >= 2.  Say so instead of dying of SIGHUP's default action. */
static void on_sighup(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop; (void)w; (void)revents;
    wsgw_log(WSGW_LOG_WARN, "reload_ignored",
             "reason=\"SIGHUP reloads only with workers >= 2 (a master process); restart to apply a new config\"");
}

static void drained(void *ud)
{
    app_t *app = ud;
    wsgw_log(WSGW_LOG_INFO, "stopped", "status=0");
    ev_break(app->loop, EVBREAK_ALL);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop; (void)revents;
    app_t *app = w->data;
    if (app->stopping) {
        wsgw_log(WSGW_LOG_WARN, "forced_exit", "signal=%d", w->signum);
        exit(1);
    }
    app->stopping = 1;
    wsgw_log(WSGW_LOG_INFO, "signal", "signal=%s", w->signum == SIGTERM ? "SIGTERM" : "SIGINT");
    wsgw_server_shutdown(app->srv, drained, app);
}

/* One gateway on one loop: the whole process with workers = 1, or one
 * worker under the master (then `fds` are its slot's sockets). */
static int run_gateway(const wsgw_config_t *cfg, const wsgw_listen_fd_t *fds, size_t n, int slot)
{
    char err[512];
    signal(SIGPIPE, SIG_IGN);
    app_t app = { .loop = ev_default_loop(EVFLAG_AUTO) };
    app.srv = fds ? wsgw_server_new_with_fds(app.loop, cfg, fds, n, err, sizeof err)
                  : wsgw_server_new(app.loop, cfg, err, sizeof err);
    if (!app.srv) {
        fprintf(stderr, "wsgw: cannot start: %s\n", err);
        return 1;
    }
    if (run_hooks.on_connection) wsgw_server_on_connection(app.srv, run_hooks.on_connection, run_hooks.ud);
    if (run_hooks.id_generator) wsgw_server_set_id_generator(app.srv, run_hooks.id_generator, run_hooks.ud);
    if (run_hooks.check_origin) wsgw_server_set_check_origin(app.srv, run_hooks.check_origin, run_hooks.ud);
    if (run_hooks.handshake_error)
        wsgw_server_set_handshake_error(app.srv, run_hooks.handshake_error, run_hooks.ud);
    ev_signal_init(&app.sigterm, on_signal, SIGTERM);
    ev_signal_init(&app.sigint, on_signal, SIGINT);
    app.sigterm.data = app.sigint.data = &app;
    ev_signal_start(app.loop, &app.sigterm);
    ev_signal_start(app.loop, &app.sigint);
    if (fds) {
        signal(SIGHUP, SIG_IGN);                 /* the master handles reloads */
    } else {
        ev_signal_init(&app.sighup, on_sighup, SIGHUP);
        ev_signal_start(app.loop, &app.sighup);
    }
    wsgw_log(WSGW_LOG_INFO, "started", "pid=%d slot=%d", (int)getpid(), slot);
    ev_run(app.loop, 0);
    wsgw_server_free(app.srv);
    return 0;
}

int wsgw_run(int argc, char **argv, wsgw_connection_cb on_connection, void *ud)
{
    wsgw_hooks_t hooks = { .on_connection = on_connection, .ud = ud };
    return wsgw_run_hooks(argc, argv, &hooks);
}

int wsgw_run_hooks(int argc, char **argv, const wsgw_hooks_t *hooks)
{
    if (hooks) run_hooks = *hooks;
    wsgw_config_t *cfg = ws_xcalloc(1, sizeof *cfg);
    char err[512];
    wsgw_config_init(cfg);
    int rc = wsgw_config_load(cfg, argc, argv, environ, err, sizeof err);
    if (rc != 0) {
        if (rc < 0) fprintf(stderr, "wsgw: configuration error: %s\n", err);
        wsgw_config_free(cfg);
        ws_xfree(cfg);
        return rc < 0 ? 2 : 0;                 /* 1: --help / --version */
    }
    wsgw_log_set_level((wsgw_log_level_t)cfg->log_level);
    wsgw_log_set_json(cfg->log_format == WSGW_LOG_JSON);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int workers = cfg->workers ? cfg->workers : (int)(cpus > 0 ? cpus : 1);
    if (workers > 1) {
        if (!cfg->redis_url || !cfg->redis_url[0]) {
            fprintf(stderr, "wsgw: configuration error: workers: %d workers need a backplane to reach "
                            "each other's clients: set redis_url (or workers = 1)\n", workers);
            wsgw_config_free(cfg);
            ws_xfree(cfg);
            return 2;
        }
        return master_run(cfg, argc, argv, environ, run_gateway);   /* takes cfg */
    }
    rc = run_gateway(cfg, NULL, 0, 0);
    wsgw_config_free(cfg);
    ws_xfree(cfg);
    return rc;
}
