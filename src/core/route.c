/* route.c -- partition clocks, the watermark and per-worker event lists (see route.h).
 *
 * The watermark rules are the ones a worker applied to every event before
 * the router existed; only where they run has changed. Raising a
 * partition's clock moves the minimum over the partitions only if that
 * partition was at the minimum (or was not counted), so most events skip
 * the scan over partitions.
 */
#include "route.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "journey_table.h"
#include "state.h"
#include "util.h"

enum { PART_NONE = 0, PART_ACTIVE = 1, PART_IDLE = 2, PART_ENDED = 3 };

void fs_routed_init(fs_routed *r, uint32_t n_workers, uint32_t msg_cap)
{
    memset(r, 0, sizeof(*r));
    r->own = fs_xcalloc(n_workers, sizeof(*r->own));
    r->n_own = fs_xcalloc(n_workers, sizeof(*r->n_own));
    r->restore = fs_xcalloc(n_workers, sizeof(*r->restore));
    r->n_restore = fs_xcalloc(n_workers, sizeof(*r->n_restore));
    /* Any worker may own every message of a batch. */
    for (uint32_t w = 0; w < n_workers; w++)
        r->own[w] = fs_xmalloc(msg_cap * sizeof(*r->own[w]));
}

void fs_routed_destroy(fs_routed *r, uint32_t n_workers)
{
    for (uint32_t w = 0; w < n_workers; w++) {
        free(r->own[w]);
        free(r->restore[w]);
    }
    free(r->own);
    free(r->restore);
    free(r->n_restore);
    free(r->n_own);
    free(r->sync);
    free(r->parts);
    free(r->revoked);
}

void fs_router_init(fs_router *r, const fs_config *cfg, uint32_t n_workers)
{
    memset(r, 0, sizeof(*r));
    r->n_workers = n_workers;
    r->win = fs_window_spec_make(cfg->window_size_ms, cfg->window_hop_ms);
    r->max_out_of_orderness = cfg->max_out_of_orderness_ms;
    r->emit_interval = cfg->cohort_emit_interval_ms;
    r->wm = r->max_ts = r->min_part_ts = INT64_MIN;
}

void fs_router_destroy(fs_router *r)
{
    free(r->parts);
}

static fs_part_clock *part_clock(fs_router *r, uint32_t p)
{
    if (__builtin_expect(p >= r->n_parts, 0)) {
        uint32_t n = p + 1 > 2 * r->n_parts ? p + 1 : 2 * r->n_parts;
        r->parts = fs_xrealloc(r->parts, n * sizeof(*r->parts));
        memset(r->parts + r->n_parts, 0, (n - r->n_parts) * sizeof(*r->parts));
        r->n_parts = n;
    }
    return &r->parts[p];
}

static bool crosses(int64_t a, int64_t b, int64_t every)
{
    return fs_floor_div(a, every) != fs_floor_div(b, every);
}

static int64_t part_wm(const fs_router *r, const fs_part_clock *pc)
{
    if (pc->state == PART_ENDED)
        return INT64_MAX;
    return pc->seen ? fs_sat_sub(pc->max_ts, r->max_out_of_orderness) : INT64_MIN;
}

/* Every partition assigned or with a clock, into out->parts for sync point s. */
static void snapshot_parts(const fs_router *r, fs_routed *out, fs_sync *s)
{
    s->parts_at = out->n_parts;
    for (uint32_t p = 0; p < r->n_parts; p++) {
        const fs_part_clock *pc = &r->parts[p];
        if (!pc->seen && pc->state == PART_NONE)
            continue;
        if (out->n_parts == out->parts_cap) {
            out->parts_cap = out->parts_cap ? 2 * out->parts_cap : 16;
            out->parts = fs_xrealloc(out->parts, out->parts_cap * sizeof(*out->parts));
        }
        bool ended = pc->state == PART_ENDED;
        out->parts[out->n_parts++] =
            (fs_part_wm){p, part_wm(r, pc), pc->seen ? pc->max_ts : INT64_MIN, pc->seen || ended,
                         pc->state == PART_IDLE};
    }
    s->n_parts = out->n_parts - s->parts_at;
}

