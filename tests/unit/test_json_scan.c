/* test_json_scan.c — the strict JSON scanner (gateway/wire/json_scan.c):
 * valid and invalid documents with their error offsets, depth, prefixes,
 * value spans, the object iterator and the string helpers.
 *
 * Every input is copied into an exact-size heap block (no NUL after it), so
 * the ASan build catches any read past the end. */
#include "test.h"

#include "json_scan.h"

/* ---- helpers ---------------------------------------------------------------- */

static uint8_t *g_in;        /* the current input, exact size */

static const uint8_t *heap_copy(const char *s, size_t n)
{
    free(g_in);
    g_in = malloc(n ? n : 1);
    memcpy(g_in, s, n);
    return g_in;
}

static json_scan_err_t scan_n(const char *s, size_t n, size_t *off)
{
    *off = (size_t)-1;
    return json_scan_document(heap_copy(s, n), n, off);
}

static int span_is(json_span_t sp, const char *lit)
{
    size_t n = strlen(lit);
    return sp.len == n && (n == 0 || memcmp(sp.p, lit, n) == 0);
}

#define CHECK_SPAN(sp, lit) CHECK_MSG(span_is((sp), (lit)), "span \"%.*s\" != \"%s\"", \
                                      (int)(sp).len, (sp).p ? (const char *)(sp).p : "", (lit))

/* "[[[...1...]]]" nested n deep, or the same inside {"k": ...} when obj. */
static char *nested(int n, int obj)
{
    char *b = malloc((size_t)n * 8 + 8), *p = b;
    for (int i = 0; i < n; i++) p += sprintf(p, obj ? "{\"k\":" : "[");
    *p++ = '1';
    for (int i = 0; i < n; i++) *p++ = obj ? '}' : ']';
    *p = 0;
    return b;
}


/* ---- scanner: valid documents ------------------------------------------------ */

static const char *const valid_docs[] = {
    "{}", "[]", " {} ", "\t\r\n {\t\r\n}\t\r\n", "[ ]", "{ }",
    "0", "-0", "1", "-1", "0.5", "-0.0", "1e5", "1E5", "1e+5", "1e-5", "1.25E-02",
    "12345678901234567890", "-12345678901234567890123.4567890e-123456",
    "\"\"", "\"abc\"", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\u0000\"", "\"\\u00e9\\u00E9\"",
    "\"\\uD83D\\uDE00\"", "\"\\udbff\\udfff\"", "\"\\uD800\\uDC00\"", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
    "\"\\uFFFF\"", "\"\x7f\"",
    "true", "false", "null", "[true,false,null]",
    "{\"a\":1,\"b\":[1,2,{\"c\":null}],\"d\":{}}", "[[],[[]],{}]",
    "{\"\":0}", "{\"a\":1,\"a\":2}", "[1 , 2 ,3]", "{ \"a\" : 1 , \"b\" : 2 }",
    "[\"a\",-1.5e3,{\"x\":[\"\\u0041\"]}]",
};

static void test_scan_valid(void)
{
    for (size_t i = 0; i < sizeof valid_docs / sizeof valid_docs[0]; i++) {
        size_t off;
        json_scan_err_t r = scan_n(valid_docs[i], strlen(valid_docs[i]), &off);
        CHECK_MSG(r == JSON_OK, "%s: %d at %zu", valid_docs[i], r, off);
    }
}

/* ---- scanner: invalid documents, with the error offset ------------------------ */

