/* ws_deflate.c — permessage-deflate (RFC 7692): offer negotiation and the
 * raw-DEFLATE inflater/deflater used per message (see ws_deflate.h).
 *
 * zlib is used in raw mode (negative windowBits).  zlib 1.2.13 refuses a raw
 * deflate stream with windowBits 8 (deflateInit2 returns Z_STREAM_ERROR; for
 * the zlib wrapper it silently uses 9), so window 8 is served with 9 in both
 * directions: inflating with a bigger window than the peer used is always
 * fine, and deflating for a peer that allows only 256 bytes is done with
 * Z_HUFFMAN_ONLY, which emits no back-references at all.
 *
 * zlib's memory goes through ws_zalloc(): ws_xmalloc() (abort on OOM, so
 * Z_MEM_ERROR never happens) and a per-stream byte counter.  Measured with
 * that counter on zlib 1.2.13 (tests/unit/test_deflate.c checks it):
 *   inflate: 7,160 bytes of state at ws_inflater_new(), plus a 2^W window
 *            allocated lazily by the first inflate() that produces output
 *            (W=15: 39,928 bytes; W=8/9: 7,672).  inflateReset keeps it.
 *   deflate: 5,952 bytes of state + 2^(W+2) (window and prev chain) +
 *            2^(memLevel+9) (hash heads and pending/symbol buffer), all at
 *            ws_deflater_new(): W=15, memLevel 8: 268,096 bytes;
 *            W=8/9, memLevel 8: 139,072 (memLevel dominates small windows).
 */
#include "ws_deflate.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "ws_status.h"

/* Output is produced in steps of this size, so a deflate bomb is stopped
 * after at most limit + one step of memory. */
#define WS_INFLATE_STEP (16u * 1024u)

/* RFC 7692 §7.2.1/§7.2.2: the end of a sync flush, removed by the sender,
 * appended by the receiver. */
static const uint8_t ws_pmd_tail[4] = { 0x00, 0x00, 0xff, 0xff };

struct ws_inflater {
    z_stream z;
    int      window_bits; /* as zlib sees it: 9..15 */
    size_t   zmem;        /* bytes zlib allocated for this stream */
};

struct ws_deflater {
    z_stream z;
    int      window_bits; /* as zlib sees it: 9..15 */
    size_t   zmem;
};

static voidpf ws_zalloc(voidpf opaque, uInt items, uInt size)
{
    size_t n = (size_t)items * size;
    *(size_t *)opaque += n;
    return ws_xmalloc(n);
}

static void ws_zfree(voidpf opaque, voidpf p)
{
    (void)opaque;
    ws_xfree(p);
}

/* ---- negotiation --------------------------------------------------------- */

void ws_pmd_policy_default(ws_pmd_policy_t *pol)
{
    if (!pol) return;
    pol->enable = 1;
    pol->allow_server_context_takeover = 0;
    pol->allow_client_context_takeover = 0;
    pol->server_max_window_bits = 15;
    pol->client_max_window_bits = 15;
}

/* RFC 7230 §3.2.6 tchar. */
static int ws_is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

typedef struct ws_pmd_cur {
    const char *p;
    const char *end;
} ws_pmd_cur_t;

static void ws_pmd_skip_ows(ws_pmd_cur_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t')) c->p++;
}

static size_t ws_pmd_token(ws_pmd_cur_t *c, const char **start)
{
    *start = c->p;
    while (c->p < c->end && ws_is_tchar((unsigned char)*c->p)) c->p++;
    return (size_t)(c->p - *start);
}

/* The unquoted value of one parameter.  Only short values matter to us (a
 * window size), so longer ones are kept as "too long" rather than copied. */
typedef struct ws_pmd_value {
    char   buf[8];
    size_t len;
    int    too_long;
    int    quoted;
} ws_pmd_value_t;

static void ws_pmd_value_put(ws_pmd_value_t *v, char ch)
{
    if (v->len < sizeof v->buf) v->buf[v->len] = ch;
    else v->too_long = 1;
    v->len++;
}

/* token / quoted-string (RFC 7230 §3.2.6).  Returns 0, or -1 on a syntax
 * error. */
