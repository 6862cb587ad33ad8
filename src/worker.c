/* worker.c -- events -> journeys -> window partials (see worker.h).
 *
 * Order of work for one valid event at time t (SPEC §2, §3):
 *   1. the watermark moves: max_ts - max_out_of_orderness; if it advanced,
 *      expiry timers below it fire (counted at their expiry time), then, if a
 *      window boundary or cohort emission boundary was crossed, a step is cut;
 *   2. if this worker owns the customer, each funnel's state machine decides
 *      what the event does and the counts go to every open window holding the
 *      count's time. A count whose window has closed is "late": it is dropped
 *      from that window and the event adds 1 to late_events of the funnel in
 *      the earliest open window.
 * Rejected messages are counted (worker 0) in the earliest open window.
 */
#include "worker.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void fs_window_slot_free(fs_window_slot *slot, uint32_t n_funnels)
{
    if (!slot)
        return;
    for (uint32_t f = 0; f < n_funnels; f++)
        fs_flow_free(slot->flow[f]);
    free(slot);
}

void fs_step_free(fs_step *s, uint32_t n_funnels)
{
    if (!s)
        return;
    for (uint32_t i = 0; i < s->n_closed; i++)
        fs_window_slot_free(s->closed[i], n_funnels);
    for (uint32_t i = 0; i < s->n_cohorts; i++)
        free(s->cohorts[i].cohort);
    free(s->closed);
    free(s->cohorts);
    free(s->label_names);
    free(s->label_lens);
    free(s);
}

/* ---- timers: one wheel node per journey -------------------------------- */

static uint32_t timer_node(const fs_worker *w, uint32_t record, uint32_t funnel)
{
    assert(record < (FS_WHEEL_NONE - FS_WHEEL_HEADS) >> w->funnel_bits);
    return record << w->funnel_bits | funnel;
}

static fs_journey *timer_journey(fs_worker *w, uint32_t node, fs_customer **c, uint32_t *record)
{
    *record = node >> w->funnel_bits;
    assert(*record < w->records->n_blocks);
    *c = fs_slab_at(w->records, *record);
    return &(*c)->journey[node & ((1u << w->funnel_bits) - 1)];
}

static fs_wheel_link *timer_link(void *ctx, uint32_t node)
{
    fs_customer *c;
    uint32_t record;
    return &timer_journey(ctx, node, &c, &record)->timer;
}

static int64_t timer_expiry(void *ctx, uint32_t node)
{
    fs_worker *w = ctx;
    fs_customer *c;
    uint32_t record;
    const fs_journey *j = timer_journey(w, node, &c, &record);
    return fs_journey_expiry(j, &w->funnels->funnel[node & ((1u << w->funnel_bits) - 1)]);
}

static void timer_prefetch(void *ctx, uint32_t node)
{
    fs_worker *w = ctx;
    uint32_t record = node >> w->funnel_bits;
    if (record < w->records->n_blocks)
        __builtin_prefetch(&((fs_customer *)fs_slab_at(w->records, record))
                                ->journey[node & ((1u << w->funnel_bits) - 1)]);
}

void fs_worker_init(fs_worker *w, uint32_t id, uint32_t n_workers, const fs_config *cfg,
                    const fs_funnels *funnels, fs_journey_table *table, fs_step_fn emit,
                    void *emit_ctx)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->n_workers = n_workers;
    w->cfg = cfg;
    w->funnels = funnels;
    w->table = table;
    w->win.size = cfg->window_size_ms;
    w->win.hop = cfg->window_hop_ms;
    w->win.per_time = (uint32_t)(cfg->window_size_ms / cfg->window_hop_ms);
    w->max_out_of_orderness = cfg->max_out_of_orderness_ms;
    w->emit_interval = cfg->cohort_emit_interval_ms;
    w->max_ts = w->wm = w->min_part_ts = INT64_MIN;
    fs_dict_init(&w->labels);
    fs_i64map_init(&w->windows);
    w->cohort_delta = fs_xcalloc(funnels->n, sizeof(*w->cohort_delta));
    for (uint32_t f = 0; f < funnels->n; f++)
        fs_i64map_init(&w->cohort_delta[f]);
    while ((1u << w->funnel_bits) < funnels->n)
        w->funnel_bits++;
    w->records = fs_journey_table_records(table, id);
    fs_wheel_init(&w->timers, (fs_wheel_ops){timer_link, timer_expiry, timer_prefetch, w});
    w->scratch_flows = fs_xcalloc(w->win.per_time, sizeof(*w->scratch_flows));
    w->emit = emit;
    w->emit_ctx = emit_ctx;
}

