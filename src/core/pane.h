/* pane.h -- one worker's open windows, counted once per count in hop-sized panes.
 *
 * A hopping window [s, s + size) is the union of size/hop panes
 * [p, p + hop), p = s, s + hop, ..., s + size - hop; a tumbling window is
 * its own single pane. A count at time t goes to one pane, that of t,
 * however many windows hold t, and a window's flow is the sum of its panes
 * when it closes. So per-event work does not grow with size/hop; the sums
 * (size/hop pane merges per window and funnel) happen once per window.
 *
 * Lateness is unchanged by panes: a count goes to the open windows holding
 * t and to no closed one. The pane of t is part of exactly those windows
 * that will still be summed (the closed ones were summed before the count),
 * so adding the count to the pane while its latest window is open is the
 * same as adding it to each open window holding t.
 *
 * Hopping windows close one after the other, a hop apart, and consecutive
 * ones share all panes but two: so the earliest open window's sum is kept
 * running (`run`: a count in one of its panes goes to the pane and to the
 * run), and the next window's sum is the run minus the pane that leaves
 * plus the pane that enters. Every counter is exact, so subtracting is
 * exact; only the time sketch's min and max are taken from the panes.
 * Closing a window costs a few merges whatever size/hop is. After a jump of
 * the watermark (a gap in the data) the run is rebuilt from the panes.
 *
 * Counts that belong to a window, not to an instant (rejections, late
 * events: SPEC §4, "in the earliest window still open"), are kept per
 * window start in `extras` and join the window when it closes.
 *
 * Invariants: every pane start and extras start is a multiple of hop; a
 * pane exists only while its latest window (the one starting at the pane)
 * is open; windows close in ascending order, each once.
 */
#ifndef FS_PANE_H
#define FS_PANE_H

#include <stdbool.h>
#include <stdint.h>

#include "aggregate.h"
#include "i64map.h"
#include "window.h"

/* One window (or pane) of one worker: a flow per funnel (NULL until
 * counted) and the partition-wide rejected count. */
typedef struct fs_window_slot {
    int64_t start;
    uint64_t rejected;
    fs_flow *flow[]; /* n_funnels */
} fs_window_slot;

void fs_window_slot_free(fs_window_slot *slot, uint32_t n_funnels);
/* A slot with no counts. */
fs_window_slot *fs_window_slot_new(int64_t start, uint32_t n_funnels);
/* into += from, from's label ids translated through xlate (NULL: the same
 * ids); from is left as it is. */
void fs_window_slot_add(fs_window_slot *into, const fs_window_slot *from, uint32_t n_funnels,
                        const uint32_t *n_stages, const uint32_t *xlate);
/* into += from, the same window of the same worker (so the same label ids);
 * from is consumed. */
void fs_window_slot_absorb(fs_window_slot *into, fs_window_slot *from, uint32_t n_funnels);

typedef struct fs_panes {
    fs_window_spec win;
    uint32_t n_funnels;
    const uint32_t *n_stages; /* per funnel */
    fs_i64map panes;          /* pane start -> fs_window_slot */
    fs_i64map extras;         /* window start -> fs_window_slot (late_events, rejected) */
    fs_window_slot *last;     /* the pane used last, a one-entry cache */
    int64_t closed_upto;      /* windows ending at or before it have been handed out */
    bool have_run;            /* hopping windows, once a watermark exists: */
    int64_t run_start;        /* the earliest open window, */
    fs_window_slot *run;      /* the sum of its panes so far, */
    uint64_t *run_panes;      /* and per funnel how many of its panes have a flow */
} fs_panes;

void fs_panes_init(fs_panes *p, const fs_window_spec *win, uint32_t n_funnels,
                   const uint32_t *n_stages);
void fs_panes_free(fs_panes *p);

/* The flows of `funnel` to count an instant ts in, with watermark wm, into
 * out[0..2): the pane of ts and, when that pane belongs to the running sum,
 * the run; none when every window holding ts is closed. *late is set when
 * some window holding ts is closed. Returns how many. */
uint32_t fs_panes_flows(fs_panes *p, uint32_t funnel, int64_t ts, int64_t wm, bool *late,
                        fs_flow *out[2]);
/* late_events of `funnel` and rejections, in the earliest window open at wm. */
void fs_panes_add_late(fs_panes *p, uint32_t funnel, int64_t wm);
void fs_panes_add_rejected(fs_panes *p, int64_t wm, uint64_t n);

/* Restoring (snapshot.h): windows ending at or before closed_upto are
 * closed; a pane (or, extra, a window's extras) taken over. */
void fs_panes_set_closed(fs_panes *p, int64_t closed_upto);
void fs_panes_adopt(fs_panes *p, bool extra, fs_window_slot *slot);

/* Hands out the windows closed at wm (all: every window that counted
 * anything), ascending by start, as slots the caller frees; *n gets how
 * many. Panes no window needs any more are freed. */
fs_window_slot **fs_panes_close(fs_panes *p, int64_t wm, bool all, uint32_t *n);

/* The watermark lateness is judged at: wm, or the one the windows were
 * last closed at when that is later (windows emitted while the partition
 * was idle). */
static inline int64_t fs_panes_wm(const fs_panes *p, int64_t wm)
{
    return wm > p->closed_upto ? wm : p->closed_upto;
}

/* Panes held (open windows, for tumbling windows). */
static inline uint64_t fs_panes_count(const fs_panes *p)
{
    return p->panes.count;
}

#endif
