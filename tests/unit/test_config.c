/* test_config.c — gateway/config: defaults, value parsers, the four layers
 * and their precedence, file syntax, flags, cross-field checks, help/dump. */
#include "test.h"
#include "config.h"

#include <fcntl.h>
#include <unistd.h>

#define CHECK_HAS(hay, needle) do {                                            \
        const char *h_ = (hay), *n_ = (needle);                                \
        CHECK_MSG(h_ && strstr(h_, n_), "\"%s\" lacks \"%s\"", h_ ? h_ : "(null)", n_); \
    } while (0)

#define ARGC(a) ((int)(sizeof(a) / sizeof(a[0])) - 1)  /* arrays end with NULL */

static char err[512];

/* Writes text to a new /tmp file; path gets its name.  Caller unlinks. */
static int write_tmp(const char *text, char path[64])
{
    strcpy(path, "/tmp/wsgw-test-config-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    size_t n = strlen(text);
    int ok = write(fd, text, n) == (ssize_t)n;
    close(fd);
    return ok ? 0 : -1;
}

/* dump into a malloc'd string (free it) */
static char *dump_str(const wsgw_config_t *cfg)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    wsgw_config_dump(cfg, f);
    fclose(f);
    return s;
}

static int load_str(wsgw_config_t *cfg, const char *text)
{
    return wsgw_config_load_text(cfg, text, strlen(text), "t.conf", err, sizeof err);
}

/* ---- defaults ---------------------------------------------------------- */

static void test_defaults(void)
{
    wsgw_config_t c;
    wsgw_config_init(&c);
    CHECK_INT(c.listen.n, 1);
    CHECK_STR(c.listen.v[0], "0.0.0.0:8080");
    CHECK(c.listen.v[1] == NULL);
    CHECK_INT(c.tls_listen.n, 0);
    CHECK_STR(c.tls_cert, "");
    CHECK_STR(c.tls_key, "");
    CHECK_INT(c.tls_min_version, WSGW_TLS_1_2);
    CHECK_STR(c.path, "/ws");
    CHECK_STR(c.static_dir, "");
    CHECK_STR(c.client_js_path, "/wsgw.js");
    CHECK_INT(c.id_generator, WSGW_ID_RANDOM);
    CHECK_STR(c.id_header, "X-Connection-Id");
    CHECK_INT(c.allowed_origins.n, 0);
    CHECK_INT(c.handshake_timeout_ms, 10000);
    CHECK_INT(c.read_timeout_ms, 0);
    CHECK_INT(c.write_timeout_ms, 0);
    CHECK_INT(c.pong_timeout_ms, 60000);
    CHECK_INT(c.ping_period_ms, 54000);
    CHECK_INT(c.drain_timeout_ms, 10000);
    CHECK_INT(c.max_message_size, 65536);
    CHECK(!c.binary_messages);
    CHECK_INT(c.read_buffer_size, 65536);
    CHECK_INT(c.write_buffer_size, 16384);
    CHECK(!c.enable_compression);
    CHECK_INT(c.compression_level, 1);
    CHECK_INT(c.compression_threshold, 128);
    CHECK_INT(c.subprotocols.n, 0);
    CHECK_INT(c.max_queued_bytes, 1 << 20);
    CHECK_INT(c.slow_consumer_action, WSGW_SLOW_CLOSE);
    CHECK_INT(c.max_connections, 10000);
    CHECK_INT(c.max_pending_handshakes, 1024);
    CHECK_INT(c.log_level, WSGW_LOG_INFO);
    CHECK_INT(c.log_format, WSGW_LOG_TEXT);
    CHECK_INT(c.max_room_name, 64);
    CHECK_INT(c.max_rooms_per_conn, 64);
    CHECK_INT(c.max_event_name, 64);
    CHECK_INT(c.join_rooms.n, 1);
    CHECK_STR(c.join_rooms.v[0], "*");
    CHECK_INT(c.emit_targets, WSGW_EMIT_BROADCAST | WSGW_EMIT_ALL | WSGW_EMIT_ROOM);
    CHECK_INT(c.error_rate_limit, 10);
    CHECK_INT(c.error_rate_burst, 20);
    CHECK_STR(c.redis_url, "");
    CHECK_STR(c.redis_prefix, "wsgw");
    CHECK_INT(c.workers, 1);
    CHECK_STR(c.config_path, "");
    CHECK_INT(wsgw_config_validate(&c, err, sizeof err), 0);
    wsgw_config_free(&c);
    wsgw_config_free(&c);  /* twice is harmless */
    CHECK(c.path == NULL);
}

/* ---- value parsers ------------------------------------------------------ */

static void test_parse_bool(void)
{
    static const char *yes[] = { "true", "TRUE", "yes", "on", "On", "1" };
    static const char *no[] = { "false", "no", "off", "OFF", "0" };
    static const char *bad[] = { "", "2", "y", "n", "truee", " true", "enable" };
    const char *why;
    bool b;
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        b = false;
        CHECK_INT(wsgw_parse_bool(yes[i], &b, &why), 0);
        CHECK(b);
    }
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        b = true;
        CHECK_INT(wsgw_parse_bool(no[i], &b, &why), 0);
        CHECK(!b);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        why = NULL;
        CHECK_MSG(wsgw_parse_bool(bad[i], &b, &why) == -1, "\"%s\" accepted", bad[i]);
        CHECK_STR(why, "not a bool (use true/false, yes/no, on/off, 1/0)");
    }
}

