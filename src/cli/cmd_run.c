/* cmd_run.c -- `funnelstream run`: the Kafka pipeline stage (stage.h). */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "cli.h"
#include "commands.h"
#include "config.h"
#include "kafka.h"
#include "stage.h"

static const char usage[] =
    "Usage: funnelstream run --config FILE [--threads N] [--until-eof]\n"
    "\n"
    "The pipeline stage: consumes touchpoint events from the config's input topic\n"
    "(consumer group, cooperative-sticky), computes the funnels and produces the\n"
    "windowed metrics to the output topic; rejected messages go to the dead-letter\n"
    "topic when one is configured. Offsets are committed only after the records\n"
    "that depend on them are acknowledged. Runs until SIGINT or SIGTERM, then\n"
    "flushes, commits and exits 0.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE      YAML config (topics, kafka: properties, funnels)\n"
    "  -t, --threads N        worker threads (default: config `threads`, else cores)\n"
    "  -e, --until-eof        stop when every assigned partition is at its end; the\n"
    "                         watermark then goes to +inf and every window closes\n"
    "      --log-level LEVEL  debug|info|warn|error (default info)\n"
    "  -h, --help             this text\n"
    "\n"
    "Exit status: 0 clean stop, 1 broker or delivery failure, 2 bad arguments or config.\n";

int fs_cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"threads", required_argument, NULL, 't'},
        {"until-eof", no_argument, NULL, 'e'},    {"log-level", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    const char *config = NULL;
    long threads = 0;
    bool until_eof = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:t:eh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 't':
            if (fs_cli_long("run", "--threads", optarg, 1, 1024, &threads))
                return 2;
            break;
        case 'e':
            until_eof = true;
            break;
        case 'L':
            if (fs_cli_log_level("run", optarg))
                return 2;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (fs_cli_no_extra("run", argc, argv, optind))
        return 2;
    if (!config) {
        fputs("funnelstream run: --config is required (see --help)\n", stderr);
        return 2;
    }
    char err[512];
    fs_config *cfg = fs_config_load(config, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "funnelstream run: %s\n", err);
        return 2;
    }
    /* a property librdkafka refuses is a config error too (exit 2), found
     * before any client, thread or socket starts */
    if (fs_kafka_check_config(cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "funnelstream run: %s: %s\n", cfg->path, err);
        fs_config_free(cfg);
        return 2;
    }
    fs_stage_opts so = {.cfg = cfg, .threads = (uint32_t)threads, .until_eof = until_eof};
    int rc = fs_stage_run(&so);
    fs_config_free(cfg);
    return rc;
}
