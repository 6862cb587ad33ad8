/* test_merge.c -- partials of many partitions -> one record per window (merge.h).
 *
 * Partials are built by hand (two funnels, 1-minute tumbling windows) and
 * given to the merger as bytes, as the partials topic carries them. Each
 * test states what the records must be; counts are chosen so that a sum, a
 * duplicate and a missing partition give different numbers.
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
#include "funnel.h"
#include "merge.h"
#include "state.h"

static const char yaml[] = "window: {size: 1m, max_out_of_orderness: 5s}\n"
                           "cohort: {emit_interval: 2m}\n"
                           "funnels:\n"
                           "  - name: shop\n"
                           "    conversion_window: 3m\n"
                           "    stages:\n"
                           "      - {name: view, events: [view]}\n"
                           "      - {name: buy, events: [buy]}\n"
                           "  - name: lead\n"
                           "    conversion_window: 3m\n"
                           "    stages:\n"
                           "      - {name: ad, events: [ad]}\n"
                           "      - {name: form, events: [form]}\n";

#define MIN 60000LL

typedef struct rec {
    char key[64];
    char value[1024];
} rec;

typedef struct fixture {
    fs_config *cfg;
    fs_funnels *funnels;
    fs_dict labels; /* the writer's label ids */
    rec out[64];
    int n_out;
} fixture;

static int on_record(void *ctx, const char *key, size_t key_len, const char *value, size_t len)
{
    fixture *fx = ctx;
    assert_true(fx->n_out < 64 && key_len < 64 && len < 1024);
    rec *r = &fx->out[fx->n_out++];
    memcpy(r->key, key, key_len);
    r->key[key_len] = '\0';
    memcpy(r->value, value, len);
    r->value[len] = '\0';
    return 0;
}

static const char *writer_label(void *ctx, uint32_t label, uint32_t *len)
{
    fs_dict *d = ctx;
    *len = fs_dict_len(d, label);
    return fs_dict_name(d, label);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    char err[256];
    fx->cfg = fs_config_parse(yaml, strlen(yaml), "test", err, sizeof err);
    assert_non_null(fx->cfg);
    fx->funnels = fs_funnels_compile(fx->cfg);
    fs_dict_init(&fx->labels);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    fs_dict_free(&fx->labels);
    fs_funnels_free(fx->funnels);
    fs_config_free(fx->cfg);
    free(fx);
    return 0;
}

static fs_merge *new_merge(fixture *fx, uint32_t n_parts)
{
    fs_output out = {.write = on_record, .ctx = fx, .format = FS_FORMAT_JSON};
    return fs_merge_new(fx->cfg, fx->funnels, n_parts, out);
}

/* One window of funnel 0 with `completed` completions through "search",
 * and `events` events in it. */
typedef struct win {
    int64_t start;
    uint64_t completed, rejected, late, events;
} win;

typedef struct coh {
    int64_t start;
    uint64_t started;
} coh;

static void send(fixture *fx, fs_merge *m, uint32_t part, uint32_t n_parts, int64_t wm, bool idle,
                 const win *w, uint32_t n_w, const coh *c, uint32_t n_c)
{
    uint32_t nf = fx->funnels->n, n_stages[2] = {2, 2};
    fs_state_partial pt = {.config_hash = fs_state_config_hash(fx->cfg),
                           .part = part,
                           .n_parts = n_parts,
                           .wm = wm,
                           .idle = idle,
                           .n_slots = n_w,
                           .n_cohorts = n_c};
    pt.slots = calloc(n_w + 1, sizeof(*pt.slots));
    pt.events = calloc((size_t)n_w * nf + 1, sizeof(*pt.events));
    pt.cohorts = calloc(n_c + 1, sizeof(*pt.cohorts));
    uint32_t search = fs_dict_intern(&fx->labels, "search", 6);
    for (uint32_t i = 0; i < n_w; i++) {
        fs_window_slot *s = pt.slots[i] = fs_window_slot_new(w[i].start, nf);
        s->rejected = w[i].rejected;
        if (w[i].completed || w[i].late) {
            s->flow[0] = fs_flow_new(2);
            s->flow[0]->completed = w[i].completed;
            s->flow[0]->reached[1] = w[i].completed;
            s->flow[0]->late_events = w[i].late;
            fs_flow_channel(s->flow[0], search)->completed = w[i].completed;
        }
        pt.events[i * nf] = w[i].events;
    }
    for (uint32_t i = 0; i < n_c; i++) {
        fs_cohort *co = fs_cohort_new(2);
        co->started = c[i].started;
        co->reached[0] = c[i].started;
        pt.cohorts[i] = (fs_state_cohort){0, false, c[i].start, co};
    }
    fs_state_labels l = {writer_label, NULL, &fx->labels};
    fs_buf b = {0};
    fs_state_encode_partial(&b, &pt, nf, n_stages, &l);
    fs_state_partial_free(&pt, nf);
    char err[200];
    assert_int_equal(fs_merge_partial(m, b.p, b.len, err, sizeof err), 0);
    fs_merge_emit(m);
    fs_buf_free(&b);
}

