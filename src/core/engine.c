/* engine.c -- batch ring, worker threads and the sink thread (see engine.h).
 *
 * Slot state is one atomic word, seq << PH_BITS | phase, so a thread that
 * reads it learns in one load both which batch a slot holds and how far it
 * got: a worker waiting for batch 7 cannot mistake a recycled slot for it.
 * Decoding may run ahead on any thread; routing (route.h) runs in batch
 * order, done by the first worker that waits for a decoded batch: a worker
 * waits for batch seq only once it has applied seq - 1, which was routed,
 * so the router's state passes from thread to thread through the slots'
 * release/acquire stores. Every
 * phase change bumps `gen` and wakes sleepers; a waiter reads `gen` before
 * checking and sleeps only while it is unchanged, so no wake-up is lost.
 */
#include "engine.h"
#include "merge.h"

#include <assert.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "funnel.h"
#include "journey_table.h"
#include "snapshot.h"
#include "util.h"

enum { PH_EMPTY, PH_FRAMED, PH_DECODING, PH_DECODED, PH_ROUTING, PH_ROUTED };
#define PH_BITS 3
#define PH_MASK ((1ull << PH_BITS) - 1)

static bool is_at(uint64_t st, uint64_t seq, uint64_t phase)
{
    return st == (seq << PH_BITS | phase);
}

typedef struct step_queue {
    fs_step *head, *tail;
} step_queue;

typedef struct worker_thread {
    fs_engine *e;
    uint32_t id;
    fs_decoder *dec;
    pthread_t thread;
    /* The worker's counters as of its last batch, for live readers: copied
     * under the lock once per batch, so the hot path keeps plain counters. */
    pthread_mutex_t snap_lock;
    fs_worker_stats snap;
    /* The running counts of its open windows, double-buffered: the worker
     * fills `open_work` outside the lock and swaps it in under it. */
    fs_open_count *open_snap, *open_work; /* per pane */
    uint32_t n_open, cap_snap, cap_work;
    uint64_t cpu_ns; /* the thread's CPU time, when it ends */
} worker_thread;

struct fs_engine {
    const fs_config *cfg;
    fs_funnels *funnels;
    fs_journey_table *table;
    fs_router router; /* used by one thread at a time, in batch order */
    uint32_t n_workers;
    uint32_t ring_size;
    fs_batch *ring;
    uint64_t next_seq; /* source thread only */
    _Atomic uint32_t gen;
    _Atomic uint32_t waiters;
    fs_worker *workers;
    worker_thread *wt;
    fs_sink *sink;
    pthread_t sink_thread;
    pthread_mutex_t step_lock;
    pthread_cond_t step_cond;
    step_queue *queues;
    fs_output out;
    _Atomic uint64_t messages_done, batches_done;
    /* Bytes of the batches published and not yet recycled, and the most a
     * source may have in flight before it waits for a new batch: the ring's
     * batches at their usual size. Batches holding one large message each
     * would otherwise fill the whole ring: 2 * threads + 4 copies of the
     * largest message (12 messages of 20 MB from a pipe took 240 MB with 4
     * threads). */
    _Atomic uint64_t bytes_in_flight;
    uint64_t flight_budget;
    bool joined;
    struct {
        void *addr;
        size_t len;
    } * mappings; /* the source thread's, unmapped at free */
    uint32_t n_mappings;
};

/* ---- waiting ------------------------------------------------------------ */

