/* wsgw_server.c — the wiring: a server is the core (gateway/core/) with the
 * features (gateway/features/) registered on it, in this order — the
 * envelope protocol (its codec serves `path`), Iris (iris_path), auth
 * (its "auth" op goes through the protocol), the cluster — and the public
 * API calls that belong to a feature.  A new feature plugs in here:
 * docs/architecture.md. */
#include "auth.h"
#include "cluster.h"
#include "core.h"
#include "iris_codec.h"
#include "protocol.h"
#include "wsgw.h"

wsgw_server_t *wsgw_server_new_with_fds(struct ev_loop *loop, const wsgw_config_t *cfg,
                                        const wsgw_listen_fd_t *fds, size_t n,
                                        char *err, size_t errlen)
{
    wsgw_server_t *s = core_server_new(loop, cfg, fds, n, err, errlen);
    if (!s) return NULL;
    protocol_t *p = protocol_attach(s);
    if (!p || iris_codec_attach(s, err, errlen) != 0 || auth_attach(s, p, err, errlen) != 0 ||
        cluster_attach(s, err, errlen) != 0) {
        wsgw_server_free(s);
        return NULL;
    }
    return s;
}

wsgw_server_t *wsgw_server_new(struct ev_loop *loop, const wsgw_config_t *cfg,
                               char *err, size_t errlen)
{
    return wsgw_server_new_with_fds(loop, cfg, NULL, 0, err, errlen);
}

const char *wsgw_conn_user(const wsgw_conn_t *c)
{
    return auth_user(c);
}
