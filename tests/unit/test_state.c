/* test_state.c -- the state topic's records (src/core/state.c, SPEC §5).
 *
 * Round trips must be exact: every counter, fixed-point sum (negative and
 * beyond int64 too), both modes of the time sketch with their bucket range
 * (checked by answering, merging and subtracting like the original), label
 * maps by name through a second dictionary whose ids differ, int64 extremes,
 * the checkpoint number of both kinds of record (0 to UINT64_MAX, and on a
 * customer without journeys: the removal mark). Re-encoding what was
 * decoded must give the same bytes. Malformed values (every truncation,
 * byte mutations, each rule of the layout broken) are errors with a
 * message, never a crash or leak (run under ASan); another version or
 * configuration is refused with its own error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "config.h"
#include "dict.h"
#include "state.h"
#include "util.h"

#define ERR_LEN   256
#define N_FUNNELS 3

static const uint32_t n_stages[N_FUNNELS] = {3, 2, 5};

/* ---- labels through an fs_dict ------------------------------------------ */

static const char *dict_name(void *ctx, uint32_t label, uint32_t *len)
{
    *len = fs_dict_len(ctx, label);
    return fs_dict_name(ctx, label);
}

static uint32_t dict_intern(void *ctx, const char *name, uint32_t len)
{
    return fs_dict_intern(ctx, name, len);
}

/* Two dictionaries that give the same names different ids: `a` writes, `b`
 * (seeded with other names first) reads. */
typedef struct dicts {
    fs_dict a, b;
    fs_state_labels la, lb;
} dicts;

static void dicts_init(dicts *d)
{
    fs_dict_init(&d->a);
    fs_dict_init(&d->b);
    fs_dict_intern(&d->b, "zzz", 3);
    fs_dict_intern(&d->b, "email", 5);
    d->la = (fs_state_labels){dict_name, dict_intern, &d->a};
    d->lb = (fs_state_labels){dict_name, dict_intern, &d->b};
}

static void dicts_free(dicts *d)
{
    fs_dict_free(&d->a);
    fs_dict_free(&d->b);
}

static uint32_t label(fs_dict *d, const char *name)
{
    return fs_dict_intern(d, name, strlen(name));
}

static void assert_same_name(const fs_dict *da, uint32_t a, const fs_dict *db, uint32_t b)
{
    assert_int_equal(fs_dict_len(da, a), fs_dict_len(db, b));
    assert_memory_equal(fs_dict_name(da, a), fs_dict_name(db, b), fs_dict_len(da, a));
}

/* ---- building state ----------------------------------------------------- */

static void sketch_add_n(fs_sketch *s, uint32_t n, int64_t base, int64_t step)
{
    for (uint32_t i = 0; i < n; i++)
        fs_sketch_add(s, base + (int64_t)i * step);
}

/* The ttc variants: few-mode (0, 3 or 8 values), counters, counters after a
 * subtraction (a range wider than the counters held), subtracted to empty. */
enum { TTC_EMPTY, TTC_FEW3, TTC_FEW8, TTC_DENSE, TTC_SUBTRACTED, TTC_ZEROED, TTC_N };

static void make_ttc(fs_sketch *s, int variant)
{
    fs_sketch part;
    fs_sketch_init(&part);
    switch (variant) {
    case TTC_FEW3:
        fs_sketch_add(s, 5000);
        fs_sketch_add(s, 7);
        fs_sketch_add(s, 123456789);
        break;
    case TTC_FEW8:
        sketch_add_n(s, 8, 100, 999);
        break;
    case TTC_DENSE:
        sketch_add_n(s, 500, 0, 7919);
        fs_sketch_add(s, INT64_MAX);
        break;
    case TTC_SUBTRACTED: /* drop the lowest and highest: lo/hi stay as they were */
        sketch_add_n(&part, 3, 1, 1);
        fs_sketch_add(&part, 9000000000);
        fs_sketch_merge(s, &part);
        sketch_add_n(s, 30, 2000, 333);
        fs_sketch_subtract(s, &part);
        s->min = 2000;
        s->max = 2000 + 29 * 333;
        break;
    case TTC_ZEROED:
        sketch_add_n(&part, 12, 10, 10000);
        fs_sketch_merge(s, &part);
        fs_sketch_subtract(s, &part);
        break;
    }
    fs_sketch_free(&part);
}

static fs_fixed fixed(__int128 whole, uint64_t frac)
{
    return (fs_fixed){whole, frac};
}

static void fill_label_stats(fs_label_stats *st, uint32_t n, uint64_t seed)
{
    st->completed = seed;
    st->first_touch = seed * 3;
    st->last_touch = UINT64_MAX - seed;
    st->linear = seed % 2 ? fs_fixed_ratio(1, 3) : fixed(-((__int128)1 << 90) - 7, seed);
    for (uint32_t k = 0; k < n; k++)
        st->reached[k] = seed + k;
}

static fs_flow *make_flow(uint32_t n, fs_dict *d, int ttc)
{
    fs_flow *f = fs_flow_new(n);
    for (uint32_t i = 0; i < 5 * n; i++)
        f->entered[i] = i == 0 ? UINT64_MAX : (uint64_t)i * 1000003 + (uint64_t)ttc;
    f->completed = 12345678901ULL;
    f->late_events = (uint64_t)ttc;
    f->revenue = ttc % 2 ? fixed(-((__int128)1 << 100) + 5, 0x8000000000000001ULL)
                         : fixed(-42, 0x4000000000000000ULL);
    make_ttc(&f->ttc, ttc);
    fill_label_stats(fs_flow_channel(f, label(d, "email")), n, 1);
    fill_label_stats(fs_flow_channel(f, label(d, "ads")), n, 2);
    fill_label_stats(fs_flow_channel(f, label(d, "")), n, 3);
    fill_label_stats(fs_flow_channel(f, label(d, "caf\xc3\xa9")), n, 4);
    (void)fs_flow_channel(f, label(d, "zeroed")); /* all zero, as a subtraction leaves it */
    fill_label_stats(fs_flow_segment(f, label(d, "vip")), n, 5);
    fill_label_stats(fs_flow_segment(f, label(d, "email")), n, 6);
    if (ttc % 2) { /* the optional elements: stage times and campaigns */
        fs_sketch *st = fs_flow_stage_times(f);
        make_ttc(&st[n - 2], ttc);
        fs_sketch_add(&st[0], 7);
        fill_label_stats(fs_flow_campaign(f, label(d, "spring-sale")), n, 7);
        fill_label_stats(fs_flow_campaign(f, label(d, "unknown")), n, 8);
    }
    return f;
}

static fs_window_slot *make_slot(int64_t start, uint64_t rejected)
{
    fs_window_slot *s = fs_xcalloc(1, sizeof(*s) + N_FUNNELS * sizeof(fs_flow *));
    s->start = start;
    s->rejected = rejected;
    return s;
}

static fs_cohort *make_cohort(uint32_t n, uint64_t seed)
{
    fs_cohort *c = fs_cohort_new(n);
    c->started = seed;
    c->completed = seed / 2;
    for (uint32_t k = 0; k < n; k++)
        c->reached[k] = seed * 10 + k;
    return c;
}

/* Panes, extras and cohorts out of key order, to check that the encoder sorts. */
static void make_part(fs_state_part *s, fs_dict *d)
{
    memset(s, 0, sizeof(*s));
    s->checkpoint = (uint64_t)1 << 40;
    s->config_hash = 0xfeedfacecafebeefULL;
    s->seen = true;
    s->max_ts = INT64_MAX;
    s->instance_wm = INT64_MIN;
    s->closed_upto = INT64_MIN + 1;
    s->n_panes = 3;
    s->panes = fs_xcalloc(3, sizeof(*s->panes));
    s->panes[0] = make_slot(60000, 0);
    s->panes[1] = make_slot(INT64_MIN, 7);
    s->panes[2] = make_slot(INT64_MAX, UINT64_MAX);
    int ttc = 0;
    for (uint32_t i = 0; i < 3; i++)
        for (uint32_t f = 0; f < N_FUNNELS; f++)
            if ((i + f) % 3 != 1) /* some funnels without a flow */
                s->panes[i]->flow[f] = make_flow(n_stages[f], d, ttc++ % TTC_N);
    s->n_extras = 2;
    s->extras = fs_xcalloc(2, sizeof(*s->extras));
    s->extras[0] = make_slot(-120000, 3);
    s->extras[1] = make_slot(-180000, 0);
    s->extras[1]->flow[2] = fs_flow_new(n_stages[2]);
    s->extras[1]->flow[2]->late_events = 9;
    s->n_parked = 1;
    s->parked = fs_xcalloc(1, sizeof(*s->parked));
    s->parked[0] = make_slot(0, 1);
    s->parked[0]->flow[1] = make_flow(n_stages[1], d, TTC_SUBTRACTED);
    s->n_cohorts = 4;
    s->cohorts = fs_xcalloc(4, sizeof(*s->cohorts));
    s->cohorts[0] = (fs_state_cohort){2, false, 60000, make_cohort(n_stages[2], 5)};
    s->cohorts[1] = (fs_state_cohort){0, true, 60000, make_cohort(n_stages[0], 6)};
    s->cohorts[2] = (fs_state_cohort){0, false, INT64_MAX, make_cohort(n_stages[0], 7)};
    s->cohorts[3] = (fs_state_cohort){0, false, INT64_MIN, make_cohort(n_stages[0], UINT64_MAX)};
}

