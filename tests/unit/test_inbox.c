/* test_inbox.c -- the stage's inbox (src/stage/inbox.h): what is posted is
 * taken once, in posting order, the first failure wins until it is taken,
 * and posts from several threads while the loop takes lose nothing. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "inbox.h"

static void test_take_in_order(void **state)
{
    (void)state;
    fs_inbox in;
    fs_inbox_init(&in);
    for (uint64_t i = 0; i < 200; i++) /* past the first growth */
        fs_inbox_post_ack(&in, i << 1 | (i & 1));
    fs_inbox_step st = {.step = {.records_end = 7, .final = true}, .src_ns = 99};
    fs_inbox_post_step(&in, &st);
    st.step.records_end = 8;
    fs_inbox_post_step(&in, &st);

    fs_inbox_mail m;
    fs_inbox_take(&in, &m);
    assert_int_equal(m.n_acks, 200);
    for (uint64_t i = 0; i < 200; i++)
        assert_int_equal(m.acks[i], i << 1 | (i & 1));
    assert_int_equal(m.n_steps, 2);
    assert_int_equal(m.steps[0].step.records_end, 7);
    assert_true(m.steps[0].step.final);
    assert_int_equal(m.steps[0].src_ns, 99);
    assert_int_equal(m.steps[1].step.records_end, 8);
    assert_false(m.failed);
    fs_inbox_mail_free(&m);

    fs_inbox_take(&in, &m); /* taken: empty now */
    assert_int_equal(m.n_acks, 0);
    assert_int_equal(m.n_steps, 0);
    assert_false(m.failed);
    fs_inbox_mail_free(&m);

    fs_inbox_post_ack(&in, 5); /* and usable again */
    fs_inbox_take(&in, &m);
    assert_int_equal(m.n_acks, 1);
    assert_int_equal(m.acks[0], 5);
    fs_inbox_mail_free(&m);
    fs_inbox_free(&in);
}

static void test_first_failure_wins(void **state)
{
    (void)state;
    fs_inbox in;
    fs_inbox_init(&in);
    fs_inbox_post_failure(&in, "delivery to out failed: Broker: timed out");
    fs_inbox_post_failure(&in, "the second");
    fs_inbox_post_ack(&in, 2); /* failures and acks travel together */
    fs_inbox_mail m;
    fs_inbox_take(&in, &m);
    assert_true(m.failed);
    assert_string_equal(m.failure, "delivery to out failed: Broker: timed out");
    assert_int_equal(m.n_acks, 1);
    fs_inbox_mail_free(&m);

    fs_inbox_take(&in, &m); /* taken with the mail */
    assert_false(m.failed);
    fs_inbox_mail_free(&m);

    char long_why[1000];
    memset(long_why, 'x', sizeof(long_why) - 1);
    long_why[sizeof(long_why) - 1] = '\0';
    fs_inbox_post_failure(&in, long_why); /* a later failure is kept again, truncated */
    fs_inbox_take(&in, &m);
    assert_true(m.failed);
    assert_int_equal(strlen(m.failure), FS_INBOX_FAILURE - 1);
    fs_inbox_mail_free(&m);
    fs_inbox_free(&in);
}

enum { POSTERS = 4, PER_POSTER = 20000 };

typedef struct poster {
    fs_inbox *in;
    uint64_t id;
} poster;

static void *post_many(void *arg)
{
    poster *p = arg;
    for (uint64_t i = 0; i < PER_POSTER; i++) {
        fs_inbox_post_ack(p->in, p->id * PER_POSTER + i);
        if (i % 1000 == 0) {
            fs_inbox_step st = {.step = {.records_end = i}, .src_ns = p->id};
            fs_inbox_post_step(p->in, &st);
        }
    }
    return NULL;
}

/* Each poster's acks arrive in its own order, none lost or repeated, while
 * the loop (this thread) takes concurrently. */
static void test_concurrent_posts(void **state)
{
    (void)state;
    fs_inbox in;
    fs_inbox_init(&in);
    pthread_t th[POSTERS];
    poster ps[POSTERS];
    for (uint64_t t = 0; t < POSTERS; t++) {
        ps[t] = (poster){&in, t};
        assert_int_equal(pthread_create(&th[t], NULL, post_many, &ps[t]), 0);
    }
    uint64_t next[POSTERS] = {0}, acks = 0, steps = 0;
    bool joined = false;
    while (!joined || acks < POSTERS * PER_POSTER) {
        if (acks == POSTERS * PER_POSTER) {
            for (int t = 0; t < POSTERS; t++)
                pthread_join(th[t], NULL);
            joined = true;
        }
        fs_inbox_mail m;
        fs_inbox_take(&in, &m);
        for (size_t i = 0; i < m.n_acks; i++) {
            uint64_t t = m.acks[i] / PER_POSTER;
            assert_true(t < POSTERS);
            assert_int_equal(m.acks[i] % PER_POSTER, next[t]);
            next[t]++;
        }
        acks += m.n_acks;
        steps += m.n_steps;
        fs_inbox_mail_free(&m);
    }
    assert_int_equal(acks, POSTERS * PER_POSTER);
    assert_int_equal(steps, POSTERS * PER_POSTER / 1000);
    fs_inbox_free(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_take_in_order),
        cmocka_unit_test(test_first_failure_wins),
        cmocka_unit_test(test_concurrent_posts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
