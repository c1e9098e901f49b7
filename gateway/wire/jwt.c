/* jwt.c — JWS compact JWT verification (see jwt.h for the contract).
 *
 * Stack use is bounded and no heap is touched on the verification path
 * except by OpenSSL inside EVP_DigestVerify: the header and then the payload
 * are decoded into the caller's jwt_claims_t, the signature into a stack
 * buffer sized for the largest RSA key we load.
 */
#include "jwt.h"

#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include "base64.h"
#include "ws_alloc.h"
#include "ws_utf8.h"

const char *jwt_err_str(int code)
{
    switch (code) {
    case JWT_OK:                return "ok";
    case JWT_E_MALFORMED:       return "malformed token";
    case JWT_E_TOO_LONG:        return "token too long";
    case JWT_E_BASE64:          return "bad base64url";
    case JWT_E_TOO_BIG:         return "header or payload too large";
    case JWT_E_HEADER:          return "header is not a UTF-8 JSON object";
    case JWT_E_PAYLOAD:         return "payload is not a UTF-8 JSON object";
    case JWT_E_DUPLICATE:       return "duplicate header parameter or claim";
    case JWT_E_ALG_MISSING:     return "alg missing";
    case JWT_E_ALG_NONE:        return "alg none refused";
    case JWT_E_ALG_UNSUPPORTED: return "alg unsupported";
    case JWT_E_ALG_KEY:         return "alg does not match the configured key";
    case JWT_E_CRIT:            return "crit header unsupported";
    case JWT_E_TYP:             return "typ is not JWT";
    case JWT_E_SIG_LENGTH:      return "signature length wrong for alg";
    case JWT_E_SIGNATURE:       return "bad signature";
    case JWT_E_EXPIRED:         return "token expired";
    case JWT_E_NOT_YET_VALID:   return "token not yet valid";
    case JWT_E_IAT_FUTURE:      return "token issued in the future";
    case JWT_E_EXP_MISSING:     return "exp claim missing";
    case JWT_E_ISSUER:          return "wrong or missing issuer";
    case JWT_E_AUDIENCE:        return "wrong or missing audience";
    case JWT_E_CLAIM_TYPE:      return "claim has the wrong JSON type";
    case JWT_E_TIME_RANGE:      return "time claim is negative";
    case JWT_E_SUB:             return "sub too long or has control characters";
    case JWT_E_ROOMS:           return "rooms pattern too long or has control characters";
    case JWT_E_EMIT:            return "emit names an unknown target";
    }
    return "unknown error";
}

/* ---- keys ------------------------------------------------------------------ */

__attribute__((format(printf, 3, 4)))
static int load_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    ERR_clear_error();
    return -1;
}

/* OpenSSL's reason for the last error on this thread (a system error such
 * as a missing file reads as its strerror text). */
static const char *ossl_reason(void)
{
    const char *r = ERR_reason_error_string(ERR_peek_last_error());
    return r ? r : "no public key found";
}

/* Accepts RSA within the size bounds (RS256) and EC on P-256 (ES256). */
static int classify_pkey(EVP_PKEY *pk, const char *path, jwt_alg_t *alg, char *err, size_t errlen)
{
    int id = EVP_PKEY_get_base_id(pk);
    if (id == EVP_PKEY_RSA) {
        int bits = EVP_PKEY_get_bits(pk);
        if (bits < JWT_RSA_BITS_MIN || bits > JWT_RSA_BITS_MAX)
            return load_fail(err, errlen, "%s: RSA key of %d bits is not supported (RS256 needs %d..%d)",
                             path, bits, JWT_RSA_BITS_MIN, JWT_RSA_BITS_MAX);
        *alg = JWT_ALG_RS256;
        return 0;
    }
    if (id == EVP_PKEY_EC) {
        char curve[64];
        size_t n = 0;
        if (EVP_PKEY_get_group_name(pk, curve, sizeof curve, &n) != 1)
            return load_fail(err, errlen, "%s: EC key without a named curve is not supported "
                             "(ES256 needs P-256)", path);
        if (OBJ_sn2nid(curve) != NID_X9_62_prime256v1)
            return load_fail(err, errlen, "%s: EC key on curve %s is not supported (ES256 needs P-256)",
                             path, curve);
        *alg = JWT_ALG_ES256;
        return 0;
    }
    const char *type = EVP_PKEY_get0_type_name(pk);
    return load_fail(err, errlen, "%s: %s public key is not supported "
                     "(RSA for RS256 or EC P-256 for ES256)", path, type ? type : "this");
}

