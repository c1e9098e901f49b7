/* wsgw.h — the gateway as a library, in the shape of the Iris v10 websocket
 * package (see docs/protocol.md for the wire protocol it speaks).
 *
 *   Iris (Go)                          wsgw (C)
 *   websocket.New(Config)              wsgw_server_new(loop, &config, err, len)
 *   ws.OnConnection(fn)                wsgw_server_on_connection(srv, fn, ud)
 *   c.On("chat", fn)                   wsgw_on(c, "chat", fn, ud)
 *   c.OnMessage(fn)   (native)         wsgw_on_message(c, fn, ud)
 *   c.OnDisconnect(fn) / c.OnError(fn) wsgw_on_disconnect / wsgw_on_error
 *   c.Emit("chat", v)                  wsgw_emit(c, "chat", json, len)
 *   c.To(websocket.Broadcast).Emit     wsgw_to_emit(c, WSGW_TO_BROADCAST, NULL, ...)
 *   c.To(websocket.All).Emit           wsgw_to_emit(c, WSGW_TO_ALL, NULL, ...)
 *   c.To("room").Emit                  wsgw_to_emit(c, WSGW_TO_ROOM, "room", ...)
 *   c.To(otherID).Emit                 wsgw_to_emit(c, WSGW_TO_CONN, otherID, ...)
 *   c.EmitMessage(raw)                 wsgw_emit_message(c, target, name, raw, len, binary)
 *   c.Join / Leave / IsJoined          wsgw_join / wsgw_leave / wsgw_is_joined
 *   ws.LeaveAll(id)                    wsgw_leave_all(c)
 *   c.Disconnect()                     wsgw_disconnect(c, code, reason)
 *   c.ID() / c.Context()               wsgw_conn_id / wsgw_conn_remote_addr / wsgw_conn_header
 *
 * Delivery semantics are Iris v10's (research notes 1(b)) with two fixes:
 * joining a room twice does not deliver twice, and a server-side disconnect
 * sends a close frame.  BROADCAST reaches every connection but the sender,
 * ALL includes the sender, a room reaches its members (the sender too when
 * it joined), a connection id reaches that connection; an unknown room or id
 * reaches nobody, silently.
 *
 * Threading and lifetime: everything runs on the one libev loop handed to
 * wsgw_server_new(); no function may be called from another thread.  A
 * wsgw_conn_t pointer is valid from on_connection until its on_disconnect
 * callback returns; after that the connection is freed (after the loop
 * iteration, never inside a callback), so do not keep it.
 *
 * Errors: functions that send return WSGW_SENT (queued for the wire),
 * WSGW_DROPPED (a receiver is closing or was over its queue limit; counted
 * in /metrics) or a negative WSGW_E* for caller errors.  Emits to many
 * receivers return the number of receivers reached (>= 0).
 */
#ifndef WSGW_H
#define WSGW_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct ev_loop;

typedef struct wsgw_server wsgw_server_t;
typedef struct wsgw_conn wsgw_conn_t;

typedef enum wsgw_target_kind {
    WSGW_TO_SELF      = 0,   /* this connection (Iris c.Emit) */
    WSGW_TO_BROADCAST = 1,   /* everyone except the sender */
    WSGW_TO_ALL       = 2,   /* everyone, sender included */
    WSGW_TO_ROOM      = 3,   /* a room's members */
    WSGW_TO_CONN      = 4    /* one connection by id */
} wsgw_target_kind_t;

enum {
    WSGW_SENT        = 1,
    WSGW_DROPPED     = 0,
    WSGW_E_CLOSED    = -1,   /* the connection is closing: nothing sent */
    WSGW_E_ARG       = -2,   /* bad argument: bad JSON in data, bad name, NULL */
    WSGW_E_LIMIT     = -3    /* a configured limit refused it (rooms per connection) */
};

/* Callbacks.  `ud` is the pointer given at registration.
 * on_event receives the event's data as raw JSON text (valid JSON, not
 * NUL-terminated), exactly the bytes the client sent.  Binary data from the
 * JS client is in it as {"$bin":"<standard base64>"} at any depth, and the
 * emit functions below send bytes to it the same way (docs/protocol.md,
 * "Binary data"); the gateway neither decodes nor checks the base64. */
typedef void (*wsgw_connection_cb)(wsgw_conn_t *c, void *ud);
typedef void (*wsgw_event_cb)(wsgw_conn_t *c, const char *event, const char *data,
                              size_t len, void *ud);
