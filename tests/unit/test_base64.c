/* lib/base64.c and lib/randid.c: RFC 4648 vectors for both alphabets, the
 * canonical-decoding rule, encode/decode round trips, and random ids. */
#include "test.h"

#include "base64.h"
#include "randid.h"

static void test_symbol_values(void)
{
    static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (int i = 0; i < 64; i++) {
        CHECK_INT(b64_value((uint8_t)std[i], 0), i);
        CHECK_INT(b64_value((uint8_t)url[i], 1), i);
    }
    CHECK_INT(b64_value('-', 0), -1);
    CHECK_INT(b64_value('_', 0), -1);
    CHECK_INT(b64_value('+', 1), -1);
    CHECK_INT(b64_value('/', 1), -1);
    CHECK_INT(b64_value('=', 0), -1);
    CHECK_INT(b64_value('=', 1), -1);
    int symbols = 0;
    for (int c = 0; c < 256; c++) symbols += b64_value((uint8_t)c, 1) >= 0;
    CHECK_INT(symbols, 64);
}

static void test_encode_vectors(void)
{
    /* RFC 4648 §10, unpadded */
    static const char *const dec[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    static const char *const enc[] = { "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy" };
    for (int i = 0; i < 7; i++) {
        char out[16];
        size_t n = b64url_encode((const uint8_t *)dec[i], strlen(dec[i]), out);
        CHECK_INT(n, strlen(enc[i]));
        CHECK_INT(n, b64url_encoded_len(strlen(dec[i])));
        CHECK_STR(out, enc[i]);
    }
    const uint8_t hi[] = { 0xfb, 0xff, 0xbf };      /* the two url-only symbols */
    char out[8];
    CHECK_INT(b64url_encode(hi, 3, out), 4);
    CHECK_STR(out, "-_-_");
}

static void test_round_trip(void)
{
    uint8_t all[256], back[256];
    char e[400];
    for (int i = 0; i < 256; i++) all[i] = (uint8_t)(255 - i);
    for (size_t len = 0; len <= 256; len++) {
        size_t en = b64url_encode(all, len, e);
        CHECK_INT(en, b64url_encoded_len(len));
        CHECK_INT(b64url_decoded_len((const uint8_t *)e, en), len);
        b64url_decode((const uint8_t *)e, en, back);
        CHECK_MEM(back, all, len);
    }
}

static void test_randid(void)
{
    char a[32], b[32];
    CHECK_INT(randid_make(a, sizeof a, 16), 22);
    CHECK_INT(randid_make(b, sizeof b, 16), 22);
    CHECK(strcmp(a, b) != 0);
    CHECK_INT(b64url_decoded_len((const uint8_t *)a, 22), 16);
    CHECK_INT(randid_make(a, sizeof a, 9), 12);
    CHECK_INT(strlen(a), 12);
    /* refused, with "" in the buffer: too small, zero, more than 16 */
    CHECK_INT(randid_make(a, 22, 16), 0);
    CHECK_STR(a, "");
    CHECK_INT(randid_make(a, sizeof a, 0), 0);
    CHECK_INT(randid_make(a, sizeof a, 17), 0);
    CHECK_STR(a, "");
    /* well past one pool (256 ids): still fresh ids */
    char prev[32] = "";
    for (int i = 0; i < 1000; i++) {
        CHECK_INT(randid_make(a, sizeof a, 16), 22);
        CHECK(strcmp(a, prev) != 0);
        memcpy(prev, a, sizeof a);
    }
}

int main(void)
{
    RUN(test_symbol_values);
    RUN(test_encode_vectors);
    RUN(test_round_trip);
    RUN(test_randid);
    return test_report("base64");
}