/* ---- comparing ---------------------------------------------------------- */

static void assert_same_fixed(fs_fixed a, fs_fixed b)
{
    assert_true(a.whole == b.whole);
    assert_true(a.frac == b.frac);
}

static void assert_same_sketch_fields(const fs_sketch *a, const fs_sketch *b)
{
    assert_int_equal(a->count, b->count);
    assert_true(a->min == b->min && a->max == b->max && a->sum == b->sum);
    assert_int_equal(a->lo, b->lo);
    assert_int_equal(a->hi, b->hi);
    assert_int_equal(a->buckets == NULL, b->buckets == NULL);
    if (a->buckets)
        assert_memory_equal(a->buckets, b->buckets, fs_sketch_n_buckets() * sizeof(uint64_t));
    else
        assert_memory_equal(a->few, b->few, a->count * sizeof(a->few[0]));
}

static void assert_same_answers(const fs_sketch *a, const fs_sketch *b)
{
    for (int q = 1; q <= 100; q++) {
        int64_t x = -1, y = -2;
        assert_int_equal(fs_sketch_quantile(a, q / 100.0, &x),
                         fs_sketch_quantile(b, q / 100.0, &y));
        if (a->count)
            assert_true(x == y);
    }
}

/* fn(into, s) on a fresh sketch and on one holding other values. */
static void assert_same_merges(const fs_sketch *a, const fs_sketch *b)
{
    for (int base = 0; base < 3; base++) {
        fs_sketch x, y;
        fs_sketch_init(&x);
        fs_sketch_init(&y);
        sketch_add_n(&x, base == 2 ? 40 : (uint32_t)base * 3, 50, 77);
        sketch_add_n(&y, base == 2 ? 40 : (uint32_t)base * 3, 50, 77);
        fs_sketch_merge(&x, a);
        fs_sketch_merge(&y, b);
        assert_same_sketch_fields(&x, &y);
        assert_same_answers(&x, &y);
        /* and taking it out again: a's values were merged into both */
        fs_sketch_subtract(&x, a);
        fs_sketch_subtract(&y, b);
        assert_same_sketch_fields(&x, &y);
        fs_sketch_free(&x);
        fs_sketch_free(&y);
    }
}

static void assert_same_sketch(const fs_sketch *a, const fs_sketch *b)
{
    assert_same_sketch_fields(a, b);
    assert_same_answers(a, b);
    assert_same_merges(a, b);
}

static void assert_same_labels(const fs_label_map *a, const fs_dict *da, const fs_label_map *b,
                               const fs_dict *db, uint32_t n)
{
    assert_int_equal(a->count, b->count);
    for (uint32_t i = 0; i < a->count; i++) {
        const fs_label_stats *x = a->stats[i], *y = b->stats[i];
        assert_same_name(da, x->label, db, y->label);
        assert_true(x->completed == y->completed && x->first_touch == y->first_touch &&
                    x->last_touch == y->last_touch);
        assert_same_fixed(x->linear, y->linear);
        assert_memory_equal(x->reached, y->reached, n * sizeof(uint64_t));
    }
}

static void assert_same_flow_fields(const fs_flow *a, const fs_dict *da, const fs_flow *b,
                                    const fs_dict *db)
{
    assert_int_equal(a->n_stages, b->n_stages);
    assert_memory_equal(a->entered, b->entered, 5 * a->n_stages * sizeof(uint64_t));
    assert_true(a->completed == b->completed && a->late_events == b->late_events);
    assert_same_fixed(a->revenue, b->revenue);
    assert_same_labels(&a->channels, da, &b->channels, db, a->n_stages);
    assert_same_labels(&a->segments, da, &b->segments, db, a->n_stages);
    assert_same_labels(&a->campaigns, da, &b->campaigns, db, a->n_stages);
    assert_true(!a->stage_time == !b->stage_time);
}

/* Field by field, then merged into fresh flows (each in its own ids). */
static void assert_same_flow(const fs_flow *a, const fs_dict *da, const fs_flow *b,
                             const fs_dict *db)
{
    if (!a || !b) {
        assert_true(a == b);
        return;
    }
    assert_same_flow_fields(a, da, b, db);
    assert_same_sketch(&a->ttc, &b->ttc);
    for (uint32_t s = 0; a->stage_time && s + 1 < a->n_stages; s++)
        assert_same_sketch(&a->stage_time[s], &b->stage_time[s]);
    fs_flow *ma = fs_flow_new(a->n_stages), *mb = fs_flow_new(b->n_stages);
    fs_flow_merge(ma, a, NULL);
    fs_flow_merge(mb, b, NULL);
    assert_same_flow_fields(ma, da, mb, db);
    assert_same_sketch_fields(&ma->ttc, &mb->ttc);
    fs_flow_free(ma);
    fs_flow_free(mb);
}

static void assert_same_slot(const fs_window_slot *a, const fs_dict *da, const fs_window_slot *b,
                             const fs_dict *db)
{
    assert_true(a->start == b->start && a->rejected == b->rejected);
    for (uint32_t f = 0; f < N_FUNNELS; f++)
        assert_same_flow(a->flow[f], da, b->flow[f], db);
}

static int cmp_slot_ptr(const void *x, const void *y)
{
    int64_t a = (*(fs_window_slot *const *)x)->start, b = (*(fs_window_slot *const *)y)->start;
    return (a > b) - (a < b);
}

/* want's slots sorted by start (the order they are written in) against got. */
static void assert_same_slots(fs_window_slot **want, uint32_t n_want, const fs_dict *da,
                              fs_window_slot **got, uint32_t n_got, const fs_dict *db)
{
    assert_int_equal(n_want, n_got);
    if (n_want) /* qsort's array may not be NULL, even empty */
        qsort(want, n_want, sizeof(*want), cmp_slot_ptr);
    for (uint32_t i = 0; i < n_want; i++)
        assert_same_slot(want[i], da, got[i], db);
}

static int cmp_cohort(const void *x, const void *y)
{
    const fs_state_cohort *a = x, *b = y;
    if (a->funnel != b->funnel)
        return a->funnel < b->funnel ? -1 : 1;
    if (a->pane != b->pane)
        return a->pane ? 1 : -1;
    return (a->start > b->start) - (a->start < b->start);
}

static void assert_same_part(fs_state_part *want, const fs_dict *da, const fs_state_part *got,
                             const fs_dict *db)
{
    assert_true(want->checkpoint == got->checkpoint);
    assert_true(want->config_hash == got->config_hash && want->seen == got->seen);
    assert_true(want->max_ts == got->max_ts && want->instance_wm == got->instance_wm &&
                want->closed_upto == got->closed_upto);
    assert_same_slots(want->panes, want->n_panes, da, got->panes, got->n_panes, db);
    assert_same_slots(want->extras, want->n_extras, da, got->extras, got->n_extras, db);
    assert_same_slots(want->parked, want->n_parked, da, got->parked, got->n_parked, db);
    assert_int_equal(want->n_cohorts, got->n_cohorts);
    if (want->n_cohorts)
        qsort(want->cohorts, want->n_cohorts, sizeof(*want->cohorts), cmp_cohort);
    for (uint32_t i = 0; i < want->n_cohorts; i++) {
        const fs_state_cohort *a = &want->cohorts[i], *b = &got->cohorts[i];
        uint32_t n = n_stages[a->funnel];
        assert_true(a->funnel == b->funnel && a->pane == b->pane && a->start == b->start);
        assert_true(a->cohort->started == b->cohort->started &&
                    a->cohort->completed == b->cohort->completed && !b->cohort->dirty);
        assert_memory_equal(a->cohort->reached, b->cohort->reached, n * sizeof(uint64_t));
    }
}

