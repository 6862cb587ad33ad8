/* test_state_topic.c -- the Kafka side of the state topic (state_topic.h)
 * against librdkafka's mock cluster, run in this process (one for the file;
 * each test has topics of its own).
 *
 *   - the name: state.topic, else "<group.id>-state", invalid names refused;
 *   - partition counts come from metadata without creating the topic;
 *   - ensure accepts a topic with the input's count (twice), refuses
 *     another count, and creates a missing one -- or, with librdkafka 2.0's
 *     mock, which cannot create topics on request, fails with a timeout;
 *   - restore: an empty partition; the last value per key with tombstones
 *     (and a key coming back after one, an empty value); a partition whose
 *     beginning the mock deleted (its ~5 MiB per-partition log limit) is
 *     refused; records of an aborted transaction are not restored (skipped
 *     where the mock writes no transaction markers); a missing partition;
 *     100k keys end to end, and 1M keys through the map alone, timed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
/* after rdkafka.h */
#include <librdkafka/rdkafka_mock.h>

#include "kafka.h"
#include "state_topic.h"
#include "util.h"

#define WAIT_MS 10000

/* A restore of 1M keys must take well under 5 s; sanitizers make the map
 * about 2x slower. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BUDGET_S 15.0
#else
#define BUDGET_S 5.0
#endif

static const char funnels[] = "input: {topic: in}\n"
                              "output: {topic: out}\n"
                              "funnels:\n"
                              "  - name: f\n"
                              "    stages: [{name: a, events: [a]}, {name: b, events: [b]}]\n";

static rd_kafka_t *mock_rk; /* hosts the mock cluster */
static rd_kafka_mock_cluster_t *mc;
static fs_config *cfg; /* bootstrap.servers of the mock, group.id test */
static rd_kafka_t *producer;

/* kafka_yaml: the body of the kafka: mapping, or NULL for none. */
static fs_config *parse(const char *kafka_yaml)
{
    char yaml[1024], err[256];
    int n = snprintf(yaml, sizeof yaml, "%s%s%s%s", funnels, kafka_yaml ? "kafka: {" : "",
                     kafka_yaml ? kafka_yaml : "", kafka_yaml ? "}\n" : "");
    assert_true(n > 0 && (size_t)n < sizeof yaml);
    fs_config *c = fs_config_parse(yaml, (size_t)n, "test", err, sizeof err);
    if (!c)
        fail_msg("config: %s", err);
    return c;
}

static int start_broker(void **state)
{
    (void)state;
    char why[512], kafka[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "4", NULL, 0);
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    assert_non_null(mock_rk);
    mc = rd_kafka_mock_cluster_new(mock_rk, 1);
    assert_non_null(mc);
    snprintf(kafka, sizeof kafka, "bootstrap.servers: \"%s\", group.id: test%s",
             rd_kafka_mock_cluster_bootstraps(mc), getenv("XK") ? getenv("XK") : "");
    cfg = parse(kafka);
    /* every test's topics, before the producer is there: a producer that
     * meets a topic after start-up takes ~1 s to learn its partitions */
    static const struct {
        const char *name;
        int partitions;
    } topics[] = {
        {"pc-three", 3},   {"ens-six", 6}, {"ens-three", 3}, {"rs-empty", 2}, {"rs-last", 2},
        {"rs-deleted", 1}, {"rs-txn", 1},  {"rs-two", 2},    {"rs-100k", 1},
    };
    for (size_t i = 0; i < sizeof(topics) / sizeof(*topics); i++)
        assert_int_equal(rd_kafka_mock_topic_create(mc, topics[i].name, topics[i].partitions, 1),
                         0);
    producer = fs_kafka_producer_new(cfg, NULL, NULL, why, sizeof why);
    if (!producer)
        fail_msg("producer: %s", why);
    return 0;
}

static int stop_broker(void **state)
{
    (void)state;
    rd_kafka_destroy(producer);
    fs_config_free(cfg);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(mock_rk);
    return 0;
}

