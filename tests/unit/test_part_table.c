/* test_part_table.c -- the Kafka stage's table of input partitions
 * (src/stage/part_table.h): growth, assignment and revocation, and the
 * decisions the loop takes from it (idle, at its end, all at their end,
 * the offsets snapshot after a batch). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "part_table.h"

static void test_growth(void **state)
{
    (void)state;
    fs_part_table t = {0};
    assert_false(fs_part_table_all_at_eof(&t)); /* nothing assigned */
    fs_part_table_assign(&t, 2, 100);
    fs_part_message(fs_part_table_at(&t, 2), 41, 150);
    assert_int_equal(t.n, 3);
    for (uint32_t p = 0; p < 2; p++) { /* the gap: unknown partitions */
        assert_false(t.v[p].assigned);
        assert_int_equal(t.v[p].next, -1);
        assert_int_equal(t.v[p].committed, -1);
    }
    fs_part *ps = fs_part_table_at(&t, 999); /* grows far: earlier entries kept */
    assert_int_equal(t.n, 1000);
    assert_false(ps->assigned);
    assert_int_equal(ps->next, -1);
    assert_true(t.v[2].assigned);
    assert_int_equal(t.v[2].next, 42);
    assert_int_equal(t.v[2].last_ms, 150);
    assert_ptr_equal(fs_part_table_at(&t, 5), &t.v[5]); /* no growth below n */
    assert_int_equal(t.n, 1000);
    fs_part_table_free(&t);
    assert_int_equal(t.n, 0);
}

/* (Re)assignment forgets everything: consumption restarts from the commit. */
static void test_assign_and_revoke(void **state)
{
    (void)state;
    fs_part_table t = {0};
    assert_false(fs_part_table_revoke(&t, 3)); /* never seen: nothing to do */
    assert_int_equal(t.n, 0);
    fs_part *ps = fs_part_table_assign(&t, 3, 1000);
    assert_true(ps->assigned);
    assert_int_equal(ps->last_ms, 1000);
    fs_part_message(ps, 10, 1200);
    ps->committed = 5;
    assert_true(fs_part_reach_eof(ps));
    assert_true(fs_part_idle_due(ps, 99999, 10));

    assert_true(fs_part_table_revoke(&t, 3));
    assert_false(t.v[3].assigned);
    assert_int_equal(t.v[3].committed, 5); /* kept until a new assignment */
    assert_false(fs_part_table_revoke(&t, 4));

    ps = fs_part_table_assign(&t, 3, 5000);
    assert_true(ps->assigned);
    assert_false(ps->at_eof);
    assert_false(ps->idle);
    assert_int_equal(ps->next, -1);
    assert_int_equal(ps->committed, -1);
    assert_int_equal(ps->last_ms, 5000);
    fs_part_table_free(&t);
}

/* Idle once no message came for the timeout (loop time, inclusive), said
 * once, and again only after a message; never for a partition not assigned. */
static void test_idle(void **state)
{
    (void)state;
    fs_part_table t = {0};
    fs_part *ps = fs_part_table_assign(&t, 0, 1000);
    assert_false(fs_part_idle_due(ps, 1000, 500));
    assert_false(fs_part_idle_due(ps, 1499, 500));
    assert_true(fs_part_idle_due(ps, 1500, 500)); /* a new partition, no message yet */
    assert_true(ps->idle);
    assert_false(fs_part_idle_due(ps, 9000, 500)); /* already idle */
    fs_part_message(ps, 0, 9000);
    assert_false(ps->idle);
    assert_false(fs_part_idle_due(ps, 9499, 500));
    assert_true(fs_part_idle_due(ps, 9500, 500));

    fs_part *other = fs_part_table_at(&t, 1); /* seen, not assigned */
    assert_false(fs_part_idle_due(other, 1000000, 500));
    assert_false(other->idle);
    fs_part_table_free(&t);
}

/* The end is news once per stretch without messages, and only for an
 * assigned partition; a message clears it. */
static void test_eof(void **state)
{
    (void)state;
    fs_part_table t = {0};
    fs_part_table_assign(&t, 0, 0);
    fs_part_table_assign(&t, 1, 0);
    fs_part *stray = fs_part_table_at(&t, 2); /* seen, never assigned */
    fs_part *a = &t.v[0];                     /* taken after the table last grew */
    assert_false(fs_part_reach_eof(stray));
    assert_true(stray->at_eof);
    assert_false(fs_part_table_all_at_eof(&t)); /* partition 1 is not at its end */

    assert_true(fs_part_reach_eof(a));
    assert_false(fs_part_reach_eof(a)); /* said already */
    assert_true(fs_part_reach_eof(&t.v[1]));
    assert_true(fs_part_table_all_at_eof(&t));

    fs_part_message(a, 7, 10); /* more came in */
    assert_false(a->at_eof);
    assert_false(fs_part_table_all_at_eof(&t));
    assert_true(fs_part_reach_eof(a));
    assert_true(fs_part_table_all_at_eof(&t));

    fs_part_table_revoke(&t, 0); /* only the assigned ones count */
    t.v[0].at_eof = false;
    assert_true(fs_part_table_all_at_eof(&t));
    fs_part_table_revoke(&t, 1);
    assert_false(fs_part_table_all_at_eof(&t)); /* none assigned */
    fs_part_table_free(&t);
}

/* The snapshot for fs_commit_batch: next offsets of assigned partitions. */
static void test_next_snapshot(void **state)
{
    (void)state;
    fs_part_table t = {0};
    fs_part_table_assign(&t, 0, 0);
    fs_part_table_assign(&t, 1, 0);
    fs_part_table_assign(&t, 3, 0);
    fs_part_message(&t.v[0], 99, 1);
    fs_part_message(&t.v[3], 4, 1);
    fs_part_message(&t.v[1], 20, 1);
    fs_part_table_revoke(&t, 1); /* consumed, then revoked: no longer ours */
    const int64_t *next = fs_part_table_next(&t);
    assert_int_equal(t.n, 4);
    assert_int_equal(next[0], 100);
    assert_int_equal(next[1], -1);
    assert_int_equal(next[2], -1); /* never seen */
    assert_int_equal(next[3], 5);
    fs_part_table_assign(&t, 1, 2); /* assigned again, no message yet */
    next = fs_part_table_next(&t);
    assert_int_equal(next[1], -1);
    fs_part_table_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_growth),        cmocka_unit_test(test_assign_and_revoke),
        cmocka_unit_test(test_idle),          cmocka_unit_test(test_eof),
        cmocka_unit_test(test_next_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
