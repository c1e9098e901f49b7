/* http_routes.c — the plain HTTP beside the WebSocket endpoint:
 *   /healthz          200 {"status":"ok",...} (503 "draining" during shutdown)
 *   /metrics          Prometheus text format 0.0.4
 *   client_js_path    the JavaScript client, embedded in the binary
 *   static_dir        files served at / (index.html for a folder)
 *   anything else     404
 * One request per connection (Connection: close): the gateway is not a web
 * server, and this keeps a slow HTTP client from holding buffers.  A
 * response is counted apart from the handshakes (conn_start_http), must be
 * written within http_write_timeout, and at most max_http_responses files
 * and scripts go out at once.  A static file is never held whole: it is
 * streamed from the file opened for the request as the socket drains (see
 * http_file_fill), so a response holds an fd and at most one chunk
 * (HTTP_FILE_CHUNK, with TLS; none in cleartext) whatever the file's size.
 * The scripts are small and copied whole. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "server_int.h"

extern const unsigned char wsgw_client_js[];
extern const size_t wsgw_client_js_len;

void wsgw_server_gauges(const wsgw_server_t *s, wsgw_gauges_t *g);

/* A response block: the head written, room for `len` body bytes (none for
 * HEAD) at *body.  NULL (the connection closed) when the head does not fit. */
static wsgw_block_t *http_block(wsgw_conn_t *c, int status, const char *ctype, size_t len,
                                int head_only, const char *extra, uint8_t **body)
{
    char head[1024];
    int n = ws_http_response_head(head, sizeof head, status, ctype, len, 0, extra);
    if (n < 0) { conn_close_now(c, 0); return NULL; }
    wsgw_block_t *b = wsgw_block_new((size_t)n + (head_only ? 0 : len));
    memcpy(b->data, head, (size_t)n);
    *body = b->data + n;
    return b;
}

static void http_push(wsgw_conn_t *c, wsgw_block_t *b)
{
    outq_push(&c->outq, b);
    wsgw_block_unref(b);
    conn_mark_pending(c);
}

static void http_send(wsgw_conn_t *c, int status, const char *ctype, const void *body,
                      size_t len, int head_only, const char *extra)
{
    uint8_t *dst;
    wsgw_block_t *b = http_block(c, status, ctype, len, head_only, extra, &dst);
    if (!b) return;
    if (!head_only && len) memcpy(dst, body, len);
    http_push(c, b);
}

static void http_text(wsgw_conn_t *c, int status, const char *text, int head_only)
{
    http_send(c, status, "text/plain; charset=utf-8", text, strlen(text), head_only, NULL);
}

/* A file or script response holds an fd (and a chunk) or a copy of the
 * script until it is written: at most max_http_responses of them at once,
 * so slow readers cannot take fds or memory without bound.  Returns 1 when
 * this response may go (it is counted until written), or answers 503 and
 * returns 0.  A HEAD
 * sends no body and is not counted; /healthz, /metrics and errors are small
 * and always answered (a balancer's health check must never see 503 here). */
static int http_file_slot(wsgw_conn_t *c, int head_only)
{
    wsgw_server_t *s = c->srv;
    if (head_only) return 1;
    if (s->n_http_files >= (size_t)s->cfg->max_http_responses) {
        s->metrics.http_busy++;
        wsgw_log(WSGW_LOG_DEBUG, "http_busy", "remote=%s responses=%zu", conn_peer(c), s->n_http_files);
        http_send(c, 503, "text/plain; charset=utf-8", "busy, try again\n", 16, 0, "Retry-After: 1\r\n");
        return 0;
    }
    c->http_file = 1;
    s->n_http_files++;
    return 1;
}

static void route_healthz(wsgw_conn_t *c, int head_only)
{
    wsgw_server_t *s = c->srv;
    /* Redis away is "degraded", still 200: local delivery goes on, and a
     * balancer that pulled every gateway when Redis blinks would turn a
     * partial outage into a total one. */
    core_health_t h = { .backplane = "embedded", .degraded = 0, .node = "" };
    CORE_EACH_HOOK(s, k) if (k->health) k->health(k->ud, &h);
    const char *bp = h.backplane;
    int degraded = h.degraded;
    char body[256];
    int n = snprintf(body, sizeof body,
                     "{\"status\":\"%s\",\"connections\":%zu,\"rooms\":%zu,\"backplane\":\"%s\",\"node\":\"%s\"}\n",
                     s->draining ? "draining" : degraded ? "degraded" : "ok", s->n_open,
                     rooms_count(&s->rooms), bp, h.node);
    http_send(c, s->draining ? 503 : 200, "application/json", body, (size_t)n, head_only,
              "Cache-Control: no-store\r\n");
}

static void route_metrics(wsgw_conn_t *c, int head_only)
{
    wsgw_gauges_t g;
    ws_buf_t out = {0};
    wsgw_server_gauges(c->srv, &g);
    wsgw_metrics_render(&c->srv->metrics, &g, &out);
    http_send(c, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len, head_only,
              "Cache-Control: no-store\r\n");
    ws_buf_free(&out);
}

static const char *content_type(const char *path)
{
    static const struct { const char *ext, *type; } types[] = {
        { ".html", "text/html; charset=utf-8" }, { ".js", "text/javascript; charset=utf-8" },
        { ".css", "text/css; charset=utf-8" },   { ".json", "application/json" },
        { ".svg", "image/svg+xml" },             { ".png", "image/png" },
        { ".ico", "image/x-icon" },              { ".txt", "text/plain; charset=utf-8" },
    };
    const char *dot = strrchr(path, '.');
    if (dot)
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcmp(dot, types[i].ext) == 0) return types[i].type;
    return "application/octet-stream";
}