/* ---- decoding helpers --------------------------------------------------- */

static fs_state_err decode_part(const char *p, size_t n, const fs_state_labels *l, char *err)
{
    fs_state_part s;
    fs_state_err e =
        fs_state_decode_part(p, n, 0xfeedfacecafebeefULL, N_FUNNELS, n_stages, l, &s, err, ERR_LEN);
    if (e == FS_STATE_OK)
        fs_state_part_free(&s, N_FUNNELS);
    return e;
}

static fs_state_err decode_customer(const char *p, size_t n, const fs_state_labels *l, char *err)
{
    fs_state_customer c = {0};
    fs_state_err e = fs_state_decode_customer(p, n, N_FUNNELS, n_stages, l, &c, err, ERR_LEN);
    if (e == FS_STATE_OK)
        fs_state_customer_free(&c);
    else
        assert_true(c.journey == NULL && c.n_journeys == 0);
    return e;
}

static void assert_malformed_part(const fs_buf *b, const fs_state_labels *l, const char *why,
                                  char *err)
{
    if (decode_part(b->p, b->len, l, err) != FS_STATE_EMALFORMED) {
        print_error("accepted: %s\n", why);
        fail();
    }
    assert_true(err[0] != '\0');
}

/* Every prefix is refused; then a few values at every position: whatever
 * the result, no crash, no leak. */
static void check_damage(const fs_buf *b, bool part, const fs_state_labels *l)
{
    char err[ERR_LEN];
    for (size_t n = 0; n < b->len; n++) {
        fs_state_err e = part ? decode_part(b->p, n, l, err) : decode_customer(b->p, n, l, err);
        if (part || n == 0) /* a customer value may end after any whole journey */
            assert_int_not_equal(e, FS_STATE_OK);
        if (e != FS_STATE_OK)
            assert_true(err[0] != '\0');
    }
    static const unsigned char bytes[] = {0x00, 0x01, 0x7f, 0x90, 0xc0, 0xc3,
                                          0xcf, 0xd3, 0xdd, 0xdb, 0xff};
    char *copy = fs_xmalloc(b->len);
    for (size_t i = 0; i < b->len; i++) {
        for (size_t k = 0; k < sizeof(bytes); k++) {
            memcpy(copy, b->p, b->len);
            copy[i] = (char)bytes[k];
            if (part)
                (void)decode_part(copy, b->len, l, err);
            else
                (void)decode_customer(copy, b->len, l, err);
        }
    }
    free(copy);
}

/* ---- keys --------------------------------------------------------------- */

static void test_keys(void **state)
{
    (void)state;
    fs_buf k = {0};
    fs_state_key_customer(&k, "u-1", 3);
    assert_int_equal(k.len, 4);
    assert_memory_equal(k.p, "cu-1", 4);
    const char *id = NULL;
    uint32_t len = 0;
    assert_int_equal(fs_state_key_parse(k.p, k.len, &id, &len), FS_STATE_KEY_CUSTOMER);
    assert_true(id == k.p + 1 && len == 3);
    k.len = 0;
    fs_state_key_part(&k);
    assert_int_equal(k.len, 1);
    assert_int_equal(fs_state_key_parse(k.p, k.len, &id, &len), FS_STATE_KEY_PART);
    fs_buf_free(&k);

    char long_id[2 + FS_MAX_CUSTOMER_ID];
    memset(long_id, 'x', sizeof(long_id));
    long_id[0] = 'c';
    assert_int_equal(fs_state_key_parse(long_id, 1 + FS_MAX_CUSTOMER_ID, &id, &len),
                     FS_STATE_KEY_CUSTOMER);
    assert_int_equal(fs_state_key_parse(long_id, sizeof(long_id), &id, &len), FS_STATE_KEY_BAD);
    assert_int_equal(fs_state_key_parse("c", 1, &id, &len), FS_STATE_KEY_BAD);
    assert_int_equal(fs_state_key_parse("", 0, &id, &len), FS_STATE_KEY_BAD);
    assert_int_equal(fs_state_key_parse("pp", 2, &id, &len), FS_STATE_KEY_BAD);
    assert_int_equal(fs_state_key_parse("x1", 2, &id, &len), FS_STATE_KEY_BAD);
    assert_int_equal(fs_state_key_parse("c\xff", 2, &id, &len), FS_STATE_KEY_BAD);
}

/* ---- customers ---------------------------------------------------------- */

/* The example of state.c's layout comment, byte for byte. */
static void test_customer_typical_bytes(void **state)
{
    (void)state;
    dicts d;
    dicts_init(&d);
    fs_touch_count touch[2] = {{label(&d.a, "ads"), 1}, {label(&d.a, "email"), 2}};
    fs_state_journey j = {
        .funnel = 0, .start_ts = 1714000000000, .max_stage = 1, .n_touches = 2, .touch = touch};
    fs_state_customer c = {"u-12345678", 10, 1, &j, 100000};
    fs_buf key = {0}, val = {0};
    fs_state_key_customer(&key, c.id, c.id_len);
    fs_state_encode_customer(&val, &c, &d.la);
    static const unsigned char want[] = {
        0x01,                         /* version 1 */
        0xce, 0x00, 0x01, 0x86, 0xa0, /* checkpoint 100000 */
        0x94, 0x00, 0xcf, 0x00, 0x00, 0x01, 0x8f, 0x12, 0x5c, 0x74, 0x00, 0x01, /* journey */
        0x94, 0xa3, 'a',  'd',  's',  0x01, 0xa5, 'e',  'm',  'a',  'i',  'l',  0x02};
    assert_int_equal(val.len, sizeof(want));
    assert_memory_equal(val.p, want, sizeof(want));
    assert_int_equal(key.len, 11);
    assert_int_equal(key.len + val.len, 42);
    assert_true(key.len + val.len <= 64); /* the budget per active journey */
    print_message("typical customer record: key %zu + value %zu = %zu bytes\n", key.len, val.len,
                  key.len + val.len);
    fs_buf_free(&key);
    fs_buf_free(&val);
    dicts_free(&d);
}

static void make_touches(fs_state_journey *j, fs_dict *d, uint32_t n)
{
    j->n_touches = n;
    j->touch = fs_xcalloc(n ? n : 1, sizeof(*j->touch));
    for (uint32_t t = 0; t < n; t++) {
        char name[16];
        snprintf(name, sizeof(name), "ch%u", t);
        j->touch[t] = (fs_touch_count){label(d, name), t == 0 ? UINT32_MAX : t + 1};
    }
}

static void assert_same_customer(const fs_state_customer *a, const fs_dict *da,
                                 const fs_state_customer *b, const fs_dict *db)
{
    assert_true(a->checkpoint == b->checkpoint);
    assert_int_equal(a->n_journeys, b->n_journeys);
    for (uint32_t i = 0; i < a->n_journeys; i++) {
        const fs_state_journey *x = &a->journey[i], *y = &b->journey[i];
        assert_true(x->funnel == y->funnel && x->start_ts == y->start_ts &&
                    x->max_stage == y->max_stage && x->n_touches == y->n_touches);
        for (uint32_t t = 0; t < x->n_touches; t++) {
            assert_same_name(da, x->touch[t].label, db, y->touch[t].label);
            assert_int_equal(x->touch[t].count, y->touch[t].count);
        }
        assert_true(x->timed == y->timed && (!x->timed || x->stage_ts == y->stage_ts));
        assert_true(x->reached == y->reached && x->n_campaigns == y->n_campaigns);
        for (uint32_t t = 0; t < x->n_campaigns; t++) {
            assert_same_name(da, x->campaign[t].label, db, y->campaign[t].label);
            assert_int_equal(x->campaign[t].count, y->campaign[t].count);
        }
    }
}

/* Journeys with 0, 1, 2 and many touches, timestamps at the int64 ends,
 * checkpoints 0, 2^40 and UINT64_MAX. */
