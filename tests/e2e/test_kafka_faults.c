/* test_kafka_faults.c -- `funnelstream run` facing the faults of issue 13:
 * a poison pill, misspelt topics, unkeyed input, a gap in the log, a
 * broker that never answers or freezes, a stop before the first
 * assignment, an engine that falls behind.
 *
 * Each test makes the fault happen for sure (the mock cluster's request
 * errors and delays, a topic that is not there), then checks what the
 * README's "Failure behaviour" table promises: a clear error and exit
 * code, or a counted fault and output still equal to replay. As in
 * test_kafka_run, nothing waits on time: loops end on EOF, on a log line or
 * on the process exiting, and deadlines only turn a hang into a failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "e2e_util.h"
#include "kafka_util.h"

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static char *generated_jsonl(const char *events, const char *seed)
{
    fs_e2e_run r;
    FS_E2E_EXEC(&r, NULL, 0, "generate", "--events", events, "--customers", "200", "--seed", seed,
                "--rate", "20", "--format", "json");
    assert_int_equal(r.status, 0);
    char *text = r.out;
    r.out = NULL;
    fs_e2e_run_free(&r);
    return text;
}

/* Produces every line of jsonl to t (keyed "k" when keyed, else without a
 * key), appending each to *all; returns how many. */
static size_t produce_lines(rd_kafka_t *p, const char *t, const char *jsonl, bool keyed, char **all,
                            size_t *all_len)
{
    fs_e2e_lines lines;
    fs_e2e_split_lines(jsonl, &lines);
    for (size_t i = 0; i < lines.n; i++) {
        fs_kt_produce(p, t, keyed ? "k" : NULL, keyed ? 1 : 0, lines.v[i], strlen(lines.v[i]));
        fs_kt_append(all, all_len, lines.v[i], strlen(lines.v[i]));
    }
    size_t n = lines.n;
    fs_e2e_lines_free(&lines);
    return n;
}

/* The records of topic `out` (1 partition) equal replay of the JSON lines
 * `jsonl` with the stage's config (flow records and final cohorts). */
static void assert_output_is_replay(const char *cfg, const char *jsonl, const char *out)
{
    char *yaml = fs_kt_read_text(cfg);
    char *want = fs_e2e_replay(yaml, jsonl);
    fs_kt_consumed got = fs_kt_consume_topic(out, 1, false);
    char *got_canon = fs_e2e_canonical(got.text), *want_canon = fs_e2e_canonical(want);
    assert_string_equal(got_canon, want_canon);
    free(got_canon);
    free(want_canon);
    fs_kt_consumed_free(&got);
    free(want);
    free(yaml);
}

/* ---- a poison pill: a rejected message too large to be a dead letter ---------- */

/* A producer that takes messages of up to 4 MB, as a careless upstream may. */
static rd_kafka_t *big_producer(void)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", fs_kt_bootstrap, err, sizeof err);
    rd_kafka_conf_set(conf, "message.max.bytes", "4000000", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    assert_non_null(rk);
    return rk;
}

/* One rejected message of 1.5 MB amid valid ones, with a dead-letter topic:
 * the stage cannot produce it as it is (message.max.bytes 1 MB) and, before,
 * failed on it at every start. Now it goes out cut to fit, saying so, and
 * the output equals replay. */
