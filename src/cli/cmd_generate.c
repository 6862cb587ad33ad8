/* cmd_generate.c -- `funnelstream generate`: synthetic traffic to a file, stdout or Kafka.
 *
 * File or stdout: fs_generate writes the records as fast as it can.
 *
 * Kafka (--brokers): every record of the same stream (generate.h's
 * fs_gen_next, so the very records the file would hold) is produced to
 * --topic with its customer_id as the message key, so that all of a
 * customer's events land in one partition, in order -- which is what the
 * stage's per-customer journeys rely on. The producer is idempotent
 * (enable.idempotence), so retries neither duplicate nor reorder. A delivery
 * callback counts failures; at the end the producer is flushed and any
 * failed or undelivered message makes the exit status 1.
 *
 * --realtime paces production at --rate events per wall-clock second and
 * stamps each event with the wall clock (for live demos, where windows must
 * close as real time passes). A libuv timer ticks every 10 ms and produces
 * the events that have fallen due since the start, so the pace does not
 * drift with tick jitter; with --events 0 it runs until SIGINT or SIGTERM
 * (uv_signal), then flushes and exits 0.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <uv.h>

#include "cli.h"
#include "commands.h"
#include "generate.h"
#include "kafka.h"
#include "log.h"
#include "replay.h"
#include "util.h"

static const char usage[] =
    "Usage: funnelstream generate --events N --customers M [options]\n"
    "\n"
    "Writes synthetic touchpoint events: B2B and B2C customers on nine channels\n"
    "(20-60 campaigns each, a few of them popular) who enter mid-funnel, skip\n"
    "stages, drop out, come back, buy again, unsubscribe, apply coupons and\n"
    "onboard. The same options always produce the same bytes. With --brokers\n"
    "the records are produced to a Kafka topic instead, keyed by customer_id.\n"
    "\n"
    "Options:\n"
    "  -n, --events N              number of records to write (required)\n"
    "  -m, --customers M           number of distinct customers (required)\n"
    "  -s, --seed S                random seed (default 1)\n"
    "  -o, --output FILE|-         where to write (default: stdout)\n"
    "  -f, --format msgpack|json   encoding (default: from the file name, else msgpack)\n"
    "      --start-ts MS           event time of the first record, ms since the epoch\n"
    "                              (default 1732280400000 = 2024-11-22T13:00:00Z)\n"
    "      --rate EPS              events per second of event time (default 1000)\n"
    "      --disorder MS           move each record back in time by up to MS (default 0)\n"
    "      --malformed-fraction F  replace a fraction F (0..1) of records with\n"
    "                              malformed ones (default 0)\n"
    "  -h, --help                  this text\n"
    "\n"
    "Kafka output (instead of --output):\n"
    "  -b, --brokers BOOTSTRAP     produce to these brokers (bootstrap.servers)\n"
    "  -t, --topic T               topic to produce to (default touchpoints)\n"
    "      --realtime              produce --rate events per wall-clock second, each\n"
    "                              stamped with the wall clock (no --start-ts or\n"
    "                              --disorder); with --events 0, until SIGINT/SIGTERM\n"
    "\n"
    "Exit status: 0 done, 1 write or delivery error, 2 bad arguments.\n";

enum {
    OPT_START_TS = 256,
    OPT_RATE,
    OPT_DISORDER,
    OPT_MALFORMED,
    OPT_REALTIME,
};

#define CMD "generate"

/* 5 bytes of state per customer: 100M customers is 500 MB. */
#define MAX_CUSTOMERS 100000000L

#define TICK_MS       10
#define FLUSH_TIMEOUT 60000 /* ms */
#define POLL_EVERY    1024  /* records between delivery-report polls */
#define DEFAULT_TOPIC "touchpoints"

/* ---- arguments ------------------------------------------------------------ */

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-')
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static bool parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || !*s || *end || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static int bad_value(const char *flag, const char *value, const char *want)
{
    fprintf(stderr, "funnelstream " CMD ": %s: '%s' is not %s\n", flag, value, want);
    return 2;
}

static int usage_error(const char *msg)
{
    fprintf(stderr, "funnelstream " CMD ": %s (see --help)\n", msg);
    return 2;
}

typedef struct gen_args {
    fs_gen_opts opts;
    const char *output, *format, *brokers, *topic;
    bool have_events, have_customers, have_start_ts, have_disorder, realtime;
} gen_args;

/* fs_cli_long into an option parser's "-1: go on, else exit code". */
static int long_opt(const char *flag, long min, long max, long *out)
{
    return fs_cli_long(CMD, flag, optarg, min, max, out) ? 2 : -1;
}

