/* expiry.h -- event-time expiry timers of one worker's journeys (SPEC §2 rule 1).
 *
 * A 4-ary min-heap of (expiry_ts, journey). Each journey knows its slot
 * (journey->timer_slot), so a journey that completes or is excluded leaves the
 * heap in O(log n) instead of lingering until its expiry. The heap holds
 * exactly the worker's active journeys.
 */
#ifndef FS_EXPIRY_H
#define FS_EXPIRY_H

#include <stddef.h>
#include <stdint.h>

#include "funnel.h"

typedef struct fs_timer {
    int64_t expiry_ts;
    fs_journey *journey;
} fs_timer;

typedef struct fs_expiry_heap {
    fs_timer *t;
    size_t n, cap;
} fs_expiry_heap;

void fs_expiry_init(fs_expiry_heap *h);
void fs_expiry_free(fs_expiry_heap *h);
void fs_expiry_add(fs_expiry_heap *h, fs_journey *j);
void fs_expiry_remove(fs_expiry_heap *h, fs_journey *j);
/* The journey with the earliest expiry, or NULL when empty. */
static inline fs_journey *fs_expiry_peek(const fs_expiry_heap *h)
{
    return h->n ? h->t[0].journey : NULL;
}

#endif
