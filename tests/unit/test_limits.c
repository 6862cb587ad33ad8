/* test_limits.c -- limits.max_active_journeys at the worker (issue 13 item 15).
 *
 * The engine runs a few hand-made events through the workers with a limit
 * of 2 (or 1) customer records, and the records, counters and state topic
 * are checked against what worker.h says:
 *   - reject_new: a new customer at a full share starts nothing and counts
 *     nowhere but journeys_refused;
 *   - evict_oldest: the customer held longest is evicted; its journeys are
 *     abandoned[max_stage] and evicted[max_stage] at the evicting event's
 *     time, in a window open for the partition, else late (once per event
 *     and funnel, with the event's own lateness);
 *   - the state topic: an evicted customer gets a removal mark, so the
 *     state holds the customers the table holds; a restore that brings back
 *     more than the share evicts down to it at the next new customer;
 *   - with two workers, each holds its own share.
 *
 * Funnel f: strict, s0[a0] -> s1[a1] -> s2[a2], conversion window 10m;
 * windows 1m tumbling, no out-of-orderness; T0 is aligned to the minute.
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
#include "engine.h"
#include "event.h"
#include "worker.h"

#define T0 1732280400000LL
#define M  60000LL

typedef struct ev {
    const char *customer;
    int64_t dt;
    const char *event;
} ev;

typedef struct kv {
    char *key, *value;
    size_t len;
    uint32_t part;
} kv;

typedef struct out {
    kv recs[64], state[64];
    size_t n_recs, n_state;
} out;

static int on_record(void *ctx, const char *key, size_t key_len, const char *value, size_t len)
{
    out *o = ctx;
    assert_true(o->n_recs < 64);
    char *copy = malloc(len + 1); /* MessagePack holds NULs: not strndup */
    memcpy(copy, value, len);
    copy[len] = '\0';
    o->recs[o->n_recs++] = (kv){strndup(key, key_len), copy, len, 0};
    return 0;
}

static int on_state(void *ctx, uint32_t part, const char *key, size_t key_len, const char *value,
                    size_t len)
{
    out *o = ctx;
    assert_true(o->n_state < 64);
    char *copy = NULL;
    if (value) {
        copy = malloc(len ? len : 1);
        memcpy(copy, value, len);
    }
    o->state[o->n_state++] = (kv){strndup(key, key_len), copy, len, part};
    return 0;
}

static void out_free(out *o)
{
    for (size_t i = 0; i < o->n_recs; i++)
        free(o->recs[i].key), free(o->recs[i].value);
    for (size_t i = 0; i < o->n_state; i++)
        free(o->state[i].key), free(o->state[i].value);
    memset(o, 0, sizeof(*o));
}

static fs_config *config(const char *limits)
{
    char yaml[1024], err[256];
    snprintf(yaml, sizeof yaml,
             "window: {size: 1m, max_out_of_orderness: 0s}\n%s\n"
             "funnels:\n"
             "  - name: f\n"
             "    mode: strict\n"
             "    conversion_window: 10m\n"
             "    stages:\n"
             "      - {name: s0, events: [a0]}\n"
             "      - {name: s1, events: [a1]}\n"
             "      - {name: s2, events: [a2]}\n",
             limits);
    fs_config *cfg = fs_config_parse(yaml, strlen(yaml), "test", err, sizeof err);
    if (!cfg)
        fail_msg("%s", err);
    return cfg;
}

static fs_format out_format = FS_FORMAT_JSON;

static fs_engine *start(const fs_config *cfg, uint32_t threads, out *o, bool state)
{
    fs_output fo = {.write = on_record, .ctx = o, .format = out_format};
    if (state)
        fo.state = on_state;
    fs_engine *e = fs_engine_new(cfg, threads, fo);
    assert_non_null(e);
    return e;
}

/* One batch of events in partition 0 (assigning it first when asked), a
 * checkpoint numbered `checkpoint` at its head when non-zero. */
