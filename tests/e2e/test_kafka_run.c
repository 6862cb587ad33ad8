/* test_kafka_run.c -- `funnelstream run` against a Kafka-protocol broker.
 *
 * The test process hosts librdkafka's mock cluster (real TCP, real wire
 * protocol) and plays the user around the binary: it produces events keyed
 * by customer id, runs the stage, reads the output and dead-letter topics
 * back and checks committed offsets. Expected results come from `replay` of
 * the same events, which the other e2e tests check against hand-computed
 * values and an independent reference implementation.
 *
 * What must be equal: the flow records and the final cohort records (the
 * upsert topic's final state); intermediate cohort upserts depend on when
 * the watermark moves, which differs between one file and N partitions.
 * Nothing here waits on time: loops end on EOF or on a process exiting, and
 * their deadlines only turn a hang into a failure.
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
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "decode.h"
#include "e2e_util.h"
#include "frame.h"
#include "kafka_util.h"

/* ---- run --until-eof equals replay ---------------------------------------- */

static void check_equals_replay(int partitions, const char *cfg_name)
{
    char in[64], out1[64], out4[64], g1[64], g4[64];
    snprintf(in, sizeof in, "in-%d-%s", partitions, cfg_name);
    snprintf(out1, sizeof out1, "out1-%d-%s", partitions, cfg_name);
    snprintf(out4, sizeof out4, "out4-%d-%s", partitions, cfg_name);
    snprintf(g1, sizeof g1, "g1-%d-%s", partitions, cfg_name);
    snprintf(g4, sizeof g4, "g4-%d-%s", partitions, cfg_name);
    fs_kt_topic(in, partitions);
    fs_kt_topic(out1, 3);
    fs_kt_topic(out4, 3);
    /* 20000 events over ~6.7 minutes of event time, up to 2 s out of order:
     * within the tolerance of every config used here */
    char *events = fs_kt_generated(20000, 1500, "42", "50", "2000");
    size_t n = fs_kt_produce_file(in, events);
    assert_int_equal(n, 20000);

    char *replay_cfg = fs_kt_stage_config(cfg_name, in, out1, NULL, g1, "msgpack");
    char *replay_yaml = fs_kt_read_text(replay_cfg);
    char *want = fs_e2e_replay_file_at(replay_yaml, events, 1, __FILE__, __LINE__);
    free(replay_yaml);
    char *want_canon = fs_e2e_canonical(want);
    assert_true(fs_e2e_count_records(want, "flow", NULL) > 5);

    const char *threads[2] = {"1", "4"};
    const char *outs[2] = {out1, out4}, *groups[2] = {g1, g4};
    for (int k = 0; k < 2; k++) {
        char *cfg = fs_kt_stage_config(cfg_name, in, outs[k], NULL, groups[k], "msgpack");
        fs_e2e_run r;
        fs_kt_run_until_eof(cfg, threads[k], &r);
        fs_e2e_run_free(&r);
        fs_kt_consumed got = fs_kt_consume_topic(outs[k], 3, false);
        char *got_canon = fs_e2e_canonical(got.text);
        if (strcmp(got_canon, want_canon) != 0)
            fprintf(stderr, "partitions=%d threads=%s config=%s: run differs from replay\n",
                    partitions, threads[k], cfg_name);
        assert_string_equal(got_canon, want_canon);
        /* every consumed offset committed: 20000 messages over the partitions */
        int64_t offs[16];
        fs_kt_committed(groups[k], in, partitions, offs);
        int64_t total = 0;
        for (int p = 0; p < partitions; p++)
            total += offs[p] < 0 ? 0 : offs[p];
        assert_int_equal(total, 20000);
        free(got_canon);
        fs_kt_consumed_free(&got);
        free(cfg);
    }
    free(want_canon);
    free(want);
    free(replay_cfg);
    free(events);
}

static void test_one_partition(void **state)
{
    (void)state;
    check_equals_replay(1, "exclusions.yaml");
}

static void test_three_partitions(void **state)
{
    (void)state;
    check_equals_replay(3, "hopping.yaml");
}

static void test_eight_partitions(void **state)
{
    (void)state;
    check_equals_replay(8, "four_funnels.yaml");
}

/* Unordered, optional stages, campaigns and the "(other)" cut: the cut is
 * made on the counts merged from every partition's partials. */
static void test_issue14_features_five_partitions(void **state)
{
    (void)state;
    check_equals_replay(5, "features.yaml");
}

/* ---- dead letters ------------------------------------------------------------ */

static const struct {
    const char *value, *reason;
} bad_messages[] = {
    {"{\"customer_id\":\"a\",\"ts\":1.5,\"event\":\"ad_click\"}", "bad_ts"},
    {"not json at all", "not_a_map"},
    {"{\"customer_id\" \"a\"}", "malformed"},
    {"{\"ts\":1732280400000,\"event\":\"ad_click\"}", "missing_customer_id"},
    {"[1,2,3]", "not_a_map"},
    {"{\"customer_id\":\"a\",\"ts\":1732280400000,\"event\":\"x\"} tail", "trailing_data"},
};
#define N_BAD (sizeof bad_messages / sizeof *bad_messages)