static int ws_pmd_value(ws_pmd_cur_t *c, ws_pmd_value_t *v)
{
    memset(v, 0, sizeof *v);
    if (c->p < c->end && *c->p == '"') {
        v->quoted = 1;
        c->p++;
        while (c->p < c->end) {
            unsigned char ch = (unsigned char)*c->p++;
            if (ch == '"') return 0;
            if (ch == '\\') {
                if (c->p == c->end) return -1;
                ch = (unsigned char)*c->p++;
                if (ch != '\t' && (ch < 0x20 || ch == 0x7f)) return -1; /* quoted-pair */
            } else if (ch != '\t' && (ch < 0x20 || ch == 0x7f)) {
                return -1;                                           /* qdtext */
            }
            ws_pmd_value_put(v, (char)ch);
        }
        return -1;                                                   /* unterminated */
    }
    const char *s;
    size_t n = ws_pmd_token(c, &s);
    if (n == 0) return -1;
    for (size_t i = 0; i < n; i++) ws_pmd_value_put(v, s[i]);
    return 0;
}

/* RFC 7692 §7.1.2: a decimal integer 8..15 without leading zeroes; after
 * unquoting a quoted value must still be a token (§7.1), which digits are. */
static int ws_pmd_window_bits(const ws_pmd_value_t *v)
{
    if (v->too_long || v->len == 0 || v->len > 2 || v->buf[0] == '0') return -1;
    int n = 0;
    for (size_t i = 0; i < v->len; i++) {
        if (v->buf[i] < '0' || v->buf[i] > '9') return -1;
        n = n * 10 + (v->buf[i] - '0');
    }
    return n >= 8 && n <= 15 ? n : -1;
}

/* What one permessage-deflate offer asked for. */
typedef struct ws_pmd_offer {
    int bad;                /* malformed: decline this offer */
    int server_no_ctx;
    int client_no_ctx;
    int server_bits;        /* 0: not offered */
    int client_bits_seen;   /* client_max_window_bits present */
    int client_bits;        /* its value, 0: valueless */
} ws_pmd_offer_t;

