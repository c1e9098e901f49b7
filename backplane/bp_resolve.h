/* bp_resolve.h — host-name resolution off the event loop, for the Redis
 * backplane (private to backplane/).
 *
 * getaddrinfo(3) blocks for as long as the resolver takes: a slow or dead
 * DNS server would freeze every client of the process if it ran on the
 * loop.  hiredis 0.14's redisAsyncConnect() calls it on the loop for any
 * host that is not a numeric address, so the backplane resolves a name here,
 * in a detached thread, and hands hiredis the numeric address.
 *
 * A job is shared by two owners: the caller (the loop side) and the thread.
 * Each lets go exactly once — the thread when its lookup returned and the
 * result is written, the caller with bp_resolve_release() — and whichever
 * is last frees the job.  The thread touches nothing but the job (the host
 * name is copied into it), so the caller may release a job whose lookup is
 * still running and free everything else at once: the thread ends when
 * getaddrinfo returns and frees the job then.  A lookup cannot be
 * interrupted; it lasts at most the resolver's own timeout (resolv.conf).
 *
 * There is no wake-up from the thread: the caller polls with a timer of its
 * loop (backplane.h offers timers only).
 */
#ifndef WSGW_BP_RESOLVE_H
#define WSGW_BP_RESOLVE_H

#include <stddef.h>

struct addrinfo;

typedef struct bp_resolve bp_resolve_t;

typedef enum bp_resolve_status {
    BP_RESOLVE_FAILED = -1,   /* the lookup failed: `err` says why */
    BP_RESOLVE_PENDING = 0,   /* the thread is still looking */
    BP_RESOLVE_OK = 1         /* `addr` holds a numeric address */
} bp_resolve_status_t;

/* Longest numeric address written to `addr` (IPv6 with a %scope), NUL
 * included. */
#define BP_RESOLVE_ADDR_MAX 64

/* 1 when host is a numeric IPv4 or IPv6 address: hiredis connects to it
 * without any lookup, so it needs no resolver. */
int bp_resolve_is_numeric(const char *host);

/* Starts looking up `host` (copied) in a new detached thread.  Returns the
 * job, or NULL with err filled ("cannot start a resolver thread: ...") when
 * no thread can be created. */
bp_resolve_t *bp_resolve_start(const char *host, char *err, size_t errlen);

/* The job's state, never blocking.  BP_RESOLVE_OK: addr (addrlen >=
 * BP_RESOLVE_ADDR_MAX) holds the first IPv4 address, or the first IPv6 one
 * when the name has no IPv4 address (hiredis' own preference).
 * BP_RESOLVE_FAILED: err holds "cannot resolve HOST: <reason>". */
bp_resolve_status_t bp_resolve_poll(bp_resolve_t *j, char *addr, size_t addrlen,
                                    char *err, size_t errlen);

/* The caller lets go of the job; it may not use it again.  Safe while the
 * lookup runs. */
void bp_resolve_release(bp_resolve_t *j);

/* Jobs not freed yet, in this process (both owners count as one job): a
 * test waits for 0 after freeing a backplane to see that nothing leaked. */
int bp_resolve_live(void);

/* The lookup each thread runs: getaddrinfo(3) (results freed with
 * freeaddrinfo).  Tests point it at a slow or counting wrapper before
 * starting any backplane; nothing else changes it. */
extern int (*bp_resolve_getaddrinfo)(const char *node, const char *service,
                                     const struct addrinfo *hints, struct addrinfo **res);

#endif
