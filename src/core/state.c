/* state.c -- the records of the state (changelog) topic (see state.h).
 *
 * ---------------------------------------------------------------------------
 * Byte layout, format version 1
 * ---------------------------------------------------------------------------
 *
 * Keys are plain bytes. Values are MessagePack, written as a *sequence* of
 * objects one after the other (no enclosing array) whose first object is the
 * format version, a non-negative integer:
 *
 *     <version> <the rest, as that version defines it>
 *
 * so a reader learns the version before it has to understand anything else,
 * and a later version is free to change everything after it. This file
 * writes and reads version 1 (FS_STATE_VERSION); a value of any other
 * version is FS_STATE_EVERSION. No byte may follow a value's last object.
 *
 * In version 1 the second object of every value, customer or partition, is
 * the checkpoint number: a uint, the number of the checkpoint that wrote the
 * value (fs_state_peek_checkpoint reads the version and it, nothing more). A
 * checkpoint's records commit together with its input offsets, so a restore
 * keeps, per key, the last value whose checkpoint is at or below the
 * committed one and ignores the records of a checkpoint that never
 * committed (state.h).
 *
 * Notation: [a, b] is a MessagePack array; x* is zero or more x (flattened
 * into the enclosing array or sequence); `a|b` is either; S is the number of
 * stages of the funnel in question; "int" is any MessagePack integer (the
 * writer uses msgpack-c's shortest form: 0..127 take one byte, a millisecond
 * timestamp nine; the reader accepts every integer form whose value is in
 * range); "name" is a MessagePack str. There are no maps, floats or bins.
 *
 * Customer record (one per customer with an active journey, or gone)
 *
 *     key    "c" <customer id>          the id: 1..FS_MAX_CUSTOMER_ID bytes of UTF-8
 *     value  1 checkpoint <journey>*    journeys ascending by funnel, one per funnel at most
 *
 *     checkpoint  uint64, the checkpoint number (above)
 *     journey = [funnel, start_ts, max_stage, [<channel name, count>*],
 *                <stage_ts, reached, [<campaign name, count>*]>?]
 *         funnel     index in the config, < the number of funnels
 *         start_ts   int64, ms
 *         max_stage  < S
 *         the 4th array: the touch counts in first-touch order, flattened
 *         (channel, count, channel, count, ...), at most FS_STATE_MAX_TOUCHES
 *         pairs; a channel is a label name (UTF-8, at most FS_MAX_LABEL bytes)
 *         the last three, only for a journey with any of them (funnel.h,
 *         the record's extension; older writers never wrote them):
 *         stage_ts   int64, when max_stage was reached; INT64_MIN unknown
 *         reached    unordered mode: bit s for stage s reached (as many bits
 *                    as max_stage + 1), else 0; below 2^S
 *         the last array: campaign touches, flattened like the channel
 *         touches: the first campaign first, the one touched last second
 *         (journey_table.c), the rest in no meaningful order; restored in
 *         this order
 *
 *   A value without journeys, `1 checkpoint` alone, is a removal mark: the
 *   customer is gone, its last journey ended in that checkpoint (a soft
 *   tombstone: a null one could not say which checkpoint removed it).
 *
 *   A customer "u-12345678" in funnel 0 since 1714000000000, at stage 1,
 *   touched by "ads" once and "email" twice, written by checkpoint 100000
 *   (some 28 hours into a run at the default commit_interval of 1 s), takes
 *   11 + 31 = 42 bytes (the checkpoint number takes 1 byte up to 127, at
 *   most 5 up to 2^32 - 1, 9 beyond):
 *
 *     key    63 75 2d 31 32 33 34 35 36 37 38          "c" "u-12345678"
 *     value  01                                        version 1
 *            ce 00 01 86 a0                            checkpoint 100000 (uint32)
 *            94                                        journey, array of 4:
 *               00                                       funnel 0
 *               cf 00 00 01 8f 12 5c 74 00               start_ts (uint64)
 *               01                                       max_stage 1
 *               94 a3 61 64 73 01 a5 65 6d 61 69 6c 02   ["ads", 1, "email", 2]
 *
 * Partition record (one per input partition)
 *
 *     key    "p"
 *     value  1 checkpoint config_hash seen max_ts instance_wm closed_upto
 *            [<slot>*]       panes    ascending by start, no start twice
 *            [<slot>*]       extras   ascending by start, no start twice
 *            [<slot>*]       parked   ascending by start, no start twice
 *            [<cohort>*]     cohorts  ascending by (funnel, pane, start), no key twice
 *         checkpoint   uint64, the checkpoint number (above)
 *         config_hash  uint64, fs_state_config_hash of the writer's config;
 *                      checked right after the version and checkpoint
 *                      (FS_STATE_ECONFIG)
 *         seen         bool; max_ts, instance_wm, closed_upto: int64, written
 *                      whatever seen is. fs_state_decode_clock reads the
 *                      value up to instance_wm and no further
 *
 * Partial record (topic <group.id>-partials, merge.h; not state)
 *
 *     key    the input partition, decimal text
 *     value  1 0 config_hash part n_parts wm idle [<slot>*] [events*] [<cohort>*]
 *         0            in place of the checkpoint number: a partial is no
 *                      checkpoint's
 *         part         the input partition, < FS_STATE_MAX_PARTS
 *         n_parts      input partitions the writer knows of (0: unknown)
 *         wm           int64, the partition's watermark (INT64_MIN: none)
 *         idle         bool
 *         slots        windows closed for the partition since its last
 *                      partial, ascending by start, no start twice
 *         events       n_slots x n_funnels uint64, slot-major: the events
 *                      counted in each window's newest pane, per funnel
 *         cohorts      cumulative counts of the partition's cohorts that
 *                      changed, pane always false
 *
 * Merger record (one per partials partition, in the state topic)
 *
 *     key    "m"
 *     value  1 checkpoint config_hash n_parts have_emitted emitted
 *            [<[part, wm, idle]>*]     clocks, ascending part
 *            [<slot>*]                 pending windows, ascending by start
 *            [<part, [<cohort>*]>*]    cohorts per input partition, ascending
 *                                      part, flattened pairs
 *
 *     slot   = [start, rejected, <flow|nil>*]
 *         one flow or nil per funnel, in config order (n_funnels of them)
 *     flow   = [[entered*, reached*, skipped*, abandoned*, excluded*, evicted*],
 *               completed, late_events, <fixed revenue>, <sketch ttc>,
 *               [<label>*] channels, [<label>*] segments,
 *               <[<sketch>*] stage times, [<label>*] campaigns>?]
 *         the last two only when the flow has stage times or campaigns
 *         (older writers never wrote them): stage times none or S - 1
 *         the first array: 6 x S uint64, the flow's counter block as it is
 *         in memory, or 5 x S without evicted* when those are all zero
 *         (always without limits: the bytes of older versions, which a
 *         reader takes with evicted zero); labels in the map's insertion
 *         order, no name twice
 *     label  = [name, completed, first_touch, last_touch, <fixed linear>, reached*]
 *         S reached counters
 *     fixed  = [<i128 whole>, frac]                value whole + frac / 2^64
 *     i128   = int                                 when it fits int64
 *            | [hi, lo]                            hi int64, lo uint64: hi * 2^64 + lo
 *     sketch = [mode, min, max, <i128 sum>, lo, hi, [values]]
 *         min, max: int64, as they are (after a subtraction the caller's);
 *         lo <= hi <= fs_sketch_n_buckets(): the occupied bucket range;
 *         sum in [0, count x INT64_MAX] (values are non-negative int64)
 *         mode 0, few values without a counter array (buckets == NULL):
 *           values = the `few` bucket indices in their order, at most
 *           FS_SKETCH_FEW, each in [lo, hi); count = how many
 *         mode 1, counter array: values = [gap, n, gap, n, ...], the
 *           non-zero counters of [lo, hi) ascending: the first sits `gap`
 *           buckets after lo, each next one `gap` buckets after the bucket
 *           following the previous; n its value; count = the sum of the n.
 *           An array of zeros (a sketch subtracted to empty) is [].
 *         Both modes keep lo and hi as they were, so a sketch read back
 *         answers, merges and subtracts exactly as the one written.
 *     cohort = [funnel, pane, start, started, completed, reached*]
 *         pane bool; S reached counters; `dirty` is the sink's, not written
 *
 * Config hash: XXH3_64bits (seed 0) over the MessagePack sequence
 *     window_size_ms window_hop_ms max_out_of_orderness_ms [<funnel>*]
 *     funnel = [name, mode, conversion_window_ms, [<[stage name, [event type*]]>*],
 *               <options>?]
 *     mode: 0 open, 1 strict, 2 unordered (fs_mode)
 *     options = [optional, breakdowns, stage_time], only when one differs from
 *         its default: optional a bit mask (bit s: stage s), breakdowns the
 *         FS_BREAKDOWN_* bits, stage_time 0 or 1
 * (MessagePack is self-delimiting, so different configs cannot serialize
 * to the same bytes by shifting a boundary between two names.)
 *
 * Reading: a hand-written reader over the bytes, not msgpack_unpack, which
 * would allocate a whole array's objects on the word of its header. Every
 * count is checked against the bytes left (each element takes at least one
 * byte) before anything is allocated for it, so allocation is linear in the
 * value's size (the largest factor: a counter-mode sketch, whose array is
 * fs_sketch_n_buckets() counters whatever the few bytes that ask for it).
 */
