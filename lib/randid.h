/* Random ids: bytes from the OS CSPRNG spelt in base64url without padding
 * (connection ids, node ids).  Not thread-safe: one pool per process, used
 * from its event loop only.
 */
#ifndef LIB_RANDID_H
#define LIB_RANDID_H

#include <stddef.h>

/* Writes `bytes` (1..16) fresh random bytes as unpadded base64url and a NUL
 * into out[0..cap); returns the length, or 0 — with out "" when cap > 0 —
 * if cap is too small, bytes is out of range, or the OS has no entropy
 * (an id is refused rather than guessed).  getrandom() is called once per
 * 256 ids, and each pool byte serves one id only. */
size_t randid_make(char *out, size_t cap, size_t bytes);

#endif
