/* test_jwt.c — JWT verification: keys, shape, header, signatures, claims.
 *
 * Keys are generated here with OpenSSL (RSA 2048 and EC P-256, twice each:
 * the second pair signs "with another key") and written to PEM files in a
 * temporary directory for jwt_keys_load().  Tokens are signed here by a
 * small EVP signer (ES256 converted from DER to R||S), so every claim case
 * is a correctly signed token.  jwt.c is included to reach its statics
 * (base64url, the R||S -> DER conversion, NumericDate parsing); every
 * token is passed as an exact-size heap copy, so ASan sees any over-read.
 */
#include "test.h"

#include "jwt.c"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/rand.h>
#include <unistd.h>

#define NOW 1700000000ull
#define SECRET "0123456789abcdef0123456789abcdef-test-secret"

/* ---- fixture ---------------------------------------------------------------- */

static char g_dir[] = "/tmp/test_jwt.XXXXXX";
static EVP_PKEY *g_rsa, *g_rsa2, *g_ec, *g_ec2;
static char g_rsa_pem[256], g_ec_pem[256];
static jwt_keys_t K_HS, K_RSA, K_EC, K_HS_RSA;

static void path_in_dir(char *dst, size_t n, const char *name)
{
    snprintf(dst, n, "%s/%s", g_dir, name);
}

static void write_pubkey(EVP_PKEY *pk, const char *path)
{
    BIO *b = BIO_new_file(path, "w");
    if (!b || PEM_write_bio_PUBKEY(b, pk) != 1) { fprintf(stderr, "cannot write %s\n", path); exit(2); }
    BIO_free(b);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) { fprintf(stderr, "cannot write %s\n", path); exit(2); }
    fputs(text, f);
    fclose(f);
}

static EVP_PKEY *gen(const char *type, const char *curve, size_t bits)
{
    EVP_PKEY *pk = curve ? EVP_PKEY_Q_keygen(NULL, NULL, type, curve)
                 : bits ? EVP_PKEY_Q_keygen(NULL, NULL, type, bits)
                        : EVP_PKEY_Q_keygen(NULL, NULL, type);
    if (!pk) { fprintf(stderr, "keygen %s failed\n", type); exit(2); }
    return pk;
}

static void must_load(jwt_keys_t *k, const char *secret, const char *path)
{
    char err[256];
    if (jwt_keys_load(k, secret, path, err, sizeof err) != 0) {
        fprintf(stderr, "fixture: %s\n", err);
        exit(2);
    }
}

static void fixture_up(void)
{
    if (!mkdtemp(g_dir)) { perror("mkdtemp"); exit(2); }
    g_rsa = gen("RSA", NULL, 2048);
    g_rsa2 = gen("RSA", NULL, 2048);
    g_ec = gen("EC", "P-256", 0);
    g_ec2 = gen("EC", "P-256", 0);
    path_in_dir(g_rsa_pem, sizeof g_rsa_pem, "rsa.pem");
    path_in_dir(g_ec_pem, sizeof g_ec_pem, "ec.pem");
    write_pubkey(g_rsa, g_rsa_pem);
    write_pubkey(g_ec, g_ec_pem);
    must_load(&K_HS, SECRET, NULL);
    must_load(&K_RSA, NULL, g_rsa_pem);
    must_load(&K_EC, NULL, g_ec_pem);
    must_load(&K_HS_RSA, SECRET, g_rsa_pem);
}

static void fixture_down(void)
{
    static const char *files[] = { "rsa.pem", "ec.pem", "ed.pem", "p384.pem", "rsa1024.pem",
                                   "garbage.pem", "priv.pem", "empty.pem" };
    char p[256];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        path_in_dir(p, sizeof p, files[i]);
        unlink(p);
    }
    rmdir(g_dir);
    jwt_keys_free(&K_HS);
    jwt_keys_free(&K_RSA);
    jwt_keys_free(&K_EC);
    jwt_keys_free(&K_HS_RSA);
    EVP_PKEY_free(g_rsa);
    EVP_PKEY_free(g_rsa2);
    EVP_PKEY_free(g_ec);
    EVP_PKEY_free(g_ec2);
}

/* ---- signing ---------------------------------------------------------------- */

static size_t b64url(const uint8_t *s, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        out[o++] = a[v >> 18]; out[o++] = a[v >> 12 & 63]; out[o++] = a[v >> 6 & 63]; out[o++] = a[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        out[o++] = a[v >> 18]; out[o++] = a[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        out[o++] = a[v >> 18]; out[o++] = a[v >> 12 & 63]; out[o++] = a[v >> 6 & 63];
    }
    out[o] = '\0';
    return o;
}

/* How to sign: HS256 with a secret, RS256/ES256 with a private key. */
typedef struct signer {
    jwt_alg_t alg;
    const uint8_t *secret;
    size_t secret_len;
    EVP_PKEY *pk;
} signer_t;

static size_t sign_raw(const signer_t *s, const uint8_t *msg, size_t n, uint8_t *sig)
{
    if (s->alg == JWT_ALG_HS256) {
        unsigned len = 0;
        HMAC(EVP_sha256(), s->secret, (int)s->secret_len, msg, n, sig, &len);
        return len;
    }
    uint8_t der[1024];
    size_t len = sizeof der;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, s->pk) != 1 ||
        EVP_DigestSign(ctx, der, &len, msg, n) != 1) { fprintf(stderr, "sign failed\n"); exit(2); }
    EVP_MD_CTX_free(ctx);
    if (s->alg == JWT_ALG_RS256) { memcpy(sig, der, len); return len; }
    /* ES256: DER ECDSA-Sig-Value -> R||S, each left-padded to 32 bytes */
    const uint8_t *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
    BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
    ECDSA_SIG_free(es);
    return 64;
}

static char g_tok[16384];

/* b64url(header) "." b64url(payload) "." b64url(signature) in g_tok. */
static const char *tok_n(const signer_t *s, const char *hdr, size_t hn, const char *pay, size_t pn)
{
    uint8_t sig[1024];
    size_t n = b64url((const uint8_t *)hdr, hn, g_tok);
    g_tok[n++] = '.';
    n += b64url((const uint8_t *)pay, pn, g_tok + n);
    size_t sn = sign_raw(s, (const uint8_t *)g_tok, n, sig);
    g_tok[n++] = '.';
    b64url(sig, sn, g_tok + n);
    return g_tok;
}

static const char *tok(const signer_t *s, const char *hdr, const char *pay)
{
    return tok_n(s, hdr, strlen(hdr), pay, strlen(pay));
}

static signer_t HS(void) { return (signer_t){ JWT_ALG_HS256, (const uint8_t *)SECRET, strlen(SECRET), NULL }; }
static signer_t RS(void) { return (signer_t){ JWT_ALG_RS256, NULL, 0, g_rsa }; }
static signer_t ES(void) { return (signer_t){ JWT_ALG_ES256, NULL, 0, g_ec }; }

#define HDR_HS "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define HDR_RS "{\"alg\":\"RS256\",\"typ\":\"JWT\"}"
#define HDR_ES "{\"alg\":\"ES256\",\"typ\":\"JWT\"}"

/* An HS256 token with the given payload, in g_tok. */
static const char *hs(const char *payload)
{
    signer_t s = HS();
    return tok(&s, HDR_HS, payload);
}

/* ---- verifying -------------------------------------------------------------- */

static jwt_claims_t C;
static char *g_copy;

static int verify_n(const jwt_keys_t *k, const char *t, size_t n, const jwt_policy_t *pol, uint64_t now)
{
    free(g_copy);
    g_copy = malloc(n ? n : 1);
    memcpy(g_copy, t, n);
    return jwt_verify(k, g_copy, n, pol, now, &C);
}

static int V(const jwt_keys_t *k, const char *t, const jwt_policy_t *pol, uint64_t now)
{
    return verify_n(k, t, strlen(t), pol, now);
}

/* HS256-signed payload verified at NOW under pol. */
static int VP(const char *payload, const jwt_policy_t *pol)
{
    return V(&K_HS, hs(payload), pol, NOW);
}

