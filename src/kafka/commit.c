/* commit.c -- the offsets that are safe to commit (see commit.h).
 *
 * Three FIFOs, all short in practice: batch snapshots accumulate only
 * between two steps, steps only while their records are in flight, and
 * candidates only until the windows they wait for close.
 */
#include "commit.h"

#include <stdlib.h>
#include <string.h>

#include "fifo.h"
#include "util.h"

/* ---- acknowledgements --------------------------------------------------- */

void fs_acks_init(fs_acks *a)
{
    a->done = 0;
    a->cap = 64;
    a->ring = fs_xcalloc(a->cap, 1);
}

void fs_acks_free(fs_acks *a)
{
    free(a->ring);
    a->ring = NULL;
}

static void acks_grow(fs_acks *a, uint64_t need)
{
    uint64_t cap = a->cap;
    while (cap < need)
        cap *= 2;
    uint8_t *ring = fs_xcalloc(cap, 1);
    for (uint64_t n = a->done; n < a->done + a->cap; n++)
        ring[n % cap] = a->ring[n % a->cap];
    free(a->ring);
    a->ring = ring;
    a->cap = cap;
}

void fs_acks_mark(fs_acks *a, uint64_t n)
{
    if (n < a->done)
        return;
    if (n - a->done >= a->cap)
        acks_grow(a, n - a->done + 1);
    a->ring[n % a->cap] = 1;
    while (a->ring[a->done % a->cap]) {
        a->ring[a->done % a->cap] = 0;
        a->done++;
    }
}

/* ---- the plan ----------------------------------------------------------- */

typedef struct offsets {
    uint64_t seq;        /* snapshots: the batch */
    int64_t need;        /* candidates: the acknowledged watermark they wait for */
    uint64_t checkpoint; /* candidates from a checkpoint: its number */
    int64_t *next;       /* next offset per partition, -1 unknown */
    uint32_t n;
} offsets;

struct fs_commit_plan {
    fs_window_spec win;
    fs_fifo snapshots, candidates; /* of offsets */
    fs_fifo steps;                 /* of fs_commit_step */
    fs_acks records, dead_letters;
    int64_t acked_wm;
    int64_t *safe;
    uint32_t n_safe;
    bool checkpoints; /* offsets come from acknowledged checkpoints only */
    bool any_checkpoint;
    uint64_t safe_checkpoint; /* the number of the checkpoint the safe offsets are from */
    uint64_t last_checkpoint; /* the batch the last acknowledged checkpoint heads */
};

static void push_offsets(fs_fifo *f, offsets o)
{
    *(offsets *)fs_fifo_push(f) = o;
}

static void pop_offsets(fs_fifo *f)
{
    free(((offsets *)fs_fifo_front(f))->next);
    fs_fifo_pop(f);
}

static void free_offsets(fs_fifo *f)
{
    while (f->len)
        pop_offsets(f);
    fs_fifo_free(f);
}

static offsets offsets_copy(const int64_t *next, uint32_t n)
{
    offsets o = {.n = n, .next = fs_xmalloc((n ? n : 1) * sizeof(int64_t))};
    if (n)
        memcpy(o.next, next, n * sizeof(int64_t));
    return o;
}

fs_commit_plan *fs_commit_plan_new(const fs_window_spec *win)
{
    fs_commit_plan *p = fs_xcalloc(1, sizeof(*p));
    p->win = *win;
    p->acked_wm = INT64_MIN;
    fs_fifo_init(&p->snapshots, sizeof(offsets));
    fs_fifo_init(&p->candidates, sizeof(offsets));
    fs_fifo_init(&p->steps, sizeof(fs_commit_step));
    fs_acks_init(&p->records);
    fs_acks_init(&p->dead_letters);
    return p;
}

void fs_commit_plan_free(fs_commit_plan *p)
{
    if (!p)
        return;
    free_offsets(&p->snapshots);
    free_offsets(&p->candidates);
    fs_acks_free(&p->records);
    fs_acks_free(&p->dead_letters);
    fs_fifo_free(&p->steps);
    free(p->safe);
    free(p);
}

void fs_commit_batch(fs_commit_plan *p, uint64_t seq, const int64_t *next, uint32_t n)
{
    offsets o = offsets_copy(next, n);
    o.seq = seq;
    push_offsets(&p->snapshots, o);
}

void fs_commit_step_done(fs_commit_plan *p, const fs_commit_step *step)
{
    *(fs_commit_step *)fs_fifo_push(&p->steps) = *step;
}

void fs_commit_record_acked(fs_commit_plan *p, uint64_t record)
{
    fs_acks_mark(&p->records, record);
}

