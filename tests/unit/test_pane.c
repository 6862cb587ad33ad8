/* test_pane.c -- panes (src/core/pane.h) against counting into every window.
 *
 * The reference adds each count to every window that holds its time and is
 * still open, as the engine did before panes, and closes windows when the
 * watermark reaches their end. Random counts, watermark steps and jumps
 * must give the same windows with the same counts and the same late flags.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pane.h"

#define MAX_WIN 4096

#define N_LABELS 4

typedef struct ref {
    int64_t size, hop;
    int64_t start[MAX_WIN];
    uint64_t count[MAX_WIN], late[MAX_WIN], rejected[MAX_WIN];
    uint64_t by_label[MAX_WIN][N_LABELS];
    int64_t ttc_min[MAX_WIN], ttc_max[MAX_WIN];
    uint64_t ttc_count[MAX_WIN];
    int closed[MAX_WIN];
    int n;
} ref;

static int ref_slot(ref *r, int64_t start)
{
    for (int i = 0; i < r->n; i++)
        if (r->start[i] == start)
            return i;
    assert_true(r->n < MAX_WIN);
    r->start[r->n] = start;
    r->count[r->n] = r->late[r->n] = r->rejected[r->n] = 0;
    memset(r->by_label[r->n], 0, sizeof r->by_label[r->n]);
    r->ttc_count[r->n] = 0;
    r->closed[r->n] = 0;
    return r->n++;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Returns whether some window holding t was closed. A count carries a
 * label and, one time in three, a time to convert. */
static int ref_count(ref *r, int64_t t, int64_t wm, uint32_t label, int64_t ttc)
{
    int late = 0;
    for (int64_t s = floor_div(t, r->hop) * r->hop; s > t - r->size; s -= r->hop) {
        if (s + r->size <= wm) {
            late = 1;
            continue;
        }
        int k = ref_slot(r, s);
        r->count[k]++;
        r->by_label[k][label]++;
        if (ttc >= 0) {
            if (!r->ttc_count[k] || ttc < r->ttc_min[k])
                r->ttc_min[k] = ttc;
            if (!r->ttc_count[k] || ttc > r->ttc_max[k])
                r->ttc_max[k] = ttc;
            r->ttc_count[k]++;
        }
    }
    return late;
}

static int64_t earliest_open(const ref *r, int64_t wm)
{
    return (floor_div(wm - r->size, r->hop) + 1) * r->hop;
}