static int ws_pmd_name_is(const char *s, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

static void ws_pmd_param(ws_pmd_offer_t *o, const char *name, size_t n,
                         int has_value, const ws_pmd_value_t *v)
{
    if (ws_pmd_name_is(name, n, "server_no_context_takeover")) {
        if (has_value || o->server_no_ctx) o->bad = 1;
        o->server_no_ctx = 1;
    } else if (ws_pmd_name_is(name, n, "client_no_context_takeover")) {
        if (has_value || o->client_no_ctx) o->bad = 1;
        o->client_no_ctx = 1;
    } else if (ws_pmd_name_is(name, n, "server_max_window_bits")) {
        int bits = has_value ? ws_pmd_window_bits(v) : -1;
        if (bits < 0 || o->server_bits) o->bad = 1;
        o->server_bits = bits < 0 ? 15 : bits;
    } else if (ws_pmd_name_is(name, n, "client_max_window_bits")) {
        int bits = has_value ? ws_pmd_window_bits(v) : 0;
        if (bits < 0 || o->client_bits_seen) o->bad = 1;
        o->client_bits_seen = 1;
        o->client_bits = bits < 0 ? 0 : bits;
    } else {
        o->bad = 1;                                 /* RFC 7692 §5.1: unknown parameter */
    }
}

/* Parses one extension (name and parameters) up to the next ',' or the end.
 * Returns 0, or -1 on a syntax error. */
static int ws_pmd_extension(ws_pmd_cur_t *c, int *is_pmd, ws_pmd_offer_t *o)
{
    const char *name;
    size_t n = ws_pmd_token(c, &name);
    if (n == 0) return -1;
    *is_pmd = ws_pmd_name_is(name, n, "permessage-deflate");
    memset(o, 0, sizeof *o);
    for (;;) {
        ws_pmd_skip_ows(c);
        if (c->p == c->end || *c->p == ',') return 0;
        if (*c->p != ';') return -1;
        c->p++;
        ws_pmd_skip_ows(c);
        const char *pname;
        size_t pn = ws_pmd_token(c, &pname);
        if (pn == 0) return -1;
        ws_pmd_skip_ows(c);
        ws_pmd_value_t v;
        int has_value = 0;
        if (c->p < c->end && *c->p == '=') {
            c->p++;
            ws_pmd_skip_ows(c);
            if (ws_pmd_value(c, &v) != 0) return -1;
            has_value = 1;
        }
        if (*is_pmd) ws_pmd_param(o, pname, pn, has_value, &v);
    }
}

/* After a syntax error: skip to the ',' that ends the broken extension,
 * honouring quoted-strings from its start.  Returns 0, or -1 at the end. */
static int ws_pmd_resync(ws_pmd_cur_t *c, const char *start)
{
    int quoted = 0;
    for (c->p = start; c->p < c->end; c->p++) {
        if (quoted) {
            if (*c->p == '\\' && c->p + 1 < c->end) c->p++;
            else if (*c->p == '"') quoted = 0;
        } else if (*c->p == '"') {
            quoted = 1;
        } else if (*c->p == ',') {
            return 0;
        }
    }
    return -1;
}

static int ws_pmd_policy_ok(const ws_pmd_policy_t *pol)
{
    return pol->server_max_window_bits >= 8 && pol->server_max_window_bits <= 15 &&
           pol->client_max_window_bits >= 8 && pol->client_max_window_bits <= 15;
}

/* RFC 7692 §7.1.1, §7.1.2: the response to an acceptable offer. */
static void ws_pmd_accept(const ws_pmd_offer_t *o, const ws_pmd_policy_t *pol,
                          ws_pmd_params_t *out)
{
    memset(out, 0, sizeof *out);
    out->server_no_context_takeover =
        o->server_no_ctx || !pol->allow_server_context_takeover;
    /* A server may answer client_no_context_takeover unasked (§7.1.1.2). */
    out->client_no_context_takeover =
        o->client_no_ctx || !pol->allow_client_context_takeover;
    int sbits = o->server_bits ? o->server_bits : 15;
    if (pol->server_max_window_bits < sbits) sbits = pol->server_max_window_bits;
    out->server_max_window_bits = (uint8_t)sbits;
    /* Must echo a requested limit (§7.1.2.1); may state one unasked. */
    out->server_max_window_bits_sent = o->server_bits != 0 || sbits < 15;
    /* Only when offered (§7.1.2.2); otherwise the client deflates with up
     * to 15 bits whatever our policy would prefer. */
    int cbits = 15;
    if (o->client_bits_seen) {
        cbits = o->client_bits ? o->client_bits : 15;
        if (pol->client_max_window_bits < cbits) cbits = pol->client_max_window_bits;
        out->client_max_window_bits_sent = 1;
    }
    out->client_max_window_bits = (uint8_t)cbits;
}

int ws_pmd_negotiate(const char *value, size_t len, const ws_pmd_policy_t *pol,
                     ws_pmd_params_t *out)
{
    if ((!value && len) || !pol || !out) return WS_E_INVALID_ARG;
    if (!ws_pmd_policy_ok(pol)) return WS_E_INVALID_ARG;
    if (!pol->enable || len == 0) return 0;
    ws_pmd_cur_t c = { value, value + len };
    for (;;) {
        /* 1#element allows empty elements and OWS (RFC 7230 §7). */
        while (c.p < c.end && (*c.p == ' ' || *c.p == '\t' || *c.p == ',')) c.p++;
        if (c.p == c.end) return 0;
        const char *start = c.p;
        int is_pmd = 0;
        ws_pmd_offer_t o;
        if (ws_pmd_extension(&c, &is_pmd, &o) != 0) {
            if (ws_pmd_resync(&c, start) != 0) return 0;
            continue;
        }
        if (is_pmd && !o.bad) {
            ws_pmd_accept(&o, pol, out);
            return 1;
        }
    }
}

int ws_pmd_format_response(const ws_pmd_params_t *p, char *out, size_t cap)
{
    if (!p || (!out && cap)) return WS_E_INVALID_ARG;
    if (p->server_max_window_bits < 8 || p->server_max_window_bits > 15 ||
        p->client_max_window_bits < 8 || p->client_max_window_bits > 15)
        return WS_E_INVALID_ARG;
    char tmp[160];
    size_t n = 0;
    n += (size_t)snprintf(tmp + n, sizeof tmp - n, "permessage-deflate");
    if (p->server_no_context_takeover)
        n += (size_t)snprintf(tmp + n, sizeof tmp - n, "; server_no_context_takeover");
    if (p->client_no_context_takeover)
        n += (size_t)snprintf(tmp + n, sizeof tmp - n, "; client_no_context_takeover");
    if (p->server_max_window_bits_sent)
        n += (size_t)snprintf(tmp + n, sizeof tmp - n, "; server_max_window_bits=%u",
                              (unsigned)p->server_max_window_bits);
    if (p->client_max_window_bits_sent)
        n += (size_t)snprintf(tmp + n, sizeof tmp - n, "; client_max_window_bits=%u",
                              (unsigned)p->client_max_window_bits);
    if (n + 1 > cap) return WS_E_NOSPACE;
    memcpy(out, tmp, n + 1);
    return (int)n;
}

/* ---- inflate ------------------------------------------------------------- */

ws_inflater_t *ws_inflater_new(int window_bits)
{
    if (window_bits < 8 || window_bits > 15) return NULL;
    ws_inflater_t *inf = ws_xcalloc(1, sizeof *inf);
    inf->window_bits = window_bits < 9 ? 9 : window_bits;
    inf->z.zalloc = ws_zalloc;
    inf->z.zfree = ws_zfree;
    inf->z.opaque = &inf->zmem;
    if (inflateInit2(&inf->z, -inf->window_bits) != Z_OK) {
        ws_xfree(inf);                              /* only a zlib/header mismatch */
        return NULL;
    }
    return inf;
}

void ws_inflater_free(ws_inflater_t *inf)
{
    if (!inf) return;
    inflateEnd(&inf->z);
    ws_xfree(inf);
}

/* Room for `step` bytes past out->len, growing by doubling but never past
 * `ceiling` (the most this call may need), so a bomb cannot make the buffer
 * twice the limit. */
static void ws_inflate_reserve(ws_buf_t *b, size_t step, size_t ceiling)
{
    if (b->cap - b->len >= step) return;
    size_t need = b->len + step;
    size_t cap = b->cap == 0 ? 1024 : (b->cap > SIZE_MAX / 2 ? SIZE_MAX : b->cap * 2);
    if (cap > ceiling) cap = ceiling;
    if (cap < need) cap = need;
    b->data = ws_xrealloc(b->data, cap);
    b->cap = cap;
}

/* A BFINAL block ended the DEFLATE stream (RFC 7692 §7.2.3.4).  Start a
 * new raw stream that keeps the LZ77 window, as if the stream had gone on:
 * the peer may still refer back to it.  inflateResetKeep() is zlib's
 * exported (since 1.2.5.2) but undocumented reset that leaves the window in
 * place; the documented inflateGetDictionary/inflateReset/
 * inflateSetDictionary would copy 2 x 2^W bytes per BFINAL block: a 2 MB
 * message of "03 00" (an empty final block) cost 0.54 s of CPU that way,
 * 0.02 s with inflateResetKeep (test_many_bfinal). */
static void ws_inflate_restart(ws_inflater_t *inf)
{
    inflateResetKeep(&inf->z);
}

/* Internal result: the stream ended exactly at the end of the message's
 * own bytes, so the appended tail must not be inflated. */
#define WS_INFLATE_ENDED 1

/* Inflates in[0..len) into *out (whose first `base` bytes are not ours).
 * `tail` marks the 00 00 ff ff we append. */
static int ws_inflate_run(ws_inflater_t *inf, const uint8_t *in, size_t len, int tail,
                          ws_buf_t *out, size_t base, size_t limit)
{
    z_stream *z = &inf->z;
    size_t ceiling = limit > SIZE_MAX - base - 1 ? SIZE_MAX : base + limit + 1;
    z->avail_in = 0;
    for (;;) {
        if (z->avail_in == 0 && len > 0) {
            size_t chunk = len > UINT_MAX ? UINT_MAX : len;
            z->next_in = (Bytef *)(uintptr_t)in;
            z->avail_in = (uInt)chunk;
            in += chunk;
            len -= chunk;
        }
        size_t room = limit - (out->len - base);    /* out->len - base <= limit here */
        size_t step = room >= WS_INFLATE_STEP ? WS_INFLATE_STEP : room + 1;
        ws_inflate_reserve(out, step, ceiling);
        z->next_out = out->data + out->len;
        z->avail_out = (uInt)step;
        int zr = inflate(z, Z_SYNC_FLUSH);
        out->len += step - z->avail_out;
        if (out->len - base > limit) return WS_E_INFLATE_TOO_BIG;
        switch (zr) {
        case Z_OK:
            break;
        case Z_BUF_ERROR:                           /* no progress: input used up */
            if (z->avail_in == 0 && len == 0) return WS_OK;
            return WS_E_INFLATE;
        case Z_STREAM_END:
            /* BFINAL block done.  Stop if the message's own bytes are used
             * up (the rest of our tail, if any, is not inflated). */
            if (tail || (z->avail_in == 0 && len == 0)) return WS_INFLATE_ENDED;
            ws_inflate_restart(inf);
            continue;
        default:                                    /* Z_DATA_ERROR, Z_NEED_DICT */
            return WS_E_INFLATE;
        }
        if (z->avail_in == 0 && len == 0 && z->avail_out != 0) return WS_OK;
    }
}

int ws_inflate(ws_inflater_t *inf, const uint8_t *in, size_t len, int reset,
               ws_buf_t *out, size_t limit)
{
    if (!inf || !out || (!in && len)) return WS_E_INVALID_ARG;
    size_t base = out->len;
    if (len == 0) {
        /* No DEFLATE data at all.  RFC 7692 wants at least the 0x00 of an
         * empty stored block (§7.2.3.6), and the bare tail would leave the
         * stream inside a stored-block header; but some senders (zlib's
         * flush after an earlier flush returns nothing) send an empty
         * payload for an empty message: take it as empty, window intact. */
        if (reset) inflateReset(&inf->z);
        return WS_OK;
    }
    int rc = ws_inflate_run(inf, in, len, 0, out, base, limit);
    if (rc == WS_OK) {
        rc = ws_inflate_run(inf, ws_pmd_tail, sizeof ws_pmd_tail, 1, out, base, limit);
        /* After the tail the stream must sit at a block boundary; anything
         * else is a message cut short (the tail was eaten as data). */
        if (rc == WS_OK && !(inf->z.data_type & 128)) rc = WS_E_INFLATE;
    }
    if (rc == WS_INFLATE_ENDED) {                   /* the stream is finished */
        rc = WS_OK;
        if (!reset) ws_inflate_restart(inf);
    }
    if (rc != WS_OK || reset) inflateReset(&inf->z);
    return rc;
}

/* ---- deflate ------------------------------------------------------------- */

ws_deflater_t *ws_deflater_new(int window_bits, int level, int mem_level)
{
    if (window_bits < 8 || window_bits > 15) return NULL;
    if (level != -1 && (level < 1 || level > 9)) return NULL;
    if (mem_level < 1 || mem_level > 9) return NULL;
    ws_deflater_t *def = ws_xcalloc(1, sizeof *def);
    def->window_bits = window_bits < 9 ? 9 : window_bits;
    def->z.zalloc = ws_zalloc;
    def->z.zfree = ws_zfree;
    def->z.opaque = &def->zmem;
    int strategy = window_bits == 8 ? Z_HUFFMAN_ONLY : Z_DEFAULT_STRATEGY;
    if (deflateInit2(&def->z, level, Z_DEFLATED, -def->window_bits, mem_level,
                     strategy) != Z_OK) {
        ws_xfree(def);
        return NULL;
    }
    return def;
}

void ws_deflater_free(ws_deflater_t *def)
{
    if (!def) return;
    deflateEnd(&def->z);
    ws_xfree(def);
}

static int ws_deflate_run(ws_deflater_t *def, const uint8_t *in, size_t len, ws_buf_t *out)
{
    z_stream *z = &def->z;
    size_t want = deflateBound(z, len > UINT_MAX ? UINT_MAX : (uLong)len) + 16;
    z->avail_in = 0;
    for (;;) {
        if (z->avail_in == 0 && len > 0) {
            size_t chunk = len > UINT_MAX ? UINT_MAX : len;
            z->next_in = (Bytef *)(uintptr_t)in;
            z->avail_in = (uInt)chunk;
            in += chunk;
            len -= chunk;
        }
        int flush = len == 0 ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        ws_buf_reserve(out, want);
        size_t avail = out->cap - out->len;
        if (avail > UINT_MAX) avail = UINT_MAX;
        z->next_out = out->data + out->len;
        z->avail_out = (uInt)avail;
        int zr = deflate(z, flush);
        out->len += avail - z->avail_out;
        if (zr == Z_STREAM_ERROR) return WS_E_DEFLATE;
        /* Z_BUF_ERROR: nothing left to do for this flush. */
        if (flush == Z_SYNC_FLUSH && z->avail_in == 0 &&
            (z->avail_out != 0 || zr == Z_BUF_ERROR))
            return WS_OK;
        want = 1024;
    }
}

int ws_deflate(ws_deflater_t *def, const uint8_t *in, size_t len, int reset,
               ws_buf_t *out)
{
    if (!def || !out || (!in && len)) return WS_E_INVALID_ARG;
    size_t base = out->len;
    int rc = WS_OK;
    if (len == 0) {
        /* An empty stored block (RFC 7692 §7.2.3.6), which inflates to
         * nothing in any context.  zlib itself would give the same 00 from
         * a fresh stream, but Z_BUF_ERROR and no bytes right after an
         * earlier sync flush. */
        static const uint8_t empty = 0x00;
        ws_buf_append(out, &empty, 1);
    } else {
        rc = ws_deflate_run(def, in, len, out);
        if (rc == WS_OK) {
            if (out->len - base < sizeof ws_pmd_tail ||
                memcmp(out->data + out->len - sizeof ws_pmd_tail, ws_pmd_tail,
                       sizeof ws_pmd_tail) != 0)
                rc = WS_E_DEFLATE;
            else
                out->len -= sizeof ws_pmd_tail;
        }
    }
    if (rc != WS_OK) out->len = base;
    if (rc != WS_OK || reset) deflateReset(&def->z);
    return rc;
}
