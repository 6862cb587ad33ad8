/* snapshot.c -- a worker's side of the state topic (see snapshot.h). */
#include "snapshot.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"
#include "util.h"

void fs_snapshot_track(fs_worker *w)
{
    fs_worker_track *t = fs_xcalloc(1, sizeof(*t));
    t->config_hash = fs_state_config_hash(w->cfg);
    w->track = t;
}

void fs_snapshot_untrack(fs_worker *w)
{
    fs_worker_track *t = w->track;
    if (!t)
        return;
    free(t->dirty);
    free(t->persisted);
    free(t->list);
    fs_buf_free(&t->tomb);
    free(t);
    w->track = NULL;
}

static bool bit(const uint64_t *v, uint32_t words, uint32_t i)
{
    return i / 64 < words && (v[i / 64] >> (i % 64) & 1);
}

static void set_bit(uint64_t *v, uint32_t i, bool on)
{
    if (on)
        v[i / 64] |= 1ull << (i % 64);
    else
        v[i / 64] &= ~(1ull << (i % 64));
}

static void ensure_words(fs_worker_track *t, uint32_t record)
{
    if (record / 64 >= t->words) {
        uint32_t words = record / 64 + 1 > 2 * t->words ? record / 64 + 1 : 2 * t->words;
        t->dirty = fs_xrealloc(t->dirty, words * sizeof(*t->dirty));
        t->persisted = fs_xrealloc(t->persisted, words * sizeof(*t->persisted));
        memset(t->dirty + t->words, 0, (words - t->words) * sizeof(*t->dirty));
        memset(t->persisted + t->words, 0, (words - t->words) * sizeof(*t->persisted));
        t->words = words;
    }
}

void fs_snapshot_mark(fs_worker_track *t, uint32_t record)
{
    ensure_words(t, record);
    set_bit(t->dirty, record, true);
    if (t->n_list == t->cap_list) {
        t->cap_list = t->cap_list ? 2 * t->cap_list : 1024;
        t->list = fs_xrealloc(t->list, t->cap_list * sizeof(*t->list));
    }
    t->list[t->n_list++] = record;
}

void fs_snapshot_removed(fs_worker *w, const fs_customer *c, uint32_t record)
{
    fs_worker_track *t = w->track;
    if (!t || record / 64 >= t->words)
        return;
    set_bit(t->dirty, record, false);
    if (!bit(t->persisted, t->words, record))
        return; /* never written: nothing to take back */
    set_bit(t->persisted, record, false);
    uint32_t len;
    const char *id = fs_journey_table_id(w->table, w->id, c, &len);
    uint16_t part = c->part;
    uint8_t n = (uint8_t)len;
    assert(len <= UINT8_MAX);
    fs_buf_put(&t->tomb, (const char *)&part, sizeof(part));
    fs_buf_put(&t->tomb, (const char *)&n, 1);
    fs_buf_put(&t->tomb, id, len);
}

void fs_snapshot_forget(fs_worker *w, uint32_t record)
{
    fs_worker_track *t = w->track;
    if (t && record / 64 < t->words) {
        set_bit(t->dirty, record, false);
        set_bit(t->persisted, record, false);
    }
}

/* ---- checkpoint --------------------------------------------------------- */

typedef struct state_out {
    fs_step *s;
    uint64_t checkpoint;
    fs_buf bytes;
    uint32_t cap;
} state_out;

static const char *worker_label(void *ctx, uint32_t label, uint32_t *len)
{
    const fs_worker *w = ctx;
    *len = fs_dict_len(&w->labels, label);
    return fs_dict_name(&w->labels, label);
}

static uint32_t worker_intern(void *ctx, const char *name, uint32_t len)
{
    fs_worker *w = ctx;
    return fs_dict_intern(&w->labels, name, len);
}

static fs_state_rec *new_rec(state_out *o, uint32_t part)
{
    fs_step *s = o->s;
    if (s->n_state == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 64;
        s->state = fs_xrealloc(s->state, o->cap * sizeof(*s->state));
    }
    fs_state_rec *r = &s->state[s->n_state++];
    r->part = part;
    r->off = (uint32_t)o->bytes.len;
    return r;
}

