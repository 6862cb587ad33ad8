/* test_commit.c -- which offsets may be committed (src/kafka/commit.h).
 *
 * Windows are tumbling, 1000 ms. Each case feeds batch snapshots, finished
 * steps and acknowledgements in the order the stage sees them and checks
 * what becomes safe, worked out by hand from the rule in commit.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "commit.h"

static const fs_window_spec win = {1000, 1000, 1};

static void test_acks_contiguous(void **state)
{
    (void)state;
    fs_acks a;
    fs_acks_init(&a);
    fs_acks_mark(&a, 1);
    assert_int_equal(a.done, 0); /* 0 is missing */
    fs_acks_mark(&a, 0);
    assert_int_equal(a.done, 2);
    for (uint64_t n = 1000; n > 2; n--) /* far ahead: the ring grows */
        fs_acks_mark(&a, n);
    assert_int_equal(a.done, 2);
    fs_acks_mark(&a, 2);
    assert_int_equal(a.done, 1001);
    fs_acks_mark(&a, 5); /* already done: ignored */
    assert_int_equal(a.done, 1001);
    fs_acks_free(&a);
}

static int64_t safe_of(fs_commit_plan *p, uint32_t part)
{
    uint32_t n;
    const int64_t *safe = fs_commit_safe(p, &n);
    return part < n ? safe[part] : -1;
}

/* Batch 0 (offsets up to 10) and batch 1 (up to 20) of partition 0; a step
 * cut in batch 1 with max_ts 1500 closes [0,1000). Offsets before batch 1
 * hold events up to ts 1500, so they wait for [1000,2000) as well. */
static void test_waits_for_window_of_max_ts(void **state)
{
    (void)state;
    fs_commit_plan *p = fs_commit_plan_new(&win);
    int64_t a[1] = {10}, b[1] = {20};
    fs_commit_batch(p, 0, a, 1);
    fs_commit_batch(p, 1, b, 1);
    fs_commit_step s1 = {.records_end = 2, .src_seq = 1, .wm = 1000, .max_ts = 1500};
    fs_commit_step_done(p, &s1);
    assert_int_equal(safe_of(p, 0), -1); /* records 0 and 1 not acknowledged */
    fs_commit_record_acked(p, 1);
    assert_int_equal(safe_of(p, 0), -1);
    fs_commit_record_acked(p, 0);
    assert_int_equal(safe_of(p, 0), -1); /* needs wm 2000 */
    assert_int_equal(fs_commit_acked_wm(p), 1000);
    fs_commit_step s2 = {.records_end = 3, .src_seq = 1, .wm = 2000, .max_ts = 2100};
    fs_commit_step_done(p, &s2);
    assert_int_equal(safe_of(p, 0), -1);
    fs_commit_record_acked(p, 2);
    assert_int_equal(safe_of(p, 0), 10); /* batch 0's offsets; batch 1 still open */
    fs_commit_plan_free(p);
}

/* With a state topic, only acknowledged checkpoints commit: a step that
 * closes windows commits nothing, a checkpoint heading batch 2 commits the
 * offsets after batch 1 once its records (state included) are acknowledged,
 * and the final step of a finished input commits nothing beyond it. */
static void test_checkpoints_only(void **state)
{
    (void)state;
    fs_commit_plan *p = fs_commit_plan_new(&win);
    fs_commit_plan_use_checkpoints(p);
    int64_t a[1] = {10}, b[1] = {20}, c[1] = {30};
    fs_commit_batch(p, 0, a, 1);
    fs_commit_batch(p, 1, b, 1);
    fs_commit_batch(p, 2, c, 1);
    fs_commit_step closes = {.records_end = 1, .src_seq = 1, .wm = 5000, .max_ts = 5000};
    fs_commit_step_done(p, &closes);
    fs_commit_record_acked(p, 0);
    assert_int_equal(safe_of(p, 0), -1); /* windows alone never commit */
    fs_commit_step ckpt = {.records_end = 3, .src_seq = 2, .wm = 5000, .checkpoint = true};
    fs_commit_step_done(p, &ckpt);
    fs_commit_record_acked(p, 1);
    assert_int_equal(safe_of(p, 0), -1); /* record 2 (its state) not acknowledged */
    fs_commit_record_acked(p, 2);
    assert_int_equal(safe_of(p, 0), 20);
    fs_commit_step fin = {.records_end = 3, .src_seq = 2, .wm = INT64_MAX, .final = true};
    fs_commit_step_done(p, &fin);
    assert_int_equal(safe_of(p, 0), 20);
    fs_commit_plan_free(p);
}

