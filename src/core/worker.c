/* worker.c -- events -> journeys -> window partials (see worker.h).
 *
 * Order of work for one message of this worker's list (route.h):
 *   1. sync points before it: every lane catches up with its partition's
 *      watermark there (expiry timers below it fire, counted at their
 *      expiry time, then the windows it closes are parked); at a step, the
 *      windows the instance watermark closed are cut from the lanes;
 *   2. the message's lane catches up with the message's partition
 *      watermark; then, for a valid event, each funnel's state machine
 *      decides what it does and the counts go to every window of the lane
 *      holding the count's time that is open for the partition. A count
 *      whose window has closed is "late": it is dropped from that window
 *      and the event adds 1 to late_events of the funnel in the partition's
 *      earliest open window.
 * Rejected messages are counted (worker 0) in their partition's earliest
 * open window.
 */
#include "worker.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"
#include "state.h"
#include "util.h"

static void free_dead_letters(fs_dead_letter *dead, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        free((char *)dead[i].value); /* the block holding value and key */
    free(dead);
}

static void free_blobs(fs_blob *v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        free(v[i].bytes);
    free(v);
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
    free(s->closed_part);
    free(s->parts);
    free(s->revoked);
    free_blobs(s->partials, s->n_partials);
    free(s->merge_state.bytes);
    free(s->cohorts);
    free(s->label_names);
    free(s->label_lens);
    free_dead_letters(s->dead, s->n_dead);
    free(s->state);
    free(s->state_bytes);
    for (uint32_t i = 0; i < s->n_lanes; i++)
        fs_state_part_free(&s->lanes[i], n_funnels);
    free(s->lanes);
    free(s->lane_part);
    free(s->clocks);
    free(s);
}

void fs_worker_add_dead_letter(fs_worker *w, const fs_dead_letter *dl)
{
    assert(w->id == 0);
    if (w->n_dead == w->cap_dead) {
        w->cap_dead = w->cap_dead ? 2 * w->cap_dead : 16;
        w->dead = fs_xrealloc(w->dead, w->cap_dead * sizeof(*w->dead));
    }
    /* value and key in one block, freed through value */
    char *bytes = fs_xmalloc(dl->value_len + dl->key_len + 1);
    memcpy(bytes, dl->value, dl->value_len);
    if (dl->key_len)
        memcpy(bytes + dl->value_len, dl->key, dl->key_len);
    fs_dead_letter *copy = &w->dead[w->n_dead++];
    *copy = *dl;
    copy->value = bytes;
    copy->key = dl->key ? bytes + dl->value_len : NULL;
}

void fs_worker_add_partial(fs_worker *w, const char *bytes, size_t len)
{
    assert(w->id == 0);
    if (w->n_partials == w->cap_partials) {
        w->cap_partials = w->cap_partials ? 2 * w->cap_partials : 16;
        w->partials = fs_xrealloc(w->partials, w->cap_partials * sizeof(*w->partials));
    }
    w->partials[w->n_partials++] = (fs_blob){fs_xmemdup0(bytes, len), len};
}

void fs_worker_restore_merge(fs_worker *w, const char *value, size_t len)
{
    assert(w->id == 0);
    free(w->merge_state.bytes);
    w->merge_restore = true;
    w->merge_state = (fs_blob){value ? fs_xmemdup0(value, len) : NULL, value ? len : 0};
}

/* The partials and the merger's state kept so far go with step s. */
static void hand_partials(fs_worker *w, fs_step *s)
{
    s->partials = w->partials;
    s->n_partials = w->n_partials;
    w->partials = NULL;
    w->n_partials = w->cap_partials = 0;
    s->merge_restore = w->merge_restore;
    s->merge_state = w->merge_state;
    w->merge_restore = false;
    w->merge_state = (fs_blob){0};
}

