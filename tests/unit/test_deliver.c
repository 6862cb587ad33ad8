/* test_deliver.c -- the Kafka stage's output side (src/stage/deliver.h),
 * without the rest of the stage: no engine, no consume loop, the libuv
 * loop never runs. The clients talk to librdkafka's mock cluster inside
 * this process (fs_dev_broker, one for the file; each test has a consumer
 * group of its own), so delivery reports and commits are real.
 *
 *   - what the sink hands over is produced, numbered by kind, and every
 *     delivery report comes back through the inbox to the right counter and
 *     to the commit plan; the sink's last step ends the output;
 *   - offsets are committed only when the plan says so, only for assigned
 *     partitions (and only the revoked ones when asked), never twice, and
 *     never after a failure;
 *   - a failed delivery fails the stage (exit code 1) once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver.h"
#include "dev_broker.h"
#include "kafka.h"
#include "util.h"

#define WAIT_MS 10000

static const char funnels[] = "input: {topic: in}\n"
                              "output: {topic: out}\n"
                              "dead_letter: {topic: dlq}\n"
                              "window: {size: 1s}\n"
                              "funnels:\n"
                              "  - name: f\n"
                              "    stages: [{name: a, events: [a]}, {name: b, events: [b]}]\n";

static fs_dev_broker *broker;

typedef struct fixture {
    fs_config *cfg;
    fs_stage s;
} fixture;

static fs_config *parse(const char *bootstrap, int group)
{
    char yaml[1024], err[256];
    int n = snprintf(yaml, sizeof yaml, "%skafka: {bootstrap.servers: \"%s\", group.id: test%d}\n",
                     funnels, bootstrap, group);
    assert_true(n > 0 && (size_t)n < sizeof yaml);
    fs_config *cfg = fs_config_parse(yaml, (size_t)n, "test", err, sizeof err);
    if (!cfg)
        fail_msg("config: %s", err);
    return cfg;
}

static void no_wake(uv_async_t *h)
{
    (void)h;
}

static int start_broker(void **state)
{
    (void)state;
    char err[512];
    fs_config *topics = parse("unused:9092", 0);
    broker = fs_dev_broker_start(topics, 2, 1, err, sizeof err);
    fs_config_free(topics);
    if (!broker)
        fail_msg("broker: %s", err);
    return 0;
}

static int stop_broker(void **state)
{
    (void)state;
    fs_dev_broker_stop(broker);
    return 0;
}

static int setup(void **state)
{
    static int group;
    fixture *f = calloc(1, sizeof(*f));
    char err[512];
    f->cfg = parse(fs_dev_broker_bootstrap(broker), ++group);
    fs_stage *s = &f->s;
    s->cfg = f->cfg;
    s->phase = FS_STAGE_RUNNING;
    s->n_input = s->partials_index = 2; /* the broker's partitions; then the partials' */
    s->dead_letter_max = 1 << 20;
    snprintf(s->partials_topic, sizeof s->partials_topic, "test%d-partials", group);
    fs_inbox_init(&s->in);
    fs_ack_latency_init(&s->latency);
    fs_window_spec win = {1000, 1000, 1};
    s->plan = fs_commit_plan_new(&win);
    assert_int_equal(uv_loop_init(&s->loop), 0);
    assert_int_equal(uv_async_init(&s->loop, &s->wake, no_wake), 0);
    s->producer = fs_kafka_producer_new(f->cfg, fs_deliver_report_from_any, s, err, sizeof err);
    if (!s->producer)
        fail_msg("producer: %s", err);
    s->consumer = fs_kafka_consumer_new(f->cfg, false, NULL, s, err, sizeof err);
    if (!s->consumer)
        fail_msg("consumer: %s", err);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    fs_stage *s = &f->s;
    rd_kafka_consumer_close(s->consumer);
    rd_kafka_destroy(s->consumer);
    rd_kafka_destroy(s->producer);
    uv_close((uv_handle_t *)&s->wake, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&s->loop), 0);
    fs_commit_plan_free(s->plan);
    fs_part_table_free(&s->parts);
    fs_ack_latency_free(&s->latency);
    fs_inbox_free(&s->in);
    fs_config_free(f->cfg);
    free(f);
    return 0;
}

static void dead_letter(fs_stage *s, const char *value)
{
    fs_dead_letter dl = {.value = value,
                         .value_len = strlen(value),
                         .key = "k",
                         .key_len = 1,
                         .reason = FS_REJECT_MALFORMED,
                         .part = 1};
    fs_deliver_dead_letter_from_sink(s, &dl);
}

static void step(fs_stage *s, uint64_t src_seq, uint64_t dead_letters, bool final, bool stopped)
{
    fs_step_info info = {.wm = final ? INT64_MAX : 0,
                         .max_ts = 0,
                         .src_seq = src_seq,
                         .src_mark = dead_letters,
                         .src_ns = fs_now_ns(),
                         .final = final,
                         .stopped = stopped};
    fs_deliver_step_from_sink(s, &info);
}

