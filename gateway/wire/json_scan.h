/* json_scan.h — a strict RFC 8259 JSON scanner that validates and finds
 * spans; it builds no tree and never allocates.
 *
 * Why not cJSON: the envelope's `data` member must reach other clients
 * byte for byte (cJSON re-prints 12345678901234567890 and 1.10 as doubles),
 * and the hot path must not allocate a tree per message.  So this scanner
 * only answers "is this valid JSON, and where does each value start and
 * end?".  Callers keep raw byte spans into their own input.
 *
 * Strictness (each a syntax error unless noted):
 *   - numbers follow the RFC grammar exactly: no leading zeros ("01"), no
 *     "+1", ".5", "1.", "1e", NaN or Infinity; any length is accepted, as
 *     nothing is converted;
 *   - strings: no raw byte < 0x20, only the escapes \" \\ \/ \b \f \n \r \t
 *     \uXXXX; a \u escape for a high surrogate must be followed at once by
 *     one for a low surrogate, and a lone low surrogate is refused (RFC 8259
 *     §8.2 leaves lone surrogates "unpredictable"; we forward `data` to
 *     browsers, so we refuse them);
 *   - literals true/false/null only; whitespace is space, \t, \n, \r only;
 *   - no trailing commas, no trailing bytes after the document except
 *     whitespace, an empty document is an error;
 *   - nesting: at most JSON_SCAN_MAX_DEPTH open arrays/objects, counted
 *     from the document root (the root container is level 1), else
 *     JSON_E_DEPTH.  The scanner is iterative: depth costs one bit of state
 *     per level, never stack frames.
 * Input must be UTF-8 already (the message layer validates text frames);
 * bytes >= 0x80 are accepted inside strings without being re-checked, and
 * are syntax errors anywhere else.  Duplicate object keys are *not* an error
 * here (RFC 8259 only says SHOULD be unique); the envelope layer checks its
 * own top level.
 *
 * Error offsets are byte offsets into the input where the scanner stopped:
 * the first byte it could not accept, or `len` when the input ended early.
 */
#ifndef WSGW_JSON_SCAN_H
#define WSGW_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

#define JSON_SCAN_MAX_DEPTH 32

/* A byte range inside a caller's buffer; never owns memory. */
typedef struct json_span {
    const uint8_t *p;
    size_t         len;
} json_span_t;

typedef enum json_scan_err {
    JSON_OK           = 0,
    JSON_E_SYNTAX     = -1,  /* not RFC 8259 JSON */
    JSON_E_DEPTH      = -2,  /* nesting deeper than JSON_SCAN_MAX_DEPTH */
    JSON_E_NOT_OBJECT = -3   /* json_obj_begin: first token is not '{' */
} json_scan_err_t;

/* Validates the whole document s[0..len).  Returns JSON_OK, JSON_E_SYNTAX
 * or JSON_E_DEPTH; on error *err_off (if not NULL) gets the offset. */
json_scan_err_t json_scan_document(const uint8_t *s, size_t len, size_t *err_off);

/* Scans one value starting at s[*pos] (leading whitespace skipped) inside
 * `depth` already-open containers (0 for a document root).  On JSON_OK,
 * *value spans the value's bytes exactly (no surrounding whitespace) and
 * *pos is just past it; trailing bytes are not looked at.  On error *pos is
 * the error offset and *value is untouched. */
json_scan_err_t json_scan_value(const uint8_t *s, size_t len, size_t *pos,
                                unsigned depth, json_span_t *value);

/* Walks the members of a document whose root is an object, validating the
 * whole document as it goes (the last json_obj_next() also checks that only
 * whitespace follows the closing brace).  Fields starting with '_' are
 * private; err_off is valid after an error. */
typedef struct json_obj_iter {
    const uint8_t *_s;
    size_t         _len;
    size_t         _pos;
    int            _state;
    int            _err;
    size_t         err_off;
} json_obj_iter_t;

typedef struct json_member {
    json_span_t key;    /* the key's raw content between the quotes (escapes kept) */
    json_span_t value;  /* the raw value token, as json_scan_value() gives it */
} json_member_t;

/* Starts iterating s[0..len).  Returns JSON_OK, or JSON_E_NOT_OBJECT when
 * the first non-whitespace byte is not '{' (the input may still be valid
 * JSON: call json_scan_document() to tell). */
json_scan_err_t json_obj_begin(json_obj_iter_t *it, const uint8_t *s, size_t len);

/* Returns 1 and fills *m with the next member, 0 at the end of a valid
 * document, or JSON_E_SYNTAX / JSON_E_DEPTH (it->err_off set; further calls
 * return the same error).  Spans point into the input. */
int json_obj_next(json_obj_iter_t *it, json_member_t *m);

/* String content helpers.  `a`/`raw` is the content between the quotes of a
 * string token this scanner accepted (so escapes are well formed); the
 * decoded form is UTF-8.  Malformed escapes, if a caller passes them
 * anyway, are taken literally rather than read out of bounds. */

/* 1 when the decoded contents are equal ("op" equals "\u006fp"), else 0.
 * Without backslashes on either side this is a length check and memcmp. */
int json_str_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* Decodes raw[0..len) into dst[0..cap).  Returns the decoded length, or
 * SIZE_MAX when it does not fit (dst then holds a partial result). */
size_t json_str_unescape(const uint8_t *raw, size_t len, uint8_t *dst, size_t cap);

/* Decodes as much of raw[0..len) as fits in dst[0..cap), never splitting
 * an escape, and returns the decoded length (a raw multi-byte character
 * may be cut: the caller trims to a UTF-8 boundary if it needs one). */
size_t json_str_unescape_prefix(const uint8_t *raw, size_t len, uint8_t *dst, size_t cap);

#endif
