/* config_load.c — the layers: config-file text, the file, the environment
 * and the command line, and wsgw_config_load() that runs them in order. */
#include "config_private.h"
#include "ws_alloc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MAX_FILE (1u << 20)

static int is_key_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

static int at_line(char *err, size_t errlen, const char *name, unsigned line, const char *what)
{
    snprintf(err, errlen, "%s:%u: %s", name, line, what);
    return -1;
}

/* Unquotes a "..." value starting at s[0] == '"' within s[0..n): writes it
 * to out (room for n bytes) and returns 0, or returns -1 with *why set. */
static int unquote(const char *s, size_t n, char *out, const char **why)
{
    size_t i = 1, o = 0;
    for (;; i++) {
        if (i >= n) { *why = "unterminated quoted value"; return -1; }
        if (s[i] == '"') break;
        if (s[i] == '\\') {
            if (i + 1 >= n || (s[i + 1] != '"' && s[i + 1] != '\\')) {
                *why = "unknown escape in quoted value (only \\\" and \\\\)";
                return -1;
            }
            i++;
        }
        out[o++] = s[i];
    }
    out[o] = '\0';
    for (i++; i < n && (s[i] == ' ' || s[i] == '\t'); i++) {}
    if (i < n && s[i] != '#') { *why = "text after the closing quote"; return -1; }
    return 0;
}

/* One line ls[0..n) without its line end. */
static int parse_line(wsgw_config_t *cfg, const char *ls, size_t n, const char *name,
                      unsigned line, char *err, size_t errlen)
{
    size_t i = 0;
    while (i < n && (ls[i] == ' ' || ls[i] == '\t')) i++;
    if (i == n || ls[i] == '#') return 0;
    if (memchr(ls, '\0', n)) return at_line(err, errlen, name, line, "NUL byte in line");

    size_t ks = i;
    while (i < n && is_key_char((unsigned char)ls[i])) i++;
    size_t kn = i - ks;
    while (i < n && (ls[i] == ' ' || ls[i] == '\t')) i++;
    if (kn == 0 || i == n || ls[i] != '=')
        return at_line(err, errlen, name, line, "expected 'key = value'");
    char key[80];
    snprintf(key, sizeof key, "%.*s", (int)(kn < 64 ? kn : 64), ls + ks);
    const wsgw_key_t *k = wsgw_key_find(ls + ks, kn);
    if (!k) {
        snprintf(err, errlen, "%s:%u: unknown key \"%s\" (see --help)", name, line, key);
        return -1;
    }

    for (i++; i < n && (ls[i] == ' ' || ls[i] == '\t'); i++) {}
    char *value = ws_xmalloc(n - i + 1);
    if (i < n && ls[i] == '"') {
        const char *why;
        if (unquote(ls + i, n - i, value, &why) != 0) {
            ws_xfree(value);
            snprintf(err, errlen, "%s:%u: %s: %s", name, line, k->key, why);
            return -1;
        }
    } else {
        const char *hash = memchr(ls + i, '#', n - i);
        size_t end = hash ? (size_t)(hash - ls) : n;
        while (end > i && (ls[end - 1] == ' ' || ls[end - 1] == '\t')) end--;
        memcpy(value, ls + i, end - i);
        value[end - i] = '\0';
    }
    char label[512];
    snprintf(label, sizeof label, "%s:%u: %s", name, line, key);
    int rc = wsgw_config_set_key(cfg, k, value, label, err, errlen);
    ws_xfree(value);
    return rc;
}

int wsgw_config_load_text(wsgw_config_t *cfg, const char *text, size_t len,
                          const char *name, char *err, size_t errlen)
{
    size_t pos = 0;
    unsigned line = 0;
    int rc = 0;
    if (!name) name = "<text>";
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) pos = 3;
    wsgw_config_begin_layer(cfg, WSGW_FROM_FILE);
    while (pos < len && rc == 0) {
        const char *ls = text + pos;
        const char *nl = memchr(ls, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - ls) : len - pos;
        pos += n + (nl != NULL);
        line++;
        if (n && ls[n - 1] == '\r') n--;
        rc = parse_line(cfg, ls, n, name, line, err, errlen);
    }
    wsgw_config_begin_layer(cfg, WSGW_FROM_SET);
    return rc;
}

int wsgw_config_load_file(wsgw_config_t *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "config file %s: %s", path, strerror(errno));
        return -1;
    }
    ws_buf_t b = { 0 };
    size_t got;
    do {
        got = fread(ws_buf_reserve(&b, 8192), 1, 8192, f);
        b.len += got;
    } while (got > 0 && b.len <= MAX_FILE);
    int bad = ferror(f), saved = errno;
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "config file %s: %s", path, strerror(saved));
        ws_buf_free(&b);
        return -1;
    }
    if (b.len > MAX_FILE) {
        snprintf(err, errlen, "config file %s: larger than 1 MiB", path);
        ws_buf_free(&b);
        return -1;
    }
    int rc = wsgw_config_load_text(cfg, (const char *)b.data, b.len, path, err, errlen);
    ws_buf_free(&b);
    if (rc == 0) {
        ws_xfree(cfg->config_path);
        cfg->config_path = ws_xstrndup(path, strlen(path));
    }
    return rc;
}

