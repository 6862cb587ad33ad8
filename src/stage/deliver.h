/* deliver.h -- the stage's output side: records out, offsets committed.
 *
 * The engine's sink thread hands over records, dead letters and finished
 * steps (the *_from_sink hooks of fs_output); they are produced with the
 * idempotent producer, each numbered by kind in production order and
 * tagged with its number, so that a delivery report says "record n" or
 * "dead letter n". Reports arrive on whichever thread polls the producer
 * (*_from_any), so they, the steps and any failure go through the inbox
 * (inbox.h), and a uv_async wakes the loop to read it (fs_deliver_read),
 * which feeds the commit plan (commit.h) and the latency (latency.h).
 * Offsets are committed only when the plan says every record depending on
 * them is acknowledged (fs_deliver_commit): on the commit timer (stage.c),
 * before partitions are revoked, and once at the end after the producer is
 * flushed.
 * A failed delivery or production fails the stage (fs_stage_fail): nothing
 * more is committed.
 *
 * Under exactly_once the producer is transactional: the sink thread
 * commits one transaction per checkpoint, with the checkpoint's offsets sent
 * to it (fs_deliver_checkpoint hands them over), and the consumer commits
 * the same offsets again for brokers that ignore offsets sent to a
 * transaction (the mock cluster).
 */
#ifndef FS_DELIVER_H
#define FS_DELIVER_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "sink.h"
#include "stage_internal.h"

/* fs_output's hooks; ctx is the fs_stage. Sink thread. */
int fs_deliver_write_from_sink(void *ctx, const char *key, size_t key_len, const char *value,
                               size_t value_len);
void fs_deliver_dead_letter_from_sink(void *ctx, const fs_dead_letter *dl);
int fs_deliver_partial_from_sink(void *ctx, uint32_t part, const char *key, size_t key_len,
                                 const char *value, size_t value_len);
int fs_deliver_state_from_sink(void *ctx, uint32_t part, const char *key, size_t key_len,
                               const char *value, size_t value_len);
void fs_deliver_step_from_sink(void *ctx, const fs_step_info *info);
/* The producer's delivery report callback (opaque: the fs_stage). Any
 * thread that polls the producer. */
void fs_deliver_report_from_any(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque);

/* Loop thread from here on. */

/* Serves the producer's queued delivery reports. */
void fs_deliver_poll(fs_stage *s);
/* Takes what the inbox holds: acknowledgements and steps into the commit
 * plan and the latency, s->sink_done once the sink's last step is in; a
 * failure posted from another thread fails the stage. */
void fs_deliver_read(fs_stage *s);
/* Commits the offsets that became safe, of assigned partitions (of `only`'s
 * partitions if not NULL); sync waits for the broker. Nothing after a
 * failure. */
void fs_deliver_commit(fs_stage *s, bool sync, const rd_kafka_topic_partition_list_t *only);
/* The commit timer: commits asynchronously while the stage is running. */
void fs_deliver_commit_tick(fs_stage *s);
/* A checkpoint heads batch seq: under exactly_once, the offsets consumed so
 * far go to the sink thread, which sends them to that checkpoint's
 * transaction. */
void fs_deliver_checkpoint(fs_stage *s, uint64_t seq, uint64_t id);
/* A restore found keys whose last state record belongs to a checkpoint
 * that never committed (state_topic.h, shadowed): each is written again,
 * with its restored value or as a tombstone (value NULL), and
 * fs_deliver_await_superseded waits until all are acknowledged, so that
 * no later commit can make those values count. False (logged, the stage
 * failed) when they are not within timeout_ms. */
void fs_deliver_supersede(fs_stage *s, uint32_t part, const char *key, size_t key_len,
                          const char *value, size_t value_len);
bool fs_deliver_await_superseded(fs_stage *s, int timeout_ms);

#endif
