/* test_latency.c -- close -> acknowledged latency (src/stage/latency.h):
 * which steps become samples when, what a sample measures, and that the
 * sketch and the /metrics histogram see the same samples. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "latency.h"

#define MS 1000000ull /* ns */

/* Within the sketch's 1 %. */
static void assert_about(double got, double want)
{
    assert_true(got >= want * 0.99 && got <= want * 1.01);
}

static void test_empty(void **state)
{
    (void)state;
    fs_ack_latency l;
    fs_ack_latency_init(&l);
    assert_true(fs_ack_latency_ms(&l, 0.5) == 0);
    fs_ack_latency_settle(&l, 1000, 5 * MS); /* nothing pending: nothing happens */
    assert_int_equal(l.us.count, 0);
    assert_int_equal(l.hist.count, 0);
    fs_ack_latency_free(&l);
}

/* A step becomes a sample once every record below its records_end is acked,
 * not before, and the sample is now minus its batch's publication time. */
static void test_settles_in_order(void **state)
{
    (void)state;
    fs_ack_latency l;
    fs_ack_latency_init(&l);
    fs_ack_latency_push(&l, 10, 100 * MS);
    fs_ack_latency_push(&l, 20, 130 * MS);
    fs_ack_latency_settle(&l, 9, 150 * MS); /* record 9 still in flight */
    assert_int_equal(l.us.count, 0);
    fs_ack_latency_settle(&l, 15, 150 * MS); /* the first step only */
    assert_int_equal(l.us.count, 1);
    assert_int_equal(l.us.min, 50000); /* 50 ms, in µs */
    assert_about(fs_ack_latency_ms(&l, 1), 50);
    fs_ack_latency_settle(&l, 20, 200 * MS);
    assert_int_equal(l.us.count, 2);
    assert_int_equal(l.us.max, 70000);
    assert_about(fs_ack_latency_ms(&l, 1), 70);
    assert_about(fs_ack_latency_ms(&l, 0.5), 50);
    assert_int_equal(l.hist.count, 2);
    assert_true(l.hist.sum_seconds > 0.1199 && l.hist.sum_seconds < 0.1201);
    assert_int_equal(l.hist.bucket[5], 1);     /* 50 ms: (0.025, 0.05] */
    assert_int_equal(l.hist.bucket[6], 1);     /* 70 ms: (0.05, 0.1] */
    fs_ack_latency_settle(&l, 1000, 300 * MS); /* nothing left */
    assert_int_equal(l.us.count, 2);
    fs_ack_latency_free(&l);
}

/* A step that adds no record waits for nothing: no sample, and it does not
 * replace the earlier step's time. */
static void test_step_without_records(void **state)
{
    (void)state;
    fs_ack_latency l;
    fs_ack_latency_init(&l);
    fs_ack_latency_push(&l, 0, 1 * MS); /* no record at all yet */
    fs_ack_latency_push(&l, 5, 10 * MS);
    fs_ack_latency_push(&l, 5, 40 * MS);
    fs_ack_latency_push(&l, 3, 40 * MS);
    fs_ack_latency_settle(&l, 5, 30 * MS);
    assert_int_equal(l.us.count, 1);
    assert_int_equal(l.us.min, 20000);
    fs_ack_latency_free(&l);
}

/* A clock read before the publication time (another core's clock) counts
 * as 0, not as a huge unsigned difference. */
static void test_clock_behind(void **state)
{
    (void)state;
    fs_ack_latency l;
    fs_ack_latency_init(&l);
    fs_ack_latency_push(&l, 1, 500 * MS);
    fs_ack_latency_settle(&l, 1, 499 * MS);
    assert_int_equal(l.us.count, 1);
    assert_int_equal(l.us.max, 0);
    assert_int_equal(l.hist.bucket[0], 1);
    fs_ack_latency_free(&l);
}

/* Many steps, acknowledged in chunks: every one is a sample and the
 * quantiles are those of the samples (within the sketch's 1 %). */
static void test_quantiles(void **state)
{
    (void)state;
    fs_ack_latency l;
    fs_ack_latency_init(&l);
    uint64_t now = 10000 * MS;
    for (uint64_t i = 1; i <= 1000; i++) /* step i: i records, i ms before now */
        fs_ack_latency_push(&l, i, now - i * MS);
    for (uint64_t acked = 0; acked <= 1000; acked += 7)
        fs_ack_latency_settle(&l, acked, now);
    fs_ack_latency_settle(&l, 1000, now);
    assert_int_equal(l.us.count, 1000);
    assert_int_equal(l.hist.count, 1000);
    double p50 = fs_ack_latency_ms(&l, 0.5), p99 = fs_ack_latency_ms(&l, 0.99);
    assert_about(p50, 500);
    assert_about(p99, 990);
    fs_ack_latency_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_settles_in_order),
        cmocka_unit_test(test_step_without_records),
        cmocka_unit_test(test_clock_behind),
        cmocka_unit_test(test_quantiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