/* Dead letters of earlier batches must be acknowledged too. */
static void test_waits_for_dead_letters(void **state)
{
    (void)state;
    fs_commit_plan *p = fs_commit_plan_new(&win);
    int64_t a[2] = {5, 7}, b[2] = {9, 7};
    fs_commit_batch(p, 0, a, 2);
    fs_commit_batch(p, 1, b, 2);
    fs_commit_step s = {
        .records_end = 0, .dead_letters_end = 2, .src_seq = 1, .wm = 5000, .max_ts = 100};
    fs_commit_step_done(p, &s);
    fs_commit_dead_letter_acked(p, 0);
    assert_int_equal(safe_of(p, 0), -1);
    fs_commit_dead_letter_acked(p, 1);
    assert_int_equal(safe_of(p, 0), 5);
    assert_int_equal(safe_of(p, 1), 7);
    fs_commit_plan_free(p);
}

/* The final step of a finished input commits everything consumed. */
static void test_final_commits_all(void **state)
{
    (void)state;
    fs_commit_plan *p = fs_commit_plan_new(&win);
    int64_t a[1] = {10}, b[1] = {20};
    fs_commit_batch(p, 0, a, 1);
    fs_commit_batch(p, 1, b, 1);
    fs_commit_step s = {
        .records_end = 1, .src_seq = 1, .wm = INT64_MAX, .max_ts = 99999, .final = true};
    fs_commit_step_done(p, &s);
    assert_int_equal(safe_of(p, 0), -1);
    fs_commit_record_acked(p, 0);
    assert_int_equal(safe_of(p, 0), 20);
    fs_commit_plan_free(p);
}

/* A step cut in the first batch has nothing before it to commit. */
static void test_first_batch_step(void **state)
{
    (void)state;
    fs_commit_plan *p = fs_commit_plan_new(&win);
    int64_t a[1] = {10};
    fs_commit_batch(p, 0, a, 1);
    fs_commit_step s = {.src_seq = 0, .wm = 3000, .max_ts = 3000};
    fs_commit_step_done(p, &s);
    assert_int_equal(safe_of(p, 0), -1);
    assert_int_equal(fs_commit_acked_wm(p), 3000);
    fs_commit_plan_free(p);
}

/* A reassigned partition restarts from its commit: older offsets of it must
 * never be committed afterwards. */
static void test_forget_partition(void **state)
{
    (void)state;
    fs_commit_plan *p = fs_commit_plan_new(&win);
    int64_t a[2] = {100, 50}, b[2] = {200, 60};
    fs_commit_batch(p, 0, a, 2);
    fs_commit_batch(p, 1, b, 2);
    fs_commit_forget(p, 0);
    fs_commit_step s = {.src_seq = 2, .wm = INT64_MAX, .max_ts = 0, .final = true};
    fs_commit_step_done(p, &s);
    assert_int_equal(safe_of(p, 0), -1);
    assert_int_equal(safe_of(p, 1), 60);
    fs_commit_plan_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acks_contiguous),
        cmocka_unit_test(test_waits_for_window_of_max_ts),
        cmocka_unit_test(test_waits_for_dead_letters),
        cmocka_unit_test(test_final_commits_all),
        cmocka_unit_test(test_checkpoints_only),
        cmocka_unit_test(test_first_batch_step),
        cmocka_unit_test(test_forget_partition),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