#define CHECK_ERR(expr, code) do {                                             \
        int r_ = (expr);                                                       \
        CHECK_MSG(r_ == (code), "%d (%s) != %d (%s)", r_, jwt_err_str(r_),     \
                  (int)(code), jwt_err_str(code));                             \
    } while (0)

static int span_is(json_span_t sp, const char *lit)
{
    size_t n = strlen(lit);
    return sp.len == n && (n == 0 || memcmp(sp.p, lit, n) == 0);
}

/* ---- keys ------------------------------------------------------------------- */

static void test_keys_load_ok(void)
{
    CHECK(K_HS._secret && K_HS._secret_len == strlen(SECRET) && !K_HS._pkey);
    CHECK(!K_RSA._secret && K_RSA._pkey && K_RSA._pkey_alg == JWT_ALG_RS256);
    CHECK(!K_EC._secret && K_EC._pkey && K_EC._pkey_alg == JWT_ALG_ES256);
    CHECK(K_HS_RSA._secret && K_HS_RSA._pkey_alg == JWT_ALG_RS256);
    CHECK_INT(ERR_peek_error(), 0);
}

/* Loads and expects failure with `want` (and the path, if any) in err. */
static int load_fails(const char *secret, const char *path, const char *want)
{
    jwt_keys_t k;
    char err[256] = "";
    int r = jwt_keys_load(&k, secret, path, err, sizeof err);
    int ok = r == -1 && !k._secret && !k._pkey && strstr(err, want) &&
             (!path || strstr(err, path)) && ERR_peek_error() == 0;
    if (!ok) fprintf(stderr, "  load_fails(%s): r=%d err=\"%s\"\n", path ? path : "-", r, err);
    jwt_keys_free(&k);
    return ok;
}

static void test_keys_load_errors(void)
{
    char p[256];
    CHECK(load_fails(NULL, NULL, "no JWT key"));
    CHECK(load_fails("short-secret", NULL, "HS256 secret has 12 bytes"));
    CHECK(load_fails("0123456789abcdef0123456789abcde", NULL, "31 bytes"));

    path_in_dir(p, sizeof p, "missing.pem");
    CHECK(load_fails(NULL, p, "cannot open"));
    path_in_dir(p, sizeof p, "garbage.pem");
    write_text(p, "this is not PEM\n");
    CHECK(load_fails(NULL, p, "no PEM public key"));
    path_in_dir(p, sizeof p, "empty.pem");
    write_text(p, "");
    CHECK(load_fails(NULL, p, "no PEM public key"));
    /* a private key file is not a public key file */
    path_in_dir(p, sizeof p, "priv.pem");
    BIO *b = BIO_new_file(p, "w");
    CHECK(b && PEM_write_bio_PrivateKey(b, g_ec, NULL, NULL, 0, NULL, NULL) == 1);
    BIO_free(b);
    CHECK(load_fails(NULL, p, "no PEM public key"));
    /* a good secret does not excuse a bad key file */
    CHECK(load_fails(SECRET, p, "no PEM public key"));

    EVP_PKEY *ed = gen("ED25519", NULL, 0), *p384 = gen("EC", "P-384", 0), *small = gen("RSA", NULL, 1024);
    path_in_dir(p, sizeof p, "ed.pem");
    write_pubkey(ed, p);
    CHECK(load_fails(NULL, p, "ED25519 public key is not supported"));
    path_in_dir(p, sizeof p, "p384.pem");
    write_pubkey(p384, p);
    CHECK(load_fails(NULL, p, "curve secp384r1 is not supported"));
    path_in_dir(p, sizeof p, "rsa1024.pem");
    write_pubkey(small, p);
    CHECK(load_fails(NULL, p, "RSA key of 1024 bits"));
    EVP_PKEY_free(ed);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(small);

    /* free is idempotent and leaves the set empty */
    jwt_keys_t k;
    must_load(&k, SECRET, g_ec_pem);
    jwt_keys_free(&k);
    jwt_keys_free(&k);
    CHECK(!k._secret && !k._pkey && k._secret_len == 0);
    jwt_keys_t z = { 0 };
    jwt_keys_free(&z);
}

static void test_load_error_message_null_buffer(void)
{
    jwt_keys_t k;
    CHECK_INT(jwt_keys_load(&k, NULL, NULL, NULL, 0), -1);
    CHECK_INT(jwt_keys_load(&k, "x", NULL, NULL, 0), -1);
}

/* ---- valid tokens -------------------------------------------------------------- */

#define GOOD_PAYLOAD "{\"sub\":\"user-42\",\"exp\":1700000600,\"iat\":1700000000,"  \
                     "\"rooms\":[\"chat.*\",\"lobby\"],\"emit\":[\"room\",\"conn\"]}"

static int check_good_claims(jwt_alg_t alg)
{
    return C.alg == alg && C.has_sub && strcmp(C.sub, "user-42") == 0 && C.sub_len == 7 &&
           C.exp == 1700000600 && C.iat == NOW && C.nbf == 0 &&
           span_is(C.rooms, "[\"chat.*\",\"lobby\"]") && span_is(C.emit, "[\"room\",\"conn\"]");
}

static void test_valid_hs256(void)
{
    signer_t s = HS();
    CHECK_ERR(V(&K_HS, tok(&s, HDR_HS, GOOD_PAYLOAD), NULL, NOW), JWT_OK);
    CHECK(check_good_claims(JWT_ALG_HS256));
    /* the HS256 secret also works beside a public key */
    CHECK_ERR(V(&K_HS_RSA, tok(&s, HDR_HS, GOOD_PAYLOAD), NULL, NOW), JWT_OK);
    /* no typ, whitespace everywhere, escaped names */
    CHECK_ERR(V(&K_HS, tok(&s, " { \"\\u0061lg\" : \"HS256\" } ", " {\"s\\u0075b\":\"user-42\"} "),
                NULL, NOW), JWT_OK);
    CHECK_STR(C.sub, "user-42");
}

static void test_valid_rs256(void)
{
    signer_t s = RS();
    CHECK_ERR(V(&K_RSA, tok(&s, HDR_RS, GOOD_PAYLOAD), NULL, NOW), JWT_OK);
    CHECK(check_good_claims(JWT_ALG_RS256));
    CHECK_ERR(V(&K_HS_RSA, tok(&s, HDR_RS, GOOD_PAYLOAD), NULL, NOW), JWT_OK);
    CHECK_INT(ERR_peek_error(), 0);
}

static void test_valid_es256(void)
{
    signer_t s = ES();
    /* many signatures, so R and S with and without their top bit set (and
     * now and then a leading zero byte) pass through the DER conversion */
    for (int i = 0; i < 64; i++) {
        char pay[128];
        snprintf(pay, sizeof pay, "{\"sub\":\"u%d\",\"exp\":%llu}", i, NOW + 1);
        CHECK_ERR(V(&K_EC, tok(&s, HDR_ES, pay), NULL, NOW), JWT_OK);
        CHECK(C.alg == JWT_ALG_ES256 && C.exp == NOW + 1);
    }
    CHECK_ERR(V(&K_EC, tok(&s, HDR_ES, GOOD_PAYLOAD), NULL, NOW), JWT_OK);
    CHECK(check_good_claims(JWT_ALG_ES256));
}

/* RFC 7515 Appendix A.1: the JWK "k" value decoded, and the example JWS. */
static void test_rfc7515_a1(void)
{
    static const char k64[] = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
    static const char t[] =
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
        ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
        ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    char secret[65];
    size_t n = b64url_decoded_len((const uint8_t *)k64, strlen(k64));
    CHECK_INT(n, 64);
    b64url_decode((const uint8_t *)k64, strlen(k64), (uint8_t *)secret);
    secret[64] = '\0';
    CHECK_INT(strlen(secret), 64);  /* no NUL inside: usable as a C string */
    jwt_keys_t k;
    must_load(&k, secret, NULL);
    jwt_policy_t pol = { .issuer = "joe", .require_exp = 1 };
    CHECK_ERR(V(&k, t, &pol, 1300819379), JWT_OK);
    CHECK(C.exp == 1300819380 && !C.has_sub && C.rooms.len == 0);
    CHECK_ERR(V(&k, t, &pol, 1300819380), JWT_E_EXPIRED);
    CHECK_ERR(V(&k, t, &pol, NOW), JWT_E_EXPIRED);
    pol.issuer = "jo";
    CHECK_ERR(V(&k, t, &pol, 1300819379), JWT_E_ISSUER);
    CHECK_ERR(V(&K_HS, t, NULL, 1300819379), JWT_E_SIGNATURE);
    jwt_keys_free(&k);
}

