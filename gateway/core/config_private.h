/* config_private.h — the key table and the helpers shared by config.c,
 * config_load.c, config_validate.c and config_parse.c.  Not for other
 * modules: they read wsgw_config_t fields and call config.h. */
#ifndef WSGW_CONFIG_PRIVATE_H
#define WSGW_CONFIG_PRIVATE_H

#include "config.h"

typedef enum wsgw_ktype {
    WSGW_K_BOOL,   /* bool */
    WSGW_K_INT,    /* int, min..max */
    WSGW_K_SIZE,   /* uint64_t bytes, min..max */
    WSGW_K_DUR,    /* uint64_t ms, min..max (and 0 with WSGW_KF_ZERO_OFF) */
    WSGW_K_STR,    /* char *, checked by `check` */
    WSGW_K_LIST,   /* wsgw_strlist_t, each item checked by `check` */
    WSGW_K_ENUM,   /* int index into `names` */
    WSGW_K_SET     /* unsigned bit mask, bit i = names[i] */
} wsgw_ktype_t;

#define WSGW_KF_ZERO_OFF 1u  /* duration: 0 is allowed and means off */
#define WSGW_KF_AUTO     2u  /* int: "auto" is allowed and stored as 0 */
#define WSGW_KF_SECRET   4u  /* string is a URL whose password the dump masks */

/* Returns NULL when the item is fine, else a static reason. */
typedef const char *(*wsgw_check_fn)(const char *item);

typedef struct wsgw_key {
    const char          *key;     /* snake_case name */
    wsgw_ktype_t         type;
    size_t               off;     /* offsetof(wsgw_config_t, field) */
    const char          *def;     /* default, in the file syntax */
    uint64_t             min, max;
    unsigned             flags;   /* WSGW_KF_* */
    const char *const   *names;   /* ENUM/SET: NULL-terminated */
    wsgw_check_fn        check;   /* STR/LIST: per-value check, or NULL */
    const char          *meta;    /* metavariable in --help */
    const char          *help;    /* one line */
} wsgw_key_t;

extern const wsgw_key_t wsgw_keys[];
extern const size_t     wsgw_nkeys;

/* Where the value of a key came from, for messages. */
enum { WSGW_FROM_DEFAULT, WSGW_FROM_SET, WSGW_FROM_FILE, WSGW_FROM_ENV, WSGW_FROM_FLAG };
const char *wsgw_from_name(unsigned from);

/* Finds a key by name[0..len), ignoring case and treating '-' as '_'. */
const wsgw_key_t *wsgw_key_find(const char *name, size_t len);
/* Index of k in wsgw_keys. */
size_t wsgw_key_index(const wsgw_key_t *k);

/* Starts a new layer: the next set of each list replaces it, and a scalar may
 * be set once more.  `from` is a WSGW_FROM_*. */
void wsgw_config_begin_layer(wsgw_config_t *cfg, unsigned from);

/* wsgw_config_set() once the key is known; `label` is the source as the user
 * wrote it ("WSGW_PATH", "--path", "wsgw.conf:3: path"). */
int wsgw_config_set_key(wsgw_config_t *cfg, const wsgw_key_t *k, const char *value,
                        const char *label, char *err, size_t errlen);

/* Canonical text of one key's value, as the dump writes it (unquoted), into
 * buf[n]; wsgw_config_format_cap() is an n that always fits. */
size_t wsgw_config_format_cap(const wsgw_config_t *cfg, const wsgw_key_t *k);
void wsgw_config_format(const wsgw_config_t *cfg, const wsgw_key_t *k, char *buf, size_t n);

/* ---- config_parse.c: formatting and per-value checks ---- */
void wsgw_fmt_size(uint64_t bytes, char *buf, size_t n);
void wsgw_fmt_duration(uint64_t ms, char *buf, size_t n);
/* Copies s for an error message: non-printable bytes as \xNN, cut at ~60
 * characters with "...". */
void wsgw_fmt_shown(const char *s, char *buf, size_t n);
int  wsgw_parse_uint(const char *s, uint64_t max, uint64_t *out);

const char *wsgw_check_hostport(const char *s);
const char *wsgw_check_url_path(const char *s);      /* "/..." */
const char *wsgw_check_url_path_opt(const char *s);  /* "" or "/..." */
const char *wsgw_check_token_opt(const char *s);     /* "" or an RFC 9110 token */
const char *wsgw_check_token(const char *s);
const char *wsgw_check_origin(const char *s);        /* "*" or scheme://host[:port] */
const char *wsgw_check_glob(const char *s);
const char *wsgw_check_prefix(const char *s);
const char *wsgw_check_redis_url(const char *s);     /* "" or a valid URL */
const char *wsgw_check_room(const char *s);          /* a room name (envelope rules) */
const char *wsgw_check_iris_target(const char *s);   /* broadcast|all|room:<name>|backend */
const char *wsgw_check_path_opt(const char *s);      /* "" or a file path */
const char *wsgw_check_cidr(const char *s);          /* an IP address or ADDRESS/BITS */
const char *wsgw_check_tls_ciphers(const char *s);   /* an OpenSSL cipher list with a TLS 1.2 cipher */

#endif
