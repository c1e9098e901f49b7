/* ws_message.h — the RFC 6455 message layer: a resumable reader that turns
 * bytes into whole messages and control frames.
 *
 * Feed it whatever arrived, in any split; it returns one event at a time
 * and how many bytes it consumed, and returns 0 ("want more") when every
 * byte was consumed without completing an event.  It enforces what the
 * frame codec cannot see on its own:
 *   - fragmentation: a continuation needs a message in progress, a new data
 *     frame may not start inside one; control frames may be interleaved;
 *   - UTF-8 of text messages, checked incrementally as fragments arrive, so
 *     the first invalid byte fails at once (1007) — for uncompressed
 *     messages; a compressed one is checked once inflated, see below;
 *   - max_message_size on the whole (decompressed) message, checked when a
 *     frame header announces its length, before any byte is buffered (1009);
 *   - close frames: payload of 1 byte, codes not allowed on the wire, reason
 *     not UTF-8 (1002 / 1002 / 1007);
 *   - permessage-deflate (RSV1 on the first frame of a message, never on a
 *     continuation), inflated with the limit on the inflated size.
 *
 * Memory: the reader's own state is ~150 bytes (a test keeps it <= 160).  A message that arrives
 * whole inside one fed buffer is returned in place (unmasked in the
 * caller's buffer: zero copies).  Only a message split over several feeds
 * or fragmented over several frames is copied into a heap buffer owned by
 * the reader; it grows with the bytes actually received (never
 * preallocated from a length the peer announced) and is freed on the next
 * call after the message was returned.  A control frame split across feeds
 * is spilled into a 125-byte buffer allocated for that frame only.
 *
 * Compressed text messages (RSV1) are UTF-8-checked only after their last
 * frame, once the whole message is inflated; an invalid byte in the first
 * fragment is reported at FIN, not when it arrives.  The reason is the
 * inflater: with the default policy it is shared by every connection of an
 * event loop and reset after each message (ws_deflate.h), so it cannot carry
 * one connection's inflate state from one fragment to the next while other
 * connections use it.  Inflating per fragment would need an inflate stream
 * per connection with a message in progress (~7 KiB + 32 KiB of window, and
 * a slow peer could hold it for as long as it likes) or pinning the shared
 * one to a connection until its FIN; a reader given its own inflater
 * (context takeover) could do it, but the gateway never negotiates that, so
 * one code path serves both.  The memory bound still holds: each frame
 * header is checked against max_message_size + max/64 + 1 KiB (deflate's
 * worst case on incompressible data) before its payload is buffered, so the
 * compressed bytes held are bounded whatever the payload, valid or not; at
 * FIN the inflate stops once the output passes max_message_size (1009), so
 * a message costs at most that wire limit plus max_message_size plus one
 * 16 KiB inflate step, and the UTF-8 check is one linear pass over it.
 * Invalid UTF-8 thus costs no more memory or time than the largest valid
 * compressed message; only the moment of the 1007 moves.
 *
 * Errors are sticky: after a negative return every later call returns the
 * same code.  Map it with ws_err_close_code() and ws_err_str() (ws_status.h).
 */
#ifndef WS_MESSAGE_H
#define WS_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "ws_alloc.h"
#include "ws_deflate.h"
#include "ws_frame.h"

typedef struct ws_reader_config {
    uint64_t       max_message_size; /* > 0: limit on a data message (inflated) */
    ws_role_t      role;             /* our role: WS_ROLE_SERVER expects masked frames */
    ws_inflater_t *inflater;         /* non-NULL only when permessage-deflate was
                                        negotiated: RSV1 is then allowed on the
                                        first frame of a data message */
    int            inflate_reset;    /* 1: reset the inflater after each message
                                        (client_no_context_takeover or shared) */
} ws_reader_config_t;

typedef enum ws_msg_type {
    WS_MSG_TEXT   = WS_OP_TEXT,
    WS_MSG_BINARY = WS_OP_BINARY,
    WS_MSG_CLOSE  = WS_OP_CLOSE,
    WS_MSG_PING   = WS_OP_PING,
    WS_MSG_PONG   = WS_OP_PONG
} ws_msg_type_t;