/* value NULL: a tombstone */
static void produce_to(rd_kafka_t *p, const char *topic, int32_t part, const char *key,
                       const void *value, size_t len)
{
    rd_kafka_resp_err_t e = rd_kafka_producev(
        p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(part),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, strlen(key)),
        RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_END);
    while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(p, 10);
        e = rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(part),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_KEY(key, strlen(key)),
                              RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_END);
    }
    assert_int_equal(e, 0);
}

static void produce(const char *topic, int32_t part, const char *key, const char *value)
{
    produce_to(producer, topic, part, key, value, value ? strlen(value) : 0);
}

static void flush(rd_kafka_t *p)
{
    assert_int_equal(rd_kafka_flush(p, WAIT_MS), 0);
}

/* ---- what a restore hands over ------------------------------------------ */

typedef struct kv {
    char key[32];
    char value[64];
    size_t value_len;
} kv;

typedef struct got {
    kv *kv;
    size_t n, cap;
} got;

static void collect(void *ctx, const char *key, size_t key_len, const char *value, size_t value_len)
{
    got *g = ctx;
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 16;
        g->kv = fs_xrealloc(g->kv, g->cap * sizeof(*g->kv));
    }
    kv *e = &g->kv[g->n++];
    assert_true(key_len < sizeof e->key);
    memcpy(e->key, key, key_len);
    e->key[key_len] = '\0';
    e->value_len = value_len < sizeof e->value ? value_len : sizeof e->value - 1;
    if (e->value_len)
        memcpy(e->value, value, e->value_len);
    e->value[e->value_len] = '\0';
}

static const kv *find(const got *g, const char *key)
{
    for (size_t i = 0; i < g->n; i++)
        if (!strcmp(g->kv[i].key, key))
            return &g->kv[i];
    return NULL;
}

static void assert_value(const got *g, const char *key, const char *value)
{
    const kv *e = find(g, key);
    if (!e)
        fail_msg("key %s not restored", key);
    assert_string_equal(e->value, value);
}

/* ---- names -------------------------------------------------------------- */

static void test_name(void **state)
{
    (void)state;
    char buf[FS_TOPIC_NAME_MAX + 1], err[256];
    fs_config *none = parse(NULL), *bad = parse("group.id: \"a b\"");
    assert_int_equal(fs_state_topic_name(none, NULL, buf, sizeof buf, err, sizeof err), 0);
    assert_string_equal(buf, "funnelstream-state");
    assert_int_equal(fs_state_topic_name(cfg, NULL, buf, sizeof buf, err, sizeof err), 0);
    assert_string_equal(buf, "test-state");
    assert_int_equal(fs_state_topic_name(cfg, "my.state_1", buf, sizeof buf, err, sizeof err), 0);
    assert_string_equal(buf, "my.state_1");
    assert_int_equal(fs_state_topic_name(bad, "ok", buf, sizeof buf, err, sizeof err), 0);
    assert_string_equal(buf, "ok");

    assert_int_equal(fs_state_topic_name(bad, NULL, buf, sizeof buf, err, sizeof err), -1);
    assert_non_null(strstr(err, "\"a b-state\" (from kafka.group.id"));
    assert_non_null(strstr(err, "set state.topic"));
    assert_int_equal(fs_state_topic_name(cfg, "..", buf, sizeof buf, err, sizeof err), -1);
    assert_int_equal(fs_state_topic_name(cfg, "", buf, sizeof buf, err, sizeof err), -1);
    char longname[300];
    memset(longname, 'x', 250);
    longname[250] = '\0';
    assert_int_equal(fs_state_topic_name(cfg, longname, buf, sizeof buf, err, sizeof err), -1);
    assert_non_null(strstr(err, "249"));
    longname[249] = '\0';
    assert_int_equal(fs_state_topic_name(cfg, longname, buf, sizeof buf, err, sizeof err), 0);
    assert_int_equal(fs_state_topic_name(cfg, NULL, buf, 8, err, sizeof err), -1);
    assert_non_null(strstr(err, "does not fit the buffer"));
    fs_config_free(none);
    fs_config_free(bad);
}

