/* journey_table.c -- customers with active journeys: per-owner segments with
 * linear probing, one writer each.
 *
 * Layout:
 *
 *   fs_journey_table { n_funnels, n_owners, seg[n_owners] }   one cache line per segment
 *   segment     { seq, arr, count, ... }                 written by its owner only
 *   oa_array    { mask, rcu, slot[mask + 1] }            slot = { hash, fs_customer * }
 *   fs_customer (src/core/journey_table.h) + id bytes         one malloc per entry
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
 *   - Journeys (and outgrown touch arrays) are read only by
 *     fs_journey_table_read, which counts itself in the segment's `readers`
 *     around its copy. Ended ones first go to the owner's limbo. To empty
 *     it, the owner reads `readers` with an RMW: if it is 0, any reader
 *     that comes later is ordered after the owner's unpublishing stores and
 *     cannot reach what is in the limbo, and any earlier one has finished,
 *     so the journeys are reused at once, still warm in the cache. Otherwise
 *     they wait for a grace period in the same batches as removed entries;
 *     the callback then pushes their batch onto the segment's `ready` stack
 *     (the call_rcu thread is its only pusher, the owner takes the whole
 *     stack with one exchange, so there is no ABA) for the owner to reuse.
 *     Either way a journey is never rewritten while a reader may copy it,
 *     and with no API lookups running no call_rcu is spent on journeys.
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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <urcu/urcu-memb.h>

#include "tsan.h"
#include "util.h"

#define RETIRE_BATCH 256
#define MIN_SLOTS    1024
#define MAX_SPARE    4096 /* reusable journeys an owner keeps; more are freed */

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

struct oa_segment;

typedef struct oa_retired {
    struct rcu_head rcu;
    struct oa_segment *seg;
    struct oa_retired *next; /* on the ready stack */
    uint32_t n_mem, n_journeys;
    void *mem[RETIRE_BATCH];           /* entries, touch arrays: freed */
    fs_journey *journey[RETIRE_BATCH]; /* given back to the owner */
} oa_retired;

typedef struct oa_segment {
    alignas(64) atomic_uint seq; /* odd while the owner moves slots */
    _Atomic(oa_array *) arr;
    atomic_size_t count;
    size_t min_slots;
    atomic_uint readers;         /* fs_journey_table_read calls in this segment */
    oa_retired *limbo;           /* owner only: ended journeys, outgrown touch arrays */
    oa_retired *retired;         /* owner only: awaiting call_rcu */
    _Atomic(oa_retired *) ready; /* past their grace period, journeys to reuse */
    void *spare; /* owner only: reusable journeys, linked through their first bytes */
    uint32_t n_spare;
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
    for (uint32_t i = 0; i < r->n_mem; i++)
        free(r->mem[i]);
    if (r->n_journeys == 0) {
        free(r);
        return;
    }
    oa_segment *s = r->seg;
    r->next = atomic_load_explicit(&s->ready, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&s->ready, &r->next, r, memory_order_release,
                                                  memory_order_relaxed))
        ;
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

static void drain_limbo(oa_segment *s); /* below, with the other deferred reuse */

static void free_spares(oa_segment *s)
{
    oa_retired *r = atomic_load_explicit(&s->ready, memory_order_acquire);
    while (r) {
        oa_retired *next = r->next;
        for (uint32_t i = 0; i < r->n_journeys; i++)
            free(r->journey[i]);
        free(r);
        r = next;
    }
    while (s->spare) {
        void *next = *(void **)s->spare;
        free(s->spare);
        s->spare = next;
    }
}

