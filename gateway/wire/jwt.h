/* jwt.h — verification of JSON Web Tokens (RFC 7519) in JWS compact form
 * (RFC 7515) for the opening handshake.  Pure code: no sockets, no logging.
 *
 * Algorithms: HS256 (shared secret), RS256 (RSA public key, >= 2048 bits),
 * ES256 (EC P-256 public key; signatures are the 64-byte R||S of RFC 7518
 * §3.4, not DER).  Everything else, "none" included, is refused.
 *
 * Which algorithm a token may use is decided by the configured keys, never
 * by the token alone: an HS256 token is checked only against the configured
 * shared secret, so a verifier holding only a public key refuses it (the
 * RS256/HS256 confusion attack, where the public key's bytes are used as an
 * HMAC secret).  Header parameters that name keys (kid, jku, jwk, x5u, x5c)
 * are ignored: keys come only from configuration.
 *
 * Strictness, each an error:
 *   - the token is longer than JWT_TOKEN_MAX bytes, or is not exactly three
 *     base64url parts; base64url with '=' padding, characters outside the
 *     URL-safe alphabet, a length of 4n+1 or non-zero unused trailing bits;
 *   - the decoded header or payload is larger than JWT_PAYLOAD_MAX, is not
 *     UTF-8, or is not one JSON object (json_scan.h strictness);
 *   - a header parameter or claim this module reads (alg, typ, crit, iss,
 *     sub, aud, exp, nbf, iat, rooms, emit) appears twice (RFC 7515 §4,
 *     RFC 7519 §4 allow refusing; keys are compared after unescaping, so
 *     "alg" and "\u0061lg" are the same name);
 *   - "crit" is present (no extension is understood), "typ" is present and
 *     not "JWT" (ASCII case-insensitive);
 *   - a claim this module reads has the wrong JSON type.
 *
 * Time claims (exp, nbf, iat) are JSON numbers of seconds since the epoch;
 * fractions and exponents are accepted and rounded *up* to whole seconds
 * (exact for the integer `now_s` comparisons below), values beyond
 * UINT64_MAX saturate, negative values are refused (JWT_E_TIME_RANGE).
 * With L = the policy's leeway:  expired when exp <= now - L; not yet valid
 * when nbf > now + L; issued in the future when iat > now + L (checked
 * only if the policy asks).
 *
 * Errors go to the OpenSSL error queue of the calling thread while keys
 * load or signatures are checked; this module clears the queue before it
 * returns, so a later SSL_get_error() on the same thread is not misled.
 */
#ifndef WSGW_JWT_H
#define WSGW_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "json_scan.h"

#define JWT_TOKEN_MAX        8192  /* bytes of compact token; longer: JWT_E_TOO_LONG */
#define JWT_PAYLOAD_MAX      4096  /* decoded header / payload bytes; more: JWT_E_TOO_BIG */
#define JWT_SUB_MAX          128   /* bytes of `sub` after unescaping; more: JWT_E_SUB */
#define JWT_ROOM_PATTERN_MAX 255   /* bytes of one `rooms` pattern; more: JWT_E_ROOMS */
#define JWT_HS256_SECRET_MIN 32    /* RFC 7518 §3.2: at least the hash size */
#define JWT_HS256_SECRET_MAX 4096  /* a sanity bound: HMAC hashes longer keys anyway */
#define JWT_RSA_BITS_MIN     2048  /* RFC 7518 §3.3 */
#define JWT_RSA_BITS_MAX     8192  /* bounds the signature buffer */

typedef enum jwt_alg {
    JWT_ALG_NONE_CONFIGURED = 0,
    JWT_ALG_HS256,
    JWT_ALG_RS256,
    JWT_ALG_ES256
} jwt_alg_t;

/* Every code has a stable reason from jwt_err_str(); reasons are constant
 * strings, safe to log, and never contain token bytes. */
typedef enum jwt_err {
    JWT_OK                = 0,
    /* shape */
    JWT_E_MALFORMED       = -1,   /* "malformed token": not three '.'-separated parts */
    JWT_E_TOO_LONG        = -2,   /* "token too long" */
    JWT_E_BASE64          = -3,   /* "bad base64url" */
    JWT_E_TOO_BIG         = -4,   /* "header or payload too large" */
    JWT_E_HEADER          = -5,   /* "header is not a UTF-8 JSON object" */
    JWT_E_PAYLOAD         = -6,   /* "payload is not a UTF-8 JSON object" */
    JWT_E_DUPLICATE       = -7,   /* "duplicate header parameter or claim" */
    /* header */
    JWT_E_ALG_MISSING     = -10,  /* "alg missing" */
    JWT_E_ALG_NONE        = -11,  /* "alg none refused" (any letter case) */
    JWT_E_ALG_UNSUPPORTED = -12,  /* "alg unsupported" (also: alg not a string) */
    JWT_E_ALG_KEY         = -13,  /* "alg does not match the configured key" */
    JWT_E_CRIT            = -14,  /* "crit header unsupported" */
    JWT_E_TYP             = -15,  /* "typ is not JWT" */
    /* signature */
    JWT_E_SIG_LENGTH      = -20,  /* "signature length wrong for alg" (e.g. DER ES256) */
    JWT_E_SIGNATURE       = -21,  /* "bad signature" */
    /* claims */
    JWT_E_EXPIRED         = -30,  /* "token expired" */
    JWT_E_NOT_YET_VALID   = -31,  /* "token not yet valid" */
    JWT_E_IAT_FUTURE      = -32,  /* "token issued in the future" */
    JWT_E_EXP_MISSING     = -33,  /* "exp claim missing" */
    JWT_E_ISSUER          = -34,  /* "wrong or missing issuer" */
    JWT_E_AUDIENCE        = -35,  /* "wrong or missing audience" */
    JWT_E_CLAIM_TYPE      = -36,  /* "claim has the wrong JSON type" */
    JWT_E_TIME_RANGE      = -37,  /* "time claim is negative" */
    JWT_E_SUB             = -38,  /* "sub too long or has control characters" */
    JWT_E_ROOMS           = -39,  /* "rooms pattern too long or has control characters" */
    JWT_E_EMIT            = -40   /* "emit names an unknown target" */
} jwt_err_t;