static int load_pubkey(jwt_keys_t *k, const char *path, char *err, size_t errlen)
{
    ERR_clear_error();
    BIO *bio = BIO_new_file(path, "r");
    if (!bio) return load_fail(err, errlen, "%s: cannot open: %s", path, ossl_reason());
    EVP_PKEY *pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!pk)
        return load_fail(err, errlen, "%s: no PEM public key (\"BEGIN PUBLIC KEY\"): %s",
                         path, ossl_reason());
    jwt_alg_t alg;
    if (classify_pkey(pk, path, &alg, err, errlen) != 0) {
        EVP_PKEY_free(pk);
        return -1;
    }
    k->_pkey = pk;
    k->_pkey_alg = alg;
    ERR_clear_error();
    return 0;
}

int jwt_keys_load(jwt_keys_t *k, const char *hs256_secret, const char *pubkey_pem_path,
                  char *err, size_t errlen)
{
    memset(k, 0, sizeof *k);
    if (!hs256_secret && !pubkey_pem_path)
        return load_fail(err, errlen, "no JWT key: give an HS256 secret and/or a public key file");
    if (hs256_secret) {
        size_t n = strlen(hs256_secret);
        if (n < JWT_HS256_SECRET_MIN || n > JWT_HS256_SECRET_MAX)
            return load_fail(err, errlen, "HS256 secret has %zu bytes; %d..%d are needed",
                             n, JWT_HS256_SECRET_MIN, JWT_HS256_SECRET_MAX);
        k->_secret = ws_xmalloc(n);
        memcpy(k->_secret, hs256_secret, n);
        k->_secret_len = n;
    }
    if (pubkey_pem_path && load_pubkey(k, pubkey_pem_path, err, errlen) != 0) {
        jwt_keys_free(k);
        return -1;
    }
    return 0;
}

void jwt_keys_free(jwt_keys_t *k)
{
    if (k->_secret) {
        OPENSSL_cleanse(k->_secret, k->_secret_len);
        ws_xfree(k->_secret);
    }
    EVP_PKEY_free(k->_pkey);
    memset(k, 0, sizeof *k);
}


/* ---- JSON helpers ------------------------------------------------------------ */

static int is_str(json_span_t v)   { return v.len >= 2 && v.p[0] == '"'; }
static int is_num(json_span_t v)   { return v.len >= 1 && (v.p[0] == '-' || (v.p[0] >= '0' && v.p[0] <= '9')); }
static int is_arr(json_span_t v)   { return v.len >= 2 && v.p[0] == '['; }
static json_span_t str_raw(json_span_t v) { return (json_span_t){ v.p + 1, v.len - 2 }; }

/* Walks the object doc[0..len) (validating all of it) and records the value
 * of each member named in names[0..n); absent ones get p == NULL.  Returns
 * 0, JWT_E_DUPLICATE when a named member repeats, or `bad` when doc is not
 * one JSON object. */
static int collect(const uint8_t *doc, size_t len, const char *const *names, size_t n,
                   json_span_t *vals, int bad)
{
    json_obj_iter_t it;
    json_member_t m;
    int r;
    for (size_t i = 0; i < n; i++) vals[i] = (json_span_t){ NULL, 0 };
    if (json_obj_begin(&it, doc, len) != JSON_OK) return bad;
    while ((r = json_obj_next(&it, &m)) > 0) {
        for (size_t i = 0; i < n; i++) {
            if (!json_str_equal(m.key.p, m.key.len, (const uint8_t *)names[i], strlen(names[i])))
                continue;
            if (vals[i].p) return JWT_E_DUPLICATE;
            vals[i] = m.value;
            break;
        }
    }
    return r == 0 ? 0 : bad;
}

