/* cmd_demo.c -- `funnelstream demo`: the whole pipeline on one machine, live.
 *
 * Four parts, nothing to install or configure:
 *   broker   librdkafka's mock cluster inside this process (dev_broker.h),
 *            with the config's topics;
 *   traffic  a child process, `funnelstream generate --realtime`, producing
 *            generated touchpoints at a steady wall-clock rate, keyed by
 *            customer, with the wall clock as event time;
 *   stage    the real `run` stage (stage.h) on a thread of this process, or
 *            --instances of them, one consumer group (each its own
 *            transactional.id): every window's record still comes out once;
 *   screen   this thread reads the output topic like any consumer and prints
 *            one line per funnel as each window closes, after the URL of the
 *            stage's dashboard (http.listen, or any free port if it is taken).
 * The config is configs/demo.yaml, built into the binary (10-second windows,
 * so the first lines appear about 12 s after start), or --config.
 *
 * Stopping: Ctrl-C reaches the stage (its loop watches SIGINT/SIGTERM) and
 * the traffic child (same process group). When the stage has flushed and
 * committed, the screen stops, the child is told to stop too (SIGTERM, for
 * a SIGTERM that went to this process only) and reaped, and the broker goes.
 * Should this process die any other way, the kernel kills the child
 * (PR_SET_PDEATHSIG, spawn_traffic): it is never left running on its own.
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

#include "cli.h"
#include "commands.h"
#include "config.h"
#include "dev_broker.h"
#include "embedded.h"
#include "kafka.h"
#include "log.h"
#include "stage.h"
#include "util.h"

extern char **environ;

static const char usage[] =
    "Usage: funnelstream demo [--rate EPS] [--customers M] [--config FILE]\n"
    "\n"
    "Runs the whole pipeline on this machine and shows the funnels live: an\n"
    "embedded Kafka-protocol broker, generated touchpoint traffic produced at a\n"
    "steady rate, the `run` stage, and one line per funnel and window as each\n"
    "window closes. Ctrl-C stops it.\n"
    "\n"
    "Options:\n"
    "  -r, --rate EPS         events per second of traffic (default 500)\n"
    "  -m, --customers M      distinct customers (default 5000)\n"
    "  -p, --partitions N     partitions of each topic (default 3)\n"
    "  -t, --threads N        worker threads of the stage (default: config, else cores)\n"
    "  -n, --instances N      stages in one consumer group (default 1): each window's\n"
    "                         record still comes out once, merged (README: Scaling out)\n"
    "  -c, --config FILE      funnels and windows (default: configs/demo.yaml, built in);\n"
    "                         its bootstrap.servers is replaced by the demo's broker\n"
    "      --log-level LEVEL  debug|info|warn|error (default warn)\n"
    "  -h, --help             this text\n"
    "\n"
    "Exit status: 0 after Ctrl-C, 1 when a part failed, 2 bad arguments or config.\n";

typedef struct demo_args {
    long rate, customers, partitions, threads, instances;
    const char *config;
} demo_args;

static int parse_args(int argc, char **argv, demo_args *a)
{
    static const struct option opts[] = {{"rate", required_argument, NULL, 'r'},
                                         {"customers", required_argument, NULL, 'm'},
                                         {"partitions", required_argument, NULL, 'p'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"instances", required_argument, NULL, 'n'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"log-level", required_argument, NULL, 'L'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "r:m:p:t:n:c:h", opts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 'r':
            rc = fs_cli_long("demo", "--rate", optarg, 1, 1000000, &a->rate);
            break;
        case 'm':
            rc = fs_cli_long("demo", "--customers", optarg, 1, 10000000, &a->customers);
            break;
        case 'p':
            rc = fs_cli_long("demo", "--partitions", optarg, 1, 256, &a->partitions);
            break;
        case 't':
            rc = fs_cli_long("demo", "--threads", optarg, 1, 1024, &a->threads);
            break;
        case 'n':
            rc = fs_cli_long("demo", "--instances", optarg, 1, 16, &a->instances);
            break;
        case 'c':
            a->config = optarg;
            break;
        case 'L':
            rc = fs_cli_log_level("demo", optarg);
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
        if (rc)
            return rc;
    }
    return fs_cli_no_extra("demo", argc, argv, optind) ? 2 : -1;
}

/* ---- the stage thread ------------------------------------------------------ */

typedef struct stage_thread {
    fs_stage_opts opts;
    _Atomic int http_port;
    int rc;
    atomic_bool done;
} stage_thread;

static void *stage_main(void *arg)
{
    stage_thread *st = arg;
    st->rc = fs_stage_run(&st->opts);
    atomic_store(&st->done, true);
    return NULL;
}

/* ---- the traffic child -------------------------------------------------------- */

/* fork + exec rather than posix_spawn, for the one thing the child must do
 * first: ask the kernel to kill it when this process goes, however it goes
 * (SIGKILL, an abort of the stage part): the traffic would otherwise run on,
 * orphaned, producing into a broker that is gone. PR_SET_PDEATHSIG fires when
 * the forking thread ends; that is this main thread, which ends only with the
 * process. Between fork and exec the child calls async-signal-safe functions
 * only (other threads of this process may hold locks). */