/* The options that set numbers of the generator. */
static int parse_number(int c, gen_args *a)
{
    fs_gen_opts *o = &a->opts;
    long v = 0;
    int rc = -1;
    double frac;
    switch (c) {
    case 'n':
        a->have_events = true;
        if ((rc = long_opt("--events", 0, LONG_MAX, &v)) < 0)
            o->events = (uint64_t)v;
        return rc;
    case 'm':
        a->have_customers = true;
        if ((rc = long_opt("--customers", 1, MAX_CUSTOMERS, &v)) < 0)
            o->customers = (uint64_t)v;
        return rc;
    case 's':
        return parse_u64(optarg, &o->seed) ? -1 : bad_value("--seed", optarg, "an integer");
    case OPT_START_TS:
        a->have_start_ts = true;
        if ((rc = long_opt("--start-ts", LONG_MIN, LONG_MAX, &v)) < 0)
            o->start_ts = v;
        return rc;
    case OPT_RATE:
        if (!parse_double(optarg, &o->rate) || o->rate <= 0)
            return bad_value("--rate", optarg, "a positive number");
        return -1;
    case OPT_DISORDER:
        a->have_disorder = true;
        if ((rc = long_opt("--disorder", 0, LONG_MAX, &v)) < 0)
            o->disorder_ms = v;
        return rc;
    default: /* OPT_MALFORMED */
        if (!parse_double(optarg, &frac) || frac < 0 || frac > 1)
            return bad_value("--malformed-fraction", optarg, "in 0..1");
        o->malformed_ppm = (uint32_t)llround(frac * 1e6);
        return -1;
    }
}

static int parse_option(int c, gen_args *a)
{
    switch (c) {
    case 'n':
    case 'm':
    case 's':
    case OPT_START_TS:
    case OPT_RATE:
    case OPT_DISORDER:
    case OPT_MALFORMED:
        return parse_number(c, a);
    case 'o':
        a->output = optarg;
        return -1;
    case 'f':
        a->format = optarg;
        return -1;
    case 'b':
        a->brokers = optarg;
        return -1;
    case 't':
        a->topic = optarg;
        return -1;
    case OPT_REALTIME:
        a->realtime = true;
        return -1;
    case 'h':
        fputs(usage, stdout);
        return 0;
    default:
        fputs(usage, stderr);
        return 2;
    }
}

/* The combinations getopt cannot rule out. */
static int check_args(const gen_args *a)
{
    if (!a->have_events || !a->have_customers) {
        fprintf(stderr, "funnelstream " CMD ": --%s is required (see --help)\n",
                a->have_events ? "customers" : "events");
        return 2;
    }
    if (a->output && a->brokers)
        return usage_error("--output and --brokers are mutually exclusive: "
                           "write to a file or produce to Kafka");
    if (a->brokers && !*a->brokers)
        return usage_error("--brokers: empty bootstrap address");
    if (a->topic && !a->brokers)
        return usage_error("--topic needs --brokers");
    if (a->topic && !*a->topic)
        return usage_error("--topic: empty topic name");
    if (a->realtime && !a->brokers)
        return usage_error("--realtime needs --brokers");
    if (a->realtime && (a->have_start_ts || a->have_disorder))
        return usage_error("--start-ts and --disorder have no effect with --realtime: "
                           "events carry the wall clock");
    int64_t first, last;
    if (!a->realtime && !fs_gen_time_span(&a->opts, &first, &last)) {
        fprintf(stderr,
                "funnelstream " CMD ": the event times of this run (--start-ts, --disorder, "
                "--events / --rate) leave the valid range: |ts| <= %" PRId64
                " ms (2^53 - 1), whose events the stage rejects\n",
                FS_TS_MAX);
        return 2;
    }
    return -1;
}

static int parse_args(int argc, char **argv, gen_args *a)
{
    static const struct option opts[] = {
        {"events", required_argument, NULL, 'n'},
        {"customers", required_argument, NULL, 'm'},
        {"seed", required_argument, NULL, 's'},
        {"output", required_argument, NULL, 'o'},
        {"format", required_argument, NULL, 'f'},
        {"start-ts", required_argument, NULL, OPT_START_TS},
        {"rate", required_argument, NULL, OPT_RATE},
        {"disorder", required_argument, NULL, OPT_DISORDER},
        {"malformed-fraction", required_argument, NULL, OPT_MALFORMED},
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"realtime", no_argument, NULL, OPT_REALTIME},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "n:m:s:o:f:b:t:h", opts, NULL)) != -1) {
        int rc = parse_option(c, a);
        if (rc >= 0)
            return rc;
    }
    if (fs_cli_no_extra(CMD, argc, argv, optind))
        return 2;
    return check_args(a);
}

