/* funnel.c -- compiled funnels and the journey state machine (see funnel.h).
 *
 * The rules, in the order SPEC §2 applies them for an event at time t:
 *   1. expiry:    an active journey with t > expiry_ts ends first (abandoned);
 *   2. exclusion: an exclude type ends the active journey (excluded);
 *   3. a type in no stage is ignored;
 *   4. start:     no active journey; strict mode needs stage 0;
 *   5. advance:   stage above max_stage; strict mode needs exactly max_stage+1,
 *                 anything else above is ignored (not even a touch);
 *   6. touch:     stage <= max_stage.
 * Reaching the last stage completes the journey (7).
 */
#include "funnel.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

fs_funnels *fs_funnels_compile(const fs_config *cfg)
{
    fs_funnels *fs = fs_xcalloc(1, sizeof(*fs));
    fs_dict_init(&fs->types);
    for (size_t i = 0; i < cfg->n_funnels; i++) {
        const fs_funnel_cfg *fc = &cfg->funnels[i];
        for (size_t s = 0; s < fc->n_stages; s++)
            for (size_t e = 0; e < fc->stages[s].n_events; e++)
                fs_dict_intern(&fs->types, fc->stages[s].events[e],
                               strlen(fc->stages[s].events[e]));
        for (size_t e = 0; e < fc->n_exclude; e++)
            fs_dict_intern(&fs->types, fc->exclude[e], strlen(fc->exclude[e]));
    }
    fs->n = (uint32_t)cfg->n_funnels;
    fs->funnel = fs_xcalloc(fs->n, sizeof(*fs->funnel));
    for (uint32_t i = 0; i < fs->n; i++) {
        const fs_funnel_cfg *fc = &cfg->funnels[i];
        fs_funnel *f = &fs->funnel[i];
        f->cfg = fc;
        f->index = i;
        f->n_stages = (uint32_t)fc->n_stages;
        f->mode = fc->mode;
        f->conversion_window_ms = fc->conversion_window_ms;
        f->role = fs_xmalloc(fs->types.count ? fs->types.count : 1);
        memset(f->role, FS_ROLE_NONE, fs->types.count);
        for (size_t s = 0; s < fc->n_stages; s++)
            for (size_t e = 0; e < fc->stages[s].n_events; e++) {
                const char *name = fc->stages[s].events[e];
                f->role[fs_dict_find(&fs->types, name, strlen(name))] = (int8_t)s;
            }
        for (size_t e = 0; e < fc->n_exclude; e++)
            f->role[fs_dict_find(&fs->types, fc->exclude[e], strlen(fc->exclude[e]))] =
                FS_ROLE_EXCLUDE;
    }
    return fs;
}

void fs_funnels_free(fs_funnels *fs)
{
    if (!fs)
        return;
    for (uint32_t i = 0; i < fs->n; i++)
        free(fs->funnel[i].role);
    free(fs->funnel);
    fs_dict_free(&fs->types);
    free(fs);
}

void fs_journey_init(fs_journey *j, const fs_funnel *f, int64_t ts, uint32_t stage,
                     uint32_t channel)
{
    memset(j, 0, sizeof(*j));
    j->start_ts = ts;
    j->expiry_ts = fs_sat_add(ts, f->conversion_window_ms);
    j->funnel = (uint8_t)f->index;
    j->max_stage = (uint8_t)stage;
    j->first_channel = channel;
    (void)fs_journey_touch(j, channel); /* a new journey never outgrows the inline array */
}

