/* cmd_generate.c -- `funnelstream generate`: synthetic traffic to a file or stdout. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "generate.h"
#include "replay.h"

static const char usage[] =
    "Usage: funnelstream generate --events N --customers M [options]\n"
    "\n"
    "Writes synthetic touchpoint events: B2B and B2C customers on nine channels\n"
    "who enter mid-funnel, skip stages, drop out, come back, buy again and\n"
    "unsubscribe. The same options always produce the same bytes.\n"
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
    "Exit status: 0 done, 1 write error, 2 bad arguments.\n";

enum { OPT_START_TS = 256, OPT_RATE, OPT_DISORDER, OPT_MALFORMED };

/* 3 bytes of state per customer: 100M customers is 300 MB. */
#define MAX_CUSTOMERS 100000000ull

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

static bool parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || !*s || *end)
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
    fprintf(stderr, "funnelstream generate: %s: '%s' is not %s\n", flag, value, want);
    return 2;
}

typedef struct gen_args {
    fs_gen_opts opts;
    const char *output, *format;
    bool have_events, have_customers;
} gen_args;

static int parse_option(int c, gen_args *a)
{
    fs_gen_opts *o = &a->opts;
    double frac;
    switch (c) {
    case 'n':
        a->have_events = true;
        return parse_u64(optarg, &o->events) ? -1 : bad_value("--events", optarg, "a count");
    case 'm':
        a->have_customers = true;
        if (!parse_u64(optarg, &o->customers) || o->customers == 0 || o->customers > MAX_CUSTOMERS)
            return bad_value("--customers", optarg, "in 1..100000000");
        return -1;
    case 's':
        return parse_u64(optarg, &o->seed) ? -1 : bad_value("--seed", optarg, "an integer");
    case 'o':
        a->output = optarg;
        return -1;
    case 'f':
        a->format = optarg;
        return -1;
    case OPT_START_TS:
        return parse_i64(optarg, &o->start_ts) ? -1 : bad_value("--start-ts", optarg, "an integer");
    case OPT_RATE:
        if (!parse_double(optarg, &o->rate) || o->rate <= 0)
            return bad_value("--rate", optarg, "a positive number");
        return -1;
    case OPT_DISORDER:
        if (!parse_i64(optarg, &o->disorder_ms) || o->disorder_ms < 0)
            return bad_value("--disorder", optarg, "a non-negative number of ms");
        return -1;
    case OPT_MALFORMED:
        if (!parse_double(optarg, &frac) || frac < 0 || frac > 1)
            return bad_value("--malformed-fraction", optarg, "in 0..1");
        o->malformed_ppm = (uint32_t)llround(frac * 1e6);
        return -1;
    case 'h':
        fputs(usage, stdout);
        return 0;
    default:
        fputs(usage, stderr);
        return 2;
    }
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
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "n:m:s:o:f:h", opts, NULL)) != -1) {
        int rc = parse_option(c, a);
        if (rc >= 0)
            return rc;
    }
    if (optind < argc) {
        fprintf(stderr, "funnelstream generate: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!a->have_events || !a->have_customers) {
        fprintf(stderr, "funnelstream generate: --%s is required (see --help)\n",
                a->have_events ? "customers" : "events");
        return 2;
    }
    return -1;
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
    bool to_stdout = !a.output || !strcmp(a.output, "-");
    if (to_stdout && fmt == FS_FORMAT_MSGPACK && isatty(STDOUT_FILENO)) {
        fputs("funnelstream generate: refusing to write MessagePack to a terminal; "
              "use --output FILE or --format json\n",
              stderr);
        return 2;
    }
    FILE *out = to_stdout ? stdout : fopen(a.output, "wb");
    if (!out) {
        fprintf(stderr, "funnelstream generate: %s: %s\n", a.output, strerror(errno));
        return 1;
    }
    rc = 0;
    if (fs_generate(&a.opts, out) != 0) {
        fprintf(stderr, "funnelstream generate: %s: write error: %s\n",
                to_stdout ? "stdout" : a.output, strerror(errno));
        rc = 1;
    }
    if (!to_stdout && fclose(out) != 0 && rc == 0) {
        fprintf(stderr, "funnelstream generate: %s: %s\n", a.output, strerror(errno));
        rc = 1;
    }
    return rc;
}
