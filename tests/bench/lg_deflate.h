/* lg_deflate.h — permessage-deflate (RFC 7692) on the client side of the
 * load generator: the offer, the check of the server's answer, and the
 * inflation of compressed messages without making the generator the
 * bottleneck.
 *
 * The offer (--deflate) is two alternatives, in order of preference:
 *   permessage-deflate; server_no_context_takeover; client_no_context_takeover,
 *   permessage-deflate; client_no_context_takeover
 * Our own messages go out uncompressed (RSV1 clear), which RFC 7692 allows
 * whatever was agreed, so client_max_window_bits is never offered.
 *
 * With server_no_context_takeover each message is a self-contained DEFLATE
 * stream, and a server compresses a fan-out once: every subscriber gets the
 * same bytes.  Identical input bytes inflate to identical output, so one
 * inflater serves the whole loop and a cache maps the last compressed
 * payloads (eight slots per payload expected in play, in sets of
 * LG_PMD_WAYS chosen by hash, matched by length and memcmp, least recently
 * used out) to their inflated text: a fan-out to S subscribers costs one
 * inflate, not S.  The slot buffers are allocated once, when the first
 * connection agrees, for messages of the expected size; a bigger message
 * grows its slot once.  No allocation per message after that.  The hit and
 * miss
 * counts are reported.  Without server_no_context_takeover each connection
 * needs its own inflate stream (window from server_max_window_bits) and
 * every message is inflated: no cache.
 *
 * proto/'s inflater (ws_deflate.h) is role-neutral and used as is.
 */
#ifndef LG_DEFLATE_H
#define LG_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

#include "ws_alloc.h"
#include "ws_deflate.h"

/* The request header line of the offer, "\r\n" included. */
#define LG_PMD_OFFER_HEADER                                                                        \
    "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "                   \
    "client_no_context_takeover, permessage-deflate; client_no_context_takeover\r\n"

#define LG_PMD_WAYS        8            /* cache slots per set, found by hash */
#define LG_PMD_MIN_SLOTS   64
#define LG_PMD_MAX_SLOTS   4096
#define LG_PMD_CACHE_BYTES (64u << 20)   /* slot buffers at most */

/* What the server's answer says. */
typedef struct lg_pmd_params {
    uint8_t server_no_context_takeover;
    uint8_t client_no_context_takeover;
    uint8_t server_max_window_bits;      /* 8..15; 15 when not stated */
    uint8_t server_max_window_bits_sent;
} lg_pmd_params_t;

/* Checks one Sec-WebSocket-Extensions value of a 101 against our offer:
 * exactly one extension, permessage-deflate, with only parameters a server
 * may answer to it (server_no_context_takeover, client_no_context_takeover,
 * server_max_window_bits=8..15), each at most once.  Anything else — an
 * extension we did not offer, client_max_window_bits (not offered), an
 * unknown or repeated parameter, a bad value — returns -1 with the reason in
 * err.  Returns 0 and fills *p otherwise. */
int lg_pmd_parse_answer(const char *v, size_t n, lg_pmd_params_t *p, char *err, size_t errlen);

/* "permessage-deflate;server_no_context_takeover;..." (no spaces: it goes
 * into the RESULT line) into out. */
void lg_pmd_describe(const lg_pmd_params_t *p, char *out, size_t cap);

typedef struct lg_pmd_slot {
    uint64_t used;            /* lg_pmd_t.tick when last hit or filled */
    ws_buf_t in;              /* compressed payload (len 0: empty slot) */
    ws_buf_t out;             /* its inflated text */
} lg_pmd_slot_t;

/* Per loop. */
typedef struct lg_pmd {
    int              offered;       /* --deflate */
    int              agreed;        /* the first answer was recorded in params */
    lg_pmd_params_t  params;        /* every connection must agree the same */
    ws_inflater_t   *shared;        /* server_no_context_takeover: the loop's inflater */
    lg_pmd_slot_t   *slots;         /* n_slots, with server_no_context_takeover */
    uint64_t        *hashes;        /* of each slot's payload, apart: a set's in one line */
    size_t           n_slots;
    ws_buf_t         scratch;       /* every inflate lands here first */
    size_t           size_hint;
    uint64_t         tick;          /* cache lookups so far */
    uint64_t         compressed;    /* data messages that arrived with RSV1 */
    uint64_t         uncompressed;  /* and without */
    uint64_t         hits;          /* compressed messages served from the cache */
    uint64_t         misses;        /* compressed messages actually inflated */
} lg_pmd_t;

/* offered: --deflate; size_hint: the usual size of a message's data;
 * distinct_hint: how many different messages may be in flight at once (a
 * fan-out's window), which sizes the cache. */
void lg_pmd_init(lg_pmd_t *d, int offered, size_t size_hint, size_t distinct_hint);
/* Records the first connection's agreement, or checks a later one is the
 * same.  Returns 0, or -1 when it differs. */
int  lg_pmd_agree(lg_pmd_t *d, const lg_pmd_params_t *p);
/* Inflates one whole compressed text message in[0..n) and checks it is
 * UTF-8.  `inf` is the connection's own stream (context takeover), or NULL
 * for the shared inflater and the cache.  Returns WS_OK with *out and *outlen
 * valid until the next call, or a WS_E_* code (WS_E_INFLATE,
 * WS_E_INFLATE_TOO_BIG, WS_E_UTF8). */
int  lg_pmd_inflate(lg_pmd_t *d, ws_inflater_t *inf, const uint8_t *in, size_t n, size_t limit,
                    const uint8_t **out, size_t *outlen);
void lg_pmd_free(lg_pmd_t *d);

#endif
