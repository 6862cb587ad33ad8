/* pane.c -- panes and window sums (see pane.h).
 *
 * Closing tumbling windows (close_tumbling): the windows handed out at a
 * watermark wm are those whose end lies in (closed_upto, wm], i.e. whose
 * start is a multiple of hop in [lo, hi]. When that range is short (the
 * usual case: one hop per step) each start in it is looked up; when the
 * watermark jumped far (a gap in the data, the end of input) the candidates
 * come from the panes and extras that exist instead, so the cost never
 * depends on the size of the jump. A tumbling window is its pane.
 *
 * Closing hopping windows (close_hopping): from the running sum, in order,
 * one hop at a time; over stretches without counts the run jumps to the
 * next window that has some (the sorted first windows of the panes left).
 */
#include "pane.h"

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

void fs_window_slot_absorb(fs_window_slot *into, fs_window_slot *from, uint32_t n_funnels)
{
    assert(into->start == from->start);
    into->rejected += from->rejected;
    for (uint32_t f = 0; f < n_funnels; f++) {
        if (!from->flow[f])
            continue;
        if (!into->flow[f]) {
            into->flow[f] = from->flow[f];
            from->flow[f] = NULL;
        } else {
            fs_flow_merge(into->flow[f], from->flow[f], NULL);
        }
    }
    fs_window_slot_free(from, n_funnels);
}

void fs_panes_init(fs_panes *p, const fs_window_spec *win, uint32_t n_funnels,
                   const uint32_t *n_stages)
{
    memset(p, 0, sizeof(*p));
    p->win = *win;
    p->n_funnels = n_funnels;
    p->n_stages = n_stages;
    fs_i64map_init(&p->panes);
    fs_i64map_init(&p->extras);
    p->closed_upto = INT64_MIN;
}

static void free_slots(fs_i64map *m, uint32_t n_funnels)
{
    for (size_t i = 0; i <= m->mask; i++)
        fs_window_slot_free(m->slots[i].value, n_funnels);
    fs_i64map_free(m);
}

void fs_panes_free(fs_panes *p)
{
    free_slots(&p->panes, p->n_funnels);
    free_slots(&p->extras, p->n_funnels);
    fs_window_slot_free(p->run, p->n_funnels);
    free(p->run_panes);
}

fs_window_slot *fs_window_slot_new(int64_t start, uint32_t n_funnels)
{
    fs_window_slot *slot = fs_xcalloc(1, sizeof(*slot) + n_funnels * sizeof(fs_flow *));
    slot->start = start;
    return slot;
}

void fs_window_slot_add(fs_window_slot *into, const fs_window_slot *from, uint32_t n_funnels,
                        const uint32_t *n_stages, const uint32_t *xlate)
{
    into->rejected += from->rejected;
    for (uint32_t f = 0; f < n_funnels; f++) {
        if (!from->flow[f])
            continue;
        if (!into->flow[f])
            into->flow[f] = fs_flow_new(n_stages[f]);
        fs_flow_merge(into->flow[f], from->flow[f], xlate);
    }
}

static fs_window_slot *slot_new(const fs_panes *p, int64_t start)
{
    return fs_window_slot_new(start, p->n_funnels);
}

static fs_window_slot *slot_in(fs_panes *p, fs_i64map *m, int64_t start)
{
    fs_window_slot *slot = fs_i64map_get(m, start);
    if (!slot) {
        slot = slot_new(p, start);
        fs_i64map_put(m, start, slot);
    }
    return slot;
}

static fs_flow *flow_of(fs_panes *p, fs_window_slot *slot, uint32_t funnel)
{
    if (!slot->flow[funnel])
        slot->flow[funnel] = fs_flow_new(p->n_stages[funnel]);
    return slot->flow[funnel];
}

static bool in_run(const fs_panes *p, int64_t pane)
{
    return p->have_run && pane >= p->run_start &&
           (__int128)pane < (__int128)p->run_start + p->win.size;
}

void fs_panes_set_closed(fs_panes *p, int64_t closed_upto)
{
    if (closed_upto > p->closed_upto) {
        p->closed_upto = closed_upto;
        p->have_run = false; /* rebuilt from the panes at the next close */
        p->last = NULL;
    }
}

void fs_panes_adopt(fs_panes *p, bool extra, fs_window_slot *slot)
{
    fs_i64map *m = extra ? &p->extras : &p->panes;
    fs_window_slot *have = fs_i64map_get(m, slot->start);
    if (have)
        fs_window_slot_absorb(have, slot, p->n_funnels);
    else
        fs_i64map_put(m, slot->start, slot);
    if (!extra && p->have_run && in_run(p, slot->start))
        p->have_run = false; /* the run no longer holds every pane it sums */
}