/* ---- partition counts and ensure ---------------------------------------- */

static void test_partition_count(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(fs_kafka_partition_count(producer, "pc-three", WAIT_MS, err, sizeof err), 3);
    assert_int_equal(fs_kafka_partition_count(producer, "pc-none", WAIT_MS, err, sizeof err),
                     FS_TOPIC_MISSING);
    /* asking did not create it (the mock creates topics named in a request) */
    assert_int_equal(fs_kafka_partition_count(producer, "pc-none", WAIT_MS, err, sizeof err),
                     FS_TOPIC_MISSING);
}

static void test_ensure_existing(void **state)
{
    (void)state;
    char err[512] = "";
    for (int i = 0; i < 2; i++)
        if (fs_state_topic_ensure(producer, "ens-six", 6, WAIT_MS, err, sizeof err) != 0)
            fail_msg("ensure: %s", err);
}

static void test_ensure_refuses_other_count(void **state)
{
    (void)state;
    char err[512] = "";
    assert_int_equal(fs_state_topic_ensure(producer, "ens-three", 6, WAIT_MS, err, sizeof err), -1);
    assert_non_null(strstr(err, "state topic ens-three has 3 partitions, the input topic has 6"));
}

/* librdkafka 2.0's mock has no controller and no CreateTopics: creation
 * times out there; a mock (or broker) that can create gets checked. */
static void test_ensure_creates(void **state)
{
    (void)state;
    char err[512] = "";
    uint64_t t0 = fs_now_ns();
    int rc = fs_state_topic_ensure(producer, "ens-new", 4, 1000, err, sizeof err);
    if (rc == 0) {
        assert_int_equal(fs_kafka_partition_count(producer, "ens-new", WAIT_MS, err, sizeof err),
                         4);
        assert_int_equal(fs_state_topic_ensure(producer, "ens-new", 4, WAIT_MS, err, sizeof err),
                         0);
        return;
    }
    assert_non_null(strstr(err, "creating state topic ens-new: no answer within 1000 ms"));
    assert_true(fs_now_ns() - t0 < 5000000000ull);
    assert_int_equal(fs_kafka_partition_count(producer, "ens-new", WAIT_MS, err, sizeof err),
                     FS_TOPIC_MISSING);
}

/* ---- restore ------------------------------------------------------------ */

static int restore(const char *topic, int32_t part, got *g, fs_state_restore_stats *st, char *err,
                   size_t err_len)
{
    return fs_state_topic_restore(cfg, topic, part, WAIT_MS, collect, g, st, err, err_len);
}

static void test_restore_empty(void **state)
{
    (void)state;
    char err[512] = "";
    got g = {0};
    fs_state_restore_stats st;
    if (restore("rs-empty", 1, &g, &st, err, sizeof err))
        fail_msg("restore: %s", err);
    assert_int_equal(g.n, 0);
    assert_int_equal(st.records, 0);
    assert_int_equal(st.live_keys, 0);
    assert_int_equal(st.end_offset, 0);
}

static void test_restore_last_per_key(void **state)
{
    (void)state;
    char err[512] = "";
    got g = {0};
    fs_state_restore_stats st;
    static const char *const seq[][2] = {
        {"a", "a1"}, {"b", "b1"}, {"a", "a2"}, {"c", "c1"}, {"b", NULL}, {"d", "d1"},
        {"d", NULL}, {"d", "d2"}, {"e", ""},   {"c", "c2"}, {"f", NULL},
    };
    for (size_t i = 0; i < sizeof(seq) / sizeof(*seq); i++)
        produce("rs-last", 1, seq[i][0], seq[i][1]);
    produce("rs-last", 0, "a", "other partition");
    flush(producer);
    if (restore("rs-last", 1, &g, &st, err, sizeof err))
        fail_msg("restore: %s", err);
    assert_int_equal(g.n, 4);
    assert_value(&g, "a", "a2");
    assert_value(&g, "c", "c2");
    assert_value(&g, "d", "d2");
    assert_value(&g, "e", "");
    assert_null(find(&g, "b"));
    assert_null(find(&g, "f"));
    assert_int_equal(st.records, 11);
    assert_int_equal(st.tombstones, 3);
    assert_int_equal(st.live_keys, 4);
    assert_int_equal(st.end_offset, 11);
    assert_int_equal(st.bytes, 11 + 7 * 2); /* keys, then the values but "" */
    free(g.kv);
}