#include "state.h"

#include <assert.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "event.h"
#include "utf8.h"
#include "util.h"

enum { SKETCH_FEW = 0, SKETCH_COUNTERS = 1 };

/* ===== writing ============================================================ */

typedef struct wr {
    msgpack_packer pk;
    const fs_state_labels *l;
} wr;

static int pack_write(void *data, const char *buf, size_t len)
{
    fs_buf_put(data, buf, len);
    return 0;
}

static void w_init(wr *w, fs_buf *out, const fs_state_labels *l)
{
    msgpack_packer_init(&w->pk, out, pack_write);
    w->l = l;
}

static void w_u64(wr *w, uint64_t v)
{
    msgpack_pack_uint64(&w->pk, v);
}

static void w_i64(wr *w, int64_t v)
{
    msgpack_pack_int64(&w->pk, v);
}

static void w_bool(wr *w, bool v)
{
    if (v)
        msgpack_pack_true(&w->pk);
    else
        msgpack_pack_false(&w->pk);
}

static void w_array(wr *w, size_t n)
{
    msgpack_pack_array(&w->pk, n);
}

static void w_str(wr *w, const char *s, size_t len)
{
    msgpack_pack_str(&w->pk, len);
    msgpack_pack_str_body(&w->pk, s, len);
}

static void w_label(wr *w, uint32_t label)
{
    uint32_t len = 0;
    const char *name = w->l->name(w->l->ctx, label, &len);
    w_str(w, name, len);
}

static void w_i128(wr *w, __int128 v)
{
    if (v >= INT64_MIN && v <= INT64_MAX) {
        w_i64(w, (int64_t)v);
        return;
    }
    w_array(w, 2);
    w_i64(w, (int64_t)(v >> 64));
    w_u64(w, (uint64_t)v);
}

static void w_fixed(wr *w, fs_fixed f)
{
    w_array(w, 2);
    w_i128(w, f.whole);
    w_u64(w, f.frac);
}

/* The non-zero counters of [lo, hi) as (gap, count) pairs. */
static void w_counters(wr *w, const fs_sketch *s)
{
    uint32_t nonzero = 0;
    for (uint32_t i = s->lo; i < s->hi; i++)
        nonzero += s->buckets[i] != 0;
    w_array(w, 2 * (size_t)nonzero);
    uint32_t next = s->lo;
    for (uint32_t i = s->lo; i < s->hi; i++) {
        if (!s->buckets[i])
            continue;
        w_u64(w, i - next);
        w_u64(w, s->buckets[i]);
        next = i + 1;
    }
}

static void w_sketch(wr *w, const fs_sketch *s)
{
    w_array(w, 7);
    w_u64(w, s->buckets ? SKETCH_COUNTERS : SKETCH_FEW);
    w_i64(w, s->min);
    w_i64(w, s->max);
    w_i128(w, s->sum);
    w_u64(w, s->lo);
    w_u64(w, s->hi);
    if (s->buckets) {
        w_counters(w, s);
        return;
    }
    w_array(w, s->count);
    for (uint64_t i = 0; i < s->count; i++)
        w_u64(w, s->few[i]);
}

static void w_labels(wr *w, const fs_label_map *m, uint32_t n_stages)
{
    w_array(w, m->count);
    for (uint32_t i = 0; i < m->count; i++) {
        const fs_label_stats *st = m->stats[i];
        w_array(w, 5 + (size_t)n_stages);
        w_label(w, st->label);
        w_u64(w, st->completed);
        w_u64(w, st->first_touch);
        w_u64(w, st->last_touch);
        w_fixed(w, st->linear);
        for (uint32_t k = 0; k < n_stages; k++)
            w_u64(w, st->reached[k]);
    }
}

static void w_flow(wr *w, const fs_flow *f)
{
    size_t n = 5 * (size_t)f->n_stages; /* evicted* only when any is counted */
    for (size_t i = 0; i < f->n_stages; i++)
        if (f->evicted[i])
            n = FS_FLOW_COUNTERS * (size_t)f->n_stages;
    bool more = f->stage_time || f->campaigns.count;
    w_array(w, more ? 9 : 7);
    w_array(w, n);
    for (size_t i = 0; i < n; i++)
        w_u64(w, f->entered[i]);
    w_u64(w, f->completed);
    w_u64(w, f->late_events);
    w_fixed(w, f->revenue);
    w_sketch(w, &f->ttc);
    w_labels(w, &f->channels, f->n_stages);
    w_labels(w, &f->segments, f->n_stages);
    if (!more)
        return;
    uint32_t n_times = f->stage_time ? f->n_stages - 1 : 0;
    w_array(w, n_times);
    for (uint32_t s = 0; s < n_times; s++)
        w_sketch(w, &f->stage_time[s]);
    w_labels(w, &f->campaigns, f->n_stages);
}

static void w_slot(wr *w, const fs_window_slot *slot, uint32_t n_funnels, const uint32_t *n_stages)
{
    (void)n_stages; /* only checked: a flow knows its stages */
    w_array(w, 2 + (size_t)n_funnels);
    w_i64(w, slot->start);
    w_u64(w, slot->rejected);
    for (uint32_t f = 0; f < n_funnels; f++) {
        if (!slot->flow[f]) {
            msgpack_pack_nil(&w->pk);
            continue;
        }
        assert(slot->flow[f]->n_stages == n_stages[f]);
        w_flow(w, slot->flow[f]);
    }
}

static int cmp_slot(const void *a, const void *b)
{
    int64_t x = (*(fs_window_slot *const *)a)->start, y = (*(fs_window_slot *const *)b)->start;
    return (x > y) - (x < y);
}