static void push_sync(const fs_router *r, fs_routed *out, fs_sync s)
{
    snapshot_parts(r, out, &s);
    if (out->n_sync == out->sync_cap) {
        out->sync_cap = out->sync_cap ? 2 * out->sync_cap : 16;
        out->sync = fs_xrealloc(out->sync, out->sync_cap * sizeof(*out->sync));
    }
    assert(out->n_sync == 0 ||
           (out->sync[out->n_sync - 1].pos <= s.pos && out->sync[out->n_sync - 1].wm <= s.wm));
    out->sync[out->n_sync++] = s;
}

/* The watermark moves to new_wm before message pos is applied. */
static void advance(fs_router *r, fs_routed *out, uint32_t pos, int64_t new_wm, bool first)
{
    int64_t old = r->wm;
    assert(first || new_wm > old);
    r->wm = new_wm;
    bool step = crosses(old, new_wm, r->win.hop) || crosses(old, new_wm, r->emit_interval);
    if (first || step)
        push_sync(r, out,
                  (fs_sync){.pos = pos,
                            .first = first,
                            .step = step,
                            .wm_before = old,
                            .wm = new_wm,
                            .max_ts = r->max_ts});
}

/* The instance watermark from the partition clocks; advances it if it grew.
 * It is the minimum over the active partitions; when every partition with a
 * clock is idle, the maximum of theirs (as Flink does): the traffic that
 * stopped had got that far, and a window it closes has nothing more coming. */
static void update_watermark(fs_router *r, fs_routed *out, uint32_t pos)
{
    bool any = false, any_idle = false;
    int64_t min = INT64_MAX, max_idle = INT64_MIN;
    for (uint32_t p = 0; p < r->n_parts; p++) {
        const fs_part_clock *pc = &r->parts[p];
        if (pc->state == PART_IDLE && pc->seen) {
            any_idle = true;
            if (pc->max_ts > max_idle)
                max_idle = pc->max_ts;
        }
        if (pc->state != PART_ACTIVE)
            continue;
        any = true;
        int64_t ts = pc->seen ? pc->max_ts : INT64_MIN;
        if (ts < min)
            min = ts;
    }
    r->min_part_ts = any ? min : INT64_MIN;
    if (!any && any_idle)
        min = max_idle;
    else if (!any || (min == INT64_MIN && !r->have_wm))
        return; /* nothing active, or some active partition has not spoken yet */
    int64_t wm = fs_sat_sub(min, r->max_out_of_orderness);
    if (!r->have_wm) {
        r->have_wm = true;
        advance(r, out, pos, wm, true);
    } else if (wm > r->wm) {
        advance(r, out, pos, wm, false);
    }
}

static void observe_ts(fs_router *r, fs_routed *out, uint32_t pos, uint32_t part, int64_t ts)
{
    fs_part_clock *pc = part_clock(r, part);
    bool rescan = pc->state != PART_ACTIVE || !pc->seen || pc->max_ts <= r->min_part_ts;
    if (!pc->seen || ts > pc->max_ts)
        pc->max_ts = ts;
    pc->seen = true;
    pc->state = PART_ACTIVE;
    if (ts > r->max_ts)
        r->max_ts = ts;
    if (rescan)
        update_watermark(r, out, pos);
}

enum { CTL_STEP = 1, CTL_CHECKPOINT = 2 };

/* Applies the partition changes; returns whether a step must follow
 * (CTL_STEP: a partition ended) and whether it is a checkpoint. */
static int control(fs_router *r, fs_routed *out, const fs_part_ctl *ctl, uint32_t n)
{
    int checkpoint = 0;
    if (n == 0)
        return 0;
    for (uint32_t i = 0; i < n; i++) {
        if (ctl[i].op == FS_PART_CHECKPOINT) {
            checkpoint |= CTL_STEP | CTL_CHECKPOINT;
            continue;
        }
        fs_part_clock *pc = part_clock(r, ctl[i].part);
        switch (ctl[i].op) {
        case FS_PART_ASSIGN:
            *pc = (fs_part_clock){.state = PART_ACTIVE};
            break;
        case FS_PART_IDLE:
            if (pc->state == PART_ACTIVE)
                pc->state = PART_IDLE;
            break;
        case FS_PART_END:
            pc->state = PART_ENDED;
            checkpoint |= CTL_STEP; /* its lanes catch up at once */
            break;
        case FS_PART_REVOKE:
            *pc = (fs_part_clock){.state = PART_NONE}; /* its clock goes with its state */
            if (out->n_revoked == out->revoked_cap) {
                out->revoked_cap = out->revoked_cap ? 2 * out->revoked_cap : 8;
                out->revoked = fs_xrealloc(out->revoked, out->revoked_cap * sizeof(*out->revoked));
            }
            out->revoked[out->n_revoked++] = ctl[i].part;
            break;
        case FS_PART_CHECKPOINT:
            break;
        }
    }
    update_watermark(r, out, 0);
    return checkpoint;
}

