/* fuzz_pmd_offer.c — an arbitrary Sec-WebSocket-Extensions value through
 * ws_pmd_negotiate and ws_pmd_format_response, under two policies.
 * Invariants: agreed parameters are in range, the response fits a 256-byte
 * buffer, and our own response, read back as an offer, is accepted.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws_deflate.h"
#include "ws_status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_one(const char *v, size_t n, const ws_pmd_policy_t *pol)
{
    ws_pmd_params_t p;
    int rc = ws_pmd_negotiate(v, n, pol, &p);
    if (rc != 0 && rc != 1) abort();
    if (rc == 0) return;
    if (p.server_max_window_bits < 8 || p.server_max_window_bits > pol->server_max_window_bits ||
        p.client_max_window_bits < 8 || p.client_max_window_bits > 15)
        abort();
    if (!pol->allow_server_context_takeover && !p.server_no_context_takeover) abort();
    if (!pol->allow_client_context_takeover && !p.client_no_context_takeover) abort();
    char resp[256];
    int len = ws_pmd_format_response(&p, resp, sizeof resp);
    if (len <= 0 || (size_t)len != strlen(resp)) abort();
    if (ws_pmd_format_response(&p, resp, (size_t)len) != WS_E_NOSPACE) abort();
    len = ws_pmd_format_response(&p, resp, sizeof resp);
    ws_pmd_params_t q;
    if (ws_pmd_negotiate(resp, (size_t)len, pol, &q) != 1) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ws_pmd_policy_t pol;
    ws_pmd_policy_default(&pol);
    fuzz_one((const char *)data, size, &pol);
    pol.allow_server_context_takeover = 1;
    pol.allow_client_context_takeover = 1;
    pol.server_max_window_bits = 10;
    pol.client_max_window_bits = 9;
    fuzz_one((const char *)data, size, &pol);
    return 0;
}
