/* ws_deflate.h — permessage-deflate (RFC 7692): negotiation, inflate, deflate.
 *
 * This module sits beside the frame codec, never inside it: the message
 * layer (ws_message.h) hands it whole compressed message payloads, and the
 * gateway hands it whole outgoing messages.
 *
 * Memory, per zlib's documented formulas (zconf.h), for window bits W
 * (W=8 is served with 9), measured on zlib 1.2.13 (test_deflate.c):
 *   inflate stream: 7,160 bytes + 2^W of window, the window allocated by
 *                   the first inflate that produces output (W=15: 39,928)
 *   deflate stream: 5,952 bytes + 2^(W+2) + 2^(memLevel+9), all at creation
 *                   (W=15, memLevel 8: 268,096, i.e. ~262 KiB)
 * That is why the default policy answers every offer with
 * server_no_context_takeover and client_no_context_takeover: no zlib stream
 * is kept per connection at all.  One inflater and one deflater per event
 * loop serve every connection (reset after each message), and a message
 * sent to many receivers is compressed once.  A policy that allows context
 * takeover costs, per connection that negotiates it, one inflate stream
 * (client direction) and/or one deflate stream (server direction) sized by
 * the negotiated window bits.
 *
 * Window bits 8: zlib cannot deflate with a 256-byte window.  When a client
 * asks server_max_window_bits=8 we still accept and compress with
 * Z_HUFFMAN_ONLY (no back-references at all, so any window is honoured).
 */
#ifndef WS_DEFLATE_H
#define WS_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

#include "ws_alloc.h"

typedef struct ws_pmd_policy {
    int enable;                        /* 0: decline every offer */
    int allow_server_context_takeover; /* 0 (default): always answer server_no_context_takeover */
    int allow_client_context_takeover; /* 0 (default): always answer client_no_context_takeover */
    int server_max_window_bits;        /* 8..15: our deflate window ceiling (default 15) */
    int client_max_window_bits;        /* 8..15: asked of the client when it allows it (default 15) */
} ws_pmd_policy_t;

/* Fills *pol with the defaults above (enable = 1). */
void ws_pmd_policy_default(ws_pmd_policy_t *pol);

/* What was agreed for one connection. */
typedef struct ws_pmd_params {
    uint8_t server_no_context_takeover; /* 1: we reset our deflater after each message */
    uint8_t client_no_context_takeover; /* 1: the client resets; we may use a shared inflater */
    uint8_t server_max_window_bits;     /* 8..15: window our deflater must respect */
    uint8_t client_max_window_bits;     /* 8..15: window the client deflates with */
    uint8_t client_max_window_bits_sent;/* 1: the response states client_max_window_bits */
    uint8_t server_max_window_bits_sent;/* 1: the response states server_max_window_bits
                                           (the client asked for a limit, or ours is < 15) */
} ws_pmd_params_t;

/* Walks the offers in one Sec-WebSocket-Extensions header value (offers are
 * comma-separated, parameters `;`-separated, values may be quoted-strings),
 * in the client's order of preference, and picks the first
 * permessage-deflate offer it can honour under `pol`.
 * Returns 1 with *out filled, 0 when no offer is acceptable (no
 * permessage-deflate offer, or each one malformed: unknown or repeated
 * parameter, value out of range, value where none is allowed — RFC 7692
 * §7 says such an offer is declined, not the handshake failed), or
 * WS_E_INVALID_ARG for NULL arguments.  Offers of other extensions are
 * skipped.  A caller with several header lines calls this per line, in
 * order, until one returns 1. */
int ws_pmd_negotiate(const char *value, size_t len, const ws_pmd_policy_t *pol,
                     ws_pmd_params_t *out);

/* Writes the response extension value for *p, e.g.
 * "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
 * into out[0..cap) NUL-terminated.  Returns its length (without the NUL) or
 * WS_E_NOSPACE. */
int ws_pmd_format_response(const ws_pmd_params_t *p, char *out, size_t cap);

typedef struct ws_inflater ws_inflater_t;
typedef struct ws_deflater ws_deflater_t;

/* An inflater for messages deflated with at most `window_bits` (8..15; 8
 * is inflated with 9, which zlib requires and which is a superset).
 * Returns NULL only for window_bits out of range.
 * Free with ws_inflater_free(). */
ws_inflater_t *ws_inflater_new(int window_bits);
void ws_inflater_free(ws_inflater_t *inf);

/* Inflates one whole message payload in[0..len) (the RFC 7692 §7.2.2 tail
 * 00 00 ff ff is supplied internally) and appends the result to *out.
 * Output is produced in bounded steps and the call stops as soon as the
 * total inflated size would pass `limit`: a deflate bomb costs at most
 * limit + one step of memory.  `reset` 1 discards the LZ77 window
 * afterwards (client_no_context_takeover, or a shared inflater).
 * Returns WS_OK, WS_E_INFLATE_TOO_BIG (1009) or WS_E_INFLATE (1007: corrupt
 * data).  After an error the inflater is reset and usable again; *out holds
 * whatever was produced (the caller discards it). */
int ws_inflate(ws_inflater_t *inf, const uint8_t *in, size_t len, int reset,
               ws_buf_t *out, size_t limit);

/* A deflater with `window_bits` (8..15; 8 means Z_HUFFMAN_ONLY with 9),
 * compression `level` (1..9, or -1 for zlib's default) and `mem_level` (1..9).
 * Returns NULL only for an argument out of range.
 * Free with ws_deflater_free(). */
ws_deflater_t *ws_deflater_new(int window_bits, int level, int mem_level);
void ws_deflater_free(ws_deflater_t *def);

/* Compresses one whole message in[0..len) and appends the payload to send
 * (ending with a sync flush and with the 00 00 ff ff tail removed, RFC 7692
 * §7.2.1) to *out.  `reset` 1 starts the next message from an empty window
 * (server_no_context_takeover: the same bytes are valid for every receiver,
 * so a fan-out compresses once).  Returns WS_OK or WS_E_DEFLATE. */
int ws_deflate(ws_deflater_t *def, const uint8_t *in, size_t len, int reset,
               ws_buf_t *out);

#endif