static char *generated_jsonl(const char *events, const char *seed)
{
    fs_e2e_run r;
    FS_E2E_EXEC(&r, NULL, 0, "generate", "--events", events, "--customers", "300", "--seed", seed,
                "--rate", "20", "--format", "json");
    assert_int_equal(r.status, 0);
    char *text = r.out;
    r.out = NULL;
    fs_e2e_run_free(&r);
    return text;
}

/* One partition, so arrival order is file order and even rejected_events
 * (counted in the window open when they arrive) must equal replay's. */
static void test_dead_letters(void **state)
{
    (void)state;
    fs_kt_topic("dl-in", 1);
    fs_kt_topic("dl-out", 1);
    fs_kt_topic("dl-dlq", 2);
    char *gen = generated_jsonl("3000", "5");
    fs_e2e_lines lines;
    fs_e2e_split_lines(gen, &lines);
    rd_kafka_t *p = fs_kt_client(RD_KAFKA_PRODUCER, NULL);
    char *all = calloc(1, 1);
    size_t all_len = 0, bad = 0;
    for (size_t i = 0; i < lines.n; i++) {
        if (i % 500 == 100 && bad < N_BAD) {
            char key[16];
            int kl = snprintf(key, sizeof key, "bad%zu", bad);
            fs_kt_produce(p, "dl-in", key, (size_t)kl, bad_messages[bad].value,
                          strlen(bad_messages[bad].value));
            fs_kt_append(&all, &all_len, bad_messages[bad].value, strlen(bad_messages[bad].value));
            bad++;
        }
        fs_kt_produce(p, "dl-in", "k", 1, lines.v[i], strlen(lines.v[i]));
        fs_kt_append(&all, &all_len, lines.v[i], strlen(lines.v[i]));
    }
    fs_kt_flush(p);
    assert_int_equal(bad, N_BAD);

    char *cfg = fs_kt_stage_config("exclusions.yaml", "dl-in", "dl-out", "dl-dlq", "g-dl", "json");
    char *yaml = fs_kt_read_text(cfg);
    char *want = fs_e2e_replay(yaml, all);
    fs_e2e_run r;
    fs_kt_run_until_eof(cfg, "2", &r);
    assert_contains(r.err, "rejected=6", "stage summary");
    fs_e2e_run_free(&r);

    fs_kt_consumed dlq = fs_kt_consume_topic("dl-dlq", 2, true);
    assert_int_equal(dlq.n, N_BAD);
    for (size_t i = 0; i < N_BAD; i++) {
        char line[512];
        snprintf(line, sizeof line, "reason=%s|key=bad%zu\n", bad_messages[i].reason, i);
        assert_contains(dlq.headers, line, "dead-letter reason and original key");
        snprintf(line, sizeof line, "%s\n", bad_messages[i].value);
        assert_contains(dlq.text, line, "dead-letter original value");
    }
    fs_kt_consumed got = fs_kt_consume_topic("dl-out", 1, false);
    char *got_canon = fs_e2e_canonical(got.text), *want_canon = fs_e2e_canonical(want);
    assert_string_equal(got_canon, want_canon);
    assert_contains(want, "\"rejected_events\":1", "replay counts the rejections");

    free(got_canon);
    free(want_canon);
    fs_kt_consumed_free(&got);
    fs_kt_consumed_free(&dlq);
    free(want);
    free(yaml);
    free(cfg);
    free(all);
    fs_e2e_lines_free(&lines);
    free(gen);
}

/* ---- SIGTERM mid-stream ---------------------------------------------------- */
static int lookup_journeys(int port)
{
    char cmd[16384];
    int n = snprintf(cmd, sizeof cmd, "curl -sf");
    for (int i = 0; i < 100; i++)
        n += snprintf(
            cmd + n, sizeof cmd - (size_t)n,
            " http://127.0.0.1:%d/api/journeys/c%d http://127.0.0.1:%d/api/journeys/acct-%d", port,
            i, port, i);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char buf[4096];
    int journeys = 0, docs = 0;
    while (fgets(buf, sizeof buf, p)) {
        docs += strstr(buf, "{\"customer_id\":") != NULL;
        for (const char *f = buf; (f = strstr(f, "{\"funnel\":")); f++)
            journeys++;
    }
    assert_int_equal(pclose(p), 0);
    assert_int_equal(docs, 200);
    return journeys;
}

/* Stopping must flush every record produced, write the state of what was
 * consumed (open windows included, not emitted), commit its offsets in the
 * same transaction, and exit 0. */
