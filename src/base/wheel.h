/* wheel.h -- event-time timers without a heap: a hierarchical timing wheel.
 *
 * Holds timers identified by a caller's 32-bit node id (a journey: record
 * index and funnel). Each slot is an array of node ids; a node's slot and
 * position live in the caller's memory (fs_wheel_link, found through
 * ops.link), so add and cancel are O(1) (cancel moves the slot's last node
 * into the hole), and the arrays only grow, so the steady state allocates
 * nothing. A timer's time is not stored either: the wheel asks ops.expiry
 * when it needs it again.
 *
 * fs_wheel_pop(w, through) hands out, one at a time, every timer whose time
 * is <= `through` (SPEC §3: a timer fires when the watermark > its time, so
 * the caller passes watermark - 1), in no particular order. A timer added
 * with a time the wheel has already passed is handed out by the next pop.
 * wheel.c explains the levels and their invariants.
 */
#ifndef FS_WHEEL_H
#define FS_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FS_WHEEL_NONE UINT32_MAX /* no node: an unlinked link, an empty pop */

/* Where a timer is, kept in the caller's memory: its slot (FS_WHEEL_NONE
 * while the node is in the wheel nowhere) and its position in the slot. */
typedef struct fs_wheel_link {
    uint32_t slot, pos;
} fs_wheel_link;

typedef struct fs_wheel_ops {
    fs_wheel_link *(*link)(void *ctx, uint32_t node);
    int64_t (*expiry)(void *ctx, uint32_t node);
    void (*prefetch)(void *ctx, uint32_t node); /* a hint: node's link and expiry soon */
    void *ctx;
} fs_wheel_ops;

typedef struct fs_wheel_slot {
    uint32_t *node;
    uint32_t n, cap;
} fs_wheel_slot;

#define FS_WHEEL_BITS   6 /* slots per level: 64 */
#define FS_WHEEL_SLOTS  (1u << FS_WHEEL_BITS)
#define FS_WHEEL_LEVELS 11 /* 11 * 6 >= 64 bits of time */
#define FS_WHEEL_HEADS  (FS_WHEEL_LEVELS * FS_WHEEL_SLOTS + 1)

typedef struct fs_wheel {
    fs_wheel_ops ops;
    uint64_t now;                       /* every timer in a slot has key >= now */
    uint64_t low;                       /* every timer in a slot has key >= low */
    uint64_t occupied[FS_WHEEL_LEVELS]; /* bit s of level l: its slot s is non-empty */
    fs_wheel_slot slot[FS_WHEEL_HEADS]; /* level slots, then the due list */
    size_t count;
} fs_wheel;

void fs_wheel_init(fs_wheel *w, fs_wheel_ops ops);
void fs_wheel_destroy(fs_wheel *w);
/* Adds `node` (not in the wheel) with time `expiry`. */
void fs_wheel_add(fs_wheel *w, uint32_t node, int64_t expiry);
/* Removes `node` (in the wheel). */
void fs_wheel_cancel(fs_wheel *w, uint32_t node);
/* Removes and returns a node whose time is <= through, or FS_WHEEL_NONE. */
uint32_t fs_wheel_pop(fs_wheel *w, int64_t through);
static inline size_t fs_wheel_count(const fs_wheel *w)
{
    return w->count;
}
static inline bool fs_wheel_linked(const fs_wheel_link *l)
{
    return l->slot != FS_WHEEL_NONE;
}

#endif
