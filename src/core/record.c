/* record.c -- flow and cohort records as JSON or MessagePack (see record.h).
 *
 * Records are written through a tiny structural encoder (map/array/key/value
 * calls) with two back ends: JSON text into an fs_buf, and MessagePack via
 * msgpack-c's packer into the same fs_buf. The record layout is written once,
 * so both encodings always carry the same fields in the same order.
 * MessagePack maps and arrays need their length up front, which is why the
 * map-writing helpers count their non-zero entries before writing them.
 */
#include "record.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAX_DEPTH 8

typedef struct enc {
    fs_buf *b;
    fs_format fmt;
    msgpack_packer pk;
    uint32_t depth;
    uint32_t items[MAX_DEPTH]; /* JSON: items written at each depth, for commas */
    bool after_key;
} enc;

static int pack_write(void *data, const char *buf, size_t len)
{
    fs_buf_put(data, buf, len);
    return 0;
}

static void enc_init(enc *e, fs_buf *b, fs_format fmt)
{
    memset(e, 0, sizeof(*e));
    e->b = b;
    e->fmt = fmt;
    msgpack_packer_init(&e->pk, b, pack_write);
}

/* JSON: the comma before an item, unless it is the value of a key. */
static void sep(enc *e)
{
    if (e->fmt != FS_FORMAT_JSON)
        return;
    if (e->after_key)
        e->after_key = false;
    else if (e->items[e->depth]++)
        fs_buf_putc(e->b, ',');
}

static void open_(enc *e, char c, size_t n, bool map)
{
    sep(e);
    if (e->fmt == FS_FORMAT_JSON) {
        fs_buf_putc(e->b, c);
        e->items[++e->depth] = 0;
    } else if (map) {
        msgpack_pack_map(&e->pk, n);
    } else {
        msgpack_pack_array(&e->pk, n);
    }
}

static void map_begin(enc *e, size_t n)
{
    open_(e, '{', n, true);
}

static void array_begin(enc *e, size_t n)
{
    open_(e, '[', n, false);
}

static void close_(enc *e, char c)
{
    if (e->fmt == FS_FORMAT_JSON) {
        fs_buf_putc(e->b, c);
        e->depth--;
    }
}

static void str(enc *e, const char *s, size_t len)
{
    sep(e);
    if (e->fmt == FS_FORMAT_JSON) {
        fs_buf_json_str(e->b, s, len);
    } else {
        msgpack_pack_str(&e->pk, len);
        msgpack_pack_str_body(&e->pk, s, len);
    }
}

static void key(enc *e, const char *k)
{
    str(e, k, strlen(k));
    if (e->fmt == FS_FORMAT_JSON) {
        fs_buf_putc(e->b, ':');
        e->after_key = true;
    }
}

static void u64(enc *e, uint64_t v)
{
    sep(e);
    if (e->fmt == FS_FORMAT_JSON)
        fs_buf_u64(e->b, v);
    else
        msgpack_pack_uint64(&e->pk, v);
}

static void i64(enc *e, int64_t v)
{
    sep(e);
    if (e->fmt == FS_FORMAT_JSON)
        fs_buf_i64(e->b, v);
    else
        msgpack_pack_int64(&e->pk, v);
}

static void dbl(enc *e, double v)
{
    sep(e);
    if (e->fmt == FS_FORMAT_JSON)
        fs_buf_double(e->b, v);
    else
        msgpack_pack_double(&e->pk, v);
}

static void null(enc *e)
{
    sep(e);
    if (e->fmt == FS_FORMAT_JSON)
        fs_buf_puts(e->b, "null");
    else
        msgpack_pack_nil(&e->pk);
}

static void boolean(enc *e, bool v)
{
    sep(e);
    if (e->fmt == FS_FORMAT_JSON)
        fs_buf_puts(e->b, v ? "true" : "false");
    else if (v)
        msgpack_pack_true(&e->pk);
    else
        msgpack_pack_false(&e->pk);
}

/* ---- record pieces ------------------------------------------------------ */

static void u64_array(enc *e, const char *k, const uint64_t *v, uint32_t n)
{
    key(e, k);
    array_begin(e, n);
    for (uint32_t i = 0; i < n; i++)
        u64(e, v[i]);
    close_(e, ']');
}