/* Iterates the elements of a JSON array the scanner already accepted. */
typedef struct arr_iter {
    const uint8_t *p;
    size_t len, pos;
    int done;
} arr_iter_t;

static size_t skip_ws(const uint8_t *s, size_t len, size_t i)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}

static void arr_begin(arr_iter_t *it, json_span_t arr)
{
    it->p = arr.p;
    it->len = arr.len;
    it->pos = skip_ws(arr.p, arr.len, 1);
    it->done = it->pos >= arr.len || arr.p[it->pos] == ']';
}

/* 1 with *raw = the contents of the next element when it is a string, 0 at
 * the end, -1 when the element is not a string. */
static int arr_next_str(arr_iter_t *it, json_span_t *raw)
{
    json_span_t v;
    if (it->done) return 0;
    if (json_scan_value(it->p, it->len, &it->pos, 1, &v) != JSON_OK || !is_str(v)) return -1;
    *raw = str_raw(v);
    it->pos = skip_ws(it->p, it->len, it->pos);
    if (it->pos < it->len && it->p[it->pos] == ',') it->pos++;
    else it->done = 1;  /* the ']': the span was validated whole */
    return 1;
}

static int is_str_array(json_span_t v)
{
    arr_iter_t it;
    json_span_t raw;
    int r;
    if (!is_arr(v)) return 0;
    arr_begin(&it, v);
    while ((r = arr_next_str(&it, &raw)) > 0) {}
    return r == 0;
}

/* 1 when the string contents `raw` decode to exactly the C string `want`
 * (compared after unescaping one side only, so a '\' in `want` is literal). */
static int raw_is(json_span_t raw, const char *want)
{
    size_t wn = strlen(want);
    if (!memchr(raw.p, '\\', raw.len)) return raw.len == wn && memcmp(raw.p, want, wn) == 0;
    if (raw.len < wn) return 0;  /* unescaping never lengthens */
    uint8_t buf[JWT_PAYLOAD_MAX];
    size_t n = json_str_unescape(raw.p, raw.len, buf, sizeof buf);
    return n == wn && memcmp(buf, want, wn) == 0;
}

/* 1 when s[0..n) (valid UTF-8) holds a C0 control, DEL or a C1 control
 * (U+0080..U+009F, encoded C2 80..C2 9F) — bytes that must not reach logs. */
static int has_control(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] == 0x7F) return 1;
        if (s[i] == 0xC2 && i + 1 < n && s[i + 1] >= 0x80 && s[i + 1] <= 0x9F) return 1;
    }
    return 0;
}

/* A JSON number (grammar already checked by the scanner) as whole seconds
 * rounded up, saturating at UINT64_MAX.  Returns 0, or JWT_E_TIME_RANGE for
 * a negative value.  Works on the decimal digits, so "1.3e9" and
 * "1300000000.25" need no floating point. */
static int numeric_date(json_span_t v, uint64_t *out)
{
    const uint8_t *p = v.p, *end = v.p + v.len;
    int neg = *p == '-';
    p += neg;
    const uint8_t *ip = p;
    while (p < end && *p >= '0' && *p <= '9') p++;
    long ni = (long)(p - ip), nf = 0;
    const uint8_t *fp = p;
    if (p < end && *p == '.') {
        fp = ++p;
        while (p < end && *p >= '0' && *p <= '9') p++;
        nf = (long)(p - fp);
    }
    long e = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0;
        p++;
        if (*p == '+' || *p == '-') eneg = *p++ == '-';
        for (; p < end; p++)
            if (e < 1000000) e = e * 10 + (*p - '0');  /* clamp: 10^1000000 saturates anyway */
        if (eneg) e = -e;
    }
