/* part_table.c -- the stage's input partitions (part_table.h). */
#include "part_table.h"

#include <assert.h>

#include <stdlib.h>

#include "util.h"

void fs_part_table_free(fs_part_table *t)
{
    free(t->v);
    free(t->next);
    *t = (fs_part_table){0};
}

fs_part *fs_part_table_at(fs_part_table *t, uint32_t p)
{
    if (p >= t->n) {
        uint32_t n = p + 1;
        t->v = fs_xrealloc(t->v, n * sizeof(*t->v));
        t->next = fs_xrealloc(t->next, n * sizeof(*t->next));
        for (uint32_t i = t->n; i < n; i++)
            t->v[i] = (fs_part){.next = -1, .committed = -1};
        t->n = n;
    }
    return &t->v[p];
}

fs_part *fs_part_table_assign(fs_part_table *t, uint32_t p, uint64_t now_ms)
{
    fs_part *ps = fs_part_table_at(t, p);
    *ps = (fs_part){.assigned = true, .next = -1, .committed = -1, .last_ms = now_ms};
    return ps;
}

bool fs_part_table_revoke(fs_part_table *t, uint32_t p)
{
    if (p >= t->n)
        return false;
    t->v[p].assigned = false;
    return true;
}

bool fs_part_table_all_at_eof(const fs_part_table *t)
{
    bool any = false;
    for (uint32_t p = 0; p < t->n; p++) {
        if (!t->v[p].assigned)
            continue;
        if (!t->v[p].at_eof)
            return false;
        any = true;
    }
    return any;
}

const int64_t *fs_part_table_next(fs_part_table *t)
{
    for (uint32_t p = 0; p < t->n; p++)
        t->next[p] = t->v[p].assigned ? t->v[p].next : -1;
    return t->next;
}

void fs_part_resume(fs_part *ps, int64_t offset, uint64_t checkpoint)
{
    assert(ps->assigned && ps->next < 0);
    ps->next = ps->committed = offset;
    ps->committed_checkpoint = checkpoint;
}

void fs_part_message(fs_part *ps, int64_t offset, uint64_t now_ms)
{
    ps->next = offset + 1;
    ps->last_ms = now_ms;
    ps->idle = ps->at_eof = false;
}

bool fs_part_reach_eof(fs_part *ps)
{
    bool news = ps->assigned && !ps->at_eof;
    ps->at_eof = true;
    return news;
}

bool fs_part_idle_due(fs_part *ps, uint64_t now_ms, uint64_t timeout_ms)
{
    if (!ps->assigned || ps->idle || now_ms - ps->last_ms < timeout_ms)
        return false;
    ps->idle = true;
    return true;
}