static int choose_format(const gen_args *a)
{
    if (a->format) {
        if (!strcmp(a->format, "msgpack"))
            return FS_FORMAT_MSGPACK;
        if (!strcmp(a->format, "json"))
            return FS_FORMAT_JSON;
        bad_value("--format", a->format, "msgpack or json");
        return -1;
    }
    int fmt = a->output && strcmp(a->output, "-") ? fs_format_from_path(a->output) : -1;
    return fmt >= 0 ? fmt : FS_FORMAT_MSGPACK;
}

/* ---- to a file ------------------------------------------------------------- */

static int generate_to_file(const gen_args *a)
{
    bool to_stdout = !a->output || !strcmp(a->output, "-");
    if (to_stdout && a->opts.format == FS_FORMAT_MSGPACK && isatty(STDOUT_FILENO)) {
        fputs("funnelstream " CMD ": refusing to write MessagePack to a terminal; "
              "use --output FILE or --format json\n",
              stderr);
        return 2;
    }
    FILE *out = to_stdout ? stdout : fopen(a->output, "wb");
    if (!out) {
        fprintf(stderr, "funnelstream " CMD ": %s: %s\n", a->output, strerror(errno));
        return 1;
    }
    int rc = 0;
    if (fs_generate(&a->opts, out) != 0) {
        fprintf(stderr, "funnelstream " CMD ": %s: write error: %s\n",
                to_stdout ? "stdout" : a->output, strerror(errno));
        rc = 1;
    }
    if (!to_stdout && fclose(out) != 0 && rc == 0) {
        fprintf(stderr, "funnelstream " CMD ": %s: %s\n", a->output, strerror(errno));
        rc = 1;
    }
    return rc;
}

/* ---- to Kafka ------------------------------------------------------------- */

typedef struct producer {
    rd_kafka_t *rk;
    const char *topic;
    fs_gen *gen;
    uint64_t produced, delivered, failed;
    rd_kafka_resp_err_t first_failure;
    bool broken; /* a produce call failed: stop producing */
} producer;

/* Runs wherever delivery reports are served: rd_kafka_poll / flush, and
 * fs_kafka_produce when the queue is full -- all on the main thread. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    producer *p = opaque;
    if (!m->err) {
        p->delivered++;
        return;
    }
    if (!p->failed++)
        p->first_failure = m->err;
}

static int set_prop(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char err[512];
    if (rd_kafka_conf_set(conf, name, value, err, sizeof err) == RD_KAFKA_CONF_OK)
        return 0;
    fprintf(stderr, "funnelstream " CMD ": %s: %s\n", name, err);
    return 2;
}

/* Plain librdkafka rather than fs_kafka_producer_new: there is no config
 * file here, only a bootstrap address. Returns 0 or an exit code. */
static int producer_open(producer *p, const char *brokers)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (set_prop(conf, "bootstrap.servers", brokers) ||
        set_prop(conf, "enable.idempotence", "true") || set_prop(conf, "linger.ms", "5") ||
        set_prop(conf, "client.id", "funnelstream-generate")) {
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_log_cb(conf, fs_kafka_log);
    rd_kafka_conf_set_opaque(conf, p);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!p->rk) { /* on failure the conf is still ours */
        rd_kafka_conf_destroy(conf);
        fs_log(FS_LOG_ERROR, "cannot create the Kafka producer", "error=\"%s\"", err);
        return 1;
    }
    return 0;
}

/* Produces the next record. Returns false at the end of the stream or
 * when producing failed (p->broken). */
static bool produce_next(producer *p, int64_t ts)
{
    const char *value, *key;
    size_t value_len, key_len;
    if (fs_gen_next(p->gen, ts, &value, &value_len, &key, &key_len))
        return false;
    rd_kafka_resp_err_t err =
        fs_kafka_produce(p->rk, p->topic, key, key_len, value, value_len, NULL, 0, NULL);
    if (err) {
        fs_log(FS_LOG_ERROR, "produce failed", "topic=%s error=\"%s\"", p->topic,
               rd_kafka_err2str(err));
        p->broken = true;
        return false;
    }
    if (++p->produced % POLL_EVERY == 0)
        rd_kafka_poll(p->rk, 0); /* serve delivery reports as we go */
    return true;
}

/* As fast as the producer takes them: --events records, none for 0. */
static void produce_bulk(producer *p, uint64_t events)
{
    while (p->produced < events && produce_next(p, INT64_MIN))
        ;
}

/* ---- --realtime: paced by a libuv timer ----------------------------------- */

typedef struct pacer {
    uv_loop_t loop;
    uv_timer_t tick;
    uv_signal_t sigint, sigterm;
    producer *p;
    double rate;     /* events per wall-clock second */
    uint64_t events; /* 0: until a signal */
    uint64_t start_ns;
} pacer;

static int64_t wall_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Records due by now: record i falls due i / rate seconds after the start.
 * Counting from the start (not per tick) keeps the pace exact on average
 * however late a tick fires. */
