/* lg_stats.c — see lg_stats.h. */
#include "lg_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ws_alloc.h"

void lg_lat_init(lg_lat_t *l, uint64_t expected)
{
    l->stride = expected > LG_LAT_MAX ? (expected + LG_LAT_MAX - 1) / LG_LAT_MAX : 1;
    l->cap = (size_t)(expected / l->stride + 1);
    l->v = ws_xmalloc(l->cap * sizeof *l->v);
    l->n = 0;
    l->seen = 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void lg_lat_sort(lg_lat_t *l)
{
    if (l->n) qsort(l->v, l->n, sizeof *l->v, cmp_u32);
}

double lg_lat_quantile_us(const lg_lat_t *l, double q)
{
    if (l->n == 0) return 0;
    size_t i = (size_t)(q * (double)(l->n - 1) + 0.5);
    if (i >= l->n) i = l->n - 1;
    return l->v[i] / 1000.0;
}

void lg_lat_free(lg_lat_t *l)
{
    ws_xfree(l->v);
    memset(l, 0, sizeof *l);
}

double lg_cpu_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

double lg_cpu_pid(pid_t pid)
{
    if (pid <= 0) return -1;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name, which is in parentheses and may hold
     * spaces: state is field 3, utime 14, stime 15. */
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

size_t lg_rss_self(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) { kb = strtoull(line + 6, NULL, 10); break; }
    fclose(f);
    return kb * 1024;
}

double lg_cpu_machine(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    unsigned long long v[8] = { 0 };
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n != 8) return -1;
    /* user nice system idle iowait irq softirq steal */
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}
