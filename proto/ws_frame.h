/* ws_frame.h — the RFC 6455 §5 frame codec: headers, masking, writing.
 *
 * Stateless and allocation-free.  The resumable reader that spills a partial
 * header and tracks payload progress lives one layer up (ws_message.h); this
 * layer only knows one frame header at a time.  Extensions are not known
 * here: the caller says which RSV bits an extension has claimed.
 *
 * Wire facts this codec enforces on parse (each with its own WS_E_FRAME_*):
 * reserved opcodes, RSV bits not claimed, the mask bit that the role needs
 * (clients MUST mask, servers MUST NOT), control frames with FIN=0 or a
 * payload over 125 bytes, lengths not in minimal form (§5.2 "the minimal
 * number of bytes MUST be used"), and 64-bit lengths with the MSB set.
 */
#ifndef WS_FRAME_H
#define WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

typedef enum ws_opcode {
    WS_OP_CONT   = 0x0,
    WS_OP_TEXT   = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE  = 0x8,
    WS_OP_PING   = 0x9,
    WS_OP_PONG   = 0xA
} ws_opcode_t;

#define WS_OP_IS_CONTROL(op) (((op) & 0x8) != 0)
#define WS_FRAME_HEADER_MAX 14   /* 2 + 8 (length) + 4 (mask) */
#define WS_CONTROL_MAX      125  /* largest control-frame payload */

#define WS_RSV1 0x4  /* bit values as in ws_frame_hdr_t.rsv */
#define WS_RSV2 0x2
#define WS_RSV3 0x1

typedef struct ws_frame_hdr {
    uint64_t payload_len;
    uint8_t  opcode;       /* ws_opcode_t */
    uint8_t  fin;          /* 0 or 1 */
    uint8_t  rsv;          /* WS_RSV1|WS_RSV2|WS_RSV3 bits */
    uint8_t  masked;       /* 0 or 1 */
    uint8_t  mask[4];      /* valid when masked */
    uint8_t  header_len;   /* bytes the header took on the wire: 2..14 */
} ws_frame_hdr_t;

typedef enum ws_role {
    WS_ROLE_SERVER = 0,    /* we are the server: peer frames must be masked */
    WS_ROLE_CLIENT = 1     /* we are the client: peer frames must be unmasked */
} ws_role_t;

/* Parses one frame header from buf[0..len).
 * `allowed_rsv` is the set of RSV bits extensions have claimed (WS_RSV1 when
 * permessage-deflate is negotiated, else 0); `role` is *our* role.
 * Returns the header length (2..14) and fills *h, WS_E_WANT_MORE when buf
 * holds only part of a header (nothing is consumed; call again with more),
 * or a negative WS_E_FRAME_* error.  RSV1 on a control frame is reported as
 * WS_E_FRAME_RSV whatever allowed_rsv says. */
int ws_frame_parse_header(const uint8_t *buf, size_t len, int allowed_rsv,
                          ws_role_t role, ws_frame_hdr_t *h);

/* XORs data[0..len) in place with `mask`, starting at mask position
 * `offset` (the count of payload bytes already unmasked, so a payload split
 * over many reads unmasks correctly).  Works a machine word at a time. */
void ws_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset);

/* Bytes a header takes for a payload of `payload_len` (2, 4 or 10; +4 when
 * `masked`). */
size_t ws_frame_header_size(uint64_t payload_len, int masked);

/* Writes a frame header into out (which must hold ws_frame_header_size()
 * bytes; WS_FRAME_HEADER_MAX always suffices) and returns its length.
 * `mask` NULL writes an unmasked (server) header.  This is how a payload
 * going to many connections gets its header built once. */
size_t ws_frame_write_header(uint8_t *out, int fin, int rsv, ws_opcode_t op,
                             uint64_t payload_len, const uint8_t mask[4]);

/* Writes a whole unmasked frame (header + copy of payload) into out[0..cap).
 * Returns bytes written, or WS_E_NOSPACE when cap is too small (nothing
 * written), or WS_E_INVALID_ARG for a control frame over 125 bytes. */
long ws_frame_write(uint8_t *out, size_t cap, int fin, int rsv, ws_opcode_t op,
                    const uint8_t *payload, size_t len);

/* Writes an unmasked close frame with `code` and `reason` (truncated to 123
 * bytes on a UTF-8 boundary) into out, which must hold at least
 * 2 + WS_CONTROL_MAX bytes.  code 0 writes an empty close payload.
 * Returns bytes written. */
size_t ws_frame_write_close(uint8_t *out, uint16_t code, const char *reason,
                            size_t reason_len);

#endif
