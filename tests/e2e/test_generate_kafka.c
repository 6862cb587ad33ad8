/* test_generate_kafka.c -- `funnelstream generate --brokers` against the dev broker.
 *
 * Starts `funnelstream dev-broker --partitions 3`, lets `generate` produce to
 * it, then reads every partition back from the beginning with librdkafka
 * (enable.partition.eof: done when all three partitions report their end)
 * and holds the messages against `generate --output FILE` of the same
 * options, framed with frame.h and decoded with decode.h:
 *   - every record arrives, exactly once: the multiset of values is the file's
 *   - each message's key is the customer_id inside it
 *   - all messages of a key are in one partition, in the file's order
 * --realtime is checked the same way, except that ts must be the wall clock
 * at production (between the test's clock readings before and after), and
 * everything else must still be the file's records: bounded by --events, and
 * unbounded until SIGTERM, after which generate flushes and exits 0 having
 * delivered exactly what it says it produced.
 *
 * Deadlines in the client loops only turn a hang into a failure; nothing
 * waits on time to synchronise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "decode.h"
#include "e2e_util.h"
#include "frame.h"

#define PARTITIONS  3
#define TOPIC       "touchpoints"
#define DEADLINE_MS 60000
#define POLL_MS     100

/* ---- records, from Kafka or from a file ------------------------------------ */

/* One record reduced to what the checks compare. */
typedef struct item {
    char *key;  /* Kafka key / the file record's customer_id, NUL-terminated */
    char *body; /* what must match: the raw value, or its fields without ts */
    size_t body_len;
    int64_t ts;
    int32_t partition; /* -1 for file records */
} item;

typedef struct items {
    item *v;
    size_t n, cap;
} items;

static item *items_push(items *s)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        assert_non_null(s->v);
    }
    item *it = &s->v[s->n++];
    memset(it, 0, sizeof *it);
    return it;
}

static void items_free(items *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].key);
        free(s->v[i].body);
    }
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

static char *dup_bytes(const void *p, size_t n)
{
    char *d = malloc(n + 1);
    assert_non_null(d);
    memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

static fs_decoder *dec;
static char scratch[4096];

/* Decodes value (must be a valid event) into it: ts, and body = the raw
 * value, or (without_ts) every field but ts. Returns the customer_id copy. */
static char *decode_into(item *it, fs_format fmt, const char *value, size_t len, bool without_ts)
{
    fs_event ev;
    size_t used = 0;
    assert_true(len <= sizeof scratch);
    fs_reject r = fs_decode(dec, fmt, value, len, &ev, scratch, &used);
    if (r != FS_OK)
        fail_msg("record rejected (%s): %.*s", fs_reject_name(r), (int)len, value);
    it->ts = ev.ts;
    if (!without_ts) {
        it->body = dup_bytes(value, len);
        it->body_len = len;
    } else {
        char buf[1024];
        int n = snprintf(buf, sizeof buf, "%.*s|%.*s|%.*s|%.*s|%.*s|%.17g", (int)ev.customer_id.len,
                         ev.customer_id.ptr, (int)ev.event.len, ev.event.ptr, (int)ev.channel.len,
                         ev.channel.ptr, (int)ev.campaign.len, ev.campaign.ptr, (int)ev.segment.len,
                         ev.segment.ptr, ev.value);
        it->body = dup_bytes(buf, (size_t)n);
        it->body_len = (size_t)n;
    }
    return dup_bytes(ev.customer_id.ptr, ev.customer_id.len);
}

/* The records of a generated file, split with the replay framing. */
static void read_generated(const char *path, fs_format fmt, bool without_ts, items *out)
{
    size_t len;
    char *data = fs_e2e_read_file(path, &len);
    assert_non_null(data);
    size_t off = 0;
    while (off < len) {
        size_t msg_len = 0, consumed = 0;
        if (fmt == FS_FORMAT_MSGPACK) {
            assert_int_equal(fs_frame_msgpack(data + off, len - off, &msg_len), FS_FRAME_OK);
            consumed = msg_len;
        } else {
            assert_int_equal(fs_frame_jsonl(data + off, len - off, &msg_len, &consumed),
                             FS_FRAME_OK); /* generate ends every line */
        }
        item *it = items_push(out);
        it->partition = -1;
        it->key = decode_into(it, fmt, data + off, msg_len, without_ts);
        off += consumed;
    }
    free(data);
}

/* Runs `generate` to a file with args (the options the Kafka run had). */
static void generate_file(const char *path, const char *const *args)
{
    const char *argv[32] = {"generate"};
    int n = 1;
    for (; *args && n < 29; args++)
        argv[n++] = *args;
    argv[n++] = "--output";
    argv[n++] = path;
    argv[n] = NULL;
    fs_e2e_run r;
    fs_e2e_exec(&r, NULL, 0, argv);
    if (r.status != 0)
        fail_msg("generate --output: exit %d\n%s", r.status, r.err);
    fs_e2e_run_free(&r);
}

/* ---- consuming ------------------------------------------------------------- */

static rd_kafka_t *consumer_new(const char *bootstrap)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "test_generate_kafka", err, sizeof err),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk)
        fail_msg("consumer: %s", err);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(PARTITIONS);
    for (int p = 0; p < PARTITIONS; p++)
        rd_kafka_topic_partition_list_add(parts, TOPIC, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    return rk;
}