static void conversion(enc *e, const uint64_t *reached, uint32_t n)
{
    key(e, "conversion");
    array_begin(e, n - 1);
    for (uint32_t s = 0; s + 1 < n; s++) {
        if (reached[s] == 0)
            null(e);
        else
            dbl(e, (double)reached[s + 1] / (double)reached[s]);
    }
    close_(e, ']');
}

static void header(enc *e, const char *kind, size_t n_fields, const fs_funnel_cfg *f,
                   fs_window_id w)
{
    map_begin(e, n_fields);
    key(e, "kind");
    str(e, kind, strlen(kind));
    key(e, "funnel");
    str(e, f->name, strlen(f->name));
    key(e, "window_start");
    i64(e, w.start);
    key(e, "window_end");
    i64(e, w.end);
    key(e, "stages");
    array_begin(e, f->n_stages);
    for (size_t s = 0; s < f->n_stages; s++)
        str(e, f->stages[s].name, strlen(f->stages[s].name));
    close_(e, ']');
}

/* A time summary (ttc_ms, each stage_time_ms entry): SPEC §4's form. */
static void time_summary(enc *e, const fs_sketch *s)
{
    static const struct {
        const char *name;
        double q;
    } quantiles[] = {{"p50", 0.50}, {"p90", 0.90}, {"p99", 0.99}};
    map_begin(e, 7);
    key(e, "count");
    u64(e, s->count);
    key(e, "min");
    if (s->count)
        i64(e, s->min);
    else
        null(e);
    key(e, "max");
    if (s->count)
        i64(e, s->max);
    else
        null(e);
    key(e, "sum");
    if (s->sum <= INT64_MAX) /* exact; beyond int64 a (still valid) double */
        i64(e, (int64_t)s->sum);
    else
        dbl(e, (double)s->sum);
    for (size_t i = 0; i < 3; i++) {
        int64_t v;
        key(e, quantiles[i].name);
        if (fs_sketch_quantile(s, quantiles[i].q, &v))
            i64(e, v);
        else
            null(e);
    }
    close_(e, '}');
}

static void stage_times(enc *e, const fs_flow *flow)
{
    fs_sketch empty;
    fs_sketch_init(&empty);
    key(e, "stage_time_ms");
    array_begin(e, flow->n_stages - 1);
    for (uint32_t s = 0; s + 1 < flow->n_stages; s++)
        time_summary(e, flow->stage_time ? &flow->stage_time[s] : &empty);
    close_(e, ']');
}

/* ---- label maps and the "(other)" cut (SPEC §4) -------------------------- */

enum what { BREAKDOWN, FIRST, LAST, LINEAR };

typedef struct entry {
    const char *name;
    uint32_t len;
    const fs_label_stats *st;
} entry;

static bool nonzero(const fs_label_stats *st, enum what w, uint32_t n)
{
    switch (w) {
    case FIRST:
        return st->first_touch != 0;
    case LAST:
        return st->last_touch != 0;
    case LINEAR:
        return !fs_fixed_is_zero(st->linear);
    case BREAKDOWN:
        if (st->completed)
            return true;
        for (uint32_t s = 0; s < n; s++)
            if (st->reached[s])
                return true;
        return false;
    }
    return false;
}

