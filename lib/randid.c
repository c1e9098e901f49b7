/* Random ids from a getrandom() pool: see randid.h. */
#include "randid.h"

#include <stdint.h>
#include <string.h>
#include <sys/random.h>

#include "base64.h"

#define RANDID_SLOT 16          /* pool bytes spent per id, whatever its size */

size_t randid_make(char *out, size_t cap, size_t bytes)
{
    static uint8_t pool[4096];
    static size_t pool_left;
    if (cap) out[0] = '\0';
    if (bytes == 0 || bytes > RANDID_SLOT || cap < b64url_encoded_len(bytes) + 1) return 0;
    if (pool_left < RANDID_SLOT) {
        size_t got = 0;
        while (got < sizeof pool) {
            ssize_t n = getrandom(pool + got, sizeof pool - got, 0);
            if (n <= 0) return 0;
            got += (size_t)n;
        }
        pool_left = sizeof pool;
    }
    uint8_t *r = pool + sizeof pool - pool_left;
    size_t len = b64url_encode(r, bytes, out);
    memset(r, 0, RANDID_SLOT);          /* an id's bytes are used once */
    pool_left -= RANDID_SLOT;
    return len;
}
