/* i64map.c -- int64 -> pointer map (see i64map.h). */
#include "i64map.h"

#include <stdlib.h>

#include "util.h"

static size_t slot_of(int64_t key, size_t mask)
{
    uint64_t h =
        (uint64_t)key * 0x9E3779B97F4A7C15ull; /* Fibonacci hashing spreads aligned starts */
    return (size_t)(h >> 32) & mask;
}

void fs_i64map_init(fs_i64map *m)
{
    m->mask = 15;
    m->count = 0;
    m->slots = fs_xcalloc(m->mask + 1, sizeof(*m->slots));
}

void fs_i64map_free(fs_i64map *m)
{
    free(m->slots);
    m->slots = NULL;
    m->count = 0;
}

void *fs_i64map_get(const fs_i64map *m, int64_t key)
{
    for (size_t i = slot_of(key, m->mask);; i = (i + 1) & m->mask) {
        if (m->slots[i].value == NULL)
            return NULL;
        if (m->slots[i].key == key)
            return m->slots[i].value;
    }
}

static void grow(fs_i64map *m)
{
    fs_i64map_slot *old = m->slots;
    size_t n = m->mask + 1;
    m->mask = n * 2 - 1;
    m->slots = fs_xcalloc(n * 2, sizeof(*m->slots));
    for (size_t i = 0; i < n; i++) {
        if (!old[i].value)
            continue;
        size_t j = slot_of(old[i].key, m->mask);
        while (m->slots[j].value)
            j = (j + 1) & m->mask;
        m->slots[j] = old[i];
    }
    free(old);
}

void fs_i64map_put(fs_i64map *m, int64_t key, void *value)
{
    size_t i = slot_of(key, m->mask);
    while (m->slots[i].value && m->slots[i].key != key)
        i = (i + 1) & m->mask;
    if (!m->slots[i].value)
        m->count++;
    m->slots[i].key = key;
    m->slots[i].value = value;
    if (m->count * 2 > m->mask + 1)
        grow(m);
}

void *fs_i64map_remove(fs_i64map *m, int64_t key)
{
    size_t i = slot_of(key, m->mask);
    while (m->slots[i].value && m->slots[i].key != key)
        i = (i + 1) & m->mask;
    void *value = m->slots[i].value;
    if (!value)
        return NULL;
    m->count--;
    /* Backward shift: pull later members of the probe run into the hole. */
    size_t hole = i;
    for (size_t j = (i + 1) & m->mask; m->slots[j].value; j = (j + 1) & m->mask) {
        size_t home = slot_of(m->slots[j].key, m->mask);
        if (((j - home) & m->mask) >= ((j - hole) & m->mask)) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole].value = NULL;
    return value;
}