static int cmp_start(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The reference's windows closed at wm, ascending, as starts. */
static int ref_close(ref *r, int64_t wm, int all, int64_t *out)
{
    int n = 0;
    for (int i = 0; i < r->n; i++)
        if (!r->closed[i] && (all || r->start[i] + r->size <= wm) &&
            (r->count[i] || r->late[i] || r->rejected[i])) {
            r->closed[i] = 1;
            out[n++] = r->start[i];
        }
    qsort(out, (size_t)n, sizeof(*out), cmp_start);
    return n;
}

static void check_same(ref *r, fs_window_slot **got, uint32_t n_got, const int64_t *want, int n)
{
    assert_int_equal(n_got, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(got[i]->start, want[i]);
        int k = ref_slot(r, want[i]);
        fs_flow *f = got[i]->flow[0];
        assert_int_equal(f ? f->reached[0] : 0, r->count[k]);
        if (f) { /* labels: exactly those counted, with their counts */
            uint32_t labels = 0;
            for (uint32_t l = 0; l < N_LABELS; l++)
                labels += r->by_label[k][l] > 0;
            assert_int_equal(f->channels.count, labels);
            for (uint32_t l = 0; l < N_LABELS; l++)
                if (r->by_label[k][l])
                    assert_int_equal(fs_flow_channel(f, l)->reached[0], r->by_label[k][l]);
            assert_int_equal(f->ttc.count, r->ttc_count[k]);
            if (f->ttc.count) {
                assert_int_equal(f->ttc.min, r->ttc_min[k]);
                assert_int_equal(f->ttc.max, r->ttc_max[k]);
            }
        }
        assert_int_equal(f ? f->late_events : 0, r->late[k]);
        assert_int_equal(got[i]->rejected, r->rejected[k]);
        fs_window_slot_free(got[i], 1);
    }
    free(got);
}

static void run_random(int64_t size, int64_t hop, unsigned seed, int ops)
{
    static ref r;
    memset(&r, 0, sizeof r);
    r.size = size;
    r.hop = hop;
    fs_window_spec win = {size, hop, (uint32_t)(size / hop)};
    uint32_t stages = 1;
    fs_panes p;
    fs_panes_init(&p, &win, 1, &stages);
    srand(seed);
    int64_t wm = 1000, want[MAX_WIN];
    /* The engine closes windows whenever the watermark crosses a window end,
     * so the panes start out knowing the first watermark. */
    uint32_t n0 = 0;
    free(fs_panes_close(&p, wm, false, &n0));
    assert_int_equal(n0, 0);
    for (int op = 0; op < ops; op++) {
        int what = rand() % 10;
        if (what < 7) { /* a count somewhere around the watermark */
            int64_t t = wm - size - hop + rand() % (int)(3 * size);
            uint32_t label = (uint32_t)(rand() % N_LABELS);
            int64_t ttc = rand() % 3 == 0 ? rand() % 5000 : -1;
            bool late = false;
            fs_flow *f[2];
            uint32_t nf = fs_panes_flows(&p, 0, t, wm, &late, f);
            int ref_late = ref_count(&r, t, wm, label, ttc);
            assert_int_equal(late, ref_late);
            for (uint32_t i = 0; i < nf; i++) {
                f[i]->reached[0]++;
                fs_flow_channel(f[i], label)->reached[0]++;
                if (ttc >= 0)
                    fs_sketch_add(&f[i]->ttc, ttc);
            }
            if (late) {
                fs_panes_add_late(&p, 0, wm);
                r.late[ref_slot(&r, earliest_open(&r, wm))]++;
            }
        } else if (what == 7) {
            fs_panes_add_rejected(&p, wm, 2);
            r.rejected[ref_slot(&r, earliest_open(&r, wm))] += 2;
        } else { /* the watermark moves: a little, or far (a gap) */
            wm += what == 9 && rand() % 8 == 0 ? 50 * size : rand() % (int)(2 * hop);
            uint32_t n = 0;
            fs_window_slot **got = fs_panes_close(&p, wm, false, &n);
            check_same(&r, got, n, want, ref_close(&r, wm, 0, want));
        }
    }
    uint32_t n = 0;
    fs_window_slot **got = fs_panes_close(&p, INT64_MAX, true, &n);
    check_same(&r, got, n, want, ref_close(&r, INT64_MAX, 1, want));
    assert_int_equal(fs_panes_count(&p), 0);
    fs_panes_free(&p);
}

static void test_tumbling(void **state)
{
    (void)state;
    for (unsigned seed = 1; seed <= 5; seed++)
        run_random(60, 60, seed, 3000);
}

static void test_hopping(void **state)
{
    (void)state;
    for (unsigned seed = 1; seed <= 5; seed++) {
        run_random(60, 20, seed, 3000);
        run_random(100, 1, seed, 400); /* size/hop = 100 */
    }
}

static void test_one_pane_per_count(void **state)
{
    (void)state;
    /* size/hop = 1000: a count touches one pane, not 1000 windows */
    fs_window_spec win = {1000, 1, 1000};
    uint32_t stages = 1;
    fs_panes p;
    fs_panes_init(&p, &win, 1, &stages);
    bool late = false;
    for (int i = 0; i < 100; i++) {
        fs_flow *f[2];
        assert_int_equal(fs_panes_flows(&p, 0, 5000, 0, &late, f), 1);
        f[0]->reached[0]++;
    }
    assert_false(late);
    assert_int_equal(fs_panes_count(&p), 1);
    uint32_t n = 0;
    fs_window_slot **got = fs_panes_close(&p, INT64_MAX, true, &n);
    assert_int_equal(n, 1000); /* windows 4001 .. 5000 hold t = 5000 */
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(got[i]->start, 4001 + (int64_t)i);
        assert_int_equal(got[i]->flow[0]->reached[0], 100);
        fs_window_slot_free(got[i], 1);
    }
    free(got);
    fs_panes_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tumbling),
        cmocka_unit_test(test_hopping),
        cmocka_unit_test(test_one_pane_per_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