static void test_parse_size(void)
{
    static const struct { const char *s; uint64_t v; } good[] = {
        { "0", 0 }, { "1024", 1024 }, { "128B", 128 }, { "128 B", 128 },
        { "64KiB", 65536 }, { "64k", 65536 }, { "64K", 65536 }, { "64 KiB", 65536 },
        { "1MiB", 1 << 20 }, { "1m", 1 << 20 }, { "1M", 1 << 20 },
        { "1GiB", 1ull << 30 }, { "1g", 1ull << 30 }, { "1G", 1ull << 30 }, { "4GiB", 4ull << 30 },
        { "18446744073709551615", UINT64_MAX },
    };
    static const struct { const char *s, *why; } bad[] = {
        { "", "not a size (use 1024, 64KiB, 1MiB)" },
        { "12x", "not a size (use 1024, 64KiB, 1MiB)" },
        { "-1", "not a size (use 1024, 64KiB, 1MiB)" },
        { "1.5K", "not a size (use 1024, 64KiB, 1MiB)" },
        { " 64", "not a size (use 1024, 64KiB, 1MiB)" },
        { "64 ", "not a size (use 1024, 64KiB, 1MiB)" },
        { "K", "not a size (use 1024, 64KiB, 1MiB)" },
        { "64kib", "not a size (use 1024, 64KiB, 1MiB)" },
        { "64KiBB", "not a size (use 1024, 64KiB, 1MiB)" },
        { "64KB", "KB/MB/GB are ambiguous (use KiB, MiB, GiB or a byte count)" },
        { "1mb", "KB/MB/GB are ambiguous (use KiB, MiB, GiB or a byte count)" },
        { "18446744073709551616", "too large" },
        { "17179869184GiB", "too large" },
    };
    uint64_t v;
    const char *why;
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        v = 7;
        CHECK_MSG(wsgw_parse_size(good[i].s, &v, &why) == 0, "\"%s\" refused", good[i].s);
        CHECK_MSG(v == good[i].v, "\"%s\" -> %llu", good[i].s, (unsigned long long)v);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        why = NULL;
        CHECK_MSG(wsgw_parse_size(bad[i].s, &v, &why) == -1, "\"%s\" accepted", bad[i].s);
        CHECK_STR(why, bad[i].why);
    }
}

static void test_parse_duration(void)
{
    static const struct { const char *s; uint64_t ms; } good[] = {
        { "0", 0 }, { "0s", 0 }, { "54s", 54000 }, { "500ms", 500 }, { "2m", 120000 },
        { "1h", 3600000 }, { "1m30s", 90000 }, { "1h1m1s1ms", 3661001 }, { "10ms", 10 },
    };
    static const char generic[] = "not a duration (use 500ms, 54s, 2m, 1h)";
    static const struct { const char *s, *why; } bad[] = {
        { "54", "a unit is required (write 54s, 500ms, 2m or 1h)" },
        { "00", "a unit is required (write 54s, 500ms, 2m or 1h)" },
        { "1.5s", "fractions are not supported (write 1500ms, 90s)" },
        { "", generic }, { "s", generic }, { "-1s", generic }, { "10x", generic },
        { "1d", generic }, { "5us", generic }, { "1m30", generic }, { "54 s", generic },
        { "54S", generic }, { "1sec", generic }, { "1mss", generic },
        { "99999999999999999999h", "too large" }, { "9999999999999999h", "too large" },
    };
    uint64_t v;
    const char *why;
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        v = 7;
        CHECK_MSG(wsgw_parse_duration_ms(good[i].s, &v, &why) == 0, "\"%s\" refused", good[i].s);
        CHECK_MSG(v == good[i].ms, "\"%s\" -> %llu", good[i].s, (unsigned long long)v);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        why = NULL;
        CHECK_MSG(wsgw_parse_duration_ms(bad[i].s, &v, &why) == -1, "\"%s\" accepted", bad[i].s);
        CHECK_MSG(why && strcmp(why, bad[i].why) == 0, "\"%s\": %s", bad[i].s, why ? why : "(null)");
    }
}

static void test_parse_hostport(void)
{
    static const struct { const char *s, *host; int port; } good[] = {
        { "0.0.0.0:8080", "0.0.0.0", 8080 }, { ":8080", "", 8080 },
        { "[::1]:8080", "::1", 8080 }, { "[::]:1", "::", 1 },
        { "[fe80::1:2]:65535", "fe80::1:2", 65535 }, { "localhost:80", "localhost", 80 },
        { "gw-1.example.com.:443", "gw-1.example.com.", 443 }, { "127.0.0.1:09", "127.0.0.1", 9 },
    };
    static const struct { const char *s, *why; } bad[] = {
        { "localhost", "missing :PORT (e.g. 0.0.0.0:8080 or :8080)" },
        { "", "missing :PORT (e.g. 0.0.0.0:8080 or :8080)" },
        { "::1:8080", "an IPv6 address needs brackets (e.g. [::1]:8080)" },
        { "[::1]", "missing :PORT (e.g. [::1]:8080)" },
        { "[::1]8080", "expected :PORT after ]" },
        { "[::1:8080", "missing ] after an IPv6 address" },
        { "[zz::1]:80", "bad IPv6 address" },
        { "[]:80", "bad IPv6 address" },
        { "[1.2.3.4]:80", "bad IPv6 address" },
        { "999.1.1.1:80", "bad IPv4 address" },
        { "1.2.3:80", "bad IPv4 address" },
        { "bad host:80", "bad host name" },
        { "a..b:80", "bad host name" },
        { "host:", "missing port after ':'" },
        { "host:0", "port must be a number 1..65535" },
        { "host:65536", "port must be a number 1..65535" },
        { "host:80x", "port must be a number 1..65535" },
        { "host:-1", "port must be a number 1..65535" },
    };
    char host[64];
    int port;
    const char *why;
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        port = 0;
        CHECK_MSG(wsgw_parse_hostport(good[i].s, host, sizeof host, &port, &why) == 0,
                  "\"%s\" refused", good[i].s);
        CHECK_STR(host, good[i].host);
        CHECK_INT(port, good[i].port);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        why = NULL;
        CHECK_MSG(wsgw_parse_hostport(bad[i].s, host, sizeof host, &port, &why) == -1,
                  "\"%s\" accepted", bad[i].s);
        CHECK_MSG(why && strcmp(why, bad[i].why) == 0, "\"%s\": %s", bad[i].s, why ? why : "(null)");
    }
    char tiny[4];
    CHECK_INT(wsgw_parse_hostport("localhost:1", tiny, sizeof tiny, &port, &why), -1);
    CHECK_STR(why, "host name too long");
}

