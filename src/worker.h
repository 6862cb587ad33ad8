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
 *
 * Input partitions (SPEC §3): every message carries the index of the input
 * partition it came from (always 0 in replay). Each partition has its own
 * clock, the highest ts seen in it; the instance watermark is the minimum
 * over the partitions that are active, minus max_out_of_orderness, and it
 * never goes back. A partition becomes active with its first event or when
 * the source assigns it (then it holds the watermark until its first event:
 * it may hold older data), and stops counting when the source marks it idle
 * (no message for idle_timeout of wall-clock time, or at its end with
 * --until-eof) or revoked. Idleness is wall-clock, so the source decides it
 * and tells every worker at the same point of the stream (fs_part_ctl at the
 * head of a batch): all workers still compute the same watermarks.
 */
#ifndef FS_WORKER_H
#define FS_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "aggregate.h"
#include "config.h"
#include "dict.h"
#include "event.h"
#include "funnel.h"
#include "i64map.h"
#include "journey_table.h"
#include "wheel.h"
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
    int64_t max_ts;        /* highest valid ts seen in any partition so far */
    uint64_t src_seq;      /* the batch being processed when the step was cut */
    uint64_t src_mark;     /* the source's counter at that batch (fs_worker.src_mark) */
    uint64_t src_ns;       /* when that batch was published (fs_now_ns) */
    bool final;
    bool stopped;            /* final, but the input was abandoned: nothing closes */
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

/* Partition changes the source decides (wall clock, rebalances). */
typedef enum fs_part_op {
    FS_PART_ASSIGN = 1, /* active, no event yet: holds the watermark */
    FS_PART_IDLE = 2,   /* no longer counts until its next event */
    FS_PART_REVOKE = 3, /* gone */
} fs_part_op;

typedef struct fs_part_ctl {
    uint32_t part;
    fs_part_op op;
} fs_part_ctl;

typedef struct fs_part_clock {
    int64_t max_ts;
    uint8_t state; /* 0 unknown/revoked, 1 active, 2 idle */
    bool seen;     /* max_ts is valid */
} fs_part_clock;

typedef void (*fs_step_fn)(void *ctx, uint32_t worker, fs_step *step);

typedef struct fs_worker_stats {
    uint64_t events_valid;              /* valid events seen (all workers see all) */
    uint64_t events_owned;              /* valid events applied by this worker */
    uint64_t rejected[FS_REJECT_COUNT]; /* worker 0 only */
    uint64_t late_events;
    uint64_t journeys_started, journeys_completed, journeys_abandoned, journeys_excluded;
    uint64_t journeys_active;
    uint64_t journeys_active_peak; /* highest journeys_active so far */
    uint64_t events_ignored;       /* valid events of a type no funnel uses (owned ones) */
    uint64_t windows_open;         /* at the last snapshot (fs_worker_snapshot) */
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
    int64_t max_ts, wm;   /* max_ts: over all partitions */
    fs_part_clock *parts; /* indexed by partition index */
    uint32_t n_parts;
    int64_t min_part_ts; /* min max_ts over active partitions (INT64_MIN: one unseen) */
    uint64_t src_seq, src_mark, src_ns; /* set by the engine before each batch, copied into steps */
    uint64_t pending_rejected;          /* before the first watermark */
    fs_dict labels;                     /* channel and segment names -> ids */
    uint32_t labels_sent;
    fs_i64map windows;         /* start -> fs_window_slot */
    fs_window_slot *last_slot; /* cache of the most recently used slot */
    fs_i64map *cohort_delta;   /* per funnel: start -> fs_cohort */
    fs_wheel timers; /* expiry of this worker's journeys: node = record << funnel_bits | funnel */
    uint32_t funnel_bits;      /* bits of a timer node that hold the funnel */
    const fs_slab *records;    /* this worker's records in the table: the nodes' owners */
    fs_touch_count *touch_buf; /* a completing journey's touches */
    uint32_t touch_cap;
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
/* Applies partition changes (at the head of a batch, before its messages). */
void fs_worker_control(fs_worker *w, const fs_part_ctl *ctl, uint32_t n);
/* Applies one decoded batch: status[i] is FS_OK for a valid ev[i], which
 * came from input partition part[i]. */
void fs_worker_process(fs_worker *w, const fs_event *ev, const uint8_t *status,
                       const uint16_t *part, uint32_t n);
/* End of input: watermark +inf, every timer fires, every window closes. */
void fs_worker_finish(fs_worker *w);
/* The input stops without ending (shutdown): open windows stay unemitted,
 * and a last step tells the sink to stop. */
void fs_worker_stop(fs_worker *w);

/* Which worker owns a customer hash. */
static inline uint32_t fs_worker_owner(uint64_t hash, uint32_t n_workers)
{
    return fs_journey_table_owner(hash, n_workers); /* the table's segments follow it */
}

/* This worker's running counts of one funnel in one window still open. */
typedef struct fs_open_count {
    int64_t start;
    uint32_t funnel, n_stages;
    uint64_t completed;
    uint64_t entered[FS_MAX_STAGES], reached[FS_MAX_STAGES];
} fs_open_count;

/* Copies the running counts of the open windows (funnels that counted
 * anything) into *out, grown as needed (*cap entries); returns how many. */
uint32_t fs_worker_open_counts(const fs_worker *w, fs_open_count **out, uint32_t *cap);

void fs_step_free(fs_step *s, uint32_t n_funnels);
void fs_window_slot_free(fs_window_slot *slot, uint32_t n_funnels);

#endif
