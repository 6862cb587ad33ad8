/* cli.c -- option parsing shared by the subcommands (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

int fs_cli_long(const char *cmd, const char *flag, const char *arg, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || end == arg || *end || v < min || v > max) {
        fprintf(stderr, "funnelstream %s: %s: '%s' is not in %ld..%ld\n", cmd, flag, arg, min, max);
        return 2;
    }
    *out = v;
    return 0;
}

int fs_cli_log_level(const char *cmd, const char *arg)
{
    int level = fs_log_parse_level(arg);
    if (level < 0) {
        fprintf(stderr, "funnelstream %s: --log-level: unknown level '%s'\n", cmd, arg);
        return 2;
    }
    fs_log_set_level((fs_log_level)level);
    return 0;
}

int fs_cli_no_extra(const char *cmd, int argc, char **argv, int optind_now)
{
    if (optind_now < argc) {
        fprintf(stderr, "funnelstream %s: unexpected argument '%s'\n", cmd, argv[optind_now]);
        return 2;
    }
    return 0;
}