static void test_sigterm_mid_stream(void **state)
{
    (void)state;
    fs_kt_topic("st-in", 3);
    fs_kt_topic("st-out", 2);
    char *events = fs_kt_generated(200000, 5000, "9", "500", "0");
    fs_kt_produce_file("st-in", events);
    char *cfg = fs_kt_stage_config("exclusions.yaml", "st-in", "st-out", NULL, "g-st", "msgpack");
    fs_e2e_bg stage;
    FS_E2E_BG_START(&stage, "run", "--config", cfg, "--threads", "2");
    fs_kt_await_messages("st-out", 2, 5);
    assert_true(lookup_journeys(fs_kt_http_port(&stage)) > 0);
    fs_kt_await_commit("g-st", "st-in", 3, "st-out");
    fs_e2e_run r;
    fs_e2e_bg_finish(&stage, SIGTERM, &r);
    if (r.status != 0)
        fprintf(stderr, "%s", r.err);
    assert_int_equal(r.status, 0);
    const char *log = r.err;

    uint64_t acked = fs_kt_field_u64(log, "records_acked=");
    uint64_t flows = fs_kt_field_u64(log, "flow_records="),
             cohorts = fs_kt_field_u64(log, "cohort_records=");
    uint64_t states = fs_kt_field_u64(log, "state_records="),
             partials = fs_kt_field_u64(log, "partials=");
    assert_true(states > 0 && partials > 0);
    assert_int_equal(acked, flows + cohorts + states + partials); /* the producer was flushed */
    fs_kt_consumed out = fs_kt_consume_topic("st-out", 2, false);
    assert_int_equal(out.n, flows + cohorts);

    /* The last checkpoint holds the state of everything consumed, open
     * windows included: every consumed offset is committed. (Offsets, not
     * a count: the mock cluster keeps ~5 MiB per partition, so the stage may
     * start past offset 0.) */
    int64_t total = fs_kt_committed_total("g-st", "st-in", 3);
    assert_true(total >= (int64_t)fs_kt_field_u64(log, "consumed="));
    assert_true(total <= 200000);

    fs_kt_consumed_free(&out);
    fs_e2e_run_free(&r);
    free(cfg);
    free(events);
}

/* ---- kill -9 and restart: the state topic -------------------------------- */

/* Where a kill lands: each is a moment the stage's log or its output makes
 * visible, plus a random delay that moves it on into whatever comes next
 * (consuming, a transaction, the next checkpoint). The delay picks the
 * moment; correctness never depends on it. */
typedef enum kill_point {
    KILL_RESTORING,   /* reading the state topic */
    KILL_ASSIGNED,    /* right after a partition's assignment and restore */
    KILL_MID_STREAM,  /* records flowing out: mid-batch, mid-step */
    KILL_AFTER_COMMIT /* a checkpoint committed: the next transaction is open */
} kill_point;

static const char *const kill_point_names[] = {"restoring", "assigned", "mid-stream",
                                               "after-commit"};

/* Waits for the kill point's moment in the running stage; false when the
 * stage got there too fast to see (it then dies a little later). */
static bool await_kill_point(const fs_e2e_bg *stage, kill_point k, const char *group,
                             const char *in, const char *out, int64_t committed_before)
{
    switch (k) {
    case KILL_RESTORING:
        return fs_e2e_bg_await_log(stage, "msg=\"partition state restoring\"", FS_KT_DEADLINE_MS);
    case KILL_ASSIGNED:
        return fs_e2e_bg_await_log(stage, "msg=\"partition assigned\"", FS_KT_DEADLINE_MS);
    case KILL_MID_STREAM:
        if (!fs_e2e_bg_await_log(stage, "msg=\"partition assigned\"", FS_KT_DEADLINE_MS))
            return false;
        fs_kt_await_messages(out, 2, 1);
        return true;
    case KILL_AFTER_COMMIT:
        for (int i = 0; i < FS_KT_DEADLINE_MS / 5; i++) {
            if (fs_kt_committed_total(group, in, 4) > committed_before)
                return true;
            nanosleep(&(struct timespec){0, 5000000}, NULL);
        }
        return false;
    }
    return false;
}

/* SPEC §5's guarantee: keyed traffic on 4 partitions, two funnels whose
 * conversion windows span the whole input (journeys are alive at every
 * kill); the stage is killed (-9) `kills` times at the kill points in turn,
 * each a random few milliseconds on, and restarted with a varying thread
 * count; more input arrives between kills; a last run reads to the end.
 * Every run restores the state of the last committed (exactly_once) or
 * acknowledged (at_least_once) checkpoint and reads on from its offsets, so
 * the last record per key equals replay of the same events. FS_KILLS
 * overrides the count (the sanitizer runs use fewer). */
static void kill_and_restart(const char *delivery, const char *cfg_name, const char *in,
                             const char *out, const char *group, int kills)
{
    if (getenv("FS_KILLS"))
        kills = atoi(getenv("FS_KILLS"));
    unsigned seed0 = getenv("FS_KILL_SEED") ? (unsigned)atoi(getenv("FS_KILL_SEED")) : 2026u;
    unsigned seed = seed0;
    fs_kt_topic(in, 4);
    fs_kt_topic(out, 2);
    enum { EVENTS = 24000 };
    char *events = fs_kt_generated(EVENTS, 1500, "77", "40", "1000");
    fs_kt_extra_kafka = fs_kt_short_session;
    char *cfg = fs_kt_stage_config(cfg_name, in, out, NULL, group, "msgpack");
    fs_kt_extra_kafka = "";
    FILE *f = fopen(cfg, "a");
    fprintf(f, "delivery: %s\n", delivery);
    fclose(f);
    size_t chunk = EVENTS / (size_t)(kills + 1), produced = 0;
    for (int round = 0; round < kills; round++) {
        produced += fs_kt_produce_range(in, events, produced, produced + chunk);
        kill_point k = (kill_point)(round % 4);
        int delay_ms = rand_r(&seed) % (k == KILL_RESTORING ? 5 : 200);
        int64_t committed_before = fs_kt_committed_total(group, in, 4);
        static const char *const threads[] = {"1", "2", "3"};
        fs_e2e_bg stage;
        FS_E2E_BG_START(&stage, "run", "--config", cfg, "--threads", threads[round % 3]);
        bool seen = await_kill_point(&stage, k, group, in, out, committed_before);
        nanosleep(&(struct timespec){delay_ms / 1000, (delay_ms % 1000) * 1000000L}, NULL);
        fs_e2e_run r;
        fs_e2e_bg_finish(&stage, SIGKILL, &r);
        if (getenv("FS_KILL_LOGS")) { /* each killed run's log, to look into a failure */
            char path[1024];
            snprintf(path, sizeof path, "%s/kill-%s-%d.log", getenv("FS_KILL_LOGS"), group, round);
            FILE *lf = fopen(path, "w");
            if (lf) {
                fputs(r.err, lf);
                fclose(lf);
            }
        }
        fprintf(stderr, "kill %d (FS_KILL_SEED=%u): %s%s +%d ms, exit %d\n", round, seed0,
                kill_point_names[k], seen ? "" : " (not seen)", delay_ms, r.status);
        if (r.status != 128 + SIGKILL) /* it was running: nothing failed */
            fprintf(stderr, "%s", r.err);
        assert_int_equal(r.status, 128 + SIGKILL);
        fs_e2e_run_free(&r);
    }
    produced += fs_kt_produce_range(in, events, produced, SIZE_MAX);
    assert_int_equal(produced, EVENTS);
    fs_e2e_run r;
    fs_kt_run_until_eof(cfg, "3", &r);
    assert_non_null(strstr(r.err, "msg=\"partition state restored\""));
    fs_e2e_run_free(&r);

    fs_kt_assert_last_per_key_is_replay(cfg, events, out);
    free(cfg);
    free(events);
}

