/* state_topic.c -- naming, creating and restoring the state topic.
 *
 * See state_topic.h for the contract. How it is done, and why:
 *
 * Metadata. A partition count comes from a metadata request for all topics.
 * A request naming the topic would be shorter, but brokers with
 * auto.create.topics.enable (and librdkafka's mock cluster, always) create a
 * topic they are asked about: checking for the state topic would create it
 * with the broker's default partition count and without compaction.
 *
 * Creation. rd_kafka_CreateTopics with partitions = the input topic's count,
 * cleanup.policy=compact and replication factor -1 (the broker's
 * default.replication.factor; librdkafka 2.0.2 accepts -1, brokers since
 * 2.4 do). Two instances starting together may both try: the loser gets
 * TOPIC_ALREADY_EXISTS and checks the count like any existing topic.
 *
 * Restore. A reader of no group (fs_kafka_reader_new) reads the partition
 * with the simple consumer API (rd_kafka_consume_start): rd_kafka_assign
 * needs a group.id in librdkafka 2.0, and a group.id makes the client look
 * up a group coordinator it has no use for (and may not be authorised to).
 * It starts at offset 0, not at RD_KAFKA_OFFSET_BEGINNING: BEGINNING means
 * "the log start", so a partition whose beginning was deleted would be read
 * from wherever it now starts. At 0 such a partition answers "offset out of
 * range", which auto.offset.reset=error turns into an error. The watermark
 * query before it is for the common case's clear message (and to not start
 * a read that must fail); the out-of-range error covers deletion racing the
 * read.
 *
 * Records are served with rd_kafka_consume_callback, which hands over every
 * message already fetched per call (rd_kafka_consume_batch would wait for a
 * full batch, and with it for its whole timeout at the end of the
 * partition). The end is the PARTITION_EOF event (enable.partition.eof),
 * which under read_committed comes at the last stable offset.
 *
 * The last value per key. A partition may hold many records per key (the
 * topic is compacted lazily, the mock never compacts), so values are kept
 * in a map, not a list: fs_dict interns each key (xxh3, open addressing)
 * into a dense id in first-seen order, and two arrays indexed by id hold the
 * last value (one allocation, replaced in place) and its length, or DEAD
 * after a tombstone. A key that comes back after a tombstone keeps its id.
 * Nothing is handed to the caller before the end is reached: a restore that
 * fails half-way must not have applied half a state.
 */
#include "state_topic.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "kafka.h"
#include "log.h"
#include "state.h"
#include "util.h"

/* ---- naming ------------------------------------------------------------- */

static bool topic_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

/* Why `name` (n <= FS_TOPIC_NAME_MAX bytes) is not a valid topic name, or
 * NULL. */
static const char *invalid_topic(const char *name, size_t n)
{
    if (n == 0)
        return "it is empty";
    if (!strcmp(name, ".") || !strcmp(name, ".."))
        return "it is \".\" or \"..\"";
    for (size_t i = 0; i < n; i++)
        if (!topic_char(name[i]))
            return "a topic name has only ASCII letters, digits, '.', '_' and '-'";
    return NULL;
}

/* What is wrong with the name snprintf wrote into buf[len] (n: its
 * return), or NULL. */
static const char *name_problem(const char *buf, int n, size_t len)
{
    return n < 0                           ? "it cannot be formatted"
           : (size_t)n > FS_TOPIC_NAME_MAX ? "it is longer than 249 characters"
           : (size_t)n >= len              ? "it does not fit the buffer given"
                                           : invalid_topic(buf, (size_t)n);
}

/* "<group.id><suffix>" into buf. */
static int group_topic(const fs_config *cfg, const char *suffix, char *buf, size_t len)
{
    const char *group = cfg ? fs_kafka_user_property(cfg, "group.id") : NULL;
    return snprintf(buf, len, "%s%s", group ? group : "funnelstream", suffix);
}

