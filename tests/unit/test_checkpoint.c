/* test_checkpoint.c -- state survives a restart (snapshot.h, SPEC §5).
 *
 * The guarantee, at the engine level: run the stream to some checkpoint,
 * throw the engine away at a later point (what it wrote after the
 * checkpoint is lost, as an aborted transaction is), start a new engine
 * that restores the state records written up to the checkpoint and goes on
 * from the batch after it: the last record per key of the committed output
 * plus the new engine's output equals that of one uninterrupted run.
 *
 * Traffic: random journeys of a few hundred customers over three
 * partitions (a customer always in the same one), time moving forward with
 * jitter inside max_out_of_orderness, a few late events and rejected
 * messages (counted per window, outside the panes), and funnels whose conversion windows
 * span many windows, so that journeys, open windows and cohorts are alive
 * at every checkpoint. The restarted engine runs with another thread count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dict.h"
#include "engine.h"
#include "event.h"
#include "state.h"

#define N_BATCHES   40
#define PER_BATCH   150
#define N_CUSTOMERS 300
#define N_PARTS     3

static const char tumbling[] = "window: {size: 1m, max_out_of_orderness: 5s}\n"
                               "cohort: {emit_interval: 2m}\n"
                               "funnels:\n"
                               "  - name: shop\n"
                               "    mode: strict\n"
                               "    conversion_window: 10m\n"
                               "    exclude: [unsubscribe]\n"
                               "    stages:\n"
                               "      - {name: view, events: [view]}\n"
                               "      - {name: cart, events: [cart]}\n"
                               "      - {name: buy, events: [buy]}\n"
                               "  - name: open\n"
                               "    conversion_window: 25m\n"
                               "    stages:\n"
                               "      - {name: ad, events: [ad, view]}\n"
                               "      - {name: lead, events: [form]}\n"
                               "      - {name: deal, events: [cart, buy]}\n";

static const char *types[] = {"view", "cart", "buy", "ad", "form", "unsubscribe", "noise"};
static const char *channels[] = {"search", "email", "social", "display", "referral"};

/* ---- the stream --------------------------------------------------------- */

typedef struct msg {
    char text[200];
    int len;
    uint16_t part;
} msg;

static msg stream[N_BATCHES][PER_BATCH];

static uint64_t rng_state;
static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33) % n;
}

static void make_stream(uint64_t seed)
{
    rng_state = seed;
    int64_t now = 1732280400000LL;
    for (int b = 0; b < N_BATCHES; b++)
        for (int i = 0; i < PER_BATCH; i++) {
            now += rnd(900);
            int64_t ts = now - rnd(4000); /* within max_out_of_orderness */
            if (rnd(40) == 0)
                ts -= 70000; /* late: its window may be closed for its partition */
            uint32_t c = rnd(N_CUSTOMERS);
            msg *m = &stream[b][i];
            m->part = (uint16_t)(c % N_PARTS);
            if (rnd(60) == 0) { /* rejected: counted in its partition's earliest open window */
                m->len = snprintf(m->text, sizeof m->text, "{\"customer_id\":\"cust-%u\"}", c);
                continue;
            }
            m->len = snprintf(m->text, sizeof m->text,
                              "{\"customer_id\":\"cust-%u\",\"ts\":%lld,\"event\":\"%s\","
                              "\"channel\":\"%s\",\"segment\":\"%s\",\"value\":%u.25}",
                              c, (long long)ts, types[rnd(7)], channels[rnd(5)],
                              c % 2 ? "b2b" : "b2c", rnd(100));
        }
}

/* ---- what the engine writes --------------------------------------------- */

typedef struct kv {
    char *key, *value; /* value NULL: a tombstone */
    uint32_t part;
} kv;

typedef struct out {
    kv *recs, *state;
    size_t n_recs, n_state, cap_recs, cap_state;
    size_t committed_recs, committed_state; /* as of the last checkpoint */
    int checkpoints;
} out;

static void push(kv **v, size_t *n, size_t *cap, uint32_t part, const char *key, size_t key_len,
                 const char *value, size_t len)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        *v = realloc(*v, *cap * sizeof(**v));
    }
    kv *e = &(*v)[(*n)++];
    e->part = part;
    e->key = strndup(key, key_len);
    e->value = NULL;
    if (value) {
        e->value = malloc(len + 1);
        memcpy(e->value, value, len);
        e->value[len] = '\0';
    }
}

static int on_record(void *ctx, const char *key, size_t key_len, const char *value, size_t len)
{
    out *o = ctx;
    push(&o->recs, &o->n_recs, &o->cap_recs, 0, key, key_len, value, len);
    return 0;
}

