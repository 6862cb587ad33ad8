/* metrics.c -- Prometheus text exposition of an fs_metrics snapshot. */
#include "metrics.h"

#include <stdio.h>
#include <string.h>

#include "event.h"

const double fs_latency_bounds[FS_LATENCY_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                      0.25,  0.5,    1,     2.5,  5,     10};

void fs_latency_observe(fs_latency_histogram *h, double seconds)
{
    size_t i = 0;
    while (i < FS_LATENCY_BUCKETS && seconds > fs_latency_bounds[i])
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum_seconds += seconds;
}

static void family(fs_buf *out, const char *name, const char *type, const char *help)
{
    char line[512];
    snprintf(line, sizeof line, "# HELP funnelstream_%s %s\n# TYPE funnelstream_%s %s\n", name,
             help, name, type);
    fs_buf_puts(out, line);
}

/* name{labels} value */
static void sample(fs_buf *out, const char *name, const char *labels, double value)
{
    char line[512];
    snprintf(line, sizeof line, "funnelstream_%s%s%s%s %.17g\n", name, labels ? "{" : "",
             labels ? labels : "", labels ? "}" : "", value);
    fs_buf_puts(out, line);
}

static void one(fs_buf *out, const char *name, const char *type, const char *help, double v)
{
    family(out, name, type, help);
    sample(out, name, NULL, v);
}

static void events(fs_buf *out, const fs_engine_stats *e)
{
    family(out, "events_total", "counter",
           "Input messages by outcome (accepted: valid events; late: events with a count in a "
           "closed window; ignored: valid events of a type no funnel uses).");
    sample(out, "events_total", "outcome=\"accepted\"", (double)e->valid);
    sample(out, "events_total", "outcome=\"rejected\"", (double)e->rejected);
    sample(out, "events_total", "outcome=\"late\"", (double)e->late_events);
    sample(out, "events_total", "outcome=\"ignored\"", (double)e->events_ignored);
    family(out, "rejected_total", "counter", "Rejected messages by reason.");
    for (int r = 1; r < FS_REJECT_COUNT; r++) {
        char labels[64];
        snprintf(labels, sizeof labels, "reason=\"%s\"", fs_reject_name((fs_reject)r));
        sample(out, "rejected_total", labels, (double)e->rejected_by[r]);
    }
}

/* One family with a sample per assigned partition. */
typedef double (*partition_value)(const fs_metrics_partition *p);

static double part_lag(const fs_metrics_partition *p)
{
    return (double)p->lag;
}

static double part_committed(const fs_metrics_partition *p)
{
    return (double)p->committed;
}

static double part_idle(const fs_metrics_partition *p)
{
    return p->idle ? 1 : 0;
}

static double part_state_bytes(const fs_metrics_partition *p)
{
    return (double)p->state_bytes;
}

static double part_record_bytes(const fs_metrics_partition *p)
{
    return (double)p->record_bytes;
}

static void per_partition(fs_buf *out, const fs_metrics *m, const char *name, const char *type,
                          const char *help, partition_value value)
{
    family(out, name, type, help);
    for (size_t i = 0; i < m->n_parts; i++) {
        char labels[64];
        snprintf(labels, sizeof labels, "partition=\"%d\"", m->parts[i].partition);
        sample(out, name, labels, value(&m->parts[i]));
    }
}

static void partitions(fs_buf *out, const fs_metrics *m)
{
    per_partition(out, m, "consumer_lag", "gauge",
                  "Messages between the consumer's position and the end of each assigned input "
                  "partition (-1: not known yet).",
                  part_lag);
    per_partition(out, m, "committed_offset", "gauge",
                  "Last committed offset of each assigned partition.", part_committed);
    per_partition(out, m, "partition_idle", "gauge",
                  "1 while a partition does not hold the watermark back (idle or at its end).",
                  part_idle);
    per_partition(out, m, "partition_state_bytes_total", "counter",
                  "Bytes of state records (keys and values) written for each assigned partition.",
                  part_state_bytes);
    per_partition(out, m, "partition_record_bytes", "gauge",
                  "Size of each assigned partition's last partition record (its open windows "
                  "and cohorts).",
                  part_record_bytes);
}

static void latency(fs_buf *out, const fs_latency_histogram *h)
{
    family(out, "close_to_ack_seconds", "histogram",
           "From the batch that closed a window to the acknowledgement of all its records.");
    uint64_t cum = 0;
    for (size_t i = 0; i <= FS_LATENCY_BUCKETS; i++) {
        cum += h->bucket[i];
        char labels[64];
        if (i < FS_LATENCY_BUCKETS)
            snprintf(labels, sizeof labels, "le=\"%g\"", fs_latency_bounds[i]);
        else
            snprintf(labels, sizeof labels, "le=\"+Inf\"");
        sample(out, "close_to_ack_seconds_bucket", labels, (double)cum);
    }
    sample(out, "close_to_ack_seconds_sum", NULL, h->sum_seconds);
    sample(out, "close_to_ack_seconds_count", NULL, (double)h->count);
}

