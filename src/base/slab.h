/* slab.h -- fixed-size blocks by 32-bit index, in chunks that never move.
 *
 * One writer (the owner) allocates and releases blocks; any thread may turn
 * an index into an address with fs_slab_at_shared. Chunks are allocated
 * (zeroed) as the slab grows and freed only by fs_slab_destroy, so a block's
 * address is stable and its memory stays a block of this slab for the
 * slab's whole life: a reader holding a stale index reads a block that may
 * have been reused, never freed memory (it must validate what it read, e.g.
 * with a sequence counter). The free list is a separate array of indexes, so
 * releasing a block writes nothing into it.
 */
#ifndef FS_SLAB_H
#define FS_SLAB_H

#include <stddef.h>
#include <stdint.h>

#define FS_SLAB_NONE       UINT32_MAX
#define FS_SLAB_MAX_CHUNKS (1u << 16)

typedef struct fs_slab {
    uint32_t size;       /* bytes per block */
    uint32_t chunk_bits; /* 1 << chunk_bits blocks per chunk */
    char **chunk;        /* FS_SLAB_MAX_CHUNKS slots, published with release stores */
    uint32_t n_chunks;   /* owner only, like everything below */
    uint32_t n_blocks;   /* blocks ever handed out: the high-water mark */
    uint32_t *free;      /* released indexes, reused last in first out */
    uint32_t n_free, free_cap;
} fs_slab;

void fs_slab_init(fs_slab *s, uint32_t size, uint32_t chunk_bits);
void fs_slab_destroy(fs_slab *s);
/* Owner only. The block keeps whatever it held when it was released
 * (zeroes when it is new). */
uint32_t fs_slab_alloc(fs_slab *s);
void fs_slab_release(fs_slab *s, uint32_t idx);
size_t fs_slab_bytes(const fs_slab *s); /* any thread: an estimate */
static inline size_t fs_slab_live(const fs_slab *s)
{
    return s->n_blocks - s->n_free;
}

/* Owner only: idx was handed out by fs_slab_alloc. */
static inline void *fs_slab_at(const fs_slab *s, uint32_t idx)
{
    return s->chunk[idx >> s->chunk_bits] + (size_t)(idx & ((1u << s->chunk_bits) - 1)) * s->size;
}

/* Any thread: the block at idx, or NULL when no chunk holds it (idx came
 * from a torn read). */
static inline const void *fs_slab_at_shared(const fs_slab *s, uint32_t idx)
{
    uint32_t c = idx >> s->chunk_bits;
    if (c >= FS_SLAB_MAX_CHUNKS)
        return NULL;
    const char *base = __atomic_load_n(&s->chunk[c], __ATOMIC_ACQUIRE);
    if (!base)
        return NULL;
    return base + (size_t)(idx & ((1u << s->chunk_bits) - 1)) * s->size;
}

#endif
