/* bench_table.c -- the journey store (src/core/journey_table.c, "oa") on its own.
 *
 * Until issue 10 this compared the open-addressing table with the former
 * cds_lfht one (bench/table_lfht.c); that table stored journeys behind
 * pointers and could not follow the store to inline records, so it was
 * dropped: its figures stay in bench/RESULTS.md. What remains measures the
 * store's insert, lookup and mixed throughput and its memory per customer.
 *
 * The workload imitates the engine: customers "c0000000".."c9999999" hashed
 * with fs_hash_customer, routed to writer threads with fs_worker_owner, each
 * writer touching only its own customers inside read sections of BATCH
 * operations (the engine holds the read lock per batch), and every live
 * entry holding one active journey (inline in its record, as the worker does).
 *
 * One run (--run) does, with `keys` live customers and keys/8 spare ones:
 *   a. insert:  every writer inserts its share of the keys (+ a journey each);
 *      lookup:  every writer looks all of its keys up again, in random order;
 *      memory:  RSS and malloc'd bytes grown over (a), divided by `keys`;
 *   b. mix:     the steady state of a stream: 90 % lookup-hit + journey
 *      update, 5 % insert of an absent customer, 5 % delete of a live one,
 *      keys chosen uniformly, then again with Zipf(s=1) popularity.
 * With --reader, one more thread does random lookups (hits and misses) in
 * read sections of BATCH lookups from the first insert to the end of (b).
 * Every operation's stream is generated before timing starts, so all tables
 * replay exactly the same operations; every result is checked (a hit must
 * hit, an insert must miss first, the final count), and the reader checks
 * that keys present throughout its lookup are found (see shared.life); the
 * run fails on any mismatch. --collide makes every key share one home slot
 * or bucket, a stress test for those checks.
 *
 * Table: "oa" (the engine's code and size hint). Throughput is reported per wall-clock second and
 * per writer CPU-second (robust when other processes share the cores).
 *
 * --suite runs every configuration --runs times, each in a fresh process
 * (so RSS is not polluted by earlier runs), tables interleaved, and prints
 * markdown tables of medians. See bench/RESULTS.md.
 */
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "funnel.h"
#include "journey_table.h"
#include "util.h"
#include "worker.h"

#define N_FUNNELS   3   /* as configs/default.yaml */
#define BATCH       256 /* operations per read section */
#define ID_MAX      10  /* "c" + 9 digits */
#define MAX_WRITERS 8

/* ---- the two tables behind one interface --------------------------------- */

typedef struct table_ops {
    const char *name;
    bool presized; /* created with the run's key count as its size hint */
    void *(*create)(uint32_t n_funnels, uint32_t n_owners, size_t hint);
    void (*destroy)(void *t);
    fs_customer *(*find)(void *t, uint64_t hash, const char *id, size_t len, uint32_t *idx);
    fs_customer *(*insert)(void *t, uint64_t hash, const char *id, size_t len, uint32_t *idx);
    void (*remove)(void *t, fs_customer *c, uint32_t idx);
    size_t (*count)(void *t);
    void (*enter)(void);
    void (*leave)(void);
    void (*lock)(void);
    void (*unlock)(void);
} table_ops;

static void *oa_create(uint32_t n_funnels, uint32_t n_owners, size_t hint)
{
    return fs_journey_table_new(n_funnels, 0, n_owners, hint);
}
static void oa_destroy(void *t)
{
    fs_journey_table_free(t);
}
static fs_customer *oa_find(void *t, uint64_t hash, const char *id, size_t len, uint32_t *idx)
{
    return fs_journey_table_find(t, hash, id, len, idx);
}
static fs_customer *oa_insert(void *t, uint64_t hash, const char *id, size_t len, uint32_t *idx)
{
    return fs_journey_table_insert(t, hash, id, len, 0, idx);
}
static void oa_remove(void *t, fs_customer *c, uint32_t idx)
{
    fs_journey_table_remove(t, c, idx);
}
static size_t oa_count(void *t)
{
    return fs_journey_table_count(t);
}

