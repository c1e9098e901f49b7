/* ws_http.c — HTTP/1.1 request parsing and the RFC 6455 §4 opening
 * handshake (see ws_http.h).  Bytes in, bytes out: no sockets, no logging,
 * no allocation of our own (OpenSSL's digest context is its own).
 *
 * The parser works in two passes.  The scan pass runs once per call over
 * the bytes not seen before: it finds line ends, applies the limits and
 * checks each line as soon as it is complete, so errors and floods are
 * refused early.  When the blank line arrives, the fill pass re-reads the
 * (already validated, bounded) header block once to fill the request.  This
 * keeps the resumable state to three integers and lets the caller pass a
 * different ws_http_request_t on each call; the cost is reading each line
 * twice, which is still O(n) for the whole request.
 */
#include "ws_http.h"
#include "base64.h"
#include "ws_status.h"

#include <limits.h>
#include <string.h>

#include <openssl/evp.h>

#define WS_GUID     "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  /* RFC 6455 §1.3 */
#define WS_GUID_LEN (sizeof WS_GUID - 1)

/* ---- character classes (ASCII only: never the C locale) ------------------ */

/* tchar of RFC 9110 §5.6.2: the characters of methods and field names. */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*':
    case '+': case '-': case '.': case '^': case '_': case '`': case '|': case '~':
        return 1;
    default:
        return 0;
    }
}

static int is_ows(unsigned char c) { return c == ' ' || c == '\t'; }

/* field-content of RFC 9110 §5.5: VCHAR, obs-text, SP and HTAB; every other
 * control character (NUL, CR, DEL, ...) is refused rather than passed on to
 * code that may treat it as a terminator. */
static int is_field_char(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

/* request targets are visible ASCII: no controls, spaces or raw 8-bit
 * bytes (RFC 3986 wants those percent-encoded). */
static int is_target_char(unsigned char c) { return c > 0x20 && c < 0x7f; }

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

static int bytes_eq(const char *a, const char *b, size_t n, int fold)
{
    if (!fold) return memcmp(a, b, n) == 0;
    for (size_t i = 0; i < n; i++)
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i])) return 0;
    return 1;
}

/* ---- request parsing ------------------------------------------------------ */

void ws_http_limits_default(ws_http_limits_t *lim)
{
    lim->max_request_line = 8192;
    lim->max_headers = 64;
    lim->max_header_bytes = 16384;
}

void ws_http_parser_init(ws_http_parser_t *p)
{
    memset(p, 0, sizeof *p);
}

/* The limits in force: the header array bounds max_headers, and the
 * returned block length is an int. */
static void effective_limits(const ws_http_limits_t *lim, ws_http_limits_t *out)
{
    if (lim) *out = *lim;
    else ws_http_limits_default(out);
    if (out->max_headers > WS_HTTP_MAX_HEADERS_HARD) out->max_headers = WS_HTTP_MAX_HEADERS_HARD;
    if (out->max_header_bytes > INT_MAX) out->max_header_bytes = INT_MAX;
}

/* Length of a line without its terminator: n bytes before '\n', less one
 * '\r'.  On a partial line a trailing '\r' may be the start of a CRLF, so it
 * is not counted either; that keeps the measure the same however the bytes
 * were split. */
static size_t line_content_len(const char *line, size_t n)
{
    return (n > 0 && line[n - 1] == '\r') ? n - 1 : n;
}

/* path[?query] in t[0..n), which starts with '/'. */
static void split_path_query(ws_http_request_t *req, const char *t, size_t n)
{
    const char *q = memchr(t, '?', n);
    req->path = t;
    req->path_len = q ? (size_t)(q - t) : n;
    req->query = q ? q + 1 : NULL;
    req->query_len = q ? n - req->path_len - 1 : 0;
}

/* The characters RFC 3986 §3.2.2-3.2.3 allow in host and port (reg-name,
 * IP-literal, pct-encoded), less '@': userinfo is refused (RFC 9110 §4.2.4:
 * "treat its presence as an error"), since it only serves to disguise the
 * host a URI names. */
static int is_authority_char(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != 0 && strchr("-._~%!$&'()*+,;=:[]", c) != NULL;
}

