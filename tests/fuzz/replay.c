/* replay.c — runs a libFuzzer target over its saved corpus without libFuzzer.
 *
 * `make test` links each tests/fuzz/fuzz_*.c with this main under
 * ASan+UBSan (gcc), so the corpus that `make fuzz` grew is replayed on
 * every run: a crash, leak or UB report aborts the binary, which then never
 * prints its summary line, which tests/run-unit.sh counts as a failure.
 * Usage: replay NAME DIR...  (every regular file in each DIR is one input).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0) { fclose(f); return -1; }
    /* An exact-size heap copy, so ASan sees any read past the input. */
    uint8_t *buf = malloc(n ? (size_t)n : 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); fclose(f); return -1; }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s NAME CORPUS_DIR...\n", argv[0]);
        return 2;
    }
    int files = 0, errors = 0;
    for (int i = 2; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        if (!d) { fprintf(stderr, "replay: cannot open %s\n", argv[i]); errors++; continue; }
        struct dirent *e;
        while ((e = readdir(d))) {
            char path[4096];
            struct stat st;
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
            if (replay_file(path) != 0) { fprintf(stderr, "replay: cannot read %s\n", path); errors++; }
            else files++;
        }
        closedir(d);
    }
    if (files == 0) { fprintf(stderr, "replay %s: empty corpus\n", argv[1]); errors++; }
    printf("# fuzz-replay %s: %d passed, %d failed\n", argv[1], files, errors);
    return errors ? 1 : 0;
}