static void consumer_free(rd_kafka_t *rk)
{
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

/* Reads every partition from the beginning until all of them report EOF.
 * Checks each key is the customer_id in its value. */
static void consume_all(const char *bootstrap, fs_format fmt, bool without_ts, items *out)
{
    rd_kafka_t *rk = consumer_new(bootstrap);
    bool eof[PARTITIONS] = {false};
    int n_eof = 0;
    for (int idle = 0; n_eof < PARTITIONS;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, POLL_MS);
        if (!m) {
            if (++idle > DEADLINE_MS / POLL_MS)
                fail_msg("only %d of %d partitions reached their end", n_eof, PARTITIONS);
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            assert_in_range(m->partition, 0, PARTITIONS - 1);
            n_eof += !eof[m->partition];
            eof[m->partition] = true;
        } else if (m->err) {
            fail_msg("consume: %s", rd_kafka_message_errstr(m));
        } else {
            item *it = items_push(out);
            it->partition = m->partition;
            char *cid = decode_into(it, fmt, m->payload, m->len, without_ts);
            assert_non_null(m->key);
            it->key = dup_bytes(m->key, m->key_len);
            if (strlen(it->key) != m->key_len || strcmp(it->key, cid) != 0)
                fail_msg("message key '%s' but customer_id '%s'", it->key, cid);
            free(cid);
        }
        rd_kafka_message_destroy(m);
    }
    consumer_free(rk);
}

/* Polls until one message of TOPIC has arrived: the producer is running. */
static void wait_first_message(const char *bootstrap)
{
    rd_kafka_t *rk = consumer_new(bootstrap);
    bool got = false;
    for (int polls = 0; !got && polls <= DEADLINE_MS / POLL_MS; polls++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, POLL_MS);
        if (m) {
            got = !m->err;
            rd_kafka_message_destroy(m);
        }
    }
    consumer_free(rk);
    assert_true(got);
}

/* ---- checks ------------------------------------------------------------------ */

static int cmp_body(const void *a, const void *b)
{
    const item *x = a, *y = b;
    if (x->body_len != y->body_len)
        return x->body_len < y->body_len ? -1 : 1;
    return memcmp(x->body, y->body, x->body_len);
}

