/* The shared journey store (journey_table.h).
 *
 * 1. Concurrency: several owners insert, build, update, end and remove their
 *    own customers (those fs_journey_table_owner assigns them) while a
 *    reader copies them with fs_journey_table_read. Records, touch blocks
 *    and index slots are reused all the time (customers come and go, the
 *    index grows from a small hint and shrinks again), so every copy the
 *    reader gets must be exactly one state its customer was in: its own
 *    start time, all its touches, and no mix of two writes. Run under
 *    ThreadSanitizer in CI.
 * 2. Touches past the inline ones (touch blocks), in first-touch order.
 * 3. Ids longer than the inline bytes, up to 128, and ids that share a prefix.
 * 4. The walk over one partition's customers.
 * 5. Limits (issue 13 item 15): each owner's share of the limit, and its
 *    age list: the oldest record is the one inserted first of those held,
 *    whatever was removed in between; concurrently, owners at their share
 *    evict their oldest for each new customer while a reader copies.
 */
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
#include "journey_table.h"
#include "util.h"

#define OWNERS   4
#define KEYS     20000
#define FUNNELS  2
#define CHANNELS 12 /* up to 12 distinct: 2 inline, 10 in two touch blocks */

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

/* What customer i of any owner looks like in round r: a journey in funnel
 * i % FUNNELS started at i * 8 + r, touched on channels 0 .. i % CHANNELS. */
static uint32_t channels_of(uint32_t i)
{
    return 1 + i % CHANNELS;
}

static void build(fs_journey_table *t, uint32_t owner, fs_customer *c, uint32_t i, int round)
{
    fs_customer_write_begin(c);
    fs_journey *j = &c->journey[i % FUNNELS];
    fs_journey_init(j, (int64_t)i * 8 + round, 0, 0);
    for (uint32_t ch = 1; ch < channels_of(i); ch++)
        fs_journey_table_touch(t, owner, j, ch);
    c->n_active = 1;
    fs_customer_write_end(c);
}

/* Every touch once more, in one write: a reader sees all counts 1 or all 2. */
static void touch_all(fs_journey_table *t, uint32_t owner, fs_customer *c, uint32_t i)
{
    fs_customer_write_begin(c);
    for (uint32_t ch = 0; ch < channels_of(i); ch++)
        fs_journey_table_touch(t, owner, &c->journey[i % FUNNELS], ch);
    fs_customer_write_end(c);
}

static void end(fs_journey_table *t, uint32_t owner, fs_customer *c, uint32_t i)
{
    fs_customer_write_begin(c);
    fs_journey_table_end(t, owner, &c->journey[i % FUNNELS]);
    c->n_active = 0;
    fs_customer_write_end(c);
}

static void *owner_main(void *p)
{
    owner_arg *a = p;
    fs_journey_table_thread_enter();
    for (int round = 0; round < 3; round++) {
        fs_journey_table_read_lock();
        for (uint32_t i = 0; i < KEYS; i++) {
            const char *id = ids[a->id][i];
            size_t len = strlen(id);
            uint64_t h = fs_hash_customer(id, len);
            uint32_t idx;
            assert_null(fs_journey_table_find(a->t, h, id, len, &idx));
            fs_customer *c = fs_journey_table_insert(a->t, h, id, len, (uint16_t)(i % 3), &idx);
            build(a->t, a->id, c, i, round);
        }
        for (uint32_t i = 0; i < KEYS; i++) {
            const char *id = ids[a->id][i];
            size_t len = strlen(id);
            uint32_t idx;
            fs_customer *c = fs_journey_table_find(a->t, fs_hash_customer(id, len), id, len, &idx);
            if (!c)
                continue;
            a->found_after_insert++;
            assert_ptr_equal(c, fs_journey_table_record(a->t, a->id, idx));
            touch_all(a->t, a->id, c, i);
            end(a->t, a->id, c, i);
            fs_journey_table_remove(a->t, c, idx);
        }
        fs_journey_table_read_unlock();
    }
    fs_journey_table_thread_leave();
    return NULL;
}

typedef struct reader_arg {
    fs_journey_table *t;
    uint64_t hits, broken;
} reader_arg;