uint32_t fs_panes_flows(fs_panes *p, uint32_t funnel, int64_t ts, int64_t wm, bool *late,
                        fs_flow *out[2])
{
    int64_t pane = fs_window_last_start(&p->win, ts);
    if (fs_window_is_closed(&p->win, pane, wm)) {
        *late = true; /* the latest window holding ts ends first of none: all are closed */
        return 0;
    }
    int64_t earliest = fs_clamp128((__int128)pane - (__int128)(p->win.per_time - 1) * p->win.hop);
    if (fs_window_is_closed(&p->win, earliest, wm))
        *late = true;
    fs_window_slot *slot = p->last;
    if (!slot || slot->start != pane)
        p->last = slot = slot_in(p, &p->panes, pane);
    bool fresh = !slot->flow[funnel];
    out[0] = flow_of(p, slot, funnel);
    if (!in_run(p, pane))
        return 1;
    p->run_panes[funnel] += fresh;
    out[1] = flow_of(p, p->run, funnel);
    return 2;
}

void fs_panes_add_late(fs_panes *p, uint32_t funnel, int64_t wm)
{
    int64_t start = fs_window_earliest_open(&p->win, wm);
    flow_of(p, slot_in(p, &p->extras, start), funnel)->late_events++;
}

void fs_panes_add_rejected(fs_panes *p, int64_t wm, uint64_t n)
{
    slot_in(p, &p->extras, fs_window_earliest_open(&p->win, wm))->rejected += n;
}

/* into += from (same worker, so the same label ids); from is consumed. */
static void absorb(fs_panes *p, fs_window_slot **into, fs_window_slot *from, int64_t start,
                   bool move)
{
    if (!*into && move) {
        *into = from;
        return;
    }
    if (!*into)
        *into = slot_new(p, start);
    (*into)->rejected += from->rejected;
    for (uint32_t f = 0; f < p->n_funnels; f++) {
        if (!from->flow[f])
            continue;
        if (move && !(*into)->flow[f]) {
            (*into)->flow[f] = from->flow[f];
            from->flow[f] = NULL;
        } else {
            fs_flow_merge(flow_of(p, *into, f), from->flow[f], NULL);
        }
    }
    if (move)
        fs_window_slot_free(from, p->n_funnels);
}

/* The tumbling window starting at `start`: its pane, taken over, plus its
 * extras, or NULL when it counted nothing. */
static fs_window_slot *tumbling_window(fs_panes *p, int64_t start)
{
    assert(p->win.per_time == 1);
    fs_window_slot *slot = NULL;
    fs_window_slot *pane = fs_i64map_remove(&p->panes, start);
    if (pane)
        absorb(p, &slot, pane, start, true);
    fs_window_slot *ex = fs_i64map_remove(&p->extras, start);
    if (ex)
        absorb(p, &slot, ex, start, true);
    if (slot)
        slot->start = start;
    return slot;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Tumbling window starts in [lo, hi] that hold a pane or extras, ascending. */
static int64_t *starts_from_slots(fs_panes *p, __int128 lo, __int128 hi, uint32_t *n)
{
    size_t cap = 16, k = 0;
    int64_t *s = fs_xmalloc(cap * sizeof(*s));
    const fs_i64map *maps[2] = {&p->panes, &p->extras};
    for (int m = 0; m < 2; m++) {
        for (size_t i = 0; i <= maps[m]->mask; i++) {
            int64_t at = maps[m]->slots[i].key;
            if (!maps[m]->slots[i].value || at < lo || at > hi)
                continue;
            if (k == cap)
                s = fs_xrealloc(s, (cap *= 2) * sizeof(*s));
            s[k++] = at;
        }
    }
    qsort(s, k, sizeof(*s), cmp_i64);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || s[u - 1] != s[i])
            s[u++] = s[i];
    *n = (uint32_t)u;
    return s;
}

static fs_window_slot **close_tumbling(fs_panes *p, int64_t wm, bool all, uint32_t *n);

/* The run for the window starting at `start`, from the panes. */
static void rebuild_run(fs_panes *p, int64_t start)
{
    fs_window_slot_free(p->run, p->n_funnels);
    p->run = slot_new(p, start);
    if (!p->run_panes)
        p->run_panes = fs_xmalloc(p->n_funnels * sizeof(*p->run_panes));
    memset(p->run_panes, 0, p->n_funnels * sizeof(*p->run_panes));
    for (uint32_t k = 0; k < p->win.per_time; k++) {
        __int128 at = (__int128)start + (__int128)k * p->win.hop;
        fs_window_slot *pane = at <= INT64_MAX ? fs_i64map_get(&p->panes, (int64_t)at) : NULL;
        for (uint32_t f = 0; pane && f < p->n_funnels; f++)
            if (pane->flow[f]) {
                fs_flow_merge(flow_of(p, p->run, f), pane->flow[f], NULL);
                p->run_panes[f]++;
            }
    }
    p->have_run = true;
    p->run_start = start;
}