int fs_state_topic_name(const fs_config *cfg, const char *configured, char *buf, size_t len,
                        char *err, size_t err_len)
{
    const char *from = configured ? "state.topic" : "kafka.group.id + \"-state\"";
    int n =
        configured ? snprintf(buf, len, "%s", configured) : group_topic(cfg, "-state", buf, len);
    const char *why = name_problem(buf, n, len);
    if (!why)
        return 0;
    const char *name = configured ? configured : buf; /* buf may be cut short */
    snprintf(err, err_len, "state topic name \"%.64s%s\" (from %s) is not valid: %s%s", name,
             strlen(name) > 64 ? "..." : "", from, why, configured ? "" : "; set state.topic");
    return -1;
}

/* ---- metadata and creation ---------------------------------------------- */

static int count_in(const struct rd_kafka_metadata *md, const char *topic, char *err,
                    size_t err_len)
{
    for (int i = 0; i < md->topic_cnt; i++) {
        const rd_kafka_metadata_topic_t *t = &md->topics[i];
        if (strcmp(t->topic, topic))
            continue;
        if (t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            return FS_TOPIC_MISSING;
        if (t->partition_cnt > 0)
            return t->partition_cnt;
        snprintf(err, err_len, "topic %s: %s", topic,
                 t->err ? rd_kafka_err2str(t->err) : "no partitions");
        return FS_TOPIC_ERROR;
    }
    return FS_TOPIC_MISSING;
}

int fs_kafka_partition_counts(rd_kafka_t *rk, const char *const *topics, int *counts, size_t n,
                              int timeout_ms, char *err, size_t err_len)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (e) {
        snprintf(err, err_len, "cannot read the metadata of topic %s: %s", n ? topics[0] : "-",
                 rd_kafka_err2str(e));
        for (size_t i = 0; i < n; i++)
            counts[i] = FS_TOPIC_ERROR;
        return -1;
    }
    bool erred = false;
    for (size_t i = 0; i < n; i++) {
        char why[512] = "";
        counts[i] = count_in(md, topics[i], why, sizeof why);
        if (counts[i] == FS_TOPIC_ERROR && !erred) {
            snprintf(err, err_len, "%s", why);
            erred = true;
        }
    }
    rd_kafka_metadata_destroy(md);
    return 0;
}

int fs_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, char *err,
                             size_t err_len)
{
    int n;
    fs_kafka_partition_counts(rk, &topic, &n, 1, timeout_ms, err, err_len);
    return n;
}

/* The CreateTopics result for our one topic: its error code, with the
 * broker's message in err. */
static rd_kafka_resp_err_t create_result(rd_kafka_event_t *ev, const char *topic, char *err,
                                         size_t err_len)
{
    rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
    if (e) {
        snprintf(err, err_len, "%s", rd_kafka_event_error_string(ev));
        return e;
    }
    size_t n = 0;
    const rd_kafka_topic_result_t **r =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rd_kafka_topic_result_name(r[i]), topic))
            continue;
        const char *msg = rd_kafka_topic_result_error_string(r[i]);
        e = rd_kafka_topic_result_error(r[i]);
        snprintf(err, err_len, "%s", msg && *msg ? msg : rd_kafka_err2str(e));
        return e;
    }
    snprintf(err, err_len, "the broker's answer does not name the topic");
    return RD_KAFKA_RESP_ERR__BAD_MSG;
}

/* Sends the CreateTopics request and waits for its answer. */
static rd_kafka_resp_err_t create_topic(rd_kafka_t *rk, const char *topic, int partitions,
                                        const char *policy, int timeout_ms, char *err,
                                        size_t err_len)
{
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, -1, err, err_len);
    if (!nt)
        return RD_KAFKA_RESP_ERR__INVALID_ARG;
    rd_kafka_resp_err_t e = rd_kafka_NewTopic_set_config(nt, "cleanup.policy", policy);
    if (!e) /* a partition's state record may be large (kafka.h) */
        e = rd_kafka_NewTopic_set_config(nt, "max.message.bytes", FS_KAFKA_MESSAGE_MAX);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    if (!e)
        e = rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, err, err_len);
    if (!e) {
        rd_kafka_CreateTopics(rk, &nt, 1, opt, q);
        /* the request times out by itself; the margin covers its queuing */
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
        e = ev ? create_result(ev, topic, err, err_len) : RD_KAFKA_RESP_ERR__TIMED_OUT;
        if (!ev)
            snprintf(err, err_len, "%s", rd_kafka_err2str(e));
        rd_kafka_event_destroy(ev); /* NULL is fine */
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_NewTopic_destroy(nt);
    return e;
}