static void test_customer_round_trip(void **state)
{
    (void)state;
    static const uint32_t touches[][N_FUNNELS] = {{0, 1, 2}, {2, 40, 0}, {1, 0, 300}};
    static const int64_t ts[] = {INT64_MIN, -1, INT64_MAX};
    static const uint64_t checkpoint[] = {0, (uint64_t)1 << 40, UINT64_MAX};
    for (size_t v = 0; v < 3; v++) {
        dicts d;
        dicts_init(&d);
        fs_state_journey j[N_FUNNELS];
        for (uint32_t f = 0; f < N_FUNNELS; f++) {
            j[f] = (fs_state_journey){.funnel = f,
                                      .start_ts = ts[(f + v) % 3],
                                      .max_stage = n_stages[f] - 1 - (uint32_t)v % 2};
            make_touches(&j[f], &d.a, touches[v][f]);
            if (f == v) { /* one journey a round with the extension's fields */
                j[f].timed = v != 2;
                j[f].stage_ts = ts[v] == INT64_MIN ? INT64_MIN + 1 : ts[v];
                j[f].reached = v == 1 ? (1u << (j[f].max_stage + 1)) - 1 : 0;
                j[f].n_campaigns = 2;
                j[f].campaign = fs_xcalloc(2, sizeof(*j[f].campaign));
                j[f].campaign[0] = (fs_touch_count){label(&d.a, ""), 1};
                j[f].campaign[1] = (fs_touch_count){label(&d.a, "bf"), UINT32_MAX};
            }
        }
        fs_state_customer c = {"c", 1, N_FUNNELS - (uint32_t)v % 2, j + v % 2, checkpoint[v]};
        fs_buf val = {0}, again = {0};
        fs_state_encode_customer(&val, &c, &d.la);
        fs_state_customer got = {"id", 2, 0, NULL, 12345}; /* the checkpoint is overwritten */
        char err[ERR_LEN];
        assert_int_equal(fs_state_decode_customer(val.p, val.len, N_FUNNELS, n_stages, &d.lb, &got,
                                                  err, sizeof(err)),
                         FS_STATE_OK);
        assert_true(got.id_len == 2 && strcmp(got.id, "id") == 0); /* the key's business */
        assert_same_customer(&c, &d.a, &got, &d.b);
        fs_state_encode_customer(&again, &got, &d.lb);
        assert_true(again.len == val.len && memcmp(again.p, val.p, val.len) == 0);
        fs_state_customer_free(&got);
        for (uint32_t f = 0; f < N_FUNNELS; f++) {
            free(j[f].touch);
            free(j[f].campaign);
        }
        fs_buf_free(&val);
        fs_buf_free(&again);
        dicts_free(&d);
    }
}

/* No journey: the mark of a customer gone, version and checkpoint alone;
 * it decodes to no journey and its checkpoint, and re-encodes the same. */
static void test_customer_no_journey(void **state)
{
    (void)state;
    static const struct {
        uint64_t checkpoint;
        const char *bytes;
        size_t len;
    } gone[] = {
        {0, "\x01\x00", 2},
        {3, "\x01\x03", 2},
        {(uint64_t)1 << 40, "\x01\xcf\x00\x00\x01\x00\x00\x00\x00\x00", 10},
        {UINT64_MAX, "\x01\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 10},
    };
    dicts d;
    dicts_init(&d);
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
        fs_state_customer c = {"x", 1, 0, NULL, gone[i].checkpoint};
        fs_state_customer got = {"x", 1, 7, NULL, ~gone[i].checkpoint};
        fs_buf val = {0}, again = {0};
        fs_state_encode_customer(&val, &c, &d.la);
        assert_int_equal(val.len, gone[i].len);
        assert_memory_equal(val.p, gone[i].bytes, gone[i].len);
        char err[ERR_LEN];
        assert_int_equal(fs_state_decode_customer(val.p, val.len, N_FUNNELS, n_stages, &d.lb, &got,
                                                  err, sizeof(err)),
                         FS_STATE_OK);
        assert_int_equal(got.n_journeys, 0);
        assert_true(got.checkpoint == gone[i].checkpoint);
        uint64_t peeked = ~gone[i].checkpoint;
        assert_int_equal(fs_state_peek_checkpoint(val.p, val.len, &peeked), FS_STATE_OK);
        assert_true(peeked == gone[i].checkpoint);
        fs_state_encode_customer(&again, &got, &d.lb);
        assert_true(again.len == val.len && memcmp(again.p, val.p, val.len) == 0);
        fs_state_customer_free(&got);
        fs_buf_free(&val);
        fs_buf_free(&again);
    }
    dicts_free(&d);
}

typedef struct bad_value {
    const char *why;
    const char *bytes;
    size_t len;
} bad_value;

#define BAD(why, lit)                                                                              \
    {                                                                                              \
        why, lit, sizeof(lit) - 1                                                                  \
    }

static void test_customer_malformed(void **state)
{
    (void)state;
    static const bad_value bad[] = {
        BAD("empty", ""),
        BAD("version not an int", "\xa1"
                                  "1"),
        BAD("negative version", "\xff"),
        BAD("funnel out of range", "\x01\x05\x94\x03\x00\x00\x90"),
        BAD("max_stage out of range", "\x01\x05\x94\x00\x00\x03\x90"),
        BAD("funnels descending", "\x01\x05\x94\x01\x00\x00\x90\x94\x00\x00\x00\x90"),
        BAD("funnel twice", "\x01\x05\x94\x01\x00\x00\x90\x94\x01\x00\x00\x90"),
        BAD("journey of 3", "\x01\x05\x93\x00\x00\x00"),
        BAD("journey of 5", "\x01\x05\x95\x00\x00\x00\x90\x00"),
        BAD("not a journey", "\x01\x05\xc0"),
        BAD("touches odd", "\x01\x05\x94\x00\x00\x00\x91\xa1z"),
        BAD("touch channel not a string", "\x01\x05\x94\x00\x00\x00\x92\x01\x01"),
        BAD("touch channel not UTF-8", "\x01\x05\x94\x00\x00\x00\x92\xa1\xff\x01"),
        BAD("touch count negative", "\x01\x05\x94\x00\x00\x00\x92\xa1z\xff"),
        BAD("touch count > uint32", "\x01\x05\x94\x00\x00\x00\x92\xa1z\xcf\x00\x00\x00\x01\x00\x00"
                                    "\x00\x00"),
        BAD("start_ts > int64", "\x01\x05\x94\x00\xcf\x80\x00\x00\x00\x00\x00\x00\x00\x00\x90"),
        BAD("huge array", "\x01\x05\xdd\xff\xff\xff\xff\x00"),
        BAD("huge touches", "\x01\x05\x94\x00\x00\x00\xdd\xff\xff\xff\xfe"),
        BAD("huge string", "\x01\x05\x94\x00\x00\x00\x92\xdb\xff\xff\xff\xff"),
        BAD("a map", "\x01\x05\x80"),
        BAD("never-used byte", "\x01\x05\xc1"),
    };
    /* the checkpoint number itself: a uint after the version */
    static const bad_value bad_checkpoint[] = {
        BAD("no checkpoint", "\x01"),
        BAD("checkpoint negative", "\x01\xff"),
        BAD("checkpoint int64 negative", "\x01\xd3\xff\xff\xff\xff\xff\xff\xff\xfe"),
        BAD("checkpoint nil", "\x01\xc0"),
        BAD("checkpoint a journey", "\x01\x94\x00\x00\x00\x90"),
        BAD("checkpoint truncated", "\x01\xcf\x00\x00\x00\x01"),
    };
    dicts d;
    dicts_init(&d);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[ERR_LEN] = "";
        if (decode_customer(bad[i].bytes, bad[i].len, &d.lb, err) != FS_STATE_EMALFORMED) {
            print_error("accepted: %s\n", bad[i].why);
            fail();
        }
        assert_true(err[0] != '\0');
        if (strstr(err, "checkpoint")) { /* the rule it breaks is after the checkpoint */
            print_error("%s: %s\n", bad[i].why, err);
            fail();
        }
    }
    for (size_t i = 0; i < sizeof(bad_checkpoint) / sizeof(bad_checkpoint[0]); i++) {
        char err[ERR_LEN] = "";
        if (decode_customer(bad_checkpoint[i].bytes, bad_checkpoint[i].len, &d.lb, err) !=
            FS_STATE_EMALFORMED) {
            print_error("accepted: %s\n", bad_checkpoint[i].why);
            fail();
        }
        if (!strstr(err, "checkpoint")) {
            print_error("%s: %s\n", bad_checkpoint[i].why, err);
            fail();
        }
    }
    dicts_free(&d);
}