/* The stable reason for a code; "unknown error" for a value not listed. */
const char *jwt_err_str(int code);

/* ---- keys --------------------------------------------------------------- */

/* Verification keys: an HS256 secret and/or one public key.  Fields are
 * private.  Immutable after jwt_keys_load(), so one set may serve many
 * threads at once. */
struct evp_pkey_st;
typedef struct jwt_keys {
    uint8_t            *_secret;      /* heap copy; NULL: no HS256 */
    size_t              _secret_len;
    struct evp_pkey_st *_pkey;        /* EVP_PKEY; NULL: no RS256/ES256 */
    jwt_alg_t           _pkey_alg;    /* JWT_ALG_RS256 or JWT_ALG_ES256 */
} jwt_keys_t;

/* Fills *k (overwritten without being freed: free a loaded set first).
 * hs256_secret: NUL-terminated secret, its bytes are the HMAC key (at least
 * JWT_HS256_SECRET_MIN..MAX of them), or NULL.  pubkey_pem_path: a PEM file
 * holding one SubjectPublicKeyInfo ("BEGIN PUBLIC KEY") — RSA of
 * JWT_RSA_BITS_MIN..MAX bits enables RS256, EC on P-256 enables ES256; any
 * other type or curve is refused — or NULL.  At least one must be given.
 * Returns 0, or -1 with a message in err[0..errlen) naming the file and
 * OpenSSL's reason; *k is then empty (jwt_keys_free() is still safe).
 * The secret is copied; the caller's string is not kept. */
int jwt_keys_load(jwt_keys_t *k, const char *hs256_secret, const char *pubkey_pem_path,
                  char *err, size_t errlen);

/* Frees what *k holds (the secret is wiped first) and leaves it empty.
 * Safe on an empty or zero-initialised set, and twice. */
void jwt_keys_free(jwt_keys_t *k);

/* ---- verification ------------------------------------------------------- */

typedef struct jwt_policy {
    uint32_t    leeway_s;    /* clock skew allowed on exp/nbf/iat */
    int         require_exp; /* 1: a token without exp is refused */
    int         check_iat;   /* 1: refuse iat > now + leeway */
    const char *issuer;      /* NULL: any (iss, if present, must still be a string) */
    const char *audience;    /* NULL: any — note RFC 7519 §4.1.3 would refuse a token
                                with an aud when we have no identity to match; the
                                gateway accepts it when no audience is configured */
} jwt_policy_t;

/* What a verified token says.  sub, exp, nbf, iat are copies; `rooms` and
 * `emit` are raw JSON spans (the arrays, brackets included; len 0 when the
 * claim is absent) into _payload, the decoded payload this struct owns.
 * Lifetime: valid until the struct is passed to jwt_verify() again.  Do not
 * copy the struct by value and keep using the copy's spans: they still point
 * into the original.  About 4.3 KB: meant to live on the stack or in a
 * per-loop scratch during the handshake, not per connection — copy out what
 * a connection keeps. */
typedef struct jwt_claims {
    jwt_alg_t   alg;                  /* the algorithm that verified the token */
    int         has_sub;              /* 1 when `sub` was present */
    char        sub[JWT_SUB_MAX + 1]; /* NUL-terminated, no control characters, UTF-8 */
    size_t      sub_len;
    uint64_t    exp, nbf, iat;        /* seconds, rounded up; 0 when absent */
    json_span_t rooms;                /* array of strings: fnmatch patterns of rooms */
    json_span_t emit;                 /* array of strings among broadcast/all/room/conn */
    uint8_t     _payload[JWT_PAYLOAD_MAX];
} jwt_claims_t;

/* Verifies token[0..len) (no NUL needed, no surrounding whitespace) with
 * the keys `k` at time now_s (seconds since the epoch) under `pol` (NULL:
 * all-zero policy).  Order: shape and base64url of all parts, header,
 * signature, then claims — a token's claims are read only once its
 * signature holds.  Returns JWT_OK with *out filled, or a negative
 * jwt_err_t; on error *out is reset (has_sub 0, sub "", times 0, spans
 * empty), so a failed token's claims are never seen. */
int jwt_verify(const jwt_keys_t *k, const char *token, size_t len, const jwt_policy_t *pol,
               uint64_t now_s, jwt_claims_t *out);

/* 1 when the user may join `room` (NUL-terminated): there is no `rooms`
 * claim, or one of its patterns matches it (fnmatch(pattern, room, 0), as
 * the configured join patterns do).  0 otherwise — also for an empty array.
 * `c` must hold the result of a successful jwt_verify(). */
int jwt_claims_allows_room(const jwt_claims_t *c, const char *room);
/* The same check on a copy of the `rooms` claim's raw JSON array (what a
 * connection keeps instead of the whole claims struct); len 0 = no claim. */
int jwt_rooms_allow(json_span_t rooms, const char *room);

/* 1 when the user may emit to a target of `kind` ("broadcast", "all",
 * "room" or "conn"): there is no `emit` claim, or it lists `kind`.  0
 * otherwise — also for an empty array. */
int jwt_claims_allows_target(const jwt_claims_t *c, const char *kind);

#endif