#define DIGIT(k) ((unsigned)(((k) < ni ? ip[(k)] : fp[(k) - ni]) - '0'))
    long nd = ni + nf, point = ni + e;  /* digits before the decimal point */
    uint64_t val = 0;
    int sat = 0, frac = 0, nonzero = 0;
    for (long k = 0; k < nd; k++) nonzero |= DIGIT(k) != 0;
    if (neg && nonzero) return JWT_E_TIME_RANGE;
    for (long k = 0; k < point && !sat; k++) {
        unsigned d = k < nd ? DIGIT(k) : 0;
        if (k >= nd && val == 0) break;  /* zeros times ten stay zero */
        if (val > (UINT64_MAX - d) / 10) sat = 1;
        else val = val * 10 + d;
    }
    for (long k = point < 0 ? 0 : point; k < nd && !frac; k++) frac = DIGIT(k) != 0;
#undef DIGIT
    if (sat) val = UINT64_MAX;
    else if (frac) val++;  /* val < UINT64_MAX here: a fraction means point < nd */
    *out = val;
    return 0;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* ---- header ----------------------------------------------------------------- */

enum { H_ALG, H_TYP, H_CRIT, H_COUNT };
static const char *const header_names[H_COUNT] = { "alg", "typ", "crit" };

/* Parses the decoded header and picks the algorithm the keys allow. */
static int check_header(const uint8_t *h, size_t n, const jwt_keys_t *k, jwt_alg_t *alg)
{
    json_span_t v[H_COUNT];
    char buf[8];
    size_t bn;
    if (!ws_utf8_is_valid(h, n)) return JWT_E_HEADER;
    int r = collect(h, n, header_names, H_COUNT, v, JWT_E_HEADER);
    if (r) return r;

    if (!v[H_ALG].p) return JWT_E_ALG_MISSING;
    if (!is_str(v[H_ALG])) return JWT_E_ALG_UNSUPPORTED;
    json_span_t raw = str_raw(v[H_ALG]);
    bn = json_str_unescape(raw.p, raw.len, (uint8_t *)buf, sizeof buf);
    if (bn == 4 && strncasecmp(buf, "none", 4) == 0) return JWT_E_ALG_NONE;
    if (bn == 5 && memcmp(buf, "HS256", 5) == 0) *alg = JWT_ALG_HS256;
    else if (bn == 5 && memcmp(buf, "RS256", 5) == 0) *alg = JWT_ALG_RS256;
    else if (bn == 5 && memcmp(buf, "ES256", 5) == 0) *alg = JWT_ALG_ES256;
    else return JWT_E_ALG_UNSUPPORTED;

    if (v[H_CRIT].p) return JWT_E_CRIT;
    if (v[H_TYP].p) {
        if (!is_str(v[H_TYP])) return JWT_E_TYP;
        raw = str_raw(v[H_TYP]);
        bn = json_str_unescape(raw.p, raw.len, (uint8_t *)buf, sizeof buf);
        if (bn != 3 || strncasecmp(buf, "JWT", 3) != 0) return JWT_E_TYP;
    }

    /* The configured keys decide: never an HMAC over public-key bytes. */
    if (!k) return JWT_E_ALG_KEY;
    if (*alg == JWT_ALG_HS256 ? !k->_secret : (!k->_pkey || k->_pkey_alg != *alg))
        return JWT_E_ALG_KEY;
    return 0;
}

/* ---- signature -------------------------------------------------------------- */

/* One DER INTEGER from an unsigned big-endian x[0..n): minimal, so leading
 * zero bytes go (keeping one for zero) and a 0x00 comes back when the top
 * bit is set, DER integers being signed. */
static size_t der_int(const uint8_t *x, size_t n, uint8_t *out)
{
    size_t i = 0;
    while (i + 1 < n && x[i] == 0) i++;
    size_t len = n - i, pad = x[i] >> 7;
    out[0] = 0x02;
    out[1] = (uint8_t)(len + pad);
    out[2] = 0;
    memcpy(out + 2 + pad, x + i, len);
    return 2 + pad + len;
}

