/* fuzz_state.c -- libFuzzer target: the state topic's decoders (state.c).
 *
 * Every input goes to fs_state_decode_customer, fs_state_decode_part
 * (configuration hash 0, which the seeds carry; another hash must give
 * FS_STATE_ECONFIG) and fs_state_decode_clock, which must accept what the
 * full decode accepts, agree with it, and see the same versions.
 * Besides "no crash, no leak, no sanitizer report":
 *   - an error has a message; an accepted value holds the checks state.h
 *     promises: funnels and stages in range, journeys ascending, lists in
 *     strictly ascending key order, every sketch within its invariants
 *     (sketch.c), which are then used (quantiles, a merge, a subtraction)
 *     so that ASan sees any index they would misuse;
 *   - re-encoding is a fixed point: encode(decode(x)) decodes, and encodes
 *     again to the same bytes (x itself may differ: the reader accepts any
 *     integer form, a zero counter, an i128 pair that fits int64).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "fuzz_check.h"
#include "state.h"

#define N_FUNNELS 3

static const uint32_t n_stages[N_FUNNELS] = {2, 3, 2};

static const char *dict_name(void *ctx, uint32_t label, uint32_t *len)
{
    *len = fs_dict_len(ctx, label);
    return fs_dict_name(ctx, label);
}

static uint32_t dict_intern(void *ctx, const char *name, uint32_t len)
{
    CHECK(len <= FS_MAX_LABEL && fs_utf8_valid(name, len));
    return fs_dict_intern(ctx, name, len);
}

static bool same_bytes(const fs_buf *a, const fs_buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

/* ---- customers ---------------------------------------------------------- */

static void check_customer(const fs_state_customer *c)
{
    for (uint32_t i = 0; i < c->n_journeys; i++) {
        const fs_state_journey *j = &c->journey[i];
        CHECK(j->funnel < N_FUNNELS && j->max_stage < n_stages[j->funnel]);
        CHECK(i == 0 || c->journey[i - 1].funnel < j->funnel);
        CHECK(j->n_touches <= FS_STATE_MAX_TOUCHES);
    }
}

static void customer_fixed_point(const fs_state_customer *c, const fs_state_labels *l)
{
    fs_buf once = {0}, twice = {0};
    fs_state_encode_customer(&once, c, l);
    fs_state_customer again;
    char err[256];
    CHECK(fs_state_decode_customer(once.p, once.len, N_FUNNELS, n_stages, l, &again, err,
                                   sizeof(err)) == FS_STATE_OK);
    fs_state_encode_customer(&twice, &again, l);
    CHECK(same_bytes(&once, &twice));
    fs_state_customer_free(&again);
    fs_buf_free(&once);
    fs_buf_free(&twice);
}

static void fuzz_customer(const char *p, size_t n, const fs_state_labels *l)
{
    fs_state_customer c = {0};
    char err[256];
    fs_state_err e = fs_state_decode_customer(p, n, N_FUNNELS, n_stages, l, &c, err, sizeof(err));
    if (e != FS_STATE_OK) {
        CHECK(e == FS_STATE_EMALFORMED || e == FS_STATE_EVERSION);
        CHECK(err[0] != '\0' && c.journey == NULL && c.n_journeys == 0);
        return;
    }
    check_customer(&c);
    customer_fixed_point(&c, l);
    fs_state_customer_free(&c);
}

/* ---- partitions --------------------------------------------------------- */

static void check_sketch(const fs_sketch *s)
{
    CHECK(s->lo <= s->hi && s->hi <= fs_sketch_n_buckets());
    if (!s->buckets) {
        CHECK(s->count <= FS_SKETCH_FEW);
        for (uint64_t i = 0; i < s->count; i++)
            CHECK(s->few[i] >= s->lo && s->few[i] < s->hi);
    } else {
        uint64_t sum = 0;
        for (uint32_t i = 0; i < fs_sketch_n_buckets(); i++) {
            CHECK(!s->buckets[i] || (i >= s->lo && i < s->hi));
            sum += s->buckets[i];
        }
        CHECK(sum == s->count);
    }
    int64_t v;
    CHECK(fs_sketch_quantile(s, 0.5, &v) == (s->count > 0));
    (void)fs_sketch_quantile(s, 0.99, &v);
    fs_sketch m;
    fs_sketch_init(&m);
    fs_sketch_merge(&m, s);
    CHECK(m.count == s->count);
    fs_sketch_subtract(&m, s);
    CHECK(m.count == 0);
    fs_sketch_free(&m);
}

