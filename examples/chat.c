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
#include "log.h"
#include "wsgw.h"

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

int main(int argc, char **argv)
{
    return wsgw_run(argc, argv, on_connection, NULL);
}