/* Is v exactly a state customer i could be in? */
static bool possible(const fs_journey_view *v, uint32_t n, uint32_t i)
{
    if (n == 0)
        return true;
    if (n != 1 || v->funnel != i % FUNNELS || v->start_ts / 8 != i || v->start_ts % 8 > 2)
        return false;
    if (v->max_stage != 0 || v->first_channel != 0 || v->n_touches != channels_of(i))
        return false;
    for (uint32_t k = 0; k < v->n_touches; k++)
        if (v->touch[k].label != k || v->touch[k].count != v->touch[0].count ||
            v->touch[k].count < 1 || v->touch[k].count > 2)
            return false;
    return true;
}

static void *reader_main(void *p)
{
    reader_arg *r = p;
    fs_journey_table_thread_enter();
    uint32_t i = 0;
    while (!atomic_load(&stop_reader)) {
        uint32_t k = i % KEYS;
        const char *id = ids[i % OWNERS][k];
        size_t len = strlen(id);
        fs_journey_view v[FUNNELS];
        uint32_t owner;
        uint32_t n = fs_journey_table_read(r->t, fs_hash_customer(id, len), id, len, v, &owner);
        assert_int_equal(owner, i % OWNERS);
        r->hits += n;
        r->broken += !possible(v, n, k);
        i += 7919;
    }
    fs_journey_table_thread_leave();
    return NULL;
}

static void test_concurrent_owners_and_reader(void **state)
{
    (void)state;
    make_ids();
    fs_journey_table *t = fs_journey_table_new(FUNNELS, 0, OWNERS, 1024);
    pthread_t owners[OWNERS], reader;
    owner_arg args[OWNERS];
    reader_arg r = {t, 0, 0};
    atomic_store(&stop_reader, 0);
    pthread_create(&reader, NULL, reader_main, &r);
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
    assert_int_equal(r.broken, 0);
    assert_int_equal(fs_journey_table_count(t), 0);
    fs_journey_table_free(t);
}

/* ---- single owner -------------------------------------------------------- */

static fs_customer *add(fs_journey_table *t, const char *id, size_t len, uint16_t part,
                        uint32_t *idx)
{
    return fs_journey_table_insert(t, fs_hash_customer(id, len), id, len, part, idx);
}

static uint32_t read_back(fs_journey_table *t, const char *id, size_t len, fs_journey_view *v)
{
    uint32_t owner;
    return fs_journey_table_read(t, fs_hash_customer(id, len), id, len, v, &owner);
}

static void test_touch_blocks_in_order(void **state)
{
    (void)state;
    fs_journey_table_thread_enter();
    fs_journey_table_read_lock();
    fs_journey_table *t = fs_journey_table_new(1, 0, 1, 0);
    uint32_t idx;
    fs_customer *c = add(t, "x", 1, 0, &idx);
    fs_journey *j = &c->journey[0];
    for (int round = 0; round < 2; round++) { /* the second reuses the freed blocks */
        fs_journey_init(j, 5, 1, 100);
        c->n_active = 1;
        for (uint32_t ch = 0; ch < 20; ch++) /* channel 100+ch touched ch + 1 times more */
            for (uint32_t k = 0; k <= ch; k++)
                fs_journey_table_touch(t, 0, j, 100 + ch);
        fs_touch_count *buf = NULL;
        uint32_t cap = 0;
        assert_int_equal(fs_journey_table_touches(t, 0, j, &buf, &cap), 20);
        for (uint32_t ch = 0; ch < 20; ch++) {
            assert_int_equal(buf[ch].label, 100 + ch);
            assert_int_equal(buf[ch].count, ch + 1 + (ch == 0));
        }
        free(buf);
        fs_journey_view v;
        assert_int_equal(read_back(t, "x", 1, &v), 1);
        assert_int_equal(v.start_ts, 5);
        assert_int_equal(v.max_stage, 1);
        assert_int_equal(v.first_channel, 100);
        assert_int_equal(v.n_touches, FS_JOURNEY_COPY_TOUCHES); /* the copy stops at 16 */
        for (uint32_t ch = 0; ch < FS_JOURNEY_COPY_TOUCHES; ch++)
            assert_int_equal(v.touch[ch].label, 100 + ch);
        fs_journey_table_end(t, 0, j);
        c->n_active = 0;
        assert_int_equal(read_back(t, "x", 1, &v), 0);
    }
    fs_journey_table_remove(t, c, idx);
    fs_journey_table_read_unlock();
    fs_journey_table_free(t);
    fs_journey_table_thread_leave();
}

/* A campaign list (the extension's, journey_table.h): the first label
 * stays in slot 0, the one touched last is in slot 1, every count is
 * kept, and a list appended back in its saved order is the same list. */