static const struct bad_case {
    const char *doc;
    json_scan_err_t err;
    size_t off;
} bad_docs[] = {
    { "", JSON_E_SYNTAX, 0 },
    { "   ", JSON_E_SYNTAX, 3 },
    { "01", JSON_E_SYNTAX, 1 },           /* leading zero */
    { "-01", JSON_E_SYNTAX, 2 },
    { "00", JSON_E_SYNTAX, 1 },
    { "[01]", JSON_E_SYNTAX, 2 },
    { "-", JSON_E_SYNTAX, 1 },
    { "+1", JSON_E_SYNTAX, 0 },
    { ".5", JSON_E_SYNTAX, 0 },
    { "1.", JSON_E_SYNTAX, 2 },
    { "1.e5", JSON_E_SYNTAX, 2 },
    { "1e", JSON_E_SYNTAX, 2 },
    { "1e+", JSON_E_SYNTAX, 3 },
    { "0x10", JSON_E_SYNTAX, 1 },
    { "NaN", JSON_E_SYNTAX, 0 },
    { "nan", JSON_E_SYNTAX, 1 },
    { "Infinity", JSON_E_SYNTAX, 0 },
    { "-Infinity", JSON_E_SYNTAX, 1 },
    { "[NaN]", JSON_E_SYNTAX, 1 },
    { "[1,]", JSON_E_SYNTAX, 3 },          /* trailing commas */
    { "{\"a\":1,}", JSON_E_SYNTAX, 7 },
    { "[,1]", JSON_E_SYNTAX, 1 },
    { "{,}", JSON_E_SYNTAX, 1 },
    { "[1,,2]", JSON_E_SYNTAX, 3 },
    { "[1 2]", JSON_E_SYNTAX, 3 },
    { "{\"a\" 1}", JSON_E_SYNTAX, 5 },
    { "{\"a\":}", JSON_E_SYNTAX, 5 },
    { "{\"a\"}", JSON_E_SYNTAX, 4 },
    { "{1:2}", JSON_E_SYNTAX, 1 },
    { "{'a':1}", JSON_E_SYNTAX, 1 },
    { "{a:1}", JSON_E_SYNTAX, 1 },
    { "[1]]", JSON_E_SYNTAX, 3 },
    { "[1}", JSON_E_SYNTAX, 2 },
    { "{\"a\":1]", JSON_E_SYNTAX, 6 },
    { "[", JSON_E_SYNTAX, 1 },
    { "{", JSON_E_SYNTAX, 1 },
    { "{\"a\":1", JSON_E_SYNTAX, 6 },
    { "{} {}", JSON_E_SYNTAX, 3 },         /* trailing garbage */
    { "{}x", JSON_E_SYNTAX, 2 },
    { "1 2", JSON_E_SYNTAX, 2 },
    { "tru", JSON_E_SYNTAX, 3 },
    { "trUe", JSON_E_SYNTAX, 2 },
    { "truex", JSON_E_SYNTAX, 4 },
    { "nul", JSON_E_SYNTAX, 3 },
    { "True", JSON_E_SYNTAX, 0 },
    { "\"abc", JSON_E_SYNTAX, 4 },         /* strings */
    { "\"", JSON_E_SYNTAX, 1 },
    { "\"a\x01" "b\"", JSON_E_SYNTAX, 2 }, /* raw control characters */
    { "\"tab\there\"", JSON_E_SYNTAX, 4 },
    { "\"nl\n\"", JSON_E_SYNTAX, 3 },
    { "\"\\x41\"", JSON_E_SYNTAX, 2 },     /* bad escapes */
    { "\"\\a\"", JSON_E_SYNTAX, 2 },
    { "\"\\'\"", JSON_E_SYNTAX, 2 },
    { "\"\\", JSON_E_SYNTAX, 2 },
    { "\"\\u12G4\"", JSON_E_SYNTAX, 5 },
    { "\"\\u00\"", JSON_E_SYNTAX, 5 },
    { "\"\\u00", JSON_E_SYNTAX, 5 },
    { "\"\\U0041\"", JSON_E_SYNTAX, 2 },
    { "\"\\uD800\"", JSON_E_SYNTAX, 1 },   /* lone surrogates */
    { "\"\\uDBFF\"", JSON_E_SYNTAX, 1 },
    { "\"\\uDC00\"", JSON_E_SYNTAX, 1 },
    { "\"\\uDFFF\\uD800\"", JSON_E_SYNTAX, 1 },
    { "\"\\uD800\\u0041\"", JSON_E_SYNTAX, 1 },
    { "\"\\uD800\\uD800\"", JSON_E_SYNTAX, 1 },
    { "\"\\uD800x\"", JSON_E_SYNTAX, 1 },
    { "\"\\uD800\\n\"", JSON_E_SYNTAX, 1 },
    { "\"a\\uDE00\"", JSON_E_SYNTAX, 2 },
    { "\"\\uD83D\\uDE0\"", JSON_E_SYNTAX, 12 },
    { "\xef\xbb\xbf{}", JSON_E_SYNTAX, 0 },  /* BOM */
    { "\x0b{}", JSON_E_SYNTAX, 0 },          /* not JSON whitespace */
    { "\x0c{}", JSON_E_SYNTAX, 0 },
    { "{}\x0b", JSON_E_SYNTAX, 2 },
    { "\xc2\xa0{}", JSON_E_SYNTAX, 0 },
    { "[\xc3\xa9]", JSON_E_SYNTAX, 1 },      /* non-ASCII outside a string */
    { "/* c */ {}", JSON_E_SYNTAX, 0 },
    { "undefined", JSON_E_SYNTAX, 0 },
};

