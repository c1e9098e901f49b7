/* ws_http.h — HTTP/1.1 request parsing and the RFC 6455 §4 opening handshake.
 *
 * The parser is for the requests a WebSocket gateway receives: the upgrade
 * request and a few plain GETs (/healthz, /metrics, static files).  It works
 * on the bytes received so far, from the first byte of the request; call it
 * again with the longer buffer after each read.  It remembers how far it
 * has scanned, so a request trickling in byte by byte costs O(n) overall,
 * and it fails as soon as a limit is passed — before the end of the header
 * block arrives — so a peer cannot make the caller buffer more than
 * max_header_bytes.
 *
 * Every pointer this module returns (method, target, header names and
 * values) points into the caller's buffer: valid while that buffer is.  The
 * one exception is the path of an absolute-form target with an empty path
 * ("http://host" or "http://host?q"): it is the static string "/".
 * Nothing is allocated.
 */
#ifndef WS_HTTP_H
#define WS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define WS_HTTP_MAX_HEADERS_HARD 128  /* size of the header array in a request */

typedef struct ws_http_limits {
    size_t max_request_line;  /* bytes of "GET /path HTTP/1.1" (default 8192) */
    size_t max_headers;       /* header lines (default 64, <= WS_HTTP_MAX_HEADERS_HARD) */
    size_t max_header_bytes;  /* whole header block incl. request line (default 16384) */
} ws_http_limits_t;

void ws_http_limits_default(ws_http_limits_t *lim);

typedef struct ws_http_header {
    const char *name;   size_t name_len;   /* as sent; compare case-insensitively */
    const char *value;  size_t value_len;  /* leading/trailing OWS removed */
} ws_http_header_t;

typedef struct ws_http_request {
    const char *method;  size_t method_len;
    const char *target;  size_t target_len;  /* as sent: /path[?query], or
                                                http(s)://authority[/path][?query] */
    const char *authority; size_t authority_len; /* absolute-form's host[:port],
                                                    NULL for origin-form */
    const char *path;    size_t path_len;    /* the target's path: route on this */
    const char *query;   size_t query_len;   /* after '?', NULL when none */
    int minor_version;                       /* 0 for HTTP/1.0, 1 for HTTP/1.1 and
                                                any later 1.x (RFC 9110 §2.5) */
    size_t num_headers;
    ws_http_header_t headers[WS_HTTP_MAX_HEADERS_HARD];
} ws_http_request_t;

/* Resumable scan state; zero-initialise (or ws_http_parser_init) per request. */
typedef struct ws_http_parser {
    size_t _scanned;    /* bytes already scanned for the end of the header block */
    size_t _line_start; /* start of the line being scanned */
    size_t _lines;      /* lines seen so far */
} ws_http_parser_t;

void ws_http_parser_init(ws_http_parser_t *p);

/* Parses the request whose first `len` bytes are buf[0..len).
 * Returns the length of the header block (through the blank line) when it
 * is complete and *req is filled; WS_E_WANT_MORE when more bytes are needed;
 * or a negative WS_E_HTTP_* error (map it with ws_err_http_status()):
 * request line over max_request_line, more than max_headers lines, header
 * block over max_header_bytes (all WS_E_HTTP_LINE_TOO_LONG/_TOO_MANY_HDRS/
 * _HDRS_TOO_BIG, 431); a malformed request line (method not a token, not
 * one space between parts, version not "HTTP/" DIGIT "." DIGIT) or header
 * line (no colon, name not a token, whitespace before the colon, obsolete
 * line folding, control characters in a value), WS_E_HTTP_SYNTAX (400);
 * a target that is neither origin-form "/path[?query]" nor absolute-form
 * "http://" or "https://" authority[/path][?query] (userinfo and an empty
 * host refused too), WS_E_HTTP_TARGET (400); HTTP major version other than
 * 1, WS_E_HTTP_VERSION_UNSUPPORTED (505).  HTTP/1.2 and later 1.x parse as
 * 1.1.  Both CRLF and bare LF line ends are accepted (RFC 9112 §2.2). */
int ws_http_parse(ws_http_parser_t *p, const char *buf, size_t len,
                  const ws_http_limits_t *lim, ws_http_request_t *req);