/* Length of an "http://" or "https://" prefix of t[0..n) (scheme names are
 * case-insensitive, RFC 3986 §3.1), or 0.  ws:// and wss:// are refused:
 * RFC 6455 §4.1 has a client send the resource name in origin-form, and
 * §3 maps ws/wss onto http/https for the HTTP exchange, so no conforming
 * client or proxy puts them in a request line; accepting them would only
 * widen what a front proxy and wsgw might read differently. */
static size_t http_scheme_len(const char *t, size_t n)
{
    if (n >= 7 && bytes_eq(t, "http://", 7, 1)) return 7;
    if (n >= 8 && bytes_eq(t, "https://", 8, 1)) return 8;
    return 0;
}

/* origin-form "/path[?query]", or absolute-form "http(s)://authority
 * [/path][?query]" (RFC 9112 §3.2.1-3.2.2), which a server MUST accept: it
 * is reduced to the same path and query, and the authority is kept apart.
 * An empty path means "/" (RFC 9110 §4.2.3).  '*' (asterisk-form, OPTIONS
 * only) and authority-form (CONNECT only) have no use here. */
static int parse_target(const char *t, size_t n, ws_http_request_t *req)
{
    req->target = t;
    req->target_len = n;
    req->authority = NULL;
    req->authority_len = 0;
    if (t[0] == '/') {
        split_path_query(req, t, n);
        return WS_OK;
    }
    size_t a = http_scheme_len(t, n), e = a;
    if (a == 0) return WS_E_HTTP_TARGET;
    while (e < n && t[e] != '/' && t[e] != '?') {
        if (!is_authority_char((unsigned char)t[e])) return WS_E_HTTP_TARGET;
        e++;
    }
    /* RFC 9110 §4.2.1: an http URI with an empty host MUST be rejected. */
    if (e == a || t[a] == ':') return WS_E_HTTP_TARGET;
    req->authority = t + a;
    req->authority_len = e - a;
    if (e < n && t[e] == '/') {
        split_path_query(req, t + e, n - e);
    } else {
        req->path = "/";
        req->path_len = 1;
        req->query = e < n ? t + e + 1 : NULL;
        req->query_len = e < n ? n - e - 1 : 0;
    }
    return WS_OK;
}

/* HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3), case-sensitive.
 * Any 1.x from 1.1 up is served as 1.1: RFC 9110 §2.5 has a recipient
 * treat a later minor version as the highest it speaks.  Other major
 * versions are refused with 505 (HTTP/2 never opens with a request line:
 * its preface "PRI * HTTP/2.0" lands here too). */
static int parse_version(const char *v, ws_http_request_t *req)
{
    if (memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9')
        return WS_E_HTTP_SYNTAX;
    if (v[5] != '1') return WS_E_HTTP_VERSION_UNSUPPORTED;
    req->minor_version = v[7] == '0' ? 0 : 1;
    return WS_OK;
}

/* method SP request-target SP HTTP-version, nothing else: one space each,
 * as RFC 9112 §3 requires of a sender.  The version is checked before the
 * target, so that an HTTP/2 preface is answered with what is wrong. */
static int parse_request_line(const char *s, size_t n, ws_http_request_t *req)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)s[i])) i++;
    if (i == 0 || i == n || s[i] != ' ') return WS_E_HTTP_SYNTAX;
    req->method = s;
    req->method_len = i;

    size_t t = ++i;
    while (i < n && is_target_char((unsigned char)s[i])) i++;
    if (i == t || n - i != 9 || s[i] != ' ') return WS_E_HTTP_SYNTAX;
    int rc = parse_version(s + i + 1, req);
    return rc != WS_OK ? rc : parse_target(s + t, i - t, req);
}

/* field-name ":" OWS field-value OWS.  The name must end at the colon:
 * whitespace before it is refused (RFC 9112 §5.1), since proxies disagree
 * on what such a name means. */
static int parse_header_line(const char *s, size_t n, ws_http_header_t *h)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)s[i])) i++;
    if (i == 0 || i == n || s[i] != ':') return WS_E_HTTP_SYNTAX;
    for (size_t k = i + 1; k < n; k++)
        if (!is_field_char((unsigned char)s[k])) return WS_E_HTTP_SYNTAX;

    size_t b = i + 1, e = n;
    while (b < e && is_ows((unsigned char)s[b])) b++;
    while (e > b && is_ows((unsigned char)s[e - 1])) e--;
    h->name = s;
    h->name_len = i;
    h->value = s + b;
    h->value_len = e - b;
    return WS_OK;
}

