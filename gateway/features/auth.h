/* auth.h — JSON Web Token authentication as a feature (docs/protocol.md,
 * "Authentication"): the token at the handshake (a handshake hook; 401
 * without a valid one), permissions from its claims, expiry (a sweep hook:
 * 4001) and refresh (the envelope op "auth").
 *
 * A connection keeps only what it needs of the claims (user, expiry, a
 * copy of the rooms array, an emit bit set) in one allocation reached
 * through a core slot, and only when a token was accepted: an anonymous
 * connection pays nothing beyond the slot's pointer. */
#ifndef WSGW_AUTH_H
#define WSGW_AUTH_H

#include <stddef.h>

#include "core.h"
#include "protocol.h"

/* Registers the hooks on s and the "auth" op on p (p may be NULL: no
 * refresh).  -1 with err filled when the configured key cannot be loaded
 * or no slot is left. */
int auth_attach(wsgw_server_t *s, protocol_t *p, char *err, size_t errlen);

/* The authenticated user (the token's sub), or NULL. */
const char *auth_user(const wsgw_conn_t *c);
/* May c join room (the token's rooms claim; 1 without a claim)? */
int auth_may_join(const wsgw_conn_t *c, const char *room);
/* WSGW_EMIT_* the token allows (all of them without a token or claim). */
unsigned auth_emit_allowed(const wsgw_conn_t *c);

#endif