/* ---- header and algorithm -------------------------------------------------- */

static void test_alg_none_missing_unsupported(void)
{
    signer_t s = HS();
    /* alg none, with an empty signature as its producers send it */
    char t[512];
    size_t n = b64url((const uint8_t *)"{\"alg\":\"none\"}", 14, t);
    t[n++] = '.';
    n += b64url((const uint8_t *)"{\"sub\":\"admin\"}", 15, t + n);
    strcpy(t + n, ".");
    CHECK_ERR(V(&K_HS, t, NULL, NOW), JWT_E_ALG_NONE);
    CHECK(!C.has_sub && C.sub[0] == '\0');
    CHECK_ERR(V(&K_HS, tok(&s, "{\"alg\":\"None\"}", "{}"), NULL, NOW), JWT_E_ALG_NONE);
    CHECK_ERR(V(&K_HS, tok(&s, "{\"alg\":\"NONE\"}", "{}"), NULL, NOW), JWT_E_ALG_NONE);
    CHECK_ERR(V(&K_HS, tok(&s, "{\"alg\":\"n\\u006fne\"}", "{}"), NULL, NOW), JWT_E_ALG_NONE);

    CHECK_ERR(V(&K_HS, tok(&s, "{}", "{}"), NULL, NOW), JWT_E_ALG_MISSING);
    CHECK_ERR(V(&K_HS, tok(&s, "{\"typ\":\"JWT\"}", "{}"), NULL, NOW), JWT_E_ALG_MISSING);
    static const char *const bad[] = {
        "{\"alg\":\"HS512\"}", "{\"alg\":\"hs256\"}", "{\"alg\":\"PS256\"}", "{\"alg\":\"EdDSA\"}",
        "{\"alg\":\"HS256 \"}", "{\"alg\":\"HS256\\u0000\"}", "{\"alg\":\"\"}", "{\"alg\":5}",
        "{\"alg\":null}", "{\"alg\":[\"HS256\"]}", "{\"alg\":\"a-very-long-algorithm-name\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_ERR(V(&K_HS, tok(&s, bad[i], "{}"), NULL, NOW), JWT_E_ALG_UNSUPPORTED);
}

static void test_alg_key_mismatch(void)
{
    signer_t h = HS(), r = RS(), e = ES();
    CHECK_ERR(V(&K_RSA, tok(&h, HDR_HS, "{}"), NULL, NOW), JWT_E_ALG_KEY);
    CHECK_ERR(V(&K_EC, tok(&h, HDR_HS, "{}"), NULL, NOW), JWT_E_ALG_KEY);
    CHECK_ERR(V(&K_HS, tok(&r, HDR_RS, "{}"), NULL, NOW), JWT_E_ALG_KEY);
    CHECK_ERR(V(&K_HS, tok(&e, HDR_ES, "{}"), NULL, NOW), JWT_E_ALG_KEY);
    CHECK_ERR(V(&K_RSA, tok(&e, HDR_ES, "{}"), NULL, NOW), JWT_E_ALG_KEY);
    CHECK_ERR(V(&K_EC, tok(&r, HDR_RS, "{}"), NULL, NOW), JWT_E_ALG_KEY);
    CHECK_ERR(V(&K_HS_RSA, tok(&e, HDR_ES, "{}"), NULL, NOW), JWT_E_ALG_KEY);
    /* a token signed by RS256 but relabelled ES256 */
    CHECK_ERR(V(&K_RSA, tok(&r, HDR_ES, "{}"), NULL, NOW), JWT_E_ALG_KEY);
    CHECK_ERR(V(NULL, tok(&h, HDR_HS, "{}"), NULL, NOW), JWT_E_ALG_KEY);
}

/* The classic attack: HS256 with the RSA public key's PEM (or DER) bytes
 * as the HMAC secret, hoping the verifier feeds its "key" to HMAC. */
static void test_alg_confusion(void)
{
    char pem[4096];
    FILE *f = fopen(g_rsa_pem, "r");
    CHECK(f);
    size_t n = fread(pem, 1, sizeof pem, f);
    fclose(f);
    uint8_t der[1024], *dp = der;
    int dn = i2d_PUBKEY(g_rsa, &dp);
    CHECK(n > 0 && dn > 0);

    signer_t s = { JWT_ALG_HS256, (const uint8_t *)pem, n, NULL };
    CHECK_ERR(V(&K_RSA, tok(&s, HDR_HS, "{\"sub\":\"admin\"}"), NULL, NOW), JWT_E_ALG_KEY);
    CHECK_ERR(V(&K_HS_RSA, tok(&s, HDR_HS, "{\"sub\":\"admin\"}"), NULL, NOW), JWT_E_SIGNATURE);
    s.secret = der;
    s.secret_len = (size_t)dn;
    CHECK_ERR(V(&K_RSA, tok(&s, HDR_HS, "{\"sub\":\"admin\"}"), NULL, NOW), JWT_E_ALG_KEY);
    CHECK_ERR(V(&K_HS_RSA, tok(&s, HDR_HS, "{\"sub\":\"admin\"}"), NULL, NOW), JWT_E_SIGNATURE);
    CHECK(!C.has_sub);
}

static void test_crit_typ(void)
{
    signer_t s = HS();
    CHECK_ERR(V(&K_HS, tok(&s, "{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}", "{}"), NULL, NOW), JWT_E_CRIT);
    CHECK_ERR(V(&K_HS, tok(&s, "{\"alg\":\"HS256\",\"crit\":[]}", "{}"), NULL, NOW), JWT_E_CRIT);
    CHECK_ERR(V(&K_HS, tok(&s, "{\"alg\":\"HS256\",\"crit\":null}", "{}"), NULL, NOW), JWT_E_CRIT);
    CHECK_ERR(V(&K_HS, tok(&s, "{\"alg\":\"HS256\",\"typ\":\"jwt\"}", "{}"), NULL, NOW), JWT_OK);
    CHECK_ERR(V(&K_HS, tok(&s, "{\"alg\":\"HS256\",\"typ\":\"JwT\"}", "{}"), NULL, NOW), JWT_OK);
    CHECK_ERR(V(&K_HS, tok(&s, "{\"alg\":\"HS256\",\"typ\":\"\\u004aWT\"}", "{}"), NULL, NOW), JWT_OK);
    static const char *const bad[] = {
        "{\"alg\":\"HS256\",\"typ\":\"JOSE\"}", "{\"alg\":\"HS256\",\"typ\":\"JWTX\"}",
        "{\"alg\":\"HS256\",\"typ\":\"\"}", "{\"alg\":\"HS256\",\"typ\":1}",
        "{\"alg\":\"HS256\",\"typ\":null}", "{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_ERR(V(&K_HS, tok(&s, bad[i], "{}"), NULL, NOW), JWT_E_TYP);
    /* unknown and key-naming parameters are ignored: keys come from config */
    CHECK_ERR(V(&K_HS, tok(&s, "{\"alg\":\"HS256\",\"kid\":\"x\",\"jku\":\"http://evil/\","
                               "\"jwk\":{\"kty\":\"oct\",\"k\":\"AA\"}}", "{}"), NULL, NOW), JWT_OK);
}

static void test_duplicates(void)
{
    signer_t s = HS();
    CHECK_ERR(V(&K_HS, tok(&s, "{\"alg\":\"HS256\",\"alg\":\"none\"}", "{}"), NULL, NOW), JWT_E_DUPLICATE);
    CHECK_ERR(V(&K_HS, tok(&s, "{\"alg\":\"HS256\",\"\\u0061lg\":\"HS256\"}", "{}"), NULL, NOW),
              JWT_E_DUPLICATE);
    CHECK_ERR(V(&K_HS, tok(&s, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"typ\":\"JWT\"}", "{}"), NULL, NOW),
              JWT_E_DUPLICATE);
    CHECK_ERR(VP("{\"exp\":1800000000,\"exp\":1}", NULL), JWT_E_DUPLICATE);
    CHECK_ERR(VP("{\"sub\":\"a\",\"s\\u0075b\":\"admin\"}", NULL), JWT_E_DUPLICATE);
    CHECK_ERR(VP("{\"rooms\":[],\"rooms\":[\"*\"]}", NULL), JWT_E_DUPLICATE);
    CHECK_ERR(VP("{\"x\":1,\"x\":2}", NULL), JWT_OK);  /* not a claim we read */
}

/* ---- signatures --------------------------------------------------------------- */

static void test_signed_with_another_key(void)
{
    signer_t r2 = { JWT_ALG_RS256, NULL, 0, g_rsa2 }, e2 = { JWT_ALG_ES256, NULL, 0, g_ec2 };
    signer_t h2 = { JWT_ALG_HS256, (const uint8_t *)SECRET "!", strlen(SECRET) + 1, NULL };
    CHECK_ERR(V(&K_RSA, tok(&r2, HDR_RS, GOOD_PAYLOAD), NULL, NOW), JWT_E_SIGNATURE);
    CHECK_ERR(V(&K_EC, tok(&e2, HDR_ES, GOOD_PAYLOAD), NULL, NOW), JWT_E_SIGNATURE);
    CHECK_ERR(V(&K_HS, tok(&h2, HDR_HS, GOOD_PAYLOAD), NULL, NOW), JWT_E_SIGNATURE);
    CHECK(!C.has_sub && C.rooms.len == 0 && C.exp == 0);
    CHECK_INT(ERR_peek_error(), 0);
}

/* Replaces the base64url character at `at` by another one (never the last
 * character of a part, which carries unused bits); returns the old one. */
static char flip(char *t, size_t at)
{
    char old = t[at];
    t[at] = old == 'A' ? 'Q' : 'A';
    return old;
}

static void test_tampered(void)
{
    const signer_t signers[] = { HS(), RS(), ES() };
    const char *hdrs[] = { HDR_HS, HDR_RS, HDR_ES };
    const jwt_keys_t *keys[] = { &K_HS, &K_RSA, &K_EC };
    for (int i = 0; i < 3; i++) {
        char t[4096];
        strcpy(t, tok(&signers[i], hdrs[i], GOOD_PAYLOAD));
        size_t d1 = strcspn(t, "."), d2 = d1 + 1 + strcspn(t + d1 + 1, ".");
        CHECK_ERR(V(keys[i], t, NULL, NOW), JWT_OK);
        char o = flip(t, d1 + 5);  /* payload */
        CHECK_ERR(V(keys[i], t, NULL, NOW), JWT_E_SIGNATURE);
        t[d1 + 5] = o;
        o = flip(t, d2 + 3);  /* signature */
        CHECK_ERR(V(keys[i], t, NULL, NOW), JWT_E_SIGNATURE);
        t[d2 + 3] = o;
        CHECK_ERR(V(keys[i], t, NULL, NOW), JWT_OK);
    }
    /* a payload swapped in from another valid token */
    char a[4096], b[4096], c[8192];
    signer_t s = HS();
    strcpy(a, hs("{\"sub\":\"alice\"}"));
    strcpy(b, hs("{\"sub\":\"admin\"}"));
    size_t ad1 = strcspn(a, "."), ad2 = ad1 + 1 + strcspn(a + ad1 + 1, ".");
    size_t bd1 = strcspn(b, "."), bd2 = bd1 + 1 + strcspn(b + bd1 + 1, ".");
    snprintf(c, sizeof c, "%.*s%.*s%s", (int)ad1, a, (int)(bd2 - bd1), b + bd1, a + ad2);
    CHECK_ERR(V(&K_HS, c, NULL, NOW), JWT_E_SIGNATURE);
    /* the header changed after signing */
    strcpy(a, tok(&s, HDR_HS, "{}"));
    ad1 = strcspn(a, ".");
    char h[64];
    size_t hn = b64url((const uint8_t *)"{\"alg\":\"HS256\"}", 15, h);
    snprintf(c, sizeof c, "%.*s%s", (int)hn, h, a + ad1);
    CHECK_ERR(V(&K_HS, c, NULL, NOW), JWT_E_SIGNATURE);
}

/* Replaces the signature of g_tok by sig[0..n). */
static const char *with_sig(const uint8_t *sig, size_t n)
{
    char *d2 = strrchr(g_tok, '.');
    b64url(sig, n, d2 + 1);
    return g_tok;
}

static void test_signature_lengths(void)
{
    uint8_t sig[1100];
    memset(sig, 0x41, sizeof sig);
    signer_t h = HS(), r = RS(), e = ES();

    tok(&h, HDR_HS, "{}");
    CHECK_ERR(V(&K_HS, with_sig(sig, 31), NULL, NOW), JWT_E_SIG_LENGTH);
    CHECK_ERR(V(&K_HS, with_sig(sig, 33), NULL, NOW), JWT_E_SIG_LENGTH);
    CHECK_ERR(V(&K_HS, with_sig(sig, 0), NULL, NOW), JWT_E_SIG_LENGTH);
    CHECK_ERR(V(&K_HS, with_sig(sig, 32), NULL, NOW), JWT_E_SIGNATURE);

    tok(&r, HDR_RS, "{}");
    CHECK_ERR(V(&K_RSA, with_sig(sig, 255), NULL, NOW), JWT_E_SIG_LENGTH);
    CHECK_ERR(V(&K_RSA, with_sig(sig, 257), NULL, NOW), JWT_E_SIG_LENGTH);
    CHECK_ERR(V(&K_RSA, with_sig(sig, 512), NULL, NOW), JWT_E_SIG_LENGTH);
    CHECK_ERR(V(&K_RSA, with_sig(sig, 256), NULL, NOW), JWT_E_SIGNATURE);
    /* a signature longer than any key we load */
    CHECK_ERR(V(&K_RSA, with_sig(sig, sizeof sig), NULL, NOW), JWT_E_SIG_LENGTH);

    /* ES256 with the DER signature naive signers send */
    const char *t = tok(&e, HDR_ES, "{}");
    size_t d2 = (size_t)(strrchr(t, '.') - t);
    uint8_t der[128];
    size_t dn = sizeof der;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    CHECK(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, g_ec) == 1 &&
          EVP_DigestSign(ctx, der, &dn, (const uint8_t *)t, d2) == 1);
    EVP_MD_CTX_free(ctx);
    CHECK_ERR(V(&K_EC, with_sig(der, dn), NULL, NOW), JWT_E_SIG_LENGTH);
    CHECK_ERR(V(&K_EC, with_sig(sig, 63), NULL, NOW), JWT_E_SIG_LENGTH);
    CHECK_ERR(V(&K_EC, with_sig(sig, 65), NULL, NOW), JWT_E_SIG_LENGTH);
    CHECK_ERR(V(&K_EC, with_sig(sig, 64), NULL, NOW), JWT_E_SIGNATURE);
    memset(sig, 0, 64);  /* r = s = 0 */
    CHECK_ERR(V(&K_EC, with_sig(sig, 64), NULL, NOW), JWT_E_SIGNATURE);
    memset(sig, 0xFF, 64);  /* r, s >= n */
    CHECK_ERR(V(&K_EC, with_sig(sig, 64), NULL, NOW), JWT_E_SIGNATURE);
    CHECK_INT(ERR_peek_error(), 0);
}

/* es256_raw_to_der() agrees with OpenSSL's own encoder on edge values. */
static void test_es256_der_conversion(void)
{
    for (int i = 0; i < 400; i++) {
        uint8_t raw[64], der[72], ref[80], *rp = ref;
        RAND_bytes(raw, sizeof raw);
        switch (i % 8) {
        case 0: memset(raw, 0, 32); break;                    /* r = 0 */
        case 1: memset(raw, 0, 31); break;                    /* r: one byte */
        case 2: raw[0] = 0; raw[1] |= 0x80; break;            /* leading zero, then top bit */
        case 3: raw[0] |= 0x80; raw[32] |= 0x80; break;       /* both need a 0x00 */
        case 4: raw[0] &= 0x7F; raw[32] &= 0x7F; break;       /* neither does */
        case 5: memset(raw + 32, 0, 30); raw[62] = 0x80; break;
        case 6: memset(raw, 0xFF, 64); break;
        default: break;
        }
        size_t n = es256_raw_to_der(raw, der);
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(raw, 32, NULL), *s = BN_bin2bn(raw + 32, 32, NULL);
        ECDSA_SIG_set0(es, r, s);
        int rn = i2d_ECDSA_SIG(es, &rp);
        ECDSA_SIG_free(es);
        CHECK_MSG(rn > 0 && (size_t)rn == n && memcmp(der, ref, n) == 0, "case %d", i);
    }
}

/* ---- shape ---------------------------------------------------------------------- */

static void test_malformed(void)
{
    signer_t s = HS();
    const char *t = tok(&s, HDR_HS, "{}");
    char buf[512];
    CHECK_ERR(verify_n(&K_HS, "", 0, NULL, NOW), JWT_E_MALFORMED);
    CHECK_ERR(jwt_verify(&K_HS, NULL, 0, NULL, NOW, &C), JWT_E_MALFORMED);
    CHECK_ERR(V(&K_HS, "abc", NULL, NOW), JWT_E_MALFORMED);
    CHECK_ERR(V(&K_HS, "abc.def", NULL, NOW), JWT_E_MALFORMED);
    CHECK_ERR(V(&K_HS, "..", NULL, NOW), JWT_E_HEADER);   /* three empty parts: shape fine */
    CHECK_ERR(V(&K_HS, "...", NULL, NOW), JWT_E_MALFORMED);
    snprintf(buf, sizeof buf, "%s.", t);
    CHECK_ERR(V(&K_HS, buf, NULL, NOW), JWT_E_MALFORMED);
    snprintf(buf, sizeof buf, "%s.abcd", t);
    CHECK_ERR(V(&K_HS, buf, NULL, NOW), JWT_E_MALFORMED);
    /* JWE compact form: five parts */
    CHECK_ERR(V(&K_HS, "eyJhbGciOiJSU0EifQ.a.b.c.d", NULL, NOW), JWT_E_MALFORMED);
    /* surrounding whitespace or a Bearer prefix is the caller's to strip */
    snprintf(buf, sizeof buf, "%s ", t);
    CHECK_ERR(V(&K_HS, buf, NULL, NOW), JWT_E_BASE64);
    snprintf(buf, sizeof buf, "Bearer %s", t);
    CHECK_ERR(V(&K_HS, buf, NULL, NOW), JWT_E_BASE64);
    /* an embedded NUL is just a bad byte */
    CHECK_ERR(verify_n(&K_HS, t, strlen(t) + 1, NULL, NOW), JWT_E_BASE64);
}

static void test_too_long(void)
{
    static char big[JWT_TOKEN_MAX + 2];
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    big[100] = '.';
    big[7000] = '.';
    CHECK_ERR(verify_n(&K_HS, big, JWT_TOKEN_MAX + 1, NULL, NOW), JWT_E_TOO_LONG);
    CHECK_ERR(jwt_verify(&K_HS, big, SIZE_MAX, NULL, NOW, &C), JWT_E_TOO_LONG);
    /* exactly at the limit the token is read: here its payload is too big */
    CHECK_ERR(verify_n(&K_HS, big, JWT_TOKEN_MAX, NULL, NOW), JWT_E_TOO_BIG);
}

/* Respells the last character of a part of `partlen` characters with its
 * unused low bits set: the same bytes, a non-canonical encoding. */
static void noncanonical(char *last, size_t partlen)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int mask = partlen % 4 == 2 ? 0x0F : 0x03;
    *last = a[(b64_value((uint8_t)*last, 1) & ~mask) | 1];
}

