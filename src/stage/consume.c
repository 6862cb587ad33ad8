/* consume.c -- the stage's input side (consume.h): Kafka messages into
 * engine batches, partition changes into the batch stream. */
#include "consume.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brokers.h"
#include "deliver.h"
#include "dict.h"
#include "log.h"
#include "state.h"
#include "state_topic.h"
#include "util.h"

#define CONSUME_ROUNDS 64 /* chunks per wake-up before yielding to the loop */

/* ---- batches ---------------------------------------------------------------- */

static fs_batch *open_batch(fs_stage *s)
{
    if (!s->open)
        s->open = fs_engine_batch_get(s->engine, s->cfg->input_format);
    return s->open;
}

typedef enum publish_how { PUBLISH_MORE, PUBLISH_LAST, PUBLISH_STOP } publish_how;

/* Publishes the open batch (an empty one if needed for LAST/STOP) and
 * records where every partition stands after it. */
static void publish(fs_stage *s, publish_how how)
{
    if (!s->open && how == PUBLISH_MORE)
        return;
    fs_batch *b = open_batch(s);
    uint64_t seq = b->seq; /* the slot may be recycled once published */
    s->open = NULL;
    if (how == PUBLISH_STOP)
        fs_engine_batch_publish_stop(s->engine, b);
    else
        fs_engine_batch_publish(s->engine, b, how == PUBLISH_LAST);
    fs_commit_batch(s->plan, seq, fs_part_table_next(&s->parts), s->parts.n);
}

/* Partition changes apply before the messages of their batch, so any
 * messages already gathered go out first. */
static void control(fs_stage *s, uint32_t part, fs_part_op op)
{
    if (s->open && s->open->n > 0)
        publish(s, PUBLISH_MORE);
    fs_batch_add_ctl(open_batch(s), part, op);
}

/* The open batch with room for `need` more bytes: the full one is published
 * first, unless it is empty (a message larger than a batch gets a batch of
 * its own). */
static fs_batch *batch_with_room(fs_stage *s, size_t need)
{
    fs_batch *b = open_batch(s);
    if (b->n > 0 && b->len + need > b->cap) {
        publish(s, PUBLISH_MORE);
        b = open_batch(s);
    }
    fs_batch_reserve(b, need);
    return b;
}

static int64_t log_start(fs_stage *s, const rd_kafka_message_t *m);

/* Partials deleted before the merge read them (retention, or the dev
 * broker's per-partition cap): the counts in them are gone, and the
 * windows waiting for them would wait for ever. Loud, not a hang. */
static bool partials_lost(fs_stage *s, const rd_kafka_message_t *m, int64_t expected)
{
    int64_t lo = log_start(s, m);
    if (lo <= expected)
        return false; /* a transaction marker, not a loss */
    if (s->exit_code)
        return true; /* said already: stopping */
    char msg[320];
    snprintf(msg, sizeof(msg),
             "partials lost: the partials topic's partition 0 now starts at offset %" PRId64
             ", the merge expected %" PRId64 "; their counts are gone and their windows could "
             "never be emitted. Give the partials topic more retention (size and time) than the "
             "merge can fall behind",
             lo, expected);
    fs_stage_fail(s, msg);
    return true;
}

/* A partial consumed from partition 0 of the partials topic: the sink's
 * merge takes it (merge.h). */
static void add_partial(fs_stage *s, const rd_kafka_message_t *m)
{
    fs_part *ps = fs_part_table_at(&s->parts, s->partials_index);
    if (ps->next >= 0 && m->offset > ps->next && partials_lost(s, m, ps->next))
        return;
    fs_batch *b = batch_with_room(s, m->len);
    if (m->len)
        memcpy(b->buf + b->len, m->payload, m->len);
    fs_batch_add_partial(b, (uint32_t)b->len, (uint32_t)m->len, (uint16_t)s->partials_index);
    b->len += m->len;
    fs_part_message(ps, m->offset, uv_now(&s->loop));
    s->partials_consumed++;
    if (fs_batch_full(b))
        publish(s, PUBLISH_MORE);
}

/* SPEC §1 asks producers to key each message by its customer_id: that is
 * what keeps a customer's events in one partition, in order. An unkeyed
 * message is still processed (its event may be perfectly valid), but
 * counted, and the first one is logged: results then depend on how the
 * producer spread the customer's events. */
