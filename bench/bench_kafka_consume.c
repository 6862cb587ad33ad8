/* bench_kafka_consume.c -- a bare librdkafka batch consumer: the ceiling for `run`.
 *
 * Usage: bench_kafka_consume --brokers B --topic T --partitions P [--group G]
 *                            [--timeout S] [-X key=value]...
 *        bench_kafka_consume --brokers B --topic T --partitions P --check N
 *
 * Consume mode reads a preloaded topic from the beginning the way the stage
 * (src/stage/consume.c) does, minus everything the stage does with the messages: it
 * subscribes with a fresh group.id (auto.offset.reset=earliest,
 * enable.partition.eof=true, enable.auto.commit=false and, as in the stage,
 * enable.auto.offset.store=false; -X adds or overrides properties), drains
 * the consumer queue with rd_kafka_consume_batch_queue in chunks of 1024
 * without blocking in it and waits on the queue's event pipe when it is empty
 * (as the stage's libuv loop does), adds one byte of each payload to a
 * checksum (so the payload is really read) and stops once each of the P
 * partitions has reported its end (a message after an EOF clears it, as in
 * the stage). It prints, on stdout,
 *
 *   consumed=N consume_s=S events_per_s=R
 *
 * measured like the stage's "input ends" line: from the first message to the
 * last EOF, so group join and assignment do not count. `run --until-eof`
 * divided by this is the stage's efficiency against the client library on the
 * same broker. On stderr: bytes, the checksum and last_message_s (when the
 * last message arrived; consume_s minus that is the wait for the EOFs, about
 * fetch.wait.max.ms, since the broker holds an empty fetch that long).
 *
 * Check mode (--check N) verifies a preload: it queries the low and high
 * watermarks of every partition, prints them, and exits 1 unless every low
 * watermark is 0 and the high ones add up to N. The dev broker (librdkafka's
 * mock cluster) keeps a bounded log per partition and silently drops its
 * oldest message sets, so a preload that is too large loses its head.
 *
 * Exit status: 0 done, 1 Kafka error, timeout or failed check, 2 bad arguments.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#define CHUNK        1024 /* messages per rd_kafka_consume_batch_queue, as the stage */
#define POLL_MS      100
#define WATERMARK_MS 10000

typedef struct args {
    const char *brokers, *topic, *group;
    long partitions;
    long long check; /* -1: consume mode */
    double timeout_s;
    const char *props[32]; /* -X key=value, applied last */
    int n_props;
} args;

typedef struct tally {
    uint64_t consumed, bytes, checksum;
    uint64_t first_ns, last_ns, last_eof_ns;
    bool *at_eof;
    long n_eof;
} tally;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
    fputs("Usage: bench_kafka_consume --brokers B --topic T --partitions P [--group G]\n"
          "                           [--timeout S] [-X key=value]...\n"
          "       bench_kafka_consume --brokers B --topic T --partitions P --check N\n",
          f);
}

static bool parse_num(const char *flag, const char *s, long long min, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min) {
        fprintf(stderr, "bench_kafka_consume: %s: '%s' is not a number >= %lld\n", flag, s, min);
        return false;
    }
    *out = v;
    return true;
}