static void put_tombstones(fs_worker *w, state_out *o)
{
    fs_buf *tomb = &w->track->tomb;
    for (size_t at = 0; at < tomb->len;) {
        uint16_t part;
        memcpy(&part, tomb->p + at, sizeof(part));
        uint8_t len = (uint8_t)tomb->p[at + sizeof(part)];
        const char *id = tomb->p + at + sizeof(part) + 1;
        fs_state_rec *r = new_rec(o, part);
        fs_state_key_customer(&o->bytes, id, len);
        r->key_len = (uint32_t)(o->bytes.len - r->off);
        fs_state_customer gone = {.checkpoint = o->checkpoint}; /* no journey: removed */
        fs_state_encode_customer(&o->bytes, &gone, NULL);
        r->value_len = (uint32_t)(o->bytes.len - r->off - r->key_len);
        at += sizeof(part) + 1u + len;
    }
    tomb->len = 0;
}

static void put_customer(fs_worker *w, state_out *o, fs_customer *c)
{
    fs_state_journey js[FS_MAX_FUNNELS] = {0};
    fs_state_customer sc = {.journey = js, .checkpoint = o->checkpoint};
    sc.id = fs_journey_table_id(w->table, w->id, c, &sc.id_len);
    void *ext = fs_customer_ext(c, w->funnels->n);
    for (uint32_t f = 0; f < w->funnels->n; f++) {
        const fs_journey *j = &c->journey[f];
        if (!j->active)
            continue;
        const fs_funnel *fn = &w->funnels->funnel[f];
        fs_state_journey *sj = &js[sc.n_journeys++];
        uint32_t cap = 0;
        sj->n_touches = fs_journey_table_touches(w->table, w->id, j, &sj->touch, &cap);
        sj->funnel = f;
        sj->start_ts = j->start_ts;
        sj->max_stage = j->max_stage;
        const int64_t *stage_ts = fs_journey_stage_ts(fn, ext);
        const uint32_t *reached = fs_journey_reached(fn, ext);
        const fs_touch_list *campaigns = fs_journey_campaigns(fn, ext);
        if (stage_ts && *stage_ts != FS_STAGE_TS_UNKNOWN) {
            sj->timed = true;
            sj->stage_ts = *stage_ts;
        }
        sj->reached = reached ? *reached : 0;
        cap = 0;
        if (campaigns)
            sj->n_campaigns =
                fs_journey_table_list_touches(w->table, w->id, campaigns, &sj->campaign, &cap);
    }
    fs_state_rec *r = new_rec(o, c->part);
    fs_state_key_customer(&o->bytes, sc.id, sc.id_len);
    r->key_len = (uint32_t)(o->bytes.len - r->off);
    fs_state_labels l = {worker_label, worker_intern, w};
    fs_state_encode_customer(&o->bytes, &sc, &l);
    r->value_len = (uint32_t)(o->bytes.len - r->off - r->key_len);
    for (uint32_t k = 0; k < sc.n_journeys; k++) {
        free(js[k].touch);
        free(js[k].campaign);
    }
}

static void put_customers(fs_worker *w, state_out *o)
{
    fs_worker_track *t = w->track;
    for (uint32_t i = 0; i < t->n_list; i++) {
        uint32_t record = t->list[i];
        if (!bit(t->dirty, t->words, record))
            continue; /* listed twice, or removed since */
        set_bit(t->dirty, record, false);
        fs_customer *c = fs_journey_table_record(w->table, w->id, record);
        assert(c->id_len > 0 && c->n_active > 0);
        put_customer(w, o, c);
        set_bit(t->persisted, record, true);
    }
    t->n_list = 0;
}

static fs_window_slot *copy_slot(const fs_worker *w, const fs_window_slot *from)
{
    fs_window_slot *to = fs_window_slot_new(from->start, w->funnels->n);
    fs_window_slot_add(to, from, w->funnels->n, w->n_stages, NULL);
    return to;
}