static void test_parse_redis_url(void)
{
    wsgw_redis_addr_t a;
    const char *why;
    CHECK_INT(wsgw_parse_redis_url("redis://localhost:6380/2", &a, &why), 0);
    CHECK(!a.is_unix);
    CHECK_STR(a.host, "localhost");
    CHECK_INT(a.port, 6380);
    CHECK_INT(a.db, 2);
    CHECK_INT(wsgw_parse_redis_url("redis://10.0.0.1", &a, &why), 0);
    CHECK_STR(a.host, "10.0.0.1");
    CHECK_INT(a.port, 6379);
    CHECK_INT(a.db, 0);
    CHECK_INT(wsgw_parse_redis_url("redis://u:p%40ss:w@rd@[::1]:7000/", &a, &why), 0);
    CHECK_STR(a.user, "u");
    CHECK_STR(a.pass, "p@ss:w@rd");
    CHECK_STR(a.host, "::1");
    CHECK_INT(a.port, 7000);
    CHECK_INT(wsgw_parse_redis_url("redis://:secret@h:1", &a, &why), 0);
    CHECK_STR(a.user, "");
    CHECK_STR(a.pass, "secret");
    CHECK_INT(wsgw_parse_redis_url("unix:///run/redis/redis.sock", &a, &why), 0);
    CHECK(a.is_unix);
    CHECK_STR(a.path, "/run/redis/redis.sock");

    static const struct { const char *s, *why; } bad[] = {
        { "localhost:6379", "not a Redis URL (use redis://[user:pass@]host:port[/db] or unix:///path)" },
        { "http://h", "not a Redis URL (use redis://[user:pass@]host:port[/db] or unix:///path)" },
        { "rediss://h:1", "TLS to Redis (rediss://) is not supported; use redis:// or unix://" },
        { "redis://h:1?timeout=1", "query parameters are not supported" },
        { "redis://", "missing host" },
        { "redis://u:p@", "missing host" },
        { "redis://:6379", "missing host" },
        { "redis://h:0", "port must be a number 1..65535" },
        { "redis://h:1/x", "db must be a number 0..65535 (redis://host:6379/0)" },
        { "redis://h:1/65536", "db must be a number 0..65535 (redis://host:6379/0)" },
        { "redis://u:p%zz@h", "bad password (use %XX escapes for @ : / and %)" },
        { "redis://u:p%00@h", "bad password (use %XX escapes for @ : / and %)" },
        { "redis://u%4@h", "bad user name (use %XX escapes)" },
        { "unix://run/redis.sock", "unix:// needs an absolute path (unix:///run/redis.sock)" },
        { "redis://::1", "an IPv6 address needs brackets (e.g. [::1]:8080)" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        why = NULL;
        CHECK_MSG(wsgw_parse_redis_url(bad[i].s, &a, &why) == -1, "\"%s\" accepted", bad[i].s);
        CHECK_MSG(why && strcmp(why, bad[i].why) == 0, "\"%s\": %s", bad[i].s, why ? why : "(null)");
    }
}

/* ---- setting one key: every type's errors name key and source ----------- */

static void test_set_errors(void)
{
    static const struct { const char *key, *value, *msg; } cases[] = {
        { "max_message_size", "12x",
          "max_message_size: SRC=12x: not a size (use 1024, 64KiB, 1MiB)" },
        { "max_message_size", "1GiB", "max_message_size: SRC=1GiB: out of range (16..256MiB)" },
        { "max_message_size", "15", "max_message_size: SRC=15: out of range (16..256MiB)" },
        { "max_message_size", "", "max_message_size: SRC=: not a size (use 1024, 64KiB, 1MiB)" },
        { "compression_level", "10", "compression_level: SRC=10: out of range (1..9)" },
        { "compression_level", "0", "compression_level: SRC=0: out of range (1..9)" },
        { "compression_level", "99999999999999999999", "compression_level: SRC=99999999999999999999: out of range (1..9)" },
        { "compression_level", "-1", "compression_level: SRC=-1: not a whole number" },
        { "compression_level", "1.0", "compression_level: SRC=1.0: not a whole number" },
        { "workers", "many", "workers: SRC=many: not a whole number or auto" },
        { "workers", "0", "workers: SRC=0: out of range (1..256, or auto)" },
        { "handshake_timeout", "0", "handshake_timeout: SRC=0: cannot be 0 (off) for this key" },
        { "handshake_timeout", "10", "handshake_timeout: SRC=10: a unit is required (write 54s, 500ms, 2m or 1h)" },
        { "handshake_timeout", "1h", "handshake_timeout: SRC=1h: out of range (100ms..5m)" },
        { "read_timeout", "500ms", "read_timeout: SRC=500ms: out of range (1s..24h, or 0 for off)" },
        { "binary_messages", "maybe",
          "binary_messages: SRC=maybe: not a bool (use true/false, yes/no, on/off, 1/0)" },
        { "log_level", "verbose", "log_level: SRC=verbose: must be one of debug|info|warn|error" },
        { "tls_min_version", "1.1", "tls_min_version: SRC=1.1: must be one of 1.2|1.3" },
        { "tls_ciphers", "NO-SUCH-CIPHER",
          "tls_ciphers: SRC=NO-SUCH-CIPHER: selects no cipher OpenSSL knows (see `openssl ciphers -v LIST`)" },
        { "tls_ciphers", "", "tls_ciphers: SRC=: must not be empty" },
        { "emit_targets", "room,everyone", "emit_targets: SRC=room,everyone: must be one of broadcast|all|room|conn" },
        { "listen", "localhost", "listen: SRC=localhost: missing :PORT (e.g. 0.0.0.0:8080 or :8080)" },
        { "listen", ":1,localhost",
          "listen: SRC=:1,localhost: item \"localhost\": missing :PORT (e.g. 0.0.0.0:8080 or :8080)" },
        { "listen", ":1,,:2", "listen: SRC=:1,,:2: empty item in a comma-separated list" },
        { "listen", ":1,", "listen: SRC=:1,: empty item in a comma-separated list" },
        { "proxy_protocol", "10.0.0.1/8",
          "proxy_protocol: SRC=10.0.0.1/8: host bits set after the prefix length (write the network address, e.g. 10.0.0.0/8)" },
        { "proxy_protocol", "10.0.0.0/8,balancer",
          "proxy_protocol: SRC=10.0.0.0/8,balancer: item \"balancer\": not an IP address or CIDR (use 10.0.0.0/8, fd00::/8, 192.0.2.7)" },
        { "proxy_protocol", "[::1]", "proxy_protocol: SRC=[::1]: not an IP address or CIDR (use 10.0.0.0/8, fd00::/8, 192.0.2.7)" },
        { "path", "ws", "path: SRC=ws: must start with /" },
        { "path", "/a b", "path: SRC=/a b: only printable ASCII without spaces, ? or # in a path" },
        { "client_js_path", "x.js", "client_js_path: SRC=x.js: must start with /" },
        { "id_header", "X Id", "id_header: SRC=X Id: not an HTTP token (letters, digits, !#$%&'*+-.^_`|~)" },
        { "subprotocols", "chat,", "subprotocols: SRC=chat,: empty item in a comma-separated list" },
        { "allowed_origins", "example.com", "allowed_origins: SRC=example.com: not an origin (use https://host[:port], https://*.example.com or *)" },
        { "allowed_origins", "https://example.com/",
          "allowed_origins: SRC=https://example.com/: an origin has no path, not even a trailing / (https://example.com)" },
        { "redis_prefix", "a b", "redis_prefix: SRC=a b: only letters, digits and _ . - are allowed" },
        { "redis_prefix", "app:room:x", "redis_prefix: SRC=app:room:x: only letters, digits and _ . - are allowed" },
        { "redis_prefix", "", "redis_prefix: SRC=: must not be empty" },
        { "redis_url", "redis://h:99999", "redis_url: SRC=redis://h:99999: port must be a number 1..65535" },
        { "static_dir", "a\tb", "static_dir: SRC=a\\x09b: control character in value" },
        { "join_rooms", "a, ,b", "join_rooms: SRC=a, ,b: empty item in a comma-separated list" },
    };
    wsgw_config_t c;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        wsgw_config_init(&c);
        int rc = wsgw_config_set(&c, cases[i].key, cases[i].value, "SRC", err, sizeof err);
        char *before = NULL;
        if (rc == -1) {
            /* a refused value leaves the old one */
            wsgw_config_t d;
            wsgw_config_init(&d);
            char *a = dump_str(&c), *b = dump_str(&d);
            before = strcmp(a, b) == 0 ? NULL : "changed";
            free(a);
            free(b);
            wsgw_config_free(&d);
        }
        wsgw_config_free(&c);
        CHECK_MSG(rc == -1, "%s=%s accepted", cases[i].key, cases[i].value);
        CHECK_STR(err, cases[i].msg);
        CHECK_MSG(before == NULL, "%s=%s changed the config", cases[i].key, cases[i].value);
    }
}

