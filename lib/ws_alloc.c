/* ws_alloc.c — abort-on-OOM allocation (see ws_alloc.h for why). */
#include "ws_alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

static void ws_oom(size_t n)
{
    fprintf(stderr, "wsgw: fatal: out of memory allocating %zu bytes\n", n);
    abort();
}

void *ws_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) ws_oom(n);
    return p;
}

void *ws_xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p) ws_oom(count * n);
    return p;
}

void *ws_xrealloc(void *p, size_t n)
{
    if (n == 0) {
        free(p);
        return NULL;
    }
    void *q = realloc(p, n);
    if (!q) ws_oom(n);
    return q;
}

char *ws_xstrndup(const char *s, size_t n)
{
    char *d = ws_xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void ws_xfree(void *p)
{
    free(p);
}

uint8_t *ws_buf_reserve(ws_buf_t *b, size_t extra)
{
    if (b->cap - b->len < extra) {
        size_t need = b->len + extra;
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        b->data = ws_xrealloc(b->data, cap);
        b->cap = cap;
    }
    return b->data + b->len;
}

void ws_buf_append(ws_buf_t *b, const void *p, size_t n)
{
    if (n == 0) return;
    memcpy(ws_buf_reserve(b, n), p, n);
    b->len += n;
}

void ws_buf_free(ws_buf_t *b)
{
    ws_xfree(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
