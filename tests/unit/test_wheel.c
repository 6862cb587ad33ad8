/* The timing wheel (src/base/wheel.h) on its own: every pop hands out exactly the
 * timers whose time is <= `through` (as a set: the order is free), cancel,
 * late adds, far-future and INT64 extremes, and a long randomized run
 * against a plain array as the reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "wheel.h"

#define MAX_NODES 4096

typedef struct nodes {
    fs_wheel_link link[MAX_NODES];
    int64_t expiry[MAX_NODES];
    char in[MAX_NODES]; /* the reference: is node i in the wheel? */
} nodes;

static fs_wheel_link *link_cb(void *ctx, uint32_t n)
{
    return &((nodes *)ctx)->link[n];
}

static int64_t expiry_cb(void *ctx, uint32_t n)
{
    return ((nodes *)ctx)->expiry[n];
}

static void prefetch_cb(void *ctx, uint32_t n)
{
    __builtin_prefetch(&((nodes *)ctx)->link[n]);
}

static nodes *setup_wheel(fs_wheel *w)
{
    nodes *ns = calloc(1, sizeof *ns);
    assert_non_null(ns);
    for (uint32_t i = 0; i < MAX_NODES; i++)
        ns->link[i] = (fs_wheel_link){FS_WHEEL_NONE, FS_WHEEL_NONE};
    fs_wheel_init(w, (fs_wheel_ops){link_cb, expiry_cb, prefetch_cb, ns});
    return ns;
}

static void add(fs_wheel *w, nodes *ns, uint32_t n, int64_t t)
{
    ns->expiry[n] = t;
    ns->in[n] = 1;
    fs_wheel_add(w, n, t);
}

static void cancel(fs_wheel *w, nodes *ns, uint32_t n)
{
    ns->in[n] = 0;
    fs_wheel_cancel(w, n);
    assert_false(fs_wheel_linked(&ns->link[n]));
}

/* Pops everything due by `through` and checks it is exactly the reference's
 * due set; returns how many fired. */
static uint32_t pop_and_check(fs_wheel *w, nodes *ns, int64_t through)
{
    static char fired[MAX_NODES];
    memset(fired, 0, sizeof fired);
    uint32_t n, count = 0;
    while ((n = fs_wheel_pop(w, through)) != FS_WHEEL_NONE) {
        assert_true(n < MAX_NODES);
        assert_true(ns->in[n]);
        assert_true(ns->expiry[n] <= through);
        assert_false(fired[n]);
        assert_false(fs_wheel_linked(&ns->link[n]));
        fired[n] = 1;
        ns->in[n] = 0;
        count++;
    }
    for (uint32_t i = 0; i < MAX_NODES; i++)
        if (ns->in[i]) /* left in the wheel: not due yet */
            assert_true(ns->expiry[i] > through);
    return count;
}

static void test_fires_due_timers_only(void **state)
{
    (void)state;
    fs_wheel w;
    nodes *ns = setup_wheel(&w);
    for (uint32_t i = 0; i < 1000; i++)
        add(&w, ns, i, 1000 + (int64_t)((i * 7919u) % 100000u));
    assert_int_equal(pop_and_check(&w, ns, 999), 0);
    assert_int_equal(pop_and_check(&w, ns, 1000), 1); /* i = 0 */
    uint32_t total = 1;
    for (int64_t t = 1000; t <= 101000; t += 777)
        total += pop_and_check(&w, ns, t);
    total += pop_and_check(&w, ns, 100999); /* the last one */
    assert_int_equal(total, 1000);
    assert_int_equal(fs_wheel_count(&w), 0);
    fs_wheel_destroy(&w);
    free(ns);
}

static void test_cancel(void **state)
{
    (void)state;
    fs_wheel w;
    nodes *ns = setup_wheel(&w);
    for (uint32_t i = 0; i < 300; i++)
        add(&w, ns, i, (int64_t)i * 1000);
    for (uint32_t i = 0; i < 300; i += 3)
        cancel(&w, ns, i);
    assert_int_equal(fs_wheel_count(&w), 200);
    assert_int_equal(pop_and_check(&w, ns, 150000), 100); /* 1..150, minus multiples of 3 */
    cancel(&w, ns, 151); /* after the cursor moved: a cascaded timer */
    assert_int_equal(pop_and_check(&w, ns, INT64_MAX), 99);
    /* a cancelled node can be added again */
    add(&w, ns, 0, 5);
    assert_int_equal(pop_and_check(&w, ns, INT64_MAX), 1);
    fs_wheel_destroy(&w);
    free(ns);
}

