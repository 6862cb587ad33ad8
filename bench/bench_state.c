/* bench_state.c -- the state topic's cost: bytes per active journey and
 * restore time (issue 11).
 *
 *   bench_state CONFIG FILE.msgpack [THREADS]
 *
 * Runs the engine over a MessagePack replay file as one partition, writes
 * one checkpoint after the last event (before the end of input closes
 * anything), and keeps the state records in memory, compacted (the last per
 * key, as the topic keeps them). Then a new engine restores them and the
 * time until it has taken them up is the restore time. Prints the active
 * journeys, the state records and bytes (keys included), bytes per active
 * journey, and the seconds of the checkpoint and of the restore.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "engine.h"
#include "frame.h"
#include "util.h"

typedef struct rec {
    char *key, *value;
    uint32_t key_len, value_len;
} rec;

typedef struct store {
    rec *v;
    size_t n, cap;
    uint64_t checkpoint_ns; /* when the checkpoint's step was done */
} store;

static int ignore_record(void *ctx, const char *k, size_t kl, const char *v, size_t vl)
{
    (void)ctx, (void)k, (void)kl, (void)v, (void)vl;
    return 0;
}

static int keep_state(void *ctx, uint32_t part, const char *key, size_t key_len, const char *value,
                      size_t value_len)
{
    (void)part;
    store *s = ctx;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1 << 16;
        s->v = fs_xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    rec *r = &s->v[s->n++];
    r->key = fs_xmalloc(key_len + 1);
    memcpy(r->key, key, key_len);
    r->key_len = (uint32_t)key_len;
    r->value = value ? fs_xmalloc(value_len + 1) : NULL;
    if (value)
        memcpy(r->value, value, value_len);
    r->value_len = (uint32_t)value_len;
    return 0;
}

static void on_step(void *ctx, const fs_step_info *info)
{
    store *s = ctx;
    if (info->checkpoint)
        s->checkpoint_ns = fs_now_ns();
}

/* One checkpoint of a run that started empty holds each key once. */
static void run(const fs_config *cfg, uint32_t threads, const char *p, size_t len, store *st)
{
    fs_output out = {.write = ignore_record,
                     .ctx = st,
                     .format = FS_FORMAT_JSON,
                     .step_done = on_step,
                     .state = keep_state};
    fs_engine *e = fs_engine_new(cfg, threads, out);
    size_t off = 0;
    while (off < len) {
        fs_batch *b = fs_engine_batch_get(e, FS_FORMAT_MSGPACK);
        while (off < len && !fs_batch_full(b)) {
            size_t m;
            if (fs_frame_msgpack(p + off, len - off, &m) != FS_FRAME_OK) {
                off = len;
                break;
            }
            fs_batch_reserve(b, m);
            memcpy(b->buf + b->len, p + off, m);
            fs_batch_add(b, (uint32_t)b->len, (uint32_t)m, FS_OK);
            b->len += m;
            off += m;
        }
        fs_engine_batch_publish(e, b, false);
    }
    uint64_t t0 = fs_now_ns();
    fs_batch *ck = fs_engine_batch_get(e, FS_FORMAT_MSGPACK);
    fs_batch_add_ctl(ck, 0, FS_PART_CHECKPOINT);
    uint64_t seq = ck->seq;
    fs_engine_batch_publish(e, ck, false);
    while (fs_engine_batches_done(e) <= seq)
        ; /* a benchmark: spin until the workers are through the checkpoint */
    fs_engine_stats stats = fs_engine_live_stats(e);
    fs_engine_batch_publish(e, fs_engine_batch_get(e, FS_FORMAT_MSGPACK), true);
    fs_engine_join(e);
    uint64_t bytes = 0, customers = 0;
    for (size_t i = 0; i < st->n; i++) {
        bytes += st->v[i].key_len + st->v[i].value_len;
        customers += st->v[i].key[0] == 'c';
    }
    printf("active_journeys_at_checkpoint=%llu customers=%llu state_records=%zu state_bytes=%llu "
           "bytes_per_journey=%.1f checkpoint_s=%.3f\n",
           (unsigned long long)stats.journeys_active, (unsigned long long)customers, st->n,
           (unsigned long long)bytes,
           stats.journeys_active ? (double)bytes / stats.journeys_active : 0,
           (double)(st->checkpoint_ns - t0) / 1e9);
    fs_engine_free(e);
}

static void restore(const fs_config *cfg, uint32_t threads, const store *st)
{
    store ignore = {0};
    fs_output out = {
        .write = ignore_record, .ctx = &ignore, .format = FS_FORMAT_JSON, .state = keep_state};
    fs_engine *e = fs_engine_new(cfg, threads, out);
    uint64_t t0 = fs_now_ns();
    fs_batch *b = fs_engine_batch_get(e, FS_FORMAT_MSGPACK);
    fs_batch_add_ctl(b, 0, FS_PART_ASSIGN);
    for (size_t i = 0; i < st->n; i++)
        fs_batch_add_restore(b, 0, st->v[i].key, st->v[i].key_len, st->v[i].value,
                             st->v[i].value_len);
    uint64_t seq = b->seq;
    fs_engine_batch_publish(e, b, false);
    while (fs_engine_batches_done(e) <= seq)
        ; /* a benchmark: spin until the workers have taken it up */
    double secs = (double)(fs_now_ns() - t0) / 1e9;
    char err[256];
    if (fs_engine_restore_error(e, err, sizeof err))
        printf("restore error: %s\n", err);
    fs_engine_stats live = fs_engine_live_stats(e);
    printf("restored_journeys=%llu restore_s=%.3f\n", (unsigned long long)live.journeys_active,
           secs);
    fs_engine_batch_publish_stop(e, fs_engine_batch_get(e, FS_FORMAT_MSGPACK));
    fs_engine_join(e);
    fs_engine_free(e);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s CONFIG FILE.msgpack [THREADS]\n", argv[0]);
        return 2;
    }
    char err[512];
    fs_config *cfg = fs_config_load(argv[1], err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    uint32_t threads = argc > 3 ? (uint32_t)atoi(argv[3]) : 2;
    int fd = open(argv[2], O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        perror(argv[2]);
        return 1;
    }
    const char *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    store st = {0};
    run(cfg, threads, p, (size_t)sb.st_size, &st);
    restore(cfg, threads, &st);
    for (size_t i = 0; i < st.n; i++) {
        free(st.v[i].key);
        free(st.v[i].value);
    }
    free(st.v);
    munmap((void *)p, (size_t)sb.st_size);
    close(fd);
    fs_config_free(cfg);
    return 0;
}