static void wrong_count(const char *topic, int has, int partitions, char *err, size_t err_len)
{
    snprintf(err, err_len,
             "state topic %s has %d partitions, the input topic has %d: state partition P "
             "holds the state of input partition P, so the counts must match (was the input "
             "topic repartitioned? its state cannot follow; delete the state topic to start "
             "without state, or set state.topic to another one)",
             topic, has, partitions);
}

/* The answer of fs_kafka_partition_count (has, why) against `partitions`. */
static int check_count(const char *topic, int has, const char *why, int partitions, char *err,
                       size_t err_len)
{
    if (has == FS_TOPIC_ERROR)
        snprintf(err, err_len, "state topic: %s", why);
    else if (has == FS_TOPIC_MISSING) /* only after TOPIC_ALREADY_EXISTS */
        snprintf(err, err_len, "state topic %s exists, but the metadata does not list it yet",
                 topic);
    else if (has != partitions)
        wrong_count(topic, has, partitions, err, err_len);
    return has == partitions ? 0 : -1;
}

/* Creates the missing topic (`what`: "state" or "partials"): 0, 1
 * (another instance was first), or -1. */
static int create(rd_kafka_t *rk, const char *what, const char *topic, int partitions,
                  const char *policy, int timeout_ms, char *err, size_t err_len)
{
    char why[512];
    rd_kafka_resp_err_t e =
        create_topic(rk, topic, partitions, policy, timeout_ms, why, sizeof why);
    if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        return 1;
    if (e == RD_KAFKA_RESP_ERR__TIMED_OUT)
        snprintf(err, err_len,
                 "creating %s topic %s: no answer within %d ms (a dev broker cannot create "
                 "topics on request: it must be started with the topic)",
                 what, topic, timeout_ms);
    else if (e)
        snprintf(err, err_len, "creating %s topic %s (%d partitions, cleanup.policy=%s): %s", what,
                 topic, partitions, policy, why);
    else
        fs_log(FS_LOG_INFO, "topic created", "kind=%s topic=%s partitions=%d cleanup.policy=%s",
               what, topic, partitions, policy);
    return e ? -1 : 0;
}

int fs_state_topic_ensure(rd_kafka_t *rk, const char *topic, int partitions, int timeout_ms,
                          char *err, size_t err_len)
{
    char why[512] = "";
    int has = fs_kafka_partition_count(rk, topic, timeout_ms, why, sizeof why);
    if (has == FS_TOPIC_MISSING) {
        int rc = create(rk, "state", topic, partitions, "compact", timeout_ms, err, err_len);
        if (rc <= 0)
            return rc;
        has = fs_kafka_partition_count(rk, topic, timeout_ms, why, sizeof why);
    }
    return check_count(topic, has, why, partitions, err, err_len);
}

int fs_partials_topic_name(const fs_config *cfg, char *buf, size_t len, char *err, size_t err_len)
{
    const char *why = name_problem(buf, group_topic(cfg, "-partials", buf, len), len);
    if (!why)
        return 0;
    snprintf(err, err_len,
             "partials topic name (kafka.group.id + \"-partials\") is not valid: %s; choose "
             "another group.id",
             why);
    return -1;
}

