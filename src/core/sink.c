/* sink.c -- workers' steps -> partials -> the merge -> records (see sink.h).
 *
 * Per input partition the sink keeps what its partials must say: the
 * clock it last sent and the partition's cumulative cohort counts (the sum
 * of the workers' deltas since the partition came to this instance, pane
 * deltas spread over the windows holding the pane). A step becomes one
 * partial per partition that has news: windows closed for it (the workers'
 * slots of equal start added), cohorts changed, or a clock that moved.
 */
#include "sink.h"

#include <assert.h>
#include <stdatomic.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "i64map.h"
#include "log.h"
#include "merge.h"
#include "record.h"
#include "state.h"

#include "util.h"
#include "window.h"
#include <xxhash.h>

typedef struct label_xlate {
    uint32_t *id; /* worker label id -> sink label id */
    uint32_t n, cap;
} label_xlate;

/* What the partials of one input partition have said so far. */
typedef struct sink_part {
    bool known; /* this instance holds it (it has been in a step's clocks) */
    bool sent;  /* a partial with its clock has gone out: */
    int64_t sent_wm;
    bool sent_idle; /* the clock it said */
    int64_t wm;
    bool idle;
    fs_i64map *cohorts; /* per funnel: window start -> fs_cohort (dirty: not sent) */
    fs_i64map closed;   /* this step's windows: start -> fs_window_slot */
} sink_part;

struct fs_sink {
    const fs_config *cfg;
    const fs_funnels *funnels;
    uint32_t n_workers;
    fs_window_spec win;
    fs_output out;
    fs_dict labels;
    label_xlate *xlate; /* per worker */
    sink_part *parts;   /* by input partition */
    uint32_t n_parts;
    fs_merge *merge;
    bool merging; /* in-process, or this instance holds the partials partition */
    uint64_t bad_partials_logged;
    fs_buf rec, key;
    uint64_t config_hash;   /* fs_state_config_hash, for partition records */
    uint32_t *n_stages;     /* per funnel, for partition records */
    fs_i64map part_written; /* partition -> hash of the last partition record written */
    uint64_t dead_letters;  /* handed to out.dead_letter so far */
    _Atomic uint64_t write_errors, partials_sent, partial_bytes;
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
    s->config_hash = fs_state_config_hash(cfg);
    fs_i64map_init(&s->part_written);
    s->n_stages = fs_xmalloc((funnels->n + 1) * sizeof(*s->n_stages));
    for (uint32_t f = 0; f < funnels->n; f++)
        s->n_stages[f] = funnels->funnel[f].n_stages;
    fs_dict_init(&s->labels);
    s->xlate = fs_xcalloc(n_workers, sizeof(*s->xlate));
    s->merge = fs_merge_new(cfg, funnels, out.n_parts, out);
    s->merging = !out.partial;
    return s;
}

static void part_forget(fs_sink *s, sink_part *sp)
{
    if (sp->cohorts) {
        for (uint32_t f = 0; f < s->funnels->n; f++) {
            fs_i64map *m = &sp->cohorts[f];
            for (size_t i = 0; i <= m->mask; i++)
                free(m->slots[i].value);
            fs_i64map_free(m);
        }
        free(sp->cohorts);
    }
    fs_i64map_free(&sp->closed);
    *sp = (sink_part){0};
}

void fs_sink_free(fs_sink *s)
{
    if (!s)
        return;
    for (uint32_t p = 0; p < s->n_parts; p++)
        part_forget(s, &s->parts[p]);
    free(s->parts);
    fs_merge_free(s->merge);
    free(s->n_stages);
    fs_i64map_free(&s->part_written);
    for (uint32_t w = 0; w < s->n_workers; w++)
        free(s->xlate[w].id);
    free(s->xlate);
    fs_dict_free(&s->labels);
    fs_buf_free(&s->rec);
    fs_buf_free(&s->key);
    free(s);
}

fs_sink_stats fs_sink_get_stats(const fs_sink *s)
{
    fs_merge_stats ms = fs_merge_get_stats(s->merge);
    return (fs_sink_stats){
        ms.flow_records,
        ms.cohort_records,
        ms.write_errors + atomic_load_explicit(&s->write_errors, memory_order_relaxed),
        atomic_load_explicit(&s->partials_sent, memory_order_relaxed),
        atomic_load_explicit(&s->partial_bytes, memory_order_relaxed),
    };
}

