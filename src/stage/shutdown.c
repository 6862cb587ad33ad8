/* shutdown.c -- the stage's end (see shutdown.h).
 *
 * s->end_step says where the end is: NONE (not started), DRAIN (waiting for
 * the producer's acknowledgements), LEAVE (the consumer is closing) and
 * CLOSED (the loop's handles are closing). end_timer ticks every
 * END_TICK_MS through DRAIN and LEAVE; each tick does a bounded amount of
 * non-blocking work, and each step has a deadline, so the end takes at most
 * FLUSH_TIMEOUT_MS + LEAVE_TIMEOUT_MS whatever the broker does.
 */
#include "shutdown.h"

#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "api.h"
#include "brokers.h"
#include "consume.h"
#include "deliver.h"
#include "log.h"
#include "util.h"

#define END_TICK_MS          20
#define FLUSH_TIMEOUT_MS     60000
#define LEAVE_TIMEOUT_MS     10000
#define TXN_ABORT_TIMEOUT_MS 10000
#define FORCED_LEAVE_MS      2000 /* enough to send LeaveGroup; its answer is not awaited */

static void close_handles(fs_stage *s)
{
    s->end_step = FS_END_CLOSED;
    fs_api_stop(s);
    uv_handle_t *hs[] = {(uv_handle_t *)&s->consumer_watch, (uv_handle_t *)&s->producer_watch,
                         (uv_handle_t *)&s->wake,           (uv_handle_t *)&s->more,
                         (uv_handle_t *)&s->idle_timer,     (uv_handle_t *)&s->commit_timer,
                         (uv_handle_t *)&s->stats_timer,    (uv_handle_t *)&s->sigint,
                         (uv_handle_t *)&s->sigterm,        (uv_handle_t *)&s->end_timer};
    for (size_t i = 0; i < sizeof(hs) / sizeof(*hs); i++)
        if (!uv_is_closing(hs[i]))
            uv_close(hs[i], NULL);
}

/* What a stop leaves behind, for the log: messages the producer still
 * holds and records not acknowledged (`records` is the sink's count,
 * published atomically; its dead-letter count is the sink's own). */
static void log_unflushed(fs_stage *s, fs_log_level level, const char *msg)
{
    uint64_t records = atomic_load(&s->records);
    fs_log(level, msg,
           "producer_queue=%d records_unacked=%" PRIu64
           " hint=\"nothing after the last commit is committed: a restart goes on from there, "
           "and read_committed readers never see what was not\"",
           rd_kafka_outq_len(s->producer),
           records > s->acked_records ? records - s->acked_records : 0);
}

/* Whatever the producer still holds goes: it will not be acknowledged. */
static void drop_output(fs_stage *s)
{
    rd_kafka_purge(s->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
                                    RD_KAFKA_PURGE_F_NON_BLOCKING);
}

/* Step 3: leave the group. The consumer closes on librdkafka's threads;
 * its rebalance events come to close_q, served here. */
static void start_leaving(fs_stage *s)
{
    s->end_step = FS_END_LEAVE;
    s->end_deadline = uv_now(&s->loop) + (s->forced ? FORCED_LEAVE_MS : LEAVE_TIMEOUT_MS);
    s->close_q = rd_kafka_queue_new(s->consumer);
    rd_kafka_error_t *error = rd_kafka_consumer_close_queue(s->consumer, s->close_q);
    if (error) {
        fs_log(FS_LOG_WARN, "cannot leave the consumer group", "error=\"%s\"",
               rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
}

static void serve_close_queue(fs_stage *s)
{
    rd_kafka_event_t *ev;
    while ((ev = rd_kafka_queue_poll(s->close_q, 0))) {
        if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
            fs_consume_rebalance(s->consumer, rd_kafka_event_error(ev),
                                 rd_kafka_event_topic_partition_list(ev), s);
        rd_kafka_event_destroy(ev);
    }
}

static void leave_tick(fs_stage *s)
{
    serve_close_queue(s);
    bool closed = rd_kafka_consumer_closed(s->consumer);
    if (!closed && uv_now(&s->loop) < s->end_deadline)
        return;
    if (!closed)
        fs_log(FS_LOG_WARN, "the consumer group was not left in time",
               "timeout_ms=%d hint=\"the group waits for this member's session to time out\"",
               LEAVE_TIMEOUT_MS);
    rd_kafka_queue_destroy(s->close_q);
    s->close_q = NULL;
    if (s->forced) { /* the sink may be inside a transaction call: no join */
        fs_log(FS_LOG_ERROR, "stage stopped", "exit=1 forced=true");
        fflush(stderr);
        _exit(1);
    }
    close_handles(s);
}

/* Step 2: the producer is drained (or given up on). */
static void end_output(fs_stage *s, bool drained)
{
    if (!drained) {
        log_unflushed(s, FS_LOG_ERROR, "producer not flushed");
        s->exit_code = 1;
        drop_output(s);
    } else if (s->transactional) {
        /* What is still uncommitted goes (nothing after a clean stop, whose
         * checkpoint committed); readers of committed data need not wait
         * for the transaction's timeout. No transaction open: an error to
         * ignore. */
        rd_kafka_error_t *error = rd_kafka_abort_transaction(s->producer, TXN_ABORT_TIMEOUT_MS);
        if (error)
            rd_kafka_error_destroy(error);
    }
    if (drained)
        fs_deliver_commit(s, true, NULL);
    start_leaving(s);
}

static void drain_tick(fs_stage *s)
{
    rd_kafka_flush(s->producer, 0); /* sends what lingers, serves reports */
    fs_deliver_read(s);
    if (rd_kafka_outq_len(s->producer) == 0)
        end_output(s, true);
    else if (uv_now(&s->loop) >= s->end_deadline || fs_brokers_down_ms(s) > 0)
        end_output(s, false);
}

static void on_end_tick(uv_timer_t *h)
{
    fs_stage *s = h->data;
    if (s->end_step == FS_END_DRAIN)
        drain_tick(s);
    else if (s->end_step == FS_END_LEAVE)
        leave_tick(s);
}

void fs_shutdown_begin(fs_stage *s)
{
    if (s->end_step != FS_END_NONE)
        return;
    s->phase = FS_STAGE_DONE;
    s->end_step = FS_END_DRAIN;
    s->end_deadline = uv_now(&s->loop) + FLUSH_TIMEOUT_MS;
    fs_xcheck(uv_timer_start(&s->end_timer, on_end_tick, 0, END_TICK_MS), "uv_timer_start");
}

void fs_shutdown_force(fs_stage *s)
{
    if (s->forced || s->end_step == FS_END_CLOSED)
        return;
    s->forced = true;
    s->exit_code = 1;
    log_unflushed(s, FS_LOG_ERROR, "second signal: stopping now, without waiting for the broker");
    if (s->end_step != FS_END_LEAVE) {
        drop_output(s);
        start_leaving(s);
    }
    fs_xcheck(uv_timer_start(&s->end_timer, on_end_tick, 0, END_TICK_MS), "uv_timer_start");
}
