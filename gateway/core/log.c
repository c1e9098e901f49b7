/* log.c — see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static wsgw_log_level_t log_level = WSGW_LOG_INFO;
static int log_json;

static const char *const log_level_names[] = { "debug", "info", "warn", "error" };

void wsgw_log_set_level(wsgw_log_level_t level) { log_level = level; }
void wsgw_log_set_json(int json) { log_json = json; }
int  wsgw_log_enabled(wsgw_log_level_t level) { return level >= log_level; }

static size_t log_timestamp(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(out + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000);
    return n;
}

/* One byte of a value as JSON string content (RFC 8259 §7): quote and
 * backslash escaped, control characters as \u00XX; other bytes as they are
 * (log values are UTF-8 or ASCII). */
static void log_json_byte(FILE *f, unsigned char c)
{
    if (c == '"' || c == '\\') { fputc('\\', f); fputc(c, f); }
    else if (c < 0x20 || c == 0x7f) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
}

static int log_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Rewrites "k=v k2=\"a b\"" as JSON members.  Values that are numbers stay
 * strings: log consumers should not depend on field types.  A quoted value
 * may hold wsgw_log_quote()'s escapes (\" \\ \xNN), which are decoded; any
 * other backslash is a literal one (a raw value such as a backend's
 * disconnect reason "C:\xfiles").  Every byte is re-escaped for JSON, and
 * nothing is read past the terminating NUL. */
static void log_kv_to_json(FILE *f, const char *kv)
{
    const char *p = kv;
    while (*p) {
        while (*p == ' ') p++;
        const char *k = p;
        while (*p && *p != '=' && *p != ' ') p++;
        if (*p != '=') { while (*p && *p != ' ') p++; continue; }
        fputs(",\"", f);
        for (const char *q = k; q < p; q++) log_json_byte(f, (unsigned char)*q);
        fputs("\":\"", f);
        p++;
        if (*p == '"') {
            p++;
            while (*p && *p != '"') {
                if (p[0] == '\\' && (p[1] == '"' || p[1] == '\\')) {
                    log_json_byte(f, (unsigned char)p[1]);
                    p += 2;
                } else if (p[0] == '\\' && p[1] == 'x' && log_hex(p[2]) && log_hex(p[3])) {
                    char hex[3] = { p[2], p[3], '\0' };
                    log_json_byte(f, (unsigned char)strtoul(hex, NULL, 16));
                    p += 4;
                } else {
                    log_json_byte(f, (unsigned char)*p++);
                }
            }
            if (*p == '"') p++;
        } else {
            while (*p && *p != ' ') log_json_byte(f, (unsigned char)*p++);
        }
        fputc('"', f);
    }
}

void wsgw_log(wsgw_log_level_t level, const char *event, const char *fmt, ...)
{
    if (level < log_level) return;
    char ts[40], fields[2048];
    log_timestamp(ts, sizeof ts);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fields, sizeof fields, fmt, ap);
    va_end(ap);
    /* One fprintf per line under stdio's lock so lines from one process
     * never interleave; workers each write whole lines too. */
    flockfile(stderr);
    if (log_json) {
        fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":\"%s\"", ts,
                log_level_names[level], event);
        log_kv_to_json(stderr, fields);
        fputs("}\n", stderr);
    } else {
        fprintf(stderr, "%s level=%s event=%s%s%s\n", ts, log_level_names[level], event,
                fields[0] ? " " : "", fields);
    }
    funlockfile(stderr);
}

const char *wsgw_log_value(char *out, size_t cap, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == '=' || c == '"' || c == '\\' || c == 0x7f) return wsgw_log_quote(out, cap, s, n);
    }
    return n ? s : wsgw_log_quote(out, cap, s, n);
}

const char *wsgw_log_quote(char *out, size_t cap, const char *s, size_t len)
{
    size_t o = 0;
    if (cap < 3) { if (cap) out[0] = '\0'; return out; }
    out[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[5];
        size_t n;
        if (c == '"' || c == '\\') { esc[0] = '\\'; esc[1] = (char)c; n = 2; }
        else if (c < 0x20 || c == 0x7f) { snprintf(esc, sizeof esc, "\\x%02x", c); n = 4; }
        else { esc[0] = (char)c; n = 1; }
        if (o + n + 2 > cap) break;
        memcpy(out + o, esc, n);
        o += n;
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}
