/* stage_internal.h -- the state the stage's files share (private to src/stage).
 *
 * One fs_stage lives on fs_stage_run's stack for the whole run. Each group
 * of fields below says which file writes it and which threads touch it.
 * "Loop" is the libuv loop thread, which runs everything but the callbacks
 * named *_from_sink (the engine's sink thread) and *_from_any (whichever
 * thread polls the producer). stage.c explains how the pieces fit.
 */
#ifndef FS_STAGE_INTERNAL_H
#define FS_STAGE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>
#include <uv.h>

#include "board.h"
#include "commit.h"
#include "config.h"
#include "engine.h"
#include "fifo.h"
#include "http.h"
#include "inbox.h"
#include "latency.h"
#include "part_table.h"

#define FS_CONSUME_CHUNK 1024 /* messages per rd_kafka_consume_batch_queue */

/* shutdown.c's steps of the end. */
typedef enum fs_end_step { FS_END_NONE, FS_END_DRAIN, FS_END_LEAVE, FS_END_CLOSED } fs_end_step;

typedef enum fs_stage_phase {
    FS_STAGE_RUNNING, /* consuming */
    FS_STAGE_ENDING,  /* input ended (consume.c): waiting for the sink's last step */
    FS_STAGE_DONE,    /* flushed, committed, leaving the group (stage.c) */
} fs_stage_phase;

/* The input offsets a checkpoint heading batch seq covers (exactly_once). */
typedef struct fs_ckpt_offsets {
    uint64_t seq;
    rd_kafka_topic_partition_list_t *offsets;
} fs_ckpt_offsets;

