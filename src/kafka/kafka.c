/* kafka.c -- librdkafka clients and produce with back-pressure (see kafka.h). */
#include "kafka.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

typedef struct prop {
    const char *key, *value;
} prop;

void fs_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    fs_log_level l = level <= 3   ? FS_LOG_ERROR
                     : level == 4 ? FS_LOG_WARN
                     : level <= 6 ? FS_LOG_INFO
                                  : FS_LOG_DEBUG;
    fs_log(l, "librdkafka", "client=%s facility=%s text=\"%s\"", rd_kafka_name(rk), fac, buf);
}

static int set_prop(rd_kafka_conf_t *conf, const char *key, const char *value, char *err,
                    size_t err_len)
{
    char why[256];
    if (rd_kafka_conf_set(conf, key, value, why, sizeof(why)) == RD_KAFKA_CONF_OK)
        return 0;
    snprintf(err, err_len, "kafka.%s: %s", key, why);
    return -1;
}

/* Properties of a consumer group, which a reader (fs_kafka_reader_new) is
 * not in: librdkafka would look up a coordinator for a group.id. */
static const char *const group_only[] = {
    "group.id",
    "group.instance.id",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "group.protocol.type",
    "coordinator.query.interval.ms",
    "max.poll.interval.ms",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "enable.auto.offset.store",
    "offset.store.method",
};

/* Properties that librdkafka applies to one kind of client only (its
 * CONFIGURATION.md marks them C or P). The kafka: section serves both
 * clients, so each gets only what applies to it; librdkafka would otherwise
 * warn about every consumer property at producer start-up. */
static const char *const consumer_only[] = {
    /* and every group property above */
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "fetch.wait.max.ms",
    "fetch.message.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.max.bytes",
    "fetch.min.bytes",
    "fetch.error.backoff.ms",
    "isolation.level",
    "enable.partition.eof",
    "check.crcs",
    "auto.offset.reset",
    "consume.callback.max.messages",
    "allow.auto.create.topics",
};
static const char *const producer_only[] = {
    "acks",
    "request.required.acks",
    "enable.idempotence",
    "linger.ms",
    "queue.buffering.max.ms",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "batch.num.messages",
    "batch.size",
    "compression.codec",
    "compression.type",
    "compression.level",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "retries",
    "message.send.max.retries",
    "transactional.id",
    "transaction.timeout.ms",
    "partitioner",
    "enable.gapless.guarantee",
    "sticky.partitioning.linger.ms",
    "request.timeout.ms",
    "queue.buffering.backpressure.threshold",
};

static bool listed(const char *key, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(key, list[i]))
            return true;
    return false;
}

#define N_OF(list) (sizeof(list) / sizeof(*(list)))

/* A kafka: property that librdkafka applies only to the other kind of
 * client, or (no_group) to a group member. */
static bool not_for(const char *key, rd_kafka_type_t type, bool no_group)
{
    bool group = listed(key, group_only, N_OF(group_only));
    if (type == RD_KAFKA_CONSUMER)
        return listed(key, producer_only, N_OF(producer_only)) || (no_group && group);
    return group || listed(key, consumer_only, N_OF(consumer_only));
}

static const char *user_value(const fs_config *cfg, const char *key)
{
    const char *v = NULL;
    for (size_t i = 0; i < cfg->n_kafka; i++)
        if (!strcmp(cfg->kafka[i].key, key))
            v = cfg->kafka[i].value;
    return v;
}

int fs_kafka_check_config(const fs_config *cfg, char *err, size_t err_len)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = 0;

    for (size_t i = 0; i < cfg->n_kafka && rc == 0; i++)
        rc = set_prop(conf, cfg->kafka[i].key, cfg->kafka[i].value, err, err_len);
    rd_kafka_conf_destroy(conf);
    return rc;
}

const char *fs_kafka_user_property(const fs_config *cfg, const char *key)
{
    return user_value(cfg, key);
}

