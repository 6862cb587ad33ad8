/* Unit tests of the journey state machine (SPEC §2), rule by rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "funnel.h"

static char *ev_a[] = {"ea"}, *ev_b[] = {"eb"}, *ev_c[] = {"ec"}, *ev_d[] = {"ed"},
            *ev_e[] = {"ee"}, *excl[] = {"unsub"};
static fs_stage_cfg stages[] = {{.name = "a", .events = ev_a, .n_events = 1},
                                {.name = "b", .events = ev_b, .n_events = 1},
                                {.name = "c", .events = ev_c, .n_events = 1}};

static fs_funnels *compile_stages(fs_mode mode, fs_stage_cfg *st, size_t n)
{
    static fs_funnel_cfg fc;
    static fs_config cfg;
    fc = (fs_funnel_cfg){.name = "f",
                         .mode = mode,
                         .conversion_window_ms = 1000,
                         .exclude = excl,
                         .n_exclude = 1,
                         .stages = st,
                         .n_stages = n,
                         .breakdowns = FS_BREAKDOWN_DEFAULT,
                         .max_breakdown_values = 1000,
                         .stage_time = true};
    cfg = (fs_config){.funnels = &fc, .n_funnels = 1};
    return fs_funnels_compile(&cfg);
}

static fs_funnels *compile(fs_mode mode)
{
    return compile_stages(mode, stages, 3);
}

static int role(const fs_funnels *fs, const char *type)
{
    fs_slice s = {type, (uint32_t)strlen(type)};
    return fs_funnel_role(&fs->funnel[0], fs_funnels_type_id(fs, s));
}

static void test_roles(void **state)
{
    (void)state;
    fs_funnels *fs = compile(FS_MODE_OPEN);
    assert_int_equal(role(fs, "ea"), 0);
    assert_int_equal(role(fs, "ec"), 2);
    assert_int_equal(role(fs, "unsub"), FS_ROLE_EXCLUDE);
    assert_int_equal(role(fs, "other"), FS_ROLE_NONE);
    fs_funnels_free(fs);
}

static void test_open_start_mid_funnel(void **state)
{
    (void)state;
    fs_funnels *fs = compile(FS_MODE_OPEN);
    fs_decision d = fs_funnel_decide(&fs->funnel[0], NULL, 0, 10, 1);
    assert_int_equal(d.action, FS_ACT_START);
    assert_int_equal(d.stage, 1);
    assert_false(d.completes);
    d = fs_funnel_decide(&fs->funnel[0], NULL, 0, 10, 2); /* entering at the last stage completes */
    assert_int_equal(d.action, FS_ACT_START);
    assert_true(d.completes);
    fs_funnels_free(fs);
}

static void test_strict_needs_stage_zero(void **state)
{
    (void)state;
    fs_funnels *fs = compile(FS_MODE_STRICT);
    assert_int_equal(fs_funnel_decide(&fs->funnel[0], NULL, 0, 10, 1).action, FS_ACT_IGNORE);
    assert_int_equal(fs_funnel_decide(&fs->funnel[0], NULL, 0, 10, 0).action, FS_ACT_START);
    fs_funnels_free(fs);
}

static void test_strict_jump_is_ignored_not_touch(void **state)
{
    (void)state;
    fs_funnels *fs = compile(FS_MODE_STRICT);
    fs_journey j = {0};
    fs_journey_init(&j, 0, 0, 7);
    assert_int_equal(fs_funnel_decide(&fs->funnel[0], &j, 0, 5, 2).action, FS_ACT_IGNORE);
    fs_decision d = fs_funnel_decide(&fs->funnel[0], &j, 0, 5, 1);
    assert_int_equal(d.action, FS_ACT_ADVANCE);
    assert_int_equal(d.stage, 1);
    assert_int_equal(fs_funnel_decide(&fs->funnel[0], &j, 0, 5, 0).action, FS_ACT_TOUCH);
    fs_funnels_free(fs);
}