/* The engine's fixed size hint (1 << 16): the table grows. */
#define ENGINE_HINT (1u << 16)
#define N_TABLES    1
static const table_ops tables[N_TABLES] = {
    {"oa", false, oa_create, oa_destroy, oa_find, oa_insert, oa_remove, oa_count,
     fs_journey_table_thread_enter, fs_journey_table_thread_leave, fs_journey_table_read_lock,
     fs_journey_table_read_unlock},
};

/* ---- keys and operation streams -------------------------------------------- */

enum op_kind { OP_INSERT_NEW, OP_LOOKUP, OP_UPDATE, OP_INSERT, OP_DELETE };

typedef struct op {
    uint64_t hash;
    uint32_t key;
    uint32_t kind;
} op;

typedef struct stream {
    op *ops;
    size_t n;
} stream;

enum { PH_INSERT, PH_LOOKUP, PH_MIX_UNIFORM, PH_MIX_ZIPF, N_PHASES };

/* A key's customer id: "c" + 7 digits of the key, or with --collide "c" + 9
 * digits of id_number[key]. Set before any thread starts. */
static const uint32_t *id_number;
static size_t id_len = 8;

static void format_id(uint32_t key, char *id)
{
    uint32_t n = id_number ? id_number[key] : key;
    id[0] = 'c';
    for (size_t i = id_len - 1; i >= 1; i--, n /= 10)
        id[i] = (char)('0' + n % 10);
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t below(uint64_t *s, size_t n)
{
    return (size_t)((splitmix(s) >> 11) % n);
}

/* Rank in [0, n) with P(r) proportional to 1/(r+1): the inverse CDF of the
 * continuous Zipf(1) density, close enough for a popularity skew. */
static size_t zipf_rank(uint64_t *s, size_t n)
{
    double u = (double)(splitmix(s) >> 11) / 9007199254740992.0;
    size_t r = (size_t)exp(u * log((double)n + 1.0)) - 1;
    return r < n ? r : n - 1;
}

static void shuffle(uint32_t *v, size_t n, uint64_t *s)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = below(s, i);
        uint32_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* One writer's live and absent customers, for generating the mix. */
typedef struct sim {
    uint32_t *live, *absent;
    size_t n_live, n_absent;
} sim;

static void gen_mix(stream *st, sim *sm, size_t n, bool zipf, const uint64_t *hash, uint64_t *rng)
{
    st->ops = fs_xmalloc(n * sizeof(op));
    st->n = n;
    for (size_t i = 0; i < n; i++) {
        unsigned r = (unsigned)below(rng, 100);
        uint32_t key, kind;
        if (r >= 95 && sm->n_live > 1) {
            size_t p = below(rng, sm->n_live);
            key = sm->live[p];
            sm->live[p] = sm->live[--sm->n_live];
            sm->absent[sm->n_absent++] = key;
            kind = OP_DELETE;
        } else if (r >= 90 && sm->n_absent > 0) {
            size_t p = below(rng, sm->n_absent);
            key = sm->absent[p];
            sm->absent[p] = sm->absent[--sm->n_absent];
            sm->live[sm->n_live++] = key;
            kind = OP_INSERT;
        } else {
            size_t p = zipf ? zipf_rank(rng, sm->n_live) : below(rng, sm->n_live);
            key = sm->live[p];
            kind = OP_UPDATE;
        }
        st->ops[i] = (op){hash[key], key, kind};
    }
}

static void gen_list(stream *st, const uint32_t *keys, size_t n, uint32_t kind,
                     const uint64_t *hash)
{
    st->ops = fs_xmalloc((n ? n : 1) * sizeof(op));
    st->n = n;
    for (size_t i = 0; i < n; i++)
        st->ops[i] = (op){hash[keys[i]], keys[i], kind};
}

/* ---- one run ----------------------------------------------------------------- */

typedef struct run_cfg {
    const table_ops *tbl;
    size_t keys;
    uint32_t writers;
    bool reader;
    size_t mix_ops; /* per mix phase, all writers together */
    uint64_t seed;
    unsigned collide; /* 0, or: every key's hash has this many low bits zero */
    size_t hint;      /* size hint of tables not presized */
    bool no_free;     /* leave the table to process exit */
} run_cfg;

typedef struct writer writer;

typedef struct shared {
    const run_cfg *cfg;
    void *table;
    const uint64_t *hash; /* hash[key] for the whole universe */
    size_t universe;
    /* life[key]: odd while the key is in the table; the owner bumps it after
     * inserting and before removing, so a reader that sees the same odd
     * value before and after a lookup knows the key was present throughout */
    atomic_uint *life;
    pthread_barrier_t barrier;
    atomic_bool stop_reader;
} shared;

struct writer {
    shared *sh;
    stream phase[N_PHASES];
    uint64_t t0[N_PHASES], t1[N_PHASES], cpu[N_PHASES];
    uint64_t errors;
    pthread_t tid;
};

typedef struct reader {
    shared *sh;
    uint64_t lookups, hits, checked, errors, ns;
    pthread_t tid;
} reader;

/* Owner only: the next value of a key's life count (see shared). */
static void bump_life(shared *sh, uint32_t key, memory_order mo)
{
    unsigned v = atomic_load_explicit(&sh->life[key], memory_order_relaxed);
    atomic_store_explicit(&sh->life[key], v + 1, mo);
}

static bool apply(shared *sh, const op *o)
{
    const table_ops *tb = sh->cfg->tbl;
    void *t = sh->table;
    uint32_t owner = fs_journey_table_owner(o->hash, sh->cfg->writers), idx = 0;
    char id[ID_MAX];
    format_id(o->key, id);
    fs_customer *c = o->kind == OP_INSERT_NEW ? NULL : tb->find(t, o->hash, id, id_len, &idx);
    fs_journey *j = c ? &c->journey[0] : NULL;
    switch (o->kind) {
    case OP_INSERT_NEW:
    case OP_INSERT:
        if (c)
            return false;
        c = tb->insert(t, o->hash, id, id_len, &idx);
        fs_customer_write_begin(c);
        fs_journey_init(&c->journey[0], (int64_t)o->key, 0, o->key & 3);
        c->n_active = 1;
        fs_customer_write_end(c);
        bump_life(sh, o->key, memory_order_release); /* after the insert */
        return true;
    case OP_LOOKUP:
        return j && j->active;
    case OP_UPDATE:
        if (!j || !j->active)
            return false;
        fs_customer_write_begin(c);
        fs_journey_table_touch(t, owner, j, (uint32_t)(o->hash >> 62));
        if (j->max_stage < 3)
            fs_journey_set_stage(j, j->max_stage + 1u);
        fs_customer_write_end(c);
        return true;
    case OP_DELETE:
        if (!j || !j->active)
            return false;
        fs_customer_write_begin(c);
        fs_journey_table_end(t, owner, j);
        c->n_active = 0;
        fs_customer_write_end(c);
        bump_life(sh, o->key, memory_order_seq_cst); /* before the removal */
        tb->remove(t, c, idx);
        return true;
    }
    return false;
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    const table_ops *tb = w->sh->cfg->tbl;
    tb->enter();
    for (int p = 0; p < N_PHASES; p++) {
        pthread_barrier_wait(&w->sh->barrier);
        w->t0[p] = fs_now_ns();
        uint64_t cpu0 = thread_cpu_ns();
        const stream *st = &w->phase[p];
        tb->lock();
        for (size_t i = 0; i < st->n; i++) {
            if (i % BATCH == BATCH - 1) {
                tb->unlock();
                tb->lock();
            }
            if (!apply(w->sh, &st->ops[i]))
                w->errors++;
        }
        tb->unlock();
        w->t1[p] = fs_now_ns();
        w->cpu[p] = thread_cpu_ns() - cpu0;
        pthread_barrier_wait(&w->sh->barrier);
    }
    tb->leave();
    return NULL;
}

/* Random lookups of the whole universe (hits and misses). A key whose life
 * count is odd and unchanged across the lookup must hit: that checks that no
 * concurrent insert, removal or resize hides a present entry. */
static void *reader_main(void *arg)
{
    reader *r = arg;
    shared *sh = r->sh;
    const table_ops *tb = sh->cfg->tbl;
    uint64_t rng = sh->cfg->seed ^ 0x5eed;
    char id[ID_MAX];
    tb->enter();
    uint64_t start = fs_now_ns();
    while (!atomic_load_explicit(&sh->stop_reader, memory_order_relaxed)) {
        tb->lock();
        for (int i = 0; i < BATCH; i++) {
            uint32_t key = (uint32_t)below(&rng, sh->universe);
            unsigned life = atomic_load_explicit(&sh->life[key], memory_order_acquire);
            format_id(key, id);
            fs_journey_view v[N_FUNNELS];
            uint32_t owner;
            uint32_t n = fs_journey_table_read(sh->table, sh->hash[key], id, id_len, v, &owner);
            if (n) {
                r->hits++;
                if (n != 1 || v[0].start_ts != key) /* the copy is the key's own journey */
                    r->errors++;
            }
            if ((life & 1) && atomic_load_explicit(&sh->life[key], memory_order_acquire) == life) {
                r->checked++;
                if (!n)
                    r->errors++;
            }
        }
        tb->unlock();
        r->lookups += BATCH;
    }
    r->ns = fs_now_ns() - start;
    tb->leave();
    return NULL;
}

static size_t rss_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (size_t)sysconf(_SC_PAGESIZE);
}

