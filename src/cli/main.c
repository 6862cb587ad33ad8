/* main.c -- the funnelstream binary: dispatch to a subcommand (commands.h). */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static const char usage[] =
    "Usage: funnelstream <command> [options]\n"
    "\n"
    "Real-time marketing-funnel analytics: touchpoint events in, windowed funnel\n"
    "metrics out.\n"
    "\n"
    "Commands:\n"
    "  replay      run the engine over a file of events (or stdin), as fast as possible\n"
    "  generate    write synthetic touchpoint traffic, deterministic for a seed\n"
    "  run         the Kafka pipeline stage: input topic in, funnel metrics out\n"
    "  dev-broker  an embedded Kafka-protocol broker for trying the stage on one machine\n"
    "  demo        broker + traffic + stage on this machine, funnels live in the terminal\n"
    "\n"
    "`funnelstream <command> --help` describes each command.\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        fputs(usage, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        puts("funnelstream 0.1.0");
        return 0;
    }
    if (!strcmp(cmd, "replay"))
        return fs_cmd_replay(argc - 1, argv + 1);
    if (!strcmp(cmd, "generate"))
        return fs_cmd_generate(argc - 1, argv + 1);
    if (!strcmp(cmd, "dev-broker"))
        return fs_cmd_dev_broker(argc - 1, argv + 1);
    if (!strcmp(cmd, "run"))
        return fs_cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "demo"))
        return fs_cmd_demo(argc - 1, argv + 1);
    fprintf(stderr, "funnelstream: unknown command '%s'\n\n%s", cmd, usage);
    return 2;
}
