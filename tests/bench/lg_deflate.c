/* lg_deflate.c — see lg_deflate.h. */
#include "lg_deflate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws_status.h"
#include "ws_utf8.h"

/* ws_inflate() wants this much room past what it has produced before each
 * step (WS_INFLATE_STEP in proto/ws_deflate.c): a slot sized for it never
 * grows for messages of the expected size. */
#define LG_INFLATE_ROOM (16u * 1024u + 256u)

static const uint8_t lg_empty[1];

/* ---- the answer ---------------------------------------------------------------- */

static int lg_is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static const char *lg_token_end(const char *s, const char *end)
{
    while (s < end && lg_is_tchar((unsigned char)*s)) s++;
    return s;
}

static const char *lg_skip_ows(const char *s, const char *end)
{
    while (s < end && (*s == ' ' || *s == '\t')) s++;
    return s;
}

static int lg_is(const char *s, const char *e, const char *lit)
{
    return (size_t)(e - s) == strlen(lit) && memcmp(s, lit, (size_t)(e - s)) == 0;
}

/* A parameter value, token or quoted-string, unquoted into val (at most
 * cap-1 characters: longer ones are cut and then fail the range check).
 * Returns the end, or NULL on a syntax error. */
static const char *lg_value(const char *s, const char *end, char *val, size_t cap)
{
    size_t n = 0;
    if (s < end && *s == '"') {
        for (s++; s < end && *s != '"'; s++) {
            if (*s == '\\' && ++s == end) return NULL;
            if (n + 1 < cap) val[n++] = *s;
        }
        if (s == end) return NULL;
        s++;
    } else {
        const char *t = lg_token_end(s, end);
        if (t == s) return NULL;
        for (; s < t; s++) if (n + 1 < cap) val[n++] = *s;
    }
    val[n] = '\0';
    return s;
}

#define LG_FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

int lg_pmd_parse_answer(const char *v, size_t n, lg_pmd_params_t *p, char *err, size_t errlen)
{
    const char *s = v, *end = v + n;
    int extensions = 0, smwb = 0;
    memset(p, 0, sizeof *p);
    p->server_max_window_bits = 15;
    for (;;) {
        while (s < end && (*s == ' ' || *s == '\t' || *s == ',')) s++;   /* 1#element */
        if (s == end) break;
        const char *name = s;
        s = lg_token_end(s, end);
        if (s == name) LG_FAIL("malformed Sec-WebSocket-Extensions: %.*s", (int)n, v);
        if (++extensions > 1) LG_FAIL("server accepted more than one extension: %.*s", (int)n, v);
        if (!lg_is(name, s, "permessage-deflate"))
            LG_FAIL("server accepted an extension we did not offer: %.*s", (int)n, v);
        for (;;) {
            s = lg_skip_ows(s, end);
            if (s == end || *s == ',') break;
            if (*s != ';') LG_FAIL("malformed Sec-WebSocket-Extensions: %.*s", (int)n, v);
            s = lg_skip_ows(s + 1, end);
            const char *pn = s;
            s = lg_token_end(s, end);
            const char *pe = s;
            if (pn == pe) LG_FAIL("malformed Sec-WebSocket-Extensions: %.*s", (int)n, v);
            s = lg_skip_ows(s, end);
            char val[8];
            int has_value = 0;
            if (s < end && *s == '=') {
                s = lg_value(lg_skip_ows(s + 1, end), end, val, sizeof val);
                if (!s) LG_FAIL("malformed Sec-WebSocket-Extensions: %.*s", (int)n, v);
                has_value = 1;
            }
            if (lg_is(pn, pe, "server_no_context_takeover")) {
                if (has_value || p->server_no_context_takeover)
                    LG_FAIL("bad server_no_context_takeover in the answer: %.*s", (int)n, v);
                p->server_no_context_takeover = 1;
            } else if (lg_is(pn, pe, "client_no_context_takeover")) {
                if (has_value || p->client_no_context_takeover)
                    LG_FAIL("bad client_no_context_takeover in the answer: %.*s", (int)n, v);
                p->client_no_context_takeover = 1;
            } else if (lg_is(pn, pe, "server_max_window_bits")) {
                /* RFC 7692 §7.1.2.1: 8..15, no leading zero; a server may
                 * state it unasked. */
                int ok = has_value && !smwb && val[0] >= '1' && val[0] <= '9' &&
                         (val[1] == '\0' || (val[1] >= '0' && val[1] <= '9' && val[2] == '\0'));
                int bits = ok ? atoi(val) : 0;
                if (bits < 8 || bits > 15)
                    LG_FAIL("bad server_max_window_bits in the answer: %.*s", (int)n, v);
                smwb = 1;
                p->server_max_window_bits = (uint8_t)bits;
                p->server_max_window_bits_sent = 1;
            } else if (lg_is(pn, pe, "client_max_window_bits")) {
                /* §7.1.2.2: only in answer to an offer that had it. */
                LG_FAIL("server answered client_max_window_bits, which we did not offer: %.*s", (int)n, v);
            } else {
                LG_FAIL("unknown permessage-deflate parameter in the answer: %.*s", (int)n, v);
            }
        }
    }
    if (!extensions) LG_FAIL("empty Sec-WebSocket-Extensions in the answer");
    return 0;
}

