/* kafka_util.c -- the mock Kafka cluster and plain clients for the e2e tests
 * that run `funnelstream run` (see kafka_util.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "decode.h"
#include "e2e_util.h"
#include "frame.h"
#include "kafka_util.h"

rd_kafka_t *fs_kt_mock_rk;
rd_kafka_mock_cluster_t *fs_kt_mock;
const char *fs_kt_bootstrap;

/* ---- the broker and plain clients ---------------------------------------- */

int fs_kt_cluster_up(void **state)
{
    (void)state;
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
    fs_kt_mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    fs_kt_mock = fs_kt_mock_rk ? rd_kafka_mock_cluster_new(fs_kt_mock_rk, 1) : NULL;
    if (!fs_kt_mock)
        return -1;
    fs_kt_bootstrap = rd_kafka_mock_cluster_bootstraps(fs_kt_mock);
    return 0;
}

int fs_kt_cluster_down(void **state)
{
    (void)state;
    rd_kafka_mock_cluster_destroy(fs_kt_mock);
    rd_kafka_destroy(fs_kt_mock_rk);
    return 0;
}

/* Topics made so far and their partition counts: a stage's state topic
 * gets its input's count (the mock cluster cannot create topics on request). */
static struct {
    char name[64];
    int partitions;
} made[64];
static int n_made;

void fs_kt_topic(const char *name, int partitions)
{
    assert_int_equal(rd_kafka_mock_topic_create(fs_kt_mock, name, partitions, 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_true(n_made < 64);
    snprintf(made[n_made].name, sizeof made[n_made].name, "%s", name);
    made[n_made++].partitions = partitions;
}

static void fs_kt_state_topic_for(const char *group, const char *in)
{
    for (int i = 0; i < n_made; i++)
        if (!strcmp(made[i].name, in)) {
            char name[128];
            snprintf(name, sizeof name, "%s-state", group);
            rd_kafka_resp_err_t e =
                rd_kafka_mock_topic_create(fs_kt_mock, name, made[i].partitions, 1);
            assert_true(e == RD_KAFKA_RESP_ERR_NO_ERROR ||
                        e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS); /* a group used again */
            snprintf(name, sizeof name, "%s-partials", group);
            e = rd_kafka_mock_topic_create(fs_kt_mock, name, 1, 1);
            assert_true(e == RD_KAFKA_RESP_ERR_NO_ERROR ||
                        e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS);
            return;
        }
    fail_msg("no topic %s", in);
}

rd_kafka_t *fs_kt_client(rd_kafka_type_t type, const char *group)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", fs_kt_bootstrap, err, sizeof err);
    if (group) {
        rd_kafka_conf_set(conf, "group.id", group, err, sizeof err);
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
    }
    if (type == RD_KAFKA_CONSUMER)
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);
    assert_non_null(rk);
    return rk;
}