/* Sorted by start (see state.h: equal states, equal bytes). */
static void w_slots(wr *w, fs_window_slot *const *slots, uint32_t n, uint32_t n_funnels,
                    const uint32_t *n_stages)
{
    fs_window_slot **sorted = fs_xmalloc((n ? n : 1) * sizeof(*sorted));
    if (n)
        memcpy(sorted, slots, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), cmp_slot);
    w_array(w, n);
    for (uint32_t i = 0; i < n; i++) {
        assert(i == 0 || sorted[i - 1]->start != sorted[i]->start);
        w_slot(w, sorted[i], n_funnels, n_stages);
    }
    free(sorted);
}

static int cmp_cohort_key(const fs_state_cohort *x, const fs_state_cohort *y)
{
    if (x->funnel != y->funnel)
        return x->funnel < y->funnel ? -1 : 1;
    if (x->pane != y->pane)
        return x->pane ? 1 : -1;
    return (x->start > y->start) - (x->start < y->start);
}

static int cmp_cohort(const void *a, const void *b)
{
    return cmp_cohort_key(*(const fs_state_cohort *const *)a, *(const fs_state_cohort *const *)b);
}

static void w_cohort(wr *w, const fs_state_cohort *c, uint32_t n_stages)
{
    w_array(w, 5 + (size_t)n_stages);
    w_u64(w, c->funnel);
    w_bool(w, c->pane);
    w_i64(w, c->start);
    w_u64(w, c->cohort->started);
    w_u64(w, c->cohort->completed);
    for (uint32_t k = 0; k < n_stages; k++)
        w_u64(w, c->cohort->reached[k]);
}

static void w_cohorts(wr *w, const fs_state_cohort *cohorts, uint32_t n, const uint32_t *n_stages)
{
    const fs_state_cohort **sorted = fs_xmalloc((n ? n : 1) * sizeof(*sorted));
    for (uint32_t i = 0; i < n; i++)
        sorted[i] = &cohorts[i];
    qsort(sorted, n, sizeof(*sorted), cmp_cohort);
    w_array(w, n);
    for (uint32_t i = 0; i < n; i++) {
        assert(i == 0 || cmp_cohort_key(sorted[i - 1], sorted[i]) != 0);
        w_cohort(w, sorted[i], n_stages[sorted[i]->funnel]);
    }
    free(sorted);
}

/* ===== keys =============================================================== */

void fs_state_key_customer(fs_buf *out, const char *id, uint32_t len)
{
    fs_buf_putc(out, 'c');
    fs_buf_put(out, id, len);
}

void fs_state_key_part(fs_buf *out)
{
    fs_buf_putc(out, 'p');
}

void fs_state_key_merge(fs_buf *out)
{
    fs_buf_putc(out, 'm');
}

fs_state_key_kind fs_state_key_parse(const char *key, size_t len, const char **id, uint32_t *id_len)
{
    if (len == 1 && key[0] == 'p')
        return FS_STATE_KEY_PART;
    if (len == 1 && key[0] == 'm')
        return FS_STATE_KEY_MERGE;
    /* Customer ids are what the input decoder accepts, nothing else. */
    if (len < 2 || len - 1 > FS_MAX_CUSTOMER_ID || key[0] != 'c' ||
        !fs_utf8_valid(key + 1, len - 1))
        return FS_STATE_KEY_BAD;
    *id = key + 1;
    *id_len = (uint32_t)(len - 1);
    return FS_STATE_KEY_CUSTOMER;
}

/* ===== encoding =========================================================== */

static void w_touches(wr *w, const fs_touch_count *touch, uint32_t n)
{
    w_array(w, 2 * (size_t)n);
    for (uint32_t t = 0; t < n; t++) {
        w_label(w, touch[t].label);
        w_u64(w, touch[t].count);
    }
}

static bool has_ext(const fs_state_journey *j)
{
    return j->timed || j->reached || j->n_campaigns;
}

static void w_journey(wr *w, const fs_state_journey *j)
{
    bool ext = has_ext(j);
    w_array(w, ext ? 7 : 4);
    w_u64(w, j->funnel);
    w_i64(w, j->start_ts);
    w_u64(w, j->max_stage);
    w_touches(w, j->touch, j->n_touches);
    if (!ext)
        return;
    assert(!j->timed || j->stage_ts != FS_STAGE_TS_UNKNOWN); /* the mark of no time */
    w_i64(w, j->timed ? j->stage_ts : FS_STAGE_TS_UNKNOWN);
    w_u64(w, j->reached);
    w_touches(w, j->campaign, j->n_campaigns);
}

void fs_state_encode_customer(fs_buf *out, const fs_state_customer *c, const fs_state_labels *l)
{
    wr w;
    w_init(&w, out, l);
    w_u64(&w, FS_STATE_VERSION);
    w_u64(&w, c->checkpoint);
    for (uint32_t i = 0; i < c->n_journeys; i++) {
        assert(i == 0 || c->journey[i - 1].funnel < c->journey[i].funnel);
        assert(c->journey[i].n_touches <= FS_STATE_MAX_TOUCHES);
        w_journey(&w, &c->journey[i]);
    }
}

void fs_state_encode_part(fs_buf *out, const fs_state_part *s, uint32_t n_funnels,
                          const uint32_t *n_stages, const fs_state_labels *l)
{
    wr w;
    w_init(&w, out, l);
    w_u64(&w, FS_STATE_VERSION);
    w_u64(&w, s->checkpoint);
    w_u64(&w, s->config_hash);
    w_bool(&w, s->seen);
    w_i64(&w, s->max_ts);
    w_i64(&w, s->instance_wm);
    w_i64(&w, s->closed_upto);
    w_slots(&w, s->panes, s->n_panes, n_funnels, n_stages);
    w_slots(&w, s->extras, s->n_extras, n_funnels, n_stages);
    w_slots(&w, s->parked, s->n_parked, n_funnels, n_stages);
    w_cohorts(&w, s->cohorts, s->n_cohorts, n_stages);
}

void fs_state_encode_partial(fs_buf *out, const fs_state_partial *pt, uint32_t n_funnels,
                             const uint32_t *n_stages, const fs_state_labels *l)
{
    wr w;
    w_init(&w, out, l);
    w_u64(&w, FS_STATE_VERSION);
    w_u64(&w, 0); /* not a checkpoint's */
    w_u64(&w, pt->config_hash);
    w_u64(&w, pt->part);
    w_u64(&w, pt->n_parts);
    w_i64(&w, pt->wm);
    w_bool(&w, pt->idle);
    w_array(&w, pt->n_slots);
    for (uint32_t i = 0; i < pt->n_slots; i++) {
        assert(i == 0 || pt->slots[i - 1]->start < pt->slots[i]->start);
        w_slot(&w, pt->slots[i], n_funnels, n_stages);
    }
    w_array(&w, (size_t)pt->n_slots * n_funnels);
    for (size_t i = 0; i < (size_t)pt->n_slots * n_funnels; i++)
        w_u64(&w, pt->events[i]);
    w_cohorts(&w, pt->cohorts, pt->n_cohorts, n_stages);
}

