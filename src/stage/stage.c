/* stage.c -- `funnelstream run`: the pipeline stage. Kafka in, engine, Kafka
 * out, on one libuv loop. This file starts and stops it and wires the pieces
 * together; each piece has a file of its own:
 *
 *   consume.c     the input: the consumer queue into engine batches, and
 *                 partition changes (assign, revoke, idle, end) into the
 *                 batch stream
 *   part_table.c  the input partitions, as the loop sees them
 *   deliver.c     the output: records and dead letters produced, delivery
 *                 reports read, offsets committed once commit.h allows it
 *   inbox.c       how the other threads hand things to the loop
 *   latency.c     "window closed -> its records acknowledged", measured
 *   shutdown.c    the end: drain, commit, leave the group, never blocking
 *   brokers.c     whether a broker answers; broker_timeout
 *   api.c         HTTP: /metrics, /health, /ready, /api/funnels,
 *                 /api/journeys and the dashboard
 *   stage_internal.h  the state they share: who writes what, on which thread
 *
 * A message's way: consume.c copies it into a batch and publishes the batch
 * to the engine, noting in the commit plan (commit.h) where each partition
 * stands; the engine's sink thread hands the records it leads to to
 * deliver.c, which produces them; their delivery reports come back to the
 * loop through the inbox, and once the plan finds every record an offset
 * depends on acknowledged, deliver.c commits that offset.
 *
 * Threads. The loop thread runs everything but the callbacks named
 * *_from_sink and *_from_any: it consumes, fills and publishes batches,
 * decides partition changes, commits offsets, serves the producer's
 * delivery reports and answers HTTP. The engine's workers decode and
 * compute; its sink thread merges their steps into records and hands them,
 * with the dead letters worker 0 gathered, to the fs_output hooks, which
 * produce them (deliver.c). librdkafka may run the delivery callback on any
 * thread that polls the producer (fs_kafka_produce polls when the queue is
 * full), so that callback, like the sink's step hook, only posts to the
 * inbox, and a uv_async (`wake`) makes the loop read it.
 *
 * Wake-ups, never polling: librdkafka writes a byte to a pipe when the
 * consumer queue (messages, rebalances, errors) or the producer's queue
 * (delivery reports) becomes non-empty (rd_kafka_queue_io_event_enable), and
 * uv_poll watches the pipes. A uv_timer marks idle partitions, another
 * commits, a third logs progress; uv_signal catches SIGINT and SIGTERM.
 *
 * Ending. --until-eof: once every assigned partition is at its end, the open
 * batch is published as the last one; the watermark goes to +inf, every
 * window closes, and when the final records are acknowledged every consumed
 * offset is committed. A signal: consumption stops, the open batch is
 * published as a "stop" batch (open windows are not emitted: they are not
 * closed), and once the sink is through, the producer is flushed and the safe
 * offsets committed. Either way the consumer then leaves the group and the
 * loop ends. A failure (fs_stage_fail: broker, delivery or configuration)
 * stops the stage the same way but commits nothing more and exits 1.
 */
#include "stage.h"
#include "state_topic.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <uv.h>

#include "api.h"
#include "brokers.h"
#include "consume.h"
#include "deliver.h"
#include "kafka.h"
#include "log.h"
#include "shutdown.h"
#include "stage_internal.h"
#include "util.h"

#define STATS_EVERY_MS      10000
#define TXN_INIT_TIMEOUT_MS 30000

/* ---- failure (the end itself is shutdown.c's) -------------------------------- */

void fs_stage_fail(fs_stage *s, const char *why)
{
    fs_log(FS_LOG_ERROR, "stage failed: stopping without committing further", "error=\"%s\"", why);
    s->exit_code = 1;
    fs_consume_stop(s, "failure");
}

/* The inbox has news: acknowledgements, finished steps, a failure. Once the
 * input has ended and the sink's last step is in, the stage finishes. */
/* A restore is over once the engine has applied its batch; a state record
 * it could not read stops the stage (never a guess). */
