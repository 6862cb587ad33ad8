/* route.h -- the one sequential step between decoding and the workers.
 *
 * Decoding runs on any core, batch by batch in any order; applying events
 * runs on the worker that owns each customer. Between them, once per batch
 * and in batch order, the router walks the decoded batch and
 *   - keeps the input partitions' clocks (SPEC §3: a partition's watermark
 *     is its highest valid ts minus max_out_of_orderness) and the instance
 *     watermark, the minimum over the partitions that are not idle, never
 *     going back: windows are emitted when it passes their end; partition
 *     changes decided by the source arrive at the head of a batch
 *     (fs_part_ctl);
 *   - hands each worker the list of the messages it must look at: the valid
 *     events of the customers it owns (fs_worker_owner), and for worker 0
 *     the rejected messages too (they are counted once, partition-wide),
 *     each with the watermark in force once that message was observed;
 *   - lists the sync points every worker must honour at the same place of
 *     the stream: the first watermark, and every advance that crosses a
 *     window hop or a cohort emit_interval boundary (a "step": see
 *     worker.h); with flush_rejected, also the end of a batch that held
 *     rejected messages (a step that closes nothing but carries them).
 *     Each sync point carries every partition's watermark at that point, so
 *     that all workers fire a partition's timers and close its windows at
 *     the same places before a step cuts them.
 * So a worker reads only its own events, yet every worker fires its timers
 * against the same watermark sequence and cuts the same steps, and the
 * output is the same for any number of workers.
 *
 * Invariants: sync points are in stream order (pos non-decreasing) and
 * their watermarks never decrease (they increase but at a flush); an
 * entry's instance watermark is never below that of the sync points before
 * it, nor above that of the ones after it; a partition's watermark never
 * exceeds the one it has at any later point (a reassigned partition starts
 * its clock again, and the workers keep the higher one).
 */
#ifndef FS_ROUTE_H
#define FS_ROUTE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "event.h"
#include "window.h"

/* Partition changes the source decides (wall clock, rebalances). */
typedef enum fs_part_op {
    FS_PART_ASSIGN = 1, /* active, no event yet: holds the watermark */
    FS_PART_IDLE = 2,   /* no longer counts until its next event */
    FS_PART_REVOKE = 3, /* gone */
    /* not a partition change: the state of every partition is written here
     * (part is ignored; snapshot.h) */
    FS_PART_CHECKPOINT = 4,
    /* the partition's input is over (--until-eof): its watermark is +inf
     * from here on, its journeys expire and its windows close; a step
     * follows at once */
    FS_PART_END = 5,
} fs_part_op;

/* A state record to restore (snapshot.h) before the batch's messages: key
 * then value at buf[off..), of input partition part. */
typedef struct fs_restore_rec {
    uint32_t off, key_len, value_len;
    uint16_t part;
} fs_restore_rec;

typedef struct fs_part_ctl {
    uint32_t part;
    fs_part_op op;
} fs_part_ctl;

/* One message a worker must look at: ev[idx] (status FS_OK) or a rejection. */
typedef struct fs_route_ent {
    int64_t wm; /* its partition's watermark once message idx was observed (INT64_MIN: none) */
    int64_t instance_wm; /* the instance watermark then (INT64_MIN: none yet) */
    uint32_t idx;
} fs_route_ent;

/* A partition's watermark at a sync point: every partition assigned (or
 * idle), with a clock (seen) or not yet. */
typedef struct fs_part_wm {
    uint32_t part;
    int64_t wm;     /* INT64_MIN when not seen */
    int64_t max_ts; /* its highest valid ts (the clock a checkpoint writes) */
    bool seen;      /* it has a clock */
    bool idle;      /* it holds no window back (SPEC §3) */
} fs_part_wm;

/* A point of the stream where every worker syncs, before applying message
 * `pos` (pos == n: after the last message of the batch). */
typedef struct fs_sync {
    uint32_t pos;
    bool first;      /* the watermark exists from here on */
    bool step;       /* a step is cut here */
    bool checkpoint; /* with step: the state is written here (snapshot.h) */
    uint64_t checkpoint_id;
    int64_t wm_before, wm;      /* the instance watermark */
    int64_t max_ts;             /* highest valid ts seen in any partition so far */
    uint32_t parts_at, n_parts; /* fs_routed.parts[parts_at..+n_parts): every partition's clock */
} fs_sync;

/* A batch's routing, owned by the batch and reused. */
typedef struct fs_routed {
    fs_route_ent **own; /* own[w][0..n_own[w]) */
    uint32_t *n_own;
    fs_sync *sync;
    uint32_t n_sync, sync_cap;
    fs_part_wm *parts; /* the partition watermarks of the sync points */
    uint32_t n_parts, parts_cap;
    uint32_t *revoked; /* partitions revoked at the head of the batch (their state is dropped) */
    uint32_t n_revoked, revoked_cap;
    uint32_t **restore; /* restore[w][0..n_restore[w]): indices of the batch's restore records */
    uint32_t *n_restore, restore_cap;
    uint32_t n_valid; /* valid events in the batch */
    bool have_wm;     /* at the end of the batch: */
    int64_t wm;       /* the watermark (INT64_MIN: none yet) */
    int64_t max_ts;   /* the highest valid ts of any partition */
} fs_routed;

void fs_routed_init(fs_routed *r, uint32_t n_workers, uint32_t msg_cap);
void fs_routed_destroy(fs_routed *r, uint32_t n_workers);

typedef struct fs_part_clock {
    int64_t max_ts;
    uint8_t state; /* 0 unknown/revoked, 1 active, 2 idle */
    bool seen;     /* max_ts is valid */
} fs_part_clock;

typedef struct fs_router {
    uint32_t n_workers;
    fs_window_spec win;
    int64_t max_out_of_orderness, emit_interval;
    bool have_wm;
    int64_t wm, max_ts;
    fs_part_clock *parts; /* indexed by partition index */
    uint32_t n_parts;
    int64_t min_part_ts; /* min max_ts over active partitions (INT64_MIN: one unseen) */
    bool flush_rejected; /* a batch with rejected messages ends with a step */
} fs_router;

void fs_router_init(fs_router *r, const fs_config *cfg, uint32_t n_workers);
void fs_router_destroy(fs_router *r);
/* Routes one decoded batch: ctl[0..n_ctl) apply first, then the messages
 * (status[i] == FS_OK for a valid ev[i] of input partition part[i]). */
/* The batch's head: partition changes, then state records to restore. */
typedef struct fs_route_head {
    const fs_part_ctl *ctl;
    uint32_t n_ctl;
    const fs_restore_rec *restore;
    uint32_t n_restore;
    const char *buf; /* the restore records' bytes */
    uint64_t checkpoint_id;
} fs_route_head;

/* Routes one decoded batch: the head applies first, then the messages
 * (status[i] == FS_OK for a valid ev[i] of input partition part[i]). A
 * restore record that cannot be read is skipped here; the worker that
 * applies it reports it. */
void fs_router_route(fs_router *r, const fs_route_head *head, const fs_event *ev,
                     const uint8_t *status, const uint16_t *part, uint32_t n, fs_routed *out);

#endif
