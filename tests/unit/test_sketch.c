/* test_sketch.c -- quantile sketch against exact nearest-rank on sorted arrays. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "sketch.h"

static uint64_t rng_state;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uniform01(void)
{
    return (double)((rng() >> 11) + 1) / 9007199254740993.0; /* (0, 1] */
}

static int64_t clamp_double(double x)
{
    if (!(x < 9.2e18))
        return INT64_MAX;
    if (x < 0)
        return 0;
    return (int64_t)x;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* |got - want| <= 1 % of want, computed without overflow. */
static void assert_within_1pct(int64_t got, int64_t want)
{
    long double diff = fabsl((long double)got - (long double)want);
    if (diff > 0.01L * (long double)want) {
        print_error("got %lld want %lld\n", (long long)got, (long long)want);
        fail();
    }
}

/* Checks every percentile 1..100 and a few finer ones against the sorted copy. */
static void check_against_exact(const int64_t *vals, size_t n)
{
    fs_sketch s;
    fs_sketch_init(&s);
    int64_t *sorted = malloc(n * sizeof *sorted);
    assert_non_null(sorted);
    for (size_t i = 0; i < n; i++) {
        fs_sketch_add(&s, vals[i]);
        sorted[i] = vals[i] < 0 ? 0 : vals[i];
    }
    qsort(sorted, n, sizeof *sorted, cmp_i64);
    assert_int_equal(s.count, n);
    assert_true(s.min == sorted[0]);
    assert_true(s.max == sorted[n - 1]);
    for (uint64_t x = 1; x <= 1000; x += (x < 100 ? 1 : 7)) {
        /* q = x/1000; exact rank ceil(x*n/1000) in integers */
        uint64_t rank = (x * n + 999) / 1000;
        int64_t got;
        assert_true(fs_sketch_quantile(&s, (double)x / 1000.0, &got));
        assert_within_1pct(got, sorted[rank - 1]);
    }
    for (uint64_t x = 1; x <= 100; x++) {
        uint64_t rank = (x * n + 99) / 100;
        int64_t got;
        assert_true(fs_sketch_quantile(&s, (double)x / 100.0, &got));
        assert_within_1pct(got, sorted[rank - 1]);
    }
    int64_t got;
    assert_true(fs_sketch_quantile(&s, 1.0, &got));
    assert_true(got == sorted[n - 1]);
    free(sorted);
    fs_sketch_free(&s);
}

static void test_empty(void **state)
{
    (void)state;
    fs_sketch s;
    fs_sketch_init(&s);
    int64_t out = 42;
    assert_false(fs_sketch_quantile(&s, 0.5, &out));
    assert_int_equal(out, 42);
    fs_sketch e;
    fs_sketch_init(&e);
    fs_sketch_merge(&s, &e);
    assert_false(fs_sketch_quantile(&s, 0.5, &out));
    assert_int_equal(s.count, 0);
    fs_sketch_free(&s);
    fs_sketch_free(&s); /* free of a freed sketch is harmless */
}

static void test_single_and_equal(void **state)
{
    (void)state;
    int64_t vals[] = {0, 1, 1023, 1024, 1025, 777777, INT64_MAX - 1, INT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        fs_sketch s;
        fs_sketch_init(&s);
        for (int k = 0; k < 1 + (int)i * 100; k++)
            fs_sketch_add(&s, vals[i]);
        for (double q = 0.01; q <= 1.0; q += 0.01) {
            int64_t got;
            assert_true(fs_sketch_quantile(&s, q, &got));
            assert_true(got == vals[i]); /* clamped to [min, max] == v */
        }
        assert_true(s.sum == (__int128)vals[i] * (1 + (int)i * 100));
        fs_sketch_free(&s);
    }
}

static void test_negative_counts_as_zero(void **state)
{
    (void)state;
    fs_sketch s;
    fs_sketch_init(&s);
    fs_sketch_add(&s, -5);
    fs_sketch_add(&s, INT64_MIN);
    fs_sketch_add(&s, 10);
    int64_t got;
    assert_true(fs_sketch_quantile(&s, 0.5, &got));
    assert_int_equal(got, 0);
    assert_int_equal(s.min, 0);
    assert_int_equal(s.max, 10);
    assert_true(s.sum == 10);
    fs_sketch_free(&s);
}

static void test_exact_below_1024(void **state)
{
    (void)state;
    enum { N = 5000 };
    int64_t vals[N];
    rng_state = 1;
    for (int i = 0; i < N; i++)
        vals[i] = (int64_t)(rng() % FS_SKETCH_EXACT);
    fs_sketch s;
    fs_sketch_init(&s);
    for (int i = 0; i < N; i++)
        fs_sketch_add(&s, vals[i]);
    qsort(vals, N, sizeof vals[0], cmp_i64);
    for (uint64_t x = 1; x <= 100; x++) {
        int64_t got;
        assert_true(fs_sketch_quantile(&s, (double)x / 100.0, &got));
        assert_int_equal(got, vals[(x * N + 99) / 100 - 1]);
    }
    fs_sketch_free(&s);
}

enum { NRAND = 20011 };

static void test_uniform(void **state)
{
    (void)state;
    static int64_t v[NRAND];
    rng_state = 2;
    for (int i = 0; i < NRAND; i++)
        v[i] = (int64_t)(rng() % 10000000);
    check_against_exact(v, NRAND);
    for (int i = 0; i < NRAND; i++)
        v[i] = (int64_t)(rng() >> 1); /* the whole int64 range */
    check_against_exact(v, NRAND);
    check_against_exact(v, 7);
    check_against_exact(v, 1);
}

static void test_lognormal(void **state)
{
    (void)state;
    static int64_t v[NRAND];
    rng_state = 3;
    for (int i = 0; i < NRAND; i++) {
        double z = sqrt(-2.0 * log(uniform01())) * cos(2.0 * M_PI * uniform01());
        v[i] = clamp_double(exp(10.0 + 2.5 * z)); /* median ~22 s, wide */
    }
    check_against_exact(v, NRAND);
}

static void test_heavy_tail(void **state)
{
    (void)state;
    static int64_t v[NRAND];
    rng_state = 4;
    for (int i = 0; i < NRAND; i++)
        v[i] = clamp_double(500.0 / pow(uniform01(), 1.0 / 0.7)); /* Pareto, alpha 0.7 */
    check_against_exact(v, NRAND);
}

static void test_zeros_and_boundaries(void **state)
{
    (void)state;
    static int64_t v[NRAND];
    rng_state = 5;
    for (int i = 0; i < NRAND; i++)
        v[i] = (i % 3 == 0) ? 0 : 1020 + (int64_t)(rng() % 9); /* 1020..1028 */
    check_against_exact(v, NRAND);
    for (int i = 0; i < NRAND; i++)
        v[i] = INT64_MAX - (int64_t)(rng() % 100000000000000ULL);
    check_against_exact(v, NRAND);
    for (int i = 0; i < NRAND; i++)
        v[i] = (rng() & 1) ? INT64_MAX : 1023;
    check_against_exact(v, NRAND);
}

/* Every value of a sorted list must come back within 1 % at its own rank. Values
 * are fed in chunks so that each chunk's ranks are easy to address. */
static void check_each_value(const int64_t *sorted, size_t n)
{
    fs_sketch s;
    fs_sketch_init(&s);
    for (size_t i = 0; i < n; i++)
        fs_sketch_add(&s, sorted[i]);
    for (size_t r = 1; r <= n; r++) {
        int64_t got;
        assert_true(fs_sketch_quantile(&s, (double)r / (double)n, &got));
        assert_within_1pct(got, sorted[r - 1]);
    }
    fs_sketch_free(&s);
}

static void test_every_value_near_bucket_edges(void **state)
{
    (void)state;
    /* all integers 900..200000 in chunks of 500 */
    enum { CH = 500 };
    int64_t chunk[CH];
    for (int64_t base = 900; base < 200000; base += CH) {
        for (int i = 0; i < CH; i++)
            chunk[i] = base + i;
        check_each_value(chunk, CH);
    }
    /* values around every power of gamma, up to INT64_MAX */
    const double gamma = 1.009 / 0.991;
    int64_t *edge = malloc(4096 * 7 * sizeof *edge);
    assert_non_null(edge);
    size_t n = 0;
    for (int i = 300; i < 3000; i++) {
        long double g = powl((long double)gamma, i);
        if (g > 9.2233720368547758e18L)
            break;
        int64_t f = (int64_t)floorl(g);
        for (int64_t d = -3; d <= 3; d++) {
            if ((d > 0 && f > INT64_MAX - d) || f + d < 0)
                continue;
            if (n == 0 || f + d > edge[n - 1]) /* keep sorted and distinct */
                edge[n++] = f + d;
        }
    }
    edge[n++] = INT64_MAX - 1;
    edge[n++] = INT64_MAX;
    for (size_t off = 0; off < n; off += 100)
        check_each_value(edge + off, n - off < 100 ? n - off : 100);
    free(edge);
}

static void assert_same_sketch(fs_sketch *a, fs_sketch *b)
{
    fs_sketch_densify(a);
    fs_sketch_densify(b);
    assert_true(a->count == b->count);
    assert_true(a->min == b->min);
    assert_true(a->max == b->max);
    assert_true(a->sum == b->sum);
    assert_int_equal(a->lo, b->lo);
    assert_int_equal(a->hi, b->hi);
    assert_true(a->hi > a->lo);
    assert_memory_equal(a->buckets + a->lo, b->buckets + b->lo, (a->hi - a->lo) * sizeof(uint64_t));
}

/* Up to FS_SKETCH_FEW values live in an inline list: adds, merges and
 * quantiles must come out as with the counter array from the start. */
static void test_few_values_answer_as_the_array(void **state)
{
    (void)state;
    static const double qs[] = {0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0};
    rng_state = 11;
    for (int trial = 0; trial < 3000; trial++) {
        int n = (int)(rng() % (2 * FS_SKETCH_FEW + 2));
        fs_sketch few, dense, merged;
        fs_sketch_init(&few);
        fs_sketch_init(&dense);
        fs_sketch_init(&merged);
        fs_sketch_densify(&dense);
        for (int i = 0; i < n; i++) {
            int64_t v = i % 2 ? (int64_t)(rng() % 2000) : (int64_t)(rng() % 100000000);
            fs_sketch_add(&few, v);
            fs_sketch_add(&dense, v);
            fs_sketch one;
            fs_sketch_init(&one);
            fs_sketch_add(&one, v);
            fs_sketch_merge(&merged, &one);
            fs_sketch_free(&one);
        }
        assert_int_equal(few.buckets == NULL, n <= FS_SKETCH_FEW);
        for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
            int64_t a = -1, b = -2, c = -3;
            bool ha = fs_sketch_quantile(&few, qs[k], &a);
            bool hb = fs_sketch_quantile(&dense, qs[k], &b);
            bool hc = fs_sketch_quantile(&merged, qs[k], &c);
            assert_int_equal(ha, n > 0);
            assert_int_equal(hb, n > 0);
            assert_int_equal(hc, n > 0);
            if (n > 0) {
                assert_int_equal(a, b);
                assert_int_equal(c, b);
            }
        }
        if (n > 0) {
            assert_same_sketch(&few, &dense);
            assert_same_sketch(&merged, &dense);
        }
        fs_sketch_free(&few);
        fs_sketch_free(&dense);
        fs_sketch_free(&merged);
    }
}