/* A flow's time sketches by index: 0 the time to convert, 1 + s stage s's
 * time (NULL while the flow has none). */
static fs_sketch *time_sketch(fs_flow *f, uint32_t i)
{
    if (i == 0)
        return &f->ttc;
    return f->stage_time ? &f->stage_time[i - 1] : NULL;
}

/* The time sketches' min and max of each flow of window `slot` from its
 * panes: the run's own were lost to subtraction. */
static void set_time_extremes(fs_panes *p, fs_window_slot *slot)
{
    for (uint32_t k = 0; k < p->win.per_time; k++) {
        fs_window_slot *pane =
            fs_i64map_get(&p->panes, (int64_t)((__int128)slot->start + (__int128)k * p->win.hop));
        for (uint32_t f = 0; pane && f < p->n_funnels; f++) {
            if (!slot->flow[f] || !pane->flow[f])
                continue;
            for (uint32_t i = 0; i < p->n_stages[f]; i++) {
                fs_sketch *into = time_sketch(slot->flow[f], i);
                const fs_sketch *from = time_sketch(pane->flow[f], i);
                if (!into || !from || from->count == 0)
                    continue;
                if (from->min < into->min)
                    into->min = from->min;
                if (from->max > into->max)
                    into->max = from->max;
            }
        }
    }
}

/* The window starting at run_start, from the run (NULL: nothing counted). */
static fs_window_slot *window_from_run(fs_panes *p)
{
    fs_window_slot *slot = NULL;
    bool times = false;
    for (uint32_t f = 0; f < p->n_funnels; f++) {
        if (!p->run_panes[f])
            continue;
        if (!slot)
            slot = slot_new(p, p->run_start);
        fs_flow *fl = flow_of(p, slot, f);
        fs_flow_merge(fl, p->run->flow[f], NULL);
        for (uint32_t i = 0; i < p->n_stages[f]; i++) {
            fs_sketch *sk = time_sketch(fl, i);
            if (sk && sk->count) {
                sk->min = INT64_MAX;
                sk->max = INT64_MIN;
                times = true;
            }
        }
    }
    if (times)
        set_time_extremes(p, slot);
    fs_window_slot *ex = fs_i64map_remove(&p->extras, p->run_start);
    if (ex)
        absorb(p, &slot, ex, p->run_start, true);
    return slot;
}

/* The run moves one hop: its first pane leaves (and is freed: the window
 * starting at it has just closed), the pane after its last one enters. */
static void slide_run(fs_panes *p)
{
    fs_window_slot *out = fs_i64map_remove(&p->panes, p->run_start);
    for (uint32_t f = 0; out && f < p->n_funnels; f++)
        if (out->flow[f]) {
            assert(p->run_panes[f] > 0 && p->run->flow[f]);
            fs_flow_subtract(p->run->flow[f], out->flow[f]);
            p->run_panes[f]--;
        }
    fs_window_slot_free(out, p->n_funnels);
    __int128 next = (__int128)p->run_start + p->win.size;
    fs_window_slot *in = next <= INT64_MAX ? fs_i64map_get(&p->panes, (int64_t)next) : NULL;
    for (uint32_t f = 0; in && f < p->n_funnels; f++)
        if (in->flow[f]) {
            fs_flow_merge(flow_of(p, p->run, f), in->flow[f], NULL);
            p->run_panes[f]++;
        }
    p->run_start += p->win.hop;
}

/* The start of the last window that holds a pane or extras. */
static __int128 last_window_with_counts(const fs_panes *p)
{
    __int128 last = (__int128)INT64_MIN - 1;
    for (size_t i = 0; i <= p->panes.mask; i++)
        if (p->panes.slots[i].value && p->panes.slots[i].key > last)
            last = p->panes.slots[i].key; /* the last window holding a pane starts at it */
    for (size_t i = 0; i <= p->extras.mask; i++)
        if (p->extras.slots[i].value && p->extras.slots[i].key > last)
            last = p->extras.slots[i].key;
    return last;
}

/* The first window each pane and extras counts in, ascending. */
static int64_t *first_windows(const fs_panes *p, uint32_t *n)
{
    int64_t *v = fs_xmalloc((p->panes.count + p->extras.count + 1) * sizeof(*v));
    uint32_t k = 0;
    for (size_t i = 0; i <= p->panes.mask; i++)
        if (p->panes.slots[i].value)
            v[k++] = fs_clamp128((__int128)p->panes.slots[i].key - p->win.size + p->win.hop);
    for (size_t i = 0; i <= p->extras.mask; i++)
        if (p->extras.slots[i].value)
            v[k++] = p->extras.slots[i].key;
    qsort(v, k, sizeof(*v), cmp_i64);
    *n = k;
    return v;
}