static void free_map_values(fs_i64map *m, uint32_t n_funnels, bool slots)
{
    for (size_t i = 0; i <= m->mask; i++)
        if (m->slots[i].value) {
            if (slots)
                fs_window_slot_free(m->slots[i].value, n_funnels);
            else
                free(m->slots[i].value);
        }
    fs_i64map_free(m);
}

void fs_worker_destroy(fs_worker *w)
{
    free_map_values(&w->windows, w->funnels->n, true);
    for (uint32_t f = 0; f < w->funnels->n; f++)
        free_map_values(&w->cohort_delta[f], 0, false);
    free(w->cohort_delta);
    fs_wheel_destroy(&w->timers);
    free(w->touch_buf);
    free(w->parts);
    fs_dict_free(&w->labels);
    free(w->scratch_flows);
}

/* ---- windows ------------------------------------------------------------ */

static fs_window_slot *slot_at(fs_worker *w, int64_t start)
{
    if (w->last_slot && w->last_slot->start == start)
        return w->last_slot;
    fs_window_slot *slot = fs_i64map_get(&w->windows, start);
    if (!slot) {
        slot = fs_xcalloc(1, sizeof(*slot) + w->funnels->n * sizeof(fs_flow *));
        slot->start = start;
        fs_i64map_put(&w->windows, start, slot);
    }
    w->last_slot = slot;
    return slot;
}

static fs_flow *flow_at(fs_worker *w, int64_t start, uint32_t funnel)
{
    fs_window_slot *slot = slot_at(w, start);
    if (!slot->flow[funnel])
        slot->flow[funnel] = fs_flow_new(w->funnels->funnel[funnel].n_stages);
    return slot->flow[funnel];
}

/* The open windows of `funnel` that contain ts, into w->scratch_flows.
 * *late is set when some window containing ts is already closed. */
static uint32_t open_flows(fs_worker *w, uint32_t funnel, int64_t ts, bool *late)
{
    uint32_t n = 0;
    int64_t start = fs_window_last_start(&w->win, ts);
    for (uint32_t i = 0; i < w->win.per_time; i++, start -= w->win.hop) {
        if (fs_window_is_closed(&w->win, start, w->wm)) {
            *late = true;
            break; /* earlier windows end even earlier */
        }
        w->scratch_flows[n++] = flow_at(w, start, funnel);
    }
    return n;
}

static void count_late(fs_worker *w, uint32_t funnel)
{
    flow_at(w, fs_window_earliest_open(&w->win, w->wm), funnel)->late_events++;
    w->stats.late_events++;
}

static void count_rejected(fs_worker *w, fs_reject reason)
{
    w->stats.rejected[reason]++;
    if (!w->have_wm)
        w->pending_rejected++;
    else
        slot_at(w, fs_window_earliest_open(&w->win, w->wm))->rejected++;
}

/* ---- cohorts ------------------------------------------------------------ */

typedef struct cohort_update {
    uint32_t from, to; /* reached[from..to] += 1 */
    bool started, completed;
} cohort_update;

static void count_cohort(fs_worker *w, const fs_funnel *f, int64_t start_ts, cohort_update u)
{
    int64_t start = fs_window_last_start(&w->win, start_ts);
    for (uint32_t i = 0; i < w->win.per_time; i++, start -= w->win.hop) {
        int64_t final_at = fs_sat_add(fs_window_end(&w->win, start), f->conversion_window_ms);
        if (w->wm >= final_at)
            break; /* the cohort's final record is out: too late to change it */
        fs_cohort *c = fs_i64map_get(&w->cohort_delta[f->index], start);
        if (!c) {
            c = fs_cohort_new(f->n_stages);
            fs_i64map_put(&w->cohort_delta[f->index], start, c);
        }
        c->started += u.started;
        c->completed += u.completed;
        for (uint32_t s = u.from; s <= u.to; s++)
            c->reached[s]++;
    }
}

