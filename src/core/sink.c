/* sink.c -- merge worker partials, emit flow and cohort records (see sink.h). */
#include "sink.h"

#include <stdatomic.h>

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "i64map.h"
#include "record.h"
#include "state.h"

#include "util.h"
#include "window.h"
#include <xxhash.h>

typedef struct label_xlate {
    uint32_t *id; /* worker label id -> sink label id */
    uint32_t n, cap;
} label_xlate;

struct fs_sink {
    const fs_config *cfg;
    const fs_funnels *funnels;
    uint32_t n_workers;
    fs_window_spec win;
    fs_output out;
    fs_format format;
    fs_dict labels;
    label_xlate *xlate; /* per worker */
    fs_i64map *cohorts; /* per funnel: start -> fs_cohort totals */
    fs_buf rec, key;
    fs_buf json;            /* a flow record again in JSON for out.flow_json, when rec is not */
    uint64_t config_hash;   /* fs_state_config_hash, for partition records */
    uint32_t *n_stages;     /* per funnel, for partition records */
    fs_i64map part_written; /* partition -> hash of the last partition record written */
    uint64_t dead_letters;  /* handed to out.dead_letter so far */
    /* written by the sink thread only, read live by others */
    _Atomic uint64_t flow_records, cohort_records, write_errors;
};

fs_sink *fs_sink_new(const fs_config *cfg, const fs_funnels *funnels, uint32_t n_workers,
                     fs_output out)
{
    fs_sink *s = fs_xcalloc(1, sizeof(*s));
    s->cfg = cfg;
    s->funnels = funnels;
    s->n_workers = n_workers;
    s->win = fs_window_spec_make(cfg->window_size_ms, cfg->window_hop_ms);
    s->out = out;
    s->format = out.format;
    s->config_hash = fs_state_config_hash(cfg);
    fs_i64map_init(&s->part_written);
    s->n_stages = fs_xmalloc((funnels->n + 1) * sizeof(*s->n_stages));
    for (uint32_t f = 0; f < funnels->n; f++)
        s->n_stages[f] = funnels->funnel[f].n_stages;
    fs_dict_init(&s->labels);
    s->xlate = fs_xcalloc(n_workers, sizeof(*s->xlate));
    s->cohorts = fs_xcalloc(funnels->n, sizeof(*s->cohorts));
    for (uint32_t f = 0; f < funnels->n; f++)
        fs_i64map_init(&s->cohorts[f]);
    return s;
}

void fs_sink_free(fs_sink *s)
{
    if (!s)
        return;
    for (uint32_t f = 0; f < s->funnels->n; f++) {
        fs_i64map *m = &s->cohorts[f];
        for (size_t i = 0; i <= m->mask; i++)
            free(m->slots[i].value);
        fs_i64map_free(m);
    }
    free(s->cohorts);
    free(s->n_stages);
    fs_i64map_free(&s->part_written);
    for (uint32_t w = 0; w < s->n_workers; w++)
        free(s->xlate[w].id);
    free(s->xlate);
    fs_dict_free(&s->labels);
    fs_buf_free(&s->rec);
    fs_buf_free(&s->json);
    fs_buf_free(&s->key);
    free(s);
}

fs_sink_stats fs_sink_get_stats(const fs_sink *s)
{
    return (fs_sink_stats){
        atomic_load_explicit(&s->flow_records, memory_order_relaxed),
        atomic_load_explicit(&s->cohort_records, memory_order_relaxed),
        atomic_load_explicit(&s->write_errors, memory_order_relaxed),
    };
}

static void learn_labels(fs_sink *s, uint32_t worker, const fs_step *st)
{
    label_xlate *x = &s->xlate[worker];
    if (x->n + st->n_labels > x->cap) {
        while (x->cap < x->n + st->n_labels)
            x->cap = x->cap ? x->cap * 2 : 64;
        x->id = fs_xrealloc(x->id, x->cap * sizeof(*x->id));
    }
    for (uint32_t i = 0; i < st->n_labels; i++)
        x->id[x->n++] = fs_dict_intern(&s->labels, st->label_names[i], st->label_lens[i]);
}

