/* test_partitions.c -- per-partition watermarks (worker.h, SPEC §3).
 *
 * Drives the engine directly with batches that carry partition indices and
 * partition changes, as the Kafka stage does, and reads the watermarks'
 * effect from the records: a window's record is written (before the end of
 * input) only when every active partition has passed it, while lateness
 * and expiry of a partition's events follow that partition's own clock.
 * Config: one 2-stage funnel, 1-minute windows, no out-of-orderness.
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

static const char yaml[] = "window: {size: 1m}\n"
                           "funnels:\n"
                           "  - name: f\n"
                           "    stages:\n"
                           "      - {name: a, events: [a]}\n"
                           "      - {name: b, events: [b]}\n";

typedef struct collected {
    char text[1 << 16];
    size_t len;
    int steps;          /* steps finished by the sink */
    int records_at[64]; /* records written when step i finished */
    int records;
} collected;

static int on_record(void *ctx, const char *key, size_t key_len, const char *value, size_t len)
{
    (void)key;
    (void)key_len;
    collected *c = ctx;
    if (c->len + len + 1 < sizeof c->text) {
        memcpy(c->text + c->len, value, len);
        c->len += len;
        c->text[c->len++] = '\n';
        c->text[c->len] = '\0';
    }
    c->records++;
    return 0;
}

static void on_step(void *ctx, const fs_step_info *info)
{
    (void)info;
    collected *c = ctx;
    if (c->steps < 64)
        c->records_at[c->steps] = c->records;
    c->steps++;
}

typedef struct harness {
    fs_config *cfg;
    fs_engine *engine;
    collected out;
} harness;

static void start_with(harness *h, const char *text)
{
    char err[256];
    h->cfg = fs_config_parse(text, strlen(text), "test", err, sizeof err);
    assert_non_null(h->cfg);
    memset(&h->out, 0, sizeof h->out);
    fs_output o = {
        .write = on_record, .ctx = &h->out, .format = FS_FORMAT_JSON, .step_done = on_step};
    h->engine = fs_engine_new(h->cfg, 2, o);
    assert_non_null(h->engine);
}

static void start(harness *h)
{
    start_with(h, yaml);
}

/* The flow record of the window starting `sec` seconds after the test's
 * epoch holds `what`. */
static bool window_has(const harness *h, int64_t sec, const char *what)
{
    char key[64];
    snprintf(key, sizeof key, "\"window_start\":%lld,", (long long)(1732280400000LL + sec * 1000));
    char one[4096];
    for (const char *line = h->out.text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        snprintf(one, sizeof one, "%.*s", (int)len, line);
        if (strstr(one, "\"kind\":\"flow\"") && strstr(one, key))
            return strstr(one, what) != NULL;
        line = end ? end + 1 : NULL;
    }
    return false;
}

/* One batch: optional partition change, then events (customer, seconds, type, partition). */
typedef struct ev {
    const char *customer;
    int64_t sec;
    const char *type;
    uint16_t part;
} ev;

static void batch(harness *h, const fs_part_ctl *ctl, size_t n_ctl, const ev *evs, size_t n,
                  bool last)
{
    fs_batch *b = fs_engine_batch_get(h->engine, FS_FORMAT_JSON);
    for (size_t i = 0; i < n_ctl; i++)
        fs_batch_add_ctl(b, ctl[i].part, ctl[i].op);
    for (size_t i = 0; i < n; i++) {
        char msg[256];
        int len = snprintf(msg, sizeof msg, "{\"customer_id\":\"%s\",\"ts\":%lld,\"event\":\"%s\"}",
                           evs[i].customer, (long long)(1732280400000LL + evs[i].sec * 1000),
                           evs[i].type);
        fs_batch_reserve(b, (size_t)len);
        memcpy(b->buf + b->len, msg, (size_t)len);
        fs_batch_add_keyed(b, (uint32_t)b->len, (uint32_t)len, 0, evs[i].part, FS_OK);
        b->len += (size_t)len;
    }
    fs_engine_batch_publish(h->engine, b, last);
}