static void test_poison_pill(void **state)
{
    (void)state;
    fs_kt_topic("pp-in", 1);
    fs_kt_topic("pp-out", 1);
    fs_kt_topic("pp-dlq", 1);
    char *gen = generated_jsonl("1000", "7");
    char *all = calloc(1, 1);
    size_t all_len = 0, big_len = 1500000;
    char *big = malloc(big_len + 1);
    memset(big, 'x', big_len);
    big[big_len] = '\0';
    rd_kafka_t *p = big_producer();
    produce_lines(p, "pp-in", gen, true, &all, &all_len);
    fs_kt_produce(p, "pp-in", "poison", 6, big, big_len);
    fs_kt_append(&all, &all_len, big, big_len);
    produce_lines(p, "pp-in", gen, true, &all, &all_len);
    fs_kt_flush(p);

    char *cfg = fs_kt_stage_config("exclusions.yaml", "pp-in", "pp-out", "pp-dlq", "g-pp", "json");
    fs_e2e_run r;
    fs_kt_run_until_eof(cfg, "2", &r);
    assert_int_equal(fs_kt_field_u64(r.err, "dead_letters_truncated="), 1);
    fs_e2e_run_free(&r);

    fs_kt_consumed dlq = fs_kt_consume_topic("pp-dlq", 1, true);
    assert_int_equal(dlq.n, 1);
    assert_contains(dlq.headers, "reason=malformed|key=poison|truncated=true|original.size=1500000",
                    "the dead letter says it was cut");
    assert_true(dlq.len > 900000 && dlq.len < 1000000); /* cut to fit, not emptied */
    assert_output_is_replay(cfg, all, "pp-out");
    fs_kt_consumed_free(&dlq);
    free(cfg);
    free(big);
    free(all);
    free(gen);
}

/* ---- misspelt topics ----------------------------------------------------------- */

static bool topic_exists(const char *t)
{
    rd_kafka_t *c = fs_kt_client(RD_KAFKA_PRODUCER, NULL);
    const struct rd_kafka_metadata *md;
    assert_int_equal(rd_kafka_metadata(c, 1, NULL, &md, FS_KT_DEADLINE_MS),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    bool found = false;
    for (int i = 0; i < md->topic_cnt; i++)
        found |= !strcmp(md->topics[i].topic, t) && !md->topics[i].err;
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(c);
    return found;
}

/* The stage stops at start, naming the field and the topic, and makes no
 * topic of the misspelt name. Before, a misspelt output or dead-letter
 * topic was created on the fly and the records went there. */
static void expect_topic_refused(const char *in, const char *out, const char *dlq,
                                 const char *field, const char *missing)
{
    char *cfg = fs_kt_stage_config("exclusions.yaml", in, out, dlq, "g-mt", "json");
    fs_e2e_run r;
    FS_E2E_EXEC(&r, NULL, 0, "run", "--config", cfg, "--until-eof");
    assert_int_equal(r.status, 1);
    char want[256];
    snprintf(want, sizeof want, "msg=\"topic not found\" field=%s topic=%s", field, missing);
    assert_contains(r.err, want, "the error names the field and the topic");
    fs_e2e_run_free(&r);
    assert_false(topic_exists(missing));
    free(cfg);
}

static void test_misspelt_topics(void **state)
{
    (void)state;
    fs_kt_topic("mt-in", 1);
    fs_kt_topic("mt-out", 1);
    fs_kt_topic("mt-dlq", 1);
    expect_topic_refused("mt-in", "mt-oput", "mt-dlq", "output.topic", "mt-oput");
    expect_topic_refused("mt-in", "mt-out", "mt-dql", "dead_letter.topic", "mt-dql");
    /* the input's name: the stage needs its partition count first of all */
    char *cfg = fs_kt_stage_config("exclusions.yaml", "mt-in", "mt-out", NULL, "g-mt2", "json");
    char *yaml = fs_kt_read_text(cfg);
    char *typo = strstr(yaml, "topic: mt-in,");
    assert_non_null(typo);
    char *fixed = malloc(strlen(yaml) + 2);
    snprintf(fixed, strlen(yaml) + 2, "%.*stopic: mt-inn,%s", (int)(typo - yaml), yaml,
             typo + strlen("topic: mt-in,"));
    char *cfg2 = fs_e2e_write_text(".yaml", fixed);
    fs_e2e_run r;
    FS_E2E_EXEC(&r, NULL, 0, "run", "--config", cfg2, "--until-eof");
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "msg=\"topic not found\" field=input.topic topic=mt-inn",
                    "the error names the input topic");
    fs_e2e_run_free(&r);
    assert_false(topic_exists("mt-inn"));
    free(cfg2);
    free(fixed);
    free(yaml);
    free(cfg);
}

