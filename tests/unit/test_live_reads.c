/* test_live_reads.c -- reading a running engine from another thread: journey
 * lookups while the workers write (fs_engine_read_journeys: journey_table.h's
 * copy protocol, funnel.h's shared fields, dict.h's shared names) and the
 * running counts of open windows (fs_engine_open_counts).
 *
 * 1. Exact: a few hand-built customers are applied, the test waits for the
 *    step that proves every worker is past them, and each lookup must equal
 *    the journeys worked out by hand below.
 * 2. Concurrent: a reader thread looks up every customer again and again
 *    while two workers apply a stream that starts, advances, touches (up to
 *    six channels, so touch arrays move to the heap), excludes, completes
 *    and expires journeys. Every copy must be a state a journey can be in.
 *    The source publishes a batch only after the reader has finished a round
 *    since the last one, so reads and writes interleave without sleeps.
 *    Under ThreadSanitizer (scripts/test) this is the race check.
 * 3. Open windows: counts of customers owned by both workers, summed, for a
 *    window that has not closed, equal to the hand count.
 * 4. The API's copy of flow records (fs_output.flow_json) is the JSON
 *    record even when the output is MessagePack.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "engine.h"

#define T0 1732280400000LL

static const char yaml[] = "window: {size: 1m}\n"
                           "funnels:\n"
                           "  - name: f1\n"
                           "    conversion_window: 1h\n"
                           "    exclude: [x]\n"
                           "    stages:\n"
                           "      - {name: s_a, events: [a]}\n"
                           "      - {name: s_b, events: [b]}\n"
                           "      - {name: s_c, events: [c]}\n"
                           "      - {name: s_d, events: [d]}\n"
                           "  - name: f2\n"
                           "    conversion_window: 10m\n"
                           "    stages:\n"
                           "      - {name: t_b, events: [b]}\n"
                           "      - {name: t_c, events: [c]}\n";

static const char *const channels[] = {"email", "search", "social", "store", "ads", "referral"};
#define N_CHANNELS 6

typedef struct harness {
    fs_config *cfg;
    fs_engine *engine;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int64_t wm; /* watermark of the last step the sink has finished */
} harness;

static int on_record(void *ctx, const char *key, size_t key_len, const char *value, size_t len)
{
    (void)ctx, (void)key, (void)key_len, (void)value, (void)len;
    return 0;
}

static void on_step(void *ctx, const fs_step_info *info)
{
    harness *h = ctx;
    pthread_mutex_lock(&h->lock);
    h->wm = info->wm;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
}

static void start_with(harness *h, const char *config)
{
    char err[256];
    memset(h, 0, sizeof *h);
    h->wm = INT64_MIN;
    h->cfg = fs_config_parse(config, strlen(config), "test", err, sizeof err);
    assert_non_null(h->cfg);
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cond, NULL);
    fs_output o = {.write = on_record, .ctx = h, .format = FS_FORMAT_JSON, .step_done = on_step};
    h->engine = fs_engine_new(h->cfg, 2, o);
    assert_non_null(h->engine);
}

static void start(harness *h)
{
    start_with(h, yaml);
}

static void finish(harness *h)
{
    fs_engine_join(h->engine);
    fs_engine_free(h->engine);
    fs_config_free(h->cfg);
    pthread_cond_destroy(&h->cond);
    pthread_mutex_destroy(&h->lock);
}

typedef struct ev {
    const char *customer;
    int64_t ms; /* after T0 */
    const char *type, *channel;
} ev;

static void add(fs_batch *b, const ev *e)
{
    char msg[256];
    int len = snprintf(msg, sizeof msg,
                       "{\"customer_id\":\"%s\",\"ts\":%lld,\"event\":\"%s\",\"channel\":\"%s\"}",
                       e->customer, (long long)(T0 + e->ms), e->type, e->channel);
    fs_batch_reserve(b, (size_t)len);
    memcpy(b->buf + b->len, msg, (size_t)len);
    fs_batch_add(b, (uint32_t)b->len, (uint32_t)len, FS_OK);
    b->len += (size_t)len;
}

static void publish(harness *h, const ev *evs, size_t n, bool last)
{
    fs_batch *b = fs_engine_batch_get(h->engine, FS_FORMAT_JSON);
    for (size_t i = 0; i < n; i++)
        add(b, &evs[i]);
    fs_engine_batch_publish(h->engine, b, last);
}

static void await_watermark(harness *h, int64_t wm)
{
    pthread_mutex_lock(&h->lock);
    while (h->wm < wm)
        pthread_cond_wait(&h->cond, &h->lock);
    pthread_mutex_unlock(&h->lock);
}

static uint32_t read_customer(harness *h, const char *id, fs_journey_view *out, uint32_t *owner)
{
    return fs_engine_read_journeys(h->engine, id, strlen(id), out, owner);
}