static int cmp_key(const void *a, const void *b)
{
    const item *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

/* Same records, each exactly once (order aside). */
static void assert_same_multiset(const items *got, const items *want)
{
    assert_int_equal(got->n, want->n);
    item *g = malloc(got->n * sizeof *g), *w = malloc(want->n * sizeof *w);
    assert_non_null(g);
    assert_non_null(w);
    memcpy(g, got->v, got->n * sizeof *g);
    memcpy(w, want->v, want->n * sizeof *w);
    qsort(g, got->n, sizeof *g, cmp_body);
    qsort(w, want->n, sizeof *w, cmp_body);
    for (size_t i = 0; i < got->n; i++)
        if (cmp_body(&g[i], &w[i]) != 0)
            fail_msg("record %zu of the sorted lists differs:\n  kafka %s\n  file  %s", i,
                     g[i].body, w[i].body);
    free(g);
    free(w);
}

/* All messages of a key in one partition (sorting by key, then partition,
 * puts a split key's partitions next to each other). */
static void assert_key_in_one_partition(const items *got)
{
    item *s = malloc(got->n * sizeof *s);
    assert_non_null(s);
    memcpy(s, got->v, got->n * sizeof *s);
    qsort(s, got->n, sizeof *s, cmp_key);
    for (size_t i = 1; i < got->n; i++)
        if (!strcmp(s[i].key, s[i - 1].key) && s[i].partition != s[i - 1].partition)
            fail_msg("key %s is in partitions %d and %d", s[i].key, (int)s[i - 1].partition,
                     (int)s[i].partition);
    free(s);
}

/* Each key's records in the file's order (a key being in one partition,
 * consumption order is partition order for it). */
static void assert_per_key_order(const items *got, const items *want)
{
    for (size_t k = 0; k < want->n; k++) {
        const char *key = want->v[k].key;
        bool first = true; /* check each key once: at its first file record */
        for (size_t j = 0; j < k && first; j++)
            first = strcmp(want->v[j].key, key) != 0;
        if (!first)
            continue;
        size_t gi = 0, wi = 0, nth = 0;
        for (;; nth++) {
            while (gi < got->n && strcmp(got->v[gi].key, key))
                gi++;
            while (wi < want->n && strcmp(want->v[wi].key, key))
                wi++;
            if (gi == got->n || wi == want->n)
                break;
            if (cmp_body(&got->v[gi], &want->v[wi]) != 0)
                fail_msg("key %s, record %zu: kafka %s, file %s", key, nth, got->v[gi].body,
                         want->v[wi].body);
            gi++;
            wi++;
        }
        assert_true(gi == got->n && wi == want->n); /* same count for the key */
    }
}

static void assert_all_checks(const items *got, const items *want)
{
    assert_same_multiset(got, want);
    assert_key_in_one_partition(got);
    assert_per_key_order(got, want);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void assert_ts_between(const items *got, int64_t lo, int64_t hi)
{
    for (size_t i = 0; i < got->n; i++)
        if (got->v[i].ts < lo || got->v[i].ts > hi)
            fail_msg("message %zu: ts %" PRId64 " not in the run's [%" PRId64 ", %" PRId64 "]", i,
                     got->v[i].ts, lo, hi);
}

/* The number after "produced=" in generate's summary log line. */
static uint64_t produced_count(const char *err)
{
    const char *p = strstr(err, "produced=");
    if (!p)
        fail_msg("no summary in stderr:\n%s", err);
    return strtoull(p + strlen("produced="), NULL, 10);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_produce_matches_file(void **state)
{
    (void)state;
    static const char *const opts[] = {"--events", "2000", "--customers", "100",
                                       "--seed",   "7",    NULL};
    fs_e2e_broker b;
    fs_e2e_broker_start(&b, (const char *const[]){"--partitions", "3", NULL});
    fs_e2e_run r;
    FS_E2E_EXEC(&r, NULL, 0, "generate", opts[0], opts[1], opts[2], opts[3], opts[4], opts[5],
                "--brokers", b.bootstrap, "--topic", TOPIC);
    if (r.status != 0)
        fail_msg("generate --brokers: exit %d\n%s", r.status, r.err);
    assert_contains(r.err, "produced=2000 delivered=2000 failed=0", "summary");
    fs_e2e_run_free(&r);

    items got = {0}, want = {0};
    consume_all(b.bootstrap, FS_FORMAT_MSGPACK, false, &got);
    assert_int_equal(fs_e2e_broker_stop(&b, SIGTERM), 0);
    char *path = fs_e2e_write_file(".msgpack", "", 0);
    generate_file(path, opts);
    read_generated(path, FS_FORMAT_MSGPACK, false, &want);
    assert_int_equal(want.n, 2000);
    assert_int_equal(got.n, 2000);
    assert_all_checks(&got, &want);
    /* the customers spread over the partitions (the key is what routes) */
    size_t per[PARTITIONS] = {0};
    for (size_t i = 0; i < got.n; i++)
        per[got.v[i].partition]++;
    for (int p = 0; p < PARTITIONS; p++)
        assert_true(per[p] > 0);
    items_free(&got);
    items_free(&want);
    free(path);
}

static void test_realtime_bounded_json(void **state)
{
    (void)state;
    static const char *const opts[] = {"--events", "300",      "--customers", "40", "--seed",
                                       "11",       "--format", "json",        NULL};
    fs_e2e_broker b;
    fs_e2e_broker_start(&b, (const char *const[]){"--partitions", "3", NULL});
    int64_t t0 = wall_ms();
    fs_e2e_run r;
    FS_E2E_EXEC(&r, NULL, 0, "generate", opts[0], opts[1], opts[2], opts[3], opts[4], opts[5],
                opts[6], opts[7], "--brokers", b.bootstrap, "--realtime", "--rate", "2000");
    int64_t t1 = wall_ms();
    if (r.status != 0)
        fail_msg("generate --realtime: exit %d\n%s", r.status, r.err);
    assert_int_equal(produced_count(r.err), 300);
    fs_e2e_run_free(&r);

    items got = {0}, want = {0};
    consume_all(b.bootstrap, FS_FORMAT_JSON, true, &got);
    assert_int_equal(fs_e2e_broker_stop(&b, SIGINT), 0);
    assert_int_equal(got.n, 300);
    assert_ts_between(&got, t0, t1);
    char *path = fs_e2e_write_file(".jsonl", "", 0);
    generate_file(path, opts);
    read_generated(path, FS_FORMAT_JSON, true, &want);
    assert_all_checks(&got, &want);
    items_free(&got);
    items_free(&want);
    free(path);
}

static void test_realtime_until_sigterm(void **state)
{
    (void)state;
    fs_e2e_broker b;
    fs_e2e_broker_start(&b, (const char *const[]){"--partitions", "3", NULL});
    int64_t t0 = wall_ms();
    fs_e2e_bg g;
    FS_E2E_BG_START(&g, "generate", "--events", "0", "--customers", "50", "--seed", "5",
                    "--brokers", b.bootstrap, "--realtime", "--rate", "500");
    wait_first_message(b.bootstrap);
    fs_e2e_run r;
    fs_e2e_bg_finish(&g, SIGTERM, &r);
    int64_t t1 = wall_ms();
    if (r.status != 0)
        fail_msg("generate --realtime --events 0: exit %d after SIGTERM\n%s", r.status, r.err);
    uint64_t n = produced_count(r.err);
    assert_true(n > 0);
    assert_contains(r.err, "failed=0 undelivered=0", "summary");

    /* everything it says it produced arrived: the flush after the signal */
    items got = {0}, want = {0};
    consume_all(b.bootstrap, FS_FORMAT_MSGPACK, true, &got);
    assert_int_equal(fs_e2e_broker_stop(&b, SIGTERM), 0);
    assert_int_equal(got.n, n);
    assert_ts_between(&got, t0, t1);
    char events[32];
    snprintf(events, sizeof events, "%" PRIu64, n);
    char *path = fs_e2e_write_file(".msgpack", "", 0);
    generate_file(
        path, (const char *const[]){"--events", events, "--customers", "50", "--seed", "5", NULL});
    read_generated(path, FS_FORMAT_MSGPACK, true, &want);
    assert_all_checks(&got, &want);
    fs_e2e_run_free(&r);
    items_free(&got);
    items_free(&want);
    free(path);
}

static void expect_usage_error(const char *const *args, const char *needle)
{
    fs_e2e_run r;
    fs_e2e_exec(&r, NULL, 0, args);
    if (r.status != 2)
        fail_msg("exit %d, want 2; stderr:\n%s", r.status, r.err);
    assert_contains(r.err, needle, "stderr");
    assert_string_equal(r.out, "");
    fs_e2e_run_free(&r);
}

static void test_bad_arguments(void **state)
{
    (void)state;
#define GEN "generate", "--events", "10", "--customers", "5"
    expect_usage_error(
        (const char *const[]){GEN, "--output", "x.msgpack", "--brokers", "localhost:9092", NULL},
        "--output and --brokers");
    expect_usage_error((const char *const[]){GEN, "--realtime", NULL}, "--realtime needs");
    expect_usage_error((const char *const[]){GEN, "--topic", "t", NULL}, "--topic needs");
    expect_usage_error((const char *const[]){GEN, "--brokers", "localhost:9092", "--realtime",
                                             "--disorder", "100", NULL},
                       "--disorder");
    expect_usage_error((const char *const[]){GEN, "--brokers", "", NULL}, "--brokers");
    expect_usage_error((const char *const[]){GEN, "stray", NULL}, "stray");
    expect_usage_error(
        (const char *const[]){"generate", "--events", "-1", "--customers", "5", NULL}, "--events");
#undef GEN
    fs_e2e_run r;
    FS_E2E_EXEC(&r, NULL, 0, "generate", "--help");
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "--brokers", "generate --help");
    assert_contains(r.out, "--realtime", "generate --help");
    fs_e2e_run_free(&r);
}

static int setup(void **state)
{
    (void)state;
    dec = fs_decoder_new();
    return dec ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    fs_decoder_free(dec);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_produce_matches_file),
        cmocka_unit_test(test_realtime_bounded_json),
        cmocka_unit_test(test_realtime_until_sigterm),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