static fs_window_slot **copy_map(const fs_worker *w, const fs_i64map *m, uint32_t *n)
{
    fs_window_slot **v = fs_xmalloc((m->count + 1) * sizeof(*v));
    *n = 0;
    for (size_t i = 0; i <= m->mask; i++)
        if (m->slots[i].value)
            v[(*n)++] = copy_slot(w, m->slots[i].value);
    return v;
}

/* A cohort's counts in a partition are final (nothing of the partition
 * can change them: worker.c, count_cohort) once the partition's watermark
 * passes the end of the last window holding it plus the conversion window. */
static bool cohort_final(const fs_worker *w, const fs_lane *l, uint32_t funnel, int64_t start)
{
    int64_t final_at =
        fs_sat_add(fs_window_end(&w->win, start), w->funnels->funnel[funnel].conversion_window_ms);
    return l->have_wm && fs_panes_wm(&l->windows, l->wm) >= final_at;
}

static void copy_cohorts(const fs_worker *w, fs_lane *l, fs_state_part *sp)
{
    uint32_t nf = w->funnels->n, total = 0;
    for (uint32_t k = 0; k < 2 * nf; k++)
        total += (uint32_t)l->cohorts[k].count;
    sp->cohorts = fs_xmalloc((total + 1) * sizeof(*sp->cohorts));
    int64_t *finals = fs_xmalloc((total + 1) * sizeof(*finals));
    for (uint32_t k = 0; k < 2 * nf; k++) {
        fs_i64map *m = &l->cohorts[k];
        uint32_t n_finals = 0;
        for (size_t i = 0; i <= m->mask; i++) {
            fs_cohort *c = m->slots[i].value;
            if (!c)
                continue;
            int64_t start = m->slots[i].key;
            if (cohort_final(w, l, k % nf, start)) {
                finals[n_finals++] = start; /* never changes again: dropped below */
                continue;
            }
            fs_cohort *copy = fs_cohort_new(w->n_stages[k % nf]);
            fs_cohort_merge(copy, c, w->n_stages[k % nf]); /* the step owns the copy */
            sp->cohorts[sp->n_cohorts++] = (fs_state_cohort){k % nf, k >= nf, start, copy};
        }
        for (uint32_t i = 0; i < n_finals; i++)
            free(fs_i64map_remove(m, finals[i]));
    }
    free(finals);
}

static void copy_lane(const fs_worker *w, fs_lane *l, fs_state_part *sp)
{
    memset(sp, 0, sizeof(*sp));
    sp->closed_upto = l->windows.closed_upto;
    sp->panes = copy_map(w, &l->windows.panes, &sp->n_panes);
    sp->extras = copy_map(w, &l->windows.extras, &sp->n_extras);
    sp->parked = fs_xmalloc((l->n_parked - l->parked_head + 1) * sizeof(*sp->parked));
    for (uint32_t i = l->parked_head; i < l->n_parked; i++)
        sp->parked[sp->n_parked++] = copy_slot(w, l->parked[i]);
    copy_cohorts(w, l, sp);
}

void fs_snapshot_take(fs_worker *w, fs_step *s, const fs_sync *sp, const fs_part_wm *parts)
{
    assert(w->track);
    s->checkpoint = true;
    s->checkpoint_id = sp->checkpoint_id;
    state_out o = {.s = s, .checkpoint = sp->checkpoint_id};
    put_tombstones(w, &o);
    put_customers(w, &o);
    s->state_bytes = o.bytes.p; /* the step owns them now */
    s->lanes = fs_xmalloc((w->n_lanes + 1) * sizeof(*s->lanes));
    s->lane_part = fs_xmalloc((w->n_lanes + 1) * sizeof(*s->lane_part));
    for (uint32_t p = 0; p < w->n_lanes; p++) {
        if (!w->lanes[p])
            continue;
        copy_lane(w, w->lanes[p], &s->lanes[s->n_lanes]);
        s->lane_part[s->n_lanes++] = p;
    }
    if (w->id == 0) {
        s->n_clocks = sp->n_parts;
        s->clocks = fs_xmalloc((sp->n_parts + 1) * sizeof(*s->clocks));
        if (sp->n_parts) /* none before any partition has a clock (parts may be NULL) */
            memcpy(s->clocks, parts + sp->parts_at, sp->n_parts * sizeof(*s->clocks));
    }
}