static void test_base64(void)
{
    signer_t s = HS();
    char t[512], u[520];
    /* parts of 4n+2, 4n+2 and 4n+3 characters: each last one has unused bits */
    strcpy(t, tok(&s, "{\"alg\":\"HS256\",\"typ\":\"JWT\" }", "{\"sub\":\"abc\"}"));
    size_t d1 = strcspn(t, "."), d2 = d1 + 1 + strcspn(t + d1 + 1, "."), n = strlen(t);
    CHECK_ERR(V(&K_HS, t, NULL, NOW), JWT_OK);
    CHECK_INT(d1 % 4, 2);
    CHECK_INT((d2 - d1 - 1) % 4, 2);
    CHECK_INT((n - d2 - 1) % 4, 3);

    /* padding on the payload, on the signature */
    snprintf(u, sizeof u, "%.*s==%s", (int)d2, t, t + d2);
    CHECK_ERR(V(&K_HS, u, NULL, NOW), JWT_E_BASE64);
    snprintf(u, sizeof u, "%s=", t);
    CHECK_ERR(V(&K_HS, u, NULL, NOW), JWT_E_BASE64);
    /* the standard alphabet's + and / */
    strcpy(u, t);
    u[d1 + 2] = '+';
    CHECK_ERR(V(&K_HS, u, NULL, NOW), JWT_E_BASE64);
    strcpy(u, t);
    u[n - 2] = '/';
    CHECK_ERR(V(&K_HS, u, NULL, NOW), JWT_E_BASE64);
    /* non-canonical trailing bits in each part */
    strcpy(u, t);
    noncanonical(&u[d1 - 1], d1);
    CHECK_ERR(V(&K_HS, u, NULL, NOW), JWT_E_BASE64);
    strcpy(u, t);
    noncanonical(&u[d2 - 1], d2 - d1 - 1);
    CHECK_ERR(V(&K_HS, u, NULL, NOW), JWT_E_BASE64);
    strcpy(u, t);
    noncanonical(&u[n - 1], n - d2 - 1);
    CHECK_ERR(V(&K_HS, u, NULL, NOW), JWT_E_BASE64);
    /* a part of length 4n+1 */
    snprintf(u, sizeof u, "%.*sAAA%s", (int)d2, t, t + d2);
    CHECK_ERR(V(&K_HS, u, NULL, NOW), JWT_E_BASE64);
}

