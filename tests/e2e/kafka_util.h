/* kafka_util.h -- the mock Kafka cluster and plain clients for the e2e tests
 * that run `funnelstream run`.
 *
 * The test process hosts librdkafka's mock cluster (real TCP, real wire
 * protocol: the binary under test cannot tell it from a broker) and plays
 * the user around the binary: it makes topics, produces events keyed by
 * customer id, writes stage configs, reads topics back and checks committed
 * offsets. Include after <cmocka.h> and e2e_util.h. Nothing here waits on
 * time: loops end on EOF or on a process exiting, and FS_KT_DEADLINE_MS
 * only turns a hang into a failure.
 */
#ifndef FS_KAFKA_UTIL_H
#define FS_KAFKA_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define FS_KT_DEADLINE_MS 120000

extern rd_kafka_t *fs_kt_mock_rk;
extern rd_kafka_mock_cluster_t *fs_kt_mock;
extern const char *fs_kt_bootstrap;

/* cmocka group setup/teardown: one broker for every test of the program. */
int fs_kt_cluster_up(void **state);
int fs_kt_cluster_down(void **state);

/* A topic of the mock cluster (remembered: a stage config made for it as
 * input also gets its state and partials topics). */
void fs_kt_topic(const char *name, int partitions);
/* A plain client; group: a group.id without auto commit (NULL: none). */
rd_kafka_t *fs_kt_client(rd_kafka_type_t type, const char *group);
/* Produces one message, waiting for room when the queue is full. */
void fs_kt_produce(rd_kafka_t *p, const char *t, const char *key, size_t key_len, const char *value,
                   size_t len);
/* Flushes every message, then destroys the producer. */
void fs_kt_flush(rd_kafka_t *p);
/* Produces records [from, to) (every one: to = SIZE_MAX) of a .msgpack
 * replay file, keyed by customer_id (as SPEC §1 asks of producers); returns
 * how many. */
size_t fs_kt_produce_range(const char *t, const char *path, size_t from, size_t to);
size_t fs_kt_produce_file(const char *t, const char *path);

/* A topic read back from the beginning to its end. */
typedef struct fs_kt_consumed {
    char *text; /* values, one per line */
    size_t len, n;
    char *headers; /* "reason=<r>|key=<k>\n" per message (see kafka_util.c), when asked */
    size_t hlen;
} fs_kt_consumed;

/* Appends p[0..n) and a newline to the growing text *buf. */
void fs_kt_append(char **buf, size_t *len, const char *p, size_t n);
/* A consumer assigned every partition of t from the beginning (no group). */
rd_kafka_t *fs_kt_reader(const char *t, int partitions);
fs_kt_consumed fs_kt_consume_topic(const char *t, int partitions, bool with_headers);
void fs_kt_consumed_free(fs_kt_consumed *c);
/* The group's committed offset of each partition (-1001: none). */
void fs_kt_committed(const char *group, const char *t, int partitions, int64_t *out);
int64_t fs_kt_committed_total(const char *group, const char *t, int partitions);
/* Blocks until t holds at least n messages. */
void fs_kt_await_messages(const char *t, int partitions, size_t n);
/* Blocks until the group has committed something (reading `out` between
 * checks). */
void fs_kt_await_commit(const char *group, const char *in, int partitions, const char *out);

/* A whole text file (malloc'd), or a test failure. */
char *fs_kt_read_text(const char *path);
/* Extra kafka: lines for the stage configs made next (a test's own). */
extern const char *fs_kt_extra_kafka;
/* For tests that start the stage again in the same group: see kafka_util.c. */
extern const char fs_kt_short_session[];
/* A config of tests/e2e/configs with this test's topics, group and Kafka
 * section in front (path, malloc'd); makes the group's state and partials
 * topics. dlq: NULL for none. */
char *fs_kt_stage_config(const char *name, const char *in, const char *out, const char *dlq,
                         const char *group, const char *format);
/* `generate` into a new .msgpack file (path, malloc'd). */
char *fs_kt_generated(uint64_t events, uint64_t customers, const char *seed, const char *rate,
                      const char *disorder);
/* `run --until-eof`, which must exit 0. */
void fs_kt_run_until_eof(const char *config, const char *threads, fs_e2e_run *r);
/* The unsigned number after `key` in the "stage stopped" line of log. */
uint64_t fs_kt_field_u64(const char *log, const char *key);
/* The HTTP port a running stage logged. */
int fs_kt_http_port(const fs_e2e_bg *stage);
/* The last record per key (kind, funnel, window_start) of out (malloc'd). */
char *fs_kt_last_per_key(const char *out);
/* The last record per key of topic `out` (2 partitions) equals replay of
 * the events file with the stage's config. */
void fs_kt_assert_last_per_key_is_replay(const char *cfg, const char *events, const char *out);

#endif