static int load_env(wsgw_config_t *cfg, char **envp, char *err, size_t errlen)
{
    wsgw_config_begin_layer(cfg, WSGW_FROM_ENV);
    for (char **e = envp; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (strncmp(*e, "WSGW_", 5) != 0 || !eq) continue;
        size_t nn = (size_t)(eq - *e);
        if (nn == 11 && strncmp(*e, "WSGW_CONFIG", 11) == 0) continue;
        char label[80];
        snprintf(label, sizeof label, "%.*s", (int)(nn < 64 ? nn : 64), *e);
        const wsgw_key_t *k = wsgw_key_find(*e + 5, nn - 5);
        if (!k) {
            snprintf(err, errlen, "unknown environment variable %s (no such key; see --help)", label);
            return -1;
        }
        if (wsgw_config_set_key(cfg, k, eq + 1, label, err, errlen) != 0) return -1;
    }
    wsgw_config_begin_layer(cfg, WSGW_FROM_SET);
    return 0;
}

enum { FLAG_KEY, FLAG_HELP, FLAG_VERSION, FLAG_CONFIG };

typedef struct flag {
    int               kind;
    const wsgw_key_t *k;          /* FLAG_KEY */
    const char       *value;      /* FLAG_KEY, FLAG_CONFIG */
    char              label[80];  /* the flag as written, without =value */
} flag_t;

/* Reads the flag at argv[*i] and its value, advancing *i. */
static int next_flag(int argc, char **argv, int *i, flag_t *f, char *err, size_t errlen)
{
    const char *a = argv[(*i)++];
    memset(f, 0, sizeof *f);
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { f->kind = FLAG_HELP; return 0; }
    if (strcmp(a, "--version") == 0) { f->kind = FLAG_VERSION; return 0; }
    char shown[128];
    wsgw_fmt_shown(a, shown, sizeof shown);
    if (strncmp(a, "--", 2) != 0 || a[2] == '\0' || a[2] == '=') {
        snprintf(err, errlen, "unexpected argument \"%s\" (flags are --key value; see --help)", shown);
        return -1;
    }
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t nn = eq ? (size_t)(eq - name) : strlen(name);
    snprintf(f->label, sizeof f->label, "--%.*s", (int)(nn < 64 ? nn : 64), name);
    if (nn == 6 && strncmp(name, "config", 6) == 0) {
        f->kind = FLAG_CONFIG;
    } else if ((nn == 4 && strncmp(name, "help", 4) == 0) ||
               (nn == 7 && strncmp(name, "version", 7) == 0)) {
        snprintf(err, errlen, "%s takes no value", f->label);
        return -1;
    } else if (!(f->k = wsgw_key_find(name, nn))) {
        snprintf(err, errlen, "unknown flag %s (see --help)", f->label);
        return -1;
    }
    if (eq) {
        f->value = eq + 1;
    } else if (f->k && f->k->type == WSGW_K_BOOL) {
        /* --enable-compression alone means true; a following word that is
         * not a flag is its value (--enable-compression off). */
        f->value = *i < argc && argv[*i][0] != '-' ? argv[(*i)++] : "true";
    } else {
        if (*i >= argc || strncmp(argv[*i], "--", 2) == 0) {
            snprintf(err, errlen, "%s needs a value", f->label);
            return -1;
        }
        f->value = argv[(*i)++];
    }
    return 0;
}

int wsgw_config_load(wsgw_config_t *cfg, int argc, char **argv, char **envp,
                     char *err, size_t errlen)
{
    const char *file = NULL, *file_from = NULL;
    flag_t f;

    /* Pass 1: --help/--version win over everything; find the file. */
    for (int i = 1; i < argc;) {
        if (next_flag(argc, argv, &i, &f, err, errlen) != 0) return -1;
        if (f.kind == FLAG_HELP) { wsgw_config_usage(stdout); return 1; }
        if (f.kind == FLAG_VERSION) { printf("wsgw %s\n", WSGW_VERSION); return 1; }
        if (f.kind == FLAG_CONFIG) {
            if (file) { snprintf(err, errlen, "--config given twice"); return -1; }
            file = f.value;
            file_from = "--config";
        }
    }
    for (char **e = envp; !file && e && *e; e++)
        if (strncmp(*e, "WSGW_CONFIG=", 12) == 0) {
            file = *e + 12;
            file_from = "WSGW_CONFIG";
        }
    if (file && !*file) {
        snprintf(err, errlen, "%s: empty file name", file_from);
        return -1;
    }
    if (file && wsgw_config_load_file(cfg, file, err, errlen) != 0) return -1;
    if (envp && load_env(cfg, envp, err, errlen) != 0) return -1;

    /* Pass 2: the flags, as one layer. */
    wsgw_config_begin_layer(cfg, WSGW_FROM_FLAG);
    for (int i = 1; i < argc;) {
        if (next_flag(argc, argv, &i, &f, err, errlen) != 0) return -1;
        if (f.kind == FLAG_KEY && wsgw_config_set_key(cfg, f.k, f.value, f.label, err, errlen) != 0)
            return -1;
    }
    wsgw_config_begin_layer(cfg, WSGW_FROM_SET);
    return wsgw_config_validate(cfg, err, errlen);
}
