/* hooks.c — the seams of core.h: registering features, calling their hooks,
 * codecs, per-connection slots, memberships and deferred answers. */
#include <string.h>

#include "log.h"
#include "server_int.h"
#include "ws_status.h"

/* ---- registration ---------------------------------------------------------------- */

int core_register(wsgw_server_t *s, const core_hooks_t *h)
{
    if (s->n_hooks == CORE_HOOKS_MAX) return -1;
    s->hooks[s->n_hooks++] = *h;
    return 0;
}

int core_codec_register(wsgw_server_t *s, const core_codec_t *k)
{
    if (s->n_codecs == CORE_CODECS_MAX) return -1;
    s->codecs[s->n_codecs] = k;
    return (int)s->n_codecs++;
}

int core_conn_slot(wsgw_server_t *s)
{
    return s->n_slots < CORE_CONN_SLOTS ? s->n_slots++ : -1;
}

void *core_conn_get(const wsgw_conn_t *c, int slot) { return c->slot[slot]; }
void  core_conn_set(wsgw_conn_t *c, int slot, void *p) { c->slot[slot] = p; }

/* ---- accessors ------------------------------------------------------------------- */

const wsgw_config_t *core_cfg(const wsgw_server_t *s) { return s->cfg; }
struct ev_loop *core_loop(const wsgw_server_t *s) { return s->loop; }
uint64_t core_now_ms(const wsgw_server_t *s) { return wsgw_now_ms(s); }
wsgw_server_t *core_server(const wsgw_conn_t *c) { return c->srv; }
size_t core_open_count(const wsgw_server_t *s) { return s->n_open; }
int core_is_open(const wsgw_conn_t *c) { return c->state == CONN_OPEN; }
int core_codec_of(const wsgw_conn_t *c) { return c->codec; }
int core_is_native(const wsgw_conn_t *c) { return conn_native(c); }
const char *core_peer(const wsgw_conn_t *c) { return conn_peer(c); }
void core_fail(wsgw_conn_t *c, uint16_t code, const char *reason) { conn_fail(c, code, reason); }
void core_report_error(wsgw_conn_t *c, const char *why) { conn_report_error(c, why); }

void core_refuse(wsgw_conn_t *c, int status, const char *why, int fail_kind)
{
    handshake_refuse(c, status, why, (wsgw_hs_fail_t)fail_kind);
}

const char *core_id(const wsgw_conn_t *c, size_t *len)
{
    if (len) *len = c->id_len;
    return c->id;
}

wsgw_conn_t *core_find(wsgw_server_t *s, const char *id, size_t len)
{
    return idmap_get(&s->by_id, id, len);
}

int core_dispatch_event(wsgw_conn_t *c, const char *event, const char *data, size_t len)
{
    int handled = 0;
    for (uint16_t i = 0; c->app && i < c->app->n_handlers && c->state == CONN_OPEN; i++) {
        if (strcmp(c->app->handlers[i].event, event) != 0) continue;
        c->app->handlers[i].cb(c, event, data, len, c->app->handlers[i].ud);
        handled = 1;
    }
    return handled;
}

int core_take_error_budget(wsgw_conn_t *c)
{
    wsgw_server_t *s = c->srv;
    const wsgw_config_t *cfg = s->cfg;
    return cfg->error_rate_limit <= 0 ||
           tbucket_take(&c->err_bucket, cfg->error_rate_limit, cfg->error_rate_burst, wsgw_now_ms(s), 1);
}

/* ---- memberships ------------------------------------------------------------------ */

int core_join(wsgw_conn_t *c, const char *room, size_t len, core_answer_t *ack)
{
    wsgw_server_t *s = c->srv;
    int rc = rooms_join(&s->rooms, &c->member, room, len, (size_t)s->cfg->max_rooms_per_conn);
    if (rc != 1) return rc;
    wsgw_room_t *r = NULL;
    CORE_EACH_HOOK(s, h) {
        if (!h->member_joined) continue;
        if (!r) r = rooms_find(&s->rooms, room, len);
        h->member_joined(h->ud, c, r, ack);
    }
    return rc;
}

int core_leave(wsgw_conn_t *c, const char *room, size_t len)
{
    wsgw_server_t *s = c->srv;
    CORE_EACH_HOOK(s, h) {
        if (!h->member_left || !rooms_is_member(&c->member, room, len)) continue;
        h->member_left(h->ud, c, rooms_find(&s->rooms, room, len));
    }
    return rooms_leave(&s->rooms, &c->member, room, len);
}

int core_is_member(const wsgw_conn_t *c, const char *room, size_t len)
{
    return rooms_is_member(&c->member, room, len);
}

static void room_created(wsgw_room_t *r, void *ud)
{
    wsgw_server_t *s = ud;
    CORE_EACH_HOOK(s, h) if (h->room_created) h->room_created(h->ud, r);
}

