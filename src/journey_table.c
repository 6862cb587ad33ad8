/* journey_table.c -- customers with active journeys: per-owner segments with
 * linear probing, one writer each.
 *
 * Layout:
 *
 *   fs_journey_table { n_funnels, n_owners, seg[n_owners] }   one cache line per segment
 *   segment     { seq, arr, count, ... }                 written by its owner only
 *   oa_array    { mask, rcu, slot[mask + 1] }            slot = { hash, fs_customer * }
 *   fs_customer (src/journey_table.h) + id bytes         one malloc per entry
 *
 * A slot is empty when its entry pointer is NULL. The slot's home is
 * hash & mask (the low bits; the owner is chosen by the high bits, as in
 * fs_journey_table_owner, so the two are independent). The load factor stays at or
 * below 3/4: the owner doubles the array before an insert would pass it and
 * halves it when fewer than 1/8 of the slots are used.
 *
 * Why readers are safe without locks:
 *   - Insert writes one empty slot: hash, then the entry pointer with a
 *     release store. A reader sees the slot empty (a miss that happened before
 *     the insert) or complete.
 *   - Removal moves later entries of the probe run back one by one
 *     (backward shift, so there are no tombstones). Mid-move a reader can
 *     miss an entry that is present, or read a torn {hash, pointer} pair.
 *     The owner makes `seq` odd for the duration; a reader that missed
 *     checks that `seq` is unchanged and even, and retries otherwise.
 *   - A hit needs no check: the reader compares the entry's own hash and id,
 *     and any pointer read from a slot inside a read section points at an
 *     entry that was in the table at that moment and is not yet freed.
 *   - Resizing builds a new array, publishes it with a release store (seq
 *     bumped around it) and frees the old one after an RCU grace period.
 *   - Removed entries are freed after a grace period too, in batches of
 *     RETIRE_BATCH pointers per call_rcu, so live entries carry no rcu_head.
 * Data the reader validates with `seq` is read with acquire loads and written
 * with release stores (free on x86), which orders them against `seq` without
 * standalone fences (which ThreadSanitizer does not model).
 *
 * Only one thread ever writes a segment, so backward-shift deletion (unsafe
 * with several writers) is fine, and the owner itself never has to retry.
 */
#include "journey_table.h"

#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <urcu/urcu-memb.h>

#include "tsan.h"
#include "util.h"

#define RETIRE_BATCH 256
#define MIN_SLOTS    1024

static char grace_period_sync; /* stands for "all earlier read sections ended" */

typedef struct oa_slot {
    _Atomic uint64_t hash;
    _Atomic(fs_customer *) c;
} oa_slot;

typedef struct oa_array {
    size_t mask; /* immutable once published */
    struct rcu_head rcu;
    oa_slot slot[];
} oa_array;

typedef struct oa_retired {
    struct rcu_head rcu;
    uint32_t n;
    fs_customer *c[RETIRE_BATCH];
} oa_retired;

typedef struct oa_segment {
    alignas(64) atomic_uint seq; /* odd while the owner moves slots */
    _Atomic(oa_array *) arr;
    atomic_size_t count;
    size_t min_slots;
    oa_retired *retired; /* owner only: removed entries awaiting call_rcu */
} oa_segment;

struct fs_journey_table {
    uint32_t n_funnels;
    uint32_t n_owners;
    oa_segment *seg;
};

static oa_array *array_new(size_t slots)
{
    oa_array *a = fs_xcalloc(1, sizeof(*a) + slots * sizeof(oa_slot));
    a->mask = slots - 1;
    return a;
}

static size_t slots_for(size_t entries)
{
    size_t s = MIN_SLOTS;
    while (s / 4 * 3 < entries)
        s <<= 1;
    return s;
}

fs_journey_table *fs_journey_table_new(uint32_t n_funnels, uint32_t n_owners,
                                       size_t expected_customers)
{
    fs_journey_table *t = fs_xcalloc(1, sizeof(*t));
    t->n_funnels = n_funnels;
    t->n_owners = n_owners ? n_owners : 1;
    t->seg = aligned_alloc(64, t->n_owners * sizeof(oa_segment));
    if (!t->seg) {
        fprintf(stderr, "level=fatal msg=\"out of memory\"\n");
        abort();
    }
    memset(t->seg, 0, t->n_owners * sizeof(oa_segment));
    size_t per_owner = slots_for(expected_customers / t->n_owners);
    for (uint32_t i = 0; i < t->n_owners; i++) {
        t->seg[i].min_slots = per_owner;
        atomic_init(&t->seg[i].arr, array_new(per_owner));
    }
    return t;
}

static oa_segment *segment_of(fs_journey_table *t, uint64_t hash)
{
    return &t->seg[fs_journey_table_owner(hash, t->n_owners)];
}

static void free_journeys(fs_customer *c, uint32_t n_funnels)
{
    for (uint32_t f = 0; f < n_funnels; f++)
        if (c->journey[f]) {
            fs_journey_release(c->journey[f]);
            free(c->journey[f]);
        }
}