static void test_b64url_vectors(void)
{
    /* RFC 4648 §10, unpadded */
    static const char *const enc[] = { "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy" };
    static const char *const dec[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    for (int i = 0; i < 7; i++) {
        uint8_t out[8];
        size_t n = b64url_decoded_len((const uint8_t *)enc[i], strlen(enc[i]));
        CHECK_INT(n, strlen(dec[i]));
        b64url_decode((const uint8_t *)enc[i], strlen(enc[i]), out);
        CHECK_MEM(out, dec[i], n);
    }
    uint8_t all[256], out[256];
    char e[400];
    for (int i = 0; i < 256; i++) all[i] = (uint8_t)i;
    for (size_t len = 0; len <= 256; len += 37) {
        size_t en = b64url(all, len, e);
        CHECK_INT(b64url_decoded_len((const uint8_t *)e, en), len);
        b64url_decode((const uint8_t *)e, en, out);
        CHECK_MEM(out, all, len);
    }
    CHECK_INT(b64url_decoded_len((const uint8_t *)"Zh", 2), SIZE_MAX);
    CHECK_INT(b64url_decoded_len((const uint8_t *)"Zm8", 3), 2);
    CHECK_INT(b64url_decoded_len((const uint8_t *)"Zm9", 3), SIZE_MAX);
    CHECK_INT(b64url_decoded_len((const uint8_t *)"Zm-", 3), SIZE_MAX);  /* '-' = 62: low bits set */
    CHECK_INT(b64url_decoded_len((const uint8_t *)"Zm9vY", 5), SIZE_MAX);
    CHECK_INT(b64url_decoded_len((const uint8_t *)"Zm9=", 4), SIZE_MAX);
}

static void test_header_payload_not_objects(void)
{
    signer_t s = HS();
    static const char *const hdrs[] = {
        "", "[]", "null", "\"HS256\"", "{\"alg\":\"HS256\"", "{\"alg\":\"HS256\",}",
        "{\"alg\":\"HS256\"} x", "{'alg':'HS256'}",
    };
    for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++)
        CHECK_ERR(V(&K_HS, tok(&s, hdrs[i], "{}"), NULL, NOW), JWT_E_HEADER);
    CHECK_ERR(V(&K_HS, tok(&s, "{\"alg\":\"HS256\",\"x\":\"\xff\"}", "{}"), NULL, NOW), JWT_E_HEADER);
    /* a NUL byte in the header JSON */
    CHECK_ERR(V(&K_HS, tok_n(&s, "{\"alg\":\"HS256\"}\0", 16, "{}", 2), NULL, NOW), JWT_E_HEADER);

    static const char *const pays[] = {
        "", "[]", "[{\"sub\":\"a\"}]", "1", "\"sub\"", "{\"sub\":\"a\"", "{\"sub\":01}",
        "{\"sub\":\"a\"}{}", "{\"sub\":\"\\ud800\"}",
    };
    for (size_t i = 0; i < sizeof pays / sizeof pays[0]; i++)
        CHECK_ERR(VP(pays[i], NULL), JWT_E_PAYLOAD);
    CHECK_ERR(VP("{\"sub\":\"\xc3\x28\"}", NULL), JWT_E_PAYLOAD);  /* invalid UTF-8 */
    CHECK_ERR(VP("{\"sub\":\"\xc3\xa9\"}", NULL), JWT_OK);
    char deep[200] = "{\"x\":";
    for (int i = 0; i < 40; i++) strcat(deep, "[");
    for (int i = 0; i < 40; i++) strcat(deep, "]");
    strcat(deep, "}");
    CHECK_ERR(VP(deep, NULL), JWT_E_PAYLOAD);
}