/* State values are binary: kept with their length in front. */
static int on_state(void *ctx, uint32_t part, const char *key, size_t key_len, const char *value,
                    size_t len)
{
    out *o = ctx;
    char *copy = NULL;
    if (value) {
        copy = malloc(len + sizeof(size_t));
        memcpy(copy, &len, sizeof(size_t));
        memcpy(copy + sizeof(size_t), value, len);
    }
    push(&o->state, &o->n_state, &o->cap_state, part, key, key_len, copy,
         value ? len + sizeof(size_t) : 0);
    free(copy);
    return 0;
}

static void on_step(void *ctx, const fs_step_info *info)
{
    out *o = ctx;
    if (!info->checkpoint)
        return;
    o->committed_recs = o->n_recs;
    o->committed_state = o->n_state;
    o->checkpoints++;
}

static void free_kvs(kv *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].key);
        free(v[i].value);
    }
    free(v);
}

static void out_free(out *o)
{
    free_kvs(o->recs, o->n_recs);
    free_kvs(o->state, o->n_state);
}

/* ---- running ------------------------------------------------------------ */

static uint32_t dbg_intern(void *ctx, const char *name, uint32_t len)
{
    return fs_dict_intern(ctx, name, len);
}

static fs_engine *start(const fs_config *cfg, uint32_t threads, out *o)
{
    fs_output fo = {.write = on_record,
                    .ctx = o,
                    .format = FS_FORMAT_JSON,
                    .step_done = on_step,
                    .state = on_state};
    fs_engine *e = fs_engine_new(cfg, threads, fo);
    assert_non_null(e);
    return e;
}

static void publish_batch(fs_engine *e, int b, bool checkpoint, bool assign, bool last)
{
    fs_batch *batch = fs_engine_batch_get(e, FS_FORMAT_JSON);
    for (uint32_t p = 0; assign && p < N_PARTS; p++)
        fs_batch_add_ctl(batch, p, FS_PART_ASSIGN);
    if (checkpoint)
        fs_batch_add_checkpoint(batch, (uint64_t)b + 1);
    for (int i = 0; i < PER_BATCH; i++) {
        const msg *m = &stream[b][i];
        fs_batch_reserve(batch, (size_t)m->len);
        memcpy(batch->buf + batch->len, m->text, (size_t)m->len);
        fs_batch_add_keyed(batch, (uint32_t)batch->len, (uint32_t)m->len, 0, m->part, FS_OK);
        batch->len += (size_t)m->len;
    }
    fs_engine_batch_publish(e, batch, last);
}

static bool is_checkpoint(int b, int every)
{
    return b > 0 && b % every == 0;
}

/* The last value per partition and key of v[0..n) (tombstones remove), in
 * key order: what a compacted topic keeps. */
static int cmp_key(const void *a, const void *b)
{
    const kv *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->part > y->part) - (x->part < y->part);
}

static kv *last_per_key(const kv *v, size_t n, size_t *out_n)
{
    kv *copy = malloc((n + 1) * sizeof(*copy));
    size_t k = 0;
    for (size_t i = n; i-- > 0;) { /* the last one of a key wins */
        bool seen = false;
        for (size_t j = 0; j < k && !seen; j++)
            seen = copy[j].part == v[i].part && strcmp(copy[j].key, v[i].key) == 0;
        if (!seen)
            copy[k++] = v[i];
    }
    size_t live = 0;
    for (size_t i = 0; i < k; i++)
        if (copy[i].value)
            copy[live++] = copy[i];
    qsort(copy, live, sizeof(*copy), cmp_key);
    *out_n = live;
    return copy;
}

static void assert_same(const kv *a, size_t na, const kv *b, size_t nb)
{
    size_t la, lb;
    kv *x = last_per_key(a, na, &la), *y = last_per_key(b, nb, &lb);
    for (size_t i = 0; i < la && i < lb; i++) {
        if (strcmp(x[i].key, y[i].key) != 0 || strcmp(x[i].value, y[i].value) != 0) {
            fprintf(stderr, "uninterrupted %s\n%s\nrestarted %s\n%s\n", x[i].key, x[i].value,
                    y[i].key, y[i].value);
            fail_msg("differs at %s", x[i].key);
        }
    }
    assert_int_equal(la, lb);
    free(x);
    free(y);
}

/* Uninterrupted: every batch, checkpoints every `every` batches. */
static void run_whole(const fs_config *cfg, uint32_t threads, int every, out *o)
{
    fs_engine *e = start(cfg, threads, o);
    for (int b = 0; b < N_BATCHES; b++)
        publish_batch(e, b, is_checkpoint(b, every), b == 0, b == N_BATCHES - 1);
    fs_engine_join(e);
    fs_engine_free(e);
}