/* ---- unkeyed input ----------------------------------------------------------- */

/* SPEC §1 asks for keyed messages; unkeyed ones are processed, counted and
 * logged once. */
static void test_unkeyed_messages(void **state)
{
    (void)state;
    fs_kt_topic("uk-in", 1);
    fs_kt_topic("uk-out", 1);
    char *gen = generated_jsonl("300", "9");
    char *all = calloc(1, 1);
    size_t all_len = 0;
    rd_kafka_t *p = fs_kt_client(RD_KAFKA_PRODUCER, NULL);
    size_t unkeyed = produce_lines(p, "uk-in", gen, false, &all, &all_len);
    produce_lines(p, "uk-in", gen, true, &all, &all_len);
    fs_kt_flush(p);
    char *cfg = fs_kt_stage_config("exclusions.yaml", "uk-in", "uk-out", NULL, "g-uk", "json");
    fs_e2e_run r;
    fs_kt_run_until_eof(cfg, "2", &r);
    assert_int_equal(fs_kt_field_u64(r.err, "unkeyed="), unkeyed);
    assert_int_equal(count_of(r.err, "msg=\"input message without a key\""), 1);
    fs_e2e_run_free(&r);
    /* one partition: arrival order is file order, so replay still agrees */
    assert_output_is_replay(cfg, all, "uk-out");
    free(cfg);
    free(all);
    free(gen);
}

/* ---- a stop before the first assignment ------------------------------------- */

enum { API_SYNC_GROUP = 14 };

/* librdkafka 2.0.2's cooperative-sticky assignor aborts when its consumer
 * is destroyed after the group chose it and before the first assignment
 * (upstream issue 4312): SIGTERM then ended in exit 134. The mock holds the
 * SyncGroup answer, so the stop lands in that window every time. */
static void test_stop_before_assignment(void **state)
{
    (void)state;
    fs_kt_topic("sa-in", 2);
    fs_kt_topic("sa-out", 1);
    fs_kt_extra_kafka = "  debug: cgrp\n";
    char *cfg = fs_kt_stage_config("exclusions.yaml", "sa-in", "sa-out", NULL, "g-sa", "json");
    fs_kt_extra_kafka = "";
    assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(
                         fs_kt_mock, 1, API_SYNC_GROUP, 1, RD_KAFKA_RESP_ERR_NO_ERROR, 20000),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    fs_e2e_bg stage;
    FS_E2E_BG_START(&stage, "run", "--config", cfg, "--log-level", "debug");
    assert_true(fs_e2e_bg_await_log(&stage, "assignor run for", FS_KT_DEADLINE_MS));
    fs_e2e_run r;
    fs_e2e_bg_finish(&stage, SIGTERM, &r);
    if (getenv("FS_SHOW"))
        fprintf(stderr, "%s", r.err);
    if (r.status != 0)
        fprintf(stderr, "%s", r.err);
    assert_int_equal(r.status, 0);
    assert_contains(r.err, "msg=\"stage stopped\" exit=0", "the summary");
    fs_e2e_run_free(&r);
    free(cfg);
}

/* ---- brokers that do not answer --------------------------------------------- */

/* A stage config (path) whose kafka: section points at `servers` and
 * that waits broker_timeout for a broker. */
static char *config_with(const char *in, const char *out, const char *group, const char *servers,
                         const char *broker_timeout)
{
    char *cfg = fs_kt_stage_config("exclusions.yaml", in, out, NULL, group, "json");
    char *yaml = fs_kt_read_text(cfg);
    char *at = strstr(yaml, fs_kt_bootstrap);
    assert_non_null(at);
    size_t cap = strlen(yaml) + 256;
    char *text = malloc(cap);
    snprintf(text, cap, "broker_timeout: %s\n%.*s%s%s", broker_timeout, (int)(at - yaml), yaml,
             servers, at + strlen(fs_kt_bootstrap));
    char *path = fs_e2e_write_text(".yaml", text);
    free(text);
    free(yaml);
    free(cfg);
    return path;
}