static void test_too_big(void)
{
    static char pay[JWT_PAYLOAD_MAX + 16];
    const char *pre = "{\"sub\":\"u\",\"pad\":\"";
    size_t pn = strlen(pre);
    memcpy(pay, pre, pn);
    memset(pay + pn, 'x', JWT_PAYLOAD_MAX - pn - 2);
    strcpy(pay + JWT_PAYLOAD_MAX - 2, "\"}");
    CHECK_INT(strlen(pay), JWT_PAYLOAD_MAX);
    CHECK_ERR(VP(pay, NULL), JWT_OK);
    CHECK_STR(C.sub, "u");
    memset(pay + pn, 'x', JWT_PAYLOAD_MAX - pn - 1);
    strcpy(pay + JWT_PAYLOAD_MAX - 1, "\"}");
    CHECK_ERR(VP(pay, NULL), JWT_E_TOO_BIG);

    static char hdr[JWT_PAYLOAD_MAX + 16];
    pre = "{\"alg\":\"HS256\",\"kid\":\"";
    pn = strlen(pre);
    memcpy(hdr, pre, pn);
    memset(hdr + pn, 'k', JWT_PAYLOAD_MAX - pn - 1);
    strcpy(hdr + JWT_PAYLOAD_MAX - 1, "\"}");
    signer_t s = HS();
    CHECK_ERR(V(&K_HS, tok(&s, hdr, "{}"), NULL, NOW), JWT_E_TOO_BIG);
    hdr[JWT_PAYLOAD_MAX - 2] = '"';
    hdr[JWT_PAYLOAD_MAX - 1] = '}';
    hdr[JWT_PAYLOAD_MAX] = '\0';
    CHECK_ERR(V(&K_HS, tok(&s, hdr, "{}"), NULL, NOW), JWT_OK);
}

/* ---- time claims ----------------------------------------------------------------- */

static int at(const char *claim, uint64_t value, const jwt_policy_t *pol, uint64_t now)
{
    char pay[128];
    snprintf(pay, sizeof pay, "{\"%s\":%llu}", claim, (unsigned long long)value);
    return V(&K_HS, hs(pay), pol, now);
}

static void test_exp_leeway_edges(void)
{
    jwt_policy_t p0 = { 0 }, p30 = { .leeway_s = 30 };
    uint64_t exp = NOW;
    CHECK_ERR(at("exp", exp, &p0, exp - 1), JWT_OK);
    CHECK_INT(C.exp, exp);
    CHECK_ERR(at("exp", exp, &p0, exp), JWT_E_EXPIRED);
    CHECK_ERR(at("exp", exp, &p0, exp + 1), JWT_E_EXPIRED);
    CHECK_ERR(at("exp", exp, &p30, exp + 29), JWT_OK);
    CHECK_ERR(at("exp", exp, &p30, exp + 30), JWT_E_EXPIRED);
    CHECK_ERR(at("exp", exp, &p30, exp + 31), JWT_E_EXPIRED);
    /* tiny numbers and clocks near zero do not wrap */
    CHECK_ERR(at("exp", 0, &p0, 0), JWT_E_EXPIRED);
    CHECK_ERR(at("exp", 0, &p30, 29), JWT_OK);
    CHECK_ERR(at("exp", 1, &p0, 0), JWT_OK);
    CHECK_ERR(at("exp", UINT64_MAX, &p30, UINT64_MAX - 1), JWT_OK);
    jwt_policy_t pmax = { .leeway_s = UINT32_MAX };
    CHECK_ERR(at("exp", 5, &pmax, 100), JWT_OK);
}

static void test_exp_required(void)
{
    jwt_policy_t req = { .require_exp = 1 };
    CHECK_ERR(VP("{\"sub\":\"a\"}", &req), JWT_E_EXP_MISSING);
    CHECK_ERR(VP("{\"sub\":\"a\"}", NULL), JWT_OK);
    CHECK(C.exp == 0 && C.nbf == 0 && C.iat == 0);
    CHECK_ERR(VP("{\"sub\":\"a\",\"exp\":1800000000}", &req), JWT_OK);
    CHECK_ERR(VP("{\"exp\":null}", &req), JWT_E_CLAIM_TYPE);
}

static void test_nbf_iat(void)
{
    jwt_policy_t p0 = { 0 }, p5 = { .leeway_s = 5 };
    CHECK_ERR(at("nbf", NOW, &p0, NOW), JWT_OK);
    CHECK_INT(C.nbf, NOW);
    CHECK_ERR(at("nbf", NOW + 1, &p0, NOW), JWT_E_NOT_YET_VALID);
    CHECK_ERR(at("nbf", NOW - 1, &p0, NOW), JWT_OK);
    CHECK_ERR(at("nbf", NOW + 5, &p5, NOW), JWT_OK);
    CHECK_ERR(at("nbf", NOW + 6, &p5, NOW), JWT_E_NOT_YET_VALID);
    CHECK_ERR(at("nbf", UINT64_MAX, &p5, UINT64_MAX), JWT_OK);

    jwt_policy_t i0 = { .check_iat = 1 }, i5 = { .check_iat = 1, .leeway_s = 5 };
    CHECK_ERR(at("iat", NOW + 1, &p0, NOW), JWT_OK);  /* not checked unless asked */
    CHECK_ERR(at("iat", NOW, &i0, NOW), JWT_OK);
    CHECK_ERR(at("iat", NOW + 1, &i0, NOW), JWT_E_IAT_FUTURE);
    CHECK_ERR(at("iat", NOW + 5, &i5, NOW), JWT_OK);
    CHECK_ERR(at("iat", NOW + 6, &i5, NOW), JWT_E_IAT_FUTURE);
    CHECK_ERR(VP("{\"exp\":1700000100,\"nbf\":1700000050}", NULL), JWT_E_NOT_YET_VALID);
    CHECK_ERR(VP("{\"exp\":1600000000,\"nbf\":1700000050}", NULL), JWT_E_EXPIRED);
}

static int nd(const char *num, uint64_t *v)
{
    json_span_t s = { (const uint8_t *)num, strlen(num) };
    *v = 12345;
    return numeric_date(s, v);
}

