/* lg_sio.h — the Socket.IO v4 dialect (--dialect sio): the same envelope
 * protocol, carried as Socket.IO events named "wsgw" over Engine.IO 4 on a
 * WebSocket-only transport.  Used against the Socket.IO + Redis adapter
 * peer of `make bench-compare`.
 *
 * The whole dialect is these two points, both called from lg_conn.c only:
 *   out  every envelope we send goes as  42["wsgw",<envelope>]
 *        (LG_SIO_HEAD + envelope + LG_SIO_TAIL, framed in one piece);
 *   in   lg_sio_input() takes each text message from the server and either
 *        hands back the inner envelope, for the same code that handles
 *        wsgw's plain envelopes, or consumes a packet of its own.
 *
 * After the 101 the server sends the Engine.IO OPEN packet 0{"sid":...};
 * we answer 40 (Socket.IO CONNECT to the namespace "/"); the server answers
 * 40{"sid":...}; then it emits the welcome, 42["wsgw",{"op":"welcome",...}],
 * which lg_conn.c reads like wsgw's.  The server's Engine.IO ping "2" is
 * answered "3" at once.  Anything else — a disconnect (41), a connect error
 * (44), an Engine.IO close (1), an event that is not "wsgw", an ack — ends
 * the run with a message saying what came.
 */
#ifndef LG_SIO_H
#define LG_SIO_H

#include <stddef.h>
#include <stdint.h>

typedef struct lg_conn lg_conn_t;

#define LG_SIO_PATH "/socket.io/?EIO=4&transport=websocket"
#define LG_SIO_HEAD "42[\"wsgw\","
#define LG_SIO_TAIL "]"

/* Where a connection is in the Socket.IO handshake (lg_conn_t.sio_stage). */
enum { LG_SIO_WAIT_OPEN = 0, LG_SIO_WAIT_CONNECT = 1, LG_SIO_CONNECTED = 2 };

/* One text message p[0..n) from the server.  Returns 1 with the envelope
 * in *env and *envlen (pointing into p); or 0 when the packet was the dialect's
 * own, with *reply set to the text message to send back ("40", "3") or
 * NULL.  Fatal (lg_fail) on any packet the benchmark does not expect. */
int lg_sio_input(lg_conn_t *c, const uint8_t *p, size_t n, const uint8_t **env, size_t *envlen,
                 const char **reply);

#endif
