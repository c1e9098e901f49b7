/* ws_utf8.h — incremental UTF-8 validation (RFC 3629, as RFC 6455 §8.1 asks).
 *
 * A validator is one uint32_t of state, so a text message fragmented over
 * many frames and many reads is checked as its bytes arrive, and the first
 * invalid byte is reported at once — not at the end of the message
 * (Autobahn 6.4.*).  Overlong forms, surrogates (U+D800..U+DFFF) and code
 * points above U+10FFFF are invalid.  ASCII runs are checked a word at a
 * time, so the common case costs well under a cycle per byte.
 */
#ifndef WS_UTF8_H
#define WS_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define WS_UTF8_ACCEPT 0u   /* state at a code-point boundary: all valid so far */
#define WS_UTF8_REJECT 12u  /* sticky: an invalid byte was seen */

/* Feeds `len` bytes to a validator in `state` and returns the new state:
 * WS_UTF8_ACCEPT (complete and valid so far), WS_UTF8_REJECT (invalid, the
 * state stays REJECT for any further input), or another value (valid so far
 * but inside a multi-byte sequence).  A message is valid when its final
 * state is WS_UTF8_ACCEPT. */
uint32_t ws_utf8_validate(uint32_t state, const uint8_t *s, size_t len);

/* Convenience: 1 when s[0..len) is complete valid UTF-8, else 0. */
int ws_utf8_is_valid(const uint8_t *s, size_t len);

/* The length of s[0..len) cut to at most `max` bytes without splitting a
 * code point: past max, it backs up over continuation bytes (10xxxxxx) to
 * the lead byte of the code point that would cross the limit.  len itself
 * when len <= max.  (Validity is the caller's business.) */
size_t ws_utf8_cut(const uint8_t *s, size_t len, size_t max);

#endif
