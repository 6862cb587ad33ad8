/* test_replay_cases.c -- end-to-end cases of `funnelstream replay` whose
 * expected records are worked out by hand from SPEC.md §1-4 and the README's
 * "semantics decisions" (numbered D1..D12 below).
 *
 * Every case writes a tiny YAML config and a few JSON lines, runs the real
 * binary, and asserts exact fields of the records. Times are written relative
 * to FS_E2E_T0 (aligned to 1m windows); M is one minute in ms, so the window
 * "T0+1M" is [T0+60000, T0+120000). Unless a case says otherwise:
 * max_out_of_orderness is 0 (the watermark is the highest ts seen), windows are
 * 1m tumbling, and the funnel `f` is s0[a0] -> s1[a1] -> s2[a2] (-> s3[a3]).
 *
 * Each case also runs with --threads 1 and --threads 3 and requires the same
 * flow records and final cohorts (SPEC §4: the output is a pure function of
 * input and config), then asserts on the --threads 3 output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e_util.h"

#define M           60000LL
#define N_EVENTS(a) (sizeof(a) / sizeof((a)[0]))

#define TTC_EMPTY                                                                                  \
    "{\"count\":0,\"min\":null,\"max\":null,\"sum\":0,\"p50\":null,\"p90\":null,\"p99\":null}"

/* A config with one funnel `f` of nstages stages s<i>[a<i>]; window is the
 * text inside `window: {...}`; exclude NULL = none; stage i is `optional:
 * true` when bit i of optional is set; extra (NULL = none) is more funnel
 * lines ("    breakdowns: [...]\n"). Static buffer: one config at a time. */
static const char *cfgx(const char *window, const char *mode, const char *cw, const char *exclude,
                        int nstages, unsigned optional, const char *extra)
{
    static char buf[2048];
    int n = snprintf(buf, sizeof(buf),
                     "window: {%s}\nfunnels:\n  - name: f\n    mode: %s\n"
                     "    conversion_window: %s\n",
                     window, mode, cw);
    if (exclude)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "    exclude: [%s]\n", exclude);
    if (extra)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s", extra);
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, "    stages:\n");
    for (int i = 0; i < nstages; i++)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "      - {name: s%d, events: [a%d]%s}\n", i,
                      i, (optional >> i) & 1u ? ", optional: true" : "");
    return buf;
}

static const char *cfg(const char *window, const char *mode, const char *cw, const char *exclude,
                       int nstages)
{
    return cfgx(window, mode, cw, exclude, nstages, 0, NULL);
}

#define WIN_1M "size: 1m, max_out_of_orderness: 0"

/* Replays text with 1 and 3 threads; both must agree on everything that is
 * a function of the input. Returns the 3-thread output. */
static char *replay_text_at(const char *config, const char *jsonl, const char *file, int line)
{
    char *one = fs_e2e_replay_at(config, jsonl, 1, file, line);
    char *three = fs_e2e_replay_at(config, jsonl, 3, file, line);
    char *c1 = fs_e2e_canonical(one), *c3 = fs_e2e_canonical(three);
    if (strcmp(c1, c3)) {
        print_error("--threads 1 and --threads 3 disagree:\n--- 1:\n%s--- 3:\n%s", c1, c3);
        _fail(file, line);
    }
    free(c1);
    free(c3);
    free(one);
    return three;
}

static char *replay_events_at(const char *config, const fs_e2e_event *evs, size_t n,
                              const char *file, int line)
{
    char *in = fs_e2e_jsonl(evs, n);
    char *out = replay_text_at(config, in, file, line);
    free(in);
    return out;
}

#define REPLAY(config, evs)       replay_events_at((config), (evs), N_EVENTS(evs), __FILE__, __LINE__)
#define REPLAY_TEXT(config, text) replay_text_at((config), (text), __FILE__, __LINE__)

/* ---- entry ---- */

static void test_open_entry_mid_funnel(void **state)
{
    (void)state;
    const fs_e2e_event evs[] = {{"c1", 1000, "a2", "web", "b2c", NULL}};
    char *out = REPLAY(cfg(WIN_1M, "open", "10m", NULL, 4), evs);

    /* Open mode: a2 (stage 2) starts a journey: entered[2]; stages 0..2 reached
     * (0 and 1 implicitly, so also skipped); all of it credited to the entering
     * event's channel and segment (D5). Nothing completes. */
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "window_end", "1732280460000");
    assert_field(r, "stages", "[\"s0\",\"s1\",\"s2\",\"s3\"]");
    assert_field(r, "entered", "[0,0,1,0]");
    assert_field(r, "reached", "[1,1,1,0]");
    assert_field(r, "skipped", "[1,1,0,0]");
    assert_field(r, "abandoned", "[0,0,0,0]");
    assert_field(r, "excluded", "[0,0,0,0]");
    assert_field(r, "completed", "0");
    assert_field_close(r, "revenue", "0");
    /* conversion: 1/1, 1/1, 0/1 */
    assert_field_close(r, "conversion", "[1,1,0]");
    assert_field(r, "ttc_ms", TTC_EMPTY);
    assert_field(r, "by_channel", "{\"web\":{\"reached\":[1,1,1,0],\"completed\":0}}");
    assert_field(r, "by_segment", "{\"b2c\":{\"reached\":[1,1,1,0],\"completed\":0}}");
    assert_field(r, "attribution", "{\"first_touch\":{},\"last_touch\":{},\"linear\":{}}");
    assert_field(r, "late_events", "0");
    assert_field(r, "rejected_events", "0");
    free(r);

    /* The journey expires at T0+1000+10m, i.e. in window T0+10M, at end of
     * input: abandoned[max_stage = 2] there, nothing in between. */
    r = expect_record(out, "flow", "f", 10 * M);
    assert_field(r, "entered", "[0,0,0,0]");
    assert_field(r, "reached", "[0,0,0,0]");
    assert_field(r, "abandoned", "[0,0,1,0]");
    /* conversion: every reached is 0 -> null */
    assert_field(r, "conversion", "[null,null,null]");
    free(r);
    assert_int_equal(fs_e2e_count_records(out, "flow", NULL), 2);
    free(out);
}

static void test_strict_entry_mid_funnel_is_ignored(void **state)
{
    (void)state;
    /* c1's a2 cannot start a strict journey: no count, no state. c2's a0 in
     * window T0+2M is the only thing counted. */
    const fs_e2e_event evs[] = {{"c1", 1000, "a2", "web", NULL, NULL},
                                {"c2", 2 * M, "a0", "web", NULL, NULL}};
    char *out = REPLAY(cfg(WIN_1M, "strict", "10m", NULL, 4), evs);
    expect_no_record(out, "flow", "f", 0);
    expect_no_record(out, "cohort", "f", 0);
    char *r = expect_record(out, "flow", "f", 2 * M);
    assert_field(r, "entered", "[1,0,0,0]");
    assert_field(r, "reached", "[1,0,0,0]");
    assert_field(r, "skipped", "[0,0,0,0]");
    free(r);
    /* Only c2's journey abandons (at T0+12M, max_stage 0). */
    r = expect_record(out, "flow", "f", 12 * M);
    assert_field(r, "abandoned", "[1,0,0,0]");
    free(r);
    assert_int_equal(fs_e2e_count_records(out, "flow", NULL), 2);
    free(out);

    /* Alone, the ignored event produces no records at all. */
    const fs_e2e_event only[] = {{"c1", 1000, "a2", "web", NULL, NULL}};
    out = REPLAY(cfg(WIN_1M, "strict", "10m", NULL, 4), only);
    assert_string_equal(out, "");
    free(out);
}

/* ---- advancing ---- */

static void test_open_advance_skips_stages(void **state)
{
    (void)state;
    const fs_e2e_event evs[] = {{"c1", 1000, "a0", "a", NULL, NULL},
                                {"c1", 2000, "a3", "b", NULL, "7"}};
    char *out = REPLAY(cfg(WIN_1M, "open", "10m", NULL, 4), evs);

    /* a0 starts (entered[0], reached[0], channel a); a3 advances 0 -> 3:
     * reached[1..3], skipped[1..2], all to channel b; stage 3 is the last, so
     * it completes: ttc 1000, revenue 7, first a, last b, linear a,b halves. */
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[1,0,0,0]");
    assert_field(r, "reached", "[1,1,1,1]");
    assert_field(r, "skipped", "[0,1,1,0]");
    assert_field(r, "abandoned", "[0,0,0,0]");
    assert_field(r, "completed", "1");
    assert_field_close(r, "revenue", "7");
    assert_field_close(r, "conversion", "[1,1,1]");
    assert_field(r, "ttc_ms.count", "1");
    assert_field(r, "ttc_ms.min", "1000");
    assert_field(r, "ttc_ms.max", "1000");
    assert_field(r, "ttc_ms.sum", "1000");
    assert_field(r, "by_channel.a", "{\"reached\":[1,0,0,0],\"completed\":0}");
    assert_field(r, "by_channel.b", "{\"reached\":[0,1,1,1],\"completed\":1}");
    assert_field(r, "attribution.first_touch", "{\"a\":1}");
    assert_field(r, "attribution.last_touch", "{\"b\":1}");
    assert_field_close(r, "attribution.linear", "{\"a\":0.5,\"b\":0.5}");
    free(r);
    /* Completed journeys do not abandon later. */
    assert_int_equal(fs_e2e_count_records(out, "flow", NULL), 1);
    free(out);
}

static void test_strict_ignores_skip(void **state)
{
    (void)state;
    const fs_e2e_event evs[] = {
        {"c1", 1000, "a0", "a", NULL, NULL}, {"c1", 2000, "a2", "b", NULL, NULL},
        {"c1", 3000, "a1", "c", NULL, NULL}, {"c1", 4000, "a2", "d", NULL, NULL},
        {"c1", 5000, "a3", "e", NULL, "3"},
    };
    char *out = REPLAY(cfg(WIN_1M, "strict", "10m", NULL, 4), evs);

    /* a0 starts; a2 at max_stage 0 is a jump: ignored entirely (D4: no count,
     * not a touch, not a funnel event); a1, a2, a3 advance one at a time.
     * Nothing skipped; ttc 5000-1000; channel b appears nowhere; linear over
     * the 4 funnel events a,c,d,e = 0.25 each. */
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[1,0,0,0]");
    assert_field(r, "reached", "[1,1,1,1]");
    assert_field(r, "skipped", "[0,0,0,0]");
    assert_field(r, "completed", "1");
    assert_field(r, "ttc_ms.sum", "4000");
    assert_field(r, "by_channel",
                 "{\"a\":{\"reached\":[1,0,0,0],\"completed\":0},"
                 "\"c\":{\"reached\":[0,1,0,0],\"completed\":0},"
                 "\"d\":{\"reached\":[0,0,1,0],\"completed\":0},"
                 "\"e\":{\"reached\":[0,0,0,1],\"completed\":1}}");
    assert_field(r, "attribution.first_touch", "{\"a\":1}");
    assert_field(r, "attribution.last_touch", "{\"e\":1}");
    assert_field_close(r, "attribution.linear", "{\"a\":0.25,\"c\":0.25,\"d\":0.25,\"e\":0.25}");
    free(r);
    free(out);

    /* Without the follow-up, a0 then a2 leaves the journey at stage 0: it
     * abandons at stage 0 at T0+1000+10m (window T0+10M). */
    const fs_e2e_event jump[] = {{"c1", 1000, "a0", "a", NULL, NULL},
                                 {"c1", 2000, "a2", "b", NULL, NULL}};
    out = REPLAY(cfg(WIN_1M, "strict", "10m", NULL, 4), jump);
    r = expect_record(out, "flow", "f", 0);
    assert_field(r, "reached", "[1,0,0,0]");
    assert_field(r, "skipped", "[0,0,0,0]");
    assert_field(r, "by_channel", "{\"a\":{\"reached\":[1,0,0,0],\"completed\":0}}");
    free(r);
    r = expect_record(out, "flow", "f", 10 * M);
    assert_field(r, "abandoned", "[1,0,0,0]");
    free(r);
    free(out);
}

/* ---- touch and attribution ---- */

static void test_touch_counts_nothing_but_shares_credit(void **state)
{
    (void)state;
    const fs_e2e_event evs[] = {{"c1", 1000, "a0", "a", NULL, NULL},
                                {"c1", 2000, "a0", "a", NULL, NULL},
                                {"c1", 3000, "a2", "b", NULL, "10"}};
    char *out = REPLAY(cfg(WIN_1M, "open", "10m", NULL, 3), evs);

    /* The second a0 (k = 0 <= max_stage 0) is a touch: no count (entered and
     * reached[0] stay 1), but it is a funnel event, so linear is over a,a,b:
     * a = 2/3, b = 1/3. a2 advances 0 -> 2 (skipping 1) and completes. */
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[1,0,0]");
    assert_field(r, "reached", "[1,1,1]");
    assert_field(r, "skipped", "[0,1,0]");
    assert_field(r, "completed", "1");
    assert_field(r, "ttc_ms.sum", "2000");
    assert_field(r, "by_channel.a", "{\"reached\":[1,0,0],\"completed\":0}");
    assert_field(r, "by_channel.b", "{\"reached\":[0,1,1],\"completed\":1}");
    assert_field(r, "attribution.first_touch", "{\"a\":1}");
    assert_field(r, "attribution.last_touch", "{\"b\":1}");
    assert_field_close(r, "attribution.linear",
                       "{\"a\":0.66666666666666663,\"b\":0.33333333333333331}");
    free(r);
    free(out);

    /* A touch on another channel after an advance: a(start) a(advance to 1)
     * x(touch of stage 0) c(complete). Channel x gets no reached count, hence
     * no by_channel entry, but a quarter of the linear credit; a gets half.
     * The completing event decides last_touch. */
    const fs_e2e_event evs2[] = {{"c1", 1000, "a0", "a", NULL, NULL},
                                 {"c1", 2000, "a1", "a", NULL, NULL},
                                 {"c1", 3000, "a0", "x", NULL, NULL},
                                 {"c1", 4000, "a2", "c", NULL, NULL}};
    out = REPLAY(cfg(WIN_1M, "open", "10m", NULL, 3), evs2);
    r = expect_record(out, "flow", "f", 0);
    assert_field(r, "reached", "[1,1,1]");
    assert_field(r, "skipped", "[0,0,0]");
    assert_field(r, "by_channel",
                 "{\"a\":{\"reached\":[1,1,0],\"completed\":0},"
                 "\"c\":{\"reached\":[0,0,1],\"completed\":1}}");
    assert_field(r, "attribution.first_touch", "{\"a\":1}");
    assert_field(r, "attribution.last_touch", "{\"c\":1}");
    assert_field_close(r, "attribution.linear", "{\"a\":0.5,\"c\":0.25,\"x\":0.25}");
    free(r);
    free(out);
}

/* ---- expiry ---- */

