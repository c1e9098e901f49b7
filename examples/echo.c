/* echo.c — echoes every message back as it came, text or binary: the
 * server that conformance suites such as Autobahn|Testsuite run against.
 * Takes the same flags as wsgw (--listen, --max-message-size, ...).
 *
 * It uses the library's native-message mode (wsgw_on_message), so frames
 * are not decoded as envelopes and no welcome is sent. */
#include <ev.h>
#include <signal.h>
#include <stdio.h>

#include "config.h"
#include "log.h"
#include "wsgw.h"

extern char **environ;

static void on_message(wsgw_conn_t *c, const uint8_t *data, size_t len, int binary, void *ud)
{
    (void)ud;
    wsgw_emit_message(c, WSGW_TO_SELF, NULL, data, len, binary);
}

static void on_connection(wsgw_conn_t *c, void *ud)
{
    (void)ud;
    wsgw_on_message(c, on_message, NULL);
}

static void stop(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w; (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
    wsgw_config_t cfg;
    char err[512];
    wsgw_config_init(&cfg);
    int rc = wsgw_config_load(&cfg, argc, argv, environ, err, sizeof err);
    if (rc != 0) {
        if (rc < 0) fprintf(stderr, "echo: configuration error: %s\n", err);
        wsgw_config_free(&cfg);
        return rc < 0 ? 2 : 0;
    }
    wsgw_log_set_level((wsgw_log_level_t)cfg.log_level);
    signal(SIGPIPE, SIG_IGN);
    struct ev_loop *loop = ev_default_loop(0);
    wsgw_server_t *srv = wsgw_server_new(loop, &cfg, err, sizeof err);
    if (!srv) { fprintf(stderr, "echo: %s\n", err); wsgw_config_free(&cfg); return 1; }
    wsgw_server_on_connection(srv, on_connection, NULL);
    ev_signal sigterm, sigint;
    ev_signal_init(&sigterm, stop, SIGTERM);
    ev_signal_init(&sigint, stop, SIGINT);
    ev_signal_start(loop, &sigterm);
    ev_signal_start(loop, &sigint);
    ev_run(loop, 0);
    wsgw_server_free(srv);
    wsgw_config_free(&cfg);
    return 0;
}
