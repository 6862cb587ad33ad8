/* window.h -- event-time window arithmetic (SPEC §3).
 *
 * Windows are [start, start + size) with start a multiple of hop (aligned to
 * the epoch, floor division so negative times work too); tumbling windows
 * have hop == size. A time x lies in size/hop windows, the last of which
 * starts at floor(x / hop) * hop. Given a watermark wm, a window is closed
 * when wm >= end, so the earliest open window is the first whose end > wm.
 * Arithmetic is done in 128 bits and clamped, so timestamps anywhere in
 * int64 are safe.
 */
#ifndef FS_WINDOW_H
#define FS_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

typedef struct fs_window_spec {
    int64_t size;
    int64_t hop;
    uint32_t per_time; /* windows containing one instant: size / hop */
} fs_window_spec;

/* size > 0 and hop > 0 dividing it (the config checks both). */
static inline fs_window_spec fs_window_spec_make(int64_t size, int64_t hop)
{
    return (fs_window_spec){size, hop, (uint32_t)(size / hop)};
}

static inline int64_t fs_clamp128(__int128 v)
{
    return v > INT64_MAX ? INT64_MAX : v < INT64_MIN ? INT64_MIN : (int64_t)v;
}

static inline __int128 fs_floor_div128(__int128 a, __int128 b)
{
    __int128 q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Start of the last window containing x. */
static inline int64_t fs_window_last_start(const fs_window_spec *w, int64_t x)
{
    return fs_clamp128(fs_floor_div128(x, w->hop) * w->hop);
}

/* The k-th window holding the instant whose last window starts at `last`
 * (k = 0: that one, then one hop earlier each): false below int64. */
static inline bool fs_window_kth_start(const fs_window_spec *w, int64_t last, uint32_t k,
                                       int64_t *start)
{
    __int128 s = (__int128)last - (__int128)k * w->hop;
    *start = (int64_t)s;
    return s >= INT64_MIN;
}

static inline int64_t fs_window_end(const fs_window_spec *w, int64_t start)
{
    return fs_clamp128((__int128)start + w->size);
}

/* Start of the earliest window with end > wm. */
static inline int64_t fs_window_earliest_open(const fs_window_spec *w, int64_t wm)
{
    return fs_clamp128((fs_floor_div128((__int128)wm - w->size, w->hop) + 1) * w->hop);
}

static inline bool fs_window_is_closed(const fs_window_spec *w, int64_t start, int64_t wm)
{
    return fs_window_end(w, start) <= wm;
}

#endif