/* Line 0 is the request line, line k the k-th header.  The scan pass has
 * checked k <= max_headers <= WS_HTTP_MAX_HEADERS_HARD. */
static int parse_line(const char *s, size_t n, size_t line_no, ws_http_request_t *req)
{
    if (line_no == 0) {
        req->num_headers = 0;
        return parse_request_line(s, n, req);
    }
    req->num_headers = line_no;
    return parse_header_line(s, n, &req->headers[line_no - 1]);
}

/* Checks on a line's first byte, so that a header flood, an obs-fold or a
 * peer that does not speak HTTP is refused before the line ends. */
static int check_line_start(unsigned char c, size_t line_no, const ws_http_limits_t *lim)
{
    if (line_no == 0) return is_tchar(c) ? WS_OK : WS_E_HTTP_SYNTAX;
    if (c == '\r' || c == '\n') return WS_OK;              /* maybe the blank line */
    if (line_no - 1 >= lim->max_headers) return WS_E_HTTP_TOO_MANY_HDRS;
    return is_tchar(c) ? WS_OK : WS_E_HTTP_SYNTAX;         /* SP/HTAB: obs-fold */
}

/* A complete line of n content bytes.  Returns 1 at the blank line that
 * ends the header block, WS_OK for any other valid line, or an error. */
static int finish_line(const char *s, size_t n, size_t line_no, const ws_http_limits_t *lim,
                       ws_http_request_t *req)
{
    if (line_no == 0 && n > lim->max_request_line) return WS_E_HTTP_LINE_TOO_LONG;
    if (n == 0) return line_no == 0 ? WS_E_HTTP_SYNTAX : 1;
    return parse_line(s, n, line_no, req);
}

/* The fill pass over a complete, validated block of block_len bytes. */
static int fill_request(const char *buf, size_t block_len, ws_http_request_t *req)
{
    size_t start = 0;
    for (size_t line_no = 0;; line_no++) {
        const char *nl = memchr(buf + start, '\n', block_len - start);
        size_t n = line_content_len(buf + start, (size_t)(nl - (buf + start)));
        if (n == 0) return (int)block_len;
        int rc = parse_line(buf + start, n, line_no, req);
        if (rc < 0) return rc;
        start = (size_t)(nl - buf) + 1;
    }
}

int ws_http_parse(ws_http_parser_t *p, const char *buf, size_t len,
                  const ws_http_limits_t *lim, ws_http_request_t *req)
{
    if (!p || !req || (!buf && len) || len < p->_scanned) return WS_E_INVALID_ARG;
    ws_http_limits_t l;
    effective_limits(lim, &l);
    /* Work on a copy, committed only on WANT_MORE: a repeated call then
     * gives the same answer instead of scanning past an error or a body. */
    ws_http_parser_t s = *p;
    size_t end = len < l.max_header_bytes ? len : l.max_header_bytes;
    int rc;

    while (s._scanned < end) {
        if (s._scanned == s._line_start &&
            (rc = check_line_start((unsigned char)buf[s._scanned], s._lines, &l)) != WS_OK)
            return rc;
        const char *nl = memchr(buf + s._scanned, '\n', end - s._scanned);
        if (!nl) { s._scanned = end; break; }
        size_t e = (size_t)(nl - buf);
        const char *line = buf + s._line_start;
        rc = finish_line(line, line_content_len(line, e - s._line_start), s._lines, &l, req);
        if (rc < 0) return rc;
        if (rc == 1) return fill_request(buf, e + 1, req);
        s._lines++;
        s._line_start = s._scanned = e + 1;
    }
    size_t pending = s._scanned - s._line_start;
    if (s._lines == 0 && pending > 0 &&
        line_content_len(buf + s._line_start, pending) > l.max_request_line)
        return WS_E_HTTP_LINE_TOO_LONG;
    /* No blank line within max_header_bytes, and the bytes go on: the block
     * cannot fit, whatever follows. */
    if (len >= l.max_header_bytes) return WS_E_HTTP_HDRS_TOO_BIG;
    *p = s;
    return WS_E_WANT_MORE;
}

/* ---- header lookup -------------------------------------------------------- */

