/* funnel.c -- compiled funnels and the journey state machine (see funnel.h).
 *
 * The rules, in the order SPEC §2 applies them for an event at time t:
 *   1. expiry:    an active journey with t > expiry_ts ends first (abandoned);
 *   2. exclusion: an exclude type ends the active journey (excluded);
 *   3. a type in no stage is ignored;
 *   4. start:     no active journey; strict mode needs stage 0;
 *   5. advance:   stage above max_stage; strict mode needs exactly max_stage+1
 *                 or only optional stages between; anything else above is
 *                 ignored (not even a touch);
 *   6. touch:     stage <= max_stage.
 * Reaching the last stage completes the journey (7).
 *
 * Unordered mode replaces 4-6: any stage starts a journey at progress 0; a
 * stage not in the journey's reached set moves the progress up one (the
 * decision's `stage` is the new progress); a stage in it is a touch.
 */
#include "funnel.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* The extension's layout: every funnel's 8-byte fields first, then the
 * touch lists, then the 4-byte masks, so nothing needs padding but the
 * end (the record stride stays a multiple of 8). */
static void lay_out_ext(fs_funnels *fs)
{
    uint32_t at = 0;
    for (uint32_t i = 0; i < fs->n; i++) {
        fs_funnel *f = &fs->funnel[i];
        f->ext_stage_ts = f->ext_reached = f->ext_campaign = FS_EXT_NONE;
        if (f->cfg->stage_time) {
            f->ext_stage_ts = at;
            at += sizeof(int64_t);
        }
    }
    for (uint32_t i = 0; i < fs->n; i++) {
        fs_funnel *f = &fs->funnel[i];
        if (f->breakdowns & FS_BREAKDOWN_CAMPAIGN) {
            f->ext_campaign = at;
            at += sizeof(fs_touch_list);
        }
    }
    for (uint32_t i = 0; i < fs->n; i++) {
        fs_funnel *f = &fs->funnel[i];
        if (f->mode == FS_MODE_UNORDERED) {
            f->ext_reached = at;
            at += sizeof(uint32_t);
        }
    }
    fs->ext_bytes = (at + 7u) & ~7u;
}

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
        f->breakdowns = fc->breakdowns;
        for (size_t st = 0; st < fc->n_stages; st++)
            f->optional |= (uint32_t)fc->stages[st].optional << st;
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
    lay_out_ext(fs);
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

void fs_journey_init(fs_journey *j, int64_t ts, uint32_t stage, uint32_t channel)
{
    __atomic_store_n(&j->start_ts, ts, __ATOMIC_RELEASE);
    __atomic_store_n(&j->more, FS_SLAB_NONE, __ATOMIC_RELEASE);
    __atomic_store_n(&j->max_stage, (uint8_t)stage, __ATOMIC_RELEASE);
    __atomic_store_n(&j->touch[0].label, channel, __ATOMIC_RELEASE);
    __atomic_store_n(&j->touch[0].count, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&j->n_touches, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&j->active, 1, __ATOMIC_RELEASE);
}

/* Ordered modes: whether a journey at max_stage m advances to k > m. Open
 * mode: always. Strict mode: k = m + 1, or every stage between them is
 * optional. */
static bool advances(const fs_funnel *f, uint32_t m, uint32_t k)
{
    if (f->mode != FS_MODE_STRICT || k == m + 1u)
        return true;
    uint32_t between = (uint32_t)(((uint64_t)1 << k) - ((uint64_t)1 << (m + 1u)));
    return (f->optional & between) == between;
}

/* Unordered mode: a stage not reached before moves the progress up one;
 * one reached before is a touch. */
static fs_decision decide_unordered(const fs_funnel *f, const fs_journey *j, uint32_t reached,
                                    uint32_t k, fs_decision d)
{
    if (!j) {
        d.action = FS_ACT_START;
        d.stage = 0;
    } else if (reached >> k & 1) {
        d.action = FS_ACT_TOUCH;
        return d;
    } else {
        d.action = FS_ACT_ADVANCE;
        d.stage = j->max_stage + 1u;
    }
    d.completes = (d.stage == f->n_stages - 1);
    return d;
}

fs_decision fs_funnel_decide(const fs_funnel *f, const fs_journey *j, uint32_t reached, int64_t ts,
                             int role)
{
    fs_decision d = {0};
    if (j && ts > fs_journey_expiry(j, f)) {
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
    if (f->mode == FS_MODE_UNORDERED)
        return decide_unordered(f, j, reached, k, d);
    if (!j) {
        if (f->mode == FS_MODE_STRICT && k != 0)
            return d;
        d.action = FS_ACT_START;
    } else if (k > j->max_stage) {
        if (!advances(f, j->max_stage, k))
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