static void add_restore(fs_routed *out, uint32_t w, uint32_t i)
{
    out->restore[w][out->n_restore[w]++] = i;
}

/* State records go to the worker owning their customer; a partition record
 * sets the partition's clock here and goes to every worker (snapshot.h). */
static void restore(fs_router *r, fs_routed *out, const fs_route_head *h)
{
    memset(out->n_restore, 0, r->n_workers * sizeof(*out->n_restore));
    if (h->n_restore == 0)
        return;
    if (h->n_restore > out->restore_cap) {
        out->restore_cap = h->n_restore;
        for (uint32_t w = 0; w < r->n_workers; w++)
            out->restore[w] =
                fs_xrealloc(out->restore[w], out->restore_cap * sizeof(*out->restore[w]));
    }
    for (uint32_t i = 0; i < h->n_restore; i++) {
        const fs_restore_rec *rr = &h->restore[i];
        const char *key = h->buf + rr->off, *id;
        uint32_t id_len;
        switch (fs_state_key_parse(key, rr->key_len, &id, &id_len)) {
        case FS_STATE_KEY_CUSTOMER:
            add_restore(out, fs_journey_table_owner(fs_hash_customer(id, id_len), r->n_workers), i);
            break;
        case FS_STATE_KEY_PART: {
            fs_state_clock c;
            if (fs_state_decode_clock(key + rr->key_len, rr->value_len, &c) == FS_STATE_OK) {
                fs_part_clock *pc = part_clock(r, rr->part);
                pc->seen = c.seen;
                pc->max_ts = c.max_ts;
            }
            for (uint32_t w = 0; w < r->n_workers; w++)
                add_restore(out, w, i);
            break;
        }
        case FS_STATE_KEY_MERGE: /* worker 0 hands it to the sink */
        case FS_STATE_KEY_BAD:
            add_restore(out, 0, i); /* worker 0 reports it */
            break;
        }
    }
    update_watermark(r, out, 0);
}

void fs_router_route(fs_router *r, const fs_route_head *head, const fs_event *ev,
                     const uint8_t *status, const uint16_t *part, uint32_t n, fs_routed *out)
{
    memset(out->n_own, 0, r->n_workers * sizeof(*out->n_own));
    out->n_sync = 0;
    out->n_parts = 0;
    out->n_revoked = 0;
    out->n_valid = 0;
    int ctl = control(r, out, head->ctl, head->n_ctl);
    restore(r, out, head);
    if (ctl & CTL_STEP)
        push_sync(r, out,
                  (fs_sync){.pos = 0,
                            .step = true,
                            .checkpoint = (ctl & CTL_CHECKPOINT) != 0,
                            .checkpoint_id = head->checkpoint_id,
                            .wm_before = r->wm,
                            .wm = r->wm,
                            .max_ts = r->max_ts});
    for (uint32_t i = 0; i < n; i++) {
        uint32_t w = 0;
        const fs_part_clock *pc = part[i] < r->n_parts ? &r->parts[part[i]] : NULL;
        if (status[i] == FS_OK) {
            out->n_valid++;
            if (!pc || pc->state != PART_ACTIVE || !pc->seen || ev[i].ts > pc->max_ts)
                observe_ts(r, out, i, part[i], ev[i].ts);
            pc = &r->parts[part[i]]; /* observe_ts may have moved the array */
            w = fs_journey_table_owner(ev[i].customer_hash, r->n_workers);
        }
        int64_t wm = pc ? part_wm(r, pc) : INT64_MIN;
        out->own[w][out->n_own[w]++] = (fs_route_ent){.wm = wm, .instance_wm = r->wm, .idx = i};
    }
    if (r->flush_rejected && out->n_valid < n) /* a flush: a step at the same watermark */
        push_sync(
            r, out,
            (fs_sync){
                .pos = n, .step = true, .wm_before = r->wm, .wm = r->wm, .max_ts = r->max_ts});
    out->have_wm = r->have_wm;
    out->wm = r->wm;
    out->max_ts = r->max_ts;
}