static void publish(fs_engine *e, const ev *evs, size_t n, bool assign, uint64_t checkpoint,
                    bool last)
{
    fs_batch *b = fs_engine_batch_get(e, FS_FORMAT_JSON);
    if (assign)
        fs_batch_add_ctl(b, 0, FS_PART_ASSIGN);
    if (checkpoint)
        fs_batch_add_checkpoint(b, checkpoint);
    for (size_t i = 0; i < n; i++) {
        char text[200];
        int len = snprintf(text, sizeof text,
                           "{\"customer_id\":\"%s\",\"ts\":%lld,\"event\":\"%s\","
                           "\"channel\":\"web\"}",
                           evs[i].customer, (long long)(T0 + evs[i].dt), evs[i].event);
        fs_batch_reserve(b, (size_t)len);
        memcpy(b->buf + b->len, text, (size_t)len);
        fs_batch_add_keyed(b, (uint32_t)b->len, (uint32_t)len, 0, 0, FS_OK);
        b->len += (size_t)len;
    }
    fs_engine_batch_publish(e, b, last);
}

static fs_engine_stats run(const char *limits, uint32_t threads, const ev *evs, size_t n, out *o)
{
    fs_config *cfg = config(limits);
    fs_engine *e = start(cfg, threads, o, false);
    publish(e, evs, n, true, 0, true);
    fs_engine_join(e);
    fs_engine_stats st = fs_engine_get_stats(e);
    fs_engine_free(e);
    fs_config_free(cfg);
    return st;
}

/* The flow record of window T0 + dt (NULL: none). */
static const char *flow(const out *o, int64_t dt)
{
    char key[64];
    snprintf(key, sizeof key, "f/%lld", (long long)(T0 + dt));
    for (size_t i = o->n_recs; i-- > 0;)
        if (!strcmp(o->recs[i].key, key))
            return o->recs[i].value;
    return NULL;
}

#define assert_has(rec, text)                                                                      \
    do {                                                                                           \
        const char *r_ = (rec);                                                                    \
        assert_non_null(r_);                                                                       \
        if (!strstr(r_, (text)))                                                                   \
            fail_msg("no %s in %s", (text), r_);                                                   \
    } while (0)

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A, B and C start; B advances; D starts a minute later. */
static const ev four[] = {
    {"A", 1000, "a0"}, {"B", 2000, "a0"}, {"C", 3000, "a0"}, {"B", 4000, "a1"}, {"D", 65000, "a0"},
};

static void test_no_limit_unchanged(void **state)
{
    (void)state;
    out o = {0};
    fs_engine_stats st = run("", 1, four, N(four), &o);
    assert_int_equal(st.journeys_started, 4);
    assert_int_equal(st.journeys_refused + st.journeys_evicted, 0);
    assert_has(flow(&o, 0), "\"entered\":[3,0,0]");
    assert_null(strstr(flow(&o, 0), "evicted")); /* no limits: the record of before */
    out_free(&o);
}

static void test_reject_new(void **state)
{
    (void)state;
    out o = {0};
    fs_engine_stats st =
        run("limits: {max_active_journeys: 2, policy: reject_new}", 1, four, N(four), &o);
    /* C and D find A and B held: neither starts, neither counts */
    assert_int_equal(st.journeys_started, 2);
    assert_int_equal(st.journeys_refused, 2);
    assert_int_equal(st.journeys_evicted, 0);
    assert_int_equal(st.journeys_active_peak, 2);
    assert_has(flow(&o, 0), "\"entered\":[2,0,0],\"reached\":[2,1,0]");
    assert_has(flow(&o, 0), "\"abandoned\":[0,0,0],\"excluded\":[0,0,0],\"evicted\":[0,0,0]");
    assert_null(flow(&o, M)); /* D counted nowhere */
    /* A and B expire at end of input, 10m after they started */
    assert_has(flow(&o, 10 * M), "\"abandoned\":[1,1,0],\"excluded\":[0,0,0],\"evicted\":[0,0,0]");
    assert_int_equal(st.journeys_abandoned, 2);
    out_free(&o);
}

