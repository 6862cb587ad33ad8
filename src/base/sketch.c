/* sketch.c -- mergeable quantile sketch (DDSketch-style) for time-to-convert.
 *
 * Layout. One array of uint64_t counters, allocated on the first add/merge:
 *   index v                      for 0 <= v < FS_SKETCH_EXACT (exact counters)
 *   index FS_SKETCH_EXACT + k    for log bucket k, which holds the integers v with
 *                                bound[k-1] < v <= bound[k], bound[k] = floor(gamma^(i0+k)).
 * gamma = (1+alpha)/(1-alpha) with alpha = 0.009, and i0 is the smallest exponent with
 * gamma^i0 >= FS_SKETCH_EXACT. The last bound is INT64_MAX, so the array covers every
 * non-negative int64 and all sketches share the same bucket layout, which makes merge a
 * plain element-wise addition (order-independent, bit-for-bit reproducible).
 *
 * Accuracy. A log bucket (gamma^(i-1), gamma^i] is represented by 2*gamma^i/(gamma+1),
 * which is within alpha (0.9 %) of every value in it; rounding to an integer adds at
 * most 0.5/1024 (< 0.05 %) and clamping to [min, max] can only move the answer towards
 * the true value, so a reported quantile is within 1 % of the exact nearest-rank value
 * (ranks 1 and count are answered exactly with min and max).
 * This holds only if every value lands in the bucket whose bounds really contain it:
 * the index guessed from log(v)/log(gamma) can be off by one near a boundary because of
 * floating-point error, so add() checks it against the integer bound table and moves it.
 *
 * Invariants: count == sum of all counters; counters outside [lo, hi) are zero; when
 * count == 0 the array may be NULL and lo == hi == 0. Without the array (buckets ==
 * NULL), count <= FS_SKETCH_FEW and few[0..count) are the values' bucket indices,
 * all within [lo, hi): the counters the array would hold.
 */
#include "sketch.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define SKETCH_ALPHA   0.009
#define SKETCH_MAX_LOG 4096 /* upper limit for the table; about 2050 are used */

static struct {
    double gamma;
    double inv_log_gamma;
    int i0;                        /* exponent of log bucket 0 */
    uint32_t nlog;                 /* number of log buckets */
    int64_t bound[SKETCH_MAX_LOG]; /* inclusive upper bound of each log bucket */
    int64_t rep[SKETCH_MAX_LOG];   /* representative value of each log bucket */
} table;

static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static int64_t floor_to_int64(double x)
{
    /* 2^63 is the first double above INT64_MAX */
    if (x >= 9223372036854775808.0)
        return INT64_MAX;
    return (int64_t)floor(x);
}

static void table_init(void)
{
    table.gamma = (1.0 + SKETCH_ALPHA) / (1.0 - SKETCH_ALPHA);
    table.inv_log_gamma = 1.0 / log(table.gamma);
    int i = (int)floor(log((double)FS_SKETCH_EXACT) * table.inv_log_gamma) - 1;
    while (pow(table.gamma, i) < FS_SKETCH_EXACT)
        i++;
    table.i0 = i;
    uint32_t k = 0;
    for (;; k++, i++) {
        if (k >= SKETCH_MAX_LOG)
            abort(); /* cannot happen for alpha = 0.009 */
        double g = pow(table.gamma, i);
        table.bound[k] = floor_to_int64(g);
        table.rep[k] = floor_to_int64(2.0 * g / (table.gamma + 1.0) + 0.5);
        if (table.bound[k] == INT64_MAX)
            break;
    }
    table.nlog = k + 1;
}

static uint32_t total_buckets(void)
{
    return FS_SKETCH_EXACT + table.nlog;
}

uint32_t fs_sketch_n_buckets(void)
{
    pthread_once(&table_once, table_init);
    return total_buckets();
}

/* Index of the log bucket holding v (v >= FS_SKETCH_EXACT). */
static uint32_t log_index(int64_t v)
{
    double guess = ceil(log((double)v) * table.inv_log_gamma) - table.i0;
    int64_t k = guess < 0 ? 0 : (guess >= table.nlog ? table.nlog - 1 : (int64_t)guess);
    while (k > 0 && v <= table.bound[k - 1])
        k--;
    while (v > table.bound[k])
        k++;
    return (uint32_t)k;
}

static uint32_t bucket_of(int64_t v)
{
    if (v < FS_SKETCH_EXACT)
        return (uint32_t)v;
    return FS_SKETCH_EXACT + log_index(v);
}

static int64_t bucket_value(uint32_t idx)
{
    if (idx < FS_SKETCH_EXACT)
        return idx;
    return table.rep[idx - FS_SKETCH_EXACT];
}

void fs_sketch_densify(fs_sketch *s)
{
    if (s->buckets)
        return;
    pthread_once(&table_once, table_init);
    s->buckets = fs_xcalloc(total_buckets(), sizeof(uint64_t));
    assert(s->count <= FS_SKETCH_FEW);
    for (uint64_t i = 0; i < s->count; i++)
        s->buckets[s->few[i]]++;
}

