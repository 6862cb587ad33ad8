/* journey_table.h -- the shared, lock-free store of customers with active journeys.
 *
 * Key: customer_id bytes (hash: fs_hash_customer). Value: an fs_customer
 * record of fixed size holding the id (inline up to FS_CUSTOMER_INLINE_ID
 * bytes) and one inline fs_journey per funnel. A record exists exactly while
 * at least one of its journeys is active (SPEC §2: ended journeys hold no
 * memory beyond the record's recycled slot).
 *
 * Concurrency contract:
 *   - every customer is owned by exactly one worker thread,
 *     fs_journey_table_owner(hash, n_owners); the store is split into one
 *     segment per owner (index, record slab, touch blocks, long ids), and
 *     only the owner calls the functions marked "owner" for its segment
 *     (asserted in debug builds);
 *   - records, touch blocks and long ids live in slabs (slab.h) whose
 *     memory is never freed while the table lives, so any thread may read
 *     them at any moment; fs_journey_table_read copies a customer's
 *     journeys under the record's sequence counter `seq` (odd while the
 *     owner changes the record: fs_customer_write_begin/end) and checks the
 *     record still holds that customer;
 *   - only the index arrays move (on resize); a reader loads them inside
 *     fs_journey_table_read_lock/unlock (urcu-memb) and the owner frees an
 *     outgrown one after a grace period.
 * Threads that use the table call fs_journey_table_thread_enter/leave.
 * journey_table.c explains the layout and why readers are safe.
 */
#ifndef FS_JOURNEY_TABLE_H
#define FS_JOURNEY_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "funnel.h"

typedef struct fs_journey_table fs_journey_table;

#define FS_CUSTOMER_INLINE_ID 16
#define FS_CUSTOMER_MAX_ID    128 /* SPEC §1 */
#define FS_RECORD_NONE        UINT32_MAX

/* 32 bytes, then the journeys, then the extension: the record stride is
 * sizeof(fs_customer) + n_funnels * sizeof(fs_journey) + ext_bytes. */
typedef struct fs_customer {
    uint64_t hash;        /* 0 with id_len 0 in a free record */
    uint32_t seq;         /* odd while the owner changes the record */
    uint16_t part;        /* input partition index of the customer's events */
    uint8_t id_len;       /* 1..FS_CUSTOMER_MAX_ID; 0: free */
    uint8_t n_active;     /* active journeys; owner only */
    uint64_t id[2];       /* the id's bytes if id_len <= 16, else id[0] is a long-id block */
    fs_journey journey[]; /* n_funnels */
} fs_customer;

/* The record's extension: the fields only some funnels use (funnel.h,
 * fs_funnel.ext_*), after the journeys. The owner's alone: readers on
 * other threads never copy it. */
static inline void *fs_customer_ext(fs_customer *c, uint32_t n_funnels)
{
    return (char *)c + sizeof(fs_customer) + n_funnels * sizeof(fs_journey);
}

/* Owner only, around every change to a record. The release stores of the
 * changes themselves order them after the odd count. */
static inline void fs_customer_write_begin(fs_customer *c)
{
    __atomic_store_n(&c->seq, c->seq + 1, __ATOMIC_RELAXED);
}
static inline void fs_customer_write_end(fs_customer *c)
{
    __atomic_store_n(&c->seq, c->seq + 1, __ATOMIC_RELEASE);
}

/* Which of n_owners workers owns a customer hash. Uses the high bits; the
 * index uses the low bits for slots, so the two stay independent. */
static inline uint32_t fs_journey_table_owner(uint64_t hash, uint32_t n_owners)
{
    return (uint32_t)(((hash >> 32) * n_owners) >> 32);
}

/* ext_bytes: fs_funnels.ext_bytes, a multiple of 8. */
fs_journey_table *fs_journey_table_new(uint32_t n_funnels, uint32_t ext_bytes, uint32_t n_owners,
                                       size_t expected_customers);
void fs_journey_table_free(fs_journey_table *t);

/* Before any insert: at most max_records customer records in all (0: no
 * limit), each owner's segment an equal share of them (at least 1; the
 * first max_records % n_owners owners one more). Inserting past its share
 * is the owner's to avoid (fs_journey_table_full, _oldest): the table
 * counts, the worker applies the policy (worker.c). */
void fs_journey_table_set_limit(fs_journey_table *t, uint64_t max_records);
/* Owner `owner`'s share (0: no limit). */
size_t fs_journey_table_share(const fs_journey_table *t, uint32_t owner);
/* Owner: whether segment `owner` holds its share (never without a limit). */
bool fs_journey_table_full(const fs_journey_table *t, uint32_t owner);
/* Owner, with a limit: the index of segment `owner`'s record inserted
 * first of those it holds (FS_RECORD_NONE: none). O(1). */
uint32_t fs_journey_table_oldest(fs_journey_table *t, uint32_t owner);

void fs_journey_table_thread_enter(void);
void fs_journey_table_thread_leave(void);
void fs_journey_table_read_lock(void);
void fs_journey_table_read_unlock(void);