static void assert_label(harness *h, uint32_t owner, uint32_t id, const char *want)
{
    uint32_t len;
    const char *name = fs_engine_label(h->engine, owner, id, &len);
    assert_non_null(name);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(name, want, len);
}

/* ---- 1. exact ------------------------------------------------------------ */

static void test_lookup_equals_hand_worked_journeys(void **state)
{
    (void)state;
    harness h;
    start(&h);
    const ev evs[] = {
        /* p1: f1 a -> b, then a again (a touch); f2 starts at b */
        {"p1", 0, "a", "email"},
        {"p1", 1000, "b", "search"},
        {"p1", 2000, "a", "email"},
        /* p2: f1 at stage a, touched on six channels: its counts go to the heap */
        {"p2", 0, "a", "email"},
        {"p2", 100, "a", "search"},
        {"p2", 200, "a", "social"},
        {"p2", 300, "a", "store"},
        {"p2", 400, "a", "ads"},
        {"p2", 500, "a", "referral"},
        {"p2", 600, "a", "ads"},
        /* p3: excluded; p4: completes f2 (b -> c) and is at s_c in f1 */
        {"p3", 0, "a", "email"},
        {"p3", 10, "x", "email"},
        {"p4", 0, "b", "social"},
        {"p4", 10, "c", "store"},
    };
    publish(&h, evs, sizeof evs / sizeof *evs, false);
    /* Only an event of the next batch can move the watermark past the first
     * window; the sink reports that step when both workers have cut it, so
     * both are past every event above. */
    const ev later = {"other", 150000, "zzz", "email"};
    publish(&h, &later, 1, false);
    await_watermark(&h, T0 + 60000);

    fs_journey_view v[2];
    uint32_t owner;
    assert_int_equal(read_customer(&h, "p1", v, &owner), 2);
    assert_int_equal(v[0].funnel, 0);
    assert_int_equal(v[0].max_stage, 1);
    assert_int_equal(v[0].start_ts, T0);
    assert_int_equal(v[0].expiry_ts, T0 + 3600000);
    assert_label(&h, owner, v[0].first_channel, "email");
    assert_int_equal(v[0].n_touches, 2);
    assert_label(&h, owner, v[0].touch[0].label, "email");
    assert_int_equal(v[0].touch[0].count, 2);
    assert_label(&h, owner, v[0].touch[1].label, "search");
    assert_int_equal(v[0].touch[1].count, 1);
    assert_int_equal(v[1].funnel, 1);
    assert_int_equal(v[1].max_stage, 0);
    assert_int_equal(v[1].start_ts, T0 + 1000);
    assert_int_equal(v[1].expiry_ts, T0 + 1000 + 600000);
    assert_label(&h, owner, v[1].first_channel, "search");
    assert_int_equal(v[1].n_touches, 1);

    assert_int_equal(read_customer(&h, "p2", v, &owner), 1);
    assert_int_equal(v[0].n_touches, 6);
    for (uint32_t i = 0; i < 6; i++) {
        assert_label(&h, owner, v[0].touch[i].label, channels[i]);
        assert_int_equal(v[0].touch[i].count, i == 4 ? 2 : 1);
    }

    assert_int_equal(read_customer(&h, "p3", v, &owner), 0);
    assert_int_equal(read_customer(&h, "p4", v, &owner), 1); /* f2 completed: gone */
    assert_int_equal(v[0].funnel, 0);
    assert_int_equal(v[0].max_stage, 2);
    assert_int_equal(read_customer(&h, "nobody", v, &owner), 0);

    publish(&h, NULL, 0, true);
    finish(&h);
}

/* ---- 2. concurrent ------------------------------------------------------ */

#define CUSTOMERS 256
#define BATCHES   120
#define PER_BATCH 400

typedef struct reader {
    harness *h;
    char ids[CUSTOMERS][16];
    int rounds;      /* full rounds over every customer, under h->lock */
    bool stop;       /* under h->lock */
    uint64_t hits;   /* journeys seen */
    uint64_t broken; /* copies that are no possible state */
} reader;

static bool is_channel(harness *h, uint32_t owner, uint32_t id)
{
    uint32_t len;
    const char *name = fs_engine_label(h->engine, owner, id, &len);
    if (!name)
        return false;
    for (int c = 0; c < N_CHANNELS; c++)
        if (len == strlen(channels[c]) && !memcmp(name, channels[c], len))
            return true;
    return false;
}

/* A journey the config allows: stage in range, expiry = start + the funnel's
 * conversion window, touches of distinct known channels, counts >= 1. */