/* Records and dead letters out, their reports back, the last step in. */
static void test_produce_and_acknowledge(void **state)
{
    fixture *f = *state;
    fs_stage *s = &f->s;
    for (int i = 0; i < 5; i++)
        assert_int_equal(fs_deliver_write_from_sink(s, "f/0", 3, "{}", 2), 0);
    dead_letter(s, "not json");
    dead_letter(s, "neither");
    assert_int_equal(atomic_load(&s->records), 5);
    assert_int_equal(s->dead_letters, 2);
    step(s, 0, 2, true, false);
    assert_false(s->sink_done); /* nothing is read before the loop reads */

    assert_int_equal(rd_kafka_flush(s->producer, WAIT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
    fs_deliver_read(s); /* the acknowledgements the flush delivered */
    assert_int_equal(s->acked_records, 5);
    assert_int_equal(s->acked_dead_letters, 2);
    assert_int_equal(fs_commit_records_acked(s->plan), 5);
    assert_true(s->sink_done);
    assert_int_equal(s->latency.us.count, 1); /* the step waited for 5 records */
    assert_int_equal(s->exit_code, 0);
}

/* A dead letter larger than the producer takes is cut to fit and still
 * acknowledged; one that fits is left whole. */
static void test_dead_letter_cut_to_fit(void **state)
{
    fixture *f = *state;
    fs_stage *s = &f->s;
    s->dead_letter_max = 100;
    char big[301];
    memset(big, 'x', 300);
    big[300] = '\0';
    dead_letter(s, big);
    dead_letter(s, "small");
    assert_int_equal(rd_kafka_flush(s->producer, WAIT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
    fs_deliver_read(s);
    assert_int_equal(s->acked_dead_letters, 2);
    assert_int_equal(atomic_load(&s->dead_letters_cut), 1);
    assert_int_equal(s->exit_code, 0);
}

static int64_t committed_of(fs_stage *s, int32_t p)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, s->cfg->input_topic, p);
    assert_int_equal(rd_kafka_committed(s->consumer, l, WAIT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
    int64_t off = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    return off;
}

/* Partition 0 and 1 consumed up to offsets 10 and 20 in batch 0; the sink's
 * final step makes both safe. */
static void make_safe(fs_stage *s)
{
    fs_part_table_assign(&s->parts, 0, 0);
    fs_part_table_assign(&s->parts, 1, 0);
    fs_part_message(&s->parts.v[0], 9, 1);
    fs_part_message(&s->parts.v[1], 19, 1);
    fs_commit_batch(s->plan, 0, fs_part_table_next(&s->parts), s->parts.n);
    step(s, 0, 0, true, false);
    fs_deliver_read(s);
}

static void test_commit(void **state)
{
    fixture *f = *state;
    fs_stage *s = &f->s;
    fs_deliver_commit(s, true, NULL); /* nothing safe yet */
    assert_int_equal(s->commits, 0);
    make_safe(s);

    rd_kafka_topic_partition_list_t *only = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(only, s->cfg->input_topic, 1);
    fs_deliver_commit(s, true, only); /* before revoking partition 1: it alone */
    rd_kafka_topic_partition_list_destroy(only);
    assert_int_equal(s->commits, 1);
    assert_int_equal(s->parts.v[1].committed, 20);
    assert_int_equal(s->parts.v[0].committed, -1);
    assert_int_equal(committed_of(s, 1), 20);
    assert_int_equal(committed_of(s, 0), RD_KAFKA_OFFSET_INVALID);

    fs_part_table_revoke(&s->parts, 1);
    fs_deliver_commit(s, true, NULL); /* partition 0 now; 1 is committed already */
    assert_int_equal(s->commits, 2);
    assert_int_equal(s->parts.v[0].committed, 10);
    assert_int_equal(committed_of(s, 0), 10);
    fs_deliver_commit(s, true, NULL); /* nothing new */
    assert_int_equal(s->commits, 2);

    s->phase = FS_STAGE_ENDING;
    fs_deliver_commit_tick(s); /* the timer commits only while running */
    assert_int_equal(s->commits, 2);
}

/* A partition that is not ours any more is never committed; the commit
 * timer commits (asynchronously) while the stage runs. */
static void test_commit_assigned_only(void **state)
{
    fixture *f = *state;
    fs_stage *s = &f->s;
    make_safe(s);
    fs_part_table_revoke(&s->parts, 0);
    fs_deliver_commit_tick(s);
    assert_int_equal(s->commits, 1);
    assert_int_equal(s->parts.v[0].committed, -1);
    assert_int_equal(s->parts.v[1].committed, 20);
    fs_deliver_commit(s, true, NULL); /* nothing new */
    assert_int_equal(s->commits, 1);
    assert_int_equal(committed_of(s, 0), RD_KAFKA_OFFSET_INVALID);
}

/* The sink's step of a checkpoint with number id heading batch seq. */
static void checkpoint_step(fs_stage *s, uint64_t seq, uint64_t id)
{
    fs_step_info info = {
        .src_seq = seq, .src_ns = fs_now_ns(), .checkpoint = true, .checkpoint_id = id};
    fs_deliver_step_from_sink(s, &info);
}

/* The committed offset's metadata: the checkpoint number it goes with. */
static uint64_t committed_checkpoint_of(fs_stage *s, int32_t p)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, s->cfg->input_topic, p);
    assert_int_equal(rd_kafka_committed(s->consumer, l, WAIT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
    char text[24] = "";
    if (l->elems[0].metadata_size > 0 && l->elems[0].metadata_size < sizeof text)
        memcpy(text, l->elems[0].metadata, l->elems[0].metadata_size);
    rd_kafka_topic_partition_list_destroy(l);
    return strtoull(text, NULL, 10);
}

/* Batch seq with partition 1's consumption at `offset` (partition 0 stays),
 * then a checkpoint (number id) heading batch seq + 1, all acknowledged. */
static void consume_and_checkpoint(fs_stage *s, uint64_t seq, int64_t offset, uint64_t id)
{
    fs_part_message(&s->parts.v[1], offset, 1);
    fs_commit_batch(s->plan, seq, fs_part_table_next(&s->parts), s->parts.n);
    step(s, seq, 0, false, false);
    fs_commit_batch(s->plan, seq + 1, fs_part_table_next(&s->parts), s->parts.n);
    checkpoint_step(s, seq + 1, id);
    fs_deliver_read(s);
}

/* A checkpoint writes the state of every assigned partition, also of one
 * with no new message (its windows may have closed on the others' clocks):
 * its offset is committed again with the new checkpoint's number, or a
 * restore would take that partition's state from an older checkpoint than
 * the others'. Partition 0 here is resumed from a commit (restored), not
 * consumed: it is committed from there too. */
static void test_commit_names_every_checkpoint(void **state)
{
    fixture *f = *state;
    fs_stage *s = &f->s;
    fs_commit_plan_use_checkpoints(s->plan);
    fs_part_table_assign(&s->parts, 0, 0);
    fs_part_table_assign(&s->parts, 1, 0);
    fs_part_resume(&s->parts.v[0], 7, 0);
    consume_and_checkpoint(s, 0, 19, 1);
    fs_deliver_commit(s, true, NULL);
    assert_int_equal(committed_of(s, 0), 7);
    assert_int_equal(committed_of(s, 1), 20);
    assert_int_equal(committed_checkpoint_of(s, 0), 1);
    assert_int_equal(committed_checkpoint_of(s, 1), 1);

    consume_and_checkpoint(s, 2, 29, 2); /* partition 0: no new message */
    fs_deliver_commit(s, true, NULL);
    assert_int_equal(committed_of(s, 0), 7);
    assert_int_equal(committed_of(s, 1), 30);
    assert_int_equal(committed_checkpoint_of(s, 0), 2);
    assert_int_equal(committed_checkpoint_of(s, 1), 2);
    assert_int_equal(s->commits, 2);
    fs_deliver_commit(s, true, NULL); /* nothing new */
    assert_int_equal(s->commits, 2);
}

/* A failed delivery fails the stage once; nothing is committed after it,
 * and a stopped step ends the output without making anything safe. */
static void test_failure(void **state)
{
    fixture *f = *state;
    fs_stage *s = &f->s;
    s->phase = FS_STAGE_ENDING; /* the input already ended: fs_stage_fail needs no engine */
    rd_kafka_topic_t *out = rd_kafka_topic_new(s->producer, "out", NULL);
    rd_kafka_message_t report = {.err = RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, .rkt = out};
    fs_deliver_report_from_any(s->producer, &report, s);
    fs_deliver_report_from_any(s->producer, &report, s);
    fs_deliver_read(s);
    assert_int_equal(s->exit_code, 1);

    fs_part_table_assign(&s->parts, 0, 0);
    fs_part_message(&s->parts.v[0], 9, 1);
    fs_commit_batch(s->plan, 0, fs_part_table_next(&s->parts), s->parts.n);
    step(s, 0, 0, false, true); /* stopped */
    fs_deliver_read(s);
    assert_true(s->sink_done);
    uint32_t n;
    const int64_t *safe = fs_commit_safe(s->plan, &n);
    assert_true(n == 0 || safe[0] < 0);
    s->exit_code = 1;
    fs_deliver_commit(s, true, NULL);
    assert_int_equal(s->commits, 0);
    rd_kafka_topic_destroy(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_produce_and_acknowledge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_letter_cut_to_fit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_assigned_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_names_every_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure, setup, teardown),
    };
    return cmocka_run_group_tests(tests, start_broker, stop_broker);
}