/* The record with this key, last written; NULL if none. */
static const char *last(fixture *fx, const char *key)
{
    for (int i = fx->n_out - 1; i >= 0; i--)
        if (!strcmp(fx->out[i].key, key))
            return fx->out[i].value;
    return NULL;
}

static void assert_has(const char *value, const char *needle)
{
    if (!value || !strstr(value, needle))
        fail_msg("expected %s in %s", needle, value ? value : "(no record)");
}

/* Window [0, 1m) is emitted once, after both partitions closed it, with
 * both partitions' counts. */
static void test_waits_for_every_partition(void **state)
{
    fixture *fx = *state;
    fs_merge *m = new_merge(fx, 2);
    win w0 = {0, 3, 0, 0, 3}, w1 = {0, 4, 0, 0, 4};
    send(fx, m, 0, 2, MIN, false, &w0, 1, NULL, 0);
    assert_null(last(fx, "shop/0")); /* partition 1 never spoke */
    send(fx, m, 1, 2, INT64_MIN, false, NULL, 0, NULL, 0);
    assert_null(last(fx, "shop/0")); /* partition 1 has no watermark yet */
    send(fx, m, 1, 2, MIN / 2, false, NULL, 0, NULL, 0);
    assert_null(last(fx, "shop/0")); /* partition 1 has not closed it */
    send(fx, m, 1, 2, MIN, false, &w1, 1, NULL, 0);
    assert_has(last(fx, "shop/0"), "\"completed\":7");
    assert_int_equal(fx->n_out, 1); /* funnel "lead" counted nothing */
    fs_merge_stats st = fs_merge_get_stats(m);
    assert_int_equal(st.flow_records, 1);
    assert_int_equal(st.emitted, MIN);
    fs_merge_free(m);
}

/* The same partial twice (a restart under at_least_once) counts once. */
static void test_duplicate_counts_once(void **state)
{
    fixture *fx = *state;
    fs_merge *m = new_merge(fx, 2);
    win w0 = {0, 3, 0, 0, 3}, w1 = {0, 4, 0, 0, 4};
    send(fx, m, 0, 2, MIN, false, &w0, 1, NULL, 0);
    send(fx, m, 0, 2, MIN, false, &w0, 1, NULL, 0);
    send(fx, m, 1, 2, MIN, false, &w1, 1, NULL, 0);
    assert_has(last(fx, "shop/0"), "\"completed\":7");
    assert_int_equal(fs_merge_get_stats(m).duplicate_windows, 1);
    fs_merge_free(m);
}

/* An idle partition holds nothing back; when it comes back with counts for
 * the emitted window, its events (and its rejections and late events) go
 * to the earliest window not emitted, counted once. */
static void test_idle_then_late(void **state)
{
    fixture *fx = *state;
    fs_merge *m = new_merge(fx, 2);
    send(fx, m, 1, 2, INT64_MIN, true, NULL, 0, NULL, 0);
    win w0 = {0, 3, 0, 0, 3};
    send(fx, m, 0, 2, MIN, false, &w0, 1, NULL, 0);
    assert_has(last(fx, "shop/0"), "\"completed\":3");
    win back = {0, 4, 2, 1, 5};
    send(fx, m, 1, 2, MIN / 2, false, &back, 1, NULL, 0);
    /* now partition 1 holds G at 30 s; partition 0 moves on */
    win w0b = {MIN, 1, 0, 0, 1};
    send(fx, m, 0, 2, 2 * MIN, false, &w0b, 1, NULL, 0);
    assert_null(last(fx, "shop/60000"));
    send(fx, m, 1, 2, 2 * MIN, false, NULL, 0, NULL, 0);
    const char *v = last(fx, "shop/60000");
    assert_has(v, "\"completed\":1");
    assert_has(v, "\"late_events\":6");     /* 5 events + 1 late event it carried */
    assert_has(v, "\"rejected_events\":2"); /* partition-wide, on every funnel */
    assert_has(last(fx, "lead/60000"), "\"rejected_events\":2");
    assert_has(last(fx, "shop/0"), "\"completed\":3"); /* not emitted again */
    assert_int_equal(fs_merge_get_stats(m).late_windows, 1);
    fs_merge_free(m);
}

/* Every partition idle: the merge goes on to the furthest of them (the
 * traffic that stopped had got that far), not nowhere. */
static void test_all_idle(void **state)
{
    fixture *fx = *state;
    fs_merge *m = new_merge(fx, 2);
    win w0 = {0, 3, 0, 0, 3};
    send(fx, m, 0, 2, 2 * MIN, false, &w0, 1, NULL, 0);
    send(fx, m, 1, 2, MIN / 2, false, NULL, 0, NULL, 0);
    assert_null(last(fx, "shop/0"));
    send(fx, m, 0, 2, 2 * MIN, true, NULL, 0, NULL, 0);
    send(fx, m, 1, 2, MIN / 2, true, NULL, 0, NULL, 0);
    assert_has(last(fx, "shop/0"), "\"completed\":3");
    assert_int_equal(fs_merge_get_stats(m).emitted, 2 * MIN);
    fs_merge_free(m);
}

