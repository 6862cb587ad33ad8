/* snapshot.h -- a worker's side of the state topic (SPEC §5, state.h).
 *
 * Tracking. While the engine writes state, a worker notes which of its
 * customer records changed since the last checkpoint: one bit per record
 * index (`dirty`) and a list of the indexes whose bit went up, plus one bit
 * per record for "written to the state topic" (`persisted`). A customer
 * whose last journey ends is removed at once and its record reused; if it
 * was written, its id goes to the tombstone list first. A customer that
 * came and went between two checkpoints costs nothing on the topic.
 *
 * Checkpoint. At a checkpoint sync point (route.h) every lane has caught up
 * with its partition's clock, so the state is that of one point of the
 * stream: the step cut there carries the tombstones, then the changed
 * customers (encoded here, on the worker), then a copy of every lane's
 * windows and cohorts; the sink merges the lanes of all workers into one
 * partition record per partition (sink.c) and writes everything after the
 * records the stream produced before that point.
 *
 * Restore. A batch may carry state records before its messages (route.h):
 * a customer record goes to the worker that owns the customer, which
 * inserts it with its journeys and expiry timers into the partition's
 * lane; a partition record goes to every worker, which takes the
 * partition's clock and how far its windows are closed, and worker 0 takes
 * its counts (which worker holds a partition's counts does not matter:
 * windows are summed over workers). A record that cannot be read is an
 * error the engine reports (fs_engine_restore_error); it is never guessed.
 *
 * Invariant: a record index is in the list at most once with its bit up
 * (the bit is cleared when the list is drained or the record removed).
 */
#ifndef FS_SNAPSHOT_H
#define FS_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "route.h"
#include "worker.h"

typedef struct fs_worker_track {
    uint64_t *dirty, *persisted; /* one bit per record index */
    uint32_t words;
    uint32_t *list; /* indexes whose dirty bit went up */
    uint32_t n_list, cap_list;
    fs_buf tomb;          /* removed written customers: u16 part, u8 len, id bytes */
    uint64_t config_hash; /* fs_state_config_hash */
    bool failed;          /* a restore record could not be read: */
    char error[256];      /* why */
} fs_worker_track;

/* The engine writes a state topic: w starts tracking. */
void fs_snapshot_track(fs_worker *w);
void fs_snapshot_untrack(fs_worker *w);

void fs_snapshot_mark(fs_worker_track *t, uint32_t record);

/* Customer record `record` of w changed. */
static inline void fs_snapshot_changed(fs_worker *w, uint32_t record)
{
    fs_worker_track *t = w->track;
    if (t && (record / 64 >= t->words || !(t->dirty[record / 64] >> (record % 64) & 1)))
        fs_snapshot_mark(t, record);
}
/* Customer c (record `record`) is about to be removed. */
void fs_snapshot_removed(fs_worker *w, const fs_customer *c, uint32_t record);

/* Record `record` leaves without a tombstone (its partition moves away). */
void fs_snapshot_forget(fs_worker *w, uint32_t record);

/* Fills the checkpoint step s (sync point sp, its partition clocks parts). */
void fs_snapshot_take(fs_worker *w, fs_step *s, const fs_sync *sp, const fs_part_wm *parts);
/* Applies restore record rr (bytes in buf) of the batch being applied. */
void fs_snapshot_restore(fs_worker *w, const fs_restore_rec *rr, const char *buf);

#endif