static void test_scan_invalid(void)
{
    for (size_t i = 0; i < sizeof bad_docs / sizeof bad_docs[0]; i++) {
        const struct bad_case *c = &bad_docs[i];
        size_t off;
        json_scan_err_t r = scan_n(c->doc, strlen(c->doc), &off);
        CHECK_MSG(r == c->err && off == c->off, "case %zu %s: got %d at %zu, want %d at %zu",
                  i, c->doc, r, off, c->err, c->off);
    }
}

static void test_scan_nul_byte(void)
{
    size_t off;
    CHECK_INT(scan_n("\"a\0b\"", 5, &off), JSON_E_SYNTAX);  /* U+0000 must be escaped */
    CHECK_INT(off, 2);
    CHECK_INT(scan_n("{}\0", 3, &off), JSON_E_SYNTAX);
    CHECK_INT(off, 2);
}

static void test_scan_depth(void)
{
    size_t off;
    for (int obj = 0; obj <= 1; obj++) {
        char *d32 = nested(32, obj), *d33 = nested(33, obj), *d200 = nested(200, obj);
        json_scan_err_t r32 = scan_n(d32, strlen(d32), &off);
        json_scan_err_t r33 = scan_n(d33, strlen(d33), &off);
        size_t off33 = off;
        json_scan_err_t r200 = scan_n(d200, strlen(d200), &off);
        free(d32); free(d33); free(d200);
        CHECK_INT(r32, JSON_OK);
        CHECK_INT(r33, JSON_E_DEPTH);
        CHECK_INT(off33, obj ? 32 * 5 : 32);  /* the 33rd opening bracket */
        CHECK_INT(r200, JSON_E_DEPTH);
    }
    /* depth is the count of open containers, not of brackets seen */
    char flat[2000], *p = flat;
    for (int i = 0; i < 300; i++) p += sprintf(p, "%s[[]]", i ? "," : "[");
    strcpy(p, "]");
    CHECK_INT(scan_n(flat, strlen(flat), &off), JSON_OK);
    /* unclosed 32: syntax (end of input), not depth */
    CHECK_INT(scan_n("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", 32, &off), JSON_E_SYNTAX);
    CHECK_INT(off, 32);
}

/* Every proper prefix of a valid document is either valid or an error at
 * an offset <= its length, and never a read past it (ASan). */
static void test_scan_prefixes(void)
{
    for (size_t i = 0; i < sizeof valid_docs / sizeof valid_docs[0]; i++) {
        size_t n = strlen(valid_docs[i]);
        for (size_t k = 0; k < n; k++) {
            size_t off;
            json_scan_err_t r = scan_n(valid_docs[i], k, &off);
            CHECK(r == JSON_OK || r == JSON_E_SYNTAX);
            if (r != JSON_OK) CHECK(off <= k);
        }
    }
}

static void test_scan_value_spans(void)
{
    const char *s = "  [1, \"x\"]  , 12345678901234567890 ";
    const uint8_t *in = heap_copy(s, strlen(s));
    size_t pos = 0;
    json_span_t v;
    CHECK_INT(json_scan_value(in, strlen(s), &pos, 0, &v), JSON_OK);
    CHECK_SPAN(v, "[1, \"x\"]");
    CHECK_INT(pos, 10);
    pos = 13;
    CHECK_INT(json_scan_value(in, strlen(s), &pos, 0, &v), JSON_OK);
    CHECK_SPAN(v, "12345678901234567890");
    /* depth counts containers already open around the value */
    pos = 0;
    CHECK_INT(json_scan_value(in, strlen(s), &pos, 31, &v), JSON_OK);
    pos = 0;
    CHECK_INT(json_scan_value(in, strlen(s), &pos, 32, &v), JSON_E_DEPTH);
    CHECK_INT(pos, 2);
}