void fs_journey_table_free(fs_journey_table *t)
{
    if (!t)
        return;
    /* Batches not handed to call_rcu yet: wait out their readers here (the
     * calling thread may or may not be registered, so no call_rcu), then
     * let the callbacks already queued finish before the table goes. */
    urcu_memb_synchronize_rcu();
    for (uint32_t i = 0; i < t->n_owners; i++) {
        if (t->seg[i].limbo) {
            drain_limbo(&t->seg[i]); /* no reader is left: frees or spares all of it */
            free(t->seg[i].limbo);
        }
        oa_retired *r = t->seg[i].retired;
        t->seg[i].retired = NULL;
        if (r) {
            fs_tsan_release(r);
            free_batch(&r->rcu);
        }
    }
    urcu_memb_barrier();
    for (uint32_t i = 0; i < t->n_owners; i++) {
        free_spares(&t->seg[i]);
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

/* One copy of c's journeys; false if the owner was changing them meanwhile. */
static bool copy_journeys(const fs_customer *c, uint32_t nf, fs_journey_view *out, uint32_t *n)
{
    uint32_t seq = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
    if (seq & 1)
        return false;
    *n = 0;
    for (uint32_t f = 0; f < nf; f++) {
        const fs_journey *j = __atomic_load_n(&c->journey[f], __ATOMIC_ACQUIRE);
        if (j)
            fs_journey_copy(j, &out[(*n)++]);
    }
    /* the copy's loads are acquires, so this load cannot move above them */
    return __atomic_load_n(&c->seq, __ATOMIC_RELAXED) == seq;
}

uint32_t fs_journey_table_read(fs_journey_table *t, uint64_t hash, const char *id, size_t len,
                               fs_journey_view *out, uint32_t *owner)
{
    *owner = fs_journey_table_owner(hash, t->n_owners);
    oa_segment *s = &t->seg[*owner];
    uint32_t n = 0;
    atomic_fetch_add_explicit(&s->readers, 1, memory_order_acq_rel); /* see drain_limbo */
    fs_journey_table_read_lock();
    fs_customer *c = fs_journey_table_find(t, hash, id, len);
    for (unsigned tries = 1; c && !copy_journeys(c, t->n_funnels, out, &n); tries++)
        if (tries % 64 == 0)
            sched_yield(); /* the owner may have been preempted mid-change */
    fs_journey_table_read_unlock();
    atomic_fetch_sub_explicit(&s->readers, 1, memory_order_release);
    return c ? n : 0;
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

/* ---- deferred reuse ------------------------------------------------------ */

static oa_retired *batch_new(oa_segment *s)
{
    oa_retired *r = fs_xcalloc(1, sizeof(oa_retired));
    r->seg = s;
    return r;
}

/* Into the batch for call_rcu (removed entries, and the limbo's contents
 * when a reader was active). */
static void retire_mem(oa_segment *s, void *p)
{
    if (!s->retired)
        s->retired = batch_new(s);
    s->retired->mem[s->retired->n_mem++] = p;
    if (s->retired->n_mem == RETIRE_BATCH)
        flush_retired(s);
}

static void retire_journey(oa_segment *s, fs_journey *j)
{
    if (!s->retired)
        s->retired = batch_new(s);
    s->retired->journey[s->retired->n_journeys++] = j;
    if (s->retired->n_journeys == RETIRE_BATCH)
        flush_retired(s);
}

static void spare_journey(oa_segment *s, fs_journey *j)
{
    if (s->n_spare >= MAX_SPARE) {
        free(j);
        return;
    }
    *(void **)j = s->spare;
    s->spare = j;
    s->n_spare++;
}

/* Empties the limbo. With no journey reader in the segment, nobody can hold
 * what is in it (see the top of the file), so it is reused or freed at
 * once; otherwise it waits for a grace period like a removed entry. */
static void drain_limbo(oa_segment *s)
{
    oa_retired *l = s->limbo;
    if (atomic_fetch_add_explicit(&s->readers, 0, memory_order_acq_rel) == 0) {
        for (uint32_t i = 0; i < l->n_mem; i++)
            free(l->mem[i]);
        for (uint32_t i = 0; i < l->n_journeys; i++)
            spare_journey(s, l->journey[i]);
    } else {
        for (uint32_t i = 0; i < l->n_mem; i++)
            retire_mem(s, l->mem[i]);
        for (uint32_t i = 0; i < l->n_journeys; i++)
            retire_journey(s, l->journey[i]);
    }
    l->n_mem = l->n_journeys = 0;
}

static oa_retired *limbo(oa_segment *s)
{
    if (!s->limbo)
        s->limbo = batch_new(s);
    return s->limbo;
}

void fs_journey_table_retire_mem(fs_journey_table *t, uint32_t owner, void *p)
{
    if (!p)
        return;
    oa_segment *s = &t->seg[owner];
    oa_retired *l = limbo(s);
    l->mem[l->n_mem++] = p;
    if (l->n_mem == RETIRE_BATCH)
        drain_limbo(s);
}

void fs_journey_table_retire_journey(fs_journey_table *t, uint32_t owner, fs_journey *j)
{
    oa_segment *s = &t->seg[owner];
    oa_retired *l = limbo(s);
    l->journey[l->n_journeys++] = j;
    if (l->n_journeys == RETIRE_BATCH)
        drain_limbo(s);
}

/* Moves the journeys of every batch past its grace period to the spare list. */
static void take_ready(oa_segment *s)
{
    oa_retired *r = atomic_exchange_explicit(&s->ready, NULL, memory_order_acquire);
    while (r) {
        oa_retired *next = r->next;
        for (uint32_t i = 0; i < r->n_journeys; i++)
            spare_journey(s, r->journey[i]);
        free(r);
        r = next;
    }
}

fs_journey *fs_journey_table_journey_new(fs_journey_table *t, uint32_t owner)
{
    oa_segment *s = &t->seg[owner];
    if (!s->spare && s->limbo && s->limbo->n_journeys)
        drain_limbo(s);
    if (!s->spare)
        take_ready(s);
    void *j = s->spare;
    if (!j)
        return fs_xmalloc(sizeof(fs_journey));
    s->spare = *(void **)j;
    s->n_spare--;
    return j;
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

    retire_mem(s, c);

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