static size_t heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* A run's figures, by name: the result line is logfmt of these. */
enum {
    M_INSERT,
    M_LOOKUP,
    M_MIX_UNIFORM,
    M_MIX_ZIPF,
    M_INSERT_CPU,
    M_LOOKUP_CPU,
    M_MIX_UNIFORM_CPU,
    M_MIX_ZIPF_CPU,
    M_READER,
    M_RSS,
    M_HEAP,
    M_CHECKED,
    M_ERRORS,
    N_METRICS
};
static const char *const metric_names[N_METRICS] = {
    "insert_mops",     "lookup_mops",         "mix_uniform_mops",     "mix_zipf_mops",
    "insert_mops_cpu", "lookup_mops_cpu",     "mix_uniform_mops_cpu", "mix_zipf_mops_cpu",
    "reader_mops",     "rss_bytes_per_entry", "heap_bytes_per_entry", "reader_checked",
    "errors"};

typedef struct run_result {
    double m[N_METRICS];
} run_result;

/* Splits the universe by owner and generates every writer's streams. */
static void generate(writer *w, const run_cfg *cfg, const uint64_t *hash, size_t universe)
{
    uint32_t **own = fs_xcalloc(cfg->writers, sizeof(*own));
    size_t *n_own = fs_xcalloc(cfg->writers, sizeof(*n_own));
    size_t *n_live = fs_xcalloc(cfg->writers, sizeof(*n_live));
    for (uint32_t i = 0; i < cfg->writers; i++)
        own[i] = fs_xmalloc(universe * sizeof(uint32_t) / cfg->writers + 1024 * 1024);
    for (size_t k = 0; k < universe; k++) {
        uint32_t o = fs_worker_owner(hash[k], cfg->writers);
        own[o][n_own[o]++] = (uint32_t)k;
        if (k < cfg->keys)
            n_live[o]++;
    }
    for (uint32_t i = 0; i < cfg->writers; i++) {
        uint64_t rng = cfg->seed * 1000003u + i;
        /* keys ascend, so the first n_live of own[i] are the live ones */
        gen_list(&w[i].phase[PH_INSERT], own[i], n_live[i], OP_INSERT_NEW, hash);
        uint32_t *order = fs_xmalloc((n_live[i] + 1) * sizeof(uint32_t));
        memcpy(order, own[i], n_live[i] * sizeof(uint32_t));
        shuffle(order, n_live[i], &rng);
        gen_list(&w[i].phase[PH_LOOKUP], order, n_live[i], OP_LOOKUP, hash);
        free(order);
        sim sm = {own[i], fs_xmalloc((n_own[i] + 1) * sizeof(uint32_t)), n_live[i], 0};
        for (size_t k = n_live[i]; k < n_own[i]; k++)
            sm.absent[sm.n_absent++] = own[i][k];
        size_t per = cfg->mix_ops / cfg->writers;
        gen_mix(&w[i].phase[PH_MIX_UNIFORM], &sm, per, false, hash, &rng);
        gen_mix(&w[i].phase[PH_MIX_ZIPF], &sm, per, true, hash, &rng);
        n_live[i] = sm.n_live;
        free(sm.absent);
        free(own[i]);
    }
    free(own);
    free(n_own);
    free(n_live);
}