/* Killed after batch `kill_after` (its last checkpoint at or before it),
 * restarted from the state and run to the end; the committed output of the
 * first run plus the second's into *o. */
static void run_killed(const fs_config *cfg, int every, int kill_after, bool restore, out *o)
{
    out first = {0};
    fs_engine *e = start(cfg, 2, &first);
    for (int b = 0; b <= kill_after; b++)
        publish_batch(e, b, is_checkpoint(b, every), b == 0, false);
    fs_batch *stop = fs_engine_batch_get(e, FS_FORMAT_JSON);
    fs_engine_batch_publish_stop(e, stop);
    fs_engine_join(e);
    fs_engine_free(e);
    assert_true(first.checkpoints > 0);
    int resume = kill_after - kill_after % every; /* the batch the last checkpoint heads */

    size_t n_state;
    kv *state = last_per_key(first.state, first.committed_state, &n_state);
    if (getenv("FS_TEST_VERBOSE"))
        for (size_t i = 0; i < n_state; i++)
            if (state[i].key[0] == 'p') {
                size_t len;
                memcpy(&len, state[i].value, sizeof len);
                fprintf(stderr, "kill %d: partition %u record %zu bytes (of %zu records)\n",
                        kill_after, state[i].part, len, n_state);
                fs_state_part sp;
                char err[200];
                fs_dict d;
                fs_dict_init(&d);
                uint32_t ns[2] = {3, 3};
                fs_state_labels l = {NULL, dbg_intern, &d};
                if (fs_state_decode_part(state[i].value + sizeof len, len,
                                         fs_state_config_hash(cfg), 2, ns, &l, &sp, err,
                                         sizeof err) == FS_STATE_OK) {
                    for (uint32_t k = 0; k < sp.n_cohorts; k++)
                        if (sp.cohorts[k].funnel == 0)
                            fprintf(stderr, "  cohort pane=%d start=%lld started=%llu\n",
                                    sp.cohorts[k].pane,
                                    (long long)(sp.cohorts[k].start - 1732280400000LL) / 1000,
                                    (unsigned long long)sp.cohorts[k].cohort->started);
                    fs_state_part_free(&sp, 2);
                }
                fs_dict_free(&d);
            }
    e = start(cfg, 3, o);
    fs_batch *head = fs_engine_batch_get(e, FS_FORMAT_JSON);
    for (uint32_t p = 0; p < N_PARTS; p++)
        fs_batch_add_ctl(head, p, FS_PART_ASSIGN);
    for (size_t i = 0; restore && i < n_state; i++) {
        size_t len;
        memcpy(&len, state[i].value, sizeof len);
        fs_batch_add_restore(head, (uint16_t)state[i].part, state[i].key, strlen(state[i].key),
                             state[i].value + sizeof len, len);
    }
    fs_engine_batch_publish(e, head, false);
    free(state);
    for (int b = resume; b < N_BATCHES; b++)
        publish_batch(e, b, is_checkpoint(b, every) && b != resume, false, b == N_BATCHES - 1);
    fs_engine_join(e);
    char err[256];
    assert_false(fs_engine_restore_error(e, err, sizeof err));
    fs_engine_free(e);
    /* what the first run committed comes first */
    kv *all = malloc((first.committed_recs + o->n_recs + 1) * sizeof(*all));
    memcpy(all, first.recs, first.committed_recs * sizeof(*all));
    memcpy(all + first.committed_recs, o->recs, o->n_recs * sizeof(*all));
    for (size_t i = first.committed_recs; i < first.n_recs; i++) {
        free(first.recs[i].key);
        free(first.recs[i].value);
    }
    free(first.recs);
    free(o->recs);
    o->recs = all;
    o->n_recs += first.committed_recs;
    o->cap_recs = o->n_recs;
    free_kvs(first.state, first.n_state);
}

static fs_config *parse(const char *yaml)
{
    char err[256];
    fs_config *cfg = fs_config_parse(yaml, strlen(yaml), "test", err, sizeof err);
    if (!cfg)
        fail_msg("%s", err);
    return cfg;
}

/* Some record has a non-zero `field` (the stream exercises it). */
static bool some_nonzero(const out *o, const char *field)
{
    for (size_t i = 0; i < o->n_recs; i++) {
        const char *at = strstr(o->recs[i].value, field);
        if (at && at[strlen(field)] != '0')
            return true;
    }
    return false;
}

