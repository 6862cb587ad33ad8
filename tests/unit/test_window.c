/* Unit tests of window arithmetic, the fixed-point sums and the small maps. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dict.h"
#include "fixed.h"
#include "i64map.h"
#include "window.h"

static void test_tumbling(void **state)
{
    (void)state;
    fs_window_spec w = {60000, 60000, 1};
    assert_int_equal(fs_window_last_start(&w, 59999), 0);
    assert_int_equal(fs_window_last_start(&w, 60000), 60000);
    assert_int_equal(fs_window_last_start(&w, -1), -60000);      /* floor, not truncation */
    assert_int_equal(fs_window_earliest_open(&w, 60000), 60000); /* [0,60000) closed at 60000 */
    assert_int_equal(fs_window_earliest_open(&w, 59999), 0);
    assert_true(fs_window_is_closed(&w, 0, 60000));
    assert_false(fs_window_is_closed(&w, 0, 59999));
}

static void test_hopping(void **state)
{
    (void)state;
    fs_window_spec w = {120000, 60000, 2};
    assert_int_equal(fs_window_last_start(&w, 90000), 60000); /* and 0 */
    assert_int_equal(fs_window_earliest_open(&w, 120000), 60000);
    assert_int_equal(fs_window_earliest_open(&w, 119999), 0);
}

static void test_extremes_do_not_overflow(void **state)
{
    (void)state;
    fs_window_spec w = {60000, 60000, 1};
    assert_int_equal(fs_window_end(&w, fs_window_last_start(&w, INT64_MAX)), INT64_MAX);
    assert_true(fs_window_last_start(&w, INT64_MIN) == INT64_MIN);
    (void)fs_window_earliest_open(&w, INT64_MIN);
}

static void test_fixed_is_order_independent(void **state)
{
    (void)state;
    double v[] = {0.1, 1e15, -3.25, 19.99, 1e-12, 7.0};
    fs_fixed a = {0, 0}, b = {0, 0};
    for (int i = 0; i < 6; i++)
        fs_fixed_add(&a, fs_fixed_from_double(v[i]));
    for (int i = 5; i >= 0; i--)
        fs_fixed_add(&b, fs_fixed_from_double(v[i]));
    assert_true(a.whole == b.whole && a.frac == b.frac);
    double expect = 1e15 + 0.1 - 3.25 + 19.99 + 1e-12 + 7.0;
    assert_true(fabs(fs_fixed_to_double(a) - expect) <= 1e-9 * expect);
    fs_fixed third = {0, 0};
    for (int i = 0; i < 3; i++)
        fs_fixed_add(&third, fs_fixed_ratio(1, 3));
    assert_true(fabs(fs_fixed_to_double(third) - 1.0) < 1e-15);
}

static void test_i64map(void **state)
{
    (void)state;
    fs_i64map m;
    fs_i64map_init(&m);
    static int vals[5000];
    for (int i = 0; i < 5000; i++)
        fs_i64map_put(&m, (int64_t)i * 60000 - 1000000, &vals[i]);
    for (int i = 0; i < 5000; i += 2)
        assert_ptr_equal(fs_i64map_remove(&m, (int64_t)i * 60000 - 1000000), &vals[i]);
    assert_int_equal(m.count, 2500);
    for (int i = 0; i < 5000; i++)
        assert_ptr_equal(fs_i64map_get(&m, (int64_t)i * 60000 - 1000000), i % 2 ? &vals[i] : NULL);
    fs_i64map_free(&m);
}

static void test_dict(void **state)
{
    (void)state;
    fs_dict d;
    fs_dict_init(&d);
    char name[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "channel-%d", i);
        assert_int_equal(fs_dict_intern(&d, name, strlen(name)), (uint32_t)i);
    }
    assert_int_equal(fs_dict_intern(&d, "channel-7", 9), 7);
    assert_int_equal(fs_dict_find(&d, "nope", 4), UINT32_MAX);
    assert_string_equal(fs_dict_name(&d, 999), "channel-999");
    fs_dict_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tumbling),
        cmocka_unit_test(test_hopping),
        cmocka_unit_test(test_extremes_do_not_overflow),
        cmocka_unit_test(test_fixed_is_order_independent),
        cmocka_unit_test(test_i64map),
        cmocka_unit_test(test_dict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