static pid_t spawn_traffic(const demo_args *a, const char *bootstrap, const char *topic)
{
    char rate[32], customers[32];
    snprintf(rate, sizeof rate, "%ld", a->rate);
    snprintf(customers, sizeof customers, "%ld", a->customers);
    const char *argv[] = {"/proc/self/exe", "generate", "--events", "0", "--customers", customers,
                          "--rate",         rate,       "--seed",   "1", "--realtime",  "--brokers",
                          bootstrap,        "--topic",  topic,      NULL};
    pid_t parent = getpid();
    sigset_t none;
    sigemptyset(&none);
    pid_t pid = fork();
    if (pid != 0)
        return pid; /* -1 when fork failed */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(127); /* the parent is already gone (or the request failed) */
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(argv[0], (char *const *)argv, environ);
    _exit(127);
}

/* ---- the screen ---------------------------------------------------------------- */

/* Length of a token's text (strings without their quotes). */
static int tok_len(const jsmntok_t *t)
{
    return t->end - t->start;
}

/* How many tokens the value at t[i] spans, itself included. */
static int skip(const jsmntok_t *t, int i)
{
    int n = 1;
    if (t[i].type == JSMN_OBJECT)
        for (int k = 0; k < t[i].size; k++) {
            n += skip(t, i + n); /* key */
            n += skip(t, i + n); /* value */
        }
    else if (t[i].type == JSMN_ARRAY)
        for (int k = 0; k < t[i].size; k++)
            n += skip(t, i + n);
    return n;
}

/* Index of the value of top-level key `key`, or -1. */
static int value_of(const char *js, const jsmntok_t *t, int n, const char *key)
{
    size_t kl = strlen(key);
    for (int i = 1; i + 1 < n; i += 1 + skip(t, i + 1)) {
        if (t[i].type == JSMN_STRING && (size_t)tok_len(&t[i]) == kl &&
            !memcmp(js + t[i].start, key, kl))
            return i + 1;
    }
    return -1;
}

static void show_time(int64_t ms, char *buf, size_t len)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&s, &tm);
    strftime(buf, len, "%H:%M:%S", &tm);
}

/* One line per flow record: window, funnel, each stage's reached count with
 * the conversion from the stage before, completions and revenue. */
static void show_record(const char *js, size_t len)
{
    jsmntok_t t[4096];
    jsmn_parser p;
    jsmn_init(&p);
    int n = jsmn_parse(&p, js, len, t, sizeof(t) / sizeof(*t));
    if (n < 1 || t[0].type != JSMN_OBJECT)
        return;
    int kind = value_of(js, t, n, "kind"), funnel = value_of(js, t, n, "funnel");
    int start = value_of(js, t, n, "window_start"), end = value_of(js, t, n, "window_end");
    int stages = value_of(js, t, n, "stages"), reached = value_of(js, t, n, "reached");
    int completed = value_of(js, t, n, "completed"), revenue = value_of(js, t, n, "revenue");
    if (kind < 0 || strncmp(js + t[kind].start, "flow", 4) || funnel < 0 || start < 0 || end < 0 ||
        stages < 0 || reached < 0 || completed < 0 || revenue < 0)
        return; /* cohort records: the flow lines tell the story live */
    char from[16], to[16];
    show_time(strtoll(js + t[start].start, NULL, 10), from, sizeof from);
    show_time(strtoll(js + t[end].start, NULL, 10), to, sizeof to);
    printf("%s-%s  %-14.*s", from, to, tok_len(&t[funnel]), js + t[funnel].start);
    double prev = -1;
    for (int s = 0; s < t[stages].size && s < t[reached].size; s++) {
        const jsmntok_t *name = &t[stages + 1 + s], *count = &t[reached + 1 + s];
        double v = strtod(js + count->start, NULL);
        printf("%s%.*s %.0f", s ? " > " : " ", tok_len(name), js + name->start, v);
        if (prev > 0)
            printf(" (%.0f%%)", 100 * v / prev);
        prev = v;
    }
    printf("  | completed %.*s revenue %.2f\n", tok_len(&t[completed]), js + t[completed].start,
           strtod(js + t[revenue].start, NULL));
    fflush(stdout);
}

static bool all_done(stage_thread *st, long n)
{
    for (long i = 0; i < n; i++)
        if (!atomic_load(&st[i].done))
            return false;
    return true;
}

static int screen(const char *bootstrap, const char *topic, int partitions, stage_thread *st,
                  long n)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", "funnelstream-demo-screen", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!c) {
        fs_log(FS_LOG_ERROR, "cannot create the screen's consumer", "error=\"%s\"", err);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    /* The poll waits for a message or 250 ms: the stage's end is noticed
     * that fast, and nothing spins. */
    long urls_shown = 0;
    while (!all_done(st, n)) {
        int port = urls_shown < n ? atomic_load(&st[urls_shown].http_port) : 0;
        if (port > 0) {
            if (n > 1)
                printf("Instance %ld: ", urls_shown + 1);
            printf("Dashboard: http://127.0.0.1:%d/   (metrics: /metrics, API: /api/funnels, "
                   "/api/journeys/<customer_id>, e.g. c1)\n%s",
                   port, urls_shown + 1 == n ? "\n" : "");
            fflush(stdout);
            urls_shown++;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 250);
        if (!m)
            continue;
        if (!m->err)
            show_record(m->payload, m->len);
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return 0;
}