static void check_restore(fs_stage *s)
{
    if (!s->restoring || fs_engine_batches_done(s->engine) <= s->restore_seq)
        return;
    s->restoring = false;
    char err[300], why[600];
    if (fs_engine_restore_error(s->engine, err, sizeof err)) {
        snprintf(why, sizeof why, "cannot restore from state topic %s: %s", s->state_topic, err);
        fs_stage_fail(s, why);
    }
}

static void on_wake(uv_async_t *h)
{
    fs_stage *s = h->data;
    fs_deliver_read(s);
    check_restore(s);
    fs_consume_resume(s);
    fs_consume_check_end(s);
    if (s->phase == FS_STAGE_ENDING && s->sink_done)
        fs_shutdown_begin(s);
}

/* ---- wake-ups: the pipes, the timers, the signals ------------------------- */

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
    fs_consume(s);
}

/* Also reads the consumer's queue: with no message for
 * max.poll.interval.ms (5 min) librdkafka would take the consumer out of
 * the group, the pipe being silent meanwhile. */
static void on_idle_check(uv_timer_t *h)
{
    fs_consume_resume(h->data);
    fs_consume(h->data);
    fs_consume_idle_check(h->data);
    fs_brokers_check(h->data);
}

/* Every commit_interval: a checkpoint of the state, and the offsets of the
 * last acknowledged one committed. */