fs_merge *fs_sink_merge(fs_sink *s)
{
    return s->merge;
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

static const char *sink_label(void *ctx, uint32_t label, uint32_t *len)
{
    const fs_sink *s = ctx;
    *len = fs_dict_len(&s->labels, label);
    return fs_dict_name(&s->labels, label);
}

/* ---- partials --------------------------------------------------------------- */

static sink_part *part_at(fs_sink *s, uint32_t p)
{
    if (p >= s->n_parts) {
        uint32_t n = p + 1 > 2 * s->n_parts ? p + 1 : 2 * s->n_parts;
        s->parts = fs_xrealloc(s->parts, n * sizeof(*s->parts));
        memset(s->parts + s->n_parts, 0, (n - s->n_parts) * sizeof(*s->parts));
        s->n_parts = n;
    }
    sink_part *sp = &s->parts[p];
    if (!sp->cohorts) {
        sp->cohorts = fs_xcalloc(s->funnels->n, sizeof(*sp->cohorts));
        for (uint32_t f = 0; f < s->funnels->n; f++)
            fs_i64map_init(&sp->cohorts[f]);
        fs_i64map_init(&sp->closed);
        sp->wm = INT64_MIN;
    }
    return sp;
}

static void gather_windows(fs_sink *s, fs_step **steps)
{
    uint32_t nf = s->funnels->n;
    for (uint32_t w = 0; w < s->n_workers; w++)
        for (uint32_t i = 0; i < steps[w]->n_closed; i++) {
            fs_window_slot *from = steps[w]->closed[i];
            sink_part *sp = part_at(s, steps[w]->closed_part[i]);
            fs_window_slot *into = fs_i64map_get(&sp->closed, from->start);
            if (!into) {
                into = fs_window_slot_new(from->start, nf);
                fs_i64map_put(&sp->closed, into->start, into);
            }
            fs_window_slot_add(into, from, nf, s->n_stages, s->xlate[w].id);
        }
}

static void add_cohort(fs_sink *s, sink_part *sp, uint32_t funnel, int64_t start,
                       const fs_cohort *delta)
{
    uint32_t n = s->funnels->funnel[funnel].n_stages;
    fs_cohort_map_add(&sp->cohorts[funnel], start, delta, n)->dirty = true;
}

static void gather_cohorts(fs_sink *s, fs_step **steps)
{
    for (uint32_t w = 0; w < s->n_workers; w++)
        for (uint32_t i = 0; i < steps[w]->n_cohorts; i++) {
            const fs_cohort_delta *d = &steps[w]->cohorts[i];
            sink_part *sp = part_at(s, d->part);
            if (!d->pane) {
                add_cohort(s, sp, d->funnel, d->start, d->cohort);
                continue;
            }
            /* every window holding the pane: none was final when counted */
            int64_t at;
            for (uint32_t k = 0;
                 k < s->win.per_time && fs_window_kth_start(&s->win, d->start, k, &at); k++)
                add_cohort(s, sp, d->funnel, at, d->cohort);
        }
}

/* Where each partition's clock stands after the step; on the final step
 * every partition this instance holds is at +inf. */
static void forget_revoked(fs_sink *s, const fs_step *st0)
{
    for (uint32_t i = 0; i < st0->n_revoked; i++)
        if (st0->revoked[i] < s->n_parts)
            part_forget(s, &s->parts[st0->revoked[i]]);
}

static void gather_clocks(fs_sink *s, const fs_step *st0)
{
    for (uint32_t i = 0; i < st0->n_parts; i++) {
        sink_part *sp = part_at(s, st0->parts[i].part);
        sp->known = true;
        /* an idle partition's lane was closed at the instance watermark (worker.c) */
        bool behind = st0->parts[i].idle && st0->parts[i].wm < st0->wm;
        sp->wm = behind ? st0->wm : st0->parts[i].wm;
        sp->idle = st0->parts[i].idle;
    }
    if (!st0->final)
        return;
    for (uint32_t p = 0; p < s->n_parts; p++)
        if (s->parts[p].cohorts) {
            s->parts[p].known = true;
            s->parts[p].wm = INT64_MAX;
            s->parts[p].idle = false;
        }
}

static int cmp_slot(const void *a, const void *b)
{
    int64_t x = (*(fs_window_slot *const *)a)->start, y = (*(fs_window_slot *const *)b)->start;
    return (x > y) - (x < y);
}

/* The partition's windows of this step, ascending, moved into pt. */
static void take_windows(fs_sink *s, sink_part *sp, fs_state_partial *pt)
{
    uint32_t nf = s->funnels->n, n = 0;
    pt->slots = fs_xmalloc((sp->closed.count + 1) * sizeof(*pt->slots));
    for (size_t i = 0; i <= sp->closed.mask; i++)
        if (sp->closed.slots[i].value)
            pt->slots[n++] = sp->closed.slots[i].value;
    qsort(pt->slots, n, sizeof(*pt->slots), cmp_slot);
    pt->n_slots = n;
    pt->events = fs_xcalloc((size_t)n * nf + 1, sizeof(*pt->events));
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t f = 0; f < nf; f++)
            pt->events[(size_t)i * nf + f] =
                pt->slots[i]->flow[f] ? pt->slots[i]->flow[f]->events : 0;
    fs_i64map_free(&sp->closed);
    fs_i64map_init(&sp->closed);
}