/* Each flow record's key (funnel, window_start) at most once in out. */
static void assert_no_flow_twice(const char *out)
{
    fs_e2e_lines l;
    fs_e2e_split_lines(out, &l);
    char **keys = calloc(l.n + 1, sizeof(*keys));
    size_t n = 0;
    for (size_t i = 0; i < l.n; i++) {
        char *kind = fs_e2e_field(l.v[i], "kind");
        if (strstr(kind, "flow")) { /* the field as written: "flow", quoted */
            char *funnel = fs_e2e_field(l.v[i], "funnel");
            char *start = fs_e2e_field(l.v[i], "window_start");
            size_t len = strlen(funnel) + strlen(start) + 2;
            keys[n] = malloc(len);
            snprintf(keys[n], len, "%s/%s", funnel, start);
            for (size_t k = 0; k < n; k++)
                if (!strcmp(keys[k], keys[n]))
                    fail_msg("flow record %s twice", keys[n]);
            n++;
            free(funnel);
            free(start);
        }
        free(kind);
    }
    assert_true(n > 0);
    for (size_t k = 0; k < n; k++)
        free(keys[k]);
    free(keys);
    fs_e2e_lines_free(&l);
}

/* SIGTERM mid-stream, more input, a restart to the end (SPEC §5): under
 * exactly_once no flow record comes out twice (the report that opened
 * issue 11: the last windows before a stop came out again, with other
 * counts), and under either delivery the last record per key equals
 * replay (none lost). */
static void sigterm_and_restart(const char *delivery, const char *in, const char *out,
                                const char *group)
{
    fs_kt_topic(in, 4);
    fs_kt_topic(out, 2);
    char *events = fs_kt_generated(16000, 1000, "5", "40", "1000");
    fs_kt_extra_kafka = fs_kt_short_session;
    char *cfg = fs_kt_stage_config("hopping.yaml", in, out, NULL, group, "msgpack");
    fs_kt_extra_kafka = "";
    FILE *f = fopen(cfg, "a");
    fprintf(f, "delivery: %s\n", delivery);
    fclose(f);
    assert_int_equal(fs_kt_produce_range(in, events, 0, 8000), 8000);
    fs_e2e_bg stage;
    FS_E2E_BG_START(&stage, "run", "--config", cfg, "--threads", "2");
    fs_kt_await_commit(group, in, 4, out);
    fs_e2e_run r;
    fs_e2e_bg_finish(&stage, SIGTERM, &r);
    assert_int_equal(r.status, 0);
    fs_e2e_run_free(&r);
    assert_int_equal(fs_kt_produce_range(in, events, 8000, SIZE_MAX), 8000);
    fs_kt_run_until_eof(cfg, "3", &r);
    fs_e2e_run_free(&r);
    fs_kt_consumed got = fs_kt_consume_topic(out, 2, false);
    if (!strcmp(delivery, "exactly_once"))
        assert_no_flow_twice(got.text);
    fs_kt_consumed_free(&got);
    fs_kt_assert_last_per_key_is_replay(cfg, events, out);
    free(cfg);
    free(events);
}

static void test_sigterm_and_restart(void **state)
{
    (void)state;
    sigterm_and_restart("exactly_once", "sr-in", "sr-out", "g-sr");
}

static void test_sigterm_and_restart_at_least_once(void **state)
{
    (void)state;
    sigterm_and_restart("at_least_once", "sra-in", "sra-out", "g-sra");
}

/* Injected broker errors on the transactional path (Kafka API keys: the
 * the mock's header does not name them): retriable ones the client rides out,
 * others make a transaction fail, and the stage exits 1 saying so; run
 * again, it goes on from the last committed checkpoint. Either way the
 * final output (last record per key) equals replay. */
enum {
    API_PRODUCE = 0,
    API_ADD_PARTITIONS_TO_TXN = 24,
    API_END_TXN = 26,
    API_TXN_OFFSET_COMMIT = 28
};