static void on_commit_tick(uv_timer_t *h)
{
    fs_stage *s = h->data;
    check_restore(s);
    fs_consume_checkpoint(s);
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

/* The first signal stops the stage cleanly; one more while it is stopping
 * (say the broker froze) stops it now (shutdown.h). */
static void on_signal(uv_signal_t *h, int signum)
{
    fs_stage *s = h->data;
    if (s->phase != FS_STAGE_RUNNING) {
        fs_shutdown_force(s);
        return;
    }
    fs_log(FS_LOG_INFO, "signal: stopping", "signal=%d hint=\"a second signal stops at once\"",
           signum);
    fs_consume_stop(s, "signal");
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
    s->consumer_ready = on_consumer_ready;
    watch_pipe(s, s->consumer_pipe[0], &s->consumer_watch, on_consumer_ready);
    watch_pipe(s, s->producer_pipe[0], &s->producer_watch, on_producer_ready);
    fs_xcheck(uv_async_init(&s->loop, &s->wake, on_wake), "uv_async_init");
    fs_xcheck(uv_idle_init(&s->loop, &s->more), "uv_idle_init");
    fs_xcheck(uv_timer_init(&s->loop, &s->idle_timer), "uv_timer_init");
    fs_xcheck(uv_timer_init(&s->loop, &s->commit_timer), "uv_timer_init");
    fs_xcheck(uv_timer_init(&s->loop, &s->stats_timer), "uv_timer_init");
    fs_xcheck(uv_timer_init(&s->loop, &s->end_timer), "uv_timer_init");
    fs_xcheck(uv_signal_init(&s->loop, &s->sigint), "uv_signal_init");
    fs_xcheck(uv_signal_init(&s->loop, &s->sigterm), "uv_signal_init");
    uv_handle_t *hs[] = {(uv_handle_t *)&s->wake,        (uv_handle_t *)&s->more,
                         (uv_handle_t *)&s->idle_timer,  (uv_handle_t *)&s->commit_timer,
                         (uv_handle_t *)&s->stats_timer, (uv_handle_t *)&s->sigint,
                         (uv_handle_t *)&s->sigterm,     (uv_handle_t *)&s->end_timer};
    for (size_t i = 0; i < sizeof(hs) / sizeof(*hs); i++)
        hs[i]->data = s;
    uint64_t idle_every = (uint64_t)s->cfg->idle_timeout_ms / 4;
    idle_every = idle_every < 10 ? 10 : idle_every > 1000 ? 1000 : idle_every;
    fs_xcheck(uv_timer_start(&s->idle_timer, on_idle_check, idle_every, idle_every),
              "uv_timer_start");
    uint64_t every = (uint64_t)s->cfg->commit_interval_ms;
    fs_xcheck(uv_timer_start(&s->commit_timer, on_commit_tick, every, every), "uv_timer_start");
    fs_xcheck(uv_timer_start(&s->stats_timer, on_stats_tick, STATS_EVERY_MS, STATS_EVERY_MS),
              "uv_timer_start");
    fs_xcheck(uv_signal_start(&s->sigint, on_signal, SIGINT), "uv_signal_start");
    fs_xcheck(uv_signal_start(&s->sigterm, on_signal, SIGTERM), "uv_signal_start");
}

/* The topics the stage reads and writes must exist, from one metadata
 * request that names no topic (so asking creates nothing, state_topic.c):
 * a misspelt output or dead-letter name would otherwise make a new topic
 * (brokers with auto.create.topics.enable) and the records go where nobody
 * reads, and the state topic needs the input's partition count. Returns
 * that count, or -1 (logged, naming the field). */
static int check_topics(fs_stage *s)
{
    const char *fields[] = {"input.topic", "output.topic", "dead_letter.topic"};
    const char *topics[] = {s->cfg->input_topic, s->cfg->output_topic, s->cfg->dead_letter_topic};
    int counts[3];
    size_t n = s->cfg->dead_letter_topic ? 3 : 2;
    char err[512];
    if (fs_kafka_partition_counts(s->producer, topics, counts, n, (int)s->cfg->broker_timeout_ms,
                                  err, sizeof err) != 0) {
        const char *servers = fs_kafka_user_property(s->cfg, "bootstrap.servers");
        fs_log(FS_LOG_ERROR, "no broker answered: cannot read the topics' metadata",
               "error=\"%s\" bootstrap.servers=%s broker_timeout_ms=%" PRId64
               " hint=\"is a broker reachable there? (broker_timeout sets the wait)\"",
               err, servers ? servers : "-", s->cfg->broker_timeout_ms);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (counts[i] == FS_TOPIC_MISSING) {
            fs_log(FS_LOG_ERROR, "topic not found",
                   "field=%s topic=%s hint=\"create it first (is the name right?)\"", fields[i],
                   topics[i]);
            return -1;
        }
        if (counts[i] < 0) {
            fs_log(FS_LOG_ERROR, "cannot read a topic's metadata", "field=%s error=\"%s\"",
                   fields[i], err);
            return -1;
        }
    }
    return counts[0];
}

/* Sizes the largest dead letter to what the producer takes and what a
 * topic with a broker's default limit takes (the dead-letter topic is the
 * user's), with room for its headers and the record's framing. */
static void size_dead_letters(fs_stage *s)
{
    char v[32];
    size_t len = sizeof v;
    long max = FS_KAFKA_TOPIC_DEFAULT_MAX;
    if (rd_kafka_conf_get(rd_kafka_conf(s->producer), "message.max.bytes", v, &len) ==
        RD_KAFKA_CONF_OK) {
        long producer = strtol(v, NULL, 10);
        max = producer < max ? producer : max;
    }
    s->dead_letter_max = max > 8192 ? (size_t)max - 4096 : 4096;
}

/* The state topic exists, compacted, with one partition per input
 * partition (state_topic.h); the input topic must exist to say how many. */
static int ensure_state_topic(fs_stage *s)
{
    char err[512];
    if (fs_state_topic_name(s->cfg, s->cfg->state_topic, s->state_topic, sizeof s->state_topic, err,
                            sizeof err) != 0) {
        fs_log(FS_LOG_ERROR, "bad state topic name", "error=\"%s\"", err);
        return -1;
    }
    int n = check_topics(s);
    if (n < 0)
        return -1;
    if (fs_state_topic_ensure(s->producer, s->state_topic, n, (int)s->cfg->broker_timeout_ms, err,
                              sizeof err) != 0) {
        fs_log(FS_LOG_ERROR, "state topic unusable", "error=\"%s\"", err);
        return -1;
    }
    s->warm[2] = rd_kafka_topic_new(s->producer, s->state_topic, NULL);
    s->n_input = (uint32_t)n;
    s->partials_index = (uint32_t)n;
    s->state_bytes = fs_xcalloc((size_t)n + 1, sizeof(*s->state_bytes));
    s->record_bytes = fs_xcalloc((size_t)n + 1, sizeof(*s->record_bytes));
    if (fs_partials_topic_name(s->cfg, s->partials_topic, sizeof s->partials_topic, err,
                               sizeof err) != 0 ||
        fs_partials_topic_ensure(s->producer, s->partials_topic, (int)s->cfg->broker_timeout_ms,
                                 err, sizeof err) != 0) {
        fs_log(FS_LOG_ERROR, "partials topic unusable", "error=\"%s\"", err);
        return -1;
    }
    return 0;
}

/* exactly_once: fences an earlier incarnation with the same
 * transactional.id (its open transaction is aborted) and opens the first
 * transaction. */
static int start_transactions(fs_stage *s)
{
    if (!s->transactional)
        return 0;
    rd_kafka_error_t *error = rd_kafka_init_transactions(s->producer, TXN_INIT_TIMEOUT_MS);
    if (!error)
        error = rd_kafka_begin_transaction(s->producer);
    if (!error)
        return 0;
    fs_log(FS_LOG_ERROR, "cannot start transactions",
           "error=\"%s\" hint=\"the broker must support transactions (transaction.state.log.* "
           "settings, at least as many brokers as its replication factor), or set delivery: "
           "at_least_once\"",
           rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
    return -1;
}

static int open_clients(fs_stage *s)
{
    char err[512];
    s->consumer =
        fs_kafka_consumer_new(s->cfg, s->until_eof, fs_consume_rebalance, s, err, sizeof(err));
    if (s->consumer)
        s->producer =
            s->transactional
                ? fs_kafka_txn_producer_new(s->cfg, fs_deliver_report_from_any, s, err, sizeof err)
                : fs_kafka_producer_new(s->cfg, fs_deliver_report_from_any, s, err, sizeof err);
    if (!s->consumer || !s->producer) {
        fs_log(FS_LOG_ERROR, "cannot create the Kafka clients", "error=\"%s\"", err);
        return -1;
    }
    if (ensure_state_topic(s) != 0)
        return -1;
    /* Naming the topics now makes the producer fetch their metadata at once,
     * instead of delaying the first window's records by a metadata round.
     * Only once they are known to exist: a producer's metadata request for
     * a topic may create it. */
    s->warm[0] = rd_kafka_topic_new(s->producer, s->cfg->output_topic, NULL);
    if (s->cfg->dead_letter_topic)
        s->warm[1] = rd_kafka_topic_new(s->producer, s->cfg->dead_letter_topic, NULL);
    size_dead_letters(s);
    if (start_transactions(s) != 0)
        return -1;
    s->consumer_q = rd_kafka_queue_get_consumer(s->consumer);
    s->producer_q = rd_kafka_queue_get_main(s->producer);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(topics, s->cfg->input_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(topics, s->partials_topic, RD_KAFKA_PARTITION_UA);
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

/* librdkafka 2.0.2's cooperative-sticky assignor aborts the process when a
 * consumer is destroyed after the group chose the assignor and before the
 * first assignment arrived (upstream issue 4312, fixed in 2.3.0): a stop
 * in the first seconds of a member's life. Such a consumer has left the
 * group already (rd_kafka_consumer_close); it is not destroyed, and the
 * process ends without it. Once an assignment arrived the state exists and
 * destroying is safe. */
static void destroy_consumer(fs_stage *s)
{
    if (s->ever_assigned) {
        rd_kafka_destroy(s->consumer);
        return;
    }
    fs_log(FS_LOG_DEBUG, "consumer left undestroyed",
           "reason=\"no assignment yet (librdkafka issue 4312)\"");
}

static void free_stage(fs_stage *s)
{
    fs_consume_release(s);
    if (s->consumer_q) { /* a consumer left alive must not write to a closed (reused) fd */
        rd_kafka_queue_io_event_enable(s->consumer_q, -1, NULL, 0);
        rd_kafka_queue_destroy(s->consumer_q);
    }
    if (s->producer_q)
        rd_kafka_queue_destroy(s->producer_q);
    for (int i = 0; i < 3; i++)
        if (s->warm[i])
            rd_kafka_topic_destroy(s->warm[i]);
    if (s->consumer)
        destroy_consumer(s);
    if (s->producer)
        rd_kafka_destroy(s->producer);
    close_fds(s->consumer_pipe);
    close_fds(s->producer_pipe);
    fs_commit_plan_free(s->plan);
    fs_part_table_free(&s->parts);
    free(s->state_bytes);
    free(s->record_bytes);
    fs_api_free(s);
    fs_ack_latency_free(&s->latency);
    fs_inbox_free(&s->in);
    fs_ckpt_offsets *c;
    while ((c = fs_fifo_front(&s->ckpt_offsets))) {
        rd_kafka_topic_partition_list_destroy(c->offsets);
        fs_fifo_pop(&s->ckpt_offsets);
    }
    fs_fifo_free(&s->ckpt_offsets);
    pthread_mutex_destroy(&s->ckpt_lock);
}

static void log_summary(fs_stage *s)
{
    fs_engine_stats st = fs_engine_get_stats(s->engine);
    fs_log(FS_LOG_INFO, "stage stopped",
           "exit=%d consumed=%" PRIu64 " valid=%" PRIu64 " rejected=%" PRIu64
           " late_events=%" PRIu64 " flow_records=%" PRIu64 " cohort_records=%" PRIu64
           " records_acked=%" PRIu64 " dead_letters_acked=%" PRIu64 " commits=%" PRIu64
           " closes=%" PRIu64 " close_to_ack_ms_p50=%.1f close_to_ack_ms_p99=%.1f"
           " state_records=%" PRIu64 " checkpoints=%" PRIu64 " restored_keys=%" PRIu64
           " restore_s=%.3f partials=%" PRIu64 " partial_bytes=%" PRIu64
           " partials_consumed=%" PRIu64 " unkeyed=%" PRIu64 " offsets_skipped=%" PRIu64
           " dead_letters_truncated=%" PRIu64 " input_pauses=%" PRIu64 " journeys_refused=%" PRIu64
           " journeys_evicted=%" PRIu64,
           s->exit_code, s->consumed, st.valid, st.rejected, st.late_events, st.flow_records,
           st.cohort_records, s->acked_records, s->acked_dead_letters, s->commits,
           s->latency.us.count, fs_ack_latency_ms(&s->latency, 0.5),
           fs_ack_latency_ms(&s->latency, 0.99), atomic_load(&s->state_records), s->checkpoints,
           s->restored_keys, s->restore_seconds, st.partials, st.partial_bytes,
           s->partials_consumed, s->unkeyed, s->offsets_skipped, atomic_load(&s->dead_letters_cut),
           s->input_pauses, st.journeys_refused, st.journeys_evicted);
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
    fs_commit_plan_use_checkpoints(s.plan);
    s.transactional = opts->cfg->delivery == FS_DELIVERY_EXACTLY_ONCE;
    s.next_checkpoint = 1;
    pthread_mutex_init(&s.ckpt_lock, NULL);
    fs_fifo_init(&s.ckpt_offsets, sizeof(fs_ckpt_offsets));
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
                     .flow_json = fs_api_flow_from_sink,
                     .state = fs_deliver_state_from_sink,
                     .partial = fs_deliver_partial_from_sink,
                     .n_parts = s.n_input,
                     .merge_part = s.partials_index};
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
    if (rc == 0 && s.until_eof && s.offsets_skipped > 0) {
        /* the input is processed, but not all of it: say so in the status */
        fs_log(FS_LOG_ERROR, "input ended with messages lost", "offsets_skipped=%" PRIu64 " exit=1",
               s.offsets_skipped);
        rc = 1;
    }
    free_stage(&s);
    return rc;
}
