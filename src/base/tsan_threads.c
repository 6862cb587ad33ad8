/* tsan_threads.c -- C11 threads that ThreadSanitizer can see (TSan builds only).
 *
 * librdkafka starts its threads with C11 thrd_create. In Debian 12's glibc
 * that calls the internal pthread_create directly, past the sanitizer's
 * interceptor, so TSan never sets those threads up and they crash in their
 * first malloc. Defining thrd_create in the executable interposes it for
 * librdkafka.so too; this one goes through the public pthread_create, which
 * TSan intercepts. glibc's thrd_t is a pthread_t and its thrd_join reads
 * the int result from the pthread result, so thrd_join keeps working.
 *
 * Its mutexes and condition variables (mtx_*, cnd_*) bypass the
 * interceptors in the same way, which would hide every hand-off through its
 * queues, so they are routed to the pthread calls too (glibc's mtx_t and
 * cnd_t are unions over pthread_mutex_t and pthread_cond_t).
 *
 * CMakeLists.txt compiles this file into every executable of a
 * FS_SANITIZE=thread build, and into nothing else.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

typedef struct thrd_start {
    thrd_start_t func;
    void *arg;
} thrd_start;

static void *thrd_trampoline(void *p)
{
    thrd_start start = *(thrd_start *)p;
    free(p);
    return (void *)(intptr_t)start.func(start.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t func, void *arg); /* glibc's, interposed */
int thrd_create(thrd_t *thr, thrd_start_t func, void *arg)
{
    thrd_start *p = malloc(sizeof(*p));
    if (!p)
        return thrd_nomem;
    *p = (thrd_start){func, arg};
    if (pthread_create(thr, NULL, thrd_trampoline, p) != 0) {
        free(p);
        return thrd_error;
    }
    return thrd_success;
}

/* Detaching and joining must go through the intercepted calls as well, or
 * TSan reports the threads as leaked. */
int thrd_detach(thrd_t thr); /* glibc's, interposed */
int thrd_detach(thrd_t thr)
{
    return pthread_detach(thr) == 0 ? thrd_success : thrd_error;
}

int thrd_join(thrd_t thr, int *res); /* glibc's, interposed */
int thrd_join(thrd_t thr, int *res)
{
    void *r;
    if (pthread_join(thr, &r) != 0)
        return thrd_error;
    if (res)
        *res = (int)(intptr_t)r;
    return thrd_success;
}

/* The prototypes are glibc's: these definitions interpose them. */
int mtx_init(mtx_t *m, int type);
int mtx_lock(mtx_t *m);
int mtx_trylock(mtx_t *m);
int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict ts);
int mtx_unlock(mtx_t *m);
void mtx_destroy(mtx_t *m);
int cnd_init(cnd_t *c);
int cnd_signal(cnd_t *c);
int cnd_broadcast(cnd_t *c);
int cnd_wait(cnd_t *c, mtx_t *m);
int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict ts);
void cnd_destroy(cnd_t *c);

static int thrd_result(int err)
{
    return err == 0           ? thrd_success
           : err == ETIMEDOUT ? thrd_timedout
           : err == EBUSY     ? thrd_busy
           : err == ENOMEM    ? thrd_nomem
                              : thrd_error;
}

int mtx_init(mtx_t *m, int type)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    if (type & mtx_recursive)
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    int err = pthread_mutex_init((pthread_mutex_t *)m, &attr);
    pthread_mutexattr_destroy(&attr);
    return thrd_result(err);
}

int mtx_lock(mtx_t *m)
{
    return thrd_result(pthread_mutex_lock((pthread_mutex_t *)m));
}

int mtx_trylock(mtx_t *m)
{
    return thrd_result(pthread_mutex_trylock((pthread_mutex_t *)m));
}

int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict ts)
{
    return thrd_result(pthread_mutex_timedlock((pthread_mutex_t *)m, ts));
}

int mtx_unlock(mtx_t *m)
{
    return thrd_result(pthread_mutex_unlock((pthread_mutex_t *)m));
}

void mtx_destroy(mtx_t *m)
{
    pthread_mutex_destroy((pthread_mutex_t *)m);
}

int cnd_init(cnd_t *c)
{
    return thrd_result(pthread_cond_init((pthread_cond_t *)c, NULL));
}

int cnd_signal(cnd_t *c)
{
    return thrd_result(pthread_cond_signal((pthread_cond_t *)c));
}

int cnd_broadcast(cnd_t *c)
{
    return thrd_result(pthread_cond_broadcast((pthread_cond_t *)c));
}

int cnd_wait(cnd_t *c, mtx_t *m)
{
    return thrd_result(pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m));
}

int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict ts)
{
    return thrd_result(pthread_cond_timedwait((pthread_cond_t *)c, (pthread_mutex_t *)m, ts));
}

void cnd_destroy(cnd_t *c)
{
    pthread_cond_destroy((pthread_cond_t *)c);
}