static void test_evict_oldest(void **state)
{
    (void)state;
    out o = {0};
    fs_engine_stats st =
        run("limits: {max_active_journeys: 2, policy: evict_oldest}", 1, four, N(four), &o);
    /* C evicts A (at stage 0, at T0+3s); B's a1 advances B; D evicts B, the
     * oldest held (at stage 1, at T0+65s, window T0+1M) */
    assert_int_equal(st.journeys_started, 4);
    assert_int_equal(st.journeys_evicted, 2);
    assert_int_equal(st.journeys_refused, 0);
    assert_int_equal(st.journeys_abandoned, 4); /* 2 evicted, C and D expired */
    assert_int_equal(st.journeys_active_peak, 2);
    assert_has(flow(&o, 0), "\"entered\":[3,0,0],\"reached\":[3,1,0]");
    assert_has(flow(&o, 0), "\"abandoned\":[1,0,0],\"excluded\":[0,0,0],\"evicted\":[1,0,0]");
    assert_has(flow(&o, M), "\"entered\":[1,0,0]");
    assert_has(flow(&o, M), "\"abandoned\":[0,1,0],\"excluded\":[0,0,0],\"evicted\":[0,1,0]");
    assert_has(flow(&o, 10 * M), "\"abandoned\":[1,0,0],\"excluded\":[0,0,0],\"evicted\":[0,0,0]");
    assert_has(flow(&o, 11 * M), "\"abandoned\":[1,0,0],\"excluded\":[0,0,0],\"evicted\":[0,0,0]");
    out_free(&o);
}

/* An eviction by a late event is late like the event's own counts: dropped
 * from the closed window, one late event for the funnel, not two. */
static void test_eviction_by_late_event(void **state)
{
    (void)state;
    const ev evs[] = {{"A", 1000, "a0"}, {"B", 65000, "a0"}, {"C", 2000, "a0"}};
    out o = {0};
    fs_engine_stats st =
        run("limits: {max_active_journeys: 1, policy: evict_oldest}", 1, evs, N(evs), &o);
    assert_int_equal(st.journeys_evicted, 2);
    assert_int_equal(st.late_events, 1);
    /* window T0 closed at B (watermark T0+65s): A's start only */
    assert_has(flow(&o, 0), "\"entered\":[1,0,0]");
    assert_has(flow(&o, 0), "\"evicted\":[0,0,0]");
    /* B evicted A at T0+65s; C's eviction of B (at T0+2s) is late */
    assert_has(flow(&o, M), "\"entered\":[1,0,0]");
    assert_has(flow(&o, M), "\"abandoned\":[1,0,0],\"excluded\":[0,0,0],\"evicted\":[1,0,0]");
    assert_has(flow(&o, M), "\"late_events\":1");
    /* C's journey started (late, uncounted) and expires 10m after T0+2s */
    assert_has(flow(&o, 10 * M), "\"abandoned\":[1,0,0],\"excluded\":[0,0,0],\"evicted\":[0,0,0]");
    out_free(&o);
}

/* The last value of a state key (NULL: never written). */
static const kv *last_of(const out *o, const char *key)
{
    for (size_t i = o->n_state; i-- > 0;)
        if (!strcmp(o->state[i].key, key))
            return &o->state[i];
    return NULL;
}

/* Customer id's last state value. */
static const kv *state_of(const out *o, const char *id)
{
    char key[64];
    snprintf(key, sizeof key, "c%s", id);
    return last_of(o, key);
}

/* A removal mark: version and checkpoint number (< 128) alone. */
static bool removed(const kv *v)
{
    return v && v->value && v->len == 2;
}

static void test_state_after_eviction(void **state)
{
    (void)state;
    fs_config *cfg = config("limits: {max_active_journeys: 2, policy: evict_oldest}");
    out o = {0};
    fs_engine *e = start(cfg, 1, &o, true);
    const ev ab[] = {{"A", 1000, "a0"}, {"B", 2000, "a0"}};
    const ev c[] = {{"C", 3000, "a0"}};
    publish(e, ab, N(ab), true, 0, false);
    publish(e, c, N(c), false, 1, false); /* checkpoint 1 before C: A and B */
    publish(e, NULL, 0, false, 2, false); /* checkpoint 2: C evicted A */
    fs_engine_batch_publish_stop(e, fs_engine_batch_get(e, FS_FORMAT_JSON)); /* killed */
    fs_engine_join(e);
    fs_engine_free(e);
    assert_true(removed(state_of(&o, "A")));
    assert_true(state_of(&o, "B") && !removed(state_of(&o, "B")));
    assert_true(state_of(&o, "C") && !removed(state_of(&o, "C")));

    /* Restored into a share of 1: the next new customer evicts both. */
    fs_config *one = config("limits: {max_active_journeys: 1, policy: evict_oldest}");
    out o2 = {0};
    e = start(one, 1, &o2, true);
    fs_batch *b = fs_engine_batch_get(e, FS_FORMAT_JSON);
    fs_batch_add_ctl(b, 0, FS_PART_ASSIGN);
    for (size_t i = 0; i < o.n_state; i++) {
        const kv *last = last_of(&o, o.state[i].key);
        if (last != &o.state[i] || (o.state[i].key[0] == 'c' && removed(last)))
            continue; /* the compacted topic: the last value per key, marks dropped */
        fs_batch_add_restore(b, 0, o.state[i].key, strlen(o.state[i].key), o.state[i].value,
                             o.state[i].len);
    }
    fs_engine_batch_publish(e, b, false);
    const ev d[] = {{"D", 4000, "a0"}};
    publish(e, d, N(d), false, 0, true);
    fs_engine_join(e);
    char err[256];
    assert_false(fs_engine_restore_error(e, err, sizeof err));
    fs_engine_stats st = fs_engine_get_stats(e);
    fs_engine_free(e);
    assert_int_equal(st.journeys_evicted, 2);
    assert_int_equal(st.journeys_started, 1);
    /* with the restored counts of window T0: A, B, C entered, A evicted */
    assert_has(flow(&o2, 0), "\"entered\":[4,0,0]");
    assert_has(flow(&o2, 0), "\"evicted\":[3,0,0]");
    out_free(&o);
    out_free(&o2);
    fs_config_free(cfg);
    fs_config_free(one);
}