static uint64_t due_by_now(const pacer *pc)
{
    double elapsed_s = (double)(uv_hrtime() - pc->start_ns) / 1e9;
    uint64_t due = (uint64_t)(elapsed_s * pc->rate) + 1;
    return pc->events && due > pc->events ? pc->events : due;
}

static void on_tick(uv_timer_t *t)
{
    pacer *pc = t->data;
    producer *p = pc->p;
    uint64_t due = due_by_now(pc);
    while (p->produced < due && produce_next(p, wall_clock_ms()))
        ;
    rd_kafka_poll(p->rk, 0);
    if (p->broken || (pc->events && p->produced >= pc->events))
        uv_stop(t->loop);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    fs_log(FS_LOG_INFO, "signal: stopping", "signal=%d", signum);
    uv_stop(sig->loop);
}

static void produce_realtime(producer *p, double rate, uint64_t events)
{
    pacer pc = {.p = p, .rate = rate, .events = events};
    fs_xcheck(uv_loop_init(&pc.loop), "uv_loop_init");
    fs_xcheck(uv_signal_init(&pc.loop, &pc.sigint), "uv_signal_init");
    fs_xcheck(uv_signal_init(&pc.loop, &pc.sigterm), "uv_signal_init");
    fs_xcheck(uv_signal_start(&pc.sigint, on_signal, SIGINT), "uv_signal_start");
    fs_xcheck(uv_signal_start(&pc.sigterm, on_signal, SIGTERM), "uv_signal_start");
    fs_xcheck(uv_timer_init(&pc.loop, &pc.tick), "uv_timer_init");
    pc.tick.data = &pc;
    pc.start_ns = uv_hrtime();
    fs_xcheck(uv_timer_start(&pc.tick, on_tick, 0, TICK_MS), "uv_timer_start");
    uv_run(&pc.loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&pc.tick, NULL);
    uv_close((uv_handle_t *)&pc.sigint, NULL);
    uv_close((uv_handle_t *)&pc.sigterm, NULL);
    uv_run(&pc.loop, UV_RUN_DEFAULT); /* lets the closes complete */
    uv_loop_close(&pc.loop);
}

/* Flushes, logs the summary and returns the exit code. */
static int producer_finish(producer *p, uint64_t start_ns)
{
    rd_kafka_resp_err_t ferr = rd_kafka_flush(p->rk, FLUSH_TIMEOUT);
    int undelivered = rd_kafka_outq_len(p->rk);
    double secs = (double)(uv_hrtime() - start_ns) / 1e9;
    fs_log(FS_LOG_INFO, "generate finished",
           "topic=%s produced=%" PRIu64 " delivered=%" PRIu64 " failed=%" PRIu64
           " undelivered=%d elapsed_s=%.3f events_per_s=%.0f",
           p->topic, p->produced, p->delivered, p->failed, undelivered, secs,
           secs > 0 ? (double)p->produced / secs : 0.0);
    if (p->failed)
        fs_log(FS_LOG_ERROR, "messages not delivered", "count=%" PRIu64 " first_error=\"%s\"",
               p->failed, rd_kafka_err2str(p->first_failure));
    if (ferr || undelivered)
        fs_log(FS_LOG_ERROR, "producer not flushed", "error=\"%s\" in_flight=%d",
               rd_kafka_err2str(ferr), undelivered);
    rd_kafka_destroy(p->rk);
    return p->broken || p->failed || ferr || undelivered ? 1 : 0;
}

static int generate_to_kafka(const gen_args *a)
{
    producer p = {.topic = a->topic ? a->topic : DEFAULT_TOPIC};
    int rc = producer_open(&p, a->brokers);
    if (rc)
        return rc;
    const fs_gen_opts *o = &a->opts;
    p.gen = fs_gen_new(o); /* cannot fail: the options were checked */
    fs_log(FS_LOG_INFO, "generate producing",
           "bootstrap.servers=%s topic=%s events=%" PRIu64 " realtime=%s rate=%g", a->brokers,
           p.topic, o->events, a->realtime ? "true" : "false", o->rate);
    uint64_t start_ns = uv_hrtime();
    if (a->realtime)
        produce_realtime(&p, o->rate, o->events);
    else
        produce_bulk(&p, o->events);
    fs_gen_free(p.gen);
    return producer_finish(&p, start_ns);
}

int fs_cmd_generate(int argc, char **argv)
{
    gen_args a = {0};
    fs_gen_opts_default(&a.opts);
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    int fmt = choose_format(&a);
    if (fmt < 0)
        return 2;
    a.opts.format = (fs_format)fmt;
    return a.brokers ? generate_to_kafka(&a) : generate_to_file(&a);
}
