/* fifo.h -- a growable first-in first-out queue of fixed-size elements.
 *
 * The live elements are v[head .. head + len) of one array. Push appends at
 * the back; when the back reaches the end of the array, the live run first
 * moves to the front, and the array doubles only when live elements fill it.
 * So a queue that is drained as fast as it fills stays at its high-water
 * size and never moves more than it holds. Pop just advances head.
 *
 * Pointers from fs_fifo_push/at/front stay valid until the next push.
 * Elements are plain bytes: a queue of elements that own memory frees it
 * itself before popping them.
 */
#ifndef FS_FIFO_H
#define FS_FIFO_H

#include <stddef.h>

typedef struct fs_fifo {
    char *v;
    size_t size; /* of one element */
    size_t head, len, cap;
} fs_fifo;

void fs_fifo_init(fs_fifo *f, size_t elem_size);
void fs_fifo_free(fs_fifo *f);
/* A new, uninitialised element at the back. */
void *fs_fifo_push(fs_fifo *f);

/* The i-th element from the front, i < len. */
static inline void *fs_fifo_at(const fs_fifo *f, size_t i)
{
    return f->v + (f->head + i) * f->size;
}
static inline void *fs_fifo_front(const fs_fifo *f)
{
    return f->len ? fs_fifo_at(f, 0) : NULL;
}
static inline void fs_fifo_pop(fs_fifo *f)
{
    f->head++;
    f->len--;
}

#endif