const ws_http_header_t *ws_http_find_header(const ws_http_request_t *req,
                                            const char *name, size_t *count)
{
    const ws_http_header_t *first = NULL;
    size_t found = 0;
    if (req && name) {
        size_t name_len = strlen(name);
        for (size_t i = 0; i < req->num_headers; i++) {
            const ws_http_header_t *h = &req->headers[i];
            if (h->name_len != name_len || !bytes_eq(h->name, name, name_len, 1)) continue;
            if (!first) first = h;
            found++;
        }
    }
    if (count) *count = found;
    return first;
}

/* 1 when the comma list value[0..len) has an element equal to token[0..tlen)
 * once OWS is trimmed; empty elements (", ,") are skipped as RFC 9110 §5.6.1
 * asks of recipients. */
static int list_has(const char *value, size_t len, const char *token, size_t tlen, int fold)
{
    if (tlen == 0) return 0;
    for (size_t i = 0; i <= len; i++) {
        size_t b = i;
        while (i < len && value[i] != ',') i++;
        size_t e = i;
        while (b < e && is_ows((unsigned char)value[b])) b++;
        while (e > b && is_ows((unsigned char)value[e - 1])) e--;
        if (e - b == tlen && bytes_eq(value + b, token, tlen, fold)) return 1;
    }
    return 0;
}

int ws_http_has_token(const char *value, size_t len, const char *token)
{
    if (!value || !token) return 0;
    return list_has(value, len, token, strlen(token), 1);
}

/* A list may be split over several header lines (RFC 9110 §5.3), so every
 * line named `name` is searched. */
static int headers_list(const ws_http_request_t *req, const char *name, const char *token,
                        int fold)
{
    size_t name_len = strlen(name), tlen = strlen(token);
    for (size_t i = 0; i < req->num_headers; i++) {
        const ws_http_header_t *h = &req->headers[i];
        if (h->name_len == name_len && bytes_eq(h->name, name, name_len, 1) &&
            list_has(h->value, h->value_len, token, tlen, fold))
            return 1;
    }
    return 0;
}

int ws_http_is_upgrade(const ws_http_request_t *req)
{
    return req ? headers_list(req, "Upgrade", "websocket", 1) : 0;
}

/* ---- opening handshake ---------------------------------------------------- */

/* 16 bytes in base64 are exactly 22 symbols and "==" (RFC 4648 §4).  The
 * 22nd symbol holds 2 data bits; its 4 spare bits must be zero (§3.5), so a
 * nonce has one spelling and "decodes to 16 bytes" means what it says. */
static int key_is_valid(const char *k, size_t n)
{
    if (n != 24 || k[22] != '=' || k[23] != '=') return 0;
    for (size_t i = 0; i < 22; i++)
        if (b64_value((uint8_t)k[i], 0) < 0) return 0;
    return (b64_value((uint8_t)k[21], 0) & 0x0f) == 0;
}

static int value_is(const ws_http_header_t *h, const char *s)
{
    size_t n = strlen(s);
    return h->value_len == n && memcmp(h->value, s, n) == 0;
}

/* RFC 6455 §4.1: version = DIGIT | (NZDIGIT DIGIT) | ("1" DIGIT DIGIT) |
 * ("2" DIGIT DIGIT), 0-255 without leading zeros, and §11.3.5: sent once
 * in a request.  Only such a value can be "a version we do not speak" (426
 * and our list); anything else is a malformed handshake (400). */
static int ws_version_ok(const ws_http_header_t *h)
{
    size_t n = h->value_len;
    if (n == 0 || n > 3 || (n > 1 && h->value[0] == '0')) return 0;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (h->value[i] < '0' || h->value[i] > '9') return 0;
        v = v * 10 + (h->value[i] - '0');
    }
    return v <= 255;
}

/* A GET may not carry a body that we would then read as WebSocket frames:
 * any Transfer-Encoding, or a Content-Length other than 0. */
static int has_body(const ws_http_request_t *req)
{
    for (size_t i = 0; i < req->num_headers; i++) {
        const ws_http_header_t *h = &req->headers[i];
        if (h->name_len == 17 && bytes_eq(h->name, "Transfer-Encoding", 17, 1)) return 1;
        if (h->name_len == 14 && bytes_eq(h->name, "Content-Length", 14, 1) && !value_is(h, "0"))
            return 1;
    }
    return 0;
}

