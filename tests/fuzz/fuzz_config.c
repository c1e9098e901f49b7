/* fuzz_config.c — config-file text through wsgw_config_load_text().
 *
 * Touches no disk: the input is the file text.  When it loads, the config
 * is validated and dumped, and the dump must load back into a fresh config
 * and dump identically (the dump is documented as re-readable file text);
 * a mismatch aborts so the fuzzer reports it. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dump_str(const wsgw_config_t *cfg, size_t *n)
{
    char *s = NULL;
    FILE *f = open_memstream(&s, n);
    if (!f) abort();
    wsgw_config_dump(cfg, f);
    fclose(f);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wsgw_config_t a, b;
    char err[256];
    wsgw_config_init(&a);
    memset(err, 'x', sizeof err);
    if (wsgw_config_load_text(&a, (const char *)data, size, "fuzz.conf", err, sizeof err) != 0) {
        if (!memchr(err, '\0', sizeof err) || err[0] == '\0') abort();  /* err always filled */
        wsgw_config_free(&a);
        return 0;
    }
    (void)wsgw_config_validate(&a, err, sizeof err);
    size_t n1, n2;
    char *d1 = dump_str(&a, &n1);
    wsgw_config_init(&b);
    if (wsgw_config_load_text(&b, d1, n1, "dump", err, sizeof err) != 0) {
        fprintf(stderr, "dump does not load back: %s\n%s", err, d1);
        abort();
    }
    char *d2 = dump_str(&b, &n2);
    if (n1 != n2 || memcmp(d1, d2, n1) != 0) {
        fprintf(stderr, "dump changed on reload:\n%s---\n%s", d1, d2);
        abort();
    }
    free(d1);
    free(d2);
    wsgw_config_free(&a);
    wsgw_config_free(&b);
    return 0;
}