int fs_partials_topic_ensure(rd_kafka_t *rk, const char *topic, int timeout_ms, char *err,
                             size_t err_len)
{
    char why[512] = "";
    int has = fs_kafka_partition_count(rk, topic, timeout_ms, why, sizeof why);
    if (has == FS_TOPIC_MISSING) {
        int rc = create(rk, "partials", topic, 1, "delete", timeout_ms, err, err_len);
        if (rc < 0)
            return -1;
        has = fs_kafka_partition_count(rk, topic, timeout_ms, why, sizeof why);
    }
    if (has == FS_TOPIC_ERROR || has == FS_TOPIC_MISSING) {
        snprintf(err, err_len, "partials topic %s: %s", topic,
                 has == FS_TOPIC_ERROR ? why : "the metadata does not list it yet");
        return -1;
    }
    if (has > 1)
        fs_log(FS_LOG_WARN, "partials topic has more than one partition",
               "topic=%s partitions=%d hint=\"only partition 0 is used: one instance merges\"",
               topic, has);
    return 0;
}

/* ---- the last value per key --------------------------------------------- */

#define DEAD UINT32_MAX /* the length of a removed key's value */

struct fs_state_latest {
    fs_dict keys;   /* key -> id, first-seen order */
    char **val;     /* by id: the last value, NULL when DEAD */
    uint32_t *len;  /* by id: its length, or DEAD */
    bool *shadow;   /* by id: the last record was skipped (fs_state_latest_shadow) */
    uint32_t cap;   /* of val, len and shadow */
    uint64_t alive; /* ids whose len is not DEAD */
};

fs_state_latest *fs_state_latest_new(void)
{
    fs_state_latest *l = fs_xcalloc(1, sizeof(*l));
    fs_dict_init(&l->keys);
    return l;
}

void fs_state_latest_free(fs_state_latest *l)
{
    if (!l)
        return;
    for (uint32_t i = 0; i < l->keys.count; i++)
        free(l->val[i]);
    free(l->val);
    free(l->len);
    free(l->shadow);
    fs_dict_free(&l->keys);
    free(l);
}

/* Makes room for id (ids come one more at a time). */
static void latest_room(fs_state_latest *l, uint32_t id)
{
    if (id < l->cap)
        return;
    l->cap = l->cap ? l->cap * 2 : 1024;
    l->val = fs_xrealloc(l->val, l->cap * sizeof(*l->val));
    l->len = fs_xrealloc(l->len, l->cap * sizeof(*l->len));
    l->shadow = fs_xrealloc(l->shadow, l->cap * sizeof(*l->shadow));
}

/* The id of key, a new one with no value when first seen. */
static uint32_t latest_id(fs_state_latest *l, const char *key, size_t key_len)
{
    uint32_t n = l->keys.count;
    uint32_t id = fs_dict_intern(&l->keys, key, key_len);
    if (id == n) {
        latest_room(l, id);
        l->val[id] = NULL;
        l->len[id] = DEAD;
        l->shadow[id] = false;
    }
    return id;
}

void fs_state_latest_shadow(fs_state_latest *l, const char *key, size_t key_len)
{
    uint32_t id = latest_id(l, key, key_len); /* before reading l->shadow: it may move */
    l->shadow[id] = true;
}

void fs_state_latest_put(fs_state_latest *l, const char *key, size_t key_len, const char *value,
                         size_t value_len)
{
    uint32_t id = latest_id(l, key, key_len);
    l->shadow[id] = false;
    bool was = l->len[id] != DEAD;
    if (!value) {
        free(l->val[id]);
        l->val[id] = NULL;
        l->len[id] = DEAD;
        l->alive -= was;
        return;
    }
    /* Kafka caps a record below 2 GiB, so a length never reaches DEAD */
    l->val[id] = fs_xrealloc(l->val[id], value_len ? value_len : 1);
    memcpy(l->val[id], value, value_len);
    l->len[id] = (uint32_t)value_len;
    l->alive += !was;
}

uint64_t fs_state_latest_count(const fs_state_latest *l)
{
    return l->alive;
}

