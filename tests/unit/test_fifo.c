/* test_fifo.c -- the growable FIFO (src/base/fifo.h): order is kept across the
 * moves to the front and the growths, and a queue drained as fast as it
 * fills does not grow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fifo.h"

typedef struct item {
    uint64_t n;
    char pad[13]; /* an odd size: indexing must use the element size */
} item;

static void push(fs_fifo *f, uint64_t n)
{
    ((item *)fs_fifo_push(f))->n = n;
}

static uint64_t pop(fs_fifo *f)
{
    uint64_t n = ((item *)fs_fifo_front(f))->n;
    fs_fifo_pop(f);
    return n;
}

static void test_order_across_moves_and_growth(void **state)
{
    (void)state;
    fs_fifo f;
    fs_fifo_init(&f, sizeof(item));
    assert_null(fs_fifo_front(&f));
    uint64_t next_in = 0, next_out = 0;
    for (int round = 0; round < 50; round++) { /* push 3, pop 2: head wanders, len grows */
        for (int i = 0; i < 3; i++)
            push(&f, next_in++);
        for (int i = 0; i < 2; i++)
            assert_int_equal(pop(&f), next_out++);
        for (size_t i = 0; i < f.len; i++)
            assert_int_equal(((item *)fs_fifo_at(&f, i))->n, next_out + i);
    }
    while (f.len)
        assert_int_equal(pop(&f), next_out++);
    assert_int_equal(next_out, next_in);
    fs_fifo_free(&f);
}

static void test_steady_queue_keeps_its_size(void **state)
{
    (void)state;
    fs_fifo f;
    fs_fifo_init(&f, sizeof(item));
    for (uint64_t i = 0; i < 10; i++)
        push(&f, i);
    size_t cap = f.cap;
    for (uint64_t i = 10; i < 100000; i++) { /* one in, one out: 10 live at most */
        push(&f, i);
        assert_int_equal(pop(&f), i - 10);
    }
    assert_int_equal(f.cap, cap);
    fs_fifo_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_across_moves_and_growth),
        cmocka_unit_test(test_steady_queue_keeps_its_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