static bool run_is_empty(const fs_panes *p)
{
    for (uint32_t f = 0; f < p->n_funnels; f++)
        if (p->run_panes[f])
            return false;
    return !fs_i64map_get(&p->extras, p->run_start);
}

/* A window handed out counts, per funnel, the events of its newest pane
 * (fs_flow.events): the ones a merge calls late when the window comes
 * after its record (merge.h). The pane is still held: its latest window is
 * open. */
static void keep_newest_events(const fs_panes *p, fs_window_slot *slot)
{
    __int128 q = (__int128)slot->start + p->win.size - p->win.hop;
    const fs_window_slot *pane = q <= INT64_MAX ? fs_i64map_get(&p->panes, (int64_t)q) : NULL;
    for (uint32_t f = 0; f < p->n_funnels; f++)
        if (slot->flow[f])
            slot->flow[f]->events = pane && pane->flow[f] ? pane->flow[f]->events : 0;
}

/* Hopping windows close in order, each from the running sum, which then
 * slides one hop; over a stretch where no window counted anything (a gap
 * in the data, or the end of input) the run jumps to the next window that
 * did, so the cost follows the windows with counts, not the time covered. */
static fs_window_slot **close_hopping(fs_panes *p, int64_t wm, bool all, uint32_t *n)
{
    __int128 last = all ? last_window_with_counts(p)
                        : fs_floor_div128((__int128)wm - p->win.size, p->win.hop) * p->win.hop;
    if (!p->have_run) /* the first window not handed out yet */
        rebuild_run(
            p,
            fs_clamp128((fs_floor_div128((__int128)p->closed_upto - p->win.size, p->win.hop) + 1) *
                        p->win.hop));
    size_t cap = 4;
    fs_window_slot **out = fs_xmalloc(cap * sizeof(*out));
    *n = 0;
    int64_t *next = NULL;
    uint32_t n_next = 0, i_next = 0;
    while ((__int128)p->run_start <= last) {
        if (run_is_empty(p)) {
            if (!next)
                next = first_windows(p, &n_next);
            while (i_next < n_next && next[i_next] <= p->run_start)
                i_next++;
            if (i_next == n_next || next[i_next] > last)
                break;
            rebuild_run(p, next[i_next]);
            continue;
        }
        fs_window_slot *slot = window_from_run(p);
        if (slot) {
            keep_newest_events(p, slot);
            if (*n == cap)
                out = fs_xrealloc(out, (cap *= 2) * sizeof(*out));
            out[(*n)++] = slot;
        }
        slide_run(p);
    }
    free(next);
    p->last = NULL;
    p->closed_upto = all ? INT64_MAX : wm;
    if (all) {
        p->have_run = false;
    } else if (p->run_start < fs_window_earliest_open(&p->win, wm)) {
        rebuild_run(p, fs_window_earliest_open(&p->win, wm)); /* stopped at a gap */
    }
    return out;
}

fs_window_slot **fs_panes_close(fs_panes *p, int64_t wm, bool all, uint32_t *n)
{
    if (p->win.per_time > 1)
        return close_hopping(p, wm, all, n);
    return close_tumbling(p, wm, all, n);
}

static fs_window_slot **close_tumbling(fs_panes *p, int64_t wm, bool all, uint32_t *n)
{
    int64_t hop = p->win.hop;
    /* starts of the windows ending in (closed_upto, wm] */
    __int128 lo =
        ((__int128)fs_floor_div128((__int128)p->closed_upto - p->win.size, hop) + 1) * hop;
    __int128 hi =
        all ? (__int128)INT64_MAX : fs_floor_div128((__int128)wm - p->win.size, hop) * hop;
    size_t cap = 4;
    fs_window_slot **out = fs_xmalloc(cap * sizeof(*out));
    *n = 0;
    __int128 span = hi < lo ? 0 : (hi - lo) / hop + 1;
    int64_t *starts = NULL;
    uint32_t n_starts = 0;
    if (span > (__int128)(p->panes.count + p->extras.count)) {
        starts = starts_from_slots(p, lo, hi, &n_starts);
    } else {
        starts = fs_xmalloc(((size_t)span + 1) * sizeof(*starts));
        for (__int128 x = lo; x <= hi; x += hop)
            starts[n_starts++] = (int64_t)x;
    }
    for (uint32_t i = 0; i < n_starts; i++) {
        fs_window_slot *slot = tumbling_window(p, starts[i]);
        if (!slot)
            continue;
        if (*n == cap)
            out = fs_xrealloc(out, (cap *= 2) * sizeof(*out));
        out[(*n)++] = slot;
    }
    free(starts);
    p->last = NULL;
    p->closed_upto = all ? INT64_MAX : wm;
    return out;
}
