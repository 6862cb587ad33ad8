/* stage.c -- the pipeline stage: Kafka in, engine, Kafka out, on a libuv loop.
 *
 * Threads. The loop thread (everything in this file that is not a callback
 * named *_from_*) consumes messages, fills engine batches, decides partition
 * changes (assign, revoke, idle, end), commits offsets and serves the
 * producer's delivery reports. The engine's workers decode and compute; its
 * sink thread produces the records, and worker 0 the dead letters.
 * librdkafka may run the delivery callback on any thread that polls the
 * producer (fs_kafka_produce polls when the queue is full), so that callback
 * only posts to the inbox, and a uv_async wakes the loop to read it.
 *
 * Wake-ups, never polling: librdkafka writes a byte to a pipe when the
 * consumer queue (messages, rebalances, errors) or the producer's queue
 * (delivery reports) becomes non-empty (rd_kafka_queue_io_event_enable), and
 * uv_poll watches the pipes. A uv_timer marks idle partitions and another
 * commits; uv_signal catches SIGINT and SIGTERM.
 *
 * Partitions: each message's Kafka partition number is its partition index
 * in the engine, whose workers keep one clock per partition (worker.h). The
 * loop tells them, in the batch stream, when a partition is assigned, idle
 * (no message for idle_timeout), at its end (--until-eof: it holds nothing
 * back any more) or revoked.
 *
 * Offsets are committed only when commit.h says the records depending on
 * them are acknowledged.
 *
 * Latency: every batch carries its publication time into the steps cut
 * while it is applied; when all records up to a step's are acknowledged,
 * now minus that time is one sample of "window closed -> its records
 * acknowledged" (p50/p99 in the progress and summary logs).
 *
 * HTTP (http.h), on the same loop: /metrics (Prometheus, metrics.h),
 * /health (the loop answers), /ready (partitions assigned, no failure,
 * consumer lag below READY_MAX_LAG), /api/funnels (board.h) and the
 * dashboard at /, built into the binary. A taken http.listen address is
 * logged as an error and the stage runs on without HTTP: the data path
 * matters more than its observation.
 *
 * Ending. --until-eof: once every assigned partition is at its end, the open
 * batch is published as the last one; the watermark goes to +inf, every
 * window closes, and when the final records are acknowledged every consumed
 * offset is committed. A signal: consumption stops, the open batch is
 * published as a "stop" batch (open windows are not emitted: they are not
 * closed), and once the sink is through, the producer is flushed and the safe
 * offsets committed. Either way the consumer then leaves the group and the
 * loop ends. A delivery failure stops the stage the same way but commits
 * nothing more and exits 1.
 */
#include "stage.h"
#include "stage_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <uv.h>

#include "api.h"
#include "board.h"
#include "commit.h"
#include "deliver.h"
#include "embedded.h"
#include "engine.h"
#include "http.h"
#include "inbox.h"
#include "kafka.h"
#include "latency.h"
#include "log.h"
#include "lookup.h"
#include "metrics.h"
#include "part_table.h"
#include "utf8.h"
#include "util.h"

#define CONSUME_CHUNK   1024 /* messages per rd_kafka_consume_batch_queue */
#define CONSUME_ROUNDS  64   /* chunks per wake-up before yielding to the loop */
#define COMMIT_EVERY_MS 1000
#define STATS_EVERY_MS  10000

/* ---- batches ---------------------------------------------------------------- */

static fs_batch *open_batch(fs_stage *s)
{
    if (!s->open)
        s->open = fs_engine_batch_get(s->engine, s->cfg->input_format);
    return s->open;
}

typedef enum publish_how { PUBLISH_MORE, PUBLISH_LAST, PUBLISH_STOP } publish_how;

/* Publishes the open batch (an empty one if needed for LAST/STOP) and
 * records where every partition stands after it. */