typedef struct ws_msg {
    ws_msg_type_t  type;
    const uint8_t *data;       /* payload; for CLOSE the reason (valid UTF-8) */
    size_t         len;
    uint16_t       close_code; /* CLOSE only: the code, or 1005 (WS_CLOSE_NO_STATUS)
                                  when the close frame had no payload */
    uint8_t        compressed; /* 1 when the message arrived with RSV1 */
} ws_msg_t;

/* Layout is visible so a reader can be embedded in a connection struct; the
 * fields are private (leading underscore). */
typedef struct ws_reader {
    uint64_t  _max;            /* config: max_message_size (kept in 16 bytes, not 32:
                                  a reader lives in every idle connection) */
    ws_inflater_t *_inflater;  /* config */
    ws_buf_t  _msg;            /* assembled payload of a message in progress */
    ws_buf_t  _inflated;       /* inflated payload of the last compressed message */
    uint8_t  *_ctrl;           /* spill for a control frame split across feeds */
    uint64_t  _frame_left;     /* payload bytes of the current frame not yet seen */
    uint64_t  _frame_done;     /* payload bytes of the current frame already seen */
    uint64_t  _msg_size;       /* bytes of the message in progress so far */
    uint32_t  _utf8;           /* incremental UTF-8 state */
    int       _err;            /* sticky error, 0 when none */
    uint8_t   _hdr[WS_FRAME_HEADER_MAX]; /* spilled partial frame header */
    uint8_t   _hdr_have;
    uint8_t   _state;          /* private parser state */
    uint8_t   _frame_op;       /* opcode of the current frame */
    uint8_t   _frame_fin;
    uint8_t   _mask[4];
    uint8_t   _msg_op;         /* opcode of the message in progress, 0 when none */
    uint8_t   _msg_compressed;
    uint8_t   _release;        /* free/reset buffers on the next call */
    uint8_t   _closed;         /* a CLOSE was returned: later input is discarded */
    uint8_t   _role;           /* config: ws_role_t */
    uint8_t   _inflate_reset;  /* config */
} ws_reader_t;

/* Initialises *r for one connection.  The config is copied. */
void ws_reader_init(ws_reader_t *r, const ws_reader_config_t *cfg);

/* Consumes bytes from in[0..len) — modifying them in place (unmasking) —
 * and stores in *consumed how many it used.
 * Returns:
 *   1   *msg holds one event.  msg->data points into `in` or into the
 *       reader's buffer and is valid until the next call to ws_reader_feed()
 *       or ws_reader_free() (and, when it points into `in`, while the caller
 *       keeps `in` unchanged).  Call again with in+*consumed for more.
 *   0   all `len` bytes were consumed (*consumed == len) and no event is
 *       complete yet: feed more when it arrives.
 *  <0   a WS_E_* error (sticky); the connection must be closed with
 *       ws_err_close_code(rc).
 * After a CLOSE event the reader is closed: later input is consumed and
 * discarded (returns 0), as RFC 6455 §5.5.1 allows nothing after a close. */
int ws_reader_feed(ws_reader_t *r, uint8_t *in, size_t len, size_t *consumed,
                   ws_msg_t *msg);

/* Heap bytes the reader holds right now (for metrics and memory limits). */
size_t ws_reader_heap_bytes(const ws_reader_t *r);

/* Frees the reader's heap buffers.  *r may be re-initialised afterwards. */
void ws_reader_free(ws_reader_t *r);

/* The close handshake, as three bits a connection keeps (RFC 6455 §7):
 * a close was received from the peer, a close of ours is queued, ours has
 * been written.  The TCP connection may be closed once ours is SENT and the
 * peer's was RECEIVED (or a timeout passed). */
enum {
    WS_CLOSE_STATE_RECEIVED = 1,
    WS_CLOSE_STATE_QUEUED   = 2,
    WS_CLOSE_STATE_SENT     = 4
};

/* Builds the payload of the close reply to a received close (RFC 6455
 * §5.5.1: echo the status code) into out (>= 2 + WS_CONTROL_MAX bytes) as a
 * whole frame, and returns its length: code 1005 (no status) answers with
 * an empty close, anything else echoes the code with no reason. */
size_t ws_close_reply(uint8_t *out, uint16_t received_code);

#endif