/* Counts one more value of bucket idx; s->count is not updated yet. */
static void add_index(fs_sketch *s, uint32_t idx)
{
    if (!s->buckets && s->count < FS_SKETCH_FEW) {
        s->few[s->count] = idx;
        return;
    }
    fs_sketch_densify(s);
    s->buckets[idx]++;
}

void fs_sketch_init(fs_sketch *s)
{
    s->count = 0;
    s->min = 0;
    s->max = 0;
    s->sum = 0;
    s->buckets = NULL;
    s->lo = 0;
    s->hi = 0;
}

void fs_sketch_free(fs_sketch *s)
{
    free(s->buckets);
    fs_sketch_init(s);
}

/* Extends [lo, hi) to cover [lo2, hi2), given that count was `before` before. */
static void widen(fs_sketch *s, uint64_t before, uint32_t lo2, uint32_t hi2)
{
    if (before == 0) {
        s->lo = lo2;
        s->hi = hi2;
        return;
    }
    if (lo2 < s->lo)
        s->lo = lo2;
    if (hi2 > s->hi)
        s->hi = hi2;
}

void fs_sketch_add(fs_sketch *s, int64_t value_ms)
{
    int64_t v = value_ms < 0 ? 0 : value_ms;
    pthread_once(&table_once, table_init);
    uint32_t idx = bucket_of(v);
    add_index(s, idx);
    widen(s, s->count, idx, idx + 1);
    if (s->count == 0 || v < s->min)
        s->min = v;
    if (s->count == 0 || v > s->max)
        s->max = v;
    s->count++;
    s->sum += v;
}

void fs_sketch_merge(fs_sketch *into, const fs_sketch *from)
{
    if (from->count == 0)
        return;
    if (!from->buckets) {
        for (uint64_t i = 0; i < from->count; i++) {
            add_index(into, from->few[i]);
            into->count++; /* add_index places by count; restored below */
        }
        into->count -= from->count;
    } else {
        fs_sketch_densify(into);
        for (uint32_t i = from->lo; i < from->hi; i++)
            into->buckets[i] += from->buckets[i];
    }
    widen(into, into->count, from->lo, from->hi);
    if (into->count == 0 || from->min < into->min)
        into->min = from->min;
    if (into->count == 0 || from->max > into->max)
        into->max = from->max;
    into->count += from->count;
    into->sum += from->sum;
}

void fs_sketch_subtract(fs_sketch *into, const fs_sketch *from)
{
    if (from->count == 0)
        return;
    assert(into->count >= from->count);
    fs_sketch_densify(into);
    if (!from->buckets) {
        for (uint64_t i = 0; i < from->count; i++)
            into->buckets[from->few[i]]--;
    } else {
        for (uint32_t i = from->lo; i < from->hi; i++)
            into->buckets[i] -= from->buckets[i];
    }
    into->count -= from->count;
    into->sum -= from->sum;
    if (into->count == 0)
        into->lo = into->hi = 0; /* the next add or merge sets them afresh */
}

/* ceil(q * count) as a rank in [1, count]. The product of a decimal fraction such as
 * 0.07 and an integer can land one ulp above the integer it denotes; shaving a relative
 * 1e-12 keeps the rank exact for percentiles while being far below any real fraction. */
static uint64_t nearest_rank(double q, uint64_t count)
{
    double r = q * (double)count;
    r = ceil(r - r * 1e-12);
    if (!(r >= 1.0))
        return 1;
    if (r >= (double)count)
        return count;
    return (uint64_t)r;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The bucket holding the value of the given rank (1 <= rank <= count). */
static uint32_t bucket_at_rank(const fs_sketch *s, uint64_t rank)
{
    if (!s->buckets) {
        uint32_t sorted[FS_SKETCH_FEW];
        memcpy(sorted, s->few, s->count * sizeof(*sorted));
        qsort(sorted, s->count, sizeof(*sorted), cmp_u32);
        return sorted[rank - 1];
    }
    uint64_t seen = 0;
    for (uint32_t i = s->lo; i < s->hi; i++) {
        seen += s->buckets[i];
        if (seen >= rank)
            return i;
    }
    return s->hi - 1;
}

bool fs_sketch_quantile(const fs_sketch *s, double q, int64_t *out)
{
    if (s->count == 0)
        return false;
    uint64_t rank = nearest_rank(q, s->count);
    if (rank == 1 || rank == s->count) { /* the extremes are known exactly */
        *out = rank == 1 ? s->min : s->max;
        return true;
    }
    int64_t v = bucket_value(bucket_at_rank(s, rank));
    if (v < s->min)
        v = s->min;
    if (v > s->max)
        v = s->max;
    *out = v;
    return true;
}
