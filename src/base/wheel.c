/* wheel.c -- hierarchical timing wheel (see wheel.h).
 *
 * Times become unsigned keys (the sign bit flipped, so INT64_MIN..INT64_MAX
 * keep their order as 0..UINT64_MAX). The wheel has a cursor `now` and
 * FS_WHEEL_LEVELS levels of 64 slots; level l looks at key bits
 * [6l, 6l + 6). A timer with key k >= now lives at the level of the highest
 * 6-bit group in which k and now differ (level 0 when k == now), in the slot
 * given by k's bits of that group. So:
 *
 *   - a level-0 slot holds timers of exactly one key;
 *   - a level-l slot s holds keys that share now's bits above the group and
 *     have s > now's group bits: all of them are > now, and a lower level
 *     or a lower slot of the same level always holds earlier keys;
 *   - timers with k < now (added late, after the cursor passed their time)
 *     go to the due slot, which the next pop empties first.
 *
 * `low` is a lower bound of every slotted timer's key (the first slot's
 * start when the last pop found nothing due, lowered by adds), so a pop
 * with nothing due, the common case, is one comparison.
 *
 * Popping moves the cursor only forward, and only to the start of the
 * first non-empty slot (found with the `occupied` bitmaps, so empty stretches
 * of time cost nothing): a level-0 slot's timers all become due; a higher
 * slot is "cascaded", its timers re-added relative to the new cursor, which
 * puts each on a lower level. A timer is cascaded at most once per level,
 * so add, cancel and pop are O(1) amortised. The cursor never passes
 * `through`, so it never passes a time at which a timer may still be added
 * that the caller expects at a later pop.
 *
 * Slots are arrays of node ids, not lists through the nodes: walking a
 * list is one dependent cache miss per node, while an array lets a cascade
 * prefetch the nodes ahead of the one it moves (ops.prefetch). Invariants:
 * for every node in slot h at position i, link(node) = {h, i}; a slot's
 * occupied bit is set exactly while it is non-empty; `count` is the sum of
 * the slots' lengths.
 */
#include "wheel.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define DUE       (FS_WHEEL_HEADS - 1) /* the due slot's index */
#define SLOT_MASK (FS_WHEEL_SLOTS - 1u)
#define AHEAD     8    /* nodes prefetched ahead of a cascade */
#define KEEP      1024 /* largest array an emptied slot keeps */

static uint64_t key_of(int64_t t)
{
    return (uint64_t)t ^ (UINT64_C(1) << 63);
}

static fs_wheel_link *link_of(fs_wheel *w, uint32_t node)
{
    return w->ops.link(w->ops.ctx, node);
}

void fs_wheel_init(fs_wheel *w, fs_wheel_ops ops)
{
    memset(w, 0, sizeof(*w));
    w->ops = ops;
}

void fs_wheel_destroy(fs_wheel *w)
{
    for (uint32_t h = 0; h < FS_WHEEL_HEADS; h++)
        free(w->slot[h].node);
    memset(w->slot, 0, sizeof(w->slot));
    w->count = 0;
}

static void set_occupied(fs_wheel *w, uint32_t h, bool on)
{
    if (h == DUE)
        return;
    uint64_t bit = UINT64_C(1) << (h % FS_WHEEL_SLOTS);
    if (on)
        w->occupied[h / FS_WHEEL_SLOTS] |= bit;
    else
        w->occupied[h / FS_WHEEL_SLOTS] &= ~bit;
}

/* Appends node to slot h. */
static void push(fs_wheel *w, uint32_t h, uint32_t node, fs_wheel_link *l)
{
    fs_wheel_slot *s = &w->slot[h];
    if (s->n == s->cap) { /* arrays only grow: the steady state allocates nothing */
        s->cap = s->cap ? s->cap * 2 : 16;
        s->node = fs_xrealloc(s->node, s->cap * sizeof(*s->node));
    }
    *l = (fs_wheel_link){h, s->n};
    s->node[s->n++] = node;
    if (s->n == 1)
        set_occupied(w, h, true);
}

/* Where key k belongs relative to the cursor: a slot index. */
static uint32_t head_for(const fs_wheel *w, uint64_t k)
{
    if (k < w->now)
        return DUE;
    uint64_t diff = k ^ w->now;
    uint32_t level = diff ? (uint32_t)(63 - __builtin_clzll(diff)) / FS_WHEEL_BITS : 0;
    uint32_t slot = (uint32_t)(k >> (level * FS_WHEEL_BITS)) & SLOT_MASK;
    return level * FS_WHEEL_SLOTS + slot;
}