static void finish(harness *h)
{
    fs_engine_join(h->engine);
    fs_engine_free(h->engine);
    fs_config_free(h->cfg);
    if (getenv("FS_TEST_VERBOSE"))
        fputs(h->out.text, stderr);
}

/* Partition 1 is behind: its event at 30 s still counts in [0, 60) although
 * partition 0 is already at 200 s, because the watermark is the minimum. */
static void test_slow_partition_holds_windows(void **state)
{
    (void)state;
    harness h;
    start(&h);
    const ev e1[] = {{"x", 10, "a", 0}, {"y", 5, "a", 1}, {"x", 200, "a", 0}};
    batch(&h, NULL, 0, e1, 3, false);
    const ev e2[] = {{"z", 30, "a", 1}};
    batch(&h, NULL, 0, e2, 1, true);
    finish(&h);
    /* window [0,60): x@10, y@5 and z@30 all counted, nothing late */
    assert_non_null(strstr(h.out.text, "\"window_start\":1732280400000,"));
    assert_non_null(strstr(h.out.text, "\"entered\":[3,0]"));
    assert_null(strstr(h.out.text, "\"late_events\":1"));
}

/* A single partition: the same event at 30 s after 200 s is late. */
static void test_one_partition_makes_it_late(void **state)
{
    (void)state;
    harness h;
    start(&h);
    const ev e1[] = {{"x", 10, "a", 0}, {"y", 5, "a", 0}, {"x", 200, "a", 0}};
    batch(&h, NULL, 0, e1, 3, false);
    const ev e2[] = {{"z", 30, "a", 0}};
    batch(&h, NULL, 0, e2, 1, true);
    finish(&h);
    assert_non_null(strstr(h.out.text, "\"entered\":[2,0]")); /* [0,60) without z */
    assert_non_null(strstr(h.out.text, "\"late_events\":1"));
}

/* An assigned partition without events holds the watermark; marking it
 * idle releases it, and the window closes at that point of the stream. */
static void test_assigned_then_idle(void **state)
{
    (void)state;
    harness h;
    start(&h);
    const fs_part_ctl assign[] = {{0, FS_PART_ASSIGN}, {1, FS_PART_ASSIGN}};
    const ev e1[] = {{"x", 10, "a", 0}, {"x", 200, "a", 0}};
    batch(&h, assign, 2, e1, 2, false);
    const fs_part_ctl idle[] = {{1, FS_PART_IDLE}};
    batch(&h, idle, 1, NULL, 0, false);
    batch(&h, NULL, 0, NULL, 0, true);
    finish(&h);
    /* Partition 1 held everything until the idle mark, whose step (the
     * first) emitted [0,60) first. */
    assert_true(h.out.steps >= 2);
    assert_true(h.out.records_at[0] >= 1); /* the first step emitted [0,60) of funnel f */
    const char *first = "{\"kind\":\"flow\",\"funnel\":\"f\",\"window_start\":1732280400000,";
    assert_memory_equal(h.out.text, first, strlen(first));
    assert_non_null(strstr(h.out.text, "\"entered\":[1,0]"));
}

/* An event from an idle partition makes it count again. */
static void test_idle_partition_comes_back(void **state)
{
    (void)state;
    harness h;
    start(&h);
    const fs_part_ctl assign[] = {{0, FS_PART_ASSIGN}, {1, FS_PART_ASSIGN}};
    const ev e1[] = {{"x", 10, "a", 0}, {"y", 20, "a", 1}};
    batch(&h, assign, 2, e1, 2, false);
    const fs_part_ctl idle[] = {{1, FS_PART_IDLE}};
    const ev e2[] = {{"y", 25, "b", 1}, {"x", 100, "a", 0}, {"z", 40, "a", 1}};
    batch(&h, idle, 1, e2, 3, true);
    finish(&h);
    /* y@25 re-activated partition 1, so x@100 could not close [0,60): z@40
     * counts there too */
    assert_non_null(strstr(h.out.text, "\"entered\":[3,0]"));
    assert_null(strstr(h.out.text, "\"late_events\":1"));
}