/* The mock keeps at most ~5 MiB per partition (librdkafka 2.0.2: it drops
 * the oldest message sets past 5 MiB or 100000 sets): 8 MiB in 64 KiB
 * values moves the partition's start above 0. */
static void test_restore_refuses_deleted_beginning(void **state)
{
    (void)state;
    char err[512] = "", key[32];
    got g = {0};
    size_t len = 64 * 1024;
    char *big = fs_xcalloc(1, len);
    for (int i = 0; i < 128; i++) {
        snprintf(key, sizeof key, "c%d", i % 10);
        produce_to(producer, "rs-deleted", 0, key, big, len);
    }
    flush(producer);
    free(big);
    int64_t lo = -1, hi = -1;
    assert_int_equal(rd_kafka_query_watermark_offsets(producer, "rs-deleted", 0, &lo, &hi, WAIT_MS),
                     0);
    assert_true(lo > 0);
    assert_int_equal(hi, 128);
    assert_int_equal(restore("rs-deleted", 0, &g, NULL, err, sizeof err), -1);
    char want[128];
    snprintf(want, sizeof want, "state topic rs-deleted partition 0 begins at offset %lld",
             (long long)lo);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, "restoring would lose state"));
    assert_int_equal(g.n, 0); /* nothing handed over */
}

static rd_kafka_t *transactional(void)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers",
                                       rd_kafka_mock_cluster_bootstraps(mc), why, sizeof why),
                     0);
    assert_int_equal(rd_kafka_conf_set(conf, "transactional.id", "rs-txn", why, sizeof why), 0);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    assert_non_null(p);
    assert_null(rd_kafka_init_transactions(p, WAIT_MS));
    return p;
}

/* abort: the records are flushed to the broker first, or the abort would
 * just purge them from the producer's queue and prove nothing. */
static void transaction(rd_kafka_t *p, const char *key, const char *value, bool commit)
{
    assert_null(rd_kafka_begin_transaction(p));
    produce_to(p, "rs-txn", 0, key, value, strlen(value));
    flush(p);
    rd_kafka_error_t *e =
        commit ? rd_kafka_commit_transaction(p, WAIT_MS) : rd_kafka_abort_transaction(p, WAIT_MS);
    assert_null(e);
}

static void test_restore_read_committed(void **state)
{
    (void)state;
    char err[512] = "";
    got g = {0};
    rd_kafka_t *p = transactional();
    transaction(p, "a", "committed", true);
    transaction(p, "b", "aborted", false);
    transaction(p, "a", "aborted", false);
    transaction(p, "c", "committed", true);
    rd_kafka_destroy(p);
    if (restore("rs-txn", 0, &g, NULL, err, sizeof err))
        fail_msg("restore: %s", err);
    assert_value(&g, "c", "committed");
    assert_non_null(find(&g, "a"));
    bool aborted_seen = find(&g, "b") || strcmp(find(&g, "a")->value, "committed");
    free(g.kv);
    if (aborted_seen) {
        print_message("librdkafka's mock cluster writes no transaction markers (2.0.2): "
                      "read_committed cannot be checked against it\n");
        skip();
    }
    assert_int_equal(g.n, 2);
}

static void test_restore_missing_partition(void **state)
{
    (void)state;
    char err[512] = "";
    got g = {0};
    assert_int_equal(
        fs_state_topic_restore(cfg, "rs-two", 5, 2000, collect, &g, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "state topic rs-two partition 5"));
    print_message("%s\n", err);
}

