/* json_scan.c — strict RFC 8259 scanner (see json_scan.h for the rules). */
#include "json_scan.h"

#include <string.h>

#if JSON_SCAN_MAX_DEPTH > 64
#error "the container stack is a uint64_t bit set"
#endif

static inline int is_ws(uint8_t c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static inline size_t skip_ws(const uint8_t *s, size_t len, size_t i)
{
    while (i < len && is_ws(s[i])) i++;
    return i;
}

static inline int is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static inline int hex_val(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The four hex digits at s[i..i+4) as a code unit, or -1 with *bad set to
 * the first offending offset (len when the input ends first). */
static long hex4(const uint8_t *s, size_t len, size_t i, size_t *bad)
{
    long v = 0;
    for (size_t k = 0; k < 4; k++) {
        if (i + k >= len) { *bad = len; return -1; }
        int h = hex_val(s[i + k]);
        if (h < 0) { *bad = i + k; return -1; }
        v = v << 4 | h;
    }
    return v;
}

/* s[i] is the opening quote.  Returns 0 and *end just past the closing
 * quote, or -1 and *end at the error.  The loop skips plain bytes first
 * because escapes are rare in practice. */
static int scan_string(const uint8_t *s, size_t len, size_t i, size_t *end)
{
    i++;
    for (;;) {
        while (i < len && s[i] >= 0x20 && s[i] != '"' && s[i] != '\\') i++;
        if (i >= len) { *end = len; return -1; }
        if (s[i] == '"') { *end = i + 1; return 0; }
        if (s[i] < 0x20) { *end = i; return -1; }
        /* a backslash */
        if (i + 1 >= len) { *end = len; return -1; }
        switch (s[i + 1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            i += 2;
            continue;
        case 'u':
            break;
        default:
            *end = i + 1;
            return -1;
        }
        long u = hex4(s, len, i + 2, end);
        if (u < 0) return -1;
        if (u >= 0xDC00 && u <= 0xDFFF) { *end = i; return -1; }  /* lone low surrogate */
        size_t esc = i;
        i += 6;
        if (u >= 0xD800 && u <= 0xDBFF) {
            if (i + 1 >= len || s[i] != '\\' || s[i + 1] != 'u') { *end = esc; return -1; }
            long lo = hex4(s, len, i + 2, end);
            if (lo < 0) return -1;
            if (lo < 0xDC00 || lo > 0xDFFF) { *end = esc; return -1; }
            i += 6;
        }
    }
}

/* s[i] is '-' or a digit.  Returns 0 and *end just past the number, or -1
 * and *end at the error.  A leading zero ends the number, so "01" fails
 * in the caller, at the '1'. */
static int scan_number(const uint8_t *s, size_t len, size_t i, size_t *end)
{
    if (s[i] == '-') i++;
    if (i >= len || !is_digit(s[i])) { *end = i; return -1; }
    if (s[i] == '0') i++;
    else while (i < len && is_digit(s[i])) i++;
    if (i < len && s[i] == '.') {
        i++;
        if (i >= len || !is_digit(s[i])) { *end = i; return -1; }
        while (i < len && is_digit(s[i])) i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= len || !is_digit(s[i])) { *end = i; return -1; }
        while (i < len && is_digit(s[i])) i++;
    }
    *end = i;
    return 0;
}

static int scan_literal(const uint8_t *s, size_t len, size_t i, size_t *end)
{
    const char *lit = s[i] == 't' ? "true" : s[i] == 'f' ? "false" : "null";
    size_t n = strlen(lit);
    for (size_t k = 0; k < n; k++) {
        if (i + k >= len || s[i + k] != (uint8_t)lit[k]) {
            *end = i + k < len ? i + k : len;
            return -1;
        }
    }
    *end = i + n;
    return 0;
}

/* A table-like state machine: VALUE expects a value, KEY expects a member
 * name (and its colon), AFTER has just finished a value.  `open` has bit d
 * set when the container at relative level d is an object. */
json_scan_err_t json_scan_value(const uint8_t *s, size_t len, size_t *pos,
                                unsigned depth, json_span_t *value)
{
    uint64_t open = 0;
    unsigned d = 0;  /* containers opened by this call */
    size_t i = skip_ws(s, len, *pos), start = i, e;

value:
    if (i >= len) goto syntax;
    switch (s[i]) {
    case '{':
    case '[':
        if (depth + d >= JSON_SCAN_MAX_DEPTH) { *pos = i; return JSON_E_DEPTH; }
        if (s[i] == '{') open |= (uint64_t)1 << d;
        else open &= ~((uint64_t)1 << d);
        d++;
        i = skip_ws(s, len, i + 1);
        if (i < len && s[i] == (open >> (d - 1) & 1 ? '}' : ']')) {
            i++;
            d--;
            goto after;
        }
        if (open >> (d - 1) & 1) goto key;
        goto value;
    case '"':
        if (scan_string(s, len, i, &e) < 0) { i = e; goto syntax; }
        i = e;
        goto after;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        if (scan_number(s, len, i, &e) < 0) { i = e; goto syntax; }
        i = e;
        goto after;
    case 't': case 'f': case 'n':
        if (scan_literal(s, len, i, &e) < 0) { i = e; goto syntax; }
        i = e;
        goto after;
    default:
        goto syntax;
    }

key:
    if (i >= len || s[i] != '"') goto syntax;
    if (scan_string(s, len, i, &e) < 0) { i = e; goto syntax; }
    i = skip_ws(s, len, e);
    if (i >= len || s[i] != ':') goto syntax;
    i = skip_ws(s, len, i + 1);
    goto value;

after:
    if (d == 0) {
        value->p = s + start;
        value->len = i - start;
        *pos = i;
        return JSON_OK;
    }
    i = skip_ws(s, len, i);
    if (i >= len) goto syntax;
    if (s[i] == ',') {
        i = skip_ws(s, len, i + 1);
        if (open >> (d - 1) & 1) goto key;
        goto value;
    }
    if (s[i] == (open >> (d - 1) & 1 ? '}' : ']')) {
        i++;
        d--;
        goto after;
    }
    /* fall through to syntax */

syntax:
    *pos = i < len ? i : len;
    return JSON_E_SYNTAX;
}

json_scan_err_t json_scan_document(const uint8_t *s, size_t len, size_t *err_off)
{
    size_t pos = 0;
    json_span_t v;
    json_scan_err_t r = json_scan_value(s, len, &pos, 0, &v);
    if (r == JSON_OK) {
        pos = skip_ws(s, len, pos);
        if (pos == len) return JSON_OK;
        r = JSON_E_SYNTAX;
    }
    if (err_off) *err_off = pos;
    return r;
}

enum { OBJ_FIRST, OBJ_NEXT, OBJ_DONE, OBJ_FAILED };

static int obj_fail(json_obj_iter_t *it, size_t off, int err)
{
    it->_state = OBJ_FAILED;
    it->_err = err;
    it->err_off = off;
    return err;
}

json_scan_err_t json_obj_begin(json_obj_iter_t *it, const uint8_t *s, size_t len)
{
    size_t i = skip_ws(s, len, 0);
    it->_s = s;
    it->_len = len;
    it->_pos = 0;
    it->_err = JSON_OK;
    it->err_off = 0;
    if (i >= len || s[i] != '{') {
        obj_fail(it, i, JSON_E_NOT_OBJECT);
        return JSON_E_NOT_OBJECT;
    }
    it->_pos = i + 1;
    it->_state = OBJ_FIRST;
    return JSON_OK;
}

int json_obj_next(json_obj_iter_t *it, json_member_t *m)
{
    const uint8_t *s = it->_s;
    size_t len = it->_len, i, e;

    if (it->_state == OBJ_DONE) return 0;
    if (it->_state == OBJ_FAILED) return it->_err;
    i = skip_ws(s, len, it->_pos);
    if (i >= len) return obj_fail(it, len, JSON_E_SYNTAX);
    if (s[i] == '}') {
        /* only whitespace may follow the root object */
        i = skip_ws(s, len, i + 1);
        if (i != len) return obj_fail(it, i, JSON_E_SYNTAX);
        it->_state = OBJ_DONE;
        return 0;
    }
    if (it->_state == OBJ_NEXT) {
        if (s[i] != ',') return obj_fail(it, i, JSON_E_SYNTAX);
        i = skip_ws(s, len, i + 1);
    }
    if (i >= len || s[i] != '"') return obj_fail(it, i < len ? i : len, JSON_E_SYNTAX);
    if (scan_string(s, len, i, &e) < 0) return obj_fail(it, e, JSON_E_SYNTAX);
    m->key.p = s + i + 1;
    m->key.len = e - i - 2;
    i = skip_ws(s, len, e);
    if (i >= len || s[i] != ':') return obj_fail(it, i < len ? i : len, JSON_E_SYNTAX);
    i++;
    json_scan_err_t r = json_scan_value(s, len, &i, 1, &m->value);
    if (r != JSON_OK) return obj_fail(it, i, r);
    it->_pos = i;
    it->_state = OBJ_NEXT;
    return 1;
}

/* ---- string content -------------------------------------------------------- */

static size_t utf8_put(uint32_t cp, uint8_t out[4])
{
    if (cp < 0x80) { out[0] = (uint8_t)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the character at p[*i] into out (1..4 bytes) and advances *i. */
static size_t str_next(const uint8_t *p, size_t len, size_t *i, uint8_t out[4])
{
    size_t at = *i, bad;
    if (p[at] != '\\' || at + 1 >= len) { out[0] = p[at]; *i = at + 1; return 1; }
    static const uint8_t simple[][2] = {
        {'"', '"'}, {'\\', '\\'}, {'/', '/'}, {'b', '\b'},
        {'f', '\f'}, {'n', '\n'}, {'r', '\r'}, {'t', '\t'},
    };
    for (size_t k = 0; k < sizeof simple / sizeof simple[0]; k++) {
        if (p[at + 1] == simple[k][0]) { out[0] = simple[k][1]; *i = at + 2; return 1; }
    }
    long u = p[at + 1] == 'u' ? hex4(p, len, at + 2, &bad) : -1;
    if (u < 0) { out[0] = p[at]; *i = at + 1; return 1; }
    *i = at + 6;
    if (u >= 0xD800 && u <= 0xDBFF && *i + 1 < len && p[*i] == '\\' && p[*i + 1] == 'u') {
        long lo = hex4(p, len, *i + 2, &bad);
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
            *i += 6;
            return utf8_put(0x10000 + (((uint32_t)u - 0xD800) << 10) + ((uint32_t)lo - 0xDC00), out);
        }
    }
    return utf8_put((uint32_t)u, out);
}

/* A byte-at-a-time reader over decoded content, for comparisons. */
typedef struct str_reader {
    const uint8_t *p;
    size_t len, i;
    uint8_t buf[4];
    size_t n, k;
} str_reader_t;

static int reader_byte(str_reader_t *r)
{
    if (r->k < r->n) return r->buf[r->k++];
    if (r->i >= r->len) return -1;
    r->n = str_next(r->p, r->len, &r->i, r->buf);
    r->k = 1;
    return r->buf[0];
}

int json_str_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (!memchr(a, '\\', alen) && !memchr(b, '\\', blen))
        return alen == blen && memcmp(a, b, alen) == 0;
    str_reader_t ra = { .p = a, .len = alen }, rb = { .p = b, .len = blen };
    for (;;) {
        int x = reader_byte(&ra), y = reader_byte(&rb);
        if (x != y) return 0;
        if (x < 0) return 1;
    }
}

size_t json_str_unescape_prefix(const uint8_t *raw, size_t len, uint8_t *dst, size_t cap)
{
    size_t i = 0, n = 0;
    uint8_t tmp[4];
    while (i < len) {
        size_t k = str_next(raw, len, &i, tmp);
        if (cap - n < k) break;
        memcpy(dst + n, tmp, k);
        n += k;
    }
    return n;
}

size_t json_str_unescape(const uint8_t *raw, size_t len, uint8_t *dst, size_t cap)
{
    size_t i = 0, n = 0;
    uint8_t tmp[4];
    while (i < len) {
        size_t k = str_next(raw, len, &i, tmp);
        if (cap - n < k) return SIZE_MAX;
        memcpy(dst + n, tmp, k);
        n += k;
    }
    return n;
}