/* RFC 7518 §3.4's R||S (two 32-byte big-endian integers) as the DER
 * ECDSA-Sig-Value OpenSSL verifies: SEQUENCE { INTEGER r, INTEGER s }.
 * At most 2 + 2 * 35 = 72 bytes, so the lengths are all short-form. */
static size_t es256_raw_to_der(const uint8_t raw[64], uint8_t der[72])
{
    size_t n = der_int(raw, 32, der + 2);
    n += der_int(raw + 32, 32, der + 2 + n);
    der[0] = 0x30;
    der[1] = (uint8_t)n;
    return n + 2;
}

static int evp_verify(EVP_PKEY *pk, const uint8_t *sig, size_t siglen, const uint8_t *msg, size_t n)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pk) == 1 &&
             EVP_DigestVerify(ctx, sig, siglen, msg, n) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();  /* a failed verify leaves reasons that would mislead SSL_get_error() */
    return ok;
}

/* sig[0..siglen) against msg[0..n) (the signing input "header.payload"). */
static int check_signature(const jwt_keys_t *k, jwt_alg_t alg, const uint8_t *sig, size_t siglen,
                           const uint8_t *msg, size_t n)
{
    if (alg == JWT_ALG_HS256) {
        uint8_t mac[EVP_MAX_MD_SIZE];
        unsigned maclen = 0;
        if (siglen != 32) return JWT_E_SIG_LENGTH;
        if (!HMAC(EVP_sha256(), k->_secret, (int)k->_secret_len, msg, n, mac, &maclen) || maclen != 32) {
            ERR_clear_error();
            return JWT_E_SIGNATURE;
        }
        return CRYPTO_memcmp(mac, sig, 32) == 0 ? 0 : JWT_E_SIGNATURE;
    }
    if (alg == JWT_ALG_RS256) {
        if (siglen != (size_t)EVP_PKEY_get_size(k->_pkey)) return JWT_E_SIG_LENGTH;
        return evp_verify(k->_pkey, sig, siglen, msg, n) ? 0 : JWT_E_SIGNATURE;
    }
    uint8_t der[72];
    if (siglen != 64) return JWT_E_SIG_LENGTH;
    size_t dn = es256_raw_to_der(sig, der);
    return evp_verify(k->_pkey, der, dn, msg, n) ? 0 : JWT_E_SIGNATURE;
}

/* ---- claims ------------------------------------------------------------------ */

enum { C_ISS, C_SUB, C_AUD, C_EXP, C_NBF, C_IAT, C_ROOMS, C_EMIT, C_COUNT };
static const char *const claim_names[C_COUNT] = {
    "iss", "sub", "aud", "exp", "nbf", "iat", "rooms", "emit"
};
static const char *const emit_kinds[] = { "broadcast", "all", "room", "conn" };
#define EMIT_KINDS (sizeof emit_kinds / sizeof emit_kinds[0])

static int check_types(const json_span_t *v)
{
    if (v[C_ISS].p && !is_str(v[C_ISS])) return JWT_E_CLAIM_TYPE;
    if (v[C_SUB].p && !is_str(v[C_SUB])) return JWT_E_CLAIM_TYPE;
    if (v[C_AUD].p && !is_str(v[C_AUD]) && !is_str_array(v[C_AUD])) return JWT_E_CLAIM_TYPE;
    for (int i = C_EXP; i <= C_IAT; i++)
        if (v[i].p && !is_num(v[i])) return JWT_E_CLAIM_TYPE;
    if (v[C_ROOMS].p && !is_str_array(v[C_ROOMS])) return JWT_E_CLAIM_TYPE;
    if (v[C_EMIT].p && !is_str_array(v[C_EMIT])) return JWT_E_CLAIM_TYPE;
    return 0;
}