void fs_state_encode_merge(fs_buf *out, const fs_state_merge *m, uint32_t n_funnels,
                           const uint32_t *n_stages, const fs_state_labels *l)
{
    wr w;
    w_init(&w, out, l);
    w_u64(&w, FS_STATE_VERSION);
    w_u64(&w, m->checkpoint);
    w_u64(&w, m->config_hash);
    w_u64(&w, m->n_parts);
    w_bool(&w, m->have_emitted);
    w_i64(&w, m->emitted);
    w_array(&w, m->n_clocks);
    for (uint32_t i = 0; i < m->n_clocks; i++) {
        assert(i == 0 || m->clocks[i - 1].part < m->clocks[i].part);
        w_array(&w, 3);
        w_u64(&w, m->clocks[i].part);
        w_i64(&w, m->clocks[i].wm);
        w_bool(&w, m->clocks[i].idle);
    }
    w_slots(&w, m->pending, m->n_pending, n_funnels, n_stages);
    /* grouped by partition, ascending, each group as a cohort list */
    uint32_t groups = 0;
    for (uint32_t i = 0; i < m->n_cohorts; i++) {
        assert(i == 0 || m->cohort_part[i - 1] <= m->cohort_part[i]);
        groups += i == 0 || m->cohort_part[i - 1] != m->cohort_part[i];
    }
    w_array(&w, 2 * (size_t)groups);
    for (uint32_t i = 0, j; i < m->n_cohorts; i = j) {
        for (j = i; j < m->n_cohorts && m->cohort_part[j] == m->cohort_part[i]; j++)
            ;
        w_u64(&w, m->cohort_part[i]);
        w_cohorts(&w, m->cohorts + i, j - i, n_stages);
    }
}

/* ===== the config hash ==================================================== */

static uint64_t funnel_optional_mask(const fs_funnel_cfg *f)
{
    uint64_t m = 0;
    for (size_t s = 0; s < f->n_stages; s++)
        m |= (uint64_t)f->stages[s].optional << s;
    return m;
}

static void w_strz(wr *w, const char *s)
{
    w_str(w, s, strlen(s));
}

/* Stage options and breakdowns change what a journey and a window hold, so
 * they are part of the hash; a funnel that uses none of them hashes as it
 * did before they existed, so its state stays readable across the upgrade.
 * max_breakdown_values only shapes the records, not the state. */
static bool funnel_has_options(const fs_funnel_cfg *f)
{
    return funnel_optional_mask(f) || f->breakdowns != FS_BREAKDOWN_DEFAULT || !f->stage_time;
}

static void w_funnel_cfg(wr *w, const fs_funnel_cfg *f)
{
    bool options = funnel_has_options(f);
    w_array(w, options ? 5 : 4);
    w_strz(w, f->name);
    w_u64(w, f->mode);
    w_i64(w, f->conversion_window_ms);
    w_array(w, f->n_stages);
    for (size_t s = 0; s < f->n_stages; s++) {
        w_array(w, 2);
        w_strz(w, f->stages[s].name);
        w_array(w, f->stages[s].n_events);
        for (size_t e = 0; e < f->stages[s].n_events; e++)
            w_strz(w, f->stages[s].events[e]);
    }
    if (options) {
        w_array(w, 3);
        w_u64(w, funnel_optional_mask(f));
        w_u64(w, f->breakdowns);
        w_u64(w, f->stage_time);
    }
}

uint64_t fs_state_config_hash(const fs_config *cfg)
{
    fs_buf b = {0};
    wr w;
    w_init(&w, &b, NULL);
    w_i64(&w, cfg->window_size_ms);
    w_i64(&w, cfg->window_hop_ms);
    w_i64(&w, cfg->max_out_of_orderness_ms);
    w_array(&w, cfg->n_funnels);
    for (size_t f = 0; f < cfg->n_funnels; f++)
        w_funnel_cfg(&w, &cfg->funnels[f]);
    uint64_t h = XXH3_64bits(b.p, b.len);
    fs_buf_free(&b);
    return h;
}

/* ===== reading ============================================================ */

/* A cursor over one value. Every rd_* function returns false after writing
 * why into err ("at byte N: what"), leaving what it allocated reachable
 * from the caller's structure, so that one free releases everything. */
typedef struct rd {
    const unsigned char *start, *p, *end;
    const fs_state_labels *l;
    char *err;
    size_t err_len;
} rd;

static void rd_init(rd *r, const char *p, size_t n, const fs_state_labels *l, char *err,
                    size_t err_len)
{
    r->start = r->p = (const unsigned char *)p;
    r->end = r->start + n;
    r->l = l;
    r->err = err;
    r->err_len = err_len;
    if (err_len)
        err[0] = '\0';
}