static void test_numeric_dates(void)
{
    uint64_t v;
    CHECK(nd("0", &v) == 0 && v == 0);
    CHECK(nd("-0", &v) == 0 && v == 0);
    CHECK(nd("-0.0e5", &v) == 0 && v == 0);
    CHECK(nd("1300819380", &v) == 0 && v == 1300819380);
    CHECK(nd("100.5", &v) == 0 && v == 101);
    CHECK(nd("100.000", &v) == 0 && v == 100);
    CHECK(nd("100.0001", &v) == 0 && v == 101);
    CHECK(nd("0.1", &v) == 0 && v == 1);
    CHECK(nd("1.5e3", &v) == 0 && v == 1500);
    CHECK(nd("1.3E9", &v) == 0 && v == 1300000000);
    CHECK(nd("15e-1", &v) == 0 && v == 2);
    CHECK(nd("1e+2", &v) == 0 && v == 100);
    CHECK(nd("123e-5", &v) == 0 && v == 1);
    CHECK(nd("0e999999999999", &v) == 0 && v == 0);
    CHECK(nd("1e-999999999999", &v) == 0 && v == 1);
    CHECK(nd("18446744073709551615", &v) == 0 && v == UINT64_MAX);
    CHECK(nd("18446744073709551614.5", &v) == 0 && v == UINT64_MAX);
    CHECK(nd("18446744073709551616", &v) == 0 && v == UINT64_MAX);
    CHECK(nd("1e20", &v) == 0 && v == UINT64_MAX);
    CHECK(nd("1e19", &v) == 0 && v == 10000000000000000000ull);
    CHECK(nd("1e999999999999", &v) == 0 && v == UINT64_MAX);
    CHECK(nd("-1", &v) == JWT_E_TIME_RANGE);
    CHECK(nd("-0.001", &v) == JWT_E_TIME_RANGE);
    CHECK(nd("-1e-9", &v) == JWT_E_TIME_RANGE);

    /* and through tokens */
    CHECK_ERR(VP("{\"exp\":1700000000.5}", NULL), JWT_OK);  /* exp rounds up to NOW + 1 */
    CHECK_INT(C.exp, NOW + 1);
    CHECK_ERR(VP("{\"exp\":17000000.005e2}", NULL), JWT_OK);
    CHECK_ERR(VP("{\"exp\":1.7e9}", NULL), JWT_E_EXPIRED);
    CHECK_ERR(VP("{\"exp\":1e30}", NULL), JWT_OK);
    CHECK_INT(C.exp, UINT64_MAX);
    CHECK_ERR(VP("{\"exp\":-1}", NULL), JWT_E_TIME_RANGE);
    CHECK_ERR(VP("{\"nbf\":-5}", NULL), JWT_E_TIME_RANGE);
    CHECK_ERR(VP("{\"nbf\":1700000000.5}", NULL), JWT_E_NOT_YET_VALID);
}

/* ---- iss, aud, types ---------------------------------------------------------------- */

static void test_issuer(void)
{
    jwt_policy_t p = { .issuer = "https://auth.example/" };
    CHECK_ERR(VP("{\"iss\":\"https://auth.example/\"}", &p), JWT_OK);
    CHECK_ERR(VP("{\"iss\":\"https:\\/\\/auth.example\\/\"}", &p), JWT_OK);
    CHECK_ERR(VP("{\"iss\":\"https://auth.example\"}", &p), JWT_E_ISSUER);
    CHECK_ERR(VP("{\"iss\":\"HTTPS://auth.example/\"}", &p), JWT_E_ISSUER);
    CHECK_ERR(VP("{\"iss\":\"https://auth.example/\\u0000\"}", &p), JWT_E_ISSUER);
    CHECK_ERR(VP("{\"sub\":\"a\"}", &p), JWT_E_ISSUER);
    CHECK_ERR(VP("{\"iss\":[\"https://auth.example/\"]}", &p), JWT_E_CLAIM_TYPE);
    CHECK_ERR(VP("{\"iss\":7}", NULL), JWT_E_CLAIM_TYPE);
    CHECK_ERR(VP("{\"iss\":\"anyone\"}", NULL), JWT_OK);
    /* a backslash in the configured issuer is literal */
    jwt_policy_t b = { .issuer = "a\\b" };
    CHECK_ERR(VP("{\"iss\":\"a\\\\b\"}", &b), JWT_OK);
    CHECK_ERR(VP("{\"iss\":\"a\\b\"}", &b), JWT_E_ISSUER);
}

static void test_audience(void)
{
    jwt_policy_t p = { .audience = "wsgw" };
    CHECK_ERR(VP("{\"aud\":\"wsgw\"}", &p), JWT_OK);
    CHECK_ERR(VP("{\"aud\":[\"api\",\"wsgw\"]}", &p), JWT_OK);
    CHECK_ERR(VP("{\"aud\":[\"ws\\u0067w\"]}", &p), JWT_OK);
    CHECK_ERR(VP("{\"aud\":[\"api\",\"web\"]}", &p), JWT_E_AUDIENCE);
    CHECK_ERR(VP("{\"aud\":\"wsgw2\"}", &p), JWT_E_AUDIENCE);
    CHECK_ERR(VP("{\"aud\":\"WSGW\"}", &p), JWT_E_AUDIENCE);
    CHECK_ERR(VP("{\"aud\":[]}", &p), JWT_E_AUDIENCE);
    CHECK_ERR(VP("{\"sub\":\"x\"}", &p), JWT_E_AUDIENCE);
    CHECK_ERR(VP("{\"aud\":[\"wsgw\",1]}", &p), JWT_E_CLAIM_TYPE);
    CHECK_ERR(VP("{\"aud\":[[\"wsgw\"]]}", &p), JWT_E_CLAIM_TYPE);
    CHECK_ERR(VP("{\"aud\":{\"wsgw\":true}}", &p), JWT_E_CLAIM_TYPE);
    CHECK_ERR(VP("{\"aud\":null}", NULL), JWT_E_CLAIM_TYPE);
    CHECK_ERR(VP("{\"aud\":[\"other\"]}", NULL), JWT_OK);
    jwt_policy_t both = { .audience = "wsgw", .issuer = "me" };
    CHECK_ERR(VP("{\"iss\":\"me\",\"aud\":[ \"x\" , \"wsgw\" ]}", &both), JWT_OK);
}