typedef void (*wsgw_message_cb)(wsgw_conn_t *c, const uint8_t *data, size_t len,
                                int binary, void *ud);
typedef void (*wsgw_disconnect_cb)(wsgw_conn_t *c, uint16_t code, void *ud);
typedef void (*wsgw_error_cb)(wsgw_conn_t *c, const char *reason, void *ud);
/* IDGenerator: write a NUL-terminated id (1..127 bytes of [A-Za-z0-9_.:@-])
 * into out[0..cap) and return its length, or 0 to refuse the connection
 * (answered 403).  Runs during the handshake; wsgw_conn_header works. */
typedef size_t (*wsgw_id_generator_cb)(wsgw_conn_t *c, char *out, size_t cap, void *ud);
/* CheckOrigin: return 1 to accept; runs before the 101 is sent. */
typedef int (*wsgw_check_origin_cb)(wsgw_conn_t *c, const char *origin, size_t len, void *ud);
/* Iris' Config.Error: a refused handshake (or request) is answered with
 * `status` (400, 401, 403, 404, 426, 429, 503, ...); the gateway writes
 * the status line and the headers the protocol needs (426's
 * Sec-WebSocket-Version, 401's WWW-Authenticate, Connection: close).  The
 * hook may write the text/plain body into body[0..cap) (no NUL bytes) and
 * return its length, or return 0 to keep the default body (`reason`, a
 * short line saying why).  wsgw_conn_remote_addr works; wsgw_conn_header
 * may return NULL (the request may be gone, or never parsed). */
typedef size_t (*wsgw_handshake_error_cb)(wsgw_conn_t *c, int status, const char *reason,
                                          char *body, size_t cap, void *ud);

/* ---- a whole process ------------------------------------------------------ */

/* Runs a gateway process from argv the way the wsgw binary does (Iris'
 * app.Run): configuration from --config, WSGW_* and flags (--help,
 * --version), logging, signals (SIGTERM drains and exits 0), workers > 1
 * with a master, and `on_connection` (may be NULL) for every connection
 * in every worker.  Returns the process exit status: 0, 1 (cannot start)
 * or 2 (configuration error). */
int wsgw_run(int argc, char **argv, wsgw_connection_cb on_connection, void *ud);

/* The code half of Iris' Config (the rest is configuration): every hook
 * may be NULL, and all get `ud`. */
typedef struct wsgw_hooks {
    wsgw_connection_cb      on_connection;
    wsgw_id_generator_cb    id_generator;      /* Config.IDGenerator */
    wsgw_check_origin_cb    check_origin;      /* Config.CheckOrigin */
    wsgw_handshake_error_cb handshake_error;   /* Config.Error */
    void                   *ud;
} wsgw_hooks_t;

/* wsgw_run with every hook: they apply in every worker. */
int wsgw_run_hooks(int argc, char **argv, const wsgw_hooks_t *hooks);

/* ---- server ------------------------------------------------------------ */

/* Creates a server on `loop` from a validated config (the config must
 * outlive the server).  Returns NULL and fills err when a listen address
 * cannot be bound, the TLS files cannot be loaded, etc. */
wsgw_server_t *wsgw_server_new(struct ev_loop *loop, const wsgw_config_t *cfg,
                               char *err, size_t errlen);
/* A listening socket made elsewhere (a master process hands each worker
 * its own): the server accepts on it and closes its copy on shutdown. */
typedef struct wsgw_listen_fd {
    int fd;
    int tls;          /* 1: connections on it speak TLS */
} wsgw_listen_fd_t;

/* As wsgw_server_new, but serving the given sockets instead of binding the
 * config's listen / tls_listen addresses. */
wsgw_server_t *wsgw_server_new_with_fds(struct ev_loop *loop, const wsgw_config_t *cfg,
                                        const wsgw_listen_fd_t *fds, size_t n,
                                        char *err, size_t errlen);

/* Binds one listening socket (SO_REUSEPORT, non-blocking) for a
 * "HOST:PORT" spec; returns the fd, or -1 with err filled. */
int wsgw_listen_socket(const char *spec, char *err, size_t errlen);

