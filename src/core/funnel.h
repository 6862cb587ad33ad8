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
#include "slab.h"
#include "util.h"
#include "wheel.h"

#define FS_ROLE_NONE    (-1)
#define FS_ROLE_EXCLUDE (-2)

/* Where a funnel's optional journey fields sit in a customer record's
 * extension (fs_customer_ext): byte offsets, FS_EXT_NONE when the funnel
 * does not use the feature. Only the funnels that use a feature pay for it. */
#define FS_EXT_NONE UINT32_MAX

typedef struct fs_funnel {
    const fs_funnel_cfg *cfg;
    uint32_t index;
    uint32_t n_stages;
    fs_mode mode;
    int64_t conversion_window_ms;
    uint32_t optional;     /* bit s: stage s is optional (ordered modes) */
    unsigned breakdowns;   /* FS_BREAKDOWN_* */
    uint32_t ext_stage_ts; /* int64_t: when max_stage was reached (stage_time) */
    uint32_t ext_reached;  /* uint32_t: bit s, stage s reached (unordered) */
    uint32_t ext_campaign; /* fs_touch_list: campaign touches (campaign breakdown) */
    int8_t *role;          /* role[type id] */
} fs_funnel;

typedef struct fs_funnels {
    fs_dict types;
    fs_funnel *funnel;
    uint32_t n;
    uint32_t ext_bytes; /* a customer record's extension, every funnel's fields */
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

/* How many times one label (a channel, a campaign) touched a journey, for
 * linear attribution. */
typedef struct fs_touch_count {
    uint32_t label;
    uint32_t count;
} fs_touch_count;

#define FS_JOURNEY_INLINE_TOUCHES 2

/* One journey of one customer in one funnel, inline in the customer's
 * record (journey_table.h): 40 bytes. Active while `active` is 1; the
 * record keeps an ended journey's bytes until the funnel's next journey of
 * the customer overwrites them. Expiry is start_ts + the funnel's
 * conversion window (fs_journey_expiry), computed, not stored.
 *
 * Touch counts (distinct channels in first-touch order): the first
 * FS_JOURNEY_INLINE_TOUCHES inline, the rest in a chain of the owner's
 * touch blocks starting at `more` (journey_table.c).
 *
 * The fields only some funnels need (fs_funnel's ext_*) live in the
 * record's extension, after every funnel's journey: see fs_customer_ext.
 *
 * Sharing: the owner worker is the only writer; fs_journey_table_read may
 * copy the journey on any thread at any moment. Every field a reader copies
 * is written with a release store (free on x86) and read with acquire loads;
 * the record's sequence counter tells the reader whether its copy is whole.
 * `timer` (the wheel's links) and the extension are the owner's alone. */
typedef struct fs_journey {
    int64_t start_ts;
    fs_wheel_link timer; /* the worker's expiry wheel */
    uint32_t more;       /* first touch block, FS_SLAB_NONE when all touches are inline */
    uint8_t active;
    uint8_t max_stage;
    uint16_t n_touches;                              /* distinct channels */
    fs_touch_count touch[FS_JOURNEY_INLINE_TOUCHES]; /* touch[0]: the first channel */
} fs_journey;

/* A second touch list, kept like the journey's channels (same fields, same
 * blocks), for campaigns: 24 bytes in the extension. touch[0] is the first
 * campaign, touch[1] the one touched last (journey_table.c). */
typedef struct fs_touch_list {
    uint32_t more;
    uint16_t n;
    uint16_t unused;
    fs_touch_count touch[FS_JOURNEY_INLINE_TOUCHES];
} fs_touch_list;

/* The first-touch channel: touches are kept in first-touch order, so it is
 * never stored twice. */
static inline uint32_t fs_journey_first_channel(const fs_journey *j)
{
    return j->touch[0].label;
}

static inline int64_t fs_journey_expiry(const fs_journey *j, const fs_funnel *f)
{
    return fs_sat_add(j->start_ts, f->conversion_window_ms);
}
/* Owner only: a new active journey with one touch of `channel`. */
void fs_journey_init(fs_journey *j, int64_t ts, uint32_t stage, uint32_t channel);

/* The unordered mode's "not a stage reached yet" and the optional fields'
 * accessors. ext: the customer record's extension (fs_customer_ext). */
static inline int64_t *fs_journey_stage_ts(const fs_funnel *f, void *ext)
{
    return f->ext_stage_ts == FS_EXT_NONE ? NULL : (int64_t *)((char *)ext + f->ext_stage_ts);
}
static inline uint32_t *fs_journey_reached(const fs_funnel *f, void *ext)
{
    return f->ext_reached == FS_EXT_NONE ? NULL : (uint32_t *)((char *)ext + f->ext_reached);
}
static inline fs_touch_list *fs_journey_campaigns(const fs_funnel *f, void *ext)
{
    return f->ext_campaign == FS_EXT_NONE ? NULL : (fs_touch_list *)((char *)ext + f->ext_campaign);
}
/* Owner only: a list with one touch of `label`. */
static inline void fs_touch_list_init(fs_touch_list *l, uint32_t label)
{
    l->more = FS_SLAB_NONE;
    l->n = 1;
    l->touch[0].label = label;
    l->touch[0].count = 1;
}
/* A stage time restored from state written before stage times: the stage
 * it belongs to records nothing when the journey moves on. */
#define FS_STAGE_TS_UNKNOWN INT64_MIN
static inline void fs_journey_set_stage(fs_journey *j, uint32_t stage)
{
    __atomic_store_n(&j->max_stage, (uint8_t)stage, __ATOMIC_RELEASE);
}

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

/* j: the active journey or NULL; reached: unordered mode, the stages j has
 * reached (bit s; ignored otherwise); role: fs_funnel_role of the event's
 * type. Unordered mode: `stage` is the progress (stages reached - 1) the
 * event moves the journey to, not the event's stage. */
fs_decision fs_funnel_decide(const fs_funnel *f, const fs_journey *j, uint32_t reached, int64_t ts,
                             int role);
/* Ordered modes: whether stage s, passed over on the way to a higher stage,
 * counts in skipped (SPEC §2: an optional stage never does). */
static inline bool fs_funnel_skips(const fs_funnel *f, uint32_t s)
{
    return !(f->optional >> s & 1);
}

#endif
