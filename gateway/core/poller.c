/* poller.c — see poller.h. */
#include "poller.h"

#include <errno.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <unistd.h>

static void poller_ready(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    wsgw_poller_t *p = (wsgw_poller_t *)((char *)w - offsetof(wsgw_poller_t, io));
    struct epoll_event evs[POLLER_BATCH];
    int n = epoll_wait(p->epfd, evs, POLLER_BATCH, 0);
    for (int i = 0; i < n; i++) {
        uint32_t e = evs[i].events;
        int r = 0;
        if (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) r |= EV_READ;
        if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) r |= EV_WRITE;
        p->cb(evs[i].data.ptr, r);
    }
}

int poller_init(wsgw_poller_t *p, struct ev_loop *loop, poller_cb cb)
{
    p->loop = loop;
    p->cb = cb;
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0) return -1;
    ev_io_init(&p->io, poller_ready, p->epfd, EV_READ);
    ev_io_start(loop, &p->io);
    return 0;
}

void poller_free(wsgw_poller_t *p)
{
    if (p->epfd < 0) return;
    ev_io_stop(p->loop, &p->io);
    close(p->epfd);
    p->epfd = -1;
}

int poller_set(wsgw_poller_t *p, int fd, void *ptr, uint8_t *current, int events)
{
    events &= EV_READ | EV_WRITE;
    if (*current == events) return 0;
    struct epoll_event ev = { .events = 0, .data = { .ptr = ptr } };
    if (events & EV_READ) ev.events |= EPOLLIN;
    if (events & EV_WRITE) ev.events |= EPOLLOUT;
    /* Unregistered while 0: epoll reports an error or hang-up even for an
     * empty event mask, and such a socket must stay quiet until it is
     * wanted again. */
    int op = !events ? EPOLL_CTL_DEL : *current ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(p->epfd, op, fd, &ev) != 0) return -1;
    *current = (uint8_t)events;
    return 0;
}
