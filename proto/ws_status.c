/* ws_status.c — the one table from proto/ errors to close codes, HTTP
 * statuses and reasons (see ws_status.h). */
#include "ws_status.h"

#include <stddef.h>

int ws_close_code_is_valid(uint32_t code)
{
    if (code >= 3000 && code <= 4999) return 1;       /* registered + private use */
    switch (code) {
    case 1000: case 1001: case 1002: case 1003:
    case 1007: case 1008: case 1009: case 1010: case 1011:
    case 1012: case 1013: case 1014:
        return 1;
    default:
        return 0;                                     /* 1004-1006, 1015, 0-999, 1016-2999, >= 5000 */
    }
}

typedef struct ws_err_entry {
    int         err;
    uint16_t    close_code;
    uint16_t    http_status;
    const char *reason;
} ws_err_entry_t;

static const ws_err_entry_t ws_err_table[] = {
    { WS_OK,                    0,    0,   "ok" },
    { WS_E_WANT_MORE,           0,    0,   "incomplete input" },
    { WS_E_NOSPACE,             1011, 500, "output buffer too small" },
    { WS_E_INVALID_ARG,         1011, 500, "invalid argument" },
    { WS_E_STICKY,              1011, 500, "reader already failed" },

    { WS_E_HTTP_SYNTAX,         0, 400, "malformed HTTP request" },
    { WS_E_HTTP_LINE_TOO_LONG,  0, 431, "request line too long" },
    { WS_E_HTTP_TOO_MANY_HDRS,  0, 431, "too many header fields" },
    { WS_E_HTTP_HDRS_TOO_BIG,   0, 431, "request header block too large" },
    { WS_E_HTTP_METHOD,         0, 400, "WebSocket handshake must use GET" },
    { WS_E_HTTP_VERSION,        0, 400, "WebSocket handshake needs HTTP/1.1" },
    { WS_E_HTTP_NO_HOST,        0, 400, "missing or repeated Host header" },
    { WS_E_HTTP_NO_UPGRADE,     0, 400, "Upgrade header must list websocket" },
    { WS_E_HTTP_NO_CONNECTION,  0, 400, "Connection header must list Upgrade" },
    { WS_E_HTTP_BAD_KEY,        0, 400, "Sec-WebSocket-Key must be 16 bytes in base64, sent once" },
    { WS_E_HTTP_BAD_WS_VERSION, 0, 426, "unsupported Sec-WebSocket-Version, this server speaks 13" },
    { WS_E_HTTP_BODY,           0, 400, "request body not allowed here" },
    { WS_E_HTTP_DUP_HEADER,     0, 400, "header field repeated where it must be single" },
    { WS_E_HTTP_TARGET,         0, 400, "request target must be a /path or an http:// or https:// URI" },
    { WS_E_HTTP_VERSION_UNSUPPORTED, 0, 505, "HTTP version not supported, this server speaks HTTP/1.1" },
    { WS_E_HTTP_WS_VERSION_SYNTAX, 0, 400, "Sec-WebSocket-Version must be sent once, as one number (13)" },

    { WS_E_FRAME_RSV,           1002, 0, "reserved bit set without a negotiated extension" },
    { WS_E_FRAME_OPCODE,        1002, 0, "reserved opcode" },
    { WS_E_FRAME_UNMASKED,      1002, 0, "client frame not masked" },
    { WS_E_FRAME_MASKED,        1002, 0, "server frame masked" },
    { WS_E_FRAME_CTRL_TOO_BIG,  1002, 0, "control frame payload over 125 bytes" },
    { WS_E_FRAME_CTRL_FRAG,     1002, 0, "fragmented control frame" },
    { WS_E_FRAME_LEN_NONCANON,  1002, 0, "frame length not in minimal form" },
    { WS_E_FRAME_LEN_MSB,       1002, 0, "frame length with most significant bit set" },

    { WS_E_MSG_BAD_CONT,        1002, 0, "continuation frame without a message to continue" },
    { WS_E_MSG_EXPECTED_CONT,   1002, 0, "new data frame inside a fragmented message" },
    { WS_E_MSG_TOO_BIG,         1009, 0, "message too big" },
    { WS_E_MSG_CLOSE_LEN1,      1002, 0, "close frame payload of one byte" },
    { WS_E_MSG_CLOSE_CODE,      1002, 0, "invalid close code" },
    { WS_E_MSG_CLOSE_UTF8,      1007, 0, "close reason not valid UTF-8" },
    { WS_E_MSG_AFTER_CLOSE,     1002, 0, "frame after close" },
    { WS_E_MSG_RSV1_CONT,       1002, 0, "RSV1 set on a continuation frame" },

    { WS_E_UTF8,                1007, 0, "text message not valid UTF-8" },

    { WS_E_INFLATE,             1007, 0, "compressed message is corrupt" },
    { WS_E_INFLATE_TOO_BIG,     1009, 0, "message too big once inflated" },
    { WS_E_DEFLATE,             1011, 0, "compression failed" },
    { WS_E_PMD_OFFER,           0,    0, "permessage-deflate offer declined" },

    { WS_E_PROXY_SIGNATURE,     0,    0, "not a PROXY protocol header" },
    { WS_E_PROXY_VERSION,       0,    0, "PROXY protocol v2: unknown version or command" },
    { WS_E_PROXY_FAMILY,        0,    0, "PROXY protocol: address family or transport not TCP over IPv4/IPv6" },
    { WS_E_PROXY_LENGTH,        0,    0, "PROXY protocol v2: address block too short for its family" },
    { WS_E_PROXY_TOO_LONG,      0,    0, "PROXY protocol header too long" },
    { WS_E_PROXY_SYNTAX,        0,    0, "PROXY protocol v1: malformed line" },
};

static const ws_err_entry_t *ws_err_find(int err)
{
    for (size_t i = 0; i < sizeof ws_err_table / sizeof ws_err_table[0]; i++)
        if (ws_err_table[i].err == err) return &ws_err_table[i];
    return NULL;
}

uint16_t ws_err_close_code(int err)
{
    const ws_err_entry_t *e = ws_err_find(err);
    if (e) return e->close_code;
    return err < 0 ? WS_CLOSE_PROTOCOL_ERROR : 0;
}

const char *ws_err_str(int err)
{
    const ws_err_entry_t *e = ws_err_find(err);
    return e ? e->reason : "unknown error";
}

int ws_err_http_status(int err)
{
    const ws_err_entry_t *e = ws_err_find(err);
    return e ? e->http_status : 0;
}
