/* The shared journey table under concurrency: several owners insert, update
 * and remove their own customers (those fs_journey_table_owner assigns them)
 * while a reader looks everything up; the segments grow from a small hint
 * and shrink again. Run under ThreadSanitizer in CI. Also the expiry heap. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "event.h"
#include "expiry.h"
#include "journey_table.h"
#include "util.h"

#define OWNERS 4
#define KEYS   20000

typedef struct owner_arg {
    fs_journey_table *t;
    uint32_t id;
    uint64_t found_after_insert;
} owner_arg;

static atomic_int stop_reader;

static char ids[OWNERS][KEYS][16]; /* ids[o][i]: the i-th customer owner o owns */

static void make_ids(void)
{
    uint32_t have[OWNERS] = {0}, done = 0;
    for (uint32_t n = 0; done < OWNERS; n++) {
        char id[16];
        size_t len = (size_t)snprintf(id, sizeof id, "cust-%u", n);
        uint32_t o = fs_journey_table_owner(fs_hash_customer(id, len), OWNERS);
        if (have[o] < KEYS) {
            memcpy(ids[o][have[o]++], id, len + 1);
            done += have[o] == KEYS;
        }
    }
}

static void key_of(uint32_t owner, uint32_t i, char *buf, size_t *len)
{
    *len = strlen(ids[owner][i]);
    memcpy(buf, ids[owner][i], *len);
}

static void *owner_main(void *p)
{
    owner_arg *a = p;
    fs_journey_table_thread_enter();
    char id[32];
    size_t len;
    for (int round = 0; round < 3; round++) {
        fs_journey_table_read_lock();
        for (uint32_t i = 0; i < KEYS; i++) {
            key_of(a->id, i, id, &len);
            uint64_t h = fs_hash_customer(id, len);
            assert_null(fs_journey_table_find(a->t, h, id, len));
            fs_customer *c = fs_journey_table_insert(a->t, h, id, len);
            c->n_active = 1;
        }
        for (uint32_t i = 0; i < KEYS; i++) {
            key_of(a->id, i, id, &len);
            fs_customer *c = fs_journey_table_find(a->t, fs_hash_customer(id, len), id, len);
            if (c && c->id_len == len)
                a->found_after_insert++;
            if (c)
                fs_journey_table_remove(a->t, c);
        }
        fs_journey_table_read_unlock();
    }
    fs_journey_table_thread_leave();
    return NULL;
}

static void *reader_main(void *p)
{
    fs_journey_table *t = p;
    fs_journey_table_thread_enter();
    char id[32];
    size_t len;
    uint32_t i = 0;
    while (!atomic_load(&stop_reader)) {
        fs_journey_table_read_lock();
        key_of(i % OWNERS, i % KEYS, id, &len);
        fs_customer *c = fs_journey_table_find(t, fs_hash_customer(id, len), id, len);
        if (c) /* a found entry is intact even if its owner removes it now */
            assert_memory_equal(fs_customer_id(c, 2), id, len);
        fs_journey_table_read_unlock();
        i += 7919;
    }
    fs_journey_table_thread_leave();
    return NULL;
}

static void test_concurrent_owners_and_reader(void **state)
{
    (void)state;
    make_ids();
    fs_journey_table *t = fs_journey_table_new(2, OWNERS, 1024);
    pthread_t owners[OWNERS], reader;
    owner_arg args[OWNERS];
    atomic_store(&stop_reader, 0);
    pthread_create(&reader, NULL, reader_main, t);
    for (uint32_t o = 0; o < OWNERS; o++) {
        args[o] = (owner_arg){t, o, 0};
        pthread_create(&owners[o], NULL, owner_main, &args[o]);
    }
    for (uint32_t o = 0; o < OWNERS; o++) {
        pthread_join(owners[o], NULL);
        assert_int_equal(args[o].found_after_insert, 3 * KEYS);
    }
    atomic_store(&stop_reader, 1);
    pthread_join(reader, NULL);
    assert_int_equal(fs_journey_table_count(t), 0);
    fs_journey_table_free(t);
}

static void test_expiry_heap_order_and_removal(void **state)
{
    (void)state;
    enum { N = 1000 };
    fs_journey *j = fs_xcalloc(N, sizeof(*j));
    fs_expiry_heap h;
    fs_expiry_init(&h);
    for (int i = 0; i < N; i++) {
        j[i].expiry_ts = (int64_t)((i * 7919) % N);
        fs_expiry_add(&h, &j[i]);
    }
    for (int i = 0; i < N; i += 3) /* remove a third from the middle of the heap */
        fs_expiry_remove(&h, &j[i]);
    int64_t last = -1;
    size_t popped = 0;
    fs_journey *top;
    while ((top = fs_expiry_peek(&h)) != NULL) {
        assert_true(top->expiry_ts >= last);
        assert_int_not_equal((top - j) % 3, 0);
        last = top->expiry_ts;
        fs_expiry_remove(&h, top);
        popped++;
    }
    assert_int_equal(popped, N - (N + 2) / 3);
    fs_expiry_free(&h);
    free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_owners_and_reader),
        cmocka_unit_test(test_expiry_heap_order_and_removal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