/* ---- journeys ----------------------------------------------------------- */

typedef struct event_ctx {
    const fs_event *ev;
    uint32_t channel, segment; /* label ids, interned on first need */
} event_ctx;

static uint32_t channel_of(fs_worker *w, event_ctx *x)
{
    if (x->channel == UINT32_MAX)
        x->channel = fs_dict_intern(&w->labels, x->ev->channel.ptr, x->ev->channel.len);
    return x->channel;
}

static uint32_t segment_of(fs_worker *w, event_ctx *x)
{
    if (x->segment == UINT32_MAX)
        x->segment = fs_dict_intern(&w->labels, x->ev->segment.ptr, x->ev->segment.len);
    return x->segment;
}

static fs_journey *start_journey(fs_worker *w, fs_customer *c, uint32_t record, const fs_funnel *f,
                                 int64_t ts, uint32_t stage, uint32_t channel)
{
    fs_journey *j = &c->journey[f->index];
    assert(!j->active);
    fs_journey_init(j, ts, stage, channel);
    c->n_active++;
    fs_wheel_add(&w->timers, timer_node(w, record, f->index), fs_journey_expiry(j, f));
    w->stats.journeys_started++;
    if (++w->stats.journeys_active > w->stats.journeys_active_peak)
        w->stats.journeys_active_peak = w->stats.journeys_active;
    return j;
}

/* Inside c's write section. The wheel has already let go of a fired timer. */
static void end_journey(fs_worker *w, fs_customer *c, uint32_t record, const fs_funnel *f)
{
    fs_journey *j = &c->journey[f->index];
    if (fs_wheel_linked(&j->timer))
        fs_wheel_cancel(&w->timers, timer_node(w, record, f->index));
    fs_journey_table_end(w->table, w->id, j);
    assert(c->n_active > 0);
    c->n_active--;
    w->stats.journeys_active--;
}

static void touch(fs_worker *w, fs_journey *j, uint32_t channel)
{
    fs_journey_table_touch(w->table, w->id, j, channel);
}

/* reached[from..to] (+ skipped below `to`) for the event's channel and segment. */
static bool count_reach(fs_worker *w, const fs_funnel *f, event_ctx *x, uint32_t from, uint32_t to,
                        bool entered)
{
    bool late = false;
    uint32_t n = open_flows(w, f->index, x->ev->ts, &late);
    if (n == 0)
        return late;
    uint32_t ch = channel_of(w, x), seg = segment_of(w, x);
    for (uint32_t i = 0; i < n; i++) {
        fs_flow *fl = w->scratch_flows[i];
        fs_label_stats *cs = fs_flow_channel(fl, ch);
        fs_label_stats *ss = fs_flow_segment(fl, seg);
        if (entered)
            fl->entered[to]++;
        for (uint32_t s = from; s <= to; s++) {
            fl->reached[s]++;
            cs->reached[s]++;
            ss->reached[s]++;
        }
        for (uint32_t s = from; s < to; s++)
            fl->skipped[s]++;
    }
    return late;
}

static bool count_completion(fs_worker *w, const fs_funnel *f, event_ctx *x, fs_journey *j)
{
    bool late = false;
    uint32_t n = open_flows(w, f->index, x->ev->ts, &late);
    if (n == 0)
        return late;
    int64_t ttc = fs_sat_sub(x->ev->ts, j->start_ts);
    fs_fixed revenue = fs_fixed_from_double(x->ev->value);
    uint32_t ch = channel_of(w, x), seg = segment_of(w, x);
    uint32_t n_touches = fs_journey_table_touches(w->table, w->id, j, &w->touch_buf, &w->touch_cap);
    const fs_touch_count *touches = w->touch_buf;
    uint64_t total = 0;
    for (uint32_t t = 0; t < n_touches; t++)
        total += touches[t].count;
    for (uint32_t i = 0; i < n; i++) {
        fs_flow *fl = w->scratch_flows[i];
        fl->completed++;
        fs_fixed_add(&fl->revenue, revenue);
        fs_sketch_add(&fl->ttc, ttc < 0 ? 0 : ttc);
        fs_label_stats *cs = fs_flow_channel(fl, ch);
        cs->completed++;
        cs->last_touch++;
        fs_flow_segment(fl, seg)->completed++;
        fs_flow_channel(fl, fs_journey_first_channel(j))->first_touch++;
        for (uint32_t t = 0; t < n_touches; t++)
            fs_fixed_add(&fs_flow_channel(fl, touches[t].channel)->linear,
                         fs_fixed_ratio(touches[t].count, total));
    }
    return late;
}