static void test_merge_equals_whole(void **state)
{
    (void)state;
    enum { N = 30000, PARTS = 7 };
    static int64_t v[N];
    rng_state = 6;
    for (int i = 0; i < N; i++) {
        switch (i % 4) {
        case 0:
            v[i] = (int64_t)(rng() % 1500);
            break;
        case 1:
            v[i] = (int64_t)(rng() % 100000000);
            break;
        case 2:
            v[i] = (int64_t)(rng() >> 1);
            break;
        default:
            v[i] = -(int64_t)(rng() % 10);
            break;
        }
    }
    fs_sketch whole;
    fs_sketch_init(&whole);
    for (int i = 0; i < N; i++)
        fs_sketch_add(&whole, v[i]);

    /* split by a random assignment, merge in two different orders */
    fs_sketch part[PARTS];
    for (int p = 0; p < PARTS; p++)
        fs_sketch_init(&part[p]);
    for (int i = 0; i < N; i++)
        fs_sketch_add(&part[rng() % PARTS], v[i]);
    fs_sketch fwd, rev;
    fs_sketch_init(&fwd);
    fs_sketch_init(&rev);
    for (int p = 0; p < PARTS; p++) {
        fs_sketch_merge(&fwd, &part[p]);
        fs_sketch_merge(&rev, &part[PARTS - 1 - p]);
    }
    assert_same_sketch(&whole, &fwd);
    assert_same_sketch(&whole, &rev);

    /* a tree of merges, including merging into a sketch that already has data */
    fs_sketch left;
    fs_sketch_init(&left);
    for (int i = 0; i < N / 2; i++)
        fs_sketch_add(&left, v[i]);
    fs_sketch right;
    fs_sketch_init(&right);
    for (int i = N / 2; i < N; i++)
        fs_sketch_add(&right, v[i]);
    fs_sketch_merge(&right, &left);
    assert_same_sketch(&whole, &right);

    for (double q = 0.05; q <= 1.0; q += 0.05) {
        int64_t a, b;
        assert_true(fs_sketch_quantile(&whole, q, &a));
        assert_true(fs_sketch_quantile(&rev, q, &b));
        assert_true(a == b);
    }
    for (int p = 0; p < PARTS; p++)
        fs_sketch_free(&part[p]);
    fs_sketch_free(&whole);
    fs_sketch_free(&fwd);
    fs_sketch_free(&rev);
    fs_sketch_free(&left);
    fs_sketch_free(&right);
}

static void test_sum_is_exact(void **state)
{
    (void)state;
    fs_sketch s;
    fs_sketch_init(&s);
    for (int i = 0; i < 1000; i++)
        fs_sketch_add(&s, INT64_MAX);
    __int128 want = (__int128)INT64_MAX * 1000;
    assert_true(s.sum == want);
    fs_sketch_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_single_and_equal),
        cmocka_unit_test(test_negative_counts_as_zero),
        cmocka_unit_test(test_exact_below_1024),
        cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_lognormal),
        cmocka_unit_test(test_heavy_tail),
        cmocka_unit_test(test_zeros_and_boundaries),
        cmocka_unit_test(test_every_value_near_bucket_edges),
        cmocka_unit_test(test_merge_equals_whole),
        cmocka_unit_test(test_few_values_answer_as_the_array),
        cmocka_unit_test(test_sum_is_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