static int check_times(const json_span_t *v, const jwt_policy_t *pol, uint64_t now, jwt_claims_t *out)
{
    uint64_t *dst[3] = { &out->exp, &out->nbf, &out->iat };
    for (int i = 0; i < 3; i++)
        if (v[C_EXP + i].p && numeric_date(v[C_EXP + i], dst[i]) != 0) return JWT_E_TIME_RANGE;
    uint64_t late = sat_add(now, pol->leeway_s);
    if (!v[C_EXP].p) {
        if (pol->require_exp) return JWT_E_EXP_MISSING;
    } else if (sat_add(out->exp, pol->leeway_s) <= now) {
        return JWT_E_EXPIRED;  /* exp <= now - leeway */
    }
    if (v[C_NBF].p && out->nbf > late) return JWT_E_NOT_YET_VALID;
    if (pol->check_iat && v[C_IAT].p && out->iat > late) return JWT_E_IAT_FUTURE;
    return 0;
}

static int check_audience(json_span_t aud, const char *want)
{
    if (!want) return 0;
    if (!aud.p) return JWT_E_AUDIENCE;
    if (is_str(aud)) return raw_is(str_raw(aud), want) ? 0 : JWT_E_AUDIENCE;
    arr_iter_t it;
    json_span_t raw;
    arr_begin(&it, aud);
    while (arr_next_str(&it, &raw) > 0)
        if (raw_is(raw, want)) return 0;
    return JWT_E_AUDIENCE;
}

static int check_rooms(json_span_t rooms)
{
    arr_iter_t it;
    json_span_t raw;
    uint8_t buf[JWT_ROOM_PATTERN_MAX];
    if (!rooms.p) return 0;
    arr_begin(&it, rooms);
    while (arr_next_str(&it, &raw) > 0) {
        size_t n = json_str_unescape(raw.p, raw.len, buf, sizeof buf);
        if (n == SIZE_MAX || has_control(buf, n)) return JWT_E_ROOMS;
    }
    return 0;
}

static int emit_kind_known(json_span_t raw)
{
    for (size_t i = 0; i < EMIT_KINDS; i++)
        if (raw_is(raw, emit_kinds[i])) return 1;
    return 0;
}

static int check_emit(json_span_t emit)
{
    arr_iter_t it;
    json_span_t raw;
    if (!emit.p) return 0;
    arr_begin(&it, emit);
    while (arr_next_str(&it, &raw) > 0)
        if (!emit_kind_known(raw)) return JWT_E_EMIT;
    return 0;
}

static int check_claims(const uint8_t *p, size_t n, const jwt_policy_t *pol, uint64_t now,
                        jwt_claims_t *out)
{
    json_span_t v[C_COUNT];
    int r;
    if (!ws_utf8_is_valid(p, n)) return JWT_E_PAYLOAD;
    if ((r = collect(p, n, claim_names, C_COUNT, v, JWT_E_PAYLOAD)) != 0) return r;
    if ((r = check_types(v)) != 0) return r;
    if ((r = check_times(v, pol, now, out)) != 0) return r;
    if (pol->issuer && !(v[C_ISS].p && raw_is(str_raw(v[C_ISS]), pol->issuer))) return JWT_E_ISSUER;
    if ((r = check_audience(v[C_AUD], pol->audience)) != 0) return r;
    if (v[C_SUB].p) {
        json_span_t raw = str_raw(v[C_SUB]);
        size_t sn = json_str_unescape(raw.p, raw.len, (uint8_t *)out->sub, JWT_SUB_MAX);
        if (sn == SIZE_MAX || has_control((const uint8_t *)out->sub, sn)) return JWT_E_SUB;
        out->sub[sn] = '\0';
        out->sub_len = sn;
        out->has_sub = 1;
    }
    if ((r = check_rooms(v[C_ROOMS])) != 0) return r;
    if ((r = check_emit(v[C_EMIT])) != 0) return r;
    if (v[C_ROOMS].p) out->rooms = v[C_ROOMS];
    if (v[C_EMIT].p) out->emit = v[C_EMIT];
    return 0;
}

/* ---- verify ------------------------------------------------------------------- */