static void write_record(fs_sink *s)
{
    if (s->out.write(s->out.ctx, s->key.p, s->key.len, s->rec.p, s->rec.len) != 0)
        atomic_fetch_add_explicit(&s->write_errors, 1, memory_order_relaxed);
}

static void emit_flow(fs_sink *s, const fs_funnel *f, int64_t start, const fs_flow *flow,
                      uint64_t rejected)
{
    fs_window_id w = {start, fs_window_end(&s->win, start)};
    s->rec.len = s->key.len = 0;
    fs_record_flow_key(&s->key, f->cfg, w);
    fs_record_flow(&s->rec, s->format, f->cfg, w, flow, rejected, &s->labels);
    write_record(s);
    if (s->out.flow_json) {
        fs_flow_json rec = {f->index, start, s->key.p, s->rec.p, s->key.len, s->rec.len};
        if (s->format != FS_FORMAT_JSON) {
            s->json.len = 0;
            fs_record_flow(&s->json, FS_FORMAT_JSON, f->cfg, w, flow, rejected, &s->labels);
            rec.json = s->json.p;
            rec.len = s->json.len;
        }
        s->out.flow_json(s->out.ctx, &rec);
    }
    atomic_fetch_add_explicit(&s->flow_records, 1, memory_order_relaxed);
}

/* Merges the windows of equal start across workers (each list is sorted) and
 * emits them in ascending order. */
static void emit_closed_windows(fs_sink *s, fs_step **steps)
{
    uint32_t nf = s->funnels->n;
    uint32_t *pos = fs_xcalloc(s->n_workers, sizeof(*pos));
    fs_flow **merged = fs_xcalloc(nf, sizeof(*merged));
    for (;;) {
        int64_t start = INT64_MAX;
        bool any = false;
        for (uint32_t w = 0; w < s->n_workers; w++)
            if (pos[w] < steps[w]->n_closed && (!any || steps[w]->closed[pos[w]]->start < start)) {
                start = steps[w]->closed[pos[w]]->start;
                any = true;
            }
        if (!any)
            break;
        uint64_t rejected = 0;
        for (uint32_t w = 0; w < s->n_workers; w++) {
            if (pos[w] >= steps[w]->n_closed || steps[w]->closed[pos[w]]->start != start)
                continue;
            fs_window_slot *slot = steps[w]->closed[pos[w]++];
            rejected += slot->rejected;
            for (uint32_t f = 0; f < nf; f++) {
                if (!slot->flow[f])
                    continue;
                if (!merged[f])
                    merged[f] = fs_flow_new(s->funnels->funnel[f].n_stages);
                fs_flow_merge(merged[f], slot->flow[f], s->xlate[w].id);
            }
        }
        for (uint32_t f = 0; f < nf; f++) {
            if (!merged[f] && rejected == 0)
                continue;
            if (!merged[f])
                merged[f] = fs_flow_new(s->funnels->funnel[f].n_stages);
            emit_flow(s, &s->funnels->funnel[f], start, merged[f], rejected);
            fs_flow_free(merged[f]);
            merged[f] = NULL;
        }
    }
    free(merged);
    free(pos);
}

static void add_cohort(fs_sink *s, uint32_t funnel, int64_t start, const fs_cohort *delta)
{
    uint32_t n = s->funnels->funnel[funnel].n_stages;
    fs_cohort_map_add(&s->cohorts[funnel], start, delta, n)->dirty = true;
}

