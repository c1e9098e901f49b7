/* ws_message.c — the resumable RFC 6455 message reader (see ws_message.h).
 *
 * One call walks the fed bytes frame by frame: a header (spilled into _hdr
 * when it is split), then the payload, which is unmasked in place in the
 * caller's buffer and, for an uncompressed text message, UTF-8-checked in
 * the same pass (on AVX2, from the register each block was unmasked in).
 * A message that starts and ends inside the fed buffer is returned in
 * place; anything else is appended to _msg as it arrives.  Control frames
 * are returned in place or, when split across feeds, from the 125-byte
 * _ctrl spill.
 */
#include "ws_message.h"
#include "ws_status.h"
#include "ws_utf8.h"
#include "ws_internal.h"

#include <string.h>

enum { ST_HDR = 0, ST_PAYLOAD = 1 };

/* _release bits: what the next call frees before it does anything else. */
enum { REL_MSG = 1, REL_CTRL = 2, REL_INFLATED = 4 };

/* Unmask and UTF-8-check in blocks this big: where the pass cannot be
 * fused, the block is validated while it is still in L1 after unmasking;
 * either way a bad byte stops the work within one block of it. */
#define WS_FUSE_BLOCK 16384

static const uint8_t ws_empty[1];

void ws_reader_init(ws_reader_t *r, const ws_reader_config_t *cfg)
{
    memset(r, 0, sizeof *r);
    r->_max = cfg->max_message_size;
    r->_inflater = cfg->inflater;
    r->_role = (uint8_t)cfg->role;
    r->_inflate_reset = (uint8_t)(cfg->inflate_reset != 0);
    r->_utf8 = WS_UTF8_ACCEPT;
}

static void ws_reader_release(ws_reader_t *r)
{
    if (r->_release & REL_MSG) ws_buf_free(&r->_msg);
    if (r->_release & REL_INFLATED) ws_buf_free(&r->_inflated);
    if (r->_release & REL_CTRL) {
        ws_xfree(r->_ctrl);
        r->_ctrl = NULL;
    }
    r->_release = 0;
}

/* Limit on the bytes of the message in progress as they arrive: the
 * configured size, or for a compressed message that size plus the slack
 * deflate may need on incompressible data (stored blocks cost 5 bytes per
 * 64 KiB, RFC 1951 §3.2.4; 1/64 + 1 KiB is generous). */
static uint64_t ws_wire_limit(const ws_reader_t *r)
{
    uint64_t max = r->_max;
    if (!r->_msg_compressed) return max;
    uint64_t slack = max / 64 + 1024;
    return max > UINT64_MAX - slack ? UINT64_MAX : max + slack;
}

/* Reads (the rest of) a frame header from p[0..n).  Returns 0 with the
 * frame set up in *r, WS_E_WANT_MORE when all n bytes went into the spill,
 * or an error.  *used is the count of p's bytes consumed. */
static int ws_read_header(ws_reader_t *r, const uint8_t *p, size_t n, size_t *used)
{
    ws_frame_hdr_t h;
    int allowed = r->_inflater ? WS_RSV1 : 0;
    int rc;
    *used = 0;
    if (r->_hdr_have == 0) {
        rc = ws_frame_parse_header(p, n, allowed, (ws_role_t)r->_role, &h);
        if (rc == WS_E_WANT_MORE) {          /* n < WS_FRAME_HEADER_MAX here */
            memcpy(r->_hdr, p, n);
            r->_hdr_have = (uint8_t)n;
            *used = n;
            return rc;
        }
        if (rc < 0) return rc;
        *used = (size_t)rc;
    } else {
        size_t have = r->_hdr_have;
        size_t take = WS_FRAME_HEADER_MAX - have;
        if (take > n) take = n;
        memcpy(r->_hdr + have, p, take);
        rc = ws_frame_parse_header(r->_hdr, have + take, allowed, (ws_role_t)r->_role, &h);
        if (rc == WS_E_WANT_MORE) {
            r->_hdr_have = (uint8_t)(have + take);
            *used = take;
            return rc;
        }
        if (rc < 0) return rc;
        *used = (size_t)rc - have;
        r->_hdr_have = 0;
    }

    if (!WS_OP_IS_CONTROL(h.opcode)) {
        if (h.opcode == WS_OP_CONT) {
            if (!r->_msg_op) return WS_E_MSG_BAD_CONT;
            if (h.rsv & WS_RSV1) return WS_E_MSG_RSV1_CONT;
        } else {
            if (r->_msg_op) return WS_E_MSG_EXPECTED_CONT;
            r->_msg_op = h.opcode;
            r->_msg_compressed = (h.rsv & WS_RSV1) ? 1 : 0;
            r->_msg_size = 0;
            r->_utf8 = WS_UTF8_ACCEPT;
        }
        /* _msg_size <= limit always holds here, so this cannot wrap. */
        if (h.payload_len > ws_wire_limit(r) - r->_msg_size) return WS_E_MSG_TOO_BIG;
    }
    r->_frame_op = h.opcode;
    r->_frame_fin = h.fin;
    memcpy(r->_mask, h.mask, 4);
    r->_frame_left = h.payload_len;
    r->_frame_done = 0;
    r->_state = ST_PAYLOAD;
    return 0;
}

