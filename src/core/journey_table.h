/* journey_table.h -- the shared, lock-free table of customers with active journeys.
 *
 * Key: customer_id bytes (hash: fs_hash_customer). Value: an fs_customer that
 * holds one journey slot per funnel. An entry exists exactly while at least
 * one of its journeys is active (SPEC §2: ended journeys hold no memory).
 *
 * Concurrency contract:
 *   - every customer is owned by exactly one worker thread,
 *     fs_journey_table_owner(hash, n_owners); only the owner inserts, mutates
 *     or removes its customers' entries;
 *   - the table is split into one segment per owner, so writers never
 *     contend; each segment is an open-addressing array (journey_table.c
 *     explains why readers are safe without locks);
 *   - any registered thread may look up entries inside an
 *     fs_journey_table_read_lock/unlock section (urcu-memb); removed entries
 *     and outgrown arrays are freed only after a grace period, so a reader
 *     never touches freed memory;
 *   - journeys are reachable too: the owner allocates them with
 *     fs_journey_table_journey_new and hands ended ones (and outgrown touch
 *     arrays) to fs_journey_table_retire_*, which reuse or free them only
 *     once no lookup can reach them (at once when none is running, else
 *     after a grace period). A reader copies a customer's journeys with
 *     fs_journey_table_read, a seqlock over the customer's `seq`: the owner
 *     makes it odd while it changes the customer's journeys
 *     (fs_customer_write_begin/end), and a reader retries a copy during
 *     which it was odd or moved.
 * Threads that use the table call fs_journey_table_thread_enter/leave.
 * Why this design and not liburcu's cds_lfht: bench/RESULTS.md.
 */
#ifndef FS_JOURNEY_TABLE_H
#define FS_JOURNEY_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "funnel.h"

typedef struct fs_journey_table fs_journey_table;

typedef struct fs_customer {
    uint64_t hash;
    uint8_t id_len;
    uint8_t n_active;      /* journeys != NULL */
    uint32_t seq;          /* odd while the owner changes the journeys */
    fs_journey *journey[]; /* n_funnels slots, then the id bytes */
} fs_customer;

/* Owner only, around every change to c's journeys. The release stores of
 * the changes themselves (funnel.h) order them after the odd count. */
static inline void fs_customer_write_begin(fs_customer *c)
{
    __atomic_store_n(&c->seq, c->seq + 1, __ATOMIC_RELAXED);
}
static inline void fs_customer_write_end(fs_customer *c)
{
    __atomic_store_n(&c->seq, c->seq + 1, __ATOMIC_RELEASE);
}
/* Owner only: publishes (or, with NULL, unpublishes) c's journey in funnel f. */
static inline void fs_customer_set_journey(fs_customer *c, uint32_t f, fs_journey *j)
{
    __atomic_store_n(&c->journey[f], j, __ATOMIC_RELEASE);
}

static inline const char *fs_customer_id(const fs_customer *c, uint32_t n_funnels)
{
    return (const char *)&c->journey[n_funnels];
}

/* Which of n_owners workers owns a customer hash. Uses the high bits; the
 * table indexes slots with the low bits, so the two stay independent. */
static inline uint32_t fs_journey_table_owner(uint64_t hash, uint32_t n_owners)
{
    return (uint32_t)(((hash >> 32) * n_owners) >> 32);
}

fs_journey_table *fs_journey_table_new(uint32_t n_funnels, uint32_t n_owners,
                                       size_t expected_customers);
void fs_journey_table_free(fs_journey_table *t); /* frees remaining entries and journeys */

void fs_journey_table_thread_enter(void);
void fs_journey_table_thread_leave(void);
void fs_journey_table_read_lock(void);
void fs_journey_table_read_unlock(void);

/* Any registered thread, inside a read section. */
fs_customer *fs_journey_table_find(fs_journey_table *t, uint64_t hash, const char *id, size_t len);
/* Owner only: adds an entry with no journeys; the caller knows it is absent. */
fs_customer *fs_journey_table_insert(fs_journey_table *t, uint64_t hash, const char *id,
                                     size_t len);
/* Owner only: removes an entry whose journeys have all ended; it is freed
 * after a grace period. */
void fs_journey_table_remove(fs_journey_table *t, fs_customer *c);
size_t fs_journey_table_count(const fs_journey_table *t);

/* Owner `owner` only: a journey to initialise and publish; a reused one
 * that no lookup can reach any more, else a new one. */
fs_journey *fs_journey_table_journey_new(fs_journey_table *t, uint32_t owner);
/* Owner only: j has been unpublished; it is reused once no lookup can
 * reach it. */
void fs_journey_table_retire_journey(fs_journey_table *t, uint32_t owner, fs_journey *j);
/* Owner only: memory a lookup may still hold (a touch array); freed once
 * none can. NULL is ignored. */
void fs_journey_table_retire_mem(fs_journey_table *t, uint32_t owner, void *p);

/* Any registered thread, outside a read section: copies the active
 * journeys of customer `id` into out[0..n_funnels) (funnel order) and
 * returns how many there are; 0 for a customer the table does not hold.
 * Channel ids are label ids of the customer's owner, which goes to *owner. */
uint32_t fs_journey_table_read(fs_journey_table *t, uint64_t hash, const char *id, size_t len,
                               fs_journey_view *out, uint32_t *owner);
/* Any thread: an estimate of the memory held by slots and entries (the
 * array a reader loads may be a stale one; good enough for a gauge). */
size_t fs_journey_table_bytes(const fs_journey_table *t);

/* Owner only: cache hints for a lookup of `hash` a few events from now, so
 * a worker can overlap the memory latency of several lookups. _slot loads
 * the home slot; _entry (later, once the slot is cached) the entry the home
 * slot points at, which is the right one unless the key probed further. */
void fs_journey_table_prefetch_slot(fs_journey_table *t, uint64_t hash);
void fs_journey_table_prefetch_entry(fs_journey_table *t, uint64_t hash);

#endif