static void free_batch(struct rcu_head *rcu)
{
    oa_retired *r = caa_container_of(rcu, oa_retired, rcu);
    fs_tsan_acquire(&grace_period_sync);
    fs_tsan_acquire(r);
    for (uint32_t i = 0; i < r->n; i++)
        free(r->c[i]);
    free(r);
}

static void free_array(struct rcu_head *rcu)
{
    oa_array *a = caa_container_of(rcu, oa_array, rcu);
    fs_tsan_acquire(&grace_period_sync);
    fs_tsan_acquire(a);
    free(a);
}

/* Hands the segment's batch of removed entries to call_rcu. */
static void flush_retired(oa_segment *s)
{
    if (!s->retired)
        return;
    fs_tsan_release(s->retired);
    urcu_memb_call_rcu(&s->retired->rcu, free_batch);
    s->retired = NULL;
}

void fs_journey_table_free(fs_journey_table *t)
{
    if (!t)
        return;
    urcu_memb_register_thread(); /* call_rcu wants a registered thread */
    for (uint32_t i = 0; i < t->n_owners; i++)
        flush_retired(&t->seg[i]);
    urcu_memb_unregister_thread();
    urcu_memb_barrier(); /* the batches are freed before the table goes */
    for (uint32_t i = 0; i < t->n_owners; i++) {
        oa_array *a = atomic_load_explicit(&t->seg[i].arr, memory_order_relaxed);
        for (size_t k = 0; k <= a->mask; k++) {
            fs_customer *c = atomic_load_explicit(&a->slot[k].c, memory_order_relaxed);
            if (c) {
                free_journeys(c, t->n_funnels);
                free(c);
            }
        }
        free(a);
    }
    free(t->seg);
    free(t);
}

void fs_journey_table_thread_enter(void)
{
    urcu_memb_register_thread();
}

void fs_journey_table_thread_leave(void)
{
    urcu_memb_unregister_thread();
}

void fs_journey_table_read_lock(void)
{
    urcu_memb_read_lock();
}

void fs_journey_table_read_unlock(void)
{
    fs_tsan_release(&grace_period_sync);
    urcu_memb_read_unlock();
}

static int matches(const fs_customer *c, uint64_t hash, const char *id, size_t len, uint32_t nf)
{
    return c->hash == hash && c->id_len == len && memcmp(fs_customer_id(c, nf), id, len) == 0;
}

/* One probe of array `a`; NULL on a miss, which the caller must validate. */
static fs_customer *probe(const oa_array *a, uint64_t hash, const char *id, size_t len, uint32_t nf)
{
    size_t mask = a->mask;
    for (size_t i = hash & mask, n = 0; n <= mask; i = (i + 1) & mask, n++) {
        fs_customer *c = atomic_load_explicit(&a->slot[i].c, memory_order_acquire);
        if (!c)
            return NULL;
        if (atomic_load_explicit(&a->slot[i].hash, memory_order_acquire) == hash &&
            matches(c, hash, id, len, nf))
            return c;
    }
    return NULL; /* only reachable through torn reads mid-move */
}

fs_customer *fs_journey_table_find(fs_journey_table *t, uint64_t hash, const char *id, size_t len)
{
    oa_segment *s = segment_of(t, hash);
    for (unsigned tries = 1;; tries++) {
        unsigned seq = atomic_load_explicit(&s->seq, memory_order_acquire);
        if (seq & 1) { /* the owner is moving slots: wait, yielding if it was preempted */
            if (tries % 64 == 0)
                sched_yield();
            continue;
        }
        fs_customer *c =
            probe(atomic_load_explicit(&s->arr, memory_order_acquire), hash, id, len, t->n_funnels);
        if (c || atomic_load_explicit(&s->seq, memory_order_relaxed) == seq)
            return c;
    }
}

/* Owner only, the array not yet published or the entry known absent. */
static void place(oa_array *a, uint64_t hash, fs_customer *c)
{
    size_t i = hash & a->mask;
    while (atomic_load_explicit(&a->slot[i].c, memory_order_relaxed))
        i = (i + 1) & a->mask;
    atomic_store_explicit(&a->slot[i].hash, hash, memory_order_release);
    atomic_store_explicit(&a->slot[i].c, c, memory_order_release);
}

static void resize(oa_segment *s, size_t slots)
{
    oa_array *old = atomic_load_explicit(&s->arr, memory_order_relaxed);
    oa_array *a = array_new(slots);
    for (size_t k = 0; k <= old->mask; k++) {
        fs_customer *c = atomic_load_explicit(&old->slot[k].c, memory_order_relaxed);
        if (c)
            place(a, atomic_load_explicit(&old->slot[k].hash, memory_order_relaxed), c);
    }
    unsigned seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
    atomic_store_explicit(&s->seq, seq + 1, memory_order_relaxed);
    atomic_store_explicit(&s->arr, a, memory_order_release);
    atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
    fs_tsan_release(old);
    urcu_memb_call_rcu(&old->rcu, free_array);
}