/* Counts abandoned[max_stage] at the expiry time. */
static bool count_expiry(fs_worker *w, const fs_funnel *f, const fs_journey *j)
{
    bool late = false;
    uint32_t n = open_flows(w, f->index, fs_journey_expiry(j, f), &late);
    for (uint32_t i = 0; i < n; i++)
        w->scratch_flows[i]->abandoned[j->max_stage]++;
    w->stats.journeys_abandoned++;
    return late;
}

static bool count_exclusion(fs_worker *w, const fs_funnel *f, int64_t ts, const fs_journey *j)
{
    bool late = false;
    uint32_t n = open_flows(w, f->index, ts, &late);
    for (uint32_t i = 0; i < n; i++)
        w->scratch_flows[i]->excluded[j->max_stage]++;
    w->stats.journeys_excluded++;
    return late;
}

/* START or ADVANCE to d->stage; completes the journey at the last stage. */
static bool reach_stage(fs_worker *w, fs_customer *c, uint32_t record, const fs_funnel *f,
                        event_ctx *x, fs_journey *j, const fs_decision *d)
{
    bool late;
    cohort_update cu = {.to = d->stage, .completed = d->completes};
    if (!j) {
        j = start_journey(w, c, record, f, x->ev->ts, d->stage, channel_of(w, x));
        late = count_reach(w, f, x, 0, d->stage, true);
        cu.from = 0;
        cu.started = true;
    } else {
        late = count_reach(w, f, x, j->max_stage + 1u, d->stage, false);
        cu.from = j->max_stage + 1u;
        touch(w, j, channel_of(w, x));
        fs_journey_set_stage(j, d->stage);
    }
    count_cohort(w, f, j->start_ts, cu);
    if (d->completes) {
        late |= count_completion(w, f, x, j);
        w->stats.journeys_completed++;
        end_journey(w, c, record, f);
    }
    return late;
}

static void apply_event(fs_worker *w, const fs_event *ev, uint16_t part)
{
    int32_t type = fs_funnels_type_id(w->funnels, ev->event);
    uint32_t record = FS_RECORD_NONE;
    fs_customer *c = fs_journey_table_find(w->table, ev->customer_hash, ev->customer_id.ptr,
                                           ev->customer_id.len, &record);
    if (type < 0)
        w->stats.events_ignored++;
    if (!c && type < 0)
        return; /* no journey to expire, no funnel that cares */
    event_ctx x = {ev, UINT32_MAX, UINT32_MAX};
    if (c)
        fs_customer_write_begin(c);
    for (uint32_t fi = 0; fi < w->funnels->n; fi++) {
        const fs_funnel *f = &w->funnels->funnel[fi];
        fs_journey *j = c && c->journey[fi].active ? &c->journey[fi] : NULL;
        int role = fs_funnel_role(f, type);
        if (!j && role < 0)
            continue;
        fs_decision d = fs_funnel_decide(f, j, ev->ts, role);
        bool late = false;
        if (d.expire) {
            late |= count_expiry(w, f, j);
            end_journey(w, c, record, f);
            j = NULL;
        }
        switch (d.action) {
        case FS_ACT_IGNORE:
            break;
        case FS_ACT_EXCLUDE:
            late |= count_exclusion(w, f, ev->ts, j);
            end_journey(w, c, record, f);
            break;
        case FS_ACT_TOUCH:
            touch(w, j, channel_of(w, &x));
            break;
        case FS_ACT_START:
            if (!c) {
                c = fs_journey_table_insert(w->table, ev->customer_hash, ev->customer_id.ptr,
                                            ev->customer_id.len, part, &record);
                fs_customer_write_begin(c);
            }
            /* fall through */
        case FS_ACT_ADVANCE:
            late |= reach_stage(w, c, record, f, &x, j, &d);
            break;
        }
        if (late)
            count_late(w, fi);
    }
    if (!c)
        return;
    fs_customer_write_end(c);
    if (c->n_active == 0)
        fs_journey_table_remove(w->table, c, record);
}

