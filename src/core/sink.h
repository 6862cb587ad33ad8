/* sink.h -- the workers' steps -> partials -> the merge -> records and state.
 *
 * The sink receives step k of every worker together (the engine guarantees
 * it) and, for each input partition with news, makes one partial (state.h,
 * fs_state_partial): the partition's windows closed since its last partial
 * (the workers' slots of equal start added), its cohorts that changed
 * (cumulative counts; pane deltas spread over the windows holding the pane)
 * and its clock. The partials go to the merge (merge.h), which writes the
 * records: straight into this process's merge, or, with out.partial, to the
 * partials topic, from where some instance's merge takes them (worker 0's
 * steps carry the partials consumed, and the merge's restored state). One
 * path either way, the same bytes.
 * Labels arrive as worker-local ids; the sink maps them to its own dict.
 * Worker 0's steps carry the rejected messages since its last step, which
 * the sink hands to out.dead_letter before the step's records; a step's
 * src_mark counts the dead letters handed over up to it. At a checkpoint it
 * writes the partition records and the merge's state (snapshot.h).
 */
#ifndef FS_SINK_H
#define FS_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "funnel.h"
#include "worker.h"

/* A partial larger than this goes out in pieces (sink.c, send_pieces):
 * under the 1 MB a Kafka producer and broker take by default. */
#define FS_PARTIAL_MAX_BYTES (900u << 10)

/* Where the stream stands when a step's records have all been written. */
typedef struct fs_step_info {
    int64_t wm;        /* INT64_MAX on the final step */
    int64_t max_ts;    /* highest valid ts of any event before the cut */
    uint64_t src_seq;  /* the batch during which the step was cut */
    uint64_t src_mark; /* dead letters handed to the output before this point */
    uint64_t src_ns;   /* when that batch was published: the step's windows closed then */
    bool final;
    bool stopped;    /* final without closing: the input was abandoned */
    bool checkpoint; /* the state up to this point has been handed to out.state */
    uint64_t checkpoint_id;
    /* This instance merges, and every partition it waits for has ended:
     * every record is out (merge.h, fs_merge_complete). */
    bool merge_complete;
} fs_step_info;

/* A flow record in JSON, with what it is about, so that a reader (the live
 * board) need not parse its key. */
typedef struct fs_flow_json {
    uint32_t funnel; /* config order */
    int64_t window_start;
    const char *key, *json;
    size_t key_len, len;
} fs_flow_json;

/* Where records go: a file, stdout, a Kafka producer. write returns 0 or -1.
 * The optional hooks serve sources that must know what has been written:
 * dead_letter from the sink thread, in input order, for every rejected
 * message (worker 0 copies them into its steps: workers do no I/O);
 * step_done from the sink thread after each step;
 * flow_json from the sink thread with every flow record in JSON, whatever
 * the output format (for the HTTP API);
 * state, when set, makes the engine keep its state for a state topic
 * (snapshot.h): at each checkpoint the sink thread hands it the state
 * records of every partition (value NULL: a tombstone), after every record
 * of the stream before that point, and then calls step_done with
 * checkpoint set. */
typedef struct fs_output {
    int (*write)(void *ctx, const char *key, size_t key_len, const char *value, size_t value_len);
    void *ctx;
    fs_format format; /* how records are encoded */
    void (*dead_letter)(void *ctx, const fs_dead_letter *dl);
    void (*step_done)(void *ctx, const fs_step_info *info);
    void (*flow_json)(void *ctx, const fs_flow_json *rec);
    int (*state)(void *ctx, uint32_t part, const char *key, size_t key_len, const char *value,
                 size_t value_len);
    /* partial, when set, takes the partials (merge.h) of input partition
     * part to the partials topic, from where they come back to some
     * instance's merge; without it they go straight into this process's. */
    int (*partial)(void *ctx, uint32_t part, const char *key, size_t key_len, const char *value,
                   size_t value_len);
    uint32_t n_parts; /* input partitions the merge waits for (0: those it hears of) */
    /* With partial: the partition index (fs_batch) of the partials
     * partition. This instance merges while it holds it: from the merger
     * state restored at its assignment (fs_worker_restore_merge) until its
     * revocation; at each checkpoint the merger's state goes to out.state
     * under this index. */
    uint32_t merge_part;
} fs_output;

typedef struct fs_sink fs_sink;

typedef struct fs_sink_stats {
    uint64_t flow_records;
    uint64_t cohort_records;
    uint64_t write_errors;
    uint64_t partials, partial_bytes; /* made by this sink */
} fs_sink_stats;

fs_sink *fs_sink_new(const fs_config *cfg, const fs_funnels *funnels, uint32_t n_workers,
                     fs_output out);
/* steps[0..n_workers): step k of each worker. Takes ownership of them. */
void fs_sink_step(fs_sink *s, fs_step **steps);
fs_sink_stats fs_sink_get_stats(const fs_sink *s);
struct fs_merge;
/* The sink's merge (merge.h): the partials of this process, or those the
 * partials topic brings. */
struct fs_merge *fs_sink_merge(fs_sink *s);
void fs_sink_free(fs_sink *s);

#endif
