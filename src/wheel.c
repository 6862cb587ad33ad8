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
 *     go to the due list, which the next pop empties first.
 *
 * `low` is a lower bound of every slotted timer's key (the first slot's
 * start when the last pop found nothing due, lowered by adds), so a pop
 * with nothing due, the common case, is one comparison.
 *
 * Popping moves the cursor only forward, and only to the start of the
 * first non-empty slot (found with the `occupied` bitmaps, so empty stretches
 * of time cost nothing): a level-0 slot's timers all go to the due list; a
 * higher slot is "cascaded", its timers re-added relative to the new
 * cursor, which puts each on a lower level. A timer is cascaded at most once
 * per level, so add, cancel and pop are O(1) amortised. The cursor never
 * passes `through`, so it never passes a time at which a timer may still be
 * added that the caller expects at a later pop.
 *
 * Lists are circular and doubly linked through the caller's links; the heads
 * have node ids at HEAD_BASE and up, so unlinking never needs to know which
 * list a node is in. A slot's occupied bit is set exactly while its list is
 * non-empty.
 */
#include "wheel.h"

#include <assert.h>

#define HEAD_BASE (UINT32_MAX - FS_WHEEL_HEADS) /* node ids from here on are heads */
#define DUE       (FS_WHEEL_HEADS - 1)          /* the due list's head index */
#define SLOT_MASK (FS_WHEEL_SLOTS - 1u)

static uint64_t key_of(int64_t t)
{
    return (uint64_t)t ^ (UINT64_C(1) << 63);
}

static fs_wheel_link *link_of(fs_wheel *w, uint32_t node)
{
    if (node >= HEAD_BASE) {
        assert(node - HEAD_BASE < FS_WHEEL_HEADS);
        return &w->head[node - HEAD_BASE];
    }
    return w->ops.link(w->ops.ctx, node);
}

static uint32_t head_id(uint32_t h)
{
    return HEAD_BASE + h;
}

void fs_wheel_init(fs_wheel *w, fs_wheel_ops ops)
{
    w->ops = ops;
    w->now = 0;
    w->low = 0;
    w->count = 0;
    for (uint32_t l = 0; l < FS_WHEEL_LEVELS; l++)
        w->occupied[l] = 0;
    for (uint32_t h = 0; h < FS_WHEEL_HEADS; h++)
        w->head[h] = (fs_wheel_link){head_id(h), head_id(h)};
}

/* Appends node to the list of head index h. */
static void push(fs_wheel *w, uint32_t h, uint32_t node, fs_wheel_link *l)
{
    fs_wheel_link *head = &w->head[h];
    uint32_t last = head->prev;
    l->next = head_id(h);
    l->prev = last;
    link_of(w, last)->next = node;
    head->prev = node;
    if (h != DUE)
        w->occupied[h / FS_WHEEL_SLOTS] |= UINT64_C(1) << (h % FS_WHEEL_SLOTS);
}

/* Where key k belongs relative to the cursor: a head index. */
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
    assert(node < HEAD_BASE);
    fs_wheel_link *l = link_of(w, node);
    assert(!fs_wheel_linked(l));
    uint64_t k = key_of(expiry);
    uint32_t h = head_for(w, k);
    push(w, h, node, l);
    if (h != DUE && k < w->low)
        w->low = k;
    w->count++;
}

/* Unlinks node; if that emptied a slot list, clears its occupied bit. */
static void unlink_node(fs_wheel *w, uint32_t node, fs_wheel_link *l)
{
    fs_wheel_link *prev = link_of(w, l->prev), *next = link_of(w, l->next);
    assert(prev->next == node && next->prev == node);
    (void)node;
    prev->next = l->next;
    next->prev = l->prev;
    if (l->prev == l->next && l->prev >= HEAD_BASE && l->prev != head_id(DUE)) {
        uint32_t h = l->prev - HEAD_BASE;
        w->occupied[h / FS_WHEEL_SLOTS] &= ~(UINT64_C(1) << (h % FS_WHEEL_SLOTS));
    }
    l->next = l->prev = FS_WHEEL_NONE;
}

void fs_wheel_cancel(fs_wheel *w, uint32_t node)
{
    fs_wheel_link *l = link_of(w, node);
    assert(fs_wheel_linked(l));
    unlink_node(w, node, l);
    assert(w->count > 0);
    w->count--;
}

/* Detaches the whole list of head h (its nodes keep their links to each
 * other and to nothing else); returns its first node or FS_WHEEL_NONE. */
static uint32_t take_list(fs_wheel *w, uint32_t h)
{
    fs_wheel_link *head = &w->head[h];
    uint32_t first = head->next;
    if (first == head_id(h))
        return FS_WHEEL_NONE;
    link_of(w, head->prev)->next = FS_WHEEL_NONE; /* the detached chain ends here */
    *head = (fs_wheel_link){head_id(h), head_id(h)};
    w->occupied[h / FS_WHEEL_SLOTS] &= ~(UINT64_C(1) << (h % FS_WHEEL_SLOTS));
    return first;
}

/* Re-adds every node of slot h relative to the (moved) cursor. */
static void cascade(fs_wheel *w, uint32_t h)
{
    for (uint32_t n = take_list(w, h); n != FS_WHEEL_NONE;) {
        fs_wheel_link *l = link_of(w, n);
        uint32_t next = l->next;
        uint32_t to = head_for(w, key_of(w->ops.expiry(w->ops.ctx, n)));
        assert(to < h || to == DUE); /* always to a lower level */
        push(w, to, n, l);
        n = next;
    }
}

/* Moves the whole list of level-0 slot h to the (empty) due list. */
static void make_due(fs_wheel *w, uint32_t h)
{
    fs_wheel_link *head = &w->head[h], *due = &w->head[DUE];
    assert(due->next == head_id(DUE) && head->next != head_id(h));
    link_of(w, head->next)->prev = head_id(DUE);
    link_of(w, head->prev)->next = head_id(DUE);
    *due = *head;
    *head = (fs_wheel_link){head_id(h), head_id(h)};
    w->occupied[0] &= ~(UINT64_C(1) << h);
}

/* The first key of the first non-empty slot, and that slot's head; false
 * when the wheel's slots are all empty. */
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
    if (limit < w->low && w->head[DUE].next == head_id(DUE))
        return FS_WHEEL_NONE; /* the common case: nothing due, no slot to look at */
    for (;;) {
        uint32_t n = w->head[DUE].next;
        if (n != head_id(DUE)) {
            unlink_node(w, n, link_of(w, n));
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
        if (h < FS_WHEEL_SLOTS)
            make_due(w, h); /* level 0: every timer of the slot has key `start` */
        else
            cascade(w, h);
    }
}