static void notify(fs_engine *e)
{
    atomic_fetch_add(&e->gen, 1);
    if (atomic_load(&e->waiters))
        syscall(SYS_futex, &e->gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* Returns once gen != seen. */
static void wait_change(fs_engine *e, uint32_t seen)
{
    for (int i = 0; i < 256; i++) {
        if (atomic_load_explicit(&e->gen, memory_order_acquire) != seen)
            return;
        __builtin_ia32_pause();
    }
    atomic_fetch_add(&e->waiters, 1);
    while (atomic_load(&e->gen) == seen)
        syscall(SYS_futex, &e->gen, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
    atomic_fetch_sub(&e->waiters, 1);
}

/* ---- batches ------------------------------------------------------------ */

void fs_batch_reserve(fs_batch *b, size_t extra)
{
    assert(b->buf == b->mem);
    if (b->len + extra <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : FS_BATCH_BYTES;
    while (cap < b->len + extra)
        cap *= 2;
    b->buf = b->mem = fs_xrealloc(b->mem, cap);
    b->cap = b->mem_cap = cap;
}

void fs_batch_view(fs_batch *b, const char *bytes, size_t len)
{
    assert(b->len == 0 && b->buf == b->mem); /* messages may be framed already */
    b->buf = (char *)bytes;                  /* never written through: decoding only reads */
    b->len = b->cap = len;
}

void fs_batch_add(fs_batch *b, uint32_t off, uint32_t len, fs_reject preset)
{
    fs_batch_add_keyed(b, off, len, 0, 0, preset);
}

void fs_batch_add_keyed(fs_batch *b, uint32_t off, uint32_t len, uint32_t key_len, uint16_t part,
                        fs_reject preset)
{
    b->off[b->n] = off;
    b->msg_len[b->n] = len;
    b->key_len[b->n] = key_len;
    b->part[b->n] = part;
    b->status[b->n] = (uint8_t)preset;
    b->n++;
}

void fs_batch_add_partial(fs_batch *b, uint32_t off, uint32_t len, uint16_t part)
{
    fs_batch_add_keyed(b, off, len, 0, part, FS_OK);
    b->status[b->n - 1] = FS_PARTIAL_MSG;
    b->n_partials++;
}

void fs_batch_add_restore(fs_batch *b, uint16_t part, const char *key, size_t key_len,
                          const char *value, size_t value_len)
{
    assert(!b->framed && key_len <= UINT32_MAX && value_len < UINT32_MAX);
    if (b->n_restore == b->restore_cap) {
        b->restore_cap = b->restore_cap ? 2 * b->restore_cap : 64;
        b->restore = fs_xrealloc(b->restore, b->restore_cap * sizeof(*b->restore));
    }
    fs_batch_reserve(b, key_len + (value ? value_len : 0));
    fs_restore_rec *r = &b->restore[b->n_restore++];
    r->off = (uint32_t)b->len;
    r->key_len = (uint32_t)key_len;
    r->value_len = value ? (uint32_t)value_len : FS_STATE_TOMBSTONE;
    r->part = part;
    memcpy(b->buf + b->len, key, key_len);
    if (value)
        memcpy(b->buf + b->len + key_len, value, value_len);
    b->len += key_len + (value ? value_len : 0);
}

void fs_batch_add_checkpoint(fs_batch *b, uint64_t id)
{
    fs_batch_add_ctl(b, 0, FS_PART_CHECKPOINT);
    b->checkpoint_id = id;
}

void fs_batch_add_ctl(fs_batch *b, uint32_t part, fs_part_op op)
{
    if (b->n_ctl == b->ctl_cap) {
        b->ctl_cap = b->ctl_cap ? 2 * b->ctl_cap : 16;
        b->ctl = fs_xrealloc(b->ctl, b->ctl_cap * sizeof(*b->ctl));
    }
    b->ctl[b->n_ctl++] = (fs_part_ctl){part, op};
}

static void batch_init(fs_batch *b, uint32_t n_workers)
{
    memset(b, 0, sizeof(*b));
    b->msg_cap = FS_BATCH_MSGS;
    b->off = fs_xmalloc(b->msg_cap * sizeof(*b->off));
    b->msg_len = fs_xmalloc(b->msg_cap * sizeof(*b->msg_len));
    b->key_len = fs_xmalloc(b->msg_cap * sizeof(*b->key_len));
    b->part = fs_xmalloc(b->msg_cap * sizeof(*b->part));
    b->status = fs_xmalloc(b->msg_cap);
    b->ev = fs_xmalloc(b->msg_cap * sizeof(*b->ev));
    b->type = fs_xmalloc(b->msg_cap * sizeof(*b->type));
    fs_routed_init(&b->route, n_workers, b->msg_cap);
    fs_batch_reserve(b, FS_BATCH_BYTES);
}

static void batch_destroy(fs_batch *b, uint32_t n_workers)
{
    free(b->type);
    fs_routed_destroy(&b->route, n_workers);
    free(b->mem);
    free(b->scratch);
    free(b->off);
    free(b->msg_len);
    free(b->key_len);
    free(b->part);
    free(b->ctl);
    free(b->restore);
    free(b->status);
    free(b->ev);
}

/* JSON unescaping room: message i may use scratch[off[i] .. off[i] + len).
 * Sized by the messages to decode, not by the batch's bytes: a view may
 * span a huge line that is rejected unread. */
static void reserve_scratch(fs_batch *b)
{
    size_t need = 0;
    for (uint32_t i = 0; i < b->n; i++)
        if (b->status[i] == FS_OK && (size_t)b->off[i] + b->msg_len[i] > need)
            need = (size_t)b->off[i] + b->msg_len[i];
    if (b->scratch_cap >= need)
        return;
    free(b->scratch);
    b->scratch_cap = need > FS_BATCH_BYTES ? need : FS_BATCH_BYTES;
    b->scratch = fs_xmalloc(b->scratch_cap);
}

static void decode_batch(const fs_funnels *funnels, fs_decoder *dec, fs_batch *b)
{
    if (b->format == FS_FORMAT_JSON)
        reserve_scratch(b);
    for (uint32_t i = 0; i < b->n; i++) {
        if (b->status[i] != FS_OK)
            continue;
        size_t used = 0;
        char *scratch = b->scratch ? b->scratch + b->off[i] : NULL;
        const char *msg = b->buf + b->off[i];
        b->status[i] = (uint8_t)(b->framed ? fs_decode_framed(dec, b->format, msg, b->msg_len[i],
                                                              &b->ev[i], scratch, &used)
                                           : fs_decode(dec, b->format, msg, b->msg_len[i],
                                                       &b->ev[i], scratch, &used));
        if (b->status[i] == FS_OK)
            b->type[i] = fs_funnels_type_id(funnels, b->ev[i].event);
    }
}

static bool try_decode(fs_engine *e, fs_decoder *dec, fs_batch *b, uint64_t st)
{
    uint64_t base = st & ~PH_MASK;
    if (!atomic_compare_exchange_strong(&b->state, &st, base | PH_DECODING))
        return false;
    decode_batch(e->funnels, dec, b);
    atomic_store_explicit(&b->state, base | PH_DECODED, memory_order_release);
    notify(e);
    return true;
}

static bool try_route(fs_engine *e, fs_batch *b, uint64_t st)
{
    uint64_t base = st & ~PH_MASK;
    if (!atomic_compare_exchange_strong(&b->state, &st, base | PH_ROUTING))
        return false;
    fs_route_head head = {b->ctl, b->n_ctl, b->restore, b->n_restore, b->buf, b->checkpoint_id};
    fs_router_route(&e->router, &head, b->ev, b->status, b->part, b->n, &b->route);
    atomic_store_explicit(&b->state, base | PH_ROUTED, memory_order_release);
    notify(e);
    return true;
}

/* Decodes some later published batch, so all cores decode. */
static bool help_decode(fs_engine *e, fs_decoder *dec, uint64_t from)
{
    for (uint64_t seq = from; seq < from + e->ring_size - 1; seq++) {
        fs_batch *b = &e->ring[seq % e->ring_size];
        uint64_t st = atomic_load_explicit(&b->state, memory_order_acquire);
        if (is_at(st, seq, PH_FRAMED) && try_decode(e, dec, b, st))
            return true;
    }
    return false;
}

static fs_batch *await_batch(fs_engine *e, fs_decoder *dec, uint64_t seq)
{
    fs_batch *b = &e->ring[seq % e->ring_size];
    for (;;) {
        uint32_t seen = atomic_load(&e->gen);
        uint64_t st = atomic_load_explicit(&b->state, memory_order_acquire);
        if (is_at(st, seq, PH_ROUTED))
            return b;
        if (is_at(st, seq, PH_DECODED)) {
            try_route(e, b, st);
            continue;
        }
        if (is_at(st, seq, PH_FRAMED)) {
            try_decode(e, dec, b, st);
            continue;
        }
        if (help_decode(e, dec, seq + 1))
            continue;
        wait_change(e, seen);
    }
}

/* Returns true for the last worker to finish b, which recycles its slot. */
static bool release_batch(fs_engine *e, fs_batch *b)
{
    if (atomic_fetch_sub(&b->refs, 1) != 1)
        return false;
    atomic_fetch_sub(&e->bytes_in_flight, b->flight);
    uint64_t st = atomic_load(&b->state);
    atomic_store_explicit(&b->state, (st & ~PH_MASK) | PH_EMPTY, memory_order_release);
    notify(e);
    return true;
}

bool fs_engine_batch_ready(fs_engine *e)
{
    const fs_batch *b = &e->ring[e->next_seq % e->ring_size];
    return (atomic_load_explicit(&b->state, memory_order_acquire) & PH_MASK) == PH_EMPTY &&
           atomic_load(&e->bytes_in_flight) < e->flight_budget; /* batch_get's test */
}

/* Batches grown for a large message go back to the usual size once
 * released, or every slot of the ring would keep the largest message it
 * ever held. Not the batch published last: the source may still copy its
 * unframed tail (replay.c, carry_over). Source thread only: it owns the
 * buffers of released batches. */
static void shrink_released(fs_engine *e)
{
    for (uint32_t i = 0; i < e->ring_size; i++) {
        fs_batch *b = &e->ring[i];
        if (b->mem_cap <= FS_BATCH_BYTES ||
            (e->next_seq && b == &e->ring[(e->next_seq - 1) % e->ring_size]) ||
            (atomic_load_explicit(&b->state, memory_order_acquire) & PH_MASK) != PH_EMPTY)
            continue;
        free(b->mem);
        b->mem = fs_xmalloc(FS_BATCH_BYTES);
        b->mem_cap = FS_BATCH_BYTES;
    }
}

fs_batch *fs_engine_batch_get(fs_engine *e, fs_format format)
{
    fs_batch *b = &e->ring[e->next_seq % e->ring_size];
    for (;;) {
        uint32_t seen = atomic_load(&e->gen);
        if ((atomic_load_explicit(&b->state, memory_order_acquire) & PH_MASK) == PH_EMPTY &&
            atomic_load(&e->bytes_in_flight) < e->flight_budget)
            break;
        wait_change(e, seen);
    }
    shrink_released(e);
    b->n = 0;
    b->n_ctl = 0;
    b->n_restore = 0;
    b->n_partials = 0;
    b->checkpoint_id = 0;
    b->buf = b->mem;
    b->cap = b->mem_cap;
    b->len = 0;
    b->format = format;
    b->last = false;
    b->stop = false;
    b->framed = false;
    b->seq = e->next_seq;
    return b;
}

void fs_engine_batch_publish(fs_engine *e, fs_batch *b, bool last)
{
    b->last = last;
    b->published_ns = fs_now_ns();
    b->flight = b->len;
    atomic_fetch_add(&e->bytes_in_flight, b->flight);
    atomic_store(&b->refs, e->n_workers);
    atomic_store_explicit(&b->state, (b->seq << PH_BITS) | PH_FRAMED, memory_order_release);
    e->next_seq++;
    notify(e);
}

void fs_engine_batch_publish_stop(fs_engine *e, fs_batch *b)
{
    b->stop = true;
    fs_engine_batch_publish(e, b, true);
}

/* ---- threads ------------------------------------------------------------ */

static void on_step(void *ctx, uint32_t worker, fs_step *s)
{
    fs_engine *e = ctx;
    pthread_mutex_lock(&e->step_lock);
    step_queue *q = &e->queues[worker];
    if (q->tail)
        q->tail->next = s;
    else
        q->head = s;
    q->tail = s;
    pthread_cond_signal(&e->step_cond);
    pthread_mutex_unlock(&e->step_lock);
}

/* Worker 0 keeps copies of the batch's rejected messages; the sink thread
 * hands them to the output with the next step. */
static void keep_dead_letters(fs_worker *w, const fs_batch *b)
{
    for (uint32_t i = 0; i < b->n; i++) {
        if (b->status[i] == FS_OK || b->status[i] == FS_PARTIAL_MSG)
            continue;
        const char *value = b->buf + b->off[i];
        fs_dead_letter dl = {.value = value,
                             .value_len = b->msg_len[i],
                             .key = b->key_len[i] ? value + b->msg_len[i] : NULL,
                             .key_len = b->key_len[i],
                             .reason = (fs_reject)b->status[i],
                             .part = b->part[i],
                             .src_seq = b->seq};
        fs_worker_add_dead_letter(w, &dl);
    }
}

static void publish_snapshot(worker_thread *t, const fs_worker *w)
{
    uint32_t n = fs_worker_open_counts(w, &t->open_work, &t->cap_work);
    pthread_mutex_lock(&t->snap_lock);
    t->snap = w->stats;
    t->snap.windows_open = fs_worker_windows_held(w);
    t->snap.label_values = fs_worker_label_values(w);
    fs_open_count *p = t->open_snap;
    uint32_t cap = t->cap_snap;
    t->open_snap = t->open_work;
    t->cap_snap = t->cap_work;
    t->open_work = p;
    t->cap_work = cap;
    t->n_open = n;
    pthread_mutex_unlock(&t->snap_lock);
}

static void *worker_main(void *arg)
{
    worker_thread *t = arg;
    fs_engine *e = t->e;
    fs_worker *w = &e->workers[t->id];
    bool stop = false;
    fs_journey_table_thread_enter();
    for (uint64_t seq = 0;; seq++) {
        fs_batch *b = await_batch(e, t->dec, seq);
        w->src_seq = seq;
        w->src_ns = b->published_ns;
        if (t->id == 0 && e->out.dead_letter && b->route.n_valid < b->n)
            keep_dead_letters(w, b); /* before the batch's steps are cut */
        for (uint32_t i = 0; t->id == 0 && b->n_partials && i < b->n; i++)
            if (b->status[i] == FS_PARTIAL_MSG)
                fs_worker_add_partial(w, b->buf + b->off[i], b->msg_len[i]);
        fs_journey_table_read_lock();
        fs_route_head head = {b->ctl, b->n_ctl, b->restore, b->n_restore, b->buf, b->checkpoint_id};
        fs_worker_apply(w, &head, b->ev, b->type, b->status, b->part, b->n, &b->route);
        fs_journey_table_read_unlock();
        bool last = b->last;
        stop = b->stop;
        if (t->id == 0)
            atomic_fetch_add_explicit(&e->messages_done, b->n, memory_order_relaxed);
        publish_snapshot(t, w);
        if (release_batch(e, b))
            atomic_store_explicit(&e->batches_done, seq + 1, memory_order_release);
        if (last)
            break;
    }
    fs_journey_table_read_lock();
    if (stop)
        fs_worker_stop(w);
    else
        fs_worker_finish(w);
    fs_journey_table_read_unlock();
    fs_journey_table_thread_leave();
    struct timespec cpu;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) == 0)
        t->cpu_ns = (uint64_t)cpu.tv_sec * 1000000000u + (uint64_t)cpu.tv_nsec;
    return NULL;
}

static void *sink_main(void *arg)
{
    fs_engine *e = arg;
    fs_step **steps = fs_xcalloc(e->n_workers, sizeof(*steps));
    for (bool final = false; !final;) {
        pthread_mutex_lock(&e->step_lock);
        for (uint32_t w = 0; w < e->n_workers; w++) {
            step_queue *q = &e->queues[w];
            while (!q->head)
                pthread_cond_wait(&e->step_cond, &e->step_lock);
            steps[w] = q->head;
            q->head = q->head->next;
            if (!q->head)
                q->tail = NULL;
        }
        pthread_mutex_unlock(&e->step_lock);
        final = steps[0]->final;
        fs_sink_step(e->sink, steps);
    }
    free(steps);
    return NULL;
}

fs_engine *fs_engine_new(const fs_config *cfg, uint32_t threads, fs_output out)
{
    fs_engine *e = fs_xcalloc(1, sizeof(*e));
    e->cfg = cfg;
    e->n_workers = threads ? threads : 1;
    e->funnels = fs_funnels_compile(cfg);
    e->table = fs_journey_table_new(e->funnels->n, e->funnels->ext_bytes, e->n_workers, 1u << 16);
    uint32_t list_funnel[FS_MAX_FUNNELS], list_off[FS_MAX_FUNNELS], n_lists = 0;
    for (uint32_t f = 0; f < e->funnels->n; f++)
        if (e->funnels->funnel[f].ext_campaign != FS_EXT_NONE) {
            list_funnel[n_lists] = f;
            list_off[n_lists++] = e->funnels->funnel[f].ext_campaign;
        }
    fs_journey_table_set_lists(e->table, list_funnel, list_off, n_lists);
    if (!e->table) {
        fs_funnels_free(e->funnels);
        free(e);
        return NULL;
    }
    if (cfg->limit_policy != FS_LIMIT_NONE)
        fs_journey_table_set_limit(e->table, cfg->max_active_journeys);
    fs_router_init(&e->router, cfg, e->n_workers);
    /* A batch with rejections (or partials) ends with a step, which carries
     * its dead letters (partials) to the sink at once, whatever the
     * watermark does. */
    e->router.flush_rejected = out.dead_letter != NULL || out.partial != NULL;
    e->ring_size = cfg->in_flight_batches ? (uint32_t)cfg->in_flight_batches : 2 * e->n_workers + 4;
    e->flight_budget = (uint64_t)e->ring_size * FS_BATCH_BYTES;
    e->ring = fs_xcalloc(e->ring_size, sizeof(*e->ring));
    for (uint32_t i = 0; i < e->ring_size; i++)
        batch_init(&e->ring[i], e->n_workers);
    fs_xcheck(pthread_mutex_init(&e->step_lock, NULL), "pthread_mutex_init");
    fs_xcheck(pthread_cond_init(&e->step_cond, NULL), "pthread_cond_init");
    e->queues = fs_xcalloc(e->n_workers, sizeof(*e->queues));
    e->out = out;
    e->sink = fs_sink_new(cfg, e->funnels, e->n_workers, out);
    e->workers = fs_xcalloc(e->n_workers, sizeof(*e->workers));
    e->wt = fs_xcalloc(e->n_workers, sizeof(*e->wt));
    for (uint32_t i = 0; i < e->n_workers; i++) {
        fs_worker_init(&e->workers[i], i, e->n_workers, cfg, e->funnels, e->table, on_step, e);
        if (out.state)
            fs_snapshot_track(&e->workers[i]);
        e->wt[i] = (worker_thread){.e = e, .id = i, .dec = fs_decoder_new()};
        fs_xcheck(pthread_mutex_init(&e->wt[i].snap_lock, NULL), "pthread_mutex_init");
    }
    for (uint32_t i = 0; i < e->n_workers; i++)
        fs_xcheck(pthread_create(&e->wt[i].thread, NULL, worker_main, &e->wt[i]), "pthread_create");
    fs_xcheck(pthread_create(&e->sink_thread, NULL, sink_main, e), "pthread_create");
    return e;
}

void fs_engine_adopt_mapping(fs_engine *e, void *addr, size_t len)
{
    e->mappings = fs_xrealloc(e->mappings, (e->n_mappings + 1) * sizeof(*e->mappings));
    e->mappings[e->n_mappings].addr = addr;
    e->mappings[e->n_mappings++].len = len;
}

void fs_engine_join(fs_engine *e)
{
    if (e->joined)
        return;
    for (uint32_t i = 0; i < e->n_workers; i++)
        pthread_join(e->wt[i].thread, NULL);
    pthread_join(e->sink_thread, NULL);
    e->joined = true;
}

uint64_t fs_engine_messages_done(fs_engine *e)
{
    return atomic_load_explicit(&e->messages_done, memory_order_relaxed);
}

void fs_engine_reader_enter(void)
{
    fs_journey_table_thread_enter();
}

void fs_engine_reader_leave(void)
{
    fs_journey_table_thread_leave();
}

uint32_t fs_engine_read_journeys(fs_engine *e, const char *id, size_t len, fs_journey_view *out,
                                 uint32_t *owner)
{
    uint32_t n = fs_journey_table_read(e->table, fs_hash_customer(id, len), id, len, out, owner);
    for (uint32_t i = 0; i < n; i++) /* the table stores starts; expiry follows from the funnel */
        out[i].expiry_ts =
            fs_sat_add(out[i].start_ts, e->funnels->funnel[out[i].funnel].conversion_window_ms);
    return n;
}

const char *fs_engine_label(fs_engine *e, uint32_t owner, uint32_t id, uint32_t *len)
{
    return owner < e->n_workers ? fs_dict_name_shared(&e->workers[owner].labels, id, len) : NULL;
}

fs_merge_stats fs_engine_merge_stats(fs_engine *e)
{
    return fs_merge_get_stats(fs_sink_merge(e->sink));
}

uint32_t fs_engine_funnels(const fs_engine *e)
{
    return e->funnels->n;
}

uint64_t fs_engine_batches_done(fs_engine *e)
{
    return atomic_load_explicit(&e->batches_done, memory_order_acquire);
}

static fs_engine_stats sum_stats(fs_engine *e, const fs_worker_stats *ws)
{
    fs_engine_stats st = {0};
    st.valid = ws[0].events_valid;
    for (int r = 1; r < FS_REJECT_COUNT; r++) {
        st.rejected_by[r] = ws[0].rejected[r];
        st.rejected += st.rejected_by[r];
    }
    st.messages = st.valid + st.rejected;
    for (uint32_t i = 0; i < e->n_workers; i++) {
        st.late_events += ws[i].late_events;
        st.journeys_started += ws[i].journeys_started;
        st.journeys_completed += ws[i].journeys_completed;
        st.journeys_abandoned += ws[i].journeys_abandoned;
        st.journeys_excluded += ws[i].journeys_excluded;
        st.journeys_active += ws[i].journeys_active;
        st.journeys_active_peak += ws[i].journeys_active_peak;
        st.journeys_refused += ws[i].journeys_refused;
        st.journeys_evicted += ws[i].journeys_evicted;
        st.events_ignored += ws[i].events_ignored;
        st.label_values += ws[i].label_values;
    }
    for (uint32_t i = 0; i < e->n_workers; i++) /* workers hold windows they counted in */
        if (ws[i].windows_open > st.windows_open)
            st.windows_open = ws[i].windows_open;
    st.table_bytes = fs_journey_table_bytes(e->table);
    fs_sink_stats ss = fs_sink_get_stats(e->sink);
    st.flow_records = ss.flow_records;
    st.cohort_records = ss.cohort_records;
    st.write_errors = ss.write_errors;
    st.partials = ss.partials;
    st.partial_bytes = ss.partial_bytes;
    return st;
}

fs_engine_stats fs_engine_get_stats(fs_engine *e)
{
    fs_worker_stats *ws = fs_xmalloc(e->n_workers * sizeof(*ws));
    for (uint32_t i = 0; i < e->n_workers; i++) {
        ws[i] = e->workers[i].stats;
        ws[i].windows_open = fs_worker_windows_held(&e->workers[i]);
        ws[i].label_values = fs_worker_label_values(&e->workers[i]);
    }
    fs_engine_stats st = sum_stats(e, ws);
    for (uint32_t i = 0; e->joined && i < e->n_workers; i++) {
        st.worker_cpu_ns += e->wt[i].cpu_ns;
        if (e->wt[i].cpu_ns > st.worker_cpu_ns_max)
            st.worker_cpu_ns_max = e->wt[i].cpu_ns;
    }
    free(ws);
    return st;
}

fs_engine_stats fs_engine_live_stats(fs_engine *e)
{
    fs_worker_stats *ws = fs_xmalloc(e->n_workers * sizeof(*ws));
    for (uint32_t i = 0; i < e->n_workers; i++) {
        pthread_mutex_lock(&e->wt[i].snap_lock);
        ws[i] = e->wt[i].snap;
        pthread_mutex_unlock(&e->wt[i].snap_lock);
    }
    fs_engine_stats st = sum_stats(e, ws);
    free(ws);
    return st;
}

static int cmp_open(const void *a, const void *b)
{
    const fs_open_count *x = a, *y = b;
    if (x->funnel != y->funnel)
        return x->funnel < y->funnel ? -1 : 1;
    return (x->start > y->start) - (x->start < y->start);
}

/* Sums entries of equal (funnel, start) of a sorted array in place. */
static uint32_t merge_open(fs_open_count *o, uint32_t n)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (k && o[k - 1].funnel == o[i].funnel && o[k - 1].start == o[i].start) {
            fs_open_count *into = &o[k - 1];
            into->completed += o[i].completed;
            for (uint32_t s = 0; s < into->n_stages; s++) {
                into->entered[s] += o[i].entered[s];
                into->reached[s] += o[i].reached[s];
            }
        } else if (k++ != i) {
            o[k - 1] = o[i];
        }
    }
    return k;
}

