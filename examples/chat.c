/* chat.c — the Iris websocket chat example, written with wsgw's C API.
 *
 * In Iris (Go):
 *     ws.OnConnection(func(c websocket.Connection) {
 *         c.Join("room1")
 *         c.On("chat", func(msg string) {
 *             c.To("room1").Emit("chat", msg)          // everyone in room1, sender too
 *         })
 *         c.OnDisconnect(func() { ... })
 *     })
 *
 * A client sends {"op":"emit","event":"chat","data":"hi"} (no "to": the
 * event goes to this server's handler), and the handler fans it out to
 * room1.  The same flags as wsgw apply. */
#include <ev.h>
#include <signal.h>
#include <stdio.h>

#include "config.h"
#include "log.h"
#include "wsgw.h"

extern char **environ;

static void on_chat(wsgw_conn_t *c, const char *event, const char *data, size_t len, void *ud)
{
    (void)ud;
    wsgw_to_emit(c, WSGW_TO_ROOM, "room1", event, data, len);
}

static void on_disconnect(wsgw_conn_t *c, uint16_t code, void *ud)
{
    (void)ud;
    wsgw_log(WSGW_LOG_INFO, "chat_left", "id=%s code=%u", wsgw_conn_id(c), (unsigned)code);
}

static void on_connection(wsgw_conn_t *c, void *ud)
{
    (void)ud;
    wsgw_join(c, "room1");
    wsgw_on(c, "chat", on_chat, NULL);
    wsgw_on_disconnect(c, on_disconnect, NULL);
    wsgw_log(WSGW_LOG_INFO, "chat_joined", "id=%s remote=%s", wsgw_conn_id(c), wsgw_conn_remote_addr(c));
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
        if (rc < 0) fprintf(stderr, "chat: configuration error: %s\n", err);
        wsgw_config_free(&cfg);
        return rc < 0 ? 2 : 0;
    }
    wsgw_log_set_level((wsgw_log_level_t)cfg.log_level);
    signal(SIGPIPE, SIG_IGN);
    struct ev_loop *loop = ev_default_loop(0);
    wsgw_server_t *srv = wsgw_server_new(loop, &cfg, err, sizeof err);
    if (!srv) { fprintf(stderr, "chat: %s\n", err); wsgw_config_free(&cfg); return 1; }
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