static void test_touch_list_recent_and_append(void **state)
{
    (void)state;
    fs_journey_table_thread_enter();
    fs_journey_table_read_lock();
    fs_journey_table *t = fs_journey_table_new(1, sizeof(fs_touch_list), 1, 0);
    uint32_t idx;
    fs_customer *c = add(t, "x", 1, 0, &idx);
    fs_touch_list *l = fs_customer_ext(c, 1), copy;
    fs_touch_list_init(l, 100);
    for (uint32_t k = 1; k < 20; k++) /* label 100+k touched k + 1 times */
        for (uint32_t i = 0; i <= k; i++)
            fs_journey_table_list_touch(t, 0, l, 100 + k);
    fs_touch_count *buf = NULL;
    uint32_t cap = 0, counts[20] = {0};
    assert_int_equal(fs_journey_table_list_touches(t, 0, l, &buf, &cap), 20);
    assert_int_equal(buf[0].label, 100);
    assert_int_equal(buf[1].label, 119); /* touched last */
    for (uint32_t k = 0; k < 20; k++)
        counts[buf[k].label - 100] = buf[k].count;
    for (uint32_t k = 0; k < 20; k++)
        assert_int_equal(counts[k], k + 1);
    fs_journey_table_list_touch(t, 0, l, 105); /* found in a block: now the recent one */
    uint32_t n = fs_journey_table_list_touches(t, 0, l, &buf, &cap);
    assert_int_equal(buf[1].label, 105);
    assert_int_equal(buf[1].count, 7);
    fs_journey_table_list_touch(t, 0, l, 100); /* the first one stays first */
    fs_journey_table_list_touch(t, 0, l, 105);
    n = fs_journey_table_list_touches(t, 0, l, &buf, &cap);
    assert_true(buf[0].label == 100 && buf[0].count == 2 && buf[1].label == 105);

    /* restore: the saved order back as it was, counts included */
    fs_touch_count *saved = malloc(n * sizeof(*saved));
    memcpy(saved, buf, n * sizeof(*saved));
    fs_journey_table_list_end(t, 0, l);
    fs_touch_list_init(&copy, saved[0].label);
    copy.touch[0].count = saved[0].count;
    for (uint32_t k = 1; k < n; k++)
        fs_journey_table_list_append(t, 0, &copy, saved[k].label, saved[k].count);
    assert_int_equal(fs_journey_table_list_touches(t, 0, &copy, &buf, &cap), n);
    assert_memory_equal(buf, saved, n * sizeof(*saved));
    fs_journey_table_list_end(t, 0, &copy);
    free(saved);
    free(buf);
    fs_journey_table_remove(t, c, idx);
    fs_journey_table_read_unlock();
    fs_journey_table_free(t);
    fs_journey_table_thread_leave();
}

static void test_long_ids(void **state)
{
    (void)state;
    fs_journey_table_thread_enter();
    fs_journey_table_read_lock();
    fs_journey_table *t = fs_journey_table_new(2, 0, 1, 0);
    char id[FS_CUSTOMER_MAX_ID];
    memset(id, 'a', sizeof id);
    /* lengths 1..128 of the same prefix: every one a distinct customer */
    for (uint32_t len = 1; len <= FS_CUSTOMER_MAX_ID; len++) {
        uint32_t idx;
        fs_customer *c = add(t, id, len, 0, &idx);
        fs_customer_write_begin(c);
        fs_journey_init(&c->journey[len % 2], len, 0, 0);
        c->n_active = 1;
        fs_customer_write_end(c);
    }
    assert_int_equal(fs_journey_table_count(t), FS_CUSTOMER_MAX_ID);
    for (uint32_t len = 1; len <= FS_CUSTOMER_MAX_ID; len++) {
        uint32_t idx;
        fs_customer *c = fs_journey_table_find(t, fs_hash_customer(id, len), id, len, &idx);
        assert_non_null(c);
        assert_int_equal(c->id_len, len);
        fs_journey_view v[2];
        assert_int_equal(read_back(t, id, len, v), 1);
        assert_int_equal(v[0].funnel, len % 2);
        assert_int_equal(v[0].start_ts, len);
    }
    id[127] = 'b'; /* differs in the last byte only */
    uint32_t idx;
    assert_null(fs_journey_table_find(t, fs_hash_customer(id, 128), id, 128, &idx));
    fs_journey_view v[2];
    assert_int_equal(read_back(t, id, 128, v), 0);
    assert_int_equal(read_back(t, id, 129, v), 0); /* too long for any customer */
    id[127] = 'a';
    for (uint32_t len = 1; len <= FS_CUSTOMER_MAX_ID; len++) {
        fs_customer *c = fs_journey_table_find(t, fs_hash_customer(id, len), id, len, &idx);
        fs_customer_write_begin(c);
        fs_journey_table_end(t, 0, &c->journey[len % 2]);
        c->n_active = 0;
        fs_customer_write_end(c);
        fs_journey_table_remove(t, c, idx);
        assert_int_equal(read_back(t, id, len, v), 0);
    }
    assert_int_equal(fs_journey_table_count(t), 0);
    fs_journey_table_read_unlock();
    fs_journey_table_free(t);
    fs_journey_table_thread_leave();
}

