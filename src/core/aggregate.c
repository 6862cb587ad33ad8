/* aggregate.c -- flow and cohort counters (see aggregate.h). */
#include "aggregate.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static uint32_t label_slot(uint32_t label, uint32_t mask)
{
    return (uint32_t)(((uint64_t)label * 0x9E3779B97F4A7C15ull) >> 40) & mask;
}

static void label_map_free(fs_label_map *m)
{
    for (uint32_t i = 0; i < m->count; i++)
        free(m->stats[i]);
    free(m->stats);
    free(m->slots);
}

static void label_map_grow(fs_label_map *m)
{
    uint32_t n = m->mask ? (m->mask + 1) * 2 : 8;
    free(m->slots);
    m->slots = fs_xcalloc(n, sizeof(*m->slots));
    m->mask = n - 1;
    for (uint32_t i = 0; i < m->count; i++) {
        uint32_t s = label_slot(m->stats[i]->label, m->mask);
        while (m->slots[s])
            s = (s + 1) & m->mask;
        m->slots[s] = i + 1;
    }
}

static fs_label_stats *label_map_get(fs_label_map *m, uint32_t label, uint32_t n_stages)
{
    if (m->mask) {
        for (uint32_t s = label_slot(label, m->mask); m->slots[s]; s = (s + 1) & m->mask)
            if (m->stats[m->slots[s] - 1]->label == label)
                return m->stats[m->slots[s] - 1];
    }
    if (m->count == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 4;
        m->stats = fs_xrealloc(m->stats, m->cap * sizeof(*m->stats));
    }
    fs_label_stats *st = fs_xcalloc(1, sizeof(*st) + n_stages * sizeof(uint64_t));
    st->label = label;
    m->stats[m->count++] = st;
    if ((m->count) * 2 > m->mask + 1)
        label_map_grow(m);
    else {
        uint32_t s = label_slot(label, m->mask);
        while (m->slots[s])
            s = (s + 1) & m->mask;
        m->slots[s] = m->count;
    }
    return st;
}

fs_flow *fs_flow_new(uint32_t n_stages)
{
    fs_flow *f = fs_xcalloc(1, sizeof(*f));
    f->n_stages = n_stages;
    f->entered = fs_xcalloc(FS_FLOW_COUNTERS * (size_t)n_stages, sizeof(uint64_t));
    f->reached = f->entered + n_stages;
    f->skipped = f->reached + n_stages;
    f->abandoned = f->skipped + n_stages;
    f->excluded = f->abandoned + n_stages;
    f->evicted = f->excluded + n_stages;
    fs_sketch_init(&f->ttc);
    return f;
}

void fs_flow_free(fs_flow *f)
{
    if (!f)
        return;
    free(f->entered);
    fs_sketch_free(&f->ttc);
    if (f->stage_time) {
        for (uint32_t s = 0; s + 1 < f->n_stages; s++)
            fs_sketch_free(&f->stage_time[s]);
        free(f->stage_time);
    }
    label_map_free(&f->channels);
    label_map_free(&f->segments);
    label_map_free(&f->campaigns);
    free(f);
}

fs_label_stats *fs_flow_channel(fs_flow *f, uint32_t label)
{
    return label_map_get(&f->channels, label, f->n_stages);
}

fs_label_stats *fs_flow_segment(fs_flow *f, uint32_t label)
{
    return label_map_get(&f->segments, label, f->n_stages);
}

fs_label_stats *fs_flow_campaign(fs_flow *f, uint32_t label)
{
    return label_map_get(&f->campaigns, label, f->n_stages);
}

fs_sketch *fs_flow_stage_times(fs_flow *f)
{
    if (!f->stage_time) {
        f->stage_time = fs_xmalloc((f->n_stages - 1) * sizeof(*f->stage_time));
        for (uint32_t s = 0; s + 1 < f->n_stages; s++)
            fs_sketch_init(&f->stage_time[s]);
    }
    return f->stage_time;
}

size_t fs_flow_label_values(const fs_flow *f)
{
    return (size_t)f->channels.count + f->segments.count + f->campaigns.count;
}

static bool label_is_zero(const fs_label_stats *st, uint32_t n_stages)
{
    if (st->completed || st->first_touch || st->last_touch || !fs_fixed_is_zero(st->linear))
        return false;
    for (uint32_t s = 0; s < n_stages; s++)
        if (st->reached[s])
            return false;
    return true;
}