static bool possible(harness *h, uint32_t owner, const fs_journey_view *v, uint32_t prev_funnel)
{
    static const int64_t window[2] = {3600000, 600000};
    static const uint32_t stages[2] = {4, 2};
    if (v->funnel > 1 || (prev_funnel != UINT32_MAX && v->funnel <= prev_funnel))
        return false;
    if (v->max_stage >= stages[v->funnel] - 1) /* the last stage completes: never active */
        return false;
    if (v->expiry_ts - v->start_ts != window[v->funnel] || v->start_ts < T0)
        return false;
    if (v->n_touches < 1 || v->n_touches > N_CHANNELS || !is_channel(h, owner, v->first_channel))
        return false;
    for (uint32_t i = 0; i < v->n_touches; i++) {
        if (v->touch[i].count < 1 || !is_channel(h, owner, v->touch[i].label))
            return false;
        for (uint32_t k = 0; k < i; k++)
            if (v->touch[k].label == v->touch[i].label)
                return false;
    }
    return true;
}

static void *reader_main(void *arg)
{
    reader *r = arg;
    fs_engine_reader_enter();
    for (;;) {
        for (int c = 0; c < CUSTOMERS; c++) {
            fs_journey_view v[2];
            uint32_t owner;
            uint32_t n = read_customer(r->h, r->ids[c], v, &owner);
            for (uint32_t i = 0; i < n; i++)
                if (!possible(r->h, owner, &v[i], i ? v[i - 1].funnel : UINT32_MAX))
                    r->broken++;
            r->hits += n;
        }
        pthread_mutex_lock(&r->h->lock);
        r->rounds++;
        pthread_cond_broadcast(&r->h->cond);
        bool stop = r->stop;
        pthread_mutex_unlock(&r->h->lock);
        if (stop)
            break;
    }
    fs_engine_reader_leave();
    return NULL;
}

static void await_round(reader *r, int after)
{
    pthread_mutex_lock(&r->h->lock);
    while (r->rounds <= after)
        pthread_cond_wait(&r->h->cond, &r->h->lock);
    pthread_mutex_unlock(&r->h->lock);
}

static int rounds_now(reader *r)
{
    pthread_mutex_lock(&r->h->lock);
    int n = r->rounds;
    pthread_mutex_unlock(&r->h->lock);
    return n;
}

static void test_reads_while_workers_write(void **state)
{
    (void)state;
    harness h;
    start(&h);
    reader *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->h = &h;
    for (int c = 0; c < CUSTOMERS; c++)
        snprintf(r->ids[c], sizeof r->ids[c], "c%d", c);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reader_main, r), 0);

    static const char *const types[] = {"a", "a", "b", "b", "c", "d", "x", "zzz"};
    uint64_t x = 88172645463325252ull; /* xorshift64: a fixed, portable stream */
    int64_t ms = 0;
    ev *evs = calloc(PER_BATCH, sizeof *evs);
    assert_non_null(evs);
    for (int b = 0; b < BATCHES; b++) {
        for (int i = 0; i < PER_BATCH; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            ms += 250; /* 30 h of event time: f1 and f2 journeys expire too */
            evs[i] = (ev){r->ids[x % CUSTOMERS], ms, types[(x >> 20) % 8],
                          channels[(x >> 30) % N_CHANNELS]};
        }
        int seen = rounds_now(r);
        publish(&h, evs, PER_BATCH, b == BATCHES - 1);
        await_round(r, seen); /* a whole round of lookups since this batch went out */
    }
    free(evs);
    fs_engine_join(h.engine);

    pthread_mutex_lock(&h.lock);
    r->stop = true;
    pthread_mutex_unlock(&h.lock);
    pthread_join(t, NULL);
    assert_int_equal(r->broken, 0);
    assert_true(r->hits > 0);
    free(r);
    fs_engine_free(h.engine);
    fs_config_free(h.cfg);
    pthread_cond_destroy(&h.cond);
    pthread_mutex_destroy(&h.lock);
}

/* ---- 3. open windows ----------------------------------------------------- */

/* 30 s of out-of-orderness keeps [0, 60 s) open through an event at 45 s,
 * whose watermark (15 s) crosses the 10 s cohort emission boundary: that
 * step proves both workers are past the first batch. */
static const char open_yaml[] = "window: {size: 1m, max_out_of_orderness: 30s}\n"
                                "cohort: {emit_interval: 10s}\n"
                                "funnels:\n"
                                "  - name: f\n"
                                "    stages:\n"
                                "      - {name: s_a, events: [a]}\n"
                                "      - {name: s_b, events: [b]}\n"
                                "      - {name: s_c, events: [c]}\n";

