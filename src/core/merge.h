/* merge.h -- every input partition's partials -> one record per window (SPEC §4, §5).
 *
 * A window's counts are made in many places: each input partition counts
 * its own customers, and partitions live on different instances of a
 * consumer group. Each partition, as its windows close for it, sends a
 * partial (state.h, fs_state_partial): the windows that closed, its changed
 * cohorts, and its clock (watermark, idle). The merger adds the partials of
 * every partition and emits a window's flow record once the window is
 * closed for every partition that is not idle (the group watermark G, the
 * minimum over them, has passed its end); cohort records likewise, upserts
 * when G crosses an emit_interval boundary, the final one when G passes
 * window_end + conversion_window. Every instance runs the same code: within
 * one process the partials come straight from the sink (replay), in a group
 * through the partials topic.
 *
 * Rules that make the result independent of who sent what, and when:
 *   - a partition's partials arrive in the order it made them; each names
 *     the partition's watermark after it, so a window ending at or before
 *     the watermark last heard of that partition has been merged already:
 *     a second copy (a restart under at_least_once) is dropped;
 *   - a window that arrives after its record was emitted (its partition was
 *     idle) is late (SPEC §3): its counts are dropped and its events are
 *     counted in late_events of the earliest window not emitted yet;
 *   - cohort counts are cumulative per partition and never go down: the
 *     merge keeps, counter by counter, the largest it was sent, so a
 *     repeated partial changes nothing and an older one (a restart from an
 *     older checkpoint) takes nothing back;
 *   - the watermark of a partition never goes back here, and G never does.
 * With n_parts (the input topic's partition count) the merger waits for
 * every partition below it, heard of or not; without (0), for those heard.
 *
 * Invariants: every pending window ends after `emitted`; a partition's
 * cohort copy belongs to a cohort not final at `emitted`.
 */
#ifndef FS_MERGE_H
#define FS_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "funnel.h"
#include "sink.h"
#include "state.h"

typedef struct fs_merge fs_merge;

typedef struct fs_merge_stats {
    uint64_t partials;          /* applied */
    uint64_t bad_partials;      /* could not be read: skipped, with a message */
    uint64_t duplicate_windows; /* merged before: dropped */
    uint64_t late_windows;      /* came after their record: counted as late events */
    uint64_t flow_records, cohort_records, write_errors;
    uint64_t pending_windows; /* windows waiting for a partition */
    int64_t emitted;          /* G as of the last emission (INT64_MIN: none) */
} fs_merge_stats;

/* Records go to out.write (and out.flow_json), encoded as out.format. */
fs_merge *fs_merge_new(const fs_config *cfg, const fs_funnels *funnels, uint32_t n_parts,
                       fs_output out);
void fs_merge_free(fs_merge *m);

/* Reads one partial (fs_state_encode_partial's bytes) and applies it. A
 * partial that cannot be read changes nothing: -1, why in err. */
int fs_merge_partial(fs_merge *m, const char *value, size_t len, char *err, size_t err_len);
/* Emits what the partials applied so far make due. A group of partials
 * made at one point of a stream (one step's) goes in before this: a
 * partition's clock must not count before another's news of that point. */
void fs_merge_emit(fs_merge *m);
/* Input partitions expected from now on (the topic grew, or was learnt). */
void fs_merge_expect(fs_merge *m, uint32_t n_parts);

/* G is +inf (every partition expected ended) and nothing is left to emit. */
bool fs_merge_complete(const fs_merge *m);
/* The merger's state as one value (fs_state_encode_merge) numbered
 * checkpoint, into out; false when nothing changed since the last one. */
bool fs_merge_snapshot(fs_merge *m, fs_buf *out, uint64_t checkpoint);
/* Replaces the state by a value fs_merge_snapshot wrote: -1, why in err, and
 * the state unchanged when it cannot be read. */
int fs_merge_restore(fs_merge *m, const char *value, size_t len, char *err, size_t err_len);
/* Forgets everything (the partials partition moved away). */
void fs_merge_reset(fs_merge *m);

/* Any thread (the counters are atomic; emitted and pending are the merging
 * thread's latest). */
fs_merge_stats fs_merge_get_stats(const fs_merge *m);

#endif
