/* merge.c -- partials -> flow and cohort records (see merge.h).
 *
 * State: per input partition its last clock; the sums of the windows not
 * emitted yet (start -> one slot for every funnel, label ids of the merger's
 * dictionary); per funnel and cohort start, each partition's cumulative
 * counts. Cohorts are summed over partitions when emitted, which is at most
 * once per emit_interval of G, so keeping the partitions apart costs memory
 * (partitions x open cohorts), not time per partial.
 */
#include "merge.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "i64map.h"
#include "log.h"
#include "record.h"
#include "util.h"
#include "window.h"

typedef struct merge_part {
    bool heard, idle;
    int64_t wm; /* INT64_MIN: none yet */
} merge_part;

/* One cohort: each partition's cumulative counts. */
typedef struct merge_cohort {
    bool dirty; /* changed since emitted */
    uint32_t n, cap;
    uint32_t *part;
    fs_cohort **counts;
} merge_cohort;

struct fs_merge {
    const fs_config *cfg;
    const fs_funnels *funnels;
    fs_window_spec win;
    fs_output out;
    uint64_t config_hash;
    uint32_t *n_stages;
    uint32_t n_expected;
    merge_part *parts;
    uint32_t n_parts; /* entries of parts */
    bool have_emitted;
    int64_t emitted;
    fs_i64map pending;  /* start -> fs_window_slot */
    fs_i64map *cohorts; /* per funnel: start -> merge_cohort */
    bool changed;       /* since the last snapshot */
    fs_dict labels;
    fs_buf rec, key, json;
    _Atomic uint64_t partials, bad_partials, duplicate_windows, late_windows;
    _Atomic uint64_t flow_records, cohort_records, write_errors, pending_windows;
    _Atomic int64_t emitted_live;
};

static uint32_t merge_intern(void *ctx, const char *name, uint32_t len)
{
    return fs_dict_intern(&((fs_merge *)ctx)->labels, name, len);
}

static const char *merge_label(void *ctx, uint32_t label, uint32_t *len)
{
    const fs_merge *m = ctx;
    *len = fs_dict_len(&m->labels, label);
    return fs_dict_name(&m->labels, label);
}

fs_merge *fs_merge_new(const fs_config *cfg, const fs_funnels *funnels, uint32_t n_parts,
                       fs_output out)
{
    fs_merge *m = fs_xcalloc(1, sizeof(*m));
    m->cfg = cfg;
    m->funnels = funnels;
    m->win = fs_window_spec_make(cfg->window_size_ms, cfg->window_hop_ms);
    m->out = out;
    m->config_hash = fs_state_config_hash(cfg);
    m->n_stages = fs_xmalloc((funnels->n + 1) * sizeof(*m->n_stages));
    for (uint32_t f = 0; f < funnels->n; f++)
        m->n_stages[f] = funnels->funnel[f].n_stages;
    m->n_expected = n_parts;
    m->emitted = INT64_MIN;
    atomic_store(&m->emitted_live, INT64_MIN);
    fs_i64map_init(&m->pending);
    m->cohorts = fs_xcalloc(funnels->n, sizeof(*m->cohorts));
    for (uint32_t f = 0; f < funnels->n; f++)
        fs_i64map_init(&m->cohorts[f]);
    fs_dict_init(&m->labels);
    return m;
}

static void cohort_free(merge_cohort *mc)
{
    if (!mc)
        return;
    for (uint32_t i = 0; i < mc->n; i++)
        free(mc->counts[i]);
    free(mc->counts);
    free(mc->part);
    free(mc);
}

/* Empties the state, keeping the labels and counters. */
static void clear_state(fs_merge *m)
{
    uint32_t nf = m->funnels->n;
    for (size_t i = 0; i <= m->pending.mask; i++)
        fs_window_slot_free(m->pending.slots[i].value, nf);
    fs_i64map_free(&m->pending);
    fs_i64map_init(&m->pending);
    for (uint32_t f = 0; f < nf; f++) {
        fs_i64map *c = &m->cohorts[f];
        for (size_t i = 0; i <= c->mask; i++)
            cohort_free(c->slots[i].value);
        fs_i64map_free(c);
        fs_i64map_init(c);
    }
    free(m->parts);
    m->parts = NULL;
    m->n_parts = 0;
    m->have_emitted = false;
    m->emitted = INT64_MIN;
    m->changed = true;
    atomic_store(&m->pending_windows, 0);
    atomic_store(&m->emitted_live, INT64_MIN);
}