static void test_open_window_counts(void **state)
{
    (void)state;
    harness h;
    start_with(&h, open_yaml);
    ev evs[40];
    size_t n = 0;
    char ids[20][8];
    for (int c = 0; c < 20; c++) { /* 20 customers: both workers own some */
        snprintf(ids[c], sizeof ids[c], "u%d", c);
        evs[n++] = (ev){ids[c], c * 100, "a", "email"};
        if (c % 2 == 0) /* 10 go on: 8 to b, 2 (c = 0, 10) straight to c, completing */
            evs[n++] = (ev){ids[c], 5000 + c * 100, c % 5 == 0 ? "c" : "b", "email"};
    }
    publish(&h, evs, n, false);
    const ev later = {"other", 45000, "zzz", "email"};
    publish(&h, &later, 1, false);
    await_watermark(&h, T0 + 10000);

    fs_open_count *open;
    uint32_t k = fs_engine_open_counts(h.engine, &open);
    assert_int_equal(k, 1);
    assert_int_equal(open[0].funnel, 0);
    assert_int_equal(open[0].start, T0);
    assert_int_equal(open[0].n_stages, 3);
    assert_int_equal(open[0].entered[0], 20);
    assert_int_equal(open[0].reached[0], 20);
    assert_int_equal(open[0].reached[1], 10);
    assert_int_equal(open[0].reached[2], 2); /* c = 0, 10 */
    assert_int_equal(open[0].completed, 2);
    free(open);
    publish(&h, NULL, 0, true);
    finish(&h);
}

/* ---- 4. flow records for the API ------------------------------------------ */

typedef struct texts {
    char buf[1 << 15];
    size_t len;
    int n;
} texts;

typedef struct outputs {
    texts written, json; /* what the output got, what flow_json got */
} outputs;

static void append(texts *t, const char *key, size_t key_len, const char *v, size_t len)
{
    const char *slash = memchr(key, '/', key_len);
    if (!slash || memchr(slash + 1, '/', key_len - (size_t)(slash + 1 - key)))
        return; /* flow records only: "<funnel>/<start>" */
    assert_true(t->len + len + 1 < sizeof t->buf);
    memcpy(t->buf + t->len, v, len);
    t->len += len;
    t->buf[t->len++] = '\n';
    t->n++;
}

static int collect_record(void *ctx, const char *key, size_t key_len, const char *v, size_t len)
{
    append(&((outputs *)ctx)->written, key, key_len, v, len);
    return 0;
}

static void collect_json(void *ctx, const fs_flow_json *rec)
{
    /* what it is about matches its key */
    char key[64];
    int n = snprintf(key, sizeof key, "f%u/%lld", rec->funnel + 1, (long long)rec->window_start);
    assert_int_equal(rec->key_len, (size_t)n);
    assert_memory_equal(rec->key, key, rec->key_len);
    append(&((outputs *)ctx)->json, rec->key, rec->key_len, rec->json, rec->len);
}

static void run_records(fs_format format, outputs *out)
{
    char err[256];
    fs_config *cfg = fs_config_parse(yaml, sizeof yaml - 1, "test", err, sizeof err);
    assert_non_null(cfg);
    fs_output o = {
        .write = collect_record, .ctx = out, .format = format, .flow_json = collect_json};
    fs_engine *e = fs_engine_new(cfg, 2, o);
    static const char *const types[] = {"a", "b", "c", "x"};
    fs_batch *b = fs_engine_batch_get(e, FS_FORMAT_JSON);
    for (int i = 0; i < 300; i++) {
        char id[8];
        snprintf(id, sizeof id, "k%d", i % 37);
        ev x = {id, i * 1000, types[i % 4], channels[i % 6]};
        add(b, &x);
    }
    fs_engine_batch_publish(e, b, true);
    fs_engine_join(e);
    fs_engine_free(e);
    fs_config_free(cfg);
}

static void test_flow_json_for_msgpack_output(void **state)
{
    (void)state;
    outputs *o = calloc(2, sizeof *o);
    assert_non_null(o);
    run_records(FS_FORMAT_JSON, &o[0]);
    run_records(FS_FORMAT_MSGPACK, &o[1]);
    assert_true(o[0].written.n > 1); /* 300 s of events: several windows */
    /* JSON output: flow_json gets exactly the records written */
    assert_int_equal(o[0].json.len, o[0].written.len);
    assert_memory_equal(o[0].json.buf, o[0].written.buf, o[0].written.len);
    /* MessagePack output: as many records, and flow_json gets their JSON */
    assert_int_equal(o[1].written.n, o[0].written.n);
    assert_int_not_equal(o[1].written.buf[0], '{');
    assert_int_equal(o[1].json.len, o[0].written.len);
    assert_memory_equal(o[1].json.buf, o[0].written.buf, o[0].written.len);
    free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_equals_hand_worked_journeys),
        cmocka_unit_test(test_reads_while_workers_write),
        cmocka_unit_test(test_open_window_counts),
        cmocka_unit_test(test_flow_json_for_msgpack_output),
    };
    fs_engine_reader_enter(); /* test 1 reads from this thread */
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    fs_engine_reader_leave();
    return failed;
}
