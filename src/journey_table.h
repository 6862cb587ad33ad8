/* journey_table.h -- the shared, lock-free table of customers with active journeys.
 *
 * Key: customer_id bytes (hash: fs_hash_customer). Value: an fs_customer that
 * holds one journey slot per funnel. An entry exists exactly while at least
 * one of its journeys is active (SPEC §2: ended journeys hold no memory).
 *
 * Concurrency contract:
 *   - every customer is owned by exactly one worker thread (routing by hash);
 *     only the owner inserts, mutates or removes its customers' entries;
 *   - the table itself is one structure shared by all workers: liburcu's
 *     RCU lock-free resizable hash table (cds_lfht), so inserts and removals by
 *     different workers proceed in parallel without locks;
 *   - any registered thread may look up entries inside an
 *     fs_journey_table_read_lock/unlock section; removed entries are freed
 *     only after a grace period, so a reader never touches freed memory.
 * Threads that use the table call fs_journey_table_thread_enter/leave.
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
    uint8_t n_active;             /* journeys != NULL */
    fs_journey *journey[];        /* n_funnels slots, then the id bytes */
} fs_customer;

static inline const char *fs_customer_id(const fs_customer *c, uint32_t n_funnels)
{
    return (const char *)&c->journey[n_funnels];
}

fs_journey_table *fs_journey_table_new(uint32_t n_funnels, size_t expected_customers);
void fs_journey_table_free(fs_journey_table *t); /* frees remaining entries and journeys */

void fs_journey_table_thread_enter(void);
void fs_journey_table_thread_leave(void);
void fs_journey_table_read_lock(void);
void fs_journey_table_read_unlock(void);

fs_customer *fs_journey_table_find(fs_journey_table *t, uint64_t hash, const char *id, size_t len);
/* Adds an entry with no journeys; the caller (the owner) knows it is absent. */
fs_customer *fs_journey_table_insert(fs_journey_table *t, uint64_t hash, const char *id,
                                     size_t len);
/* Removes an entry whose journeys have all ended; freed after a grace period. */
void fs_journey_table_remove(fs_journey_table *t, fs_customer *c);
size_t fs_journey_table_count(const fs_journey_table *t);

#endif