/* ---- the command --------------------------------------------------------------- */

static fs_config *demo_config(const demo_args *a, char *err, size_t err_len)
{
    if (a->config)
        return fs_config_load(a->config, err, err_len);
    return fs_config_parse(fs_embedded_demo_yaml, fs_embedded_demo_yaml_len,
                           "configs/demo.yaml (built in)", err, err_len);
}

/* Instance i's own copy of the config: the broker's address, and a
 * transactional.id of its own (instances of one host would otherwise share
 * the default one and fence each other). */
static fs_config *instance_config(const demo_args *a, const char *bootstrap, long i, char *err,
                                  size_t err_len)
{
    fs_config *cfg = demo_config(a, err, err_len);
    if (!cfg)
        return NULL;
    fs_config_set_kafka(cfg, "bootstrap.servers", bootstrap);
    if (a->instances > 1) {
        char id[64];
        snprintf(id, sizeof id, "funnelstream-demo-txn-%ld", i);
        fs_config_set_kafka(cfg, "transactional.id", id);
    }
    return cfg;
}

int fs_cmd_demo(int argc, char **argv)
{
    demo_args a = {.rate = 500, .customers = 5000, .partitions = 3, .instances = 1};
    fs_log_set_level(FS_LOG_WARN);
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    char err[512];
    fs_config *cfg = demo_config(&a, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "funnelstream demo: %s\n", err);
        return 2;
    }
    if (fs_kafka_check_config(cfg, err, sizeof err) < 0) { /* a config error too, as in run */
        fprintf(stderr, "funnelstream demo: %s: %s\n", cfg->path, err);
        fs_config_free(cfg);
        return 2;
    }
    fs_dev_broker *broker = fs_dev_broker_start(cfg, (int)a.partitions, 1, err, sizeof err);
    if (!broker) {
        fprintf(stderr, "funnelstream demo: %s\n", err);
        fs_config_free(cfg);
        return 1;
    }
    const char *bootstrap = fs_dev_broker_bootstrap(broker);
    fs_config_set_kafka(cfg, "bootstrap.servers", bootstrap);
    printf("funnelstream demo: broker %s, %ld events/s from %ld customers, windows of %" PRId64
           " s.\nEach line is one funnel in one closed window: customers reaching each stage "
           "(conversion from the stage before).\nThe first lines appear once the first window "
           "has closed. Ctrl-C stops.\n\n",
           bootstrap, a.rate, a.customers, cfg->window_size_ms / 1000);
    fflush(stdout);

    if (a.instances > 1)
        printf(
            "%ld instances in one consumer group: each window's record still comes out once.\n\n",
            a.instances);
    stage_thread *st = fs_xcalloc((size_t)a.instances, sizeof(*st));
    pthread_t *stage = fs_xcalloc((size_t)a.instances, sizeof(*stage));
    fs_config **cfgs = fs_xcalloc((size_t)a.instances, sizeof(*cfgs));
    int failed = 0;
    cfgs[0] = cfg;
    if (a.instances > 1)
        fs_config_set_kafka(cfg, "transactional.id", "funnelstream-demo-txn-0");
    for (long i = 1; i < a.instances; i++)
        if (!(cfgs[i] = instance_config(&a, bootstrap, i, err, sizeof err))) {
            fprintf(stderr, "funnelstream demo: %s\n", err); /* it parsed once: out of memory */
            return 1;
        }
    for (long i = 0; i < a.instances; i++) {
        st[i].opts =
            (fs_stage_opts){.cfg = cfgs[i], .threads = (uint32_t)a.threads, .http_any_port = true};
        st[i].opts.http_port = &st[i].http_port;
        fs_xcheck(pthread_create(&stage[i], NULL, stage_main, &st[i]), "pthread_create");
    }
    pid_t traffic = spawn_traffic(&a, bootstrap, cfg->input_topic);
    if (traffic < 0)
        fs_log(FS_LOG_ERROR, "cannot start the traffic generator", NULL);
    rc = screen(bootstrap, cfg->output_topic, (int)a.partitions, st, a.instances);
    for (long i = 0; i < a.instances; i++) {
        pthread_join(stage[i], NULL);
        failed |= st[i].rc;
        if (i > 0)
            fs_config_free(cfgs[i]);
    }
    int status = 0;
    if (traffic > 0) {
        kill(traffic, SIGTERM);
        waitpid(traffic, &status, 0);
    }
    fs_dev_broker_stop(broker);
    fs_config_free(cfg);
    /* Our SIGTERM may find the child already flushing after the terminal's
     * SIGINT, past its signal handling: ending by it is a clean stop too. */
    bool traffic_ok = traffic > 0 && ((WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
                                      (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM));
    free(st);
    free(stage);
    free(cfgs);
    return rc || failed || !traffic_ok ? 1 : 0;
}
