/* worker.h -- one worker: events of the customers it owns -> journeys -> window partials.
 *
 * Customers are split between the workers by hash (fs_worker_owner); a
 * worker applies the events of its own customers only, which the router
 * (route.h) lists for it in input order, each with the watermark in force
 * at that point of the stream. The router also lists the sync points where
 * every worker cuts its partials at the same watermark: the "steps". A step
 * carries the windows closed at that point, the cohort deltas accumulated
 * since the last step and the labels first seen since then; the sink merges
 * step k of all workers into records. Nothing here depends on how many
 * workers there are, which is why the output is byte-identical for any
 * --threads.
 *
 * A worker's watermark may lag the stream's between its own events (it
 * moves on at each own event and at each sync point): no window closes
 * between two sync points, and a timer of one of its journeys can only
 * matter to an event of that customer, before which it catches up, so the
 * lag changes nothing that is counted.
 *
 * Clocks (SPEC §3). Each input partition has its own watermark, and a
 * worker keeps one lane per partition it has seen: the partition's
 * watermark as applied so far, the expiry timers of the journeys its events
 * started, its counts of open windows (panes) and its cohort deltas. A
 * partition's timers fire and its windows close by its own watermark; a
 * window closed for a partition waits in the lane (parked) until the next
 * step, which hands out every lane's closed windows and cohort deltas by
 * partition: the sink makes them the partitions' partials, and the merge
 * (merge.h) decides when a window is closed for all of them. The lane of
 * an idle partition has its windows closed at the instance watermark (the
 * minimum over the partitions that are not idle): counts it brings later
 * for them are late (SPEC §3). So a partition's results depend only on its
 * own events, which is what lets its state move between instances.
 *
 * A customer's events are expected in one partition (the message key is
 * the customer id, SPEC §1). A customer seen in two partitions keeps one
 * record; its journeys' timers belong to the partition that created the
 * record, while each event counts in its own partition's windows.
 *
 * Partition-wide counts (rejected events) are kept by worker 0 only.
 *
 * Limits (config limits:). A worker holds at most its share of
 * max_active_journeys customer records (journey_table.h). An event that
 * needs a new record while the share is full either starts nothing
 * (reject_new: journeys_refused) or first evicts the customer held longest
 * (evict_oldest): its active journeys end as abandoned[max_stage] and
 * evicted[max_stage] of the event's partition's windows at the event's
 * time, with the late rules of any count. "Held longest" is the record
 * inserted first (journey_table.c: an age list, O(1)); restored customers
 * join it in restore order, after those already held. Which customer that
 * is depends on how customers are spread over workers and on restores, so
 * once a share fills, the output depends on --threads, on the partition
 * layout and on restarts: the pure-function guarantee above (and SPEC §5's
 * restart equality) holds only while no share is full.
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
#include "pane.h"
#include "route.h"
#include "wheel.h"
#include "window.h"

/* Changes to the cohort of the window starting at `start`, or, with pane,
 * to the cohorts of every window holding the pane starting there. */
typedef struct fs_cohort_delta {
    uint32_t part; /* input partition */
    uint32_t funnel;
    bool pane;
    int64_t start;
    fs_cohort *cohort;
} fs_cohort_delta;

/* A rejected message, handed over with its original bytes. */
typedef struct fs_dead_letter {
    const char *value, *key; /* key is NULL when the message had none */
    size_t value_len, key_len;
    fs_reject reason;
    uint32_t part;    /* input partition index */
    uint64_t src_seq; /* the batch it came in */
} fs_dead_letter;

/* A record for the state topic (snapshot.h): key and value at
 * fs_step.state_bytes[off..); a tombstone has value_len FS_STATE_TOMBSTONE. */
#define FS_STATE_TOMBSTONE UINT32_MAX
typedef struct fs_state_rec {
    uint32_t part;
    uint32_t off, key_len, value_len;
} fs_state_rec;

struct fs_state_part;

/* Bytes copied for the sink: a partial consumed from the partials topic, or
 * the merger's state record. */
typedef struct fs_blob {
    char *bytes;
    size_t len;
} fs_blob;