void fs_wheel_add(fs_wheel *w, uint32_t node, int64_t expiry)
{
    fs_wheel_link *l = link_of(w, node);
    assert(!fs_wheel_linked(l));
    uint64_t k = key_of(expiry);
    uint32_t h = head_for(w, k);
    push(w, h, node, l);
    if (h != DUE && k < w->low)
        w->low = k;
    w->count++;
}

void fs_wheel_cancel(fs_wheel *w, uint32_t node)
{
    fs_wheel_link *l = link_of(w, node);
    assert(fs_wheel_linked(l) && l->slot < FS_WHEEL_HEADS);
    fs_wheel_slot *s = &w->slot[l->slot];
    assert(l->pos < s->n && s->node[l->pos] == node);
    uint32_t last = s->node[--s->n];
    if (last != node) { /* the last node fills the hole */
        s->node[l->pos] = last;
        link_of(w, last)->pos = l->pos;
    }
    if (s->n == 0)
        set_occupied(w, l->slot, false);
    *l = (fs_wheel_link){FS_WHEEL_NONE, FS_WHEEL_NONE};
    assert(w->count > 0);
    w->count--;
}

/* Moves every node of slot h (level 0 to the due slot, higher levels to
 * where they belong relative to the moved cursor), prefetching ahead. */
static void move_slot(fs_wheel *w, uint32_t h, bool cascade)
{
    fs_wheel_slot from = w->slot[h];
    w->slot[h].node = NULL;
    w->slot[h].n = w->slot[h].cap = 0;
    set_occupied(w, h, false);
    for (uint32_t i = 0; i < from.n && i < AHEAD; i++)
        w->ops.prefetch(w->ops.ctx, from.node[i]);
    for (uint32_t i = 0; i < from.n; i++) {
        if (i + AHEAD < from.n)
            w->ops.prefetch(w->ops.ctx, from.node[i + AHEAD]);
        uint32_t n = from.node[i];
        fs_wheel_link *l = link_of(w, n);
        assert(l->slot == h && l->pos == i);
        uint32_t to = cascade ? head_for(w, key_of(w->ops.expiry(w->ops.ctx, n))) : DUE;
        assert(to < h || to == DUE); /* always to a lower level */
        push(w, to, n, l);
    }
    /* keep a small array (emptied) for the slot's next timers; a large one
     * goes back to the allocator, or every slot that was ever big would keep
     * its peak (tens of MB over a wheel's life) */
    if (w->slot[h].cap == 0 && from.cap <= KEEP) {
        w->slot[h].node = from.node;
        w->slot[h].cap = from.cap;
    } else {
        free(from.node);
    }
}

/* The first key of the first non-empty slot, and that slot; false when
 * the wheel's slots are all empty. */
static bool next_slot(const fs_wheel *w, uint64_t *start, uint32_t *h)
{
    for (uint32_t l = 0; l < FS_WHEEL_LEVELS; l++) {
        uint32_t shift = l * FS_WHEEL_BITS;
        uint32_t cur = (uint32_t)(w->now >> shift) & SLOT_MASK;
        /* level 0 may hold key == now; higher levels only slots above now's */
        uint64_t from = l == 0 ? cur : cur + 1;
        uint64_t bits = from >= 64 ? 0 : w->occupied[l] & (~UINT64_C(0) << from);
        if (!bits)
            continue;
        uint32_t s = (uint32_t)__builtin_ctzll(bits);
        uint32_t above = shift + FS_WHEEL_BITS;
        uint64_t prefix = above >= 64 ? 0 : (w->now >> above) << above;
        *start = prefix | ((uint64_t)s << shift);
        *h = l * FS_WHEEL_SLOTS + s;
        return true;
    }
    return false;
}

uint32_t fs_wheel_pop(fs_wheel *w, int64_t through)
{
    uint64_t limit = key_of(through);
    fs_wheel_slot *due = &w->slot[DUE];
    if (limit < w->low && due->n == 0)
        return FS_WHEEL_NONE; /* the common case: nothing due, no slot to look at */
    for (;;) {
        if (due->n) { /* from the end: no hole to fill */
            uint32_t n = due->node[--due->n];
            fs_wheel_link *l = link_of(w, n);
            assert(l->slot == DUE && l->pos == due->n);
            *l = (fs_wheel_link){FS_WHEEL_NONE, FS_WHEEL_NONE};
            w->count--;
            return n;
        }
        uint64_t start;
        uint32_t h;
        if (!next_slot(w, &start, &h)) {
            w->low = UINT64_MAX;
            return FS_WHEEL_NONE;
        }
        if (start > limit) {
            w->low = start; /* a slot's timers are >= its start, later slots' more so */
            return FS_WHEEL_NONE;
        }
        assert(start >= w->now);
        w->now = start;
        /* level 0: every timer of the slot has key `start`, so all are due */
        move_slot(w, h, h >= FS_WHEEL_SLOTS);
    }
}
