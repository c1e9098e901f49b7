/* lg_conn.h — the load generator's client side: one epoll loop, many
 * non-blocking WebSocket client connections built on proto/.
 *
 * A connection goes CONNECTING -> HANDSHAKE (request written, reading the
 * 101) -> WELCOME (upgraded, waiting for {"op":"welcome"}) -> OPEN ->
 * CLOSING (our close frame sent) -> DONE.  Server frames are parsed with a
 * client-role ws_reader_t; our frames are masked with ws_frame_write_header
 * and ws_mask.  Pings are answered with pongs.
 *
 * Anything the benchmark does not expect — a refused or malformed
 * handshake, a protocol error, a binary frame, a close frame or EOF we did
 * not ask for, a socket error — is fatal: lg_fail() prints one line naming
 * the connection and exits with status 1.  A load generator that keeps
 * going after an error reports numbers that mean nothing.
 *
 * Memory: the loop owns one read buffer; a connection owns a reader (~150
 * bytes) and heap only while it has a partial handshake response or output
 * the socket did not take.
 */
#ifndef LG_CONN_H
#define LG_CONN_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "ws_alloc.h"
#include "ws_message.h"

typedef struct lg_loop lg_loop_t;
typedef struct lg_conn lg_conn_t;

typedef enum lg_state {
    LG_IDLE = 0,      /* no socket */
    LG_CONNECTING,    /* connect() in progress */
    LG_HANDSHAKE,     /* request written, reading the response */
    LG_WELCOME,       /* upgraded, waiting for the welcome envelope */
    LG_OPEN,
    LG_CLOSING,       /* our close frame sent: waiting for theirs and EOF */
    LG_DONE           /* socket closed cleanly */
} lg_state_t;

/* Scenario callbacks, each given the connection. */
typedef struct lg_callbacks {
    void (*on_open)(lg_conn_t *c);                                /* welcome read */
    void (*on_text)(lg_conn_t *c, const uint8_t *p, size_t n);   /* any later text message */
    void (*on_closed)(lg_conn_t *c);                              /* a close we asked for ended */
} lg_callbacks_t;

struct lg_conn {
    lg_loop_t  *loop;
    int         fd;
    uint32_t    idx;          /* the scenario's index, for messages */
    uint8_t     state;        /* lg_state_t */
    uint8_t     out_armed;    /* EPOLLOUT is on */
    uint8_t     close_seen;   /* the server's close frame arrived */
    uint8_t     id_len;
    char        id[48];       /* connection id from the welcome */
    char        key[25];      /* Sec-WebSocket-Key sent */
    ws_reader_t reader;
    ws_buf_t    hs;           /* handshake response so far (freed once upgraded) */
    ws_buf_t    out;          /* bytes the socket did not take */
    size_t      out_off;
    /* Scenario state: free for the scenario's use. */
    uint64_t    seq;
    uint64_t    sent_ns;
    uint64_t    count;
    uint64_t    rank;         /* order in which the join was acked, from 0 */
    uint64_t   *bits;
};

struct lg_loop {
    int                 epfd;
    struct sockaddr_in  addr;
    char                host[300];   /* Host header: host:port */
    char                path[256];
    lg_callbacks_t      cb;
    void               *ud;          /* the scenario */
    uint8_t            *rbuf;        /* one read buffer for every connection */
    size_t              rcap;
    uint64_t            now_ns;      /* CLOCK_MONOTONIC at the last read */
    uint64_t            rng;         /* masks and keys: speed, not secrecy */
    uint64_t            frames_in;   /* counters for the report */
    uint64_t            bytes_in;
    uint64_t            bytes_out;
};

/* Parses ws://HOST:PORT/PATH (HOST numeric IPv4 or "localhost") into the
 * loop and creates the epoll instance.  Returns 0, or -1 with a message in
 * err. */
int  lg_loop_init(lg_loop_t *l, const char *url, const lg_callbacks_t *cb, void *ud,
                  char *err, size_t errlen);
/* Waits up to timeout_ms for events and handles them.  Returns the number
 * of events handled (0 on timeout). */
int  lg_loop_poll(lg_loop_t *l, int timeout_ms);
void lg_loop_free(lg_loop_t *l);

uint64_t lg_now_ns(void);

/* Starts a connection (c is zeroed except idx, which is kept). */
void lg_conn_start(lg_loop_t *l, lg_conn_t *c);
/* Sends one masked text frame; what the socket does not take is kept and
 * written when it becomes writable. */
void lg_conn_send_text(lg_conn_t *c, const void *p, size_t n);
/* Sends close 1000 and waits for the server's close and EOF; on_closed
 * runs then.  Only from LG_OPEN. */
void lg_conn_close(lg_conn_t *c);
/* Closes the socket without a close handshake (end of a scenario). */
void lg_conn_drop(lg_conn_t *c);

/* Prints "loadgen: conn N (id): message" and exits 1. */
void lg_fail(const lg_conn_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

#endif
