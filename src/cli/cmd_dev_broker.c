/* cmd_dev_broker.c -- `funnelstream dev-broker`: a Kafka-protocol broker for one machine.
 *
 * librdkafka ships a mock cluster (rdkafka_mock.h) that speaks the real wire
 * protocol over TCP to any client: funnelstream itself, kcat, other
 * languages' clients. This command starts one, creates the topics a config
 * names (input, output, dead letter), prints the bootstrap address on stdout
 * (one line, for scripts) and serves until SIGINT or SIGTERM, which a libuv
 * loop waits for without polling.
 *
 * Limits of the mock cluster: it listens on ports the kernel picks (the
 * librdkafka 2.0 API has no way to choose one, so --port accepts only 0), it
 * keeps data in memory only, and it keeps a bounded log per partition.
 */
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cli.h"
#include "commands.h"
#include "config.h"
#include "dev_broker.h"
#include "log.h"
#include "util.h"

static const char usage[] =
    "Usage: funnelstream dev-broker [--partitions N] [--brokers B] [--config FILE]\n"
    "\n"
    "Runs an embedded Kafka-protocol broker (librdkafka's mock cluster) for trying\n"
    "funnelstream on one machine. Creates the config's input, output and dead-letter\n"
    "topics (default: touchpoints and funnel-metrics), prints the bootstrap address on\n"
    "stdout and serves until SIGINT or SIGTERM. Data is kept in memory only, and each\n"
    "partition keeps about 5 MiB and 100000 messages: past that its oldest messages\n"
    "are dropped (`run` logs and counts what it could not read).\n"
    "\n"
    "Options:\n"
    "  -p, --partitions N   partitions per topic (default 3)\n"
    "  -b, --brokers B      brokers in the cluster (default 1)\n"
    "  -c, --config FILE    take the topic names from this config\n"
    "      --port P         only 0 (any free port): the mock cluster cannot bind a\n"
    "                       chosen port\n"
    "  -h, --help           this text\n"
    "\n"
    "Exit status: 0 after a signal, 1 broker failure, 2 bad arguments or config.\n";

typedef struct broker_args {
    long partitions, brokers;
    const char *config;
} broker_args;

static int parse_args(int argc, char **argv, broker_args *a)
{
    static const struct option opts[] = {{"partitions", required_argument, NULL, 'p'},
                                         {"brokers", required_argument, NULL, 'b'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"port", required_argument, NULL, 'P'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:b:c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (fs_cli_long("dev-broker", "--partitions", optarg, 1, 1000, &a->partitions))
                return 2;
            break;
        case 'b':
            if (fs_cli_long("dev-broker", "--brokers", optarg, 1, 16, &a->brokers))
                return 2;
            break;
        case 'c':
            a->config = optarg;
            break;
        case 'P':
            if (strcmp(optarg, "0") != 0) {
                fprintf(stderr, "funnelstream dev-broker: --port: librdkafka's mock cluster "
                                "cannot listen on a chosen port; use 0 (any free port)\n");
                return 2;
            }
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (fs_cli_no_extra("dev-broker", argc, argv, optind))
        return 2;
    return -1;
}

static void on_signal(uv_signal_t *sig, int signum)
{
    fs_log(FS_LOG_INFO, "dev broker stopping", "signal=%d", signum);
    uv_stop(sig->loop);
}

typedef struct signal_loop {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
} signal_loop;

/* Watches SIGINT and SIGTERM from now on, so a signal that arrives before
 * the loop runs is not lost to the default action. */
static void signals_watch(signal_loop *s)
{
    fs_xcheck(uv_loop_init(&s->loop), "uv_loop_init");
    fs_xcheck(uv_signal_init(&s->loop, &s->sigint), "uv_signal_init");
    fs_xcheck(uv_signal_init(&s->loop, &s->sigterm), "uv_signal_init");
    fs_xcheck(uv_signal_start(&s->sigint, on_signal, SIGINT), "uv_signal_start");
    fs_xcheck(uv_signal_start(&s->sigterm, on_signal, SIGTERM), "uv_signal_start");
}

/* Runs until one of the signals, then closes the loop. */
static void signals_wait(signal_loop *s, bool serve)
{
    if (serve)
        uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT); /* lets the closes complete */
    uv_loop_close(&s->loop);
}

int fs_cmd_dev_broker(int argc, char **argv)
{
    broker_args a = {.partitions = 3, .brokers = 1};
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    char err[512];
    fs_config *cfg = NULL;
    if (a.config && !(cfg = fs_config_load(a.config, err, sizeof(err)))) {
        fprintf(stderr, "funnelstream dev-broker: %s\n", err);
        return 2;
    }
    signal_loop sl;
    signals_watch(&sl);
    fs_dev_broker *broker =
        fs_dev_broker_start(cfg, (int)a.partitions, (int)a.brokers, err, sizeof(err));
    rc = 1;
    if (!broker) {
        fprintf(stderr, "funnelstream dev-broker: %s\n", err);
    } else {
        const char *bootstrap = fs_dev_broker_bootstrap(broker);
        printf("%s\n", bootstrap);
        fflush(stdout);
        fs_log(FS_LOG_INFO, "dev broker ready", "bootstrap.servers=%s brokers=%ld", bootstrap,
               a.brokers);
        rc = 0;
    }
    signals_wait(&sl, rc == 0);
    fs_dev_broker_stop(broker);
    fs_config_free(cfg);
    return rc;
}
