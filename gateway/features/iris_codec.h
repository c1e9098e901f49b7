/* iris_codec.h — Iris v10 clients as a feature (docs/protocol.md, "Iris v10
 * clients"): the codec of the iris_path endpoint.  iris-ws.js frames in
 * (gateway/wire/iris.h) become events for the server's on(event) handlers
 * or the configured iris_emit_to target; deliveries go out in Iris'
 * format; iris_rooms are joined at open; /iris-ws.js is served when
 * iris_client_js is set.  Its state (the parsed target, the script) is
 * its own, freed with the server. */
#ifndef WSGW_IRIS_CODEC_H
#define WSGW_IRIS_CODEC_H

#include <stddef.h>

#include "core.h"

/* Registers the codec and hooks on s.  -1 with err filled when
 * iris_client_js cannot be read. */
int iris_codec_attach(wsgw_server_t *s, char *err, size_t errlen);

#endif
