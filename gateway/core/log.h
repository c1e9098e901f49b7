/* log.h — one line per event on stderr: a timestamp, the level and
 * key=value fields.  `log_format = json` writes the same fields as one JSON
 * object per line.  Values with spaces or quotes are quoted/escaped.
 *
 *   wsgw_log(WSGW_LOG_INFO, "conn_open", "id=%s remote=%s", id, addr);
 *   -> 2026-11-21T06:20:23.123Z level=info event=conn_open id=ab12 remote=127.0.0.1:5000
 *
 * The format string must produce key=value pairs separated by spaces; the
 * caller quotes values that may contain spaces with wsgw_log_quote().
 * Logging is process-global (one stderr), so the level is too. */
#ifndef WSGW_LOG_H
#define WSGW_LOG_H

#include <stddef.h>

typedef enum wsgw_log_level {
    WSGW_LOG_DEBUG = 0,
    WSGW_LOG_INFO  = 1,
    WSGW_LOG_WARN  = 2,
    WSGW_LOG_ERROR = 3
} wsgw_log_level_t;

void wsgw_log_set_level(wsgw_log_level_t level);
void wsgw_log_set_json(int json);
int  wsgw_log_enabled(wsgw_log_level_t level);

void wsgw_log(wsgw_log_level_t level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes s[0..len) into out as a double-quoted string with \" \\ and
 * non-printable bytes escaped (\xNN), truncated to fit; returns out. */
const char *wsgw_log_quote(char *out, size_t cap, const char *s, size_t len);

/* A value from outside (a token's sub, a header) as one field: s itself
 * when it is non-empty and has no space, '=', '"', '\\' or control byte,
 * else wsgw_log_quote(out, cap, s, strlen(s)) — so a value can never end
 * its field early and forge another ("user=x role=admin").  Returns s or
 * out. */
const char *wsgw_log_value(char *out, size_t cap, const char *s);

#endif