/* Owner, inside a read section: the customer's record and its index in
 * *idx, or NULL. */
fs_customer *fs_journey_table_find(fs_journey_table *t, uint64_t hash, const char *id, size_t len,
                                   uint32_t *idx);
/* Owner, inside a read section: a record for a customer the caller knows
 * is absent, with no active journey. */
fs_customer *fs_journey_table_insert(fs_journey_table *t, uint64_t hash, const char *id, size_t len,
                                     uint16_t part, uint32_t *idx);
/* Owner, inside a read section: removes a customer whose journeys have all
 * ended; its record is reused at once (readers validate). */
void fs_journey_table_remove(fs_journey_table *t, fs_customer *c, uint32_t idx);
/* Owner: the record at idx of segment `owner`. */
fs_customer *fs_journey_table_record(fs_journey_table *t, uint32_t owner, uint32_t idx);
/* Owner: customer c's id bytes (*len of them), valid while c holds them. */
const char *fs_journey_table_id(fs_journey_table *t, uint32_t owner, const fs_customer *c,
                                uint32_t *len);
/* Owner: segment `owner`'s record slab (a stable address), for callers
 * that turn many indexes into records (the worker's timers). */
const fs_slab *fs_journey_table_records(fs_journey_table *t, uint32_t owner);
size_t fs_journey_table_count(const fs_journey_table *t);

/* Owner: counts a touch of `channel` in j (a new channel past the inline
 * ones goes to a touch block). */
void fs_journey_table_touch(fs_journey_table *t, uint32_t owner, fs_journey *j, uint32_t channel);
/* Owner: ends j (inside the record's write section): gives its touch
 * blocks back and marks it inactive. */
void fs_journey_table_end(fs_journey_table *t, uint32_t owner, fs_journey *j);
/* Owner: every touch count of j in first-touch order into *buf (grown as
 * needed, *cap its capacity); returns how many. */
uint32_t fs_journey_table_touches(fs_journey_table *t, uint32_t owner, const fs_journey *j,
                                  fs_touch_count **buf, uint32_t *cap);

/* The same three for a touch list in a record's extension (campaigns).
 * A list starts as fs_touch_list_init made it; _list_end gives its blocks
 * back (the journey holding it ends). Its order: touches[0] is the first
 * label, touches[1] the one touched last (journey_table.c), the rest in
 * no meaningful order. _list_append adds a label the list does not hold
 * with its count, at the end (restoring a saved list as it was). */
void fs_journey_table_list_touch(fs_journey_table *t, uint32_t owner, fs_touch_list *l,
                                 uint32_t label);
void fs_journey_table_list_append(fs_journey_table *t, uint32_t owner, fs_touch_list *l,
                                  uint32_t label, uint32_t count);
void fs_journey_table_list_end(fs_journey_table *t, uint32_t owner, fs_touch_list *l);
uint32_t fs_journey_table_list_touches(fs_journey_table *t, uint32_t owner, const fs_touch_list *l,
                                       fs_touch_count **buf, uint32_t *cap);

/* Owner: calls fn for every customer of segment `owner` whose partition
 * is `part` (for per-partition snapshots and drops). fn must not insert or
 * remove. */
void fs_journey_table_each(fs_journey_table *t, uint32_t owner, uint16_t part,
                           void (*fn)(void *ctx, fs_customer *c, uint32_t idx), void *ctx);

/* Any registered thread, outside a read section: copies the active
 * journeys of customer `id` into out[0..n_funnels) (funnel order; expiry_ts
 * is left to the caller, who knows the funnels) and returns how many there
 * are; 0 for a customer the table does not hold. Channel ids are label ids
 * of the customer's owner, which goes to *owner. */
uint32_t fs_journey_table_read(fs_journey_table *t, uint64_t hash, const char *id, size_t len,
                               fs_journey_view *out, uint32_t *owner);
/* Any thread: an estimate of the memory held (for a gauge). */
size_t fs_journey_table_bytes(const fs_journey_table *t);

/* Owner: cache hints for a lookup of `hash` a few events from now, so a
 * worker can overlap the memory latency of several lookups. _slot loads
 * the home index slot; _record (later, once the slot is cached) the record
 * the home slot points at, which is the right one unless the key probed
 * further. */
void fs_journey_table_prefetch_slot(fs_journey_table *t, uint64_t hash);
/* Later still, once the record is cached: the first touch block of each
 * of its active journeys' touch lists that has one (the channels, and the
 * extension's lists named by fs_journey_table_set_lists), the loads a
 * touch would otherwise wait for. */
void fs_journey_table_prefetch_touches(fs_journey_table *t, uint64_t hash);
/* Before any insert: the extension's touch lists, at ext_off[i] of the
 * extension, funnel[i]'s (for fs_journey_table_prefetch_touches). */
void fs_journey_table_set_lists(fs_journey_table *t, const uint32_t *funnel,
                                const uint32_t *ext_off, uint32_t n);
void fs_journey_table_prefetch_record(fs_journey_table *t, uint64_t hash);

#endif