static int cmp_name(const entry *a, const entry *b)
{
    int c = memcmp(a->name, b->name, a->len < b->len ? a->len : b->len);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

static int cmp_by_name(const void *a, const void *b)
{
    return cmp_name(a, b);
}

/* What an entry is ranked by. Linear credit is a sum of fixed-point
 * shares, each rounded down at 2^-64: rounded to 2^-32, equal exact credits
 * compare equal however they were summed. */
typedef struct rank_ctx {
    enum what w;
    uint32_t n;
} rank_ctx;

static unsigned __int128 score(const fs_label_stats *st, const rank_ctx *r)
{
    unsigned __int128 v = 0;
    switch (r->w) {
    case FIRST:
        return st->first_touch;
    case LAST:
        return st->last_touch;
    case LINEAR:
        return ((unsigned __int128)st->linear.whole << 32) + ((st->linear.frac >> 31) + 1) / 2;
    case BREAKDOWN:
        for (uint32_t s = 0; s < r->n; s++)
            v += st->reached[s];
        return v;
    }
    return 0;
}

/* Largest score first, ties bytewise by name. */
static int cmp_rank(const void *a, const void *b, void *ctx)
{
    unsigned __int128 sa = score(((const entry *)a)->st, ctx);
    unsigned __int128 sb = score(((const entry *)b)->st, ctx);
    if (sa != sb)
        return sa > sb ? -1 : 1;
    return cmp_name(a, b);
}

static void stats_add(fs_label_stats *into, const fs_label_stats *from, uint32_t n)
{
    into->completed += from->completed;
    into->first_touch += from->first_touch;
    into->last_touch += from->last_touch;
    fs_fixed_add(&into->linear, from->linear);
    for (uint32_t s = 0; s < n; s++)
        into->reached[s] += from->reached[s];
}

/* The entries of map m to write for w, sorted by name, into out (room for
 * m->count + 1): the non-zero ones; when more than `max` of them are not
 * named "(other)", the `max` best of those and an "(other)" entry summing
 * the rest and a real "(other)" (`other`, zeroed, holds the sum). */
static uint32_t cut(const fs_label_map *m, const fs_dict *labels, enum what w, uint32_t n,
                    uint32_t max, entry *out, fs_label_stats *other)
{
    static const char other_name[] = "(other)";
    const fs_label_stats *real_other = NULL;
    uint32_t k = 0;
    for (uint32_t i = 0; i < m->count; i++) {
        const fs_label_stats *st = m->stats[i];
        if (!nonzero(st, w, n))
            continue;
        entry e = {fs_dict_name(labels, st->label), fs_dict_len(labels, st->label), st};
        if (e.len == sizeof(other_name) - 1 && memcmp(e.name, other_name, e.len) == 0)
            real_other = st;
        else
            out[k++] = e;
    }
    if (k > max) {
        rank_ctx r = {w, n};
        qsort_r(out, k, sizeof(*out), cmp_rank, &r);
        for (uint32_t i = max; i < k; i++)
            stats_add(other, out[i].st, n);
        if (real_other)
            stats_add(other, real_other, n);
        k = max;
        real_other = other;
    }
    if (real_other)
        out[k++] = (entry){other_name, sizeof(other_name) - 1, real_other};
    qsort(out, k, sizeof(*out), cmp_by_name);
    return k;
}

typedef struct map_out {
    uint32_t n_stages, max;
    const fs_dict *labels;
    entry *entries;        /* room for the largest map + 1 */
    fs_label_stats *other; /* n_stages counters */
} map_out;

static void label_map(enc *e, const char *k, const fs_label_map *m, enum what w, map_out *o)
{
    memset(o->other, 0, sizeof(*o->other) + o->n_stages * sizeof(uint64_t));
    uint32_t count = cut(m, o->labels, w, o->n_stages, o->max, o->entries, o->other);
    key(e, k);
    map_begin(e, count);
    for (uint32_t i = 0; i < count; i++) {
        const fs_label_stats *st = o->entries[i].st;
        str(e, o->entries[i].name, o->entries[i].len);
        if (e->fmt == FS_FORMAT_JSON) {
            fs_buf_putc(e->b, ':');
            e->after_key = true;
        }
        if (w == BREAKDOWN) {
            map_begin(e, 2);
            u64_array(e, "reached", st->reached, o->n_stages);
            key(e, "completed");
            u64(e, st->completed);
            close_(e, '}');
        } else if (w == LINEAR) {
            dbl(e, fs_fixed_to_double(st->linear));
        } else {
            u64(e, w == FIRST ? st->first_touch : st->last_touch);
        }
    }
    close_(e, '}');
}

/* first_touch, last_touch and linear of one label map. */
static void attribution_maps(enc *e, const fs_label_map *m, map_out *o)
{
    label_map(e, "first_touch", m, FIRST, o);
    label_map(e, "last_touch", m, LAST, o);
    label_map(e, "linear", m, LINEAR, o);
}

static void breakdowns(enc *e, const fs_funnel_cfg *f, const fs_flow *flow, map_out *o)
{
    if (f->breakdowns & FS_BREAKDOWN_CHANNEL)
        label_map(e, "by_channel", &flow->channels, BREAKDOWN, o);
    if (f->breakdowns & FS_BREAKDOWN_SEGMENT)
        label_map(e, "by_segment", &flow->segments, BREAKDOWN, o);
    if (f->breakdowns & FS_BREAKDOWN_CAMPAIGN)
        label_map(e, "by_campaign", &flow->campaigns, BREAKDOWN, o);
    bool campaign = f->breakdowns & FS_BREAKDOWN_CAMPAIGN;
    key(e, "attribution");
    map_begin(e, campaign ? 4 : 3);
    attribution_maps(e, &flow->channels, o);
    if (campaign) {
        key(e, "campaign");
        map_begin(e, 3);
        attribution_maps(e, &flow->campaigns, o);
        close_(e, '}');
    }
    close_(e, '}');
}

static uint32_t popcount(unsigned v)
{
    return (uint32_t)__builtin_popcount(v);
}

void fs_record_flow(fs_buf *b, fs_format fmt, const fs_funnel_cfg *f, fs_window_id w,
                    const fs_flow *flow, uint64_t rejected, const fs_dict *labels, bool evicted)
{
    enc e;
    enc_init(&e, b, fmt);
    uint32_t n = flow->n_stages;
    /* kind funnel window_start window_end stages entered reached skipped
     * abandoned excluded completed revenue conversion ttc_ms attribution
     * late_events rejected_events, and the optional ones */
    size_t fields = 17 + evicted + popcount(f->breakdowns) + f->stage_time;
    header(&e, "flow", fields, f, w);
    u64_array(&e, "entered", flow->entered, n);
    u64_array(&e, "reached", flow->reached, n);
    u64_array(&e, "skipped", flow->skipped, n);
    u64_array(&e, "abandoned", flow->abandoned, n);
    u64_array(&e, "excluded", flow->excluded, n);
    if (evicted) /* limits configured: which of abandoned were evictions */
        u64_array(&e, "evicted", flow->evicted, n);
    key(&e, "completed");
    u64(&e, flow->completed);
    key(&e, "revenue");
    dbl(&e, fs_fixed_to_double(flow->revenue));
    conversion(&e, flow->reached, n);
    key(&e, "ttc_ms");
    time_summary(&e, &flow->ttc);

    uint32_t most = flow->channels.count;
    if (flow->segments.count > most)
        most = flow->segments.count;
    if (flow->campaigns.count > most)
        most = flow->campaigns.count;
    map_out o = {n, f->max_breakdown_values, labels, fs_xmalloc((most + 1) * sizeof(entry)),
                 fs_xmalloc(sizeof(fs_label_stats) + n * sizeof(uint64_t))};
    breakdowns(&e, f, flow, &o);
    free(o.entries);
    free(o.other);
    if (f->stage_time)
        stage_times(&e, flow);

    key(&e, "late_events");
    u64(&e, flow->late_events);
    key(&e, "rejected_events");
    u64(&e, rejected);
    close_(&e, '}');
}

void fs_record_cohort(fs_buf *b, fs_format fmt, const fs_funnel_cfg *f, fs_window_id w,
                      const fs_cohort *c, bool final)
{
    enc e;
    enc_init(&e, b, fmt);
    uint32_t n = (uint32_t)f->n_stages;
    header(&e, "cohort", 10, f, w);
    key(&e, "started");
    u64(&e, c->started);
    u64_array(&e, "reached", c->reached, n);
    key(&e, "completed");
    u64(&e, c->completed);
    conversion(&e, c->reached, n);
    key(&e, "final");
    boolean(&e, final);
    close_(&e, '}');
}

void fs_record_flow_key(fs_buf *b, const fs_funnel_cfg *f, fs_window_id w)
{
    fs_buf_puts(b, f->name);
    fs_buf_putc(b, '/');
    fs_buf_i64(b, w.start);
}

void fs_record_cohort_key(fs_buf *b, const fs_funnel_cfg *f, fs_window_id w)
{
    fs_buf_puts(b, f->name);
    fs_buf_puts(b, "/cohort/");
    fs_buf_i64(b, w.start);
}