/* ---- watermark and steps ------------------------------------------------ */

static int cmp_slot(const void *a, const void *b)
{
    int64_t x = (*(fs_window_slot *const *)a)->start, y = (*(fs_window_slot *const *)b)->start;
    return (x > y) - (x < y);
}

static void collect_closed(fs_worker *w, fs_step *s, bool all)
{
    uint32_t cap = 0;
    for (size_t i = 0; i <= w->windows.mask; i++) {
        fs_window_slot *slot = w->windows.slots[i].value;
        if (!slot || !(all || fs_window_is_closed(&w->win, slot->start, s->wm)))
            continue;
        if (s->n_closed == cap) {
            cap = cap ? cap * 2 : 4;
            s->closed = fs_xrealloc(s->closed, cap * sizeof(*s->closed));
        }
        s->closed[s->n_closed++] = slot;
    }
    for (uint32_t i = 0; i < s->n_closed; i++)
        fs_i64map_remove(&w->windows, s->closed[i]->start);
    if (s->n_closed > 1) /* qsort must not see the NULL of an empty list */
        qsort(s->closed, s->n_closed, sizeof(*s->closed), cmp_slot);
    w->last_slot = NULL;
}

static void collect_cohorts(fs_worker *w, fs_step *s)
{
    uint32_t total = 0;
    for (uint32_t f = 0; f < w->funnels->n; f++)
        total += (uint32_t)w->cohort_delta[f].count;
    s->cohorts = fs_xmalloc((total ? total : 1) * sizeof(*s->cohorts));
    for (uint32_t f = 0; f < w->funnels->n; f++) {
        fs_i64map *m = &w->cohort_delta[f];
        for (size_t i = 0; i <= m->mask; i++)
            if (m->slots[i].value)
                s->cohorts[s->n_cohorts++] =
                    (fs_cohort_delta){f, m->slots[i].key, m->slots[i].value};
        fs_i64map_free(m);
        fs_i64map_init(m);
    }
}

static void collect_labels(fs_worker *w, fs_step *s)
{
    s->first_label = w->labels_sent;
    s->n_labels = w->labels.count - w->labels_sent;
    s->label_names = fs_xmalloc((s->n_labels ? s->n_labels : 1) * sizeof(char *));
    s->label_lens = fs_xmalloc((s->n_labels ? s->n_labels : 1) * sizeof(uint32_t));
    for (uint32_t i = 0; i < s->n_labels; i++) {
        s->label_names[i] = fs_dict_name(&w->labels, s->first_label + i);
        s->label_lens[i] = fs_dict_len(&w->labels, s->first_label + i);
    }
    w->labels_sent = w->labels.count;
}

static void cut_step(fs_worker *w, int64_t wm_before, bool final)
{
    fs_step *s = fs_xcalloc(1, sizeof(*s));
    s->seq = w->steps++;
    s->wm_before = wm_before;
    s->wm = w->wm;
    s->max_ts = w->max_ts;
    s->src_seq = w->src_seq;
    s->src_mark = w->src_mark;
    s->src_ns = w->src_ns;
    s->final = final;
    collect_closed(w, s, final);
    collect_cohorts(w, s);
    collect_labels(w, s);
    w->emit(w->emit_ctx, w->id, s);
}

/* Expiry timers fire while the watermark passes them: wm > expiry time. They
 * count against the windows as they were before this advance. The wheel
 * hands them out in no particular order, which changes no count: each lands
 * in the windows of its own expiry time, and lateness is judged against the
 * same watermark for all of them. */