/* Labels whose counters are all zero were subtracted away (fs_flow_subtract):
 * they are not carried over, so a merged flow lists only labels counted. */
static void label_map_merge(fs_label_map *into, const fs_label_map *from, const uint32_t *xlate,
                            uint32_t n_stages)
{
    for (uint32_t i = 0; i < from->count; i++) {
        const fs_label_stats *src = from->stats[i];
        if (label_is_zero(src, n_stages))
            continue;
        fs_label_stats *dst = label_map_get(into, xlate ? xlate[src->label] : src->label, n_stages);
        dst->completed += src->completed;
        dst->first_touch += src->first_touch;
        dst->last_touch += src->last_touch;
        fs_fixed_add(&dst->linear, src->linear);
        for (uint32_t s = 0; s < n_stages; s++)
            dst->reached[s] += src->reached[s];
    }
}

void fs_flow_merge(fs_flow *into, const fs_flow *from, const uint32_t *xlate)
{
    for (uint32_t i = 0; i < FS_FLOW_COUNTERS * into->n_stages; i++)
        into->entered[i] += from->entered[i];
    into->completed += from->completed;
    into->late_events += from->late_events;
    into->events += from->events;
    fs_fixed_add(&into->revenue, from->revenue);
    fs_sketch_merge(&into->ttc, &from->ttc);
    label_map_merge(&into->channels, &from->channels, xlate, into->n_stages);
    label_map_merge(&into->segments, &from->segments, xlate, into->n_stages);
    label_map_merge(&into->campaigns, &from->campaigns, xlate, into->n_stages);
    if (from->stage_time) {
        fs_sketch *st = fs_flow_stage_times(into);
        for (uint32_t s = 0; s + 1 < into->n_stages; s++)
            fs_sketch_merge(&st[s], &from->stage_time[s]);
    }
}

static void label_map_subtract(fs_label_map *into, const fs_label_map *from, uint32_t n_stages)
{
    for (uint32_t i = 0; i < from->count; i++) {
        const fs_label_stats *src = from->stats[i];
        fs_label_stats *dst = label_map_get(into, src->label, n_stages);
        dst->completed -= src->completed;
        dst->first_touch -= src->first_touch;
        dst->last_touch -= src->last_touch;
        fs_fixed_sub(&dst->linear, src->linear);
        for (uint32_t s = 0; s < n_stages; s++)
            dst->reached[s] -= src->reached[s];
    }
}

void fs_flow_subtract(fs_flow *into, const fs_flow *from)
{
    for (uint32_t i = 0; i < FS_FLOW_COUNTERS * into->n_stages; i++)
        into->entered[i] -= from->entered[i];
    into->completed -= from->completed;
    into->late_events -= from->late_events;
    into->events -= from->events;
    fs_fixed_sub(&into->revenue, from->revenue);
    fs_sketch_subtract(&into->ttc, &from->ttc);
    label_map_subtract(&into->channels, &from->channels, into->n_stages);
    label_map_subtract(&into->segments, &from->segments, into->n_stages);
    label_map_subtract(&into->campaigns, &from->campaigns, into->n_stages);
    if (from->stage_time) {
        fs_sketch *st = fs_flow_stage_times(into);
        for (uint32_t s = 0; s + 1 < into->n_stages; s++)
            fs_sketch_subtract(&st[s], &from->stage_time[s]);
    }
}

fs_cohort *fs_cohort_new(uint32_t n_stages)
{
    return fs_xcalloc(1, sizeof(fs_cohort) + n_stages * sizeof(uint64_t));
}

void fs_cohort_merge(fs_cohort *into, const fs_cohort *from, uint32_t n_stages)
{
    into->started += from->started;
    into->completed += from->completed;
    for (uint32_t s = 0; s < n_stages; s++)
        into->reached[s] += from->reached[s];
}

fs_cohort *fs_cohort_map_add(fs_i64map *m, int64_t start, const fs_cohort *from, uint32_t n_stages)
{
    fs_cohort *c = fs_i64map_get(m, start);
    if (!c) {
        c = fs_cohort_new(n_stages);
        fs_i64map_put(m, start, c);
    }
    fs_cohort_merge(c, from, n_stages);
    return c;
}