/* Appends to all[*n..] the counts of pane `p` for each window holding it
 * that is open at its watermark (a window closed for its partition but not
 * emitted yet: itself). */
static fs_open_count *pane_windows(const fs_window_spec *win, const fs_open_count *p,
                                   fs_open_count *all, uint32_t *n)
{
    all = fs_xrealloc(all, (*n + win->per_time + 1) * sizeof(*all));
    if (p->is_window) {
        all[(*n)++] = *p;
        return all;
    }
    int64_t wm = p->wm, start;
    for (uint32_t k = 0; k < win->per_time && fs_window_kth_start(win, p->start, k, &start); k++) {
        if (fs_window_is_closed(win, start, wm))
            break; /* earlier windows end earlier */
        all[*n] = *p;
        all[(*n)++].start = start;
    }
    return all;
}

uint32_t fs_engine_open_counts(fs_engine *e, fs_open_count **out)
{
    fs_open_count *all = NULL;
    uint32_t n = 0;
    fs_window_spec win = e->workers[0].win;
    for (uint32_t i = 0; i < e->n_workers; i++) {
        worker_thread *t = &e->wt[i];
        pthread_mutex_lock(&t->snap_lock);
        for (uint32_t k = 0; k < t->n_open; k++)
            all = pane_windows(&win, &t->open_snap[k], all, &n);
        pthread_mutex_unlock(&t->snap_lock);
    }
    all = fs_xrealloc(all, (n + 1) * sizeof(*all));
    if (n > 1)
        qsort(all, n, sizeof(*all), cmp_open);
    *out = all;
    return merge_open(all, n);
}