/* A label of 65 bytes, and more touches than fs_journey can count. */
static void test_customer_limits(void **state)
{
    (void)state;
    dicts d;
    dicts_init(&d);
    char err[ERR_LEN];
    char label65[9 + 65] = "\x01\x05\x94\x00\x00\x00\x92\xd9\x41";
    memset(label65 + 9, 'a', 65);
    assert_int_equal(decode_customer(label65, sizeof(label65), &d.lb, err), FS_STATE_EMALFORMED);
    assert_non_null(strstr(err, "not a label"));
    label65[8] = 0x40; /* 64 bytes and a count: fine */
    label65[9 + 64] = 0x01;
    assert_int_equal(decode_customer(label65, sizeof(label65), &d.lb, err), FS_STATE_OK);

    uint32_t pairs = FS_STATE_MAX_TOUCHES + 1;
    size_t len = 11 + 2 * (size_t)pairs;
    char *v = fs_xmalloc(len);
    memcpy(v, "\x01\x05\x94\x00\x00\x00\xdd", 7);
    uint32_t n = 2 * pairs;
    for (int i = 0; i < 4; i++)
        v[7 + i] = (char)(n >> (24 - 8 * i));
    for (size_t i = 11; i < len; i += 2)
        memcpy(v + i, "\xa0\x01", 2); /* "" once */
    assert_int_equal(decode_customer(v, len, &d.lb, err), FS_STATE_EMALFORMED);
    assert_non_null(strstr(err, "pairs"));
    free(v);
    dicts_free(&d);
}

static void test_customer_damage(void **state)
{
    (void)state;
    dicts d;
    dicts_init(&d);
    fs_state_journey j[2] = {{.funnel = 0, .start_ts = 1714000000000, .max_stage = 2},
                             {.funnel = 2, .start_ts = -5, .max_stage = 4}};
    make_touches(&j[0], &d.a, 3);
    make_touches(&j[1], &d.a, 1);
    fs_state_customer c = {"c", 1, 2, j, 5};
    fs_buf val = {0};
    fs_state_encode_customer(&val, &c, &d.la);
    check_damage(&val, false, &d.lb);
    free(j[0].touch);
    free(j[1].touch);
    fs_buf_free(&val);
    dicts_free(&d);
}

/* ---- versions ----------------------------------------------------------- */

static void test_version(void **state)
{
    (void)state;
    dicts d;
    dicts_init(&d);
    char err[ERR_LEN];
    fs_state_customer c;
    fs_state_part s;
    assert_int_equal(fs_state_decode_customer("\x02\x05\x94\x00\x00\x00\x90", 7, N_FUNNELS,
                                              n_stages, &d.lb, &c, err, sizeof(err)),
                     FS_STATE_EVERSION);
    assert_non_null(strstr(err, "version 2"));
    assert_non_null(strstr(err, "version 1"));
    assert_int_equal(
        fs_state_decode_part("\x02", 1, 0, N_FUNNELS, n_stages, &d.lb, &s, err, sizeof(err)),
        FS_STATE_EVERSION);
    assert_non_null(strstr(err, "version 2"));
    assert_non_null(strstr(err, "version 1"));
    /* a future version's layout is not looked at: anything may follow */
    assert_int_equal(fs_state_decode_part("\xcd\x01\x00\xc1\xc1", 5, 0, N_FUNNELS, n_stages, &d.lb,
                                          &s, err, sizeof(err)),
                     FS_STATE_EVERSION);
    assert_non_null(strstr(err, "version 256"));
    dicts_free(&d);
}

/* ---- partitions --------------------------------------------------------- */

static void test_part_round_trip(void **state)
{
    (void)state;
    dicts d;
    dicts_init(&d);
    fs_state_part want, got;
    make_part(&want, &d.a);
    fs_buf val = {0}, again = {0};
    fs_state_encode_part(&val, &want, N_FUNNELS, n_stages, &d.la);
    char err[ERR_LEN];
    assert_int_equal(fs_state_decode_part(val.p, val.len, want.config_hash, N_FUNNELS, n_stages,
                                          &d.lb, &got, err, sizeof(err)),
                     FS_STATE_OK);
    assert_same_part(&want, &d.a, &got, &d.b);
    fs_state_encode_part(&again, &got, N_FUNNELS, n_stages, &d.lb);
    assert_true(again.len == val.len && memcmp(again.p, val.p, val.len) == 0);
    print_message("partition record of the test: %zu bytes\n", val.len);
    fs_state_part_free(&want, N_FUNNELS);
    fs_state_part_free(&got, N_FUNNELS);
    fs_buf_free(&val);
    fs_buf_free(&again);
    dicts_free(&d);
}

/* Each sketch variant alone in a flow, so a difference shows which. */
static void test_part_sketch_modes(void **state)
{
    (void)state;
    for (int v = 0; v < TTC_N; v++) {
        dicts d;
        dicts_init(&d);
        fs_state_part want = {0}, got;
        want.n_panes = 1;
        want.panes = fs_xcalloc(1, sizeof(*want.panes));
        want.panes[0] = make_slot(1000, 0);
        want.panes[0]->flow[0] = fs_flow_new(n_stages[0]);
        make_ttc(&want.panes[0]->flow[0]->ttc, v);
        const fs_sketch *t = &want.panes[0]->flow[0]->ttc;
        assert_int_equal(t->buckets == NULL, v == TTC_EMPTY || v == TTC_FEW3 || v == TTC_FEW8);
        fs_buf val = {0};
        fs_state_encode_part(&val, &want, N_FUNNELS, n_stages, &d.la);
        char err[ERR_LEN];
        assert_int_equal(fs_state_decode_part(val.p, val.len, 0, N_FUNNELS, n_stages, &d.lb, &got,
                                              err, sizeof(err)),
                         FS_STATE_OK);
        assert_same_sketch(t, &got.panes[0]->flow[0]->ttc);
        fs_state_part_free(&want, N_FUNNELS);
        fs_state_part_free(&got, N_FUNNELS);
        fs_buf_free(&val);
        dicts_free(&d);
    }
}

static void test_part_empty(void **state)
{
    (void)state;
    dicts d;
    dicts_init(&d);
    fs_state_part want = {0}, got;
    want.instance_wm = INT64_MIN;
    want.closed_upto = INT64_MIN;
    fs_buf val = {0};
    fs_state_encode_part(&val, &want, N_FUNNELS, n_stages, &d.la);
    char err[ERR_LEN];
    assert_int_equal(
        fs_state_decode_part(val.p, val.len, 0, N_FUNNELS, n_stages, &d.lb, &got, err, sizeof(err)),
        FS_STATE_OK);
    assert_same_part(&want, &d.a, &got, &d.b);
    print_message("empty partition record: %zu bytes\n", val.len);
    fs_state_part_free(&got, N_FUNNELS);
    fs_buf_free(&val);
    dicts_free(&d);
}

static void test_part_config_mismatch(void **state)
{
    (void)state;
    dicts d;
    dicts_init(&d);
    fs_state_part want = {0}, got;
    want.config_hash = 1;
    fs_buf val = {0};
    fs_state_encode_part(&val, &want, N_FUNNELS, n_stages, &d.la);
    char err[ERR_LEN];
    assert_int_equal(
        fs_state_decode_part(val.p, val.len, 2, N_FUNNELS, n_stages, &d.lb, &got, err, sizeof(err)),
        FS_STATE_ECONFIG);
    assert_non_null(strstr(err, "another configuration"));
    assert_int_equal(got.n_panes + got.n_cohorts, 0);
    fs_buf_free(&val);
    dicts_free(&d);
}

