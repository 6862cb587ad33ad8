/* state_topic.h -- the Kafka side of the state (changelog) topic (SPEC §5).
 *
 * The engine encodes and applies state records (state.h, snapshot.h); this
 * module is what sits between them and the broker:
 *
 *   - naming: the state topic is state.topic from the config, else
 *     "<group.id>-state", so every instance of one consumer group shares one
 *     and two groups never share one;
 *   - ensuring: the state topic has exactly as many partitions as the input
 *     topic, because state partition P holds the state of input partition P
 *     and moves with it; it is created compacted when missing, and a topic
 *     of another partition count is an error, never repartitioned;
 *   - restoring: reading one partition from its beginning to its end
 *     (read_committed) and keeping the last record per key, which is what
 *     compaction keeps, then handing over every live key. A partition whose
 *     beginning was deleted (delete retention, or a bounded dev broker) has
 *     lost records that may have been the only copy of a key's state, so a
 *     restore refuses it rather than restore part of the state silently.
 *
 * Every function returns an error with a message naming the topic (and the
 * partition) and saying why; none retries on its own.
 */
#ifndef FS_STATE_TOPIC_H
#define FS_STATE_TOPIC_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "config.h"

/* The longest topic name Kafka accepts. */
#define FS_TOPIC_NAME_MAX 249

/* Writes the state topic's name into buf: `configured` (the config's
 * state.topic) when not NULL, else "<group.id>-state", with the group.id of
 * the kafka: section ("funnelstream", the consumer's default, if absent).
 * Returns 0, or -1 with a message in err (and nothing usable in buf) when
 * the name is not a valid topic name: empty, longer than FS_TOPIC_NAME_MAX
 * (or than len - 1), "." or "..", or with a character other than ASCII
 * letters, digits, '.', '_' and '-' -- a group.id may hold any character, a
 * topic name may not. */
int fs_state_topic_name(const fs_config *cfg, const char *configured, char *buf, size_t len,
                        char *err, size_t err_len);

/* The partials topic (merge.h) of the config's group: "<group.id>-partials".
 * Returns 0, or -1 with a message in err when that is not a valid topic
 * name (as for fs_state_topic_name). */
int fs_partials_topic_name(const fs_config *cfg, char *buf, size_t len, char *err, size_t err_len);

/* Makes sure the partials topic exists: when missing it is created with
 * one partition (every partial of the group meets in it, and one instance
 * merges) and cleanup.policy=delete. An existing topic with more partitions
 * is used as it is: only partition 0 carries partials (a warning says so).
 * Errors as for fs_state_topic_ensure. */
int fs_partials_topic_ensure(rd_kafka_t *rk, const char *topic, int timeout_ms, char *err,
                             size_t err_len);

/* fs_kafka_partition_count's answers besides a count. */
#define FS_TOPIC_MISSING (-1) /* no such topic */
#define FS_TOPIC_ERROR   (-2) /* metadata could not be read: err says why */

/* The partition count of `topic` from the cluster's metadata, through any
 * client rk; waits at most timeout_ms. It asks for the metadata of all
 * topics, not of this one, because asking for one topic by name lets a
 * broker auto-create it (librdkafka's mock cluster always does). Returns the
 * count (> 0), FS_TOPIC_MISSING, or FS_TOPIC_ERROR with a message in err on
 * a timeout, a broker error, or a topic the metadata lists with an error
 * (e.g. not authorised) and no partitions. */
int fs_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, char *err,
                             size_t err_len);
/* The same for n topics from one metadata request: counts[i] as above, or
 * FS_TOPIC_ERROR in every entry (and -1 returned) when the metadata could
 * not be read; 0 otherwise. err holds the first topic's error, if any. */
int fs_kafka_partition_counts(rd_kafka_t *rk, const char *const *topics, int *counts, size_t n,
                              int timeout_ms, char *err, size_t err_len);

/* Makes sure the state topic `topic` exists with exactly `partitions`
 * partitions (the input topic's count): when missing it is created through
 * rk (the Admin API, any client) with that count, cleanup.policy=compact and
 * the broker's default replication factor (-1: brokers >= 2.4). Returns 0
 * when the topic exists with that count or was created (also when another
 * instance created it meanwhile with that count). Returns -1 with a message
 * in err when
 *   - the topic exists with another partition count (it is never altered:
 *     moving keys between partitions would mix the states of partitions);
 *   - the metadata cannot be read, or creation fails (the broker's error:
 *     not authorised, invalid name, replication factor, ...);
 *   - a request got no answer within timeout_ms (each of the two requests,
 *     metadata then CreateTopics, may wait that long) -- always the case, for a
 *     missing topic, with librdkafka 2.0's mock cluster (the dev broker):
 *     it has no controller and no CreateTopics, so the dev broker must
 *     create the state topic itself.
 * An existing topic's cleanup.policy is not checked (that needs
 * DescribeConfigs, which the mock cluster lacks); a topic that is not
 * compacted loses old records to delete retention, which
 * fs_state_topic_restore detects and refuses. */
