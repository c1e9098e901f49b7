/* ws_status.h — error codes of proto/ and the RFC 6455 close codes they map to.
 *
 * Every function in proto/ that can fail returns a ws_err_t: 0 (WS_OK) or a
 * positive "progress" value on success, a negative WS_E_* code on failure.
 * Codes come in families (HTTP, frame, message, UTF-8, deflate, PROXY) so a caller
 * can tell at a glance which layer refused the input.  One table,
 * ws_err_close_code(), maps each protocol error to the close code the
 * endpoint must send; one table, ws_err_str(), to a short human reason that
 * is safe to put in a close frame or a log line (ASCII, <= 123 bytes).
 */
#ifndef WS_STATUS_H
#define WS_STATUS_H

#include <stdint.h>

/* RFC 6455 §7.4.1 / IANA registry.  Codes marked "never on the wire" must
 * not appear in a close frame (§7.4.1: 1005, 1006, 1015 are reserved for
 * reporting a state to the application). */
typedef enum ws_close_code {
    WS_CLOSE_NORMAL           = 1000,
    WS_CLOSE_GOING_AWAY       = 1001,
    WS_CLOSE_PROTOCOL_ERROR   = 1002,
    WS_CLOSE_UNSUPPORTED_DATA = 1003,
    WS_CLOSE_RESERVED_1004    = 1004, /* reserved, never on the wire */
    WS_CLOSE_NO_STATUS        = 1005, /* never on the wire: "close had no code" */
    WS_CLOSE_ABNORMAL         = 1006, /* never on the wire: "no close frame" */
    WS_CLOSE_INVALID_PAYLOAD  = 1007, /* e.g. invalid UTF-8 in a text message */
    WS_CLOSE_POLICY_VIOLATION = 1008,
    WS_CLOSE_MESSAGE_TOO_BIG  = 1009,
    WS_CLOSE_MANDATORY_EXT    = 1010, /* sent by clients only */
    WS_CLOSE_INTERNAL_ERROR   = 1011,
    WS_CLOSE_SERVICE_RESTART  = 1012,
    WS_CLOSE_TRY_AGAIN_LATER  = 1013,
    WS_CLOSE_BAD_GATEWAY      = 1014,
    WS_CLOSE_TLS_HANDSHAKE    = 1015  /* never on the wire */
} ws_close_code_t;

/* 1 when `code` may legally appear in a received close frame (RFC 6455
 * §7.4: 1000-1003, 1007-1014 and 3000-4999); 0 otherwise. */
int ws_close_code_is_valid(uint32_t code);

