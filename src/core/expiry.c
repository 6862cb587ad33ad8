/* expiry.c -- min-heap of journey expiry timers (see expiry.h).
 *
 * A 4-ary heap: node i's children are 4i+1..4i+4. Every move of a timer
 * writes its journey's timer_slot, and journeys are scattered in memory, so
 * a sift costs one cache miss per level; four children per node halve the
 * levels of a binary heap (and the four 16-byte children share a cache line
 * when the array is 64-byte aligned, which malloc's 16-byte alignment makes
 * likely enough). Removing a completed journey from the middle is the common
 * case, and it sifts the heap's last timer down from there.
 */
#include "expiry.h"

#include <stdlib.h>

#include "util.h"

#define ARITY 4

void fs_expiry_init(fs_expiry_heap *h)
{
    h->t = NULL;
    h->n = h->cap = 0;
}

void fs_expiry_free(fs_expiry_heap *h)
{
    free(h->t);
    fs_expiry_init(h);
}

static void place(fs_expiry_heap *h, size_t i, fs_timer t)
{
    h->t[i] = t;
    t.journey->timer_slot = (uint32_t)i;
}

static void sift_up(fs_expiry_heap *h, size_t i)
{
    fs_timer t = h->t[i];
    while (i > 0) {
        size_t parent = (i - 1) / ARITY;
        if (h->t[parent].expiry_ts <= t.expiry_ts)
            break;
        place(h, i, h->t[parent]);
        i = parent;
    }
    place(h, i, t);
}

static void sift_down(fs_expiry_heap *h, size_t i)
{
    fs_timer t = h->t[i];
    for (;;) {
        size_t first = ARITY * i + 1, child = first;
        if (first >= h->n)
            break;
        size_t end = first + ARITY < h->n ? first + ARITY : h->n;
        for (size_t c = first + 1; c < end; c++)
            if (h->t[c].expiry_ts < h->t[child].expiry_ts)
                child = c;
        if (t.expiry_ts <= h->t[child].expiry_ts)
            break;
        place(h, i, h->t[child]);
        i = child;
    }
    place(h, i, t);
}

void fs_expiry_add(fs_expiry_heap *h, fs_journey *j)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 1024;
        h->t = fs_xrealloc(h->t, h->cap * sizeof(*h->t));
    }
    h->t[h->n] = (fs_timer){j->expiry_ts, j};
    sift_up(h, h->n++);
}

void fs_expiry_remove(fs_expiry_heap *h, fs_journey *j)
{
    size_t i = j->timer_slot;
    h->n--;
    if (i == h->n)
        return;
    h->t[i] = h->t[h->n];
    if (i > 0 && h->t[(i - 1) / ARITY].expiry_ts > h->t[i].expiry_ts)
        sift_up(h, i);
    else
        sift_down(h, i);
}
