/* ws_alloc.h — the one allocation policy of proto/ and everything above it.
 *
 * Every size that a peer controls is checked against a configured limit
 * *before* it reaches these functions, so running out of memory here is not
 * an input error but a machine failure: the functions print one line to
 * stderr and abort(), and callers never test for NULL (no untested OOM
 * branches).  ws_xrealloc(p, 0) frees p and returns NULL.
 */
#ifndef WS_ALLOC_H
#define WS_ALLOC_H

#include <stddef.h>

void *ws_xmalloc(size_t n);
void *ws_xcalloc(size_t count, size_t n);
void *ws_xrealloc(void *p, size_t n);
char *ws_xstrndup(const char *s, size_t n);
void  ws_xfree(void *p);

#endif

#ifndef WS_BUF_DEFINED
#define WS_BUF_DEFINED
#include <stdint.h>
/* A growable byte buffer with one owner.  Zero-initialise it ({0}) to get an
 * empty buffer that holds no memory; ws_buf_free() returns it to that state.
 * `data` may move on every append, so never keep pointers into it across an
 * append. */
typedef struct ws_buf {
    uint8_t *data;
    size_t   len;
    size_t   cap;
} ws_buf_t;

/* Makes room for `extra` more bytes past len (grows by doubling, at least to
 * len+extra) and returns a pointer to data+len.  Does not change len. */
uint8_t *ws_buf_reserve(ws_buf_t *b, size_t extra);
/* Appends n bytes (copied). */
void ws_buf_append(ws_buf_t *b, const void *p, size_t n);
/* Frees the memory; the buffer is empty and usable again. */
void ws_buf_free(ws_buf_t *b);
#endif