/* no_group: the user's group properties are left out too (a reader). */
static rd_kafka_conf_t *layered_conf_ex(const fs_config *cfg, rd_kafka_type_t type, bool no_group,
                                        const prop *defaults, size_t n_defaults, const prop *fixed,
                                        size_t n_fixed, char *err, size_t err_len)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, fs_kafka_log);
    for (size_t i = 0; i < n_defaults; i++)
        if (set_prop(conf, defaults[i].key, defaults[i].value, err, err_len))
            goto fail;
    for (size_t i = 0; i < cfg->n_kafka; i++)
        if (!not_for(cfg->kafka[i].key, type, no_group) &&
            set_prop(conf, cfg->kafka[i].key, cfg->kafka[i].value, err, err_len))
            goto fail;
    for (size_t i = 0; i < n_fixed; i++) {
        const char *v = user_value(cfg, fixed[i].key);
        if (v && strcmp(v, fixed[i].value))
            fs_log(FS_LOG_WARN, "kafka property overridden: the stage depends on it",
                   "property=%s configured=%s used=%s", fixed[i].key, v, fixed[i].value);
        if (set_prop(conf, fixed[i].key, fixed[i].value, err, err_len))
            goto fail;
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static rd_kafka_conf_t *layered_conf(const fs_config *cfg, rd_kafka_type_t type,
                                     const prop *defaults, size_t n_defaults, const prop *fixed,
                                     size_t n_fixed, char *err, size_t err_len)
{
    return layered_conf_ex(cfg, type, false, defaults, n_defaults, fixed, n_fixed, err, err_len);
}

static rd_kafka_t *client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *err,
                              size_t err_len)
{
    char why[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, why, sizeof(why));
    if (!rk) {
        snprintf(err, err_len, "kafka: %s", why);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

rd_kafka_t *fs_kafka_reader_new(const fs_config *cfg, const char *client_id,
                                const char *const *fixed, size_t n_fixed, char *err, size_t err_len)
{
    const prop defaults[] = {
        {"client.id", client_id},
        {"queued.min.messages", "1000000"}, /* as the consumer's: no fetch stall */
        /* A reader reads to the end, where the broker holds a fetch this
         * long for data that is not coming (librdkafka's default: 500 ms). */
        {"fetch.wait.max.ms", "10"},
    };
    prop fix[16];
    if (n_fixed > sizeof(fix) / sizeof(*fix)) {
        snprintf(err, err_len, "kafka: %zu fixed reader properties, at most %zu", n_fixed,
                 sizeof(fix) / sizeof(*fix));
        return NULL;
    }
    for (size_t i = 0; i < n_fixed; i++)
        fix[i] = (prop){fixed[2 * i], fixed[2 * i + 1]};
    rd_kafka_conf_t *conf =
        layered_conf_ex(cfg, RD_KAFKA_CONSUMER, true, defaults,
                        sizeof(defaults) / sizeof(*defaults), fix, n_fixed, err, err_len);
    return conf ? client_new(RD_KAFKA_CONSUMER, conf, err, err_len) : NULL;
}

rd_kafka_t *fs_kafka_consumer_new(const fs_config *cfg, bool until_eof, fs_rebalance_fn rebalance,
                                  void *opaque, char *err, size_t err_len)
{
    static const prop defaults[] = {
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"auto.offset.reset", "earliest"},
        {"group.id", "funnelstream"},
        {"client.id", "funnelstream-consumer"},
        /* librdkafka stops fetching once this many messages wait locally and
         * (2.0.2) only looks again ~0.5 s later: with the default 100000 an
         * engine that briefly falls behind idles after catching up
         * (bench/RESULTS.md). Memory stays bounded by
         * queued.max.messages.kbytes. */
        {"queued.min.messages", "1000000"},
    };
    const prop fixed[] = {
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"enable.partition.eof", until_eof ? "true" : "false"},
    };
    rd_kafka_conf_t *conf =
        layered_conf(cfg, RD_KAFKA_CONSUMER, defaults, sizeof(defaults) / sizeof(*defaults), fixed,
                     sizeof(fixed) / sizeof(*fixed), err, err_len);
    if (!conf)
        return NULL;
    rd_kafka_conf_set_rebalance_cb(conf, rebalance);
    rd_kafka_conf_set_opaque(conf, opaque);
    rd_kafka_t *rk = client_new(RD_KAFKA_CONSUMER, conf, err, err_len);
    if (rk)
        rd_kafka_poll_set_consumer(rk); /* one queue for messages, rebalances and errors */
    return rk;
}