typedef struct fs_stage {
    /* Set up by stage.c before the loop runs, then read-only; any thread.
     * The producer is librdkafka's to make thread-safe (the sink thread
     * produces on it); the consumer is used by the loop only. */
    const fs_config *cfg;
    bool until_eof;
    rd_kafka_t *consumer, *producer;
    fs_engine *engine;

    /* stage.c, loop. The handles are set up and closed there; consume.c
     * stops consumer_watch and starts/stops `more`, and uv_async_send on
     * `wake` is the one call other threads make (deliver.c). */
    fs_stage_phase phase;
    int exit_code; /* 1 once the stage failed (fs_stage_fail, finish) */
    uv_loop_t loop;
    uv_poll_t consumer_watch, producer_watch;
    int consumer_pipe[2], producer_pipe[2];
    uv_async_t wake;
    uv_idle_t more; /* consume again next iteration: the queue was not drained */
    uv_timer_t idle_timer, commit_timer, stats_timer; /* end_timer: shutdown.c */
    uv_signal_t sigint, sigterm;
    rd_kafka_queue_t *consumer_q, *producer_q;
    rd_kafka_topic_t *warm[3]; /* output, dead-letter and state topics, known from the start */

    /* Loop. Shared by the input and the output side: consume.c records
     * batches and forgets partitions, deliver.c feeds steps and
     * acknowledgements and commits; api.c reads. */
    fs_part_table parts;  /* consume.c; deliver.c sets the committed offsets */
    fs_commit_plan *plan; /* created and freed by stage.c */

    /* consume.c, loop (api.c and the logs read them). */
    fs_batch *open; /* the batch being filled, NULL between batches */
    uint64_t consumed, consumed_bytes, first_message_ns, rebalances;
    bool ever_assigned; /* an assignment arrived: the consumer may be destroyed (stage.c) */
    rd_kafka_message_t *held[FS_CONSUME_CHUNK]; /* taken from the queue, held[held_next..n_held) */
    size_t n_held, held_next;                   /* not handled yet */
    uv_poll_cb consumer_ready;                  /* stage.c: consumer_watch's callback */

    /* deliver.c. */
    fs_inbox in;              /* any thread; acks: n << 1 | tag */
    _Atomic uint64_t records; /* numbered by the sink thread, read by the loop */
    uint64_t dead_letters;    /* numbered by the sink thread; sink thread only */
    bool sink_done;           /* loop: the sink's last step arrived */
    uint64_t acked_records, acked_dead_letters, commits; /* loop */
    fs_ack_latency latency; /* loop: a window's close -> its records acked */

    /* The state topic (SPEC §5): consume.c asks for checkpoints and restores
     * assigned partitions; deliver.c produces the state records. */
    char state_topic[256];
    uint64_t checkpoints;           /* loop: checkpoints asked for */
    uint64_t next_checkpoint;       /* loop: the next checkpoint's number (state.h) */
    _Atomic uint64_t state_records; /* produced by the sink thread (numbered as records) */
    uint64_t restored_keys;         /* loop: state records restored */
    double restore_seconds;         /* loop: time spent restoring */
    bool restoring; /* loop: until the engine has applied restore_seq; /ready says 503 */
    _Atomic uint64_t superseding; /* state records written again, not acknowledged yet */
    uint64_t restore_seq;         /* loop: the batch holding the last restore */

    /* exactly_once (deliver.c): the sink thread runs the transactions; the
     * loop hands it, for each checkpoint, the offsets it covers. */
    bool transactional;
    _Atomic bool txn_broken; /* sink thread: a transaction failed; nothing more commits */
    pthread_mutex_t ckpt_lock;
    fs_fifo ckpt_offsets; /* of fs_ckpt_offsets, seq ascending; under ckpt_lock */

    /* Scale-out (merge.h). Set up by stage.c. Partition indices (the part
     * table's and the engine's) are the input topic's partition numbers,
     * then one more: partition 0 of the partials topic, whose holder
     * merges. The input's partition count is fixed at start: a partition
     * beyond it stops the stage (restart the group to take it). */
    char partials_topic[256];
    uint32_t n_input;           /* the input topic's partitions */
    uint32_t partials_index;    /* == n_input */
    bool merge_complete;        /* loop: the sink's last step said every record is out */
    uint64_t partials_consumed; /* loop */
    /* deliver.c (sink thread) writes, api.c reads; by partition index:
     * state bytes written, and the size of the last partition record. */
    _Atomic uint64_t *state_bytes, *record_bytes;
    const void *input_rkt, *partials_rkt; /* consume.c: the consumer's topic handles, once seen */

    /* Faults ridden out (README "Failure behaviour"), counted for /metrics
     * and the summary. */
    uint64_t unkeyed;                  /* consume.c, loop: input messages without a key */
    uint64_t offsets_skipped;          /* consume.c, loop: messages lost to a gap in a log */
    _Atomic uint64_t dead_letters_cut; /* deliver.c, sink thread: cut to fit the producer */
    size_t dead_letter_max; /* stage.c, then read-only: key + value bytes a dead letter may have */
    bool input_paused;      /* consume.c, loop: the input waits for the engine (backpressure) */
    uint64_t input_pauses;  /* consume.c, loop */
    uint64_t brokers_down_at; /* brokers.c, loop: uv_now when the outage began; 0: up */
    bool probing;             /* brokers.c, loop: a probe is on the threadpool */
    uint64_t last_probe_at;   /* brokers.c, loop: uv_now of the last probe */

    /* shutdown.c, loop: the end, step by step (end_timer drives it). */
    uv_timer_t end_timer;
    fs_end_step end_step;
    uint64_t end_deadline;     /* uv_now by which the current step gives up */
    rd_kafka_queue_t *close_q; /* the consumer's close events (step LEAVE) */
    bool forced;               /* a second signal: no waiting for the broker */

    /* api.c, loop; the sink thread posts flow records to the board (which
     * locks). */
    fs_http *http;
    fs_board *board;
} fs_stage;

/* stage.c, loop: the stage cannot go on (a broker, delivery or
 * configuration failure). Logs why, makes the exit code 1 and stops the
 * input like a signal does; nothing more is committed. */
void fs_stage_fail(fs_stage *s, const char *why);

/* The topic and partition of partition index i. */
static inline const char *fs_stage_topic_of(const fs_stage *s, uint32_t i, int32_t *partition)
{
    if (i == s->partials_index) {
        *partition = 0;
        return s->partials_topic;
    }
    *partition = (int32_t)i;
    return s->cfg->input_topic;
}

#endif