void lg_pmd_describe(const lg_pmd_params_t *p, char *out, size_t cap)
{
    snprintf(out, cap, "permessage-deflate%s%s", p->server_no_context_takeover ? ";server_no_context_takeover" : "",
             p->client_no_context_takeover ? ";client_no_context_takeover" : "");
    if (p->server_max_window_bits_sent) {
        size_t l = strlen(out);
        snprintf(out + l, cap - l, ";server_max_window_bits=%u", (unsigned)p->server_max_window_bits);
    }
}

/* ---- inflating ------------------------------------------------------------------ */

void lg_pmd_init(lg_pmd_t *d, int offered, size_t size_hint, size_t distinct_hint)
{
    memset(d, 0, sizeof *d);
    d->offered = offered;
    d->size_hint = size_hint + 256;            /* the envelope around --size bytes of data */
    /* Eight slots per payload expected in play, a power of two, and no
     * more than LG_PMD_CACHE_BYTES of slot buffers. */
    size_t per_slot = sizeof(lg_pmd_slot_t) + sizeof(uint64_t) + d->size_hint + d->size_hint / 2 + 64;
    d->n_slots = LG_PMD_MIN_SLOTS;
    while (d->n_slots < 8 * distinct_hint && d->n_slots < LG_PMD_MAX_SLOTS &&
           2 * d->n_slots * per_slot <= LG_PMD_CACHE_BYTES)
        d->n_slots *= 2;
}

int lg_pmd_agree(lg_pmd_t *d, const lg_pmd_params_t *p)
{
    if (d->agreed) return memcmp(&d->params, p, sizeof *p) == 0 ? 0 : -1;
    d->agreed = 1;
    d->params = *p;
    ws_buf_reserve(&d->scratch, d->size_hint + LG_INFLATE_ROOM);
    if (p->server_no_context_takeover) {
        d->shared = ws_inflater_new(15);
        d->slots = ws_xcalloc(d->n_slots, sizeof *d->slots);
        d->hashes = ws_xcalloc(d->n_slots, sizeof *d->hashes);
        for (size_t i = 0; i < d->n_slots; i++) {
            /* Compressed text is smaller; a slot whose guess was short
             * grows once. */
            ws_buf_reserve(&d->slots[i].in, d->size_hint / 2 + 64);
            ws_buf_reserve(&d->slots[i].out, d->size_hint);
        }
    } else {
        d->n_slots = 0;
    }
    return 0;
}

