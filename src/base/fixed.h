/* fixed.h -- exact fixed-point sums for revenue and linear attribution.
 *
 * A value is whole + frac / 2^64 with whole a signed 128-bit integer and frac
 * in [0, 2^64). Addition is integer addition with a carry, so a sum is the
 * same whatever the order of its terms: results never depend on how events
 * were spread over threads. Conversion from double is exact for the integer
 * part and rounds the fraction to 2^-64 (5e-20), far below the 1e-9 relative
 * precision SPEC §4 asks for.
 */
#ifndef FS_FIXED_H
#define FS_FIXED_H

#include <math.h>
#include <stdint.h>

typedef struct fs_fixed {
    __int128 whole;
    uint64_t frac;
} fs_fixed;

static inline void fs_fixed_add(fs_fixed *acc, fs_fixed x)
{
    uint64_t frac = acc->frac + x.frac;
    acc->whole += x.whole + (frac < acc->frac);
    acc->frac = frac;
}

static inline void fs_fixed_sub(fs_fixed *acc, fs_fixed x)
{
    uint64_t frac = acc->frac - x.frac;
    acc->whole -= x.whole + (frac > acc->frac);
    acc->frac = frac;
}

/* v must be finite with |v| < 1e18 (the decoder guarantees it for `value`). */
static inline fs_fixed fs_fixed_from_double(double v)
{
    double whole = floor(v);
    double frac = ldexp(v - whole, 64); /* v - whole is exact, in [0, 1) */
    fs_fixed f = {(__int128)whole, frac >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)frac};
    return f;
}

/* num / den for 0 <= num <= den, den > 0: the share of one linear credit. */
static inline fs_fixed fs_fixed_ratio(uint64_t num, uint64_t den)
{
    fs_fixed f = {num / den, (uint64_t)((((unsigned __int128)(num % den)) << 64) / den)};
    return f;
}

static inline double fs_fixed_to_double(fs_fixed f)
{
    return (double)f.whole + ldexp((double)f.frac, -64);
}

static inline int fs_fixed_is_zero(fs_fixed f)
{
    return f.whole == 0 && f.frac == 0;
}

#endif