static int parse_args(int argc, char **argv, args *a)
{
    static const struct option opts[] = {{"brokers", required_argument, NULL, 'b'},
                                         {"topic", required_argument, NULL, 't'},
                                         {"partitions", required_argument, NULL, 'p'},
                                         {"group", required_argument, NULL, 'g'},
                                         {"check", required_argument, NULL, 'c'},
                                         {"timeout", required_argument, NULL, 'T'},
                                         {"property", required_argument, NULL, 'X'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    long long v;
    int c;
    while ((c = getopt_long(argc, argv, "b:t:p:g:c:T:X:h", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            a->brokers = optarg;
            break;
        case 't':
            a->topic = optarg;
            break;
        case 'p':
            if (!parse_num("--partitions", optarg, 1, &v) || v > 65536)
                return 2;
            a->partitions = (long)v;
            break;
        case 'g':
            a->group = optarg;
            break;
        case 'c':
            if (!parse_num("--check", optarg, 0, &a->check))
                return 2;
            break;
        case 'T':
            if (!parse_num("--timeout", optarg, 1, &v))
                return 2;
            a->timeout_s = (double)v;
            break;
        case 'X':
            if (a->n_props == (int)(sizeof(a->props) / sizeof(*a->props)) || !strchr(optarg, '=')) {
                fprintf(stderr, "bench_kafka_consume: -X: 'key=value', at most 32\n");
                return 2;
            }
            a->props[a->n_props++] = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc || !a->brokers || !a->topic || a->partitions < 1) {
        usage(stderr);
        return 2;
    }
    return -1;
}

static bool set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
    char err[512];
    if (rd_kafka_conf_set(conf, key, value, err, sizeof(err)) == RD_KAFKA_CONF_OK)
        return true;
    fprintf(stderr, "bench_kafka_consume: %s: %s\n", key, err);
    return false;
}

static rd_kafka_t *consumer_new(const args *a)
{
    char group[128], err[512];
    if (a->group)
        snprintf(group, sizeof(group), "%s", a->group);
    else /* fresh, so that no committed offset is found */
        snprintf(group, sizeof(group), "bench-bare-%d-%" PRIu64, (int)getpid(), now_ns());
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!set(conf, "bootstrap.servers", a->brokers) || !set(conf, "group.id", group) ||
        !set(conf, "auto.offset.reset", "earliest") || !set(conf, "enable.partition.eof", "true") ||
        !set(conf, "enable.auto.commit", "false") ||
        !set(conf, "enable.auto.offset.store", "false") ||
        !set(conf, "client.id", "bench-kafka-consume")) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    for (int i = 0; i < a->n_props; i++) {
        char key[256];
        const char *eq = strchr(a->props[i], '=');
        snprintf(key, sizeof(key), "%.*s", (int)(eq - a->props[i]), a->props[i]);
        if (!set(conf, key, eq + 1)) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "bench_kafka_consume: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

static bool subscribe(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err)
        fprintf(stderr, "bench_kafka_consume: subscribe %s: %s\n", topic, rd_kafka_err2str(err));
    return !err;
}

/* Returns false on an error that ends the run. */
static bool on_message(tally *t, const args *a, const rd_kafka_message_t *m)
{
    if (m->partition >= a->partitions && (!m->err || m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)) {
        fprintf(stderr,
                "bench_kafka_consume: %s has a partition %" PRId32 ": more than --partitions\n",
                a->topic, m->partition);
        return false;
    }
    if (!m->err) {
        if (!t->consumed++)
            t->first_ns = now_ns();
        t->bytes += m->len;
        if (m->len)
            t->checksum += ((const unsigned char *)m->payload)[m->len / 2];
        if (m->partition >= 0 && t->at_eof[m->partition]) {
            t->at_eof[m->partition] = false;
            t->n_eof--;
        }
        return true;
    }
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (m->partition >= 0 && !t->at_eof[m->partition]) {
            t->at_eof[m->partition] = true;
            t->n_eof++;
            t->last_eof_ns = now_ns();
        }
        return true;
    }
    fprintf(stderr, "bench_kafka_consume: consumer error: %s\n", rd_kafka_message_errstr(m));
    return m->err != RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC &&
           m->err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART && m->err != RD_KAFKA_RESP_ERR__FATAL;
}

/* Waits until the queue's event pipe says it is non-empty (or POLL_MS). */
static void wait_readable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, POLL_MS) > 0) {
        char buf[256];
        while (read(fd, buf, sizeof(buf)) > 0)
            ;
    }
}

/* Consumes until every partition is at its end. Like the stage, it never
 * blocks inside rd_kafka_consume_batch_queue (which, given a timeout, waits
 * to fill the whole batch): it drains the queue without waiting and sleeps
 * in poll(2) on the queue's event pipe when the queue is empty. Returns the
 * exit status. */