/* Cheap and good enough to spread compressed payloads over the sets: a
 * word at a time, a multiply and a shift per word. */
static uint64_t lg_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n, w;
    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 29);
}

/* Inflates into the scratch buffer and checks the text. */
static int lg_pmd_run(lg_pmd_t *d, ws_inflater_t *inf, int reset, const uint8_t *in, size_t n,
                      size_t limit)
{
    ws_buf_t *out = &d->scratch;
    out->len = 0;
    int rc = ws_inflate(inf, in, n, reset, out, limit);
    if (rc != WS_OK) return rc < 0 ? rc : WS_E_INFLATE;
    if (out->len > limit) return WS_E_INFLATE_TOO_BIG;
    if (!ws_utf8_is_valid(out->data ? out->data : lg_empty, out->len)) return WS_E_UTF8;
    return WS_OK;
}

/* The slot holding in[0..n), or NULL; *victim the one to refill on a miss.
 * LG_PMD_WAYS-way set-associative, least recently used out: a fan-out with
 * a window of W messages has about W different payloads in play, and a
 * direct-mapped table would make every subscriber miss on each pair of
 * them that collides.  A set's hashes share a cache line. */
static lg_pmd_slot_t *lg_pmd_lookup(lg_pmd_t *d, uint64_t h, const uint8_t *in, size_t n,
                                    lg_pmd_slot_t **victim)
{
    size_t base = (size_t)(h >> 7) % (d->n_slots / LG_PMD_WAYS) * LG_PMD_WAYS;
    const uint64_t *hs = d->hashes + base;
    lg_pmd_slot_t *set = d->slots + base;
    for (size_t w = 0; w < LG_PMD_WAYS; w++) {
        lg_pmd_slot_t *t = &set[w];
        if (hs[w] == h && t->in.len == n && memcmp(t->in.data, in, n) == 0) return t;
    }
    *victim = set;
    for (size_t w = 1; w < LG_PMD_WAYS; w++)
        if (set[w].used < (*victim)->used) *victim = &set[w];
    return NULL;
}

int lg_pmd_inflate(lg_pmd_t *d, ws_inflater_t *inf, const uint8_t *in, size_t n, size_t limit,
                   const uint8_t **out, size_t *outlen)
{
    const ws_buf_t *res = &d->scratch;
    int rc = WS_OK;
    d->compressed++;
    if (inf || !d->slots || n == 0) {
        /* A stream of the connection's own (context takeover), or nothing
         * worth caching: inflate every time. */
        d->misses++;
        rc = lg_pmd_run(d, inf ? inf : d->shared, !inf, in, n, limit);
    } else {
        uint64_t h = lg_hash(in, n);
        lg_pmd_slot_t *victim, *s = lg_pmd_lookup(d, h, in, n, &victim);
        if (s) {
            d->hits++;
        } else {
            d->misses++;
            s = victim;
            s->in.len = s->out.len = 0;          /* empty until the inflate succeeded */
            rc = lg_pmd_run(d, d->shared, 1, in, n, limit);
            if (rc == WS_OK) {
                ws_buf_append(&s->in, in, n);
                ws_buf_append(&s->out, d->scratch.data, d->scratch.len);
                d->hashes[s - d->slots] = h;
            }
        }
        s->used = ++d->tick;
        if (rc == WS_OK) res = &s->out;
    }
    *out = res->data ? res->data : lg_empty;
    *outlen = res->len;
    return rc;
}

void lg_pmd_free(lg_pmd_t *d)
{
    if (d->slots) {
        for (size_t i = 0; i < d->n_slots; i++) {
            ws_buf_free(&d->slots[i].in);
            ws_buf_free(&d->slots[i].out);
        }
        ws_xfree(d->slots);
        ws_xfree(d->hashes);
    }
    ws_inflater_free(d->shared);
    ws_buf_free(&d->scratch);
    memset(d, 0, sizeof *d);
}