/* Cohort counts are cumulative per partition: a newer partial replaces the
 * older one, an older one sent again (a restart from an older checkpoint)
 * takes nothing back, and the final record sums the partitions. */
static void test_cohorts_replace_and_sum(void **state)
{
    fixture *fx = *state;
    fs_merge *m = new_merge(fx, 2);
    coh a = {0, 2}, a2 = {0, 5}, b = {0, 1};
    send(fx, m, 0, 2, MIN, false, NULL, 0, &a, 1);
    send(fx, m, 0, 2, 2 * MIN, false, NULL, 0, &a2, 1);
    send(fx, m, 1, 2, 2 * MIN, false, NULL, 0, &b, 1);
    assert_has(last(fx, "shop/cohort/0"), "\"started\":6"); /* the tick at 2m */
    assert_has(last(fx, "shop/cohort/0"), "\"final\":false");
    send(fx, m, 0, 2, 3 * MIN, false, NULL, 0, &a, 1); /* 2 again, after 5 */
    send(fx, m, 0, 2, 4 * MIN, false, NULL, 0, NULL, 0);
    send(fx, m, 1, 2, 4 * MIN, false, NULL, 0, &b, 1);
    const char *v = last(fx, "shop/cohort/0");
    assert_has(v, "\"started\":6");
    assert_has(v, "\"final\":true");
    assert_true(fs_merge_get_stats(m).cohort_records >= 2);
    fs_merge_free(m);
}

/* Every partition at +inf: everything is out, and the merger says so. */
static void test_complete_at_end(void **state)
{
    fixture *fx = *state;
    fs_merge *m = new_merge(fx, 2);
    win w0 = {0, 3, 0, 0, 3};
    coh a = {0, 2};
    send(fx, m, 0, 2, INT64_MAX, false, &w0, 1, &a, 1);
    assert_false(fs_merge_complete(m));
    send(fx, m, 1, 2, INT64_MAX, false, NULL, 0, NULL, 0);
    assert_true(fs_merge_complete(m));
    assert_has(last(fx, "shop/cohort/0"), "\"final\":true");
    fs_merge_free(m);
}

/* Snapshot, restore into a new merger, go on: the same records as one
 * merger that saw everything. */
static void test_snapshot_restore(void **state)
{
    fixture *fx = *state;
    win w0 = {0, 3, 0, 0, 3}, w1 = {0, 4, 1, 0, 4}, w2 = {MIN, 2, 0, 0, 2};
    coh a = {0, 2}, c1 = {0, 1};
    for (int restart = 0; restart < 2; restart++) {
        fx->n_out = 0;
        fs_merge *m = new_merge(fx, 2);
        send(fx, m, 0, 2, 2 * MIN, false, (win[]){w0, w2}, 2, &a, 1);
        if (restart) {
            fs_buf b = {0};
            assert_true(fs_merge_snapshot(m, &b, 7));
            assert_false(fs_merge_snapshot(m, &b, 8)); /* nothing changed since */
            fs_merge_free(m);
            m = new_merge(fx, 0);
            char err[200];
            assert_int_equal(fs_merge_restore(m, b.p, b.len, err, sizeof err), 0);
            fs_buf_free(&b);
        }
        send(fx, m, 1, 2, INT64_MAX, false, &w1, 1, &c1, 1);
        send(fx, m, 0, 2, INT64_MAX, false, NULL, 0, NULL, 0);
        assert_has(last(fx, "shop/0"), "\"completed\":7");
        assert_has(last(fx, "shop/0"), "\"rejected_events\":1");
        assert_has(last(fx, "shop/60000"), "\"completed\":2");
        assert_has(last(fx, "shop/cohort/0"), "\"started\":3");
        assert_true(fs_merge_complete(m));
        fs_merge_free(m);
    }
}

/* A partial of another configuration is refused, and changes nothing. */
static void test_other_config_refused(void **state)
{
    fixture *fx = *state;
    fs_merge *m = new_merge(fx, 1);
    fs_state_partial pt = {.config_hash = 12345, .part = 0, .n_parts = 1, .wm = INT64_MAX};
    fs_buf b = {0};
    uint32_t n_stages[2] = {2, 2};
    fs_state_encode_partial(&b, &pt, fx->funnels->n, n_stages, NULL);
    char err[200];
    assert_int_equal(fs_merge_partial(m, b.p, b.len, err, sizeof err), -1);
    assert_non_null(strstr(err, "another configuration"));
    assert_int_equal(fs_merge_partial(m, "\x01", 1, err, sizeof err), -1);
    assert_int_equal(fs_merge_get_stats(m).bad_partials, 2);
    assert_false(fs_merge_complete(m));
    fs_buf_free(&b);
    fs_merge_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_waits_for_every_partition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_counts_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_then_late, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cohorts_replace_and_sum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_complete_at_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_restore, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_config_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
