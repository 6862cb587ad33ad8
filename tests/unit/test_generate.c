/* test_generate.c -- properties of the synthetic traffic generator (generate.h).
 *
 * The generator feeds every end-to-end check (reference comparison, thread
 * determinism, benchmarks), so its promises are tested directly here, on the
 * bytes it writes to memory, decoded with the engine's own framing
 * (frame.h) and decoder (decode.h):
 *   - the same options give the same bytes; another seed gives other bytes
 *   - a MessagePack and a JSON-lines stream of the same options hold the same
 *     events field by field, and reject the same records when malformed
 *     records are asked for (so replays of either must agree)
 *   - exactly `events` records; all valid without malformed_ppm, about
 *     malformed_ppm per million rejected with it
 *   - timestamps follow start_ts + i * 1000 / rate, moved back by at most
 *     disorder_ms
 *   - the traffic covers what the bundled funnels need: >= 6 channels, both
 *     segments, every stage and exclude event type of configs/default.yaml
 *     and of every bundled config (read as text: the loader does not know
 *     every key of the issue-14 examples yet)
 *   - campaigns: 20..60 per channel named "<channel>-<theme>-<nn>", a long
 *     tail (a few carry most records, many are rare), sticky within a
 *     customer's journey on one channel, some records without a campaign
 *     key and a very few with an empty one
 *   - the optional checkout step: coupon_applied only between a customer's
 *     add_to_cart and checkout_start, most checkouts without one
 *   - onboarding in any order: B2B accounts only, each step at most once,
 *     every step seen first, many orders, some accounts stopping early
 *   - the record-at-a-time API (fs_gen_next) hands out exactly the bytes
 *     fs_generate writes, for every option that touches the random stream;
 *     a ts_override changes ts and nothing else; the key is the record's
 *     customer_id (NULL only for records that have none); events == 0 never
 *     ends
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "decode.h"
#include "frame.h"
#include "generate.h"

/* ---- generating into memory ---------------------------------------------- */

typedef struct blob {
    char *data;
    size_t len;
} blob;

static blob gen(const fs_gen_opts *opts)
{
    blob b = {NULL, 0};
    FILE *f = open_memstream(&b.data, &b.len);
    assert_non_null(f);
    assert_int_equal(fs_generate(opts, f), 0);
    assert_int_equal(fclose(f), 0);
    return b;
}

static fs_gen_opts opts_with(uint64_t events, uint64_t customers, uint64_t seed, fs_format fmt)
{
    fs_gen_opts o;
    fs_gen_opts_default(&o);
    o.events = events;
    o.customers = customers;
    o.seed = seed;
    o.format = fmt;
    return o;
}

/* ---- decoding back --------------------------------------------------------- */

/* One record of a generated stream, decoded, with its strings copied out. */
typedef struct rec {
    fs_reject reason; /* FS_OK for a valid event */
    int64_t ts;
    double value;
    char customer_id[FS_MAX_CUSTOMER_ID + 1];
    char event[FS_MAX_EVENT_TYPE + 1];
    char channel[FS_MAX_LABEL + 1];
    char campaign[FS_MAX_LABEL + 1];
    char segment[FS_MAX_LABEL + 1];
} rec;

typedef struct recs {
    rec *v;
    size_t n, cap;
    size_t rejected;
} recs;

static void copy_slice(char *dst, fs_slice s)
{
    memcpy(dst, s.ptr, s.len);
    dst[s.len] = '\0';
}

static rec *recs_push(recs *r)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 1024;
        r->v = realloc(r->v, r->cap * sizeof *r->v);
        assert_non_null(r->v);
    }
    rec *x = &r->v[r->n++];
    memset(x, 0, sizeof *x);
    return x;
}

static void add_decoded(recs *r, fs_decoder *dec, fs_format fmt, const char *msg, size_t len,
                        char *scratch)
{
    fs_event ev;
    size_t used = 0;
    rec *x = recs_push(r);
    x->reason = fs_decode(dec, fmt, msg, len, &ev, scratch, &used);
    if (x->reason != FS_OK) {
        r->rejected++;
        return;
    }
    x->ts = ev.ts;
    x->value = ev.value;
    copy_slice(x->customer_id, ev.customer_id);
    copy_slice(x->event, ev.event);
    copy_slice(x->channel, ev.channel);
    copy_slice(x->campaign, ev.campaign);
    copy_slice(x->segment, ev.segment);
}

static void add_rejected(recs *r, fs_reject reason)
{
    recs_push(r)->reason = reason;
    r->rejected++;
}

/* Splits b into records the way replay does (SPEC §1, replay files) and
 * decodes each. */