/* The clock alone: the record's first objects, nothing after them read. */
static void test_part_clock(void **state)
{
    (void)state;
    dicts d;
    dicts_init(&d);
    fs_state_part want;
    make_part(&want, &d.a);
    fs_buf val = {0};
    fs_state_encode_part(&val, &want, N_FUNNELS, n_stages, &d.la);
    fs_state_clock c = {false, 1, 2};
    assert_int_equal(fs_state_decode_clock(val.p, val.len, &c), FS_STATE_OK);
    assert_true(c.seen && c.max_ts == INT64_MAX && c.instance_wm == INT64_MIN);
    /* version 1, checkpoint 2^40 (9 bytes), hash (9), seen, INT64_MAX (9), INT64_MIN (9) */
    const size_t clock_end = 1 + 9 + 9 + 1 + 9 + 9;
    for (size_t n = 0; n <= val.len; n++) {
        fs_state_clock t = {false, 1, 2};
        fs_state_err e = fs_state_decode_clock(val.p, n, &t);
        assert_int_equal(e, n < clock_end ? FS_STATE_EMALFORMED : FS_STATE_OK);
        if (e != FS_STATE_OK)
            assert_true(!t.seen && t.max_ts == 1 && t.instance_wm == 2); /* untouched */
    }
    fs_state_part_free(&want, N_FUNNELS);
    val.len = 0;
    fs_state_part none = {.max_ts = -3, .instance_wm = INT64_MIN};
    fs_state_encode_part(&val, &none, N_FUNNELS, n_stages, &d.la);
    assert_int_equal(fs_state_decode_clock(val.p, val.len, &c), FS_STATE_OK);
    assert_true(!c.seen && c.max_ts == -3 && c.instance_wm == INT64_MIN);
    assert_int_equal(fs_state_decode_clock("\x02\x05\x00\xc2\x00\x00", 6, &c), FS_STATE_EVERSION);
    assert_int_equal(fs_state_decode_clock("\x01\x05\x94\x00\x00\x00\x90", 7, &c),
                     FS_STATE_EMALFORMED); /* a customer's value */
    assert_int_equal(fs_state_decode_clock("\x01\x00\xc2\x00\x00", 5, &c),
                     FS_STATE_EMALFORMED); /* the layout before the checkpoint */
    fs_buf_free(&val);
    dicts_free(&d);
}

static void test_part_damage(void **state)
{
    (void)state;
    dicts d;
    dicts_init(&d);
    fs_state_part want;
    make_part(&want, &d.a);
    /* smaller than make_part's (each damage decodes it ~11 x len times) */
    for (uint32_t i = 1; i < want.n_panes; i++)
        fs_window_slot_free(want.panes[i], N_FUNNELS);
    want.n_panes = 1;
    fs_buf val = {0};
    fs_state_encode_part(&val, &want, N_FUNNELS, n_stages, &d.la);
    check_damage(&val, true, &d.lb);
    fs_state_part_free(&want, N_FUNNELS);
    fs_buf_free(&val);
    dicts_free(&d);
}

/* ---- checkpoint numbers ------------------------------------------------- */

/* MessagePack's shortest form of a uint. */
static size_t uint_size(uint64_t v)
{
    return v < 128 ? 1 : v <= UINT8_MAX ? 2 : v <= UINT16_MAX ? 3 : v <= UINT32_MAX ? 5 : 9;
}

static const uint64_t checkpoints[] = {0,
                                       1,
                                       127,
                                       128,
                                       UINT8_MAX + 1,
                                       UINT16_MAX,
                                       (uint64_t)UINT16_MAX + 1,
                                       UINT32_MAX,
                                       (uint64_t)UINT32_MAX + 1,
                                       (uint64_t)1 << 40,
                                       UINT64_MAX};

/* The checkpoint number survives both kinds of record, whatever its size,
 * right after the version in its shortest form; fs_state_peek_checkpoint
 * finds it. */
static void test_checkpoint_round_trip(void **state)
{
    (void)state;
    dicts d;
    dicts_init(&d);
    fs_touch_count touch[1] = {{label(&d.a, "ads"), 3}};
    fs_state_journey j = {
        .funnel = 1, .start_ts = 1714000000000, .max_stage = 1, .n_touches = 1, .touch = touch};
    char err[ERR_LEN];
    for (size_t i = 0; i < sizeof(checkpoints) / sizeof(checkpoints[0]); i++) {
        uint64_t cp = checkpoints[i], peeked;
        fs_buf val = {0}, again = {0};

        fs_state_customer c = {"c", 1, 1, &j, cp}, cgot = {"c", 1, 0, NULL, ~cp};
        fs_state_encode_customer(&val, &c, &d.la);
        assert_int_equal((unsigned char)val.p[0], 0x01);
        assert_int_equal(val.len, 1 + uint_size(cp) + 1 + 1 + 9 + 1 + 1 + 4 + 1);
        assert_int_equal(fs_state_decode_customer(val.p, val.len, N_FUNNELS, n_stages, &d.lb, &cgot,
                                                  err, sizeof(err)),
                         FS_STATE_OK);
        assert_same_customer(&c, &d.a, &cgot, &d.b);
        peeked = ~cp;
        assert_int_equal(fs_state_peek_checkpoint(val.p, val.len, &peeked), FS_STATE_OK);
        assert_true(peeked == cp);
        fs_state_encode_customer(&again, &cgot, &d.lb);
        assert_true(again.len == val.len && memcmp(again.p, val.p, val.len) == 0);
        fs_state_customer_free(&cgot);

        val.len = again.len = 0;
        fs_state_part s = {.checkpoint = cp, .config_hash = 77, .instance_wm = INT64_MIN}, sgot;
        fs_state_encode_part(&val, &s, N_FUNNELS, n_stages, &d.la);
        assert_int_equal((unsigned char)val.p[0], 0x01);
        assert_int_equal((unsigned char)val.p[1 + uint_size(cp)], 77); /* then the hash */
        assert_int_equal(fs_state_decode_part(val.p, val.len, 77, N_FUNNELS, n_stages, &d.lb, &sgot,
                                              err, sizeof(err)),
                         FS_STATE_OK);
        assert_same_part(&s, &d.a, &sgot, &d.b);
        peeked = ~cp;
        assert_int_equal(fs_state_peek_checkpoint(val.p, val.len, &peeked), FS_STATE_OK);
        assert_true(peeked == cp);
        fs_state_clock clock;
        assert_int_equal(fs_state_decode_clock(val.p, val.len, &clock), FS_STATE_OK);
        assert_true(!clock.seen && clock.max_ts == 0 && clock.instance_wm == INT64_MIN);
        fs_state_encode_part(&again, &sgot, N_FUNNELS, n_stages, &d.lb);
        assert_true(again.len == val.len && memcmp(again.p, val.p, val.len) == 0);
        fs_state_part_free(&sgot, N_FUNNELS);

        fs_buf_free(&val);
        fs_buf_free(&again);
    }
    dicts_free(&d);
}

/* The version and the checkpoint number, nothing after them read. */
static void test_peek_checkpoint(void **state)
{
    (void)state;
    uint64_t cp = 0;
    assert_int_equal(fs_state_peek_checkpoint("\x01\x00", 2, &cp), FS_STATE_OK);
    assert_true(cp == 0);
    assert_int_equal(fs_state_peek_checkpoint("\x01\x07", 2, &cp), FS_STATE_OK);
    assert_true(cp == 7);
    assert_int_equal(fs_state_peek_checkpoint("\x01\xcf\x00\x00\x01\x00\x00\x00\x00\x00", 10, &cp),
                     FS_STATE_OK);
    assert_true(cp == (uint64_t)1 << 40);
    /* any integer form whose value is a uint */
    assert_int_equal(fs_state_peek_checkpoint("\x01\xd0\x05", 3, &cp), FS_STATE_OK);
    assert_true(cp == 5);
    /* what follows is not looked at */
    assert_int_equal(fs_state_peek_checkpoint("\x01\x09\xc1\xc1", 4, &cp), FS_STATE_OK);
    assert_true(cp == 9);

    /* another version: refused before its checkpoint (its layout may be anything) */
    assert_int_equal(fs_state_peek_checkpoint("\x02\x07", 2, &cp), FS_STATE_EVERSION);
    assert_int_equal(fs_state_peek_checkpoint("\x02", 1, &cp), FS_STATE_EVERSION);
    assert_int_equal(fs_state_peek_checkpoint("\xcd\x01\x00\xc1", 4, &cp), FS_STATE_EVERSION);

    /* truncated, or not a uint */
    static const bad_value bad[] = {
        BAD("empty", ""),
        BAD("version alone", "\x01"),
        BAD("version cut short", "\xcd\x00"),
        BAD("checkpoint cut short", "\x01\xcf\x00\x00\x01\x00"),
        BAD("checkpoint negative", "\x01\xff"),
        BAD("checkpoint nil", "\x01\xc0"),
        BAD("checkpoint an array", "\x01\x94\x00\x00\x00\x90"),
        BAD("version not an int", "\xa1"
                                  "1"),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (fs_state_peek_checkpoint(bad[i].bytes, bad[i].len, &cp) != FS_STATE_EMALFORMED) {
            print_error("accepted: %s\n", bad[i].why);
            fail();
        }
    }

    /* every prefix of a real value: malformed until the checkpoint is whole */
    dicts d;
    dicts_init(&d);
    fs_buf val = {0};
    fs_state_customer c = {"c", 1, 0, NULL, (uint64_t)1 << 40};
    fs_state_encode_customer(&val, &c, &d.la);
    for (size_t n = 0; n <= val.len; n++)
        assert_int_equal(fs_state_peek_checkpoint(val.p, n, &cp),
                         n < 1 + 9 ? FS_STATE_EMALFORMED : FS_STATE_OK);
    assert_true(cp == (uint64_t)1 << 40);
    fs_buf_free(&val);
    dicts_free(&d);
}

