/* table_lfht.h -- the former journey table on liburcu's cds_lfht (bench only).
 *
 * Same contract as src/core/journey_table.h, without owner segments: one shared
 * cds_lfht for all workers. bench_table.c measures it against the engine's
 * table; bench/RESULTS.md has the figures.
 */
#ifndef FS_TABLE_LFHT_H
#define FS_TABLE_LFHT_H

#include <stddef.h>
#include <stdint.h>

#include "journey_table.h"

typedef struct fs_lfht_table fs_lfht_table;

fs_lfht_table *fs_lfht_new(uint32_t n_funnels, size_t expected_customers);
void fs_lfht_free(fs_lfht_table *t);
void fs_lfht_thread_enter(void);
void fs_lfht_thread_leave(void);
void fs_lfht_read_lock(void);
void fs_lfht_read_unlock(void);
fs_customer *fs_lfht_find(fs_lfht_table *t, uint64_t hash, const char *id, size_t len);
fs_customer *fs_lfht_insert(fs_lfht_table *t, uint64_t hash, const char *id, size_t len);
void fs_lfht_remove(fs_lfht_table *t, fs_customer *c);
size_t fs_lfht_count(const fs_lfht_table *t);

#endif
