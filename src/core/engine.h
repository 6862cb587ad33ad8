/* engine.h -- source -> engine -> sink: the threads that run the data path.
 *
 * A source (replay file, Kafka consumer) fills batches of raw messages and
 * publishes them in order. Batches live in a ring of slots; each slot moves
 * through EMPTY -> FRAMED (published) -> DECODING -> DECODED -> ROUTING ->
 * ROUTED -> EMPTY. Any worker may decode any FRAMED batch, so decoding runs
 * on all cores; routing (route.h) then runs once per batch, in order, and
 * gives each worker the list of messages it owns; each worker applies its
 * list (worker.h), and the last one to finish a batch recycles its slot. Workers hand their steps
 * to the sink thread, which merges them and writes records to the output.
 *
 * Waiting is on a futex-backed generation counter: a thread that finds
 * nothing to do sleeps in the kernel until some slot changes state. There
 * are no sleeps and no polling loops beyond a short spin.
 */
#ifndef FS_ENGINE_H
#define FS_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "decode.h"
#include "event.h"
#include "route.h"
#include "sink.h"
#include "worker.h"

#define FS_BATCH_BYTES (1u << 20)
#define FS_BATCH_MSGS  8192u
#define FS_MAX_MESSAGE (64u << 20) /* a longer message is rejected unread */

typedef struct fs_batch {
    char *buf; /* raw message bytes: the batch's own `mem`, or a view (fs_batch_view) */
    size_t len, cap;
    char *mem; /* the batch's own buffer, mem_cap bytes */
    size_t mem_cap;
    size_t flight; /* len when published: its share of the engine's bytes in flight */
    uint32_t n, msg_cap;
    uint32_t *off, *msg_len;
    uint32_t *key_len; /* a message's key, if any, follows its value in buf */
    uint16_t *part;    /* input partition index (fs_part_ctl) */
    uint8_t *status;   /* fs_reject: preset by the source (framing) or set by decoding */
    fs_event *ev;
    int32_t *type; /* the event type's id (fs_funnels_type_id) of each valid event */
    char *scratch; /* JSON unescaping: message i may use scratch[off[i] .. off[i] + msg_len[i]) */
    size_t scratch_cap;
    fs_part_ctl *ctl;        /* partition changes to apply before the messages */
    fs_restore_rec *restore; /* then state records to restore (fs_batch_add_restore) */
    uint64_t checkpoint_id;  /* with FS_PART_CHECKPOINT: its number (fs_batch_add_checkpoint) */
    uint32_t n_restore, restore_cap;
    uint32_t n_partials; /* messages with status FS_PARTIAL_MSG */
    fs_routed route;     /* who applies which message (route.h), filled in batch order */
    uint32_t n_ctl, ctl_cap;
    fs_format format;
    bool framed; /* the source framed every FS_OK message (fs_decode_framed) */
    bool last;   /* no batch follows */
    bool stop;   /* with last: the input was abandoned, open windows are not emitted */
    /* engine-private */
    uint64_t seq;
    uint64_t published_ns;  /* fs_now_ns at publication: steps report it for latency */
    _Atomic uint64_t state; /* seq << PH_BITS | phase */
    _Atomic uint32_t refs;
} fs_batch;

/* Appends a message (bytes already at buf[off..off+len)) with a preset
 * status (FS_OK: to be decoded). */
void fs_batch_add(fs_batch *b, uint32_t off, uint32_t len, fs_reject preset);
/* Appends a message of partition `part` whose key (key_len bytes) follows
 * the value in buf. */
void fs_batch_add_keyed(fs_batch *b, uint32_t off, uint32_t len, uint32_t key_len, uint16_t part,
                        fs_reject preset);
void fs_batch_add_ctl(fs_batch *b, uint32_t part, fs_part_op op);
/* Appends a partial (bytes already at buf[off..off+len)) of the partials
 * partition whose index is part. */
void fs_batch_add_partial(fs_batch *b, uint32_t off, uint32_t len, uint16_t part);
/* A state record to restore before the batch's messages (snapshot.h),
 * copied into the batch; value NULL: a tombstone. With FS_PART_CHECKPOINT
 * and FS_PART_REVOKE, this is how a source moves a partition's state in and
 * out: a checkpoint (its records reach out.state), then, in a later batch,
 * the revocation (the partition's state is dropped); an assignment with the
 * partition's records (its state is taken up before its next event). */
/* A checkpoint numbered id (increasing: state.h) at the head of the batch. */
void fs_batch_add_checkpoint(fs_batch *b, uint64_t id);
void fs_batch_add_restore(fs_batch *b, uint16_t part, const char *key, size_t key_len,
                          const char *value, size_t value_len);