/* SPEC §3: lateness is decided by the event's own partition. Partition 0
 * is at 200 s, partition 1 at 5 s: an event of partition 0 at 30 s is late
 * ([0,60) is closed for partition 0), although the window's record is not
 * out yet (partition 1 holds it). */
static void test_late_by_own_partition(void **state)
{
    (void)state;
    harness h;
    start(&h);
    const ev e1[] = {{"x", 10, "a", 0}, {"y", 5, "a", 1}, {"x", 200, "a", 0}};
    batch(&h, NULL, 0, e1, 3, false);
    const ev e2[] = {{"z", 30, "a", 0}};
    batch(&h, NULL, 0, e2, 1, true);
    finish(&h);
    assert_true(window_has(&h, 0, "\"entered\":[2,0]")); /* x@10, y@5; not z */
    assert_true(window_has(&h, 0, "\"late_events\":0"));
    /* late in partition 0's earliest open window, [180,240) */
    assert_true(window_has(&h, 180, "\"late_events\":1"));
}

/* SPEC §3: expiry follows the journey's partition's clock. x starts at 10 s
 * in partition 0 with a 1-minute conversion window; partition 0's clock
 * passes 70 s at once, so the journey expires (abandoned in [60,120)) before
 * x's b at 65 s arrives, which then finds no journey. Partition 1 (at 5 s,
 * an event no funnel uses) would have held an instance-wide clock back, and
 * the b would have completed the journey. */
static void test_expiry_by_own_partition(void **state)
{
    (void)state;
    static const char text[] = "window: {size: 1m}\n"
                               "funnels:\n"
                               "  - name: f\n"
                               "    mode: strict\n"
                               "    conversion_window: 1m\n"
                               "    stages:\n"
                               "      - {name: a, events: [a]}\n"
                               "      - {name: b, events: [b]}\n";
    harness h;
    start_with(&h, text);
    const ev e1[] = {{"y", 5, "other", 1}, {"x", 10, "a", 0}, {"w", 200, "other", 0}};
    batch(&h, NULL, 0, e1, 3, false);
    const ev e2[] = {{"x", 65, "b", 0}};
    batch(&h, NULL, 0, e2, 1, true);
    finish(&h);
    assert_true(window_has(&h, 0, "\"entered\":[1,0]"));
    assert_true(window_has(&h, 60, "\"abandoned\":[1,0]"));
    assert_null(strstr(h.out.text, "\"completed\":1"));
}

/* SPEC §3: a partition back from idle with counts for a window whose record
 * is out makes late events, counted in the earliest window not emitted. */
static void test_back_from_idle_after_emission(void **state)
{
    (void)state;
    harness h;
    start(&h);
    const fs_part_ctl assign[] = {{0, FS_PART_ASSIGN}, {1, FS_PART_ASSIGN}};
    const ev e1[] = {{"x", 10, "a", 0}, {"y", 20, "a", 1}};
    batch(&h, assign, 2, e1, 2, false);
    const fs_part_ctl idle[] = {{1, FS_PART_IDLE}};
    const ev e2[] = {{"x", 100, "a", 0}}; /* [0,60) is emitted here */
    batch(&h, idle, 1, e2, 1, false);
    const ev e3[] = {{"z", 40, "a", 1}};
    batch(&h, NULL, 0, e3, 1, true);
    finish(&h);
    assert_true(window_has(&h, 0, "\"entered\":[2,0]"));
    assert_true(window_has(&h, 0, "\"late_events\":0"));
    assert_true(window_has(&h, 60, "\"late_events\":1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_partition_holds_windows),
        cmocka_unit_test(test_one_partition_makes_it_late),
        cmocka_unit_test(test_assigned_then_idle),
        cmocka_unit_test(test_idle_partition_comes_back),
        cmocka_unit_test(test_late_by_own_partition),
        cmocka_unit_test(test_expiry_by_own_partition),
        cmocka_unit_test(test_back_from_idle_after_emission),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
