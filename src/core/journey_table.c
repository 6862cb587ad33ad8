/* journey_table.c -- customers with active journeys: per-owner segments of
 * fixed-size records behind an open-addressing index, one writer each.
 *
 * Layout, per owner segment:
 *
 *   index     { mask, rcu, slot[mask + 1] }   slot: one uint64 = tag << 32 | (record + 1)
 *   records   slab of stride-byte records      fs_customer (32 B) + n_funnels * fs_journey (40 B)
 *                                              + the funnels' extension (fs_customer_ext)
 *   blocks    slab of 64-byte touch blocks     7 touch counts + the next block's index
 *   long_ids  slab of 128-byte blocks          ids longer than FS_CUSTOMER_INLINE_ID (rare)
 *
 * An index slot is 0 when empty. The tag is the hash's low 32 bits, so a
 * slot's home (tag & mask) is known without touching its record, and a tag
 * mismatch (all but ~1 in 2^(32 - log2 slots) of the records a probe passes)
 * costs no record load. The owner is chosen by the hash's high bits, so the
 * two stay independent. The load factor stays at or below 3/4: the owner
 * doubles the index before an insert would pass it and halves it when fewer
 * than 1/8 of the slots are used.
 *
 * Record memory is type-stable (slab.h): a removed customer's record and
 * blocks go back to the segment's free lists and are reused by the next
 * insert, while a reader may still be copying them. That is safe because:
 *   - every record field a reader copies is written with a release store
 *     and read with acquire loads, inside the record's seqlock `seq` (odd
 *     while the owner writes; fs_customer_write_begin/end). A copy taken
 *     while `seq` was odd or changed is retried, so a reader only uses a
 *     copy of one consistent state of the record;
 *   - the copy includes the record's hash and id, and the reader uses it
 *     only if they are the customer it looks for. A free record has
 *     id_len 0, which no customer has. Indexes read from a record (touch
 *     blocks, long ids) are bounds-checked by fs_slab_at_shared, so a torn
 *     one reads some block, never unmapped memory;
 *   - a slot is one 64-bit atomic, so a reader never sees half a slot.
 *     Removal moves later slots of the probe run back one by one (backward
 *     shift, no tombstones); mid-move a reader can miss a present customer,
 *     so the owner makes the segment's `seq` odd meanwhile and a reader that
 *     missed retries unless `seq` is unchanged and even;
 *   - resizing builds a new index, publishes it with a release store (seq
 *     bumped around it) and frees the old one after an RCU grace period:
 *     index arrays are the only memory a reader may hold that is ever freed.
 * So there is no limbo and no deferred reuse of records or journeys.
 * Standalone fences are avoided (ThreadSanitizer does not model them): the
 * data's own acquire/release ordering does their work.
 *
 * Only one thread ever writes a segment (asserted in debug builds), so
 * backward-shift deletion is fine and the owner itself never retries.
 *
 * Limits (fs_journey_table_set_limit). A segment may hold at most `share`
 * records: the limit split equally between the owners (the first
 * limit % n_owners get one more), so no owner ever looks at another's
 * count. With a limit, the segment also keeps its records in an age list,
 * oldest (inserted first) at the head: a doubly linked list through a
 * parallel array `age` indexed like the records ({prev, next}, 8 bytes a
 * record slot, grown with the slab), so insert, remove and "which is the
 * oldest" are O(1) and touch no record. Invariant: the list holds exactly
 * the records of the index, in insertion order. Age is insertion, not last
 * use: an event on a held customer then costs nothing more, and a record's
 * insertion is its customer's first active journey's start.
 */
#include "journey_table.h"

#include <assert.h>
#include <pthread.h>
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

#define MIN_SLOTS       1024
#define RECORD_CHUNK    12 /* 4096 records per chunk */
#define BLOCK_CHUNK     12
#define LONG_ID_CHUNK   8
#define BLOCK_TOUCHES   7
#define LONG_ID_WORDS   (FS_CUSTOMER_MAX_ID / 8)
#define INLINE_ID_WORDS (FS_CUSTOMER_INLINE_ID / 8)

static char grace_period_sync; /* stands for "all earlier read sections ended" */

typedef struct touch_block {
    fs_touch_count touch[BLOCK_TOUCHES];
    uint32_t next; /* FS_SLAB_NONE at the end of the chain */
    uint32_t unused;
} touch_block;

typedef struct ix_array {
    size_t mask; /* immutable once published */
    struct rcu_head rcu;
    _Atomic uint64_t slot[];
} ix_array;

/* A record's neighbours in its segment's age list (FS_RECORD_NONE: none). */
typedef struct age_link {
    uint32_t prev, next;
} age_link;

typedef struct segment {
    alignas(64) atomic_uint seq; /* odd while the owner moves slots */
    _Atomic(ix_array *) arr;
    atomic_size_t index_slots; /* arr's size, for gauges that must not dereference arr */
    atomic_size_t count;
    size_t min_slots;
    fs_slab records, blocks, long_ids;
    size_t share;              /* most records held; 0: no limit (no age list) */
    age_link *age;             /* with a limit: by record index */
    uint32_t age_cap;          /* entries of age; any thread may load it (a gauge) */
    uint32_t oldest, youngest; /* the age list's ends */
#ifndef NDEBUG
    pthread_t writer; /* the owner thread, from its first write */
    bool has_writer;
#endif
} segment;

