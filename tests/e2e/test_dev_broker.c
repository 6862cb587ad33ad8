/* test_dev_broker.c -- `funnelstream dev-broker` against a real Kafka client.
 *
 * Starts the binary, reads the bootstrap address it prints, then talks to
 * it over TCP with librdkafka as any user would: topic metadata, produce,
 * consume everything back. Then SIGINT (or SIGTERM) must end it with exit 0.
 * Deadlines in the client loops only turn a hang into a failure; nothing
 * waits on time to synchronise.
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
#include <sys/wait.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "e2e_util.h"

#define MESSAGES    500
#define DEADLINE_MS 60000

static rd_kafka_t *client(rd_kafka_type_t type, const char *bootstrap)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err),
                     RD_KAFKA_CONF_OK);
    if (type == RD_KAFKA_CONSUMER) {
        rd_kafka_conf_set(conf, "group.id", "test_dev_broker", err, sizeof err);
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);
    assert_non_null(rk);
    return rk;
}

/* Partitions of topic per the broker's metadata, -1 when it has no such topic. */
static int partitions_of(rd_kafka_t *rk, const char *topic)
{
    const struct rd_kafka_metadata *md;
    assert_int_equal(rd_kafka_metadata(rk, 1, NULL, &md, DEADLINE_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
    int n = -1;
    for (int i = 0; i < md->topic_cnt; i++)
        if (!strcmp(md->topics[i].topic, topic) && !md->topics[i].err)
            n = md->topics[i].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return n;
}

static void produce_all(const char *bootstrap, const char *topic)
{
    rd_kafka_t *p = client(RD_KAFKA_PRODUCER, bootstrap);
    for (int i = 0; i < MESSAGES; i++) {
        char key[32], value[160];
        int kl = snprintf(key, sizeof key, "c%d", i % 37);
        int vl = snprintf(value, sizeof value,
                          "{\"customer_id\":\"%s\",\"ts\":%lld,\"event\":\"ad_impression\"}", key,
                          FS_E2E_T0 + i);
        assert_int_equal(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, kl),
                                           RD_KAFKA_V_VALUE(value, vl),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_END),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    assert_int_equal(rd_kafka_flush(p, DEADLINE_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_outq_len(p), 0);
    rd_kafka_destroy(p);
}

/* Reads every partition from the beginning until MESSAGES arrived. */
static int consume_all(const char *bootstrap, const char *topic, int partitions)
{
    rd_kafka_t *c = client(RD_KAFKA_CONSUMER, bootstrap);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(c, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    int got = 0;
    for (int polls = 0; got < MESSAGES && polls < DEADLINE_MS / 100; polls++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (!m)
            continue;
        if (!m->err) {
            assert_non_null(strstr((const char *)m->payload, "\"customer_id\""));
            got++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return got;
}

static void test_default_topics_produce_consume_sigint(void **state)
{
    (void)state;
    fs_e2e_broker b;
    fs_e2e_broker_start(&b, (const char *const[]){"--partitions", "3", NULL});
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, b.bootstrap);
    assert_int_equal(partitions_of(rk, "touchpoints"), 3);
    assert_int_equal(partitions_of(rk, "funnel-metrics"), 3);
    rd_kafka_destroy(rk);
    produce_all(b.bootstrap, "touchpoints");
    assert_int_equal(consume_all(b.bootstrap, "touchpoints", 3), MESSAGES);
    assert_int_equal(fs_e2e_broker_stop(&b, SIGINT), 0);
}

static void test_topics_from_config_sigterm(void **state)
{
    (void)state;
    char *cfg = fs_e2e_write_text(".yaml", "input: {topic: tp-in, format: json}\n"
                                           "output: {topic: tp-out}\n"
                                           "dead_letter: {topic: tp-dlq}\n"
                                           "window: {size: 1m}\n"
                                           "funnels:\n"
                                           "  - name: f\n"
                                           "    conversion_window: 1h\n"
                                           "    stages:\n"
                                           "      - {name: a, events: [a]}\n"
                                           "      - {name: b, events: [b]}\n");
    fs_e2e_broker b;
    fs_e2e_broker_start(&b, (const char *const[]){"--config", cfg, "--partitions", "2", NULL});
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, b.bootstrap);
    assert_int_equal(partitions_of(rk, "tp-in"), 2);
    assert_int_equal(partitions_of(rk, "tp-out"), 2);
    assert_int_equal(partitions_of(rk, "tp-dlq"), 2);
    rd_kafka_destroy(rk);
    assert_int_equal(fs_e2e_broker_stop(&b, SIGTERM), 0);
    free(cfg);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    fs_e2e_run r;
    FS_E2E_EXEC(&r, NULL, 0, "dev-broker", "--port", "9092");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--port"));
    fs_e2e_run_free(&r);
    FS_E2E_EXEC(&r, NULL, 0, "dev-broker", "--partitions", "0");
    assert_int_equal(r.status, 2);
    fs_e2e_run_free(&r);
    FS_E2E_EXEC(&r, NULL, 0, "dev-broker", "--help");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "Usage: funnelstream dev-broker"));
    fs_e2e_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_topics_produce_consume_sigint),
        cmocka_unit_test(test_topics_from_config_sigterm),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
