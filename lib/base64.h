/* base64 (RFC 4648): the symbol tables and the canonical checks wsgw needs
 * in three places — the Sec-WebSocket-Key nonce (standard alphabet,
 * padded), JWT segments (base64url, unpadded) and random ids (base64url
 * encoding).  Pure functions over caller buffers; nothing is allocated.
 */
#ifndef LIB_BASE64_H
#define LIB_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* The 6-bit value of symbol c in the standard alphabet (url = 0: '+' '/')
 * or the URL-safe one (url = 1: '-' '_'); -1 if c is not a symbol of it.
 * Padding '=' is not a symbol. */
int b64_value(uint8_t c, int url);

/* The decoded length of s[0..n) if it is canonical unpadded base64url —
 * every symbol valid, no impossible length (n % 4 == 1) and the unused
 * trailing bits zero, so each value has one spelling ("QQ" is "A", "QR" is
 * refused) — else SIZE_MAX. */
size_t b64url_decoded_len(const uint8_t *s, size_t n);

/* Decodes what b64url_decoded_len() accepted into dst, which holds at
 * least that many bytes. */
void b64url_decode(const uint8_t *s, size_t n, uint8_t *dst);

/* Encodes src[0..n) as unpadded base64url into dst, which holds at least
 * b64url_encoded_len(n) + 1 bytes; NUL-terminates and returns the length. */
size_t b64url_encode(const uint8_t *src, size_t n, char *dst);
static inline size_t b64url_encoded_len(size_t n) { return (n * 4 + 2) / 3; }

#endif