fs_customer *fs_journey_table_insert(fs_journey_table *t, uint64_t hash, const char *id, size_t len)
{
    oa_segment *s = segment_of(t, hash);
    size_t count = atomic_load_explicit(&s->count, memory_order_relaxed);
    oa_array *a = atomic_load_explicit(&s->arr, memory_order_relaxed);
    if ((count + 1) * 4 > (a->mask + 1) * 3) {
        resize(s, (a->mask + 1) * 2);
        a = atomic_load_explicit(&s->arr, memory_order_relaxed);
    }
    fs_customer *c = fs_xcalloc(1, sizeof(fs_customer) + t->n_funnels * sizeof(fs_journey *) + len);
    c->hash = hash;
    c->id_len = (uint8_t)len;
    memcpy((char *)fs_customer_id(c, t->n_funnels), id, len);
    place(a, hash, c);
    atomic_store_explicit(&s->count, count + 1, memory_order_relaxed);
    return c;
}

/* Is home `h` cyclically outside (hole, j]? Then the entry at j may fill the hole. */
static int may_fill(size_t hole, size_t j, size_t h)
{
    return hole <= j ? (h <= hole || h > j) : (h <= hole && h > j);
}

static void move_slot(oa_array *a, size_t to, size_t from)
{
    atomic_store_explicit(&a->slot[to].hash,
                          atomic_load_explicit(&a->slot[from].hash, memory_order_relaxed),
                          memory_order_release);
    atomic_store_explicit(&a->slot[to].c,
                          atomic_load_explicit(&a->slot[from].c, memory_order_relaxed),
                          memory_order_release);
}

/* Empties slot `hole` and shifts the rest of its probe run back (Knuth's
 * Algorithm R), inside an odd `seq` so readers that miss retry. */
static void delete_slot(oa_segment *s, oa_array *a, size_t hole)
{
    unsigned seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
    atomic_store_explicit(&s->seq, seq + 1, memory_order_relaxed);
    for (size_t j = (hole + 1) & a->mask;; j = (j + 1) & a->mask) {
        if (!atomic_load_explicit(&a->slot[j].c, memory_order_relaxed))
            break;
        uint64_t h = atomic_load_explicit(&a->slot[j].hash, memory_order_relaxed);
        if (may_fill(hole, j, h & a->mask)) {
            move_slot(a, hole, j);
            hole = j;
        }
    }
    atomic_store_explicit(&a->slot[hole].c, NULL, memory_order_release);
    atomic_store_explicit(&a->slot[hole].hash, 0, memory_order_release);
    atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
}

void fs_journey_table_remove(fs_journey_table *t, fs_customer *c)
{
    oa_segment *s = segment_of(t, c->hash);
    oa_array *a = atomic_load_explicit(&s->arr, memory_order_relaxed);
    size_t i = c->hash & a->mask;
    while (atomic_load_explicit(&a->slot[i].c, memory_order_relaxed) != c)
        i = (i + 1) & a->mask; /* present: the caller owns it */
    delete_slot(s, a, i);
    size_t count = atomic_load_explicit(&s->count, memory_order_relaxed) - 1;
    atomic_store_explicit(&s->count, count, memory_order_relaxed);

    if (!s->retired)
        s->retired = fs_xcalloc(1, sizeof(oa_retired));
    s->retired->c[s->retired->n++] = c;
    if (s->retired->n == RETIRE_BATCH)
        flush_retired(s);

    if (a->mask + 1 > s->min_slots && count < (a->mask + 1) / 8)
        resize(s, (a->mask + 1) / 2);
}

size_t fs_journey_table_count(const fs_journey_table *t)
{
    size_t n = 0;
    for (uint32_t i = 0; i < t->n_owners; i++)
        n += atomic_load_explicit(&t->seg[i].count, memory_order_relaxed);
    return n;
}

void fs_journey_table_prefetch_slot(fs_journey_table *t, uint64_t hash)
{
    oa_array *a = atomic_load_explicit(&segment_of(t, hash)->arr, memory_order_relaxed);
    __builtin_prefetch(&a->slot[hash & a->mask]);
}

void fs_journey_table_prefetch_entry(fs_journey_table *t, uint64_t hash)
{
    oa_array *a = atomic_load_explicit(&segment_of(t, hash)->arr, memory_order_relaxed);
    fs_customer *c = atomic_load_explicit(&a->slot[hash & a->mask].c, memory_order_relaxed);
    if (c)
        __builtin_prefetch(c);
}

size_t fs_journey_table_bytes(const fs_journey_table *t)
{
    size_t bytes = t->n_owners * sizeof(oa_segment);
    for (uint32_t i = 0; i < t->n_owners; i++) {
        const oa_segment *s = &t->seg[i];
        oa_array *a = atomic_load_explicit(&s->arr, memory_order_acquire);
        size_t n = atomic_load_explicit(&s->count, memory_order_relaxed);
        if (a)
            bytes += sizeof(*a) + (a->mask + 1) * sizeof(oa_slot);
        /* entries: header, journey pointers and an id of typical length */
        bytes += n * (sizeof(fs_customer) + t->n_funnels * sizeof(fs_journey *) + 24);
    }
    return bytes;
}