/* The dead letters kept so far go with step s. */
static void hand_dead_letters(fs_worker *w, fs_step *s)
{
    s->dead = w->dead;
    s->n_dead = w->n_dead;
    w->dead = NULL;
    w->n_dead = w->cap_dead = 0;
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

/* ---- lanes: one per input partition -------------------------------------- */

static fs_lane *lane_at(fs_worker *w, uint32_t part)
{
    if (__builtin_expect(part >= w->n_lanes, 0)) {
        uint32_t n = part + 1 > 2 * w->n_lanes ? part + 1 : 2 * w->n_lanes;
        w->lanes = fs_xrealloc(w->lanes, n * sizeof(*w->lanes));
        memset(w->lanes + w->n_lanes, 0, (n - w->n_lanes) * sizeof(*w->lanes));
        w->n_lanes = n;
    }
    fs_lane *l = w->lanes[part];
    if (__builtin_expect(!l, 0)) {
        l = w->lanes[part] = fs_xcalloc(1, sizeof(*l));
        l->part = part;
        l->wm = l->next_close = INT64_MIN;
        fs_wheel_init(&l->timers, (fs_wheel_ops){timer_link, timer_expiry, timer_prefetch, w});
        fs_panes_init(&l->windows, &w->win, w->funnels->n, w->n_stages);
        l->cohort_delta = fs_xcalloc(2 * w->funnels->n, sizeof(*l->cohort_delta));
        for (uint32_t k = 0; k < 2 * w->funnels->n; k++)
            fs_i64map_init(&l->cohort_delta[k]);
        if (w->track) {
            l->cohorts = fs_xcalloc(2 * w->funnels->n, sizeof(*l->cohorts));
            for (uint32_t k = 0; k < 2 * w->funnels->n; k++)
                fs_i64map_init(&l->cohorts[k]);
        }
    }
    return l;
}

static void free_map_values(fs_i64map *m, uint32_t n_funnels, bool slots);

static void lane_free(fs_lane *l, uint32_t n_funnels)
{
    if (!l)
        return;
    for (uint32_t k = 0; l->cohorts && k < 2 * n_funnels; k++)
        free_map_values(&l->cohorts[k], 0, false);
    free(l->cohorts);
    for (uint32_t k = 0; k < 2 * n_funnels; k++)
        free_map_values(&l->cohort_delta[k], 0, false);
    free(l->cohort_delta);
    fs_wheel_destroy(&l->timers);
    fs_panes_free(&l->windows);
    for (uint32_t i = l->parked_head; i < l->n_parked; i++)
        fs_window_slot_free(l->parked[i], n_funnels);
    free(l->parked);
    free(l);
}

/* The watermark the lane's counts are judged at (pane.h: fs_panes_wm). */
static int64_t lane_wm(const fs_lane *l)
{
    return fs_panes_wm(&l->windows, l->wm);
}

/* The next multiple of hop above the lane's closed_upto: the lowest
 * watermark that closes a window (window ends are multiples of hop). */
static int64_t next_close(const fs_worker *w, const fs_lane *l)
{
    return fs_clamp128(((__int128)fs_floor_div(l->windows.closed_upto, w->win.hop) + 1) *
                       w->win.hop);
}

/* Appends closed windows (ascending, after the parked ones) to the lane;
 * frees the array. */
static void park_slots(fs_lane *l, fs_window_slot **closed, uint32_t n)
{
    if (l->parked_head == l->n_parked)
        l->parked_head = l->n_parked = 0;
    if (l->n_parked + n > l->parked_cap) {
        l->parked_cap = 2 * (l->n_parked + n);
        l->parked = fs_xrealloc(l->parked, l->parked_cap * sizeof(*l->parked));
    }
    for (uint32_t i = 0; i < n; i++) {
        assert(l->n_parked == 0 || l->parked[l->n_parked - 1]->start < closed[i]->start);
        l->parked[l->n_parked++] = closed[i];
    }
    free(closed);
}

/* Windows closed at wm leave the lane's panes and wait for the step that
 * emits them. Window ends are multiples of hop, so only a watermark that
 * reaches a new multiple can close one. */
static void park_closed(fs_worker *w, fs_lane *l, int64_t wm, bool all)
{
    if (!all && wm < l->next_close)
        return;
    uint32_t n;
    fs_window_slot **closed = fs_panes_close(&l->windows, wm, all, &n);
    park_slots(l, closed, n);
    l->next_close = all ? INT64_MAX : next_close(w, l);
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
    w->win = fs_window_spec_make(cfg->window_size_ms, cfg->window_hop_ms);
    w->max_out_of_orderness = cfg->max_out_of_orderness_ms;
    w->emit_interval = cfg->cohort_emit_interval_ms;
    w->wm = w->max_ts = INT64_MIN;
    fs_dict_init(&w->labels);
    memset(w->label_cache, 0xff, sizeof(w->label_cache));
    w->n_stages = fs_xmalloc(funnels->n * sizeof(*w->n_stages));
    for (uint32_t f = 0; f < funnels->n; f++)
        w->n_stages[f] = funnels->funnel[f].n_stages;
    while ((1u << w->funnel_bits) < funnels->n)
        w->funnel_bits++;
    w->records = fs_journey_table_records(table, id);
    w->scratch_flows = fs_xcalloc(2, sizeof(*w->scratch_flows));
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
    for (uint32_t p = 0; p < w->n_lanes; p++)
        lane_free(w->lanes[p], w->funnels->n);
    free(w->lanes);
    free_dead_letters(w->dead, w->n_dead);
    free(w->n_stages);
    free(w->revoked);
    free_blobs(w->partials, w->n_partials);
    free(w->merge_state.bytes);
    free(w->touch_buf);
    free(w->campaign_buf);
    fs_dict_free(&w->labels);
    free(w->scratch_flows);
}

/* ---- windows ------------------------------------------------------------ */

/* The windows of `funnel` in the current lane that contain ts and are open
 * for its partition, into w->scratch_flows: their pane and, for hopping
 * windows, the running sum (pane.h). *late is set when some window
 * containing ts is already closed. */
static uint32_t open_flows(fs_worker *w, uint32_t funnel, int64_t ts, bool *late)
{
    uint32_t n =
        fs_panes_flows(&w->cur->windows, funnel, ts, lane_wm(w->cur), late, w->scratch_flows);
    for (uint32_t i = 0; i < n; i++) {
        fs_flow *f = w->scratch_flows[i];
        if (f->ev_mark != w->ev_serial) {
            f->ev_mark = w->ev_serial;
            f->events++;
        }
    }
    return n;
}

static void count_late(fs_worker *w, uint32_t funnel)
{
    fs_panes_add_late(&w->cur->windows, funnel, lane_wm(w->cur));
    w->stats.late_events++;
}

/* A rejection counts in its partition's earliest window open at
 * `instance_wm` (the instance's) and at the partition's own watermark, if
 * it has one yet. */
static void add_rejected(fs_lane *l, int64_t instance_wm, uint64_t n)
{
    int64_t wm = l->have_wm && l->wm > instance_wm ? l->wm : instance_wm;
    fs_panes_add_rejected(&l->windows, fs_panes_wm(&l->windows, wm), n);
}

static void count_rejected(fs_worker *w, fs_lane *l, fs_reject reason)
{
    w->stats.rejected[reason]++;
    if (!w->have_wm)
        l->pending_rejected++;
    else
        add_rejected(l, w->wm, 1);
}

/* ---- cohorts ------------------------------------------------------------ */

typedef struct cohort_update {
    uint32_t from, to; /* reached[from..to] += 1 */
    bool started, completed;
} cohort_update;

static void add_cohort(const fs_funnel *f, fs_i64map *m, int64_t start, cohort_update u)
{
    fs_cohort *c = fs_i64map_get(m, start);
    if (!c) {
        c = fs_cohort_new(f->n_stages);
        fs_i64map_put(m, start, c);
    }
    c->started += u.started;
    c->completed += u.completed;
    for (uint32_t s = u.from; s <= u.to; s++)
        c->reached[s]++;
}

/* Into map k of the step's deltas and, with state, of the lane's totals. */
static void cohort_to(fs_worker *w, const fs_funnel *f, uint32_t k, int64_t start, cohort_update u)
{
    add_cohort(f, &w->cur->cohort_delta[k], start, u);
    if (w->track)
        add_cohort(f, &w->cur->cohorts[k], start, u);
}

/* The change goes to every window holding start_ts whose cohort is not
 * final yet. When none of them is close to final (the usual case) it goes
 * once to the pane of start_ts, which the sink spreads over the windows
 * holding it, so hopping windows do not multiply the work per change. */
static void count_cohort(fs_worker *w, const fs_funnel *f, int64_t start_ts, cohort_update u)
{
    /* Finality is the partition's: the merge drops a change to a cohort
     * whose final record is out (merge.h). */
    int64_t wm = w->cur->have_wm ? lane_wm(w->cur) : INT64_MIN;
    int64_t start = fs_window_last_start(&w->win, start_ts);
    int64_t earliest = fs_clamp128((__int128)start - (__int128)(w->win.per_time - 1) * w->win.hop);
    int64_t earliest_final = fs_sat_add(fs_window_end(&w->win, earliest), f->conversion_window_ms);
    if (w->win.per_time > 1 && wm < earliest_final) {
        cohort_to(w, f, w->funnels->n + f->index, start, u);
        return;
    }
    int64_t at;
    for (uint32_t i = 0; i < w->win.per_time && fs_window_kth_start(&w->win, start, i, &at); i++) {
        int64_t final_at = fs_sat_add(fs_window_end(&w->win, at), f->conversion_window_ms);
        if (wm >= final_at)
            break; /* the cohort's final record is out: too late to change it */
        cohort_to(w, f, f->index, at, u);
    }
}

/* ---- journeys ----------------------------------------------------------- */

typedef struct event_ctx {
    const fs_event *ev;
    uint32_t channel, segment, campaign; /* label ids, interned on first need */
} event_ctx;

/* A label's slot in the cache: its length and first and last 8 bytes,
 * mixed. Collisions only cost a miss (the hit is checked byte by byte). */
static uint32_t label_slot(const char *p, uint32_t len)
{
    uint64_t a = 0, b = 0;
    if (len >= 8) {
        memcpy(&a, p, 8);
        memcpy(&b, p + len - 8, 8);
    } else if (len) {
        memcpy(&a, p, len);
    }
    uint64_t k = (a ^ (b * UINT64_C(0x9E3779B97F4A7C15)) ^ len) * UINT64_C(0xff51afd7ed558ccd);
    _Static_assert(FS_WORKER_LABEL_CACHE == 256, "8 bits of slot");
    return (uint32_t)(k >> 56);
}

static uint32_t label_id(fs_worker *w, fs_slice s)
{
    uint32_t *slot = &w->label_cache[label_slot(s.ptr, s.len)];
    uint32_t id = *slot;
    if (id != UINT32_MAX && fs_dict_len(&w->labels, id) == s.len &&
        (s.len == 0 || memcmp(fs_dict_name(&w->labels, id), s.ptr, s.len) == 0))
        return id;
    return *slot = fs_dict_intern(&w->labels, s.ptr, s.len);
}

static uint32_t channel_of(fs_worker *w, event_ctx *x)
{
    if (x->channel == UINT32_MAX)
        x->channel = label_id(w, x->ev->channel);
    return x->channel;
}

static uint32_t segment_of(fs_worker *w, event_ctx *x)
{
    if (x->segment == UINT32_MAX)
        x->segment = label_id(w, x->ev->segment);
    return x->segment;
}

static uint32_t campaign_of(fs_worker *w, event_ctx *x)
{
    if (x->campaign == UINT32_MAX)
        x->campaign = label_id(w, x->ev->campaign);
    return x->campaign;
}

static void *ext_of(const fs_worker *w, fs_customer *c)
{
    return fs_customer_ext(c, w->funnels->n);
}

/* The extension fields of a journey starting at ts (stage: the event's
 * stage in unordered mode). */
static void start_ext(fs_worker *w, fs_customer *c, const fs_funnel *f, event_ctx *x,
                      uint32_t stage)
{
    void *ext = ext_of(w, c);
    int64_t *stage_ts = fs_journey_stage_ts(f, ext);
    uint32_t *reached = fs_journey_reached(f, ext);
    fs_touch_list *campaigns = fs_journey_campaigns(f, ext);
    if (stage_ts)
        *stage_ts = x->ev->ts;
    if (reached)
        *reached = UINT32_C(1) << stage;
    if (campaigns)
        fs_touch_list_init(campaigns, campaign_of(w, x));
}

static fs_journey *start_journey(fs_worker *w, fs_customer *c, uint32_t record, const fs_funnel *f,
                                 int64_t ts, uint32_t stage, uint32_t channel)
{
    fs_journey *j = &c->journey[f->index];
    assert(!j->active);
    fs_journey_init(j, ts, stage, channel);
    c->n_active++;
    fs_wheel_add(&lane_at(w, c->part)->timers, timer_node(w, record, f->index),
                 fs_journey_expiry(j, f));
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
        fs_wheel_cancel(&lane_at(w, c->part)->timers, timer_node(w, record, f->index));
    fs_touch_list *campaigns = fs_journey_campaigns(f, ext_of(w, c));
    if (campaigns)
        fs_journey_table_list_end(w->table, w->id, campaigns);
    fs_journey_table_end(w->table, w->id, j);
    assert(c->n_active > 0);
    c->n_active--;
    w->stats.journeys_active--;
}

/* After a change to c: the state topic learns of it (snapshot.h), and a
 * customer without an active journey leaves the table. */
static void record_changed(fs_worker *w, fs_customer *c, uint32_t record)
{
    if (c->n_active > 0) {
        fs_snapshot_changed(w, record);
        return;
    }
    fs_snapshot_removed(w, c, record);
    fs_journey_table_remove(w->table, c, record);
}

/* A funnel event of an active journey: its channel and, for funnels with
 * the campaign breakdown, its campaign touch the journey (linear credit). */
static void touch(fs_worker *w, fs_customer *c, const fs_funnel *f, fs_journey *j, event_ctx *x)
{
    fs_journey_table_touch(w->table, w->id, j, channel_of(w, x));
    fs_touch_list *campaigns = fs_journey_campaigns(f, ext_of(w, c));
    if (campaigns)
        fs_journey_table_list_touch(w->table, w->id, campaigns, campaign_of(w, x));
}

/* The counts of one start or advance: reached[from..to] (+ skipped below
 * `to`, + entered[to] at a start) and, when the journey leaves a stage it
 * was timed at, that stage's time. */
typedef struct reach {
    uint32_t from, to;
    bool entered;
    uint32_t timed_stage; /* UINT32_MAX: no stage time to record */
    int64_t stage_ms;
} reach;

static void count_by_label(fs_worker *w, const fs_funnel *f, event_ctx *x, fs_flow *fl,
                           const reach *r)
{
    fs_label_stats *by[3];
    uint32_t n = 0;
    if (f->breakdowns & FS_BREAKDOWN_CHANNEL)
        by[n++] = fs_flow_channel(fl, channel_of(w, x));
    if (f->breakdowns & FS_BREAKDOWN_SEGMENT)
        by[n++] = fs_flow_segment(fl, segment_of(w, x));
    if (f->breakdowns & FS_BREAKDOWN_CAMPAIGN)
        by[n++] = fs_flow_campaign(fl, campaign_of(w, x));
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t s = r->from; s <= r->to; s++)
            by[i]->reached[s]++;
}