static recs decode_all(const blob *b, fs_format fmt)
{
    recs r = {NULL, 0, 0, 0};
    fs_decoder *dec = fs_decoder_new();
    char *scratch = malloc(b->len + 1);
    assert_non_null(dec);
    assert_non_null(scratch);
    size_t off = 0;
    while (off < b->len) {
        const char *p = b->data + off;
        size_t left = b->len - off, len = 0, consumed = 0;
        if (fmt == FS_FORMAT_MSGPACK) {
            fs_frame_status st = fs_frame_msgpack(p, left, &len);
            if (st == FS_FRAME_NEED_MORE) { /* incomplete object at the end */
                add_rejected(&r, FS_REJECT_TRUNCATED);
                break;
            }
            if (st == FS_FRAME_BAD)
                add_rejected(&r, FS_REJECT_BAD_START_BYTE);
            else
                add_decoded(&r, dec, fmt, p, len, scratch);
            off += len;
        } else {
            if (fs_frame_jsonl(p, left, &len, &consumed) == FS_FRAME_NEED_MORE)
                len = consumed = left; /* the last line has no '\n' */
            if (!fs_line_is_blank(p, len))
                add_decoded(&r, dec, fmt, p, len, scratch);
            off += consumed;
        }
    }
    free(scratch);
    fs_decoder_free(dec);
    return r;
}

static recs gen_decode(const fs_gen_opts *opts)
{
    blob b = gen(opts);
    recs r = decode_all(&b, opts->format);
    free(b.data);
    return r;
}

/* Field-by-field equality of two valid records; value as doubles. */
static void assert_same_event(const rec *a, const rec *b, size_t i)
{
    if (a->ts != b->ts || a->value != b->value || strcmp(a->customer_id, b->customer_id) ||
        strcmp(a->event, b->event) || strcmp(a->channel, b->channel) ||
        strcmp(a->campaign, b->campaign) || strcmp(a->segment, b->segment)) {
        print_error(
            "record %zu differs:\n  %s %lld %s %s %s %s %.17g\n  %s %lld %s %s %s %s %.17g\n", i,
            a->customer_id, (long long)a->ts, a->event, a->channel, a->campaign, a->segment,
            a->value, b->customer_id, (long long)b->ts, b->event, b->channel, b->campaign,
            b->segment, b->value);
        fail();
    }
}

/* The two formats of the same options: same record count, the same records
 * rejected, the same events. */
static void assert_formats_agree(const recs *mp, const recs *js)
{
    assert_int_equal(mp->n, js->n);
    assert_int_equal(mp->rejected, js->rejected);
    for (size_t i = 0; i < mp->n; i++) {
        bool mp_ok = mp->v[i].reason == FS_OK, js_ok = js->v[i].reason == FS_OK;
        if (mp_ok != js_ok) {
            print_error("record %zu: msgpack %s, json %s\n", i, fs_reject_name(mp->v[i].reason),
                        fs_reject_name(js->v[i].reason));
            fail();
        }
        if (mp_ok)
            assert_same_event(&mp->v[i], &js->v[i], i);
    }
}

/* ---- tests ------------------------------------------------------------------ */

static void test_same_options_same_bytes(void **state)
{
    (void)state;
    for (int f = 0; f < 2; f++) {
        fs_gen_opts o = opts_with(30000, 700, 42, f ? FS_FORMAT_JSON : FS_FORMAT_MSGPACK);
        o.disorder_ms = 2500;
        o.malformed_ppm = 5000;
        o.rate = 123.5;
        blob a = gen(&o), b = gen(&o);
        assert_true(a.len > 30000 * 40);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        free(a.data);
        free(b.data);
    }
}

static void test_different_seed_differs(void **state)
{
    (void)state;
    for (int f = 0; f < 2; f++) {
        fs_gen_opts o = opts_with(5000, 300, 1, f ? FS_FORMAT_JSON : FS_FORMAT_MSGPACK);
        blob a = gen(&o);
        o.seed = 2;
        blob b = gen(&o);
        recs ra = decode_all(&a, o.format), rb = decode_all(&b, o.format);
        assert_int_equal(ra.n, 5000);
        assert_int_equal(rb.n, 5000);
        /* not merely different somewhere: most records differ */
        size_t same = 0;
        for (size_t i = 0; i < ra.n; i++)
            same += !strcmp(ra.v[i].customer_id, rb.v[i].customer_id) &&
                    !strcmp(ra.v[i].event, rb.v[i].event);
        assert_true(same < ra.n / 10);
        free(ra.v);
        free(rb.v);
        free(a.data);
        free(b.data);
    }
}

static void test_formats_same_events(void **state)
{
    (void)state;
    fs_gen_opts o = opts_with(40000, 1500, 7, FS_FORMAT_MSGPACK);
    o.disorder_ms = 4000;
    o.rate = 50;
    recs mp = gen_decode(&o);
    o.format = FS_FORMAT_JSON;
    recs js = gen_decode(&o);
    assert_int_equal(mp.n, 40000);
    assert_int_equal(mp.rejected, 0);
    assert_formats_agree(&mp, &js);
    /* values with cents occur, so the double comparison is not vacuous */
    size_t fractional = 0;
    for (size_t i = 0; i < mp.n; i++)
        fractional += mp.v[i].value != (double)(int64_t)mp.v[i].value;
    assert_true(fractional > 100);
    free(mp.v);
    free(js.v);
}

