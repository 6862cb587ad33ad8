/* aggregate.h -- the counters of one funnel in one window (flow) and of one
 * start-window cohort (SPEC §4).
 *
 * A worker fills partial aggregates for the customers it owns; the sink adds
 * the partials of all workers into one. Every field is an integer, an exact
 * fixed-point sum or a mergeable sketch, so the merged result is identical
 * however customers were spread over workers.
 *
 * Per-label counters (by channel, by segment, by campaign) live in an
 * fs_label_map: label id -> fs_label_stats, with ids from the owner's
 * fs_dict. For channels and campaigns the same record also carries the
 * attribution credits (first/last/linear), so one lookup serves by_<field>
 * and attribution. A map grows with the distinct values counted in the
 * window: that, and the time sketches, are a flow's variable memory.
 */
#ifndef FS_AGGREGATE_H
#define FS_AGGREGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fixed.h"
#include "i64map.h"
#include "sketch.h"

typedef struct fs_label_stats {
    uint32_t label;
    uint64_t completed;
    uint64_t first_touch;
    uint64_t last_touch;
    fs_fixed linear;
    uint64_t reached[]; /* n_stages */
} fs_label_stats;

typedef struct fs_label_map {
    uint32_t *slots; /* index into stats + 1; 0 = empty */
    uint32_t mask;
    uint32_t count, cap;
    fs_label_stats **stats; /* in insertion order */
} fs_label_map;

typedef struct fs_flow {
    uint32_t n_stages;
    uint64_t *entered, *reached, *skipped, *abandoned, *excluded; /* one block of 6n ... */
    uint64_t *evicted; /* ... the last n: journeys evicted at limits (a part of abandoned) */
    uint64_t completed;
    uint64_t late_events;
    /* Events (and expiries) that counted in it, each once: in a pane as
     * counted; in a window handed out, those of its newest pane (merge.h:
     * how many events a late window makes late). Not state. */
    uint64_t events;
    uint64_t ev_mark; /* the worker's ev_serial of the last one */
    fs_fixed revenue;
    fs_sketch ttc;
    /* stage_time_ms (SPEC §4): n_stages - 1 sketches, NULL until a funnel
     * with stage_time counts one (so other funnels pay 8 bytes a flow). */
    fs_sketch *stage_time;
    fs_label_map channels;
    fs_label_map segments;
    fs_label_map campaigns; /* funnels with the campaign breakdown (empty otherwise) */
} fs_flow;

#define FS_FLOW_COUNTERS 6 /* arrays of n_stages in a flow's counter block */

typedef struct fs_cohort {
    uint64_t started;
    uint64_t completed;
    bool dirty;         /* changed since last emitted (sink side) */
    uint64_t reached[]; /* n_stages */
} fs_cohort;

fs_flow *fs_flow_new(uint32_t n_stages);
void fs_flow_free(fs_flow *f);
/* Counters of a label, created zeroed on first use. */
fs_label_stats *fs_flow_channel(fs_flow *f, uint32_t label);
fs_label_stats *fs_flow_segment(fs_flow *f, uint32_t label);
fs_label_stats *fs_flow_campaign(fs_flow *f, uint32_t label);
/* The stage time sketches, created empty on first use. */
fs_sketch *fs_flow_stage_times(fs_flow *f);
/* Label entries held (channels, segments, campaigns): what a flow's
 * memory grows with beyond its fixed size. */
size_t fs_flow_label_values(const fs_flow *f);
/* into += from, with from's label ids translated through xlate[] (NULL:
 * the same ids). */
void fs_flow_merge(fs_flow *into, const fs_flow *from, const uint32_t *xlate);

/* into -= from, which was merged into it before with the same label ids.
 * Every counter is exact, so adding and subtracting commute; only the time
 * sketch's min and max cannot be undone (fs_sketch_subtract): the caller
 * sets them. */
void fs_flow_subtract(fs_flow *into, const fs_flow *from);

fs_cohort *fs_cohort_new(uint32_t n_stages);
void fs_cohort_merge(fs_cohort *into, const fs_cohort *from, uint32_t n_stages);
/* m[start] += from, the cohort created zeroed when m has none; returns it. */
fs_cohort *fs_cohort_map_add(fs_i64map *m, int64_t start, const fs_cohort *from, uint32_t n_stages);

#endif