/* With two workers and a limit of 2, each holds one customer: two new
 * customers of the same worker evict each other, whatever the other holds. */
static void test_share_per_worker(void **state)
{
    (void)state;
    const char *mine[3], *other = NULL;
    static char names[64][8];
    uint32_t n_mine = 0;
    for (uint32_t i = 0; i < 64 && (n_mine < 3 || !other); i++) {
        int len = snprintf(names[i], sizeof names[i], "k%u", i);
        uint32_t w = fs_worker_owner(fs_hash_customer(names[i], (size_t)len), 2);
        if (w == 0 && n_mine < 3)
            mine[n_mine++] = names[i];
        else if (w == 1 && !other)
            other = names[i];
    }
    assert_int_equal(n_mine, 3);
    assert_non_null(other);
    const ev evs[] = {
        {other, 1000, "a0"}, {mine[0], 2000, "a0"}, {mine[1], 3000, "a0"}, {mine[2], 4000, "a0"}};
    out o = {0};
    fs_engine_stats st =
        run("limits: {max_active_journeys: 2, policy: evict_oldest}", 2, evs, N(evs), &o);
    assert_int_equal(st.journeys_evicted, 2); /* mine[0], then mine[1] */
    assert_has(flow(&o, 0), "\"entered\":[4,0,0]");
    assert_has(flow(&o, 0), "\"evicted\":[2,0,0]");
    out_free(&o);
    st = run("limits: {max_active_journeys: 2, policy: reject_new}", 2, evs, N(evs), &o);
    assert_int_equal(st.journeys_refused, 2); /* mine[1], mine[2]; other's worker had room */
    assert_has(flow(&o, 0), "\"entered\":[2,0,0]");
    out_free(&o);
}

/* The MessagePack record has the field too: a map of 21 (the 20 fields
 * of a default funnel's record, stage_time_ms among them, and evicted),
 * "evicted" after "excluded". */
static void test_msgpack_record(void **state)
{
    (void)state;
    out o = {0};
    out_format = FS_FORMAT_MSGPACK;
    run("limits: {max_active_journeys: 2, policy: evict_oldest}", 1, four, N(four), &o);
    out_format = FS_FORMAT_JSON;
    const kv *r = NULL;
    for (size_t i = 0; i < o.n_recs; i++)
        if (!strcmp(o.recs[i].key, "f/1732280400000"))
            r = &o.recs[i];
    assert_non_null(r);
    assert_memory_equal(r->value,
                        "\xde\x00\x15\xa4kind\xa4"
                        "flow",
                        13);
    const char want[] = "\xa8"
                        "excluded"
                        "\x93\x00\x00\x00"
                        "\xa7"
                        "evicted"
                        "\x93\x01\x00\x00";
    assert_non_null(memmem(r->value, r->len, want, sizeof want - 1));
    out_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_limit_unchanged),   cmocka_unit_test(test_reject_new),
        cmocka_unit_test(test_evict_oldest),         cmocka_unit_test(test_eviction_by_late_event),
        cmocka_unit_test(test_state_after_eviction), cmocka_unit_test(test_share_per_worker),
        cmocka_unit_test(test_msgpack_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