static void fire_timers(fs_worker *w, int64_t new_wm, bool all)
{
    int64_t through = all ? INT64_MAX : new_wm - 1; /* new_wm > the old wm >= INT64_MIN */
    uint32_t node;
    while ((node = fs_wheel_pop(&w->timers, through)) != FS_WHEEL_NONE) {
        fs_customer *c;
        uint32_t record;
        fs_journey *j = timer_journey(w, node, &c, &record);
        const fs_funnel *f = &w->funnels->funnel[node & ((1u << w->funnel_bits) - 1)];
        assert(j->active && fs_journey_expiry(j, f) <= through);
        if (count_expiry(w, f, j))
            count_late(w, f->index);
        fs_customer_write_begin(c);
        end_journey(w, c, record, f);
        fs_customer_write_end(c);
        if (c->n_active == 0)
            fs_journey_table_remove(w->table, c, record);
    }
}

static bool crosses(int64_t a, int64_t b, int64_t every)
{
    return fs_floor_div(a, every) != fs_floor_div(b, every);
}

static void advance_watermark(fs_worker *w, int64_t new_wm)
{
    int64_t old = w->wm;
    fire_timers(w, new_wm, false);
    w->wm = new_wm;
    if (crosses(old, new_wm, w->win.hop) || crosses(old, new_wm, w->emit_interval))
        cut_step(w, old, false);
}

enum { PART_NONE = 0, PART_ACTIVE = 1, PART_IDLE = 2 };

static fs_part_clock *part_clock(fs_worker *w, uint32_t p)
{
    if (__builtin_expect(p >= w->n_parts, 0)) {
        uint32_t n = p + 1 > 2 * w->n_parts ? p + 1 : 2 * w->n_parts;
        w->parts = fs_xrealloc(w->parts, n * sizeof(*w->parts));
        memset(w->parts + w->n_parts, 0, (n - w->n_parts) * sizeof(*w->parts));
        w->n_parts = n;
    }
    return &w->parts[p];
}

/* The instance watermark from the partition clocks; advances it if it grew. */
static void update_watermark(fs_worker *w)
{
    bool any = false;
    int64_t min = INT64_MAX;
    for (uint32_t p = 0; p < w->n_parts; p++) {
        const fs_part_clock *pc = &w->parts[p];
        if (pc->state != PART_ACTIVE)
            continue;
        any = true;
        int64_t ts = pc->seen ? pc->max_ts : INT64_MIN;
        if (ts < min)
            min = ts;
    }
    w->min_part_ts = any ? min : INT64_MIN;
    if (!any || (min == INT64_MIN && !w->have_wm))
        return; /* nothing active, or some active partition has not spoken yet */
    int64_t wm = fs_sat_sub(min, w->max_out_of_orderness);
    if (!w->have_wm) {
        /* The first watermark: events counted while an assigned partition
         * held it back may already lie in windows it closes. */
        w->have_wm = true;
        if (w->pending_rejected) {
            slot_at(w, fs_window_earliest_open(&w->win, wm))->rejected += w->pending_rejected;
            w->pending_rejected = 0;
        }
        advance_watermark(w, wm);
    } else if (wm > w->wm) {
        advance_watermark(w, wm);
    }
}

/* Raising a partition's clock moves the minimum only if that partition was
 * at the minimum (or was not counted), so most events skip the scan. */
static void observe_ts(fs_worker *w, uint32_t part, int64_t ts)
{
    fs_part_clock *pc = part_clock(w, part);
    bool rescan = pc->state != PART_ACTIVE || !pc->seen || pc->max_ts <= w->min_part_ts;
    if (!pc->seen || ts > pc->max_ts)
        pc->max_ts = ts;
    pc->seen = true;
    pc->state = PART_ACTIVE;
    if (ts > w->max_ts)
        w->max_ts = ts;
    if (rescan)
        update_watermark(w);
}