typedef enum ws_err {
    WS_OK = 0,

    /* -1..-19: generic */
    WS_E_WANT_MORE          = -1,  /* not an error: input ended mid-item */
    WS_E_NOSPACE            = -2,  /* caller's output buffer is too small */
    WS_E_INVALID_ARG        = -3,  /* caller misuse (NULL, bad enum) */
    WS_E_STICKY             = -4,  /* a previous call already failed */

    /* -20..-39: HTTP request / opening handshake */
    WS_E_HTTP_SYNTAX        = -20, /* 400: malformed request line or header */
    WS_E_HTTP_LINE_TOO_LONG = -21, /* 431/414: request line over the limit */
    WS_E_HTTP_TOO_MANY_HDRS = -22, /* 431: header count over the limit */
    WS_E_HTTP_HDRS_TOO_BIG  = -23, /* 431: total header bytes over the limit */
    WS_E_HTTP_METHOD        = -24, /* 405/400: not GET for an upgrade */
    WS_E_HTTP_VERSION       = -25, /* 400: HTTP/1.0 where the handshake needs 1.1 */
    WS_E_HTTP_NO_HOST       = -26, /* 400 */
    WS_E_HTTP_NO_UPGRADE    = -27, /* 400/426: Upgrade: websocket missing */
    WS_E_HTTP_NO_CONNECTION = -28, /* 400: Connection lacks "upgrade" token */
    WS_E_HTTP_BAD_KEY       = -29, /* 400: Sec-WebSocket-Key not 16 bytes b64 */
    WS_E_HTTP_BAD_WS_VERSION= -30, /* 426 + Sec-WebSocket-Version: 13: a well-formed
                                    * version other than 13 */
    WS_E_HTTP_BODY          = -31, /* 400: GET with a body (Content-Length/TE) */
    WS_E_HTTP_DUP_HEADER    = -32, /* 400: a header that must be single repeats */
    WS_E_HTTP_TARGET        = -33, /* 400: target neither /path nor http(s)://authority[/path] */
    WS_E_HTTP_VERSION_UNSUPPORTED = -34, /* 505: HTTP major version other than 1 */
    WS_E_HTTP_WS_VERSION_SYNTAX   = -35, /* 400: Sec-WebSocket-Version missing, repeated,
                                          * a list, or not a number 0-255 */

    /* -40..-59: frame codec */
    WS_E_FRAME_RSV          = -40, /* 1002: RSV bit set that no extension owns */
    WS_E_FRAME_OPCODE       = -41, /* 1002: reserved opcode 3-7 or 0xB-0xF */
    WS_E_FRAME_UNMASKED     = -42, /* 1002: client frame without mask */
    WS_E_FRAME_MASKED       = -43, /* 1002: server frame with mask */
    WS_E_FRAME_CTRL_TOO_BIG = -44, /* 1002: control payload > 125 */
    WS_E_FRAME_CTRL_FRAG    = -45, /* 1002: control frame with FIN=0 */
    WS_E_FRAME_LEN_NONCANON = -46, /* 1002: length not in its minimal form */
    WS_E_FRAME_LEN_MSB      = -47, /* 1002: 64-bit length with the MSB set */

    /* -60..-79: message layer */
    WS_E_MSG_BAD_CONT       = -60, /* 1002: continuation with nothing to continue */
    WS_E_MSG_EXPECTED_CONT  = -61, /* 1002: new data frame inside a fragmented message */
    WS_E_MSG_TOO_BIG        = -62, /* 1009: message over max_message_size */
    WS_E_MSG_CLOSE_LEN1     = -63, /* 1002: close payload of exactly 1 byte */
    WS_E_MSG_CLOSE_CODE     = -64, /* 1002: close code not allowed on the wire */
    WS_E_MSG_CLOSE_UTF8     = -65, /* 1007: close reason not UTF-8 */
    WS_E_MSG_AFTER_CLOSE    = -66, /* 1002: frame after the peer's close */
    WS_E_MSG_RSV1_CONT      = -67, /* 1002: RSV1 on a continuation frame */

    /* -80..-89: UTF-8 */
    WS_E_UTF8               = -80, /* 1007: text message not valid UTF-8 */

    /* -90..-99: permessage-deflate */
    WS_E_INFLATE            = -90, /* 1007: compressed data is corrupt */
    WS_E_INFLATE_TOO_BIG    = -91, /* 1009: inflated size over the limit */
    WS_E_DEFLATE            = -92, /* 1011: zlib failed while compressing */
    WS_E_PMD_OFFER          = -93, /* offer malformed: decline it */

    /* -100..-109: PROXY protocol header (ws_proxy.h); the connection is dropped */
    WS_E_PROXY_SIGNATURE    = -100, /* neither "PROXY " nor the v2 signature */
    WS_E_PROXY_VERSION      = -101, /* v2: version not 2, or command not LOCAL/PROXY */
    WS_E_PROXY_FAMILY       = -102, /* address family or transport unknown or unusable */
    WS_E_PROXY_LENGTH       = -103, /* v2: address block shorter than its family needs */
    WS_E_PROXY_TOO_LONG     = -104, /* v1 over 107 bytes, v2 over WS_PROXY_V2_MAX_LEN */
    WS_E_PROXY_SYNTAX       = -105, /* v1: malformed line, address or port */
} ws_err_t;

/* Close code an endpoint sends after a proto/ error.  Returns 1002 for any
 * frame/message error not listed otherwise, 1011 for internal errors, and 0
 * for codes that are not protocol errors (WS_OK, WS_E_WANT_MORE, HTTP). */
uint16_t ws_err_close_code(int err);

/* Short ASCII reason for `err` (<= 123 bytes, safe for a close frame's
 * reason and a log line).  Never NULL; static storage. */
const char *ws_err_str(int err);

/* HTTP status that a handshake failure answers with (400, 426, 431, ...),
 * or 0 when `err` is not an HTTP error. */
int ws_err_http_status(int err);

#endif
