/* fuzz_jwt.c — libFuzzer target for JWT verification.
 *
 * The first input byte picks a mode; the rest is data:
 *   mode 0: the data is a whole token, verified against an HS256 secret
 *           plus an RSA key, the EC key alone, or the secret alone;
 *   mode 1: the data is "header JSON \0 payload JSON" (or, without a NUL,
 *           a payload under {"alg":"HS256"}): the target signs it with the
 *           HS256 secret, so random claims get past the signature and
 *           reach the claim checks, under a policy the mode byte picks.
 * What must always hold, abort()ing if not:
 *   - every result has a known reason; on an error the claims are empty;
 *   - on success sub is a NUL-terminated string of sub_len bytes without
 *     control characters, rooms/emit are empty or JSON arrays inside the
 *     claims' own buffer, and the permission helpers answer;
 *   - an HS256-signed token verifies with the secret alone exactly when it
 *     does with the secret and the RSA key, and never with the RSA key
 *     alone (no alg confusion).
 * The keys are fixed: a secret and public keys embedded below as PEM text,
 * written to temporary files on the first call and loaded with
 * jwt_keys_load() (replay.c has no LLVMFuzzerInitialize).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "json_scan.h"
#include "jwt.h"

#define MUST(c) do { if (!(c)) abort(); } while (0)
#define NOW 1700000000ull
#define SECRET "fuzz-secret-0123456789abcdef-0123456789"

static const char RSA_PEM[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA6FnrUJ7C+tkxruJDVUM8\n"
    "Bp2bMFyOMpKQBwj09V7E6+hzmeMuVSc328DHQ8sKkwm5zT4FBPGc5gAoAhRgPHTh\n"
    "n/Vobq2svGInxYhibMQim9HtWq79K0jwLabaJ/JRp3k00hcnyWHAgnqVdmQPdnWX\n"
    "r/aFpvPcdojOlvjFurwhynhSZr/begmx/D9oMH9QEzGB4PyT/NWvnLZdQoYknEtu\n"
    "tWpF6If7aiQl/BpWequp7f/AYqVuQ0GXYN1n/isp5+MIbshwGh0QwKSlziOh+1O2\n"
    "jR/ZoDL1hrZE26DNrK2r6MNboCttp3lFiNXQHPKfPRZNkW/F4Tghn5yNQbEoEY1n\n"
    "YwIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

static const char EC_PEM[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEXFw1FMH6WZgVHrA9SfV72L192B8o\n"
    "MMsoq+SuaO7SQpTE/TKaVOoqpqkHCWdwOFwxkKHC32iAB/wF/xjpp6OofA==\n"
    "-----END PUBLIC KEY-----\n";

static jwt_keys_t k_hs_rsa, k_ec, k_hs, k_rsa;
static jwt_claims_t C;

static void load_pem(jwt_keys_t *k, const char *secret, const char *pem)
{
    char path[] = "/tmp/fuzz_jwt.XXXXXX", err[256];
    if (!pem) {
        MUST(jwt_keys_load(k, secret, NULL, err, sizeof err) == 0);
        return;
    }
    int fd = mkstemp(path);
    MUST(fd >= 0);
    size_t n = strlen(pem);
    MUST(write(fd, pem, n) == (ssize_t)n);
    close(fd);
    int r = jwt_keys_load(k, secret, path, err, sizeof err);
    unlink(path);
    if (r != 0) { fprintf(stderr, "fuzz_jwt: %s\n", err); abort(); }
}

static void free_keys(void)
{
    jwt_keys_free(&k_hs_rsa);
    jwt_keys_free(&k_ec);
    jwt_keys_free(&k_hs);
    jwt_keys_free(&k_rsa);
}

static void init_once(void)
{
    static int done;
    if (done) return;
    done = 1;
    load_pem(&k_hs_rsa, SECRET, RSA_PEM);
    load_pem(&k_ec, NULL, EC_PEM);
    load_pem(&k_hs, SECRET, NULL);
    load_pem(&k_rsa, NULL, RSA_PEM);
    atexit(free_keys);
}

static size_t b64url(const uint8_t *s, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? s[i + 2] : 0);
        out[o++] = a[v >> 18];
        out[o++] = a[v >> 12 & 63];
        if (i + 1 < n) out[o++] = a[v >> 6 & 63];
        if (i + 2 < n) out[o++] = a[v & 63];
    }
    return o;
}

static void check_span(json_span_t s)
{
    if (!s.len) { MUST(s.p == NULL); return; }
    MUST(s.p >= C._payload && s.p + s.len <= C._payload + sizeof C._payload);
    MUST(s.p[0] == '[' && s.p[s.len - 1] == ']');
    MUST(json_scan_document(s.p, s.len, NULL) == JSON_OK);
}

/* The invariants of a result; returns r. */
static int check(int r, jwt_alg_t alg)
{
    MUST(strcmp(jwt_err_str(r), "unknown error") != 0);
    if (r != JWT_OK) {
        MUST(!C.has_sub && C.sub[0] == '\0' && C.sub_len == 0);
        MUST(C.exp == 0 && C.nbf == 0 && C.iat == 0);
        MUST(C.rooms.len == 0 && C.emit.len == 0 && C.alg == JWT_ALG_NONE_CONFIGURED);
        return r;
    }
    if (alg) MUST(C.alg == alg);
    MUST(C.sub_len <= JWT_SUB_MAX && C.sub[C.sub_len] == '\0' && strlen(C.sub) == C.sub_len);
    for (size_t i = 0; i < C.sub_len; i++) MUST((uint8_t)C.sub[i] >= 0x20 && C.sub[i] != 0x7F);
    check_span(C.rooms);
    check_span(C.emit);
    static const char *const rooms[] = { "", "lobby", "chat.general", "a*b", "x" };
    static const char *const kinds[] = { "broadcast", "all", "room", "conn", "other" };
    for (size_t i = 0; i < 5; i++) {
        int a = jwt_claims_allows_room(&C, rooms[i]), b = jwt_claims_allows_target(&C, kinds[i]);
        MUST(a == 0 || a == 1);
        MUST(b == 0 || b == 1);
        if (!C.rooms.len) MUST(a == 1);
        if (!C.emit.len) MUST(b == 1);
    }
    MUST(jwt_claims_allows_target(&C, "other") == !C.emit.len);
    return r;
}