/* ---- restore ------------------------------------------------------------ */

static void restore_failed(fs_worker *w, const char *what, const char *err)
{
    fs_worker_track *t = w->track;
    if (t->failed)
        return;
    t->failed = true;
    snprintf(t->error, sizeof t->error, "%s: %s", what, err);
}

static void restore_customer(fs_worker *w, const fs_restore_rec *rr, const char *buf)
{
    const char *key = buf + rr->off, *id;
    uint32_t id_len;
    (void)fs_state_key_parse(key, rr->key_len, &id, &id_len);
    uint64_t hash = fs_hash_customer(id, id_len);
    uint32_t record;
    fs_customer *c = fs_journey_table_find(w->table, hash, id, id_len, &record);
    if (c)
        fs_worker_drop_customer(w, c, record, true); /* the topic has a later record of it */
    if (rr->value_len == FS_STATE_TOMBSTONE)
        return;
    fs_state_labels l = {worker_label, worker_intern, w};
    fs_state_customer sc;
    char err[160];
    if (fs_state_decode_customer(key + rr->key_len, rr->value_len, w->funnels->n, w->n_stages, &l,
                                 &sc, err, sizeof err) != FS_STATE_OK) {
        restore_failed(w, "a customer record of the state topic", err);
        return;
    }
    if (sc.n_journeys > 0) {
        c = fs_journey_table_insert(w->table, hash, id, id_len, rr->part, &record);
        fs_customer_write_begin(c);
        for (uint32_t k = 0; k < sc.n_journeys; k++)
            fs_worker_adopt_journey(w, c, record, &sc.journey[k]);
        fs_customer_write_end(c);
        ensure_words(w->track, record);
        set_bit(w->track->persisted, record, true); /* it is on the topic as it is */
    }
    fs_state_customer_free(&sc);
}

static void restore_part(fs_worker *w, const fs_restore_rec *rr, const char *buf)
{
    fs_state_labels l = {worker_label, worker_intern, w};
    fs_state_part sp;
    char err[160];
    if (fs_state_decode_part(buf + rr->off + rr->key_len, rr->value_len, w->track->config_hash,
                             w->funnels->n, w->n_stages, &l, &sp, err, sizeof err) != FS_STATE_OK) {
        restore_failed(w, "the partition record of the state topic", err);
        return;
    }
    fs_worker_adopt_lane(w, rr->part, &sp, w->id == 0);
    fs_state_part_free(&sp, w->funnels->n);
}

void fs_snapshot_restore(fs_worker *w, const fs_restore_rec *rr, const char *buf)
{
    const char *id;
    uint32_t id_len;
    switch (fs_state_key_parse(buf + rr->off, rr->key_len, &id, &id_len)) {
    case FS_STATE_KEY_CUSTOMER:
        restore_customer(w, rr, buf);
        break;
    case FS_STATE_KEY_PART:
        if (rr->value_len != FS_STATE_TOMBSTONE)
            restore_part(w, rr, buf);
        break;
    case FS_STATE_KEY_MERGE: /* the sink's (merge.h): worker 0 hands it over */
        if (w->id == 0)
            fs_worker_restore_merge(
                w, rr->value_len == FS_STATE_TOMBSTONE ? NULL : buf + rr->off + rr->key_len,
                rr->value_len == FS_STATE_TOMBSTONE ? 0 : rr->value_len);
        break;
    case FS_STATE_KEY_BAD:
        restore_failed(w, "the state topic", "a record with a key this version does not write");
        break;
    }
}