static void check_flow(const fs_flow *f, uint32_t funnel)
{
    CHECK(f->n_stages == n_stages[funnel]);
    check_sketch(&f->ttc);
    fs_flow *m = fs_flow_new(f->n_stages);
    fs_flow_merge(m, f, NULL);
    fs_flow_free(m);
}

static void check_slots(fs_window_slot *const *slots, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        CHECK(i == 0 || slots[i - 1]->start < slots[i]->start);
        for (uint32_t f = 0; f < N_FUNNELS; f++)
            if (slots[i]->flow[f])
                check_flow(slots[i]->flow[f], f);
    }
}

static void check_part(const fs_state_part *s)
{
    check_slots(s->panes, s->n_panes);
    check_slots(s->extras, s->n_extras);
    check_slots(s->parked, s->n_parked);
    for (uint32_t i = 0; i < s->n_cohorts; i++) {
        const fs_state_cohort *c = &s->cohorts[i], *b = i ? &s->cohorts[i - 1] : NULL;
        CHECK(c->funnel < N_FUNNELS && c->cohort && !c->cohort->dirty);
        CHECK(!b || b->funnel < c->funnel ||
              (b->funnel == c->funnel &&
               (b->pane < c->pane || (b->pane == c->pane && b->start < c->start))));
    }
}

static void part_fixed_point(const fs_state_part *s, const fs_state_labels *l)
{
    fs_buf once = {0}, twice = {0};
    fs_state_encode_part(&once, s, N_FUNNELS, n_stages, l);
    fs_state_part again;
    char err[256];
    CHECK(fs_state_decode_part(once.p, once.len, 0, N_FUNNELS, n_stages, l, &again, err,
                               sizeof(err)) == FS_STATE_OK);
    fs_state_encode_part(&twice, &again, N_FUNNELS, n_stages, l);
    CHECK(same_bytes(&once, &twice));
    fs_state_part_free(&again, N_FUNNELS);
    /* any other configuration is refused, whatever follows the hash */
    fs_state_part other;
    CHECK(fs_state_decode_part(once.p, once.len, 1, N_FUNNELS, n_stages, l, &other, err,
                               sizeof(err)) == FS_STATE_ECONFIG);
    fs_buf_free(&once);
    fs_buf_free(&twice);
}

static void fuzz_part(const char *p, size_t n, const fs_state_labels *l)
{
    fs_state_part s;
    fs_state_clock clock;
    char err[256];
    fs_state_err ce = fs_state_decode_clock(p, n, &clock);
    fs_state_err e = fs_state_decode_part(p, n, 0, N_FUNNELS, n_stages, l, &s, err, sizeof(err));
    CHECK((ce == FS_STATE_EVERSION) == (e == FS_STATE_EVERSION));
    CHECK(e != FS_STATE_OK || ce == FS_STATE_OK);
    if (e == FS_STATE_OK)
        CHECK(clock.seen == s.seen && clock.max_ts == s.max_ts &&
              clock.instance_wm == s.instance_wm);
    if (e != FS_STATE_OK) {
        CHECK(e == FS_STATE_EMALFORMED || e == FS_STATE_EVERSION || e == FS_STATE_ECONFIG);
        CHECK(err[0] != '\0' && s.n_panes + s.n_extras + s.n_parked + s.n_cohorts == 0);
        return;
    }
    check_part(&s);
    part_fixed_point(&s, l);
    fs_state_part_free(&s, N_FUNNELS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact copy, so ASan sees a read one byte past the value. */
    char *copy = malloc(size ? size : 1);
    CHECK(copy);
    memcpy(copy, data, size);
    fs_dict d; /* one per input: labels from earlier inputs must not pile up */
    fs_dict_init(&d);
    fs_state_labels l = {dict_name, dict_intern, &d};
    fuzz_customer(copy, size, &l);
    fuzz_part(copy, size, &l);
    fs_dict_free(&d);
    free(copy);
    return 0;
}