uint64_t fs_state_latest_each(const fs_state_latest *l, fs_state_restore_fn fn, void *ctx)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < l->keys.count; i++) {
        if (l->len[i] == DEAD)
            continue;
        fn(ctx, fs_dict_name(&l->keys, i), fs_dict_len(&l->keys, i), l->val[i], l->len[i]);
        n++;
    }
    return n;
}

uint64_t fs_state_latest_each_shadowed(const fs_state_latest *l, fs_state_restore_fn fn, void *ctx)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < l->keys.count; i++) {
        if (!l->shadow[i])
            continue;
        bool live = l->len[i] != DEAD;
        fn(ctx, fs_dict_name(&l->keys, i), fs_dict_len(&l->keys, i), live ? l->val[i] : NULL,
           live ? l->len[i] : 0);
        n++;
    }
    return n;
}

/* ---- restore ------------------------------------------------------------ */

typedef struct restore {
    const char *topic;
    int32_t partition;
    fs_state_latest *latest;
    fs_state_restore_stats st;
    uint64_t upto; /* values of a later checkpoint are not restored */
    bool done;     /* the end was reached */
    bool failed;   /* err holds why */
    char *err;
    size_t err_len;
} restore;

static void beginning_deleted(restore *r, int64_t start)
{
    snprintf(r->err, r->err_len,
             "state topic %s partition %" PRId32 " begins at offset %" PRId64
             ": the records before it were deleted (retention? the dev broker keeps about 5 MiB "
             "per partition); restoring would lose state",
             r->topic, r->partition, start);
    r->failed = true;
}

/* One message or event of the reader, in offset order. */
static void on_message(rd_kafka_message_t *m, void *opaque)
{
    restore *r = opaque;
    if (r->done || r->failed)
        return; /* what was fetched after the end or an error */
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        r->st.end_offset = m->offset;
        r->done = true;
    } else if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
               m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
        /* deleted under the read: where the partition begins now is moot */
        snprintf(r->err, r->err_len,
                 "state topic %s partition %" PRId32
                 ": its records were deleted while being read (%s); restoring would lose state",
                 r->topic, r->partition, rd_kafka_message_errstr(m));
        r->failed = true;
    } else if (m->err) {
        snprintf(r->err, r->err_len,
                 "reading state topic %s partition %" PRId32 " at offset %" PRId64 ": %s", r->topic,
                 r->partition, m->offset, rd_kafka_message_errstr(m));
        r->failed = true;
    } else if (!m->key) {
        snprintf(r->err, r->err_len,
                 "state topic %s partition %" PRId32 " offset %" PRId64
                 ": a record without a key (not written by funnelstream)",
                 r->topic, r->partition, m->offset);
        r->failed = true;
    } else {
        r->st.records++;
        r->st.tombstones += !m->payload;
        r->st.bytes += m->key_len + m->len;
        uint64_t ckpt;
        if (m->payload && fs_state_peek_checkpoint(m->payload, m->len, &ckpt) == FS_STATE_OK) {
            if (ckpt > r->st.max_checkpoint)
                r->st.max_checkpoint = ckpt;
            if (ckpt > r->upto) {
                r->st.uncommitted++; /* a checkpoint that never committed */
                fs_state_latest_shadow(r->latest, m->key, m->key_len);
                return;
            }
        }
        fs_state_latest_put(r->latest, m->key, m->key_len, m->payload, m->len);
    }
}

static rd_kafka_t *reader_new(const fs_config *cfg, char *err, size_t err_len)
{
    static const char *const fixed[] = {
        "isolation.level",          "read_committed", /* SPEC §5: only committed state */
        "enable.partition.eof",     "true",           /* how the end is known */
        "auto.offset.reset",        "error",          /* never skip deleted records */
        "enable.auto.commit",       "false",          /* a reader has no offsets to keep */
        "enable.auto.offset.store", "false",
    };
    return fs_kafka_reader_new(cfg, "funnelstream-state-reader", fixed,
                               sizeof(fixed) / sizeof(*fixed) / 2, err, err_len);
}