void fs_merge_free(fs_merge *m)
{
    if (!m)
        return;
    clear_state(m);
    fs_i64map_free(&m->pending);
    for (uint32_t f = 0; f < m->funnels->n; f++)
        fs_i64map_free(&m->cohorts[f]);
    free(m->cohorts);
    free(m->n_stages);
    fs_dict_free(&m->labels);
    fs_buf_free(&m->rec);
    fs_buf_free(&m->key);
    fs_buf_free(&m->json);
    free(m);
}

void fs_merge_reset(fs_merge *m)
{
    clear_state(m);
}

void fs_merge_expect(fs_merge *m, uint32_t n_parts)
{
    if (n_parts > m->n_expected)
        m->n_expected = n_parts;
}

fs_merge_stats fs_merge_get_stats(const fs_merge *m)
{
    return (fs_merge_stats){
        .partials = atomic_load_explicit(&m->partials, memory_order_relaxed),
        .bad_partials = atomic_load_explicit(&m->bad_partials, memory_order_relaxed),
        .duplicate_windows = atomic_load_explicit(&m->duplicate_windows, memory_order_relaxed),
        .late_windows = atomic_load_explicit(&m->late_windows, memory_order_relaxed),
        .flow_records = atomic_load_explicit(&m->flow_records, memory_order_relaxed),
        .cohort_records = atomic_load_explicit(&m->cohort_records, memory_order_relaxed),
        .write_errors = atomic_load_explicit(&m->write_errors, memory_order_relaxed),
        .pending_windows = atomic_load_explicit(&m->pending_windows, memory_order_relaxed),
        .emitted = atomic_load_explicit(&m->emitted_live, memory_order_relaxed),
    };
}

static void count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static merge_part *part_at(fs_merge *m, uint32_t p)
{
    if (p >= m->n_parts) {
        uint32_t n = p + 1 > 2 * m->n_parts ? p + 1 : 2 * m->n_parts;
        m->parts = fs_xrealloc(m->parts, n * sizeof(*m->parts));
        for (uint32_t i = m->n_parts; i < n; i++)
            m->parts[i] = (merge_part){.wm = INT64_MIN};
        m->n_parts = n;
    }
    return &m->parts[p];
}

/* ---- emitting ------------------------------------------------------------ */

static void write_record(fs_merge *m)
{
    if (m->out.write(m->out.ctx, m->key.p, m->key.len, m->rec.p, m->rec.len) != 0)
        count(&m->write_errors, 1);
}

static void emit_flow(fs_merge *m, const fs_funnel *f, int64_t start, const fs_flow *flow,
                      uint64_t rejected)
{
    fs_window_id w = {start, fs_window_end(&m->win, start)};
    m->rec.len = m->key.len = 0;
    fs_record_flow_key(&m->key, f->cfg, w);
    fs_record_flow(&m->rec, m->out.format, f->cfg, w, flow, rejected, &m->labels,
                   m->cfg->limit_policy != FS_LIMIT_NONE);
    write_record(m);
    if (m->out.flow_json) {
        fs_flow_json rec = {f->index, start, m->key.p, m->rec.p, m->key.len, m->rec.len};
        if (m->out.format != FS_FORMAT_JSON) {
            m->json.len = 0;
            fs_record_flow(&m->json, FS_FORMAT_JSON, f->cfg, w, flow, rejected, &m->labels,
                           m->cfg->limit_policy != FS_LIMIT_NONE);
            rec.json = m->json.p;
            rec.len = m->json.len;
        }
        m->out.flow_json(m->out.ctx, &rec);
    }
    count(&m->flow_records, 1);
}

static int cmp_slot(const void *a, const void *b)
{
    int64_t x = (*(fs_window_slot *const *)a)->start, y = (*(fs_window_slot *const *)b)->start;
    return (x > y) - (x < y);
}