static bool count_reach(fs_worker *w, const fs_funnel *f, event_ctx *x, const reach *r)
{
    bool late = false;
    uint32_t n = open_flows(w, f->index, x->ev->ts, &late);
    for (uint32_t i = 0; i < n; i++) {
        fs_flow *fl = w->scratch_flows[i];
        if (r->entered)
            fl->entered[r->to]++;
        for (uint32_t s = r->from; s <= r->to; s++)
            fl->reached[s]++;
        for (uint32_t s = r->from; s < r->to; s++)
            fl->skipped[s] += fs_funnel_skips(f, s);
        if (r->timed_stage != UINT32_MAX)
            fs_sketch_add(&fs_flow_stage_times(fl)[r->timed_stage], r->stage_ms);
        count_by_label(w, f, x, fl, r);
    }
    return late;
}

/* One completion's attribution in one label map (channels or campaigns):
 * first touch, last touch (the completing event's label `last`, whose
 * entry also counts the completion) and the linear split over the
 * journey's touches (touches[0] is the first). */
static void attribute(fs_flow *fl, fs_label_stats *(*entry)(fs_flow *, uint32_t), uint32_t last,
                      const fs_touch_count *touches, uint32_t n_touches)
{
    uint64_t total = 0;
    for (uint32_t t = 0; t < n_touches; t++)
        total += touches[t].count;
    fs_label_stats *ls = entry(fl, last);
    ls->completed++;
    ls->last_touch++;
    entry(fl, touches[0].label)->first_touch++;
    for (uint32_t t = 0; t < n_touches; t++)
        fs_fixed_add(&entry(fl, touches[t].label)->linear, fs_fixed_ratio(touches[t].count, total));
}