static void publish(fs_stage *s, publish_how how)
{
    if (!s->open && how == PUBLISH_MORE)
        return;
    fs_batch *b = open_batch(s);
    uint64_t seq = b->seq; /* the slot may be recycled once published */
    s->open = NULL;
    if (how == PUBLISH_STOP)
        fs_engine_batch_publish_stop(s->engine, b);
    else
        fs_engine_batch_publish(s->engine, b, how == PUBLISH_LAST);
    fs_commit_batch(s->plan, seq, fs_part_table_next(&s->parts), s->parts.n);
}

/* Partition changes apply before the messages of their batch, so any
 * messages already gathered go out first. */
static void control(fs_stage *s, uint32_t part, fs_part_op op)
{
    if (s->open && s->open->n > 0)
        publish(s, PUBLISH_MORE);
    fs_batch_add_ctl(open_batch(s), part, op);
}

static void add_message(fs_stage *s, const rd_kafka_message_t *m)
{
    fs_part *ps = fs_part_table_at(&s->parts, (uint32_t)m->partition);
    size_t key_len = m->key ? m->key_len : 0, need = m->len + key_len;
    fs_batch *b = open_batch(s);
    if (b->n > 0 && b->len + need > b->cap) {
        publish(s, PUBLISH_MORE);
        b = open_batch(s);
    }
    fs_batch_reserve(b, need);
    if (m->len)
        memcpy(b->buf + b->len, m->payload, m->len);
    if (key_len)
        memcpy(b->buf + b->len + m->len, m->key, key_len);
    fs_reject preset = m->len > FS_MAX_MESSAGE ? FS_REJECT_MALFORMED : FS_OK;
    fs_batch_add_keyed(b, (uint32_t)b->len, (uint32_t)m->len, (uint32_t)key_len,
                       (uint16_t)m->partition, preset);
    b->len += need;
    fs_part_message(ps, m->offset, uv_now(&s->loop));
    if (!s->consumed++)
        s->first_message_ns = fs_now_ns();
    s->consumed_bytes += m->len;
    if (fs_batch_full(b))
        publish(s, PUBLISH_MORE);
}

/* ---- ending ----------------------------------------------------------------- */

static void stop_consuming(fs_stage *s)
{
    uv_poll_stop(&s->consumer_watch);
    uv_idle_stop(&s->more);
}

static void end_input(fs_stage *s, publish_how how, const char *why)
{
    if (s->phase != FS_STAGE_RUNNING)
        return;
    double secs = s->consumed ? (double)(fs_now_ns() - s->first_message_ns) / 1e9 : 0;
    fs_log(FS_LOG_INFO, "input ends",
           "reason=\"%s\" consumed=%" PRIu64 " consume_s=%.3f events_per_s=%.0f", why, s->consumed,
           secs, secs > 0 ? (double)s->consumed / secs : 0.0);
    s->phase = FS_STAGE_ENDING;
    stop_consuming(s);
    publish(s, how);
}

void fs_stage_fail(fs_stage *s, const char *why)
{
    fs_log(FS_LOG_ERROR, "stage failed: stopping without committing further", "error=\"%s\"", why);
    s->exit_code = 1;
    end_input(s, PUBLISH_STOP, "failure");
}

/* ---- the end: flush, commit, leave the group -------------------------------- */