static void test_expiry_boundary_exact_time_still_counts(void **state)
{
    (void)state;
    /* start 1000, conversion_window 2m: expiry time T0+121000. An event at
     * exactly that time still counts: a2 advances 0 -> 2 and completes,
     * ttc 120000, in window T0+2M. The watermark (121000) is not > the
     * expiry, so the timer has not fired either. Nothing is abandoned. */
    const fs_e2e_event evs[] = {{"c1", 1000, "a0", "a", NULL, NULL},
                                {"c1", 1000 + 2 * M, "a2", "b", NULL, NULL}};
    char *out = REPLAY(cfg(WIN_1M, "open", "2m", NULL, 3), evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[1,0,0]");
    assert_field(r, "reached", "[1,0,0]");
    assert_field(r, "abandoned", "[0,0,0]");
    free(r);
    r = expect_record(out, "flow", "f", 2 * M);
    assert_field(r, "entered", "[0,0,0]");
    assert_field(r, "reached", "[0,1,1]");
    assert_field(r, "skipped", "[0,1,0]");
    assert_field(r, "abandoned", "[0,0,0]");
    assert_field(r, "completed", "1");
    assert_field(r, "ttc_ms",
                 "{\"count\":1,\"min\":120000,\"max\":120000,\"sum\":120000,"
                 "\"p50\":120000,\"p90\":120000,\"p99\":120000}");
    free(r);
    assert_int_equal(fs_e2e_count_records(out, "flow", NULL), 2);
    free(out);
}

static void check_expired_then_restarted(const char *out)
{
    /* Window T0: only the start. Window T0+2M (contains the expiry time
     * T0+121000): abandoned[0]; then a2 starts a new open journey at stage 2,
     * the last one, so it also completes at once (D3): entered[2],
     * reached[0..2], skipped[0..1], completed 1, ttc 0, credit to b. */
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[1,0,0]");
    assert_field(r, "reached", "[1,0,0]");
    assert_field(r, "abandoned", "[0,0,0]");
    free(r);
    r = expect_record(out, "flow", "f", 2 * M);
    assert_field(r, "entered", "[0,0,1]");
    assert_field(r, "reached", "[1,1,1]");
    assert_field(r, "skipped", "[1,1,0]");
    assert_field(r, "abandoned", "[1,0,0]");
    assert_field(r, "completed", "1");
    assert_field(r, "ttc_ms",
                 "{\"count\":1,\"min\":0,\"max\":0,\"sum\":0,"
                 "\"p50\":0,\"p90\":0,\"p99\":0}");
    assert_field(r, "attribution",
                 "{\"first_touch\":{\"b\":1},\"last_touch\":{\"b\":1},"
                 "\"linear\":{\"b\":1}}");
    assert_field(r, "late_events", "0");
    free(r);
    assert_int_equal(fs_e2e_count_records(out, "flow", NULL), 2);
}

static void test_expiry_boundary_one_ms_later(void **state)
{
    (void)state;
    const fs_e2e_event evs[] = {{"c1", 1000, "a0", "a", NULL, NULL},
                                {"c1", 1000 + 2 * M + 1, "a2", "b", NULL, NULL}};
    /* max_out_of_orderness 0: the event moves the watermark to T0+121001 >
     * expiry, the timer fires first (D1), then the event starts afresh. */
    char *out = REPLAY(cfg(WIN_1M, "open", "2m", NULL, 3), evs);
    check_expired_then_restarted(out);
    free(out);
    /* max_out_of_orderness 10s: the watermark (T0+111001) stays below the
     * expiry; the customer's own event with t > expiry expires the journey
     * (SPEC §2.1 "whichever first"). Same records. */
    out = REPLAY(cfg("size: 1m, max_out_of_orderness: 10s", "open", "2m", NULL, 3), evs);
    check_expired_then_restarted(out);
    free(out);
}

static void test_expiry_by_watermark_and_at_end(void **state)
{
    (void)state;
    /* c1 starts at T0+1000 (expiry T0+121000). c2's event at T0+200000 moves
     * the watermark past it: c1 abandons at stage 0 in window T0+2M, and that
     * window closes at the same time (watermark >= T0+180000), so the count
     * must already be in it: not late, not lost. c2 (expiry T0+320000) is
     * still open at the end of input, where the watermark becomes +inf: it
     * abandons in window T0+5M. */
    const fs_e2e_event evs[] = {{"c1", 1000, "a0", "a", NULL, NULL},
                                {"c2", 200000, "a0", "a", NULL, NULL}};
    char *out = REPLAY(cfg(WIN_1M, "open", "2m", NULL, 3), evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[1,0,0]");
    assert_field(r, "abandoned", "[0,0,0]");
    free(r);
    r = expect_record(out, "flow", "f", 2 * M);
    assert_field(r, "entered", "[0,0,0]");
    assert_field(r, "abandoned", "[1,0,0]");
    assert_field(r, "late_events", "0");
    free(r);
    r = expect_record(out, "flow", "f", 3 * M);
    assert_field(r, "entered", "[1,0,0]");
    assert_field(r, "abandoned", "[0,0,0]");
    free(r);
    r = expect_record(out, "flow", "f", 5 * M);
    assert_field(r, "entered", "[0,0,0]");
    assert_field(r, "abandoned", "[1,0,0]");
    free(r);
    assert_int_equal(fs_e2e_count_records(out, "flow", NULL), 4);
    /* The T0+2M record was written when c2's event closed it, i.e. before the
     * T0+3M window, which only closes at the end. */
    const char *p2 = strstr(out, "\"window_start\":1732280520000");
    const char *p3 = strstr(out, "\"window_start\":1732280580000");
    assert_non_null(p2);
    assert_non_null(p3);
    assert_true(p2 < p3);
    free(out);
}

/* ---- exclusion ---- */

static void test_exclusion(void **state)
{
    (void)state;
    /* c1: a0, a1 (max_stage 1), x aborts it: excluded[1] at T0+3000. c2's x
     * has no journey to abort: nothing. c1's a0 at T0+5000 starts a new
     * journey (entered[0] twice in total), which expires at T0+125000
     * (conversion window 2m): abandoned[0] in window T0+2M. */
    const fs_e2e_event evs[] = {
        {"c1", 1000, "a0", "a", NULL, NULL}, {"c1", 2000, "a1", "a", NULL, NULL},
        {"c1", 3000, "x", "a", NULL, NULL},  {"c2", 4000, "x", "a", NULL, NULL},
        {"c1", 5000, "a0", "a", NULL, NULL},
    };
    char *out = REPLAY(cfg(WIN_1M, "open", "2m", "x", 3), evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[2,0,0]");
    assert_field(r, "reached", "[2,1,0]");
    assert_field(r, "excluded", "[0,1,0]");
    assert_field(r, "abandoned", "[0,0,0]");
    assert_field(r, "completed", "0");
    free(r);
    r = expect_record(out, "flow", "f", 2 * M);
    assert_field(r, "excluded", "[0,0,0]");
    assert_field(r, "abandoned", "[1,0,0]");
    free(r);
    assert_int_equal(fs_e2e_count_records(out, "flow", NULL), 2);
    free(out);

    /* An excluding event with no active journey does nothing: no records. */
    const fs_e2e_event lone[] = {{"c2", 4000, "x", "a", NULL, NULL}};
    out = REPLAY(cfg(WIN_1M, "open", "2m", "x", 3), lone);
    assert_string_equal(out, "");
    free(out);
}

/* ---- completion and restart ---- */

static void test_completion_then_new_journey(void **state)
{
    (void)state;
    /* Journey 1: a0 (entered[0], reached[0]), a2 (reached[1..2], skipped[1])
     * completes, ttc 1000. Journey 2 starts with a1: entered[1],
     * reached[0..1], skipped[0]. Sums: entered [1,1,0], reached [2,2,1],
     * skipped [1,1,0], conversion [2/2, 1/2]. Journey 2 expires at
     * T0+123000 with max_stage 1: abandoned[1] in window T0+2M. */
    const fs_e2e_event evs[] = {{"c1", 1000, "a0", "a", NULL, NULL},
                                {"c1", 2000, "a2", "b", NULL, "4"},
                                {"c1", 3000, "a1", "c", NULL, NULL}};
    char *out = REPLAY(cfg(WIN_1M, "open", "2m", NULL, 3), evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[1,1,0]");
    assert_field(r, "reached", "[2,2,1]");
    assert_field(r, "skipped", "[1,1,0]");
    assert_field(r, "completed", "1");
    assert_field_close(r, "revenue", "4");
    assert_field_close(r, "conversion", "[1,0.5]");
    assert_field(r, "ttc_ms.sum", "1000");
    /* journey 2 has not completed: attribution only for journey 1 */
    assert_field_close(r, "attribution.linear", "{\"a\":0.5,\"b\":0.5}");
    free(r);
    r = expect_record(out, "flow", "f", 2 * M);
    assert_field(r, "abandoned", "[0,1,0]");
    free(r);
    /* Cohort T0: both journeys started there; max_stage 2 and 1. */
    r = expect_record(out, "cohort", "f", 0);
    assert_field(r, "started", "2");
    assert_field(r, "reached", "[2,2,1]");
    assert_field(r, "completed", "1");
    assert_field(r, "final", "true");
    free(r);
    free(out);

    /* The same stage twice: a0, a2 (completes), a0 again is a new journey,
     * not a touch: entered[0] = 2, reached[0] = 2. */
    const fs_e2e_event again[] = {{"c1", 1000, "a0", "a", NULL, NULL},
                                  {"c1", 2000, "a2", "a", NULL, NULL},
                                  {"c1", 3000, "a0", "a", NULL, NULL}};
    out = REPLAY(cfg(WIN_1M, "open", "2m", NULL, 3), again);
    r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[2,0,0]");
    assert_field(r, "reached", "[2,1,1]");
    assert_field(r, "completed", "1");
    free(r);
    free(out);
}

/* ---- revenue and time to convert ---- */

static void test_revenue_and_ttc(void **state)
{
    (void)state;
    /* Five journeys start at T0+1000 (their a0 carries value 1000, which is
     * not revenue: only completing events count) and complete after 1000,
     * 2000, 3000, 4000 and 10000 ms with values 10, 2.5, 0.1, 0.2, 100.
     * revenue = 112.8; ttc count 5, min 1000, max 10000, sum 20000;
     * nearest rank: p50 = rank ceil(2.5) = 3 -> 3000, p90 = rank ceil(4.5)
     * = 5 -> 10000, p99 = rank ceil(4.95) = 5 -> 10000. */
    const fs_e2e_event evs[] = {
        {"c1", 1000, "a0", "s", NULL, "1000"}, {"c2", 1000, "a0", "s", NULL, "1000"},
        {"c3", 1000, "a0", "s", NULL, "1000"}, {"c4", 1000, "a0", "s", NULL, "1000"},
        {"c5", 1000, "a0", "s", NULL, "1000"}, {"c1", 2000, "a2", "s", NULL, "10"},
        {"c2", 3000, "a2", "s", NULL, "2.5"},  {"c3", 4000, "a2", "s", NULL, "0.1"},
        {"c4", 5000, "a2", "s", NULL, "0.2"},  {"c5", 11000, "a2", "s", NULL, "100"},
    };
    char *out = REPLAY(cfg(WIN_1M, "open", "10m", NULL, 3), evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "completed", "5");
    assert_field_close(r, "revenue", "112.8");
    assert_field(r, "ttc_ms.count", "5");
    assert_field(r, "ttc_ms.min", "1000");
    assert_field(r, "ttc_ms.max", "10000");
    assert_field(r, "ttc_ms.sum", "20000");
    assert_field_near(r, "ttc_ms.p50", "3000", 1e-2);
    assert_field_near(r, "ttc_ms.p90", "10000", 1e-2);
    assert_field_near(r, "ttc_ms.p99", "10000", 1e-2);
    assert_field(r, "attribution.first_touch", "{\"s\":5}");
    assert_field_close(r, "attribution.linear", "{\"s\":5}");
    free(r);
    /* All completed: no other window. */
    assert_int_equal(fs_e2e_count_records(out, "flow", NULL), 1);
    free(out);
}

/* ---- splits ---- */

static void test_by_channel_and_segment(void **state)
{
    (void)state;
    /* c1 (b2b): a0 search, a1 email, a2 email -> search [1,0,0];
     *   email [0,1,1] + completed; b2b [1,1,1] + completed.
     * c2 (b2c): enters at a1 via social -> social [1,1,0], b2c [1,1,0].
     * c3 (b2c): a0 search -> search [2,0,0], b2c [2,1,0].
     * c4: a0 with no channel and no segment -> both "unknown" [1,0,0].
     * Totals: entered [3,1,0], reached [4,2,1], skipped [1,0,0].
     * Expiries (10m): c2 (max 1), c3, c4 (max 0) in window T0+10M. */
    const fs_e2e_event evs[] = {
        {"c1", 1000, "a0", "search", "b2b", NULL}, {"c2", 1500, "a1", "social", "b2c", NULL},
        {"c1", 2000, "a1", "email", "b2b", NULL},  {"c3", 2500, "a0", "search", "b2c", NULL},
        {"c4", 2600, "a0", NULL, NULL, NULL},      {"c1", 3000, "a2", "email", "b2b", "5"},
    };
    char *out = REPLAY(cfg(WIN_1M, "open", "10m", NULL, 3), evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[3,1,0]");
    assert_field(r, "reached", "[4,2,1]");
    assert_field(r, "skipped", "[1,0,0]");
    assert_field(r, "completed", "1");
    assert_field_close(r, "conversion", "[0.5,0.5]");
    assert_field(r, "by_channel",
                 "{\"email\":{\"reached\":[0,1,1],\"completed\":1},"
                 "\"search\":{\"reached\":[2,0,0],\"completed\":0},"
                 "\"social\":{\"reached\":[1,1,0],\"completed\":0},"
                 "\"unknown\":{\"reached\":[1,0,0],\"completed\":0}}");
    assert_field(r, "by_segment",
                 "{\"b2b\":{\"reached\":[1,1,1],\"completed\":1},"
                 "\"b2c\":{\"reached\":[2,1,0],\"completed\":0},"
                 "\"unknown\":{\"reached\":[1,0,0],\"completed\":0}}");
    assert_field(r, "attribution.first_touch", "{\"search\":1}");
    assert_field(r, "attribution.last_touch", "{\"email\":1}");
    assert_field_close(r, "attribution.linear",
                       "{\"email\":0.66666666666666663,\"search\":0.33333333333333331}");
    free(r);
    r = expect_record(out, "flow", "f", 10 * M);
    assert_field(r, "abandoned", "[2,1,0]");
    assert_field(r, "by_channel", "{}");
    assert_field(r, "by_segment", "{}");
    free(r);
    free(out);
}

static void test_conversion_nulls(void **state)
{
    (void)state;
    /* reached [2,1,0,0]: conversion [1/2, 0/1, null (0/0)]. */
    const fs_e2e_event evs[] = {{"c1", 1000, "a0", "a", NULL, NULL},
                                {"c2", 2000, "a0", "a", NULL, NULL},
                                {"c2", 3000, "a1", "a", NULL, NULL}};
    char *out = REPLAY(cfg(WIN_1M, "open", "10m", NULL, 4), evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "reached", "[2,1,0,0]");
    assert_field_close(r, "conversion", "[0.5,0,null]");
    assert_field(r, "conversion.2", "null");
    assert_int_equal(fs_e2e_size(r, "conversion"), 3);
    free(r);
    free(out);
}

/* ---- late events ---- */

static void test_late_event(void **state)
{
    (void)state;
    /* c1 a0 @1000 starts (window T0). c2 a0 @61000 moves the watermark to
     * T0+61000: window T0 closes (emitted with reached [1,0,0]).
     * c1 a1 @30000: its count (reached[1] at T0+30000) falls in the closed
     * window -> not added anywhere; late_events +1 in the earliest open
     * window, T0+1M; the journey still advances to stage 1.
     * c1 a0 @31000: a late touch makes no count, so it is not late; it is a
     * funnel event though (linear).
     * c1 a2 @62000: advances 1 -> 2 (nothing skipped, proving the late a1
     * updated the journey) and completes in T0+1M: ttc 61000.
     * Linear over a(a0), b(a1), d(touch), c(a2): 0.25 each. */
    const fs_e2e_event evs[] = {
        {"c1", 1000, "a0", "a", NULL, NULL},  {"c2", 61000, "a0", "a", NULL, NULL},
        {"c1", 30000, "a1", "b", NULL, NULL}, {"c1", 31000, "a0", "d", NULL, NULL},
        {"c1", 62000, "a2", "c", NULL, NULL},
    };
    char *out = REPLAY(cfg(WIN_1M, "open", "10m", NULL, 3), evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[1,0,0]");
    assert_field(r, "reached", "[1,0,0]");
    assert_field(r, "late_events", "0");
    free(r);
    r = expect_record(out, "flow", "f", M);
    assert_field(r, "entered", "[1,0,0]");
    assert_field(r, "reached", "[1,0,1]");
    assert_field(r, "skipped", "[0,0,0]");
    assert_field(r, "completed", "1");
    assert_field(r, "ttc_ms.sum", "61000");
    assert_field(r, "late_events", "1");
    assert_field_close(r, "conversion", "[0,null]");
    assert_field(r, "by_channel",
                 "{\"a\":{\"reached\":[1,0,0],\"completed\":0},"
                 "\"c\":{\"reached\":[0,0,1],\"completed\":1}}");
    assert_field_close(r, "attribution.linear", "{\"a\":0.25,\"b\":0.25,\"c\":0.25,\"d\":0.25}");
    free(r);
    /* Exactly one record per window: the closed window is not re-emitted. */
    assert_int_equal(fs_e2e_count_records(out, "flow", NULL), 3);
    r = expect_record(out, "flow", "f", 11 * M); /* c2 expires at T0+661000 */
    assert_field(r, "abandoned", "[1,0,0]");
    free(r);
    free(out);
}

/* ---- hopping windows ---- */

static void test_hopping_windows(void **state)
{
    (void)state;
    /* size 2m, hop 1m: T0+90000 lies in [T0, T0+2M) and [T0+1M, T0+3M), not
     * in [T0-1M, T0+1M). The expiry T0+690000 lies in windows T0+10M and
     * T0+11M. The journey's cohort is in both windows containing its start. */
    const fs_e2e_event evs[] = {{"c1", 90000, "a0", "a", NULL, NULL}};
    char *out =
        REPLAY(cfg("size: 2m, hop: 1m, max_out_of_orderness: 0", "open", "10m", NULL, 3), evs);
    for (long long ws = 0; ws <= M; ws += M) {
        char *r = expect_record(out, "flow", "f", ws);
        char want[32];
        snprintf(want, sizeof(want), "%lld", FS_E2E_T0 + ws + 2 * M);
        assert_field(r, "window_end", want);
        assert_field(r, "entered", "[1,0,0]");
        assert_field(r, "reached", "[1,0,0]");
        assert_field(r, "abandoned", "[0,0,0]");
        free(r);
        r = expect_record(out, "cohort", "f", ws);
        assert_field(r, "started", "1");
        assert_field(r, "final", "true");
        free(r);
    }
    expect_no_record(out, "flow", "f", -M);
    for (long long ws = 10 * M; ws <= 11 * M; ws += M) {
        char *r = expect_record(out, "flow", "f", ws);
        assert_field(r, "entered", "[0,0,0]");
        assert_field(r, "abandoned", "[1,0,0]");
        free(r);
    }
    assert_int_equal(fs_e2e_count_records(out, "flow", NULL), 4);
    free(out);
}

/* ---- rejections ---- */

static const char two_funnels_cfg[] = "window: {size: 1m, max_out_of_orderness: 0}\n"
                                      "funnels:\n"
                                      "  - name: f\n"
                                      "    conversion_window: 10m\n"
                                      "    stages:\n"
                                      "      - {name: s0, events: [a0]}\n"
                                      "      - {name: s1, events: [a1]}\n"
                                      "      - {name: s2, events: [a2]}\n"
                                      "  - name: g\n"
                                      "    mode: strict\n"
                                      "    conversion_window: 10m\n"
                                      "    exclude: [x]\n"
                                      "    stages:\n"
                                      "      - {name: t0, events: [a1]}\n"
                                      "      - {name: t1, events: [a2]}\n";

static void test_rejected_events(void **state)
{
    (void)state;
    /* Three bad lines (not JSON, a float ts, no event) between two valid
     * events of window T0: rejected_events 3 in the earliest open window, T0,
     * in the record of every funnel -- g gets a record although it counted
     * nothing (D8). A blank line is skipped, not a rejection. */
    const char *in =
        "{\"customer_id\":\"c1\",\"ts\":1732280401000,\"event\":\"a0\"}\n"
        "this is not json\n"
        "\n"
        "{\"customer_id\":\"c2\",\"ts\":1732280401500.0,\"event\":\"a0\"}\n"
        "{\"customer_id\":\"c3\",\"ts\":1732280401600}\n"
        "{\"customer_id\":\"c1\",\"ts\":1732280402000,\"event\":\"a0\",\"channel\":\"z\"}\n";
    char *out = REPLAY_TEXT(two_funnels_cfg, in);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[1,0,0]");
    assert_field(r, "rejected_events", "3");
    free(r);
    r = expect_record(out, "flow", "g", 0);
    assert_field(r, "stages", "[\"t0\",\"t1\"]");
    assert_field(r, "entered", "[0,0]");
    assert_field(r, "reached", "[0,0]");
    assert_field(r, "completed", "0");
    assert_field(r, "rejected_events", "3");
    free(r);
    /* c1's journey in f abandons in T0+10M; there rejected_events is 0 and g
     * has nothing. */
    r = expect_record(out, "flow", "f", 10 * M);
    assert_field(r, "rejected_events", "0");
    free(r);
    expect_no_record(out, "flow", "g", 10 * M);
    free(out);

    /* A rejection after window T0 closed lands in T0+1M. */
    const char *in2 = "{\"customer_id\":\"c1\",\"ts\":1732280401000,\"event\":\"a0\"}\n"
                      "{\"customer_id\":\"c2\",\"ts\":1732280461000,\"event\":\"b\"}\n"
                      "[1,2,3]\n";
    out = REPLAY_TEXT(two_funnels_cfg, in2);
    r = expect_record(out, "flow", "f", 0);
    assert_field(r, "rejected_events", "0");
    free(r);
    r = expect_record(out, "flow", "f", M);
    assert_field(r, "entered", "[0,0,0]");
    assert_field(r, "rejected_events", "1");
    free(r);
    r = expect_record(out, "flow", "g", M);
    assert_field(r, "rejected_events", "1");
    free(r);
    free(out);
}

static void test_rejections_before_first_event(void **state)
{
    (void)state;
    /* D7: held until the first valid event sets the watermark (T0+61000);
     * then the earliest open window is T0+1M. */
    const char *in = "garbage\n"
                     "{\"customer_id\":\"c1\",\"ts\":1732280461000,\"event\":\"a0\"}\n";
    char *out = REPLAY_TEXT(two_funnels_cfg, in);
    expect_no_record(out, "flow", "f", 0);
    char *r = expect_record(out, "flow", "f", M);
    assert_field(r, "entered", "[1,0,0]");
    assert_field(r, "rejected_events", "1");
    free(r);
    r = expect_record(out, "flow", "g", M);
    assert_field(r, "rejected_events", "1");
    free(r);
    free(out);

    /* No valid event at all: no records, exit 0. */
    out = REPLAY_TEXT(two_funnels_cfg, "garbage\n{}\n");
    assert_string_equal(out, "");
    free(out);
}

/* ---- independent funnels ---- */

static void test_two_funnels_independent(void **state)
{
    (void)state;
    /* f (open: a0,a1,a2) and g (strict: a1,a2; exclude x) see the same events.
     * c1 a1, a2: f enters at s1 (entered[1], reached[0..1], skipped[0]) and
     *   completes; g starts at t0 and completes. Both ttc 1000.
     * c2 a0, a1, x: f: a0 starts, a1 advances, x is in no stage of f (ignored);
     *   the journey abandons at stage 1 at T0+603000 (window T0+10M).
     *   g: a0 ignored, a1 starts, x excludes it: excluded[0]. */
    const fs_e2e_event evs[] = {
        {"c1", 1000, "a1", "a", NULL, NULL}, {"c1", 2000, "a2", "a", NULL, NULL},
        {"c2", 3000, "a0", "a", NULL, NULL}, {"c2", 4000, "a1", "a", NULL, NULL},
        {"c2", 5000, "x", "a", NULL, NULL},
    };
    char *out = REPLAY(two_funnels_cfg, evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[1,1,0]");
    assert_field(r, "reached", "[2,2,1]");
    assert_field(r, "skipped", "[1,0,0]");
    assert_field(r, "excluded", "[0,0,0]");
    assert_field(r, "completed", "1");
    assert_field(r, "ttc_ms.sum", "1000");
    free(r);
    r = expect_record(out, "flow", "g", 0);
    assert_field(r, "entered", "[2,0]");
    assert_field(r, "reached", "[2,1]");
    assert_field(r, "skipped", "[0,0]");
    assert_field(r, "excluded", "[1,0]");
    assert_field(r, "completed", "1");
    assert_field(r, "ttc_ms.sum", "1000");
    assert_field_close(r, "conversion", "[0.5]");
    free(r);
    r = expect_record(out, "flow", "f", 10 * M);
    assert_field(r, "abandoned", "[0,1,0]");
    free(r);
    expect_no_record(out, "flow", "g", 10 * M);
    assert_int_equal(fs_e2e_count_records(out, "flow", "f"), 2);
    assert_int_equal(fs_e2e_count_records(out, "flow", "g"), 1);
    free(out);
}

/* ---- cohorts ---- */

/* Byte offset of line in out, or -1: record order in the output. */
static long offset_of(const char *out, const char *line)
{
    const char *p = strstr(out, line);
    return p ? (long)(p - out) : -1;
}

static void test_cohort_records(void **state)
{
    (void)state;
    /* window 1m, conversion window 2m, cohort.emit_interval 1m (D9).
     *  1 c1 a0 @1000     cohort T0: started 1, reached [1,0,0]
     *  2 c1 a1 @30000    cohort T0: reached [1,1,0]
     *  3 c2 a0 @50000    cohort T0: started 2, reached [2,1,0]
     *  4 c3 a0 @70000    watermark crosses T0+1M: cohort T0 emitted
     *                    (final false, started 2, [2,1,0], completed 0);
     *                    then c3 starts cohort T0+1M
     *  5 c1 a2 @100000   c1 completes (100000 <= 1000+2m): cohort T0
     *                    reached [2,1,1], completed 1
     *  6 c4 a0 @130000   crosses T0+2M: T0 re-emitted ([2,1,1], completed 1),
     *                    T0+1M emitted (started 1); c4 starts T0+2M
     *  7 c5 a0 @185000   crosses T0+3M = T0's window_end + conversion window:
     *                    c2 expires (170000) first; T0's last record, final,
     *                    same numbers, conversion [1/2, 1/1]; T0+1M unchanged
     *                    (not re-emitted), T0+2M changed (non-final).
     * End of input: T0+1M, T0+2M, T0+3M become final. */
    const char *config = "window: {size: 1m, max_out_of_orderness: 0}\n"
                         "cohort: {emit_interval: 1m}\n"
                         "funnels:\n"
                         "  - name: f\n"
                         "    conversion_window: 2m\n"
                         "    stages:\n"
                         "      - {name: s0, events: [a0]}\n"
                         "      - {name: s1, events: [a1]}\n"
                         "      - {name: s2, events: [a2]}\n";
    const fs_e2e_event evs[] = {
        {"c1", 1000, "a0", "a", NULL, NULL},   {"c1", 30000, "a1", "a", NULL, NULL},
        {"c2", 50000, "a0", "a", NULL, NULL},  {"c3", 70000, "a0", "a", NULL, NULL},
        {"c1", 100000, "a2", "a", NULL, NULL}, {"c4", 130000, "a0", "a", NULL, NULL},
        {"c5", 185000, "a0", "a", NULL, NULL},
    };
    char *out = REPLAY(config, evs);

    /* The T0 cohort's records in order: 3 of them. */
    fs_e2e_lines l;
    fs_e2e_split_lines(out, &l);
    const char *t0[8];
    size_t n0 = 0;
    char ws[32];
    snprintf(ws, sizeof(ws), "%lld", FS_E2E_T0);
    for (size_t i = 0; i < l.n; i++) {
        char *kind = fs_e2e_field(l.v[i], "kind"), *w = fs_e2e_field(l.v[i], "window_start");
        if (kind && w && !strcmp(kind, "\"cohort\"") && !strcmp(w, ws) && n0 < 8)
            t0[n0++] = l.v[i];
        free(kind);
        free(w);
    }
    if (n0 != 3)
        print_error("cohort T0 records:\n%s\n", out);
    assert_int_equal(n0, 3);
    assert_field(t0[0], "started", "2");
    assert_field(t0[0], "reached", "[2,1,0]");
    assert_field(t0[0], "completed", "0");
    assert_field(t0[0], "final", "false");
    assert_field(t0[1], "reached", "[2,1,1]");
    assert_field(t0[1], "completed", "1");
    assert_field(t0[1], "final", "false");
    assert_field(t0[2], "window_end", "1732280460000");
    assert_field(t0[2], "stages", "[\"s0\",\"s1\",\"s2\"]");
    assert_field(t0[2], "started", "2");
    assert_field(t0[2], "reached", "[2,1,1]");
    assert_field(t0[2], "completed", "1");
    assert_field_close(t0[2], "conversion", "[0.5,1]");
    assert_field(t0[2], "final", "true");
    /* The final T0 cohort was written when the watermark passed T0+3M, before
     * the flow record of window T0+3M (closed only at the end of input). */
    long pos_final = offset_of(out, t0[2]);
    char *flow3 = expect_record(out, "flow", "f", 3 * M);
    long pos_flow3 = offset_of(out, flow3);
    assert_true(pos_final >= 0 && pos_flow3 >= 0 && pos_final < pos_flow3);
    free(flow3);
    fs_e2e_lines_free(&l);

    /* Upsert: for every cohort key exactly one record is final, and it is the
     * last one for that key. */
    const int64_t starts[] = {M, 2 * M, 3 * M};
    const char *const started[] = {"1", "1", "1"};
    for (size_t k = 0; k < 3; k++) {
        char *r = expect_record(out, "cohort", "f", starts[k]);
        assert_field(r, "final", "true");
        assert_field(r, "started", started[k]);
        assert_field(r, "reached", "[1,0,0]");
        assert_field(r, "completed", "0");
        assert_field(r, "conversion", "[0,null]");
        free(r);
    }
    fs_e2e_split_lines(out, &l);
    size_t finals = 0;
    for (size_t i = 0; i < l.n; i++) {
        char *kind = fs_e2e_field(l.v[i], "kind"), *fin = fs_e2e_field(l.v[i], "final");
        if (kind && !strcmp(kind, "\"cohort\"") && fin && !strcmp(fin, "true")) {
            finals++;
            /* nothing for this key after the final one */
            char *w = fs_e2e_field(l.v[i], "window_start");
            for (size_t j = i + 1; j < l.n; j++) {
                char *k2 = fs_e2e_field(l.v[j], "kind"), *w2 = fs_e2e_field(l.v[j], "window_start");
                assert_false(!strcmp(k2, "\"cohort\"") && !strcmp(w2, w));
                free(k2);
                free(w2);
            }
            free(w);
        }
        free(kind);
        free(fin);
    }
    assert_int_equal(finals, 4);
    fs_e2e_lines_free(&l);
    free(out);
}

/* ---- more edges ---- */

static void test_window_boundaries(void **state)
{
    (void)state;
    /* Windows are [start, end): T0+59999 is in T0, T0+60000 in T0+1M. */
    const fs_e2e_event evs[] = {{"c1", 59999, "a0", "a", NULL, NULL},
                                {"c2", 60000, "a0", "a", NULL, NULL}};
    char *out = REPLAY(cfg(WIN_1M, "open", "10m", NULL, 3), evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[1,0,0]");
    free(r);
    r = expect_record(out, "flow", "f", M);
    assert_field(r, "entered", "[1,0,0]");
    assert_field(r, "window_end", "1732280520000");
    free(r);
    free(out);
}

static void test_expiry_by_unstaged_event(void **state)
{
    (void)state;
    /* D2, with max_out_of_orderness 10s so the watermark does not fire the
     * timer: c1 a0 @1000 (expiry T0+61000); c1 "zzz" @61001 is in no stage but
     * still expires the journey (abandoned[0] in T0+1M). The watermark is now
     * T0+51001, so c1 a1 @50000 is not late; with no active journey it starts
     * a new one at stage 1 in window T0: entered[1], reached[0..1],
     * skipped[0]. (Had zzz not expired the journey, a1 would only have
     * advanced it: reached[1], no skip.) The new journey expires at
     * T0+110000, max_stage 1, also in T0+1M. */
    const fs_e2e_event evs[] = {{"c1", 1000, "a0", "a", NULL, NULL},
                                {"c1", 61001, "zzz", "a", NULL, NULL},
                                {"c1", 50000, "a1", "a", NULL, NULL}};
    char *out = REPLAY(cfg("size: 1m, max_out_of_orderness: 10s", "open", "1m", NULL, 3), evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[1,1,0]");
    assert_field(r, "reached", "[2,1,0]");
    assert_field(r, "skipped", "[1,0,0]");
    assert_field(r, "abandoned", "[0,0,0]");
    assert_field(r, "late_events", "0");
    free(r);
    r = expect_record(out, "flow", "f", M);
    assert_field(r, "abandoned", "[1,1,0]");
    free(r);
    free(out);
}

static void test_expiry_before_exclusion(void **state)
{
    (void)state;
    /* Rule order: expiry, then exclusion. c1 a0 @1000, a1 @2000 (expiry
     * T0+61000); x @61001 (watermark T0+51001, timer not fired) first expires
     * the journey -- abandoned[1] in T0+1M -- and then finds no journey to
     * exclude: excluded stays 0 everywhere. */
    const fs_e2e_event evs[] = {{"c1", 1000, "a0", "a", NULL, NULL},
                                {"c1", 2000, "a1", "a", NULL, NULL},
                                {"c1", 61001, "x", "a", NULL, NULL}};
    char *out = REPLAY(cfg("size: 1m, max_out_of_orderness: 10s", "open", "1m", "x", 3), evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "reached", "[1,1,0]");
    assert_field(r, "excluded", "[0,0,0]");
    free(r);
    r = expect_record(out, "flow", "f", M);
    assert_field(r, "abandoned", "[0,1,0]");
    assert_field(r, "excluded", "[0,0,0]");
    free(r);
    assert_int_equal(fs_e2e_count_records(out, "flow", NULL), 2);
    free(out);
}

static void test_ttc_clamped_at_zero(void **state)
{
    (void)state;
    /* Within max_out_of_orderness the completing event may be older than the
     * start: a0 @5000 starts, a2 @3000 (watermark T0-5000, not late) completes;
     * t - start_ts = -2000 is clamped to 0. Counts go to T0 (both times). */
    const fs_e2e_event evs[] = {{"c1", 5000, "a0", "a", NULL, NULL},
                                {"c1", 3000, "a2", "a", NULL, NULL}};
    char *out = REPLAY(cfg("size: 1m, max_out_of_orderness: 10s", "open", "10m", NULL, 3), evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "reached", "[1,1,1]");
    assert_field(r, "completed", "1");
    assert_field(r, "ttc_ms",
                 "{\"count\":1,\"min\":0,\"max\":0,\"sum\":0,"
                 "\"p50\":0,\"p90\":0,\"p99\":0}");
    free(r);
    free(out);
}

static void test_late_journey_start_and_late_expiry(void **state)
{
    (void)state;
    /* conversion window 10s. c1 a0 @61000: watermark T0+61000, window T0
     * closed (empty). c2 a0 @1000 is late: entered/reached[0] would go to T0,
     * dropped, late_events +1 in T0+1M; the journey starts anyway (start
     * T0+1000) and its expiry (T0+11000) lies in the closed window T0 as
     * well: dropped, late_events +1 again (D6), in T0+1M, the earliest open
     * window whenever it fires. c1 expires at T0+71000: abandoned[0] in T0+1M.
     * No record for T0 (nothing counted there). */
    const fs_e2e_event evs[] = {{"c1", 61000, "a0", "a", NULL, NULL},
                                {"c2", 1000, "a0", "a", NULL, NULL}};
    char *out = REPLAY(cfg(WIN_1M, "open", "10s", NULL, 3), evs);
    expect_no_record(out, "flow", "f", 0);
    char *r = expect_record(out, "flow", "f", M);
    assert_field(r, "entered", "[1,0,0]");
    assert_field(r, "reached", "[1,0,0]");
    assert_field(r, "abandoned", "[1,0,0]");
    assert_field(r, "late_events", "2");
    free(r);
    assert_int_equal(fs_e2e_count_records(out, "flow", NULL), 1);
    free(out);
}

static void test_late_event_hopping(void **state)
{
    (void)state;
    /* size 2m hop 1m. c1 a0 @1000 (windows T0-1M, T0); c2 a0 @121000
     * (windows T0+1M, T0+2M; watermark T0+121000 closes T0-1M and T0).
     * c3 a0 @61000 belongs to T0 (closed: dropped, late +1) and T0+1M (open:
     * counted there) -- D6. The late count goes to the earliest open window,
     * T0+1M. */
    const fs_e2e_event evs[] = {{"c1", 1000, "a0", "a", NULL, NULL},
                                {"c2", 121000, "a0", "a", NULL, NULL},
                                {"c3", 61000, "a0", "a", NULL, NULL}};
    char *out =
        REPLAY(cfg("size: 2m, hop: 1m, max_out_of_orderness: 0", "open", "10m", NULL, 3), evs);
    char *r = expect_record(out, "flow", "f", -M);
    assert_field(r, "entered", "[1,0,0]");
    assert_field(r, "late_events", "0");
    free(r);
    r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[1,0,0]");
    assert_field(r, "late_events", "0");
    free(r);
    r = expect_record(out, "flow", "f", M);
    assert_field(r, "entered", "[2,0,0]");
    assert_field(r, "late_events", "1");
    free(r);
    r = expect_record(out, "flow", "f", 2 * M);
    assert_field(r, "entered", "[1,0,0]");
    assert_field(r, "late_events", "0");
    free(r);
    free(out);
}

static void test_input_validation(void **state)
{
    (void)state;
    /* SPEC §1 details. Valid: (1) keys in any order, an unknown key, null
     * optionals = absent (channel/segment "unknown"); (2) a duplicate key,
     * the last wins (event a0), channel web; (3) a 128-byte customer_id;
     * (4) c2's a2 with value 2.5e1 = 25 completes c2 (ttc 2000).
     * Rejected (12): 129-byte customer_id, empty event, 65-byte event,
     * 65-byte channel, string value, |value| >= 1e18 (D10), string ts,
     * trailing garbage, empty customer_id, invalid UTF-8, missing ts,
     * number channel.
     * So: entered [3,0,0], reached [3,1,1], skipped [0,1,0], completed 1,
     * revenue 25, unknown [2,0,0], web [1,1,1]+1; rejected_events 12. */
    char id128[129], id129[130], ev65[66];
    memset(id128, 'i', 128);
    id128[128] = '\0';
    memset(id129, 'j', 129);
    id129[129] = '\0';
    memset(ev65, 'e', 65);
    ev65[65] = '\0';
    char in[4096];
    snprintf(
        in, sizeof(in),
        "{\"ts\":1732280401000,\"event\":\"a0\",\"extra\":{\"x\":[1,2]},\"customer_id\":\"c1\","
        "\"channel\":null,\"segment\":null,\"value\":null,\"campaign\":null}\n"
        "{\"customer_id\":\"c2\",\"ts\":1732280402000,\"event\":\"a9\",\"event\":\"a0\","
        "\"channel\":\"web\"}\n"
        "{\"customer_id\":\"%s\",\"ts\":1732280402100,\"event\":\"a0\"}\n"
        "{\"customer_id\":\"%s\",\"ts\":1732280402200,\"event\":\"a0\"}\n"
        "{\"customer_id\":\"c3\",\"ts\":1732280402300,\"event\":\"\"}\n"
        "{\"customer_id\":\"c3\",\"ts\":1732280402300,\"event\":\"%s\"}\n"
        "{\"customer_id\":\"c3\",\"ts\":1732280402300,\"event\":\"a0\",\"channel\":\"%s\"}\n"
        "{\"customer_id\":\"c3\",\"ts\":1732280402300,\"event\":\"a0\",\"value\":\"5\"}\n"
        "{\"customer_id\":\"c3\",\"ts\":1732280402300,\"event\":\"a0\",\"value\":1e18}\n"
        "{\"customer_id\":\"c3\",\"ts\":\"1732280402300\",\"event\":\"a0\"}\n"
        "{\"customer_id\":\"c3\",\"ts\":1732280402300,\"event\":\"a0\"} xyz\n"
        "{\"customer_id\":\"\",\"ts\":1732280402300,\"event\":\"a0\"}\n"
        "{\"customer_id\":\"c\xff\",\"ts\":1732280402300,\"event\":\"a0\"}\n"
        "{\"customer_id\":\"c3\",\"event\":\"a0\"}\n"
        "{\"customer_id\":\"c3\",\"ts\":1732280402300,\"event\":\"a0\",\"channel\":5}\n"
        "{\"customer_id\":\"c2\",\"ts\":1732280404000,\"event\":\"a2\",\"channel\":\"web\","
        "\"value\":2.5e1}\n",
        id128, id129, ev65, ev65);
    char *out = REPLAY_TEXT(cfg(WIN_1M, "open", "10m", NULL, 3), in);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[3,0,0]");
    assert_field(r, "reached", "[3,1,1]");
    assert_field(r, "skipped", "[0,1,0]");
    assert_field(r, "completed", "1");
    assert_field_close(r, "revenue", "25");
    assert_field(r, "ttc_ms.sum", "2000");
    assert_field(r, "by_channel",
                 "{\"unknown\":{\"reached\":[2,0,0],\"completed\":0},"
                 "\"web\":{\"reached\":[1,1,1],\"completed\":1}}");
    assert_field(r, "by_segment", "{\"unknown\":{\"reached\":[3,1,1],\"completed\":1}}");
    assert_field(r, "rejected_events", "12");
    free(r);
    free(out);
}

static void test_rejections_with_out_of_orderness(void **state)
{
    (void)state;
    /* max_out_of_orderness 5s: the first valid event at T0+61000 sets the
     * watermark to T0+56000, so the earliest open window is still T0: the
     * held rejection (D7) and a later one both land there, in a record that
     * counts nothing else (D8). */
    const char *config = "window: {size: 1m, max_out_of_orderness: 5s}\n"
                         "funnels:\n"
                         "  - name: f\n"
                         "    stages:\n"
                         "      - {name: s0, events: [a0]}\n"
                         "      - {name: s1, events: [a1]}\n";
    const char *in = "garbage\n"
                     "{\"customer_id\":\"c1\",\"ts\":1732280461000,\"event\":\"a0\"}\n"
                     "{\"customer_id\":\"c1\"}\n";
    char *out = REPLAY_TEXT(config, in);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[0,0]");
    assert_field(r, "rejected_events", "2");
    free(r);
    r = expect_record(out, "flow", "f", M);
    assert_field(r, "entered", "[1,0]");
    assert_field(r, "rejected_events", "0");
    free(r);
    free(out);
}

static void test_msgpack_framing(void **state)
{
    (void)state;
    /* SPEC §1 / D11 framing of a .msgpack stream: E1, then a 0xc1 byte (can
     * start no object: 1 rejection, resume at the next byte), the integer 5
     * (a complete object that is no event: 1), a map broken by 0xc1 inside
     * (1, covering up to that byte), E2, and E3 cut short at the end (1).
     * E1 and E2 (c1 a0, c1 a1) are valid: reached [1,1]; 4 rejections. */
    const fs_e2e_event evs[] = {{"c1", 1000, "a0", "a", NULL, NULL},
                                {"c1", 2000, "a1", "a", NULL, "2.5"},
                                {"c2", 3000, "a0", "a", NULL, NULL}};
    size_t len[3];
    char *mp[3];
    for (int i = 0; i < 3; i++)
        mp[i] = fs_e2e_msgpack(&evs[i], 1, &len[i]);
    char buf[1024];
    size_t n = 0;
    memcpy(buf + n, mp[0], len[0]);
    n += len[0];
    memcpy(buf + n, "\xc1\x05\x82\xa1k\xc1", 6);
    n += 6;
    memcpy(buf + n, mp[1], len[1]);
    n += len[1];
    memcpy(buf + n, mp[2], len[2] - 3);
    n += len[2] - 3;
    char *path = fs_e2e_write_file(".msgpack", buf, n);
    const char *config = "window: {size: 1m, max_out_of_orderness: 0}\n"
                         "funnels:\n"
                         "  - name: f\n"
                         "    stages:\n"
                         "      - {name: s0, events: [a0]}\n"
                         "      - {name: s1, events: [a1]}\n";
    char *out = fs_e2e_replay_file_at(config, path, 2, __FILE__, __LINE__);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[1,0]");
    assert_field(r, "reached", "[1,1]");
    assert_field(r, "completed", "1");
    assert_field_close(r, "revenue", "2.5");
    assert_field(r, "rejected_events", "4");
    free(r);
    assert_int_equal(fs_e2e_count_records(out, "flow", NULL), 1);
    free(out);
    free(path);
    for (int i = 0; i < 3; i++)
        free(mp[i]);
}

/* ---- limits (issue 13 item 15) ---- */

/* replay --threads 1 of evs under cfg_text + limits; the records, and the
 * summary line's "refused=R evicted=E" in *summary (malloc'd). Limits make
 * the output depend on the thread count once a share is full (README), so
 * these cases run one thread only. */
static char *replay_limited(const char *config, const fs_e2e_event *evs, size_t n, char **summary)
{
    char *jsonl = fs_e2e_jsonl(evs, n);
    char *in = fs_e2e_write_text(".jsonl", jsonl);
    char *cfgp = fs_e2e_write_text(".yaml", config);
    fs_e2e_run r;
    FS_E2E_EXEC(&r, NULL, 0, "replay", "--config", cfgp, "--input", in, "--threads", "1");
    if (r.status != 0)
        fail_msg("replay exited %d: %s", r.status, r.err);
    const char *at = strstr(r.err, " refused=");
    assert_non_null(at);
    const char *end = strstr(at, " peak_active_journeys=");
    assert_non_null(end);
    *summary = strndup(at + 1, (size_t)(end - at - 1));
    char *out = r.out;
    r.out = NULL;
    fs_e2e_run_free(&r);
    free(cfgp);
    free(in);
    free(jsonl);
    return out;
}

/* c1, c2, c3 start; c2 advances; c4 starts a minute later. A limit of 2
 * customer records, one worker. */
static const fs_e2e_event limit_evs[] = {{"c1", 1000, "a0", "web", NULL, NULL},
                                         {"c2", 2000, "a0", "web", NULL, NULL},
                                         {"c3", 3000, "a0", "web", NULL, NULL},
                                         {"c2", 4000, "a1", "web", NULL, NULL},
                                         {"c4", 65000, "a0", "web", NULL, NULL}};

static const char *limit_cfg(const char *policy)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%slimits: {max_active_journeys: 2, policy: %s}\n",
             cfg(WIN_1M, "strict", "10m", NULL, 3), policy);
    return buf;
}

static void test_limit_reject_new(void **state)
{
    (void)state;
    char *summary;
    char *out = replay_limited(limit_cfg("reject_new"), limit_evs, N_EVENTS(limit_evs), &summary);
    /* c1 and c2 hold the two records: c3 and c4 start nothing and count
     * nowhere; refused counts them. */
    assert_string_equal(summary, "refused=2 evicted=0");
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[2,0,0]");
    assert_field(r, "reached", "[2,1,0]");
    assert_field(r, "abandoned", "[0,0,0]");
    assert_field(r, "evicted", "[0,0,0]"); /* limits configured: the field is there */
    free(r);
    expect_no_record(out, "flow", "f", M);
    /* c1 (stage 0) and c2 (stage 1) expire 10m after they started */
    r = expect_record(out, "flow", "f", 10 * M);
    assert_field(r, "abandoned", "[1,1,0]");
    assert_field(r, "evicted", "[0,0,0]");
    free(r);
    assert_int_equal(fs_e2e_count_records(out, "flow", NULL), 2);
    free(summary);
    free(out);
}

static void test_limit_evict_oldest(void **state)
{
    (void)state;
    char *summary;
    char *out = replay_limited(limit_cfg("evict_oldest"), limit_evs, N_EVENTS(limit_evs), &summary);
    /* c3 evicts c1 (held longest; stage 0) at T0+3s; c4 evicts c2 (stage 1)
     * at T0+65s: each abandoned and evicted at the evicting event's time. */
    assert_string_equal(summary, "refused=0 evicted=2");
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[3,0,0]");
    assert_field(r, "reached", "[3,1,0]");
    assert_field(r, "abandoned", "[1,0,0]");
    assert_field(r, "evicted", "[1,0,0]");
    free(r);
    r = expect_record(out, "flow", "f", M);
    assert_field(r, "entered", "[1,0,0]");
    assert_field(r, "abandoned", "[0,1,0]");
    assert_field(r, "evicted", "[0,1,0]");
    free(r);
    /* c3 and c4 expire: abandoned, not evicted */
    r = expect_record(out, "flow", "f", 10 * M);
    assert_field(r, "abandoned", "[1,0,0]");
    assert_field(r, "evicted", "[0,0,0]");
    free(r);
    r = expect_record(out, "flow", "f", 11 * M);
    assert_field(r, "abandoned", "[1,0,0]");
    assert_field(r, "evicted", "[0,0,0]");
    free(r);
    assert_int_equal(fs_e2e_count_records(out, "flow", NULL), 4);
    free(summary);
    free(out);
}

/* Without limits the record has no "evicted" field (the output of before). */
static void test_no_limits_no_evicted_field(void **state)
{
    (void)state;
    char *out = REPLAY(cfg(WIN_1M, "strict", "10m", NULL, 3), limit_evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_null(strstr(r, "evicted"));
    assert_field(r, "entered", "[3,0,0]");
    free(r);
    free(out);
}

/* A bad limits section is a config error: exit 2, naming the field. */
static void test_limit_config_errors(void **state)
{
    (void)state;
    char *in = fs_e2e_write_text(".jsonl", "");
    char text[4096];
    snprintf(text, sizeof text, "%slimits: {max_active_journeys: 0, policy: evict_oldest}\n",
             cfg(WIN_1M, "strict", "10m", NULL, 3));
    char *cfgp = fs_e2e_write_text(".yaml", text);
    fs_e2e_run r;
    FS_E2E_EXEC(&r, NULL, 0, "replay", "--config", cfgp, "--input", in);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "limits.max_active_journeys: expected an integer from 1"));
    fs_e2e_run_free(&r);
    free(cfgp);
    free(in);
}

/* ---- the valid ts range ---- */

/* The record for the absolute window start ws (not relative to T0). */
#define expect_record_abs(out, kind, ws)                                                           \
    fs_e2e_expect_record_at((out), (kind), "f", (ws), __FILE__, __LINE__)

static void test_ts_range_boundaries(void **state)
{
    (void)state;
    /* size 1m hop 30s, cw 1m. Valid: |ts| <= TS_MAX = 2^53 - 1 =
     * 9007199254740991; one beyond either end, and the int64 extremes, are
     * bad_ts.
     *   c1 a0 @-TS_MAX: last window starts floor(-TS_MAX / 30000) * 30000
     *     = -300239975159 * 30000 = -9007199254770000, the other 30s before:
     *     entered[0] in -9007199254800000 and -9007199254770000.
     *   c1 a1 @-TS_MAX+1000 = -9007199254739991: windows -9007199254740000 and
     *     -9007199254770000: reached[1], completed.
     *   c2 a0 @TS_MAX: windows 300239975158 * 30000 = 9007199254740000 and
     *     9007199254710000: entered[0]; it expires at TS_MAX + 1m =
     *     9007199254800991 (end of input): abandoned[0] in 9007199254800000 and
     *     9007199254770000.
     *   Rejections: two before the first valid event go to the earliest open
     *   window after it (wm -TS_MAX: -9007199254800000, D7), two after c2's
     *   event to the earliest with end > TS_MAX: 9007199254710000. */
    const char *in = "{\"customer_id\":\"c1\",\"ts\":-9007199254740992,\"event\":\"a0\"}\n"
                     "{\"customer_id\":\"c1\",\"ts\":-9223372036854775803,\"event\":\"a0\"}\n"
                     "{\"customer_id\":\"c1\",\"ts\":-9007199254740991,\"event\":\"a0\"}\n"
                     "{\"customer_id\":\"c1\",\"ts\":-9007199254739991,\"event\":\"a1\"}\n"
                     "{\"customer_id\":\"c2\",\"ts\":9007199254740991,\"event\":\"a0\"}\n"
                     "{\"customer_id\":\"c2\",\"ts\":9007199254740992,\"event\":\"a1\"}\n"
                     "{\"customer_id\":\"c2\",\"ts\":9223372036854775807,\"event\":\"a1\"}\n";
    char *out =
        REPLAY_TEXT(cfg("size: 1m, hop: 30s, max_out_of_orderness: 0", "open", "1m", NULL, 2), in);
    static const struct {
        long long start;
        const char *entered, *reached, *abandoned, *completed, *rejected;
    } want[] = {
        {-9007199254800000LL, "[1,0]", "[1,0]", "[0,0]", "0", "2"},
        {-9007199254770000LL, "[1,0]", "[1,1]", "[0,0]", "1", "0"},
        {-9007199254740000LL, "[0,0]", "[0,1]", "[0,0]", "1", "0"},
        {9007199254710000LL, "[1,0]", "[1,0]", "[0,0]", "0", "2"},
        {9007199254740000LL, "[1,0]", "[1,0]", "[0,0]", "0", "0"},
        {9007199254770000LL, "[0,0]", "[0,0]", "[1,0]", "0", "0"},
        {9007199254800000LL, "[0,0]", "[0,0]", "[1,0]", "0", "0"},
    };
    for (size_t i = 0; i < N_EVENTS(want); i++) {
        char *r = expect_record_abs(out, "flow", want[i].start);
        char end[32];
        snprintf(end, sizeof end, "%lld", want[i].start + M);
        assert_field(r, "window_end", end);
        assert_field(r, "entered", want[i].entered);
        assert_field(r, "reached", want[i].reached);
        assert_field(r, "abandoned", want[i].abandoned);
        assert_field(r, "completed", want[i].completed);
        assert_field(r, "rejected_events", want[i].rejected);
        assert_field(r, "late_events", "0");
        free(r);
    }
    assert_int_equal(fs_e2e_count_records(out, "flow", "f"), N_EVENTS(want));
    free(out);
}

/* ---- issue 14: campaign, unordered, optional stages, stage_time_ms ---- */

/* fs_e2e_event has no campaign: the issue 14 cases build their JSON lines
 * with this one. campaign: NULL = key left out, CAMP_NULL = "campaign":null,
 * else the string. No string here needs JSON escaping. */
static const char CAMP_NULL[] = "<null>";

typedef struct cev {
    const char *customer;
    int64_t dt;
    const char *event;
    const char *channel;
    const char *campaign;
    const char *value;
} cev;

static char *cev_jsonl(const cev *evs, size_t n)
{
    size_t cap = n * 256 + 1, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const cev *e = &evs[i];
        len += (size_t)snprintf(buf + len, cap - len,
                                "{\"customer_id\":\"%s\",\"ts\":%lld,\"event\":\"%s\"", e->customer,
                                (long long)(FS_E2E_T0 + e->dt), e->event);
        if (e->channel)
            len += (size_t)snprintf(buf + len, cap - len, ",\"channel\":\"%s\"", e->channel);
        if (e->campaign == CAMP_NULL)
            len += (size_t)snprintf(buf + len, cap - len, ",\"campaign\":null");
        else if (e->campaign)
            len += (size_t)snprintf(buf + len, cap - len, ",\"campaign\":\"%s\"", e->campaign);
        if (e->value)
            len += (size_t)snprintf(buf + len, cap - len, ",\"value\":%s", e->value);
        len += (size_t)snprintf(buf + len, cap - len, "}\n");
        assert_true(len < cap);
    }
    return buf;
}

static char *replay_cevs_at(const char *config, const cev *evs, size_t n, const char *file,
                            int line)
{
    char *in = cev_jsonl(evs, n);
    char *out = replay_text_at(config, in, file, line);
    free(in);
    return out;
}

#define REPLAYC(config, evs) replay_cevs_at((config), (evs), N_EVENTS(evs), __FILE__, __LINE__)

/* The text of a stage_time_ms / ttc_ms object with count > 0. The sketch
 * holds few values exactly, so the quantiles are compared as text too. */
static const char *sketch(int count, long min, long max, long sum, long p50, long p90, long p99)
{
    static char buf[8][160];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, sizeof buf[0],
             "{\"count\":%d,\"min\":%ld,\"max\":%ld,\"sum\":%ld,\"p50\":%ld,\"p90\":%ld,"
             "\"p99\":%ld}",
             count, min, max, sum, p50, p90, p99);
    return b;
}

#define ST_EMPTY TTC_EMPTY

/* -- unordered -- */

static void test_unordered_progress(void **state)
{
    (void)state;
    /* unordered, 4 stages, cw 10m. reached[p] means "p + 1 distinct stages".
     *  c1 a2 @1000 ch a: start, set {2}, p 0: entered[0], reached[0] (a)
     *  c1 a0 @2000 ch b: new stage, set {2,0}, p 1: reached[1] (b)
     *  c1 a2 @3000 ch c: stage seen before: a touch, no count (c nowhere)
     *  c1 a3 @4000 ch d: p 2: reached[2] (d); 3 of 4, not complete
     *  c2 a1 @5000 ch a: start, p 0: entered[0], reached[0] (a)
     * Window T0: entered [2,0,0,0], reached [2,1,1,0], skipped zeros,
     * conversion [1/2, 1/1, 0/1]. stage_time_ms (s = progress): c1 at p 0
     * from 1000 to 2000 -> [0] 1000; at p 1 from 2000 to 4000 (the touch at
     * 3000 does not restart the clock) -> [1] 2000; nothing for [2].
     * Expiry (10m after the starts: T0+601000, T0+605000, window T0+10M):
     * c1 at max_stage = progress - 1 = 2, c2 at 0: abandoned [1,0,1,0];
     * expiry records no stage time. */
    const cev evs[] = {{"c1", 1000, "a2", "a", NULL, NULL},
                       {"c1", 2000, "a0", "b", NULL, NULL},
                       {"c1", 3000, "a2", "c", NULL, NULL},
                       {"c1", 4000, "a3", "d", NULL, NULL},
                       {"c2", 5000, "a1", "a", NULL, NULL}};
    char *out = REPLAYC(cfg(WIN_1M, "unordered", "10m", NULL, 4), evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "stages", "[\"s0\",\"s1\",\"s2\",\"s3\"]");
    assert_field(r, "entered", "[2,0,0,0]");
    assert_field(r, "reached", "[2,1,1,0]");
    assert_field(r, "skipped", "[0,0,0,0]");
    assert_field(r, "abandoned", "[0,0,0,0]");
    assert_field(r, "excluded", "[0,0,0,0]");
    assert_field(r, "completed", "0");
    assert_field_close(r, "conversion", "[0.5,1,0]");
    assert_field(r, "by_channel",
                 "{\"a\":{\"reached\":[2,0,0,0],\"completed\":0},"
                 "\"b\":{\"reached\":[0,1,0,0],\"completed\":0},"
                 "\"d\":{\"reached\":[0,0,1,0],\"completed\":0}}");
    assert_field(r, "attribution", "{\"first_touch\":{},\"last_touch\":{},\"linear\":{}}");
    assert_int_equal(fs_e2e_size(r, "stage_time_ms"), 3);
    assert_field(r, "stage_time_ms.0", sketch(1, 1000, 1000, 1000, 1000, 1000, 1000));
    assert_field(r, "stage_time_ms.1", sketch(1, 2000, 2000, 2000, 2000, 2000, 2000));
    assert_field(r, "stage_time_ms.2", ST_EMPTY);
    free(r);
    r = expect_record(out, "flow", "f", 10 * M);
    assert_field(r, "entered", "[0,0,0,0]");
    assert_field(r, "reached", "[0,0,0,0]");
    assert_field(r, "skipped", "[0,0,0,0]");
    assert_field(r, "abandoned", "[1,0,1,0]");
    assert_field(r, "by_channel", "{}");
    assert_field(r, "stage_time_ms", "[" ST_EMPTY "," ST_EMPTY "," ST_EMPTY "]");
    free(r);
    assert_int_equal(fs_e2e_count_records(out, "flow", NULL), 2);
    free(out);
}

static void test_unordered_touch_and_completion(void **state)
{
    (void)state;
    /* unordered, 3 stages, all reached in the order s1, s2, s0:
     *  c1 a1 @1000 ch a: start, p 0 (a: reached[0])
     *  c1 a1 @2000 ch x: touch (no count; a funnel event for linear)
     *  c1 a2 @3000 ch b: p 1 (b: reached[1])
     *  c1 a1 @4000 ch x: touch
     *  c1 a0 @5000 ch c value 9: p 2 = all 3 stages: completes (c:
     *    reached[2], completed). revenue 9, ttc 4000.
     * Nothing skipped. Attribution: first a, last c, linear over the 5
     * funnel events a, x, b, x, c: a 0.2, b 0.2, c 0.2, x 0.4 (x has credit
     * but no by_channel entry). stage_time_ms: [0] 1000 -> 3000 = 2000,
     * [1] 3000 -> 5000 = 2000 (touches do not restart the clock). The
     * journey ended: no expiry, one record. */
    const cev evs[] = {{"c1", 1000, "a1", "a", NULL, NULL},
                       {"c1", 2000, "a1", "x", NULL, NULL},
                       {"c1", 3000, "a2", "b", NULL, NULL},
                       {"c1", 4000, "a1", "x", NULL, NULL},
                       {"c1", 5000, "a0", "c", NULL, "9"}};
    char *out = REPLAYC(cfg(WIN_1M, "unordered", "10m", NULL, 3), evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[1,0,0]");
    assert_field(r, "reached", "[1,1,1]");
    assert_field(r, "skipped", "[0,0,0]");
    assert_field(r, "abandoned", "[0,0,0]");
    assert_field(r, "completed", "1");
    assert_field_close(r, "revenue", "9");
    assert_field_close(r, "conversion", "[1,1]");
    assert_field(r, "ttc_ms", sketch(1, 4000, 4000, 4000, 4000, 4000, 4000));
    assert_field(r, "by_channel",
                 "{\"a\":{\"reached\":[1,0,0],\"completed\":0},"
                 "\"b\":{\"reached\":[0,1,0],\"completed\":0},"
                 "\"c\":{\"reached\":[0,0,1],\"completed\":1}}");
    assert_field(r, "attribution.first_touch", "{\"a\":1}");
    assert_field(r, "attribution.last_touch", "{\"c\":1}");
    assert_field_close(r, "attribution.linear", "{\"a\":0.2,\"b\":0.2,\"c\":0.2,\"x\":0.4}");
    assert_field(r, "stage_time_ms",
                 "[{\"count\":1,\"min\":2000,\"max\":2000,\"sum\":2000,\"p50\":2000,\"p90\":2000,"
                 "\"p99\":2000},{\"count\":1,\"min\":2000,\"max\":2000,\"sum\":2000,\"p50\":2000,"
                 "\"p90\":2000,\"p99\":2000}]");
    free(r);
    assert_int_equal(fs_e2e_count_records(out, "flow", NULL), 1);
    free(out);
}

static void test_unordered_expiry_and_exclusion(void **state)
{
    (void)state;
    /* unordered, 4 stages, cw 2m, exclude x.
     *  c1 a3 @1000, a1 @2000: progress 2 (max_stage 1); expires at
     *    T0+121000 -> abandoned[1] in window T0+2M.
     *  c2 a0 @3000, a2 @4000, a0 @5000 (touch), a1 @6000: progress 3
     *    (max_stage 2); x @7000 excludes it: excluded[2] at T0+7000.
     *  c3 x @8000: no journey, nothing.
     * Window T0: entered [2,0,0,0], reached [2,2,1,0], excluded [0,0,1,0].
     * stage_time_ms: c1 [0] 1000; c2 [0] 1000, [1] 2000 (4000 -> 6000);
     * the exclusion and the expiry record nothing: [0] count 2 sum 2000,
     * [1] count 1 sum 2000, [2] empty; window T0+2M all empty. */
    const cev evs[] = {
        {"c1", 1000, "a3", "a", NULL, NULL}, {"c1", 2000, "a1", "a", NULL, NULL},
        {"c2", 3000, "a0", "a", NULL, NULL}, {"c2", 4000, "a2", "a", NULL, NULL},
        {"c2", 5000, "a0", "a", NULL, NULL}, {"c2", 6000, "a1", "a", NULL, NULL},
        {"c2", 7000, "x", "a", NULL, NULL},  {"c3", 8000, "x", "a", NULL, NULL},
    };
    char *out = REPLAYC(cfg(WIN_1M, "unordered", "2m", "x", 4), evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[2,0,0,0]");
    assert_field(r, "reached", "[2,2,1,0]");
    assert_field(r, "skipped", "[0,0,0,0]");
    assert_field(r, "abandoned", "[0,0,0,0]");
    assert_field(r, "excluded", "[0,0,1,0]");
    assert_field(r, "completed", "0");
    assert_field(r, "stage_time_ms.0", sketch(2, 1000, 1000, 2000, 1000, 1000, 1000));
    assert_field(r, "stage_time_ms.1", sketch(1, 2000, 2000, 2000, 2000, 2000, 2000));
    assert_field(r, "stage_time_ms.2", ST_EMPTY);
    free(r);
    r = expect_record(out, "flow", "f", 2 * M);
    assert_field(r, "entered", "[0,0,0,0]");
    assert_field(r, "skipped", "[0,0,0,0]");
    assert_field(r, "abandoned", "[0,1,0,0]");
    assert_field(r, "excluded", "[0,0,0,0]");
    assert_field(r, "stage_time_ms", "[" ST_EMPTY "," ST_EMPTY "," ST_EMPTY "]");
    free(r);
    assert_int_equal(fs_e2e_count_records(out, "flow", NULL), 2);
    free(out);
}

/* -- optional stages -- */

/* s0 -> s1 (optional) -> s2 -> s3 (optional) -> s4 */
#define OPT_1_3 ((1u << 1) | (1u << 3))

static void test_strict_optional_stages(void **state)
{
    (void)state;
    /* strict, 5 stages, s1 and s3 optional, cw 10m.
     *  c1 a0 @1000 ch a: start (entered[0], reached[0]).
     *  c1 a2 @2000 ch b: 0 -> 2 over s1 (optional): advances; reached[1],
     *    reached[2]; s1 is optional so not skipped.
     *  c1 a4 @3000 ch c: 2 -> 4 over s3 (optional): advances and completes
     *    (reached[3], reached[4]); ttc 2000.
     *  c2 a0 @4000 ch a: start.
     *  c2 a3 @5000 ch d: 0 -> 3 would pass s2 (required): ignored -- no
     *    count, not a touch, not a funnel event.
     *  c2 a1 @6000 ch e: 0 -> 1 advances.
     *  c2 a4 @7000 ch f: 1 -> 4 would pass s2: ignored.
     *  c2 a2 @8000 g, a3 @9000 h, a4 @10000 i: one by one; completes, ttc
     *    6000.
     *  c3 a1 @11000: a strict start needs stage 0 (s1 being optional does not
     *    matter): ignored.
     * entered [2,0,0,0,0], reached [2,2,2,2,2], skipped zeros, completed 2,
     * ttc 2000 and 6000. Linear: c1 a,b,c 1/3 each; c2 a,e,g,h,i 1/5 each
     * (d and f get nothing): a 8/15. stage_time_ms: c1 [0] 1000 (1000 ->
     * 2000), [2] 1000 (2000 -> 3000), nothing for the jumped s1, s3; c2 [0]
     * 2000, [1] 2000, [2] 1000, [3] 1000 (the ignored events change nothing). */
    const cev evs[] = {
        {"c1", 1000, "a0", "a", NULL, NULL},  {"c1", 2000, "a2", "b", NULL, NULL},
        {"c1", 3000, "a4", "c", NULL, NULL},  {"c2", 4000, "a0", "a", NULL, NULL},
        {"c2", 5000, "a3", "d", NULL, NULL},  {"c2", 6000, "a1", "e", NULL, NULL},
        {"c2", 7000, "a4", "f", NULL, NULL},  {"c2", 8000, "a2", "g", NULL, NULL},
        {"c2", 9000, "a3", "h", NULL, NULL},  {"c2", 10000, "a4", "i", NULL, NULL},
        {"c3", 11000, "a1", "z", NULL, NULL},
    };
    char *out = REPLAYC(cfgx(WIN_1M, "strict", "10m", NULL, 5, OPT_1_3, NULL), evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[2,0,0,0,0]");
    assert_field(r, "reached", "[2,2,2,2,2]");
    assert_field(r, "skipped", "[0,0,0,0,0]");
    assert_field(r, "abandoned", "[0,0,0,0,0]");
    assert_field(r, "completed", "2");
    assert_field_close(r, "conversion", "[1,1,1,1]");
    assert_field(r, "ttc_ms", sketch(2, 2000, 6000, 8000, 2000, 6000, 6000));
    assert_field(r, "by_channel",
                 "{\"a\":{\"reached\":[2,0,0,0,0],\"completed\":0},"
                 "\"b\":{\"reached\":[0,1,1,0,0],\"completed\":0},"
                 "\"c\":{\"reached\":[0,0,0,1,1],\"completed\":1},"
                 "\"e\":{\"reached\":[0,1,0,0,0],\"completed\":0},"
                 "\"g\":{\"reached\":[0,0,1,0,0],\"completed\":0},"
                 "\"h\":{\"reached\":[0,0,0,1,0],\"completed\":0},"
                 "\"i\":{\"reached\":[0,0,0,0,1],\"completed\":1}}");
    assert_field(r, "attribution.first_touch", "{\"a\":2}");
    assert_field(r, "attribution.last_touch", "{\"c\":1,\"i\":1}");
    assert_field_close(r, "attribution.linear",
                       "{\"a\":0.53333333333333333,\"b\":0.33333333333333333,"
                       "\"c\":0.33333333333333333,\"e\":0.2,\"g\":0.2,\"h\":0.2,\"i\":0.2}");
    assert_field(r, "stage_time_ms.0", sketch(2, 1000, 2000, 3000, 1000, 2000, 2000));
    assert_field(r, "stage_time_ms.1", sketch(1, 2000, 2000, 2000, 2000, 2000, 2000));
    assert_field(r, "stage_time_ms.2", sketch(2, 1000, 1000, 2000, 1000, 1000, 1000));
    assert_field(r, "stage_time_ms.3", sketch(1, 1000, 1000, 1000, 1000, 1000, 1000));
    free(r);
    /* Both journeys completed and c3 never started one: one record. */
    assert_int_equal(fs_e2e_count_records(out, "flow", NULL), 1);
    free(out);
}

static void test_open_optional_stages(void **state)
{
    (void)state;
    /* open, 5 stages, s1 and s3 optional, cw 10m.
     *  c1 a3 @1000 ch a: starts at stage 3: entered[3], reached[0..3];
     *    skipped only the required stages below: s0, s2.
     *  c2 a0 @2000 ch b: start (entered[0], reached[0]).
     *  c2 a4 @3000 ch c: 0 -> 4: reached[1..4], skipped s2 only; completes,
     *    ttc 1000.
     * entered [1,0,0,1,0], reached [2,2,2,2,1], skipped [1,0,2,0,0].
     * stage_time_ms: c1 entered above every stage: nothing; c2 [0] 1000
     * (jumped s1..s3: nothing). c1 expires at T0+601000 at stage 3. */
    const cev evs[] = {{"c1", 1000, "a3", "a", NULL, NULL},
                       {"c2", 2000, "a0", "b", NULL, NULL},
                       {"c2", 3000, "a4", "c", NULL, NULL}};
    char *out = REPLAYC(cfgx(WIN_1M, "open", "10m", NULL, 5, OPT_1_3, NULL), evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[1,0,0,1,0]");
    assert_field(r, "reached", "[2,2,2,2,1]");
    assert_field(r, "skipped", "[1,0,2,0,0]");
    assert_field(r, "completed", "1");
    assert_field_close(r, "conversion", "[1,1,1,0.5]");
    assert_field(r, "by_channel",
                 "{\"a\":{\"reached\":[1,1,1,1,0],\"completed\":0},"
                 "\"b\":{\"reached\":[1,0,0,0,0],\"completed\":0},"
                 "\"c\":{\"reached\":[0,1,1,1,1],\"completed\":1}}");
    assert_field(r, "stage_time_ms",
                 "[{\"count\":1,\"min\":1000,\"max\":1000,\"sum\":1000,\"p50\":1000,\"p90\":1000,"
                 "\"p99\":1000}," ST_EMPTY "," ST_EMPTY "," ST_EMPTY "]");
    free(r);
    r = expect_record(out, "flow", "f", 10 * M);
    assert_field(r, "abandoned", "[0,0,0,1,0]");
    assert_field(r, "skipped", "[0,0,0,0,0]");
    free(r);
    assert_int_equal(fs_e2e_count_records(out, "flow", NULL), 2);
    free(out);
}

/* -- stage_time_ms -- */

static void test_stage_time_skips_entry_touch_completion(void **state)
{
    (void)state;
    /* open, 4 stages, cw 10m.
     *  c1 a0 @1000, a0 @5000 (touch: the clock keeps 1000), a1 @11000 ->
     *    [0] 10000; a3 @20000 (1 -> 3, completes) -> [1] 9000, nothing for
     *    the jumped s2.
     *  c2 a1 @2000: enters at 1, nothing for s0; a2 @4000 -> [1] 2000;
     *    a3 @7000 completes -> [2] 3000 (the last stage before completion).
     *  c3 a0 @3000, a2 @6000 -> [0] 3000, nothing for s1; open at 2, it
     *    expires at T0+603000 (window T0+10M) and records nothing there.
     * [0] {3000, 10000}: count 2, sum 13000, p50 rank ceil(1) = 1 -> 3000,
     * p90 rank ceil(1.8) = 2 -> 10000, p99 rank 2 -> 10000.
     * [1] {2000, 9000}: sum 11000, p50 2000, p90/p99 9000. [2] {3000}.
     * Counts: entered [2,1,0,0]; reached c1 [1,1,1,1], c2 [1,1,1,1], c3
     * [1,1,1,0]; skipped c1 s2, c2 s0, c3 s1; ttc 19000 and 5000. */
    const cev evs[] = {
        {"c1", 1000, "a0", "a", NULL, NULL},  {"c2", 2000, "a1", "a", NULL, NULL},
        {"c3", 3000, "a0", "a", NULL, NULL},  {"c2", 4000, "a2", "a", NULL, NULL},
        {"c1", 5000, "a0", "a", NULL, NULL},  {"c3", 6000, "a2", "a", NULL, NULL},
        {"c2", 7000, "a3", "a", NULL, NULL},  {"c1", 11000, "a1", "a", NULL, NULL},
        {"c1", 20000, "a3", "a", NULL, NULL},
    };
    char *out = REPLAYC(cfg(WIN_1M, "open", "10m", NULL, 4), evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[2,1,0,0]");
    assert_field(r, "reached", "[3,3,3,2]");
    assert_field(r, "skipped", "[1,1,1,0]");
    assert_field(r, "completed", "2");
    assert_field(r, "ttc_ms", sketch(2, 5000, 19000, 24000, 5000, 19000, 19000));
    assert_int_equal(fs_e2e_size(r, "stage_time_ms"), 3);
    assert_field(r, "stage_time_ms.0", sketch(2, 3000, 10000, 13000, 3000, 10000, 10000));
    assert_field(r, "stage_time_ms.1", sketch(2, 2000, 9000, 11000, 2000, 9000, 9000));
    assert_field(r, "stage_time_ms.2", sketch(1, 3000, 3000, 3000, 3000, 3000, 3000));
    free(r);
    r = expect_record(out, "flow", "f", 10 * M);
    assert_field(r, "abandoned", "[0,0,1,0]");
    assert_field(r, "stage_time_ms", "[" ST_EMPTY "," ST_EMPTY "," ST_EMPTY "]");
    free(r);
    assert_int_equal(fs_e2e_count_records(out, "flow", NULL), 2);
    free(out);
}

static void test_stage_time_later_window_and_clamp(void **state)
{
    (void)state;
    /* window 1m, max_out_of_orderness 10s, open, 3 stages, cw 10m.
     *  c1 a0 @50000 (window T0).
     *  c1 a1 @70000 (watermark T0+60000: T0 closes): [0] 70000 - 50000 =
     *    20000, in the window of the moving event, T0+1M, not T0.
     *  c2 a0 @75000 (watermark T0+65000).
     *  c2 a1 @72000: older than the start but not late (T0+1M is open):
     *    72000 - 75000 < 0 -> [0] 0.
     *  c2 a2 @73000: s1 became max_stage at 72000: [1] 1000; completes,
     *    ttc 73000 - 75000 clamped to 0.
     * T0: entered [1,0,0], stage times empty. T0+1M: entered [1,0,0],
     * reached [1,2,1]; [0] {0, 20000}: count 2, min 0, max 20000, sum 20000,
     * p50 rank 1 -> 0, p90/p99 rank 2 -> 20000; [1] {1000}. c1 expires at
     * T0+650000 at stage 1: window T0+10M, no stage time. */
    const cev evs[] = {{"c1", 50000, "a0", "a", NULL, NULL},
                       {"c1", 70000, "a1", "a", NULL, NULL},
                       {"c2", 75000, "a0", "a", NULL, NULL},
                       {"c2", 72000, "a1", "a", NULL, NULL},
                       {"c2", 73000, "a2", "a", NULL, NULL}};
    char *out = REPLAYC(cfg("size: 1m, max_out_of_orderness: 10s", "open", "10m", NULL, 3), evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[1,0,0]");
    assert_field(r, "reached", "[1,0,0]");
    assert_field(r, "stage_time_ms", "[" ST_EMPTY "," ST_EMPTY "]");
    free(r);
    r = expect_record(out, "flow", "f", M);
    assert_field(r, "entered", "[1,0,0]");
    assert_field(r, "reached", "[1,2,1]");
    assert_field(r, "skipped", "[0,0,0]");
    assert_field(r, "completed", "1");
    assert_field(r, "late_events", "0");
    assert_field(r, "ttc_ms", sketch(1, 0, 0, 0, 0, 0, 0));
    assert_field(r, "stage_time_ms.0", sketch(2, 0, 20000, 20000, 0, 20000, 20000));
    assert_field(r, "stage_time_ms.1", sketch(1, 1000, 1000, 1000, 1000, 1000, 1000));
    free(r);
    r = expect_record(out, "flow", "f", 10 * M);
    assert_field(r, "abandoned", "[0,1,0]");
    assert_field(r, "stage_time_ms", "[" ST_EMPTY "," ST_EMPTY "]");
    free(r);
    assert_int_equal(fs_e2e_count_records(out, "flow", NULL), 3);
    free(out);
}

static void test_stage_time_quantiles(void **state)
{
    (void)state;
    /* Ten journeys a0 @1000, a1 @1000 + d (3 stages, none completes), d in
     * arrival order 4000 700 9000 1500 2500 600 12000 3000 800 5000.
     * Sorted: 600 700 800 1500 2500 3000 4000 5000 9000 12000; sum 39100.
     * Nearest rank: p50 rank 5 -> 2500, p90 rank 9 -> 9000, p99 rank
     * ceil(9.9) = 10 -> 12000. count/min/max/sum exact, quantiles within
     * 1 % (SPEC §4). [1] is empty. */
    static const long d[10] = {4000, 700, 9000, 1500, 2500, 600, 12000, 3000, 800, 5000};
    static const char *const ids[10] = {"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"};
    cev evs[20];
    for (int i = 0; i < 10; i++) {
        evs[2 * i] = (cev){ids[i], 1000, "a0", "a", NULL, NULL};
        evs[2 * i + 1] = (cev){ids[i], 1000 + d[i], "a1", "a", NULL, NULL};
    }
    char *out = REPLAYC(cfg(WIN_1M, "open", "10m", NULL, 3), evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "reached", "[10,10,0]");
    assert_field(r, "stage_time_ms.0.count", "10");
    assert_field(r, "stage_time_ms.0.min", "600");
    assert_field(r, "stage_time_ms.0.max", "12000");
    assert_field(r, "stage_time_ms.0.sum", "39100");
    assert_field_near(r, "stage_time_ms.0.p50", "2500", 1e-2);
    assert_field_near(r, "stage_time_ms.0.p90", "9000", 1e-2);
    assert_field_near(r, "stage_time_ms.0.p99", "12000", 1e-2);
    assert_field(r, "stage_time_ms.1", ST_EMPTY);
    free(r);
    free(out);
}

/* -- campaign breakdown and the "(other)" cut -- */

static void test_by_campaign_unknown_and_attribution(void **state)
{
    (void)state;
    /* open, 3 stages, breakdowns [channel, segment, campaign], cw 10m.
     *  c1 a0 @1000 ch a camp "spring"; a1 @2000 ch a, no campaign key
     *    ("unknown"); a2 @3000 ch b camp "" value 5: completes.
     *  c2 a0 @4000 ch a camp null ("unknown"); a2 @5000 ch c camp "spring":
     *    0 -> 2 (skips s1), completes.
     *  c3 a1 @6000 ch a camp "fall": enters at 1 (reached[0..1], skips s0).
     * by_campaign (keys bytewise: "" < fall < spring < unknown):
     *  ""      [0,0,1] completed 1 (c1's a2)
     *  fall    [1,1,0]
     *  spring  c1 a0 [1,0,0] + c2 a2 [0,1,1] completed 1 = [1,1,1] c 1
     *  unknown c1 a1 [0,1,0] + c2 a0 [1,0,0] = [1,1,0]
     * Campaign attribution: c1 first spring, last "", linear spring,
     * unknown, "" 1/3 each; c2 first unknown, last spring, linear unknown,
     * spring 1/2 each -> linear "" 1/3, spring 5/6, unknown 5/6.
     * Channel attribution: c1 a,a,b; c2 a,c -> first {a:2}, last {b,c},
     * linear a 2/3 + 1/2 = 7/6, b 1/3, c 1/2. No segment given: by_segment
     * all "unknown". */
    const cev evs[] = {
        {"c1", 1000, "a0", "a", "spring", NULL}, {"c1", 2000, "a1", "a", NULL, NULL},
        {"c1", 3000, "a2", "b", "", "5"},        {"c2", 4000, "a0", "a", CAMP_NULL, NULL},
        {"c2", 5000, "a2", "c", "spring", NULL}, {"c3", 6000, "a1", "a", "fall", NULL},
    };
    char *out = REPLAYC(
        cfgx(WIN_1M, "open", "10m", NULL, 3, 0, "    breakdowns: [channel, segment, campaign]\n"),
        evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[2,1,0]");
    assert_field(r, "reached", "[3,3,2]");
    assert_field(r, "skipped", "[1,1,0]");
    assert_field(r, "completed", "2");
    assert_field_close(r, "revenue", "5");
    assert_field(r, "by_campaign",
                 "{\"\":{\"reached\":[0,0,1],\"completed\":1},"
                 "\"fall\":{\"reached\":[1,1,0],\"completed\":0},"
                 "\"spring\":{\"reached\":[1,1,1],\"completed\":1},"
                 "\"unknown\":{\"reached\":[1,1,0],\"completed\":0}}");
    assert_field(r, "by_segment", "{\"unknown\":{\"reached\":[3,3,2],\"completed\":2}}");
    assert_field(r, "by_channel",
                 "{\"a\":{\"reached\":[3,2,0],\"completed\":0},"
                 "\"b\":{\"reached\":[0,0,1],\"completed\":1},"
                 "\"c\":{\"reached\":[0,1,1],\"completed\":1}}");
    assert_field(r, "attribution.first_touch", "{\"a\":2}");
    assert_field(r, "attribution.last_touch", "{\"b\":1,\"c\":1}");
    assert_field_close(r, "attribution.linear",
                       "{\"a\":1.1666666666666667,\"b\":0.33333333333333333,\"c\":0.5}");
    assert_field(r, "attribution.campaign.first_touch", "{\"spring\":1,\"unknown\":1}");
    assert_field(r, "attribution.campaign.last_touch", "{\"\":1,\"spring\":1}");
    assert_field_close(r, "attribution.campaign.linear",
                       "{\"\":0.33333333333333333,\"spring\":0.83333333333333333,"
                       "\"unknown\":0.83333333333333333}");
    free(r);
    free(out);
}

/* The "(other)" case: open, 2 stages, breakdowns [channel, campaign],
 * cw 10m. Every journey starts with a0 (reached[0]); a1 completes it.
 *  c1 a0 @1000 ch d camp z;       a1 @2000 ch c camp "(other)"
 *  c2 a0 @3000 ch b camp x;       a1 @4000 ch b camp x
 *  c3 a0 @5000 ch b camp x        (open)
 *  c4 a0 @6000 ch a camp "(other)"; a1 @7000 ch a camp y
 *  c5 a0 @8000 ch c camp zz       (open)
 *  c6 a0 @9000 ch d camp z;       a1 @10000 ch b camp x
 * entered [6,0], reached [6,4], completed 4 (c1, c2, c4, c6).
 * Full maps (score = reached[0] + reached[1]; completed):
 *  by_channel: a [1,1] 1 (2), b [2,2] 2 (4), c [1,1] 1 (2), d [2,0] 0 (2)
 *  by_campaign: x [2,2] 2 (4), z [2,0] 0 (2), y [0,1] 1 (1), zz [1,0] 0
 *    (1), and the real "(other)" [1,1] 1
 *  channel first_touch d 2, b 1, a 1; last_touch b 2, a 1, c 1;
 *    linear (c1 d,c; c2 b,b; c4 a,a; c6 d,b) b 1.5, a 1, d 1, c 0.5
 *  campaign first_touch z 2, x 1, "(other)" 1; last_touch x 2, "(other)"
 *    1, y 1; linear (c1 z,(other); c2 x,x; c4 (other),y; c6 z,x) x 1.5,
 *    z 1, "(other)" 1, y 0.5 */
static const cev other_evs[] = {
    {"c1", 1000, "a0", "d", "z", NULL}, {"c1", 2000, "a1", "c", "(other)", NULL},
    {"c2", 3000, "a0", "b", "x", NULL}, {"c2", 4000, "a1", "b", "x", NULL},
    {"c3", 5000, "a0", "b", "x", NULL}, {"c4", 6000, "a0", "a", "(other)", NULL},
    {"c4", 7000, "a1", "a", "y", NULL}, {"c5", 8000, "a0", "c", "zz", NULL},
    {"c6", 9000, "a0", "d", "z", NULL}, {"c6", 10000, "a1", "b", "x", NULL},
};

static const char *other_cfg(int max_values)
{
    char extra[128];
    snprintf(extra, sizeof extra,
             "    breakdowns: [channel, campaign]\n    max_breakdown_values: %d\n", max_values);
    return cfgx(WIN_1M, "open", "10m", NULL, 2, 0, extra);
}

static void test_other_cut(void **state)
{
    (void)state;
    /* max_breakdown_values 2, each map on its own:
     *  by_channel: V = {a,b,c,d} (4 > 2): b (4) first, then a, c, d tie at
     *    2 and a wins by name; "(other)" = c + d = [3,1] completed 1.
     *  by_campaign: V = {x,z,y,zz} (the real "(other)" is not in V): keep x
     *    (4), z (2); "(other)" = y + zz + the real "(other)" = [0,1] + [1,0]
     *    + [1,1] = [2,2], completed 1 + 0 + 1 = 2.
     *  channel first_touch: d (2), then a/b tie at 1 -> a; "(other)" = b 1
     *    (d kept here although cut from by_channel: own ranking).
     *  channel last_touch: b (2), a (a < c); "(other)" = c 1.
     *  channel linear: b 1.5, then a/d tie at exactly 1 -> a; "(other)" =
     *    d 1 + c 0.5 = 1.5.
     *  campaign first_touch: V = {z,x}, 2 <= 2: no cut, the real "(other)"
     *    stays 1. campaign last_touch: V = {x,y}: no cut either.
     *  campaign linear: V = {x,z,y} (3 > 2): keep x 1.5, z 1; "(other)" =
     *    y 0.5 + the real "(other)" 1 = 1.5.
     * No segment breakdown: no by_segment key. */
    char *out = REPLAYC(other_cfg(2), other_evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "entered", "[6,0]");
    assert_field(r, "reached", "[6,4]");
    assert_field(r, "completed", "4");
    char *seg = fs_e2e_field(r, "by_segment");
    assert_null(seg);
    assert_field(r, "by_channel",
                 "{\"(other)\":{\"reached\":[3,1],\"completed\":1},"
                 "\"a\":{\"reached\":[1,1],\"completed\":1},"
                 "\"b\":{\"reached\":[2,2],\"completed\":2}}");
    assert_field(r, "by_campaign",
                 "{\"(other)\":{\"reached\":[2,2],\"completed\":2},"
                 "\"x\":{\"reached\":[2,2],\"completed\":2},"
                 "\"z\":{\"reached\":[2,0],\"completed\":0}}");
    assert_field(r, "attribution.first_touch", "{\"(other)\":1,\"a\":1,\"d\":2}");
    assert_field(r, "attribution.last_touch", "{\"(other)\":1,\"a\":1,\"b\":2}");
    assert_field_close(r, "attribution.linear", "{\"(other)\":1.5,\"a\":1,\"b\":1.5}");
    assert_field(r, "attribution.campaign.first_touch", "{\"(other)\":1,\"x\":1,\"z\":2}");
    assert_field(r, "attribution.campaign.last_touch", "{\"(other)\":1,\"x\":2,\"y\":1}");
    assert_field_close(r, "attribution.campaign.linear", "{\"(other)\":1.5,\"x\":1.5,\"z\":1}");
    free(r);
    free(out);
}

static void test_other_no_cut_within_limit(void **state)
{
    (void)state;
    /* The same events with max_breakdown_values 4: by_channel has 4 values,
     * by_campaign 4 besides the real "(other)", every attribution map at
     * most 4: nothing is cut (|V| <= limit), the real "(other)" campaign is
     * kept as it is, [1,1] completed 1. */
    char *out = REPLAYC(other_cfg(4), other_evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "by_channel",
                 "{\"a\":{\"reached\":[1,1],\"completed\":1},"
                 "\"b\":{\"reached\":[2,2],\"completed\":2},"
                 "\"c\":{\"reached\":[1,1],\"completed\":1},"
                 "\"d\":{\"reached\":[2,0],\"completed\":0}}");
    assert_field(r, "by_campaign",
                 "{\"(other)\":{\"reached\":[1,1],\"completed\":1},"
                 "\"x\":{\"reached\":[2,2],\"completed\":2},"
                 "\"y\":{\"reached\":[0,1],\"completed\":1},"
                 "\"z\":{\"reached\":[2,0],\"completed\":0},"
                 "\"zz\":{\"reached\":[1,0],\"completed\":0}}");
    assert_field(r, "attribution.first_touch", "{\"a\":1,\"b\":1,\"d\":2}");
    assert_field(r, "attribution.last_touch", "{\"a\":1,\"b\":2,\"c\":1}");
    assert_field_close(r, "attribution.linear", "{\"a\":1,\"b\":1.5,\"c\":0.5,\"d\":1}");
    assert_field(r, "attribution.campaign.first_touch", "{\"(other)\":1,\"x\":1,\"z\":2}");
    assert_field(r, "attribution.campaign.last_touch", "{\"(other)\":1,\"x\":2,\"y\":1}");
    assert_field_close(r, "attribution.campaign.linear",
                       "{\"(other)\":1,\"x\":1.5,\"y\":0.5,\"z\":1}");
    free(r);
    free(out);
}

static void test_other_cut_ties(void **state)
{
    (void)state;
    /* Ties by name, bytewise with a shorter prefix first: max 1, open, 2
     * stages, breakdowns [channel]; three starts on channels "ab", "a",
     * "aa", reached [1,0] each. V = {a, aa, ab} (3 > 1), all scores 1:
     * "a" < "aa" < "ab", keep "a"; "(other)" = aa + ab = [2,0]. They expire
     * at T0+60x000 (window T0+10M), where every map is empty: no cut. */
    const cev pre[] = {{"c1", 1000, "a0", "ab", NULL, NULL},
                       {"c2", 2000, "a0", "a", NULL, NULL},
                       {"c3", 3000, "a0", "aa", NULL, NULL}};
    char *out = REPLAYC(cfgx(WIN_1M, "open", "10m", NULL, 2, 0,
                             "    breakdowns: [channel]\n    max_breakdown_values: 1\n"),
                        pre);
    char *r = expect_record(out, "flow", "f", 0);
    assert_field(r, "reached", "[3,0]");
    assert_field(r, "by_channel",
                 "{\"(other)\":{\"reached\":[2,0],\"completed\":0},"
                 "\"a\":{\"reached\":[1,0],\"completed\":0}}");
    free(r);
    r = expect_record(out, "flow", "f", 10 * M);
    assert_field(r, "abandoned", "[3,0]");
    assert_field(r, "by_channel", "{}");
    free(r);
    free(out);

    /* Linear credit ranks exactly: max 2, breakdowns [channel].
     *  c1, c2, c3 each: a0 ch p, a0 ch r (touch), a1 ch r (completes):
     *    p 1/3, r 2/3 per journey.
     *  c4: a0 ch q, a1 ch q: q 1.
     * linear: r 3 * 2/3 = 2, p 3 * 1/3 = 1 exactly, q 1. V = {p, q, r}
     * (3 > 2): keep r, then p and q tie at exactly 1 -> p by name;
     * "(other)" = q = 1. (A rounded 1/3 summed three times falls short of 1
     * and would keep q instead.)
     * by_channel: p [3,0] (3), r [0,3] 3 completions (3), q [1,1] 1 (2):
     * keep p, r (tie at 3, p < r); "(other)" = q.
     * first_touch p 3, q 1 and last_touch r 3, q 1: |V| = 2, no cut. */
    const cev lin[] = {
        {"c1", 1000, "a0", "p", NULL, NULL}, {"c1", 1100, "a0", "r", NULL, NULL},
        {"c1", 1200, "a1", "r", NULL, NULL}, {"c2", 2000, "a0", "p", NULL, NULL},
        {"c2", 2100, "a0", "r", NULL, NULL}, {"c2", 2200, "a1", "r", NULL, NULL},
        {"c3", 3000, "a0", "p", NULL, NULL}, {"c3", 3100, "a0", "r", NULL, NULL},
        {"c3", 3200, "a1", "r", NULL, NULL}, {"c4", 4000, "a0", "q", NULL, NULL},
        {"c4", 4100, "a1", "q", NULL, NULL},
    };
    out = REPLAYC(cfgx(WIN_1M, "open", "10m", NULL, 2, 0,
                       "    breakdowns: [channel]\n    max_breakdown_values: 2\n"),
                  lin);
    r = expect_record(out, "flow", "f", 0);
    assert_field(r, "completed", "4");
    assert_field(r, "by_channel",
                 "{\"(other)\":{\"reached\":[1,1],\"completed\":1},"
                 "\"p\":{\"reached\":[3,0],\"completed\":0},"
                 "\"r\":{\"reached\":[0,3],\"completed\":3}}");
    assert_field(r, "attribution.first_touch", "{\"p\":3,\"q\":1}");
    assert_field(r, "attribution.last_touch", "{\"q\":1,\"r\":3}");
    assert_field_close(r, "attribution.linear", "{\"(other)\":1,\"p\":1,\"r\":2}");
    free(r);
    free(out);
}

/* -- which keys a record has -- */

static void assert_keys_at(const char *json, const char *path, const char *want, const char *file,
                           int line)
{
    char *got = fs_e2e_keys(json, path);
    if (!got || strcmp(got, want)) {
        print_error("keys of %s: got %s, want %s\nrecord: %s\n", path ? path : "(record)",
                    got ? got : "(none)", want, json);
        free(got);
        _fail(file, line);
    }
    free(got);
}
#define assert_keys(json, path, want) assert_keys_at((json), (path), (want), __FILE__, __LINE__)

#define KEYS_HEAD                                                                                  \
    "kind,funnel,window_start,window_end,stages,entered,reached,skipped,abandoned,excluded,"       \
    "completed,revenue,conversion,ttc_ms,"

static void test_breakdown_subsets(void **state)
{
    (void)state;
    /* c1 a0 @1000 ch a camp k, a1 @2000 ch b camp k: completes (2 stages).
     * Design field order: ..., ttc_ms, [by_channel], [by_segment],
     * [by_campaign], attribution, [stage_time_ms], late_events,
     * rejected_events; attribution.campaign iff campaign is a breakdown;
     * attribution by channel always. */
    const cev evs[] = {{"c1", 1000, "a0", "a", "k", NULL}, {"c1", 2000, "a1", "b", "k", NULL}};

    /* default: [channel, segment], stage_time true */
    char *out = REPLAYC(cfg(WIN_1M, "open", "10m", NULL, 2), evs);
    char *r = expect_record(out, "flow", "f", 0);
    assert_keys(r, NULL,
                KEYS_HEAD "by_channel,by_segment,attribution,stage_time_ms,late_events,"
                          "rejected_events");
    assert_keys(r, "attribution", "first_touch,last_touch,linear");
    free(r);
    free(out);

    /* [campaign] only, stage_time false: no by_channel/by_segment, no
     * stage_time_ms; attribution keeps the channel maps and adds campaign. */
    out = REPLAYC(cfgx(WIN_1M, "open", "10m", NULL, 2, 0,
                       "    breakdowns: [campaign]\n    stage_time: false\n"),
                  evs);
    r = expect_record(out, "flow", "f", 0);
    assert_keys(r, NULL, KEYS_HEAD "by_campaign,attribution,late_events,rejected_events");
    assert_field(r, "by_campaign", "{\"k\":{\"reached\":[1,1],\"completed\":1}}");
    assert_keys(r, "attribution", "first_touch,last_touch,linear,campaign");
    assert_field(r, "attribution.first_touch", "{\"a\":1}");
    assert_field(r, "attribution.last_touch", "{\"b\":1}");
    assert_field_close(r, "attribution.linear", "{\"a\":0.5,\"b\":0.5}");
    assert_field(r, "attribution.campaign.first_touch", "{\"k\":1}");
    assert_field(r, "attribution.campaign.last_touch", "{\"k\":1}");
    assert_field_close(r, "attribution.campaign.linear", "{\"k\":1}");
    free(r);
    free(out);

    /* [] : no by_ map at all, no campaign attribution; stage_time_ms [0]
     * 1000. */
    out = REPLAYC(cfgx(WIN_1M, "open", "10m", NULL, 2, 0, "    breakdowns: []\n"), evs);
    r = expect_record(out, "flow", "f", 0);
    assert_keys(r, NULL, KEYS_HEAD "attribution,stage_time_ms,late_events,rejected_events");
    assert_keys(r, "attribution", "first_touch,last_touch,linear");
    assert_field(r, "stage_time_ms",
                 "[{\"count\":1,\"min\":1000,\"max\":1000,\"sum\":1000,"
                 "\"p50\":1000,\"p90\":1000,\"p99\":1000}]");
    free(r);
    free(out);

    /* [campaign, segment, channel]: the record keeps the fixed order. */
    out = REPLAYC(
        cfgx(WIN_1M, "open", "10m", NULL, 2, 0, "    breakdowns: [campaign, segment, channel]\n"),
        evs);
    r = expect_record(out, "flow", "f", 0);
    assert_keys(r, NULL,
                KEYS_HEAD "by_channel,by_segment,by_campaign,attribution,stage_time_ms,"
                          "late_events,rejected_events");
    assert_keys(r, "attribution", "first_touch,last_touch,linear,campaign");
    free(r);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_entry_mid_funnel),
        cmocka_unit_test(test_strict_entry_mid_funnel_is_ignored),
        cmocka_unit_test(test_open_advance_skips_stages),
        cmocka_unit_test(test_strict_ignores_skip),
        cmocka_unit_test(test_touch_counts_nothing_but_shares_credit),
        cmocka_unit_test(test_expiry_boundary_exact_time_still_counts),
        cmocka_unit_test(test_expiry_boundary_one_ms_later),
        cmocka_unit_test(test_expiry_by_watermark_and_at_end),
        cmocka_unit_test(test_exclusion),
        cmocka_unit_test(test_completion_then_new_journey),
        cmocka_unit_test(test_revenue_and_ttc),
        cmocka_unit_test(test_by_channel_and_segment),
        cmocka_unit_test(test_conversion_nulls),
        cmocka_unit_test(test_late_event),
        cmocka_unit_test(test_hopping_windows),
        cmocka_unit_test(test_rejected_events),
        cmocka_unit_test(test_rejections_before_first_event),
        cmocka_unit_test(test_two_funnels_independent),
        cmocka_unit_test(test_cohort_records),
        cmocka_unit_test(test_window_boundaries),
        cmocka_unit_test(test_expiry_by_unstaged_event),
        cmocka_unit_test(test_expiry_before_exclusion),
        cmocka_unit_test(test_ttc_clamped_at_zero),
        cmocka_unit_test(test_late_journey_start_and_late_expiry),
        cmocka_unit_test(test_late_event_hopping),
        cmocka_unit_test(test_input_validation),
        cmocka_unit_test(test_rejections_with_out_of_orderness),
        cmocka_unit_test(test_msgpack_framing),
        cmocka_unit_test(test_limit_reject_new),
        cmocka_unit_test(test_limit_evict_oldest),
        cmocka_unit_test(test_no_limits_no_evicted_field),
        cmocka_unit_test(test_limit_config_errors),
        cmocka_unit_test(test_ts_range_boundaries),
        cmocka_unit_test(test_unordered_progress),
        cmocka_unit_test(test_unordered_touch_and_completion),
        cmocka_unit_test(test_unordered_expiry_and_exclusion),
        cmocka_unit_test(test_strict_optional_stages),
        cmocka_unit_test(test_open_optional_stages),
        cmocka_unit_test(test_stage_time_skips_entry_touch_completion),
        cmocka_unit_test(test_stage_time_later_window_and_clamp),
        cmocka_unit_test(test_stage_time_quantiles),
        cmocka_unit_test(test_by_campaign_unknown_and_attribution),
        cmocka_unit_test(test_other_cut),
        cmocka_unit_test(test_other_no_cut_within_limit),
        cmocka_unit_test(test_other_cut_ties),
        cmocka_unit_test(test_breakdown_subsets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
