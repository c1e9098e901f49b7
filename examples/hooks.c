/* hooks.c — the code half of Iris' Config, with wsgw's C API.
 *
 * In Iris (Go):
 *     websocket.New(websocket.Config{
 *         IDGenerator: func(ctx context.Context) string { ... },
 *         CheckOrigin: func(r *http.Request) bool { ... },
 *         Error:       func(w http.ResponseWriter, r *http.Request, status int, reason error) { ... },
 *     })
 *
 * Here: ids "<tenant>-<n>" from the X-Tenant request header, browsers
 * accepted from https://<name>.example.com only, refusals answered with this
 * application's own text, and a "whoami" event answered from the
 * connection's user data.  The same flags as wsgw apply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "wsgw.h"

typedef struct session {
    char tenant[32];
} session_t;

static int tenant_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n >= sizeof ((session_t *)0)->tenant) return 0;
    for (; *t; t++)
        if (!((*t >= 'a' && *t <= 'z') || (*t >= '0' && *t <= '9'))) return 0;
    return 1;
}

static const char *tenant_of(wsgw_conn_t *c)
{
    const char *t = wsgw_conn_header(c, "X-Tenant");
    return t && tenant_ok(t) ? t : "anon";
}

/* Config.IDGenerator: ids must stay unique in the process; a counter per
 * process is (a cluster needs the process's node in it too). */
static size_t id_generator(wsgw_conn_t *c, char *out, size_t cap, void *ud)
{
    (void)ud;
    static unsigned long long next;
    int n = snprintf(out, cap, "%s-%llu", tenant_of(c), ++next);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Config.CheckOrigin: non-browser clients send no Origin. */
static int check_origin(wsgw_conn_t *c, const char *origin, size_t len, void *ud)
{
    (void)c; (void)ud;
    static const char scheme[] = "https://", domain[] = ".example.com";
    if (!origin) return 1;
    return len > sizeof scheme - 1 + sizeof domain - 1 &&
           memcmp(origin, scheme, sizeof scheme - 1) == 0 &&
           memcmp(origin + len - (sizeof domain - 1), domain, sizeof domain - 1) == 0;
}

/* Config.Error: the status stays; the words are ours. */
static size_t handshake_error(wsgw_conn_t *c, int status, const char *reason, char *body, size_t cap,
                              void *ud)
{
    (void)c; (void)ud;
    int n = snprintf(body, cap, "hooks example: %d: %s. See https://example.com/help", status, reason);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static void on_whoami(wsgw_conn_t *c, const char *event, const char *data, size_t len, void *ud)
{
    (void)event; (void)data; (void)len; (void)ud;
    const session_t *s = wsgw_conn_data(c);
    char json[128];
    int n = snprintf(json, sizeof json, "{\"id\":\"%s\",\"tenant\":\"%s\"}", wsgw_conn_id(c), s->tenant);
    wsgw_emit(c, "whoami", json, (size_t)n);
}

static void on_disconnect(wsgw_conn_t *c, uint16_t code, void *ud)
{
    (void)code; (void)ud;
    free(wsgw_conn_data(c));
}

static void on_connection(wsgw_conn_t *c, void *ud)
{
    (void)ud;
    session_t *s = calloc(1, sizeof *s);
    if (!s) {
        wsgw_disconnect(c, 1011, "out of memory");
        return;
    }
    snprintf(s->tenant, sizeof s->tenant, "%s", tenant_of(c));   /* headers: only valid now */
    wsgw_conn_set_data(c, s);
    wsgw_join(c, s->tenant);
    wsgw_on(c, "whoami", on_whoami, NULL);
    wsgw_on_disconnect(c, on_disconnect, NULL);
}

int main(int argc, char **argv)
{
    wsgw_hooks_t hooks = {
        .on_connection = on_connection,
        .id_generator = id_generator,
        .check_origin = check_origin,
        .handshake_error = handshake_error,
    };
    return wsgw_run_hooks(argc, argv, &hooks);
}