/* Makes room for `extra` more bytes in buf (not a view). */
void fs_batch_reserve(fs_batch *b, size_t extra);
/* Makes b's bytes the caller's bytes[0..len), without copying: they must
 * stay valid and unchanged until the engine is joined (a mapped file). */
void fs_batch_view(fs_batch *b, const char *bytes, size_t len);
static inline bool fs_batch_full(const fs_batch *b)
{
    return b->n == b->msg_cap || b->len >= FS_BATCH_BYTES;
}

typedef struct fs_engine fs_engine;

typedef struct fs_engine_stats {
    uint64_t messages, bytes;
    uint64_t valid, rejected;
    uint64_t rejected_by[FS_REJECT_COUNT];
    uint64_t late_events;
    uint64_t journeys_started, journeys_completed, journeys_abandoned, journeys_excluded;
    uint64_t journeys_active;
    /* Sum of the workers' peaks: an upper bound of the peak of the total,
     * and close to it because hashing spreads customers evenly. */
    uint64_t journeys_active_peak;
    uint64_t journeys_refused, journeys_evicted; /* limits: (worker.h) */
    uint64_t events_ignored;                     /* valid, but of a type no funnel uses */
    uint64_t windows_open;
    uint64_t label_values; /* label entries in open windows, all workers (worker.h) */
    uint64_t table_bytes;  /* journey table estimate */
    uint64_t flow_records, cohort_records, write_errors;
    uint64_t partials, partial_bytes; /* partials made (merge.h) */
    /* CPU time of the worker threads (after join; 0 while running): their
     * sum, and the busiest one's, which bounds how far threads scale. */
    uint64_t worker_cpu_ns, worker_cpu_ns_max;
} fs_engine_stats;

/* threads: number of workers (>= 1). The engine keeps pointers to cfg. */
fs_engine *fs_engine_new(const fs_config *cfg, uint32_t threads, fs_output out);
/* Source side, one thread: get an empty batch, fill it, publish it.
 * batch_get waits while every batch is in use; batch_ready says, without
 * waiting, whether batch_get would return at once (a source that must not
 * block, such as an event loop, pauses its input instead). */
fs_batch *fs_engine_batch_get(fs_engine *e, fs_format format);
bool fs_engine_batch_ready(fs_engine *e);
void fs_engine_batch_publish(fs_engine *e, fs_batch *b, bool last);
/* Publishes b as the last batch of an input that stops without ending
 * (shutdown): the engine applies it and stops without closing windows. */
void fs_engine_batch_publish_stop(fs_engine *e, fs_batch *b);
/* The engine unmaps addr[0..len) when it is freed: batches may view it
 * (fs_batch_view) until then. */
void fs_engine_adopt_mapping(fs_engine *e, void *addr, size_t len);
/* After the last batch: waits until every record is written. */
void fs_engine_join(fs_engine *e);
fs_engine_stats fs_engine_get_stats(fs_engine *e); /* after join */
/* Whether a state record given to fs_batch_add_restore could not be read,
 * and why (into err): once fs_engine_batches_done has passed the batch. */
bool fs_engine_restore_error(fs_engine *e, char *err, size_t err_len);
/* While running, from any thread: the same counters as of each worker's
 * last finished batch (records: as of the sink's last step). */
fs_engine_stats fs_engine_live_stats(fs_engine *e);
/* While running, from any thread: the running counts of the windows still
 * open, summed over the workers as of each one's last finished batch,
 * ascending by funnel, then window start. The caller frees *out. */
uint32_t fs_engine_open_counts(fs_engine *e, fs_open_count **out);
/* The merge's counters (merge.h), from any thread while running. */
struct fs_merge_stats fs_engine_merge_stats(fs_engine *e);
/* Live counters, readable from any thread while running (approximate). */
uint64_t fs_engine_messages_done(fs_engine *e);
/* How many batches every worker has finished: a source may reuse what it
 * knows about batch seq once seq < this. */
uint64_t fs_engine_batches_done(fs_engine *e);
void fs_engine_free(fs_engine *e);

/* Live journey lookups from a thread that is not one of the engine's:
 * between fs_engine_reader_enter and _leave, on that thread, any number of
 * fs_engine_read_journeys calls, concurrent with the workers. */
void fs_engine_reader_enter(void);
void fs_engine_reader_leave(void);
/* Copies customer `id`'s active journeys into out[0..n_funnels) (funnel
 * order); returns how many. fs_engine_label names their channels. */
uint32_t fs_engine_read_journeys(fs_engine *e, const char *id, size_t len, fs_journey_view *out,
                                 uint32_t *owner);
/* The name of label `id` of worker `owner` (a channel in a journey view). */
const char *fs_engine_label(fs_engine *e, uint32_t owner, uint32_t id, uint32_t *len);
/* How many funnels (the size of fs_engine_read_journeys' out). */
uint32_t fs_engine_funnels(const fs_engine *e);

#endif
