/* Unit tests of the journey state machine (SPEC §2), rule by rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "funnel.h"

static char *ev_a[] = {"ea"}, *ev_b[] = {"eb"}, *ev_c[] = {"ec"}, *excl[] = {"unsub"};
static fs_stage_cfg stages[] = {
    {"a", ev_a, 1, false}, {"b", ev_b, 1, false}, {"c", ev_c, 1, false}};

static fs_funnels *compile(fs_mode mode)
{
    static fs_funnel_cfg fc;
    static fs_config cfg;
    fc = (fs_funnel_cfg){"f", mode, 1000, excl, 1, stages, 3};
    cfg = (fs_config){.funnels = &fc, .n_funnels = 1};
    return fs_funnels_compile(&cfg);
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
    fs_decision d = fs_funnel_decide(&fs->funnel[0], NULL, 10, 1);
    assert_int_equal(d.action, FS_ACT_START);
    assert_int_equal(d.stage, 1);
    assert_false(d.completes);
    d = fs_funnel_decide(&fs->funnel[0], NULL, 10, 2); /* entering at the last stage completes */
    assert_int_equal(d.action, FS_ACT_START);
    assert_true(d.completes);
    fs_funnels_free(fs);
}

static void test_strict_needs_stage_zero(void **state)
{
    (void)state;
    fs_funnels *fs = compile(FS_MODE_STRICT);
    assert_int_equal(fs_funnel_decide(&fs->funnel[0], NULL, 10, 1).action, FS_ACT_IGNORE);
    assert_int_equal(fs_funnel_decide(&fs->funnel[0], NULL, 10, 0).action, FS_ACT_START);
    fs_funnels_free(fs);
}

static void test_strict_jump_is_ignored_not_touch(void **state)
{
    (void)state;
    fs_funnels *fs = compile(FS_MODE_STRICT);
    fs_journey j = {0};
    fs_journey_init(&j, 0, 0, 7);
    assert_int_equal(fs_funnel_decide(&fs->funnel[0], &j, 5, 2).action, FS_ACT_IGNORE);
    fs_decision d = fs_funnel_decide(&fs->funnel[0], &j, 5, 1);
    assert_int_equal(d.action, FS_ACT_ADVANCE);
    assert_int_equal(d.stage, 1);
    assert_int_equal(fs_funnel_decide(&fs->funnel[0], &j, 5, 0).action, FS_ACT_TOUCH);
    fs_funnels_free(fs);
}

static void test_open_skip_advances(void **state)
{
    (void)state;
    fs_funnels *fs = compile(FS_MODE_OPEN);
    fs_journey j = {0};
    fs_journey_init(&j, 0, 0, 7);
    fs_decision d = fs_funnel_decide(&fs->funnel[0], &j, 5, 2);
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
    fs_decision d = fs_funnel_decide(&fs->funnel[0], &j, 1100, 1);
    assert_false(d.expire); /* exactly start + window still counts */
    assert_int_equal(d.action, FS_ACT_ADVANCE);
    d = fs_funnel_decide(&fs->funnel[0], &j, 1101, 1);
    assert_true(d.expire);
    assert_int_equal(d.action, FS_ACT_START); /* the same event starts anew */
    d = fs_funnel_decide(&fs->funnel[0], &j, 1101, FS_ROLE_NONE);
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
    assert_int_equal(fs_funnel_decide(&fs->funnel[0], &j, 5, FS_ROLE_EXCLUDE).action,
                     FS_ACT_EXCLUDE);
    assert_int_equal(fs_funnel_decide(&fs->funnel[0], NULL, 5, FS_ROLE_EXCLUDE).action,
                     FS_ACT_IGNORE);
    fs_decision d = fs_funnel_decide(&fs->funnel[0], &j, 2000, FS_ROLE_EXCLUDE);
    assert_true(d.expire); /* expired first: nothing left to exclude */
    assert_int_equal(d.action, FS_ACT_IGNORE);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