static void close_handles(fs_stage *s)
{
    fs_api_stop(s);
    uv_close((uv_handle_t *)&s->consumer_watch, NULL);
    uv_close((uv_handle_t *)&s->producer_watch, NULL);
    uv_close((uv_handle_t *)&s->wake, NULL);
    uv_close((uv_handle_t *)&s->more, NULL);
    uv_close((uv_handle_t *)&s->idle_timer, NULL);
    uv_close((uv_handle_t *)&s->commit_timer, NULL);
    uv_close((uv_handle_t *)&s->stats_timer, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
}

static void finish(fs_stage *s)
{
    s->phase = FS_STAGE_DONE;
    if (!fs_deliver_flush(s))
        s->exit_code = 1;
    fs_deliver_commit(s, true, NULL);
    rd_kafka_consumer_close(s->consumer);
    close_handles(s);
}

static void on_wake(uv_async_t *h)
{
    fs_stage *s = h->data;
    fs_deliver_read(s);
    if (s->phase == FS_STAGE_ENDING && s->sink_done)
        finish(s);
}

/* ---- consuming -------------------------------------------------------------- */

static void on_message(fs_stage *s, const rd_kafka_message_t *m)
{
    if (!m->err) {
        if (m->partition >= 0 && m->partition < FS_MAX_PARTITIONS)
            add_message(s, m);
        return;
    }
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        fs_part *ps = fs_part_table_at(&s->parts, (uint32_t)m->partition);
        if (fs_part_reach_eof(ps) && s->until_eof)
            control(s, (uint32_t)m->partition, FS_PART_IDLE); /* nothing more to wait for */
        return;
    }
    char msg[256];
    snprintf(msg, sizeof(msg), "%s%s%s", rd_kafka_err2str(m->err), m->len ? ": " : "",
             m->len ? (const char *)m->payload : "");
    if (m->err == RD_KAFKA_RESP_ERR__FATAL || m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
        m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
        m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
        fs_stage_fail(s, msg);
    else
        fs_log(FS_LOG_WARN, "consumer error", "error=\"%s\"", msg);
}

static void on_more(uv_idle_t *h);

/* Drains the consumer queue, a bounded amount per wake-up so that timers
 * and delivery reports are served in between. */
static void consume(fs_stage *s)
{
    rd_kafka_message_t *msgs[CONSUME_CHUNK];
    for (int round = 0; round < CONSUME_ROUNDS && s->phase == FS_STAGE_RUNNING; round++) {
        ssize_t n = rd_kafka_consume_batch_queue(s->consumer_q, 0, msgs, CONSUME_CHUNK);
        for (ssize_t i = 0; i < n; i++) {
            if (s->phase == FS_STAGE_RUNNING)
                on_message(s, msgs[i]);
            rd_kafka_message_destroy(msgs[i]);
        }
        if (n < CONSUME_CHUNK) {
            uv_idle_stop(&s->more);
            if (s->phase != FS_STAGE_RUNNING)
                return;
            publish(s, PUBLISH_MORE); /* low rates: do not hold messages back */
            if (s->until_eof && fs_part_table_all_at_eof(&s->parts))
                end_input(s, PUBLISH_LAST, "every assigned partition is at its end");
            return;
        }
    }
    if (s->phase == FS_STAGE_RUNNING) {
        publish(s, PUBLISH_MORE);
        fs_xcheck(uv_idle_start(&s->more, on_more), "uv_idle_start");
    }
}

static void on_more(uv_idle_t *h)
{
    consume(h->data);
}

static void drain_pipe(int fd)
{
    char buf[256];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

static void on_producer_ready(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    fs_stage *s = h->data;
    drain_pipe(s->producer_pipe[0]);
    fs_deliver_poll(s);
}

static void on_consumer_ready(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    fs_stage *s = h->data;
    drain_pipe(s->consumer_pipe[0]);
    consume(s);
}

/* ---- rebalances (called from inside rd_kafka_consume_batch_queue) ------------ */

static void assigned(fs_stage *s, const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        if (p < 0 || p >= FS_MAX_PARTITIONS) {
            fs_stage_fail(s, "input partition number above 65535");
            continue;
        }
        fs_part_table_assign(&s->parts, (uint32_t)p, uv_now(&s->loop));
        fs_commit_forget(s->plan, (uint32_t)p); /* consumption restarts from the commit */
        if (s->phase == FS_STAGE_RUNNING)
            control(s, (uint32_t)p, FS_PART_ASSIGN);
        fs_log(FS_LOG_INFO, "partition assigned", "topic=%s partition=%" PRId32,
               parts->elems[i].topic, p);
    }
}

static void revoked(fs_stage *s, const rd_kafka_topic_partition_list_t *parts)
{
    if (s->phase == FS_STAGE_RUNNING)
        fs_deliver_commit(s, true, parts);
    for (int i = 0; i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        if (p < 0 || !fs_part_table_revoke(&s->parts, (uint32_t)p))
            continue;
        fs_commit_forget(s->plan, (uint32_t)p);
        if (s->phase == FS_STAGE_RUNNING)
            control(s, (uint32_t)p, FS_PART_REVOKE);
        fs_log(FS_LOG_INFO, "partition revoked", "topic=%s partition=%" PRId32,
               parts->elems[i].topic, p);
    }
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    fs_stage *s = opaque;
    s->rebalances++;
    bool cooperative = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        assigned(s, parts);
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            aerr = rd_kafka_assign(rk, parts);
    } else {
        revoked(s, parts);
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            aerr = rd_kafka_assign(rk, NULL);
    }
    if (error) {
        fs_log(FS_LOG_ERROR, "rebalance failed", "error=\"%s\"", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (aerr) {
        fs_log(FS_LOG_ERROR, "rebalance failed", "error=\"%s\"", rd_kafka_err2str(aerr));
    }
}

/* ---- timers and signals ------------------------------------------------------ */

static void on_idle_check(uv_timer_t *h)
{
    fs_stage *s = h->data;
    if (s->phase != FS_STAGE_RUNNING)
        return;
    uint64_t now = uv_now(&s->loop);
    bool changed = false;
    for (uint32_t p = 0; p < s->parts.n; p++) {
        if (fs_part_idle_due(&s->parts.v[p], now, (uint64_t)s->cfg->idle_timeout_ms)) {
            control(s, p, FS_PART_IDLE);
            changed = true;
            fs_log(FS_LOG_DEBUG, "partition idle", "partition=%" PRIu32, p);
        }
    }
    if (changed)
        publish(s, PUBLISH_MORE); /* the watermark may move now */
}

static void on_commit_tick(uv_timer_t *h)
{
    fs_stage *s = h->data;
    fs_deliver_commit_tick(s);
}

static void on_stats_tick(uv_timer_t *h)
{
    fs_stage *s = h->data;
    fs_log(FS_LOG_INFO, "progress",
           "consumed=%" PRIu64 " bytes=%" PRIu64 " records=%" PRIu64 " records_acked=%" PRIu64
           " dead_letters=%" PRIu64 " commits=%" PRIu64 " acked_watermark=%" PRId64
           " close_to_ack_ms_p50=%.1f close_to_ack_ms_p99=%.1f",
           s->consumed, s->consumed_bytes, atomic_load(&s->records), s->acked_records,
           s->acked_dead_letters, s->commits, fs_commit_acked_wm(s->plan),
           fs_ack_latency_ms(&s->latency, 0.5), fs_ack_latency_ms(&s->latency, 0.99));
}

static void on_signal(uv_signal_t *h, int signum)
{
    fs_stage *s = h->data;
    fs_log(FS_LOG_INFO, "signal: stopping", "signal=%d", signum);
    end_input(s, PUBLISH_STOP, "signal");
}

/* ---- set-up and tear-down ------------------------------------------------------ */

static int event_pipe(rd_kafka_queue_t *q, int fds[2])
{
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
        return -1;
    rd_kafka_queue_io_event_enable(q, fds[1], "1", 1);
    return 0;
}

static void watch_pipe(fs_stage *s, int fd, uv_poll_t *h, uv_poll_cb cb)
{
    fs_xcheck(uv_poll_init(&s->loop, h, fd), "uv_poll_init");
    h->data = s;
    fs_xcheck(uv_poll_start(h, UV_READABLE, cb), "uv_poll_start");
}

static void init_handles(fs_stage *s)
{
    watch_pipe(s, s->consumer_pipe[0], &s->consumer_watch, on_consumer_ready);
    watch_pipe(s, s->producer_pipe[0], &s->producer_watch, on_producer_ready);
    fs_xcheck(uv_async_init(&s->loop, &s->wake, on_wake), "uv_async_init");
    fs_xcheck(uv_idle_init(&s->loop, &s->more), "uv_idle_init");
    fs_xcheck(uv_timer_init(&s->loop, &s->idle_timer), "uv_timer_init");
    fs_xcheck(uv_timer_init(&s->loop, &s->commit_timer), "uv_timer_init");
    fs_xcheck(uv_timer_init(&s->loop, &s->stats_timer), "uv_timer_init");
    fs_xcheck(uv_signal_init(&s->loop, &s->sigint), "uv_signal_init");
    fs_xcheck(uv_signal_init(&s->loop, &s->sigterm), "uv_signal_init");
    uv_handle_t *hs[] = {(uv_handle_t *)&s->wake,        (uv_handle_t *)&s->more,
                         (uv_handle_t *)&s->idle_timer,  (uv_handle_t *)&s->commit_timer,
                         (uv_handle_t *)&s->stats_timer, (uv_handle_t *)&s->sigint,
                         (uv_handle_t *)&s->sigterm};
    for (size_t i = 0; i < sizeof(hs) / sizeof(*hs); i++)
        hs[i]->data = s;
    uint64_t idle_every = (uint64_t)s->cfg->idle_timeout_ms / 4;
    idle_every = idle_every < 10 ? 10 : idle_every > 1000 ? 1000 : idle_every;
    fs_xcheck(uv_timer_start(&s->idle_timer, on_idle_check, idle_every, idle_every),
              "uv_timer_start");
    fs_xcheck(uv_timer_start(&s->commit_timer, on_commit_tick, COMMIT_EVERY_MS, COMMIT_EVERY_MS),
              "uv_timer_start");
    fs_xcheck(uv_timer_start(&s->stats_timer, on_stats_tick, STATS_EVERY_MS, STATS_EVERY_MS),
              "uv_timer_start");
    fs_xcheck(uv_signal_start(&s->sigint, on_signal, SIGINT), "uv_signal_start");
    fs_xcheck(uv_signal_start(&s->sigterm, on_signal, SIGTERM), "uv_signal_start");
}

static int open_clients(fs_stage *s)
{
    char err[512];
    s->consumer = fs_kafka_consumer_new(s->cfg, s->until_eof, on_rebalance, s, err, sizeof(err));
    if (s->consumer)
        s->producer =
            fs_kafka_producer_new(s->cfg, fs_deliver_report_from_any, s, err, sizeof(err));
    if (!s->consumer || !s->producer) {
        fs_log(FS_LOG_ERROR, "cannot create the Kafka clients", "error=\"%s\"", err);
        return -1;
    }
    /* Naming the topics now makes the producer fetch their metadata at once,
     * instead of delaying the first window's records by a metadata round. */
    s->warm[0] = rd_kafka_topic_new(s->producer, s->cfg->output_topic, NULL);
    if (s->cfg->dead_letter_topic)
        s->warm[1] = rd_kafka_topic_new(s->producer, s->cfg->dead_letter_topic, NULL);
    s->consumer_q = rd_kafka_queue_get_consumer(s->consumer);
    s->producer_q = rd_kafka_queue_get_main(s->producer);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, s->cfg->input_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(s->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        fs_log(FS_LOG_ERROR, "cannot subscribe", "topic=%s error=\"%s\"", s->cfg->input_topic,
               rd_kafka_err2str(e));
        return -1;
    }
    if (event_pipe(s->consumer_q, s->consumer_pipe) ||
        event_pipe(s->producer_q, s->producer_pipe)) {
        fs_log(FS_LOG_ERROR, "cannot create event pipes", "error=\"%s\"", strerror(errno));
        return -1;
    }
    return 0;
}

static void close_fds(int fds[2])
{
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

static void free_stage(fs_stage *s)
{
    if (s->consumer_q)
        rd_kafka_queue_destroy(s->consumer_q);
    if (s->producer_q)
        rd_kafka_queue_destroy(s->producer_q);
    for (int i = 0; i < 2; i++)
        if (s->warm[i])
            rd_kafka_topic_destroy(s->warm[i]);
    if (s->consumer)
        rd_kafka_destroy(s->consumer);
    if (s->producer)
        rd_kafka_destroy(s->producer);
    close_fds(s->consumer_pipe);
    close_fds(s->producer_pipe);
    fs_commit_plan_free(s->plan);
    fs_part_table_free(&s->parts);
    fs_api_free(s);
    fs_ack_latency_free(&s->latency);
    fs_inbox_free(&s->in);
}

static void log_summary(fs_stage *s)
{
    fs_engine_stats st = fs_engine_get_stats(s->engine);
    fs_log(FS_LOG_INFO, "stage stopped",
           "exit=%d consumed=%" PRIu64 " valid=%" PRIu64 " rejected=%" PRIu64
           " late_events=%" PRIu64 " flow_records=%" PRIu64 " cohort_records=%" PRIu64
           " records_acked=%" PRIu64 " dead_letters_acked=%" PRIu64 " commits=%" PRIu64
           " closes=%" PRIu64 " close_to_ack_ms_p50=%.1f close_to_ack_ms_p99=%.1f",
           s->exit_code, s->consumed, st.valid, st.rejected, st.late_events, st.flow_records,
           st.cohort_records, s->acked_records, s->acked_dead_letters, s->commits,
           s->latency.us.count, fs_ack_latency_ms(&s->latency, 0.5),
           fs_ack_latency_ms(&s->latency, 0.99));
}

int fs_stage_run(const fs_stage_opts *opts)
{
    fs_stage s = {.cfg = opts->cfg,
                  .until_eof = opts->until_eof,
                  .consumer_pipe = {-1, -1},
                  .producer_pipe = {-1, -1}};
    fs_inbox_init(&s.in);
    fs_ack_latency_init(&s.latency);
    fs_window_spec win = {opts->cfg->window_size_ms, opts->cfg->window_hop_ms,
                          (uint32_t)(opts->cfg->window_size_ms / opts->cfg->window_hop_ms)};
    s.plan = fs_commit_plan_new(&win);
    if (open_clients(&s) != 0) {
        if (s.consumer)
            rd_kafka_consumer_close(s.consumer);
        free_stage(&s);
        return 1;
    }
    uint32_t threads = opts->threads ? opts->threads : fs_config_threads(opts->cfg);
    fs_output out = {.write = fs_deliver_write_from_sink,
                     .ctx = &s,
                     .format = opts->cfg->output_format,
                     .dead_letter =
                         opts->cfg->dead_letter_topic ? fs_deliver_dead_letter_from_sink : NULL,
                     .step_done = fs_deliver_step_from_sink,
                     .flow_json = fs_api_flow_from_sink};
    s.engine = fs_engine_new(opts->cfg, threads, out);
    fs_xcheck(uv_loop_init(&s.loop), "uv_loop_init");
    init_handles(&s);
    fs_api_start(&s, opts);
    fs_log(FS_LOG_INFO, "stage running",
           "input=%s output=%s dead_letter=%s threads=%" PRIu32 " until_eof=%s",
           opts->cfg->input_topic, opts->cfg->output_topic,
           opts->cfg->dead_letter_topic ? opts->cfg->dead_letter_topic : "-", threads,
           opts->until_eof ? "true" : "false");
    fs_engine_reader_enter(); /* /api/journeys reads the journey table from this thread */
    uv_run(&s.loop, UV_RUN_DEFAULT);
    fs_engine_reader_leave();
    uv_loop_close(&s.loop);
    fs_engine_join(s.engine);
    log_summary(&s);
    fs_engine_free(s.engine);
    int rc = s.exit_code;
    free_stage(&s);
    return rc;
}