/* The partition's changed cohorts (copies: the totals stay), and the
 * totals the partition's watermark made final are dropped once sent. */
static void take_cohorts(fs_sink *s, sink_part *sp, fs_state_partial *pt)
{
    uint32_t total = 0;
    for (uint32_t f = 0; f < s->funnels->n; f++)
        total += (uint32_t)sp->cohorts[f].count;
    pt->cohorts = fs_xmalloc((total + 1) * sizeof(*pt->cohorts));
    for (uint32_t f = 0; f < s->funnels->n; f++) {
        fs_i64map *m = &sp->cohorts[f];
        uint32_t n_stages = s->n_stages[f];
        int64_t cw = s->funnels->funnel[f].conversion_window_ms;
        for (size_t i = 0; i <= m->mask; i++) {
            fs_cohort *c = m->slots[i].value;
            if (!c)
                continue;
            int64_t start = m->slots[i].key;
            if (c->dirty) {
                fs_cohort *copy = fs_cohort_new(n_stages);
                fs_cohort_merge(copy, c, n_stages);
                pt->cohorts[pt->n_cohorts++] = (fs_state_cohort){f, false, start, copy};
                c->dirty = false;
            }
            if (sp->wm >= fs_sat_add(fs_window_end(&s->win, start), cw)) {
                free(fs_i64map_remove(m, start));
                i--; /* the removal may have shifted a later entry here */
            }
        }
    }
}

static bool has_dirty_cohort(const fs_sink *s, const sink_part *sp)
{
    for (uint32_t f = 0; f < s->funnels->n; f++) {
        const fs_i64map *m = &sp->cohorts[f];
        for (size_t i = 0; m->count && i <= m->mask; i++)
            if (m->slots[i].value && ((fs_cohort *)m->slots[i].value)->dirty)
                return true;
    }
    return false;
}

/* pt encoded into s->rec; its size. */
static size_t encode_partial(fs_sink *s, const fs_state_partial *pt)
{
    fs_state_labels l = {sink_label, NULL, s};
    s->rec.len = 0;
    fs_state_encode_partial(&s->rec, pt, s->funnels->n, s->n_stages, &l);
    return s->rec.len;
}

/* The partial encoded in s->rec out: to the partials topic, or straight
 * into this process's merge. */
static void emit_partial(fs_sink *s, uint32_t p)
{
    atomic_fetch_add_explicit(&s->partials_sent, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->partial_bytes, s->rec.len, memory_order_relaxed);
    if (s->out.partial) {
        char key[16];
        int n = snprintf(key, sizeof key, "%u", p);
        if (s->out.partial(s->out.ctx, p, key, (size_t)n, s->rec.p, s->rec.len) != 0)
            atomic_fetch_add_explicit(&s->write_errors, 1, memory_order_relaxed);
        return;
    }
    char err[200];
    int rc = fs_merge_partial(s->merge, s->rec.p, s->rec.len, err, sizeof err);
    assert(rc == 0); /* this process wrote it */
    (void)rc;
}

/* Sends pt, split in halves (recursively) while it is larger than
 * FS_PARTIAL_MAX_BYTES, which a producer would refuse (message.max.bytes,
 * 1 MB by default: many windows closing at once, say hopping windows with
 * a small hop). Every piece but the last carries the clock already sent
 * (`before`): the merge takes a window as new only if it ends after the
 * partition's clock as it stood (merge.c), so the pieces' windows are all
 * taken, and the new clock, in the last piece, closes them together. Not
 * idle before the last piece: holding windows back is the safe side. */
static void send_pieces(fs_sink *s, uint32_t p, const fs_state_partial *pt,
                        const fs_state_partial *before)
{
    uint32_t items = pt->n_slots + pt->n_cohorts;
    if (encode_partial(s, pt) <= FS_PARTIAL_MAX_BYTES || items <= 1) {
        emit_partial(s, p); /* the bytes just encoded */
        return;
    }
    uint32_t nf = s->funnels->n, half = items / 2;
    uint32_t slots = half < pt->n_slots ? half : pt->n_slots, cohorts = half - slots;
    fs_state_partial first = *before, rest = *pt;
    first.slots = pt->slots;
    first.n_slots = slots;
    first.events = pt->events;
    first.cohorts = pt->cohorts;
    first.n_cohorts = cohorts;
    rest.slots = pt->slots + slots;
    rest.n_slots = pt->n_slots - slots;
    rest.events = pt->events + (size_t)slots * nf;
    rest.cohorts = pt->cohorts + cohorts;
    rest.n_cohorts = pt->n_cohorts - cohorts;
    send_pieces(s, p, &first, before);
    send_pieces(s, p, &rest, before);
}

