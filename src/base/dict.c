/* dict.c -- string interning (see dict.h). */
#include "dict.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "util.h"

#define EMPTY UINT32_MAX

static void slots_alloc(fs_dict *d, size_t n)
{
    d->slots = fs_xmalloc(n * sizeof(*d->slots));
    for (size_t i = 0; i < n; i++)
        d->slots[i].id = EMPTY;
    d->mask = n - 1;
}

void fs_dict_init(fs_dict *d)
{
    memset(d, 0, sizeof(*d));
    slots_alloc(d, 16);
}

void fs_dict_free(fs_dict *d)
{
    for (uint32_t i = 0; i < d->count; i++)
        free(d->names[i]);
    free(d->names);
    free(d->lens);
    for (uint32_t i = 0; i < d->n_outgrown; i++)
        free(d->outgrown[i]);
    free(d->outgrown);
    free(d->slots);
    memset(d, 0, sizeof(*d));
}

static size_t probe(const fs_dict *d, uint64_t hash, const char *s, size_t len)
{
    size_t i = hash & d->mask;
    while (d->slots[i].id != EMPTY) {
        const fs_dict_slot *sl = &d->slots[i];
        if (sl->hash == hash && d->lens[sl->id] == len && memcmp(d->names[sl->id], s, len) == 0)
            return i;
        i = (i + 1) & d->mask;
    }
    return i;
}

static void grow(fs_dict *d)
{
    fs_dict_slot *old = d->slots;
    size_t old_n = d->mask + 1;
    slots_alloc(d, old_n * 2);
    for (size_t i = 0; i < old_n; i++) {
        if (old[i].id == EMPTY)
            continue;
        size_t j = old[i].hash & d->mask;
        while (d->slots[j].id != EMPTY)
            j = (j + 1) & d->mask;
        d->slots[j] = old[i];
    }
    free(old);
}

static void *copy_out(void *old, uint32_t n, size_t size, uint32_t cap)
{
    void *a = fs_xmalloc(cap * size);
    if (n)
        memcpy(a, old, n * size);
    return a;
}

/* Doubles the name arrays. The old ones stay allocated for readers that
 * loaded them (see dict.h); the new pointers are published before the
 * count that makes their new entries visible. */
static void grow_names(fs_dict *d)
{
    uint32_t cap = d->cap ? d->cap * 2 : 16;
    char **names = copy_out(d->names, d->count, sizeof(*names), cap);
    uint32_t *lens = copy_out(d->lens, d->count, sizeof(*lens), cap);
    if (d->names) {
        d->outgrown = fs_xrealloc(d->outgrown, (d->n_outgrown + 2) * sizeof(*d->outgrown));
        d->outgrown[d->n_outgrown++] = d->names;
        d->outgrown[d->n_outgrown++] = d->lens;
    }
    __atomic_store_n(&d->names, names, __ATOMIC_RELEASE);
    __atomic_store_n(&d->lens, lens, __ATOMIC_RELEASE);
    d->cap = cap;
}

const char *fs_dict_name_shared(const fs_dict *d, uint32_t id, uint32_t *len)
{
    if (id >= __atomic_load_n(&d->count, __ATOMIC_ACQUIRE))
        return NULL;
    /* loaded after count: arrays at least as new as the one holding id */
    char **names = __atomic_load_n(&d->names, __ATOMIC_ACQUIRE);
    uint32_t *lens = __atomic_load_n(&d->lens, __ATOMIC_ACQUIRE);
    *len = lens[id];
    return names[id];
}

uint32_t fs_dict_find(const fs_dict *d, const char *s, size_t len)
{
    return d->slots[probe(d, XXH3_64bits(s, len), s, len)].id;
}

uint32_t fs_dict_intern(fs_dict *d, const char *s, size_t len)
{
    uint64_t hash = XXH3_64bits(s, len);
    size_t i = probe(d, hash, s, len);
    if (d->slots[i].id != EMPTY)
        return d->slots[i].id;
    if (d->count == d->cap)
        grow_names(d);
    uint32_t id = d->count;
    d->names[id] = fs_xmemdup0(s, len);
    d->lens[id] = (uint32_t)len;
    __atomic_store_n(&d->count, id + 1, __ATOMIC_RELEASE);
    d->slots[i].hash = hash;
    d->slots[i].id = id;
    if ((size_t)d->count * 2 > d->mask + 1)
        grow(d);
    return id;
}