typedef struct fs_step {
    uint64_t seq;
    int64_t wm_before, wm; /* wm == INT64_MAX on the final step */
    int64_t max_ts;        /* highest valid ts seen in any partition so far */
    uint64_t src_seq;      /* the batch being processed when the step was cut */
    uint64_t src_ns;       /* when that batch was published (fs_now_ns) */
    bool final;
    bool stopped; /* final, but the input was abandoned: nothing closes */
    /* Windows closed for their partition (closed_part[i]) since the last
     * step, each partition's ascending by start (label ids: this worker's). */
    fs_window_slot **closed;
    uint32_t *closed_part;
    uint32_t n_closed;
    fs_cohort_delta *cohorts;
    uint32_t n_cohorts;
    uint32_t first_label; /* labels [first_label, first_label + n_labels) are new */
    uint32_t n_labels;
    const char **label_names; /* stable pointers into the worker's dict */
    uint32_t *label_lens;
    fs_dead_letter *dead; /* worker 0: rejected messages since the last step (copies) */
    uint32_t n_dead;
    /* A checkpoint (snapshot.h): the customers changed since the last one,
     * a copy of every lane's windows and cohorts (label ids: this worker's),
     * and (worker 0) every partition's clock. */
    bool checkpoint;
    uint64_t checkpoint_id;
    fs_state_rec *state;
    uint32_t n_state;
    char *state_bytes;
    struct fs_state_part *lanes; /* lanes[i] is partition lane_part[i]'s */
    uint32_t *lane_part;
    uint32_t n_lanes;
    fs_part_wm *clocks;
    uint32_t n_clocks;
    /* Worker 0, every step: each partition's clock there (none on the
     * final step: every partition's watermark is then +inf), and the
     * partitions revoked since the last step. */
    fs_part_wm *parts;
    uint32_t n_parts;
    uint32_t *revoked;
    uint32_t n_revoked;
    /* Worker 0: the partials consumed since the last step, in input order,
     * and, when merge_restore, the merger's state to start from first
     * (bytes NULL: none, a fresh merge). */
    fs_blob *partials;
    uint32_t n_partials;
    bool merge_restore;
    fs_blob merge_state;
    struct fs_step *next; /* queue link, owned by the engine */
} fs_step;

typedef void (*fs_step_fn)(void *ctx, uint32_t worker, fs_step *step);

/* One input partition's share of a worker (see the top of this file).
 * Invariants: wm never decreases; parked[parked_head..n_parked) are
 * windows closed at the lane's watermark, ascending by start, none of them
 * closed at the instance watermark of the last step. */
typedef struct fs_lane {
    uint32_t part;
    bool have_wm;
    bool idle; /* as of the last sync point: closes at the instance watermark */
    int64_t wm;
    fs_wheel timers; /* node = record << funnel_bits | funnel */
    fs_panes windows;
    fs_i64map *cohort_delta; /* 2 per funnel: window start, then pane start -> fs_cohort */
    fs_i64map *cohorts;      /* with state: 2 per funnel as cohort_delta, but cumulative */
    int64_t next_close;      /* the lowest watermark that closes a window of the panes */
    fs_window_slot **parked;
    uint32_t parked_head, n_parked, parked_cap;
    uint64_t pending_rejected; /* before the instance has a watermark */
} fs_lane;

typedef struct fs_worker_stats {
    uint64_t events_valid;              /* valid events of the input (worker 0 only) */
    uint64_t events_owned;              /* valid events applied by this worker */
    uint64_t rejected[FS_REJECT_COUNT]; /* worker 0 only */
    uint64_t late_events;
    uint64_t journeys_started, journeys_completed, journeys_abandoned, journeys_excluded;
    uint64_t journeys_active;
    uint64_t journeys_active_peak; /* highest journeys_active so far */
    /* limits (worker.c, "limits"): journeys not started because the
     * worker's share of customer records was full (reject_new), and
     * active journeys evicted to make room (evict_oldest; counted in
     * journeys_abandoned too) */
    uint64_t journeys_refused, journeys_evicted;
    uint64_t events_ignored; /* valid events of a type no funnel uses (owned ones) */
    uint64_t windows_open;   /* at the last snapshot (fs_worker_snapshot) */
    /* label entries (channel, segment, campaign values) in the open
     * windows' flows: what their memory grows with (same snapshot) */
    uint64_t label_values;
} fs_worker_stats;

#define FS_WORKER_LABEL_CACHE 256