static void add_cohort_deltas(fs_sink *s, fs_step **steps)
{
    for (uint32_t w = 0; w < s->n_workers; w++)
        for (uint32_t i = 0; i < steps[w]->n_cohorts; i++) {
            const fs_cohort_delta *d = &steps[w]->cohorts[i];
            if (!d->pane) {
                add_cohort(s, d->funnel, d->start, d->cohort);
                continue;
            }
            /* every window holding the pane: none was final when counted */
            int64_t at;
            for (uint32_t k = 0;
                 k < s->win.per_time && fs_window_kth_start(&s->win, d->start, k, &at); k++)
                add_cohort(s, d->funnel, at, d->cohort);
        }
}

typedef struct due_cohort {
    int64_t start;
    uint32_t funnel;
    bool final;
    fs_cohort *c;
} due_cohort;

static int cmp_due(const void *a, const void *b)
{
    const due_cohort *x = a, *y = b;
    if (x->start != y->start)
        return (x->start > y->start) - (x->start < y->start);
    return (x->funnel > y->funnel) - (x->funnel < y->funnel);
}

static void emit_cohorts(fs_sink *s, const fs_step *st)
{
    bool tick = st->final || fs_floor_div(st->wm_before, s->cfg->cohort_emit_interval_ms) !=
                                 fs_floor_div(st->wm, s->cfg->cohort_emit_interval_ms);
    due_cohort *due = NULL;
    size_t n = 0, cap = 0;
    for (uint32_t f = 0; f < s->funnels->n; f++) {
        const fs_funnel *fn = &s->funnels->funnel[f];
        fs_i64map *m = &s->cohorts[f];
        for (size_t i = 0; i <= m->mask; i++) {
            fs_cohort *c = m->slots[i].value;
            if (!c)
                continue;
            int64_t start = m->slots[i].key;
            int64_t final_at = fs_sat_add(fs_window_end(&s->win, start), fn->conversion_window_ms);
            bool final = st->final || st->wm >= final_at;
            if (!final && !(tick && c->dirty))
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                due = fs_xrealloc(due, cap * sizeof(*due));
            }
            due[n++] = (due_cohort){start, f, final, c};
        }
    }
    if (n > 1) /* due is NULL when nothing is due */
        qsort(due, n, sizeof(*due), cmp_due);
    for (size_t i = 0; i < n; i++) {
        const fs_funnel *fn = &s->funnels->funnel[due[i].funnel];
        fs_window_id w = {due[i].start, fs_window_end(&s->win, due[i].start)};
        s->rec.len = s->key.len = 0;
        fs_record_cohort_key(&s->key, fn->cfg, w);
        fs_record_cohort(&s->rec, s->format, fn->cfg, w, due[i].c, due[i].final);
        write_record(s);
        atomic_fetch_add_explicit(&s->cohort_records, 1, memory_order_relaxed);
        due[i].c->dirty = false;
        if (due[i].final)
            free(fs_i64map_remove(&s->cohorts[due[i].funnel], due[i].start));
    }
    free(due);
}

/* ---- checkpoints: one partition record from every worker's lane ------- */

typedef struct part_merge {
    uint32_t part;
    int64_t closed_upto;
    fs_i64map kinds[3]; /* panes, extras, parked: start -> slot (sink label ids) */
    fs_i64map *cohorts; /* 2 per funnel as in fs_state_cohort: start -> fs_cohort */
} part_merge;

static void merge_slots(fs_sink *s, fs_i64map *m, fs_window_slot **from, uint32_t n,
                        const uint32_t *xlate)
{
    uint32_t nf = s->funnels->n;
    for (uint32_t i = 0; i < n; i++) {
        fs_window_slot *into = fs_i64map_get(m, from[i]->start);
        if (!into) {
            into = fs_window_slot_new(from[i]->start, nf);
            fs_i64map_put(m, into->start, into);
        }
        fs_window_slot_add(into, from[i], nf, s->n_stages, xlate);
    }
}

