/* dev_broker.c -- librdkafka's mock cluster with the config's topics (see dev_broker.h). */
#include "dev_broker.h"
#include "state_topic.h"

#include <stdio.h>
#include <stdlib.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "log.h"
#include "util.h"

struct fs_dev_broker {
    rd_kafka_t *rk; /* the mock cluster lives inside a client handle that never sends */
    rd_kafka_mock_cluster_t *mc;
};

static int create_topics(fs_dev_broker *b, const fs_config *cfg, int partitions, char *err,
                         size_t err_len)
{
    /* The state and partials topics too: the mock cluster cannot create
     * topics on request (no CreateTopics in librdkafka 2.0.2); the state
     * topic needs as many partitions as the input. */
    char state[FS_TOPIC_NAME_MAX + 1] = "", partials[FS_TOPIC_NAME_MAX + 1] = "";
    if (fs_state_topic_name(cfg, cfg ? cfg->state_topic : NULL, state, sizeof state, err,
                            err_len) != 0 ||
        fs_partials_topic_name(cfg, partials, sizeof partials, err, err_len) != 0)
        return -1;
    const char *topics[5] = {cfg ? cfg->input_topic : "touchpoints",
                             cfg ? cfg->output_topic : "funnel-metrics",
                             cfg ? cfg->dead_letter_topic : NULL, state, partials};
    for (int i = 0; i < 5; i++) {
        if (!topics[i])
            continue;
        int n = i == 4 ? 1 : partitions; /* every partial meets in one partition (merge.h) */
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(b->mc, topics[i], n, 1);
        if (e) {
            snprintf(err, err_len, "creating topic '%s': %s", topics[i], rd_kafka_err2str(e));
            return -1;
        }
        fs_log(FS_LOG_INFO, "topic created", "topic=%s partitions=%d", topics[i], n);
    }
    return 0;
}

fs_dev_broker *fs_dev_broker_start(const fs_config *cfg, int partitions, int brokers, char *err,
                                   size_t err_len)
{
    fs_dev_broker *b = fs_xcalloc(1, sizeof(*b));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* quiet the notice that this client has no bootstrap.servers of its own */
    rd_kafka_conf_set(conf, "log_level", "4", NULL, 0);
    char why[512];
    b->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!b->rk) {
        snprintf(err, err_len, "cannot start the mock cluster: %s", why);
        rd_kafka_conf_destroy(conf);
        free(b);
        return NULL;
    }
    b->mc = rd_kafka_mock_cluster_new(b->rk, brokers);
    if (!b->mc) {
        snprintf(err, err_len, "cannot start the mock cluster");
        fs_dev_broker_stop(b);
        return NULL;
    }
    if (create_topics(b, cfg, partitions, err, err_len) != 0) {
        fs_dev_broker_stop(b);
        return NULL;
    }
    /* Said up front: past these the mock drops a partition's oldest
     * messages without a word to producers (run detects and counts
     * what it could not read). */
    fs_log(FS_LOG_WARN, "dev broker limits",
           "per_partition_bytes=~5MiB per_partition_messages=100000 largest_message=~5MiB "
           "hint=\"older messages of a partition are dropped past these: produce no more "
           "than the stage reads, or use more partitions; a message larger than a "
           "partition's log makes it unreadable\"");
    return b;
}

const char *fs_dev_broker_bootstrap(const fs_dev_broker *b)
{
    return rd_kafka_mock_cluster_bootstraps(b->mc);
}

void fs_dev_broker_stop(fs_dev_broker *b)
{
    if (!b)
        return;
    if (b->mc)
        rd_kafka_mock_cluster_destroy(b->mc);
    if (b->rk)
        rd_kafka_destroy(b->rk);
    free(b);
}
