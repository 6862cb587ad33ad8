/* latency.h -- how long a closed window waits for its records to be
 * acknowledged ("close -> acknowledged"), measured by the stage.
 *
 * Every batch carries its publication time into the steps cut while it is
 * applied (engine.h: fs_step_info.src_ns). The loop pushes each finished
 * step with the number of records written before it (records_end); when
 * every record below that number is acknowledged, now minus the step's
 * publication time is one sample. Samples go to a quantile sketch in
 * microseconds (p50/p99 in the progress and summary logs) and to the
 * /metrics histogram in seconds.
 *
 * Steps arrive in the order the sink finished them, so records_end never
 * goes down; a step that adds no record (records_end not above the last one
 * pushed) has nothing to wait for and is no sample. Loop thread only.
 */
#ifndef FS_LATENCY_H
#define FS_LATENCY_H

#include <stdint.h>

#include "fifo.h"
#include "metrics.h"
#include "sketch.h"

typedef struct fs_ack_latency {
    fs_fifo pending;           /* steps whose records are in flight, by records_end */
    uint64_t last_end;         /* records_end of the last step pushed */
    fs_sketch us;              /* the samples, in microseconds; us.count: how many */
    fs_latency_histogram hist; /* the samples, in seconds (/metrics) */
} fs_ack_latency;

void fs_ack_latency_init(fs_ack_latency *l);
void fs_ack_latency_free(fs_ack_latency *l);
/* A finished step: records numbered below records_end were written before
 * it; src_ns is when the batch that closed its windows was published. */
void fs_ack_latency_push(fs_ack_latency *l, uint64_t records_end, uint64_t src_ns);
/* Every record below records_acked is acknowledged, at now_ns: the steps
 * that waited for no more become samples (a clock that went back: 0). */
void fs_ack_latency_settle(fs_ack_latency *l, uint64_t records_acked, uint64_t now_ns);
/* Quantile q in (0,1] of the samples, in milliseconds; 0 without any. */
double fs_ack_latency_ms(const fs_ack_latency *l, double q);

#endif
