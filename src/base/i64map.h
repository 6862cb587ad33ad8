/* i64map.h -- int64 key -> pointer hash map, single-threaded.
 *
 * Open addressing with linear probing, load <= 1/2, deletion by backward
 * shift (no tombstones), so lookups stay short however many keys come and go.
 * Used for per-worker window and cohort slots keyed by window start.
 */
#ifndef FS_I64MAP_H
#define FS_I64MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct fs_i64map_slot {
    int64_t key;
    void *value; /* NULL: empty slot */
} fs_i64map_slot;

typedef struct fs_i64map {
    fs_i64map_slot *slots;
    size_t mask;
    size_t count;
} fs_i64map;

void fs_i64map_init(fs_i64map *m);
void fs_i64map_free(fs_i64map *m);
void *fs_i64map_get(const fs_i64map *m, int64_t key);
void fs_i64map_put(fs_i64map *m, int64_t key, void *value); /* value != NULL; replaces */
void *fs_i64map_remove(fs_i64map *m, int64_t key);          /* returns the old value */

#endif