void fs_commit_dead_letter_acked(fs_commit_plan *p, uint64_t dead_letter)
{
    fs_acks_mark(&p->dead_letters, dead_letter);
}

void fs_commit_forget(fs_commit_plan *p, uint32_t part)
{
    fs_fifo *fifos[2] = {&p->snapshots, &p->candidates};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < fifos[k]->len; i++) {
            offsets *o = fs_fifo_at(fifos[k], i);
            if (part < o->n)
                o->next[part] = -1;
        }
    if (part < p->n_safe)
        p->safe[part] = -1;
}

/* The snapshot after batch k (the latest one at or before it); older
 * snapshots are dropped, since later steps only ask about later batches. */
static const offsets *snapshot_after(fs_commit_plan *p, uint64_t k)
{
    while (p->snapshots.len > 1 && ((offsets *)fs_fifo_at(&p->snapshots, 1))->seq <= k)
        pop_offsets(&p->snapshots);
    const offsets *o = fs_fifo_front(&p->snapshots);
    return o && o->seq <= k ? o : NULL;
}

/* A step whose records (and the dead letters before it) are all
 * acknowledged: the watermark is acknowledged up to it, and the offsets
 * before its batch become a candidate. */
void fs_commit_plan_use_checkpoints(fs_commit_plan *p)
{
    p->checkpoints = true;
}

bool fs_commit_checkpoint_acked(fs_commit_plan *p, uint64_t seq)
{
    uint32_t n;
    (void)fs_commit_safe(p, &n); /* takes in what became acknowledged */
    return p->any_checkpoint && p->last_checkpoint >= seq;
}

/* With a state topic, a checkpoint heading batch k holds the state of
 * everything before k: once it and every record before it are
 * acknowledged, the offsets after batch k - 1 are safe, and no later ones
 * (a restart restores that state and must read on from there). */
static void checkpoint_acked(fs_commit_plan *p, const fs_commit_step *st)
{
    if (!st->checkpoint)
        return;
    p->any_checkpoint = true;
    p->last_checkpoint = st->src_seq;
    if (st->src_seq == 0)
        return;
    const offsets *snap = snapshot_after(p, st->src_seq - 1);
    if (!snap)
        return;
    offsets c = offsets_copy(snap->next, snap->n);
    c.need = INT64_MIN;
    c.checkpoint = st->checkpoint_id;
    push_offsets(&p->candidates, c);
}

static void step_acked(fs_commit_plan *p, const fs_commit_step *st)
{
    if (st->wm > p->acked_wm)
        p->acked_wm = st->wm;
    if (p->checkpoints) {
        checkpoint_acked(p, st);
        return;
    }
    if (!st->final && st->src_seq == 0)
        return; /* cut during the first batch: nothing before it */
    const offsets *snap = snapshot_after(p, st->final ? st->src_seq : st->src_seq - 1);
    if (!snap)
        return;
    offsets c = offsets_copy(snap->next, snap->n);
    c.need =
        st->final ? INT64_MIN : fs_window_end(&p->win, fs_window_last_start(&p->win, st->max_ts));
    push_offsets(&p->candidates, c);
}

uint64_t fs_commit_safe_checkpoint(const fs_commit_plan *p)
{
    return p->safe_checkpoint;
}

static void take_candidate(fs_commit_plan *p, const offsets *c)
{
    if (c->checkpoint > p->safe_checkpoint)
        p->safe_checkpoint = c->checkpoint;
    if (c->n > p->n_safe) {
        p->safe = fs_xrealloc(p->safe, c->n * sizeof(*p->safe));
        for (uint32_t i = p->n_safe; i < c->n; i++)
            p->safe[i] = -1;
        p->n_safe = c->n;
    }
    for (uint32_t i = 0; i < c->n; i++)
        if (c->next[i] > p->safe[i])
            p->safe[i] = c->next[i];
}

const int64_t *fs_commit_safe(fs_commit_plan *p, uint32_t *n)
{
    const fs_commit_step *st;
    while ((st = fs_fifo_front(&p->steps))) {
        if (p->records.done < st->records_end || p->dead_letters.done < st->dead_letters_end)
            break;
        step_acked(p, st);
        fs_fifo_pop(&p->steps);
    }
    const offsets *c;
    while ((c = fs_fifo_front(&p->candidates)) && c->need <= p->acked_wm) {
        take_candidate(p, c);
        pop_offsets(&p->candidates);
    }
    *n = p->n_safe;
    return p->safe;
}

int64_t fs_commit_acked_wm(const fs_commit_plan *p)
{
    return p->acked_wm;
}

uint64_t fs_commit_records_acked(const fs_commit_plan *p)
{
    return p->records.done;
}
