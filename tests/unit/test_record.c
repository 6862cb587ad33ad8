/* Unit tests of record.c: the flow record's fields per funnel options, the
 * MessagePack form against the JSON one, and the "(other)" cut (SPEC §4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "record.h"

static char *ev_a[] = {"ea"}, *ev_b[] = {"eb"}, *ev_c[] = {"ec"};
static fs_stage_cfg stages[] = {{.name = "a", .events = ev_a, .n_events = 1},
                                {.name = "b", .events = ev_b, .n_events = 1},
                                {.name = "c", .events = ev_c, .n_events = 1}};

static fs_funnel_cfg funnel(unsigned breakdowns, uint32_t max, bool stage_time)
{
    return (fs_funnel_cfg){.name = "f",
                           .conversion_window_ms = 1000,
                           .stages = stages,
                           .n_stages = 3,
                           .breakdowns = breakdowns,
                           .max_breakdown_values = max,
                           .stage_time = stage_time};
}

static const fs_window_id win = {60000, 120000};

/* A label's stats with reached {r, 0, 0} and the given credits. */
static void label(fs_dict *d, fs_label_stats *(*get)(fs_flow *, uint32_t), fs_flow *fl,
                  const char *name, uint64_t reached0, uint64_t first, uint64_t last)
{
    fs_label_stats *st = get(fl, fs_dict_intern(d, name, strlen(name)));
    st->reached[0] += reached0;
    st->first_touch += first;
    st->last_touch += last;
    if (first)
        fs_fixed_add(&st->linear, fs_fixed_ratio(first, 1));
}

static char *json_of(const fs_funnel_cfg *f, const fs_flow *fl, const fs_dict *d)
{
    fs_buf b = {0};
    fs_record_flow(&b, FS_FORMAT_JSON, f, win, fl, 0, d, false);
    fs_buf_putc(&b, '\0');
    return b.p;
}

static void assert_has(const char *s, const char *part)
{
    if (!strstr(s, part)) {
        print_error("'%s'\nlacks '%s'\n", s, part);
        fail();
    }
}

static void assert_lacks(const char *s, const char *part)
{
    if (strstr(s, part)) {
        print_error("'%s'\nhas '%s'\n", s, part);
        fail();
    }
}

/* Top-level keys of a JSON object: one per ':' at depth 1 outside strings. */
static size_t json_top_keys(const char *s)
{
    size_t n = 0;
    int depth = 0;
    bool in_str = false;
    for (; *s; s++) {
        if (in_str) {
            if (*s == '\\')
                s++;
            else if (*s == '"')
                in_str = false;
        } else if (*s == '"') {
            in_str = true;
        } else if (*s == '{' || *s == '[') {
            depth++;
        } else if (*s == '}' || *s == ']') {
            depth--;
        } else if (*s == ':' && depth == 1) {
            n++;
        }
    }
    return n;
}

/* The MessagePack record is one whole map with as many entries as the
 * JSON record has keys, and nothing after it. (Flow records used to
 * declare a map two entries larger than they wrote.) */
static void assert_msgpack_matches_json(const fs_funnel_cfg *f, const fs_flow *fl, const fs_dict *d,
                                        bool evicted)
{
    fs_buf js = {0}, mp = {0};
    fs_record_flow(&js, FS_FORMAT_JSON, f, win, fl, 3, d, evicted);
    fs_buf_putc(&js, '\0');
    fs_record_flow(&mp, FS_FORMAT_MSGPACK, f, win, fl, 3, d, evicted);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, mp.p, mp.len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, mp.len);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
    assert_int_equal(u.data.via.map.size, json_top_keys(js.p));
    msgpack_unpacked_destroy(&u);
    free(js.p);
    free(mp.p);
}