static void check_restarts(const char *yaml, uint64_t seed)
{
    make_stream(seed);
    fs_config *cfg = parse(yaml);
    out whole = {0};
    run_whole(cfg, 1, 4, &whole);
    assert_true(some_nonzero(&whole, "\"late_events\":"));
    assert_true(some_nonzero(&whole, "\"rejected_events\":"));
    assert_true(some_nonzero(&whole, "\"abandoned\":["));
    const int kills[] = {5, 9, 14, 22, 33};
    for (size_t k = 0; k < sizeof kills / sizeof *kills; k++) {
        out again = {0};
        run_killed(cfg, 4, kills[k], true, &again);
        if (getenv("FS_TEST_VERBOSE"))
            fprintf(stderr, "comparing the run killed after batch %d\n", kills[k]);
        assert_same(whole.recs, whole.n_recs, again.recs, again.n_recs);
        out_free(&again);
    }
    out_free(&whole);
    fs_config_free(cfg);
}

static void test_restart_tumbling(void **state)
{
    (void)state;
    check_restarts(tumbling, 42);
}

static void test_restart_hopping(void **state)
{
    (void)state;
    char yaml[2048];
    snprintf(yaml, sizeof yaml, "%s", tumbling);
    char *w = strstr(yaml, "size: 1m,");
    assert_non_null(w);
    memmove(w + 18, w + 9, strlen(w + 9) + 1);
    memcpy(w, "size: 3m, hop: 1m,", 18);
    check_restarts(yaml, 7);
}

/* Shown to fail: without the restore, the output differs. */
static void test_without_restore_differs(void **state)
{
    (void)state;
    make_stream(42);
    fs_config *cfg = parse(tumbling);
    out whole = {0}, again = {0};
    run_whole(cfg, 1, 4, &whole);
    run_killed(cfg, 4, 14, false, &again);
    size_t la, lb;
    kv *x = last_per_key(whole.recs, whole.n_recs, &la);
    kv *y = last_per_key(again.recs, again.n_recs, &lb);
    bool differ = la != lb;
    for (size_t i = 0; !differ && i < la; i++)
        differ = strcmp(x[i].key, y[i].key) != 0 || strcmp(x[i].value, y[i].value) != 0;
    assert_true(differ);
    free(x);
    free(y);
    out_free(&whole);
    out_free(&again);
    fs_config_free(cfg);
}

/* A checkpoint before any partition has a clock (the stage's first commit
 * tick may come before the first event): an empty state, then the stream
 * as usual. Under UBSan this once copied from a NULL array. */
static void test_checkpoint_before_any_event(void **state)
{
    (void)state;
    make_stream(3);
    fs_config *cfg = parse(tumbling);
    out o = {0};
    fs_engine *e = start(cfg, 2, &o);
    fs_batch *b = fs_engine_batch_get(e, FS_FORMAT_JSON);
    fs_batch_add_ctl(b, 0, FS_PART_ASSIGN);
    fs_batch_add_checkpoint(b, 1);
    fs_engine_batch_publish(e, b, false);
    for (int k = 0; k < 3; k++)
        publish_batch(e, k, false, false, k == 2);
    fs_engine_join(e);
    fs_engine_free(e);
    assert_int_equal(o.checkpoints, 1);
    assert_true(o.n_recs > 0);
    out_free(&o);
    fs_config_free(cfg);
}

/* A state record of another format version stops the restore with a clear
 * message (never a guess). */
static void test_unknown_version(void **state)
{
    (void)state;
    fs_config *cfg = parse(tumbling);
    out o = {0};
    fs_engine *e = start(cfg, 2, &o);
    fs_batch *b = fs_engine_batch_get(e, FS_FORMAT_JSON);
    fs_batch_add_ctl(b, 0, FS_PART_ASSIGN);
    const char v2[] = {2, 1}; /* version 2, checkpoint 1 */
    fs_batch_add_restore(b, 0, "ccust-1", 7, v2, sizeof v2);
    uint64_t seq = b->seq;
    fs_engine_batch_publish(e, b, true);
    fs_engine_join(e);
    assert_true(fs_engine_batches_done(e) > seq);
    char err[256];
    assert_true(fs_engine_restore_error(e, err, sizeof err));
    assert_non_null(strstr(err, "version 2"));
    fs_engine_free(e);
    out_free(&o);
    fs_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_tumbling),
        cmocka_unit_test(test_restart_hopping),
        cmocka_unit_test(test_without_restore_differs),
        cmocka_unit_test(test_unknown_version),
        cmocka_unit_test(test_checkpoint_before_any_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