/* First header named `name` (case-insensitive), or NULL.  *count, when not
 * NULL, receives how many headers have that name. */
const ws_http_header_t *ws_http_find_header(const ws_http_request_t *req,
                                            const char *name, size_t *count);

/* 1 when the comma-separated list value[0..len) contains `token`
 * (case-insensitive, OWS around elements ignored), else 0. */
int ws_http_has_token(const char *value, size_t len, const char *token);

/* 1 when the request asks for a WebSocket upgrade (an Upgrade header that
 * lists "websocket"), so the caller routes it to ws_handshake_validate()
 * rather than serving a plain GET. */
int ws_http_is_upgrade(const ws_http_request_t *req);

/* What a valid opening handshake carries, for the caller's own checks. */
typedef struct ws_handshake {
    const char *key;     size_t key_len;     /* Sec-WebSocket-Key, as sent */
    const char *host;    size_t host_len;    /* the authority of an absolute-form
                                                target, else the Host header */
    const char *origin;  size_t origin_len;  /* NULL when absent */
} ws_handshake_t;

/* Validates an upgrade request per RFC 6455 §4.2.1: method GET, HTTP/1.1
 * (or later 1.x), one non-empty Host, Upgrade lists "websocket", Connection
 * lists "upgrade", exactly one Sec-WebSocket-Key that base64-decodes to 16
 * bytes, exactly one Sec-WebSocket-Version that is 13, no request body.
 * Returns WS_OK and fills *hs, or the WS_E_HTTP_* code of the first rule
 * broken, in that order.  The version rule gives two codes: a missing,
 * repeated or malformed value (a list, a leading zero, not 0-255: RFC 6455
 * §4.1) is WS_E_HTTP_WS_VERSION_SYNTAX (400); a well-formed version other
 * than 13 is WS_E_HTTP_BAD_WS_VERSION, which must be answered 426 with
 * "Sec-WebSocket-Version: 13" (ws_http_error_response does that).
 *
 * Host and absolute-form: Host is required even then (RFC 9112 §3.2), but
 * hs->host is the target's authority, as RFC 9112 §3.2.2 requires ("MUST
 * ignore the received Host"); a Host that differs is not refused.  Origin
 * checks made against hs->host therefore compare with the authority.  This
 * widens nothing: a client chooses its target as freely as its Host. */
int ws_handshake_validate(const ws_http_request_t *req, ws_handshake_t *hs);

/* The first subprotocol in *server* order (server_protos[0..n)) that any
 * Sec-WebSocket-Protocol header of the request lists; returns its index, or
 * -1 when none matches or the client asked for none. */
int ws_handshake_select_subprotocol(const ws_http_request_t *req,
                                    const char *const *server_protos, size_t n);

/* Sec-WebSocket-Accept for `key`: base64(SHA-1(key + GUID)), 28 characters
 * plus a NUL written to out. */
void ws_handshake_accept(const char *key, size_t key_len, char out[29]);

/* Writes the 101 Switching Protocols response into out[0..cap).
 * `subprotocol` and `extensions` (the negotiated Sec-WebSocket-Extensions
 * value) may be NULL.  Returns its length, or WS_E_NOSPACE. */
int ws_handshake_response(char *out, size_t cap, const char *key, size_t key_len,
                          const char *subprotocol, const char *extensions);

/* Writes a complete HTTP/1.1 response with `Connection: close`, a
 * text/plain body `body` (a short line saying why, newline added) and, for
 * 426, `Sec-WebSocket-Version: 13`; for 401, `WWW-Authenticate: Bearer`.  Returns its length or WS_E_NOSPACE. */
int ws_http_error_response(char *out, size_t cap, int status, const char *body);

/* Writes a complete HTTP/1.1 response head for a plain GET: status line,
 * Content-Type, Content-Length, Connection (keep_alive ? keep-alive : close),
 * then `extra_headers` verbatim (each line ending in \r\n; may be NULL), then
 * the blank line.  The caller sends the body after it.  Returns its length
 * or WS_E_NOSPACE. */
int ws_http_response_head(char *out, size_t cap, int status, const char *content_type,
                          size_t content_length, int keep_alive,
                          const char *extra_headers);

/* Reason phrase for a status code ("Bad Request"); "Unknown" when unknown. */
const char *ws_http_status_text(int status);

#endif
