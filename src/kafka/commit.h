/* commit.h -- which input offsets may be committed (SPEC §5: offsets are
 * committed only after the metrics that depend on them are written).
 *
 * The stage produces two kinds of messages whose acknowledgements matter:
 * metric records and dead letters (both from the sink thread). Each kind
 * is numbered in the order it is produced; fs_acks turns out-of-order
 * delivery reports into "every message below N is acknowledged".
 *
 * The rule that links offsets to records: an event with time ts that arrived
 * while the watermark was wm counts only in windows whose start is at most
 * last_start(max(ts, wm)); and wm <= the highest ts seen. So when a step is
 * cut during batch k with max_ts the highest ts seen so far, every event of
 * batches before k is fully reflected once the windows up to
 * last_start(max_ts) + size have closed and their records are acknowledged,
 * and the dead letters of those batches are acknowledged too. The plan keeps
 *   - a snapshot of the next offset of every partition after each batch,
 *   - the steps the sink has finished, with how many records precede them,
 *   - candidates: "these offsets, once the acknowledged watermark >= need".
 * Expiry counts are not tied to offsets: after a restart from committed
 * offsets, journeys begun before them are unknown (durable state is the next
 * step, SPEC §5).
 *
 * Loop thread only. Offsets of a partition that is (re)assigned are forgotten
 * (fs_commit_forget), since its consumption restarts from the committed one.
 */
#ifndef FS_COMMIT_H
#define FS_COMMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "window.h"

typedef struct fs_acks {
    uint64_t done; /* every number < done is acknowledged */
    uint8_t *ring; /* ring[n % cap]: acknowledged, for done <= n < done + cap */
    uint64_t cap;
} fs_acks;

void fs_acks_init(fs_acks *a);
void fs_acks_free(fs_acks *a);
void fs_acks_mark(fs_acks *a, uint64_t n);

typedef struct fs_commit_step {
    uint64_t records_end; /* records numbered below this were written before the step */
    uint64_t dead_letters_end;
    uint64_t src_seq;
    int64_t wm, max_ts;
    bool final;      /* the last step of a finished input: commits everything */
    bool stopped;    /* the last step of an abandoned input: commits nothing */
    bool checkpoint; /* the state before batch src_seq was written (snapshot.h) */
    uint64_t checkpoint_id;
} fs_commit_step;

typedef struct fs_commit_plan fs_commit_plan;

fs_commit_plan *fs_commit_plan_new(const fs_window_spec *win);
void fs_commit_plan_free(fs_commit_plan *p);
/* With a state topic: offsets are safe only at acknowledged checkpoints
 * (the windows rule above no longer applies: the state holds what the
 * windows have not emitted yet). */
void fs_commit_plan_use_checkpoints(fs_commit_plan *p);
/* Whether the checkpoint heading batch seq (or a later one) and every
 * record before it are acknowledged. */
bool fs_commit_checkpoint_acked(fs_commit_plan *p, uint64_t seq);
/* The number of the checkpoint the safe offsets come from (0: none), to be
 * committed with them (state.h). */
uint64_t fs_commit_safe_checkpoint(const fs_commit_plan *p);
/* After publishing batch seq (seqs ascending): next[i] is the next offset of
 * partition i (-1 unknown), for i < n. */
void fs_commit_batch(fs_commit_plan *p, uint64_t seq, const int64_t *next, uint32_t n);
void fs_commit_step_done(fs_commit_plan *p, const fs_commit_step *step);
void fs_commit_record_acked(fs_commit_plan *p, uint64_t record);
void fs_commit_dead_letter_acked(fs_commit_plan *p, uint64_t dead_letter);
/* Drops what is known about partition `part` (revoked or reassigned). */
void fs_commit_forget(fs_commit_plan *p, uint32_t part);
/* Moves everything that became safe into the committable offsets; returns
 * them (-1: nothing to commit) and their count. */
const int64_t *fs_commit_safe(fs_commit_plan *p, uint32_t *n);
/* How many records (from 0, in order) are acknowledged. */
uint64_t fs_commit_records_acked(const fs_commit_plan *p);
/* The watermark up to which every record is acknowledged, as of the last
 * fs_commit_safe. */
int64_t fs_commit_acked_wm(const fs_commit_plan *p);

#endif