/* Windows ending at or before g, ascending; funnels in config order. */
static void emit_windows(fs_merge *m, int64_t g)
{
    uint32_t nf = m->funnels->n, n = 0;
    fs_window_slot **due = fs_xmalloc((m->pending.count + 1) * sizeof(*due));
    for (size_t i = 0; i <= m->pending.mask; i++) {
        fs_window_slot *slot = m->pending.slots[i].value;
        if (slot && fs_window_is_closed(&m->win, slot->start, g))
            due[n++] = slot;
    }
    qsort(due, n, sizeof(*due), cmp_slot);
    for (uint32_t i = 0; i < n; i++) {
        fs_window_slot *slot = due[i];
        fs_i64map_remove(&m->pending, slot->start);
        for (uint32_t f = 0; f < nf; f++) {
            if (!slot->flow[f] && slot->rejected == 0)
                continue;
            if (!slot->flow[f])
                slot->flow[f] = fs_flow_new(m->n_stages[f]);
            emit_flow(m, &m->funnels->funnel[f], slot->start, slot->flow[f], slot->rejected);
        }
        fs_window_slot_free(slot, nf);
    }
    free(due);
}

typedef struct due_cohort {
    int64_t start;
    uint32_t funnel;
    bool final;
    merge_cohort *mc;
} due_cohort;

static int cmp_due(const void *a, const void *b)
{
    const due_cohort *x = a, *y = b;
    if (x->start != y->start)
        return (x->start > y->start) - (x->start < y->start);
    return (x->funnel > y->funnel) - (x->funnel < y->funnel);
}

static int64_t cohort_final_at(const fs_merge *m, uint32_t funnel, int64_t start)
{
    return fs_sat_add(fs_window_end(&m->win, start),
                      m->funnels->funnel[funnel].conversion_window_ms);
}

static void emit_cohort(fs_merge *m, const due_cohort *d)
{
    const fs_funnel *fn = &m->funnels->funnel[d->funnel];
    fs_cohort *sum = fs_cohort_new(fn->n_stages);
    for (uint32_t i = 0; i < d->mc->n; i++)
        fs_cohort_merge(sum, d->mc->counts[i], fn->n_stages);
    fs_window_id w = {d->start, fs_window_end(&m->win, d->start)};
    m->rec.len = m->key.len = 0;
    fs_record_cohort_key(&m->key, fn->cfg, w);
    fs_record_cohort(&m->rec, m->out.format, fn->cfg, w, sum, d->final);
    write_record(m);
    count(&m->cohort_records, 1);
    free(sum);
}

/* Changed cohorts when tick (G crossed an emit_interval boundary), and
 * every cohort G made final, which is then forgotten. */
static void emit_cohorts(fs_merge *m, int64_t g, bool tick)
{
    due_cohort *due = NULL;
    size_t n = 0, cap = 0;
    for (uint32_t f = 0; f < m->funnels->n; f++) {
        fs_i64map *map = &m->cohorts[f];
        for (size_t i = 0; i <= map->mask; i++) {
            merge_cohort *mc = map->slots[i].value;
            if (!mc)
                continue;
            int64_t start = map->slots[i].key;
            bool final = g >= cohort_final_at(m, f, start);
            if (!final && !(tick && mc->dirty))
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                due = fs_xrealloc(due, cap * sizeof(*due));
            }
            due[n++] = (due_cohort){start, f, final, mc};
        }
    }
    if (n > 1)
        qsort(due, n, sizeof(*due), cmp_due);
    for (size_t i = 0; i < n; i++) {
        emit_cohort(m, &due[i]);
        due[i].mc->dirty = false;
        if (due[i].final)
            cohort_free(fs_i64map_remove(&m->cohorts[due[i].funnel], due[i].start));
    }
    free(due);
}

/* G: the minimum watermark over the partitions that are not idle, or,
 * when every partition is idle, the maximum of theirs (route.c does the
 * same for one instance); false while a partition that is not idle has no
 * watermark, or (with n_expected) one was never heard of. */
