/* consume.h -- the stage's input side: Kafka messages into engine batches.
 *
 * The loop drains the consumer queue when its pipe says it is not empty,
 * FS_CONSUME_CHUNK messages per call of rd_kafka_consume_batch_queue and at
 * most CONSUME_ROUNDS calls per wake-up, so that timers and delivery reports
 * are served in between (a uv_idle resumes it next iteration). Messages are
 * copied, value then key, into the open batch, which is published when full,
 * when the queue is drained (low rates: nothing is held back) and at the
 * end; after each batch the commit plan learns where every partition stands
 * (fs_commit_batch).
 *
 * Backpressure: the loop never waits for the engine. When every batch of
 * the engine's ring is in use, the message in hand is held, fetching is
 * paused (rd_kafka_pause_partitions) and the queue is left alone; the next
 * wake-up that finds a batch free (a finished step, the idle timer)
 * resumes. A burst thus becomes lag in Kafka, not memory here, and HTTP,
 * timers and delivery reports go on meanwhile.
 *
 * Partitions (part_table.h): each message's Kafka partition number is its
 * partition index in the engine, whose workers keep one clock per
 * partition (worker.h). The loop tells them, in the batch stream, when a
 * partition is assigned, idle (no message for idle_timeout, checked by a
 * timer), at its end (--until-eof: it holds nothing back any more) or
 * revoked. A change applies before the messages of its batch, so messages
 * already gathered go out first. Rebalances arrive inside
 * rd_kafka_consume_batch_queue (fs_consume_rebalance); before partitions are
 * revoked their safe offsets are committed.
 *
 * The input ends once (phase RUNNING -> ENDING): with --until-eof when every
 * assigned partition is at its end, the open batch goes out as the last
 * one (the watermark goes to +inf and every window closes); on a signal or
 * a failure (fs_consume_stop) it goes out as a "stop" batch (open windows
 * are not emitted: they are not closed). Loop thread only.
 */
#ifndef FS_CONSUME_H
#define FS_CONSUME_H

#include <librdkafka/rdkafka.h>

#include "stage_internal.h"

/* The consumer queue has something: consumes a bounded amount of it. When
 * the engine has no batch free, the input pauses instead of waiting. */
void fs_consume(fs_stage *s);
/* A batch may be free again: a paused input resumes. */
void fs_consume_resume(fs_stage *s);
/* At the end: messages held unhandled are let go (read again next start). */
void fs_consume_release(fs_stage *s);
/* The idle timer: partitions with no message for idle_timeout stop holding
 * the watermark until their next message. */
void fs_consume_idle_check(fs_stage *s);
/* --until-eof: ends the input once every partition held is at its end and,
 * if this instance merges, its merge has every record out (merge.h). */
void fs_consume_check_end(fs_stage *s);
/* The commit timer: the state as of everything consumed goes to the state
 * topic (a checkpoint at the head of the next batch). */
void fs_consume_checkpoint(fs_stage *s);
/* Ends the input, abandoned (a signal, a failure): consumption stops and the
 * open batch is published as a stop batch. Nothing once the input ended. */
void fs_consume_stop(fs_stage *s, const char *why);
/* The consumer's rebalance callback (opaque: the fs_stage). */
void fs_consume_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t *parts, void *opaque);

#endif
