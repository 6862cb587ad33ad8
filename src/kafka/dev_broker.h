/* dev_broker.h -- an embedded Kafka-protocol broker for one machine.
 *
 * librdkafka's mock cluster (rdkafka_mock.h) speaks the real wire protocol
 * over TCP to any client. fs_dev_broker_start runs one inside this process
 * (in librdkafka's threads) with the topics a config names: input, output
 * and dead letter (defaults touchpoints and funnel-metrics without a config).
 * It listens on ports the kernel picks: librdkafka 2.0's API cannot choose
 * one. Data lives in memory, and each partition keeps a bounded log.
 */
#ifndef FS_DEV_BROKER_H
#define FS_DEV_BROKER_H

#include <stddef.h>

#include "config.h"

typedef struct fs_dev_broker fs_dev_broker;

/* cfg may be NULL. Returns NULL with a message in err. */
fs_dev_broker *fs_dev_broker_start(const fs_config *cfg, int partitions, int brokers, char *err,
                                   size_t err_len);
/* "host:port,...": what clients put in bootstrap.servers. */
const char *fs_dev_broker_bootstrap(const fs_dev_broker *b);
void fs_dev_broker_stop(fs_dev_broker *b);

#endif
