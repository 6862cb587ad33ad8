/* metrics.h -- the stage's counters in the Prometheus text exposition format.
 *
 * The stage fills an fs_metrics snapshot on the loop thread (engine
 * counters via fs_engine_live_stats, its own, librdkafka's queue and lag
 * figures) and this module renders it, so formatting is testable on its own
 * (test_metrics_text in tests/unit/test_board.c feeds the output to promtool when available).
 * Every family has # HELP and # TYPE; counters end in _total; the latency
 * is a histogram in seconds.
 */
#ifndef FS_METRICS_H
#define FS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "engine.h"

#define FS_LATENCY_BUCKETS 13 /* finite bounds; +Inf is implicit */
extern const double fs_latency_bounds[FS_LATENCY_BUCKETS];

typedef struct fs_metrics_partition {
    int32_t partition;
    int64_t lag;       /* high watermark - position; -1 unknown */
    int64_t committed; /* -1 none */
    bool idle;
    uint64_t state_bytes;  /* state records written for it (keys and values) */
    uint64_t record_bytes; /* its last partition record: open windows and cohorts */
} fs_metrics_partition;

/* The merge (src/core/merge.h) as this instance sees it. */
typedef struct fs_metrics_merge {
    bool merging;                          /* this instance holds the partials partition */
    int64_t partials_lag;                  /* messages behind on it (-1: unknown or not merging) */
    uint64_t partials_made, partial_bytes; /* by this instance */
    uint64_t partials_merged, late_windows, duplicate_windows, pending_windows;
    int64_t emitted_ms; /* windows ending at or before it are out (INT64_MIN: none) */
} fs_metrics_merge;

typedef struct fs_latency_histogram {
    uint64_t bucket[FS_LATENCY_BUCKETS + 1]; /* per bucket (not cumulative); last: > every bound */
    uint64_t count;
    double sum_seconds;
} fs_latency_histogram;

void fs_latency_observe(fs_latency_histogram *h, double seconds);

/* Faults the stage rides out (README "Failure behaviour"). */
typedef struct fs_metrics_faults {
    uint64_t unkeyed;          /* input messages without a key */
    uint64_t offsets_skipped;  /* messages lost to a gap in an input log (retention) */
    uint64_t dead_letters_cut; /* dead letters cut to fit the producer's size limit */
    uint64_t input_pauses;     /* times the input was paused for the engine to catch up */
    bool input_paused;
    bool brokers_up; /* false while no broker connection is up */
} fs_metrics_faults;

typedef struct fs_metrics {
    fs_engine_stats engine;
    uint64_t consumed, consumed_bytes, records_acked, dead_letters_acked, commits, rebalances;
    int64_t producer_queue;
    double restore_seconds;
    uint64_t restored_keys, checkpoints;
    int64_t acked_watermark_ms; /* INT64_MIN: none yet */
    bool ready;
    const fs_metrics_partition *parts;
    size_t n_parts;
    const fs_latency_histogram *latency;
    fs_metrics_merge merge;
    fs_metrics_faults faults;
} fs_metrics;

void fs_metrics_render(const fs_metrics *m, fs_buf *out);

#endif