static void test_msgpack_map_size(void **state)
{
    (void)state;
    fs_dict d;
    fs_dict_init(&d);
    fs_flow *fl = fs_flow_new(3);
    label(&d, fs_flow_channel, fl, "search", 2, 1, 1);
    label(&d, fs_flow_campaign, fl, "spring", 2, 1, 1);
    unsigned all = FS_BREAKDOWN_CHANNEL | FS_BREAKDOWN_SEGMENT | FS_BREAKDOWN_CAMPAIGN;
    fs_funnel_cfg cfgs[] = {funnel(FS_BREAKDOWN_DEFAULT, 1000, true),
                            funnel(FS_BREAKDOWN_DEFAULT, 1000, false), funnel(0, 1000, true),
                            funnel(all, 1, true), funnel(FS_BREAKDOWN_CAMPAIGN, 1000, false)};
    for (size_t i = 0; i < sizeof(cfgs) / sizeof(cfgs[0]); i++) {
        assert_msgpack_matches_json(&cfgs[i], fl, &d, false);
        assert_msgpack_matches_json(&cfgs[i], fl, &d, true);
    }
    fs_flow_free(fl);
    fs_dict_free(&d);
}

static void test_fields_follow_options(void **state)
{
    (void)state;
    fs_dict d;
    fs_dict_init(&d);
    fs_flow *fl = fs_flow_new(3);
    label(&d, fs_flow_channel, fl, "search", 1, 1, 1);
    fs_funnel_cfg f = funnel(FS_BREAKDOWN_DEFAULT, 1000, true);
    char *s = json_of(&f, fl, &d);
    assert_has(s, "\"by_channel\":{\"search\"");
    assert_has(s, "\"by_segment\":{}");
    assert_lacks(s, "by_campaign");
    assert_has(s, "\"attribution\":{\"first_touch\":{\"search\":1},\"last_touch\":{\"search\":1},"
                  "\"linear\":{\"search\":1}}");
    /* no stage time counted: two empty summaries, after attribution */
    assert_has(s, "}},\"stage_time_ms\":[{\"count\":0,\"min\":null,\"max\":null,\"sum\":0,"
                  "\"p50\":null,\"p90\":null,\"p99\":null},{\"count\":0,");
    free(s);

    f = funnel(FS_BREAKDOWN_CAMPAIGN, 1000, false);
    label(&d, fs_flow_campaign, fl, "", 4, 0, 1);
    s = json_of(&f, fl, &d);
    assert_lacks(s, "by_channel");
    assert_lacks(s, "by_segment");
    assert_lacks(s, "stage_time_ms");
    assert_has(s, "\"by_campaign\":{\"\":{\"reached\":[4,0,0],\"completed\":0}}");
    assert_has(s, "\"campaign\":{\"first_touch\":{},\"last_touch\":{\"\":1},\"linear\":{}}}");
    free(s);

    fs_sketch_add(&fs_flow_stage_times(fl)[1], 250);
    f = funnel(0, 1000, true);
    s = json_of(&f, fl, &d);
    assert_has(s, "{\"count\":1,\"min\":250,\"max\":250,\"sum\":250,\"p50\":250,\"p90\":250,"
                  "\"p99\":250}]");
    free(s);
    fs_flow_free(fl);
    fs_dict_free(&d);
}

/* max 2 of four campaigns and a real "(other)", by reached: c (9) first,
 * then b and d tie at 5 and b wins by name; d (5), a (1) and the real
 * "(other)" (2) are summed under "(other)" (8). A value with no count is
 * no value of the record. */