int fs_state_topic_ensure(rd_kafka_t *rk, const char *topic, int partitions, int timeout_ms,
                          char *err, size_t err_len);

/* Receives one live key of a restored partition and its last value; both
 * are valid during the call only. */
typedef void (*fs_state_restore_fn)(void *ctx, const char *key, size_t key_len, const char *value,
                                    size_t value_len);

typedef struct fs_state_restore_stats {
    uint64_t records;        /* records read, tombstones included */
    uint64_t tombstones;     /* of them, with a null value */
    uint64_t live_keys;      /* keys handed to fn */
    uint64_t bytes;          /* key and value bytes read */
    int64_t end_offset;      /* the partition's end when the read reached it */
    double seconds;          /* the whole restore, calls of fn included */
    uint64_t max_checkpoint; /* the highest checkpoint number read (state.h) */
    uint64_t uncommitted;    /* values skipped: of a checkpoint above `upto` */
    uint64_t shadowed;       /* keys whose last record is such a value */
} fs_state_restore_stats;

/* Restores partition `partition` of the state topic `topic`: reads it from
 * offset 0 to its end with a reader of its own (fs_kafka_reader_new: no
 * group; isolation.level=read_committed, so records of aborted or open
 * transactions are not seen; enable.partition.eof; auto.offset.reset=error),
 * keeps the last value per key, a record with a null value (a tombstone)
 * removing its key, then calls fn(ctx, ...) once per live key, in the order
 * the keys were first read. fn is not called at all when the restore fails.
 * st (may be NULL) gets the counts. timeout_ms bounds every wait -- for the
 * watermarks, and for each next record -- not the whole restore, so a state
 * of any size is read as long as records keep coming.
 *
 * Under read_committed the end is the last stable offset: a transaction
 * left open by a previous incarnation (killed mid-commit) holds it back
 * until that transaction is aborted, so under exactly-once restore after
 * the producer's rd_kafka_init_transactions, which aborts it (same
 * transactional.id); before, the read would stop short of later commits.
 *
 * Returns 0, or -1 with a message in err when
 *   - the partition does not begin at offset 0: its first records were
 *     deleted (delete retention; librdkafka's mock cluster keeps about 5 MiB
 *     per partition), so the state is incomplete. A compacted topic's log
 *     start moves only by deletion, never by compaction, so this is exactly
 *     the case to refuse. Also when deletion catches up with the read;
 *   - the reader cannot be created (a kafka: property at fault);
 *   - the watermarks cannot be read, or reading fails (a broker or client
 *     error, the partition does not exist);
 *   - no record came within timeout_ms before the end was reached;
 *   - a record has no key (a compacted topic cannot hold one). */
int fs_state_topic_restore(const fs_config *cfg, const char *topic, int32_t partition,
                           int timeout_ms, fs_state_restore_fn fn, void *ctx,
                           fs_state_restore_stats *st, char *err, size_t err_len);

/* The same, keeping only values of checkpoints numbered at most upto (the
 * one committed with the partition's offsets: state.h); the others are
 * counted in st->uncommitted. A key whose last record on the topic is such
 * a value is shadowed: a later restore, with a higher committed number,
 * would take that value, which belongs to a checkpoint that never
 * committed (brokers that show aborted records, like the mock cluster, or
 * at_least_once, whose state is never held back). shadowed (may be NULL)
 * is then called once per shadowed key, after fn's calls, with the key's
 * restored value, or NULL and 0 when it has none: the caller writes that
 * (or a tombstone) again, so that the topic's last word on the key is
 * what was restored. st->shadowed counts them. */
int fs_state_topic_restore_upto(const fs_config *cfg, const char *topic, int32_t partition,
                                uint64_t upto, int timeout_ms, fs_state_restore_fn fn,
                                fs_state_restore_fn shadowed, void *ctx, fs_state_restore_stats *st,
                                char *err, size_t err_len);

/* ---- the last value per key ----------------------------------------------
 * The map a restore keeps, usable alone (tests, benchmarks): keys are
 * interned (dict.h) into dense ids in first-seen order, the value of id i
 * is one allocation, replaced in place as later records of the key come. */

typedef struct fs_state_latest fs_state_latest;

fs_state_latest *fs_state_latest_new(void);
void fs_state_latest_free(fs_state_latest *l);
/* A record: value NULL is a tombstone (the key is removed). */
void fs_state_latest_put(fs_state_latest *l, const char *key, size_t key_len, const char *value,
                         size_t value_len);
/* A record the restore skips: the key keeps its value but is shadowed
 * until its next put. */
void fs_state_latest_shadow(fs_state_latest *l, const char *key, size_t key_len);
/* Live keys now. */
uint64_t fs_state_latest_count(const fs_state_latest *l);
/* Calls fn for every live key, in first-seen order; returns how many. */
uint64_t fs_state_latest_each(const fs_state_latest *l, fs_state_restore_fn fn, void *ctx);
/* Calls fn for every shadowed key (its value, or NULL and 0 when it has
 * none), in first-seen order; returns how many. */
uint64_t fs_state_latest_each_shadowed(const fs_state_latest *l, fs_state_restore_fn fn, void *ctx);

#endif
