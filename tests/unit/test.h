/* test.h — the unit-test harness: one binary per proto/ module.
 *
 * A test is a void function that uses CHECK* macros; the first failing
 * CHECK prints file:line and the expression, marks the test failed and
 * returns from it.  main() calls RUN(fn) for each test and ends with
 * `return test_report("name");`, which prints the summary line that
 * tests/run-unit.sh adds up:  "# unit NAME: N passed, M failed".
 * Each test binary is a single translation unit, so the statics live here.
 */
#ifndef WS_TEST_H
#define WS_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_passed_, test_failed_, test_cur_failed_;
static const char *test_cur_name_;

#define CHECK_MSG(cond, ...) do {                                              \
        if (!(cond)) {                                                         \
            fprintf(stderr, "FAIL %s (%s:%d): %s: ", test_cur_name_,           \
                    __FILE__, __LINE__, #cond);                                \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            test_cur_failed_ = 1;                                              \
            return;                                                            \
        }                                                                      \
    } while (0)

#define CHECK(cond) CHECK_MSG(cond, "false")
#define CHECK_INT(a, b) do {                                                   \
        long long a_ = (long long)(a), b_ = (long long)(b);                    \
        CHECK_MSG(a_ == b_, "%lld != %lld", a_, b_);                           \
    } while (0)
#define CHECK_MEM(p, q, n) do {                                                \
        size_t n_ = (size_t)(n);                                               \
        CHECK_MSG(memcmp((p), (q), n_) == 0, "%zu bytes differ", n_);          \
    } while (0)
#define CHECK_STR(a, b) do {                                                   \
        const char *a_ = (a), *b_ = (b);                                       \
        CHECK_MSG(a_ && b_ && strcmp(a_, b_) == 0, "\"%s\" != \"%s\"",         \
                  a_ ? a_ : "(null)", b_ ? b_ : "(null)");                     \
    } while (0)

#define RUN(fn) do {                                                           \
        test_cur_name_ = #fn;                                                  \
        test_cur_failed_ = 0;                                                  \
        fn();                                                                  \
        if (test_cur_failed_) test_failed_++;                                  \
        else { test_passed_++; if (getenv("TEST_VERBOSE")) printf("ok %s\n", #fn); } \
    } while (0)

static inline int test_report(const char *suite)
{
    printf("# unit %s: %d passed, %d failed\n", suite, test_passed_, test_failed_);
    return test_failed_ ? 1 : 0;
}

#endif