static int consume(rd_kafka_t *rk, const args *a, tally *t)
{
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        fprintf(stderr, "bench_kafka_consume: pipe: %s\n", strerror(errno));
        return 1;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
    rd_kafka_queue_io_event_enable(q, fds[1], "1", 1);
    rd_kafka_message_t *msgs[CHUNK];
    uint64_t deadline = now_ns() + (uint64_t)(a->timeout_s * 1e9);
    int rc = 0;
    while (t->n_eof < a->partitions && rc == 0) {
        ssize_t n = rd_kafka_consume_batch_queue(q, 0, msgs, CHUNK);
        uint64_t before = t->consumed;
        for (ssize_t i = 0; i < n; i++) {
            if (!on_message(t, a, msgs[i]))
                rc = 1;
            rd_kafka_message_destroy(msgs[i]);
        }
        if (t->consumed > before)
            t->last_ns = now_ns(); /* per chunk: a clock read per message would cost */
        if (n <= 0)
            wait_readable(fds[0]);
        if (rc == 0 && now_ns() > deadline) {
            fprintf(stderr, "bench_kafka_consume: timeout: %ld of %ld partitions at their end\n",
                    t->n_eof, a->partitions);
            rc = 1;
        }
    }
    rd_kafka_queue_io_event_enable(q, -1, NULL, 0);
    rd_kafka_queue_destroy(q);
    close(fds[0]);
    close(fds[1]);
    return rc;
}

static int run_consume(const args *a)
{
    rd_kafka_t *rk = consumer_new(a);
    if (!rk)
        return 1;
    tally t = {.at_eof = calloc((size_t)a->partitions, sizeof(bool))};
    int rc = subscribe(rk, a->topic) ? consume(rk, a, &t) : 1;
    double secs = t.consumed ? (double)(t.last_eof_ns - t.first_ns) / 1e9 : 0;
    if (rc == 0)
        printf("consumed=%" PRIu64 " consume_s=%.3f events_per_s=%.0f\n", t.consumed, secs,
               secs > 0 ? (double)t.consumed / secs : 0.0);
    /* last_message_s: where the data ended; the rest of consume_s is the
     * wait for the end-of-partition events (fetch.wait.max.ms). */
    fprintf(stderr,
            "bench_kafka_consume: bytes=%" PRIu64 " checksum=%" PRIu64 " last_message_s=%.3f\n",
            t.bytes, t.checksum, t.consumed ? (double)(t.last_ns - t.first_ns) / 1e9 : 0.0);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    free(t.at_eof);
    return rc;
}

/* Prints every partition's watermarks; 0 if the topic holds exactly N
 * messages from offset 0 on. */
/* A client for watermark queries only. (Note that the mock cluster creates a
 * topic it does not know, with 4 partitions, on any client's metadata
 * request.) */
static rd_kafka_t *query_client(const args *a)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!set(conf, "bootstrap.servers", a->brokers) || !set(conf, "log_level", "3")) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "bench_kafka_consume: %s\n", err);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

static int run_check(const args *a)
{
    rd_kafka_t *rk = query_client(a);
    if (!rk)
        return 1;
    int64_t total = 0;
    bool intact = true;
    for (int32_t p = 0; p < a->partitions; p++) {
        int64_t low = -1, high = -1;
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(rk, a->topic, p, &low, &high, WATERMARK_MS);
        if (e) {
            fprintf(stderr, "bench_kafka_consume: watermarks of %s [%" PRId32 "]: %s\n", a->topic,
                    p, rd_kafka_err2str(e));
            intact = false;
            continue;
        }
        printf("partition=%" PRId32 " low=%" PRId64 " high=%" PRId64 "\n", p, low, high);
        intact = intact && low == 0;
        total += high;
    }
    intact = intact && total == a->check;
    printf("topic=%s expected=%lld high_total=%" PRId64 " intact=%s\n", a->topic, a->check, total,
           intact ? "true" : "false");
    rd_kafka_destroy(rk);
    return intact ? 0 : 1;
}

int main(int argc, char **argv)
{
    args a = {.check = -1, .timeout_s = 300};
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    return a.check >= 0 ? run_check(&a) : run_consume(&a);
}