static void test_set_values(void)
{
    wsgw_config_t c;
    wsgw_config_init(&c);
    CHECK_INT(wsgw_config_set(&c, "max-message-size", "1m", NULL, err, sizeof err), 0);
    CHECK_INT(c.max_message_size, 1 << 20);
    CHECK_INT(wsgw_config_set(&c, "WORKERS", "auto", NULL, err, sizeof err), 0);
    CHECK_INT(c.workers, 0);
    CHECK_INT(wsgw_config_set(&c, "emit_targets", "room, conn", NULL, err, sizeof err), 0);
    CHECK_INT(c.emit_targets, WSGW_EMIT_ROOM | WSGW_EMIT_CONN);
    CHECK_INT(wsgw_config_set(&c, "emit_targets", "all", NULL, err, sizeof err), 0);
    CHECK_INT(c.emit_targets, WSGW_EMIT_ROOM | WSGW_EMIT_CONN | WSGW_EMIT_ALL);
    CHECK_INT(wsgw_config_set(&c, "join_rooms", "", NULL, err, sizeof err), 0);
    CHECK_INT(c.join_rooms.n, 0);
    CHECK(c.join_rooms.v == NULL);
    CHECK_INT(wsgw_config_set(&c, "log_level", "WARN", NULL, err, sizeof err), 0);
    CHECK_INT(c.log_level, WSGW_LOG_WARN);
    CHECK_INT(wsgw_config_set(&c, "read_timeout", "0", NULL, err, sizeof err), 0);
    CHECK_INT(wsgw_config_set(&c, "redis_url", "redis://u:pw@redis:6379/1", NULL, err, sizeof err), 0);
    CHECK_STR(c.redis_url, "redis://u:pw@redis:6379/1");
    /* a scalar twice in one layer is refused, with the key named */
    CHECK_INT(wsgw_config_set(&c, "log_level", "info", NULL, err, sizeof err), -1);
    CHECK_STR(err, "log_level: log_level=info: set twice (only list keys repeat)");
    CHECK_INT(c.log_level, WSGW_LOG_WARN);
    CHECK_INT(wsgw_config_set(&c, "no_such_key", "1", "SRC", err, sizeof err), -1);
    CHECK_STR(err, "SRC: unknown key \"no_such_key\" (see --help)");
    /* list limits */
    char big[257 * 3 + 1];
    size_t o = 0;
    for (int i = 0; i < 257; i++) { big[o++] = 'r'; big[o++] = (char)('a' + i % 26); big[o++] = ','; }
    big[o - 1] = '\0';
    CHECK_INT(wsgw_config_set(&c, "join_rooms", big, NULL, err, sizeof err), -1);
    CHECK_HAS(err, "too many items (at most 256)");
    wsgw_config_free(&c);
}

/* ---- layers --------------------------------------------------------------- */

