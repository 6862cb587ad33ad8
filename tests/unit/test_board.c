/* test_board.c -- latest and recent flow records per funnel (src/http/board.h),
 * and the Prometheus rendering of the stage's counters (src/http/metrics.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "board.h"
#include "metrics.h"

static const char yaml[] = "funnels:\n"
                           "  - name: f\n"
                           "    stages: [{name: a, events: [a]}, {name: b, events: [b]}]\n"
                           "  - name: g\n"
                           "    stages: [{name: x, events: [x]}, {name: y, events: [y]}]\n";

static fs_config *config(void)
{
    char err[256];
    fs_config *cfg = fs_config_parse(yaml, sizeof yaml - 1, "test", err, sizeof err);
    assert_non_null(cfg);
    return cfg;
}

static char *render_open(fs_board *b, int64_t wm, const fs_open_count *open, uint32_t n)
{
    static fs_buf out;
    out.len = 0;
    fs_board_render(b, wm, open, n, &out);
    fs_buf_putc(&out, '\0');
    return out.p;
}

static char *render(fs_board *b, int64_t wm)
{
    return render_open(b, wm, NULL, 0);
}

static void test_empty_board(void **state)
{
    (void)state;
    fs_config *cfg = config();
    fs_board *b = fs_board_new(cfg);
    assert_string_equal(
        render(b, INT64_MIN),
        "{\"watermark\":null,\"funnels\":["
        "{\"name\":\"f\",\"mode\":\"open\",\"stages\":[\"a\",\"b\"],\"optional\":[false,false],"
        "\"latest\":null,\"recent\":[],\"open\":[]},"
        "{\"name\":\"g\",\"mode\":\"open\",\"stages\":[\"x\",\"y\"],\"optional\":[false,false],"
        "\"latest\":null,\"recent\":[],\"open\":[]}]}"
        "\n");
    fs_board_free(b);
    fs_config_free(cfg);
}

/* Records go to their funnel's ring, which keeps the last FS_BOARD_RECENT
 * records oldest first; the newest is `latest`. */
static void test_latest_and_recent(void **state)
{
    (void)state;
    fs_config *cfg = config();
    fs_board *b = fs_board_new(cfg);
    for (int i = 0; i < FS_BOARD_RECENT + 5; i++) {
        char rec[32];
        int rl = snprintf(rec, sizeof rec, "{\"w\":%d}", i);
        fs_board_post(b, 1, rec, (size_t)rl);
    }
    char *doc = render(b, 42);
    assert_non_null(strstr(doc, "{\"watermark\":42,"));
    assert_non_null(strstr(doc, "\"name\":\"f\",\"mode\":\"open\",\"stages\":[\"a\",\"b\"],"
                                "\"optional\":[false,false],\"latest\":null"));
    assert_non_null(strstr(doc, "\"latest\":{\"w\":64},\"recent\":[{\"w\":5},{\"w\":6},"));
    assert_non_null(strstr(doc, "{\"w\":63},{\"w\":64}],\"open\":[]}]}"));
    assert_null(strstr(doc, "{\"w\":4}"));
    fs_board_free(b);
    fs_config_free(cfg);
}

/* Running counts go to their funnel, windows in the order given, with
 * window_end = start + the window size (default 1 minute). */
static void test_open_windows(void **state)
{
    (void)state;
    fs_config *cfg = config();
    fs_board *b = fs_board_new(cfg);
    fs_open_count open[3] = {
        {.start = 0,
         .funnel = 0,
         .n_stages = 2,
         .completed = 1,
         .entered = {3, 1},
         .reached = {3, 1}},
        {.start = 60000, .funnel = 0, .n_stages = 2, .entered = {2, 0}, .reached = {2, 0}},
        {.start = 0,
         .funnel = 1,
         .n_stages = 2,
         .entered = {0, 5},
         .reached = {5, 5},
         .completed = 5},
    };
    char *doc = render_open(b, 7, open, 3);
    assert_non_null(strstr(doc,
                           "\"stages\":[\"a\",\"b\"],\"optional\":[false,false],\"latest\":null,"
                           "\"recent\":[],\"open\":["
                           "{\"window_start\":0,\"window_end\":60000,\"entered\":[3,1],"
                           "\"reached\":[3,1],\"completed\":1},"
                           "{\"window_start\":60000,\"window_end\":120000,\"entered\":[2,0],"
                           "\"reached\":[2,0],\"completed\":0}]}"));
    assert_non_null(strstr(doc, "\"open\":[{\"window_start\":0,\"window_end\":60000,"
                                "\"entered\":[0,5],\"reached\":[5,5],\"completed\":5}]}]}"));
    fs_board_free(b);
    fs_config_free(cfg);
}

