/* sink.h -- merges the workers' steps into records and hands them to an output.
 *
 * The sink receives step k of every worker together (the engine guarantees
 * it), adds the partial windows of equal start, and emits:
 *   1. one flow record per closed window and funnel that counted anything
 *      (or saw rejections), windows ascending, funnels in config order;
 *   2. cohort records: it keeps the running totals of every cohort that is
 *      not final yet; on a step that crosses an emit_interval boundary, every
 *      cohort changed since its last emission is emitted (final: false); a
 *      cohort whose watermark has reached window_end + conversion_window is
 *      emitted once more with final: true and forgotten.
 * Labels arrive as worker-local ids; the sink maps them to its own dict.
 */
#ifndef FS_SINK_H
#define FS_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "funnel.h"
#include "worker.h"

/* Where records go: a file, stdout, a Kafka producer. Returns 0 or -1. */
typedef struct fs_output {
    int (*write)(void *ctx, const char *key, size_t key_len, const char *value, size_t value_len);
    void *ctx;
    fs_format format; /* how records are encoded */
} fs_output;

typedef struct fs_sink fs_sink;

typedef struct fs_sink_stats {
    uint64_t flow_records;
    uint64_t cohort_records;
    uint64_t write_errors;
} fs_sink_stats;

fs_sink *fs_sink_new(const fs_config *cfg, const fs_funnels *funnels, uint32_t n_workers,
                     fs_output out);
/* steps[0..n_workers): step k of each worker. Takes ownership of them. */
void fs_sink_step(fs_sink *s, fs_step **steps);
fs_sink_stats fs_sink_get_stats(const fs_sink *s);
void fs_sink_free(fs_sink *s);

#endif