static void merge_lane(fs_sink *s, part_merge *pm, fs_state_part *lane, const uint32_t *xlate)
{
    uint32_t nf = s->funnels->n;
    if (lane->closed_upto > pm->closed_upto)
        pm->closed_upto = lane->closed_upto;
    merge_slots(s, &pm->kinds[0], lane->panes, lane->n_panes, xlate);
    merge_slots(s, &pm->kinds[1], lane->extras, lane->n_extras, xlate);
    merge_slots(s, &pm->kinds[2], lane->parked, lane->n_parked, xlate);
    for (uint32_t i = 0; i < lane->n_cohorts; i++) {
        const fs_state_cohort *sc = &lane->cohorts[i];
        fs_cohort_map_add(&pm->cohorts[sc->pane ? nf + sc->funnel : sc->funnel], sc->start,
                          sc->cohort, s->funnels->funnel[sc->funnel].n_stages);
    }
}

static int cmp_slot(const void *a, const void *b)
{
    int64_t x = (*(fs_window_slot *const *)a)->start, y = (*(fs_window_slot *const *)b)->start;
    return (x > y) - (x < y);
}

/* The slots of m, ascending, moved into a new array. */
static fs_window_slot **slots_of(fs_i64map *m, uint32_t *n)
{
    fs_window_slot **v = fs_xmalloc((m->count + 1) * sizeof(*v));
    *n = 0;
    for (size_t i = 0; i <= m->mask; i++)
        if (m->slots[i].value)
            v[(*n)++] = m->slots[i].value;
    qsort(v, *n, sizeof(*v), cmp_slot);
    fs_i64map_free(m);
    return v;
}

static const char *sink_label(void *ctx, uint32_t label, uint32_t *len)
{
    const fs_sink *s = ctx;
    *len = fs_dict_len(&s->labels, label);
    return fs_dict_name(&s->labels, label);
}

static void write_part(fs_sink *s, part_merge *pm, const fs_part_wm *clock, int64_t instance_wm,
                       uint64_t checkpoint)
{
    uint32_t nf = s->funnels->n;
    fs_state_part sp = {.checkpoint = checkpoint,
                        .config_hash = s->config_hash,
                        .seen = clock != NULL,
                        .max_ts = clock ? clock->max_ts : INT64_MIN,
                        .instance_wm = instance_wm,
                        .closed_upto = pm->closed_upto};
    sp.panes = slots_of(&pm->kinds[0], &sp.n_panes);
    sp.extras = slots_of(&pm->kinds[1], &sp.n_extras);
    sp.parked = slots_of(&pm->kinds[2], &sp.n_parked);
    uint32_t total = 0;
    for (uint32_t k = 0; k < 2 * nf; k++)
        total += (uint32_t)pm->cohorts[k].count;
    sp.cohorts = fs_xmalloc((total + 1) * sizeof(*sp.cohorts));
    for (uint32_t k = 0; k < 2 * nf; k++) {
        fs_i64map *m = &pm->cohorts[k];
        for (size_t i = 0; i <= m->mask; i++)
            if (m->slots[i].value)
                sp.cohorts[sp.n_cohorts++] =
                    (fs_state_cohort){k % nf, k >= nf, m->slots[i].key, m->slots[i].value};
        fs_i64map_free(m);
    }
    free(pm->cohorts);
    fs_state_labels l = {sink_label, NULL, s};
    s->rec.len = s->key.len = 0;
    fs_state_key_part(&s->key);
    /* A partition record equal to the last one written but for the
     * checkpoint's number adds nothing to the topic (an idle partition
     * would otherwise fill it, one per interval); the older number stays
     * right for any restore. */
    sp.checkpoint = 0;
    fs_state_encode_part(&s->rec, &sp, nf, s->n_stages, &l);
    uint64_t h = XXH3_64bits(s->rec.p, s->rec.len) | 1; /* 0: none written */
    if ((uint64_t)(uintptr_t)fs_i64map_get(&s->part_written, pm->part) == h) {
        fs_state_part_free(&sp, nf);
        return;
    }
    sp.checkpoint = checkpoint;
    s->rec.len = 0;
    fs_state_encode_part(&s->rec, &sp, nf, s->n_stages, &l);
    fs_state_part_free(&sp, nf);
    if (s->out.state(s->out.ctx, pm->part, s->key.p, s->key.len, s->rec.p, s->rec.len) != 0)
        atomic_fetch_add_explicit(&s->write_errors, 1, memory_order_relaxed);
    else
        fs_i64map_put(&s->part_written, pm->part, (void *)(uintptr_t)h);
}