static void claims_reset(jwt_claims_t *c)
{
    c->alg = JWT_ALG_NONE_CONFIGURED;
    c->has_sub = 0;
    c->sub[0] = '\0';
    c->sub_len = 0;
    c->exp = c->nbf = c->iat = 0;
    c->rooms = (json_span_t){ NULL, 0 };
    c->emit = (json_span_t){ NULL, 0 };
}

static int verify(const jwt_keys_t *k, const uint8_t *t, size_t len, const jwt_policy_t *pol,
                  uint64_t now, jwt_claims_t *out)
{
    /* shape: three base64url parts, all checked before any is decoded */
    if (len > JWT_TOKEN_MAX) return JWT_E_TOO_LONG;
    if (!t || len == 0) return JWT_E_MALFORMED;
    const uint8_t *d1 = memchr(t, '.', len);
    if (!d1) return JWT_E_MALFORMED;
    const uint8_t *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - t));
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - t))) return JWT_E_MALFORMED;
    const uint8_t *hp = t, *pp = d1 + 1, *sp = d2 + 1;
    size_t hl = (size_t)(d1 - t), pl = (size_t)(d2 - pp), sl = len - (size_t)(sp - t);
    size_t hn = b64url_decoded_len(hp, hl), pn = b64url_decoded_len(pp, pl);
    size_t sn = b64url_decoded_len(sp, sl);
    if (hn == SIZE_MAX || pn == SIZE_MAX || sn == SIZE_MAX) return JWT_E_BASE64;
    if (hn > JWT_PAYLOAD_MAX || pn > JWT_PAYLOAD_MAX) return JWT_E_TOO_BIG;

    /* header, decoded into the claims buffer the payload will reuse */
    jwt_alg_t alg = JWT_ALG_NONE_CONFIGURED;
    b64url_decode(hp, hl, out->_payload);
    int r = check_header(out->_payload, hn, k, &alg);
    if (r) return r;

    /* signature over the token's own bytes "header.payload" */
    uint8_t sig[JWT_RSA_BITS_MAX / 8];
    if (sn > sizeof sig) return JWT_E_SIG_LENGTH;
    b64url_decode(sp, sl, sig);
    if ((r = check_signature(k, alg, sig, sn, t, (size_t)(d2 - t))) != 0) return r;

    /* claims, only now that they are authentic */
    b64url_decode(pp, pl, out->_payload);
    if ((r = check_claims(out->_payload, pn, pol, now, out)) != 0) return r;
    out->alg = alg;
    return JWT_OK;
}

int jwt_verify(const jwt_keys_t *k, const char *token, size_t len, const jwt_policy_t *pol,
               uint64_t now_s, jwt_claims_t *out)
{
    static const jwt_policy_t none;
    claims_reset(out);
    int r = verify(k, (const uint8_t *)token, len, pol ? pol : &none, now_s, out);
    if (r != JWT_OK) claims_reset(out);
    return r;
}

/* ---- permissions ------------------------------------------------------------ */

int jwt_claims_allows_room(const jwt_claims_t *c, const char *room)
{
    return jwt_rooms_allow(c->rooms, room);
}

int jwt_rooms_allow(json_span_t rooms, const char *room)
{
    arr_iter_t it;
    json_span_t raw;
    char pat[JWT_ROOM_PATTERN_MAX + 1];
    if (!rooms.len) return 1;
    arr_begin(&it, rooms);
    while (arr_next_str(&it, &raw) > 0) {
        size_t n = json_str_unescape(raw.p, raw.len, (uint8_t *)pat, JWT_ROOM_PATTERN_MAX);
        if (n == SIZE_MAX) continue;  /* jwt_verify() refused those */
        pat[n] = '\0';
        if (fnmatch(pat, room, 0) == 0) return 1;
    }
    return 0;
}

int jwt_claims_allows_target(const jwt_claims_t *c, const char *kind)
{
    arr_iter_t it;
    json_span_t raw;
    if (!c->emit.len) return 1;
    arr_begin(&it, c->emit);
    while (arr_next_str(&it, &raw) > 0)
        if (raw_is(raw, kind)) return 1;
    return 0;
}
