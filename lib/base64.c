/* base64 and base64url (RFC 4648 §4, §5): see base64.h. */
#include "base64.h"

static const char url_symbols[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int b64_value(uint8_t c, int url)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == (url ? '-' : '+')) return 62;
    if (c == (url ? '_' : '/')) return 63;
    return -1;
}

size_t b64url_decoded_len(const uint8_t *s, size_t n)
{
    if (n % 4 == 1) return SIZE_MAX;
    for (size_t i = 0; i < n; i++)
        if (b64_value(s[i], 1) < 0) return SIZE_MAX;
    if (n % 4 == 2 && (b64_value(s[n - 1], 1) & 0x0F)) return SIZE_MAX;
    if (n % 4 == 3 && (b64_value(s[n - 1], 1) & 0x03)) return SIZE_MAX;
    return n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
}

void b64url_decode(const uint8_t *s, size_t n, uint8_t *dst)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 6 | (uint32_t)b64_value(s[i], 1)) & 0xFFFFFF;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *dst++ = (uint8_t)(acc >> bits);
        }
    }
}

size_t b64url_encode(const uint8_t *src, size_t n, char *dst)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8 | src[i]) & 0xFFFF;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            dst[o++] = url_symbols[(acc >> bits) & 63];
        }
    }
    if (bits) dst[o++] = url_symbols[(acc << (6 - bits)) & 63];
    dst[o] = '\0';
    return o;
}
