/* deliver.c -- the stage's output side (deliver.h): records and dead
 * letters produced, their delivery reports through the inbox, offsets
 * committed when the commit plan allows. */
#include "deliver.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kafka.h"
#include "log.h"
#include "util.h"

/* A produced message's opaque, returned with its delivery report: its
 * number among its kind, shifted left, and the kind in the low bit; a
 * superseding state record (fs_deliver_supersede) has a tag of its own. */
enum { TAG_RECORD = 0, TAG_DEAD_LETTER = 1 };
#define TAG_SUPERSEDE UINTPTR_MAX

/* ---- from any thread to the loop ------------------------------------------- */

static void inbox_fail(fs_stage *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void inbox_fail(fs_stage *s, const char *fmt, ...)
{
    char why[FS_INBOX_FAILURE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    fs_inbox_post_failure(&s->in, why);
    uv_async_send(&s->wake);
}

void fs_deliver_report_from_any(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    fs_stage *s = opaque;
    uintptr_t tag = (uintptr_t)msg->_private;
    if (msg->err) {
        inbox_fail(s, "delivery to %s failed: %s", rd_kafka_topic_name(msg->rkt),
                   rd_kafka_err2str(msg->err));
        return;
    }
    if (tag == TAG_SUPERSEDE) {
        atomic_fetch_sub(&s->superseding, 1);
        return;
    }
    fs_inbox_post_ack(&s->in, tag);
    uv_async_send(&s->wake);
}

/* ---- engine output: records, dead letters and steps, from the sink thread --- */

/* The state topic partition of partition index `part`: the merger's state
 * (the partials partition's) lives in state partition 0 under its own key. */
static int32_t state_partition(const fs_stage *s, uint32_t part)
{
    return part == s->partials_index ? 0 : (int32_t)part;
}

int fs_deliver_write_from_sink(void *ctx, const char *key, size_t key_len, const char *value,
                               size_t value_len)
{
    fs_stage *s = ctx;
    uint64_t n = atomic_load_explicit(&s->records, memory_order_relaxed);
    rd_kafka_resp_err_t err =
        fs_kafka_produce(s->producer, s->cfg->output_topic, key, key_len, value, value_len, NULL, 0,
                         (void *)(uintptr_t)(n << 1 | TAG_RECORD));
    if (err) {
        inbox_fail(s, "producing a record to %s: %s", s->cfg->output_topic, rd_kafka_err2str(err));
        return -1;
    }
    atomic_store_explicit(&s->records, n + 1, memory_order_release);
    return 0;
}

/* State records count as records: a checkpoint is safe once they and
 * everything before them are acknowledged (commit.h). */
int fs_deliver_state_from_sink(void *ctx, uint32_t part, const char *key, size_t key_len,
                               const char *value, size_t value_len)
{
    fs_stage *s = ctx;
    uint64_t n = atomic_load_explicit(&s->records, memory_order_relaxed);
    rd_kafka_resp_err_t err =
        fs_kafka_produce_to(s->producer, s->state_topic, state_partition(s, part), key, key_len,
                            value, value_len, (void *)(uintptr_t)(n << 1 | TAG_RECORD));
    if (err) {
        inbox_fail(s, "producing a state record to %s: %s", s->state_topic, rd_kafka_err2str(err));
        return -1;
    }
    atomic_fetch_add_explicit(&s->state_records, 1, memory_order_relaxed);
    atomic_store_explicit(&s->records, n + 1, memory_order_release);
    if (s->state_bytes && part <= s->partials_index) {
        atomic_fetch_add_explicit(&s->state_bytes[part], key_len + value_len, memory_order_relaxed);
        if (key_len == 1 && key[0] == 'p')
            atomic_store_explicit(&s->record_bytes[part], value_len, memory_order_relaxed);
    }
    return 0;
}

/* Partials count as records too: a checkpoint's offsets commit only once
 * the partials it made are acknowledged. All go to partition 0. */
int fs_deliver_partial_from_sink(void *ctx, uint32_t part, const char *key, size_t key_len,
                                 const char *value, size_t value_len)
{
    (void)part;
    fs_stage *s = ctx;
    uint64_t n = atomic_load_explicit(&s->records, memory_order_relaxed);
    rd_kafka_resp_err_t err =
        fs_kafka_produce_to(s->producer, s->partials_topic, 0, key, key_len, value, value_len,
                            (void *)(uintptr_t)(n << 1 | TAG_RECORD));
    if (err) {
        inbox_fail(s, "producing a partial to %s: %s", s->partials_topic, rd_kafka_err2str(err));
        return -1;
    }
    atomic_store_explicit(&s->records, n + 1, memory_order_release);
    return 0;
}

/* ---- exactly_once: one transaction per checkpoint, on the sink thread ------ */

/* A transaction call waits for the broker as long as the stage waits for a
 * broker anywhere (broker_timeout), so a stop never waits longer on it. */
static int txn_timeout(const fs_stage *s)
{
    return (int)s->cfg->broker_timeout_ms;
}

/* The offsets of the checkpoint heading batch seq (NULL: none recorded). */
static rd_kafka_topic_partition_list_t *take_offsets(fs_stage *s, uint64_t seq)
{
    rd_kafka_topic_partition_list_t *found = NULL;
    pthread_mutex_lock(&s->ckpt_lock);
    fs_ckpt_offsets *c;
    while ((c = fs_fifo_front(&s->ckpt_offsets)) && c->seq <= seq) {
        if (c->seq == seq)
            found = c->offsets;
        else
            rd_kafka_topic_partition_list_destroy(c->offsets);
        fs_fifo_pop(&s->ckpt_offsets);
    }
    pthread_mutex_unlock(&s->ckpt_lock);
    return found;
}

/* Says what went wrong with a transaction and what it means; false. */
static bool txn_failed(fs_stage *s, const char *what, rd_kafka_error_t *error)
{
    if (rd_kafka_error_txn_requires_abort(error)) {
        rd_kafka_error_t *e2 = rd_kafka_abort_transaction(s->producer, txn_timeout(s));
        inbox_fail(s,
                   "%s: %s; the transaction was aborted%s: a restart goes on from the last "
                   "committed checkpoint",
                   what, rd_kafka_error_string(error), e2 ? " (abort failed too)" : "");
        if (e2)
            rd_kafka_error_destroy(e2);
    } else if (rd_kafka_error_is_fatal(error)) {
        inbox_fail(s,
                   "%s: %s (fatal: another instance with the same transactional.id took over, "
                   "or the broker refused the transaction; check transactional.id and "
                   "transaction.max.timeout.ms)",
                   what, rd_kafka_error_string(error));
    } else {
        inbox_fail(s, "%s: %s", what, rd_kafka_error_string(error));
    }
    rd_kafka_error_destroy(error);
    return false;
}

/* Commits the open transaction, with offsets (may be NULL) sent to it, and
 * opens the next one unless the output ends. */
static bool txn_commit(fs_stage *s, rd_kafka_topic_partition_list_t *offsets, bool begin_next)
{
    rd_kafka_error_t *error = NULL;
    if (offsets && offsets->cnt > 0) {
        rd_kafka_consumer_group_metadata_t *meta = rd_kafka_consumer_group_metadata(s->consumer);
        error = rd_kafka_send_offsets_to_transaction(s->producer, offsets, meta, txn_timeout(s));
        rd_kafka_consumer_group_metadata_destroy(meta);
        if (error)
            return txn_failed(s, "sending offsets to the transaction", error);
    }
    if ((error = rd_kafka_commit_transaction(s->producer, txn_timeout(s))))
        return txn_failed(s, "committing the transaction", error);
    if (begin_next && (error = rd_kafka_begin_transaction(s->producer)))
        return txn_failed(s, "beginning a transaction", error);
    return true;
}

/* The sink thread at the end of a step: a checkpoint's transaction (its
 * records, state and offsets) commits here, and at the end of a finished
 * input the last one (the windows closed at +inf). An abandoned input
 * leaves its transaction to finish(), which aborts it: a clean stop put
 * everything in its last checkpoint, and after a failure nothing more may
 * commit. */
static void txn_step(fs_stage *s, const fs_step_info *info)
{
    if (!s->transactional || atomic_load(&s->txn_broken) || info->stopped)
        return;
    bool last = info->final;
    if (!info->checkpoint && !last)
        return;
    rd_kafka_topic_partition_list_t *offsets =
        info->checkpoint ? take_offsets(s, info->src_seq) : NULL;
    if (!txn_commit(s, offsets, !last))
        atomic_store(&s->txn_broken, true);
    if (offsets)
        rd_kafka_topic_partition_list_destroy(offsets);
}

void fs_deliver_step_from_sink(void *ctx, const fs_step_info *info)
{
    fs_stage *s = ctx;
    txn_step(s, info); /* before the loop learns of the step: it is committed then */
    fs_inbox_step st = {.src_ns = info->src_ns, .merge_complete = info->merge_complete};
    st.step = (fs_commit_step){
        .records_end = atomic_load_explicit(&s->records, memory_order_acquire),
        .dead_letters_end = info->src_mark,
        .src_seq = info->src_seq,
        .wm = info->wm,
        .max_ts = info->max_ts,
        .final = info->final && !info->stopped,
        .stopped = info->stopped,
        .checkpoint = info->checkpoint,
        .checkpoint_id = info->checkpoint_id,
    };
    fs_inbox_post_step(&s->in, &st);
    uv_async_send(&s->wake);
}

/* A dead letter the producer would refuse (message.max.bytes) is cut to
 * fit, and its headers say so; one it refuses anyway goes out with its
 * reason alone. A poison pill must never stop the stage (SPEC §1: processing
 * goes on), and every rejected message still leaves a trace. */
void fs_deliver_dead_letter_from_sink(void *ctx, const fs_dead_letter *dl)
{
    fs_stage *s = ctx;
    char part[16], size[24];
    snprintf(part, sizeof(part), "%" PRIu32, dl->part);
    snprintf(size, sizeof(size), "%zu", dl->value_len);
    const char *headers[] = {"reason",           fs_reject_name(dl->reason),
                             "source.topic",     s->cfg->input_topic,
                             "source.partition", part,
                             "truncated",        "true",
                             "original.size",    size};
    size_t key_len = dl->key_len, value_len = dl->value_len, max = s->dead_letter_max;
    bool cut = key_len + value_len > max;
    if (cut) {
        key_len = key_len > max / 2 ? 0 : key_len;
        value_len = value_len > max - key_len ? max - key_len : value_len;
    }
    void *opaque = (void *)(uintptr_t)(s->dead_letters << 1 | TAG_DEAD_LETTER);
    const char *topic = s->cfg->dead_letter_topic;
    rd_kafka_resp_err_t err = fs_kafka_produce(s->producer, topic, dl->key, key_len, dl->value,
                                               value_len, headers, cut ? 5 : 3, opaque);
    if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
        cut = true;
        err = fs_kafka_produce(s->producer, topic, NULL, 0, NULL, 0, headers, 5, opaque);
    }
    if (cut)
        atomic_fetch_add_explicit(&s->dead_letters_cut, 1, memory_order_relaxed);
    if (err)
        inbox_fail(s, "producing a dead letter to %s: %s", topic, rd_kafka_err2str(err));
    s->dead_letters++; /* numbered even when it failed: the sink counts every call */
}

/* ---- on the loop ------------------------------------------------------------ */

void fs_deliver_poll(fs_stage *s)
{
    while (rd_kafka_poll(s->producer, 0) > 0)
        ;
}

void fs_deliver_read(fs_stage *s)
{
    fs_inbox_mail m;
    fs_inbox_take(&s->in, &m);
    for (size_t i = 0; i < m.n_acks; i++) {
        if ((m.acks[i] & 1) == TAG_RECORD) {
            fs_commit_record_acked(s->plan, m.acks[i] >> 1);
            s->acked_records++;
        } else {
            fs_commit_dead_letter_acked(s->plan, m.acks[i] >> 1);
            s->acked_dead_letters++;
        }
    }
    for (size_t i = 0; i < m.n_steps; i++) {
        const fs_commit_step *st = &m.steps[i].step;
        if (!st->stopped)
            fs_commit_step_done(s->plan, st);
        fs_ack_latency_push(&s->latency, st->records_end, m.steps[i].src_ns);
        if (st->final || st->stopped)
            s->sink_done = true;
        s->merge_complete = m.steps[i].merge_complete;
    }
    fs_ack_latency_settle(&s->latency, fs_commit_records_acked(s->plan), fs_now_ns());
    if (m.failed && s->exit_code == 0)
        fs_stage_fail(s, m.failure);
    fs_inbox_mail_free(&m);
}

/* An offset to commit, with the number of the checkpoint whose state it
 * goes with as its metadata: a restore keeps no state of a later one. */
static void set_offset(fs_stage *s, rd_kafka_topic_partition_list_t *list, uint32_t p,
                       int64_t offset, uint64_t checkpoint)
{
    int32_t partition;
    const char *topic = fs_stage_topic_of(s, p, &partition);
    rd_kafka_topic_partition_t *e = rd_kafka_topic_partition_list_add(list, topic, partition);
    e->offset = offset;
    char text[24];
    int n = snprintf(text, sizeof text, "%" PRIu64, checkpoint);
    e->metadata = fs_xmalloc((size_t)n + 1);
    memcpy(e->metadata, text, (size_t)n + 1);
    e->metadata_size = (size_t)n;
}

void fs_deliver_checkpoint(fs_stage *s, uint64_t seq, uint64_t id)
{
    if (!s->transactional)
        return;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
    for (uint32_t p = 0; p < s->parts.n; p++)
        if (s->parts.v[p].assigned && s->parts.v[p].next >= 0)
            set_offset(s, list, p, s->parts.v[p].next, id);
    pthread_mutex_lock(&s->ckpt_lock);
    *(fs_ckpt_offsets *)fs_fifo_push(&s->ckpt_offsets) = (fs_ckpt_offsets){seq, list};
    pthread_mutex_unlock(&s->ckpt_lock);
}

void fs_deliver_commit(fs_stage *s, bool sync, const rd_kafka_topic_partition_list_t *only)
{
    /* After a failure nothing more is committed. Under exactly_once the
     * transaction has carried these offsets already; committing them again
     * (same offsets, same checkpoint) keeps brokers that ignore offsets sent
     * to transactions (librdkafka 2.0.2's mock cluster) from re-reading. */
    if (s->exit_code != 0)
        return;
    uint32_t n;
    const int64_t *safe = fs_commit_safe(s->plan, &n);
    uint64_t checkpoint = fs_commit_safe_checkpoint(s->plan);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
    for (uint32_t p = 0; p < n && p < s->parts.n; p++) {
        const fs_part *ps = &s->parts.v[p];
        if (safe[p] < 0 || safe[p] < ps->committed || !ps->assigned)
            continue;
        if (safe[p] == ps->committed && checkpoint == ps->committed_checkpoint)
            continue; /* committed as it is */
        int32_t partition;
        const char *topic = fs_stage_topic_of(s, p, &partition);
        if (only && !rd_kafka_topic_partition_list_find(only, topic, partition))
            continue;
        set_offset(s, list, p, safe[p], checkpoint);
    }
    if (list->cnt > 0) {
        rd_kafka_resp_err_t err = rd_kafka_commit(s->consumer, list, !sync);
        if (err) {
            fs_log(FS_LOG_WARN, "offset commit failed", "error=\"%s\"", rd_kafka_err2str(err));
        } else {
            for (int i = 0; i < list->cnt; i++) {
                bool partials = !strcmp(list->elems[i].topic, s->partials_topic);
                fs_part *ps =
                    &s->parts.v[partials ? s->partials_index : (uint32_t)list->elems[i].partition];
                ps->committed = list->elems[i].offset;
                ps->committed_checkpoint = checkpoint;
                fs_log(FS_LOG_DEBUG, "offset committed",
                       "partition=%" PRId32 " offset=%" PRId64 " checkpoint=%" PRIu64,
                       list->elems[i].partition, list->elems[i].offset, checkpoint);
            }
            s->commits++;
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
}

void fs_deliver_commit_tick(fs_stage *s)
{
    if (s->phase == FS_STAGE_RUNNING)
        fs_deliver_commit(s, false, NULL);
}

void fs_deliver_supersede(fs_stage *s, uint32_t part, const char *key, size_t key_len,
                          const char *value, size_t value_len)
{
    atomic_fetch_add(&s->superseding, 1);
    rd_kafka_resp_err_t err =
        fs_kafka_produce_to(s->producer, s->state_topic, state_partition(s, part), key, key_len,
                            value, value_len, (void *)(uintptr_t)TAG_SUPERSEDE);
    if (err) {
        atomic_fetch_sub(&s->superseding, 1);
        fs_stage_fail(s, "producing a state record again after a restore failed");
    }
}

bool fs_deliver_await_superseded(fs_stage *s, int timeout_ms)
{
    uint64_t deadline = fs_now_ns() + (uint64_t)timeout_ms * 1000000u;
    while (atomic_load(&s->superseding) > 0 && s->exit_code == 0) {
        if (fs_now_ns() > deadline) {
            fs_stage_fail(s, "state records written again after a restore were not acknowledged");
            return false;
        }
        rd_kafka_poll(s->producer, 20); /* delivery reports; others go to the inbox */
        fs_deliver_read(s);
    }
    return s->exit_code == 0;
}