static void fuzz_token(uint8_t sel, const uint8_t *d, size_t n)
{
    const jwt_keys_t *keys[] = { &k_hs_rsa, &k_ec, &k_hs };
    jwt_policy_t pol = { .leeway_s = sel & 0x80 ? 60 : 0 };
    check(jwt_verify(keys[(sel >> 2) % 3], (const char *)d, n, &pol, NOW, &C), 0);
}

static void fuzz_signed(uint8_t sel, const uint8_t *d, size_t n)
{
    static char tok[3 * JWT_TOKEN_MAX];
    const uint8_t *hdr = (const uint8_t *)"{\"alg\":\"HS256\"}", *pay = d;
    size_t hn = 15, pn = n;
    const uint8_t *nul = memchr(d, 0, n);
    if (nul) {
        hdr = d;
        hn = (size_t)(nul - d);
        pay = nul + 1;
        pn = n - hn - 1;
    }
    if ((hn + pn) / 3 * 4 + 64 > JWT_TOKEN_MAX + 16) return;  /* keep near the limit, not far past */
    size_t t = b64url(hdr, hn, tok);
    tok[t++] = '.';
    t += b64url(pay, pn, tok + t);
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned ml = 0;
    MUST(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const uint8_t *)tok, t, mac, &ml));
    tok[t++] = '.';
    t += b64url(mac, ml, tok + t);

    jwt_policy_t pol = {
        .leeway_s = sel & 0x04 ? 30 : 0,
        .require_exp = !!(sel & 0x08),
        .check_iat = !!(sel & 0x10),
        .issuer = sel & 0x20 ? "iss" : NULL,
        .audience = sel & 0x40 ? "aud" : NULL,
    };
    uint64_t now = sel & 0x80 ? NOW : 1000;
    int r = check(jwt_verify(&k_hs, tok, t, &pol, now, &C), JWT_ALG_HS256);
    int r2 = check(jwt_verify(&k_hs_rsa, tok, t, &pol, now, &C), JWT_ALG_HS256);
    MUST((r == JWT_OK) == (r2 == JWT_OK));  /* an RS256 header may fail differently */
    MUST(check(jwt_verify(&k_rsa, tok, t, &pol, now, &C), 0) != JWT_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    if (size < 1) return 0;
    /* an exact-size copy past the selector, so reads past the end are seen */
    uint8_t *d = malloc(size - 1 ? size - 1 : 1);
    MUST(d);
    memcpy(d, data + 1, size - 1);
    if (data[0] & 1) fuzz_signed(data[0], d, size - 1);
    else fuzz_token(data[0], d, size - 1);
    free(d);
    return 0;
}