static void test_claim_types(void)
{
    static const char *const bad[] = {
        "{\"exp\":\"1800000000\"}", "{\"exp\":true}", "{\"exp\":[1800000000]}", "{\"nbf\":\"0\"}",
        "{\"iat\":{}}", "{\"sub\":42}", "{\"sub\":null}", "{\"sub\":[\"a\"]}",
        "{\"rooms\":\"lobby\"}", "{\"rooms\":[\"lobby\",7]}", "{\"rooms\":{}}", "{\"rooms\":null}",
        "{\"emit\":\"room\"}", "{\"emit\":[null]}", "{\"emit\":[[\"room\"]]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_ERR(VP(bad[i], NULL), JWT_E_CLAIM_TYPE);
    /* claims we do not read may be anything */
    CHECK_ERR(VP("{\"jti\":7,\"scope\":{\"a\":[1,2]},\"admin\":true}", NULL), JWT_OK);
}

static void test_sub(void)
{
    char pay[400], sub[200];
    memset(sub, 's', 128);
    sub[128] = '\0';
    snprintf(pay, sizeof pay, "{\"sub\":\"%s\"}", sub);
    CHECK_ERR(VP(pay, NULL), JWT_OK);
    CHECK(C.has_sub && C.sub_len == 128 && strcmp(C.sub, sub) == 0);
    sub[128] = 's';
    sub[129] = '\0';
    snprintf(pay, sizeof pay, "{\"sub\":\"%s\"}", sub);
    CHECK_ERR(VP(pay, NULL), JWT_E_SUB);
    /* 127 bytes plus a 2-byte character decoded from an escape: 129 */
    memset(sub, 's', 127);
    strcpy(sub + 127, "\\u00e9");
    snprintf(pay, sizeof pay, "{\"sub\":\"%s\"}", sub);
    CHECK_ERR(VP(pay, NULL), JWT_E_SUB);
    strcpy(sub + 126, "\\u00e9");
    snprintf(pay, sizeof pay, "{\"sub\":\"%s\"}", sub);
    CHECK_ERR(VP(pay, NULL), JWT_OK);
    CHECK_INT(C.sub_len, 128);

    static const char *const ctl[] = {
        "{\"sub\":\"a\\nb\"}", "{\"sub\":\"a\\u0000b\"}", "{\"sub\":\"\\u001b[31m\"}",
        "{\"sub\":\"a\\u007f\"}", "{\"sub\":\"a\\u0085\"}", "{\"sub\":\"a\xc2\x9b\"}", "{\"sub\":\"\\t\"}",
    };
    for (size_t i = 0; i < sizeof ctl / sizeof ctl[0]; i++)
        CHECK_ERR(VP(ctl[i], NULL), JWT_E_SUB);
    CHECK_ERR(VP("{\"sub\":\"\\u00e9l\\u00e8ve \\ud83d\\ude00 \\\"q\\\"\"}", NULL), JWT_OK);
    CHECK_STR(C.sub, "\xc3\xa9l\xc3\xa8ve \xf0\x9f\x98\x80 \"q\"");
    CHECK_ERR(VP("{\"sub\":\"\"}", NULL), JWT_OK);
    CHECK(C.has_sub && C.sub_len == 0 && C.sub[0] == '\0');
}

static void test_rooms(void)
{
    CHECK_ERR(VP("{\"sub\":\"a\"}", NULL), JWT_OK);
    CHECK(C.rooms.len == 0 && jwt_claims_allows_room(&C, "anything"));
    CHECK_ERR(VP("{\"rooms\":[\"chat.*\", \"lobby\" ,\"team-[ab]\",\"\\u0064m.?\"]}", NULL), JWT_OK);
    CHECK(jwt_claims_allows_room(&C, "chat.general"));
    CHECK(jwt_claims_allows_room(&C, "lobby"));
    CHECK(jwt_claims_allows_room(&C, "team-b"));
    CHECK(jwt_claims_allows_room(&C, "dm.x"));
    CHECK(!jwt_claims_allows_room(&C, "team-c"));
    CHECK(!jwt_claims_allows_room(&C, "lobby2"));
    CHECK(!jwt_claims_allows_room(&C, "chat"));
    CHECK(!jwt_claims_allows_room(&C, ""));
    CHECK_ERR(VP("{\"rooms\":[]}", NULL), JWT_OK);
    CHECK(C.rooms.len == 2 && !jwt_claims_allows_room(&C, "lobby"));
    CHECK_ERR(VP("{\"rooms\":[\"*\"]}", NULL), JWT_OK);
    CHECK(jwt_claims_allows_room(&C, "x"));

    char pay[400], pat[300];
    memset(pat, 'p', JWT_ROOM_PATTERN_MAX);
    pat[JWT_ROOM_PATTERN_MAX] = '\0';
    snprintf(pay, sizeof pay, "{\"rooms\":[\"%s\"]}", pat);
    CHECK_ERR(VP(pay, NULL), JWT_OK);
    CHECK(jwt_claims_allows_room(&C, pat));
    strcat(pat, "p");
    snprintf(pay, sizeof pay, "{\"rooms\":[\"%s\"]}", pat);
    CHECK_ERR(VP(pay, NULL), JWT_E_ROOMS);
    CHECK_ERR(VP("{\"rooms\":[\"a\\u0000*\"]}", NULL), JWT_E_ROOMS);
    CHECK_ERR(VP("{\"rooms\":[\"ok\",\"a\\nb\"]}", NULL), JWT_E_ROOMS);
}

static void test_emit(void)
{
    CHECK_ERR(VP("{}", NULL), JWT_OK);
    CHECK(jwt_claims_allows_target(&C, "broadcast") && jwt_claims_allows_target(&C, "conn"));
    CHECK_ERR(VP("{\"emit\":[\"room\",\"c\\u006fnn\"]}", NULL), JWT_OK);
    CHECK(jwt_claims_allows_target(&C, "room"));
    CHECK(jwt_claims_allows_target(&C, "conn"));
    CHECK(!jwt_claims_allows_target(&C, "broadcast"));
    CHECK(!jwt_claims_allows_target(&C, "all"));
    CHECK(!jwt_claims_allows_target(&C, "roo"));
    CHECK_ERR(VP("{\"emit\":[\"broadcast\",\"all\",\"room\",\"conn\"]}", NULL), JWT_OK);
    CHECK(jwt_claims_allows_target(&C, "all") && jwt_claims_allows_target(&C, "broadcast"));
    CHECK_ERR(VP("{\"emit\":[]}", NULL), JWT_OK);
    CHECK(!jwt_claims_allows_target(&C, "room"));
    CHECK_ERR(VP("{\"emit\":[\"room\",\"everyone\"]}", NULL), JWT_E_EMIT);
    CHECK_ERR(VP("{\"emit\":[\"Room\"]}", NULL), JWT_E_EMIT);
    CHECK_ERR(VP("{\"emit\":[\"\"]}", NULL), JWT_E_EMIT);
}

/* ---- results and reasons -------------------------------------------------------------- */

static void test_claims_reset_on_error(void)
{
    CHECK_ERR(VP(GOOD_PAYLOAD, NULL), JWT_OK);
    CHECK(C.has_sub && C.rooms.len);
    /* signed and readable, but a late check fails: nothing may remain */
    jwt_policy_t p = { .audience = "wsgw" };
    CHECK_ERR(VP(GOOD_PAYLOAD, &p), JWT_E_AUDIENCE);
    CHECK(!C.has_sub && C.sub[0] == '\0' && C.sub_len == 0 && C.exp == 0 && C.iat == 0);
    CHECK(C.rooms.p == NULL && C.rooms.len == 0 && C.emit.len == 0 && C.alg == JWT_ALG_NONE_CONFIGURED);
    CHECK_ERR(VP("{\"sub\":\"a\",\"emit\":[\"x\"]}", NULL), JWT_E_EMIT);
    CHECK(!C.has_sub && C.sub[0] == '\0');
}

static void test_err_strings(void)
{
    static const int codes[] = {
        JWT_OK, JWT_E_MALFORMED, JWT_E_TOO_LONG, JWT_E_BASE64, JWT_E_TOO_BIG, JWT_E_HEADER,
        JWT_E_PAYLOAD, JWT_E_DUPLICATE, JWT_E_ALG_MISSING, JWT_E_ALG_NONE, JWT_E_ALG_UNSUPPORTED,
        JWT_E_ALG_KEY, JWT_E_CRIT, JWT_E_TYP, JWT_E_SIG_LENGTH, JWT_E_SIGNATURE, JWT_E_EXPIRED,
        JWT_E_NOT_YET_VALID, JWT_E_IAT_FUTURE, JWT_E_EXP_MISSING, JWT_E_ISSUER, JWT_E_AUDIENCE,
        JWT_E_CLAIM_TYPE, JWT_E_TIME_RANGE, JWT_E_SUB, JWT_E_ROOMS, JWT_E_EMIT,
    };
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        const char *s = jwt_err_str(codes[i]);
        CHECK_MSG(s && *s && strcmp(s, "unknown error") != 0, "code %d", codes[i]);
        for (size_t j = 0; j < i; j++) CHECK_MSG(strcmp(s, jwt_err_str(codes[j])) != 0, "%s", s);
    }
    CHECK_STR(jwt_err_str(-99), "unknown error");
    CHECK_STR(jwt_err_str(1), "unknown error");
}

int main(void)
{
    fixture_up();
    RUN(test_keys_load_ok);
    RUN(test_keys_load_errors);
    RUN(test_load_error_message_null_buffer);
    RUN(test_valid_hs256);
    RUN(test_valid_rs256);
    RUN(test_valid_es256);
    RUN(test_rfc7515_a1);
    RUN(test_alg_none_missing_unsupported);
    RUN(test_alg_key_mismatch);
    RUN(test_alg_confusion);
    RUN(test_crit_typ);
    RUN(test_duplicates);
    RUN(test_signed_with_another_key);
    RUN(test_tampered);
    RUN(test_signature_lengths);
    RUN(test_es256_der_conversion);
    RUN(test_malformed);
    RUN(test_too_long);
    RUN(test_base64);
    RUN(test_b64url_vectors);
    RUN(test_header_payload_not_objects);
    RUN(test_too_big);
    RUN(test_exp_leeway_edges);
    RUN(test_exp_required);
    RUN(test_nbf_iat);
    RUN(test_numeric_dates);
    RUN(test_issuer);
    RUN(test_audience);
    RUN(test_claim_types);
    RUN(test_sub);
    RUN(test_rooms);
    RUN(test_emit);
    RUN(test_claims_reset_on_error);
    RUN(test_err_strings);
    free(g_copy);
    fixture_down();
    return test_report("jwt");
}
