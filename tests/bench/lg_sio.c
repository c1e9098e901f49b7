/* lg_sio.c — see lg_sio.h. */
#include "lg_sio.h"

#include <string.h>

#include "lg_conn.h"

#define SHOW(n) (int)((n) > 200 ? 200 : (n))

int lg_sio_input(lg_conn_t *c, const uint8_t *p, size_t n, const uint8_t **env, size_t *envlen,
                 const char **reply)
{
    static const char head[] = LG_SIO_HEAD;
    const size_t hl = sizeof head - 1;
    *reply = NULL;
    if (n == 1 && p[0] == '2') {                  /* Engine.IO ping */
        *reply = "3";
        return 0;
    }
    switch (c->sio_stage) {
    case LG_SIO_WAIT_OPEN:
        if (n < 2 || p[0] != '0' || p[1] != '{')
            lg_fail(c, "socket.io: expected the Engine.IO open packet 0{...}, got: %.*s", SHOW(n), (const char *)p);
        c->sio_stage = LG_SIO_WAIT_CONNECT;
        *reply = "40";
        return 0;
    case LG_SIO_WAIT_CONNECT:
        if (n >= 2 && p[0] == '4' && p[1] == '0') {
            c->sio_stage = LG_SIO_CONNECTED;
            return 0;
        }
        break;
    default:
        if (n > hl && memcmp(p, head, hl) == 0 && p[n - 1] == ']') {
            *env = p + hl;
            *envlen = n - hl - 1;
            return 1;
        }
        break;
    }
    if (n >= 2 && p[0] == '4' && p[1] == '1')
        lg_fail(c, "socket.io: the server disconnected the socket (41): %.*s", SHOW(n), (const char *)p);
    if (n >= 2 && p[0] == '4' && p[1] == '4')
        lg_fail(c, "socket.io: connect error (44): %.*s", SHOW(n), (const char *)p);
    if (n >= 1 && p[0] == '1')
        lg_fail(c, "socket.io: the server closed the Engine.IO session (1)");
    lg_fail(c, "socket.io: unexpected packet%s: %.*s",
            c->sio_stage == LG_SIO_WAIT_CONNECT ? " (waiting for the namespace connect 40)" : "",
            SHOW(n), (const char *)p);
}