/* Checks the partition begins at 0 (and exists). */
static int check_start(rd_kafka_t *rk, restore *r, int timeout_ms)
{
    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t e =
        rd_kafka_query_watermark_offsets(rk, r->topic, r->partition, &lo, &hi, timeout_ms);
    if (e) {
        snprintf(r->err, r->err_len,
                 "state topic %s partition %" PRId32 ": cannot read its offsets: %s", r->topic,
                 r->partition, rd_kafka_err2str(e));
        return -1;
    }
    if (lo > 0) {
        beginning_deleted(r, lo);
        return -1;
    }
    return 0;
}

/* Reads from offset 0 until the end, an error or a wait of timeout_ms. */
static int read_partition(rd_kafka_t *rk, restore *r, int timeout_ms)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, r->topic, NULL);
    if (!rkt || rd_kafka_consume_start(rkt, r->partition, 0) == -1) {
        snprintf(r->err, r->err_len, "state topic %s partition %" PRId32 ": cannot read it: %s",
                 r->topic, r->partition, rd_kafka_err2str(rd_kafka_last_error()));
        if (rkt)
            rd_kafka_topic_destroy(rkt);
        return -1;
    }
    while (!r->done && !r->failed) {
        int n = rd_kafka_consume_callback(rkt, r->partition, timeout_ms, on_message, r);
        if (n == 0 && !r->done) {
            snprintf(r->err, r->err_len,
                     "state topic %s partition %" PRId32 ": no record within %d ms after %" PRIu64
                     " records, before the end (is the broker up?)",
                     r->topic, r->partition, timeout_ms, r->st.records);
            r->failed = true;
        } else if (n < 0) {
            snprintf(r->err, r->err_len, "state topic %s partition %" PRId32 ": %s", r->topic,
                     r->partition, rd_kafka_err2str(rd_kafka_last_error()));
            r->failed = true;
        }
    }
    rd_kafka_consume_stop(rkt, r->partition);
    rd_kafka_topic_destroy(rkt);
    return r->failed ? -1 : 0;
}

int fs_state_topic_restore(const fs_config *cfg, const char *topic, int32_t partition,
                           int timeout_ms, fs_state_restore_fn fn, void *ctx,
                           fs_state_restore_stats *st, char *err, size_t err_len)
{
    return fs_state_topic_restore_upto(cfg, topic, partition, UINT64_MAX, timeout_ms, fn, NULL, ctx,
                                       st, err, err_len);
}

int fs_state_topic_restore_upto(const fs_config *cfg, const char *topic, int32_t partition,
                                uint64_t upto, int timeout_ms, fs_state_restore_fn fn,
                                fs_state_restore_fn shadowed, void *ctx, fs_state_restore_stats *st,
                                char *err, size_t err_len)
{
    uint64_t t0 = fs_now_ns();
    restore r = {
        .topic = topic, .partition = partition, .upto = upto, .err = err, .err_len = err_len};
    rd_kafka_t *rk = reader_new(cfg, err, err_len);
    if (!rk)
        return -1;
    r.latest = fs_state_latest_new();
    int rc = check_start(rk, &r, timeout_ms);
    if (rc == 0)
        rc = read_partition(rk, &r, timeout_ms);
    rd_kafka_destroy(rk);
    if (rc == 0) {
        r.st.live_keys = fs_state_latest_each(r.latest, fn, ctx);
        if (shadowed)
            r.st.shadowed = fs_state_latest_each_shadowed(r.latest, shadowed, ctx);
    }
    fs_state_latest_free(r.latest);
    r.st.seconds = (double)(fs_now_ns() - t0) / 1e9;
    if (st)
        *st = r.st;
    if (rc == 0)
        fs_log(FS_LOG_INFO, "state restored",
               "topic=%s partition=%" PRId32 " records=%" PRIu64 " keys=%" PRIu64 " bytes=%" PRIu64
               " seconds=%.3f",
               topic, partition, r.st.records, r.st.live_keys, r.st.bytes, r.st.seconds);
    return rc;
}
