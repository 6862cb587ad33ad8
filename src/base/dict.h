/* dict.h -- string interning: bytes -> dense small integer id.
 *
 * Ids are assigned 0, 1, 2, ... in first-seen order and never change; the
 * strings are copied into the dict and stay valid (and at the same address)
 * until fs_dict_free, so other threads may read fs_dict_name of an id they
 * were handed once the owner published it. Only one thread adds.
 *
 * Open addressing with linear probing over (hash, id) slots at load <= 1/2;
 * names live in an array of pointers indexed by id.
 *
 * One reader on another thread may resolve ids while the owner adds
 * (fs_dict_name_shared): the owner publishes `count` last, and when the name
 * arrays grow it keeps the old ones until fs_dict_free instead of freeing
 * them, so a reader holding an old array still reads valid, unchanged
 * entries. The old arrays add up to less than the current one.
 */
#ifndef FS_DICT_H
#define FS_DICT_H

#include <stddef.h>
#include <stdint.h>

typedef struct fs_dict_slot {
    uint64_t hash;
    uint32_t id; /* UINT32_MAX: empty */
} fs_dict_slot;

typedef struct fs_dict {
    fs_dict_slot *slots;
    size_t mask;
    char **names;
    uint32_t *lens;
    uint32_t count, cap;
    void **outgrown; /* earlier names/lens arrays, freed by fs_dict_free */
    uint32_t n_outgrown;
} fs_dict;

void fs_dict_init(fs_dict *d);
void fs_dict_free(fs_dict *d);
/* Returns the id of (s, len), adding it if new. Aborts on out-of-memory. */
uint32_t fs_dict_intern(fs_dict *d, const char *s, size_t len);
/* Returns the id, or UINT32_MAX if absent. */
uint32_t fs_dict_find(const fs_dict *d, const char *s, size_t len);
static inline const char *fs_dict_name(const fs_dict *d, uint32_t id)
{
    return d->names[id];
}
static inline uint32_t fs_dict_len(const fs_dict *d, uint32_t id)
{
    return d->lens[id];
}
/* Any thread, while the owner may be adding: the name of `id` and its
 * length, or NULL if the owner has not published it yet. */
const char *fs_dict_name_shared(const fs_dict *d, uint32_t id, uint32_t *len);

#endif