/* Wall clock: all writers' operations over the phase's span. */
static double phase_mops(const writer *w, uint32_t n, int p)
{
    uint64_t t0 = UINT64_MAX, t1 = 0;
    size_t ops = 0;
    for (uint32_t i = 0; i < n; i++) {
        t0 = w[i].t0[p] < t0 ? w[i].t0[p] : t0;
        t1 = w[i].t1[p] > t1 ? w[i].t1[p] : t1;
        ops += w[i].phase[p].n;
    }
    return t1 > t0 ? (double)ops * 1e3 / (double)(t1 - t0) : 0;
}

/* CPU time: operations per second of writer CPU, times the writer count, so
 * it equals the wall figure on an idle machine with a core per writer and
 * stays meaningful when other processes steal the cores. */
static double phase_mops_cpu(const writer *w, uint32_t n, int p)
{
    uint64_t cpu = 0;
    size_t ops = 0;
    for (uint32_t i = 0; i < n; i++) {
        cpu += w[i].cpu[p];
        ops += w[i].phase[p].n;
    }
    return cpu ? (double)ops * 1e3 * n / (double)cpu : 0;
}

static size_t expected_live(const writer *w, uint32_t n)
{
    /* inserts minus deletes of the mix, on top of the inserted keys */
    size_t live = 0;
    for (uint32_t i = 0; i < n; i++) {
        live += w[i].phase[PH_INSERT].n;
        for (int p = PH_MIX_UNIFORM; p <= PH_MIX_ZIPF; p++)
            for (size_t k = 0; k < w[i].phase[p].n; k++)
                live += (w[i].phase[p].ops[k].kind == OP_INSERT) -
                        (w[i].phase[p].ops[k].kind == OP_DELETE);
    }
    return live;
}