static rd_kafka_t *producer_new(const fs_config *cfg, fs_delivery_fn delivery, void *opaque,
                                bool transactional, char *err, size_t err_len)
{
    static const prop defaults[] = {
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"linger.ms", "5"},
        {"socket.nagle.disable", "true"}, /* Nagle + delayed ACKs add ~40 ms per record batch */
        /* A partition's state record grows with its open windows (hopping
         * windows with a small hop: megabytes); the state and partials
         * topics the stage creates take it (max.message.bytes, state_topic.c).
         * Output records are small, and dead letters are cut to 1 MB. */
        {"message.max.bytes", FS_KAFKA_MESSAGE_MAX},
        {"client.id", "funnelstream-producer"},
    };
    rd_kafka_conf_t *conf =
        layered_conf(cfg, RD_KAFKA_PRODUCER, defaults, sizeof(defaults) / sizeof(*defaults), NULL,
                     0, err, err_len);
    if (!conf)
        return NULL;
    if (transactional && !user_value(cfg, "transactional.id")) {
        /* Stable across restarts of this instance, so that a restart fences
         * the transaction a killed one left open instead of waiting for it
         * to time out (readers of committed data wait behind it). */
        char host[128] = "localhost", id[512];
        gethostname(host, sizeof host - 1);
        const char *group = user_value(cfg, "group.id");
        snprintf(id, sizeof id, "%s-txn-%s", group ? group : "funnelstream", host);
        if (set_prop(conf, "transactional.id", id, err, err_len)) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    rd_kafka_conf_set_dr_msg_cb(conf, delivery);
    rd_kafka_conf_set_opaque(conf, opaque);
    return client_new(RD_KAFKA_PRODUCER, conf, err, err_len);
}

rd_kafka_t *fs_kafka_producer_new(const fs_config *cfg, fs_delivery_fn delivery, void *opaque,
                                  char *err, size_t err_len)
{
    return producer_new(cfg, delivery, opaque, false, err, err_len);
}

rd_kafka_t *fs_kafka_txn_producer_new(const fs_config *cfg, fs_delivery_fn delivery, void *opaque,
                                      char *err, size_t err_len)
{
    return producer_new(cfg, delivery, opaque, true, err, err_len);
}

rd_kafka_resp_err_t fs_kafka_produce(rd_kafka_t *producer, const char *topic, const void *key,
                                     size_t key_len, const void *value, size_t value_len,
                                     const char *const *headers, size_t n_headers, void *opaque)
{
    for (;;) {
        rd_kafka_headers_t *hdrs = NULL;
        if (n_headers) {
            hdrs = rd_kafka_headers_new(n_headers);
            for (size_t i = 0; i < n_headers; i++)
                rd_kafka_header_add(hdrs, headers[2 * i], -1, headers[2 * i + 1], -1);
        }
        rd_kafka_resp_err_t err =
            hdrs ? rd_kafka_producev(
                       producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                       RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE((void *)value, value_len),
                       RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END)
                 : rd_kafka_producev(
                       producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                       RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE((void *)value, value_len),
                       RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        if (err && hdrs)
            rd_kafka_headers_destroy(hdrs); /* on success the message owns them */
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return err;
        /* Room appears only as delivery reports are served: wait for one
         * here rather than spin. */
        rd_kafka_poll(producer, 100);
    }
}

rd_kafka_resp_err_t fs_kafka_produce_to(rd_kafka_t *producer, const char *topic, int32_t partition,
                                        const void *key, size_t key_len, const void *value,
                                        size_t value_len, void *opaque)
{
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_len),
            RD_KAFKA_V_VALUE((void *)value, value ? value_len : 0), RD_KAFKA_V_OPAQUE(opaque),
            RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return err;
        rd_kafka_poll(producer, 100); /* as fs_kafka_produce */
    }
}
