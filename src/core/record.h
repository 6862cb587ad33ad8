/* record.h -- merged window aggregates -> output records (SPEC §4).
 *
 * One flow record per (window, funnel) and one cohort record per (start
 * window, funnel) emission, as JSON text or a MessagePack map, with a stable
 * field order: the order of SPEC §4, maps sorted bytewise by key and holding
 * only non-zero entries.
 * The record key (Kafka message key) is "<funnel>/<window_start>" for flows
 * and "<funnel>/cohort/<window_start>" for cohorts.
 */
#ifndef FS_RECORD_H
#define FS_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#include "aggregate.h"
#include "buf.h"
#include "config.h"
#include "decode.h"
#include "dict.h"

typedef struct fs_window_id {
    int64_t start, end;
} fs_window_id;

/* Appends the record to out in the given encoding (JSON text or MessagePack).
 * With evicted (limits configured), the flow record has one more field,
 * "evicted" after "excluded": per stage, the journeys of abandoned that
 * were evicted at the limit rather than expired. */
void fs_record_flow(fs_buf *out, fs_format fmt, const fs_funnel_cfg *f, fs_window_id w,
                    const fs_flow *flow, uint64_t rejected, const fs_dict *labels, bool evicted);
void fs_record_cohort(fs_buf *out, fs_format fmt, const fs_funnel_cfg *f, fs_window_id w,
                      const fs_cohort *c, bool final);
void fs_record_flow_key(fs_buf *out, const fs_funnel_cfg *f, fs_window_id w);
void fs_record_cohort_key(fs_buf *out, const fs_funnel_cfg *f, fs_window_id w);

#endif