static void room_destroyed(wsgw_room_t *r, void *ud)
{
    wsgw_server_t *s = ud;
    CORE_EACH_HOOK(s, h) if (h->room_emptied) h->room_emptied(h->ud, r);
}

void hooks_rooms_attach(wsgw_server_t *s)
{
    s->rooms.on_room_created = room_created;
    s->rooms.on_room_destroyed = room_destroyed;
    s->rooms.hook_ud = s;
}

/* ---- the core's calls ------------------------------------------------------------- */

int hooks_handshake(wsgw_conn_t *c, const ws_http_request_t *req)
{
    int flags = 0;
    CORE_EACH_HOOK(c->srv, h) {
        if (!h->handshake) continue;
        int rc = h->handshake(h->ud, c, req);
        if (rc < 0) return rc;
        flags |= rc;
    }
    return flags;
}

void hooks_conn_opened(wsgw_conn_t *c)
{
    CORE_EACH_HOOK(c->srv, h) if (h->conn_opened) h->conn_opened(h->ud, c);
}

void hooks_conn_closed(wsgw_conn_t *c)
{
    CORE_EACH_HOOK(c->srv, h) if (h->conn_closed) h->conn_closed(h->ud, c);
}

void hooks_conn_free(wsgw_conn_t *c)
{
    CORE_EACH_HOOK(c->srv, h) if (h->conn_free) h->conn_free(h->ud, c);
}

int hooks_conn_sweep(wsgw_conn_t *c, uint64_t now)
{
    CORE_EACH_HOOK(c->srv, h)
        if (h->conn_sweep && h->conn_sweep(h->ud, c, now)) return 1;
    return 0;
}

void hooks_sweep(wsgw_server_t *s, uint64_t now)
{
    CORE_EACH_HOOK(s, h) if (h->sweep) h->sweep(h->ud, now);
}

void hooks_flush(wsgw_server_t *s)
{
    CORE_EACH_HOOK(s, h) if (h->flush) h->flush(h->ud);
}

void hooks_free(wsgw_server_t *s)
{
    /* Last registered first: a feature may use one registered before it. */
    while (s->n_hooks) {
        const core_hooks_t *h = &s->hooks[--s->n_hooks];
        if (h->free) h->free(h->ud);
    }
}

static void first_answer_released(wsgw_conn_t *c, int status, const uint8_t *arg, size_t len)
{
    (void)status; (void)arg; (void)len;
    if (c) conn_release(c);
}

int hooks_open(wsgw_conn_t *c)
{
    const core_codec_t *k = conn_codec(c);
    if (!k->open || !k->open(k->ud, c) || c->state != CONN_OPEN) return 0;
    core_answer_t a = { .c = c, .cb = first_answer_released };
    CORE_EACH_HOOK(c->srv, h) if (h->first_answer) h->first_answer(h->ud, c, &a);
    int held = a._held != NULL;
    core_answer_finish(&a, CORE_DEFER_OK);   /* not held: conn_release finds nothing held */
    return held;
}

/* ---- deferred answers ---------------------------------------------------------------- */

#define DEFER_ARG_MAX 80

struct core_defer {
    wsgw_server_t *s;
    core_defer_cb  cb;
    uint32_t       holds;
    int            status;
    uint8_t        arg_len;
    uint8_t        arg[DEFER_ARG_MAX];
    char           conn[];         /* the connection's id, NUL-terminated */
};

core_defer_t *core_answer_hold(core_answer_t *a)
{
    core_defer_t *d = a->_held;
    if (!d) {
        wsgw_conn_t *c = a->c;
        size_t len = a->len < DEFER_ARG_MAX ? a->len : DEFER_ARG_MAX;
        d = ws_xcalloc(1, sizeof *d + c->id_len + 1u);
        d->s = c->srv;
        d->cb = a->cb;
        d->holds = 1;                  /* the creator's, until core_answer_finish */
        d->arg_len = (uint8_t)len;
        if (len) memcpy(d->arg, a->arg, len);
        memcpy(d->conn, c->id, c->id_len + 1u);
        a->_held = d;
    }
    d->holds++;
    return d;
}

void core_defer_release(core_defer_t *d, int status)
{
    if (status && !d->status) d->status = status;
    if (--d->holds) return;
    wsgw_conn_t *c = idmap_get(&d->s->by_id, d->conn, strlen(d->conn));
    if (c && c->state != CONN_OPEN) c = NULL;
    d->cb(c, d->status, d->arg, d->arg_len);
    ws_xfree(d);
}

void core_answer_finish(core_answer_t *a, int status)
{
    if (a->_held) {
        core_defer_release(a->_held, status);
        a->_held = NULL;
        return;
    }
    a->cb(a->c->state == CONN_OPEN ? a->c : NULL, status, a->arg, a->len);
}