static void count_customer(void *ctx, fs_customer *c, uint32_t idx)
{
    (void)c, (void)idx;
    ++*(uint32_t *)ctx;
}

static void test_walk_one_partition(void **state)
{
    (void)state;
    fs_journey_table_thread_enter();
    fs_journey_table_read_lock();
    fs_journey_table *t = fs_journey_table_new(1, 0, 1, 0);
    for (uint32_t i = 0; i < 3000; i++) {
        char id[16];
        size_t len = (size_t)snprintf(id, sizeof id, "p-%u", i);
        uint32_t idx;
        add(t, id, len, (uint16_t)(i % 3), &idx);
    }
    for (uint16_t p = 0; p < 4; p++) {
        uint32_t n = 0;
        fs_journey_table_each(t, 0, p, count_customer, &n);
        assert_int_equal(n, p < 3 ? 1000 : 0);
    }
    fs_journey_table_read_unlock();
    fs_journey_table_free(t);
    fs_journey_table_thread_leave();
}

/* ---- limits ------------------------------------------------------------ */

static void test_limit_shares(void **state)
{
    (void)state;
    fs_journey_table *t = fs_journey_table_new(1, 0, 3, 0);
    assert_int_equal(fs_journey_table_share(t, 0), 0); /* no limit: no share, never full */
    assert_false(fs_journey_table_full(t, 0));
    fs_journey_table_set_limit(t, 10); /* 4 + 3 + 3 */
    assert_int_equal(fs_journey_table_share(t, 0), 4);
    assert_int_equal(fs_journey_table_share(t, 1), 3);
    assert_int_equal(fs_journey_table_share(t, 2), 3);
    fs_journey_table_set_limit(t, 2); /* fewer than owners: each holds one */
    for (uint32_t o = 0; o < 3; o++)
        assert_int_equal(fs_journey_table_share(t, o), 1);
    fs_journey_table_set_limit(t, 0);
    assert_int_equal(fs_journey_table_share(t, 2), 0);
    fs_journey_table_free(t);
}

static const char *id_of(fs_journey_table *t, uint32_t idx, uint32_t *len)
{
    return fs_journey_table_id(t, 0, fs_journey_table_record(t, 0, idx), len);
}

static void assert_oldest(fs_journey_table *t, const char *want)
{
    uint32_t idx = fs_journey_table_oldest(t, 0), len;
    if (!want) {
        assert_int_equal(idx, FS_RECORD_NONE);
        return;
    }
    assert_int_not_equal(idx, FS_RECORD_NONE);
    const char *id = id_of(t, idx, &len);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(id, want, len);
}

static void drop(fs_journey_table *t, const char *id)
{
    uint32_t idx;
    fs_customer *c =
        fs_journey_table_find(t, fs_hash_customer(id, strlen(id)), id, strlen(id), &idx);
    assert_non_null(c);
    fs_journey_table_remove(t, c, idx);
}