/* Stores that a concurrent fs_journey_copy may observe (funnel.h). */
static void publish_u16(uint16_t *p, uint16_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static void publish_u32(uint32_t *p, uint32_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* Moves the touches to a heap array twice the size; returns the old heap
 * array (NULL if they were inline). The pointer is published before the
 * capacity, so a reader that sees the new capacity sees the new array. */
static fs_touch_count *grow_touches(fs_journey *j, uint16_t cap)
{
    fs_touch_count *old = fs_journey_heap(j);
    uint16_t new_cap = cap > UINT16_MAX / 2 ? UINT16_MAX : (uint16_t)(cap * 2);
    fs_touch_count *heap = fs_xmalloc(new_cap * sizeof(*heap));
    memcpy(heap, fs_journey_touches(j), j->n_touches * sizeof(*heap));
    __atomic_store_n(&j->t.heap_touches, heap, __ATOMIC_RELEASE);
    publish_u16(&j->touch_cap, new_cap);
    return old;
}

fs_touch_count *fs_journey_touch(fs_journey *j, uint32_t channel)
{
    fs_touch_count *t = fs_journey_touches(j);
    for (uint16_t i = 0; i < j->n_touches; i++)
        if (t[i].channel == channel) {
            publish_u32(&t[i].count, t[i].count + 1);
            return NULL;
        }
    uint16_t cap = j->touch_cap ? j->touch_cap : FS_JOURNEY_INLINE_TOUCHES;
    fs_touch_count *outgrown = NULL;
    if (j->n_touches == cap) {
        if (cap == UINT16_MAX) { /* 65535 distinct channels in one journey: fold into the last */
            publish_u32(&t[cap - 1].count, t[cap - 1].count + 1);
            return NULL;
        }
        outgrown = grow_touches(j, cap);
        t = j->t.heap_touches;
    }
    publish_u32(&t[j->n_touches].channel, channel);
    publish_u32(&t[j->n_touches].count, 1);
    publish_u16(&j->n_touches, (uint16_t)(j->n_touches + 1));
    return outgrown;
}

void fs_journey_copy(const fs_journey *j, fs_journey_view *out)
{
    out->funnel = j->funnel;
    out->start_ts = j->start_ts;
    out->expiry_ts = j->expiry_ts;
    out->first_channel = j->first_channel;
    out->max_stage = __atomic_load_n(&j->max_stage, __ATOMIC_ACQUIRE);
    /* n first, then the capacity, then the array: a count newer than the
     * array is cut to the array's capacity, so the copy stays in bounds */
    uint32_t n = __atomic_load_n(&j->n_touches, __ATOMIC_ACQUIRE);
    uint32_t cap = __atomic_load_n(&j->touch_cap, __ATOMIC_ACQUIRE);
    const fs_touch_count *t = j->t.inline_touches;
    if (cap)
        t = __atomic_load_n(&j->t.heap_touches, __ATOMIC_ACQUIRE);
    else
        cap = FS_JOURNEY_INLINE_TOUCHES;
    if (n > cap)
        n = cap;
    if (n > FS_JOURNEY_COPY_TOUCHES)
        n = FS_JOURNEY_COPY_TOUCHES;
    for (uint32_t i = 0; i < n; i++) {
        out->touch[i].channel = __atomic_load_n(&t[i].channel, __ATOMIC_ACQUIRE);
        out->touch[i].count = __atomic_load_n(&t[i].count, __ATOMIC_ACQUIRE);
    }
    out->n_touches = n;
}

void fs_journey_release(fs_journey *j)
{
    if (j->touch_cap)
        free(j->t.heap_touches);
    j->touch_cap = 0;
    j->n_touches = 0;
}

uint64_t fs_journey_total_touches(fs_journey *j)
{
    const fs_touch_count *t = fs_journey_touches(j);
    uint64_t total = 0;
    for (uint16_t i = 0; i < j->n_touches; i++)
        total += t[i].count;
    return total;
}

fs_decision fs_funnel_decide(const fs_funnel *f, const fs_journey *j, int64_t ts, int role)
{
    fs_decision d = {0};
    if (j && ts > j->expiry_ts) {
        d.expire = true;
        j = NULL;
    }
    if (role == FS_ROLE_EXCLUDE) {
        if (j)
            d.action = FS_ACT_EXCLUDE;
        return d;
    }
    if (role == FS_ROLE_NONE)
        return d;
    uint32_t k = (uint32_t)role;
    if (!j) {
        if (f->mode == FS_MODE_STRICT && k != 0)
            return d;
        d.action = FS_ACT_START;
    } else if (k > j->max_stage) {
        if (f->mode == FS_MODE_STRICT && k != j->max_stage + 1u)
            return d;
        d.action = FS_ACT_ADVANCE;
    } else {
        d.action = FS_ACT_TOUCH;
        return d;
    }
    d.stage = k;
    d.completes = (k == f->n_stages - 1);
    return d;
}
