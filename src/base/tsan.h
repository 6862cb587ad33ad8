/* tsan.h -- tell ThreadSanitizer about synchronisation it cannot see.
 *
 * liburcu is not compiled with -fsanitize=thread, so TSan sees neither the
 * release store that publishes a node in cds_lfht_add nor the grace period
 * that orders every reader's rcu_read_unlock before a call_rcu callback.
 * Without help it reports those as races. These annotations state exactly
 * the guarantees liburcu documents, and compile to nothing without TSan.
 */
#ifndef FS_TSAN_H
#define FS_TSAN_H

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
static inline void fs_tsan_release(void *addr)
{
    __tsan_release(addr);
}
static inline void fs_tsan_acquire(void *addr)
{
    __tsan_acquire(addr);
}
#else
static inline void fs_tsan_release(void *addr)
{
    (void)addr;
}
static inline void fs_tsan_acquire(void *addr)
{
    (void)addr;
}
#endif

#endif