static void test_no_malformed_all_valid(void **state)
{
    (void)state;
    for (int f = 0; f < 2; f++) {
        fs_gen_opts o = opts_with(60000, 4000, 99, f ? FS_FORMAT_JSON : FS_FORMAT_MSGPACK);
        o.disorder_ms = 10000;
        recs r = gen_decode(&o);
        assert_int_equal(r.n, 60000);
        for (size_t i = 0; i < r.n; i++) {
            if (r.v[i].reason != FS_OK) {
                print_error("record %zu rejected: %s\n", i, fs_reject_name(r.v[i].reason));
                fail();
            }
        }
        free(r.v);
    }
}

static void test_malformed_band_and_formats_agree(void **state)
{
    (void)state;
    const uint64_t n = 50000;
    fs_gen_opts o = opts_with(n, 2000, 5, FS_FORMAT_MSGPACK);
    o.malformed_ppm = 100000; /* 10 %: expect 5000, sd ~ 67 */
    o.disorder_ms = 1000;
    recs mp = gen_decode(&o);
    o.format = FS_FORMAT_JSON;
    recs js = gen_decode(&o);
    assert_int_equal(mp.n, n);
    assert_in_range(mp.rejected, 4500, 5500);
    assert_formats_agree(&mp, &js);
    /* several kinds of breakage, not one */
    bool seen[FS_REJECT_COUNT] = {false};
    int kinds = 0;
    for (size_t i = 0; i < mp.n; i++) {
        if (!seen[mp.v[i].reason]) {
            seen[mp.v[i].reason] = true;
            kinds++;
        }
    }
    assert_true(kinds >= 1 + 7); /* FS_OK and at least 7 reasons */
    free(mp.v);
    free(js.v);

    o.malformed_ppm = 1000000; /* every record broken */
    o.events = 3000;
    for (int f = 0; f < 2; f++) {
        o.format = f ? FS_FORMAT_JSON : FS_FORMAT_MSGPACK;
        recs r = gen_decode(&o);
        assert_int_equal(r.n, 3000);
        assert_int_equal(r.rejected, 3000);
        free(r.v);
    }
}

static void test_event_count_exact(void **state)
{
    (void)state;
    static const uint64_t counts[] = {0, 1, 2, 7, 999, 12345};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        for (int f = 0; f < 2; f++) {
            for (uint32_t ppm = 0; ppm <= 200000; ppm += 200000) {
                fs_gen_opts o =
                    opts_with(counts[c], 50, c + 3, f ? FS_FORMAT_JSON : FS_FORMAT_MSGPACK);
                o.malformed_ppm = ppm;
                recs r = gen_decode(&o);
                assert_int_equal(r.n, counts[c]);
                free(r.v);
            }
        }
    }
}

/* start_ts + floor(i * 1000 / rate), computed exactly for an integer rate. */
static int64_t nominal(int64_t start, uint64_t i, uint64_t rate)
{
    return start + (int64_t)(i * 1000 / rate);
}

static void test_timestamps_in_order(void **state)
{
    (void)state;
    static const uint64_t rates[] = {1, 3, 1000, 7000};
    for (size_t k = 0; k < sizeof rates / sizeof rates[0]; k++) {
        fs_gen_opts o = opts_with(20000, 500, 11, k % 2 ? FS_FORMAT_JSON : FS_FORMAT_MSGPACK);
        o.rate = (double)rates[k];
        o.start_ts = 1600000000123;
        recs r = gen_decode(&o);
        assert_int_equal(r.n, 20000);
        for (size_t i = 0; i < r.n; i++) {
            assert_int_equal(r.v[i].ts, nominal(o.start_ts, i, rates[k]));
            if (i > 0)
                assert_true(r.v[i].ts >= r.v[i - 1].ts);
        }
        free(r.v);
    }
}

static void test_timestamps_with_disorder(void **state)
{
    (void)state;
    static const int64_t disorder[] = {1, 250, 5000, 60000};
    for (size_t k = 0; k < sizeof disorder / sizeof disorder[0]; k++) {
        fs_gen_opts o = opts_with(20000, 500, 12, k % 2 ? FS_FORMAT_MSGPACK : FS_FORMAT_JSON);
        o.rate = 200;
        o.disorder_ms = disorder[k];
        recs r = gen_decode(&o);
        assert_int_equal(r.n, 20000);
        size_t inversions = 0;
        int64_t deepest = 0;
        for (size_t i = 0; i < r.n; i++) {
            int64_t nom = nominal(o.start_ts, i, 200), ts = r.v[i].ts;
            assert_in_range(ts, nom - o.disorder_ms, nom);
            if (nom - ts > deepest)
                deepest = nom - ts;
            inversions += i > 0 && ts < r.v[i - 1].ts;
        }
        /* the disorder is really there and spans its whole range; below one
         * step (5 ms at 200/s) it cannot reorder anything */
        assert_in_range(deepest, o.disorder_ms - o.disorder_ms / 100, o.disorder_ms);
        if (o.disorder_ms < 5)
            assert_int_equal(inversions, 0);
        else
            assert_true(inversions > r.n / 10);
        free(r.v);
    }
}