/* The first n numbers whose id "c%09u" hashes to a value with its low `bits`
 * bits zero: one home slot or bucket for every key, in either table, while
 * it has at most 2^bits of them -- a worst case for probing and removal. */
static uint32_t *collide_ids(unsigned bits, size_t n)
{
    uint32_t *v = fs_xmalloc(n * sizeof(uint32_t));
    uint64_t mask = (1ull << bits) - 1;
    const uint32_t *saved = id_number;
    size_t found = 0;
    char id[ID_MAX];
    id_number = NULL;
    id_len = 10;
    for (uint32_t x = 0; found < n && x < 1000000000u; x++) {
        format_id(x, id);
        if ((fs_hash_customer(id, id_len) & mask) == 0)
            v[found++] = x;
    }
    id_number = saved;
    if (found < n) {
        fprintf(stderr, "bench_table: only %zu ids collide in %u bits\n", found, bits);
        exit(2);
    }
    return v;
}

static run_result run_once(const run_cfg *cfg)
{
    run_result res = {0};
    shared sh = {.cfg = cfg, .universe = cfg->keys + cfg->keys / 8};
    uint64_t *hash = fs_xmalloc(sh.universe * sizeof(uint64_t));
    uint32_t *numbers = cfg->collide ? collide_ids(cfg->collide, sh.universe) : NULL;
    id_number = numbers;
    id_len = numbers ? 10 : 8;
    char id[ID_MAX];
    for (size_t k = 0; k < sh.universe; k++) {
        format_id((uint32_t)k, id);
        hash[k] = fs_hash_customer(id, id_len);
    }
    sh.hash = hash;
    writer w[MAX_WRITERS] = {0};
    generate(w, cfg, hash, sh.universe);
    sh.life = fs_xcalloc(sh.universe, sizeof(atomic_uint));
    memset(sh.life, 0, sh.universe * sizeof(atomic_uint)); /* touched before the RSS baseline */
    /* as the engine: a fixed hint, the table grows with the customers */
    size_t rss0 = rss_bytes(), heap0 = heap_bytes();
    sh.table =
        cfg->tbl->create(N_FUNNELS, cfg->writers, cfg->tbl->presized ? cfg->keys : cfg->hint);
    pthread_barrier_init(&sh.barrier, NULL, cfg->writers + 1);

    reader rd = {.sh = &sh};
    if (cfg->reader)
        pthread_create(&rd.tid, NULL, reader_main, &rd);
    for (uint32_t i = 0; i < cfg->writers; i++) {
        w[i].sh = &sh;
        pthread_create(&w[i].tid, NULL, writer_main, &w[i]);
    }
    for (int p = 0; p < N_PHASES; p++) {
        pthread_barrier_wait(&sh.barrier); /* start */
        pthread_barrier_wait(&sh.barrier); /* end */
        if (p == PH_LOOKUP) {
            res.m[M_RSS] = ((double)rss_bytes() - (double)rss0) / (double)cfg->keys;
            res.m[M_HEAP] = ((double)heap_bytes() - (double)heap0) / (double)cfg->keys;
        }
    }
    uint64_t errors = 0;
    for (uint32_t i = 0; i < cfg->writers; i++) {
        pthread_join(w[i].tid, NULL);
        errors += w[i].errors;
    }
    atomic_store(&sh.stop_reader, true);
    if (cfg->reader) {
        pthread_join(rd.tid, NULL);
        errors += rd.errors;
        if (rd.errors)
            fprintf(stderr, "bench_table: reader: %llu errors in %llu checked lookups\n",
                    (unsigned long long)rd.errors, (unsigned long long)rd.checked);
        res.m[M_CHECKED] = (double)rd.checked;
        res.m[M_READER] = rd.ns ? (double)rd.lookups * 1e3 / (double)rd.ns : 0;
    }
    for (int p = 0; p < N_PHASES; p++) {
        res.m[M_INSERT + p] = phase_mops(w, cfg->writers, p);
        res.m[M_INSERT_CPU + p] = phase_mops_cpu(w, cfg->writers, p);
    }
    size_t want = expected_live(w, cfg->writers), got = cfg->tbl->count(sh.table);
    if (want != got) {
        fprintf(stderr, "bench_table: %s holds %zu entries, expected %zu\n", cfg->tbl->name, got,
                want);
        errors++;
    }
    res.m[M_ERRORS] = (double)errors;
    /* --no-free: the suite's children exit right away */
    if (!cfg->no_free)
        cfg->tbl->destroy(sh.table);
    pthread_barrier_destroy(&sh.barrier);
    for (uint32_t i = 0; i < cfg->writers; i++)
        for (int p = 0; p < N_PHASES; p++)
            free(w[i].phase[p].ops);
    free(sh.life);
    free(numbers);
    free(hash);
    return res;
}