static void note_unkeyed(fs_stage *s, const rd_kafka_message_t *m)
{
    if (!s->unkeyed++)
        fs_log(FS_LOG_WARN, "input message without a key",
               "partition=%" PRId32 " offset=%" PRId64
               " hint=\"key each message by its customer_id (SPEC §1): a customer whose events "
               "land in several partitions is counted as several; counted as "
               "funnelstream_unkeyed_messages_total\"",
               m->partition, m->offset);
}

/* Where the message's partition log starts, as of librdkafka's last fetch
 * (so asking costs nothing); -1 when unknown. */
static int64_t log_start(fs_stage *s, const rd_kafka_message_t *m)
{
    int64_t lo = -1, hi = -1;
    if (rd_kafka_get_watermark_offsets(s->consumer, rd_kafka_topic_name(m->rkt), m->partition, &lo,
                                       &hi) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    return lo;
}

/* A message beyond the offset expected. Offsets skip without loss at
 * transaction markers and where compaction removed records; messages are
 * lost only where the log now starts beyond the expected offset: retention
 * (or the dev broker's cap) deleted them before they were read, and
 * auto.offset.reset moved the consumer on. */
static void check_gap(fs_stage *s, const rd_kafka_message_t *m, int64_t expected)
{
    int64_t lo = log_start(s, m);
    if (lo <= expected)
        return;
    int64_t lost = (lo < m->offset ? lo : m->offset) - expected;
    s->offsets_skipped += (uint64_t)lost;
    fs_log(FS_LOG_ERROR, "input messages lost: deleted before they were read",
           "partition=%" PRId32 " expected_offset=%" PRId64 " log_start=%" PRId64 " lost=%" PRId64
           " hint=\"the input's retention (or the dev broker's per-partition cap) removed them; "
           "counted as funnelstream_input_offsets_skipped_total\"",
           m->partition, expected, lo, lost);
}

/* The first message of a partition the group never committed: if the log
 * no longer starts at 0, what was before was deleted before this group
 * read it. Normal on a topic with retention, so only said (once per
 * assignment), not counted as lost; with the dev broker it is the sign
 * that more was produced than it keeps. */
static void note_log_start(fs_stage *s, const rd_kafka_message_t *m)
{
    int64_t lo = log_start(s, m);
    if (lo <= 0)
        return;
    fs_log(FS_LOG_WARN, "input partition read from its log start, not from 0",
           "partition=%" PRId32 " log_start=%" PRId64 " hint=\"the %" PRId64
           " messages before it were deleted before this group read "
           "them (retention, or the dev broker's per-partition cap)\"",
           m->partition, lo, lo);
}

static void add_message(fs_stage *s, const rd_kafka_message_t *m)
{
    fs_part *ps = fs_part_table_at(&s->parts, (uint32_t)m->partition);
    if (ps->next >= 0 && m->offset > ps->next)
        check_gap(s, m, ps->next);
    else if (ps->next < 0 && m->offset > 0)
        note_log_start(s, m);
    size_t key_len = m->key ? m->key_len : 0, need = m->len + key_len;
    if (!key_len)
        note_unkeyed(s, m);
    fs_batch *b = batch_with_room(s, need);
    if (m->len)
        memcpy(b->buf + b->len, m->payload, m->len);
    if (key_len)
        memcpy(b->buf + b->len + m->len, m->key, key_len);
    fs_reject preset = m->len > FS_MAX_MESSAGE ? FS_REJECT_MALFORMED : FS_OK;
    fs_batch_add_keyed(b, (uint32_t)b->len, (uint32_t)m->len, (uint32_t)key_len,
                       (uint16_t)m->partition, preset);
    b->len += need;
    fs_part_message(ps, m->offset, uv_now(&s->loop));
    if (!s->consumed++)
        s->first_message_ns = fs_now_ns();
    s->consumed_bytes += m->len;
    if (fs_batch_full(b))
        publish(s, PUBLISH_MORE);
}

/* ---- ending ----------------------------------------------------------------- */

static void stop_consuming(fs_stage *s)
{
    uv_poll_stop(&s->consumer_watch);
    uv_idle_stop(&s->more);
}

static void end_input(fs_stage *s, publish_how how, const char *why)
{
    if (s->phase != FS_STAGE_RUNNING)
        return;
    double secs = s->consumed ? (double)(fs_now_ns() - s->first_message_ns) / 1e9 : 0;
    fs_log(FS_LOG_INFO, "input ends",
           "reason=\"%s\" consumed=%" PRIu64 " consume_s=%.3f events_per_s=%.0f", why, s->consumed,
           secs, secs > 0 ? (double)s->consumed / secs : 0.0);
    s->phase = FS_STAGE_ENDING;
    stop_consuming(s);
    publish(s, how);
}

/* The state as of everything consumed so far goes to the state topic: a
 * batch headed by a checkpoint, published now. Returns its seq. */
static uint64_t checkpoint(fs_stage *s)
{
    control(s, 0, FS_PART_CHECKPOINT);
    uint64_t seq = s->open->seq, id = s->next_checkpoint++;
    s->open->checkpoint_id = id;
    fs_deliver_checkpoint(s, seq, id);
    publish(s, PUBLISH_MORE);
    s->checkpoints++;
    return seq;
}

void fs_consume_checkpoint(fs_stage *s)
{
    if (s->phase == FS_STAGE_RUNNING)
        (void)checkpoint(s);
}

/* The input ends with a checkpoint of everything consumed (the last batch
 * carries it and no message), so that its offsets can be committed and a
 * restart goes on from there. Not after a failure: nothing more is
 * committed then. */
static void end_with_checkpoint(fs_stage *s, publish_how how, const char *why)
{
    if (s->phase != FS_STAGE_RUNNING)
        return;
    if (s->exit_code == 0) {
        publish(s, PUBLISH_MORE);
        uint64_t id = s->next_checkpoint++;
        fs_batch_add_checkpoint(open_batch(s), id);
        fs_deliver_checkpoint(s, s->open->seq, id);
        s->checkpoints++;
    }
    end_input(s, how, why);
}

void fs_consume_stop(fs_stage *s, const char *why)
{
    end_with_checkpoint(s, PUBLISH_STOP, why);
}

/* ---- consuming -------------------------------------------------------------- */

/* The partition index of a message's topic and partition; false for a
 * partition the stage does not read (partials beyond partition 0). */
static bool index_of(fs_stage *s, const rd_kafka_message_t *m, uint32_t *index)
{
    if (!m->rkt || m->partition < 0)
        return false;
    if (m->rkt != s->input_rkt && m->rkt != s->partials_rkt) {
        if (!strcmp(rd_kafka_topic_name(m->rkt), s->partials_topic))
            s->partials_rkt = m->rkt;
        else
            s->input_rkt = m->rkt;
    }
    if (m->rkt == s->partials_rkt) {
        *index = s->partials_index;
        return m->partition == 0;
    }
    if ((uint32_t)m->partition >= s->n_input) {
        fs_stage_fail(s, "the input topic has more partitions than when the stage started; "
                         "restart the stage (every instance of the group) to take them");
        return false;
    }
    *index = (uint32_t)m->partition;
    return true;
}

static void on_message(fs_stage *s, const rd_kafka_message_t *m)
{
    uint32_t index = 0;
    bool data = !m->err || m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
    if (data && !index_of(s, m, &index))
        return;
    if (!m->err) {
        if (index == s->partials_index)
            add_partial(s, m);
        else
            add_message(s, m);
        return;
    }
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        fs_part *ps = fs_part_table_at(&s->parts, index);
        /* its input is over: a partition's end is final under --until-eof */
        if (fs_part_reach_eof(ps) && s->until_eof && index != s->partials_index)
            control(s, index, FS_PART_END);
        return;
    }
    char msg[256];
    snprintf(msg, sizeof(msg), "%s%s%s", rd_kafka_err2str(m->err), m->len ? ": " : "",
             m->len ? (const char *)m->payload : "");
    if (m->err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        fs_brokers_down(s);
    if (m->err == RD_KAFKA_RESP_ERR__FATAL || m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
        m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
        m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
        fs_stage_fail(s, msg);
    else
        fs_log(FS_LOG_WARN, "consumer error", "error=\"%s\"", msg);
}

static void on_more(uv_idle_t *h);

/* ---- backpressure ----------------------------------------------------------- */

/* Whether message m can go into a batch without waiting for the engine:
 * the open batch has room for it, or an empty batch is free. */
static bool room_for(fs_stage *s, const rd_kafka_message_t *m)
{
    if (fs_engine_batch_ready(s->engine))
        return true;
    const fs_batch *b = s->open;
    size_t need = m->len + (m->key ? m->key_len : 0);
    return b && !fs_batch_full(b) && (b->n == 0 || b->len + need <= b->cap);
}

/* Pauses or resumes fetching for every partition assigned. */
static void set_fetching(fs_stage *s, bool on)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(s->consumer, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    rd_kafka_resp_err_t e = on ? rd_kafka_resume_partitions(s->consumer, parts)
                               : rd_kafka_pause_partitions(s->consumer, parts);
    if (e)
        fs_log(FS_LOG_WARN, on ? "cannot resume the input" : "cannot pause the input",
               "error=\"%s\"", rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(parts);
}

/* The engine is behind: every batch is in use. Rather than wait for one
 * (which would stall HTTP, delivery reports and timers with it), the
 * input stops: fetching pauses, the queue is left alone, and the message
 * in hand waits in `held`. The backlog then stays in Kafka, as lag. */
static void pause_input(fs_stage *s)
{
    if (s->input_paused)
        return;
    s->input_paused = true;
    s->input_pauses++;
    set_fetching(s, false);
    uv_poll_stop(&s->consumer_watch);
    uv_idle_stop(&s->more);
    fs_log(FS_LOG_DEBUG, "input paused: the engine is behind", "pauses=%" PRIu64, s->input_pauses);
}

void fs_consume_resume(fs_stage *s)
{
    if (!s->input_paused || s->phase != FS_STAGE_RUNNING || !fs_engine_batch_ready(s->engine))
        return;
    s->input_paused = false;
    /* a pause is not silence: no partition went idle while not read */
    uint64_t now = uv_now(&s->loop);
    for (uint32_t p = 0; p < s->parts.n; p++)
        if (s->parts.v[p].assigned && !s->parts.v[p].idle)
            s->parts.v[p].last_ms = now;
    set_fetching(s, true);
    fs_xcheck(uv_poll_start(&s->consumer_watch, UV_READABLE, s->consumer_ready), "uv_poll_start");
    fs_consume(s);
}

/* ---- the consumer queue ----------------------------------------------------- */

/* Messages taken from the queue and not handled yet: the batch in hand,
 * handled in order, possibly over several calls when the engine is behind. */
static bool handle_held(fs_stage *s)
{
    while (s->held_next < s->n_held) {
        rd_kafka_message_t *m = s->held[s->held_next];
        if (s->phase == FS_STAGE_RUNNING && !m->err && !room_for(s, m)) {
            pause_input(s);
            return false;
        }
        s->held_next++;
        if (s->phase == FS_STAGE_RUNNING)
            on_message(s, m);
        rd_kafka_message_destroy(m);
    }
    return true;
}

void fs_consume(fs_stage *s)
{
    if (s->input_paused)
        return;
    for (int round = 0; round < CONSUME_ROUNDS && s->phase == FS_STAGE_RUNNING; round++) {
        if (!handle_held(s))
            return;
        ssize_t n = rd_kafka_consume_batch_queue(s->consumer_q, 0, s->held, FS_CONSUME_CHUNK);
        s->n_held = n > 0 ? (size_t)n : 0;
        s->held_next = 0;
        if (!handle_held(s))
            return;
        if (n < FS_CONSUME_CHUNK) {
            uv_idle_stop(&s->more);
            if (s->phase != FS_STAGE_RUNNING)
                return;
            publish(s, PUBLISH_MORE); /* low rates: do not hold messages back */
            fs_consume_check_end(s);
            return;
        }
    }
    if (s->phase == FS_STAGE_RUNNING) {
        publish(s, PUBLISH_MORE);
        fs_xcheck(uv_idle_start(&s->more, on_more), "uv_idle_start");
    }
}

/* Messages still held at the end are dropped unread: nothing after the
 * stop is committed, so they are read again on the next start. */
void fs_consume_release(fs_stage *s)
{
    while (s->held_next < s->n_held)
        rd_kafka_message_destroy(s->held[s->held_next++]);
}

static void on_more(uv_idle_t *h)
{
    fs_consume(h->data);
}

/* --until-eof: the input partitions held are at their end (their
 * windows closed at +inf and went out as partials), and this instance
 * does not merge or its merge has every record out. */
void fs_consume_check_end(fs_stage *s)
{
    if (!s->until_eof || s->phase != FS_STAGE_RUNNING || !fs_part_table_all_at_eof(&s->parts))
        return;
    bool merges = s->partials_index < s->parts.n && s->parts.v[s->partials_index].assigned;
    if (merges && !s->merge_complete)
        return;
    end_with_checkpoint(s, PUBLISH_LAST, "every assigned partition is at its end");
}

/* ---- idleness --------------------------------------------------------------- */

void fs_consume_idle_check(fs_stage *s)
{
    if (s->phase != FS_STAGE_RUNNING || s->input_paused) /* paused: not read, not silent */
        return;
    uint64_t now = uv_now(&s->loop);
    bool changed = false;
    for (uint32_t p = 0; p < s->parts.n && p < s->n_input; p++) {
        if (fs_part_idle_due(&s->parts.v[p], now, (uint64_t)s->cfg->idle_timeout_ms)) {
            control(s, p, FS_PART_IDLE);
            changed = true;
            fs_log(FS_LOG_DEBUG, "partition idle", "partition=%" PRIu32, p);
        }
    }
    if (changed)
        publish(s, PUBLISH_MORE); /* the watermark may move now */
}

/* ---- rebalances (called from inside rd_kafka_consume_batch_queue) ------------ */

#define RESTORE_TIMEOUT_MS    60000
#define CHECKPOINT_TIMEOUT_MS 30000

/* A restore of an input partition takes every key of its state partition
 * but the merger's; the partials partition's takes the merger's alone
 * (state partition 0, key "m"). */
typedef struct restore_ctx {
    fs_stage *s;
    uint16_t part;
    bool merger;
    bool found; /* the merger's key was there */
} restore_ctx;

static uint32_t scratch_intern(void *ctx, const char *name, uint32_t len)
{
    return fs_dict_intern(ctx, name, len);
}

/* The merger's state is read here before the sink takes it, so that one it
 * cannot read stops the stage now (never a guess), as for the others. */
static bool merger_readable(fs_stage *s, const char *value, size_t len)
{
    uint32_t nf = (uint32_t)s->cfg->n_funnels;
    uint32_t *n_stages = fs_xmalloc((nf + 1) * sizeof(*n_stages));
    for (uint32_t f = 0; f < nf; f++)
        n_stages[f] = (uint32_t)s->cfg->funnels[f].n_stages;
    fs_dict names;
    fs_dict_init(&names);
    fs_state_labels l = {NULL, scratch_intern, &names};
    fs_state_merge m;
    char err[300], why[900];
    fs_state_err e = value ? fs_state_decode_merge(value, len, fs_state_config_hash(s->cfg), nf,
                                                   n_stages, &l, &m, err, sizeof err)
                           : FS_STATE_OK;
    if (value && e == FS_STATE_OK)
        fs_state_merge_free(&m, nf);
    fs_dict_free(&names);
    free(n_stages);
    if (e == FS_STATE_OK)
        return true;
    snprintf(why, sizeof why, "cannot restore the merger's state from state topic %s: %s",
             s->state_topic, err);
    fs_stage_fail(s, why);
    return false;
}

static bool wanted(const restore_ctx *r, const char *key, size_t key_len)
{
    const char *id;
    uint32_t id_len;
    bool merge_key = fs_state_key_parse(key, key_len, &id, &id_len) == FS_STATE_KEY_MERGE;
    return merge_key == r->merger;
}

static void restore_record(void *ctx, const char *key, size_t key_len, const char *value,
                           size_t value_len)
{
    restore_ctx *r = ctx;
    if (!wanted(r, key, key_len))
        return;
    if (r->merger) {
        r->found = true;
        if (!merger_readable(r->s, value, value_len))
            return;
    }
    fs_batch_add_restore(open_batch(r->s), r->part, key, key_len, value, value_len);
}

/* The key's last record belongs to a checkpoint that never committed; a
 * later commit would make it count. Written again, the key's last record
 * is what was restored (a committed value keeps its number; a tombstone
 * has none), whether or not the transaction it goes into commits. */
static void restore_shadowed(void *ctx, const char *key, size_t key_len, const char *value,
                             size_t value_len)
{
    restore_ctx *r = ctx;
    if (!wanted(r, key, key_len))
        return;
    fs_deliver_supersede(r->s, r->part, key, key_len, value, value_len);
}

/* Where the group's commit left partition p: the number of the checkpoint
 * committed with its offset (the commit's metadata; 0 when nothing was
 * committed) and the offset in *offset (-1: none). */
static uint64_t committed_position(fs_stage *s, uint32_t p, int64_t *offset)
{
    int32_t partition;
    const char *topic = fs_stage_topic_of(s, p, &partition);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition);
    uint64_t id = 0;
    *offset = -1;
    rd_kafka_resp_err_t e = rd_kafka_committed(s->consumer, l, RESTORE_TIMEOUT_MS);
    if (e)
        fs_log(FS_LOG_WARN, "committed offset unknown", "partition=%" PRIu32 " error=\"%s\"", p,
               rd_kafka_err2str(e));
    else if (l->elems[0].offset >= 0) {
        *offset = l->elems[0].offset;
        if (l->elems[0].metadata_size > 0 && l->elems[0].metadata_size < 24) {
            char text[24];
            memcpy(text, l->elems[0].metadata, l->elems[0].metadata_size);
            text[l->elems[0].metadata_size] = '\0';
            id = strtoull(text, NULL, 10);
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    return id;
}

/* Partition p's state, read from the state topic to its end (the values of
 * checkpoints up to the committed one), goes into the open batch after the
 * partition's assignment: the engine takes it up before any event of the
 * partition (snapshot.h). */
static void restore(fs_stage *s, uint32_t p)
{
    bool merger = p == s->partials_index;
    restore_ctx r = {s, (uint16_t)p, merger, false};
    fs_state_restore_stats st = {0};
    char err[512];
    int64_t offset;
    uint64_t t0 = fs_now_ns(), upto = committed_position(s, p, &offset);
    if (offset >= 0)
        fs_part_resume(fs_part_table_at(&s->parts, p), offset, upto);
    fs_log(FS_LOG_INFO, "partition state restoring", "partition=%" PRIu32 " checkpoint=%" PRIu64, p,
           upto);
    if (fs_state_topic_restore_upto(s->cfg, s->state_topic, merger ? 0 : (int32_t)p, upto,
                                    RESTORE_TIMEOUT_MS, restore_record, restore_shadowed, &r, &st,
                                    err, sizeof err) != 0) {
        fs_stage_fail(s, err);
        return;
    }
    if (merger && !r.found) /* no state yet: the sink merges from nothing */
        fs_batch_add_restore(open_batch(s), (uint16_t)p, "m", 1, NULL, 0);
    if (st.shadowed > 0 && !fs_deliver_await_superseded(s, RESTORE_TIMEOUT_MS))
        return;
    /* numbers only grow, past any written, committed or not */
    if (st.max_checkpoint >= s->next_checkpoint)
        s->next_checkpoint = st.max_checkpoint + 1;
    double secs = (double)(fs_now_ns() - t0) / 1e9;
    s->restored_keys += st.live_keys;
    s->restore_seconds += secs;
    s->restoring = true;
    s->restore_seq = s->open->seq;
    fs_log(FS_LOG_INFO, "partition state restored",
           "partition=%" PRIu32 " checkpoint=%" PRIu64 " records_read=%" PRIu64 " keys=%" PRIu64
           " uncommitted_skipped=%" PRIu64 " rewritten=%" PRIu64 " seconds=%.3f",
           p, upto, st.records, st.live_keys, st.uncommitted, st.shadowed, secs);
}

/* A partition leaves with its state written: a checkpoint of everything
 * consumed, waited for until it and every record before it are
 * acknowledged, then its offsets committed. Blocks the loop (the rebalance
 * waits for it anyway). */
static void checkpoint_before_revoke(fs_stage *s, const rd_kafka_topic_partition_list_t *parts)
{
    uint64_t seq = checkpoint(s);
    uint64_t deadline = fs_now_ns() + (uint64_t)CHECKPOINT_TIMEOUT_MS * 1000000u;
    while (!fs_commit_checkpoint_acked(s->plan, seq) && s->exit_code == 0) {
        if (fs_now_ns() > deadline) {
            fs_stage_fail(s, "the checkpoint before a revocation was not acknowledged in 30 s");
            return;
        }
        rd_kafka_poll(s->producer, 20); /* delivery reports into the inbox */
        fs_deliver_read(s);
    }
    fs_deliver_commit(s, true, parts);
}

/* The partition index of a partition of the assignment; false for one
 * the stage leaves alone (partials beyond partition 0) or cannot take. */
static bool assigned_index(fs_stage *s, const rd_kafka_topic_partition_t *tp, uint32_t *index)
{
    if (!strcmp(tp->topic, s->partials_topic)) {
        *index = s->partials_index;
        return tp->partition == 0;
    }
    if (tp->partition < 0 || (uint32_t)tp->partition >= s->n_input) {
        fs_stage_fail(s, "the input topic has more partitions than when the stage started; "
                         "restart the stage (every instance of the group) to take them");
        return false;
    }
    *index = (uint32_t)tp->partition;
    return true;
}

static void assigned(fs_stage *s, const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        uint32_t p;
        if (!assigned_index(s, &parts->elems[i], &p))
            continue;
        fs_part_table_assign(&s->parts, p, uv_now(&s->loop));
        fs_commit_forget(s->plan, p); /* consumption restarts from the commit */
        if (s->phase == FS_STAGE_RUNNING) {
            if (p != s->partials_index) /* the partials partition has no clock */
                control(s, p, FS_PART_ASSIGN);
            restore(s, p);
        }
        fs_log(FS_LOG_INFO, "partition assigned", "topic=%s partition=%" PRId32,
               parts->elems[i].topic, parts->elems[i].partition);
    }
}

/* Partitions leave with a checkpoint, unless they are lost already (the
 * session timed out: another member may hold them, and its restore must
 * not race our state) or no broker answers (the checkpoint could not be
 * acknowledged, and waiting for it would hold the loop for 30 s): then the
 * next owner restores the last committed checkpoint and reads on from
 * there, as after a crash. */
static bool checkpoint_possible(fs_stage *s)
{
    if (rd_kafka_assignment_lost(s->consumer)) {
        fs_log(FS_LOG_WARN, "partitions lost",
               "hint=\"no checkpoint before they go: the next "
               "owner goes on from the last committed one\"");
        return false;
    }
    return fs_brokers_down_ms(s) == 0;
}

static void revoked(fs_stage *s, const rd_kafka_topic_partition_list_t *parts)
{
    if (s->phase == FS_STAGE_RUNNING && checkpoint_possible(s))
        checkpoint_before_revoke(s, parts);
    for (int i = 0; i < parts->cnt; i++) {
        uint32_t p;
        if (strcmp(parts->elems[i].topic, s->partials_topic) &&
            (parts->elems[i].partition < 0 || (uint32_t)parts->elems[i].partition >= s->n_input))
            continue;
        if (!assigned_index(s, &parts->elems[i], &p) || !fs_part_table_revoke(&s->parts, p))
            continue;
        fs_commit_forget(s->plan, (uint32_t)p);
        if (s->phase == FS_STAGE_RUNNING)
            control(s, (uint32_t)p, FS_PART_REVOKE);
        fs_log(FS_LOG_INFO, "partition revoked", "topic=%s partition=%" PRId32,
               parts->elems[i].topic, parts->elems[i].partition);
    }
}

void fs_consume_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    fs_stage *s = opaque;
    s->rebalances++;
    bool cooperative = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
    fs_log(FS_LOG_INFO, "rebalance", "event=%s partitions=%d protocol=%s",
           err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? "assign" : "revoke", parts->cnt,
           cooperative ? "cooperative" : "eager");
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        s->ever_assigned = true;
        assigned(s, parts);
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            aerr = rd_kafka_assign(rk, parts);
    } else {
        revoked(s, parts);
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            aerr = rd_kafka_assign(rk, NULL);
    }
    if (error) {
        fs_log(FS_LOG_ERROR, "rebalance failed", "error=\"%s\"", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (aerr) {
        fs_log(FS_LOG_ERROR, "rebalance failed", "error=\"%s\"", rd_kafka_err2str(aerr));
    }
}