static bool in_list(const char *s, char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, list[i]))
            return true;
    return false;
}

static int find_or_add(char (*names)[FS_MAX_LABEL + 1], int *n, const char *s)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp(names[i], s))
            return i;
    assert_true(*n < 64);
    strcpy(names[*n], s);
    return (*n)++;
}

static void test_covers_default_config(void **state)
{
    (void)state;
    char path[1024], err[512];
    const char *dir = getenv("FS_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/configs/default.yaml", dir ? dir : ".");
    fs_config *cfg = fs_config_load(path, err, sizeof err);
    if (cfg == NULL)
        fail_msg("%s", err);

    fs_gen_opts o = opts_with(100000, 5000, 1, FS_FORMAT_MSGPACK);
    recs r = gen_decode(&o);
    assert_int_equal(r.n, 100000);
    char channels[64][FS_MAX_LABEL + 1], events[64][FS_MAX_LABEL + 1];
    int n_channels = 0, n_events = 0, b2b = 0, b2c = 0;
    for (size_t i = 0; i < r.n; i++) {
        const rec *x = &r.v[i];
        assert_int_equal(x->reason, FS_OK);
        find_or_add(channels, &n_channels, x->channel);
        find_or_add(events, &n_events, x->event);
        /* a customer's segment is fixed and shows in its id */
        if (!strcmp(x->segment, "b2b")) {
            b2b++;
            assert_memory_equal(x->customer_id, "acct-", 5);
        } else {
            assert_string_equal(x->segment, "b2c");
            b2c++;
            assert_int_equal(x->customer_id[0], 'c');
        }
        assert_true(x->value >= 0);
    }
    assert_true(n_channels >= 6);
    assert_true(b2b > 10000 && b2c > 10000);

    char *seen[64];
    for (int i = 0; i < n_events; i++)
        seen[i] = events[i];
    for (size_t f = 0; f < cfg->n_funnels; f++) {
        const fs_funnel_cfg *fc = &cfg->funnels[f];
        for (size_t s = 0; s < fc->n_stages; s++) {
            const fs_stage_cfg *st = &fc->stages[s];
            for (size_t e = 0; e < st->n_events; e++)
                if (!in_list(st->events[e], seen, (size_t)n_events))
                    fail_msg("event %s of stage %s of funnel %s never generated", st->events[e],
                             st->name, fc->name);
        }
        for (size_t e = 0; e < fc->n_exclude; e++)
            if (!in_list(fc->exclude[e], seen, (size_t)n_events))
                fail_msg("exclude event %s of funnel %s never generated", fc->exclude[e], fc->name);
    }
    free(r.v);
    fs_config_free(cfg);
}

/* ---- event types of the bundled configs, read as text -------------------- */

/* Appends the names of a flow list "[a, b]" at p to names. */
static void add_flow_list(const char *p, char (*names)[FS_MAX_LABEL + 1], int *n)
{
    const char *end = strchr(p, ']');
    assert_non_null(end);
    for (p++; p < end;) {
        p += strspn(p, " ,");
        size_t len = strcspn(p, " ,]");
        if (len == 0)
            break;
        char name[FS_MAX_LABEL + 1];
        assert_true(len <= FS_MAX_LABEL);
        memcpy(name, p, len);
        name[len] = '\0';
        find_or_add(names, n, name);
        p += len;
    }
}

/* The event types of every `events:` and `exclude:` list in the YAML file at
 * path, flow ("events: [a, b]") or block ("exclude:" then "- a" lines): the
 * forms the bundled configs use. */
static void config_event_types(const char *path, char (*names)[FS_MAX_LABEL + 1], int *n)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    char line[1024];
    bool in_block = false;
    while (fgets(line, sizeof line, f)) {
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        const char *key = strstr(line, "events:");
        if (!key)
            key = strstr(line, "exclude:");
        if (key) {
            const char *bracket = strchr(key, '[');
            in_block = bracket == NULL;
            if (bracket)
                add_flow_list(bracket, names, n);
            continue;
        }
        char item[FS_MAX_LABEL + 1];
        if (in_block && sscanf(line, " - %64[A-Za-z0-9_.-]", item) == 1)
            find_or_add(names, n, item);
        else
            in_block = false;
    }
    fclose(f);
}

static void test_covers_every_bundled_config(void **state)
{
    (void)state;
    char dir[1024];
    const char *src = getenv("FS_SOURCE_DIR");
    snprintf(dir, sizeof dir, "%s/configs", src ? src : ".");
    fs_gen_opts o = opts_with(200000, 10000, 1, FS_FORMAT_MSGPACK);
    recs r = gen_decode(&o);
    static char seen[64][FS_MAX_LABEL + 1];
    int n_seen = 0;
    for (size_t i = 0; i < r.n; i++)
        find_or_add(seen, &n_seen, r.v[i].event);

    static const char *const configs[] = {"default.yaml",           "aida.yaml",
                                          "b2b_pipeline.yaml",      "product_strict.yaml",
                                          "checkout_optional.yaml", "onboarding_unordered.yaml",
                                          "b2b_velocity.yaml",      "campaigns.yaml"};
    for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
        char path[1100];
        static char wanted[64][FS_MAX_LABEL + 1];
        int n_wanted = 0;
        snprintf(path, sizeof path, "%s/%s", dir, configs[c]);
        config_event_types(path, wanted, &n_wanted);
        assert_true(n_wanted >= 4); /* the scan found the lists */
        for (int w = 0; w < n_wanted; w++) {
            bool found = false;
            for (int k = 0; k < n_seen && !found; k++)
                found = !strcmp(wanted[w], seen[k]);
            if (!found)
                fail_msg("event %s of %s never generated", wanted[w], configs[c]);
        }
    }
    free(r.v);
}