static void test_late_add_fires_at_next_pop(void **state)
{
    (void)state;
    fs_wheel w;
    nodes *ns = setup_wheel(&w);
    add(&w, ns, 1, 1000000);
    assert_int_equal(pop_and_check(&w, ns, 1000000), 1); /* the cursor is at 1000000 now */
    add(&w, ns, 2, 10);                                  /* long passed */
    add(&w, ns, 3, 1000000);                             /* at the cursor */
    assert_int_equal(pop_and_check(&w, ns, 1000001), 2);
    fs_wheel_destroy(&w);
    free(ns);
}

static void test_extremes_and_far_future(void **state)
{
    (void)state;
    fs_wheel w;
    nodes *ns = setup_wheel(&w);
    const int64_t times[] = {INT64_MIN, INT64_MIN + 1,  -1, 0, 1, INT64_MAX / 2, INT64_MAX - 1,
                             INT64_MAX, 1732280400000LL};
    for (uint32_t i = 0; i < sizeof times / sizeof *times; i++)
        add(&w, ns, i, times[i]);
    assert_int_equal(pop_and_check(&w, ns, INT64_MIN), 1);
    assert_int_equal(pop_and_check(&w, ns, -2), 1);
    assert_int_equal(pop_and_check(&w, ns, 0), 2);
    assert_int_equal(pop_and_check(&w, ns, 1732280399999LL), 1);
    assert_int_equal(pop_and_check(&w, ns, INT64_MAX - 2), 2);
    add(&w, ns, 20, 1732280400000LL + 7 * 86400000LL); /* added far behind the cursor */
    assert_int_equal(pop_and_check(&w, ns, INT64_MAX - 1), 2);
    assert_int_equal(pop_and_check(&w, ns, INT64_MAX), 1);
    assert_int_equal(fs_wheel_count(&w), 0);
    fs_wheel_destroy(&w);
    free(ns);
}

static uint64_t rng(uint64_t *x)
{
    *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
    return *x;
}

/* Times around a moving clock, as journeys have (a start near the clock
 * plus one of a few windows), with some outliers. */
static int64_t random_time(uint64_t *x, int64_t clock)
{
    static const int64_t windows[] = {0, 1, 63, 64, 4096, 3600000, 604800000, 2592000000};
    uint64_t r = rng(x);
    switch (r % 16) {
    case 0:
        return INT64_MAX;
    case 1:
        return INT64_MIN + (int64_t)(r >> 40);
    case 2:
        return clock - (int64_t)((r >> 20) % 100000); /* already passed */
    default:
        return clock + (int64_t)((r >> 24) % 5000) + windows[(r >> 8) % 8];
    }
}

static void test_random_against_reference(void **state)
{
    (void)state;
    fs_wheel w;
    nodes *ns = setup_wheel(&w);
    uint64_t x = 88172645463325252ull;
    int64_t clock = 1732280400000LL;
    uint64_t fired = 0;
    for (int round = 0; round < 3000; round++) {
        for (int op = 0; op < 40; op++) {
            uint32_t n = (uint32_t)(rng(&x) % MAX_NODES);
            if (ns->in[n])
                cancel(&w, ns, n);
            else
                add(&w, ns, n, random_time(&x, clock));
        }
        clock += (int64_t)(rng(&x) % (round % 100 == 99 ? 400000000 : 20000));
        fired += pop_and_check(&w, ns, clock - 1);
    }
    uint32_t left = 0;
    for (uint32_t i = 0; i < MAX_NODES; i++)
        left += ns->in[i] != 0;
    assert_int_equal(fs_wheel_count(&w), left);
    assert_true(fired > 10000);
    pop_and_check(&w, ns, INT64_MAX);
    assert_int_equal(fs_wheel_count(&w), 0);
    fs_wheel_destroy(&w);
    free(ns);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fires_due_timers_only),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_late_add_fires_at_next_pop),
        cmocka_unit_test(test_extremes_and_far_future),
        cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