static void test_obj_iter(void)
{
    const char *s = " { \"a\" : 1 ,\"b\":[1, 2] , \"c\\n\":{\"x\":null}, \"d\":\"s\" } ";
    const uint8_t *in = heap_copy(s, strlen(s));
    json_obj_iter_t it;
    json_member_t m;
    CHECK_INT(json_obj_begin(&it, in, strlen(s)), JSON_OK);
    CHECK_INT(json_obj_next(&it, &m), 1);
    CHECK_SPAN(m.key, "a");
    CHECK_SPAN(m.value, "1");
    CHECK_INT(json_obj_next(&it, &m), 1);
    CHECK_SPAN(m.key, "b");
    CHECK_SPAN(m.value, "[1, 2]");
    CHECK_INT(json_obj_next(&it, &m), 1);
    CHECK_SPAN(m.key, "c\\n");
    CHECK_SPAN(m.value, "{\"x\":null}");
    CHECK_INT(json_obj_next(&it, &m), 1);
    CHECK_SPAN(m.value, "\"s\"");
    CHECK_INT(json_obj_next(&it, &m), 0);
    CHECK_INT(json_obj_next(&it, &m), 0);

    in = heap_copy("{}", 2);
    CHECK_INT(json_obj_begin(&it, in, 2), JSON_OK);
    CHECK_INT(json_obj_next(&it, &m), 0);

    in = heap_copy("[1]", 3);
    CHECK_INT(json_obj_begin(&it, in, 3), JSON_E_NOT_OBJECT);

    in = heap_copy("{\"a\":1,}", 8);
    CHECK_INT(json_obj_begin(&it, in, 8), JSON_OK);
    CHECK_INT(json_obj_next(&it, &m), 1);
    CHECK_INT(json_obj_next(&it, &m), JSON_E_SYNTAX);
    CHECK_INT(it.err_off, 7);
    CHECK_INT(json_obj_next(&it, &m), JSON_E_SYNTAX);  /* sticky */

    in = heap_copy("{\"a\":1} x", 9);
    CHECK_INT(json_obj_begin(&it, in, 9), JSON_OK);
    CHECK_INT(json_obj_next(&it, &m), 1);
    CHECK_INT(json_obj_next(&it, &m), JSON_E_SYNTAX);
    CHECK_INT(it.err_off, 8);
}

static void test_str_helpers(void)
{
    CHECK(json_str_equal((const uint8_t *)"op", 2, (const uint8_t *)"op", 2));
    CHECK(json_str_equal((const uint8_t *)"\\u006fp", 7, (const uint8_t *)"op", 2));
    CHECK(json_str_equal((const uint8_t *)"o\\u0070", 7, (const uint8_t *)"\\u006F\\u0070", 12));
    CHECK(!json_str_equal((const uint8_t *)"op", 2, (const uint8_t *)"opx", 3));
    CHECK(!json_str_equal((const uint8_t *)"\\u006fpx", 8, (const uint8_t *)"op", 2));
    CHECK(!json_str_equal((const uint8_t *)"a", 1, (const uint8_t *)"b", 1));
    CHECK(json_str_equal((const uint8_t *)"\\uD83D\\uDE00", 12, (const uint8_t *)"\xf0\x9f\x98\x80", 4));
    CHECK(json_str_equal((const uint8_t *)"\\u00e9", 6, (const uint8_t *)"\xc3\xa9", 2));
    CHECK(json_str_equal((const uint8_t *)"\\/\\n", 4, (const uint8_t *)"/\n", 2));
    CHECK(json_str_equal((const uint8_t *)"", 0, (const uint8_t *)"", 0));

    uint8_t buf[16];
    const char *raw = "a\\n\\u00e9\\uD83D\\uDE00\\\"";
    CHECK_INT(json_str_unescape((const uint8_t *)raw, strlen(raw), buf, sizeof buf), 9);
    CHECK_MEM(buf, "a\n\xc3\xa9\xf0\x9f\x98\x80\"", 9);
    CHECK_INT(json_str_unescape((const uint8_t *)raw, strlen(raw), buf, 8), SIZE_MAX);
    CHECK_INT(json_str_unescape((const uint8_t *)"\\u0800", 6, buf, sizeof buf), 3);
    CHECK_MEM(buf, "\xe0\xa0\x80", 3);
    /* misuse: a truncated escape is taken literally, not read past */
    const uint8_t *t = heap_copy("x\\u12", 5);
    CHECK_INT(json_str_unescape(t, 5, buf, sizeof buf), 5);
    CHECK_MEM(buf, "x\\u12", 5);
}

int main(void)
{
    RUN(test_scan_valid);
    RUN(test_scan_invalid);
    RUN(test_scan_nul_byte);
    RUN(test_scan_depth);
    RUN(test_scan_prefixes);
    RUN(test_scan_value_spans);
    RUN(test_obj_iter);
    RUN(test_str_helpers);
    free(g_in);
    return test_report("json_scan");
}