static void test_open_skip_advances(void **state)
{
    (void)state;
    fs_funnels *fs = compile(FS_MODE_OPEN);
    fs_journey j = {0};
    fs_journey_init(&j, 0, 0, 7);
    fs_decision d = fs_funnel_decide(&fs->funnel[0], &j, 0, 5, 2);
    assert_int_equal(d.action, FS_ACT_ADVANCE);
    assert_true(d.completes);
    fs_funnels_free(fs);
}

static void test_expiry_boundary(void **state)
{
    (void)state;
    fs_funnels *fs = compile(FS_MODE_OPEN);
    fs_journey j = {0};
    fs_journey_init(&j, 100, 0, 7); /* window 1000: expiry at 1100 */
    assert_int_equal(fs_journey_expiry(&j, &fs->funnel[0]), 1100);
    fs_decision d = fs_funnel_decide(&fs->funnel[0], &j, 0, 1100, 1);
    assert_false(d.expire); /* exactly start + window still counts */
    assert_int_equal(d.action, FS_ACT_ADVANCE);
    d = fs_funnel_decide(&fs->funnel[0], &j, 0, 1101, 1);
    assert_true(d.expire);
    assert_int_equal(d.action, FS_ACT_START); /* the same event starts anew */
    d = fs_funnel_decide(&fs->funnel[0], &j, 0, 1101, FS_ROLE_NONE);
    assert_true(d.expire); /* any event of the customer triggers expiry */
    assert_int_equal(d.action, FS_ACT_IGNORE);
    fs_funnels_free(fs);
}

static void test_exclusion(void **state)
{
    (void)state;
    fs_funnels *fs = compile(FS_MODE_OPEN);
    fs_journey j = {0};
    fs_journey_init(&j, 0, 1, 7);
    assert_int_equal(fs_funnel_decide(&fs->funnel[0], &j, 0, 5, FS_ROLE_EXCLUDE).action,
                     FS_ACT_EXCLUDE);
    assert_int_equal(fs_funnel_decide(&fs->funnel[0], NULL, 0, 5, FS_ROLE_EXCLUDE).action,
                     FS_ACT_IGNORE);
    fs_decision d = fs_funnel_decide(&fs->funnel[0], &j, 0, 2000, FS_ROLE_EXCLUDE);
    assert_true(d.expire); /* expired first: nothing left to exclude */
    assert_int_equal(d.action, FS_ACT_IGNORE);
    fs_funnels_free(fs);
}

/* a, b?, c?, d, e: strict advance passes over optional stages only. */
static fs_stage_cfg five[] = {{.name = "a", .events = ev_a, .n_events = 1},
                              {.name = "b", .events = ev_b, .n_events = 1, .optional = true},
                              {.name = "c", .events = ev_c, .n_events = 1, .optional = true},
                              {.name = "d", .events = ev_d, .n_events = 1},
                              {.name = "e", .events = ev_e, .n_events = 1}};

static fs_action strict_from(const fs_funnel *f, uint32_t max_stage, int k)
{
    fs_journey j = {0};
    fs_journey_init(&j, 0, max_stage, 7);
    return fs_funnel_decide(f, &j, 0, 5, k).action;
}

static void test_strict_over_optional_stages(void **state)
{
    (void)state;
    fs_funnels *fs = compile_stages(FS_MODE_STRICT, five, 5);
    const fs_funnel *f = &fs->funnel[0];
    assert_int_equal(f->optional, 0x6);
    assert_int_equal(strict_from(f, 0, 1), FS_ACT_ADVANCE); /* the next one */
    assert_int_equal(strict_from(f, 0, 2), FS_ACT_ADVANCE); /* over b? */
    assert_int_equal(strict_from(f, 0, 3), FS_ACT_ADVANCE); /* over b? and c? */
    assert_int_equal(strict_from(f, 0, 4), FS_ACT_IGNORE);  /* not over d */
    assert_int_equal(strict_from(f, 1, 3), FS_ACT_ADVANCE); /* over c? */
    assert_int_equal(strict_from(f, 2, 4), FS_ACT_IGNORE);  /* not over d */
    assert_int_equal(strict_from(f, 3, 4), FS_ACT_ADVANCE);
    /* a start still needs the first stage, which is never optional */
    assert_int_equal(fs_funnel_decide(f, NULL, 0, 5, 1).action, FS_ACT_IGNORE);
    /* skipped counts only the required stages passed over */
    assert_false(fs_funnel_skips(f, 1));
    assert_false(fs_funnel_skips(f, 2));
    assert_true(fs_funnel_skips(f, 3));
    fs_funnels_free(fs);
}

