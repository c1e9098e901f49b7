/* main.c — the wsgw binary: configuration, one server on one libev loop,
 * signals.  The default behaviour is the envelope protocol (join, leave,
 * emit to broadcast / all / room / conn), built into the library; this
 * file adds nothing to it but process concerns.
 *
 * SIGTERM / SIGINT: stop accepting, close every client with 1001, wait up to
 * drain_timeout, exit 0.  A second signal exits at once (status 1). */
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "wsgw.h"

extern char **environ;

typedef struct app {
    struct ev_loop *loop;
    wsgw_server_t  *srv;
    int             stopping;
    ev_signal       sigterm, sigint;
} app_t;

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

int main(int argc, char **argv)
{
    wsgw_config_t cfg;
    char err[512];
    wsgw_config_init(&cfg);
    int rc = wsgw_config_load(&cfg, argc, argv, environ, err, sizeof err);
    if (rc == 1) { wsgw_config_free(&cfg); return 0; }          /* --help, --version */
    if (rc != 0) {
        fprintf(stderr, "wsgw: configuration error: %s\n", err);
        wsgw_config_free(&cfg);
        return 2;
    }
    wsgw_log_set_level((wsgw_log_level_t)cfg.log_level);
    wsgw_log_set_json(cfg.log_format == WSGW_LOG_JSON);
    signal(SIGPIPE, SIG_IGN);

    app_t app = { .loop = ev_default_loop(EVFLAG_AUTO) };
    app.srv = wsgw_server_new(app.loop, &cfg, err, sizeof err);
    if (!app.srv) {
        fprintf(stderr, "wsgw: cannot start: %s\n", err);
        wsgw_config_free(&cfg);
        return 1;
    }
    ev_signal_init(&app.sigterm, on_signal, SIGTERM);
    ev_signal_init(&app.sigint, on_signal, SIGINT);
    app.sigterm.data = app.sigint.data = &app;
    ev_signal_start(app.loop, &app.sigterm);
    ev_signal_start(app.loop, &app.sigint);
    wsgw_log(WSGW_LOG_INFO, "started", "pid=%d", (int)getpid());
    ev_run(app.loop, 0);
    wsgw_server_free(app.srv);
    wsgw_config_free(&cfg);
    return 0;
}
