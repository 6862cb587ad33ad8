/* test_route.c -- the router (src/core/route.h): who gets which message,
 * with which watermark, and where every worker syncs.
 *
 * Config: 1-minute windows, 1-minute cohort emission, 1 s out-of-orderness.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "config.h"
#include "journey_table.h"
#include "route.h"

#define MIN 60000

static const char yaml[] = "window: {size: 1m, max_out_of_orderness: 1s}\n"
                           "cohort: {emit_interval: 1m}\n"
                           "funnels:\n"
                           "  - name: f\n"
                           "    stages:\n"
                           "      - {name: a, events: [a]}\n"
                           "      - {name: b, events: [b]}\n";

typedef struct fixture {
    fs_config *cfg;
    fs_router r;
    fs_routed out;
    fs_event ev[16];
    uint8_t status[16];
    uint16_t part[16];
    uint32_t n;
} fixture;

static fixture *setup(uint32_t workers)
{
    static fixture fx;
    memset(&fx, 0, sizeof fx);
    char err[256];
    fx.cfg = fs_config_parse(yaml, sizeof yaml - 1, "test", err, sizeof err);
    assert_non_null(fx.cfg);
    fs_router_init(&fx.r, fx.cfg, workers);
    fs_routed_init(&fx.out, workers, 16);
    return &fx;
}

static void teardown(fixture *fx, uint32_t workers)
{
    fs_routed_destroy(&fx->out, workers);
    fs_router_destroy(&fx->r);
    fs_config_free(fx->cfg);
}

/* A hash owned by worker w of n (the table's rule: the high bits). */
static uint64_t hash_of(uint32_t w, uint32_t n)
{
    for (uint64_t h = 1;; h += 0x9e3779b97f4a7c15ull)
        if (fs_journey_table_owner(h, n) == w)
            return h;
}

static void add(fixture *fx, uint32_t owner, uint32_t workers, int64_t ts, uint16_t part,
                fs_reject status)
{
    fx->ev[fx->n] = (fs_event){.ts = ts, .customer_hash = hash_of(owner, workers)};
    fx->status[fx->n] = (uint8_t)status;
    fx->part[fx->n++] = part;
}

static void route(fixture *fx, const fs_part_ctl *ctl, uint32_t n_ctl)
{
    fs_route_head head = {.ctl = ctl, .n_ctl = n_ctl};
    fs_router_route(&fx->r, &head, fx->ev, fx->status, fx->part, fx->n, &fx->out);
    fx->n = 0;
}

static void test_lists_and_watermarks(void **state)
{
    (void)state;
    fixture *fx = setup(2);
    add(fx, 1, 2, 10000, 0, FS_OK);
    add(fx, 0, 2, 20000, 0, FS_OK);
    add(fx, 1, 2, 0, 0, FS_REJECT_NOT_A_MAP); /* rejections: worker 0 */
    add(fx, 1, 2, 70000, 0, FS_OK);           /* watermark 69000: crosses the first minute */
    add(fx, 0, 2, 5000, 0, FS_OK);            /* late: the watermark stays */
    route(fx, NULL, 0);

    assert_int_equal(fx->out.n_valid, 4);
    assert_int_equal(fx->out.n_own[0], 3);
    assert_int_equal(fx->out.n_own[1], 2);
    const fs_route_ent *w0 = fx->out.own[0], *w1 = fx->out.own[1];
    assert_int_equal(w1[0].idx, 0);
    assert_int_equal(w1[0].wm, 9000);
    assert_int_equal(w0[0].idx, 1);
    assert_int_equal(w0[0].wm, 19000);
    assert_int_equal(w0[1].idx, 2); /* the rejection, at the watermark in force */
    assert_int_equal(w0[1].wm, 19000);
    assert_int_equal(w1[1].idx, 3);
    assert_int_equal(w1[1].wm, 69000);
    assert_int_equal(w0[2].idx, 4);
    assert_int_equal(w0[2].wm, 69000);
    for (uint32_t k = 0; k < 3; k++) /* one partition: its clock is the instance's */
        assert_int_equal(w0[k].instance_wm, w0[k].wm);

    /* sync points: the first watermark (before message 0), the first
     * minute's end (before message 3) */
    assert_int_equal(fx->out.n_sync, 2);
    assert_true(fx->out.sync[0].first);
    assert_int_equal(fx->out.sync[0].pos, 0);
    assert_int_equal(fx->out.sync[0].wm, 9000);
    assert_false(fx->out.sync[1].first);
    assert_true(fx->out.sync[1].step);
    assert_int_equal(fx->out.sync[1].pos, 3);
    assert_int_equal(fx->out.sync[1].wm_before, 19000);
    assert_int_equal(fx->out.sync[1].wm, 69000);
    assert_int_equal(fx->out.sync[1].max_ts, 70000);
    assert_int_equal(fx->out.wm, 69000);
    assert_int_equal(fx->out.max_ts, 70000);
    teardown(fx, 2);
}