static bool group_watermark(const fs_merge *m, int64_t *g)
{
    uint32_t n = m->n_expected > m->n_parts ? m->n_expected : m->n_parts;
    bool any = false;
    int64_t min = INT64_MAX, max_idle = INT64_MIN;
    for (uint32_t p = 0; p < n; p++) {
        const merge_part *mp = p < m->n_parts ? &m->parts[p] : NULL;
        if (!mp || !mp->heard) {
            if (p < m->n_expected)
                return false;
            continue;
        }
        if (mp->idle) {
            if (mp->wm > max_idle)
                max_idle = mp->wm;
            continue;
        }
        if (mp->wm == INT64_MIN)
            return false;
        any = true;
        if (mp->wm < min)
            min = mp->wm;
    }
    *g = any ? min : max_idle;
    return any || max_idle != INT64_MIN;
}

static void advance(fs_merge *m)
{
    int64_t g;
    if (!group_watermark(m, &g) || (m->have_emitted && g <= m->emitted))
        return;
    bool tick = !m->have_emitted || fs_floor_div(m->emitted, m->cfg->cohort_emit_interval_ms) !=
                                        fs_floor_div(g, m->cfg->cohort_emit_interval_ms);
    fs_log(FS_LOG_DEBUG, "merge emits", "from=%lld to=%lld pending=%zu", (long long)m->emitted,
           (long long)g, m->pending.count);
    emit_windows(m, g);
    emit_cohorts(m, g, tick);
    m->have_emitted = true;
    m->emitted = g;
    m->changed = true;
    atomic_store_explicit(&m->pending_windows, m->pending.count, memory_order_relaxed);
    atomic_store_explicit(&m->emitted_live, g, memory_order_relaxed);
}

/* ---- applying a partial --------------------------------------------------- */

static fs_window_slot *pending_at(fs_merge *m, int64_t start)
{
    fs_window_slot *slot = fs_i64map_get(&m->pending, start);
    if (!slot) {
        slot = fs_window_slot_new(start, m->funnels->n);
        fs_i64map_put(&m->pending, start, slot);
    }
    return slot;
}

/* A window whose record is out: its counts stay out, its events (and the
 * late events and rejections it carried) go to the earliest window whose
 * record is not (SPEC §3). */
static void add_late(fs_merge *m, const fs_window_slot *slot, const uint64_t *events)
{
    uint32_t nf = m->funnels->n;
    fs_window_slot *into = pending_at(m, fs_window_earliest_open(&m->win, m->emitted));
    into->rejected += slot->rejected;
    for (uint32_t f = 0; f < nf; f++) {
        uint64_t late = events[f] + (slot->flow[f] ? slot->flow[f]->late_events : 0);
        if (!late)
            continue;
        if (!into->flow[f])
            into->flow[f] = fs_flow_new(m->n_stages[f]);
        into->flow[f]->late_events += late;
    }
    count(&m->late_windows, 1);
}

static void add_windows(fs_merge *m, const merge_part *was, fs_state_partial *pt)
{
    uint32_t nf = m->funnels->n;
    for (uint32_t i = 0; i < pt->n_slots; i++) {
        fs_window_slot *slot = pt->slots[i];
        int64_t end = fs_window_end(&m->win, slot->start);
        if (was->heard && end <= was->wm) {
            count(&m->duplicate_windows, 1);
        } else if (m->have_emitted && end <= m->emitted) {
            fs_log(FS_LOG_DEBUG, "partial window after its record",
                   "partition=%u window_start=%lld partition_wm=%lld emitted=%lld idle=%d",
                   pt->part, (long long)slot->start, (long long)was->wm, (long long)m->emitted,
                   was->idle);
            add_late(m, slot, pt->events + (size_t)i * nf);
        } else
            fs_window_slot_add(pending_at(m, slot->start), slot, nf, m->n_stages, NULL);
    }
}