/* The header rules of §4.2.1 items 2-6, in the order ws_http.h lists them. */
static int check_ws_headers(const ws_http_request_t *req, const ws_http_header_t **host,
                            const ws_http_header_t **key)
{
    size_t n;
    *host = ws_http_find_header(req, "Host", &n);
    if (n != 1 || (*host)->value_len == 0) return WS_E_HTTP_NO_HOST;
    if (!headers_list(req, "Upgrade", "websocket", 1)) return WS_E_HTTP_NO_UPGRADE;
    if (!headers_list(req, "Connection", "upgrade", 1)) return WS_E_HTTP_NO_CONNECTION;
    *key = ws_http_find_header(req, "Sec-WebSocket-Key", &n);
    if (n != 1 || !key_is_valid((*key)->value, (*key)->value_len)) return WS_E_HTTP_BAD_KEY;
    const ws_http_header_t *ver = ws_http_find_header(req, "Sec-WebSocket-Version", &n);
    if (n != 1 || !ws_version_ok(ver)) return WS_E_HTTP_WS_VERSION_SYNTAX;
    if (!value_is(ver, "13")) return WS_E_HTTP_BAD_WS_VERSION;
    return has_body(req) ? WS_E_HTTP_BODY : WS_OK;
}

int ws_handshake_validate(const ws_http_request_t *req, ws_handshake_t *hs)
{
    if (!req) return WS_E_INVALID_ARG;
    if (req->method_len != 3 || memcmp(req->method, "GET", 3) != 0) return WS_E_HTTP_METHOD;
    if (req->minor_version != 1) return WS_E_HTTP_VERSION;
    const ws_http_header_t *host, *key;
    int rc = check_ws_headers(req, &host, &key);
    if (rc != WS_OK || !hs) return rc;
    const ws_http_header_t *origin = ws_http_find_header(req, "Origin", NULL);
    hs->key = key->value;
    hs->key_len = key->value_len;
    /* RFC 9112 §3.2.2: with an absolute-form target the server MUST ignore
     * Host and use the target's authority.  Host was still required above
     * (§3.2: 400 when an HTTP/1.1 request lacks it or repeats it). */
    hs->host = req->authority ? req->authority : host->value;
    hs->host_len = req->authority ? req->authority_len : host->value_len;
    hs->origin = origin ? origin->value : NULL;
    hs->origin_len = origin ? origin->value_len : 0;
    return WS_OK;
}

int ws_handshake_select_subprotocol(const ws_http_request_t *req,
                                    const char *const *server_protos, size_t n)
{
    if (!req || !server_protos) return -1;
    /* Server order decides (the server knows which it prefers); names are
     * compared case-sensitively, as RFC 6455 §11.5 registers them. */
    for (size_t i = 0; i < n && i <= INT_MAX; i++)
        if (server_protos[i] && headers_list(req, "Sec-WebSocket-Protocol", server_protos[i], 0))
            return (int)i;
    return -1;
}

/* 0 and the accept value in out, or -1 (and "") when OpenSSL fails, which
 * only an out-of-memory or a FIPS setup without SHA-1 would cause. */
static int accept_compute(const char *key, size_t key_len, char out[29])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) &&
             EVP_DigestUpdate(ctx, key, key_len) &&
             EVP_DigestUpdate(ctx, WS_GUID, WS_GUID_LEN) &&
             EVP_DigestFinal_ex(ctx, md, &md_len) && md_len == 20;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        out[0] = '\0';
        return -1;
    }
    EVP_EncodeBlock((unsigned char *)out, md, 20);  /* 28 chars and a NUL */
    return 0;
}

void ws_handshake_accept(const char *key, size_t key_len, char out[29])
{
    accept_compute(key ? key : "", key ? key_len : 0, out);
}

/* ---- response writers ----------------------------------------------------- */

/* Appends into out[0..cap); once something does not fit, nothing more is
 * written and the writer reports WS_E_NOSPACE — never a truncated response. */
typedef struct out_buf {
    char  *p;
    size_t cap, len;
    int    full;
} out_buf_t;