/* The watermark is the minimum over active partitions; an assigned
 * partition holds it until its first event, an idle one not at all. */
static void test_partition_clocks(void **state)
{
    (void)state;
    fixture *fx = setup(1);
    fs_part_ctl assign[2] = {{0, FS_PART_ASSIGN}, {1, FS_PART_ASSIGN}};
    add(fx, 0, 1, 5 * MIN, 0, FS_OK);
    route(fx, assign, 2);
    assert_false(fx->out.have_wm); /* partition 1 has not spoken */
    assert_int_equal(fx->out.n_sync, 0);
    assert_int_equal(fx->out.own[0][0].instance_wm, INT64_MIN);
    assert_int_equal(fx->out.own[0][0].wm, 5 * MIN - 1000); /* its partition's own clock */

    add(fx, 0, 1, 3 * MIN, 1, FS_OK);
    route(fx, NULL, 0);
    assert_true(fx->out.have_wm);
    assert_int_equal(fx->out.wm, 3 * MIN - 1000);
    assert_int_equal(fx->out.n_sync, 1);
    assert_true(fx->out.sync[0].first && fx->out.sync[0].step);
    assert_int_equal(fx->out.own[0][0].instance_wm, 3 * MIN - 1000);
    assert_int_equal(fx->out.own[0][0].wm, 3 * MIN - 1000);
    /* the sync point carries both partitions' clocks */
    assert_int_equal(fx->out.sync[0].n_parts, 2);
    const fs_part_wm *pw = &fx->out.parts[fx->out.sync[0].parts_at];
    assert_int_equal(pw[0].part, 0);
    assert_int_equal(pw[0].wm, 5 * MIN - 1000);
    assert_int_equal(pw[1].part, 1);
    assert_int_equal(pw[1].wm, 3 * MIN - 1000);

    /* a partition's entries carry its own watermark, not the minimum */
    add(fx, 0, 1, 6 * MIN, 0, FS_OK);
    add(fx, 0, 1, 4 * MIN, 1, FS_OK);
    route(fx, NULL, 0);
    assert_int_equal(fx->out.own[0][0].wm, 6 * MIN - 1000);
    assert_int_equal(fx->out.own[0][0].instance_wm, 3 * MIN - 1000);
    assert_int_equal(fx->out.own[0][1].wm, 4 * MIN - 1000);
    assert_int_equal(fx->out.own[0][1].instance_wm, 4 * MIN - 1000);

    fs_part_ctl idle = {1, FS_PART_IDLE};
    route(fx, &idle, 1); /* no messages: partition 0 alone now */
    assert_int_equal(fx->out.wm, 6 * MIN - 1000);
    assert_int_equal(fx->out.n_sync, 1);
    assert_int_equal(fx->out.sync[0].pos, 0);
    assert_true(fx->out.sync[0].step);
    teardown(fx, 1);
}

/* With flush_rejected, a batch holding rejections ends with a step at the
 * same watermark (it carries the dead letters to the sink); without, not. */
static void test_flush_after_rejections(void **state)
{
    (void)state;
    fixture *fx = setup(1);
    add(fx, 0, 1, 10000, 0, FS_OK);
    route(fx, NULL, 0);
    add(fx, 0, 1, 0, 0, FS_REJECT_TRUNCATED);
    route(fx, NULL, 0);
    assert_int_equal(fx->out.n_sync, 0);

    fx->r.flush_rejected = true;
    add(fx, 0, 1, 11000, 0, FS_OK);
    route(fx, NULL, 0);
    assert_int_equal(fx->out.n_sync, 0); /* nothing rejected: no flush */
    add(fx, 0, 1, 0, 0, FS_REJECT_TRUNCATED);
    add(fx, 0, 1, 12000, 0, FS_OK);
    route(fx, NULL, 0);
    assert_int_equal(fx->out.n_sync, 1);
    const fs_sync *s = &fx->out.sync[0];
    assert_true(s->step);
    assert_int_equal(s->pos, 2); /* after the batch's last message */
    assert_int_equal(s->wm, 11000);
    assert_int_equal(s->wm_before, 11000);
    teardown(fx, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lists_and_watermarks),
        cmocka_unit_test(test_partition_clocks),
        cmocka_unit_test(test_flush_after_rejections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
