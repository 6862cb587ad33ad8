/* funnel.h -- compiled funnels and the per-customer journey state machine (SPEC §2).
 *
 * fs_funnels is the config's funnels turned into lookup tables: every event
 * type named anywhere gets a dense type id, and each funnel maps a type id to
 * a role: a stage index, FS_ROLE_EXCLUDE or FS_ROLE_NONE. It is immutable
 * after fs_funnels_compile and shared read-only by all threads.
 *
 * fs_funnel_decide is the state machine itself: given one funnel, the
 * customer's active journey in it (or none) and an event, it says what
 * happens, without side effects. The caller (the worker) applies the
 * decision: it owns journey memory, timers and counting. Keeping the rules in
 * one pure function makes them easy to test against the SPEC case by case.
 */
#ifndef FS_FUNNEL_H
#define FS_FUNNEL_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "dict.h"
#include "event.h"

#define FS_ROLE_NONE    (-1)
#define FS_ROLE_EXCLUDE (-2)

typedef struct fs_funnel {
    const fs_funnel_cfg *cfg;
    uint32_t index;
    uint32_t n_stages;
    fs_mode mode;
    int64_t conversion_window_ms;
    int8_t *role; /* role[type id] */
} fs_funnel;

typedef struct fs_funnels {
    fs_dict types;
    fs_funnel *funnel;
    uint32_t n;
} fs_funnels;

fs_funnels *fs_funnels_compile(const fs_config *cfg);
void fs_funnels_free(fs_funnels *fs);
/* Type id of an event type, or -1 when no funnel names it. */
static inline int32_t fs_funnels_type_id(const fs_funnels *fs, fs_slice event)
{
    uint32_t id = fs_dict_find(&fs->types, event.ptr, event.len);
    return id == UINT32_MAX ? -1 : (int32_t)id;
}
static inline int fs_funnel_role(const fs_funnel *f, int32_t type_id)
{
    return type_id < 0 ? FS_ROLE_NONE : f->role[type_id];
}

/* How many times each channel touched a journey, for linear attribution. */
typedef struct fs_touch_count {
    uint32_t channel;
    uint32_t count;
} fs_touch_count;

#define FS_JOURNEY_INLINE_TOUCHES 4

/* One active journey of one customer in one funnel. 72 bytes; a journey with
 * more than FS_JOURNEY_INLINE_TOUCHES distinct channels moves its touch
 * counts to the heap.
 *
 * Sharing: the owner worker is the only writer, but fs_journey_copy may run
 * on any thread while the journey is reachable from the journey table. The
 * fields set by fs_journey_init are written before the journey is published
 * and never again while a reader can hold it (journey_table.h: an ended
 * journey is reused only once no lookup can still reach it). max_stage, n_touches, touch_cap, the
 * heap pointer and the touch counts change in place: the owner writes them
 * with release stores (fs_journey_set_stage, fs_journey_touch) and readers
 * load them with acquire loads, both free on x86. */
typedef struct fs_journey {
    int64_t start_ts;
    int64_t expiry_ts; /* start_ts + conversion_window, saturated */
    void *owner;       /* the customer entry holding this journey */
    uint32_t timer_slot;
    uint32_t first_channel;
    uint8_t funnel;
    uint8_t max_stage;
    uint16_t n_touches;
    uint16_t touch_cap; /* 0 while inline */
    union {
        fs_touch_count inline_touches[FS_JOURNEY_INLINE_TOUCHES];
        fs_touch_count *heap_touches;
    } t;
} fs_journey;

static inline fs_touch_count *fs_journey_touches(fs_journey *j)
{
    return j->touch_cap ? j->t.heap_touches : j->t.inline_touches;
}
void fs_journey_init(fs_journey *j, const fs_funnel *f, int64_t ts, uint32_t stage,
                     uint32_t channel);
static inline void fs_journey_set_stage(fs_journey *j, uint32_t stage)
{
    __atomic_store_n(&j->max_stage, (uint8_t)stage, __ATOMIC_RELEASE);
}
/* Counts a touch of `channel`. Returns the touch array it outgrew, if any:
 * the caller frees it once no reader can hold it. */
fs_touch_count *fs_journey_touch(fs_journey *j, uint32_t channel);
/* The heap touch array of a journey, or NULL: freed by the caller with j. */
static inline fs_touch_count *fs_journey_heap(const fs_journey *j)
{
    return j->touch_cap ? j->t.heap_touches : NULL;
}
void fs_journey_release(fs_journey *j); /* frees heap touches, not j: no reader may hold j */
uint64_t fs_journey_total_touches(fs_journey *j);

/* What a reader on another thread sees of a journey (channels as the owner's
 * label ids). At most FS_JOURNEY_COPY_TOUCHES channels are copied. */
#define FS_JOURNEY_COPY_TOUCHES 16

typedef struct fs_journey_view {
    uint32_t funnel, max_stage;
    int64_t start_ts, expiry_ts;
    uint32_t first_channel;
    uint32_t n_touches; /* distinct channels copied into touch[] */
    fs_touch_count touch[FS_JOURNEY_COPY_TOUCHES];
} fs_journey_view;

/* Any thread, while j is reachable from the table (inside a read section).
 * Memory-safe at any moment; a copy taken while the owner changes j may be
 * torn, which the customer's sequence counter tells (journey_table.h). */
void fs_journey_copy(const fs_journey *j, fs_journey_view *out);

typedef enum fs_action {
    FS_ACT_IGNORE = 0, /* nothing for this funnel (besides a possible expiry) */
    FS_ACT_START,      /* start a journey at `stage` */
    FS_ACT_ADVANCE,    /* max_stage -> `stage` */
    FS_ACT_TOUCH,      /* stage <= max_stage: a funnel event, no count */
    FS_ACT_EXCLUDE,    /* the active journey ends, excluded[max_stage] */
} fs_action;

typedef struct fs_decision {
    bool expire;      /* the active journey expired before this event: end it first */
    fs_action action; /* what the event does after that */
    uint32_t stage;   /* START/ADVANCE: the stage reached */
    bool completes;   /* START/ADVANCE reached the last stage */
} fs_decision;

/* j: the active journey or NULL; role: fs_funnel_role of the event's type. */
fs_decision fs_funnel_decide(const fs_funnel *f, const fs_journey *j, int64_t ts, int role);

#endif
