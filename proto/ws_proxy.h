/* ws_proxy.h — the PROXY protocol header (HAProxy's proxy-protocol.txt),
 * versions 1 (text) and 2 (binary), as a load balancer sends it before the
 * client's first byte.
 *
 * The parser is resumable: feed it the bytes as they arrive; it consumes
 * only the header's own bytes, never one past its end, so the caller can
 * hand the rest of the stream (the HTTP request, or a TLS ClientHello that
 * OpenSSL reads from the socket itself) to the next layer untouched.  What
 * it must remember between calls (the v1 line, the v2 fixed part and
 * address block) is copied into the parser: ~120 bytes, no allocation.
 *
 * Strict: a byte that cannot start or continue a header fails at once (the
 * caller does not wait for more of something that can never be valid).
 *   v1  "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" with single spaces,
 *       addresses of the named family, ports 0..65535 without leading
 *       zeros, at most 107 bytes; "PROXY UNKNOWN[ anything]\r\n" is the
 *       sender's "no address" (HAProxy's v1 health checks).
 *   v2  the 12-byte signature, version 2, command LOCAL or PROXY, a family
 *       and transport within the spec's values; PROXY carries TCP over
 *       IPv4 or IPv6 (an address block of at least 12 or 36 bytes); UNIX
 *       sockets, UDP and UNSPEC with PROXY are refused, since there is no IP
 *       address to use.  TLVs after the address block are skipped unread.
 *       A header over WS_PROXY_V2_MAX_LEN bytes is refused.
 */
#ifndef WS_PROXY_H
#define WS_PROXY_H

#include <stddef.h>
#include <stdint.h>

#define WS_PROXY_V1_MAX_LEN 107    /* the spec's bound, CRLF included */
/* The spec allows 16 + 65535 bytes.  HAProxy's TLVs (ALPN, authority,
 * unique id, SSL details) take a few hundred at most; a longer header is
 * refused rather than skipped for the length of a handshake timeout. */
#define WS_PROXY_V2_MAX_LEN 4096

typedef enum ws_proxy_kind {
    WS_PROXY_LOCAL = 0,  /* v2 LOCAL or v1 UNKNOWN: no client address; keep the socket's */
    WS_PROXY_ADDR  = 1   /* a relayed connection: src below is the client */
} ws_proxy_kind_t;

typedef struct ws_proxy_result {
    ws_proxy_kind_t kind;
    int      family;       /* AF_INET or AF_INET6 with WS_PROXY_ADDR; 0 for LOCAL */
    uint8_t  addr[16];     /* the source address, network byte order (4 bytes for AF_INET) */
    uint16_t port;         /* the source port, host byte order */
    uint8_t  version;      /* 1 or 2 */
} ws_proxy_result_t;

/* Zero-initialise (or ws_proxy_init) once per connection. */
typedef struct ws_proxy_parser {
    uint16_t _got;         /* header bytes consumed so far */
    uint16_t _total;       /* v2: 16 + length field, once known; else 0 */
    uint8_t  _version;     /* 0 until the first byte says which, then 1 or 2 */
    int8_t   _error;       /* sticky: the WS_E_PROXY_* code once failed, else 0 */
    uint8_t  _kept[WS_PROXY_V1_MAX_LEN + 1];  /* v1: the line; v2: bytes 0..51 */
} ws_proxy_parser_t;

void ws_proxy_init(ws_proxy_parser_t *p);

/* Bytes of the header consumed so far (0: nothing has arrived yet). */
static inline size_t ws_proxy_received(const ws_proxy_parser_t *p) { return p->_got; }

/* Feeds buf[0..len), the bytes that follow the ones fed before.
 * Sets *used to how many of them belong to the header, and returns:
 *   WS_E_WANT_MORE   the header is not complete (*used == len);
 *   > 0              the header's total length: it ended *used bytes
 *                    into buf, and *out is filled;
 *   WS_E_PROXY_*     a negative error (ws_err_str() says why); every later
 *                    call returns it again.
 * len may be 0. */
int ws_proxy_parse(ws_proxy_parser_t *p, const uint8_t *buf, size_t len, size_t *used,
                   ws_proxy_result_t *out);

#endif