static void test_other_cut(void **state)
{
    (void)state;
    fs_dict d;
    fs_dict_init(&d);
    fs_flow *fl = fs_flow_new(3);
    label(&d, fs_flow_campaign, fl, "a", 1, 0, 0);
    label(&d, fs_flow_campaign, fl, "d", 5, 0, 0);
    label(&d, fs_flow_campaign, fl, "c", 9, 0, 0);
    label(&d, fs_flow_campaign, fl, "b", 5, 0, 0);
    label(&d, fs_flow_campaign, fl, "(other)", 2, 0, 0);
    label(&d, fs_flow_campaign, fl, "zero", 0, 0, 0); /* no count: not a value of the record */
    fs_funnel_cfg f = funnel(FS_BREAKDOWN_CAMPAIGN, 2, false);
    char *s = json_of(&f, fl, &d);
    assert_has(s, "\"by_campaign\":{\"(other)\":{\"reached\":[8,0,0],\"completed\":0},"
                  "\"b\":{\"reached\":[5,0,0],\"completed\":0},"
                  "\"c\":{\"reached\":[9,0,0],\"completed\":0}}");
    free(s);

    /* Within the limit nothing is cut: the real "(other)" stays as it is
     * (five values, four of them real, limit 4). */
    f = funnel(FS_BREAKDOWN_CAMPAIGN, 4, false);
    s = json_of(&f, fl, &d);
    assert_has(s, "\"by_campaign\":{\"(other)\":{\"reached\":[2,0,0],\"completed\":0},"
                  "\"a\":{\"reached\":[1,0,0],");
    free(s);
    fs_flow_free(fl);
    fs_dict_free(&d);
}

/* Attribution maps are cut one by one, each by its own credit. */
static void test_other_cut_per_attribution_map(void **state)
{
    (void)state;
    fs_dict d;
    fs_dict_init(&d);
    fs_flow *fl = fs_flow_new(3);
    label(&d, fs_flow_channel, fl, "email", 1, 3, 0);
    label(&d, fs_flow_channel, fl, "search", 1, 1, 5);
    label(&d, fs_flow_channel, fl, "social", 1, 2, 1);
    fs_funnel_cfg f = funnel(FS_BREAKDOWN_CHANNEL, 1, false);
    char *s = json_of(&f, fl, &d);
    /* by_channel: all tie at 1, "email" first by name */
    assert_has(s, "\"by_channel\":{\"(other)\":{\"reached\":[2,0,0],\"completed\":0},"
                  "\"email\":{\"reached\":[1,0,0],\"completed\":0}}");
    assert_has(s, "\"first_touch\":{\"(other)\":3,\"email\":3}");
    assert_has(s, "\"last_touch\":{\"(other)\":1,\"search\":5}");
    assert_has(s, "\"linear\":{\"(other)\":3,\"email\":3}");
    free(s);
    fs_flow_free(fl);
    fs_dict_free(&d);
}

/* Linear credit ranks by its exact value: thirds summed in fixed point
 * (each rounded down at 2^-64) tie with a whole credit, so the name
 * decides. */
static void test_other_cut_linear_ties(void **state)
{
    (void)state;
    fs_dict d;
    fs_dict_init(&d);
    fs_flow *fl = fs_flow_new(3);
    fs_label_stats *x = fs_flow_campaign(fl, fs_dict_intern(&d, "x", 1));
    fs_label_stats *y = fs_flow_campaign(fl, fs_dict_intern(&d, "y", 1));
    for (int i = 0; i < 3; i++)
        fs_fixed_add(&x->linear, fs_fixed_ratio(1, 3));
    fs_fixed_add(&y->linear, fs_fixed_ratio(1, 1));
    assert_true(x->linear.whole == 0); /* 0.999...: below y's 1 in fixed point */
    fs_funnel_cfg f = funnel(FS_BREAKDOWN_CAMPAIGN, 1, false);
    char *s = json_of(&f, fl, &d);
    assert_has(s, "\"linear\":{\"(other)\":1,\"x\":");
    free(s);
    fs_flow_free(fl);
    fs_dict_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msgpack_map_size),
        cmocka_unit_test(test_fields_follow_options),
        cmocka_unit_test(test_other_cut),
        cmocka_unit_test(test_other_cut_per_attribution_map),
        cmocka_unit_test(test_other_cut_linear_ties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