/* Timeouts: every call fails with a message, none hangs. */
static void test_broker_down(void **state)
{
    (void)state;
    char err[512] = "";
    got g = {0};
    rd_kafka_mock_broker_set_down(mc, 1);
    uint64_t t0 = fs_now_ns();
    assert_int_equal(fs_kafka_partition_count(producer, "rs-two", 300, err, sizeof err),
                     FS_TOPIC_ERROR);
    assert_non_null(strstr(err, "cannot read the metadata of topic rs-two"));
    assert_int_equal(fs_state_topic_ensure(producer, "rs-two", 2, 300, err, sizeof err), -1);
    assert_non_null(strstr(err, "state topic: cannot read the metadata"));
    assert_int_equal(
        fs_state_topic_restore(cfg, "rs-two", 0, 300, collect, &g, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "state topic rs-two partition 0: cannot read its offsets"));
    assert_true(fs_now_ns() - t0 < 3000000000ull);
    rd_kafka_mock_broker_set_up(mc, 1);
    assert_int_equal(g.n, 0);
}

/* ---- volume ------------------------------------------------------------- */

static void count_keys(void *ctx, const char *key, size_t key_len, const char *value,
                       size_t value_len)
{
    (void)key;
    (void)value;
    uint64_t *n = ctx;
    n[0]++;
    n[1] += key_len + value_len;
}

/* 100k customers (80 bytes of value, a tenth overwritten, a tenth
 * tombstoned) fit the mock's 5 MiB in 64 KiB batches only compressed. */
static void test_restore_100k(void **state)
{
    (void)state;
    char err[512] = "", key[32], why[512], value[80];
    char kafka[256];
    snprintf(kafka, sizeof kafka,
             "bootstrap.servers: \"%s\", compression.codec: lz4, batch.num.messages: 100000",
             rd_kafka_mock_cluster_bootstraps(mc));
    fs_config *c = parse(kafka);
    rd_kafka_t *p = fs_kafka_producer_new(c, NULL, NULL, why, sizeof why);
    assert_non_null(p);
    memset(value, 'v', sizeof value);
    for (int i = 0; i < 120000; i++) {
        int k = i < 100000 ? i : (i - 100000) * 5;
        snprintf(key, sizeof key, "c%07d", k);
        bool tomb = i >= 100000 && i % 2;
        produce_to(p, "rs-100k", 0, key, tomb ? NULL : value, tomb ? 0 : sizeof value);
    }
    flush(p);
    rd_kafka_destroy(p);
    uint64_t n[2] = {0, 0};
    fs_state_restore_stats st;
    if (fs_state_topic_restore(c, "rs-100k", 0, WAIT_MS, count_keys, n, &st, err, sizeof err))
        fail_msg("restore: %s", err);
    assert_int_equal(st.records, 120000);
    assert_int_equal(st.tombstones, 10000);
    assert_int_equal(n[0], 90000);
    assert_int_equal(st.live_keys, 90000);
    print_message("restored 120k records (90k keys, %.1f MiB) in %.3f s\n",
                  (double)st.bytes / 1048576, st.seconds);
    assert_true(st.seconds < BUDGET_S);
    fs_config_free(c);
}

/* The map alone, at the scale the mock cannot hold: 1M customers with a
 * value of 100 bytes, then a third of them again and a tenth tombstoned. */
static void test_latest_1m(void **state)
{
    (void)state;
    char key[32], value[100];
    memset(value, 'v', sizeof value);
    uint64_t t0 = fs_now_ns();
    fs_state_latest *l = fs_state_latest_new();
    for (int i = 0; i < 1000000; i++) {
        int n = snprintf(key, sizeof key, "c%d", i);
        fs_state_latest_put(l, key, (size_t)n, value, sizeof value);
    }
    for (int i = 0; i < 1000000; i += 3) {
        int n = snprintf(key, sizeof key, "c%d", i);
        fs_state_latest_put(l, key, (size_t)n, i % 10 == 0 ? NULL : value,
                            i % 10 == 0 ? 0 : sizeof value / 2);
    }
    uint64_t n[2] = {0, 0};
    assert_int_equal(fs_state_latest_each(l, count_keys, n), fs_state_latest_count(l));
    fs_state_latest_free(l);
    double s = (double)(fs_now_ns() - t0) / 1e9;
    assert_int_equal(n[0], 1000000 - 33334);
    print_message("1.33M records, 1M keys through the map in %.3f s\n", s);
    assert_true(s < BUDGET_S);
}