struct fs_journey_table {
    uint32_t n_funnels;
    uint32_t n_owners;
    uint32_t stride;
    segment *seg;
    uint32_t *list_off;    /* the extension's touch lists (fs_journey_table_set_lists) */
    uint32_t *list_funnel; /* and the funnel each belongs to */
    uint32_t n_lists;
};

_Static_assert(sizeof(fs_customer) == 32, "record header");
_Static_assert(sizeof(fs_journey) == 40, "inline journey");
_Static_assert(sizeof(touch_block) == 64, "touch block");

/* ---- slots and ids ------------------------------------------------------- */

static uint64_t slot_value(uint64_t hash, uint32_t record)
{
    return (uint64_t)(uint32_t)hash << 32 | (uint64_t)(record + 1);
}

static uint32_t slot_record(uint64_t v)
{
    return (uint32_t)v - 1;
}

static bool slot_tag_is(uint64_t v, uint64_t hash)
{
    return (uint32_t)(v >> 32) == (uint32_t)hash;
}

static size_t slot_home(uint64_t v, size_t mask)
{
    return (size_t)(v >> 32) & mask;
}

/* An id as zero-padded words, the form records store it in. */
static void id_words(const char *id, size_t len, uint64_t w[LONG_ID_WORDS])
{
    memset(w, 0, LONG_ID_WORDS * sizeof(*w));
    memcpy(w, id, len);
}

static void check_owner(segment *s)
{
#ifndef NDEBUG
    if (!s->has_writer) {
        s->writer = pthread_self();
        s->has_writer = true;
    }
    assert(pthread_equal(s->writer, pthread_self())); /* one writer per segment */
#else
    (void)s;
#endif
}

/* ---- life cycle ---------------------------------------------------------- */

