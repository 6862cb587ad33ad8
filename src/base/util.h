/* util.h -- allocation that cannot fail silently, and small helpers.
 *
 * Out of memory is not a recoverable condition for a stream processor that
 * must not lose data: fs_x* allocators log and abort instead of returning NULL.
 */
#ifndef FS_UTIL_H
#define FS_UTIL_H

#include <stddef.h>
#include <stdint.h>

void *fs_xmalloc(size_t n);
void *fs_xcalloc(size_t n, size_t size);
void *fs_xrealloc(void *p, size_t n);
char *fs_xstrdup(const char *s);
char *fs_xmemdup0(const char *s, size_t len); /* copy of s[0..len) plus a NUL */

/* Setup calls that fail only when the process is out of resources (thread
 * creation, mutex and libuv handle initialisation): rc is 0 on success, an
 * errno value (pthreads) or a negative one (libuv) otherwise, which is
 * logged with the call's name before the process aborts, like out of memory. */
void fs_xcheck(int rc, const char *call);

/* Floor division and saturating arithmetic for event-time math, where
 * timestamps may be anywhere in int64 (SPEC: any integer). */
static inline int64_t fs_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
static inline int64_t fs_sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}
static inline int64_t fs_sat_sub(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r))
        return b < 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* The value of a hexadecimal digit, or -1 (JSON \u escapes, URL %XX). */
static inline int fs_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Monotonic clock in nanoseconds, for progress and latency reporting only
 * (never for event-time decisions). */
uint64_t fs_now_ns(void);

#endif