bool fs_engine_restore_error(fs_engine *e, char *err, size_t err_len)
{
    for (uint32_t i = 0; i < e->n_workers; i++) {
        const fs_worker_track *t = e->workers[i].track;
        /* written by worker i before it released the batch; the caller saw
         * batches_done (an acquire) pass it */
        if (t && t->failed) {
            snprintf(err, err_len, "%s", t->error);
            return true;
        }
    }
    return false;
}

void fs_engine_free(fs_engine *e)
{
    if (!e)
        return;
    fs_engine_join(e);
    for (uint32_t i = 0; i < e->n_workers; i++) {
        fs_snapshot_untrack(&e->workers[i]);
        fs_worker_destroy(&e->workers[i]);
        fs_decoder_free(e->wt[i].dec);
        pthread_mutex_destroy(&e->wt[i].snap_lock);
        free(e->wt[i].open_snap);
        free(e->wt[i].open_work);
    }
    fs_sink_free(e->sink);
    fs_router_destroy(&e->router);
    fs_journey_table_free(e->table);
    for (uint32_t i = 0; i < e->ring_size; i++)
        batch_destroy(&e->ring[i], e->n_workers);
    free(e->ring);
    free(e->queues);
    free(e->workers);
    free(e->wt);
    pthread_mutex_destroy(&e->step_lock);
    pthread_cond_destroy(&e->step_cond);
    fs_funnels_free(e->funnels);
    for (uint32_t i = 0; i < e->n_mappings; i++)
        munmap(e->mappings[i].addr, e->mappings[i].len);
    free(e->mappings);
    free(e);
}