/* Unmasks p[0..n) — the next n payload bytes of the current frame — and,
 * for an uncompressed text message, feeds them to the UTF-8 validator in
 * the same pass (ws_utf8_unmask_validate), a block at a time so a bad byte
 * stops the work within one block of it. */
static int ws_unmask_check(ws_reader_t *r, uint8_t *p, size_t n, int utf8)
{
    int masked = (ws_role_t)r->_role == WS_ROLE_SERVER;
    if (!utf8) {
        if (masked) ws_mask(p, n, r->_mask, r->_frame_done);
        return 0;
    }
    uint32_t st = r->_utf8;
    for (size_t off = 0; off < n; off += WS_FUSE_BLOCK) {
        size_t b = n - off < WS_FUSE_BLOCK ? n - off : WS_FUSE_BLOCK;
        if (masked)
            st = ws_utf8_unmask_validate(st, p + off, b, r->_mask, r->_frame_done + off);
        else
            st = ws_utf8_validate(st, p + off, b);
        if (st == WS_UTF8_REJECT) break;
    }
    r->_utf8 = st;
    return st == WS_UTF8_REJECT ? WS_E_UTF8 : 0;
}

static int ws_emit_control(ws_reader_t *r, const uint8_t *p, size_t n, ws_msg_t *msg)
{
    msg->type = (ws_msg_type_t)r->_frame_op;
    msg->data = p;
    msg->len = n;
    msg->close_code = 0;
    msg->compressed = 0;
    if (r->_frame_op != WS_OP_CLOSE) return 1;
    if (n == 0) {
        msg->close_code = WS_CLOSE_NO_STATUS;
    } else {
        if (n == 1) return WS_E_MSG_CLOSE_LEN1;
        uint16_t code = (uint16_t)(p[0] << 8 | p[1]);
        if (!ws_close_code_is_valid(code)) return WS_E_MSG_CLOSE_CODE;
        if (!ws_utf8_is_valid(p + 2, n - 2)) return WS_E_MSG_CLOSE_UTF8;
        msg->close_code = code;
        msg->data = p + 2;
        msg->len = n - 2;
    }
    /* Nothing may follow a close: drop any message in progress too. */
    r->_closed = 1;
    r->_release |= REL_MSG | REL_CTRL | REL_INFLATED;
    return 1;
}

/* The payload of a control frame: in place when it is all here, else
 * through the _ctrl spill. */
static int ws_read_control(ws_reader_t *r, uint8_t *p, size_t avail, size_t *used,
                           ws_msg_t *msg)
{
    size_t left = (size_t)r->_frame_left;      /* <= WS_CONTROL_MAX */
    int masked = (ws_role_t)r->_role == WS_ROLE_SERVER;
    *used = 0;
    if (r->_frame_done == 0 && avail >= left) {
        if (masked) ws_mask(p, left, r->_mask, 0);
        *used = left;
        r->_frame_left = 0;
        r->_state = ST_HDR;
        return ws_emit_control(r, p, left, msg);
    }
    if (avail == 0) return 0;                  /* allocate only once bytes arrive */
    if (!r->_ctrl) r->_ctrl = ws_xmalloc(WS_CONTROL_MAX);
    size_t take = avail < left ? avail : left;
    size_t done = (size_t)r->_frame_done;
    memcpy(r->_ctrl + done, p, take);
    if (masked) ws_mask(r->_ctrl + done, take, r->_mask, done);
    *used = take;
    r->_frame_done += take;
    r->_frame_left -= take;
    if (r->_frame_left) return 0;
    r->_state = ST_HDR;
    r->_release |= REL_CTRL;
    return ws_emit_control(r, r->_ctrl, (size_t)r->_frame_done, msg);
}

/* A data message is complete in p[0..n): inflate it if it was compressed,
 * check the end of its UTF-8, and fill *msg. */