static void test_precedence(void)
{
    char path[64], flagcfg[80];
    CHECK(write_tmp("# file layer\n"
                    "path = /file\n"
                    "max_message_size = 512KiB\n"
                    "log_level = warn\n"
                    "ping_period = 10s\n"
                    "listen = :9000\n"
                    "subprotocols = a\n"
                    "subprotocols = b, c\n", path) == 0);
    snprintf(flagcfg, sizeof flagcfg, "--config=%s", path);
    char *envp[] = { "HOME=/root", "WSGW_MAX_MESSAGE_SIZE=768KiB", "WSGW_LOG_LEVEL=error",
                     "WSGW_LISTEN=:9001, [::1]:9002", NULL };
    char *argv[] = { "wsgw", flagcfg, "--log-level", "debug", NULL };
    wsgw_config_t c;
    wsgw_config_init(&c);
    int rc = wsgw_config_load(&c, ARGC(argv), argv, envp, err, sizeof err);
    unlink(path);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK_STR(c.config_path, path);
    CHECK_STR(c.path, "/file");                       /* file over default */
    CHECK_INT(c.ping_period_ms, 10000);
    CHECK_INT(c.max_message_size, 768 << 10);         /* env over file */
    CHECK_INT(c.log_level, WSGW_LOG_DEBUG);           /* flag over env */
    CHECK_INT(c.handshake_timeout_ms, 10000);         /* default */
    CHECK_INT(c.listen.n, 2);                          /* env list replaces file list */
    CHECK_STR(c.listen.v[0], ":9001");
    CHECK_STR(c.listen.v[1], "[::1]:9002");
    CHECK_INT(c.subprotocols.n, 3);                    /* repeated file lines add up */
    CHECK_STR(c.subprotocols.v[2], "c");
    wsgw_config_free(&c);

    /* WSGW_CONFIG names the file when no --config is given; flags replace lists */
    CHECK(write_tmp("listen = :9000\nstatic_dir = /srv\n", path) == 0);
    char envcfg[80];
    snprintf(envcfg, sizeof envcfg, "WSGW_CONFIG=%s", path);
    char *envp2[] = { envcfg, NULL };
    char *argv2[] = { "wsgw", "--listen", ":9003", NULL };
    wsgw_config_init(&c);
    rc = wsgw_config_load(&c, ARGC(argv2), argv2, envp2, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK_STR(c.static_dir, "/srv");
    CHECK_INT(c.listen.n, 1);
    CHECK_STR(c.listen.v[0], ":9003");
    wsgw_config_free(&c);

    /* --config beats WSGW_CONFIG */
    char *envp3[] = { "WSGW_CONFIG=/nonexistent/wsgw.conf", NULL };
    snprintf(flagcfg, sizeof flagcfg, "--config=%s", path);
    char *argv3[] = { "wsgw", flagcfg, NULL };
    wsgw_config_init(&c);
    rc = wsgw_config_load(&c, ARGC(argv3), argv3, envp3, err, sizeof err);
    unlink(path);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK_STR(c.static_dir, "/srv");
    wsgw_config_free(&c);
}

static void test_env_layer(void)
{
    wsgw_config_t c;
    char *e1[] = { "WSGW_MAX_MESSAGE_SIZE=12x", NULL };
    wsgw_config_init(&c);
    CHECK_INT(wsgw_config_load(&c, 0, NULL, e1, err, sizeof err), -1);
    CHECK_STR(err, "max_message_size: WSGW_MAX_MESSAGE_SIZE=12x: not a size (use 1024, 64KiB, 1MiB)");
    wsgw_config_free(&c);

    char *e2[] = { "WSGW_ALLOWED_ORIGINS=https://a.example, http://localhost:3000",
                   "WSGW_ENABLE_COMPRESSION=yes", "WSGW_TLS_LISTEN=", NULL };
    wsgw_config_init(&c);
    CHECK_INT(wsgw_config_load(&c, 0, NULL, e2, err, sizeof err), 0);
    CHECK_INT(c.allowed_origins.n, 2);
    CHECK_STR(c.allowed_origins.v[0], "https://a.example");
    CHECK_STR(c.allowed_origins.v[1], "http://localhost:3000");
    CHECK(c.enable_compression);
    wsgw_config_free(&c);

    char *e3[] = { "WSGW_MAX_MESAGE_SIZE=1k", NULL };
    wsgw_config_init(&c);
    CHECK_INT(wsgw_config_load(&c, 0, NULL, e3, err, sizeof err), -1);
    CHECK_STR(err, "unknown environment variable WSGW_MAX_MESAGE_SIZE (no such key; see --help)");
    wsgw_config_free(&c);

    char *e4[] = { "WSGW_CONFIG=", NULL };
    wsgw_config_init(&c);
    CHECK_INT(wsgw_config_load(&c, 0, NULL, e4, err, sizeof err), -1);
    CHECK_STR(err, "WSGW_CONFIG: empty file name");
    wsgw_config_free(&c);

    char *e5[] = { "WSGW_HANDSHAKE_TIMEOUT=10", NULL };
    wsgw_config_init(&c);
    CHECK_INT(wsgw_config_load(&c, 0, NULL, e5, err, sizeof err), -1);
    CHECK_STR(err, "handshake_timeout: WSGW_HANDSHAKE_TIMEOUT=10: a unit is required (write 54s, 500ms, 2m or 1h)");
    wsgw_config_free(&c);
}

static void test_flags(void)
{
    wsgw_config_t c;
    char *a1[] = { "wsgw", "--listen", ":1", "--listen=[::1]:2", "--listen", "127.0.0.1:3",
                   "--max_message_size", "1k", "--enable-compression", "--binary-messages", "off",
                   "--Compression-Level=9", "--allowed-origins", "*", NULL };
    wsgw_config_init(&c);
    CHECK_INT(wsgw_config_load(&c, ARGC(a1), a1, NULL, err, sizeof err), 0);
    CHECK_INT(c.listen.n, 3);
    CHECK_STR(c.listen.v[0], ":1");
    CHECK_STR(c.listen.v[1], "[::1]:2");
    CHECK_STR(c.listen.v[2], "127.0.0.1:3");
    CHECK(c.listen.v[3] == NULL);
    CHECK_INT(c.max_message_size, 1024);
    CHECK(c.enable_compression);
    CHECK(!c.binary_messages);
    CHECK_INT(c.compression_level, 9);
    CHECK_STR(c.allowed_origins.v[0], "*");
    /* IPv6 listen addresses parse back to host and port */
    char host[64];
    int port;
    const char *why;
    CHECK_INT(wsgw_parse_hostport(c.listen.v[1], host, sizeof host, &port, &why), 0);
    CHECK_STR(host, "::1");
    CHECK_INT(port, 2);
    wsgw_config_free(&c);

    static const struct { const char *a, *b, *msg; } bad[] = {
        { "--bogus", "1", "unknown flag --bogus (see --help)" },
        { "--max-mesage-size=1k", NULL, "unknown flag --max-mesage-size (see --help)" },
        { "listen", NULL, "unexpected argument \"listen\" (flags are --key value; see --help)" },
        { "-l", ":1", "unexpected argument \"-l\" (flags are --key value; see --help)" },
        { "--", NULL, "unexpected argument \"--\" (flags are --key value; see --help)" },
        { "--path", NULL, "--path needs a value" },
        { "--path", "--listen", "--path needs a value" },
        { "--help=1", NULL, "--help takes no value" },
        { "--max-message-size", "12x",
          "max_message_size: --max-message-size=12x: not a size (use 1024, 64KiB, 1MiB)" },
        { "--enable-compression=maybe", NULL,
          "enable_compression: --enable-compression=maybe: not a bool (use true/false, yes/no, on/off, 1/0)" },
        { "--enable-compression", "maybe",
          "enable_compression: --enable-compression=maybe: not a bool (use true/false, yes/no, on/off, 1/0)" },
        { "--config", "/nonexistent/dir/wsgw.conf",
          "config file /nonexistent/dir/wsgw.conf: No such file or directory" },
        { "--config=", NULL, "--config: empty file name" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *argv[] = { "wsgw", (char *)bad[i].a, (char *)bad[i].b, NULL };
        wsgw_config_init(&c);
        int rc = wsgw_config_load(&c, bad[i].b ? 3 : 2, argv, NULL, err, sizeof err);
        wsgw_config_free(&c);
        CHECK_MSG(rc == -1, "%s accepted", bad[i].a);
        CHECK_STR(err, bad[i].msg);
    }
    char *twice[] = { "wsgw", "--path", "/a", "--path=/b", NULL };
    wsgw_config_init(&c);
    CHECK_INT(wsgw_config_load(&c, ARGC(twice), twice, NULL, err, sizeof err), -1);
    CHECK_STR(err, "path: --path=/b: flag given twice (only list keys repeat)");
    wsgw_config_free(&c);
    char *cfg2[] = { "wsgw", "--config", "/a", "--config", "/b", NULL };
    wsgw_config_init(&c);
    CHECK_INT(wsgw_config_load(&c, ARGC(cfg2), cfg2, NULL, err, sizeof err), -1);
    CHECK_STR(err, "--config given twice");
    wsgw_config_free(&c);
}

static void test_help_version_return_1(void)
{
    char *h[] = { "wsgw", "--listen", "localhost", "--help", NULL };  /* help wins over bad values */
    char *h2[] = { "wsgw", "-h", NULL };
    char *v[] = { "wsgw", "--version", NULL };
    wsgw_config_t c;
    fflush(stdout);
    int saved = dup(1), null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    close(null);
    wsgw_config_init(&c);
    int r1 = wsgw_config_load(&c, ARGC(h), h, NULL, err, sizeof err);
    wsgw_config_free(&c);
    wsgw_config_init(&c);
    int r2 = wsgw_config_load(&c, ARGC(h2), h2, NULL, err, sizeof err);
    wsgw_config_free(&c);
    wsgw_config_init(&c);
    int r3 = wsgw_config_load(&c, ARGC(v), v, NULL, err, sizeof err);
    wsgw_config_free(&c);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    CHECK_INT(r1, 1);
    CHECK_INT(r2, 1);
    CHECK_INT(r3, 1);
}

/* ---- file syntax ------------------------------------------------------------ */

static void test_file_syntax(void)
{
    wsgw_config_t c;
    wsgw_config_init(&c);
    int rc = load_str(&c,
        "\xEF\xBB\xBF# comment\r\n"
        "\r\n"
        "   \t\n"
        "  path=/x   # trailing comment\r\n"
        "static_dir = \"/srv/my dir # 1\"   # comment after quotes\n"
        "tls_key = \"a \\\"q\\\" \\\\ b\"\n"
        "tls_cert=\"\"\n"
        "listen = \":1, [::1]:2\"\n"
        "listen = :3\n"
        "Log-Level = debug\n"
        "allowed_origins =\n"
        "redis_url = redis://u:p#w@h    # '#' needs quotes\n");
    CHECK_MSG(rc == -1, "redis url with # accepted");
    CHECK_STR(err, "redis_url: t.conf:12: redis_url=redis://u:p: port must be a number 1..65535");
    CHECK_STR(c.path, "/x");
    CHECK_STR(c.static_dir, "/srv/my dir # 1");
    CHECK_STR(c.tls_key, "a \"q\" \\ b");
    CHECK_STR(c.tls_cert, "");
    CHECK_INT(c.listen.n, 3);
    CHECK_STR(c.listen.v[1], "[::1]:2");
    CHECK_STR(c.listen.v[2], ":3");
    CHECK_INT(c.log_level, WSGW_LOG_DEBUG);
    CHECK_INT(c.allowed_origins.n, 0);
    wsgw_config_free(&c);

    static const struct { const char *text, *msg; } bad[] = {
        { "path = /a\nbogus = 1\n", "t.conf:2: unknown key \"bogus\" (see --help)" },
        { "path /a\n", "t.conf:1: expected 'key = value'" },
        { "= /a\n", "t.conf:1: expected 'key = value'" },
        { "pa th = /a\n", "t.conf:1: expected 'key = value'" },
        { "[section]\n", "t.conf:1: expected 'key = value'" },
        { "\n\npath = \"/a\n", "t.conf:3: path: unterminated quoted value" },
        { "path = \"/a\\n\"\n", "t.conf:1: path: unknown escape in quoted value (only \\\" and \\\\)" },
        { "path = \"/a\" x\n", "t.conf:1: path: text after the closing quote" },
        { "path = /a\npath = /b\n", "path: t.conf:2: path=/b: set twice in this file (only list keys repeat)" },
        { "max_message_size = 12x\n",
          "max_message_size: t.conf:1: max_message_size=12x: not a size (use 1024, 64KiB, 1MiB)" },
        { "ping_period = 54\n",
          "ping_period: t.conf:1: ping_period=54: a unit is required (write 54s, 500ms, 2m or 1h)" },
        { "path = \"/a\tb\"\n", "path: t.conf:1: path=/a\\x09b: control character in value" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        wsgw_config_init(&c);
        rc = load_str(&c, bad[i].text);
        wsgw_config_free(&c);
        CHECK_MSG(rc == -1, "%s accepted", bad[i].text);
        CHECK_STR(err, bad[i].msg);
    }
    /* NUL byte inside a line */
    wsgw_config_init(&c);
    rc = wsgw_config_load_text(&c, "path = /a\0b\n", 12, "t.conf", err, sizeof err);
    wsgw_config_free(&c);
    CHECK_INT(rc, -1);
    CHECK_STR(err, "t.conf:1: NUL byte in line");
    /* text without a final newline, and no name */
    wsgw_config_init(&c);
    rc = wsgw_config_load_text(&c, "path = /a\nbogus", 15, NULL, err, sizeof err);
    wsgw_config_free(&c);
    CHECK_INT(rc, -1);
    CHECK_STR(err, "<text>:2: expected 'key = value'");
}

static void test_file_unknown_key_path(void)
{
    char path[64], expect[160];
    CHECK(write_tmp("# ok\npath = /ws\n\nmax_mesage_size = 1k\n", path) == 0);
    char *argv[] = { "wsgw", "--config", path, NULL };
    wsgw_config_t c;
    wsgw_config_init(&c);
    int rc = wsgw_config_load(&c, ARGC(argv), argv, NULL, err, sizeof err);
    wsgw_config_free(&c);
    unlink(path);
    CHECK_INT(rc, -1);
    snprintf(expect, sizeof expect, "%s:4: unknown key \"max_mesage_size\" (see --help)", path);
    CHECK_STR(err, expect);
    /* a directory is not a config file */
    wsgw_config_init(&c);
    rc = wsgw_config_load_file(&c, "/tmp", err, sizeof err);
    wsgw_config_free(&c);
    CHECK_INT(rc, -1);
    CHECK_STR(err, "config file /tmp: Is a directory");
}

/* ---- cross-field validation ------------------------------------------------- */

/* A connection keeps the chosen subprotocol as a one-byte index. */
static void test_validate_subprotocol_count(void)
{
    char text[600] = "subprotocols = p0";
    for (int i = 1; i < 33; i++) snprintf(text + strlen(text), sizeof text - strlen(text), ",p%d", i);
    strcat(text, "\n");
    wsgw_config_t c;
    wsgw_config_init(&c);
    CHECK_MSG(load_str(&c, text) == 0, "%s", err);
    CHECK_INT(wsgw_config_validate(&c, err, sizeof err), -1);
    CHECK_MSG(strstr(err, "lists 33 subprotocols; at most 32 are allowed") != NULL, "%s", err);
    wsgw_config_free(&c);
    wsgw_config_init(&c);
    CHECK_MSG(load_str(&c, "subprotocols = a,b,c\n") == 0, "%s", err);
    CHECK_INT(wsgw_config_validate(&c, err, sizeof err), 0);
    wsgw_config_free(&c);
}

static void test_validate(void)
{
    static const struct { const char *text, *msg; } cases[] = {
        { "listen =\n",
          "no address to listen on: listen=\"\" (file) and tls_listen=\"\" (default) are both empty" },
        { "listen = :80, 0.0.0.0:81\nlisten = :80\n", "listen: address :80 is given twice (also in listen)" },
        { "listen = [::1]:80\ntls_listen = [::1]:80\ntls_cert = c\ntls_key = k\n",
          "listen: address [::1]:80 is given twice (also in tls_listen)" },
        { "listen = LocalHost:80,localhost:80\n",
          "listen: address LocalHost:80 is given twice (also in listen)" },
        { "tls_cert = /c.pem\n", "tls_cert and tls_key go together: tls_cert=/c.pem (file) but tls_key=\"\" (default)" },
        { "tls_key = /k.pem\n", "tls_cert and tls_key go together: tls_cert=\"\" (default) but tls_key=/k.pem (file)" },
        { "tls_listen = :443\n", "tls_listen=:443 (file) needs tls_cert and tls_key" },
        { "tls_cert = c\ntls_key = k\n", "tls_cert=c (file) is set but tls_listen is empty: no address would use it" },
        { "ping_period = 60s\n",
          "ping_period=1m (file) must be less than pong_timeout=1m (default), or a late pong closes live clients" },
        { "ping_period = 0\n",
          "pong_timeout=1m (default) needs pings but ping_period=0 (file); set pong_timeout=0 to turn liveness checks off" },
        { "read_timeout = 30s\n",
          "read_timeout=30s (file) must be greater than ping_period=54s (default), or idle live clients time out between pings" },
        { "id_generator = header\nid_header =\n",
          "id_generator=header (file) needs a header name but id_header=\"\" (file)" },
        { "client_js_path = /ws\n", "client_js_path=/ws (file) and path=/ws (default) are the same URL" },
        { "max_connections = 100\n",
          "max_pending_handshakes=1024 (default) must not exceed max_connections=100 (file)" },
        { "max_message_size = 2MiB\n",
          "max_queued_bytes=1MiB (default) must be at least max_message_size=2MiB (file), or one large message makes a slow consumer" },
        { "iris_rooms = a, b, c\nmax_rooms_per_conn = 2\n",
          "iris_rooms=a,b,c (file) lists more rooms than max_rooms_per_conn=2 (file): every Iris client would be "
          "refused the rest at open, spending its error budget" },
        { "allowed_origins = https://a.example, *\n",
          "allowed_origins=https://a.example,* (file): * allows every origin, so it must be the only item" },
    };
    wsgw_config_t c;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        wsgw_config_init(&c);
        int rc = load_str(&c, cases[i].text);
        CHECK_MSG(rc == 0, "%s", err);
        rc = wsgw_config_validate(&c, err, sizeof err);
        wsgw_config_free(&c);
        CHECK_MSG(rc == -1, "%s accepted", cases[i].text);
        CHECK_STR(err, cases[i].msg);
    }
    static const char *ok[] = {
        "listen =\ntls_listen = :443\ntls_cert = c\ntls_key = k\n",
        "ping_period = 0\npong_timeout = 0\n",
        "ping_period = 0\npong_timeout = 0\nread_timeout = 1s\n",
        "read_timeout = 55s\n",
        "id_generator = header\n",
        "client_js_path =\npath = /wsgw.js\n",
        "allowed_origins = *\n",
        "max_queued_bytes = 64KiB\n",
        "iris_rooms = a, b\nmax_rooms_per_conn = 2\n",
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        wsgw_config_init(&c);
        int rc = load_str(&c, ok[i]);
        if (rc == 0) rc = wsgw_config_validate(&c, err, sizeof err);
        wsgw_config_free(&c);
        CHECK_MSG(rc == 0, "%s: %s", ok[i], err);
    }
    /* wsgw_config_load runs the checks, naming the layer */
    char *argv[] = { "wsgw", "--ping-period=2m", NULL };
    char *envp[] = { "WSGW_PONG_TIMEOUT=90s", NULL };
    wsgw_config_init(&c);
    int rc = wsgw_config_load(&c, ARGC(argv), argv, envp, err, sizeof err);
    wsgw_config_free(&c);
    CHECK_INT(rc, -1);
    CHECK_STR(err, "ping_period=2m (flag) must be less than pong_timeout=90s (environment), or a late pong closes live clients");
}

/* ---- help, dump, the example file ------------------------------------------- */

static void test_help_lists_every_key(void)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    wsgw_config_usage(f);
    fclose(f);
    size_t keys = 0;
    for (const char *k; (k = wsgw_config_key(keys)); keys++) {
        char flag[80];
        size_t j = 0;
        flag[j++] = '-'; flag[j++] = '-';
        for (; *k; k++) flag[j++] = *k == '_' ? '-' : *k;
        flag[j++] = ' ';
        flag[j] = '\0';
        CHECK_HAS(s, flag);
    }
    CHECK_INT(keys, 70);
    CHECK_HAS(s, "--listen HOST:PORT\n");
    CHECK_HAS(s, "size 16..256MiB; default: 64KiB");
    CHECK_HAS(s, "duration 100ms..1h, 0 = off; default: 54s");
    CHECK_HAS(s, "enum debug|info|warn|error; default: info");
    CHECK_HAS(s, "int 1..256 or auto; default: 1");
    CHECK_HAS(s, "--config FILE");
    CHECK_HAS(s, "WSGW_KEY");
    free(s);
}

static void test_dump_round_trip(void)
{
    wsgw_config_t a, b;
    wsgw_config_init(&a);
    int rc = load_str(&a,
        "listen = :1, [::1]:2\n"
        "static_dir = \" spaced # dir \\\\ \\\"q\\\"\"\n"
        "tls_cert = c\ntls_key = k\ntls_listen = 127.0.0.1:443\n"
        "ping_period = 1m30s\npong_timeout = 1h\nread_timeout = 1500ms\n"
        "max_message_size = 1000\nmax_queued_bytes = 3GiB\n"
        "emit_targets = conn, room\n"
        "join_rooms = \"lobby, game-#*\"\n"
        "workers = auto\nid_generator = header\n"
        "redis_url = redis://user:s3cret@cache:6380/3\n");
    CHECK_MSG(rc == 0, "%s", err);
    char *d1 = dump_str(&a);
    CHECK_HAS(d1, "\nstatic_dir=\" spaced # dir \\\\ \\\"q\\\"\"\n");
    CHECK_HAS(d1, "\nping_period=90s\n");
    CHECK_HAS(d1, "\npong_timeout=1h\n");
    CHECK_HAS(d1, "\nread_timeout=1500ms\n");
    CHECK_HAS(d1, "\nmax_queued_bytes=3GiB\n");
    CHECK_HAS(d1, "\nmax_message_size=1000\n");
    CHECK_HAS(d1, "\nemit_targets=room,conn\n");
    CHECK_HAS(d1, "\njoin_rooms=\"lobby,game-#*\"\n");
    CHECK_HAS(d1, "\nworkers=auto\n");
    CHECK_HAS(d1, "\nredis_url=redis://user:***@cache:6380/3\n");
    CHECK(!strstr(d1, "s3cret"));
    CHECK(strncmp(d1, "listen=:1,[::1]:2\n", 18) == 0);
    wsgw_config_init(&b);
    rc = load_str(&b, d1);
    char *d2 = dump_str(&b);
    wsgw_config_free(&a);
    wsgw_config_free(&b);
    int same = strcmp(d1, d2) == 0;
    free(d1);
    free(d2);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(same);
}

static void test_deploy_example(void)
{
    FILE *f = fopen("deploy/wsgw.conf", "rb");
    CHECK_MSG(f != NULL, "run from the repository root");
    char *text = NULL, line[512];
    size_t tn = 0;
    FILE *un = open_memstream(&text, &tn);
    while (fgets(line, sizeof line, f))  /* "#key = value" lines show defaults */
        if (line[0] == '#' && line[1] >= 'a' && line[1] <= 'z') fputs(line + 1, un);
    fclose(f);
    fclose(un);
    for (size_t i = 0; wsgw_config_key(i); i++) {
        char want[80];
        snprintf(want, sizeof want, "\n%s =", wsgw_config_key(i));
        CHECK_MSG(strncmp(text, want + 1, strlen(want + 1)) == 0 || strstr(text, want),
                  "#%s missing in deploy/wsgw.conf", want + 1);
    }
    wsgw_config_t a, b;
    wsgw_config_init(&a);
    wsgw_config_init(&b);
    int rc = load_str(&a, text);
    char *da = dump_str(&a), *db = dump_str(&b);
    int same = strcmp(da, db) == 0;
    free(da);
    free(db);
    free(text);
    wsgw_config_free(&a);
    wsgw_config_free(&b);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK_MSG(same, "defaults shown in deploy/wsgw.conf differ from the table");
    /* the file as shipped loads */
    wsgw_config_init(&a);
    rc = wsgw_config_load_file(&a, "deploy/wsgw.conf", err, sizeof err);
    if (rc == 0) rc = wsgw_config_validate(&a, err, sizeof err);
    wsgw_config_free(&a);
    CHECK_MSG(rc == 0, "%s", err);
}

static void test_dump_masks_secrets(void)
{
    wsgw_config_t c;
    char why[256];
    wsgw_config_init(&c);
    CHECK_INT(wsgw_config_set(&c, "auth_hs256_secret", "topsecret", NULL, why, sizeof why), 0);
    CHECK_INT(wsgw_config_set(&c, "redis_url", "redis://u:pw@127.0.0.1:6379", NULL, why, sizeof why), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    wsgw_config_dump(&c, f);
    fclose(f);
    CHECK(strstr(buf, "auth_hs256_secret=***\n") != NULL);
    CHECK(strstr(buf, "topsecret") == NULL);
    CHECK(strstr(buf, "pw@") == NULL);
    free(buf);
    wsgw_config_free(&c);
}

int main(void)
{
    RUN(test_dump_masks_secrets);
    RUN(test_defaults);
    RUN(test_parse_bool);
    RUN(test_parse_size);
    RUN(test_parse_duration);
    RUN(test_parse_hostport);
    RUN(test_parse_redis_url);
    RUN(test_set_errors);
    RUN(test_set_values);
    RUN(test_precedence);
    RUN(test_env_layer);
    RUN(test_flags);
    RUN(test_help_version_return_1);
    RUN(test_file_syntax);
    RUN(test_file_unknown_key_path);
    RUN(test_validate);
    RUN(test_validate_subprotocol_count);
    RUN(test_help_lists_every_key);
    RUN(test_dump_round_trip);
    RUN(test_deploy_example);
    return test_report("config");
}
