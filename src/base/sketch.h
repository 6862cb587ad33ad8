/* sketch.h -- mergeable quantile sketch for time-to-convert (SPEC §4).
 *
 * Values are non-negative integers (milliseconds). Values below
 * FS_SKETCH_EXACT are counted exactly, one counter each; larger values go to
 * logarithmic buckets of relative width alpha (DDSketch-style), so any
 * reported quantile is within 1 % of the true nearest-rank value. Merging
 * adds counters, so the result does not depend on how values were split
 * across sketches or in which order they were added. count/min/max/sum are
 * exact.
 *
 * A sketch of at most FS_SKETCH_FEW values keeps their bucket indices in a
 * short inline list instead of the ~24 KB counter array (most windows and
 * panes hold few completions), which also makes merging it cheap; it
 * answers exactly as the array would.
 */
#ifndef FS_SKETCH_H
#define FS_SKETCH_H

#include <stdbool.h>
#include <stdint.h>

#define FS_SKETCH_EXACT 1024
#define FS_SKETCH_FEW   8

typedef struct fs_sketch {
    uint64_t count;
    int64_t min, max;
    __int128 sum;                /* exact, cannot overflow for int64 inputs in practice */
    uint64_t *buckets;           /* index 0..FS_SKETCH_EXACT-1 exact, then log; NULL while few */
    uint32_t lo, hi;             /* occupied bucket index range [lo, hi) */
    uint32_t few[FS_SKETCH_FEW]; /* without buckets: the count values' bucket indices */
} fs_sketch;

void fs_sketch_init(fs_sketch *s);
void fs_sketch_free(fs_sketch *s);
void fs_sketch_add(fs_sketch *s, int64_t value_ms); /* negative values count as 0 */
void fs_sketch_merge(fs_sketch *into, const fs_sketch *from);
/* into -= from, whose values were merged into it before. count, sum and the
 * counters are exact again; min and max are left as they were (they cannot
 * be undone): the caller knows them and sets them. */
void fs_sketch_subtract(fs_sketch *into, const fs_sketch *from);
/* Moves a few-value sketch to the counter array (tests compare arrays). */
void fs_sketch_densify(fs_sketch *s);
/* Nearest-rank quantile q in (0,1]: value at rank ceil(q*count), within 1 %.
 * Returns false when the sketch is empty. */
bool fs_sketch_quantile(const fs_sketch *s, double q, int64_t *out);
/* The counter array's length: every bucket index is below it. A sketch read
 * back from bytes (state.c) is checked against it before it is used. */
uint32_t fs_sketch_n_buckets(void);

#endif