/* Nothing listens at the bootstrap address: the stage gives up after
 * broker_timeout, saying where it looked. */
static void test_unreachable_broker(void **state)
{
    (void)state;
    fs_kt_topic("ub-in", 1);
    fs_kt_topic("ub-out", 1);
    char *cfg = config_with("ub-in", "ub-out", "g-ub", "127.0.0.1:1", "1s");
    fs_e2e_run r;
    FS_E2E_EXEC(&r, NULL, 0, "run", "--config", cfg, "--until-eof");
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "msg=\"no broker answered", "the error says why");
    assert_contains(r.err, "bootstrap.servers=127.0.0.1:1 broker_timeout_ms=1000", "and where");
    fs_e2e_run_free(&r);
    free(cfg);
}

/* An HTTP GET of path on the stage: the status code. */
static int http_status(int port, const char *path)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "curl -s -o /dev/null -w '%%{http_code}' http://127.0.0.1:%d%s", port,
             path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    int code = 0;
    assert_int_equal(fscanf(p, "%d", &code), 1);
    pclose(p);
    return code;
}

/* The broker goes away mid-run and stays away: /health says so, and after
 * broker_timeout the stage exits 1 saying why (before: up for good, /health
 * 200). at_least_once: no transaction fails first. */
static void test_broker_gone_for_good(void **state)
{
    (void)state;
    fs_kt_topic("bg-in", 2);
    fs_kt_topic("bg-out", 1);
    fs_kt_extra_kafka = fs_kt_short_session;
    char *cfg =
        config_with("bg-in", "bg-out", "g-bg", fs_kt_bootstrap, "3s\ndelivery: at_least_once");
    fs_kt_extra_kafka = "";
    fs_e2e_bg stage;
    FS_E2E_BG_START(&stage, "run", "--config", cfg);
    assert_true(fs_e2e_bg_await_log(&stage, "msg=\"partition assigned\"", FS_KT_DEADLINE_MS));
    int port = fs_kt_http_port(&stage);
    assert_int_equal(http_status(port, "/health"), 200);
    assert_int_equal(rd_kafka_mock_broker_set_down(fs_kt_mock, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    bool noticed = fs_e2e_bg_await_log(&stage, "msg=\"every broker is down\"", 30000);
    int health = noticed ? http_status(port, "/health") : 0;
    bool gave_up = fs_e2e_bg_await_log(&stage, "no broker reachable for", 30000) &&
                   fs_e2e_bg_await_log(&stage, "msg=\"stage stopped\"", 30000);
    fs_e2e_run r;
    fs_e2e_bg_finish(&stage, gave_up ? 0 : SIGKILL, &r);
    assert_int_equal(rd_kafka_mock_broker_set_up(fs_kt_mock, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    if (getenv("FS_SHOW"))
        fprintf(stderr, "%s", r.err);
    assert_true(noticed);
    assert_int_equal(health, 503);
    assert_true(gave_up);
    assert_int_equal(r.status, 1);
    fs_e2e_run_free(&r);
    free(cfg);
}

/* The broker freezes (answers nothing) while the stage stops: the first
 * SIGTERM waits for the producer, a second one stops at once with exit 1,
 * saying what was not flushed (before: no effect, up to a minute in
 * rd_kafka_flush). */
static void test_second_signal(void **state)
{
    (void)state;
    fs_kt_topic("ss-in", 2);
    fs_kt_topic("ss-out", 1);
    char *events = fs_kt_generated(4000, 300, "17", "40", "0");
    assert_int_equal(fs_kt_produce_file("ss-in", events), 4000);
    fs_kt_extra_kafka = "  debug: cgrp\n";
    char *cfg = fs_kt_stage_config("exclusions.yaml", "ss-in", "ss-out", NULL, "g-ss", "msgpack");
    fs_kt_extra_kafka = "";
    fs_e2e_bg stage;
    FS_E2E_BG_START(&stage, "run", "--config", cfg, "--log-level", "debug");
    fs_kt_await_commit("g-ss", "ss-in", 2, "ss-out");
    assert_int_equal(rd_kafka_mock_broker_set_rtt(fs_kt_mock, 1, 600000),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    kill(stage.pid, SIGTERM);
    bool stopping = fs_e2e_bg_await_log(&stage, "msg=\"signal: stopping\"", FS_KT_DEADLINE_MS);
    fs_e2e_run r;
    fs_e2e_bg_finish(&stage, SIGTERM, &r);
    assert_int_equal(rd_kafka_mock_broker_set_rtt(fs_kt_mock, 1, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
    if (getenv("FS_SHOW"))
        fprintf(stderr, "%s", r.err);
    assert_true(stopping);
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "msg=\"second signal: stopping now", "the second signal is heard");
    assert_contains(r.err, "records_unacked=", "it says what was not flushed");
    assert_contains(r.err, "facility=LEAVE", "it leaves the group (the next member need not wait)");
    fs_e2e_run_free(&r);
    free(cfg);
    free(events);
}

/* ---- a gap in the log ------------------------------------------------------- */

/* The input's log start moves past the group's committed offset before the
 * stage reads on (retention on a real Kafka; here the mock cluster's
 * per-partition cap, which drops the oldest messages): the stage logs the
 * loss, counts it, and under --until-eof exits 1 (before: 0, silently). */
static void test_gap_in_the_log(void **state)
{
    (void)state;
    fs_kt_topic("gl-in", 1);
    fs_kt_topic("gl-out", 1);
    char *gen = generated_jsonl("2000", "11");
    char *all = calloc(1, 1);
    size_t all_len = 0;
    rd_kafka_t *p = fs_kt_client(RD_KAFKA_PRODUCER, NULL);
    produce_lines(p, "gl-in", gen, true, &all, &all_len);
    fs_kt_flush(p);
    fs_kt_extra_kafka = fs_kt_short_session; /* the group is joined twice */
    char *cfg = fs_kt_stage_config("exclusions.yaml", "gl-in", "gl-out", NULL, "g-gl", "json");
    fs_kt_extra_kafka = "";
    fs_e2e_run r;
    fs_kt_run_until_eof(cfg, "2", &r);
    fs_e2e_run_free(&r);
    assert_int_equal(fs_kt_committed_total("g-gl", "gl-in", 1), 2000);

    /* more than the mock keeps of a partition (~5 MiB): its oldest go */
    p = fs_kt_client(RD_KAFKA_PRODUCER, NULL);
    char msg[1200], pad[1001];
    memset(pad, 'p', 1000);
    pad[1000] = '\0';
    for (int i = 0; i < 8000; i++) {
        int n = snprintf(msg, sizeof msg,
                         "{\"customer_id\":\"g%d\",\"ts\":1732280400000,\"event\":\"x\","
                         "\"pad\":\"%s\"}",
                         i % 1000, pad);
        fs_kt_produce(p, "gl-in", "k", 1, msg, (size_t)n);
    }
    fs_kt_flush(p);
    rd_kafka_t *c = fs_kt_client(RD_KAFKA_CONSUMER, NULL);
    int64_t lo = -1, hi = -1;
    assert_int_equal(rd_kafka_query_watermark_offsets(c, "gl-in", 0, &lo, &hi, FS_KT_DEADLINE_MS),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(c);
    assert_true(lo > 2000); /* the fault happened */

    FS_E2E_EXEC(&r, NULL, 0, "run", "--config", cfg, "--threads", "2", "--until-eof");
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "msg=\"input messages lost: deleted before they were read\"",
                    "the loss is logged");
    assert_int_equal(fs_kt_field_u64(r.err, "offsets_skipped="), (uint64_t)(lo - 2000));
    fs_e2e_run_free(&r);
    free(cfg);
    free(all);
    free(gen);
}

/* ---- backpressure ------------------------------------------------------------ */

/* A backlog read faster than computed (one worker, two batches in flight,
 * every count in 720 windows): the input pauses while the engine catches
 * up, instead of the loop waiting in fs_engine_batch_get, and the output
 * is still replay's (one partition there: its partials are over
 * FS_PARTIAL_MAX_BYTES and go out in pieces, the run's four partitions'
 * are not). 4 partitions: each must stay under the mock cluster's ~5 MiB
 * log. */
static void test_backpressure(void **state)
{
    (void)state;
    fs_kt_topic("bp-in", 4);
    fs_kt_topic("bp-out", 2);
    char *events = fs_kt_generated(100000, 5000, "23", "400", "0");
    assert_int_equal(fs_kt_produce_file("bp-in", events), 100000);
    char *cfg = fs_kt_stage_config("backpressure.yaml", "bp-in", "bp-out", NULL, "g-bp", "msgpack");
    fs_e2e_run r;
    fs_kt_run_until_eof(cfg, "1", &r);
    if (getenv("FS_SHOW"))
        fprintf(stderr, "%s", r.err);
    assert_true(fs_kt_field_u64(r.err, "input_pauses=") > 0);
    assert_int_equal(fs_kt_field_u64(r.err, "consumed="), 100000);
    fs_e2e_run_free(&r);
    fs_kt_assert_last_per_key_is_replay(cfg, events, "bp-out");
    free(cfg);
    free(events);
}

/* Partials deleted before the merge read them (the dev broker's cap, or a
 * real topic's retention) leave windows that can never be emitted: the
 * stage stops with exit 1 and says so. It used to wait for ever. The loss
 * itself depends on how far the merge falls behind, so a run that loses
 * nothing must instead equal replay. */
static void test_partials_lost(void **state)
{
    (void)state;
    fs_kt_topic("pl-in", 4);
    fs_kt_topic("pl-out", 2);
    char *events = fs_kt_generated(100000, 5000, "23", "400", "0");
    assert_int_equal(fs_kt_produce_file("pl-in", events), 100000);
    char *cfg =
        fs_kt_stage_config("partials_lost.yaml", "pl-in", "pl-out", NULL, "g-pl", "msgpack");
    fs_e2e_run r;
    FS_E2E_EXEC(&r, NULL, 0, "run", "--config", cfg, "--threads", "1", "--until-eof");
    if (getenv("FS_SHOW"))
        fprintf(stderr, "%s", r.err);
    if (r.status == 0) {
        print_message("no partial was lost this time: the output must equal replay\n");
        fs_kt_assert_last_per_key_is_replay(cfg, events, "pl-out");
    } else {
        assert_int_equal(r.status, 1);
        assert_non_null(
            strstr(r.err, "partials lost: the partials topic's partition 0 now starts"));
    }
    fs_e2e_run_free(&r);
    free(cfg);
    free(events);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poison_pill),        cmocka_unit_test(test_misspelt_topics),
        cmocka_unit_test(test_unkeyed_messages),   cmocka_unit_test(test_stop_before_assignment),
        cmocka_unit_test(test_unreachable_broker), cmocka_unit_test(test_broker_gone_for_good),
        cmocka_unit_test(test_second_signal),      cmocka_unit_test(test_gap_in_the_log),
        cmocka_unit_test(test_backpressure),       cmocka_unit_test(test_partials_lost),

    };
    if (getenv("FS_TEST_FILTER"))
        cmocka_set_test_filter(getenv("FS_TEST_FILTER"));
    if (getenv("FS_TEST_SKIP"))
        cmocka_set_skip_filter(getenv("FS_TEST_SKIP"));
    return cmocka_run_group_tests(tests, fs_kt_cluster_up, fs_kt_cluster_down);
}
