/* lg_stats.h — what the load generator measures besides counts: latency
 * samples and their percentiles, and CPU time of this process and of the
 * server under test.
 *
 * Latencies are kept as individual samples (uint32 nanoseconds, saturating
 * at ~4.29 s), so percentiles are exact.  Memory is bounded: a run that
 * expects more than LG_LAT_MAX samples keeps every k-th one, evenly spread
 * over the run.
 */
#ifndef LG_STATS_H
#define LG_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LG_LAT_MAX (32u << 20)   /* 128 MiB of samples */

typedef struct lg_lat {
    uint32_t *v;
    size_t    n, cap;
    uint64_t  seen, stride;
} lg_lat_t;

/* Prepares for `expected` samples (at most LG_LAT_MAX are stored). */
void lg_lat_init(lg_lat_t *l, uint64_t expected);
static inline void lg_lat_add(lg_lat_t *l, uint64_t ns)
{
    if (l->seen++ % l->stride == 0 && l->n < l->cap)
        l->v[l->n++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}
/* Sorts the samples; call once, after the last lg_lat_add. */
void lg_lat_sort(lg_lat_t *l);
/* The q-quantile (0..1) of sorted samples in microseconds; 0 when none. */
double lg_lat_quantile_us(const lg_lat_t *l, double q);
void lg_lat_free(lg_lat_t *l);

/* CPU seconds (user + system) used so far by this process. */
double lg_cpu_self(void);
/* CPU seconds used so far by process `pid` (from /proc/PID/stat), or -1
 * when pid is 0 or the file cannot be read. */
double lg_cpu_pid(pid_t pid);
/* VmRSS of this process in bytes (from /proc/self/status), or 0. */
size_t lg_rss_self(void);
/* CPU seconds all CPUs of the machine have been busy (the first line of
 * /proc/stat: everything but idle and iowait), or -1. */
double lg_cpu_machine(void);

#endif
