/* fuzz_iris.c — the Iris codec: decode any frame, convert its payload to
 * JSON, and re-encode it: the JSON must be valid and the re-encoded frame
 * must decode again with the same event (abort() otherwise). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iris.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    iris_msg_t m;
    if (iris_decode(data, size, &m) != IRIS_OK || m.native) return 0;
    ws_buf_t json = {0};
    if (iris_payload_to_json(&m, &json) == IRIS_OK) {
        if (json_scan_document(json.data, json.len, NULL) != JSON_OK) abort();
        json_span_t d = { json.data, json.len };
        uint8_t *out = malloc(iris_encode_size(m.event, d) + 1);
        size_t n = iris_encode(m.event, d, out);
        if (n) {
            iris_msg_t again;
            if (iris_decode(out, n, &again) != IRIS_OK || again.native ||
                again.event.len != m.event.len || memcmp(again.event.p, m.event.p, m.event.len) != 0)
                abort();
        }
        free(out);
    }
    ws_buf_free(&json);
    return 0;
}
