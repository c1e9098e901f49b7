/* echo.c — echoes every message back as it came, text or binary: the
 * server that conformance suites such as Autobahn|Testsuite run against.
 * Takes the same flags as wsgw (--listen, --max-message-size, ..., --workers):
 * wsgw_run() is the whole process.
 *
 * It uses the library's native-message mode (wsgw_on_message), so frames
 * are not decoded as envelopes and no welcome is sent. */
#include "wsgw.h"

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

int main(int argc, char **argv)
{
    return wsgw_run(argc, argv, on_connection, NULL);
}