/* The page labels its stage axis by the funnel's mode and marks optional
 * stages, so each funnel carries both. Set on the parsed config directly:
 * this tests the rendering, not the parser. */
static const char yaml3[] = "funnels:\n"
                            "  - name: o\n"
                            "    mode: strict\n"
                            "    stages: [{name: a, events: [a]}, {name: b, events: [b]},\n"
                            "             {name: c, events: [c]}]\n"
                            "  - name: u\n"
                            "    stages: [{name: x, events: [x]}, {name: y, events: [y]}]\n";

static void test_mode_and_optional(void **state)
{
    (void)state;
    char err[256];
    fs_config *cfg = fs_config_parse(yaml3, sizeof yaml3 - 1, "test", err, sizeof err);
    assert_non_null(cfg);
    cfg->funnels[0].stages[1].optional = true;
    cfg->funnels[1].mode = FS_MODE_UNORDERED;
    fs_board *b = fs_board_new(cfg);
    char *doc = render(b, 1);
    assert_non_null(strstr(doc,
                           "{\"name\":\"o\",\"mode\":\"strict\",\"stages\":[\"a\",\"b\",\"c\"],"
                           "\"optional\":[false,true,false],\"latest\":null"));
    assert_non_null(strstr(doc, "{\"name\":\"u\",\"mode\":\"unordered\",\"stages\":[\"x\",\"y\"],"
                                "\"optional\":[false,false],\"latest\":null"));
    fs_board_free(b);
    fs_config_free(cfg);
}

static void test_metrics_text(void **state)
{
    (void)state;
    fs_latency_histogram h = {0};
    fs_latency_observe(&h, 0.0005); /* le 0.001 */
    fs_latency_observe(&h, 0.05);   /* le 0.05 */
    fs_latency_observe(&h, 60);     /* +Inf only */
    fs_metrics_partition parts[] = {{0, 12, 100, false, 4096, 300}, {3, -1, -1, true, 0, 0}};
    fs_metrics m = {.consumed = 7, .ready = true, .parts = parts, .n_parts = 2, .latency = &h};
    m.merge = (fs_metrics_merge){.merging = true,
                                 .partials_lag = 2,
                                 .pending_windows = 4,
                                 .emitted_ms = 1732280460000,
                                 .late_windows = 1};
    m.engine.valid = 5;
    m.engine.rejected_by[1] = 2;
    m.engine.rejected = 2;
    m.engine.journeys_refused = 6; /* limits (issue 13) */
    m.engine.journeys_evicted = 8;
    m.acked_watermark_ms = INT64_MIN;
    fs_buf out = {0};
    fs_metrics_render(&m, &out);
    fs_buf_putc(&out, '\0');
    const char *want[] = {
        "# TYPE funnelstream_events_total counter\n",
        "funnelstream_events_total{outcome=\"accepted\"} 5\n",
        "funnelstream_rejected_total{reason=\"bad_start_byte\"} 2\n",
        "funnelstream_consumer_lag{partition=\"0\"} 12\n",
        "funnelstream_consumer_lag{partition=\"3\"} -1\n",
        "funnelstream_partition_idle{partition=\"3\"} 1\n",
        "funnelstream_close_to_ack_seconds_bucket{le=\"0.001\"} 1\n",
        "funnelstream_close_to_ack_seconds_bucket{le=\"0.05\"} 2\n",
        "funnelstream_close_to_ack_seconds_bucket{le=\"10\"} 2\n",
        "funnelstream_close_to_ack_seconds_bucket{le=\"+Inf\"} 3\n",
        "funnelstream_close_to_ack_seconds_count 3\n",
        "funnelstream_ready 1\n",
        "funnelstream_acked_watermark_seconds 0\n",
        "funnelstream_partition_state_bytes_total{partition=\"0\"} 4096\n",
        "funnelstream_partition_record_bytes{partition=\"0\"} 300\n",
        "funnelstream_merging 1\n",
        "funnelstream_merge_partials_lag 2\n",
        "funnelstream_merge_pending_windows 4\n",
        "funnelstream_merge_watermark_seconds 1732280460\n",
        "funnelstream_merge_late_windows_total 1\n",
        "# TYPE funnelstream_journeys_refused_total counter\n",
        "funnelstream_journeys_refused_total 6\n",
        "# TYPE funnelstream_journeys_evicted_total counter\n",
        "funnelstream_journeys_evicted_total 8\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        if (!strstr(out.p, want[i]))
            fail_msg("missing: %s\nin:\n%s", want[i], out.p);
    }
    fs_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_board),  cmocka_unit_test(test_latest_and_recent),
        cmocka_unit_test(test_open_windows), cmocka_unit_test(test_mode_and_optional),
        cmocka_unit_test(test_metrics_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