static void test_injected_faults(void **state)
{
    (void)state;
    fs_kt_topic("fi-in", 3);
    fs_kt_topic("fi-out", 2);
    char *events = fs_kt_generated(12000, 800, "13", "40", "1000");
    assert_int_equal(fs_kt_produce_file("fi-in", events), 12000);
    fs_kt_extra_kafka = "  session.timeout.ms: \"6000\"\n  heartbeat.interval.ms: \"500\"\n";
    char *cfg = fs_kt_stage_config("exclusions.yaml", "fi-in", "fi-out", NULL, "g-fi", "msgpack");
    fs_kt_extra_kafka = "";
    rd_kafka_mock_push_request_errors(
        fs_kt_mock, API_PRODUCE, 3, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
    rd_kafka_mock_push_request_errors(fs_kt_mock, API_ADD_PARTITIONS_TO_TXN, 2,
                                      RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                                      RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS);
    rd_kafka_mock_push_request_errors(fs_kt_mock, API_TXN_OFFSET_COMMIT, 2,
                                      RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
                                      RD_KAFKA_RESP_ERR_NOT_COORDINATOR);
    rd_kafka_mock_push_request_errors(fs_kt_mock, API_END_TXN, 2, RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
                                      RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE);
    int status = 1;
    for (int run = 0; run < 4 && status != 0; run++) {
        fs_e2e_run r;
        FS_E2E_EXEC(&r, NULL, 0, "run", "--config", cfg, "--threads", "2", "--until-eof");
        status = r.status;
        if (status != 0) /* a failed transaction says what happened */
            assert_non_null(strstr(r.err, "transaction"));
        fs_e2e_run_free(&r);
    }
    assert_int_equal(status, 0);
    fs_kt_assert_last_per_key_is_replay(cfg, events, "fi-out");
    free(cfg);
    free(events);
}

/* The broker goes away for a while mid-stream (connections dropped, new
 * ones refused) and comes back: the stage waits it out -- or, if a
 * transaction cannot finish, exits 1 saying so and a rerun goes on from
 * the last committed checkpoint. More input comes after; the final output
 * equals replay. */
static void test_broker_down(void **state)
{
    (void)state;
    fs_kt_topic("bd-in", 3);
    fs_kt_topic("bd-out", 2);
    char *events = fs_kt_generated(12000, 800, "31", "40", "1000");
    fs_kt_extra_kafka = fs_kt_short_session;
    char *cfg = fs_kt_stage_config("exclusions.yaml", "bd-in", "bd-out", NULL, "g-bd", "msgpack");
    fs_kt_extra_kafka = "";
    assert_int_equal(fs_kt_produce_range("bd-in", events, 0, 6000), 6000);
    fs_e2e_bg stage;
    FS_E2E_BG_START(&stage, "run", "--config", cfg, "--threads", "2");
    fs_kt_await_commit("g-bd", "bd-in", 3, "bd-out");

    assert_int_equal(rd_kafka_mock_broker_set_down(fs_kt_mock, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    bool noticed = fs_e2e_bg_await_log(&stage, "Disconnected", FS_KT_DEADLINE_MS);
    nanosleep(&(struct timespec){2, 0}, NULL); /* how long it stays down: the fault */
    assert_int_equal(rd_kafka_mock_broker_set_up(fs_kt_mock, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_true(noticed);

    assert_int_equal(fs_kt_produce_range("bd-in", events, 6000, SIZE_MAX), 6000);
    fs_e2e_run r;
    fs_e2e_bg_finish(&stage, SIGTERM, &r);
    if (r.status != 0) /* it stopped itself: it says why */
        assert_non_null(strstr(r.err, "level=error msg=\"stage failed"));
    fs_e2e_run_free(&r);
    fs_kt_run_until_eof(cfg, "2", &r);
    fs_e2e_run_free(&r);
    fs_kt_assert_last_per_key_is_replay(cfg, events, "bd-out");
    free(cfg);
    free(events);
}

static void test_kill_and_restart(void **state)
{
    (void)state;
    kill_and_restart("exactly_once", "hopping.yaml", "kr-in", "kr-out", "g-kr", 10);
}

/* The journeys' extension and the flows' stage times and campaigns come
 * back from the state topic after each kill. */
static void test_kill_and_restart_issue14_features(void **state)
{
    (void)state;
    kill_and_restart("exactly_once", "features.yaml", "kf-in", "kf-out", "g-kf", 4);
}

static void test_kill_and_restart_at_least_once(void **state)
{
    (void)state;
    kill_and_restart("at_least_once", "exclusions.yaml", "kra-in", "kra-out", "g-kra", 6);
}

/* ---- many instances (SPEC §5) ------------------------------------------------------ */

static void start_member(fs_e2e_bg *bg, const char *cfg, const char *threads, bool until_eof)
{
    const char *level = getenv("FS_KILL_LOGS") ? "debug" : "info";
    if (until_eof)
        FS_E2E_BG_START(bg, "run", "--config", cfg, "--threads", threads, "--until-eof",
                        "--log-level", level);
    else
        FS_E2E_BG_START(bg, "run", "--config", cfg, "--threads", threads, "--log-level", level);
    assert_true(fs_e2e_bg_await_log(bg, "msg=\"partition assigned\"", FS_KT_DEADLINE_MS));
}

static void stop_member(fs_e2e_bg *bg, int sig, int want_status)
{
    static int stopped;
    fs_e2e_run r;
    fs_e2e_bg_finish(bg, sig, &r);
    if (getenv("FS_KILL_LOGS")) {
        char path[1024];
        snprintf(path, sizeof path, "%s/member-%d.log", getenv("FS_KILL_LOGS"), stopped++);
        FILE *lf = fopen(path, "w");
        if (lf) {
            fputs(r.err, lf);
            fclose(lf);
        }
    }
    if (r.status != want_status)
        fprintf(stderr, "%s", r.err);
    assert_int_equal(r.status, want_status);
    fs_e2e_run_free(&r);
}

/* A group of three on 12 partitions, with churn mid-stream: A starts
 * alone, B joins late, then C; A leaves (SIGTERM), B is killed (-9) and
 * started again; more input between the changes; two members read to the
 * end together. Each window's flow record comes out once (exactly_once,
 * read committed) with every partition's counts, and the last record per
 * key equals one uninterrupted instance's and replay's. */
static void test_group_churn(void **state)
{
    (void)state;
    fs_kt_topic("gc-in", 12);
    fs_kt_topic("gc-out", 2);
    fs_kt_topic("gc-out1", 2);
    char *events = fs_kt_generated(24000, 1500, "91", "40", "1000");
    fs_kt_extra_kafka = fs_kt_short_session;
    char *cfg = fs_kt_stage_config("hopping.yaml", "gc-in", "gc-out", NULL, "g-gc", "msgpack");
    char *solo = fs_kt_stage_config("hopping.yaml", "gc-in", "gc-out1", NULL, "g-gc1", "msgpack");
    fs_kt_extra_kafka = "";
    fs_e2e_bg a, b, c, d;
    assert_int_equal(fs_kt_produce_range("gc-in", events, 0, 6000), 6000);
    start_member(&a, cfg, "2", false);
    fs_kt_await_messages("gc-out", 2, 1);
    assert_int_equal(fs_kt_produce_range("gc-in", events, 6000, 12000), 6000);
    start_member(&b, cfg, "1", false); /* joins late */
    start_member(&c, cfg, "3", false);
    stop_member(&a, SIGTERM, 0); /* leaves */
    assert_int_equal(fs_kt_produce_range("gc-in", events, 12000, 18000), 6000);
    stop_member(&b, SIGKILL, 128 + SIGKILL);
    start_member(&b, cfg, "2", false); /* back */
    assert_int_equal(fs_kt_produce_range("gc-in", events, 18000, SIZE_MAX), 6000);
    stop_member(&b, SIGTERM, 0);
    stop_member(&c, SIGTERM, 0);
    start_member(&c, cfg, "2", true);
    start_member(&d, cfg, "1", true);
    stop_member(&c, 0, 0);
    stop_member(&d, 0, 0);

    fs_kt_consumed got = fs_kt_consume_topic("gc-out", 2, false);
    if (getenv("FS_DUMP")) {
        FILE *df = fopen(getenv("FS_DUMP"), "w");
        fputs(got.text, df);
        fclose(df);
    }
    fs_kt_consumed_free(&got);
    fs_kt_assert_last_per_key_is_replay(cfg, events, "gc-out");
    fs_e2e_run r;
    fs_kt_run_until_eof(solo, "2", &r);
    fs_e2e_run_free(&r);
    fs_kt_consumed one = fs_kt_consume_topic("gc-out1", 2, false),
                   many = fs_kt_consume_topic("gc-out", 2, false);
    char *l1 = fs_kt_last_per_key(one.text), *ln = fs_kt_last_per_key(many.text);
    char *c1 = fs_e2e_canonical(l1), *cn = fs_e2e_canonical(ln);
    assert_string_equal(cn, c1);
    free(c1);
    free(cn);
    free(l1);
    free(ln);
    fs_kt_consumed_free(&one);
    fs_kt_consumed_free(&many);
    free(solo);
    free(cfg);
    free(events);
}

/* A group of three on a 1-partition input: with the partials partition, two
 * partitions for three members, so one holds none. It waits without
 * holding anything back and stops cleanly; the others' output, finished by
 * a last --until-eof run, equals replay. */
/* How many partitions the log says a member held before it was told to stop. */
static int held_before_stop(const char *log)
{
    static const char assigned[] = "msg=\"partition assigned\"",
                      revoked[] = "msg=\"partition revoked\"";
    const char *end = strstr(log, "msg=\"signal: stopping\"");
    int held = 0;
    for (const char *p = log; (p = strstr(p, "msg=\"partition ")) && (!end || p < end); p++)
        held += !strncmp(p, assigned, sizeof assigned - 1) ? 1
                : !strncmp(p, revoked, sizeof revoked - 1) ? -1
                                                           : 0;
    return held;
}

static void test_member_without_partitions(void **state)
{
    (void)state;
    fs_kt_topic("np-in", 1);
    fs_kt_topic("np-out", 2);
    char *events = fs_kt_generated(4000, 400, "23", "40", "1000");
    assert_int_equal(fs_kt_produce_file("np-in", events), 4000);
    fs_kt_extra_kafka = fs_kt_short_session;
    char *cfg = fs_kt_stage_config("exclusions.yaml", "np-in", "np-out", NULL, "g-np", "msgpack");
    fs_kt_extra_kafka = "";
    fs_e2e_bg m[3];
    for (int i = 0; i < 3; i++) {
        FS_E2E_BG_START(&m[i], "run", "--config", cfg, "--threads", "1");
        /* its first assignment, empty or not: it is in the group */
        assert_true(
            fs_e2e_bg_await_log(&m[i], "msg=\"rebalance\" event=assign", FS_KT_DEADLINE_MS));
    }
    fs_kt_await_messages("np-out", 2, 1);
    fs_e2e_run r[3];
    int empty = 0;
    for (int i = 2; i >= 0; i--) {
        fs_e2e_bg_finish(&m[i], SIGTERM, &r[i]);
        if (r[i].status != 0)
            fprintf(stderr, "%s", r[i].err);
        assert_int_equal(r[i].status, 0);
        empty += held_before_stop(r[i].err) == 0;
        fs_e2e_run_free(&r[i]);
    }
    assert_true(empty >= 1); /* two partitions, three members (one may be moving) */
    fs_e2e_run last;
    fs_kt_run_until_eof(cfg, "2", &last);
    fs_e2e_run_free(&last);
    fs_kt_assert_last_per_key_is_replay(cfg, events, "np-out");
    free(cfg);
    free(events);
}

/* Events of customer c at second `sec` (of 2024-11-22 13:00 UTC) to one
 * partition, JSON. */
static void produce_at(const char *t, int32_t partition, const char *c, int sec, const char *ev)
{
    rd_kafka_t *p = fs_kt_client(RD_KAFKA_PRODUCER, NULL);
    char json[160];
    int n = snprintf(json, sizeof json, "{\"customer_id\":\"%s\",\"ts\":%lld,\"event\":\"%s\"}", c,
                     1732280400000LL + sec * 1000LL, ev);
    assert_int_equal(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(t), RD_KAFKA_V_PARTITION(partition),
                                       RD_KAFKA_V_KEY(c, strlen(c)),
                                       RD_KAFKA_V_VALUE(json, (size_t)n),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    fs_kt_flush(p);
}

/* The flow records of window `start` (seconds) in out, and the last. */
static int flow_records_of(const char *out, int start, char **last)
{
    fs_kt_consumed got = fs_kt_consume_topic(out, 2, false);
    char needle[64];
    snprintf(needle, sizeof needle, "\"window_start\":%lld,", 1732280400000LL + start * 1000LL);
    int n = 0;
    *last = NULL;
    for (char *line = strtok(got.text, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, "\"kind\":\"flow\"") && strstr(line, needle)) {
            n++;
            free(*last);
            *last = strdup(line);
        }
    fs_kt_consumed_free(&got);
    return n;
}

/* SPEC §3: a partition idle for idle_timeout holds nothing back; when it
 * comes back with an event for a window whose record is out, the event is
 * late, counted once, in the earliest window not emitted, and the record
 * is not emitted again. Partition 1 counts in [0, 1m) before it goes idle,
 * and those counts are in the window's record. */
static void test_idle_partition_comes_back(void **state)
{
    (void)state;
    fs_kt_topic("id-in", 2);
    fs_kt_topic("id-out", 2);
    char *cfg = fs_kt_stage_config("idle_1s.yaml", "id-in", "id-out", NULL, "g-id", "json");
    produce_at("id-in", 0, "a", 10, "view");
    produce_at("id-in", 1, "b", 5, "view");
    fs_e2e_bg stage;
    FS_E2E_BG_START(&stage, "run", "--config", cfg, "--threads", "2");
    assert_true(fs_e2e_bg_await_log(&stage, "msg=\"partition assigned\"", FS_KT_DEADLINE_MS));
    produce_at("id-in", 0, "a", 200, "buy"); /* partition 0 at 200 s; 1 holds [0, 1m) */
    char *rec = NULL;
    for (int i = 0; i < FS_KT_DEADLINE_MS / 100 && flow_records_of("id-out", 0, &rec) == 0; i++)
        nanosleep(&(struct timespec){0, 100000000}, NULL); /* polls the output, bounded */
    assert_non_null(rec);                                  /* emitted once partition 1 went idle */
    assert_non_null(strstr(rec, "\"entered\":[2,0]"));     /* a@10 and b@5 */
    free(rec);
    produce_at("id-in", 1, "c", 30, "view"); /* late: [0, 1m) is out */
    produce_at("id-in", 1, "c", 400, "buy");
    produce_at("id-in", 0, "d", 400, "view");
    /* Where c@30's late count lands depends on how far its partition's
     * lane was closed when it came (200 s, or 400 s if d@400 came first):
     * both partitions move to 1000 s, so that [6m, 7m) and all before close. */
    produce_at("id-in", 0, "e", 1000, "view");
    produce_at("id-in", 1, "f", 1000, "view");
    for (int i = 0; i < FS_KT_DEADLINE_MS / 100 && flow_records_of("id-out", 360, &rec) == 0; i++)
        nanosleep(&(struct timespec){0, 100000000}, NULL);
    fs_e2e_run r;
    fs_e2e_bg_finish(&stage, SIGTERM, &r);
    assert_int_equal(r.status, 0);
    fs_e2e_run_free(&r);
    assert_non_null(rec);
    free(rec);
    /* c@30 is late once, in a window not emitted yet */
    fs_kt_consumed got = fs_kt_consume_topic("id-out", 2, false);
    long late = 0;
    for (char *line = strtok(got.text, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, "\"kind\":\"flow\"")) {
            char *v = fs_e2e_field(line, "late_events");
            late += atol(v);
            free(v);
        }
    fs_kt_consumed_free(&got);
    assert_int_equal(late, 1);
    assert_int_equal(flow_records_of("id-out", 0, &rec), 1); /* not emitted again */
    assert_non_null(strstr(rec, "\"entered\":[2,0]"));
    assert_non_null(strstr(rec, "\"late_events\":0,"));
    free(rec);
    free(cfg);
}

/* ---- kcat interop -------------------------------------------------------------- */

static void test_kcat_interop(void **state)
{
    (void)state;
    fs_kt_topic("kc-in", 3);
    fs_kt_topic("kc-out", 1);
    char *gen = generated_jsonl("2000", "13");
    /* kcat reads "key<TAB>value" lines; the key is the customer id */
    fs_e2e_lines lines;
    fs_e2e_split_lines(gen, &lines);
    char *keyed = calloc(1, 1);
    size_t keyed_len = 0;
    for (size_t i = 0; i < lines.n; i++) {
        char *id = fs_e2e_field(lines.v[i], "customer_id"); /* with its quotes */
        assert_non_null(id);
        char *line = malloc(strlen(id) + strlen(lines.v[i]) + 2);
        sprintf(line, "%.*s\t%s", (int)strlen(id) - 2, id + 1, lines.v[i]);
        fs_kt_append(&keyed, &keyed_len, line, strlen(line));
        free(line);
        free(id);
    }
    char *keyed_path = fs_e2e_write_text(".txt", keyed);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "kcat -P -b '%s' -t kc-in -K '\t' -l '%s'", fs_kt_bootstrap,
             keyed_path);
    assert_int_equal(system(cmd), 0);

    char *cfg = fs_kt_stage_config("hopping.yaml", "kc-in", "kc-out", NULL, "g-kc", "json");
    char *yaml = fs_kt_read_text(cfg);
    char *want = fs_e2e_replay(yaml, gen);
    fs_e2e_run r;
    fs_kt_run_until_eof(cfg, "2", &r);
    fs_e2e_run_free(&r);

    char *out_path = fs_e2e_write_text(".txt", "");
    snprintf(cmd, sizeof cmd, "kcat -C -b '%s' -t kc-out -o beginning -e -q -f '%%k %%s\\n' > '%s'",
             fs_kt_bootstrap, out_path);
    assert_int_equal(system(cmd), 0);
    char *text = fs_kt_read_text(out_path);
    fs_e2e_lines got;
    fs_e2e_split_lines(text, &got);
    char *values = calloc(1, 1);
    size_t values_len = 0;
    for (size_t i = 0; i < got.n; i++) {
        char *sp = strchr(got.v[i], ' ');
        assert_non_null(sp);
        char *funnel = fs_e2e_field(sp + 1, "funnel"),
             *start = fs_e2e_field(sp + 1, "window_start");
        char key[256];
        snprintf(key, sizeof key, "%.*s%s%s", (int)strlen(funnel) - 2, funnel + 1,
                 strstr(sp + 1, "\"kind\":\"cohort\"") ? "/cohort/" : "/", start);
        assert_int_equal((size_t)(sp - got.v[i]), strlen(key));
        assert_memory_equal(got.v[i], key, strlen(key)); /* SPEC §4 record keys */
        fs_kt_append(&values, &values_len, sp + 1, strlen(sp + 1));
        free(funnel);
        free(start);
    }
    char *got_canon = fs_e2e_canonical(values), *want_canon = fs_e2e_canonical(want);
    assert_string_equal(got_canon, want_canon);

    free(got_canon);
    free(want_canon);
    free(values);
    fs_e2e_lines_free(&got);
    free(text);
    free(out_path);
    free(want);
    free(yaml);
    free(cfg);
    free(keyed_path);
    free(keyed);
    fs_e2e_lines_free(&lines);
    free(gen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_partition),
        cmocka_unit_test(test_three_partitions),
        cmocka_unit_test(test_eight_partitions),
        cmocka_unit_test(test_issue14_features_five_partitions),
        cmocka_unit_test(test_dead_letters),
        cmocka_unit_test(test_sigterm_mid_stream),
        cmocka_unit_test(test_kill_and_restart),
        cmocka_unit_test(test_kill_and_restart_at_least_once),
        cmocka_unit_test(test_kill_and_restart_issue14_features),
        cmocka_unit_test(test_sigterm_and_restart),
        cmocka_unit_test(test_sigterm_and_restart_at_least_once),
        cmocka_unit_test(test_injected_faults),
        cmocka_unit_test(test_broker_down),
        cmocka_unit_test(test_kcat_interop),
        cmocka_unit_test(test_group_churn),
        cmocka_unit_test(test_idle_partition_comes_back),
        cmocka_unit_test(test_member_without_partitions),
    };
    if (getenv("FS_TEST_FILTER")) /* one test by name while working on it */
        cmocka_set_test_filter(getenv("FS_TEST_FILTER"));
    if (getenv("FS_TEST_SKIP")) /* tests left out (a glob), e.g. by a slow sanitizer run */
        cmocka_set_skip_filter(getenv("FS_TEST_SKIP"));
    return cmocka_run_group_tests(tests, fs_kt_cluster_up, fs_kt_cluster_down);
}