/* One partial for partition p if it has news (in pieces if large). */
static void send_partial(fs_sink *s, uint32_t p)
{
    sink_part *sp = &s->parts[p];
    bool clock_moved = !sp->sent || sp->wm != sp->sent_wm || sp->idle != sp->sent_idle;
    if (!sp->known || (!clock_moved && !sp->closed.count && !has_dirty_cohort(s, sp)))
        return;
    fs_state_partial pt = {.config_hash = s->config_hash,
                           .part = p,
                           .n_parts = s->out.n_parts,
                           .wm = sp->wm,
                           .idle = sp->idle};
    fs_state_partial before = pt;
    before.wm = sp->sent ? sp->sent_wm : INT64_MIN;
    before.idle = false;
    take_windows(s, sp, &pt);
    take_cohorts(s, sp, &pt);
    send_pieces(s, p, &pt, &before);
    fs_state_partial_free(&pt, s->funnels->n);
    sp->sent = true;
    sp->sent_wm = sp->wm;
    sp->sent_idle = sp->idle;
}

/* The merge's state restored (with the partials partition's assignment on
 * the topic path, with partition 0's in one process); on the topic path it
 * goes with the partials partition's revocation. */
static void restore_merge(fs_sink *s, const fs_step *st0)
{
    for (uint32_t i = 0; s->out.partial && i < st0->n_revoked; i++)
        if (st0->revoked[i] == s->out.merge_part) {
            fs_merge_reset(s->merge);
            s->merging = false;
        }
    char err[300];
    if (st0->merge_restore) {
        fs_merge_reset(s->merge);
        s->merging = true;
        if (st0->merge_state.bytes && fs_merge_restore(s->merge, st0->merge_state.bytes,
                                                       st0->merge_state.len, err, sizeof err) != 0)
            /* the loop read it before it restored it: not expected */
            fs_log(FS_LOG_ERROR, "merger state unreadable", "error=\"%s\"", err);
    }
}

/* Topic path: what the partials topic brought. */
static void merge_consumed(fs_sink *s, const fs_step *st0)
{
    char err[300];
    for (uint32_t i = 0; i < st0->n_partials; i++)
        if (fs_merge_partial(s->merge, st0->partials[i].bytes, st0->partials[i].len, err,
                             sizeof err) != 0 &&
            s->bad_partials_logged++ < 10)
            fs_log(FS_LOG_ERROR, "partial skipped", "error=\"%s\"", err);
    fs_merge_emit(s->merge);
}

static void send_partials(fs_sink *s, fs_step **steps)
{
    forget_revoked(s, steps[0]);
    gather_windows(s, steps);
    gather_cohorts(s, steps);
    gather_clocks(s, steps[0]);
    for (uint32_t p = 0; p < s->n_parts; p++)
        send_partial(s, p);
    if (!s->out.partial)
        fs_merge_emit(s->merge); /* once all of the step's partials are in */
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
            if (st0->clocks[k].part == pms[i].part && st0->clocks[k].seen)
                clock = &st0->clocks[k];
        write_part(s, &pms[i], clock, st0->wm, st0->checkpoint_id);
    }
    free(pms);
}

static void write_merge_state(fs_sink *s, uint64_t checkpoint)
{
    s->rec.len = s->key.len = 0;
    if (!fs_merge_snapshot(s->merge, &s->rec, checkpoint))
        return; /* as written last */
    fs_state_key_merge(&s->key);
    /* in one process the merge's state goes with partition 0's */
    uint32_t part = s->out.partial ? s->out.merge_part : 0;
    if (s->out.state(s->out.ctx, part, s->key.p, s->key.len, s->rec.p, s->rec.len) != 0)
        atomic_fetch_add_explicit(&s->write_errors, 1, memory_order_relaxed);
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
        restore_merge(s, steps[0]);
        if (s->out.partial)
            merge_consumed(s, steps[0]);
        send_partials(s, steps);
        if (st->checkpoint && s->out.state)
            write_checkpoint(s, steps);
        if (st->checkpoint && s->out.state && s->merging)
            write_merge_state(s, st->checkpoint_id);
    }
    if (s->out.step_done) {
        fs_step_info info = {st->wm,
                             st->max_ts,
                             st->src_seq,
                             s->dead_letters,
                             st->src_ns,
                             st->final,
                             st->stopped,
                             st->checkpoint && s->out.state,
                             st->checkpoint_id,
                             s->merging && !st->stopped && fs_merge_complete(s->merge)};
        s->out.step_done(s->out.ctx, &info);
    }
    for (uint32_t w = 0; w < s->n_workers; w++)
        fs_step_free(steps[w], s->funnels->n);
}