/* ---- partitions: each rule broken --------------------------------------- */

/* Writes a small valid partition value, except for the one defect asked for. */
enum {
    OK_VALUE,
    SEEN_NOT_BOOL,
    TRAILING,
    PANE_TWICE,
    PANES_DESCENDING,
    SLOT_SHORT,
    FLOW_COUNTERS_SHORT,
    FLOW_NOT_ARRAY,
    FIXED_SHORT,
    I128_SHORT,
    TTC_MODE_2,
    TTC_LO_ABOVE_HI,
    TTC_HI_TOO_BIG,
    TTC_FEW_TOO_MANY,
    TTC_FEW_BELOW_LO,
    TTC_FEW_AT_HI,
    TTC_COUNTERS_ODD,
    TTC_GAP_PAST_HI,
    TTC_COUNTERS_OVERFLOW,
    TTC_SUM_NEGATIVE,
    TTC_SUM_TOO_BIG,
    LABEL_TWICE,
    LABEL_SHORT,
    LABEL_NOT_UTF8,
    COHORT_FUNNEL,
    COHORT_SHORT,
    COHORTS_UNSORTED,
    COHORT_PANE_NOT_BOOL,
    CHECKPOINT_NEGATIVE,
    NO_CHECKPOINT, /* the layout before the checkpoint number */
    N_DEFECTS
};

typedef struct pk {
    fs_buf b;
    msgpack_packer p;
    int defect;
} pk;

static int pk_write(void *data, const char *buf, size_t len)
{
    fs_buf_put(data, buf, len);
    return 0;
}

static void pk_str(pk *k, const char *s)
{
    msgpack_pack_str(&k->p, strlen(s));
    msgpack_pack_str_body(&k->p, s, strlen(s));
}

static void pk_u(pk *k, uint64_t v)
{
    msgpack_pack_uint64(&k->p, v);
}

static void pk_ttc(pk *k)
{
    int d = k->defect;
    msgpack_pack_array(&k->p, 7);
    pk_u(k, d == TTC_MODE_2 ? 2 : d >= TTC_COUNTERS_ODD && d <= TTC_COUNTERS_OVERFLOW ? 1 : 0);
    pk_u(k, 5);  /* min */
    pk_u(k, 20); /* max */
    if (d == TTC_SUM_NEGATIVE)
        msgpack_pack_int64(&k->p, -1); /* sum */
    else
        pk_u(k, d == TTC_SUM_TOO_BIG ? 2 * (uint64_t)INT64_MAX + 1 : 25);
    pk_u(k, d == TTC_LO_ABOVE_HI ? 22 : 5);      /* lo */
    pk_u(k, d == TTC_HI_TOO_BIG ? 1 << 20 : 21); /* hi */
    if (d >= TTC_COUNTERS_ODD && d <= TTC_COUNTERS_OVERFLOW) {
        msgpack_pack_array(&k->p, d == TTC_COUNTERS_ODD ? 3 : 4);
        pk_u(k, 0);
        pk_u(k, d == TTC_COUNTERS_OVERFLOW ? UINT64_MAX : 1);
        pk_u(k, d == TTC_GAP_PAST_HI ? 15 : 14); /* 5 + 1 + 14 = 20, the last below hi */
        if (d != TTC_COUNTERS_ODD)
            pk_u(k, 1);
        return;
    }
    uint32_t n = d == TTC_FEW_TOO_MANY ? FS_SKETCH_FEW + 1 : 2;
    msgpack_pack_array(&k->p, n);
    for (uint32_t i = 0; i < n; i++)
        pk_u(k, i == 0 ? (d == TTC_FEW_BELOW_LO ? 4 : 5) : (d == TTC_FEW_AT_HI ? 21 : 20));
}

static void pk_fixed(pk *k, bool defect_here)
{
    msgpack_pack_array(&k->p, defect_here && k->defect == FIXED_SHORT ? 1 : 2);
    if (defect_here && k->defect == I128_SHORT) {
        msgpack_pack_array(&k->p, 1);
        msgpack_pack_int64(&k->p, -1);
    } else {
        msgpack_pack_int64(&k->p, -1);
    }
    if (!(defect_here && k->defect == FIXED_SHORT))
        pk_u(k, 7);
}

static void pk_label(pk *k, const char *name, uint32_t n)
{
    bool short_ = k->defect == LABEL_SHORT;
    msgpack_pack_array(&k->p, 5 + n - short_);
    pk_str(k, name);
    for (int i = 0; i < 3; i++)
        pk_u(k, 1);
    pk_fixed(k, false);
    for (uint32_t s = 0; s < n - short_; s++)
        pk_u(k, 2);
}

static void pk_flow(pk *k, uint32_t n)
{
    if (k->defect == FLOW_NOT_ARRAY) {
        pk_u(k, 0);
        return;
    }
    msgpack_pack_array(&k->p, 7);
    uint32_t counters = 5 * n - (k->defect == FLOW_COUNTERS_SHORT);
    msgpack_pack_array(&k->p, counters);
    for (uint32_t i = 0; i < counters; i++)
        pk_u(k, i);
    pk_u(k, 1);
    pk_u(k, 0);
    pk_fixed(k, true);
    pk_ttc(k);
    msgpack_pack_array(&k->p, 2);
    pk_label(k, "ads", n);
    pk_label(k, k->defect == LABEL_TWICE ? "ads" : k->defect == LABEL_NOT_UTF8 ? "\xc3" : "tv", n);
    msgpack_pack_array(&k->p, 0);
}

static void pk_slot(pk *k, int64_t start)
{
    msgpack_pack_array(&k->p, 2 + N_FUNNELS - (k->defect == SLOT_SHORT));
    msgpack_pack_int64(&k->p, start);
    pk_u(k, 0);
    msgpack_pack_nil(&k->p);
    pk_flow(k, n_stages[1]);
    if (k->defect != SLOT_SHORT)
        msgpack_pack_nil(&k->p);
}

static void pk_cohort(pk *k, uint32_t funnel, int64_t start)
{
    uint32_t n = funnel < N_FUNNELS ? n_stages[funnel] : 2;
    msgpack_pack_array(&k->p, 5 + n - (k->defect == COHORT_SHORT));
    pk_u(k, funnel);
    if (k->defect == COHORT_PANE_NOT_BOOL)
        pk_u(k, 1);
    else
        msgpack_pack_false(&k->p);
    msgpack_pack_int64(&k->p, start);
    for (uint32_t i = 0; i < 2 + n - (k->defect == COHORT_SHORT); i++)
        pk_u(k, i);
}

static void pk_part(pk *k, int defect)
{
    memset(k, 0, sizeof(*k));
    k->defect = defect;
    msgpack_packer_init(&k->p, &k->b, pk_write);
    pk_u(k, 1);
    if (defect == CHECKPOINT_NEGATIVE)
        msgpack_pack_int64(&k->p, -1);
    else if (defect != NO_CHECKPOINT)
        pk_u(k, 4242);
    pk_u(k, 0xfeedfacecafebeefULL);
    if (defect == SEEN_NOT_BOOL)
        pk_u(k, 1);
    else
        msgpack_pack_true(&k->p);
    for (int i = 0; i < 3; i++)
        msgpack_pack_int64(&k->p, -1000);
    msgpack_pack_array(&k->p, 2);
    pk_slot(k, defect == PANES_DESCENDING ? 120000 : 60000);
    pk_slot(k, defect == PANE_TWICE ? 60000 : 90000);
    msgpack_pack_array(&k->p, 0);
    msgpack_pack_array(&k->p, 0);
    msgpack_pack_array(&k->p, 2);
    pk_cohort(k, defect == COHORTS_UNSORTED ? 2 : 0, 5);
    pk_cohort(k, defect == COHORT_FUNNEL ? N_FUNNELS : 1, 5);
    if (defect == TRAILING)
        msgpack_pack_nil(&k->p);
}

