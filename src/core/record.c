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

static void ttc(enc *e, const fs_sketch *s)
{
    static const struct {
        const char *name;
        double q;
    } quantiles[] = {{"p50", 0.50}, {"p90", 0.90}, {"p99", 0.99}};
    key(e, "ttc_ms");
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

/* Label stats sorted bytewise by the label's name, for a stable order. */
static int cmp_label(const void *a, const void *b, void *dict)
{
    const fs_dict *d = dict;
    uint32_t la = (*(fs_label_stats *const *)a)->label, lb = (*(fs_label_stats *const *)b)->label;
    uint32_t na = fs_dict_len(d, la), nb = fs_dict_len(d, lb);
    int c = memcmp(fs_dict_name(d, la), fs_dict_name(d, lb), na < nb ? na : nb);
    return c ? c : (na > nb) - (na < nb);
}

static fs_label_stats **sorted_labels(const fs_label_map *m, const fs_dict *labels)
{
    fs_label_stats **v = fs_xmalloc((m->count ? m->count : 1) * sizeof(*v));
    if (m->count)
        memcpy(v, m->stats, m->count * sizeof(*v));
    if (m->count > 1)
        qsort_r(v, m->count, sizeof(*v), cmp_label, (void *)labels);
    return v;
}

enum what { BREAKDOWN, FIRST, LAST, LINEAR };

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

static void label_map(enc *e, const char *k, fs_label_stats **v, uint32_t count, enum what w,
                      uint32_t n, const fs_dict *labels)
{
    size_t entries = 0;
    for (uint32_t i = 0; i < count; i++)
        entries += nonzero(v[i], w, n);
    if (k)
        key(e, k);
    map_begin(e, entries);
    for (uint32_t i = 0; i < count; i++) {
        const fs_label_stats *st = v[i];
        if (!nonzero(st, w, n))
            continue;
        str(e, fs_dict_name(labels, st->label), fs_dict_len(labels, st->label));
        if (e->fmt == FS_FORMAT_JSON) {
            fs_buf_putc(e->b, ':');
            e->after_key = true;
        }
        if (w == BREAKDOWN) {
            map_begin(e, 2);
            u64_array(e, "reached", st->reached, n);
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

void fs_record_flow(fs_buf *b, fs_format fmt, const fs_funnel_cfg *f, fs_window_id w,
                    const fs_flow *flow, uint64_t rejected, const fs_dict *labels, bool evicted)
{
    enc e;
    enc_init(&e, b, fmt);
    uint32_t n = flow->n_stages;
    header(&e, "flow", evicted ? 22 : 21, f, w);
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
    ttc(&e, &flow->ttc);

    fs_label_stats **ch = sorted_labels(&flow->channels, labels);
    fs_label_stats **seg = sorted_labels(&flow->segments, labels);
    uint32_t nch = flow->channels.count;
    label_map(&e, "by_channel", ch, nch, BREAKDOWN, n, labels);
    label_map(&e, "by_segment", seg, flow->segments.count, BREAKDOWN, n, labels);
    key(&e, "attribution");
    map_begin(&e, 3);
    label_map(&e, "first_touch", ch, nch, FIRST, n, labels);
    label_map(&e, "last_touch", ch, nch, LAST, n, labels);
    label_map(&e, "linear", ch, nch, LINEAR, n, labels);
    close_(&e, '}');
    free(ch);
    free(seg);

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