static void put(out_buf_t *o, const char *s, size_t n)
{
    if (o->full || n > o->cap - o->len) { o->full = 1; return; }
    if (n == 0) return;
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void put_str(out_buf_t *o, const char *s) { put(o, s, strlen(s)); }

static void put_uint(out_buf_t *o, size_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do { tmp[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    put(o, tmp + i, sizeof tmp - i);
}

static void put_header(out_buf_t *o, const char *name, const char *value)
{
    put_str(o, name);
    put(o, ": ", 2);
    put_str(o, value);
    put(o, "\r\n", 2);
}

static int out_done(const out_buf_t *o)
{
    return (o->full || o->len > INT_MAX) ? WS_E_NOSPACE : (int)o->len;
}

static void put_status_line(out_buf_t *o, int status)
{
    put_str(o, "HTTP/1.1 ");
    put_uint(o, (size_t)status);
    put(o, " ", 1);
    put_str(o, ws_http_status_text(status));
    put(o, "\r\n", 2);
}

/* Values we put in a header must not smuggle in a line end or other
 * controls, whoever computed them. */
static int header_value_ok(const char *v)
{
    for (; *v; v++)
        if (!is_field_char((unsigned char)*v)) return 0;
    return 1;
}

static int out_args_ok(const char *out, size_t cap, int status)
{
    return (out || cap == 0) && status >= 100 && status <= 999;
}

int ws_handshake_response(char *out, size_t cap, const char *key, size_t key_len,
                          const char *subprotocol, const char *extensions)
{
    char accept[29];
    if ((!out && cap) || (!key && key_len) ||
        (subprotocol && !header_value_ok(subprotocol)) ||
        (extensions && !header_value_ok(extensions)))
        return WS_E_INVALID_ARG;
    if (accept_compute(key ? key : "", key_len, accept) != 0) return WS_E_INVALID_ARG;

    out_buf_t o = { out, cap, 0, 0 };
    put_status_line(&o, 101);
    put_header(&o, "Upgrade", "websocket");
    put_header(&o, "Connection", "Upgrade");
    put_header(&o, "Sec-WebSocket-Accept", accept);
    if (subprotocol) put_header(&o, "Sec-WebSocket-Protocol", subprotocol);
    if (extensions) put_header(&o, "Sec-WebSocket-Extensions", extensions);
    put(&o, "\r\n", 2);
    return out_done(&o);
}

int ws_http_error_response(char *out, size_t cap, int status, const char *body)
{
    if (!out_args_ok(out, cap, status)) return WS_E_INVALID_ARG;
    if (!body) body = ws_http_status_text(status);

    out_buf_t o = { out, cap, 0, 0 };
    put_status_line(&o, status);
    put_header(&o, "Content-Type", "text/plain; charset=utf-8");
    put_str(&o, "Content-Length: ");
    put_uint(&o, strlen(body) + 1);
    put(&o, "\r\n", 2);
    /* RFC 9110 §15.5.6 and §15.5.22: a 405 says what is allowed and a 426
     * which protocol to upgrade to; RFC 6455 §4.4 adds the version we speak. */
    if (status == 405) put_header(&o, "Allow", "GET");
    /* RFC 6750 §3: a refused bearer token names its scheme. */
    if (status == 401) put_header(&o, "WWW-Authenticate", "Bearer realm=\"wsgw\"");
    if (status == 426) {
        put_header(&o, "Upgrade", "websocket");
        put_header(&o, "Sec-WebSocket-Version", "13");
    }
    put_header(&o, "Connection", "close");
    put(&o, "\r\n", 2);
    put_str(&o, body);
    put(&o, "\n", 1);
    return out_done(&o);
}

/* RFC 9110 §8.6: no Content-Length on a 1xx or 204 response. */
static int status_has_length(int status)
{
    return status >= 200 && status != 204;
}

int ws_http_response_head(char *out, size_t cap, int status, const char *content_type,
                          size_t content_length, int keep_alive,
                          const char *extra_headers)
{
    if (!out_args_ok(out, cap, status) || (content_type && !header_value_ok(content_type)))
        return WS_E_INVALID_ARG;

    out_buf_t o = { out, cap, 0, 0 };
    put_status_line(&o, status);
    if (content_type) put_header(&o, "Content-Type", content_type);
    if (status_has_length(status)) {
        put_str(&o, "Content-Length: ");
        put_uint(&o, content_length);
        put(&o, "\r\n", 2);
    }
    put_header(&o, "Connection", keep_alive ? "keep-alive" : "close");
    if (extra_headers) put_str(&o, extra_headers);
    put(&o, "\r\n", 2);
    return out_done(&o);
}

const char *ws_http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default:  return "Unknown";
    }
}
