/* poller.h — readiness for every client socket through one epoll set of our
 * own, itself watched by one ev_io in the loop.
 *
 * Why not an ev_io per connection: libev's watcher is 48 bytes in the
 * connection plus ~20 bytes of per-descriptor tables in the loop, which is a
 * seventh of what an idle connection may cost (docs/performance.md).  Here a
 * connection pays one byte (the events it is registered for) and epoll's
 * data field points at it.  Listeners, timers and signals stay in libev.
 *
 * The set is level-triggered, like libev's epoll backend: a socket with input
 * left after a bounded read is reported again on the next pass, so no
 * "come back later" list is needed.  One pass handles at most POLLER_BATCH
 * events; if more are ready the epoll descriptor stays readable and libev
 * calls again in its next iteration, after timers and other watchers.
 *
 * Linux only (epoll), as the rest of the gateway (SO_REUSEPORT, accept4).
 */
#ifndef WSGW_POLLER_H
#define WSGW_POLLER_H

#include <ev.h>
#include <stdint.h>

#define POLLER_BATCH 256

/* Called once per ready socket with EV_READ and/or EV_WRITE (an error or
 * hang-up is reported as both, as libev does, so the next read or write
 * sees it). */
typedef void (*poller_cb)(void *ptr, int revents);

typedef struct wsgw_poller {
    int             epfd;
    ev_io           io;
    struct ev_loop *loop;
    poller_cb       cb;
} wsgw_poller_t;

/* Returns 0, or -1 with errno set (epoll_create1 failed). */
int  poller_init(wsgw_poller_t *p, struct ev_loop *loop, poller_cb cb);
void poller_free(wsgw_poller_t *p);

/* Registers fd for `events` (EV_READ | EV_WRITE, or 0 to unregister), given
 * what it is registered for now in *current, which is updated.  ptr is
 * handed back to the callback.  Returns 0, or -1 with errno set (the
 * descriptor is then not watched: the caller closes the connection). */
int  poller_set(wsgw_poller_t *p, int fd, void *ptr, uint8_t *current, int events);

#endif