static void test_part_malformed(void **state)
{
    (void)state;
    dicts d;
    dicts_init(&d);
    pk k;
    char err[ERR_LEN];
    pk_part(&k, OK_VALUE);
    assert_int_equal(decode_part(k.b.p, k.b.len, &d.lb, err), FS_STATE_OK);
    fs_buf_free(&k.b);
    for (int defect = OK_VALUE + 1; defect < N_DEFECTS; defect++) {
        pk_part(&k, defect);
        char why[32];
        snprintf(why, sizeof(why), "defect %d", defect);
        assert_malformed_part(&k.b, &d.lb, why, err);
        /* refused for the rule it breaks, not at the checkpoint before it */
        if ((strstr(err, "checkpoint") != NULL) != (defect == CHECKPOINT_NEGATIVE)) {
            print_error("%s: %s\n", why, err);
            fail();
        }
        fs_buf_free(&k.b);
    }
    dicts_free(&d);
}

/* A counter-mode ttc asks for the whole counter array: what it may claim is
 * still bounded by the value's bytes. */
static void test_part_huge_counts(void **state)
{
    (void)state;
    dicts d;
    dicts_init(&d);
    static const bad_value bad[] = {
        BAD("panes 2^32-1", "\x01\x05\x00\xc3\x00\x00\x00\xdd\xff\xff\xff\xff"),
        BAD("cohorts 2^32-1", "\x01\x05\x00\xc3\x00\x00\x00\x90\x90\x90\xdd\xff\xff\xff\xff\x00"),
        BAD("slot of 2^16-1", "\x01\x05\x00\xc3\x00\x00\x00\x91\xdc\xff\xff\x00\x00"),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[ERR_LEN];
        fs_state_part s;
        if (fs_state_decode_part(bad[i].bytes, bad[i].len, 0, N_FUNNELS, n_stages, &d.lb, &s, err,
                                 sizeof(err)) != FS_STATE_EMALFORMED) {
            print_error("accepted: %s\n", bad[i].why);
            fail();
        }
        if (!strstr(err, "cannot fit")) { /* refused for its count, nothing before it */
            print_error("%s: %s\n", bad[i].why, err);
            fail();
        }
    }
    dicts_free(&d);
}

/* ---- the config hash ---------------------------------------------------- */

static const char base_yaml[] =
    "input: {topic: in}\n"
    "window: {size: 1m, hop: 30s, max_out_of_orderness: 5s, idle_timeout: 30s}\n"
    "funnels:\n"
    "  - name: aida\n"
    "    mode: open\n"
    "    conversion_window: 7d\n"
    "    stages:\n"
    "      - {name: awareness, events: [ad_impression]}\n"
    "      - {name: purchase,  events: [purchase]}\n"
    "  - name: shop\n"
    "    mode: strict\n"
    "    conversion_window: 1h\n"
    "    stages:\n"
    "      - {name: view, events: [product_view]}\n"
    "      - {name: buy,  events: [purchase]}\n";

/* base_yaml with its first `from` replaced by `to`. */
static uint64_t hash_of(const char *from, const char *to)
{
    char yaml[sizeof(base_yaml) + 64];
    const char *at = strstr(base_yaml, from);
    assert_non_null(at);
    size_t head = (size_t)(at - base_yaml);
    snprintf(yaml, sizeof(yaml), "%.*s%s%s", (int)head, base_yaml, to, at + strlen(from));
    char err[ERR_LEN];
    fs_config *cfg = fs_config_parse(yaml, strlen(yaml), "cfg.yaml", err, sizeof(err));
    if (!cfg) {
        print_error("%s\n", err);
        fail();
    }
    uint64_t h = fs_state_config_hash(cfg);
    fs_config_free(cfg);
    return h;
}

static void test_config_hash(void **state)
{
    (void)state;
    uint64_t base = hash_of("in", "in");
    assert_true(hash_of("in", "in") == base);
    /* not state: topics, idle timeout, threads */
    assert_true(hash_of("topic: in", "topic: other") == base);
    assert_true(hash_of("idle_timeout: 30s", "idle_timeout: 1m") == base);
    static const char *changes[][2] = {
        {"name: awareness", "name: aware"},
        {"conversion_window: 7d", "conversion_window: 6d"},
        {"size: 1m", "size: 2m"},
        {"hop: 30s", "hop: 20s"},
        {"max_out_of_orderness: 5s", "max_out_of_orderness: 6s"},
        {"name: aida", "name: aidb"},
        {"mode: open", "mode: strict"},
        {"[ad_impression]", "[ad_click]"},
        {"[ad_impression]", "[ad_impression, x]"},
        {"name: buy", "name: buy2"},
        {"mode: open", "mode: unordered"},
        {"conversion_window: 1h", "conversion_window: 1h\n    breakdowns: [campaign]"},
        {"conversion_window: 1h", "conversion_window: 1h\n    stage_time: false"},
    };
    for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
        if (hash_of(changes[i][0], changes[i][1]) == base) {
            print_error("same hash after %s -> %s\n", changes[i][0], changes[i][1]);
            fail();
        }
    }
    /* options at their defaults hash as before they existed; the record
     * size is no state */
    assert_true(hash_of("conversion_window: 1h",
                        "conversion_window: 1h\n    breakdowns: [segment, channel]") == base);
    assert_true(hash_of("conversion_window: 1h", "conversion_window: 1h\n    stage_time: true") ==
                base);
    assert_true(hash_of("conversion_window: 1h",
                        "conversion_window: 1h\n    max_breakdown_values: 3") == base);
    /* an optional stage changes the rules */
    uint64_t three = hash_of("      - {name: buy,", "      - {name: pay, events: [pay]}\n"
                                                    "      - {name: buy,");
    assert_true(hash_of("      - {name: buy,",
                        "      - {name: pay, events: [pay], optional: true}\n"
                        "      - {name: buy,") != three);
}

/* A journey with the extension's fields whose reached set disagrees with
 * its stage, and one of 5 or 6 elements, are malformed. */
static void test_customer_extension_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *why;
        const char *bytes;
        size_t len;
    } bad[] = {
        {"3 stages reached at stage 1", "\x01\x00\x97\x00\x00\x01\x92\xa1x\x01\x00\x07\x90", 13},
        {"reached beyond the stages", "\x01\x00\x97\x00\x00\x01\x92\xa1x\x01\x00\xcd\x01\x00\x90",
         15},
        {"5 elements", "\x01\x00\x95\x00\x00\x01\x92\xa1x\x01\x00", 11},
        {"campaign touches not pairs", "\x01\x00\x97\x00\x00\x01\x92\xa1x\x01\x00\x03\x91\xa1x",
         15},
    };
    dicts d;
    dicts_init(&d);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fs_state_customer got;
        char err[ERR_LEN];
        if (fs_state_decode_customer(bad[i].bytes, bad[i].len, N_FUNNELS, n_stages, &d.lb, &got,
                                     err, sizeof(err)) != FS_STATE_EMALFORMED) {
            print_error("%s: decoded\n", bad[i].why);
            fail();
        }
    }
    /* the same journey, well formed: stage 1, stages 0 and 2 reached */
    fs_state_customer got;
    char err[ERR_LEN];
    assert_int_equal(fs_state_decode_customer("\x01\x00\x97\x00\x00\x01\x92\xa1x\x01\x00\x05\x90",
                                              13, N_FUNNELS, n_stages, &d.lb, &got, err,
                                              sizeof(err)),
                     FS_STATE_OK);
    assert_true(got.n_journeys == 1 && got.journey[0].reached == 5 && got.journey[0].timed);
    fs_state_customer_free(&got);
    dicts_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_customer_typical_bytes),
        cmocka_unit_test(test_customer_round_trip),
        cmocka_unit_test(test_customer_no_journey),
        cmocka_unit_test(test_customer_malformed),
        cmocka_unit_test(test_customer_extension_malformed),
        cmocka_unit_test(test_customer_limits),
        cmocka_unit_test(test_customer_damage),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_part_round_trip),
        cmocka_unit_test(test_part_sketch_modes),
        cmocka_unit_test(test_part_empty),
        cmocka_unit_test(test_part_config_mismatch),
        cmocka_unit_test(test_part_clock),
        cmocka_unit_test(test_part_damage),
        cmocka_unit_test(test_part_malformed),
        cmocka_unit_test(test_part_huge_counts),
        cmocka_unit_test(test_checkpoint_round_trip),
        cmocka_unit_test(test_peek_checkpoint),
        cmocka_unit_test(test_config_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
