/* fuzz_envelope.c — libFuzzer target for the envelope decoder and encoders.
 *
 * Decodes the input, then checks what must always hold, abort()ing if not:
 *   - decode agrees with json_scan_document() on the whole input (bad_json
 *     <-> syntax error at the same offset, too_deep <-> depth error);
 *   - whatever decoded, every reply built from it (delivery, ack, error,
 *     welcome) has exactly its announced size and is valid JSON to our own
 *     scanner;
 *   - a delivery carries `data` byte for byte and `event` as decoded.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "json_scan.h"

#define MUST(c) do { if (!(c)) abort(); } while (0)

/* Encodes into an exact-size heap block and checks it is JSON; returns the
 * block (caller frees) so a caller can look inside. */
static uint8_t *check_out(size_t size, size_t (*write_fn)(const void *, uint8_t *), const void *arg)
{
    uint8_t *dst = malloc(size ? size : 1);
    MUST(dst);
    MUST(write_fn(arg, dst) == size);
    MUST(json_scan_document(dst, size, NULL) == JSON_OK);
    return dst;
}

static size_t write_delivery(const void *arg, uint8_t *dst)
{
    return envelope_delivery_write(arg, dst);
}

static size_t write_ack(const void *arg, uint8_t *dst)
{
    return envelope_ack_write(*(const json_span_t *)arg, dst);
}

static size_t write_welcome(const void *arg, uint8_t *dst)
{
    return envelope_welcome_write(*(const json_span_t *)arg, 65536, dst);
}

struct err_args {
    json_span_t id;
    envelope_code_t code;
    const char *msg;
};

static size_t write_error(const void *arg, uint8_t *dst)
{
    const struct err_args *a = arg;
    return envelope_error_write(a->id, a->code, a->msg, dst);
}

/* The delivery's "event" and "data" members hold what was decoded. */
static void check_delivery(const envelope_delivery_t *d)
{
    size_t n = envelope_delivery_size(d);
    uint8_t *out = check_out(n, write_delivery, d);
    json_obj_iter_t it;
    json_member_t m;
    int seen = 0, r;
    MUST(json_obj_begin(&it, out, n) == JSON_OK);
    while ((r = json_obj_next(&it, &m)) > 0) {
        if (json_str_equal(m.key.p, m.key.len, (const uint8_t *)"data", 4)) {
            json_span_t want = d->data.len ? d->data : (json_span_t){ (const uint8_t *)"null", 4 };
            MUST(m.value.len == want.len && memcmp(m.value.p, want.p, want.len) == 0);
            seen |= 1;
        } else if (json_str_equal(m.key.p, m.key.len, (const uint8_t *)"event", 5)) {
            uint8_t buf[ENVELOPE_EVENT_NAME_MAX];
            size_t k = json_str_unescape(m.value.p + 1, m.value.len - 2, buf, sizeof buf);
            MUST(k == d->event.len && memcmp(buf, d->event.p, k) == 0);
            seen |= 2;
        }
    }
    MUST(r == 0 && seen == 3);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    envelope_msg_t msg;
    /* small limits on odd sizes reach the limit paths more often */
    envelope_limits_t lim = { size & 1 ? 8 : 0, size & 2 ? 4 : 0 };
    envelope_code_t c = envelope_decode(data, size, &lim, &msg);

    size_t off = 0;
    json_scan_err_t s = json_scan_document(data, size, &off);
    if (c == ENVELOPE_E_BAD_JSON) MUST(s == JSON_E_SYNTAX && off == msg.err_offset);
    else if (c == ENVELOPE_E_TOO_DEEP) MUST(s == JSON_E_DEPTH && off == msg.err_offset);
    else MUST(s == JSON_OK);
    MUST(c >= ENVELOPE_OK && c <= ENVELOPE_E_TOO_DEEP);
    if (msg.id.len) MUST(json_scan_document(msg.id.p, msg.id.len, NULL) == JSON_OK);

    /* the error reply, with the explained message and the id if kept */
    char why[160];
    struct err_args ea = { msg.id, c, envelope_explain(c, &msg, why, sizeof why) };
    free(check_out(envelope_error_size(ea.id, ea.code, ea.msg), write_error, &ea));

    if (c != ENVELOPE_OK) return 0;
    MUST(msg.op == ENVELOPE_OP_JOIN || msg.op == ENVELOPE_OP_LEAVE || msg.op == ENVELOPE_OP_EMIT);
    free(check_out(envelope_ack_size(msg.id), write_ack, &msg.id));

    if (msg.op == ENVELOPE_OP_EMIT) {
        MUST(json_scan_document(msg.data.p, msg.data.len, NULL) == JSON_OK);
        if (msg.to == ENVELOPE_TO_ROOM)
            MUST(envelope_room_valid(msg.to_name.p, msg.to_name.len, lim.max_room_name));
        if (msg.to == ENVELOPE_TO_CONN) {
            MUST(envelope_conn_id_valid(msg.to_name.p, msg.to_name.len));
            /* a conn id that passed is a fine welcome, too */
            free(check_out(envelope_welcome_size(msg.to_name, 65536), write_welcome, &msg.to_name));
        }
        envelope_delivery_t d = { msg.event, msg.data, { (const uint8_t *)"c-1", 3 }, msg.to, msg.to_name };
        check_delivery(&d);
        d.from.len = 0;  /* from a backend */
        d.to = ENVELOPE_TO_BACKEND;
        check_delivery(&d);
    } else {
        MUST(envelope_room_valid(msg.room.p, msg.room.len, lim.max_room_name));
    }
    return 0;
}
