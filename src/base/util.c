/* util.c -- checked allocation and the monotonic clock. */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *check(void *p, size_t n)
{
    if (p == NULL && n != 0) {
        fprintf(stderr, "level=fatal msg=\"out of memory\" bytes=%zu\n", n);
        abort();
    }
    return p;
}

void fs_xcheck(int rc, const char *call)
{
    if (rc == 0)
        return;
    fprintf(stderr, "level=fatal msg=\"%s failed\" error=\"%s\"\n", call,
            strerror(rc < 0 ? -rc : rc));
    abort();
}

void *fs_xmalloc(size_t n)
{
    return check(malloc(n), n);
}

void *fs_xcalloc(size_t n, size_t size)
{
    return check(calloc(n, size), n * size);
}

void *fs_xrealloc(void *p, size_t n)
{
    return check(realloc(p, n), n);
}

char *fs_xstrdup(const char *s)
{
    return fs_xmemdup0(s, strlen(s));
}

char *fs_xmemdup0(const char *s, size_t len)
{
    char *p = fs_xmalloc(len + 1);
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

uint64_t fs_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
