/* kafka.h -- librdkafka clients configured from the config's kafka: section.
 *
 * Properties are applied in three layers: funnelstream's defaults, then the
 * user's kafka: properties untouched (so a user may override any default),
 * then the few settings the stage's guarantees depend on, which a user
 * cannot change (a warning says so if they tried):
 *
 *   consumer defaults  partition.assignment.strategy=cooperative-sticky,
 *                      auto.offset.reset=earliest, group.id=funnelstream,
 *                      queued.min.messages=1000000 (no fetch stall, see kafka.c)
 *   consumer, fixed    enable.auto.commit=false, enable.auto.offset.store=false
 *                      (offsets are committed only after the records that
 *                      depend on them are acknowledged), enable.partition.eof
 *                      (true only with --until-eof)
 *   producer defaults  enable.idempotence=true, acks=all, linger.ms=5,
 *                      socket.nagle.disable=true (window close -> ack latency)
 *   reader defaults    queued.min.messages=1000000, fetch.wait.max.ms=10
 *                      (it reads to the end: no 500 ms wait there)
 *   reader             a consumer in no group (fs_kafka_reader_new): the
 *                      user's group properties are left out, the caller
 *                      fixes what it depends on
 *
 * Properties that librdkafka defines for one kind of client only (group.id,
 * acks, ...) are given to that client only. librdkafka's own log lines go to
 * the structured log (log.h).
 */
#ifndef FS_KAFKA_H
#define FS_KAFKA_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "config.h"

/* The producer's message.max.bytes unless kafka: sets it, and the
 * max.message.bytes of the topics the stage creates: 16 MiB. */
#define FS_KAFKA_MESSAGE_MAX "16777216"
/* What a topic the stage did not create takes (a broker's default). */
#define FS_KAFKA_TOPIC_DEFAULT_MAX 1000000

typedef void (*fs_rebalance_fn)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t *parts, void *opaque);
typedef void (*fs_delivery_fn)(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque);

/* Both return NULL with a message in err (naming the property at fault). */
rd_kafka_t *fs_kafka_consumer_new(const fs_config *cfg, bool until_eof, fs_rebalance_fn rebalance,
                                  void *opaque, char *err, size_t err_len);
rd_kafka_t *fs_kafka_producer_new(const fs_config *cfg, fs_delivery_fn delivery, void *opaque,
                                  char *err, size_t err_len);
/* The same with transactions (exactly_once): transactional.id is the
 * user's, else "<group.id>-txn-<hostname>", stable across restarts so that
 * a restart fences what a killed instance left open. */
rd_kafka_t *fs_kafka_txn_producer_new(const fs_config *cfg, fs_delivery_fn delivery, void *opaque,
                                      char *err, size_t err_len);

/* A consumer in no group, for the simple consumer API (rd_kafka_consume_start
 * on a partition from a given offset, no commits): the user's kafka:
 * properties except the group ones (group.id, session.timeout.ms, ...), then
 * `fixed`, n_fixed key/value pairs (at most 16). NULL with a message in err. */
rd_kafka_t *fs_kafka_reader_new(const fs_config *cfg, const char *client_id,
                                const char *const *fixed, size_t n_fixed, char *err,
                                size_t err_len);

/* Checks every kafka: property against librdkafka (rd_kafka_conf_set on a
 * throwaway conf: unknown names, malformed or out-of-range values), so that
 * `run` refuses a bad property as a config error before anything starts,
 * instead of failing when a client is made. 0, or -1 with "kafka.<name>:
 * <librdkafka's reason>" in err. Settings librdkafka accepts one by one but
 * rejects together are still found only when the client is made. */
int fs_kafka_check_config(const fs_config *cfg, char *err, size_t err_len);

/* The value the kafka: section gives `key` (the last one), or NULL. */
const char *fs_kafka_user_property(const fs_config *cfg, const char *key);

/* A librdkafka log callback (rd_kafka_conf_set_log_cb) writing to log.h,
 * syslog levels mapped to ours. */
void fs_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

/* Produces one message (copied) with optional headers (name/value pairs,
 * n_headers of them). When the producer's queue is full it serves delivery
 * reports on the calling thread until there is room: callers must accept
 * that their delivery callback runs there too. Returns 0 or an error. */
rd_kafka_resp_err_t fs_kafka_produce(rd_kafka_t *producer, const char *topic, const void *key,
                                     size_t key_len, const void *value, size_t value_len,
                                     const char *const *headers, size_t n_headers, void *opaque);
/* The same to a given partition, without headers; value NULL: a tombstone. */
rd_kafka_resp_err_t fs_kafka_produce_to(rd_kafka_t *producer, const char *topic, int32_t partition,
                                        const void *key, size_t key_len, const void *value,
                                        size_t value_len, void *opaque);

#endif