static void print_result(const run_cfg *cfg, const run_result *r)
{
    printf("table=%s keys=%zu writers=%u reader=%d", cfg->tbl->name, cfg->keys, cfg->writers,
           cfg->reader);
    for (int m = 0; m < N_METRICS; m++)
        printf(" %s=%.*f", metric_names[m], m >= M_CHECKED ? 0 : m >= M_RSS ? 1 : 3, r->m[m]);
    printf("\n");
}

static bool parse_result(char *line, run_result *r)
{
    int found = 0;
    for (char *tok = strtok(line, " \n"); tok; tok = strtok(NULL, " \n")) {
        char *eq = strchr(tok, '=');
        if (!eq)
            continue;
        *eq = '\0';
        for (int m = 0; m < N_METRICS; m++)
            if (strcmp(tok, metric_names[m]) == 0) {
                r->m[m] = strtod(eq + 1, NULL);
                found++;
            }
    }
    return found == N_METRICS;
}

/* ---- the suite ------------------------------------------------------------------ */

#define MAX_RUNS 9

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static bool run_child(const char *exe, const run_cfg *cfg, run_result *r)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd),
             "'%s' --run --no-free --table %s --keys %zu --writers %u%s --mix-ops %zu --seed %llu",
             exe, cfg->tbl->name, cfg->keys, cfg->writers, cfg->reader ? " --reader" : "",
             cfg->mix_ops, (unsigned long long)cfg->seed);
    FILE *p = popen(cmd, "r");
    if (!p)
        return false;
    char line[1024];
    bool ok = false;
    while (fgets(line, sizeof(line), p))
        if (strncmp(line, "table=", 6) == 0) {
            fputs(line, stderr); /* every run's figures, for the record */
            ok = parse_result(line, r);
        }
    return pclose(p) == 0 && ok && r->m[M_ERRORS] == 0;
}

