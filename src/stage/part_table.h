/* part_table.h -- the stage's input partitions, as the loop thread sees them.
 *
 * Indexed by Kafka partition number, which is also the partition's index in
 * the engine (its workers keep one clock per partition, worker.h); the
 * table grows to the highest number seen and never shrinks. An entry says
 * whether the partition is assigned to this instance, where consumption
 * stands, what was committed for it, and the two states that stop it from
 * holding the watermark back: idle (no message for idle_timeout, loop time)
 * and at its end (--until-eof). The decisions live here; telling the
 * engine about them (fs_part_op in the batch stream) is consume.c's job.
 * Loop thread only.
 */
#ifndef FS_PART_TABLE_H
#define FS_PART_TABLE_H

#include <stdbool.h>
#include <stdint.h>

#define FS_MAX_PARTITIONS 65536 /* the engine's partition index is 16 bits */

typedef struct fs_part {
    bool assigned, at_eof, idle;
    int64_t next;      /* next offset to consume; -1 until a message or a resume */
    int64_t committed; /* the offset last committed; -1: none since assigned */
    /* The checkpoint committed with it (the offset's metadata): a checkpoint
     * may write a partition's state without a new offset (its windows
     * closed by the others' clocks), and the commit must then name it. */
    uint64_t committed_checkpoint;
    uint64_t last_ms; /* loop time of the last message (or of the assignment) */
} fs_part;

typedef struct fs_part_table {
    fs_part *v;    /* v[0 .. n) */
    int64_t *next; /* fs_part_table_next's snapshot, n entries */
    uint32_t n;    /* 1 + the highest partition number seen */
} fs_part_table;

void fs_part_table_free(fs_part_table *t);
/* Partition p's entry, growing the table to hold it (new entries: not
 * assigned, no message, nothing committed). Pointers into the table stay
 * valid until the next call that grows it. */
fs_part *fs_part_table_at(fs_part_table *t, uint32_t p);
/* Newly assigned at loop time now_ms: no message yet (it is read from the
 * committed offset again), nothing committed, not idle before idle_timeout. */
fs_part *fs_part_table_assign(fs_part_table *t, uint32_t p, uint64_t now_ms);
/* Revoked: false for a partition never seen, which needs nothing done. */
bool fs_part_table_revoke(fs_part_table *t, uint32_t p);
/* Every assigned partition is at its end, and there is at least one. */
bool fs_part_table_all_at_eof(const fs_part_table *t);
/* Where consumption stands after a batch, for fs_commit_batch: the next
 * offset of each assigned partition, -1 for the others; t->n entries. */
const int64_t *fs_part_table_next(fs_part_table *t);

/* Restored from what the group committed: `offset` with `checkpoint`.
 * Consumption goes on from there, so that is where it stands. */
void fs_part_resume(fs_part *ps, int64_t offset, uint64_t checkpoint);
/* A message at `offset` consumed at loop time now_ms: the partition is
 * neither idle nor at its end any more. */
void fs_part_message(fs_part *ps, int64_t offset, uint64_t now_ms);
/* The consumer reported the partition's end. True when that is news for an
 * assigned partition (no end reported since its last message): with
 * --until-eof it stops holding the watermark. */
bool fs_part_reach_eof(fs_part *ps);
/* At loop time now_ms: true when an assigned partition that is not idle
 * yet has had no message for timeout_ms, and marks it idle. */
bool fs_part_idle_due(fs_part *ps, uint64_t now_ms, uint64_t timeout_ms);

#endif