static void test_unordered_progress(void **state)
{
    (void)state;
    fs_funnels *fs = compile(FS_MODE_UNORDERED);
    const fs_funnel *f = &fs->funnel[0];
    fs_decision d = fs_funnel_decide(f, NULL, 0, 5, 2); /* any stage starts, at progress 0 */
    assert_int_equal(d.action, FS_ACT_START);
    assert_int_equal(d.stage, 0);
    assert_false(d.completes);
    fs_journey j = {0};
    fs_journey_init(&j, 0, 0, 7);
    uint32_t reached = 1u << 2;
    assert_int_equal(fs_funnel_decide(f, &j, reached, 6, 2).action, FS_ACT_TOUCH);
    d = fs_funnel_decide(f, &j, reached, 6, 0); /* a new stage: progress 1 */
    assert_int_equal(d.action, FS_ACT_ADVANCE);
    assert_int_equal(d.stage, 1);
    assert_false(d.completes);
    fs_journey_set_stage(&j, 1);
    reached |= 1u;
    assert_int_equal(fs_funnel_decide(f, &j, reached, 7, 0).action, FS_ACT_TOUCH);
    d = fs_funnel_decide(f, &j, reached, 7, 1); /* all three: complete */
    assert_int_equal(d.action, FS_ACT_ADVANCE);
    assert_int_equal(d.stage, 2);
    assert_true(d.completes);
    assert_int_equal(fs_funnel_decide(f, &j, reached, 7, FS_ROLE_EXCLUDE).action, FS_ACT_EXCLUDE);
    assert_true(fs_funnel_decide(f, &j, reached, 1001, 1).expire);
    fs_funnels_free(fs);
}

/* Only the funnels that use a feature get its bytes in the record. */
static void test_extension_layout(void **state)
{
    (void)state;
    static fs_funnel_cfg fc[3];
    fs_config cfg = {.funnels = fc, .n_funnels = 3};
    for (int i = 0; i < 3; i++)
        fc[i] = (fs_funnel_cfg){.name = "f",
                                .conversion_window_ms = 1000,
                                .stages = stages,
                                .n_stages = 3,
                                .breakdowns = FS_BREAKDOWN_DEFAULT};
    fs_funnels *fs = fs_funnels_compile(&cfg);
    assert_int_equal(fs->ext_bytes, 0);
    assert_null(fs_journey_stage_ts(&fs->funnel[0], NULL));
    fs_funnels_free(fs);
    fc[0].stage_time = true;
    fc[1].mode = FS_MODE_UNORDERED;
    fc[2].breakdowns |= FS_BREAKDOWN_CAMPAIGN;
    fs = fs_funnels_compile(&cfg);
    assert_int_equal(fs->ext_bytes, 8 + sizeof(fs_touch_list) + 8); /* the mask padded to 8 */
    assert_int_equal(fs->funnel[0].ext_stage_ts, 0);
    assert_int_equal(fs->funnel[0].ext_reached, FS_EXT_NONE);
    assert_int_equal(fs->funnel[1].ext_stage_ts, FS_EXT_NONE);
    assert_int_equal(fs->funnel[1].ext_reached, 8 + sizeof(fs_touch_list));
    assert_int_equal(fs->funnel[2].ext_campaign, 8);
    assert_int_equal(fs->funnel[2].ext_reached, FS_EXT_NONE);
    fs_funnels_free(fs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_open_start_mid_funnel),
        cmocka_unit_test(test_strict_needs_stage_zero),
        cmocka_unit_test(test_strict_jump_is_ignored_not_touch),
        cmocka_unit_test(test_open_skip_advances),
        cmocka_unit_test(test_expiry_boundary),
        cmocka_unit_test(test_exclusion),
        cmocka_unit_test(test_strict_over_optional_stages),
        cmocka_unit_test(test_unordered_progress),
        cmocka_unit_test(test_extension_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