static bool count_completion(fs_worker *w, fs_customer *c, const fs_funnel *f, event_ctx *x,
                             fs_journey *j)
{
    bool late = false;
    uint32_t n = open_flows(w, f->index, x->ev->ts, &late);
    if (n == 0)
        return late;
    int64_t ttc = fs_sat_sub(x->ev->ts, j->start_ts);
    fs_fixed revenue = fs_fixed_from_double(x->ev->value);
    uint32_t n_ch = fs_journey_table_touches(w->table, w->id, j, &w->touch_buf, &w->touch_cap);
    const fs_touch_list *campaigns = fs_journey_campaigns(f, ext_of(w, c));
    uint32_t n_cp = 0;
    if (campaigns)
        n_cp = fs_journey_table_list_touches(w->table, w->id, campaigns, &w->campaign_buf,
                                             &w->campaign_cap);
    for (uint32_t i = 0; i < n; i++) {
        fs_flow *fl = w->scratch_flows[i];
        fl->completed++;
        fs_fixed_add(&fl->revenue, revenue);
        fs_sketch_add(&fl->ttc, ttc < 0 ? 0 : ttc);
        attribute(fl, fs_flow_channel, channel_of(w, x), w->touch_buf, n_ch);
        if (f->breakdowns & FS_BREAKDOWN_SEGMENT)
            fs_flow_segment(fl, segment_of(w, x))->completed++;
        if (campaigns)
            attribute(fl, fs_flow_campaign, campaign_of(w, x), w->campaign_buf, n_cp);
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

/* An advance from max_stage: the time spent at it, when it is known, goes
 * to stage max_stage's sketch, and the clock restarts at the new stage. */
static void time_stage(fs_worker *w, fs_customer *c, const fs_funnel *f, const fs_journey *j,
                       int64_t ts, reach *r)
{
    int64_t *stage_ts = fs_journey_stage_ts(f, ext_of(w, c));
    r->timed_stage = UINT32_MAX;
    if (!stage_ts)
        return;
    if (*stage_ts != FS_STAGE_TS_UNKNOWN) {
        int64_t ms = fs_sat_sub(ts, *stage_ts);
        r->timed_stage = j->max_stage;
        r->stage_ms = ms < 0 ? 0 : ms;
    }
    *stage_ts = ts;
}

/* START or ADVANCE to d->stage (the event's stage `k`; in unordered mode
 * d->stage is the progress); completes the journey at the last stage. */
static bool reach_stage(fs_worker *w, fs_customer *c, uint32_t record, const fs_funnel *f,
                        event_ctx *x, fs_journey *j, const fs_decision *d, uint32_t k)
{
    bool late;
    cohort_update cu = {.to = d->stage, .completed = d->completes};
    reach r = {.to = d->stage, .timed_stage = UINT32_MAX};
    if (!j) {
        j = start_journey(w, c, record, f, x->ev->ts, d->stage, channel_of(w, x));
        start_ext(w, c, f, x, k);
        r.entered = cu.started = true;
    } else {
        r.from = cu.from = j->max_stage + 1u;
        time_stage(w, c, f, j, x->ev->ts, &r);
        touch(w, c, f, j, x);
        uint32_t *reached = fs_journey_reached(f, ext_of(w, c));
        if (reached)
            *reached |= UINT32_C(1) << k;
        fs_journey_set_stage(j, d->stage);
    }
    late = count_reach(w, f, x, &r);
    count_cohort(w, f, j->start_ts, cu);
    if (d->completes) {
        late |= count_completion(w, c, f, x, j);
        w->stats.journeys_completed++;
        end_journey(w, c, record, f);
    }
    return late;
}

/* ---- limits (worker.h) -------------------------------------------------- */

/* An evicted journey: abandoned[max_stage] and evicted[max_stage] at the
 * evicting event's time ts, in the current lane's windows (the event's
 * partition: the eviction is that event's doing, and its windows are the
 * ones it may count in, by the usual late rules). */
static bool count_eviction(fs_worker *w, const fs_funnel *f, int64_t ts, const fs_journey *j)
{
    bool late = false;
    uint32_t n = open_flows(w, f->index, ts, &late);
    for (uint32_t i = 0; i < n; i++) {
        w->scratch_flows[i]->abandoned[j->max_stage]++;
        w->scratch_flows[i]->evicted[j->max_stage]++;
    }
    w->stats.journeys_abandoned++;
    w->stats.journeys_evicted++;
    return late;
}

/* The customer this worker has held longest leaves the table: each of its
 * active journeys ends as an eviction at ts, and its record goes like any
 * customer's whose journeys all ended (a tombstone for the state topic).
 * Returns the funnels (bit f) whose eviction count was late. */
_Static_assert(FS_MAX_FUNNELS <= 64, "a funnel bit mask in a uint64_t");

static uint64_t evict_oldest(fs_worker *w, int64_t ts)
{
    uint64_t late = 0;
    uint32_t record = fs_journey_table_oldest(w->table, w->id);
    assert(record != FS_RECORD_NONE); /* full, and a share is >= 1 */
    fs_customer *c = fs_journey_table_record(w->table, w->id, record);
    assert(c->n_active > 0); /* a customer without one is not held */
    fs_customer_write_begin(c);
    for (uint32_t fi = 0; fi < w->funnels->n; fi++) {
        if (!c->journey[fi].active)
            continue;
        const fs_funnel *f = &w->funnels->funnel[fi];
        if (count_eviction(w, f, ts, &c->journey[fi]))
            late |= UINT64_C(1) << fi;
        end_journey(w, c, record, f);
    }
    fs_customer_write_end(c);
    record_changed(w, c, record);
    return late;
}

/* Whether the event starts a journey of a customer the table does not
 * hold: some funnel decides START without a journey (a pure decision, so
 * the event's own pass over the funnels decides the same). */
static bool starts_journey(const fs_worker *w, int32_t type, int64_t ts)
{
    for (uint32_t fi = 0; fi < w->funnels->n; fi++) {
        const fs_funnel *f = &w->funnels->funnel[fi];
        int role = fs_funnel_role(f, type);
        if (role >= 0 && fs_funnel_decide(f, NULL, 0, ts, role).action == FS_ACT_START)
            return true;
    }
    return false;
}

/* With limits, before the event's pass over the funnels: a record for its
 * customer (absent from the table) if it starts a journey and the worker's
 * share has room or gets it. NULL otherwise; *refused when the share is
 * full under reject_new. Evicting first, before any of the event's own
 * counts, lets an eviction's lateness join the event's (one late event per
 * funnel, as an expiry the event finds): bits of *late. A share is
 * over-full only after a restore, which brings back all the state held:
 * evict_oldest then evicts down to it. */
static fs_customer *limited_insert(fs_worker *w, const fs_event *ev, int32_t type, uint16_t part,
                                   uint32_t *record, bool *refused, uint64_t *late)
{
    if (!starts_journey(w, type, ev->ts))
        return NULL;
    if (fs_journey_table_full(w->table, w->id)) {
        if (w->cfg->limit_policy != FS_LIMIT_EVICT_OLDEST) {
            *refused = true;
            return NULL;
        }
        while (fs_journey_table_full(w->table, w->id))
            *late |= evict_oldest(w, ev->ts);
    }
    return fs_journey_table_insert(w->table, ev->customer_hash, ev->customer_id.ptr,
                                   ev->customer_id.len, part, record);
}

static void apply_event(fs_worker *w, const fs_event *ev, int32_t type, uint16_t part)
{
    uint32_t record = FS_RECORD_NONE;
    w->ev_serial++;
    fs_customer *c = fs_journey_table_find(w->table, ev->customer_hash, ev->customer_id.ptr,
                                           ev->customer_id.len, &record);
    if (type < 0)
        w->stats.events_ignored++;
    if (!c && type < 0)
        return; /* no journey to expire, no funnel that cares */
    event_ctx x = {ev, UINT32_MAX, UINT32_MAX, UINT32_MAX};
    bool refused = false;
    uint64_t evict_late = 0;
    if (!c && w->cfg->limit_policy != FS_LIMIT_NONE)
        c = limited_insert(w, ev, type, part, &record, &refused, &evict_late);
    if (c)
        fs_customer_write_begin(c);
    for (uint32_t fi = 0; fi < w->funnels->n; fi++) {
        const fs_funnel *f = &w->funnels->funnel[fi];
        fs_journey *j = c && c->journey[fi].active ? &c->journey[fi] : NULL;
        int role = fs_funnel_role(f, type);
        bool late = evict_late >> fi & 1;
        if (!j && role < 0) {
            if (late)
                count_late(w, fi);
            continue;
        }
        const uint32_t *reached = j ? fs_journey_reached(f, ext_of(w, c)) : NULL;
        fs_decision d = fs_funnel_decide(f, j, reached ? *reached : 0, ev->ts, role);
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
            touch(w, c, f, j, &x);
            break;
        case FS_ACT_START:
            if (refused) { /* reject_new at a full share: nothing starts, nothing counts */
                w->stats.journeys_refused++;
                break;
            }
            if (!c) { /* without limits, the record is made at its first start */
                c = fs_journey_table_insert(w->table, ev->customer_hash, ev->customer_id.ptr,
                                            ev->customer_id.len, part, &record);
                fs_customer_write_begin(c);
            }
            /* fall through */
        case FS_ACT_ADVANCE:
            late |= reach_stage(w, c, record, f, &x, j, &d, (uint32_t)role);
            break;
        }
        if (late)
            count_late(w, fi);
    }
    if (!c)
        return;
    fs_customer_write_end(c);
    record_changed(w, c, record);
}

/* ---- watermark and steps ------------------------------------------------ */

/* The windows closed for their partitions since the last step (all: every
 * window), lane by lane. The lane of an idle partition closes its windows
 * at the instance watermark first: the partition holds nothing back (SPEC
 * §3). Another lane behind it (a partition taken over at an older
 * position) does not: it holds the merge back instead. Whether a window is
 * closed for every partition of the group is the merge's to decide
 * (merge.h). */
static void collect_closed(fs_worker *w, fs_step *s, bool all)
{
    uint32_t n = 0, cap = 8;
    fs_window_slot **out = fs_xmalloc(cap * sizeof(*out));
    uint32_t *part = fs_xmalloc(cap * sizeof(*part));
    for (uint32_t p = 0; p < w->n_lanes; p++) {
        fs_lane *l = w->lanes[p];
        if (!l)
            continue;
        if (l->idle || all)
            park_closed(w, l, all ? INT64_MAX : s->wm, all);
        for (; l->parked_head < l->n_parked; l->parked_head++) {
            if (n == cap) {
                cap *= 2;
                out = fs_xrealloc(out, cap * sizeof(*out));
                part = fs_xrealloc(part, cap * sizeof(*part));
            }
            part[n] = p;
            out[n++] = l->parked[l->parked_head];
        }
    }
    s->closed = out;
    s->closed_part = part;
    s->n_closed = n;
}

static void collect_cohorts(fs_worker *w, fs_step *s)
{
    uint32_t total = 0, nf = w->funnels->n;
    for (uint32_t p = 0; p < w->n_lanes; p++)
        for (uint32_t f = 0; w->lanes[p] && f < 2 * nf; f++)
            total += (uint32_t)w->lanes[p]->cohort_delta[f].count;
    s->cohorts = fs_xmalloc((total ? total : 1) * sizeof(*s->cohorts));
    for (uint32_t p = 0; p < w->n_lanes; p++)
        for (uint32_t f = 0; w->lanes[p] && f < 2 * nf; f++) {
            fs_i64map *m = &w->lanes[p]->cohort_delta[f];
            if (!m->count)
                continue;
            for (size_t i = 0; i <= m->mask; i++)
                if (m->slots[i].value)
                    s->cohorts[s->n_cohorts++] =
                        (fs_cohort_delta){p, f % nf, f >= nf, m->slots[i].key, m->slots[i].value};
            fs_i64map_free(m);
            fs_i64map_init(m);
        }
}

/* Worker 0: where every partition stands at the step, and which left. */
static void collect_parts(fs_worker *w, fs_step *s, const fs_sync *sp, const fs_part_wm *parts)
{
    hand_partials(w, s);
    s->revoked = w->revoked;
    s->n_revoked = w->n_revoked;
    w->revoked = NULL;
    w->n_revoked = w->cap_revoked = 0;
    if (!sp)
        return;
    s->n_parts = sp->n_parts;
    s->parts = fs_xmalloc((sp->n_parts + 1) * sizeof(*s->parts));
    if (sp->n_parts)
        memcpy(s->parts, parts + sp->parts_at, sp->n_parts * sizeof(*s->parts));
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

/* sp: the sync point cutting it (NULL: the final step). */
static void cut_step(fs_worker *w, const fs_sync *sp, const fs_part_wm *parts, int64_t wm_before,
                     int64_t max_ts, bool final)
{
    fs_step *s = fs_xcalloc(1, sizeof(*s));
    s->seq = w->steps++;
    s->wm_before = wm_before;
    s->wm = w->wm;
    s->max_ts = max_ts;
    s->src_seq = w->src_seq;
    s->src_ns = w->src_ns;
    s->final = final;
    hand_dead_letters(w, s);
    collect_closed(w, s, final);
    collect_cohorts(w, s);
    if (w->id == 0)
        collect_parts(w, s, sp, parts);
    if (sp && sp->checkpoint && w->track)
        fs_snapshot_take(w, s, sp, parts);
    collect_labels(w, s); /* after the checkpoint, which may intern nothing but reads labels */
    w->emit(w->emit_ctx, w->id, s);
}

/* A lane's expiry timers fire while its partition's watermark passes them:
 * wm > expiry time. They count against the lane's windows as they were
 * before this advance. The wheel hands them out in no particular order,
 * which changes no count: each lands in the windows of its own expiry time,
 * and lateness is judged against the same watermark for all of them. */
static void fire_timers(fs_worker *w, fs_lane *l, int64_t new_wm, bool all)
{
    if (!all && new_wm == INT64_MIN)
        return; /* a lane's first watermark, at the bottom of time */
    int64_t through = all ? INT64_MAX : new_wm - 1;
    uint32_t node;
    w->cur = l;
    while ((node = fs_wheel_pop(&l->timers, through)) != FS_WHEEL_NONE) {
        fs_customer *c;
        uint32_t record;
        fs_journey *j = timer_journey(w, node, &c, &record);
        const fs_funnel *f = &w->funnels->funnel[node & ((1u << w->funnel_bits) - 1)];
        w->ev_serial++;
        assert(j->active && fs_journey_expiry(j, f) <= through);
        if (count_expiry(w, f, j))
            count_late(w, f->index);
        fs_customer_write_begin(c);
        end_journey(w, c, record, f);
        fs_customer_write_end(c);
        record_changed(w, c, record);
    }
}

/* The lane's partition watermark moves to new_wm (later than the lane's):
 * timers below it fire first, against the windows as they were, then the
 * windows it closes are parked. */
static void catch_up(fs_worker *w, fs_lane *l, int64_t new_wm)
{
    assert(!l->have_wm || new_wm > l->wm);
    bool end = new_wm == INT64_MAX; /* the partition ended (FS_PART_END) */
    fire_timers(w, l, new_wm, end);
    l->have_wm = true;
    l->wm = new_wm;
    park_closed(w, l, new_wm, end);
}

static void sync_point(fs_worker *w, const fs_sync *sp, const fs_part_wm *parts)
{
    for (uint32_t k = 0; k < sp->n_parts; k++) {
        const fs_part_wm *pw = &parts[sp->parts_at + k];
        if (pw->part < w->n_lanes && w->lanes[pw->part])
            w->lanes[pw->part]->idle = pw->idle;
        if (!pw->seen)
            continue;
        fs_lane *l = lane_at(w, parts[sp->parts_at + k].part);
        l->idle = pw->idle; /* a lane made just now */
        if (!l->have_wm || parts[sp->parts_at + k].wm > l->wm)
            catch_up(w, l, parts[sp->parts_at + k].wm);
    }
    if (sp->first) {
        /* The first instance watermark: rejections counted while an
         * assigned partition held it back may already lie in windows it
         * closes. */
        w->have_wm = true;
        for (uint32_t p = 0; p < w->n_lanes; p++) {
            fs_lane *l = w->lanes[p];
            if (l && l->pending_rejected) {
                add_rejected(l, sp->wm, l->pending_rejected);
                l->pending_rejected = 0;
            }
        }
    }
    if (sp->first || sp->wm > w->wm)
        w->wm = sp->wm;
    if (sp->step)
        cut_step(w, sp, parts, sp->wm_before, sp->max_ts, false);
}

static void drop_partition(fs_worker *w, uint32_t part);

/* Lookups are random accesses into a store much larger than the caches,
 * and the events of a batch are known in advance. So the worker walks two
 * cursors ahead of the event it applies: the index slot, then the record it
 * points at (the customer's whole state: id and journeys) are pulled into
 * the cache while earlier events are applied, and the event itself does
 * the one lookup. Distances in events. */
#define AHEAD_SLOT   12
#define AHEAD_RECORD 5
#define AHEAD_BLOCKS 2

static void prefetch_ahead(fs_worker *w, const fs_event *ev, const uint8_t *status,
                           const fs_route_ent *own, uint32_t n, uint32_t k)
{
    if (k + AHEAD_SLOT < n && status[own[k + AHEAD_SLOT].idx] == FS_OK)
        fs_journey_table_prefetch_slot(w->table, ev[own[k + AHEAD_SLOT].idx].customer_hash);
    if (k + AHEAD_RECORD < n && status[own[k + AHEAD_RECORD].idx] == FS_OK)
        fs_journey_table_prefetch_record(w->table, ev[own[k + AHEAD_RECORD].idx].customer_hash);
    if (k + AHEAD_BLOCKS < n && status[own[k + AHEAD_BLOCKS].idx] == FS_OK)
        fs_journey_table_prefetch_touches(w->table, ev[own[k + AHEAD_BLOCKS].idx].customer_hash);
}

void fs_worker_apply(fs_worker *w, const fs_route_head *head, const fs_event *ev,
                     const int32_t *type, const uint8_t *status, const uint16_t *part, uint32_t n,
                     const fs_routed *rt)
{
    const fs_route_ent *own = rt->own[w->id];
    uint32_t n_own = rt->n_own[w->id], next_sync = 0;
    (void)n; /* for the assertion */
    for (uint32_t k = 0; k < rt->n_revoked && w->track; k++)
        drop_partition(w, rt->revoked[k]);
    for (uint32_t k = 0; k < rt->n_revoked && w->id == 0; k++) {
        if (w->n_revoked == w->cap_revoked) {
            w->cap_revoked = w->cap_revoked ? 2 * w->cap_revoked : 8;
            w->revoked = fs_xrealloc(w->revoked, w->cap_revoked * sizeof(*w->revoked));
        }
        w->revoked[w->n_revoked++] = rt->revoked[k];
    }
    for (uint32_t k = 0; k < rt->n_restore[w->id] && w->track; k++)
        fs_snapshot_restore(w, &head->restore[rt->restore[w->id][k]], head->buf);
    for (uint32_t k = 0; k < n_own; k++) {
        uint32_t i = own[k].idx;
        assert(i < n && (status[i] == FS_OK || w->id == 0));
        prefetch_ahead(w, ev, status, own, n_own, k);
        while (next_sync < rt->n_sync && rt->sync[next_sync].pos <= i)
            sync_point(w, &rt->sync[next_sync++], rt->parts);
        if (own[k].instance_wm > w->wm)
            w->wm = own[k].instance_wm;
        if (status[i] == FS_PARTIAL_MSG)
            continue; /* kept for the sink (engine.c) */
        fs_lane *l = w->cur = lane_at(w, part[i]);
        if (own[k].wm > l->wm || (!l->have_wm && own[k].wm != INT64_MIN))
            catch_up(w, l, own[k].wm);
        if (status[i] != FS_OK) {
            count_rejected(w, l, (fs_reject)status[i]);
            continue;
        }
        w->stats.events_owned++;
        apply_event(w, &ev[i], type[i], part[i]);
    }
    while (next_sync < rt->n_sync)
        sync_point(w, &rt->sync[next_sync++], rt->parts);
    /* Every worker ends the batch at the same instance watermark, so that
     * what follows a batch (the next one's sync points, the final step)
     * starts from the same place for all. The lanes need not: a lane
     * catches up before any count it makes, and at every sync point. */
    if (rt->have_wm && rt->wm > w->wm)
        w->wm = rt->wm;
    w->max_ts = rt->max_ts;
    if (w->id == 0)
        w->stats.events_valid += rt->n_valid;
}

static fs_open_count *open_count_slot(fs_open_count **out, uint32_t *cap, uint32_t n)
{
    if (n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *out = fs_xrealloc(*out, *cap * sizeof(**out));
    }
    return &(*out)[n];
}

static uint32_t open_counts_of(const fs_window_slot *slot, uint32_t n_funnels, int64_t wm,
                               bool is_window, fs_open_count **out, uint32_t *cap, uint32_t n)
{
    for (uint32_t f = 0; f < n_funnels; f++) {
        const fs_flow *fl = slot->flow[f];
        if (!fl)
            continue;
        fs_open_count *o = open_count_slot(out, cap, n++);
        o->start = slot->start;
        o->wm = wm;
        o->is_window = is_window;
        o->funnel = f;
        o->n_stages = fl->n_stages;
        o->completed = fl->completed;
        memcpy(o->entered, fl->entered, fl->n_stages * sizeof(*fl->entered));
        memcpy(o->reached, fl->reached, fl->n_stages * sizeof(*fl->reached));
    }
    return n;
}

uint32_t fs_worker_open_counts(const fs_worker *w, fs_open_count **out, uint32_t *cap)
{
    uint32_t n = 0, nf = w->funnels->n;
    for (uint32_t p = 0; p < w->n_lanes; p++) {
        const fs_lane *l = w->lanes[p];
        if (!l)
            continue;
        const fs_i64map *panes = &l->windows.panes;
        int64_t wm = lane_wm(l) > w->wm ? lane_wm(l) : w->wm;
        for (size_t i = 0; i <= panes->mask; i++)
            if (panes->slots[i].value)
                n = open_counts_of(panes->slots[i].value, nf, wm, false, out, cap, n);
        for (uint32_t i = l->parked_head; i < l->n_parked; i++)
            n = open_counts_of(l->parked[i], nf, w->wm, true, out, cap, n);
    }
    return n;
}

uint64_t fs_worker_windows_held(const fs_worker *w)
{
    uint64_t n = 0;
    for (uint32_t p = 0; p < w->n_lanes; p++)
        if (w->lanes[p])
            n += fs_panes_count(&w->lanes[p]->windows) +
                 (w->lanes[p]->n_parked - w->lanes[p]->parked_head);
    return n;
}

static uint64_t slot_label_values(const fs_window_slot *slot, uint32_t n_funnels)
{
    uint64_t n = 0;
    for (uint32_t f = 0; f < n_funnels; f++)
        if (slot->flow[f])
            n += fs_flow_label_values(slot->flow[f]);
    return n;
}

uint64_t fs_worker_label_values(const fs_worker *w)
{
    uint64_t n = 0;
    uint32_t nf = w->funnels->n;
    for (uint32_t p = 0; p < w->n_lanes; p++) {
        const fs_lane *l = w->lanes[p];
        if (!l)
            continue;
        const fs_i64map *panes = &l->windows.panes;
        for (size_t i = 0; i <= panes->mask; i++)
            if (panes->slots[i].value)
                n += slot_label_values(panes->slots[i].value, nf);
        if (l->windows.run)
            n += slot_label_values(l->windows.run, nf);
        for (uint32_t i = l->parked_head; i < l->n_parked; i++)
            n += slot_label_values(l->parked[i], nf);
    }
    return n;
}

void fs_worker_finish(fs_worker *w)
{
    int64_t old = w->wm;
    for (uint32_t p = 0; p < w->n_lanes; p++) {
        fs_lane *l = w->lanes[p];
        if (!l)
            continue;
        fire_timers(w, l, INT64_MAX, true);
        l->have_wm = true;
        l->wm = INT64_MAX;
    }
    w->wm = INT64_MAX;
    cut_step(w, NULL, NULL, old, w->max_ts, true);
}

void fs_worker_stop(fs_worker *w)
{
    fs_step *s = fs_xcalloc(1, sizeof(*s));
    s->seq = w->steps++;
    s->wm_before = s->wm = w->wm;
    s->max_ts = w->max_ts;
    s->src_seq = w->src_seq;
    s->src_ns = w->src_ns;
    s->final = s->stopped = true;
    hand_dead_letters(w, s);
    w->emit(w->emit_ctx, w->id, s);
}

/* ---- restoring (snapshot.c) --------------------------------------------- */

/* The extension of a restored journey. State written before a feature
 * existed, or by a config without it (the config hash tells those apart,
 * state.h), lacks its field: a stage time is then unknown (the stage
 * records nothing), a reached set is the stages up to max_stage, and the
 * campaign list starts "unknown". */
static void adopt_ext(fs_worker *w, fs_customer *c, const fs_funnel *f,
                      const struct fs_state_journey *sj)
{
    void *ext = ext_of(w, c);
    int64_t *stage_ts = fs_journey_stage_ts(f, ext);
    uint32_t *reached = fs_journey_reached(f, ext);
    fs_touch_list *campaigns = fs_journey_campaigns(f, ext);
    if (stage_ts)
        *stage_ts = sj->timed ? sj->stage_ts : FS_STAGE_TS_UNKNOWN;
    if (reached)
        *reached = sj->reached ? sj->reached : (uint32_t)(((uint64_t)1 << (sj->max_stage + 1)) - 1);
    if (!campaigns)
        return;
    if (sj->n_campaigns == 0) {
        fs_touch_list_init(campaigns, fs_dict_intern(&w->labels, "unknown", 7));
        return;
    }
    fs_touch_list_init(campaigns, sj->campaign[0].label); /* counts: at least the one touch */
    campaigns->touch[0].count = sj->campaign[0].count ? sj->campaign[0].count : 1;
    for (uint32_t t = 1; t < sj->n_campaigns; t++)
        fs_journey_table_list_append(w->table, w->id, campaigns, sj->campaign[t].label,
                                     sj->campaign[t].count ? sj->campaign[t].count : 1);
}

void fs_worker_adopt_journey(fs_worker *w, fs_customer *c, uint32_t record,
                             const struct fs_state_journey *sj)
{
    const fs_funnel *f = &w->funnels->funnel[sj->funnel];
    fs_journey *j = &c->journey[sj->funnel];
    assert(!j->active && sj->n_touches > 0);
    fs_journey_init(j, sj->start_ts, sj->max_stage, sj->touch[0].label);
    for (uint32_t t = 0; t < sj->n_touches; t++)
        for (uint32_t k = t == 0 ? 1 : 0; k < sj->touch[t].count; k++)
            fs_journey_table_touch(w->table, w->id, j, sj->touch[t].label);
    adopt_ext(w, c, f, sj);
    c->n_active++;
    fs_wheel_add(&lane_at(w, c->part)->timers, timer_node(w, record, f->index),
                 fs_journey_expiry(j, f));
    if (++w->stats.journeys_active > w->stats.journeys_active_peak)
        w->stats.journeys_active_peak = w->stats.journeys_active;
}

void fs_worker_drop_customer(fs_worker *w, fs_customer *c, uint32_t record, bool forget)
{
    fs_customer_write_begin(c);
    for (uint32_t f = 0; f < w->funnels->n; f++)
        if (c->journey[f].active)
            end_journey(w, c, record, &w->funnels->funnel[f]);
    fs_customer_write_end(c);
    if (forget)
        fs_snapshot_forget(w, record);
    else
        fs_snapshot_removed(w, c, record);
    fs_journey_table_remove(w->table, c, record);
}

typedef struct record_list {
    uint32_t *v;
    uint32_t n, cap;
} record_list;

static void list_record(void *ctx, fs_customer *c, uint32_t idx)
{
    (void)c;
    record_list *l = ctx;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->v = fs_xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = idx;
}

/* A revoked partition's state leaves this instance: its customers and its
 * lane go, without a trace on the state topic (the next owner restores
 * them from it). */
static void drop_partition(fs_worker *w, uint32_t part)
{
    record_list l = {0};
    fs_journey_table_each(w->table, w->id, (uint16_t)part, list_record, &l);
    for (uint32_t i = 0; i < l.n; i++)
        fs_worker_drop_customer(w, fs_journey_table_record(w->table, w->id, l.v[i]), l.v[i], true);
    free(l.v);
    if (part < w->n_lanes) {
        if (w->cur == w->lanes[part])
            w->cur = NULL;
        lane_free(w->lanes[part], w->funnels->n);
        w->lanes[part] = NULL;
    }
}

/* The lane takes its cohort totals back as they were written, and the
 * sink, which starts from nothing for the partition, gets them as deltas,
 * a pane's spread over the windows holding it. A window already final for
 * the partition is left out: the merge has its complete counts from before
 * the checkpoint, and the panes that made it may be gone from the lane, so
 * what is left would replace them with less. */
static void adopt_cohorts(fs_worker *w, fs_lane *l, const struct fs_state_part *sp)
{
    uint32_t nf = w->funnels->n;
    int64_t wm = l->have_wm ? lane_wm(l) : INT64_MIN;
    for (uint32_t i = 0; i < sp->n_cohorts; i++) {
        const fs_state_cohort *sc = &sp->cohorts[i];
        const fs_funnel *f = &w->funnels->funnel[sc->funnel];
        uint32_t k = sc->pane ? nf + sc->funnel : sc->funnel;
        fs_cohort_map_add(&l->cohorts[k], sc->start, sc->cohort, f->n_stages);
        int64_t at;
        for (uint32_t n = 0; n < (sc->pane ? w->win.per_time : 1) &&
                             fs_window_kth_start(&w->win, sc->start, n, &at);
             n++) {
            if (wm >= fs_sat_add(fs_window_end(&w->win, at), f->conversion_window_ms))
                break; /* earlier windows are final earlier */
            fs_cohort_map_add(&l->cohort_delta[sc->funnel], at, sc->cohort, f->n_stages);
        }
    }
}

void fs_worker_adopt_lane(fs_worker *w, uint32_t part, struct fs_state_part *sp, bool counts)
{
    fs_lane *l = lane_at(w, part);
    if (sp->seen) {
        int64_t wm = fs_sat_sub(sp->max_ts, w->max_out_of_orderness);
        if (!l->have_wm || wm > l->wm) {
            l->have_wm = true;
            l->wm = wm;
        }
    }
    fs_panes_set_closed(&l->windows, sp->closed_upto);
    l->next_close = next_close(w, l);
    if (!counts)
        return;
    for (uint32_t i = 0; i < sp->n_panes; i++)
        fs_panes_adopt(&l->windows, false, sp->panes[i]);
    for (uint32_t i = 0; i < sp->n_extras; i++)
        fs_panes_adopt(&l->windows, true, sp->extras[i]);
    sp->n_panes = sp->n_extras = 0; /* taken over */
    for (uint32_t i = 0; i < sp->n_parked; i++) {
        fs_window_slot **one = fs_xmalloc(sizeof(*one));
        one[0] = sp->parked[i];
        park_slots(l, one, 1);
    }
    sp->n_parked = 0;
    adopt_cohorts(w, l, sp);
}
