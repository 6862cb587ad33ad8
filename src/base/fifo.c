/* fifo.c -- a growable FIFO of fixed-size elements (see fifo.h). */
#include "fifo.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

void fs_fifo_init(fs_fifo *f, size_t elem_size)
{
    memset(f, 0, sizeof(*f));
    f->size = elem_size;
}

void fs_fifo_free(fs_fifo *f)
{
    free(f->v);
    f->v = NULL;
    f->head = f->len = f->cap = 0;
}

void *fs_fifo_push(fs_fifo *f)
{
    if (f->head + f->len == f->cap) {
        if (f->head > 0) {
            memmove(f->v, f->v + f->head * f->size, f->len * f->size);
            f->head = 0;
        }
        if (f->len == f->cap) {
            f->cap = f->cap ? 2 * f->cap : 16;
            f->v = fs_xrealloc(f->v, f->cap * f->size);
        }
    }
    return fs_fifo_at(f, f->len++);
}
