/* funnelstream.h -- embed the funnelstream engine in another program.
 *
 * A pipeline is the whole engine of the `funnelstream` binary (decoding,
 * journeys, windows, merging) behind four calls. The caller owns the input:
 * it pushes touchpoint messages in arrival order, one message per call (a
 * Kafka message's value, say), or hands over a file descriptor holding a
 * replay stream. The pipeline owns its threads and calls the record callback
 * from one of them, one record at a time, in the order of SPEC §4.
 *
 *     fs_pipeline *p;
 *     char err[256];
 *     if (fs_pipeline_new("funnels.yaml", 0, print_record, NULL, &p, err, sizeof err))
 *         die(err);
 *     while (next_message(&msg, &len))
 *         fs_pipeline_push(p, msg, len);
 *     fs_pipeline_finish(p, NULL);   // end of input: watermark +inf
 *     fs_pipeline_free(p);
 *
 * Ownership: push copies the message, so the caller may reuse its buffer at
 * once. The key and record passed to the callback are valid only during the
 * call. A pipeline is driven by one thread at a time.
 */
#ifndef FUNNELSTREAM_H
#define FUNNELSTREAM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fs_pipeline fs_pipeline;

/* Receives one encoded record (JSON or MessagePack, per the config's
 * output.format) and its key "<funnel>/<window_start>" (or
 * "<funnel>/cohort/<window_start>"). Returns 0, or -1 to count a write error. */
typedef int (*fs_record_cb)(void *ctx, const char *key, size_t key_len, const char *record,
                            size_t record_len);

typedef struct fs_pipeline_stats {
    uint64_t messages, valid, rejected, late_events;
    uint64_t journeys_started, journeys_completed, journeys_abandoned, journeys_excluded;
    uint64_t flow_records, cohort_records, write_errors;
} fs_pipeline_stats;

/* Loads the YAML config and starts the engine's threads (threads 0: the
 * config's `threads`, else one per core). Returns 0, or -1 with a message
 * naming the file, line and field in err. */
int fs_pipeline_new(const char *config_path, unsigned threads, fs_record_cb on_record, void *ctx,
                    fs_pipeline **out, char *err, size_t err_len);

/* Adds one message, encoded as the config's input.format says. */
void fs_pipeline_push(fs_pipeline *p, const void *msg, size_t len);

/* Reads a replay stream (concatenated MessagePack objects, or JSON lines when
 * the config's input.format is json) from fd until its end. Returns 0, or -1
 * with errno set on a read error. */
int fs_pipeline_feed_fd(fs_pipeline *p, int fd);

/* Declares the end of the input: the watermark becomes +inf, every window
 * closes, every journey expires; returns once every record was delivered.
 * Nothing may be pushed afterwards. stats may be NULL. */
void fs_pipeline_finish(fs_pipeline *p, fs_pipeline_stats *stats);

/* Frees the pipeline (finishing it first if needed). */
void fs_pipeline_free(fs_pipeline *p);

#ifdef __cplusplus
}
#endif

#endif