void fs_worker_control(fs_worker *w, const fs_part_ctl *ctl, uint32_t n)
{
    if (n == 0)
        return;
    for (uint32_t i = 0; i < n; i++) {
        fs_part_clock *pc = part_clock(w, ctl[i].part);
        switch (ctl[i].op) {
        case FS_PART_ASSIGN:
            *pc = (fs_part_clock){.state = PART_ACTIVE};
            break;
        case FS_PART_IDLE:
            if (pc->state == PART_ACTIVE)
                pc->state = PART_IDLE;
            break;
        case FS_PART_REVOKE:
            pc->state = PART_NONE;
            break;
        }
    }
    update_watermark(w);
}

/* Lookups are random accesses into a store much larger than the caches,
 * and the events of a batch are known in advance. So the worker walks two
 * cursors ahead of the event it applies: the index slot, then the record it
 * points at (the customer's whole state: id and journeys) are pulled into
 * the cache while earlier events are applied, and the event itself does
 * the one lookup. Distances in events. */
#define AHEAD_SLOT   12
#define AHEAD_RECORD 5

static bool owns(const fs_worker *w, const fs_event *ev, const uint8_t *status, uint32_t k)
{
    return status[k] == FS_OK && fs_worker_owner(ev[k].customer_hash, w->n_workers) == w->id;
}

static void prefetch_ahead(fs_worker *w, const fs_event *ev, const uint8_t *status, uint32_t n,
                           uint32_t i)
{
    uint32_t k = i + AHEAD_SLOT;
    if (k < n && owns(w, ev, status, k))
        fs_journey_table_prefetch_slot(w->table, ev[k].customer_hash);
    k = i + AHEAD_RECORD;
    if (k < n && owns(w, ev, status, k))
        fs_journey_table_prefetch_record(w->table, ev[k].customer_hash);
}

void fs_worker_process(fs_worker *w, const fs_event *ev, const uint8_t *status,
                       const uint16_t *part, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        prefetch_ahead(w, ev, status, n, i);
        if (status[i] != FS_OK) {
            if (w->id == 0)
                count_rejected(w, (fs_reject)status[i]);
            continue;
        }
        w->stats.events_valid++;
        const fs_part_clock *pc = part[i] < w->n_parts ? &w->parts[part[i]] : NULL;
        if (!pc || pc->state != PART_ACTIVE || !pc->seen || ev[i].ts > pc->max_ts)
            observe_ts(w, part[i], ev[i].ts);
        if (fs_worker_owner(ev[i].customer_hash, w->n_workers) == w->id) {
            w->stats.events_owned++;
            apply_event(w, &ev[i], part[i]);
        }
    }
}

uint32_t fs_worker_open_counts(const fs_worker *w, fs_open_count **out, uint32_t *cap)
{
    uint32_t n = 0;
    for (size_t i = 0; i <= w->windows.mask; i++) {
        const fs_window_slot *slot = w->windows.slots[i].value;
        for (uint32_t f = 0; slot && f < w->funnels->n; f++) {
            const fs_flow *fl = slot->flow[f];
            if (!fl)
                continue;
            if (n == *cap) {
                *cap = *cap ? *cap * 2 : 8;
                *out = fs_xrealloc(*out, *cap * sizeof(**out));
            }
            fs_open_count *o = &(*out)[n++];
            o->start = slot->start;
            o->funnel = f;
            o->n_stages = fl->n_stages;
            o->completed = fl->completed;
            memcpy(o->entered, fl->entered, fl->n_stages * sizeof(*fl->entered));
            memcpy(o->reached, fl->reached, fl->n_stages * sizeof(*fl->reached));
        }
    }
    return n;
}

void fs_worker_finish(fs_worker *w)
{
    int64_t old = w->wm;
    fire_timers(w, INT64_MAX, true);
    w->wm = INT64_MAX;
    cut_step(w, old, true);
}

void fs_worker_stop(fs_worker *w)
{
    fs_step *s = fs_xcalloc(1, sizeof(*s));
    s->seq = w->steps++;
    s->wm_before = s->wm = w->wm;
    s->max_ts = w->max_ts;
    s->src_seq = w->src_seq;
    s->src_mark = w->src_mark;
    s->src_ns = w->src_ns;
    s->final = s->stopped = true;
    w->emit(w->emit_ctx, w->id, s);
}