static int ws_emit_message(ws_reader_t *r, const uint8_t *p, size_t n, ws_msg_t *msg)
{
    uint8_t op = r->_msg_op, compressed = r->_msg_compressed;
    r->_msg_op = 0;
    r->_msg_compressed = 0;
    r->_msg_size = 0;
    if (compressed) {
        uint64_t max = r->_max;
        size_t limit = max > SIZE_MAX ? SIZE_MAX : (size_t)max;
        r->_inflated.len = 0;
        r->_release |= REL_INFLATED;
        int rc = ws_inflate(r->_inflater, p, n, r->_inflate_reset, &r->_inflated, limit);
        if (rc != WS_OK) return rc < 0 ? rc : WS_E_INFLATE;
        if (r->_inflated.len > limit) return WS_E_INFLATE_TOO_BIG;
        p = r->_inflated.data;
        n = r->_inflated.len;
        if (op == WS_OP_TEXT && !ws_utf8_is_valid(p, n)) return WS_E_UTF8;
    } else if (op == WS_OP_TEXT && r->_utf8 != WS_UTF8_ACCEPT) {
        return WS_E_UTF8;                       /* ends inside a code point */
    }
    r->_utf8 = WS_UTF8_ACCEPT;
    msg->type = (ws_msg_type_t)op;
    msg->data = p ? p : ws_empty;
    msg->len = n;
    msg->close_code = 0;
    msg->compressed = compressed;
    return 1;
}

/* The payload of a data frame. */
static int ws_read_data(ws_reader_t *r, uint8_t *p, size_t avail, size_t *used,
                        ws_msg_t *msg)
{
    int utf8 = r->_msg_op == WS_OP_TEXT && !r->_msg_compressed;
    uint64_t left = r->_frame_left;
    int rc;
    *used = 0;
    if (r->_frame_fin && r->_msg_size == 0 && avail >= left) {
        /* The whole message is here (nothing of it was buffered): zero copy. */
        if ((rc = ws_unmask_check(r, p, (size_t)left, utf8)) < 0) return rc;
        *used = (size_t)left;
        r->_frame_left = 0;
        r->_state = ST_HDR;
        return ws_emit_message(r, p, (size_t)left, msg);
    }
    size_t take = avail < left ? avail : (size_t)left;
    if ((rc = ws_unmask_check(r, p, take, utf8)) < 0) return rc;
    ws_buf_append(&r->_msg, p, take);
    *used = take;
    r->_frame_done += take;
    r->_frame_left -= take;
    r->_msg_size += take;
    if (r->_frame_left) return 0;
    r->_state = ST_HDR;
    if (!r->_frame_fin) return 0;
    r->_release |= REL_MSG;
    return ws_emit_message(r, r->_msg.data, r->_msg.len, msg);
}

int ws_reader_feed(ws_reader_t *r, uint8_t *in, size_t len, size_t *consumed,
                   ws_msg_t *msg)
{
    *consumed = 0;
    if (r->_err) return r->_err;
    if (r->_release) ws_reader_release(r);
    if (r->_closed || len == 0) {
        *consumed = len;
        return 0;
    }
    size_t pos = 0, used;
    int rc;
    for (;;) {
        if (r->_state == ST_HDR) {
            if (pos == len) break;
            rc = ws_read_header(r, in + pos, len - pos, &used);
            pos += used;
            if (rc == WS_E_WANT_MORE) break;
            if (rc < 0) goto fail;
        }
        if (WS_OP_IS_CONTROL(r->_frame_op))
            rc = ws_read_control(r, in + pos, len - pos, &used, msg);
        else
            rc = ws_read_data(r, in + pos, len - pos, &used, msg);
        pos += used;
        if (rc < 0) goto fail;
        if (rc > 0) {
            *consumed = pos;
            return rc;
        }
        if (r->_state == ST_PAYLOAD) break;     /* frame continues in a later feed */
    }
    *consumed = pos;
    return 0;
fail:
    *consumed = pos;
    r->_err = rc;
    return rc;
}

size_t ws_reader_heap_bytes(const ws_reader_t *r)
{
    return r->_msg.cap + r->_inflated.cap + (r->_ctrl ? WS_CONTROL_MAX : 0);
}

void ws_reader_free(ws_reader_t *r)
{
    ws_buf_free(&r->_msg);
    ws_buf_free(&r->_inflated);
    ws_xfree(r->_ctrl);
    r->_ctrl = NULL;
    r->_release = 0;
}

size_t ws_close_reply(uint8_t *out, uint16_t received_code)
{
    if (received_code == WS_CLOSE_NO_STATUS) return ws_frame_write_close(out, 0, NULL, 0);
    return ws_frame_write_close(out, received_code, NULL, 0);
}
