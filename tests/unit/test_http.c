/* test_http.c -- the HTTP layer's pure helpers (src/http/http.h): decoding a
 * percent-encoded id and finding a query parameter. The server itself runs
 * in tests/e2e/http_check.sh and test_kafka_run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "http.h"

static long unescape(const char *in, char *out, size_t cap)
{
    return fs_http_unescape(in, strlen(in), out, cap);
}

static void test_unescape(void **state)
{
    (void)state;
    char out[8];
    assert_int_equal(unescape("c1", out, sizeof out), 2);
    assert_memory_equal(out, "c1", 2);
    assert_int_equal(unescape("%63%2f%2F+", out, sizeof out), 4); /* either case; + stays */
    assert_memory_equal(out, "c//+", 4);
    assert_int_equal(unescape("%00%FF", out, sizeof out), 2); /* bytes, checked later */
    assert_memory_equal(out, "\0\xff", 2);
    assert_int_equal(unescape("", out, sizeof out), 0);
    assert_int_equal(unescape("%", out, sizeof out), -1);
    assert_int_equal(unescape("%4", out, sizeof out), -1);
    assert_int_equal(unescape("%zz", out, sizeof out), -1);
    assert_int_equal(unescape("%4g", out, sizeof out), -1);
    assert_int_equal(unescape("12345678", out, sizeof out), 8);   /* fits exactly */
    assert_int_equal(unescape("123456789", out, sizeof out), -1); /* one too many */
    assert_int_equal(unescape("%31%32%33%34%35%36%37%38", out, sizeof out), 8);
}

static const char *param(const char *query, const char *name, size_t *len)
{
    fs_http_request req = {"", 0, query, query ? strlen(query) : 0};
    return fs_http_query_param(&req, name, len);
}

static void test_query_param(void **state)
{
    (void)state;
    size_t len;
    const char *v = param("id=c1", "id", &len);
    assert_non_null(v);
    assert_int_equal(len, 2);
    assert_memory_equal(v, "c1", 2);
    v = param("x=1&id=%2E%2E&id=second", "id", &len); /* the first one */
    assert_non_null(v);
    assert_int_equal(len, 6);
    assert_memory_equal(v, "%2E%2E", 6);
    v = param("id=", "id", &len);
    assert_non_null(v);
    assert_int_equal(len, 0);
    assert_null(param("idx=1&xid=2&id", "id", &len)); /* names must match whole */
    assert_null(param("", "id", &len));
    assert_null(param(NULL, "id", &len));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unescape),
        cmocka_unit_test(test_query_param),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