static void table_header(const char *unit)
{
    printf("\n| N keys | writers | reader | table | insert %s | lookup %s | mix uniform %s | mix "
           "zipf %s | reader Mops/s | RSS B/entry | heap B/entry |\n",
           unit, unit, unit, unit);
    printf("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
}

static void table_row(const run_cfg *cfg, const double *med, int first)
{
    char rcol[32] = "-";
    if (cfg->reader)
        snprintf(rcol, sizeof(rcol), "%.2f", med[M_READER]);
    printf("| %zu | %u | %s | %s | %.2f | %.2f | %.2f | %.2f | %s | %.0f | %.0f |\n", cfg->keys,
           cfg->writers, cfg->reader ? "1" : "-", cfg->tbl->name, med[first], med[first + 1],
           med[first + 2], med[first + 3], rcol, med[M_RSS], med[M_HEAP]);
}

/* Every configuration, `runs` times each in a fresh process, tables
 * interleaved so that a noisy moment hits both; medians per metric. */
static int suite(const size_t *keys, int n_keys, int runs, uint64_t seed, size_t mix_ops)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return 1;
    exe[n] = '\0';
    enum { N_CFG = 8 * 2 * 2 * N_TABLES };
    run_cfg cfgs[N_CFG];
    double med[N_CFG][N_METRICS];
    int nc = 0;
    for (int ki = 0; ki < n_keys; ki++)
        for (uint32_t wr = 1; wr <= 2; wr++)
            for (int rd = 0; rd <= 1; rd++) {
                run_result r[N_TABLES][MAX_RUNS];
                for (int run = 0; run < runs; run++)
                    for (int t = 0; t < N_TABLES; t++) {
                        run_cfg cfg = {.tbl = &tables[t],
                                       .keys = keys[ki],
                                       .writers = wr,
                                       .reader = rd,
                                       .mix_ops = mix_ops ? mix_ops : keys[ki],
                                       .seed = seed + (uint64_t)run};
                        fprintf(stderr, "bench_table: keys=%zu writers=%u reader=%d %s run %d\n",
                                keys[ki], wr, rd, tables[t].name, run + 1);
                        if (!run_child(exe, &cfg, &r[t][run]) &&
                            !run_child(exe, &cfg, &r[t][run])) { /* one retry */
                            fprintf(stderr, "bench_table: run failed\n");
                            return 1;
                        }
                    }
                for (int t = 0; t < N_TABLES; t++, nc++) {
                    cfgs[nc] =
                        (run_cfg){.tbl = &tables[t], .keys = keys[ki], .writers = wr, .reader = rd};
                    for (int m = 0; m < N_METRICS; m++) {
                        double v[MAX_RUNS];
                        for (int run = 0; run < runs; run++)
                            v[run] = r[t][run].m[m];
                        med[nc][m] = median(v, runs);
                    }
                }
            }
    printf("Wall clock (median of %d runs):\n", runs);
    table_header("Mops/s");
    for (int i = 0; i < nc; i++)
        table_row(&cfgs[i], med[i], M_INSERT);
    printf("\nPer writer CPU time (ops per CPU-second x writers; median of %d runs):\n", runs);
    table_header("Mops/CPU-s");
    for (int i = 0; i < nc; i++)
        table_row(&cfgs[i], med[i], M_INSERT_CPU);
    return 0;
}