/* Waits for room when the producer's queue is full (slow sanitizer builds). */
void fs_kt_produce(rd_kafka_t *p, const char *t, const char *key, size_t key_len, const char *value,
                   size_t len)
{
    rd_kafka_resp_err_t err;
    while ((err = rd_kafka_producev(p, RD_KAFKA_V_TOPIC(t), RD_KAFKA_V_KEY(key, key_len),
                                    RD_KAFKA_V_VALUE((void *)value, len),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(p, 100); /* serves delivery reports, which frees room */
    assert_int_equal(err, RD_KAFKA_RESP_ERR_NO_ERROR);
}

void fs_kt_flush(rd_kafka_t *p)
{
    assert_int_equal(rd_kafka_flush(p, FS_KT_DEADLINE_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_outq_len(p), 0);
    rd_kafka_destroy(p);
}

/* Produces records [from, to) of a .msgpack replay file (every one: to =
 * SIZE_MAX), keyed by its customer_id (as SPEC §1 asks of producers), so a
 * customer's events stay in order; returns how many. */
size_t fs_kt_produce_file(const char *t, const char *path)
{
    return fs_kt_produce_range(t, path, 0, SIZE_MAX);
}

size_t fs_kt_produce_range(const char *t, const char *path, size_t from, size_t to)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    size_t len = (size_t)ftell(f);
    rewind(f);
    char *buf = malloc(len + 1);
    assert_int_equal(fread(buf, 1, len, f), len);
    fclose(f);
    fs_decoder *dec = fs_decoder_new();
    rd_kafka_t *p = fs_kt_client(RD_KAFKA_PRODUCER, NULL);
    size_t n = 0, i = 0;
    for (size_t off = 0, m; off < len && i < to; off += m, i++) {
        assert_int_equal(fs_frame_msgpack(buf + off, len - off, &m), FS_FRAME_OK);
        if (i < from)
            continue;
        fs_event ev;
        size_t used = 0;
        assert_int_equal(fs_decode(dec, FS_FORMAT_MSGPACK, buf + off, m, &ev, NULL, &used), FS_OK);
        fs_kt_produce(p, t, ev.customer_id.ptr, ev.customer_id.len, buf + off, m);
        n++;
    }
    fs_kt_flush(p);
    fs_decoder_free(dec);
    free(buf);
    return n;
}

void fs_kt_append(char **buf, size_t *len, const char *p, size_t n)
{
    *buf = realloc(*buf, *len + n + 2);
    memcpy(*buf + *len, p, n);
    *len += n;
    (*buf)[(*len)++] = '\n';
    (*buf)[*len] = '\0';
}

/* A consumer assigned every partition of t from the beginning (no group). */
rd_kafka_t *fs_kt_reader(const char *t, int partitions)
{
    rd_kafka_t *c = fs_kt_client(RD_KAFKA_CONSUMER, "test-reader");
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(parts, t, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(c, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    return c;
}

/* Reads every partition of t from the beginning to its end. */
/* "reason=<r>|key=<k>", then "|truncated=<t>|original.size=<n>" when the
 * message has those headers. */
static void append_headers(fs_kt_consumed *out, const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL, *t = NULL, *size = NULL;
    size_t vl = 0, tl = 0, sl = 0;
    char line[1024];
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_header_get_last(h, "reason", &v, &vl);
        rd_kafka_header_get_last(h, "truncated", &t, &tl);
        rd_kafka_header_get_last(h, "original.size", &size, &sl);
    }
    int l = snprintf(line, sizeof line, "reason=%.*s|key=%.*s", (int)vl, v ? (const char *)v : "",
                     (int)m->key_len, m->key ? (const char *)m->key : "");
    if (t)
        l += snprintf(line + l, sizeof line - (size_t)l, "|truncated=%.*s|original.size=%.*s",
                      (int)tl, (const char *)t, (int)sl, size ? (const char *)size : "");
    fs_kt_append(&out->headers, &out->hlen, line, (size_t)l);
}

fs_kt_consumed fs_kt_consume_topic(const char *t, int partitions, bool with_headers)
{
    rd_kafka_t *c = fs_kt_reader(t, partitions);
    fs_kt_consumed out = {.text = calloc(1, 1), .headers = calloc(1, 1)};
    int eofs = 0;
    for (int idle_polls = 0; eofs < partitions && idle_polls < FS_KT_DEADLINE_MS / 100;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (!m) {
            idle_polls++;
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else {
            assert_int_equal(m->err, RD_KAFKA_RESP_ERR_NO_ERROR);
            fs_kt_append(&out.text, &out.len, m->payload, m->len);
            out.n++;
            if (with_headers)
                append_headers(&out, m);
        }
        rd_kafka_message_destroy(m);
    }
    assert_int_equal(eofs, partitions);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return out;
}

void fs_kt_consumed_free(fs_kt_consumed *c)
{
    free(c->text);
    free(c->headers);
}

/* The group's committed offset of each partition (-1001: none). */
void fs_kt_committed(const char *group, const char *t, int partitions, int64_t *out)
{
    rd_kafka_t *c = fs_kt_client(RD_KAFKA_CONSUMER, group);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(parts, t, p);
    assert_int_equal(rd_kafka_committed(c, parts, FS_KT_DEADLINE_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int p = 0; p < partitions; p++)
        out[p] = parts->elems[p].offset;
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(c);
}

/* ---- configs ------------------------------------------------------------- */

char *fs_kt_read_text(const char *path)
{
    size_t len;
    char *s = fs_e2e_read_file(path, &len);
    assert_non_null(s);
    return s;
}

/* A config of tests/e2e/configs (funnels and windows not in configs/) with
 * the topics and the Kafka section of this test in front. */
/* Extra kafka: lines for the stage configs made next (a test's own). */
const char *fs_kt_extra_kafka = "";

/* For tests that start the stage again in the same group. The fs_kt_mock
 * cluster holds a join for session.timeout.ms - 1 s after a member left
 * (the default 45 s would stall the next run), a killed member leaves
 * only when its session ends, and a member whose session ends while its
 * first JoinGroup waits (3 s, group.initial.rebalance.delay.ms) is
 * dropped: 4 s is above that and short. */
const char fs_kt_short_session[] = "  session.timeout.ms: \"4000\"\n"
                                   "  heartbeat.interval.ms: \"500\"\n";

char *fs_kt_stage_config(const char *name, const char *in, const char *out, const char *dlq,
                         const char *group, const char *format)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/e2e/configs/%s", getenv("FS_SOURCE_DIR"), name);
    char *body = fs_kt_read_text(path);
    size_t cap = strlen(body) + 1024;
    char *yaml = malloc(cap);
    int n = snprintf(yaml, cap,
                     "input: {topic: %s, format: %s}\n"
                     "output: {topic: %s}\n"
                     "http: {listen: \"127.0.0.1:0\"}\n" /* any free port: tests run in parallel */
                     "%s%s%s"
                     "kafka:\n  bootstrap.servers: \"%s\"\n  group.id: %s\n%s"
                     "%s",
                     in, format, out, dlq ? "dead_letter: {topic: " : "", dlq ? dlq : "",
                     dlq ? "}\n" : "", fs_kt_bootstrap, group, fs_kt_extra_kafka, body);
    assert_true(n > 0 && (size_t)n < cap);
    free(body);
    char *file = fs_e2e_write_text(".yaml", yaml);
    free(yaml);
    fs_kt_state_topic_for(group, in);
    return file;
}

char *fs_kt_generated(uint64_t events, uint64_t customers, const char *seed, const char *rate,
                      const char *disorder)
{
    char ev[32], cu[32];
    snprintf(ev, sizeof ev, "%llu", (unsigned long long)events);
    snprintf(cu, sizeof cu, "%llu", (unsigned long long)customers);
    char *path = fs_e2e_write_text(".msgpack", "");
    fs_e2e_run r;
    FS_E2E_EXEC(&r, NULL, 0, "generate", "--events", ev, "--customers", cu, "--seed", seed,
                "--rate", rate, "--disorder", disorder, "--output", path);
    assert_int_equal(r.status, 0);
    fs_e2e_run_free(&r);
    return path;
}

void fs_kt_run_until_eof(const char *config, const char *threads, fs_e2e_run *r)
{
    FS_E2E_EXEC(r, NULL, 0, "run", "--config", config, "--threads", threads, "--until-eof");
    if (r->status != 0)
        fprintf(stderr, "%s", r->err);
    assert_int_equal(r->status, 0);
}

/* ---- run --until-eof equals replay ---------------------------------------- */

/* Blocks until the topic holds at least n messages (over all partitions). */
void fs_kt_await_messages(const char *t, int partitions, size_t n)
{
    rd_kafka_t *c = fs_kt_reader(t, partitions);
    size_t got = 0;
    for (int polls = 0; got < n && polls < FS_KT_DEADLINE_MS / 100; polls++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (m && !m->err)
            got++;
        if (m)
            rd_kafka_message_destroy(m);
    }
    assert_true(got >= n);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
}

int64_t fs_kt_committed_total(const char *group, const char *t, int partitions)
{
    int64_t offs[16], total = 0;
    fs_kt_committed(group, t, partitions, offs);
    for (int p = 0; p < partitions; p++)
        total += offs[p] < 0 ? 0 : offs[p];
    return total;
}

/* Blocks until the group has committed something: the stage commits once
 * the windows of some consumed events are acknowledged (then within its
 * 1 s commit tick). Between checks it waits on the output topic. */
void fs_kt_await_commit(const char *group, const char *in, int partitions, const char *out)
{
    rd_kafka_t *c = fs_kt_reader(out, 1);
    int rounds = 0;
    while (fs_kt_committed_total(group, in, partitions) == 0 &&
           rounds++ < FS_KT_DEADLINE_MS / 100) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (m)
            rd_kafka_message_destroy(m);
    }
    assert_true(fs_kt_committed_total(group, in, partitions) > 0);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
}

uint64_t fs_kt_field_u64(const char *log, const char *key)
{
    const char *stop = strstr(log, "msg=\"stage stopped\"");
    assert_non_null(stop);
    const char *k = strstr(stop, key);
    assert_non_null(k);
    return strtoull(k + strlen(key), NULL, 10);
}

/* The HTTP port a running stage logged ("http listening ... port=N"). */
int fs_kt_http_port(const fs_e2e_bg *stage)
{
    char log[65536];
    ssize_t n = pread(stage->err_fd, log, sizeof log - 1, 0);
    assert_true(n > 0);
    log[n] = '\0';
    const char *line = strstr(log, "msg=\"http listening\"");
    assert_non_null(line);
    const char *port = strstr(line, " port=");
    assert_non_null(port);
    return atoi(port + 6);
}

/* Looks up 200 of the generator's customers (c0.., acct-0..) through
 * /api/journeys on the running stage; returns how many journeys it saw. In
 * the ThreadSanitizer run of this test these are the loop thread's reads of
 * the journey table next to the workers' writes. */

/* The last record per key (kind, funnel, window_start) of out, in input
 * order: what a consumer upserting by key ends with. Records of one key are
 * in one partition, in order. */
char *fs_kt_last_per_key(const char *out)
{
    fs_e2e_lines l;
    fs_e2e_split_lines(out, &l);
    char **keys = calloc(l.n + 1, sizeof(*keys)), **vals = calloc(l.n + 1, sizeof(*vals));
    size_t n = 0;
    for (size_t i = 0; i < l.n; i++) {
        char *kind = fs_e2e_field(l.v[i], "kind"), *funnel = fs_e2e_field(l.v[i], "funnel"),
             *start = fs_e2e_field(l.v[i], "window_start");
        char key[512];
        snprintf(key, sizeof key, "%s|%s|%s", kind, funnel, start);
        free(kind);
        free(funnel);
        free(start);
        size_t k = 0;
        while (k < n && strcmp(keys[k], key) != 0)
            k++;
        if (k == n)
            keys[n++] = strdup(key);
        else
            free(vals[k]);
        vals[k] = strdup(l.v[i]);
    }
    size_t len = 0;
    char *text = calloc(1, 1);
    for (size_t k = 0; k < n; k++) {
        fs_kt_append(&text, &len, vals[k], strlen(vals[k]));
        free(keys[k]);
        free(vals[k]);
    }
    fs_e2e_lines_free(&l);
    free(keys);
    free(vals);
    return text;
}

/* The last record per key of topic `out` (2 partitions) equals replay of
 * the events file with the stage's config: flow records and final cohorts. */
void fs_kt_assert_last_per_key_is_replay(const char *cfg, const char *events, const char *out)
{
    char *yaml = fs_kt_read_text(cfg);
    char *want = fs_e2e_replay_file_at(yaml, events, 1, __FILE__, __LINE__);
    fs_kt_consumed got = fs_kt_consume_topic(out, 2, false);
    char *last = fs_kt_last_per_key(got.text);
    char *got_canon = fs_e2e_canonical(last), *want_canon = fs_e2e_canonical(want);
    assert_true(fs_e2e_count_records(want, "flow", NULL) > 5);
    if (strcmp(got_canon, want_canon)) { /* the lines that differ, not a truncated blob */
        char *g = fs_e2e_write_text(".got", got_canon), *w = fs_e2e_write_text(".want", want_canon);
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "diff %s %s | head -40 >&2", w, g);
        fprintf(stderr, "replay (<) against the output (>):\n");
        (void)!system(cmd);
        free(g);
        free(w);
    }
    assert_string_equal(got_canon, want_canon);
    free(got_canon);
    free(want_canon);
    free(last);
    fs_kt_consumed_free(&got);
    free(want);
    free(yaml);
}
