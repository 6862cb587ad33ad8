/* worker.h -- one worker: events of the customers it owns -> journeys -> window partials.
 *
 * Every worker sees every event of the input, in input order (batches are
 * shared, not split). From the timestamps of all valid events it computes
 * the same watermark sequence as every other worker; it applies to journeys
 * only the events of customers it owns (routing by customer hash). So each
 * worker's windows hold a partial of every metric, and all workers cut their
 * partials at the same watermark points: the "steps". A step carries the
 * windows closed at that point, the cohort deltas accumulated since the last
 * step and the labels first seen since then; the sink merges step k of all
 * workers into records. Nothing here depends on how many workers there are,
 * which is why the output is byte-identical for any --threads.
 *
 * Partition-wide counts (rejected events) are kept by worker 0 only.
 */
#ifndef FS_WORKER_H
#define FS_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "aggregate.h"
#include "config.h"
#include "dict.h"
#include "event.h"
#include "expiry.h"
#include "funnel.h"
#include "i64map.h"
#include "journey_table.h"
#include "window.h"

/* One window of one worker: a flow partial per funnel (NULL until counted)
 * and the partition-wide rejected count. */
typedef struct fs_window_slot {
    int64_t start;
    uint64_t rejected;
    fs_flow *flow[]; /* n_funnels */
} fs_window_slot;

typedef struct fs_cohort_delta {
    uint32_t funnel;
    int64_t start;
    fs_cohort *cohort;
} fs_cohort_delta;

typedef struct fs_step {
    uint64_t seq;
    int64_t wm_before, wm; /* wm == INT64_MAX on the final step */
    bool final;
    fs_window_slot **closed; /* ascending start */
    uint32_t n_closed;
    fs_cohort_delta *cohorts;
    uint32_t n_cohorts;
    uint32_t first_label; /* labels [first_label, first_label + n_labels) are new */
    uint32_t n_labels;
    const char **label_names; /* stable pointers into the worker's dict */
    uint32_t *label_lens;
    struct fs_step *next; /* queue link, owned by the engine */
} fs_step;

typedef void (*fs_step_fn)(void *ctx, uint32_t worker, fs_step *step);

typedef struct fs_worker_stats {
    uint64_t events_valid;              /* valid events seen (all workers see all) */
    uint64_t events_owned;              /* valid events applied by this worker */
    uint64_t rejected[FS_REJECT_COUNT]; /* worker 0 only */
    uint64_t late_events;
    uint64_t journeys_started, journeys_completed, journeys_abandoned, journeys_excluded;
    uint64_t journeys_active;
    uint64_t journeys_active_peak; /* highest journeys_active so far */
} fs_worker_stats;

typedef struct fs_worker {
    uint32_t id, n_workers;
    const fs_config *cfg;
    const fs_funnels *funnels;
    fs_journey_table *table;
    fs_window_spec win;
    int64_t max_out_of_orderness;
    int64_t emit_interval;
    bool have_wm;
    int64_t max_ts, wm;
    uint64_t pending_rejected; /* before the first watermark */
    fs_dict labels;            /* channel and segment names -> ids */
    uint32_t labels_sent;
    fs_i64map windows;         /* start -> fs_window_slot */
    fs_window_slot *last_slot; /* cache of the most recently used slot */
    fs_i64map *cohort_delta;   /* per funnel: start -> fs_cohort */
    fs_expiry_heap timers;
    /* Ended journeys kept for reuse (linked through their first bytes): a
     * stream starts and ends journeys at a high rate, and the owner is the
     * only thread that allocates or frees them, so no allocator is needed. */
    void *spare_journeys;
    uint32_t n_spare_journeys;
    fs_flow **scratch_flows; /* per_time entries */
    uint64_t steps;
    fs_step_fn emit;
    void *emit_ctx;
    fs_worker_stats stats;
} fs_worker;

void fs_worker_init(fs_worker *w, uint32_t id, uint32_t n_workers, const fs_config *cfg,
                    const fs_funnels *funnels, fs_journey_table *table, fs_step_fn emit,
                    void *emit_ctx);
void fs_worker_destroy(fs_worker *w);
/* Applies one decoded batch: status[i] is FS_OK for a valid ev[i]. */
void fs_worker_process(fs_worker *w, const fs_event *ev, const uint8_t *status, uint32_t n);
/* End of input: watermark +inf, every timer fires, every window closes. */
void fs_worker_finish(fs_worker *w);

/* Which worker owns a customer hash. */
static inline uint32_t fs_worker_owner(uint64_t hash, uint32_t n_workers)
{
    return fs_journey_table_owner(hash, n_workers); /* the table's segments follow it */
}

void fs_step_free(fs_step *s, uint32_t n_funnels);
void fs_window_slot_free(fs_window_slot *slot, uint32_t n_funnels);

#endif