/* ---- campaigns ------------------------------------------------------------- */

/* Whether each line of a generated JSON stream has a campaign key, and
 * whether it is empty, read from the text: what the decoder makes of an
 * absent campaign ("" before issue 14, "unknown" since) does not tell. */
enum campaign_kind { CAMP_ABSENT, CAMP_EMPTY, CAMP_NAMED };

static enum campaign_kind *campaign_kinds(const blob *b, size_t n)
{
    enum campaign_kind *k = calloc(n, sizeof *k);
    assert_non_null(k);
    size_t i = 0;
    for (const char *p = b->data, *end = b->data + b->len; p < end && i < n; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        assert_non_null(nl);
        const char *key = memmem(p, (size_t)(nl - p), "\"campaign\":\"", 12);
        k[i] = !key ? CAMP_ABSENT : key[12] == '"' ? CAMP_EMPTY : CAMP_NAMED;
        p = nl + 1;
    }
    assert_int_equal(i, n);
    return k;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The number of a generated customer id ("c17", "acct-17"). */
static size_t customer_index(const char *id)
{
    return (size_t)strtoul(id + (id[0] == 'a' ? 5 : 1), NULL, 10);
}

static const char *const all_channels[] = {"search", "social", "email", "display", "referral",
                                           "direct", "store",  "app",   "partner"};
#define N_ALL_CHANNELS 9

static void test_campaigns(void **state)
{
    (void)state;
    const size_t n = 300000, customers = 20000;
    fs_gen_opts o = opts_with(n, customers, 3, FS_FORMAT_JSON);
    blob b = gen(&o);
    recs r = decode_all(&b, o.format);
    assert_int_equal(r.n, n);
    enum campaign_kind *kind = campaign_kinds(&b, n);

    /* names: "<channel>-<theme>-<nn>" of the record's own channel */
    const char **named = malloc(n * sizeof *named);
    assert_non_null(named);
    size_t n_named = 0, absent = 0, empty = 0;
    for (size_t i = 0; i < n; i++) {
        const rec *x = &r.v[i];
        assert_int_equal(x->reason, FS_OK);
        if (kind[i] == CAMP_EMPTY) {
            assert_string_equal(x->campaign, "");
            empty++;
            continue;
        }
        if (kind[i] == CAMP_ABSENT) {
            if (strcmp(x->campaign, "") && strcmp(x->campaign, "unknown"))
                fail_msg("record %zu: no campaign key, decoded as '%s'", i, x->campaign);
            absent++;
            continue;
        }
        size_t cl = strlen(x->channel), len = strlen(x->campaign);
        if (strncmp(x->campaign, x->channel, cl) || x->campaign[cl] != '-' || len < cl + 5 ||
            x->campaign[len - 3] != '-' || !strchr("0123456789", x->campaign[len - 2]) ||
            !strchr("0123456789", x->campaign[len - 1]))
            fail_msg("record %zu: campaign '%s' on channel %s", i, x->campaign, x->channel);
        named[n_named++] = x->campaign;
    }
    /* some records without a campaign key, a very few with an empty one */
    assert_in_range(absent, n / 10, n * 4 / 10);
    assert_in_range(empty, 1, n / 1000);

    /* per channel: tens of campaigns; overall: a long tail */
    qsort(named, n_named, sizeof *named, cmp_str);
    size_t *counts = calloc(n_named, sizeof *counts), n_distinct = 0;
    int per_channel[N_ALL_CHANNELS] = {0};
    size_t top_per_channel[N_ALL_CHANNELS] = {0}, named_per_channel[N_ALL_CHANNELS] = {0};
    assert_non_null(counts);
    for (size_t i = 0; i < n_named; i++) {
        if (i > 0 && !strcmp(named[i], named[i - 1])) {
            counts[n_distinct - 1]++;
            continue;
        }
        counts[n_distinct++] = 1;
    }
    for (size_t i = 0, d = 0; i < n_named; d++) {
        size_t len = strcspn(named[i], "-");
        for (int ch = 0; ch < N_ALL_CHANNELS; ch++) {
            if (strlen(all_channels[ch]) != len || strncmp(named[i], all_channels[ch], len))
                continue;
            per_channel[ch]++;
            named_per_channel[ch] += counts[d];
            if (counts[d] > top_per_channel[ch])
                top_per_channel[ch] = counts[d];
        }
        i += counts[d];
    }
    for (int ch = 0; ch < N_ALL_CHANNELS; ch++) {
        if (per_channel[ch] < 20 || per_channel[ch] > 60)
            fail_msg("channel %s: %d campaigns", all_channels[ch], per_channel[ch]);
        /* its most popular campaign carries a large share of its records */
        assert_true(top_per_channel[ch] * 5 > named_per_channel[ch]);
    }
    size_t sorted[1024];
    assert_true(n_distinct >= 250 && n_distinct <= 1024);
    memcpy(sorted, counts, n_distinct * sizeof *counts);
    for (size_t i = 1; i < n_distinct; i++) /* descending insertion sort */
        for (size_t j = i; j > 0 && sorted[j] > sorted[j - 1]; j--) {
            size_t t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    size_t top10 = 0, rare = 0;
    for (size_t i = 0; i < n_distinct; i++) {
        top10 += i < 10 ? sorted[i] : 0;
        rare += sorted[i] * 1000 < n_named; /* under 0.1 % each */
    }
    assert_true(top10 * 100 > n_named * 25); /* the head: > 25 % of it all */
    assert_true(top10 * 100 < n_named * 70); /* ... but not everything */
    assert_true(rare * 2 > n_distinct);      /* the tail: most campaigns are rare */

    /* sticky: a customer's consecutive records on one channel mostly keep
     * their campaign */
    int *last = malloc(customers * sizeof *last);
    assert_non_null(last);
    for (size_t c = 0; c < customers; c++)
        last[c] = -1;
    size_t same = 0, pairs = 0;
    for (size_t i = 0; i < n; i++) {
        size_t c = customer_index(r.v[i].customer_id);
        assert_true(c < customers);
        if (kind[i] != CAMP_NAMED)
            continue;
        if (last[c] >= 0 && !strcmp(r.v[last[c]].channel, r.v[i].channel)) {
            pairs++;
            same += !strcmp(r.v[last[c]].campaign, r.v[i].campaign);
        }
        last[c] = (int)i;
    }
    assert_true(pairs > n / 10);
    assert_true(same * 10 > pairs * 7);
    assert_true(same < pairs); /* ... but not always */

    free(last);
    free(counts);
    free(named);
    free(kind);
    free(r.v);
    free(b.data);
}

/* ---- side journeys ------------------------------------------------------- */

static void test_coupon_optional_step(void **state)
{
    (void)state;
    const size_t customers = 20000;
    fs_gen_opts o = opts_with(300000, customers, 4, FS_FORMAT_MSGPACK);
    recs r = gen_decode(&o);
    /* per customer: 0 nothing yet, 1 cart, 2 cart then coupon */
    unsigned char *at = calloc(customers, 1);
    assert_non_null(at);
    size_t with_coupon = 0, without = 0, coupons = 0;
    for (size_t i = 0; i < r.n; i++) {
        const rec *x = &r.v[i];
        size_t c = customer_index(x->customer_id);
        assert_true(c < customers);
        if (!strcmp(x->event, "add_to_cart")) {
            at[c] = 1;
        } else if (!strcmp(x->event, "coupon_applied")) {
            assert_string_equal(x->segment, "b2c");
            if (at[c] == 0)
                fail_msg("record %zu: coupon_applied of %s without a cart", i, x->customer_id);
            at[c] = 2;
            coupons++;
        } else if (!strcmp(x->event, "checkout_start") && at[c]) {
            with_coupon += at[c] == 2;
            without += at[c] == 1;
            at[c] = 0;
        }
    }
    /* both ways occur, and most shoppers skip the optional step */
    assert_true(with_coupon > 1000);
    assert_true(without > 2 * with_coupon);
    assert_true(coupons >= with_coupon);
    free(at);
    free(r.v);
}

static const char *const onboard_steps[] = {"signup", "profile_complete", "invite_sent",
                                            "integration_connected", "first_report"};

static void test_onboarding_any_order(void **state)
{
    (void)state;
    const size_t customers = 20000;
    fs_gen_opts o = opts_with(400000, customers, 5, FS_FORMAT_MSGPACK);
    recs r = gen_decode(&o);
    unsigned char *done = calloc(customers, 1);
    /* order[c]: the steps in the order done, 3 bits each (step + 1) */
    uint16_t *order = calloc(customers, sizeof *order);
    assert_non_null(done);
    assert_non_null(order);
    size_t first[5] = {0};
    for (size_t i = 0; i < r.n; i++) {
        const rec *x = &r.v[i];
        int s = -1;
        for (int k = 0; k < 5; k++)
            if (!strcmp(x->event, onboard_steps[k]))
                s = k;
        if (s < 0)
            continue;
        size_t c = customer_index(x->customer_id);
        assert_true(c < customers);
        assert_string_equal(x->segment, "b2b");
        if (done[c] & (1u << s))
            fail_msg("record %zu: %s onboards step %s twice", i, x->customer_id, x->event);
        if (!done[c])
            first[s]++;
        order[c] = (uint16_t)(order[c] << 3 | (unsigned)(s + 1));
        done[c] |= (unsigned char)(1u << s);
    }
    size_t onboarders = 0, complete = 0, partial = 0, n_orders = 0;
    uint16_t orders[120];
    for (size_t c = 0; c < customers; c++) {
        if (!done[c])
            continue;
        onboarders++;
        if (done[c] != 0x1f) {
            partial++;
            continue;
        }
        complete++;
        bool known = false;
        for (size_t k = 0; k < n_orders && !known; k++)
            known = orders[k] == order[c];
        if (!known) {
            assert_true(n_orders < 120);
            orders[n_orders++] = order[c];
        }
    }
    assert_true(onboarders > 1000);
    /* any step may come first: each does for a good share of accounts */
    for (int k = 0; k < 5; k++)
        assert_true(first[k] * 10 > onboarders);
    /* some finish, some leave steps out, and the finishers' orders vary */
    assert_true(complete * 10 > onboarders);
    assert_true(partial * 10 > onboarders);
    assert_true(n_orders >= 40);
    free(order);
    free(done);
    free(r.v);
}

static void test_bad_options_and_write_error(void **state)
{
    (void)state;
    fs_gen_opts o = opts_with(10, 0, 1, FS_FORMAT_MSGPACK);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    errno = 0;
    assert_int_equal(fs_generate(&o, f), -1); /* no customers */
    assert_int_equal(errno, EINVAL);
    o.customers = 10;
    o.rate = 0;
    assert_int_equal(fs_generate(&o, f), -1);
    assert_int_equal(errno, EINVAL);
    fclose(f);
    free(buf);

    FILE *full = fopen("/dev/full", "w");
    if (full == NULL)
        return; /* no /dev/full here: nothing more to check */
    o = opts_with(100000, 100, 1, FS_FORMAT_JSON);
    assert_int_equal(fs_generate(&o, full), -1);
    assert_int_equal(errno, ENOSPC);
    fclose(full);
}

/* ---- the record-at-a-time API ------------------------------------------------ */

/* The option sets of the stream tests: every one that changes how the random
 * stream is consumed (disorder, malformed records) or what a record looks
 * like (rate, start). */
static fs_gen_opts stream_case(int k, fs_format fmt)
{
    fs_gen_opts o = opts_with(20000, 600, 30 + (uint64_t)k, fmt);
    switch (k) {
    case 0:
        break;
    case 1:
        o.disorder_ms = 3000;
        break;
    case 2:
        o.malformed_ppm = 150000;
        break;
    default:
        o.disorder_ms = 777;
        o.malformed_ppm = 50000;
        o.rate = 123.5;
        o.start_ts = -10000;
        break;
    }
    return o;
}
#define N_STREAM_CASES 4

/* The records of fs_gen_next(ts_override), concatenated as fs_generate
 * writes them (JSON: '\n' after each). Checks the end of the stream. */
static blob stream(const fs_gen_opts *opts, int64_t ts_override)
{
    blob b = {NULL, 0};
    FILE *f = open_memstream(&b.data, &b.len);
    assert_non_null(f);
    fs_gen *g = fs_gen_new(opts);
    assert_non_null(g);
    const char *v, *k;
    size_t vl, kl;
    for (uint64_t i = 0; i < opts->events; i++) {
        assert_int_equal(fs_gen_next(g, ts_override, &v, &vl, &k, &kl), 0);
        assert_true(vl > 0);
        if (opts->format == FS_FORMAT_JSON) {
            assert_null(memchr(v, '\n', vl));
            fwrite(v, 1, vl, f);
            fputc('\n', f);
        } else {
            fwrite(v, 1, vl, f);
        }
    }
    for (int i = 0; i < 3; i++) { /* the end stays the end */
        assert_int_equal(fs_gen_next(g, ts_override, &v, &vl, &k, &kl), 1);
        assert_int_equal(vl, 0);
    }
    fs_gen_free(g);
    assert_int_equal(fclose(f), 0);
    return b;
}

static void test_stream_equals_generate(void **state)
{
    (void)state;
    for (int f = 0; f < 2; f++) {
        for (int k = 0; k < N_STREAM_CASES; k++) {
            fs_gen_opts o = stream_case(k, f ? FS_FORMAT_JSON : FS_FORMAT_MSGPACK);
            blob want = gen(&o), got = stream(&o, INT64_MIN);
            assert_true(want.len > o.events * 40);
            assert_int_equal(got.len, want.len);
            assert_memory_equal(got.data, want.data, want.len);
            free(want.data);
            free(got.data);
        }
    }
}

static void test_stream_unbounded(void **state)
{
    (void)state;
    for (int f = 0; f < 2; f++) {
        fs_gen_opts o = stream_case(3, f ? FS_FORMAT_JSON : FS_FORMAT_MSGPACK);
        blob want = gen(&o); /* the first o.events records */
        o.events = 0;        /* no end */
        fs_gen *g = fs_gen_new(&o);
        assert_non_null(g);
        size_t off = 0;
        const char *v, *k;
        size_t vl, kl;
        for (uint64_t i = 0; i < 3 * 20000; i++) {
            assert_int_equal(fs_gen_next(g, INT64_MIN, &v, &vl, &k, &kl), 0);
            if (off < want.len) {
                assert_true(off + vl <= want.len);
                assert_memory_equal(v, want.data + off, vl);
                off += vl + (f ? 1 : 0);
            }
        }
        assert_int_equal(off, want.len);
        fs_gen_free(g);
        free(want.data);
    }
}

/* The same records, decoded, with ts replaced: nothing else changes. */
static void test_stream_ts_override(void **state)
{
    (void)state;
    const int64_t wall = 1764000000123;
    for (int f = 0; f < 2; f++) {
        for (int k = 0; k < N_STREAM_CASES; k++) {
            fs_gen_opts o = stream_case(k, f ? FS_FORMAT_JSON : FS_FORMAT_MSGPACK);
            blob a = stream(&o, INT64_MIN), b = stream(&o, wall);
            recs ra = decode_all(&a, o.format), rb = decode_all(&b, o.format);
            assert_int_equal(ra.n, o.events);
            assert_int_equal(rb.n, o.events);
            assert_int_equal(ra.rejected, rb.rejected);
            for (size_t i = 0; i < ra.n; i++) {
                assert_int_equal(ra.v[i].reason, rb.v[i].reason);
                if (rb.v[i].reason != FS_OK)
                    continue;
                assert_int_equal(rb.v[i].ts, wall);
                assert_true(ra.v[i].ts != wall);
                rb.v[i].ts = ra.v[i].ts;
                assert_same_event(&ra.v[i], &rb.v[i], i);
            }
            free(ra.v);
            free(rb.v);
            free(a.data);
            free(b.data);
        }
    }
}

/* Rejections of records that carry no customer id at all. */
static bool has_no_customer_id(fs_reject r)
{
    return r == FS_REJECT_MISSING_CUSTOMER_ID || r == FS_REJECT_NOT_A_MAP ||
           r == FS_REJECT_BAD_START_BYTE || r == FS_REJECT_MALFORMED;
}

static void test_stream_keys(void **state)
{
    (void)state;
    fs_decoder *dec = fs_decoder_new();
    assert_non_null(dec);
    char scratch[1024];
    for (int f = 0; f < 2; f++) {
        fs_gen_opts o = stream_case(3, f ? FS_FORMAT_JSON : FS_FORMAT_MSGPACK);
        fs_gen *g = fs_gen_new(&o);
        assert_non_null(g);
        const char *v, *k;
        size_t vl, kl, valid = 0, keyless = 0;
        while (fs_gen_next(g, INT64_MIN, &v, &vl, &k, &kl) == 0) {
            fs_event ev;
            size_t used = 0;
            assert_true(vl <= sizeof scratch);
            fs_reject r = fs_decode(dec, o.format, v, vl, &ev, scratch, &used);
            if (r == FS_OK) {
                valid++;
                assert_non_null(k);
                assert_int_equal(kl, ev.customer_id.len);
                assert_memory_equal(k, ev.customer_id.ptr, kl);
            } else if (has_no_customer_id(r)) {
                keyless++;
                assert_null(k);
                assert_int_equal(kl, 0);
            } else { /* broken elsewhere: the key is still the id in the record */
                assert_non_null(k);
                assert_true(kl > 0);
                assert_non_null(memmem(v, vl, k, kl));
            }
        }
        assert_true(valid > o.events * 9 / 10);
        assert_true(keyless > 100); /* the NULL-key branch was exercised */
        fs_gen_free(g);
    }
    fs_decoder_free(dec);
}

static void test_stream_bad_options(void **state)
{
    (void)state;
    fs_gen_opts o = opts_with(10, 0, 1, FS_FORMAT_MSGPACK);
    errno = 0;
    assert_null(fs_gen_new(&o));
    assert_int_equal(errno, EINVAL);
    o.customers = 10;
    o.rate = -1;
    errno = 0;
    assert_null(fs_gen_new(&o));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(fs_gen_new(NULL));
    assert_int_equal(errno, EINVAL);
    fs_gen_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_options_same_bytes),
        cmocka_unit_test(test_different_seed_differs),
        cmocka_unit_test(test_formats_same_events),
        cmocka_unit_test(test_no_malformed_all_valid),
        cmocka_unit_test(test_malformed_band_and_formats_agree),
        cmocka_unit_test(test_event_count_exact),
        cmocka_unit_test(test_timestamps_in_order),
        cmocka_unit_test(test_timestamps_with_disorder),
        cmocka_unit_test(test_covers_default_config),
        cmocka_unit_test(test_covers_every_bundled_config),
        cmocka_unit_test(test_campaigns),
        cmocka_unit_test(test_coupon_optional_step),
        cmocka_unit_test(test_onboarding_any_order),
        cmocka_unit_test(test_bad_options_and_write_error),
        cmocka_unit_test(test_stream_equals_generate),
        cmocka_unit_test(test_stream_unbounded),
        cmocka_unit_test(test_stream_ts_override),
        cmocka_unit_test(test_stream_keys),
        cmocka_unit_test(test_stream_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