static void merge(fs_buf *out, const fs_metrics_merge *g)
{
    one(out, "merging", "gauge",
        "1 while this instance holds the partials partition: it merges every partition's "
        "partials into the records.",
        g->merging ? 1 : 0);
    one(out, "merge_partials_lag", "gauge",
        "Partials not read yet by this merging instance (-1: unknown or not merging).",
        (double)g->partials_lag);
    one(out, "merge_watermark_seconds", "gauge",
        "Event time up to which the merge has emitted every window (0: none yet).",
        g->emitted_ms == INT64_MIN ? 0 : (double)g->emitted_ms / 1000);
    one(out, "merge_pending_windows", "gauge", "Windows the merge holds, waiting for a partition.",
        (double)g->pending_windows);
    one(out, "partials_made_total", "counter", "Partials this instance sent for its partitions.",
        (double)g->partials_made);
    one(out, "partial_bytes_total", "counter", "Bytes of the partials this instance sent.",
        (double)g->partial_bytes);
    one(out, "partials_merged_total", "counter", "Partials this instance merged.",
        (double)g->partials_merged);
    one(out, "merge_late_windows_total", "counter",
        "Windows of a partition merged after their record was out (its events counted late).",
        (double)g->late_windows);
    one(out, "merge_duplicate_windows_total", "counter",
        "Windows of a partition received again and dropped (a restart under at_least_once).",
        (double)g->duplicate_windows);
}

static void faults(fs_buf *out, const fs_metrics_faults *f)
{
    one(out, "unkeyed_messages_total", "counter",
        "Input messages without a key (SPEC 1 asks for the customer_id as key).",
        (double)f->unkeyed);
    one(out, "input_offsets_skipped_total", "counter",
        "Input messages lost to a gap between the position and the log start (retention).",
        (double)f->offsets_skipped);
    one(out, "dead_letters_truncated_total", "counter",
        "Dead letters cut to fit the producer's message.max.bytes.", (double)f->dead_letters_cut);
    one(out, "input_pauses_total", "counter",
        "Times the input was paused because the engine was behind.", (double)f->input_pauses);
    one(out, "input_paused", "gauge", "1 while the input is paused (backpressure).",
        f->input_paused ? 1 : 0);
    one(out, "brokers_up", "gauge", "0 while no broker connection is up.", f->brokers_up ? 1 : 0);
}

void fs_metrics_render(const fs_metrics *m, fs_buf *out)
{
    const fs_engine_stats *e = &m->engine;
    events(out, e);
    one(out, "consumed_bytes_total", "counter", "Bytes of message values consumed.",
        (double)m->consumed_bytes);
    one(out, "active_journeys", "gauge", "Journeys in progress.", (double)e->journeys_active);
    one(out, "journeys_refused_total", "counter",
        "Journeys not started: a new customer while the worker's share of "
        "limits.max_active_journeys was full (policy reject_new).",
        (double)e->journeys_refused);
    one(out, "journeys_evicted_total", "counter",
        "Active journeys evicted to make room for a new customer (policy evict_oldest); "
        "counted as abandoned too.",
        (double)e->journeys_evicted);
    one(out, "journey_table_bytes", "gauge",
        "Estimated memory of the journey table's slots "
        "and entries.",
        (double)e->table_bytes);
    one(out, "open_windows", "gauge", "Windows not closed yet.", (double)e->windows_open);
    one(out, "open_window_label_values", "gauge",
        "Breakdown and attribution values (channels, segments, campaigns) held in the open "
        "windows' counts, every worker's copy: a window's memory grows with them.",
        (double)e->label_values);
    family(out, "records_emitted_total", "counter", "Records written to the output topic.");
    sample(out, "records_emitted_total", "kind=\"flow\"", (double)e->flow_records);
    sample(out, "records_emitted_total", "kind=\"cohort\"", (double)e->cohort_records);
    one(out, "records_acked_total", "counter", "Records acknowledged by the output topic.",
        (double)m->records_acked);
    one(out, "dead_letters_acked_total", "counter",
        "Rejected messages acknowledged by the dead-letter topic.", (double)m->dead_letters_acked);
    one(out, "producer_queue", "gauge", "Messages waiting in the producer (librdkafka outq).",
        (double)m->producer_queue);
    one(out, "commits_total", "counter", "Offset commits made.", (double)m->commits);
    one(out, "rebalances_total", "counter", "Partition assignments and revocations.",
        (double)m->rebalances);
    one(out, "restore_seconds", "gauge",
        "Time spent restoring partition state from the state topic.", m->restore_seconds);
    one(out, "restored_state_keys_total", "counter",
        "State records (customers with active journeys, partition records) restored.",
        (double)m->restored_keys);
    one(out, "checkpoints_total", "counter", "Checkpoints of the state asked for.",
        (double)m->checkpoints);
    one(out, "acked_watermark_seconds", "gauge",
        "Event time up to which every record is acknowledged (0: none yet).",
        m->acked_watermark_ms == INT64_MIN ? 0 : (double)m->acked_watermark_ms / 1000);
    one(out, "ready", "gauge", "1 when /ready answers 200.", m->ready ? 1 : 0);
    partitions(out, m);
    merge(out, &m->merge);
    faults(out, &m->faults);
    if (m->latency)
        latency(out, m->latency);
}