void wsgw_server_on_connection(wsgw_server_t *s, wsgw_connection_cb cb, void *ud);
void wsgw_server_set_id_generator(wsgw_server_t *s, wsgw_id_generator_cb cb, void *ud);
void wsgw_server_set_check_origin(wsgw_server_t *s, wsgw_check_origin_cb cb, void *ud);
void wsgw_server_set_handshake_error(wsgw_server_t *s, wsgw_handshake_error_cb cb, void *ud);

/* Graceful stop: closes the listeners, sends close 1001 to every client,
 * and calls done(ud) once every connection is gone or drain_timeout passed
 * (the remaining ones are then dropped).  Idempotent. */
void wsgw_server_shutdown(wsgw_server_t *s, void (*done)(void *ud), void *ud);
/* Frees the server; every connection is dropped without callbacks. */
void wsgw_server_free(wsgw_server_t *s);

size_t wsgw_server_connections(const wsgw_server_t *s);
/* Port actually bound by listener i (useful with port 0 in tests). */
int wsgw_server_port(const wsgw_server_t *s, size_t i);

/* Server-side emits (a backend-originated message: no sender). */
int wsgw_server_emit(wsgw_server_t *s, wsgw_target_kind_t kind, const char *name,
                     const char *event, const char *data, size_t len);
wsgw_conn_t *wsgw_server_find(wsgw_server_t *s, const char *id);

/* ---- connection ---------------------------------------------------------- */

void wsgw_on(wsgw_conn_t *c, const char *event, wsgw_event_cb cb, void *ud);
/* Native (raw) messages: once set, this connection's data frames are no
 * longer decoded as envelopes but handed over as they came. */
void wsgw_on_message(wsgw_conn_t *c, wsgw_message_cb cb, void *ud);
void wsgw_on_disconnect(wsgw_conn_t *c, wsgw_disconnect_cb cb, void *ud);
void wsgw_on_error(wsgw_conn_t *c, wsgw_error_cb cb, void *ud);

/* Sends {"event":..,"data":..,"from":<sender id>,"to":..} to this connection. */
int wsgw_emit(wsgw_conn_t *c, const char *event, const char *data, size_t len);
/* To(target).Emit: `name` is the room or connection id for ROOM/CONN. */
int wsgw_to_emit(wsgw_conn_t *c, wsgw_target_kind_t kind, const char *name,
                 const char *event, const char *data, size_t len);
/* EmitMessage: raw bytes in one text (binary=0) or binary frame. */
int wsgw_emit_message(wsgw_conn_t *c, wsgw_target_kind_t kind, const char *name,
                      const uint8_t *data, size_t len, int binary);

/* 1 joined, 0 already a member, WSGW_E_LIMIT, WSGW_E_ARG (bad name). */
int  wsgw_join(wsgw_conn_t *c, const char *room);
int  wsgw_leave(wsgw_conn_t *c, const char *room);   /* 1 left, 0 was not in it */
void wsgw_leave_all(wsgw_conn_t *c);
int  wsgw_is_joined(const wsgw_conn_t *c, const char *room);

/* Sends a close frame with code/reason and closes once it is written (or
 * after a short linger).  Idempotent. */
void wsgw_disconnect(wsgw_conn_t *c, uint16_t code, const char *reason);

const char *wsgw_conn_id(const wsgw_conn_t *c);
/* "ip:port" or "[ipv6]:port", in a static buffer: copy it if you keep it
 * (valid until the fourth later call; the address is stored compactly and
 * formatted on demand).  Behind a balancer listed in proxy_protocol it is
 * the client's address from the PROXY header, not the balancer's. */
const char *wsgw_conn_remote_addr(const wsgw_conn_t *c);
/* A request header of the opening handshake, NUL-terminated, or NULL (no
 * such header, or a value of 16 KiB or more).  The first one when the
 * header repeats.  The string is valid until the next call.  Only
 * available inside the IDGenerator, CheckOrigin and on_connection
 * callbacks: the request is not kept afterwards (memory per connection). */
const char *wsgw_conn_header(const wsgw_conn_t *c, const char *name);
/* The authenticated user (the token's sub), or NULL when anonymous. */
const char *wsgw_conn_user(const wsgw_conn_t *c);
/* The subprotocol chosen in the handshake, or NULL. */
const char *wsgw_conn_subprotocol(const wsgw_conn_t *c);
void  wsgw_conn_set_data(wsgw_conn_t *c, void *data);
void *wsgw_conn_data(const wsgw_conn_t *c);
wsgw_server_t *wsgw_conn_server(const wsgw_conn_t *c);

#endif