/* Serves static_dir/<path>.  The request path must not escape the folder:
 * no "..", no NUL, no backslash; the resolved real path must lie inside the
 * folder's real path (a symlink out of it is refused too). */
static int route_static(wsgw_conn_t *c, const ws_http_request_t *req, int head_only)
{
    const char *root = c->srv->cfg->static_dir;
    if (!root || !root[0]) return 0;
    char rel[1024];
    if (req->path_len >= sizeof rel - 16) return 0;
    memcpy(rel, req->path, req->path_len);
    rel[req->path_len] = '\0';
    if (strstr(rel, "..") || strchr(rel, '\\') || strchr(rel, '%')) return 0;
    char real_root[PATH_MAX], real[PATH_MAX], full[PATH_MAX + sizeof rel + 16];
    if (!realpath(root, real_root)) return 0;
    snprintf(full, sizeof full, "%s%s", real_root, rel);
    struct stat st;
    if (stat(full, &st) == 0 && S_ISDIR(st.st_mode))
        strncat(full, rel[strlen(rel) - 1] == '/' ? "index.html" : "/index.html", sizeof full - strlen(full) - 1);
    if (!realpath(full, real)) return 0;
    size_t rl = strlen(real_root);
    if (strncmp(real, real_root, rl) != 0 || (real[rl] != '/' && real[rl] != '\0')) return 0;
    /* O_NONBLOCK: opening a FIFO for reading would wait, in the event
     * loop, for a writer (a device node could too); it is refused below as
     * not a regular file.  A regular file's reads ignore the flag. */
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) { close(fd); return 0; }
    if (!http_file_slot(c, head_only)) { close(fd); return 1; }
    /* The head now; the body from the open file as the socket drains
     * (conn_flush), so a response holds at most one chunk of it. */
    uint8_t *body;
    wsgw_block_t *b = http_block(c, 200, content_type(real), (size_t)st.st_size, 1,
                                 "Cache-Control: no-cache\r\n", &body);
    if (!b) { close(fd); return 1; }
    http_push(c, b);
    if (head_only || st.st_size == 0) { close(fd); return 1; }
    c->has_file = 1;
    c->file.fd = fd;
    c->file.off = 0;
    c->file.end = st.st_size;
    return 1;
}

void http_file_close(wsgw_conn_t *c)
{
    if (!c->has_file) return;
    close(c->file.fd);
    memset(&c->file, 0, sizeof c->file);
    c->has_file = 0;
}

/* Reads the next chunk with pread (the offset is ours: nothing else moves
 * it).  A file that shrank since its size was sent, or a read error, ends
 * the connection: the client sees fewer bytes than Content-Length said,
 * never bytes of another length.  The read blocks the loop for as long as
 * the disk takes (a page-cache hit is a memcpy): static_dir is for a demo
 * page and its assets, a CDN or web server for large downloads. */
int http_file_fill(wsgw_conn_t *c)
{
    conn_file_t *f = &c->file;
    size_t want = f->end - f->off < (off_t)HTTP_FILE_CHUNK ? (size_t)(f->end - f->off) : HTTP_FILE_CHUNK;
    wsgw_block_t *b = wsgw_block_new(want);
    size_t got = 0;
    while (got < want) {
        ssize_t n = pread(f->fd, b->data + got, want - got, f->off + (off_t)got);
        if (n > 0) { got += (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        wsgw_log(WSGW_LOG_WARN, "http_file_error", "remote=%s offset=%lld size=%lld err=\"%s\"",
                 conn_peer(c), (long long)(f->off + (off_t)got), (long long)f->end,
                 n < 0 ? strerror(errno) : "file shrank while served");
        wsgw_block_unref(b);
        conn_close_now(c, 0);
        return -1;
    }
    f->off += (off_t)want;
    outq_push(&c->outq, b);
    wsgw_block_unref(b);
    if (f->off == f->end) http_file_close(c);
    return 0;
}

static int path_is(const ws_http_request_t *req, const char *p)
{
    size_t n = strlen(p);
    return n && req->path_len == n && memcmp(req->path, p, n) == 0;
}

void http_route(wsgw_conn_t *c, const ws_http_request_t *req)
{
    wsgw_server_t *s = c->srv;
    s->metrics.http_requests++;
    int head_only = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
    if (!head_only && !(req->method_len == 3 && memcmp(req->method, "GET", 3) == 0)) {
        http_send(c, 405, "text/plain; charset=utf-8", "method not allowed\n", 19, 0, "Allow: GET, HEAD\r\n");
        return;
    }
    if (path_is(req, "/healthz")) { route_healthz(c, head_only); return; }
    if (path_is(req, "/metrics")) { route_metrics(c, head_only); return; }
    if (path_is(req, s->cfg->client_js_path)) {
        if (!http_file_slot(c, head_only)) return;
        http_send(c, 200, "text/javascript; charset=utf-8", wsgw_client_js, wsgw_client_js_len,
                  head_only, "Cache-Control: no-cache\r\n");
        return;
    }
    CORE_EACH_HOOK(s, h) if (h->http_get && h->http_get(h->ud, c, req, head_only)) return;
    if (path_is(req, s->cfg->path)) {
        s->metrics.handshake_failures[HS_FAIL_BAD_REQUEST]++;
        http_text(c, 426, "this endpoint speaks WebSocket: send an Upgrade request\n", head_only);
        return;
    }
    if (route_static(c, req, head_only)) return;
    http_text(c, 404, "not found\n", head_only);
}

void core_http_send(wsgw_conn_t *c, const char *ctype, const void *body, size_t len, int head_only)
{
    if (!http_file_slot(c, head_only)) return;
    http_send(c, 200, ctype, body, len, head_only, "Cache-Control: no-cache\r\n");
}
