/* bp_resolve.c — getaddrinfo in a detached thread (see bp_resolve.h for the
 * ownership rule: two owners, the last one frees). */
#include "bp_resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "ws_alloc.h"

int (*bp_resolve_getaddrinfo)(const char *node, const char *service,
                              const struct addrinfo *hints, struct addrinfo **res) = getaddrinfo;

struct bp_resolve {
    pthread_mutex_t lock;     /* guards everything below but host */
    int             refs;     /* 2 while both the caller and the thread hold the job */
    int             done;     /* the thread wrote the result */
    int             ok;       /* result is an address (1) or an error text (0) */
    char            result[256];
    char            host[];   /* the thread's own copy */
};

static atomic_int live_jobs;

int bp_resolve_live(void)
{
    return atomic_load(&live_jobs);
}

int bp_resolve_is_numeric(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* Drops one owner's hold; the last one frees the job. */
static void job_unref(bp_resolve_t *j)
{
    pthread_mutex_lock(&j->lock);
    int last = --j->refs == 0;
    pthread_mutex_unlock(&j->lock);
    if (!last) return;
    pthread_mutex_destroy(&j->lock);
    ws_xfree(j);
    atomic_fetch_sub(&live_jobs, 1);
}

/* The first IPv4 address, else the first IPv6 one: what hiredis 0.14 would
 * connect to (it asks for AF_INET and falls back to AF_INET6). */
static const struct addrinfo *pick_address(const struct addrinfo *res)
{
    for (const struct addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET) return a;
    for (const struct addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET6) return a;
    return NULL;
}

static void *resolve_thread(void *arg)
{
    bp_resolve_t *j = arg;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    char addr[BP_RESOLVE_ADDR_MAX], why[160];
    int ok = 0;
    int rc = bp_resolve_getaddrinfo(j->host, NULL, &hints, &res);
    int saved_errno = errno;
    if (rc == 0) {
        const struct addrinfo *a = pick_address(res);
        /* NI_NUMERICHOST: formatting only, no reverse lookup; keeps an IPv6
         * scope ("%eth0") that inet_ntop would lose. */
        if (a && getnameinfo(a->ai_addr, a->ai_addrlen, addr, sizeof addr, NULL, 0, NI_NUMERICHOST) == 0)
            ok = 1;
        else
            snprintf(why, sizeof why, "no IPv4 or IPv6 address");
    } else if (rc == EAI_SYSTEM) {
        char buf[128];
        snprintf(why, sizeof why, "%s", strerror_r(saved_errno, buf, sizeof buf));
    } else {
        snprintf(why, sizeof why, "%s", gai_strerror(rc));
    }
    if (res) freeaddrinfo(res);

    pthread_mutex_lock(&j->lock);
    if (ok) snprintf(j->result, sizeof j->result, "%s", addr);
    else snprintf(j->result, sizeof j->result, "cannot resolve %s: %s", j->host, why);
    j->ok = ok;
    j->done = 1;
    pthread_mutex_unlock(&j->lock);
    job_unref(j);
    return NULL;
}

bp_resolve_t *bp_resolve_start(const char *host, char *err, size_t errlen)
{
    size_t n = strlen(host);
    bp_resolve_t *j = ws_xcalloc(1, sizeof *j + n + 1);
    memcpy(j->host, host, n + 1);
    pthread_mutex_init(&j->lock, NULL);
    j->refs = 2;
    atomic_fetch_add(&live_jobs, 1);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* Every signal stays with the loop thread (the gateway's signal
     * watchers): the new thread starts with all of them blocked. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t tid;
    int rc = pthread_create(&tid, &attr, resolve_thread, j);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        char buf[128];
        snprintf(err, errlen, "cannot start a resolver thread: %s", strerror_r(rc, buf, sizeof buf));
        j->refs = 1;   /* no thread: the caller's hold is the only one */
        job_unref(j);
        return NULL;
    }
    return j;
}

bp_resolve_status_t bp_resolve_poll(bp_resolve_t *j, char *addr, size_t addrlen,
                                    char *err, size_t errlen)
{
    pthread_mutex_lock(&j->lock);
    bp_resolve_status_t st = BP_RESOLVE_PENDING;
    if (j->done) {
        st = j->ok ? BP_RESOLVE_OK : BP_RESOLVE_FAILED;
        if (j->ok) snprintf(addr, addrlen, "%s", j->result);
        else snprintf(err, errlen, "%s", j->result);
    }
    pthread_mutex_unlock(&j->lock);
    return st;
}

void bp_resolve_release(bp_resolve_t *j)
{
    if (j) job_unref(j);
}