static ix_array *array_new(size_t slots)
{
    assert(slots - 1 <= UINT32_MAX); /* homes come from 32-bit tags */
    ix_array *a = fs_xcalloc(1, sizeof(*a) + slots * sizeof(uint64_t));
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

fs_journey_table *fs_journey_table_new(uint32_t n_funnels, uint32_t ext_bytes, uint32_t n_owners,
                                       size_t expected_customers)
{
    fs_journey_table *t = fs_xcalloc(1, sizeof(*t));
    t->n_funnels = n_funnels;
    t->n_owners = n_owners ? n_owners : 1;
    assert(ext_bytes % 8 == 0);
    t->stride = (uint32_t)(sizeof(fs_customer) + n_funnels * sizeof(fs_journey) + ext_bytes);
    t->seg = aligned_alloc(64, t->n_owners * sizeof(segment));
    if (!t->seg) {
        fprintf(stderr, "level=fatal msg=\"out of memory\"\n");
        abort();
    }
    memset(t->seg, 0, t->n_owners * sizeof(segment));
    size_t per_owner = slots_for(expected_customers / t->n_owners);
    for (uint32_t i = 0; i < t->n_owners; i++) {
        segment *s = &t->seg[i];
        s->min_slots = per_owner;
        atomic_init(&s->arr, array_new(per_owner));
        atomic_init(&s->index_slots, per_owner);
        fs_slab_init(&s->records, t->stride, RECORD_CHUNK);
        fs_slab_init(&s->blocks, sizeof(touch_block), BLOCK_CHUNK);
        fs_slab_init(&s->long_ids, FS_CUSTOMER_MAX_ID, LONG_ID_CHUNK);
        s->oldest = s->youngest = FS_RECORD_NONE;
    }
    return t;
}

void fs_journey_table_set_limit(fs_journey_table *t, uint64_t max_records)
{
    for (uint32_t i = 0; i < t->n_owners; i++) {
        segment *s = &t->seg[i];
        assert(atomic_load_explicit(&s->count, memory_order_relaxed) == 0); /* before any insert */
        if (!max_records) {
            s->share = 0;
            continue;
        }
        uint64_t share = max_records / t->n_owners + (i < max_records % t->n_owners);
        s->share = share ? (size_t)share : 1; /* an owner holding nothing would start nothing */
    }
}

size_t fs_journey_table_share(const fs_journey_table *t, uint32_t owner)
{
    return t->seg[owner].share;
}

bool fs_journey_table_full(const fs_journey_table *t, uint32_t owner)
{
    const segment *s = &t->seg[owner];
    return s->share && atomic_load_explicit(&s->count, memory_order_relaxed) >= s->share;
}

uint32_t fs_journey_table_oldest(fs_journey_table *t, uint32_t owner)
{
    segment *s = &t->seg[owner];
    check_owner(s);
    return s->oldest;
}

/* ---- the age list (limits only) ------------------------------------------ */

static void age_append(segment *s, uint32_t r)
{
    assert(r < UINT32_MAX / 2); /* slab indexes stay far below: cap cannot wrap */
    if (r >= s->age_cap) {
        uint32_t cap = s->age_cap ? s->age_cap : 1024;
        while (cap <= r)
            cap *= 2;
        s->age = fs_xrealloc(s->age, (size_t)cap * sizeof(*s->age));
        __atomic_store_n(&s->age_cap, cap, __ATOMIC_RELAXED); /* the gauge reads it */
    }
    s->age[r] = (age_link){s->youngest, FS_RECORD_NONE};
    if (s->youngest == FS_RECORD_NONE)
        s->oldest = r;
    else
        s->age[s->youngest].next = r;
    s->youngest = r;
}

static void age_unlink(segment *s, uint32_t r)
{
    age_link l = s->age[r];
    if (l.prev == FS_RECORD_NONE)
        s->oldest = l.next;
    else
        s->age[l.prev].next = l.next;
    if (l.next == FS_RECORD_NONE)
        s->youngest = l.prev;
    else
        s->age[l.next].prev = l.prev;
}

static void free_array(struct rcu_head *rcu)
{
    ix_array *a = caa_container_of(rcu, ix_array, rcu);
    fs_tsan_acquire(&grace_period_sync);
    fs_tsan_acquire(a);
    free(a);
}

void fs_journey_table_free(fs_journey_table *t)
{
    if (!t)
        return;
    urcu_memb_barrier(); /* outgrown index arrays still queued */
    for (uint32_t i = 0; i < t->n_owners; i++) {
        segment *s = &t->seg[i];
        free(atomic_load_explicit(&s->arr, memory_order_relaxed));
        fs_slab_destroy(&s->records);
        fs_slab_destroy(&s->blocks);
        fs_slab_destroy(&s->long_ids);
        free(s->age);
    }
    free(t->list_off);
    free(t->list_funnel);
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

static segment *segment_of(fs_journey_table *t, uint64_t hash)
{
    return &t->seg[fs_journey_table_owner(hash, t->n_owners)];
}

fs_customer *fs_journey_table_record(fs_journey_table *t, uint32_t owner, uint32_t idx)
{
    segment *s = &t->seg[owner];
    assert(idx < s->records.n_blocks);
    return fs_slab_at(&s->records, idx);
}

const char *fs_journey_table_id(fs_journey_table *t, uint32_t owner, const fs_customer *c,
                                uint32_t *len)
{
    *len = c->id_len;
    if (c->id_len <= FS_CUSTOMER_INLINE_ID)
        return (const char *)c->id;
    return fs_slab_at(&t->seg[owner].long_ids, (uint32_t)c->id[0]);
}

const fs_slab *fs_journey_table_records(fs_journey_table *t, uint32_t owner)
{
    return &t->seg[owner].records;
}

size_t fs_journey_table_count(const fs_journey_table *t)
{
    size_t n = 0;
    for (uint32_t i = 0; i < t->n_owners; i++)
        n += atomic_load_explicit(&t->seg[i].count, memory_order_relaxed);
    return n;
}

/* ---- owner: find, insert, remove ----------------------------------------- */

static bool owner_id_is(const segment *s, const fs_customer *c, const char *id, size_t len)
{
    if (c->id_len != len)
        return false;
    if (len <= FS_CUSTOMER_INLINE_ID) { /* two words, not the 128-byte form: every event */
        uint64_t w[INLINE_ID_WORDS] = {0};
        memcpy(w, id, len);
        return c->id[0] == w[0] && c->id[1] == w[1];
    }
    return memcmp(fs_slab_at(&s->long_ids, (uint32_t)c->id[0]), id, len) == 0;
}

fs_customer *fs_journey_table_find(fs_journey_table *t, uint64_t hash, const char *id, size_t len,
                                   uint32_t *idx)
{
    segment *s = segment_of(t, hash);
    ix_array *a = atomic_load_explicit(&s->arr, memory_order_relaxed);
    for (size_t i = hash & a->mask;; i = (i + 1) & a->mask) {
        uint64_t v = atomic_load_explicit(&a->slot[i], memory_order_relaxed);
        if (!v)
            return NULL; /* the load factor guarantees an empty slot */
        if (!slot_tag_is(v, hash))
            continue;
        fs_customer *c = fs_slab_at(&s->records, slot_record(v));
        if (c->hash == hash && owner_id_is(s, c, id, len)) {
            *idx = slot_record(v);
            return c;
        }
    }
}

/* Owner only, the array not yet published or the record known absent. */
static void place(ix_array *a, uint64_t v)
{
    size_t i = slot_home(v, a->mask);
    while (atomic_load_explicit(&a->slot[i], memory_order_relaxed))
        i = (i + 1) & a->mask;
    atomic_store_explicit(&a->slot[i], v, memory_order_release);
}

static void resize(segment *s, size_t slots)
{
    ix_array *old = atomic_load_explicit(&s->arr, memory_order_relaxed);
    ix_array *a = array_new(slots);
    for (size_t k = 0; k <= old->mask; k++) {
        uint64_t v = atomic_load_explicit(&old->slot[k], memory_order_relaxed);
        if (v)
            place(a, v);
    }
    unsigned seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
    atomic_store_explicit(&s->seq, seq + 1, memory_order_relaxed);
    atomic_store_explicit(&s->arr, a, memory_order_release);
    atomic_store_explicit(&s->index_slots, slots, memory_order_relaxed);
    atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
    fs_tsan_release(old);
    urcu_memb_call_rcu(&old->rcu, free_array);
}

/* Writes the id into record c (inside its write section). */
static void store_id(segment *s, fs_customer *c, const char *id, size_t len)
{
    uint64_t w[LONG_ID_WORDS];
    id_words(id, len, w);
    if (len <= FS_CUSTOMER_INLINE_ID) {
        for (int i = 0; i < INLINE_ID_WORDS; i++)
            __atomic_store_n(&c->id[i], w[i], __ATOMIC_RELEASE);
    } else {
        uint32_t b = fs_slab_alloc(&s->long_ids);
        uint64_t *dst = fs_slab_at(&s->long_ids, b);
        for (int i = 0; i < LONG_ID_WORDS; i++)
            __atomic_store_n(&dst[i], w[i], __ATOMIC_RELEASE);
        __atomic_store_n(&c->id[0], (uint64_t)b, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&c->id_len, (uint8_t)len, __ATOMIC_RELEASE);
}

fs_customer *fs_journey_table_insert(fs_journey_table *t, uint64_t hash, const char *id, size_t len,
                                     uint16_t part, uint32_t *idx)
{
    segment *s = segment_of(t, hash);
    check_owner(s);
    assert(len >= 1 && len <= FS_CUSTOMER_MAX_ID);
    size_t count = atomic_load_explicit(&s->count, memory_order_relaxed);
    ix_array *a = atomic_load_explicit(&s->arr, memory_order_relaxed);
    if ((count + 1) * 4 > (a->mask + 1) * 3) {
        resize(s, (a->mask + 1) * 2);
        a = atomic_load_explicit(&s->arr, memory_order_relaxed);
    }
    uint32_t r = fs_slab_alloc(&s->records);
    fs_customer *c = fs_slab_at(&s->records, r);
    assert(c->id_len == 0 && c->n_active == 0);
    for (uint32_t f = 0; f < t->n_funnels; f++) {
        /* ended journeys left the wheel; a new chunk's zeroes are no links */
        assert(!c->journey[f].active);
        c->journey[f].timer = (fs_wheel_link){FS_WHEEL_NONE, FS_WHEEL_NONE};
    }
    fs_customer_write_begin(c);
    __atomic_store_n(&c->hash, hash, __ATOMIC_RELEASE);
    c->part = part;
    store_id(s, c, id, len);
    fs_customer_write_end(c);
    place(a, slot_value(hash, r));
    if (s->share)
        age_append(s, r);
    atomic_store_explicit(&s->count, count + 1, memory_order_relaxed);
    *idx = r;
    return c;
}

/* Is home `h` cyclically outside (hole, j]? Then the slot at j may fill the hole. */
static int may_fill(size_t hole, size_t j, size_t h)
{
    return hole <= j ? (h <= hole || h > j) : (h <= hole && h > j);
}

/* Empties slot `hole` and shifts the rest of its probe run back (Knuth's
 * Algorithm R), inside an odd `seq` so readers that miss retry. */
static void delete_slot(segment *s, ix_array *a, size_t hole)
{
    unsigned seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
    atomic_store_explicit(&s->seq, seq + 1, memory_order_relaxed);
    for (size_t j = (hole + 1) & a->mask;; j = (j + 1) & a->mask) {
        uint64_t v = atomic_load_explicit(&a->slot[j], memory_order_relaxed);
        if (!v)
            break;
        if (may_fill(hole, j, slot_home(v, a->mask))) {
            atomic_store_explicit(&a->slot[hole], v, memory_order_release);
            hole = j;
        }
    }
    atomic_store_explicit(&a->slot[hole], 0, memory_order_release);
    atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
}

void fs_journey_table_remove(fs_journey_table *t, fs_customer *c, uint32_t idx)
{
    segment *s = segment_of(t, c->hash);
    check_owner(s);
    assert(c->n_active == 0 && c == fs_slab_at(&s->records, idx));
#ifndef NDEBUG
    for (uint32_t f = 0; f < t->n_funnels; f++) /* ended: inactive and out of the wheel */
        assert(!c->journey[f].active && !fs_wheel_linked(&c->journey[f].timer));
#endif
    ix_array *a = atomic_load_explicit(&s->arr, memory_order_relaxed);
    uint64_t v = slot_value(c->hash, idx);
    size_t i = c->hash & a->mask;
    while (atomic_load_explicit(&a->slot[i], memory_order_relaxed) != v)
        i = (i + 1) & a->mask; /* present: the caller owns it */
    delete_slot(s, a, i);
    if (s->share)
        age_unlink(s, idx);

    fs_customer_write_begin(c);
    if (c->id_len > FS_CUSTOMER_INLINE_ID)
        fs_slab_release(&s->long_ids, (uint32_t)c->id[0]);
    __atomic_store_n(&c->id_len, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&c->hash, 0, __ATOMIC_RELEASE);
    fs_customer_write_end(c);
    fs_slab_release(&s->records, idx);

    size_t count = atomic_load_explicit(&s->count, memory_order_relaxed) - 1;
    atomic_store_explicit(&s->count, count, memory_order_relaxed);
    if (a->mask + 1 > s->min_slots && count < (a->mask + 1) / 8)
        resize(s, (a->mask + 1) / 2);
}

void fs_journey_table_each(fs_journey_table *t, uint32_t owner, uint16_t part,
                           void (*fn)(void *ctx, fs_customer *c, uint32_t idx), void *ctx)
{
    segment *s = &t->seg[owner];
    check_owner(s);
    ix_array *a = atomic_load_explicit(&s->arr, memory_order_relaxed);
    for (size_t i = 0; i <= a->mask; i++) {
        uint64_t v = atomic_load_explicit(&a->slot[i], memory_order_relaxed);
        if (!v)
            continue;
        fs_customer *c = fs_slab_at(&s->records, slot_record(v));
        if (c->part == part)
            fn(ctx, c, slot_record(v));
    }
}

/* ---- owner: touches ------------------------------------------------------ */

static void bump(fs_touch_count *tc)
{
    __atomic_store_n(&tc->count, tc->count + 1, __ATOMIC_RELEASE);
}

/* A new touch block, linked at *link, with nothing in it yet. */
static touch_block *block_append(segment *s, uint32_t *link)
{
    uint32_t b = fs_slab_alloc(&s->blocks);
    touch_block *tb = fs_slab_at(&s->blocks, b);
    __atomic_store_n(&tb->next, FS_SLAB_NONE, __ATOMIC_RELEASE);
    __atomic_store_n(link, b, __ATOMIC_RELEASE);
    return tb;
}

/* A touch list's fields, wherever they live: a journey's channels or an
 * extension's fs_touch_list share the code below.
 *
 * `recent` lists (campaigns) keep the label touched last in inline slot 1:
 * a found or new label past it swaps places with it. A journey has few
 * channels but may collect tens of campaigns, mostly one after the other
 * (a campaign sticks to a visit), so the next touch usually finds its
 * label inline instead of walking the chain of blocks, a cache miss each.
 * Slot 0 stays the first touch; the order of the others carries no
 * meaning (linear credit sums counts), and depends only on the journey's
 * own events, so it is the same on any thread count or restore. */
typedef struct touch_ref {
    fs_touch_count *touch; /* FS_JOURNEY_INLINE_TOUCHES inline */
    uint32_t *more;
    uint16_t *n;
    bool recent;
} touch_ref;

static touch_ref journey_ref(fs_journey *j)
{
    return (touch_ref){j->touch, &j->more, &j->n_touches, false};
}

static touch_ref list_ref(fs_touch_list *l)
{
    return (touch_ref){l->touch, &l->more, &l->n, true};
}

_Static_assert(FS_JOURNEY_INLINE_TOUCHES == 2, "the recent label's slot is 1");

/* A recent list's label at tc (in a block) becomes the one in slot 1. */
static void make_recent(touch_ref r, fs_touch_count *tc)
{
    if (!r.recent)
        return;
    /* release stores like every touch write: a reader copying a
     * journey whose blocks were since reused may still read this block
     * (its copy is then refused by the record's sequence count) */
    fs_touch_count t = r.touch[1];
    __atomic_store_n(&r.touch[1].label, tc->label, __ATOMIC_RELEASE);
    __atomic_store_n(&r.touch[1].count, tc->count, __ATOMIC_RELEASE);
    __atomic_store_n(&tc->label, t.label, __ATOMIC_RELEASE);
    __atomic_store_n(&tc->count, t.count, __ATOMIC_RELEASE);
}

static void ref_touch(segment *s, touch_ref r, uint32_t label)
{
    uint32_t n = *r.n, k = 0;
    for (; k < n && k < FS_JOURNEY_INLINE_TOUCHES; k++)
        if (r.touch[k].label == label) {
            bump(&r.touch[k]);
            return;
        }
    touch_block *tb = NULL;
    uint32_t *link = r.more;
    while (k < n) {
        assert(*link != FS_SLAB_NONE);
        tb = fs_slab_at(&s->blocks, *link);
        for (uint32_t i = 0; i < BLOCK_TOUCHES && k < n; i++, k++)
            if (tb->touch[i].label == label) {
                bump(&tb->touch[i]);
                make_recent(r, &tb->touch[i]);
                return;
            }
        link = &tb->next;
    }
    /* a new label goes to position n: inline, the last block, or a new one */
    if (n == UINT16_MAX) { /* 65535 distinct labels in one journey: fold into the last */
        bump(&tb->touch[(n - 1 - FS_JOURNEY_INLINE_TOUCHES) % BLOCK_TOUCHES]);
        return;
    }
    fs_touch_count *tc;
    if (n < FS_JOURNEY_INLINE_TOUCHES) {
        tc = &r.touch[n];
    } else {
        uint32_t pos = (n - FS_JOURNEY_INLINE_TOUCHES) % BLOCK_TOUCHES;
        if (pos == 0)
            tb = block_append(s, link);
        tc = &tb->touch[pos];
    }
    __atomic_store_n(&tc->label, label, __ATOMIC_RELEASE);
    __atomic_store_n(&tc->count, 1, __ATOMIC_RELEASE);
    __atomic_store_n(r.n, (uint16_t)(n + 1), __ATOMIC_RELEASE);
    if (n >= FS_JOURNEY_INLINE_TOUCHES)
        make_recent(r, tc);
}

/* Appends a label the list does not hold, with its count (a restore:
 * the saved order comes back as it was, recent slot included). */
static void ref_append(segment *s, touch_ref r, uint32_t label, uint32_t count)
{
    uint32_t n = *r.n;
    assert(n < UINT16_MAX);
    fs_touch_count *tc;
    if (n < FS_JOURNEY_INLINE_TOUCHES) {
        tc = &r.touch[n];
    } else {
        uint32_t *link = r.more;
        touch_block *tb = NULL;
        for (uint32_t k = FS_JOURNEY_INLINE_TOUCHES; k < n; k += BLOCK_TOUCHES) {
            tb = fs_slab_at(&s->blocks, *link);
            link = &tb->next;
        }
        uint32_t pos = (n - FS_JOURNEY_INLINE_TOUCHES) % BLOCK_TOUCHES;
        if (pos == 0)
            tb = block_append(s, link);
        tc = &tb->touch[pos];
    }
    __atomic_store_n(&tc->label, label, __ATOMIC_RELEASE);
    __atomic_store_n(&tc->count, count, __ATOMIC_RELEASE);
    __atomic_store_n(r.n, (uint16_t)(n + 1), __ATOMIC_RELEASE);
}

static void ref_release(segment *s, touch_ref r)
{
    for (uint32_t b = *r.more; b != FS_SLAB_NONE;) {
        uint32_t next = ((touch_block *)fs_slab_at(&s->blocks, b))->next;
        fs_slab_release(&s->blocks, b);
        b = next;
    }
    __atomic_store_n(r.more, FS_SLAB_NONE, __ATOMIC_RELEASE);
    __atomic_store_n(r.n, 0, __ATOMIC_RELEASE);
}

static uint32_t ref_touches(segment *s, const touch_ref r, fs_touch_count **buf, uint32_t *cap)
{
    uint32_t n = *r.n, k = 0;
    if (n > *cap) {
        *cap = n > 2 * *cap ? n : 2 * *cap;
        *buf = fs_xrealloc(*buf, *cap * sizeof(**buf));
    }
    for (; k < n && k < FS_JOURNEY_INLINE_TOUCHES; k++)
        (*buf)[k] = r.touch[k];
    for (uint32_t b = *r.more; k < n; b = ((touch_block *)fs_slab_at(&s->blocks, b))->next) {
        const touch_block *tb = fs_slab_at(&s->blocks, b);
        for (uint32_t i = 0; i < BLOCK_TOUCHES && k < n; i++, k++)
            (*buf)[k] = tb->touch[i];
    }
    return n;
}

void fs_journey_table_touch(fs_journey_table *t, uint32_t owner, fs_journey *j, uint32_t channel)
{
    assert(j->active);
    ref_touch(&t->seg[owner], journey_ref(j), channel);
}

void fs_journey_table_end(fs_journey_table *t, uint32_t owner, fs_journey *j)
{
    assert(j->active);
    ref_release(&t->seg[owner], journey_ref(j));
    __atomic_store_n(&j->active, 0, __ATOMIC_RELEASE);
}

uint32_t fs_journey_table_touches(fs_journey_table *t, uint32_t owner, const fs_journey *j,
                                  fs_touch_count **buf, uint32_t *cap)
{
    return ref_touches(&t->seg[owner], journey_ref((fs_journey *)j), buf, cap);
}

void fs_journey_table_list_touch(fs_journey_table *t, uint32_t owner, fs_touch_list *l,
                                 uint32_t label)
{
    ref_touch(&t->seg[owner], list_ref(l), label);
}

void fs_journey_table_list_append(fs_journey_table *t, uint32_t owner, fs_touch_list *l,
                                  uint32_t label, uint32_t count)
{
    ref_append(&t->seg[owner], list_ref(l), label, count);
}

void fs_journey_table_list_end(fs_journey_table *t, uint32_t owner, fs_touch_list *l)
{
    ref_release(&t->seg[owner], list_ref(l));
}

uint32_t fs_journey_table_list_touches(fs_journey_table *t, uint32_t owner, const fs_touch_list *l,
                                       fs_touch_count **buf, uint32_t *cap)
{
    return ref_touches(&t->seg[owner], list_ref((fs_touch_list *)l), buf, cap);
}

/* ---- readers ------------------------------------------------------------- */

static bool shared_id_is(const segment *s, const fs_customer *c, size_t len,
                         const uint64_t w[LONG_ID_WORDS])
{
    if (__atomic_load_n(&c->id_len, __ATOMIC_ACQUIRE) != len)
        return false;
    if (len <= FS_CUSTOMER_INLINE_ID)
        return __atomic_load_n(&c->id[0], __ATOMIC_ACQUIRE) == w[0] &&
               __atomic_load_n(&c->id[1], __ATOMIC_ACQUIRE) == w[1];
    uint64_t b = __atomic_load_n(&c->id[0], __ATOMIC_ACQUIRE);
    const uint64_t *ext = b < FS_SLAB_NONE ? fs_slab_at_shared(&s->long_ids, (uint32_t)b) : NULL;
    if (!ext)
        return false; /* torn: the sequence check rejects the copy */
    for (int i = 0; i < LONG_ID_WORDS; i++)
        if (__atomic_load_n(&ext[i], __ATOMIC_ACQUIRE) != w[i])
            return false;
    return true;
}

static void copy_touch(const fs_touch_count *from, fs_touch_count *to)
{
    to->label = __atomic_load_n(&from->label, __ATOMIC_ACQUIRE);
    to->count = __atomic_load_n(&from->count, __ATOMIC_ACQUIRE);
}

static void copy_journey(const segment *s, const fs_journey *j, uint32_t f, fs_journey_view *v)
{
    v->funnel = f;
    v->start_ts = __atomic_load_n(&j->start_ts, __ATOMIC_ACQUIRE);
    v->expiry_ts = 0;
    v->max_stage = __atomic_load_n(&j->max_stage, __ATOMIC_ACQUIRE);
    uint32_t n = __atomic_load_n(&j->n_touches, __ATOMIC_ACQUIRE), k = 0;
    if (n > FS_JOURNEY_COPY_TOUCHES)
        n = FS_JOURNEY_COPY_TOUCHES;
    for (; k < n && k < FS_JOURNEY_INLINE_TOUCHES; k++)
        copy_touch(&j->touch[k], &v->touch[k]);
    uint32_t b = __atomic_load_n(&j->more, __ATOMIC_ACQUIRE);
    while (k < n) { /* each block gives at least one touch: at most n blocks */
        const touch_block *tb = fs_slab_at_shared(&s->blocks, b);
        if (!tb)
            break; /* torn: the sequence check rejects the copy */
        for (uint32_t i = 0; i < BLOCK_TOUCHES && k < n; i++, k++)
            copy_touch(&tb->touch[i], &v->touch[k]);
        b = __atomic_load_n(&tb->next, __ATOMIC_ACQUIRE);
    }
    v->n_touches = k;
    v->first_channel = k ? v->touch[0].label : 0; /* touches are in first-touch order */
}

/* One copy of record c's active journeys if it holds the customer; false
 * if the owner changed the record meanwhile (the copy is then unusable). */
static bool copy_record(const fs_journey_table *t, const segment *s, const fs_customer *c,
                        uint64_t hash, size_t len, const uint64_t w[LONG_ID_WORDS],
                        fs_journey_view *out, uint32_t *n, bool *match)
{
    uint32_t seq = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
    if (seq & 1)
        return false;
    *n = 0;
    *match = __atomic_load_n(&c->hash, __ATOMIC_ACQUIRE) == hash && shared_id_is(s, c, len, w);
    for (uint32_t f = 0; *match && f < t->n_funnels; f++)
        if (__atomic_load_n(&c->journey[f].active, __ATOMIC_ACQUIRE))
            copy_journey(s, &c->journey[f], f, &out[(*n)++]);
    /* the copy's loads are acquires, so this load cannot move above them */
    return __atomic_load_n(&c->seq, __ATOMIC_RELAXED) == seq;
}

/* A stable copy of record r; returns whether it holds the customer. */
static bool read_record(const fs_journey_table *t, const segment *s, uint32_t r, uint64_t hash,
                        size_t len, const uint64_t w[LONG_ID_WORDS], fs_journey_view *out,
                        uint32_t *n)
{
    const fs_customer *c = fs_slab_at_shared(&s->records, r);
    if (!c)
        return false;
    bool match;
    for (unsigned tries = 1; !copy_record(t, s, c, hash, len, w, out, n, &match); tries++)
        if (tries % 64 == 0)
            sched_yield(); /* the owner may have been preempted mid-change */
    return match;
}

/* One probe of the index: 1 found (*n journeys copied), 0 missed (to be
 * validated against the segment's seq), -1 ran off a torn index. */
static int probe_copy(const fs_journey_table *t, const segment *s, const ix_array *a, uint64_t hash,
                      size_t len, const uint64_t w[LONG_ID_WORDS], fs_journey_view *out,
                      uint32_t *n)
{
    for (size_t i = hash & a->mask, k = 0; k <= a->mask; i = (i + 1) & a->mask, k++) {
        uint64_t v = atomic_load_explicit(&a->slot[i], memory_order_acquire);
        if (!v)
            return 0;
        if (slot_tag_is(v, hash) && read_record(t, s, slot_record(v), hash, len, w, out, n))
            return 1;
    }
    return -1;
}

uint32_t fs_journey_table_read(fs_journey_table *t, uint64_t hash, const char *id, size_t len,
                               fs_journey_view *out, uint32_t *owner)
{
    *owner = fs_journey_table_owner(hash, t->n_owners);
    if (len == 0 || len > FS_CUSTOMER_MAX_ID)
        return 0;
    segment *s = &t->seg[*owner];
    uint64_t w[LONG_ID_WORDS];
    id_words(id, len, w);
    uint32_t n = 0;
    fs_journey_table_read_lock();
    for (unsigned tries = 1;; tries++) {
        unsigned seq = atomic_load_explicit(&s->seq, memory_order_acquire);
        if (!(seq & 1)) {
            const ix_array *a = atomic_load_explicit(&s->arr, memory_order_acquire);
            int r = probe_copy(t, s, a, hash, len, w, out, &n);
            if (r == 1)
                break;
            if (r == 0 && atomic_load_explicit(&s->seq, memory_order_relaxed) == seq) {
                n = 0;
                break;
            }
        }
        if (tries % 64 == 0)
            sched_yield(); /* the owner is moving slots and may have been preempted */
    }
    fs_journey_table_read_unlock();
    return n;
}

/* ---- hints and gauges ---------------------------------------------------- */

void fs_journey_table_prefetch_slot(fs_journey_table *t, uint64_t hash)
{
    ix_array *a = atomic_load_explicit(&segment_of(t, hash)->arr, memory_order_relaxed);
    __builtin_prefetch(&a->slot[hash & a->mask]);
}

void fs_journey_table_set_lists(fs_journey_table *t, const uint32_t *funnel,
                                const uint32_t *ext_off, uint32_t n)
{
    assert(t->n_lists == 0 && n <= t->n_funnels);
    t->list_off = fs_xmalloc((n ? n : 1) * sizeof(*t->list_off));
    t->list_funnel = fs_xmalloc((n ? n : 1) * sizeof(*t->list_funnel));
    for (uint32_t i = 0; i < n; i++) {
        assert(funnel[i] < t->n_funnels);
        t->list_off[i] = ext_off[i];
        t->list_funnel[i] = funnel[i];
    }
    t->n_lists = n;
}

static void prefetch_block(const segment *s, uint32_t n, uint32_t more)
{
    const void *b;
    if (n > FS_JOURNEY_INLINE_TOUCHES && (b = fs_slab_at_shared(&s->blocks, more)))
        __builtin_prefetch(b);
}

/* The record `hash`'s home slot points at (NULL: empty), and its segment:
 * the right record unless the key probed further, which is all a prefetch
 * hint needs. */
static fs_customer *home_record(fs_journey_table *t, uint64_t hash, segment **seg)
{
    segment *s = *seg = segment_of(t, hash);
    ix_array *a = atomic_load_explicit(&s->arr, memory_order_relaxed);
    uint64_t v = atomic_load_explicit(&a->slot[hash & a->mask], memory_order_relaxed);
    return v ? fs_slab_at(&s->records, slot_record(v)) : NULL;
}

void fs_journey_table_prefetch_touches(fs_journey_table *t, uint64_t hash)
{
    segment *s;
    fs_customer *c = home_record(t, hash, &s);
    if (!c)
        return;
    for (uint32_t f = 0; f < t->n_funnels; f++)
        if (c->journey[f].active)
            prefetch_block(s, c->journey[f].n_touches, c->journey[f].more);
    char *ext = fs_customer_ext(c, t->n_funnels);
    for (uint32_t i = 0; i < t->n_lists; i++) {
        const fs_touch_list *l = (const fs_touch_list *)(ext + t->list_off[i]);
        if (c->journey[t->list_funnel[i]].active)
            prefetch_block(s, l->n, l->more);
    }
}

void fs_journey_table_prefetch_record(fs_journey_table *t, uint64_t hash)
{
    segment *s;
    const char *c = (const char *)home_record(t, hash, &s);
    if (!c)
        return;
    for (uint32_t off = 0; off < t->stride; off += 64)
        __builtin_prefetch(c + off);
    __builtin_prefetch(c + t->stride - 1);
}

size_t fs_journey_table_bytes(const fs_journey_table *t)
{
    size_t bytes = t->n_owners * sizeof(segment);
    for (uint32_t i = 0; i < t->n_owners; i++) {
        const segment *s = &t->seg[i];
        /* not s->arr: outside a read section it may be freed meanwhile */
        size_t slots = atomic_load_explicit(&s->index_slots, memory_order_relaxed);
        if (slots)
            bytes += sizeof(ix_array) + slots * sizeof(uint64_t);
        bytes +=
            fs_slab_bytes(&s->records) + fs_slab_bytes(&s->blocks) + fs_slab_bytes(&s->long_ids);
        bytes += (size_t)__atomic_load_n(&s->age_cap, __ATOMIC_RELAXED) * sizeof(age_link);
    }
    return bytes;
}