static part_merge *part_of(fs_sink *s, part_merge **pms, uint32_t *n, uint32_t part)
{
    for (uint32_t i = 0; i < *n; i++)
        if ((*pms)[i].part == part)
            return &(*pms)[i];
    *pms = fs_xrealloc(*pms, (*n + 1) * sizeof(**pms));
    part_merge *pm = &(*pms)[(*n)++];
    pm->part = part;
    pm->closed_upto = INT64_MIN;
    for (int k = 0; k < 3; k++)
        fs_i64map_init(&pm->kinds[k]);
    pm->cohorts = fs_xcalloc(2 * s->funnels->n, sizeof(*pm->cohorts));
    for (uint32_t k = 0; k < 2 * s->funnels->n; k++)
        fs_i64map_init(&pm->cohorts[k]);
    return pm;
}

/* Every worker's changed customers, then one record per partition. */
static void write_checkpoint(fs_sink *s, fs_step **steps)
{
    for (uint32_t w = 0; w < s->n_workers; w++) {
        const fs_step *st = steps[w];
        for (uint32_t i = 0; i < st->n_state; i++) {
            const fs_state_rec *r = &st->state[i];
            const char *key = st->state_bytes + r->off;
            bool tomb = r->value_len == FS_STATE_TOMBSTONE;
            if (s->out.state(s->out.ctx, r->part, key, r->key_len, tomb ? NULL : key + r->key_len,
                             tomb ? 0 : r->value_len) != 0)
                atomic_fetch_add_explicit(&s->write_errors, 1, memory_order_relaxed);
        }
    }
    part_merge *pms = NULL;
    uint32_t n = 0;
    for (uint32_t w = 0; w < s->n_workers; w++)
        for (uint32_t i = 0; i < steps[w]->n_lanes; i++)
            merge_lane(s, part_of(s, &pms, &n, steps[w]->lane_part[i]), &steps[w]->lanes[i],
                       s->xlate[w].id);
    const fs_step *st0 = steps[0];
    for (uint32_t i = 0; i < n; i++) {
        const fs_part_wm *clock = NULL;
        for (uint32_t k = 0; k < st0->n_clocks; k++)
            if (st0->clocks[k].part == pms[i].part)
                clock = &st0->clocks[k];
        write_part(s, &pms[i], clock, st0->wm, st0->checkpoint_id);
    }
    free(pms);
}

void fs_sink_step(fs_sink *s, fs_step **steps)
{
    const fs_step *st = steps[0];
    for (uint32_t i = 0; i < st->n_dead; i++) {
        s->out.dead_letter(s->out.ctx, &st->dead[i]);
        s->dead_letters++;
    }
    if (!st->stopped) {
        for (uint32_t w = 0; w < s->n_workers; w++)
            learn_labels(s, w, steps[w]);
        emit_closed_windows(s, steps);
        add_cohort_deltas(s, steps);
        emit_cohorts(s, st);
        if (st->checkpoint && s->out.state)
            write_checkpoint(s, steps);
    }
    if (s->out.step_done) {
        fs_step_info info = {
            st->wm,           st->max_ts, st->src_seq, s->dead_letters,
            st->src_ns,       st->final,  st->stopped, st->checkpoint && s->out.state,
            st->checkpoint_id};
        s->out.step_done(s->out.ctx, &info);
    }
    for (uint32_t w = 0; w < s->n_workers; w++)
        fs_step_free(steps[w], s->funnels->n);
}