static merge_cohort *cohort_at(fs_merge *m, uint32_t funnel, int64_t start)
{
    merge_cohort *mc = fs_i64map_get(&m->cohorts[funnel], start);
    if (!mc) {
        mc = fs_xcalloc(1, sizeof(*mc));
        fs_i64map_put(&m->cohorts[funnel], start, mc);
    }
    return mc;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* The partition's counts of the cohort are now c (taken over), counter by
 * counter the larger of c and what it had: a partition's cohort counts
 * never go down, so a smaller one is an earlier state sent again (a restart
 * that went back to an older checkpoint), which must not replace a later
 * one whose record may be due before the partition catches up. */
static void set_cohort(merge_cohort *mc, uint32_t part, fs_cohort *c, uint32_t n_stages)
{
    mc->dirty = true;
    for (uint32_t i = 0; i < mc->n; i++)
        if (mc->part[i] == part) {
            fs_cohort *was = mc->counts[i];
            c->started = max_u64(c->started, was->started);
            c->completed = max_u64(c->completed, was->completed);
            for (uint32_t k = 0; k < n_stages; k++)
                c->reached[k] = max_u64(c->reached[k], was->reached[k]);
            free(was);
            mc->counts[i] = c;
            return;
        }
    if (mc->n == mc->cap) {
        mc->cap = mc->cap ? 2 * mc->cap : 4;
        mc->part = fs_xrealloc(mc->part, mc->cap * sizeof(*mc->part));
        mc->counts = fs_xrealloc(mc->counts, mc->cap * sizeof(*mc->counts));
    }
    mc->part[mc->n] = part;
    mc->counts[mc->n++] = c;
}

static void add_cohorts(fs_merge *m, fs_state_partial *pt)
{
    for (uint32_t i = 0; i < pt->n_cohorts; i++) {
        fs_state_cohort *sc = &pt->cohorts[i];
        if (m->have_emitted && m->emitted >= cohort_final_at(m, sc->funnel, sc->start))
            continue; /* its final record is out: too late to change it */
        set_cohort(cohort_at(m, sc->funnel, sc->start), pt->part, sc->cohort,
                   m->n_stages[sc->funnel]);
        sc->cohort = NULL;
    }
}

static void apply(fs_merge *m, fs_state_partial *pt)
{
    merge_part *mp = part_at(m, pt->part);
    merge_part was = *mp;
    fs_merge_expect(m, pt->n_parts);
    add_windows(m, &was, pt);
    add_cohorts(m, pt);
    mp->idle = pt->idle;
    if (!mp->heard || pt->wm > mp->wm)
        mp->wm = pt->wm;
    mp->heard = true;
    m->changed = true;
    count(&m->partials, 1);
    atomic_store_explicit(&m->pending_windows, m->pending.count, memory_order_relaxed);
}

int fs_merge_partial(fs_merge *m, const char *value, size_t len, char *err, size_t err_len)
{
    fs_state_labels l = {merge_label, merge_intern, m};
    fs_state_partial pt;
    if (fs_state_decode_partial(value, len, m->config_hash, m->funnels->n, m->n_stages, &l, &pt,
                                err, err_len) != FS_STATE_OK) {
        count(&m->bad_partials, 1);
        return -1;
    }
    apply(m, &pt);
    fs_state_partial_free(&pt, m->funnels->n);
    return 0;
}

void fs_merge_emit(fs_merge *m)
{
    advance(m);
}

bool fs_merge_complete(const fs_merge *m)
{
    if (!m->have_emitted || m->emitted != INT64_MAX || m->pending.count)
        return false;
    for (uint32_t f = 0; f < m->funnels->n; f++)
        if (m->cohorts[f].count)
            return false;
    return true;
}

/* ---- state ---------------------------------------------------------------- */

typedef struct cohort_ref {
    uint32_t part;
    fs_state_cohort c;
} cohort_ref;

static int cmp_ref(const void *a, const void *b)
{
    const cohort_ref *x = a, *y = b;
    if (x->part != y->part)
        return x->part < y->part ? -1 : 1;
    if (x->c.funnel != y->c.funnel)
        return x->c.funnel < y->c.funnel ? -1 : 1;
    return (x->c.start > y->c.start) - (x->c.start < y->c.start);
}

static cohort_ref *cohort_refs(const fs_merge *m, uint32_t *n)
{
    size_t total = 0;
    for (uint32_t f = 0; f < m->funnels->n; f++)
        for (size_t i = 0; i <= m->cohorts[f].mask; i++) {
            merge_cohort *mc = m->cohorts[f].slots[i].value;
            total += mc ? mc->n : 0;
        }
    cohort_ref *v = fs_xmalloc((total + 1) * sizeof(*v));
    *n = 0;
    for (uint32_t f = 0; f < m->funnels->n; f++)
        for (size_t i = 0; i <= m->cohorts[f].mask; i++) {
            merge_cohort *mc = m->cohorts[f].slots[i].value;
            for (uint32_t k = 0; mc && k < mc->n; k++)
                v[(*n)++] = (cohort_ref){mc->part[k],
                                         {f, false, m->cohorts[f].slots[i].key, mc->counts[k]}};
        }
    qsort(v, *n, sizeof(*v), cmp_ref);
    return v;
}

bool fs_merge_snapshot(fs_merge *m, fs_buf *out, uint64_t checkpoint)
{
    if (!m->changed)
        return false;
    fs_state_merge sm = {.checkpoint = checkpoint,
                         .config_hash = m->config_hash,
                         .n_parts = m->n_expected,
                         .have_emitted = m->have_emitted,
                         .emitted = m->emitted};
    sm.clocks = fs_xmalloc((m->n_parts + 1) * sizeof(*sm.clocks));
    for (uint32_t p = 0; p < m->n_parts; p++)
        if (m->parts[p].heard)
            sm.clocks[sm.n_clocks++] = (fs_state_merge_clock){p, m->parts[p].wm, m->parts[p].idle};
    sm.pending = fs_xmalloc((m->pending.count + 1) * sizeof(*sm.pending));
    for (size_t i = 0; i <= m->pending.mask; i++)
        if (m->pending.slots[i].value)
            sm.pending[sm.n_pending++] = m->pending.slots[i].value;
    cohort_ref *refs = cohort_refs(m, &sm.n_cohorts);
    sm.cohorts = fs_xmalloc((sm.n_cohorts + 1) * sizeof(*sm.cohorts));
    sm.cohort_part = fs_xmalloc((sm.n_cohorts + 1) * sizeof(*sm.cohort_part));
    for (uint32_t i = 0; i < sm.n_cohorts; i++) {
        sm.cohorts[i] = refs[i].c;
        sm.cohort_part[i] = refs[i].part;
    }
    fs_state_labels l = {merge_label, merge_intern, m};
    fs_state_encode_merge(out, &sm, m->funnels->n, m->n_stages, &l);
    free(refs);
    free(sm.clocks);
    free(sm.pending);
    free(sm.cohorts);
    free(sm.cohort_part);
    m->changed = false;
    return true;
}

int fs_merge_restore(fs_merge *m, const char *value, size_t len, char *err, size_t err_len)
{
    fs_state_labels l = {merge_label, merge_intern, m};
    fs_state_merge sm;
    if (fs_state_decode_merge(value, len, m->config_hash, m->funnels->n, m->n_stages, &l, &sm, err,
                              err_len) != FS_STATE_OK)
        return -1;
    clear_state(m);
    fs_merge_expect(m, sm.n_parts);
    m->have_emitted = sm.have_emitted;
    m->emitted = sm.emitted;
    for (uint32_t i = 0; i < sm.n_clocks; i++)
        *part_at(m, sm.clocks[i].part) =
            (merge_part){.heard = true, .idle = sm.clocks[i].idle, .wm = sm.clocks[i].wm};
    for (uint32_t i = 0; i < sm.n_pending; i++) {
        fs_i64map_put(&m->pending, sm.pending[i]->start, sm.pending[i]);
        sm.pending[i] = NULL;
    }
    sm.n_pending = 0;
    for (uint32_t i = 0; i < sm.n_cohorts; i++) {
        fs_state_cohort *sc = &sm.cohorts[i];
        merge_cohort *mc = cohort_at(m, sc->funnel, sc->start);
        set_cohort(mc, sm.cohort_part[i], sc->cohort, m->n_stages[sc->funnel]);
        mc->dirty = false;
        sc->cohort = NULL;
    }
    fs_state_merge_free(&sm, m->funnels->n);
    m->changed = false;
    atomic_store(&m->pending_windows, m->pending.count);
    atomic_store(&m->emitted_live, m->emitted);
    return 0;
}