static void test_limit_age_order(void **state)
{
    (void)state;
    fs_journey_table_thread_enter();
    fs_journey_table_read_lock();
    fs_journey_table *t = fs_journey_table_new(1, 0, 1, 0);
    fs_journey_table_set_limit(t, 3);
    uint32_t idx;
    assert_oldest(t, NULL);
    add(t, "a", 1, 0, &idx);
    add(t, "b", 1, 0, &idx);
    assert_false(fs_journey_table_full(t, 0));
    add(t, "c", 1, 0, &idx);
    assert_true(fs_journey_table_full(t, 0));
    assert_oldest(t, "a");
    drop(t, "b"); /* from the middle */
    assert_false(fs_journey_table_full(t, 0));
    assert_oldest(t, "a");
    add(t, "d", 1, 0, &idx); /* b's record again, now the youngest */
    assert_oldest(t, "a");
    drop(t, "a"); /* the oldest */
    assert_oldest(t, "c");
    drop(t, "d"); /* the youngest */
    add(t, "e", 1, 0, &idx);
    assert_oldest(t, "c");
    drop(t, "c");
    assert_oldest(t, "e");
    drop(t, "e");
    assert_oldest(t, NULL);
    assert_int_equal(fs_journey_table_count(t), 0);
    /* many, past the first age array, in and out in order */
    char id[16];
    for (uint32_t i = 0; i < 5000; i++) {
        size_t len = (size_t)snprintf(id, sizeof id, "k-%u", i);
        add(t, id, len, 0, &idx);
        if (i >= 2) { /* hold 3: the oldest is i - 2 */
            snprintf(id, sizeof id, "k-%u", i - 2);
            assert_oldest(t, id);
            drop(t, id);
        }
    }
    assert_int_equal(fs_journey_table_count(t), 2);
    fs_journey_table_read_unlock();
    fs_journey_table_free(t);
    fs_journey_table_thread_leave();
}

#define SHARE 64

/* Owner o at its share: before each new customer, its oldest (the one
 * inserted SHARE customers ago) ends and leaves. */
static void *limited_owner_main(void *p)
{
    owner_arg *a = p;
    fs_journey_table_thread_enter();
    fs_journey_table_read_lock();
    for (uint32_t i = 0; i < KEYS; i++) {
        if (fs_journey_table_full(a->t, a->id)) {
            assert_true(i >= SHARE);
            uint32_t old = fs_journey_table_oldest(a->t, a->id), len;
            fs_customer *c = fs_journey_table_record(a->t, a->id, old);
            const char *id = fs_journey_table_id(a->t, a->id, c, &len);
            const char *want = ids[a->id][i - SHARE];
            assert_int_equal(len, strlen(want));
            assert_memory_equal(id, want, len);
            end(a->t, a->id, c, i - SHARE);
            fs_journey_table_remove(a->t, c, old);
        }
        const char *id = ids[a->id][i];
        size_t len = strlen(id);
        uint32_t idx;
        fs_customer *c = fs_journey_table_insert(a->t, fs_hash_customer(id, len), id, len, 0, &idx);
        build(a->t, a->id, c, i, 0);
        a->found_after_insert++;
        if (i % 256 == 0) { /* let the reader's grace periods through now and then */
            fs_journey_table_read_unlock();
            fs_journey_table_read_lock();
        }
    }
    fs_journey_table_read_unlock();
    fs_journey_table_thread_leave();
    return NULL;
}

static void test_limit_concurrent_owners(void **state)
{
    (void)state;
    make_ids();
    fs_journey_table *t = fs_journey_table_new(FUNNELS, 0, OWNERS, 0);
    fs_journey_table_set_limit(t, SHARE * OWNERS);
    pthread_t owners[OWNERS], reader;
    owner_arg args[OWNERS];
    reader_arg r = {t, 0, 0};
    atomic_store(&stop_reader, 0);
    pthread_create(&reader, NULL, reader_main, &r);
    for (uint32_t o = 0; o < OWNERS; o++) {
        args[o] = (owner_arg){t, o, 0};
        pthread_create(&owners[o], NULL, limited_owner_main, &args[o]);
    }
    for (uint32_t o = 0; o < OWNERS; o++) {
        pthread_join(owners[o], NULL);
        assert_int_equal(args[o].found_after_insert, KEYS);
    }
    atomic_store(&stop_reader, 1);
    pthread_join(reader, NULL);
    assert_int_equal(r.broken, 0);
    assert_int_equal(fs_journey_table_count(t), SHARE * OWNERS); /* each at its share */
    fs_journey_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_owners_and_reader),
        cmocka_unit_test(test_touch_blocks_in_order),
        cmocka_unit_test(test_touch_list_recent_and_append),
        cmocka_unit_test(test_long_ids),
        cmocka_unit_test(test_walk_one_partition),
        cmocka_unit_test(test_limit_shares),
        cmocka_unit_test(test_limit_age_order),
        cmocka_unit_test(test_limit_concurrent_owners),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
