/* slab.c -- fixed-size blocks in never-moving chunks (see slab.h).
 *
 * Invariants: chunk[0 .. n_chunks) are allocated, the rest NULL; blocks
 * 0 .. n_blocks) have been handed out at least once and lie in those
 * chunks; free[0 .. n_free) are distinct indexes below n_blocks that are not
 * in use. A new chunk is zeroed before its pointer is published (release),
 * so a reader that finds it sees zeroes or what the owner wrote since.
 */
#include "slab.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void fs_slab_init(fs_slab *s, uint32_t size, uint32_t chunk_bits)
{
    memset(s, 0, sizeof(*s));
    assert(size % 8 == 0 && chunk_bits < 32);
    s->size = size;
    s->chunk_bits = chunk_bits;
    s->chunk = fs_xcalloc(FS_SLAB_MAX_CHUNKS, sizeof(*s->chunk));
}

void fs_slab_destroy(fs_slab *s)
{
    for (uint32_t i = 0; i < s->n_chunks; i++)
        free(s->chunk[i]);
    free(s->chunk);
    free(s->free);
    memset(s, 0, sizeof(*s));
}

static void add_chunk(fs_slab *s)
{
    if (s->n_chunks == FS_SLAB_MAX_CHUNKS ||
        (uint64_t)(s->n_chunks + 1) << s->chunk_bits >= FS_SLAB_NONE) {
        fprintf(stderr, "level=fatal msg=\"slab full\" blocks=%u\n", s->n_blocks);
        abort();
    }
    size_t bytes = (size_t)s->size << s->chunk_bits;
    char *c = aligned_alloc(64, bytes);
    if (!c) {
        fprintf(stderr, "level=fatal msg=\"out of memory\"\n");
        abort();
    }
    memset(c, 0, bytes);
    __atomic_store_n(&s->chunk[s->n_chunks], c, __ATOMIC_RELEASE);
    __atomic_store_n(&s->n_chunks, s->n_chunks + 1, __ATOMIC_RELAXED); /* fs_slab_bytes */
}

uint32_t fs_slab_alloc(fs_slab *s)
{
    if (s->n_free)
        return s->free[--s->n_free];
    if (s->n_blocks == (uint64_t)s->n_chunks << s->chunk_bits)
        add_chunk(s);
    return s->n_blocks++;
}

void fs_slab_release(fs_slab *s, uint32_t idx)
{
    assert(idx < s->n_blocks && s->n_free < s->n_blocks);
    if (s->n_free == s->free_cap) { /* grows with the high-water mark, so rarely */
        s->free_cap = s->free_cap ? s->free_cap * 2 : 1024;
        s->free = fs_xrealloc(s->free, s->free_cap * sizeof(*s->free));
    }
    s->free[s->n_free++] = idx;
}

size_t fs_slab_bytes(const fs_slab *s)
{
    size_t chunks = __atomic_load_n(&s->n_chunks, __ATOMIC_RELAXED);
    return chunks * ((size_t)s->size << s->chunk_bits) + FS_SLAB_MAX_CHUNKS * sizeof(char *);
}