/* ---- main ------------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_table --run --table oa [--keys N] [--writers 1|2|..] "
            "[--reader]\n"
            "                   [--mix-ops N] [--seed S] [--collide BITS] [--hint N] [--no-free]\n"
            "       bench_table --suite [--keys N[,N...]] [--runs R] [--seed S] [--mix-ops N]\n"
            "  --run: one run, one result line (logfmt). --suite: every configuration, each\n"
            "  --runs times (default 3) in a fresh process; prints a markdown table of medians.\n"
            "  --mix-ops defaults to --keys (operations per mix phase, all writers together).\n"
            "  --collide BITS: only ids whose hash has BITS low zero bits (a stress test:\n"
            "  one probe run / bucket chain for all keys; use a few thousand keys).\n"
            "  --hint N: size hint of the table (default 65536, the engine's); a small\n"
            "  one makes small runs resize.\n");
}

int main(int argc, char **argv)
{
    run_cfg cfg = {
        .tbl = &tables[0], .keys = 1000000, .writers = 1, .seed = 1, .hint = ENGINE_HINT};
    size_t keys[8] = {1000000, 4000000};
    int n_keys = 2, runs = 3;
    bool do_suite = false, do_run = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--suite") == 0) {
            do_suite = true;
        } else if (strcmp(a, "--run") == 0) {
            do_run = true;
        } else if (strcmp(a, "--reader") == 0) {
            cfg.reader = true;
        } else if (strcmp(a, "--table") == 0 && v) {
            cfg.tbl = NULL;
            for (int t = 0; t < N_TABLES; t++)
                if (strcmp(v, tables[t].name) == 0)
                    cfg.tbl = &tables[t];
            if (!cfg.tbl) {
                usage();
                return 2;
            }
            i++;
        } else if (strcmp(a, "--keys") == 0 && v) {
            n_keys = 0;
            for (char *s = argv[++i]; *s && n_keys < 8; s += *s == ',') {
                char *end;
                keys[n_keys++] = strtoull(s, &end, 10);
                s = end;
            }
            cfg.keys = keys[0];
        } else if (strcmp(a, "--writers") == 0 && v) {
            cfg.writers = (uint32_t)atoi(argv[++i]);
        } else if (strcmp(a, "--mix-ops") == 0 && v) {
            cfg.mix_ops = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(a, "--no-free") == 0) {
            cfg.no_free = true;
        } else if (strcmp(a, "--hint") == 0 && v) {
            cfg.hint = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(a, "--collide") == 0 && v) {
            cfg.collide = (unsigned)atoi(argv[++i]);
        } else if (strcmp(a, "--runs") == 0 && v) {
            runs = atoi(argv[++i]);
        } else if (strcmp(a, "--seed") == 0 && v) {
            cfg.seed = strtoull(argv[++i], NULL, 10);
        } else {
            usage();
            return 2;
        }
    }
    if (do_suite == do_run || cfg.writers < 1 || cfg.writers > MAX_WRITERS || runs < 1 ||
        runs > MAX_RUNS || n_keys < 1 || cfg.keys < 16 || cfg.collide > 24 ||
        (!cfg.collide && cfg.keys * 9 / 8 >= 10000000)) {
        usage();
        return 2;
    }
    if (do_suite)
        return suite(keys, n_keys, runs, cfg.seed, cfg.mix_ops);
    if (!cfg.mix_ops)
        cfg.mix_ops = cfg.keys;
    run_result r = run_once(&cfg);
    print_result(&cfg, &r);
    return r.m[M_ERRORS] != 0 ? 1 : 0;
}