static void say(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err_len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

static bool fail(rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(rd *r, const char *fmt, ...)
{
    if (!r->err_len)
        return false;
    int n = snprintf(r->err, r->err_len, "state value, at byte %zu: ", (size_t)(r->p - r->start));
    if (n < 0 || (size_t)n >= r->err_len)
        return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err + n, r->err_len - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

static size_t left(const rd *r)
{
    return (size_t)(r->end - r->p);
}

static bool need(rd *r, size_t n, const char *what)
{
    return n <= left(r) || fail(r, "%s: cut short (the value ends inside it)", what);
}

static uint64_t big_endian(const unsigned char *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* The next byte, or 0xc1 (a byte MessagePack never uses) at the end. */
static unsigned char peek(const rd *r)
{
    return r->p < r->end ? *r->p : 0xc1;
}

/* The integer forms with a payload: tag b's payload width and signedness. */
static bool int_form(unsigned char b, unsigned *len, bool *sign)
{
    static const unsigned widths[4] = {1, 2, 4, 8};
    if (b >= 0xcc && b <= 0xcf) {
        *len = widths[b - 0xcc];
        *sign = false;
        return true;
    }
    if (b >= 0xd0 && b <= 0xd3) {
        *len = widths[b - 0xd0];
        *sign = true;
        return true;
    }
    return false;
}

/* Any MessagePack integer, widened so that every int64 and uint64 fits. */
static bool rd_int(rd *r, const char *what, __int128 *v)
{
    if (!need(r, 1, what))
        return false;
    unsigned char b = *r->p;
    if (b <= 0x7f || b >= 0xe0) { /* positive / negative fixint */
        *v = b <= 0x7f ? b : (int)b - 256;
        r->p++;
        return true;
    }
    unsigned len;
    bool sign;
    if (!int_form(b, &len, &sign))
        return fail(r, "%s: not an integer", what);
    if (!need(r, 1 + (size_t)len, what))
        return false;
    uint64_t u = big_endian(r->p + 1, len);
    r->p += 1 + len;
    unsigned bits = 8 * len;
    bool negative = sign && u >> (bits - 1);
    *v = negative ? (__int128)u - ((__int128)1 << bits) : (__int128)u; /* two's complement */
    return true;
}

/* rd_int's values lie in [INT64_MIN, UINT64_MAX]. */
static const char *int_text(__int128 v, char *buf, size_t len)
{
    if (v < 0)
        snprintf(buf, len, "%lld", (long long)v);
    else
        snprintf(buf, len, "%llu", (unsigned long long)v);
    return buf;
}

/* An integer in [lo, hi]. */
static bool rd_range(rd *r, const char *what, __int128 lo, __int128 hi, __int128 *v)
{
    const unsigned char *at = r->p;
    if (!rd_int(r, what, v))
        return false;
    if (*v >= lo && *v <= hi)
        return true;
    r->p = at;
    char a[24], b[24], c[24];
    return fail(r, "%s: %s is not in [%s, %s]", what, int_text(*v, a, sizeof(a)),
                int_text(lo, b, sizeof(b)), int_text(hi, c, sizeof(c)));
}

static bool rd_u64(rd *r, const char *what, uint64_t *out)
{
    __int128 v = 0;
    if (!rd_range(r, what, 0, UINT64_MAX, &v))
        return false;
    *out = (uint64_t)v;
    return true;
}

static bool rd_i64(rd *r, const char *what, int64_t *out)
{
    __int128 v;
    if (!rd_range(r, what, INT64_MIN, INT64_MAX, &v))
        return false;
    *out = (int64_t)v;
    return true;
}

/* A uint32 below `below` (an index or count whose bound the caller knows;
 * below may be 0: nothing is). */
static bool rd_below(rd *r, const char *what, uint64_t below, uint32_t *out)
{
    __int128 v;
    if (below > (uint64_t)UINT32_MAX + 1)
        below = (uint64_t)UINT32_MAX + 1;
    if (!rd_range(r, what, 0, (__int128)below - 1, &v))
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool rd_bool(rd *r, const char *what, bool *out)
{
    if (!need(r, 1, what))
        return false;
    if (*r->p != 0xc2 && *r->p != 0xc3)
        return fail(r, "%s: not a boolean", what);
    *out = *r->p++ == 0xc3;
    return true;
}

/* An array header; its length is checked against the bytes left (every
 * element takes one at least) before any caller allocates for it. */
static bool rd_array(rd *r, const char *what, uint32_t *n)
{
    if (!need(r, 1, what))
        return false;
    unsigned char b = *r->p;
    unsigned len = b == 0xdc ? 2 : b == 0xdd ? 4 : 0;
    if (!len && (b & 0xf0) != 0x90)
        return fail(r, "%s: not an array", what);
    if (!need(r, 1 + (size_t)len, what))
        return false;
    uint64_t count = len ? big_endian(r->p + 1, len) : (uint64_t)(b & 0x0f);
    if (count > left(r) - 1 - len)
        return fail(r, "%s: %llu elements cannot fit in the %zu bytes left", what,
                    (unsigned long long)count, left(r) - 1 - len);
    r->p += 1 + len;
    *n = (uint32_t)count;
    return true;
}

static bool rd_array_of(rd *r, const char *what, uint64_t want)
{
    const unsigned char *at = r->p;
    uint32_t n = 0;
    if (!rd_array(r, what, &n))
        return false;
    if (n == want)
        return true;
    r->p = at;
    return fail(r, "%s: %u elements, not %llu", what, n, (unsigned long long)want);
}

static bool rd_str(rd *r, const char *what, const char **s, uint32_t *len)
{
    if (!need(r, 1, what))
        return false;
    unsigned char b = *r->p;
    unsigned hdr = b == 0xd9 ? 1 : b == 0xda ? 2 : b == 0xdb ? 4 : 0;
    if (!hdr && (b & 0xe0) != 0xa0)
        return fail(r, "%s: not a string", what);
    if (!need(r, 1 + (size_t)hdr, what))
        return false;
    uint64_t n = hdr ? big_endian(r->p + 1, hdr) : (uint64_t)(b & 0x1f);
    if (n > left(r) - 1 - hdr)
        return fail(r, "%s: cut short (the value ends inside it)", what);
    *s = (const char *)r->p + 1 + hdr;
    *len = (uint32_t)n;
    r->p += 1 + hdr + n;
    return true;
}

/* A label by name, interned: held to what the input decoder lets through,
 * so a state value cannot bring a label an event could not. */
static bool rd_name(rd *r, const char *what, const char **s, uint32_t *len)
{
    const unsigned char *at = r->p;
    *s = NULL;
    *len = 0;
    if (!rd_str(r, what, s, len))
        return false;
    if (*len <= FS_MAX_LABEL && fs_utf8_valid(*s, *len))
        return true;
    r->p = at;
    return fail(r, "%s: not a label (UTF-8, at most %d bytes)", what, FS_MAX_LABEL);
}

static bool rd_label(rd *r, const char *what, uint32_t *label)
{
    const char *s;
    uint32_t len;
    if (!rd_name(r, what, &s, &len))
        return false;
    *label = r->l->intern(r->l->ctx, s, len);
    return true;
}

static bool rd_i128(rd *r, const char *what, __int128 *v)
{
    if ((peek(r) & 0xf0) != 0x90 && peek(r) != 0xdc && peek(r) != 0xdd)
        return rd_int(r, what, v);
    int64_t hi;
    uint64_t lo;
    if (!rd_array_of(r, what, 2) || !rd_i64(r, what, &hi) || !rd_u64(r, what, &lo))
        return false;
    *v = (__int128)(((unsigned __int128)(uint64_t)hi << 64) | lo);
    return true;
}

static bool rd_fixed(rd *r, const char *what, fs_fixed *f)
{
    return rd_array_of(r, what, 2) && rd_i128(r, what, &f->whole) && rd_u64(r, what, &f->frac);
}

/* ===== decoding: flows ==================================================== */

static bool rd_few(rd *r, fs_sketch *s, uint32_t lo, uint32_t hi)
{
    uint32_t n;
    if (!rd_array(r, "ttc values", &n))
        return false;
    if (n > FS_SKETCH_FEW)
        return fail(r, "ttc: %u values without counters, at most %d", n, FS_SKETCH_FEW);
    for (uint32_t i = 0; i < n; i++) {
        if (!rd_below(r, "ttc value bucket", hi, &s->few[i]))
            return false;
        if (s->few[i] < lo)
            return fail(r, "ttc: bucket %u below lo %u", s->few[i], lo);
    }
    s->count = n;
    return true;
}

static bool rd_counters(rd *r, fs_sketch *s, uint32_t lo, uint32_t hi)
{
    uint32_t n;
    if (!rd_array(r, "ttc counters", &n))
        return false;
    if (n % 2)
        return fail(r, "ttc counters: %u items, not (gap, count) pairs", n);
    fs_sketch_densify(s); /* still empty: an array of zeros */
    uint64_t count = 0;
    uint32_t at = lo; /* where the next gap counts from */
    for (uint32_t i = 0; i < n; i += 2) {
        uint32_t gap;
        uint64_t c;
        if (!rd_below(r, "ttc counter gap", (uint64_t)hi - at, &gap) ||
            !rd_u64(r, "ttc counter", &c))
            return false;
        if (c > UINT64_MAX - count)
            return fail(r, "ttc: the counters add up beyond 2^64");
        s->buckets[at + gap] = c;
        count += c;
        at += gap + 1;
    }
    s->count = count;
    return true;
}

static bool rd_sketch(rd *r, fs_sketch *s)
{
    uint32_t mode, lo, hi;
    int64_t min, max;
    __int128 sum;
    if (!rd_array_of(r, "ttc", 7) || !rd_below(r, "ttc mode", 2, &mode) ||
        !rd_i64(r, "ttc min", &min) || !rd_i64(r, "ttc max", &max) ||
        !rd_i128(r, "ttc sum", &sum) ||
        !rd_below(r, "ttc lo", (uint64_t)fs_sketch_n_buckets() + 1, &lo) ||
        !rd_below(r, "ttc hi", (uint64_t)fs_sketch_n_buckets() + 1, &hi))
        return false;
    if (lo > hi)
        return fail(r, "ttc: lo %u above hi %u", lo, hi);
    if (!(mode == SKETCH_FEW ? rd_few(r, s, lo, hi) : rd_counters(r, s, lo, hi)))
        return false;
    /* The exact sum of count values in [0, INT64_MAX]: anything else would
     * make later merges overflow. */
    if (sum < 0 || sum > (__int128)s->count * INT64_MAX)
        return fail(r, "ttc: sum out of range for %llu values", (unsigned long long)s->count);
    s->min = min;
    s->max = max;
    s->sum = sum;
    s->lo = lo;
    s->hi = hi;
    return true;
}

typedef fs_label_stats *(*label_get_fn)(fs_flow *f, uint32_t label);

static bool rd_label_stats(rd *r, fs_flow *f, const fs_label_map *m, label_get_fn get,
                           const char *what)
{
    uint32_t before = m->count, len;
    const char *name;
    if (!rd_array_of(r, what, 5 + (uint64_t)f->n_stages) || !rd_name(r, what, &name, &len))
        return false;
    fs_label_stats *st = get(f, r->l->intern(r->l->ctx, name, len));
    if (m->count == before)
        return fail(r, "%s: '%.*s' given twice", what, (int)len, name);
    if (!rd_u64(r, what, &st->completed) || !rd_u64(r, what, &st->first_touch) ||
        !rd_u64(r, what, &st->last_touch) || !rd_fixed(r, what, &st->linear))
        return false;
    for (uint32_t k = 0; k < f->n_stages; k++)
        if (!rd_u64(r, what, &st->reached[k]))
            return false;
    return true;
}

static bool rd_labels(rd *r, fs_flow *f, const fs_label_map *m, label_get_fn get, const char *what)
{
    uint32_t n;
    if (!rd_array(r, what, &n))
        return false;
    for (uint32_t i = 0; i < n; i++)
        if (!rd_label_stats(r, f, m, get, what))
            return false;
    return true;
}

/* A flow's stage time sketches (none, or one per stage but the last) and
 * campaign labels. */
static bool rd_flow_more(rd *r, fs_flow *f)
{
    uint32_t n;
    if (!rd_array(r, "stage times", &n))
        return false;
    if (n != 0 && n != f->n_stages - 1)
        return fail(r, "stage times: %u sketches, not 0 or %u", n, f->n_stages - 1);
    for (uint32_t s = 0; s < n; s++)
        if (!rd_sketch(r, &fs_flow_stage_times(f)[s]))
            return false;
    return rd_labels(r, f, &f->campaigns, fs_flow_campaign, "campaign");
}

/* Into *out, allocated once the counter block's size is checked. */
static bool rd_flow(rd *r, uint32_t n_stages, fs_flow **out)
{
    const unsigned char *at = r->p;
    uint32_t n = 0, n_fields = 0;
    if (!rd_array(r, "flow", &n_fields))
        return false;
    if (n_fields != 7 && n_fields != 9) {
        r->p = at;
        return fail(r, "flow: %u elements, not 7 or 9", n_fields);
    }
    at = r->p;
    if (!rd_array(r, "flow counters", &n))
        return false;
    if (n != 5 * (uint64_t)n_stages && n != FS_FLOW_COUNTERS * (uint64_t)n_stages) {
        r->p = at;
        return fail(r, "flow counters: %u elements, not %llu or %llu", n,
                    5 * (unsigned long long)n_stages,
                    FS_FLOW_COUNTERS * (unsigned long long)n_stages);
    }
    fs_flow *f = *out = fs_flow_new(n_stages);
    for (size_t i = 0; i < n; i++)
        if (!rd_u64(r, "flow counter", &f->entered[i]))
            return false;
    return rd_u64(r, "completed", &f->completed) && rd_u64(r, "late_events", &f->late_events) &&
           rd_fixed(r, "revenue", &f->revenue) && rd_sketch(r, &f->ttc) &&
           rd_labels(r, f, &f->channels, fs_flow_channel, "channel") &&
           rd_labels(r, f, &f->segments, fs_flow_segment, "segment") &&
           (n_fields == 7 || rd_flow_more(r, f));
}

/* ===== decoding: a partition ============================================== */

typedef struct shape {
    uint32_t n_funnels;
    const uint32_t *n_stages;
} shape;

static bool rd_slot_flows(rd *r, fs_window_slot *slot, const shape *sh)
{
    for (uint32_t f = 0; f < sh->n_funnels; f++) {
        if (peek(r) == 0xc0) {
            r->p++;
            continue;
        }
        if (!rd_flow(r, sh->n_stages[f], &slot->flow[f]))
            return false;
    }
    return true;
}

/* The slots of one list, appended to *slots as soon as allocated. */
static bool rd_slots(rd *r, const shape *sh, const char *what, fs_window_slot ***slots,
                     uint32_t *count)
{
    uint32_t n;
    if (!rd_array(r, what, &n))
        return false;
    *slots = fs_xcalloc(n ? n : 1, sizeof(**slots));
    for (uint32_t i = 0; i < n; i++) {
        int64_t start;
        if (!rd_array_of(r, what, 2 + (uint64_t)sh->n_funnels) || !rd_i64(r, what, &start))
            return false;
        if (i && start <= (*slots)[i - 1]->start)
            return fail(r, "%s: start %lld not above the previous one", what, (long long)start);
        fs_window_slot *slot = fs_xcalloc(1, sizeof(*slot) + sh->n_funnels * sizeof(fs_flow *));
        slot->start = start;
        (*slots)[(*count)++] = slot;
        if (!rd_u64(r, "rejected", &slot->rejected) || !rd_slot_flows(r, slot, sh))
            return false;
    }
    return true;
}

static bool rd_cohort_head(rd *r, const shape *sh, fs_state_cohort *c)
{
    uint32_t n;
    const unsigned char *at = r->p;
    if (!rd_array(r, "cohort", &n) || !rd_below(r, "cohort funnel", sh->n_funnels, &c->funnel) ||
        !rd_bool(r, "cohort pane", &c->pane) || !rd_i64(r, "cohort start", &c->start))
        return false;
    if (n == 5 + (uint64_t)sh->n_stages[c->funnel])
        return true;
    r->p = at;
    return fail(r, "cohort: %u elements, not %llu", n,
                5 + (unsigned long long)sh->n_stages[c->funnel]);
}

/* A cohort list, appended to *out (allocated here) as read. */
static bool rd_cohort_list(rd *r, const shape *sh, fs_state_cohort **out, uint32_t *count)
{
    uint32_t n;
    if (!rd_array(r, "cohorts", &n))
        return false;
    fs_state_cohort *v = *out = fs_xcalloc(n ? n : 1, sizeof(*v));
    for (uint32_t i = 0; i < n; i++) {
        fs_state_cohort c;
        if (!rd_cohort_head(r, sh, &c))
            return false;
        if (i && cmp_cohort_key(&v[i - 1], &c) >= 0)
            return fail(r, "cohort: (funnel, pane, start) not above the previous one");
        uint32_t n_stages = sh->n_stages[c.funnel];
        c.cohort = fs_cohort_new(n_stages);
        v[(*count)++] = c;
        if (!rd_u64(r, "cohort started", &c.cohort->started) ||
            !rd_u64(r, "cohort completed", &c.cohort->completed))
            return false;
        for (uint32_t k = 0; k < n_stages; k++)
            if (!rd_u64(r, "cohort reached", &c.cohort->reached[k]))
                return false;
    }
    return true;
}

static bool rd_cohorts(rd *r, const shape *sh, fs_state_part *s)
{
    return rd_cohort_list(r, sh, &s->cohorts, &s->n_cohorts);
}

static bool rd_part_body(rd *r, const shape *sh, fs_state_part *s)
{
    if (!rd_bool(r, "seen", &s->seen) || !rd_i64(r, "max_ts", &s->max_ts) ||
        !rd_i64(r, "instance_wm", &s->instance_wm) || !rd_i64(r, "closed_upto", &s->closed_upto) ||
        !rd_slots(r, sh, "pane", &s->panes, &s->n_panes) ||
        !rd_slots(r, sh, "extras slot", &s->extras, &s->n_extras) ||
        !rd_slots(r, sh, "parked window", &s->parked, &s->n_parked) || !rd_cohorts(r, sh, s))
        return false;
    return r->p == r->end || fail(r, "%zu bytes after the value", left(r));
}

/* The version first: any other version is refused before anything else is
 * looked at, since its layout may be anything. */
static fs_state_err rd_version(rd *r)
{
    uint64_t v;
    if (r->p == r->end) { /* the caller's to handle: a tombstone is not a value */
        fail(r, "empty value");
        return FS_STATE_EMALFORMED;
    }
    if (!rd_u64(r, "format version", &v))
        return FS_STATE_EMALFORMED;
    if (v == FS_STATE_VERSION)
        return FS_STATE_OK;
    say(r->err, r->err_len, "state value of format version %llu; this build reads version %d",
        (unsigned long long)v, FS_STATE_VERSION);
    return FS_STATE_EVERSION;
}

/* What every value begins with: its format version, then the number of
 * the checkpoint that wrote it. */
static fs_state_err rd_head(rd *r, uint64_t *checkpoint)
{
    fs_state_err e = rd_version(r);
    if (e != FS_STATE_OK)
        return e;
    return rd_u64(r, "checkpoint", checkpoint) ? FS_STATE_OK : FS_STATE_EMALFORMED;
}

fs_state_err fs_state_decode_part(const char *p, size_t n, uint64_t config_hash, uint32_t n_funnels,
                                  const uint32_t *n_stages, const fs_state_labels *l,
                                  fs_state_part *s, char *err, size_t err_len)
{
    memset(s, 0, sizeof(*s));
    rd r;
    rd_init(&r, p, n, l, err, err_len);
    fs_state_err e = rd_head(&r, &s->checkpoint);
    if (e != FS_STATE_OK)
        return e;
    if (!rd_u64(&r, "config hash", &s->config_hash))
        return FS_STATE_EMALFORMED;
    if (s->config_hash != config_hash) {
        say(err, err_len,
            "state written for another configuration (config hash %016llx, this one %016llx)",
            (unsigned long long)s->config_hash, (unsigned long long)config_hash);
        s->config_hash = 0;
        return FS_STATE_ECONFIG;
    }
    shape sh = {n_funnels, n_stages};
    if (rd_part_body(&r, &sh, s))
        return FS_STATE_OK;
    fs_state_part_free(s, n_funnels);
    return FS_STATE_EMALFORMED;
}

/* The router restores a partition's clock before its workers have the
 * rest, so this reads the record's first objects and stops: neither the
 * config hash nor what follows the clock is checked (the full decode
 * does both). */
fs_state_err fs_state_decode_clock(const char *p, size_t n, fs_state_clock *c)
{
    rd r;
    rd_init(&r, p, n, NULL, NULL, 0);
    uint64_t hash, checkpoint;
    fs_state_err e = rd_head(&r, &checkpoint);
    if (e != FS_STATE_OK)
        return e;
    fs_state_clock got;
    if (!rd_u64(&r, "config hash", &hash) || !rd_bool(&r, "seen", &got.seen) ||
        !rd_i64(&r, "max_ts", &got.max_ts) || !rd_i64(&r, "instance_wm", &got.instance_wm))
        return FS_STATE_EMALFORMED;
    *c = got;
    return FS_STATE_OK;
}

static void free_slots(fs_window_slot **slots, uint32_t n, uint32_t n_funnels)
{
    for (uint32_t i = 0; i < n; i++)
        fs_window_slot_free(slots[i], n_funnels);
    free(slots);
}

void fs_state_part_free(fs_state_part *s, uint32_t n_funnels)
{
    free_slots(s->panes, s->n_panes, n_funnels);
    free_slots(s->extras, s->n_extras, n_funnels);
    free_slots(s->parked, s->n_parked, n_funnels);
    for (uint32_t i = 0; i < s->n_cohorts; i++)
        free(s->cohorts[i].cohort);
    free(s->cohorts);
    memset(s, 0, sizeof(*s));
}

/* ===== decoding: partials and the merger =================================== */

/* The head every partial and merger value shares: version, checkpoint,
 * config hash (checked). */
static fs_state_err rd_hashed_head(rd *r, uint64_t config_hash, uint64_t *checkpoint)
{
    fs_state_err e = rd_head(r, checkpoint);
    if (e != FS_STATE_OK)
        return e;
    uint64_t hash;
    if (!rd_u64(r, "config hash", &hash))
        return FS_STATE_EMALFORMED;
    if (hash == config_hash)
        return FS_STATE_OK;
    say(r->err, r->err_len,
        "written for another configuration (config hash %016llx, this one %016llx)",
        (unsigned long long)hash, (unsigned long long)config_hash);
    return FS_STATE_ECONFIG;
}

static bool rd_partial_body(rd *r, const shape *sh, fs_state_partial *pt)
{
    uint32_t n_events;
    if (!rd_below(r, "partition", FS_STATE_MAX_PARTS, &pt->part) ||
        !rd_below(r, "partition count", FS_STATE_MAX_PARTS + 1, &pt->n_parts) ||
        !rd_i64(r, "watermark", &pt->wm) || !rd_bool(r, "idle", &pt->idle) ||
        !rd_slots(r, sh, "partial window", &pt->slots, &pt->n_slots) ||
        !rd_array(r, "events", &n_events))
        return false;
    if (n_events != (uint64_t)pt->n_slots * sh->n_funnels)
        return fail(r, "events: %u, not %llu", n_events,
                    (unsigned long long)pt->n_slots * sh->n_funnels);
    pt->events = fs_xcalloc(n_events ? n_events : 1, sizeof(*pt->events));
    for (uint32_t i = 0; i < n_events; i++)
        if (!rd_u64(r, "events", &pt->events[i]))
            return false;
    if (!rd_cohort_list(r, sh, &pt->cohorts, &pt->n_cohorts))
        return false;
    for (uint32_t i = 0; i < pt->n_cohorts; i++)
        if (pt->cohorts[i].pane)
            return fail(r, "partial cohort in pane form");
    return r->p == r->end || fail(r, "%zu bytes after the value", left(r));
}

fs_state_err fs_state_decode_partial(const char *p, size_t n, uint64_t config_hash,
                                     uint32_t n_funnels, const uint32_t *n_stages,
                                     const fs_state_labels *l, fs_state_partial *pt, char *err,
                                     size_t err_len)
{
    memset(pt, 0, sizeof(*pt));
    rd r;
    rd_init(&r, p, n, l, err, err_len);
    uint64_t checkpoint;
    fs_state_err e = rd_hashed_head(&r, config_hash, &checkpoint);
    if (e != FS_STATE_OK)
        return e;
    pt->config_hash = config_hash;
    shape sh = {n_funnels, n_stages};
    if (rd_partial_body(&r, &sh, pt))
        return FS_STATE_OK;
    fs_state_partial_free(pt, n_funnels);
    return FS_STATE_EMALFORMED;
}

void fs_state_partial_free(fs_state_partial *pt, uint32_t n_funnels)
{
    free_slots(pt->slots, pt->n_slots, n_funnels);
    free(pt->events);
    for (uint32_t i = 0; i < pt->n_cohorts; i++)
        free(pt->cohorts[i].cohort);
    free(pt->cohorts);
    memset(pt, 0, sizeof(*pt));
}

static bool rd_merge_clocks(rd *r, fs_state_merge *m)
{
    uint32_t n;
    if (!rd_array(r, "merge clocks", &n))
        return false;
    m->clocks = fs_xcalloc(n ? n : 1, sizeof(*m->clocks));
    for (uint32_t i = 0; i < n; i++) {
        fs_state_merge_clock *c = &m->clocks[i];
        if (!rd_array_of(r, "merge clock", 3) ||
            !rd_below(r, "merge clock partition", FS_STATE_MAX_PARTS, &c->part) ||
            !rd_i64(r, "merge clock watermark", &c->wm) ||
            !rd_bool(r, "merge clock idle", &c->idle))
            return false;
        if (i && c->part <= m->clocks[i - 1].part)
            return fail(r, "merge clock: partition %u not above the previous one", c->part);
        m->n_clocks++;
    }
    return true;
}

static bool rd_merge_cohorts(rd *r, const shape *sh, fs_state_merge *m)
{
    uint32_t n;
    if (!rd_array(r, "merge cohorts", &n))
        return false;
    if (n % 2)
        return fail(r, "merge cohorts: %u elements, not pairs", n);
    for (uint32_t g = 0; g < n / 2; g++) {
        uint32_t part, k = 0;
        fs_state_cohort *v = NULL;
        if (!rd_below(r, "merge cohort partition", FS_STATE_MAX_PARTS, &part))
            return false;
        if (m->n_cohorts && part <= m->cohort_part[m->n_cohorts - 1])
            return fail(r, "merge cohorts: partition %u not above the previous one", part);
        bool ok = rd_cohort_list(r, sh, &v, &k);
        m->cohorts = fs_xrealloc(m->cohorts, (m->n_cohorts + k + 1) * sizeof(*m->cohorts));
        m->cohort_part = fs_xrealloc(m->cohort_part, (m->n_cohorts + k + 1) * sizeof(uint32_t));
        for (uint32_t i = 0; i < k; i++) {
            m->cohorts[m->n_cohorts] = v[i];
            m->cohort_part[m->n_cohorts++] = part;
        }
        free(v);
        if (!ok)
            return false;
    }
    return true;
}

fs_state_err fs_state_decode_merge(const char *p, size_t n, uint64_t config_hash,
                                   uint32_t n_funnels, const uint32_t *n_stages,
                                   const fs_state_labels *l, fs_state_merge *m, char *err,
                                   size_t err_len)
{
    memset(m, 0, sizeof(*m));
    rd r;
    rd_init(&r, p, n, l, err, err_len);
    fs_state_err e = rd_hashed_head(&r, config_hash, &m->checkpoint);
    if (e != FS_STATE_OK)
        return e;
    m->config_hash = config_hash;
    shape sh = {n_funnels, n_stages};
    if (rd_below(&r, "partition count", FS_STATE_MAX_PARTS + 1, &m->n_parts) &&
        rd_bool(&r, "have emitted", &m->have_emitted) && rd_i64(&r, "emitted", &m->emitted) &&
        rd_merge_clocks(&r, m) && rd_slots(&r, &sh, "pending window", &m->pending, &m->n_pending) &&
        rd_merge_cohorts(&r, &sh, m) &&
        (r.p == r.end || fail(&r, "%zu bytes after the value", left(&r))))
        return FS_STATE_OK;
    fs_state_merge_free(m, n_funnels);
    return FS_STATE_EMALFORMED;
}

void fs_state_merge_free(fs_state_merge *m, uint32_t n_funnels)
{
    free(m->clocks);
    free_slots(m->pending, m->n_pending, n_funnels);
    for (uint32_t i = 0; i < m->n_cohorts; i++)
        free(m->cohorts[i].cohort);
    free(m->cohorts);
    free(m->cohort_part);
    memset(m, 0, sizeof(*m));
}

/* ===== decoding: a customer =============================================== */

/* A touch list into *touch (allocated, *n entries); what: "touches" or
 * "campaign touches". */
static bool rd_touches(rd *r, const char *what, fs_touch_count **touch, uint32_t *count)
{
    uint32_t n;
    if (!rd_array(r, what, &n))
        return false;
    if (n % 2)
        return fail(r, "%s: %u items, not (label, count) pairs", what, n);
    if (n / 2 > FS_STATE_MAX_TOUCHES)
        return fail(r, "%s: %u pairs, more than %d", what, n / 2, FS_STATE_MAX_TOUCHES);
    *touch = fs_xmalloc((n ? n / 2 : 1) * sizeof(**touch));
    for (uint32_t t = 0; t < n / 2; t++) {
        fs_touch_count *tc = &(*touch)[t];
        if (!rd_label(r, "touch label", &tc->label) ||
            !rd_below(r, "touch count", (uint64_t)UINT32_MAX + 1, &tc->count))
            return false;
        (*count)++;
    }
    return true;
}

/* The extension's fields (journeys of funnels with stage times, unordered
 * mode or the campaign breakdown): stage_ts, reached, campaign touches. */
static bool rd_journey_ext(rd *r, const shape *sh, fs_state_journey *j)
{
    uint32_t n_stages = sh->n_stages[j->funnel];
    if (!rd_i64(r, "journey stage_ts", &j->stage_ts) ||
        !rd_below(r, "journey reached", (uint64_t)1 << n_stages, &j->reached))
        return false;
    j->timed = j->stage_ts != FS_STAGE_TS_UNKNOWN;
    if (j->reached && (uint32_t)__builtin_popcount(j->reached) != j->max_stage + 1)
        return fail(r, "journey: %d stages reached, but at stage %u",
                    __builtin_popcount(j->reached), j->max_stage);
    return rd_touches(r, "campaign touches", &j->campaign, &j->n_campaigns);
}

static bool rd_journey(rd *r, const shape *sh, fs_state_customer *c)
{
    fs_state_journey *j = &c->journey[c->n_journeys];
    const unsigned char *at = r->p;
    uint32_t n = 0;
    memset(j, 0, sizeof(*j));
    if (!rd_array(r, "journey", &n))
        return false;
    if (n != 4 && n != 7) {
        r->p = at;
        return fail(r, "journey: %u elements, not 4 or 7", n);
    }
    if (!rd_below(r, "journey funnel", sh->n_funnels, &j->funnel))
        return false;
    if (c->n_journeys && j->funnel <= c->journey[c->n_journeys - 1].funnel)
        return fail(r, "journey: funnel %u not above the previous journey's", j->funnel);
    c->n_journeys++;
    return rd_i64(r, "journey start_ts", &j->start_ts) &&
           rd_below(r, "journey max_stage", sh->n_stages[j->funnel], &j->max_stage) &&
           rd_touches(r, "touches", &j->touch, &j->n_touches) &&
           (n == 4 || rd_journey_ext(r, sh, j));
}

static bool rd_customer_body(rd *r, const shape *sh, fs_state_customer *c)
{
    /* One journey per funnel at most, each at least one byte. */
    size_t cap = sh->n_funnels < left(r) ? sh->n_funnels : left(r);
    c->journey = fs_xcalloc(cap ? cap : 1, sizeof(*c->journey));
    while (r->p < r->end) {
        if (c->n_journeys == cap)
            return fail(r, "more journeys than funnels");
        if (!rd_journey(r, sh, c))
            return false;
    }
    return true;
}

fs_state_err fs_state_decode_customer(const char *p, size_t n, uint32_t n_funnels,
                                      const uint32_t *n_stages, const fs_state_labels *l,
                                      fs_state_customer *c, char *err, size_t err_len)
{
    c->n_journeys = 0;
    c->journey = NULL;
    rd r;
    rd_init(&r, p, n, l, err, err_len);
    fs_state_err e = rd_head(&r, &c->checkpoint);
    if (e != FS_STATE_OK)
        return e;
    shape sh = {n_funnels, n_stages};
    if (rd_customer_body(&r, &sh, c))
        return FS_STATE_OK;
    fs_state_customer_free(c);
    return FS_STATE_EMALFORMED;
}

void fs_state_customer_free(fs_state_customer *c)
{
    for (uint32_t i = 0; i < c->n_journeys; i++) {
        free(c->journey[i].touch);
        free(c->journey[i].campaign);
    }
    free(c->journey);
    c->n_journeys = 0;
    c->journey = NULL;
}

fs_state_err fs_state_peek_checkpoint(const char *p, size_t n, uint64_t *checkpoint)
{
    rd r;
    rd_init(&r, p, n, NULL, NULL, 0);
    return rd_head(&r, checkpoint);
}