typedef struct fs_worker {
    uint32_t id, n_workers;
    const fs_config *cfg;
    const fs_funnels *funnels;
    fs_journey_table *table;
    fs_window_spec win;
    int64_t max_out_of_orderness;
    int64_t emit_interval;
    bool have_wm;
    int64_t wm;               /* the instance watermark as of the last sync or own event */
    int64_t max_ts;           /* highest valid ts of the input, as of the last batch */
    uint64_t src_seq, src_ns; /* set by the engine before each batch, copied into steps */
    fs_dead_letter *dead;     /* worker 0: rejected messages for the next step */
    uint32_t n_dead, cap_dead;
    fs_dict labels; /* channel, segment and campaign names -> ids */
    /* The ids of labels seen lately, by a cheap hash of their bytes: a
     * hit costs one compare instead of the dict's hash and probe, and a
     * few names (channels, segments, the popular campaigns) make most
     * events' labels. UINT32_MAX: empty. */
    uint32_t label_cache[FS_WORKER_LABEL_CACHE];
    uint32_t labels_sent;
    fs_lane **lanes; /* by partition index, NULL until seen */
    uint32_t n_lanes;
    fs_lane *cur;                  /* the lane the counts being made go to */
    uint32_t *n_stages;            /* per funnel, for the panes */
    struct fs_worker_track *track; /* with state: what changed since the last checkpoint */
    uint32_t funnel_bits;          /* bits of a timer node that hold the funnel */
    const fs_slab *records;        /* this worker's records in the table: the nodes' owners */
    fs_touch_count *touch_buf;     /* a completing journey's touches */
    uint32_t touch_cap;
    fs_touch_count *campaign_buf; /* ... and its campaign touches */
    uint32_t campaign_cap;
    fs_flow **scratch_flows; /* where one count goes: its pane, and the running sum */
    uint64_t ev_serial;      /* numbers events and timer firings: fs_flow.ev_mark */
    uint32_t *revoked;       /* worker 0: partitions revoked since the last step */
    uint32_t n_revoked, cap_revoked;
    fs_blob *partials; /* worker 0: for the next step (fs_step.partials) */
    uint32_t n_partials, cap_partials;
    bool merge_restore; /* worker 0: fs_step.merge_restore, merge_state */
    fs_blob merge_state;
    uint64_t steps;
    fs_step_fn emit;
    void *emit_ctx;
    fs_worker_stats stats;
} fs_worker;

void fs_worker_init(fs_worker *w, uint32_t id, uint32_t n_workers, const fs_config *cfg,
                    const fs_funnels *funnels, fs_journey_table *table, fs_step_fn emit,
                    void *emit_ctx);
void fs_worker_destroy(fs_worker *w);
/* Applies one decoded and routed batch: the messages the router gave this
 * worker (rt->own[w->id]: ev[i] valid when status[i] == FS_OK, its event
 * type's id type[i], its input partition part[i]) and the sync points, in
 * stream order. */
void fs_worker_apply(fs_worker *w, const fs_route_head *head, const fs_event *ev,
                     const int32_t *type, const uint8_t *status, const uint16_t *part, uint32_t n,
                     const fs_routed *rt);
/* Worker 0: keeps a copy of a rejected message for the next step, whose
 * sink hands it to the output (workers do no I/O). */
void fs_worker_add_dead_letter(fs_worker *w, const fs_dead_letter *dl);
/* Worker 0: keeps a copy of a consumed partial for the next step. */
void fs_worker_add_partial(fs_worker *w, const char *bytes, size_t len);
/* Worker 0: the merger's state to restore (value NULL: none) goes with the
 * next step. */
void fs_worker_restore_merge(fs_worker *w, const char *value, size_t len);
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

/* This worker's running counts of one funnel in one pane of a lane, or in
 * one window closed for its partition but not emitted yet (is_window)
 * (fs_worker_open_counts), or in one window still open (fs_engine_open_counts). */
typedef struct fs_open_count {
    int64_t start;
    int64_t wm; /* a pane's: the windows holding it that end after wm are open */
    bool is_window;
    uint32_t funnel, n_stages;
    uint64_t completed;
    uint64_t entered[FS_MAX_STAGES], reached[FS_MAX_STAGES];
} fs_open_count;

/* Copies the running counts of the panes of the open windows (funnels that
 * counted anything) into *out, grown as needed (*cap entries); returns how
 * many. A pane's counts belong to each open window holding it (pane.h). */
uint32_t fs_worker_open_counts(const fs_worker *w, fs_open_count **out, uint32_t *cap);
/* Panes and parked windows held, over all lanes. */
uint64_t fs_worker_windows_held(const fs_worker *w);
/* Owner thread: label entries held in the open windows and panes. */
uint64_t fs_worker_label_values(const fs_worker *w);

void fs_step_free(fs_step *s, uint32_t n_funnels);

/* Restoring (snapshot.c). */
struct fs_state_journey;
/* A restored journey in c (inside its write section): active, with its
 * expiry timer in c's partition's lane. */
void fs_worker_adopt_journey(fs_worker *w, fs_customer *c, uint32_t record,
                             const struct fs_state_journey *sj);
/* Partition part's restored clock and closed windows; with counts, its
 * window and cohort counts too (taken over from sp). */
void fs_worker_adopt_lane(fs_worker *w, uint32_t part, struct fs_state_part *sp, bool counts);
/* Ends every journey of c without counting anything and removes it; the
 * state topic gets a tombstone unless forget (the partition moves away). */
void fs_worker_drop_customer(fs_worker *w, fs_customer *c, uint32_t record, bool forget);

#endif
