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

void fs_journey_init(fs_journey *j, int64_t ts, uint32_t stage, uint32_t channel)
{
    __atomic_store_n(&j->start_ts, ts, __ATOMIC_RELEASE);
    __atomic_store_n(&j->more, FS_SLAB_NONE, __ATOMIC_RELEASE);
    __atomic_store_n(&j->max_stage, (uint8_t)stage, __ATOMIC_RELEASE);
    __atomic_store_n(&j->touch[0].channel, channel, __ATOMIC_RELEASE);
    __atomic_store_n(&j->touch[0].count, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&j->n_touches, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&j->active, 1, __ATOMIC_RELEASE);
}

fs_decision fs_funnel_decide(const fs_funnel *f, const fs_journey *j, int64_t ts, int role)
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