static void test_latest_comes_back(void **state)
{
    (void)state;
    fs_state_latest *l = fs_state_latest_new();
    fs_state_latest_put(l, "k", 1, "1", 1);
    fs_state_latest_put(l, "k", 1, NULL, 0);
    fs_state_latest_put(l, "k", 1, NULL, 0); /* a tombstone of a removed key */
    assert_int_equal(fs_state_latest_count(l), 0);
    fs_state_latest_put(l, "k", 1, "22", 2);
    fs_state_latest_put(l, "\0k", 2, "", 0); /* binary key, empty value */
    assert_int_equal(fs_state_latest_count(l), 2);
    got g = {0};
    assert_int_equal(fs_state_latest_each(l, collect, &g), 2);
    assert_string_equal(g.kv[0].value, "22");
    assert_int_equal(g.kv[1].value_len, 0);
    free(g.kv);
    fs_state_latest_free(l);
}

/* Skipped records (of checkpoints that never committed) shadow their key
 * until a kept record comes: a shadowed key is reported with its value, or
 * with none. */
static void test_latest_shadowed(void **state)
{
    (void)state;
    fs_state_latest *l = fs_state_latest_new();
    fs_state_latest_put(l, "a", 1, "a1", 2);
    fs_state_latest_shadow(l, "a", 1);   /* shadowed, keeps a1 */
    fs_state_latest_shadow(l, "new", 3); /* shadowed, no value */
    fs_state_latest_put(l, "b", 1, "b1", 2);
    fs_state_latest_shadow(l, "b", 1);
    fs_state_latest_put(l, "b", 1, "b2", 2); /* a kept record after: not shadowed */
    fs_state_latest_put(l, "c", 1, "c1", 2);
    fs_state_latest_put(l, "c", 1, NULL, 0);
    fs_state_latest_shadow(l, "c", 1); /* removed, then shadowed */
    got live = {0}, shadowed = {0};
    assert_int_equal(fs_state_latest_each(l, collect, &live), 2);
    assert_value(&live, "a", "a1");
    assert_value(&live, "b", "b2");
    assert_int_equal(fs_state_latest_each_shadowed(l, collect, &shadowed), 3);
    assert_value(&shadowed, "a", "a1");
    assert_value(&shadowed, "new", "");
    assert_value(&shadowed, "c", "");
    assert_null(find(&shadowed, "b"));
    for (int i = 0; i < 3000; i++) { /* new keys past the map's first allocation */
        char key[16];
        int n = snprintf(key, sizeof key, "s%d", i);
        fs_state_latest_shadow(l, key, (size_t)n);
    }
    got more = {0};
    assert_int_equal(fs_state_latest_each_shadowed(l, collect, &more), 3003);
    free(more.kv);
    free(live.kv);
    free(shadowed.kv);
    fs_state_latest_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name),
        cmocka_unit_test(test_partition_count),
        cmocka_unit_test(test_ensure_existing),
        cmocka_unit_test(test_ensure_refuses_other_count),
        cmocka_unit_test(test_ensure_creates),
        cmocka_unit_test(test_restore_empty),
        cmocka_unit_test(test_restore_last_per_key),
        cmocka_unit_test(test_restore_refuses_deleted_beginning),
        cmocka_unit_test(test_restore_read_committed),
        cmocka_unit_test(test_restore_missing_partition),
        cmocka_unit_test(test_restore_100k),
        cmocka_unit_test(test_broker_down),
        cmocka_unit_test(test_latest_comes_back),
        cmocka_unit_test(test_latest_shadowed),
        cmocka_unit_test(test_latest_1m),
    };
    return cmocka_run_group_tests(tests, start_broker, stop_broker);
}
